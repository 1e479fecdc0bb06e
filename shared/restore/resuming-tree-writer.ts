// The TreeWriter of a restore's later piece (restore-continuation.ts): the first `skip` calls
// that create something (mkdir, openFile, symlink, link) were made by earlier pieces, whose
// entries are in the staging directory already, and are taken as DiscardingTreeWriter takes
// them; every call after goes to the real writer. The archive is the same object (pinned by
// its identity) and the extraction decides the same calls in the same order, so call N here is
// call N of the piece that stopped. `calls` counts every call made: once the writer has been
// flushed between two entries, the count every piece up to this one completed.

import { DiscardingTreeWriter } from './discarding-tree-writer.js';
import type { FileSink, TreeWriter } from './tree-writer.js';

export class ResumingTreeWriter implements TreeWriter {
  private readonly discarding = new DiscardingTreeWriter();
  /** Calls made so far, replayed ones included. */
  calls = 0;
  private chunk: Buffer | undefined;
  private started: Promise<void> | undefined;
  private begun = false;

  constructor(
    private readonly real: TreeWriter,
    private readonly skip: number,
    /** Awaited before the first real call (the checkpoint marked as being written past). */
    private readonly beforeFirstWrite: () => Promise<void>,
  ) {}

  get readsChunksLater(): boolean {
    return this.real.readsChunksLater;
  }

  /** Whether this piece has written anything. */
  get wrote(): boolean {
    return this.calls > this.skip;
  }

  beginChunk(chunk: Buffer): void {
    this.chunk = chunk;
    if (this.begun) this.real.beginChunk(chunk);
  }

  endChunk(): Promise<void> | undefined {
    return this.begun ? this.real.endChunk() : undefined;
  }

  /** The next call: replayed (undefined), or the real writer's after the first-write hook. */
  private next<T>(write: () => T): T | Promise<T> | undefined {
    if (this.calls++ < this.skip) return undefined;
    if (!this.begun) {
      this.begun = true;
      this.real.beginChunk(this.chunk!);
      this.started = this.beforeFirstWrite();
    }
    const started = this.started;
    if (started === undefined) return write();
    return started.then(() => {
      this.started = undefined;
      return write();
    });
  }

  mkdir(absPath: string): Promise<void> | undefined {
    return this.next(() => this.real.mkdir(absPath)) as Promise<void> | undefined;
  }

  openFile(absPath: string, size: number, mode: number, mtime: Date): FileSink | Promise<FileSink> {
    return (this.next(() => this.real.openFile(absPath, size, mode, mtime)) as FileSink | Promise<FileSink> | undefined) ?? this.discarding.openFile();
  }

  symlink(target: string, absPath: string, mtime: Date): Promise<void> | undefined {
    return this.next(() => this.real.symlink(target, absPath, mtime)) as Promise<void> | undefined;
  }

  link(existingPath: string, absPath: string): Promise<void> | undefined {
    return this.next(() => this.real.link(existingPath, absPath)) as Promise<void> | undefined;
  }

  /** The time the real writer's queued writes still need (TreeWriter.backlogMs). */
  backlogMs(): number {
    return this.real.backlogMs?.() ?? 0;
  }

  flush(): Promise<void> {
    return this.real.flush();
  }

  settle(): Promise<void> {
    return this.real.settle();
  }

  setAttributes(absPath: string, mode: number, mtime: Date): Promise<void> | undefined {
    return this.real.setAttributes(absPath, mode, mtime);
  }
}
