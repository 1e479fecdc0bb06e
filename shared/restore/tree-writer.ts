// The file-system side of extraction: extract.ts decides what may be created and in which
// order, a TreeWriter creates it. Every writer keeps the same promises: files are created
// with O_EXCL|O_NOFOLLOW (never through a link) and their final mode and mtime; each call
// happens in the order it was made for the same directory, a hard link after its target;
// a failure surfaces as the errno error the same call would have thrown on this thread.
//
// Ownership: given an owner (a restore run as root: the tenant's or base dir's owner, or
// --owner), every writer gives each created entry to it: a file through its descriptor
// (fchown, before its mode is set), a symlink with lchown, a directory with lchown when its
// attributes are set; hard links share their target's inode. Without an owner no chown call
// is made at all.
//
// A hard link the file system refuses (LINK_REFUSED: EMLINK past its limit of names per file,
// 65,000 on ext4 and 177 on EFS; EPERM or ENOTSUP on one without hard links, FAT or some FUSE)
// is made a copy of its target instead (`copyLinkedFile`), with its mode, mtime and owner, as
// a restore made every name before hard links were archived: the tenant is restored, its
// names not linked, never refused where the file it was backed up from had them. The copy is
// written through a descriptor opened for it (so a read-only target, 0444 as git's objects
// are, is copied by a restore run as its owner too), runs of 64 KiB of zeros left holes as
// every restored file's are (holes.ts), and the target, if its mode denies its owner reading
// it, is lent that bit while it is read. Copies count against --max-bytes with the archive's
// content (`CopyBudget`): an archive of one file and many names, which links cost nothing to
// store, must not unpack to many times the limit where the links are refused.
//
// Which writer, and when to switch, is chosen in one place: choose-tree-writer.ts.

import { constants as fsConstants } from 'node:fs';

import type { Owner } from '../tenant/ownership.js';

export type { Owner };

export const FILE_FLAGS = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;

