// One operation per tenant at a time. The lock is a file beside the tenant slot, created
// atomically with its content (written to a temporary file, then hard-linked into place,
// which fails if a lock exists), so it works on any POSIX file system, EFS included, across
// processes and hosts, and no one ever reads a half-written lock. Its holder refreshes its
// mtime while it runs; a lock whose holder is provably gone (process-owner.ts: a dead
// process in our pid namespace, or a heartbeat silent for LOCK_STALE_MS elsewhere, by the
// file system's clock, which stamps the heartbeat, never by this host's) is
// taken over instead of blocking forever, once it is not fresh, moving only the very lock
// judged, one taker at a time (lock-takeover.ts); a holder whose lock was taken over
// notices it (`assertHeld`). A failed write (a full disk) removes what it created; where a
// disk has no room for the record, the lock is created empty instead, a hard link of a file
// whose name carries the record (`<lock>.<owner>.<rand>.<operation>.held`, which needs an
// inode, no data block): `tenants recover` frees a full disk of a killed restore's staging,
// and must get the lock to do it. Older versions find such a lock unreadable, and take it
// over only once its mtime is UNREADABLE_LOCK_STALE_MS old: its heartbeat beats faster. The
// temporary and taken-over files and a taker's claim carry their owner in their names, so
// the base-dir sweep can remove those of a killed process.

import { randomBytes } from 'node:crypto';
import { lstatSync, promises as fs } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';

import { crashPoint } from '../crash-points.js';
import { errnoCode, errnoMessage, FileSystemError, TenantBusyError } from '../errors.js';
import { READ_FLAGS } from '../file-access.js';
import { hiddenNames } from './hidden-names.js';
import { createEmptyLockFile, createLockFile, filesBesideLock, freshForMs, isSameFile, putLockBack, readLockFile, takeOverLock, type CreateOutcome, type LockFileState } from './lock-takeover.js';
import { HEARTBEAT_MS, hostId, isLocal, isProcessAlive, OWNER_TAG_PATTERN, parseOwnerTag, STALE_AFTER_MS, thisProcess, touchWithFileSystemClock, type ProcessOwner } from './process-owner.js';

export const LOCK_HEARTBEAT_MS = HEARTBEAT_MS;
/** A lock not refreshed for this long belongs to a holder that is gone (another host, or a frozen process). */
export const LOCK_STALE_MS = STALE_AFTER_MS;
/**
 * A lock that does not parse was left by an older version, or written in place on a file
 * system without hard links by a writer that is now gone (a live one finishes in
 * microseconds): it is taken over once it is this old.
 */
const UNREADABLE_LOCK_STALE_MS = 5_000;
/** An empty lock's heartbeat: well within UNREADABLE_LOCK_STALE_MS, after which older versions take it over. */
const EMPTY_LOCK_HEARTBEAT_MS = 1_500;
/** How long an operation waits for a recovery (the base-dir sweep) that holds the lock, or for another taker of a stale lock. */
const RECOVERY_WAIT_MS = 10_000;

export type TenantOperation = 'backup' | 'restore' | 'recover';

interface LockRecord {
  readonly token: string;
  readonly pid: number;
  readonly host: string;
  /** process-owner.ts; absent in locks written by older versions. */
  readonly hostId?: string;
  readonly started?: number;
  readonly operation: TenantOperation;
  /** Absent for an empty lock on a file system that keeps no birth time (emptyLockHolder). */
  readonly startedAt?: string;
  /** What the operation works on (a backup: its destination), when it said (LockOptions.target); absent in locks of older versions. */
  readonly target?: string;
  /** The tenant whose lock it is; absent in locks of older versions (lockHolder). */
  readonly tenant?: string;
}

export interface TenantLock {
  readonly path: string;
  /** Fails (TenantBusyError) unless the lock is still this holder's: before a step that must not run twice at once. */
  assertHeld(): Promise<void>;
  release(): Promise<void>;
}

/** Locks this process holds now, by path. */
const heldHere = new Set<string>();

/** Whether this process holds the tenant's lock now (another of its operations runs on the tenant). */
export function isLockHeldHere(tenantsDir: string, tenant: string): boolean {
  return heldHere.has(lockPathFor(tenantsDir, tenant));
}

export function lockPathFor(tenantsDir: string, tenant: string): string {
  return path.join(tenantsDir, hiddenNames.lock(tenant));
}

export interface LockOptions {
  /** Overrides for tests: how old a heartbeat may be, how often it beats. */
  readonly staleMs?: number;
  readonly heartbeatMs?: number;
  /** What the operation works on (a backup: its destination's display name; a restore in pieces: its chain), written in the lock: a second backup of the same tenant to the same place is told apart (TenantBusyError.sameBackup). */
  readonly target?: string;
  /** Waits (RECOVERY_WAIT_MS) for a holder of the same operation and `target`: a restore's next piece, queued while the piece before still holds the lock to hand over. */
  readonly waitForSameTarget?: boolean;
}

