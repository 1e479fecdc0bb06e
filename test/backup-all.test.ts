// `tenants backup --all --to TEMPLATE`: every tenant, a bounded number at once, one summary,
// exit 0 only if all succeeded and each failure named; to local paths and to s3rver (there
// also encrypted with --encrypt-to, restored with --identity); the
// README's shell loop still works; and the template's rules as usage errors.

import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, promises as fsp, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import type { BackupAllResult } from '../shared/backup/backup-all.js';
import { localOperations } from '../shared/operations.js';
import { hostId } from '../shared/tenant/process-owner.js';
import { journalPathFor } from '../shared/tenant/slot.js';
import { createS3Client } from '../shared/storage/s3-client.js';
import { makeTenants, s3Flags } from './helpers/backups.js';
import { onTmpfs } from './helpers/tmpfs.js';
import { runMain } from './helpers/run-main.js';
import { startS3Server, type S3TestServer } from './helpers/s3-server.js';
import { cliPath, describeTree, runCli, tempDir } from './helpers/tree.js';

const dir = tempDir('openclaw-all-');
const tenantsDir = path.join(dir.path, 'tenants');
const TENANTS = ['acme', 'beta', 'gamma'];

beforeAll(() => makeTenants(tenantsDir, TENANTS));
afterAll(() => dir.cleanup());

const all = (...args: string[]) => runMain(['--tenants-dir', tenantsDir, 'tenants', 'backup', '--all', ...args]);
/**
 * Runs `command` and gives the UTC days its {date} may have been filled in with: the day it
 * started, and the next when it ran across midnight (the day read after the run alone named
 * the wrong one then).
 */
async function dated<T>(command: () => Promise<T>): Promise<[T, string[]]> {
  const today = () => new Date().toISOString().slice(0, 10);
  const before = today();
  const result = await command();
  return [result, [...new Set([before, today()])]];
}

