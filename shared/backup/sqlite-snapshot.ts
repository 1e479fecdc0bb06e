// Consistent copies of live SQLite databases. Agents write to their memory databases while
// the gateway serves them, usually in WAL mode: the committed state is the main file *plus*
// its `-wal`, and a byte copy of either taken mid-write can lose commits and still open
// clean. So a database in use is copied through SQLite itself (sqlite-driver.ts picks which).
//
// Why the online backup API, in one step, inside one read transaction:
// - The snapshot opens the database, starts a read transaction (BEGIN, then a read of the
//   schema: that takes the read lock, within the busy timeout, and fails on a file that is
//   not a usable database), and copies every page with one backup step on that connection.
//   A WAL reader sees one snapshot, so the copy holds exactly the transactions committed
//   before it began, while the gateway keeps writing to the WAL. Copied in many small steps
//   outside a transaction, a write by another process would restart the backup, which would
//   never finish under constant writes.
// - The copy goes page by page to a temporary file through SQLite's pager, so memory stays
//   bounded by the page cache (tenant databases can be hundreds of MiB). It is page-identical
//   to the source, indexes and free pages included; `VACUUM INTO` would also be consistent
//   but rebuilds every index (slower) and changes the layout.
//
// This file copies a database it is handed; which one it is handed is live-files.ts's
// choice: the live file when every writer is on this host (SQLite's `-shm` index is shared
// memory, valid only between processes of one host) and opening it creates nothing beside it
// (a WAL database's `-wal` and `-shm` are there), else a private copy made by
// sqlite-private-copy.ts. The live file is opened read-only with a busy timeout: the backup
// never writes to it, never checkpoints and never changes its journal mode (except closing it
// as its last connection would when the snapshot's open created its -wal and -shm, below:
// `closeAsLastConnection`). The snapshot
// keeps the source's header, so a WAL database restores as a WAL database without a `-wal`
// file: SQLite opens it as a complete, standalone database.
//
// SQLite opens a database by its path, its -wal and -shm by that path plus a suffix, and
// resolves every symlink in it itself (so a /proc/self/fd/N/name path does not pin the
// directory: SQLite reads the link and opens the path it names). A tenant racing a root
// backup can swap the database or a directory above it for a symlink to another tenant's
// database between the caller's check and SQLite's open. So a live database is checked after
// SQLite has opened it and taken its read lock (`expected`): the descriptors it opened must be
// the file checked and companions beside it, at their real paths (procfs).

