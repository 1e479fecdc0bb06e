// The processes below a --pipe command's shell, read from /proc: found however deep,
// signalled only while they are still the processes that were found.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { afterEach, describe, expect, it } from 'vitest';

import { freezeTree, processTree, signalTree, survivors } from '../shared/storage/process-tree.js';
import { groupMembers } from './helpers/processes.js';
import { repoRoot, tempDir } from './helpers/tree.js';

const started: ChildProcess[] = [];
afterEach(() => {
  for (const child of started.splice(0)) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

/** A shell (in a group of its own, for the cleanup) whose grandchild is a `sleep` (below a subshell), and that pid. */
async function shellWithGrandchild(): Promise<{ shell: ChildProcess; grandchild: number }> {
  const dir = tempDir('openclaw-tree-');
  try {
    const pidFile = path.join(dir.path, 'pid');
    const shell = spawn('/bin/sh', ['-c', `( sh -c 'echo $$ > "${pidFile}.tmp"; mv "${pidFile}.tmp" "${pidFile}"; exec sleep 30'; : ) | cat`], { stdio: 'ignore', detached: true });
    started.push(shell);
    for (let waited = 0; !existsSync(pidFile); waited += 10) {
      if (waited > 10_000) throw new Error('the grandchild did not start');
      await sleep(10);
    }
    const grandchild = Number(readFileSync(pidFile, 'utf8'));
    // Until it has become `sleep`, its `mv` may still be running (a fifth process, on a loaded machine).
    for (let waited = 0; readFileSync(`/proc/${grandchild}/comm`, 'utf8').trim() !== 'sleep'; waited += 10) {
      if (waited > 10_000) throw new Error('the grandchild did not become sleep');
      await sleep(10);
    }
    return { shell, grandchild };
  } finally {
    dir.cleanup();
  }
}

async function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) await new Promise((resolve) => child.once('exit', resolve));
}

describe.runIf(existsSync('/proc/self/stat'))('process tree', () => {
  it('holds the shell and every process below it, parents first', async () => {
    const { shell, grandchild } = await shellWithGrandchild();
    const tree = processTree(shell.pid!);
    expect(tree[0]!.pid).toBe(shell.pid);
    expect(tree.map((member) => member.pid)).toContain(grandchild);
    expect(tree).toHaveLength(4); // sh, the subshell, cat, sleep
  });

  it('signals every member, and then counts none of them as surviving', async () => {
    const { shell, grandchild } = await shellWithGrandchild();
    const tree = processTree(shell.pid!);
    signalTree(tree, 'SIGTERM');
    await exited(shell);
    for (let waited = 0; survivors(tree).length > 0; waited += 10) {
      if (waited > 10_000) throw new Error(`still running: ${JSON.stringify(survivors(tree))}`);
      await sleep(10);
    }
    expect(survivors(tree.filter((member) => member.pid === grandchild))).toEqual([]);
  });

  it('freezes a shell that is forking: it starts nothing more until signalled, and leaves nothing running (a fork between reading the tree and the signal was left out, orphaned)', async () => {
    // Forks as fast as it can: read, then signalled, the tree missed the `sleep` started in
    // between, which outlived its shell (9 of 10 backups through --pipe 'while :; do sleep 30 &
    // sleep 0.01; done' stopped by SIGTERM left one or more running).
    const shell = spawn('/bin/sh', ['-c', 'while :; do sleep 30 & done'], { stdio: 'ignore', detached: true });
    started.push(shell);
    for (let waited = 0; processTree(shell.pid!).length < 5; waited += 10) {
      if (waited > 10_000) throw new Error('the shell did not fork');
      await sleep(10);
    }
    const tree = freezeTree([shell.pid!]);
    // Frozen: not one more process, however long it stays so.
    await sleep(200);
    expect(processTree(shell.pid!).map((member) => member.pid)).toEqual(tree.map((member) => member.pid));
    signalTree(tree, 'SIGTERM');
    await exited(shell);
    for (let waited = 0; survivors(tree).length > 0; waited += 10) {
      if (waited > 10_000) throw new Error(`still running: ${JSON.stringify(survivors(tree))}`);
      await sleep(10);
    }
    expect(groupMembers(shell.pid!)).toEqual([]);
  });

  it('keeps the members it froze stopped until they are signalled, then lets them act on it', async () => {
    const { shell, grandchild } = await shellWithGrandchild();
    const tree = freezeTree([shell.pid!]);
    expect(tree.map((member) => member.pid)).toContain(grandchild);
    expect(readFileSync(`/proc/${grandchild}/stat`, 'latin1').split(') ')[1]?.[0]).toBe('T');
    signalTree(tree, 'SIGTERM'); // and SIGCONT: a stopped process would hold the SIGTERM
    await exited(shell);
    for (let waited = 0; survivors(tree).length > 0; waited += 10) {
      if (waited > 10_000) throw new Error(`still running: ${JSON.stringify(survivors(tree))}`);
      await sleep(10);
    }
  });

  it('leaves nothing stopped when it dies between freezing and signalling (kill -9: the members were left stopped for good)', async () => {
    const { shell, grandchild } = await shellWithGrandchild();
    const dying = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'test', 'helpers', 'freeze-and-die.ts'), String(shell.pid)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let said = '';
    dying.stdout.on('data', (chunk: Buffer) => (said += chunk.toString()));
    const [, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => dying.on('close', (code, sig) => resolve([code, sig])));
    expect(signal).toBe('SIGKILL');
    expect(said.trim().split(' ').map(Number)).toContain(grandchild); // it did freeze it
    const state = (pid: number): string | undefined => {
      try {
        return readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]?.[0];
      } catch {
        return undefined; // gone
      }
    };
    for (let waited = 0; [shell.pid!, grandchild].some((pid) => state(pid) === 'T'); waited += 10) {
      if (waited > 5000) throw new Error(`still stopped: shell ${state(shell.pid!)}, sleep ${state(grandchild)}`);
      await sleep(10);
    }
  });

  it('does not signal a process that only has a member\'s pid (another start time)', () => {
    const self = processTree(process.pid)[0]!;
    expect(survivors([self])).toEqual([self]);
    expect(survivors([{ pid: process.pid, start: self.start + 1 }])).toEqual([]);
    signalTree([{ pid: process.pid, start: self.start + 1 }], 'SIGKILL'); // we are still here
  });
});
