// Which version of a live file goes into a backup. The tenant is live while it is read
// (docs/consistency.md): every file is archived as one version of itself (re-read while it
// changes, see stable-read.ts, else warned about), and every SQLite database, recognised by
// its header, as one transactionally consistent state (sqlite-snapshot.ts; taken from a
// private copy when its writers may be on another host, sqlite-policy.ts); there is no
// snapshot across files. A large file modified recently is copied to a spool file first, so
// that its size is known before its content. Temporary copies live in a private directory
// (temp-area.ts) removed when the run ends. The bytes are written by archive/archive-writer.ts.

import { constants as fsConstants, promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';

import { sha256, type ArchiveWriter, type ReadAt } from '../archive/archive-writer.js';
import type { TreeEntry } from '../archive/tree-digest.js';
import { crashPoint } from '../crash-points.js';
import { errnoCode, FileSystemError, SqliteSnapshotError } from '../errors.js';
import { CAN_CHECK_OPENED_PATHS, isVanished, openAt, pathBehindLink, type FileAccess } from '../file-access.js';
import type { PackedListing } from '../packed-listing.js';
import { fsPath } from '../raw-name.js';
import { unsigned, type LinkIdentity } from './link-key.js';
import type { LinkTargets } from './link-targets.js';
import type { SqlitePolicy } from './sqlite-policy.js';
import { copyDatabasePrivately, detachSuperJournal } from './sqlite-private-copy.js';
import { checkDatabaseOpens, checkIntegrity, companionBaseName, companionNames, isSqliteHeader, snapshotDatabase, type SnapshotOutcome } from './sqlite-snapshot.js';
import { readHead, readWhole, readWholeAt, sameVersion, spoolFile, type ReadScratch } from './stable-read.js';
import type { TempArea } from './temp-area.js';
import { absPathOf, noteVanished, type DirectoryListing, type WalkItem, type WalkNotes } from './tenant-walk.js';
import { shownPath } from '../format.js';

/** Files up to this size are read whole (and re-read if they change); larger ones stream. */
export const WHOLE_READ_LIMIT = 8 * 1024 * 1024;
/** Bytes read first of a large file, to tell a database by its header. */
const STREAM_CHUNK = 1024 * 1024;
/** A large file modified this recently is probably being written: it is spooled so it can be re-read. */
const RECENTLY_MODIFIED_MS = 60_000;

export type FileItem = Extract<WalkItem, { kind: 'file' }>;

/** What the files of one backup share. */
export interface PackContext {
  readonly writer: ArchiveWriter;
  /** Whole reads land here: copied into the archive before the next read. */
  readonly scratch: ReadScratch;
  readonly notes: WalkNotes;
  /** How the tenant's file system is called (file-access.ts). */
  readonly access: FileAccess;
  readonly temp: TempArea;
  /** Databases archived as snapshots (relative paths): their companions are left out. */
  readonly snapshotted: Set<string>;
  /** Files with a companion beside them that have been packed (relative paths). */
  readonly settled: Set<string>;
  /** How live SQLite databases are read (sqlite-policy.ts). */
  readonly sqlite: SqlitePolicy;
  /**
   * Regular files with more than one name (st_nlink > 1) archived so far, by what tells each
   * from other files (link-key.ts): the name each was archived under, which a later name of the same version
   * of the file is archived as a hard link to. Only such files: most have one name.
   */
  readonly links: LinkTargets;
  /** The backup's: ends a wait for a database's lock, or for it to hold still, at once. */
  readonly signal?: AbortSignal;
}

/** The relative path of the database a companion file (`x-wal`, `x-shm`, `x-journal`) belongs to, if `x` is beside it. */
export function databaseOf(item: FileItem): string | undefined {
  const databases = databasesIn(item.listing);
  if (databases.size === 0) return undefined;
  const base = companionBaseName(item.name);
  // A database in the listing with a companion beside it: this file is one.
  if (base === undefined || !databases.has(base)) return undefined;
  return item.relPath.slice(0, item.relPath.length - item.name.length) + base;
}

export function hasCompanions(item: FileItem): boolean {
  return databasesIn(item.listing).has(item.name);
}

/** The names in a listing with a companion beside them: worked out once per listing, so a file in a directory without any costs a lookup. */
function databasesIn(listing: DirectoryListing): ReadonlySet<string> {
  return (listing.databases ??= databasesAmong(listing.names));
}

const NONE: ReadonlySet<string> = new Set();

function databasesAmong(names: PackedListing): ReadonlySet<string> {
  let found: Set<string> | undefined;
  for (const name of names.names()) {
    const base = companionBaseName(name);
    if (base !== undefined && names.indexOf(base) !== -1) (found ??= new Set()).add(base);
  }
  return found ?? NONE;
}

/** Archives a file, unless it is the companion of a database archived as a snapshot. */
export async function packCompanionOrFile(context: PackContext, item: FileItem, database: string | undefined): Promise<TreeEntry | undefined> {
  if (database !== undefined && context.snapshotted.has(database)) {
    context.notes.skipped.push({ path: item.relPath, reason: `SQLite companion of ${shownPath(database)}, which was archived as a consistent snapshot` });
    return undefined;
  }
  return packFile(context, item);
}

interface ArchivedFile {
  readonly size: number;
  readonly sha256: string;
}

/**
 * Archives one regular file without following a symlink swapped in after the walk; undefined
 * if it vanished. A file with more than one name that was archived under an earlier name
 * already is archived as a hard link to it, its content not read again.
 */
export async function packFile(context: PackContext, item: FileItem): Promise<TreeEntry | undefined> {
  const absPath = absPathOf(item);
  // On a local disk a file that may be small is read in one go by path; elsewhere, and for
  // what turns out to need more (a database, a file over the limit), through a handle below.
  if (context.access.kind === 'sync' && (item.stat === undefined || item.stat.size <= WHOLE_READ_LIMIT)) {
    const read = await readWholeAt(context.access, absPath, WHOLE_READ_LIMIT, { scratch: context.scratch });
    if (read === 'vanished') {
      noteVanished(context.notes, item.relPath);
      return undefined;
    }
    // A file of more than one name whose inode number is past 2^53 is told from others through a handle (exactIdentityOf).
    const byHandle = read !== 'large' && read.stat.nlink > 1 && !Number.isSafeInteger(read.stat.ino);
    if (read !== 'large' && !byHandle && read.stat.nlink > 1) {
      const link = await packLink(context, item, read.stat, read.stat);
      if (link !== undefined) return link;
    }
    // Databases, and files over the limit, take the general path below.
    if (read !== 'large' && !byHandle && !isSqliteHeader(read.content)) {
      const mode = read.stat.mode & 0o7777;
      if (!read.stable) context.notes.warnings.push({ path: item.relPath, reason: CHANGED_WARNING });
      const written = context.writer.file({ relPath: item.relPath, mode, mtimeMs: read.stat.mtimeMs }, read.content);
      if (written !== undefined) await written;
      if (read.stat.nlink > 1) context.links.set(read.stat, item.relPath);
      return { path: item.relPath, type: 'file', size: read.content.length, sha256: sha256(read.content) };
    }
  }
  // A database renamed over (or away) while it was read is read again as the file its path now names.
  for (let reads = 1; ; reads++) {
    let handle: fs.FileHandle;
    try {
      handle = await openAt(absPath, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
    } catch (error) {
      if (isVanished(error) || (error as NodeJS.ErrnoException).code === 'ELOOP') {
        noteVanished(context.notes, item.relPath);
        return undefined;
      }
      throw error;
    }
    let archived: ArchivedFile | typeof REPLACED | undefined;
    try {
      const stat = await handle.stat();
      const identity = !stat.isFile() || stat.nlink === 1 ? undefined : Number.isSafeInteger(stat.ino) ? stat : await exactIdentityOf(handle, stat);
      if (identity !== undefined) {
        const link = await packLink(context, item, stat, identity);
        if (link !== undefined) return link;
      }
      if (stat.isFile()) archived = await packContent(context, item, handle, stat, { lastRead: reads >= DATABASE_READS });
      if (archived !== undefined && archived !== REPLACED && identity !== undefined) context.links.set(identity, item.relPath);
    } finally {
      await handle.close();
    }
    if (archived === REPLACED) continue;
    if (archived === undefined) {
      noteVanished(context.notes, item.relPath);
      return undefined;
    }
    return { path: item.relPath, type: 'file', size: archived.size, sha256: archived.sha256 };
  }
}

/** Reads of a database that keeps being replaced by rename while it is read, before its backup fails (or it is archived raw, on request). */
const DATABASE_READS = 4;

/** How a file that may be a database is read; undefined: as plain bytes. */
interface DatabaseRead {
  /** No read comes after this one: a database replaced by rename while read fails the backup (raw on request) instead of being read again. */
  readonly lastRead: boolean;
}

/** What reading a database gives when its path names another file by the end: nothing was archived, it is to be read again. */
const REPLACED = Symbol('replaced by rename');

/**
 * What tells the open file from others (link-key.ts) when its inode number is past 2^53, which
 * the number-valued stat rounds: the number read again in full by a bigint stat of the same
 * handle (not by path: the name may name another file by then). Rare: other files pay nothing.
 */
async function exactIdentityOf(handle: fs.FileHandle, stat: Stats): Promise<LinkIdentity> {
  const exact = await handle.stat({ bigint: true });
  return { ino: stat.ino, exactIno: unsigned(exact.ino), size: stat.size, mtimeMs: stat.mtimeMs, ctimeMs: stat.ctimeMs };
}

/** A hard link to the name the file (by `identity`) was archived under earlier in this archive; undefined if it was not. */
async function packLink(context: PackContext, item: FileItem, stat: Stats, identity: LinkIdentity): Promise<TreeEntry | undefined> {
  const target = context.links.get(identity);
  if (target === undefined) return undefined;
  const written = context.writer.hardlink({ relPath: item.relPath, target, mode: stat.mode & 0o7777, mtimeMs: stat.mtimeMs });
  if (written !== undefined) await written;
  return { path: item.relPath, type: 'hardlink', target };
}

/**
 * Archives an open regular file. Small files are read whole (and re-read while they change);
 * a large one that was modified recently is copied to a spool file first (re-copied while
 * it changes) because its size must be known before its content; any other large file is
 * streamed straight from the handle, and only warned about if it changes anyway. A file
 * starting with the SQLite header takes the database path when `sniff` is set.
 */
async function packContent(context: PackContext, item: FileItem, handle: fs.FileHandle, stat: Stats, read: DatabaseRead | undefined): Promise<ArchivedFile | typeof REPLACED> {
  const { relPath } = item;
  const mode = stat.mode & 0o7777;
  const warn = (reason: string) => context.notes.warnings.push({ path: item.relPath, reason });
  if (stat.size <= WHOLE_READ_LIMIT) {
    // Into the scratch the read by path uses (files are packed one at a time): a buffer made
    // per file here (each database, every file on a network file system) was memory touched
    // for the first time, a page fault per 4 KiB (docs/benchmarks.md, stop 39).
    const first = await readHead(handle, stat.size, context.scratch);
    if (read !== undefined && isSqliteHeader(first)) return packDatabase(context, item, handle, stat, read);
    const version = await readWhole(handle, stat, WHOLE_READ_LIMIT, first, { scratch: context.scratch });
    if (version !== undefined) {
      if (!version.stable) warn(CHANGED_WARNING);
      const written = context.writer.file({ relPath, mode, mtimeMs: version.stat.mtimeMs }, version.content);
      if (written !== undefined) await written;
      return { size: version.content.length, sha256: sha256(version.content) };
    }
    stat = await handle.stat(); // grew past the limit while read: a large file now
  }
  let head: Buffer | undefined = await readHead(handle, Math.min(STREAM_CHUNK, stat.size), context.scratch);
  if (read !== undefined && isSqliteHeader(head)) return packDatabase(context, item, handle, stat, read);
  if (Date.now() - stat.mtimeMs < RECENTLY_MODIFIED_MS) {
    const spooled = await packSpooled(context, relPath, mode, handle, stat, warn);
    if (spooled !== undefined) return spooled;
    stat = await handle.stat(); // no room to spool: stream it after all
    head = undefined;
  }
  const streamed = await context.writer.streamFile({ relPath, mode, mtimeMs: stat.mtimeMs }, stat.size, readerOf(context, handle), head);
  const after = await handle.stat();
  if (streamed.shortBy > 0) warn('file shrank while read; archived padded with zeros');
  else if (!sameVersion(stat, after)) warn(`${CHANGED_WARNING} (streamed: too large to hold, and not recently modified)`);
  return { size: stat.size, sha256: streamed.sha256 };
}

const CHANGED_WARNING = 'file changed as we read it; archived as last read';

/** A stable copy through a spool file; undefined if the spool cannot be written (no room in the temp dir). */
async function packSpooled(
  context: PackContext,
  relPath: string,
  mode: number,
  handle: fs.FileHandle,
  stat: Stats,
  warn: (reason: string) => void,
): Promise<ArchivedFile | undefined> {
  let spool: string;
  try {
    spool = await context.temp.file('spool');
  } catch (error) {
    // The scratch directory itself could not be made (no inode left there, or no room).
    if (NO_ROOM.has(errnoCode(error instanceof FileSystemError ? error.cause : error) ?? '')) return undefined;
    throw error;
  }
  try {
    let copy;
    try {
      copy = await spoolFile(handle, stat, spool, { signal: context.writer.stopped });
    } catch (error) {
      if (NO_ROOM.has(errnoCode(error) ?? '')) return undefined;
      throw error;
    }
    if (!copy.stable) warn(CHANGED_WARNING);
    return await archiveTempFile(context, relPath, mode, spool, copy.stat.mtimeMs);
  } finally {
    await context.temp.remove(spool);
  }
}

const NO_ROOM = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);

/**
 * A file that starts with the SQLite header. Writers on this host only (sqlite-policy.ts):
 * an idle database (nothing beside it, nothing appearing while it is copied) is already its
 * own consistent state: it is copied like any file, without opening the live file in SQLite
 * (which would create `-wal`/`-shm` beside it), then the copy is checked to open; a database
 * in use (a `-wal`, `-shm` or `-journal` beside it) is snapshotted in place, unless opening
 * it would create a file beside it (`holdCompanions`): then, as when writers may be
 * elsewhere, it is snapshotted from a stable private copy. Writers elsewhere whose locks
 * reach this host (`locksAcrossHosts`: EFS's NFSv4), a database in rollback-journal mode is
 * snapshotted in place as well (a writer cannot commit under the snapshot's read lock); one
 * in WAL mode from a private copy. Either way a
 * database of which no consistent state can be had fails the backup (or, with the raw
 * fallback, is archived raw with its companions and a warning), and one SQLite cannot read
 * is archived raw with a warning.
 */
async function packDatabase(context: PackContext, item: FileItem, handle: fs.FileHandle, stat: Stats, read: DatabaseRead): Promise<ArchivedFile | typeof REPLACED> {
  const { relPath } = item;
  const absPath = absPathOf(item);
  const mode = stat.mode & 0o7777;
  const warn = (reason: string) => context.notes.warnings.push({ path: item.relPath, reason });

  /** Why the idle database could not be copied for want of room: a snapshot would not fit either. */
  let noRoom: string | undefined;
  if (context.sqlite.writers === 'same-host' && !hasCompanions(item)) {
    const copyPath = await context.temp.file('database');
    try {
      const copy = await spoolFile(handle, stat, copyPath, { signal: context.writer.stopped }).catch((error: unknown) => {
        const code = errnoCode(error) ?? '';
        if (!NO_ROOM.has(code)) throw error;
        noRoom = `no room for a copy in ${shownPath(pathBehindLink(path.dirname(copyPath)))} (${code})`;
        return undefined;
      });
      if (copy?.stable && !(await anyExists(companionNames(absPath)))) {
        const problem = checkDatabaseOpens(copyPath);
        if (problem !== undefined) warn(`SQLite database does not open (${problem}); archived as is`);
        else await warnOfDamage(copyPath, warn, context.writer.stopped);
        return await archiveTempFile(context, relPath, mode, copyPath, copy.stat.mtimeMs);
      }
    } finally {
      await context.temp.remove(copyPath);
    }
    // It changed, or SQLite files appeared beside it (a connection is using it now), or there
    // was no room to copy it.
  }

  const snapshotPath = await context.temp.file('snapshot');
  let held: HeldCompanions | undefined;
  try {
    const before = await handle.stat();
    // Without room the live database is not opened either (SQLite would create -wal and -shm beside an idle one).
    const same = noRoom === undefined && (await isSameFile(absPath, before));
    const walInPlace = context.sqlite.writers === 'same-host';
    if (same && (walInPlace || context.sqlite.locksAcrossHosts)) held = await holdCompanions(handle, absPath, walInPlace);
    let outcome: SnapshotOutcome | { readonly ok: true } | SnapshotFailure =
      noRoom !== undefined
        ? ({ ok: false, kind: 'busy', reason: noRoom } as const)
        : same
          ? held !== undefined
            ? await snapshotDatabase(absPath, snapshotPath, {
                timeoutMs: context.sqlite.busyTimeoutMs,
                expected: before,
                companions: held.identities,
                signal: context.signal,
                ...(!walInPlace && { heldStill: handle }),
              })
            : await snapshotPrivateCopy(context, handle, item, snapshotPath)
          : ({ ok: false, kind: 'busy', reason: 'the file was replaced by rename while it was read' } as const);
    if (outcome.ok) crashPoint('backup:snapshot-taken');
    // A hot journal a crashed writer left (or a WAL index to rebuild): SQLite would roll it back
    // on the next read-write open; a private copy of the database and its journal is, and then
    // holds the last committed state. Never the live file: the backup does not write to it.
    // Cross-host, SQLite's read lock keeps writers out of the file only outside WAL mode: a
    // database switched to WAL between holdCompanions' look and SQLite's open was read through
    // a `-shm` another host's writers may not keep (the snapshot keeps the source's header).
    const readInWalMode = outcome.ok && !walInPlace && held !== undefined && (await isWalHeader(snapshotPath));
    // Cross-host, a lock the read lock never got past (a gateway connection in
    // `locking_mode=EXCLUSIVE` holds its write lock between commits, idle), or a file written
    // under it (a writer whose locks do not reach this host): a private copy, as the functions
    // took before they locked, is judged by whether the file held still while copied.
    const lockedOut = !outcome.ok && outcome.byWriter === true && !walInPlace && held !== undefined;
    // Checked as SQLite opened it (procfs): the file found, its companions beside it. A snapshot
    // of it is one committed state of it, whatever the path names once it is done: a file
    // replaced by rename (or renamed away) since is archived as it was, as any file is.
    const openedAsFound = outcome.ok && !readInWalMode && held !== undefined && CAN_CHECK_OPENED_PATHS;
    // A snapshot from a private copy had its integrity_check there.
    let checked = held === undefined;
    if ((!outcome.ok && outcome.kind === 'recovery') || readInWalMode || lockedOut) {
      outcome = await snapshotPrivateCopy(context, handle, item, snapshotPath);
      checked = true;
    }
    if (outcome.ok && (openedAsFound || (await isSameFile(absPath, before)))) {
      if (!checked) await warnOfDamage(snapshotPath, warn, context.writer.stopped);
      context.snapshotted.add(item.relPath);
      return await archiveTempFile(context, relPath, mode, snapshotPath, before.mtimeMs);
    }
    // Its path names another file now (a database written whole and renamed over it, as a
    // gateway compacts one): nothing was archived, so it is read again as that file, never
    // archived raw beside the -wal the new file's writers write.
    if (!read.lastRead && noRoom === undefined && !(await isSameFile(absPath, before))) return REPLACED;
    const failure = outcome.ok ? ({ kind: 'busy', reason: 'the file was replaced while it was copied' } as const) : outcome;
    if (failure.kind === 'busy' && !context.sqlite.rawFallback) {
      // A full base dir (an encrypted or --pipe backup copies there): "retry" alone fails the same way.
      const whereToFree = context.temp.inBaseDir && /^no room\b/.test(failure.reason) ? 'an encrypted or --pipe backup copies into the base dir, never $TMPDIR: free space there and retry' : 'retry';
      throw new SqliteSnapshotError(
        `no consistent copy of the SQLite database ${shownPath(relPath)}: ${failure.reason}; nothing was stored ` +
          `(${whereToFree}, or pass --sqlite-raw-fallback to archive it raw with a warning)`,
      );
    }
    warn(
      failure.kind === 'busy'
        ? `no consistent SQLite snapshot (${failure.reason}); archived raw with its -wal/-shm/-journal (--sqlite-raw-fallback), which may not be consistent`
        : `SQLite snapshot failed (${failure.reason}); archived raw with its -wal/-shm/-journal, which may not be consistent`,
    );
  } finally {
    // Only now that SQLite has closed the database: closing another descriptor of the -shm
    // while SQLite held its locks would release them (POSIX locks belong to the process).
    await held?.close();
    await context.temp.remove(snapshotPath);
  }
  return packContent(context, item, handle, await handle.stat(), undefined);
}

/**
 * A warning, when SQLite's `quick_check` of our copy of a database (a snapshot, or an idle
 * database's copy) finds it damaged: that is the tenant's database as it is, archived all
 * the same (no other state of it is to be had, and failing the backup would keep the rest of
 * the tenant from being saved), but never silently. ~0.5 s for a 400 MB database, on the
 * main thread: not begun once the backup was stopped (a Ctrl-C that came during the snapshot's
 * one step is only seen once the event loop turns, and the snapshot went on into this check).
 */
async function warnOfDamage(copy: string, warn: (reason: string) => void, stopped: AbortSignal): Promise<void> {
  await throwIfStoppedMeanwhile(stopped);
  crashPoint('backup:quick-check');
  const problem = checkIntegrity(copy, 'quick_check');
  if (problem === undefined) return;
  warn(
    problem.kind === 'busy'
      ? `SQLite database not checked (${problem.reason}); archived as it is`
      : `SQLite database is damaged (${problem.reason}); archived as it is: restored, it is as damaged as the tenant's own`,
  );
}

/**
 * Throws if the backup was stopped, a signal that came during a step on the main thread (a
 * snapshot's one step, a private copy's check) included: before a check SQLite runs on the
 * main thread, which nothing stops once begun. Two turns: the event loop polls (and so takes
 * in a signal that came) between them, whatever phase this runs in.
 */
async function throwIfStoppedMeanwhile(stopped: AbortSignal): Promise<void> {
  await nextTurn();
  await nextTurn();
  stopped.throwIfAborted();
}

/**
 * The snapshot of a database whose writers may be on another host: taken from a stable
 * private copy (sqlite-private-copy.ts), which SQLite recovers when it opens it, and checked
 * with `PRAGMA integrity_check`; an idle database (copied without a WAL or journal) is its
 * own consistent state, so its copy itself is checked and becomes the snapshot, byte for
 * byte as on a local disk. A copy that never holds still is `busy`; one SQLite cannot read
 * is copied once more before the database is called `unusable`, in case the copy, not the
 * database, was at fault.
 */
async function snapshotPrivateCopy(context: PackContext, handle: fs.FileHandle, item: FileItem, snapshotPath: string): Promise<{ readonly ok: true } | SnapshotFailure> {
  const absPath = absPathOf(item);
  const tenantRoot = absPath.slice(0, absPath.length - item.relPath.length - 1);
  let outcome: SnapshotOutcome | undefined;
  for (let round = 1; round <= UNUSABLE_COPY_ROUNDS; round++) {
    await context.temp.remove(snapshotPath);
    // Stopped by the backup's signal or by the archive writer's own abort, whichever comes first.
    const signal = context.signal === undefined ? context.writer.stopped : AbortSignal.any([context.signal, context.writer.stopped]);
    let copy;
    try {
      copy = await copyDatabasePrivately(handle, absPath, context.temp, { budgetMs: context.sqlite.busyTimeoutMs, signal });
    } catch (error) {
      // No room in the scratch space (on Lambda, the function's ephemeral /tmp): as without a private copy.
      const code = errnoCode(error) ?? '';
      if (!NO_ROOM.has(code)) throw error;
      return { ok: false, kind: 'busy', reason: `no room for a copy in ${shownPath(pathBehindLink(path.dirname(snapshotPath)))} (${code})` };
    }
    if (!copy.stable) return { ok: false, kind: 'busy', reason: copy.reason };
    try {
      if (copy.companions.length === 0) {
        await throwIfStoppedMeanwhile(signal);
        const problem = checkIntegrity(copy.path);
        if (problem === undefined) {
          await fs.rename(copy.path, snapshotPath);
          return { ok: true };
        }
        outcome = { ok: false, ...problem };
        if (outcome.kind === 'busy') return outcome;
        continue;
      }
      // Never a rollback that deletes a file the tenant names (its super-journal): sqlite-private-copy.ts.
      if (copy.companions.includes('-journal')) await detachSuperJournal(copy.path, tenantRoot);
      outcome = await snapshotDatabase(copy.path, snapshotPath, { privateCopy: true, signal: context.signal });
      if (outcome.ok) {
        await throwIfStoppedMeanwhile(signal);
        const problem = checkIntegrity(snapshotPath);
        if (problem === undefined) return outcome;
        outcome = { ok: false, ...problem };
      }
      if (outcome.kind === 'busy') return outcome;
    } finally {
      await context.temp.remove(copy.path);
    }
  }
  return outcome as SnapshotFailure;
}

type SnapshotFailure = Extract<SnapshotOutcome, { ok: false }>;

/** Private copies made of a database SQLite cannot read before it is archived raw. */
const UNUSABLE_COPY_ROUNDS = 2;

/** A WAL database's `-wal` and `-shm` as found, held open until its snapshot is done. */
interface HeldCompanions {
  /** By suffix: the identities SQLite's files must still have once it holds the read lock. */
  readonly identities: ReadonlyMap<string, { readonly dev: number; readonly ino: number }>;
  close(): Promise<void>;
}

/**
 * Whether SQLite opens the live database read-only without creating a file beside it, and if
 * so the companions it will use, held open. A database in rollback-journal mode: yes, none
 * held. One in WAL mode whose writers may be on another host (`walInPlace` false): never (its
 * `-shm` is shared memory of one host), so undefined. One in WAL mode (byte 19 of its header, the read version, is 2) needs its `-wal` and
 * its `-shm`, and a read-only connection creates whichever is missing and, not being allowed
 * to checkpoint, leaves them in the tenant when it closes: a WAL database that changed while
 * it was copied idle (its last writer closed meanwhile), or a `-wal` a crash left without its
 * `-shm` (undefined: snapshotted from a private copy). Its last writer can still close it, and
 * remove both, between this look and SQLite's open; held open, the files found keep their
 * identities (no new file can take their inode numbers), so the snapshot tells them from new
 * ones SQLite created, and then closes the database as its last connection would.
 */
async function holdCompanions(handle: fs.FileHandle, absPath: string, walInPlace: boolean): Promise<HeldCompanions | undefined> {
  // Whatever mode the header says now (the tenant may rewrite it before SQLite reads it and
  // opens the -shm), a -wal or -shm through which SQLite would write to another file (below).
  // A -journal that is a FIFO: SQLite's look for a hot journal opens it to read, and waits for
  // a writer that never comes (signals too: the open blocks the main thread).
  if (await anyLinkedElsewhere([`${absPath}-wal`, `${absPath}-shm`, `${absPath}-journal`])) return undefined;
  // Nor a database of more than one name: closed as its last connection (sqlite-snapshot.ts
  // `closeAsLastConnection`), it would take the checkpoint of a -wal the tenant wrote into
  // the other name's file (another tenant's database).
  if ((await handle.stat()).nlink > 1) return undefined;
  const header = Buffer.alloc(20);
  const { bytesRead } = await handle.read(header, 0, header.length, 0);
  const walMode = bytesRead === header.length && (header[18] === WAL_READ_VERSION || header[19] === WAL_READ_VERSION);
  if (walMode && !walInPlace) return undefined;
  if (!walMode) return { identities: new Map(), close: async () => {} };
  const handles: fs.FileHandle[] = [];
  const identities = new Map<string, { dev: number; ino: number }>();
  const close = async () => {
    await Promise.all(handles.map((opened) => opened.close()));
  };
  try {
    for (const suffix of ['-wal', '-shm']) {
      // Not followed, and never waiting on a FIFO: only a file held, only its identity read.
      const opened = await fs.open(fsPath(`${absPath}${suffix}`), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK | fsConstants.O_NOCTTY).catch((error: unknown) => {
        if (isVanished(error)) return undefined;
        throw error;
      });
      if (opened === undefined) {
        await close();
        return undefined;
      }
      handles.push(opened);
      const stat = await opened.stat();
      // SQLite writes the -shm of even a read-only connection (the first one truncates it and
      // rebuilds the WAL index in it), through any hard link: a tenant's -shm linked to another
      // tenant's database, or any file of the tenant's user, would be overwritten by the
      // backup. So a -wal or -shm that is not a regular file of one name is never opened in
      // SQLite: the database is snapshotted from a private copy, which never opens them.
      if (!stat.isFile() || stat.nlink !== 1) {
        await close();
        return undefined;
      }
      identities.set(suffix, { dev: stat.dev, ino: stat.ino });
    }
  } catch {
    // Not a file that can be held (a symlink, no permission): there, as before; not checked.
    await close();
    const found = await Promise.all([`${absPath}-wal`, `${absPath}-shm`].map((companion) => anyExists([companion])));
    return found.every(Boolean) ? { identities: new Map(), close: async () => {} } : undefined;
  }
  return { identities, close };
}

/** The read and write versions (database header bytes 19 and 18) of a database in WAL mode. */
const WAL_READ_VERSION = 2;

/** Whether the database file at `file` says it is in WAL mode (its header's byte 18 or 19). */
async function isWalHeader(file: string): Promise<boolean> {
  const handle = await fs.open(file, 'r');
  try {
    const header = Buffer.alloc(20);
    const { bytesRead } = await handle.read(header, 0, header.length, 0);
    return bytesRead === header.length && (header[18] === WAL_READ_VERSION || header[19] === WAL_READ_VERSION);
  } finally {
    await handle.close();
  }
}

/** Whether `absPath` (not followed if a symlink) is still the file `stat` describes. */
async function isSameFile(absPath: string, stat: Stats): Promise<boolean> {
  const now = await fs.lstat(fsPath(absPath)).catch(() => undefined);
  return now !== undefined && now.isFile() && now.ino === stat.ino && now.dev === stat.dev;
}

/** Whether any of `paths` (not followed) is a file of more than one name, or a FIFO, socket or device. */
async function anyLinkedElsewhere(paths: readonly string[]): Promise<boolean> {
  const stats = await Promise.all(paths.map((p) => fs.lstat(fsPath(p)).catch(() => undefined)));
  return stats.some((stat) => stat !== undefined && (stat.isFile() ? stat.nlink > 1 : !(stat.isSymbolicLink() || stat.isDirectory())));
}

async function anyExists(paths: readonly string[]): Promise<boolean> {
  const found = await Promise.all(paths.map((p) => fs.lstat(fsPath(p)).then(() => true, (error: unknown) => !isVanished(error))));
  return found.includes(true);
}

/** Archives a private temporary file (a snapshot or spool copy) under the tenant file's name, mode and mtime. */
async function archiveTempFile(context: PackContext, relPath: string, mode: number, file: string, mtimeMs: number): Promise<ArchivedFile> {
  crashPoint('backup:temp-copy-written');
  const handle = await fs.open(file, 'r');
  try {
    const { size } = await handle.stat();
    const streamed = await context.writer.streamFile({ relPath, mode, mtimeMs }, size, readerOf(context, handle));
    return { size, sha256: streamed.sha256 };
  } finally {
    await handle.close();
  }
}

/** How the archive writer reads an open file: through the tenant's file access. */
function readerOf(context: PackContext, handle: fs.FileHandle): ReadAt {
  const file = context.access.fileOf(handle);
  return (target, offset, length, position) => file.read(target, offset, length, position);
}