describe('backup --all to local paths', () => {
  it('backs up every tenant to its own archive and prints one summary', async () => {
    const template = path.join(dir.path, 'one', '{tenant}', '{date}.tar.zst');
    const [run, days] = await dated(() => all('--to', template, '--jobs', '2'));
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const day = days.find((candidate) => existsSync(path.join(dir.path, 'one', 'acme', `${candidate}.tar.zst`)));
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^Backed up 3 of 3 tenants \(2 at once\) in [\d.]+ s$/);
    // Fewer tenants than --jobs: the summary names the backups that ran at once, not the option.
    const single = await runMain(['--tenants-dir', tenantsDir, 'tenants', 'backup', '--all', '--to', path.join(dir.path, 'one-jobs', '{tenant}.tar.zst'), '--jobs', '4', '--json']);
    expect(JSON.parse(single.stdout)).toMatchObject({ jobs: 3 });
    expect(lines[1]).toMatch(/^\s+TENANT\s+CONTENT\s+STORED\s+TIME\s+ARCHIVE$/);
    for (const [index, tenant] of TENANTS.entries()) {
      const archive = path.join(dir.path, 'one', tenant, `${day}.tar.zst`);
      expect(lines[2 + index]).toMatch(new RegExp(`^\\s+ok\\s+${tenant}\\s.*${archive.replace(/[.]/g, '\\.')}$`));
      expect(existsSync(archive)).toBe(true);
    }
    // Each archive holds its own tenant, and restores.
    const verify = await runMain(['--json', 'tenants', 'verify', '--from', path.join(dir.path, 'one', 'beta', `${day}.tar.zst`), '--no-record']);
    expect(JSON.parse(verify.stdout)).toMatchObject({ tenant: 'beta', verified: true });
  });

  it('run again after a partial run, names --skip-existing (the tenants\' lines say --overwrite), which then counts every archive there done', async () => {
    const template = path.join(dir.path, 'again', '{tenant}.tar.zst');
    const first = await all('--to', template);
    expect(first.status).toBe(0);
    rmSync(path.join(dir.path, 'again', 'gamma.tar.zst'));
    const again = await all('--to', template);
    expect(again.status).toBe(1);
    expect(again.stderr).toBe('openclaw: 2 backups of 3 failed: acme, beta (2 of them because an archive is already at its destination: run it again with --skip-existing to back up only the others, or --overwrite to replace those archives)\n');
    const resumed = await all('--to', template, '--skip-existing');
    expect(resumed).toMatchObject({ status: 0, stderr: '' });
    // The run before backed gamma up, whose archive was missing.
    expect(resumed.stdout).toMatch(/^Backed up 0 of 3 tenants .*; 3 skipped \(already there\)\n/);
  });

  it('goes on past a failure, exits 1, and names each failure', async () => {
    const template = path.join(dir.path, 'two', '{tenant}.tar.zst');
    mkdirSync(path.join(dir.path, 'two'), { recursive: true });
    writeFileSync(path.join(dir.path, 'two', 'beta.tar.zst'), 'already here');
    const run = await runMain(['--tenants-dir', tenantsDir, '--json', 'tenants', 'backup', '--all', '--to', template]);
    expect(run.status).toBe(1);
    expect(run.stderr).toBe('openclaw: 1 backup of 3 failed: beta (1 of them because an archive is already at its destination: run it again with --skip-existing to back up only the others, or --overwrite to replace those archives)\n');
    const result = JSON.parse(run.stdout) as BackupAllResult;
    expect(result).toMatchObject({ operation: 'backup-all', succeeded: 2, failed: 1, template });
    expect(result.results.map((outcome) => [outcome.tenant, outcome.ok])).toEqual([['acme', true], ['beta', false], ['gamma', true]]);
    expect(result.results[1]).toMatchObject({ ok: false, error: { code: 'DESTINATION_EXISTS', outcome: 'refused' } });
    expect(readdirSync(path.join(dir.path, 'two')).sort()).toEqual(['acme.tar.zst', 'beta.tar.zst', 'gamma.tar.zst']);

    const human = await all('--to', template);
    expect(human.status).toBe(1);
    expect(human.stdout).toMatch(/; 3 FAILED\n/);
    // The archive named once, by the message (it was `…/beta.tar.zst: …/beta.tar.zst already exists`).
    expect(human.stdout).toMatch(/FAILED\s+beta\s+-\s+-\s+-\s+\S+\/two\/beta\.tar\.zst already exists: pass --overwrite to replace it\n/);
  });

  it('names a tenant whose directory is a symlink as a failure (exit 1) instead of passing over it in silence', async () => {
    const base = path.join(dir.path, 'with-link');
    makeTenants(base, ['acme']);
    makeTenants(path.join(dir.path, 'elsewhere'), ['moved']);
    symlinkSync(path.join(dir.path, 'elsewhere', 'moved'), path.join(base, 'moved'));
    const template = path.join(dir.path, 'linked-out', '{tenant}.tar.zst');
    const run = await runMain(['--tenants-dir', base, '--json', 'tenants', 'backup', '--all', '--to', template]);
    expect(run.status).toBe(1);
    expect(run.stderr).toBe('openclaw: 1 backup of 2 failed: moved\n');
    const result = JSON.parse(run.stdout) as BackupAllResult;
    expect(result.results.map((outcome) => [outcome.tenant, outcome.ok])).toEqual([['acme', true], ['moved', false]]);
    expect(result.results[1]).toMatchObject({ ok: false, error: { code: 'TENANT_NOT_FOUND', message: expect.stringMatching(/is a symlink; refusing to follow it/) } });
    expect(readdirSync(path.join(dir.path, 'linked-out'))).toEqual(['acme.tar.zst']);
  });

  it('reports a directory whose name is no tenant name (Acme, acme.old) as not backed up (exit 1), never tried', async () => {
    const base = path.join(dir.path, 'with-strays');
    makeTenants(base, ['acme']);
    for (const name of ['Acme', 'acme.old', 'lost+found', '.hidden']) mkdirSync(path.join(base, name));
    const template = path.join(dir.path, 'strays-out', '{tenant}.tar.zst');
    const run = await runMain(['--tenants-dir', base, '--json', 'tenants', 'backup', '--all', '--to', template]);
    expect(run.status).toBe(1);
    expect(run.stderr).toBe('openclaw: 2 backups of 3 failed: Acme, acme.old\n');
    const result = JSON.parse(run.stdout) as BackupAllResult;
    expect(result).toMatchObject({ succeeded: 1, failed: 2 });
    expect(result.results.map((outcome) => [outcome.tenant, outcome.ok])).toEqual([['acme', true], ['Acme', false], ['acme.old', false]]);
    expect(result.results[1]).toMatchObject({ ok: false, error: { code: 'INVALID_NAME', message: expect.stringMatching(/^not backed up: "Acme" in .* is not a valid tenant name/) } });
    // Never tried, it had no archive: no `to` (it was "", an archive named by nothing).
    expect(result.results.filter((outcome) => !outcome.ok).map((outcome) => 'to' in outcome)).toEqual([false, false]);
    expect('to' in result.results[0]!).toBe(true);
    expect(readdirSync(path.join(dir.path, 'strays-out'))).toEqual(['acme.tar.zst']);
    const human = await runMain(['--tenants-dir', base, 'tenants', 'backup', '--all', '--to', template, '--overwrite']);
    expect(human.status).toBe(1);
    expect(human.stdout).toMatch(/; 2 FAILED\n/);
    expect(human.stdout).toMatch(/FAILED\s+acme\.old\s+-\s+-\s+-\s+not backed up: "acme\.old" in /);
  });

  it('refuses a template without {tenant}, a bad placeholder, a tenant with --all, and bad --jobs, as usage errors', async () => {
    for (const args of [
      ['--to', path.join(dir.path, 'x', '{date}.tar.zst')],
      ['--to', path.join(dir.path, '{tenant}', '{hour}.tar.zst')],
      ['--to', path.join(dir.path, '{tenant}.tar.zst'), '--jobs', '0'],
      ['--to', path.join(dir.path, '{tenant}.tar.zst'), '--jobs', 'many'],
    ]) {
      const run = await all(...args);
      expect(run.status, args.join(' ')).toBe(2);
      expect(run.stderr).toMatch(/^openclaw: /);
    }
    expect((await all('--to', path.join(dir.path, 'x', '{date}.tar.zst'))).stderr).toMatch(/--to must contain \{tenant\}/);
    // An S3 template whose keys no tenant could be stored under is refused before any tenant is backed up.
    for (const [template, message] of [
      ['s3://backups/all/{tenant}//{date}.tar.zst', /empty segment/],
      ['s3://bk/{tenant}.tar.zst', /invalid S3 bucket name "bk"/],
    ] as const) {
      const run = await all('--to', template);
      expect(run.status, template).toBe(2);
      expect(run.stderr).toMatch(message);
      expect(run.stdout).toBe('');
    }
    expect((await runMain(['--tenants-dir', tenantsDir, 'tenants', 'backup', 'acme', '--all', '--to', '/tmp/{tenant}'])).status).toBe(2);
    expect((await runMain(['--tenants-dir', tenantsDir, 'tenants', 'backup', '--to', '/tmp/x.tar.zst'])).stderr).toMatch(/name the tenant to back up, or give --all/);
  });

  it('fails (exit 1) on a missing base dir instead of backing up nothing', async () => {
    const run = await runMain(['--tenants-dir', path.join(dir.path, 'no-such-dir'), 'tenants', 'backup', '--all', '--to', path.join(dir.path, '{tenant}.tar.zst')]);
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(`openclaw: the tenant base dir ${path.join(dir.path, 'no-such-dir')} does not exist (set it with --tenants-dir or OPENCLAW_TENANTS_DIR)\n`);
    const json = await runMain(['--json', '--tenants-dir', path.join(dir.path, 'no-such-dir'), 'tenants', 'backup', '--all', '--to', path.join(dir.path, '{tenant}.tar.zst')]);
    expect(json.status).toBe(1);
    expect(JSON.parse(json.stdout).error.code).toBe('TENANTS_DIR_NOT_FOUND');
  });

  it('runs more than ten at once without a word on stderr (each backup listens on a signal of its own)', () => {
    const base = path.join(dir.path, 'many');
    const names = Array.from({ length: 14 }, (_, index) => `t${String(index).padStart(2, '0')}`);
    for (const name of names) {
      mkdirSync(path.join(base, name, 'workspace'), { recursive: true });
      writeFileSync(path.join(base, name, 'workspace', 'note.md'), `${name}\n`);
    }
    const run = runCli(['--tenants-dir', base, 'tenants', 'backup', '--all', '--to', path.join(dir.path, 'many-out', '{tenant}.tar.zst'), '--jobs', '14']);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(readdirSync(path.join(dir.path, 'many-out')).sort()).toEqual(names.map((name) => `${name}.tar.zst`));
  });

  it('the README\'s shell loop still works beside it', () => {
    const out = path.join(dir.path, 'loop');
    const loop =
      `openclaw() { node ${JSON.stringify(cliPath)} --tenants-dir ${JSON.stringify(tenantsDir)} "$@"; }; ` +
      `for t in $(openclaw tenants list --names); do openclaw tenants backup "$t" --to "${out}/$t/$(date +%F).tar.zst"; done`;
    execFileSync('bash', ['-e', '-c', loop], { stdio: 'pipe' });
    expect(readdirSync(out).sort()).toEqual(TENANTS);
  });
});

