// A command that took the tenant's lock under a name a killed taker left free hands it back to
// the live holder whose lock that taker moved aside: it looks that the name still holds its own
// lock, then renames the moved lock over it (Node has no RENAME_NOREPLACE). Between the look and
// the rename, the name holds that command's own lock, alive and fresh: a newcomer finds the
// tenant busy, and only a taker that judged it gone (this process frozen past the stale time)
// could replace it. A hand-back that freed the name first (its lock moved away, then the moved
// lock linked back, no-replace) would let any newcomer in between. Its renames and links are
// held 2 s each by strace, and recovers try the tenant meanwhile, as the next commands would.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, promises as fs, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { TenantBusyError } from '../shared/errors.js';
import { acquireTenantLock } from '../shared/tenant/lock.js';
import { putLockBack } from '../shared/tenant/lock-takeover.js';
import { hostId, ownerTag, processStat } from '../shared/tenant/process-owner.js';
import { cliPath, runCli, tempDir } from './helpers/tree.js';

const hasStrace = existsSync('/usr/bin/strace');

let dir: ReturnType<typeof tempDir>;
let base: string;
beforeEach(() => {
  dir = tempDir('openclaw-lock-hand-back-');
  base = path.join(dir.path, 'tenants');
  mkdirSync(path.join(base, 'acme'), { recursive: true });
});
afterEach(() => dir.cleanup());

