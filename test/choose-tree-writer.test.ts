// Which writer a restore uses, and when it changes (choose-tree-writer.ts), seen from
// outside: synchronous calls write at once; writer threads write a chunk's files when the
// chunk ends; a network file system's writer answers with promises.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { PARALLEL_ACCESS, SYNC_ACCESS } from '../shared/file-access.js';
import { chooseTreeWriter } from '../shared/restore/choose-tree-writer.js';
import type { TreeWriter } from '../shared/restore/tree-writer.js';

let dir = '';
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'choose-tree-writer-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const MTIME = new Date('2026-03-04T05:06:07Z');

async function writeFile(writer: TreeWriter, name: string, content: Buffer): Promise<void> {
  const sink = await writer.openFile(path.join(dir, name), content.length, 0o644, MTIME);
  await sink.write(content);
  await sink.finish();
}

describe('chooseTreeWriter', () => {
  it('on a local disk, writes on this thread until the archive has declared the threshold, then on writer threads', async () => {
    const writer = chooseTreeWriter({ access: SYNC_ACCESS, workerThresholdBytes: 10 });
    const first = Buffer.from('0123456789');
    writer.beginChunk(first);
    await writeFile(writer, 'small', first);
    expect(readFileSync(path.join(dir, 'small'), 'utf8')).toBe('0123456789'); // written at once
    await writer.endChunk();

    const second = Buffer.from('abcdef');
    writer.beginChunk(second);
    await writeFile(writer, 'later', second);
    expect(existsSync(path.join(dir, 'later'))).toBe(false); // queued for a writer thread
    await writer.endChunk();
    await writer.flush();
    expect(readFileSync(path.join(dir, 'later'), 'utf8')).toBe('abcdef');
  });

  it('writes the file that takes the archive past the threshold on writer threads from its first byte', async () => {
    const writer = chooseTreeWriter({ access: SYNC_ACCESS, workerThresholdBytes: 10 });
    const chunk = Buffer.from('abc0123456789xyz');
    writer.beginChunk(chunk);
    await writeFile(writer, 'small', chunk.subarray(0, 3));
    expect(readFileSync(path.join(dir, 'small'), 'utf8')).toBe('abc'); // written at once
    await writeFile(writer, 'large', chunk.subarray(3));
    expect(existsSync(path.join(dir, 'large'))).toBe(false); // queued for a writer thread, in the same chunk
    await writer.endChunk();
    await writer.flush();
    expect(readFileSync(path.join(dir, 'large'), 'utf8')).toBe('0123456789xyz');
  });

  it('never starts threads with an infinite threshold, however many entries', async () => {
    const writer = chooseTreeWriter({ access: SYNC_ACCESS, workerThresholdBytes: Infinity });
    const chunk = Buffer.from('x');
    for (let round = 0; round < 3; round++) {
      writer.beginChunk(chunk);
      for (let i = 0; i < 600; i++) await writer.mkdir(path.join(dir, `d${round}-${i}`));
      await writer.endChunk();
    }
    writer.beginChunk(chunk);
    await writeFile(writer, 'f', chunk);
    expect(existsSync(path.join(dir, 'f'))).toBe(true);
    await writer.flush();
  });

  it('starts on writer threads with a threshold of 0', async () => {
    const writer = chooseTreeWriter({ access: SYNC_ACCESS, workerThresholdBytes: 0 });
    const chunk = Buffer.from('threads');
    writer.beginChunk(chunk);
    await writeFile(writer, 'f', chunk);
    expect(existsSync(path.join(dir, 'f'))).toBe(false);
    await writer.endChunk();
    await writer.flush();
    expect(readFileSync(path.join(dir, 'f'), 'utf8')).toBe('threads');
  });

  it('keeps calls in flight on a network file system', async () => {
    const writer = chooseTreeWriter({ access: PARALLEL_ACCESS });
    const chunk = Buffer.from('remote');
    writer.beginChunk(chunk);
    const pending = writer.mkdir(path.join(dir, 'sub'));
    expect(pending).toBeInstanceOf(Promise);
    await pending;
    await writer.flush();
    expect(existsSync(path.join(dir, 'sub'))).toBe(true);
  });
});