export async function acquireTenantLock(
  tenantsDir: string,
  tenant: string,
  operation: TenantOperation,
  options: LockOptions = {},
): Promise<TenantLock> {
  const lockPath = lockPathFor(tenantsDir, tenant);
  const self = thisProcess();
  const record: LockRecord = {
    token: randomBytes(12).toString('hex'),
    pid: self.pid,
    host: hostname(),
    hostId: self.hostId,
    started: self.started,
    operation,
    startedAt: new Date().toISOString(),
    ...(options.target !== undefined && { target: options.target }),
    tenant,
  };
  const content = JSON.stringify(record);
  const waitUntil = Date.now() + RECOVERY_WAIT_MS;

  let firstSeen: { state: LockFileState; at: number } | undefined;
  /** Attempts in a row that found the name taken and then could not read it. */
  let vanished = 0;
  for (let takeovers = 0; takeovers < 3; ) {
    const attempt = await createTenantLockFile(tenantsDir, tenant, content, operation).catch(async (error: unknown) => {
      // A process killed while it made or took over the lock left a file beside it: with no inode left, that is the one the lock needs.
      if (NO_ROOM.has(errnoCode((error as Error).cause) ?? '') && (await removeFilesOfGoneTakers(lockPath))) return createTenantLockFile(tenantsDir, tenant, content, operation);
      throw error;
    }).catch((error: unknown) => takeableWithoutRoom(error, tenantsDir, tenant));
    if (attempt.created) {
      crashPoint('lock:acquired');
      const heartbeatMs = options.heartbeatMs ?? LOCK_HEARTBEAT_MS;
      if (attempt.holder === undefined) return holdLock(lockPath, { token: record.token, ino: attempt.ino }, heartbeatMs);
      return holdLock(lockPath, { token: path.basename(attempt.holder), ino: attempt.ino, holder: attempt.holder }, Math.min(heartbeatMs, EMPTY_LOCK_HEARTBEAT_MS));
    }
    const held = await readLockFile(lockPath);
    if (held === undefined) {
      // Released between our attempt and the read. A name that creating says exists and every
      // read says does not (a network file system's cached lookup) is no release: before, the
      // loop went on for good, deaf to SIGINT (a 1 ms latency mount: 10 min, no archive made).
      if (++vanished >= LOCK_VANISHED_LIMIT) throw lockUnreadableError(lockPath, vanished);
      await new Promise((resolve) => setTimeout(resolve, 10));
      continue;
    }
    vanished = 0;
    const emptyHolder = held.content === '' ? await emptyLockHolder(lockPath, held.ino) : undefined;
    const holder = parseRecord(held.content) ?? emptyHolder?.record;
    if (isStale(held, holder, options.staleMs ?? LOCK_STALE_MS, attempt.fileSystemNowMs)) {
      if (firstSeen === undefined || !isSameFile(firstSeen.state, held)) firstSeen = { state: held, at: Date.now() };
      const fresh = freshForMs(held, firstSeen, attempt.fileSystemNowMs);
      if (fresh > 0) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(fresh, 250)));
        continue;
      }
      crashPoint('lock:stale-judged');
      const aside = oneAsideNameFor(lockPath);
      const outcome = await takeOverLock(
        lockPath,
        held,
        aside,
        { checked: () => crashPoint('lock:stale-checked'), movedAside: () => crashPoint('lock:stale-moved-aside') },
        { oneAsideName: true },
      ).catch((error: unknown) => {
        throw lockWriteError(error, lockPath);
      });
      // The one aside name taken: by a taker at work (its lock there for milliseconds), or one
      // killed that left a lock there, settled here (a gone holder's removed, a live one's put
      // back while the name is free) so that takeovers go on.
      if (outcome === 'contended' && Date.now() < waitUntil && (await settleMovedAsideLock(lockPath, aside, attempt.noRoom === undefined ? attempt.fileSystemNowMs : undefined).catch(() => 'kept' as const)) !== 'kept') continue;
      // Something no taker makes (a directory) keeps the name: no takeover can go on; said at once, not as a busy tenant.
      if (outcome === 'contended') await assertAsideNameUsable(aside, lockPath);
      // Its holder is gone, and the lock it named is: the second name goes too (only its owner links it).
      if (outcome === 'moved' && emptyHolder !== undefined) await fs.rm(emptyHolder.path, { force: true }).catch(() => undefined);
      if (outcome !== 'contended') takeovers++;
      else if (Date.now() < waitUntil) await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 40));
      else if (attempt.noRoom !== undefined) throw noRoomToJudgeClaim(attempt.noRoom);
      else throw await takeoverBusyError(tenant, lockPath, aside, attempt.fileSystemNowMs);
      continue;
    }
    // Another command's sweep settling this tenant's leftovers holds it for a moment, and so does a restore's piece handing over.
    const sameTarget = options.target !== undefined && holder?.operation === operation && holder.target === options.target;
    if (((holder?.operation === 'recover' && operation !== 'recover') || (sameTarget && options.waitForSameTarget === true)) && Date.now() < waitUntil) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      continue;
    }
    const busy = busyError(tenant, lockPath, holder, { silentMs: attempt.fileSystemNowMs - held.mtimeMs, staleMs: options.staleMs ?? LOCK_STALE_MS });
    if (sameTarget) busy.sameBackup = true;
    throw busy;
  }
  throw new TenantBusyError(`tenant "${tenant}" is busy: could not take its lock ${lockPath}`);
}

