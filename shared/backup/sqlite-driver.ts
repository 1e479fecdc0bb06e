// Which SQLite this process has, chosen once: the one place that knows the two libraries.
// - Node ≥ 22.16: node:sqlite, built in (its `backup()` runs the copy on the thread pool).
//   Nothing native ships with the Lambda functions.
// - Node 20: better-sqlite3, an optional dependency compiled for the Node that installed it
//   (its backup step runs on the main thread).
// - Neither: `sqliteDriver()` throws ModuleUnavailableError, saying what to install. A backup
//   that meets a database then fails: archiving it raw instead would be a silent downgrade.
//
// The connection is the small part both libraries share: statements, a one-step online
// backup, and errors whose `code` is SQLite's own name (SQLITE_BUSY, SQLITE_NOTADB, …). Tests
// and the sample generators write their databases through it too, so they run on either.
//
// node:sqlite prints an ExperimentalWarning when it loads on Node 22 (not on 24): the CLI
// would show it on every backup of a database, so that one warning is held back while the
// module loads.

import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

import type BetterSqlite3 from 'better-sqlite3';

import { ModuleUnavailableError } from '../errors.js';

export type SqliteValue = null | number | bigint | string | Uint8Array;
export type SqliteRow = Record<string, unknown>;

export interface SqliteStatement {
  run(...params: SqliteValue[]): void;
  get(...params: SqliteValue[]): SqliteRow | undefined;
  all(...params: SqliteValue[]): SqliteRow[];
}

export interface SqliteConnection {
  exec(sql: string): void;
  prepare(sql: string): SqliteStatement;
  /**
   * Copies the main database into the new file `destination` with the online backup API in
   * one step: one read transaction, or the caller's if one is open on this connection (the
   * copy is then exactly what that transaction sees). Resolves to the number of pages.
   */
  backupTo(destination: string): Promise<number>;
  close(): void;
}

export interface OpenOptions {
  /** Open an existing file without writing to it; missing files are an error. @default false */
  readonly readOnly?: boolean;
  /** How long a statement waits for another connection's lock (busy timeout). @default 0 */
  readonly timeoutMs?: number;
  /** Opened read-write, a missing file is an error too, not created. @default false */
  readonly mustExist?: boolean;
}

export interface SqliteDriver {
  /** `node:sqlite` or `better-sqlite3`. */
  readonly name: string;
  open(path: string, options?: OpenOptions): SqliteConnection;
}

/** A driver, or why it cannot be had in this process. */
export type DriverChoice = SqliteDriver | { readonly unavailable: string };

/** An error from SQLite, with its result code's name (`SQLITE_BUSY`, …) as `code`. */
export class SqliteError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SqliteError';
  }
}

let chosen: DriverChoice | undefined;

/** The driver of this process: node:sqlite where Node has `backup()`, else better-sqlite3. */
export function sqliteDriver(): SqliteDriver {
  chosen ??= chooseDriver();
  if ('unavailable' in chosen) throw new ModuleUnavailableError(chosen.unavailable);
  return chosen;
}

function chooseDriver(): DriverChoice {
  const builtIn = nodeSqliteDriver();
  if (!('unavailable' in builtIn)) return builtIn;
  const addon = betterSqliteDriver();
  if (!('unavailable' in addon)) return addon;
  return {
    unavailable:
      `SQLite is not available to back up databases: ${builtIn.unavailable}, and ${addon.unavailable} ` +
      '(Node 22.16 or later has it built in; on an older Node run npm ci again where it can be built: ' +
      'its prebuilt binary is downloaded from GitHub, else it is compiled, which needs python3, make, g++ and ' +
      "Node's headers: npm_config_nodedir=/usr npm ci where /usr/include/node holds them)",
  };
}

// ---------------------------------------------------------------------------------------
// node:sqlite

type NodeSqlite = typeof import('node:sqlite');

/** The `file:` URI of `path` that SQLite opens read-write but never creates. */
function existingFileUrl(path: string): URL {
  const url = pathToFileURL(path);
  url.searchParams.set('mode', 'rw');
  return url;
}

/** node:sqlite, or why this Node has none usable (none, or one without `backup()`). */
export function nodeSqliteDriver(): DriverChoice {
  const sqlite = loadQuietly();
  if (sqlite === undefined || typeof sqlite.backup !== 'function') {
    return { unavailable: `Node ${process.versions.node} has no node:sqlite with backup()` };
  }
  const { DatabaseSync, backup } = sqlite;
  return {
    name: 'node:sqlite',
    open(path, options = {}) {
      // node:sqlite has no option for it: SQLite's own URI parameter `mode=rw` (open, never create).
      const location = options.mustExist === true && options.readOnly !== true ? existingFileUrl(path) : path;
      const db = translate(() => new DatabaseSync(location, { readOnly: options.readOnly ?? false, timeout: options.timeoutMs ?? 0 }));
      return {
        exec: (sql) => translate(() => db.exec(sql)),
        prepare(sql) {
          const statement = translate(() => db.prepare(sql));
          return {
            run: (...params) => void translate(() => statement.run(...params)),
            get: (...params) => translate(() => statement.get(...params)),
            all: (...params) => translate(() => statement.all(...params)),
          };
        },
        backupTo: (destination) => backup(db, destination, { rate: 0x7fffffff }).catch((error: unknown) => Promise.reject(sqliteError(error))),
        close: () => db.close(),
      };
    },
  };
}

