// Turns a tenant directory into the bytes of a backup archive, streamed in bounded memory:
//
//   [skippable zstd frame: archive marker] [zstd frame] [zstd frame] …
//
// The zstd frames, decoded and concatenated, are one plain POSIX tar stream (pax headers
// where names need them) whose entries all live under `tenants/<name>/`, ending with the
// manifest. `zstd -dc | tar -x` restores it; the marker tells our restore that the archive
// is ours, so a missing manifest means damage rather than a foreign archive.
//
// The tenant is live while it is read (docs/consistency.md): every file is archived as one
// version of itself (re-read while it changes, see stable-read.ts, else warned about), and
// every SQLite database, recognised by its header, as one transactionally consistent state
// (sqlite-snapshot.ts); there is no snapshot across files. Temporary copies live in a private
// directory (temp-area.ts) removed when the run ends.

import crypto, { createHash } from 'node:crypto';
import { constants as fsConstants, promises as fs, readSync, type Stats } from 'node:fs';

import { entryNameFor } from '../tenant/names.js';
import {
  MANIFEST_FILE_NAME,
  MANIFEST_FORMAT,
  MANIFEST_FORMAT_VERSION,
  serializeManifest,
  type ArchiveMarker,
  type Manifest,
  type ManifestNote,
} from '../archive/manifest.js';
import { TreeDigest, type TreeEntry } from '../archive/tree-digest.js';
import { checkDatabaseOpens, companionBaseName, companionNames, isSqliteHeader, snapshotDatabase } from './sqlite-snapshot.js';
import { ioModeFor, type IoMode } from '../io-mode.js';
import { readHead, readWhole, readWholeSync, sameVersion, spoolFile } from './stable-read.js';
import { TempArea } from './temp-area.js';
import { walkTenant, isVanished, noteVanished, type WalkItem, type WalkNotes } from './tenant-walk.js';
import { encodeHeader, END_OF_ARCHIVE, paddingAfter, type EntryToWrite } from '../archive/tar-format.js';
import { FrameWriter, type CompressOptions } from '../archive/zstd-encoder.js';
import { skippableFrame } from '../archive/zstd-format.js';
import { TOOL_NAME, TOOL_VERSION } from '../version.js';

/** The leading skippable frame's magic nibble; its payload is an ArchiveMarker (manifest.ts). */
export const ARCHIVE_MARKER_NIBBLE = 0x0c;

/** Files up to this size are read whole (and re-read if they change); larger ones stream. */
const WHOLE_READ_LIMIT = 8 * 1024 * 1024;
/** Zeros hashed at a time for a file that came up short. */
const STREAM_CHUNK = 1024 * 1024;
/** A large file modified this recently is probably being written: it is spooled so it can be re-read. */
const RECENTLY_MODIFIED_MS = 60_000;

export interface ArchiveProgress {
  readonly files: number;
  readonly bytes: number;
}

export interface ArchiveSummary {
  readonly manifest: Manifest;
  readonly manifestSha256: string;
}

export interface TenantArchiveOptions {
  /** Absolute path of the tenant directory. */
  readonly tenantDir: string;
  readonly tenant: string;
  readonly createdAt: Date;
  readonly compression?: CompressOptions;
  readonly onProgress?: (progress: ArchiveProgress) => void;
  /** How to call the file system; by default chosen for the tenant's file system (io-mode.ts). */
  readonly ioMode?: IoMode;
}

export interface TenantArchive {
  /** The archive's bytes; consume it once. Stopping early cancels the walk. */
  readonly chunks: AsyncGenerator<Buffer>;
  /** Resolves once the manifest has been written into the stream. */
  readonly summary: Promise<ArchiveSummary>;
}

export function createTenantArchive(options: TenantArchiveOptions): TenantArchive {
  const out = new FrameWriter(options.compression);
  const summary = packTenant(out, options);
  summary.catch((error: unknown) => out.abort(error));

  const marker: ArchiveMarker = { format: MANIFEST_FORMAT, formatVersion: MANIFEST_FORMAT_VERSION, tenant: options.tenant };
  async function* chunks(): AsyncGenerator<Buffer> {
    try {
      yield skippableFrame(Buffer.from(JSON.stringify(marker)), ARCHIVE_MARKER_NIBBLE);
      yield* out.frames();
      await summary;
    } finally {
      out.abort(new Error('archive stream closed'));
    }
  }
  return { chunks: chunks(), summary };
}

