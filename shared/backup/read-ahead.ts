// Reads a backup's small files ahead of the archive writer, in the walk's order, so that
// the writer never waits for one file system call after another:
//   - On a local disk, reader threads (reader-thread.ts) make the blocking calls and hash
//     what they read, a run of files at a time, into shared arenas, while this thread
//     encodes, copies and compresses: open/fstat/read/fstat/close cost this thread nothing
//     (a small backup reads on this thread until it is worth starting a thread).
//     While the page cache is cold, a cache warmer keeps reads of the coming files in flight
//     on libuv's pool (cache-warmer.ts), so that the disk serves many at once.
//   - On a network file system (EFS), each call waits about a millisecond: many promise
//     calls are kept in flight (CALLS_IN_FLIGHT, sized by libuv's pool).
// Either way a file is read once, whole, and counts only if it held still (read-run.ts);
// whatever is not read here (large files, databases with companions, files that changed
// while read, errors) is read by the caller the general way, in its turn (live-files.ts).
// Memory is bounded: arenas per reader thread, and on a network file system a number of
// files in flight of at most PROMISE_FILE_LIMIT bytes each.

import crypto, { createHash } from 'node:crypto';
import * as syncFs from 'node:fs';
import { constants as fsConstants, promises as fs } from 'node:fs';
import { Worker } from 'node:worker_threads';

import { CacheWarmer } from './cache-warmer.js';
import { cpuBudget } from '../cpu-budget.js';
import { CALLS_IN_FLIGHT, CAN_CHECK_OPENED_PATHS, isVanished, OWN_FD_LINKS, PARALLEL_ACCESS, type FileAccess, type Maybe, type OpenDirectory } from '../file-access.js';
import { fsPath } from '../raw-name.js';
import { DIGEST_BYTES, META_FIELDS, READ_ELSEWHERE, READ_LINKED, READ_VANISHED, READ_WHOLE, readRun, SETTLED_CTIME_MARGIN_MS } from './read-run.js';
import { ARENA_BYTES, ARENAS_PER_THREAD, READER_THREAD_SOURCE, RUN_PATHS, STATE_ARENAS, STATE_RELEASES, STATE_STOP, type ReaderPart, type ReaderRequest, type ReaderSetup } from './reader-thread.js';
import type { LinkIdentity } from './link-key.js';
import { absPathOf, type TenantWalk, type WalkItem } from './tenant-walk.js';

type FileItem = Extract<WalkItem, { kind: 'file' }>;

/** Walk items per segment on a local disk: one message to a reader thread. */
const LOCAL_RUN = RUN_PATHS;
/** Walk items per segment on a network file system: its files are read all at once. */
const REMOTE_RUN = 16;
/** On a local disk, files read on this thread before reader threads are started (starting one costs ~30 ms). */
const THREAD_THRESHOLD_FILES = 1024;
/**
 * Reader threads: one per CPU of the budget beyond this thread's, at most two. On two cores
 * one reader keeps up (its reads and hashes take ~1.1 s of a 2.1 s large backup) as fast as
 * two, and a second costs ~30 MiB of peak RSS (a V8 isolate, three arenas); the frames
 * compress on libuv's threads beside them either way.
 */
function readerThreads(): number {
  return Math.max(1, Math.min(2, cpuBudget() - 1));
}
/**
 * Small files are the exception: there a reader spends ~7 µs of system calls per file and
 * sets the pace (200,000 files under 1 KiB: one reader 2.04 s busy, this thread half idle).
 * Once this many files have been read, if they averaged under SMALL_FILE_BYTES, a second
 * reader starts even on two cores (wall 2.06-2.34 -> 1.90-2.00 s, +15 MiB peak RSS). Not for
 * larger files: there it buys nothing and costs ~30 MiB (large tree: peak RSS 165 -> 200 MiB).
 */
const SMALL_FILES_PROBE = 8192;
const SMALL_FILE_BYTES = 16 * 1024;
function maxReaderThreads(): number {
  return Math.max(readerThreads(), Math.min(2, cpuBudget()));
}
/** Largest file read ahead on a network file system (bounds what is in flight: CALLS_IN_FLIGHT of these). */
const PROMISE_FILE_LIMIT = 256 * 1024;

