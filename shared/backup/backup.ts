// Backs up one tenant to an archive location: the core operation behind the CLI's
// `tenants backup` and the backup Lambda. Sweeps the base dir of dead operations' leftovers
// (base-dir-sweep.ts) and its own scratch space of killed backups' (temp-area.ts), holds
// the tenant's lock for the whole run (first settling any interrupted restore of it),
// refuses to overwrite an existing archive unless asked, and streams the archive to the
// location in bounded memory, encrypted to age recipients when asked (compress, then
// encrypt: archive/encrypted-archive.ts). A read-only base dir (a snapshot, a read-only mount: EROFS on
// the lock file) cannot change under the backup and cannot take a lock: the tenant is backed
// up without one, saying so, unless the snapshot caught a restore of it mid-commit.

import { promises as fs } from 'node:fs';
import { Readable } from 'node:stream';

import { createTenantArchive, type ArchiveProgress } from './tenant-archive.js';
import { sweepBaseDir } from '../tenant/base-dir-sweep.js';
import { crashPoint } from '../crash-points.js';
import { errnoCode, FileSystemError, TenantBusyError } from '../errors.js';
import { assertTenantName } from '../tenant/names.js';
import { MANIFEST_FORMAT_VERSION, type ManifestNote } from '../archive/manifest.js';
import { throwIfAborted } from '../storage/streams.js';
import type { ArchiveLocation, StoreEndpoint } from '../storage/types.js';
import { acquireTenantLock, type TenantLock } from '../tenant/lock.js';
import { isMidCommit, recoverSlot, type RecoveryAction } from '../tenant/slot.js';
import { TempArea } from './temp-area.js';
import { assertOutsideTenantsDir, tenantDirFor, tenantsDirNotFound } from '../tenant/tenants.js';
import { TOOL_VERSION } from '../version.js';
import type { CompressOptions } from '../archive/zstd-encoder.js';
import type { FileAccess } from '../file-access.js';
import type { SqliteOptions } from './sqlite-policy.js';
import type { AgeRecipient } from '../age/keys.js';
import { encryptArchive } from '../archive/encrypted-archive.js';

export interface BackupRequest {
  readonly tenantsDir: string;
  readonly tenant: string;
  readonly location: ArchiveLocation;
  /** Replace an archive already at the location. */
  readonly overwrite?: boolean;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: ArchiveProgress & { readonly archiveBytes: number }) => void;
  readonly compression?: CompressOptions;
  /** Injectable clock for reproducible tests. */
  readonly now?: () => Date;
  /** How to call the file system; by default chosen for the tenant's (file-access.ts). */
  readonly fileAccess?: FileAccess;
  /** How live SQLite databases are read (sqlite-policy.ts); by default by the tenant's file system, failing on a database with no consistent copy. */
  readonly sqlite?: SqliteOptions;
  /** Encrypt the archive to these age recipients (after compression); none: stored as tar.zst. */
  readonly recipients?: readonly AgeRecipient[];
}

export interface BackupResult {
  readonly operation: 'backup';
  readonly tenant: string;
  readonly location: string;
  /** The S3-compatible endpoint the archive went to, and what chose it; absent for AWS and local files. */
  readonly endpoint?: StoreEndpoint;
  readonly files: number;
  readonly directories: number;
  readonly symlinks: number;
  /** Bytes of file content archived. */
  readonly bytes: number;
  /** Bytes of the stored archive (after compression and any pipe command). */
  readonly archiveBytes: number;
  readonly durationMs: number;
  readonly createdAt: string;
  readonly manifestSha256: string;
  /** Left out of the archive, with the reason (pty/, sockets, escaping symlinks, companions of snapshotted databases, vanished entries). */
  readonly skipped: readonly ManifestNote[];
  /** Caveats, all counted as warnings: files changed as they were read, databases archived raw, entries that vanished (also in `skipped`). */
  readonly warnings: readonly ManifestNote[];
  readonly recovered: RecoveryAction;
  /** Things the operator should know about how the backup was taken (e.g. without a lock on a read-only base dir). */
  readonly notices: readonly string[];
  /** The age recipients (public keys) the stored archive is encrypted to; absent: not encrypted. */
  readonly encryptedTo?: readonly string[];
}

/** Object metadata key for the manifest's digest (S3 user metadata, etc.). */
export const MANIFEST_DIGEST_METADATA_KEY = 'manifest-sha256';

