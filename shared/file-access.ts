// How the walk, the reads of a backup and the writers of a restore call the file system:
// one small object per operation, chosen once for the directory it works in.
//
// A local disk answers a metadata call or a small read in microseconds, less than a hop to
// libuv's thread pool costs: reading the 19,687 small files of the benchmark's large tenant
// took 0.42 s with synchronous calls, 6.9 s with promise calls one at a time and 2.2 s with
// 16 in flight (2-core machine, page cache warm). A network file system (NFS, so EFS under
// the Lambda functions; SMB; FUSE) takes about a millisecond a call: there blocking calls
// would serialise the latency, and many calls in flight win. So there are two accesses:
// SYNC_ACCESS makes blocking calls and answers with values; PARALLEL_ACCESS makes promise
// calls and answers with promises, which the caller keeps many of in flight. Callers await
// only what is a promise, so the synchronous path costs no turn of the event loop.
//
// Promise calls wait on libuv's thread pool, one thread per call in flight: with Node's
// default of 4 threads, no more than 4 calls are ever in flight. The pool is sized when it
// starts, from UV_THREADPOOL_SIZE, which only the environment of the process can set (the
// launcher bin/openclaw.js and the functions' environment set THREAD_POOL_SIZE);
// CALLS_IN_FLIGHT is what a backup or restore keeps in flight, the pool as it really is
// less room for the frames compressing beside it.

import { closeSync, constants as fsConstants, existsSync, fstatSync, lstatSync, opendirSync, openSync, promises as fs, readdirSync, readlinkSync, readSync, statfsSync, type Dirent, type OpenDirOptions, type Stats } from 'node:fs';

import { basename, dirname, join } from 'node:path';

import { errnoCode, errnoMessage, FileSystemError } from './errors.js';
import { shownPath } from './format.js';
import { mountIdOf } from './mounts.js';
import { type ListedType, PackedListing } from './packed-listing.js';
import { decodeRawName, fsPath, hasRawBytes, rawName } from './raw-name.js';

/** UV_THREADPOOL_SIZE the launcher and the functions' environment give Node. */
export const THREAD_POOL_SIZE = 64;
/** Threads libuv's pool started with: UV_THREADPOOL_SIZE as libuv reads it (1 to 1024, default 4). */
export const POOL_THREADS = poolThreads(process.env.UV_THREADPOOL_SIZE);
/** Promise calls to a network file system kept in flight: the pool less a few threads for compression, and at least 4. */
export const CALLS_IN_FLIGHT = Math.max(4, POOL_THREADS - 8);

/** As libuv reads it: atoi, 0 means 1, anything over 1024 (or negative, as an unsigned int) means 1024. */
export function poolThreads(setting: string | undefined): number {
  if (setting === undefined) return 4;
  const threads = Number.parseInt(setting, 10) || 0;
  if (threads === 0) return 1;
  return threads < 0 || threads > 1024 ? 1024 : threads;
}

/** A value now (SYNC_ACCESS) or later (PARALLEL_ACCESS). */
export type Maybe<T> = T | Promise<T>;

/** A file opened for reading. */
export interface OpenFile {
  /** Reads `length` bytes at `position` into `buffer` at `offset`; how many were read (0 at the end). */
  read(buffer: Buffer, offset: number, length: number, position: number): Maybe<number>;
  stat(): Maybe<Stats>;
  close(): Maybe<void>;
}

export interface FileAccess {
  /** 'sync': blocking calls (a local disk); 'parallel': promise calls, many in flight (a network file system). */
  readonly kind: 'sync' | 'parallel';
  /**
   * The directory's names with their types (d_type; an lstat where the file system gives
   * none); where such an lstat fails, the names alone, of no type (`untypedListing`).
   * `size`: the directory's st_size, if known (`listedWhole`).
   */
  readdir(dir: string, size?: number): Maybe<Listing>;
  /** lstat of each path; undefined for one that vanished (ENOENT, ENOTDIR). */
  lstatEach(paths: readonly string[]): Maybe<(Stats | undefined)[]>;
  /**
   * Opens a file to read, never through a symlink (ELOOP), without waiting on a FIFO, and
   * only if it is the file at `path` (`path` must be a real path: see `isOpenedAt`); a
   * directory above it swapped for a symlink makes it fail with ENOENT, as if it vanished.
   */
  openToRead(path: string): Maybe<OpenFile>;
  /** An already open file, called the same way. */
  fileOf(handle: fs.FileHandle): OpenFile;
  /**
   * Opens the directory at the real path `path` to list it, never through a symlink (ELOOP),
   * failing with ENOENT as `openToRead` if it led elsewhere (see `isOpenedAt`).
   */
  openDirectory(path: string): Maybe<OpenDirectory>;
}