async function packTenant(out: FrameWriter, options: TenantArchiveOptions): Promise<ArchiveSummary> {
  const { tenant, tenantDir } = options;
  const digest = new TreeDigest();
  const notes: WalkNotes = { skipped: [], warnings: [] };
  const totals = { files: 0, directories: 0, symlinks: 0, bytes: 0 };
  const ioMode = options.ioMode ?? ioModeFor(tenantDir);
  const context: PackContext = { out, scratch: Buffer.allocUnsafe(WHOLE_READ_LIMIT), tenant, notes, ioMode, temp: new TempArea(), snapshotted: new Set(), settled: new Set() };
  /** Companions met before their database (not the walk's byte order, but allowed): held until it is packed. */
  const waiting = new Map<string, FileItem[]>();

  const record = (entry: TreeEntry | undefined): void => {
    if (entry === undefined) return;
    digest.add(entry);
    if (entry.type === 'file') {
      totals.files++;
      totals.bytes += entry.size;
      options.onProgress?.({ files: totals.files, bytes: totals.bytes });
    } else if (entry.type === 'directory') totals.directories++;
    else totals.symlinks++;
  };

  try {
    for await (const item of walkTenant(tenantDir, notes, ioMode)) {
      if (item.kind === 'file') {
        const base = databaseOf(item);
        if (base !== undefined && !context.settled.has(base)) {
          waiting.set(base, [...(waiting.get(base) ?? []), item]);
          continue;
        }
        record(await packCompanionOrFile(context, item, base));
        if (hasCompanions(item)) {
          context.settled.add(item.relPath);
          for (const companion of waiting.get(item.relPath) ?? []) record(await packCompanionOrFile(context, companion, item.relPath));
          waiting.delete(item.relPath);
        }
      } else {
        record(await packItem(context, item));
      }
    }
    // Companions whose database never came (it was not a regular file, or vanished from the listing).
    for (const companions of waiting.values()) for (const companion of companions) record(await packFile(context, companion));
  } finally {
    await context.temp.dispose();
  }

  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    formatVersion: MANIFEST_FORMAT_VERSION,
    tenant,
    createdAt: options.createdAt.toISOString(),
    tool: { name: TOOL_NAME, version: TOOL_VERSION },
    directories: digest.digests(),
    skipped: notes.skipped,
    warnings: notes.warnings,
    totals,
  };
  const manifestBytes = serializeManifest(manifest);
  await addEntry(out, { name: entryNameFor(tenant, MANIFEST_FILE_NAME), type: 'file', mode: 0o600, mtime: tarMtime(options.createdAt.getTime()) }, manifestBytes);
  await out.write(END_OF_ARCHIVE);
  await out.close();
  return { manifest, manifestSha256: sha256(manifestBytes) };
}

type FileItem = Extract<WalkItem, { kind: 'file' }>;

interface PackContext {
  readonly out: FrameWriter;
  /** Whole reads land here: copied into the archive before the next read. */
  readonly scratch: Buffer;
  readonly tenant: string;
  readonly notes: WalkNotes;
  readonly ioMode: IoMode;
  readonly temp: TempArea;
  /** Databases archived as snapshots (relative paths): their companions are left out. */
  readonly snapshotted: Set<string>;
  /** Files with a companion beside them that have been packed (relative paths). */
  readonly settled: Set<string>;
}

/** The relative path of the database a companion file (`x-wal`, `x-shm`, `x-journal`) belongs to, if `x` is beside it. */
function databaseOf(item: FileItem): string | undefined {
  const base = companionBaseName(item.name);
  if (base === undefined || !item.siblings.has(base)) return undefined;
  return item.relPath.slice(0, item.relPath.length - item.name.length) + base;
}

function hasCompanions(item: FileItem): boolean {
  return companionNames(item.name).some((name) => item.siblings.has(name));
}

