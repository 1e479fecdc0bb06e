// Reading a file that may be written while it is read, as GNU tar does but one step further:
// a read counts only if the file's size and mtime (fstat on the open handle) are the same
// after the read as before it, and the read got exactly that many bytes. Otherwise the file
// is read again, at most REREAD_ATTEMPTS more times with a short pause before each (writers
// tend to write in bursts); if it never holds still, the last read is what the caller gets,
// marked unstable, and the caller warns ("file changed as we read it").
//
// Two forms, both in bounded memory:
// - `readWhole` keeps the content in memory: only for files up to a limit (8 MiB in the
//   archive writer); a file that grows past the limit meanwhile is handed back to the caller.
// - `spoolFile` copies the content into a private temporary file (the caller's), for large
//   files whose tar header must state the size before the first byte is written: the copy,
//   once stable, is what gets archived.
//
// Limits: mtime resolution is the file system's (a write in the same clock tick as the
// previous one, on the same size, is invisible to any stat-based check); a read is bounded by
// the size seen before it, so a file that keeps growing cannot keep a read going forever.

import { closeSync, constants as fsConstants, fstatSync, openSync, readSync, promises as fs, type Stats } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** How many times a file that changed while read is read again. */
export const REREAD_ATTEMPTS = 3;
/** Pause before each re-read, in milliseconds. */
export const REREAD_DELAYS_MS: readonly number[] = [5, 25, 100];

const COPY_CHUNK = 1024 * 1024;

export interface ReadHooks {
  /** Called after each read attempt (1-based), before the file is checked: tests change the file here. */
  readonly afterRead?: (attempt: number) => void | Promise<void>;
}

export interface WholeRead {
  readonly content: Buffer;
  /** The file's stat after the last read. */
  readonly stat: Stats;
  /** True if the file did not change during the last read. */
  readonly stable: boolean;
  /** How many times the file was read. */
  readonly reads: number;
}

/** Whether two stats of one open file describe the same content, as far as stat can tell. */
export function sameVersion(a: Stats, b: Stats): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino;
}

/** Reads up to `length` bytes from position 0 (fewer if the file is shorter). */
export async function readHead(handle: fs.FileHandle, length: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}

/**
 * A stable read of the whole file into memory. `first` is a read already made right after
 * `before` was taken (it saves reading a file twice that did not change). Undefined if the
 * file grew past `limit` bytes: read it another way.
 */
export async function readWhole(
  handle: fs.FileHandle,
  before: Stats,
  limit: number,
  first?: Buffer,
  hooks: ReadHooks = {},
): Promise<WholeRead | undefined> {
  let stat = before;
  for (let reads = 1; ; reads++) {
    if (stat.size > limit) return undefined;
    const content = reads === 1 && first !== undefined ? first : await readHead(handle, stat.size);
    await hooks.afterRead?.(reads);
    const after = await handle.stat();
    const stable = sameVersion(stat, after) && content.length === after.size;
    if (stable || reads > REREAD_ATTEMPTS) return { content, stat: after, stable, reads };
    await sleep(REREAD_DELAYS_MS[reads - 1] ?? 0);
    stat = await handle.stat();
  }
}

export interface SyncReadOptions extends ReadHooks {
  /**
   * Read into this buffer when the file fits: the content returned is then a view of it,
   * valid until the next read into the same buffer (saves an allocation per file).
   */
  readonly scratch?: Buffer;
  /**
   * The file's stat from a listing made just before (lstat): saves an fstat per file. The
   * read is still checked against fstat after it, so a file replaced since is read again.
   */
  readonly listed?: Stats;
}

/**
 * `readWhole` with synchronous calls on a path, for local disks (io-mode.ts): opened without
 * following a symlink swapped in after the walk. 'vanished' if it is gone or no longer a
 * regular file, 'large' if it is (or grew) over `limit`: read it another way.
 */
export async function readWholeSync(absPath: string, limit: number, options: SyncReadOptions = {}): Promise<WholeRead | 'vanished' | 'large'> {
  let fd: number;
  try {
    fd = openSync(absPath, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return 'vanished';
    throw error;
  }
  try {
    let stat = options.listed ?? fstatSync(fd);
    if (!stat.isFile()) return 'vanished';
    for (let reads = 1; ; reads++) {
      if (stat.size > limit) return 'large';
      let content: Buffer;
      try {
        content = readAllSync(fd, stat.size, options.scratch);
      } catch (error) {
        // A directory or FIFO swapped in after the listing (open does not refuse those).
        if (!fstatSync(fd).isFile()) return 'vanished';
        throw error;
      }
      await options.afterRead?.(reads);
      const after = fstatSync(fd);
      if (!after.isFile()) return 'vanished';
      const stable = sameVersion(stat, after) && content.length === after.size;
      if (stable || reads > REREAD_ATTEMPTS) return { content, stat: after, stable, reads };
      await sleep(REREAD_DELAYS_MS[reads - 1] ?? 0);
      stat = fstatSync(fd);
    }
  } finally {
    closeSync(fd);
  }
}

function readAllSync(fd: number, length: number, scratch?: Buffer): Buffer {
  const buffer = scratch !== undefined && scratch.length >= length ? scratch : Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const bytesRead = readSync(fd, buffer, filled, length - filled, filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}

export interface SpooledCopy {
  /** Bytes in the spool file. */
  readonly size: number;
  readonly stat: Stats;
  readonly stable: boolean;
  readonly reads: number;
}

/** A stable copy of the whole file into `spoolPath` (created or truncated), in 1 MiB chunks. */
export async function spoolFile(handle: fs.FileHandle, before: Stats, spoolPath: string, hooks: ReadHooks = {}): Promise<SpooledCopy> {
  const spool = await fs.open(spoolPath, 'w', 0o600);
  try {
    const buffer = Buffer.allocUnsafe(COPY_CHUNK);
    let stat = before;
    for (let reads = 1; ; reads++) {
      await spool.truncate(0);
      let size = 0;
      while (size < stat.size) {
        const { bytesRead } = await handle.read(buffer, 0, Math.min(COPY_CHUNK, stat.size - size), size);
        if (bytesRead === 0) break; // shrank
        await writeAll(spool, buffer.subarray(0, bytesRead), size);
        size += bytesRead;
      }
      await hooks.afterRead?.(reads);
      const after = await handle.stat();
      const stable = sameVersion(stat, after) && size === after.size;
      if (stable || reads > REREAD_ATTEMPTS) return { size, stat: after, stable, reads };
      await sleep(REREAD_DELAYS_MS[reads - 1] ?? 0);
      stat = await handle.stat();
    }
  } finally {
    await spool.close();
  }
}

async function writeAll(handle: fs.FileHandle, bytes: Buffer, position: number): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, written, bytes.length - written, position + written);
    written += bytesWritten;
  }
}
