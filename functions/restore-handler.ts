// The restore function's direct invocations (restoreHandler): a restore, or one of the reads
// it answers besides (verify, the listing of backups, a restore's dry run); and the one restore
// both its doors go through (executeRestore; restore-queue-handler.ts runs the later pieces).
//
// Logs are structured (Powertools) and never hold a secret: the event itself is never
// logged, only the tenant, the s3:// location, the endpoint (origin and path) and outcomes.

import type { Logger } from '@aws-lambda-powertools/logger';

import { newChainId } from '../shared/backup/continuation.js';
import type { BackupsListing } from '../shared/catalog/backups.js';
import { bounded, boundedListing, cut } from '../shared/control-plane/bounded-answers.js';
import { DEFAULT_CONTINUE_MARGIN_MS, type FunctionConfig } from '../shared/control-plane/function-config.js';
import { backupsPage } from '../shared/control-plane/list-pages.js';
import { continuingRestoreAnswer, errorBody, parseRestoreFunctionRequest, isRecord, type ErrorBody, type FailureResponse } from '../shared/control-plane/protocol.js';
import { assertRemoteStorage, assertRemoteStore } from '../shared/control-plane/remote-policy.js';
import { NewerWorkMessageError, UnreadableWorkMessageError } from '../shared/control-plane/work-queue.js';
import { ContinuationEndedError } from '../shared/errors.js';
import type { BackupsCommand, IdentitySecretReader, RestoreCommand, VerifyCommand } from '../shared/operations.js';
import { assertLimitsFitMemory, restoreChainEntryLimit, restoreChainLimit, restoreChainPieceLimit, restoreEntryLimit, restoreLimit } from '../shared/restore/function-limits.js';
import { nextPieceMessage, restoreChainGoesOn } from '../shared/restore/restore-chain.js';
import type { RestorePlan } from '../shared/restore/restore-plan.js';
import type { RestoreChainEnded, RestoreResult, RestoreSuspended } from '../shared/restore/restore.js';
import type { VerifyResult } from '../shared/restore/verify.js';
import { objectFlagsOf } from '../shared/storage/s3-object-settings.js';
import { restoreChainEnded } from './restore-chain-events.js';
import { operationKeys } from './events.js';
import { restoreHandOverError } from './hand-over-errors.js';
import { localRestoreOperations, type RestoreOperations } from '../shared/restore-operations.js';
import { functionOptions, type Handler, type HandlerDeps, type RestoreSide } from './handler-deps.js';
import { MIN_BACKUP_TIME_MS, timeLeft, withDeadline } from './invocation.js';
import { cleanupDeadline, leftoversDeadline, type LambdaContext } from './lambda-context.js';
import { noMetrics } from './metrics.js';
import { answerWithoutEvent, endpointKeys, failureOutcome, logFailure, secretsOf } from './reporting.js';

export type RestoreResponse = RestoreResult | (RestoreSuspended & FailureResponse) | RestorePlan | VerifyResult | BackupsListing | FailureResponse;

/** The restore function's side of the operations: its bundle carries no archive writer, SQLite snapshot or prune. */
export function functionRestoreOperations(config: FunctionConfig, identitySecrets?: IdentitySecretReader): RestoreOperations {
  return localRestoreOperations(config.tenantsDir, functionOptions(config, identitySecrets));
}

export function restoreHandler(deps: HandlerDeps<RestoreSide>): Handler<RestoreResponse> {
  const { config, logger } = deps;
  const operations: RestoreSide = deps.operations ?? functionRestoreOperations(config, deps.identitySecrets);
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
  readonly continues?: { readonly chain: string; readonly tenant: string; readonly piece: number };
}

/**
 * One restore, direct or a queued piece: in pieces when the function has a restore queue to
 * hand over to and the request names no store of its own (its next piece needs only what the
 * message carries: no endpoint or keys of the caller's). A restore in pieces stops between two
 * entries when the time left falls under the abort margin plus the continue margin, keeps its
 * staging and checkpoint on the tenant volume (restore-continuation.ts) and queues its next
 * piece; the archive is then not refused for the entries one invocation stages, it continues,
 * but still for bytes, or entries its footer counts, more than a chain restores (each piece
 * replays what earlier ones wrote: restoreChainLimit, restoreChainEntryLimit). The
 * completion event comes once, from the piece that commits or the one that ends the chain failing.
 */
