// The program of a reader thread (read-ahead.ts), and the messages it exchanges with the
// backup's thread. A reader thread reads runs of small files with readRun (read-run.ts)
// into content arenas it shares with the backup's thread, and posts what it read, one
// message per filled arena: the walk's thread never waits for a file system call on a local
// disk, and the SHA-256 of every such file is computed here too.
//
// Arenas are SharedArrayBuffers the backup's thread allocates once (ARENAS_PER_THREAD per
// thread); a flag per arena says whether the reader may fill it, and the backup's thread
// clears it once it has copied the arena's files into the archive. A reader with no free
// arena waits for one (Atomics.wait), so memory is bounded by the arenas whatever the tree.
//
// It runs as a CommonJS script given to the Worker as source text (`eval`), like the restore's
// writer threads (restore/writer-thread.ts): no file path has to be resolved at run time, so
// it works unchanged from the CLI's bundle and from each Lambda function's bundle. Neither
// function below declares an inner function or class, so a bundler that keeps names (the
// functions' esbuild, minify + keepNames) adds nothing to their text that the thread lacks.

import { readRun } from './read-run.js';

/** Content arenas per reader thread: one being filled, one posted, one being archived. */
export const ARENAS_PER_THREAD = 3;
/** Bytes per arena: files larger than this are read by the backup's thread. */
export const ARENA_BYTES = 4 * 1024 * 1024;
/** Most paths in one request (the records beside each arena are sized for this many). */
export const RUN_PATHS = 256;

/** Indices into a reader thread's shared state (an Int32Array): stop flag, release counter, then one flag per arena (1: in use). */
export const STATE_STOP = 0;
export const STATE_RELEASES = 1;
export const STATE_ARENAS = 2;

export interface ReaderSetup {
  readonly arenas: readonly SharedArrayBuffer[];
  /** Per arena, readRun's records of the files in it: RUN_PATHS × META_FIELDS numbers, then RUN_PATHS digests. */
  readonly metas: readonly SharedArrayBuffer[];
  readonly digests: readonly SharedArrayBuffer[];
  readonly state: SharedArrayBuffer;
  readonly maxFileBytes: number;
  /** readRun's `fdLinks`. */
  readonly fdLinks: string;
  /** readRun's `ctimeMarginMs`. */
  readonly ctimeMarginMs: number;
}

/** A run of paths to read, in order, joined by NUL (which no path holds): one string is copied whole, an array of them one by one. */
export interface ReaderRequest {
  readonly request: number;
  readonly paths: string;
}

/** What one arena holds of a request: paths [from, to), their content in arena `arena`, their records beside it (indexed from 0 for `from`). */
export interface ReaderPart {
  readonly request: number;
  readonly from: number;
  readonly to: number;
  readonly arena: number;
  /**
   * Milliseconds spent reading and hashing them, less the time the thread waited for a CPU
   * (the kernel's run queue): the calls' own cost and how long the file system made it wait.
   */
  readonly readMs: number;
}

/**
 * Nanoseconds the calling thread has spent runnable but waiting for a CPU (the run queue,
 * /proc/thread-self/schedstat), or -1 where the kernel does not say. Subtracted from a part's
 * read time, a busy machine is not taken for a cold page cache.
 */
export function runQueueNanoseconds(fs: { readFileSync(path: string, encoding: 'latin1'): string }): number {
  try {
    const queued = Number(fs.readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ')[1]);
    return Number.isFinite(queued) && queued >= 0 ? queued : -1;
  } catch {
    return -1;
  }
}

/** The reader thread's whole program; `load` is its `require`, `read` the text of readRun, `queued` of runQueueNanoseconds. */
function readerMain(load: NodeJS.Require, read: typeof readRun, queued: typeof runQueueNanoseconds): void {
  const { parentPort, workerData } = load('node:worker_threads') as typeof import('node:worker_threads');
  const fs = load('node:fs') as typeof import('node:fs');
  const crypto = load('node:crypto') as typeof import('node:crypto');
  const { arenas, metas, digests, state: stateBuffer, maxFileBytes, fdLinks, ctimeMarginMs } = workerData as ReaderSetup;
  const state = new Int32Array(stateBuffer);
  const views = arenas.map((arena) => new Uint8Array(arena));
  const metaViews = metas.map((meta) => new Float64Array(meta));
  const digestViews = digests.map((digest) => Buffer.from(digest));
  const oneShot = (crypto as { hash?: (algorithm: string, data: Uint8Array, encoding: 'binary') => string }).hash;
  parentPort!.on('message', ({ request, paths: joined }: ReaderRequest) => {
    const paths = joined.split('\0');
    let from = 0;
    while (from < paths.length) {
      let arena = -1;
      while (arena === -1) {
        if (Atomics.load(state, 0) !== 0) return; // stopping
        const releases = Atomics.load(state, 1);
        for (let i = 0; i < views.length && arena === -1; i++) if (Atomics.compareExchange(state, 2 + i, 0, 1) === 0) arena = i;
        if (arena === -1) Atomics.wait(state, 1, releases);
      }
      const queuedBefore = queued(fs);
      const started = performance.now();
      const count = read(
        fs,
        (bytes, into, at) => into.write(oneShot !== undefined ? oneShot('sha256', bytes, 'binary') : crypto.createHash('sha256').update(bytes).digest('binary'), at, 'latin1'),
        paths,
        from,
        paths.length,
        views[arena]!,
        metaViews[arena]!,
        digestViews[arena]!,
        maxFileBytes,
        fdLinks,
        ctimeMarginMs,
      );
      const elapsedMs = performance.now() - started;
      const queuedAfter = queued(fs);
      const readMs = queuedBefore < 0 || queuedAfter < 0 ? elapsedMs : Math.max(0, elapsedMs - (queuedAfter - queuedBefore) / 1e6);
      parentPort!.postMessage({ request, from, to: from + count, arena, readMs } satisfies ReaderPart);
      from += count;
    }
  });
}

/** The reader thread's source text, for `new Worker(READER_THREAD_SOURCE, { eval: true, workerData })`. */
export const READER_THREAD_SOURCE = `(${readerMain.toString()})(require, ${readRun.toString()}, ${runQueueNanoseconds.toString()})`;