/**
 * Whether no live process holds the tenant's lock, judged without creating a file (a disk with
 * no inode left, where no lock can be taken): there is none (neither opened nor listed), or its
 * holder is a process of this pid namespace that is gone. A holder on another host is judged by its heartbeat's age
 * on the file system's clock, which takes a file to read (process-owner.ts), and a lock that
 * does not name its holder by its age: neither is judged gone here.
 *
 * `names`: the base dir's listing, when the caller has just read it to ask this of many
 * tenants (base-dir-sweep.ts deadScratchAreas); else it is read here, up to twice.
 */
export async function isLockHolderGoneHere(tenantsDir: string, tenant: string, names?: readonly string[]): Promise<boolean> {
  const lockPath = lockPathFor(tenantsDir, tenant);
  const held = await readLockFile(lockPath);
  // A lookup may be answered from a cache of when there was no lock (a FUSE mount's negative
  // entries): none only if the directory's listing, asked of the file system, lacks it too.
  // A live holder's lock that a taker without a claim moved aside, killed before the put-back: that holder runs.
  if (held === undefined) return !(names ?? (await fs.readdir(tenantsDir))).includes(path.basename(lockPath)) && !(await liveLockMovedAside(lockPath, names));
  const record = await lockHolder(lockPath, held);
  const owner = record === undefined ? undefined : localOwner(record);
  return owner !== undefined && !isProcessAlive(owner.pid, owner.started);
}

/**
 * The busy error a command on the tenant would stop with now (acquireTenantLock's, word for
 * word), judged by reading the lock only: nothing is taken or written (a dry run). Only where it
 * can be judged here: a live process of this pid namespace holds the lock, or holds the lock a
 * taker moved to the one aside name (the command's recovery hands that back and stops busy,
 * slot.ts handBackLiveLocks). Undefined otherwise: no lock; a gone holder's (the command takes
 * it over); a sweep's 'recover' (the command waits for it); a holder on another host, or a lock
 * that names none, judged by its heartbeat's age on the file system's clock, which takes a
 * file written to read (process-owner.ts); a lock that cannot be read (the command says why).
 */
export async function busyHolderHere(tenantsDir: string, tenant: string): Promise<TenantBusyError | undefined> {
  const lockPath = lockPathFor(tenantsDir, tenant);
  // The name's lock is the one judged (a gone holder's is taken over, whatever is aside); the aside name only while the name is free.
  const atName = await readLockFile(lockPath).catch(() => null);
  const held = atName === undefined ? await readLockFile(oneAsideNameFor(lockPath)).catch(() => undefined) : atName;
  if (held === null || held === undefined) return undefined;
  const record = await (atName === undefined ? movedLockHolder : lockHolder)(lockPath, held).catch(() => undefined);
  const owner = record === undefined ? undefined : localOwner(record);
  if (record === undefined || owner === undefined || record.operation === 'recover' || !isProcessAlive(owner.pid, owner.started)) return undefined;
  return busyError(tenant, lockPath, record, { staleMs: LOCK_STALE_MS });
}

/**
 * A lock could not be created for want of room (no inode left: every try makes a file). Where
 * the lock there is held by a process of this pid namespace that is gone, it is judged and
 * taken over as always (its inode is what the new lock takes), by the time its own mtime
 * gives: the file system's clock cannot be read without a file, and a holder elsewhere is
 * never judged gone by it. Else the failure stands.
 */
async function takeableWithoutRoom(error: unknown, tenantsDir: string, tenant: string): Promise<CreateOutcome & { readonly holder?: string; readonly noRoom?: Error }> {
  if (!NO_ROOM.has(errnoCode((error as Error).cause) ?? '')) throw error;
  const held = await readLockFile(lockPathFor(tenantsDir, tenant)).catch(() => undefined);
  if (held === undefined || !(await isLockHolderGoneHere(tenantsDir, tenant))) throw error;
  return { created: false, fileSystemNowMs: held.mtimeMs, noRoom: error as Error };
}

/**
 * A dead holder's lock, on a disk with no inode left, that another taker's claim keeps from
 * being taken over: one of another host is judged gone by its age on the file system's clock,
 * which takes a file to read, so without an inode it never is, however old. The failure is the
 * missing inode (freeing one lets the next command judge the claim), not a busy tenant: before,
 * every command said "busy: another command is taking over its lock" (exit 3) for as long as
 * the disk stayed full.
 */
/** Attempts in a row (10 ms apart) whose name was taken yet read as absent, after which acquireTenantLock gives up. */
const LOCK_VANISHED_LIMIT = 200;

function lockUnreadableError(lockPath: string, attempts: number): FileSystemError {
  return new FileSystemError(
    `cannot take the lock ${lockPath}: ${attempts} times creating it said the name is taken and reading it said there is no such file; the file system's view of the base dir does not agree with itself (a network mount's cached lookup?): try again, or remount`,
  );
}

