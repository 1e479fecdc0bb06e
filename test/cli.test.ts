// The `openclaw` command as a user meets it: help, one-line errors with distinct exit
// codes, JSON results, listing, and a restore killed with SIGKILL that the next command
// cleans up.

import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeSync, closeSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createSampleTenant } from '../scripts/sample-tenant.js';
import { TOOL_VERSION } from '../shared/version.js';
import { cliPath, describeTree, runCli, runCliAsync, sh, tempDir } from './helpers/tree.js';

const dir = tempDir();
const base = path.join(dir.path, 'tenants');
const archive = path.join(dir.path, 'acme.tar.zst');

beforeAll(() => {
  createSampleTenant(path.join(base, 'acme'), { sessions: 4, memoryRows: 50 });
  createSampleTenant(path.join(base, 'beta'), { sessions: 1, memoryRows: 10, mediaFiles: 0 });
  expect(runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', archive]).status).toBe(0);
});
afterAll(() => dir.cleanup());

function expectOneLineError(run: { status: number | null; stderr: string; stdout: string }, status: number, pattern: RegExp) {
  expect(run.status).toBe(status);
  expect(run.stderr).toMatch(pattern);
  expect(run.stderr).not.toMatch(/\n\s+at /); // no stack trace
}

describe('openclaw CLI', () => {
  it('prints help for every command', () => {
    for (const args of [['--help'], ['tenants', '--help'], ['tenants', 'backup', '--help'], ['tenants', 'restore', '--help'], ['tenants', 'list', '--help']]) {
      const run = runCli(args);
      expect(run.status).toBe(0);
      expect(run.stdout).toMatch(/Usage: openclaw/);
    }
  });

  it('lists tenant names one per line, and a table by default', () => {
    const names = runCli(['--tenants-dir', base, 'tenants', 'list', '--names']);
    expect(names.stdout).toBe('acme\nbeta\n');
    const table = runCli(['--tenants-dir', base, 'tenants', 'list']);
    expect(table.stdout.split('\n')[0]).toMatch(/^NAME\s+SIZE\s+FILES\s+LAST MODIFIED$/);
    expect(table.stdout).toMatch(/^acme\s+\d/m);
    const json = JSON.parse(runCli(['--tenants-dir', base, '--json', 'tenants', 'list']).stdout);
    expect(json.tenants.map((t: { name: string }) => t.name)).toEqual(['acme', 'beta']);
  });

  it("fills --all's placeholders in one tenant's --to with the date now (UTC), and refuses a brace that is none", () => {
    const before = new Date().toISOString().slice(0, 10);
    const run = runCli(['--tenants-dir', base, '--json', 'tenants', 'backup', 'beta', '--to', path.join(dir.path, 'dated', '{tenant}-{date}.tar.zst')]);
    const after = new Date().toISOString().slice(0, 10);
    expect(run.status, run.stderr).toBe(0);
    const { location } = JSON.parse(run.stdout) as { location: string };
    expect([before, after].map((day) => path.join(dir.path, 'dated', `beta-${day}.tar.zst`))).toContain(location);
    expect(existsSync(location)).toBe(true);
    const typo = runCli(['--tenants-dir', base, 'tenants', 'backup', 'beta', '--to', path.join(dir.path, 'dated', '{dat}.tar.zst')]);
    expect(typo.status).toBe(2);
    expect(typo.stderr).toMatch(/^openclaw: invalid --to "[^"]*\{dat\}\.tar\.zst": .*\n$/);
    expect(readdirSync(path.join(dir.path, 'dated'))).toEqual([path.basename(location)]);
  });

  it('stops quietly when the reader of its output goes away', () => {
    const many = path.join(dir.path, 'many');
    for (let i = 0; i < 4000; i++) mkdirSync(path.join(many, `t${i}`), { recursive: true });
    const run = sh(`node '${cliPath}' --tenants-dir '${many}' tenants list --names 2>&1 | head -1; echo "exit \${PIPESTATUS[0]}"`).toString();
    expect(run).toBe('t0\nexit 0\n');
  });

  it('keeps its exit code when the reader of its output goes away: a failed backup --all still exits 1', () => {
    const into = path.join(dir.path, 'all-to-closed-pipe');
    mkdirSync(into);
    writeFileSync(path.join(into, 'beta.tar.zst'), 'in the way'); // beta's backup is refused: it exists
    const run = sh(`node '${cliPath}' --tenants-dir '${base}' tenants backup --all --to '${into}/{tenant}.tar.zst' | true; echo "exit \${PIPESTATUS[0]}"`).toString();
    expect(run).toBe('exit 1\n');
    expect(readdirSync(into).sort()).toEqual(['acme.tar.zst', 'beta.tar.zst']); // acme's was made all the same
  });

  it('reads the base dir from OPENCLAW_TENANTS_DIR', () => {
    expect(runCli(['tenants', 'list', '--names'], { env: { OPENCLAW_TENANTS_DIR: base } }).stdout).toBe('acme\nbeta\n');
  });

  it('answers usage errors with exit code 2 and one line', () => {
    expectOneLineError(runCli(['tenants', 'backup', 'acme']), 2, /required option '--to <destination>'/);
    expectOneLineError(runCli(['tenants', 'frobnicate']), 2, /unknown command/);
    expectOneLineError(runCli(['--tenants-dir', base, 'tenants', 'backup', '../etc', '--to', archive]), 2, /invalid tenant name "..\/etc"/);
    expectOneLineError(runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive, '--as', '../x']), 2, /invalid --as name/);
    expectOneLineError(runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive, '--max-entries', 'lots']), 2, /positive whole number/);
  });

  it('answers refusals with exit code 3 and failures with exit code 1', () => {
    expectOneLineError(runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive]), 3, /already exists .* --force/);
    expectOneLineError(runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', archive]), 3, /exists/);
    expectOneLineError(runCli(['--tenants-dir', base, 'tenants', 'backup', 'nobody', '--to', path.join(dir.path, 'n.tar.zst')]), 3, /no tenant "nobody"/);
    const garbage = path.join(dir.path, 'garbage.tar.zst');
    writeFileSync(garbage, randomBytes(4096));
    expectOneLineError(runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', garbage, '--as', 'g']), 3, /not a zstd stream/);
    expectOneLineError(runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', path.join(dir.path, 'missing.tar.zst'), '--as', 'm']), 1, /missing\.tar\.zst/);
    expect(readdirSync(base).sort()).toEqual(['acme', 'beta']);
  });

  it('prints one JSON object for results and for errors with --json', () => {
    const ok = runCli(['--tenants-dir', base, '--json', 'tenants', 'restore', '--from', archive, '--as', 'acme-json']);
    expect(JSON.parse(ok.stdout)).toMatchObject({ operation: 'restore', tenant: 'acme-json', verified: true });
    const refused = runCli(['--tenants-dir', base, '--json', 'tenants', 'restore', '--from', archive, '--as', 'acme-json']);
    expect(refused.status).toBe(3);
    expect(JSON.parse(refused.stdout)).toEqual({ error: { code: 'SLOT_OCCUPIED', message: expect.stringMatching(/already exists/) } });
    // The version too, wherever --json stands; plain text without it.
    for (const argv of [['--json', '--version'], ['-V', '--json']]) expect(JSON.parse(runCli(argv).stdout)).toEqual({ version: TOOL_VERSION });
    expect(runCli(['--version']).stdout).toBe(`${TOOL_VERSION}\n`);
  });

  it('reminds the operator which pairings carry over', () => {
    const run = runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive, '--as', 'acme-human']);
    expect(run.stdout).toMatch(/WhatsApp pairings must be re-paired by QR code; Telegram and Slack tokens carry over/);
  });
});

