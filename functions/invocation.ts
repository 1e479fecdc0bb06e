// What an invocation's deadline and Lambda's retries mean for the operation it runs: the
// operation runs under the deadline (withDeadline), and the errors a retry would meet again
// (the deadline stopping it, a scheduled event that does not read) are known as such.

import type { FunctionConfig } from '../shared/control-plane/function-config.js';
import { AbortedError } from '../shared/errors.js';
import { deadlineSignal, type LambdaContext } from './lambda-context.js';

/** What the completion event may still spend: the invocation's time left. */
export function timeLeft(context: LambdaContext): { remainingMs: number } {
  return { remainingMs: context.getRemainingTimeInMillis() };
}

/** The errors of operations their invocation's deadline stopped (withDeadline). */
const stoppedByDeadline = new WeakSet<object>();

/** Whether a failed backup's error is its invocation's deadline stopping it: another try, with the same time, would be stopped too. */
export function stoppedByItsDeadline(error: unknown): boolean {
  return typeof error === 'object' && error !== null && stoppedByDeadline.has(error);
}

/**
 * The errors of scheduled events that do not read as a backup or prune (a rule not made by
 * `cron add`, a payload edited by hand): each of Lambda's two retries would get the same event.
 */
const unreadableScheduledEvents = new WeakSet<object>();
export const UNREADABLE_EVENT_REASON = 'its event is not a schedule openclaw can run, as the same event retried would not be';

export function readScheduledEvent<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (typeof error === 'object' && error !== null) unreadableScheduledEvents.add(error);
    throw error;
  }
}

export function isUnreadableScheduledEvent(error: unknown): boolean {
  return typeof error === 'object' && error !== null && unreadableScheduledEvents.has(error);
}

export async function withDeadline<T>(context: LambdaContext, config: FunctionConfig, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const deadline = deadlineSignal(context, config.abortMarginMs);
  try {
    return await run(deadline.signal);
  } catch (error) {
    if (deadline.signal.aborted && error instanceof AbortedError) stoppedByDeadline.add(error);
    throw error;
  } finally {
    deadline.dispose();
  }
}

/** Time a message needs at least, besides the abort margin, to be worth starting (a backup that can continue: its continue margin). */
export const MIN_BACKUP_TIME_MS = 30_000;
