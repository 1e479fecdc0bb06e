// A backup that cannot read its tenant (a file or directory it may not read, an I/O error)
// fails with one line that names the tenant, the reason and the path, not "unexpected error".
// A tenant that vanishes during its backup (removed or renamed by the gateway) fails it as
// TENANT_NOT_FOUND and nothing is stored, instead of a "successful" backup of a few of its files.

import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, renameSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, describe, expect, it, vi } from 'vitest';

import { backupReadError, backupTenant } from '../shared/backup/backup.js';
import { createTenantArchive } from '../shared/backup/tenant-archive.js';
import { TempArea } from '../shared/backup/temp-area.js';
import { describeError, FileSystemError, StorageError, TenantNotFoundError } from '../shared/errors.js';
import { SYNC_ACCESS, type FileAccess } from '../shared/file-access.js';
import { LocalFileLocation } from '../shared/storage/local.js';
import { MemoryLocation, MemoryStore } from '../shared/storage/memory.js';
import type { WriteResult } from '../shared/storage/types.js';
import { createSampleTenant } from '../scripts/sample-tenant.js';
import { cliPath, tempDir } from './helpers/tree.js';

function errno(code: string, message: string, extra: Partial<NodeJS.ErrnoException> = {}): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code, ...extra });
}

describe('backupReadError', () => {
  it('names the tenant, the reason and the path of a file it may not read, and keeps the system error as its cause', () => {
    const cause = errno('EACCES', "EACCES: permission denied, open '/srv/tenants/acme/config.json'", { path: '/srv/tenants/acme/config.json', syscall: 'open' });
    const error = backupReadError(cause, 'acme');
    expect(error).toBeInstanceOf(FileSystemError);
    expect(describeError(error)).toBe('cannot back up tenant "acme": permission denied (/srv/tenants/acme/config.json)');
    expect((error as Error).cause).toBe(cause);
  });

  it('names the call when the error has no path (a read on an open file)', () => {
    const error = backupReadError(errno('EIO', 'EIO: i/o error, read', { syscall: 'read' }), 'acme');
    expect(describeError(error)).toBe('cannot back up tenant "acme": input/output error (read)');
  });

  it('passes our own errors and unknown system errors through unchanged', () => {
    const ours = new StorageError('cannot write /backups/acme.tar.zst: no space left on the device', 'NO_SPACE');
    expect(backupReadError(ours, 'acme')).toBe(ours);
    const odd = errno('EWEIRD', 'EWEIRD: something else');
    expect(backupReadError(odd, 'acme')).toBe(odd);
  });
});

describe('a tenant that vanishes during its backup', () => {
  const dir = tempDir('openclaw-vanish-');
  afterAll(() => dir.cleanup());

  /** A tenant of `files` incompressible files of 256 KiB: more than a few 2 MiB frames, so chunks come out while it is walked. */
  function makeTenant(base: string, files = 48): string {
    const root = path.join(base, 'acme');
    mkdirSync(path.join(root, 'workspace'), { recursive: true });
    for (let index = 0; index < files; index++) writeFileSync(path.join(root, 'workspace', `blob-${String(index).padStart(2, '0')}.bin`), randomBytes(256 * 1024));
    return root;
  }

  async function drain(chunks: AsyncIterable<Buffer>): Promise<void> {
    for await (const chunk of chunks) void chunk;
  }

  it('fails as TENANT_NOT_FOUND when the tenant is gone before its walk begins', async () => {
    const archive = createTenantArchive({ tenantDir: path.join(dir.path, 'none', 'acme'), tenant: 'acme', createdAt: new Date() });
    await expect(drain(archive.chunks)).rejects.toThrow(TenantNotFoundError);
    await expect(archive.summary).rejects.toThrow(/^tenant "acme" vanished from .*none during its backup \(removed or renamed\); nothing was stored$/);
  });

  it.each([
    ['renamed away', (root: string) => renameSync(root, `${root}-moved`)],
    ['replaced by another directory', (root: string) => (renameSync(root, `${root}-old`), mkdirSync(root))],
  ])('fails the archive when the tenant is %s mid-walk', async (what, change) => {
    const root = makeTenant(path.join(dir.path, what.replaceAll(' ', '-')), 4);
    let changed = false;
    const archive = createTenantArchive({
      tenantDir: root,
      tenant: 'acme',
      createdAt: new Date(),
      onProgress: () => {
        if (!changed) change(root);
        changed = true;
      },
    });
    await expect(drain(archive.chunks)).rejects.toThrow(TenantNotFoundError);
    await expect(archive.summary).rejects.toThrow(/vanished .* during its backup/);
  });

  it('stores nothing, not even a temporary file, when the tenant is removed during a backup', async () => {
    const base = path.join(dir.path, 'removed');
    const root = makeTenant(base);
    const out = path.join(dir.path, 'removed-out');
    mkdirSync(out);
    let moved = false;
    const backup = backupTenant({
      tenantsDir: base,
      tenant: 'acme',
      location: new LocalFileLocation(path.join(out, 'acme.tar.zst')),
      onProgress: () => {
        if (!moved) renameSync(root, path.join(dir.path, 'acme-elsewhere'));
        moved = true;
      },
    });
    await expect(backup).rejects.toThrow(TenantNotFoundError);
    expect(moved).toBe(true);
    expect(readdirSync(out)).toEqual([]);
    expect(readdirSync(base)).toEqual([]);
  });
});

