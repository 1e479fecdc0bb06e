// On a disk with no inode left, `tenants recover` removes what a gone restore left without the
// tenant's lock (slot.ts removeWhatGoneRestoresLeft), once no holder may live (lock.ts
// isLockHolderGoneHere). With no lock under the name but a lock a taker moved aside, killed
// before its put-back (the next command puts it back) or still between its rename and its
// put-back, the holder that lock names may still run: one of this pid namespace was judged by
// its pid, one of another host (a file system shared with it) not at all: judged gone while a
// taker was mid-step, and its live restore's staging removed from under it.

import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, statfsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { lockPathFor } from '../shared/tenant/lock.js';
import { hostId, ownerTag, thisProcess } from '../shared/tenant/process-owner.js';
import { onTmpfs } from './helpers/tmpfs.js';
import { runCli, tempDir } from './helpers/tree.js';

describe('a lock moved aside on a disk with no inode left', () => {
  const dir = tempDir('openclaw-lock-aside-no-inode-');
  afterAll(() => dir.cleanup());

  it.for([
    ['now gone (the lock is put back)', 'gone'] as const,
    ['still between its rename and its put-back', 'live'] as const,
  ])("keeps a live restore's staging whose holder, on another host, had its lock moved aside by a taker %s", async ([, taker], context) => {
    const disk = path.join(dir.path, `disk-${taker}`);
    await onTmpfs(context, disk, 'size=1m,nr_inodes=16', async () => {
      const base = path.join(disk, 'tenants');
      mkdirSync(path.join(base, 'acme'), { recursive: true });
      // A restore on another host, extracting into its staging; its heartbeat a moment ago.
      const staging = path.join(base, '.openclaw-staging-acme-0123456789ab');
      mkdirSync(staging);
      writeFileSync(path.join(staging, 'config.json'), 'restored so far');
      const holder = { token: 'h1', pid: 4242, host: 'other', hostId: 'aaaaaaaaaaaa', started: 1, operation: 'restore', startedAt: new Date().toISOString() };
      // Moved aside by a taker of this host: killed before it put it back, or (this process) not there yet.
      const owner = taker === 'gone' ? { pid: spawnSync('true').pid!, started: 1, hostId: hostId() } : thisProcess();
      const aside = `${lockPathFor(base, 'acme')}.${ownerTag(owner)}.0123456789ab.broken`;
      writeFileSync(aside, JSON.stringify(holder));
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

      const ran = runCli(['--tenants-dir', base, 'tenants', 'recover', 'acme']);
      expect(ran.stderr).toMatch(/no inode left on the device .*it is held by another command, which may still run/);
      expect(ran.status).not.toBe(0);
      expect(readFileSync(path.join(staging, 'config.json'), 'utf8')).toBe('restored so far');
      // Where it is left to its live taker, or put back by the command (no inode even to reserve the name with).
      expect(readFileSync(taker === 'gone' ? lockPathFor(base, 'acme') : aside, 'utf8')).toBe(JSON.stringify(holder));
    });
  });
});