/** What a reader found for a stretch [from, to) of a segment's paths. */
export interface ReadPart {
  readonly from: number;
  readonly to: number;
  /** READ_WHOLE, READ_VANISHED, READ_ELSEWHERE or READ_LINKED (read-run.ts). */
  outcome(slot: number): number;
  /** For READ_WHOLE: the content (valid until the segment moves past this part), its mode, mtime and SHA-256. */
  content(slot: number): Buffer;
  mode(slot: number): number;
  mtimeMs(slot: number): number;
  /** For READ_LINKED: what tells the file from others (link-key.ts); mode and mtime as for READ_WHOLE. */
  linkIdentity(slot: number): LinkIdentity;
  /** The content's SHA-256, 32 bytes at `sha256Offset(slot)` in `sha256Bytes(slot)` (no string, no copy). */
  sha256Bytes(slot: number): Uint8Array;
  sha256Offset(slot: number): number;
  release(): void;
}

/**
 * A run of walk items, and the reads of those of its files that are read ahead (`slots[i]`
 * is the index of item i's path in `paths`, or -1). Parts arrive in order; asking for a slot
 * releases the parts before it.
 */
export class Segment {
  readonly slots: Int32Array;
  readonly paths: string[] = [];
  private readonly parts: ReadPart[] = [];
  private failure: { error: unknown } | undefined;
  private wake: (() => void) | undefined;
  private closed = false;
  /** For readers that read when asked rather than ahead. */
  readOnDemand: ((segment: Segment, slot: number) => ReadPart) | undefined;

  constructor(
    readonly items: readonly WalkItem[],
    readAhead: (item: FileItem) => boolean,
  ) {
    this.slots = new Int32Array(items.length).fill(-1);
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (item.kind === 'file' && readAhead(item)) this.slots[i] = this.paths.push(absPathOf(item)) - 1;
    }
  }

  /** The part that holds `slot` (asked for in increasing order). */
  partOf(slot: number): Maybe<ReadPart> {
    for (;;) {
      const part = this.parts[0];
      if (part !== undefined && slot >= part.to) {
        part.release();
        this.parts.shift();
        continue;
      }
      if (part !== undefined) return part;
      if (this.failure !== undefined) throw this.failure.error;
      if (this.readOnDemand !== undefined) {
        const read = this.readOnDemand(this, slot);
        this.parts.push(read);
        return read;
      }
      return this.arrival(slot);
    }
  }

  /** The part that holds `slot`, once it arrives. (Its own method: closures in `partOf` would cost every call a context.) */
  private arrival(slot: number): Promise<ReadPart> {
    return new Promise<void>((resolve) => (this.wake = resolve)).then(() => {
      this.wake = undefined;
      return this.partOf(slot);
    });
  }

  deliver(part: ReadPart): void {
    if (this.closed) part.release();
    else this.parts.push(part);
    this.wake?.();
  }

  fail(error: unknown): void {
    this.failure ??= { error };
    this.wake?.();
  }

  /** Done with the segment: every part is released, and any that still arrives. */
  close(): void {
    this.closed = true;
    for (const part of this.parts.splice(0)) part.release();
  }
}

/** Reads segments' files: ahead (threads, promises) or when asked (this thread). */
interface Reader {
  /** Segments handed out and not yet closed that may be read at once. */
  readonly window: number;
  /** Reader threads started so far. */
  readonly threadCount: number;
  start(segment: Segment): void;
  close(): Promise<void>;
}

/** The walk in segments, each segment's reads started `window` segments before it is needed. */
export class ReadAhead {
  private readonly queue: Segment[] = [];
  private walkDone = false;
  private current: Segment | undefined;

  constructor(
    private readonly walk: TenantWalk,
    private readonly reader: Reader,
    private readonly readAhead: (item: FileItem) => boolean,
    private readonly run: number,
  ) {}

  /** The next segment (the previous one is closed); undefined at the end of the walk. */
  next(): Maybe<Segment | undefined> {
    this.current?.close();
    this.current = undefined;
    const filled = this.fill();
    if (filled instanceof Promise) return filled.then(() => this.take());
    return this.take();
  }

  private take(): Segment | undefined {
    this.current = this.queue.shift();
    return this.current;
  }

