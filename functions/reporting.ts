// How the functions report an operation that did not succeed: its log line (a failure ours, a
// refusal the caller's), how it is counted, the answer of a request without a completion event,
// and the request's fields a log line or an error body may hold (never its keys).

import type { Logger } from '@aws-lambda-powertools/logger';

import { requestedEndpoint } from '../shared/control-plane/endpoint-allowlist.js';
import { errorBody, isRecord, type ErrorBody, type FailureResponse } from '../shared/control-plane/protocol.js';
import { isOpenClawError } from '../shared/errors.js';
import type { StorageFlags } from '../shared/operations.js';
import type { Trigger } from './events.js';

/**
 * A direct invocation's refusal (a usage error, an existing archive) is the caller's answer,
 * seen at their terminal: counted as refused. Every other unsuccessful operation, scheduled
 * and queued ones whatever the reason, is a failure someone must hear of.
 */
export function failureOutcome(trigger: Trigger, body: ErrorBody): 'failed' | 'refused' {
  return trigger === 'direct' && body.outcome !== 'failed' ? 'refused' : 'failed';
}

/** Runs a request that publishes no completion event (a dry run, verify, a listing): its result, or the failure response. */
export async function answerWithoutEvent<R>(logger: Logger, message: string, event: Record<string, unknown>, run: () => Promise<R>): Promise<R | FailureResponse> {
  try {
    return await run();
  } catch (error) {
    const storage = isRecord(event.storage) ? event.storage : {};
    const body = errorBody(error, [storage.secretKey, storage.accessKey].map((value) => (typeof value === 'string' ? value : undefined)));
    logFailure(logger, message, error, body);
    return { ok: false, error: body };
  } finally {
    logger.resetKeys();
  }
}

/** The caller's keys in a request's storage flags: redacted from its error body. */
export function secretsOf(storage: StorageFlags | undefined): (string | undefined)[] {
  return [storage?.secretKey, storage?.accessKey];
}

/** The endpoint a request names, as a log line may hold it (origin and path; whether it came with keys). */
export function endpointKeys(storage: StorageFlags | undefined): Record<string, unknown> {
  if (storage?.endpoint === undefined) return {};
  return { endpoint: requestedEndpoint(storage.endpoint) ?? 'invalid', staticKeys: storage.accessKey !== undefined };
}

export function logFailure(logger: Logger, message: string, error: unknown, body: ErrorBody): void {
  const attributes = { errorCode: body.code, outcome: body.outcome, errorMessage: body.message };
  // Refusals and usage errors are the caller's business; failures and bugs are ours.
  if (body.outcome === 'failed') logger.error(message, { ...attributes, errorName: errorName(error) });
  else logger.warn(message, attributes);
}

export function errorName(error: unknown): string {
  if (isOpenClawError(error)) return error.name;
  return error instanceof Error ? error.name : 'Error';
}
