// The latency mount (bench/latencyfs.py) stands in for EFS in the lock attacks and the latency
// rows: it must never fail a call the source directory would not. A listing answered in several
// requests (a base dir of many tenants) gave its later entries the files their names held at
// the first: a name whose file had changed since (a tenant lock released and made again) was
// tied to the file gone, and the new one lost its name. Three CLIs racing for one tenant of
// 2,000 on a 5 ms mount then reported "200 times creating it said the name is taken and
// reading it said there is no such file" (5 of 24 commands) and "the tenant base dir does not
// exist" (1 of 24) for what were a busy tenant and an existing base dir.

import { spawn } from 'node:child_process';
import { closeSync, linkSync, mkdirSync, openSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { latencyUnavailable, mountLatency, type LatencyMount } from '../bench/latency-mount.js';
import { tempDir } from './helpers/tree.js';

const unavailable = latencyUnavailable();

describe.skipIf(unavailable !== undefined)('latency mount', () => {
  const dir = tempDir('openclaw-latency-mount-');
  let mount: LatencyMount;

  beforeAll(async () => {
    mkdirSync(path.join(dir.path, 'source'));
    // A base dir of many tenants: listed in several requests, each after the one before's delay.
    for (let i = 0; i < 500; i++) writeFileSync(path.join(dir.path, 'source', `t${i}`), '');
    mount = await mountLatency(path.join(dir.path, 'source'), path.join(dir.path, 'mnt'), { delayMs: 1, statsFile: path.join(dir.path, 'stats.json') });
  });

  afterAll(async () => {
    await mount?.unmount();
    dir.cleanup();
  });

  it('a file made, hard-linked under a second name and removed, 300 times over while another process lists the directory, never fails with ENOENT', async () => {
    // Another command's sweep: the listing's later requests came from stats made for the first.
    const lister = spawn('sh', ['-c', `while :; do ls -f ${mount.mountpoint} > /dev/null; done`], { stdio: 'ignore' });
    const temp = path.join(mount.mountpoint, '.lock.tmp');
    const lock = path.join(mount.mountpoint, '.lock');
    const failures: string[] = [];
    const step = (what: string, call: () => void) => {
      try {
        call();
      } catch (error) {
        failures.push(`${what}: ${(error as NodeJS.ErrnoException).code}`);
      }
    };
    const exited = new Promise((resolve) => lister.once('exit', resolve));
    try {
      for (let round = 0; round < 300; round++) {
        const fd = openSync(temp, 'wx', 0o600); // throws EEXIST after a round whose link or unlink left the name
        writeSync(fd, 'x');
        closeSync(fd);
        step('link', () => linkSync(temp, lock));
        step('unlink temporary', () => unlinkSync(temp));
        step('open', () => closeSync(openSync(lock, 'r')));
        step('unlink', () => unlinkSync(lock));
        if (round % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      // Never left listing in a loop, the mount busy for its unmount, when a round throws.
      lister.kill('SIGKILL');
      await exited;
    }
    expect(failures).toEqual([]);
  });
});
