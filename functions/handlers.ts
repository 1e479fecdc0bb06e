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

import type { AbandonedBackup, BackupResult, BackupSuspended } from '../shared/backup/backup.js';
import { chainGoesOn, newChainId } from '../shared/backup/continuation.js';
import { DEFAULT_ABANDON_AFTER_MS, DEFAULT_CONTINUE_MARGIN_MS, DEFAULT_RESTORE_ENTRIES_PER_SECOND, DEFAULT_RESTORE_MBPS } from '../shared/control-plane/function-config.js';
import { UnreadableWorkMessageError, type Continues, type RestoreWorkMessage, type WorkMessage, type WorkRun } from '../shared/control-plane/work-queue.js';
import { AbortedError, ContinuationEndedError, DestinationExistsError, isOpenClawError, PruneStoppedError, RemoteError, type OpenClawError } from '../shared/errors.js';
import { formatBytes } from '../shared/format.js';
import { redact } from '../shared/storage/redact.js';
import { S3_OBJECT_FLAGS, type S3ObjectFlags } from '../shared/storage/s3-object-settings.js';
import type { ManifestNote } from '../shared/archive/manifest.js';
import {
  localOperations,
  namesToBackUp,
  type BackupCommand,
  type BackupsCommand,
  type IdentitySecretReader,
  type RestoreCommand,
  type StorageFlags,
  type SweptBaseDir,
  type TenantOperations,
  type VerifyCommand,
} from '../shared/operations.js';
import type { RestoreChainEnded, RestoreResult, RestoreSuspended } from '../shared/restore/restore.js';
import type { EndedRestoreChain } from '../shared/restore/restore-continuation.js';
import { loadRestoreCheckpoint } from '../shared/restore/restore-continuation.js';
import { unreachableCode } from '../shared/control-plane/aws-errors.js';
import { requestedEndpoint } from '../shared/control-plane/endpoint-allowlist.js';
import type { FunctionConfig } from '../shared/control-plane/function-config.js';
import type { PublishCompletion, Trigger } from './events.js';
import { noMetrics, type OperationMetrics } from './metrics.js';
import { ScheduledOperationError } from './scheduled-error.js';
import { cleanupDeadline, deadlineSignal, leftoversDeadline, type LambdaContext } from './lambda-context.js';
import { scanOwnership, type OwnershipReport } from '../shared/tenant/ownership.js';
import { assertOverwriteAllowed, assertRemoteStorage, assertRemoteStore } from '../shared/control-plane/remote-policy.js';
import {
  continuingAnswer,
  continuingRestoreAnswer,
  errorBody,
  failureResponse,
  isScheduledEvent,
  MAX_LIST_PAGE,
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
  type ParsedListRequest,
} from '../shared/control-plane/protocol.js';
import type { SkippedTenant, TenantSummary } from '../shared/tenant/tenants.js';
import type { BackupPlan } from '../shared/backup/backup-plan.js';
import type { BackupsListing } from '../shared/catalog/backups.js';
import type { PruneResult } from '../shared/catalog/prune.js';
import type { RestorePlan } from '../shared/restore/restore-plan.js';
import type { VerifyResult } from '../shared/restore/verify.js';
import type { PruneCommand } from '../shared/operations.js';

export interface HandlerDeps {
  readonly config: FunctionConfig;
  readonly logger: Logger;
  readonly publish: PublishCompletion;
  /** @default functionOperations(config) */
  readonly operations?: TenantOperations;
  /** The clock for a scheduled payload without an event time. @default () => new Date() */
  readonly now?: () => Date;
  /** Where each operation's metrics go. @default none */
  readonly metrics?: OperationMetrics;
  /** Reads `--identity-secret` (restore, its dry run, verify; Secrets Manager, identity-secrets.ts); absent: the flag is refused. */
  readonly identitySecrets?: IdentitySecretReader;
  /** Queues the next piece of a backup that outlasts its invocation (the work queue); absent: every backup runs in one invocation. */
  readonly continueBackup?: (message: WorkMessage) => Promise<void>;
  /** Queues the next piece of a restore that outlasts its invocation (the restore queue); absent: every restore runs in one invocation. */
  readonly continueRestore?: (message: RestoreWorkMessage) => Promise<void>;
}

