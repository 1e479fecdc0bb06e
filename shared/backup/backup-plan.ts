// `tenants backup --dry-run`: what a backup would archive, from the backup's own walk
// (tenant-walk.ts) and its rules for what is left out and why, without reading any file's
// content and without writing anything (no lock, no sweep, no archive). What a dry run
// cannot know without reading is said as such: a `-wal`/`-shm`/`-journal` file beside a
// database is left out when that database (recognised by its header) is snapshotted, so it
// is listed as "may be left out". The destination is checked as the backup checks it before
// it reads anything (an existing archive is refused without --overwrite): the plan carries
// that refusal, and the CLI exits with it; so is a live process of this host holding the
// tenant's lock (read, not taken: lock.ts busyHolderHere), which refuses the backup first. A
// file this user may not be able to read (any file, for a user other than root: an ACL may deny
// what the mode bits grant) is asked `access`: one the backup could not read fails the dry run
// as it would the backup.

import { accessSync, constants as fsConstants, promises as fs } from 'node:fs';

import { describeError, isOpenClawError, permissionErrno } from '../errors.js';
import { backupReadError } from './backup.js';
import { fileAccessFor } from '../file-access.js';
import type { ManifestNote } from '../archive/manifest.js';
import { busyHolderHere } from '../tenant/lock.js';
import { assertOutsideTenantsDir, assertTenantNameIn, tenantDirFor } from '../tenant/tenants.js';
import { throwIfAborted } from '../storage/streams.js';
import type { ArchiveLocation, StoreEndpoint } from '../storage/types.js';
import { databaseOf } from './live-files.js';
import { SeenInodes } from './seen-inodes.js';
import { absPathOf, firstNameOf, walkTenant, type WalkNotes } from './tenant-walk.js';
import { shownPath } from '../format.js';

/** Whether an ACL may deny this process reading a file its mode bits let it read: any user but root (no uids: Windows, none). */
const ACLS_MAY_DENY = process.geteuid !== undefined && process.geteuid() !== 0;

/** Largest files shown. */
const LARGEST_SHOWN = 5;

export interface BackupPlan {
  readonly operation: 'backup-plan';
  readonly tenant: string;
  readonly location: string;
  /** The S3-compatible endpoint, and what chose it; absent for AWS and local files. */
  readonly endpoint?: StoreEndpoint;
  readonly files: number;
  /** Of `files`, the later names of a file, which the archive would hold as hard links (content stored once); absent from a gateway older than the count. */
  readonly hardlinks?: number;
  readonly directories: number;
  readonly symlinks: number;
  /** Bytes of file content the archive would hold (as the files are now). */
  readonly bytes: number;
  readonly largest: readonly { readonly path: string; readonly bytes: number }[];
  /** Left out, with the reason (the walk's own notes). */
  readonly skipped: readonly ManifestNote[];
  /** Left out only if what the content shows allows it (companions of SQLite databases). */
  readonly mayBeSkipped: readonly ManifestNote[];
  /** 'absent', 'exists' (replaced with --overwrite) or 'unknown' (the check failed: see refusal). */
  readonly destination: 'absent' | 'exists' | 'unknown';
  /**
   * Why the real backup would not run, if it would not: its error code (the dry run exits as the
   * backup would for it) and, where the system denied permission, `EACCES` or `EPERM`.
   */
  readonly refusal?: { readonly code: string; readonly message: string; readonly errno?: 'EACCES' | 'EPERM' };
  /** S3: what the object would be created with (`--sse`, `--sse-kms-key-id`, `--storage-class`); empty: the bucket's defaults. */
  readonly s3?: { readonly sse?: string; readonly sseKmsKeyId?: string; readonly storageClass?: string };
}

export async function planBackup(request: {
  readonly tenantsDir: string;
  readonly tenant: string;
  readonly location: ArchiveLocation;
  readonly overwrite?: boolean;
  readonly signal?: AbortSignal;
}): Promise<BackupPlan> {
  try {
    return await planBackupSteps(request);
  } catch (error) {
    throw backupReadError(error, request.tenant);
  }
}