export async function executeRestore(deps: HandlerDeps<RestoreSide> & { readonly operations: RestoreSide }, context: LambdaContext, prepare: () => PreparedRestore): Promise<RestoreRun> {
  const { config, logger, publish, operations } = deps;
  const metrics = deps.metrics ?? noMetrics;
  const started = Date.now();
  let prepared: PreparedRestore | undefined;
  /** The chain of a restore in pieces (a first piece's new one): its events' operationId, as in the events a recovery sends for it. */
  let chain: string | undefined;
  try {
    prepared = prepare();
    const { command, continues } = prepared;
    const tenantKey = continues?.tenant ?? command.as;
    logger.appendKeys({ operation: 'restore', trigger: 'direct', ...(tenantKey !== undefined && { tenant: tenantKey }), ...(continues !== undefined && { chain: continues.chain }) });
    assertRemoteStorage('restore', command.from, command.storage, config);
    assertLimitsFitMemory(command.limits, config);
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
    if (inPieces) chain = continues?.chain ?? newChainId();
    // The core verifies every entry against the archive's manifest in a staging area before
    // it replaces anything in the tenant base dir: exactly what local mode does.
    // Asked once the leftovers were swept: what the restore can finish in the time then left.
    const maxArchiveBytes = () => restoreLimit(context.getRemainingTimeInMillis(), config);
    const maxArchiveEntries = (archiveBytes: number | undefined) => restoreEntryLimit(context.getRemainingTimeInMillis(), config, archiveBytes);
    // In pieces: what a chain restores, each piece replaying what earlier ones wrote before it writes.
    const maxChainBytes = (archiveBytes: number | undefined) => restoreChainLimit(context.getRemainingTimeInMillis(), config, archiveBytes);
    const maxChainEntries = (archiveBytes: number | undefined) => restoreChainEntryLimit(context.getRemainingTimeInMillis(), config, archiveBytes);
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
          ...operationKeys(context.awsRequestId, chain),
          durationMs: result.durationMs,
          bytes: result.bytes,
          archiveBytes: result.archiveBytes,
          verified: result.verified,
          replaced: result.replaced,
        },
      }, timeLeft(context));
      metrics.record({ operation: 'restore', outcome: 'succeeded', trigger: 'direct', tenant: result.tenant, durationMs: result.durationMs, bytes: result.bytes, archiveBytes: result.archiveBytes, files: result.files });
    };
    const outcome = await withDeadline(context, config, (signal) => {
      const hooks = { signal, cleanupBy, leftoversSignal: leftovers.signal, onRestoreChainEnded: restoreChainEnded(deps, context) };
      if (!inPieces) return operations.restore(command, { ...hooks, maxArchiveBytes, maxArchiveEntries });
      const pieces = {
        chain: chain!,
        // The writes queued on EFS finish before the piece hands over: up to 4,096 files, a minute or more.
        suspend: (backlogMs: number) => context.getRemainingTimeInMillis() < margin + backlogMs,
        ...(continues !== undefined && { resume: { tenant: continues.tenant, piece: continues.piece } }),
        // Under the tenant's lock: a first piece killed before it had handed over leaves a chain
        // recovery ends (no message of it comes again); a later one's message comes again and hands over again.
        handOver: (suspended: RestoreSuspended) =>
          continueRestore!(nextPieceMessage(command, suspended)).catch((error: unknown) => {
            throw restoreHandOverError(suspended, error, continues !== undefined);
          }),
        onCommitted: tellRestored,
        // A later piece: a chain whose pace so far needs more pieces than the abandon time allows ends (an encrypted archive's entries are not counted up front).
        maxPieces: () => restoreChainPieceLimit(context.getRemainingTimeInMillis(), config),
      };
      // Every piece reads the archive from its start, replaying what earlier pieces wrote: its
      // bytes, and its entries where its footer counts them, must fit a chain whose last piece
      // still has time to write, within the pieces the abandon time allows (the first piece
      // judges them).
      return operations.restorePiece!(command, { ...hooks, maxArchiveBytes: maxChainBytes, maxArchiveEntries: maxChainEntries, pieces });
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
    // A restore queue message a newer version wrote is no tenant's failure: handed back on every
    // receive until the restore DLQ keeps it for a redrive, it is logged and counted by the
    // queue handler (handBackNewerMessage), with no completion event (every receive sent one).
    if (error instanceof NewerWorkMessageError) return { outcome: 'failed', error, body, comesAgain: true };
    logFailure(logger, 'restore failed', error, body);
    // A restore queue message that does not read as a chain's piece (no piece number, a field
    // of the wrong type) is no tenant's restore: a tenant event would say "failed" while its
    // real chain, if any, goes on and says "succeeded". The queue handler logs it with its
    // body; counted in Failed, the restore-failures alarm sees it.
    if (error instanceof UnreadableWorkMessageError) {
      metrics.record({ operation: 'restore', outcome: 'failed', trigger: 'direct', tenant, durationMs: Date.now() - started, errorCode: body.code });
      return { outcome: 'failed', error, body, comesAgain: false };
    }
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
        ...operationKeys(context.awsRequestId, continues?.chain ?? chain),
        durationMs: Date.now() - started,
        error: { code: body.code, message: body.message },
      },
    }, timeLeft(context));
    metrics.record({ operation: 'restore', outcome: continues === undefined ? failureOutcome('direct', body) : 'failed', trigger: 'direct', tenant, durationMs: Date.now() - started, errorCode: body.code });
    return { outcome: 'failed', error, body, comesAgain: false };
  } finally {
    logger.resetKeys();
  }
}

/** What the restore function answers besides restores: verify, the listing of backups, a restore's dry run. */
function readHandlers(config: FunctionConfig, logger: Logger, operations: RestoreSide) {
  return {
    async verify(command: VerifyCommand, context: LambdaContext): Promise<VerifyResult> {
      logger.appendKeys({ operation: 'verify', trigger: 'direct' });
      assertRemoteStorage('restore', command.from, command.storage, config);
      assertLimitsFitMemory(command.limits, config);
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
      assertLimitsFitMemory(command.limits, config);
      const plan = await withDeadline(context, config, (signal) => operations.planRestore(command, { signal }));
      logger.info('restore planned', { location: plan.location, tenant: plan.tenant, files: plan.files, refused: plan.refusal?.code });
      return { ...plan, warnings: cut(plan.warnings) };
    },
  };
}
