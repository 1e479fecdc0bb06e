// The cache warmer (cache-warmer.ts) reads files it is given on libuv's pool and throws the
// content away: whatever a path turns out to be (a FIFO, a symlink, a directory, nothing),
// it must not wait on it, follow it or keep it open, and stopping it waits for its reads.

import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
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
});
