// The tenant slot `<base>/<name>/` and the all-or-nothing way a restore fills it, including
// recovery after a crash at any step. The full state machine, every state and what
// recovery does with it, is in docs/crash-safety.md; in short:
//
// A restore extracts into a hidden staging directory, verifies it, then writes a journal
// saying "committing" (from then on the staged tenant counts as complete) and moves it in:
// with --force the old tenant is first renamed aside, and only once the new one is in the
// slot is the old one renamed to trash and deleted. Recovery (run by the next command that
// takes the tenant's lock, or by any command's sweep of the base dir once the lock's owner
// is gone) replays the journal: before "committing" it removes the unverified staging
// directory (the slot was never touched); from "committing" on it finishes the commit.
// It never deletes the only copy of a complete tenant tree: where finishing would (the
// slot was re-created by someone else while the old tenant was aside, or the new tenant
// vanished from the slot) it moves nothing and refuses with RecoveryNeededError, naming
// each directory and what it holds; `openclaw tenants recover NAME --keep old|new|slot`
// settles it through a journal of its own ("keeping"). All steps are renames within the
// base dir, which are atomic, and each is idempotent when replayed.

import { randomBytes } from 'node:crypto';
import { promises as fs, type BigIntStats } from 'node:fs';
import path from 'node:path';

import { crashPoint } from '../crash-points.js';
import { syncDirectory } from '../sync-directory.js';
import { describeSystemError, errnoCode, errnoMessage, FileSystemError, RecoveryNeededError, SlotOccupiedError, TenantBusyError } from '../errors.js';
import { CAN_CHECK_OPENED_PATHS, DIRECTORY_FLAGS, FD_LINKS, isOwnNewDirectory, READ_FLAGS, readOwnFileAndOwner } from '../file-access.js';
import { shownPath } from '../format.js';
import { mountPointsUnder } from '../mounts.js';
import { hiddenNames, parseHiddenName, type HiddenKind, type HiddenName } from './hidden-names.js';
import { handBackMovedAsideLock, removeOldMovedAsideLock, settleMovedAsideLock, tenantLockHeldHere, type TenantLock } from './lock.js';
import { FileSystemClock, isOwnerGone, STALE_AFTER_MS } from './process-owner.js';
import { NotJudgedError, RemovalStoppedError, removeTree, type RemoveTreeOptions } from './remove-tree.js';
import { markerContent, TRASH_MARKER, writeTrashMarker } from './trash-marker.js';
import { writeWhole } from '../write-whole.js';
import { removeRestoreCheckpoint, restoreChainState, type EndedRestoreChain } from '../restore/restore-continuation.js';

export { TRASH_MARKER } from './trash-marker.js';

type JournalPhase = 'extracting' | 'committing' | 'keeping';

/** What `tenants recover --keep` puts in the slot: the previous tenant, the restored one, or what the slot holds now. */
export type Keep = 'old' | 'new' | 'slot';
export const KEEP_CHOICES: readonly Keep[] = ['old', 'new', 'slot'];

interface Journal {
  readonly tenant: string;
  readonly phase: JournalPhase;
  /** Base names inside the tenants dir. Set for 'extracting' and 'committing'. */
  readonly staging?: string;
  /** Where the previous tenant goes (--force). */
  readonly aside?: string;
  /** 'keeping' only. */
  readonly keep?: Keep;
  /**
   * The inode numbers (decimal) of the trees this journal may send to trash or delete, as the
   * tool judged them: the staging directory it made, the tenant it moves aside, the slot a
   * `keeping` journal replaces. A step that moves one to trash or removes it first checks,
   * through the directory opened no-follow, that it holds that very one: the base dir's owner
   * can rename a root-only tenant to any of these names. Journals of versions before
   * 2026-12-06 carry none: their trees are judged by owner (judgedTree).
   */
  readonly inodes?: { readonly staging?: string; readonly aside?: string; readonly slot?: string };
  /** Who owns the journal file (read back only, never written): its records count for its own trees and for this user. */
  readonly writer?: number;
}

type Role = keyof NonNullable<Journal['inodes']>;

/** A tree's identity as judged, which the steps that move or remove it check again. */
interface TreeId {
  readonly dev: bigint;
  readonly ino: bigint;
}

export function journalPathFor(tenantsDir: string, tenant: string): string {
  return path.join(tenantsDir, hiddenNames.journal(tenant));
}

/** What recovery found and did. */
export type RecoveryAction = 'none' | 'rolled-back' | 'finished-commit' | 'removed-leftovers' | 'kept-old' | 'kept-new' | 'kept-slot';

export type SlotState = 'absent' | 'empty' | 'occupied';

export async function slotState(tenantsDir: string, tenant: string): Promise<SlotState> {
  const slot = path.join(tenantsDir, tenant);
  let stat;
  try {
    stat = await fs.lstat(slot);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw error;
  }
  if (!stat.isDirectory()) return 'occupied';
  const dir = await fs.opendir(slot);
  try {
    return (await dir.read()) === null ? 'empty' : 'occupied';
  } finally {
    await dir.close().catch(() => undefined);
  }
}

/** Refuses unless the slot can take a restored tenant (absent or empty, or anything with force). */
export async function assertSlotAvailable(tenantsDir: string, tenant: string, force: boolean): Promise<SlotState> {
  const state = await slotState(tenantsDir, tenant);
  if (state === 'occupied' && !force) {
    throw new SlotOccupiedError(
      `tenant "${tenant}" already exists in ${tenantsDir}: restore with --force to replace it, or --as NAME to restore under another name`,
    );
  }
  if (state !== 'absent' && (await isMountPoint(tenantsDir, tenant))) {
    // The commit renames the slot aside and the restored tree into it: a mount point cannot
    // be renamed over or away (EBUSY), and that failure came after the journal had recorded
    // the commit, so every later command on the tenant (its backups, recover) failed on it too.
    const slot = path.join(tenantsDir, tenant);
    throw new SlotOccupiedError(
      `tenant "${tenant}"'s directory ${slot} is a mount point (another file system or a bind mount): a restore moves the restored tenant into its place, which a mount point cannot take; restore with --as NAME and copy the files onto the mount, or unmount it first`,
    );
  }
  return state;
}

/** Whether the slot `<base>/<tenant>` is a mount point: by the mount table (mounts.ts), else by st_dev. */
async function isMountPoint(tenantsDir: string, tenant: string): Promise<boolean> {
  const realBase = await fs.realpath(tenantsDir);
  if (mountPointsUnder(realBase).has(tenant)) return true;
  const [base, slot] = await Promise.all([fs.stat(realBase), fs.lstat(path.join(realBase, tenant)).catch(() => undefined)]);
  return slot !== undefined && slot.isDirectory() && slot.dev !== base.dev;
}

export interface StagingArea {
  /** Absolute path of the directory the archive is extracted into. */
  readonly dir: string;
  /** Its inode number (decimal), as the journal records it. */
  readonly inode: string;
  /**
   * Moves the verified tenant into its slot: the commit point of a restore. Once it is in, a
   * failure to tidy up (the previous tenant to trash and deleted, the journal removed) no
   * longer fails the restore: the next command's recovery finishes it, and the returned
   * notice says so. Past `until` (epoch ms) the old tenant's trash is left, and a notice says
   * so: the next command on the tenant (recoverSlot) or the next sweep removes it.
   */
  commit(options: { force: boolean; until?: number; assertHeld?: () => Promise<void> }): Promise<{ readonly notice?: string }>;
  /**
   * Removes the staging directory and journal unless the commit began (then recovery finishes
   * it). Past `until` (epoch ms) it stops with RemovalStoppedError, the journal kept: the
   * next command on the tenant (recoverSlot) or the next sweep removes the rest.
   */
  discard(options?: RemoveTreeOptions): Promise<void>;
}

