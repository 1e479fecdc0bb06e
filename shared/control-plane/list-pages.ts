// The paged answers of the list requests (`tenants list`, `tenants backups`): each page cut to
// what fits a Lambda response (bounded-answers.ts), saying where the next begins.

import { AbortedError } from '../errors.js';
import type { BackupsListing } from '../catalog/backups.js';
import type { TenantListing } from '../tenant/listing.js';
import { byName, isValidTenantName } from '../tenant/names.js';
import type { RecoveryAction } from '../tenant/slot.js';
import type { RecoveredTenant, SkippedTenant, TenantSummary } from '../tenant/tenants.js';
import { fitting, MAX_RESPONSE_BYTES, responseBytes } from './bounded-answers.js';
import { isRecord, MAX_LIST_PAGE, pageOfNames, type ParsedListRequest } from './protocol.js';

/**
 * One page of `tenants list` (ListRequest.pages): the names or summaries sorted after `after`,
 * at most `limit` (MAX_LIST_PAGE), cut further to what fits a Lambda answer, `next` when more
 * follow; and the skipped tenants, on every page, as many as fit a quarter of the answer (the
 * others counted in `skippedOmitted`), so that no skipped list, however long, makes a page
 * too large to answer. Only the page's tenants are walked.
 */
export async function tenantsPage(operations: TenantListing, request: ParsedListRequest, maxBytes = MAX_RESPONSE_BYTES, signal?: AbortSignal): Promise<ListPageAnswer> {
  const limit = request.limit ?? MAX_LIST_PAGE;
  const [listed, skipped] = await Promise.all([
    request.names
      ? // The sweep before it stops at the deadline; the names, read at once, are answered whole.
        operations.listNames(signal === undefined ? undefined : { signal }).then(({ tenants, recovered }) => ({ ...pageOfNames(tenants, request.after, limit), recovered }))
      : // One more than the page, to know whether another follows.
        operations.listSummaries({ ...(request.after !== undefined && { after: request.after }), limit: limit + 1, ...(signal !== undefined && { signal }) }).then((listing): { tenants: readonly TenantSummary[]; next?: string; recovered: readonly RecoveredTenant[] } => {
          const { tenants: summaries, recovered } = listing;
          if (summaries.length > limit) return { tenants: summaries.slice(0, limit), next: summaries[limit - 1]!.name, recovered };
          if (signal?.aborted !== true) return { tenants: summaries, recovered };
          // The deadline cut the page short: the tenants walked, and the next page after the last.
          const last = summaries.at(-1);
          if (last === undefined) {
            const where = request.after === undefined ? 'the first tenant' : `the first tenant after "${request.after}"`;
            // No walk began (one that began answers its tenant as not walked, summarizeTenants): the base dir's sweep before the walks took the time, which the next listing goes on with.
            throw new AbortedError(`the list function ran out of time removing what interrupted operations left in the base dir, before walking ${where} (the next listing goes on removing it): list again, or list the tenants without --stack on a host that mounts the tenant volume`);
          }
          return { tenants: summaries, next: last.name, recovered };
        }),
    operations.listSkipped(),
  ]);
  const shown = skipped.slice(0, fitting(skipped, maxBytes * SKIPPED_SHARE).count);
  const answer: ListPageAnswer = {
    tenants: listed.tenants,
    ...(listed.next !== undefined && { next: listed.next }),
    ...skippedFields(shown),
    ...(shown.length < skipped.length && { skippedOmitted: skipped.length - shown.length }),
    ...recoveredField(listed.recovered),
  };
  if (responseBytes(answer) <= maxBytes) return answer;
  // What the page holds besides its tenants, with room for the longest `next`; at least one tenant, for the listing to go on.
  const kept = Math.max(1, fitting(listed.tenants, maxBytes - responseBytes({ ...answer, tenants: [], next: 'x'.repeat(64) })).count);
  if (kept >= listed.tenants.length) return answer;
  const tenants = listed.tenants.slice(0, kept);
  const last = tenants[kept - 1]!;
  return { ...answer, tenants, next: typeof last === 'string' ? last : last.name };
}

/**
 * What a listing settled first (an interrupted restore rolled back), as a field of an answer
 * (a page's, doctor's ownership answer): absent when nothing was, as answers before the field.
 */
