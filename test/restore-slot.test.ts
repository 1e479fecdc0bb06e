// Restore's promises about the slot: empty unless --force, the old tenant untouched by
// anything that fails before the commit, one operation per tenant, recovery after a crash.

import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { backupTenant } from '../shared/backup/backup.js';
import { AbortedError, CorruptArchiveError, SlotOccupiedError, TenantBusyError } from '../shared/errors.js';
import { restoreTenant } from '../shared/restore/restore.js';
import { LocalFileLocation } from '../shared/storage/local.js';
import { acquireTenantLock, lockPathFor } from '../shared/tenant/lock.js';
import { journalPathFor, recoverSlot } from '../shared/tenant/slot.js';
import { summarizeTenants } from '../shared/tenant/tenants.js';
import { localOperations } from '../shared/operations.js';
import { tenantsPage } from '../shared/control-plane/list-pages.js';
import { createSampleTenant } from '../scripts/sample-tenant.js';
import { pausedCli } from './helpers/processes.js';
import { TarBuilder } from './helpers/tar-builder.js';
import { cliPath, describeTree, runCli, sh, tempDir } from './helpers/tree.js';
import { compressFrames } from './helpers/zstd.js';

let dir: ReturnType<typeof tempDir>;
let base: string;
let archive: LocalFileLocation;

beforeEach(async () => {
  dir = tempDir();
  base = path.join(dir.path, 'tenants');
  createSampleTenant(path.join(base, 'acme'), { sessions: 3, memoryRows: 20 });
  archive = new LocalFileLocation(path.join(dir.path, 'acme.tar.zst'));
  await backupTenant({ tenantsDir: base, tenant: 'acme', location: archive });
});
afterEach(() => dir.cleanup());

function victim(): string {
  const other = path.join(base, 'acme');
  writeFileSync(path.join(other, 'config.json'), '{"changed after the backup": true}');
  return other;
}

describe('the restore slot', () => {
  it('refuses an occupied slot without --force and leaves it untouched', async () => {
    const existing = describeTree(victim());
    await expect(restoreTenant({ tenantsDir: base, location: archive })).rejects.toBeInstanceOf(SlotOccupiedError);
    expect(describeTree(path.join(base, 'acme'))).toEqual(existing);
    expect(readdirSync(base)).toEqual(['acme']);
  });

  it('restores into an empty directory slot without --force', async () => {
    mkdirSync(path.join(base, 'fresh'));
    const result = await restoreTenant({ tenantsDir: base, location: archive, as: 'fresh' });
    expect(result.replaced).toBe(false);
    expect(readFileSync(path.join(base, 'fresh', 'config.json'), 'utf8')).toContain('Acme Corp');
  });

  it('replaces the tenant with --force and removes the old copy', async () => {
    victim();
    const result = await restoreTenant({ tenantsDir: base, location: archive, force: true });
    expect(result.replaced).toBe(true);
    expect(readFileSync(path.join(base, 'acme', 'config.json'), 'utf8')).toContain('Acme Corp');
    expect(readdirSync(base)).toEqual(['acme']);
  });

  // The old tenant goes aside and to trash under names 29 bytes longer than the slot's: a path
  // that fits in the slot may not fit there, and fs.rm alone could not remove the trash (nor
  // could the sweep of every later command on the tenant).
  it('replaces with --force a tenant holding a path that fits in the slot but not in the trash, and leaves no trash behind', async () => {
    const slot = path.join(base, 'acme');
    const deepest = 4090; // bytes of the deepest file's path in the slot: PATH_MAX is 4095
    const level = `d\n${'x'.repeat(198)}`; // 200 bytes
    const room = deepest - Buffer.byteLength(slot) - 1;
    const levels = Math.floor((room - 256) / (level.length + 1)) + 1;
    const fileName = `f\r${'y'.repeat(room - levels * (level.length + 1) - 2)}`;
    // Built bottom-up by renames of short paths: no call takes the long ones.
    const build = path.join(dir.path, 'build');
    mkdirSync(path.join(build, String(levels)), { recursive: true });
    writeFileSync(path.join(build, String(levels), fileName), 'deep');
    for (let at = levels - 1; at >= 0; at--) {
      mkdirSync(path.join(build, String(at)));
      renameSync(path.join(build, String(at + 1)), path.join(build, String(at), level));
    }
    renameSync(path.join(build, '0', level), path.join(slot, level));
    expect(Buffer.byteLength(path.join(slot, ...Array<string>(levels).fill(level), fileName))).toBe(deepest);

    const result = await restoreTenant({ tenantsDir: base, location: archive, force: true });
    expect(result.replaced).toBe(true);
    expect(readdirSync(base)).toEqual(['acme']);
    expect(existsSync(path.join(slot, level))).toBe(false);
    await backupTenant({ tenantsDir: base, tenant: 'acme', location: new LocalFileLocation(path.join(dir.path, 'after.tar.zst')) });
  });

  it('keeps the old tenant exactly as it was when a forced restore fails verification', async () => {
    const existing = describeTree(victim());
    const bytes = await fs.readFile(archive.path);
    const damaged = new LocalFileLocation(path.join(dir.path, 'damaged.tar.zst'));
    // Flip a byte inside the last zstd frame: decoding or manifest verification must fail.
    bytes[bytes.length - 40]! ^= 0xff;
    await fs.writeFile(damaged.path, bytes);
    await expect(restoreTenant({ tenantsDir: base, location: damaged, force: true })).rejects.toThrow();
    expect(describeTree(path.join(base, 'acme'))).toEqual(existing);
    expect(readdirSync(base)).toEqual(['acme']);
  });

  it('refuses a truncated archive of ours and leaves nothing behind', async () => {
    const bytes = await fs.readFile(archive.path);
    for (const keep of [0.3, 0.9]) {
      const cut = new LocalFileLocation(path.join(dir.path, `cut-${keep}.tar.zst`));
      await fs.writeFile(cut.path, bytes.subarray(0, Math.floor(bytes.length * keep)));
      await expect(restoreTenant({ tenantsDir: base, location: cut, as: 'cut' })).rejects.toBeInstanceOf(CorruptArchiveError);
    }
    expect(readdirSync(base)).toEqual(['acme']);
  });

  it('refuses --as names that are not tenant names before reading anything', async () => {
    for (const as of ['..', '../x', 'a/b', 'UPPER', '', '.hidden', 'x'.repeat(33)]) {
      await expect(restoreTenant({ tenantsDir: base, location: archive, as })).rejects.toThrow(/invalid --as name/);
    }
    expect(readdirSync(base)).toEqual(['acme']);
  });
});