function noRoomToJudgeClaim(noRoom: Error): FileSystemError {
  return new FileSystemError(
    `${noRoom.message}; its holder is gone, and a claim to take it over beside it, of a command on another host or one still at work, cannot be judged gone without a file to date it by`,
    { cause: noRoom.cause },
  );
}

/**
 * Removes the files beside `lockPath` of processes of this pid namespace now gone: takers'
 * claims and moved-aside locks, lock temporaries, and empty locks' second names not linked as
 * the lock; whether it removed any.
 */
async function removeFilesOfGoneTakers(lockPath: string): Promise<boolean> {
  let removed = false;
  const lock = await fs.lstat(lockPath).catch(() => undefined);
  const files = await filesBesideLock(lockPath, ['taking', 'broken', 'tmp', '(?:backup|restore|recover)\\.held']).catch(() => []);
  // The one aside name (a taker killed after its move, or at work): judged by its holder, as the lock itself is.
  const aside = oneAsideNameFor(lockPath);
  const atAside = await fs.lstat(aside).catch(() => undefined);
  if (atAside !== undefined && atAside.ino !== lock?.ino && (await settleMovedAsideLock(lockPath, aside, undefined).catch(() => 'kept' as const)) === 'removed') removed = true;
  // Moved-aside locks first: an empty one's holder is told by its second name, which may be among the others.
  const asideFirst = [...files.filter((file) => file.path.endsWith('.broken')), ...files.filter((file) => !file.path.endsWith('.broken'))];
  for (const file of asideFirst) {
    if (file.owner === undefined || !isLocal(file.owner) || isProcessAlive(file.owner.pid, file.owner.started) || file.stat.ino === lock?.ino) continue;
    if (file.path.endsWith('.broken')) {
      // The file system's clock cannot be read without a file: a holder elsewhere is not judged gone.
      removed ||= (await settleMovedAsideLock(lockPath, file.path, undefined)) === 'removed';
      continue;
    }
    await fs.rm(file.path, { force: true });
    removed = true;
  }
  return removed;
}

/**
 * Settles a lock a taker now gone moved aside (`aside`): removed when its own holder is gone
 * too (the lock that taker judged), else put back under `lockPath` while that name is free.
 * A taker without a claim (no inode left for one) may have moved the live lock of a holder
 * that took over the same dead lock a moment earlier, and been killed before it linked it
 * back: removing it let the next command take the lock while that holder still ran.
 * `fileSystemNowMs`: the file system's clock (a holder elsewhere, or one the lock does not
 * name, is judged by its heartbeat's age); undefined: only a holder of this pid namespace is judged.
 */
export async function settleMovedAsideLock(lockPath: string, aside: string, fileSystemNowMs: number | undefined): Promise<'removed' | 'restored' | 'kept'> {
  const moved = await readLockFile(aside).catch(() => null);
  if (moved === undefined) return 'kept'; // removed meanwhile
  // Another tenant's lock (linked here): no lock of this one, removed as a planted file is (its own name keeps it).
  if (moved !== null && !namesAnotherTenant(lockPath, moved)) {
    const holder = await lockHolder(lockPath, moved);
    const owner = holder === undefined ? undefined : localOwner(holder);
    // Without the clock, a lock that names no holder is judged as before there was a put-back: gone.
    const holderGone =
      fileSystemNowMs !== undefined
        ? isStale(moved, holder, LOCK_STALE_MS, fileSystemNowMs) || lostBySilence(moved, fileSystemNowMs)
        : holder === undefined || (owner !== undefined && !isProcessAlive(owner.pid, owner.started));
    if (!holderGone) {
      if (!(await putLockBack(aside, lockPath))) return 'kept';
      await fs.rm(aside, { force: true });
      return 'restored';
    }
  }
  // Its holder is gone, or it is no lock (a file of another kind planted under its name); the
  // file judged only (the one aside name may hold another taker's since).
  const now = await fs.lstat(aside).catch(() => undefined);
  if (now === undefined) return 'kept';
  if (moved !== null && now.ino !== moved.ino) return 'kept';
  await fs.rm(aside, { force: true });
  return 'removed';
}

/**
 * The tenant is busy: its lock's holder is gone, and for RECOVERY_WAIT_MS the one aside name
 * kept the lock from being taken over. Holding the lock of a holder that may live (a taker that
 * did not finish moved it there, and the name took a lock since, whose holder died), that
 * holder is named, and when it clears: before, the line said another command was taking the
 * lock over, for as long as that holder ran (up to 60 s of its silence).
 */
async function takeoverBusyError(tenant: string, lockPath: string, aside: string, fileSystemNowMs: number): Promise<TenantBusyError> {
  const moved = await readLockFile(aside).catch(() => undefined);
  const holder = moved === undefined ? undefined : await movedLockHolder(lockPath, moved);
  if (moved !== undefined && holder !== undefined && !isStale(moved, holder, LOCK_STALE_MS, fileSystemNowMs) && !lostBySilence(moved, fileSystemNowMs)) {
    const busy = busyError(tenant, aside, holder, { silentMs: fileSystemNowMs - moved.mtimeMs, staleMs: LOCK_STALE_MS });
    return new TenantBusyError(
      `${busy.message}; a takeover that did not finish left that lock at this name, beside a lock of a holder that is gone at ${lockPath}: the tenant is free once that holder is done, or once its lock has not been refreshed for ${LOCK_STALE_MS / 1000} s`,
    );
  }
  return new TenantBusyError(`tenant "${tenant}" is busy: another command is taking over its lock ${lockPath}, whose holder is gone`);
}

