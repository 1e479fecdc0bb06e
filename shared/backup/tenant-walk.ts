// Walks a tenant directory for backup: depth first, a directory before its children,
// names in byte order so archives are reproducible. Never follows a symlink. Leaves out
// what must not or cannot be archived, each with a reason: the ephemeral `pty/` tree,
// sockets, FIFOs and devices, symlinks whose target would resolve outside the tenant (so
// every backup is restorable), and files that vanish mid-walk (a vanished entry is both
// left out and warned about: the tenant changed under the backup).
//
// Each file comes with its directory's listing (`listing`), so the archive writer can tell
// a SQLite database that has a `-wal`/`-shm`/`-journal` beside it from an idle one, whatever
// order the two are met in. (Byte order always puts `x.sqlite` before `x.sqlite-wal`: a
// name sorts before every name it is a prefix of.)
//
// A listing carries each name's type (d_type), so regular files are not stat'ed here: the
// read that archives a file stats its open handle anyway (one fstat instead of an lstat by
// path, and on a network file system one round trip fewer). Directories and symlinks are
// lstat'ed for their mode and mtime. Items are handed out in runs (`TenantWalk.next`), so
// the caller can read many files ahead of the one it archives.
//
// A name that is not valid UTF-8 is walked as its bytes (Node hands it over with U+FFFD in
// place of its bad bytes, a name no call can open: its listing is read again as bytes, and
// the name held as raw-name.ts holds it), so is a symlink target; names sort by their bytes.
// Left out, with a warning that says so, is what lies deeper than a restore goes (MAX_ENTRY_DEPTH), and a path longer than PATH_MAX where a
// restore beside the tenant writes it (in a staging directory with a longer name than the
// tenant's; no system call takes a longer path, and the archive entry name `tenants/<name>/…`
// is shorter still, so a restore never refuses it): a backup that held them would not
// restore, or not finish. Any other name Linux allows is archived, control characters and
// backslashes included (tenant/names.ts).
//
// The walk runs as root over a tree its tenant can change at any moment: each directory is
// opened (never through a symlink) and checked to be the one at its path before it is listed,
// and its entries are listed, lstat'ed and read (symlinks) through the open directory, so a
// directory swapped for a symlink to /etc or to another tenant is never listed; the items'
// paths are real paths (the root's symlinks resolved), against which every read checks what
// it opened (file-access.ts `isOpenedAt`).
//
// A mount point inside the tenant (an operator's bind mount or tmpfs, a FUSE mount a tenant
// process made) holds no data of the tenant's: the walk stays on the tenant's file system, as
// GNU tar and restic do with --one-file-system. The mount point is archived as an empty
// directory (a restore makes it again, for the mount), nothing under it is, and it is warned
// about in one line; a file mounted over a file, and a mount root may not even stat (FUSE
// without allow_other), are left out with the warning. Mounts are told by procfs alone
// (mounts.ts: the mount table once, an opened directory's mount id), never by a further call
// to the file system, so a network file system gets no extra round trip; without procfs, by
// st_dev (which a bind mount of the same file system shares). A mount made over a directory
// the walk had already listed is not told by either, and the files of that listing would be
// read through it: the archive asks the walk at its end what was mounted meanwhile
// (`mountsMadeSince`) and fails the backup if anything was (tenant-archive.ts).
//
// A walk can start after a given item (`resumeAfter`: a backup that continues in another
// invocation): everything up to it in walk order (`compareWalkOrder`) is left out, and only
// the directories above it are listed again, to go on below them. What is there now is
// walked; what changed in the part already walked is not looked at again.

import { lstatSync, promises as fs, readlinkSync, realpathSync, type Stats } from 'node:fs';
import path from 'node:path';

import { isVanished, namedBy, PARALLEL_ACCESS, type FileAccess, type Listing, type Maybe, type OpenDirectory } from '../file-access.js';
import type { PackedListing } from '../packed-listing.js';
import { mountPointsUnder } from '../mounts.js';
import { resolveInsideRoot } from '../restore/link-resolve.js';
import { MANIFEST_FILE_NAME, type ManifestNote } from '../archive/manifest.js';
import { quotedPath } from '../format.js';
import { decodeRawName, fsPath, rawByteLength, rawName } from '../raw-name.js';
import { MAX_ENTRY_DEPTH } from '../restore/limits.js';
import { hiddenNames } from '../tenant/hidden-names.js';
import { EPHEMERAL_DIR, PATH_MAX_BYTES } from '../tenant/names.js';
import { unsigned } from './link-key.js';
import type { SeenInodes } from './seen-inodes.js';

/** A directory's names as the walk listed them, shared by the file items in it. */
export interface DirectoryListing {
  /** Every name in the directory, in walk order. */
  readonly names: PackedListing;
  /** The names with a SQLite companion beside them: worked out by the backup on first use (live-files.ts). */
  databases?: ReadonlySet<string>;
}

