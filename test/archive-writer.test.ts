// What the archive writer puts in tar headers, checked with GNU tar as the reader, and the
// bytes of its file entries.

import { execFileSync } from 'node:child_process';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Hash } from 'node:crypto';
import { afterAll, describe, expect, it, vi } from 'vitest';

import { ArchiveWriter } from '../shared/archive/archive-writer.js';
import { copyBytes } from '../shared/archive/zstd-encoder.js';
import { assertManifestRestorable, MANIFEST_FORMAT, MANIFEST_FORMAT_VERSION, parseManifest, serializeManifest, type Manifest } from '../shared/archive/manifest.js';
import { manifestLimits } from '../shared/restore/limits.js';
import { encodeHeader, paddingAfter } from '../shared/archive/tar-format.js';
import { ArchiveLimitError } from '../shared/errors.js';
import { backupTenant } from '../shared/backup/backup.js';
import { LocalFileLocation } from '../shared/storage/local.js';
import { sh, tempDir } from './helpers/tree.js';

const dir = tempDir();
afterAll(() => dir.cleanup());

describe('tar headers', () => {
  it('truncates modification times to whole seconds as GNU tar does, even in the last half millisecond of a second', async () => {
    const tenant = path.join(dir.path, 'tenants', 'acme');
    mkdirSync(tenant, { recursive: true });
    writeFileSync(path.join(tenant, 'late.txt'), 'x');
    // 0.9996 s past the second: Node's stat.mtime Date rounds this up to the next second.
    utimesSync(path.join(tenant, 'late.txt'), 1_700_000_000.9996, 1_700_000_000.9996);
    const archive = path.join(dir.path, 'acme.tar.zst');
    await backupTenant({ tenantsDir: path.join(dir.path, 'tenants'), tenant: 'acme', location: new LocalFileLocation(archive) });
    const listing = sh(`zstd -dc '${archive}' | TZ=UTC tar -tv --full-time -f - tenants/acme/late.txt`).toString();
    expect(listing).toContain('2023-11-14 22:13:20 tenants/acme/late.txt');
  });
});

describe('file entries', () => {
  it('are the header, content and padding encodeHeader gives, whether written straight into a frame or across frames', async () => {
    // Frames of 4 KiB: some entries fit the frame being filled, others cross into the next.
    const writer = new ArchiveWriter('acme', { frameSize: 4096, concurrency: 2 });
    const files = [0, 1, 100, 511, 512, 513, 3000, 4095, 4096, 5000, 7, 9000, 2].flatMap((size, i) => [
      { relPath: `notes/f${i}.md`, size },
      { relPath: `ünïcødé/${i}.txt`, size: size + 1 },
      { relPath: `${'long/'.repeat(30)}${i}`, size: size + 2 },
      // Names of 100 bytes (the name field's size) and 101 with the `tenants/acme/` before them.
      { relPath: `${String(i).padStart(2, '0')}${'n'.repeat(85)}`, size },
      { relPath: `${String(i).padStart(2, '0')}${'n'.repeat(86)}`, size },
    ]);
    const collected: Buffer[] = [];
    const reading = (async () => {
      for await (const chunk of writer.chunks()) collected.push(chunk);
    })();
    const expected: Buffer[] = [];
    for (const [i, { relPath, size }] of files.entries()) {
      const content = Buffer.alloc(size, 0x41 + (i % 26));
      const mode = 0o600 + (i % 8);
      const mtimeMs = 1_700_000_000_000 + i * 1001;
      const written = writer.file({ relPath, mode, mtimeMs }, content);
      if (written !== undefined) await written;
      expected.push(encodeHeader({ name: `tenants/acme/${relPath}`, type: 'file', mode, mtime: Math.floor(mtimeMs / 1000), size }), content, Buffer.alloc(paddingAfter(size)));
    }
    // The full frames, compressed, then the unfinished one's input.
    const { pendingFrame } = writer.suspend();
    await reading;
    const tar = Buffer.concat([execFileSync('zstd', ['-dc'], { input: Buffer.concat(collected) }), pendingFrame]);
    expect(tar.equals(Buffer.concat(expected))).toBe(true);
  });
  it('hold the bytes of content read into a shared arena (a reader thread\'s), small and large, in a frame or across frames', async () => {
    // Files packed side by side in one SharedArrayBuffer, as read-ahead.ts's arenas hold them:
    // at least 4 KiB they are copied by Buffer's fill (one memcpy), below it by TypedArray's set.
    const sizes = [1, 4095, 4096, 4097, 20_000, 100, 70_000, 3, 16_384, 9000, 0, 65_536];
    const arena = Buffer.from(new SharedArrayBuffer(sizes.reduce((sum, size) => sum + size, 0)));
    for (let i = 0; i < arena.length; i++) arena[i] = (i * 131 + (i >>> 9)) & 0xff;
    const writer = new ArchiveWriter('acme', { frameSize: 16 * 1024, concurrency: 2 });
    const collected: Buffer[] = [];
    const reading = (async () => {
      for await (const chunk of writer.chunks()) collected.push(chunk);
    })();
    const expected: Buffer[] = [];
    let offset = 0;
    for (const [i, size] of sizes.entries()) {
      const content = arena.subarray(offset, offset + size);
      offset += size;
      const relPath = `arena/f${i}`;
      const written = writer.file({ relPath, mode: 0o600, mtimeMs: 1_700_000_000_000 }, content);
      if (written !== undefined) await written;
      expected.push(encodeHeader({ name: `tenants/acme/${relPath}`, type: 'file', mode: 0o600, mtime: 1_700_000_000, size }), Buffer.from(content), Buffer.alloc(paddingAfter(size)));
    }
    const { pendingFrame } = writer.suspend();
    await reading;
    const tar = Buffer.concat([execFileSync('zstd', ['-dc'], { input: Buffer.concat(collected) }), pendingFrame]);
    expect(tar.equals(Buffer.concat(expected))).toBe(true);
  });
});

