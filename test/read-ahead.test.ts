// The backup's read-ahead (read-ahead.ts): the walk in segments, each file read ahead
// handed back in walk order with what is on disk, whichever reader read it (this thread,
// one or two reader threads, promise calls, a reader thread with the page cache warmed ahead
// of it), including runs that fill several arenas, so that a reader thread has to wait for
// the backup to hand arenas back.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, promises, readFileSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { readAheadFor, type ReadAheadOptions } from '../shared/backup/read-ahead.js';
import { READ_ELSEWHERE, READ_VANISHED, READ_WHOLE } from '../shared/backup/read-run.js';
import { runQueueNanoseconds } from '../shared/backup/reader-thread.js';
import { TenantWalk } from '../shared/backup/tenant-walk.js';
import { PARALLEL_ACCESS, SYNC_ACCESS, type FileAccess } from '../shared/file-access.js';
import { listedDirectory, tempDir } from './helpers/tree.js';

const dir = tempDir('read-ahead-');
afterAll(() => dir.cleanup());

const MiB = 1024 * 1024;
const root = path.join(dir.path, 'tenant');

beforeAll(() => {
  // Many small files in a few directories, then files of 1.5 MiB: three to an arena of 4 MiB
  // (two fit), more than the three arenas of a reader thread hold at once.
  for (let d = 0; d < 4; d++) {
    mkdirSync(path.join(root, `d${d}`), { recursive: true });
    for (let f = 0; f < 300; f++) writeFileSync(path.join(root, `d${d}`, `f${String(f).padStart(3, '0')}`), `${d}/${f}\n`.repeat(f % 5));
  }
  mkdirSync(path.join(root, 'media'));
  for (let f = 0; f < 12; f++) writeFileSync(path.join(root, 'media', `m${String(f).padStart(2, '0')}`), Buffer.alloc(1.5 * MiB, f));
  writeFileSync(path.join(root, 'media', 'n-huge'), Buffer.alloc(4 * MiB + 1, 1)); // larger than an arena
  symlinkSync('d0', path.join(root, 'link'));
});

interface Seen {
  readonly relPath: string;
  readonly outcome: number | 'not read ahead';
  readonly sha256?: string;
}

async function readEverything(access: FileAccess, options: ReadAheadOptions, threadsStarted?: (count: number) => void, from = root): Promise<Seen[]> {
  const seen: Seen[] = [];
  const ahead = readAheadFor(new TenantWalk(from, access), access, (item) => !item.name.startsWith('f299'), options);
  try {
    for (;;) {
      const next = ahead.next();
      const segment = next instanceof Promise ? await next : next;
      if (segment === undefined) break;
      for (let i = 0; i < segment.items.length; i++) {
        const item = segment.items[i]!;
        if (item.kind !== 'file') continue;
        const slot = segment.slots[i]!;
        if (slot === -1) {
          seen.push({ relPath: item.relPath, outcome: 'not read ahead' });
          continue;
        }
        const found = segment.partOf(slot);
        const part = found instanceof Promise ? await found : found;
        const outcome = part.outcome(slot);
        if (outcome !== READ_WHOLE) {
          seen.push({ relPath: item.relPath, outcome });
          continue;
        }
        const content = part.content(slot);
        const at = part.sha256Offset(slot);
        expect(Buffer.from(part.sha256Bytes(slot).subarray(at, at + 32)).toString('hex')).toBe(createHash('sha256').update(content).digest('hex'));
        seen.push({ relPath: item.relPath, outcome, sha256: createHash('sha256').update(content).digest('hex') });
      }
    }
  } finally {
    threadsStarted?.(ahead.readerThreads);
    await ahead.close();
  }
  return seen;
}

/** What each reader must hand back: every file in walk order, as it is on disk. */
function expected(largest: number): Seen[] {
  const seen: Seen[] = [];
  for (let d = 0; d < 4; d++) {
    for (let f = 0; f < 300; f++) {
      const relPath = `d${d}/f${String(f).padStart(3, '0')}`;
      if (f === 299) seen.push({ relPath, outcome: 'not read ahead' });
      else seen.push({ relPath, outcome: READ_WHOLE, sha256: createHash('sha256').update(readFileSync(path.join(root, relPath))).digest('hex') });
    }
  }
  for (let f = 0; f < 12; f++) {
    const relPath = `media/m${String(f).padStart(2, '0')}`;
    if (1.5 * MiB > largest) seen.push({ relPath, outcome: READ_ELSEWHERE });
    else seen.push({ relPath, outcome: READ_WHOLE, sha256: createHash('sha256').update(readFileSync(path.join(root, relPath))).digest('hex') });
  }
  seen.push({ relPath: 'media/n-huge', outcome: READ_ELSEWHERE });
  return seen;
}

