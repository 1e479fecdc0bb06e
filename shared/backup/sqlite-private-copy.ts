// A live SQLite database copied into private storage without SQLite ever opening the live
// file: how a backup reads a database whose writer may be on another host. There the `-shm`
// index (shared memory between the processes of one host) cannot be trusted: SQLite's own
// documentation says WAL does not work over a network file system, and a reader on a
// second host may follow a stale index and read a state that was never committed.
//
// So the database and its `-wal` (only the frames SQLite's recovery can reach: `copyWal`) or
// rollback `-journal` are copied byte by byte into the backup's temporary area, and the copy counts only if neither changed in a way that could
// mix two states, judged from what SQLite itself writes (https://sqlite.org/fileformat.html):
// - the database: same inode; and, unless it is in WAL mode with the same WAL throughout,
//   same size, same 100-byte header (the file change counter at offset 24 moves with every
//   commit in rollback mode) and same mtime. In WAL mode only checkpoints write the
//   database, copying frames that the WAL (copied after it) still holds: a checkpoint during
//   the copy may grow, shrink or rewrite it, and the WAL's frames replace those pages (not
//   when the WAL is empty, as a TRUNCATE checkpoint leaves it: then the database is held to
//   the same rules as outside WAL mode);
// - the WAL: same inode, same 32-byte header (checkpoint sequence and salts, which change
//   when a writer restarts the WAL from its beginning, overwriting frames in place), and not
//   shorter than before (a truncation); frames appended meanwhile are welcome, and a frame
//   cut short at the end fails its checksum and is dropped by recovery;
// - the journal: same inode and header, not shorter: a commit deletes, truncates or zeroes it;
// - no companion appeared or vanished.
// The database is copied before its WAL or journal, so every page a checkpoint or a writer
// changed during the copy has its committed (WAL) or original (journal) version in the
// copy of the companion. A copy that changed is made again after a pause, until one holds
// still or the time allowed (the same-host path's busy timeout, 10 s) is spent, and at least
// PRIVATE_COPY_MIN_ATTEMPTS times (a copy of a large database may take longer than that).
// The pauses grow and are random within their bound: a writer that commits on a schedule
// (a timer, a periodic job) would otherwise land in every copy of a fixed series of pauses
// that are multiples of its period. The caller then opens the private copy, where SQLite's
// recovery rebuilds the index from the WAL (or rolls a hot journal back), and snapshots it.

import { constants as fsConstants, promises as fs, type Stats } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';

import { isVanished, openAt } from '../file-access.js';
import { decodeRawName } from '../raw-name.js';
import { throwIfAborted } from '../storage/streams.js';
import { writeWholeAt } from '../write-whole.js';
import { DEFAULT_SNAPSHOT_TIMEOUT_MS } from './sqlite-snapshot.js';
import { writeUnlessZeros } from './stable-read.js';
import type { TempArea } from './temp-area.js';

/** Copies made, however long they take, before giving up on a database that keeps changing. */
export const PRIVATE_COPY_MIN_ATTEMPTS = 5;
/** The bound of the random pause before each new copy, in milliseconds (the last one repeats). */
export const PRIVATE_COPY_DELAYS_MS: readonly number[] = [20, 100, 250, 500];

const DATABASE_HEADER_BYTES = 100;
const WAL_HEADER_BYTES = 32;
const JOURNAL_HEADER_BYTES = 28;
const COPY_CHUNK = 1024 * 1024;
const READ_FLAGS = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK;

export type PrivateCopy =
  /**
   * `path`: the copy of the database, in the temp area; `companions`: the suffixes of the
   * files copied beside it (`-wal`, `-journal`), none for an idle database.
   */
  | { readonly stable: true; readonly path: string; readonly companions: readonly string[]; readonly attempts: number }
  | { readonly stable: false; readonly reason: string; readonly attempts: number };

export interface CopyOptions {
  /**
   * How long new copies are started, in milliseconds, after the first one started (once
   * PRIVATE_COPY_MIN_ATTEMPTS were made). @default DEFAULT_SNAPSHOT_TIMEOUT_MS (10 s)
   */
  readonly budgetMs?: number;
  /**
   * Once aborted, no further copy is waited for or started (AbortedError is thrown), and a copy
   * under way ends at its next chunk (a backup stopped: a large database takes a minute to copy).
   */
  readonly signal?: AbortSignal | undefined;
  /** Called after the database is copied and before its companions are (tests write here). */
  readonly afterDatabaseCopy?: (attempt: number) => void | Promise<void>;
}

