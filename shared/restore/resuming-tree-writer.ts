// The TreeWriter of a restore's later piece (restore-continuation.ts): the first `skip` calls
// that create something (mkdir, openFile, symlink, link) were made by earlier pieces, whose
// entries are in the staging directory already, and are taken as DiscardingTreeWriter takes
// them; every call after goes to the real writer. The archive is the same object (pinned by
// its identity) and the extraction decides the same calls in the same order, so call N here is
// call N of the piece that stopped. `calls` counts every call made: once the writer has been
// flushed between two entries, the count every piece up to this one completed.
//
// `rewrite`: the piece before this one was killed after its first write (its checkpoint still
// marked `writing`), so what its calls after `skip` made may lie in the staging directory,
// whole or cut. The staging directory is the chain's own (0700, pinned), so all of it is what
// that piece made from the same calls: each call after `skip` first looks at its path (lstat,
// never followed) and removes what stands there (a file, symlink or hard link: unlinked, and
// made again), keeps a directory (its mode opened to its owner: a killed last piece may have
// set a directory's final 0555 already; the last piece sets every one again), and refuses a
// directory where the archive has no directory (not a kill's doing). Below a directory this
// piece made where nothing stood, nothing is looked at: nothing can be there. A link call
// whose target an earlier piece wrote with a mode that denies its owner reading first takes
// back the read bit a killed copy of any of its names may have left lent to it
// (`takeBackLentBit`): the replay gives each such target's mode.

import { chmodSync, lstatSync, unlinkSync, type Stats } from 'node:fs';
import path from 'node:path';

import { crashPoint } from '../crash-points.js';
import { FileSystemError } from '../errors.js';
import { fsPath } from '../raw-name.js';
import { DiscardingTreeWriter } from './discarding-tree-writer.js';
import type { FileSink, TreeWriter } from './tree-writer.js';

/**
 * A later piece whose replay does not line up with its checkpoint: call `skip` is not the one
 * the last piece made last, or the archive ends before it. Its staging directory does not hold
 * what the count says (a checkpoint written by another version that decides its calls
 * otherwise, or by someone else), and the tree committed would miss what was skipped.
 */
export class ReplayMismatchError extends FileSystemError {}

/**
 * A directory an earlier piece made is no longer one (a symlink in its place): someone who can
 * write in the staging directory changed it between the pieces, and writing on would follow it.
 */
export class StagingChangedError extends FileSystemError {}

export class ResumingTreeWriter implements TreeWriter {
  private readonly discarding = new DiscardingTreeWriter();
  /** Calls made so far, replayed ones included. */
  calls = 0;
  private chunk: Buffer | undefined;
  private started: Promise<void> | undefined;
  private begun = false;
  /** The path of this piece's last call that created something, below `root`. */
  private last: string | undefined;
  /** Directories below the root this piece made or found still directories (lstat): what it writes into. */
  private readonly directories = new Set<string>();
  /** `rewrite`: directories below the root this piece made where nothing stood; nothing below them is the killed piece's. */
  private readonly fresh = new Set<string>();
  /** `rewrite`: whether the root's mode has been looked at. */
  private rootOpened = false;
  /**
   * `rewrite`: the files earlier pieces wrote (replayed calls, below the root) whose mode denies
   * their owner reading: the only targets a killed copy may have lent the read bit to. Each
   * leaves the set at this piece's first link call to it, which takes the bit back.
   */
  private readonly unreadable = new Set<string>();

  constructor(
    private readonly real: TreeWriter,
    private readonly skip: number,
    /** Awaited before the first real call (the checkpoint marked as being written past). */
    private readonly beforeFirstWrite: () => Promise<void>,
    /** The tenant root every call's path lies below. */
    private readonly root: string,
    /** What the last piece's last call created, below the root (its checkpoint's `lastWritten`, which every checkpoint read holds); absent: the first piece (nothing replayed). */
    private readonly lastBefore: string | undefined,
    /** The piece before was killed after its first write: what it made past `skip` is replaced (see the top of the file). */
    private readonly rewrite = false,
  ) {}

