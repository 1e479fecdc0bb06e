// The sweep every command runs when it opens the tenant base dir: leftovers of killed
// operations on any tenant, not just the one named, are settled once their owner is
// provably gone. Lock temporaries carry their owner in their name (process-owner.ts);
// journals, staging, aside and trash directories, and encrypted backups' scratch
// directories, belong to whoever holds the tenant's lock, so the sweep takes that lock
// (taking over one whose holder is gone, refusing a live one) and runs the tenant's
// recovery (tenant/slot.ts) under it. Nothing of a live process
// is touched. Cost: it works on one readdir of the base dir and looks only at names that
// start with ".openclaw-", which a clean base dir has none of, so `tenants list` on
// thousands of tenants pays one prefix test per name.

import { promises as fs } from 'node:fs';
import path from 'node:path';

import { describeError, describeSystemError, RecoveryNeededError, TenantBusyError } from '../errors.js';
import { HIDDEN_PREFIX, hiddenNames, parseHiddenName, type HiddenName } from './hidden-names.js';
import { FileSystemClock, isOwnerGone, STALE_AFTER_MS } from './process-owner.js';
import { acquireTenantLock, isLockHeldHere, isLockHolderGoneHere, lockPathFor, removeOldMovedAsideLock, settleMovedAsideLock } from './lock.js';
import { removeTree } from './remove-tree.js';
import { recoverSlot, trashOfOurs, type RecoverOptions, type RecoveryAction } from './slot.js';

/** A tenant whose leftovers the sweep left in place, and why. */
export type Unsettled =
  /** A live operation holds the tenant's lock: its files are its own. */
  | { readonly state: 'busy' }
  /** Recovery refused (it needs `tenants recover --keep`) or failed; or not reached before the sweep was stopped (`signal`). */
  | { readonly state: 'refused' | 'failed' | 'stopped'; readonly detail: string };

export interface SweepResult {
  readonly unsettled: ReadonlyMap<string, Unsettled>;
  /** Whether the sweep removed or moved anything. */
  readonly changed: boolean;
  /** Tenants whose recovery the sweep ran and what it did (a 'none' left out): an interrupted restore rolled back, a commit finished, … for the caller to say. */
  readonly recovered: ReadonlyMap<string, RecoveryAction>;
  /** The names it read, before it settled anything: the tenant it was told to leave (`except`) can be recovered from them (tenant/slot.ts recoverSlot). */
  readonly names: readonly string[];
}

export interface SweepOptions {
  /** Names in the base dir, when the caller has just read them (saves a readdir). */
  readonly names?: readonly string[];
  /** A tenant the caller settles itself, under its own lock. */
  readonly except?: string;
  /** Stops the sweep once aborted (the list function's deadline): tenants not settled by then are left to the next (RecoverOptions.signal). */
  readonly signal?: AbortSignal;
  /** RecoverOptions.onRestoreChainEnded, for every tenant it settles; absent: tenants with a restore in pieces are not settled (left to a sweep or operation that tells). */
  readonly onRestoreChainEnded?: RecoverOptions['onRestoreChainEnded'];
}

