// mounts.ts: an open directory's mount id, read from procfs once per directory a removal or a
// backup opens, so what each read costs is paid 200,000 times for a tenant of that many.

import * as fs from 'node:fs';

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { FD_INFO, mountIdOf } from '../shared/mounts.js';
import { tempDir } from './helpers/tree.js';

const fdInfoReads = vi.hoisted(() => ({ count: 0 }));
vi.mock('node:fs', async (original) => {
  const real = await original<typeof import('node:fs')>();
  return {
    ...real,
    readFileSync: (...args: Parameters<typeof real.readFileSync>) => {
      if (String(args[0]).startsWith('/proc/self/fdinfo/')) fdInfoReads.count++;
      return real.readFileSync(...args);
    },
  };
});

let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir('openclaw-mounts-');
  fdInfoReads.count = 0;
});
afterEach(() => dir.cleanup());

describe.runIf(fs.existsSync(FD_INFO))('mountIdOf', () => {
  it('tells the mount id procfs gives for the descriptor, the same for two directories of one mount', () => {
    fs.mkdirSync(`${dir.path}/a`);
    const top = fs.openSync(dir.path, 'r');
    const below = fs.openSync(`${dir.path}/a`, 'r');
    try {
      const expected = /^mnt_id:\s*(\d+)$/m.exec(fs.readFileSync(`${FD_INFO}${top}`, 'latin1'))![1];
      expect(mountIdOf(top)).toBe(expected);
      expect(mountIdOf(below)).toBe(expected);
    } finally {
      fs.closeSync(top);
      fs.closeSync(below);
    }
  });

  it('says nothing for a descriptor that is not open', () => {
    const fd = fs.openSync(dir.path, 'r');
    fs.closeSync(fd);
    expect(mountIdOf(fd)).toBe('');
  });

  it('reads into one small buffer, not a file read whole: readFileSync took a new 64 KiB one per directory', () => {
    const fd = fs.openSync(dir.path, 'r');
    try {
      for (let i = 0; i < 100; i++) mountIdOf(fd);
    } finally {
      fs.closeSync(fd);
    }
    expect(fdInfoReads.count).toBe(0);
  });
});