/**
 * The move of a verified, staged tenant into its slot failed after the journal recorded the
 * commit: the slot holds the old tenant or the new one, and the next command on the tenant
 * (recoverSlot) finishes the move.
 */
export class MoveInPendingError extends Error {
  constructor(
    readonly tenant: string,
    override readonly cause: unknown,
  ) {
    super(`moving the restored tenant "${tenant}" into its slot failed`, { cause });
  }
}

/** The staging directory's mode as mkdir makes it: root's restore checks it is still that (restore.ts pinStaging). */
export const STAGING_MODE = 0o700;

/** Call while holding the tenant's lock, after recoverSlot. */
export async function createStagingArea(tenantsDir: string, tenant: string): Promise<StagingArea> {
  const staging = hiddenNames.staging(tenant);
  const stagingDir = path.join(tenantsDir, staging);
  // Made before the journal names it, so that the journal can record which directory it is:
  // a kill in between leaves an empty directory no journal names, which the sweep removes.
  await fs.mkdir(stagingDir, { mode: STAGING_MODE });
  crashPoint('restore:staging-created');
  let made: TreeId;
  try {
    made = await madeDirectory(stagingDir);
    await writeJournal(tenantsDir, { tenant, phase: 'extracting', staging, inodes: { staging: String(made.ino) } });
  } catch (error) {
    await fs.rmdir(stagingDir).catch(() => undefined); // by name, but only an empty directory
    throw error;
  }
  crashPoint('restore:journal-written');
  return stagingArea(tenantsDir, tenant, staging, made);
}

/**
 * The staging area an earlier piece of a continuing restore made (restore-continuation.ts),
 * for its next piece: the journal must still record it as extracting, and the directory there
 * must be the one it recorded. Call while holding the tenant's lock, after recoverSlot.
 */
export async function reopenStagingArea(tenantsDir: string, tenant: string, staging: string): Promise<StagingArea> {
  const journal = await readJournal(tenantsDir, tenant);
  const stagingDir = path.join(tenantsDir, staging);
  const gone = (why: string) => new FileSystemError(`the staging directory ${shownPath(stagingDir)} of the continuing restore of "${tenant}" ${why}: the restore cannot go on`);
  if (journal?.phase !== 'extracting' || journal.staging !== staging) throw gone('is no longer recorded as being extracted');
  const stat = await fs.lstat(stagingDir, { bigint: true }).catch(() => undefined);
  if (stat === undefined || !stat.isDirectory()) throw gone('is no longer there');
  if (journal.inodes?.staging !== undefined && journal.inodes.staging !== String(stat.ino)) throw gone('was replaced');
  return stagingArea(tenantsDir, tenant, staging, { dev: stat.dev, ino: stat.ino });
}

function stagingArea(tenantsDir: string, tenant: string, staging: string, made: TreeId): StagingArea {
  const stagingDir = path.join(tenantsDir, staging);
  let committing = false;

  const discard = async (options: RemoveTreeOptions = {}) => {
    if (committing) return;
    await disposeOf(tenantsDir, staging, made, options, undefined, STAGING_SWAPPED);
    crashPoint('restore:staging-discarded');
    // A restore that lost its lock (frozen past the stale interval) must not remove the
    // journal of the operation that took the tenant since: only one naming its own staging.
    const journal = await readJournal(tenantsDir, tenant).catch(() => undefined);
    if (journal === undefined || journal.staging === staging) await removeJournal(tenantsDir, tenant);
  };
  return {
    dir: stagingDir,
    inode: String(made.ino),
    async commit({ force, until, assertHeld }) {
      const state = await assertSlotAvailable(tenantsDir, tenant, force);
      // The tree moved aside is judged now: what the slot holds when the journal is written.
      const old = state === 'occupied' ? await fs.lstat(path.join(tenantsDir, tenant), { bigint: true }).catch(() => undefined) : undefined;
      const journal: Journal = {
        tenant,
        phase: 'committing',
        staging,
        ...(state === 'occupied' && { aside: hiddenNames.aside(tenant) }),
        inodes: { staging: String(made.ino), ...(old !== undefined && { aside: String(old.ino) }) },
      };
      // The lock is checked last, right before the journal's rename (the commit point): a lock
      // lost during the fsyncs before it (taken over, or removed as silent) stops the commit
      // with nothing renamed, the staged tree the next command's to settle.
      await writeJournal(tenantsDir, journal, assertHeld);
      committing = true;
      crashPoint('commit:journal-written');
      try {
        await moveIn(tenantsDir, journal, assertHeld);
      } catch (error) {
        // Frozen past the stale interval after the commit point, its lock's taker finished the
        // commit by the journal (or settled it): that is what happened, not "needs a decision …
        // the restored tenant is neither staged nor in the slot" (SIGSTOP 62 s at
        // commit:old-moved-aside, a backup from another host, SIGCONT: the slot held the restored tenant).
        await assertHeld?.();
        if (journal.aside === undefined && error instanceof RecoveryNeededError) {
          // The slot filled between the check and the rename: nothing was moved, so the
          // restore is refused as a whole, like one that found the slot occupied.
          committing = false;
          await discard();
          throw new SlotOccupiedError(`tenant "${tenant}" appeared in ${tenantsDir} during the restore; nothing was changed`);
        }
        // The old tenant is aside and the slot was re-created: a decision (row 9), which no
        // command takes alone, so it is no failure the next command finishes.
        if (error instanceof RecoveryNeededError) throw error;
        throw new MoveInPendingError(tenant, error);
      }
      const notices: string[] = [];
      try {
        await tidyUp(tenantsDir, journal, { ...(until !== undefined && { until }) }, notices);
        return notices.length === 0 ? {} : { notice: notices.join('; ') };
      } catch (error) {
        // The restore function's time is up (150,000 files of an old tenant take minutes to unlink on EFS): the answer must go out first.
        if (error instanceof RemovalStoppedError) {
          return { notice: `the restored tenant is in place; the old tenant's files (${shownPath(error.target)}) were not all removed in the time left: the next command on tenant "${tenant}" removes them` };
        }
        return { notice: `the restored tenant is in place, but tidying up after it failed (${describeSystemError(error)}): the next command on tenant "${tenant}" finishes it` };
      }
    },
    discard,
  };
}

/**
 * Brings the slot back to a settled state after an interrupted restore and removes the
 * tenant's leftovers. Call it while holding the tenant's lock, before anything else
 * touches the slot. Throws RecoveryNeededError, having moved nothing, when settling would
 * delete the only copy of a tenant.
 */
