// bin/openclaw.js is both a shell script (run as the `openclaw` command) and an ES module
// (run as `node bin/openclaw.js`). As a command it must start Node with the settings that
// bound a large backup's memory; either way it must run the same CLI.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { THREAD_POOL_SIZE } from '../shared/file-access.js';
import { cliPath } from './helpers/tree.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'launcher-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A preload that reports how Node was started, before the CLI runs. */
const reporter = path.join(dir, 'report.cjs');
writeFileSync(
  reporter,
  `process.stderr.write('STARTED ' + JSON.stringify({ execArgv: process.execArgv, arenas: process.env.MALLOC_ARENA_MAX, mmapThreshold: process.env.MALLOC_MMAP_THRESHOLD_, trimThreshold: process.env.MALLOC_TRIM_THRESHOLD_, pool: process.env.UV_THREADPOOL_SIZE }) + '\\n');\n`,
);

/** A preload that reports the shell variables the launcher once set in the user's environment. */
const envReporter = path.join(dir, 'env.cjs');
writeFileSync(envReporter, `process.stderr.write('ENV ' + JSON.stringify({ a: process.env.a, y: process.env.y, p: process.env.p, n: process.env.n, h: process.env.h, k: process.env.k, v: process.env.v }) + '\\n');\n`);

interface Started {
  readonly execArgv: string[];
  readonly arenas?: string;
  readonly mmapThreshold?: string;
  readonly trimThreshold?: string;
  /** UV_THREADPOOL_SIZE as Node found it (libuv reads it when its pool starts). */
  readonly pool?: string;
  readonly stdout: string;
}

