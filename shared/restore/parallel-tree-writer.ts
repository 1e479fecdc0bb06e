// Network file systems (NFS, so EFS under the Lambda functions; SMB; FUSE): each call waits
// about a millisecond, so many promise calls are kept in flight. Small files are collected
// whole and written in one go each (open, write, times, close) in the background; a large
// file is written through its own handle, in order.
//
// A file system creates names in one directory one at a time (an O_CREAT open holds the
// directory's lock, on NFS for a round trip or two), and an archive lists a directory's
// files together. So small files wait in a queue per directory, and the writes in flight are
// shared out among the directories that have files waiting (at most PER_DIRECTORY each):
// while one directory's creates take their turns, other directories' go on. Extraction runs
// ahead of the writes, as far as QUEUED_FILES files or QUEUED_BYTES bytes (their content,
// views of the decoded archive, is held until written), then waits.

import * as fsSync from 'node:fs';
import { promises as fs } from 'node:fs';

import { CALLS_IN_FLIGHT } from '../file-access.js';
import { onAbort, throwIfAborted } from '../storage/streams.js';
import { fsPath } from '../raw-name.js';
import { writeWhole, writeWholeAt } from '../write-whole.js';
import { HolePlanner } from './holes.js';
import { copyLinkedFile, FILE_FLAGS, LINK_REFUSED, umaskStrips, type CopyBudget, type FileSink, type Owner, type TreeWriter } from './tree-writer.js';

/** Files up to this size are collected whole and written in one go in the background. */
const SMALL_FILE_LIMIT = 1024 * 1024;
/** Small files written in one directory at once: one creating (under the directory's lock), the others writing and closing. */
const PER_DIRECTORY = 4;
/** Small files extracted and not yet written, at most (by count and by content). */
const QUEUED_FILES = 4096;
const QUEUED_BYTES = 32 * 1024 * 1024;

interface SmallFile {
  readonly absPath: string;
  readonly chunks: readonly Buffer[];
  readonly size: number;
  readonly mode: number;
  readonly mtime: Date;
}

/** The files waiting in one directory, and how many of its writes are in flight. */
interface DirectoryQueue {
  readonly waiting: SmallFile[];
  inFlight: number;
}

/**
 * Network file systems (EFS): small-file writes from several directories in flight at once
 * (CALLS_IN_FLIGHT in all, PER_DIRECTORY per directory) hide each call's latency; a large
 * file is written through its own handle, in order.
 */
export class ParallelTreeWriter implements TreeWriter {
  /** Small files are collected and written later, many at once, from views of their chunks. */
  readonly readsChunksLater = true;
  /** Directories with files waiting or in flight, in the order they were met. */
  private readonly directories = new Map<string, DirectoryQueue>();
  private inFlight = 0;
  private queuedFiles = 0;
  private queuedBytes = 0;
  /** Small files written, and when the first write started: the queue's pace. */
  private writtenFiles = 0;
  private firstWriteAt: number | undefined;
  private failure: { error: unknown } | undefined;
  /** Woken when a write ends (room in the queue, or everything written). */
  private readonly wakers: (() => void)[] = [];

  /**
   * `owner`: who gets every entry created (tree-writer.ts). `signal`: the restore's stop, which
   * ends every wait for the queue (for room, for a linked file, for the last files) with its
   * error. The queue's files of one directory take their turns to be created: on EFS, writing
   * the 4,096 it may hold can take a minute (1,593 took 30 s behind a 5 ms FUSE mount), past
   * the invocation's deadline; `settle` then drops those not started.
   */
  constructor(
    private readonly limit = CALLS_IN_FLIGHT,
    private readonly owner?: Owner,
    private readonly maxQueuedFiles = QUEUED_FILES,
    private readonly budget?: CopyBudget,
    private readonly signal?: AbortSignal,
  ) {}

  beginChunk(): void {}

  endChunk(): undefined {
    return undefined;
  }

