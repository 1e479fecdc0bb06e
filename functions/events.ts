// Completion events: every backup, restore and prune, direct or scheduled, ends with one event on
// the stack's bus (source `openclaw.backup`), so operators can alert on failures and keep
// a record of successes without reading logs. Details carry no secrets: locations are the
// `s3://bucket/key` shown to users, error messages the one line the CLI would print.
// Publishing is best effort: a failed PutEvents is logged and never turns a finished
// backup into a failed one. Nor may a missing route to EventBridge (an imported VPC
// without an `events` endpoint or NAT) hold the function until Lambda's timeout: each
// publication gets at most `timeoutMs`, less when the invocation has less time left, and
// is given up (logged as such) when that runs out, whatever the SDK does with its sockets.

import { PutEventsCommand, type EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { Logger } from '@aws-lambda-powertools/logger';

import { DEFAULT_REQUEST_TIMEOUT_MS } from '../shared/control-plane/function-config.js';
import { EVENT_DETAIL_TYPES, EVENT_SOURCE } from '../shared/control-plane/deployment.js';
import type { ErrorBody } from '../shared/control-plane/protocol.js';

/** How the operation was started: invoked by a caller, by a tenant's schedule, or from the work queue (a fan-out). */
export type Trigger = 'direct' | 'schedule' | 'queue';

export interface CompletionDetail {
  /** The tenant backed up or restored (for a failed restore without --as: null, unknown). */
  readonly tenant: string | null;
  readonly location: string;
  readonly trigger: Trigger;
  /** The cron's name, for scheduled backups (and queued ones an all-tenants cron started). */
  readonly cronName?: string;
  /** The fan-out run a queued backup belongs to. */
  readonly runId?: string;
  readonly requestId: string;
  /**
   * The same in every event of one operation, for consumers to drop a repeated one: a chain's
   * ID for an operation in pieces (the piece that ends it and a recovery that says so in its
   * place, after a kill between the event and the removal of the chain's state, both give it),
   * else the invocation's request ID (kept by Lambda's retries of an asynchronous invocation).
   * Two events with the same `operationId` and detail type tell the same outcome: keep the first.
   */
  readonly operationId: string;
  /** The chain of an operation in pieces (its `operationId` too). */
  readonly chain?: string;
  readonly durationMs: number;
  /** On success: bytes of tenant content and of the stored archive. */
  readonly bytes?: number;
  readonly archiveBytes?: number;
  readonly manifestSha256?: string;
  readonly archiveTenant?: string;
  readonly verified?: boolean;
  readonly replaced?: boolean;
  /** A prune: backups kept and removed (`archiveBytes`: the bytes removed). */
  readonly kept?: number;
  readonly removed?: number;
  /** On failure. */
  readonly error?: Pick<ErrorBody, 'code' | 'message'>;
}

export interface CompletionEvent {
  readonly operation: 'backup' | 'restore' | 'prune';
  readonly ok: boolean;
  readonly detail: CompletionDetail;
}

/**
 * A completion event's `requestId`, `operationId` and `chain`: the chain an operation in pieces
 * goes on with (or the one it ended), else none.
 */
export function operationKeys(requestId: string, chain: string | undefined): Pick<CompletionDetail, 'requestId' | 'operationId' | 'chain'> {
  return { requestId, operationId: chain ?? requestId, ...(chain !== undefined && { chain }) };
}

/** The invocation's time left when the event is published (a Lambda context's getRemainingTimeInMillis()). */
export interface PublishBudget {
  readonly remainingMs: number;
}

export type PublishCompletion = (event: CompletionEvent, budget?: PublishBudget) => Promise<void>;

export interface PublisherOptions {
  /** The most one publication may take. @default DEFAULT_REQUEST_TIMEOUT_MS */
  readonly timeoutMs?: number;
}

/** Time kept back from the invocation's remainder for answering after the event. */
export const PUBLISH_RESERVE_MS = 2_000;

export function completionPublisher(
  client: EventBridgeClient,
  eventBus: string | undefined,
  logger: Logger,
  options: PublisherOptions = {},
): PublishCompletion {
  const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  return async (event, budget) => {
    const detailType = EVENT_DETAIL_TYPES[event.operation][event.ok ? 'ok' : 'failed'];
    if (eventBus === undefined) {
      logger.debug('no OPENCLAW_EVENT_BUS: completion event not published', { detailType });
      return;
    }
    const limitMs = Math.floor(Math.min(timeoutMs, (budget?.remainingMs ?? Number.POSITIVE_INFINITY) - PUBLISH_RESERVE_MS));
    if (limitMs <= 0) {
      logger.error('could not publish the completion event: no time left in the invocation', { detailType, eventBus });
      return;
    }
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timed out'>((resolve) => {
      timer = setTimeout(() => {
        controller.abort();
        resolve('timed out');
      }, limitMs);
    });
    try {
      const output = await Promise.race([
        client.send(
          new PutEventsCommand({
            Entries: [{ EventBusName: eventBus, Source: EVENT_SOURCE, DetailType: detailType, Detail: JSON.stringify(event.detail) }],
          }),
          { abortSignal: controller.signal },
        ),
        timedOut,
      ]);
      if (output === 'timed out') {
        logger.error('could not publish the completion event: EventBridge did not answer in time (no route from the subnets?)', {
          detailType,
          eventBus,
          timeoutMs: limitMs,
        });
        return;
      }
      if ((output.FailedEntryCount ?? 0) > 0) {
        const entry = output.Entries?.[0];
        logger.error('completion event rejected by EventBridge', { detailType, eventBus, errorCode: entry?.ErrorCode, errorMessage: entry?.ErrorMessage });
      }
    } catch (error) {
      logger.error('could not publish the completion event', { detailType, eventBus, errorName: (error as Error).name, errorMessage: (error as Error).message });
    } finally {
      clearTimeout(timer);
    }
  };
}
