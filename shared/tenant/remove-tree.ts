// Removal of a whole tree that belongs to the tenant slot's machinery: an unverified staging
// directory, an old tenant moved to trash. `rm -rf` semantics, and also through directories
// the tree itself made read-only: a restored tenant keeps its directories' modes (a cache of
// mode 0555, say), and without root nothing can be unlinked inside such a directory
// (EACCES), so neither fs.rm nor `rm -rf` can remove the tree. Run by the user that owns the
// tree (it restored it, or holds the slot), so on a permission error each directory that
// lacks it is given u+rwx, never through a link (lstat first; directories only), and the
// removal is tried once more. As root the first attempt always succeeds.
//
// The tree being removed may be a tenant's old tree whose agent still runs in it (its working
// directory moves with the tree): the agent can swap any directory in it for a symlink (to
// another tenant, to /etc) while the removal runs as root. fs.rm lists a directory and
// unlinks its entries by path, so it would follow such a swap and delete outside the tree.
// So where procfs is mounted, each directory is opened (never through a symlink) and its
// entries are listed, opened and removed through that descriptor's procfs link
// (/proc/self/fd/N/name, which resolves to the directory opened, as unlinkat(2) would):
// whatever is swapped in, only the swapped-in link itself is removed. Every path is short (no
// PATH_MAX limit). Without procfs, fs.rm as below; but never as root, where the removal is
// refused instead (a restore as root is refused before it starts: file-access.ts).
//
// A file system removes names in one directory one at a time (an unlink holds the directory's
// lock; on a network file system, EFS, for a round trip or more), so removing a tree one
// directory after another waits for every unlink in turn: 20,000 files took 85 s on a mount
// adding 1 ms a request. Sibling directories are emptied side by side instead, in lanes
// started while fewer than DIRECTORIES_AT_ONCE directories of the removal are open; each lane
// goes down one directory at a time, so a deep tree holds one descriptor per level and lane
// (a wide one no longer ran out of descriptors: EMFILE under ulimit -n 64).
//
// A tree moved beside the slot (aside, trash: names longer than the tenant's) may hold paths
// longer than PATH_MAX there that fitted in the slot, and fs.rm names every entry by its
// whole path (ENAMETOOLONG). Then each directory whose entries could be out of reach is
// moved up to the top of the tree under a short name first (one rename of a path that still
// fits), and the removal is tried again.
//
// A mount point inside the tree (the operator's bind mount of a shared directory into the
// tenant, moved along with the old tenant) holds another file system's files: nothing below
// it is removed, and the removal fails naming it. A bind mount from the same file system has
// the same st_dev, so the mount is told by the descriptor's mnt_id (/proc/self/fdinfo).
//
// `until` bounds a removal in time (the restore function's staging directory at its deadline:
// 150,000 staged files on EFS take longer to unlink than the minute left before Lambda ends
// the invocation mid-way, with no answer and no completion event). Past it, no further
// directory is opened and no further batch unlinked: RemovalStoppedError, the tree partly
// removed, as a kill would have left it, for the next command's recovery to finish.

import { lstatSync, promises as fs, statSync } from 'node:fs';
import path from 'node:path';

import { crashPoint } from '../crash-points.js';
import { errnoCode, FileSystemError } from '../errors.js';
import { CALLS_IN_FLIGHT, CAN_CHECK_OPENED_PATHS, DIRECTORY_FLAGS, FD_LINKS, mustRefuseWithoutProcfs, namedBy, namesLookedUp } from '../file-access.js';
import { shownPath } from '../format.js';
import { FD_INFO, mountIdOf } from '../mounts.js';
import { decodeRawName, fsPath, rawByteLength } from '../raw-name.js';

import { PATH_MAX_BYTES } from './names.js';
import { TRASH_MARKER } from './trash-marker.js';

const PERMISSION_DENIED: ReadonlySet<string | undefined> = new Set(['EACCES', 'EPERM']);
const OWNER_ALL = 0o700;
const STICKY = 0o1000;
/** Longest name a directory entry may have (NAME_MAX). */
const NAME_MAX_BYTES = 255;

/** A removal that reached its `until` (see the top of the file): what is left of the tree is still there. */
export class RemovalStoppedError extends Error {
  constructor(readonly target: string) {
    super(`the removal of ${shownPath(target)} stopped at its time limit`);
  }
}

