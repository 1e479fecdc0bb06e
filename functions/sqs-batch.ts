// What the backup and restore functions share of their SQS doors (queue-handler.ts,
// restore-queue-handler.ts): the batch's shape and the hand-back of a message a newer version
// wrote. Apart from queue-handler.ts so that the restore function's bundle carries none of the
// backup's queue handler.

import { isRecord, type ErrorBody } from '../shared/control-plane/protocol.js';
import { tenantNamedIn } from '../shared/control-plane/work-queue.js';
import type { HandlerDeps } from './handler-deps.js';
import { noMetrics } from './metrics.js';

export interface SqsRecord {
  readonly messageId: string;
  readonly body: string;
  readonly eventSource?: string;
  readonly attributes?: { readonly ApproximateReceiveCount?: string };
}

export interface SqsBatch {
  readonly Records: readonly SqsRecord[];
}

export interface BatchResponse {
  readonly batchItemFailures: readonly { readonly itemIdentifier: string }[];
}

/** A batch from an SQS event source mapping. */
export function isSqsBatch(event: unknown): event is SqsBatch {
  return (
    isRecord(event) &&
    Array.isArray(event.Records) &&
    event.Records.length > 0 &&
    event.Records.every((record: unknown) => isRecord(record) && record.eventSource === 'aws:sqs' && typeof record.messageId === 'string' && typeof record.body === 'string')
  );
}

/**
 * A queued message of a version, kind or field this function does not know (a newer version
 * wrote it): handed back on every receive, so that after its last it waits intact in the DLQ
 * for a redrive once that version is deployed. Logged on each receive; counted in Failed on its
 * first only (the failures alarm goes off once, the DLQ's when it gets there); no completion
 * event: the tenant it names had nothing run, and an event on every receive told a monitor of
 * as many failures of a tenant it could not even name.
 */
export function handBackNewerMessage(deps: HandlerDeps<unknown>, operation: 'backup' | 'restore', record: SqsRecord, attempt: number, body: ErrorBody, durationMs: number): void {
  const dlq = operation === 'backup' ? 'work DLQ' : 'restore DLQ';
  const tenant = tenantNamedIn(record.body) ?? null;
  deps.logger.error(`queued ${operation} handed back unread`, {
    messageId: record.messageId,
    attempt,
    tenant,
    errorCode: body.code,
    errorMessage: body.message,
    reason: `a newer version wrote it: it goes to the ${dlq} as it is after its last receive; deploy that version, then redrive the ${dlq}`,
  });
  if (attempt <= 1) (deps.metrics ?? noMetrics).record({ operation, outcome: 'failed', trigger: operation === 'backup' ? 'queue' : 'direct', tenant, durationMs, errorCode: body.code });
}
