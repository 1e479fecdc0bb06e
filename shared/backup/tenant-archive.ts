// Turns a tenant directory into the bytes of a backup archive, streamed in bounded memory:
// the walk (tenant-walk.ts) in byte order, each file as live-files.ts chooses to read it
// (SQLite companions held back until their database is settled), the tree's digest and
// totals, and the manifest, all written by archive/archive-writer.ts.

import { ArchiveWriter } from '../archive/archive-writer.js';
import type { CompressOptions } from '../archive/zstd-encoder.js';
import { MANIFEST_FORMAT, MANIFEST_FORMAT_VERSION, type Manifest } from '../archive/manifest.js';
import { TreeDigest, type TreeEntry } from '../archive/tree-digest.js';
import { fileAccessFor, type FileAccess } from '../file-access.js';
import { TOOL_NAME, TOOL_VERSION } from '../version.js';
import { databaseOf, hasCompanions, packCompanionOrFile, packFile, WHOLE_READ_LIMIT, type FileItem, type PackContext } from './live-files.js';
import { TempArea } from './temp-area.js';
import { walkTenant, type WalkItem, type WalkNotes } from './tenant-walk.js';

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
  const writer = new ArchiveWriter(options.tenant, options.compression);
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
  const context: PackContext = { writer, scratch: Buffer.allocUnsafe(WHOLE_READ_LIMIT), notes, access, temp: new TempArea(), snapshotted: new Set(), settled: new Set() };
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
    for await (const item of walkTenant(tenantDir, notes, access)) {
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
        record(await packItem(writer, item));
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
  const manifestSha256 = await writer.finish(manifest);
  return { manifest, manifestSha256 };
}

async function packItem(writer: ArchiveWriter, item: Exclude<WalkItem, FileItem>): Promise<TreeEntry> {
  const { relPath } = item;
  const mtimeMs = item.stat.mtimeMs;
  if (item.kind === 'directory') {
    await writer.directory({ relPath, mode: item.stat.mode & 0o7777, mtimeMs });
    return { path: item.relPath, type: 'directory' };
  }
  await writer.symlink({ relPath, target: item.target, mode: 0o777, mtimeMs });
  return { path: item.relPath, type: 'symlink', target: item.target };
}
