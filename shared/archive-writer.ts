// Turns a tenant directory into the bytes of a backup archive, streamed in bounded memory:
//
//   [skippable zstd frame: archive marker] [zstd frame] [zstd frame] …
//
// The zstd frames, decoded and concatenated, are one plain POSIX tar stream (pax headers
// where names need them) whose entries all live under `tenants/<name>/`, ending with the
// manifest. `zstd -dc | tar -x` restores it; the marker tells our restore that the archive
// is ours, so a missing manifest means damage rather than a foreign archive.

import { createHash } from 'node:crypto';
import { constants as fsConstants, promises as fs, type Stats } from 'node:fs';
import { once } from 'node:events';
import tar, { type Header as TarHeader, type Pack as TarPack } from 'tar-stream';

import { entryNameFor } from './names.js';
import {
  MANIFEST_FILE_NAME,
  MANIFEST_FORMAT,
  MANIFEST_FORMAT_VERSION,
  serializeManifest,
  type Manifest,
  type ManifestEntry,
  type ManifestNote,
} from './manifest.js';
import { walkTenant, isVanished, type WalkItem } from './tenant-walk.js';
import { compressFrames, skippableFrame, type CompressOptions } from './zstd-frames.js';
import { TOOL_NAME, TOOL_VERSION } from './version.js';

/** Payload of the leading skippable frame; its magic nibble is ARCHIVE_MARKER_NIBBLE. */
export interface ArchiveMarker {
  readonly format: typeof MANIFEST_FORMAT;
  readonly formatVersion: number;
  readonly tenant: string;
}
export const ARCHIVE_MARKER_NIBBLE = 0x0c;

/** Files up to this size are read whole (and re-read if they change); larger ones stream. */
const WHOLE_READ_LIMIT = 8 * 1024 * 1024;
const STREAM_CHUNK = 1024 * 1024;
/** How many times a small file that changes while read is read again. */
const REREAD_ATTEMPTS = 3;

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
}

export interface TenantArchive {
  /** The archive's bytes; consume it once. Stopping early cancels the walk. */
  readonly chunks: AsyncGenerator<Buffer>;
  /** Resolves once the manifest has been written into the stream. */
  readonly summary: Promise<ArchiveSummary>;
}

export function createTenantArchive(options: TenantArchiveOptions): TenantArchive {
  const pack = tar.pack();
  const summary = packTenant(pack, options);
  summary.catch((error: unknown) => pack.destroy(error as Error));

  const marker: ArchiveMarker = { format: MANIFEST_FORMAT, formatVersion: MANIFEST_FORMAT_VERSION, tenant: options.tenant };
  async function* chunks(): AsyncGenerator<Buffer> {
    try {
      yield skippableFrame(Buffer.from(JSON.stringify(marker)), ARCHIVE_MARKER_NIBBLE);
      yield* compressFrames(pack as AsyncIterable<Uint8Array>, options.compression);
      await summary;
    } finally {
      if (!pack.destroyed) pack.destroy(undefined);
    }
  }
  return { chunks: chunks(), summary };
}

async function packTenant(pack: TarPack, options: TenantArchiveOptions): Promise<ArchiveSummary> {
  const { tenant, tenantDir } = options;
  const entries: ManifestEntry[] = [];
  const skipped: ManifestNote[] = [];
  const warnings: ManifestNote[] = [];
  const totals = { files: 0, directories: 0, symlinks: 0, bytes: 0 };

  for await (const item of walkTenant(tenantDir, skipped)) {
    if (pack.destroyed) throw new Error('archive stream closed');
    const entry = await packItem(pack, tenant, item, warnings, skipped);
    if (entry === undefined) continue;
    entries.push(entry);
    if (entry.type === 'file') {
      totals.files++;
      totals.bytes += entry.size;
      options.onProgress?.({ files: totals.files, bytes: totals.bytes });
    } else if (entry.type === 'directory') totals.directories++;
    else totals.symlinks++;
  }

  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    formatVersion: MANIFEST_FORMAT_VERSION,
    tenant,
    createdAt: options.createdAt.toISOString(),
    tool: { name: TOOL_NAME, version: TOOL_VERSION },
    entries,
    skipped,
    warnings,
    totals,
  };
  const manifestBytes = serializeManifest(manifest);
  await addEntry(pack, { name: entryNameFor(tenant, MANIFEST_FILE_NAME), type: 'file', mode: 0o600, mtime: options.createdAt }, manifestBytes);
  pack.finalize();
  return { manifest, manifestSha256: sha256(manifestBytes) };
}

