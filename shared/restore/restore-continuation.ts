// The checkpoint of a restore that continues across processes (a Lambda invocation that ran
// out of time hands over to the next; docs/scale.md "A restore that continues"). Nothing of
// the extraction's state crosses: the next piece reads the archive again from its start with
// a writer that writes nothing up to the entry where the last piece stopped (extract.ts
// `resume`), so every check and the final verification run as in one invocation. What
// crosses is this small file, `.openclaw-restore-continuation-<tenant>` beside the staging
// directory: the object read (its identity: an S3 object's ETag and VersionId, a file's size
// and times; another object there now refuses the chain), the staging directory's name, how
// many writer calls the pieces so far completed, how far into the stored archive the last
// piece had read (the next judges the chain's pace by it: restore.ts chainTooSlow), and the
// request's options.
//
// Written as the backup's state is (write-whole.ts replaceFileWhole): mode 0600, a temporary file fsync'ed and
// renamed over the last one, the directory fsync'ed: a crash leaves the previous checkpoint
// or the new one whole. A piece marks the checkpoint `writing` before its first real write:
// a piece that finds that mark meets staging its predecessor may have written past the count
// (killed, OOM): it replays to the count and writes the rest again, replacing what the killed
// piece left past it (resuming-tree-writer.ts `rewrite`; every later piece of the chain too,
// `rewriting`: how far it wrote is not known), and counts that in `rewrites`; a
// piece killed so MAX_REWRITES times in a row ends the chain (the same kill would come again).
//
// While the file exists the chain owns the tenant between its pieces: backups and other
// restores of it are refused as busy (assertNoRestoreChain); recovery (tenant/slot.ts) leaves
// the staging directory it names alone, and abandons a chain no piece has saved for
// DEFAULT_ABANDON_AFTER_MS (its staging removed, the slot as it was).
//
// Format: "OCRC1\n" and the JSON.

import { promises as fs } from 'node:fs';
import path from 'node:path';

import { DEFAULT_ABANDON_AFTER_MS } from '../backup/continuation.js';
import { crashPoint } from '../crash-points.js';
import { errnoMessage, FileSystemError, TenantBusyError } from '../errors.js';
import { notSavedByThisTool, readOwnFileIfPresent, writableByOthers } from '../file-access.js';
import { syncDirectory } from '../sync-directory.js';
import { hiddenNames, parseHiddenName } from '../tenant/hidden-names.js';
import { tenantLockHeldHere } from '../tenant/lock.js';
import { replaceFileWhole } from '../write-whole.js';

const MAGIC = 'OCRC1\n';
const LATER_MAGIC = /^OCRC(?:[2-9]|[1-9]\d+)\n/;
export const RESTORE_CHECKPOINT_VERSION = 1;
/** Pieces in a row killed, or stopped by their deadline, after their first write past the same checkpoint that a chain writes again after (the next ends it). */
export const MAX_REWRITES = 2;
/** Far above any checkpoint's size (a few hundred bytes): a larger file under its name is not one. */
const CHECKPOINT_MAX_BYTES = 64 * 1024;

