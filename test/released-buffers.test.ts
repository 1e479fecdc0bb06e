import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isReleasable, releasable, release } from '../shared/released-buffers.js';
import { zstdCodec } from '../shared/archive/zstd-codec.js';
import { MANIFEST_FORMAT, parseManifest } from '../shared/archive/manifest.js';
import { digestTree } from '../shared/archive/tree-digest.js';

describe('released buffers', () => {
  it('frees a buffer marked releasable once, when its last consumer releases it', () => {
    const buffer = releasable(Buffer.alloc(256 * 1024, 7));
    expect(isReleasable(buffer)).toBe(true);
    release(buffer);
    expect(buffer.buffer.byteLength).toBe(0);
    expect(buffer.length).toBe(0);
    expect(isReleasable(buffer)).toBe(false);
    expect(() => release(buffer)).not.toThrow();
  });

  it('leaves alone what was not marked, views into a buffer, and small buffers that may share the pool', () => {
    const unmarked = Buffer.alloc(256 * 1024, 1);
    release(unmarked);
    expect(unmarked.length).toBe(256 * 1024);

    const whole = Buffer.alloc(512 * 1024, 2);
    const view = whole.subarray(1024);
    releasable(view);
    release(view);
    expect(whole.length).toBe(512 * 1024);
    expect(whole[0]).toBe(2);

    const pooled = Buffer.allocUnsafe(100).fill(3);
    const neighbour = Buffer.allocUnsafe(100).fill(4);
    releasable(pooled);
    release(pooled);
    expect(pooled.length).toBe(100);
    expect(neighbour.every((byte) => byte === 4)).toBe(true);
  });

  it('the codec gives frames of their own, which their consumer may free', async () => {
    const codec = zstdCodec();
    const data = Buffer.concat([randomBytes(256 * 1024), Buffer.from('{"role":"user"}\n'.repeat(20_000))]);
    const frame = await codec.compressFrame(data, 3);
    expect(isReleasable(frame)).toBe(true);
    const decoded = await codec.decodeWholeFrame(Buffer.from(frame), data.length);
    expect(decoded.equals(data)).toBe(true);
    expect(isReleasable(decoded)).toBe(true);
    release(frame);
    release(decoded);
    expect(frame.length).toBe(0);
    expect(decoded.length).toBe(0);
  });

  it("a restore's version 1 manifest bytes are freed once read as text, before its JSON is parsed whole (they were part of the restore's peak)", () => {
    const entries = Array.from({ length: 2_000 }, (_, i) => ({ path: `d/${String(i).padStart(5, '0')}`, type: 'directory' as const, mode: 0o755, mtimeMs: 1_733_000_000_000 }));
    const manifest = {
      format: MANIFEST_FORMAT,
      formatVersion: 1,
      tenant: 'acme',
      createdAt: '2026-12-05T20:31:45.453Z',
      tool: { name: 'openclaw', version: '0.0.9' },
      totals: { files: 0, directories: 2_000, symlinks: 0, bytes: 0 },
      entries,
      skipped: [],
      warnings: [],
    };
    const directories = digestTree(entries);
    const stored = () => Buffer.from(JSON.stringify(manifest));
    const kept = stored();
    expect(kept.length).toBeGreaterThan(128 * 1024);
    expect(parseManifest(kept).directories).toEqual(directories);
    expect(kept.length).toBeGreaterThan(128 * 1024);
    const consumed = stored();
    expect(parseManifest(consumed, { consume: true }).directories).toEqual(directories);
    expect(consumed.length).toBe(0);
    // A view of a larger buffer: freeing it would detach the rest of that buffer too.
    const shared = Buffer.concat([stored(), Buffer.from('other data')]);
    const view = shared.subarray(0, shared.length - 'other data'.length);
    expect(parseManifest(view, { consume: true }).directories).toEqual(directories);
    expect(shared.subarray(view.length).toString()).toBe('other data');
  });
});
