// A read-only copy of the tenant base dir (a file-system snapshot, a read-only mount: EROFS on
// the lock file). Such a tenant cannot change under the backup, so it is backed up without a
// lock, saying so; the sweep of leftovers (which would need to write) does not fail the
// command; a tenant the snapshot caught mid-commit is refused. Needs root for the read-only
// bind mount (mount --bind, then remount ro); skipped with a note where that is not allowed.

import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { createSampleTenant } from '../scripts/sample-tenant.js';
import { hiddenNames } from '../shared/tenant/hidden-names.js';
import { journalPathFor } from '../shared/tenant/slot.js';
import { describeTree, runCli, tempDir } from './helpers/tree.js';

function canBindReadOnly(): boolean {
  if (process.geteuid?.() !== 0) return false;
  const probe = tempDir('openclaw-ro-probe-');
  try {
    const target = path.join(probe.path, 'ro');
    mkdirSync(target);
    if (spawnSync('mount', ['--bind', probe.path, target]).status !== 0) return false;
    const ok = spawnSync('mount', ['-o', 'remount,ro,bind', target]).status === 0;
    spawnSync('umount', [target]);
    return ok;
  } finally {
    probe.cleanup();
  }
}

const READ_ONLY_MOUNTS = canBindReadOnly();
if (!READ_ONLY_MOUNTS) console.warn('backup-read-only: skipped (needs root and read-only bind mounts)');

const notPty = (relPath: string) => relPath === 'pty' || relPath.startsWith('pty/');

describe.skipIf(!READ_ONLY_MOUNTS)('a backup from a read-only base dir', () => {
  let dir: ReturnType<typeof tempDir>;
  let live: string;
  let snapshot: string;
  let mounted = false;

  beforeEach(() => {
    dir = tempDir('openclaw-ro-');
    live = path.join(dir.path, 'live');
    snapshot = path.join(dir.path, 'snapshot');
    createSampleTenant(path.join(live, 'acme'), { sessions: 3, memoryRows: 20 });
    createSampleTenant(path.join(live, 'beta'), { sessions: 1, memoryRows: 5, mediaFiles: 0 });
    createSampleTenant(path.join(live, 'gamma'), { sessions: 1, memoryRows: 5, mediaFiles: 0 });
    // Leftovers the sweep would settle on a writable base dir: a restore of beta that
    // stopped while extracting, and one of gamma caught committing.
    mkdirSync(path.join(live, hiddenNames.staging('beta')));
    writeFileSync(journalPathFor(live, 'beta'), JSON.stringify({ tenant: 'beta', phase: 'extracting', staging: hiddenNames.staging('beta') }));
    writeFileSync(journalPathFor(live, 'gamma'), JSON.stringify({ tenant: 'gamma', phase: 'committing', staging: hiddenNames.staging('gamma') }));
    mkdirSync(snapshot);
    expect(spawnSync('mount', ['--bind', live, snapshot]).status).toBe(0);
    mounted = true;
    expect(spawnSync('mount', ['-o', 'remount,ro,bind', snapshot]).status).toBe(0);
  });

  afterEach(() => {
    if (mounted) spawnSync('umount', [snapshot]);
    mounted = false;
    dir.cleanup();
  });

  it('backs the tenant up without a lock, says so, and the archive restores to the same tree', () => {
    const archive = path.join(dir.path, 'acme.tar.zst');
    const run = runCli(['--tenants-dir', snapshot, '--json', 'tenants', 'backup', 'acme', '--to', archive]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const result = JSON.parse(run.stdout) as { notices: string[]; warnings: unknown[] };
    expect(result.notices).toEqual([`the tenant base dir ${snapshot} is read-only (a snapshot?): the tenant cannot change, so it was backed up without taking its lock`]);
    expect(result.warnings).toEqual([]); // the SQLite memory was snapshotted, not archived raw

    const human = runCli(['--tenants-dir', snapshot, 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'human.tar.zst')]);
    expect(human.stdout).toContain(`  note: the tenant base dir ${snapshot} is read-only (a snapshot?)`);

    const restored = path.join(dir.path, 'restored');
    expect(runCli(['--tenants-dir', restored, 'tenants', 'restore', '--from', archive]).status).toBe(0);
    expect(describeTree(path.join(restored, 'acme'))).toEqual(describeTree(path.join(live, 'acme'), { exclude: notPty }));
  });

  it('lists the tenants: the sweep of leftovers it cannot settle does not fail the listing', () => {
    const run = runCli(['--tenants-dir', snapshot, '--json', 'tenants', 'list']);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const tenants = (JSON.parse(run.stdout) as { tenants: { name: string; state: string }[] }).tenants;
    expect(tenants.map((tenant) => `${tenant.name} ${tenant.state}`)).toEqual(['acme ok', 'beta ok', 'gamma mid-commit']);
    // A tenant with leftovers of an interrupted restore from before its commit: its tree is whole.
    expect(runCli(['--tenants-dir', snapshot, 'tenants', 'backup', 'beta', '--to', path.join(dir.path, 'beta.tar.zst')]).status).toBe(0);
  });

  it('refuses a tenant the snapshot caught mid-commit', () => {
    const run = runCli(['--tenants-dir', snapshot, 'tenants', 'backup', 'gamma', '--to', path.join(dir.path, 'gamma.tar.zst')]);
    expect(run.status).toBe(3);
    expect(run.stderr).toBe(
      `openclaw: tenant "gamma" was being moved into place by a restore when this read-only copy of ${snapshot} was taken: back up the live base dir, or a copy taken later\n`,
    );
  });

  it('still takes the lock (and says nothing) on the writable base dir', () => {
    const run = runCli(['--tenants-dir', live, '--json', 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'live.tar.zst')]);
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout).notices).toEqual([]);
  });
});
