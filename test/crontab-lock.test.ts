// The lock one `openclaw cron add|rm` holds while it reads, edits and installs the crontab
// (shared/schedule/crontab-lock.ts): edits run one at a time, a lock whose owner is gone is
// taken over once it is not fresh, a live one is waited for and then named.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { LocalCronError } from '../shared/errors.js';
import { withCrontabLock } from '../shared/schedule/crontab-lock.js';
import { ownerTag, thisProcess } from '../shared/tenant/process-owner.js';
import { repoRoot, tempDir } from './helpers/tree.js';

let dir: ReturnType<typeof tempDir>;
let lockPath: string;
beforeEach(() => {
  dir = tempDir('openclaw-crontab-lock-');
  lockPath = path.join(dir.path, '.openclaw', 'crontab.lock');
});
afterEach(() => dir.cleanup());

/** The owner tag of a process that has exited. */
function goneOwner(): string {
  const pid = spawnSync('true').pid!;
  return ownerTag({ ...thisProcess(), pid, started: 0 });
}

describe('the crontab lock', () => {
  it('runs edits one at a time and leaves nothing behind', async () => {
    let inside = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 6 }, () =>
        withCrontabLock(lockPath, async () => {
          most = Math.max(most, ++inside);
          await new Promise((resolve) => setTimeout(resolve, 10));
          inside--;
        }),
      ),
    );
    expect(most).toBe(1);
    expect(existsSync(lockPath)).toBe(false);
  });

  it('takes over the lock of a process that is gone, once the lock is not fresh', async () => {
    await withCrontabLock(lockPath, async () => undefined); // creates the directory
    writeFileSync(lockPath, `${goneOwner()} 0123456789abcdef\n`);
    const old = new Date(Date.now() - 60_000);
    utimesSync(lockPath, old, old);
    expect(await withCrontabLock(lockPath, async () => 'edited', { waitMs: 1_000 })).toBe('edited');
    expect(existsSync(lockPath)).toBe(false);
  });

  it('waits for a fresh lock even when its owner is gone (it may have just released it), then takes it over', async () => {
    await withCrontabLock(lockPath, async () => undefined);
    writeFileSync(lockPath, `${goneOwner()} 0123456789abcdef\n`);
    const started = Date.now();
    expect(await withCrontabLock(lockPath, async () => 'edited', { waitMs: 10_000 })).toBe('edited');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_500);
  });

  it('names the live owner after waiting', async () => {
    await withCrontabLock(lockPath, async () => undefined);
    writeFileSync(lockPath, `${ownerTag(thisProcess())} 0123456789abcdef\n`);
    const attempt = withCrontabLock(lockPath, async () => 'edited', { waitMs: 200 });
    await expect(attempt).rejects.toBeInstanceOf(LocalCronError);
    await expect(attempt).rejects.toThrow(`another openclaw cron command (pid ${process.pid}) has been editing the crontab for 0.2 s (lock ${lockPath})`);
    expect(existsSync(lockPath)).toBe(true);
  });
});

/** Takes the crontab lock in its own process (test/helpers/crontab-lock-taker.ts), killed at `crashAt`: its exit signal. */
async function takerKilledAt(crashAt: string): Promise<NodeJS.Signals | null> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'test', 'helpers', 'crontab-lock-taker.ts'), lockPath], {
    cwd: repoRoot,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, TSX_DISABLE_CACHE: '1', OPENCLAW_TEST_CRASH_AT: crashAt },
  });
  return new Promise((resolve) => child.on('close', (_code, signal) => resolve(signal)));
}

describe('a crontab lock taker killed mid-step', () => {
  const leftovers = () => readdirSync(path.dirname(lockPath)).sort();

  it('killed after moving a dead lock aside: the next cron command removes what it left', async () => {
    await withCrontabLock(lockPath, async () => undefined);
    writeFileSync(lockPath, `${goneOwner()} 0123456789abcdef\n`);
    const old = new Date(Date.now() - 60_000);
    utimesSync(lockPath, old, old);
    expect(await takerKilledAt('crontab:stale-moved-aside')).toBe('SIGKILL');
    expect(leftovers().map((name) => name.slice(name.lastIndexOf('.'))).sort()).toEqual(['.stale', '.taking']);

    expect(await withCrontabLock(lockPath, async () => 'edited', { waitMs: 1_000 })).toBe('edited');
    expect(leftovers()).toEqual([]);
  }, 30_000);

  it('killed with its lock written but not yet linked into place: the next cron command removes the temporary file', async () => {
    await withCrontabLock(lockPath, async () => undefined);
    expect(await takerKilledAt('crontab:temp-written')).toBe('SIGKILL');
    expect(leftovers().map((name) => name.slice(name.lastIndexOf('.')))).toEqual(['.tmp']);

    await withCrontabLock(lockPath, async () => undefined);
    expect(leftovers()).toEqual([]);
  }, 30_000);

  it('killed between staging the new crontab and unlinking it: the next cron command removes the staged text, and each edit is given a fresh name for it', async () => {
    await withCrontabLock(lockPath, async () => undefined);
    const staged = path.join(path.dirname(lockPath), `crontab.lock.${goneOwner()}.0123456789ab.new`);
    writeFileSync(staged, '15 * * * * /usr/local/bin/rotate --all\n');

    const given = await withCrontabLock(lockPath, async (staging) => staging);
    expect(leftovers()).toEqual([]);
    expect(path.dirname(given)).toBe(path.dirname(lockPath));
    expect(path.basename(given)).toMatch(new RegExp(`^crontab\\.lock\\.${ownerTag(thisProcess()).replace(/[.]/g, '\\.')}\\.[0-9a-f]{12}\\.new$`));
  });

  it("leaves alone a live taker's files", async () => {
    await withCrontabLock(lockPath, async () => undefined);
    const live = [`crontab.lock.${ownerTag(thisProcess())}.0123456789ab.stale`, `crontab.lock.${ownerTag(thisProcess())}.0123456789ab.tmp`];
    for (const name of live) writeFileSync(path.join(path.dirname(lockPath), name), '');
    await withCrontabLock(lockPath, async () => undefined);
    expect(leftovers()).toEqual(live.sort());
  });

  it('removes the ownerless leftovers of older versions once they have not been touched for a minute', async () => {
    await withCrontabLock(lockPath, async () => undefined);
    const older = ['crontab.lock.0123456789ab.stale', 'crontab.lock.0123456789ab.tmp'];
    for (const name of older) writeFileSync(path.join(path.dirname(lockPath), name), '');
    await withCrontabLock(lockPath, async () => undefined);
    expect(leftovers()).toEqual(older);

    const now = Date.now();
    vi.spyOn(Date, 'now').mockReturnValue(now + 61_000);
    try {
      await withCrontabLock(lockPath, async () => undefined);
    } finally {
      vi.restoreAllMocks();
    }
    expect(leftovers()).toEqual([]);
  });
});