/** Fails (FileSystemError) when the one aside name holds something other than a file: no taker made it, and none can move a lock there. */
async function assertAsideNameUsable(aside: string, lockPath: string): Promise<void> {
  const stat = await fs.lstat(aside).catch(() => undefined);
  if (stat === undefined || stat.isFile()) return;
  throw new FileSystemError(`cannot take over the lock ${lockPath}, whose holder is gone: ${aside}, where a takeover moves it, is ${stat.isDirectory() ? 'a directory' : stat.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}, not a lock: remove it, then run the command again`);
}

/** The one name a taker of the tenant lock at `lockPath` moves it to (hidden-names.ts 'lock-aside'). */
export function oneAsideNameFor(lockPath: string): string {
  return `${lockPath}.aside`;
}

/**
 * Whether a moved-aside lock's holder has lost it whether or not it lives: its heartbeat (the
 * mtime, which the rename keeps and which its holder does not touch while the lock is not at
 * its name) is LOCK_STALE_MS old by the file system's clock. A command on another host judges
 * such a holder gone by that silence alone and may have worked under the name since; so the
 * lock is never put back or handed back, but removed, and its holder, if it lives, fails at
 * its next check ("lost the tenant's lock"). Before, a host that could see the holder alive
 * put it back: its holder frozen > 60 s on host 1, its lock moved aside by a taker on host 2
 * that froze before removing it, another command there worked and released, and a sweep on
 * host 1 put the lock back: the holder went on (a restore committing over, a backup storing,
 * what it read before that command worked). A live lock that a taker without a claim moved
 * aside is put back (or handed back) only while it is younger than that.
 */
function lostBySilence(moved: LockFileState, fileSystemNowMs: number): boolean {
  return fileSystemNowMs - moved.mtimeMs > LOCK_STALE_MS;
}

/**
 * Whether a lock moved aside beside `lockPath` names a holder that may live: one of this pid
 * namespace that lives, or one of another host, which cannot be judged without a file (its
 * heartbeat's age is read on the file system's clock). Before, only the first counted: with a
 * taker between its rename and its put-back, another host's live restore was judged gone, and
 * `tenants recover` on a disk with no inode left removed its staging from under it. A lock that
 * names no holder is judged gone, as settleMovedAsideLock does without the clock.
 */
async function liveLockMovedAside(lockPath: string, names?: readonly string[]): Promise<boolean> {
  const files = [oneAsideNameFor(lockPath), ...(await filesBesideLock(lockPath, ['broken'], { ...(names !== undefined && { names }) }).catch(() => [])).map((file) => file.path)];
  for (const file of files) {
    const moved = await readLockFile(file).catch(() => undefined);
    const holder = moved === undefined ? undefined : await movedLockHolder(lockPath, moved);
    if (holder === undefined) continue;
    const owner = localOwner(holder);
    if (owner === undefined || isProcessAlive(owner.pid, owner.started)) return true;
  }
  return false;
}

/** How old (by its mtime, on the file system's clock) a lock an older version's taker moved aside is when it is removed. */
export const OLD_MOVED_ASIDE_LOCK_STALE_MS = 60 * 60 * 1000;

/**
 * Removes `file`, a lock an older version's taker moved aside (hidden-names.ts
 * 'lock-broken-old': no owner in its name), once its mtime is OLD_MOVED_ASIDE_LOCK_STALE_MS
 * old by the file system's clock (`fileSystemNowMs`); whether it did. Such a taker moved the lock
 * it judged gone, checked it and removed it (or linked it back) in milliseconds: one killed in
 * between left it, and before, nothing ever removed it (no owner to judge, not put back). The
 * mtime is the lock's last heartbeat, which the rename keeps: an hour after it, that taker is
 * long done, and a holder whose lock it was, if it still runs, has lost its lock's name for
 * that long (other commands may have worked under it since): it is not handed back, and that
 * holder fails at its next check, as before.
 */
export async function removeOldMovedAsideLock(file: string, fileSystemNowMs: number | undefined): Promise<boolean> {
  if (fileSystemNowMs === undefined) return false; // no clock (no room for its file): its age is not known
  const stat = await fs.lstat(file).catch(() => undefined);
  if (stat === undefined || !stat.isFile() || fileSystemNowMs - stat.mtimeMs <= OLD_MOVED_ASIDE_LOCK_STALE_MS) return false;
  await fs.rm(file, { force: true });
  return true;
}

