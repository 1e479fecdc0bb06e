// The fan-out function (`<prefix>-fanout`): started by an all-tenants schedule (`cron add
// --all`) or by `tenants backup --all` in remote mode, it queues one backup per tenant
// (control-plane/fan-out.ts) and answers what it queued. It runs outside the VPC and never
// touches the tenant volume: the list function names the tenants, the work queue carries
// the backups to the backup function, which runs a bounded number at a time.
//
// Before anything is listed, the template is checked against the gateway's own policy (the
// bucket and key prefix the backup function may write): a wrong template fails once, here,
// not 10,000 times in the queue; so are the recipients (public keys) every message carries. A scheduled fan-out whose payload is refused answers the refusal (a
// retry would be refused the same way), counted Failed, as is any payload without the CLI's source marker. A scheduled fan-out that queued nothing throws, so Lambda
// retries it (nothing is doubled). One that ran out of time before it listed every tenant
// hands the rest of its run on: it invokes itself (asynchronously) with the same run, time and
// keys, after the last tenant it got past, so no tenant is queued twice (a Lambda retry of the
// whole run would queue again every tenant the first attempt queued: with `--overwrite`, each
// backed up again; and, given no more time, list no further); when it cannot, it throws, and
// Lambda runs it again from where it began. One that queued some tenants but not all answers
// normally and counts the rest in `QueueSendFailures` (alarmed): retrying it whole would
// queue every tenant twice. A direct invocation gets the result, failures included, or
// `{ ok: false, error }`.

import type { Logger } from '@aws-lambda-powertools/logger';
import type { SQSClient } from '@aws-sdk/client-sqs';

import { fanOut, type FanOutOptions } from '../shared/control-plane/fan-out.js';
import type { FunctionConfig } from '../shared/control-plane/function-config.js';
import { fitting, MAX_RESPONSE_BYTES, responseBytes } from '../shared/control-plane/bounded-answers.js';
import { errorBody, isFanOutPayload, isRecord, parseFanOutRequest, type FailureResponse, type FanOutResult } from '../shared/control-plane/protocol.js';
import { assertOverwriteAllowed, assertRemoteStorage, stackRecipients } from '../shared/control-plane/remote-policy.js';
import { InvalidRequestError, RemoteError } from '../shared/errors.js';
import { expandTemplate } from '../shared/schedule/destination-template.js';
import { redact } from '../shared/storage/redact.js';
import type { Handler } from './handler-deps.js';
import { ScheduledOperationError } from './scheduled-error.js';
import { deadlineSignal } from './lambda-context.js';
import type { ListPage } from './list-client.js';
import { noMetrics, type OperationMetrics } from './metrics.js';

export interface FanOutHandlerDeps {
  readonly config: FunctionConfig;
  readonly logger: Logger;
  readonly sqs: Pick<SQSClient, 'send'>;
  readonly queueUrl: string;
  readonly listPage: ListPage;
  /** Invokes the fan-out function (by name) asynchronously with the rest of a scheduled run. @default none: such a run throws */
  readonly handOn?: (functionName: string, payload: Record<string, unknown>) => Promise<void>;
  /** @default none */
  readonly metrics?: OperationMetrics;
  /** @default () => new Date() */
  readonly now?: () => Date;
  /** For tests and the simulation: the back-off's clock and dice. */
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
  readonly options?: FanOutOptions;
}

export type FanOutResponse = FanOutResult | FailureResponse;

/**
 * A scheduled fan-out that queued nothing, or ran out of time before it listed every tenant:
 * thrown so Lambda runs it again (its metrics are already counted).
 */
class RunAgainError extends RemoteError {
  constructor(message: string) {
    super('AWS_ERROR', message);
  }
}

/**
 * A fan-out's answer with its `failed` list cut to what fits a Lambda answer, the others
 * counted in `failedOmitted`: 40,000 tenants refused by SQS (a queue key the role may not use)
 * made 9.3 MB, over Lambda's 6 MB, and the CLI got no answer of what happened. One that fits is
 * unchanged.
 */
