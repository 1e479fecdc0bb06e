// A backup archive in a local file. Writes never expose a half-written archive: the bytes
// go to a hidden temporary file beside the target (same directory, so the same file
// system), the byte count is checked against the file's size, the file is fsynced, and
// only then committed: `link(temp, final)` when overwriting is not allowed (atomic and
// refuses to clobber, even against a concurrent writer) or `rename` when it is, followed
// by an fsync of the directory so the new name survives a crash. Any failure or abort
// removes the temporary file. A missing parent directory is created (like `mkdir -p`),
// which is what users of backup tools expect from `--to /var/backups/acme/x.tar.zst`; a
// failure or abort removes again those it created that are still empty.
// Archives are created with mode 0600: they hold a tenant's private data; and the directories
// created for them with 0700, whatever the umask: under umask 000 `mkdir -p` makes them 0777,
// where any local user could delete, replace or plant archives (one a later restore reads).
// An existing directory is the operator's and keeps its mode.
//
// A killed process cannot remove its temporary file. Linux's O_TMPFILE would leave none,
// but Node exposes neither the flag nor linkat(AT_SYMLINK_FOLLOW) to give the file a name
// (link() of /proc/self/fd/N fails with EXDEV), so the temporary file carries its owner in
// its name instead (`.<archive>.<pid>-<start>-<host>.<random>.partial`, process-owner.ts)
// and its writer touches it every HEARTBEAT_MS: the next write into the same
// directory removes those whose owner is provably gone.
//
// `tenants verify` records a verification beside the archive in a hidden file,
// `.<archive>.openclaw-verified` (verified-mark.ts says what it holds); it names the
// archive's size and mtime, so a mark outlives no change of the archive. It is written only
// for the file that was read: an archive renamed over the path while it was verified (a
// `backup --overwrite` finishing meanwhile) is not marked, and neither are the size and mtime
// of that newer file, which nobody verified (they were, and its mark then listed it verified
// with the older archive's digest and creation time). The mark is written to a temporary
// file named like a temporary archive (owner and all), then renamed.

import { randomBytes } from 'node:crypto';
import { constants as fsConstants, existsSync } from 'node:fs';
import { link, lstat, open, readdir, rename, stat, statfs, unlink, type FileHandle } from 'node:fs/promises';
import type { Stats, StatsFs } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createDirectories, removeCreatedDirectories } from '../created-directories.js';
import { crashPoint } from '../crash-points.js';
import { isFull, whyNotWritable } from '../file-system-kind.js';
import { DestinationExistsError, errnoCode, errnoMessage, OpenClawError, StorageError, type StorageCode } from '../errors.js';
import { releasable, release } from '../released-buffers.js';
import { renameNoReplace } from './rename-no-replace.js';
import { escapedNameHint } from '../format.js';
import { syncDirectory } from '../sync-directory.js';
import { writeWhole } from '../write-whole.js';
import { FileSystemClock, HEARTBEAT_MS, isOwnerGone, OWNER_TAG_PATTERN, ownerTag, parseOwnerTag, STALE_AFTER_MS, touchWithFileSystemClock } from '../tenant/process-owner.js';
import { abortedError, destroyQuietly, guardReadable, holdErrors, isAbortError, throwIfAborted } from './streams.js';
import { MANIFEST_DIGEST_METADATA_KEY, type ArchiveLocation, type ArchiveMetadata, type CheckWritableOptions, type ReadOptions, type VerifiedMark, type WriteOptions, type WriteResult } from './types.js';
import { AGE_MAGIC_BYTES, isAgeFile, isArmoredAgeFile } from '../age/probe.js';
import { formatLocalMark, formatLocalStoredRecord, markNotTrusted, verifiedMarkPath } from './verified-mark.js';

/** The first bytes of a written archive looked at: whether it is an age file. */
const HEAD_PEEK_BYTES = AGE_MAGIC_BYTES;

