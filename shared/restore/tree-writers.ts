// The file-system side of extraction: extract.ts decides what may be created, a TreeWriter
// creates it, in the order it is told. Files are created with O_EXCL|O_NOFOLLOW (never
// through a link) and their final mode and mtime.
//
// Three writers, for three situations:
// - SyncTreeWriter: synchronous calls on the calling thread. Local disks answer faster than
//   a hop to libuv's pool costs (io-mode.ts); right for small archives.
// - WorkerTreeWriter: the same synchronous calls on two writer threads (one per core, at
//   most two), fed one decoded chunk at a time, so that creating and writing files (kernel
//   time: page-cache copies, inode allocation) runs beside the main thread's parsing and
//   hashing, as `tar -x` runs beside `zstd -d`, and in two directories at once. Failures
//   come back with the chunk's acknowledgement.
// - ParallelTreeWriter: many promise calls in flight, for network file systems (EFS) where
//   each call waits a millisecond.

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { closeSync, constants as fsConstants, fchmodSync, futimesSync, lutimesSync, mkdirSync, openSync, promises as fs, symlinkSync, linkSync, writeSync } from 'node:fs';

/** Files up to this size are collected whole and written in one call in the background (ParallelTreeWriter). */
const SMALL_FILE_LIMIT = 1024 * 1024;
/** Small-file writes in flight at once: overlaps the file system's latency (EFS!). */
const WRITE_CONCURRENCY = 16;
/** Decoded chunks handed to the writer threads and not yet written: bounds memory (2 MiB frames). */
const WORKER_CHUNKS_IN_FLIGHT = 4;
/** Writer threads: two keep file creation going in two directories at once (more would compete with the main thread on 2 cores). */
const WRITER_LANES = Math.min(2, availableParallelism());
/**
 * A writer thread's JavaScript only holds one batch of operations at a time: a small young
 * generation (V8 would size it like the main thread's) takes ~7 MiB per thread off a
 * restore's peak RSS (tiny tree: 211-219 -> 182-202 MiB). A batch cannot approach the old
 * generation's cap; if one did, the thread stops and the restore fails cleanly.
 */
const WRITER_HEAP_LIMITS = { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 64 };
/** Size of the shared buffers chunks are copied into for the worker (a frame; larger chunks get their own). */
const SHARED_BUFFER_BYTES = 2 * 1024 * 1024;
const FILE_FLAGS = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;

/** Where one file's content goes; `write` and `finish` return a promise only when they wait. */
export interface FileSink {
  /** Bytes written so far. */
  readonly size: number;
  write(bytes: Buffer): Promise<void> | undefined;
  /** Sets the file's mode and mtime and closes it (or hands it to a background write). */
  finish(): Promise<void> | undefined;
  /** Closes the file after a failure, without waiting. */
  abandon(): void;
}

/** The process umask, read once: files are created with their final mode, fixed up only where it strips bits. */
const UMASK = process.umask();
const umaskStrips = (mode: number) => (mode & ~UMASK) !== mode;

export interface TreeWriter {
  /** The chunk of the decoded stream that the content passed to file sinks will come from, until the next call. */
  beginChunk(chunk: Buffer): void;
  /** Every write from the current chunk has been issued; may wait for room. */
  endChunk(): Promise<void> | undefined;
  mkdir(absPath: string): Promise<void> | undefined;
  openFile(absPath: string, size: number, mode: number, mtime: Date): FileSink | Promise<FileSink>;
  symlink(target: string, absPath: string, mtime: Date): Promise<void> | undefined;
  /** A hard link to a file created earlier (by this writer). */
  link(existingPath: string, absPath: string): Promise<void> | undefined;
  /** After the last entry: waits for every write in flight and rethrows the first failure; the writer is done. */
  flush(): Promise<void>;
  /** After a failure: waits for every write in flight, failed or not; the writer is done. */
  settle(): Promise<void>;
}

/** Local disks: synchronous calls, four per file, like GNU tar's (io-mode.ts says why). */
export class SyncTreeWriter implements TreeWriter {
  beginChunk(): void {}