  private fill(): Maybe<void> {
    while (!this.walkDone && this.queue.length < this.reader.window) {
      const items = this.walk.next(this.run);
      if (items instanceof Promise) return items.then((run) => this.add(run)).then(() => this.fill());
      this.add(items);
    }
    return undefined;
  }

  private add(items: WalkItem[]): void {
    if (items.length === 0) {
      this.walkDone = true;
      return;
    }
    const segment = new Segment(items, this.readAhead);
    if (segment.paths.length > 0) this.reader.start(segment);
    this.queue.push(segment);
  }

  /** Reader threads started so far (0: read on this thread, or with promise calls). */
  get readerThreads(): number {
    return this.reader.threadCount;
  }

  /** Stops the readers; segments not yet read are dropped. */
  async close(): Promise<void> {
    this.current?.close();
    for (const segment of this.queue.splice(0)) segment.close();
    await this.reader.close();
  }
}

export interface ReadAheadOptions {
  /** On a local disk, files read on this thread before reader threads start. @default 1,024 */
  readonly threadThresholdFiles?: number;
  /** Reader threads on a local disk. @default the CPU budget less one, from 1 to 2 */
  readonly threads?: number;
  /** Reader threads once the files read turn out small (SMALL_FILE_BYTES). @default `threads` if given, else up to 2 within the CPU budget */
  readonly maxThreads?: number;
  /** Files read before deciding on more threads. @default SMALL_FILES_PROBE */
  readonly smallFilesProbe?: number;
  /** The page cache counts as cold while reader threads wait longer than this per file (0: always). @default 0.05 */
  readonly coldMsPerFile?: number;
  /** Files warmed at once while it is cold (cache-warmer.ts). @default WARM_CALLS, from libuv's pool */
  readonly warmCalls?: number;
}

/** The read-ahead for a tenant on the file system `access` is for; `readAhead` says which files to read ahead. */
export function readAheadFor(walk: TenantWalk, access: FileAccess, readAhead: (item: FileItem) => boolean, options: ReadAheadOptions = {}): ReadAhead {
  if (access.kind === 'parallel') return new ReadAhead(walk, new PromiseReader(), readAhead, REMOTE_RUN);
  const reader = new ThisThreadThenThreads(options.threadThresholdFiles ?? THREAD_THRESHOLD_FILES, () => new ThreadReader(options));
  return new ReadAhead(walk, reader, readAhead, LOCAL_RUN);
}

// ---------------------------------------------------------------------------------------
// Arena parts: what readRun recorded, on this thread or a reader thread.

/** An arena and readRun's records of the files in it, for RUN_PATHS files. */
class ArenaRecords {
  readonly meta: Float64Array;
  readonly digests: Buffer;

  constructor(
    readonly content: Buffer,
    metaBuffer: ArrayBufferLike = new ArrayBuffer(RUN_PATHS * META_FIELDS * Float64Array.BYTES_PER_ELEMENT),
    digestBuffer: ArrayBufferLike = new ArrayBuffer(RUN_PATHS * DIGEST_BYTES),
  ) {
    this.meta = new Float64Array(metaBuffer);
    this.digests = Buffer.from(digestBuffer);
  }
}

class ArenaPart implements ReadPart {
  private readonly meta: Float64Array;
  private readonly digestBytes: Buffer;
  private readonly arena: Buffer;

  constructor(
    readonly from: number,
    readonly to: number,
    records: ArenaRecords,
    private readonly onRelease: () => void,
  ) {
    this.meta = records.meta;
    this.digestBytes = records.digests;
    this.arena = records.content;
  }

  outcome(slot: number): number {
    return this.meta[(slot - this.from) * META_FIELDS]!;
  }

  content(slot: number): Buffer {
    const at = (slot - this.from) * META_FIELDS;
    const offset = this.meta[at + 4]!;
    return this.arena.subarray(offset, offset + this.meta[at + 1]!);
  }

  mode(slot: number): number {
    return this.meta[(slot - this.from) * META_FIELDS + 2]!;
  }

  mtimeMs(slot: number): number {
    return this.meta[(slot - this.from) * META_FIELDS + 3]!;
  }

