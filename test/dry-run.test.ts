// `--dry-run` on backup (what would be archived and what left out, no content read, nothing
// written) and on restore (what the archive holds, where it would go, what it would replace;
// the archive is read and checked, nothing written), with the exit code the real run would
// have; to and from a local path and s3rver.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import type { BackupPlan } from '../shared/backup/backup-plan.js';
import type { RestorePlan } from '../shared/restore/restore-plan.js';
import { backupAt, flipByte, makeTenants, s3Flags } from './helpers/backups.js';
import { runMain } from './helpers/run-main.js';
import { startS3Server, type S3TestServer } from './helpers/s3-server.js';
import { describeTree, tempDir } from './helpers/tree.js';

const dir = tempDir('openclaw-dry-');
const tenantsDir = path.join(dir.path, 'tenants');
const archive = path.join(dir.path, 'backups', 'acme.tar.zst');
let socket: net.Server | undefined;

beforeAll(async () => {
  makeTenants(tenantsDir, ['acme']);
  const acme = path.join(tenantsDir, 'acme');
  // What a backup leaves out: a socket, and the companion of a database in use.
  socket = net.createServer();
  await new Promise<void>((resolve) => socket!.listen(path.join(acme, 'gateway.sock'), resolve));
  writeFileSync(path.join(acme, 'memory', 'scratch.sqlite-wal'), 'wal');
  writeFileSync(path.join(acme, 'memory', 'scratch.sqlite'), 'not really sqlite');
  await backupAt(tenantsDir, 'acme', archive, new Date('2026-06-03T03:00:00.000Z'));
});
afterAll(async () => {
  await new Promise<void>((resolve) => socket?.close(() => resolve()) ?? resolve());
  dir.cleanup();
});

