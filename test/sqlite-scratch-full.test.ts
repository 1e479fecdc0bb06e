// A live SQLite database whose writers may be on another host (the functions' EFS) is
// snapshotted from a private copy in the scratch space (TMPDIR; on Lambda its /tmp). With room
// for the copy but not for the `-shm` SQLite makes to open a WAL database, the copy could not
// be checked (SQLITE_IOERR): that was taken for a database SQLite cannot read, and the live
// database was archived raw, maybe inconsistent, with only a warning, without
// --sqlite-raw-fallback. It is the scratch space that is short, as when the copy itself does
// not fit: the backup stores nothing and says so.

import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { backupTenant } from '../shared/backup/backup.js';
import { SqliteSnapshotError } from '../shared/errors.js';
import { LocalFileLocation } from '../shared/storage/local.js';
import { openDatabase } from './helpers/sqlite.js';
import { onTmpfs } from './helpers/tmpfs.js';

/** A directory made for the block (in beforeAll: a run filtering the block out makes none), removed after it. */
function dirForBlock(prefix: string): { dir: string } {
  const at = { dir: '' };
  beforeAll(() => {
    at.dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  });
  afterAll(() => {
    vi.unstubAllEnvs();
    if (at.dir !== '') rmSync(at.dir, { recursive: true, force: true });
  });
  return at;
}

/** The scratch space of these tests: a 1 MiB tmpfs at `scratch` in `dir`, for the test (onTmpfs). */
const SMALL_SCRATCH = 'size=1m';

function writeNotesDatabase(database: string, journalMode: 'WAL' | 'DELETE', rows: number): void {
  mkdirSync(path.dirname(database), { recursive: true });
  const db = openDatabase(database);
  db.exec(`PRAGMA journal_mode = ${journalMode}; CREATE TABLE notes (body TEXT);`);
  for (let i = 0; i < rows; i++) db.prepare('INSERT INTO notes VALUES (?)').run('x'.repeat(1000));
  db.close();
}

function fillScratchLeaving(scratch: string, bytes: number): void {
  const { bavail, bsize } = statfsSync(scratch);
  writeFileSync(path.join(scratch, 'fill'), Buffer.alloc(bavail * bsize - bytes));
  vi.stubEnv('TMPDIR', scratch);
}

describe('a WAL database snapshotted from a private copy, the scratch space short of room for its -shm', () => {
  const at = dirForBlock('sqlite-scratch-full-');

  it('stores nothing and says there is no room, instead of archiving the live database raw unasked', async (context) => {
    const { dir } = at;
    await onTmpfs(context, path.join(dir, 'scratch'), SMALL_SCRATCH, async (scratch) => {
      const tenantsDir = path.join(dir, 'tenants');
      const database = path.join(tenantsDir, 'acme', 'memory', 'agent.sqlite');
      writeNotesDatabase(database, 'WAL', 40);
      // Room for the copy and one more page: not for the 32 KiB -shm.
      fillScratchLeaving(scratch, statSync(database).size + 4096);

      const archive = path.join(dir, 'acme.tar.zst');
      const outcome = await backupTenant({ tenantsDir, tenant: 'acme', location: new LocalFileLocation(archive), sqlite: { writers: 'cross-host' } }).then(
        (result) => result,
        (error: unknown) => error,
      );
      expect(outcome).toBeInstanceOf(SqliteSnapshotError);
      expect((outcome as Error).message).toMatch(/^no consistent copy of the SQLite database memory\/agent\.sqlite: no room to open its private copy in .* \(SQLITE_IOERR.*\); nothing was stored/);
      expect(readdirSync(dir).sort()).toEqual(['scratch', 'tenants']);
      expect(readdirSync(scratch)).toEqual(['fill']);
    });
  });
});