/**
 * Called by the command that has just taken the tenant's lock, for a lock a taker now gone
 * moved aside (`aside`; a taker without a claim, no inode left, killed between its rename and
 * the put-back): if its holder lives, this command's lock was made under the name that taker
 * left free, and that holder still runs. The name is handed back to it (the moved lock renamed
 * over the lock just taken, which no one else writes) and the command stops, busy, before its
 * recovery touches anything of that holder's (a live restore's staging). Before, the recovery
 * removed the moved lock as the gone taker's leftover, and the command ran beside its holder.
 * Its holder gone (or no lock there): nothing is done; the recovery removes it.
 * `fileSystemNowMs`: the file system's clock, by which a holder elsewhere is judged. `lock`:
 * the command's own lock: the rename goes over the name only while it still holds that lock
 * (its inode and token); taken over meanwhile (this process frozen past the stale time), the
 * lock is lost (TenantBusyError) and the name, another holder's now, is left alone. Before,
 * the moved lock was renamed over whatever the name held. Between that look and the rename
 * the name is taken over only by a taker of a stale lock: ours beats every heartbeat, so one
 * here never judges it gone while this process lives, and one on another host only once this
 * process has been silent for LOCK_STALE_MS. Our own lock is the reservation a no-replace
 * put-back makes (putLockBack's O_EXCL file): a link(2) back (no-replace) would need the name
 * free first, and moving our lock away to free it lets any newcomer take the name before the
 * link, leaving the holder beside it (test/lock-hand-back.test.ts: with such a hand-back, its
 * renames and links held 2 s each, 33 of 33 newcomers took the lock; with the rename, none).
 */
export async function handBackMovedAsideLock(tenantsDir: string, tenant: string, aside: string, fileSystemNowMs: number | undefined, lock: TenantLock): Promise<void> {
  const lockPath = lockPathFor(tenantsDir, tenant);
  const moved = await readLockFile(aside).catch(() => undefined);
  if (moved === undefined) return;
  const holder = await movedLockHolder(lockPath, moved);
  if (holder === undefined) return;
  // No clock (no room for its file): only a holder of this pid namespace is judged, as settleMovedAsideLock does.
  const owner = localOwner(holder);
  const gone = fileSystemNowMs === undefined ? owner !== undefined && !isProcessAlive(owner.pid, owner.started) : isStale(moved, holder, LOCK_STALE_MS, fileSystemNowMs) || lostBySilence(moved, fileSystemNowMs);
  if (gone) return;
  if (lock.path !== lockPath || !(await (stillOurs.get(lock)?.() ?? Promise.resolve(false)))) throw lostLockError(lockPath);
  await fs.rename(aside, lockPath).catch((error: unknown) => {
    // Removed meanwhile by its taker, still alive (its put-back found our lock at the name):
    // that holder has lost its lock, but may still run until its next check.
    if (errnoCode(error) !== 'ENOENT') throw error;
  });
  throw busyError(tenant, lockPath, holder, { ...(fileSystemNowMs !== undefined && { silentMs: fileSystemNowMs - moved.mtimeMs }), staleMs: LOCK_STALE_MS });
}

/**
 * `heartbeat`: how long the lock has gone untouched, by the file system's clock (absent: not known). A holder on
 * another host (a Lambda invocation killed at its timeout) cannot be asked whether it lives:
 * the message says when its silence makes it gone, else a caller retries never or at once.
 */
function busyError(tenant: string, lockPath: string, record: LockRecord | undefined, heartbeat: { silentMs?: number; staleMs: number }): TenantBusyError {
  if (record === undefined) {
    return new TenantBusyError(
      `tenant "${tenant}" is busy: its lock file ${lockPath} is being written or was left unreadable by an older version ` +
        `(it is taken over once it is ${UNREADABLE_LOCK_STALE_MS / 1000} s old)`,
    );
  }
  const elsewhere =
    localOwner(record) === undefined
      ? `; its holder runs on another host, whose lock was last refreshed ${heartbeat.silentMs === undefined ? 'at a time not known here (no room on its file system for the file that tells it)' : `${Math.max(0, Math.round(heartbeat.silentMs / 1000))} s ago`}: ` +
        `if that holder is gone (killed, timed out), the first command after ${Math.round(heartbeat.staleMs / 1000)} s without a refresh takes the lock over`
      : '';
  return new TenantBusyError(
    `tenant "${tenant}" is busy: a ${record.operation} by pid ${record.pid} on ${record.host} holds it${record.startedAt === undefined ? '' : ` since ${record.startedAt}`} (lock file ${lockPath})${elsewhere}`,
  );
}

/** The tenant's lock file with `content` unless a lock is there; on a disk without room for it, an empty lock and its `holder` name. */
async function createTenantLockFile(
  tenantsDir: string,
  tenant: string,
  content: string,
  operation: TenantOperation,
): Promise<CreateOutcome & { readonly holder?: string; readonly noRoom?: Error }> {
  const lockPath = lockPathFor(tenantsDir, tenant);
  const temp = path.join(tenantsDir, hiddenNames.lockTemp(tenant));
  try {
    return await createLockFile(lockPath, temp, content, { tempWritten: () => crashPoint('lock:temp-written'), linked: () => crashPoint('lock:linked') });
  } catch (error) {
    if (!NO_ROOM.has(errnoCode(error) ?? '')) throw lockWriteError(error, lockPath);
    const holder = path.join(tenantsDir, hiddenNames.lockHeld(tenant, operation));
    try {
      const outcome = await createEmptyLockFile(lockPath, holder);
      return outcome.created ? { ...outcome, holder } : outcome;
    } catch (emptyError) {
      // Links unsupported: the record had to be written in place, for which there is no room.
      throw lockWriteError(NO_ROOM.has(errnoCode(emptyError) ?? '') ? emptyError : error, lockPath);
    }
  }
}