export async function recoverSlot(tenantsDir: string, tenant: string, options: RecoverOptions = {}): Promise<RecoveryAction> {
  // `names`, a listing made before this lock was taken (a backup's sweep; backup --all's one for
  // the run): a lock a taker moved aside since is at the one aside name, looked at by
  // handBackLiveLocks (listing again here would make a run read the whole base dir once a tenant).
  const leftovers = tenantLeftovers(options.names ?? (await readNames(tenantsDir)), tenant);
  // An older version's taker moved a lock to a name of its own (`….broken`), found only by a
  // listing: one it moved after that listing, the taker killed before its put-back, may be a live
  // holder's. With a journal here (a restore's staging to roll back, or its commit to finish) the
  // base dir is listed again for such locks first; before, a backup whose sweep came before that
  // move rolled back a live restore's staging and backed up beside it (test/lock-broken-after-listing).
  // Without one, the listing stands (one a tenant would make backup --all read the base dir once a tenant).
  const relisted = options.names !== undefined && (await exists(journalPathFor(tenantsDir, tenant))) ? tenantLeftovers(await readNames(tenantsDir), tenant) : leftovers;
  await handBackLiveLocks(tenantsDir, tenant, relisted, tenantLockHeldHere(tenantsDir, tenant));
  const journal = await readJournal(tenantsDir, tenant);
  const stop: RemoveTreeOptions = options.signal === undefined ? {} : { signal: options.signal };
  // The journal first: its renames settle the slot, so that removals stopped after them
  // (RemovalStoppedError) leave only garbage, never a slot mid-commit. A replay that fails
  // otherwise (a decision needed) still has the garbage removed first, then is thrown.
  let action: RecoveryAction = 'none';
  let failed: { error: unknown } | undefined;
  const { held: heldByChain, ended } = await heldByRestoreChain(tenantsDir, tenant, journal, options);
  if (ended?.why !== 'committed' && ended !== undefined) await options.onRestoreChainEnded?.(ended);
  if (journal !== undefined && !heldByChain) {
    try {
      action = await replay(tenantsDir, journal, options.notices, stop);
    } catch (error) {
      if (error instanceof RemovalStoppedError) {
        // Stopped only removing (the renames done): the commit is finished all the same.
        if (ended?.why === 'committed') await options.onRestoreChainEnded?.(ended);
        throw error;
      }
      failed = { error };
    }
  }
  if (failed !== undefined) {
    // The refusal is what the caller must hear: a removal stopped by the time given (the
    // garbage is removed by the next command) must not mask it.
    await removeGarbage(tenantsDir, leftovers, journal, options.notices, stop).catch((error: unknown) => {
      if (!(error instanceof RemovalStoppedError)) throw error;
    });
    throw failed.error;
  }
  // Its commit finished (by the replay above, or before): the chain's success, said once.
  if (ended?.why === 'committed') await options.onRestoreChainEnded?.(ended);
  const removed = await removeGarbage(tenantsDir, leftovers, journal, options.notices, stop);
  const settled = await settleOrphanAsides(tenantsDir, tenant, leftovers, options.notices, stop);
  return action === 'none' && (removed || settled) ? 'removed-leftovers' : action;
}

/**
 * Whether the journal's staging directory belongs to a restore that continues across
 * invocations (restore/restore-continuation.ts), between two of its pieces: left alone. A
 * checkpoint no piece saved for the abandon time, or damaged, is removed here (the chain has
 * ended), and so is one whose staging the journal no longer names as extracting (its last
 * piece committed, or its staging was rolled back, before the checkpoint went): then the
 * journal is settled as any interrupted restore's.
 */
async function heldByRestoreChain(tenantsDir: string, tenant: string, journal: Journal | undefined, options: RecoverOptions): Promise<{ readonly held: boolean; readonly ended?: EndedRestoreChain }> {
  const chain = await restoreChainState(tenantsDir, tenant, options.restoreAbandonAfterMs, { endForeign: options.endForeignRestoreChain === true });
  if (chain.state === 'none') return { held: false };
  // Its last piece killed once its commit's journal was written (or after the commit): the commit is finished.
  if (chain.committing !== undefined && journal?.phase !== 'extracting') {
    await removeRestoreCheckpoint(tenantsDir, tenant);
    return { held: false, ended: chain.committing };
  }
  if (chain.state === 'live' && journal?.phase === 'extracting' && (chain.staging === undefined || chain.staging === journal.staging)) return { held: true };
  if (chain.state === 'live' && chain.staging === undefined) return { held: false };
  await removeRestoreCheckpoint(tenantsDir, tenant);
  // Said once, by whoever removed it: no piece of it will (its messages find no checkpoint).
  return { held: false, ...(chain.state === 'abandoned' && { ended: chain.ended }) };
}

/**
 * recoverSlot before an operation on the tenant (a backup, a restore) whose leftovers may take
 * only part of its time (`options.signal`: a Lambda's share). Stopped while removing them (a
 * trash of 20,000 files takes minutes on EFS), the slot is settled all the same unless a
 * restore's commit is still pending (the journal's renames come first): the operation goes
 * on, and a notice says what is left for the next command.
 */
export async function recoverSlotWithin(tenantsDir: string, tenant: string, options: RecoverOptions & { readonly notices: string[] }): Promise<RecoveryAction> {
  try {
    return await recoverSlot(tenantsDir, tenant, options);
  } catch (error) {
    if (!(error instanceof RemovalStoppedError) || (await isMidCommit(tenantsDir, tenant))) throw error;
    options.notices.push(`what an interrupted operation left of tenant "${tenant}" (${shownPath(error.target)}) was not all removed in the time given to it: the next command on the tenant goes on removing it`);
    return 'removed-leftovers';
  }
}

/**
 * Removes, without the tenant's lock, what a restore that is gone left to be removed, for
 * `tenants recover` on a disk with no inode left, where no lock can be taken (each is a new
 * file) until something is freed. A restore holds the lock from before it makes its staging
 * directory until after it commits or discards it, and only it writes a journal naming it;
 * so when no live process holds the lock (`holderGone`), whatever a restore made that was
 * listed before, and no committing journal names, before or after, is garbage for good:
 * unverified staging directories, journal temporaries, trash, and an encrypted backup's
 * scratch area (its plaintext copies: a backup holds the lock too). Every later holder only
 * removes them too, which may go on beside this removal (each tolerates the other's).
 * Returns whether it removed anything; the journal is left for the recovery that follows,
 * under the lock.
 */
export async function removeWhatGoneRestoresLeft(tenantsDir: string, tenant: string, holderGone: () => Promise<boolean>): Promise<boolean> {
  const leftovers = (await readNames(tenantsDir)).map(parseHiddenName).filter((hidden): hidden is HiddenName => hidden?.tenant === tenant);
  const before = await readJournalWithoutLock(tenantsDir, tenant);
  if (!(await holderGone())) return false;
  const after = await readJournalWithoutLock(tenantsDir, tenant);
  const chain = await restoreChainState(tenantsDir, tenant);
  // A continuing restore's staging between pieces is the chain's (heldByRestoreChain).
  const uncommitted = chain.state !== 'live' && before !== 'unread' && JSON.stringify(after) === JSON.stringify(before) && (before === undefined || before.phase === 'extracting');
  let removed = false;
  for (const hidden of leftovers) {
    const full = path.join(tenantsDir, hidden.name);
    if (hidden.kind === 'trash' || hidden.kind === 'scratch') {
      const judged = await trashOfOurs(tenantsDir, full);
      if (judged === undefined) continue;
      await removeTree(full, { expect: judged });
    } else if (hidden.kind === 'staging' && uncommitted) {
      const judged = await judgedTree(tenantsDir, hidden.name, hidden.name === before?.staging ? before : undefined, 'staging');
      if (judged === 'absent' || judged === undefined) continue;
      await removeTree(full, { expect: judged });
    } else if (hidden.kind === 'journal-temp' && uncommitted) {
      await fs.rm(full, { force: true });
    } else continue;
    removed = true;
  }
  return removed;
}

export interface RecoverOptions {
  /**
   * Told of a restore in pieces this recovery ended (abandoned, its first piece killed before
   * it handed over, or damaged), once its checkpoint is removed: the restore function
   * publishes its failure event, which no piece of it will. Should not throw.
   */
  readonly onRestoreChainEnded?: (ended: EndedRestoreChain) => Promise<void>;
  /** A restore in pieces whose checkpoint no piece saved for this long is ended (restore-continuation.ts). @default DEFAULT_ABANDON_AFTER_MS */
  readonly restoreAbandonAfterMs?: number;
  /**
   * A restore checkpoint only another user saved (restoreChainState) ends its chain at once
   * (a piece of a chain: it never goes on from one); absent: it is live until it is stale.
   */
  readonly endForeignRestoreChain?: boolean;
  /**
   * The base dir's names, read by the caller before it took the tenant's lock (one listing
   * for a whole `backup --all` instead of one per tenant). Enough to recover from: the
   * journal, which names every staging and aside directory a restore of this version
   * leaves, is read afresh; names that appeared since the listing are garbage (trash,
   * temporaries), which the next sweep removes. A live holder's lock a taker moved aside since
   * is at the one aside name, which is looked at (handBackLiveLocks), not listed; one an earlier
   * version's taker moved to a name of its own is missed.
   */
  readonly names?: readonly string[];
  /**
   * Where a leftover that cannot be removed (a trash tree holding an immutable file: EPERM
   * even for root) is reported, instead of failing the recovery: nothing in such a leftover
   * is kept, and the slot is settled without it, so the command goes on (a backup of the
   * tenant is not refused night after night for a tree it never reads). Without it (`tenants
   * recover`, whose job the removal is) the failure is thrown.
   */
  readonly notices?: string[];
  /**
   * Stops removing leftovers once aborted (the list function's deadline: a staging directory
   * of 70,000 files takes minutes to unlink on EFS), with RemovalStoppedError, what is left
   * still named by its journal or its name, for the next command or sweep. Renames, which the
   * slot's state hangs on, are not stopped.
   */
  readonly signal?: AbortSignal;
}