/**
 * The core operations on the EFS mount. The gateway that writes the tenants' SQLite databases
 * is another host, so their `-shm` is never trusted: databases in WAL mode are snapshotted from
 * private copies (shared/backup/sqlite-policy.ts), whatever the mount's file system type says.
 * EFS's NFSv4 locks are enforced between its clients, so one in rollback-journal mode is
 * snapshotted in place under SQLite's read lock.
 */
export function functionOperations(config: FunctionConfig, identitySecrets?: IdentitySecretReader): TenantOperations {
  return localOperations(config.tenantsDir, {
    sqliteWriters: 'cross-host',
    sqliteLocksAcrossHosts: true,
    // The backup function ends the chains that broke (abandonBrokenChains); `tenants recover` cannot run through the gateway.
    chainEnder: { by: 'gateway', abandonAfterMs: config.abandonAfterMs ?? DEFAULT_ABANDON_AFTER_MS },
    ...(identitySecrets !== undefined && { identitySecrets }),
    // No shell here (--pipe is refused in remote mode): an age file only `age` reads is downloaded and restored on a machine.
    ageCli: 'download',
  });
}

export type Handler<R> = (event: unknown, context: LambdaContext) => Promise<R>;

/** A scheduled backup retried after its run's archive was stored (the first attempt failed after storing it): nothing to do. */
export interface RunAlreadyStored {
  readonly operation: 'backup';
  readonly skipped: string;
}

export type BackupResponse = BackupResult | BackupSuspended | BackupPlan | RunAlreadyStored | FailureResponse;
export type RestoreResponse = RestoreResult | (RestoreSuspended & FailureResponse) | RestorePlan | VerifyResult | BackupsListing | FailureResponse;
export type PruneResponse = PruneResult | FailureResponse;
export type ListResponse = { readonly tenants: readonly unknown[]; readonly ownership?: OwnershipReport; readonly skipped?: readonly unknown[]; readonly strays?: readonly unknown[]; readonly next?: string } | FailureResponse;

export { ScheduledOperationError } from './scheduled-error.js';

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

/**
 * A piece whose next piece could not be queued (SQS unreachable, access denied): its state
 * stays saved, so the same backup asked again, or its message delivered again, goes on from
 * it. Said as that, with what SQS answered: the bare SDK error read "unexpected error:
 * ECONNREFUSED…", naming neither the work queue, nor that nothing is stored yet, nor what
 * becomes of the chain (it keeps the tenant's other backups out until it is abandoned).
 */
