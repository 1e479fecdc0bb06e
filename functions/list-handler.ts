// The list function's invocations (listHandler): the tenants on the EFS volume, names or
// summaries, in pages, or with their ownership.

import { boundedOwnership, MAX_RESPONSE_BYTES, responseBytes } from '../shared/control-plane/bounded-answers.js';
import { recoveredField, skippedFields, tenantsPage } from '../shared/control-plane/list-pages.js';
import { errorBody, failureResponse, pageOfNames, parseListRequest, type FailureResponse } from '../shared/control-plane/protocol.js';
import { AbortedError, InvalidRequestError } from '../shared/errors.js';
import { localTenantListing, namesToBackUp, type TenantListing } from '../shared/tenant/listing.js';
import { scanOwnership, type OwnershipReport } from '../shared/tenant/ownership.js';
import type { RecoveredTenant } from '../shared/tenant/tenants.js';
import type { Handler, HandlerDeps } from './handler-deps.js';
import { withDeadline } from './invocation.js';
import { noMetrics } from './metrics.js';
import { logFailure } from './reporting.js';

export type ListResponse = { readonly tenants: readonly unknown[]; readonly ownership?: OwnershipReport; readonly skipped?: readonly unknown[]; readonly strays?: readonly unknown[]; readonly next?: string } | FailureResponse;

/**
 * What the list function is built from: no publisher, and only the listing operations. The list
 * function lists and nothing else: it imports no operation executor (shared/operations.ts),
 * whose archive reader and writer and S3 client its bundle would carry unused.
 */
export type ListDeps = Omit<HandlerDeps, 'publish' | 'operations'> & {
  /** @default localTenantListing(config.tenantsDir) (the EFS mount) */
  readonly operations?: TenantListing;
};

export function listHandler(deps: ListDeps): Handler<ListResponse> {
  const { config, logger } = deps;
  const operations = deps.operations ?? localTenantListing(config.tenantsDir);
  return async (event, context) => {
    logger.addContext(context);
    const startedAt = Date.now();
    try {
      const request = parseListRequest(event);
      if (request.ownership) {
        // The sweep before the listing stops at the deadline too (leftovers of many files took the whole invocation).
        const { tenants, recovered, ownership, skipped } = await withDeadline(context, config, async (signal) => {
          const [names, skippedNames] = await Promise.all([operations.listNames({ signal }), operations.listSkipped()]);
          return {
            ...names,
            skipped: skippedNames,
            ownership: await scanOwnership(config.tenantsDir, names.tenants, { expected: { uid: request.expectUid, gid: request.expectGid }, signal }),
          };
        });
        logRecovered(logger, recovered);
        logger.info('listed tenant ownership', { count: tenants.length, mismatched: ownership.mismatched, complete: ownership.complete, skipped: skipped.length });
        // What doctor warns of besides: names in the base dir that no backup covers, and what the listing settled first.
        return boundedOwnership({ tenants, ownership, ...(skipped.length > 0 && { skipped: skipped.slice(0, 20) }), ...recoveredField(recovered) });
      }
      if (request.pages) {
        // Walked until the deadline: a shorter page, the CLI asks for the next (tenants of many files on EFS take minutes).
        const page = await withDeadline(context, config, (signal) => tenantsPage(operations, request, MAX_RESPONSE_BYTES, signal));
        logRecovered(logger, page.recovered ?? []);
        logger.info('listed a page of tenants', { names: request.names, after: request.after, count: page.tenants.length, more: page.next !== undefined, skipped: page.skipped?.length ?? 0 });
        return page;
      }
      if (request.after !== undefined || request.limit !== undefined) {
        // The fan-out's (and the monitor's) pages: a skipped tenant among them, so its backup fails by name.
        // Its sweep of the base dir stops at the deadline (a trash of 20,000 files took the whole invocation, and the fan-out got no page); the names are answered whole.
        const { tenants: names, recovered } = await withDeadline(context, config, (signal) => namesToBackUp(operations, signal));
        logRecovered(logger, recovered);
        const page = pageOfNames(names, request.after, request.limit);
        logger.info('listed a page of tenant names', { after: request.after, count: page.tenants.length, more: page.next !== undefined });
        return page;
      }
      // An older CLI's whole listing: the names' sweep stops at the deadline (the names are answered whole); summaries are never answered in part.
      const [{ tenants, recovered }, skipped] = await withDeadline(context, config, async (signal) => {
        const listed = await Promise.all([request.names ? operations.listNames({ signal }) : operations.listSummaries({ signal }), operations.listSkipped()]);
        if (!request.names && signal.aborted) throw new AbortedError(`the list function ran out of time walking the tenants (${listed[0].tenants.length} walked): ${OLDER_CLI_LISTING}`);
        return listed;
      });
      // An older CLI's answer as before: it reads no `recovered` (the log has it).
      logRecovered(logger, recovered);
      logger.info('listed tenants', { names: request.names, count: tenants.length, skipped: skipped.length });
      if (skipped.length > 0) logger.warn('tenants skipped by the listing', { skipped });
      const answer = { tenants, ...skippedFields(skipped) };
      if (responseBytes(answer) > MAX_RESPONSE_BYTES) throw new InvalidRequestError(`the ${tenants.length.toLocaleString('en-US')} tenants do not fit one Lambda answer (6 MB): ${OLDER_CLI_LISTING}`);
      return answer;
    } catch (error) {
      const body = errorBody(error);
      logFailure(logger, 'list failed', error, body);
      // Answered, Lambda's Errors never sees it: a failure (not a caller's bad request) counts in Failed, which list-errors reads.
      if (body.outcome === 'failed') (deps.metrics ?? noMetrics).record({ operation: 'list', outcome: 'failed', trigger: 'direct', durationMs: Date.now() - startedAt, errorCode: body.code });
      return failureResponse(error);
    }
  };
}

/**
 * Every interrupted restore the listing's sweep settled first (rolled back, finished), as a
 * warning: a `tenants list --stack` and `doctor --stack` say it (the answer's `recovered`), but
 * the fan-out's pages and an older CLI's whole listing carry no such field, and a rollback there
 * (a restore of a new tenant killed on the volume) was said nowhere.
 */
function logRecovered(logger: HandlerDeps['logger'], recovered: readonly RecoveredTenant[]): void {
  if (recovered.length > 0) logger.warn('the listing settled interrupted restores first', { recovered });
}

/** What a caller of a whole listing (a CLI older than the list's pages) is told when the listing cannot be answered whole. */
const OLDER_CLI_LISTING = 'this CLI lists in one answer; update it (it lists in pages), or list the tenants without --stack on a host that mounts the tenant volume';