/**
 * `tenants recover NAME --keep CHOICE`: recovers as recoverSlot does, and where that needs a
 * decision, puts the chosen tree in the slot and deletes the others. Call with the lock held.
 * Once the choice is carried out (the journal removed), a tree moved to trash that cannot be
 * deleted (an immutable file) is said in `notices`, not thrown: the decision stands, and
 * failing the command would say it did not.
 */
export async function recoverSlotKeeping(tenantsDir: string, tenant: string, keep: Keep, notices?: string[]): Promise<RecoveryAction> {
  let pending: RecoveryNeededError['pending'];
  try {
    return await recoverSlot(tenantsDir, tenant);
  } catch (error) {
    if (!(error instanceof RecoveryNeededError)) throw error;
    pending = error.pending;
  }
  if (!pending.choices.includes(keep)) {
    const choose = pending.choices.length === 0 ? 'settle it by hand' : `choose ${pending.choices.join(' or ')}`;
    throw new RecoveryNeededError(`--keep ${keep} is not possible for tenant "${tenant}": ${choose}`, pending);
  }
  // The trees the choice is made between, as judged: the restore's own as its journal recorded
  // them (when this user wrote it), what the slot holds as the decision described it.
  const previous = await readJournal(tenantsDir, tenant).catch(() => undefined);
  const recorded = previous?.writer === undefined || previous.writer === process.geteuid?.() ? previous?.inodes : undefined;
  const slot = await fs.lstat(path.join(tenantsDir, tenant), { bigint: true }).catch(() => undefined);
  const journal: Journal = {
    tenant,
    phase: 'keeping',
    keep,
    ...(pending.staging !== undefined && { staging: pending.staging }),
    ...(pending.aside !== undefined && { aside: pending.aside }),
    inodes: {
      ...(pending.staging !== undefined && recorded?.staging !== undefined && { staging: recorded.staging }),
      ...(pending.aside !== undefined && recorded?.aside !== undefined && { aside: recorded.aside }),
      ...(slot !== undefined && { slot: String(slot.ino) }),
    },
  };
  await writeJournal(tenantsDir, journal);
  crashPoint('keep:journal-written');
  return replay(tenantsDir, journal, notices);
}

/** Whether a restore is moving trees in or out of the slot (read-only; no lock needed). */
export async function isMidCommit(tenantsDir: string, tenant: string): Promise<boolean> {
  const journal = await readJournal(tenantsDir, tenant).catch(() => undefined);
  return journal !== undefined && journal.phase !== 'extracting';
}

/** `notices`: where a `keeping` journal's trash that cannot be deleted is reported (keepOne); without, it is thrown. */
async function replay(tenantsDir: string, journal: Journal, notices?: string[], stop: RemoveTreeOptions = {}): Promise<RecoveryAction> {
  switch (journal.phase) {
    case 'extracting': {
      const judged = await judgedTree(tenantsDir, journal.staging!, journal, 'staging');
      if (judged !== 'absent') await disposeOf(tenantsDir, journal.staging!, judged, stop, notices, STAGING_SWAPPED);
      crashPoint('restore:staging-discarded');
      await removeJournal(tenantsDir, journal.tenant);
      return 'rolled-back';
    }
    case 'committing':
      await rollForward(tenantsDir, journal, stop, notices);
      return 'finished-commit';
    case 'keeping':
      await keepOne(tenantsDir, journal, notices);
      return `kept-${journal.keep!}`;
  }
}

/**
 * The commit, from whatever step it reached: old tenant aside (if any), staged tenant in,
 * old tenant to trash, journal removed, trash deleted. Each step is taken only if the tree
 * it moves is still where the step before left it, so replaying it after a crash resumes it.
 */
async function rollForward(tenantsDir: string, journal: Journal, stop: RemoveTreeOptions, notices: string[] | undefined): Promise<void> {
  await moveIn(tenantsDir, journal);
  await tidyUp(tenantsDir, journal, stop, notices);
}

/**
 * The commit's first steps: the old tenant aside (if any), the staged tenant into the slot.
 * `fence`, a live restore's lock check (token and inode): frozen past the stale interval after
 * its commit point, its taker may have finished the commit by the journal and others worked on
 * the tenant since, so it checks right before each slot rename, and a rename of the slot that
 * came late all the same (frozen between the check and the rename) is undone: the tree it moved
 * goes back to the slot if the slot is still free. Before, resumed, it moved a newer tenant
 * aside and left the slot empty ("needs a decision"), or committed under another's lock.
 */
async function moveIn(tenantsDir: string, journal: Journal, fence?: () => Promise<void>): Promise<void> {
  const { tenant } = journal;
  const slot = path.join(tenantsDir, tenant);
  const staging = path.join(tenantsDir, journal.staging!);
  const aside = journal.aside === undefined ? undefined : path.join(tenantsDir, journal.aside);
  let asideThere = aside !== undefined && (await exists(aside));

  if (await exists(staging)) {
    if (aside !== undefined && !asideThere && (await slotState(tenantsDir, tenant)) === 'occupied') {
      await fence?.();
      crashPoint('commit:old-judged');
      asideThere = await renameIfThere(slot, aside);
      if (asideThere && fence !== undefined) {
        // What the rename moved: judged at once, as the lock may be another's by now.
        const moved = await fs.lstat(aside, { bigint: true }).catch(() => undefined);
        await fence().catch(async (lost: unknown) => {
          await putBackLate(slot, aside, moved);
          throw lost;
        });
      }
      crashPoint('commit:old-moved-aside');
    }
    await fence?.();
    try {
      // rename(2) replaces an absent or empty slot atomically and fails on anything else.
      await fs.rename(staging, slot);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? '';
      // Someone removed the staged tree meanwhile (an older version's prefix sweep took another tenant's for its own).
      if (code === 'ENOENT' && !(await exists(staging))) throw await recoveryNeeded(tenantsDir, journal, STAGED_TREE_GONE);
      if (!SLOT_TAKEN.has(code)) throw error;
      throw await recoveryNeeded(tenantsDir, journal, 'the slot was re-created while the restored tenant was being moved in');
    }
    crashPoint('commit:new-moved-in');
  } else if ((await slotState(tenantsDir, tenant)) === 'absent') {
    // After step 6 the slot holds the restored tenant: with no staged tree, an absent slot was emptied by someone else.
    throw await recoveryNeeded(tenantsDir, journal, asideThere ? 'the restored tenant was moved into the slot and has been removed from it since' : STAGED_TREE_GONE);
  }
}

/**
 * Undoes a live restore's rename of the slot aside made after it lost its lock: the tree it
 * moved (the same inode) goes back while the slot is still absent. Anything else stays as it is
 * (the lock's holder settles it; at worst a decision, nothing removed).
 */