describe('a restore killed with SIGKILL', () => {
  it('leaves the old tenant intact, and the next command on the tenant cleans up', async () => {
    const bigBase = path.join(dir.path, 'big');
    createSampleTenant(path.join(bigBase, 'heavy'), { sessions: 2 });
    const file = openSync(path.join(bigBase, 'heavy', 'blob.bin'), 'w');
    for (let i = 0; i < 160; i++) writeSync(file, randomBytes(1024 * 1024));
    closeSync(file);
    const bigArchive = path.join(dir.path, 'heavy.tar.zst');
    expect(runCli(['--tenants-dir', bigBase, 'tenants', 'backup', 'heavy', '--to', bigArchive]).status).toBe(0);
    writeFileSync(path.join(bigBase, 'heavy', 'config.json'), 'the old tenant');
    const before = describeTree(path.join(bigBase, 'heavy'));

    const child = runCliAsync(['--tenants-dir', bigBase, 'tenants', 'restore', '--from', bigArchive, '--force']);
    const exited = new Promise((resolve) => child.on('exit', resolve));
    // Wait until it is extracting into its staging directory (something in it: the journal
    // naming it is written between the directory's mkdir and the extraction), then kill it.
    const deadline = Date.now() + 20_000;
    const extracting = () =>
      readdirSync(bigBase).some((name) => {
        if (!name.startsWith('.openclaw-staging-heavy-')) return false;
        try {
          return readdirSync(path.join(bigBase, name)).length > 0;
        } catch {
          return false;
        }
      });
    while (!extracting() && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    child.kill('SIGKILL');
    await exited;
    expect(readdirSync(bigBase).some((name) => name.startsWith('.openclaw-'))).toBe(true);
    expect(describeTree(path.join(bigBase, 'heavy'))).toEqual(before);

    const next = runCli(['--tenants-dir', bigBase, '--json', 'tenants', 'backup', 'heavy', '--to', path.join(dir.path, 'after-crash.tar.zst')]);
    expect(next.status).toBe(0);
    expect(JSON.parse(next.stdout).recovered).toBe('rolled-back');
    expect(readdirSync(bigBase)).toEqual(['heavy']);
    expect(readFileSync(path.join(bigBase, 'heavy', 'config.json'), 'utf8')).toBe('the old tenant');
    expect(existsSync(path.join(bigBase, '.openclaw-lock-heavy'))).toBe(false);
  }, 180_000);
});