describe('a restore stopped at its deadline', () => {
  // The restore function's: stopped a minute before Lambda ends the invocation, it must answer
  // before then, whatever removing what it staged would take (150,000 files on EFS take
  // minutes). Past `cleanupBy` it leaves the rest, with its journal, as a kill would: the lock
  // released, the slot as it was, and the next command removes the rest.
  // Progress is told every 64 entries: a tenant of 200 files is stopped in the middle.
  let wide: LocalFileLocation;
  beforeEach(async () => {
    for (let i = 0; i < 200; i++) writeFileSync(path.join(base, 'acme', 'workspace', `note-${i}.md`), `note ${i}\n`);
    wide = new LocalFileLocation(path.join(dir.path, 'wide.tar.zst'));
    await backupTenant({ tenantsDir: base, tenant: 'acme', location: wide });
  });

  async function stoppedRestore(cleanupBy: number): Promise<unknown> {
    const controller = new AbortController();
    return restoreTenant({
      tenantsDir: base,
      location: wide,
      as: 'copy',
      signal: controller.signal,
      cleanupBy,
      onProgress: () => controller.abort(new AbortedError('stopped: the Lambda invocation was about to time out')),
    }).catch((error: unknown) => error);
  }

  it('leaves what it staged to the next command once its cleanup time is up, and answers in one line', async () => {
    const error = await stoppedRestore(Date.now() - 1);
    expect(error).toBeInstanceOf(AbortedError);
    expect((error as Error).message).toMatch(/^stopped: the Lambda invocation was about to time out; what it had staged \(\S+\/\.openclaw-staging-copy-\S+\) was not all removed in the time left: the next command on the tenant removes it, the slot holds what it held$/);
    const left = readdirSync(base).sort();
    expect(left).toEqual(['.openclaw-journal-copy.json', expect.stringMatching(/^\.openclaw-staging-copy-/), 'acme']);
    expect(existsSync(lockPathFor(base, 'copy'))).toBe(false);
    // The next command on the tenant settles it, and restores.
    await restoreTenant({ tenantsDir: base, location: wide, as: 'copy' });
    expect(readdirSync(base).sort()).toEqual(['acme', 'copy']);
    expect(describeTree(path.join(base, 'copy'))).toEqual(describeTree(path.join(base, 'acme'), { exclude: (p) => p === 'pty' || p.startsWith('pty/') }));
  });

  // The restore function's cleanupBy bounds a restore that succeeds too: the old tenant a
  // `--force` restore replaced (150,000 files on EFS take minutes to unlink) went on being
  // removed past it, and Lambda ended the invocation with no answer for a restore that had
  // succeeded (tried: 40,000 files, answered 2.8 s after its cleanupBy).
  it('leaves the old tenant it replaced to the next command once its time is up after the commit, and says so', async () => {
    mkdirSync(path.join(base, 'copy', 'workspace'), { recursive: true });
    writeFileSync(path.join(base, 'copy', 'workspace', 'old.md'), 'old\n');
    const result = await restoreTenant({ tenantsDir: base, location: wide, as: 'copy', force: true, cleanupBy: Date.now() - 1 });
    expect(result.notices).toContainEqual(
      expect.stringMatching(/^the restored tenant is in place; the old tenant's files \(\S+\/\.openclaw-trash-copy-\S+\) were not all removed in the time left: the next command on tenant "copy" removes them$/),
    );
    expect(readdirSync(base).sort()).toEqual([expect.stringMatching(/^\.openclaw-trash-copy-/), 'acme', 'copy']);
    expect(existsSync(lockPathFor(base, 'copy'))).toBe(false);
    const restored = describeTree(path.join(base, 'copy'));
    expect(restored).toEqual(describeTree(path.join(base, 'acme'), { exclude: (p) => p === 'pty' || p.startsWith('pty/') }));
    // The next command on the tenant removes it, the restored tenant untouched.
    expect(await recoverSlot(base, 'copy')).toBe('removed-leftovers');
    expect(readdirSync(base).sort()).toEqual(['acme', 'copy']);
    expect(describeTree(path.join(base, 'copy'))).toEqual(restored);
  });

  // The list function sweeps the base dir before its walks: a leftover of 70,000 staged files
  // took its whole invocation on EFS, and Lambda ended it with no answer and the tenant's lock
  // left behind (tried through the latency mount: no answer at 20 s; now ABORTED at 15 s).
  it('is left, as it is, by a listing stopped at its deadline, and removed by the next', async () => {
    await stoppedRestore(Date.now() - 1);
    const stopped = new AbortController();
    stopped.abort(new AbortedError('stopped: the Lambda invocation was about to time out'));
    expect(await summarizeTenants(base, { signal: stopped.signal })).toEqual({ tenants: [], recovered: [] });
    expect(readdirSync(base).sort()).toEqual(['.openclaw-journal-copy.json', expect.stringMatching(/^\.openclaw-staging-copy-/), 'acme']);
    expect(existsSync(lockPathFor(base, 'copy'))).toBe(false);
    expect((await summarizeTenants(base)).tenants.map((tenant) => tenant.name)).toEqual(['acme']);
    expect(readdirSync(base)).toEqual(['acme']);
  });

  // The fan-out's names pages too: its nightly `backup --all` waited on a list function that Lambda ended.
  it('is left by a page of names stopped at its deadline, which names every tenant', async () => {
    await stoppedRestore(Date.now() - 1);
    const page = await tenantsPage(localOperations(base), { names: true, ownership: false, pages: true }, undefined, AbortSignal.abort());
    expect(page).toEqual({ tenants: ['acme'] });
    expect(readdirSync(base).sort()).toEqual(['.openclaw-journal-copy.json', expect.stringMatching(/^\.openclaw-staging-copy-/), 'acme']);
    expect(existsSync(lockPathFor(base, 'copy'))).toBe(false);
  });

  it('removes everything it staged while its cleanup has time', async () => {
    const error = await stoppedRestore(Date.now() + 600_000);
    expect(error).toBeInstanceOf(AbortedError);
    expect((error as Error).message).toBe('stopped: the Lambda invocation was about to time out');
    expect(readdirSync(base)).toEqual(['acme']);
  });
});

describe('one operation per tenant', () => {
  it('refuses a second operation on a locked tenant, naming the holder', async () => {
    const lock = await acquireTenantLock(base, 'acme', 'restore');
    try {
      const other = new LocalFileLocation(path.join(dir.path, 'second.tar.zst'));
      await expect(backupTenant({ tenantsDir: base, tenant: 'acme', location: other })).rejects.toThrow(
        new RegExp(`busy: a restore by pid ${process.pid}`),
      );
      await expect(restoreTenant({ tenantsDir: base, location: archive, force: true })).rejects.toBeInstanceOf(TenantBusyError);
    } finally {
      await lock.release();
    }
    await expect(restoreTenant({ tenantsDir: base, location: archive, force: true })).resolves.toMatchObject({ tenant: 'acme' });
  });

  it('lets two restores race and exactly one win', async () => {
    const results = await Promise.allSettled([
      restoreTenant({ tenantsDir: base, location: archive, as: 'twin' }),
      restoreTenant({ tenantsDir: base, location: archive, as: 'twin' }),
    ]);
    const failures = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(failures).toHaveLength(1);
    expect(failures[0]!.reason).toSatisfy((e: unknown) => e instanceof TenantBusyError || e instanceof SlotOccupiedError);
    expect(readdirSync(base).sort()).toEqual(['acme', 'twin']);
  });

  it('takes over a lock left by a dead process', async () => {
    const dead = { token: 'x', pid: 2 ** 22 + 12345, host: (await import('node:os')).hostname(), operation: 'backup', startedAt: '2026-01-01T00:00:00Z' };
    writeFileSync(lockPathFor(base, 'acme'), JSON.stringify(dead));
    await expect(restoreTenant({ tenantsDir: base, location: archive, as: 'acme', force: true })).resolves.toMatchObject({ replaced: true });
  });

  it('takes over a lock from another host whose heartbeat stopped, but not a fresh one', async () => {
    const remote = { token: 'y', pid: 1, host: 'lambda-sandbox-elsewhere', operation: 'backup', startedAt: '2026-01-01T00:00:00Z' };
    const lockPath = lockPathFor(base, 'acme');
    writeFileSync(lockPath, JSON.stringify(remote));
    await expect(acquireTenantLock(base, 'acme', 'restore')).rejects.toBeInstanceOf(TenantBusyError);
    const old = new Date(Date.now() - 5 * 60_000);
    await fs.utimes(lockPath, old, old);
    const lock = await acquireTenantLock(base, 'acme', 'restore');
    expect(JSON.parse(readFileSync(lockPath, 'utf8')).pid).toBe(process.pid);
    await lock.release();
  });
});

describe('a live restore --force whose slot is re-created between its renames', () => {
  it('refuses as a decision (exit 3, RECOVERY_NEEDED, one line), never as a failure the next command finishes, and keeps the three trees', async () => {
    // Stopped right after moving the old tenant aside; meanwhile the gateway writes a session file into the slot.
    const { child, exited, stdout, stderr } = await pausedCli(['--tenants-dir', base, '--json', 'tenants', 'restore', '--from', archive.path, '--force'], 'commit:old-moved-aside');
    mkdirSync(path.join(base, 'acme'));
    writeFileSync(path.join(base, 'acme', 'session.jsonl'), 'written by the live gateway\n');
    child.kill('SIGCONT');
    expect(await exited, stderr()).toBe(3);
    expect(stderr()).toMatch(/^openclaw: tenant "acme" needs a decision after an interrupted restore \(the slot was re-created while the restored tenant was being moved in\); nothing was moved: .* Keep one with: openclaw tenants recover acme --keep old\|new\|slot \(the others are deleted\)\n$/);
    expect(JSON.parse(stdout())).toMatchObject({ error: { code: 'RECOVERY_NEEDED' } });
    expect(readdirSync(base).map((name) => name.replace(/[0-9a-f]{12}$/, '…')).sort()).toEqual(['.openclaw-aside-acme-…', '.openclaw-journal-acme.json', '.openclaw-staging-acme-…', 'acme']);
    expect(readFileSync(path.join(base, 'acme', 'session.jsonl'), 'utf8')).toBe('written by the live gateway\n');
  });
});

// An older version (a6488d4) backing up "acme" took "acme-2"'s staged and old trees for its own
// leftovers (it matched names by prefix) while this one's restore --force of acme-2 was between
// its renames: the restore failed with 'unexpected error: ENOENT: … rename' and said the next
// command would finish it, which then removed the journal and left no acme-2, silently.
describe('a live restore --force whose staged and old trees are removed between its renames', () => {
  it('refuses as a decision (exit 3, one line), not an unexpected ENOENT, and the next command says so too', async () => {
    const { child, exited, stderr } = await pausedCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive.path, '--force'], 'commit:old-moved-aside');
    for (const name of readdirSync(base).filter((entry) => /^\.openclaw-(staging|aside)-acme-/.test(entry))) await fs.rm(path.join(base, name), { recursive: true });
    child.kill('SIGCONT');
    expect(await exited, stderr()).toBe(3);
    expect(stderr()).toMatch(/^openclaw: tenant "acme" needs a decision after an interrupted restore \(the restored tenant is neither staged nor in the slot: something else removed it\); nothing was moved: .*acme is absent\. Keep one with: openclaw tenants recover acme --keep slot \(the others are deleted\)\n$/);
    expect(readdirSync(base)).toEqual(['.openclaw-journal-acme.json']);
    const list = runCli(['--tenants-dir', base, 'tenants', 'list']);
    expect(list.stdout).toMatch(/^acme +- +- +- +needs recovery/m);
    expect(readdirSync(base)).toEqual(['.openclaw-journal-acme.json']);
  });
});