describe('a backup as root where procfs is not mounted', () => {
  it('is refused in one line, nothing stored: nothing could tell a directory the tenant swapped for a symlink (a racing tenant had 13 of 40 backups archive files from outside it)', (context) => {
    if (process.geteuid?.() !== 0 || spawnSync('unshare', ['-m', 'true']).status !== 0) context.skip('needs root and unshare');
    const base = tempDir('openclaw-no-procfs-');
    try {
      mkdirSync(path.join(base.path, 'tenants', 'acme', 'd'), { recursive: true });
      writeFileSync(path.join(base.path, 'tenants', 'acme', 'd', 'f'), 'x');
      const archive = path.join(base.path, 'acme.tar.zst');
      // A mount namespace of its own, /proc unmounted there only.
      const run = spawnSync('unshare', ['-m', 'sh', '-c', 'umount -l /proc && exec "$@"', 'sh', process.execPath, cliPath, '--tenants-dir', path.join(base.path, 'tenants'), 'tenants', 'backup', 'acme', '--to', archive], { encoding: 'utf8' });
      expect(run.stderr).toBe(
        'openclaw: cannot back up tenant "acme" as root: procfs is not mounted at /proc, without which a directory the tenant swaps for a symlink during the backup cannot be told from its own (it could archive files from outside the tenant); mount /proc, or run the backup as the tenants\' user\n',
      );
      expect(run.status).toBe(1);
      expect(readdirSync(base.path)).toEqual(['tenants']);
    } finally {
      base.cleanup();
    }
  });
});

describe('a backup as root of a tenant holding a FUSE mount its process made without allow_other', () => {
  it('leaves the mount point out with one warning, instead of failing on permission denied (named by a procfs path)', (context) => {
    const tools = ['unshare', 'bindfs', 'fusermount3', 'setpriv', 'mknod'];
    if (process.geteuid?.() !== 0 || !existsSync('/dev/fuse') || tools.some((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0)) {
      return context.skip('needs root, /dev/fuse, unshare, bindfs, fusermount3, setpriv and mknod');
    }
    const base = tempDir('openclaw-fuse-');
    try {
      const tenant = path.join(base.path, 'tenants', 'acme');
      mkdirSync(path.join(tenant, 'mounted'), { recursive: true });
      mkdirSync(path.join(base.path, 'source'));
      writeFileSync(path.join(tenant, 'own'), 'the tenant\'s');
      writeFileSync(path.join(base.path, 'source', 'theirs'), 'served by the tenant\'s FUSE daemon');
      execFileSync('chown', ['-R', '1000:1000', base.path]);
      const archive = path.join(base.path, 'acme.tar.zst');
      // In a mount namespace of its own: /dev/fuse made usable by the tenant's user there only
      // (a device node of the same number), the FUSE mount made as that user, then the backup as root.
      const script = [
        'set -e',
        'mknod -m 666 "$BASE/fuse" c 10 229',
        'mount --bind "$BASE/fuse" /dev/fuse',
        'setpriv --reuid 1000 --regid 1000 --clear-groups bindfs --no-allow-other "$BASE/source" "$BASE/tenants/acme/mounted"',
        'set +e',
        '"$@"; status=$?',
        'fusermount3 -u "$BASE/tenants/acme/mounted"',
        'exit $status',
      ].join('\n');
      const run = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', process.execPath, cliPath, '--tenants-dir', path.join(base.path, 'tenants'), '--json', 'tenants', 'backup', 'acme', '--to', archive], {
        encoding: 'utf8',
        env: { ...process.env, BASE: base.path },
      });
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      const result = JSON.parse(run.stdout) as { warnings: unknown[]; files: number };
      expect(result.warnings).toEqual([{ path: 'mounted', reason: 'mount point root may not read (a FUSE mount made without allow_other): not archived, nor what is mounted on it' }]);
      expect(result.files).toBe(1);
    } finally {
      base.cleanup();
    }
  });
});

