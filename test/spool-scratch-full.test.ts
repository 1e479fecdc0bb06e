// A large file modified in the last minute is copied to a spool file in the scratch space
// (TMPDIR) before it is archived; with no room there it is streamed after all. With no inode
// left there, the scratch directory itself could not be made, and the whole backup failed
// ("cannot make a scratch directory … no inode left") where one with no byte left succeeded.

import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { backupTenant } from '../shared/backup/backup.js';
import { LocalFileLocation } from '../shared/storage/local.js';
import { onTmpfs } from './helpers/tmpfs.js';

describe('a large file written a moment ago, the scratch space full', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'spool-scratch-full-'));
  });
  afterAll(() => {
    vi.unstubAllEnvs();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  for (const [full, options] of [
    ['no inode left', 'size=8m,nr_inodes=1'],
    ['no byte left', 'size=1m'],
  ] as const) {
    it(`with ${full} there, is streamed instead of spooled: the backup succeeds and holds the file`, async (context) => {
      const at = path.join(dir, options.replace(/\W/g, '-'));
      const tenantsDir = path.join(at, 'tenants');
      const content = randomBytes(9 * 1024 * 1024);
      mkdirSync(path.join(tenantsDir, 'acme'), { recursive: true });
      writeFileSync(path.join(tenantsDir, 'acme', 'recording.bin'), content);
      await onTmpfs(context, path.join(at, 'scratch'), options, async (scratch) => {
        try {
          if (full === 'no byte left') {
            const { bavail, bsize } = statfsSync(scratch);
            writeFileSync(path.join(scratch, 'fill'), Buffer.alloc(bavail * bsize));
          }
          expect(statfsSync(scratch)[full === 'no inode left' ? 'ffree' : 'bavail']).toBe(0);
          vi.stubEnv('TMPDIR', scratch);
          const archive = path.join(at, 'acme.tar.zst');
          const result = await backupTenant({ tenantsDir, tenant: 'acme', location: new LocalFileLocation(archive) });
          expect(result).toMatchObject({ files: 1, warnings: [] });
          const restored = execFileSync('sh', ['-c', `zstd -dc '${archive}' | tar -xOf - tenants/acme/recording.bin`], { maxBuffer: 64 * 1024 * 1024 });
          expect(createHash('sha256').update(restored).digest('hex')).toBe(createHash('sha256').update(content).digest('hex'));
          expect(readdirSync(scratch)).toEqual(full === 'no byte left' ? ['fill'] : []);
        } finally {
          vi.unstubAllEnvs();
        }
      });
    });
  }
});