// A restore frozen past the stale interval (a VM pause) whose lock another host took over and
// whose extraction that host's recovery rolled back (staging and journal removed): it met its
// staging gone and failed with "unexpected error: ENOENT: … mkdir …" (seen with the list
// function on a host whose clock ran 10 minutes ahead, before locks were judged on the file
// system's clock). It says what happened instead.
describe('a restore whose lock was taken over while it was frozen', () => {
  it('says it lost the tenant\'s lock (exit 3), not an unexpected ENOENT, and leaves the new holder\'s journal alone', async () => {
    const { child, exited, stderr } = await pausedCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive.path, '--as', 'acme-copy'], 'restore:journal-written');
    // What the other host's sweep did: took the lock over, rolled the extraction back, released.
    const staging = readdirSync(base).filter((name) => name.startsWith('.openclaw-staging-acme-copy-'));
    expect(staging).toHaveLength(1);
    await fs.rm(path.join(base, staging[0]!), { recursive: true });
    await fs.rm(journalPathFor(base, 'acme-copy'));
    await fs.rm(lockPathFor(base, 'acme-copy'));
    // …and then began a restore of its own, which holds the tenant now: its journal stays.
    const theirs = { tenant: 'acme-copy', phase: 'extracting', staging: '.openclaw-staging-acme-copy-0123456789ab' };
    writeFileSync(journalPathFor(base, 'acme-copy'), JSON.stringify(theirs));
    const record = { token: 't', pid: 7, host: 'other', hostId: 'ffffffffffff', started: 9, operation: 'restore', startedAt: '2026-01-01T00:00:00Z' };
    writeFileSync(lockPathFor(base, 'acme-copy'), JSON.stringify(record));
    child.kill('SIGCONT');
    expect(await exited, stderr()).toBe(3);
    expect(stderr()).toMatch(/^openclaw: lost the tenant's lock .*\.openclaw-lock-acme-copy: another operation took it over \(was this process frozen for more than 60 s\?\); it stopped there and changed nothing more: run it again once that operation is done\n$/);
    expect(readdirSync(base).sort()).toEqual(['.openclaw-journal-acme-copy.json', '.openclaw-lock-acme-copy', 'acme']);
    expect(JSON.parse(readFileSync(journalPathFor(base, 'acme-copy'), 'utf8'))).toEqual(theirs);
  });
});

