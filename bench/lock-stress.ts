// Stress for the lock takeover (shared/tenant/lock-takeover.ts): `--workers` processes race
// for one tenant lock (or the crontab lock) for `--seconds`; a holder kills itself (SIGKILL)
// while holding it `--kill` of the time, so each kill leaves a dead lock that every other
// worker judges stale at once when it stops being fresh. Overlap detector: a holder puts a
// marker named after itself (pid, start time, attempt) in a side directory right after it
// acquires and removes it right before it releases, and lists the markers after acquiring
// and before releasing: a marker of another live process means two hold the lock at once.
// Prints one JSON line: acquisitions, kills, overlaps (distinct pairs of holds).
//
//   TSX_DISABLE_CACHE=1 node --import tsx bench/lock-stress.ts [--seconds 90] [--workers 8] [--kill 0.1] [--lock tenant|crontab]
//   (TSX_DISABLE_CACHE: tsx would leave its cache in /tmp, as `npm run bench` avoids too)

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

import { TenantBusyError } from '../shared/errors.js';
import { withCrontabLock } from '../shared/schedule/crontab-lock.js';
import { acquireTenantLock } from '../shared/tenant/lock.js';
import { isProcessAlive, ownerTag, parseOwnerTag } from '../shared/tenant/process-owner.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '90' },
    workers: { type: 'string', default: '8' },
    kill: { type: 'string', default: '0.1' },
    lock: { type: 'string', default: 'tenant' },
    worker: { type: 'string' },
    until: { type: 'string' },
  },
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const say = (line: string) => process.stdout.write(`${line}\n`); // a pipe: written before a SIGKILL

if (values.worker !== undefined) await worker(values.worker, Number(values.until), Number(values.kill));
else await drive();

async function drive(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'openclaw-lock-stress-'));
  mkdirSync(path.join(dir, 'tenants'));
  mkdirSync(path.join(dir, 'markers'));
  const until = Date.now() + Number(values.seconds) * 1000;
  const counts = { acquired: 0, kills: 0, workersStarted: 0 };
  const overlaps = new Set<string>();
  const running = new Set<Promise<void>>();

  const start = (): Promise<void> => {
    counts.workersStarted++;
    const child = spawn(process.execPath, ['--import', 'tsx', import.meta.filename, '--worker', dir, '--until', String(until), '--kill', values.kill!, '--lock', values.lock!], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, TSX_DISABLE_CACHE: '1' },
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      const [what, ...rest] = line.split(' ');
      if (what === 'acquired') counts.acquired++;
      else if (what === 'kill') counts.kills++;
      else if (what === 'overlap') overlaps.add(rest.sort().join(' '));
    });
    return new Promise((resolve) => child.on('close', () => resolve()));
  };
  const keep = (): void => {
    const run: Promise<void> = start().then(() => {
      running.delete(run);
      if (Date.now() < until) keep();
    });
    running.add(run);
  };
  for (let i = 0; i < Number(values.workers); i++) keep();
  while (running.size > 0) await Promise.race(running);
  rmSync(dir, { recursive: true, force: true });
  say(JSON.stringify({ lock: values.lock, seconds: Number(values.seconds), workers: Number(values.workers), ...counts, overlaps: overlaps.size, pairs: [...overlaps].slice(0, 5) }));
}

async function worker(dir: string, until: number, killRate: number): Promise<void> {
  const markers = path.join(dir, 'markers');
  const hold = async (seq: number): Promise<void> => {
    const me = `${ownerTag()}.${seq}`;
    writeFileSync(path.join(markers, me), '');
    say('acquired');
    reportOthers(markers, me);
    await sleep(10 + Math.random() * 40);
    if (Math.random() < killRate) {
      say('kill');
      process.kill(process.pid, 'SIGKILL');
    }
    reportOthers(markers, me);
    rmSync(path.join(markers, me));
  };
  for (let seq = 0; Date.now() < until; seq++) {
    if (values.lock === 'crontab') {
      await withCrontabLock(path.join(dir, 'crontab.lock'), () => hold(seq), { waitMs: 120_000 });
    } else {
      const lock = await acquireTenantLock(path.join(dir, 'tenants'), 'acme', 'backup').catch((error: unknown) => {
        if (error instanceof TenantBusyError) return undefined;
        throw error;
      });
      if (lock === undefined) {
        await sleep(5 + Math.random() * 20);
        continue;
      }
      await hold(seq);
      await lock.release();
    }
    await sleep(Math.random() * 20);
  }
}

/** Says `overlap <me> <other>` for each marker of another live process. */
function reportOthers(markers: string, me: string): void {
  for (const name of readdirSync(markers)) {
    if (name === me) continue;
    const owner = parseOwnerTag(name.split('.')[0]!);
    if (owner !== undefined && isProcessAlive(owner.pid, owner.started)) say(`overlap ${me} ${name}`);
  }
}