import { closeSync, constants as fsConstants, fstatSync, lstatSync, openSync, readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { CAN_CHECK_OPENED_PATHS, FD_LINKS, openDescriptors, pathBehindLink } from '../file-access.js';
import { shownPath } from '../format.js';
import { fsPath, hasRawBytes } from '../raw-name.js';
import { throwIfAborted } from '../storage/streams.js';

import { sqliteDriver, SqliteError, type SqliteConnection } from './sqlite-driver.js';

/** Every SQLite database file starts with these 16 bytes (the format's magic string). */
export const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

/** Files SQLite keeps beside a database `<db>`: `<db>-wal`, `<db>-shm`, `<db>-journal`. */
export const SQLITE_COMPANION_SUFFIXES = ['-wal', '-shm', '-journal'] as const;

/** How long the snapshot waits for a lock held by a writer before giving up. */
export const DEFAULT_SNAPSHOT_TIMEOUT_MS = 10_000;

/** Whether these bytes (the first read of a file) begin with the SQLite header. */
export function isSqliteHeader(head: Uint8Array): boolean {
  if (head.length < SQLITE_HEADER.length) return false;
  // Compared here, byte by byte: most files differ at the first, and this runs for every file.
  for (let i = 0; i < SQLITE_HEADER.length; i++) if (head[i] !== SQLITE_HEADER[i]) return false;
  return true;
}

/** `x.sqlite` for `x.sqlite-wal`, `x.sqlite-shm` or `x.sqlite-journal`; undefined for any other name. */
export function companionBaseName(name: string): string | undefined {
  for (const suffix of SQLITE_COMPANION_SUFFIXES) {
    if (name.length > suffix.length && name.endsWith(suffix)) return name.slice(0, -suffix.length);
  }
  return undefined;
}

/** The companion file names of database `name`. */
export function companionNames(name: string): string[] {
  return SQLITE_COMPANION_SUFFIXES.map((suffix) => `${name}${suffix}`);
}

/**
 * How a snapshot ended. `busy`: no consistent copy could be had now (the database stayed
 * locked past the timeout, or the snapshot found no room in the temporary directory);
 * `unusable`: SQLite cannot read it (not a database, corrupt); `recovery`: its committed state
 * needs a recovery that a read-only connection may not make (the hot journal of a writer that
 * crashed mid-transaction, to be rolled back): a private copy can be recovered.
 */
export type SnapshotOutcome =
  | { readonly ok: true; readonly pages: number; readonly durationMs: number }
  | {
      readonly ok: false;
      readonly kind: 'busy' | 'unusable' | 'recovery';
      readonly reason: string;
      /** Busy for a writer: its lock held past the timeout, or a write under the read lock (`heldStill`); not for want of room. */
      readonly byWriter?: true;
    };

export interface SnapshotOptions {
  /** Busy timeout: the longest the snapshot waits for a writer's lock. @default 10 s */
  readonly timeoutMs?: number;
  /** Open the source read-write: only for a private copy, which SQLite may have to recover first. */
  readonly privateCopy?: boolean;
  /**
   * The live file `source` (a real path) must be: SQLite's descriptors are checked against it
   * once it has the read lock (see the top of the file), and the snapshot is `busy` if SQLite
   * opened another file.
   */
  readonly expected?: { readonly dev: number; readonly ino: number };
  /**
   * The live WAL database's `-wal` and `-shm` (by suffix) as the caller found them, held open
   * so that no new file can take their identity. If, once SQLite has the read lock, either is
   * not the file found, its last writer closed it (and removed them) between the caller's look
   * and SQLite's open, and this read-only connection created them: after the snapshot the
   * database is closed once more as its last connection would (`closeAsLastConnection`).
   */
  readonly companions?: ReadonlyMap<string, { readonly dev: number; readonly ino: number }>;
  /** The backup's: once aborted, the wait for the read lock ends (AbortedError is thrown). */
  readonly signal?: AbortSignal | undefined;
  /**
   * A descriptor of the live file `source`, whose writers may be on other hosts: it must hold
   * still (size, mtime, header) from the read lock's start to the copy's end, else the snapshot
   * is `busy`. No writer whose lock reaches this host writes the file then; one whose lock does
   * not (SQLite's `unix-none` VFS or `nolock=1`, NFS mounted `nolock`) may, and the copy would
   * hold half its transaction. Never a new descriptor: closing one would drop the read lock
   * (POSIX locks belong to the process, not the descriptor).
   */
  readonly heldStill?: FileHandle;
}

/**
 * Copies the database at `source` into the new file `destination` with the online backup
 * API, in one step inside one read transaction. Never throws for a database that cannot be
 * copied: says why. Throws ModuleUnavailableError when this process has no SQLite. The
 * caller owns `destination` (and the side files SQLite may leave beside it) and deletes it.
 */
export async function snapshotDatabase(source: string, destination: string, options: SnapshotOptions = {}): Promise<SnapshotOutcome> {
  // A descriptor of another thread named like the database (the same file name in another
  // tenant, read ahead by `backup --all`'s other jobs) fails the check as well: tried again,
  // within the one busy timeout (each attempt may wait for the lock again).
  const started = Date.now();
  const deadline = started + (options.timeoutMs ?? DEFAULT_SNAPSHOT_TIMEOUT_MS);
  for (let attempt = 1; ; attempt++) {
    const outcome = await snapshotOnce(source, destination, options, started, deadline);
    if (outcome !== OPENED_ELSEWHERE || attempt === OPEN_CHECK_ATTEMPTS) return outcome;
  }
}

/** Attempts at a snapshot whose open is checked (`expected`) before it is called replaced. */
const OPEN_CHECK_ATTEMPTS = 3;
const OPENED_ELSEWHERE: SnapshotOutcome = { ok: false, kind: 'busy', reason: 'the file was replaced while SQLite opened it' };
const WRITTEN_UNDER_LOCK = {
  ok: false,
  kind: 'busy',
  reason: "it was written while copied under SQLite's read lock (a writer whose locks do not reach this host)",
  byWriter: true,
} as const satisfies SnapshotOutcome;

/** What a write to the live file would change: its size, mtime and header (the change counter at offset 24 moves with every commit). */
interface FileLook {
  readonly size: number;
  readonly mtimeNs: bigint;
  readonly header: Buffer;
}

function lookAt(handle: FileHandle): FileLook {
  const stat = fstatSync(handle.fd, { bigint: true });
  const header = Buffer.alloc(DATABASE_HEADER_BYTES);
  const bytesRead = readSync(handle.fd, header, 0, header.length, 0);
  return { size: Number(stat.size), mtimeNs: stat.mtimeNs, header: header.subarray(0, bytesRead) };
}

function sameLook(a: FileLook, b: FileLook): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.header.equals(b.header);
}