/** A directory open to be listed. */
export interface OpenDirectory {
  /**
   * The path to list it and lstat its entries by: its descriptor's procfs link, which leads to
   * the directory opened whatever is swapped in at its path later (its own path without procfs).
   */
  readonly path: string;
  /** The id of the mount it is on (mounts.ts `mountIdOf`: procfs, no call to its file system); '' where not told. */
  mountId(): string;
  close(): Maybe<void>;
}

/** An open to read that never goes through a symlink and never waits for a writer of a FIFO. */
export const READ_FLAGS = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK;
/** An open of a directory that never goes through a symlink (ELOOP, or ENOTDIR for a symlink to a file). */
export const DIRECTORY_FLAGS = fsConstants.O_RDONLY | fsConstants.O_DIRECTORY | fsConstants.O_NOFOLLOW;
/** The setgid bit (S_ISGID), which mkdir in a setgid directory sets. */
const SETGID = 0o2000;

export const SYNC_ACCESS: FileAccess = {
  kind: 'sync',
  readdir: (dir, size) => {
    let listing: Listing;
    try {
      listing = listedWhole(size) ? listingOf(readdirSync(fsPath(dir), { withFileTypes: true })) : readListingSync(dir, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      return untypedListing(readdirSync(fsPath(dir), { encoding: 'buffer' }));
    }
    if (!listing.hasReplacedName()) return listing;
    try {
      return readListingSync(dir, 'buffer');
    } catch {
      return listing; // gone since the listing: its entries turn out vanished
    }
  },
  lstatEach: (paths) => paths.map(lstatOrVanished),
  openToRead: (path) => syncFile(openSyncAt(path, READ_FLAGS)),
  fileOf: (handle) => syncFile(handle.fd, () => handle.close()),
  openDirectory: (path) => {
    const fd = openSyncAt(path, DIRECTORY_FLAGS);
    return { path: listingPath(path, fd), mountId: () => mountIdOf(fd), close: () => closeSync(fd) };
  },
};

export const PARALLEL_ACCESS: FileAccess = {
  kind: 'parallel',
  readdir: async (dir, size) => {
    let listing: Listing;
    try {
      listing = listedWhole(size) ? listingOf(await fs.readdir(fsPath(dir), { withFileTypes: true })) : await readListing(dir, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      return untypedListing(await fs.readdir(fsPath(dir), { encoding: 'buffer' }));
    }
    if (!listing.hasReplacedName()) return listing;
    return readListing(dir, 'buffer').catch(() => listing);
  },
  lstatEach: (paths) => Promise.all(paths.map((path) => fs.lstat(fsPath(path)).catch(vanishedAsUndefined))),
  openToRead: async (path) => fileOfHandle(await openAt(path, READ_FLAGS)),
  fileOf: (handle) => fileOfHandle(handle),
  openDirectory: async (path) => {
    const handle = await openAt(path, DIRECTORY_FLAGS);
    return { path: listingPath(path, handle.fd), mountId: () => mountIdOf(handle.fd), close: () => handle.close() };
  },
};

/**
 * A directory's names in the order the file system gave them, with the type of each (d_type).
 * Read a batch of entries at a time (opendir) and packed as they come, not read all at once
 * as a Dirent a name (readdir), which a directory of 1,000,000 files took to 307-343 MiB.
 */
export type Listing = PackedListing;

/** Entries read from a directory per call (opendir's bufferSize): for a network file system, fewer round trips. */
const LISTING_BATCH = 1024;

/**
 * The largest directory (st_size) listed in one call (readdir) rather than in batches: a
 * Dirent a name at once is little for a directory this small (on ext4 a few thousand names),
 * and opendir's three calls cost ~13 us more a directory (100,000 of them: 1.3 s of CPU). A
 * directory of no size (some FUSE file systems) is read in batches.
 */
const WHOLE_LISTING_MAX_SIZE = 256 * 1024;

function listedWhole(size: number | undefined): boolean {
  return size !== undefined && size > 0 && size <= WHOLE_LISTING_MAX_SIZE;
}

function listingOf(entries: Dirent[]): Listing {
  const listing = new PackedListing();
  for (const entry of entries) listing.add(entry.name, listedTypeOf(entry));
  return listing;
}

type ListingEncoding = 'utf8' | 'buffer';

function listedTypeOf(entry: Dirent | Dirent<Buffer>): ListedType | undefined {
  if (entry.isFile()) return undefined;
  if (entry.isDirectory()) return 'directory';
  if (entry.isSymbolicLink()) return 'symlink';
  if (entry.isSocket()) return 'socket';
  if (entry.isFIFO()) return 'FIFO';
  if (entry.isCharacterDevice() || entry.isBlockDevice()) return 'device';
  return 'special file';
}

function openDirOptions(encoding: ListingEncoding): OpenDirOptions {
  return { encoding: encoding as BufferEncoding, bufferSize: LISTING_BATCH };
}

function readListingSync(dir: string, encoding: ListingEncoding): Listing {
  const listing = new PackedListing();
  const opened = opendirSync(fsPath(dir) as string, openDirOptions(encoding));
  try {
    for (let entry = opened.readSync(); entry !== null; entry = opened.readSync()) listing.add(entry.name, listedTypeOf(entry));
  } finally {
    opened.closeSync();
  }
  return listing;
}

async function readListing(dir: string, encoding: ListingEncoding): Promise<Listing> {
  const listing = new PackedListing();
  const opened = await fs.opendir(fsPath(dir) as string, openDirOptions(encoding));
  try {
    for (let entry = await opened.read(); entry !== null; entry = await opened.read()) listing.add(entry.name, listedTypeOf(entry));
  } finally {
    await opened.close();
  }
  return listing;
}

/**
 * A listing's names without their types, read as bytes (raw-name.ts), for the caller to
 * lstat. Where a file system gives no entry types (d_type DT_UNKNOWN: a FUSE file system
 * such as one written with fusepy, XFS made without ftype), Node lstats every name of a
 * listing itself, and one that fails fails the listing: a name removed since the listing was
 * read (any busy directory), or one that is not UTF-8 (Node lstats it by its U+FFFD text:
 * ENOENT). Such a listing failed as if the directory had vanished, and a backup left all of it
 * out (the whole tenant, with one warning and exit 0, for one Latin-1 name at its top). So a
 * listing that fails so is read again without types, as bytes, which Node does not stat.
 */
function untypedListing(raw: Buffer[]): Listing {
  const listing = new PackedListing();
  for (const name of raw) listing.add(name, 'untyped');
  return listing;
}

/**
 * `dir`'s names, each with its lstat, for a listing with types that failed with ENOENT: on a
 * file system that gives no entry types (d_type DT_UNKNOWN) Node lstats each name itself, and
 * one it cannot (a name that is not UTF-8, by its U+FFFD text; one removed since) fails the
 * whole listing (`untypedListing`). Here a name that cannot be lstat'ed is left out; a directory
 * gone fails again, with ENOENT. `asBytes`: names read and lstat'ed as their bytes
 * (raw-name.ts), else as Node's text of them.
 */
export async function namesLookedUp(dir: string, asBytes: boolean): Promise<{ name: string; stat: Stats }[]> {
  const names = asBytes ? (await fs.readdir(fsPath(dir), { encoding: 'buffer' })).map((name) => decodeRawName(name)) : await fs.readdir(dir);
  const stats = await Promise.all(names.map((name) => fs.lstat(fsPath(`${dir}/${name}`)).catch(() => undefined)));
  const found: { name: string; stat: Stats }[] = [];
  names.forEach((name, at) => {
    const stat = stats[at];
    if (stat !== undefined) found.push({ name, stat });
  });
  return found;
}

function listingPath(path: string, fd: number): string {
  return CAN_CHECK_OPENED_PATHS ? `${FD_LINKS}${fd}` : path;
}

// A backup runs as root over a tree its tenant can change at any moment. O_NOFOLLOW keeps an
// open from following a symlink in the last component only: a directory above it swapped for
// a symlink (to /etc, to another tenant) between the walk's listing and the open is followed,
// and the open lands outside the tenant. Node has no openat(2), so what was opened is checked
// after the open instead: procfs names the path an open descriptor was reached by, which a
// later swap does not change. Where procfs is not mounted nothing can be checked.

/** Where procfs lists this process's open descriptors as links to their paths. */
export const FD_LINKS = '/proc/self/fd/';
/** Whether `isOpenedAt` can tell (procfs is mounted). */
export const CAN_CHECK_OPENED_PATHS = existsSync(FD_LINKS);

/**
 * FD_LINKS by this process's number where procfs's `self` is this process (procfs of another
 * PID namespace names it otherwise: then FD_LINKS itself). The same links, reached without
 * resolving `self` on every path: an open through one costs ~0.4 µs less, per file of a
 * backup's reader threads (docs/benchmarks.md, stop 41).
 */
export const OWN_FD_LINKS = ownFdLinks();

function ownFdLinks(): string {
  try {
    return readlinkSync('/proc/self') === String(process.pid) ? `/proc/${process.pid}/fd/` : FD_LINKS;
  } catch {
    return FD_LINKS;
  }
}

/**
 * Opens a small file the tool made by its name in a directory another user may write in (the
 * base dir, whose owner is the gateway's service user), who can put anything there under that
 * name: it is never opened through a symlink nor waited on as a FIFO (a restore journal left
 * as a FIFO hung root's every command that sweeps the base dir, `tenants list`, for good).
 * ENOENT is thrown as it is; anything but a regular file, in one line naming it as `shown`.
 */
export async function openOwnFile(file: string, shown: string = shownPath(file)): Promise<{ handle: fs.FileHandle; stat: Stats }> {
  const handle = await fs.open(file, READ_FLAGS).catch((error: NodeJS.ErrnoException) => {
    // ELOOP: a symlink (O_NOFOLLOW); ENXIO: a socket.
    if (error.code === 'ELOOP') throw notOwnFileError(shown, 'a symlink');
    if (error.code === 'ENXIO') throw notOwnFileError(shown, 'a socket');
    throw error;
  });
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw notOwnFileError(shown, stat.isFIFO() ? 'a FIFO' : stat.isDirectory() ? 'a directory' : 'not a regular file');
    return { handle, stat };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** The first `maxBytes` bytes of the file open at `handle` (all of it, if shorter). */
export async function readUpTo(handle: fs.FileHandle, maxBytes: number): Promise<Buffer> {
  const buffer = Buffer.alloc(maxBytes);
  let length = 0;
  for (let read = -1; read !== 0 && length < buffer.length; length += read) ({ bytesRead: read } = await handle.read(buffer, length, buffer.length - length, length));
  return buffer.subarray(0, length);
}

/** A small file the tool made by its name (openOwnFile), refused when larger than `maxBytes`. */
export async function readOwnFile(file: string, maxBytes: number): Promise<Buffer> {
  return (await readOwnFileAndOwner(file, maxBytes)).bytes;
}

/**
 * readOwnFile, or undefined where there is no such file: a state file a chain may have. Any
 * other failure to read it is one line naming `what` it is.
 */
export async function readOwnFileIfPresent(file: string, maxBytes: number, what: string): Promise<OwnFileRead | undefined> {
  try {
    return await readOwnFileAndOwner(file, maxBytes);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (error instanceof FileSystemError) throw error;
    throw new FileSystemError(`cannot read ${what} (${file}): ${errnoMessage(error) ?? String(error)}`, { cause: error });
  }
}

/** A file read by readOwnFileAndOwner: its bytes, and its owner and mode when it was read. */
export interface OwnFileRead {
  readonly bytes: Buffer;
  readonly uid: number;
  readonly mode: number;
}

/**
 * What makes a file read from the base dir (a chain's checkpoint or state) not one this tool
 * saved there, or undefined: writable by its group or others (saved 0600), or owned by a user
 * who is neither this process's nor the base dir's owner. The base dir's owner writes there
 * anyway, and owns everything the functions save through EFS's access point (they run as
 * Lambda's own user); root's recovery on the gateway reads those.
 */
export async function notSavedByThisTool(baseDir: string, read: OwnFileRead): Promise<string | undefined> {
  const self = process.geteuid?.();
  if (self === undefined) return undefined;
  const writable = writableByOthers(read);
  if (writable !== undefined) return writable;
  if (read.uid === self) return undefined;
  const baseOwner = (await fs.stat(baseDir)).uid;
  if (read.uid === baseOwner) return undefined;
  return `owned by uid ${read.uid}, neither this process's user (uid ${self}) nor the base dir's owner (uid ${baseOwner})`;
}

/** What makes a file read from the base dir one others than its owner may have written (it is saved 0600), or undefined. */
export function writableByOthers(read: Pick<OwnFileRead, 'mode'>): string | undefined {
  if ((read.mode & 0o022) === 0) return undefined;
  return `writable by ${(read.mode & 0o020) !== 0 ? 'its group' : 'others'} (mode ${(read.mode & 0o7777).toString(8).padStart(4, '0')}; saved 0600)`;
}

/** readOwnFile, with the uid and mode of the file read (whose records the caller may trust: the restore journal's writer). */
export async function readOwnFileAndOwner(file: string, maxBytes: number): Promise<OwnFileRead> {
  const { handle, stat } = await openOwnFile(file);
  try {
    const limit = Math.min(maxBytes, Math.max(stat.size, 64 * 1024));
    const bytes = await readUpTo(handle, limit);
    if (bytes.length === limit && bytes.length < stat.size) throw new FileSystemError(`${shownPath(file)} is larger than any file this tool makes there (${stat.size} bytes): someone else who can write in its directory put it there; remove it, then run the command again`);
    return { bytes, uid: stat.uid, mode: stat.mode };
  } finally {
    await handle.close();
  }
}

function notOwnFileError(shown: string, what: string): FileSystemError {
  return new FileSystemError(`${shown} is ${what}, which this tool never makes: someone else who can write in its directory put it there; remove it, then run the command again`);
}

/**
 * A directory the tool just made in a directory another user may write in (the base dir),
 * held by its descriptor (`pinDirectory`): that user may rename it away and leave a symlink
 * under its name, and root, going on by the name, would write, chmod, chown or remove
 * wherever the link leads. Its files are named through `link`, which resolves in the
 * directory opened whatever its name becomes meanwhile.
 */
export interface PinnedDirectory {
  /** Its path when it was made. */
  readonly path: string;
  /** `/proc/self/fd/N`, the directory opened; undefined where procfs cannot be read (nothing is checked then). */
  readonly link: string | undefined;
  /** Whether `at` (its own path by default) still leads to the directory held (same device and inode); true where nothing is checked. */
  isAt(at?: string): Promise<boolean>;
  /** Where the directory held is now, as procfs names it; undefined once it is removed, or where that cannot be read. */
  whereNow(): Promise<string | undefined>;
  /** Closes it, then removes it by its name if that still leads to it (rmdir: only once emptied through `link`, never through a symlink). */
  closeAndRemove(): Promise<void>;
  /** Closes it (again: nothing). */
  close(): Promise<void>;
}

/**
 * Whether `uid` is an owner a directory this process just made in `parent` can have: this
 * user's, or, for a user other than root, `parent`'s owner's. A file system that gives every
 * new file one owner whatever the caller does the latter: through an EFS access point the
 * functions run as Lambda's own user and everything they create belongs to the access point's
 * (the base dir's owner). Root's must be root's: its commands are what the base dir's owner
 * may try to steer.
 */
export async function isOwnNewDirectory(uid: number | bigint, parent: string): Promise<boolean> {
  const self = process.geteuid?.();
  if (self === undefined || BigInt(uid) === BigInt(self)) return true;
  if (self === 0) return false;
  const owner = await fs.stat(parent).then((stat) => stat.uid, () => undefined);
  return owner !== undefined && BigInt(owner) === BigInt(uid);
}

/**
 * Opens the directory just made at `dir` (never through a symlink) and checks through procfs
 * that the descriptor is the directory at that path; `mode`: also that it is this user's and
 * empty, with no mode bit beyond the one mkdir was given (but setgid, which a setgid parent
 * gives), as mkdir made it (a directory the other user renamed the new one away for and put
 * in its place is theirs). A directory that is not that one is thrown as
 * `replaced(how)`, the caller's own one-line error, with nothing left open. Where procfs
 * cannot be read the directory is held unchecked, its files named by its path (callers as
 * root refuse that before: mustRefuseWithoutProcfs).
 */
export async function pinDirectory(dir: string, replaced: (how: string, cause?: unknown) => Error, { mode, inode }: { mode?: number; inode?: string } = {}): Promise<PinnedDirectory> {
  const handle = await fs.open(dir, DIRECTORY_FLAGS).catch((error: unknown) => {
    // A symlink (ELOOP, or ENOTDIR with O_DIRECTORY) or nothing where it was just made.
    if (!['ELOOP', 'ENOTDIR', 'ENOENT'].includes(errnoCode(error) ?? '')) throw error;
    throw replaced('it is no longer a directory there', error);
  });
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await handle.close();
  };
  const link = `${FD_LINKS}${handle.fd}`;
  if (!CAN_CHECK_OPENED_PATHS) return { path: dir, link: undefined, isAt: async () => true, whereNow: async () => undefined, closeAndRemove: close, close };
  try {
    const opened = await fs.readlink(link);
    if (mode !== undefined) {
      const [stat, names] = await Promise.all([handle.stat(), fs.readdir(link)]);
      // No bit beyond `mode`: the umask (or a default ACL) may have stripped some as mkdir
      // made it, and a setgid base dir gives it its setgid bit.
      if (!stat.isDirectory() || !(await isOwnNewDirectory(stat.uid, dirname(dir))) || (stat.mode & 0o7777 & ~mode & ~SETGID) !== 0 || names.length > 0) {
        throw replaced(`the directory there is not the empty 0${mode.toString(8)} one it made`);
      }
    }
    if (inode !== undefined) {
      // A directory made earlier (a restore's staging between its pieces): the very one recorded, still this user's.
      const stat = await handle.stat({ bigint: true });
      if (!stat.isDirectory() || String(stat.ino) !== inode || (process.geteuid !== undefined && stat.uid !== BigInt(process.geteuid()))) throw replaced('the directory there is not the one it made');
    }
    if (opened !== join(await fs.realpath(dirname(dir)), basename(dir))) throw replaced(`it now leads to ${shownPath(opened)}`);
  } catch (error) {
    await close();
    throw error;
  }
  const isAt = async (at = dir): Promise<boolean> => {
    const [held, named] = await Promise.all([handle.stat(), fs.lstat(at).catch(() => undefined)]);
    return named !== undefined && named.ino === held.ino && named.dev === held.dev;
  };
  return {
    path: dir,
    link,
    isAt,
    whereNow: async () => {
      const now = await fs.readlink(link).catch(() => undefined);
      return now === undefined || now.endsWith(' (deleted)') ? undefined : now;
    },
    async closeAndRemove() {
      const held = await handle.stat().finally(close);
      const named = await fs.lstat(dir).catch(() => undefined);
      if (named !== undefined && named.ino === held.ino && named.dev === held.dev) await fs.rmdir(dir).catch(() => undefined);
    },
    close,
  };
}

/**
 * For a message: a path named through a descriptor's procfs link (`/proc/self/fd/N/name`, as
 * an encrypted backup's scratch area names its files) with the link replaced by the path of
 * the directory it leads to, which is what a user can look at; any other path, or one whose
 * descriptor is closed, as it is.
 */
export function pathBehindLink(linked: string): string {
  const match = /^\/proc\/self\/fd\/(\d+)(\/.*)?$/.exec(linked);
  if (match === null) return linked;
  try {
    return `${readlinkSync(`${FD_LINKS}${match[1]}`)}${match[2] ?? ''}`;
  } catch {
    return linked;
  }
}

/**
 * Refuses to read a tenant's tree as root where procfs is missing: nothing could tell a
 * directory the tenant swapped for a symlink meanwhile, and root would read (and archive) the
 * files it leads to outside the tenant. As the tenants' own user a swap gains the tenant nothing.
 */
export function assertSwapsCanBeTold(tenant: string): void {
  if (!mustRefuseWithoutProcfs()) return;
  throw new FileSystemError(
    `cannot back up tenant "${tenant}" as root: procfs is not mounted at /proc, without which a directory the tenant swaps for a symlink during the backup cannot be told from its own (it could archive files from outside the tenant); mount /proc, or run the backup as the tenants' user`,
  );
}

/**
 * The same for a restore as root, which removes trees a tenant can change while it runs: the
 * tenant replaced by --force (its agent may still run in it), and what an interrupted restore
 * left. Without procfs a removal could go only by paths (remove-tree.ts), and a directory
 * swapped for a symlink meanwhile would have root delete what it leads to outside the tenant.
 */
export function assertRemovalsCanBeTold(): void {
  if (!mustRefuseWithoutProcfs()) return;
  throw new FileSystemError(
    `cannot restore as root: procfs is not mounted at /proc, without which a directory a tenant swaps for a symlink while its old tree is removed cannot be told from its own (it could delete files outside the tenant); mount /proc, or run the restore as the tenants' user`,
  );
}

/** Whether this process is root where procfs is missing: what root does in a tenant's tree could not be checked. */
export function mustRefuseWithoutProcfs(): boolean {
  return !CAN_CHECK_OPENED_PATHS && process.geteuid?.() === 0;
}

/**
 * Whether the open descriptor `fd` was reached by `path`, a real path (absolute, no symlink,
 * `.` or `..` in it): false if a directory on the way had been swapped for a symlink, or the
 * file has been removed or renamed since. True where this cannot be told (no procfs). Throws
 * what reading the descriptor's link throws (EIO…): a check that failed, not a vanished file.
 */
export function isOpenedAt(fd: number, path: string): boolean {
  if (!CAN_CHECK_OPENED_PATHS) return true;
  const target = readlinkSync(`${FD_LINKS}${fd}`);
  // A path that is not UTF-8 reads back with U+FFFD for its bad bytes: compared as bytes (raw-name.ts).
  return target === path || (target.includes('\ufffd') && decodeRawName(readlinkSync(`${FD_LINKS}${fd}`, { encoding: 'buffer' })) === path);
}

/** The error an open answers with when the path led elsewhere: as if the file had vanished (isVanished). */
export function swappedPathError(path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOENT: ${path} no longer leads to the file listed there (a directory on the way was replaced)`), { code: 'ENOENT', path });
}

// Opening is not free of effects: a FIFO's waiting writer is let go, a device runs its driver
// (a watchdog starts, a tape rewinds on close), a terminal may become the controlling one. So a
// file is opened only in a directory already opened and checked (O_DIRECTORY, which opens no
// device), through that directory's procfs link: its name cannot lead anywhere else.

/**
 * openSync of a real path, never outside the directory at its parent's real path:
 * swappedPathError (nothing left open) if a directory on the way led elsewhere.
 */
export function openSyncAt(path: string, flags: number): number {
  const slash = path.lastIndexOf('/');
  if (!CAN_CHECK_OPENED_PATHS || slash <= 0 || (flags & fsConstants.O_DIRECTORY) !== 0) {
    let fd: number;
    try {
      fd = openSync(fsPath(path), flags);
    } catch (error) {
      throw namedBy(error, path, path);
    }
    return checkedSync(fd, path);
  }
  const directory = checkedSync(directoryOrSwapped(() => openSync(fsPath(path.slice(0, slash)), DIRECTORY_FLAGS), path), path.slice(0, slash));
  const through = `${FD_LINKS}${directory}/${path.slice(slash + 1)}`;
  try {
    return checkedSync(openSync(fsPath(through), flags), path);
  } catch (error) {
    throw namedBy(error, through, path);
  } finally {
    closeSync(directory);
  }
}

/**
 * A failed call through a procfs link (`through`, or a name below it), named by the file's own
 * path (`path`, or that name below it), as an error message shows it. A name that is not UTF-8
 * (raw-name.ts) went to the call as bytes, which Node's error names with U+FFFD in its place:
 * it is named as the code holds it again (shown escaped, `\udce9`, not as U+FFFD).
 */
export function namedBy(error: unknown, through: string, path: string): unknown {
  const failed = error as NodeJS.ErrnoException;
  if (typeof failed?.path !== 'string') return error;
  const called = hasRawBytes(through) ? rawName(through).toString('utf8') : through;
  if (failed.path !== called && !failed.path.startsWith(`${called}/`)) return error;
  const named = `${path}${failed.path.slice(called.length)}`;
  failed.message = failed.message.replace(failed.path, named);
  failed.path = named;
  return failed;
}

/** The parent directory opened by `open`; a symlink in its place (ELOOP) is a swap, as `swappedPathError` says. */
function directoryOrSwapped<T>(open: () => T, path: string): T {
  try {
    const opened = open();
    return opened instanceof Promise ? (opened.catch((error: unknown) => { throw swapped(error, path); }) as T) : opened;
  } catch (error) {
    throw swapped(error, path);
  }
}

function swapped(error: unknown, path: string): unknown {
  return (error as NodeJS.ErrnoException).code === 'ELOOP' ? swappedPathError(path) : error;
}

function checkedSync(fd: number, path: string): number {
  let openedAt: boolean;
  try {
    openedAt = isOpenedAt(fd, path);
  } catch (error) {
    closeSync(fd);
    throw checkFailedError(path, error);
  }
  if (openedAt) return fd;
  closeSync(fd);
  throw swappedPathError(path);
}

/** `openSyncAt` with promise calls. */
export async function openAt(path: string, flags: number): Promise<fs.FileHandle> {
  const slash = path.lastIndexOf('/');
  if (!CAN_CHECK_OPENED_PATHS || slash <= 0 || (flags & fsConstants.O_DIRECTORY) !== 0) {
    return checked(await fs.open(fsPath(path), flags).catch((error: unknown) => Promise.reject(namedBy(error, path, path))), path);
  }
  const directory = await checked(await directoryOrSwapped(() => fs.open(fsPath(path.slice(0, slash)), DIRECTORY_FLAGS), path), path.slice(0, slash));
  const through = `${FD_LINKS}${directory.fd}/${path.slice(slash + 1)}`;
  try {
    return await checked(await fs.open(fsPath(through), flags).catch((error: unknown) => Promise.reject(namedBy(error, through, path))), path);
  } finally {
    await directory.close();
  }
}

async function checked(handle: fs.FileHandle, path: string): Promise<fs.FileHandle> {
  if (!CAN_CHECK_OPENED_PATHS) return handle;
  let target: string;
  try {
    target = await fs.readlink(`${FD_LINKS}${handle.fd}`);
    if (target !== path && target.includes('\ufffd')) target = decodeRawName(await fs.readlink(`${FD_LINKS}${handle.fd}`, { encoding: 'buffer' }));
  } catch (error) {
    await handle.close();
    throw checkFailedError(path, error);
  }
  if (target === path) return handle;
  await handle.close();
  throw swappedPathError(path);
}

/**
 * Every descriptor this process has open, with the path procfs names it by (empty without
 * procfs), to check how `checking` was opened. A link that cannot be read for another reason
 * than its descriptor closing (EIO…) is thrown, as a failed check of `checking`: a descriptor
 * left out would pass for SQLite's having opened another file.
 */
export function openDescriptors(checking: string): Map<number, string> {
  const open = new Map<number, string>();
  if (!CAN_CHECK_OPENED_PATHS) return open;
  for (const name of readdirSync(FD_LINKS)) {
    try {
      // By its bytes: a path that is not UTF-8 is read as the tenant's walk names it (raw-name.ts), not as U+FFFD.
      const link = readlinkSync(`${FD_LINKS}${name}`);
      open.set(Number(name), link.includes('\ufffd') ? decodeRawName(readlinkSync(`${FD_LINKS}${name}`, { encoding: 'buffer' })) : link);
    } catch (error) {
      // closed meanwhile (the listing's own descriptor among them)
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw checkFailedError(checking, error);
    }
  }
  return open;
}

/** The failed readlink of a descriptor's procfs link, as an error of the file opened (`path`), so that it is reported by that name. */
function checkFailedError(path: string, error: unknown): unknown {
  const { code, errno } = error as NodeJS.ErrnoException;
  if (code === undefined) return error;
  return Object.assign(new Error(`${code}: cannot check which file was opened (readlink of its descriptor), '${path}'`, { cause: error }), { code, errno, syscall: 'readlink', path });
}

/** statfs(2) f_type of file systems whose calls cross a network or a user-space daemon. */
const REMOTE_FILE_SYSTEMS = new Set([
  0x6969, // NFS (EFS)
  0xff534d42, // CIFS
  0xfe534d42, // SMB2
  0x517b, // SMB
  0x65735546, // FUSE
  0x564c, // NCP
]);

/** The access for the file system `dir` is on; PARALLEL_ACCESS when that cannot be told. */
export function fileAccessFor(dir: string): FileAccess {
  try {
    return REMOTE_FILE_SYSTEMS.has(statfsSync(dir).type) ? PARALLEL_ACCESS : SYNC_ACCESS;
  } catch {
    return PARALLEL_ACCESS;
  }
}

/** Whether a failed call means the path is gone: removed, or a parent replaced by a file. */
export function isVanished(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function syncFile(fd: number, close = () => closeSync(fd)): OpenFile {
  return {
    read: (buffer, offset, length, position) => readSync(fd, buffer, offset, length, position),
    stat: () => fstatSync(fd),
    close,
  };
}

/** An open handle read with promise calls, whatever the access. */
export function fileOfHandle(handle: fs.FileHandle): OpenFile {
  return {
    read: async (buffer, offset, length, position) => (await handle.read(buffer, offset, length, position)).bytesRead,
    stat: () => handle.stat(),
    close: () => handle.close(),
  };
}

function lstatOrVanished(path: string): Stats | undefined {
  try {
    return lstatSync(fsPath(path));
  } catch (error) {
    return vanishedAsUndefined(error);
  }
}

function vanishedAsUndefined(error: unknown): undefined {
  if (isVanished(error)) return undefined;
  throw error;
}
