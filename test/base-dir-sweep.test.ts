// The sweep every command runs on the base dir: leftovers of dead operations on any tenant
// are settled, those of live ones are not touched, and `tenants list` shows a tenant that
// is mid-commit or needs a decision instead of dropping it. Also the leftovers outside the
// base dir: temporary archives beside a destination and backup scratch directories.

import { chmodSync, chownSync, mkdirSync, promises as fs, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { backupTenant } from '../shared/backup/backup.js';
import { hostId, ownerTag, thisProcess } from '../shared/tenant/process-owner.js';
import { LocalFileLocation } from '../shared/storage/local.js';
import { TempArea } from '../shared/backup/temp-area.js';
import { CAN_CHECK_OPENED_PATHS } from '../shared/file-access.js';
import { acquireTenantLock, lockPathFor } from '../shared/tenant/lock.js';
import { deadScratchAreas, sweepBaseDir } from '../shared/tenant/base-dir-sweep.js';
import { hiddenNames } from '../shared/tenant/hidden-names.js';
import { listTenantNames, listTenants, summarizeTenants } from '../shared/tenant/tenants.js';
import { restoreKilledMidCommit } from './helpers/killed-restore.js';
import { onTmpfs } from './helpers/tmpfs.js';
import { runCli, tempDir } from './helpers/tree.js';

let dir: ReturnType<typeof tempDir>;
let base: string;
beforeEach(() => {
  dir = tempDir();
  base = path.join(dir.path, 'tenants');
  for (const tenant of ['acme', 'beta']) {
    mkdirSync(path.join(base, tenant, 'sessions'), { recursive: true });
    writeFileSync(path.join(base, tenant, 'config.json'), `{"tenant":"${tenant}"}`);
  }
});
afterEach(() => dir.cleanup());

/** A pid that is not running here, in our own pid namespace. */
const DEAD = { pid: 2 ** 22 + 777, started: 1, hostId: hostId() };
const deadTag = `${DEAD.pid}-${DEAD.started}-${DEAD.hostId}`;
const deadLock = JSON.stringify({ token: 't', pid: DEAD.pid, host: 'here', hostId: DEAD.hostId, started: DEAD.started, operation: 'restore', startedAt: '2026-01-01T00:00:00Z' });

/** Runs `act` with this host's clock (Date.now) 10 minutes ahead of the file system's. */
async function withClockAhead<T>(act: () => Promise<T>): Promise<T> {
  const realNow = Date.now.bind(Date);
  const skewed = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 600_000);
  try {
    return await act();
  } finally {
    skewed.mockRestore();
  }
}

/** What a restore --force of gamma killed between its renames leaves: old aside, new staged, slot absent. */
function interruptedForce(tenant: string, options: { recreated?: boolean; lock?: string } = {}): void {
  restoreKilledMidCommit(base, tenant);
  writeFileSync(lockPathFor(base, tenant), options.lock ?? deadLock);
  if (options.recreated) {
    mkdirSync(path.join(base, tenant, 'sessions'), { recursive: true });
    writeFileSync(path.join(base, tenant, 'sessions', 'live.jsonl'), 'the gateway wrote this');
  }
}

