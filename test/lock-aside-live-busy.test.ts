// A live holder's lock at the one aside name (a takeover that did not finish moved it there),
// and under the lock's name the lock of a holder that died since: no takeover can go on (the
// aside name is taken, its holder lives), and after 10 s the command stops busy. It said
// "another command is taking over its lock ..., whose holder is gone" for as long as that holder
// ran (up to 60 s of its silence), naming no one; it now names that holder and says when the
// tenant is free.

import { mkdirSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { acquireTenantLock, lockPathFor, oneAsideNameFor } from '../shared/tenant/lock.js';
import { runCli, tempDir } from './helpers/tree.js';

const dir = tempDir('openclaw-lock-aside-live-');
afterAll(() => dir.cleanup());

describe('a live lock at the aside name beside a dead one at the name', () => {
  it('stops busy naming the live holder and when the tenant is free', async () => {
    const base = path.join(dir.path, 'tenants');
    mkdirSync(path.join(base, 'acme'), { recursive: true });
    const lockPath = lockPathFor(base, 'acme');
    const live = await acquireTenantLock(base, 'acme', 'restore');
    try {
      renameSync(lockPath, oneAsideNameFor(lockPath));
      writeFileSync(lockPath, JSON.stringify({ token: 'dead', pid: 2 ** 22 + 99, host: hostname(), operation: 'backup', startedAt: '2026-01-01T00:00:00Z' }));
      utimesSync(lockPath, new Date('2026-01-01'), new Date('2026-01-01'));

      const ran = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'acme.tar.zst')]);
      expect(ran.status).toBe(3);
      expect(ran.stderr.trim().split('\n')).toHaveLength(1);
      expect(ran.stderr).toContain(`busy: a restore by pid ${process.pid} on ${hostname()} holds it`);
      expect(ran.stderr).toContain(`${oneAsideNameFor(lockPath)}`);
      expect(ran.stderr).toMatch(/free once that holder is done, or once its lock has not been refreshed for 60 s/);
    } finally {
      await live.release();
    }
  }, 30_000);
});