export interface RestoreCheckpoint {
  readonly version: typeof RESTORE_CHECKPOINT_VERSION;
  /** Names the chain: a piece goes on only from its own chain's checkpoint. */
  readonly chain: string;
  /** The tenant restored into (the archive's name or `--as`): the checkpoint's own name says it too. */
  readonly tenant: string;
  /** The archive's location as shown to users. */
  readonly location: string;
  /** What the first piece read (ReadOptions.onIdentity): every later piece reads only that. */
  readonly identity: string;
  /** The staging directory's name in the base dir. */
  readonly staging: string;
  /** Writer calls (directories, files, links) every piece so far completed: the next replays this many without writing. */
  readonly written: number;
  readonly pieces: number;
  /** Hard links the pieces so far made copies of (the file system refused them): counted against --max-bytes by every later piece. Absent: none. */
  readonly copiedLinks?: { readonly names: number; readonly bytes: number };
  /**
   * How far into the stored archive the last piece that saved had read when it stopped, of its
   * stored size (ExtractionSuspended.storedRead): the next piece judges the chain's pace by it
   * (RestorePieces.maxPieces), and the entries to create the footer counts where the first piece
   * read it (the writes so far are a share of those). Absent: the store told no size (or an
   * earlier version saved it).
   */
  readonly storedRead?: { readonly bytes: number; readonly total: number; readonly entries?: number };
  /** The path below the tenant root of the last entry the pieces created: the next piece's replay must reach it at call `written` (a checkpoint without it is damaged). */
  readonly lastWritten: string;
  readonly force: boolean;
  /** The limits the first piece was given (--max-entries, --max-bytes): every later piece's, whatever its message says. Absent: the request's (an earlier version's checkpoint). */
  readonly limits?: { readonly maxEntries: number; readonly maxBytes: number };
  /** Who every piece gives the entries it writes (restore.ts `owner`); absent: the process's own user. */
  readonly owner?: { readonly uid: number; readonly gid: number };
  readonly startedAt: string;
  readonly savedAt: string;
  /** Set by a piece before its first write: found by the next piece, this one stopped without saving (killed). */
  readonly writing: boolean;
  /** How many pieces in a row found their predecessor killed while it wrote and wrote again from `written`; absent: none. */
  readonly rewrites?: number;
  /**
   * A piece of the chain was killed after its first write: how far it wrote is not known, so
   * every later piece replaces what stands where it writes (resuming-tree-writer.ts `rewrite`).
   */
  readonly rewriting?: true;
  /**
   * Set by a piece that saved its checkpoint and has not yet queued its next piece
   * (RestorePieces.handOver), cleared once it has. Found under the tenant's lock with `pieces`
   * 1, the first piece was killed between the two: no message of the chain may ever come (the
   * first piece has none to come again), so recovery ends the chain instead of keeping the
   * tenant busy. With more, the later piece's own message comes again and hands over again.
   */
  readonly handingOver?: true;
  /**
   * Set by the last piece before its commit, with what it restored: once the commit's journal
   * is written the commit is finished by whoever recovers the slot next, so a last piece killed
   * then (no completion event sent) is said to have succeeded by that recovery
   * (RecoverOptions.onRestoreChainEnded), which removes the checkpoint.
   */
  readonly committing?: CommittingRestore;
}

/** What a last piece is committing (RestoreCheckpoint.committing): its completion event's counts. */
export interface CommittingRestore {
  readonly archiveTenant: string;
  readonly files: number;
  readonly bytes: number;
  readonly archiveBytes: number;
  readonly verified: boolean;
  readonly replaced: boolean;
}

export function restoreCheckpointPathFor(tenantsDir: string, tenant: string): string {
  return path.join(tenantsDir, hiddenNames.restoreContinuation(tenant));
}

/** A checkpoint this version cannot go on from: damaged, or `laterFormat` (a later version may still be going on with it). */
export class UnreadableRestoreCheckpointError extends FileSystemError {
  constructor(
    message: string,
    readonly laterFormat: boolean,
  ) {
    super(message);
  }
}

/**
 * A checkpoint this tool did not save, or one others may have written: owned by a user who is
 * neither this process's nor the base dir's owner, or writable by its group or others. No piece
 * goes on from it (a planted count commits a tree missing what it skips). Recovery ends its
 * chain at once when others may have written it; one another user saved (the restore
 * function's user, seen by root on a gateway whose base dir that user does not own) stays live
 * until it is stale (restoreChainState), unless a piece of a chain finds it.
 */
export class ForeignRestoreCheckpointError extends UnreadableRestoreCheckpointError {
  constructor(
    message: string,
    /** What is wrong with it, for the chain's failure event. */
    readonly reason: string,
    /** The checkpoint, when it is only another user's (mode 0600) and well-formed. */
    readonly checkpoint?: RestoreCheckpoint,
    /** The uid that owns it, when that is its only fault (not writable by group or others): whom to give the base dir to, if that user's chain is live. */
    readonly ownedBy?: number,
  ) {
    super(message, false);
  }
}

/**
 * Replaces the tenant's restore checkpoint, atomically and durably, while the tenant's lock
 * held here is still this process's (checked just before the rename, as the backup's state is).
 */