  linkIdentity(slot: number): LinkIdentity {
    const at = (slot - this.from) * META_FIELDS;
    return { ino: this.meta[at + 4]!, size: this.meta[at + 1]!, mtimeMs: this.meta[at + 3]!, ctimeMs: this.meta[at + 5]! };
  }

  sha256Bytes(): Uint8Array {
    return this.digestBytes;
  }

  sha256Offset(slot: number): number {
    return (slot - this.from) * DIGEST_BYTES;
  }

  release(): void {
    this.onRelease();
  }
}

const oneShotHash = (crypto as { hash?: (algorithm: string, data: Uint8Array, encoding: 'binary') => string }).hash;

function digestInto(bytes: Uint8Array, into: Buffer, at: number): void {
  into.write(oneShotHash !== undefined ? oneShotHash('sha256', bytes, 'binary') : createHash('sha256').update(bytes).digest('binary'), at, 'latin1');
}

/**
 * The first arena of a ThisThreadReader: it doubles, up to ARENA_BYTES, each time a part
 * does not fit. A tenant of a few small files needs a few KiB, and `backup --all` over
 * thousands of them made V8 run a full collection every few tenants when each allocated
 * ARENA_BYTES at once (V8 starts one per ~64 MiB of memory outside its heap).
 */
const FIRST_ARENA_BYTES = 64 * 1024;

/** readRun's `fdLinks`: the procfs prefix it opens files through, each directory checked as file-access.ts `isOpenedAt` checks; '' where there is no procfs. */
const FD_LINKS_TO_CHECK = CAN_CHECK_OPENED_PATHS ? OWN_FD_LINKS : '';

/** Reads on this thread, when a slot is asked for, into one arena reused part after part. */
class ThisThreadReader implements Reader {
  readonly window = 1;
  readonly threadCount = 0;
  private records: ArenaRecords | undefined;

  /** `onRead` hears how many files (and bytes) each part held. */
  constructor(private readonly onRead?: (files: number, bytes: number) => void) {}

  start(segment: Segment): void {
    segment.readOnDemand = (asking, slot) => this.read(asking, slot);
  }

  private read(segment: Segment, slot: number): ReadPart {
    for (;;) {
      // The previous part has been released (parts are read one at a time, in order).
      const records = (this.records ??= new ArenaRecords(Buffer.allocUnsafeSlow(FIRST_ARENA_BYTES)));
      const count = readRun(syncFs, digestInto, segment.paths, slot, segment.paths.length, records.content, records.meta, records.digests, ARENA_BYTES, FD_LINKS_TO_CHECK, SETTLED_CTIME_MARGIN_MS);
      // Stopped short for room: a larger arena next time (the part keeps this one).
      if (slot + count < segment.paths.length && records.content.length < ARENA_BYTES) {
        this.records = new ArenaRecords(Buffer.allocUnsafeSlow(Math.min(records.content.length * 2, ARENA_BYTES)));
      }
      if (count === 0) continue; // the file did not fit in the whole arena
      this.onRead?.(count, bytesRead(records.meta, count));
      return new ArenaPart(slot, slot + count, records, () => undefined);
    }
  }

  async close(): Promise<void> {}
}

/** A reader thread with its arenas. */
class ReaderThread {
  private readonly worker: Worker;
  private readonly state: Int32Array;
  private readonly arenas: ArenaRecords[];
  private readonly pending = new Map<number, { readonly segment: Segment; readonly warmed: boolean }>();
  private nextRequest = 0;
  private failure: { error: unknown } | undefined;
  private stopping = false;
  /** The thread runs (starting one takes ~30-60 ms, which the backup's thread spends reading itself). */
  online = false;

