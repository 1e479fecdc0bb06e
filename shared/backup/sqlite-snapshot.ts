// Consistent copies of live SQLite databases. Agents write to their memory databases while
// the gateway serves them, usually in WAL mode: the committed state is the main file *plus*
// its `-wal`, and a byte copy of either taken mid-write can lose commits and still open
// clean. So a database in use is copied through SQLite itself.
//
// Why the online backup API, in one step:
// - `sqlite3_backup_step(-1)` (better-sqlite3's `db.backup()` with a progress callback that
//   asks for every page) copies the database inside one read transaction: a WAL reader sees
//   one snapshot, so the copy holds exactly the transactions committed before it began,
//   while the gateway keeps writing to the WAL. Copied in many small steps instead, a write
//   by another process restarts the backup, which never finishes under constant writes.
// - The copy goes page by page to a temporary file through SQLite's pager, so memory stays
//   bounded by the page cache (tenant databases can be hundreds of MiB; `serialize()` would
//   hold all of it). It is page-identical to the source, indexes and free pages included;
//   `VACUUM INTO` would also be consistent but rebuilds every index (slower) and changes
//   the layout.
// - The step is synchronous (better-sqlite3 has no async I/O): it blocks the event loop for
//   the copy, about 25 ms for 5 MiB here. Acceptable for a backup run; documented.
//
// The source is opened read-only with `fileMustExist` and a busy timeout: the backup never
// writes to the live database, never checkpoints and never changes its journal mode. (A
// read-only connection to a WAL database still maps the `-shm`; SQLite creates `-wal` and
// `-shm` when they are missing, which is why idle databases are not opened at all: see
// live-files.ts.) The snapshot keeps the source's header, so a WAL database restores as
// a WAL database without a `-wal` file: SQLite opens it as a complete, standalone database.
//
// better-sqlite3 is a native module, loaded on first use: if it cannot be loaded (a bundle
// shipped for the wrong architecture), every database is reported as not snapshotted and the
// caller archives it raw with a warning, instead of the whole backup failing.

import { createRequire } from 'node:module';

import type BetterSqlite3 from 'better-sqlite3';

/** Every SQLite database file starts with these 16 bytes (the format's magic string). */
export const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

/** Files SQLite keeps beside a database `<db>`: `<db>-wal`, `<db>-shm`, `<db>-journal`. */
export const SQLITE_COMPANION_SUFFIXES = ['-wal', '-shm', '-journal'] as const;

/** How long the snapshot waits for a lock held by a writer before giving up. */
export const DEFAULT_SNAPSHOT_TIMEOUT_MS = 10_000;

/** Whether these bytes (the first read of a file) begin with the SQLite header. */
export function isSqliteHeader(head: Uint8Array): boolean {
  return head.length >= SQLITE_HEADER.length && SQLITE_HEADER.equals(head.subarray(0, SQLITE_HEADER.length));
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

export type SnapshotOutcome =
  | { readonly ok: true; readonly pages: number; readonly durationMs: number }
  | { readonly ok: false; readonly reason: string };

export interface SnapshotOptions {
  /** Busy timeout, and the longest the whole snapshot may wait for locks. */
  readonly timeoutMs?: number;
}

/**
 * Copies the database at `source` into the new file `destination` with the online backup
 * API, in one step. Never throws for a database that cannot be copied (not a database,
 * corrupt, locked beyond the timeout, SQLite unavailable): says why instead. The caller
 * owns `destination` (and the `-journal` SQLite may leave beside it) and deletes it.
 */
export async function snapshotDatabase(source: string, destination: string, options: SnapshotOptions = {}): Promise<SnapshotOutcome> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_SNAPSHOT_TIMEOUT_MS;
  const Database = loadSqlite();
  if (typeof Database === 'string') return { ok: false, reason: Database };
  const started = Date.now();
  let db: BetterSqlite3.Database | undefined;
  try {
    db = new Database(source, { readonly: true, fileMustExist: true, timeout: timeoutMs });
    // Reads the header and the schema: a file that is not a usable database fails here.
    db.prepare('SELECT count(*) FROM sqlite_schema').pluck().get();
    const result = await db.backup(destination, {
      // The first step copies no pages (better-sqlite3 starts with 0); this one asks for all of
      // them, so the copy is one read transaction. A step that met a lock (SQLITE_BUSY after
      // the busy timeout) comes back here too: give up once the deadline has passed.
      progress: () => {
        if (Date.now() - started > timeoutMs) throw new SnapshotTimeout(timeoutMs);
        return 0x7fffffff;
      },
    });
    return { ok: true, pages: result.totalPages, durationMs: Date.now() - started };
  } catch (error) {
    return { ok: false, reason: describeSqliteError(error) };
  } finally {
    db?.close();
  }
}

/**
 * Whether the file at `path` (a private copy: SQLite may create `-wal`/`-shm` beside it)
 * opens as a SQLite database and its schema can be read; undefined if so, else why not.
 */
export function checkDatabaseOpens(path: string): string | undefined {
  const Database = loadSqlite();
  if (typeof Database === 'string') return Database;
  let db: BetterSqlite3.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    db.prepare('SELECT count(*) FROM sqlite_schema').pluck().get();
    return undefined;
  } catch (error) {
    return describeSqliteError(error);
  } finally {
    db?.close();
  }
}

class SnapshotTimeout extends Error {
  constructor(timeoutMs: number) {
    super(`still locked after ${Math.round(timeoutMs / 1000)} s`);
    this.name = 'SnapshotTimeout';
  }
}

function describeSqliteError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? `${code}: ${error.message}` : error.message;
}

type SqliteConstructor = typeof BetterSqlite3;
let loaded: SqliteConstructor | string | undefined;

/** better-sqlite3, or why it cannot be loaded (loaded once, on first use). */
function loadSqlite(): SqliteConstructor | string {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)('better-sqlite3') as SqliteConstructor;
    } catch (error) {
      loaded = `SQLite (better-sqlite3) cannot be loaded: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`;
    }
  }
  return loaded;
}