export async function saveRestoreCheckpoint(tenantsDir: string, checkpoint: RestoreCheckpoint): Promise<void> {
  const target = restoreCheckpointPathFor(tenantsDir, checkpoint.tenant);
  try {
    const lock = tenantLockHeldHere(tenantsDir, checkpoint.tenant);
    await replaceFileWhole(tenantsDir, hiddenNames.restoreContinuationTemp(checkpoint.tenant), path.basename(target), [Buffer.from(MAGIC + JSON.stringify(checkpoint))], async () => {
      crashPoint('restore-checkpoint:temp-written');
      await lock?.assertHeld();
    });
  } catch (error) {
    if (error instanceof TenantBusyError) throw error;
    throw new FileSystemError(`cannot save the checkpoint of the continuing restore of "${checkpoint.tenant}" (${target}): ${errnoMessage(error) ?? String(error)}`, { cause: error });
  }
}

/** The tenant's restore checkpoint; undefined when there is none. */
export async function loadRestoreCheckpoint(tenantsDir: string, tenant: string): Promise<RestoreCheckpoint | undefined> {
  const file = restoreCheckpointPathFor(tenantsDir, tenant);
  const read = await readOwnFileIfPresent(file, CHECKPOINT_MAX_BYTES, `the checkpoint of the continuing restore of "${tenant}"`);
  if (read === undefined) return undefined;
  const foreign = await notSavedByThisTool(tenantsDir, read);
  if (foreign !== undefined) {
    const onlyOwner = writableByOthers(read) === undefined;
    const wellFormed = onlyOwner ? parseRestoreCheckpoint(read.bytes, tenant, file, () => undefined) : undefined;
    throw new ForeignRestoreCheckpointError(`the checkpoint of the continuing restore of "${tenant}" (${file}) is ${foreign}: not one this tool saved, so no piece goes on from it`, foreign, wellFormed, onlyOwner ? read.uid : undefined);
  }
  return parseRestoreCheckpoint(read.bytes, tenant, file, (error) => {
    throw error;
  });
}

/** The checkpoint `bytes` hold, or what `unreadable` makes of why they do not read as one. */
function parseRestoreCheckpoint(bytes: Buffer, tenant: string, file: string, unreadable: (error: UnreadableRestoreCheckpointError) => undefined): RestoreCheckpoint | undefined {
  const text = bytes.toString('utf8');
  if (LATER_MAGIC.test(text.slice(0, 16))) {
    return unreadable(new UnreadableRestoreCheckpointError(`the checkpoint of the continuing restore of "${tenant}" (${file}) was written by a later version of openclaw`, true));
  }
  const damaged = () => unreadable(new UnreadableRestoreCheckpointError(`the checkpoint of the continuing restore of "${tenant}" (${file}) is damaged`, false));
  if (!text.startsWith(MAGIC)) return damaged();
  let parsed: RestoreCheckpoint;
  try {
    parsed = JSON.parse(text.slice(MAGIC.length)) as RestoreCheckpoint;
  } catch {
    return damaged();
  }
  if (!isCheckpoint(parsed, tenant)) return damaged();
  return parsed;
}

