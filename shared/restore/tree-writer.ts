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
// names not linked, never refused where the file it was backed up from had them.
//
// Which writer, and when to switch, is chosen in one place: choose-tree-writer.ts.

import { closeSync, constants as fsConstants, copyFileSync, fchmodSync, fchownSync, fstatSync, futimesSync, openSync } from 'node:fs';

import type { Owner } from '../tenant/ownership.js';

export type { Owner };

export const FILE_FLAGS = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;

/** The errors of link() that say the file system will not make this hard link (see the top of the file). */
export const LINK_REFUSED: ReadonlySet<string> = new Set(['EMLINK', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * `absPath` made a copy of the file `existingPath` (created by this restore, closed: its final
 * mode and mtime set), never through a link: its content, mode, mtime and owner.
 */
export function copyLinkedFile(existingPath: string, absPath: string): void {
  const from = openSync(existingPath, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  try {
    const stat = fstatSync(from);
    // COPYFILE_EXCL: O_CREAT|O_EXCL, which no symlink in absPath's place is followed through.
    copyFileSync(existingPath, absPath, fsConstants.COPYFILE_EXCL);
    const to = openSync(absPath, fsConstants.O_WRONLY | fsConstants.O_NOFOLLOW);
    try {
      fchownSync(to, stat.uid, stat.gid);
      fchmodSync(to, stat.mode & 0o7777);
      futimesSync(to, stat.mtime, stat.mtime);
    } finally {
      closeSync(to);
    }
  } finally {
    closeSync(from);
  }
}

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
  /** After a failure: waits for every write in flight, failed or not; the writer is done. */
  settle(): Promise<void>;
  /**
   * After `flush`, deepest first: a directory's owner (if the writer has one), final mode and
   * mtime (set last, since writing its children changes its mtime and a read-only one could
   * not take them).
   */
  setAttributes(absPath: string, mode: number, mtime: Date): Promise<void> | undefined;
}
