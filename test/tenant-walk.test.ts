import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { walkTenant, type WalkNotes } from '../shared/backup/tenant-walk.js';
import { PARALLEL_ACCESS, SYNC_ACCESS } from '../shared/file-access.js';

let root = '';
beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'tenant-walk-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

async function walkOrder(mode: 'sync' | 'parallel'): Promise<string[]> {
  const notes: WalkNotes = { skipped: [], warnings: [] };
  const order: string[] = [];
  for await (const item of walkTenant(root, notes, mode === 'sync' ? SYNC_ACCESS : PARALLEL_ACCESS)) order.push(item.relPath);
  return order;
}

describe('walkTenant order', () => {
  it.each(['sync', 'parallel'] as const)('lists names in UTF-8 byte order, also where UTF-16 order differs (%s)', async (mode) => {
    // U+FF01 is EF BC 81 in UTF-8, U+1F600 is F0 9F 98 80: byte order puts U+FF01 first,
    // while JavaScript's comparison of UTF-16 units (FF01 vs D83D) would put the emoji first.
    const names = ['b', 'a\u{1F600}', 'a\uFF01', 'a', 'B', 'a.sqlite-wal', 'a.sqlite'];
    for (const name of names) writeFileSync(path.join(root, name), name);
    mkdirSync(path.join(root, 'dir'));
    writeFileSync(path.join(root, 'dir', 'z'), '');

    const expected = [...names, 'dir'].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect(expected.indexOf('a\uFF01')).toBeLessThan(expected.indexOf('a\u{1F600}'));
    expect(await walkOrder(mode)).toEqual(['', ...expected.flatMap((name) => (name === 'dir' ? ['dir', 'dir/z'] : [name]))]);
  });

  it('sorts plain ASCII names by byte order too (upper case before lower case)', async () => {
    for (const name of ['b', 'A', 'a', '_', 'Z']) writeFileSync(path.join(root, name), '');
    expect(await walkOrder('sync')).toEqual(['', 'A', 'Z', '_', 'a', 'b']);
  });
});

describe('walkTenant and names that are not valid UTF-8', () => {
  it.each(['sync', 'parallel'] as const)('leaves them out with a warning that says so, and walks names that hold U+FFFD itself (%s)', async (mode) => {
    const bytesPath = (...parts: (string | number[])[]) => Buffer.concat([Buffer.from(`${root}/`), ...parts.map((part) => (typeof part === 'string' ? Buffer.from(part) : Buffer.from(part)))]);
    writeFileSync(bytesPath('caf', [0xe9], '.txt'), 'latin-1 name');
    writeFileSync(bytesPath('caf', [0xe8], '.txt'), 'another, decoded alike');
    mkdirSync(bytesPath('dir', [0xff]));
    writeFileSync(bytesPath('dir', [0xff], '/inside'), 'under a bad directory name');
    writeFileSync(path.join(root, 'real\uFFFDchar'), 'a valid name holding U+FFFD');
    symlinkSync(bytesPath('target', [0xfe]), path.join(root, 'link'));
    writeFileSync(path.join(root, 'plain'), 'plain');

    const notes: WalkNotes = { skipped: [], warnings: [] };
    const walked: string[] = [];
    for await (const item of walkTenant(root, notes, mode === 'sync' ? SYNC_ACCESS : PARALLEL_ACCESS)) walked.push(item.relPath);

    expect(walked).toEqual(['', 'plain', 'real\uFFFDchar']);
    expect(notes.warnings).toEqual([
      { path: 'caf\uFFFD.txt', reason: expect.stringMatching(/^name is not valid UTF-8, which an archive cannot hold: not archived/) },
      { path: 'caf\uFFFD.txt', reason: expect.stringMatching(/^name is not valid UTF-8/) },
      { path: 'dir\uFFFD', reason: expect.stringMatching(/^directory whose name is not valid UTF-8.*nor anything in it/) },
      { path: 'link', reason: 'symlink target is not valid UTF-8, which an archive cannot hold: not archived' },
    ]);
    expect(notes.warnings.some((note) => /vanished/.test(note.reason))).toBe(false);
  });
});

describe('walkTenant and what a restore refuses', () => {
  it.each(['sync', 'parallel'] as const)('leaves out names with a control character or a backslash, with a warning (%s)', async (mode) => {
    for (const name of ['new\nline.txt', 'tab\there', 'del\u007f', 'c1\u0085', 'back\\slash.txt', 'plain']) writeFileSync(path.join(root, name), name);
    mkdirSync(path.join(root, 'dir\u001b[31m'));
    writeFileSync(path.join(root, 'dir\u001b[31m', 'inside'), 'under a refused directory name');

    const notes: WalkNotes = { skipped: [], warnings: [] };
    const walked: string[] = [];
    for await (const item of walkTenant(root, notes, mode === 'sync' ? SYNC_ACCESS : PARALLEL_ACCESS)) walked.push(item.relPath);

    expect(walked).toEqual(['', 'plain']);
    const refused = (what: string, reason: string) => `${what} holds ${reason}, which a restore refuses: not archived`;
    expect(notes.warnings).toEqual([
      { path: 'back\\slash.txt', reason: expect.stringContaining(refused('name', 'a backslash')) },
      { path: 'c1\u0085', reason: expect.stringContaining(refused('name', 'a control character')) },
      { path: 'del\u007f', reason: expect.stringContaining(refused('name', 'a control character')) },
      { path: 'dir\u001b[31m', reason: expect.stringContaining(`${refused('directory whose name', 'a control character')}, nor anything in it`) },
      { path: 'new\nline.txt', reason: expect.stringContaining(refused('name', 'a control character')) },
      { path: 'tab\there', reason: expect.stringContaining(refused('name', 'a control character')) },
    ]);
  });

  it('leaves out what lies deeper than 1024 directories, keeping the 1024th', async () => {
    const deepest = path.join(root, ...Array<string>(1024).fill('d'));
    mkdirSync(path.join(deepest, 'd'), { recursive: true });
    writeFileSync(path.join(deepest, 'd', 'f'), 'too deep');

    const notes: WalkNotes = { skipped: [], warnings: [] };
    const walked: string[] = [];
    for await (const item of walkTenant(root, notes, SYNC_ACCESS)) walked.push(item.relPath);

    expect(walked).toHaveLength(1 + 1024);
    expect(walked.at(-1)).toBe(Array<string>(1024).fill('d').join('/'));
    expect(notes.warnings).toEqual([
      { path: Array<string>(1025).fill('d').join('/'), reason: 'nested deeper than 1024 directories, which a restore refuses: not archived, nor anything in it' },
    ]);
  });
});