export function boundedFanOut(result: FanOutResult, maxBytes = MAX_RESPONSE_BYTES): FanOutResult {
  if (responseBytes(result) <= maxBytes) return result;
  const kept = fitting(result.failed, maxBytes - responseBytes({ ...result, failed: [], failedOmitted: result.failed.length })).count;
  return { ...result, failed: result.failed.slice(0, kept), failedOmitted: result.failed.length - kept };
}

export function fanOutHandler(deps: FanOutHandlerDeps): Handler<FanOutResponse> {
  const { config, logger } = deps;
  const metrics = deps.metrics ?? noMetrics;
  const now = deps.now ?? (() => new Date());
  /** Whether the rest of the run was handed on (the invocation accepted), else a Lambda retry of this one takes it. */
  const handOn = async (event: unknown, rest: { runId: string; time: Date; after: string }, functionName: string): Promise<boolean> => {
    if (deps.handOn === undefined) return false;
    try {
      await deps.handOn(functionName, { ...(event as Record<string, unknown>), runId: rest.runId, time: rest.time.toISOString(), after: rest.after });
      return true;
    } catch (error) {
      logger.error('fan-out could not hand the rest of its run on', { errorMessage: redact(String((error as Error | undefined)?.message ?? error).split('\n')[0]!) });
      return false;
    }
  };
  return async (event, context) => {
    const started = Date.now();
    logger.addContext(context);
    // Scheduled: by an all-tenants cron, whose payload names it, with or without its source
    // marker (a schedule's input edited by hand loses it as easily as any other field).
    const scheduled = isRecord(event) && typeof event.cronName === 'string';
    const trigger = scheduled ? 'schedule' : 'direct';
    // The CLI marks every payload it sends: one without the marker came from a schedule or a
    // script nobody watches at a terminal, so its refusal is counted Failed (the fanout-failures
    // alarm at once), not Refused (heard of only by the freshness alarm, ~26 hours later).
    const unmarked = !isFanOutPayload(event);
    const deadline = deadlineSignal(context, Math.min(config.abortMarginMs, 30_000));
    // Until the payload is read and allowed: a refusal then is the payload's, which a retry repeats.
    let readingPayload = true;
    try {
      if (!isFanOutPayload(event)) throw new InvalidRequestError('fan-out request: expected { "source": "openclaw.fanout", "version": 1, "to": … }');
      const request = parseFanOutRequest(event, now);
      const runId = request.runId ?? context.awsRequestId;
      logger.appendKeys({ operation: 'fanout', trigger, runId, ...(request.cronName !== undefined && { cronName: request.cronName }) });
      const timeZone = request.timeZone;
      assertRemoteStorage('backup', expandTemplate(request.to, { time: request.time, tenant: 'sample-tenant', ...(timeZone !== undefined && { timeZone }) }), undefined, config);
      assertOverwriteAllowed(request.overwrite, config);
      readingPayload = false;
      // Each queued backup carries the stack's recipients too (the backup function adds them again: one rule, remote-policy.ts).
      const encryptTo = stackRecipients(request.encryptTo ?? [], config);
      logger.info('fan-out started', { template: request.to, time: request.time.toISOString(), timeSource: request.timeSource, ...(timeZone !== undefined && { timeZone }), encryptedTo: encryptTo.length });

      const outcome = await fanOut(
        {
          template: request.to,
          overwrite: request.overwrite,
          time: request.time,
          runId,
          ...(timeZone !== undefined && { timeZone }),
          ...(request.cronName !== undefined && { cronName: request.cronName }),
          ...(encryptTo.length > 0 && { encryptTo }),
          ...(request.storage !== undefined && { storage: request.storage }),
          ...(request.after !== undefined && { after: request.after }),
        },
        { sqs: deps.sqs, queueUrl: deps.queueUrl, listPage: deps.listPage, signal: deadline.signal, ...(deps.sleep !== undefined && { sleep: deps.sleep }), ...(deps.random !== undefined && { random: deps.random }) },
        deps.options,
      );
      // The rest of a scheduled run, handed on (the tenants the deadline cut short are its); one
      // that queued nothing throws instead (below), and its retry goes over the same tenants.
      const handedOn = scheduled && outcome.resumeAfter !== undefined && outcome.queued > 0 && (await handOn(event, { runId, time: request.time, after: outcome.resumeAfter }, context.functionName));
      const failed = handedOn ? outcome.failed.filter((failure) => failure.code !== 'ABORTED') : outcome.failed;
      const attributes = { tenants: outcome.tenants, queued: outcome.queued, failed: failed.length, pages: outcome.pages, requests: outcome.requests, retries: outcome.retries, complete: outcome.complete };
      if (handedOn) {
        logger.info('fan-out handed the rest of its run on', { ...attributes, after: outcome.resumeAfter, ...(failed.length > 0 && { notQueued: failed.slice(0, 50) }) });
      } else if (failed.length > 0 || !outcome.complete) {
        logger.error('fan-out left tenants out', { ...attributes, notQueued: failed.slice(0, 50) });
      } else {
        logger.info('fan-out finished', attributes);
      }
      const ok = failed.length === 0 && (outcome.complete || handedOn);
      metrics.count(
        'fanout',
        { [ok ? 'succeeded' : 'failed']: 1, queued: outcome.queued, queueFailures: failed.length, durationMs: Date.now() - started },
        { trigger, runId, cronName: request.cronName, tenants: outcome.tenants, retries: outcome.retries, ...(handedOn && { handedOn: true }) },
      );
      if (scheduled && outcome.queued === 0 && outcome.tenants > 0) {
        throw new RunAgainError(`the fan-out queued none of ${outcome.tenants} tenants: ${outcome.failed[0]?.message ?? 'it ran out of time'}`);
      }
      if (scheduled && !outcome.complete && !handedOn) {
        const listed = outcome.lastListed === undefined ? '' : `, up to ${JSON.stringify(outcome.lastListed)}`;
        throw new RunAgainError(
          `the fan-out ran out of time before it listed every tenant (queued ${outcome.queued} of the ${outcome.tenants} it listed${listed}) and could not hand the rest on: it runs again, and the tenants queued already find their archives and are skipped`,
        );
      }
      return boundedFanOut({
        operation: 'backup-all',
        runId,
        time: request.time.toISOString(),
        template: request.to,
        ...(outcome.sample !== undefined && { sample: outcome.sample }),
        tenants: outcome.tenants,
        queued: outcome.queued,
        failed,
        complete: outcome.complete,
        ...(!outcome.complete && outcome.lastListed !== undefined && { lastListed: outcome.lastListed }),
        ...(encryptTo.length > 0 && { encryptedTo: encryptTo }),
        queue: deps.queueUrl.split('/').pop() ?? deps.queueUrl,
      });
    } catch (error) {
      const body = errorBody(error);
      if (body.outcome === 'failed') logger.error('fan-out failed', { errorCode: body.code, errorMessage: body.message });
      else logger.warn('fan-out refused', { errorCode: body.code, errorMessage: body.message });
      // Lambda would run it twice more, each refused the same way (and then hand it to the DLQ): answered instead, still counted Failed (the fanout-failures alarm).
      const notRetried = scheduled && readingPayload;
      if (!(error instanceof RunAgainError)) {
        metrics.count('fanout', { [trigger === 'direct' && !unmarked && body.outcome !== 'failed' ? 'refused' : 'failed']: 1, durationMs: Date.now() - started }, { trigger, errorCode: body.code, ...(notRetried && { retried: false }), ...(unmarked && { unmarked: true }) });
      }
      if (notRetried) {
        logger.error('scheduled fan-out not retried', { errorCode: body.code, reason: 'its payload is refused, as the same payload retried would be: change the schedule (cron add --all again) or the stack' });
        return { ok: false, error: body };
      }
      if (scheduled) throw new ScheduledOperationError(body, error instanceof Error ? error.name : 'Error');
      return { ok: false, error: body };
    } finally {
      deadline.dispose();
      logger.resetKeys();
    }
  };
}