const NO_ROOM = new Set(['ENOSPC', 'EDQUOT']);

/** `<lock>.<owner>.<rand>.<operation>.held`, the second name of an empty lock (createTenantLockFile). */
const HOLDER_PATTERN = new RegExp(`^\\.(${OWNER_TAG_PATTERN})\\.[0-9a-f]{12}\\.(backup|restore|recover)\\.held$`);

/** The holder a lock file read beside (or as) `lockPath` names: its record, or for an empty lock (written in place, no inode for a temporary) its second name's. */
async function lockHolder(lockPath: string, file: { readonly content: string; readonly ino: number }): Promise<LockRecord | undefined> {
  return parseRecord(file.content) ?? (file.content === '' ? (await emptyLockHolder(lockPath, file.ino))?.record : undefined);
}

/** The holder a lock moved aside beside `lockPath` (its aside name, a `.broken` name) names, if it is a lock of this tenant (namesAnotherTenant). */
async function movedLockHolder(lockPath: string, file: { readonly content: string; readonly ino: number }): Promise<LockRecord | undefined> {
  return namesAnotherTenant(lockPath, file) ? undefined : lockHolder(lockPath, file);
}

/**
 * Whether a lock file found beside `lockPath` (at its aside name, or a `.broken` one) is another
 * tenant's lock: no lock of this tenant, whatever its holder (a hard link of a live lock of
 * another tenant, made by whoever can write the base dir, is no holder of this one). Before, a
 * backup of acme that found bob's live lock linked at acme's aside name handed it back over
 * acme's lock name: acme's name held bob's lock (busy while bob ran). A lock of an older version
 * names no tenant: judged as before.
 */
function namesAnotherTenant(lockPath: string, file: { readonly content: string }): boolean {
  const tenant = parseRecord(file.content)?.tenant;
  return tenant !== undefined && hiddenNames.lock(tenant) !== path.basename(lockPath);
}

/** The file beside an empty lock that is the same file (inode `ino`), and the record its name carries: who holds it. */
async function emptyLockHolder(lockPath: string, ino: number): Promise<{ path: string; record: LockRecord } | undefined> {
  const prefix = path.basename(lockPath);
  for (const name of await fs.readdir(path.dirname(lockPath)).catch(() => [] as string[])) {
    const match = name.startsWith(prefix) ? HOLDER_PATTERN.exec(name.slice(prefix.length)) : null;
    const owner = match === null ? undefined : parseOwnerTag(match[1]!);
    if (owner === undefined) continue;
    const holder = path.join(path.dirname(lockPath), name);
    const stat = await fs.lstat(holder).catch(() => undefined);
    if (stat?.ino !== ino) continue;
    const record: LockRecord = {
      token: name,
      pid: owner.pid,
      host: isLocal(owner) ? hostname() : `the host with id ${owner.hostId}`,
      hostId: owner.hostId,
      started: owner.started,
      operation: match![2] as TenantOperation,
      // Its birth time, where the file system keeps one: NFS (EFS) and FUSE keep none, and its
      // ctime is that of the last heartbeat, a second ago, not when the lock was taken.
      ...(stat.birthtimeMs > 0 && { startedAt: new Date(stat.birthtimeMs).toISOString() }),
    };
    return { path: holder, record };
  }
  return undefined;
}

function lockWriteError(error: unknown, lockPath: string): unknown {
  const what = errnoCode(error) === 'ENOENT' ? 'the tenant base dir does not exist' : errnoMessage(error);
  if (what === undefined) return error;
  return new FileSystemError(`cannot write the lock file ${lockPath}: ${what}`, { cause: error });
}

/**
 * Beats the lock's heartbeat while it is ours. Should the name hold another file (this process
 * was frozen past LOCK_STALE_MS and its lock taken over), or none, the heartbeat touches
 * nothing, so it never keeps the new holder's lock fresh, and `assertHeld` says so. Lost is
 * judged at each look, not for good: a lock moved aside by a taker killed before its put-back
 * comes back under the name (the sweep's put-back, a recover's hand-back: lock.ts
 * handBackMovedAsideLock), the same file (inode and token), with no one having worked under
 * the name meanwhile; before, a holder whose heartbeat fired in that moment failed its next
 * check, its work lost. A lock taken over is removed by its taker: never ours again.
 */
