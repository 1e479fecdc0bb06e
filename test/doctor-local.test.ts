// `openclaw doctor` without a stack checks, as root, the directories above the local base dir
// (OpenSSH's StrictModes rule): one another user owns, or that is group- or other-writable
// without the sticky bit, lets that user swap the base dir for a symlink that root's commands
// then follow. A warning naming the directory, exit 0: no command is refused for it.

import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { makeTenants } from './helpers/backups.js';
import { pausedCli } from './helpers/processes.js';
import { runCli, tempDir } from './helpers/tree.js';

const isRoot = process.geteuid?.() === 0;

let dir: ReturnType<typeof tempDir>;
let parent: string;
let base: string;
beforeEach(() => {
  dir = tempDir();
  chmodSync(dir.path, 0o700);
  parent = path.join(dir.path, 'srv');
  base = path.join(parent, 'tenants');
  mkdirSync(base, { recursive: true, mode: 0o755 });
  chmodSync(parent, 0o755);
});
afterEach(() => dir.cleanup());

interface Report {
  ok: boolean;
  checks: { check: string; status: string; detail: string }[];
}

function doctor(tenantsDir = base): { status: number | null; report: Report; stderr: string } {
  const run = runCli(['--tenants-dir', tenantsDir, '--json', 'doctor']);
  return { status: run.status, report: JSON.parse(run.stdout) as Report, stderr: run.stderr };
}

/** The warnings about our own directories: those above the temp dir are the machine's. */
function warningsAbout(report: Report): string[] {
  return report.checks.filter((check) => check.status === 'warn' && check.detail.startsWith(dir.path)).map((check) => check.detail.slice(0, check.detail.indexOf(':')));
}

describe.skipIf(!isRoot)('doctor in local mode, as root', () => {
  it('warns of a parent another user owns, naming it, and exits 0', () => {
    chownSync(parent, 4242, 4242);
    const run = doctor();
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(warningsAbout(run.report)).toEqual([`${parent} is owned by uid 4242, not root`]);
  });

  it('warns of a parent writable by others without the sticky bit; with it (as /tmp) it is fine', () => {
    chmodSync(parent, 0o777);
    expect(warningsAbout(doctor().report)).toEqual([`${parent} is writable by its group and others without the sticky bit (mode 0777)`]);
    chmodSync(parent, 0o1777);
    expect(warningsAbout(doctor().report)).toEqual([]);
  });

  it('checks where a symlinked base dir leads, as well as the link\'s own directories', () => {
    const elsewhere = path.join(dir.path, 'elsewhere');
    mkdirSync(path.join(elsewhere, 'tenants'), { recursive: true });
    chownSync(elsewhere, 4242, 4242);
    const link = path.join(parent, 'tenants-link');
    symlinkSync(path.join(elsewhere, 'tenants'), link);
    const linked = runCli(['--tenants-dir', link, '--json', 'doctor']);
    expect(warningsAbout(JSON.parse(linked.stdout) as Report)).toEqual([`${elsewhere} is owned by uid 4242, not root`]);
  });

  it('a base dir whose parents are root\'s and not writable by others: no warning of ours', () => {
    const run = doctor();
    expect(run.status).toBe(0);
    expect(warningsAbout(run.report)).toEqual([]);
  });
});

describe('doctor in local mode: the base dir itself', () => {
  // Every command fails on such a base dir, and doctor said "ok" of it, exit 0.
  it('fails, exit 1, when the base dir does not exist or is a file, naming it and how to set it', () => {
    const missing = doctor(path.join(parent, 'nowhere'));
    expect(missing.status).toBe(1);
    expect(missing.report.ok).toBe(false);
    expect(missing.report.checks[0]).toEqual({
      check: 'base dir',
      status: 'fail',
      detail: `the tenant base dir ${path.join(parent, 'nowhere')} does not exist (set it with --tenants-dir or OPENCLAW_TENANTS_DIR)`,
    });
    const file = path.join(parent, 'a-file');
    writeFileSync(file, '');
    const notADirectory = doctor(file);
    expect(notADirectory).toMatchObject({ status: 1, report: { ok: false } });
    expect(notADirectory.report.checks[0]).toEqual({ check: 'base dir', status: 'fail', detail: `the tenant base dir ${file} is not a directory (set it with --tenants-dir or OPENCLAW_TENANTS_DIR)` });
    const human = runCli(['--tenants-dir', file, 'doctor']);
    expect(human.status).toBe(1);
    expect(human.stdout).toMatch(/^Base dir .*:\n {2}FAIL {2}base dir: the tenant base dir .* is not a directory/);
  });

  it('counts the tenants of a base dir that is there', () => {
    mkdirSync(path.join(base, 'acme'));
    mkdirSync(path.join(base, 'beta'));
    mkdirSync(path.join(base, 'Not-A-Tenant'));
    const run = doctor();
    expect(run.status).toBe(0);
    expect(run.report.checks[0]).toEqual({ check: 'base dir', status: 'ok', detail: `${base} holds 2 tenants` });
  });

  // tenants list warned of it and backup --all failed it, while the local doctor said "0 warnings".
  it('warns of a directory no command backs up, and of a tenant that is a symlink, exit 0', () => {
    mkdirSync(path.join(base, 'acme'));
    mkdirSync(path.join(base, 'Acme.old'));
    mkdirSync(path.join(dir.path, 'elsewhere'));
    symlinkSync(path.join(dir.path, 'elsewhere'), path.join(base, 'linked'));
    mkdirSync(path.join(base, '.snapshot'));
    const run = doctor();
    expect(run.status).toBe(0);
    expect(run.report.checks.filter((check) => check.check === 'tenant names')).toEqual([
      { check: 'tenant names', status: 'warn', detail: `"Acme.old" in ${base} is not a valid tenant name (^[a-z0-9][a-z0-9_-]{0,31}$): no command backs it up; rename it to a tenant name or move it out of the base dir` },
      { check: 'tenant names', status: 'warn', detail: `tenant "linked" in ${base} is a symlink; refusing to follow it` },
    ]);
    const human = runCli(['--tenants-dir', base, 'doctor']);
    expect(human.status).toBe(0);
    expect(human.stdout).toContain('  warn  tenant names: "Acme.old" in ');
  });
});

