// Restored files keep long runs of zeros as holes (holes.ts): a tenant's sparse file (a
// disk image, a preallocated database) must fit again on the disk that held it. The planner
// on its own: whatever pieces the content arrives in, the planned writes rebuild it byte for
// byte and leave exactly the long runs unwritten. Then every writer (synchronous, writer
// threads, network) on a real file system: same content, size and mtime, few blocks.

import { mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { HOLE_MIN_BYTES, HolePlanner } from '../shared/restore/holes.js';
import { ParallelTreeWriter } from '../shared/restore/parallel-tree-writer.js';
import { SyncTreeWriter } from '../shared/restore/sync-tree-writer.js';
import type { TreeWriter } from '../shared/restore/tree-writer.js';
import { WorkerTreeWriter } from '../shared/restore/worker-tree-writer.js';
import { tempDir } from './helpers/tree.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Content with data at `islands` (offset → length, filled with non-zero bytes), zeros elsewhere. */
function contentWith(size: number, islands: readonly (readonly [number, number])[]): Buffer {
  const content = Buffer.alloc(size);
  for (const [offset, length] of islands) content.fill(0x5a, offset, offset + length);
  return content;
}

/**
 * Plans `content` arriving in pieces of the given sizes (repeated) and makes the planned
 * writes into a zeroed buffer, as into a new file (its holes read as zeros). Returns the
 * file and which bytes were written; fails on a byte written twice or out of order.
 */
function replay(content: Buffer, pieceSizes: readonly number[]): { file: Buffer; written: Uint8Array } {
  const planner = new HolePlanner();
  const file = Buffer.alloc(content.length);
  const written = new Uint8Array(content.length);
  const problems: string[] = [];
  const mark = (position: number, length: number) => {
    if (written.subarray(position, position + length).some((byte) => byte !== 0)) problems.push(`written twice at ${position}`);
    written.fill(1, position, position + length);
  };
  for (let at = 0, piece = 0; at < content.length; piece++) {
    const bytes = content.subarray(at, Math.min(content.length, at + pieceSizes[piece % pieceSizes.length]!));
    planner.plan(bytes, {
      data: (from, length, position) => {
        if (position !== at + from) problems.push(`data from ${from} planned at ${position}`);
        bytes.copy(file, position, from, from + length);
        mark(position, length);
      },
      zeros: (length, position) => {
        if (position + length > at) problems.push(`zeros at ${position} reach into the piece at ${at}`);
        mark(position, length);
      },
    });
    at += bytes.length;
  }
  expect(problems).toEqual([]);
  expect(planner.size).toBe(content.length);
  // The writer extends the file (ftruncate) exactly when its last byte was not written.
  expect(planner.endsInHole).toBe(content.length > 0 && written[content.length - 1] === 0);
  return { file, written };
}

describe('HolePlanner', () => {
  const size = 1 * MiB + 777;
  const cases: { name: string; islands: [number, number][]; holes: [number, number][] }[] = [
    { name: 'data only', islands: [[0, size]], holes: [] },
    { name: 'zeros only', islands: [], holes: [[0, size]] },
    { name: 'a short run of zeros between data is written', islands: [[0, 100 * KiB], [100 * KiB + HOLE_MIN_BYTES - 4 * KiB, size - 100 * KiB - HOLE_MIN_BYTES + 4 * KiB]], holes: [] },
    { name: 'data at the start, middle and end of a hole-filled file', islands: [[0, 5], [512 * KiB + 3, 10], [size - 4, 4]], holes: [[4 * KiB, 508 * KiB], [516 * KiB, size - 4 * KiB - 516 * KiB - 777]] },
    { name: 'a file that ends in zeros', islands: [[10, 10]], holes: [[4 * KiB, size - 4 * KiB]] },
    // Zeros are first judged 64 KiB at a time: one byte anywhere in such a span keeps its 4 KiB cell, no more.
    { name: 'one byte in the middle of a span of zeros', islands: [[94 * KiB + 5, 1]], holes: [[0, 92 * KiB], [96 * KiB, size - 96 * KiB]] },
    { name: 'data in the last cell of a span', islands: [[124 * KiB, 4 * KiB], [252 * KiB + 4095, 1]], holes: [[0, 124 * KiB], [128 * KiB, 124 * KiB], [256 * KiB, size - 256 * KiB]] },
  ];
  for (const { name, islands, holes } of cases) {
    it(`${name}: rebuilt byte for byte, long runs left unwritten, whatever the pieces`, () => {
      const content = contentWith(size, islands);
      for (const pieces of [[size], [512], [4 * KiB], [1000, 70_001, 3], [HOLE_MIN_BYTES - 1], [2 * MiB]]) {
        const { file, written } = replay(content, pieces);
        expect(file.equals(content), `pieces ${pieces.join(',')}`).toBe(true);
        for (const [offset, length] of holes) {
          expect(written.subarray(offset, offset + length).every((byte) => byte === 0), `hole at ${offset} with pieces ${pieces.join(',')}`).toBe(true);
        }
        if (holes.length === 0) expect(written.every((byte) => byte === 1), `pieces ${pieces.join(',')}`).toBe(true);
      }
    });
  }
});

describe('writers leave holes', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => {
    dir = tempDir('holes-');
  });
  afterEach(() => dir.cleanup());

  const MTIME = new Date('2026-01-02T03:04:05Z');
  const writers: [string, () => TreeWriter][] = [
    ['synchronous', () => new SyncTreeWriter()],
    ['writer threads', () => new WorkerTreeWriter()],
    ['network (parallel)', () => new ParallelTreeWriter()],
  ];
  for (const [name, makeWriter] of writers) {
    it(`${name}: a 64 MiB file with 12 KiB of data takes a few blocks, and reads back whole`, async () => {
      const size = 64 * MiB;
      const content = contentWith(size, [[0, 4 * KiB], [32 * MiB + 100, 4 * KiB], [size - 4 * KiB, 4 * KiB]]);
      const writer = makeWriter();
      const root = path.join(dir.path, 'root');
      mkdirSync(root);
      const target = path.join(root, 'disk.img');
      const tail = path.join(root, 'ends-in-zeros');
      // As a decoded stream delivers it: 2 MiB chunks, content starting 512 bytes in.
      const sink = await writer.openFile(target, size, 0o640, MTIME);
      for (let at = 0; at < size; ) {
        const chunk = Buffer.alloc(2 * MiB);
        const length = Math.min(size - at, chunk.length - 512);
        content.copy(chunk, 512, at, at + length);
        writer.beginChunk(chunk);
        await sink.write(chunk.subarray(512, 512 + length));
        if (at + length === size) await sink.finish();
        await writer.endChunk();
        at += length;
      }
      const tailSink = await writer.openFile(tail, 8 * MiB, 0o600, MTIME);
      const tailChunk = contentWith(8 * MiB, [[0, 4 * KiB]]);
      writer.beginChunk(tailChunk);
      await tailSink.write(tailChunk);
      await tailSink.finish();
      await writer.endChunk();
      await writer.flush();
      expect(sink.size).toBe(size);

      const stat = statSync(target);
      expect({ size: stat.size, mode: stat.mode & 0o777, mtime: stat.mtimeMs }).toEqual({ size, mode: 0o640, mtime: MTIME.getTime() });
      expect(readFileSync(target).equals(content)).toBe(true);
      expect(stat.blocks * 512).toBeLessThan(4 * MiB);
      const tailStat = statSync(tail);
      expect({ size: tailStat.size, mtime: tailStat.mtimeMs }).toEqual({ size: 8 * MiB, mtime: MTIME.getTime() });
      expect(readFileSync(tail).equals(contentWith(8 * MiB, [[0, 4 * KiB]]))).toBe(true);
      expect(tailStat.blocks * 512).toBeLessThan(1 * MiB);
    });
  }
});