// Frozen once verified, its lock taken over and its staging rolled back by another host's
// command (SIGSTOP 62 s, then a backup from another host, then SIGCONT): run as root, it said its
// staging directory "was moved or replaced by someone else …: check who else writes in the base
// dir" (the staging's pin was checked before the lock), not what happened.
describe('a restore whose lock was taken over while it was frozen once verified', () => {
  it('says it lost the tenant\'s lock (exit 3) and leaves the slot as it was', async () => {
    const { child, exited, stderr } = await pausedCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive.path, '--as', 'acme-copy'], 'restore:verified');
    const staging = readdirSync(base).filter((name) => name.startsWith('.openclaw-staging-acme-copy-'));
    expect(staging).toHaveLength(1);
    await fs.rm(path.join(base, staging[0]!), { recursive: true });
    await fs.rm(journalPathFor(base, 'acme-copy'));
    await fs.rm(lockPathFor(base, 'acme-copy'));
    child.kill('SIGCONT');
    expect(await exited, stderr()).toBe(3);
    expect(stderr()).toMatch(/^openclaw: lost the tenant's lock .*\.openclaw-lock-acme-copy: another operation took it over \(was this process frozen for more than 60 s\?\); it stopped there and changed nothing more: run it again once that operation is done\n$/);
    expect(readdirSync(base)).toEqual(['acme']);
  });
});

// Frozen while its staging directory was made (between its mkdir and its check), or after the
// commit point with the old tenant moved aside, its lock taken over meanwhile: it said its staging
// "was replaced while it was made: check who else writes in the base dir", or that the tenant
// "needs a decision … the restored tenant is neither staged nor in the slot" of a slot holding the
// restored tenant (the taker had finished the commit by the journal).
describe('a restore whose lock was taken over while it was frozen making its staging or mid-commit', () => {
  it('says it lost the tenant\'s lock (exit 3), frozen as its staging was made', async () => {
    const { child, exited, stderr } = await pausedCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive.path, '--as', 'acme-copy'], 'restore:staging-created');
    for (const name of readdirSync(base)) if (name !== 'acme') await fs.rm(path.join(base, name), { recursive: true });
    child.kill('SIGCONT');
    expect(await exited, stderr()).toBe(3);
    expect(stderr()).toMatch(/^openclaw: lost the tenant's lock .*\.openclaw-lock-acme-copy: another operation took it over \(was this process frozen for more than 60 s\?\); it stopped there and changed nothing more: run it again once that operation is done\n$/);
    expect(readdirSync(base)).toEqual(['acme']);
  });

  it('says it lost the tenant\'s lock (exit 3), frozen with the old tenant aside, and leaves the commit its taker finished', async () => {
    const slot = path.join(base, 'acme');
    writeFileSync(path.join(slot, 'marker'), 'old tenant');
    const { child, exited, stderr } = await pausedCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive.path, '--force'], 'commit:old-moved-aside');
    // What the taker's recovery did: finished the commit by the journal, then released.
    const journal = JSON.parse(readFileSync(journalPathFor(base, 'acme'), 'utf8')) as { staging: string; aside: string };
    await fs.rename(path.join(base, journal.staging), slot);
    await fs.rm(path.join(base, journal.aside), { recursive: true });
    await fs.rm(journalPathFor(base, 'acme'));
    await fs.rm(lockPathFor(base, 'acme'));
    const restored = describeTree(slot);
    child.kill('SIGCONT');
    expect(await exited, stderr()).toBe(3);
    expect(stderr()).toMatch(/^openclaw: lost the tenant's lock .*\.openclaw-lock-acme: another operation took it over \(was this process frozen for more than 60 s\?\); it stopped there and changed nothing more: run it again once that operation is done\n$/);
    expect(readdirSync(base)).toEqual(['acme']);
    expect(describeTree(slot)).toEqual(restored);
  });
});