describe('copyBytes', () => {
  it('copies as TypedArray set does: into shared memory, out of it, and within one buffer where source and target overlap', () => {
    const pattern = Buffer.from(Array.from({ length: 20_000 }, (_, i) => (i * 37 + (i >>> 8)) & 0xff));
    for (const size of [0, 1, 4095, 4096, 10_000]) {
      const shared = Buffer.from(new SharedArrayBuffer(20_000));
      copyBytes(shared, 7, pattern.subarray(0, size));
      expect(shared.subarray(7, 7 + size).equals(pattern.subarray(0, size))).toBe(true);
      const plain = Buffer.alloc(20_000);
      copyBytes(plain, 3, shared.subarray(7, 7 + size));
      expect(plain.subarray(3, 3 + size).equals(pattern.subarray(0, size))).toBe(true);
      expect(plain[2]).toBe(0);
      expect(plain[3 + size]).toBe(0);
      const overlapping = Buffer.from(pattern);
      const expected = Buffer.from(pattern);
      expected.set(Buffer.from(pattern.subarray(100, 100 + size)), 1000);
      copyBytes(overlapping, 1000, overlapping.subarray(100, 100 + size));
      expect(overlapping.equals(expected)).toBe(true);
    }
  });
});

describe('a streamed file that comes up short', () => {
  // The header promised its size: the rest is zeros, hashed and written. Hashed all at once
  // before any was written, 4 GiB of a file cut to nothing while read held the thread 5 s:
  // a Lambda's deadline timer fired that late, and the backup's stop with it.
  it('is padded a chunk at a time, letting a timer run before much of it is done', async () => {
    const size = 256 * 1024 * 1024;
    const writer = new ArchiveWriter('acme', { frameSize: 2 * 1024 * 1024, concurrency: 2 });
    let hashed = 0;
    const update = Hash.prototype.update;
    const counting = vi.spyOn(Hash.prototype, 'update').mockImplementation(function (this: Hash, data: string | NodeJS.ArrayBufferView) {
      hashed += typeof data === 'string' ? data.length : data.byteLength;
      return Reflect.apply(update, this, [data]) as Hash;
    });
    let hashedWhenShort = 0;
    let hashedWhenTimerRan = 0;
    const stopped = new Error('stopped');
    const drained = (async () => {
      for await (const chunk of writer.chunks()) void chunk;
    })();
    try {
      const streamed = writer.streamFile({ relPath: 'big.bin', mode: 0o644, mtimeMs: 0 }, size, () => {
        // Cut to nothing: the first read finds the end.
        hashedWhenShort = hashed;
        setImmediate(() => {
          hashedWhenTimerRan = hashed;
          writer.abort(stopped);
        });
        return 0;
      });
      await Promise.all([expect(streamed).rejects.toBe(stopped), expect(drained).rejects.toBe(stopped)]);
    } finally {
      counting.mockRestore();
    }
    // A few frames' worth, not the 256 MiB.
    expect(hashedWhenTimerRan - hashedWhenShort).toBeLessThan(16 * 1024 * 1024);
  });
});