/** A removal with `expect` found another directory under the name: nothing in it was removed. */
export class NotJudgedError extends FileSystemError {
  constructor(readonly target: string) {
    super(`${shownPath(target)} was not removed: it is no longer the directory judged removable (moved or swapped meanwhile); run the command again`);
  }
}

export interface RemoveTreeOptions {
  /** Epoch milliseconds after which the removal stops (RemovalStoppedError). @default no limit */
  readonly until?: number;
  /** Stops the removal as `until` does, once aborted (the list function's deadline, for the sweep before its walks). */
  readonly signal?: AbortSignal;
  /**
   * The top directory's identity as the caller judged it (the trash sweep): a different
   * directory found under the name by the time it is opened (the base dir's owner swapped a
   * root-only tree in) is refused, nothing in it removed. Honoured through descriptors only.
   */
  readonly expect?: { readonly dev: bigint; readonly ino: bigint };
}

/** Removes `target` and everything below it; absent is fine. */
export async function removeTree(target: string, options: RemoveTreeOptions = {}): Promise<void> {
  if ((options.until !== undefined && Date.now() >= options.until) || options.signal?.aborted === true) throw new RemovalStoppedError(target);
  if (CAN_CHECK_OPENED_PATHS) return removeThroughDescriptors(target, options);
  if (mustRefuseWithoutProcfs()) {
    // By paths as root, a directory swapped for a symlink meanwhile would be followed (see the top of the file).
    throw new FileSystemError(`${shownPath(target)} was not removed: as root without procfs mounted at /proc a directory swapped for a symlink meanwhile cannot be told from its own; mount /proc, then run the command again`);
  }
  return removeByPaths(target);
}

/**
 * Entries of one directory other than directories removed at once: few, since they wait for
 * the directory's lock in turn, each holding one of the thread pool's threads meanwhile.
 */
const REMOVALS_IN_FLIGHT = 4;
/**
 * Directories of one removal open at once before no further lane is started (see the top of
 * the file): as many as keep the calls a network file system is given in flight busy.
 */
const DIRECTORIES_AT_ONCE = Math.max(1, Math.floor(CALLS_IN_FLIGHT / REMOVALS_IN_FLIGHT));

/** One removeTree call: how many of its directories are open (or being opened) now, and when it stops. */
interface Removal {
  open: number;
  readonly target: string;
  readonly until: number | undefined;
  readonly signal: AbortSignal | undefined;
  readonly expect: { readonly dev: bigint; readonly ino: bigint } | undefined;
}

/** The removal reached a mount point (see the top of the file). */
function mountPointInside(shown: string): FileSystemError {
  return new FileSystemError(`${shownPath(shown)} is a mount point inside the tree being removed: nothing on it was removed; unmount it, then run the command again`);
}

/** Throws RemovalStoppedError once the removal's time is up. */
function assertTimeLeft(removal: Removal): void {
  if ((removal.until !== undefined && Date.now() >= removal.until) || removal.signal?.aborted === true) throw new RemovalStoppedError(removal.target);
}

/** `removeTree` through open directories (see the top of the file). */
async function removeThroughDescriptors(target: string, { until, signal, expect }: RemoveTreeOptions): Promise<void> {
  // `target` is a name in the base dir, which only the tool writes: its last component is all a tenant could swap.
  await removeEntry({ at: target, shown: target, mount: undefined, depth: 0 }, { open: 0, target, until, signal, expect });
}

/**
 * An entry to remove: `at`, a path whose directories cannot change (the base dir's, or one
 * through an open directory's procfs link); `shown`, its path for messages; `mount`, the mount
 * the tree's top directory is on (undefined for the top itself).
 */
interface Entry {
  readonly at: string;
  readonly shown: string;
  readonly mount: string | undefined;
  /** Directories above it in the tree (0: the top). */
  readonly depth: number;
}

/**
 * Removes `entry`, a directory with all it holds; absent is fine. A failure is named by the
 * entry's own path, not the procfs path it was reached by (`/proc/self/fd/21/f1.txt` says
 * nothing to whoever reads the message).
 */