// The restore checked its lock before the checkpoint's and the journal's fsyncs, not right
// before the journal's rename (the commit point): a lock removed meanwhile (lostBySilence: a
// moved-aside lock whose heartbeat is 60 s old) went unseen, and the restore committed, exit 0.
describe('a restore whose lock is removed right before its commit', () => {
  it('stops before the journal\'s rename (exit 3, lost the lock) and moves nothing into the slot', async () => {
    const { child, exited, stderr } = await pausedCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive.path, '--as', 'acme-copy'], 'journal:committing:temp-written');
    await fs.rm(lockPathFor(base, 'acme-copy'));
    child.kill('SIGCONT');
    expect(await exited, stderr()).toBe(3);
    expect(stderr()).toMatch(/^openclaw: lost the tenant's lock .*\.openclaw-lock-acme-copy: another operation took it over/);
    // Its staging and journal are no longer its own to remove (a taker may be judging them, and
    // the journal's name is the tenant's): left to the next command on the tenant, which rolls back.
    expect(readdirSync(base).filter((name) => !name.startsWith('.openclaw-staging-acme-copy-'))).toEqual(['.openclaw-journal-acme-copy.json', 'acme']);
    expect(runCli(['--tenants-dir', base, 'tenants', 'recover', 'acme-copy']).status).toBe(0);
    expect(readdirSync(base)).toEqual(['acme']);
  });

  it('leaves them to a backup of the tenant, which rolls them back and says so, the tenant as it was', async () => {
    const slot = path.join(base, 'acme');
    const before = describeTree(slot);
    const { child, exited } = await pausedCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive.path, '--force'], 'journal:committing:temp-written');
    await fs.rm(lockPathFor(base, 'acme'));
    child.kill('SIGCONT');
    expect(await exited).toBe(3);
    expect(readdirSync(base)).toContain('.openclaw-journal-acme.json');
    // It rolled them back in silence before (a restore says it): now it says so too.
    const backup = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(path.dirname(base), 'after-lost.tar.zst')]);
    expect(backup.status, backup.stderr).toBe(0);
    expect(backup.stdout).toContain('\n  note: an interrupted earlier restore of tenant "acme" was rolled back first: the tenant is as it was before that restore\n');
    expect(readdirSync(base)).toEqual(['acme']);
    expect(describeTree(slot)).toEqual(before);
  });

  it('leaves them to a listing, which rolls them back and says so: a note per tenant, `recovered` in --json', () => {
    const slot = path.join(base, 'acme');
    const before = describeTree(slot);
    // Killed once its staging was verified, before its journal's commit.
    const restore = runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive.path, '--force'], { env: { OPENCLAW_TEST_CRASH_AT: 'restore:verified' } });
    expect(restore.status).not.toBe(0);
    expect(readdirSync(base).some((name) => name.startsWith('.openclaw-staging-acme-'))).toBe(true);
    // The listing's sweep rolled them back and said nothing, in its table or its --json.
    const list = runCli(['--tenants-dir', base, 'tenants', 'list']);
    expect(list.status, list.stderr).toBe(0);
    expect(list.stderr).toBe('openclaw: note: an interrupted earlier restore of tenant "acme" was rolled back first: the tenant is as it was before that restore\n');
    expect(list.stdout).toMatch(/^NAME .*\nacme /);
    expect(readdirSync(base)).toEqual(['acme']);
    expect(describeTree(slot)).toEqual(before);
    expect(runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive.path, '--force'], { env: { OPENCLAW_TEST_CRASH_AT: 'restore:verified' } }).status).not.toBe(0);
    const json = runCli(['--json', '--tenants-dir', base, 'tenants', 'list']);
    expect(json.status, json.stderr).toBe(0);
    const answer = JSON.parse(json.stdout) as { tenants: { name: string; state: string; recovered?: string }[]; recovered?: object[]; notices?: string[] };
    expect(answer.recovered).toEqual([{ tenant: 'acme', action: 'rolled-back' }]);
    expect(answer.tenants.map(({ name, state, recovered }) => ({ name, state, recovered }))).toEqual([{ name: 'acme', state: 'ok', recovered: 'rolled-back' }]);
    expect(answer.notices).toEqual(['note: an interrupted earlier restore of tenant "acme" was rolled back first: the tenant is as it was before that restore']);
    // Said once: the next listing found nothing to settle.
    const again = runCli(['--json', '--tenants-dir', base, 'tenants', 'list']);
    expect((JSON.parse(again.stdout) as { tenants: object[] }).tenants[0]).not.toHaveProperty('recovered');
  });

  it('leaves them to the list function\'s page, which says what its sweep rolled back (`tenants list --stack` says it then)', async () => {
    for (const names of [true, false]) {
      expect(runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive.path, '--force'], { env: { OPENCLAW_TEST_CRASH_AT: 'restore:verified' } }).status).not.toBe(0);
      const page = await tenantsPage(localOperations(base), { names, ownership: false, pages: true });
      expect(page.recovered).toEqual([{ tenant: 'acme', action: 'rolled-back' }]);
      expect(readdirSync(base)).toEqual(['acme']);
      // Said once: the next page found nothing to settle.
      expect(await tenantsPage(localOperations(base), { names, ownership: false, pages: true })).not.toHaveProperty('recovered');
    }
  });

  it('leaves them to a backup of all tenants, whose listing rolls them back: that tenant\'s note says so', () => {
    const slot = path.join(base, 'acme');
    const before = describeTree(slot);
    expect(runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive.path, '--force'], { env: { OPENCLAW_TEST_CRASH_AT: 'restore:verified' } }).status).not.toBe(0);
    expect(readdirSync(base).some((name) => name.startsWith('.openclaw-staging-acme-'))).toBe(true);
    // Its names' listing swept the base dir before the run's own sweep and the tenant's backup: said by none.
    const all = runCli(['--tenants-dir', base, 'tenants', 'backup', '--all', '--to', path.join(dir.path, 'out', '{tenant}.tar.zst')]);
    expect(all.status, all.stderr).toBe(0);
    expect(all.stdout).toContain('\n  note: an interrupted earlier restore of tenant "acme" was rolled back first: the tenant is as it was before that restore\n');
    expect(all.stdout.split('earlier restore').length).toBe(2);
    expect(readdirSync(base)).toEqual(['acme']);
    expect(describeTree(slot)).toEqual(before);
  });

  // A restore of a tenant that did not exist before (`--as new`) killed, or stopped by a lost
  // lock: the next command's sweep rolls it back and no tenant is left to carry the note: every
  // listing and backup of all tenants said nothing of it (exit 0, the table as before).
  describe('of a tenant that did not exist before (--as)', () => {
    const gone = 'an interrupted earlier restore of tenant "newco" was rolled back first: there was no tenant "newco" before it and there is none now (run that restore again)';
    const crashed = () => {
      const restore = runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive.path, '--as', 'newco'], { env: { OPENCLAW_TEST_CRASH_AT: 'restore:verified' } });
      expect(restore.status).not.toBe(0);
      expect(readdirSync(base).some((name) => name.startsWith('.openclaw-staging-newco-'))).toBe(true);
    };

    it('is said by tenants list: a note on stderr, a top-level `recovered` in --json', () => {
      crashed();
      const list = runCli(['--tenants-dir', base, 'tenants', 'list']);
      expect(list).toMatchObject({ status: 0, stderr: `openclaw: note: ${gone}\n` });
      expect(list.stdout).toMatch(/^NAME .*\nacme .*\n$/);
      expect(readdirSync(base)).toEqual(['acme']);
      crashed();
      const json = runCli(['--json', '--tenants-dir', base, 'tenants', 'list']);
      expect(json.status, json.stderr).toBe(0);
      const answer = JSON.parse(json.stdout) as { tenants: { name: string }[]; recovered?: object[]; notices?: string[] };
      expect(answer.tenants.map((tenant) => tenant.name)).toEqual(['acme']);
      expect(answer.recovered).toEqual([{ tenant: 'newco', action: 'rolled-back' }]);
      expect(answer.notices).toEqual([`note: ${gone}`]);
      // Said once.
      expect(JSON.parse(runCli(['--json', '--tenants-dir', base, 'tenants', 'list']).stdout)).not.toHaveProperty('recovered');
    });

    it('is said by tenants list --names on stderr, stdout the names alone', () => {
      crashed();
      expect(runCli(['--tenants-dir', base, 'tenants', 'list', '--names'])).toMatchObject({ status: 0, stdout: 'acme\n', stderr: `openclaw: note: ${gone}\n` });
      // An existing tenant's rollback too.
      expect(runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive.path, '--force'], { env: { OPENCLAW_TEST_CRASH_AT: 'restore:verified' } }).status).not.toBe(0);
      expect(runCli(['--tenants-dir', base, 'tenants', 'list', '--names'])).toMatchObject({ status: 0, stdout: 'acme\n', stderr: 'openclaw: note: an interrupted earlier restore of tenant "acme" was rolled back first: the tenant is as it was before that restore\n' });
      crashed();
      const json = runCli(['--json', '--tenants-dir', base, 'tenants', 'list', '--names']);
      expect(JSON.parse(json.stdout)).toEqual({ tenants: ['acme'], recovered: [{ tenant: 'newco', action: 'rolled-back' }], notices: [`note: ${gone}`] });
    });

    it('is said by a backup of all tenants: a note in its report, a top-level `recovered` in --json', () => {
      crashed();
      const all = runCli(['--tenants-dir', base, 'tenants', 'backup', '--all', '--to', path.join(dir.path, 'out', '{tenant}.tar.zst')]);
      expect(all.status, all.stderr).toBe(0);
      expect(all.stdout).toContain(`\n  note: ${gone}\n`);
      expect(readdirSync(base)).toEqual(['acme']);
      crashed();
      const json = runCli(['--json', '--tenants-dir', base, 'tenants', 'backup', '--all', '--to', path.join(dir.path, 'out', '{tenant}-2.tar.zst')]);
      expect(json.status, json.stderr).toBe(0);
      const answer = JSON.parse(json.stdout) as { results: { tenant: string }[]; recovered?: object[] };
      expect(answer.results.map((outcome) => outcome.tenant)).toEqual(['acme']);
      expect(answer.recovered).toEqual([{ tenant: 'newco', action: 'rolled-back' }]);
    });
  });
});

