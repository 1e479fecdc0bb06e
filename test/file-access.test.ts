// The two ways of calling the file system (file-access.ts): synchronous calls on local disks,
// many promise calls in flight on network file systems. They must be indistinguishable in
// what they produce.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { backupTenant } from '../shared/backup/backup.js';
import { fileAccessFor, PARALLEL_ACCESS, SYNC_ACCESS } from '../shared/file-access.js';
import { restoreTenant } from '../shared/restore/restore.js';
import { LocalFileLocation } from '../shared/storage/local.js';
import { createSampleTenant } from '../scripts/sample-tenant.js';
import { describeTree, tempDir } from './helpers/tree.js';

const dir = tempDir();
afterAll(() => dir.cleanup());

describe('file-system call modes', () => {
  it('treats this machine\'s temp dir as a local disk', () => {
    expect(fileAccessFor(dir.path)).toBe(SYNC_ACCESS);
  });

  it('writes byte-identical archives and restores identical trees in both modes', async () => {
    const base = path.join(dir.path, 'tenants');
    createSampleTenant(path.join(base, 'acme'), { sessions: 30, notes: 200 });
    const createdAt = new Date('2026-06-03T03:00:00Z');
    const archives = { sync: path.join(dir.path, 'sync.tar.zst'), parallel: path.join(dir.path, 'parallel.tar.zst') };
    const accesses = { sync: SYNC_ACCESS, parallel: PARALLEL_ACCESS };
    for (const kind of ['sync', 'parallel'] as const) {
      await backupTenant({ tenantsDir: base, tenant: 'acme', location: new LocalFileLocation(archives[kind]), fileAccess: accesses[kind], now: () => createdAt });
    }
    expect(readFileSync(archives.parallel).equals(readFileSync(archives.sync))).toBe(true);

    const original = describeTree(path.join(base, 'acme'), { exclude: (p) => p === 'pty' });
    for (const kind of ['sync', 'parallel'] as const) {
      const target = path.join(dir.path, `restored-${kind}`);
      const result = await restoreTenant({ tenantsDir: target, location: new LocalFileLocation(archives.sync), fileAccess: accesses[kind] });
      expect(result.verified).toBe(true);
      expect(describeTree(path.join(target, 'acme'))).toEqual(original);
    }
  });
});
