// Settles an interrupted restore of one tenant on request: the core behind
// `openclaw tenants recover NAME [--keep old|new|slot]`. Every command that takes a
// tenant's lock already recovers it first (tenant/slot.ts); this one exists for the case
// recovery refuses, where only the operator can say which tree the slot should hold; and
// for a backup in pieces that broke (backup/continuation.ts), which keeps the tenant busy
// until something ends it: in local mode nothing else does (the backup function ends the
// chains it finds stale before its own backups).

import { lstatSync, promises as fs } from 'node:fs';
import path from 'node:path';

import { endBrokenChain, type ChainRecovery } from '../backup/backup.js';
import { DEFAULT_ABANDON_AFTER_MS } from '../backup/continuation.js';
import { describeSystemError, errnoCode, errnoMessage, FileSystemError, OpenClawError } from '../errors.js';
import { openLocation } from '../storage/open-location.js';
import type { ArchiveLocation } from '../storage/types.js';
import { sweepBaseDir } from './base-dir-sweep.js';
import { ForeignRestoreCheckpointError, loadRestoreCheckpoint, restoreChainState, restoreCheckpointPathFor, type EndedRestoreChain, type RestoreCheckpoint } from '../restore/restore-continuation.js';
import { assertTenantName } from './names.js';
import { acquireTenantLock, isLockHolderGoneHere, type TenantLock } from './lock.js';
import { tenantDirFor, tenantsDirNotFound } from './tenants.js';
import { recoverSlot, recoverSlotKeeping, removeWhatGoneRestoresLeft, type Keep, type RecoveryAction } from './slot.js';

export interface RecoverRequest {
  readonly tenantsDir: string;
  readonly tenant: string;
  /** Which tree the slot keeps when recovery needs a decision. */
  readonly keep?: Keep;
  /** A backup in pieces whose state was not saved for this long is ended. @default DEFAULT_ABANDON_AFTER_MS */
  readonly abandonAfterMs?: number;
  /** Opens a broken chain's destination, to abort its upload. @default openLocation with the default credentials */
  readonly open?: (location: string) => Promise<ArchiveLocation>;
}

export interface RecoverResult {
  readonly operation: 'recover';
  readonly tenant: string;
  readonly recovered: RecoveryAction;
  /** The tenant's backup in pieces: ended, or left to continue; absent: none. */
  readonly continuation?: ChainRecovery;
  /** The tenant's restore in pieces (restore/restore-continuation.ts): left to continue, or ended (abandoned or damaged; its staging removed); absent: none. */
  readonly restoreChain?: {
    readonly outcome: 'continuing' | 'ended';
    readonly location?: string;
    readonly savedAt?: string;
    readonly endsAfter?: string;
    /** `ended`: why (EndedRestoreChain's `why`, and a `not-ours` checkpoint's `reason`), when it was found so before recovery. */
    readonly why?: EndedRestoreChain['why'];
    readonly reason?: string;
    /** `ended`, `not-ours`: the uid that owns the checkpoint, when that was its only fault (EndedRestoreChain's `ownedBy`). */
    readonly ownedBy?: number;
    /** `continuing`: whose its checkpoint is when only another user saved it (restoreChainState's `foreign`): live all the same. */
    readonly foreign?: string;
    /**
     * `ended`: where its staging directory now is when recovery set it aside instead of removing
     * it (no journal names it, its owner neither root nor the base dir's: slot.ts setAside).
     */
    readonly stagingSetAside?: string;
  };
  /**
   * What a `--keep` decision, carried out, could not finish: the trees it moved to trash that
   * could not be deleted (the next command tries again). Absent: none.
   */
  readonly notices?: readonly string[];
}

export async function recoverTenant(request: RecoverRequest): Promise<RecoverResult> {
  const { tenantsDir, tenant, keep } = request;
  assertTenantName(tenant);
  const base = await fs.stat(tenantsDir).catch(() => undefined);
  if (!base?.isDirectory()) throw tenantsDirNotFound(tenantsDir, base === undefined ? 'ENOENT' : 'ENOTDIR');
  await sweepBaseDir(tenantsDir, { except: tenant }).catch(() => undefined);
  const { lock, freed } = await acquireRecoverLock(tenantsDir, tenant);
  try {
    const notices: string[] = [];
    const abandonAfterMs = request.abandonAfterMs ?? DEFAULT_ABANDON_AFTER_MS;
    const restoreChainBefore = await restoreChainState(tenantsDir, tenant, abandonAfterMs);
    const checkpoint = restoreChainBefore.state === 'none' ? undefined : await loadRestoreCheckpoint(tenantsDir, tenant).catch((error: unknown) => (error instanceof ForeignRestoreCheckpointError ? error.checkpoint : undefined));
    const settled = keep === undefined ? await recoverSlot(tenantsDir, tenant, { restoreAbandonAfterMs: abandonAfterMs }) : await recoverSlotKeeping(tenantsDir, tenant, keep, notices);
    const recovered = settled === 'none' && freed ? 'removed-leftovers' : settled;
    const open = request.open ?? ((location: string) => openLocation(location, {}));
    const continuation = await endBrokenChain(tenantsDir, tenant, abandonAfterMs, open);
    const restoreChain = restoreChainBefore.state === 'none' ? undefined : await restoreChainOutcome(tenantsDir, tenant, checkpoint, abandonAfterMs, restoreChainBefore);
    // Nothing to settle and no tenant: the name is wrong, as backup or restore would say.
    if (recovered === 'none' && continuation === undefined && restoreChain === undefined) await tenantDirFor(tenantsDir, tenant);
    return { operation: 'recover', tenant, recovered, ...(continuation !== undefined && { continuation }), ...(restoreChain !== undefined && { restoreChain }), ...(notices.length > 0 && { notices }) };
  } catch (error) {
    throw recoverError(error, tenant);
  } finally {
    await lock.release();
  }
}

