// The writer-thread writer on its own: it must create exactly what the synchronous writer
// creates, each directory in order, and report a failure of a thread's file-system calls as
// the errno error the same call would have thrown here, without leaking the file it had open.

import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { SyncTreeWriter } from '../shared/restore/sync-tree-writer.js';
import type { TreeWriter } from '../shared/restore/tree-writer.js';
import { WorkerTreeWriter } from '../shared/restore/worker-tree-writer.js';
import { repoRoot } from './helpers/tree.js';

let dir = '';
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'worker-tree-writer-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const MTIME = new Date('2026-03-04T05:06:07Z');

/** Writes a small tree through `writer`, its file content arriving in two chunks as a decoded stream would deliver it. */
async function writeTree(writer: TreeWriter, root: string): Promise<void> {
  const first = Buffer.from('HEADERhello, HEADERwor');
  const second = Buffer.from('ld!PADDING');
  writer.beginChunk(first);
  await writer.mkdir(path.join(root, 'sub'));
  const sink = await writer.openFile(path.join(root, 'sub/greeting.txt'), 13, 0o640, MTIME);
  await sink.write(first.subarray(6, 13));
  await sink.write(first.subarray(19, 22));
  await writer.endChunk();
  writer.beginChunk(second);
  await sink.write(second.subarray(0, 3));
  await sink.finish();
  const empty = await writer.openFile(path.join(root, 'empty'), 0, 0o600, MTIME);
  await empty.finish();
  await writer.symlink('sub/greeting.txt', path.join(root, 'link'), MTIME);
  await writer.link(path.join(root, 'sub/greeting.txt'), path.join(root, 'hard'));
  await writer.endChunk();
  await writer.flush();
}

function describeTree(root: string): unknown {
  const entries: Record<string, unknown> = {};
  const walk = (relative: string) => {
    for (const name of readdirSync(path.join(root, relative)).sort()) {
      const rel = relative === '' ? name : `${relative}/${name}`;
      const full = path.join(root, rel);
      const st = lstatSync(full);
      if (st.isDirectory()) {
        entries[rel] = 'directory';
        walk(rel);
      } else if (st.isSymbolicLink()) entries[rel] = { link: readlinkSync(full), mtime: st.mtimeMs };
      else entries[rel] = { content: readFileSync(full, 'utf8'), mode: st.mode & 0o777, mtime: st.mtimeMs, links: st.nlink };
    }
  };
  walk('');
  return entries;
}

function openDescriptors(): number {
  return readdirSync('/proc/self/fd').length;
}