  endChunk(): undefined {
    return undefined;
  }

  mkdir(absPath: string): undefined {
    mkdirSync(absPath, { mode: 0o700 });
    return undefined;
  }

  symlink(target: string, absPath: string, mtime: Date): undefined {
    symlinkSync(target, absPath);
    lutimesSync(absPath, mtime, mtime);
    return undefined;
  }

  link(existingPath: string, absPath: string): undefined {
    linkSync(existingPath, absPath);
    return undefined;
  }

  openFile(absPath: string, _size: number, mode: number, mtime: Date): FileSink {
    return new SyncFileSink(openSync(absPath, FILE_FLAGS, mode), mode, mtime);
  }

  async flush(): Promise<void> {}
  async settle(): Promise<void> {}
}

class SyncFileSink implements FileSink {
  size = 0;
  private fd: number | undefined;

  constructor(fd: number, private readonly mode: number, private readonly mtime: Date) {
    this.fd = fd;
  }

  write(bytes: Buffer): undefined {
    for (let written = 0; written < bytes.length; ) written += writeSync(this.fd!, bytes, written, bytes.length - written);
    this.size += bytes.length;
    return undefined;
  }

  finish(): undefined {
    const fd = this.fd!;
    this.fd = undefined;
    try {
      if (umaskStrips(this.mode)) fchmodSync(fd, this.mode);
      futimesSync(fd, this.mtime, this.mtime);
    } finally {
      closeSync(fd);
    }
    return undefined;
  }