/**
 * Copies the database open as `database` (at `absPath`) and its WAL or journal into `temp`,
 * until a copy is stable or the time runs out (see the module comment). A stable copy's files
 * belong to the caller, who removes them with `temp.remove(path)`; an unstable one leaves
 * nothing.
 */
export async function copyDatabasePrivately(database: fs.FileHandle, absPath: string, temp: TempArea, options: CopyOptions = {}): Promise<PrivateCopy> {
  const { signal } = options;
  const budgetMs = options.budgetMs ?? DEFAULT_SNAPSHOT_TIMEOUT_MS;
  const started = performance.now();
  let reason = '';
  let copies = 0;
  for (;;) {
    if (copies > 0) {
      const pause = Math.random() * (PRIVATE_COPY_DELAYS_MS[copies - 1] ?? PRIVATE_COPY_DELAYS_MS.at(-1)!);
      // No copy starts after the budget: a busy database holds the backup for at most that plus one copy.
      if (copies >= PRIVATE_COPY_MIN_ATTEMPTS && performance.now() - started + pause >= budgetMs) break;
      await sleep(pause, undefined, { signal: options.signal }).catch(() => undefined);
      throwIfAborted(options.signal);
    }
    const attempt = ++copies;
    const path = await temp.file('private-copy.sqlite');
    let kept = false;
    try {
      const before = await fingerprints(database, absPath);
      await copyOpen(database, before.database.stat.size, path, signal);
      await options.afterDatabaseCopy?.(attempt);
      let change: string | undefined;
      for (const suffix of COMPANIONS) {
        const was = before[suffix];
        if (was !== undefined && !(await copyCompanion(`${absPath}${suffix}`, was.stat, `${path}${suffix}`, signal))) {
          change = `its ${suffix} was replaced or removed while it was copied`;
          break;
        }
      }
      change ??= changeBetween(before, await fingerprints(database, absPath));
      if (change === undefined) {
        kept = true;
        return { stable: true, path, companions: COMPANIONS.filter((suffix) => before[suffix] !== undefined), attempts: attempt };
      }
      reason = change;
    } finally {
      if (!kept) await temp.remove(path);
    }
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  return { stable: false, reason: `it changed under each of ${copies} copies in ${seconds} s (last: ${reason})`, attempts: copies };
}

const COMPANIONS = ['-wal', '-journal'] as const;

interface Fingerprint {
  readonly stat: Stats;
  readonly header: Buffer;
}

interface Fingerprints {
  readonly database: Fingerprint;
  readonly '-wal': Fingerprint | undefined;
  readonly '-journal': Fingerprint | undefined;
}

async function fingerprints(database: fs.FileHandle, absPath: string): Promise<Fingerprints> {
  const [wal, journal] = await Promise.all([fingerprintOf(`${absPath}-wal`, WAL_HEADER_BYTES), fingerprintOf(`${absPath}-journal`, JOURNAL_HEADER_BYTES)]);
  const stat = await database.stat();
  return { database: { stat, header: await readAt(database, DATABASE_HEADER_BYTES) }, '-wal': wal, '-journal': journal };
}

/** The file at `path` (never through a symlink, checked to be there: file-access.ts `openAt`), or undefined if there is none. */
async function fingerprintOf(path: string, headerBytes: number): Promise<Fingerprint | undefined> {
  let handle: fs.FileHandle;
  try {
    handle = await openAt(path, READ_FLAGS);
  } catch (error) {
    if (isVanished(error) || (error as NodeJS.ErrnoException).code === 'ELOOP') return undefined;
    throw error;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) return undefined;
    return { stat, header: await readAt(handle, headerBytes) };
  } finally {
    await handle.close();
  }
}

/** What changed between two fingerprints in a way that could mix two states; undefined if nothing did. */
function changeBetween(before: Fingerprints, after: Fingerprints): string | undefined {
  for (const suffix of COMPANIONS) {
    const was = before[suffix];
    const is = after[suffix];
    if ((was === undefined) !== (is === undefined)) return `its ${suffix} ${was === undefined ? 'appeared' : 'vanished'}`;
    if (was === undefined || is === undefined) continue;
    if (was.stat.ino !== is.stat.ino) return `its ${suffix} was replaced`;
    if (!was.header.equals(is.header)) return suffix === '-wal' ? 'its WAL was restarted or checkpointed to its start (new salts)' : 'its journal was committed or restarted';
    if (is.stat.size < was.stat.size) return `its ${suffix} was truncated`;
  }
  const db = { before: before.database, after: after.database };
  if (db.before.stat.ino !== db.after.stat.ino) return 'the database was replaced';
  // In WAL mode, with the same WAL throughout, only checkpoints write the database, and only
  // pages whose frames the WAL (copied after it) still holds: it may grow, shrink or change.
  // Not so for a WAL empty at both looks (a TRUNCATE checkpoint leaves 0 bytes): it has no
  // header to tell a restart by, and holds none of the pages a checkpoint in between wrote.
  const walMode = db.before.header[18] === 2 && db.before.header[19] === 2;
  if (walMode && before['-wal']?.header.length === WAL_HEADER_BYTES) return undefined;
  if (db.before.stat.size !== db.after.stat.size) return 'the database changed size';
  if (!db.before.header.equals(db.after.header)) return 'the database header changed (a commit)';
  if (db.before.stat.mtimeMs !== db.after.stat.mtimeMs) return 'the database was written';
  return undefined;
}

