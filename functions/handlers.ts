// The handlers as factories over their dependencies (configuration, logger, event
// publisher, the operations), so tests build them with a temporary base dir and mocked
// clients while backup.ts / restore.ts / list.ts wire the real ones at module scope.
//
// Each handler is a thin adapter: validate the event → check what remote mode allows →
// run one core operation (the same `localOperations` the CLI runs, on the EFS mount) under
// a deadline → publish the completion event → record its metrics → answer. The restore
// function also answers `tenants verify` and `tenants backups` (reading archives is its job
// and its role's), and both backup and restore answer their dry runs, without completion
// events; the prune function (S3 only, the one role that may delete) answers `tenants prune`,
// direct or scheduled. Direct invocations get the result or `{ ok: false, error }` (and count
// in the `Failed` metric, which Lambda's Errors never sees); a cron invocation rethrows, so
// Lambda retries it and the failure reaches the on-failure destination and the Errors alarm
// (but for a backup its invocation's deadline stopped, which a retry would not get past, and
// for an event that does not read as a schedule, which a retry would not read either).
// Queued backups (a fan-out) go through queue-handler.ts, over the same `executeBackup`.
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

import type { Logger } from '@aws-lambda-powertools/logger';

import type { BackupResult, BackupSuspended } from '../shared/backup/backup.js';
import { chainGoesOn, newChainId } from '../shared/backup/continuation.js';
import { DEFAULT_ABANDON_AFTER_MS, DEFAULT_CONTINUE_MARGIN_MS } from '../shared/control-plane/function-config.js';
import { UnreadableWorkMessageError, type Continues, type WorkRun } from '../shared/control-plane/work-queue.js';
import { ContinuationEndedError, DestinationExistsError, PruneStoppedError } from '../shared/errors.js';
import { objectFlagsOf } from '../shared/storage/s3-object-settings.js';
import { bounded, boundedListing, boundedPrune, cut, MAX_RESPONSE_BYTES } from '../shared/control-plane/bounded-answers.js';
import { backupsPage, skippedFields, tenantsPage } from '../shared/control-plane/list-pages.js';
import {
  namesToBackUp,
  type BackupCommand,
  type BackupsCommand,
  type RestoreCommand,
  type SweptBaseDir,
  type TenantOperations,
  type VerifyCommand,
} from '../shared/operations.js';
import type { RestoreChainEnded, RestoreResult, RestoreSuspended } from '../shared/restore/restore.js';
import { restoreEntryLimit, restoreLimit } from '../shared/restore/function-limits.js';
import { nextPieceMessage, restoreChainGoesOn } from '../shared/restore/restore-chain.js';
import type { FunctionConfig } from '../shared/control-plane/function-config.js';
import type { Trigger } from './events.js';
import { noMetrics } from './metrics.js';
import { ScheduledOperationError } from './scheduled-error.js';
import { functionOperations, type Handler, type HandlerDeps } from './handler-deps.js';
import { abandonBrokenChains, restoreChainEnded } from './chain-events.js';
import { handOverError, restoreHandOverError } from './hand-over-errors.js';
import { answerWithoutEvent, endpointKeys, errorName, failureOutcome, logFailure, secretsOf } from './reporting.js';
import { isUnreadableScheduledEvent, readScheduledEvent, stoppedByItsDeadline, timeLeft, UNREADABLE_EVENT_REASON, withDeadline } from './invocation.js';
import { cleanupDeadline, leftoversDeadline, type LambdaContext } from './lambda-context.js';
import { scanOwnership, type OwnershipReport } from '../shared/tenant/ownership.js';
import { assertOverwriteAllowed, assertRemoteStorage, assertRemoteStore } from '../shared/control-plane/remote-policy.js';
import {
  continuingAnswer,
  continuingRestoreAnswer,
  errorBody,
  failureResponse,
  isScheduledEvent,
  pageOfNames,
  parseBackupFunctionRequest,
  parseCronPayload,
  parseListRequest,
  parsePruneRequest,
  parseRestoreFunctionRequest,
  parseScheduledPrune,
  isRecord,
  type ErrorBody,
  type FailureResponse,
} from '../shared/control-plane/protocol.js';
import type { BackupPlan } from '../shared/backup/backup-plan.js';
import type { BackupsListing } from '../shared/catalog/backups.js';
import type { PruneResult } from '../shared/catalog/prune.js';
import type { RestorePlan } from '../shared/restore/restore-plan.js';
import type { VerifyResult } from '../shared/restore/verify.js';
import type { PruneCommand } from '../shared/operations.js';

