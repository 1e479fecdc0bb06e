// The cache warmer (cache-warmer.ts) reads files it is given on libuv's pool and throws the
// content away: whatever a path turns out to be (a FIFO, a symlink, a directory, nothing),
// it must not wait on it, follow it or keep it open, and stopping it waits for its reads.

import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CacheWarmer } from '../shared/backup/cache-warmer.js';
import { tempDir } from './helpers/tree.js';

const dir = tempDir('cache-warmer-');
afterAll(() => dir.cleanup());

const files: string[] = [];
let awkward: string[];

beforeAll(() => {
  for (let i = 0; i < 300; i++) {
    const file = path.join(dir.path, `f${i}`);
    writeFileSync(file, Buffer.alloc(i * 400, i)); // up to ~117 KiB: more than one read's worth
    files.push(file);
  }
  const fifo = path.join(dir.path, 'fifo');
  execFileSync('mkfifo', [fifo]); // nobody ever writes to it: an open that waited would never return
  const link = path.join(dir.path, 'link');
  symlinkSync(fifo, link);
  const sub = path.join(dir.path, 'sub');
  mkdirSync(sub);
  awkward = [fifo, link, sub, path.join(dir.path, 'missing'), path.join(dir.path, 'f1', 'not-a-directory')];
});

const openFiles = (): number => readdirSync('/proc/self/fd').length;

describe('cache warmer', () => {
  it('reads every kind of path without waiting on it, and stopping waits until nothing it opened is open', async () => {
    const before = openFiles();
    const warmer = new CacheWarmer(4);
    warmer.warm(awkward);
    warmer.warm(files);
    warmer.warm(awkward);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await warmer.stop();
    expect(openFiles()).toBe(before);
  });

  it('drops what is queued once stopped, and warms nothing after', async () => {
    const before = openFiles();
    const warmer = new CacheWarmer(2);
    warmer.warm(files);
    await warmer.stop();
    expect(openFiles()).toBe(before);
    warmer.warm(files);
    expect(openFiles()).toBe(before);
    await warmer.stop();
  });

  it('does nothing without calls to spare (a pool of libuv threads too small to share)', async () => {
    const before = openFiles();
    const warmer = new CacheWarmer(0);
    expect(warmer.enabled).toBe(false);
    warmer.warm(files);
    expect(openFiles()).toBe(before);
    await warmer.stop();
  });

  it("leaves the access times as they were (a day-old one is not rewritten at every backup)", async (context) => {
    const threeDaysAgo = new Date(Math.floor(Date.now() / 1000 - 3 * 24 * 3600) * 1000);
    const aged = ['control', 'a1', 'a2', 'a3'].map((name) => {
      const file = path.join(dir.path, name);
      writeFileSync(file, `content of ${name}`);
      utimesSync(file, threeDaysAgo, statSync(file).mtime);
      return file;
    });
    // A plain read updates such an access time (relatime); on a noatime mount nothing can show.
    readFileSync(aged[0]!);
    if (statSync(aged[0]!).atimeMs === threeDaysAgo.getTime()) context.skip();
    const warmer = new CacheWarmer(3);
    warmer.warm(aged.slice(1)); // all three in flight at once: stopping waits for them
    await warmer.stop();
    expect(aged.slice(1).map((file) => statSync(file).atimeMs)).toEqual([threeDaysAgo.getTime(), threeDaysAgo.getTime(), threeDaysAgo.getTime()]);
  });
});