/** The StorageError code of a file system failure, by errno. */
const STORAGE_CODES: Readonly<Record<string, StorageCode>> = {
  EACCES: 'ACCESS_DENIED',
  EPERM: 'ACCESS_DENIED',
  ENOSPC: 'NO_SPACE',
  EDQUOT: 'NO_SPACE',
  EROFS: 'READ_ONLY',
  ENAMETOOLONG: 'NAME_TOO_LONG',
};

/** File mode of archives and their temporary files. */
export const ARCHIVE_FILE_MODE = 0o600;
/** Mode of the directories a write creates on the archive's way (the umask may take more away, never less). */
export const ARCHIVE_DIRECTORY_MODE = 0o700;

// Hard links are not available everywhere (some FUSE, SMB and FAT mounts): there the
// commit falls back to a rename that never replaces (renameNoReplace: renameat2 through mv).
const LINK_UNSUPPORTED = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);
/**
 * While an archive is written, its pages are sent to disk every this many bytes (an fdatasync
 * in the background), so the fsync before the commit waits for the tail only: the kernel
 * would otherwise keep hundreds of MiB dirty until then (its background writeback starts at
 * 10% of RAM), and a 370 MiB archive took 0.26 s to fsync at the end.
 */
export const FLUSH_BEHIND_BYTES = 64 * 1024 * 1024;
/** `.<archive>.<owner>.<random>.partial`: a temporary archive and the process writing it. */
const PARTIAL_NAME = new RegExp(`^\\..*\\.(${OWNER_TAG_PATTERN})\\.[0-9a-f]{12}\\.partial$`);
/** Bytes read ahead of the reader: whole zstd frames, so decoding never waits on a chain of small reads. */
const READ_AHEAD_BYTES = 2 * 1024 * 1024;

export interface LocalFileOptions {
  /** @default FLUSH_BEHIND_BYTES */
  readonly flushBehindBytes?: number;
  /**
   * Directories whose dead writers' temporary archives were removed already in this run,
   * shared by its locations (`backup --all` into one directory: listed once, not once per
   * tenant); the directories this location sweeps are added. Absent: swept on every write.
   */
  readonly sweptDirectories?: Set<string>;
}

/**
 * What tells one archive file from another at the same path: what its mark names (size and
 * mtime), and the inode's change time, which no one sets (a file renamed over the path with
 * the same size and an mtime copied by `touch -r` differs in it); not the inode, which a FUSE
 * file system may number anew on each look at one file.
 */
interface ArchiveIdentity {
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
}

function sameArchive(a: ArchiveIdentity, b: ArchiveIdentity): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

/** What a path that is no file, directory or symlink is, as a message names it. */
function nonFileKind(info: Stats): string {
  return info.isCharacterDevice() ? 'a character device' : info.isBlockDevice() ? 'a block device' : info.isFIFO() ? 'a FIFO' : info.isSocket() ? 'a socket' : 'no regular file';
}

export class LocalFileLocation implements ArchiveLocation {
  readonly path: string;
  readonly display: string;
  private readonly flushBehindBytes: number;
  private readonly sweptDirectories: Set<string> | undefined;
  /** The file `read` opened (the first one; `openedOthers` if a later read found another). */
  private opened: ArchiveIdentity | undefined;
  private openedOthers = false;

  get localPath(): string {
    return this.path;
  }

  constructor(path: string, options: LocalFileOptions = {}) {
    this.path = resolve(path);
    this.display = this.path;
    this.flushBehindBytes = options.flushBehindBytes ?? FLUSH_BEHIND_BYTES;
    this.sweptDirectories = options.sweptDirectories;
  }

