// Runs one contender's command line under GNU time and reports wall time, peak RSS and CPU.
//
// Every command runs as `/usr/bin/time -f … -o FILE bash -c 'COMMAND'`. GNU time gets its
// numbers from wait4() on bash, and on Linux that rusage covers bash and every descendant
// that was waited for: ru_maxrss is then the peak RSS of the largest single process of the
// pipeline (not the sum of tar's, zstd's and aws's), user/sys CPU the sum over all of them.
// Wall time is measured here around the spawn (hrtime, not time's 10 ms %e), so it includes
// ~5 ms of time + bash start-up for every contender alike.

import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface RunResult {
  readonly wallMs: number;
  /** Peak RSS of the largest process of the pipeline, bytes. */
  readonly maxRssBytes: number;
  readonly userMs: number;
  readonly systemMs: number;
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export const TIME_BINARY = '/usr/bin/time';

let sequence = 0;

export async function timed(command: string, options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<RunResult> {
  const timeFile = path.join(os.tmpdir(), `openclaw-bench-time-${process.pid}-${sequence++}.txt`);
  const started = process.hrtime.bigint();
  const { code, stdout, stderr } = await run(TIME_BINARY, ['-f', '%M %U %S %x', '-o', timeFile, 'bash', '-o', 'pipefail', '-c', command], options);
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  let fields: string[] = [];
  try {
    // A failing command makes time print "Command exited with non-zero status N" first.
    const lines = readFileSync(timeFile, 'utf8').trim().split('\n');
    fields = (lines[lines.length - 1] ?? '').trim().split(/\s+/);
  } finally {
    rmSync(timeFile, { force: true });
  }
  return {
    wallMs,
    maxRssBytes: Number(fields[0]) * 1024,
    userMs: Number(fields[1]) * 1000,
    systemMs: Number(fields[2]) * 1000,
    exitCode: code,
    stdout,
    stderr,
  };
}

export function run(
  file: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }),
    );
  });
}

/** Runs a shell command untimed; throws with its stderr if it fails. */
export async function sh(command: string, options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<string> {
  const result = await run('bash', ['-o', 'pipefail', '-c', command], options);
  if (result.code !== 0) throw new Error(`command failed (${result.code}): ${command}\n${result.stderr.trim()}`);
  return result.stdout;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Single-quotes a string for bash. */
export function quote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
