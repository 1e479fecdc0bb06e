// The restore function's other door: the restore queue (`<prefix>-restore-work`), through
// which a restore that outlasts its invocation hands each next piece to the next invocation
// (restore-handler.ts executeRestore; shared/restore/restore-continuation.ts). Its SQS event source
// mapping hands over one message at a time.
//
// The answer is the mapping's partial batch response. A piece handed back (named in
// `batchItemFailures`) comes again after the visibility timeout and goes on from the chain's
// checkpoint: one that failed before writing anything (S3 unreachable), one whose deadline
// came before it began to read (a late start), one stopped by its deadline after it began
// writing (the next delivery writes again past the checkpoint; MAX_REWRITES, within
// RESTORE_PIECE_RECEIVES, ends such a chain), or one that could not queue its own next
// piece. A piece that ended its chain (succeeded, or failed: its completion event
// sent) is not, and neither is a message that will never read (not JSON, a field of the wrong
// type, no piece number: no chain's piece, so no tenant event; logged with its body and
// counted in Failed). A message of a version, kind or field this
// function does not know is handed back, so it ends in the restore DLQ intact for a redrive,
// with no tenant event (handBackNewerMessage).

import { parseRestoreFunctionRequest } from '../shared/control-plane/protocol.js';
import { NewerWorkMessageError, parseRestoreWorkMessage, UnreadableWorkMessageError } from '../shared/control-plane/work-queue.js';
import type { RestoreCommand } from '../shared/operations.js';
import type { Handler, HandlerDeps, RestoreSide } from './handler-deps.js';
import { executeRestore } from './restore-handler.js';
import { handBackNewerMessage, isSqsBatch, type BatchResponse } from './sqs-batch.js';

/** Of an unreadable message's body in its log line. */
const LOGGED_BODY_CHARS = 8_192;

export function restoreQueueHandler(deps: HandlerDeps<RestoreSide> & { readonly operations: RestoreSide }): Handler<BatchResponse> {
  return async (event, context) => {
    if (!isSqsBatch(event)) throw new TypeError('not an SQS batch');
    const failures: { itemIdentifier: string }[] = [];
    for (const record of event.Records) {
      const attempt = Number(record.attributes?.ApproximateReceiveCount ?? '1');
      let unreadable: unknown;
      const began = Date.now();
      const run = await executeRestore(deps, context, () => {
        deps.logger.appendKeys({ messageId: record.messageId, attempt });
        try {
          const { message, command } = parseRestoreWorkMessage(record.body, (value) => parseRestoreFunctionRequest(value).command as RestoreCommand);
          return { command, continues: { chain: message.continues.chain, tenant: message.tenant, piece: message.piece } };
        } catch (error) {
          if (!(error instanceof NewerWorkMessageError)) unreadable = error instanceof UnreadableWorkMessageError ? error : new UnreadableWorkMessageError((error as Error).message, undefined, { cause: error });
          throw unreadable ?? error;
        }
      });
      if (run.outcome !== 'failed') continue;
      if (run.error instanceof NewerWorkMessageError) {
        handBackNewerMessage(deps, 'restore', record, attempt, run.body, Date.now() - began);
        failures.push({ itemIdentifier: record.messageId });
      } else if (run.error === unreadable) {
        deps.logger.error('queued restore piece not retried', { messageId: record.messageId, attempt, errorCode: run.body.code, reason: 'the message does not read as a restore queue message, as it would not on another receive: no chain\'s piece, so no tenant event', body: record.body.slice(0, LOGGED_BODY_CHARS) });
      } else if (run.comesAgain) {
        failures.push({ itemIdentifier: record.messageId });
      }
    }
    return { batchItemFailures: failures };
  };
}