  /** `onRead` hears how long each part of a segment not warmed took to read. */
  constructor(private readonly onRead: (readMs: number, files: number, bytes: number) => void) {
    const shared = (bytes: number) => Array.from({ length: ARENAS_PER_THREAD }, () => new SharedArrayBuffer(bytes));
    const arenas = shared(ARENA_BYTES);
    const metas = shared(RUN_PATHS * META_FIELDS * Float64Array.BYTES_PER_ELEMENT);
    const digests = shared(RUN_PATHS * DIGEST_BYTES);
    const stateBuffer = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT * (STATE_ARENAS + ARENAS_PER_THREAD));
    this.state = new Int32Array(stateBuffer);
    this.arenas = arenas.map((arena, i) => new ArenaRecords(Buffer.from(arena), metas[i], digests[i]));
    const setup: ReaderSetup = { arenas, metas, digests, state: stateBuffer, maxFileBytes: ARENA_BYTES, fdLinks: FD_LINKS_TO_CHECK, ctimeMarginMs: SETTLED_CTIME_MARGIN_MS };
    this.worker = new Worker(READER_THREAD_SOURCE, { eval: true, workerData: setup, resourceLimits: READER_HEAP_LIMITS });
    this.worker.once('online', () => (this.online = true));
    this.worker.on('message', (part: ReaderPart) => this.received(part));
    this.worker.on('error', (error) => this.failAll(error));
    this.worker.on('exit', () => {
      if (!this.stopping) this.failAll(new Error('a file-reading thread stopped unexpectedly'));
    });
  }

  /** `warmed`: its files are being brought into the page cache meanwhile (cache-warmer.ts). */
  submit(segment: Segment, warmed: boolean): void {
    if (this.failure !== undefined) {
      segment.fail(this.failure.error);
      return;
    }
    const request = this.nextRequest++;
    this.pending.set(request, { segment, warmed });
    this.worker.postMessage({ request, paths: segment.paths.join('\0') } satisfies ReaderRequest);
  }

  private received({ request, from, to, arena, readMs }: ReaderPart): void {
    const pending = this.pending.get(request);
    if (to === pending?.segment.paths.length) this.pending.delete(request);
    const records = this.arenas[arena]!;
    if (pending?.warmed === false) this.onRead(readMs, to - from, bytesRead(records.meta, to - from));
    const part = new ArenaPart(from, to, records, () => this.releaseArena(arena));
    if (pending === undefined) part.release();
    else pending.segment.deliver(part);
  }

  private releaseArena(arena: number): void {
    Atomics.store(this.state, STATE_ARENAS + arena, 0);
    Atomics.add(this.state, STATE_RELEASES, 1);
    Atomics.notify(this.state, STATE_RELEASES);
  }

  private failAll(error: unknown): void {
    this.failure ??= { error };
    for (const { segment } of this.pending.values()) segment.fail(error);
    this.pending.clear();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    Atomics.store(this.state, STATE_STOP, 1);
    Atomics.add(this.state, STATE_RELEASES, 1);
    Atomics.notify(this.state, STATE_RELEASES);
    await this.worker.terminate();
  }
}

/**
 * A reader thread's JavaScript holds one run of paths and its results at a time, but makes
 * short-lived objects per file (two Stats with four Dates each on Node 20, a digest): a young
 * generation of 4 MiB scavenges half as often as one of 2 MiB (reader GC on 200,000 tiny
 * files 270 -> ~90 ms; 8 MiB saved ~25 ms more for ~10 MiB more peak RSS).
 */
const READER_HEAP_LIMITS = { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 64 };

/** Bytes of the files read whole among the first `files` records of `meta`. */
function bytesRead(meta: Float64Array, files: number): number {
  let bytes = 0;
  for (let at = 0; at < files * META_FIELDS; at += META_FIELDS) if (meta[at] === READ_WHOLE) bytes += meta[at + 1]!;
  return bytes;
}

/**
 * The page cache counts as cold while a reader thread takes longer than this per file, and
 * per byte beyond the first, to read and hash files (warm, a small file's five calls take
 * 5-10 µs, and content is copied and hashed at well over 200 MB/s). Not counted: time the
 * thread waited for a CPU (reader-thread.ts), so that a busy machine, where warming would
 * only add work, is not taken for a cold cache.
 */
const COLD_MS_PER_FILE = 0.05;
const COLD_MS_PER_BYTE = 5e-6;
/** Parts in a row that must be slow before the cache counts as cold (one can be slow by chance: a scavenge, a page fault). */
const COLD_PARTS = 2;
/** While the cache is cold, one segment in this many is read without warming, to see whether it still is. */
const PROBE_EVERY = 8;

/**
 * Reader threads, a segment each in turn. While the page cache is cold (the reader threads
 * wait on the disk), a cache warmer keeps reads of the coming segments' files in flight.
 */
