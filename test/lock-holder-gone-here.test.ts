// isLockHolderGoneHere judges, without creating a file (a disk with no inode left), whether no
// live process holds a tenant's lock. It says "gone" only when that is certain here: no lock at
// all (and no live holder's lock moved aside by a taker killed before its put-back), or a lock
// whose holder is a dead process of this pid namespace. A holder on another host, and a lock
// that names no holder, are never judged gone by it: that takes the file system's clock.

import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { isLockHolderGoneHere, lockPathFor } from '../shared/tenant/lock.js';
import { hostId, ownerTag, thisProcess } from '../shared/tenant/process-owner.js';
import { tempDir } from './helpers/tree.js';

let dir: ReturnType<typeof tempDir>;
let base: string;
let lockPath: string;
beforeEach(() => {
  dir = tempDir('openclaw-lock-gone-here-');
  base = path.join(dir.path, 'tenants');
  mkdirSync(path.join(base, 'acme'), { recursive: true });
  lockPath = lockPathFor(base, 'acme');
});
afterEach(() => dir.cleanup());

const deadPid = () => spawnSync('true').pid!;
const record = (owner: { pid: number; started: number; hostId: string }) => JSON.stringify({ token: 't', pid: owner.pid, host: 'h', hostId: owner.hostId, started: owner.started, operation: 'restore', startedAt: '2026-01-01T00:00:00Z' });
const live = () => thisProcess();
const dead = () => ({ pid: deadPid(), started: 1, hostId: hostId() });
/** A lock a taker now gone moved aside, killed before it put it back. */
const movedAsideByGoneTaker = () => path.join(base, `.openclaw-lock-acme.${ownerTag(dead())}.0123456789ab.broken`);

describe('whether a lock holder is gone, judged without a file', () => {
  it('is gone when there is no lock', async () => {
    expect(await isLockHolderGoneHere(base, 'acme')).toBe(true);
  });

  it('is gone when the lock names a dead process of this pid namespace, not when it names a live one', async () => {
    writeFileSync(lockPath, record(dead()));
    expect(await isLockHolderGoneHere(base, 'acme')).toBe(true);
    writeFileSync(lockPath, record(live()));
    expect(await isLockHolderGoneHere(base, 'acme')).toBe(false);
  });

  it("is not gone when the lock's holder is on another host, however dead its pid would be here, or when the lock names no holder", async () => {
    writeFileSync(lockPath, record({ pid: deadPid(), started: 1, hostId: 'aaaaaaaaaaaa' }));
    expect(await isLockHolderGoneHere(base, 'acme')).toBe(false);
    writeFileSync(lockPath, 'not a lock record');
    expect(await isLockHolderGoneHere(base, 'acme')).toBe(false);
    // An empty lock with no second name: a name reserved by a put-back (lock-takeover.ts putLockBack), or one being written.
    writeFileSync(lockPath, '');
    expect(await isLockHolderGoneHere(base, 'acme')).toBe(false);
  });

  it('judges an empty lock (no room for its record) by the holder its second name carries', async () => {
    writeFileSync(lockPath, '');
    const second = (owner: { pid: number; started: number; hostId: string }) => `${lockPath}.${ownerTag(owner)}.0123456789ab.restore.held`;
    const deadHolder = second(dead());
    spawnSync('ln', [lockPath, deadHolder]);
    expect(await isLockHolderGoneHere(base, 'acme')).toBe(true);
    rmSync(deadHolder);
    spawnSync('ln', [lockPath, second(live())]);
    expect(await isLockHolderGoneHere(base, 'acme')).toBe(false);
  });

  it('is not gone when there is no lock but a live holder runs whose lock a taker now gone moved aside', async () => {
    writeFileSync(movedAsideByGoneTaker(), record(live()));
    expect(await isLockHolderGoneHere(base, 'acme')).toBe(false);
  });

  it("is not gone when there is no lock but the lock moved aside is another host's, which cannot be judged here (its taker may be between its rename and its put-back)", async () => {
    writeFileSync(path.join(base, `.openclaw-lock-acme.${ownerTag()}.0123456789ab.broken`), record({ pid: deadPid(), started: 1, hostId: 'aaaaaaaaaaaa' }));
    expect(await isLockHolderGoneHere(base, 'acme')).toBe(false);
  });

  it("is gone when there is no lock and the lock moved aside is a dead holder's (the lock that taker judged)", async () => {
    writeFileSync(movedAsideByGoneTaker(), record(dead()));
    expect(await isLockHolderGoneHere(base, 'acme')).toBe(true);
  });
});
