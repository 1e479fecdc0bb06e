// The TreeWriter of a restore's later piece (restore-continuation.ts): the first `skip` calls
// that create something (mkdir, openFile, symlink, link) were made by earlier pieces, whose
// entries are in the staging directory already, and are taken as DiscardingTreeWriter takes
// them; every call after goes to the real writer. The archive is the same object (pinned by
// its identity) and the extraction decides the same calls in the same order, so call N here is
// call N of the piece that stopped. `calls` counts every call made: once the writer has been
// flushed between two entries, the count every piece up to this one completed.

import path from 'node:path';

import { FileSystemError } from '../errors.js';
import { DiscardingTreeWriter } from './discarding-tree-writer.js';
import type { FileSink, TreeWriter } from './tree-writer.js';

/**
 * A later piece whose replay does not line up with its checkpoint: call `skip` is not the one
 * the last piece made last, or the archive ends before it. Its staging directory does not hold
 * what the count says (a checkpoint written by another version that decides its calls
 * otherwise, or by someone else), and the tree committed would miss what was skipped.
 */
export class ReplayMismatchError extends FileSystemError {}

export class ResumingTreeWriter implements TreeWriter {
  private readonly discarding = new DiscardingTreeWriter();
  /** Calls made so far, replayed ones included. */
  calls = 0;
  private chunk: Buffer | undefined;
  private started: Promise<void> | undefined;
  private begun = false;
  /** The path of this piece's last call that created something, below `root`. */
  private last: string | undefined;

  constructor(
    private readonly real: TreeWriter,
    private readonly skip: number,
    /** Awaited before the first real call (the checkpoint marked as being written past). */
    private readonly beforeFirstWrite: () => Promise<void>,
    /** The tenant root every call's path lies below. */
    private readonly root: string,
    /** What the last piece's last call created, below the root (its checkpoint's `lastWritten`); absent: not checked (a checkpoint of before it was kept). */
    private readonly lastBefore: string | undefined,
  ) {}

  /** The path, below the root, of the last entry this piece created ('' for the root): the next piece's `lastBefore`. */
  get lastWritten(): string | undefined {
    return this.last === undefined ? undefined : path.relative(this.root, this.last);
  }

  /** Throws unless the replay reached the count earlier pieces completed (the archive read whole). */
  assertReplayed(): void {
    if (this.calls < this.skip) throw this.mismatch(`the archive ends after ${this.calls} of the ${this.skip} writes its checkpoint counts`);
  }

  private mismatch(why: string): ReplayMismatchError {
    return new ReplayMismatchError(`the continuing restore cannot go on: ${why}, so its staging directory does not hold what its checkpoint says (a checkpoint written by another version of openclaw, or by someone else); what it had staged is removed, the slot holds what it held: restore again`);
  }

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
  private next<T>(absPath: string, write: () => T): T | Promise<T> | undefined {
    if (this.calls++ < this.skip) {
      if (this.calls === this.skip && this.lastBefore !== undefined && path.relative(this.root, absPath) !== this.lastBefore) {
        throw this.mismatch(`its last write was ${JSON.stringify(this.lastBefore)}, the archive's is ${JSON.stringify(path.relative(this.root, absPath))}`);
      }
      return undefined;
    }
    this.last = absPath;
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
    return this.next(absPath, () => this.real.mkdir(absPath)) as Promise<void> | undefined;
  }

  openFile(absPath: string, size: number, mode: number, mtime: Date): FileSink | Promise<FileSink> {
    return (this.next(absPath, () => this.real.openFile(absPath, size, mode, mtime)) as FileSink | Promise<FileSink> | undefined) ?? this.discarding.openFile();
  }

  symlink(target: string, absPath: string, mtime: Date): Promise<void> | undefined {
    return this.next(absPath, () => this.real.symlink(target, absPath, mtime)) as Promise<void> | undefined;
  }

  link(existingPath: string, absPath: string): Promise<void> | undefined {
    return this.next(absPath, () => this.real.link(existingPath, absPath)) as Promise<void> | undefined;
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