async function putBackLate(slot: string, aside: string, moved: BigIntStats | undefined): Promise<void> {
  if (moved === undefined) return;
  const there = await fs.lstat(aside, { bigint: true }).catch(() => undefined);
  if (there?.ino !== moved.ino || there.dev !== moved.dev || (await exists(slot))) return;
  await fs.rename(aside, slot).catch(() => undefined);
}

const STAGED_TREE_GONE = 'the restored tenant is neither staged nor in the slot: something else removed it';

/**
 * The commit's last steps, with the restored tenant in the slot: the old tenant to trash, the
 * journal removed, the trash deleted. Only the tree the journal judged goes (see Journal's
 * `inodes`): anything else under the aside name is set aside, said in `notices`.
 */
async function tidyUp(tenantsDir: string, journal: Journal, options: RemoveTreeOptions, notices: string[] | undefined): Promise<void> {
  const { tenant } = journal;
  let trash: { name: string; judged: TreeId } | undefined;
  if (journal.aside !== undefined) {
    const judged = await judgedTree(tenantsDir, journal.aside, journal, 'aside');
    if (judged !== 'absent') {
      const name = judged === undefined ? undefined : await moveToTrash(tenantsDir, journal.aside, judged);
      if (name === undefined) await setAside(tenantsDir, journal.aside, notices, ASIDE_SWAPPED);
      else {
        trash = { name, judged: judged! };
        crashPoint('commit:old-moved-to-trash');
      }
    }
  }
  await syncDirectory(tenantsDir);
  await removeJournal(tenantsDir, tenant);
  crashPoint('commit:journal-removed');
  if (trash !== undefined) await disposeOf(tenantsDir, trash.name, trash.judged, options, notices, ASIDE_SWAPPED);
}

const STAGING_SWAPPED = 'is named as a restore\'s staging directory but is not the one the restore made';
const ASIDE_SWAPPED = 'is named as the tenant a restore moved aside but is not the tree it moved there';
const SLOT_SWAPPED = 'is not the tree the decision was made on';
const NOT_MADE = 'is named like a leftover of this tool but was not made by it';

/**
 * `--keep`: the chosen tree into the slot (what held the slot to trash), the others to trash,
 * the journal removed, the trash deleted: with `notices`, a trash that cannot be deleted is
 * noted there (the choice is carried out by then; the next command tries again).
 */
async function keepOne(tenantsDir: string, journal: Journal, notices?: string[]): Promise<void> {
  const { tenant } = journal;
  const slot = path.join(tenantsDir, tenant);
  const keptName = journal.keep === 'old' ? journal.aside : journal.keep === 'new' ? journal.staging : undefined;
  const kept = keptName === undefined ? undefined : path.join(tenantsDir, keptName);
  const trashes: { name: string; judged: TreeId }[] = [];
  // Only the tree the decision was made on goes (Journal's `inodes`): anything else under its name is set aside.
  const toTrash = async (name: string, role: Role, swapped: string) => {
    const judged = await judgedTree(tenantsDir, name, journal, role);
    if (judged === 'absent') return;
    const trash = judged === undefined ? undefined : await moveToTrash(tenantsDir, name, judged);
    if (trash === undefined) await setAside(tenantsDir, name, notices, swapped);
    else trashes.push({ name: trash, judged: judged! });
  };

  if (kept !== undefined && (await exists(kept))) {
    await toTrash(tenant, 'slot', SLOT_SWAPPED);
    crashPoint('keep:slot-moved-to-trash');
    // A tree kept back from trash (the commit was killed between marking the old tenant and moving it) loses the mark.
    await unmark(kept);
    await fs.rename(kept, slot);
    crashPoint('keep:moved-in');
  }
  for (const [name, role, swapped] of [
    [journal.staging, 'staging', STAGING_SWAPPED],
    [journal.aside, 'aside', ASIDE_SWAPPED],
  ] as const) {
    if (name === undefined || name === keptName) continue;
    await toTrash(name, role, swapped);
    crashPoint('keep:other-moved-to-trash');
  }
  await syncDirectory(tenantsDir);
  await removeJournal(tenantsDir, tenant);
  for (const trash of trashes) {
    try {
      await disposeOf(tenantsDir, trash.name, trash.judged, {}, notices, SLOT_SWAPPED);
    } catch (error) {
      if (notices === undefined) throw error;
      notices.push(leftoverNotice(error));
    }
  }
}

/**
 * For a holder of the tenant's lock (`lock`) that runs no recoverSlot (the backup function's
 * end of stale chains): stops (busy) when a gone taker moved aside the lock of a holder that
 * still runs, handing it the lock's name back, as recoverSlot does first. The base dir is
 * listed here, under the lock: a listing made before it was taken misses a lock moved aside
 * in between (before, a chain was judged from the sweep's listing and ended beside its live
 * piece, whose lock a taker had moved aside after that listing).
 */
export async function handBackMovedAsideLocks(tenantsDir: string, tenant: string, lock: TenantLock): Promise<void> {
  await handBackLiveLocks(tenantsDir, tenant, tenantLeftovers(await readNames(tenantsDir), tenant), lock);
}

/** Of the base dir's `names`, the tool's hidden names of `tenant`. */
function tenantLeftovers(names: readonly string[], tenant: string): HiddenName[] {
  return names.map(parseHiddenName).filter((hidden): hidden is HiddenName => hidden?.tenant === tenant);
}

/**
 * Stops (busy) when a taker moved aside the lock of a holder that still runs, handing it the
 * lock's name back (lock.ts handBackMovedAsideLock) over `lock`, the caller's own, only while
 * the name still holds it: else (taken over, or not held here) it stops, lost. Its taker gone
 * or alive: a live one (a taker without a claim, between its rename and its put-back) puts it
 * back only into a free name, and this command holds the name. Before, a live taker's moved
 * lock was left to its put-back, and the command went on beside the holder: `restore --force`
 * replaced the tenant under a running backup, whose lock the taker then linked back, and that
 * backup went on to store what it read (its lock's inode and token at the name again).
 */
async function handBackLiveLocks(tenantsDir: string, tenant: string, leftovers: readonly HiddenName[], lock: TenantLock | undefined): Promise<void> {
  // The one name takers move the lock to is looked at, not listed: a listing made before this
  // lock was taken (a backup's sweep, backup --all's one for the run) misses a lock moved there
  // since. Before, every taker moved it to a name of its own, found only by a listing: a
  // restore's lock moved aside by a taker killed after the backup's sweep had listed the base
  // dir, the backup took the free name, rolled back that live restore's staging as an
  // interrupted one's and backed up beside it (test/lock-moved-aside-after-listing.test.ts).
  const aside = path.join(tenantsDir, hiddenNames.lockAside(tenant));
  const atAside = lock === undefined ? undefined : await fs.lstat(aside).catch(() => undefined);
  // Our own lock under both names is a taker's link caught mid-check (it judged a lock gone that ours replaced): it removes it.
  if (lock !== undefined && atAside !== undefined && atAside.ino !== (await fs.lstat(lock.path).catch(() => undefined))?.ino) {
    const fileSystemNowMs = await new FileSystemClock(() => path.join(tenantsDir, hiddenNames.lockTemp(tenant))).now();
    await handBackMovedAsideLock(tenantsDir, tenant, aside, fileSystemNowMs, lock);
    // Not handed back: its holder is gone (or it names none): removed, as the next takeover would.
    await settleMovedAsideLock(lock.path, aside, fileSystemNowMs).catch(() => undefined);
  }
  const movedAside = leftovers.filter((hidden) => hidden.kind === 'lock-broken' && hidden.owner !== undefined);
  if (movedAside.length === 0) return;
  const clock = new FileSystemClock(() => path.join(tenantsDir, hiddenNames.lockTemp(movedAside[0]!.tenant)));
  for (const hidden of movedAside) {
    const full = path.join(tenantsDir, hidden.name);
    if (!(await exists(full))) continue;
    if (lock === undefined) {
      // Only a live holder's lock stops a command (handBackMovedAsideLock judges that); without ours to hand back over, it is not handed back.
      if (await isOwnerGone(hidden.owner!, (await fs.lstat(full).catch(() => undefined))?.mtimeMs ?? 0, STALE_AFTER_MS, clock)) {
        throw new TenantBusyError(`the lock of tenant "${hidden.tenant}" is not held here: ${full}, a live holder's lock moved aside, is not handed back`);
      }
      continue;
    }
    await handBackMovedAsideLock(tenantsDir, hidden.tenant, full, await clock.now(), lock);
  }
}