export async function sweepBaseDir(tenantsDir: string, options: SweepOptions = {}): Promise<SweepResult> {
  const names = options.names ?? (await fs.readdir(tenantsDir).catch(() => [] as string[]));
  const byTenant = new Map<string, HiddenName[]>();
  const unsettled = new Map<string, Unsettled>();
  const recovered = new Map<string, RecoveryAction>();
  for (const name of names) {
    if (!name.startsWith(HIDDEN_PREFIX)) continue;
    const hidden = parseHiddenName(name);
    // A continuing backup's state is live between its pieces; abandoned chains are cleaned up with their uploads (backup/continuation.ts).
    if (hidden === undefined || hidden.tenant === options.except || hidden.kind === 'continuation' || hidden.kind === 'restore-continuation') continue;
    // Held by another operation of this very process (the backups of a `backup --all` at
    // once): busy, as trying its lock would say, without the files that takes. Judged as
    // the names are read: one released later is not settled as if it had been left over.
    if (isLockHeldHere(tenantsDir, hidden.tenant)) {
      unsettled.set(hidden.tenant, { state: 'busy' });
      continue;
    }
    byTenant.set(hidden.tenant, [...(byTenant.get(hidden.tenant) ?? []), hidden]);
  }

  let changed = false;
  for (const [tenant, leftovers] of byTenant) {
    // Not reached: still named, so a listing does not drop a tenant a restore left mid-commit
    // (its slot absent until the next sweep moves it in).
    if (options.signal?.aborted === true) {
      unsettled.set(tenant, { state: 'stopped', detail: 'its leftovers were not settled in the time the sweep had; the next command on it settles them' });
      continue;
    }
    const clock = new FileSystemClock(() => path.join(tenantsDir, hiddenNames.lockTemp(tenant)));
    for (const hidden of leftovers) {
      if (hidden.kind === 'lock-broken-old') {
        if (await removeOldMovedAsideLock(path.join(tenantsDir, hidden.name), await clock.now()).catch(() => false)) changed = true;
        continue;
      }
      // A lock a taker moved aside (one name a tenant): its taker unnamed, it is judged by its
      // holder (lock.ts settleMovedAsideLock: a gone holder's removed, a live one's put back);
      // a taker at work has it for a moment, and one killed between its link and its unlink
      // left the lock under both names (judged at the lock's name instead).
      if (hidden.kind === 'lock-aside') {
        const full = path.join(tenantsDir, hidden.name);
        const stat = await fs.lstat(full).catch(() => undefined);
        if (stat === undefined || (await isTheLock(tenantsDir, hidden.tenant, stat.ino))) continue;
        const settled = await settleMovedAsideLock(lockPathFor(tenantsDir, hidden.tenant), full, await clock.now()).catch(() => 'kept' as const);
        changed ||= settled !== 'kept';
        continue;
      }
      if (hidden.owner === undefined) continue;
      const full = path.join(tenantsDir, hidden.name);
      const stat = await fs.lstat(full).catch(() => undefined);
      // An empty lock's second name (lock.ts) goes with the lock, when it is taken over: it is
      // told by its inode (a FUSE mount's attribute cache may give a link count from before the link).
      if (hidden.kind === 'lock-held' && stat !== undefined && (await isTheLock(tenantsDir, hidden.tenant, stat.ino))) continue;
      if (stat === undefined || !(await isOwnerGone(hidden.owner, stat.mtimeMs, STALE_AFTER_MS, clock))) continue;
      // A lock its taker moved aside may be a live holder's (lock.ts settleMovedAsideLock).
      if (hidden.kind === 'lock-broken') {
        const settled = await settleMovedAsideLock(lockPathFor(tenantsDir, hidden.tenant), full, await clock.now()).catch(() => 'kept' as const);
        changed ||= settled !== 'kept';
        continue;
      }
      await fs.rm(full, { force: true }).catch(() => undefined);
      changed = true;
    }
    if (leftovers.every((hidden) => hidden.owner !== undefined || hidden.kind === 'lock-broken-old')) continue;
    // A restore in pieces of it (the functions'): whether it ended is left to a sweep or an
    // operation that says so (onRestoreChainEnded: its event), not settled silently here
    // (the list function's sweep, first to come after a chain's abandon time, ended it unsaid).
    if (options.onRestoreChainEnded === undefined && names.includes(hiddenNames.restoreContinuation(tenant))) continue;
    const outcome = await settle(tenantsDir, tenant, names, options);
    if (typeof outcome === 'string') {
      changed = true;
      if (outcome !== 'none') recovered.set(tenant, outcome);
    } else unsettled.set(tenant, outcome);
  }
  return { unsettled, changed, recovered, names };
}

/** The tenant's recovery under its lock: what it did, or why it left the leftovers. */
async function settle(tenantsDir: string, tenant: string, names: readonly string[], { signal, onRestoreChainEnded }: SweepOptions): Promise<Unsettled | RecoveryAction> {
  let lock;
  try {
    lock = await acquireTenantLock(tenantsDir, tenant, 'recover');
  } catch (error) {
    if (error instanceof TenantBusyError) return { state: 'busy' };
    return { state: 'failed', detail: describeError(error) };
  }
  try {
    return await recoverSlot(tenantsDir, tenant, { names, ...(signal !== undefined && { signal }), ...(onRestoreChainEnded !== undefined && { onRestoreChainEnded }) });
  } catch (error) {
    return { state: error instanceof RecoveryNeededError ? 'refused' : 'failed', detail: describeSystemError(error) };
  } finally {
    await lock.release().catch(() => undefined);
  }
}

/** Whether the tenant's lock is the file of inode `ino`. */
async function isTheLock(tenantsDir: string, tenant: string, ino: number): Promise<boolean> {
  const lock = await fs.lstat(path.join(tenantsDir, hiddenNames.lock(tenant))).catch(() => undefined);
  return lock?.ino === ino;
}

/**
 * The scratch areas of encrypted backups (backup/temp-area.ts: plaintext copies of tenants'
 * files) in the base dir that no live backup holds: their tenant's lock is absent, or held by a
 * process of this pid namespace that is gone (isLockHolderGoneHere; a holder on another host is
 * not judged). Read only, for `doctor` and dry runs; the commands that sweep remove them, and
 * `backups`, `verify` and `prune`, which never sweep, through removeDeadScratchAreas.
 *
 * The base dir is listed once: each tenant's lock is judged from that listing (a backup makes
 * its area only while it holds its lock, so the listing that shows the area shows a live
 * holder's lock too). Asked again per tenant, it was listed twice for each tenant with an area
 * and no lock: 102 listings for 50 such tenants, and doctor took 17 s for 2,000.
 */
