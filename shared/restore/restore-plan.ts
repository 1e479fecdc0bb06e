// `tenants restore --dry-run`: what a restore would do, without doing it. The archive is read
// through the restore's own path with every check (read-archive.ts, writing nothing), so a
// damaged archive fails exactly as the restore would; then the slot it would go to is looked
// at (read-only: no lock, no recovery, no sweep): what tenant is there now, whether a live
// process here holds its lock (read, not taken: lock.ts busyHolderHere), whether the restore
// would refuse to replace it, and whether its base dir can be written or created at all (a
// kernel file system, a read-only mount, a full one, no write permission: the questions the
// restore's first writes answer). Nothing is written anywhere.

import { stat } from 'node:fs/promises';
import path from 'node:path';

import { describeError, errnoMessage, permissionErrno } from '../errors.js';
import { nearestExisting, whyNotWritable } from '../file-system-kind.js';
import { TOOL_VERSION } from '../version.js';
import type { ManifestNote } from '../archive/manifest.js';
import { assertTenantName } from '../tenant/names.js';
import { busyHolderHere } from '../tenant/lock.js';
import { slotState } from '../tenant/slot.js';
import { summarizeTenant, tenantsDirNotFound } from '../tenant/tenants.js';
import type { StoreEndpoint } from '../storage/types.js';
import { DEFAULT_LIMITS } from './limits.js';
import type { RestoreRequest } from './restore.js';
import { archiveCounts, encryptionNotices, ephemeralNotice, NO_MANIFEST_NOTICE, readTenantArchive, type ArchiveCounts } from './read-archive.js';
import { shownPath } from '../format.js';

/** Top-level directories shown. */
const TOP_LEVEL_SHOWN = 20;

export interface RestorePlan extends ArchiveCounts {
  readonly operation: 'restore-plan';
  readonly location: string;
  /** The S3-compatible endpoint, and what chose it; absent for AWS and local files. */
  readonly endpoint?: StoreEndpoint;
  /** The name the tenant would be restored under, and the name the archive carries. */
  readonly tenant: string;
  readonly archiveTenant: string;
  /** Where it would go. */
  readonly target: string;
  /** Whether every entry was checked against a manifest. */
  readonly verified: boolean;
  readonly backupCreatedAt?: string;
  readonly backupToolVersion?: string;
  readonly manifestSha256?: string;
  /** The archive's top-level directories, with how many entries each holds directly. */
  readonly topLevel: readonly { readonly name: string; readonly entries: number }[];
  readonly warnings: readonly ManifestNote[];
  /**
   * What is in the slot now: the tenant the restore would replace, or, when this user may not
   * read all of it, why it cannot be described (it would be replaced all the same).
   */
  readonly replaces?: { readonly files: number; readonly bytes: number; readonly lastModified: string } | { readonly unreadable: string };
  /**
   * Why the real restore would refuse or fail, if it would: its error code (the dry run exits
   * as the restore would for it) and, where the system denied permission, `EACCES` or `EPERM`
   * (the CLI then says whom to run as, as the restore's own error does).
   */
  readonly refusal?: { readonly code: string; readonly message: string; readonly errno?: 'EACCES' | 'EPERM' };
  readonly notices: readonly string[];
  /** The stored archive was age-encrypted and decrypted (every chunk authenticated). */
  readonly decrypted?: true;
}

