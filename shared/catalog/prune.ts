// `tenants prune NAME --in LOCATION --keep-…`: removes the tenant's backups that no rule of
// the retention policy keeps (retention.ts, restic's `forget` semantics), dated by the
// manifest's creation time as the listing reads it (backups.ts). Below a prefix of many tenants
// it looks only at the objects whose location holds the tenant's name, or whose name is a date
// alone (tenantsListing).
//
// What it never removes:
//   - a backup it cannot date or attribute (no recorded creation time, or only its path names
//     the tenant): kept, with the reason;
//   - a backup whose end is missing (an archive without its footer, an S3 object of another
//     size than the backup recorded in its size tag: a copy cut short): kept, and counted by
//     no rule, so it never takes the place of a whole backup;
//   - likewise a backup that nothing shows whole (backups.ts `unconfirmed`): an S3 object
//     dated by its metadata whose bytes hold no footer to read (encrypted, piped, archived)
//     and which carries neither the size tag the backup writes as its upload completes nor a
//     verification mark; a multipart upload someone completed with the parts a killed backup
//     left looks just like that. Counted, a cut-short encrypted object would fill a retention
//     slot and a whole older backup would go in its favour. It counts once verified.
//   - a local file another user owns (not this process's user, root, nor the owner of the
//     directory listed), or that others may write: anyone can make an archive naming any
//     tenant, so in a directory all may write in it would take the place of real backups;
//     kept, counted by no rule (verified-mark.ts archiveNotTrusted);
//   - a backup dated more than an hour after this prune's clock (made on a host whose clock
//     ran ahead): kept, and counted by no rule; counted, it would be the "newest" backup and
//     every real one after it would go first (--keep-last 1 would keep only it);
//   - the newest verified backup (the newest one `tenants verify` found intact and marked),
//     whatever the policy says: a prune must never leave a tenant with only backups nobody
//     has shown to restore. Verified means checked end to end, not merely "its digest is
//     known": a digest says the backup finished writing, not that its bytes still decode.
//     Without any verified backup the policy alone decides (it always keeps the newest), and
//     the result says so.
//   - a backup that changed since it was listed (a `backup --overwrite` wrote the key again
//     after the listing): the store refuses the removal (archive-store.ts; on S3 a delete
//     conditional on the listed ETag, or where the store cannot take that condition a HEAD
//     right before the delete, which narrows the window without closing it), and it is
//     skipped with a note and listed in `skipped`, the rest going on. It holds a newer backup
//     the next prune judges; the prune still succeeds, as with the other backups it keeps.
// A removal the store refuses (403: Object Lock where its retention could not be read, a
// bucket policy on some keys) does not stop the others: the prune goes on, then fails (exit 1)
// naming how many it removed and which it could not, and why; nothing refused is counted removed.
// It refuses, before removing anything, when the tags of some backups could not be read
// (access denied): the verification marks are tags, so the newest verified backup could not
// be told from the rest (a store without tagging holds no marks: no refusal there).
// It refuses, before removing anything, when Object Lock or a legal hold keeps the data of
// a backup it would remove: a delete there would only hide the archive behind a delete
// marker while its data stays locked, so the listing would lie about what is stored.
// In a versioned bucket a removal adds a delete marker and the data stays as a noncurrent
// version until the bucket's lifecycle expires it; the result says which (deletionTerms).
// `dryRun` decides and reports the same, and removes nothing.

import { MarksUnreadableError, ObjectLockedError, PruneStoppedError, StorageError, UsageError } from '../errors.js';
import type { ArchiveStore, DeletionTerms, StoredObject, UnfinishedUpload } from '../storage/archive-store.js';
import type { StoreEndpoint } from '../storage/types.js';
import { keyProblemOf } from '../storage/s3-url.js';
import { abortedError, isAbortError, throwIfAborted } from '../storage/streams.js';
import { assertTenantName } from '../tenant/names.js';
import { inTenantDirectory, listBackups, type BackupEntry, type BackupsListing } from './backups.js';
import { applyRetention, hasRules, parseKeepWithin, RETENTION_RULES, type RetentionPolicy } from './retention.js';

export interface PruneRequest {
  readonly store: ArchiveStore;
  readonly tenant: string;
  readonly policy: RetentionPolicy;
  readonly dryRun?: boolean;
  readonly signal?: AbortSignal;
  /** This prune's clock (tests); default the system's. */
  readonly now?: () => Date;
  /** Most objects not named after the tenant it looks at each of where none so named holds a backup a rule counts (tenantsListing). @default LOOK_AT_ALL_LIMIT */
  readonly lookAtAllLimit?: number;
}

/**
 * Most objects under names that do not hold the tenant's a prune looks at one by one (a request
 * each on S3, ~0.7 ms of this machine's CPU in the function's bundle, ~1.2 ms at the function's
 * ~0.6 vCPU: 400,000 are ~8 of its 15 minutes). Above it, a prune that found no backup of the
 * tenant under its name (a tenant not yet backed up below a bucket-wide prefix) looks at one
 * window of them a day (lookWindow) and judges what it did look at, saying so, rather than run
 * out of time on every run, never finishing.
 */
export const LOOK_AT_ALL_LIMIT = 400_000;

/** How far ahead of this prune's clock a backup may be dated and still count (clocks of two hosts differ a little). */
export const FUTURE_TOLERANCE_MS = 3_600_000;

export interface PruneDecision {
  readonly location: string;
  readonly createdAt?: string;
  readonly bytes: number;
  readonly verifiedAt?: string;
  /** Why it is kept (every rule that keeps it) or removed. */
  readonly reasons: readonly string[];
  /** Kept, but counted by no rule: undated, not attributable, incomplete, unconfirmed or dated in the future (`reasons` says which). */
  readonly uncounted?: true;
}