class ThreadReader implements Reader {
  private readonly threads: ReaderThread[];
  private next = 0;
  private readonly warmer: CacheWarmer;
  private slowParts = 0;
  private coldSegments = 0;
  private readonly maxThreads: number;
  /** Files (and their bytes) read so far, until more threads have been decided on. */
  private probedFiles = 0;
  private probedBytes = 0;
  private readonly onRead: (readMs: number, files: number, bytes: number) => void;

  constructor(private readonly options: ReadAheadOptions) {
    this.warmer = new CacheWarmer(options.warmCalls);
    const coldMsPerFile = options.coldMsPerFile ?? COLD_MS_PER_FILE;
    this.onRead = (readMs, files, bytes) => {
      const slow = coldMsPerFile === 0 || readMs > files * coldMsPerFile + bytes * COLD_MS_PER_BYTE;
      this.slowParts = slow ? this.slowParts + 1 : 0;
      this.probe(files, bytes);
    };
    const count = Math.max(1, options.threads ?? readerThreads());
    this.maxThreads = Math.max(count, options.maxThreads ?? (options.threads ?? maxReaderThreads()));
    this.threads = Array.from({ length: count }, () => new ReaderThread(this.onRead));
  }

  /** Two segments per thread: one it reads while this thread archives another. */
  get window(): number {
    return 2 * this.threads.length + 1;
  }

  get online(): boolean {
    return this.threads[0]!.online;
  }

  get threadCount(): number {
    return this.threads.length;
  }

  /** Counts files read (by any reader) towards the decision on more threads. */
  probe(files: number, bytes: number): void {
    if (this.threads.length >= this.maxThreads) return;
    this.probedFiles += files;
    this.probedBytes += bytes;
    if (this.probedFiles < (this.options.smallFilesProbe ?? SMALL_FILES_PROBE)) return;
    if (this.probedBytes < this.probedFiles * SMALL_FILE_BYTES) this.threads.push(new ReaderThread(this.onRead));
    this.probedFiles = this.probedBytes = 0;
  }

  start(segment: Segment): void {
    const warm = this.slowParts >= COLD_PARTS && this.warmer.enabled && ++this.coldSegments % PROBE_EVERY !== 0;
    if (warm) this.warmer.warm(segment.paths);
    this.threads[this.next]!.submit(segment, warm);
    this.next = (this.next + 1) % this.threads.length;
  }

  async close(): Promise<void> {
    await Promise.all([this.warmer.stop(), ...this.threads.map((thread) => thread.stop())]);
  }
}

/**
 * This thread until `thresholdFiles` files have been handed out; then reader threads are
 * started, and take over once they run (this thread reads on meanwhile rather than wait).
 */
class ThisThreadThenThreads implements Reader {
  private readonly here = new ThisThreadReader((files, bytes) => this.threads?.probe(files, bytes));
  private threads: ThreadReader | undefined;
  private files = 0;

  constructor(
    private readonly thresholdFiles: number,
    private readonly startThreads: () => ThreadReader,
  ) {}

  private get current(): Reader {
    return this.threads?.online === true ? this.threads : this.here;
  }

  get window(): number {
    return this.current.window;
  }

  get threadCount(): number {
    return this.threads?.threadCount ?? 0;
  }

  start(segment: Segment): void {
    this.files += segment.paths.length;
    if (this.threads === undefined && this.files > this.thresholdFiles) this.threads = this.startThreads();
    this.current.start(segment);
  }

  async close(): Promise<void> {
    await this.threads?.close();
  }
}

// ---------------------------------------------------------------------------------------
// Promise calls, many in flight: network file systems.

const READ_FLAGS = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK;

interface PromiseRead {
  readonly outcome: number;
  readonly content?: Buffer;
  readonly mode?: number;
  readonly mtimeMs?: number;
  readonly linkIdentity?: LinkIdentity;
}

class PromisePart implements ReadPart {
  readonly from = 0;
  readonly to: number;
  private readonly digests: (Buffer | undefined)[];

  constructor(private readonly reads: readonly PromiseRead[]) {
    this.to = reads.length;
    this.digests = reads.map((read) => (read.content === undefined ? undefined : createHash('sha256').update(read.content).digest()));
  }