/** The dry run of `restoreTenant`: what it would restore, from the same request. */
export async function planRestore(request: Pick<RestoreRequest, 'tenantsDir' | 'location' | 'as' | 'force' | 'limits' | 'signal' | 'onProgress' | 'identities' | 'ageCli'>): Promise<RestorePlan> {
  const { tenantsDir, location } = request;
  if (request.as !== undefined) assertTenantName(request.as, '--as name');
  // A base dir that is a file (or under one) fails the restore before it reads (its mkdir -p):
  // the dry run said "unexpected error: ENOTDIR: not a directory, lstat …" after reading it all.
  if ((await stat(await nearestExisting(tenantsDir)).catch(() => undefined))?.isDirectory() === false) throw tenantsDirNotFound(tenantsDir, 'ENOTDIR');
  const read = await readTenantArchive(location, {
    limits: request.limits ?? DEFAULT_LIMITS,
    signal: request.signal,
    ...(request.identities !== undefined && { identities: request.identities }),
    ...(request.ageCli !== undefined && { ageCli: request.ageCli }),
    discard: true,
    prepare: async () => '/nonexistent/openclaw-dry-run',
    ...(request.onProgress !== undefined && { onProgress: request.onProgress }),
  });
  const { extracted } = read;
  const tenant = request.as ?? extracted.tenant;
  const manifest = extracted.manifest;
  const state = await slotState(tenantsDir, tenant);
  const replaces = state === 'occupied' ? await describeOccupant(tenantsDir, tenant) : undefined;
  const unwritable = await baseDirUnwritable(tenantsDir);
  // The restore takes the tenant's lock before it looks at the slot: a live holder refuses it first.
  const busy = unwritable === undefined ? await busyHolderHere(tenantsDir, tenant) : undefined;
  const refusal =
    unwritable !== undefined
      ? { code: 'FILESYSTEM', ...unwritable }
      : busy !== undefined
      ? { code: busy.code, message: busy.message }
      : state === 'occupied' && request.force !== true
      ? {
          code: 'SLOT_OCCUPIED',
          message: `tenant "${tenant}" already exists in ${tenantsDir}: restore with --force to replace it, or --as NAME to restore under another name`,
        }
      : undefined;
  const notices = encryptionNotices(read, request.identities);
  if (manifest === undefined) notices.push(NO_MANIFEST_NOTICE);
  else if (manifest.tool.version !== TOOL_VERSION) notices.push(`the archive was written by ${manifest.tool.name} ${manifest.tool.version}`);
  notices.push(...ephemeralNotice(read, false));
  const topLevel = (manifest?.topLevel ?? [])
    .slice(0, TOP_LEVEL_SHOWN)
    .map((directory) => ({ name: directory.path, entries: directory.entries }));
  return {
    operation: 'restore-plan',
    location: location.display,
    ...(location.endpoint !== undefined && { endpoint: location.endpoint }),
    tenant,
    archiveTenant: extracted.tenant,
    target: `${tenantsDir}/${tenant}`,
    ...archiveCounts(read),
    verified: manifest !== undefined,
    ...(manifest !== undefined && { backupCreatedAt: manifest.createdAt, backupToolVersion: manifest.tool.version }),
    ...(extracted.manifestSha256 !== undefined && { manifestSha256: extracted.manifestSha256 }),
    topLevel,
    warnings: manifest?.warnings ?? [],
    ...(replaces !== undefined && { replaces }),
    ...(refusal !== undefined && { refusal }),
    notices,
    ...(read.encrypted && { decrypted: true as const }),
  };
}

/** The tenant in an occupied slot, in numbers; what kept it from being read, if something did. */
async function describeOccupant(tenantsDir: string, tenant: string): Promise<NonNullable<RestorePlan['replaces']>> {
  try {
    const summary = await summarizeTenant(tenantsDir, tenant);
    return { files: summary.files, bytes: summary.bytes, lastModified: summary.lastModified.toISOString() };
  } catch (error) {
    const { path: where } = error as NodeJS.ErrnoException;
    return { unreadable: `${where === undefined ? '' : `${shownPath(where)}: `}${errnoMessage(error) ?? describeError(error)}` };
  }
}

/**
 * Why the restore could not write in (or create) the base dir, as it would fail on its first
 * write there (its base dir, its lock file); undefined where it could. Judged at the base dir,
 * or the nearest ancestor that exists (where its `mkdir -p` starts).
 */
async function baseDirUnwritable(tenantsDir: string): Promise<{ message: string; errno?: 'EACCES' | 'EPERM' } | undefined> {
  const directory = await nearestExisting(tenantsDir);
  const exists = directory === path.resolve(tenantsDir);
  const cannot = exists ? `cannot write in the tenant base dir ${shownPath(tenantsDir)}` : `cannot create the tenant base dir ${shownPath(tenantsDir)}`;
  const refusal = await whyNotWritable(directory);
  if (refusal?.kind === 'kernel') return { message: `${cannot}: ${shownPath(directory)} takes no new files (a ${refusal.fileSystem} file system): give a base dir on a disk` };
  if (refusal?.kind === 'denied') {
    const errno = permissionErrno(refusal.error);
    return { message: `${cannot}: ${errnoMessage(refusal.error) ?? describeError(refusal.error)}${exists ? '' : ` (${shownPath(directory)})`}`, ...(errno !== undefined && { errno }) };
  }
  if (refusal?.kind === 'full') return { message: `${cannot}: no space or no inode left on the device (${shownPath(directory)}: see df and df -i)` };
  return undefined;
}