/** A scheduled backup retried after its run's archive was stored (the first attempt failed after storing it): nothing to do. */
export interface RunAlreadyStored {
  readonly operation: 'backup';
  readonly skipped: string;
}

export type BackupResponse = BackupResult | BackupSuspended | BackupPlan | RunAlreadyStored | FailureResponse;
export type RestoreResponse = RestoreResult | (RestoreSuspended & FailureResponse) | RestorePlan | VerifyResult | BackupsListing | FailureResponse;
export type PruneResponse = PruneResult | FailureResponse;
export type ListResponse = { readonly tenants: readonly unknown[]; readonly ownership?: OwnershipReport; readonly skipped?: readonly unknown[]; readonly strays?: readonly unknown[]; readonly next?: string } | FailureResponse;

export { functionOperations, type Handler, type HandlerDeps } from './handler-deps.js';
export { ScheduledOperationError } from './scheduled-error.js';
export { stoppedByItsDeadline } from './invocation.js';
export { bounded, boundedListing, boundedPrune } from '../shared/control-plane/bounded-answers.js';
export { backupsPage, tenantsPage, type ListPageAnswer } from '../shared/control-plane/list-pages.js';

export function backupHandler(deps: HandlerDeps): Handler<BackupResponse> {
  const { config, logger } = deps;
  const operations = deps.operations ?? functionOperations(config);
  const now = deps.now ?? (() => new Date());
  /** A dry run: the same checks of the request, the plan as the answer, no completion event. */
  const planBackup = async (command: BackupCommand, context: LambdaContext): Promise<BackupPlan> => {
    logger.appendKeys({ operation: 'backup-plan', tenant: command.tenant, trigger: 'direct' });
    assertRemoteStorage('backup', command.to, command.storage, config);
    assertOverwriteAllowed(command.overwrite, config);
    const plan = await withDeadline(context, config, (signal) => operations.planBackup(command, { signal }));
    logger.info('backup planned', { location: plan.location, files: plan.files, bytes: plan.bytes, refused: plan.refusal?.code });
    return { ...plan, skipped: cut(plan.skipped), mayBeSkipped: cut(plan.mayBeSkipped) };
  };
  return async (event, context) => {
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
        if (!scheduled) return { command: parseBackupFunctionRequest(event).command };
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
    if (run.outcome === 'skipped' && scheduled) return { operation: 'backup', skipped: run.reason };
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
  };
}