  outcome(slot: number): number {
    return this.reads[slot]!.outcome;
  }

  content(slot: number): Buffer {
    return this.reads[slot]!.content!;
  }

  mode(slot: number): number {
    return this.reads[slot]!.mode!;
  }

  mtimeMs(slot: number): number {
    return this.reads[slot]!.mtimeMs!;
  }

  linkIdentity(slot: number): LinkIdentity {
    return this.reads[slot]!.linkIdentity!;
  }

  sha256Bytes(slot: number): Uint8Array {
    return this.digests[slot]!;
  }

  sha256Offset(): number {
    return 0;
  }

  release(): void {}
}

/** Every file of a segment read at once with promise calls; `window` segments at a time keep CALLS_IN_FLIGHT files in flight. */
class PromiseReader implements Reader {
  readonly window = Math.max(1, Math.floor(CALLS_IN_FLIGHT / REMOTE_RUN)) + 1;
  readonly threadCount = 0;

  start(segment: Segment): void {
    readInDirectories(segment.paths).then(
      (reads) => segment.deliver(new PromisePart(reads)),
      (error: unknown) => segment.fail(error),
    );
  }

  async close(): Promise<void> {}
}

/**
 * Reads each of `paths` (real paths) once, opened through its directory as readRun does: each
 * directory opened and checked once (file-access.ts `openDirectory`), its files opened through
 * its procfs link. A directory that vanished or was swapped for a symlink: its files vanished.
 */
async function readInDirectories(paths: readonly string[]): Promise<PromiseRead[]> {
  const byDirectory = new Map<string, number[]>();
  paths.forEach((path, index) => {
    const parent = path.slice(0, path.lastIndexOf('/'));
    const indexes = byDirectory.get(parent);
    if (indexes === undefined) byDirectory.set(parent, [index]);
    else indexes.push(index);
  });
  const reads = new Array<PromiseRead>(paths.length);
  await Promise.all(
    [...byDirectory].map(async ([parent, indexes]) => {
      let directory: OpenDirectory;
      try {
        directory = await PARALLEL_ACCESS.openDirectory(parent);
      } catch (error) {
        const outcome = isVanished(error) || (error as NodeJS.ErrnoException).code === 'ELOOP' ? READ_VANISHED : READ_ELSEWHERE;
        for (const index of indexes) reads[index] = { outcome };
        return;
      }
      try {
        await Promise.all(indexes.map(async (index) => (reads[index] = await readOnce(`${directory.path}/${paths[index]!.slice(parent.length + 1)}`))));
      } finally {
        await directory.close();
      }
    }),
  );
  return reads;
}

/** `openPath`: the file's name under its open directory's procfs link (its real path without procfs). */
async function readOnce(openPath: string): Promise<PromiseRead> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(fsPath(openPath), READ_FLAGS);
  } catch (error) {
    return { outcome: isVanished(error) || (error as NodeJS.ErrnoException).code === 'ELOOP' ? READ_VANISHED : READ_ELSEWHERE };
  }
  try {
    const before = await handle.stat();
    if (!before.isFile()) return { outcome: READ_VANISHED };
    if (before.nlink > 1) return { outcome: READ_LINKED, mode: before.mode & 0o7777, mtimeMs: before.mtimeMs, linkIdentity: { ino: before.ino, size: before.size, mtimeMs: before.mtimeMs, ctimeMs: before.ctimeMs } };
    if (before.size > PROMISE_FILE_LIMIT) return { outcome: READ_ELSEWHERE };
    const content = Buffer.allocUnsafe(before.size);
    let got = 0;
    while (got < content.length) {
      const { bytesRead } = await handle.read(content, got, content.length - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    const after = await handle.stat();
    if (!after.isFile()) return { outcome: READ_VANISHED };
    const stable = got === before.size && after.size === before.size && after.mtimeMs === before.mtimeMs && after.ino === before.ino;
    if (!stable) return { outcome: READ_ELSEWHERE };
    return { outcome: READ_WHOLE, content, mode: after.mode & 0o7777, mtimeMs: after.mtimeMs };
  } catch {
    return { outcome: READ_ELSEWHERE }; // the general read will meet the error again, and report it
  } finally {
    await handle.close().catch(() => undefined);
  }
}
