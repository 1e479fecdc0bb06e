// A full disk at every stage: the tenant base dir, or the backup's destination, on a small
// tmpfs filled so that the lock, the journal, the staging tree, the archive or nothing at
// all runs out of space (and one with no inodes left). Each command must fail with one
// line (or succeed), leave the old tenant exactly as it was, and leave no lock, journal,
// staging, temporary archive or scratch behind. Mounting needs root (CAP_SYS_ADMIN);
// skipped with a note where it is not permitted.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { createLockFile, readLockFile, takeOverLock } from '../../shared/tenant/lock-takeover.js';
import { hostId, ownerTag } from '../../shared/tenant/process-owner.js';
import { sh } from '../helpers/tree.js';
import { canMountTmpfs, cli, describeRun, exited, expectOk, Fixtures, stopped, unmountAll, World } from './harness.js';

const mountable = canMountTmpfs();
if (!mountable) console.log('crash suite: mounting tmpfs is not permitted here (needs root); the disk-full cases are skipped');

let fixtures: Fixtures;
beforeAll(() => {
  if (mountable) fixtures = new Fixtures().build();
}, 120_000);
afterAll(() => fixtures?.cleanup());

const mounts: string[] = [];
afterEach(() => unmountAll(mounts));

let cases = 0;
afterAll(() => console.log(`crash suite (disk full): ${cases} full-disk runs`));

function mountTmpfs(at: string, options: string): void {
  mkdirSync(at, { recursive: true });
  sh(`mount -t tmpfs -o ${options} tmpfs '${at}'`);
  mounts.push(at);
}

/** Fills the file system holding `dir` until `leave` bytes are free. */
function fill(dir: string, leave: number): void {
  const stats = statfsSync(dir);
  const free = stats.bavail * stats.bsize;
  if (free > leave) writeFileSync(path.join(dir, '.filler'), Buffer.alloc(free - leave));
}

function expectOneLine(run: { stderr: string }): void {
  expect(run.stderr.trim().split('\n')).toHaveLength(1);
  expect(run.stderr).not.toMatch(/\n\s+at /);
}

/** A World whose base dir is a tmpfs of `size`, holding the old acme and beta. */
function onTmpfs(name: string, options: string): World {
  const w = new World(fixtures, name);
  const copy = path.join(w.root, 'copy');
  sh(`mv '${w.base}' '${copy}'`);
  mountTmpfs(w.base, options);
  sh(`cp -a '${copy}/.' '${w.base}/' && rm -rf '${copy}'`);
  return w;
}

/**
 * A World whose base dir is a FUSE view (bindfs) of a tmpfs of `size`: a file system that, as
 * NFS (EFS) does, keeps no birth time of a file, and whose attributes are cached (for good,
 * here): a file's link count read through one name may be from before a link or an unlink
 * through another. Undefined where bindfs is not installed.
 */
function onFuseOverTmpfs(name: string, options: string): World | undefined {
  if (spawnSync('sh', ['-c', 'command -v bindfs']).status !== 0) return undefined;
  const w = new World(fixtures, name);
  const disk = path.join(w.root, 'disk');
  mountTmpfs(disk, options);
  sh(`cp -a '${w.base}/.' '${disk}/' && rm -rf '${w.base}' && mkdir '${w.base}' && bindfs -o attr_timeout=3600 '${disk}' '${w.base}'`);
  mounts.unshift(w.base); // unmounted before the tmpfs under it
  return w;
}

/**
 * A second view (bindfs) of `w`'s base dir that caches a lookup of an absent name for an hour,
 * as an NFS client's negative cache may: a file made through the base dir stays absent there.
 */
function negativeCachingView(w: World): string {
  const view = path.join(w.root, 'view');
  mkdirSync(view);
  sh(`bindfs -o negative_timeout=3600 '${w.base}' '${view}'`);
  mounts.unshift(view); // unmounted before the tmpfs under it
  return view;
}