  async checkWritable(options: CheckWritableOptions): Promise<void> {
    const existing = await this.statTarget();
    if (existing !== undefined) {
      if (existing.isDirectory()) {
        throw new StorageError(`${this.display} is a directory, not an archive file: name the archive in it, e.g. ${join(this.display, 'NAME.tar.zst')}`, 'NOT_A_FILE');
      }
      await this.assertReplaceable(existing);
      if (!options.overwrite) throw this.existsError();
    }
    // The nearest existing ancestor must be a writable directory: it is where `mkdir -p`
    // starts, or the directory the file lands in.
    let directory = dirname(this.path);
    for (;;) {
      const info = await stat(directory).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return undefined;
        throw this.fsError(error, 'check');
      });
      if (info !== undefined) {
        if (!info.isDirectory()) {
          throw new StorageError(`cannot write ${this.display}: ${directory} is not a directory`, 'NOT_A_DIRECTORY');
        }
        break;
      }
      const parent = dirname(directory);
      if (parent === directory) break;
      directory = parent;
    }
    // The dry run said it would write on /proc, or on a full disk where the backup then read
    // the whole tenant before its first write failed: asked here, both fail alike.
    let refusal = await whyNotWritable(directory);
    // Full, perhaps only of what killed backups left in the archive's own directory (a killed
    // backup's partial of 535 KiB filled a 600 KiB disk, and every later backup was refused
    // here, before the write that sweeps it: the disk stayed full for good). The run removes
    // them and asks again; a dry run, which changes nothing, is not refused for a full disk
    // where removing them would leave it full no longer (the run frees them first). Before, any
    // one of them was enough: an empty one, or a second name of a stored archive (a backup
    // killed between its commit's link and unlink), frees no block, and the dry run said it
    // would back up (exit 0) where the run said "no space left" (exit 1).
    if (refusal?.kind === 'full' && directory === dirname(this.path)) {
      if (options.removeDeadPartials === true) {
        await removeDeadPartials(directory);
        refusal = await whyNotWritable(directory);
      } else if (!isFull(withRemoved(await statfs(directory).catch(() => undefined), await deadPartials(directory)))) refusal = undefined;
    }
    if (refusal?.kind === 'kernel') {
      throw new StorageError(`cannot write ${this.display}: ${directory} takes no new files (a ${refusal.fileSystem} file system): give a path on a disk`, 'NOT_FOUND');
    }
    if (refusal?.kind === 'denied') throw this.fsError(refusal.error, 'check');
    if (refusal?.kind === 'full') throw this.fsError(Object.assign(new Error('no space left'), { code: 'ENOSPC', path: directory }), 'write');
  }

  async write(body: Readable, options: WriteOptions): Promise<WriteResult> {
    const { signal } = options;
    const writeFailed = (error: unknown): never => {
      throw this.fsError(error, 'write');
    };
    holdErrors(body);
    const directory = dirname(this.path);
    let handle: FileHandle | undefined;
    let temporary: string | undefined;
    let heartbeat: NodeJS.Timeout | undefined;
    const createdDirectories: string[] = [];
    try {
      throwIfAborted(signal);
      const existing = await this.statTarget();
      if (existing !== undefined) await this.assertReplaceable(existing);
      if (!options.overwrite && existing !== undefined) throw this.existsError();
      ({ temporary, handle } = await this.openTemporary(directory, createdDirectories));

      const file = handle;
      heartbeat = setInterval(() => {
        touchWithFileSystemClock(file).catch(() => undefined);
      }, HEARTBEAT_MS);
      heartbeat.unref();
      const flushBehind = new FlushBehind(file, this.flushBehindBytes);
      let bytes = 0;
      let head = Buffer.alloc(0);
      try {
        await pipeline(
          body,
          async (source: AsyncIterable<Buffer>) => {
            for await (const chunk of source) {
              if (head.length < HEAD_PEEK_BYTES) head = Buffer.concat([head, chunk.subarray(0, HEAD_PEEK_BYTES - head.length)]);
              await writeWhole(file, [chunk]).catch(writeFailed);
              if (bytes === 0) crashPoint('archive:temp-opened');
              bytes += chunk.length;
              flushBehind.wrote(chunk.length);
              release(chunk); // written: nothing reads it any more (released-buffers.ts)
            }
          },
          { signal },
        );
      } catch (error) {
        await flushBehind.settle().catch(() => {});
        throw error;
      }
      await flushBehind.settle().catch(writeFailed);

      // A file system may report a full disk or quota only now (NFS, quotas): at fsync or close.
      const written = await file.stat().catch(writeFailed);
      if (written.size !== bytes) {
        throw new StorageError(`short write to ${this.display}: ${written.size} of ${bytes} bytes on disk`, 'SHORT_WRITE');
      }
      await file.sync().catch(writeFailed);
      handle = undefined;
      await file.close().catch(writeFailed);
      throwIfAborted(signal);
      crashPoint('archive:temp-written');

      const manifestSha256 = options.finalMetadata?.()[MANIFEST_DIGEST_METADATA_KEY];
      await this.commit(temporary, options.overwrite);
      temporary = undefined;
      clearInterval(heartbeat);
      // An age file, binary or armored (`--pipe "age -a …"`, as S3's size tag has it), but not bytes their maker knows cut short
      // (a --pipe command's age output shorter than age makes): nothing then says its backup completed it.
      if ((isAgeFile(head) || isArmoredAgeFile(head)) && options.bodyWhole?.() !== false) await this.recordStored(options.metadata, manifestSha256, written);
      // Best effort: the archive is already visible, and failing the write now would break
      // the all-or-nothing promise.
      await syncDirectory(directory).catch(() => {});
      return { bytes };
    } catch (error) {
      destroyQuietly(body);
      await handle?.close().catch(() => {});
      if (temporary !== undefined) await unlink(temporary).catch(() => {});
      await removeCreatedDirectories(createdDirectories);
      if (isAbortError(error) || signal?.aborted) throw abortedError(signal);
      // Errors from our own file operations are already StorageErrors; anything else
      // came from `body` and belongs to the caller.
      throw error;
    } finally {
      clearInterval(heartbeat);
    }
  }

  async read(options: ReadOptions = {}): Promise<Readable> {
    throwIfAborted(options.signal);
    let handle: FileHandle;
    try {
      // O_NONBLOCK: a FIFO at the path (no writer) would block open(2) for good, on a thread
      // no signal reaches: `--from FIFO` hung, and SIGTERM did not end it. Reads of a regular
      // file ignore the flag.
      handle = await open(this.path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    } catch (error) {
      throw this.fsError(error, 'read');
    }
    const info = await handle.stat();
    if (!info.isFile()) {
      await handle.close();
      // `--from` a backup directory (as `backups --in` takes one) said only "is not a regular file".
      // `--from /dev/null` or a FIFO said "is not a regular file", and not what to give instead.
      const what = info.isDirectory()
        ? `a directory, not an archive file: give the archive's path (tenants backups NAME --in ${this.display} lists a tenant's archives in it)`
        : `${nonFileKind(info)}, not an archive file: give the path of one (tenants backups NAME --in DIR lists those in a directory)`;
      throw new StorageError(`${this.display} is ${what}`, 'NOT_A_FILE');
    }
    const identity = { size: info.size, mtimeMs: info.mtimeMs, ctimeMs: info.ctimeMs };
    if (this.opened === undefined) this.opened = identity;
    else if (!sameArchive(this.opened, identity)) this.openedOthers = true;
    options.onSize?.(info.size);
    const named = `file:${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`;
    if (options.expectIdentity !== undefined && options.expectIdentity !== named) {
      await handle.close();
      throw new StorageError(`${this.display} is no longer the archive an earlier read found there (replaced or written again): read it again`, 'CHANGED');
    }
    options.onIdentity?.(named);
    const stream = handle.createReadStream({ highWaterMark: READ_AHEAD_BYTES });
    // fs.ReadStream reads each chunk into a new buffer of its own: the reader that uses it
    // last may free it (released-buffers.ts).
    stream.on('data', (chunk: string | Buffer) => {
      if (typeof chunk !== 'string') releasable(chunk);
    });
    return guardReadable(stream, (error) => this.fsError(error, 'read'), options.signal);
  }

  async markVerified(mark: VerifiedMark, options: ReadOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    const info = await stat(this.path).catch((error: unknown) => {
      throw this.fsError(error, 'read');
    });
    // The mark names `info`, the file verified: one renamed over the path after this look
    // differs from it in ctime, mtime (and mostly size), and the listing ignores the mark.
    if (this.openedOthers || (this.opened !== undefined && !sameArchive(this.opened, info))) {
      throw new StorageError(`${this.display} changed after it was verified: not marked`, 'CHANGED');
    }
    // A mark the listings would not take (verified-mark.ts markNotTrusted) is not written: root's verification of another user's archive in root's (or a shared) directory said "recorded as verified", and the listing then called it never verified.
    const self = process.geteuid?.();
    if (self !== undefined) {
      const directoryUid = (await stat(dirname(this.path)).catch(() => undefined))?.uid ?? info.uid;
      const why = markNotTrusted({ mark: { uid: self, mode: ARCHIVE_FILE_MODE }, archiveUid: info.uid, directoryUid, self });
      if (why !== undefined) {
        throw new StorageError(
          `a mark beside ${this.display} would not be taken by listings run as uid ${self} (it would be ${why}: that user may rewrite the archive keeping its size and mtime): not marked; give the archive to uid ${self}${directoryUid === self ? '' : ` or to the directory's owner (uid ${directoryUid})`}, or verify it as uid ${info.uid}`,
          'ACCESS_DENIED',
        );
      }
    }
    await this.writeMarkFile(formatLocalMark(mark, info), () => crashPoint('verify:mark-temp-written'));
    await removeDeadPartials(dirname(this.path));
  }

  /** Removes the mark or record beside the archive, if the file at the path is still the one read (the caller found it damaged). */
  async forgetWhole(): Promise<void> {
    if (this.opened === undefined || this.openedOthers) return;
    const info = await stat(this.path).catch(() => undefined);
    if (info === undefined || !sameArchive(this.opened, info)) return;
    await unlink(verifiedMarkPath(this.path)).catch((error: unknown) => {
      // None there (a directory by its name is no mark either): nothing records it whole.
      const code = errnoCode(error);
      if (code !== 'ENOENT' && code !== 'EISDIR' && code !== 'ENOTDIR') throw this.fsError(error, 'write', verifiedMarkPath(this.path));
    });
  }

  /**
   * Records beside a just-committed encrypted archive (age: its bytes name no tenant) what
   * its backup knows of it (verified-mark.ts StoredRecord), for the file now at the path if it
   * is the one written. Best effort, as S3's size tag is: the archive is whole and visible
   * already; without the record `--skip-existing` asks for a verification, as before it existed.
   */
  private async recordStored(metadata: ArchiveMetadata, manifestSha256: string | undefined, written: { readonly ino: number; readonly size: number }): Promise<void> {
    try {
      const now = await lstat(this.path);
      if (now.ino !== written.ino || now.size !== written.size) return;
      const { tenant, createdAt, toolVersion, formatVersion } = metadata;
      await this.writeMarkFile(formatLocalStoredRecord({ tenant, createdAt, toolVersion, formatVersion, ...(manifestSha256 !== undefined && { manifestSha256 }) }, now));
    } catch {
      // The archive stands without it.
    }
  }

  /** Writes the hidden file beside the archive (verified-mark.ts) whole, through a temporary file renamed over it. */
  private async writeMarkFile(bytes: Buffer, beforeRename?: () => void): Promise<void> {
    const target = verifiedMarkPath(this.path);
    // Named as a temporary archive is, owner and all: one a killed verify or backup left goes
    // with theirs, at the next verification or backup written into this directory.
    const temporary = `${dirname(target)}/${basename(target).slice(0, 160)}.${ownerTag()}.${randomBytes(6).toString('hex')}.partial`;
    try {
      const handle = await open(temporary, 'wx', ARCHIVE_FILE_MODE);
      try {
        await writeWhole(handle, [bytes]);
      } finally {
        await handle.close();
      }
      beforeRename?.();
      await rename(temporary, target);
    } catch (error) {
      await unlink(temporary).catch(() => {});
      throw this.fsError(error, 'write', target);
    }
  }

  /**
   * Creates `directory` as `mkdir -p` (adding the directories it made to `created`) and opens
   * a new temporary file in it.
   */
  private async openTemporary(directory: string, created: string[]): Promise<{ temporary: string; handle: FileHandle }> {
    for (let attempt = 1; ; attempt++) {
      created.push(
        ...(await createDirectories(directory, ARCHIVE_DIRECTORY_MODE).catch((error: unknown) => {
          throw this.fsError(error, 'write', directory);
        })),
      );
      if (this.sweptDirectories?.has(directory) !== true) {
        this.sweptDirectories?.add(directory);
        await removeDeadPartials(directory);
      }
      const temporary = `${directory}/.${basename(this.path).slice(0, 160)}.${ownerTag()}.${randomBytes(6).toString('hex')}.partial`;
      try {
        return { temporary, handle: await open(temporary, 'wx', ARCHIVE_FILE_MODE) };
      } catch (error) {
        // A writer beside this one (another tenant of a `--all` into the same new directory)
        // that failed removes the directories it made while they are empty: possibly before
        // our temporary file is in them. Make them again, once.
        if (attempt === 1 && errnoCode(error) === 'ENOENT') continue;
        throw this.fsError(error, 'write');
      }
    }
  }

  private async commit(temporary: string, overwrite: boolean): Promise<void> {
    if (overwrite) {
      await rename(temporary, this.path).catch(async (error: unknown) => {
        throw (await this.temporaryGone(error, temporary)) ?? this.fsError(error, 'write');
      });
      crashPoint('archive:renamed');
      return;
    }
    try {
      await link(temporary, this.path);
    } catch (error) {
      // Named by its number where Node 20's libuv has no name for it (EDQUOT).
      const code = errnoCode(error);
      if (code === 'EEXIST') throw this.existsError();
      // A second name takes an inode of its own on some file systems (tmpfs counts hard links
      // against its inodes): with the last one free taken by the temporary archive itself, as it
      // is once the full-disk check has removed a killed backup's (checkWritable), the link
      // failed "no inode left" after the whole archive was written, and the backup stored
      // nothing. The rename takes none, and never replaces what came to the name since
      // (renameIntoFreeName), as where links are unsupported.
      const noRoomToLink = code === 'ENOSPC' || code === 'EDQUOT';
      if (code === undefined || !(LINK_UNSUPPORTED.has(code) || noRoomToLink)) throw (await this.temporaryGone(error, temporary)) ?? this.fsError(error, 'write');
      await this.renameIntoFreeName(temporary);
      crashPoint('archive:renamed');
      return;
    }
    crashPoint('archive:linked');
    await unlink(temporary).catch(() => {});
  }

  /**
   * The commit where its link cannot be made: a rename that never replaces (renameat2
   * RENAME_NOREPLACE, through mv). "Check the name is free, then rename" replaced what was put
   * at the name between the two: with the link failing EDQUOT (strace) and the rename held 2 s,
   * a file a user wrote at the name meanwhile was gone and the backup said it was stored (exit
   * 0), as would another backup's archive renamed there (a second tenant's `--to` the same
   * path). Only where no mv can be run is the name checked, then renamed into.
   */
  private async renameIntoFreeName(temporary: string): Promise<void> {
    const outcome = await renameNoReplace(temporary, this.path).catch(async (error: unknown) => {
      throw (await this.temporaryGone(error, temporary)) ?? this.fsError(error, 'write');
    });
    if (outcome.kind === 'renamed') return;
    if (outcome.kind === 'exists') throw this.existsError();
    if (outcome.kind === 'failed') {
      // Said as the rename's own error would be (the archive's name, its storage code), where mv's words name it.
      if (outcome.code !== undefined) throw this.fsError(Object.assign(new Error(outcome.reason), { code: outcome.code, path: this.path }), 'write');
      throw new StorageError(`cannot write ${this.display}: ${outcome.reason}`, 'IO');
    }
    if ((await this.statTarget()) !== undefined) throw this.existsError();
    await rename(temporary, this.path).catch(async (renameError: unknown) => {
      throw (await this.temporaryGone(renameError, temporary)) ?? this.fsError(renameError, 'write');
    });
  }

  /**
   * The commit's ENOENT when the temporary file is what is missing: removed by another command's
   * sweep, which judged its writer gone (a command on another host, after this process was silent
   * for STALE_AFTER_MS: frozen, stopped). Before, it said the directory "takes no new files: give
   * a path on a disk", of a directory the backup had just written into.
   */
  private async temporaryGone(error: unknown, temporary: string): Promise<StorageError | undefined> {
    if (errnoCode(error) !== 'ENOENT' || (await lstat(temporary).then(() => true, () => false)) || !existsSync(dirname(this.path))) return undefined;
    return new StorageError(
      `cannot write ${this.display}: its temporary file ${temporary} was removed before it was complete (by a command that judged this process gone: was it stopped or frozen for more than ${STALE_AFTER_MS / 1000} s?): nothing was stored; back up again`,
      'IO',
      { cause: error },
    );
  }

  private async statTarget() {
    return lstat(this.path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw this.fsError(error, 'check');
    });
  }

  /**
   * A device, FIFO or socket at the destination is no archive to replace: `--to /dev/null
   * --overwrite` (a trial run) renamed the archive over root's /dev/null, a regular file of
   * mode 0600 from then on, which every other user's programs failed to write. Nor is a
   * symlink to one (`existing` is the lstat of the path), which the rename replaces as well:
   * `--to /dev/stdout --overwrite` made root's /dev/stdout a regular file. Nor is a symlink to
   * a directory, refused as the directory itself is (`--to DIR`, `--to DIR/`): with
   * `--overwrite` the archive was renamed over the link (`--to ~/backups-link --overwrite`
   * left a file where the link to the backup directory was), and without it the refusal
   * pointed at `--overwrite`.
   */
  private async assertReplaceable(existing: Stats): Promise<void> {
    const target = existing.isSymbolicLink() ? await stat(this.path).catch(() => undefined) : existing;
    if (existing.isSymbolicLink() && target?.isDirectory() === true) {
      throw new StorageError(
        `${this.display} is a symlink to a directory, not an archive file, and is never replaced (not with --overwrite either): name the archive in it, e.g. ${join(this.display, 'NAME.tar.zst')}`,
        'NOT_A_FILE',
      );
    }
    if (target === undefined || target.isFile() || target.isSymbolicLink() || target.isDirectory()) return;
    const what = existing.isSymbolicLink() ? `a symlink to ${nonFileKind(target)}` : nonFileKind(target);
    throw new StorageError(`${this.display} is ${what}, not an archive file, and is never replaced (not with --overwrite either): give the path of a file to write`, 'NOT_A_FILE');
  }

  private existsError(): DestinationExistsError {
    return new DestinationExistsError(`${this.display} already exists: pass --overwrite to replace it`);
  }

  /** One line for a file system error, naming the path; never a stack trace. */
  private fsError(error: unknown, operation: 'check' | 'read' | 'write', path = this.display): OpenClawError {
    if (error instanceof OpenClawError) return error;
    const code = errnoCode(error) ?? 'EIO';
    const verb = operation === 'read' ? 'read' : 'write';
    const fail = (message: string, storageCode: StorageCode) => new StorageError(message, storageCode, { cause: error });
    switch (code) {
      case 'ENOENT':
        if (operation === 'read') return fail(`no archive at ${path}${escapedNameHint(path)}`, 'NOT_FOUND');
        // A directory that is there and still says ENOENT to a new file: /proc, /sys, a read-only pseudo file system.
        if (existsSync(dirname(path))) return fail(`cannot ${verb} ${path}: ${dirname(path)} takes no new files (no such file or directory): give a path on a disk`, 'NOT_FOUND');
        return fail(`cannot ${verb} ${path}: a parent directory vanished`, 'NOT_FOUND');
      case 'EISDIR':
        return fail(`${path} is a directory, not an archive file`, 'NOT_A_FILE');
      case 'ENOTDIR':
        return fail(`cannot ${verb} ${path}: a parent is not a directory`, 'NOT_A_DIRECTORY');
      case 'ELOOP':
        // Said "cannot read …: ELOOP" (no message of its own): a symlink loop, or a chain longer than the kernel follows.
        return fail(`cannot ${verb} ${path}: it leads through a loop of symlinks (or more symlinks than the system follows): give the path of the archive file itself`, 'IO');
    }
    return fail(`cannot ${verb} ${path}: ${errnoMessage(error) ?? code}`, STORAGE_CODES[code] ?? 'IO');
  }
}

