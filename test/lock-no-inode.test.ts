// A dead holder's lock on a disk with no inode left is taken over without a claim file, unless
// another taker's claim is there that may live. One of another host (a Lambda killed mid-takeover
// on EFS) is judged gone by its age on the file system's clock, which takes a file to read:
// without an inode it never is, however old. Every command then said "busy: another command is
// taking over its lock" (exit 3) for as long as the disk stayed full; the failure is the
// missing inode, and freeing one lets the next command judge the claim and take the lock.

import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statfsSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { FileSystemError, TenantBusyError } from '../shared/errors.js';
import { acquireTenantLock, lockPathFor } from '../shared/tenant/lock.js';
import { hostId, ownerTag } from '../shared/tenant/process-owner.js';
import { onTmpfs } from './helpers/tmpfs.js';
import { tempDir } from './helpers/tree.js';

describe('a dead lock on a disk with no inode left', () => {
  const dir = tempDir('openclaw-lock-no-inode-');
  afterAll(() => dir.cleanup());

  it("says no inode is left, not busy, when another host's claim on it cannot be judged; with an inode freed, the lock is taken", async (context) => {
    const disk = path.join(dir.path, 'disk');
    await onTmpfs(context, disk, 'size=1m,nr_inodes=16', async () => {
      const base = path.join(disk, 'tenants');
      mkdirSync(path.join(base, 'acme'), { recursive: true });
      const lockPath = lockPathFor(base, 'acme');
      const old = new Date(Date.now() - 600_000);
      writeFileSync(lockPath, JSON.stringify({ token: 'h1', pid: spawnSync('true').pid!, host: 'h', hostId: hostId(), started: 0, operation: 'restore', startedAt: old.toISOString() }));
      utimesSync(lockPath, old, old);
      // A taker on another host, killed mid-takeover ten minutes ago.
      const claim = `${lockPath}.${ownerTag({ pid: 4242, started: 1, hostId: 'aaaaaaaaaaaa' })}.0123456789ab.taking`;
      writeFileSync(claim, '');
      utimesSync(claim, old, old);
      const filler = path.join(disk, 'filler');
      mkdirSync(filler);
      for (let i = 0; ; i++) {
        try {
          writeFileSync(path.join(filler, String(i)), '');
        } catch {
          break;
        }
      }
      expect(statfsSync(disk).ffree).toBe(0);

      const failed = await acquireTenantLock(base, 'acme', 'backup').then(() => 'acquired', (error: unknown) => error);
      expect(failed).not.toBeInstanceOf(TenantBusyError);
      expect(failed).toBeInstanceOf(FileSystemError);
      expect((failed as Error).message).toBe(
        `cannot write the lock file ${lockPath}: no inode left on the device (there may be space left: see df -i); ` +
          'its holder is gone, and a claim to take it over beside it, of a command on another host or one still at work, cannot be judged gone without a file to date it by',
      );

      rmSync(path.join(filler, '0'));
      const lock = await acquireTenantLock(base, 'acme', 'backup');
      await lock.release();
      expect(readdirSync(base)).toEqual(['acme']);
    });
  }, 30_000);
});
