// The two ways of calling the file system (file-access.ts): synchronous calls on local disks,
// many promise calls in flight on network file systems. They must be indistinguishable in
// what they produce.

import { spawn } from 'node:child_process';
import { chmodSync, closeSync, constants as fsConstants, existsSync, mkdirSync, openSync, promises, readFileSync, readlinkSync, realpathSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';

import { backupTenant } from '../shared/backup/backup.js';
import { CAN_CHECK_OPENED_PATHS, FD_LINKS, fileAccessFor, isVanished, openAt, openSyncAt, OWN_FD_LINKS, PARALLEL_ACCESS, pinDirectory, poolThreads, SYNC_ACCESS } from '../shared/file-access.js';
import { restoreTenant } from '../shared/restore/restore.js';
import { LocalFileLocation } from '../shared/storage/local.js';
import { createSampleTenant } from '../scripts/sample-tenant.js';
import { describeTree, sh, tempDir } from './helpers/tree.js';

const dir = tempDir();
afterAll(() => dir.cleanup());

describe('file-system call modes', () => {
  it('treats this machine\'s temp dir as a local disk', () => {
    expect(fileAccessFor(dir.path)).toBe(SYNC_ACCESS);
  });

  it.each([
    [undefined, 4],
    ['64', 64],
    ['8 ', 8],
    ['0', 1],
    ['many', 1],
    ['5000', 1024],
    ['-1', 1024],
  ])('reads UV_THREADPOOL_SIZE=%j as libuv does: %i threads', (setting, threads) => {
    expect(poolThreads(setting)).toBe(threads);
  });

  it('writes byte-identical archives and restores identical trees in both modes', async () => {
    const base = path.join(dir.path, 'tenants');
    createSampleTenant(path.join(base, 'acme'), { sessions: 30, notes: 200 });
    // Enough small files that a local backup reads them on reader threads (over 1,024), in
    // several directories, and a file larger than a reader's arena (4 MiB).
    for (let d = 0; d < 3; d++) {
      mkdirSync(path.join(base, 'acme', 'cache', `shard-${d}`), { recursive: true });
      for (let f = 0; f < 500; f++) writeFileSync(path.join(base, 'acme', 'cache', `shard-${d}`, `entry-${f}.json`), `{"shard":${d},"entry":${f}}\n`.repeat(f % 7));
    }
    writeFileSync(path.join(base, 'acme', 'cache', 'large.bin'), Buffer.alloc(5 * 1024 * 1024 + 3, 7));
    const createdAt = new Date('2026-06-03T03:00:00Z');
    const archives = { sync: path.join(dir.path, 'sync.tar.zst'), parallel: path.join(dir.path, 'parallel.tar.zst') };
    const accesses = { sync: SYNC_ACCESS, parallel: PARALLEL_ACCESS };
    for (const kind of ['sync', 'parallel'] as const) {
      await backupTenant({ tenantsDir: base, tenant: 'acme', location: new LocalFileLocation(archives[kind]), fileAccess: accesses[kind], now: () => createdAt });
    }
    expect(readFileSync(archives.parallel).equals(readFileSync(archives.sync))).toBe(true);

    const original = describeTree(path.join(base, 'acme'), { exclude: (p) => p === 'pty' });
    for (const kind of ['sync', 'parallel'] as const) {
      const target = path.join(dir.path, `restored-${kind}`);
      const result = await restoreTenant({ tenantsDir: target, location: new LocalFileLocation(archives.sync), fileAccess: accesses[kind] });
      expect(result.verified).toBe(true);
      expect(describeTree(path.join(target, 'acme'))).toEqual(original);
    }
  });
});

describe.skipIf(!CAN_CHECK_OPENED_PATHS)('opening a file whose directory the tenant swapped for a symlink', () => {
  /** Where the process `pid` sleeps (procfs wchan): 'wait_for_partner' while it waits for a FIFO's other end; '0' once woken. */
  const sleepingIn = (pid: number) => readFileSync(`/proc/${pid}/wchan`, 'utf8');

  it.each([
    ['sync', (at: string) => closeSync(openSyncAt(at, READ_FLAGS))],
    ['promise', async (at: string) => (await openAt(at, READ_FLAGS)).close()],
  ] as const)('opens nothing outside the tenant (%s): a writer waiting on a FIFO there is not let go', async (_kind, open) => {
    // The walk listed d/big; before it is read (a large file: by path), d becomes a symlink to a
    // directory outside holding a FIFO named big, which a process there waits to write to. The
    // open followed the symlink and opened the FIFO (letting the writer go on to find no reader)
    // before its check refused it; the same open of a device runs its driver.
    const root = realpathSync(dir.path);
    const tenant = path.join(root, `fifo-${_kind}`, 'tenant');
    const outside = path.join(root, `fifo-${_kind}`, 'outside');
    mkdirSync(path.join(tenant, 'd'), { recursive: true });
    mkdirSync(outside);
    writeFileSync(path.join(tenant, 'd', 'big'), 'listed');
    sh(`mkfifo ${JSON.stringify(path.join(outside, 'big'))}`);
    const writer = spawn('sh', ['-c', 'exec 3>"$0"', path.join(outside, 'big')], { stdio: 'ignore' });
    const exited = new Promise((resolve) => writer.on('exit', resolve));
    try {
      while (sleepingIn(writer.pid!) !== 'wait_for_partner') await new Promise((resolve) => setTimeout(resolve, 5));
      renameSync(path.join(tenant, 'd'), path.join(tenant, 'd.moved'));
      symlinkSync(outside, path.join(tenant, 'd'));
      await expect(Promise.resolve().then(() => open(path.join(tenant, 'd', 'big')))).rejects.toSatisfy(isVanished);
      expect(sleepingIn(writer.pid!)).toBe('wait_for_partner');
    } finally {
      closeSync(openSync(path.join(outside, 'big'), fsConstants.O_RDONLY | fsConstants.O_NONBLOCK));
      await exited;
    }
  });
});

describe.skipIf(!CAN_CHECK_OPENED_PATHS)('the links a backup\'s readers open files through', () => {
  it('name this process\'s descriptors by its number, not by procfs\'s self (resolved again on every open), where procfs is of its PID namespace', () => {
    const file = path.join(realpathSync(dir.path), 'own-links');
    writeFileSync(file, 'x');
    const fd = openSync(file, 'r');
    // Under `unshare -pf` without --mount-proc, procfs numbers this process otherwise: /proc/<pid> is another process.
    const procfsOfOwnNamespace = readlinkSync('/proc/self') === String(process.pid);
    try {
      expect(OWN_FD_LINKS).toBe(procfsOfOwnNamespace ? `/proc/${process.pid}/fd/` : FD_LINKS);
      expect(readlinkSync(`${OWN_FD_LINKS}${fd}`)).toBe(file);
    } finally {
      closeSync(fd);
    }
  });
});

const READ_FLAGS = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK;

describe('a failed open of a name that is not UTF-8', () => {
  it.each([
    ['a file', fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW],
    ['a directory', fsConstants.O_RDONLY | fsConstants.O_DIRECTORY | fsConstants.O_NOFOLLOW],
  ])('names %s by its path as the code holds it (\\udcXX), not by U+FFFD or a procfs path', async (_kind, flags) => {
    // The call gets the name's bytes; Node's error names them decoded, U+FFFD for 0xe9, and
    // through the directory's procfs link: a backup failed with "permission denied (/proc/self/fd/19/sec\ufffd)".
    const parent = path.join(dir.path, 'raw-parent');
    mkdirSync(parent, { recursive: true });
    const missing = `${parent}/sec\udce9`;
    const failures: unknown[] = [];
    try {
      closeSync(openSyncAt(missing, flags));
    } catch (error) {
      failures.push(error);
    }
    await openAt(missing, flags).then(
      (handle) => handle.close(),
      (error: unknown) => failures.push(error),
    );
    expect(failures).toHaveLength(2);
    for (const failure of failures) {
      expect(failure).toMatchObject({ code: 'ENOENT', path: missing });
      expect((failure as Error).message).toContain(`'${missing}'`);
    }
  });
});

describe.skipIf(!CAN_CHECK_OPENED_PATHS)('a directory just made, held by its descriptor (pinDirectory)', () => {
  const replaced = (how: string) => new Error(`replaced (${how})`);
  let made = 0;
  /** A fresh 0700 directory, as the scratch area and the staging directory are made. */
  const fresh = () => {
    const at = path.join(realpathSync(dir.path), 'pinned', `d${++made}`);
    mkdirSync(at, { recursive: true, mode: 0o700 });
    chmodSync(at, 0o700);
    return at;
  };

  it('names its files through the descriptor, and tells when its name or another leads elsewhere', async () => {
    const at = fresh();
    const pinned = await pinDirectory(at, replaced, { mode: 0o700 });
    try {
      expect(pinned.link).toMatch(/^\/proc\/self\/fd\/\d+$/);
      expect(await pinned.isAt()).toBe(true);
      renameSync(at, `${at}.moved`);
      symlinkSync(`${at}.moved`, at);
      writeFileSync(`${pinned.link}/f`, 'x');
      expect(readFileSync(`${at}.moved/f`, 'utf8')).toBe('x');
      expect(await pinned.isAt()).toBe(false);
      expect(await pinned.isAt(`${at}.moved`)).toBe(true);
      expect(await pinned.whereNow()).toBe(`${at}.moved`);
    } finally {
      await pinned.close();
      await pinned.close();
    }
  });

  it('removes itself by its name only while that leads to it', async () => {
    const kept = fresh();
    const pinned = await pinDirectory(kept, replaced);
    renameSync(kept, `${kept}.moved`);
    mkdirSync(kept);
    await pinned.closeAndRemove();
    expect([existsSync(kept), existsSync(`${kept}.moved`)]).toEqual([true, true]);
    const removed = fresh();
    await (await pinDirectory(removed, replaced)).closeAndRemove();
    expect(existsSync(removed)).toBe(false);
  });

  it.each([
    ['a symlink in its place', (at: string) => symlinkSync(fresh(), at), 'it is no longer a directory there'],
    ['nothing in its place', () => undefined, 'it is no longer a directory there'],
    ['a file in it', (at: string) => (mkdirSync(at, { mode: 0o700 }), writeFileSync(path.join(at, 'planted'), '')), 'the directory there is not the empty 0700 one it made'],
    ['another mode', (at: string) => (mkdirSync(at), chmodSync(at, 0o755)), 'the directory there is not the empty 0700 one it made'],
  ])('refuses %s in the caller\'s own words', async (_case, plant, how) => {
    const at = path.join(realpathSync(dir.path), 'pinned', `planted${++made}`);
    plant(at);
    await expect(pinDirectory(at, replaced, { mode: 0o700 })).rejects.toThrow(`replaced (${how})`);
  });

  it('takes a directory the umask made with fewer bits than asked for', async () => {
    // mkdir(dir, 0o700) under umask 0277 makes it 0500: still the one it made (an encrypted
    // backup as root under that umask said its scratch area was replaced).
    const at = fresh();
    chmodSync(at, 0o500);
    const pinned = await pinDirectory(at, replaced, { mode: 0o700 });
    await pinned.close();
  });

  it('takes a directory that has the setgid bit of a setgid parent', async () => {
    // mkdir in a setgid base dir (a group's shared directory) makes it 02700: an encrypted
    // backup as root there said its scratch area was replaced.
    const at = fresh();
    chmodSync(at, 0o2700);
    const pinned = await pinDirectory(at, replaced, { mode: 0o700 });
    await pinned.close();
  });

  it('refuses a descriptor procfs names by another path than the directory made', async () => {
    // The name swapped between the open and the check: here the parent's real path is made to differ.
    const at = fresh();
    const realpath = vi.spyOn(promises, 'realpath').mockResolvedValueOnce('/elsewhere');
    try {
      await expect(pinDirectory(at, replaced)).rejects.toThrow(`replaced (it now leads to ${at})`);
    } finally {
      realpath.mockRestore();
    }
  });
});
