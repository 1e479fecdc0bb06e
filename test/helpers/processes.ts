// What /proc says about processes a test started: for tests that stop process trees.

import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

import { cliPath } from './tree.js';

/**
 * The processes of process group `group` still running, as "pid command": zombies (exited,
 * not yet reaped) are not. A CLI started `detached` leads a group of its own, with its --pipe
 * command and what that started.
 */
export function groupMembers(group: number): string[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .flatMap((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
        const [state, , pgid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return Number(pgid) === group && state !== 'Z' ? [`${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'latin1').replaceAll('\0', ' ').trim()}`] : [];
      } catch {
        return []; // exited meanwhile
      }
    });
}

/** Whether process `pid` is stopped (SIGSTOP, or paused at a test pause point): state T in /proc. */
export function isStopped(pid: number): boolean {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).startsWith('T');
}

/**
 * Resolves true once `child` has stopped (a pause point, SIGSTOP), false once it has ended
 * (exited, or killed); throws after `ms`.
 */
export async function stoppedOrEnded(child: ChildProcess, ms = 60_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    try {
      if (isStopped(child.pid!)) return true;
    } catch {
      return false; // gone from /proc: ended
    }
    if (Date.now() > deadline) throw new Error(`pid ${child.pid} neither stopped nor ended in ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * A CLI stopped at a test pause point: `go` lets it on (SIGCONT), `kill` kills it; either waits
 * for its exit. `next` lets it on to its next pause point (OPENCLAW_TEST_PAUSE_AT may name
 * several): true once it stopped there, false once it ended.
 */
export interface PausedCli {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  stdout(): string;
  stderr(): string;
  go(): Promise<{ status: number | null; stdout: string; stderr: string }>;
  kill(): Promise<{ status: number | null; stdout: string; stderr: string }>;
  next(): Promise<boolean>;
}

/**
 * The built CLI run with `args`, once it has stopped (SIGSTOP) at test pause point `point`
 * (OPENCLAW_TEST_PAUSE_AT: one, or several comma-separated). One that ends before, or is not
 * stopped in a minute, fails the test (killed, its stderr in the error).
 */
export async function pausedCli(args: string[], point: string): Promise<PausedCli> {
  const child = spawn(process.execPath, [cliPath, ...args], { env: { ...process.env, OPENCLAW_TEST_PAUSE_AT: point }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const stopped = await stoppedOrEnded(child).catch(() => false);
  if (!stopped) {
    child.kill('SIGKILL');
    await exited;
    throw new Error(`${args.join(' ')} never reached ${point}: ${stderr}`);
  }
  const ended = async (signal: NodeJS.Signals) => {
    child.kill(signal);
    return { status: await exited, stdout, stderr };
  };
  const next = () => {
    child.kill('SIGCONT');
    return stoppedOrEnded(child);
  };
  return { child, exited, stdout: () => stdout, stderr: () => stderr, go: () => ended('SIGCONT'), kill: () => ended('SIGKILL'), next };
}
