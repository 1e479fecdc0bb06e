// A directory of archives (archive-store.ts), walked recursively: at most MAX_DEPTH levels,
// regular files only, never following a symlink below the directory named (which may be
// one), skipping hidden names (temporary `.partial` files and verification marks start
// with a dot). Each file's first bytes are read with one pread, and only when the caller
// wants its end (by default: behind our marker frame) its last bytes too; a verification
// mark (the hidden file beside it) is read only when the listing saw one. A removal is of
// the file as listed: one whose size or mtime changed since, or one this store never listed, is refused (CHANGED). A mark
// whose archive is gone (a prune killed between the two unlinks) goes with the next prune.
// The directory may be another user's to write (the gateway's service user's, whose backups
// root prunes): a removal goes through the listed file's directory, opened and pinned
// (`/proc/self/fd/N/name`), and only of the very file listed there (device and inode): by its
// full path, a subdirectory swapped for a symlink between the check and the unlink had root
// delete a root-only file of that name wherever the link led.
// Synchronous calls: a local disk answers them faster than a hop to libuv's pool costs
// (file-access.ts), and a directory may hold thousands of files.

import { closeSync, constants as fsConstants, fstatSync, lstatSync, openSync, readSync, statSync, type Dirent, type Stats } from 'node:fs';
import { lstat, readdir, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

import { errnoMessage, OpenClawError, StorageError, UsageError } from '../errors.js';
import { CAN_CHECK_OPENED_PATHS, DIRECTORY_FLAGS, FD_LINKS, namesLookedUp, READ_FLAGS } from '../file-access.js';
import { HEAD_BYTES, MAX_LISTED_OBJECTS, startsWithMarker, TAIL_BYTES, type ArchiveStore, type DeletionTerms, type InspectOptions, type ObjectFacts, type StoredObject } from './archive-store.js';
import { throwIfAborted } from './streams.js';
import { removeDeadPartials } from './local.js';
import type { ReadOptions } from './types.js';
import { archiveNotTrusted, markedArchivePath, markNotTrusted, MAX_LOCAL_MARK_BYTES, parseLocalMark, parseLocalStoredRecord, VERIFIED_MARK_SUFFIX, verifiedMarkPath } from './verified-mark.js';

/** Directory levels below the store's directory that are listed. */
const MAX_DEPTH = 8;
/** Most files in one part of a listing in parts (listInParts): a flat directory of many is handed on in pieces. */
const PART_FILES = 1000;

export class LocalArchiveStore implements ArchiveStore {
  readonly directory: string;
  readonly display: string;
  readonly baseName: string;

  /** Verification marks seen by `list`, by path. */
  private readonly marks = new Set<string>();
  /**
   * The device and inode of each file looked at (inspect, objectAt), by path: a removal is of
   * that file only. A file the walk found is in `walked`, held by its listed object alone,
   * until it is looked at: a prune with a {tenant} template looks at its tenant's files only,
   * and holding every other file's path here grew its memory with the directory (150,000
   * files in 2,000 directories, 75 of them looked at: 120 MiB RSS, now 90; 75,000 files: 108, now 76).
   */
  private readonly listed = new Map<string, FileIdentity>();
  /** The device and inode the walk saw of each object it listed (inspect and remove compare; inspect keeps it in `listed` for a removal by location). */
  private readonly walked = new WeakMap<StoredObject, FileIdentity>();
  /** The directories `remove` removed an archive from (removeDeadTemporaries). */
  private readonly removedFrom = new Set<string>();
  /** The directory's owner (directoryOwner). */
  private ownerOfDirectory: number | undefined;

  constructor(directory: string) {
    this.directory = resolve(directory);
    this.display = this.directory;
    this.baseName = basename(this.directory);
  }

  async list(options: ReadOptions = {}): Promise<StoredObject[]> {
    const found: StoredObject[] = [];
    for await (const objects of this.listInParts(options)) {
      if (found.length + objects.length > MAX_LISTED_OBJECTS) {
        throw new StorageError(`${this.display} holds more than ${MAX_LISTED_OBJECTS} files: give a narrower directory`, 'TOO_LARGE');
      }
      for (const object of objects) found.push(object);
    }
    return found;
  }

  /**
   * The walk of `list`, a directory's files at a time (at most PART_FILES in a part), for a
   * caller done with each part before the next (catalog/backups.ts): not bounded by
   * MAX_LISTED_OBJECTS, as an S3 prefix's listing in parts is not. A directory of every
   * tenant's backups (`{tenant}/{date}.tar.zst`: 2,000 tenants of 60 each, 128,000 files) was
   * refused whole ("holds more than 100000 files") by `tenants prune`/`backups`, where the same
   * backups below an S3 prefix were listed.
   */
  async *listInParts(options: ReadOptions = {}): AsyncGenerator<StoredObject[]> {
    // The directory named is followed if it is a symlink (a backup volume mounted elsewhere); nothing below it is.
    const info = await stat(this.directory).catch((error: unknown) => {
      throw this.fsError(error, this.directory);
    });
    // `--in` one archive (as --from takes it): the command line names the wrong thing, as with a bad URL.
    if (info.isFile()) {
      throw new UsageError(`${this.display} is not a directory: give the directory the archives are in, ${dirname(this.display)} (tenants verify --from ${this.display} checks this one)`);
    }
    if (!info.isDirectory()) throw new StorageError(`${this.display} is not a directory`, 'NOT_A_DIRECTORY');
    yield* this.pinnedParts(this.directory, this.directory, true, (pinned) => this.visit(this.directory, pinned, '', 0, options));
  }

  // `dir` is read through `pinned`, its descriptor's /proc/self/fd/N where procfs is mounted,
  // and each subdirectory opened through its parent's, without following a symlink: by its
  // path, a subdirectory the directory's owner swapped for a symlink between the parent's
  // listing and its own was listed wherever the link led, and root's prune removed the
  // root-only archives it found there (the removal's device and inode check compares with
  // what the listing saw). Without procfs, by path as before (README).
  private async *visit(dir: string, pinned: string, prefix: string, depth: number, options: ReadOptions): AsyncGenerator<StoredObject[]> {
    throwIfAborted(options.signal);
    const entries = await readdir(pinned, { withFileTypes: true })
      .catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        return entriesLookedUp(pinned);
      })
      .catch((error: unknown) => {
        // Below the store: a directory removed meanwhile, or one whose name is not UTF-8 (its
        // decoded name leads nowhere), holds nothing to list; skipped like such a file.
        if (depth > 0 && (error as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw this.fsError(error, dir);
      });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    let part: StoredObject[] = [];
    for (const entry of entries) {
      if (entry.name.startsWith('.')) {
        if (entry.name.endsWith(VERIFIED_MARK_SUFFIX)) this.marks.add(join(dir, entry.name));
        continue;
      }
      const full = join(dir, entry.name);
      const name = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
      if (entry.isDirectory()) {
        if (depth >= MAX_DEPTH) continue;
        if (part.length > 0) yield part;
        part = [];
        yield* this.pinnedParts(full, `${pinned}/${entry.name}`, false, (child) => this.visit(full, child, name, depth + 1, options));
      } else if (entry.isFile()) {
        const stat = lstatOptional(`${pinned}/${entry.name}`);
        if (stat === undefined || !stat.isFile() || stat.size === 0) continue;
        const object: StoredObject = { name, location: full, bytes: stat.size, modifiedAt: new Date(Math.floor(stat.mtimeMs)) };
        this.walked.set(object, { dev: stat.dev, ino: stat.ino });
        part.push(object);
        if (part.length >= PART_FILES) {
          yield part;
          part = [];
        }
      }
    }
    if (part.length > 0) yield part;
  }

  /**
   * Runs `visit` with a path that reads `dir` (reached by `path`) as it is now: its pinned
   * descriptor's, closed when the walk below ends or is stopped. Below the store's directory
   * (`follow` false) a symlink or a directory gone there is skipped, as a file removed meanwhile is.
   */
  private async *pinnedParts(dir: string, path: string, follow: boolean, visit: (pinned: string) => AsyncGenerator<StoredObject[]>): AsyncGenerator<StoredObject[]> {
    if (!CAN_CHECK_OPENED_PATHS) {
      yield* visit(dir);
      return;
    }
    let fd: number;
    try {
      fd = openSync(path, follow ? DIRECTORY_FLAGS & ~fsConstants.O_NOFOLLOW : DIRECTORY_FLAGS);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (!follow && (code === 'ENOENT' || code === 'ELOOP' || code === 'ENOTDIR')) return;
      throw this.fsError(error, dir);
    }
    try {
      yield* visit(`${FD_LINKS}${fd}`);
    } finally {
      closeSync(fd);
    }
  }

  async objectAt(name: string, options: ReadOptions = {}): Promise<StoredObject | undefined> {
    throwIfAborted(options.signal);
    // A hidden name too: one asked for by name is no temporary a listing passes over (a template may name `.{tenant}.tar.zst`).
    const location = join(this.directory, name);
    let stat: Stats;
    try {
      stat = lstatSync(location);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw this.fsError(error, location);
    }
    if (!stat.isFile() || stat.size === 0) return undefined;
    this.listed.set(location, { dev: stat.dev, ino: stat.ino });
    const markPath = verifiedMarkPath(location);
    if (lstatOptional(markPath)?.isFile() === true) this.marks.add(markPath);
    return { name, location, bytes: stat.size, modifiedAt: new Date(Math.floor(stat.mtimeMs)) };
  }

  async inspect(object: StoredObject, options: InspectOptions = {}): Promise<ObjectFacts> {
    throwIfAborted(options.signal);
    // Opened once, never through a symlink nor waited on as a FIFO, and read only if a regular
    // file: by its name after the listing's check, a FIFO swapped in meanwhile by whoever can
    // write the directory hung root's `tenants backups` for good. Anything else there now is
    // no longer the file listed, skipped as one removed since.
    let fd: number;
    try {
      fd = openSync(object.location, READ_FLAGS);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw code === 'ELOOP' || code === 'ENXIO' ? this.notAsListed(object, error) : this.fsError(error, object.location);
    }
    try {
      const stat = fstatSync(fd);
      const listed = this.walked.get(object) ?? this.listed.get(object.location);
      // A directory on the way swapped for a symlink since the listing leads to another file.
      if (!stat.isFile() || (listed !== undefined && (listed.dev !== stat.dev || listed.ino !== stat.ino))) throw this.notAsListed(object);
      // What a removal of this object (by its location) compares with.
      if (listed !== undefined) this.listed.set(object.location, listed);
      const head = Buffer.alloc(Math.min(HEAD_BYTES, stat.size));
      readSync(fd, head, 0, head.length, 0);
      let tail: Buffer | undefined;
      if ((options.wantsTail ?? startsWithMarker)(head)) {
        tail = Buffer.alloc(Math.min(TAIL_BYTES, stat.size));
        readSync(fd, tail, 0, tail.length, stat.size - tail.length);
      }
      const self = process.geteuid?.();
      const notTrusted = archiveNotTrusted({ path: object.location, archive: stat, directoryUid: this.directoryOwner(self, stat.uid), self });
      // Nothing beside another user's file is read: it is counted by no rule whatever a record says.
      if (notTrusted !== undefined) return { head, ...(tail !== undefined && { tail }), notTrusted };
      const markPath = verifiedMarkPath(object.location);
      const markBytes = this.marks.has(markPath) ? readMark(markPath, stat, this.directoryOwner(self, stat.uid)) : undefined;
      const verified = markBytes === undefined ? undefined : parseLocalMark(markBytes, stat);
      // Or, in its place, what the backup recorded as it completed an archive whose bytes name no tenant.
      const stored = markBytes === undefined || verified !== undefined ? undefined : parseLocalStoredRecord(markBytes, stat);
      return {
        head,
        ...(tail !== undefined && { tail }),
        ...(verified !== undefined && { verified }),
        ...(stored !== undefined && {
          metadata: { tenant: stored.tenant, createdAt: stored.createdAt, toolVersion: stored.toolVersion, formatVersion: stored.formatVersion },
          storedBytes: stat.size,
          ...(stored.manifestSha256 !== undefined && { manifestSha256: stored.manifestSha256 }),
        }),
      };
    } catch (error) {
      throw this.fsError(error, object.location);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * The owner of the directory listed (looked up once, and only when `uid`, an archive's owner,
   * is neither this process's user nor root): the owner whose archives and marks another user's
   * listing takes. Not the archive's own directory: a subdirectory another user made in a
   * directory all may write in is theirs, and their planted record and junk file there were taken.
   */
  private directoryOwner(self: number | undefined, uid: number): number {
    if (uid === self || uid === 0) return uid;
    if (this.ownerOfDirectory === undefined) {
      try {
        this.ownerOfDirectory = statSync(this.directory).uid;
      } catch (error) {
        throw this.fsError(error, this.directory);
      }
    }
    return this.ownerOfDirectory;
  }

  async deletionTerms(): Promise<DeletionTerms> {
    return { versioning: 'off', lifecycle: 'known', objectLock: 'off' };
  }

  async holdOf(): Promise<undefined> {
    return undefined;
  }

  /**
   * Removes the archive; one already gone (another prune of the same directory) is 'gone', no failure.
   * Only a file this store listed (list, objectAt) and the same file still (its device and inode):
   * one it never saw has nothing to compare with and is refused (CHANGED), nothing removed, so no
   * caller removes a file by its path alone.
   */
  async remove(object: StoredObject, options: ReadOptions = {}): Promise<'removed' | 'gone'> {
    throwIfAborted(options.signal);
    const listed = this.walked.get(object) ?? this.listed.get(object.location);
    if (listed === undefined) throw new StorageError(`${object.location} was not listed by this command (nothing to compare it with): not removed`, 'CHANGED');
    let directory: number | undefined;
    if (CAN_CHECK_OPENED_PATHS) {
      try {
        directory = openSync(dirname(object.location), fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
      } catch (error) {
        // Its directory gone (or no longer one): so is the file listed in it.
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return 'gone';
        throw this.fsError(error, dirname(object.location));
      }
    }
    // The name in the pinned directory: a directory on the way swapped later leads nowhere else.
    const at = (file: string) => (directory === undefined ? file : `${FD_LINKS}${directory}/${basename(file)}`);
    let outcome: 'removed' | 'gone' = 'gone';
    try {
      const now = await lstat(at(object.location)).catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw this.fsError(error, object.location);
      });
      if (now !== undefined) {
        if (
          !now.isFile() ||
          now.size !== object.bytes ||
          Math.floor(now.mtimeMs) !== object.modifiedAt.getTime() ||
          listed.dev !== now.dev ||
          listed.ino !== now.ino
        ) {
          throw new StorageError(`${object.location} changed since it was listed: not removed`, 'CHANGED');
        }
        // ENOENT: another prune unlinked it between the two calls.
        outcome = await unlink(at(object.location)).then(
          () => 'removed' as const,
          (error: unknown) => {
            if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw this.fsError(error, object.location, 'remove');
            return 'gone' as const;
          },
        );
        if (outcome === 'removed') this.removedFrom.add(dirname(object.location));
      }
      await unlink(at(verifiedMarkPath(object.location))).catch(() => undefined);
    } finally {
      if (directory !== undefined) closeSync(directory);
    }
    return outcome;
  }

  async removeStrayMarks(options: ReadOptions = {}): Promise<void> {
    for (const mark of this.marks) {
      if (options.signal?.aborted) return;
      const gone = await lstat(markedArchivePath(mark)).then(
        () => false,
        (error: unknown) => (error as NodeJS.ErrnoException).code === 'ENOENT',
      );
      if (gone) await unlink(mark).catch(() => undefined);
    }
  }

  /**
   * Removes the dead temporary names (`.partial`, writer provably gone) in each directory
   * `remove` removed an archive from: a backup killed right after linking its archive in leaves
   * its temporary name as the archive's second name, so removing the archive had freed nothing
   * (prune said 1.9 MiB removed; du the same). Best effort, never throws.
   */
  async removeDeadTemporaries(options: ReadOptions = {}): Promise<void> {
    for (const directory of this.removedFrom) {
      if (options.signal?.aborted) return;
      await removeDeadPartials(directory).catch(() => undefined);
    }
  }

  private notAsListed(object: StoredObject, cause?: unknown): StorageError {
    return new StorageError(`${object.location} is no longer the file listed there`, 'NOT_FOUND', { cause });
  }

  /** `doing`: what failed, as the message says it ("cannot remove …: input/output error"). */
  private fsError(error: unknown, path: string, doing: 'read' | 'remove' = 'read'): OpenClawError {
    if (error instanceof OpenClawError) return error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return new StorageError(`no such directory or file: ${path}`, 'NOT_FOUND', { cause: error });
    if (code === 'ENOTDIR') return new StorageError(`${path}: a parent is not a directory`, 'NOT_A_DIRECTORY', { cause: error });
    if (code === 'EACCES' || code === 'EPERM') return new StorageError(`cannot access ${path}: permission denied`, 'ACCESS_DENIED', { cause: error });
    return new StorageError(`cannot ${doing} ${path}: ${errnoMessage(error) ?? code ?? String(error)}`, 'IO', { cause: error });
  }
}

/**
 * The bytes of the mark at `path` beside `archive` if it is a regular file of at most
 * MAX_LOCAL_MARK_BYTES that this tool may have written (verified-mark.ts markNotTrusted), else
 * undefined (no mark). Anyone who can write the directory can put anything there: a symlink
 * is not followed (to /dev/zero it was read forever, memory growing), a FIFO not waited on
 * (opening one blocked the process, deaf to SIGTERM), a large file not read whole.
 */
function readMark(path: string, archive: Stats, directoryUid: number): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, READ_FLAGS);
  } catch {
    return undefined;
  }
  try {
    const info = fstatSync(fd);
    if (!info.isFile() || info.size > MAX_LOCAL_MARK_BYTES) return undefined;
    const self = process.geteuid?.();
    if (markNotTrusted({ mark: info, archiveUid: archive.uid, directoryUid, self }) !== undefined) return undefined;
    const bytes = Buffer.alloc(MAX_LOCAL_MARK_BYTES + 1);
    let length = 0;
    for (let read; length < bytes.length && (read = readSync(fd, bytes, length, bytes.length - length, length)) > 0; ) length += read;
    return length > MAX_LOCAL_MARK_BYTES ? undefined : bytes.subarray(0, length);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** What a listing tells of a name. */
type ListedName = Pick<Dirent, 'name' | 'isDirectory' | 'isFile'>;

/** The names in `dir` when its listing failed on a file system that gives no types (`namesLookedUp`): a name that cannot be lstat'ed is skipped. */
async function entriesLookedUp(dir: string): Promise<ListedName[]> {
  return (await namesLookedUp(dir, false)).map(({ name, stat: found }) => ({ name, isDirectory: () => found.isDirectory(), isFile: () => found.isFile() }));
}

interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
}

function lstatOptional(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}
