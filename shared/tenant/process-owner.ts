// Who owns a lock or a temporary file, and whether that owner is provably gone: the one
// rule every cleanup of a killed process's leftovers relies on.
//
// An owner is a process: its pid, its start time (so a recycled pid is not mistaken for
// it) and an id of the pid namespace it runs in (host name, kernel boot and pid namespace:
// a container or a Lambda sandbox has its own). An owner in our namespace is gone when no
// process with that pid and start time exists. An owner elsewhere (another host sharing
// the file system) cannot be asked: it is gone only when the file it keeps fresh (a lock's
// heartbeat, a temporary file it writes) has not been touched for the stale interval.
// Anything not provably gone is left alone. That silence is measured on the file system's
// own clock (FileSystemClock), never this host's: a host whose clock ran minutes ahead would
// take every other host's live file for minutes old.

import { createHash } from 'node:crypto';
import { constants as fsConstants, promises as fs, readFileSync, readlinkSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';

/** How often a live owner touches the file that shows it is alive (a lock, a temporary archive). */
export const HEARTBEAT_MS = 10_000;
/** An owner on another host whose file has not been touched for this long is gone. */
export const STALE_AFTER_MS = 60_000;

export interface ProcessOwner {
  readonly pid: number;
  /** When the process started, in clock ticks since boot (`/proc/<pid>/stat`); 0 where unknown. */
  readonly started: number;
  /** The pid namespace the pid belongs to (`hostId()`). */
  readonly hostId: string;
}

let cachedHostId: string | undefined;

/** 12 hex digits naming this host, boot and pid namespace: where a pid means one process. */
export function hostId(): string {
  cachedHostId ??= createHash('sha256')
    .update([hostname(), readOr('/proc/sys/kernel/random/boot_id', ''), linkOr('/proc/self/ns/pid', '')].join('\0'))
    .digest('hex')
    .slice(0, 12);
  return cachedHostId;
}

let cachedSelf: ProcessOwner | undefined;

export function thisProcess(): ProcessOwner {
  cachedSelf ??= { pid: process.pid, started: processStat(process.pid)?.started ?? 0, hostId: hostId() };
  return cachedSelf;
}

/** `<pid>-<started>-<hostId>`: an owner in a file name. */
export function ownerTag(owner: ProcessOwner = thisProcess()): string {
  return `${owner.pid}-${owner.started}-${owner.hostId}`;
}

export const OWNER_TAG_PATTERN = '\\d+-\\d+-[0-9a-f]{12}';

export function parseOwnerTag(tag: string): ProcessOwner | undefined {
  const match = /^(\d+)-(\d+)-([0-9a-f]{12})$/.exec(tag);
  if (match === null) return undefined;
  return { pid: Number(match[1]), started: Number(match[2]), hostId: match[3]! };
}

/** Whether `owner` runs in this pid namespace, where its liveness can be checked. */
export function isLocal(owner: { readonly hostId: string }): boolean {
  return owner.hostId === hostId();
}

/**
 * A process in this pid namespace: alive unless no process has its pid, the one that has
 * it started at another time, or it is a zombie (killed, not yet reaped by its parent).
 */
export function isProcessAlive(pid: number, started = 0): boolean {
  return isSeenAlive(lookUpProcess(pid), started);
}

/** What this pid namespace shows of `pid`: undefined if no process has it, else its /proc stat (undefined without /proc). */
function lookUpProcess(pid: number): { readonly stat: ProcessStat | undefined } | undefined {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  return { stat: processStat(pid) };
}

/** isProcessAlive's judgement of what lookUpProcess saw. */
function isSeenAlive(seen: ReturnType<typeof lookUpProcess>, started: number): boolean {
  if (seen === undefined) return false;
  if (seen.stat === undefined) return true; // no /proc: the signal test is all there is
  if (seen.stat.dead) return false;
  return started === 0 || seen.stat.started === started;
}

/**
 * isProcessAlive for many owners in one pass (a sweep of many names): each pid is signalled
 * and its /proc stat read once, whatever the names say of its start time. A process that dies
 * meanwhile is judged alive until the next pass. 100,000 names of one dead pid (or of one live
 * pid, each with another start time) cost one signal and one read, not 100,000.
 */
export function isProcessAliveOnce(): (pid: number, started?: number) => boolean {
  const seen = new Map<number, ReturnType<typeof lookUpProcess>>();
  return (pid, started = 0) => {
    if (!seen.has(pid)) seen.set(pid, lookUpProcess(pid));
    return isSeenAlive(seen.get(pid), started);
  };
}

/**
 * Whether the owner of a leftover is provably gone: dead in this namespace, or (elsewhere)
 * silent for longer than `staleMs`: `touchedMs`, the leftover's mtime (stamped by the file
 * system's clock, touchWithFileSystemClock), older than that by that same clock, `clock`
 * (read only for an owner elsewhere). No clock to be had (no room for the file it takes): an
 * owner elsewhere is never gone.
 */
export async function isOwnerGone(owner: ProcessOwner, touchedMs: number, staleMs: number, clock: Pick<FileSystemClock, 'now'>): Promise<boolean> {
  if (isLocal(owner)) return !isProcessAlive(owner.pid, owner.started);
  const now = await clock.now();
  return now !== undefined && now - touchedMs > staleMs;
}

/**
 * The clock of the file system that holds a directory: the ctime it stamps on a file created
 * there (`probe()` names it: a name the directory's sweep knows for this process's, removed at
 * once), read once, on first use. Owners on other hosts are judged by the times their files
 * carry, which that file system stamps (touchWithFileSystemClock): compared with this host's
 * clock, a host whose clock runs ahead would find a live holder's heartbeat minutes old and
 * take its lock over, or remove its temporary archive. Where no file can be created (a
 * read-only directory, where nothing can be removed either) this host's clock is all there is.
 */
export class FileSystemClock {
  private reading: Promise<number | undefined> | undefined;

  constructor(private readonly probe: () => string) {}

  /** The file system's time when first asked (undefined: none to be had, readFileSystemClock); later calls give the same time, so the ages measured with it are never overstated. */
  now(): Promise<number | undefined> {
    this.reading ??= readFileSystemClock(this.probe());
    return this.reading;
  }
}

/**
 * The ctime the file system stamps on `file`, created (O_EXCL) and removed at once; undefined
 * when it cannot be created for want of room (ENOSPC, EDQUOT) or any failure but those that say
 * nothing can be removed there either (NOTHING_REMOVABLE_CODES): a sweeper whose clock ran ten
 * minutes ahead, on a destination with no inode left, took this host's clock for it and removed
 * a live backup's temporary archive, 4 s old, as another host's silent for 60 s (the backup then
 * failed); this host's clock only where nothing can be removed (read-only, not writable, absent).
 */
export async function readFileSystemClock(file: string): Promise<number | undefined> {
  let failure: unknown;
  const handle = await fs.open(file, 'wx', 0o600).catch((error: unknown) => {
    failure = error;
    return undefined;
  });
  if (handle === undefined) {
    const code = (failure as NodeJS.ErrnoException | undefined)?.code ?? '';
    if (!NOTHING_REMOVABLE_CODES.has(code)) return undefined;
    // EACCES where the directory's modes allow writing: a policy beyond them (AppArmor, SELinux)
    // that denies this creation may allow removals: no clock. Before, this host's clock, and one
    // 10 minutes ahead removed another host's temporary archive written a moment before
    // (test/clock-probe-denied.test.ts).
    if (code === 'EACCES' && (await fs.access(path.dirname(file), fsConstants.W_OK | fsConstants.X_OK).then(() => true, () => false))) return undefined;
    return Date.now();
  }
  try {
    return (await handle.stat()).ctimeMs;
  } finally {
    await handle.close().catch(() => undefined);
    await fs.rm(file, { force: true }).catch(() => undefined);
  }
}

/**
 * A file that cannot be created where nothing can be removed either (a read-only file system, a
 * directory this user may not write in, or none there): this host's clock then judges nothing.
 * EACCES counts only where access(2) agrees the directory is not writable (readFileSystemClock):
 * a policy beyond the modes may deny a creation and allow removals.
 * Any other failure (no room: ENOSPC, EDQUOT; EIO, EMFILE) gives no clock: the directory may
 * still take removals, and a sweeper whose clock ran ahead took this host's for it, with EIO
 * on its probe alone, and removed another host's live temporary archive (test/partials-no-room).
 * Not EPERM: sshfs says EPERM of every failure its server does not name (SSH_FX_FAILURE), its
 * disk's ENOSPC too, where removals still go through: a backup into an sshfs destination whose
 * server had no inode left, this host's clock 10 minutes ahead, removed another host's
 * temporary archive written a second before. (A local directory refuses a new file with EPERM
 * only when immutable, where nothing is removed with or without a clock.)
 */
const NOTHING_REMOVABLE_CODES = new Set(['EROFS', 'EACCES', 'ENOENT', 'ENOTDIR']);

/**
 * A heartbeat: sets the file's mtime to the file system's own clock, not this host's. Those
 * who judge the file (isOwnerGone, the lock's staleness) compare its times with the file
 * system's clock (FileSystemClock); a toucher whose clock ran minutes behind would stamp a
 * live file "minutes old", and another host would take it for abandoned. Setting the file's
 * own times again makes the file system stamp its ctime with its clock, which then becomes
 * the mtime too: this host's time is never written, not even between the two calls, where
 * another host may read the file. Only on a file system whose ctime never moves does this
 * host's time stay.
 */
export async function touchWithFileSystemClock(handle: FileHandle): Promise<void> {
  let before = await handle.stat();
  // The kernel stamps ctimes from a coarse clock: a touch in the same tick as the file's last
  // change (a write, an earlier touch) may leave its ctime where it was. Tried a tick later.
  for (let attempt = 0; attempt < CTIME_ATTEMPTS; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, COARSE_TICK_MS));
    await handle.utimes(before.atime, before.mtime);
    const after = await handle.stat();
    if (after.ctimeMs > before.ctimeMs) return handle.utimes(after.ctime, after.ctime);
    before = after;
  }
  const now = new Date();
  await handle.utimes(now, now);
}