export type WalkItem =
  | { readonly kind: 'directory'; readonly relPath: string; readonly stat: ListedEntryStat }
  | {
      readonly kind: 'file';
      readonly relPath: string;
      /** The path of the file's directory (the walk's root joined with the directory's relative path): one string per directory, see `absPathOf`. */
      readonly dirPath: string;
      /** The file's own name (last path segment). */
      readonly name: string;
      /** The file's directory when it was listed (one per directory). */
      readonly listing: DirectoryListing;
      /** The listing's size and mtime, only when the walk was asked for them (`statFiles`): a backup's read stats the open file. */
      readonly stat: ListedFileStat | undefined;
    }
  | { readonly kind: 'symlink'; readonly relPath: string; readonly target: string; readonly stat: ListedEntryStat }
  /**
   * Something the walk leaves out, where it met it: recorded in walk order when the caller
   * reaches it (so the manifest's notes do not depend on how far ahead the walk ran).
   */
  | { readonly kind: 'note'; readonly relPath: string; readonly skipped: string; readonly warning?: string };

/**
 * What the walk keeps of a regular file's lstat (`statFiles`): a whole Stats takes ~740 bytes
 * of heap, and a directory's items, with their stats, live until the walk moves past it: a
 * directory of 500,000 files took `tenants list` to 650 MiB. The rest is dropped as each
 * lstat answers.
 */
export interface ListedFileStat {
  readonly size: number;
  readonly mtimeMs: number;
  /** Device and inode of a file with more than one name (st_nlink > 1); undefined for the others. */
  readonly inode?: { readonly dev: number; readonly ino: number };
  /** Its mode bits deny this process reading it (an ACL may still allow it): see `deniedByMode`. */
  readonly deniedByMode?: true;
}

/**
 * What the walk keeps of a directory's or symlink's lstat, for the same reason (ListedFileStat):
 * 100,000 symlinks in one directory held ~70 MiB of Stats until the walk moved past it.
 */
export interface ListedEntryStat {
  readonly mode: number;
  readonly mtimeMs: number;
  /** st_size: a directory's tells how it is best listed (FileAccess `readdir`). */
  readonly size: number;
  /** The device: a directory on another one is a mount point. */
  readonly dev: number;
}

/** What lstatAll keeps of anything but a regular file: its type ('directory', 'symlink', or what special file it is) beside the rest. */
interface ListedOtherStat extends ListedEntryStat {
  readonly type: string;
}

/**
 * Whether a listed file's content counts towards what a backup stores: a file with more than
 * one name counts once, at its first name in walk order (`seen` holds the ones counted); its
 * later names are archived as hard links to it. A promise only for an inode number past 2^53
 * (`exactInodeOf`).
 */
export function firstNameOf(item: Extract<WalkItem, { kind: 'file' }>, stat: ListedFileStat, seen: SeenInodes): boolean | Promise<boolean> {
  const inode = stat.inode;
  if (inode === undefined) return true;
  if (Number.isSafeInteger(inode.ino)) return seen.add(inode.dev, inode.ino);
  return exactInodeOf(absPathOf(item), inode).then((exact) => seen.add(inode.dev, inode.ino, exact));
}

/**
 * The `dev:ino` of a file whose inode number is past 2^53 (which the number-valued lstat
 * rounds: overlayfs with xino, 64-bit NFS fileids), in full, by a bigint lstat of its path;
 * undefined when the path no longer names a file of more than one name with the numbers the
 * walk saw (vanished or replaced since): it is then counted as a file of its own.
 */
async function exactInodeOf(absPath: string, inode: { readonly dev: number; readonly ino: number }): Promise<string | undefined> {
  const exact = await fs.lstat(fsPath(absPath), { bigint: true }).catch(() => undefined);
  if (exact === undefined || !exact.isFile() || exact.nlink < 2n) return undefined;
  const [dev, ino] = [unsigned(exact.dev), unsigned(exact.ino)];
  if (Number(dev) !== inode.dev || Number(ino) !== inode.ino) return undefined;
  return `${dev}:${ino}`;
}

/**
 * A file item's path on disk. Built when needed rather than held by every item: a directory's
 * items all live until the walk has moved past it, and each path is read once.
 */
export function absPathOf(item: Extract<WalkItem, { kind: 'file' }>): string {
  return `${item.dirPath}/${item.name}`;
}

/** Where the walk records what it leaves out. */
export interface WalkNotes {
  /** Left out of the archive, with the reason. */
  readonly skipped: ManifestNote[];
  /** Caveats about the backup: entries that vanished while it ran are noted here too. */
  readonly warnings: ManifestNote[];
}

export interface WalkOptions {
  /** lstat every regular file as it is listed (for `tenants list`, which only needs sizes). */
  readonly statFiles?: boolean;
  /** Hand out only what comes after this path in walk order (the last item a stopped backup archived). */
  readonly resumeAfter?: string;
}

/**
 * The walk's order of two relative paths: a directory before what it holds, names in the
 * byte order of their UTF-8 encoding (as PackedListing `sorted`), compared one path segment at a time.
 */