/**
 * What is garbage whatever state the slot is in: staging directories the journal does not
 * name (unverified), trash, journal temporaries, and lock temporaries whose owner is gone.
 * Returns whether anything was removed.
 */
async function removeGarbage(tenantsDir: string, leftovers: readonly HiddenName[], journal: Journal | undefined, notices: string[] | undefined, stop: RemoveTreeOptions): Promise<boolean> {
  let removed = false;
  const clock = new FileSystemClock(() => path.join(tenantsDir, hiddenNames.lockTemp(leftovers[0]!.tenant)));
  for (const hidden of leftovers) {
    const full = path.join(tenantsDir, hidden.name);
    // Names listed before the lock was taken may have been moved on since.
    if (!(await exists(full))) continue;
    crashPoint('sweep:leftover-found');
    const tree = hidden.kind === 'trash' || hidden.kind === 'scratch' || hidden.kind === 'journal-temp' || hidden.kind === 'continuation-temp' || hidden.kind === 'restore-continuation-temp' || (hidden.kind === 'staging' && hidden.name !== journal?.staging);
    // A directory under any of these names (trash, a scratch area, a staging directory no journal
    // names) is removed only if the tool made it (a marker) or the base dir's owner could remove it anyway.
    const directory = tree && hidden.kind !== 'trash' && (await fs.lstat(full).then((stat) => stat.isDirectory(), () => false));
    const judged = hidden.kind === 'trash' || directory ? await trashOfOurs(tenantsDir, full) : undefined;
    if (hidden.kind === 'trash' && judged !== undefined) crashPoint('sweep:trash-judged');
    if (directory && judged === undefined) {
      if (await setAside(tenantsDir, hidden.name, notices, NOT_MADE)) removed = true;
      continue;
    }
    if (hidden.kind === 'trash' && judged === undefined) {
      // Named like trash by someone else (the base dir's owner renaming a tenant it may not
      // delete, root's, so that root's sweep would): left, under a name no command deletes
      // and `tenants list`, `backup --all` and doctor name as no tenant.
      const left = path.join(tenantsDir, `${hidden.name.slice(1)}.not-removed`);
      if (await renameIfThere(full, left).catch(() => false)) {
        notices?.push(`${full} was named like this tool's trash but not made by it (its owner uid ${(await fs.lstat(left)).uid} is not the base dir's): nothing in it was removed; it is now ${left}: inspect it, then move it back or remove it by hand`);
        removed = true;
      }
      continue;
    }
    if (tree) {
      try {
        // A directory is removed only if it is still the one judged (the base dir's owner may swap one in meanwhile).
        await removeTree(full, judged === undefined ? stop : { ...stop, expect: judged });
      } catch (error) {
        if (error instanceof NotJudgedError) {
          await setAside(tenantsDir, hidden.name, notices, NOT_MADE);
          continue;
        }
        if (notices === undefined || error instanceof RemovalStoppedError) throw error;
        notices.push(leftoverNotice(error));
        continue;
      }
      removed = true;
    } else if (hidden.kind === 'lock-broken-old') {
      if (await removeOldMovedAsideLock(full, await clock.now())) removed = true;
    } else if (hidden.owner !== undefined) {
      const stat = await fs.lstat(full).catch(() => undefined);
      if (stat !== undefined && (await isOwnerGone(hidden.owner, stat.mtimeMs, STALE_AFTER_MS, clock))) {
        await fs.rm(full, { force: true });
        removed = true;
      }
    }
  }
  return removed;
}

/**
 * The tree under `name` in the base dir as a journal judged it for `role` (see Journal's
 * `inodes`): its identity if it may be moved to trash and removed, 'absent', or undefined: not
 * the tree judged. A journal's record counts if this user wrote it, or the tree's owner did (a
 * journal the base dir's owner forged naming a root-only tree does not). Without one (a
 * journal of an older version, an aside no journal names) the tree may go if the base dir's
 * owner owns it, who could remove it anyway.
 */