/** Up to `length` bytes from the start of an open file (fewer if it is shorter). */
async function readAt(handle: fs.FileHandle, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}

/**
 * Copies the first `size` bytes of an open file into the new file `destination`, leaving a
 * hole where a whole chunk reads as zeros: the same bytes to SQLite, and a `-journal` the
 * tenant made huge and sparse (`truncate -s 100G` after its records, a few KiB on disk, its
 * super-journal name perhaps at the very end) no longer fills the temporary directory.
 */
async function copyOpen(source: fs.FileHandle, size: number, destination: string, signal: AbortSignal | undefined): Promise<void> {
  const out = await fs.open(destination, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
  try {
    const chunk = Buffer.allocUnsafe(Math.min(COPY_CHUNK, Math.max(1, size)));
    let position = 0;
    while (position < size) {
      signal?.throwIfAborted();
      const { bytesRead } = await source.read(chunk, 0, Math.min(chunk.length, size - position), position);
      if (bytesRead === 0) break; // shrank: the size check says so
      await writeUnlessZeros(out, chunk.subarray(0, bytesRead), position);
      position += bytesRead;
    }
    await out.truncate(position);
  } finally {
    await out.close();
  }
}

/**
 * Copies the companion at `path`, as long as it is still the file `was` describes, up to the
 * size it has when opened (what is appended later is not needed). False if it is not.
 */
async function copyCompanion(path: string, was: Stats, destination: string, signal: AbortSignal | undefined): Promise<boolean> {
  let handle: fs.FileHandle;
  try {
    handle = await openAt(path, READ_FLAGS);
  } catch (error) {
    if (isVanished(error) || (error as NodeJS.ErrnoException).code === 'ELOOP') return false;
    throw error;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile() || stat.ino !== was.ino) return false;
    await (path.endsWith('-wal') ? copyWal : copyOpen)(handle, stat.size, destination, signal);
    return true;
  } finally {
    await handle.close();
  }
}

/**
 * Copies of the first `size` bytes of an open WAL what SQLite's recovery can use into the new
 * file `destination`: its header and the frames up to the first whose salts are not the
 * header's (https://sqlite.org/fileformat.html, "WAL File Format": recovery stops there, as at
 * the first checksum that fails). The `-wal` is the tenant's: a 100 GiB one that is a hole
 * after its frames (`truncate -s`, a few KiB on disk) made every backup of it write 100 GiB of
 * zeros into the temporary directory (the gateway's /tmp, shared with every tenant's backup
 * and the host). A header SQLite would not take (bad magic or page size) is copied alone.
 */
