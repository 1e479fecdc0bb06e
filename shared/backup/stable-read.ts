// Reading a file that may be written while it is read, as GNU tar does but one step further:
// a read counts only if the file's size, mtime and ctime (fstat on the open handle) are the same
// after the read as before it, and the read got exactly that many bytes. Otherwise the file
// is read again, at most REREAD_ATTEMPTS more times with a short pause before each (writers
// tend to write in bursts); if it never holds still, the last read is what the caller gets,
// marked unstable, and the caller warns ("file changed as we read it").
//
// Two forms, both in bounded memory:
// - `readWhole` (an open handle) and `readWholeAt` (a path, through a file access) keep the
//   content in memory, one algorithm for both: only for files up to a limit (8 MiB for a
//   backup); a file that grows past the limit meanwhile is handed back to the caller.
// - `spoolFile` copies the content into a private temporary file (the caller's), for large
//   files whose tar header must state the size before the first byte is written: the copy,
//   once stable, is what gets archived.
//
// Limits: mtime resolution is the file system's (a write in the same clock tick as the
// previous one, on the same size, is invisible to any stat-based check); a read is bounded by
// the size seen before it, so a file that keeps growing cannot keep a read going forever.

import { promises as fs, type Stats } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import { fileOfHandle, isVanished, type FileAccess, type OpenFile } from '../file-access.js';
import { writeWholeAt } from '../write-whole.js';

/** How many times a file that changed while read is read again. */
export const REREAD_ATTEMPTS = 3;
/** Pause before each re-read, in milliseconds. */
export const REREAD_DELAYS_MS: readonly number[] = [5, 25, 100];

const COPY_CHUNK = 1024 * 1024;
/** What a copied chunk is compared with: one of only zeros is left a hole. */
const ZEROS = Buffer.alloc(COPY_CHUNK);

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

/**
 * Whether two stats of one open file describe the same content, as far as stat can tell: the
 * ctime too, which a writer that sets the mtime back after its write (utimes) cannot set back.
 */
export function sameVersion(a: Stats, b: Stats): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino;
}

/**
 * Reads up to `length` bytes from position 0 (fewer if the file is shorter), into `scratch`
 * when given and large enough: the content is then a view of it, valid until the next read
 * into the same scratch.
 */
export async function readHead(handle: fs.FileHandle, length: number, scratch?: ReadScratch): Promise<Buffer> {
  const content = readAll(fileOfHandle(handle), length, scratch);
  return content instanceof Promise ? await content : content;
}

/**
 * A stable read of the whole file into memory, through an open handle. `first` is a read
 * already made right after `before` was taken (it saves reading a file twice that did not
 * change); it may be a view of `options.scratch`, which a read again overwrites. Undefined
 * if the file grew past `limit` bytes: read it another way.
 */
export async function readWhole(
  handle: fs.FileHandle,
  before: Stats,
  limit: number,
  first?: Buffer,
  options: ReadHooks & { readonly scratch?: ReadScratch } = {},
): Promise<WholeRead | undefined> {
  const read = await readStable(fileOfHandle(handle), before, limit, { ...options, first });
  return typeof read === 'object' ? read : undefined;
}

export interface PathReadOptions extends ReadHooks {
  /**
   * Read into its buffer when the file fits: the content returned is then a view of it,
   * valid until the next read into the same scratch (saves an allocation per file).
   */
  readonly scratch?: ReadScratch;
  /**
   * The file's stat from a listing made just before (lstat): saves an fstat per file. The
   * read is still checked against fstat after it, so a file replaced since is read again.
   */
  readonly listed?: Stats;
}

/**
 * `readWhole` of a path, opened through `access` (file-access.ts) without following a
 * symlink swapped in after the walk. 'vanished' if it is gone or no longer a regular file,
 * 'large' if it is (or grew) over `limit`: read it another way.
 */
export async function readWholeAt(access: FileAccess, absPath: string, limit: number, options: PathReadOptions = {}): Promise<WholeRead | 'vanished' | 'large'> {
  let file: OpenFile;
  try {
    const opened = access.openToRead(absPath);
    file = opened instanceof Promise ? await opened : opened;
  } catch (error) {
    if (isVanished(error) || (error as NodeJS.ErrnoException).code === 'ELOOP') return 'vanished';
    throw error;
  }
  try {
    let stat = options.listed ?? file.stat();
    if (stat instanceof Promise) stat = await stat;
    if (!stat.isFile()) return 'vanished';
    return await readStable(file, stat, limit, options);
  } finally {
    const closed = file.close();
    if (closed instanceof Promise) await closed;
  }
}

/**
 * The one algorithm behind both: read the whole file, check it against its stat, read again
 * while it changes. Calls through `file` answer with values on a local disk (no turn of the
 * event loop is spent on them) or with promises.
 */