describe('the base-dir sweep', () => {
  it('lets `tenants list` finish an interrupted restore of a dead process, for any tenant', async () => {
    interruptedForce('gamma');
    writeFileSync(path.join(base, `.openclaw-lock-beta.${deadTag}.0123456789ab.tmp`), '');
    writeFileSync(path.join(base, `.openclaw-lock-beta.${deadTag}.0123456789ab.broken`), deadLock);
    writeFileSync(path.join(base, '.openclaw-journal-beta.json.0a1b2c3d.tmp'), '{"half');
    expect((await listTenantNames(base)).tenants).toEqual(['acme', 'beta', 'gamma']);
    expect(readdirSync(base).sort()).toEqual(['acme', 'beta', 'gamma']);
    expect(readFileSync(path.join(base, 'gamma', 'config.json'), 'utf8')).toBe('new tenant');
  });

  it('lets a backup of one tenant settle the others', async () => {
    interruptedForce('gamma');
    mkdirSync(path.join(base, '.openclaw-staging-delta-0123456789ab'));
    writeFileSync(lockPathFor(base, 'delta'), deadLock);
    await backupTenant({ tenantsDir: base, tenant: 'acme', location: new LocalFileLocation(path.join(dir.path, 'acme.tar.zst')) });
    expect(readdirSync(base).sort()).toEqual(['acme', 'beta', 'gamma']);
  });

  it('touches nothing of a live operation, and lists its tenant as mid-commit while it moves trees', async () => {
    const live = await acquireTenantLock(base, 'gamma', 'restore');
    try {
      interruptedForce('gamma', { lock: readFileSync(live.path, 'utf8') });
      writeFileSync(path.join(base, `.openclaw-lock-beta.${ownerTag()}.0123456789ab.tmp`), '');
      const before = readdirSync(base).sort();
      const tenants = await listTenants(base);
      expect(readdirSync(base).sort()).toEqual(before);
      expect(tenants).toEqual([
        { name: 'acme', state: 'ok' },
        { name: 'beta', state: 'ok' },
        { name: 'gamma', state: 'mid-commit', detail: 'a restore is moving it into place' },
      ]);
      const { tenants: summaries } = await summarizeTenants(base);
      expect(summaries.find((tenant) => tenant.name === 'gamma')).toEqual({ name: 'gamma', state: 'mid-commit', detail: 'a restore is moving it into place' });
      expect(summaries.find((tenant) => tenant.name === 'acme')).toMatchObject({ state: 'ok', files: 1 });
    } finally {
      await live.release();
    }
  });

  it('lists a tenant that needs a decision, with the reason, and keeps every tree', async () => {
    interruptedForce('gamma', { recreated: true });
    expect((await listTenantNames(base)).tenants).toEqual(['acme', 'beta', 'gamma']);
    const [gamma] = (await listTenants(base)).filter((tenant) => tenant.name === 'gamma');
    expect(gamma).toMatchObject({ state: 'needs-recovery', detail: expect.stringMatching(/^tenant "gamma" needs a decision .* --keep old\|new\|slot/) });
    // The sweep took over the dead lock to look, and gave it back; the trees stay.
    expect(readdirSync(base).sort()).toEqual(['.openclaw-aside-gamma-ba9876543210', '.openclaw-journal-gamma.json', '.openclaw-staging-gamma-0123456789ab', 'acme', 'beta', 'gamma']);

    const table = runCli(['--tenants-dir', base, 'tenants', 'list']);
    expect(table.status).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^NAME\s+SIZE\s+FILES\s+LAST MODIFIED\s+STATE$/);
    expect(table.stdout).toMatch(/^gamma\s+-\s+-\s+-\s+needs recovery: run "openclaw tenants recover gamma" for the details$/m);
    expect(table.stdout).toMatch(/^acme\s+\d.*\sok$/m);
    const json = JSON.parse(runCli(['--tenants-dir', base, '--json', 'tenants', 'list']).stdout);
    expect(json.tenants.find((tenant: { name: string }) => tenant.name === 'gamma')).toMatchObject({ state: 'needs-recovery' });

    const refused = runCli(['--tenants-dir', base, 'tenants', 'backup', 'gamma', '--to', path.join(dir.path, 'g.tar.zst')]);
    expect(refused.status).toBe(3);
    expect(refused.stderr).toMatch(/^openclaw: tenant "gamma" needs a decision .*holds 1 file in 2 directories, written since; .*\.openclaw-aside-gamma-ba9876543210 holds the previous tenant \(1 file in 1 directory\); .*\.openclaw-staging-gamma-0123456789ab holds the restored tenant, verified \(1 file in 1 directory\)\. Keep one with: openclaw tenants recover gamma --keep old\|new\|slot \(the others are deleted\)\n$/);

    const kept = runCli(['--tenants-dir', base, 'tenants', 'recover', 'gamma', '--keep', 'old']);
    expect(kept.stdout).toBe('Tenant "gamma": kept the previous tenant; removed the others\n');
    expect(readdirSync(base).sort()).toEqual(['acme', 'beta', 'gamma']);
    expect(readFileSync(path.join(base, 'gamma', 'config.json'), 'utf8')).toBe('old tenant');
    expect(runCli(['--tenants-dir', base, 'tenants', 'list']).stdout.split('\n')[0]).toMatch(/^NAME\s+SIZE\s+FILES\s+LAST MODIFIED$/);
  });

  it('takes the trash mark off a previous tenant kept back from trash', () => {
    // A commit killed between marking the old tenant as trash and moving it there left the mark in it.
    interruptedForce('gamma', { recreated: true });
    writeFileSync(path.join(base, '.openclaw-aside-gamma-ba9876543210', '.openclaw-trash'), 'openclaw trash 1\n');
    const kept = runCli(['--tenants-dir', base, 'tenants', 'recover', 'gamma', '--keep', 'old']);
    expect(kept.status).toBe(0);
    expect(readdirSync(path.join(base, 'gamma')).sort()).toEqual(['config.json']);
  });

  it('counts the files under a name that is not UTF-8 in the trees it asks the operator to choose from', () => {
    // Listed as text, such a directory was U+FFFD and led nowhere: an old tenant of 3 files in
    // 2 directories was shown as "1 file in 2 directories", to an operator choosing which to delete.
    interruptedForce('gamma', { recreated: true });
    const raw = Buffer.from(`${base}/.openclaw-aside-gamma-ba9876543210/sessions\xe9`, 'latin1');
    mkdirSync(raw);
    for (const name of ['a.jsonl', 'b\xff.jsonl']) writeFileSync(Buffer.concat([raw, Buffer.from(`/${name}`, 'latin1')]), 'old session');
    const refused = runCli(['--tenants-dir', base, 'tenants', 'recover', 'gamma']);
    expect(refused.status).toBe(3);
    expect(refused.stderr).toContain('.openclaw-aside-gamma-ba9876543210 holds the previous tenant (3 files in 2 directories)');
  });

  // A lock an older version's taker moved aside (`.stale-<rand>`: no owner in its name), the
  // taker killed before it removed it, stayed for good: `tenants list` and `tenants recover`
  // left both forms in place (reproduced with the CLI on a 3-day-old one). Now removed once
  // its mtime (the lock's last heartbeat, which the rename keeps) is an hour old, by the file
  // system's clock; a younger one is left (its taker may be at work), and neither makes the
  // tenant's lock be taken.
  it("removes a lock an older version's taker moved aside once it is an hour old, by the sweep and by the tenant's own recovery", async () => {
    const names = ['.openclaw-lock-beta.stale-0123456789ab', '.openclaw-lock-beta.0123456789ab.broken', '.openclaw-lock-acme.stale-ba9876543210'];
    for (const name of names) writeFileSync(path.join(base, name), deadLock);
    await listTenants(base);
    expect(readdirSync(base).sort()).toEqual([...names, 'acme', 'beta'].sort());
    const almost = new Date(Date.now() - 50 * 60 * 1000);
    for (const name of names) utimesSync(path.join(base, name), almost, almost);
    expect((await sweepBaseDir(base)).changed).toBe(false);
    expect(readdirSync(base).sort()).toEqual([...names, 'acme', 'beta'].sort());

    const old = new Date(Date.now() - 61 * 60 * 1000);
    for (const name of names) utimesSync(path.join(base, name), old, old);
    const swept = await sweepBaseDir(base, { except: 'acme' });
    expect(swept.changed).toBe(true);
    expect(swept.unsettled.size).toBe(0);
    expect(readdirSync(base).sort()).toEqual(['.openclaw-lock-acme.stale-ba9876543210', 'acme', 'beta']);
    const recovered = runCli(['--tenants-dir', base, 'tenants', 'recover', 'acme']);
    expect(recovered.status, recovered.stderr).toBe(0);
    expect(readdirSync(base).sort()).toEqual(['acme', 'beta']);
  });

  it('leaves a lock temporary of another host alone until it is stale', async () => {
    const foreign = `.openclaw-lock-beta.123-456-ffffffffffff.0123456789ab.tmp`;
    writeFileSync(path.join(base, foreign), '');
    await listTenants(base);
    expect(readdirSync(base)).toContain(foreign);
    const old = new Date(Date.now() - 120_000);
    utimesSync(path.join(base, foreign), old, old);
    await listTenants(base);
    expect(readdirSync(base)).not.toContain(foreign);
  });

  // Judged by this host's clock, a sweep on a host running 10 minutes ahead removed another
  // host's live leftovers; the file system's clock stamps them and tells their age.
  it('leaves a live lock temporary of another host alone when this host\'s clock runs ahead', async () => {
    const foreign = `.openclaw-lock-beta.123-456-ffffffffffff.0123456789ab.tmp`;
    writeFileSync(path.join(base, foreign), '');
    await withClockAhead(() => listTenants(base));
    expect(readdirSync(base).sort()).toEqual([foreign, 'acme', 'beta'].sort());
  });

  it('takes a tenant whose lock this process holds for busy without trying its lock (backup --all: one sweep per backup, each beside the others)', async () => {
    const held = await Promise.all(['acme', 'beta'].map((tenant) => acquireTenantLock(base, tenant, 'backup')));
    const links = vi.spyOn(fs, 'link');
    try {
      const sweep = await sweepBaseDir(base);
      expect(links).not.toHaveBeenCalled();
      expect(Object.fromEntries(sweep.unsettled)).toEqual({ acme: { state: 'busy' }, beta: { state: 'busy' } });
      expect(sweep.changed).toBe(false);
    } finally {
      links.mockRestore();
      for (const lock of held) await lock.release();
    }
    // Released, they are no longer this process's: the sweep finds nothing to settle.
    expect((await sweepBaseDir(base)).unsettled.size).toBe(0);
  });

  // doctor asks of each encrypted backup's scratch area whether its backup is gone: each
  // tenant's lock was judged by listing the base dir again, twice for a tenant with no lock.
  it("doctor's look for killed backups' scratch areas lists the base dir once, however many tenants have one", async () => {
    const tenants = Array.from({ length: 50 }, (_, index) => `t${String(index).padStart(2, '0')}`);
    const areas = tenants.map((tenant) => hiddenNames.scratch(tenant));
    for (const area of areas) mkdirSync(path.join(base, area), { mode: 0o700 });
    const live = hiddenNames.scratch('acme');
    mkdirSync(path.join(base, live), { mode: 0o700 });
    const held = await acquireTenantLock(base, 'acme', 'backup');
    const readdir = vi.spyOn(fs, 'readdir');
    try {
      expect(await deadScratchAreas(base)).toEqual([...areas].sort());
      expect(readdir.mock.calls.filter(([at]) => path.resolve(String(at)) === base)).toHaveLength(1);
    } finally {
      readdir.mockRestore();
      await held.release();
    }
  });
});