// A store that stops reading the archive's stream without closing it (an S3 upload aborted
// at the Lambda deadline does so): the archive's walk waited on the stream for good, and its
// scratch area under os.tmpdir() (the databases' snapshots) stayed for the life of the
// process, where no sweep removes it (its owner is alive): a warm Lambda's /tmp filled up
// abort by abort (reproduced with the bundled function, /tmp a 64 MiB tmpfs: a 20 MiB
// snapshot left after the ABORTED answer, still there 30 s later).
describe('a store that stops reading the archive', () => {
  const dir = tempDir('openclaw-stops-reading-');
  afterAll(() => {
    vi.unstubAllEnvs();
    dir.cleanup();
  });

  class StopsReading extends MemoryLocation {
    scratchWhenStopped: string[] = [];
    constructor(private readonly tmp: string) {
      super(new MemoryStore(), 'acme');
    }
    override async write(body: Readable): Promise<WriteResult> {
      // Past the tenant's databases (memory/ comes before workspace/), then no more reads, and no close.
      await new Promise<void>((resolve) => {
        let seen = 0;
        const onData = (chunk: Buffer) => {
          seen += chunk.length;
          if (seen < 4 * 1024 * 1024) return;
          body.pause();
          body.off('data', onData);
          resolve();
        };
        body.on('data', onData);
      });
      this.scratchWhenStopped = readdirSync(this.tmp);
      throw new StorageError('the upload was aborted', 'STORAGE');
    }
  }

  it('stops the walk and removes its scratch area before the backup fails', async () => {
    const base = path.join(dir.path, 'base');
    const tmp = path.join(dir.path, 'tmp');
    mkdirSync(tmp, { recursive: true });
    createSampleTenant(path.join(base, 'acme'), { sessions: 1, memoryRows: 20, mediaFiles: 0 });
    mkdirSync(path.join(base, 'acme', 'workspace', 'media'), { recursive: true });
    for (let index = 0; index < 48; index++) writeFileSync(path.join(base, 'acme', 'workspace', 'media', `blob-${index}.bin`), randomBytes(1024 * 1024));
    vi.stubEnv('TMPDIR', tmp);
    const location = new StopsReading(tmp);
    await expect(backupTenant({ tenantsDir: base, tenant: 'acme', location })).rejects.toThrow('the upload was aborted');
    expect(location.scratchWhenStopped).toEqual([expect.stringMatching(/^openclaw-backup-/)]);
    expect(readdirSync(tmp)).toEqual([]);
  });
});

