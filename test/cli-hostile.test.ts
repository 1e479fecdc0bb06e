// Hostile and damaged archives as an operator meets them, through the built `openclaw`
// command: a `tar | zstd` archive too large to decode whole with one flipped byte, a small
// archive that decodes to a huge file and is interrupted with SIGTERM, notes with terminal
// escapes in a backup's manifest. Each checks the exit code, the one-line error and that the
// base dir holds exactly what it held before.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { TarBuilder } from './helpers/tar-builder.js';
import { describeTree, runCli, runCliAsync, sh, tempDir } from './helpers/tree.js';
import { zerosArchive } from './helpers/zstd.js';

const dir = tempDir('cli-hostile-');
const base = path.join(dir.path, 'tenants');
const MiB = 1024 * 1024;

beforeAll(() => {
  mkdirSync(path.join(base, 'acme', 'sub'), { recursive: true });
  writeFileSync(path.join(base, 'acme', 'sub', 'keep.txt'), 'the tenant a damaged archive must not replace\n');
});
afterAll(() => dir.cleanup());

function expectOneLineError(run: { status: number | null; stderr: string }, status: number, pattern: RegExp): void {
  expect(run.status).toBe(status);
  expect(run.stderr).toMatch(pattern);
  expect(run.stderr.trim().split('\n')).toHaveLength(1);
}

describe('a tar | zstd archive of one 40 MiB frame (too large to decode whole: streamed)', () => {
  const random = randomBytes(512 * 1024); // stored in raw blocks: a flipped byte still decodes
  let good = '';
  let flipped = '';

  beforeAll(() => {
    const source = path.join(dir.path, 'src', 'tenants', 'acme');
    mkdirSync(source, { recursive: true });
    writeFileSync(path.join(source, 'zeros.bin'), '');
    truncateSync(path.join(source, 'zeros.bin'), 40 * MiB); // compresses to almost nothing
    writeFileSync(path.join(source, 'random.bin'), random);
    good = path.join(dir.path, 'good.tar.zst');
    sh(`tar -cf - -C '${path.join(dir.path, 'src')}' tenants/acme | zstd -q -c > '${good}'`);
    const bytes = readFileSync(good);
    expect(bytes.readUInt32LE(0)).toBe(0xfd2fb528);
    expect(bytes[4]! & 0x04).toBe(0x04); // the frame carries a content checksum
    const at = bytes.indexOf(random.subarray(300 * 1024, 300 * 1024 + 64));
    expect(at).toBeGreaterThan(0);
    bytes[at + 7]! ^= 0x10;
    flipped = path.join(dir.path, 'flipped.tar.zst');
    writeFileSync(flipped, bytes);
  });

  it('is one frame, and zstd -t finds the flipped byte', () => {
    expect(spawnSync('zstd', ['-t', '-q', good]).status).toBe(0);
    expect(spawnSync('zstd', ['-t', '-q', flipped]).status).not.toBe(0);
  });

  it('restores intact, unverified per file (no manifest)', () => {
    const run = runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', good, '--as', 'copy']);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/NOT verified per file/);
    expect(readFileSync(path.join(base, 'copy', 'random.bin')).equals(random)).toBe(true);
    expect(statSync(path.join(base, 'copy', 'zeros.bin')).size).toBe(40 * MiB);
    sh(`rm -rf '${path.join(base, 'copy')}'`);
  });

  it('is refused with one flipped byte, and --force leaves the tenant it would replace untouched', () => {
    const before = describeTree(base, { mtimes: false });
    const run = runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', flipped, '--force']);
    expectOneLineError(run, 3, /^openclaw: .*: corrupt zstd frame at byte 0 .*content checksum mismatch/);
    expect(run.stderr.startsWith(`openclaw: ${flipped}: `)).toBe(true);
    expect(describeTree(base, { mtimes: false })).toEqual(before);
  });
});

describe('interrupted', () => {
  it('by SIGTERM, a restore that decodes a small archive to a 16 GiB file stops writing, cleans up and exits 143', async () => {
    const archive = path.join(dir.path, 'zeros.tar.zst');
    const size = 16n * 1024n * 1024n * 1024n;
    writeFileSync(archive, zerosArchive('acme', size, 0x01)); // not zeros: those would be left unwritten, a hole
    expect(statSync(archive).size).toBeLessThan(1 * MiB); // under the 2 MiB read-ahead: one read
    const before = describeTree(base, { mtimes: false });

    const child = runCliAsync(['--tenants-dir', base, 'tenants', 'restore', '--from', archive, '--as', 'zeros']);
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let running = true;
    void exited.then(() => (running = false));

    const staged = (): string | undefined => {
      for (const name of readdirSync(base)) {
        const file = path.join(base, name, 'zeros.bin');
        if (name.startsWith('.openclaw-staging-zeros-') && existsSync(file)) return file;
      }
      return undefined;
    };
    let file: string | undefined;
    while (running && (file = staged()) === undefined) await sleep(10);
    expect(file, `the restore ended before writing: ${stderr}`).toBeDefined();
    while (running && statSync(file!, { throwIfNoEntry: false })?.size === 0) await sleep(10);
    child.kill('SIGTERM');

    // Had the signal been checked only once per read of the input (one read here), the file
    // would have grown to its full 16 GiB before the restore noticed.
    let largest = 0;
    while (running) {
      largest = Math.max(largest, statSync(file!, { throwIfNoEntry: false })?.size ?? 0);
      await sleep(5);
    }
    expect(await exited).toBe(143);
    expect(stderr).toBe('openclaw: interrupted by SIGTERM\n');
    expect(largest).toBeLessThan(Number(size));
    expect(describeTree(base, { mtimes: false })).toEqual(before);
  }, 60_000);
});

describe('a backup note that holds terminal escapes', () => {
  it('is printed escaped in the summary, and as it is in the JSON result', () => {
    const nasty = 'sock\u001b]0;owned\u0007\u001b[2J\u202e';
    const archive = path.join(dir.path, 'notes.tar.zst');
    const tar = new TarBuilder()
      .dir('tenants/noted/')
      .file('tenants/noted/f', 'x')
      .manifest('noted', (m) => ({ ...m, warnings: [{ path: nasty, reason: 'changed while read\u001b[31m' }] }))
      .build();
    writeFileSync(archive, sh('zstd -q -c', { input: tar }));
    const run = runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive]);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('backup warning: sock\\u001b]0;owned\\u0007\\u001b[2J\\u202e: changed while read\\u001b[31m\n');
    expect(run.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u202e]/);
    const json = runCli(['--tenants-dir', base, '--json', 'tenants', 'restore', '--from', archive, '--as', 'noted-json']);
    expect(JSON.parse(json.stdout).warnings).toEqual([{ path: nasty, reason: 'changed while read\u001b[31m' }]);
    sh(`rm -rf '${path.join(base, 'noted')}' '${path.join(base, 'noted-json')}'`);
  });
});
