// The two ways of calling the file system (io-mode.ts): synchronous calls on local disks,
// many promise calls in flight on network file systems. They must be indistinguishable in
// what they produce.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { backupTenant } from '../shared/backup/backup.js';
import { ioModeFor } from '../shared/io-mode.js';
import { restoreTenant } from '../shared/restore/restore.js';
import { LocalFileLocation } from '../shared/storage/local.js';
import { createSampleTenant } from '../scripts/sample-tenant.js';
import { describeTree, tempDir } from './helpers/tree.js';

const dir = tempDir();
afterAll(() => dir.cleanup());

describe('file-system call modes', () => {
  it('treats this machine\'s temp dir as a local disk', () => {
    expect(ioModeFor(dir.path)).toBe('sync');
  });

  it('writes byte-identical archives and restores identical trees in both modes', async () => {
    const base = path.join(dir.path, 'tenants');
    createSampleTenant(path.join(base, 'acme'), { sessions: 30, notes: 200 });
    const createdAt = new Date('2026-06-03T03:00:00Z');
    const archives = { sync: path.join(dir.path, 'sync.tar.zst'), parallel: path.join(dir.path, 'parallel.tar.zst') };
    for (const ioMode of ['sync', 'parallel'] as const) {
      await backupTenant({ tenantsDir: base, tenant: 'acme', location: new LocalFileLocation(archives[ioMode]), ioMode, now: () => createdAt });
    }
    expect(readFileSync(archives.parallel).equals(readFileSync(archives.sync))).toBe(true);

    const original = describeTree(path.join(base, 'acme'), { exclude: (p) => p === 'pty' });
    for (const ioMode of ['sync', 'parallel'] as const) {
      const target = path.join(dir.path, `restored-${ioMode}`);
      const result = await restoreTenant({ tenantsDir: target, location: new LocalFileLocation(archives.sync), ioMode });
      expect(result.verified).toBe(true);
      expect(describeTree(path.join(target, 'acme'))).toEqual(original);
    }
  });
});
