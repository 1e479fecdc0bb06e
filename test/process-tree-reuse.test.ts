// A member of a stopping --pipe command's tree that exits, its pid then going to an unrelated
// process, between the two readings of /proc that signalling it with its new children takes
// (is it still itself? what runs below it now?): the unrelated process and its children are
// not signalled. The reuse is simulated: /proc/PID/stat of a real `sleep` shows the member's
// start time at the first reading and another one after it.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import { afterEach, describe, expect, it, vi } from 'vitest';

const reused = vi.hoisted(() => ({ pid: 0, reads: 0 }));
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const readFileSync = ((file: unknown, ...rest: unknown[]) => {
    const text = (fs.readFileSync as (...args: unknown[]) => unknown)(file, ...rest);
    if (reused.pid === 0 || file !== `/proc/${reused.pid}/stat` || typeof text !== 'string') return text;
    reused.reads += 1;
    if (reused.reads === 1) return text; // still the member found
    // Another process under the same pid: a later start time (field 22).
    const head = text.slice(0, text.lastIndexOf(')') + 2);
    const fields = text.slice(head.length).split(' ');
    fields[19] = String(Number(fields[19]) + 1);
    return head + fields.join(' ');
  }) as typeof fs.readFileSync;
  return { ...fs, readFileSync, default: { ...fs, readFileSync } };
});

const { processTree, signalTree } = await import('../shared/storage/process-tree.js');

const started: ChildProcess[] = [];
afterEach(() => {
  reused.pid = 0;
  for (const child of started.splice(0)) child.kill('SIGKILL');
});

describe.runIf(existsSync('/proc/self/stat'))('process tree, a pid reused while it is signalled', () => {
  it('does not signal the process that took a member\'s pid, nor look below it', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    started.push(child);
    await new Promise((resolve) => child.once('spawn', resolve));
    const member = processTree(child.pid!)[0]!;
    expect(member.pid).toBe(child.pid);
    reused.pid = child.pid!;
    reused.reads = 0;
    signalTree([member], 'SIGKILL', true);
    expect(reused.reads).toBeGreaterThanOrEqual(2);
    await sleep(100);
    expect(child.exitCode).toBeNull();
    expect(child.signalCode).toBeNull();
  });
});