/** The errors of link() that say the file system will not make this hard link (see the top of the file). */
export const LINK_REFUSED: ReadonlySet<string> = new Set(['EMLINK', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * What a restore may write (--max-bytes), shared with the writer threads: `counts[0]` the
 * bytes of content the archive has declared so far (the extraction stores it), `counts[1]`
 * the bytes copies of refused links have taken, `counts[2]` how many names were made copies
 * (the writers add to both; the restore's summary says so: `copiedLinks`).
 */
export interface CopyBudget {
  readonly counts: BigInt64Array;
  readonly maxBytes: number;
}

/** How many hard links the file system refused were made copies (copyLinkedFile), and the bytes those copies took. */
export function copiedLinks(budget: CopyBudget): { readonly names: number; readonly bytes: number } {
  return { names: Number(Atomics.load(budget.counts, 2)), bytes: Number(Atomics.load(budget.counts, 1)) };
}

/** The `code` of the error copyLinkedFile throws when a copy would take the restore past --max-bytes. */
export const COPY_OVER_LIMIT = 'OPENCLAW_COPY_OVER_LIMIT';

export function copyBudget(maxBytes: number): CopyBudget {
  return { counts: new BigInt64Array(new SharedArrayBuffer(3 * BigInt64Array.BYTES_PER_ELEMENT)), maxBytes };
}

/**
 * `absPath` made a copy of the file `existingPath` (created by this restore, closed: its final
 * mode, mtime and owner set), never through a link: its content, mode, mtime and owner (a
 * chown only where the copy's differs, so none without root). Self-contained, its only names
 * its parameters and globals: the writer threads run its source text (writer-thread.ts).
 */
export function copyLinkedFile(fsSync: typeof import('node:fs'), existingPath: string | Buffer, absPath: string | Buffer, budget: CopyBudget | undefined): void {
  const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fsSync.constants;
  const stat = fsSync.lstatSync(existingPath);
  if (budget !== undefined) {
    // In numbers (exact to 8 PiB): a limit need not be a whole number (Infinity).
    if (Number(Atomics.add(budget.counts, 1, BigInt(stat.size))) + stat.size + Number(Atomics.load(budget.counts, 0)) > budget.maxBytes) {
      throw Object.assign(new Error(`copying ${absPath.toString()} for a hard link the file system refused takes the restore past --max-bytes`), { code: 'OPENCLAW_COPY_OVER_LIMIT' });
    }
  }
  if (budget !== undefined) Atomics.add(budget.counts, 2, 1n);
  const mode = stat.mode & 0o7777;
  let from: number;
  // O_EXCL: no symlink in absPath's place is followed; 0o600 until the mode is set.
  let to: number | undefined;
  try {
    from = fsSync.openSync(existingPath, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (error) {
    // Restoring as its owner (not root), a mode that denies the owner reading (0o200, 0o000).
    if ((error as NodeJS.ErrnoException).code !== 'EACCES' || !stat.isFile()) throw error;
    // The copy is made first, empty with mode 0: killed at any step, this leaves no copy
    // anyone can read. A later piece of a restore takes back the bit a kill left lent to a
    // target before its checkpoint (resuming-tree-writer.ts `takeBackLentBit`): the replay
    // gives the target's mode.
    to = fsSync.openSync(absPath, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0);
    try {
      fsSync.chmodSync(existingPath, mode | 0o400);
      try {
        from = fsSync.openSync(existingPath, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
      } finally {
        fsSync.chmodSync(existingPath, mode);
      }
    } catch (failure) {
      fsSync.closeSync(to);
      fsSync.unlinkSync(absPath);
      throw failure;
    }
  }
  try {
    // O_NONBLOCK and this look: a FIFO put in the target's place (by its user, between the
    // pieces of a restore) had the open wait for a writer for good; a regular file ignores it.
    if (!fsSync.fstatSync(from).isFile()) {
      if (to !== undefined) {
        fsSync.closeSync(to);
        fsSync.unlinkSync(absPath);
      }
      throw Object.assign(new Error(`${existingPath.toString()}, the target of a hard link, is no regular file now: someone who can write there changed it while the restore ran`), { code: 'OPENCLAW_LINK_TARGET_CHANGED' });
    }
    to ??= fsSync.openSync(absPath, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    try {
      const hole = 64 * 1024;
      const zeros = Buffer.alloc(hole);
      const buffer = Buffer.allocUnsafe(16 * hole);
      let position = 0;
      for (;;) {
        const got = fsSync.readSync(from, buffer, 0, buffer.length, position);
        if (got === 0) break;
        for (let at = 0; at < got; at += hole) {
          const end = Math.min(at + hole, got);
          if (end - at === hole && buffer.compare(zeros, 0, hole, at, end) === 0) continue;
          for (let written = at, wrote = 0; written < end; written += wrote) {
            wrote = fsSync.writeSync(to, buffer, written, end - written, position + written);
            // None of its bytes taken: retried, it would spin for good (writeWhole's failure).
            if (wrote === 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' });
          }
        }
        position += got;
      }
      fsSync.ftruncateSync(to, position); // it may end in a hole
      const made = fsSync.fstatSync(to);
      if (made.uid !== stat.uid || made.gid !== stat.gid) fsSync.fchownSync(to, stat.uid, stat.gid);
      fsSync.fchmodSync(to, mode);
      fsSync.futimesSync(to, stat.mtime, stat.mtime);
    } finally {
      fsSync.closeSync(to);
    }
  } finally {
    fsSync.closeSync(from);
  }
}

/** Where one file's content goes; `write` and `finish` return a promise only when they wait. */
export interface FileSink {
  /** Bytes written so far. */
  readonly size: number;
  write(bytes: Buffer): Promise<void> | undefined;
  /** Sets the file's mode and mtime and closes it (or hands it to a background write). */
  finish(): Promise<void> | undefined;
  /**
   * Closes the file after a failure; a promise when the close is waited for, so that the
   * staging area is removed only once nothing holds the file open (on NFS a file removed while
   * open is kept as a `.nfs…` file, and its directory cannot be removed).
   */
  abandon(): Promise<void> | undefined;
}

/** The process umask, read once: files are created with their final mode, fixed up only where it strips bits. */
const UMASK = process.umask();
export const umaskStrips = (mode: number) => (mode & ~UMASK) !== mode;

export interface TreeWriter {
  /**
   * Whether content passed to file sinks may still be read once `endChunk` has returned and
   * its promise settled (writes left in flight). If not, the chunk may be freed then.
   */
  readonly readsChunksLater: boolean;
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
  /** A writer that queues writes (ParallelTreeWriter): the time those queued still need, estimated from those done. */
  backlogMs?(): number;
  /** After a failure: waits for every write in flight, failed or not; the writer is done. */
  settle(): Promise<void>;
  /**
   * After `flush`, deepest first: a directory's owner (if the writer has one), final mode and
   * mtime (set last, since writing its children changes its mtime and a read-only one could
   * not take them).
   */
  setAttributes(absPath: string, mode: number, mtime: Date): Promise<void> | undefined;
}