function isCheckpoint(value: RestoreCheckpoint, tenant: string): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const staging = typeof value.staging === 'string' ? parseHiddenName(value.staging) : undefined;
  return (
    value.version === RESTORE_CHECKPOINT_VERSION &&
    value.tenant === tenant &&
    typeof value.chain === 'string' &&
    /^[0-9a-f]{24}$/.test(value.chain) &&
    typeof value.location === 'string' &&
    typeof value.identity === 'string' &&
    value.identity.length > 0 &&
    staging?.kind === 'staging' &&
    staging.tenant === tenant &&
    Number.isSafeInteger(value.written) &&
    value.written >= 0 &&
    Number.isSafeInteger(value.pieces) &&
    value.pieces >= 1 &&
    (value.copiedLinks === undefined || (isRecord(value.copiedLinks) && Number.isSafeInteger(value.copiedLinks.names) && value.copiedLinks.names >= 0 && Number.isSafeInteger(value.copiedLinks.bytes) && value.copiedLinks.bytes >= 0)) &&
    (value.storedRead === undefined || (isRecord(value.storedRead) && Number.isSafeInteger(value.storedRead.bytes) && Number.isSafeInteger(value.storedRead.total) && value.storedRead.bytes >= 0 && value.storedRead.total >= value.storedRead.bytes && (value.storedRead.entries === undefined || (Number.isSafeInteger(value.storedRead.entries) && value.storedRead.entries >= 0)))) &&
    typeof value.lastWritten === 'string' &&
    typeof value.force === 'boolean' &&
    (value.limits === undefined || (isRecord(value.limits) && Number.isSafeInteger(value.limits.maxEntries) && value.limits.maxEntries >= 0 && Number.isSafeInteger(value.limits.maxBytes) && value.limits.maxBytes >= 0)) &&
    typeof value.writing === 'boolean' &&
    (value.rewrites === undefined || (Number.isSafeInteger(value.rewrites) && value.rewrites >= 1)) &&
    (value.rewriting === undefined || value.rewriting === true) &&
    (value.handingOver === undefined || value.handingOver === true) &&
    (value.committing === undefined || isCommitting(value.committing)) &&
    (value.owner === undefined || (isRecord(value.owner) && Number.isSafeInteger(value.owner.uid) && value.owner.uid >= 0 && Number.isSafeInteger(value.owner.gid) && value.owner.gid >= 0)) &&
    isTime(value.startedAt) &&
    isTime(value.savedAt)
  );
}

/** A time as a piece saves it: a string Date.parse reads (which takes 5 and ["2026-…"] too). */
function isTime(value: unknown): boolean {
  return typeof value === 'string' && !Number.isNaN(Date.parse(value));
}

/** An object whose fields can be read (JSON's null is an object to typeof). */
function isRecord(value: unknown): value is object {
  return typeof value === 'object' && value !== null;
}

function isCommitting(value: CommittingRestore): boolean {
  return (
    isRecord(value) &&
    typeof value.archiveTenant === 'string' &&
    [value.files, value.bytes, value.archiveBytes].every((count) => Number.isSafeInteger(count) && count >= 0) &&
    typeof value.verified === 'boolean' &&
    typeof value.replaced === 'boolean'
  );
}

export async function removeRestoreCheckpoint(tenantsDir: string, tenant: string): Promise<void> {
  await fs.rm(restoreCheckpointPathFor(tenantsDir, tenant), { force: true });
  await syncDirectory(tenantsDir).catch(() => undefined);
}

/** A restore chain recovery ended (RecoverOptions.onRestoreChainEnded): what its checkpoint said, when it still read. */
export interface EndedRestoreChain {
  readonly tenant: string;
  /**
   * `stale`: no piece saved it for the abandon time; `handing-over`: its first piece was killed
   * before it queued its next; `damaged`: it does not read; `not-ours`: another user owns it,
   * or others may write it (ForeignRestoreCheckpointError); `committed`: its last piece was
   * killed once its commit's journal was written, the commit finished by this recovery.
   */
  readonly why: 'stale' | 'handing-over' | 'damaged' | 'not-ours' | 'committed';
  /** `not-ours`: what is wrong with it (ForeignRestoreCheckpointError.reason). */
  readonly reason?: string;
  /** `not-ours`, when its only fault is its owner (ForeignRestoreCheckpointError.ownedBy): that uid. */
  readonly ownedBy?: number;
  /** `committed`: what it restored. */
  readonly committed?: CommittingRestore;
  readonly chain?: string;
  readonly location?: string;
  readonly pieces?: number;
  readonly startedAt?: string;
  /** When a piece last saved it (the file's time when it does not read). */
  readonly savedAt: string;
}

/**
 * What the tenant's restore chain is to recovery, under the tenant's lock: `live` (its staging
 * directory is the chain's, left alone), `abandoned` (no piece saved it for `abandonAfterMs`,
 * its first piece was killed before it handed over, or it is damaged:
 * the caller removes it, then settles the staging as any interrupted restore's), or none.
 * A checkpoint of a later version counts as live: that version may still go on with it. One
 * only another user saved (mode 0600, well-formed: the restore function's, read by root on a
 * gateway whose base dir that user does not own) is judged as this user's would be, `foreign`
 * saying whose it is, unless `endForeign` (a piece of a chain, which never goes on from it):
 * ending it had ended a live chain and let a restore take the slot from under it.
 */
