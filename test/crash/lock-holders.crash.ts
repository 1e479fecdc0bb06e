// Two holders of one tenant's lock, never: on a tenant whose lock a dead holder left, a first
// command (restore --force, backup or recover, in turn) stops itself at one step of making or
// taking over the lock (temp-written, linked, acquired, stale-judged, stale-checked,
// stale-moved-aside); two others start while it sits there, each stopping itself once it holds
// the lock (the pause hook, SIGSTOP at lock:acquired). Then the first is killed (or let go on).
// The test lets a stopped command go on only once the others have stopped or ended, or after
// longer than a lock must stay unchanged before it is judged, and counts the stopped ones at
// every look: never more than one. With inodes free, and with none left (the base dir a tmpfs
// filled with empty files). Each command ends with success or one line; after the next
// `tenants recover`, the tenant is the old or the new one and no lock, claim, moved-aside lock
// or temporary file is left. (crash9's two.sh as a test; `npm run test:crash`.)

import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { LOCK_FRESH_MS } from '../../shared/tenant/lock-takeover.js';
import { sh } from '../helpers/tree.js';
import { canMountTmpfs, describeRun, exited, expectOk, Fixtures, type Run, unmountAll, World } from './harness.js';

const mountable = canMountTmpfs();
if (!mountable) console.log('crash suite: mounting tmpfs is not permitted here (needs root); the no-inode lock cases are skipped');

let fixtures: Fixtures;
beforeAll(() => {
  fixtures = new Fixtures().build();
}, 120_000);
afterAll(() => fixtures?.cleanup());

const mounts: string[] = [];
afterEach(() => unmountAll(mounts));

let killed = 0;
let runs = 0;
let holds = 0;
afterAll(() => console.log(`crash suite (lock holders): ${runs} cases, ${killed} first commands killed at their step, ${holds} holds of the lock, never two at once`));

const POINTS = ['lock:temp-written', 'lock:linked', 'lock:acquired', 'lock:stale-judged', 'lock:stale-checked', 'lock:stale-moved-aside'];
type Op = 'restore' | 'backup' | 'recover';
const ORDERS: Op[][] = [
  ['restore', 'backup', 'recover'],
  ['backup', 'recover', 'restore'],
  ['recover', 'restore', 'backup'],
];

function args(w: World, op: Op, n: number): string[] {
  if (op === 'restore') return ['tenants', 'restore', '--from', fixtures.newArchive, '--force'];
  if (op === 'backup') return ['tenants', 'backup', 'acme', '--to', path.join(w.out, `acme-${n}.tar.zst`)];
  return ['tenants', 'recover', 'acme'];
}

/** A lock an earlier command left, its holder a process of this host that is gone, two minutes old. */
function deadHoldersLock(w: World): void {
  const lock = path.join(w.base, '.openclaw-lock-acme');
  writeFileSync(lock, JSON.stringify({ token: 'deadbeef', pid: 2 ** 22 + 99, host: hostname(), operation: 'backup', startedAt: '2026-01-01T00:00:00Z' }));
  const old = new Date(Date.now() - 120_000);
  utimesSync(lock, old, old);
}

/** Moves `w`'s base dir onto a tmpfs with room for its files and a few more inodes, then takes every inode left with empty files. */
function withNoInodeLeft(w: World): string[] {
  const files = Number(sh(`find '${w.base}' | wc -l`).toString().trim());
  const copy = path.join(w.root, 'copy');
  sh(`mv '${w.base}' '${copy}'`);
  mkdirSync(w.base);
  sh(`mount -t tmpfs -o size=32m,nr_inodes=${files + 16} tmpfs '${w.base}'`);
  mounts.push(w.base);
  sh(`cp -a '${copy}/.' '${w.base}/' && rm -rf '${copy}'`);
  deadHoldersLock(w);
  const fillers: string[] = [];
  for (;;) {
    const filler = path.join(w.base, `filler-${fillers.length}`);
    try {
      writeFileSync(filler, '');
    } catch {
      return fillers;
    }
    fillers.push(filler);
  }
}

function state(child: ChildProcess): 'stopped' | 'running' | 'ended' {
  if (child.exitCode !== null || child.signalCode !== null) return 'ended';
  try {
    const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
    const letter = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return letter === 'T' ? 'stopped' : letter === 'Z' || letter === 'X' ? 'ended' : 'running';
  } catch {
    return 'ended';
  }
}

/**
 * Lets the commands run to their end, continuing a stopped one (a holder of the lock) only
 * once every other has stopped or ended, or HOLD_MS have passed with it stopped. The most
 * commands seen stopped at one look.
 */
