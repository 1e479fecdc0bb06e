// Files the backup reads through a handle (a name of a hard-linked file, every file over the
// read-ahead's limit on a network file system, each database's header) land in the one scratch
// buffer the reads by path use, not in a buffer made per file: memory touched for the first
// time costs a page fault per 4 KiB (docs/benchmarks.md, stop 39). The buffer is reused, so
// no file may ever carry another's bytes: files of falling and rising sizes, each of its own
// bytes, come back out of the archive (GNU tar) exactly.

import { spawn } from 'node:child_process';
import { linkSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';

import { createTenantArchive } from '../shared/backup/tenant-archive.js';
import { PARALLEL_ACCESS, SYNC_ACCESS, type FileAccess } from '../shared/file-access.js';
import { openDatabase, readDatabase, transaction } from './helpers/sqlite.js';
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

// Under concurrency: while the backup runs, another process rewrites some files (truncate,
// then write, at sizes that fall and rise, so a read comes up short or long), and this process
// commits to a database between the backup's turns. Every file is one byte value of its own
// (a rewritten one) or random bytes checked exactly (the rest): a byte of another file, or of
// a longer file read before into the same scratch, shows up in GNU tar's extraction.

/** Stable files: tiny to 4 MiB, odd, falling and rising; every third one has a second name. */
const MIXED_SIZES = [17, 2_000_007, 123, 700_001, 5, 300_003, 1_500_011, 65_537, 999, 262_147, 1_048_583, 31, 131_071, 0];
/** The sizes a rewritten file takes in turn. */
const REWRITE_SIZES = [1_500_001, 7, 700_007, 50_003, 300_011];
/** How many files the other process keeps rewriting; file k holds only the byte REWRITTEN_BYTE + k. */
const REWRITTEN = 5;
const REWRITTEN_BYTE = 200;

/** The other process: rewrites the files given until its stdin closes. */
const REWRITER = `
const fs = require('node:fs');
const [sizes, byte, ...files] = JSON.parse(process.argv[1]);
const contents = files.map((_, k) => sizes.map((size) => Buffer.alloc(size, byte + k)));
let turn = 0, done = false;
process.stdin.on('end', () => { done = true; });
process.stdin.resume();
const step = () => {
  if (done) return process.exit(0);
  for (const end = turn + 20; turn < end; turn++) files.forEach((file, k) => fs.writeFileSync(file, contents[k][(turn + k) % sizes.length]));
  setImmediate(step);
};
process.stdout.write('ready\\n');
step();
`;

describe('reads into the backup scratch buffer under concurrent writers', () => {
  const dir = tempDir();
  afterAll(() => dir.cleanup());

  for (const [name, access] of [
    ['local disk', SYNC_ACCESS],
    ['network file system', PARALLEL_ACCESS],
  ] as [string, FileAccess][]) {
    it(`${name}: no file carries another's bytes, a database changing meanwhile comes out whole`, async () => {
      const tenantDir = path.join(dir.path, `busy-${name.replace(/\W+/g, '-')}`, 'acme');
      mkdirSync(path.join(tenantDir, 'live'), { recursive: true });
      const stable = new Map<string, Buffer>();
      MIXED_SIZES.forEach((size, i) => {
        const content = randomBytes(size);
        writeFileSync(path.join(tenantDir, `s${i}`), content);
        stable.set(`s${i}`, content);
        if (i % 3 === 0) {
          linkSync(path.join(tenantDir, `s${i}`), path.join(tenantDir, `t${i}`));
          stable.set(`t${i}`, content);
        }
      });
      // Streamed, not spooled (modified an hour ago): its first MiB is read into the scratch.
      const streamed = randomBytes(STREAMED);
      writeFileSync(path.join(tenantDir, 'streamed'), streamed);
      const anHourAgo = new Date(Date.now() - 3_600_000);
      utimesSync(path.join(tenantDir, 'streamed'), anHourAgo, anHourAgo);
      stable.set('streamed', streamed);
      const rewritten = Array.from({ length: REWRITTEN }, (_, k) => path.join(tenantDir, 'live', `r${k}`));
      // Each with a second name outside the tenant: on a local disk too it is read through a handle, into the scratch.
      const outside = path.join(path.dirname(tenantDir), 'links');
      mkdirSync(outside);
      rewritten.forEach((file, k) => {
        writeFileSync(file, Buffer.alloc(REWRITE_SIZES[k % REWRITE_SIZES.length]!, REWRITTEN_BYTE + k));
        linkSync(file, path.join(outside, `r${k}`));
      });
      // A database between odd-sized files: its header is read into the scratch first.
      const db = openDatabase(path.join(tenantDir, 'm.sqlite'));
      db.exec('CREATE TABLE rows (n INTEGER PRIMARY KEY, body BLOB)');
      const insert = db.prepare('INSERT INTO rows (n, body) VALUES (?, randomblob(700))');
      let committed = 0;
      transaction(db, () => {
        for (; committed < 500; committed++) insert.run(committed + 1);
      });

      const rewriter = spawn(process.execPath, ['-e', REWRITER, JSON.stringify([REWRITE_SIZES, REWRITTEN_BYTE, ...rewritten])], { stdio: ['pipe', 'pipe', 'inherit'] });
      const exited = new Promise((resolve) => rewriter.on('exit', resolve));
      await new Promise((resolve) => rewriter.stdout.once('data', resolve));
      const committing = setInterval(() => {
        try {
          transaction(db, () => insert.run(committed + 1));
          committed++;
        } catch (error) {
          // The backup's read of it holds its lock: commit on the next turn.
          if ((error as { code?: string }).code !== 'SQLITE_BUSY') throw error;
        }
      }, 1);
      let summary;
      const chunks: Buffer[] = [];
      try {
        const run = createTenantArchive({ tenantDir, tenant: 'acme', createdAt: new Date('2026-05-01T00:00:00Z'), fileAccess: access, sqlite: { rawFallback: false } });
        for await (const chunk of run.chunks) chunks.push(chunk);
        summary = await run.summary;
      } finally {
        clearInterval(committing);
        rewriter.stdin.end();
        await exited;
        db.close();
      }
      expect('manifest' in summary).toBe(true);

      const archive = path.join(path.dirname(tenantDir), 'acme.tar.zst');
      writeFileSync(archive, Buffer.concat(chunks));
      const out = path.join(path.dirname(tenantDir), 'out');
      mkdirSync(out);
      sh(`zstd -dc '${archive}' | tar -xf - -C '${out}'`);
      const restored = path.join(out, 'tenants', 'acme');
      for (const [file, content] of stable) expect(readFileSync(path.join(restored, file)).equals(content), file).toBe(true);
      rewritten.forEach((_, k) => {
        const content = readFileSync(path.join(restored, 'live', `r${k}`));
        expect(content.length, `r${k}`).toBeLessThanOrEqual(Math.max(...REWRITE_SIZES));
        const foreign = content.findIndex((byte) => byte !== REWRITTEN_BYTE + k);
        expect(foreign, `r${k}: a byte not its own at ${foreign}`).toBe(-1);
      });
      const { integrity, values } = readDatabase(path.join(restored, 'm.sqlite'), 'SELECT count(*) FROM rows', 'SELECT max(n) FROM rows');
      expect(integrity).toBe('ok');
      // One committed state: rows 1..n, none missing.
      expect(values[0]).toBe(values[1]);
      expect(values[0] as number).toBeGreaterThanOrEqual(500);
    });
  }
});