describe.skipIf(!mountable)('the base dir runs out of space', () => {
  // Free bytes left (tmpfs allocates 4 KiB pages): nothing (not even the lock), the lock
  // only (the journal fails), the lock and journal (the tree fails), part of the tree, all.
  for (const leave of [0, 4096, 8192, 256 * 1024, 6 * 1024 * 1024]) {
    it(`restore --force with ${leave} bytes free: fails in one line keeping the old tenant, or succeeds; nothing left behind`, () => {
      const w = onTmpfs(`full-base-${leave}`, 'size=12m');
      fill(w.base, leave);
      const run = w.cli(['tenants', 'restore', '--from', fixtures.newArchive, '--force']);
      cases++;
      rmSync(path.join(w.base, '.filler'));
      if (run.status === 0) {
        w.expectSettled({ holds: 'new', tenants: ['acme', 'beta'] });
        return;
      }
      expect(run.status, describeRun(run)).toBe(1);
      expect(run.stderr).toMatch(/no space left/);
      expectOneLine(run);
      // Nothing to settle: the failed restore already left nothing.
      w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
      expectOk(w.cli(['tenants', 'list', '--names']));
      w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
    });
  }

  it('restore --force one page short of fitting: the committing journal cannot be written, nothing is left', () => {
    // The last page a restore allocates is the temporary file of its 'committing' journal:
    // find the least free space that fits (in pages), then leave one page less.
    let attempts = 0;
    const attempt = (pages: number) => {
      const w = onTmpfs(`full-threshold-${++attempts}-${pages}`, 'size=12m');
      fill(w.base, pages * 4096);
      const run = w.cli(['tenants', 'restore', '--from', fixtures.newArchive, '--force']);
      cases++;
      rmSync(path.join(w.base, '.filler'));
      return { w, run };
    };
    let fails = 2;
    let fits = 1024;
    while (fits - fails > 1) {
      const middle = Math.floor((fails + fits) / 2);
      if (attempt(middle).run.status === 0) fits = middle;
      else fails = middle;
    }
    const { w, run } = attempt(fits - 1);
    expect(run.status, describeRun(run)).toBe(1);
    expect(run.stderr).toMatch(/^openclaw: cannot write the restore journal \S+\.openclaw-journal-acme\.json: no space left on the device\n$/);
    w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
  });

  it('a restore when no inode is left: the lock cannot be created, says so (not "no space"), and nothing is left', () => {
    const w = onTmpfs('full-inodes', 'size=12m,nr_inodes=400');
    let i = 0;
    for (;;) {
      try {
        writeFileSync(path.join(w.base, `.inode-${i++}`), '');
      } catch {
        break;
      }
    }
    const run = w.cli(['tenants', 'restore', '--from', fixtures.newArchive, '--force']);
    cases++;
    expect(run.status, describeRun(run)).toBe(1);
    expect(run.stderr).toMatch(/^openclaw: cannot write the lock file \S+\.openclaw-lock-acme: no inode left on the device \(there may be space left: see df -i\)\n$/);
    for (const name of readdirSync(w.base)) if (name.startsWith('.inode-')) rmSync(path.join(w.base, name));
    w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
  });

  it('a restore that runs out of inodes while extracting says so (not "no space"), keeping the old tenant', () => {
    const w = onTmpfs('inodes-mid-restore', 'size=12m,nr_inodes=400');
    // Room for the lock, the journal and the staging directory with a few entries, not the whole tree.
    for (let i = 0; statfsSync(w.base).ffree > 8; i++) writeFileSync(path.join(w.base, `.inode-${i}`), '');
    const run = w.cli(['tenants', 'restore', '--from', fixtures.newArchive, '--force']);
    cases++;
    expect(run.status, describeRun(run)).toBe(1);
    expect(run.stderr).toMatch(/^openclaw: cannot write the restored tenant under \S+: no inode left on the device \(there may be space left: see df -i\) \(\S+\)\n$/);
    for (const name of readdirSync(w.base)) if (name.startsWith('.inode-')) rmSync(path.join(w.base, name));
    w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
  });

  it('a backup when the base dir is full: its lock is an empty file, and the backup (stored elsewhere) succeeds, leaving nothing', () => {
    const w = onTmpfs('full-base-backup', 'size=12m');
    fill(w.base, 0);
    expectOk(w.cli(['tenants', 'backup', 'acme', '--to', path.join(w.out, 'a.tar.zst')]));
    cases++;
    rmSync(path.join(w.base, '.filler'));
    expect(readdirSync(w.out)).toEqual(['a.tar.zst']);
    rmSync(path.join(w.out, 'a.tar.zst'));
    w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
  });

  it('a restore killed after extracting, then the disk full: recover is not stopped by the lock record it has no room for, and frees the disk', () => {
    const w = onTmpfs('full-after-kill', 'size=12m');
    w.killAt('restore:verified', ['tenants', 'restore', '--from', fixtures.newArchive, '--force']);
    fill(w.base, 0);
    const run = expectOk(w.cli(['tenants', 'recover', 'acme']));
    cases++;
    expect(run.stdout).toMatch(/removed an unfinished restore; the slot was never touched/);
    rmSync(path.join(w.base, '.filler'));
    w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
  });

  it('a restore killed mid-commit, then the disk full: recover finishes it', () => {
    const w = onTmpfs('full-mid-commit', 'size=12m');
    w.killAt('commit:old-moved-aside', ['tenants', 'restore', '--from', fixtures.newArchive, '--force']);
    fill(w.base, 0);
    expect(expectOk(w.cli(['tenants', 'recover', 'acme'])).stdout).toMatch(/finished an interrupted restore/);
    cases++;
    rmSync(path.join(w.base, '.filler'));
    w.expectSettled({ holds: 'new', tenants: ['acme', 'beta'] });
  });

  /** Fills the base dir's last inodes with empty files `.inode-N` (no tool's name); `unfill` removes them. */
  const fillInodes = (w: World) => {
    for (let i = 0; ; i++) {
      try {
        writeFileSync(path.join(w.base, `.inode-${i}`), '');
      } catch {
        return;
      }
    }
  };
  const unfill = (w: World) => {
    for (const name of readdirSync(w.base)) if (name.startsWith('.inode-')) rmSync(path.join(w.base, name));
  };

  // Killed, then the last inode taken by something else: no lock can be made (each is a new
  // file), and only a lock holder removed what the restore left. What a gone restore left to
  // be removed is removed first; a dead restore's lock is taken over without a claim file, and
  // the inode it frees holds the new lock (written in place where a link takes an inode too).
  for (const [point, holds, said] of [
    ['lock:temp-written', 'old', 'nothing to recover'],
    ['lock:acquired', 'old', 'nothing to recover'],
    ['restore:staging-created', 'old', 'removed leftovers'],
    ['journal:extracting:temp-written', 'old', 'removed leftovers'],
    ['restore:journal-written', 'old', 'removed an unfinished restore'],
    ['restore:extracting', 'old', 'removed an unfinished restore'],
    ['restore:verified', 'old', 'removed an unfinished restore'],
    ['journal:committing:temp-written', 'old', 'removed an unfinished restore'],
    ['commit:journal-written', 'new', 'finished an interrupted restore'],
    ['commit:old-moved-aside', 'new', 'finished an interrupted restore'],
    ['commit:new-moved-in', 'new', 'finished an interrupted restore'],
    ['commit:old-moved-to-trash', 'new', 'finished an interrupted restore'],
    ['commit:journal-removed', 'new', 'removed leftovers'],
    ['restore:committed', 'new', 'nothing to recover'],
  ] as const) {
    it(`a restore killed at ${point}, then no inode left: recover frees what it left and settles the tenant`, () => {
      const w = onTmpfs(`no-inode-after-${point}`, 'size=12m,nr_inodes=400');
      w.killAt(point, ['tenants', 'restore', '--from', fixtures.newArchive, '--force']);
      fillInodes(w);
      expect(statfsSync(w.base).ffree).toBe(0);
      const run = w.cli(['tenants', 'recover', 'acme']);
      cases++;
      expect(run.status, describeRun(run)).toBe(0);
      expect(run.stdout).toMatch(new RegExp(`^Tenant "acme": ${said}`));
      unfill(w);
      w.expectSettled({ holds, tenants: ['acme', 'beta'] });
    });
  }

  it('a restore killed holding an empty lock (no byte left), then no inode left either: recover takes over both its names and settles', () => {
    const w = onTmpfs('no-inode-empty-lock', 'size=12m,nr_inodes=400');
    fill(w.base, 0);
    w.killAt('lock:acquired', ['tenants', 'restore', '--from', fixtures.newArchive, '--force']);
    expect(readdirSync(w.base).filter((name) => name.endsWith('.restore.held'))).toHaveLength(1);
    fillInodes(w);
    expect(statfsSync(w.base).ffree).toBe(0);
    expect(expectOk(w.cli(['tenants', 'recover', 'acme'])).stdout).toBe('Tenant "acme": nothing to recover\n');
    cases++;
    unfill(w);
    rmSync(path.join(w.base, '.filler'));
    w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
  });

  it('a restore killed holding an empty lock (no byte left), a recover killed after moving it aside, then no inode left: the next recover removes it, told dead by its second name, and settles', () => {
    const w = onTmpfs('no-inode-empty-lock-moved', 'size=12m,nr_inodes=400');
    fill(w.base, 0);
    w.killAt('lock:acquired', ['tenants', 'restore', '--from', fixtures.newArchive, '--force']);
    w.killAt('lock:stale-moved-aside', ['tenants', 'recover', 'acme']);
    expect(readdirSync(w.base).filter((name) => name === '.openclaw-lock-acme.aside' || name.endsWith('.restore.held'))).toHaveLength(2);
    fillInodes(w);
    expect(expectOk(w.cli(['tenants', 'recover', 'acme'])).stdout).toBe('Tenant "acme": nothing to recover\n');
    cases++;
    unfill(w);
    rmSync(path.join(w.base, '.filler'));
    w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
  });

  it('a lock written in place (the link would take an inode there is none of), taken over while still empty: its writer does not take it for its own', async () => {
    const w = onTmpfs('no-inode-in-place-taken', 'size=12m,nr_inodes=400');
    const lockPath = path.join(w.base, '.openclaw-lock-acme');
    fillInodes(w);
    rmSync(path.join(w.base, '.inode-0')); // one inode: the temporary's, then the lock's
    const aside = path.join(w.base, '.openclaw-lock-acme.broken');
    // Read empty, it is judged the lock of a writer that died (once 5 s old, as a stall may make it) and moved aside.
    const outcome = await createLockFile(lockPath, path.join(w.base, '.openclaw-lock-acme.tmp'), '{"writer":true}', { openedInPlace: () => renameSync(lockPath, aside) });
    cases++;
    expect(outcome.created).toBe(false);
    expect(existsSync(lockPath)).toBe(false);
    rmSync(aside);
    unfill(w);
    w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
  });

  it('a takeover without a claim (no inode left) that moved a lock other than the one it judged puts it back, though a link would take an inode', async () => {
    const w = onTmpfs('no-inode-takeover-put-back', 'size=12m,nr_inodes=400');
    const lockPath = path.join(w.base, '.openclaw-lock-acme');
    writeFileSync(lockPath, '{"judged":true}');
    const judged = (await readLockFile(lockPath))!;
    fillInodes(w);
    const next = '{"the next holder":true}';
    // Between its check and its rename, the judged lock is released and another is created with the inode freed.
    const outcome = await takeOverLock(lockPath, judged, path.join(w.base, '.openclaw-lock-acme.broken'), {
      checked: () => {
        rmSync(lockPath);
        writeFileSync(lockPath, next);
      },
    });
    cases++;
    expect(outcome).toBe('moved');
    expect(readFileSync(lockPath, 'utf8')).toBe(next);
    rmSync(lockPath);
    unfill(w);
    w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
  });

  it('two recovers taking over a dead lock without claims (no inode left), the later killed after moving the live lock of the one that won: the next recover puts that lock back instead of removing it, and is told it is busy', async () => {
    const w = onTmpfs('no-inode-claimless-taker-killed', 'size=12m,nr_inodes=400');
    w.killAt('commit:old-moved-aside', ['tenants', 'restore', '--from', fixtures.newArchive, '--force']);
    fillInodes(w);
    const lockPath = path.join(w.base, '.openclaw-lock-acme');
    // The later taker checked that the name still held the dead lock, then waits to rename it.
    const later = w.spawn(['tenants', 'recover', 'acme'], { OPENCLAW_TEST_PAUSE_AT: 'lock:stale-checked', OPENCLAW_TEST_CRASH_AT: 'lock:stale-moved-aside' });
    const laterDone = exited(later);
    await stopped(later);
    const winner = w.spawn(['tenants', 'recover', 'acme'], { OPENCLAW_TEST_PAUSE_AT: 'lock:acquired' });
    const winnerDone = exited(winner);
    try {
      await stopped(winner);
      expect(readFileSync(lockPath, 'utf8')).toContain(`"pid":${winner.pid},`);
      later.kill('SIGCONT');
      expect((await laterDone).signal).toBe('SIGKILL');
      expect(existsSync(lockPath)).toBe(false); // the winner's lock, under the killed taker's aside name
      const run = w.cli(['tenants', 'recover', 'acme']);
      cases++;
      expect(run.status, describeRun(run)).toBe(1);
      expect(run.stderr).toMatch(/; it is held by another command, which may still run: /);
      expect(readFileSync(lockPath, 'utf8')).toContain(`"pid":${winner.pid},`);
      expect(readdirSync(w.base).filter((name) => name.endsWith('.broken') || name.endsWith('.aside'))).toEqual([]);
    } finally {
      winner.kill('SIGCONT');
    }
    expect(expectOk(await winnerDone).stdout).toMatch(/^Tenant "acme": finished an interrupted restore/);
    unfill(w);
    w.expectSettled({ holds: 'new', tenants: ['acme', 'beta'] });
  });

  for (const point of ['lock:stale-checked', 'lock:stale-moved-aside'] as const) {
    it(`a restore killed mid-commit, no inode left, then recover killed taking over its lock (${point}): the next recover frees what that taker left and finishes`, () => {
      const w = onTmpfs(`no-inode-taker-killed-${point}`, 'size=12m,nr_inodes=400');
      w.killAt('commit:old-moved-aside', ['tenants', 'restore', '--from', fixtures.newArchive, '--force']);
      fillInodes(w);
      w.killAt(point, ['tenants', 'recover', 'acme']);
      const run = w.cli(['tenants', 'recover', 'acme']);
      cases++;
      expect(run.status, describeRun(run)).toBe(0);
      expect(run.stdout).toMatch(/^Tenant "acme": finished an interrupted restore/);
      unfill(w);
      w.expectSettled({ holds: 'new', tenants: ['acme', 'beta'] });
    });
  }

  it('an empty lock\'s second name left unlinked by a process now gone, then no inode left: the next command removes it and takes the lock with its inode', () => {
    const w = onTmpfs('no-inode-held-unlinked', 'size=12m,nr_inodes=400');
    const gone = spawnSync('true');
    const held = path.join(w.base, `.openclaw-lock-acme.${ownerTag({ pid: gone.pid!, started: 1, hostId: hostId() })}.0123456789ab.restore.held`);
    writeFileSync(held, '');
    fillInodes(w);
    expect(expectOk(w.cli(['tenants', 'recover', 'acme'])).stdout).toBe('Tenant "acme": nothing to recover\n');
    cases++;
    expect(existsSync(held)).toBe(false);
    unfill(w);
    w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
  });

  it('a restore killed mid-commit, another host taking over its lock (a claim), then no inode left: recover leaves the lock to that taker, and takes it once the claim is gone', () => {
    const w = onTmpfs('no-inode-claimed', 'size=12m,nr_inodes=400');
    w.killAt('commit:old-moved-aside', ['tenants', 'restore', '--from', fixtures.newArchive, '--force']);
    const claim = path.join(w.base, '.openclaw-lock-acme.7-9-ffffffffffff.0123456789ab.taking');
    writeFileSync(claim, '');
    fillInodes(w);
    const run = w.cli(['tenants', 'recover', 'acme']);
    cases++;
    expect(run.status, describeRun(run)).not.toBe(0);
    // No inode to date the claim by: said as such (exit 1), the claim left to its taker, not "busy" on every run while the disk stays full.
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/^openclaw: cannot write the lock file \S+: no inode left on the device \(there may be space left: see df -i\); its holder is gone, and a claim to take it over beside it, of a command on another host or one still at work, cannot be judged gone without a file to date it by; nothing could be freed without it: remove a file or two on that file system, then run the command again\n$/);
    expect(readdirSync(w.base)).toContain('.openclaw-lock-acme');
    rmSync(claim);
    expect(expectOk(w.cli(['tenants', 'recover', 'acme'])).stdout).toMatch(/^Tenant "acme": finished an interrupted restore/);
    unfill(w);
    w.expectSettled({ holds: 'new', tenants: ['acme', 'beta'] });
  });

  it('an encrypted backup killed with a plaintext copy in its scratch area, then no inode left: recover removes the scratch area and settles', () => {
    const w = onTmpfs('no-inode-after-scratch', 'size=12m,nr_inodes=400');
    const key = path.join(w.root, 'key.txt');
    sh(`age-keygen -o '${key}' 2>/dev/null`);
    const recipient = spawnSync('age-keygen', ['-y', key], { encoding: 'utf8' }).stdout.trim();
    w.killAt('backup:temp-copy-written', ['tenants', 'backup', 'acme', '--to', path.join(w.out, 'acme.tar.zst.age'), '--encrypt-to', recipient]);
    expect(readdirSync(w.base).filter((name) => name.startsWith('.openclaw-scratch-acme-'))).toHaveLength(1);
    fillInodes(w);
    const run = w.cli(['tenants', 'recover', 'acme']);
    cases++;
    expect(run.status, describeRun(run)).toBe(0);
    expect(run.stdout).toBe('Tenant "acme": removed leftovers of an interrupted operation\n');
    unfill(w);
    // The next backup into the directory removes the killed one's temporary archive.
    expectOk(w.cli(['tenants', 'backup', 'beta', '--to', path.join(w.out, 'next.tar.zst')]));
    rmSync(path.join(w.out, 'next.tar.zst'));
    w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
  });

  it('recover killed while freeing a trash tree another user owns, then no inode left again: the next recover still knows it for the tool\'s and removes all of it', () => {
    const w = onTmpfs('no-inode-recover-killed', 'size=12m,nr_inodes=400');
    // The old tenant belongs to a user other than the base dir's owner: its trash is the tool's by its marker only.
    sh(`chown -R 1234:1234 '${path.join(w.base, 'acme')}'`);
    w.killAt('commit:old-moved-to-trash', ['tenants', 'restore', '--from', fixtures.newArchive, '--force']);
    fillInodes(w);
    w.killAt('remove:top-files-removed', ['tenants', 'recover', 'acme']);
    expect(readdirSync(w.base).filter((name) => name.startsWith('.openclaw-trash-acme-'))).toHaveLength(1);
    fillInodes(w);
    const run = w.cli(['tenants', 'recover', 'acme']);
    cases++;
    expect(run.status, describeRun(run)).toBe(0);
    unfill(w);
    w.expectSettled({ holds: 'new', tenants: ['acme', 'beta'] });
  });

  it('two recovers freeing a disk with no inode left at once: the one that finds a leftover it listed already removed by the other goes on', async () => {
    const w = onTmpfs('no-inode-two-recovers', 'size=12m,nr_inodes=400');
    // Trash of an older version (unmarked, the base dir owner's): two trees, so that one is left when the first pauses in the other.
    for (const name of ['.openclaw-trash-acme-000000000001', '.openclaw-trash-acme-000000000002']) {
      mkdirSync(path.join(w.base, name, 'd'), { recursive: true });
      writeFileSync(path.join(w.base, name, 'd', 'f'), 'old');
    }
    fillInodes(w);
    const first = w.spawn(['tenants', 'recover', 'acme'], { OPENCLAW_TEST_PAUSE_AT: 'remove:top-files-removed' });
    const firstDone = exited(first);
    await stopped(first);
    expect(expectOk(w.cli(['tenants', 'recover', 'acme'])).stdout).toBe('Tenant "acme": removed leftovers of an interrupted operation\n');
    cases++;
    first.kill('SIGCONT');
    const run = await firstDone;
    expect(run.status, describeRun(run)).toBe(0);
    unfill(w);
    w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
  });

  it('recover freeing a disk with no inode left beside a backup that took the lock meanwhile: the backup, finding a leftover it listed removed, goes on', async () => {
    const w = onTmpfs('no-inode-recover-beside-backup', 'size=12m,nr_inodes=400');
    for (const name of ['.openclaw-trash-acme-000000000001', '.openclaw-trash-acme-000000000002']) {
      mkdirSync(path.join(w.base, name, 'd'), { recursive: true });
      for (let i = 0; i < 8; i++) writeFileSync(path.join(w.base, name, `f${i}`), 'old');
      writeFileSync(path.join(w.base, name, 'd', 'f'), 'old');
    }
    fillInodes(w);
    // Judged the lock free, then paused in its first removal, having freed that tree's top files.
    const recover = w.spawn(['tenants', 'recover', 'acme'], { OPENCLAW_TEST_PAUSE_AT: 'remove:top-files-removed' });
    const recoverDone = exited(recover);
    await stopped(recover);
    // A backup takes the lock with that inode, and pauses before judging a trash tree it listed.
    const backup = w.spawn(['tenants', 'backup', 'acme', '--to', path.join(w.out, 'acme.tar.zst')], { OPENCLAW_TEST_PAUSE_AT: 'sweep:leftover-found' });
    const backupDone = exited(backup);
    await stopped(backup).catch(async (error: unknown) => {
      throw new Error(`${String(error)}: ${describeRun(await backupDone)}`);
    });
    recover.kill('SIGCONT');
    const recovered = await recoverDone;
    cases++;
    expect(recovered.stderr, describeRun(recovered)).toMatch(/^(|openclaw: tenant "acme" is busy: a backup by pid \d+ .*\n)$/);
    expect(readdirSync(w.base).filter((name) => name.startsWith('.openclaw-trash-'))).toEqual([]);
    unfill(w);
    for (let more = true; more; ) {
      backup.kill('SIGCONT');
      more = await Promise.race([backupDone.then(() => false), stopped(backup).then(() => true, () => false)]);
    }
    expectOk(await backupDone);
    rmSync(path.join(w.out, 'acme.tar.zst'));
    w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
  });

  it('a live restore, then no inode left, recover through a FUSE view that answers a lookup of the lock from its cache of when there was none: it removes nothing of the restore', async (context) => {
    if (spawnSync('sh', ['-c', 'command -v bindfs']).status !== 0) return context.skip('bindfs is not installed');
    const w = onTmpfs('no-inode-fuse-negative', 'size=12m,nr_inodes=400');
    const view = negativeCachingView(w);
    const lockInView = path.join(view, '.openclaw-lock-acme');
    expect(existsSync(lockInView)).toBe(false);
    const restore = w.spawn(['tenants', 'restore', '--from', fixtures.newArchive, '--force'], { OPENCLAW_TEST_PAUSE_AT: 'restore:verified' });
    const done = exited(restore);
    await stopped(restore);
    const cached = !existsSync(lockInView);
    const staged = () => readdirSync(w.base).filter((name) => name.startsWith('.openclaw-')).sort();
    const before = staged();
    fillInodes(w);
    const run = cached ? cli(['--tenants-dir', view, 'tenants', 'recover', 'acme'], { TMPDIR: w.tmp }) : undefined;
    unfill(w);
    expect(staged()).toEqual(before);
    restore.kill('SIGCONT');
    expectOk(await done);
    w.expectSettled({ holds: 'new', tenants: ['acme', 'beta'] });
    if (run === undefined) return context.skip('this FUSE view caches no lookup of a name that is absent');
    cases++;
    expect(run.stderr, describeRun(run)).toMatch(/; it is held by another command, which may still run: remove a file or two on that file system, then run the command again\n$/);
  });

  it('a restore killed once committing, its lock gone, then no inode left, recover through a FUSE view that answers a lookup of the journal from its cache of when there was none: it removes nothing of the verified restore', (context) => {
    if (spawnSync('sh', ['-c', 'command -v bindfs']).status !== 0) return context.skip('bindfs is not installed');
    const w = onTmpfs('no-inode-fuse-negative-journal', 'size=12m,nr_inodes=400');
    const view = negativeCachingView(w);
    const journalInView = path.join(view, '.openclaw-journal-acme.json');
    expect(existsSync(journalInView)).toBe(false);
    w.killAt('commit:journal-written', ['tenants', 'restore', '--from', fixtures.newArchive, '--force']);
    rmSync(path.join(w.base, '.openclaw-lock-acme')); // taken over by a command that then failed, say
    const cached = !existsSync(journalInView);
    const staged = () => readdirSync(w.base).filter((name) => name.startsWith('.openclaw-')).sort();
    const before = staged();
    expect(before.some((name) => name.startsWith('.openclaw-staging-acme-'))).toBe(true);
    fillInodes(w);
    const run = cached ? cli(['--tenants-dir', view, 'tenants', 'recover', 'acme'], { TMPDIR: w.tmp }) : undefined;
    unfill(w);
    expect(staged()).toEqual(before);
    expect(expectOk(w.cli(['tenants', 'recover', 'acme'])).stdout).toMatch(/finished an interrupted restore/);
    w.expectSettled({ holds: 'new', tenants: ['acme', 'beta'] });
    if (run === undefined) return context.skip('this FUSE view caches no lookup of a name that is absent');
    cases++;
    expect(run.stderr, describeRun(run)).toMatch(/nothing could be freed without it: remove a file or two on that file system, then run the command again\n$/);
  });

  it('a live restore, then no inode left: recover removes nothing of it, says so in one line, and the restore goes on', async () => {
    const w = onTmpfs('no-inode-live', 'size=12m,nr_inodes=400');
    const restore = w.spawn(['tenants', 'restore', '--from', fixtures.newArchive, '--force'], { OPENCLAW_TEST_PAUSE_AT: 'restore:verified' });
    const done = exited(restore);
    await stopped(restore);
    const staged = () => readdirSync(w.base).filter((name) => name.startsWith('.openclaw-')).sort();
    const before = staged();
    expect(before.some((name) => name.startsWith('.openclaw-staging-acme-'))).toBe(true);
    fillInodes(w);
    const run = w.cli(['tenants', 'recover', 'acme']);
    cases++;
    expect(run.status, describeRun(run)).toBe(1);
    expect(run.stderr).toMatch(/^openclaw: cannot write the lock file \S+: no inode left on the device .*; it is held by another command, which may still run: remove a file or two on that file system, then run the command again\n$/);
    expect(staged()).toEqual(before);
    unfill(w);
    restore.kill('SIGCONT');
    expectOk(await done);
    w.expectSettled({ holds: 'new', tenants: ['acme', 'beta'] });
  });

  it('a restore killed mid-commit, its lock gone, then no inode left: recover cannot free anything without the lock, says what to do, and does it once a file is removed', () => {
    const w = onTmpfs('no-inode-mid-commit', 'size=12m,nr_inodes=400');
    w.killAt('commit:old-moved-aside', ['tenants', 'restore', '--from', fixtures.newArchive, '--force']);
    rmSync(path.join(w.base, '.openclaw-lock-acme')); // taken over by a command that then failed, say: no dead lock's inode to take
    fillInodes(w);
    const run = w.cli(['tenants', 'recover', 'acme']);
    cases++;
    expect(run.status, describeRun(run)).toBe(1);
    expect(run.stderr).toMatch(/^openclaw: cannot write the lock file \S+: no inode left on the device .*; nothing could be freed without it: remove a file or two on that file system, then run the command again\n$/);
    rmSync(path.join(w.base, '.inode-0'));
    expect(expectOk(w.cli(['tenants', 'recover', 'acme'])).stdout).toMatch(/finished an interrupted restore/);
    unfill(w);
    w.expectSettled({ holds: 'new', tenants: ['acme', 'beta'] });
  });

  it('two recovers on a full disk: the second is told the first holds the empty lock, and takes it over once the first is killed', async () => {
    const w = onTmpfs('full-two-recovers', 'size=12m');
    w.killAt('restore:verified', ['tenants', 'restore', '--from', fixtures.newArchive, '--force']);
    // Its lock gone (taken over by a command that then failed), else taking it over frees the page the next lock's record needs.
    rmSync(path.join(w.base, '.openclaw-lock-acme'));
    fill(w.base, 0);
    const first = w.spawn(['tenants', 'recover', 'acme'], { OPENCLAW_TEST_PAUSE_AT: 'lock:acquired' });
    try {
      await stopped(first);
      expect(readFileSync(path.join(w.base, '.openclaw-lock-acme'), 'utf8')).toBe('');
      const second = w.cli(['tenants', 'recover', 'acme']);
      expect(second.status, describeRun(second)).toBe(3);
      expect(second.stderr).toMatch(new RegExp(`^openclaw: tenant "acme" is busy: a recover by pid ${first.pid} on \\S+ holds it since `));
    } finally {
      first.kill('SIGKILL');
      await exited(first);
    }
    expectOk(w.cli(['tenants', 'recover', 'acme']));
    cases++;
    rmSync(path.join(w.base, '.filler'));
    w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
  });

  it('a backup killed holding an empty lock on a full FUSE base dir: the next command takes the lock over, told by its second name, and leaves nothing', () => {
    const w = onFuseOverTmpfs('full-fuse-killed', 'size=12m');
    if (w === undefined) return;
    fill(w.base, 0);
    w.killAt('lock:acquired', ['tenants', 'backup', 'acme', '--to', path.join(w.out, 'a.tar.zst')]);
    expect(readdirSync(w.base).filter((name) => name.endsWith('.backup.held'))).toHaveLength(1);
    // Through this mount the second name's link count is the one cached when it was created (1):
    // it is the lock's all the same, and is not removed as a leftover before the lock is judged.
    expectOk(w.cli(['tenants', 'list']));
    cases++;
    expect(readdirSync(w.base).sort()).toEqual(['.filler', 'acme', 'beta']);
    rmSync(path.join(w.base, '.filler'));
    w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
  });

  it('an empty lock on a file system without birth times: the busy message does not date it by the ctime its heartbeat moves', async (context) => {
    const w = onFuseOverTmpfs('full-fuse-busy', 'size=12m');
    if (w === undefined) return context.skip('needs bindfs');
    fill(w.base, 0);
    const first = w.spawn(['tenants', 'backup', 'acme', '--to', path.join(w.out, 'a.tar.zst')], { OPENCLAW_TEST_PAUSE_AT: 'lock:acquired' });
    try {
      await stopped(first);
      const lock = path.join(w.base, '.openclaw-lock-acme');
      expect(readFileSync(lock, 'utf8')).toBe('');
      // What each of its heartbeats does (it is paused): the lock's ctime moves.
      sh(`touch '${lock}'`);
      const second = w.cli(['tenants', 'backup', 'acme', '--to', path.join(w.out, 'b.tar.zst')]);
      expect(second.status, describeRun(second)).toBe(3);
      const born = statSync(lock).birthtimeMs;
      const since = born > 0 ? ` since ${new Date(born).toISOString()}` : '';
      expect(second.stderr).toBe(`openclaw: tenant "acme" is busy: a backup by pid ${first.pid} on ${hostname()} holds it${since} (lock file ${lock})\n`);
    } finally {
      first.kill('SIGKILL');
      await exited(first);
    }
    rmSync(path.join(w.base, '.filler'));
    expectOk(w.cli(['tenants', 'list']));
    cases++;
    rmSync(path.join(w.out, 'a.tar.zst'), { force: true });
    w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
  });
});

