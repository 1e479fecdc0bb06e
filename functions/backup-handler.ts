// The backup function's direct and scheduled invocations (backupHandler), and the one backup
// every way of starting one goes through (executeBackup; queue-handler.ts runs the work
// queue's backups and pieces over it).
//
// A backup that would outlast its invocation continues in another (when the function has a
// work queue to hand over to, `continueBackup`): it stops between two entries when the time
// left falls under the abort margin plus `continueMarginMs`, saves where it stands on the
// tenant volume (shared/backup/continuation.ts), and queues its next piece on the work queue,
// whose retries, dead-letter queue and concurrency bound apply to pieces as to backups. The
// completion event comes once, from the piece that completes the archive, with the trigger
// that started it. Every backup invocation first sweeps the base dir and ends chains that
// broke (no piece for `abandonAfterMs`): upload aborted, state removed, a failure event
// published; both from one listing, which the backups after it recover their tenants from
// (one listing per direct or scheduled backup, and one per work queue batch).
//
// Logs are structured (Powertools) and never hold a secret: the event itself is never
// logged, only the tenant, the s3:// location, the endpoint (origin and path) and outcomes.

import type { BackupPlan } from '../shared/backup/backup-plan.js';
import type { BackupResult, BackupSuspended } from '../shared/backup/backup.js';
import { chainGoesOn } from '../shared/backup/continuation.js';
import { bounded, cut } from '../shared/control-plane/bounded-answers.js';
import { DEFAULT_ABANDON_AFTER_MS, DEFAULT_CONTINUE_MARGIN_MS, type FunctionConfig } from '../shared/control-plane/function-config.js';
import { continuingAnswer, errorBody, isScheduledEvent, parseBackupFunctionRequest, parseCronPayload, isRecord, type ErrorBody, type FailureResponse } from '../shared/control-plane/protocol.js';
import { assertOverwriteAllowed, assertRemoteStorage, withStackRecipients } from '../shared/control-plane/remote-policy.js';
import { NewerWorkMessageError, UnreadableWorkMessageError, type Continues, type WorkRun } from '../shared/control-plane/work-queue.js';
import { ContinuationEndedError, CorruptArchiveError, DestinationExistsError } from '../shared/errors.js';
import type { BackupCommand, SweptBaseDir } from '../shared/operations.js';
import { objectFlagsOf } from '../shared/storage/s3-object-settings.js';
import { abandonBrokenChains } from './chain-events.js';
import { restoreChainEnded } from './restore-chain-events.js';
import { operationKeys, type Trigger } from './events.js';
import { handOverError } from './hand-over-errors.js';
import { localBackupOperations, type BackupOperations } from '../shared/backup-operations.js';
import { functionOptions, type BackupSide, type Handler, type HandlerDeps } from './handler-deps.js';
import { isUnreadableScheduledEvent, MIN_BACKUP_TIME_MS, readScheduledEvent, stoppedByItsDeadline, timeLeft, UNREADABLE_EVENT_REASON, withDeadline } from './invocation.js';
import { leftoversDeadline, type LambdaContext } from './lambda-context.js';
import { noMetrics } from './metrics.js';
import { answerWithoutEvent, endpointKeys, errorName, failureOutcome, logFailure, secretsOf } from './reporting.js';
import { ScheduledOperationError } from './scheduled-error.js';
import { withScratchGuard } from './scratch-guard.js';

/** A scheduled backup retried after its run's archive was stored (the first attempt failed after storing it): nothing to do. */
export interface RunAlreadyStored {
  readonly operation: 'backup';
  readonly skipped: string;
}

export type BackupResponse = BackupResult | BackupSuspended | BackupPlan | RunAlreadyStored | FailureResponse;

/** The backup function's side of the operations: its bundle carries no archive reader, extraction or prune. */
export function functionBackupOperations(config: FunctionConfig): BackupOperations {
  return localBackupOperations(config.tenantsDir, functionOptions(config));
}

