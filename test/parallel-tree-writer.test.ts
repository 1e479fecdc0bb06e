// The tree writer for network file systems (parallel-tree-writer.ts): small files from
// several directories in flight at once, within the global and the per-directory bound;
// extraction held back while the queue is full; the first failure reported, nothing started
// after it. `open` is slowed down here (as a network file system is) and watched.

import { promises as fs, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { AbortedError } from '../shared/errors.js';
import { ParallelTreeWriter } from '../shared/restore/parallel-tree-writer.js';
import type { FileSink } from '../shared/restore/tree-writer.js';
import { sh, tempDir } from './helpers/tree.js';

let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir('parallel-writer-');
});
afterEach(() => {
  vi.restoreAllMocks();
  dir.cleanup();
});

/** Files being written (from open to the end of close), now and at most, in all and per directory, and directories at once. */
function watchWrites(delayMs: number) {
  const inFlight = new Map<string, number>();
  const peak = { all: 0, perDirectory: 0, directories: 0 };
  let all = 0;
  const open = fs.open.bind(fs);
  vi.spyOn(fs, 'open').mockImplementation(async (file, flags, mode) => {
    const directory = path.dirname(String(file));
    all++;
    inFlight.set(directory, (inFlight.get(directory) ?? 0) + 1);
    peak.all = Math.max(peak.all, all);
    peak.perDirectory = Math.max(peak.perDirectory, inFlight.get(directory)!);
    peak.directories = Math.max(peak.directories, [...inFlight.values()].filter((count) => count > 0).length);
    const leave = () => {
      all--;
      inFlight.set(directory, inFlight.get(directory)! - 1);
    };
    await sleep(delayMs);
    let handle: fs.FileHandle;
    try {
      handle = await open(file, flags, mode);
    } catch (error) {
      leave();
      throw error;
    }
    const close = handle.close.bind(handle);
    handle.close = async () => {
      try {
        await close();
      } finally {
        leave();
      }
    };
    return handle;
  });
  return peak;
}

async function writeFile(writer: ParallelTreeWriter, absPath: string, content: string, mtime = new Date('2026-01-02T03:04:05Z')): Promise<void> {
  const opened = writer.openFile(absPath, content.length, 0o640, mtime);
  const sink: FileSink = opened instanceof Promise ? await opened : opened;
  const wrote = sink.write(Buffer.from(content));
  if (wrote !== undefined) await wrote;
  const finished = sink.finish();
  if (finished !== undefined) await finished;
}

/** Holds every file open until the function returned is called. */
function holdOpens(): () => void {
  let openGate!: () => void;
  const gate = new Promise<void>((resolve) => (openGate = resolve));
  const open = fs.open.bind(fs);
  vi.spyOn(fs, 'open').mockImplementation(async (...args: Parameters<typeof fs.open>) => {
    await gate;
    return open(...args);
  });
  return openGate;
}

