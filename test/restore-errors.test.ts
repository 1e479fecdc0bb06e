// A restore that the file system refuses (disk full, read-only, no permission) fails with
// one line that says where and why, and leaves nothing behind.

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { backupTenant } from '../shared/backup/backup.js';
import { CorruptArchiveError, describeError, FileSystemError } from '../shared/errors.js';
import { restoreTenant, restoreWriteError } from '../shared/restore/restore.js';
import { LocalFileLocation } from '../shared/storage/local.js';
import { onTmpfs } from './helpers/tmpfs.js';
import { cliPath, tempDir } from './helpers/tree.js';

function errno(code: string, message: string, extra: Partial<NodeJS.ErrnoException> = {}): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code, ...extra });
}

describe('restoreWriteError', () => {
  it('names the base dir and the reason for a full disk, and keeps the system error as its cause', () => {
    const cause = errno('ENOSPC', 'ENOSPC: no space left on device, write');
    const error = restoreWriteError(cause, '/srv/tenants');
    expect(error).toBeInstanceOf(FileSystemError);
    expect(describeError(error)).toBe('cannot write the restored tenant under /srv/tenants: no space left on the device');
    expect((error as Error).cause).toBe(cause);
  });

  it('names a quota exceeded, which Node 20 reports as UNKNOWN (a writer thread\'s write) with its errno only', () => {
    const error = restoreWriteError(errno('UNKNOWN', 'UNKNOWN: unknown error, write', { errno: -122, syscall: 'write' }), '/srv/tenants');
    expect(describeError(error)).toBe('cannot write the restored tenant under /srv/tenants: disk quota exceeded');
  });

  // Under `ulimit -f` Node gets EFBIG (it ignores SIGXFSZ), and under `ulimit -n` EMFILE: the
  // line names the limit to raise, not only the file system.
  it('names the limits a file too large or too many open files may come from', () => {
    expect(describeError(restoreWriteError(errno('EFBIG', 'EFBIG: file too large, write'), '/srv/tenants'))).toBe(
      'cannot write the restored tenant under /srv/tenants: a file is larger than this file system or the file-size limit (ulimit -f) allows',
    );
    expect(describeError(restoreWriteError(errno('EMFILE', 'EMFILE: too many open files, open'), '/srv/tenants'))).toBe(
      'cannot write the restored tenant under /srv/tenants: too many open files (raise the open-file limit: ulimit -n)',
    );
  });

  // What `new Worker()` throws when no thread can be made (a backup's reader, a restore's
  // writers) under a user's small `ulimit -u`: it read "unexpected error: ERR_WORKER_INIT_FAILED: EAGAIN".
  it('says that a thread could not start for the process limit', () => {
    expect(describeError(Object.assign(new Error('EAGAIN'), { code: 'ERR_WORKER_INIT_FAILED' }))).toBe(
      'cannot start a thread: the limit of processes and threads is reached (raise it: ulimit -u)',
    );
  });

  it('adds the path the call was about when there is one', () => {
    const error = restoreWriteError(errno('EACCES', 'EACCES: permission denied, mkdir', { path: '/srv/tenants/.openclaw-staging-acme-1' }), '/srv/tenants');
    expect(describeError(error)).toBe('cannot write the restored tenant under /srv/tenants: permission denied (/srv/tenants/.openclaw-staging-acme-1)');
  });

  it('passes our own errors and unknown system errors through unchanged', () => {
    const ours = new CorruptArchiveError('the archive is damaged');
    expect(restoreWriteError(ours, '/srv/tenants')).toBe(ours);
    const odd = errno('EWEIRD', 'EWEIRD: something else');
    expect(restoreWriteError(odd, '/srv/tenants')).toBe(odd);
    expect(describeError(odd)).toBe('unexpected error: EWEIRD: something else');
  });

  // Any errno the table does not name (a file system that refuses a name: EINVAL on vfat or
  // SMB, EILSEQ on ZFS utf8only) shows Node's message, which quotes the path raw.
  it('shows the paths of an unknown system error escaped, whole, like every name (not cut at a newline in one)', () => {
    const where = '/srv/tenants/.openclaw-staging-acme-1/a\nb\\c';
    const odd = errno('EINVAL', `EINVAL: invalid argument, open '${where}'`, { path: where, syscall: 'open' });
    expect(restoreWriteError(odd, '/srv/tenants')).toBe(odd);
    expect(describeError(odd)).toBe('unexpected error: EINVAL: invalid argument, open "/srv/tenants/.openclaw-staging-acme-1/a\\nb\\\\c"');
    const dest = '/srv/tenants/x/h\r';
    const link = errno('EXDEV', `EXDEV: cross-device link not permitted, link '${where}' -> '${dest}'`, { path: where, dest } as Partial<NodeJS.ErrnoException>);
    expect(describeError(link)).toBe(
      'unexpected error: EXDEV: cross-device link not permitted, link "/srv/tenants/.openclaw-staging-acme-1/a\\nb\\\\c" -> "/srv/tenants/x/h\\r"',
    );
  });
});