export function backupHandler(deps: HandlerDeps<BackupSide>): Handler<BackupResponse> {
  const { config, logger } = deps;
  const operations: BackupSide = deps.operations ?? functionBackupOperations(config);
  const now = deps.now ?? (() => new Date());
  /** A dry run: the same checks of the request, the plan as the answer, no completion event. */
  const planBackup = async (requested: BackupCommand, context: LambdaContext): Promise<BackupPlan> => {
    const command = withStackRecipients(requested, config);
    logger.appendKeys({ operation: 'backup-plan', tenant: command.tenant, trigger: 'direct' });
    assertRemoteStorage('backup', command.to, command.storage, config);
    assertOverwriteAllowed(command.overwrite, config);
    const plan = await withDeadline(context, config, (signal) => operations.planBackup(command, { signal }));
    logger.info('backup planned', { location: plan.location, files: plan.files, bytes: plan.bytes, refused: plan.refusal?.code });
    return { ...plan, skipped: cut(plan.skipped), mayBeSkipped: cut(plan.mayBeSkipped) };
  };
  // Every invocation first removes stopped backups' plaintext from /tmp (scratch-guard.ts).
  return (event, context) => withScratchGuard(context, config, logger, operations.sweepScratchAreas, () => invoke(event, context));
  async function invoke(event: unknown, context: LambdaContext): Promise<BackupResponse> {
    const scheduled = isScheduledEvent(event);
    if (isRecord(event) && event.dryRun === true && !scheduled) {
      logger.addContext(context);
      return answerWithoutEvent(logger, 'backup plan failed', event, () => planBackup(parseBackupFunctionRequest(event).command, context));
    }
    let eventId: string | undefined;
    const run = await executeBackup(
      deps,
      context,
      scheduled ? 'schedule' : 'direct',
      () => {
        // A direct backup's archive names its invocation, as its chain's later pieces do (their run).
        if (!scheduled) return { command: parseBackupFunctionRequest(event).command, ...(storableRunId(context.awsRequestId) !== undefined && { storedAs: context.awsRequestId }) };
        const request = readScheduledEvent(() => parseCronPayload(event, now));
        deps.logger.appendKeys({ cronName: request.cronName, eventId: request.eventId });
        deps.logger.info('scheduled backup', { time: request.time.toISOString(), timeSource: request.timeSource, ...(request.timeZone !== undefined && { timeZone: request.timeZone }) });
        eventId = storableRunId(request.eventId);
        return { command: request.command, cronName: request.cronName, ...(eventId !== undefined && { storedAs: eventId }) };
      },
      // Lambda retries a scheduled backup that failed with the same event: when the failure
      // came after the archive was stored (killed at the timeout, say), the retry finds it there.
      (error) => (error instanceof DestinationExistsError && eventId !== undefined && error.storedByRun === eventId ? 'an earlier attempt of this scheduled run stored its archive' : undefined),
    );
    if (run.outcome === 'succeeded') return run.result;
    // A caller reads a direct answer (an older CLI too: it must not take it for a finished backup); a schedule's goes nowhere.
    if (run.outcome === 'continued') return scheduled ? run.result : continuingAnswer(run.result);
    if (run.outcome === 'skipped' && scheduled) return run.failed === true ? { ok: false, error: run.body } : { operation: 'backup', skipped: run.reason };
    // Stopped by the invocation's deadline (a backup in one piece: its own endpoint; or one
    // file longer than a piece): each of Lambda's two retries would run the same backup into
    // the same deadline, 30 more minutes that cannot succeed. Answered, not thrown: the
    // failure is still counted (Failed: the backup-failures alarm), announced and logged.
    if (scheduled && run.outcome === 'failed' && stoppedByItsDeadline(run.error)) {
      logger.error('scheduled backup not retried', { errorCode: run.body.code, reason: "it ran out of the invocation's time, as a retry would" });
      return { ok: false, error: run.body };
    }
    if (scheduled && run.outcome === 'failed' && isUnreadableScheduledEvent(run.error)) {
      logger.error('scheduled backup not retried', { errorCode: run.body.code, reason: UNREADABLE_EVENT_REASON });
      return { ok: false, error: run.body };
    }
    if (scheduled) throw new ScheduledOperationError(run.body, run.outcome === 'failed' ? errorName(run.error) : 'Error');
    return { ok: false, error: run.body };
  }
}

