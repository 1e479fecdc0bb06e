// Two takers of a dead holder's lock, neither with a claim (no inode left for one: ext4 and the
// like still make hard links then, which take no inode). The first hard-linked the lock to the
// one aside name and saw the lock's name still hold it; before its unlink, the second, finding
// the aside name taken, settled it (the dead holder's lock: removed), took the dead lock over
// and made its own lock under the free name. The first's unlink then removed that live lock (an
// unlink is not conditional: "the name still holds the judged inode" was a look before it, and
// with no inode free, the next lock takes the freed inode's number): both went on holding the
// lock. A taker without a claim now moves the lock by rename (atomic: what it moved is checked
// after and linked back if it is not the judged lock), as it did before the one aside name.

import { spawnSync } from 'node:child_process';
import { mkdirSync, promises as fs, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';

import { lockPathFor, oneAsideNameFor, settleMovedAsideLock } from '../shared/tenant/lock.js';
import { readLockFile, takeOverLock } from '../shared/tenant/lock-takeover.js';
import { hostId, thisProcess } from '../shared/tenant/process-owner.js';
import { tempDir } from './helpers/tree.js';

const dir = tempDir('openclaw-lock-claimless-');
afterAll(() => dir.cleanup());
afterEach(() => {
  vi.restoreAllMocks();
});

function record(pid: number, started: number, token: string): string {
  return JSON.stringify({ token, pid, host: hostname(), hostId: hostId(), started, operation: 'backup', startedAt: new Date().toISOString() });
}

describe('two takers of a dead lock without claims (no inode left for one)', () => {
  it("never removes the lock the other taker made after its own look at the name", async () => {
    const base = path.join(dir.path, 'tenants');
    mkdirSync(path.join(base, 'acme'), { recursive: true });
    const lockPath = lockPathFor(base, 'acme');
    const aside = oneAsideNameFor(lockPath);
    // The lock of a backup killed here (its pid gone).
    writeFileSync(lockPath, record(spawnSync('true').pid!, 1, 'dead'));
    const judged = (await readLockFile(lockPath))!;

    // No inode for a claim.
    const writeFile = fs.writeFile.bind(fs);
    vi.spyOn(fs, 'writeFile').mockImplementation(async (file, ...rest) => {
      if (String(file).endsWith('.taking')) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      return writeFile(file, ...(rest as [string]));
    });
    // The first taker is held at the step that takes the lock's name away (an unlink, or a rename), once.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let held: (() => void) | undefined;
    const reached = new Promise<void>((resolve) => (held = resolve));
    const hold = async (file: unknown) => {
      if (held !== undefined && path.resolve(String(file)) === lockPath) {
        const tell = held;
        held = undefined;
        tell();
        await gate;
      }
    };
    const unlink = fs.unlink.bind(fs);
    vi.spyOn(fs, 'unlink').mockImplementation(async (file) => {
      await hold(file);
      return unlink(file);
    });
    const rename = fs.rename.bind(fs);
    vi.spyOn(fs, 'rename').mockImplementation(async (from, to) => {
      await hold(from);
      return rename(from, to);
    });

    const first = takeOverLock(lockPath, judged, aside, {}, { oneAsideName: true });
    await reached;

    // The second taker, as acquireTenantLock goes: the aside name taken (settled: its holder is
    // gone, removed); the lock judged again (the link changed its ctime; 2 s later it is not
    // fresh) and moved away.
    const outcomes: string[] = [];
    for (let tries = 0; tries < 4 && outcomes.at(-1) !== 'moved'; tries++) {
      const now = await readLockFile(lockPath);
      if (now === undefined) break;
      const outcome = await takeOverLock(lockPath, now, aside, {}, { oneAsideName: true });
      outcomes.push(outcome);
      if (outcome === 'contended') await settleMovedAsideLock(lockPath, aside, undefined);
    }
    expect(outcomes.at(-1)).toBe('moved');
    // ... and its lock made under the free name (its process: this one, alive).
    const self = thisProcess();
    const live = record(self.pid, self.started, 'live');
    await fs.writeFile(lockPath, live, { flag: 'wx' });

    release();
    await first;
    expect(readFileSync(lockPath, 'utf8')).toBe(live);
  });
});
