// The three handlers as factories over their dependencies (configuration, logger, event
// publisher, the operations), so tests build them with a temporary base dir and mocked
// clients while backup.ts / restore.ts / list.ts wire the real ones at module scope.
//
// Each handler is a thin adapter: validate the event → check what remote mode allows →
// run one core operation (the same `localOperations` the CLI runs, on the EFS mount) under
// a deadline → publish the completion event → answer. Direct invocations get the result or
// `{ ok: false, error }`; a cron invocation rethrows, so Lambda retries it and the failure
// reaches the on-failure destination and the Errors alarm.
//
// Logs are structured (Powertools) and never hold a secret: the event itself is never
// logged, only the tenant, the s3:// location, the endpoint's origin and outcomes.

import type { Logger } from '@aws-lambda-powertools/logger';

import type { BackupResult } from '../shared/backup/backup.js';
import { isOpenClawError } from '../shared/errors.js';
import type { ManifestNote } from '../shared/archive/manifest.js';
import { localOperations, type BackupCommand, type IdentitySecretReader, type RestoreCommand, type StorageFlags, type TenantOperations } from '../shared/operations.js';
import type { RestoreResult } from '../shared/restore/restore.js';
import { endpointOrigin, type FunctionConfig } from '../shared/control-plane/function-config.js';
import type { PublishCompletion, Trigger } from './events.js';
import { deadlineSignal, type LambdaContext } from './lambda-context.js';
import { scanOwnership, type OwnershipReport } from '../shared/tenant/ownership.js';
import { assertOverwriteAllowed, assertRemoteStorage } from '../shared/control-plane/remote-policy.js';
import {
  errorBody,
  failureResponse,
  isScheduledEvent,
  parseBackupCommand,
  parseCronPayload,
  parseListRequest,
  parseRestoreCommand,
  type ErrorBody,
  type FailureResponse,
} from '../shared/control-plane/protocol.js';

export interface HandlerDeps {
  readonly config: FunctionConfig;
  readonly logger: Logger;
  readonly publish: PublishCompletion;
  /** @default localOperations(config.tenantsDir) */
  readonly operations?: TenantOperations;
  /** The clock for a scheduled payload without an event time. @default () => new Date() */
  readonly now?: () => Date;
  /** Reads `--identity-secret` (restore; Secrets Manager, identity-secrets.ts); absent: the flag is refused. */
  readonly identitySecrets?: IdentitySecretReader;
}

export type Handler<R> = (event: unknown, context: LambdaContext) => Promise<R>;

export type BackupResponse = BackupResult | FailureResponse;
export type RestoreResponse = RestoreResult | FailureResponse;
export type ListResponse = { readonly tenants: readonly unknown[]; readonly ownership?: OwnershipReport } | FailureResponse;

/** A scheduled backup's failure, rethrown for Lambda: the core error's name, a safe message. */
export class ScheduledOperationError extends Error {
  constructor(body: ErrorBody, name: string) {
    super(`${body.code}: ${body.message}`);
    this.name = name;
  }
}

export function backupHandler(deps: HandlerDeps): Handler<BackupResponse> {
  const { config, logger, publish } = deps;
  const operations = deps.operations ?? localOperations(config.tenantsDir);
  const now = deps.now ?? (() => new Date());
  return async (event, context) => {
    const started = Date.now();
    logger.addContext(context);
    const scheduled = isScheduledEvent(event);
    const trigger: Trigger = scheduled ? 'schedule' : 'direct';
    let command: BackupCommand | undefined;
    let cronName: string | undefined;
    try {
      if (scheduled) {
        const request = parseCronPayload(event, now);
        command = request.command;
        cronName = request.cronName;
        logger.appendKeys({ cronName, eventId: request.eventId });
        logger.info('scheduled backup', { time: request.time.toISOString(), timeSource: request.timeSource });
      } else {
        command = parseBackupCommand(event);
      }
      logger.appendKeys({ operation: 'backup', tenant: command.tenant, trigger });
      assertRemoteStorage('backup', command.to, command.storage, config);
      assertOverwriteAllowed(command.overwrite, config);
      logger.info('backup started', { location: command.to, ...endpointKeys(command.storage), overwrite: command.overwrite === true, encryptedTo: command.encryptTo?.length ?? 0 });

      const result = bounded(await withDeadline(context, config, (signal) => operations.backup(command!, { signal })));
      logger.info('backup finished', {
        location: result.location,
        files: result.files,
        bytes: result.bytes,
        archiveBytes: result.archiveBytes,
        durationMs: result.durationMs,
        skipped: result.skipped.length,
        warnings: result.warnings.length,
      });
      await publish({
        operation: 'backup',
        ok: true,
        detail: {
          tenant: result.tenant,
          location: result.location,
          trigger,
          ...(cronName !== undefined && { cronName }),
          requestId: context.awsRequestId,
          durationMs: result.durationMs,
          bytes: result.bytes,
          archiveBytes: result.archiveBytes,
          manifestSha256: result.manifestSha256,
        },
      }, timeLeft(context));
      return result;
    } catch (error) {
      const body = errorBody(error, secretsOf(command?.storage));
      logFailure(logger, 'backup failed', error, body);
      await publish({
        operation: 'backup',
        ok: false,
        detail: {
          tenant: command?.tenant ?? null,
          location: command?.to ?? '',
          trigger,
          ...(cronName !== undefined && { cronName }),
          requestId: context.awsRequestId,
          durationMs: Date.now() - started,
          error: { code: body.code, message: body.message },
        },
      }, timeLeft(context));
      if (scheduled) throw new ScheduledOperationError(body, errorName(error));
      return { ok: false, error: body };
    } finally {
      logger.resetKeys();
    }
  };
}