describe('backup --all to s3rver', () => {
  let server: S3TestServer;
  let client: S3Client;
  beforeAll(async () => {
    server = await startS3Server();
    client = await createS3Client(server.clientOptions);
  });
  afterAll(async () => {
    client.destroy();
    await server.dispose();
  });

  it('writes one object per tenant under the template\'s key', async () => {
    const [run, days] = await dated(() => all('--to', 's3://backups/backups/{tenant}/{date:%Y/%m/%d}-{time}.tar.zst', ...s3Flags(server)));
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const keys = ((await client.send(new ListObjectsV2Command({ Bucket: 'backups' }))).Contents ?? []).map((item) => item.Key!);
    expect(keys).toHaveLength(3);
    for (const [index, tenant] of TENANTS.entries()) expect(keys[index]).toMatch(new RegExp(`^backups/${tenant}/(${days.join('|').replace(/-/g, '/')})-\\d{6}\\.tar\\.zst$`));
    const listed = await runMain(['--json', 'tenants', 'backups', 'gamma', '--in', 's3://backups/backups/', ...s3Flags(server)]);
    expect(JSON.parse(listed.stdout).backups).toHaveLength(1);
  });

  it('with --encrypt-to stores age files: listed as encrypted, restored with --identity', async () => {
    const key = path.join(dir.path, 'all-key.txt');
    execFileSync('age-keygen', ['-o', key], { stdio: 'pipe' });
    const recipient = execFileSync('age-keygen', ['-y', key]).toString().trim();
    const run = await all('--to', 's3://backups/age/{tenant}/{date}.tar.zst.age', '--encrypt-to', recipient, ...s3Flags(server));
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const listed = await runMain(['--json', 'tenants', 'backups', 'beta', '--in', 's3://backups/age/', ...s3Flags(server)]);
    expect(JSON.parse(listed.stdout).backups).toEqual([expect.objectContaining({ content: 'encrypted', recipients: ['X25519'] })]);
    const url = (JSON.parse(listed.stdout) as { backups: { location: string }[] }).backups[0]!.location;
    expect(url).toMatch(/^s3:\/\/backups\/age\/beta\/\d{4}-\d\d-\d\d\.tar\.zst\.age$/);
    const plain = await runMain(['--tenants-dir', tenantsDir, 'tenants', 'restore', '--from', url, '--as', 'beta-copy', ...s3Flags(server)]);
    expect(plain.status).toBe(2);
    expect(plain.stderr).toMatch(/is encrypted with age/);
    const restored = await runMain(['--tenants-dir', tenantsDir, 'tenants', 'restore', '--from', url, '--as', 'beta-copy', '--identity', key, ...s3Flags(server)]);
    expect(restored.stderr).toBe('');
    expect(restored.status).toBe(0);
    const tree = (name: string) => describeTree(path.join(tenantsDir, name), { exclude: (rel) => rel.startsWith('pty') });
    expect(tree('beta-copy')).toEqual(tree('beta'));
    rmSync(path.join(tenantsDir, 'beta-copy'), { recursive: true, force: true });
  });
});

