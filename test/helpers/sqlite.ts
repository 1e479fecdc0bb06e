// SQLite for the tests, through the core's driver (shared/backup/sqlite-driver.ts): node:sqlite
// on Node 24, better-sqlite3 on Node 20, so the same tests run on both. Small helpers for
// what the suites do often: one value, one column, a transaction.

import { sqliteDriver, type OpenOptions, type SqliteConnection, type SqliteValue } from '../../shared/backup/sqlite-driver.js';

export type { SqliteConnection } from '../../shared/backup/sqlite-driver.js';

export function openDatabase(path: string, options?: OpenOptions): SqliteConnection {
  return sqliteDriver().open(path, options);
}

/** The first column of the first row, or undefined without a row. */
export function value(db: SqliteConnection, sql: string, ...params: SqliteValue[]): unknown {
  const row = db.prepare(sql).get(...params);
  return row === undefined ? undefined : Object.values(row)[0];
}

/** The first column of every row. */
export function column(db: SqliteConnection, sql: string, ...params: SqliteValue[]): unknown[] {
  return db.prepare(sql).all(...params).map((row) => Object.values(row)[0]);
}

/** Runs `work` in one transaction, rolled back if it throws. */
export function transaction(db: SqliteConnection, work: () => void): void {
  db.exec('BEGIN');
  try {
    work();
    db.exec('COMMIT');
  } catch (error) {
    db.exec('ROLLBACK');
    throw error;
  }
}

/**
 * The database at `file` (a restored copy) opened read-only: what PRAGMA integrity_check says
 * of it ('ok' when intact), and the first column of each query's first row.
 */
export function readDatabase(file: string, ...queries: string[]): { integrity: unknown; values: unknown[] } {
  const db = openDatabase(file, { readOnly: true });
  try {
    return { integrity: value(db, 'PRAGMA integrity_check'), values: queries.map((sql) => value(db, sql)) };
  } finally {
    db.close();
  }
}
