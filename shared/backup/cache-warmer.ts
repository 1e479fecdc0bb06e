// Brings files into the page cache ahead of a reader thread, for when the cache is cold.
//
// A reader thread (reader-thread.ts) reads with blocking calls, one file after another:
// warm, that is the fastest way there is, but cold, each file waits for the disk in turn
// (a small file costs a disk read that takes far longer than all its system calls). A
// local disk serves many reads at once, so the warmer keeps a few dozen reads in flight on
// libuv's pool: open (never through a symlink, never waiting on a FIFO, leaving the access
// time as it was), read the file's first WARM_BYTES, close. The content is thrown away; the reader thread then finds it
// in the cache. Nothing here decides what is archived: a file that fails or vanishes here
// is met again by the reader.
//
// Its callbacks run on the thread that owns it, so it only pays when that thread would
// otherwise wait for the reader (read-ahead.ts turns it on only while reads are slow).

import { close, constants as fsConstants, open, read } from 'node:fs';

import { POOL_THREADS } from '../file-access.js';

/** Bytes read of each file: its whole content if small; beyond this the kernel's own readahead follows the reader. */
const WARM_BYTES = 64 * 1024;
/** Files warmed at once: libuv's pool less room for the frames compressing beside them, at most 32 (0: the pool is too small to share). */
export const WARM_CALLS = Math.min(32, Math.max(0, POOL_THREADS - 8));

const WARM_FLAGS = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK;
/** As the reader's opens (read-run.ts): the access time left as it was, unless refused (EPERM: a file not ours, not root). */
const WARM_FLAGS_NO_ATIME = WARM_FLAGS | (fsConstants.O_NOATIME ?? 0);

export class CacheWarmer {
  private readonly queue: string[] = [];
  private head = 0;
  /** Scratch buffers of the reads not in flight (made when first needed: most backups never warm). */
  private readonly idle: Buffer[] = [];
  private inFlight = 0;
  private flags = WARM_FLAGS_NO_ATIME;
  private stopped = false;
  private settled: (() => void) | undefined;

  constructor(private readonly calls = WARM_CALLS) {}

  get enabled(): boolean {
    return this.calls > 0;
  }

  /** Queues `paths` to be warmed, after those queued before. */
  warm(paths: readonly string[]): void {
    if (this.stopped || !this.enabled) return;
    if (this.head > 4096) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    for (const path of paths) this.queue.push(path);
    this.pump();
  }

  /** Drops what is queued; resolves once the reads in flight have closed their files. */
  stop(): Promise<void> {
    this.stopped = true;
    this.queue.length = 0;
    this.head = 0;
    return this.inFlight === 0 ? Promise.resolve() : new Promise((resolve) => (this.settled = resolve));
  }

  private pump(): void {
    while (this.head < this.queue.length && this.inFlight < this.calls) this.warmOne(this.queue[this.head++]!);
    if (this.inFlight === 0) this.settled?.();
  }

  private warmOne(path: string): void {
    this.inFlight++;
    const scratch = this.idle.pop() ?? Buffer.allocUnsafeSlow(WARM_BYTES);
    const done = (): void => {
      this.inFlight--;
      this.idle.push(scratch);
      this.pump();
    };
    const flags = this.flags;
    open(path, flags, (openError, fd) => {
      if (openError !== null) {
        // Warmed no more with O_NOATIME; this file is left to the reader.
        if (openError.code === 'EPERM') this.flags = WARM_FLAGS;
        return done();
      }
      read(fd, scratch, 0, WARM_BYTES, 0, () => close(fd, done));
    });
  }
}