  abandon(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/**
 * Network file systems (EFS): a bounded set of small-file writes in flight hides each
 * call's latency; a large file is written through its own handle in order.
 */
export class ParallelTreeWriter implements TreeWriter {
  private readonly pending = new Set<Promise<void>>();
  private failure: unknown;
  constructor(private readonly limit = WRITE_CONCURRENCY) {}

  beginChunk(): void {}

  endChunk(): undefined {
    return undefined;
  }

  async mkdir(absPath: string): Promise<void> {
    await fs.mkdir(absPath, { mode: 0o700 });
  }

  async symlink(target: string, absPath: string, mtime: Date): Promise<void> {
    await fs.symlink(target, absPath);
    await fs.lutimes(absPath, mtime, mtime);
  }

  async link(existingPath: string, absPath: string): Promise<void> {
    await this.drain(); // the file linked to may still be in flight
    await fs.link(existingPath, absPath);
  }

  async openFile(absPath: string, size: number, mode: number, mtime: Date): Promise<FileSink> {
    if (size <= SMALL_FILE_LIMIT) return new CollectingSink((chunks) => this.writeSmall(absPath, chunks, mode, mtime));
    return new HandleSink(await fs.open(absPath, FILE_FLAGS, mode), mode, mtime);
  }

  private async writeSmall(absPath: string, chunks: readonly Buffer[], mode: number, mtime: Date): Promise<void> {
    this.rethrow();
    while (this.pending.size >= this.limit) await Promise.race(this.pending);
    this.rethrow();
    const running: Promise<void> = writeSmallAsync(absPath, chunks, mode, mtime)
      .catch((error: unknown) => {
        this.failure ??= error;
      })
      .finally(() => this.pending.delete(running));
    this.pending.add(running);
  }

  flush(): Promise<void> {
    return this.drain();
  }

  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all(this.pending);
  }

  private async drain(): Promise<void> {
    await this.settle();
    this.rethrow();
  }

  private rethrow(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}

/** Holds a small file's content (views of the decoded stream, which is never reused) for one background write. */
class CollectingSink implements FileSink {
  size = 0;
  private readonly chunks: Buffer[] = [];
  constructor(private readonly write_: (chunks: readonly Buffer[]) => Promise<void>) {}

  write(bytes: Buffer): undefined {
    this.chunks.push(bytes);
    this.size += bytes.length;
    return undefined;
  }

  finish(): Promise<void> {
    return this.write_(this.chunks);
  }

  abandon(): void {}
}

class HandleSink implements FileSink {
  size = 0;
  constructor(private readonly handle: fs.FileHandle, private readonly mode: number, private readonly mtime: Date) {}

  async write(bytes: Buffer): Promise<void> {
    await this.handle.write(bytes);
    this.size += bytes.length;
  }

  async finish(): Promise<void> {
    try {
      if (umaskStrips(this.mode)) await this.handle.chmod(this.mode);
      await this.handle.utimes(this.mtime, this.mtime);
    } finally {
      await this.handle.close();
    }
  }

  abandon(): void {
    this.handle.close().catch(() => undefined);
  }
}

async function writeSmallAsync(absPath: string, chunks: readonly Buffer[], mode: number, mtime: Date): Promise<void> {
  const handle = await fs.open(absPath, FILE_FLAGS, mode);
  try {
    if (chunks.length > 0) await handle.writev(chunks as Buffer[]);
    if (umaskStrips(mode)) await handle.chmod(mode);
    await handle.utimes(mtime, mtime);
  } finally {
    await handle.close();
  }
}


/**
 * One operation for a writer thread: open (the one current file); write a range of the
 * batch's bytes to it; close it (chmod first unless -1, then set its mtime); hard link;
 * close the current file after a failure. (Directories and symlinks are made by the main
 * thread.) A batch sends its operations flattened into one array of strings and numbers
 * (cheap to clone).
 */
type WorkerOp = ['open', string, number] | ['write', number, number] | ['close', number, number] | ['link', string, string] | ['abandon'];

interface WorkerBatch {
  readonly batch: number;
  readonly ops: (string | number)[];
  /** The chunk's bytes; write offsets are relative to it. */
  readonly bytes: SharedArrayBuffer | undefined;
}

interface WorkerReply {
  readonly batch: number;
  /** The first failure, once there has been one; every later batch is skipped. */
  readonly error?: { message: string; code?: string; errno?: number; syscall?: string; path?: string; dest?: string };
}

/**
 * The worker's whole program, run as a CommonJS script with `eval` (so bundling the
 * gateway's code cannot lose a file). `load` is the script's `require`, passed in as an
 * argument: a bundler rewrites `require(...)` calls it can see into helpers that do not
 * exist in the worker. Mirrors SyncTreeWriter call for call, for files and hard links.
 */
function workerMain(load: NodeJS.Require): void {
  const { parentPort } = load('node:worker_threads') as typeof import('node:worker_threads');
  const fsSync = load('node:fs') as typeof import('node:fs');
  const flags = fsSync.constants.O_WRONLY | fsSync.constants.O_CREAT | fsSync.constants.O_EXCL | fsSync.constants.O_NOFOLLOW;
  let fd = -1;
  let failure: WorkerReply['error'];
  parentPort!.on('message', ({ batch, ops, bytes }: WorkerBatch) => {
    if (failure === undefined) {
      const data = bytes === undefined ? undefined : new Uint8Array(bytes);
      const text = (at: number) => ops[at] as string;
      const number = (at: number) => ops[at] as number;
      try {
        for (let i = 0; i < ops.length; ) {
          switch (ops[i]) {
            case 'open':
              fd = fsSync.openSync(text(i + 1), flags, number(i + 2));
              i += 3;
              break;
            case 'write': {
              const offset = number(i + 1);
              const length = number(i + 2);
              for (let written = 0; written < length; ) written += fsSync.writeSync(fd, data!, offset + written, length - written);
              i += 3;
              break;
            }
            case 'close': {
              const closing = fd;
              fd = -1;
              try {
                if (number(i + 1) !== -1) fsSync.fchmodSync(closing, number(i + 1));
                // A Date: Node takes a negative number of seconds (before 1970) for "now".
                const mtime = new Date(number(i + 2) * 1000);
                fsSync.futimesSync(closing, mtime, mtime);
              } finally {
                fsSync.closeSync(closing);
              }
              i += 3;
              break;
            }
            case 'link':
              fsSync.linkSync(text(i + 1), text(i + 2));
              i += 3;
              break;
            case 'abandon':
              if (fd !== -1) fsSync.closeSync(fd);
              fd = -1;
              i += 1;
              break;
            default:
              throw new Error(`unknown operation ${String(ops[i])}`);
          }
        }
      } catch (error) {
        const { message, code, errno, syscall, path, dest } = error as NodeJS.ErrnoException & { dest?: string };
        failure = { message, code, errno, syscall, path, dest };
        if (fd !== -1) fsSync.closeSync(fd);
        fd = -1;
      }
    }
    parentPort!.postMessage({ batch, error: failure } satisfies WorkerReply);
  });
}

const WORKER_SOURCE = `(${workerMain.toString()})(require)`;

/** One writer thread and the operations queued for its next batch. */
interface Lane {
  readonly worker: Worker;
  ops: (string | number)[];
  exited: boolean;
}

/** A decoded chunk handed to the lanes: done when every lane it was posted to has replied. */
interface Batch {
  lanesLeft: number;
  readonly bytes: SharedArrayBuffer | undefined;
}

/**
 * SyncTreeWriter's calls, made on writer threads ("lanes") one decoded chunk at a time.
 * Each directory's files go to one lane (directories are handed out round-robin), so
 * creating files in different directories runs in parallel (a file system serialises
 * creation within one directory) while each lane keeps its own order. Directories and
 * symlinks are created on this thread at once, before anything inside them is queued; a
 * hard link goes to the lane that created its target, after it.
 */
export class WorkerTreeWriter implements TreeWriter {
  private readonly lanes: Lane[];
  /** Directories and symlinks are made here, at once. */
  private readonly onThisThread = new SyncTreeWriter();
  /** The lane of every directory that has held a file, by absolute path. */
  private readonly laneOfDirectory = new Map<string, number>();
  private nextLane = 0;
  private chunk: Buffer | undefined;
  private chunkWritten = false;
  private readonly batches = new Map<number, Batch>();
  private nextBatch = 0;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private stopping = false;
  private readonly spareBuffers: SharedArrayBuffer[] = [];

  constructor(laneCount = WRITER_LANES) {
    this.lanes = Array.from({ length: Math.max(1, laneCount) }, () => this.startLane());
  }

  private startLane(): Lane {
    const lane: Lane = { worker: new Worker(WORKER_SOURCE, { eval: true, resourceLimits: WRITER_HEAP_LIMITS }), ops: [], exited: false };
    lane.worker.on('message', (reply: WorkerReply) => {
      const batch = this.batches.get(reply.batch)!;
      if (--batch.lanesLeft === 0) {
        this.batches.delete(reply.batch);
        if (batch.bytes !== undefined && this.spareBuffers.length < WORKER_CHUNKS_IN_FLIGHT) this.spareBuffers.push(batch.bytes);
      }
      if (reply.error !== undefined) this.failure ??= errnoError(reply.error);
      this.wake?.();
    });
    lane.worker.on('error', (error) => {
      this.failure ??= error;
      this.wake?.();
    });
    lane.worker.on('exit', () => {
      lane.exited = true;
      if (!this.stopping) this.failure ??= new Error('a file-writing thread stopped unexpectedly');
      this.wake?.();
    });
    return lane;
  }

  beginChunk(chunk: Buffer): void {
    this.chunk = chunk;
    this.chunkWritten = false;
  }

  endChunk(): Promise<void> | undefined {
    if (!this.hasQueuedOps()) return undefined;
    this.post();
    return this.batches.size >= WORKER_CHUNKS_IN_FLIGHT ? this.waitFor(WORKER_CHUNKS_IN_FLIGHT - 1) : undefined;
  }

  mkdir(absPath: string): undefined {
    this.throwIfFailed();
    return this.onThisThread.mkdir(absPath);
  }

  openFile(absPath: string, _size: number, mode: number, mtime: Date): FileSink {
    const lane = this.laneFor(absPath);
    this.queue(lane, 'open', absPath, mode);
    return new WorkerFileSink(this, lane, mode, mtime);
  }

  /** For WorkerFileSink. */
  queue(lane: number, ...op: WorkerOp): void {
    this.lanes[lane]!.ops.push(...op);
  }

  symlink(target: string, absPath: string, mtime: Date): undefined {
    this.throwIfFailed();
    return this.onThisThread.symlink(target, absPath, mtime);
  }

  link(existingPath: string, absPath: string): undefined {
    this.queue(this.laneFor(existingPath), 'link', existingPath, absPath);
    return undefined;
  }

  async flush(): Promise<void> {
    if (this.hasQueuedOps()) this.post();
    await this.waitFor(0);
    this.throwIfFailed();
    await this.stop();
  }

  /** Issues what was queued (it was vetted: the tree ends as SyncTreeWriter's would), then closes the open files. */
  async settle(): Promise<void> {
    for (let lane = 0; lane < this.lanes.length; lane++) this.queue(lane, 'abandon');
    this.post(true);
    await this.waitFor(0).catch(() => undefined);
    await this.stop();
  }

  /** Where `bytes` (a view of the current chunk) starts in it. */
  offsetOf(bytes: Buffer): number {
    const chunk = this.chunk!;
    this.chunkWritten = true;
    return bytes.byteOffset - chunk.byteOffset;
  }

  private laneFor(absPath: string): number {
    const directory = absPath.slice(0, absPath.lastIndexOf('/'));
    let lane = this.laneOfDirectory.get(directory);
    if (lane === undefined) {
      lane = this.nextLane;
      this.nextLane = (this.nextLane + 1) % this.lanes.length;
      this.laneOfDirectory.set(directory, lane);
    }
    return lane;
  }

  private post(evenAfterFailure = false): void {
    if (!evenAfterFailure) this.throwIfFailed();
    let bytes: SharedArrayBuffer | undefined;
    if (this.chunkWritten) {
      // One copy into shared memory that is reused: cloning or transferring the decoder's
      // (external) buffer would copy it into fresh pages every time. Every lane reads it.
      const chunk = this.chunk!;
      const spare = this.spareBuffers.findIndex((candidate) => candidate.byteLength >= chunk.length);
      bytes = spare === -1 ? new SharedArrayBuffer(Math.max(chunk.length, SHARED_BUFFER_BYTES)) : this.spareBuffers.splice(spare, 1)[0]!;
      new Uint8Array(bytes, 0, chunk.length).set(chunk);
      this.chunkWritten = false;
    }
    const id = this.nextBatch++;
    const batch: Batch = { lanesLeft: 0, bytes };
    for (const lane of this.lanes) {
      if (lane.ops.length === 0 || lane.exited) continue;
      lane.worker.postMessage({ batch: id, ops: lane.ops, bytes } satisfies WorkerBatch);
      lane.ops = [];
      batch.lanesLeft++;
    }
    if (batch.lanesLeft > 0) this.batches.set(id, batch);
    else if (bytes !== undefined) this.spareBuffers.push(bytes);
  }

  /** Waits until at most `count` batches are in flight; throws the first failure. */
  private async waitFor(count: number): Promise<void> {
    while (this.batches.size > count && this.failure === undefined && !this.lanes.some((lane) => lane.exited)) {
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
    this.throwIfFailed();
  }

  private hasQueuedOps(): boolean {
    return this.lanes.some((lane) => lane.ops.length > 0);
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  private async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.lanes.filter((lane) => !lane.exited).map((lane) => lane.worker.terminate()));
  }
}

class WorkerFileSink implements FileSink {
  size = 0;
  constructor(
    private readonly writer: WorkerTreeWriter,
    private readonly lane: number,
    private readonly mode: number,
    private readonly mtime: Date,
  ) {}

  write(bytes: Buffer): undefined {
    this.writer.queue(this.lane, 'write', this.writer.offsetOf(bytes), bytes.length);
    this.size += bytes.length;
    return undefined;
  }

  finish(): undefined {
    this.writer.queue(this.lane, 'close', umaskStrips(this.mode) ? this.mode : -1, this.mtime.getTime() / 1000);
    return undefined;
  }

  /** The lane closes the file when the writer settles. */
  abandon(): void {}
}

/** The worker's failure as the errno error the same call would have thrown on this thread. */
function errnoError(reported: NonNullable<WorkerReply['error']>): NodeJS.ErrnoException {
  return Object.assign(new Error(reported.message), reported);
}
