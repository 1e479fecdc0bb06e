// One directory with very many files: `tenants list` and `backup --dry-run` lstat every file
// (the backup's own walk, `statFiles`), and a directory's items live until the walk moves past
// it. Each kept a whole Stats (~740 bytes of heap): a directory of 500,000 files took `tenants
// list` to 650 MiB. Then a size and mtime object (and a Map entry) per file: 1,000,000 files
// took it to ~350 MiB, and 200,000 ran out of a 40 MiB heap. The walk keeps the sizes and
// mtimes packed by listing index now (1,000,000 files list within 40 MiB; docs/scale.md).
// The list function's ownership scan (`openclaw doctor`) read each directory whole, a Buffer
// and a string per name: 500,000 names took it to 331 MiB, past the list function's 256 MiB;
// it reads them a batch at a time now.
// A file of more than one name was still held as a `dev:ino` string (and the set of those
// counted as another): the same files, each given a second name outside the tenant (a copy
// made with `cp -al`), ran out of a 24 MiB heap. They are numbers in packed tables now.

import { spawnSync } from 'node:child_process';
import { closeSync, linkSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { repoRoot, runCli, tempDir } from './helpers/tree.js';

const FILES = 200_000;
const SMALL_HEAP = { NODE_OPTIONS: '--max-old-space-size=40' };

let dir: ReturnType<typeof tempDir>;
let base: string;
beforeAll(() => {
  dir = tempDir();
  base = path.join(dir.path, 'tenants');
  const wide = path.join(base, 'acme', 'wide');
  mkdirSync(wide, { recursive: true });
  for (let i = 0; i < FILES; i++) closeSync(openSync(path.join(wide, `f${i}`), 'w'));
});
afterAll(() => dir.cleanup());

describe(`a tenant with ${FILES.toLocaleString('en')} files in one directory, within a 40 MiB heap`, () => {
  it('tenants list counts them', () => {
    const run = runCli(['--tenants-dir', base, '--json', 'tenants', 'list'], { env: SMALL_HEAP });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ tenants: [{ name: 'acme', files: FILES, bytes: 0 }] });
  });

  it('the list function\'s ownership scan (doctor) looks at each of them', () => {
    const run = spawnSync(process.execPath, ['--max-old-space-size=40', '--import', 'tsx', path.join(repoRoot, 'test', 'helpers', 'list-ownership.ts'), base], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ tenants: ['acme'], ownership: { tenants: [{ name: 'acme', entries: FILES + 2, mismatched: 0 }], complete: true } });
  });

  it('backup --dry-run counts them', () => {
    const run = runCli(['--tenants-dir', base, '--json', 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'acme.tar.zst'), '--dry-run'], { env: SMALL_HEAP });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ files: FILES, directories: 2, bytes: 0 });
  });
});

describe(`the same ${FILES.toLocaleString('en')} files, each with a second name outside the tenant (cp -al), within a 24 MiB heap`, () => {
  const SMALLER_HEAP = { NODE_OPTIONS: '--max-old-space-size=24' };
  beforeAll(() => {
    const copy = path.join(dir.path, 'copy');
    mkdirSync(copy);
    for (let i = 0; i < FILES; i++) linkSync(path.join(base, 'acme', 'wide', `f${i}`), path.join(copy, `f${i}`));
  });

  it('tenants list counts them', () => {
    const run = runCli(['--tenants-dir', base, '--json', 'tenants', 'list'], { env: SMALLER_HEAP });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ tenants: [{ name: 'acme', files: FILES, bytes: 0 }] });
  });

  it('backup --dry-run counts them, none a later name of another', () => {
    const run = runCli(['--tenants-dir', base, '--json', 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'acme.tar.zst'), '--dry-run'], { env: SMALLER_HEAP });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ files: FILES, hardlinks: 0, directories: 2, bytes: 0 });
  });
});