describe('a backup stopped by its signal', () => {
  const dir = tempDir('openclaw-stopped-backup-');
  afterAll(() => dir.cleanup());

  // The signal (the Lambda's deadline) was seen only when the store read the archive's next
  // chunk: a frame holds 2 MiB of tar, thousands of small files, read on for seconds on EFS
  // after it fired (from the bundle on a 3 ms mount: 2.5 s past the deadline).
  it('stops the walk at its next entry, not at the next frame the store reads', async () => {
    const root = path.join(dir.path, 'base', 'acme');
    // 60 directories of 50 small notes: a 2 MiB frame of tar holds some 40 of them.
    for (let index = 0; index < 3000; index++) {
      const sub = path.join(root, 'notes', `d${String(index % 60).padStart(2, '0')}`);
      mkdirSync(sub, { recursive: true });
      writeFileSync(path.join(sub, `n${index}.txt`), `note ${index}\n`.repeat(8));
    }
    const stop = new AbortController();
    let listed = 0;
    let listedWhenStopped = 0;
    const fileAccess: FileAccess = {
      ...SYNC_ACCESS,
      openDirectory: (directory) => {
        if (++listed === 8) {
          listedWhenStopped = listed;
          stop.abort();
        }
        return SYNC_ACCESS.openDirectory(directory);
      },
    };
    const location = new MemoryLocation(new MemoryStore(), 'acme');
    await expect(backupTenant({ tenantsDir: path.join(dir.path, 'base'), tenant: 'acme', location, signal: stop.signal, fileAccess })).rejects.toMatchObject({ code: 'ABORTED' });
    expect(listedWhenStopped).toBe(8);
    // The walk lists a few directories ahead of the entry it archives (54 more were listed before).
    expect(listed - listedWhenStopped).toBeLessThan(10);
  });

  // A large file modified within the last minute is copied whole to a spool before it is
  // archived (its size must hold still): the copy did not look at the signal, and a 4 GiB
  // sparse file read cold went on copying for 17 s after the deadline (the Lambda's answer
  // and its completion event lost, the CLI's SIGINT waited on).
  it('stops copying a recently modified large file to its spool once stopped', async () => {
    const root = path.join(dir.path, 'spooled', 'acme');
    mkdirSync(root, { recursive: true });
    const big = path.join(root, 'big.bin');
    const size = 64 * 1024 * 1024;
    writeFileSync(big, 'recently written\n');
    truncateSync(big, size);
    const stopped = new Error('stopped');
    const temp = TempArea.underTmpdir(dir.path);
    const spooledBytes: number[] = [];
    const newFile = temp.file.bind(temp);
    const remove = temp.remove.bind(temp);
    temp.file = async (label) => {
      // The spool about to be written: stop the backup now, as its deadline would.
      if (label === 'spool') archive.abort(stopped);
      return newFile(label);
    };
    temp.remove = async (file) => {
      spooledBytes.push(lstatSync(file).size);
      await remove(file);
    };
    const archive = createTenantArchive({ tenantDir: root, tenant: 'acme', createdAt: new Date(), temp });
    const drained = (async () => {
      for await (const chunk of archive.chunks) void chunk;
    })();
    await Promise.all([expect(archive.summary).rejects.toBe(stopped), expect(drained).rejects.toBe(stopped)]);
    expect(spooledBytes).toEqual([0]);
  });

  // So is the private copy of a database in use when its writers may be on another host (the
  // Lambda functions on EFS): the database and its -wal are copied whole first.
  it('stops copying a database in use to its private copy once stopped', async () => {
    const root = path.join(dir.path, 'private', 'acme');
    mkdirSync(root, { recursive: true });
    const database = path.join(root, 'big.sqlite');
    const size = 64 * 1024 * 1024;
    writeFileSync(database, Buffer.concat([Buffer.from('SQLite format 3\0'), Buffer.alloc(84)]));
    truncateSync(database, size);
    writeFileSync(`${database}-wal`, '');
    const stopped = new Error('stopped');
    const temp = TempArea.underTmpdir(dir.path);
    const copiedBytes: number[] = [];
    const newFile = temp.file.bind(temp);
    const remove = temp.remove.bind(temp);
    temp.file = async (label) => {
      if (label === 'private-copy.sqlite') archive.abort(stopped);
      return newFile(label);
    };
    temp.remove = async (file) => {
      if (file.endsWith('private-copy.sqlite')) copiedBytes.push(lstatSync(file).size);
      await remove(file);
    };
    const archive = createTenantArchive({ tenantDir: root, tenant: 'acme', createdAt: new Date(), temp, sqlite: { writers: 'cross-host' } });
    const drained = (async () => {
      for await (const chunk of archive.chunks) void chunk;
    })();
    await Promise.all([expect(archive.summary).rejects.toBe(stopped), expect(drained).rejects.toBe(stopped)]);
    expect(copiedBytes).toEqual([0]);
  });
});
