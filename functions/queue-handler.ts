// The backup function's other door: batches of work queue messages (control-plane/
// work-queue.ts), handed over by its SQS event source mapping, which runs at most
// MaximumConcurrency of them at once (infra/backup-fanout.ts). Each message is one tenant's
// backup, run by the same `executeBackup` as a direct or scheduled one (backup-handler.ts), encrypted
// to the message's recipients when it carries any.
//
// The answer is the mapping's partial batch response: a message that failed is named in
// `batchItemFailures`, so only it comes back (after the queue's visibility timeout: the
// back-off) and, after its last attempt, goes to the work DLQ; the others are deleted. One
// tenant's failure never touches another's. These outcomes are not failures, since another try
// cannot change them and a thousand of them must not look like an outage: a tenant that
// vanished between the fan-out's list and its backup, and an archive that already exists
// (an earlier attempt, or a repeated fan-out, wrote it); and the same backup running in another
// invocation (SQS delivered its message twice: its lock names the same archive). All are
// logged and counted as skipped; an archive that exists with this message's run in its metadata
// (a first delivery killed after storing it, before its event) gets its success event then. A message of a version, kind or field this function does not
// know is handed back, so it ends in the DLQ intact, for a redrive once a function that
// reads it is deployed: no tenant's failure, so no completion event (each receive sent one),
// logged on each receive and counted in Failed on its first (handBackNewerMessage). Any other message that cannot be read (not JSON, a field of the wrong
// type) never will: it is a failure (counted in Failed, its failure event sent, logged with its
// body) but is not handed back, as three receives of it would fail alike.
// A backup its invocation's deadline stopped (one that cannot continue in pieces: one file
// longer than a piece) is a failure (counted in Failed, its failure event sent) but is not
// handed back: each of the queue's further receives would run into the same deadline. Unless
// another backup of the batch ran before it in the invocation: it had only the time left, and
// is handed back for a receive of its own. And a piece of a chain is handed back: stopped
// before it wrote (something slow, the tenant volume), its chain's state is as it started,
// which the next receive goes on from (not handed back, nothing continued it: the tenant busy,
// its backups refused, until the chain was abandoned a day later with a second failure event);
// stopped as it wrote (a file longer than a piece), its upload was aborted and its chain
// ended, one failure event: delivered again, it is skipped.
// A piece whose chain's state it finds damaged ends the chain (one failure event) and is not
// handed back either: another receive would find nothing to continue.
// The base dir is listed once for the batch (prepareBaseDir: the sweep and the abandoned
// chains), not once per message: each backup recovers its tenant from those names.

import { DamagedChainEndedError, RecipientsChangedChainEndedError } from '../shared/backup/continuation.js';
import { NewerWorkMessageError, parseWorkMessage, tenantNamedIn, UnreadableWorkMessageError, type WorkMessage } from '../shared/control-plane/work-queue.js';
import { isOpenClawError, TenantBusyError } from '../shared/errors.js';
import { executeBackup, functionBackupOperations, prepareBaseDir, reservedForBackup, storableRunId } from './backup-handler.js';
import type { BackupSide, Handler, HandlerDeps } from './handler-deps.js';
import { stoppedByItsDeadline } from './invocation.js';
import type { LambdaContext } from './lambda-context.js';
import { withScratchGuard } from './scratch-guard.js';
import { handBackNewerMessage, isSqsBatch, type BatchResponse } from './sqs-batch.js';

/** Why a queued backup had nothing to do, or undefined for a real failure. */
export function queuedBackupSkip(error: unknown): string | undefined {
  if (!isOpenClawError(error)) return undefined;
  if (error.code === 'TENANT_NOT_FOUND') return 'the tenant is gone (it vanished after the fan-out listed it)';
  if (error.code === 'DESTINATION_EXISTS') return 'its archive exists already (an earlier attempt or run wrote it)';
  if (error.code === 'CONTINUATION_ENDED') return 'the backup it continues has ended (completed, failed, or abandoned) before this piece was read';
  // SQS delivers a message twice now and then: the first delivery is still backing up to the same key, and stores it.
  if (error instanceof TenantBusyError && error.sameBackup === true) return 'the same backup (this tenant to this archive) is running in another invocation: a second delivery of its message';
  return undefined;
}

const UNREADABLE_MESSAGE_REASON = 'the message does not read as a work queue message, as it would not on another receive';
/** Of an unreadable message's body in its log line (messages are a few hundred bytes, at most about 5 KB). */
const LOGGED_BODY_CHARS = 8_192;

