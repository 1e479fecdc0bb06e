// Lock files, for the tenant lock (lock.ts) and the crontab lock (schedule/crontab-lock.ts):
// created whole (`createLockFile`), and taken over when their owner is gone. POSIX has no "remove this name if it still
// holds the file I judged", and a takeover that moves away the wrong lock lets two owners
// run at once (the one whose lock was moved, and whoever creates the next lock meanwhile).
// So the taker makes sure that it moves only the file it judged:
// - the lock is judged from one open handle: content, inode and times of one file;
// - a lock younger than LOCK_FRESH_MS is never taken over: its owner may have released it
//   and exited between our read and our look at its process, and the name may hold the
//   next lock already, whose times then differ from the judged ones by at least that much
//   (even where timestamps are coarse and inode numbers are reused at once);
// - takers of one lock take turns: each announces itself with a claim file of its own
//   (`<lock>.<owner>.<rand>.taking`), then lists the directory, and backs off if it sees
//   the claim of another taker that is not provably gone. Of two takers, the later to
//   create its claim lists after the earlier one's claim exists, so at most one goes on,
//   and a claim is removed only after its taker's move (or once its owner is gone, by
//   anyone: a dead taker moves nothing). Nothing else removes a lock whose owner is gone,
//   so a name seen holding the judged lock by the one taker in turn still holds it at
//   the rename;
// - after the rename, the moved file is checked once more and linked back if it is another
//   (never expected: it guards the cases below).
// - with no inode left for a claim, a taker goes on without one unless it sees the claim of
//   another that may live: the rename lets one of two such takers move the judged lock, and
//   the check after it links back a lock moved that was not the judged one.
// A taker killed at any step leaves a claim of a dead owner, ignored and removed by the
// next taker (on another host: once it is STALE_AFTER_MS old), and maybe the judged lock
// under its aside name, removed by the sweep; the lock name is free or holds the dead lock.
// The tenant lock's takers move it to one name a tenant (`oneAsideName`: hard-linked there, no
// replace, then unlinked from the lock's name only if the link caught the judged lock), which a
// command holding the lock looks at without listing the base dir (moveAsideNoReplace).
// A taker without a claim killed between its rename and the link back may leave a live
// holder's lock under its aside name (for the tenant lock: only where no hard link can be
// made, or an earlier version's taker): the sweep and a taker with no inode left put that back
// while the name is free (lock.ts settleMovedAsideLock); a command that creates a lock under
// the free name first (`recover`, `backup` or `restore` of that very tenant, whose sweeps leave
// it) finds the moved lock in its recovery, renames it over its own and stops busy
// (lock.ts handBackMovedAsideLock, tenant/slot.ts recoverSlot).
// Not covered: a holder or taker on another host frozen past STALE_AFTER_MS that wakes up
// mid-step, and takers of older versions, which make no claim.

import { randomBytes } from 'node:crypto';
import { promises as fs, type Stats } from 'node:fs';
import path from 'node:path';

import { errnoCode } from '../errors.js';
import { openOwnFile, readUpTo } from '../file-access.js';
import { shownPath } from '../format.js';
import { writeWhole } from '../write-whole.js';

import { isOwnerGone, OWNER_TAG_PATTERN, ownerTag, parseOwnerTag, STALE_AFTER_MS, type ProcessOwner } from './process-owner.js';

// Hard links are not available everywhere (some FUSE, SMB and FAT mounts): there the lock
// is created in place with O_EXCL, and a reader may catch it half-written for a moment.
const LINK_UNSUPPORTED = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);
/**
 * No room for a file or a link's own inode: a full disk, or a quota. Errors are named by
 * errnoCode: Node 20's libuv has no name for EDQUOT (`Unknown system error -122`), and a
 * takeover whose link met a quota failed "disk quota exceeded" where it goes on by a rename.
 */
const NO_ROOM = new Set(['ENOSPC', 'EDQUOT']);

/** Steps of `createLockFile` a caller may mark (crash points). */
export interface CreateSteps {
  readonly tempWritten?: () => void;
  readonly linked?: () => void;
  /** Where the lock is written in place: it exists, still empty. */
  readonly openedInPlace?: () => void;
}

/**
 * What `createLockFile` did: created the lock (its inode), or found one there, at a moment the
 * file system's clock dates (the ctime of the temporary file just written: the time to judge
 * the lock found against, whatever this host's clock says).
 */
export type CreateOutcome = { readonly created: true; readonly ino: number } | { readonly created: false; readonly fileSystemNowMs: number };

/**
 * Puts `content` at `lockPath` unless a lock is there, written whole at `temp` first and
 * hard-linked into place. Leaves nothing behind when it fails, and never the temporary file.
 */