  /** The path, below the root, of the last entry this piece created ('' for the root): the next piece's `lastBefore`; undefined until this piece writes. */
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

  beginChunk(chunk: Buffer): void {
    this.chunk = chunk;
    if (this.begun) this.real.beginChunk(chunk);
  }

  endChunk(): Promise<void> | undefined {
    return this.begun ? this.real.endChunk() : undefined;
  }

  /**
   * The next call: replayed (undefined), or the real writer's after the first-write hook.
   * `readsFrom`: a directory the call reads from besides the one it writes in (a hard link's target's).
   */
  private next<T>(absPath: string, write: () => T, readsFrom?: string): T | Promise<T> | undefined {
    if (this.calls++ < this.skip) {
      if (this.calls === this.skip && this.lastBefore !== undefined && path.relative(this.root, absPath) !== this.lastBefore) {
        throw this.mismatch(`its last write was ${JSON.stringify(this.lastBefore)}, the archive's is ${JSON.stringify(path.relative(this.root, absPath))}`);
      }
      return undefined;
    }
    this.last = absPath;
    if (this.skip > 0) {
      this.assertDirectoriesStand(path.dirname(absPath));
      if (readsFrom !== undefined) this.assertDirectoriesStand(readsFrom);
    }
    if (!this.begun) {
      this.begun = true;
      this.real.beginChunk(this.chunk!);
      this.started = this.beforeFirstWrite();
    }
    const started = this.started;
    if (started === undefined) return this.issued(write());
    return started.then(() => {
      this.started = undefined;
      return this.issued(write());
    });
  }

  private issued<T>(made: T): T {
    crashPoint('restore:piece-wrote');
    return made;
  }

  mkdir(absPath: string): Promise<void> | undefined {
    const made = this.next(absPath, () => (this.rewrite && this.clearForRewrite(absPath, true) === 'kept' ? undefined : this.real.mkdir(absPath))) as Promise<void> | undefined;
    if (this.calls > this.skip) this.directories.add(path.relative(this.root, absPath));
    return made;
  }

  /**
   * `rewrite`: what the killed piece may have made at `absPath` removed before this call makes
   * it again; a directory wanted where one stands is `kept`, its mode opened to its owner.
   */
  private clearForRewrite(absPath: string, directory: boolean): 'kept' | 'clear' {
    const relative = path.relative(this.root, absPath);
    const parent = path.dirname(relative);
    if (this.fresh.has(parent)) {
      if (directory) this.fresh.add(relative);
      return 'clear';
    }
    const at = fsPath(absPath);
    const stat = lstatSync(at, { throwIfNoEntry: false });
    if (stat === undefined) {
      if (directory) this.fresh.add(relative);
      return 'clear';
    }
    if (stat.isDirectory()) {
      if (!directory) {
        throw new StagingChangedError(
          `the continuing restore cannot go on: ${JSON.stringify(relative)} is a directory in its staging directory where the archive has none: someone who can write there changed it between the pieces; what it had staged is removed, the slot holds what it held: restore again`,
        );
      }
      openToOwner(at, stat);
      return 'kept';
    }
    unlinkSync(at);
    return 'clear';
  }