function loadQuietly(): NodeSqlite | undefined {
  const emitWarning = process.emitWarning;
  process.emitWarning = function (this: NodeJS.Process, warning: string | Error, ...rest: unknown[]) {
    const text = typeof warning === 'string' ? warning : warning.message;
    if (/SQLite is an experimental feature/.test(text)) return;
    return (emitWarning as (...args: unknown[]) => void).call(this, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    return process.getBuiltinModule?.('node:sqlite') as NodeSqlite | undefined;
  } catch {
    return undefined;
  } finally {
    process.emitWarning = emitWarning;
  }
}

/** SQLite's primary result codes by number (node:sqlite reports the number). */
const RESULT_CODES: Readonly<Record<number, string>> = {
  1: 'SQLITE_ERROR',
  2: 'SQLITE_INTERNAL',
  3: 'SQLITE_PERM',
  4: 'SQLITE_ABORT',
  5: 'SQLITE_BUSY',
  6: 'SQLITE_LOCKED',
  7: 'SQLITE_NOMEM',
  8: 'SQLITE_READONLY',
  9: 'SQLITE_INTERRUPT',
  10: 'SQLITE_IOERR',
  11: 'SQLITE_CORRUPT',
  13: 'SQLITE_FULL',
  14: 'SQLITE_CANTOPEN',
  15: 'SQLITE_PROTOCOL',
  17: 'SQLITE_SCHEMA',
  18: 'SQLITE_TOOBIG',
  19: 'SQLITE_CONSTRAINT',
  20: 'SQLITE_MISMATCH',
  21: 'SQLITE_MISUSE',
  22: 'SQLITE_NOLFS',
  23: 'SQLITE_AUTH',
  25: 'SQLITE_RANGE',
  26: 'SQLITE_NOTADB',
};

/**
 * The extended result codes the backup tells apart (better-sqlite3 names them; node:sqlite
 * gives the number): a read-only connection's refusal to make the recovery that a crashed
 * writer's hot journal (or an unrecovered WAL index) needs.
 */
const EXTENDED_CODES: Readonly<Record<number, string>> = {
  264: 'SQLITE_READONLY_RECOVERY',
  776: 'SQLITE_READONLY_ROLLBACK',
};

function sqliteError(error: unknown): Error {
  if (error instanceof SqliteError || !(error instanceof Error)) return error as Error;
  const { code, errcode } = error as { code?: unknown; errcode?: unknown };
  if (typeof code === 'string' && code.startsWith('SQLITE_')) return new SqliteError(code, error.message, { cause: error });
  if (typeof errcode === 'number') return new SqliteError(EXTENDED_CODES[errcode] ?? RESULT_CODES[errcode & 0xff] ?? `SQLITE_${errcode}`, error.message, { cause: error });
  return error;
}

function translate<T>(call: () => T): T {
  try {
    return call();
  } catch (error) {
    throw sqliteError(error);
  }
}

// ---------------------------------------------------------------------------------------
// better-sqlite3

/**
 * Why better-sqlite3 did not load, in one line. Node's message for an addon built for another Node
 * (after Node was upgraded, say from 20 to 22.12, without a reinstall) starts with a line
 * naming only the file: the versions, on the lines after it, are the reason.
 */
function betterSqliteLoadFailure(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const versions = /NODE_MODULE_VERSION (\d+)\.[^]*?requires\s+NODE_MODULE_VERSION (\d+)/.exec(message);
  if (versions !== null) {
    return `built for another Node (NODE_MODULE_VERSION ${versions[1]}; Node ${process.versions.node} needs ${versions[2]}): npm rebuild better-sqlite3`;
  }
  return message.split('\n')[0]!;
}

/** better-sqlite3, or why it cannot be loaded here (not installed, or built for another Node). */
export function betterSqliteDriver(): DriverChoice {
  let Database: typeof BetterSqlite3;
  try {
    Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
    // The addon itself loads on the first connection: check now that it is built for this Node.
    new Database(':memory:').close();
  } catch (error) {
    return { unavailable: `the optional package better-sqlite3 cannot be loaded (${betterSqliteLoadFailure(error)})` };
  }
  return {
    name: 'better-sqlite3',
    open(path, options = {}) {
      const readOnly = options.readOnly ?? false;
      const db = translate(() => new Database(path, { readonly: readOnly, fileMustExist: readOnly || options.mustExist === true, timeout: options.timeoutMs ?? 0 }));
      return {
        exec: (sql) => void translate(() => db.exec(sql)),
        prepare(sql) {
          const statement = translate(() => db.prepare(sql));
          const reads = statement.reader;
          return {
            run: (...params) => void translate(() => statement.run(...params)),
            get: (...params) => (reads ? translate(() => statement.get(...params) as SqliteRow | undefined) : (translate(() => statement.run(...params)), undefined)),
            all: (...params) => (reads ? translate(() => statement.all(...params) as SqliteRow[]) : (translate(() => statement.run(...params)), [])),
          };
        },
        // better-sqlite3's first step copies no pages; the progress callback asks for all of
        // them in the next one, so the copy is one step (the step runs on this thread).
        backupTo: (destination) =>
          db.backup(destination, { progress: () => 0x7fffffff }).then(
            (result) => result.totalPages,
            (error: unknown) => Promise.reject(sqliteError(error)),
          ),
        close: () => void db.close(),
      };
    },
  };
}