describe('leftovers outside the base dir', () => {
  it('a write into a directory removes temporary archives whose writer is gone, and no others', async () => {
    const out = path.join(dir.path, 'backups');
    mkdirSync(out);
    const dead = `.old.tar.zst.${deadTag}.0123456789ab.partial`;
    const mine = `.other.tar.zst.${ownerTag()}.0123456789ab.partial`;
    const foreignFresh = `.x.tar.zst.9-9-ffffffffffff.0123456789ab.partial`;
    const foreignStale = `.y.tar.zst.9-9-ffffffffffff.ba9876543210.partial`;
    const unknown = `.z.tar.zst.0123456789ab.partial`; // an older version's: no owner to judge
    for (const name of [dead, mine, foreignFresh, foreignStale, unknown]) writeFileSync(path.join(out, name), 'partial');
    const old = new Date(Date.now() - 120_000);
    utimesSync(path.join(out, foreignStale), old, old);
    await new LocalFileLocation(path.join(out, 'new.tar.zst')).write(Readable.from([Buffer.from('archive')]), {
      overwrite: false,
      metadata: { tenant: 'acme', formatVersion: 2, toolVersion: 't', createdAt: 'c' },
    });
    expect(readdirSync(out).sort()).toEqual([mine, foreignFresh, unknown, 'new.tar.zst'].sort());
  });

  it('a write into a directory leaves another host\'s live temporary archive alone when this host\'s clock runs ahead', async () => {
    const out = path.join(dir.path, 'backups');
    mkdirSync(out);
    const foreign = `.x.tar.zst.9-9-ffffffffffff.0123456789ab.partial`;
    writeFileSync(path.join(out, foreign), 'partial');
    const write = () =>
      new LocalFileLocation(path.join(out, 'new.tar.zst')).write(Readable.from([Buffer.from('archive')]), {
        overwrite: false,
        metadata: { tenant: 'acme', formatVersion: 2, toolVersion: 't', createdAt: 'c' },
      });
    await withClockAhead(write);
    expect(readdirSync(out).sort()).toEqual([foreign, 'new.tar.zst'].sort());
  });

  it('a backup removes scratch directories of dead backups on this machine only', async () => {
    const scratch = path.join(dir.path, 'tmp');
    mkdirSync(scratch);
    const names = [`openclaw-backup-${deadTag}-AbC123`, `openclaw-backup-${ownerTag()}-XyZ789`, `openclaw-backup-9-9-ffffffffffff-QwE456`, 'openclaw-backup-aB3dE5'];
    // 0700 as mkdtemp makes them, whatever the caller's umask (under umask 000 anyone could write in them: left alone).
    for (const name of names) mkdirSync(path.join(scratch, name), { mode: 0o700 });
    writeFileSync(path.join(scratch, names[0]!, '1-memory.sqlite'), 'snapshot');
    await TempArea.sweep(scratch);
    expect(readdirSync(scratch).sort()).toEqual(names.slice(1).sort());
    expect(thisProcess().pid).toBe(process.pid);
  });

  // 100,000 planted `openclaw-backup-<dead pid>-…` directories, each judged (a signal, a /proc
  // read) and lstat-ed through the thread pool in turn (~93 µs a name), added 9.3 s to every root
  // backup from the CLI. Each pid is judged once a sweep now, whatever start times its names say.
  it('judges each pid once however many scratch names carry it, and still removes only the dead areas this user made', async () => {
    const scratch = path.join(dir.path, 'tmp');
    mkdirSync(scratch);
    const planted = Array.from({ length: 300 }, (_, i) => `openclaw-backup-${deadTag}-P${String(i).padStart(5, '0')}`);
    const ownPidOtherStart = Array.from({ length: 100 }, (_, i) => `openclaw-backup-${process.pid}-${1000 + i}-${hostId()}-Q${String(i).padStart(5, '0')}`);
    const live = `openclaw-backup-${ownerTag()}-XyZ789`;
    const dead = `openclaw-backup-${deadTag}-AbC123`;
    for (const name of [...planted, ...ownPidOtherStart]) {
      mkdirSync(path.join(scratch, name));
      chmodSync(path.join(scratch, name), 0o777); // anyone may write in them: never ours to remove
    }
    for (const name of [live, dead]) mkdirSync(path.join(scratch, name), { mode: 0o700 });
    writeFileSync(path.join(scratch, dead, '1-memory.sqlite'), 'snapshot');
    const kill = vi.spyOn(process, 'kill');
    try {
      await TempArea.sweep(scratch);
      expect(kill.mock.calls.filter(([pid]) => pid === DEAD.pid)).toHaveLength(1);
      expect(kill.mock.calls.filter(([pid]) => pid === process.pid)).toHaveLength(1);
    } finally {
      kill.mockRestore();
    }
    expect(readdirSync(scratch).sort()).toEqual([...planted, ...ownPidOtherStart, live].sort());
  });

  // Anyone can make such a directory in /tmp: its owner could swap a directory in it for a
  // symlink while the removal runs by paths, and have a backup as root unlink files through it.
  it.runIf(process.getuid?.() === 0)('a backup leaves a dead backup\'s scratch directory alone unless this user owns it and only it may write in it', async () => {
    const scratch = path.join(dir.path, 'tmp');
    mkdirSync(scratch, { mode: 0o1777 });
    const names = [`openclaw-backup-${deadTag}-AbC123`, `openclaw-backup-${deadTag}-DeF456`, `openclaw-backup-${deadTag}-GhI789`, `openclaw-backup-${deadTag}-JkL012`];
    for (const name of names) mkdirSync(path.join(scratch, name), { mode: 0o700 });
    const victim = path.join(dir.path, 'victim');
    mkdirSync(victim);
    writeFileSync(path.join(victim, 'f'), 'root\'s');
    chownSync(path.join(scratch, names[1]!), 65534, 65534); // another user's, as made by them
    chmodSync(path.join(scratch, names[2]!), 0o777); // ours, but anyone may write in it
    await fs.symlink(victim, path.join(scratch, `openclaw-backup-${deadTag}-MnO345`));
    await TempArea.sweep(scratch);
    expect(readdirSync(scratch).sort()).toEqual([...names.slice(1, 3), `openclaw-backup-${deadTag}-MnO345`].sort());
    expect(readFileSync(path.join(victim, 'f'), 'utf8')).toBe('root\'s');
  });

  // One dead area that cannot be removed (here a tmpfs mounted inside it) made the sweep throw
  // at once, and the areas listed after it waited for the next sweep, which met it first again.
  it.runIf(CAN_CHECK_OPENED_PATHS)("a dead backup's scratch directory that cannot be removed leaves every other dead one removed, and the sweep then says why", async (context) => {
    const scratch = path.join(dir.path, 'tmp');
    mkdirSync(scratch);
    const names = ['AAaaa0', 'BBbbb1', 'CCccc2', 'DDddd3', 'EEeee4', 'FFfff5'].map((suffix) => `openclaw-backup-${deadTag}-${suffix}`);
    for (const name of names) {
      mkdirSync(path.join(scratch, name), { mode: 0o700 });
      writeFileSync(path.join(scratch, name, '1-memory.sqlite'), 'snapshot');
    }
    const blocked = names[0]!;
    await onTmpfs(context, path.join(scratch, blocked, 'mounted'), 'size=1m', async (mountPoint) => {
      writeFileSync(path.join(mountPoint, 'shared'), 'not ours');
      await expect(TempArea.sweep(scratch)).rejects.toThrow(/mount point/);
      expect(readdirSync(scratch)).toEqual([blocked]);
      expect(readFileSync(path.join(mountPoint, 'shared'), 'utf8')).toBe('not ours');
    });
  });

  // The backup function sweeps its /tmp first, within its deadline (functions/scratch-guard.ts).
  // The deadline was looked at between areas only: one dead area of 100,000 files, removed
  // whole once begun, answered a dry run from the bundle 4.4 s into a 2 s invocation (Lambda
  // would have ended it with no answer). Now the removal stops inside the area too, between
  // batches of its files, and the next sweep goes on with what is left.
  it.runIf(CAN_CHECK_OPENED_PATHS)("a sweep stopped by its signal stops inside a dead area holding many files, and the next one finishes it", async () => {
    const scratch = path.join(dir.path, 'tmp');
    mkdirSync(scratch);
    const area = path.join(scratch, `openclaw-backup-${deadTag}-AbC123`);
    mkdirSync(area, { mode: 0o700 });
    for (let i = 0; i < 400; i++) writeFileSync(path.join(area, `${i}-spool`), 'x');
    // A deadline that comes once the removal has looked at it a few times (after its first
    // batches): as the invocation's does, in the middle of a large area.
    let looks = 0;
    const deadline = {
      get aborted() {
        return ++looks > 6;
      },
    } as AbortSignal;
    await TempArea.sweep(scratch, deadline);
    const left = readdirSync(area).length;
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(400);
    await TempArea.sweep(scratch);
    expect(readdirSync(scratch)).toEqual([]);
  });
});