/** What recovery left of the tenant's restore in pieces: its checkpoint still there (young), or gone (ended). */
async function restoreChainOutcome(
  tenantsDir: string,
  tenant: string,
  checkpoint: RestoreCheckpoint | undefined,
  abandonAfterMs: number,
  before: Awaited<ReturnType<typeof restoreChainState>>,
): Promise<NonNullable<RecoverResult['restoreChain']>> {
  const stat = await fs.lstat(restoreCheckpointPathFor(tenantsDir, tenant)).catch(() => undefined);
  const about = checkpoint === undefined ? {} : { location: checkpoint.location, savedAt: checkpoint.savedAt };
  const ended = before.state === 'abandoned' ? before.ended : undefined;
  if (stat === undefined) {
    // Another user's staging no journal names (gone, or an older version's without the inode) is set aside, not removed: said, with where.
    const aside = checkpoint === undefined ? undefined : path.join(tenantsDir, `${checkpoint.staging.replace(/^\./, '')}.not-removed`);
    const setAside = aside !== undefined && (await fs.lstat(aside).then(() => true, () => false));
    return {
      outcome: 'ended',
      ...about,
      ...(ended !== undefined && { why: ended.why, ...(ended.savedAt !== undefined && { savedAt: ended.savedAt }), ...(ended.reason !== undefined && { reason: ended.reason }), ...(ended.ownedBy !== undefined && { ownedBy: ended.ownedBy }) }),
      ...(setAside && { stagingSetAside: aside }),
    };
  }
  const foreign = before.state === 'live' ? before.foreign : undefined;
  return { outcome: 'continuing', ...about, endsAfter: new Date(stat.mtimeMs + abandonAfterMs).toISOString(), ...(foreign !== undefined && { foreign }) };
}

/**
 * The tenant's lock, for recovery. On a disk with no inode left (a restore killed while
 * extracting, then the disk filled by others) no lock can be made, and nothing could free the
 * disk of the killed restore's staging, which only a lock holder removes: once its restore is
 * provably gone, that and the other trees it left to be removed (trash) are removed first
 * (slot.ts removeWhatGoneRestoresLeft), then the lock is taken as always.
 */
async function acquireRecoverLock(tenantsDir: string, tenant: string): Promise<{ lock: TenantLock; freed: boolean }> {
  try {
    return { lock: await acquireTenantLock(tenantsDir, tenant, 'recover'), freed: false };
  } catch (error) {
    const code = errnoCode((error as Error).cause);
    if (code !== 'ENOSPC' && code !== 'EDQUOT') throw error;
    const holderGone = () => isLockHolderGoneHere(tenantsDir, tenant);
    const freed = await removeWhatGoneRestoresLeft(tenantsDir, tenant, holderGone).catch((failure: unknown) => {
      throw recoverError(failure, tenant);
    });
    if (!freed) {
      const why = (await holderGone()) ? 'nothing could be freed without it' : 'it is held by another command, which may still run';
      throw new FileSystemError(`${(error as Error).message}; ${why}: remove a file or two on that file system, then run the command again`, { cause: error });
    }
    return { lock: await acquireTenantLock(tenantsDir, tenant, 'recover'), freed: true };
  }
}

/**
 * A system error met while settling the tenant (a rename or removal the file system refused),
 * as a FileSystemError in one line that names the tenant, the reason and the path, and says
 * the next command goes on from there (each step is taken only if not done yet); our own
 * errors and anything unrecognised pass through.
 */
export function recoverError(error: unknown, tenant: string): unknown {
  if (error instanceof OpenClawError || errnoMessage(error) === undefined) return error;
  const blocked = blockedBy(error);
  if (blocked !== undefined) {
    return new FileSystemError(
      `cannot recover tenant "${tenant}": ${describeSystemError(error)}: ${blocked.directory} belongs to uid ${blocked.uid}, not to this user (uid ${blocked.self}), who cannot remove what is in it; ` +
        `run \`openclaw tenants recover ${tenant}\` as root${blocked.uid === 0 ? '' : ` or as uid ${blocked.uid}`}, or have that user remove ${blocked.directory}`,
      { cause: error },
    );
  }
  return new FileSystemError(`cannot recover tenant "${tenant}": ${describeSystemError(error)}; what was done stays done, and the next command on the tenant goes on from there`, { cause: error });
}

/**
 * Where a removal was refused for want of permission in a directory another user owns (a
 * leftover a run as root made in the tenants' user's base dir): every later run as this user
 * fails the same way, so the message says who can settle it instead of "the next command goes
 * on from there". Undefined when that is not the case.
 */
function blockedBy(error: unknown): { directory: string; uid: number; self: number } | undefined {
  const failed = error as NodeJS.ErrnoException;
  const self = process.geteuid?.();
  if ((failed.code !== 'EACCES' && failed.code !== 'EPERM') || self === undefined || self === 0 || typeof failed.path !== 'string') return undefined;
  for (const candidate of [path.dirname(failed.path), failed.path]) {
    try {
      const info = lstatSync(candidate);
      if (info.isDirectory() && info.uid !== self) return { directory: candidate, uid: info.uid, self };
    } catch {
      // Gone meanwhile: nothing to say of it.
    }
  }
  return undefined;
}