function handOverError(outcome: BackupSuspended, error: unknown, abandonAfterMs: number): OpenClawError {
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
 * A direct invocation's refusal (a usage error, an existing archive) is the caller's answer,
 * seen at their terminal: counted as refused. Every other unsuccessful operation, scheduled
 * and queued ones whatever the reason, is a failure someone must hear of.
 */
function failureOutcome(trigger: Trigger, body: ErrorBody): 'failed' | 'refused' {
  return trigger === 'direct' && body.outcome !== 'failed' ? 'refused' : 'failed';
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
    const maxArchiveBytes = () => restoreLimit(context, config);
    const maxArchiveEntries = (archiveBytes: number | undefined) => restoreEntryLimit(context, config, archiveBytes);
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

/** The restore queue's message for the piece after `suspended`. */
function nextPieceMessage(command: RestoreCommand, suspended: RestoreSuspended): RestoreWorkMessage {
  return {
    version: 1,
    kind: 'restore',
    tenant: suspended.tenant,
    command: {
      from: command.from,
      ...(command.limits !== undefined && { limits: command.limits as Record<string, number> }),
      ...(command.identitySecret !== undefined && { identitySecret: command.identitySecret }),
    },
    continues: { chain: suspended.chain, trigger: 'direct' },
    piece: suspended.pieces + 1,
  };
}

/** Whether the restore chain `chain` still owns the tenant (its checkpoint there, readable). */
async function restoreChainGoesOn(tenantsDir: string, tenant: string, chain: string): Promise<boolean> {
  const checkpoint = await loadRestoreCheckpoint(tenantsDir, tenant).catch(() => undefined);
  return checkpoint?.chain === chain;
}

/**
 * A restore piece whose next piece could not be queued (SQS unreachable, access denied): its
 * checkpoint stays, so its message delivered again goes on from it. Said as that.
 */
function restoreHandOverError(outcome: RestoreSuspended, error: unknown, comesAgain: boolean): OpenClawError {
  return queueingError(
    error,
    `the restore of "${outcome.tenant}" from ${outcome.location} stopped after piece ${outcome.pieces} to go on in another invocation, ` +
      `but its next piece could not be queued on the restore queue: ${queueingFailure(error)}; nothing was moved into the slot: ` +
      (comesAgain ? "the piece's message, delivered again, goes on from where it stopped" : 'the restore has ended, what it staged removed: restore again'),
  );
}

/** Runs a request that publishes no completion event (a dry run, verify, a listing): its result, or the failure response. */
async function answerWithoutEvent<R>(logger: Logger, message: string, event: Record<string, unknown>, run: () => Promise<R>): Promise<R | FailureResponse> {
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

/**
 * One page of `tenants list` (ListRequest.pages): the names or summaries sorted after `after`,
 * at most `limit` (MAX_LIST_PAGE), cut further to what fits a Lambda answer, `next` when more
 * follow; and the skipped tenants, on every page, as many as fit a quarter of the answer (the
 * others counted in `skippedOmitted`), so that no skipped list, however long, makes a page
 * too large to answer. Only the page's tenants are walked.
 */
export async function tenantsPage(operations: TenantOperations, request: ParsedListRequest, maxBytes = MAX_RESPONSE_BYTES, signal?: AbortSignal): Promise<ListPageAnswer> {
  const limit = request.limit ?? MAX_LIST_PAGE;
  const [listed, skipped] = await Promise.all([
    request.names
      ? // The sweep before it stops at the deadline; the names, read at once, are answered whole.
        operations.listNames(signal === undefined ? undefined : { signal }).then((names) => pageOfNames(names, request.after, limit))
      : // One more than the page, to know whether another follows.
        operations.listSummaries({ ...(request.after !== undefined && { after: request.after }), limit: limit + 1, ...(signal !== undefined && { signal }) }).then((summaries) => {
          if (summaries.length > limit) return { tenants: summaries.slice(0, limit), next: summaries[limit - 1]!.name };
          if (signal?.aborted !== true) return { tenants: summaries };
          // The deadline cut the page short: the tenants walked, and the next page after the last.
          const last = summaries.at(-1);
          if (last === undefined) {
            const where = request.after === undefined ? 'the first tenant' : `the first tenant after "${request.after}"`;
            // The base dir's sweep comes first and stops there too: a leftover of many files may have taken the time, which the next listing goes on removing.
            throw new AbortedError(`the list function ran out of time walking ${where} (or removing what interrupted operations left, which the next listing goes on with): list again, or list the tenants without --stack on a host that mounts the tenant volume`);
          }
          return { tenants: summaries, next: last.name };
        }),
    operations.listSkipped(),
  ]);
  const shown = skipped.slice(0, fitting(skipped, maxBytes * SKIPPED_SHARE).count);
  const answer: ListPageAnswer = {
    tenants: listed.tenants,
    ...(listed.next !== undefined && { next: listed.next }),
    ...skippedFields(shown),
    ...(shown.length < skipped.length && { skippedOmitted: skipped.length - shown.length }),
  };
  if (responseBytes(answer) <= maxBytes) return answer;
  // What the page holds besides its tenants, with room for the longest `next`; at least one tenant, for the listing to go on.
  const kept = Math.max(1, fitting(listed.tenants, maxBytes - responseBytes({ ...answer, tenants: [], next: 'x'.repeat(64) })).count);
  if (kept >= listed.tenants.length) return answer;
  const tenants = listed.tenants.slice(0, kept);
  const last = tenants[kept - 1]!;
  return { ...answer, tenants, next: typeof last === 'string' ? last : last.name };
}

/**
 * One page of `tenants backups` (its request's `pages`): the listing of the next `limit`
 * objects (BackupsPage), asked again for a quarter as many while its answer would not fit a
 * Lambda response (keys of a kilobyte each). Each page lists (from after the `after` it was
 * asked for: S3's StartAfter) and inspects only its own objects, so the pages together cost
 * what one listing does.
 */
export async function backupsPage(list: (limit: number) => Promise<BackupsListing>, maxBytes = MAX_RESPONSE_BYTES, limit = BACKUPS_PAGE_OBJECTS): Promise<BackupsListing> {
  for (let objects = limit; ; objects = Math.ceil(objects / 4)) {
    const page = await list(objects);
    if (responseBytes(page) <= maxBytes || objects === 1) return page;
  }
}

/** The objects one page of `tenants backups` inspects: 2,000 entries of up to 2 KB of JSON each fit an answer. */
const BACKUPS_PAGE_OBJECTS = 2_000;

/**
 * The skipped tenants of a list answer, in two fields: `skipped`, the tenant names no command
 * follows (a symlink), which every CLI names and fails on; `strays`, the directories whose
 * names are no tenant names (`Acme`, `acme.old`), which this CLI only warns of. Apart, so that
 * a CLI older than `strays` reads the answer as before them: were they in `skipped`, its
 * `tenants list` would fail (exit 1) for a stray directory, as for a symlinked tenant.
 */
function skippedFields(skipped: readonly SkippedTenant[]): { skipped?: SkippedTenant[]; strays?: SkippedTenant[] } {
  const tenants = skipped.filter((entry) => entry.invalidName !== true);
  const strays = skipped.filter((entry) => entry.invalidName === true);
  return { ...(tenants.length > 0 && { skipped: tenants }), ...(strays.length > 0 && { strays }) };
}

export interface ListPageAnswer {
  readonly tenants: readonly (string | TenantSummary)[];
  readonly next?: string;
  readonly skipped?: readonly SkippedTenant[];
  /** The directories among the skipped whose names are no tenant names (skippedFields). */
  readonly strays?: readonly SkippedTenant[];
  /** The skipped tenants left out of `skipped` to keep the page within a Lambda answer. */
  readonly skippedOmitted?: number;
}

/** The most of a list page its skipped tenants may take (a quarter: ~10,000 of them); the tenants get the rest. */
const SKIPPED_SHARE = 0.25;

/**
 * Ends the chains of backups in pieces that broke (their state not saved for
 * `abandonAfterMs`), each with a failure event. Never throws: a backup is not held up by
 * another's leftovers.
 */
async function abandonBrokenChains(deps: HandlerDeps, operations: TenantOperations, context: LambdaContext, swept: SweptBaseDir | undefined, signal: AbortSignal): Promise<void> {
  if (deps.continueBackup === undefined || operations.abandonStaleBackups === undefined) return;
  try {
    const olderThanMs = deps.config.abandonAfterMs ?? DEFAULT_ABANDON_AFTER_MS;
    // Each chain's event as soon as it is ended: the events too come within the share.
    await operations.abandonStaleBackups(olderThanMs, swept, { signal, onAbandoned: (chain) => chainEnded(deps, context, chain) });
  } catch (error) {
    deps.logger.warn('could not look for abandoned backups', { errorMessage: (error as Error).message });
  }
}

/** The event, log line and metrics of a broken chain that was ended (abandonBrokenChains). */
async function chainEnded(deps: HandlerDeps, context: LambdaContext, chain: AbandonedBackup): Promise<void> {
  const durationMs = Math.max(0, Date.now() - Date.parse(chain.startedAt)) || 0;
  if (chain.completed !== undefined) {
    // Its last piece completed the archive and was killed before it ended the chain: a success, said once, now.
    const { committed, stored } = chain.completed;
    deps.logger.warn('ended a backup whose last piece stored its archive but never ended it', { tenant: chain.tenant, location: chain.location, chain: chain.chain, pieces: chain.pieces, savedAt: chain.savedAt, ...(stored.unrecorded !== undefined && { unrecorded: stored.unrecorded }) });
    await deps.publish(
      {
        operation: 'backup',
        ok: true,
        detail: { tenant: chain.tenant, location: chain.location, trigger: 'queue', requestId: context.awsRequestId, durationMs, bytes: committed.totals.bytes, archiveBytes: stored.bytes, manifestSha256: committed.manifestSha256 },
      },
      timeLeft(context),
    );
    (deps.metrics ?? noMetrics).record({ operation: 'backup', outcome: 'succeeded', trigger: 'queue', tenant: chain.tenant, durationMs, bytes: committed.totals.bytes, archiveBytes: stored.bytes, files: committed.totals.files });
    return;
  }
  const note = chain.abortError === undefined ? '' : `; its multipart upload could not be aborted (${errorBody(chain.abortError).message}): a bucket lifecycle rule AbortIncompleteMultipartUpload removes it`;
  const message = `the backup stopped continuing after ${chain.pieces} invocation(s) (no piece since ${chain.savedAt}): abandoned${note}`;
  deps.logger.error('abandoned a backup that stopped continuing', { tenant: chain.tenant, location: chain.location, chain: chain.chain, pieces: chain.pieces, startedAt: chain.startedAt, savedAt: chain.savedAt });
  await deps.publish(
    {
      operation: 'backup',
      ok: false,
      detail: { tenant: chain.tenant, location: chain.location, trigger: 'queue', requestId: context.awsRequestId, durationMs, error: { code: 'CONTINUATION_ENDED', message } },
    },
    timeLeft(context),
  );
  (deps.metrics ?? noMetrics).record({ operation: 'backup', outcome: 'failed', trigger: 'queue', tenant: chain.tenant, durationMs, errorCode: 'CONTINUATION_ENDED' });
}

/**
 * The failure event, log line and metrics of a restore in pieces that recovery ended (no
 * piece saved it for the abandon time, its first piece was killed before it queued the
 * next, or its checkpoint is damaged): no piece of it will say so, its messages find no
 * checkpoint. Never throws: the operation whose recovery ended it goes on.
 */
function restoreChainEnded(deps: HandlerDeps, context: LambdaContext): (ended: EndedRestoreChain) => Promise<void> {
  return async (ended) => {
    const durationMs = ended.startedAt === undefined ? 0 : Math.max(0, Date.now() - Date.parse(ended.startedAt)) || 0;
    if (ended.committed !== undefined) {
      // Its last piece was killed once its commit's journal was written, before it said so: a success, said once, now.
      const { archiveTenant, bytes, archiveBytes, files, verified, replaced } = ended.committed;
      try {
        deps.logger.warn('finished a restore whose last piece committed but never said so', { tenant: ended.tenant, location: ended.location, chain: ended.chain, pieces: ended.pieces, savedAt: ended.savedAt });
        await deps.publish(
          {
            operation: 'restore',
            ok: true,
            detail: { tenant: ended.tenant, archiveTenant, location: ended.location ?? '', trigger: 'direct', requestId: context.awsRequestId, durationMs, bytes, archiveBytes, verified, replaced, ...(ended.chain !== undefined && { chain: ended.chain }) },
          },
          timeLeft(context),
        );
        (deps.metrics ?? noMetrics).record({ operation: 'restore', outcome: 'succeeded', trigger: 'direct', tenant: ended.tenant, durationMs, bytes, archiveBytes, files });
      } catch (error) {
        deps.logger.warn('could not publish the end of a restore whose last piece committed', { tenant: ended.tenant, errorMessage: (error as Error).message });
      }
      return;
    }
    const why =
      ended.why === 'damaged'
        ? `its checkpoint is damaged (saved ${ended.savedAt})`
        : ended.why === 'not-ours'
          ? `its checkpoint is not one it saved: ${ended.reason ?? 'another user\'s'}`
          : ended.why === 'handing-over'
          ? 'its first piece stopped (killed) before it queued the next'
          : `no piece since ${ended.savedAt}`;
    const message = `the restore stopped continuing${ended.pieces === undefined ? '' : ` after ${ended.pieces} invocation(s)`} (${why}): abandoned, what it had staged removed, the slot holds what it held: restore again`;
    try {
      deps.logger.error('ended a restore that stopped continuing', { tenant: ended.tenant, location: ended.location, chain: ended.chain, pieces: ended.pieces, why: ended.why, savedAt: ended.savedAt });
      await deps.publish(
        {
          operation: 'restore',
          ok: false,
          detail: {
            tenant: ended.tenant,
            location: ended.location ?? '',
            trigger: 'direct',
            requestId: context.awsRequestId,
            durationMs,
            error: { code: 'CONTINUATION_ENDED', message },
            ...(ended.chain !== undefined && { chain: ended.chain }),
          },
        },
        timeLeft(context),
      );
      (deps.metrics ?? noMetrics).record({ operation: 'restore', outcome: 'failed', trigger: 'direct', tenant: ended.tenant, durationMs, errorCode: 'CONTINUATION_ENDED' });
    } catch (error) {
      deps.logger.warn('could not publish the end of an abandoned restore', { tenant: ended.tenant, errorMessage: (error as Error).message });
    }
  };
}

/**
 * The largest archive a restore can finish in the invocation's time left, at the throughput
 * the deployment counts on: a restore cannot continue in another invocation (docs/scale.md),
 * so a larger one is refused before anything is written.
 */
function restoreLimit(context: LambdaContext, config: FunctionConfig): { bytes: number; reason: string } {
  const mbps = config.restoreMBps ?? DEFAULT_RESTORE_MBPS;
  const seconds = restoreSecondsLeft(context, config);
  return {
    bytes: Math.floor(seconds * mbps * 1e6),
    reason: `the restore function can restore in the ${Math.floor(seconds)} s it has left at ${mbps} MB/s (OPENCLAW_RESTORE_MBPS): restore it with the CLI in local mode on a host that mounts the tenant volume`,
  };
}

/**
 * The most entries (files, directories, links) a restore can stage in the invocation's time
 * left, at the rate the deployment counts on (EFS creates a file in ~5 ms), once the archive's
 * bytes are written at the throughput it counts on (the two add up: 30 GB of 150,000 files
 * passed each check alone and needed twice the time): an archive whose footer counts more is
 * refused before anything is written, instead of stopping at the deadline.
 */
function restoreEntryLimit(context: LambdaContext, config: FunctionConfig, archiveBytes: number | undefined): { entries: number; reason: string } {
  const perSecond = config.restoreEntriesPerSecond ?? DEFAULT_RESTORE_ENTRIES_PER_SECOND;
  const mbps = config.restoreMBps ?? DEFAULT_RESTORE_MBPS;
  const left = restoreSecondsLeft(context, config);
  const forBytes = Math.min(left, (archiveBytes ?? 0) / (mbps * 1e6));
  const seconds = left - forBytes;
  const afterBytes = forBytes >= 1 ? `, after the ${Math.round(forBytes)} s its ${formatBytes(archiveBytes ?? 0)} take at ${mbps} MB/s (OPENCLAW_RESTORE_MBPS)` : '';
  return {
    entries: Math.floor(seconds * perSecond),
    reason: `the restore function can stage in the ${Math.floor(seconds)} s it has left at ${perSecond} a second (OPENCLAW_RESTORE_ENTRIES_PER_SECOND)${afterBytes}: restore it with the CLI in local mode on a host that mounts the tenant volume`,
  };
}

/** The seconds a restore may work: the invocation's time left, less its abort margin. */
function restoreSecondsLeft(context: LambdaContext, config: FunctionConfig): number {
  return Math.max(0, context.getRemainingTimeInMillis() - config.abortMarginMs) / 1000;
}

/** What the completion event may still spend: the invocation's time left. */
function timeLeft(context: LambdaContext): { remainingMs: number } {
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
const UNREADABLE_EVENT_REASON = 'its event is not a schedule openclaw can run, as the same event retried would not be';

function readScheduledEvent<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (typeof error === 'object' && error !== null) unreadableScheduledEvents.add(error);
    throw error;
  }
}

function isUnreadableScheduledEvent(error: unknown): boolean {
  return typeof error === 'object' && error !== null && unreadableScheduledEvents.has(error);
}

async function withDeadline<T>(context: LambdaContext, config: FunctionConfig, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
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

/** The storage flags of a backup when they are only how its object is stored (S3ObjectFlags, which a work message carries); 'other' when they hold more (an endpoint, keys). */
function objectFlagsOf(storage: StorageFlags | undefined): S3ObjectFlags | undefined | 'other' {
  if (storage === undefined) return undefined;
  const objectKeys: readonly string[] = S3_OBJECT_FLAGS.map(([key]) => key);
  const given = Object.entries(storage).filter(([, value]) => value !== undefined);
  if (given.some(([key]) => !objectKeys.includes(key))) return 'other';
  return given.length === 0 ? undefined : (Object.fromEntries(given) as S3ObjectFlags);
}

function secretsOf(storage: StorageFlags | undefined): (string | undefined)[] {
  return [storage?.secretKey, storage?.accessKey];
}

function endpointKeys(storage: StorageFlags | undefined): Record<string, unknown> {
  if (storage?.endpoint === undefined) return {};
  return { endpoint: requestedEndpoint(storage.endpoint) ?? 'invalid', staticKeys: storage.accessKey !== undefined };
}

function logFailure(logger: Logger, message: string, error: unknown, body: ErrorBody): void {
  const attributes = { errorCode: body.code, outcome: body.outcome, errorMessage: body.message };
  // Refusals and usage errors are the caller's business; failures and bugs are ours.
  if (body.outcome === 'failed') logger.error(message, { ...attributes, errorName: errorName(error) });
  else logger.warn(message, attributes);
}

function errorName(error: unknown): string {
  if (isOpenClawError(error)) return error.name;
  return error instanceof Error ? error.name : 'Error';
}

/**
 * Lambda answers at most 6 MB, counted in bytes of UTF-8 (a path of CJK characters takes three
 * a character): long note lists are cut (with a note saying so) well before that.
 */
const MAX_RESPONSE_BYTES = 4_000_000;
const KEPT_NOTES = 1000;

const responseBytes = (answer: unknown) => Buffer.byteLength(JSON.stringify(answer));

/** How many of `items`, from the first, fit `budget` bytes as the elements of a JSON array, and the bytes those take. */
function fitting(items: readonly unknown[], budget: number): { count: number; bytes: number } {
  let bytes = 0;
  let count = 0;
  for (const item of items) {
    const next = bytes + responseBytes(item) + 1;
    if (next > budget) break;
    bytes = next;
    count += 1;
  }
  return { count, bytes };
}

/** A long note list, cut (with a note saying so) to what fits a Lambda response. */
function cut(notes: readonly ManifestNote[], kept = KEPT_NOTES): ManifestNote[] {
  return notes.length <= kept
    ? [...notes]
    : [...notes.slice(0, kept), { path: '…', reason: `${notes.length - kept} more not shown (the Lambda response is limited to 6 MB)` }];
}

/**
 * A listing whose JSON would not fit a Lambda response, cut to its newest backups that do
 * (it is newest first), with the number of the others; a listing that fits is unchanged.
 */
export function boundedListing(listing: BackupsListing, maxBytes = MAX_RESPONSE_BYTES): BackupsListing {
  if (responseBytes(listing) <= maxBytes) return listing;
  // What the listing holds besides its entries, with room for the `omitted` count.
  const kept = fitting(listing.backups, maxBytes - responseBytes({ ...listing, backups: [], omitted: listing.backups.length })).count;
  return { ...listing, backups: listing.backups.slice(0, kept), omitted: listing.backups.length - kept };
}

/** Skips of removals left out of a cut prune's answer, and its notes, that the answer names one by one. */
const KEPT_PRUNE_ENTRIES = 100;

/**
 * A prune's result whose JSON would not fit a Lambda response, its decision lists cut to what
 * does (the removed first, in the order they were removed, then the kept, newest first), with
 * how many of each were left out (and the bytes of those to remove); one that fits is
 * unchanged. Each removal shown keeps its skip, if any (a row says skipped, not removed); the
 * skips of those left out, and the notes (which name each skip again), are cut to their first
 * KEPT_PRUNE_ENTRIES, counted: a store whose If-Match never matches skips every removal.
 */
export function boundedPrune(result: PruneResult, maxBytes = MAX_RESPONSE_BYTES): PruneResult {
  if (responseBytes(result) <= maxBytes) return result;
  const notes = result.notes.length <= KEPT_PRUNE_ENTRIES
    ? result.notes
    : [...result.notes.slice(0, KEPT_PRUNE_ENTRIES), `${(result.notes.length - KEPT_PRUNE_ENTRIES).toLocaleString('en-US')} more notes not shown (a Lambda response holds at most 6 MB)`];
  const skipOf = new Map(result.skipped.map((skip) => [skip.location, skip]));
  // What the result holds besides its decisions and skips, with room for the counts.
  let budget = maxBytes - responseBytes({ ...result, notes, keep: [], remove: [], skipped: [], keepOmitted: result.keep.length, keepOmittedUncounted: result.keep.length, removeOmitted: result.remove.length, removeOmittedBytes: Number.MAX_SAFE_INTEGER, skippedOmitted: result.skipped.length });
  // Room for the skips of removals left out to be named (about as long as the first skips).
  const reserved = fitting(result.skipped.slice(0, KEPT_PRUNE_ENTRIES), Number.POSITIVE_INFINITY).bytes;
  budget -= reserved;
  // What was removed first, each with its skip: it is what the operator must see.
  let remove = 0;
  for (const decision of result.remove) {
    const skip = skipOf.get(decision.location);
    const cost = responseBytes(decision) + 1 + (skip === undefined ? 0 : responseBytes(skip) + 1);
    if (cost > budget) break;
    budget -= cost;
    remove += 1;
  }
  const shownSkips = result.remove.slice(0, remove).flatMap((decision) => skipOf.get(decision.location) ?? []);
  const shownLocations = new Set(shownSkips.map((skip) => skip.location));
  budget += reserved;
  const otherSkips = fitting(result.skipped.filter((skip) => !shownLocations.has(skip.location)).slice(0, KEPT_PRUNE_ENTRIES), budget);
  const skipped = [...shownSkips, ...result.skipped.filter((skip) => !shownLocations.has(skip.location)).slice(0, otherSkips.count)];
  budget -= otherSkips.bytes;
  const keep = remove === result.remove.length ? fitting(result.keep, budget).count : 0;
  const omitted = result.remove.slice(remove);
  return {
    ...result,
    keep: result.keep.slice(0, keep),
    remove: result.remove.slice(0, remove),
    skipped,
    notes,
    keepOmitted: result.keep.length - keep,
    keepOmittedUncounted: result.keep.slice(keep).filter((decision) => decision.uncounted === true).length,
    removeOmitted: omitted.length,
    removeOmittedBytes: omitted.reduce((total, decision) => total + decision.bytes, 0),
    ...(skipped.length < result.skipped.length && { skippedOmitted: result.skipped.length - skipped.length }),
  };
}

/** A backup's or restore's result with its note lists cut, as far as needed, to fit a Lambda response. */
export function bounded<T extends BackupResult | RestoreResult>(result: T, maxBytes = MAX_RESPONSE_BYTES): T {
  if (responseBytes(result) <= maxBytes) return result;
  let fitted = result;
  for (const kept of [KEPT_NOTES, 100, 10, 0]) {
    fitted = { ...result, warnings: cut(result.warnings, kept), ...('skipped' in result && { skipped: cut(result.skipped, kept) }) };
    if (responseBytes(fitted) <= maxBytes) break;
  }
  return fitted;
}

/** An event ID as S3 user metadata can hold it (printable ASCII, bounded); otherwise none is stored. */
function storableRunId(eventId: string | undefined): string | undefined {
  return eventId !== undefined && /^[\x21-\x7e]{1,128}$/.test(eventId) ? eventId : undefined;
}