// The same for a backup: frozen while it read, its lock taken over (a restore --force may have
// replaced the tenant meanwhile), it stored an archive of whatever it read, exit 0.
// A killed encrypted (or --pipe) backup leaves its scratch area, with plaintext copies of the
// tenant's databases, in the base dir: the next listing removed it and said "recovered an
// interrupted earlier restore first (removed-leftovers)" of a tenant no one had restored; a
// listing says only the restores its sweep settled.
describe('a --pipe backup killed with a copy of a database in its scratch area', () => {
  it('the next listing removes the scratch area and says nothing of a restore', () => {
    const killed = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'piped.tar.zst'), '--pipe', 'cat'], { env: { OPENCLAW_TEST_CRASH_AT: 'backup:temp-copy-written' } });
    expect(killed.status).not.toBe(0);
    expect(readdirSync(base).some((name) => name.startsWith('.openclaw-scratch-acme-'))).toBe(true);
    const list = runCli(['--tenants-dir', base, 'tenants', 'list']);
    expect(list.status, list.stderr).toBe(0);
    expect(list.stderr).toBe('');
    expect(readdirSync(base)).toEqual(['acme']);
  });
});

describe('a backup whose lock was taken over while it was frozen', () => {
  it('stores nothing and says it lost the tenant\'s lock (exit 3)', async () => {
    const out = path.join(dir.path, 'out');
    const { child, exited, stderr } = await pausedCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(out, 'acme.tar.zst')], 'archive:temp-opened');
    // Another host took the lock over and holds it now.
    await fs.rm(lockPathFor(base, 'acme'));
    const record = { token: 't', pid: 7, host: 'other', hostId: 'ffffffffffff', started: 9, operation: 'restore', startedAt: '2026-01-01T00:00:00Z' };
    writeFileSync(lockPathFor(base, 'acme'), JSON.stringify(record));
    child.kill('SIGCONT');
    expect(await exited, stderr()).toBe(3);
    expect(stderr()).toMatch(/^openclaw: lost the tenant's lock .*\.openclaw-lock-acme: another operation took it over \(was this process frozen for more than 60 s\?\); it stopped there and changed nothing more: run it again once that operation is done\n$/);
    expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
    expect(JSON.parse(readFileSync(lockPathFor(base, 'acme'), 'utf8'))).toEqual(record);
  });

  // Its taker's sweep removed the scratch area in the base dir (a --pipe or encrypted backup's
  // plaintext copies): resumed, it failed on its copy's absence, "unexpected error: ENOENT …
  // open /proc/self/fd/18/1-database" (exit 1), found with an other-host backup frozen 68 s.
  it('with its scratch area removed by the taker: says it lost the tenant\'s lock (exit 3), stores nothing', async () => {
    const out = path.join(dir.path, 'out-piped');
    const { child, exited, stderr } = await pausedCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(out, 'acme.tar.zst'), '--pipe', 'cat'], 'backup:temp-copy-written');
    await fs.rm(lockPathFor(base, 'acme'));
    const record = { token: 't', pid: 7, host: 'other', hostId: 'ffffffffffff', started: 9, operation: 'restore', startedAt: '2026-01-01T00:00:00Z' };
    writeFileSync(lockPathFor(base, 'acme'), JSON.stringify(record));
    const scratch = readdirSync(base).filter((name) => name.startsWith('.openclaw-scratch-acme-'));
    expect(scratch).toHaveLength(1);
    await fs.rm(path.join(base, scratch[0]!), { recursive: true });
    child.kill('SIGCONT');
    expect(await exited, stderr()).toBe(3);
    expect(stderr()).toMatch(/^openclaw: lost the tenant's lock .*\.openclaw-lock-acme: another operation took it over \(was this process frozen for more than 60 s\?\); it stopped there and changed nothing more: run it again once that operation is done\n$/);
    expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
  });
});