export async function restoreChainState(
  tenantsDir: string,
  tenant: string,
  abandonAfterMs = DEFAULT_ABANDON_AFTER_MS,
  { endForeign = false, now = Date.now() }: { readonly endForeign?: boolean; readonly now?: number } = {},
): Promise<
  | { readonly state: 'live'; readonly staging?: string; readonly committing?: EndedRestoreChain; readonly foreign?: string }
  | { readonly state: 'abandoned'; readonly ended: EndedRestoreChain; readonly committing?: EndedRestoreChain }
  | { readonly state: 'none' }
> {
  const file = restoreCheckpointPathFor(tenantsDir, tenant);
  const stat = await fs.lstat(file).catch(() => undefined);
  if (stat === undefined) return { state: 'none' };
  let checkpoint: RestoreCheckpoint | undefined;
  let foreign: string | undefined;
  try {
    checkpoint = await loadRestoreCheckpoint(tenantsDir, tenant);
  } catch (error) {
    if (!(error instanceof UnreadableRestoreCheckpointError)) throw error;
    if (!(error instanceof ForeignRestoreCheckpointError)) return error.laterFormat ? { state: 'live' } : { state: 'abandoned', ended: { tenant, why: 'damaged', savedAt: stat.mtime.toISOString() } };
    if (error.checkpoint === undefined || endForeign) {
      return { state: 'abandoned', ended: { tenant, why: 'not-ours', reason: error.reason, ...(error.ownedBy !== undefined && { ownedBy: error.ownedBy }), savedAt: stat.mtime.toISOString() } };
    }
    checkpoint = error.checkpoint;
    foreign = error.reason;
  }
  if (checkpoint === undefined) return { state: 'none' };
  // Asked under the tenant's lock (recovery), which its first piece held from saving this to handing over: that piece is gone.
  const handingOver = checkpoint.handingOver === true && checkpoint.pieces === 1;
  const { chain, location, pieces, startedAt, savedAt } = checkpoint;
  // Its last piece's commit: finished if its journal got past extracting (the caller knows).
  const committing = checkpoint.committing === undefined ? {} : { committing: { tenant, why: 'committed' as const, chain, location, pieces, startedAt, savedAt, committed: checkpoint.committing } };
  if (handingOver || now - stat.mtimeMs > abandonAfterMs) return { state: 'abandoned', ended: { tenant, why: handingOver ? 'handing-over' : 'stale', chain, location, pieces, startedAt, savedAt }, ...committing };
  return { state: 'live', staging: checkpoint.staging, ...committing, ...(foreign !== undefined && { foreign }) };
}

/** Refuses to start an operation on a tenant that a continuing restore owns between its pieces. */
export async function assertNoRestoreChain(tenantsDir: string, tenant: string, operation: string): Promise<void> {
  const file = restoreCheckpointPathFor(tenantsDir, tenant);
  const stat = await fs.lstat(file).catch(() => undefined);
  if (stat === undefined) return;
  const self = process.geteuid?.();
  const baseOwner = self === undefined || stat.uid === self ? undefined : (await fs.stat(tenantsDir).catch(() => undefined))?.uid;
  // The restore function's, read by root on a gateway whose base dir its user does not own (restoreChainState).
  const saver = baseOwner === undefined || stat.uid === baseOwner ? '' : ` by uid ${stat.uid}: the restore function's user, if its EFS access point is not the base dir's owner`;
  throw new TenantBusyError(
    `tenant "${tenant}" is busy: a restore of it continues across invocations (checkpoint ${file}, saved ${stat.mtime.toISOString()}${saver}); ` +
      `the ${operation} can run once it ends (its completion event, or \`tenants list\`); one no piece saves again is ended by the first backup, restore ` +
      `or \`openclaw tenants recover ${tenant}\` after ${new Date(stat.mtimeMs + DEFAULT_ABANDON_AFTER_MS).toISOString()} (recover also ends one whose checkpoint is damaged)`,
  );
}
