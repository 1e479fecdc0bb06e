// The processes a `--pipe` command is made of, found and signalled as a whole. The command
// runs as `sh -c CMD`: signalling the shell alone leaves what it started (`age -r … | cat`,
// a script's `sleep`) running, orphaned, after the CLI has exited.
//
// A process group would hold them, but Node starts a child in a group of its own only in a
// new session (setsid), without the terminal: `age -d -i key.age` could no longer ask for its
// passphrase ("open /dev/tty: no such device or address"). So the command stays in the CLI's
// group (the terminal's Ctrl-C and hang-up reach it as before), and when it must stop, the
// tree under its shell is read from /proc (each process's parent and start time) and every
// member is signalled. The start time tells a member from a later process given its pid.
//
// Limits: a process that had already left the tree (a daemon that forked twice, such as
// gpg-agent, meant to outlive the command) is not touched; without /proc (macOS) the tree is
// the shell alone, as before.

import { readdirSync } from 'node:fs';

import { isProcessAlive, processStat, type ProcessStat } from '../tenant/process-owner.js';

/** One process of the tree: its pid and its start time (clock ticks since boot). */
export interface TreeMember {
  readonly pid: number;
  readonly start: number;
}

/** The start time of a process found without /proc. */
const UNKNOWN_START = 0;

/** `root` and every process below it now, parents before children. */
export function processTree(root: number): TreeMember[] {
  return descendants([root]);
}

/** The members still running as the processes they were (exited or reaped ones are not). */
export function survivors(members: readonly TreeMember[]): TreeMember[] {
  return members.filter((member) => {
    if (member.start === UNKNOWN_START) return isProcessAlive(member.pid);
    const stat = processStat(member.pid);
    return stat !== undefined && !stat.dead && stat.started === member.start;
  });
}

/**
 * Sends `signal` to each member still running as itself; with `withNewChildren`, also to the
 * processes they started since they were found. Every pid is checked against its start time
 * just before it is signalled, and the new children are looked for only below members whose
 * start time still matches in the same reading of /proc: a member that exited and whose pid
 * went to an unrelated process meanwhile is neither signalled nor searched. Returns the
 * members signalled.
 */
export function signalTree(members: readonly TreeMember[], signal: NodeJS.Signals, withNewChildren = false): TreeMember[] {
  const targets = withNewChildren ? descendants(members) : members;
  const signalled: TreeMember[] = [];
  for (const member of targets) {
    if (survivors([member]).length === 0) continue; // exited, or its pid is another process's now
    try {
      process.kill(member.pid, signal);
      signalled.push(member);
    } catch {
      // gone meanwhile (ESRCH), or not ours to signal (EPERM: it became setuid)
    }
  }
  return signalled;
}

/**
 * The roots still running as themselves and every process below them now, parents before
 * children. A root given by pid alone (a number) is taken as whatever runs under that pid.
 */
export function descendants(roots: readonly (TreeMember | number)[]): TreeMember[] {
  const table = processTable();
  const found: TreeMember[] = [];
  const seen = new Set<number>();
  const queue: (TreeMember | number)[] = [...roots];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    const pid = typeof next === 'number' ? next : next.pid;
    if (seen.has(pid)) continue;
    if (table === undefined) {
      seen.add(pid);
      found.push({ pid, start: typeof next === 'number' ? UNKNOWN_START : next.start }); // signalled by its pid alone
      continue;
    }
    const stat = table.stats.get(pid);
    if (stat === undefined) continue;
    // A root found earlier counts only while its pid still holds that process.
    if (typeof next !== 'number' && next.start !== UNKNOWN_START && (stat.started !== next.start || stat.dead)) continue;
    seen.add(pid);
    found.push({ pid, start: stat.started });
    queue.push(...(table.children.get(pid) ?? []));
  }
  return found;
}

/** Every process's stat, and the children of each, or undefined without /proc. */
function processTable(): { stats: Map<number, ProcessStat>; children: Map<number, number[]> } | undefined {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return undefined;
  }
  const stats = new Map<number, ProcessStat>();
  const children = new Map<number, number[]>();
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    const stat = processStat(pid);
    if (stat === undefined || stat.started === UNKNOWN_START) continue;
    stats.set(pid, stat);
    const siblings = children.get(stat.parent);
    if (siblings === undefined) children.set(stat.parent, [pid]);
    else siblings.push(pid);
  }
  return stats.size === 0 ? undefined : { stats, children };
}