export async function createLockFile(lockPath: string, temp: string, content: string, steps: CreateSteps = {}): Promise<CreateOutcome> {
  try {
    const written = await writeNewFile(temp, content);
    const exists: CreateOutcome = { created: false, fileSystemNowMs: written.ctimeMs };
    steps.tempWritten?.();
    try {
      await fs.link(temp, lockPath);
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'EEXIST') return exists;
      // A link takes an inode of its own on some file systems (tmpfs): with the last one
      // taken by the temporary file, the lock is written in place once that is removed.
      const noRoomToLink = code === 'ENOSPC' || code === 'EDQUOT';
      if (code !== undefined && (LINK_UNSUPPORTED.has(code) || noRoomToLink)) {
        if (noRoomToLink) await fs.rm(temp, { force: true });
        const inPlace = await writeNewFile(lockPath, content, steps.openedInPlace).catch(existsOr);
        if (inPlace === undefined) return exists;
        // Read while still empty, it may have been taken for the lock of a writer that died
        // (taken over once 5 s old): it is ours only if the name still holds it.
        const named = await fs.lstat(lockPath).catch(() => undefined);
        return named?.ino === inPlace.ino ? { created: true, ino: inPlace.ino } : exists;
      }
      throw error;
    }
    steps.linked?.();
    return { created: true, ino: written.ino };
  } finally {
    await fs.rm(temp, { force: true }).catch(() => undefined);
  }
}

/**
 * Puts an empty lock at `lockPath` unless a lock is there: the file `holder` (whose name says
 * who holds it) is created empty and hard-linked into place, and stays as the lock's second
 * name until the lock is released. For a disk with no room for a record: an empty file takes
 * an inode, no data block. Leaves nothing behind when it fails or finds a lock there.
 */
export async function createEmptyLockFile(lockPath: string, holder: string): Promise<CreateOutcome> {
  const written = await writeNewFile(holder, '');
  try {
    await fs.link(holder, lockPath);
    return { created: true, ino: written.ino };
  } catch (error) {
    await fs.rm(holder, { force: true }).catch(() => undefined);
    if (errnoCode(error) === 'EEXIST') return { created: false, fileSystemNowMs: written.ctimeMs };
    throw error;
  }
}

function existsOr(error: unknown): undefined {
  if (errnoCode(error) === 'EEXIST') return undefined;
  throw error;
}

/**
 * Creates `file` (O_EXCL) holding `content`: its inode and ctime. A failed write removes the file it created.
 * Made by root in a directory of another user (the base dir, the gateway's service user's), it
 * is given to that user: a root command killed while holding it left a root-only lock, which
 * the user's own next commands could not read to find its holder gone, and failed
 * `permission denied` until root ran one. The directory's owner can rename or remove anything
 * in it already; owning the lock gives it nothing more, and it still finds a live root
 * holder's lock busy.
 */
async function writeNewFile(file: string, content: string, opened?: () => void): Promise<{ ino: number; ctimeMs: number }> {
  const handle = await fs.open(file, 'wx', 0o600);
  try {
    opened?.();
    await giveToDirectoryOwner(handle, path.dirname(file));
    await writeWhole(handle, [Buffer.from(content)]);
    const { ino, ctimeMs } = await handle.stat();
    await handle.close();
    return { ino, ctimeMs };
  } catch (error) {
    await handle.close().catch(() => undefined);
    await fs.rm(file, { force: true }).catch(() => undefined);
    throw error;
  }
}

async function giveToDirectoryOwner(handle: fs.FileHandle, dir: string): Promise<void> {
  if (process.geteuid?.() !== 0) return;
  const { uid, gid } = await fs.stat(dir);
  if (uid === 0) return;
  // Root without CAP_CHOWN (a user namespace, root-squashed NFS) keeps the lock its own, as before.
  await handle.chown(uid, gid).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPERM' && error.code !== 'EINVAL') throw error;
  });
}

/** A lock younger than this is never taken over, even when its owner is gone. */
export const LOCK_FRESH_MS = 2_000;

/** A lock file as read through one handle: its content and the identity of the file it came from. */
export interface LockFileState {
  readonly content: string;
  readonly ino: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
}

/** A lock's record is a few hundred bytes; no more than this is read of a file under its name. */
const LOCK_READ_MAX_BYTES = 64 * 1024;

/**
 * The lock at `lockPath`; undefined when there is none. The base dir is its owner's (the
 * gateway's service user), who can put anything under a lock's name: root's backup read a
 * symlink to /dev/zero until it failed with "unexpected error: Invalid string length", and hung
 * for good on the open of a FIFO; anything but a regular file is refused in one line (openOwnFile).
 */