export interface PruneResult {
  readonly operation: 'prune';
  readonly tenant: string;
  readonly location: string;
  /** The S3-compatible endpoint, and what chose it; absent for AWS and local directories. */
  readonly endpoint?: StoreEndpoint;
  readonly dryRun: boolean;
  readonly policy: RetentionPolicy;
  /** Newest first. */
  readonly keep: readonly PruneDecision[];
  /** Oldest first, the order they are removed in. */
  readonly remove: readonly PruneDecision[];
  /** How many were removed (0 in a dry run). */
  readonly removed: number;
  /** Chosen for removal but not removed by this run: changed since the listing, or already gone (empty in a dry run). */
  readonly skipped: readonly PruneSkip[];
  readonly bytesRemoved: number;
  /** The newest verified backup, kept whatever the policy says. */
  readonly protected?: string;
  readonly deletion: DeletionTerms;
  readonly notes: readonly string[];
  /** Set in a dry run that the real run would refuse (Object Lock). */
  readonly refusal?: string;
  /**
   * Decisions left out of the end of `keep` and of `remove` (with their bytes) to keep the
   * answer within a limit (a Lambda response holds at most 6 MB); absent when none were.
   */
  readonly keepOmitted?: number;
  /** How many of the `keepOmitted` are counted by no rule (`uncounted`). */
  readonly keepOmittedUncounted?: number;
  readonly removeOmitted?: number;
  readonly removeOmittedBytes?: number;
  /** Skips left out of `skipped` (of removals left out) to keep the answer within that limit; absent when none were. */
  readonly skippedOmitted?: number;
  /**
   * The tenant's unfinished multipart uploads older than STALE_UPLOAD_AGE_MS that were aborted
   * (in a dry run: would be); absent where the store has none to say (local directories) or
   * could not say (a note tells).
   */
  readonly abortedUploads?: readonly AbortedUpload[];
}

export interface AbortedUpload {
  readonly location: string;
  readonly initiatedAt: string;
}

export interface PruneSkip {
  readonly location: string;
  readonly reason: string;
}

/**
 * How long a multipart upload may stay unfinished, and without a new part, before a prune
 * takes it for a killed backup's and aborts it: far longer than any backup waits between
 * parts (a chain of Lambda pieces is abandoned after a day without one), so a live upload is
 * never cut however long it runs (a CLI backup of 5 TiB at 10 MB/s takes 6 days).
 */
export const STALE_UPLOAD_AGE_MS = 7 * 24 * 3_600_000;

export const NO_RULE_REASON = 'no keep rule matches';
export const FUTURE_REASON = 'dated in the future (made on a host whose clock was ahead?): counted by no rule';
export const UNCONFIRMED_REASON = 'not shown whole: encrypted, piped or archived, and no size tag from its backup nor verification mark (completed by another tool, or its backup could not tag it?); counted by no rule';
export const UNTRUSTED_REASON = "another user's file, or writable by others: counted by no rule";
export const CHANGED_REASON = 'changed since it was listed (written again?): not removed';
/** Why a copy of a kept backup (the same tenant, creation time and manifest: sameBackups) is kept, before the kept one's location. */
export const SAME_BACKUP_REASON = 'same backup as';
export const GONE_REASON = 'already gone when its turn came (another prune removed it first?): not counted as removed';

