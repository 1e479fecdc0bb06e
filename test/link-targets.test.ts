// A backup's record of the files of more than one name it archived (link-targets.ts) and
// `tenants list`'s of those it counted (seen-inodes.ts), both packed outside the heap: they
// answer as the Map of `linkKey` strings and the Set of `dev:ino` strings they replace did.

import { describe, expect, it } from 'vitest';

import { linkKey, type LinkIdentity } from '../shared/backup/link-key.js';
import { LinkTargets } from '../shared/backup/link-targets.js';
import { SeenInodes } from '../shared/backup/seen-inodes.js';

/** A small deterministic generator (mulberry32), so a failure can be run again. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INODES = [0, 1, 2, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1, 12_345_678_901];

describe('LinkTargets', () => {
  it('answers as a Map by linkKey would, over files of one inode in several versions, inodes past 2^32 and odd names', () => {
    const next = random(7);
    const packed = new LinkTargets();
    const reference = new Map<string, string>();
    const names = ['a', 'dir/b', 'é/ü', '\u{1F600}/x', 'lone \ud800 surrogate', 'x'.repeat(10_000), ''];
    const identity = (): LinkIdentity => ({
      ino: next() < 0.3 ? INODES[Math.floor(next() * INODES.length)]! : Math.floor(next() * 5_000),
      size: Math.floor(next() * 3),
      mtimeMs: next() < 0.5 ? 1_765_000_000_000 : 1_765_000_000_000 + Math.floor(next() * 4) / 8,
      ctimeMs: 1_765_000_000_000.25 + Math.floor(next() * 2),
    });
    for (let i = 0; i < 50_000; i++) {
      const file = identity();
      if (next() < 0.5) {
        const name = next() < 0.1 ? names[Math.floor(next() * names.length)]! : `d${i % 97}/f${i}`;
        packed.set(file, name);
        reference.set(linkKey(file), name);
      } else expect(packed.get(file)).toBe(reference.get(linkKey(file)));
    }
    expect(packed.size).toBe(reference.size);
    expect(packed.entries()).toEqual([...reference]);
    const resumed = LinkTargets.fromEntries([...reference]);
    for (const [key, name] of reference) expect(resumed.get(identityOf(key))).toBe(name);
  });

  it('tells apart files that differ only in size, mtime or ctime', () => {
    const targets = new LinkTargets();
    const file = { ino: 42, size: 10, mtimeMs: 1000.5, ctimeMs: 2000.25 };
    targets.set(file, 'first');
    expect(targets.get({ ...file })).toBe('first');
    expect(targets.get({ ...file, size: 11 })).toBeUndefined();
    expect(targets.get({ ...file, mtimeMs: 1000.75 })).toBeUndefined();
    expect(targets.get({ ...file, ctimeMs: 2000.5 })).toBeUndefined();
    expect(targets.get({ ...file, ino: 43 })).toBeUndefined();
  });

  it("takes a checkpoint's pairs back, leaving out a key it did not write", () => {
    const targets = LinkTargets.fromEntries([
      ['5:1:2.5:3', 'a/b'],
      ['not a key', 'x'],
      ['5:1:2.50:3', 'y'],
      ['7:0:1:1', 'c'],
    ]);
    expect(targets.entries()).toEqual([
      ['5:1:2.5:3', 'a/b'],
      ['7:0:1:1', 'c'],
    ]);
    expect(LinkTargets.fromEntries(undefined).size).toBe(0);
  });

  it('never makes a file whose inode number is past 2^53 a link target: a neighbouring number rounds to it (overlayfs xino: ~2^63)', () => {
    const targets = new LinkTargets();
    const file = { ino: Number(2n ** 63n + 4n), size: 4, mtimeMs: 1_700_000_000_000, ctimeMs: 1_765_000_000_000.25 };
    const neighbour = { ...file, ino: Number(2n ** 63n + 5n) };
    expect(neighbour).toEqual(file);
    targets.set(file, 'a1');
    expect(targets.get(neighbour)).toBeUndefined();
    expect(targets.get({ ...file, ino: 2 ** 53 })).toBeUndefined();
    targets.set({ ...file, ino: 2 ** 53 - 1 }, 'exact');
    expect(targets.get({ ...file, ino: 2 ** 53 - 1 })).toBe('exact');
    expect(LinkTargets.fromEntries([[linkKey(file), 'a1']]).get(neighbour)).toBeUndefined();
  });

  it('tells files past 2^53 apart by their exact inode numbers (a bigint stat), through a checkpoint too', () => {
    const times = { size: 4, mtimeMs: 1_700_000_000_000, ctimeMs: 1_765_000_000_000.25 };
    const a = { ino: Number(2n ** 63n + 4n), exactIno: String(2n ** 63n + 4n), ...times };
    const b = { ino: Number(2n ** 63n + 5n), exactIno: String(2n ** 63n + 5n), ...times };
    const targets = new LinkTargets();
    targets.set(a, 'a1');
    targets.set(b, 'b1');
    targets.set({ ...times, ino: 7 }, 'small');
    expect([targets.get(a), targets.get(b), targets.size]).toEqual(['a1', 'b1', 3]);
    // Without its exact number, never one of them.
    expect(targets.get({ ...a, exactIno: undefined })).toBeUndefined();
    // Through JSON, as a checkpoint is stored between invocations: the keys' numbers in full.
    const entries = JSON.parse(JSON.stringify(targets.entries())) as [string, string][];
    expect(entries).toContainEqual(['9223372036854775812:4:1700000000000:1765000000000.25', 'a1']);
    const resumed = LinkTargets.fromEntries(entries);
    expect([resumed.get(a), resumed.get(b), resumed.get({ ...times, ino: 7 }), resumed.size]).toEqual(['a1', 'b1', 'small', 3]);
    // Keys this version does not write stay out.
    expect(LinkTargets.fromEntries([['09223372036854775812:4:1:1', 'x'], ['-9223372036854775804:4:1:1', 'y']]).size).toBe(0);
  });
});

describe('SeenInodes', () => {
  it('answers as a Set of dev:ino strings would, over several devices and inodes past 2^32', () => {
    const next = random(11);
    const packed = new SeenInodes();
    const reference = new Set<string>();
    for (let i = 0; i < 200_000; i++) {
      const dev = next() < 0.9 ? 2049 : Math.floor(next() * 4);
      const ino = next() < 0.2 ? INODES[Math.floor(next() * INODES.length)]! + Math.floor(next() * 3) : Math.floor(next() * 100_000);
      const key = `${dev}:${ino}`;
      // An inode past 2^53 is not exact (2^53 + 1 rounds to 2^53): every name of it counts as a file of its own.
      expect(packed.add(dev, ino)).toBe(!Number.isSafeInteger(ino) || !reference.has(key));
      if (Number.isSafeInteger(ino)) reference.add(key);
    }
    expect(packed.size).toBe(reference.size);
  });

  it('counts a file past 2^53 once by its exact dev:ino, its rounded neighbour apart', () => {
    const seen = new SeenInodes();
    const ino = Number(2n ** 63n + 4n);
    expect([seen.add(41, ino, `41:${2n ** 63n + 4n}`), seen.add(41, ino, `41:${2n ** 63n + 5n}`), seen.add(41, ino, `41:${2n ** 63n + 4n}`), seen.add(41, ino)]).toEqual([true, true, false, true]);
    expect(seen.size).toBe(2);
  });
});

function identityOf(key: string): LinkIdentity {
  const [ino, size, mtimeMs, ctimeMs] = key.split(':').map(Number) as [number, number, number, number];
  return { ino, size, mtimeMs, ctimeMs };
}
