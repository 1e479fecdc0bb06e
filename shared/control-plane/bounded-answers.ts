// Answers bounded to what a Lambda response holds (6 MB): note lists, listings of backups, a
// prune's decision lists and doctor's ownership report cut, each saying what it left out. The functions shape their answers
// with these; nothing here knows of Lambda beyond that size.

import type { ManifestNote } from '../archive/manifest.js';
import type { BackupResult } from '../backup/backup.js';
import type { BackupsListing } from '../catalog/backups.js';
import type { PruneResult } from '../catalog/prune.js';
import type { RestoreResult } from '../restore/restore.js';
import type { OwnershipReport, TenantOwnership } from '../tenant/ownership.js';
import type { RecoveredTenant } from '../tenant/tenants.js';

/**
 * Lambda answers at most 6 MB, counted in bytes of UTF-8 (a path of CJK characters takes three
 * a character): long note lists are cut (with a note saying so) well before that.
 */
export const MAX_RESPONSE_BYTES = 4_000_000;
const KEPT_NOTES = 1000;

export const responseBytes = (answer: unknown) => Buffer.byteLength(JSON.stringify(answer));

/** How many of `items`, from the first, fit `budget` bytes as the elements of a JSON array, and the bytes those take. */
export function fitting(items: readonly unknown[], budget: number): { count: number; bytes: number } {
  let bytes = 0;
  let count = 0;
  for (const item of items) {
    const next = bytes + responseBytes(item) + 1;
    if (next > budget) break;
    bytes = next;
    count += 1;
  }
  return { count, bytes };
}

/** A long note list, cut (with a note saying so) to what fits a Lambda response. */
export function cut(notes: readonly ManifestNote[], kept = KEPT_NOTES): ManifestNote[] {
  return notes.length <= kept
    ? [...notes]
    : [...notes.slice(0, kept), { path: '…', reason: `${notes.length - kept} more not shown (the Lambda response is limited to 6 MB)` }];
}

/**
 * A listing whose JSON would not fit a Lambda response, cut to its newest backups that do
 * (it is newest first), with the number of the others; a listing that fits is unchanged.
 */
export function boundedListing(listing: BackupsListing, maxBytes = MAX_RESPONSE_BYTES): BackupsListing {
  if (responseBytes(listing) <= maxBytes) return listing;
  // What the listing holds besides its entries, with room for the `omitted` count.
  const kept = fitting(listing.backups, maxBytes - responseBytes({ ...listing, backups: [], omitted: listing.backups.length })).count;
  return { ...listing, backups: listing.backups.slice(0, kept), omitted: listing.backups.length - kept };
}

/** Skips of removals left out of a cut prune's answer, and its notes, that the answer names one by one. */
const KEPT_PRUNE_ENTRIES = 100;

/**
 * A prune's result whose JSON would not fit a Lambda response, its decision lists cut to what
 * does (the removed first, in the order they were removed, then the kept, newest first), with
 * how many of each were left out (and the bytes of those to remove); one that fits is
 * unchanged. Each removal shown keeps its skip, if any (a row says skipped, not removed); the
 * skips of those left out, and the notes (which name each skip again), are cut to their first
 * KEPT_PRUNE_ENTRIES, counted: a store whose If-Match never matches skips every removal.
 */