/** Runs `command args`, with this test's Node first on PATH, and reports how Node was started. */
function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Started {
  const { stdout, stderr, status } = spawnSync(command, args, {
    env: {
      ...process.env,
      PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}`,
      NODE_OPTIONS: `--require ${reporter}`,
      ...env,
    },
    encoding: 'utf8',
  });
  expect(status, stderr).toBe(0);
  const report = stderr.split('\n').find((line) => line.startsWith('STARTED '));
  if (report === undefined) throw new Error(`Node did not report its start: ${stderr}`);
  return { ...(JSON.parse(report.slice('STARTED '.length)) as Omit<Started, 'stdout'>), stdout };
}

describe('bin/openclaw.js', () => {
  it('run as a command, starts Node with a 4 MiB young generation and two malloc arenas', () => {
    const started = run(cliPath, ['--version'], { MALLOC_ARENA_MAX: '' });
    expect(started.execArgv).toEqual(['--max-semi-space-size=4']);
    expect(started.arenas).toBe('2');
    expect(started.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('starts a restore with a 2 MiB young generation (its peak is the tree it holds, not garbage), anything else with 4', () => {
    expect(run(cliPath, ['tenants', 'restore', '--help']).execArgv).toEqual(['--max-semi-space-size=2']);
    expect(run(cliPath, ['--tenants-dir', dir, 'tenants', 'restore', '--from', 'x.tar.zst', '--help']).execArgv).toEqual(['--max-semi-space-size=2']);
    expect(run(cliPath, ['tenants', 'backup', '--help']).execArgv).toEqual(['--max-semi-space-size=4']);
    expect(run(cliPath, ['tenants', 'verify', '--help']).execArgv).toEqual(['--max-semi-space-size=4']);
  });

  it('decides the young generation by the command, not by any word restore (a tenant or --to of that name is backed up with 4)', () => {
    expect(run(cliPath, ['tenants', '--json', 'restore', '--as', 'backup', '--help']).execArgv).toEqual(['--max-semi-space-size=2']);
    expect(run(cliPath, ['tenants', 'backup', 'restore', '--help']).execArgv).toEqual(['--max-semi-space-size=4']);
    expect(run(cliPath, ['tenants', 'backup', 'acme', '--to', 'restore', '--help']).execArgv).toEqual(['--max-semi-space-size=4']);
    expect(run(cliPath, ['tenants', 'verify', 'restore', '--help']).execArgv).toEqual(['--max-semi-space-size=4']);
  });

  it('lets the old generation of a listing or a prune grow 20% past what a full collection kept (their garbage is every S3 answer), by the command only', () => {
    expect(run(cliPath, ['tenants', 'backups', '--help']).execArgv).toEqual(['--max-semi-space-size=4', '--heap-growing-percent=20']);
    expect(run(cliPath, ['--json', 'tenants', 'prune', 'backup', '--help']).execArgv).toEqual(['--max-semi-space-size=4', '--heap-growing-percent=20']);
    expect(run(cliPath, ['tenants', 'backup', 'prune', '--to', 'backups', '--help']).execArgv).toEqual(['--max-semi-space-size=4']);
    expect(run(cliPath, ['tenants', 'restore', 'backups', '--help']).execArgv).toEqual(['--max-semi-space-size=2']);
  });

  it("leaves the user's environment as it was (the launcher's own shell variables are not exported to the CLI and what it runs)", () => {
    const env = spawnSync(cliPath, ['tenants', 'restore', '--help'], {
      env: { ...process.env, PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}`, NODE_OPTIONS: `--require ${envReporter}`, a: 'kept', y: 'kept', p: 'kept', n: 'kept', h: 'kept', k: 'kept', v: 'kept' },
      encoding: 'utf8',
    });
    expect(env.stderr).toContain('ENV {"a":"kept","y":"kept","p":"kept","n":"kept","h":"kept","k":"kept","v":"kept"}');
  });

  it('keeps a MALLOC_ARENA_MAX the user set', () => {
    expect(run(cliPath, ['--version'], { MALLOC_ARENA_MAX: '4' }).arenas).toBe('4');
  });

  it('run as a command, fixes malloc\'s mmap and trim thresholds (the frames\' buffers stay in its heap), unless the user set them', () => {
    const started = run(cliPath, ['--version'], { MALLOC_MMAP_THRESHOLD_: '', MALLOC_TRIM_THRESHOLD_: '' });
    expect(started).toMatchObject({ mmapThreshold: String(8 * 1024 * 1024), trimThreshold: String(32 * 1024 * 1024) });
    expect(run(cliPath, ['--version'], { MALLOC_MMAP_THRESHOLD_: '131072', MALLOC_TRIM_THRESHOLD_: '262144' })).toMatchObject({ mmapThreshold: '131072', trimThreshold: '262144' });
  });

  it('run as a command, starts Node with the thread pool the file-system calls are sized for, unless the user set one', () => {
    expect(run(cliPath, ['--version'], { UV_THREADPOOL_SIZE: '' }).pool).toBe(String(THREAD_POOL_SIZE));
    expect(run(cliPath, ['--version'], { UV_THREADPOOL_SIZE: '8' }).pool).toBe('8');
  });

  it.each([
    ['bash', 'ulimit -u', '100', '25', []],
    ['sh', 'ulimit -u 2>/dev/null || ulimit -p', '60', '15', ['--v8-pool-size=3']], // dash names it -p
    ['sh', 'ulimit -u 2>/dev/null || ulimit -p', '8', '2', ['--v8-pool-size=1']],
    ['sh', 'ulimit -u 2>/dev/null || ulimit -p', '3', '1', ['--v8-pool-size=1']],
  ])('under a small process limit (%s: %s %s), starts a pool of a quarter of it, and fewer of V8\'s threads', (shell, command, limit, pool, v8) => {
    // libuv aborts Node, without a word, when it cannot start every thread of its pool, and
    // the limit counts threads: 64 of them did not fit under `ulimit -u 60` (exit 134).
    const started = run(shell, ['-c', `${command} ${limit}; exec "$0" --version`, cliPath], { UV_THREADPOOL_SIZE: '' });
    expect(started.pool).toBe(pool);
    expect(started.execArgv.slice(1)).toEqual(v8);
    expect(run(shell, ['-c', `${command} ${limit}; exec "$0" --version`, cliPath], { UV_THREADPOOL_SIZE: '8' }).pool).toBe('8');
  });

  // Each of libuv's threads reserves an 8 MiB stack: 64 of them and Node 20's own ~750 MB did
  // not fit under `ulimit -v 1000000` (a backup or restore aborted, exit 134), nor Node 24's
  // under 1500000. A stand-in for node reports the pool (Node 24 does not start under 1000000).
  it.each([
    ['1000000', '1'],
    ['2000000', '48'],
    ['3000000', '64'],
  ])('under an address-space limit (ulimit -v %s), starts a pool whose stacks fit: %s', (limit, pool) => {
    const fakeNode = path.join(dir, 'pool-node');
    writeFileSync(fakeNode, '#!/bin/sh\necho "$UV_THREADPOOL_SIZE"\n', { mode: 0o755 });
    const started = (env: NodeJS.ProcessEnv) =>
      spawnSync('sh', ['-c', `ulimit -v ${limit}; exec "$0" --version`, cliPath], { env: { ...process.env, OPENCLAW_NODE: fakeNode, ...env }, encoding: 'utf8' }).stdout.trim();
    expect(started({ UV_THREADPOOL_SIZE: '' })).toBe(pool);
    expect(started({ UV_THREADPOOL_SIZE: '8' })).toBe('8');
  });

  it.skipIf(Number(process.versions.node.split('.')[0]) >= 22)('starts under ulimit -v 1000000 (with 64 threads Node 20 aborted, exit 134, before any code ran)', () => {
    expect(run('sh', ['-c', 'ulimit -v 1000000; exec "$0" --version', cliPath], { UV_THREADPOOL_SIZE: '' }).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  // The limit does not bind root: the CLI runs as a uid no one uses. Node waits, for ever,
  // for each of the 4 threads of V8's pool to start, before any code of ours runs: under
  // `ulimit -u 5` it hung (with 64, 4 of libuv's threads, aborted: exit 134, without a word).
  it.skipIf(process.getuid?.() !== 0 || !existsSync('/usr/bin/setpriv'))('starts, as a user whose process limit leaves room for 5 threads (it hung before any code ran)', () => {
    const started = spawnSync('/usr/bin/setpriv', ['--reuid=61234', '--regid=61234', '--clear-groups', 'sh', '-c', 'ulimit -u 5 2>/dev/null || ulimit -p 5; exec "$0" --version', cliPath], {
      env: { ...process.env, PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}`, UV_THREADPOOL_SIZE: '', NODE_OPTIONS: '' },
      encoding: 'utf8',
      timeout: 20_000,
      killSignal: 'SIGKILL',
    });
    expect({ status: started.status, signal: started.signal, stderr: started.stderr }).toEqual({ status: 0, signal: null, stderr: '' });
    expect(started.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('runs the node binary OPENCLAW_NODE names, with no node on PATH (as a crontab line does)', () => {
    const empty = path.join(dir, 'empty-path');
    mkdirSync(empty, { recursive: true });
    const started = run(cliPath, ['--version'], { PATH: empty, OPENCLAW_NODE: process.execPath, UV_THREADPOOL_SIZE: '' });
    expect(started).toMatchObject({ execArgv: ['--max-semi-space-size=4'], pool: String(THREAD_POOL_SIZE) });
    const without = spawnSync(cliPath, ['--version'], { env: { PATH: empty }, encoding: 'utf8' });
    expect(without.status).toBe(127);
    expect(without.stderr).toBe('openclaw: cannot start: node not found (install Node.js 20 or later, or name its binary in OPENCLAW_NODE)\n');
    const named = spawnSync(cliPath, ['--version'], { env: { PATH: empty, OPENCLAW_NODE: path.join(empty, 'node24') }, encoding: 'utf8' });
    expect(named.status).toBe(127);
    expect(named.stderr).toMatch(/^openclaw: cannot start: \/.*\/node24 not found \(/);
  });

  // Node 24 starts with fewer files open: with 22 descriptors it loads the whole CLI, with 21
  // Node itself fails (reading package.json) before any code of ours runs.
  it.skipIf(Number(process.versions.node.split('.')[0]) >= 24)('that cannot load the CLI (too few file descriptors to open its bundle) says so in one line', () => {
    const { status, stderr } = spawnSync('sh', ['-c', 'ulimit -n 24; exec "$0" "$1" --version', process.execPath, cliPath], { encoding: 'utf8' });
    expect(status).toBe(1);
    expect(stderr).toMatch(/^openclaw: cannot start: EMFILE: too many open files, open '.*' \(raise the open-file limit: ulimit -n\)\n$/);
  });

  // /proc/PID/cmdline is readable by every user: a key given as --secret-key was anyone's for
  // as long as the backup ran (here: one that waits for an S3 endpoint that never answers).
  it.runIf(process.platform === 'linux')('masks --secret-key\'s value in its command line as soon as it starts, keeping its process name', async () => {
    const nodeName = spawnSync(process.execPath, ['-e', "process.stdout.write(require('fs').readFileSync('/proc/self/comm', 'utf8'))"], { encoding: 'utf8' }).stdout;
    const connections: Socket[] = [];
    const server = createServer((socket) => connections.push(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    const base = path.join(dir, 'tenants');
    mkdirSync(path.join(base, 'acme'), { recursive: true });
    for (const [command, first, secret] of [
      [cliPath, [], ['--secret-key', 'TopSecret99']],
      [process.execPath, [cliPath], ['--secret-key=TopSecret99']],
    ] as const) {
      const endpoint = ['--endpoint', `http://127.0.0.1:${port}`, '--access-key', 'AK1', '--region', 'us-east-1'];
      const connected = new Promise<void>((resolve) => server.once('connection', () => resolve()));
      const child = spawn(command, [...first, '--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', 's3://bucket/acme.tar.zst', ...endpoint, ...secret], { stdio: 'ignore', env: { ...process.env, OPENCLAW_NODE: process.execPath } });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      await Promise.race([connected, exited]);
      const cmdline = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').replace(/\0+$/, '');
      const name = readFileSync(`/proc/${child.pid}/comm`, 'utf8');
      child.kill('SIGKILL');
      await exited;
      expect(cmdline).not.toContain('TopSecret99');
      expect(cmdline).toMatch(/ tenants backup acme --to s3:\/\/bucket\/acme\.tar\.zst --endpoint http:\/\/127\.0\.0\.1:\d+ --access-key AK1 --region us-east-1 --secret-key(=| )\*\*\*$/);
      expect(name).toBe(nodeName); // node; MainThread from Node 24 on
    }
    for (const socket of connections) socket.destroy();
    server.close();
  });

  it('run as `node bin/openclaw.js`, is the same CLI, with Node as it was started', () => {
    const started = run(process.execPath, [cliPath, '--version'], { MALLOC_ARENA_MAX: '' });
    expect(started.execArgv).toEqual([]);
    expect(started.stdout).toBe(run(cliPath, ['--version']).stdout);
  });
});