/**
 * Removes the temporary archives in `directory` whose writer is provably gone (best effort: a
 * failure here is not the backup's); a writer on another host by the file system's clock, never
 * this host's. Also for `backup --all --skip-existing` (catalog/existing-backup.ts), which
 * writes nothing into a directory whose archive is there already.
 */
export async function removeDeadPartials(directory: string): Promise<void> {
  for (const { path } of await deadPartials(directory)) await unlink(path).catch(() => {});
}

/** A temporary archive whose writer is gone: its path, and what lstat said of it. */
interface DeadPartial {
  readonly path: string;
  readonly info: Stats;
}

/**
 * What statfs would answer of a file system (`info`) once `removed` are: the inodes and blocks
 * of those that are their file's only name (a second name frees nothing); undefined stays so.
 */
function withRemoved(info: StatsFs | undefined, removed: readonly DeadPartial[]): StatsFs | undefined {
  if (info === undefined) return undefined;
  const freed = removed.filter((partial) => partial.info.nlink === 1);
  const blocks = Math.floor(freed.reduce((bytes, partial) => bytes + partial.info.blocks * 512, 0) / Number(info.bsize));
  return { ...info, ffree: Number(info.ffree) + freed.length, bfree: Number(info.bfree) + blocks, bavail: Number(info.bavail) + blocks };
}