async function packCompanionOrFile(context: PackContext, item: FileItem, database: string | undefined): Promise<TreeEntry | undefined> {
  if (database !== undefined && context.snapshotted.has(database)) {
    context.notes.skipped.push({ path: item.relPath, reason: `SQLite companion of ${database}, which was archived as a consistent snapshot` });
    return undefined;
  }
  return packFile(context, item);
}

async function packItem(context: PackContext, item: Exclude<WalkItem, FileItem>): Promise<TreeEntry> {
  const name = entryNameFor(context.tenant, item.relPath);
  const mtime = tarMtime(item.stat.mtimeMs);
  if (item.kind === 'directory') {
    await addEntry(context.out, { name, type: 'directory', mode: item.stat.mode & 0o7777, mtime });
    return { path: item.relPath, type: 'directory' };
  }
  await addEntry(context.out, { name, type: 'symlink', linkname: item.target, mode: 0o777, mtime });
  return { path: item.relPath, type: 'symlink', target: item.target };
}

interface ArchivedFile {
  readonly size: number;
  readonly sha256: string;
}

/** Archives one regular file without following a symlink swapped in after the walk; undefined if it vanished. */
async function packFile(context: PackContext, item: FileItem): Promise<TreeEntry | undefined> {
  if (context.ioMode === 'sync' && item.stat.size <= WHOLE_READ_LIMIT) {
    const read = await readWholeSync(item.absPath, WHOLE_READ_LIMIT, { scratch: context.scratch, listed: item.stat });
    if (read === 'vanished') {
      noteVanished(context.notes, item.relPath);
      return undefined;
    }
    // Databases, and files that grew past the limit since the walk, take the general path below.
    if (read !== 'large' && !isSqliteHeader(read.content)) {
      const mode = item.stat.mode & 0o7777;
      if (!read.stable) context.notes.warnings.push({ path: item.relPath, reason: CHANGED_WARNING });
      await addEntry(context.out, { name: entryNameFor(context.tenant, item.relPath), type: 'file', mode, mtime: tarMtime(read.stat.mtimeMs) }, read.content);
      return { path: item.relPath, type: 'file', size: read.content.length, sha256: sha256(read.content) };
    }
  }
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(item.absPath, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch (error) {
    if (isVanished(error) || (error as NodeJS.ErrnoException).code === 'ELOOP') {
      noteVanished(context.notes, item.relPath);
      return undefined;
    }
    throw error;
  }
  let archived: ArchivedFile | undefined;
  try {
    const stat = await handle.stat();
    if (stat.isFile()) archived = await packContent(context, item, handle, stat, true);
  } finally {
    await handle.close();
  }
  if (archived === undefined) {
    noteVanished(context.notes, item.relPath);
    return undefined;
  }
  return { path: item.relPath, type: 'file', size: archived.size, sha256: archived.sha256 };
}

/**
 * Archives an open regular file. Small files are read whole (and re-read while they change);
 * a large one that was modified recently is copied to a spool file first (re-copied while
 * it changes) because its size must be known before its content; any other large file is
 * streamed straight from the handle, and only warned about if it changes anyway. A file
 * starting with the SQLite header takes the database path when `sniff` is set.
 */
async function packContent(context: PackContext, item: FileItem, handle: fs.FileHandle, stat: Stats, sniff: boolean): Promise<ArchivedFile> {
  const name = entryNameFor(context.tenant, item.relPath);
  const mode = item.stat.mode & 0o7777;
  const warn = (reason: string) => context.notes.warnings.push({ path: item.relPath, reason });
  if (stat.size <= WHOLE_READ_LIMIT) {
    const first = await readHead(handle, stat.size);
    if (sniff && isSqliteHeader(first)) return packDatabase(context, item, handle, stat);
    const version = await readWhole(handle, stat, WHOLE_READ_LIMIT, first);
    if (version !== undefined) {
      if (!version.stable) warn(CHANGED_WARNING);
      await addEntry(context.out, { name, type: 'file', mode, mtime: tarMtime(version.stat.mtimeMs) }, version.content);
      return { size: version.content.length, sha256: sha256(version.content) };
    }
    stat = await handle.stat(); // grew past the limit while read: a large file now
  }
  let head: Buffer | undefined = await readHead(handle, Math.min(STREAM_CHUNK, stat.size));
  if (sniff && isSqliteHeader(head)) return packDatabase(context, item, handle, stat);
  if (Date.now() - stat.mtimeMs < RECENTLY_MODIFIED_MS) {
    const spooled = await packSpooled(context, name, mode, handle, stat, warn);
    if (spooled !== undefined) return spooled;
    stat = await handle.stat(); // no room to spool: stream it after all
    head = undefined;
  }
  const streamed = await streamEntry(context, { name, mode, mtime: tarMtime(stat.mtimeMs) }, handle, stat.size, head);
  const after = await handle.stat();
  if (streamed.shortBy > 0) warn('file shrank while read; archived padded with zeros');
  else if (!sameVersion(stat, after)) warn(`${CHANGED_WARNING} (streamed: too large to hold, and not recently modified)`);
  return { size: stat.size, sha256: streamed.sha256 };
}

const CHANGED_WARNING = 'file changed as we read it; archived as last read';

/** A stable copy through a spool file; undefined if the spool cannot be written (no room in the temp dir). */
async function packSpooled(
  context: PackContext,
  name: string,
  mode: number,
  handle: fs.FileHandle,
  stat: Stats,
  warn: (reason: string) => void,
): Promise<ArchivedFile | undefined> {
  const spool = await context.temp.file('spool');
  try {
    let copy;
    try {
      copy = await spoolFile(handle, stat, spool);
    } catch (error) {
      if (NO_ROOM.has((error as NodeJS.ErrnoException).code ?? '')) return undefined;
      throw error;
    }
    if (!copy.stable) warn(CHANGED_WARNING);
    return await archiveTempFile(context, name, mode, spool, copy.stat.mtimeMs);
  } finally {
    await context.temp.remove(spool);
  }
}

const NO_ROOM = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);