  async mkdir(absPath: string): Promise<void> {
    this.rethrow();
    await fs.mkdir(fsPath(absPath), { mode: 0o700 });
  }

  async symlink(target: string, absPath: string, mtime: Date): Promise<void> {
    this.rethrow();
    const at = fsPath(absPath);
    await fs.symlink(fsPath(target), at);
    if (this.owner !== undefined) await fs.lchown(at, this.owner.uid, this.owner.gid);
    await fs.lutimes(at, mtime, mtime);
  }

  async link(existingPath: string, absPath: string): Promise<void> {
    await this.drain(); // the file linked to may still be waiting or in flight
    await fs.link(fsPath(existingPath), fsPath(absPath)).catch((error: unknown) => {
      if (!LINK_REFUSED.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
      copyLinkedFile(fsSync, fsPath(existingPath), fsPath(absPath), this.budget); // rare: blocking calls are fine here
    });
  }

  openFile(absPath: string, size: number, mode: number, mtime: Date): FileSink | Promise<FileSink> {
    this.rethrow();
    if (size <= SMALL_FILE_LIMIT) return new CollectingSink((chunks, collected) => this.queue({ absPath, chunks, size: collected, mode, mtime }));
    return fs.open(fsPath(absPath), FILE_FLAGS, mode).then((handle) => new HandleSink(handle, mode, mtime, this.owner));
  }

  /** Queues a small file; waits only while the queue is full. */
  private queue(file: SmallFile): Promise<void> | undefined {
    this.rethrow();
    const directory = file.absPath.slice(0, file.absPath.lastIndexOf('/'));
    let queue = this.directories.get(directory);
    if (queue === undefined) {
      queue = { waiting: [], inFlight: 0 };
      this.directories.set(directory, queue);
    }
    queue.waiting.push(file);
    this.queuedFiles++;
    this.queuedBytes += file.size;
    this.startWrites();
    if (this.hasRoom()) return undefined;
    return this.waitUntil(() => this.hasRoom());
  }

  /**
   * The time the files queued and in flight still need at the pace of those written so far
   * (before the first is written, as if it were about to be): what `flush` will wait, which a
   * piece of a restore in pieces counts before it stops (behind a 5 ms FUSE mount ~55 files a
   * second: the full queue is ~75 s, and it fills in the first file's time).
   */
  backlogMs(): number {
    if (this.firstWriteAt === undefined) return 0;
    return (this.queuedFiles * (Date.now() - this.firstWriteAt)) / Math.max(1, this.writtenFiles);
  }

  private hasRoom(): boolean {
    return this.queuedFiles < this.maxQueuedFiles && this.queuedBytes < QUEUED_BYTES;
  }

  /** Starts waiting files, directory by directory in the order met, as long as there is room. */
  private startWrites(): void {
    if (this.failure !== undefined) return;
    for (const [directory, queue] of this.directories) {
      if (this.inFlight >= this.limit) return;
      while (queue.waiting.length > 0 && queue.inFlight < PER_DIRECTORY && this.inFlight < this.limit) {
        const file = queue.waiting.shift()!;
        queue.inFlight++;
        this.inFlight++;
        this.firstWriteAt ??= Date.now();
        writeSmallFile(file, this.owner).then(
          () => this.written(directory, queue, file),
          (error: unknown) => {
            this.failure ??= { error };
            this.written(directory, queue, file);
          },
        );
      }
    }
  }

  private written(directory: string, queue: DirectoryQueue, file: SmallFile): void {
    queue.inFlight--;
    this.inFlight--;
    this.queuedFiles--;
    this.queuedBytes -= file.size;
    this.writtenFiles++;
    if (queue.inFlight === 0 && queue.waiting.length === 0) this.directories.delete(directory);
    this.startWrites();
    this.wakeAll();
  }

  private async waitUntil(done: () => boolean): Promise<void> {
    const unregister = onAbort(this.signal, () => this.wakeAll());
    try {
      while (!done() && this.failure === undefined && this.signal?.aborted !== true) await new Promise<void>((resolve) => this.wakers.push(resolve));
    } finally {
      unregister();
    }
    this.rethrow();
    if (!done()) throwIfAborted(this.signal);
  }

  private wakeAll(): void {
    for (const wake of this.wakers.splice(0)) wake();
  }

  flush(): Promise<void> {
    return this.drain();
  }

  /** Drops what has not started, and waits for what is in flight. */
  async settle(): Promise<void> {
    this.failure ??= { error: new Error('the restore was abandoned') };
    for (const queue of this.directories.values()) {
      for (const file of queue.waiting.splice(0)) {
        this.queuedFiles--;
        this.queuedBytes -= file.size;
      }
    }
    while (this.inFlight > 0) await new Promise<void>((resolve) => this.wakers.push(resolve));
  }

  async setAttributes(absPath: string, mode: number, mtime: Date): Promise<void> {
    const at = fsPath(absPath);
    if (this.owner !== undefined) await fs.lchown(at, this.owner.uid, this.owner.gid);
    await fs.chmod(at, mode);
    await fs.utimes(at, mtime, mtime);
  }

  private async drain(): Promise<void> {
    await this.waitUntil(() => this.queuedFiles === 0);
  }

  private rethrow(): void {
    if (this.failure !== undefined) throw this.failure.error;
  }
}

/** Holds a small file's content (views of the decoded stream, which is never reused) until it is queued whole. */
class CollectingSink implements FileSink {
  size = 0;
  private readonly chunks: Buffer[] = [];
  constructor(private readonly queue: (chunks: readonly Buffer[], size: number) => Promise<void> | undefined) {}

