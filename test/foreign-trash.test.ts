// A tree under a trash name (`.openclaw-trash-NAME-…`) is deleted by every command's sweep:
// the base dir's owner (the service user) renamed a root-only tenant it may not delete to
// such a name, and root's next `tenants list` deleted it. Now the sweep deletes only trash
// the tool made (a marker it writes into the tree before the move, naming the tree) or, unmarked (an
// older version's), the base dir owner's; anything else is moved out of the trash names and
// `tenants list` names it. Root only (chown).

import { spawn } from 'node:child_process';
import { chownSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { isStopped } from './helpers/processes.js';
import { cliPath, runCli, tempDir } from './helpers/tree.js';

const isRoot = process.geteuid?.() === 0;
/** The service user owning the base dir: any uid but root's will do. */
const SERVICE_UID = 4242;

let dir: ReturnType<typeof tempDir>;
let base: string;
beforeEach(() => {
  dir = tempDir();
  base = path.join(dir.path, 'tenants');
  mkdirSync(path.join(base, 'acme'), { recursive: true, mode: 0o755 });
  writeFileSync(path.join(base, 'acme', 'config.json'), '{"tenant":"acme"}');
  chownSync(path.join(base, 'acme'), SERVICE_UID, SERVICE_UID);
  chownSync(base, SERVICE_UID, SERVICE_UID);
});
afterEach(() => dir.cleanup());

describe.skipIf(!isRoot)('a trash name the tool did not give', () => {
  it("root's sweep leaves a root-only tenant the base dir's owner renamed to trash, and tenants list names it", () => {
    const renamed = path.join(base, '.openclaw-trash-acme-0123456789ab');
    mkdirSync(renamed, { mode: 0o700 });
    writeFileSync(path.join(renamed, 'config.json'), 'root-only beta');

    const list = runCli(['--tenants-dir', base, 'tenants', 'list', '--names']);
    expect(list.status).toBe(0);
    expect(list.stdout).toBe('acme\n');
    const left = 'openclaw-trash-acme-0123456789ab.not-removed';
    expect(readdirSync(base).sort()).toEqual(['acme', left]);
    expect(readFileSync(path.join(base, left, 'config.json'), 'utf8')).toBe('root-only beta');
    expect(list.stderr).toBe(
      `openclaw: warning: "${left}" in ${base} is not a valid tenant name (^[a-z0-9][a-z0-9_-]{0,31}$): no command backs it up; rename it to a tenant name or move it out of the base dir\n`,
    );
  });

  it("a forged marker does not count: one the base dir's owner could write, or naming another tree", () => {
    const renamed = path.join(base, '.openclaw-trash-acme-0123456789ab');
    mkdirSync(renamed, { mode: 0o777 });
    writeFileSync(path.join(renamed, '.openclaw-trash'), 'openclaw trash 2\n');
    chownSync(path.join(renamed, '.openclaw-trash'), SERVICE_UID, SERVICE_UID);
    expect(runCli(['--tenants-dir', base, 'tenants', 'list', '--names']).status).toBe(0);
    expect(readdirSync(base).sort()).toEqual(['acme', 'openclaw-trash-acme-0123456789ab.not-removed']);
  });

  it("an unmarked trash of the base dir's owner (an older version's) is still deleted", () => {
    const trash = path.join(base, '.openclaw-trash-acme-0123456789ab');
    mkdirSync(trash);
    writeFileSync(path.join(trash, 'config.json'), 'old');
    chownSync(trash, SERVICE_UID, SERVICE_UID);
    expect(runCli(['--tenants-dir', base, 'tenants', 'list', '--names']).status).toBe(0);
    expect(readdirSync(base)).toEqual(['acme']);
  });

  it("root's restore --force over a root-only tenant, killed once its old tree is trash, is cleaned up by the next command", () => {
    mkdirSync(path.join(base, 'beta'), { mode: 0o700 });
    writeFileSync(path.join(base, 'beta', 'config.json'), 'old beta');
    const archive = path.join(dir.path, 'beta.tar.zst');
    expect(runCli(['--tenants-dir', base, 'tenants', 'backup', 'beta', '--to', archive]).status).toBe(0);
    const killed = runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive, '--force'], { env: { OPENCLAW_TEST_CRASH_AT: 'commit:old-moved-to-trash' } });
    expect(killed.status).not.toBe(0);
    expect(readdirSync(base).filter((name) => name.startsWith('.openclaw-trash-beta-'))).toHaveLength(1);

    expect(runCli(['--tenants-dir', base, 'tenants', 'list', '--names']).stdout).toBe('acme\nbeta\n');
    expect(readdirSync(base).sort()).toEqual(['acme', 'beta']);
  });

  // The sweep judged a trash by its path and then removed whatever was under that path: the
  // base dir's owner, whose own (unmarked) trash root's sweep judged removable, swapped a
  // root-only tenant in under its name meanwhile, and root deleted it. Now the removal checks
  // it opened the directory judged.
  it("a root-only tenant swapped in under a trash name after the sweep judged it is not removed", async () => {
    const trash = path.join(base, '.openclaw-trash-acme-0123456789ab');
    mkdirSync(trash);
    chownSync(trash, SERVICE_UID, SERVICE_UID);
    mkdirSync(path.join(base, 'beta'), { mode: 0o700 });
    writeFileSync(path.join(base, 'beta', 'config.json'), 'root-only beta');

    const child = spawn(process.execPath, [cliPath, '--tenants-dir', base, 'tenants', 'list', '--names'], { env: { ...process.env, OPENCLAW_TEST_PAUSE_AT: 'sweep:trash-judged' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const deadline = Date.now() + 30_000;
    while (!isStopped(child.pid!)) {
      if (Date.now() > deadline) throw new Error(`never reached sweep:trash-judged: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // What the base dir's owner can do: rename in the directory it owns.
    renameSync(trash, path.join(dir.path, 'own'));
    renameSync(path.join(base, 'beta'), trash);
    child.kill('SIGCONT');
    await exited;

    // Set aside at once, under a name no command deletes.
    expect(readFileSync(path.join(base, 'openclaw-trash-acme-0123456789ab.not-removed', 'config.json'), 'utf8')).toBe('root-only beta');
  });
});
