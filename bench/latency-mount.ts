// The latency mount of `npm run bench -- --rows latency`: a directory served through
// bench/latencyfs.py, a FUSE passthrough that delays every request (1 ms by default) the
// way EFS's network round trips do (the model is described in latencyfs.py and in
// docs/benchmarks.md). This module starts and stops the daemon, reads its request
// counters, checks that concurrent requests overlap their delays, and makes sure no mount
// outlives the benchmark: each is unmounted after its rows, on SIGINT/SIGTERM/SIGHUP and
// on exit; the daemon unmounts itself when the benchmark dies (PR_SET_PDEATHSIG), and
// fusermount3's auto_unmount when the daemon dies; leftovers of a killed run are swept
// at the next start.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const DAEMON = path.join(path.dirname(fileURLToPath(import.meta.url)), 'latencyfs.py');
const FSTYPE = 'fuse.latencyfs';

export interface LatencyCounters {
  readonly sequence: number;
  /** Requests answered, by kind (lookup, getattr, open, read, create, setattr, "flush (write-back)", …). */
  readonly requests: Record<string, number>;
  /** Delay handed out, summed over requests: divided by wall time, the mean requests in flight. */
  readonly delayedMs: number;
  /** Most replies waiting at once since the previous counters() call. */
  readonly peakInFlight: number;
}

export interface LatencyMount {
  readonly mountpoint: string;
  readonly source: string;
  readonly delayMs: number;
  /** The daemon's counters now (cumulative, except peakInFlight). */
  counters(): Promise<LatencyCounters>;
  unmount(): Promise<void>;
}

/** The requests, delay and peak between two counters() readings. */
export function countersBetween(before: LatencyCounters, after: LatencyCounters): LatencyCounters {
  const requests: Record<string, number> = {};
  for (const [kind, count] of Object.entries(after.requests)) {
    const delta = count - (before.requests[kind] ?? 0);
    if (delta > 0) requests[kind] = delta;
  }
  return { sequence: after.sequence, requests, delayedMs: after.delayedMs - before.delayedMs, peakInFlight: after.peakInFlight };
}

export function totalRequests(counters: LatencyCounters): number {
  return Object.values(counters.requests).reduce((a, b) => a + b, 0);
}

function python(): string | undefined {
  if (existsSync('/usr/bin/python3')) return '/usr/bin/python3';
  return spawnSync('bash', ['-c', 'command -v python3'], { encoding: 'utf8' }).stdout.trim() || undefined;
}

/** What is missing for a latency mount, in one line, or undefined if nothing is. */
export function latencyUnavailable(): string | undefined {
  const missing: string[] = [];
  try {
    if (!statSync('/dev/fuse').isCharacterDevice()) missing.push('/dev/fuse is not a device');
    else accessSync('/dev/fuse', fsConstants.R_OK | fsConstants.W_OK);
  } catch (error) {
    missing.push((error as NodeJS.ErrnoException).code === 'ENOENT' ? '/dev/fuse is missing (in a container: --device /dev/fuse --cap-add SYS_ADMIN)' : '/dev/fuse is not readable and writable');
  }
  if (spawnSync('bash', ['-c', 'command -v fusermount3'], { encoding: 'utf8' }).status !== 0) missing.push('fusermount3 is missing (apt-get install -y fuse3)');
  const interpreter = python();
  if (interpreter === undefined) missing.push('python3 is missing');
  else if (spawnSync(interpreter, ['-c', 'import socket, os; socket.recv_fds; os.readv'], { encoding: 'utf8' }).status !== 0) missing.push(`${interpreter} is older than 3.9`);
  return missing.length === 0 ? undefined : `the latency mount needs FUSE: ${missing.join('; ')}`;
}

const active = new Map<string, ChildProcess>();

function mountedAt(mountpoint: string): boolean {
  return latencyMounts().includes(mountpoint);
}

/** Mount points of latencyfs mounts in this mount namespace. */
function latencyMounts(): string[] {
  const points: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (right === undefined || right.split(' ')[0] !== FSTYPE) continue;
    // Mount points are octal-escaped (\040 for a space).
    points.push(left!.split(' ')[4]!.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))));
  }
  return points;
}

function forceUnmount(mountpoint: string): void {
  spawnSync('fusermount3', ['-u', '-z', '--', mountpoint], { stdio: 'ignore' });
  if (mountedAt(mountpoint)) spawnSync('umount', ['-l', mountpoint], { stdio: 'ignore' });
}

/** Unmounts, synchronously, every mount this process made (signal and exit handlers). */
export function unmountAllNow(): void {
  for (const [mountpoint, daemon] of active) {
    daemon.kill('SIGTERM');
    forceUnmount(mountpoint);
  }
  active.clear();
}