  /**
   * A later piece writes into directories earlier pieces made, which lay in the staging
   * directory between the pieces: each is looked at once (lstat), the first time this piece
   * writes below it or sets its attributes, and must still be a directory. A symlink planted
   * in one's place had the writes follow it out of the staging directory, and the tree
   * committed with the link in it, verified (the verification reads the archive, not the disk).
   */
  private assertDirectoriesStand(absDir: string): void {
    const relative = path.relative(this.root, absDir);
    if (this.rewrite && !this.rootOpened) {
      this.rootOpened = true;
      openToOwner(fsPath(this.root), lstatSync(fsPath(this.root)));
    }
    if (relative === '' || this.directories.has(relative)) return;
    let below = '';
    for (const segment of relative.split(path.sep)) {
      below = below === '' ? segment : `${below}${path.sep}${segment}`;
      if (this.directories.has(below)) continue;
      const stat = lstatSync(fsPath(path.join(this.root, below)), { throwIfNoEntry: false });
      if (stat === undefined || !stat.isDirectory()) {
        throw new StagingChangedError(
          `the continuing restore cannot go on: ${JSON.stringify(below)}, a directory an earlier piece made in its staging directory, is ${stat === undefined ? 'gone' : stat.isSymbolicLink() ? 'a symlink now' : 'no directory now'}: someone who can write there changed it between the pieces; what it had staged is removed, the slot holds what it held: restore again`,
        );
      }
      if (this.rewrite) openToOwner(fsPath(path.join(this.root, below)), stat);
      this.directories.add(below);
    }
  }

  openFile(absPath: string, size: number, mode: number, mtime: Date): FileSink | Promise<FileSink> {
    if (this.rewrite && this.calls < this.skip && (mode & 0o400) === 0) this.unreadable.add(path.relative(this.root, absPath));
    return (this.next(absPath, () => this.replacing(absPath, () => this.real.openFile(absPath, size, mode, mtime))) as FileSink | Promise<FileSink> | undefined) ?? this.discarding.openFile();
  }

  symlink(target: string, absPath: string, mtime: Date): Promise<void> | undefined {
    return this.next(absPath, () => this.replacing(absPath, () => this.real.symlink(target, absPath, mtime))) as Promise<void> | undefined;
  }

  /** The target's directory is looked at too: through a symlink planted there the link (or, where links are refused, the copy) would take a file outside. */
  link(existingPath: string, absPath: string): Promise<void> | undefined {
    return this.next(
      absPath,
      () => {
        // Once a target: later copies of it in this piece (on a writer thread) may lend it the bit themselves meanwhile.
        if (this.rewrite && this.unreadable.delete(path.relative(this.root, existingPath))) takeBackLentBit(existingPath);
        return this.replacing(absPath, () => this.real.link(existingPath, absPath));
      },
      path.dirname(existingPath),
    ) as Promise<void> | undefined;
  }

  /** `write`, after what the killed piece made at `absPath` was removed (`rewrite`). */
  private replacing<T>(absPath: string, write: () => T): T {
    if (this.rewrite) this.clearForRewrite(absPath, false);
    return write();
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
    if (this.skip > 0) this.assertDirectoriesStand(absPath);
    return this.real.setAttributes(absPath, mode, mtime);
  }
}

/**
 * `rewrite`, a link call to `existingPath`, a file an earlier piece wrote with a mode that
 * denies its owner reading: where the killed piece was making a copy of it (the link refused),
 * it lent the target the read bit while it opened it (tree-writer.ts copyLinkedFile), and,
 * killed before it took the bit back, left the target with it. The target is not written again
 * (it lies before the checkpoint), so a read bit it holds is lent: it is taken back, before this
 * call or any later one of this piece copies the target with it. Before, only a link call whose own name held
 * the killed copy's mark (made empty, mode 0) took it back: an earlier name of the same target,
 * copied whole by the killed piece and written again first, took the lent bit as the target's
 * mode (0600 for 0200, "verified").
 */
function takeBackLentBit(existingPath: string): void {
  const target = lstatSync(fsPath(existingPath), { throwIfNoEntry: false });
  if (target?.isFile() && (target.mode & 0o400) !== 0) chmodSync(fsPath(existingPath), target.mode & 0o7777 & ~0o400);
}

/** A directory the killed piece made or set the final mode of: writable by its owner again until the last piece sets it. */
function openToOwner(at: string | Buffer, stat: Stats): void {
  if ((stat.mode & 0o700) !== 0o700) chmodSync(at, (stat.mode & 0o7777) | 0o700);
}
