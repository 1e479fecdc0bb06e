// A dry run says a tenant is busy where the real run would be refused busy: a live process of
// this host holds the tenant's lock (a backup paused at lock:acquired). It reads the lock, takes
// nothing and writes nothing, and exits 3 as the real run does, with the real run's message. A
// dead holder's lock (the real run takes it over) refuses nothing.

import { linkSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { BackupPlan } from '../shared/backup/backup-plan.js';
import type { RestorePlan } from '../shared/restore/restore-plan.js';
import { backupAt, makeTenants } from './helpers/backups.js';
import { pausedCli, type PausedCli } from './helpers/processes.js';
import { describeTree, runCli, tempDir } from './helpers/tree.js';

const dir = tempDir('openclaw-dry-busy-');
const tenantsDir = path.join(dir.path, 'tenants');
const archive = path.join(dir.path, 'backups', 'acme.tar.zst');
const lockPath = path.join(tenantsDir, '.openclaw-lock-acme');
let holder: PausedCli | undefined;

beforeAll(async () => {
  makeTenants(tenantsDir, ['acme']);
  await backupAt(tenantsDir, 'acme', archive, new Date('2026-06-03T03:00:00.000Z'));
});
afterAll(async () => {
  await holder?.kill();
  dir.cleanup();
});

const backupDryRun = () => runCli(['--tenants-dir', tenantsDir, '--json', 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'out', 'b.tar.zst'), '--dry-run']);
const restoreDryRun = () => runCli(['--tenants-dir', tenantsDir, 'tenants', 'restore', '--from', archive, '--force', '--dry-run']);

describe('dry runs while a live process holds the tenant lock', () => {
  it('backup and restore --force dry runs are refused busy (exit 3) with the real run\'s message, and write nothing', async () => {
    holder = await pausedCli(['--tenants-dir', tenantsDir, 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'out', 'held.tar.zst')], 'lock:acquired');
    const before = describeTree(dir.path);

    const backup = backupDryRun();
    expect(backup.status).toBe(3);
    const plan = JSON.parse(backup.stdout) as BackupPlan;
    const busy = `tenant "acme" is busy: a backup by pid ${holder.child.pid} on `;
    expect(plan.refusal?.code).toBe('TENANT_BUSY');
    expect(plan.refusal?.message).toContain(busy);

    const restore = restoreDryRun();
    expect(restore.status).toBe(3);
    expect(restore.stdout).toContain(`  the restore would be REFUSED: ${busy}`);
    expect(describeTree(dir.path)).toEqual(before);

    // The real runs say the same, word for word.
    const real = runCli(['--tenants-dir', tenantsDir, 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'out', 'b.tar.zst')]);
    expect(real.status).toBe(3);
    expect(real.stderr).toBe(`openclaw: ${plan.refusal!.message}\n`);
    const realRestore = runCli(['--tenants-dir', tenantsDir, 'tenants', 'restore', '--from', archive, '--force']);
    expect(realRestore.status).toBe(3);
    expect(realRestore.stderr).toBe(`openclaw: ${plan.refusal!.message}\n`);
  });

  it('a live lock a taker moved to the aside name refuses them too, as the real run (which hands it back) is', () => {
    linkSync(lockPath, `${lockPath}.aside`);
    unlinkSync(lockPath);
    const before = describeTree(dir.path);
    const backup = backupDryRun();
    expect(backup.status).toBe(3);
    expect((JSON.parse(backup.stdout) as BackupPlan).refusal?.code).toBe('TENANT_BUSY');
    expect(restoreDryRun().status).toBe(3);
    expect(describeTree(dir.path)).toEqual(before);
    linkSync(`${lockPath}.aside`, lockPath);
    unlinkSync(`${lockPath}.aside`);
  });

  it('a dead holder\'s lock refuses no dry run (the real run takes it over), and the lock is left as it was', async () => {
    await holder!.kill();
    holder = undefined;
    const before = describeTree(dir.path);
    const backup = backupDryRun();
    expect(backup.stderr).toBe('');
    expect(backup.status).toBe(0);
    expect((JSON.parse(backup.stdout) as BackupPlan).refusal).toBeUndefined();
    const restore = runCli(['--tenants-dir', tenantsDir, '--json', 'tenants', 'restore', '--from', archive, '--force', '--dry-run']);
    expect(restore.status).toBe(0);
    expect((JSON.parse(restore.stdout) as RestorePlan).refusal).toBeUndefined();
    expect(describeTree(dir.path)).toEqual(before);
    expect(runCli(['--tenants-dir', tenantsDir, 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'out', 'b.tar.zst')]).status).toBe(0);
  });
});
