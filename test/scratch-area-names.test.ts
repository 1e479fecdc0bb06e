// The copies a backup makes in its scratch area are created, never written through a name
// already there. An encrypted backup's scratch area is in the tenant base dir, a directory its
// owner (the gateway's service user) can write: that user could rename the area away and
// leave a symlink to a directory of its own holding `1-database -> /etc/shadow`, and root, as
// the spool opened its path with 'w', truncated that file and wrote the tenant's database over
// it (reproduced with the CLI: a 0600 root file in a 0700 root directory became the SQLite copy).

import { chmodSync, promises as fs, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { spoolFile } from '../shared/backup/stable-read.js';
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