describe('WorkerTreeWriter', () => {
  it('creates the same tree as the synchronous writer: content across chunks, modes, mtimes, links', async () => {
    const viaWorker = path.join(dir, 'worker');
    const viaSync = path.join(dir, 'sync');
    mkdirSync(viaWorker);
    mkdirSync(viaSync);
    await writeTree(new WorkerTreeWriter(), viaWorker);
    await writeTree(new SyncTreeWriter(), viaSync);

    const tree = describeTree(viaWorker);
    expect(tree).toEqual(describeTree(viaSync));
    expect(tree).toMatchObject({
      'sub/greeting.txt': { content: 'hello, world!', mode: 0o640, mtime: MTIME.getTime(), links: 2 },
      empty: { content: '', mode: 0o600 },
      link: { link: 'sub/greeting.txt', mtime: MTIME.getTime() },
    });
  });

  it('reports a failed call as its errno error, skips everything after it, and closes the file it had open', async () => {
    writeFileSync(path.join(dir, 'taken'), 'already here');
    const before = openDescriptors();
    const writer = new WorkerTreeWriter();
    const chunk = Buffer.from('0123456789');
    writer.beginChunk(chunk);
    const open = await writer.openFile(path.join(dir, 'opened'), 20, 0o644, MTIME);
    await open.write(chunk);
    await writer.endChunk();
    const clash = await writer.openFile(path.join(dir, 'taken'), 1, 0o644, MTIME); // O_EXCL: EEXIST
    await clash.write(chunk.subarray(0, 1));
    await clash.finish();
    const after = await writer.openFile(path.join(dir, 'after-the-failure'), 1, 0o644, MTIME); // same directory: same lane
    await after.write(chunk.subarray(0, 1));
    await after.finish();

    const failure = await writer.flush().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toMatchObject({ code: 'EEXIST', syscall: 'open', path: path.join(dir, 'taken') });
    await writer.settle();

    expect(readFileSync(path.join(dir, 'taken'), 'utf8')).toBe('already here');
    expect(readdirSync(dir).sort()).toEqual(['opened', 'taken']);
    expect(statSync(path.join(dir, 'opened')).size).toBe(10);
    expect(openDescriptors()).toBe(before);
  });

  it('still works from a minified ESM bundle, as the Lambda functions ship it', async () => {
    const { build } = await import('esbuild');
    const bundle = path.join(dir, 'worker-tree-writer.bundle.mjs');
    await build({ entryPoints: [path.join(repoRoot, 'shared', 'restore', 'worker-tree-writer.ts')], bundle: true, minify: true, format: 'esm', platform: 'node', target: 'node20', outfile: bundle, logLevel: 'silent' });
    const bundled = (await import(bundle)) as typeof import('../shared/restore/worker-tree-writer.js');
    const writer = new bundled.WorkerTreeWriter();
    const chunk = Buffer.from('from the bundle');
    writer.beginChunk(chunk);
    const sink = await writer.openFile(path.join(dir, 'bundled.txt'), chunk.length, 0o644, MTIME);
    await sink.write(chunk);
    await sink.finish();
    await writer.endChunk();
    await writer.flush();
    expect(readFileSync(path.join(dir, 'bundled.txt'), 'utf8')).toBe('from the bundle');
  });

  it('writes the files of different directories on different threads, each directory in order', async () => {
    const viaLanes = path.join(dir, 'lanes');
    const viaSync = path.join(dir, 'sync');
    mkdirSync(viaLanes);
    mkdirSync(viaSync);
    const write = async (writer: TreeWriter, root: string) => {
      for (let round = 0; round < 3; round++) {
        const chunk = Buffer.from(`round ${round}: `.padEnd(64, '.'));
        writer.beginChunk(chunk);
        for (let d = 0; d < 5; d++) {
          if (round === 0) await writer.mkdir(path.join(root, `d${d}`));
          for (let f = 0; f < 4; f++) {
            const sink = await writer.openFile(path.join(root, `d${d}`, `f${round}-${f}`), 10 + f, 0o644, MTIME);
            await sink.write(chunk.subarray(0, 10 + f));
            await sink.finish();
          }
        }
        await writer.link(path.join(root, 'd0', `f${round}-0`), path.join(root, `d4`, `hard-${round}`));
        await writer.endChunk();
      }
      await writer.flush();
    };
    await write(new WorkerTreeWriter(3), viaLanes);
    await write(new SyncTreeWriter(), viaSync);
    expect(describeTree(viaLanes)).toEqual(describeTree(viaSync));
    expect(readFileSync(path.join(viaLanes, 'd4', 'hard-2'), 'utf8')).toBe('round 2: .');
  });

  it('closes the open file when abandoned mid-file, after writing what had been queued', async () => {
    const before = openDescriptors();
    const writer = new WorkerTreeWriter();
    const chunk = Buffer.from('partial content');
    writer.beginChunk(chunk);
    const sink = await writer.openFile(path.join(dir, 'partial'), 100, 0o644, MTIME);
    await sink.write(chunk);
    sink.abandon();
    await writer.settle();
    expect(readFileSync(path.join(dir, 'partial'), 'utf8')).toBe('partial content');
    expect(openDescriptors()).toBe(before);
  });
});