/**
 * A file that starts with the SQLite header. An idle database (nothing beside it, nothing
 * appearing while it is copied) is already its own consistent state: it is copied like any
 * file, without opening the live file in SQLite (which would create `-wal`/`-shm` beside it),
 * then the copy is checked to open. A database in use (a `-wal`, `-shm` or `-journal` beside
 * it) is copied through SQLite's online backup API; if that fails it is archived raw, with
 * its companions, and a warning.
 */
async function packDatabase(context: PackContext, item: FileItem, handle: fs.FileHandle, stat: Stats): Promise<ArchivedFile> {
  const name = entryNameFor(context.tenant, item.relPath);
  const mode = item.stat.mode & 0o7777;
  const warn = (reason: string) => context.notes.warnings.push({ path: item.relPath, reason });
  const companionPaths = companionNames(item.absPath);

  if (!hasCompanions(item)) {
    const copyPath = await context.temp.file('database');
    try {
      const copy = await spoolFile(handle, stat, copyPath).catch((error: unknown) => {
        if (NO_ROOM.has((error as NodeJS.ErrnoException).code ?? '')) return undefined; // the snapshot path says why
        throw error;
      });
      if (copy?.stable && !(await anyExists(companionPaths))) {
        const problem = checkDatabaseOpens(copyPath);
        if (problem !== undefined) warn(`SQLite database does not open (${problem}); archived as is`);
        return await archiveTempFile(context, name, mode, copyPath, copy.stat.mtimeMs);
      }
    } finally {
      await context.temp.remove(copyPath);
    }
    // It changed, or SQLite files appeared beside it (a connection is using it now), or there
    // was no room to copy it.
  }

  const snapshotPath = await context.temp.file('snapshot');
  try {
    const before = await handle.stat();
    const outcome = (await isSameFile(item.absPath, before))
      ? await snapshotDatabase(item.absPath, snapshotPath)
      : ({ ok: false, reason: 'the path no longer names the file that was opened' } as const);
    if (outcome.ok && (await isSameFile(item.absPath, before))) {
      context.snapshotted.add(item.relPath);
      return await archiveTempFile(context, name, mode, snapshotPath, before.mtimeMs);
    }
    const reason = outcome.ok ? 'the file was replaced while it was copied' : outcome.reason;
    warn(`SQLite snapshot failed (${reason}); archived raw with its -wal/-shm/-journal, which may not be consistent`);
  } finally {
    await context.temp.remove(snapshotPath);
  }
  return packContent(context, item, handle, await handle.stat(), false);
}

