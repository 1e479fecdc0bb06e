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
// A shell still running forks new processes between that reading and the signal (a loop, the
// next command of a pipeline or a subshell on a loaded machine): the child of such a fork, not
// in the tree read, was left running, orphaned, once its parent died. So the tree is frozen
// first (freezeTree): each member is stopped (SIGSTOP) and /proc read again until every one is
// stopped and none has a child that is not, then the signal is sent and the members continued.
//
// Limits: a process that had already left the tree (a daemon that forked twice, such as
// gpg-agent, meant to outlive the command) is not touched; without /proc (macOS) the tree is
// the shell alone, as before.

import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { readdirSync } from 'node:fs';
import type { Writable } from 'node:stream';

import { isProcessAlive, processStat, type ProcessStat } from '../tenant/process-owner.js';

/** One process of the tree: its pid and its start time (clock ticks since boot). */
export interface TreeMember {
  readonly pid: number;
  readonly start: number;
}

/** The start time of a process found without /proc. */
const UNKNOWN_START = 0;
/** How long a freeze waits for its members to show as stopped: a fork under way must complete first. */
const FREEZE_WAIT_MS = 1000;
/** How often a freeze looks at whether its members are stopped yet. */
const FREEZE_POLL_MS = 1;

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
 * processes they started since they were found, which are first frozen with them (freezeTree)
 * so that none starts another meanwhile. Every pid is checked against its start time
 * just before it is signalled, and the new children are looked for only below members whose
 * start time still matches in the same reading of /proc: a member that exited and whose pid
 * went to an unrelated process meanwhile is neither signalled nor searched. Each member
 * signalled is then continued (SIGCONT): a stopped process acts on a signal (other than
 * SIGKILL) only once it runs again. Returns the members signalled.
 */
export function signalTree(members: readonly TreeMember[], signal: NodeJS.Signals, withNewChildren = false): TreeMember[] {
  const targets = withNewChildren ? freezeTree(members) : members;
  const signalled = targets.filter((member) => send(member, signal));
  // Every member still itself, signalled or not: one frozen that then could not be signalled
  // (EPERM: it was completing an exec of a setuid program) must not stay stopped.
  for (const member of targets) send(member, 'SIGCONT');
  releaseGuard();
  return signalled;
}

/**
 * Stops (SIGSTOP) the roots still running as themselves and every process below them, and
 * returns them, parents before children, still stopped: for signalTree, which continues them.
 * A stopped process starts no other, and one that was forking when told to stop shows as
 * stopped only once its child is in /proc: so the tree is read again after all its members
 * show as stopped, until that reading finds no new one. A member that does not stop within
 * FREEZE_WAIT_MS (stuck in an uninterruptible wait, as on a hung network mount) is taken as it
 * is; one that cannot be signalled (EPERM) is still returned. Without /proc, the roots alone.
 */
export function freezeTree(roots: readonly (TreeMember | number)[]): TreeMember[] {
  const deadline = Date.now() + FREEZE_WAIT_MS;
  const tried = new Set<number>();
  /** Not stopped, and not to be waited for: exited meanwhile, or not ours to signal. */
  const unsent = new Set<number>();
  let tree = descendants(roots);
  for (;;) {
    for (const member of tree) {
      if (tried.has(member.pid)) continue;
      tried.add(member.pid);
      guard(member);
      if (!send(member, 'SIGSTOP')) unsent.add(member.pid);
    }
    while (Date.now() < deadline && !tree.every((member) => unsent.has(member.pid) || halted(member))) pause(FREEZE_POLL_MS);
    const again = descendants(tree);
    if (again.every((member) => tried.has(member.pid))) return again;
    tree = again;
    if (Date.now() >= deadline) {
      for (const member of tree) {
        if (tried.has(member.pid)) continue;
        guard(member);
        send(member, 'SIGSTOP');
      }
      return tree;
    }
  }
}

/**
 * A frozen member is continued by signalTree, right after its signal; but this process can be
 * killed in between (kill -9, the OOM killer, a Lambda's timeout), leaving the members stopped
 * for good: the kernel continues a stopped process group whose last link to its session goes
 * away only under a job-control shell, and the command runs in the CLI's group, which under a
 * script, cron or systemd is not one. So each member is told, before it is stopped, to a small
 * shell started for the freeze, which ignores the terminal's signals and, once its input ends
 * (when signalTree is done, or when this process dies, however), continues them all. It may
 * send a SIGCONT to a member already continued and gone, whose pid was reused in the meantime
 * (microseconds): a running process ignores it.
 */
let frozenGuard: ChildProcessByStdio<Writable, null, null> | undefined;
const GUARD_SCRIPT = `trap '' INT TERM HUP QUIT; pids=; while read -r pid; do pids="$pids $pid"; done; [ -z "$pids" ] || kill -CONT $pids 2>/dev/null; exit 0`;

/** Tells the guard (started if need be) about `member`, before it is stopped. */
function guard(member: TreeMember): void {
  if (frozenGuard === undefined) {
    try {
      frozenGuard = spawn('/bin/sh', ['-c', GUARD_SCRIPT], { stdio: ['pipe', 'ignore', 'ignore'] });
    } catch {
      return; // no shell to start (EAGAIN, ENOMEM): frozen unguarded, as before
    }
    frozenGuard.on('error', () => undefined);
    frozenGuard.stdin.on('error', () => undefined);
    // It must keep neither this process from exiting nor its exit waiting for it.
    frozenGuard.unref();
    (frozenGuard.stdin as unknown as { unref?: () => void }).unref?.();
  }
  // A pipe takes a short write at once (libuv writes before queueing): it is there before the SIGSTOP.
  frozenGuard.stdin.write(`${member.pid}\n`);
}

/** The frozen members are continued: the guard does it again (harmless) and exits. */
function releaseGuard(): void {
  frozenGuard?.stdin.end();
  frozenGuard = undefined;
}

/** Signals `member` if it still runs as itself; false if it was not signalled. */
function send(member: TreeMember, signal: NodeJS.Signals): boolean {
  if (survivors([member]).length === 0) return false; // exited, or its pid is another process's now
  try {
    process.kill(member.pid, signal);
    return true;
  } catch {
    return false; // gone meanwhile (ESRCH), or not ours to signal (EPERM: it became setuid)
  }
}

/** Stopped, exited, or no longer itself: it starts no process from now on (as far as /proc tells). */
function halted(member: TreeMember): boolean {
  const stat = processStat(member.pid);
  return stat === undefined || stat.dead || stat.stopped || (member.start !== UNKNOWN_START && stat.started !== member.start);
}

/** Blocks for `ms` milliseconds: a freeze runs in an exit handler too, where nothing can wait. */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
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