let handlersInstalled = false;

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', unmountAllNow);
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    process.on(signal, () => {
      process.stderr.write(`[bench] ${signal}: unmounting the latency mounts\n`);
      unmountAllNow();
      process.exit(code);
    });
  }
}

/** Lazily unmounts latencyfs mounts under `dir` that a killed run left behind; returns them. */
export function sweepStaleMounts(dir: string): string[] {
  const prefix = `${path.resolve(dir)}${path.sep}`;
  const stale = latencyMounts().filter((point) => point.startsWith(prefix) && !active.has(point));
  for (const point of stale) forceUnmount(point);
  return stale;
}

/** Serves `source` at `mountpoint` (created if needed) with `delayMs` per request. */
export async function mountLatency(source: string, mountpoint: string, options: { delayMs: number; statsFile: string }): Promise<LatencyMount> {
  const unavailable = latencyUnavailable();
  if (unavailable !== undefined) throw new Error(unavailable);
  installHandlers();
  mkdirSync(mountpoint, { recursive: true });
  if (mountedAt(mountpoint)) forceUnmount(mountpoint);
  const daemon = spawn(
    python()!,
    [DAEMON, 'mount', source, mountpoint, '--delay-ms', String(options.delayMs), '--stats', options.statsFile, '--exit-with-parent'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  active.set(mountpoint, daemon);
  let stdout = '';
  let stderr = '';
  daemon.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  daemon.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => daemon.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 10_000;
  while (!/^ready/m.test(stdout)) {
    if (daemon.exitCode !== null || Date.now() > deadline) {
      active.delete(mountpoint);
      daemon.kill('SIGKILL');
      forceUnmount(mountpoint);
      throw new Error(`latencyfs did not mount ${mountpoint}: ${(stderr || stdout || `exit ${daemon.exitCode}`).trim().split('\n').slice(-2).join(' / ')}`);
    }
    await sleep(10);
  }
  if (!/parallel lookups: yes/.test(stdout)) process.stderr.write('[bench] warning: this kernel did not grant parallel lookups on the latency mount\n');

  const readCounters = (): LatencyCounters => JSON.parse(readFileSync(options.statsFile, 'utf8')) as LatencyCounters;
  return {
    mountpoint,
    source,
    delayMs: options.delayMs,
    async counters() {
      const before = readCounters().sequence;
      daemon.kill('SIGUSR1');
      for (let waited = 0; waited < 5000; waited += 2) {
        try {
          const counters = readCounters();
          if (counters.sequence > before) return counters;
        } catch {
          // being replaced: read again
        }
        await sleep(2);
      }
      throw new Error('latencyfs did not report its counters');
    },
    async unmount() {
      if (!active.has(mountpoint)) return;
      active.delete(mountpoint);
      daemon.kill('SIGTERM');
      const code = await Promise.race([exited, sleep(5000).then(() => 'timeout' as const)]);
      if (code === 'timeout') daemon.kill('SIGKILL');
      if (mountedAt(mountpoint)) forceUnmount(mountpoint);
      if (mountedAt(mountpoint)) throw new Error(`could not unmount ${mountpoint}`);
    },
  };
}

export interface OverlapCheck {
  readonly calls: number;
  readonly serialMs: number;
  readonly parallelMs: number;
}

/**
 * Times `calls` lstat() of distinct absent names in one directory of the mount, one after
 * another and then all at once (a child Node with that many libuv threads). Absent names:
 * the mount caches no negative entries, so each call is one LOOKUP the daemon delays.
 */
export async function checkOverlap(mountpoint: string, calls = 64): Promise<OverlapCheck> {
  const script = `
    const { promises: fs } = require('node:fs');
    const [dir, n] = [process.argv[1], Number(process.argv[2])];
    const names = (tag) => Array.from({ length: n }, (_, i) => dir + '/.overlap-probe-' + process.pid + '-' + tag + '-' + i);
    const lookup = (name) => fs.lstat(name).catch(() => {});
    (async () => {
      await Promise.all(names('warm').map(lookup));
      let started = performance.now();
      for (const name of names('serial')) await lookup(name);
      const serialMs = performance.now() - started;
      started = performance.now();
      await Promise.all(names('parallel').map(lookup));
      const parallelMs = performance.now() - started;
      process.stdout.write(JSON.stringify({ calls: n, serialMs, parallelMs }));
    })();`;
  const result = spawnSync(process.execPath, ['-e', script, mountpoint, String(calls)], { encoding: 'utf8', env: { ...process.env, UV_THREADPOOL_SIZE: String(calls) } });
  if (result.status !== 0) throw new Error(`overlap check failed: ${result.stderr.trim()}`);
  return JSON.parse(result.stdout) as OverlapCheck;
}