const DATABASE_HEADER_BYTES = 100;

/**
 * How long a failed check of SQLite's descriptors is looked at again, holding the read lock,
 * before the attempt is given up: another job's descriptor of a database of the same name
 * (`backup --all`) is closed within moments, SQLite's own are held until it closes.
 */
const OPEN_CHECK_RECHECK_MS = 250;

async function snapshotOnce(source: string, destination: string, options: SnapshotOptions, started: number, deadline: number): Promise<SnapshotOutcome> {
  const driver = sqliteDriver();
  let db;
  let createdCompanions = false;
  /** Whether the backup API is writing `destination`: what fails then may be the snapshot's own file, in the temporary directory. */
  let writing = false;
  const opening = sqlitePathOf(source);
  const openBefore = options.expected !== undefined && CAN_CHECK_OPENED_PATHS ? openDescriptors(source) : undefined;
  let locked: FileLook | undefined;
  const writtenUnderLock = () => locked !== undefined && !sameLook(locked, lookAt(options.heldStill!));
  try {
    // No busy timeout of SQLite's own: `beginRead` waits for the read lock itself.
    db = driver.open(opening.path, { readOnly: options.privateCopy !== true });
    await beginRead(db, deadline, options.signal);
    // Once SQLite holds the read lock: whatever changes the file from now on ignored it.
    locked = options.heldStill === undefined ? undefined : lookAt(options.heldStill);
    if (openBefore !== undefined && !(await openedAsExpectedSoon(source, options.expected!, openBefore))) return OPENED_ELSEWHERE;
    // The read lock now keeps any last writer from removing the -wal and -shm.
    createdCompanions = options.companions !== undefined && !sameFiles(source, options.companions);
    writing = true;
    const pages = await db.backupTo(destination);
    if (writtenUnderLock()) return WRITTEN_UNDER_LOCK;
    writing = false;
    db.exec('COMMIT');
    return { ok: true, pages, durationMs: Date.now() - started };
  } catch (error) {
    // A page a writer tore under the lock may fail the copy (SQLITE_CORRUPT): not the database's fault.
    if (writing && writtenUnderLock()) return WRITTEN_UNDER_LOCK;
    return failure(error, destination, writing || options.privateCopy === true);
  } finally {
    db?.close();
    opening.release();
    if (createdCompanions) closeAsLastConnection(source, options.expected!);
  }
}

