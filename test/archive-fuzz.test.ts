// A short, deterministic run of the archive fuzzer (test/fuzz/archive-fuzz.ts, `npm run fuzz`):
// the same seed gives the same mutations at every level (compressed bytes, tar re-compressed,
// the age layer), and none of them may break the oracle (an untyped error, a hang, a write
// outside the slot, a tenant from an archive verify refused, a --force target damaged, a CLI
// exit outside 0-3 or a stack on stderr); and the zstd decoder alone, every frame streamed
// (fzstd on Node 20) and decoded whole.

import { spawnSync } from 'node:child_process';
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

it('refuses a mistyped flag or value of npm run fuzz in one line, exit 2 (before: the defaults, or 0 mutants and exit 0)', () => {
  const script = path.join(import.meta.dirname, 'fuzz', 'archive-fuzz.ts');
  for (const [args, problem] of [
    [['--seconds', 'abc'], '--seconds "abc": give a whole number from 1'],
    [['--second', '600'], 'unknown argument "--second"'],
    [['--seed'], '--seed needs a value'],
    [['--cli-every', '0'], '--cli-every "0": give a whole number from 1'],
  ] as const) {
    const run = spawnSync(process.execPath, ['--import', 'tsx', script, ...args], { encoding: 'utf8', env: { ...process.env, TSX_DISABLE_CACHE: '1' } });
    expect(run.status, args.join(' ')).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(`archive-fuzz: ${problem} (usage: npm run fuzz -- [--seconds N] [--seed N] [--cli-every N] [--decoder-seconds N] [--out DIR])\n`);
  }
}, 60_000);
