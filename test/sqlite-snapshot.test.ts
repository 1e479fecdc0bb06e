// SQLite on its own: which driver this Node gets, header and companion names, a consistent
// standalone copy of a WAL database that never writes to the source, the reasons it gives
// when it cannot copy (busy or unusable), the integrity check, and the stable private copy
// that the cross-host path snapshots instead of the live file.

import { copyFileSync, mkdirSync, openSync, readFileSync, realpathSync, renameSync, statSync, statfsSync, symlinkSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import nodeFs, { promises as fs } from 'node:fs';
import { spawn } from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { betterSqliteDriver, nodeSqliteDriver, sqliteDriver } from '../shared/backup/sqlite-driver.js';
import { copyDatabasePrivately, PRIVATE_COPY_MIN_ATTEMPTS, type CopyOptions } from '../shared/backup/sqlite-private-copy.js';
import { sqlitePolicyFor, writersMayBeRemote } from '../shared/backup/sqlite-policy.js';
import {
  checkDatabaseOpens,
  checkIntegrity,
  companionBaseName,
  companionNames,
  isSqliteHeader,
  snapshotDatabase,
} from '../shared/backup/sqlite-snapshot.js';
import { TempArea } from '../shared/backup/temp-area.js';
import { column, openDatabase, transaction, value, type SqliteConnection } from './helpers/sqlite.js';
import { sh, tempDir } from './helpers/tree.js';

/**
 * Descriptors of other threads that the listing of this process's open descriptors
 * (file-access.ts `openDescriptors`) shows besides the real ones; a test sets it, and unsets it.
 */
const descriptors = vi.hoisted(() => ({ extra: undefined as (() => Map<number, string>) | undefined }));
vi.mock('../shared/file-access.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../shared/file-access.js')>();
  const openDescriptors: typeof original.openDescriptors = (checking) => new Map([...original.openDescriptors(checking), ...(descriptors.extra?.() ?? [])]);
  return { ...original, openDescriptors };
});

let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => dir.cleanup());

function walDatabase(file: string, rows: number, rowBytes = 100): SqliteConnection {
  const db = openDatabase(file);
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA wal_autocheckpoint = 0'); // keep every commit in the WAL
  db.exec('CREATE TABLE t (n INTEGER PRIMARY KEY, body BLOB); CREATE INDEX t_body ON t (body)');
  const insert = db.prepare('INSERT INTO t VALUES (?, randomblob(?))');
  transaction(db, () => {
    for (let n = 1; n <= rows; n++) insert.run(n, rowBytes);
  });
  return db;
}