describe('backup --dry-run', () => {
  it('says what would be archived and left out, and writes nothing', async () => {
    const before = describeTree(dir.path, { mtimes: false });
    const to = path.join(dir.path, 'out', 'acme.tar.zst');
    const run = await runMain(['--tenants-dir', tenantsDir, '--json', 'tenants', 'backup', 'acme', '--to', to, '--dry-run']);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const plan = JSON.parse(run.stdout) as BackupPlan;
    expect(plan).toMatchObject({ operation: 'backup-plan', tenant: 'acme', location: to, destination: 'absent' });
    expect(plan.files).toBeGreaterThan(10);
    expect(plan.bytes).toBeGreaterThan(64 * 1024);
    expect(plan.skipped.map((note) => [note.path, note.reason])).toEqual(
      expect.arrayContaining([
        ['pty', 'ephemeral terminal state is never backed up'],
        ['gateway.sock', 'socket cannot be archived'],
      ]),
    );
    expect(plan.mayBeSkipped).toEqual([{ path: 'memory/scratch.sqlite-wal', reason: expect.stringMatching(/^SQLite companion of memory\/scratch\.sqlite: left out if/) as unknown }]);
    expect(plan.largest[0]!.bytes).toBeGreaterThanOrEqual(plan.largest.at(-1)!.bytes);
    // The real backup (made in beforeAll) archived as many: the companion too, its "database"
    // not being SQLite, which only its content could tell.
    const real = JSON.parse((await runMain(['--json', 'tenants', 'verify', '--from', archive, '--no-record'])).stdout);
    expect([plan.files, plan.directories, plan.symlinks]).toEqual([real.files, real.directories, real.symlinks]);
    expect(describeTree(dir.path, { mtimes: false })).toEqual(before);
    expect(existsSync(path.join(dir.path, 'out'))).toBe(false);
  });

  it('prints the plan for people', async () => {
    const run = await runMain(['--tenants-dir', tenantsDir, 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'out.tar.zst'), '--dry-run']);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`Dry run: would back up tenant "acme" to ${path.join(dir.path, 'out.tar.zst')}`);
    expect(lines[1]).toMatch(/^\s+\d+ files, \d+ directories, 1 symlink; [\d.]+ KiB of content as the files are now$/);
    expect(run.stdout).toMatch(/\n  left out 2:\n    gateway\.sock: socket cannot be archived\n    pty: ephemeral terminal state is never backed up\n/);
    expect(lines.at(-1)).toBe('  nothing was read or written');
  });

  it('exits 3, as the backup would, when the destination exists without --overwrite; 0 with it', async () => {
    const run = await runMain(['--tenants-dir', tenantsDir, 'tenants', 'backup', 'acme', '--to', archive, '--dry-run']);
    expect(run.status).toBe(3);
    expect(run.stdout).toMatch(/the backup would be REFUSED: .*already exists: pass --overwrite to replace it/);
    const overwrite = await runMain(['--tenants-dir', tenantsDir, 'tenants', 'backup', 'acme', '--to', archive, '--dry-run', '--overwrite']);
    expect(overwrite.status).toBe(0);
    expect(overwrite.stdout.split('\n')[0]).toMatch(/, replacing the archive there \(--overwrite\)$/);
  });

  // It said "the backup would be REFUSED" (the words of exit 3) and exited 2, as the backup does.
  it('exits 2, as the backup would, for an S3 destination with no region, saying the command cannot run as given', async () => {
    vi.stubEnv('AWS_REGION', undefined);
    vi.stubEnv('AWS_DEFAULT_REGION', undefined);
    vi.stubEnv('AWS_PROFILE', undefined);
    vi.stubEnv('AWS_CONFIG_FILE', path.join(dir.path, 'no-aws-config'));
    try {
      const run = await runMain(['--tenants-dir', tenantsDir, 'tenants', 'backup', 'acme', '--to', 's3://bucket/acme.tar.zst', '--dry-run']);
      const real = await runMain(['--tenants-dir', tenantsDir, 'tenants', 'backup', 'acme', '--to', 's3://bucket/acme.tar.zst']);
      expect([run.status, real.status, run.stderr]).toEqual([2, 2, '']);
      expect(run.stdout.trimEnd().split('\n').at(-1)).toBe('  the backup cannot run as given: no AWS region configured: pass --region or set AWS_REGION');
      expect(real.stderr).toBe('openclaw: no AWS region configured: pass --region or set AWS_REGION\n');
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('exits 3 for a missing tenant, as the backup would', async () => {
    const run = await runMain(['--tenants-dir', tenantsDir, 'tenants', 'backup', 'nobody', '--to', path.join(dir.path, 'n.tar.zst'), '--dry-run']);
    expect(run.status).toBe(3);
    expect(run.stderr).toBe(`openclaw: no tenant "nobody" in ${tenantsDir} (see tenants list)\n`);
  });
});

describe('restore --dry-run', () => {
  it('reads and checks the archive, says where it would go, and writes nothing', async () => {
    const target = path.join(dir.path, 'gateway-b');
    mkdirSync(target);
    const run = await runMain(['--tenants-dir', target, '--json', 'tenants', 'restore', '--from', archive, '--dry-run']);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const plan = JSON.parse(run.stdout) as RestorePlan;
    expect(plan).toMatchObject({ operation: 'restore-plan', tenant: 'acme', archiveTenant: 'acme', target: path.join(target, 'acme'), verified: true, backupCreatedAt: '2026-06-03T03:00:00.000Z' });
    expect(plan.replaces).toBeUndefined();
    expect(plan.topLevel.map((entry) => entry.name)).toEqual(expect.arrayContaining(['memory', 'sessions', 'workspace']));
    expect(readdirSync(target)).toEqual([]);
  });

  it('says what it would replace, and exits 3 without --force as the restore would', async () => {
    const before = describeTree(tenantsDir);
    const run = await runMain(['--tenants-dir', tenantsDir, 'tenants', 'restore', '--from', archive, '--dry-run']);
    expect(run.status).toBe(3);
    expect(run.stdout).toMatch(/^Dry run: would restore tenant "acme" from .* into .*\/acme\n/);
    expect(run.stdout).toMatch(/\n  it would REPLACE the tenant there now: \d+ files, [\d.]+ KiB, last modified \d{4}-/);
    expect(run.stdout).toMatch(/the restore would be REFUSED: tenant "acme" already exists in .*: restore with --force to replace it/);
    const forced = await runMain(['--tenants-dir', tenantsDir, '--json', 'tenants', 'restore', '--from', archive, '--dry-run', '--force']);
    expect(forced.status).toBe(0);
    expect(JSON.parse(forced.stdout).replaces.files).toBeGreaterThan(10);
    const renamed = JSON.parse((await runMain(['--tenants-dir', tenantsDir, '--json', 'tenants', 'restore', '--from', archive, '--dry-run', '--as', 'acme-copy'])).stdout) as RestorePlan;
    expect(renamed).toMatchObject({ tenant: 'acme-copy', archiveTenant: 'acme', target: path.join(tenantsDir, 'acme-copy') });
    expect(describeTree(tenantsDir)).toEqual(before);
  });

  it('refuses a damaged archive as the restore would (exit 3)', async () => {
    const damaged = path.join(dir.path, 'damaged.tar.zst');
    execFileSync('cp', [archive, damaged]);
    flipByte(damaged, 0.6);
    const run = await runMain(['--tenants-dir', path.join(dir.path, 'empty'), 'tenants', 'restore', '--from', damaged, '--dry-run']);
    expect(run.status).toBe(3);
    expect(existsSync(path.join(dir.path, 'empty'))).toBe(false);
  });
});

describe('dry runs with s3rver', () => {
  let server: S3TestServer;
  beforeAll(async () => {
    server = await startS3Server();
    await backupAt(tenantsDir, 'acme', 's3://backups/acme/1.tar.zst', new Date('2026-06-03T03:00:00.000Z'), server);
  });
  afterAll(() => server.dispose());

  it('backup --dry-run checks the S3 destination as the backup does', async () => {
    const free = await runMain(['--tenants-dir', tenantsDir, '--json', 'tenants', 'backup', 'acme', '--to', 's3://backups/acme/2.tar.zst', '--dry-run', ...s3Flags(server)]);
    expect(free.status).toBe(0);
    expect(JSON.parse(free.stdout)).toMatchObject({ destination: 'absent', location: 's3://backups/acme/2.tar.zst' });
    const taken = await runMain(['--tenants-dir', tenantsDir, 'tenants', 'backup', 'acme', '--to', 's3://backups/acme/1.tar.zst', '--dry-run', ...s3Flags(server)]);
    expect(taken.status).toBe(3);
    const missingBucket = await runMain(['--tenants-dir', tenantsDir, 'tenants', 'backup', 'acme', '--to', 's3://nobucket/acme/1.tar.zst', '--dry-run', ...s3Flags(server)]);
    // Exit 1, as the backup's own NO_SUCH_BUCKET (the dry run exited 3), and said so: it would fail, not be refused.
    expect(missingBucket.status).toBe(1);
    expect(missingBucket.stdout).toMatch(/the backup would FAIL: S3 bucket "nobucket" does not exist/);
    const real = await runMain(['--tenants-dir', tenantsDir, 'tenants', 'backup', 'acme', '--to', 's3://nobucket/acme/1.tar.zst', ...s3Flags(server)]);
    expect(real.status).toBe(1);
    expect(real.stderr).toMatch(/S3 bucket "nobucket" does not exist/);
  });

  it('restore --dry-run reads the object and writes nothing', async () => {
    const target = path.join(dir.path, 'gateway-c');
    const run = await runMain(['--tenants-dir', target, '--json', 'tenants', 'restore', '--from', 's3://backups/acme/1.tar.zst', '--dry-run', ...s3Flags(server)]);
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ tenant: 'acme', verified: true });
    expect(existsSync(target)).toBe(false);
  });
});