describe('the manifest', () => {
  /** A manifest of `count` directories as a backup of empty directories p000/e0000… writes it. */
  function manifestOf(count: number): Manifest {
    const directories = Array.from({ length: count }, (_, i) => ({
      path: `p${String(Math.floor(i / 1000)).padStart(3, '0')}/e${String(i % 1000).padStart(4, '0')}`,
      entries: 0,
      sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    }));
    return {
      format: MANIFEST_FORMAT,
      formatVersion: MANIFEST_FORMAT_VERSION,
      tenant: 'acme',
      createdAt: '2026-12-06T10:00:00.000Z',
      tool: { name: 'openclaw', version: '0.1.0' },
      totals: { files: 0, directories: count, symlinks: 0, bytes: 0 },
      directories,
      skipped: [],
      warnings: [],
    };
  }

  it('of a tenant of 200,000 directories (22 MB) is one a restore reads', () => {
    const bytes = serializeManifest(manifestOf(200_000));
    expect(bytes.length).toBeGreaterThan(20 * 1024 * 1024);
    expect(parseManifest(bytes).directories).toHaveLength(200_000);
  });

  it("is JSON.stringify's bytes, its directories turned into text a piece at a time", () => {
    const odd = ['', 'caf\udce9', '\u{1F600}"\\\n', '"directories":[]', 'a\u2028b'];
    const manifest = manifestOf(5_000);
    const directories = [...manifest.directories].map((directory, i) => ({ ...directory, path: `${directory.path}${odd[i % odd.length]}` }));
    const notes = [{ path: '"directories":[]', reason: 'x"directories":[]' }];
    for (const count of [0, 1, 2_047, 2_048, 2_049, 4_096, 5_000]) {
      const oddManifest = { ...manifest, directories: directories.slice(0, count), skipped: notes, warnings: notes };
      expect(serializeManifest(oddManifest).equals(Buffer.from(JSON.stringify(oddManifest), 'utf8'))).toBe(true);
    }
  });

  it('of 300,000 directories (past the default 262,144) is stored, with the least --max-entries that reads it', async () => {
    const writer = new ArchiveWriter('acme');
    const draining = (async () => {
      for await (const chunk of writer.chunks()) void chunk;
    })();
    const manifest = manifestOf(300_000);
    await writer.finish(manifest);
    await draining;
    const bytes = serializeManifest(manifest);
    // 300,000 directories and the manifest's own 6 objects and arrays: 300,006 of the default 262,144.
    expect(writer.manifestEntriesToRead).toBe(2_288_865);
    expect(() => parseManifest(bytes)).toThrow(/holds more than 262144 objects .* \(raise --max-entries to 2288865 or more if it is genuine\)$/);
    expect(() => parseManifest(bytes, { limits: manifestLimits(2_288_864) })).toThrow(ArchiveLimitError);
    expect(parseManifest(bytes, { limits: manifestLimits(2_288_865) }).directories).toHaveLength(300_000);
  });

  it('within the defaults needs no --max-entries named', async () => {
    const writer = new ArchiveWriter('acme');
    const draining = (async () => {
      for await (const chunk of writer.chunks()) void chunk;
    })();
    await writer.finish(manifestOf(1_000));
    await draining;
    expect(writer.manifestEntriesToRead).toBeUndefined();
  });

  it('past what any --max-entries reads fails the backup instead of ending an archive no restore could read', () => {
    // 2^22 + 1 objects, as a manifest of 4,194,304 directories has with its own.
    const objects = Buffer.from(`{"directories":[${'{},'.repeat(4 * 1024 * 1024 - 1)}{}]}`);
    expect(() => assertManifestRestorable(objects, 4 * 1024 * 1024)).toThrow(
      /manifest \(4,194,304 directories, 12\.0 MiB\) is past what any restore reads \(511\.0 MiB, 4,194,304 directories and notes, with any --max-entries\): no restore could read the archive, so it is not stored/,
    );
    expect(() => assertManifestRestorable(objects, 4 * 1024 * 1024)).toThrow(ArchiveLimitError);
  });

  it('stores a manifest of more than 2^21 directories, naming the --max-entries that reads it', () => {
    // 2^21 + 2 objects and arrays had been past any (the duplicate check's 21-bit index): over ~2,097,000 directories no backup was stored.
    const objects = Buffer.from(`{"directories":[${'{},'.repeat(2 * 1024 * 1024 - 1)}{}]}`);
    expect(assertManifestRestorable(objects, 2 * 1024 * 1024)).toBe(16_000_016);
  });
});
