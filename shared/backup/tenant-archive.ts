// Turns a tenant directory into the bytes of a backup archive, streamed in bounded memory:
// the walk (tenant-walk.ts) in byte order; small files read ahead of the writer
// (read-ahead.ts: reader threads on a local disk, many calls in flight on a network file
// system) and archived as read, unless they turn out to be databases; every other file as
// live-files.ts chooses to read it (SQLite companions held back until their database is
// settled); the tree's digest and totals, and the manifest, all written by
// archive/archive-writer.ts.

import { ArchiveWriter } from '../archive/archive-writer.js';
import type { CompressOptions } from '../archive/zstd-encoder.js';
import { MANIFEST_FORMAT, MANIFEST_FORMAT_VERSION, type Manifest } from '../archive/manifest.js';
import { TreeDigest, type TreeEntry } from '../archive/tree-digest.js';
import { fileAccessFor, type FileAccess } from '../file-access.js';
import { TOOL_NAME, TOOL_VERSION } from '../version.js';
import { databaseOf, hasCompanions, packCompanionOrFile, packFile, WHOLE_READ_LIMIT, type FileItem, type PackContext } from './live-files.js';
import { sqlitePolicyFor, type SqliteOptions } from './sqlite-policy.js';
import { TempArea } from './temp-area.js';
import { readAheadFor } from './read-ahead.js';
import { READ_VANISHED, READ_WHOLE } from './read-run.js';
import { isSqliteHeader } from './sqlite-snapshot.js';
import { noteVanished, recordNote, TenantWalk, type WalkItem, type WalkNotes } from './tenant-walk.js';

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
  /** How to call the file system; by default chosen for the tenant's (file-access.ts). */
  readonly fileAccess?: FileAccess;
  /** How live SQLite databases are read; by default by the tenant's file system (sqlite-policy.ts). */
  readonly sqlite?: SqliteOptions;
}

export interface TenantArchive {
  /** The archive's bytes; consume it once. Stopping early cancels the walk. */
  readonly chunks: AsyncGenerator<Buffer>;
  /** Resolves once the manifest has been written into the stream. */
  readonly summary: Promise<ArchiveSummary>;
  /** Bytes of file content read so far, the file being read included (ArchiveProgress counts finished files). */
  contentRead(): number;
}

export function createTenantArchive(options: TenantArchiveOptions): TenantArchive {
  const writer = new ArchiveWriter(options.tenant, options.compression, options.createdAt);
  const summary = packTenant(writer, options);
  summary.catch((error: unknown) => writer.abort(error));

  async function* chunks(): AsyncGenerator<Buffer> {
    try {
      yield* writer.chunks();
      await summary;
    } finally {
      writer.abort(new Error('archive stream closed'));
    }
  }
  return { chunks: chunks(), summary, contentRead: () => writer.contentRead };
}

async function packTenant(writer: ArchiveWriter, options: TenantArchiveOptions): Promise<ArchiveSummary> {
  const { tenant, tenantDir } = options;
  const digest = new TreeDigest();
  const notes: WalkNotes = { skipped: [], warnings: [] };
  const totals = { files: 0, directories: 0, symlinks: 0, bytes: 0 };
  const access = options.fileAccess ?? fileAccessFor(tenantDir);
  const context: PackContext = { writer, scratch: Buffer.allocUnsafe(WHOLE_READ_LIMIT), notes, access, temp: new TempArea(), snapshotted: new Set(), settled: new Set(), sqlite: sqlitePolicyFor(tenantDir, options.sqlite) };
  /** Companions met before their database (not the walk's byte order, but allowed): held until it is packed. */
  const waiting = new Map<string, FileItem[]>();

  const recordFile = (path: string, size: number, sha256: string): void => {
    digest.add({ path, type: 'file', size, sha256 });
    totals.files++;
    totals.bytes += size;
    options.onProgress?.({ files: totals.files, bytes: totals.bytes });
  };
  const record = (entry: TreeEntry | undefined): void => {
    if (entry === undefined) return;
    if (entry.type === 'file') return recordFile(entry.path, entry.size, entry.sha256);
    digest.add(entry);
    if (entry.type === 'directory') totals.directories++;
    else totals.symlinks++;
  };
  /** A file the read-ahead did not archive: the general way, companions after their database. */
  const packInTurn = async (item: FileItem): Promise<void> => {
    const base = databaseOf(item);
    if (base !== undefined && !context.settled.has(base)) {
      waiting.set(base, [...(waiting.get(base) ?? []), item]);
      return;
    }
    record(await packCompanionOrFile(context, item, base));
    if (hasCompanions(item)) {
      context.settled.add(item.relPath);
      for (const companion of waiting.get(item.relPath) ?? []) record(await packCompanionOrFile(context, companion, item.relPath));
      waiting.delete(item.relPath);
    }
  };

  // Databases with companions, and the companions, are read in their turn (live-files.ts), not ahead.
  const ahead = readAheadFor(new TenantWalk(tenantDir, access), access, (item) => databaseOf(item) === undefined && !hasCompanions(item));
  try {
    for (;;) {
      const next = ahead.next();
      const segment = next instanceof Promise ? await next : next;
      if (segment === undefined) break;
      const { items, slots } = segment;
      for (let i = 0; i < items.length; i++) {
        const item = items[i]!;
        if (item.kind === 'note') {
          recordNote(notes, item);
          continue;
        }
        if (item.kind !== 'file') {
          record(await packItem(writer, item));
          continue;
        }
        const slot = slots[i]!;
        if (slot !== -1) {
          const found = segment.partOf(slot);
          const part = found instanceof Promise ? await found : found;
          const outcome = part.outcome(slot);
          if (outcome === READ_VANISHED) {
            noteVanished(notes, item.relPath);
            continue;
          }
          if (outcome === READ_WHOLE) {
            const content = part.content(slot);
            // A database (by its header) takes the general way: a snapshot, or a checked copy.
            if (!isSqliteHeader(content)) {
              const written = writer.file({ relPath: item.relPath, mode: part.mode(slot), mtimeMs: part.mtimeMs(slot) }, content);
              if (written !== undefined) await written;
              recordFile(item.relPath, content.length, part.sha256(slot));
              continue;
            }
          }
        }
        await packInTurn(item);
      }
    }
    // Companions whose database never came (it was not a regular file, or vanished from the listing).
    for (const companions of waiting.values()) for (const companion of companions) record(await packFile(context, companion));
  } finally {
    await ahead.close();
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
  const manifestSha256 = await writer.finish(manifest);
  return { manifest, manifestSha256 };
}

async function packItem(writer: ArchiveWriter, item: Extract<WalkItem, { kind: 'directory' | 'symlink' }>): Promise<TreeEntry> {
  const { relPath } = item;
  const mtimeMs = item.stat.mtimeMs;
  if (item.kind === 'directory') {
    await writer.directory({ relPath, mode: item.stat.mode & 0o7777, mtimeMs });
    return { path: item.relPath, type: 'directory' };
  }
  await writer.symlink({ relPath, target: item.target, mode: 0o777, mtimeMs });
  return { path: item.relPath, type: 'symlink', target: item.target };
}