async function packItem(
  pack: TarPack,
  tenant: string,
  item: WalkItem,
  warnings: ManifestNote[],
  skipped: ManifestNote[],
): Promise<ManifestEntry | undefined> {
  const name = entryNameFor(tenant, item.relPath);
  const mode = item.stat.mode & 0o7777;
  const mtime = item.stat.mtime;
  const mtimeMs = Math.floor(item.stat.mtimeMs);
  switch (item.kind) {
    case 'directory':
      await addEntry(pack, { name, type: 'directory', mode, mtime });
      return { path: item.relPath, type: 'directory', mode, mtimeMs };
    case 'symlink':
      await addEntry(pack, { name, type: 'symlink', linkname: item.target, mode: 0o777, mtime });
      return { path: item.relPath, type: 'symlink', target: item.target, mtimeMs };
    case 'file': {
      const archived = await packFile(pack, name, item.absPath, item.stat, (reason) => warnings.push({ path: item.relPath, reason }));
      if (archived === undefined) {
        skipped.push({ path: item.relPath, reason: 'vanished during backup' });
        return undefined;
      }
      return { path: item.relPath, type: 'file', size: archived.size, mode, mtimeMs: Math.floor(archived.stat.mtimeMs), sha256: archived.sha256 };
    }
  }
}

interface ArchivedFile {
  readonly size: number;
  readonly sha256: string;
  readonly stat: Stats;
}

/** Archives one regular file without following a symlink swapped in after the walk; undefined if it vanished. */
async function packFile(
  pack: TarPack,
  name: string,
  absPath: string,
  walkStat: Stats,
  warn: (reason: string) => void,
): Promise<ArchivedFile | undefined> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(absPath, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch (error) {
    if (isVanished(error) || (error as NodeJS.ErrnoException).code === 'ELOOP') return undefined;
    throw error;
  }
  try {
    let stat = await handle.stat();
    if (!stat.isFile()) return undefined;
    const mode = walkStat.mode & 0o7777;
    if (stat.size <= WHOLE_READ_LIMIT) {
      let content = await handle.readFile();
      for (let attempt = 1; ; attempt++) {
        const after = await handle.stat();
        if (sameVersion(stat, after) && after.size === content.length) break;
        if (attempt > REREAD_ATTEMPTS) {
          warn('file changed as we read it; archived as last read');
          stat = after;
          break;
        }
        stat = after;
        content = await handle.read({ buffer: Buffer.alloc(after.size), position: 0 }).then((r) => r.buffer.subarray(0, r.bytesRead));
      }
      await addEntry(pack, { name, type: 'file', mode, mtime: stat.mtime }, content);
      return { size: content.length, sha256: sha256(content), stat };
    }
    return await streamLargeFile(pack, name, handle, stat, mode, warn);
  } finally {
    await handle.close();
  }
}

async function streamLargeFile(
  pack: TarPack,
  name: string,
  handle: fs.FileHandle,
  stat: Stats,
  mode: number,
  warn: (reason: string) => void,
): Promise<ArchivedFile> {
  const size = stat.size;
  const hash = createHash('sha256');
  const done = entryDone();
  const sink = pack.entry({ name, type: 'file', mode, mtime: stat.mtime, size }, done.callback);
  let position = 0;
  let shrank = false;
  while (position < size) {
    const length = Math.min(STREAM_CHUNK, size - position);
    let chunk = Buffer.allocUnsafe(length);
    const { bytesRead } = await handle.read(chunk, 0, length, position);
    if (bytesRead === 0) {
      shrank = true;
      chunk = Buffer.alloc(length); // tar needs the size the header promised: pad, as GNU tar does
    } else if (bytesRead < length) chunk = chunk.subarray(0, bytesRead);
    hash.update(chunk);
    position += chunk.length;
    if (!sink.write(chunk)) await once(sink as unknown as NodeJS.EventEmitter, 'drain');
  }
  sink.end(undefined);
  await done.promise;
  const after = await handle.stat();
  if (shrank) warn('file shrank while read; archived padded with zeros');
  else if (!sameVersion(stat, after)) warn('file changed as we read it; archived as read');
  return { size, sha256: hash.digest('hex'), stat };
}

function sameVersion(a: Stats, b: Stats): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino;
}

function addEntry(pack: TarPack, header: Partial<TarHeader> & { name: string }, content?: Buffer): Promise<void> {
  const done = entryDone();
  if (content === undefined) pack.entry(header, done.callback);
  else pack.entry(header, content, done.callback);
  return done.promise;
}

function entryDone(): { promise: Promise<void>; callback: (error?: Error | null) => void } {
  let callback!: (error?: Error | null) => void;
  const promise = new Promise<void>((resolve, reject) => {
    callback = (error) => (error ? reject(error) : resolve());
  });
  return { promise, callback };
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
