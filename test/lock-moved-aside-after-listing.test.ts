// A backup lists the base dir in its sweep, then takes its tenant's lock and recovers the tenant
// from that listing. A live holder's lock that a taker moved aside after the listing, the taker
// killed before its check put it back, left the lock's name free: the backup took it, judged
// the moved lock from the listing (where it was not), rolled back the live restore's staging as
// an interrupted one's and backed up beside it; the restore then failed "lost the tenant's lock"
// (before: backup exit 0 "recovered an interrupted earlier restore first (rolled-back)"). Takers
// now move a lock to one name a tenant, `.openclaw-lock-<t>.aside`, hard-linked there (no
// replace) and unlinked from its name only if the link caught the judged lock; a command
// holding the lock looks at that one name (no listing). Each command stops itself by the pause
// hook (SIGSTOP at a crash point) where the test acts.

import { linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { acquireTenantLock, lockPathFor } from '../shared/tenant/lock.js';
import { pausedCli, type PausedCli } from './helpers/processes.js';
import { runCli, tempDir } from './helpers/tree.js';

let dir: ReturnType<typeof tempDir>;
let base: string;
const started: PausedCli[] = [];
beforeEach(() => {
  dir = tempDir('openclaw-lock-aside-listing-');
  base = path.join(dir.path, 'tenants');
  mkdirSync(path.join(base, 'acme'), { recursive: true });
  writeFileSync(path.join(base, 'acme', 'a.txt'), 'live\n');
});
afterEach(async () => {
  for (const cli of started.splice(0)) if (cli.child.exitCode === null && cli.child.signalCode === null) await cli.kill();
  dir.cleanup();
});

/** The built CLI on the base dir, stopped by itself at `pauseAt` (comma-separated crash points). */
async function start(args: string[], pauseAt: string): Promise<PausedCli> {
  const cli = await pausedCli(['--tenants-dir', base, ...args], pauseAt);
  started.push(cli);
  return cli;
}

/** A backup of acme stopped after its sweep listed the base dir, before it makes its lock. */
function backupPausedAfterListing(): Promise<PausedCli> {
  return start(['tenants', 'backup', 'acme', '--to', path.join(dir.path, 'acme.tar.zst')], 'lock:temp-written');
}

describe('a lock moved aside after a backup listed the base dir', () => {
  it("a taker that judged a dead lock, which a live restore's replaced before its move, leaves that restore's lock at its name: the backup stops busy, the restore completes", async () => {
    const other = path.join(dir.path, 'other');
    mkdirSync(path.join(other, 'acme'), { recursive: true });
    writeFileSync(path.join(other, 'acme', 'a.txt'), 'restored\n');
    const archive = path.join(dir.path, 'new.tar.zst');
    expect(runCli(['--tenants-dir', other, 'tenants', 'backup', 'acme', '--to', archive]).status).toBe(0);
    // A dead holder's lock, two minutes old.
    const lock = lockPathFor(base, 'acme');
    writeFileSync(lock, JSON.stringify({ token: 'dead', pid: 2 ** 22 + 99, host: hostname(), operation: 'backup', startedAt: '2026-01-01T00:00:00Z' }));
    const old = new Date(Date.now() - 120_000);
    utimesSync(lock, old, old);

    // The taker has judged it and checked that the name still holds it: its move is next.
    const taker = await start(['tenants', 'recover', 'acme'], 'lock:stale-checked,lock:stale-moved-aside');
    // Another taker went first (its move, its own lock): here the dead lock goes, and a restore takes the name.
    rmSync(lock);
    const restore = await start(['tenants', 'restore', '--from', archive, '--force'], 'restore:journal-written');
    const backup = await backupPausedAfterListing();

    // Killed, should it have moved the restore's lock (before: renamed to a name of its own, the check after it never run).
    if (await taker.next()) await taker.kill();
    else await taker.exited;
    const backedUp = await backup.go();
    expect(backedUp.stderr).toMatch(/^openclaw: tenant "acme" is busy: a restore by pid \d+ on \S+ holds it since /);
    expect(backedUp.status).toBe(3);

    const restored = await restore.go();
    expect(restored.stderr).toBe('');
    expect(restored.status).toBe(0);
    expect(readFileSync(path.join(base, 'acme', 'a.txt'), 'utf8')).toBe('restored\n');
    expect(readdirSync(base)).toEqual(['acme']);
  }, 60_000);

  // Where no hard link can be made (a file system without them; tmpfs with no inode left) a
  // taker renames the lock to the one aside name: killed before its check, a live holder's lock
  // may stay there, the name free.
  it("hands back a live holder's lock found at the one aside name, though the backup's listing came before it: the backup stops busy", async () => {
    const backup = await backupPausedAfterListing();
    const holder = await acquireTenantLock(base, 'acme', 'backup');
    try {
      renameSync(holder.path, path.join(base, '.openclaw-lock-acme.aside'));
      const backedUp = await backup.go();
      expect(backedUp.stderr).toMatch(new RegExp(`^openclaw: tenant "acme" is busy: a backup by pid ${process.pid} on \\S+ holds it since `));
      expect(backedUp.status).toBe(3);
      await holder.assertHeld();
    } finally {
      await holder.release();
    }
    expect(readdirSync(base)).toEqual(['acme']);
  }, 30_000);

  it("takes over a dead holder's lock though a killed taker left another dead lock at the one aside name", async () => {
    const dead = (token: string) => JSON.stringify({ token, pid: 2 ** 22 + 99, host: hostname(), operation: 'backup', startedAt: '2026-01-01T00:00:00Z' });
    const lock = lockPathFor(base, 'acme');
    writeFileSync(lock, dead('at the name'));
    writeFileSync(`${lock}.aside`, dead('aside'));
    const old = new Date(Date.now() - 120_000);
    utimesSync(lock, old, old);
    const taken = await acquireTenantLock(base, 'acme', 'backup');
    expect(JSON.parse(readFileSync(lock, 'utf8')).pid).toBe(process.pid);
    await taken.release();
    expect(readdirSync(base)).toEqual(['acme']);
  });

  // The taker's link caught a live lock (not the one it judged), the taker killed before its check removed that link.
  it("a holder whose lock a killed taker linked to the one aside name takes that name with it on release: the next command is not told busy", async () => {
    const holder = await acquireTenantLock(base, 'acme', 'backup');
    linkSync(holder.path, path.join(base, '.openclaw-lock-acme.aside'));
    await holder.release();
    expect(readdirSync(base)).toEqual(['acme']);
    const ran = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'acme.tar.zst')]);
    expect(ran.stderr).toBe('');
    expect(ran.status).toBe(0);
  });

  // The base dir's owner can put anything there: a directory no takeover can settle. Before, 10 s of waiting, then "busy: another command is taking over its lock".
  it('says in one line that a directory at the one aside name keeps a dead lock from being taken over', () => {
    const lock = lockPathFor(base, 'acme');
    writeFileSync(lock, JSON.stringify({ token: 'dead', pid: 2 ** 22 + 99, host: hostname(), operation: 'backup', startedAt: '2026-01-01T00:00:00Z' }));
    const old = new Date(Date.now() - 120_000);
    utimesSync(lock, old, old);
    mkdirSync(`${lock}.aside`);
    const ran = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'acme.tar.zst')]);
    expect(ran.stderr).toBe(`openclaw: cannot take over the lock ${lock}, whose holder is gone: ${lock}.aside, where a takeover moves it, is a directory, not a lock: remove it, then run the command again\n`);
    expect(ran.status).toBe(1);
  });

  it('removes a gone holder\'s lock left at the one aside name, and backs up', async () => {
    const aside = path.join(base, '.openclaw-lock-acme.aside');
    writeFileSync(aside, JSON.stringify({ token: 'dead', pid: 2 ** 22 + 99, host: hostname(), operation: 'restore', startedAt: '2026-01-01T00:00:00Z' }));
    const ran = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'acme.tar.zst')]);
    expect(ran.stderr).toBe('');
    expect(ran.status).toBe(0);
    expect(readdirSync(base)).toEqual(['acme']);
  }, 30_000);
});
