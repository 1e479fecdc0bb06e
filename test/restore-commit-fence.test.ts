// A restore frozen past the stale interval in its commit, between the journal's rename (the
// commit point) and its slot renames, while a taker judged its lock stale and worked under it:
// it re-checks its lock (token and inode) right before each slot rename, and a rename that still
// came late (frozen between that check and the rename) is undone. Before, resumed, it moved the
// tree then in the slot aside (a newer tenant, written since its taker finished the commit) and
// left the slot empty: "needs a decision" on the next command (nothing lost, but nothing in place).

import { readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { backupTenant } from '../shared/backup/backup.js';
import { LocalFileLocation } from '../shared/storage/local.js';
import { lockPathFor } from '../shared/tenant/lock.js';
import { journalPathFor } from '../shared/tenant/slot.js';
import { createSampleTenant } from '../scripts/sample-tenant.js';
import { pausedCli } from './helpers/processes.js';
import { describeTree, tempDir } from './helpers/tree.js';

let dir: ReturnType<typeof tempDir>;
let base: string;
let slot: string;
let archive: LocalFileLocation;

beforeEach(async () => {
  dir = tempDir();
  base = path.join(dir.path, 'tenants');
  slot = path.join(base, 'acme');
  createSampleTenant(slot, { sessions: 3, memoryRows: 20 });
  archive = new LocalFileLocation(path.join(dir.path, 'acme.tar.zst'));
  await backupTenant({ tenantsDir: base, tenant: 'acme', location: archive });
  writeFileSync(path.join(slot, 'marker'), 'old tenant');
});
afterEach(() => dir.cleanup());

const LOST = /^openclaw: lost the tenant's lock .*\.openclaw-lock-acme: another operation took it over \(was this process frozen for more than 60 s\?\); it stopped there and changed nothing more: run it again once that operation is done\n$/;

/** Another host's command holds the tenant's lock now: a new file (another inode and token) at the name. */
function takeOverLock(): void {
  const record = { token: 'taker', pid: 7, host: 'other', hostId: 'ffffffffffff', started: 9, operation: 'backup', startedAt: '2026-01-01T00:00:00Z' };
  const temp = path.join(base, '.openclaw-lock-acme.taker');
  writeFileSync(temp, JSON.stringify(record));
  renameSync(temp, lockPathFor(base, 'acme'));
}

describe('a restore frozen in its commit whose lock was taken over', () => {
  it('moves nothing once it wakes before its first slot rename: the slot, staging and journal are the taker\'s to settle', async () => {
    const paused = await pausedCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive.path, '--force'], 'commit:journal-written');
    const old = describeTree(slot);
    const before = readdirSync(base).sort();
    takeOverLock();
    const { status, stderr } = await paused.go();
    expect(status, stderr).toBe(3);
    expect(stderr).toMatch(LOST);
    expect(readdirSync(base).sort()).toEqual(before);
    expect(describeTree(slot)).toEqual(old);
  });

  it('puts back a newer tenant it moved aside late (its taker had finished the commit and another restore replaced the slot)', async () => {
    const paused = await pausedCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive.path, '--force'], 'commit:old-judged');
    // The taker's recovery: finished the commit by the journal, then released.
    const journal = JSON.parse(readFileSync(journalPathFor(base, 'acme'), 'utf8')) as { staging: string; aside: string };
    await fs.rename(slot, path.join(base, journal.aside));
    await fs.rename(path.join(base, journal.staging), slot);
    await fs.rm(path.join(base, journal.aside), { recursive: true });
    await fs.rm(journalPathFor(base, 'acme'));
    // Then a newer tenant took the slot (another restore --force, done), and a backup holds the lock now.
    await fs.rm(slot, { recursive: true });
    createSampleTenant(slot, { sessions: 1, memoryRows: 2 });
    writeFileSync(path.join(slot, 'marker'), 'newer tenant');
    const newer = describeTree(slot);
    takeOverLock();
    const { status, stderr } = await paused.go();
    expect(status, stderr).toBe(3);
    expect(stderr).toMatch(LOST);
    expect(readdirSync(base).sort()).toEqual(['.openclaw-lock-acme', 'acme']);
    expect(describeTree(slot)).toEqual(newer);
  });
});
