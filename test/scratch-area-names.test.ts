// The copies a backup makes in its scratch area are created, never written through a name
// already there. An encrypted backup's scratch area is in the tenant base dir, a directory its
// owner (the gateway's service user) can write: that user could rename the area away and
// leave a symlink to a directory of its own holding `1-database -> /etc/shadow`, and root, as
// the spool opened its path with 'w', truncated that file and wrote the tenant's database over
// it (reproduced with the CLI: a 0600 root file in a 0700 root directory became the SQLite copy).
// And the area itself is held by a descriptor (temp-area.ts): swapped for a symlink to a
// root-only directory (/etc/cron.d), root created the tenant's SQLite snapshot in it
// (reproduced with the CLI as a second user swapping the area with renameat2).

import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, promises as fs, mkdirSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { spoolFile } from '../shared/backup/stable-read.js';
import { TempArea } from '../shared/backup/temp-area.js';
import { CAN_CHECK_OPENED_PATHS } from '../shared/file-access.js';
import { TRASH_MARKER } from '../shared/tenant/trash-marker.js';
import { tempDir } from './helpers/tree.js';

let dir: ReturnType<typeof tempDir>;

beforeEach(() => {
  dir = tempDir();
});
afterEach(() => dir.cleanup());

describe('spoolFile', () => {
  it('refuses a name already there, even a symlink, and leaves what it leads to as it was', async () => {
    const source = path.join(dir.path, 'state.sqlite');
    writeFileSync(source, 'tenant data');
    const victim = path.join(dir.path, 'shadow');
    writeFileSync(victim, 'root only');
    chmodSync(victim, 0o600);
    const spoolPath = path.join(dir.path, '1-database');
    symlinkSync(victim, spoolPath);
    const handle = await fs.open(source, 'r');
    try {
      await expect(spoolFile(handle, await handle.stat(), spoolPath)).rejects.toMatchObject({ code: 'EEXIST' });
    } finally {
      await handle.close();
    }
    expect(readFileSync(victim, 'utf8')).toBe('root only');
  });

  it('copies into a fresh name', async () => {
    const source = path.join(dir.path, 'state.sqlite');
    writeFileSync(source, 'tenant data');
    const spoolPath = path.join(dir.path, '1-database');
    const handle = await fs.open(source, 'r');
    try {
      await spoolFile(handle, await handle.stat(), spoolPath);
    } finally {
      await handle.close();
    }
    expect(readFileSync(spoolPath, 'utf8')).toBe('tenant data');
  });
});

describe.skipIf(process.geteuid?.() !== 0 || !CAN_CHECK_OPENED_PATHS)('an encrypted backup\'s scratch area in a base dir another user owns, as root', () => {
  let base: string;
  let victim: string;

  beforeEach(() => {
    base = path.join(dir.path, 'tenants');
    mkdirSync(base);
    chownSync(base, 4242, 4343);
    victim = path.join(dir.path, 'cron.d');
    mkdirSync(victim, { mode: 0o755 });
  });

  /** The area's name in the base dir, once made. */
  const areaName = () => readdirSync(base).find((name) => name.startsWith('.openclaw-scratch-acme-'));

  /** Moves the area away and leaves a symlink to the victim under its name, as its owner could. */
  function swap(at: string): void {
    renameSync(at, path.join(base, 'moved'));
    symlinkSync(victim, at);
  }

  it('refuses an area swapped for a symlink right after it was made, and creates nothing through it', async () => {
    const area = TempArea.inTenantsDir(base, 'acme');
    const realMkdir = fs.mkdir.bind(fs);
    const spy = vi.spyOn(fs, 'mkdir').mockImplementation(async (...args: Parameters<typeof fs.mkdir>) => {
      const made = await realMkdir(...args);
      const at = String(args[0]);
      if (path.dirname(at) === base && path.basename(at).startsWith('.openclaw-scratch-acme-')) swap(at);
      return made;
    });
    try {
      const made = area.file('snapshot').then(async (file) => {
        await fs.writeFile(file, 'tenant data', { flag: 'wx' });
      });
      await expect(made).rejects.toThrow(/^the backup's scratch directory .*\.openclaw-scratch-acme-\w+ was replaced while it was made \(it is no longer a directory there\): nothing was backed up/);
    } finally {
      spy.mockRestore();
      await area.dispose();
    }
    expect(readdirSync(victim)).toEqual([]);
  });

  it('writes into the area it made though it is swapped later, stops at its next file, and removes only its own', async () => {
    const area = TempArea.inTenantsDir(base, 'acme');
    const first = await area.file('database');
    await fs.writeFile(first, 'tenant data', { flag: 'wx' });
    const name = areaName()!;
    swap(path.join(base, name));
    writeFileSync(path.join(victim, 'keep'), 'root only');
    const second = area.file('snapshot').then(async (file) => {
      await fs.writeFile(file, 'tenant data', { flag: 'wx' });
    });
    await expect(second).rejects.toThrow(/^the backup's scratch directory .* was moved or replaced by someone else while the backup ran/);
    // Still the area it made: a write and a removal by a name it gave out go there, not through the link.
    await area.remove(first);
    await area.dispose();
    expect(readdirSync(victim)).toEqual(['keep']);
    expect(readdirSync(path.join(base, 'moved'))).toEqual([]);
    expect(existsSync(path.join(victim, '1-database'))).toBe(false);
  });

  it('removes the whole area when nothing was swapped', async () => {
    const area = TempArea.inTenantsDir(base, 'acme');
    await fs.writeFile(await area.file('spool'), 'tenant data', { flag: 'wx' });
    await fs.writeFile(await area.file('snapshot'), 'tenant data', { flag: 'wx' });
    expect(areaName()).toBeDefined();
    await area.dispose();
    expect(readdirSync(base)).toEqual([]);
  });

  it('a removal of the area stopped midway leaves it marked as the tool\'s: the marker goes last', async (context) => {
    const area = TempArea.inTenantsDir(base, 'acme');
    await area.file('spool');
    const at = path.join(base, areaName()!);
    // A copy the directory lists after the marker, which the removal cannot unlink (immutable): it stops there.
    let stuck: string | undefined;
    for (let i = 0; stuck === undefined && i < 64; i++) {
      await fs.writeFile(await area.file(`copy${i}`), 'tenant data', { flag: 'wx' });
      const listed = readdirSync(at);
      stuck = listed.slice(listed.indexOf(TRASH_MARKER) + 1)[0];
    }
    if (stuck === undefined || spawnSync('chattr', ['+i', path.join(at, stuck)], { stdio: 'ignore' }).status !== 0) return context.skip('chattr +i does not work here');
    try {
      await expect(area.dispose()).rejects.toThrow(/operation not permitted/);
      expect(readdirSync(at)).toContain(TRASH_MARKER);
    } finally {
      spawnSync('chattr', ['-i', path.join(at, stuck)], { stdio: 'ignore' });
    }
  });
});