export function recoveredField(recovered: readonly RecoveredTenant[]): { recovered?: readonly RecoveredTenant[] } {
  return recovered.length === 0 ? {} : { recovered };
}

/** What a listing's sweep settled, as a person is told it (format.ts recoveryText); the 'none' and 'removed-leftovers' of no note, and actions of a later version, left out. */
const SAID_RECOVERIES: ReadonlySet<string> = new Set<RecoveryAction>(['rolled-back', 'finished-commit', 'kept-old', 'kept-new', 'kept-slot']);

/**
 * The interrupted restores a gateway's listings settled first, from the `recovered` field of
 * each of its answers (list pages, doctor's ownership answer), one per tenant, sorted: none
 * from a gateway older than the field; undefined when a field is no such list. A tenant's name
 * must be one (it is printed in a note: no escape or line break of an answer's).
 */
export function recoveredInAnswers(fields: readonly unknown[]): RecoveredTenant[] | undefined {
  const byTenant = new Map<string, RecoveryAction>();
  for (const recovered of fields) {
    if (recovered === undefined) continue;
    if (!Array.isArray(recovered) || !recovered.every((entry) => isRecord(entry) && typeof entry.tenant === 'string' && isValidTenantName(entry.tenant) && typeof entry.action === 'string')) return undefined;
    for (const { tenant, action } of recovered as { tenant: string; action: string }[]) if (SAID_RECOVERIES.has(action)) byTenant.set(tenant, action as RecoveryAction);
  }
  return [...byTenant].sort(([a], [b]) => byName(a, b)).map(([tenant, action]) => ({ tenant, action }));
}

/**
 * One page of `tenants backups` (its request's `pages`): the listing of the next `limit`
 * objects (BackupsPage), asked again for a quarter as many while its answer would not fit a
 * Lambda response (keys of a kilobyte each). Each page lists (from after the `after` it was
 * asked for: S3's StartAfter) and inspects only its own objects, so the pages together cost
 * what one listing does.
 */
export async function backupsPage(list: (limit: number) => Promise<BackupsListing>, maxBytes = MAX_RESPONSE_BYTES, limit = BACKUPS_PAGE_OBJECTS): Promise<BackupsListing> {
  for (let objects = limit; ; objects = Math.ceil(objects / 4)) {
    const page = await list(objects);
    if (responseBytes(page) <= maxBytes || objects === 1) return page;
  }
}

/** The objects one page of `tenants backups` inspects: 2,000 entries of up to 2 KB of JSON each fit an answer. */
const BACKUPS_PAGE_OBJECTS = 2_000;

/**
 * The skipped tenants of a list answer, in two fields: `skipped`, the tenant names no command
 * follows (a symlink), which every CLI names and fails on; `strays`, the directories whose
 * names are no tenant names (`Acme`, `acme.old`), which this CLI only warns of. Apart, so that
 * a CLI older than `strays` reads the answer as before them: were they in `skipped`, its
 * `tenants list` would fail (exit 1) for a stray directory, as for a symlinked tenant.
 */
export function skippedFields(skipped: readonly SkippedTenant[]): { skipped?: SkippedTenant[]; strays?: SkippedTenant[] } {
  const tenants = skipped.filter((entry) => entry.invalidName !== true);
  const strays = skipped.filter((entry) => entry.invalidName === true);
  return { ...(tenants.length > 0 && { skipped: tenants }), ...(strays.length > 0 && { strays }) };
}

export interface ListPageAnswer {
  readonly tenants: readonly (string | TenantSummary)[];
  readonly next?: string;
  readonly skipped?: readonly SkippedTenant[];
  /** The directories among the skipped whose names are no tenant names (skippedFields). */
  readonly strays?: readonly SkippedTenant[];
  /** The skipped tenants left out of `skipped` to keep the page within a Lambda answer. */
  readonly skippedOmitted?: number;
  /** Every interrupted restore the page's listing settled first (its sweep of the base dir); absent: none. */
  readonly recovered?: readonly RecoveredTenant[];
}

/** The most of a list page its skipped tenants may take (a quarter: ~10,000 of them); the tenants get the rest. */
const SKIPPED_SHARE = 0.25;
