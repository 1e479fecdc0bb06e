// The SQLite snapshot on its own: header and companion names, a consistent standalone copy of
// a WAL database that never writes to the source, and the reasons it gives when it cannot copy.

import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { checkDatabaseOpens, companionBaseName, companionNames, isSqliteHeader, snapshotDatabase } from '../shared/backup/sqlite-snapshot.js';
import { tempDir } from './helpers/tree.js';

let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => dir.cleanup());

function walDatabase(file: string, rows: number, rowBytes = 100): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('wal_autocheckpoint = 0'); // keep every commit in the WAL
  db.exec('CREATE TABLE t (n INTEGER PRIMARY KEY, body BLOB); CREATE INDEX t_body ON t (body)');
  const insert = db.prepare('INSERT INTO t VALUES (?, randomblob(?))');
  db.transaction(() => {
    for (let n = 1; n <= rows; n++) insert.run(n, rowBytes);
  })();
  return db;
}

describe('database recognition', () => {
  it.each([
    ['SQLite format 3\0 and more', true],
    ['SQLite format 3\0', true],
    ['SQLite format 3', false],
    ['sqlite format 3\0', false],
    ['', false],
  ])('header %j → %s', (text, expected) => {
    expect(isSqliteHeader(Buffer.from(text, 'latin1'))).toBe(expected);
  });

  it.each([
    ['x.sqlite-wal', 'x.sqlite'],
    ['x.sqlite-shm', 'x.sqlite'],
    ['x.db-journal', 'x.db'],
    ['memory-wal', 'memory'],
    ['-wal', undefined],
    ['x.sqlite', undefined],
    ['x.sqlite-wal2', undefined],
  ])('companion %j belongs to %j', (name, base) => {
    expect(companionBaseName(name)).toBe(base);
  });

  it('names the companions of a database', () => {
    expect(companionNames('a.sqlite')).toEqual(['a.sqlite-wal', 'a.sqlite-shm', 'a.sqlite-journal']);
  });
});

describe('snapshotDatabase', () => {
  it('copies every committed transaction, including those only in the WAL, into a standalone database', async () => {
    const source = path.join(dir.path, 'live.sqlite');
    const db = walDatabase(source, 20_000); // ~5 MiB, all of it in the WAL
    try {
      const mainBefore = readFileSync(source);
      const walBefore = readFileSync(`${source}-wal`);
      const snapshot = path.join(dir.path, 'snapshot.sqlite');
      const outcome = await snapshotDatabase(source, snapshot);
      expect(outcome.ok).toBe(true);
      if (outcome.ok) console.log(`snapshot of ${(walBefore.length / 2 ** 20).toFixed(1)} MiB of WAL + main file: ${outcome.pages} pages in ${outcome.durationMs} ms`);

      // The source was only read: same bytes, same journal mode, still writable by its owner.
      expect(readFileSync(source).equals(mainBefore)).toBe(true);
      expect(readFileSync(`${source}-wal`).equals(walBefore)).toBe(true);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      db.prepare('INSERT INTO t VALUES (?, NULL)').run(20_001);

      // The copy stands alone: moved without any -wal, it opens read-write and is intact.
      const alone = path.join(dir.path, 'alone');
      mkdirSync(alone);
      copyFileSync(snapshot, path.join(alone, 'restored.sqlite'));
      const copy = new Database(path.join(alone, 'restored.sqlite'));
      try {
        expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
        expect(copy.prepare('SELECT count(*) FROM t').pluck().get()).toBe(20_000);
        expect(copy.prepare('SELECT max(n) FROM t').pluck().get()).toBe(20_000);
        copy.prepare('INSERT INTO t VALUES (?, NULL)').run(30_000);
      } finally {
        copy.close();
      }
    } finally {
      db.close();
    }
  });

  it('keeps writers going: a commit made during the snapshot lands after it, not inside it', async () => {
    const source = path.join(dir.path, 'busy.sqlite');
    const db = walDatabase(source, 5_000);
    try {
      let n = 5_000;
      const insert = db.prepare('INSERT INTO t VALUES (?, NULL)');
      // Commits on every turn of the event loop while the snapshot runs (its first step is
      // taken on a later turn than its start).
      let writing = true;
      const writer = (async () => {
        while (writing) {
          insert.run(++n);
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      const snapshot = path.join(dir.path, 'snapshot.sqlite');
      const outcome = await snapshotDatabase(source, snapshot);
      writing = false;
      await writer;
      expect(outcome.ok).toBe(true);
      const copy = new Database(snapshot, { readonly: true });
      try {
        expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
        const count = copy.prepare('SELECT count(*) FROM t').pluck().get() as number;
        expect(copy.prepare('SELECT max(n) FROM t').pluck().get()).toBe(count); // a contiguous prefix
        expect(count).toBeGreaterThanOrEqual(5_000);
        expect(count).toBeLessThanOrEqual(n);
      } finally {
        copy.close();
      }
    } finally {
      db.close();
    }
  });

  it('says why for a file that is not a database', async () => {
    const source = path.join(dir.path, 'corrupt.sqlite');
    writeFileSync(source, Buffer.concat([Buffer.from('SQLite format 3\0', 'latin1'), Buffer.alloc(4096, 0x41)]));
    const outcome = await snapshotDatabase(source, path.join(dir.path, 'snapshot.sqlite'));
    expect(outcome).toEqual({ ok: false, reason: expect.stringContaining('SQLITE_NOTADB') });
    expect(checkDatabaseOpens(source)).toEqual(expect.stringContaining('SQLITE_NOTADB'));
  });

  it('says why for a file that does not exist, and creates nothing', async () => {
    const outcome = await snapshotDatabase(path.join(dir.path, 'absent.sqlite'), path.join(dir.path, 'snapshot.sqlite'));
    expect(outcome.ok).toBe(false);
    expect(() => readFileSync(path.join(dir.path, 'absent.sqlite'))).toThrow();
  });

  it('gives up on a database locked beyond the timeout', async () => {
    const source = path.join(dir.path, 'locked.sqlite');
    const db = new Database(source); // rollback journal: a writer's exclusive lock keeps readers out
    try {
      db.exec('CREATE TABLE t (n INTEGER)');
      db.exec('BEGIN EXCLUSIVE; INSERT INTO t VALUES (1)');
      const started = Date.now();
      const outcome = await snapshotDatabase(source, path.join(dir.path, 'snapshot.sqlite'), { timeoutMs: 300 });
      expect(outcome).toEqual({ ok: false, reason: expect.stringMatching(/SQLITE_BUSY|locked/) });
      expect(Date.now() - started).toBeLessThan(5_000);
      db.exec('COMMIT');
    } finally {
      db.close();
    }
  });

  it('checks that a private copy opens', () => {
    const file = path.join(dir.path, 'good.sqlite');
    walDatabase(file, 10).close();
    expect(checkDatabaseOpens(file)).toBeUndefined();
  });
});
