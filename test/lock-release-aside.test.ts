// A holder's release removes the one aside name when a taker's link left its lock there too
// (lock.ts holdLock release). It judged that by the inode number alone: a holder whose lock was
// taken over (frozen past the stale time, judged gone from another host) no longer has that
// inode, and the file system gives its number to the next file made (ext4 does at once): another
// command's lock a killed taker left at the aside name, under that number, was removed by the
// release, and its live holder's lock was nowhere (the next command took the free name beside
// it). The release now removes the aside name only if it holds its own lock (inode and token).

import { mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { acquireTenantLock, lockPathFor, oneAsideNameFor } from '../shared/tenant/lock.js';
import { tempDir } from './helpers/tree.js';

const dir = tempDir('openclaw-lock-release-aside-');
afterAll(() => dir.cleanup());

describe("a release after the lock was taken over", () => {
  it("leaves another command's lock at the aside name that has its old lock's inode number", async (context) => {
    const base = path.join(dir.path, 'tenants');
    mkdirSync(path.join(base, 'acme'), { recursive: true });
    const lockPath = lockPathFor(base, 'acme');
    const lock = await acquireTenantLock(base, 'acme', 'backup');
    const ino = statSync(lockPath).ino;
    // Taken over from another host while this process was frozen: its lock removed.
    unlinkSync(lockPath);
    // Another holder's lock (a restore on another host, alive), under the freed inode's number,
    // left at the aside name by a taker killed before it put it back.
    const other = JSON.stringify({ token: 'other', pid: 4242, host: 'other', hostId: 'aaaaaaaaaaaa', started: 1, operation: 'restore', startedAt: new Date().toISOString() });
    let made: string | undefined;
    for (let i = 0; i < 20 && made === undefined; i++) {
      const file = path.join(base, `made-${i}`);
      writeFileSync(file, other);
      if (statSync(file).ino === ino) made = file;
    }
    if (made === undefined) return context.skip('this file system did not give the freed inode number to a new file');
    renameSync(made, oneAsideNameFor(lockPath));

    await lock.release();
    expect(readFileSync(oneAsideNameFor(lockPath), 'utf8')).toBe(other);
  });
});