describe('recovery after a crash mid-commit', () => {
  async function stageCrash(state: { aside: boolean; staging: boolean; slot: boolean }): Promise<{ old: string; next: string }> {
    const slot = path.join(base, 'acme');
    writeFileSync(path.join(slot, 'marker'), 'old tenant');
    const asideName = '.openclaw-aside-acme-0123456789ab';
    const stagingName = '.openclaw-staging-acme-ba9876543210';
    await fs.mkdir(path.join(base, stagingName));
    writeFileSync(path.join(base, stagingName, 'marker'), 'new tenant');
    if (state.aside) await fs.rename(slot, path.join(base, asideName));
    if (!state.staging) await fs.rename(path.join(base, stagingName), slot);
    writeFileSync(journalPathFor(base, 'acme'), JSON.stringify({ tenant: 'acme', phase: 'committing', staging: stagingName, aside: asideName }));
    return { old: 'old tenant', next: 'new tenant' };
  }

  it('finishes the commit when the process died between the renames: the staged tenant was verified', async () => {
    const { next } = await stageCrash({ aside: true, staging: true, slot: false });
    expect(await recoverSlot(base, 'acme')).toBe('finished-commit');
    expect(readFileSync(path.join(base, 'acme', 'marker'), 'utf8')).toBe(next);
    expect(readdirSync(base)).toEqual(['acme']);
  });

  it('finishes the commit when the new tenant was already in place', async () => {
    const { next } = await stageCrash({ aside: true, staging: false, slot: true });
    expect(await recoverSlot(base, 'acme')).toBe('finished-commit');
    expect(readFileSync(path.join(base, 'acme', 'marker'), 'utf8')).toBe(next);
    expect(readdirSync(base)).toEqual(['acme']);
  });

  it('is run by the next command on the tenant, e.g. a backup', async () => {
    const { next } = await stageCrash({ aside: true, staging: true, slot: false });
    const result = await backupTenant({ tenantsDir: base, tenant: 'acme', location: new LocalFileLocation(path.join(dir.path, 'after.tar.zst')) }).catch(
      (error: unknown) => error,
    );
    // The slot was absent when the backup started: it finishes the commit first, then backs up the new tenant.
    expect(result).toMatchObject({ recovered: 'finished-commit', tenant: 'acme' });
    expect(readFileSync(path.join(base, 'acme', 'marker'), 'utf8')).toBe(next);
  });

  it('refuses a journal that names paths outside the base dir', async () => {
    writeFileSync(journalPathFor(base, 'acme'), JSON.stringify({ tenant: 'acme', phase: 'extracting', staging: '../../etc' }));
    await expect(recoverSlot(base, 'acme')).rejects.toThrow(/journal .* is damaged/);
  });
});

describe('a refused restore onto a new gateway', () => {
  it('removes the base dir it had to create', async () => {
    const fresh = path.join(dir.path, 'new-gateway', 'tenants');
    await expect(restoreTenant({ tenantsDir: fresh, location: new LocalFileLocation(path.join(dir.path, 'missing.tar.zst')) })).rejects.toThrow();
    expect(readdirSync(dir.path)).not.toContain('new-gateway');
    const result = await restoreTenant({ tenantsDir: fresh, location: archive });
    expect(readdirSync(fresh)).toEqual([result.tenant]);
  });

  it('leaves another restore into that new base dir unharmed: one that finds it removed before its lock makes it again', async () => {
    const fresh = path.join(dir.path, 'new-gateway-2', 'tenants');
    // The other restore, refused, removes the (still empty) base dir it made while this one reads its archive.
    const read = archive.read.bind(archive);
    const location = Object.assign(Object.create(archive) as LocalFileLocation, {
      read: async (options?: Parameters<LocalFileLocation['read']>[0]) => {
        rmdirSync(fresh);
        return read(options);
      },
    });
    const result = await restoreTenant({ tenantsDir: fresh, location });
    expect(readdirSync(fresh)).toEqual([result.tenant]);
  });
});

