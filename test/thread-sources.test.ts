// The reader threads of a backup (backup/reader-thread.ts) and the writer threads of a restore
// (restore/writer-thread.ts) run source text taken from a function at run time. That text
// must still work after the bundlers that ship it: the CLI's (tested through the CLI) and
// the Lambda functions' (esbuild with minify and keepNames, which wraps inner named
// functions in a helper of its own that the thread does not have). Built here with those
// settings, each thread does one real job.

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';

import { FD_LINKS } from '../shared/file-access.js';
import { repoRoot, tempDir } from './helpers/tree.js';

const dir = tempDir('thread-sources-');
afterAll(() => dir.cleanup());

interface Sources {
  readonly READER_THREAD_SOURCE: string;
  readonly WRITER_THREAD_SOURCE: string;
}

/** Both sources, from a bundle built as the functions' bundles are (infra/backup-functions.ts). */
async function bundledSources(): Promise<Sources> {
  const entry = path.join(dir.path, 'entry.ts');
  writeFileSync(
    entry,
    [
      `export { READER_THREAD_SOURCE } from ${JSON.stringify(path.join(repoRoot, 'shared/backup/reader-thread.ts'))};`,
      `export { WRITER_THREAD_SOURCE } from ${JSON.stringify(path.join(repoRoot, 'shared/restore/writer-thread.ts'))};`,
    ].join('\n'),
  );
  const outfile = path.join(dir.path, 'bundle.mjs');
  await build({ entryPoints: [entry], outfile, bundle: true, format: 'esm', platform: 'node', target: 'node20', minify: true, keepNames: true, logLevel: 'silent' });
  return (await import(pathToFileURL(outfile).href)) as Sources;
}

function once<T>(worker: Worker): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
}

describe('thread sources in a bundle built with minify and keepNames', () => {
  it('a reader thread reads files into its arena', async () => {
    const { READER_THREAD_SOURCE } = await bundledSources();
    // Real paths, as the walk hands them out: the thread checks each open against its path (fdLinks).
    const file = path.join(realpathSync(dir.path), 'read-me');
    writeFileSync(file, 'content');
    const second = path.join(realpathSync(dir.path), 'and-me');
    writeFileSync(second, 'more');
    const arena = new SharedArrayBuffer(1024);
    const meta = new SharedArrayBuffer(8 * 6 * 2);
    const digest = new SharedArrayBuffer(32 * 2);
    const state = new SharedArrayBuffer(4 * 3);
    const worker = new Worker(READER_THREAD_SOURCE, { eval: true, workerData: { arenas: [arena], metas: [meta], digests: [digest], state, maxFileBytes: 1024, fdLinks: FD_LINKS } });
    try {
      const reply = once<{ from: number; to: number; arena: number; readMs: number }>(worker);
      worker.postMessage({ request: 0, paths: `${file}\0${second}` });
      const part = await reply;
      expect(part).toEqual({ request: 0, from: 0, to: 2, arena: 0, readMs: expect.any(Number) });
      const records = new Float64Array(meta);
      expect([...records.subarray(0, 2)]).toEqual([1, 7]); // READ_WHOLE, 7 bytes
      expect(Buffer.from(arena, records[4], 7).toString()).toBe('content');
      expect([...records.subarray(6, 8)]).toEqual([1, 4]);
      expect(Buffer.from(arena, records[10], 4).toString()).toBe('more');
      expect(Buffer.from(digest, 0, 32).toString('hex')).toBe(createHash('sha256').update('content').digest('hex'));
      expect(Buffer.from(digest, 32, 32).toString('hex')).toBe(createHash('sha256').update('more').digest('hex'));
    } finally {
      await worker.terminate();
    }
  });

  it('a writer thread creates a file', async () => {
    const { WRITER_THREAD_SOURCE } = await bundledSources();
    const target = path.join(dir.path, 'written', 'file');
    mkdirSync(path.dirname(target));
    const bytes = new SharedArrayBuffer(5);
    new Uint8Array(bytes).set(Buffer.from('hello'));
    const worker = new Worker(WRITER_THREAD_SOURCE, { eval: true });
    try {
      const reply = once<{ batch: number; error?: unknown }>(worker);
      worker.postMessage({ batch: 0, ops: ['open', target, 0o640, 'write', 0, 5, 0, 'close', -1, 1_700_000_000, -1, -1], bytes });
      expect(await reply).toEqual({ batch: 0, error: undefined });
      expect(readFileSync(target, 'utf8')).toBe('hello');
    } finally {
      await worker.terminate();
    }
  });
});