export async function backupTenant(request: BackupRequest): Promise<BackupResult> {
  const started = Date.now();
  const { tenantsDir, tenant, location, signal } = request;
  assertTenantName(tenant);
  const baseDir = await fs.stat(tenantsDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
    throw error;
  });
  if (baseDir === undefined || !baseDir.isDirectory()) throw tenantsDirNotFound(tenantsDir, baseDir === undefined ? 'ENOENT' : 'ENOTDIR');
  await sweepBaseDir(tenantsDir, { except: tenant }).catch(() => undefined);
  await TempArea.sweep().catch(() => undefined);
  const notices: string[] = [];
  const lock = await lockUnlessReadOnly(tenantsDir, tenant, notices);
  try {
    // An interrupted restore may have left the slot mid-commit: settle it before reading
    // (nothing to settle, or nothing that could be, on a read-only base dir).
    const recovered = lock === undefined ? 'none' : await recoverSlot(tenantsDir, tenant);
    const tenantDir = await tenantDirFor(tenantsDir, tenant);
    if (location.localPath !== undefined) await assertOutsideTenantsDir(tenantsDir, location.localPath);
    await location.checkWritable({ overwrite: request.overwrite ?? false });
    throwIfAborted(signal);

    const createdAt = (request.now ?? (() => new Date()))();
    let archiveBytes = 0;
    let progress: ArchiveProgress = { files: 0, bytes: 0 };
    const archive = createTenantArchive({
      tenantDir,
      tenant,
      createdAt,
      compression: request.compression,
      fileAccess: request.fileAccess,
      sqlite: request.sqlite,
      onProgress: (update) => {
        progress = update;
      },
    });
    let manifestSha256: string | undefined;
    void archive.summary.then((summary) => (manifestSha256 = summary.manifestSha256)).catch(() => undefined);

    async function* counted(): AsyncGenerator<Buffer> {
      for await (const chunk of archive.chunks) {
        throwIfAborted(signal);
        archiveBytes += chunk.length;
        // Bytes read so far, the file being read included: a large file moves the percent too.
        request.onProgress?.({ ...progress, bytes: Math.max(progress.bytes, archive.contentRead()), archiveBytes });
        yield chunk;
      }
    }

    const recipients = request.recipients ?? [];
    const stored = recipients.length > 0 ? encryptArchive(counted(), recipients) : counted();
    const written = await location.write(Readable.from(stored, { objectMode: false }), {
      overwrite: request.overwrite ?? false,
      signal,
      metadata: { tenant, formatVersion: MANIFEST_FORMAT_VERSION, toolVersion: TOOL_VERSION, createdAt: createdAt.toISOString() },
      finalMetadata: (): Record<string, string> => (manifestSha256 ? { [MANIFEST_DIGEST_METADATA_KEY]: manifestSha256 } : {}),
    });
    const { manifest, manifestSha256: digest } = await archive.summary;
    crashPoint('backup:stored');
    return {
      operation: 'backup',
      tenant,
      location: location.display,
      ...(location.endpoint !== undefined && { endpoint: location.endpoint }),
      files: manifest.totals.files,
      directories: manifest.totals.directories,
      symlinks: manifest.totals.symlinks,
      bytes: manifest.totals.bytes,
      archiveBytes: written.bytes,
      durationMs: Date.now() - started,
      createdAt: manifest.createdAt,
      manifestSha256: digest,
      skipped: manifest.skipped,
      warnings: manifest.warnings,
      recovered,
      notices,
      ...(recipients.length > 0 && { encryptedTo: recipients.map((recipient) => recipient.text) }),
    };
  } finally {
    await lock?.release();
  }
}

/**
 * The tenant's lock; or, when the base dir is read-only (EROFS), no lock and a notice: the
 * tenant cannot change under the backup. A snapshot that caught a restore of this tenant
 * mid-commit is refused (the slot may hold neither tree whole); one that caught it before
 * the commit holds the old tenant intact.
 */
async function lockUnlessReadOnly(tenantsDir: string, tenant: string, notices: string[]): Promise<TenantLock | undefined> {
  try {
    return await acquireTenantLock(tenantsDir, tenant, 'backup');
  } catch (error) {
    if (errnoCode(error instanceof FileSystemError ? error.cause : error) !== 'EROFS') throw error;
  }
  if (await isMidCommit(tenantsDir, tenant)) {
    throw new TenantBusyError(
      `tenant "${tenant}" was being moved into place by a restore when this read-only copy of ${tenantsDir} was taken: back up the live base dir, or a copy taken later`,
    );
  }
  notices.push(`the tenant base dir ${tenantsDir} is read-only (a snapshot?): the tenant cannot change, so it was backed up without taking its lock`);
  return undefined;
}
