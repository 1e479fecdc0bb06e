// A hard link refused for want of room (ENOSPC, or EDQUOT: a quota) is met by a rename: the
// taker of a dead lock moving it to the one aside name (lock-takeover.ts moveAsideNoReplace), a
// backup committing its archive (storage/local.ts commit). Node 20's libuv has no name for
// EDQUOT: the error's code is "Unknown system error -122", which neither compared equal to, so
// under a quota each failed in one line, "disk quota exceeded" (exit 1): the backup after writing
// its whole archive, the takeover leaving the tenant locked by the dead lock. Errors are named by
// their number now (errnoCode). strace fails the one link (-P: only calls naming that path).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { lockPathFor, oneAsideNameFor } from '../shared/tenant/lock.js';
import { cliPath, runCli, tempDir } from './helpers/tree.js';

const hasStrace = existsSync('/usr/bin/strace');

/** The built CLI with `args`, every link(2) naming `linkPath` failing with `errno`. */
function cliWithLinkFailing(linkPath: string, errno: string, args: string[]) {
  return spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', '-P', linkPath, '-e', 'trace=link,linkat', '-e', `inject=link,linkat:error=${errno}`, process.execPath, cliPath, ...args], { encoding: 'utf8' });
}

describe.skipIf(!hasStrace)('a hard link refused for want of room', () => {
  const dir = tempDir('openclaw-link-quota-');
  afterAll(() => dir.cleanup());

  function tenantBase(name: string): string {
    const base = path.join(dir.path, name);
    mkdirSync(path.join(base, 'acme'), { recursive: true });
    writeFileSync(path.join(base, 'acme', 'a.txt'), 'live\n');
    return base;
  }

  it.each(['EDQUOT', 'ENOSPC'])('a backup whose commit cannot link its archive (%s) renames it into place', (errno) => {
    const base = tenantBase(`commit-${errno}`);
    const to = path.join(dir.path, `out-${errno}`, 'acme.tar.zst');
    const run = cliWithLinkFailing(to, errno, ['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', to]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(readdirSync(path.dirname(to))).toEqual(['acme.tar.zst']);
    expect(runCli(['--tenants-dir', base, 'tenants', 'verify', '--from', to]).status).toBe(0);
  });

  it.each(['EDQUOT', 'ENOSPC'])("a takeover of a dead holder's lock that cannot link it to the aside name (%s) renames it there, and the backup goes on", (errno) => {
    const base = tenantBase(`takeover-${errno}`);
    const lock = lockPathFor(base, 'acme');
    writeFileSync(lock, JSON.stringify({ token: 'dead', pid: 2 ** 22 + 99, host: hostname(), operation: 'backup', startedAt: '2026-01-01T00:00:00Z' }));
    const old = new Date(Date.now() - 120_000);
    utimesSync(lock, old, old);
    const to = path.join(dir.path, `takeover-${errno}.tar.zst`);
    const run = cliWithLinkFailing(oneAsideNameFor(lock), errno, ['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', to]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(readdirSync(base)).toEqual(['acme']);
    expect(existsSync(to)).toBe(true);
  });
});