describe('ParallelTreeWriter', () => {
  it('writes several directories at once, within its bounds, and every file whole with its mode and mtime', async () => {
    const peak = watchWrites(3);
    const writer = new ParallelTreeWriter(8);
    const directories = ['a', 'b', 'c', 'd'].map((name) => path.join(dir.path, name));
    for (const directory of directories) {
      await writer.mkdir(directory);
      // As an archive lists them: one directory's files after another's.
      for (let f = 0; f < 20; f++) await writeFile(writer, path.join(directory, `f${f}`), `${directory}:${f}`);
    }
    await writer.flush();
    expect(peak.all).toBeLessThanOrEqual(8);
    expect(peak.perDirectory).toBeLessThanOrEqual(4);
    expect(peak.directories).toBeGreaterThanOrEqual(2);
    for (const directory of directories) {
      for (let f = 0; f < 20; f++) {
        const file = path.join(directory, `f${f}`);
        expect(readFileSync(file, 'utf8')).toBe(`${directory}:${f}`);
        expect(statSync(file).mode & 0o777).toBe(0o640);
        expect(statSync(file).mtimeMs).toBe(Date.parse('2026-01-02T03:04:05Z'));
      }
    }
  });

  it('holds extraction back while its queue is full', async () => {
    watchWrites(5);
    const writer = new ParallelTreeWriter(2, undefined, 3);
    const target = path.join(dir.path, 'q');
    mkdirSync(target);
    const finished: (Promise<void> | undefined)[] = [];
    for (let f = 0; f < 5; f++) {
      const sink = writer.openFile(path.join(target, `f${f}`), 1, 0o644, new Date()) as FileSink;
      sink.write(Buffer.from('x'));
      finished.push(sink.finish());
    }
    // Three files fit in the queue; the third waits for room, as does everything after it.
    expect(finished.slice(0, 2)).toEqual([undefined, undefined]);
    expect(finished[2]).toBeInstanceOf(Promise);
    await Promise.all(finished);
    await writer.flush();
    for (let f = 0; f < 5; f++) expect(readFileSync(path.join(target, `f${f}`), 'utf8')).toBe('x');
  });

  it('counts the time its queued files still need, from the first write on (a piece of a restore in pieces stops by it)', async () => {
    // Behind EFS the queue fills in the time its first file takes: a piece that counted
    // nothing until one was written stopped with 4,096 files to drain past its deadline.
    const openGate = holdOpens();
    const writer = new ParallelTreeWriter(8);
    expect(writer.backlogMs()).toBe(0);
    const target = path.join(dir.path, 'sessions');
    mkdirSync(target);
    for (let f = 0; f < 40; f++) await writeFile(writer, path.join(target, `f${f}`), 'x');
    const queuedAt = Date.now();
    while (Date.now() === queuedAt); // a millisecond passes, none of the 40 written
    expect(writer.backlogMs()).toBeGreaterThanOrEqual(40);
    openGate();
    await writer.flush();
    expect(writer.backlogMs()).toBe(0);
  });

  it('stops waiting for the files still queued when the restore is stopped, and drops them when settled', async () => {
    // Creates in one directory take their turns: behind a slow mount, a queue of them took a
    // minute to write after the invocation's deadline had fired. Here the opens wait for a gate.
    const openGate = holdOpens();
    const deadline = new AbortController();
    const writer = new ParallelTreeWriter(8, undefined, undefined, undefined, deadline.signal);
    const target = path.join(dir.path, 'sessions');
    mkdirSync(target);
    for (let f = 0; f < 40; f++) await writeFile(writer, path.join(target, `f${f}`), 'x');
    const flushed = writer.flush();
    deadline.abort(new AbortedError('stopped: the Lambda invocation was about to time out'));
    setImmediate(openGate);
    await expect(flushed).rejects.toThrow('stopped: the Lambda invocation was about to time out');
    await writer.settle();
    // The four in flight in the directory (PER_DIRECTORY) were written; the 36 waiting never started.
    expect((await fs.readdir(target)).length).toBe(4);
  });

  it('closes a large file abandoned after a failure before it says it is done (before: the close went on after, racing the removal of the staging area: on NFS a file removed while open stays as .nfs…)', async () => {
    const closes: string[] = [];
    const open = fs.open.bind(fs);
    vi.spyOn(fs, 'open').mockImplementation(async (file, flags, mode) => {
      const handle = await open(file, flags, mode);
      const close = handle.close.bind(handle);
      handle.close = async () => {
        await close();
        closes.push(path.basename(String(file)));
      };
      return handle;
    });
    const writer = new ParallelTreeWriter(8);
    const opened = writer.openFile(path.join(dir.path, 'large.bin'), 8 * 1024 * 1024, 0o640, new Date());
    const sink: FileSink = opened instanceof Promise ? await opened : opened;
    await sink.write(Buffer.alloc(2 * 1024 * 1024, 1));
    await sink.abandon();
    expect(closes).toEqual(['large.bin']);
  });

  it('reports the first failure, and starts nothing after it', async () => {
    const peak = watchWrites(2);
    const writer = new ParallelTreeWriter(2);
    const missing = path.join(dir.path, 'missing');
    const present = path.join(dir.path, 'present');
    mkdirSync(present);
    await writeFile(writer, path.join(missing, 'f'), 'lost');
    await expect(async () => {
      for (let f = 0; f < 50; f++) await writeFile(writer, path.join(present, `f${f}`), 'x');
      await writer.flush();
    }).rejects.toMatchObject({ code: 'ENOENT', path: path.join(missing, 'f') });
    await writer.settle();
    expect(peak.all).toBeLessThanOrEqual(2);
    const written = (await fs.readdir(present)).length;
    expect(written).toBeLessThan(50);
  });

  it.runIf(process.geteuid?.() === 0)('fails a small file that the volume has room for only in part, rather than leave it cut short', async () => {
    // A write into a volume about to fill comes back short without an error.
    const volume = path.join(dir.path, 'volume');
    mkdirSync(volume);
    sh(`mount -t tmpfs -o size=1m tmpfs '${volume}'`);
    try {
      writeFileSync(path.join(volume, 'filler'), Buffer.alloc(1024 * 1024 - 256 * 1024));
      const writer = new ParallelTreeWriter(2);
      await expect(async () => {
        await writeFile(writer, path.join(volume, 'session.jsonl'), 'x'.repeat(512 * 1024));
        await writer.flush();
      }).rejects.toMatchObject({ code: 'ENOSPC' });
      await writer.settle();
    } finally {
      sh(`umount '${volume}'`);
    }
  });
});
