import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { AbortedError, DestinationExistsError, StorageError } from '../shared/errors.js';
import { LocalFileLocation } from '../shared/storage/local.js';
import type { ArchiveLocation } from '../shared/storage/types.js';
import { onTmpfs } from './helpers/tmpfs.js';
import { bodyOf, describeStorageContract, failingBody, readAll, stallingBody, writeOptions } from './storage-contract.js';

/** Runs once before the next `open` of node:fs/promises (the archive's temporary file is opened with it). */
const beforeNextOpen = vi.hoisted(() => ({ hook: undefined as undefined | (() => Promise<void>) }));
/** While set, `link` of node:fs/promises fails with this code, as on a file system without hard links. */
const linkFails = vi.hoisted(() => ({ code: undefined as undefined | string }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  const open: typeof actual.open = async (...args) => {
    const hook = beforeNextOpen.hook;
    beforeNextOpen.hook = undefined;
    await hook?.();
    return actual.open(...args);
  };
  const link: typeof actual.link = async (...args) => {
    if (linkFails.code !== undefined) throw Object.assign(new Error(`${linkFails.code}: link`), { code: linkFails.code });
    return actual.link(...args);
  };
  return { ...actual, default: { ...actual, open, link }, open, link };
});

let base: string;
beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'openclaw-local-'));
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

/** Hidden temporary files beside the archive. */
async function temporaryFiles(location: ArchiveLocation): Promise<string[]> {
  const directory = dirname((location as LocalFileLocation).path);
  const names = await readdir(directory).catch(() => []);
  return names.filter((name) => name.startsWith('.'));
}

describeStorageContract('local file', { largeBytes: 50 * 1024 * 1024, atomicNoClobber: true }, () => ({
  location: (name) => new LocalFileLocation(join(base, 'contract', name)),
  leftovers: temporaryFiles,
}));