export function compareWalkOrder(a: string, b: string): number {
  if (a === b) return 0;
  // NUL sorts before every byte a name can hold, so "a/x" (a's child) comes before "a-b".
  return Buffer.compare(rawName(a.replaceAll('/', '\0')), rawName(b.replaceAll('/', '\0')));
}

/** Whether `directory` is `relPath` or one of the directories above it. */
function isAtOrAbove(directory: string, relPath: string): boolean {
  return directory === '' || directory === relPath || relPath.startsWith(`${directory}/`);
}

/** Records an entry that disappeared between being listed and being read: skipped, and warned about. */
export function noteVanished(notes: WalkNotes, relPath: string): void {
  recordNote(notes, vanished(relPath));
}

/** Records a note item in `notes`. */
export function recordNote(notes: WalkNotes, note: Extract<WalkItem, { kind: 'note' }>): void {
  notes.skipped.push({ path: note.relPath, reason: note.skipped });
  if (note.warning !== undefined) notes.warnings.push({ path: note.relPath, reason: note.warning });
}

type Note = Extract<WalkItem, { kind: 'note' }>;

function vanished(relPath: string): Note {
  return { kind: 'note', relPath, skipped: 'vanished during backup', warning: 'vanished during backup; not archived' };
}

/** A directory whose entry is archived but which vanished before its contents could be listed. */
function vanishedDirectory(relPath: string): Note {
  return { kind: 'note', relPath, skipped: 'directory vanished during backup', warning: 'directory vanished during backup; its contents are not archived' };
}

function pathTooLong(relPath: string, directory: boolean): Note {
  const what = `path longer than ${PATH_MAX_BYTES} bytes where a restore writes it`;
  return {
    kind: 'note',
    relPath,
    skipped: what,
    warning:
      `${what} (PATH_MAX, in a staging directory beside the tenant), which no system call takes: ` +
      `not archived${directory ? ', nor anything in it' : ''} (move it higher up to back it up)`,
  };
}

function tooDeep(relPath: string): Note {
  const reason = `nested deeper than ${MAX_ENTRY_DEPTH} directories, which a restore refuses`;
  return { kind: 'note', relPath, skipped: reason, warning: `${reason}: not archived, nor anything in it` };
}

/** How much longer than the tenant's the name of a restore's staging directory beside it is (and than `tenants/`). */
function stagingExtraBytes(tenant: string): number {
  return Buffer.byteLength(hiddenNames.staging(tenant)) - Buffer.byteLength(tenant);
}

/**
 * The names of the listing of `dirPath` (by index) whose paths would be longer than PATH_MAX
 * where a restore beside the tenant writes them (`extraBytes` longer than here); undefined
 * when there are none (most listings).
 */
function pathsTooLong(dirPath: string, names: PackedListing, extraBytes: number): ReadonlySet<number> | undefined {
  const room = PATH_MAX_BYTES - rawByteLength(dirPath) - extraBytes - 1;
  let found: Set<number> | undefined;
  for (let index = 0; index < names.size; index++) {
    if (names.byteLength(index) > room) (found ??= new Set()).add(index);
  }
  return found;
}

/** Whether the entries of the directory `relPath` lie deeper than a restore goes. */
function childrenTooDeep(relPath: string): boolean {
  // Each segment takes at least two characters with its slash: most paths are ruled out by length.
  if (relPath.length < 2 * MAX_ENTRY_DEPTH - 1) return false;
  let segments = 1;
  for (let at = relPath.indexOf('/'); at !== -1; at = relPath.indexOf('/', at + 1)) segments++;
  return segments >= MAX_ENTRY_DEPTH;
}

/** A mount point inside the tenant: its directory archived, nothing on it (see the top of the file). */
function mountPoint(relPath: string): Note {
  return {
    kind: 'note',
    relPath,
    skipped: 'mount point: archived as an empty directory, not what is mounted on it',
    warning: 'mount point (another file system or a bind mount): archived as an empty directory, not what is mounted on it (back that up on its own)',
  };
}

/** A file a bind mount put over a name in the tenant. */
function mountedFile(relPath: string): Note {
  const reason = 'file mounted over (a bind mount): not archived';
  return { kind: 'note', relPath, skipped: reason, warning: `${reason} (back it up on its own)` };
}

/** A mount point that answers root EACCES. */
function unreadableMount(relPath: string): Note {
  const reason = 'mount point root may not read (a FUSE mount made without allow_other): not archived, nor what is mounted on it';
  return { kind: 'note', relPath, skipped: reason, warning: reason };
}

function leftOut(relPath: string, reason: string): Note {
  return { kind: 'note', relPath, skipped: reason };
}

/** How many lstat calls one directory may have in flight. */
const STAT_CONCURRENCY = 64;
/** Items handed out at a time by walkTenant. */
const WALK_RUN = 256;

/**
 * A listed directory: its items in walk order, and how far the walk has got. Plain files (no
 * stat asked for: a backup's) one after another in the listing are a FileRun until each is
 * handed out: an item object, or even a string, per file was held for every file of the
 * directory until the walk moved past it (1,000,000 files in one directory: ~300 MiB at the
 * peak, V8 letting its heap grow to a few times what it found alive).
 */