async function removeEntry(entry: Entry, removal: Removal, retries = SWAPPED_RETRIES): Promise<void> {
  let inside: string | undefined;
  try {
    await emptyAndRemove(entry, removal, retries, (path) => (inside = path));
  } catch (error) {
    throw namedBy(namedBy(error, entry.at, entry.shown), inside ?? entry.at, entry.shown);
  }
}

/** `removeEntry`'s work; `listing` is told the procfs path the directory is listed by. */
async function emptyAndRemove(entry: Entry, removal: Removal, retries: number, listing: (path: string) => void): Promise<void> {
  const { at } = entry;
  assertTimeLeft(removal);
  let directory: fs.FileHandle;
  removal.open++; // counted before the open, so that lanes started in the same turn see it
  try {
    directory = await openToEmpty(at);
  } catch (error) {
    removal.open--;
    const code = errnoCode(error);
    if (code === 'ENOENT') return;
    // Not a directory (ENOTDIR), or a symlink (ELOOP): unlinked itself, never followed.
    if (code === 'ENOTDIR' || code === 'ELOOP') return unlinkOrRetry(entry, removal, retries);
    throw outOfDescriptorsAlone(error, removal.open, entry.depth);
  }
  try {
    if (entry.depth === 0 && removal.expect !== undefined) {
      const stat = await directory.stat({ bigint: true });
      if (stat.dev !== removal.expect.dev || stat.ino !== removal.expect.ino) {
        throw new NotJudgedError(entry.shown);
      }
    }
    const inside = `${FD_LINKS}${directory.fd}`;
    listing(inside);
    let mount: string;
    let listed: Listing;
    try {
      mount = mountOf(directory.fd, entry.shown);
      listed = await listNames(inside);
    } catch (error) {
      throw outOfDescriptorsAlone(error, removal.open - 1, entry.depth);
    }
    if (entry.mount !== undefined && mount !== entry.mount) {
      throw mountPointInside(entry.shown);
    }
    const child = (name: string): Entry => ({ at: `${inside}/${name}`, shown: `${entry.shown}/${name}`, mount, depth: entry.depth + 1 });
    // Other entries several at a time, then the directories in lanes (see the top of the
    // file). Either kind swapped for the other meanwhile is retried as such. The top's trash
    // marker goes last: a removal killed midway leaves a tree the next one (or a command
    // removing it beside this one) still knows for the tool's, whoever owns it.
    const marker = entry.depth === 0 && listed.others.includes(TRASH_MARKER);
    const others = marker ? listed.others.filter((name) => name !== TRASH_MARKER) : listed.others;
    for (let start = 0; start < others.length; start += REMOVALS_IN_FLIGHT) {
      assertTimeLeft(removal);
      // Every removal of the batch settles before the first failure is thrown: the directory's
      // descriptor (their path) is closed after that, and its number may then name another.
      const settled = await Promise.allSettled(others.slice(start, start + REMOVALS_IN_FLIGHT).map((name) => unlinkOrRetry(child(name), removal, SWAPPED_RETRIES)));
      const failed = settled.find((outcome) => outcome.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
    }
    if (entry.depth === 0) crashPoint('remove:top-files-removed');
    await removeDirectories(listed.directories, child, removal);
    if (marker) await unlinkOrRetry(child(TRASH_MARKER), removal, SWAPPED_RETRIES);
  } finally {
    removal.open--;
    await directory.close();
  }
  await fs.rmdir(fsPath(at)).catch((error: unknown) => {
    const code = errnoCode(error);
    if (code === 'ENOENT') return undefined;
    // Swapped for a symlink or a file since it was opened (the directory emptied is wherever it was moved).
    if (code === 'ENOTDIR') return unlinkOrRetry(entry, removal, retries);
    throw refusedRemoval(entry, error);
  });
}

/**
 * Removes the directories named `names` (`child` makes each one's entry when it is its turn)
 * one after another, and in further lanes beside that one, started while fewer than
 * DIRECTORIES_AT_ONCE directories of the removal are open.
 */
async function removeDirectories(names: readonly string[], child: (name: string) => Entry, removal: Removal): Promise<void> {
  let next = 0;
  // Under a low open-file limit the lanes side by side can run out of descriptors: such an
  // entry is removed again after the others, when the lanes have closed theirs.
  const outOfDescriptors: Entry[] = [];
  const lane = async (): Promise<void> => {
    while (next < names.length) {
      const entry = child(names[next++]!);
      try {
        await removeEntry(entry, removal);
      } catch (error) {
        if (!OUT_OF_DESCRIPTORS.has(errnoCode(error)) || RAN_OUT_ALONE.has(error as object)) throw error;
        outOfDescriptors.push(entry);
      }
    }
  };
  // Each lane opens its first directory before its first await: the count is up to date for the next.
  const lanes = [lane()];
  while (next < names.length && removal.open < DIRECTORIES_AT_ONCE) lanes.push(lane());
  // Every lane settles before a failure is thrown: their paths run through the parent's descriptor, closed after this.
  const settled = await Promise.allSettled(lanes);
  const failed = settled.find((outcome) => outcome.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  for (const entry of outOfDescriptors) await removeEntry(entry, removal);
}

const OUT_OF_DESCRIPTORS: ReadonlySet<string | undefined> = new Set(['EMFILE', 'ENFILE']);

/**
 * Failures out of descriptors while the removal had no directories open but the failing one's
 * ancestors (`openBesides` <= `depth`): a tree deeper than the open-file limit allows (one
 * descriptor per level). Removing it again later cannot help, so no lane does: each level
 * retried its whole subtree, in which each level below retried its own, 2^depth tries, and a
 * restore --force (then every command's sweep of the trash it left) spun for good.
 */
const RAN_OUT_ALONE = new WeakSet<object>();

function outOfDescriptorsAlone(error: unknown, openBesides: number, depth: number): unknown {
  if (OUT_OF_DESCRIPTORS.has(errnoCode(error)) && openBesides <= depth && typeof error === 'object' && error !== null) RAN_OUT_ALONE.add(error);
  return error;
}

/**
 * The mount the open directory `fd` is on (mounts.ts); a failure to tell it (EMFILE) is
 * thrown, not taken for another mount, named by the directory's path `shown`.
 */
function mountOf(fd: number, shown: string): string {
  try {
    return mountIdOf(fd);
  } catch (error) {
    throw namedBy(error, `${FD_INFO}${fd}`, shown);
  }
}

/** Entries swapped between a directory and something else while removed are looked at again this many times. */
const SWAPPED_RETRIES = 3;

/** Unlinks what is at `at`, or removes it as a directory if one was swapped in since (EISDIR). */
async function unlinkOrRetry(entry: Entry, removal: Removal, retries: number): Promise<void> {
  try {
    await unlinkUnlessGone(entry.at);
  } catch (error) {
    if (errnoCode(error) !== 'EISDIR' || retries === 0) throw refusedRemoval(entry, error);
    await removeEntry(entry, removal, retries - 1);
  }
}

/**
 * A removal the file system refused with EPERM, named by its real path (`at` goes through a
 * procfs link, `/proc/self/fd/N/name`, which means nothing to whoever reads the message) and
 * with the likely reason. Root is refused an unlink only by an immutable or append-only
 * attribute (`chattr +i`/`+a`, on the entry or its directory), which the tree's user must
 * clear. Another user is refused one also for an entry it does not own in a directory with the
 * sticky bit (a tree a run as root left, holding a world-writable /tmp-like directory): said
 * so, with the owner, since no attribute is to blame. Any other error is passed on unchanged
 * (its code decides what the callers do).
 */
function refusedRemoval(entry: Entry, error: unknown): unknown {
  if (errnoCode(error) !== 'EPERM') return error;
  const self = process.geteuid?.();
  let owner: number | undefined;
  let sticky = true;
  if (self !== undefined && self !== 0) {
    try {
      owner = lstatSync(fsPath(entry.at)).uid; // `at` runs through its directory's descriptor, still open
      // Without the sticky bit another user's file is unlinked like one's own: refused, it is immutable.
      sticky = (statSync(fsPath(path.dirname(entry.at))).mode & STICKY) !== 0;
    } catch {
      // gone meanwhile: the attribute hint below
    }
  }
  const reason =
    owner !== undefined && owner !== self && sticky
      ? `it belongs to uid ${owner}, not to this user (uid ${self}), in a directory with the sticky bit: remove it as root or as its owner`
      : 'an immutable or append-only file or directory? `lsattr -d` shows it, `chattr -i -a` clears it';
  return new FileSystemError(`cannot remove ${shownPath(entry.shown)}: operation not permitted (${reason})`, { cause: error });
}

/**
 * Opens the directory at `at` to list and empty it, giving it u+rwx where it lacks it (a
 * user other than root cannot list or unlink in it otherwise): fchmod on the open directory;
 * one it cannot open at all (mode 0000) is changed by path after an lstat, which as the tree's
 * owner changes nothing but its own files if swapped meanwhile (root is never refused).
 */
async function openToEmpty(name: string): Promise<fs.FileHandle> {
  const at = fsPath(name);
  let directory: fs.FileHandle;
  try {
    directory = await fs.open(at, DIRECTORY_FLAGS);
  } catch (error) {
    if (!PERMISSION_DENIED.has(errnoCode(error))) throw error;
    const stat = await fs.lstat(at);
    if (!stat.isDirectory()) throw Object.assign(new Error(`ENOTDIR: not a directory, open '${name}'`), { code: 'ENOTDIR' });
    await fs.chmod(at, (stat.mode & 0o7777) | OWNER_ALL);
    directory = await fs.open(at, DIRECTORY_FLAGS);
  }
  try {
    const { mode } = await directory.stat();
    if ((mode & OWNER_ALL) !== OWNER_ALL) await directory.chmod((mode & 0o7777) | OWNER_ALL);
  } catch (error) {
    await directory.close();
    throw error;
  }
  return directory;
}

async function unlinkUnlessGone(at: string): Promise<void> {
  await fs.unlink(fsPath(at)).catch((error: unknown) => {
    if (errnoCode(error) !== 'ENOENT') throw error;
  });
}

/**
 * `removeTree` by paths, where there is no procfs: fs.rm, which follows a directory swapped
 * for a symlink meanwhile. The top's trash marker goes last, as through descriptors: fs.rm
 * removes a directory's entries in no order of ours, and a removal killed or refused midway
 * left an unmarked tree that a later command set aside as not the tool's.
 */
async function removeByPaths(target: string): Promise<void> {
  const names = await namesOpenedUp(target);
  if (names?.includes(TRASH_MARKER) !== true) return removeWholeByPaths(target);
  const settled = await Promise.allSettled(names.filter((name) => name !== TRASH_MARKER).map((name) => removeWholeByPaths(path.join(target, name))));
  const failed = settled.find((outcome) => outcome.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  await removeWholeByPaths(path.join(target, TRASH_MARKER));
  await removeWholeByPaths(target);
}

/**
 * The names in the directory at `target`, given u+rwx first where it lacks it (its entries
 * are removed one by one next: the tenant may have made its top read-only); undefined when it
 * is no directory, gone, or cannot be listed (fs.rm of the whole then, as prepareForRemoval
 * opens it up).
 */
async function namesOpenedUp(target: string): Promise<string[] | undefined> {
  const stat = await fs.lstat(fsPath(target)).catch(() => undefined);
  if (stat?.isDirectory() !== true) return undefined;
  if ((stat.mode & OWNER_ALL) !== OWNER_ALL) await fs.chmod(fsPath(target), (stat.mode & 0o7777) | OWNER_ALL).catch(() => undefined);
  return fs.readdir(fsPath(target)).catch(() => undefined);
}

/** fs.rm of `target`, once more after opening up and moving up its directories (prepareForRemoval) if refused or too deep. */
async function removeWholeByPaths(target: string): Promise<void> {
  let prepared = false;
  for (;;) {
    try {
      await fs.rm(target, { recursive: true, force: true });
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? '';
      if (prepared || (!PERMISSION_DENIED.has(code) && code !== 'ENAMETOOLONG')) throw await refusedUnlink(error);
      prepared = true;
      await prepareForRemoval(target);
    }
  }
}

/**
 * fs.rm's failure as what it is. Refused the unlink of a file (EPERM: an immutable file, or
 * another user's under the sticky bit), fs.rm tries it as a directory and fails listing it:
 * ENOTDIR of the file, which said `unexpected error: ENOTDIR: not a directory, scandir …`.
 * Reported as the refusal it is. A mount point's EBUSY (`rmdir '…/mnt'`) names the mount point,
 * as through descriptors.
 */
async function refusedUnlink(error: unknown): Promise<unknown> {
  const failed = error as NodeJS.ErrnoException;
  // fs.rm tries rmdir before it lists a directory: on a mount point that fails EBUSY, nothing on the mount touched.
  if (failed.code === 'EBUSY' && failed.syscall === 'rmdir' && typeof failed.path === 'string') return mountPointInside(failed.path);
  if (failed.code !== 'ENOTDIR' || failed.syscall !== 'scandir' || typeof failed.path !== 'string') return error;
  const stat = await fs.lstat(failed.path).catch(() => undefined);
  if (stat === undefined || stat.isDirectory()) return error;
  return refusedRemoval({ at: failed.path, shown: failed.path, mount: undefined, depth: 0 }, Object.assign(new Error(`EPERM: operation not permitted, unlink '${failed.path}'`), { code: 'EPERM' }));
}

/**
 * From the top down: gives every directory u+rwx where it lacks it, and moves each directory
 * whose entries' paths could be longer than PATH_MAX to the top of `root` (`root/~N`), so
 * that every path in the tree fits. The failed fs.rm may still be removing entries (it stops
 * at the first error, not its other calls in flight): whatever vanishes meanwhile is skipped.
 */
async function prepareForRemoval(root: string): Promise<void> {
  let moved = 0;
  const pending = [root];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    let directories;
    try {
      const stat = await fs.lstat(fsPath(dir));
      if (!stat.isDirectory()) continue;
      if ((stat.mode & OWNER_ALL) !== OWNER_ALL) await fs.chmod(fsPath(dir), (stat.mode & 0o7777) | OWNER_ALL);
      directories = (await listNames(dir)).directories;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    for (const name of directories) {
      const child = path.join(dir, name);
      if (rawByteLength(child) + 1 + NAME_MAX_BYTES <= PATH_MAX_BYTES) {
        pending.push(child);
        continue;
      }
      pending.push(await moveToTop(root, child, () => moved++));
    }
  }
}

/**
 * A directory's entries by kind, as bare names (a name that is not UTF-8 held as raw-name.ts
 * holds it): a lane takes one directory's names from here long after the listing, so per name
 * nothing more is kept. An object per entry (its paths, its kind) lived that long too, past
 * V8's young generation: a tree of 200,000 directories left ~100 MiB of such garbage in the
 * old one (docs/scale.md; test/remove-tree.test.ts pins it).
 */
export interface Listing {
  readonly directories: string[];
  readonly others: string[];
}

/**
 * The entries of the directory at `at`. A listing with U+FFFD in a name is read again as
 * bytes: the name may not be UTF-8 (raw-name.ts), and by the U+FFFD Node put in its place
 * it could not be removed.
 */
export async function listNames(at: string): Promise<Listing> {
  let entries;
  try {
    entries = await fs.readdir(fsPath(at), { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    return await namesOfUntyped(at);
  }
  const listing: Listing = { directories: [], others: [] };
  if (!entries.some((dirent) => dirent.name.includes('\ufffd'))) {
    for (const dirent of entries) (dirent.isDirectory() ? listing.directories : listing.others).push(dirent.name);
    return listing;
  }
  const raw = await fs.readdir(fsPath(at), { withFileTypes: true, encoding: 'buffer' });
  for (const dirent of raw) (dirent.isDirectory() ? listing.directories : listing.others).push(decodeRawName(dirent.name));
  return listing;
}

/** The entries of the directory at `at` when its listing failed on a file system that gives no types (`namesLookedUp`): a name gone meanwhile needs no removal. */
async function namesOfUntyped(at: string): Promise<Listing> {
  const listing: Listing = { directories: [], others: [] };
  for (const { name, stat } of await namesLookedUp(at, true)) (stat.isDirectory() ? listing.directories : listing.others).push(name);
  return listing;
}

/** Renames `dir` to an unused short name at the top of `root`; returns where it went. */
async function moveToTop(root: string, dir: string, nextNumber: () => number): Promise<string> {
  for (;;) {
    const to = path.join(root, `~${nextNumber()}`);
    try {
      // rename(2) would replace an empty directory: never one of the tree's own.
      await fs.mkdir(to);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw error;
    }
    await fs.rename(fsPath(dir), to);
    return to;
  }
}