export function restoreHandler(deps: HandlerDeps): Handler<RestoreResponse> {
  const { config, logger, publish } = deps;
  const operations = deps.operations ?? localOperations(config.tenantsDir, { ...(deps.identitySecrets !== undefined && { identitySecrets: deps.identitySecrets }) });
  return async (event, context) => {
    const started = Date.now();
    logger.addContext(context);
    let command: RestoreCommand | undefined;
    try {
      command = parseRestoreCommand(event);
      logger.appendKeys({ operation: 'restore', trigger: 'direct', ...(command.as !== undefined && { tenant: command.as }) });
      assertRemoteStorage('restore', command.from, command.storage, config);
      logger.info('restore started', {
        location: command.from,
        ...endpointKeys(command.storage),
        as: command.as,
        force: command.force === true,
        ...(command.identitySecret !== undefined && { identitySecret: command.identitySecret }),
      });

      // The core verifies every entry against the archive's manifest in a staging area before
      // it replaces anything in the tenant base dir: exactly what local mode does.
      const result = bounded(await withDeadline(context, config, (signal) => operations.restore(command!, { signal })));
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
        },
      }, timeLeft(context));
      return result;
    } catch (error) {
      const body = errorBody(error, secretsOf(command?.storage));
      logFailure(logger, 'restore failed', error, body);
      await publish({
        operation: 'restore',
        ok: false,
        detail: {
          tenant: command?.as ?? null,
          location: command?.from ?? '',
          trigger: 'direct',
          requestId: context.awsRequestId,
          durationMs: Date.now() - started,
          error: { code: body.code, message: body.message },
        },
      }, timeLeft(context));
      return { ok: false, error: body };
    } finally {
      logger.resetKeys();
    }
  };
}

export function listHandler(deps: Omit<HandlerDeps, 'publish'>): Handler<ListResponse> {
  const { config, logger } = deps;
  const operations = deps.operations ?? localOperations(config.tenantsDir);
  return async (event, context) => {
    logger.addContext(context);
    try {
      const request = parseListRequest(event);
      if (request.ownership) {
        const tenants = await operations.listNames();
        const ownership = await withDeadline(context, config, (signal) =>
          scanOwnership(config.tenantsDir, tenants, { expected: { uid: request.expectUid, gid: request.expectGid }, signal }),
        );
        logger.info('listed tenant ownership', { count: tenants.length, mismatched: ownership.mismatched, complete: ownership.complete });
        return { tenants, ownership };
      }
      const tenants = request.names ? await operations.listNames() : await operations.listSummaries();
      logger.info('listed tenants', { names: request.names, count: tenants.length });
      return { tenants };
    } catch (error) {
      const body = errorBody(error);
      logFailure(logger, 'list failed', error, body);
      return failureResponse(error);
    }
  };
}

/** What the completion event may still spend: the invocation's time left. */
function timeLeft(context: LambdaContext): { remainingMs: number } {
  return { remainingMs: context.getRemainingTimeInMillis() };
}

async function withDeadline<T>(context: LambdaContext, config: FunctionConfig, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const deadline = deadlineSignal(context, config.abortMarginMs);
  try {
    return await run(deadline.signal);
  } finally {
    deadline.dispose();
  }
}

function secretsOf(storage: StorageFlags | undefined): (string | undefined)[] {
  return [storage?.secretKey, storage?.accessKey];
}

function endpointKeys(storage: StorageFlags | undefined): Record<string, unknown> {
  if (storage?.endpoint === undefined) return {};
  return { endpoint: endpointOrigin(storage.endpoint) ?? 'invalid', staticKeys: storage.accessKey !== undefined };
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

/** Lambda answers at most 6 MB: long note lists are cut (with a note saying so) well before that. */
const MAX_RESPONSE_CHARS = 4_000_000;
const KEPT_NOTES = 1000;

function bounded<T extends BackupResult | RestoreResult>(result: T): T {
  if (JSON.stringify(result).length <= MAX_RESPONSE_CHARS) return result;
  const cut = (notes: readonly ManifestNote[]): ManifestNote[] =>
    notes.length <= KEPT_NOTES
      ? [...notes]
      : [...notes.slice(0, KEPT_NOTES), { path: '…', reason: `${notes.length - KEPT_NOTES} more not shown (the Lambda response is limited to 6 MB)` }];
  return {
    ...result,
    warnings: cut(result.warnings),
    ...('skipped' in result && { skipped: cut(result.skipped) }),
  };
}
