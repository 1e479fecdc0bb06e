// The functions' handlers, one adapter module per function: backup-handler.ts,
// restore-handler.ts, prune-handler.ts, list-handler.ts (the bundles' entries, backup.ts,
// restore.ts, prune.ts, list.ts, import those); re-exported here for the tests.
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
// Logs are structured (Powertools) and never hold a secret: the event itself is never
// logged, only the tenant, the s3:// location, the endpoint (origin and path) and outcomes.

export { backupHandler, executeBackup, prepareBaseDir, reservedForBackup, type BackupResponse, type BackupRun, type PreparedBackup, type RunAlreadyStored } from './backup-handler.js';
export { executeRestore, restoreHandler, type PreparedRestore, type RestoreResponse, type RestoreRun } from './restore-handler.js';
export { pruneHandler, type PruneResponse } from './prune-handler.js';
export { listHandler, type ListResponse } from './list-handler.js';
export { functionOperations, type Handler, type HandlerDeps } from './handler-deps.js';
export { MIN_BACKUP_TIME_MS, stoppedByItsDeadline } from './invocation.js';
export { ScheduledOperationError } from './scheduled-error.js';
export { bounded, boundedListing, boundedOwnership, boundedPrune } from '../shared/control-plane/bounded-answers.js';
export { backupsPage, tenantsPage, type ListPageAnswer } from '../shared/control-plane/list-pages.js';