/** What a backup is, once its request is read: the command, and the cron or fan-out run it belongs to. */
export interface PreparedBackup {
  readonly command: BackupCommand;
  /** The run's ID stored with the archive so that a retry of the run knows it as its own: a scheduled run's event ID, a queued backup's fan-out run, a direct invocation's request ID. */
  readonly storedAs?: string;
  readonly cronName?: string;
  readonly runId?: string;
  /** The fan-out run a queued backup belongs to, as its message gave it. */
  readonly run?: WorkRun;
  /** A piece of a backup that started in an earlier invocation. */
  readonly continues?: Continues;
}

/** How one backup ended: done, skipped (a queued backup with nothing to do), or failed. */
export type BackupRun =
  | { readonly outcome: 'succeeded'; readonly result: BackupResult }
  /** Stopped early: its next piece is queued. */
  | { readonly outcome: 'continued'; readonly result: BackupSuspended }
  /** `failed`: what it found instead of this run's backup was no complete backup (its failure event published; no attempt of the run will do better). */
  | { readonly outcome: 'skipped'; readonly reason: string; readonly body: ErrorBody; readonly failed?: true }
  | { readonly outcome: 'failed'; readonly error: unknown; readonly body: ErrorBody };

/**
 * What the backups of an invocation do first, once: sweep the base dir (every tenant's
 * leftovers settled) and end the chains that broke, both from the one listing the sweep
 * reads; the backups then recover their tenants from those names instead of listing again
 * (safe as for `backup --all`: docs/crash-safety.md). Undefined when the sweep failed or the
 * operations cannot sweep: each backup then sweeps itself. Never throws.
 */
export async function prepareBaseDir(deps: HandlerDeps<BackupSide>, context: LambdaContext): Promise<SweptBaseDir | undefined> {
  const operations: BackupSide = deps.operations ?? functionBackupOperations(deps.config);
  deps.logger.addContext(context);
  // Bounded (leftoversDeadline): the tenants not settled by then are swept by the next invocation.
  const swept = await inLeftoversShare(deps, context, 'the sweep of leftovers', (signal) => operations.sweepBaseDir?.({ signal, onRestoreChainEnded: restoreChainEnded(deps, context) }).catch(() => undefined) ?? Promise.resolve(undefined));
  // The broken chains get a share of their own (half of what is then left beyond the backup's
  // needs), so that a big sweep does not keep them waiting: one S3 abort and one event each,
  // 5,000 of them had answered 95 s into a 2 s invocation. Those not reached, the next ends.
  await inLeftoversShare(deps, context, 'the ending of broken backup chains', (signal) => abandonBrokenChains(deps, operations, context, swept, signal));
  return swept;
}

/** Runs `work` within a share of the invocation for leftovers (leftoversDeadline); one stopped there says so: the next invocation goes on with it. */
async function inLeftoversShare<T>(deps: HandlerDeps<unknown>, context: LambdaContext, what: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const share = leftoversDeadline(context, reservedForBackup(deps));
  try {
    const result = await work(share.signal);
    if (share.signal.aborted) deps.logger.warn(`${what} stopped at its share of the invocation; the next invocation goes on with it`, { shareMs: share.inMs });
    return result;
  } finally {
    share.dispose();
  }
}

/** What a backup needs of an invocation besides its leftovers: the abort margin and the least it needs to start (its continue margin when it can continue). */
export function reservedForBackup(deps: HandlerDeps<unknown>): number {
  return deps.config.abortMarginMs + (deps.continueBackup === undefined ? MIN_BACKUP_TIME_MS : (deps.config.continueMarginMs ?? DEFAULT_CONTINUE_MARGIN_MS));
}

/**
 * One backup, whatever started it: read the request (`prepare`), check what remote mode
 * allows, run it under the invocation's deadline, log, publish its completion event and
 * record its metrics. `skip` names the errors that mean there was nothing to do (for a queued
 * backup: the tenant vanished, its archive exists): logged and counted as skipped, with no
 * completion event, unless the archive there names this run (an earlier attempt stored it and
 * was killed before it said so): its success event is published then (storedByThisRun). `sweptBaseDir`: prepareBaseDir's answer for the batch the backup is one
 * of; absent, the backup prepares the base dir itself. `comesAgain`: whether the request is
 * delivered again after it failed so (a queued piece its invocation's deadline stopped is not).
 * Never throws.
 */
