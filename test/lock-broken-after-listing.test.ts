// An older version's taker moved a lock aside under a name of its own
// (`.openclaw-lock-<t>.<taker>.<random>.broken`, found only by a listing), judging it gone, and
// was killed before its check put it back: a live holder's lock there, its name free. A backup
// whose sweep had listed the base dir before that move took the free name and judged moved-aside
// locks from its listing (where it was not): it backed up beside the live holder, exit 0. A
// recovery that finds a journal (a restore's, whose staging it would roll back or whose commit it
// would finish) now lists the base dir again for such locks first; otherwise the one aside name
// newer takers use is looked at by one lstat, as before (test/lock-moved-aside-after-listing.test.ts).

import { mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { acquireTenantLock } from '../shared/tenant/lock.js';
import { hostId } from '../shared/tenant/process-owner.js';
import { journalPathFor } from '../shared/tenant/slot.js';
import { pausedCli } from './helpers/processes.js';
import { tempDir } from './helpers/tree.js';

let dir: ReturnType<typeof tempDir>;
let base: string;
beforeEach(() => {
  dir = tempDir('openclaw-lock-broken-listing-');
  base = path.join(dir.path, 'tenants');
  createTenant();
});
afterEach(() => dir.cleanup());

function createTenant(): void {
  const slot = path.join(base, 'acme');
  mkdirSync(slot, { recursive: true });
  writeFileSync(path.join(slot, 'a.txt'), 'live\n');
}

/** Where an older version's taker (dead now) moved the lock. */
const brokenName = () => path.join(base, `.openclaw-lock-acme.${2 ** 22 + 99}-1-${hostId()}.0123456789ab.broken`);

describe("a live holder's lock an older version's taker moved aside after a backup listed the base dir", () => {
  it('is handed back by the backup, which stops busy, when a restore journal is there to recover', async () => {
    const backup = await pausedCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'acme.tar.zst')], 'lock:temp-written');
    // The holder: a restore at work (its journal written, extracting into its staging).
    const holder = await acquireTenantLock(base, 'acme', 'restore');
    const staging = path.join(base, '.openclaw-staging-acme-0123456789ab');
    mkdirSync(staging);
    writeFileSync(path.join(staging, 'a.txt'), 'restoring\n');
    writeFileSync(journalPathFor(base, 'acme'), JSON.stringify({ tenant: 'acme', phase: 'extracting', staging: path.basename(staging) }));
    try {
      renameSync(holder.path, brokenName());
      const { status, stderr } = await backup.go();
      expect(stderr).toMatch(new RegExp(`^openclaw: tenant "acme" is busy: a restore by pid ${process.pid} on \\S+ holds it since `));
      expect(status).toBe(3);
      await holder.assertHeld();
      expect(readdirSync(base).sort()).toEqual(['.openclaw-journal-acme.json', '.openclaw-lock-acme', '.openclaw-staging-acme-0123456789ab', 'acme']);
    } finally {
      await holder.release();
    }
  }, 30_000);
});