interface Cursor {
  readonly items: (WalkItem | FileRun)[];
  next: number;
  /** What every file of a FileRun in `items` shares; absent when `items` holds none. */
  readonly files?: FilesOf;
}

/** Plain files listed one after another: the names from `next` up to `end` of their directory's listing. */
interface FileRun {
  next: number;
  end: number;
}

function isFileRun(item: WalkItem | FileRun): item is FileRun {
  return 'end' in item;
}

/** A listed directory's part of its plain files' items. */
interface FilesOf {
  /** The directory's relative path and a slash; '' at the root. */
  readonly prefix: string;
  readonly dirPath: string;
  readonly listing: DirectoryListing;
  /** The lstat of its regular files, when the walk was asked for them (`statFiles`). */
  readonly stats?: ListedFileStats;
}

/**
 * The lstat of a directory's regular files (`statFiles`), by their index in its listing: kept
 * packed, as an object (and a Map entry) per file held 1,000,000 files in one directory at
 * ~330 MiB in `tenants list`. A file that is something else by its lstat, or vanished, is told apart.
 */
class ListedFileStats {
  private readonly sizes: Float64Array;
  private readonly mtimes: Float64Array;
  /** Per index: FOUND_FILE, or not (vanished, or not a regular file now: `others`). */
  private readonly found: Uint8Array;
  /** Device and inode of the files with more than one name, NaN for the others; made at the first such file. */
  private devs: Float64Array | undefined;
  private inos: Float64Array | undefined;
  /** Those that were something else when stat'ed. */
  private readonly others = new Map<number, ListedOtherStat>();

  constructor(count: number) {
    this.sizes = new Float64Array(count);
    this.mtimes = new Float64Array(count);
    this.found = new Uint8Array(count);
  }

  record(index: number, stat: Stats | undefined): void {
    if (stat === undefined) return;
    if (!stat.isFile()) {
      this.others.set(index, listedOtherStat(stat));
      return;
    }
    this.found[index] = deniedByMode(stat) ? FOUND_FILE_DENIED_BY_MODE : FOUND_FILE;
    this.sizes[index] = stat.size;
    this.mtimes[index] = stat.mtimeMs;
    if (stat.nlink > 1) {
      if (this.devs === undefined) {
        this.devs = new Float64Array(this.sizes.length).fill(Number.NaN);
        this.inos = new Float64Array(this.sizes.length);
      }
      this.devs[index] = stat.dev;
      this.inos![index] = stat.ino;
    }
  }

  isFile(index: number): boolean {
    return this.found[index] !== 0;
  }

  /** A regular file's stat (`isFile`), as `listedFileStat` makes it. */
  fileStat(index: number): ListedFileStat {
    const dev = this.devs?.[index];
    const size = this.sizes[index]!;
    const mtimeMs = this.mtimes[index]!;
    const denied = this.found[index] === FOUND_FILE_DENIED_BY_MODE ? { deniedByMode: true as const } : {};
    return dev === undefined || Number.isNaN(dev) ? { size, mtimeMs, ...denied } : { size, mtimeMs, inode: { dev, ino: this.inos![index]! }, ...denied };
  }

  /** What a name listed as a regular file is by its lstat when it is no longer one; undefined when it vanished. */
  otherStat(index: number): ListedOtherStat | undefined {
    return this.others.get(index);
  }
}

const FOUND_FILE = 1;
const FOUND_FILE_DENIED_BY_MODE = 2;

const euid = process.geteuid?.();
const groups = euid === undefined || euid === 0 ? undefined : new Set([process.getegid!(), ...process.getgroups!()]);

/**
 * Whether a file's mode bits deny this process reading it: the owner's bits for its owner,
 * the group's for a member, the others' for the rest; never for root, nor where there are no
 * uids (Windows). A dry run asks `access` of these only (an ACL may grant what the bits deny).
 */
export function deniedByMode(stat: Pick<Stats, 'mode' | 'uid' | 'gid'>): boolean {
  if (groups === undefined) return false;
  const bit = stat.uid === euid ? 0o400 : groups.has(stat.gid) ? 0o040 : 0o004;
  return (stat.mode & bit) === 0;
}

/**
 * The walk, handed out in runs of items: `next(max)` answers with a value on a synchronous
 * access and with a promise otherwise; an empty run means the walk is over.
 */
export class TenantWalk {
  private readonly stack: Cursor[] = [];
  private started = false;
  /** The root's real path (its symlinks resolved): the start of every item's path. */
  private realRoot = '';
  /** How much longer each path is where a restore beside the tenant writes it. */
  private readonly restoreExtraBytes: number;
  /** The mount points below the root when the walk started (relative paths), from the mount table. */
  private mountPoints: ReadonlySet<string> = new Set();
  /** The mount the root is on (its mount id); '' where procfs does not tell, and mounts are told by `rootDevice`. */
  private rootMount = '';
  private rootDevice = -1;
  /** The mount points the walk told by the mount of the directory it opened (made after it read the mount table). */
  private readonly mountsTold = new Set<string>();