describe('doctor in local mode: scratch areas', () => {
  // A killed encrypted backup's scratch area (plaintext SQLite snapshots) stays until a command
  // that sweeps the base dir; doctor, which does not sweep, said nothing of it.
  it('warns of a killed encrypted backup\'s scratch area, naming it, but not of a running backup\'s; tenants list removes it', async () => {
    makeTenants(base, ['acme']);
    const key = path.join(dir.path, 'key.txt');
    execFileSync('age-keygen', ['-o', key], { stdio: 'ignore' });
    const recipient = execFileSync('age-keygen', ['-y', key]).toString().trim();
    const scratchAreas = (report: Report) => report.checks.filter((check) => check.check === 'scratch areas');
    const backup = await pausedCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'acme.tar.zst.age'), '--encrypt-to', recipient], 'backup:temp-copy-written');
    const [area] = readdirSync(base).filter((name) => name.startsWith('.openclaw-scratch-acme-'));
    expect(area).toBeDefined();
    try {
      // Its backup runs (stopped, its lock held): its own.
      const running = doctor();
      expect(running.status).toBe(0);
      expect(scratchAreas(running.report)).toEqual([]);
    } finally {
      await backup.kill();
    }
    const killed = doctor();
    expect(killed.stderr).toBe('');
    expect(killed.status).toBe(0);
    expect(scratchAreas(killed.report)).toEqual([
      { check: 'scratch areas', status: 'warn', detail: `${area} in ${base}: a killed encrypted backup's scratch area holds plaintext copies of tenant files; run tenants list (or any tenants command but a dry run) to remove it` },
    ]);
    expect(readdirSync(base)).toContain(area);
    expect(runCli(['--tenants-dir', base, 'tenants', 'list']).status).toBe(0);
    expect(readdirSync(base)).not.toContain(area);
    expect(scratchAreas(doctor().report)).toEqual([]);
  });

  // A directory under a scratch area's name the tool did not make (another owner than the base
  // dir's, no marker): doctor said "run tenants list … to remove it", and tenants list moved it
  // aside, unread, as not the tool's. Doctor now says what tenants list will do with it.
  it.skipIf(process.geteuid?.() !== 0)('says a directory named like a scratch area that the tool did not make is moved aside, not removed', () => {
    makeTenants(base, ['acme']);
    const area = '.openclaw-scratch-acme-0123456789ab';
    mkdirSync(path.join(base, area));
    writeFileSync(path.join(base, area, 'theirs.txt'), 'kept');
    chownSync(path.join(base, area), 65534, 65534);
    chownSync(path.join(base, area, 'theirs.txt'), 65534, 65534);
    const report = doctor();
    expect(report.status).toBe(0);
    expect(report.report.checks.filter((check) => check.check === 'scratch areas')).toEqual([
      {
        check: 'scratch areas',
        status: 'warn',
        detail: `${area} in ${base}: a directory named like a killed encrypted backup's scratch area but not made by this tool (no marker of its own, not the base dir owner's); tenants list moves it aside (the name without its leading dot, ending .not-removed), nothing in it removed: inspect it, then remove it by hand`,
      },
    ]);
    expect(runCli(['--tenants-dir', base, 'tenants', 'list']).status).toBe(0);
    expect(readFileSync(path.join(base, `${area.slice(1)}.not-removed`, 'theirs.txt'), 'utf8')).toBe('kept');
  });
});
