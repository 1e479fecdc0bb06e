// The file system's clock is read by creating a file (the probe) and reading its ctime; where
// it cannot be created and nothing can be removed either (read-only, not writable, absent) this
// host's clock stands in. A policy beyond the file modes (AppArmor, SELinux) that denies creating
// the probe (EACCES) but allows removals got this host's clock too: a backup whose host's clock
// ran 10 minutes ahead removed another host's temporary archive written a moment before as
// silent for 60 s. EACCES now stands for "nothing removable" only where the directory's modes
// say so (access(2)); else there is no clock, and no owner elsewhere is judged gone.
// The policy and the clock are an LD_PRELOAD library (fixtures/deny-create-preload.c).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ownerTag } from '../shared/tenant/process-owner.js';
import { buildPreload, hasCompiler } from './helpers/preload.js';
import { cliPath, tempDir } from './helpers/tree.js';

describe.skipIf(!hasCompiler)('a destination where a policy denies creating the clock probe, this host\'s clock 10 minutes ahead', () => {
  const dir = tempDir('openclaw-clock-denied-');
  const preload = path.join(dir.path, 'deny-create.so');
  const base = path.join(dir.path, 'tenants');
  beforeAll(() => {
    buildPreload('deny-create-preload.c', preload);
    mkdirSync(path.join(base, 'acme'), { recursive: true });
    writeFileSync(path.join(base, 'acme', 'notes.txt'), 'kept\n');
  });
  afterAll(() => dir.cleanup());

  const backupInto = (destination: string) =>
    spawnSync(process.execPath, [cliPath, '--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(destination, 'acme.tar.zst')], {
      encoding: 'utf8',
      env: { ...process.env, LD_PRELOAD: preload, DENY_CREATE_MATCH: '.openclaw-clock.', CLOCK_AHEAD_S: '600' },
    });
  /** Another host's backup writing into `destination` now: its temporary archive, a moment old. */
  const writingElsewhere = (destination: string) => {
    const partial = path.join(destination, `.acme.tar.zst.${ownerTag({ pid: 4242, started: 1, hostId: 'aaaaaaaaaaaa' })}.0123456789ab.partial`);
    writeFileSync(partial, 'archive bytes so far');
    return partial;
  };

  it("keeps another host's live temporary archive (the directory's modes allow removals), and backs up", () => {
    const destination = path.join(dir.path, 'writable');
    mkdirSync(destination);
    const elsewhere = writingElsewhere(destination);
    const ran = backupInto(destination);
    expect(ran.stderr).toBe('');
    expect(ran.status).toBe(0);
    expect(existsSync(elsewhere)).toBe(true);
    expect(existsSync(path.join(destination, 'acme.tar.zst'))).toBe(true);
  }, 30_000);
});