/** The temporary archives in `directory` whose writer is provably gone (removeDeadPartials). */
async function deadPartials(directory: string): Promise<DeadPartial[]> {
  const names = await readdir(directory).catch(() => [] as string[]);
  const clock = new FileSystemClock(() => `${directory}/.openclaw-clock.${ownerTag()}.${randomBytes(6).toString('hex')}.partial`);
  const dead: DeadPartial[] = [];
  for (const name of names) {
    if (!name.endsWith('.partial')) continue;
    const owner = parseOwnerTag(PARTIAL_NAME.exec(name)?.[1] ?? '');
    if (owner === undefined) continue;
    const full = `${directory}/${name}`;
    const info = await lstat(full).catch(() => undefined);
    if (info?.isFile() && (await isOwnerGone(owner, info.mtimeMs, STALE_AFTER_MS, clock))) dead.push({ path: full, info });
  }
  return dead;
}

/** Background fdatasyncs of a file being written, one at a time, every FLUSH_BEHIND_BYTES. */
class FlushBehind {
  private unflushed = 0;
  private flushing: Promise<void> | undefined;
  private failure: unknown;

  constructor(
    private readonly file: FileHandle,
    private readonly every: number,
  ) {}

  wrote(bytes: number): void {
    this.unflushed += bytes;
    if (this.unflushed < this.every || this.flushing !== undefined) return;
    this.unflushed = 0;
    this.flushing = this.file.datasync().then(
      () => {
        this.flushing = undefined;
      },
      (error: unknown) => {
        this.failure ??= error;
        this.flushing = undefined;
      },
    );
  }

  /** Waits for the flush in progress; rejects with the first flush's failure. */
  async settle(): Promise<void> {
    await this.flushing;
    if (this.failure !== undefined) throw this.failure;
  }
}