async function planBackupSteps(request: Parameters<typeof planBackup>[0]): Promise<BackupPlan> {
  const { tenantsDir, tenant, location, signal } = request;
  await assertTenantNameIn(tenantsDir, tenant);
  const tenantDir = await tenantDirFor(tenantsDir, tenant);
  if (location.localPath !== undefined) await assertOutsideTenantsDir(tenantsDir, location.localPath);
  const notes: WalkNotes = { skipped: [], warnings: [] };
  const totals = { files: 0, hardlinks: 0, directories: 0, symlinks: 0, bytes: 0 };
  const largest: { path: string; bytes: number }[] = [];
  const mayBeSkipped: ManifestNote[] = [];
  const linked = new SeenInodes();
  const access = fileAccessFor(tenantDir);
  // On a local disk a call on this thread: a promise per file took a dry run of 20,000 files from 0.35 to 0.6-1.2 s of CPU.
  const mayRead = (file: string): void | Promise<void> => {
    if (access.kind === 'parallel') return fs.access(file, fsConstants.R_OK);
    accessSync(file, fsConstants.R_OK);
  };
  for await (const item of walkTenant(tenantDir, notes, access, { statFiles: true })) {
    if (signal?.aborted) break;
    if (item.kind === 'directory') totals.directories++;
    else if (item.kind === 'symlink') totals.symlinks++;
    else {
      totals.files++;
      // The backup reads every file: one this user may not read fails it, and its dry run as it
      // fails on a directory it may not read. An ACL may grant what the mode bits deny, or deny
      // what they grant (`setfacl -m u:ME:---` on a file others may read): for any user but root,
      // whom no ACL denies reading, every file is asked.
      if (item.stat?.deniedByMode === true || ACLS_MAY_DENY) {
        try {
          await mayRead(absPathOf(item));
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === 'EACCES' || code === 'EPERM') throw error;
        }
      }
      const bytes = item.stat?.size ?? 0;
      // A later name of a file is archived as a hard link: its content is stored once.
      const counted = item.stat === undefined || firstNameOf(item, item.stat, linked);
      const firstName = typeof counted === 'boolean' ? counted : await counted;
      if (firstName) totals.bytes += bytes;
      else totals.hardlinks++;
      const database = databaseOf(item);
      if (database !== undefined) {
        mayBeSkipped.push({ path: item.relPath, reason: `SQLite companion of ${shownPath(database)}: left out if ${shownPath(database)} is a database archived as a consistent snapshot` });
      }
      // The largest of what is stored: a later name stores nothing.
      if (firstName) largest.push({ path: item.relPath, bytes });
      largest.sort((a, b) => b.bytes - a.bytes);
      largest.length = Math.min(largest.length, LARGEST_SHOWN);
    }
  }

  throwIfAborted(signal);

  let destination: BackupPlan['destination'] = 'absent';
  let refusal: BackupPlan['refusal'];
  const withSignal = signal !== undefined ? { signal } : {};
  try {
    await location.checkWritable({ overwrite: true, ...withSignal });
    await location.checkWritable({ overwrite: false, ...withSignal }).catch((error: unknown) => {
      destination = 'exists';
      if (request.overwrite !== true) throw error;
    });
  } catch (error) {
    // Interrupted: no plan (the check did not answer), the command stops.
    throwIfAborted(signal);
    if (destination === 'absent') destination = 'unknown';
    const errno = permissionErrno(error);
    refusal = { code: isOpenClawError(error) ? error.code : 'UNEXPECTED', message: describeError(error), ...(errno !== undefined && { errno }) };
  }
  // The backup takes the tenant's lock before anything else: a live holder refuses it first (read, not taken).
  const busy = await busyHolderHere(tenantsDir, tenant);
  if (busy !== undefined) refusal = { code: busy.code, message: busy.message };
  const settings = location.objectSettings;
  return {
    operation: 'backup-plan',
    tenant,
    location: location.display,
    ...(location.endpoint !== undefined && { endpoint: location.endpoint }),
    ...totals,
    largest,
    skipped: notes.skipped,
    mayBeSkipped,
    destination,
    ...(refusal !== undefined && { refusal }),
    ...(settings !== undefined && {
      s3: {
        ...(settings.ServerSideEncryption !== undefined && { sse: settings.ServerSideEncryption }),
        ...(settings.SSEKMSKeyId !== undefined && { sseKmsKeyId: settings.SSEKMSKeyId }),
        ...(settings.StorageClass !== undefined && { storageClass: settings.StorageClass }),
      },
    }),
  };
}