  constructor(
    private readonly root: string,
    private readonly access: FileAccess = PARALLEL_ACCESS,
    private readonly options: WalkOptions = {},
  ) {
    this.restoreExtraBytes = stagingExtraBytes(path.basename(root));
  }

  /** Up to `max` more items (fewer only at the end). */
  next(max: number): Maybe<WalkItem[]> {
    return this.fill([], max);
  }

  private fill(run: WalkItem[], max: number): Maybe<WalkItem[]> {
    if (!this.started) {
      this.started = true;
      const root = lstatOrThrow(this.root, this.access);
      if (root instanceof Promise) {
        return root.then(async (stat) => {
          this.realRoot = await fs.realpath(this.root);
          this.startOn(stat);
          return this.enter(run, max, { kind: 'directory', relPath: '', stat });
        });
      }
      this.realRoot = realpathSync(this.root);
      this.startOn(root);
      return this.enter(run, max, { kind: 'directory', relPath: '', stat: root });
    }
    while (run.length < max) {
      const top = this.stack[this.stack.length - 1];
      if (top === undefined) break;
      if (top.next === top.items.length) {
        this.stack.pop();
        continue;
      }
      const next = top.items[top.next]!;
      let item: WalkItem;
      if (isFileRun(next)) {
        const { prefix, dirPath, listing } = top.files!;
        const index = next.next++;
        const name = listing.names.name(index);
        if (next.next === next.end) top.next++;
        item = { kind: 'file', relPath: prefix + name, dirPath, name, listing, stat: top.files!.stats?.fileStat(index) };
      } else {
        top.next++;
        item = next;
      }
      if (item.kind === 'directory') return this.enter(run, max, item);
      run.push(item);
    }
    return run;
  }

  /**
   * The mount points below the root now that the walk neither read in the mount table nor
   * told when it opened them: made while the backup ran, over a directory (or a file) it had
   * already listed, so a file read from there since may be what is mounted there, archived
   * under the tenant's name. Sorted; none without procfs. (One made and removed again while
   * the backup ran is not seen.)
   */
  mountsMadeSince(): string[] {
    if (this.realRoot === '') return [];
    const told = [...this.mountPoints, ...this.mountsTold];
    const made: string[] = [];
    for (const point of mountPointsUnder(this.realRoot)) {
      if (!told.some((at) => point === at || point.startsWith(`${at}/`))) made.push(point);
    }
    return made.sort();
  }

  private startOn(root: Stats): void {
    this.rootDevice = root.dev;
    this.mountPoints = mountPointsUnder(this.realRoot);
  }

  /** Whether the directory `relPath` (not the root) is a mount point, as far as is told without opening it. */
  private isMountPoint(relPath: string, stat: ListedEntryStat): boolean {
    return this.mountPoints.has(relPath) || (this.rootMount === '' && stat.dev !== this.rootDevice);
  }

  /** Hands out a directory's item (unless it was handed out before the walk resumed) and lists it, then goes on. */
  private enter(run: WalkItem[], max: number, directory: Extract<WalkItem, { kind: 'directory' }>): Maybe<WalkItem[]> {
    const { resumeAfter } = this.options;
    if (resumeAfter === undefined || !isAtOrAbove(directory.relPath, resumeAfter)) run.push(directory);
    if (directory.relPath !== '' && this.isMountPoint(directory.relPath, directory.stat)) {
      this.stack.push({ items: [mountPoint(directory.relPath)], next: 0 });
      return this.fill(run, max);
    }
    const listed = this.list(directory.relPath, directory.stat.size);
    if (listed instanceof Promise) {
      return listed.then((cursor) => {
        this.stack.push(cursor);
        return this.fill(run, max);
      });
    }
    this.stack.push(listed);
    return this.fill(run, max);
  }

  /** A directory's items in byte order; a note alone if it vanished (or was swapped for something else) before it could be listed. */
  private list(relPath: string, size: number): Maybe<Cursor> {
    const dirPath = relPath === '' ? this.realRoot : `${this.realRoot}/${relPath}`;
    let opened: Maybe<OpenDirectory>;
    try {
      opened = this.access.openDirectory(dirPath);
    } catch (error) {
      return vanishedBeforeListing(relPath, error);
    }
    if (opened instanceof Promise) return opened.then((directory) => this.listOpen(relPath, dirPath, directory, size), (error: unknown) => vanishedBeforeListing(relPath, error));
    return this.listOpen(relPath, dirPath, opened, size);
  }

