// A tenant whose own directory is a mount point (the operator mounts a volume per tenant, or
// bind-mounts it in): a restore moves the restored tree into the slot by rename, which a
// mount point cannot take (EBUSY). That failure came after the journal had recorded the
// commit, so every later command on the tenant failed on the same rename: its nightly
// backup, and `tenants recover` with or without --keep. Now the restore is refused before it
// starts (exit 3, nothing changed) and the tenant's backups go on.

import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { runCli, tempDir } from './helpers/tree.js';

let dir: ReturnType<typeof tempDir>;
const mounted: string[] = [];
beforeEach(() => {
  dir = tempDir('openclaw-mounted-slot-');
});
afterEach(() => {
  for (const point of mounted.splice(0)) spawnSync('umount', [point]);
  dir.cleanup();
});

function bindMount(source: string, target: string): boolean {
  if (spawnSync('mount', ['--bind', source, target], { stdio: 'ignore' }).status !== 0) return false;
  mounted.push(target);
  return true;
}

describe('restore into a slot that is a mount point', () => {
  it('is refused before anything is written, with --force over a tenant and into an empty mounted slot; backups go on', (context) => {
    const base = path.join(dir.path, 'tenants');
    const volume = path.join(dir.path, 'volume');
    const empty = path.join(dir.path, 'empty');
    mkdirSync(volume, { recursive: true });
    mkdirSync(empty);
    writeFileSync(path.join(volume, 'config.json'), '{"v":1}');
    mkdirSync(path.join(base, 'acme'), { recursive: true });
    mkdirSync(path.join(base, 'fresh'));
    if (!bindMount(volume, path.join(base, 'acme')) || !bindMount(empty, path.join(base, 'fresh'))) return context.skip('mounting needs root');
    const archive = path.join(dir.path, 'acme.tar.zst');
    expect(runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', archive]).status).toBe(0);
    writeFileSync(path.join(volume, 'config.json'), '{"v":2}');

    for (const args of [['--force'], ['--as', 'fresh']]) {
      const restore = runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive, ...args]);
      const name = args[0] === '--force' ? 'acme' : 'fresh';
      expect(restore.stderr).toBe(`openclaw: tenant "${name}"'s directory ${path.join(base, name)} is a mount point (another file system or a bind mount): a restore moves the restored tenant into its place, which a mount point cannot take; restore with --as NAME and copy the files onto the mount, or unmount it first\n`);
      expect(restore.status).toBe(3);
    }
    expect(readdirSync(base).sort()).toEqual(['acme', 'fresh']); // no journal, no staging left
    expect(readFileSync(path.join(volume, 'config.json'), 'utf8')).toBe('{"v":2}');

    const backup = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'again.tar.zst')]);
    expect(backup.stderr).toBe('');
    expect(backup.status).toBe(0);
    // Restored under another name it is, as the message says.
    expect(runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive, '--as', 'copy']).status).toBe(0);
    expect(readFileSync(path.join(base, 'copy', 'config.json'), 'utf8')).toBe('{"v":1}');
  });
});
