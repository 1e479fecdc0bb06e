// `tenants backup --all --sqlite-raw-fallback` archives raw, with a warning, a database no
// consistent copy can be had of, as the backup of one tenant does: the flag was dropped on the
// way to each tenant's backup, which then failed ("… or pass --sqlite-raw-fallback"). Through a
// gateway, whose fan-out takes no such field, it is refused in one line.

import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { runMain } from './helpers/run-main.js';
import { repoRoot, tempDir } from './helpers/tree.js';

const dir = tempDir('openclaw-all-raw-');
const tenantsDir = path.join(dir.path, 'tenants');
let holder: ReturnType<typeof spawn>;

beforeAll(async () => {
  mkdirSync(path.join(tenantsDir, 'acme'), { recursive: true });
  mkdirSync(path.join(tenantsDir, 'beta'), { recursive: true });
  writeFileSync(path.join(tenantsDir, 'beta', 'notes.md'), 'beta\n');
  // Another process holds an exclusive lock on acme's database (rollback journal): no reader gets in.
  const database = path.join(tenantsDir, 'acme', 'memory.sqlite');
  // node:sqlite where the Node has it (24: better-sqlite3 is built for the Node that installed it), else better-sqlite3.
  const script = `let open; try { const { DatabaseSync } = require('node:sqlite'); open = (file) => new DatabaseSync(file); } catch { const Database = require('better-sqlite3'); open = (file) => new Database(file); } const db = open(${JSON.stringify(database)}); db.exec('CREATE TABLE t(a); INSERT INTO t VALUES (1)'); db.exec('BEGIN EXCLUSIVE; INSERT INTO t VALUES (2)'); console.log('locked'); process.stdin.resume(); process.stdin.on('end', () => process.exit(0));`;
  holder = spawn(process.execPath, ['-e', script], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: holder.stdout! });
  await new Promise<void>((resolve, reject) => {
    lines.once('line', () => resolve());
    holder.once('exit', (code) => reject(new Error(`the lock holder exited (${code}) before it held the lock`)));
  });
});
afterAll(async () => {
  if (holder.exitCode === null) {
    holder.stdin!.end();
    await new Promise((resolve) => holder.once('close', resolve));
  }
  dir.cleanup();
});

it('archives the locked database raw with a warning, and says so in the table', async () => {
  const run = await runMain(['--tenants-dir', tenantsDir, 'tenants', 'backup', '--all', '--to', path.join(dir.path, 'out', '{tenant}.tar.zst'), '--sqlite-raw-fallback']);
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  expect(run.stdout).toMatch(/^Backed up 2 of 2 tenants /);
  expect(run.stdout).toMatch(/\n {2}warning: acme: memory\.sqlite: no consistent SQLite snapshot \(still locked after the busy timeout .*\(--sqlite-raw-fallback\)/);
}, 60_000);
