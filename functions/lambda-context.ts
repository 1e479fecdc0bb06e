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
  return abortedAfter(Math.max(0, Math.floor(remaining - margin)), 'stopped: the Lambda invocation was about to time out');
}

/**
 * A signal aborted `inMs` from now with our own error (`reason`) as its reason: the core
 * answers an aborted operation with its signal's reason when it is one. With no time at all,
 * aborted at once, before the operation's first step (a sweep's first removal).
 */
function abortedAfter(inMs: number, reason: string): Deadline {
  const controller = new AbortController();
  const stop = () => controller.abort(new AbortedError(reason));
  if (inMs === 0) stop();
  const timer = setTimeout(stop, inMs);
  timer.unref();
  return { signal: controller.signal, inMs, dispose: () => clearTimeout(timer) };
}

/**
 * When an operation stopped at its deadline (`deadlineSignal` with the same margin) must have
 * cleaned up by: three quarters of the margin after it, the last quarter kept for the answer
 * and the completion event. What its cleanup has not removed by then is a kill's leftover,
 * which the next command settles; running on, Lambda would end the invocation mid-way, with
 * no answer and no event.
 */
export function cleanupDeadline(context: LambdaContext, marginMs: number): number {
  const remaining = Math.max(0, context.getRemainingTimeInMillis());
  const margin = Math.min(marginMs, remaining / 4);
  return Date.now() + Math.floor(remaining - margin / 4);
}

/**
 * The share of an invocation the removal of what interrupted operations left may take before
 * the work it precedes (a backup's start-up sweep): half of the time left beyond `reservedMs`
 * (the abort margin and the least the work needs). A base dir holding a trash of 20,000 files
 * took the whole invocation on EFS, and past its end; stopped here, the rest is left to the
 * next invocation.
 */
export function leftoversDeadline(context: LambdaContext, reservedMs: number): Deadline {
  const remaining = Math.max(0, context.getRemainingTimeInMillis());
  return abortedAfter(Math.max(0, Math.floor((remaining - reservedMs) / 2)), 'stopped: the time for leftovers of interrupted operations is up');
}