describe('the SQLite of this process', () => {
  it('is node:sqlite where Node has backup(), else better-sqlite3', () => {
    const builtIn = nodeSqliteDriver();
    expect(sqliteDriver().name).toBe('unavailable' in builtIn ? 'better-sqlite3' : 'node:sqlite');
    if (!('unavailable' in builtIn)) {
      // better-sqlite3 is compiled for the Node that installed it (20 here): not for this one.
      const addon = betterSqliteDriver();
      if ('unavailable' in addon) {
        expect(addon.unavailable).toMatch(/^the optional package better-sqlite3 cannot be loaded \(built for another Node \(NODE_MODULE_VERSION \d+; Node [\d.]+ needs \d+\): npm rebuild better-sqlite3\)$/);
      }
    }
  });
});

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
      if (outcome.ok) console.log(`snapshot (${sqliteDriver().name}) of ${(walBefore.length / 2 ** 20).toFixed(1)} MiB of WAL + main file: ${outcome.pages} pages in ${outcome.durationMs} ms`);

      // The source was only read: same bytes, same journal mode, still writable by its owner.
      expect(readFileSync(source).equals(mainBefore)).toBe(true);
      expect(readFileSync(`${source}-wal`).equals(walBefore)).toBe(true);
      expect(value(db, 'PRAGMA journal_mode')).toBe('wal');
      db.prepare('INSERT INTO t VALUES (?, NULL)').run(20_001);

      // The copy stands alone: moved without any -wal, it opens read-write and is intact.
      const alone = path.join(dir.path, 'alone');
      mkdirSync(alone);
      copyFileSync(snapshot, path.join(alone, 'restored.sqlite'));
      const copy = openDatabase(path.join(alone, 'restored.sqlite'));
      try {
        expect(value(copy, 'PRAGMA integrity_check')).toBe('ok');
        expect(value(copy, 'SELECT count(*) FROM t')).toBe(20_000);
        expect(value(copy, 'SELECT max(n) FROM t')).toBe(20_000);
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
      // Commits on every turn of the event loop while the snapshot runs.
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
      const copy = openDatabase(snapshot, { readOnly: true });
      try {
        expect(value(copy, 'PRAGMA integrity_check')).toBe('ok');
        const count = value(copy, 'SELECT count(*) FROM t') as number;
        expect(value(copy, 'SELECT max(n) FROM t')).toBe(count); // a contiguous prefix
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
    expect(outcome).toEqual({ ok: false, kind: 'unusable', reason: expect.stringContaining('SQLITE_NOTADB') });
    expect(checkDatabaseOpens(source)).toEqual(expect.stringContaining('SQLITE_NOTADB'));
    expect(checkIntegrity(source)).toEqual({ kind: 'unusable', reason: expect.stringContaining('SQLITE_NOTADB') });
  });

  it('says why for a file that does not exist, and creates nothing', async () => {
    const outcome = await snapshotDatabase(path.join(dir.path, 'absent.sqlite'), path.join(dir.path, 'snapshot.sqlite'));
    expect(outcome).toEqual({ ok: false, kind: 'unusable', reason: expect.stringContaining('SQLITE_CANTOPEN') });
    expect(() => readFileSync(path.join(dir.path, 'absent.sqlite'))).toThrow();
  });

  it('gives up on a database locked beyond the timeout, as busy', async () => {
    const source = path.join(dir.path, 'locked.sqlite');
    const db = openDatabase(source); // rollback journal: a writer's exclusive lock keeps readers out
    try {
      db.exec('CREATE TABLE t (n INTEGER)');
      db.exec('BEGIN EXCLUSIVE; INSERT INTO t VALUES (1)');
      const started = Date.now();
      const outcome = await snapshotDatabase(source, path.join(dir.path, 'snapshot.sqlite'), { timeoutMs: 300 });
      expect(outcome).toEqual({ ok: false, kind: 'busy', reason: expect.stringMatching(/^still locked after the busy timeout \(SQLITE_BUSY/), byWriter: true });
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      db.exec('COMMIT');
    } finally {
      db.close();
    }
  });

  it('waits for a writer\'s lock without holding up the process, and takes it once the writer lets go', async () => {
    // SQLite's busy handler slept on the calling thread for the whole wait: nothing else in
    // the process ran (here: the writer's COMMIT), and a snapshot looking once every 100 ms
    // missed every moment between two commits of busy writers (4 of 10 backups failed).
    const source = path.join(dir.path, 'locked.sqlite');
    const db = openDatabase(source); // rollback journal: a writer's exclusive lock keeps readers out
    try {
      db.exec('CREATE TABLE t (n INTEGER)');
      db.exec('BEGIN EXCLUSIVE; INSERT INTO t VALUES (1)');
      const snapshot = path.join(dir.path, 'snapshot.sqlite');
      const outcome = snapshotDatabase(source, snapshot, { timeoutMs: 5_000 });
      await new Promise((resolve) => setTimeout(resolve, 50));
      db.exec('COMMIT');
      expect(await outcome).toEqual({ ok: true, pages: expect.any(Number), durationMs: expect.any(Number) });
      const copy = openDatabase(snapshot, { readOnly: true });
      try {
        expect(value(copy, 'SELECT count(*) FROM t')).toBe(1);
      } finally {
        copy.close();
      }
    } finally {
      db.close();
    }
  });

  it('waits while another process holds the WAL index it must rebuild (SQLITE_BUSY_RECOVERY), never calling the database unusable', async () => {
    // A reader that finds the index header unreadable rebuilds it under the WAL's locks; held
    // by another process, it is busy. better-sqlite3 names that SQLITE_BUSY_RECOVERY, which was
    // taken for "unusable": the live database archived raw, with a warning, unasked.
    const source = path.join(dir.path, 'recovering.sqlite');
    // The other process: its connection keeps the database in use (its -wal and -shm there);
    // it then zeroes both copies of the index header and holds every WAL lock byte until its stdin closes.
    const holder = spawn('python3', ['-c', [
      'import os, sys, fcntl, sqlite3',
      `path = ${JSON.stringify(source)}`,
      'db = sqlite3.connect(path, isolation_level=None)',
      'db.execute("PRAGMA journal_mode = WAL")',
      'db.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")',
      'db.executemany("INSERT INTO t VALUES (?)", [(n,) for n in range(1, 11)])',
      'fd = os.open(path + "-shm", os.O_RDWR)',
      'os.pwrite(fd, bytes(136), 0)',
      'fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 8, 120)',
      'print("held", flush=True)',
      'sys.stdin.read()',
    ].join('\n')], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await new Promise((resolve) => holder.stdout.once('data', resolve));
      const snapshot = path.join(dir.path, 'snapshot.sqlite');
      const outcome = snapshotDatabase(source, snapshot, { timeoutMs: 5_000 });
      await new Promise((resolve) => setTimeout(resolve, 50));
      holder.stdin.end();
      expect(await outcome).toEqual({ ok: true, pages: expect.any(Number), durationMs: expect.any(Number) });
      const copy = openDatabase(snapshot, { readOnly: true });
      try {
        expect(value(copy, 'PRAGMA integrity_check')).toBe('ok');
        expect(value(copy, 'SELECT count(*) FROM t')).toBe(10);
      } finally {
        copy.close();
      }
    } finally {
      holder.stdin.end();
      if (holder.exitCode === null) await new Promise((resolve) => holder.once('exit', resolve));
    }
  });

  it.each(['the database', 'a directory above it'])('copies nothing of another database when %s was swapped for a symlink to one after the caller checked it', async (swapped) => {
    // A tenant racing a root backup: between the backup's check of the file it opened and
    // SQLite's open by path, the database (or its directory) becomes a symlink to another
    // tenant's. SQLite follows it; the snapshot held the other tenant's rows, archived as this one's.
    const root = realpathSync(dir.path);
    const source = path.join(root, 'alice', 'db', 'memory.sqlite');
    const victim = path.join(root, 'bob', 'db', 'memory.sqlite');
    mkdirSync(path.dirname(source), { recursive: true });
    mkdirSync(path.dirname(victim), { recursive: true });
    walDatabase(source, 3).close();
    walDatabase(victim, 7).close();
    const checked = statSync(source);
    if (swapped === 'the database') {
      renameSync(source, `${source}.real`);
      symlinkSync(victim, source);
    } else {
      renameSync(path.dirname(source), `${path.dirname(source)}.real`);
      symlinkSync(path.dirname(victim), path.dirname(source));
    }
    const snapshot = path.join(root, 'snapshot.sqlite');
    const outcome = await snapshotDatabase(source, snapshot, { expected: checked });
    expect(outcome).toEqual({ ok: false, kind: 'busy', reason: 'the file was replaced while SQLite opened it' });
  });

  it('checks that the live file it opened is the one expected, and copies it', async () => {
    const source = path.join(realpathSync(dir.path), 'live.sqlite');
    walDatabase(source, 5).close();
    const snapshot = path.join(dir.path, 'snapshot.sqlite');
    expect(await snapshotDatabase(source, snapshot, { expected: statSync(source) })).toEqual({ ok: true, pages: expect.any(Number), durationMs: expect.any(Number) });
    const copy = openDatabase(snapshot);
    expect(value(copy, 'SELECT count(*) FROM t')).toBe(5);
    copy.close();
  });

  it('is not called replaced because another job held its own database of the same name when each lock came (backup --all)', async () => {
    // While a snapshot waits for the lock, `backup --all`'s other jobs run and open their
    // tenants' memory.sqlite. Under busy writers every attempt waited, and one such descriptor
    // open at the moment each lock came failed the check of SQLite's descriptors three times
    // in a row: "the file was replaced while SQLite opened it", the backup failed. Here the
    // listing of this process's descriptors holds a new one of bob's memory.sqlite at every
    // other look: each check after SQLite's open (one that another job closes moments later).
    const root = realpathSync(dir.path);
    const source = path.join(root, 'alice', 'memory.sqlite');
    mkdirSync(path.dirname(source));
    walDatabase(source, 3).close();
    let looks = 0;
    descriptors.extra = () => (++looks % 2 === 0 ? new Map([[100_000 + looks, path.join(root, 'bob', 'memory.sqlite')]]) : new Map());
    try {
      const snapshot = path.join(dir.path, 'snapshot.sqlite');
      expect(await snapshotDatabase(source, snapshot, { expected: statSync(source) })).toEqual({ ok: true, pages: expect.any(Number), durationMs: expect.any(Number) });
      const copy = openDatabase(snapshot, { readOnly: true });
      try {
        expect(value(copy, 'SELECT count(*) FROM t')).toBe(3);
      } finally {
        copy.close();
      }
    } finally {
      descriptors.extra = undefined;
    }
  });

  it('fails, naming the database, when a descriptor it checks cannot be read (EIO), rather than call the file replaced', async () => {
    const source = path.join(realpathSync(dir.path), 'unreadable-link.sqlite');
    walDatabase(source, 5).close();
    const snapshot = path.join(dir.path, 'snapshot.sqlite');
    // Every read of a descriptor's procfs link fails, as on a procfs that answers EIO.
    const { readlinkSync } = nodeFs;
    nodeFs.readlinkSync = ((at: string, ...rest: []) => {
      if (/^\/proc\/self\/fd\/\d+$/.test(String(at))) throw Object.assign(new Error(`EIO: i/o error, readlink '${at}'`), { code: 'EIO', errno: -5, syscall: 'readlink', path: at });
      return readlinkSync(at, ...rest);
    }) as typeof readlinkSync;
    syncBuiltinESMExports();
    try {
      await expect(snapshotDatabase(source, snapshot, { expected: statSync(source) })).rejects.toMatchObject({ code: 'EIO', path: source, syscall: 'readlink' });
    } finally {
      nodeFs.readlinkSync = readlinkSync;
      syncBuiltinESMExports();
    }
  });

  it('checks that a private copy opens and is intact', () => {
    const file = path.join(dir.path, 'good.sqlite');
    walDatabase(file, 10).close();
    expect(checkDatabaseOpens(file)).toBeUndefined();
    expect(checkIntegrity(file)).toBeUndefined();
  });

  it('reports what integrity_check finds in a damaged database', () => {
    const file = path.join(dir.path, 'damaged.sqlite');
    const db = openDatabase(file);
    db.exec('PRAGMA page_size = 4096; CREATE TABLE t (n INTEGER PRIMARY KEY, body TEXT); CREATE INDEX t_body ON t (body)');
    transaction(db, () => {
      for (let n = 1; n <= 2000; n++) db.prepare('INSERT INTO t VALUES (?, ?)').run(n, `row ${n}`.repeat(5));
    });
    const indexRoot = value(db, "SELECT rootpage FROM sqlite_schema WHERE name = 't_body'") as number;
    db.close();
    // Scribble over the index's root page, past its type byte: the schema still reads, the index does not.
    expect(indexRoot).toBeGreaterThan(1);
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(4095, 0xff), 0, 4095, (indexRoot - 1) * 4096 + 1);
    closeSync(fd);
    expect(checkDatabaseOpens(file)).toBeUndefined();
    expect(checkIntegrity(file)).toEqual({ kind: 'unusable', reason: expect.stringMatching(/^integrity_check: \*\*\* in database main \*\*\* .*page \d+/i) });
  });
});

