// What /proc says about processes a test started: for tests that stop process trees.

import { readdirSync, readFileSync } from 'node:fs';

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