async function mostHoldersAtOnce(children: ChildProcess[]): Promise<number> {
  let most = 0;
  let stoppedSince: number | undefined;
  const deadline = Date.now() + 40_000;
  for (;;) {
    const states = children.map(state);
    if (states.every((s) => s === 'ended')) return most;
    const stopped = children.filter((_, i) => states[i] === 'stopped');
    most = Math.max(most, stopped.length);
    if (stopped.length === 0) stoppedSince = undefined;
    else {
      stoppedSince ??= Date.now();
      if (states.every((s) => s !== 'running') || Date.now() - stoppedSince > HOLD_MS) {
        holds++;
        stopped[0]!.kill('SIGCONT');
        stoppedSince = undefined;
      }
    }
    if (Date.now() > deadline) {
      for (const child of children) child.kill('SIGKILL');
      throw new Error('the commands did not end within 40 s');
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function expectOneLineOrSuccess(run: Run): void {
  if (run.status === 0) return;
  expect(run.status, describeRun(run)).not.toBeNull();
  expect(run.stderr.trim().split('\n'), run.stderr).toHaveLength(1);
  expect(run.stderr).not.toMatch(/\n\s+at /);
}

/**
 * How long a holder stays stopped while another command is still trying: longer than a lock
 * must stay unchanged before it is judged (LOCK_FRESH_MS), so a taker that judged a live
 * holder's lock stale would take it while its holder is stopped.
 */
const HOLD_MS = LOCK_FRESH_MS + 500;

/** The steps at which the first command already holds the lock. */
const HOLDING = new Set(['lock:linked', 'lock:acquired']);

async function stoppedOrEnded(children: ChildProcess[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && children.some((child) => state(child) === 'running')) await new Promise((resolve) => setTimeout(resolve, 20));
}

describe("three commands on a dead holder's lock, the first stopped at each lock step while the others run, then killed or let go: never two holders", () => {
  const cases: [string, boolean, Op[], 'killed' | 'let go'][] = [];
  POINTS.forEach((point, i) => {
    cases.push([point, false, ORDERS[i % 3]!, 'killed']);
    // With no inode left no command gets far (crash9 saw none hold): the steps where a killed one leaves a file, and the takeover.
    if (mountable && ['lock:temp-written', 'lock:acquired', 'lock:stale-moved-aside'].includes(point)) cases.push([point, true, ORDERS[(i + 1) % 3]!, 'killed']);
    // Let go, a stopped command goes on from its step: one that had judged or checked the dead lock, with others holding since.
    if (point !== 'lock:acquired' && point !== 'lock:temp-written') cases.push([point, false, ORDERS[(i + 2) % 3]!, 'let go']);
  });
  for (const [point, noInode, order, end] of cases) {
    it(`${end} at ${point}, ${noInode ? 'no inode left' : 'inodes free'}, ${order.join(' + ')}`, async () => {
      runs++;
      const w = new World(fixtures, `holders-${point}-${noInode ? 'noinode' : 'free'}-${end.replace(' ', '')}`);
      const fillers = noInode ? withNoInodeLeft(w) : (deadHoldersLock(w), []);
      // The first alone, until it stops at its step (with no inode left it may fail before any).
      const first = w.spawn(args(w, order[0]!, 0), { OPENCLAW_TEST_PAUSE_AT: point === 'lock:acquired' ? point : `${point},lock:acquired@1` });
      const children = [first];
      const ended = [exited(first)];
      await stoppedOrEnded(children, 20_000);
      const reached = state(first) === 'stopped';
      // The others, while it sits there: each stops once it holds the lock.
      for (const [n, op] of order.slice(1).entries()) {
        const child = w.spawn(args(w, op, n + 1), { OPENCLAW_TEST_PAUSE_AT: 'lock:acquired@1' });
        children.push(child);
        ended.push(exited(child));
      }
      await stoppedOrEnded(children.slice(1), HOLD_MS);
      const others = children.slice(1).filter((child) => state(child) === 'stopped').length;
      expect(others + (reached && HOLDING.has(point) ? 1 : 0)).toBeLessThanOrEqual(1);
      if (reached) {
        if (end === 'killed') killed++;
        first.kill(end === 'killed' ? 'SIGKILL' : 'SIGCONT');
      }
      expect(await mostHoldersAtOnce(children)).toBeLessThanOrEqual(1);
      const results = await Promise.all(ended);
      if (!(reached && end === 'killed')) expectOneLineOrSuccess(results[0]!);
      for (const run of results.slice(1)) expectOneLineOrSuccess(run);

      for (const filler of fillers) rmSync(filler);
      expectOk(w.cli(['tenants', 'recover', 'acme']));
      expect(readdirSync(w.base).sort()).toEqual(['acme', 'beta']);
      expect(['old', 'new']).toContain(w.which('acme'));
      expect(w.tree('beta')).toEqual(fixtures.beta);
      expect(readdirSync(w.out).filter((name) => name.startsWith('.'))).toEqual([]);
      expect(readdirSync(w.tmp)).toEqual([]);
    });
  }
});