async function readStable(
  file: OpenFile,
  before: Stats,
  limit: number,
  options: ReadHooks & { readonly first?: Buffer; readonly scratch?: ReadScratch },
): Promise<WholeRead | 'vanished' | 'large'> {
  let stat = before;
  for (let reads = 1; ; reads++) {
    if (stat.size > limit) return 'large';
    let content: Buffer;
    if (reads === 1 && options.first !== undefined) content = options.first;
    else {
      try {
        const read = readAll(file, stat.size, options.scratch);
        content = read instanceof Promise ? await read : read;
      } catch (error) {
        // A directory or FIFO swapped in after the listing (open does not refuse those).
        const now = file.stat();
        if (!(now instanceof Promise ? await now : now).isFile()) return 'vanished';
        throw error;
      }
    }
    await options.afterRead?.(reads);
    const checked = file.stat();
    const after = checked instanceof Promise ? await checked : checked;
    if (!after.isFile()) return 'vanished';
    const stable = sameVersion(stat, after) && content.length === after.size;
    if (stable || reads > REREAD_ATTEMPTS) return { content, stat: after, stable, reads };
    await sleep(REREAD_DELAYS_MS[reads - 1] ?? 0);
    const again = file.stat();
    stat = again instanceof Promise ? await again : again;
  }
}

/** Smallest buffer a ReadScratch makes. */
const MIN_SCRATCH_BYTES = 64 * 1024;

/**
 * The buffer whole reads land in, one after another: made at the size the largest file so far
 * needs (a power of two, up to `maxBytes`), not at `maxBytes` up front. Most tenants' files
 * are small, and `backup --all` over thousands of tiny tenants made V8 run a full collection
 * every few tenants when each backup allocated its 8 MiB at once (V8 starts one per ~64 MiB
 * of memory outside its heap).
 */
export class ReadScratch {
  private buffer: Buffer | undefined;

  constructor(private readonly maxBytes: number) {}

  /** A buffer of at least `bytes` (a larger one replaces the last), or undefined past `maxBytes`. */
  take(bytes: number): Buffer | undefined {
    if (this.buffer !== undefined && this.buffer.length >= bytes) return this.buffer;
    if (bytes > this.maxBytes) return undefined;
    this.buffer = Buffer.allocUnsafeSlow(Math.min(this.maxBytes, Math.max(MIN_SCRATCH_BYTES, 2 ** Math.ceil(Math.log2(bytes)))));
    return this.buffer;
  }

  /** Bytes of the buffer made so far (0 before the first `take`). */
  get size(): number {
    return this.buffer?.length ?? 0;
  }
}

/** Up to `length` bytes from position 0, into `scratch` when it is large enough. */
function readAll(file: OpenFile, length: number, scratch?: ReadScratch): Buffer | Promise<Buffer> {
  const buffer = scratch?.take(length) ?? Buffer.allocUnsafe(length);
  let filled = 0;
  const more = (): Buffer | Promise<Buffer> => {
    while (filled < length) {
      const got = file.read(buffer, filled, length - filled, filled);
      if (got instanceof Promise) {
        return got.then((bytesRead) => {
          if (bytesRead === 0) return buffer.subarray(0, filled);
          filled += bytesRead;
          return more();
        });
      }
      if (got === 0) break;
      filled += got;
    }
    return buffer.subarray(0, filled);
  };
  return more();
}

export interface SpooledCopy {
  /** Bytes in the spool file. */
  readonly size: number;
  readonly stat: Stats;
  readonly stable: boolean;
  readonly reads: number;
}

/**
 * Writes `bytes` at `position` of a copy, unless they are all zeros:
 * that part is left a hole, and the copy's size is set by truncating it once written, so a
 * sparse file copied (`truncate -s 100G`, a few KiB on disk) does not fill the disk it is copied to.
 */
export async function writeUnlessZeros(handle: fs.FileHandle, bytes: Buffer, position: number): Promise<void> {
  if (bytes.length > ZEROS.length || ZEROS.compare(bytes, 0, bytes.length, 0, bytes.length) !== 0) await writeWholeAt(handle, bytes, position);
}

export interface SpoolOptions extends ReadHooks {
  /** Ends the copy at its next chunk, throwing the signal's reason (a backup stopped: one file can take a minute to copy). */
  readonly signal?: AbortSignal;
}

/**
 * A stable copy of the whole file into `spoolPath` (created: never one already there), in 1 MiB chunks;
 * a chunk that reads as zeros is left a hole: a sparse file (a database `truncate -s 100G`
 * made, a few KiB on disk) no longer fills the temporary directory it is copied into.
 */
export async function spoolFile(handle: fs.FileHandle, before: Stats, spoolPath: string, options: SpoolOptions = {}): Promise<SpooledCopy> {
  const { signal } = options;
  // Never through a name already there: a scratch area in the base dir is in a directory its
  // owner can write, who could leave a symlink (to /etc/shadow) under the name, and root
  // truncated and overwrote the file it leads to.
  const spool = await fs.open(spoolPath, 'wx', 0o600);
  try {
    const buffer = Buffer.allocUnsafe(COPY_CHUNK);
    let stat = before;
    for (let reads = 1; ; reads++) {
      await spool.truncate(0);
      let size = 0;
      while (size < stat.size) {
        signal?.throwIfAborted();
        const { bytesRead } = await handle.read(buffer, 0, Math.min(COPY_CHUNK, stat.size - size), size);
        if (bytesRead === 0) break; // shrank
        await writeUnlessZeros(spool, buffer.subarray(0, bytesRead), size);
        size += bytesRead;
      }
      await spool.truncate(size);
      await options.afterRead?.(reads);
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