/** What a backup is, once its request is read: the command, and the cron or fan-out run it belongs to. */
export interface PreparedBackup {
  readonly command: BackupCommand;
  /** The scheduled run's event ID, stored with the archive so that a retry of the run knows it as its own. */
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
  | { readonly outcome: 'skipped'; readonly reason: string; readonly body: ErrorBody }
  | { readonly outcome: 'failed'; readonly error: unknown; readonly body: ErrorBody };

/**
 * What the backups of an invocation do first, once: sweep the base dir (every tenant's
 * leftovers settled) and end the chains that broke, both from the one listing the sweep
 * reads; the backups then recover their tenants from those names instead of listing again
 * (safe as for `backup --all`: docs/crash-safety.md). Undefined when the sweep failed or the
 * operations cannot sweep: each backup then sweeps itself. Never throws.
 */
export async function prepareBaseDir(deps: HandlerDeps, context: LambdaContext): Promise<SweptBaseDir | undefined> {
  const operations = deps.operations ?? functionOperations(deps.config);
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
async function inLeftoversShare<T>(deps: HandlerDeps, context: LambdaContext, what: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
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
export function reservedForBackup(deps: HandlerDeps): number {
  return deps.config.abortMarginMs + (deps.continueBackup === undefined ? MIN_BACKUP_TIME_MS : (deps.config.continueMarginMs ?? DEFAULT_CONTINUE_MARGIN_MS));
}

/** Time a message needs at least, besides the abort margin, to be worth starting (a backup that can continue: its continue margin). */
export const MIN_BACKUP_TIME_MS = 30_000;

/**
 * One backup, whatever started it: read the request (`prepare`), check what remote mode
 * allows, run it under the invocation's deadline, log, publish its completion event and
 * record its metrics. `skip` names the errors that mean there was nothing to do (for a queued
 * backup: the tenant vanished, its archive exists): logged and counted as skipped, with no
 * completion event. `sweptBaseDir`: prepareBaseDir's answer for the batch the backup is one
 * of; absent, the backup prepares the base dir itself. `comesAgain`: whether the request is
 * delivered again after it failed so (a queued piece its invocation's deadline stopped is not).
 * Never throws.
 */
export async function executeBackup(
  deps: HandlerDeps,
  context: LambdaContext,
  invokedBy: Trigger,
  prepare: () => PreparedBackup,
  skip: (error: unknown) => string | undefined = () => undefined,
  sweptBaseDir?: SweptBaseDir,
  comesAgain: (error: unknown) => boolean = () => true,
): Promise<BackupRun> {
  const { config, logger, publish } = deps;
  const operations = deps.operations ?? functionOperations(config);
  const metrics = deps.metrics ?? noMetrics;
  const started = Date.now();
  logger.addContext(context);
  const swept = sweptBaseDir ?? (await prepareBaseDir(deps, context));
  let prepared: PreparedBackup | undefined;
  let trigger = invokedBy;
  try {
    prepared = prepare();
    const { command, continues, storedAs } = prepared;
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
      const hooks = { signal, leftoversSignal: leftovers.signal, onRestoreChainEnded: restoreChainEnded(deps, context), ...(swept !== undefined && { sweptBaseDir: swept }), ...(storedAs !== undefined && { runId: storedAs }) };
      return inPieces
        ? operations.backupPiece!(command, { ...hooks, stopWhen: () => context.getRemainingTimeInMillis() < margin, ...(continues !== undefined && { chain: continues.chain }) })
        : operations.backup(command, hooks);
    }).finally(() => leftovers.dispose());
    if ('suspended' in outcome) {
      const run: WorkRun = prepared.run ?? { id: context.awsRequestId, time: outcome.createdAt, template: command.to, ...(prepared.cronName !== undefined && { cronName: prepared.cronName }) };
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
        requestId: context.awsRequestId,
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
      logger.info('backup skipped', { reason, errorCode: body.code, errorMessage: body.message });
      metrics.record({ operation: 'backup', outcome: 'skipped', trigger, tenant, durationMs, errorCode: body.code, reason, ...runKeys(prepared) });
      return { outcome: 'skipped', reason, body };
    }
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
        requestId: context.awsRequestId,
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

export function restoreHandler(deps: HandlerDeps): Handler<RestoreResponse> {
  const { config, logger } = deps;
  const operations = deps.operations ?? functionOperations(config, deps.identitySecrets);
  const reads = readHandlers(config, logger, operations);
  return async (event, context) => {
    logger.addContext(context);
    if (isRecord(event) && (event.operation !== undefined || event.dryRun === true)) {
      return answerWithoutEvent(logger, 'request failed', event, async () => {
        const request = parseRestoreFunctionRequest(event);
        if (request.kind === 'verify') return reads.verify(request.command, context);
        if (request.kind === 'backups') return request.pages ? reads.backupsPage(request.command, request.after, context) : reads.backups(request.command, context);
        return reads.planRestore(request.command, context);
      });
    }
    const run = await executeRestore({ ...deps, operations }, context, () => ({ command: parseRestoreFunctionRequest(event).command as RestoreCommand }));
    if (run.outcome === 'continued') return continuingRestoreAnswer(run.result);
    if (run.outcome === 'succeeded') return run.result;
    // A direct request names no chain: only a queued piece finds its chain ended.
    return { ok: false, error: run.outcome === 'failed' ? run.body : errorBody(new ContinuationEndedError('the restore has ended')) };
  };
}

/** What one restore, or one piece of a restore in pieces, came to. */
export type RestoreRun =
  | { readonly outcome: 'succeeded'; readonly result: RestoreResult }
  | { readonly outcome: 'continued'; readonly result: RestoreSuspended }
  | { readonly outcome: 'chain-ended'; readonly result: RestoreChainEnded }
  /** `comesAgain`: the chain goes on from its checkpoint when the message is delivered again (a piece that wrote nothing, or could not hand over). */
  | { readonly outcome: 'failed'; readonly error: unknown; readonly body: ErrorBody; readonly comesAgain: boolean };

/** A restore to run: the request's command, and for a later piece the chain and tenant it goes on with (the restore queue's message). */
export interface PreparedRestore {
  readonly command: RestoreCommand;
  readonly continues?: { readonly chain: string; readonly tenant: string; readonly piece?: number };
}

/**
 * One restore, direct or a queued piece: in pieces when the function has a restore queue to
 * hand over to and the request names no store of its own (its next piece needs only what the
 * message carries: no endpoint or keys of the caller's). A restore in pieces stops between two
 * entries when the time left falls under the abort margin plus the continue margin, keeps its
 * staging and checkpoint on the tenant volume (restore-continuation.ts) and queues its next
 * piece; the archive is then not refused for its entries, it continues, but still for bytes
 * more than one invocation reads (each piece reads it from its start, the last one whole). The
 * completion event comes once, from the piece that commits or the one that ends the chain failing.
 */
export async function executeRestore(deps: HandlerDeps & { readonly operations: TenantOperations }, context: LambdaContext, prepare: () => PreparedRestore): Promise<RestoreRun> {
  const { config, logger, publish, operations } = deps;
  const metrics = deps.metrics ?? noMetrics;
  const started = Date.now();
  let prepared: PreparedRestore | undefined;
  try {
    prepared = prepare();
    const { command, continues } = prepared;
    const tenantKey = continues?.tenant ?? command.as;
    logger.appendKeys({ operation: 'restore', trigger: 'direct', ...(tenantKey !== undefined && { tenant: tenantKey }), ...(continues !== undefined && { chain: continues.chain }) });
    assertRemoteStorage('restore', command.from, command.storage, config);
    logger.info(continues === undefined ? 'restore started' : 'restore continues', {
      location: command.from,
      ...endpointKeys(command.storage),
      as: command.as,
      force: command.force === true,
      ...(command.identitySecret !== undefined && { identitySecret: command.identitySecret }),
    });
    const continueRestore = deps.continueRestore;
    const inPieces = continueRestore !== undefined && operations.restorePiece !== undefined && objectFlagsOf(command.storage) === undefined;
    if (continues !== undefined && !inPieces) throw new ContinuationEndedError(`this function cannot continue the restore of "${continues.tenant}" (no restore queue)`);
    const margin = config.abortMarginMs + (config.continueMarginMs ?? DEFAULT_CONTINUE_MARGIN_MS);
    // The core verifies every entry against the archive's manifest in a staging area before
    // it replaces anything in the tenant base dir: exactly what local mode does.
    // Asked once the leftovers were swept: what the restore can finish in the time then left.
    const maxArchiveBytes = () => restoreLimit(context.getRemainingTimeInMillis(), config);
    const maxArchiveEntries = (archiveBytes: number | undefined) => restoreEntryLimit(context.getRemainingTimeInMillis(), config, archiveBytes);
    const cleanupBy = cleanupDeadline(context, config.abortMarginMs);
    // What interrupted operations left gets its share of the invocation, not the whole (a trash of 20,000 files had answered past its end).
    const leftovers = leftoversDeadline(context, config.abortMarginMs + MIN_BACKUP_TIME_MS);
    /** A restore's completion event, log line and metrics: sent by the last piece of a chain before it removes the checkpoint. */
    let told = false;
    const tellRestored = async (restored: RestoreResult): Promise<void> => {
      if (told) return;
      told = true;
      const result = bounded(restored);
      logger.info('restore finished', {
        tenant: result.tenant,
        archiveTenant: result.archiveTenant,
        location: result.location,
        files: result.files,
        bytes: result.bytes,
        archiveBytes: result.archiveBytes,
        durationMs: result.durationMs,
        verified: result.verified,
        replaced: result.replaced,
      });
      await publish({
        operation: 'restore',
        ok: true,
        detail: {
          tenant: result.tenant,
          archiveTenant: result.archiveTenant,
          location: result.location,
          trigger: 'direct',
          requestId: context.awsRequestId,
          durationMs: result.durationMs,
          bytes: result.bytes,
          archiveBytes: result.archiveBytes,
          verified: result.verified,
          replaced: result.replaced,
          ...(continues !== undefined && { chain: continues.chain }),
        },
      }, timeLeft(context));
      metrics.record({ operation: 'restore', outcome: 'succeeded', trigger: 'direct', tenant: result.tenant, durationMs: result.durationMs, bytes: result.bytes, archiveBytes: result.archiveBytes, files: result.files });
    };
    const outcome = await withDeadline(context, config, (signal) => {
      const hooks = { signal, cleanupBy, leftoversSignal: leftovers.signal, onRestoreChainEnded: restoreChainEnded(deps, context) };
      if (!inPieces) return operations.restore(command, { ...hooks, maxArchiveBytes, maxArchiveEntries });
      const pieces = {
        chain: continues?.chain ?? newChainId(),
        // The writes queued on EFS finish before the piece hands over: up to 4,096 files, a minute or more.
        suspend: (backlogMs: number) => context.getRemainingTimeInMillis() < margin + backlogMs,
        ...(continues !== undefined && { resume: { tenant: continues.tenant, ...(continues.piece !== undefined && { piece: continues.piece }) } }),
        // Under the tenant's lock: a first piece killed before it had handed over leaves a chain
        // recovery ends (no message of it comes again); a later one's message comes again and hands over again.
        handOver: (suspended: RestoreSuspended) =>
          continueRestore!(nextPieceMessage(command, suspended)).catch((error: unknown) => {
            throw restoreHandOverError(suspended, error, continues !== undefined);
          }),
        onCommitted: tellRestored,
      };
      // Every piece reads the archive from its start, the last one all of it: its bytes must
      // still fit one invocation; its entries (the staging) need not.
      return operations.restorePiece!(command, { ...hooks, maxArchiveBytes, pieces });
    }).finally(() => leftovers.dispose());
    if ('chainEnded' in outcome) {
      if (outcome.alreadyRun === true) {
        logger.info('restore piece skipped: a delivery of a piece already run (its chain goes on past it, its next piece queued)', { chain: outcome.chain, piece: continues?.piece });
      } else {
        logger.info('restore piece skipped: its chain has ended (completed, failed or abandoned) before this piece was read', { chain: outcome.chain });
      }
      return { outcome: 'chain-ended', result: outcome };
    }
    if ('suspended' in outcome) {
      logger.info('restore piece done, the next is queued', { location: outcome.location, chain: outcome.chain, pieces: outcome.pieces, written: outcome.written, durationMs: outcome.durationMs });
      return { outcome: 'continued', result: outcome };
    }
    await tellRestored(outcome);
    return { outcome: 'succeeded', result: bounded(outcome) };
  } catch (error) {
    const command = prepared?.command;
    const continues = prepared?.continues;
    const tenant = continues?.tenant ?? command?.as ?? (error instanceof UnreadableWorkMessageError ? error.tenant : undefined) ?? null;
    const body = errorBody(error, secretsOf(command?.storage));
    logFailure(logger, 'restore failed', error, body);
    // A later piece that failed without ending its chain (it wrote nothing, S3 unreachable): its
    // message comes again and the chain goes on; the chain's end is its one completion event.
    if (continues !== undefined && (await restoreChainGoesOn(config.tenantsDir, continues.tenant, continues.chain))) {
      logger.warn('restore piece failed; its chain goes on from its checkpoint when the message comes again', { chain: continues.chain, errorCode: body.code });
      metrics.record({ operation: 'restore', outcome: 'failed', trigger: 'direct', tenant, durationMs: Date.now() - started, errorCode: body.code });
      return { outcome: 'failed', error, body, comesAgain: true };
    }
    await publish({
      operation: 'restore',
      ok: false,
      detail: {
        tenant,
        location: command?.from ?? '',
        trigger: 'direct',
        requestId: context.awsRequestId,
        durationMs: Date.now() - started,
        error: { code: body.code, message: body.message },
        ...(continues !== undefined && { chain: continues.chain }),
      },
    }, timeLeft(context));
    metrics.record({ operation: 'restore', outcome: continues === undefined ? failureOutcome('direct', body) : 'failed', trigger: 'direct', tenant, durationMs: Date.now() - started, errorCode: body.code });
    return { outcome: 'failed', error, body, comesAgain: false };
  } finally {
    logger.resetKeys();
  }
}

/** What the restore function answers besides restores: verify, the listing of backups, a restore's dry run. */
function readHandlers(config: FunctionConfig, logger: Logger, operations: TenantOperations) {
  return {
    async verify(command: VerifyCommand, context: LambdaContext): Promise<VerifyResult> {
      logger.appendKeys({ operation: 'verify', trigger: 'direct' });
      assertRemoteStorage('restore', command.from, command.storage, config);
      logger.info('verify started', { location: command.from, ...endpointKeys(command.storage), ...(command.identitySecret !== undefined && { identitySecret: command.identitySecret }) });
      const result = await withDeadline(context, config, (signal) => operations.verify(command, { signal }));
      logger.info('verify finished', { location: result.location, tenant: result.tenant, files: result.files, archiveBytes: result.archiveBytes, durationMs: result.durationMs, verified: result.verified });
      return { ...result, warnings: cut(result.warnings) };
    },
    async backups(command: BackupsCommand, context: LambdaContext): Promise<BackupsListing> {
      logger.appendKeys({ operation: 'backups', tenant: command.tenant, trigger: 'direct' });
      assertRemoteStore('list', command.in, command.storage, config);
      const listing = await withDeadline(context, config, (signal) => operations.listBackups(command, { signal }));
      logger.info('listed backups', { location: listing.location, count: listing.backups.length });
      return boundedListing(listing);
    },
    async backupsPage(command: BackupsCommand, after: string | undefined, context: LambdaContext): Promise<BackupsListing> {
      logger.appendKeys({ operation: 'backups', tenant: command.tenant, trigger: 'direct' });
      assertRemoteStore('list', command.in, command.storage, config);
      const page = await withDeadline(context, config, (signal) => backupsPage((limit) => operations.listBackups({ ...command, page: { ...(after !== undefined && { after }), limit } }, { signal })));
      logger.info('listed a page of backups', { location: page.location, after, count: page.backups.length, otherObjects: page.otherObjects, more: page.next !== undefined });
      return page;
    },
    async planRestore(command: RestoreCommand, context: LambdaContext): Promise<RestorePlan> {
      logger.appendKeys({ operation: 'restore-plan', trigger: 'direct', ...(command.as !== undefined && { tenant: command.as }) });
      assertRemoteStorage('restore', command.from, command.storage, config);
      const plan = await withDeadline(context, config, (signal) => operations.planRestore(command, { signal }));
      logger.info('restore planned', { location: plan.location, tenant: plan.tenant, files: plan.files, refused: plan.refusal?.code });
      return { ...plan, warnings: cut(plan.warnings) };
    },
  };
}

/**
 * The prune function: a direct `tenants prune` (dry run or not) or a cron rule's scheduled
 * prune, only ever in the backup bucket (within its key prefix). A scheduled failure is
 * rethrown, as a scheduled backup's is. Each prune is counted (the prune-failures alarm) but
 * a dry run: it removes nothing, and its caller reads its answer.
 */
export function pruneHandler(deps: HandlerDeps): Handler<PruneResponse> {
  const { config, logger, publish } = deps;
  const operations = deps.operations ?? functionOperations(config);
  const metrics = deps.metrics ?? noMetrics;
  return async (event, context) => {
    const started = Date.now();
    logger.addContext(context);
    const scheduled = isScheduledEvent(event);
    const trigger: Trigger = scheduled ? 'schedule' : 'direct';
    let command: PruneCommand | undefined;
    let cronName: string | undefined;
    let bounded = false;
    try {
      if (scheduled) {
        const request = readScheduledEvent(() => parseScheduledPrune(event));
        command = request.command;
        cronName = request.cronName;
        logger.appendKeys({ cronName, eventId: request.eventId });
      } else {
        ({ command, bounded } = parsePruneRequest(event));
      }
      logger.appendKeys({ operation: 'prune', tenant: command.tenant, trigger });
      assertRemoteStore('prune', command.in, command.storage, config);
      logger.info('prune started', { location: command.in, ...endpointKeys(command.storage), keep: command.keep, dryRun: command.dryRun === true });
      const result = await withDeadline(context, config, (signal) => operations.prune(command!, { signal }));
      logger.info('prune finished', { location: result.location, kept: result.keep.length, removed: result.removed, skipped: result.skipped.length, dryRun: result.dryRun, refused: result.refusal !== undefined });
      if (!result.dryRun) {
        await publish(
          {
            operation: 'prune',
            ok: true,
            detail: {
              tenant: result.tenant,
              location: result.location,
              trigger,
              ...(cronName !== undefined && { cronName }),
              requestId: context.awsRequestId,
              durationMs: Date.now() - started,
              kept: result.keep.length,
              removed: result.removed,
              archiveBytes: result.bytesRemoved,
            },
          },
          timeLeft(context),
        );
      }
      if (!result.dryRun) metrics.record({ operation: 'prune', outcome: 'succeeded', trigger, tenant: result.tenant, durationMs: Date.now() - started, ...(cronName !== undefined && { cronName }) });
      // A caller of an older version reads every decision from the lists: it gets them whole.
      // A schedule's answer, which no one reads, is cut too: Lambda fails an answer over 6 MB
      // (an error after the prune ran, and two retries).
      return bounded || scheduled ? boundedPrune(result) : result;
    } catch (error) {
      const body = errorBody(error, secretsOf(command?.storage));
      logFailure(logger, 'prune failed', error, body);
      // A dry run refused before its command was read (a field this version does not know: cron add's field check) is one too.
      if ((command?.dryRun ?? (isRecord(event) && event.dryRun === true)) !== true) {
        // Counted before the event is sent: an answered scheduled failure (below) raises no Errors, only this.
        metrics.record({ operation: 'prune', outcome: failureOutcome(trigger, body), trigger, tenant: command?.tenant ?? null, durationMs: Date.now() - started, errorCode: body.code, ...(cronName !== undefined && { cronName }) });
        await publish(
          {
            operation: 'prune',
            ok: false,
            detail: {
              tenant: command?.tenant ?? null,
              location: command?.in ?? '',
              trigger,
              ...(cronName !== undefined && { cronName }),
              requestId: context.awsRequestId,
              durationMs: Date.now() - started,
              error: { code: body.code, message: body.message },
            },
          },
          timeLeft(context),
        );
      }
      // Stopped by the deadline before it removed anything (a listing of more objects than the
      // invocation can inspect): each of Lambda's two retries would list the same into the same
      // deadline. Answered, not thrown; still counted (Failed: the prune-failures alarm), announced and logged as a failure. One
      // stopped after some removals is retried: the next goes on with the rest.
      if (scheduled && stoppedByItsDeadline(error) && !(error instanceof PruneStoppedError)) {
        logger.error('scheduled prune not retried', { errorCode: body.code, reason: "it ran out of the invocation's time before it removed anything, as a retry would" });
        return { ok: false, error: body };
      }
      if (scheduled && isUnreadableScheduledEvent(error)) {
        logger.error('scheduled prune not retried', { errorCode: body.code, reason: UNREADABLE_EVENT_REASON });
        return { ok: false, error: body };
      }
      if (scheduled) throw new ScheduledOperationError(body, errorName(error));
      return { ok: false, error: body };
    } finally {
      logger.resetKeys();
    }
  };
}

export function listHandler(deps: Omit<HandlerDeps, 'publish'>): Handler<ListResponse> {
  const { config, logger } = deps;
  const operations = deps.operations ?? functionOperations(config);
  return async (event, context) => {
    logger.addContext(context);
    try {
      const request = parseListRequest(event);
      if (request.ownership) {
        // The sweep before the listing stops at the deadline too (leftovers of many files took the whole invocation).
        const { tenants, ownership, skipped } = await withDeadline(context, config, async (signal) => {
          const [names, skippedNames] = await Promise.all([operations.listNames({ signal }), operations.listSkipped()]);
          return {
            tenants: names,
            skipped: skippedNames,
            ownership: await scanOwnership(config.tenantsDir, names, { expected: { uid: request.expectUid, gid: request.expectGid }, signal }),
          };
        });
        logger.info('listed tenant ownership', { count: tenants.length, mismatched: ownership.mismatched, complete: ownership.complete, skipped: skipped.length });
        // What doctor warns of besides: names in the base dir that no backup covers.
        return { tenants, ownership, ...(skipped.length > 0 && { skipped: skipped.slice(0, 20) }) };
      }
      if (request.pages) {
        // Walked until the deadline: a shorter page, the CLI asks for the next (tenants of many files on EFS take minutes).
        const page = await withDeadline(context, config, (signal) => tenantsPage(operations, request, MAX_RESPONSE_BYTES, signal));
        logger.info('listed a page of tenants', { names: request.names, after: request.after, count: page.tenants.length, more: page.next !== undefined, skipped: page.skipped?.length ?? 0 });
        return page;
      }
      if (request.after !== undefined || request.limit !== undefined) {
        // The fan-out's (and the monitor's) pages: a skipped tenant among them, so its backup fails by name.
        // Its sweep of the base dir stops at the deadline (a trash of 20,000 files took the whole invocation, and the fan-out got no page); the names are answered whole.
        const page = pageOfNames(await withDeadline(context, config, (signal) => namesToBackUp(operations, signal)), request.after, request.limit);
        logger.info('listed a page of tenant names', { after: request.after, count: page.tenants.length, more: page.next !== undefined });
        return page;
      }
      // An older CLI's whole listing: the names' sweep stops at the deadline (the names are answered whole); summaries are never answered in part.
      const [tenants, skipped] = await withDeadline(context, config, (signal) => Promise.all([request.names ? operations.listNames({ signal }) : operations.listSummaries(), operations.listSkipped()]));
      logger.info('listed tenants', { names: request.names, count: tenants.length, skipped: skipped.length });
      if (skipped.length > 0) logger.warn('tenants skipped by the listing', { skipped });
      return { tenants, ...skippedFields(skipped) };
    } catch (error) {
      const body = errorBody(error);
      logFailure(logger, 'list failed', error, body);
      return failureResponse(error);
    }
  };
}

/** An event ID as S3 user metadata can hold it (printable ASCII, bounded); otherwise none is stored. */
function storableRunId(eventId: string | undefined): string | undefined {
  return eventId !== undefined && /^[\x21-\x7e]{1,128}$/.test(eventId) ? eventId : undefined;
}