/** Whether `absPath` (not followed if a symlink) is still the file `stat` describes. */
async function isSameFile(absPath: string, stat: Stats): Promise<boolean> {
  const now = await fs.lstat(absPath).catch(() => undefined);
  return now !== undefined && now.isFile() && now.ino === stat.ino && now.dev === stat.dev;
}

async function anyExists(paths: readonly string[]): Promise<boolean> {
  const found = await Promise.all(paths.map((p) => fs.lstat(p).then(() => true, (error: unknown) => !isVanished(error))));
  return found.includes(true);
}

/** Archives a private temporary file (a snapshot or spool copy) under the tenant file's name, mode and mtime. */
async function archiveTempFile(context: PackContext, name: string, mode: number, file: string, mtimeMs: number): Promise<ArchivedFile> {
  const handle = await fs.open(file, 'r');
  try {
    const { size } = await handle.stat();
    const streamed = await streamEntry(context, { name, mode, mtime: tarMtime(mtimeMs) }, handle, size);
    return { size, sha256: streamed.sha256 };
  } finally {
    await handle.close();
  }
}

/**
 * Streams `size` bytes of `handle` into one tar entry, read straight into the archive's frame
 * buffers, starting with `head` (the first bytes, already read) if given. A file that comes
 * up short is padded with zeros (the header has promised the size), as GNU tar does.
 */
async function streamEntry(
  context: PackContext,
  header: { name: string; mode: number; mtime: number },
  handle: fs.FileHandle,
  size: number,
  head?: Buffer,
): Promise<{ sha256: string; shortBy: number }> {
  const { out } = context;
  const hash = createHash('sha256');
  await out.write(encodeHeader({ ...header, type: 'file', size }));
  let position = 0;
  if (head !== undefined && head.length > 0) {
    const first = head.subarray(0, size);
    hash.update(first);
    await out.write(first);
    position = first.length;
  }
  const hashed = (target: Buffer, offset: number, bytesRead: number): number => {
    hash.update(target.subarray(offset, offset + bytesRead));
    position += bytesRead;
    return bytesRead;
  };
  const read =
    context.ioMode === 'sync'
      ? (target: Buffer, offset: number, length: number) => hashed(target, offset, readSync(handle.fd, target, offset, length, position))
      : async (target: Buffer, offset: number, length: number) => hashed(target, offset, (await handle.read(target, offset, length, position)).bytesRead);
  const streamed = position + (await out.readInto(size - position, read));
  const shortBy = size - streamed;
  if (shortBy > 0) {
    const zeros = Buffer.alloc(Math.min(shortBy, STREAM_CHUNK));
    for (let left = shortBy; left > 0; left -= zeros.length) hash.update(left >= zeros.length ? zeros : zeros.subarray(0, left));
    await out.zeros(shortBy);
  }
  await out.zeros(paddingAfter(size));
  return { sha256: hash.digest('hex'), shortBy };
}

async function addEntry(out: FrameWriter, entry: EntryToWrite, content?: Buffer): Promise<void> {
  await out.write(encodeHeader(content === undefined ? entry : { ...entry, size: content.length }));
  if (content === undefined || content.length === 0) return;
  await out.write(content);
  await out.zeros(paddingAfter(content.length));
}

/**
 * A tar header's mtime: whole seconds, truncated as GNU tar does. Not `stat.mtime`: Node
 * rounds that Date to the nearest millisecond, so a file modified in the last half
 * millisecond of a second would be archived a second late.
 */
function tarMtime(mtimeMs: number): number {
  return Math.floor(mtimeMs / 1000);
}

export function sha256(bytes: Uint8Array): string {
  return oneShotHash !== undefined ? oneShotHash('sha256', bytes, 'hex') : createHash('sha256').update(bytes).digest('hex');
}

/** crypto.hash (Node 20.12+): one call instead of a Hash object per file. */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: Uint8Array, encoding: 'hex') => string }).hash;
