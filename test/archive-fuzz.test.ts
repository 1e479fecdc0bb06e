// A short, deterministic run of the archive fuzzer (test/fuzz/archive-fuzz.ts, `npm run fuzz`):
// the same seed gives the same mutations at every level (compressed bytes, tar re-compressed,
// the age layer), and none of them may break the oracle (an untyped error, a hang, a write
// outside the slot, a tenant from an archive verify refused, a --force target damaged, a CLI
// exit outside 0-3 or a stack on stderr); and the zstd decoder alone, every frame streamed
// (fzstd on Node 20) and decoded whole.

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';

import { fuzz, fuzzDecoder, layout, makeSeeds } from './fuzz/archive-fuzz.js';
import { tempDir } from './helpers/tree.js';

const dir = tempDir('openclaw-fuzz-smoke-');
afterAll(() => dir.cleanup());

it('finds nothing in 40 mutants of a fixed seed, every level tried, through the core and the CLI', async () => {
  const work = path.join(dir.path, 'work');
  mkdirSync(work);
  const lines: string[] = [];
  const { tried, failures } = await fuzz({ seconds: 3600, maxMutants: 40, seed: 20261206, cliEvery: 40, out: path.join(dir.path, 'failures'), work, log: (line) => lines.push(line) });
  expect(failures.map((failure) => `${failure.level} [${failure.what}] ${failure.problem}`)).toEqual([]);
  expect(tried.zstd).toBeGreaterThan(4);
  expect(tried.tar).toBeGreaterThan(4);
  expect(tried.age).toBeGreaterThan(4);
}, 120_000);

it('finds nothing in 150 mutants of zstd CLI output through the decoder alone, streamed and whole', async () => {
  const work = path.join(dir.path, 'decoder');
  mkdirSync(work);
  const seeds = await makeSeeds(work);
  const { tried, failures } = await fuzzDecoder({ seconds: 3600, maxMutants: 150, seed: 20261206, tar: layout(seeds.plain).tar, out: path.join(dir.path, 'failures'), log: () => undefined });
  expect(failures.map((failure) => `[${failure.what}] ${failure.problem}`)).toEqual([]);
  expect(tried).toBe(150);
}, 120_000);
