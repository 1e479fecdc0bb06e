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
