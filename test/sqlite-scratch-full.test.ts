// A live SQLite database whose writers may be on another host (the functions' EFS) is
// snapshotted from a private copy in the scratch space (TMPDIR; on Lambda its /tmp). With room
// for the copy but not for the `-shm` SQLite makes to open a WAL database, the copy could not
// be checked (SQLITE_IOERR): that was taken for a database SQLite cannot read, and the live
// database was archived raw, maybe inconsistent, with only a warning, without
// --sqlite-raw-fallback. It is the scratch space that is short, as when the copy itself does
// not fit: the backup stores nothing and says so.

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { backupTenant } from '../shared/backup/backup.js';
import { SqliteSnapshotError } from '../shared/errors.js';
import { LocalFileLocation } from '../shared/storage/local.js';
import { openDatabase } from './helpers/sqlite.js';

describe('a WAL database snapshotted from a private copy, the scratch space short of room for its -shm', () => {
  // Made and mounted in beforeAll (a run filtering this block out runs no afterAll for it).
  let dir = '';
  let scratch = '';
  let mounted = false;

  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sqlite-scratch-full-'));
    scratch = path.join(dir, 'scratch');
    mkdirSync(scratch);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', scratch], { stdio: 'ignore' });
      mounted = true;
    } catch {
      mounted = false;
    }
  });
  afterAll(() => {
    vi.unstubAllEnvs();
    if (mounted) execFileSync('umount', [scratch]);
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('stores nothing and says there is no room, instead of archiving the live database raw unasked', async (context) => {
    if (!mounted) return context.skip('mounting a tmpfs needs root');
    const tenantsDir = path.join(dir, 'tenants');
    const database = path.join(tenantsDir, 'acme', 'memory', 'agent.sqlite');
    mkdirSync(path.dirname(database), { recursive: true });
    const db = openDatabase(database);
    db.exec('PRAGMA journal_mode = WAL; CREATE TABLE notes (body TEXT);');
    for (let i = 0; i < 40; i++) db.prepare('INSERT INTO notes VALUES (?)').run('x'.repeat(1000));
    db.close();
    const { size } = statSync(database);
    // Room for the copy and one more page: not for the 32 KiB -shm.
    const { bavail, bsize } = statfsSync(scratch);
    writeFileSync(path.join(scratch, 'fill'), Buffer.alloc(bavail * bsize - size - 4096));
    vi.stubEnv('TMPDIR', scratch);

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