/**
 * Starts a read transaction on `db` and takes its read lock (BEGIN, then a read of the header
 * and the schema: a file that is not a usable database fails here), trying again while another
 * connection holds a lock that keeps readers out, until `deadline` (then SQLITE_BUSY is
 * thrown). In rollback-journal mode every writer's commit holds such a lock (PENDING, then
 * EXCLUSIVE) from its start to its end; under many writers committing back to back it is
 * free only for moments between two commits. SQLite's own busy handler, after its first
 * tries, looks once every 100 ms, in step with the writers' own busy handlers, sleeping on
 * the calling thread: with ten writer processes it missed every moment for 10 s in 4 of 10
 * backups. So the lock is tried every few milliseconds, at random moments, between turns of
 * the event loop. `signal` aborted (the CLI interrupted, a function's deadline), the wait ends
 * at once (AbortedError, or the signal's own OpenClawError), not at `deadline`.
 */
async function beginRead(db: SqliteConnection, deadline: number, signal: AbortSignal | undefined): Promise<void> {
  for (;;) {
    throwIfAborted(signal);
    try {
      db.exec('BEGIN');
      db.prepare('SELECT count(*) FROM sqlite_schema').get();
      return;
    } catch (error) {
      if (!(error instanceof SqliteError) || !isBusy(error.code) || Date.now() >= deadline) throw error;
      endTransaction(db);
    }
    await sleep(Math.min(1 + Math.random() * READ_LOCK_PAUSE_MS, Math.max(0, deadline - Date.now())), undefined, { signal }).catch(() => undefined);
  }
}

/** The bound of the random pause between two tries of the read lock, in milliseconds. */
const READ_LOCK_PAUSE_MS = 4;

/** Ends the transaction a failed read left open on `db`, if it did. */
function endTransaction(db: SqliteConnection): void {
  try {
    db.exec('ROLLBACK');
  } catch {
    // none was open
  }
}

/**
 * The path SQLite is given to open the database at `source`: `source` itself, or, for a path
 * that is not UTF-8 (a directory or name held by its bytes, raw-name.ts), the procfs link of
 * a descriptor of it, held open until `release`. Node would pass such a path to SQLite with
 * U+FFFD for each byte that is not UTF-8 (no such file; better-sqlite3 throws a TypeError of
 * its own), whereas SQLite resolves the link itself and opens the real path by its bytes, and
 * its -wal and -shm beside it. The descriptor is opened before the caller lists the open ones:
 * it is not taken for SQLite's. Without procfs, or if it cannot be opened, `source` as it is.
 */
function sqlitePathOf(source: string): { readonly path: string; release(): void } {
  if (!hasRawBytes(source) || !CAN_CHECK_OPENED_PATHS) return { path: source, release: () => {} };
  let fd: number;
  try {
    fd = openSync(fsPath(source), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK | fsConstants.O_NOCTTY);
  } catch {
    return { path: source, release: () => {} };
  }
  return { path: `${FD_LINKS}${fd}`, release: () => closeSync(fd) };
}

/** Whether every `source` + suffix is still the file (dev, ino) it was found. */
function sameFiles(source: string, found: ReadonlyMap<string, { readonly dev: number; readonly ino: number }>): boolean {
  for (const [suffix, identity] of found) {
    let stat;
    try {
      stat = lstatSync(fsPath(`${source}${suffix}`));
    } catch {
      return false;
    }
    if (stat.dev !== identity.dev || stat.ino !== identity.ino) return false;
  }
  return true;
}

/**
 * Closes the live database `source` (the file `expected`) as its last connection would: opened
 * read-write (never created), its schema read, and closed. If no other connection has it open,
 * SQLite checkpoints the WAL (empty, if the snapshot's connection created it; else what a
 * writer that came and went since committed, as that writer's own close would have) and
 * removes the `-wal` and `-shm`; if another has, it leaves them to that one, without waiting.
 * Only when SQLite's descriptors can be checked (procfs), and only the file expected: a
 * descriptor of another file is closed before anything is read from it. A failure (a read-only
 * file system, a lock) leaves the files as they are: they do no harm, only clutter.
 */