  /**
   * The items of the open `directory`, which is closed once they are known. A failure is named
   * by the directory's real path, not the procfs link it was listed through (/proc/self/fd/N).
   */
  private listOpen(relPath: string, dirPath: string, directory: OpenDirectory, size: number): Maybe<Cursor> {
    const named = (error: unknown) => namedBy(error, directory.path, dirPath);
    let items: Maybe<Cursor>;
    try {
      // A bind mount of the tenant's own file system shares its st_dev: told by the opened directory's mount.
      const mount = directory.mountId();
      if (relPath === '') this.rootMount = mount;
      else if (mount !== this.rootMount) {
        this.mountsTold.add(relPath);
        const closed = directory.close();
        const cursor: Cursor = { items: [mountPoint(relPath)], next: 0 };
        return closed instanceof Promise ? closed.then(() => cursor) : cursor;
      }
      const listed = this.access.readdir(directory.path, size);
      items =
        listed instanceof Promise
          ? listed.then((entries) => this.itemsOf(relPath, dirPath, directory.path, entries), (error: unknown) => vanishedBeforeListing(relPath, named(error)))
          : this.itemsOf(relPath, dirPath, directory.path, listed);
    } catch (error) {
      const closed = directory.close();
      if (closed instanceof Promise) return closed.then(() => vanishedBeforeListing(relPath, named(error)));
      return vanishedBeforeListing(relPath, named(error));
    }
    if (!(items instanceof Promise)) {
      const closed = directory.close();
      return closed instanceof Promise ? closed.then(() => items) : items;
    }
    return items.then(
      async (cursor) => {
        await directory.close();
        return cursor;
      },
      async (error: unknown) => {
        await directory.close();
        throw named(error);
      },
    );
  }

  /** `dirPath`: the directory's real path, which its items carry; `listPath`: where to lstat and read its entries (OpenDirectory). */
  private itemsOf(relPath: string, dirPath: string, listPath: string, listed: Listing): Maybe<Cursor> {
    const names = listed.sorted();
    const count = names.size;
    const listing: DirectoryListing = { names };
    const atRoot = relPath === '';
    const prefix = atRoot ? '' : `${relPath}/`;
    const statFiles = this.options.statFiles === true;
    // Resumed, in a directory above the position: only what comes after it, and the directory
    // to go on in (whose item is not handed out again). Any other directory comes after it whole.
    const resumeAfter = this.options.resumeAfter !== undefined && isAtOrAbove(relPath, this.options.resumeAfter) ? this.options.resumeAfter : undefined;
    const passed = resumeAfter === undefined ? undefined : passedBefore(names, prefix, resumeAfter);
    const reserved = atRoot ? reservedIn(names) : undefined;
    const deeperThanRestore = !atRoot && childrenTooDeep(relPath);
    const tooLong = pathsTooLong(dirPath, names, this.restoreExtraBytes);
    const mountedHere = this.mountPoints.size === 0 ? undefined : (index: number) => this.mountPoints.has(prefix + names.name(index));
    // Walked already, or left out by its name or path alone (no lstat asked).
    const passedOrLeftOut = (index: number) => passed?.[index] === 1 || deeperThanRestore || tooLong?.has(index) === true || reserved?.has(index) === true || mountedHere?.(index) === true;
    const toStat: string[] = [];
    for (let index = 0; index < count; index++) {
      if (passedOrLeftOut(index)) continue;
      // An entry of no type ('untyped') is told by its lstat.
      const type = names.type(index);
      if (type === 'directory' || type === 'symlink' || type === 'untyped') toStat.push(names.name(index));
    }
    // The regular files' lstat, by index (a name is made only for its call).
    const isPlainFile = (index: number) => names.type(index) === undefined && !passedOrLeftOut(index);
    const fileStats = statFiles ? new ListedFileStats(count) : undefined;

    // Everything in order, what is left out by name included, once the directories and
    // symlinks among them have been stat'ed.
    const place = (stats: Map<string, ListedOtherStat | ListedFileStat | undefined>): Cursor => {
      const items: (WalkItem | FileRun)[] = [];
      let run: FileRun | undefined;
      let statIndex = 0;
      for (let index = 0; index < count; index++) {
        if (passed?.[index] === 1) continue;
        const type = names.type(index);
        const note = reserved?.get(index);
        if (isPlainFile(index) && (fileStats === undefined || fileStats.isFile(index))) {
          if (run !== undefined && run.end === index) run.end++;
          else items.push((run = { next: index, end: index + 1 }));
          continue;
        }
        if (note !== undefined) {
          items.push(note);
          continue;
        }
        const special = type !== undefined && type !== 'directory' && type !== 'symlink' && type !== 'untyped';
        const leftAsListed = deeperThanRestore || tooLong?.has(index) === true || mountedHere?.(index) === true || special;
        // What was stat'ed is named by the string it was stat'ed by (one string a name, not two);
        // a regular file by its listing (no string was kept).
        const statted = !leftAsListed && type !== undefined;
        const name = statted ? toStat[statIndex++]! : names.name(index);
        const itemPath = prefix + name;
        if (deeperThanRestore) items.push(tooDeep(itemPath));
        else if (tooLong?.has(index) === true) items.push(pathTooLong(itemPath, type === 'directory'));
        else if (mountedHere?.(index) === true) items.push(mountedItem(`${listPath}/${name}`, itemPath));
        else if (special) items.push(leftOut(itemPath, `${type} cannot be archived`));
        else {
          // A name listed as a regular file is here only when it no longer is one.
          const stat = statted ? stats.get(name) : fileStats!.otherStat(index);
          if (stat === undefined) items.push(vanished(itemPath));
          else if (!isOther(stat)) items.push({ kind: 'file', relPath: itemPath, dirPath, name, listing, stat });
          else if (stat.type === 'directory') items.push({ kind: 'directory', relPath: itemPath, stat });
          else if (stat.type === 'symlink') items.push(symlinkItem(this.realRoot, `${listPath}/${name}`, itemPath.split('/'), stat));
          else items.push(leftOut(itemPath, `${stat.type} cannot be archived`)); // replaced since the listing
        }
      }
      const files: FilesOf = fileStats === undefined ? { prefix, dirPath, listing } : { prefix, dirPath, listing, stats: fileStats };
      // A directory above the resume point that is something else now was walked already (a
      // run of plain files is all after it: `passedBefore`).
      const after = (item: WalkItem | FileRun) => isFileRun(item) || item.kind === 'directory' || compareWalkOrder(item.relPath, resumeAfter!) > 0;
      if (resumeAfter !== undefined && !items.every(after)) return { items: items.filter(after), next: 0, files };
      return { items, next: 0, files };
    };
    try {
      const statOthers = () => lstatAll(listPath, toStat, this.access, place);
      const filesStatted = fileStats === undefined ? undefined : lstatFiles(listPath, names, isPlainFile, this.access, fileStats);
      const cursor = filesStatted instanceof Promise ? filesStatted.then(statOthers) : statOthers();
      return cursor instanceof Promise ? cursor.catch((error: unknown) => Promise.reject(namedBy(error, listPath, dirPath))) : cursor;
    } catch (error) {
      throw namedBy(error, listPath, dirPath);
    }
  }
}