// A tenant may hold read-only directories (a cache of mode 0555), and a restore keeps them.
// Without root nothing can be unlinked inside one, so removing such a tree (the old tenant in
// trash, a refused restore's staging directory) needs the directories opened up first; the
// gateway's restore function never runs as root. Run as nobody when the suite runs as root.
const isRoot = process.geteuid?.() === 0;
const NOBODY = 65534;

describe.skipIf(isRoot && !existsSync('/usr/bin/setpriv'))('read-only directories, restored without root', () => {
  function runAsTenantsUser(args: string[]): { status: number | null; stdout: string; stderr: string } {
    if (!isRoot) return runCli(args);
    return spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, cliPath, ...args], { encoding: 'utf8' });
  }
  function readOnlyDirectories(tenant: string): void {
    mkdirSync(path.join(tenant, 'cache', 'pkg'), { recursive: true });
    writeFileSync(path.join(tenant, 'cache', 'pkg', 'module.go'), 'package pkg\n');
    mkdirSync(path.join(tenant, 'sealed'));
    writeFileSync(path.join(tenant, 'sealed', 'secret'), 'x');
    chmodSync(path.join(tenant, 'cache', 'pkg'), 0o555);
    chmodSync(path.join(tenant, 'cache'), 0o555);
    chmodSync(path.join(tenant, 'sealed'), 0o500);
  }
  function handOver(): void {
    if (!isRoot) return;
    chmodSync(dir.path, 0o755);
    sh(`chown -R ${NOBODY}:${NOBODY} ${JSON.stringify(base)} ${JSON.stringify(dir.path)}/*.tar.zst`);
  }

  it('--force replaces a tenant that holds them, and leaves no trash behind', async () => {
    readOnlyDirectories(path.join(base, 'acme'));
    // A link in the old tenant to a read-only directory elsewhere: removing the tenant must not change it.
    const outside = path.join(dir.path, 'outside');
    mkdirSync(outside);
    chmodSync(outside, 0o555); // not mkdir's mode, which the umask narrows (077: 0500)
    symlinkSync(outside, path.join(base, 'acme', 'cache-elsewhere'));
    handOver();
    const run = runAsTenantsUser(['--tenants-dir', base, 'tenants', 'restore', '--from', archive.path, '--force']);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(readdirSync(base)).toEqual(['acme']);
    expect(existsSync(path.join(base, 'acme', 'sealed'))).toBe(false);
    expect(statSync(outside).mode & 0o777).toBe(0o555);
  });

  it('a restore refused once their modes are set (a changed footer) leaves nothing behind, and the next one restores', async () => {
    readOnlyDirectories(path.join(base, 'acme'));
    const withThem = path.join(dir.path, 'read-only.tar.zst');
    await backupTenant({ tenantsDir: base, tenant: 'acme', location: new LocalFileLocation(withThem) });
    const changed = path.join(dir.path, 'changed-footer.tar.zst');
    const bytes = readFileSync(withThem);
    const digest = bytes.lastIndexOf(Buffer.from('"manifestSha256":"')) + 18;
    bytes[digest] = bytes[digest] === 0x30 ? 0x31 : 0x30;
    writeFileSync(changed, bytes);
    handOver();
    const refused = runAsTenantsUser(['--tenants-dir', base, 'tenants', 'restore', '--from', changed, '--as', 'copy']);
    expect(refused.stderr).toBe(`openclaw: ${changed}: the archive footer does not match its manifest (the manifest or the footer was changed)\n`);
    expect(refused.status).toBe(3);
    expect(readdirSync(base)).toEqual(['acme']);
    const restored = runAsTenantsUser(['--tenants-dir', base, 'tenants', 'restore', '--from', withThem, '--as', 'copy']);
    expect(restored.stderr).toBe('');
    expect(restored.status).toBe(0);
    expect(readdirSync(base).sort()).toEqual(['acme', 'copy']);
    expect(statSync(path.join(base, 'copy', 'cache', 'pkg')).mode & 0o777).toBe(0o555);
  });

  it('a restored directory this user may not read is shown by list, beside the other tenants (the listing exits 1 for it), and a dry run still says it would replace it', async () => {
    const tar = new TarBuilder().dir('tenants/locked/').dir('tenants/locked/private/', { mode: 0o000 }).file('tenants/locked/private/key', 'k', { mode: 0o600 }).build();
    const frames: Buffer[] = [];
    for await (const frame of compressFrames(Readable.from([tar]))) frames.push(frame);
    writeFileSync(path.join(dir.path, 'locked.tar.zst'), Buffer.concat(frames));
    handOver();
    const restored = runAsTenantsUser(['--tenants-dir', base, 'tenants', 'restore', '--from', path.join(dir.path, 'locked.tar.zst')]);
    expect(restored.status, restored.stderr).toBe(0);

    // Listed, and the listing fails: a script reading it must not take the tenant for summed.
    const list = runAsTenantsUser(['--tenants-dir', base, '--json', 'tenants', 'list']);
    expect(list.stderr).toBe('openclaw: 1 tenant listed without its size and files (its STATE says why): locked\n');
    expect(list.status).toBe(1);
    const private_ = path.join(base, 'locked', 'private');
    expect(JSON.parse(list.stdout).tenants).toEqual([
      expect.objectContaining({ name: 'acme', state: 'ok' }),
      { name: 'locked', state: 'unreadable', detail: `cannot read ${private_}: permission denied` },
    ]);

    const plan = runAsTenantsUser(['--tenants-dir', base, 'tenants', 'restore', '--from', archive.path, '--as', 'locked', '--force', '--dry-run']);
    expect(plan.stderr).toBe('');
    expect(plan.status).toBe(0);
    expect(plan.stdout).toContain(`  it would REPLACE the tenant there now, which cannot be read to describe it (${private_}: permission denied) (kept until the new one is verified and in place)\n`);
    expect(plan.stdout).not.toContain('is free');
  });
});