async function judgedTree(tenantsDir: string, name: string, journal: Journal | undefined, role: Role): Promise<TreeId | 'absent' | undefined> {
  let stat;
  try {
    stat = await fs.lstat(path.join(tenantsDir, name), { bigint: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw error;
  }
  const recorded = journal?.inodes?.[role];
  const writer = journal?.writer;
  if (recorded !== undefined && (writer === undefined || writer === process.geteuid?.() || BigInt(writer) === stat.uid)) {
    return stat.ino === BigInt(recorded) ? { dev: stat.dev, ino: stat.ino } : undefined;
  }
  const base = await fs.stat(tenantsDir, { bigint: true });
  return stat.uid === base.uid ? { dev: stat.dev, ino: stat.ino } : undefined;
}

/**
 * Marks the tree under `name` as trash (TRASH_MARKER) and renames it to a trash name, if it is
 * still the tree judged, checked through the directory opened no-follow and marked through it;
 * returns the trash name, or undefined: another tree is there now (nothing marked or moved).
 * The rename itself goes by name: a tree swapped in between the check and the rename goes to
 * trash unmarked, and neither this removal (disposeOf) nor the sweep deletes it.
 */
async function moveToTrash(tenantsDir: string, name: string, judged: TreeId): Promise<string | undefined> {
  const from = path.join(tenantsDir, name);
  let directory: fs.FileHandle | undefined;
  try {
    directory = await fs.open(from, DIRECTORY_FLAGS);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code !== 'ENOTDIR' && code !== 'ELOOP' && code !== 'EACCES' && code !== 'EPERM') throw error;
    // Not a directory (a file left in the slot), or one this user cannot open: judged by lstat, moved unmarked.
  }
  try {
    const stat = directory === undefined ? await fs.lstat(from, { bigint: true }) : await directory.stat({ bigint: true });
    if (stat.dev !== judged.dev || stat.ino !== judged.ino) return undefined;
    if (directory !== undefined) {
      // A tree that cannot take the marker (read-only, full disk) goes unmarked: judged by its owner, as older trash is.
      await writeTrashMarker(`${FD_LINKS}${directory.fd}`, stat.ino).catch(() => undefined);
    }
  } finally {
    await directory?.close();
  }
  const trash = hiddenNames.trash(parseHiddenName(name)?.tenant ?? name);
  return (await renameIfThere(from, path.join(tenantsDir, trash))) ? trash : undefined;
}

/**
 * Removes the tree under `name` if it is the one judged (through its descriptor, removeTree's
 * `expect`); another tree found there, or none judged, is set aside (setAside) instead.
 */
async function disposeOf(tenantsDir: string, name: string, judged: TreeId | undefined, stop: RemoveTreeOptions, notices: string[] | undefined, swapped: string): Promise<void> {
  if (judged !== undefined) {
    try {
      await removeTree(path.join(tenantsDir, name), { ...stop, expect: judged });
      return;
    } catch (error) {
      if (!(error instanceof NotJudgedError)) throw error;
    }
  }
  await setAside(tenantsDir, name, notices, swapped);
}

/**
 * What is under `name` but is not the tree a step judged (the base dir's owner renamed a
 * root-only tenant to an aside, staging or slot name, so that root would trash it) is left
 * whole: an empty directory is removed (rmdir, which nothing else passes), anything else
 * renamed out of the tool's names to `<name without its dot>.not-removed`
 * (`openclaw-slot-<t>-<rand>.not-removed` for the slot), which `tenants list`, `backup --all`
 * and doctor name as no tenant; `notices` says so. Returns whether anything was there.
 */
async function setAside(tenantsDir: string, name: string, notices: string[] | undefined, why: string): Promise<boolean> {
  const full = path.join(tenantsDir, name);
  try {
    await fs.rmdir(full);
    return true;
  } catch {
    // not empty, not a directory, or gone
  }
  const leftName = `${name.startsWith('.') ? name.slice(1) : `openclaw-slot-${name}-${randomBytes(6).toString('hex')}`}.not-removed`;
  const left = path.join(tenantsDir, leftName);
  if (!(await renameIfThere(full, left))) return false;
  const owner = await fs.lstat(left).then((stat) => `, owner uid ${stat.uid}`, () => '');
  notices?.push(`${full} ${why}${owner}: nothing in it was removed; it is now ${left}: inspect it, then move it back or remove it by hand`);
  return true;
}

/**
 * The directory just made at `dir`, opened no-follow: this user's and empty, else it is not
 * the one made (the base dir's owner swapped another in at once) and nothing is recorded.
 */
async function madeDirectory(dir: string): Promise<TreeId> {
  // Worded as restore.ts's pinStaging, which checks the same (and more) right after.
  const replaced = (how: string, cause?: unknown) => new FileSystemError(`the restore's staging directory ${shownPath(dir)} was replaced while it was made (${how}): restore again, and check who else writes in the base dir`, cause === undefined ? undefined : { cause });
  const directory = await fs.open(dir, DIRECTORY_FLAGS).catch((error: unknown) => {
    throw replaced('it is no longer a directory there', error);
  });
  try {
    const stat = await directory.stat({ bigint: true });
    if (!(await isOwnNewDirectory(stat.uid, path.dirname(dir))) || (CAN_CHECK_OPENED_PATHS && (await fs.readdir(`${FD_LINKS}${directory.fd}`)).length > 0)) {
      throw replaced(`the directory there is not the empty 0${STAGING_MODE.toString(8)} one it made`);
    }
    return { dev: stat.dev, ino: stat.ino };
  } finally {
    await directory.close();
  }
}

/**
 * Whether a tree under a trash name is one the tool moved there, which the sweep may delete,
 * and if so its identity, which the removal checks (undefined: not ours): it holds the marker
 * naming it (a regular file, owned by the tree's owner or by this user: one the base dir's
 * owner made in a root-only tree cannot be), or, unmarked (an older version's trash, a
 * removal killed midway, a tree that could not be marked), it is the base dir owner's, who
 * could delete it anyway. A root-only tenant the base dir's owner renamed to a trash name is
 * neither. The tree and its marker are read through one descriptor of the directory.
 */
export async function trashOfOurs(tenantsDir: string, trash: string): Promise<{ dev: bigint; ino: bigint } | undefined> {
  let directory: fs.FileHandle | undefined;
  try {
    directory = await fs.open(trash, DIRECTORY_FLAGS);
  } catch {
    // Not a directory, or not one root can open no-follow: judged by its owner, removed as it is.
  }
  try {
    // Gone meanwhile: another command removed it (`tenants recover` with no inode left removes
    // trash beside a lock holder, or two such recovers beside each other); nothing to judge.
    const stat = directory === undefined ? await fs.lstat(trash, { bigint: true }).catch((error: unknown) => {
      if (errnoCode(error) === 'ENOENT') return undefined;
      throw error;
    }) : await directory.stat({ bigint: true });
    if (stat === undefined) return undefined;
    if (directory !== undefined) {
      try {
        const handle = await fs.open(`${FD_LINKS}${directory.fd}/${TRASH_MARKER}`, READ_FLAGS);
        try {
          const marker = await handle.stat({ bigint: true });
          const self = BigInt(process.geteuid?.() ?? -1);
          if (marker.isFile() && marker.size < 256n && (marker.uid === stat.uid || marker.uid === self)) {
            if ((await handle.readFile('utf8')) === markerContent(stat)) return { dev: stat.dev, ino: stat.ino };
          }
        } finally {
          await handle.close();
        }
      } catch {
        // No marker: judged by its owner.
      }
    }
    const base = await fs.stat(tenantsDir, { bigint: true });
    return stat.uid === base.uid ? { dev: stat.dev, ino: stat.ino } : undefined;
  } finally {
    await directory?.close();
  }
}

function leftoverNotice(error: unknown): string {
  return `a leftover of an earlier operation (nothing in it is kept) could not be removed, and the next command tries again: ${describeSystemError(error)}`;
}

/**
 * Aside directories no journal names: older versions removed the journal before the old
 * tenant, so one beside a tenant in the slot was superseded; without one it may be the only
 * copy, which needs a decision. Returns whether anything was removed.
 */
async function settleOrphanAsides(tenantsDir: string, tenant: string, leftovers: readonly HiddenName[], notices: string[] | undefined, stop: RemoveTreeOptions): Promise<boolean> {
  const asides: { name: string; judged: TreeId }[] = [];
  let setAsideAny = false;
  // The journal's own aside was moved on by its replay: only those still there are orphans.
  // With no journal to say which tree went aside, one is the tool's only if the base dir's
  // owner owns it (judgedTree): the base dir's owner renamed a root-only tenant to an aside
  // name, and root's next sweep deleted it as a superseded old tenant.
  for (const hidden of leftovers) {
    if (hidden.kind !== 'aside') continue;
    const judged = await judgedTree(tenantsDir, hidden.name, undefined, 'aside');
    if (judged === 'absent') continue;
    if (judged === undefined) setAsideAny = (await setAside(tenantsDir, hidden.name, notices, NOT_MADE)) || setAsideAny;
    else asides.push({ name: hidden.name, judged });
  }
  if (asides.length === 0) return setAsideAny;
  if ((await slotState(tenantsDir, tenant)) !== 'occupied') {
    throw await recoveryNeeded(
      tenantsDir,
      { tenant, phase: 'committing', ...(asides.length === 1 && { aside: asides[0]!.name }) },
      'a previous tenant was left aside by an interrupted restore --force whose journal is gone',
      asides.map((aside) => aside.name),
    );
  }
  for (const aside of asides) {
    const trash = await moveToTrash(tenantsDir, aside.name, aside.judged);
    await disposeOf(tenantsDir, trash ?? aside.name, trash === undefined ? undefined : aside.judged, stop, notices, ASIDE_SWAPPED);
  }
  return true;
}

const SLOT_TAKEN = new Set(['ENOTEMPTY', 'EEXIST', 'ENOTDIR', 'EISDIR']);

async function recoveryNeeded(tenantsDir: string, journal: Journal, why: string, asides?: readonly string[]): Promise<RecoveryNeededError> {
  const { tenant } = journal;
  const staging = journal.staging !== undefined && (await exists(path.join(tenantsDir, journal.staging))) ? journal.staging : undefined;
  const aside = journal.aside !== undefined && (await exists(path.join(tenantsDir, journal.aside))) ? journal.aside : undefined;
  const parts = [`${path.join(tenantsDir, tenant)} ${await describeTree(path.join(tenantsDir, tenant))}`];
  for (const name of asides ?? (aside === undefined ? [] : [aside])) {
    parts.push(`${path.join(tenantsDir, name)} holds the previous tenant (${await describeContent(path.join(tenantsDir, name))})`);
  }
  if (staging !== undefined) parts.push(`${path.join(tenantsDir, staging)} holds the restored tenant, verified (${await describeContent(path.join(tenantsDir, staging))})`);
  // Several old copies (older versions only) are beyond what --keep names: that is by hand.
  const several = (asides?.length ?? 0) > 1;
  const choices: Keep[] = several ? [] : [...(aside !== undefined ? ['old' as const] : []), ...(staging !== undefined ? ['new' as const] : []), 'slot'];
  const settle = several
    ? `Move the one to keep to ${path.join(tenantsDir, tenant)} by hand and remove the others`
    : `Keep one with: openclaw tenants recover ${tenant} --keep ${choices.join('|')} (the others are deleted)`;
  const message = `tenant "${tenant}" needs a decision after an interrupted restore (${why}); nothing was moved: ${parts.join('; ')}. ${settle}`;
  return new RecoveryNeededError(message, { tenant, ...(staging !== undefined && { staging }), ...(aside !== undefined && { aside }), choices });
}

/** "is absent", "is empty", "holds 3 files (12 KiB)": what the slot holds, in words. */
async function describeTree(dir: string): Promise<string> {
  const stat = await fs.lstat(dir).catch(() => undefined);
  if (stat === undefined) return 'is absent';
  if (!stat.isDirectory()) return 'is not a directory';
  const content = await describeContent(dir);
  return content === 'empty' ? 'is empty' : `holds ${content}, written since`;
}

const SLASH = Buffer.from('/');

async function describeContent(dir: string): Promise<string> {
  let files = 0;
  let directories = 0;
  // Listed as bytes: a directory whose name is not UTF-8, listed as text, would be U+FFFD and
  // lead nowhere, its files not counted (a tree of thousands shown as nearly empty, to an
  // operator choosing which tree to delete).
  const visit = async (at: Buffer): Promise<void> => {
    for (const entry of await fs.readdir(at, { withFileTypes: true, encoding: 'buffer' }).catch(() => [])) {
      if (entry.isDirectory()) {
        directories++;
        await visit(Buffer.concat([at, SLASH, entry.name]));
      } else files++;
    }
  };
  await visit(Buffer.from(dir));
  if (files === 0 && directories === 0) return 'empty';
  return `${files} ${files === 1 ? 'file' : 'files'} in ${directories + 1} ${directories === 0 ? 'directory' : 'directories'}`;
}

/**
 * Writes the journal whole, then renames it into place, which the tenant's lock must still be
 * this process's for (`beforeRename`; by default the lock held here, if any). The staging
 * area's first journal had no such check: a restore whose heartbeat failed (EIO) while its
 * journal's fsync hung 75 s had its lock taken over by a recover on another host, which removed
 * its staging and journal temporary; the restore then failed "unexpected error: ENOENT ...
 * rename", and had its temporary been left (a backup taking over), it would have renamed its
 * journal into place under the other command's lock.
 */
async function writeJournal(tenantsDir: string, journal: Journal, beforeRename: (() => Promise<void>) | undefined = heldCheck(tenantsDir, journal.tenant)): Promise<void> {
  const journalPath = journalPathFor(tenantsDir, journal.tenant);
  const temp = path.join(tenantsDir, hiddenNames.journalTemp(journal.tenant));
  try {
    const handle = await fs.open(temp, 'wx', 0o600);
    try {
      await writeWhole(handle, [Buffer.from(JSON.stringify({ ...journal, writer: undefined }))]);
      await handle.sync();
    } finally {
      await handle.close();
    }
    crashPoint(`journal:${journal.phase}:temp-written`);
    await beforeRename?.();
    await fs.rename(temp, journalPath);
  } catch (error) {
    await fs.rm(temp, { force: true }).catch(() => undefined);
    const what = errnoMessage(error);
    if (what === undefined) throw error;
    throw new FileSystemError(`cannot write the restore journal ${journalPath}: ${what}`, { cause: error });
  }
  await syncDirectory(tenantsDir);
}

function heldCheck(tenantsDir: string, tenant: string): (() => Promise<void>) | undefined {
  const lock = tenantLockHeldHere(tenantsDir, tenant);
  return lock === undefined ? undefined : () => lock.assertHeld();
}

async function removeJournal(tenantsDir: string, tenant: string): Promise<void> {
  await fs.rm(journalPathFor(tenantsDir, tenant), { force: true });
}

/** A journal is a few hundred bytes: a larger file under its name is not one. */
const JOURNAL_MAX_BYTES = 1024 * 1024;

async function readJournal(tenantsDir: string, tenant: string): Promise<Journal | undefined> {
  const journalPath = journalPathFor(tenantsDir, tenant);
  let raw: string;
  let writer: number;
  try {
    const { bytes, uid } = await readOwnFileAndOwner(journalPath, JOURNAL_MAX_BYTES);
    raw = bytes.toString('utf8');
    writer = uid;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const journal = JSON.parse(raw) as Journal;
    const names = (value: unknown, kind: HiddenKind) => {
      const hidden = typeof value === 'string' ? parseHiddenName(value) : undefined;
      return hidden?.kind === kind && hidden.tenant === tenant;
    };
    if (journal.tenant !== tenant) throw new Error('names another tenant');
    if (!['extracting', 'committing', 'keeping'].includes(journal.phase)) throw new Error('unknown phase');
    if (journal.phase !== 'keeping' && !names(journal.staging, 'staging')) throw new Error('bad staging name');
    if (journal.staging !== undefined && !names(journal.staging, 'staging')) throw new Error('bad staging name');
    if (journal.aside !== undefined && !names(journal.aside, 'aside')) throw new Error('bad aside name');
    if (journal.phase === 'keeping' && !KEEP_CHOICES.includes(journal.keep!)) throw new Error('bad choice');
    if (journal.inodes !== undefined) {
      if (typeof journal.inodes !== 'object' || journal.inodes === null) throw new Error('bad inodes');
      for (const [role, ino] of Object.entries(journal.inodes)) {
        if (!['staging', 'aside', 'slot'].includes(role) || typeof ino !== 'string' || !/^\d{1,20}$/.test(ino)) throw new Error('bad inode');
      }
    }
    return { ...journal, writer };
  } catch (error) {
    throw new FileSystemError(`the restore journal ${journalPath} is damaged; inspect it and remove it by hand`, { cause: error });
  }
}

/**
 * The tenant's journal as a judgement without the lock may take it. A lookup may be answered
 * from a cache of when there was none (a FUSE mount's negative entries): none only if the
 * base dir's listing, asked of the file system, lacks it too (as lock.ts isLockHolderGoneHere
 * judges the lock); 'unread' when it does not.
 */
async function readJournalWithoutLock(tenantsDir: string, tenant: string): Promise<Journal | undefined | 'unread'> {
  const journal = await readJournal(tenantsDir, tenant);
  if (journal !== undefined) return journal;
  return (await readNames(tenantsDir)).includes(hiddenNames.journal(tenant)) ? 'unread' : undefined;
}

async function readNames(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/**
 * Removes the trash marker of the directory at `dir`, through the directory opened no-follow:
 * by its name, the base dir's owner could swap a symlink in meanwhile and root would unlink
 * the `.openclaw-trash` of whatever directory it leads to, outside the base dir too (another
 * base dir's trash, which then is no longer removed). Anything but a directory there has none.
 */
async function unmark(dir: string): Promise<void> {
  let directory: fs.FileHandle;
  try {
    directory = await fs.open(dir, DIRECTORY_FLAGS);
  } catch (error) {
    if (['ENOENT', 'ENOTDIR', 'ELOOP'].includes((error as NodeJS.ErrnoException).code ?? '')) return;
    throw error;
  }
  try {
    // Without procfs (no command runs so as root: mustRefuseWithoutProcfs) by its name, as before.
    await fs.rm(CAN_CHECK_OPENED_PATHS ? `${FD_LINKS}${directory.fd}/${TRASH_MARKER}` : path.join(dir, TRASH_MARKER), { force: true });
  } finally {
    await directory.close();
  }
}

/** Renames unless `from` is gone; returns whether it moved. */
async function renameIfThere(from: string, to: string): Promise<boolean> {
  try {
    await fs.rename(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

async function exists(target: string): Promise<boolean> {
  try {
    await fs.lstat(target);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