function closeAsLastConnection(source: string, expected: { readonly dev: number; readonly ino: number }): void {
  if (!CAN_CHECK_OPENED_PATHS) return;
  try {
    const opening = sqlitePathOf(source);
    try {
      const openBefore = openDescriptors(source);
      const db = sqliteDriver().open(opening.path, { mustExist: true });
      try {
        // Its first read would roll back a hot journal beside it (the gateway's job, not the
        // backup's), and then delete the super-journal it names, a name the tenant may write
        // (sqlite-private-copy.ts `detachSuperJournal`): none may be there. Looked for once
        // SQLite holds the file, just before that read: one written in the microseconds between
        // this look and the read is not caught (a race left open: docs/consistency.md).
        if (openedAsExpected(source, expected, openBefore) && !hasJournal(source)) db.prepare('SELECT count(*) FROM sqlite_schema').get();
      } finally {
        db.close();
      }
    } finally {
      opening.release();
    }
  } catch {
    // left as they are (above)
  }
}

/** Whether anything is at `<source>-journal` (not followed), or it cannot be told. */
function hasJournal(source: string): boolean {
  try {
    lstatSync(fsPath(`${source}-journal`));
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/**
 * `openedAsExpected`, looked at again every few milliseconds for OPEN_CHECK_RECHECK_MS while it
 * is not: the waits for the read lock let `backup --all`'s other jobs run, and one of them
 * holding its own `memory.sqlite` at the moment of the first look failed the attempt (three
 * in a row: the backup).
 */
async function openedAsExpectedSoon(source: string, expected: { readonly dev: number; readonly ino: number }, openBefore: ReadonlyMap<number, string>): Promise<boolean> {
  const until = Date.now() + OPEN_CHECK_RECHECK_MS;
  for (;;) {
    if (openedAsExpected(source, expected, openBefore)) return true;
    if (Date.now() >= until) return false;
    await sleep(1 + Math.random() * READ_LOCK_PAUSE_MS);
  }
}

/**
 * Whether the descriptors opened since `openBefore` (SQLite's, and any other thread's) hold the
 * file `source` with the identity `expected`, and every one named like it or its companions
 * is beside it: a database or `-wal` reached through a swapped-in symlink is named by its real
 * path elsewhere (a descriptor closed and its number reused counts as opened since).
 */
function openedAsExpected(source: string, expected: { readonly dev: number; readonly ino: number }, openBefore: ReadonlyMap<number, string>): boolean {
  const dir = path.dirname(source);
  const names = new Set([path.basename(source), ...companionNames(path.basename(source))]);
  let opened = false;
  for (const [fd, link] of openDescriptors(source)) {
    if (openBefore.get(fd) === link) continue;
    if (link === source) {
      try {
        const stat = fstatSync(fd);
        if (stat.dev === expected.dev && stat.ino === expected.ino) opened = true;
      } catch {
        // closed meanwhile: not SQLite's, which holds its descriptors until closed
      }
    } else if (names.has(path.basename(link)) && path.dirname(link) !== dir) return false;
  }
  return opened;
}

/**
 * Whether the private file at `path` opens as a SQLite database whose schema can be read;
 * undefined if so, else why not. Throws ModuleUnavailableError when this process has no SQLite.
 */
export function checkDatabaseOpens(path: string): string | undefined {
  const driver = sqliteDriver();
  let db;
  try {
    db = driver.open(path, { readOnly: true });
    db.prepare('SELECT count(*) FROM sqlite_schema').get();
    return undefined;
  } catch (error) {
    return sqliteProblem(error);
  } finally {
    db?.close();
  }
}

/**
 * `PRAGMA integrity_check` (or `quick_check`: the same but for whether each index holds what
 * its table does, in about half the time) of the private file at `file`: undefined if it
 * says "ok", else why not: `unusable` with its first findings (or why SQLite could not read it), or `busy`
 * when SQLite could not even open it for want of room beside it (the `-shm` a WAL database
 * needs, a full disk: SQLITE_IOERR, SQLITE_FULL; no inode left for it: SQLITE_CANTOPEN), a
 * fact about the scratch space the file is in, not the database, so never a reason to archive
 * the database raw unasked.
 */
export function checkIntegrity(file: string, pragma: 'integrity_check' | 'quick_check' = 'integrity_check'): { readonly kind: 'busy' | 'unusable'; readonly reason: string } | undefined {
  const driver = sqliteDriver();
  let db;
  try {
    db = driver.open(file, { readOnly: true });
    const findings = db.prepare(`PRAGMA ${pragma}(5)`).all().map((row) => String(Object.values(row)[0]).replace(/\s+/g, ' '));
    return findings.length === 1 && findings[0] === 'ok' ? undefined : { kind: 'unusable', reason: `${pragma}: ${findings.join('; ')}` };
  } catch (error) {
    const said = sqliteProblem(error);
    const { code } = error as SqliteError;
    return code === 'SQLITE_FULL' || code === 'SQLITE_CANTOPEN' || code.startsWith('SQLITE_IOERR')
      ? { kind: 'busy', reason: `no room to open its private copy in ${shownPath(pathBehindLink(path.dirname(file)))} (${said})` }
      : { kind: 'unusable', reason: said };
  } finally {
    db?.close();
  }
}

/**
 * Whether SQLite's code says another connection holds a lock: SQLITE_BUSY, SQLITE_LOCKED, or
 * one of their extended codes, which better-sqlite3 names (`SQLITE_BUSY_RECOVERY`: another
 * connection is rebuilding the WAL index); node:sqlite gives the primary code.
 */
function isBusy(code: string): boolean {
  return /^SQLITE_(BUSY|LOCKED)(_|$)/.test(code);
}

/** A read-only connection may not roll back a hot journal or rebuild a WAL index. */
const RECOVERY_CODES = new Set(['SQLITE_READONLY_ROLLBACK', 'SQLITE_READONLY_RECOVERY']);

/**
 * What SQLite said, as an outcome; anything else is a bug and is thrown on. SQLITE_FULL is the
 * snapshot's own file (at `destination`) meeting a full disk: a fact about the temporary
 * directory, not the database, so never a reason to archive the database raw unasked. So is
 * SQLITE_CANTOPEN or SQLITE_IOERR where only files in the temporary directory are opened
 * (`inScratch`: the snapshot's own file being written; a private copy, and the `-shm` opening
 * it makes): no inode or room was left there to create them. Taken for a database SQLite
 * cannot read, the live file was archived raw with a warning, unasked.
 */
function failure(error: unknown, destination: string, inScratch: boolean): SnapshotOutcome {
  if (!(error instanceof SqliteError)) throw error;
  const said = `${error.code}: ${error.message}`;
  const dir = shownPath(pathBehindLink(path.dirname(destination)));
  if (error.code === 'SQLITE_FULL') return { ok: false, kind: 'busy', reason: `no room for the snapshot in ${dir} (${said})` };
  if (inScratch && (error.code === 'SQLITE_CANTOPEN' || error.code.startsWith('SQLITE_IOERR'))) {
    return { ok: false, kind: 'busy', reason: `SQLite could not make its files in ${dir} (${said}): no inode or room left there?` };
  }
  if (RECOVERY_CODES.has(error.code)) return { ok: false, kind: 'recovery', reason: `it needs a recovery a read-only connection may not make (${said})` };
  const kind = isBusy(error.code) ? 'busy' : 'unusable';
  return kind === 'busy' ? { ok: false, kind, reason: `still locked after the busy timeout (${said})`, byWriter: true } : { ok: false, kind, reason: said };
}

/** What SQLite said, in words; anything else is a bug and is thrown on. */
function sqliteProblem(error: unknown): string {
  if (!(error instanceof SqliteError)) throw error;
  return `${error.code}: ${error.message}`;
}