describe.skipIf(!mountable)('the scratch space (TMPDIR) is full', () => {
  // A database's snapshot (or an idle one's checked copy) finds no room: no consistent copy can
  // be had, so the backup fails in one line and stores nothing, as with a database locked past
  // the busy timeout; the live database is not opened either (no -wal or -shm appears beside
  // it). With --sqlite-raw-fallback it is archived raw with a warning.
  it('fails in one line, storing nothing and leaving the tenant untouched; archives raw on request', () => {
    const w = new World(fixtures, 'full-tmp');
    mountTmpfs(w.tmp, 'size=64k');
    fill(w.tmp, 0);
    const run = w.cli(['tenants', 'backup', 'acme', '--to', path.join(w.out, 'a.tar.zst')]);
    cases++;
    expect(run.status, describeRun(run)).toBe(1);
    expect(run.stderr).toMatch(/^openclaw: no consistent copy of the SQLite database \S+: no room for a copy in \S+ \(ENOSPC\); nothing was stored/);
    expectOneLine(run);
    expect(readdirSync(w.out)).toEqual([]);
    const raw = expectOk(w.cli(['tenants', 'backup', 'acme', '--to', path.join(w.out, 'a.tar.zst'), '--sqlite-raw-fallback', '--json']));
    const warnings = (JSON.parse(raw.stdout) as { warnings: { reason: string }[] }).warnings;
    expect(warnings.length).toBeGreaterThan(0);
    for (const { reason } of warnings) expect(reason).toMatch(/^no consistent SQLite snapshot \(no room for a copy in .*\(--sqlite-raw-fallback\)/);
    rmSync(path.join(w.tmp, '.filler'));
    rmSync(path.join(w.out, 'a.tar.zst'));
    w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
  });
});

describe.skipIf(!mountable)("the backup's destination runs out of space", () => {
  for (const leave of [0, 64 * 1024, 512 * 1024]) {
    it(`with ${leave} bytes free: one line, no archive, no temporary file, no scratch`, () => {
      const w = new World(fixtures, `full-out-${leave}`);
      mountTmpfs(path.join(w.out, 'disk'), 'size=4m');
      fill(path.join(w.out, 'disk'), leave);
      const run = w.cli(['tenants', 'backup', 'acme', '--to', path.join(w.out, 'disk', 'acme.tar.zst')]);
      cases++;
      expect(run.status, describeRun(run)).toBe(1);
      expect(run.stderr).toMatch(/^openclaw: cannot write \S+acme\.tar\.zst: no space left on the device\n$/);
      expect(readdirSync(path.join(w.out, 'disk'))).toEqual(['.filler']);
      rmSync(path.join(w.out, 'disk', '.filler'));
      expectOk(w.cli(['tenants', 'backup', 'acme', '--to', path.join(w.out, 'disk', 'acme.tar.zst')]));
      expect(readdirSync(path.join(w.out, 'disk'))).toEqual(['acme.tar.zst']);
      w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
    });
  }

  it('into directories it creates: removes them again, keeping the ones that were there', () => {
    const w = new World(fixtures, 'full-out-new-dirs');
    const disk = path.join(w.out, 'disk');
    mountTmpfs(disk, 'size=4m');
    mkdirSync(path.join(disk, 'empty'));
    // Room for the directories, not the archive: a disk with none left is refused before any is made (checkWritable).
    fill(disk, 64 * 1024);
    const run = w.cli(['tenants', 'backup', 'acme', '--to', path.join(disk, 'empty', 'a', 'b', 'c', 'acme.tar.zst')]);
    cases++;
    expect(run.status, describeRun(run)).toBe(1);
    expect(run.stderr).toMatch(/^openclaw: cannot write \S+acme\.tar\.zst: no space left on the device\n$/);
    expect(readdirSync(disk).sort()).toEqual(['.filler', 'empty']);
    expect(readdirSync(path.join(disk, 'empty'))).toEqual([]);
    w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
  });
});