async function copyWal(source: fs.FileHandle, size: number, destination: string, signal: AbortSignal | undefined): Promise<void> {
  const out = await fs.open(destination, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
  try {
    const header = await readAt(source, Math.min(WAL_HEADER_BYTES, size));
    await writeWholeAt(out, header, 0);
    if (header.length < WAL_HEADER_BYTES) return;
    const magic = header.readUInt32BE(0);
    const pageSize = header.readUInt32BE(8);
    if ((magic | 1) !== WAL_MAGIC_BIG_ENDIAN || pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) return;
    const salts = header.subarray(16, 24);
    const frameBytes = WAL_FRAME_HEADER_BYTES + pageSize;
    const chunk = Buffer.allocUnsafe(Math.max(1, Math.floor(COPY_CHUNK / frameBytes)) * frameBytes);
    let position = WAL_HEADER_BYTES;
    for (;;) {
      signal?.throwIfAborted();
      const want = Math.min(chunk.length, size - position);
      if (want < frameBytes) return;
      const { bytesRead } = await source.read(chunk, 0, want - (want % frameBytes), position);
      let valid = 0;
      while (valid + frameBytes <= bytesRead && chunk.subarray(valid + 8, valid + 16).equals(salts)) valid += frameBytes;
      if (valid > 0) await writeWholeAt(out, chunk.subarray(0, valid), position);
      position += valid;
      if (valid < want - (want % frameBytes)) return; // a frame SQLite stops at, or the file shrank
    }
  } finally {
    await out.close();
  }
}

/** A WAL's magic number, big-endian checksums (the other has the lowest bit clear). */
const WAL_MAGIC_BIG_ENDIAN = 0x377f0683;
const WAL_FRAME_HEADER_BYTES = 24;

/** The 8 bytes that end a rollback journal naming a super-journal (https://sqlite.org/fileformat.html). */
const SUPER_JOURNAL_MAGIC = Buffer.from([0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7]);
/** After the super-journal's name: its length, its checksum (4 bytes each), the magic. */
const SUPER_JOURNAL_TAIL_BYTES = 16;

/**
 * Makes the private copy's journal (`<copy>-journal`) one SQLite rolls back without touching
 * any other file. A journal of a transaction over several databases (ATTACH) ends with the
 * name of its super-journal: SQLite rolls it back only if that file exists, and then deletes
 * the super-journal, by that name, unless a live journal still names it. The name is bytes in
 * a file the tenant writes: the copy's rollback, run by the backup, would delete any file its
 * user may (better-sqlite3's SQLite did, as root; Node 24's node:sqlite did not in our test).
 * So the backup decides itself whether the super-journal is there (`superJournalPresent`,
 * inside `tenantRoot`): there, the name is cut off and the copy rolled back; gone (the
 * transaction committed), the copy's journal is removed, as SQLite would have finalized it.
 * A journal naming none is left as it is.
 */
export async function detachSuperJournal(copyPath: string, tenantRoot: string): Promise<void> {
  const journal = `${copyPath}-journal`;
  const handle = await fs.open(journal, 'r+');
  let committed = false;
  try {
    const { size } = await handle.stat();
    if (size < JOURNAL_HEADER_BYTES + SUPER_JOURNAL_TAIL_BYTES) return;
    const tail = Buffer.alloc(SUPER_JOURNAL_TAIL_BYTES);
    await handle.read(tail, 0, tail.length, size - tail.length);
    if (!tail.subarray(8).equals(SUPER_JOURNAL_MAGIC)) return;
    const length = tail.readUInt32BE(0);
    // SQLite ignores a name that does not fit or fails its checksum (and rolls back): so does this.
    if (length > 0 && length <= MAX_PATH_BYTES && length <= size - SUPER_JOURNAL_TAIL_BYTES) {
      const name = Buffer.alloc(length);
      await handle.read(name, 0, length, size - SUPER_JOURNAL_TAIL_BYTES - length);
      // The checksum sums the name's C chars: signed on x86-64, unsigned on arm64.
      const checksum = tail.readUInt32BE(4);
      const signed = name.reduce((sum, byte) => (sum + (byte < 0x80 ? byte : byte - 0x100)) >>> 0, 0);
      const unsigned = name.reduce((sum, byte) => (sum + byte) >>> 0, 0);
      const end = name.indexOf(0);
      if (checksum === signed || checksum === unsigned) committed = !(await superJournalPresent(decodeRawName(name, 0, end === -1 ? length : end), tenantRoot));
    }
    if (!committed) await writeWholeAt(handle, Buffer.alloc(SUPER_JOURNAL_MAGIC.length), size - SUPER_JOURNAL_MAGIC.length);
  } finally {
    await handle.close();
  }
  if (committed) await fs.rm(journal);
}

/** SQLite's longest path (its unix VFS's MAX_PATHNAME). */
const MAX_PATH_BYTES = 512;

/**
 * Whether the super-journal `name` is there, as SQLite tells (a file of 0 bytes is not). Only
 * looked for in the tenant, without a symlink: one named elsewhere (the gateway may see the
 * tenant at another path), or that cannot be looked at, counts as there, and the copy is
 * rolled back: a rollback always leaves a consistent state, at worst without the last commit.
 */
async function superJournalPresent(name: string, tenantRoot: string): Promise<boolean> {
  if (!name.startsWith(`${tenantRoot}/`) || path.posix.normalize(name) !== name) return true;
  let handle: fs.FileHandle;
  try {
    handle = await openAt(name, READ_FLAGS);
  } catch (error) {
    return !isVanished(error);
  }
  try {
    const stat = await handle.stat();
    return !stat.isFile() || stat.size > 0;
  } finally {
    await handle.close();
  }
}