export async function readLockFile(lockPath: string): Promise<LockFileState | undefined> {
  const opened = await openOwnFile(lockPath, `the lock ${shownPath(lockPath)}`).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (opened === undefined) return undefined;
  const { handle, stat } = opened;
  try {
    const content = (await readUpTo(handle, LOCK_READ_MAX_BYTES)).toString('utf8');
    return { content, ino: stat.ino, mtimeMs: stat.mtimeMs, ctimeMs: stat.ctimeMs };
  } finally {
    await handle.close();
  }
}

/**
 * Milliseconds until `judged` may be taken over: until it is LOCK_FRESH_MS old by the file
 * system's clock (`fileSystemNowMs`, createLockFile's), or has been seen unchanged for that
 * long since `firstSeen` by this host's clock (which may be off, but runs at the same rate).
 */
export function freshForMs(judged: LockFileState, firstSeen: { readonly state: LockFileState; readonly at: number }, fileSystemNowMs: number): number {
  const byFileTimes = LOCK_FRESH_MS - (fileSystemNowMs - judged.mtimeMs);
  const seenUnchanged = isSameFile(firstSeen.state, judged) ? LOCK_FRESH_MS - (Date.now() - firstSeen.at) : LOCK_FRESH_MS;
  return Math.max(0, Math.min(byFileTimes, seenUnchanged));
}

