// A local directory of every tenant's backups, more files than one whole listing holds: the
// layout `backup --all --to DIR/{tenant}/{date}.tar.zst` makes (2,000 tenants keeping 60 days
// each are 120,000 files). Such a directory was refused whole by tenants backups and prune
// ("holds more than 100000 files: give a narrower directory", exit 1), while the same backups
// below an S3 prefix were listed in parts: a local directory is now walked in parts as S3 is.
// The bound (MAX_LISTED_OBJECTS, 100,000) is 1,000 here, so the test stays small.

import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { listBackups, type BackupEntry } from '../shared/catalog/backups.js';
import { LocalArchiveStore } from '../shared/storage/local-store.js';
import { backupAt, DAY, makeTenants } from './helpers/backups.js';
import { runMain } from './helpers/run-main.js';
import { tempDir } from './helpers/tree.js';

vi.mock('../shared/storage/archive-store.js', async (importOriginal) => ({ ...(await importOriginal<typeof import('../shared/storage/archive-store.js')>()), MAX_LISTED_OBJECTS: 1000 }));

const dir = tempDir('openclaw-local-parts-');
const everyTenant = path.join(dir.path, 'backups');
const JUNE_1 = new Date('2026-06-01T03:00:00.000Z');

beforeAll(async () => {
  const tenantsDir = path.join(dir.path, 'tenants');
  makeTenants(tenantsDir, ['acme']);
  for (const day of [1, 2, 3]) await backupAt(tenantsDir, 'acme', path.join(everyTenant, 'acme', `${day}.tar.zst`), new Date(JUNE_1.getTime() + (day - 1) * DAY));
  // A copy of one (cp -p) is the same backup, not another.
  copyFileSync(path.join(everyTenant, 'acme', '1.tar.zst'), path.join(everyTenant, 'acme', '1-copy.tar.zst'));
  // Others' backups: 3 tenants of 500 files, one byte each (a listing looks at their first bytes alone).
  for (let tenant = 0; tenant < 3; tenant++) {
    const other = path.join(everyTenant, `other-${tenant}`);
    mkdirSync(other);
    for (let day = 0; day < 500; day++) writeFileSync(path.join(other, `${day}.tar.zst`), 'x');
  }
});
afterAll(() => dir.cleanup());

describe('a local directory of more files than one whole listing holds', () => {
  it('is still refused by a whole listing', async () => {
    await expect(new LocalArchiveStore(everyTenant).list()).rejects.toThrow(`${everyTenant} holds more than 1000 files: give a narrower directory`);
  });

  it('lists the tenant\'s backups in it, counting the others', async () => {
    const run = await runMain(['--json', 'tenants', 'backups', 'acme', '--in', everyTenant]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const listing = JSON.parse(run.stdout) as { backups: BackupEntry[]; otherObjects: number };
    expect(listing.backups.map((entry) => entry.name)).toEqual(['acme/3.tar.zst', 'acme/2.tar.zst', ...listing.backups.slice(2).map((entry) => entry.name)]);
    expect(listing.backups.slice(2).map((entry) => entry.name).sort()).toEqual(['acme/1-copy.tar.zst', 'acme/1.tar.zst']);
    expect(listing.otherObjects).toBe(1500);
  });

  // Each file's device and inode was kept, by path, for every file the walk passed: 150,000 files in 2,000 directories, a
  // prune of one tenant's 75 took 120 MiB RSS, now 90 (75,000 files: 108, now 76).
  it('keeps what a removal compares with only for the files it looked at, not for every file the walk passed', async () => {
    const store = new LocalArchiveStore(everyTenant);
    const listing = await listBackups(store, 'acme', { looksAt: (object) => object.name.startsWith('acme/') });
    expect(listing.backups).toHaveLength(4);
    expect(listing.notLookedAt).toBe(1500);
    expect([...store['listed'].keys()].map((location) => path.relative(everyTenant, location)).sort()).toEqual(['acme/1-copy.tar.zst', 'acme/1.tar.zst', 'acme/2.tar.zst', 'acme/3.tar.zst']);
  });

  it('prunes the tenant\'s backups in it, looking only at those its names hold, and removes what its dry run said', async () => {
    const dryRun = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', everyTenant, '--keep-last', '1', '--dry-run']);
    expect(dryRun.stderr).toBe('');
    expect(dryRun.status).toBe(0);
    const planned = JSON.parse(dryRun.stdout) as { keep: { location: string }[]; remove: { location: string }[]; notes: string[] };
    expect(planned.keep.map((decision) => path.basename(decision.location))).toEqual(['3.tar.zst']);
    expect(planned.remove.map((decision) => path.basename(decision.location)).sort()).toEqual(['1-copy.tar.zst', '1.tar.zst', '2.tar.zst']);
    expect(planned.notes[0]).toMatch(/^1500 objects in .* whose names do not hold "acme" were not looked at/);
    const run = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', everyTenant, '--keep-last', '1']);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const done = JSON.parse(run.stdout) as { removed: number; remove: { location: string }[] };
    expect(done.remove.map((decision) => decision.location)).toEqual(planned.remove.map((decision) => decision.location));
    expect(done.removed).toBe(3);
    expect(readdirSync(path.join(everyTenant, 'acme'))).toEqual(['3.tar.zst']);
    expect(readdirSync(path.join(everyTenant, 'other-2'))).toHaveLength(500);
  });
});
