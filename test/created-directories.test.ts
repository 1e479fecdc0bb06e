// shared/created-directories.ts: `mkdir -p` that knows which directories it made, and
// removes those again (deepest first, only while empty, never one that was there before).

import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { createDirectories, removeCreatedDirectories } from '../shared/created-directories.js';
import { tempDir } from './helpers/tree.js';

let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir('openclaw-created-dirs-');
});
afterEach(() => dir.cleanup());

describe('createDirectories', () => {
  it('makes the missing levels and names them, topmost first', async () => {
    mkdirSync(path.join(dir.path, 'there'));
    const created = await createDirectories(path.join(dir.path, 'there', 'a', 'b', 'c'), 0o750);
    expect(created).toEqual(['a', 'a/b', 'a/b/c'].map((name) => path.join(dir.path, 'there', name)));
    for (const made of created) expect(statSync(made).mode & 0o777).toBe(0o750 & ~process.umask());
  });

  it('makes nothing, and names nothing, when the directory is there', async () => {
    expect(await createDirectories(dir.path)).toEqual([]);
  });

  it('fails as mkdir -p does on a file, removing what it made before the failure', async () => {
    writeFileSync(path.join(dir.path, 'file'), 'x');
    await expect(createDirectories(path.join(dir.path, 'file'))).rejects.toMatchObject({ code: 'EEXIST' });
    await expect(createDirectories(path.join(dir.path, 'file', 'a'))).rejects.toMatchObject({ code: 'ENOTDIR' });
    await expect(createDirectories(path.join(dir.path, 'new', 'x'.repeat(300), 'c'))).rejects.toMatchObject({ code: 'ENAMETOOLONG' });
    expect(readdirSync(dir.path)).toEqual(['file']);
  });
});

describe('removeCreatedDirectories', () => {
  it('removes what it was given, deepest first, and stops at the first that holds anything', async () => {
    const created = await createDirectories(path.join(dir.path, 'a', 'b', 'c'));
    writeFileSync(path.join(dir.path, 'a', 'kept.txt'), 'x');
    await removeCreatedDirectories(created);
    expect(existsSync(path.join(dir.path, 'a', 'b'))).toBe(false);
    expect(readdirSync(path.join(dir.path, 'a'))).toEqual(['kept.txt']);
  });

  it('leaves a directory that was there before, empty or not', async () => {
    mkdirSync(path.join(dir.path, 'empty'));
    const created = await createDirectories(path.join(dir.path, 'empty', 'a'));
    await removeCreatedDirectories(created);
    expect(readdirSync(dir.path)).toEqual(['empty']);
    expect(readdirSync(path.join(dir.path, 'empty'))).toEqual([]);
  });

  it('goes on past one that is gone already, and never throws', async () => {
    const created = await createDirectories(path.join(dir.path, 'a', 'b'));
    await removeCreatedDirectories([created[1]!]);
    await removeCreatedDirectories(created);
    expect(readdirSync(dir.path)).toEqual([]);
  });
});
