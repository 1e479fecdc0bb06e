// The buffers whole zstd frames are copied into (shared/archive/frame-pool.ts): reused once
// released, never a buffer the pool did not make, never handed out twice, and no more kept
// than its bound. (zstd-frames.test.ts checks that the decoder reuses them and still decodes
// every chunking correctly.)

import { describe, expect, it } from 'vitest';

import { FramePool } from '../shared/archive/frame-pool.js';

const MiB = 1024 * 1024;

describe('FramePool', () => {
  it('gives a buffer of the size asked for, and the same memory again once it is released', () => {
    const pool = new FramePool(16 * MiB);
    const first = pool.acquire(1000);
    expect(first.length).toBe(1000);
    // Two at once are two buffers.
    const second = pool.acquire(3 * MiB);
    expect(second.buffer).not.toBe(first.buffer);
    pool.release(first);
    const again = pool.acquire(1500);
    expect(again.length).toBe(1500);
    expect(again.buffer).toBe(first.buffer);
    // A larger frame than any free buffer gets a new one.
    pool.release(again);
    expect(pool.acquire(5 * MiB).buffer).not.toBe(first.buffer);
  });

  it('ignores buffers it did not make and a second release of the same one', () => {
    const pool = new FramePool(16 * MiB);
    const foreign = Buffer.allocUnsafeSlow(4 * MiB);
    pool.release(foreign);
    pool.release(foreign.subarray(0, 100));
    expect(pool.acquire(100).buffer).not.toBe(foreign.buffer);

    const mine = pool.acquire(100);
    pool.release(mine);
    pool.release(mine);
    const a = pool.acquire(100);
    const b = pool.acquire(100);
    expect(a.buffer).toBe(mine.buffer);
    expect(b.buffer).not.toBe(mine.buffer);
  });

  it('keeps at most maxBytes of free buffers', () => {
    const pool = new FramePool(5 * MiB);
    const buffers = [pool.acquire(100), pool.acquire(100), pool.acquire(100)];
    for (const buffer of buffers) pool.release(buffer);
    // Two 2 MiB buffers fit in 5 MiB; the third was left to the garbage collector.
    const reused = new Set([pool.acquire(100).buffer, pool.acquire(100).buffer, pool.acquire(100).buffer]);
    expect([...reused].filter((backing) => buffers.some((buffer) => buffer.buffer === backing))).toHaveLength(2);
  });
});