describe('read-ahead', () => {
  it.each([
    ['this thread', { threadThresholdFiles: Infinity }],
    ['one reader thread', { threadThresholdFiles: 0, threads: 1 }],
    ['two reader threads', { threadThresholdFiles: 0, threads: 2 }],
    ['this thread, then reader threads', { threadThresholdFiles: 500, threads: 2 }],
    ['a reader thread, the cache warmed ahead of it', { threadThresholdFiles: 0, threads: 1, coldMsPerFile: 0, warmCalls: 4 }],
  ] as const)('hands back every file in walk order as it is on disk, read by %s', async (_label, options) => {
    expect(await readEverything(SYNC_ACCESS, options)).toEqual(expected(4 * MiB));
  });

  it('starts a second reader thread once the files read turn out small, and still hands back every file in walk order', async () => {
    let threads = 0;
    expect(await readEverything(SYNC_ACCESS, { threadThresholdFiles: 0, threads: 1, maxThreads: 2, smallFilesProbe: 16 }, (count) => (threads = count))).toEqual(expected(4 * MiB));
    expect(threads).toBe(2);
  });

  it('keeps one reader thread for files that are not small', async () => {
    const larger = path.join(dir.path, 'larger');
    mkdirSync(larger);
    for (let f = 0; f < 40; f++) writeFileSync(path.join(larger, `g${String(f).padStart(2, '0')}`), Buffer.alloc(64 * 1024, f));
    let threads = 0;
    const seen = await readEverything(SYNC_ACCESS, { threadThresholdFiles: 0, threads: 1, maxThreads: 2, smallFilesProbe: 8 }, (count) => (threads = count), larger);
    expect(seen.map(({ outcome }) => outcome)).toEqual(Array(40).fill(READ_WHOLE));
    expect(threads).toBe(1);
  });

  it('hands back every small file in walk order with promise calls, and leaves larger ones to the caller', async () => {
    expect(await readEverything(PARALLEL_ACCESS, {})).toEqual(expected(256 * 1024));
  });

  it.skipIf(!existsSync('/proc/self/fd'))('with promise calls, checks the directory of a segment\'s files once, not each file after its open', async () => {
    const readlink = vi.spyOn(promises, 'readlink');
    try {
      expect(await readEverything(PARALLEL_ACCESS, {})).toEqual(expected(256 * 1024));
      // 1,213 files in 5 directories, 16 walk items a segment: about 80 checks (a readlink each), the walk's 6 among them.
      expect(readlink.mock.calls.length).toBeGreaterThan(0);
      expect(readlink.mock.calls.length).toBeLessThan(1213 / 8);
    } finally {
      readlink.mockRestore();
    }
  });

  it.each([
    ['a reader thread', SYNC_ACCESS],
    ['promise calls', PARALLEL_ACCESS],
  ])('reports a file removed after the listing as vanished (%s)', async (_label, access) => {
    const removed = path.join(root, 'd1', 'f000');
    const removing: FileAccess = {
      ...access,
      readdir: (at) => {
        const listed = access.readdir(at);
        const afterListing = <T>(entries: T): T => {
          if (listedDirectory(at) === realpathSync(path.dirname(removed))) rmSync(removed);
          return entries;
        };
        return listed instanceof Promise ? listed.then(afterListing) : afterListing(listed);
      },
    };
    try {
      const seen = await readEverything(removing, { threadThresholdFiles: 0, threads: 1 });
      expect(seen.find(({ relPath }) => relPath === 'd1/f000')).toEqual({ relPath: 'd1/f000', outcome: READ_VANISHED });
      expect(seen).toHaveLength(4 * 300 + 13);
    } finally {
      writeFileSync(removed, '');
    }
  });

  it.each([
    ['a reader thread', SYNC_ACCESS],
    ['promise calls', PARALLEL_ACCESS],
  ])('reads nothing through a directory swapped for a symlink after the listing: its files vanished (%s)', async (_label, access) => {
    const swapped = path.join(root, 'd2');
    const outside = path.join(dir.path, 'outside');
    mkdirSync(outside, { recursive: true });
    for (let f = 0; f < 300; f++) writeFileSync(path.join(outside, `f${String(f).padStart(3, '0')}`), 'outside the tenant');
    const swapping: FileAccess = {
      ...access,
      readdir: (at) => {
        const listed = access.readdir(at);
        const afterListing = <T>(entries: T): T => {
          if (listedDirectory(at) === realpathSync(swapped)) {
            renameSync(swapped, `${swapped}.moved`);
            symlinkSync(outside, swapped);
          }
          return entries;
        };
        return listed instanceof Promise ? listed.then(afterListing) : afterListing(listed);
      },
    };
    try {
      const seen = await readEverything(swapping, { threadThresholdFiles: 0, threads: 1 });
      expect(seen.filter(({ relPath }) => relPath.startsWith('d2/')).map(({ outcome }) => outcome)).toEqual([...Array<number>(299).fill(READ_VANISHED), 'not read ahead']);
    } finally {
      rmSync(swapped);
      renameSync(`${swapped}.moved`, swapped);
    }
  });
});

describe("a reader thread's time waiting for a CPU", () => {
  it('is the run queue delay the kernel keeps for the thread, in nanoseconds, never going back', () => {
    const schedstat = '/proc/thread-self/schedstat';
    let available = true;
    try {
      readFileSync(schedstat);
    } catch {
      available = false;
    }
    const first = runQueueNanoseconds({ readFileSync });
    const second = runQueueNanoseconds({ readFileSync });
    if (!available) {
      expect(first).toBe(-1);
      return;
    }
    expect(Number.isInteger(first) && first >= 0).toBe(true);
    expect(second).toBeGreaterThanOrEqual(first);
    expect(Number(readFileSync(schedstat, 'latin1').split(' ')[1])).toBeGreaterThanOrEqual(second);
  });

  it('is unknown (-1) where the kernel does not say', () => {
    const missing = () => {
      throw Object.assign(new Error('ENOENT: no such file or directory'), { code: 'ENOENT' });
    };
    expect(runQueueNanoseconds({ readFileSync: missing })).toBe(-1);
    expect(runQueueNanoseconds({ readFileSync: () => '' })).toBe(-1);
    expect(runQueueNanoseconds({ readFileSync: () => '12345 not-a-number 7\n' })).toBe(-1);
    expect(runQueueNanoseconds({ readFileSync: () => '12345 678 7\n' })).toBe(678);
  });
});