export async function executeBackup(
  deps: HandlerDeps<BackupSide>,
  context: LambdaContext,
  invokedBy: Trigger,
  prepare: () => PreparedBackup,
  skip: (error: unknown) => string | undefined = () => undefined,
  sweptBaseDir?: SweptBaseDir,
  comesAgain: (error: unknown) => boolean = () => true,
): Promise<BackupRun> {
  const { config, logger, publish } = deps;
  const operations: BackupSide = deps.operations ?? functionBackupOperations(config);
  const metrics = deps.metrics ?? noMetrics;
  const started = Date.now();
  logger.addContext(context);
  const swept = sweptBaseDir ?? (await prepareBaseDir(deps, context));
  let prepared: PreparedBackup | undefined;
  let trigger = invokedBy;
  try {
    prepared = prepare();
    // Every backup, direct, scheduled, queued or a later piece, encrypted to the stack's recipients too.
    const command = withStackRecipients(prepared.command, config);
    const { continues, storedAs } = prepared;
    trigger = continues?.trigger ?? invokedBy;
    logger.appendKeys({ operation: 'backup', tenant: command.tenant, trigger, ...(prepared.runId !== undefined && { runId: prepared.runId }), ...(continues !== undefined && { chain: continues.chain }) });
    assertRemoteStorage('backup', command.to, command.storage, config);
    assertOverwriteAllowed(command.overwrite, config);
    logger.info(continues === undefined ? 'backup started' : 'backup continues', { location: command.to, ...endpointKeys(command.storage), overwrite: command.overwrite === true, encryptedTo: command.encryptTo?.length ?? 0 });

    // In pieces when there is a queue to hand over to and the message can say everything the
    // next piece needs (no endpoint or keys of the caller's: the function's role reaches S3;
    // how the object is stored, --sse and --storage-class, travels with it).
    const continueBackup = deps.continueBackup;
    const objectFlags = objectFlagsOf(command.storage);
    const inPieces = continueBackup !== undefined && operations.backupPiece !== undefined && objectFlags !== 'other';
    if (continues !== undefined && !inPieces) throw new ContinuationEndedError(`this function cannot continue the backup of "${command.tenant}" (no work queue, or a request with its own storage settings)`);
    const margin = config.abortMarginMs + (config.continueMarginMs ?? DEFAULT_CONTINUE_MARGIN_MS);
    // The tenant's own leftovers (a trash the sweep did not reach) get their share too, not the whole invocation.
    const leftovers = leftoversDeadline(context, reservedForBackup(deps));
    const outcome = await withDeadline(context, config, (signal) => {
      const hooks = { signal, leftoversSignal: leftovers.signal, onRestoreChainEnded: restoreChainEnded(deps, context), ...(swept !== undefined && { sweptBaseDir: swept }), ...(storedAs !== undefined && { runId: storedAs }), ...(storableRunId(continues?.chain ?? context.awsRequestId) !== undefined && { operationId: continues?.chain ?? context.awsRequestId }) };
      return inPieces
        ? operations.backupPiece!(command, { ...hooks, stopWhen: () => context.getRemainingTimeInMillis() < margin, ...(continues !== undefined && { chain: continues.chain }) })
        : operations.backup(command, hooks);
    }).finally(() => leftovers.dispose());
    if ('suspended' in outcome) {
      // The run's ID is the one its archive's metadata names (storedAs): its last piece, delivered
      // again after its chain's state was removed, knows the archive there as this run's own.
      const run: WorkRun = prepared.run ?? { id: storedAs ?? context.awsRequestId, time: outcome.createdAt, template: command.to, ...(prepared.cronName !== undefined && { cronName: prepared.cronName }) };
      await continueBackup!({
        version: 1,
        kind: 'backup',
        tenant: command.tenant,
        to: command.to,
        ...(command.overwrite === true && { overwrite: true }),
        // The recipients (public keys) only: the age stream's key stays in the saved state.
        ...(command.encryptTo !== undefined && command.encryptTo.length > 0 && { encryptTo: command.encryptTo }),
        ...(objectFlags !== undefined && objectFlags !== 'other' && { storage: objectFlags }),
        run,
        continues: { chain: outcome.chain, trigger },
      }).catch((error: unknown) => {
        throw handOverError(outcome, error, config.abandonAfterMs ?? DEFAULT_ABANDON_AFTER_MS);
      });
      logger.info('backup piece done, the next is queued', { location: outcome.location, chain: outcome.chain, pieces: outcome.pieces, files: outcome.files, bytes: outcome.bytes, archiveBytes: outcome.archiveBytes, durationMs: outcome.durationMs });
      return { outcome: 'continued', result: outcome };
    }
    const result = bounded(outcome);
    logger.info('backup finished', {
      location: result.location,
      files: result.files,
      bytes: result.bytes,
      archiveBytes: result.archiveBytes,
      durationMs: result.durationMs,
      skipped: result.skipped.length,
      warnings: result.warnings.length,
    });
    // What the operator should know of a backup that succeeded (its archive left untagged…): a scheduled run has no one reading its answer.
    if (result.notices.length > 0) logger.warn('backup notices', { location: result.location, notices: result.notices });
    await publish({
      operation: 'backup',
      ok: true,
      detail: {
        tenant: result.tenant,
        location: result.location,
        trigger,
        ...runKeys(prepared),
        ...operationKeys(context.awsRequestId, continues?.chain),
        durationMs: result.durationMs,
        bytes: result.bytes,
        archiveBytes: result.archiveBytes,
        manifestSha256: result.manifestSha256,
      },
    }, timeLeft(context));
    metrics.record({ operation: 'backup', outcome: 'succeeded', trigger, tenant: result.tenant, durationMs: result.durationMs, bytes: result.bytes, archiveBytes: result.archiveBytes, files: result.files, ...runKeys(prepared) });
    return { outcome: 'succeeded', result };
  } catch (error) {
    const command = prepared?.command;
    // A work queue message that does not read may still name its tenant: its failure is that tenant's.
    const tenant = command?.tenant ?? (error instanceof UnreadableWorkMessageError ? error.tenant : undefined) ?? null;
    const body = errorBody(error, secretsOf(command?.storage));
    const durationMs = Date.now() - started;
    const reason = skip(error);
    if (reason !== undefined) {
      // The archive an earlier attempt of this same run stored, killed before it published its
      // success (Lambda's retry of a scheduled event, SQS's redelivery of a queued backup, a
      // chain's last piece delivered again after its state was removed): published now, with
      // the operation ID that attempt gave (events are at least once: twice is fine, never is not).
      // Said only for a complete backup as this run writes it (storedByRun), never for bytes cut short under the run's metadata.
      // What an event about the archive an earlier attempt of this run stored says of it. Its operation ID is the one
      // that attempt gave (an SQS redelivery's request ID is another): a backup in one invocation, its request ID; one
      // in pieces, its chain's (a first message delivered again after its chain completed the archive, as the chain's
      // own events said it). A later piece's is its chain's.
      const earlierAttemptKeys = (run: NonNullable<typeof prepared>, earlier: { readonly location: string; readonly operationId?: string }) => ({
        tenant: run.command.tenant,
        location: earlier.location,
        trigger,
        ...runKeys(run),
        ...operationKeys(context.awsRequestId, run.continues?.chain),
        ...(run.continues === undefined && earlier.operationId !== undefined && { operationId: earlier.operationId }),
        durationMs,
      });
      const runId = prepared?.storedAs;
      const found =
        prepared === undefined || runId === undefined || operations.storedByRun === undefined
          ? undefined
          : await withDeadline(context, config, (signal) => operations.storedByRun!(withStackRecipients(prepared!.command, config), runId, error, { signal })).catch(() => undefined);
      if (found !== undefined && 'notWhole' in found && found.undecided === true) {
        // Encrypted or piped bytes its attempt could not tag (a store without tagging such as R2, a denied or throttled
        // call): nothing here tells whether they are whole, and they likely are. Neither success nor failure is said.
        logger.warn('cannot tell whether the archive an earlier attempt of this run stored is whole: no success or failure said; tenants verify tells', { location: found.location, problem: found.notWhole });
      } else if (found !== undefined && 'notWhole' in found && prepared !== undefined) {
        // The run stored no backup, and nothing will: the key is taken (every later attempt
        // is skipped the same way). Its failure, once, under the attempt's operation ID (one
        // outcome per operation: the attempt that stored it published nothing), so that the
        // monitor and whoever follows the events hear of it now, not from the freshness alarm.
        const failure = errorBody(new CorruptArchiveError(`${found.location}: the object an earlier attempt of this run stored there is no complete backup (${found.notWhole}): this run stored no backup of "${prepared.command.tenant}"; back it up again to another key`));
        logger.error('the archive an earlier attempt of this run stored is no complete backup: its failure published', { location: found.location, problem: found.notWhole });
        await publish({
          operation: 'backup',
          ok: false,
          detail: { ...earlierAttemptKeys(prepared, found), error: { code: failure.code, message: failure.message } },
        }, timeLeft(context));
        metrics.record({ operation: 'backup', outcome: 'failed', trigger, tenant, durationMs, errorCode: failure.code, ...runKeys(prepared) });
        return { outcome: 'skipped', reason, body: failure, failed: true };
      }
      const stored = found !== undefined && !('notWhole' in found) ? found : undefined;
      if (stored !== undefined && prepared !== undefined) {
        logger.info('backup stored by an earlier attempt of this run: its success published', { location: stored.location, archiveBytes: stored.bytes });
        await publish({
          operation: 'backup',
          ok: true,
          detail: {
            ...earlierAttemptKeys(prepared, stored),
            archiveBytes: stored.bytes,
            ...(stored.manifestSha256 !== undefined && { manifestSha256: stored.manifestSha256 }),
          },
        }, timeLeft(context));
      }
      logger.info('backup skipped', { reason, errorCode: body.code, errorMessage: body.message });
      // A success said late is a success in the metrics too (the backups-succeeded count, not skipped).
      if (stored !== undefined) metrics.record({ operation: 'backup', outcome: 'succeeded', trigger, tenant, durationMs, archiveBytes: stored.bytes, ...runKeys(prepared) });
      else metrics.record({ operation: 'backup', outcome: 'skipped', trigger, tenant, durationMs, errorCode: body.code, reason, ...runKeys(prepared) });
      return { outcome: 'skipped', reason, body };
    }
    // A work queue message a newer version wrote is no tenant's failure: handed back on every
    // receive until the work DLQ keeps it for a redrive, it is logged and counted by the queue
    // handler (handBackNewerMessage), with no completion event (every receive sent one).
    if (error instanceof NewerWorkMessageError) return { outcome: 'failed', error, body };
    logFailure(logger, 'backup failed', error, body);
    // A piece that failed with its chain's state left as it started (disk full as it saved):
    // its message comes again and the chain goes on; its end (success, or its abandonment)
    // is the backup's one completion event. A message that does not come again ends nothing
    // but its chain's abandonment a day later: its failure is heard now.
    const continues = prepared?.continues;
    if (command !== undefined && continues !== undefined && comesAgain(error) && (await chainGoesOn(config.tenantsDir, command.tenant, continues.chain))) {
      logger.warn('backup piece failed; its chain goes on from its saved state when the message comes again', { chain: continues.chain, errorCode: body.code });
      metrics.record({ operation: 'backup', outcome: failureOutcome(trigger, body), trigger, tenant: command.tenant, durationMs, errorCode: body.code, ...runKeys(prepared) });
      return { outcome: 'failed', error, body };
    }
    await publish({
      operation: 'backup',
      ok: false,
      detail: {
        tenant,
        location: command?.to ?? '',
        trigger,
        ...runKeys(prepared),
        ...operationKeys(context.awsRequestId, prepared?.continues?.chain),
        durationMs,
        error: { code: body.code, message: body.message },
      },
    }, timeLeft(context));
    metrics.record({ operation: 'backup', outcome: failureOutcome(trigger, body), trigger, tenant, durationMs, errorCode: body.code, ...runKeys(prepared) });
    return { outcome: 'failed', error, body };
  } finally {
    logger.resetKeys();
  }
}

function runKeys(prepared: PreparedBackup | undefined): { cronName?: string; runId?: string } {
  return { ...(prepared?.cronName !== undefined && { cronName: prepared.cronName }), ...(prepared?.runId !== undefined && { runId: prepared.runId }) };
}

/** An event ID as S3 user metadata can hold it (printable ASCII, bounded); otherwise none is stored. */
export function storableRunId(eventId: string | undefined): string | undefined {
  return eventId !== undefined && /^[\x21-\x7e]{1,128}$/.test(eventId) ? eventId : undefined;
}