export function boundedPrune(result: PruneResult, maxBytes = MAX_RESPONSE_BYTES): PruneResult {
  if (responseBytes(result) <= maxBytes) return result;
  const notes = result.notes.length <= KEPT_PRUNE_ENTRIES
    ? result.notes
    : [...result.notes.slice(0, KEPT_PRUNE_ENTRIES), `${(result.notes.length - KEPT_PRUNE_ENTRIES).toLocaleString('en-US')} more notes not shown (a Lambda response holds at most 6 MB)`];
  const skipOf = new Map(result.skipped.map((skip) => [skip.location, skip]));
  // What the result holds besides its decisions and skips, with room for the counts.
  let budget = maxBytes - responseBytes({ ...result, notes, keep: [], remove: [], skipped: [], keepOmitted: result.keep.length, keepOmittedUncounted: result.keep.length, removeOmitted: result.remove.length, removeOmittedBytes: Number.MAX_SAFE_INTEGER, skippedOmitted: result.skipped.length });
  // Room for the skips of removals left out to be named (about as long as the first skips).
  const reserved = fitting(result.skipped.slice(0, KEPT_PRUNE_ENTRIES), Number.POSITIVE_INFINITY).bytes;
  budget -= reserved;
  // What was removed first, each with its skip: it is what the operator must see.
  let remove = 0;
  for (const decision of result.remove) {
    const skip = skipOf.get(decision.location);
    const cost = responseBytes(decision) + 1 + (skip === undefined ? 0 : responseBytes(skip) + 1);
    if (cost > budget) break;
    budget -= cost;
    remove += 1;
  }
  const shownSkips = result.remove.slice(0, remove).flatMap((decision) => skipOf.get(decision.location) ?? []);
  const shownLocations = new Set(shownSkips.map((skip) => skip.location));
  budget += reserved;
  const otherSkips = fitting(result.skipped.filter((skip) => !shownLocations.has(skip.location)).slice(0, KEPT_PRUNE_ENTRIES), budget);
  const skipped = [...shownSkips, ...result.skipped.filter((skip) => !shownLocations.has(skip.location)).slice(0, otherSkips.count)];
  budget -= otherSkips.bytes;
  const keep = remove === result.remove.length ? fitting(result.keep, budget).count : 0;
  const omitted = result.remove.slice(remove);
  return {
    ...result,
    keep: result.keep.slice(0, keep),
    remove: result.remove.slice(0, remove),
    skipped,
    notes,
    keepOmitted: result.keep.length - keep,
    keepOmittedUncounted: result.keep.slice(keep).filter((decision) => decision.uncounted === true).length,
    removeOmitted: omitted.length,
    removeOmittedBytes: omitted.reduce((total, decision) => total + decision.bytes, 0),
    ...(skipped.length < result.skipped.length && { skippedOmitted: result.skipped.length - skipped.length }),
  };
}

/** A backup's or restore's result with its note lists cut, as far as needed, to fit a Lambda response. */
export function bounded<T extends BackupResult | RestoreResult>(result: T, maxBytes = MAX_RESPONSE_BYTES): T {
  if (responseBytes(result) <= maxBytes) return result;
  let fitted = result;
  for (const kept of [KEPT_NOTES, 100, 10, 0]) {
    fitted = { ...result, warnings: cut(result.warnings, kept), ...('skipped' in result && { skipped: cut(result.skipped, kept) }) };
    if (responseBytes(fitted) <= maxBytes) break;
  }
  return fitted;
}

/** What the list function answers `doctor` (ListRequest.ownership). */
export interface OwnershipAnswer {
  readonly tenants: readonly string[];
  readonly ownership: OwnershipReport & { readonly tenantsOmitted?: number };
  readonly skipped?: readonly unknown[];
  /** Every interrupted restore the listing settled first (its sweep of the base dir); absent: none. */
  readonly recovered?: readonly RecoveredTenant[];
}

/**
 * An ownership answer whose JSON would not fit a Lambda response (80,000 tenants made 8.2 MB,
 * and doctor read "failed instead of answering"), cut to what does: the tenants' names left out
 * first (doctor reads the report), then the report's tenants, those owned by another user kept
 * first, then those holding entries owned by another (72,000 tenants: the one tenant with such
 * files, named last, was left out), the others counted in `tenantsOmitted` and the report
 * marked incomplete. One that fits is unchanged.
 */
export function boundedOwnership(answer: OwnershipAnswer, maxBytes = MAX_RESPONSE_BYTES): OwnershipAnswer {
  if (responseBytes(answer) <= maxBytes) return answer;
  const withoutNames = { ...answer, tenants: [] };
  if (responseBytes(withoutNames) <= maxBytes) return withoutNames;
  const { ownership } = answer;
  const ownedElsewhere = (tenant: TenantOwnership) => tenant.uid !== ownership.expected.uid || tenant.gid !== ownership.expected.gid;
  const holdsMismatched = (tenant: TenantOwnership) => !ownedElsewhere(tenant) && tenant.mismatched > 0;
  const clean = (tenant: TenantOwnership) => !ownedElsewhere(tenant) && !holdsMismatched(tenant);
  const ordered = [...ownership.tenants.filter(ownedElsewhere), ...ownership.tenants.filter(holdsMismatched), ...ownership.tenants.filter(clean)];
  const kept = fitting(ordered, maxBytes - responseBytes({ ...withoutNames, ownership: { ...ownership, tenants: [], complete: false, tenantsOmitted: ordered.length } })).count;
  return { ...withoutNames, ownership: { ...ownership, tenants: ordered.slice(0, kept), complete: false, tenantsOmitted: ordered.length - kept } };
}
