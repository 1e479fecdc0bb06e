// `tenants verify --from` / `restore --from` / `backup --to` a path that is a symlink loop said
// "cannot read …: ELOOP" (an errno name, no words): found attacking a store of 10,000 backups
// with hostile entries (stop 50, life3). Now one line that says what the path is.

import { mkdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { runCli, tempDir } from './helpers/tree.js';

let dir: ReturnType<typeof tempDir>;
let base: string;
let loop: string;
beforeEach(() => {
  dir = tempDir();
  base = path.join(dir.path, 'tenants');
  mkdirSync(path.join(base, 'acme'), { recursive: true });
  loop = path.join(dir.path, 'loop.tar.zst');
  symlinkSync('other', loop);
  symlinkSync('loop.tar.zst', path.join(dir.path, 'other'));
});
afterEach(() => dir.cleanup());

describe('an archive path that is a symlink loop', () => {
  for (const args of [() => ['tenants', 'verify', '--from', loop], () => ['tenants', 'restore', '--from', loop, '--dry-run']]) {
    it(`${args().slice(0, 2).join(' ')} says so in one line, exit 1`, () => {
      const run = runCli(['--tenants-dir', base, ...args()]);
      expect(run.status).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr).toBe(`openclaw: cannot read ${loop}: it leads through a loop of symlinks (or more symlinks than the system follows): give the path of the archive file itself\n`);
    });
  }
});