/** Tries before a heartbeat gives up on the ctime moving (a file system that never moves it). */
const CTIME_ATTEMPTS = 3;
/** Longer than a coarse clock tick (4 ms at HZ=250, 10 ms at HZ=100). */
const COARSE_TICK_MS = 15;

/** What `/proc/<pid>/stat` says of a process. */
export interface ProcessStat {
  /** Its parent's pid (field 4). */
  readonly parent: number;
  /** When it started, in clock ticks since boot (field 22); 0 where unreadable. */
  readonly started: number;
  /** Exited, not yet reaped by its parent (a zombie; state field 3 is Z or X). */
  readonly dead: boolean;
  /** Stopped (SIGSTOP, a terminal's stop, a debugger: state field 3 is T or t). */
  readonly stopped: boolean;
}

/** The process `pid` as `/proc/<pid>/stat` shows it; undefined without procfs, or once it is gone. */
export function processStat(pid: number): ProcessStat | undefined {
  const stat = readOr(`/proc/${pid}/stat`, undefined);
  if (stat === undefined) return undefined;
  // The command name (field 2) is in parentheses and may hold spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const parent = Number(fields[1]);
  const started = Number(fields[19]);
  return {
    parent: Number.isSafeInteger(parent) ? parent : 0,
    started: Number.isSafeInteger(started) ? started : 0,
    dead: fields[0] === 'Z' || fields[0] === 'X',
    stopped: fields[0] === 'T' || fields[0] === 't',
  };
}

function readOr<T>(file: string, fallback: T): string | T {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return fallback;
  }
}

function linkOr(file: string, fallback: string): string {
  try {
    return readlinkSync(file);
  } catch {
    return fallback;
  }
}
