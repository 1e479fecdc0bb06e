// A taker moves a stale lock to one name a tenant, `.openclaw-lock-<t>.aside`; a command that
// finds a live holder's lock there hands the lock's name back to it (a taker killed between its
// move and its put-back). Whoever can write the base dir could hard-link another tenant's live
// lock there: bob's backup running, its lock linked at acme's aside name, acme's backup took
// acme's free lock name and renamed bob's lock over it, exit 3 "busy: a backup … holds it"
// (acme's name then held bob's lock while bob ran); with a stale lock of acme's at the name, it
// waited 10 s on the aside name and said busy. A lock now records its tenant, and one of another
// tenant there is no holder of this one: the link is removed (bob's own name keeps its lock),
// and acme's backup goes on. A lock of an older version names no tenant: judged as before.

import { linkSync, lstatSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { acquireTenantLock, lockPathFor, type TenantLock } from '../shared/tenant/lock.js';
import { runCliIn, tempDir } from './helpers/tree.js';

let dir: ReturnType<typeof tempDir>;
let base: string;
let bob: TenantLock;
beforeEach(async () => {
  dir = tempDir('openclaw-lock-aside-other-');
  base = path.join(dir.path, 'tenants');
  for (const tenant of ['acme', 'bob']) {
    mkdirSync(path.join(base, tenant), { recursive: true });
    writeFileSync(path.join(base, tenant, 'a.txt'), `${tenant}\n`);
  }
  // bob's holder: this process (a backup at work).
  bob = await acquireTenantLock(base, 'bob', 'backup');
  linkSync(lockPathFor(base, 'bob'), `${lockPathFor(base, 'acme')}.aside`);
});
afterEach(async () => {
  await bob.release();
  dir.cleanup();
});

const backUpAcme = () => runCliIn({ ...process.env }, ['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'acme.tar.zst')]);

describe("another tenant's live lock hard-linked at a tenant's aside name", () => {
  it("is not handed back over the tenant's free lock name: the backup runs, bob keeps his lock", async () => {
    const ran = await backUpAcme();
    expect(ran.stderr).toBe('');
    expect(ran.status).toBe(0);
    await bob.assertHeld();
    expect(readdirSync(base).sort()).toEqual(['.openclaw-lock-bob', 'acme', 'bob']);
    expect(lstatSync(lockPathFor(base, 'bob')).nlink).toBe(1);
  }, 30_000);

  it("does not keep the tenant's stale lock from being taken over", async () => {
    writeFileSync(lockPathFor(base, 'acme'), JSON.stringify({ token: 'deadbeef', pid: 2 ** 22 + 7, host: hostname(), operation: 'backup', tenant: 'acme' }));
    const old = new Date(Date.now() - 600_000);
    utimesSync(lockPathFor(base, 'acme'), old, old);
    const ran = await backUpAcme();
    expect(ran.stderr).toBe('');
    expect(ran.status).toBe(0);
    await bob.assertHeld();
    expect(readdirSync(base).sort()).toEqual(['.openclaw-lock-bob', 'acme', 'bob']);
  }, 30_000);
});