export function isSameFile(a: Pick<Stats, 'ino' | 'mtimeMs' | 'ctimeMs'>, b: Pick<Stats, 'ino' | 'mtimeMs' | 'ctimeMs'>): boolean {
  return a.ino === b.ino && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

/** Steps of `takeOverLock` a caller may mark (crash points). */
export interface TakeoverSteps {
  /** The name still held the judged lock, seen by the one taker in turn: the rename is next. */
  readonly checked?: () => void;
  readonly movedAside?: () => void;
}

/**
 * What `takeOverLock` did: moved the judged lock away; found the name holding another lock
 * (or none); or let another taker, alive, go first (try again in a moment).
 */
export type TakeoverOutcome = 'moved' | 'replaced' | 'contended';

/**
 * Removes the lock `judged` (its owner is gone, it is not fresh) from `lockPath`, by way of
 * the name `aside` (this taker's own, or with `oneAsideName` the one name all takers of the
 * lock share), unless the name holds another lock by then, or another taker is at work on it.
 * The caller then tries to create its own lock again.
 */
export async function takeOverLock(lockPath: string, judged: LockFileState, aside: string, steps: TakeoverSteps = {}, options: TakeoverOptions = {}): Promise<TakeoverOutcome> {
  if (!(await holdsJudged(lockPath, judged))) return 'replaced';
  const claim = besideLockName(lockPath, CLAIM_KIND);
  const claimed = await fs.writeFile(claim, '', { flag: 'wx', mode: 0o600 }).then(
    () => true,
    (error: unknown) => {
      if (!NO_ROOM.has(errnoCode(error) ?? '')) throw error;
      return false;
    },
  );
  try {
    // No inode left for a claim (a disk filled after its holder was killed): the dead lock's
    // inode is the one the taker's own lock needs, so it goes on without one, unless a taker
    // that may live has claimed it. Two such takers are kept apart by the rename (one moves
    // the judged lock) and by the check after it (a lock moved that is not the judged one is
    // linked back).
    const claimedAtMs = claimed ? (await fs.lstat(claim)).ctimeMs : undefined;
    if (await anotherTakerAtWork(lockPath, claim, claimedAtMs)) return 'contended';
    if (!(await holdsJudged(lockPath, judged))) return 'replaced';
    steps.checked?.();
    if (options.oneAsideName === true) return await moveAsideNoReplace(lockPath, judged, aside, steps, claimed);
    return await renameAside(lockPath, judged, aside, steps);
  } finally {
    if (claimed) await fs.rm(claim, { force: true }).catch(() => undefined);
  }
}

export interface TakeoverOptions {
  /**
   * `aside` is one fixed name (the tenant lock's `.openclaw-lock-<t>.aside`), which a command
   * holding the lock looks at with one lstat: the lock goes there without replacing what is
   * there (moveAsideNoReplace), and a taker finding it taken backs off ('contended').
   */
  readonly oneAsideName?: boolean;
}

/**
 * Moves the judged lock from `lockPath` to `aside` unless `aside` holds a file ('contended':
 * another taker is at work, or one killed left a lock there for the caller to settle). Node
 * has no renameat2(RENAME_NOREPLACE): the lock is hard-linked to `aside` (fails if it exists),
 * and its name removed only if what the link caught is the judged lock, so a live lock that
 * took the name meanwhile is never moved away (with a rename, a taker killed before its check
 * left it aside, the name free: a backup whose listing came before that went on beside its
 * holder). Between the link and the unlink no taker of this version can move the lock (its
 * link fails), so the name still holds the judged lock, which its gone holder never touches.
 * Where no link can be made (a file system without hard links, no inode for one on tmpfs),
 * the lock is renamed there while the name is free, and checked after as before; so it is by a
 * taker without a claim (`claimed` false: no inode left for one), which another such taker does
 * not wait for: the unlink after a look at the name is no conditional removal, and a second
 * taker that settled the aside name meanwhile, took the dead lock over and made its own lock had
 * that live lock unlinked (with no inode left, it even takes the freed inode's number), both
 * holding the lock (test/lock-takeover-claimless.test.ts); the rename moves what it moves
 * atomically, and the check after it links back a lock that is not the judged one.
 */
async function moveAsideNoReplace(lockPath: string, judged: LockFileState, aside: string, steps: TakeoverSteps, claimed: boolean): Promise<TakeoverOutcome> {
  if (!claimed) return await renameAside(lockPath, judged, aside, steps, { oneAsideName: true });
  try {
    await fs.link(lockPath, aside);
  } catch (error) {
    const code = errnoCode(error) ?? '';
    if (code === 'EEXIST') return 'contended';
    if (code === 'ENOENT') return 'replaced';
    if (!NO_ROOM.has(code) && !LINK_UNSUPPORTED.has(code)) throw error;
    return await renameAside(lockPath, judged, aside, steps, { oneAsideName: true });
  }
  const caught = await readLockFile(aside).catch(() => undefined);
  if (caught === undefined || caught.ino !== judged.ino || caught.content !== judged.content) {
    // The name held another lock by the link (or the link was settled meanwhile): only the second name goes.
    if (caught !== undefined) await removeIfStill(aside, caught.ino);
    return 'replaced';
  }
  if ((await fs.lstat(lockPath).catch(() => undefined))?.ino === judged.ino) {
    await fs.unlink(lockPath).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }
  steps.movedAside?.();
  await removeIfStill(aside, judged.ino);
  return 'moved';
}

/**
 * The judged lock renamed from `lockPath` to `aside`, checked after (the rename may change the
 * file's ctime: the inode and the content tell it), linked back if it is not the judged one,
 * and its aside name removed. `aside` is this taker's own name, removed whatever it holds; with
 * `oneAsideName` it is the one name all takers share (moveAsideNoReplace without a link): the
 * lock goes there only while it holds nothing ('contended' else), and the name is removed only
 * if it still holds the file moved (read as gone: settled meanwhile, lock.ts
 * settleMovedAsideLock, and the name may be another taker's now).
 */
async function renameAside(lockPath: string, judged: LockFileState, aside: string, steps: TakeoverSteps, options: TakeoverOptions = {}): Promise<TakeoverOutcome> {
  const shared = options.oneAsideName === true;
  if (shared && (await fs.lstat(aside).catch(() => undefined)) !== undefined) return 'contended';
  try {
    await fs.rename(lockPath, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'replaced';
    throw error;
  }
  steps.movedAside?.();
  const moved = await readLockFile(aside).catch(() => undefined);
  if (moved !== undefined && (moved.ino !== judged.ino || moved.content !== judged.content)) await putLockBack(aside, lockPath);
  if (!shared) await fs.rm(aside, { force: true });
  else if (moved !== undefined) await removeIfStill(aside, moved.ino);
  return 'moved';
}

/** Removes `file` if it is still the file of inode `ino` (another taker may have put its own there since). */
async function removeIfStill(file: string, ino: number): Promise<void> {
  const stat = await fs.lstat(file).catch(() => undefined);
  if (stat?.ino === ino) await fs.rm(file, { force: true });
}

/**
 * Puts the lock moved to `aside` back under `lockPath`, unless that name holds another file
 * by then; whether it did. The link keeps `aside` as a second name, for the caller to remove.
 * Where no link can be made (a file system without hard links; no inode left for one, as a link
 * takes on tmpfs), the name is reserved first with an empty file of our own (O_EXCL: fails if
 * a lock is there), and the lock renamed over it: a rename alone replaces whatever holds the
 * name, and a lock created between a look at the name and the rename was overwritten (its
 * holder ran on, beside this lock's). Only with no inode left even for that reservation is the
 * lock renamed without one: then no lock can be created by anyone (each needs an inode), but for
 * one freed between the failed reservation and the rename.
 */
export async function putLockBack(aside: string, lockPath: string): Promise<boolean> {
  try {
    await fs.link(aside, lockPath);
    return true;
  } catch (error) {
    const code = errnoCode(error) ?? '';
    if (!NO_ROOM.has(code) && !LINK_UNSUPPORTED.has(code)) return false;
  }
  const reserved = await writeNewFile(lockPath, '').then(
    (file) => file.ino,
    (error: unknown) => {
      if (NO_ROOM.has(errnoCode(error) ?? '')) return undefined;
      return null; // another file holds the name (EEXIST), or it cannot be made there
    },
  );
  if (reserved === null) return false;
  try {
    await fs.rename(aside, lockPath);
    return true;
  } catch {
    // The lock moved aside is gone meanwhile: the reservation goes too, if it is still ours.
    if (reserved !== undefined && (await fs.lstat(lockPath).catch(() => undefined))?.ino === reserved) await fs.rm(lockPath, { force: true }).catch(() => undefined);
    return false;
  }
}

/** A taker's claim is `<lock>.<owner>.<rand>.taking` (tenant/hidden-names.ts parses the tenant lock's). */
const CLAIM_KIND = 'taking';

/** `<lock>.<owner>.<rand>.<kind>`: a file of this process beside the lock, named so that others can tell when it is gone. */
export function besideLockName(lockPath: string, kind: string): string {
  return `${lockPath}.${ownerTag()}.${randomBytes(6).toString('hex')}.${kind}`;
}

/**
 * `file`, a name `besideLockName` made for this process, naming `owner` instead: for a file this
 * process hands on to a child that may outlive it (crontab-runner.ts: `crontab -`'s input).
 */
export function besideLockNameFor(file: string, owner: ProcessOwner): string {
  const tag = `.${ownerTag()}.`;
  const at = file.lastIndexOf(tag);
  return at < 0 ? file : `${file.slice(0, at)}.${ownerTag(owner)}.${file.slice(at + tag.length)}`;
}

export interface FileBesideLock {
  readonly path: string;
  /** Undefined for a name without an owner (`<lock>.<rand>.<kind>`, from older versions). */
  readonly owner: ProcessOwner | undefined;
  readonly stat: Stats;
}

/**
 * The files beside `lockPath` named as `besideLockName` names them, of these kinds (with
 * `ownerless`, also those without an owner); `names`: the directory's listing when the caller
 * has just read it, else it is read here.
 */
export async function filesBesideLock(lockPath: string, kinds: readonly string[], options: { readonly ownerless?: boolean; readonly names?: readonly string[] } = {}): Promise<FileBesideLock[]> {
  const dir = path.dirname(lockPath);
  const prefix = `${path.basename(lockPath)}.`;
  const pattern = new RegExp(`^(?:(${OWNER_TAG_PATTERN})\\.)${options.ownerless === true ? '?' : ''}[0-9a-f]{12}\\.(?:${kinds.join('|')})$`);
  const found: FileBesideLock[] = [];
  for (const name of options.names ?? (await fs.readdir(dir))) {
    if (!name.startsWith(prefix)) continue;
    const match = pattern.exec(name.slice(prefix.length));
    if (match === null) continue;
    const owner = match[1] === undefined ? undefined : parseOwnerTag(match[1]);
    const file = path.join(dir, name);
    const stat = await fs.lstat(file).catch(() => undefined);
    if (stat !== undefined) found.push({ path: file, owner, stat }); // else: its taker is done
  }
  return found;
}

async function holdsJudged(lockPath: string, judged: LockFileState): Promise<boolean> {
  const now = await fs.lstat(lockPath).catch(() => undefined);
  return now !== undefined && isSameFile(now, judged);
}

/**
 * Whether the directory holds the claim of another taker of `lockPath` whose owner is not
 * provably gone (by the file system's clock: `claimedAtMs`, our own claim's ctime; without a
 * claim of our own, a taker on another host is never judged gone). Claims of gone owners are
 * removed on the way: they never move anything again.
 */
async function anotherTakerAtWork(lockPath: string, ownClaim: string, claimedAtMs: number | undefined): Promise<boolean> {
  for (const claim of await filesBesideLock(lockPath, [CLAIM_KIND])) {
    if (claim.path === ownClaim) continue;
    const clock = { now: async () => claimedAtMs ?? claim.stat.mtimeMs };
    if (!(await isOwnerGone(claim.owner!, claim.stat.mtimeMs, STALE_AFTER_MS, clock))) return true;
    await fs.rm(claim.path, { force: true }).catch(() => undefined);
  }
  return false;
}