describe('a WAL database snapshotted with the scratch space short of inodes', () => {
  // SQLite could not create the snapshot's file, or the -shm of the private copy it opens
  // (SQLITE_CANTOPEN): taken for a database it cannot read, the live file was archived raw
  // with a warning, without --sqlite-raw-fallback (TMPDIR on a tmpfs of 2 inodes; cross-host, 4;
  // an idle cross-host one, whose private copy PRAGMA integrity_check opens, 3).
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sqlite-scratch-inodes-'));
  });
  afterAll(() => {
    vi.unstubAllEnvs();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  for (const [writers, companions] of [['same-host', true], ['cross-host', true], ['cross-host', false]] as const) {
    it(`with ${writers} writers, ${companions ? 'its -wal and -shm beside it' : 'idle (no -wal)'}, at every count of inodes left, stores a consistent snapshot or nothing, never the live database raw unasked`, async (context) => {
      const at = path.join(dir, `${writers}-${companions}`);
      const tenantsDir = path.join(at, 'tenants');
      const database = path.join(tenantsDir, 'acme', 'memory', 'agent.sqlite');
      mkdirSync(path.dirname(database), { recursive: true });
      // With its -wal and -shm, as a writer's crash leaves them (one open in this process would be taken for another file's descriptors).
      const writer = path.join(at, 'writer.sqlite');
      const db = openDatabase(writer);
      db.exec('PRAGMA journal_mode = WAL; CREATE TABLE notes (body TEXT);');
      for (let i = 0; i < 40; i++) db.prepare('INSERT INTO notes VALUES (?)').run('x'.repeat(1000));
      if (companions) for (const suffix of ['', '-wal', '-shm']) copyFileSync(`${writer}${suffix}`, `${database}${suffix}`);
      db.close();
      if (!companions) copyFileSync(writer, database);
      const scratch = path.join(at, 'scratch');
      vi.stubEnv('TMPDIR', scratch);
      const seen = new Set<string>();
      try {
        for (let inodes = 2; inodes <= 12 && seen.size < 2; inodes++) {
          await onTmpfs(context, scratch, `size=8m,nr_inodes=${inodes}`, async () => {
            const archive = path.join(at, `acme-${inodes}.tar.zst`);
            const outcome = await backupTenant({ tenantsDir, tenant: 'acme', location: new LocalFileLocation(archive), sqlite: { writers } }).then(
              (result) => result,
              (error: unknown) => error,
            );
            if (outcome instanceof Error) {
              expect(outcome, `${inodes} inodes`).toBeInstanceOf(SqliteSnapshotError);
              expect(outcome.message).toMatch(/^no consistent copy of the SQLite database memory\/agent\.sqlite: .*; nothing was stored/);
              seen.add('refused');
            } else {
              expect(JSON.stringify(outcome), `${inodes} inodes`).not.toMatch(/raw/);
              seen.add('stored');
            }
            expect(readdirSync(scratch)).toEqual([]);
          });
        }
      } finally {
        vi.unstubAllEnvs();
      }
      expect([...seen].sort()).toEqual(['refused', 'stored']);
    });
  }
});

describe('a rollback-journal database snapshotted in place under the read lock (the functions), the scratch space short of room for the snapshot', () => {
  const at = dirForBlock('sqlite-scratch-locked-');

  it('says there is no room for the snapshot, without copying the database privately into the same full space', async (context) => {
    const { dir } = at;
    await onTmpfs(context, path.join(dir, 'scratch'), SMALL_SCRATCH, async (scratch) => {
      const tenantsDir = path.join(dir, 'tenants');
      writeNotesDatabase(path.join(tenantsDir, 'acme', 'memory', 'journal.sqlite'), 'DELETE', 200);
      fillScratchLeaving(scratch, 64 * 1024);

      const outcome = await backupTenant({
        tenantsDir,
        tenant: 'acme',
        location: new LocalFileLocation(path.join(dir, 'acme.tar.zst')),
        sqlite: { writers: 'cross-host', locksAcrossHosts: true },
      }).then(
        (result) => result,
        (error: unknown) => error,
      );
      expect(outcome).toBeInstanceOf(SqliteSnapshotError);
      expect((outcome as Error).message).toMatch(/^no consistent copy of the SQLite database memory\/journal\.sqlite: no room for the snapshot in .* \(SQLITE_FULL.*\); nothing was stored/);
      expect(readdirSync(scratch)).toEqual(['fill']);
    });
  });
});