describe('restore onto a full disk', () => {
  let dir = '';
  let archive = '';

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'restore-errors-'));
    archive = path.join(dir, 'acme.tar.zst');
    const base = path.join(dir, 'source');
    mkdirSync(path.join(base, 'acme', 'media'), { recursive: true });
    // 12 MiB of tree in a few KiB of archive: more than the 4 MiB file system holds.
    for (let i = 0; i < 12; i++) writeFileSync(path.join(base, 'acme', 'media', `${i}.bin`), Buffer.alloc(1 << 20, i));
    await backupTenant({ tenantsDir: base, tenant: 'acme', location: new LocalFileLocation(archive) });
  });
  afterAll(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  // Mounted by the test itself (onTmpfs), so a run that filters it out (vitest -t) mounts nothing.
  it.for(['sync', 'worker'] as const)('fails with one line and leaves the base dir empty (%s writer)', async (writer, context) => {
    await onTmpfs(context, path.join(dir, `small-${writer}`), 'size=4m', async (small) => {
      const tenantsDir = path.join(small, `tenants-${writer}`);
      const outcome = await restoreTenant({
        tenantsDir,
        location: new LocalFileLocation(archive),
        ...(writer === 'worker' && { workerThresholdBytes: 0 }),
      }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(outcome).toBeInstanceOf(FileSystemError);
      expect(describeError(outcome)).toBe(`cannot write the restored tenant under ${tenantsDir}: no space left on the device`);
      expect(readdirSync(small)).toEqual([]);
    });
  });
});

describe('a restore as root where procfs is not mounted', () => {
  const noProcfs = (base: string, ...args: string[]) =>
    // A mount namespace of its own, /proc unmounted there only.
    spawnSync('unshare', ['-m', 'sh', '-c', 'umount -l /proc && exec "$@"', 'sh', process.execPath, cliPath, '--tenants-dir', path.join(base, 'tenants'), ...args], { encoding: 'utf8' });

  it('is refused in one line before anything is touched: the old tree could be removed only by paths, following a directory the tenant swaps for a symlink (as root: deleting outside the tenant); a leftover tree is not removed by paths either', async (context) => {
    if (process.geteuid?.() !== 0 || spawnSync('unshare', ['-m', 'true']).status !== 0) context.skip('needs root and unshare');
    const base = tempDir('openclaw-no-procfs-');
    try {
      const tenants = path.join(base.path, 'tenants');
      mkdirSync(path.join(tenants, 'acme', 'd'), { recursive: true });
      writeFileSync(path.join(tenants, 'acme', 'd', 'f'), 'old');
      const archive = path.join(base.path, 'acme.tar.zst');
      await backupTenant({ tenantsDir: tenants, tenant: 'acme', location: new LocalFileLocation(archive) });
      const run = noProcfs(base.path, 'tenants', 'restore', '--from', archive, '--force');
      expect(run.stderr).toBe(
        'openclaw: cannot restore as root: procfs is not mounted at /proc, without which a directory a tenant swaps for a symlink while its old tree is removed cannot be told from its own (it could delete files outside the tenant); mount /proc, or run the restore as the tenants\' user\n',
      );
      expect(run.status).toBe(1);
      expect(readdirSync(tenants)).toEqual(['acme']);
      expect(readdirSync(path.join(tenants, 'acme', 'd'))).toEqual(['f']);
      // A dry run writes nothing, so it runs.
      expect(noProcfs(base.path, 'tenants', 'restore', '--from', archive, '--dry-run').stdout).toContain('it would REPLACE the tenant there now');

      // An old tenant an interrupted restore left in trash: recovery does not remove it by paths.
      const trash = path.join(tenants, '.openclaw-trash-acme-0123456789ab');
      mkdirSync(path.join(trash, 'd'), { recursive: true });
      const recover = noProcfs(base.path, 'tenants', 'recover', 'acme');
      expect(recover.stderr).toBe(`openclaw: ${trash} was not removed: as root without procfs mounted at /proc a directory swapped for a symlink meanwhile cannot be told from its own; mount /proc, then run the command again\n`);
      expect(recover.status).toBe(1);
      expect(readdirSync(path.join(trash))).toEqual(['d']);
    } finally {
      base.cleanup();
    }
  });
});