export function workQueueHandler(deps: HandlerDeps<BackupSide>): Handler<BatchResponse> {
  // Every invocation first removes stopped backups' plaintext from /tmp (scratch-guard.ts).
  const sweepScratchAreas = (deps.operations ?? functionBackupOperations(deps.config)).sweepScratchAreas;
  return (event, context) => withScratchGuard(context, deps.config, deps.logger, sweepScratchAreas, () => runBatch(event, context));
  async function runBatch(event: unknown, context: LambdaContext): Promise<BatchResponse> {
    if (!isSqsBatch(event)) throw new TypeError('not an SQS batch');
    const failures: { itemIdentifier: string }[] = [];
    const swept = await prepareBaseDir(deps, context);
    // A backup started after another of the batch ran had only what that one left of the
    // invocation: the deadline that stopped it is not one a receive of its own would meet.
    let ranBefore = false;
    for (const record of event.Records) {
      if (context.getRemainingTimeInMillis() < reservedForBackup(deps)) {
        // Not started: it comes back after the visibility timeout, in an invocation of its own.
        failures.push({ itemIdentifier: record.messageId });
        continue;
      }
      const attempt = Number(record.attributes?.ApproximateReceiveCount ?? '1');
      const hadTheWholeInvocation = !ranBefore;
      let unreadable: unknown;
      let continuesChain = false;
      const retried = (error: unknown) =>
        error !== unreadable && !(error instanceof DamagedChainEndedError) && !(error instanceof RecipientsChangedChainEndedError) && !(hadTheWholeInvocation && stoppedByItsDeadline(error) && !continuesChain);
      const began = Date.now();
      const run = await executeBackup(
        deps,
        context,
        'queue',
        () => {
          deps.logger.appendKeys({ messageId: record.messageId, attempt });
          let message: WorkMessage;
          try {
            message = parseWorkMessage(record.body);
          } catch (error) {
            if (error instanceof NewerWorkMessageError) throw error;
            unreadable = new UnreadableWorkMessageError((error as Error).message, tenantNamedIn(record.body), { cause: error });
            throw unreadable;
          }
          continuesChain = message.continues !== undefined;
          return {
            command: {
              tenant: message.tenant,
              to: message.to,
              ...(message.overwrite === true && { overwrite: true }),
              ...(message.encryptTo !== undefined && { encryptTo: message.encryptTo }),
              ...(message.storage !== undefined && { storage: message.storage }),
            },
            runId: message.run.id,
            // Stored with the archive: a redelivery of this message (the first delivery killed
            // before it published its success) knows the archive as its run's own.
            ...(storableRunId(message.run.id) !== undefined && { storedAs: message.run.id }),
            run: message.run,
            ...(message.run.cronName !== undefined && { cronName: message.run.cronName }),
            ...(message.continues !== undefined && { continues: message.continues }),
          };
        },
        queuedBackupSkip,
        swept,
        retried,
      );
      ranBefore = true;
      if (run.outcome !== 'failed') continue;
      if (run.error instanceof NewerWorkMessageError) {
        handBackNewerMessage(deps, 'backup', record, attempt, run.body, Date.now() - began);
        failures.push({ itemIdentifier: record.messageId });
      } else if (run.error === unreadable) {
        deps.logger.error('queued backup not retried', { messageId: record.messageId, attempt, errorCode: run.body.code, reason: UNREADABLE_MESSAGE_REASON, body: record.body.slice(0, LOGGED_BODY_CHARS) });
      } else if (run.error instanceof RecipientsChangedChainEndedError) {
        deps.logger.error('queued backup not retried', { messageId: record.messageId, attempt, errorCode: run.body.code, reason: 'asked to encrypt otherwise than its chain began, the chain is ended: another receive would find nothing to continue' });
      } else if (run.error instanceof DamagedChainEndedError) {
        deps.logger.error('queued backup not retried', { messageId: record.messageId, attempt, errorCode: run.body.code, reason: 'its chain\'s state was damaged and the chain is ended: another receive would find nothing to continue' });
      } else if (!retried(run.error)) {
        deps.logger.error('queued backup not retried', { messageId: record.messageId, attempt, errorCode: run.body.code, reason: "it ran out of the invocation's time, as another receive would" });
      } else {
        failures.push({ itemIdentifier: record.messageId });
      }
    }
    return { batchItemFailures: failures };
  }
}
