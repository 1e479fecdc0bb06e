// The two ways of calling the file system (file-access.ts): synchronous calls on local disks,
// many promise calls in flight on network file systems. They must be indistinguishable in
// what they produce.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { backupTenant } from '../shared/backup/backup.js';
import { fileAccessFor, PARALLEL_ACCESS, poolThreads, SYNC_ACCESS } from '../shared/file-access.js';
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

  it.each([
    [undefined, 4],
    ['64', 64],
    ['8 ', 8],
    ['0', 1],
    ['many', 1],
    ['5000', 1024],
    ['-1', 1024],
  ])('reads UV_THREADPOOL_SIZE=%j as libuv does: %i threads', (setting, threads) => {
    expect(poolThreads(setting)).toBe(threads);
  });

  it('writes byte-identical archives and restores identical trees in both modes', async () => {
    const base = path.join(dir.path, 'tenants');
    createSampleTenant(path.join(base, 'acme'), { sessions: 30, notes: 200 });
    // Enough small files that a local backup reads them on reader threads (over 1,024), in
    // several directories, and a file larger than a reader's arena (4 MiB).
    for (let d = 0; d < 3; d++) {
      mkdirSync(path.join(base, 'acme', 'cache', `shard-${d}`), { recursive: true });
      for (let f = 0; f < 500; f++) writeFileSync(path.join(base, 'acme', 'cache', `shard-${d}`, `entry-${f}.json`), `{"shard":${d},"entry":${f}}\n`.repeat(f % 7));
    }
    writeFileSync(path.join(base, 'acme', 'cache', 'large.bin'), Buffer.alloc(5 * 1024 * 1024 + 3, 7));
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
