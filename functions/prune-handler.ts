// The prune function's invocations, direct or scheduled (pruneHandler).
//
// Logs are structured (Powertools) and never hold a secret: the event itself is never
// logged, only the tenant, the s3:// location, the endpoint (origin and path) and outcomes.

import type { PruneResult } from '../shared/catalog/prune.js';
import { boundedPrune } from '../shared/control-plane/bounded-answers.js';
import { errorBody, isScheduledEvent, parsePruneRequest, parseScheduledPrune, isRecord, type FailureResponse } from '../shared/control-plane/protocol.js';
import { assertRemoteStore } from '../shared/control-plane/remote-policy.js';
import { PruneStoppedError } from '../shared/errors.js';
import type { PruneCommand, TenantOperations } from '../shared/operations.js';
import { operationKeys, type Trigger } from './events.js';
import { runPrune } from '../shared/catalog/prune-command.js';
import type { Handler, HandlerDeps } from './handler-deps.js';
import { isUnreadableScheduledEvent, readScheduledEvent, stoppedByItsDeadline, timeLeft, UNREADABLE_EVENT_REASON, withDeadline } from './invocation.js';
import { noMetrics } from './metrics.js';
import { endpointKeys, errorName, failureOutcome, logFailure, secretsOf } from './reporting.js';
import { ScheduledOperationError } from './scheduled-error.js';

export type PruneResponse = PruneResult | FailureResponse;

/** The prune function runs prune alone (S3 only): it imports no other operation, whose archive code its bundle would carry unused. */
export type PruneDeps = Omit<HandlerDeps, 'operations'> & {
  /** @default runPrune (shared/catalog/prune-command.ts) */
  readonly operations?: Pick<TenantOperations, 'prune'>;
};

/**
 * The prune function: a direct `tenants prune` (dry run or not) or a cron rule's scheduled
 * prune, only ever in the backup bucket (within its key prefix). A scheduled failure is
 * rethrown, as a scheduled backup's is. Each prune is counted (the prune-failures alarm) but
 * a dry run: it removes nothing, and its caller reads its answer.
 */
export function pruneHandler(deps: PruneDeps): Handler<PruneResponse> {
  const { config, logger, publish } = deps;
  const operations = deps.operations ?? { prune: runPrune };
  const metrics = deps.metrics ?? noMetrics;
  return async (event, context) => {
    const started = Date.now();
    logger.addContext(context);
    const scheduled = isScheduledEvent(event);
    const trigger: Trigger = scheduled ? 'schedule' : 'direct';
    let command: PruneCommand | undefined;
    let cronName: string | undefined;
    let bounded = false;
    try {
      if (scheduled) {
        const request = readScheduledEvent(() => parseScheduledPrune(event));
        command = request.command;
        cronName = request.cronName;
        logger.appendKeys({ cronName, eventId: request.eventId });
      } else {
        ({ command, bounded } = parsePruneRequest(event));
      }
      logger.appendKeys({ operation: 'prune', tenant: command.tenant, trigger });
      assertRemoteStore('prune', command.in, command.storage, config);
      logger.info('prune started', { location: command.in, ...endpointKeys(command.storage), keep: command.keep, dryRun: command.dryRun === true });
      const result = await withDeadline(context, config, (signal) => operations.prune(command!, { signal }));
      logger.info('prune finished', { location: result.location, kept: result.keep.length, removed: result.removed, skipped: result.skipped.length, dryRun: result.dryRun, refused: result.refusal !== undefined });
      if (!result.dryRun) {
        await publish(
          {
            operation: 'prune',
            ok: true,
            detail: {
              tenant: result.tenant,
              location: result.location,
              trigger,
              ...(cronName !== undefined && { cronName }),
              ...operationKeys(context.awsRequestId, undefined),
              durationMs: Date.now() - started,
              kept: result.keep.length,
              removed: result.removed,
              archiveBytes: result.bytesRemoved,
            },
          },
          timeLeft(context),
        );
      }
      if (!result.dryRun) metrics.record({ operation: 'prune', outcome: 'succeeded', trigger, tenant: result.tenant, durationMs: Date.now() - started, ...(cronName !== undefined && { cronName }) });
      // A caller of an older version reads every decision from the lists: it gets them whole.
      // A schedule's answer, which no one reads, is cut too: Lambda fails an answer over 6 MB
      // (an error after the prune ran, and two retries).
      return bounded || scheduled ? boundedPrune(result) : result;
    } catch (error) {
      const body = errorBody(error, secretsOf(command?.storage));
      logFailure(logger, 'prune failed', error, body);
      // A dry run refused before its command was read (a field this version does not know: cron add's field check) is one too.
      if ((command?.dryRun ?? (isRecord(event) && event.dryRun === true)) !== true) {
        // Counted before the event is sent: an answered scheduled failure (below) raises no Errors, only this.
        metrics.record({ operation: 'prune', outcome: failureOutcome(trigger, body), trigger, tenant: command?.tenant ?? null, durationMs: Date.now() - started, errorCode: body.code, ...(cronName !== undefined && { cronName }) });
        await publish(
          {
            operation: 'prune',
            ok: false,
            detail: {
              tenant: command?.tenant ?? null,
              location: command?.in ?? '',
              trigger,
              ...(cronName !== undefined && { cronName }),
              ...operationKeys(context.awsRequestId, undefined),
              durationMs: Date.now() - started,
              error: { code: body.code, message: body.message },
            },
          },
          timeLeft(context),
        );
      }
      // Stopped by the deadline before it removed anything (a listing of more objects than the
      // invocation can inspect): each of Lambda's two retries would list the same into the same
      // deadline. Answered, not thrown; still counted (Failed: the prune-failures alarm), announced and logged as a failure. One
      // stopped after some removals is retried: the next goes on with the rest.
      if (scheduled && stoppedByItsDeadline(error) && !(error instanceof PruneStoppedError)) {
        logger.error('scheduled prune not retried', { errorCode: body.code, reason: "it ran out of the invocation's time before it removed anything, as a retry would" });
        return { ok: false, error: body };
      }
      if (scheduled && isUnreadableScheduledEvent(error)) {
        logger.error('scheduled prune not retried', { errorCode: body.code, reason: UNREADABLE_EVENT_REASON });
        return { ok: false, error: body };
      }
      if (scheduled) throw new ScheduledOperationError(body, errorName(error));
      return { ok: false, error: body };
    } finally {
      logger.resetKeys();
    }
  };
}