function holdLock(lockPath: string, own: { token: string; ino: number; holder?: string }, heartbeatMs: number): TenantLock {
  const { token, ino, holder } = own;
  let lost = false;
  const isOurs = (held: LockFileState | undefined) =>
    held?.ino === ino && (holder === undefined ? parseRecord(held.content)?.token === token : held.content === '' && isStillHolder(holder, ino));
  // Lost while the name is seen holding another file, or none: a read that fails (a
  // network file system's hiccup) tells nothing, and the last look stands.
  const ours = async (): Promise<boolean> => {
    const held = await readLockFile(lockPath).then((state) => ({ state }), () => undefined);
    if (held !== undefined) lost = !isOurs(held.state);
    return !lost;
  };
  // One beat at a time: beats overlapping on a slow file system would undo each other's stamps.
  let beating = false;
  const heartbeat = setInterval(() => {
    if (beating) return;
    beating = true;
    void ours().then(async (still) => {
      if (!still) return;
      const handle = await fs.open(lockPath, READ_FLAGS);
      try {
        if ((await handle.stat()).ino === ino) await touchWithFileSystemClock(handle);
      } finally {
        await handle.close();
      }
    }).catch(() => undefined).finally(() => {
      beating = false;
    });
  }, heartbeatMs);
  heartbeat.unref();
  heldHere.add(lockPath);
  let released = false;
  const lock: TenantLock = {
    path: lockPath,
    async assertHeld() {
      if (!released && (await ours())) return;
      throw lostLockError(lockPath);
    },
    async release() {
      if (released) return;
      released = true;
      clearInterval(heartbeat);
      try {
        if (isOurs(await readLockFile(lockPath))) await fs.rm(lockPath, { force: true });
        // A taker's link of this lock to the one aside name, the taker killed before its check
        // (lock-takeover.ts moveAsideNoReplace), left it a second name: it goes too. Else the next
        // command would find this lock there, its holder (this process) alive, hand it back and
        // stop busy, until this process exited (backup --all runs on). Only this very lock (inode
        // and token, as at the name): taken over, its inode was freed, and the number goes to the
        // next file made (ext4 does at once), which may be another holder's lock a killed taker
        // left there (test/lock-release-aside.test.ts).
        const aside = oneAsideNameFor(lockPath);
        if (isOurs(await readLockFile(aside).catch(() => undefined))) await fs.rm(aside, { force: true });
        // The lock's name no longer holds it (removed, or taken over): its second name goes,
        // whatever link count a FUSE mount's attribute cache still gives it.
        if (holder !== undefined) await fs.rm(holder, { force: true });
      } catch {
        // The operation is over, and the release cannot undo it: a lock left behind stops
        // being renewed and is taken over by the next command once this process is gone or
        // the lock is stale (lock-takeover.ts).
      } finally {
        heldHere.delete(lockPath);
        if (heldLocks.get(lockPath) === lock) heldLocks.delete(lockPath);
      }
    },
  };
  // Strict: a read that fails tells nothing, so the name is not taken to be ours (handBackMovedAsideLock).
  stillOurs.set(lock, async () => !released && isOurs(await readLockFile(lockPath).catch(() => undefined)));
  heldLocks.set(lockPath, lock);
  return lock;
}

function lostLockError(lockPath: string): TenantBusyError {
  // What to do, too: it changed nothing more (what it left is the next command's to settle).
  return new TenantBusyError(
    `lost the tenant's lock ${lockPath}: another operation took it over (was this process frozen for more than ${LOCK_STALE_MS / 1000} s?); it stopped there and changed nothing more: run it again once that operation is done`,
  );
}

/** Whether the lock's name still holds this very lock (its inode and token), for a step that writes over the name. */
const stillOurs = new WeakMap<TenantLock, () => Promise<boolean>>();
/** The lock this process holds now, by path: the one a recovery run under it hands a moved-aside lock back over (tenant/slot.ts). */
const heldLocks = new Map<string, TenantLock>();

/** The tenant's lock this process holds now, if it does. */
export function tenantLockHeldHere(tenantsDir: string, tenant: string): TenantLock | undefined {
  return heldLocks.get(lockPathFor(tenantsDir, tenant));
}

function isStillHolder(holder: string, ino: number): boolean {
  try {
    return lstatSync(holder).ino === ino;
  } catch {
    return false;
  }
}

function parseRecord(raw: string): LockRecord | undefined {
  try {
    const record = JSON.parse(raw) as LockRecord;
    return typeof record.pid === 'number' && typeof record.host === 'string' ? record : undefined;
  } catch {
    return undefined;
  }
}

/** The process a lock record names, when its liveness can be checked here. */
function localOwner(record: LockRecord): ProcessOwner | undefined {
  if (record.hostId !== undefined) {
    const owner = { pid: record.pid, started: record.started ?? 0, hostId: record.hostId };
    return isLocal(owner) ? owner : undefined;
  }
  // A lock from an older version names its host only.
  return record.host === hostname() ? { pid: record.pid, started: 0, hostId: hostId() } : undefined;
}

/**
 * Whether the lock's holder is gone: a dead process in our pid namespace; elsewhere, a lock
 * untouched for `staleMs` by the file system's clock (`fileSystemNowMs`): the heartbeat is
 * stamped by that clock, and a host whose own clock ran ahead would find a live lock old.
 */
function isStale(held: LockFileState, record: LockRecord | undefined, staleMs: number, fileSystemNowMs: number): boolean {
  const owner = record === undefined ? undefined : localOwner(record);
  if (owner !== undefined) return !isProcessAlive(owner.pid, owner.started);
  return fileSystemNowMs - held.mtimeMs > (record === undefined ? UNREADABLE_LOCK_STALE_MS : staleMs);
}