export async function pruneBackups(request: PruneRequest): Promise<PruneResult> {
  const { store, tenant, policy, signal } = request;
  assertTenantName(tenant);
  assertPolicy(policy);
  const dryRun = request.dryRun ?? false;
  const latestCountable = (request.now?.() ?? new Date()).getTime() + FUTURE_TOLERANCE_MS;
  const isFuture = (entry: BackupEntry) => entry.createdAt !== undefined && Date.parse(entry.createdAt) > latestCountable;
  const isCounted = (entry: BackupEntry) => entry.createdAt !== undefined && entry.tenant === tenant && entry.incomplete !== true && entry.unconfirmed !== true && entry.untrusted === undefined && !isFuture(entry);
  const lookAtAllLimit = request.lookAtAllLimit ?? LOOK_AT_ALL_LIMIT;
  const { listing, lookedAtAll, streamNamed, datedOfOthers, window } = await tenantsListing(store, tenant, isCounted, lookAtAllLimit, request.now?.() ?? new Date(), signal);
  const dated = listing.backups.filter(isCounted);
  // Sets, not arrays searched per backup: 100,000 backups took 1.4 s of CPU here alone.
  const counted = new Set(dated);
  const uncounted = new Set(listing.backups.filter((entry) => !counted.has(entry)));
  // Some objects not looked at may hold a later backup of the tenant: --keep-within may not start later than from it.
  const { firsts, copiesOf } = sameBackups(dated);
  const outcome = applyRetention(firsts, (entry) => new Date(entry.createdAt!), policy, { partOfLarger: (listing.notLookedAt ?? 0) > 0 });

  const keep = new Map<BackupEntry, string[]>(outcome.keep.map(({ item, reasons }) => [item, [...reasons]]));
  for (const { item, reasons } of outcome.keep) {
    const copies = copiesOf.get(item);
    if (copies === undefined) continue;
    // A copy that is a second name of it (a store that takes one for the other) is said to be that, as keepingAliasesOfKept says it.
    const aliases = new Map<BackupEntry, string[]>([[item, []]]);
    const others = new Set(keepingAliasesOfKept(copies, aliases));
    for (const copy of copies) keep.set(copy, others.has(copy) ? [...reasons, `${SAME_BACKUP_REASON} ${item.location}`] : aliases.get(copy)!);
  }
  let remove = outcome.remove.flatMap((entry) => [entry, ...(copiesOf.get(entry) ?? [])]);
  for (const entry of uncounted) {
    keep.set(entry, [keptUncounted(entry, isFuture(entry))]);
  }
  const notes: string[] = [];
  const otherNamed = (listing.notLookedAt ?? 0) - streamNamed.count - datedOfOthers.count;
  if (otherNamed > 0) notes.push(notLookedAtNote(otherNamed, store.display, tenant, lookedAtAll === false ? lookAtAllLimit : undefined, window));
  if (datedOfOthers.count > 0) notes.push(datedOfOthersNote(datedOfOthers, store.display, tenant));
  if (streamNamed.first !== undefined) notes.push(streamNamedNote(streamNamed.count, streamNamed.first, tenant));
  const newestVerified = dated.find((entry) => entry.verifiedAt !== undefined);
  const denied = listing.backups.filter((entry) => entry.tagsDenied === true).length;
  if (denied > 0) {
    notes.push(`the tags of ${denied} ${denied === 1 ? 'backup' : 'backups'} could not be read (access denied): their verification marks, if any, are unseen`);
  } else if (newestVerified === undefined) {
    // A verified backup no rule may count (not attributable, cut short since) protects nothing: say so rather than "none verified".
    const verifiedUncounted = [...uncounted].filter((entry) => entry.verifiedAt !== undefined).length;
    notes.push(
      verifiedUncounted === 0
        ? `no backup of "${tenant}" ${(listing.notLookedAt ?? 0) > 0 ? 'looked at here' : 'here'} has been verified (tenants verify --from …): only the policy decides what stays`
        : `no backup of "${tenant}" that a rule counts has been verified (${verifiedUncounted} verified ${verifiedUncounted === 1 ? 'one is' : 'ones are'} kept and counted by no rule: see WHY): only the policy decides what stays`,
    );
  }
  if (newestVerified !== undefined && remove.includes(newestVerified)) {
    remove = remove.filter((entry) => entry !== newestVerified);
    keep.set(newestVerified, ['newest verified backup (never removed)']);
  } else if (newestVerified !== undefined) {
    keep.get(newestVerified)!.push('newest verified backup');
  }

  remove = keepingAliasesOfKept(remove, keep);

  const deletion = await store.deletionTerms({ signal });
  remove.sort((a, b) => Date.parse(a.createdAt!) - Date.parse(b.createdAt!));
  const unreadable = remove.length > 0 ? marksUnreadable(listing.backups) : undefined;
  // Object Lock needs versioning (S3 enables it with the lock, and it cannot be suspended then): a bucket known never
  // versioned holds no locked object, and asking two requests per removal of it (s3rver answers neither) would be waste.
  // A bucket that says its Object Lock is enabled is asked whatever its versioning answer (an empty body reads as never).
  const lockPossible = deletion.objectLock === 'enabled' || (deletion.objectLock === 'unknown' && deletion.versioning !== 'off');
  const held = unreadable === undefined && remove.length > 0 && lockPossible ? await firstHold(store, remove, signal) : undefined;
  const refusal = unreadable ?? held;
  if (remove.length > 0) notes.push(...deletionNotes(deletion));

  const decision = (entry: BackupEntry, reasons: readonly string[]): PruneDecision => ({
    location: entry.location,
    ...(entry.createdAt !== undefined && { createdAt: entry.createdAt }),
    bytes: entry.bytes,
    ...(entry.verifiedAt !== undefined && { verifiedAt: entry.verifiedAt }),
    reasons,
    ...(uncounted.has(entry) && { uncounted: true as const }),
  });
  const kept = listing.backups.filter((entry) => keep.has(entry)).map((entry) => decision(entry, keep.get(entry)!));
  const removing = remove.map((entry) => decision(entry, [NO_RULE_REASON]));
  const result = {
    operation: 'prune' as const,
    tenant,
    location: store.display,
    ...(store.endpoint !== undefined && { endpoint: store.endpoint }),
    dryRun,
    policy,
    keep: kept,
    remove: removing,
    ...(newestVerified !== undefined && { protected: newestVerified.location }),
    deletion,
    notes,
  };
  if (refusal !== undefined) {
    if (dryRun) return { ...result, removed: 0, bytesRemoved: 0, skipped: [], refusal };
    throw unreadable !== undefined ? new MarksUnreadableError(refusal) : new ObjectLockedError(refusal);
  }
  if (dryRun) return { ...result, ...(await staleUploads(request, dryRun, notes)), removed: 0, bytesRemoved: 0, skipped: [] };

  let removed = 0;
  let bytesRemoved = 0;
  const skipped: PruneSkip[] = [];
  const refused: { readonly location: string; readonly error: StorageError }[] = [];
  let gone = 0;
  for (const entry of remove) {
    try {
      throwIfAborted(signal);
      // Gone before its turn (another prune of the same place was quicker): not this run's removal, so not counted in
      // removed nor bytesRemoved (two prunes at once had each said it removed them all, doubling the success events' sums).
      if ((await store.remove(storedObject(entry), { signal })) === 'gone') {
        gone += 1;
        skipped.push({ location: entry.location, reason: GONE_REASON });
        continue;
      }
    } catch (error) {
      // Interrupted (Ctrl-C, the Lambda deadline) after some removals: say how far it got, as a failure does.
      // Past the listing with some already gone (another prune at work) it is stopped part way too: a run again finishes.
      if ((removed > 0 || gone > 0 || refused.length > 0) && (signal?.aborted === true || isAbortError(error))) {
        const reason = signal?.aborted === true ? abortedError(signal) : (error as Error);
        // The refused are named, as a prune that ran to its end names them: a run again would be refused them again.
        const named = refused.length === 0 ? '' : ` (${refused.slice(0, 3).map((refusal) => refusal.location).join(', ')}${refused.length > 3 ? ` and ${refused.length - 3} more` : ''})`;
        const goneCount = gone === 0 ? '' : `; ${gone} already gone`;
        throw new PruneStoppedError(`prune removed ${removed} of ${remove.length} backups${goneCount}${refusedCount(refused)}${named}, then stopped (run it again to remove the rest): ${reason.message}`, { cause: error });
      }
      if (error instanceof StorageError && error.code === 'CHANGED') {
        skipped.push({ location: entry.location, reason: CHANGED_REASON });
        continue;
      }
      // Refused for this object (Object Lock, a policy on some keys): the others may still go.
      if (error instanceof StorageError && error.code === 'ACCESS_DENIED') {
        refused.push({ location: entry.location, error });
        continue;
      }
      if ((removed === 0 && refused.length === 0) || !(error instanceof StorageError)) throw error;
      throw new StorageError(`prune removed ${removed} of ${remove.length} backups${refusedCount(refused)}, then stopped: ${error.message}`, error.code, { cause: error });
    }
    removed++;
    bytesRemoved += entry.bytes;
  }
  await store.removeStrayMarks?.({ signal });
  await store.removeDeadTemporaries?.({ signal });
  if (refused.length > 0) {
    const [first, ...rest] = refused as [(typeof refused)[number], ...typeof refused];
    const others = rest.length === 0 ? '' : `; also not removed: ${rest.slice(0, 3).map((refusal) => refusal.location).join(', ')}${rest.length > 3 ? ` and ${rest.length - 3} more` : ''}`;
    throw new StorageError(`prune removed ${removed} of ${remove.length} backups${refusedCount(refused)}: ${first.error.message}${others}`, 'ACCESS_DENIED', { cause: first.error });
  }
  const uploads = await staleUploads(request, dryRun, notes);
  // The changed are named one by one; the gone (any number, where two prunes ran at once) in one note.
  const goneNote = gone === 0 ? [] : [`${gone === 1 ? '1 backup' : `${gone} backups`} chosen for removal ${gone === 1 ? 'was' : 'were'} already gone when ${gone === 1 ? 'its' : 'their'} turn came (another prune removed ${gone === 1 ? 'it' : 'them'} first?): not counted as removed here`];
  const changedNotes = skipped.filter((skip) => skip.reason !== GONE_REASON).map((skip) => `${skip.location} ${skip.reason}`);
  return { ...result, ...uploads, notes: [...notes, ...changedNotes, ...goneNote], removed, bytesRemoved, skipped };
}