export async function deadScratchAreas(tenantsDir: string, listed?: readonly string[]): Promise<string[]> {
  const names = listed ?? (await fs.readdir(tenantsDir));
  const scratch = names.flatMap((name) => {
    const hidden = name.startsWith(HIDDEN_PREFIX) ? parseHiddenName(name) : undefined;
    return hidden?.kind === 'scratch' ? [hidden] : [];
  });
  const gone = new Map<string, boolean>();
  const dead: string[] = [];
  for (const { name, tenant } of scratch) {
    if (!gone.has(tenant)) gone.set(tenant, await isLockHolderGoneHere(tenantsDir, tenant, names).catch(() => false));
    if (gone.get(tenant) === true) dead.push(name);
  }
  return dead.sort();
}

/**
 * deadScratchAreas told apart, for `doctor`: `made`, the areas a sweep removes, and `notMade`,
 * directories under a scratch area's name the tool did not make (no marker of its own, and
 * not the base dir owner's: slot.ts trashOfOurs, as removeDeadScratchAreas judges them),
 * which a sweep moves aside to `<name>.not-removed`, nothing in them removed. Doctor said
 * "run tenants list … to remove" of both, and tenants list moved the second aside instead.
 * One that cannot be judged (the base dir unreadable meanwhile) counts as made.
 */
export async function judgedDeadScratchAreas(tenantsDir: string): Promise<{ made: string[]; notMade: string[] }> {
  const made: string[] = [];
  const notMade: string[] = [];
  for (const name of await deadScratchAreas(tenantsDir)) {
    const full = path.join(tenantsDir, name);
    const directory = await fs.lstat(full).then((stat) => stat.isDirectory(), () => false);
    const ours = directory ? await trashOfOurs(tenantsDir, full).then((judged) => judged !== undefined, () => true) : true;
    (ours ? made : notMade).push(name);
  }
  return { made, notMade };
}

/** The start of every scratch area's name (hidden-names.ts). */
const HIDDEN_SCRATCH_PREFIX = `${HIDDEN_PREFIX}scratch-`;

/**
 * For the commands that never sweep the base dir (`backups`, `verify`, `prune` and every dry
 * run): the dead scratch areas (deadScratchAreas) this user owns, removed (a dry run: only
 * named, nothing removed). A killed encrypting backup's area holds plaintext copies of tenant
 * files; it stayed through any number of these commands until the next one that sweeps.
 *
 * No lock is taken: a backup makes its area only while it holds its tenant's lock and removes
 * it before it lets go, so an area listed while no live process held that lock (absent, or its
 * holder a gone process of this pid namespace) is no live backup's, and none makes one under
 * that name again (its random part; slot.ts removeWhatGoneRestoresLeft removes it so, on a disk
 * with no inode left). Each is removed only if it is still the tree judged, one the tool made
 * (its trash marker, or the base dir owner's: slot.ts trashOfOurs) and this user's. Best
 * effort: an area that cannot be removed is left to the next command, and the command goes on.
 * A dry run names only those the same command would remove: one the tool did not make (no
 * marker, another owner than the base dir's: an area made without procfs, or by an older
 * version) had been named as "removed without --dry-run", and was not.
 *
 * Cost: one readdir of the base dir and a prefix test per name when there is none (2,000
 * tenants: under a millisecond of the listing commands' time); nothing more is read.
 * Returns the names found (dry run) or removed.
 */
export async function removeDeadScratchAreas(tenantsDir: string, options: { readonly dryRun?: boolean } = {}): Promise<string[]> {
  const names = await fs.readdir(tenantsDir).catch(() => undefined);
  if (names === undefined || !names.some((name) => name.startsWith(HIDDEN_SCRATCH_PREFIX))) return [];
  const self = process.geteuid?.();
  const done: string[] = [];
  for (const name of await deadScratchAreas(tenantsDir, names).catch(() => [] as string[])) {
    const full = path.join(tenantsDir, name);
    const stat = await fs.lstat(full, { bigint: true }).catch(() => undefined);
    if (stat === undefined || !stat.isDirectory() || (self !== undefined && stat.uid !== BigInt(self))) continue;
    try {
      // Judged (read only) before a dry run names it too: a directory the tool did not make is neither removed nor said to be removable.
      const judged = await trashOfOurs(tenantsDir, full);
      if (judged === undefined || judged.ino !== stat.ino || judged.dev !== stat.dev) continue;
      if (options.dryRun === true) {
        done.push(name);
        continue;
      }
      await removeTree(full, { expect: judged });
      done.push(name);
    } catch {
      // Another tree under the name by now (removeTree's NotJudgedError), or one that cannot be removed: left to the next command.
    }
  }
  return done;
}
