// What every function's handler is built from (HandlerDeps: configuration, logger, event
// publisher, the operations), so that tests build the handlers with a temporary base dir and
// mocked clients while the entry files (backup.ts, restore.ts, prune.ts, list.ts) wire the
// real ones at module scope; and the options of the core operations on the EFS mount.
//
// Each handler is a thin adapter: validate the event → check what remote mode allows →
// run one core operation (the CLI's own, on the EFS mount: the side of `localOperations` it
// needs, localBackupOperations, localRestoreOperations, runPrune, localTenantListing) under
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

import type { Logger } from '@aws-lambda-powertools/logger';

import { DEFAULT_ABANDON_AFTER_MS, type FunctionConfig } from '../shared/control-plane/function-config.js';
import type { RestoreWorkMessage, WorkMessage } from '../shared/control-plane/work-queue.js';
import type { IdentitySecretReader, LocalOptions, TenantOperations } from '../shared/operations.js';
import type { PublishCompletion } from './events.js';
import type { LambdaContext } from './lambda-context.js';
import type { OperationMetrics } from './metrics.js';

/** `O`: what the handler calls of the operations (BackupSide, RestoreSide…); tests hand in all of them. */
export interface HandlerDeps<O = TenantOperations> {
  readonly config: FunctionConfig;
  readonly logger: Logger;
  readonly publish: PublishCompletion;
  /** @default the side of the operations on the EFS mount the handler calls (functionBackupOperations, functionRestoreOperations) */
  readonly operations?: O;
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
 * The options of the core operations on the EFS mount (each function builds the side it runs:
 * functionBackupOperations, functionRestoreOperations; runPrune and the listing need none).
 * The gateway that writes the tenants' SQLite databases is another host, so their `-shm` is
 * never trusted: databases in WAL mode are snapshotted from private copies
 * (shared/backup/sqlite-policy.ts), whatever the mount's file system type says. EFS's NFSv4
 * locks are enforced between its clients, so one in rollback-journal mode is snapshotted in
 * place under SQLite's read lock. Only types of shared/operations.ts are imported here: a
 * value import would put every operation in every function's bundle.
 */
export function functionOptions(config: FunctionConfig, identitySecrets?: IdentitySecretReader): LocalOptions {
  return {
    sqliteWriters: 'cross-host',
    sqliteLocksAcrossHosts: true,
    // The backup function ends the chains that broke (abandonBrokenChains); `tenants recover` cannot run through the gateway.
    chainEnder: { by: 'gateway', abandonAfterMs: config.abandonAfterMs ?? DEFAULT_ABANDON_AFTER_MS },
    ...(identitySecrets !== undefined && { identitySecrets }),
    // No shell here (--pipe is refused in remote mode): an age file only `age` reads is downloaded and restored on a machine.
    ageCli: 'download',
  };
}

/** What the backup function's handlers call of the operations. */
export type BackupSide = Pick<TenantOperations, 'backup' | 'backupPiece' | 'planBackup' | 'sweepBaseDir' | 'sweepScratchAreas' | 'abandonStaleBackups' | 'storedByRun'>;
/** What the restore function's handlers call of the operations. */
export type RestoreSide = Pick<TenantOperations, 'restore' | 'restorePiece' | 'planRestore' | 'verify' | 'listBackups'>;

export type Handler<R> = (event: unknown, context: LambdaContext) => Promise<R>;
