// A short, deterministic run of the archive fuzzer (test/fuzz/archive-fuzz.ts, `npm run fuzz`):
// the same seed gives the same mutants at every level (compressed bytes, tar re-compressed,
// the age layer), and none of them may break the oracle (an untyped error, a hang, a write
// outside the slot, a tenant from an archive verify refused, a --force target damaged, a CLI
// exit outside 0-3 or a stack on stderr).

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';

import { fuzz } from './fuzz/archive-fuzz.js';
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