describe('backup --all at fleet scale', () => {
  /** Tiny tenants t00…: one session file each. */
  const fleet = (name: string, count: number) => {
    const base = path.join(dir.path, name);
    for (let index = 0; index < count; index++) {
      const tenant = path.join(base, `t${String(index).padStart(2, '0')}`, 'sessions');
      mkdirSync(tenant, { recursive: true });
      writeFileSync(path.join(tenant, 's.json'), `{"tenant":${index}}`);
    }
    return base;
  };

  /** Listings of the base dir and of the one destination directory during a `backup --all` of `count` tenants. */
  const listingsOf = async (count: number) => {
    const base = fleet(`fleet-${count}`, count);
    const out = path.join(dir.path, `fleet-${count}-out`);
    // Also reaches `import { readdir } from 'node:fs/promises'` once the builtins' exports are synced.
    const readdir = vi.spyOn(fsp, 'readdir');
    syncBuiltinESMExports();
    try {
      const run = await runMain(['--tenants-dir', base, 'tenants', 'backup', '--all', '--to', path.join(out, '{tenant}.tar.zst'), '--jobs', '2']);
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      const of = (directory: string) => readdir.mock.calls.filter(([at]) => path.resolve(String(at)) === directory).length;
      return { base: of(base), destination: of(out), tmpdir: of(path.resolve(os.tmpdir())) };
    } finally {
      readdir.mockRestore();
      syncBuiltinESMExports();
    }
  };

  it('lists the base dir, the destination directory and $TMPDIR as often for 12 tenants as for 3 (each backup listing them made the run quadratic)', async () => {
    const few = await listingsOf(3);
    const many = await listingsOf(12);
    expect(many).toEqual(few);
    expect(few.destination).toBe(1);
    expect(few.tmpdir).toBe(1);
  });

  // The run's sweep of $TMPDIR failed on a dead area it could not remove, and each backup then
  // swept again, meeting that area each time.
  it('lists $TMPDIR once for the run even when a dead scratch area there cannot be removed', async (context) => {
    const tmpdir = path.join(dir.path, 'fleet-tmpdir');
    mkdirSync(tmpdir);
    const blocked = path.join(tmpdir, `openclaw-backup-${2 ** 22 + 777}-1-${hostId()}-AbC123`);
    mkdirSync(blocked, { mode: 0o700 });
    const previous = process.env.TMPDIR;
    process.env.TMPDIR = tmpdir;
    try {
      await onTmpfs(context, path.join(blocked, 'mounted'), 'size=1m', async () => {
        expect((await listingsOf(4)).tmpdir).toBe(1);
      });
    } finally {
      if (previous === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = previous;
    }
  });

  it('says of a tenant removed after the run listed the tenants that it was, failed by name, not only "no tenant" as if mistyped', async () => {
    const base = fleet('fleet-removed', 3);
    let removed = false;
    const result = (await localOperations(base).backupAll(
      { to: path.join(dir.path, 'fleet-removed-out', '{tenant}.tar.zst'), jobs: 1 },
      {
        onProgress: (progress) => {
          if (removed || progress.running.length === 0) return;
          removed = true;
          rmSync(path.join(base, 't02'), { recursive: true });
        },
      },
    )) as BackupAllResult;
    expect(removed).toBe(true);
    expect(result).toMatchObject({ succeeded: 2, failed: 1 });
    expect(result.results[2]).toEqual({
      tenant: 't02',
      to: path.join(dir.path, 'fleet-removed-out', 't02.tar.zst'),
      ok: false,
      error: { code: 'TENANT_NOT_FOUND', outcome: 'refused', message: `no tenant "t02" in ${base} (see tenants list): it was there when this run listed the tenants, and was removed or renamed since` },
    });
  });

  it("still settles a tenant's restore killed after the run's one listing, before backing the tenant up, and refuses one that needs a decision", async () => {
    const base = fleet('fleet-late', 3);
    const restored = { 'sessions/s.json': '{"restored":true}', 'config.json': 'restored' };
    // Planted once the first backup runs, after the run's listing: t02 killed between the
    // commit's journal and its rename (row 3); t01's slot re-created while the old tenant was
    // aside (row 9: a decision).
    const plantKilledRestores = () => {
      const staging = (tenant: string) => {
        const name = `.openclaw-staging-${tenant}-0123456789ab`;
        for (const [file, text] of Object.entries(restored)) {
          mkdirSync(path.dirname(path.join(base, name, file)), { recursive: true });
          writeFileSync(path.join(base, name, file), text);
        }
        return name;
      };
      rmSync(path.join(base, 't02'), { recursive: true });
      writeFileSync(journalPathFor(base, 't02'), JSON.stringify({ tenant: 't02', phase: 'committing', staging: staging('t02') }));
      const aside = '.openclaw-aside-t01-ba9876543210';
      renameSync(path.join(base, 't01'), path.join(base, aside));
      mkdirSync(path.join(base, 't01'));
      writeFileSync(path.join(base, 't01', 'gateway.json'), 'written after the old tenant went aside');
      writeFileSync(journalPathFor(base, 't01'), JSON.stringify({ tenant: 't01', phase: 'committing', staging: staging('t01'), aside }));
    };
    let planted = false;
    const out = path.join(dir.path, 'fleet-late-out');
    const result = (await localOperations(base).backupAll(
      { to: path.join(out, '{tenant}.tar.zst'), jobs: 1 },
      {
        onProgress: (progress) => {
          if (planted || progress.running.length === 0) return;
          planted = true;
          plantKilledRestores();
        },
      },
    )) as BackupAllResult;
    expect(planted).toBe(true);
    const [t00, t01, t02] = result.results;
    expect(t00).toMatchObject({ ok: true });
    expect(t01).toMatchObject({ ok: false, error: { code: 'RECOVERY_NEEDED' } });
    expect(readdirSync(base).filter((name) => name.includes('-t01')).sort()).toEqual(['.openclaw-aside-t01-ba9876543210', '.openclaw-journal-t01.json', '.openclaw-staging-t01-0123456789ab']);
    expect(t02).toMatchObject({ ok: true, result: { recovered: 'finished-commit', files: 2 } });
    expect(readFileSync(path.join(base, 't02', 'config.json'), 'utf8')).toBe('restored');
    expect(readdirSync(base).filter((name) => name.includes('-t02'))).toEqual([]);
  });
});