/** `tenants recover acme` under strace, each of `syscalls` (comma-separated) held `delayMicros` on entry; its exit status and stderr. */
function slowedRecover(log: string, syscalls: string, delayMicros: number): { readonly ended: Promise<number | null>; readonly stderr: () => string } {
  const recover = spawn('strace', ['-f', '-qq', '-o', log, '-e', `trace=${syscalls}`, '-e', `inject=${syscalls}:delay_enter=${delayMicros}`, process.execPath, cliPath, '--tenants-dir', base, 'tenants', 'recover', 'acme'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  recover.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return { ended: new Promise((resolve) => recover.on('close', resolve)), stderr: () => stderr };
}

/** The operation of the lock at `lockPath`, if one is readable there. */
function heldBy(lockPath: string): string | undefined {
  try {
    return JSON.parse(readFileSync(lockPath, 'utf8')).operation;
  } catch {
    return undefined;
  }
}

describe('handing a moved-aside lock back', () => {
  it.skipIf(!hasStrace)('keeps the name a live lock between its look and its rename: a newcomer finds the tenant busy, and the holder gets its name back', async () => {
    const holder = await acquireTenantLock(base, 'acme', 'restore');
    const gone = spawnSync('true');
    const aside = path.join(base, `.openclaw-lock-acme.${ownerTag({ pid: gone.pid!, started: 1, hostId: hostId() })}.0123456789ab.broken`);
    await fs.rename(holder.path, aside);

    const log = path.join(dir.path, 'strace.log');
    const recover = slowedRecover(log, 'rename,renameat,renameat2,link,linkat', 2_000_000);
    // The recover holds the name (its own lock), the moved lock still aside: its rename is held.
    const recoverHolds = () => heldBy(holder.path) === 'recover';
    while (!recoverHolds()) await new Promise((resolve) => setTimeout(resolve, 20));
    const { ended } = recover;
    // Newcomers, until the recover ends (a recover does not wait for another recover's lock, as
    // a backup waits up to 10 s for it to end).
    let done = false;
    void ended.then(() => (done = true));
    const outcomes: string[] = [];
    let triedInTheWindow = 0;
    while (!done) {
      const inTheWindow = existsSync(aside) && recoverHolds();
      const outcome = await acquireTenantLock(base, 'acme', 'recover').then(
        async (lock) => {
          await lock.release();
          return 'took the lock';
        },
        (error: unknown) => (error instanceof TenantBusyError ? (/^tenant "acme" is busy: a (recover|restore) by pid \d+/.exec(error.message)?.[1] ?? error.message) : String(error)),
      );
      if (inTheWindow && existsSync(aside)) triedInTheWindow++;
      outcomes.push(outcome);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }

    expect(await ended).toBe(3);
    expect(triedInTheWindow).toBeGreaterThan(5);
    expect(outcomes.filter((outcome) => outcome !== 'recover' && outcome !== 'restore')).toEqual([]);
    // The held rename was the hand-back's.
    expect(readFileSync(log, 'utf8')).toMatch(/rename(?:at2?)?\(.*\.broken", .*\.openclaw-lock-acme"/);
    expect(recover.stderr()).toMatch(new RegExp(`^openclaw: tenant "acme" is busy: a restore by pid ${process.pid} on \\S+ holds it since `));
    await holder.assertHeld();
    await holder.release();
    expect(readdirSync(base)).toEqual(['acme']);
  }, 30_000);

  // A taker without a claim (no inode left) that moved a live holder's lock, checking it before
  // its put-back, is alive: the name is free meanwhile. Before, a command that took the name then
  // left that lock to its taker's put-back and went on: restore --force replaced the tenant under
  // the running backup, the taker linked the lock back once the name was free again, and the
  // backup, its lock's inode and token at the name again, went on to store what it had read.
  it('hands a live holder\'s lock back though its taker still lives: restore --force stops busy, the tenant untouched', async () => {
    const archive = path.join(dir.path, 'other.tar.zst');
    const other = path.join(dir.path, 'other');
    mkdirSync(path.join(other, 'acme'), { recursive: true });
    writeFileSync(path.join(other, 'acme', 'a.txt'), 'restored\n');
    expect(runCli(['--tenants-dir', other, 'tenants', 'backup', 'acme', '--to', archive]).status).toBe(0);
    writeFileSync(path.join(base, 'acme', 'a.txt'), 'live\n');

    const backup = await acquireTenantLock(base, 'acme', 'backup');
    const taker = spawn('sleep', ['30']);
    try {
      const started = processStat(taker.pid!)!.started;
      const aside = path.join(base, `.openclaw-lock-acme.${ownerTag({ pid: taker.pid!, started, hostId: hostId() })}.0123456789ab.broken`);
      await fs.rename(backup.path, aside);

      const restore = runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive, '--force']);
      expect(restore.stderr).toMatch(new RegExp(`^openclaw: tenant "acme" is busy: a backup by pid ${process.pid} on \\S+ holds it since `));
      expect(restore.status).toBe(3);
      expect(readFileSync(path.join(base, 'acme', 'a.txt'), 'utf8')).toBe('live\n');
      await backup.assertHeld();
      // The taker's put-back, next: its moved lock is gone, and the name is not touched.
      expect(await putLockBack(aside, backup.path)).toBe(false);
      await backup.assertHeld();
    } finally {
      taker.kill();
      await backup.release();
    }
    expect(readdirSync(base).sort()).toEqual(['acme']);
  }, 30_000);

  // The live taker's put-back, finding the name taken, removes its moved lock: between the
  // hand-back's look and its rename, that holder's lock went. The command stops busy all the
  // same (that holder may run until its next check); before, "unexpected error: ENOENT" (exit 1).
  it.skipIf(!hasStrace)('stops busy when the live taker removes the moved lock between the hand-back\'s look and its rename', async () => {
    const backup = await acquireTenantLock(base, 'acme', 'backup');
    const taker = spawn('sleep', ['30']);
    try {
      const aside = path.join(base, `.openclaw-lock-acme.${ownerTag({ pid: taker.pid!, started: processStat(taker.pid!)!.started, hostId: hostId() })}.0123456789ab.broken`);
      await fs.rename(backup.path, aside);
      const recover = slowedRecover('/dev/null', 'rename,renameat,renameat2', 1_500_000);
      const { ended } = recover;
      while (heldBy(backup.path) !== 'recover') await new Promise((resolve) => setTimeout(resolve, 10));
      await new Promise((resolve) => setTimeout(resolve, 300)); // its rename is held
      await fs.rm(aside);
      expect(await ended).toBe(3);
      expect(recover.stderr()).toMatch(new RegExp(`^openclaw: tenant "acme" is busy: a backup by pid ${process.pid} on \\S+ holds it since `));
    } finally {
      taker.kill();
      await backup.release();
    }
    expect(readdirSync(base)).toEqual(['acme']);
  }, 30_000);
});
