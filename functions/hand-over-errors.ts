// The error of a piece whose next piece could not be queued (SQS unreachable, access denied),
// saying what SQS answered and what becomes of the chain: the backup's on the work queue, the
// restore's on the restore queue.

import type { BackupSuspended } from '../shared/backup/backup.js';
import { unreachableCode } from '../shared/control-plane/aws-errors.js';
import { RemoteError, type OpenClawError } from '../shared/errors.js';
import type { RestoreSuspended } from '../shared/restore/restore.js';
import { redact } from '../shared/storage/redact.js';

/**
 * A piece whose next piece could not be queued (SQS unreachable, access denied): its state
 * stays saved, so the same backup asked again, or its message delivered again, goes on from
 * it. Said as that, with what SQS answered: the bare SDK error read "unexpected error:
 * ECONNREFUSED…", naming neither the work queue, nor that nothing is stored yet, nor what
 * becomes of the chain (it keeps the tenant's other backups out until it is abandoned).
 */
export function handOverError(outcome: BackupSuspended, error: unknown, abandonAfterMs: number): OpenClawError {
  const abandonedAfter = new Date(Date.now() + abandonAfterMs).toISOString();
  return queueingError(
    error,
    `the backup of "${outcome.tenant}" to ${outcome.location} stopped after piece ${outcome.pieces} to go on in another invocation, ` +
      `but its next piece could not be queued on the work queue: ${queueingFailure(error)}; nothing is stored yet: the same backup asked again ` +
      `(or its message delivered again) goes on from where it stopped, else the backup invocation after ${abandonedAfter} abandons it`,
  );
}

/** Why SendMessage failed, in one clause (its first line, redacted; what to fix when SQS is out of reach). */
function queueingFailure(error: unknown): string {
  const name = (error as { name?: unknown } | undefined)?.name;
  const message = redact(String((error as { message?: unknown } | undefined)?.message ?? error).split('\n')[0]!);
  if (unreachableCode(error) !== undefined) return `cannot reach SQS (${message}): the function's subnets need a route to SQS (an SQS VPC endpoint or NAT)`;
  return `${typeof name === 'string' && name !== 'Error' ? `${name}: ` : ''}${message}`;
}

/** A failed SendMessage as the piece's error, saying `text`: ACCESS_DENIED when SQS refused the role. */
function queueingError(error: unknown, text: string): OpenClawError {
  const name = (error as { name?: unknown } | undefined)?.name;
  return new RemoteError(name === 'AccessDenied' || name === 'AccessDeniedException' ? 'ACCESS_DENIED' : 'AWS_ERROR', text, { cause: error });
}

/**
 * A restore piece whose next piece could not be queued (SQS unreachable, access denied): its
 * checkpoint stays, so its message delivered again goes on from it. Said as that.
 */
export function restoreHandOverError(outcome: RestoreSuspended, error: unknown, comesAgain: boolean): OpenClawError {
  return queueingError(
    error,
    `the restore of "${outcome.tenant}" from ${outcome.location} stopped after piece ${outcome.pieces} to go on in another invocation, ` +
      `but its next piece could not be queued on the restore queue: ${queueingFailure(error)}; nothing was moved into the slot: ` +
      (comesAgain ? "the piece's message, delivered again, goes on from where it stopped" : 'the restore has ended, what it staged removed: restore again'),
  );
}