/**
 * Which names of a sorted listing in the directory `prefix` a walk resumed after `resumeAfter`
 * has passed (1): those before it in walk order, but a directory (or a name of no type) the
 * position is in, to go on in.
 */
function passedBefore(names: PackedListing, prefix: string, resumeAfter: string): Uint8Array {
  const passed = new Uint8Array(names.size);
  for (let index = 0; index < names.size; index++) {
    const itemPath = prefix + names.name(index);
    const type = names.type(index);
    if (compareWalkOrder(itemPath, resumeAfter) > 0 || ((type === 'directory' || type === 'untyped') && isAtOrAbove(itemPath, resumeAfter))) continue;
    passed[index] = 1;
  }
  return passed;
}

/** The names at the root reserved for other things, by their index in its sorted listing, each with its note. */
function reservedIn(names: PackedListing): ReadonlyMap<number, Note> | undefined {
  let found: Map<number, Note> | undefined;
  const ephemeral = names.indexOf(EPHEMERAL_DIR);
  if (ephemeral !== -1) (found ??= new Map()).set(ephemeral, leftOut(EPHEMERAL_DIR, 'ephemeral terminal state is never backed up'));
  const manifest = names.indexOf(MANIFEST_FILE_NAME);
  if (manifest !== -1) (found ??= new Map()).set(manifest, leftOut(MANIFEST_FILE_NAME, 'name reserved for the backup manifest'));
  return found;
}

/**
 * What the mount table names at `at` (the walk's `relPath`): its directory, which the walk then
 * does not list; a file mounted over, or a mount root may not stat, as a note. A mount point is
 * lstat'ed alone (there are few), so that one that refuses root fails nothing else.
 */
function mountedItem(at: string, relPath: string): WalkItem {
  let stat: Stats;
  try {
    stat = lstatSync(fsPath(at));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') return unreadableMount(relPath);
    if (isVanished(error)) return vanished(relPath);
    throw error;
  }
  return stat.isDirectory() ? { kind: 'directory', relPath, stat } : mountedFile(relPath);
}

function vanishedBeforeListing(relPath: string, error: unknown): Cursor {
  // ELOOP: a symlink in its place now.
  if (!isVanished(error) && (error as NodeJS.ErrnoException).code !== 'ELOOP') throw error;
  return { items: [vanishedDirectory(relPath)], next: 0 };
}

/** Every item of the walk, one at a time, its notes recorded in `notes` (for callers that want no more than that). */
export async function* walkTenant(
  root: string,
  notes: WalkNotes,
  access: FileAccess = PARALLEL_ACCESS,
  options: WalkOptions = {},
): AsyncGenerator<Exclude<WalkItem, Note>> {
  const walk = new TenantWalk(root, access, options);
  for (;;) {
    const next = walk.next(WALK_RUN);
    const run = next instanceof Promise ? await next : next;
    if (run.length === 0) return;
    for (const item of run) {
      if (item.kind === 'note') recordNote(notes, item);
      else yield item;
    }
  }
}

function isOther(stat: ListedOtherStat | ListedFileStat): stat is ListedOtherStat {
  return 'type' in stat;
}