describe('LocalFileLocation', () => {
  it('creates missing parent directories, like mkdir -p', async () => {
    const location = new LocalFileLocation(join(base, 'deep', 'er', 'acme.tar.zst'));
    await location.checkWritable({ overwrite: false });
    await location.write(bodyOf(Buffer.from('data')), writeOptions());
    expect(await readFile(location.path, 'utf8')).toBe('data');
  });

  it('creates the missing directories owner-only, under umask 000 too (another user could otherwise swap the archives)', async () => {
    const before = process.umask(0);
    try {
      const location = new LocalFileLocation(join(base, 'open', 'acme', 'x.tar.zst'));
      await location.write(bodyOf(Buffer.from('data')), writeOptions());
      expect((await stat(join(base, 'open'))).mode & 0o7777).toBe(0o700);
      expect((await stat(join(base, 'open', 'acme'))).mode & 0o7777).toBe(0o700);
      expect((await stat(location.path)).mode & 0o7777).toBe(0o600);
    } finally {
      process.umask(before);
    }
  });

  // A backup frozen past the stale interval has its temporary file removed by another host's
  // sweep; resumed, its commit said the directory "takes no new files: give a path on a disk".
  // Without hard links (EPERM: some FUSE and network file systems) the commit renames instead.
  for (const [overwrite, noHardLinks] of [[false, false], [true, false], [false, true]]) {
    it(`says its temporary file was removed before it was complete, and stores nothing${overwrite ? ' (--overwrite)' : ''}${noHardLinks ? ' (no hard links)' : ''}`, async () => {
      const location = new LocalFileLocation(join(base, `swept-${overwrite}-${noHardLinks}`, 'acme.tar.zst'));
      const directory = dirname(location.path);
      async function* body(): AsyncGenerator<Buffer> {
        yield Buffer.from('archive bytes so far');
        for (const name of await readdir(directory)) if (name.endsWith('.partial')) await rm(join(directory, name));
        yield Buffer.from('and the rest');
      }
      if (noHardLinks) linkFails.code = 'EPERM';
      const failed = await location
        .write(Readable.from(body()), writeOptions({ overwrite }))
        .catch((error: unknown) => error)
        .finally(() => (linkFails.code = undefined));
      expect(failed).toBeInstanceOf(StorageError);
      expect((failed as Error).message).toMatch(
        new RegExp(`^cannot write ${location.path}: its temporary file ${directory}/\\.acme\\.tar\\.zst\\..*\\.partial was removed before it was complete \\(by a command that judged this process gone: was it stopped or frozen for more than 60 s\\?\\): nothing was stored; back up again$`),
      );
      expect(existsSync(location.path)).toBe(false);
    });
  }

  it('stores archives with mode 0600', async () => {
    const location = new LocalFileLocation(join(base, 'mode.tar.zst'));
    await location.write(bodyOf(Buffer.from('secret')), writeOptions());
    expect((await stat(location.path)).mode & 0o777).toBe(0o600);
  });

  it('shows the absolute path', () => {
    const location = new LocalFileLocation('relative/acme.tar.zst');
    expect(location.display).toBe(join(process.cwd(), 'relative/acme.tar.zst'));
  });

  it('refuses a directory as the archive', async () => {
    const path = join(base, 'a-directory');
    await mkdir(path);
    const location = new LocalFileLocation(path);
    await expect(location.checkWritable({ overwrite: true })).rejects.toMatchObject({ code: 'NOT_A_FILE' });
    await expect(location.read()).rejects.toMatchObject({ code: 'NOT_A_FILE' });
    await expect(location.write(bodyOf(Buffer.from('x')), writeOptions())).rejects.toBeInstanceOf(DestinationExistsError);
  });

  it('refuses a FIFO as the archive at once, though nothing writes to it (opening it blocked for good, SIGTERM too)', async () => {
    const path = join(base, 'fifo.tar.zst');
    execFileSync('mkfifo', [path]);
    await expect(new LocalFileLocation(path).read()).rejects.toMatchObject({ code: 'NOT_A_FILE' });
  });

  it('refuses a path below a file, with a clear StorageError', async () => {
    await writeFile(join(base, 'plain-file'), 'x');
    const location = new LocalFileLocation(join(base, 'plain-file', 'acme.tar.zst'));
    const error = await location.checkWritable({ overwrite: false }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).message).toMatch(/not a directory/);
    await expect(location.write(bodyOf(Buffer.from('x')), writeOptions())).rejects.toBeInstanceOf(StorageError);
  });

  it.skipIf(process.getuid?.() === 0)('reports a directory it may not write to as ACCESS_DENIED', async () => {
    const locked = join(base, 'locked');
    await mkdir(locked, { mode: 0o500 });
    const location = new LocalFileLocation(join(locked, 'acme.tar.zst'));
    await expect(location.checkWritable({ overwrite: false })).rejects.toMatchObject({ code: 'ACCESS_DENIED' });
    await chmod(locked, 0o700);
  });

  it('overwrites by rename, leaving no temporary file', async () => {
    const location = new LocalFileLocation(join(base, 'overwrite', 'acme.tar.zst'));
    await location.write(bodyOf(Buffer.from('one')), writeOptions());
    await location.write(bodyOf(Buffer.from('two')), writeOptions({ overwrite: true }));
    expect((await readAll(await location.read())).toString()).toBe('two');
    expect(await temporaryFiles(location)).toEqual([]);
  });

  it('removes the temporary file when the body fails after the first bytes reached the disk', async () => {
    await mkdir(join(base, 'fail'));
    const location = new LocalFileLocation(join(base, 'fail', 'acme.tar.zst'));
    const boom = new Error('boom');
    await expect(location.write(failingBody(1024 * 1024, boom), writeOptions())).rejects.toBe(boom);
    expect(await readdir(dirname(location.path))).toEqual([]);
  });

  describe('a failed or aborted write removes the directories it created, and only those', () => {
    it('when the body fails: the new a/b/c go, the empty directory that was there stays', async () => {
      const existing = join(base, 'made', 'empty');
      await mkdir(existing, { recursive: true });
      const location = new LocalFileLocation(join(existing, 'a', 'b', 'c', 'acme.tar.zst'));
      const boom = new Error('boom');
      await expect(location.write(failingBody(1024 * 1024, boom), writeOptions())).rejects.toBe(boom);
      expect(await readdir(existing)).toEqual([]);
    });

    it('when aborted (SIGINT, SIGTERM) while writing', async () => {
      const existing = join(base, 'aborted');
      await mkdir(existing);
      const location = new LocalFileLocation(join(existing, 'a', 'b', 'acme.tar.zst'));
      const controller = new AbortController();
      const writing = location.write(stallingBody(1024 * 1024, () => controller.abort()), writeOptions({ signal: controller.signal }));
      await expect(writing).rejects.toBeInstanceOf(AbortedError);
      expect(await readdir(existing)).toEqual([]);
    });

    it('keeps a directory it created once something else is in it', async () => {
      const existing = join(base, 'shared-parent');
      await mkdir(existing);
      const location = new LocalFileLocation(join(existing, 'a', 'b', 'acme.tar.zst'));
      const boom = new Error('boom');
      async function* body(): AsyncGenerator<Buffer> {
        yield Buffer.alloc(1024);
        await writeFile(join(existing, 'a', 'other.tar.zst'), 'x'); // another archive, beside b/
        throw boom;
      }
      await expect(location.write(Readable.from(body(), { objectMode: false }), writeOptions())).rejects.toBe(boom);
      expect(await readdir(existing)).toEqual(['a']);
      expect(await readdir(join(existing, 'a'))).toEqual(['other.tar.zst']);
    });

    it('makes the directory again when a failed writer beside it removed it before its temporary file was in it', async () => {
      const existing = join(base, 'raced');
      await mkdir(join(existing, 'a', 'b'), { recursive: true }); // the other writer's
      const location = new LocalFileLocation(join(existing, 'a', 'b', 'acme.tar.zst'));
      // The other writer (another tenant of a backup --all into the same new directory) failed
      // between our mkdir and our open, and removed the then empty directories it had made.
      beforeNextOpen.hook = () => rm(join(existing, 'a'), { recursive: true });
      await location.write(bodyOf(Buffer.from('data')), writeOptions());
      expect(beforeNextOpen.hook).toBeUndefined();
      expect(await readFile(location.path, 'utf8')).toBe('data');
    });

    it('on a full disk (a 1 MiB tmpfs; needs root to mount it)', (context) =>
      onTmpfs(context, join(base, 'small'), 'size=1m', async (small) => {
        await mkdir(join(small, 'empty'));
        const location = new LocalFileLocation(join(small, 'empty', 'a', 'b', 'c', 'acme.tar.zst'));
        const error = await location.write(failingBody(4 * 1024 * 1024, new Error('not reached')), writeOptions()).catch((e: unknown) => e);
        expect(error).toMatchObject({ code: 'NO_SPACE' });
        expect(await readdir(small)).toEqual(['empty']);
        expect(await readdir(join(small, 'empty'))).toEqual([]);
      }));

    it('when creating them fails part way: the levels made before the failure go', async () => {
      const existing = join(base, 'long');
      await mkdir(existing);
      const location = new LocalFileLocation(join(existing, 'a', 'x'.repeat(300), 'acme.tar.zst'));
      await expect(location.write(bodyOf(Buffer.from('data')), writeOptions())).rejects.toMatchObject({ code: 'NAME_TOO_LONG' });
      expect(await readdir(existing)).toEqual([]);
    });
  });

  describe('flush-behind', () => {
    const MiB = 1024 * 1024;
    let fileHandle: FileHandle;
    beforeAll(async () => {
      fileHandle = await open(join(base, 'probe'), 'w');
    });
    afterAll(() => fileHandle.close());
    afterEach(() => vi.restoreAllMocks());

    /** `bytes` bytes in 256 KiB chunks, each filled with its index. */
    function patternBody(bytes: number): Readable {
      return Readable.from(
        (function* () {
          for (let offset = 0, index = 0; offset < bytes; offset += 256 * 1024, index++) yield Buffer.alloc(Math.min(256 * 1024, bytes - offset), index);
        })(),
        { objectMode: false },
      );
    }

    it('sends the archive to disk while it is written, then fsyncs once before the commit', async () => {
      const prototype = Object.getPrototypeOf(fileHandle) as FileHandle;
      const datasync = vi.spyOn(prototype, 'datasync');
      const sync = vi.spyOn(prototype, 'sync');
      const location = new LocalFileLocation(join(base, 'flush', 'acme.tar.zst'), { flushBehindBytes: MiB });
      const result = await location.write(patternBody(8 * MiB + 3), writeOptions());
      expect(result.bytes).toBe(8 * MiB + 3);
      expect(datasync.mock.calls.length).toBeGreaterThanOrEqual(1);
      expect(datasync.mock.calls.length).toBeLessThanOrEqual(8);
      // The archive's own fsync, then the directory's.
      expect(sync).toHaveBeenCalledTimes(2);
      const stored = await readFile(location.path);
      expect(stored.length).toBe(8 * MiB + 3);
      expect(stored[5 * 256 * 1024]).toBe(5);
    });

    it('fails the write, leaving nothing behind, when a background flush fails', async () => {
      const prototype = Object.getPrototypeOf(fileHandle) as FileHandle;
      vi.spyOn(prototype, 'datasync').mockRejectedValueOnce(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO', syscall: 'fdatasync' }));
      const location = new LocalFileLocation(join(base, 'flush-fails', 'acme.tar.zst'), { flushBehindBytes: MiB });
      const error = await location.write(patternBody(4 * MiB), writeOptions()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StorageError);
      expect((error as Error).message).toMatch(/: input\/output error$/);
      expect(existsSync(dirname(location.path))).toBe(false); // made by the write, removed with it
    });

    // NFS and quotas may report a full disk only when the data reaches the server: at fsync or close.
    it('fails in one line, leaving nothing behind, when the final fsync finds the disk full', async () => {
      const prototype = Object.getPrototypeOf(fileHandle) as FileHandle;
      vi.spyOn(prototype, 'sync').mockRejectedValueOnce(Object.assign(new Error('ENOSPC: no space left on device, fsync'), { code: 'ENOSPC', errno: -28, syscall: 'fsync' }));
      const location = new LocalFileLocation(join(base, 'fsync-fails', 'acme.tar.zst'));
      const error = await location.write(patternBody(MiB), writeOptions()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StorageError);
      expect((error as StorageError).code).toBe('NO_SPACE');
      expect((error as Error).message).toBe(`cannot write ${location.path}: no space left on the device`);
      expect(existsSync(dirname(location.path))).toBe(false); // made by the write, removed with it
    });

    it('names a quota exceeded at fsync, an errno Node 20 has no name for', async () => {
      const prototype = Object.getPrototypeOf(fileHandle) as FileHandle;
      vi.spyOn(prototype, 'sync').mockRejectedValueOnce(
        Object.assign(new Error('Unknown system error -122: Unknown system error -122, fsync'), { code: 'Unknown system error -122', errno: -122, syscall: 'fsync' }),
      );
      const location = new LocalFileLocation(join(base, 'quota-fails', 'acme.tar.zst'));
      const error = await location.write(patternBody(MiB), writeOptions()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StorageError);
      expect((error as StorageError).code).toBe('NO_SPACE');
      expect((error as Error).message).toBe(`cannot write ${location.path}: disk quota exceeded`);
      expect(existsSync(dirname(location.path))).toBe(false); // made by the write, removed with it
    });
  });
});