/**
 * The listing prune decides from: below a location that does not name the tenant (a bucket-wide
 * prefix of many tenants), only the objects whose names do are looked at, for on S3 each look is
 * a request (~1 ms of CPU: a million objects of other tenants outlasted the prune function's
 * 15 minutes); a backup's key names its tenant wherever a template wrote it ({tenant} is
 * required there). Names of a date alone (namesNoOne) are looked at too: no template writes
 * another tenant's so. Deciding from fewer backups never removes one that the whole set would keep
 * (each rule keeps at least what it keeps of the whole: the newest N, the newest of each period,
 * those within the span before any later newest: applyRetention's partOfLarger), so a backup under a name that does not name the
 * tenant is merely left alone, neither removed nor counted (a note says how many objects were
 * not looked at). Where no backup of the tenant that a rule counts is under a name holding its own
 * (a tenant's backups under names of words, `daily/2026-06-03.tar.zst`), every object is looked at, as before,
 * unless more than `lookAtAllLimit` were not: a run could not look at each (a tenant not yet backed up below a
 * bucket-wide prefix of a million objects ran out of the function's time on every run), so it looks at the day's
 * window of them (lookWindow) and what was looked at is judged, the note saying which window and why not the rest.
 */
async function tenantsListing(
  store: ArchiveStore,
  tenant: string,
  isCounted: (entry: BackupEntry) => boolean,
  lookAtAllLimit: number,
  now: Date,
  signal: AbortSignal | undefined,
): Promise<{ listing: BackupsListing; lookedAtAll?: boolean; streamNamed: StreamNamed; datedOfOthers: DatedOfOthers; window?: LookWindow }> {
  const streamNamed = { count: 0, first: undefined as string | undefined };
  // Above the limit, the objects of this run's window (lookWindow) are looked at too.
  let inWindow: ((object: StoredObject) => boolean) | undefined;
  // Directories (below the location) named after another tenant and found to hold its backups: a tenant named like a
  // year, a month's name or seconds since 1970 (`2026/2026-06-01.tar.zst`) names its backups by date below them, and each
  // would be a request of every other tenant's prune. Once one is found there, the rest of that directory is not looked at.
  const othersDirectories = new Map<string, number>();
  const looked = (object: StoredObject, entry: BackupEntry) => {
    const directory = object.name.split('/')[0]!;
    if (directory !== object.name && entry.tenant === directory && directory !== tenant && !othersDirectories.has(directory)) othersDirectories.set(directory, 0);
  };
  // Objects not named after the tenant, by directory (below the location): a window takes a directory whole where it can (lookWindow).
  const notNamedIn = new Map<string, number>();
  const looksAt = (object: StoredObject) => {
    if (namesTenant(object.location, tenant)) return true;
    if (inWindow === undefined) {
      const directory = fileAliasName(directoryOf(object.name));
      notNamedIn.set(directory, (notNamedIn.get(directory) ?? 0) + 1);
    }
    if (namesNoOne(object.name)) {
      const directory = object.name.split('/')[0]!;
      const passed = othersDirectories.get(directory);
      if (passed === undefined || directory === object.name) return true;
      othersDirectories.set(directory, passed + 1);
      return false;
    }
    // Its name holds the tenant's only where NTFS would name a stream of another file: said apart, as the generic note would deny it.
    if (aliasName(object.location.replace(/^s3:\/\//, '')).includes(tenant)) {
      streamNamed.count += 1;
      if (streamNamed.first === undefined || object.location < streamNamed.first) streamNamed.first = object.location;
      return false;
    }
    return inWindow?.(object) ?? false;
  };
  const named = await listBackups(store, tenant, { signal, looksAt, looked });
  const datedSummary = () => {
    const dated = { count: 0, directories: [] as string[] };
    for (const [directory, passed] of othersDirectories) {
      if (passed === 0) continue;
      dated.count += passed;
      dated.directories.push(directory);
    }
    return dated;
  };
  const dated = datedSummary();
  // No backup a rule counts under a name holding the tenant's (only others' such as acme-eu's, a cut-short one, or none): its
  // backups, if any, are named otherwise. A kept cut-short acme/… alone had left every later prune removing nothing.
  const underItsName = named.backups.some((entry) => isCounted(entry) && namesTenant(entry.location, tenant));
  const notLookedAt = named.notLookedAt ?? 0;
  if (underItsName || notLookedAt === 0) return { listing: named, streamNamed, datedOfOthers: dated };
  // More than a run can look at (a million objects of other tenants outlasted the function's 15 minutes, each run anew):
  // what was looked at is judged, as where backups are under its name; the rest is left alone, said so.
  if (notLookedAt > lookAtAllLimit) {
    // Listed again, looking at this run's window of the objects not named after the tenant too (the second listing counts all anew).
    const window = lookWindow(notLookedAt, lookAtAllLimit, now);
    // A directory of more than an eighth of a window is spread by name, so that no window holds much more than the limit.
    const spread = new Set([...notNamedIn].filter(([, count]) => count > lookAtAllLimit / 8).map(([directory]) => directory));
    notNamedIn.clear();
    inWindow = (object) => {
      const directory = fileAliasName(directoryOf(object.name));
      return windowOf(spread.has(directory) ? object.name : directory, window.of) === window.index;
    };
    streamNamed.count = 0;
    streamNamed.first = undefined;
    for (const directory of othersDirectories.keys()) othersDirectories.set(directory, 0);
    // A window holding more than the limit (directories hash unevenly) is looked at up to it: the run stays within its time.
    let lookedAt = 0;
    let beyond = 0;
    const part = await listBackups(store, tenant, {
      signal,
      looksAt: (object) => {
        const looks = looksAt(object);
        if (!looks || namesTenant(object.location, tenant) || namesNoOne(object.name)) return looks;
        if (lookedAt >= lookAtAllLimit) {
          beyond += 1;
          return false;
        }
        lookedAt += 1;
        return true;
      },
      looked,
    });
    return { listing: part, lookedAtAll: false, streamNamed, datedOfOthers: datedSummary(), window: { ...window, lookedAt, beyond } };
  }
  return { listing: await listBackups(store, tenant, { signal }), lookedAtAll: true, streamNamed: { count: 0, first: undefined }, datedOfOthers: { count: 0, directories: [] } };
}

/**
 * Above the limit (more objects not named after the tenant than a run can look at), a run looks at
 * one window of them: those whose directory (below the location) hashes to the window of its day
 * (UTC), one of `of` windows of about the limit each, so that a tenant's backups in one directory
 * (`daily/…`) are judged together, by the policy as over the whole set; a directory holding more
 * than an eighth of the limit is spread over the windows by each object's name instead. The day's window is a hash of the day, not the day's count
 * modulo `of` (a weekly prune with 7 windows would have looked at the same one for ever), so
 * each window comes on some days and a dry run on the same day looks at the run's. Judging the
 * named backups with one window's is judging part of the whole (applyRetention's partOfLarger):
 * nothing the whole set keeps is removed, and at most `of` times what the policy keeps stays.
 */
export interface LookWindow {
  readonly index: number;
  readonly of: number;
  /** Objects not named after the tenant this run looked at. */
  readonly lookedAt?: number;
  /** Objects of the window not looked at, the window holding more than the limit. */
  readonly beyond?: number;
}

export function lookWindow(notNamed: number, limit: number, now: Date): LookWindow {
  // A little more than needed: a hash fills the windows unevenly.
  const of = Math.max(2, Math.ceil((notNamed * 1.05) / Math.max(1, limit)));
  return { index: fnv1a(`day ${Math.floor(now.getTime() / 86_400_000)}`) % of, of };
}

/**
 * The window (of `of`) a directory or name falls in, by its alias name (fileAliasName): names a
 * store may take for one (`Daily/…` and `daily/…`) fall in one window, so that one of them is
 * never removed in a window the other, kept, is not in (keepingAliasesOfKept sees both).
 */
export function windowOf(name: string, of: number): number {
  return fnv1a(fileAliasName(name)) % of;
}

/** The directory of a name below the location (`daily/2026-06-01.tar.zst`: `daily`), or '' at its top. */
function directoryOf(name: string): string {
  const slash = name.lastIndexOf('/');
  return slash < 0 ? '' : name.slice(0, slash);
}

/** FNV-1a, 32 bits, of a string's UTF-16 units: cheap (each name of a million is hashed each run), and spread enough. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** The objects named by a date alone not looked at, for their directory (below the location) is named after another tenant whose backups were found in it. */
interface DatedOfOthers {
  readonly count: number;
  readonly directories: readonly string[];
}

/** The objects not looked at whose names hold the tenant's only as NTFS names a stream of another file (`x.tar.zst:acme`). */
interface StreamNamed {
  readonly count: number;
  readonly first: string | undefined;
}

/**
 * Whether a name below the listed location names no one: nothing but a date and time (digits,
 * separators, `T`, `Z`, `W`, month and day abbreviations: what `{date:FORMAT}` or `$(date …)`
 * writes) and an archive's extensions, starting with a year, seconds since 1970, or a day's or
 * month's name. Such a
 * name, `2026-06-01.tar.zst` or `2026/06/01/0300.tar.zst.age`, is no other tenant's by its name (a `{tenant}` template puts
 * the tenant's name in every key), so it is worth a request: a tenant that was backed up by date
 * before its backups were named after it had those never looked at, never removed, never counted
 * (`--keep-last 2` kept the two newest named ones and every dated one for ever).
 */
export function namesNoOne(name: string): boolean {
  const words = name.toLowerCase().match(/[^\d\s\-_:+.,/]+/g) ?? [];
  // It starts with a year (2026, 202606, 20260601T…), seconds since 1970, or a day's or month's
  // name (`Mon-01-Jun-2026.tar.zst`): a tenant may be named by digits alone (`1001/2026-06-01.tar.zst`
  // is tenant 1001's, and below a bucket-wide prefix every prune would look at each of its objects).
  // A word first must be a day's or month's name: a tenant may be named `age`, `t` or `tar` too (`age/2026-06-01.tar.zst`).
  const first = /[a-z]+|\d+/i.exec(name)?.[0];
  const dated = first !== undefined && (DAY_AND_MONTH_NAMES.has(first.toLowerCase()) || /^(?:19|20|21)\d\d(?:\d\d){0,5}$/.test(first) || /^[12]\d{9}$/.test(first));
  return /\d/.test(name) && dated && words.every((word) => DATE_AND_EXTENSION_WORDS.has(word));
}

const DAY_AND_MONTH_NAMES = new Set('jan feb mar apr may jun jul aug sep oct nov dec mon tue wed thu fri sat sun'.split(' '));
const DATE_AND_EXTENSION_WORDS = new Set([...DAY_AND_MONTH_NAMES, ...'t z w'.split(' '), ...'tar zst zstd age gz tgz xz bz2 gpg enc'.split(' ')]);

/**
 * Whether a location (bucket and key, or path) holds the tenant's name, as a store that folds
 * case or Unicode form may take it (aliasName: two names it takes for one both hold it or neither).
 */
function namesTenant(location: string, tenant: string): boolean {
  return fileAliasName(location.replace(/^s3:\/\//, '')).includes(tenant);
}

function notLookedAtNote(count: number, location: string, tenant: string, overLimit: number | undefined, window?: LookWindow): string {
  const objects = count === 1 ? '1 object' : `${count} objects`;
  const note = `${objects} in ${location} whose ${count === 1 ? 'name does' : 'names do'} not hold "${tenant}" ${count === 1 ? 'was' : 'were'} not looked at: a backup of "${tenant}" under such a name (not written through a {tenant} template) is neither removed nor counted`;
  if (overLimit === undefined || window === undefined) return note;
  return (
    `${note} in this run; no backup of "${tenant}" that a rule counts is under a name holding its own, and more than ${overLimit.toLocaleString('en-US')} are too many to look at one by one in a run: ` +
    `it looked at ${window.lookedAt ?? 0} more, window ${window.index + 1} of ${window.of} (by a hash of each directory; the window changes with the day, UTC${(window.beyond ?? 0) > 0 ? `; ${window.beyond} more of it are beyond the limit, left for its next day` : ''}), and judged the backups of "${tenant}" there with those under its name as part of a larger set ` +
    `(nothing the whole set keeps is removed; up to ${window.of} times what the policy keeps may stay); the other windows are judged on other days (give --in a prefix holding only its backups to have them judged in one run)`
  );
}

function datedOfOthersNote(dated: DatedOfOthers, location: string, tenant: string): string {
  const shown = dated.directories.slice(0, 3).map((directory) => JSON.stringify(directory)).join(', ') + (dated.directories.length > 3 ? ` and ${dated.directories.length - 3} more` : '');
  const objects = dated.count === 1 ? '1 object' : `${dated.count} objects`;
  return (
    `${objects} named by a date alone in ${location} ${dated.count === 1 ? 'was' : 'were'} not looked at: ${dated.count === 1 ? 'it is' : 'they are'} below ${dated.directories.length === 1 ? 'a directory' : 'directories'} named after and holding backups of another tenant (${shown}); ` +
    `a backup of "${tenant}" there is neither removed nor counted`
  );
}

function streamNamedNote(count: number, first: string, tenant: string): string {
  const others = count === 1 ? '' : ` and ${count - 1} more`;
  return (
    `${first}${others} ${count === 1 ? 'was' : 'were'} not looked at: ${count === 1 ? 'its name holds' : 'their names hold'} "${tenant}" only after a colon, where NTFS names a stream of another file, ` +
    `so ${count === 1 ? 'it is' : 'they are'} neither removed nor counted (rename ${count === 1 ? 'it' : 'them'} to prune ${count === 1 ? 'it' : 'them'} with the rest, or remove ${count === 1 ? 'it' : 'them'} by hand)`
  );
}

/**
 * The counted backups with each backup once (`firsts`, in listing order), and the other names
 * it is listed under (`copiesOf`, by the one counted): entries of one tenant with one creation
 * time and one manifest digest are one backup, whatever their names. Each had filled a retention
 * slot: a `cp -p` of the newest archive beside it (or a hard link; on S3 a CopyObject, which
 * carries the seal and its tags along) made `--keep-last 2` keep the newest twice and remove
 * the one real older backup. Copies go with the backup they copy: kept beside it (reason
 * SAME_BACKUP_REASON), removed with it. An entry of no known digest is a backup of its own.
 * The one counted is the first listed that `tenants verify` found intact, else the first listed:
 * a copy damaged in its middle (its footer whole) listed first had been shown as the backup the
 * rules keep and the verified original as "same backup as" it.
 */
function sameBackups(dated: readonly BackupEntry[]): { firsts: BackupEntry[]; copiesOf: Map<BackupEntry, BackupEntry[]> } {
  const groupOf = new Map<string, { readonly index: number; readonly copies: BackupEntry[] }>();
  const firsts: BackupEntry[] = [];
  for (const entry of dated) {
    if (entry.manifestSha256 === undefined) {
      firsts.push(entry);
      continue;
    }
    const key = `${entry.tenant ?? ''}\0${Date.parse(entry.createdAt!)}\0${entry.manifestSha256}`;
    const group = groupOf.get(key);
    if (group === undefined) {
      groupOf.set(key, { index: firsts.length, copies: [] });
      firsts.push(entry);
      continue;
    }
    // Pushed, not copied into a new array each time: 100,000 names of one backup (hard links, CopyObjects) took 256 s.
    const counted = firsts[group.index]!;
    if (counted.verifiedAt === undefined && entry.verifiedAt !== undefined) {
      firsts[group.index] = entry;
      group.copies.push(counted);
    } else {
      group.copies.push(entry);
    }
  }
  const copiesOf = new Map<BackupEntry, BackupEntry[]>();
  for (const { index, copies } of groupOf.values()) if (copies.length > 0) copiesOf.set(firsts[index]!, copies);
  return { firsts, copiesOf };
}

/**
 * `remove` without any backup listed under another name of a kept one: the same key but for
 * what aliasName folds (case, Unicode form, what ends a segment). A store that takes such keys
 * for one (on a case-insensitive or normalizing file system, or behind such a gateway, or one
 * trimming names) may list a backup twice, and removing
 * the name no rule keeps removes the backup kept under the other (`--keep-last 1` left none).
 * On a store that tells them apart it is a second backup, kept with its reason in `keep`.
 */
function keepingAliasesOfKept(remove: readonly BackupEntry[], keep: Map<BackupEntry, string[]>): BackupEntry[] {
  const keptByName = new Map<string, BackupEntry>();
  // A kept name shaped as a stream of a file, by that file: removing the file removes its streams.
  const keptByFile = new Map<string, BackupEntry>();
  for (const entry of keep.keys()) {
    const name = aliasName(entry.location);
    keptByName.set(name, entry);
    const file = streamsFolded(name);
    if (file !== name) keptByFile.set(file, entry);
  }
  return remove.filter((entry) => {
    const name = aliasName(entry.location);
    // A stream of a kept file, or the file of a kept stream; never two streams of one name
    // (`acme:2026-06-01.tar.zst` and `acme:2026-06-02.tar.zst`, each a file off NTFS, are two backups).
    const kept = keptByName.get(name) ?? keptByName.get(streamsFolded(name)) ?? keptByFile.get(name);
    if (kept === undefined) return true;
    keep.set(entry, [`${ALIAS_REASON} ${kept.location}, which is kept: a store that takes one for the other would remove both`]);
    return false;
  });
}

export const ALIAS_REASON = 'the same name but for case, Unicode form, characters drawn as nothing, a backslash for a slash, or dots, whitespace, control characters or an NTFS stream name around a segment as';

/**
 * A name as a case-insensitive or normalizing store may take it, folded further than any does
 * (only more is kept): case, Unicode form, and, as a store keeping objects as files on Windows
 * takes them, a backslash for a slash (`sub\acme-1.tar.zst` is `sub/acme-1.tar.zst`); nothing
 * of what may end a segment without naming another file: dots and spaces (Windows:
 * `acme-1.tar.zst.`), whitespace and control characters (a store trimming names:
 * `acme-1.tar.zst\t`, and at a segment's start too) and NTFS's name of a file's own data or a
 * directory's index (`acme-1.tar.zst::$DATA`, `sub::$INDEX_ALLOCATION`), in any order; and
 * characters drawn as nothing (`acme-1\u200b.tar.zst`) anywhere. NTFS's name of another stream
 * of a file (`acme-1.tar.zst:s`) is that file's only beside the file's own name (streamsFolded).
 */
function aliasName(location: string): string {
  return location
    .replace(INVISIBLE, '')
    .normalize('NFKC')
    .toUpperCase()
    .toLowerCase()
    .replace(/\\/g, '/')
    .replace(ALIAS_SEGMENT_END, '')
    .replace(ALIAS_SEGMENT_START, '');
}

/** An alias name (aliasName) with each segment shaped as an NTFS named stream (`acme-1.tar.zst:s`) taken as its file's name. */
function streamsFolded(name: string): string {
  const scheme = name.startsWith(S3_SCHEME) ? S3_SCHEME : '';
  return scheme + name.slice(scheme.length).replace(NTFS_NAMED_STREAM, '$1').replace(ALIAS_SEGMENT_END, '');
}

const S3_SCHEME = 's3://';

/** The name of the file `location` names as NTFS takes it (aliasName, streams folded): namesTenant looks at a stream only where its file's name holds the tenant. */
function fileAliasName(location: string): string {
  return streamsFolded(aliasName(location));
}

/** Characters drawn as nothing (zero-width space and joiners, BOM, soft hyphen…): a store, or the eye, may drop them. */
const INVISIBLE = /\p{Default_Ignorable_Code_Point}/gu;
/**
 * A segment shaped as NTFS names a stream of a file (`acme-1.tar.zst:s`, `acme-1.tar.zst:s:$DATA`;
 * a file's name holds no colon there), as the file: `2026-06-03T03:00:00.tar.zst`, two colons and
 * no `$DATA`, is no such name and stays whole.
 */
const NTFS_NAMED_STREAM = /(?<=^|\/)([^:/]+):[^:/]*(?::\$data)?(?=\/|$)/gu;

const ALIAS_SEGMENT_END = /(?:[.\s\p{Cc}]|::\$data|::\$index_allocation|:\$i30:\$index_allocation)+(?=\/|$)/gu;
const ALIAS_SEGMENT_START = /(?<=\/)[\s\p{Cc}]+/gu;

/**
 * The parts a killed backup left (kill -9, a lost machine: it could not abort its multipart
 * upload), which a store without a lifecycle rule to abort them keeps and bills for ever:
 * the tenant's unfinished uploads (a key a listing would attribute to it by its path: below a
 * directory named after it, `.tar` in its name) started more than STALE_UPLOAD_AGE_MS ago are
 * aborted unless one of its parts is younger than that (a backup still sending: a slow link's
 * may run for weeks, and a store may misdate the start). An upload with no part yet holds no
 * bytes and shows nothing but its start, which a store may misdate (moto dates every upload
 * 2010: a backup about to send its first part was cut): left alone. So are uploads named
 * `<tenant>-…` outside a directory named after the tenant (`--to s3://bucket/acme-{date}.tar.zst`):
 * nothing proves them this tenant's (`acme-eu-…` starts so too, and an upload's metadata
 * cannot be read), so they are named in a note. Another tool's uploads elsewhere
 * under the prefix, and any younger upload, are left alone. Never fails the prune: what could not be done is a note. A store that cannot
 * list them (s3rver; credentials without s3:ListBucketMultipartUploads, as the gateway's prune
 * role: its bucket's lifecycle rule aborts them) is passed over without a word on every prune.
 */
async function staleUploads(request: PruneRequest, dryRun: boolean, notes: string[]): Promise<{ abortedUploads?: AbortedUpload[] }> {
  const { store, tenant, signal } = request;
  if (store.unfinishedUploads === undefined || store.lastPartAt === undefined || store.abortUpload === undefined) return {};
  const cannot = 'unfinished multipart uploads (a killed backup\'s parts) could not be looked for';
  // Only those a backup of this tenant may have started are held: a bucket-wide prefix may list any number of others.
  const mayBeTenants = (name: string) => keyProblemOf(name) === undefined && name.split('/').at(-1)!.includes('.tar') && (inTenantDirectory(name, tenant, store.baseName) || name.split('/').at(-1)!.startsWith(`${tenant}-`));
  let uploads;
  try {
    uploads = await store.unfinishedUploads({ signal, wanted: mayBeTenants });
  } catch (error) {
    notes.push(`${cannot}: ${storeRefusal(error, signal).message}`);
    return {};
  }
  if (uploads === undefined) return {};
  // By the store's clock, which dated the uploads and parts: a host whose clock runs a week ahead would cut a live one.
  const staleBefore = (request.now?.() ?? store.storeTime?.() ?? new Date()).getTime() - STALE_UPLOAD_AGE_MS;
  // Only a key a backup may write (no ".." segment, "//", control character…: backup refuses them) can be a killed backup's.
  const backupKeys = uploads.filter((upload) => keyProblemOf(upload.name) === undefined && upload.name.split('/').at(-1)!.includes('.tar'));
  const tenants = backupKeys.filter((upload) => inTenantDirectory(upload.name, tenant, store.baseName));
  const namedAfter = backupKeys.filter((upload) => !inTenantDirectory(upload.name, tenant, store.baseName) && upload.name.split('/').at(-1)!.startsWith(`${tenant}-`));
  if (namedAfter.length > 0) {
    const [first] = namedAfter as [UnfinishedUpload];
    const others = namedAfter.length === 1 ? '' : ` and ${namedAfter.length - 1} more`;
    notes.push(
      `the unfinished multipart upload to ${first.location} (started ${first.initiatedAt.toISOString()})${others} left alone: named after "${tenant}" but in no directory of its name, so nothing shows ${namedAfter.length === 1 ? 'it is' : 'they are'} its backup's (another tenant's name may start so); if killed, abort ${namedAfter.length === 1 ? 'it' : 'them'} with aws s3api abort-multipart-upload (or let a lifecycle rule abort them)`,
    );
  }
  const old = tenants.filter((upload) => upload.initiatedAt.getTime() < staleBefore).sort((a, b) => a.initiatedAt.getTime() - b.initiatedAt.getTime());
  let young = tenants.length - old.length;
  let partless = 0;
  const aborted: AbortedUpload[] = [];
  const unchecked: { upload: AbortedUpload; why: string }[] = [];
  for (const upload of old) {
    // Started long ago, or said to be (moto dates every upload 2010): one that took a part lately is a backup still sending.
    let lastPart;
    try {
      lastPart = await store.lastPartAt(upload, { signal });
    } catch (error) {
      unchecked.push({ upload: shownUpload(upload), why: storeRefusal(error, signal).message });
      continue;
    }
    if (lastPart === 'gone') continue;
    if (lastPart === undefined) {
      partless++;
      continue;
    }
    if (lastPart.getTime() >= staleBefore) {
      young++;
      continue;
    }
    if (!dryRun) {
      try {
        throwIfAborted(signal);
        await store.abortUpload(upload, { signal });
      } catch (error) {
        notes.push(`the unfinished multipart upload to ${upload.location} (started ${upload.initiatedAt.toISOString()}) could not be aborted: ${storeRefusal(error, signal).message}`);
        continue;
      }
    }
    aborted.push(shownUpload(upload));
  }
  // One note however many (credentials without s3:ListMultipartUploadParts are refused every one).
  if (unchecked.length > 0) {
    const [first] = unchecked as [(typeof unchecked)[0]];
    const others = unchecked.length === 1 ? '' : ` and ${unchecked.length - 1} more`;
    notes.push(`the unfinished multipart upload to ${first.upload.location} (started ${first.upload.initiatedAt})${others} left alone: when ${unchecked.length === 1 ? 'it' : 'they'} last took a part could not be read: ${first.why}`);
  }
  if (partless > 0) {
    notes.push(`${partless} unfinished multipart ${partless === 1 ? 'upload' : 'uploads'} of "${tenant}" with no part yet left alone (${partless === 1 ? 'it holds' : 'they hold'} no bytes, and only a start time a store may misdate shows ${partless === 1 ? 'its' : 'their'} age: a backup may be about to send its first part)`);
  }
  if (young > 0) notes.push(`${young} unfinished multipart ${young === 1 ? 'upload' : 'uploads'} of "${tenant}" started or sent a part in the last 7 days left alone (${young === 1 ? 'a backup may still be sending it' : 'backups may still be sending them'})`);
  return { abortedUploads: aborted };
}

/** The store's refusal, made a note of; anything else (an interruption, a bug) is thrown on. */
function storeRefusal(error: unknown, signal: AbortSignal | undefined): StorageError {
  if (signal?.aborted === true || isAbortError(error) || !(error instanceof StorageError)) throw error;
  return error;
}

function shownUpload(upload: UnfinishedUpload): AbortedUpload {
  return { location: upload.location, initiatedAt: upload.initiatedAt.toISOString() };
}

export function assertPolicy(policy: RetentionPolicy): void {
  for (const rule of RETENTION_RULES) {
    const count = policy[rule];
    if (count !== undefined && !(Number.isSafeInteger(count) && count >= 0)) throw new UsageError(`--keep-${rule} must be a whole number (0 or more)`);
  }
  if (policy.within !== undefined && parseKeepWithin(policy.within) === undefined) throw new UsageError(keepWithinProblem(policy.within));
  if (!hasRules(policy)) {
    throw new UsageError(
      'prune needs at least one --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly or --keep-yearly above 0, or a --keep-within span (without one it would remove every backup)',
    );
  }
}

/** What a `--keep-within` span is, for messages. */
export const KEEP_WITHIN_SPAN = 'a span such as 7d, 36h or 1y6m (whole numbers with units y, m, w, d, h, largest first, not all 0, at most 1000 years)';

/** Why `text` is no `--keep-within` span. */
export function keepWithinProblem(text: string): string {
  const shown = text.length > 40 ? `${JSON.stringify(text.slice(0, 40))}…` : JSON.stringify(text);
  return `--keep-within must be ${KEEP_WITHIN_SPAN}, got ${shown}`;
}

/**
 * The refusal when the tags of some backups could not be read (access denied): the newest
 * verified backup, or the size tag that shows an encrypted one whole, may be among them, so
 * whatever the policy removed might be the one backup shown to restore.
 */
function marksUnreadable(backups: readonly BackupEntry[]): string | undefined {
  const denied = backups.filter((entry) => entry.tagsDenied === true);
  if (denied.length === 0) return undefined;
  return (
    `the tags of ${denied.length} of ${backups.length} backups could not be read (access denied: do the credentials lack s3:GetObjectTagging?): ` +
    'prune cannot see which backup was verified (the newest verified one is never removed) nor which encrypted one is whole; ' +
    'it refuses and removes nothing (grant s3:GetObjectTagging on the prefix, as the gateway\'s prune role has it)'
  );
}

/** The refusal for the first backup whose data Object Lock or a legal hold keeps, if any. */
async function firstHold(store: ArchiveStore, remove: readonly BackupEntry[], signal: AbortSignal | undefined): Promise<string | undefined> {
  for (const entry of remove) {
    const hold = await store.holdOf(storedObject(entry), { signal });
    if (hold === undefined) continue;
    const why = hold.retainUntil !== undefined ? `Object Lock (${hold.mode ?? 'retention'}) until ${hold.retainUntil.toISOString()}` : 'a legal hold';
    const when = hold.retainUntil !== undefined && !hold.legalHold ? `; a prune after ${hold.retainUntil.toISOString().slice(0, 10)} can remove it` : '';
    return (
      `${entry.location} is kept by ${why}${hold.legalHold && hold.retainUntil !== undefined ? ' and a legal hold' : ''}: its data cannot be deleted, ` +
      `a delete would only hide it behind a delete marker; prune refuses and removes nothing${when} ` +
      '(or keep more with --keep-* so the policy agrees with the bucket\'s retention)'
    );
  }
  return undefined;
}

function deletionNotes(terms: DeletionTerms): string[] {
  switch (terms.versioning) {
    case 'enabled':
    case 'suspended': {
      const what = terms.versioning === 'enabled' ? 'the bucket is versioned' : 'versioning is suspended on the bucket';
      const expiry =
        terms.noncurrentExpirationDays !== undefined
          ? `until its lifecycle rule deletes noncurrent versions ${terms.noncurrentExpirationDays} days later`
          : terms.lifecycle === 'known'
            ? 'and no lifecycle rule deletes noncurrent versions: it stays (and is billed) until deleted by hand'
            : 'until a lifecycle rule deletes it (the bucket\'s lifecycle could not be read)';
      const lock = terms.objectLock === 'enabled' ? ', and not before its Object Lock retention ends' : '';
      return [`${what}: each removal adds a delete marker; the archive's data stays as a noncurrent version ${expiry}${lock}`];
    }
    case 'unknown':
      return ['could not tell whether the bucket is versioned: in a versioned bucket a removal only adds a delete marker and the data stays as a noncurrent version'];
    case 'off':
      return [];
  }
}

function refusedCount(refused: readonly unknown[]): string {
  return refused.length === 0 ? '' : `; ${refused.length} could not be removed`;
}

/** Why a backup no rule may count is kept. */
function keptUncounted(entry: BackupEntry, future: boolean): string {
  if (entry.untrusted !== undefined) return `${UNTRUSTED_REASON} (${entry.untrusted})`;
  if (entry.tenant === undefined) return 'not attributable: only its path names the tenant';
  if (entry.incomplete === true) {
    if (entry.storedBytes !== undefined && entry.storedBytes !== entry.bytes) return `incomplete: ${entry.bytes} bytes where its backup stored ${entry.storedBytes} (cut short?); counted by no rule`;
    // In the listing's words (tenants backups): no footer at its end, or what is wrong with the one there.
    return `incomplete: ${entry.note ?? 'no footer at its end (cut short?)'}; counted by no rule`;
  }
  if (entry.unconfirmed === true) return UNCONFIRMED_REASON;
  if (future) return FUTURE_REASON;
  return 'creation time unknown (tenants verify records it)';
}

function storedObject(entry: BackupEntry): StoredObject {
  return { name: entry.name, location: entry.location, bytes: entry.bytes, modifiedAt: new Date(entry.modifiedAt), ...(entry.etag !== undefined && { etag: entry.etag }) };
}