  write(bytes: Buffer): undefined {
    this.chunks.push(bytes);
    this.size += bytes.length;
    return undefined;
  }

  finish(): Promise<void> | undefined {
    return this.queue(this.chunks, this.size);
  }

  abandon(): undefined {
    return undefined;
  }
}

/** A large file, written in order at the offsets a HolePlanner gives (long runs of zeros stay holes: holes.ts). */
class HandleSink implements FileSink {
  private readonly holes = new HolePlanner();
  constructor(private readonly handle: fs.FileHandle, private readonly mode: number, private readonly mtime: Date, private readonly owner: Owner | undefined) {}

  get size(): number {
    return this.holes.size;
  }

  async write(bytes: Buffer): Promise<void> {
    const planned: { bytes: Buffer; position: number }[] = [];
    this.holes.plan(bytes, {
      data: (from, length, position) => planned.push({ bytes: bytes.subarray(from, from + length), position }),
      zeros: (length, position) => planned.push({ bytes: Buffer.alloc(length), position }),
    });
    for (const { bytes: piece, position } of planned) {
      await writeWholeAt(this.handle, piece, position);
    }
  }

  async finish(): Promise<void> {
    try {
      if (this.holes.endsInHole) await this.handle.truncate(this.holes.size);
      if (this.owner !== undefined) await this.handle.chown(this.owner.uid, this.owner.gid);
      if (umaskStrips(this.mode)) await this.handle.chmod(this.mode);
      await this.handle.utimes(this.mtime, this.mtime);
    } finally {
      await this.handle.close();
    }
  }

  async abandon(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }
}

async function writeSmallFile({ absPath, chunks, mode, mtime }: SmallFile, owner: Owner | undefined): Promise<void> {
  const handle = await fs.open(fsPath(absPath), FILE_FLAGS, mode);
  try {
    await writeWhole(handle, chunks as Buffer[]);
    if (owner !== undefined) await handle.chown(owner.uid, owner.gid);
    if (umaskStrips(mode)) await handle.chmod(mode);
    await handle.utimes(mtime, mtime);
  } finally {
    await handle.close();
  }
}