function lstatOrThrow(file: string, access: FileAccess): Maybe<Stats> {
  return access.kind === 'sync' ? lstatSync(fsPath(file)) : fs.lstat(fsPath(file));
}

/**
 * lstat of `names` in `dirPath`, STAT_CONCURRENCY at a time, then `place` with what was found:
 * a regular file's as a ListedFileStat, anything else's as a ListedOtherStat.
 */
function lstatAll<T>(dirPath: string, names: readonly string[], access: FileAccess, place: (stats: Map<string, ListedOtherStat | ListedFileStat | undefined>) => T): Maybe<T> {
  const stats = new Map<string, ListedOtherStat | ListedFileStat | undefined>();
  const batch = (start: number): Maybe<T> => {
    for (; start < names.length; start += STAT_CONCURRENCY) {
      const slice = names.slice(start, start + STAT_CONCURRENCY);
      const statted = access.lstatEach(slice.map((name) => `${dirPath}/${name}`));
      const record = (found: (Stats | undefined)[]): void => {
        for (let i = 0; i < slice.length; i++) {
          const stat = found[i];
          stats.set(slice[i]!, stat === undefined ? undefined : stat.isFile() ? listedFileStat(stat) : listedOtherStat(stat));
        }
      };
      if (statted instanceof Promise) {
        const from = start + STAT_CONCURRENCY;
        return statted.then((found) => {
          record(found);
          return batch(from);
        });
      }
      record(statted);
    }
    return place(stats);
  };
  return batch(0);
}

/** lstat of the names of `names` for which `isPlainFile` holds, STAT_CONCURRENCY at a time, recorded in `into`. */
function lstatFiles(dirPath: string, names: PackedListing, isPlainFile: (index: number) => boolean, access: FileAccess, into: ListedFileStats): Maybe<void> {
  const batch = (start: number): Maybe<void> => {
    while (start < names.size) {
      const indexes: number[] = [];
      for (; start < names.size && indexes.length < STAT_CONCURRENCY; start++) if (isPlainFile(start)) indexes.push(start);
      if (indexes.length === 0) break;
      const statted = access.lstatEach(indexes.map((index) => `${dirPath}/${names.name(index)}`));
      const record = (found: (Stats | undefined)[]): void => {
        for (let i = 0; i < indexes.length; i++) into.record(indexes[i]!, found[i]);
      };
      if (statted instanceof Promise) {
        const from = start;
        return statted.then((found) => {
          record(found);
          return batch(from);
        });
      }
      record(statted);
    }
  };
  return batch(0);
}

function listedFileStat(stat: Stats): ListedFileStat {
  const denied = deniedByMode(stat) ? { deniedByMode: true as const } : {};
  return stat.nlink > 1 ? { size: stat.size, mtimeMs: stat.mtimeMs, inode: { dev: stat.dev, ino: stat.ino }, ...denied } : { size: stat.size, mtimeMs: stat.mtimeMs, ...denied };
}

function listedOtherStat(stat: Stats): ListedOtherStat {
  const type = stat.isDirectory() ? 'directory' : stat.isSymbolicLink() ? 'symlink' : describeSpecial(stat);
  return { type, mode: stat.mode, mtimeMs: stat.mtimeMs, size: stat.size, dev: stat.dev };
}

/** `linkPath`: where to read the link (through its open directory). */
function symlinkItem(root: string, linkPath: string, segments: string[], stat: ListedEntryStat): WalkItem {
  const relPath = segments.join('/');
  let targetBytes: Buffer;
  try {
    targetBytes = readlinkSync(fsPath(linkPath), { encoding: 'buffer' });
  } catch (error) {
    // EINVAL: no longer a symlink (replaced since it was lstat'ed).
    if (isVanished(error) || (error as NodeJS.ErrnoException).code === 'EINVAL') return vanished(relPath);
    throw error;
  }
  const target = decodeRawName(targetBytes);
  if (target.startsWith('/')) {
    // Even one naming a file of the tenant: restored under another name or base dir it would lead back here.
    return leftOut(relPath, `symlink target ${quotedPath(target)} is absolute (a restore takes only relative targets that stay inside the tenant)`);
  }
  if (resolveInsideRoot(segments.slice(0, -1), target, (at) => readLinkOnDisk(root, at)) === undefined) {
    return leftOut(relPath, `symlink target ${quotedPath(target)} resolves outside the tenant, or loops`);
  }
  return { kind: 'symlink', relPath, target, stat };
}

function readLinkOnDisk(root: string, segments: readonly string[]): string | undefined {
  const full = path.join(root, ...segments);
  try {
    const at = fsPath(full);
    return lstatSync(at).isSymbolicLink() ? decodeRawName(readlinkSync(at, { encoding: 'buffer' })) : undefined;
  } catch {
    return undefined; // a dangling component: nothing further to follow
  }
}

function describeSpecial(stat: Stats): string {
  if (stat.isSocket()) return 'socket';
  if (stat.isFIFO()) return 'FIFO';
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return 'device';
  return 'special file';
}
