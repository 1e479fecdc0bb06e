// Files the backup reads through a handle (a name of a hard-linked file, every file over the
// read-ahead's limit on a network file system, each database's header) land in the one scratch
// buffer the reads by path use, not in a buffer made per file: memory touched for the first
// time costs a page fault per 4 KiB (docs/benchmarks.md, stop 39). The buffer is reused, so
// no file may ever carry another's bytes: files of falling and rising sizes, each of its own
// bytes, come back out of the archive (GNU tar) exactly.

import { linkSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';

import { createTenantArchive } from '../shared/backup/tenant-archive.js';
import { PARALLEL_ACCESS, SYNC_ACCESS, type FileAccess } from '../shared/file-access.js';
import { sh, tempDir } from './helpers/tree.js';

/** Over the promise reader's 256 KiB, under the 8 MiB whole-read limit; odd, so no other buffer has their size. Falling, then rising. */
const SIZES = [2_000_007, 700_001, 300_003, 1_500_011];
/** Over the whole-read limit: streamed, its first MiB read through the scratch. */
const STREAMED = 8 * 1024 * 1024 + 4099;

describe('reads through a handle reuse the backup scratch buffer', () => {
  const dir = tempDir();
  afterAll(() => dir.cleanup());
  afterEach(() => vi.restoreAllMocks());

  for (const [name, access] of [
    ['local disk (hard-linked names)', SYNC_ACCESS],
    ['network file system', PARALLEL_ACCESS],
  ] as [string, FileAccess][]) {
    it(`${name}: no buffer per file, and every file archived with its own bytes`, async () => {
      const tenantDir = path.join(dir.path, name.replace(/\W+/g, '-'), 'acme');
      mkdirSync(tenantDir, { recursive: true });
      const contents = new Map<string, Buffer>();
      [...SIZES, STREAMED].forEach((size, i) => {
        const content = randomBytes(size);
        writeFileSync(path.join(tenantDir, `f${i}`), content);
        // A second name: on a local disk the read-ahead leaves the file to a read through a handle.
        linkSync(path.join(tenantDir, `f${i}`), path.join(tenantDir, `g${i}`));
        contents.set(`f${i}`, content);
      });
      const allocations: number[] = [];
      const allocUnsafe = Buffer.allocUnsafe.bind(Buffer);
      vi.spyOn(Buffer, 'allocUnsafe').mockImplementation((size: number) => {
        allocations.push(size);
        return allocUnsafe(size);
      });

      const run = createTenantArchive({ tenantDir, tenant: 'acme', createdAt: new Date('2026-05-01T00:00:00Z'), fileAccess: access });
      const chunks: Buffer[] = [];
      for await (const chunk of run.chunks) chunks.push(chunk);
      await run.summary;
      vi.restoreAllMocks();

      expect(allocations.filter((size) => SIZES.includes(size))).toEqual([]);
      const archive = path.join(path.dirname(tenantDir), 'acme.tar.zst');
      writeFileSync(archive, Buffer.concat(chunks));
      const out = path.join(path.dirname(tenantDir), 'out');
      mkdirSync(out);
      sh(`zstd -dc '${archive}' | tar -xf - -C '${out}'`);
      for (const [file, content] of contents) {
        expect(readFileSync(path.join(out, 'tenants', 'acme', file)).equals(content), file).toBe(true);
        expect(readFileSync(path.join(out, 'tenants', 'acme', file.replace('f', 'g'))).equals(content), file).toBe(true);
      }
    });
  }
});
