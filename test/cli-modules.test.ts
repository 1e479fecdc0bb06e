// The built CLI on a Node that lacks what an operation needs: a preload hides node:sqlite and
// better-sqlite3 (or node:zlib's zstd and @mongodb-js/zstd) from the process, as on a Node 20
// whose optional packages failed to install. A backup that meets a database then fails with
// one line and MODULE_UNAVAILABLE instead of archiving the database raw; what needs neither
// still works. And `--sqlite-raw-fallback` is a flag of `tenants backup`.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createSampleTenant } from '../scripts/sample-tenant.js';
import { repoRoot, runCli, tempDir } from './helpers/tree.js';

const dir = tempDir('openclaw-cli-modules-');
const base = path.join(dir.path, 'tenants');
const hideSqlite = path.join(dir.path, 'hide-sqlite.cjs');
const hideZstd = path.join(dir.path, 'hide-zstd.cjs');

beforeAll(() => {
  createSampleTenant(path.join(base, 'acme'), { sessions: 1, notes: 2, memoryRows: 10 });
  mkdirSync(path.join(base, 'plain', 'notes'), { recursive: true });
  writeFileSync(path.join(base, 'plain', 'notes', 'a.md'), 'no database here\n');
  const hidePackages = (names: string[]) => `
const Module = require('node:module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (${JSON.stringify(names)}.some((name) => request === name || request.startsWith(name + '/'))) {
    const error = new Error("Cannot find module '" + request + "'");
    error.code = 'MODULE_NOT_FOUND';
    throw error;
  }
  return resolve.call(this, request, ...rest);
};
`;
  writeFileSync(
    hideSqlite,
    `${hidePackages(['better-sqlite3'])}
const getBuiltinModule = process.getBuiltinModule;
if (getBuiltinModule) process.getBuiltinModule = (id) => (id === 'node:sqlite' || id === 'sqlite' ? undefined : getBuiltinModule(id));
`,
  );
  writeFileSync(
    hideZstd,
    // Without the optional dependencies: the package and its platform packages.
    `${hidePackages(['@mongodb-js/zstd', ...['x64', 'arm64'].flatMap((arch) => [`@mongodb-js/zstd-linux-${arch}-gnu`, `@mongodb-js/zstd-linux-${arch}-musl`])])}
const zlib = require('node:zlib');
for (const name of Object.keys(zlib)) if (/zstd/i.test(name)) zlib[name] = undefined;
`,
  );
});
afterAll(() => dir.cleanup());

const withPreload = (preload: string) => ({ env: { NODE_OPTIONS: `--require=${preload}` } });

describe('a Node without SQLite', () => {
  it('fails the backup of a tenant with a database in one line, MODULE_UNAVAILABLE, storing nothing', () => {
    const archive = path.join(dir.path, 'acme.tar.zst');
    const run = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', archive], withPreload(hideSqlite));
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/^openclaw: SQLite is not available to back up databases: .*better-sqlite3 cannot be loaded.*Node 22\.16 or later has it built in/);
    // What a Node 20 install needs for it: npm ci compiles it where no prebuilt binary can be downloaded.
    expect(run.stderr).toMatch(/npm ci again .* python3, make, g\+\+ and Node's headers: npm_config_nodedir=\/usr npm ci where \/usr\/include\/node holds them\)$/m);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    const json = runCli(['--tenants-dir', base, '--json', 'tenants', 'backup', 'acme', '--to', archive], withPreload(hideSqlite));
    expect(JSON.parse(json.stdout)).toEqual({ error: { code: 'MODULE_UNAVAILABLE', message: expect.any(String) } });
    expect(existsSync(archive)).toBe(false);
  });

  it("fails the README's demo in one line saying what to install, not with a stack trace", () => {
    const parent = path.join(dir.path, 'demo-parent');
    mkdirSync(parent);
    const demo = spawnSync('bash', [path.join(repoRoot, 'scripts', 'demo.sh')], {
      encoding: 'utf8',
      env: { ...process.env, OPENCLAW_DEMO_PARENT: parent, NODE_OPTIONS: `--require=${hideSqlite}` },
    });
    expect(demo.status).toBe(1);
    expect(demo.stderr).toMatch(/^demo: SQLite is not available to back up databases: .*python3, make, g\+\+ and Node's headers: .*\)\n$/);
    expect(existsSync(path.join(parent, '.demo', 'gateway-a'))).toBe(true);
  });

  it('still backs up a tenant without a database', () => {
    const run = runCli(['--tenants-dir', base, 'tenants', 'backup', 'plain', '--to', path.join(dir.path, 'plain.tar.zst')], withPreload(hideSqlite));
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });
});

describe('a Node without zstd', () => {
  it('lists tenants, and fails a backup in one line with MODULE_UNAVAILABLE', () => {
    expect(runCli(['--tenants-dir', base, 'tenants', 'list', '--names'], withPreload(hideZstd))).toMatchObject({ status: 0, stdout: 'acme\nplain\n' });
    const run = runCli(['--tenants-dir', base, 'tenants', 'backup', 'plain', '--to', path.join(dir.path, 'nozstd.tar.zst')], withPreload(hideZstd));
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/^openclaw: zstd is not available: .*no zstd in node:zlib.*@mongodb-js\/zstd cannot be loaded/);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('--sqlite-raw-fallback', () => {
  it('is a flag of tenants backup, and a backup that needs no fallback is unchanged by it', () => {
    // Commander wraps the description at the widest flag's column: compare it unwrapped.
    expect(runCli(['tenants', 'backup', '--help']).stdout.replace(/\s+/g, ' ')).toContain('--sqlite-raw-fallback archive a SQLite database of which no consistent copy');
    const run = runCli(['--tenants-dir', base, '--json', 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'fallback.tar.zst'), '--sqlite-raw-fallback']);
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ operation: 'backup', warnings: [] });
  });
});

describe('--pipe', () => {
  it('says in every command\'s help that its text is seen by every user in ps (it is not masked as --secret-key is)', () => {
    for (const command of ['backup', 'restore', 'verify']) {
      // Commander wraps the description at the widest flag's column: compare it unwrapped.
      expect(runCli(['tenants', command, '--help']).stdout.replace(/\s+/g, ' ')).toContain('every user sees its text in ps: a secret goes in a file it reads');
    }
  });
});
