// Large archives on local disks: SyncTreeWriter's calls, made on writer threads fed one
// decoded chunk at a time, so that creating and writing files (kernel time: page-cache
// copies, inode allocation) runs beside the main thread's parsing and hashing, as `tar -x`
// runs beside `zstd -d`, and in two directories at once. Failures come back with the
// chunk's acknowledgement. The threads run writer-thread.ts.

import { Worker } from 'node:worker_threads';

import { copyBytes } from '../archive/zstd-encoder.js';
import { cpuBudget } from '../cpu-budget.js';
import { fsPath } from '../raw-name.js';
import { PlannedFile, type HoleWrites } from './holes.js';
import { SyncTreeWriter } from './sync-tree-writer.js';
import { umaskStrips, type CopyBudget, type FileSink, type Owner, type TreeWriter } from './tree-writer.js';
import { WRITER_THREAD_SOURCE, type WorkerBatch, type WorkerOp, type WorkerReply } from './writer-thread.js';

/** Decoded chunks handed to the writer threads and not yet written: bounds memory (2 MiB frames). */
const WORKER_CHUNKS_IN_FLIGHT = 4;
/** Writer threads: two keep file creation going in two directories at once (more would compete with the main thread on 2 cores); fewer on a budget of one CPU. */
const MAX_WRITER_LANES = 2;
/**
 * A writer thread's JavaScript only holds one batch of operations at a time: a small young
 * generation (V8 would size it like the main thread's) takes ~7 MiB per thread off a
 * restore's peak RSS (tiny tree: 211-219 -> 182-202 MiB). A batch cannot approach the old
 * generation's cap; if one did, the thread stops and the restore fails cleanly.
 */
const WRITER_HEAP_LIMITS = { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 64 };
/** Size of the shared buffers chunks are copied into for the worker (a frame; larger chunks get their own). */
const SHARED_BUFFER_BYTES = 2 * 1024 * 1024;

/** One writer thread and the operations queued for its next batch. */
interface Lane {
  readonly worker: Worker;
  ops: (string | number | Buffer)[];
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
  /** `endChunk` copies what the chunk's writes need into shared memory. */
  readonly readsChunksLater = false;
  private readonly lanes: Lane[];
  /** Directories and symlinks are made here, at once. */
  private readonly onThisThread: SyncTreeWriter;
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

  /** `owner`: who gets every entry created (tree-writer.ts). */
  constructor(
    laneCount = Math.min(MAX_WRITER_LANES, cpuBudget()),
    private readonly owner?: Owner,
    private readonly budget?: CopyBudget,
  ) {
    this.onThisThread = new SyncTreeWriter(owner, budget);
    this.lanes = Array.from({ length: Math.max(1, laneCount) }, () => this.startLane());
  }

  private startLane(): Lane {
    const lane: Lane = { worker: new Worker(WRITER_THREAD_SOURCE, { eval: true, resourceLimits: WRITER_HEAP_LIMITS, workerData: this.budget }), ops: [], exited: false };
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
    this.queue(lane, 'open', fsPath(absPath), mode);
    return new WorkerFileSink(this, lane, mode, mtime, this.owner);
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
    this.queue(this.laneFor(existingPath), 'link', fsPath(existingPath), fsPath(absPath));
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

  /** Once flushed, on this thread (the writer threads are gone). */
  setAttributes(absPath: string, mode: number, mtime: Date): undefined {
    return this.onThisThread.setAttributes(absPath, mode, mtime);
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
      // (copyBytes: a set into shared memory is V8's word-at-a-time relaxed_memmove.)
      copyBytes(Buffer.from(bytes, 0, chunk.length), 0, chunk);
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

/** Plans its writes here (long runs of zeros stay holes: holes.ts); its lane makes them. */
class WorkerFileSink extends PlannedFile implements FileSink {
  protected readonly writes: HoleWrites = {
    // Only content that is written makes the chunk go to the threads.
    data: (from, length, position) => this.writer.queue(this.lane, 'write', this.writer.offsetOf(this.bytes!) + from, length, position),
    zeros: (length, position) => this.writer.queue(this.lane, 'zeros', length, position),
  };

  constructor(
    private readonly writer: WorkerTreeWriter,
    private readonly lane: number,
    private readonly mode: number,
    private readonly mtime: Date,
    private readonly owner: Owner | undefined,
  ) {
    super();
  }

  finish(): undefined {
    if (this.holes.endsInHole) this.writer.queue(this.lane, 'extend', this.holes.size);
    this.writer.queue(this.lane, 'close', umaskStrips(this.mode) ? this.mode : -1, this.mtime.getTime() / 1000, this.owner?.uid ?? -1, this.owner?.gid ?? -1);
    return undefined;
  }

  /** The lane closes the file when the writer settles. */
  abandon(): undefined {
    return undefined;
  }
}

/** The worker's failure as the errno error the same call would have thrown on this thread. */
function errnoError(reported: NonNullable<WorkerReply['error']>): NodeJS.ErrnoException {
  return Object.assign(new Error(reported.message), reported);
}
