// The part of the Lambda context the handlers use (the `aws-lambda` types are not a
// dependency), and the deadline every operation runs under: an AbortSignal that fires a
// little before the invocation's time runs out, so the core stops cleanly (multipart upload
// aborted, staging directory removed, tenant lock released) instead of being frozen
// mid-write by the timeout.

import { AbortedError } from '../shared/errors.js';

export interface LambdaContext {
  readonly awsRequestId: string;
  readonly functionName: string;
  readonly functionVersion: string;
  readonly invokedFunctionArn: string;
  readonly memoryLimitInMB: string;
  getRemainingTimeInMillis(): number;
}

export interface Deadline {
  readonly signal: AbortSignal;
  /** Milliseconds from now until the signal fires. */
  readonly inMs: number;
  dispose(): void;
}

/**
 * Fires `marginMs` before the end of the invocation; with little time left, a quarter of
 * what remains is kept for the cleanup instead.
 */
export function deadlineSignal(context: LambdaContext, marginMs: number): Deadline {
  const remaining = Math.max(0, context.getRemainingTimeInMillis());
  const margin = Math.min(marginMs, remaining / 4);
  const inMs = Math.max(0, Math.floor(remaining - margin));
  const controller = new AbortController();
  // Our own error as the reason: the core answers an aborted operation with its signal's reason when it is one.
  const timer = setTimeout(() => controller.abort(new AbortedError('stopped: the Lambda invocation was about to time out')), inMs);
  timer.unref();
  return { signal: controller.signal, inMs, dispose: () => clearTimeout(timer) };
}