describe('the stable private copy (cross-host path)', () => {
  let temp: TempArea;
  beforeEach(() => {
    temp = TempArea.underTmpdir(dir.path);
  });
  afterEach(() => temp.dispose());

  async function privateCopy(file: string, afterDatabaseCopy?: (attempt: number) => void | Promise<void>, options: CopyOptions = {}) {
    const handle = await fs.open(file, 'r');
    try {
      return await copyDatabasePrivately(handle, file, temp, { ...options, afterDatabaseCopy });
    } finally {
      await handle.close();
    }
  }

  it('copies the database and its WAL without opening them; SQLite recovers the copy to the last commit', async () => {
    const source = path.join(dir.path, 'live.sqlite');
    const db = walDatabase(source, 3_000);
    try {
      const copy = await privateCopy(source);
      expect(copy).toEqual({ stable: true, path: expect.any(String), companions: ['-wal'], attempts: 1 });
      if (!copy.stable) return;
      expect(readFileSync(`${copy.path}-wal`).equals(readFileSync(`${source}-wal`))).toBe(true);
      const snapshot = path.join(dir.path, 'snapshot.sqlite');
      const outcome = await snapshotDatabase(copy.path, snapshot, { privateCopy: true });
      expect(outcome.ok).toBe(true);
      const restored = openDatabase(snapshot, { readOnly: true });
      try {
        expect(value(restored, 'SELECT count(*) FROM t')).toBe(3_000);
      } finally {
        restored.close();
      }
      expect(checkIntegrity(snapshot)).toBeUndefined();
      await temp.remove(copy.path);
    } finally {
      db.close();
    }
  });

  it('copies again when the WAL restarts during the copy, and keeps commits appended meanwhile', async () => {
    const source = path.join(dir.path, 'restarting.sqlite');
    const db = walDatabase(source, 100);
    try {
      const copy = await privateCopy(source, (attempt) => {
        if (attempt === 1) {
          // A complete checkpoint, then a commit: the writer restarts the WAL with new salts.
          db.exec('PRAGMA wal_checkpoint(RESTART)');
          db.prepare('INSERT INTO t VALUES (?, NULL)').run(101);
        } else {
          db.prepare('INSERT INTO t VALUES (?, NULL)').run(200 + attempt); // an append: welcome
        }
      });
      expect(copy).toEqual({ stable: true, path: expect.any(String), companions: ['-wal'], attempts: 2 });
      if (!copy.stable) return;
      const snapshot = path.join(dir.path, 'snapshot.sqlite');
      expect((await snapshotDatabase(copy.path, snapshot, { privateCopy: true })).ok).toBe(true);
      const restored = openDatabase(snapshot, { readOnly: true });
      try {
        const numbers = column(restored, 'SELECT n FROM t ORDER BY n') as number[];
        expect(numbers.slice(0, 101)).toEqual(Array.from({ length: 101 }, (_, i) => i + 1));
        expect(numbers.length).toBeGreaterThanOrEqual(101);
      } finally {
        restored.close();
      }
      await temp.remove(copy.path);
    } finally {
      db.close();
    }
  });

  it('keeps a copy during which a checkpoint grew the database: the WAL copied after it holds those pages', async () => {
    const source = path.join(dir.path, 'checkpointed.sqlite');
    const db = walDatabase(source, 3_000); // the main file holds the schema only, the WAL the rows
    try {
      const sizeBefore = (await fs.stat(source)).size;
      // Writes the rows into the main file and leaves the WAL as it is (the next commit would
      // restart it: that is the case above).
      const copy = await privateCopy(source, () => void db.exec('PRAGMA wal_checkpoint(PASSIVE)'));
      expect((await fs.stat(source)).size).toBeGreaterThan(sizeBefore);
      expect(copy).toEqual({ stable: true, path: expect.any(String), companions: ['-wal'], attempts: 1 });
      if (!copy.stable) return;
      expect(readFileSync(copy.path).length).toBe(sizeBefore);
      const snapshot = path.join(dir.path, 'snapshot.sqlite');
      expect((await snapshotDatabase(copy.path, snapshot, { privateCopy: true })).ok).toBe(true);
      expect(checkIntegrity(snapshot)).toBeUndefined();
      const restored = openDatabase(snapshot, { readOnly: true });
      try {
        expect(value(restored, 'SELECT count(*) FROM t')).toBe(3_000);
      } finally {
        restored.close();
      }
      await temp.remove(copy.path);
    } finally {
      db.close();
    }
  });

  it('copies again when the database is written while its WAL is empty at both looks (a TRUNCATE checkpoint)', async () => {
    const source = path.join(dir.path, 'truncated.sqlite');
    const db = walDatabase(source, 100);
    try {
      db.exec('PRAGMA wal_checkpoint(TRUNCATE)'); // the WAL: 0 bytes, no header to compare
      const copy = await privateCopy(source, (attempt) => {
        // A commit and a checkpoint that writes it into the database and empties the WAL
        // again: during the database's copy it would have torn it, and the WAL copied after
        // it holds none of those pages.
        if (attempt === 1) {
          db.prepare('INSERT INTO t VALUES (?, randomblob(100))').run(101);
          db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
        }
      });
      expect(copy).toEqual({ stable: true, path: expect.any(String), companions: ['-wal'], attempts: 2 });
      if (copy.stable) await temp.remove(copy.path);
    } finally {
      db.close();
    }
  });

  it('copies again when a rollback-journal database commits during the copy', async () => {
    const source = path.join(dir.path, 'journal.sqlite');
    const db = openDatabase(source);
    try {
      db.exec('CREATE TABLE t (n INTEGER PRIMARY KEY)');
      db.prepare('INSERT INTO t VALUES (?)').run(1);
      let commits = 0;
      const copy = await privateCopy(source, (attempt) => {
        if (attempt <= 2) db.prepare('INSERT INTO t VALUES (?)').run(++commits + 1);
      });
      expect(copy).toEqual({ stable: true, path: expect.any(String), companions: [], attempts: 3 });
      if (copy.stable) await temp.remove(copy.path);
    } finally {
      db.close();
    }
  });

  it('keeps copying, past the first few copies, a database that a writer commits to under each of them', async () => {
    // A writer committing on a schedule (here: during each of the first 8 copies) that a
    // fixed number of copies cannot get between; the 9th copy holds still, well within the budget.
    const source = path.join(dir.path, 'busy-journal.sqlite');
    const db = openDatabase(source);
    try {
      db.exec('CREATE TABLE t (n INTEGER PRIMARY KEY)');
      db.prepare('INSERT INTO t VALUES (?)').run(1);
      const copy = await privateCopy(source, (attempt) => {
        if (attempt <= 8) db.prepare('INSERT INTO t VALUES (?)').run(attempt + 1);
      });
      expect(copy).toEqual({ stable: true, path: expect.any(String), companions: [], attempts: 9 });
      if (!copy.stable) return;
      const restored = openDatabase(copy.path, { readOnly: true });
      try {
        expect(column(restored, 'SELECT n FROM t ORDER BY n')).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      } finally {
        restored.close();
      }
      expect(checkIntegrity(copy.path)).toBeUndefined();
      await temp.remove(copy.path);
    } finally {
      db.close();
    }
  });

  it('gives up, saying why, on a database that changes under every copy once its time is spent, and leaves nothing', async () => {
    const source = path.join(dir.path, 'restless.sqlite');
    const db = walDatabase(source, 10);
    try {
      let n = 10;
      // No time at all: the copies every database gets, however long they take.
      const copy = await privateCopy(
        source,
        () => {
          db.exec('PRAGMA wal_checkpoint(RESTART)');
          db.prepare('INSERT INTO t VALUES (?, NULL)').run(++n);
        },
        { budgetMs: 0 },
      );
      expect(copy).toEqual({
        stable: false,
        reason: expect.stringMatching(new RegExp(`^it changed under each of ${PRIVATE_COPY_MIN_ATTEMPTS} copies in [0-9.]+ s \\(last: its WAL was restarted`)),
        attempts: PRIVATE_COPY_MIN_ATTEMPTS,
      });
      const leftovers = await fs.readdir(dir.path, { recursive: true });
      expect(leftovers.filter((name) => name.includes('private-copy'))).toEqual([]);
    } finally {
      db.close();
    }
  });
  it.runIf(process.geteuid?.() === 0)('fails, rather than keep a WAL copy cut short, when the scratch volume has room for only part of its frames', async () => {
    // A write into a volume about to fill comes back short without an error: the copy's last
    // frames were lost, and with them the transactions they held, as if never committed.
    const source = path.join(dir.path, 'large-wal.sqlite');
    const db = walDatabase(source, 2_000); // the main file holds the schema only, the WAL the rows
    const volume = path.join(dir.path, 'volume');
    mkdirSync(volume);
    sh(`mount -t tmpfs -o size=2m tmpfs '${volume}'`);
    const scratch = TempArea.underTmpdir(volume);
    try {
      const walBytes = statSync(`${source}-wal`).size;
      expect(walBytes).toBeGreaterThan(256 * 1024);
      expect(walBytes).toBeLessThan(1024 * 1024); // one write of its frames: the last
      // Room for the database's copy and half the WAL's.
      const { bavail, bsize } = statfsSync(volume);
      writeFileSync(path.join(volume, 'filler'), Buffer.alloc(bavail * bsize - statSync(source).size - 64 * 1024 - Math.floor(walBytes / 2)));
      const handle = await fs.open(source, 'r');
      try {
        await expect(copyDatabasePrivately(handle, source, scratch)).rejects.toMatchObject({ code: 'ENOSPC' });
      } finally {
        await handle.close();
      }
    } finally {
      db.close();
      await scratch.dispose();
      sh(`umount '${volume}'`);
    }
  });
});

describe('where the writers may be', () => {
  it('takes the same-host path on a local file system, the cross-host path when told or when the type cannot be read', () => {
    // The test machine's temp dir is a local file system (ext4, tmpfs, overlayfs…).
    expect(writersMayBeRemote(dir.path)).toBeUndefined();
    expect(sqlitePolicyFor(dir.path)).toEqual({ writers: 'same-host', rawFallback: false, busyTimeoutMs: 10_000, locksAcrossHosts: false });
    expect(sqlitePolicyFor(dir.path, { writers: 'cross-host', rawFallback: true })).toEqual({ writers: 'cross-host', rawFallback: true, busyTimeoutMs: 10_000, locksAcrossHosts: false });
    expect(sqlitePolicyFor(dir.path, { writers: 'cross-host', locksAcrossHosts: true }).locksAcrossHosts).toBe(true);
    const missing = path.join(dir.path, 'no-such-dir');
    expect(writersMayBeRemote(missing)).toMatch(/cannot be read \(ENOENT\)/);
    expect(sqlitePolicyFor(missing).writers).toBe('cross-host');
  });
});
