// The wire contract between the CLI's remote mode and the functions: what each function
// accepts, what it answers, and how an answer becomes the same typed error (same one-line
// message, same exit code) the CLI would have raised running locally. Pure; shared by the
// handlers and cli/remote.ts.
//
// Requests (Invoke payloads, JSON):
//   <prefix>-backup   a BackupCommand: { tenant, to, overwrite?, sqliteRawFallback?, storage?, encryptTo? }
//                     (encryptTo: age1… recipients, public keys; the archive is stored encrypted)
//                     or a cron rule's payload: { source: "openclaw.cron", tenant, cronName,
//                     time, eventId, command: BackupCommand with a templated `to` }
//                     with `dryRun: true`: the BackupPlan of `tenants backup --dry-run`
//   <prefix>-restore  a RestoreCommand: { from, as?, force?, limits?, storage?, identitySecret? }, with
//                     `dryRun: true` the RestorePlan of `tenants restore --dry-run`;
//                     { operation: "verify", from, limits?, record?, storage?, identitySecret? } (`tenants verify`);
//                     (identitySecret: the name of the Secrets Manager secret holding the age
//                     identity; identities themselves never travel in a payload)
//                     { operation: "backups", tenant, in, storage?, pages?, after? } (`tenants backups`;
//                     pages: one page of the listing, the objects sorted after the key `after`
//                     (below `in`; S3 lists from there, StartAfter, in its order: UTF-8 bytes),
//                     as many as fit a Lambda answer, `next` when more follow; a gateway older
//                     than that answers INVALID_REQUEST "unknown field \"pages\"")
//                     (an older gateway answers INVALID_REQUEST "unknown field")
//   <prefix>-prune    a PruneCommand: { tenant, in, keep: { last?, daily?, weekly?, monthly?,
//                     yearly? }, dryRun?, storage? } (storage may add deleteIfMatch: boolean,
//                     `--delete-if-match`), and `bounded: true` when the caller reads an answer
//                     whose decision lists are cut to fit a Lambda response (keepOmitted,
//                     removeOmitted; a gateway older than that answers INVALID_REQUEST "unknown
//                     field \"bounded\"", before pruning anything), or a cron rule's payload as for
//                     backup with the PruneCommand as `command`
//   <prefix>-list     { names?: boolean, ownership?: boolean, expectUid?: number, expectGid?: number,
//                       after?: string, limit?: number, pages?: boolean }
//                     (ownership: also report who owns the tenant tree, for `doctor`; a gateway
//                     older than that answers INVALID_REQUEST "unknown field"; after/limit: one
//                     page of names, those sorted after `after`, for the fan-out, skipped tenants
//                     among them; pages: `tenants list`, names or summaries, in pages that fit a
//                     Lambda answer, skipped tenants apart; a gateway older than that answers
//                     INVALID_REQUEST "unknown field \"pages\"")
//   <prefix>-fanout   a fan-out payload (schedule/cron-command.ts FanOutPayload): { source:
//                     "openclaw.fanout", version: 1, to: template, overwrite?, cronName?, time?,
//                     timeZone?, runId?, encryptTo?, storage? }: queues one backup per tenant
//                     (control-plane/fan-out.ts), each encrypted to encryptTo (age1… recipients,
//                     checked before anything is queued; a gateway older than the field refuses
//                     it as an unknown field; storage: { sse?, sseKmsKeyId?, storageClass? }
//                     only, how every archive's object is stored, as old gateways refuse it too)
// Responses:
//   success           the core's result: BackupResult, RestoreResult, or { tenants }
//                     (names, or summaries with `lastModified` as an ISO string), with
//                     `ownership` (shared/tenant/ownership.ts OwnershipReport) when asked for
//                     (cut to fit an answer: `tenants` then empty, the report's `tenantsOmitted`),
//                     and `next` (the name to ask `after` for) when a page has more behind it
//                     (with `pages`, `skipped` on every page, as many as fit a quarter of
//                     the answer, and `skippedOmitted` counting the others);
//                     the fan-out's FanOutResult
//   failure           { ok: false, error: { code, outcome, message } } for direct invocations;
//                     a cron invocation throws instead, so Lambda retries it and its failure
//                     reaches the on-failure destination and the Errors metric.
//   continuing        a direct backup that goes on in further invocations: BackupSuspended
//                     (operation "backup", suspended: true) with ok: false and an error
//                     BACKUP_CONTINUES beside it, for CLIs older than backups in pieces
//                     (continuingAnswer); the CLI reads `suspended` before `ok`. A direct
//                     restore that goes on likewise: RestoreSuspended (operation "restore",
//                     suspended: true) with RESTORE_CONTINUES beside it (continuingRestoreAnswer).
// Versions: a request is parsed whole, and a field its parser does not know refused
// (INVALID_REQUEST "unknown field …"), before anything is read or written; never dropped. Fields
// are added, never removed or given another meaning. The CLI relies on it: a direct command's
// refusal names the fix, and `cron add` asks the target's parser before it stores a payload with
// a field added since the first gateway with schedules (gateway-fields.ts): the dry runs' command
// is parsed before the tenant name is judged, the fan-out's run ID is judged last.

import {
  AbortedError,
  AgeBadIdentityError,
  AgeBadRecipientError,
  AgeHeaderLimitError,
  AgeNotEncryptedError,
  AgeUnsupportedError,
  ArchiveLimitError,
  CorruptArchiveError,
  CronCommandError,
  CronScheduleError,
  DestinationExistsError,
  FileSystemError,
  InvalidNameError,
  InvalidRequestError,
  LocalCronError,
  LocationNotAllowedError,
  MarksUnreadableError,
  ModuleUnavailableError,
  ObjectLockedError,
  OverwriteNotAllowedError,
  PipeCommandError,
  RemoteError,
  SlotOccupiedError,
  SqliteSnapshotError,
  StorageError,
  TenantBusyError,
  ContinuationEndedError,
  TenantNotFoundError,
  TenantsDirNotFoundError,
  UnsafeArchiveError,
  UsageError,
  WireError,
  describeError,
  isErrorCode,
  isOpenClawError,
  type ErrorCode,
  type OpenClawError,
  type Outcome,
} from '../errors.js';
import type { BackupSuspended } from '../backup/backup.js';
import type { RestoreSuspended } from '../restore/restore.js';
import { formatBytes, plural } from '../format.js';
import type { BackupCommand, BackupsCommand, PruneCommand, PruneStoreFlags, RestoreCommand, StorageFlags, VerifyCommand } from '../operations.js';
import { parseKeepWithin, RETENTION_KEYS, RETENTION_RULES, type RetentionPolicy } from '../catalog/retention.js';
import { CRON_PAYLOAD_SOURCE, FANOUT_PAYLOAD_SOURCE, FANOUT_PAYLOAD_VERSION, assertAllTenantsDestination } from '../schedule/cron-command.js';
import { expandTemplate } from '../schedule/destination-template.js';
import { assertTimeZone } from '../schedule/schedule-options.js';
import { isValidTenantName } from '../tenant/names.js';
import { redact } from '../storage/redact.js';
import { S3_OBJECT_FLAGS, s3ObjectSettings, type S3ObjectFlags } from '../storage/s3-object-settings.js';
import { backupRecipients, MAX_RECIPIENTS } from '../archive/encrypted-archive.js';
import { looksLikeSecretKey } from '../age/keys.js';

export interface ErrorBody {
  /** An ErrorCode; UNEXPECTED for a bug; a newer gateway may send one this version does not know. */
  readonly code: string;
  readonly outcome: Outcome;
  /** One line, no secrets. */
  readonly message: string;
}

export interface FailureResponse {
  readonly ok: false;
  readonly error: ErrorBody;
}

export interface ListRequest {
  /** Only the names (the default is summaries). */
  readonly names?: boolean;
  /** One page of names: those sorted after this one (names only). */
  readonly after?: string;
  /** At most this many names (names only). */
  readonly limit?: number;
  /** Also report the owner of the base dir, of each tenant root, and mismatches below. */
  readonly ownership?: boolean;
  /** The identity the tree should belong to (the access point's POSIX user); only with `ownership`. */
  readonly expectUid?: number;
  readonly expectGid?: number;
  /**
   * `tenants list`'s pages: the names or summaries sorted after `after`, as many as fit one
   * Lambda answer (at most `limit`), `next` when more follow, and the skipped tenants apart.
   */
  readonly pages?: boolean;
}

export interface ParsedListRequest {
  readonly names: boolean;
  readonly ownership: boolean;
  readonly pages: boolean;
  readonly after?: string;
  readonly limit?: number;
  readonly expectUid?: number;
  readonly expectGid?: number;
}

// ---------------------------------------------------------------------------------------
// Answers

type JsonKind = 'string' | 'number' | 'boolean' | 'array';

const COUNTS = { files: 'number', directories: 'number', symlinks: 'number', bytes: 'number' } as const;

/**
 * The fields each successful answer must carry for the CLI to show it, with their JSON types:
 * those every gateway version since the answer's first has sent (fields added later are read
 * where present). An answer of the right `operation` that lacks one comes from a gateway of
 * another version, or is a kind of answer this version does not know, and is refused as such
 * instead of being shown as "undefined files" with exit 0. So a new kind of answer takes a
 * new `operation` value (or lacks these fields); fields are added, never removed or retyped.
 */
const ANSWER_FIELDS = {
  backup: { tenant: 'string', location: 'string', ...COUNTS, archiveBytes: 'number', durationMs: 'number', manifestSha256: 'string', skipped: 'array', warnings: 'array' },
  /** A backup that goes on in further invocations (`suspended: true`, operation "backup"). */
  'backup-suspended': { tenant: 'string', location: 'string', chain: 'string', pieces: 'number', files: 'number', bytes: 'number', archiveBytes: 'number', durationMs: 'number' },
  'backup-plan': { tenant: 'string', location: 'string', ...COUNTS, largest: 'array', skipped: 'array', mayBeSkipped: 'array', destination: 'string' },
  restore: { tenant: 'string', archiveTenant: 'string', location: 'string', ...COUNTS, durationMs: 'number', verified: 'boolean', replaced: 'boolean', warnings: 'array' },
  /** A restore that goes on in further invocations (`suspended: true`, operation "restore"). */
  'restore-suspended': { tenant: 'string', location: 'string', chain: 'string', pieces: 'number', written: 'number', durationMs: 'number' },
  'restore-plan': { tenant: 'string', archiveTenant: 'string', location: 'string', target: 'string', ...COUNTS, verified: 'boolean', topLevel: 'array', warnings: 'array' },
  verify: { tenant: 'string', location: 'string', ...COUNTS, durationMs: 'number', verified: 'boolean', warnings: 'array' },
  backups: { tenant: 'string', location: 'string', backups: 'array', otherObjects: 'number' },
  prune: { tenant: 'string', location: 'string', dryRun: 'boolean', keep: 'array', remove: 'array', removed: 'number', bytesRemoved: 'number' },
} as const satisfies Record<string, Record<string, JsonKind>>;

export type AnswerKind = keyof typeof ANSWER_FIELDS;

/** Whether `answer` is a successful answer of `kind` with every field the CLI shows (ANSWER_FIELDS). */
export function isAnswerOf(kind: AnswerKind, answer: unknown): answer is Record<string, unknown> {
  if (!isRecord(answer)) return false;
  const operation = kind === 'backup-suspended' ? 'backup' : kind === 'restore-suspended' ? 'restore' : kind;
  if (answer.operation !== operation) return false;
  // A finished backup or restore and one that goes on share their operation; `suspended` tells them apart.
  if ((operation === 'backup' || operation === 'restore') && answer.suspended !== (kind.endsWith('-suspended') ? true : undefined)) return false;
  return Object.entries(ANSWER_FIELDS[kind]).every(([key, type]) => (type === 'array' ? Array.isArray(answer[key]) : typeof answer[key] === type));
}

/** The code of the failure a continuing backup's answer carries for CLIs older than backups in pieces (continuingAnswer). */
export const BACKUP_CONTINUES_CODE = 'BACKUP_CONTINUES';

/**
 * A direct backup's answer when it continues in further invocations: the BackupSuspended that
 * this CLI shows, with a FailureResponse's `ok: false` and `error` beside it. A CLI older than
 * backups in pieces (before 11c7b16) knows only a finished backup or a failure: it took the
 * suspended answer for a finished backup and failed reading the counts it lacks ("unexpected
 * error: Cannot read properties of undefined", exit 1), saying nothing of the backup going on.
 * It reads the failure first and prints its one line instead: the backup continues, is not
 * finished, and how to follow it (exit 1: not done). This CLI reads `suspended` first
 * (suspendedOf); so must every later one.
 */
export function continuingAnswer(result: BackupSuspended): BackupSuspended & FailureResponse {
  const message =
    `the backup of tenant "${result.tenant}" to ${result.location} continues on the gateway in further invocations ` +
    `(${plural(result.files, 'file')}, ${formatBytes(result.bytes)} so far): it is not finished and may still fail; ` +
    'its completion event (OpenClaw Backup Succeeded or Failed) reports the end, tenants backups lists the archive then, ' +
    'and the same backup asked again goes on with it (this CLI is older than the gateway and cannot show a continuing backup: update it)';
  return { ...result, ok: false, error: { code: BACKUP_CONTINUES_CODE, outcome: 'failed', message } };
}

/** The BackupSuspended of a continuing backup's answer (continuingAnswer; a gateway before it sent it bare), or undefined for any other answer. */
export function suspendedOf(answer: unknown): BackupSuspended | undefined {
  if (!isAnswerOf('backup-suspended', answer)) return undefined;
  const { ok: _ok, error: _error, ...suspended } = answer;
  return suspended as unknown as BackupSuspended;
}

/** The code of the failure a continuing restore's answer carries for CLIs older than restores in pieces (continuingRestoreAnswer). */
export const RESTORE_CONTINUES_CODE = 'RESTORE_CONTINUES';

/**
 * A direct restore's answer when it continues in further invocations: the RestoreSuspended this
 * CLI shows, with a failure beside it that a CLI older than restores in pieces prints instead
 * (it knows only a finished restore or a failure): the restore goes on, is not finished, and
 * how to follow it.
 */
export function continuingRestoreAnswer(result: RestoreSuspended): RestoreSuspended & FailureResponse {
  const message =
    `the restore of tenant "${result.tenant}" from ${result.location} continues on the gateway in further invocations: ` +
    'it is not finished and may still fail; nothing is in the slot until its last piece commits; its completion event ' +
    '(OpenClaw Restore Succeeded or Failed) reports the end, and tenants list shows the tenant then ' +
    '(this CLI is older than the gateway and cannot show a continuing restore: update it)';
  return { ...result, ok: false, error: { code: RESTORE_CONTINUES_CODE, outcome: 'failed', message } };
}

/** The RestoreSuspended of a continuing restore's answer (continuingRestoreAnswer), or undefined for any other answer. */
export function restoreSuspendedOf(answer: unknown): RestoreSuspended | undefined {
  if (!isAnswerOf('restore-suspended', answer)) return undefined;
  const { ok: _ok, error: _error, ...suspended } = answer;
  return suspended as unknown as RestoreSuspended;
}

// ---------------------------------------------------------------------------------------
// Failures

/** The failure response for `error`; `secrets` are masked in the message as a second layer. */
export function failureResponse(error: unknown, secrets: readonly (string | undefined)[] = []): FailureResponse {
  return { ok: false, error: errorBody(error, secrets) };
}

export function errorBody(error: unknown, secrets: readonly (string | undefined)[] = []): ErrorBody {
  return {
    code: isOpenClawError(error) ? error.code : 'UNEXPECTED',
    outcome: isOpenClawError(error) ? error.outcome : 'failed',
    message: redact(describeError(error), secrets),
  };
}

export function isFailureResponse(value: unknown): value is FailureResponse {
  if (!isRecord(value) || value.ok !== false || !isRecord(value.error)) return false;
  const { code, outcome, message } = value.error;
  return typeof code === 'string' && typeof message === 'string' && (outcome === 'usage' || outcome === 'refused' || outcome === 'failed');
}

/** The typed error a failure response stands for: the class the core would have thrown. */
export function errorFromBody(body: ErrorBody): OpenClawError {
  const { code, outcome, message } = body;
  return isErrorCode(code) ? FROM_WIRE[code](message) : new WireError(code, outcome, message);
}

const storage = (code: ErrorCode & StorageError['code']) => (message: string) => new StorageError(message, code);
const remote = (code: RemoteError['code']) => (message: string) => new RemoteError(code, message);
const usage = (code: UsageError['code']) => (message: string) => new UsageError(message, code);
const wireOnly = (code: ErrorCode, outcome: Outcome) => (message: string) => new WireError(code, outcome, message);

/** Every code's class, so a code added to the registry must say how it comes back over the wire. */
const FROM_WIRE: { readonly [C in ErrorCode]: (message: string) => OpenClawError } = {
  USAGE: usage('USAGE'),
  INVALID_NAME: (message) => new InvalidNameError(message),
  INVALID_SCHEDULE: (message) => new CronScheduleError(message),
  INVALID_CRON_COMMAND: (message) => new CronCommandError(message),
  INVALID_REQUEST: (message) => new InvalidRequestError(message),
  NO_REGION: usage('NO_REGION'),
  REMOTE_ONLY: usage('REMOTE_ONLY'),
  REMOTE_UNSUPPORTED: usage('REMOTE_UNSUPPORTED'),
  STACK_NOT_FOUND: usage('STACK_NOT_FOUND'),
  DESTINATION_IN_TENANTS_DIR: usage('DESTINATION_IN_TENANTS_DIR'),
  UNSAFE_ARCHIVE: (message) => new UnsafeArchiveError(message),
  CORRUPT_ARCHIVE: (message) => new CorruptArchiveError(message),
  ARCHIVE_LIMIT: (message) => new ArchiveLimitError(message),
  SLOT_OCCUPIED: (message) => new SlotOccupiedError(message),
  // Its class holds the trees' names; the message names them too.
  RECOVERY_NEEDED: wireOnly('RECOVERY_NEEDED', 'refused'),
  TENANT_BUSY: (message) => new TenantBusyError(message),
  CONTINUATION_ENDED: (message) => new ContinuationEndedError(message),
  TENANT_NOT_FOUND: (message) => new TenantNotFoundError(message),
  DESTINATION_EXISTS: (message) => new DestinationExistsError(message),
  LOCATION_NOT_ALLOWED: (message) => new LocationNotAllowedError(message),
  OVERWRITE_NOT_ALLOWED: (message) => new OverwriteNotAllowedError(message),
  CRON_EXISTS: remote('CRON_EXISTS'),
  CRON_NAME_TAKEN: remote('CRON_NAME_TAKEN'),
  CRON_NOT_FOUND: remote('CRON_NOT_FOUND'),
  OBJECT_LOCKED: (message) => new ObjectLockedError(message),
  MARKS_UNREADABLE: (message) => new MarksUnreadableError(message),
  AGE_BAD_RECIPIENT: (message) => new AgeBadRecipientError(message),
  AGE_BAD_IDENTITY: (message) => new AgeBadIdentityError(message),
  AGE_NOT_ENCRYPTED: (message) => new AgeNotEncryptedError(message),
  AGE_UNSUPPORTED: (message) => new AgeUnsupportedError(message),
  // Their classes hold the stanza types or the damaged part; the message says it too.
  AGE_NO_IDENTITY_MATCHED: wireOnly('AGE_NO_IDENTITY_MATCHED', 'refused'),
  AGE_DAMAGED: wireOnly('AGE_DAMAGED', 'refused'),
  AGE_HEADER_LIMIT: (message) => new AgeHeaderLimitError(message),
  ABORTED: (message) => new AbortedError(message),
  FILESYSTEM: (message) => new FileSystemError(message),
  TENANTS_DIR_NOT_FOUND: (message) => new TenantsDirNotFoundError(message),
  CRONTAB_FAILED: (message) => new LocalCronError('CRONTAB_FAILED', message),
  PIPE_FAILED: (message) => new PipeCommandError(message),
  MODULE_UNAVAILABLE: (message) => new ModuleUnavailableError(message),
  SQLITE_SNAPSHOT_FAILED: (message) => new SqliteSnapshotError(message),
  STORAGE: storage('STORAGE'),
  NOT_FOUND: storage('NOT_FOUND'),
  NOT_A_FILE: storage('NOT_A_FILE'),
  NOT_A_DIRECTORY: storage('NOT_A_DIRECTORY'),
  ACCESS_DENIED: storage('ACCESS_DENIED'),
  NO_SPACE: storage('NO_SPACE'),
  READ_ONLY: storage('READ_ONLY'),
  NAME_TOO_LONG: storage('NAME_TOO_LONG'),
  IO: storage('IO'),
  SHORT_WRITE: storage('SHORT_WRITE'),
  READ_FAILED: storage('READ_FAILED'),
  INVALID_METADATA: storage('INVALID_METADATA'),
  S3: storage('S3'),
  NO_SUCH_BUCKET: storage('NO_SUCH_BUCKET'),
  INVALID_CREDENTIALS: storage('INVALID_CREDENTIALS'),
  NO_CREDENTIALS: storage('NO_CREDENTIALS'),
  EXPIRED_CREDENTIALS: storage('EXPIRED_CREDENTIALS'),
  CLOCK_SKEW: storage('CLOCK_SKEW'),
  WRONG_REGION: storage('WRONG_REGION'),
  UNREACHABLE: storage('UNREACHABLE'),
  THROTTLED: storage('THROTTLED'),
  CHANGED: storage('CHANGED'),
  NOT_SUPPORTED: storage('NOT_SUPPORTED'),
  TOO_LARGE: storage('TOO_LARGE'),
  AWS_ERROR: remote('AWS_ERROR'),
  REMOTE_TIMEOUT: remote('REMOTE_TIMEOUT'),
  REMOTE_FUNCTION_ERROR: remote('REMOTE_FUNCTION_ERROR'),
  REMOTE_PROTOCOL: remote('REMOTE_PROTOCOL'),
  CRON_TARGET_FAILED: remote('CRON_TARGET_FAILED'),
  // The CLI's own: printed where it happened.
  DOCTOR_FAILED: wireOnly('DOCTOR_FAILED', 'failed'),
  BACKUP_ALL_FAILED: wireOnly('BACKUP_ALL_FAILED', 'failed'),
  DRY_RUN_REFUSED: wireOnly('DRY_RUN_REFUSED', 'refused'),
  BACKUP_ALL_INCOMPLETE: wireOnly('BACKUP_ALL_INCOMPLETE', 'failed'),
  TENANTS_SKIPPED: wireOnly('TENANTS_SKIPPED', 'failed'),
  TENANTS_NOT_SUMMED: wireOnly('TENANTS_NOT_SUMMED', 'failed'),
};

// ---------------------------------------------------------------------------------------
// Requests

// The fields each request takes (gateway-fields.ts names those added since the first gateway with schedules).
export const STORAGE_KEYS = ['awsProfile', 'region', 'endpoint', 'accessKey', 'secretKey', 'pipe', 'sse', 'sseKmsKeyId', 'storageClass'] as const;
export const BACKUP_COMMAND_FIELDS = ['tenant', 'to', 'overwrite', 'sqliteRawFallback', 'storage', 'encryptTo'] as const;
export const PRUNE_COMMAND_FIELDS = ['tenant', 'in', 'keep', 'dryRun', 'storage'] as const;
export const FANOUT_FIELDS = ['source', 'version', 'to', 'overwrite', 'cronName', 'time', 'timeZone', 'runId', 'encryptTo', 'storage'] as const;
/** Set by a scheduled fan-out on the run it hands on (fanout-handler.ts), never by a CLI or a schedule. */
const FANOUT_CONTINUATION_FIELDS = ['after'] as const;

export function parseBackupCommand(value: unknown, what = 'backup request'): BackupCommand {
  const record = expectRecord(value, what);
  onlyKeys(record, BACKUP_COMMAND_FIELDS, what);
  return {
    tenant: requiredString(record, 'tenant', what),
    to: requiredString(record, 'to', what),
    ...optionalBoolean(record, 'overwrite', what),
    ...optionalBoolean(record, 'sqliteRawFallback', what),
    ...optionalStorage(record, what),
    ...optionalRecipients(record, what),
  };
}

export function parseRestoreCommand(value: unknown): RestoreCommand {
  const what = 'restore request';
  const record = expectRecord(value, what);
  onlyKeys(record, ['from', 'as', 'force', 'limits', 'storage', 'identitySecret'], what);
  return {
    from: requiredString(record, 'from', what),
    ...(record.as !== undefined && { as: requiredString(record, 'as', what) }),
    ...optionalBoolean(record, 'force', what),
    ...optionalLimits(record, what),
    ...optionalStorage(record, what),
    ...optionalIdentitySecret(record, what),
  };
}

function optionalLimits(record: Record<string, unknown>, what: string): { limits?: RestoreCommand['limits'] } {
  if (record.limits === undefined) return {};
  const raw = expectRecord(record.limits, `${what} limits`);
  onlyKeys(raw, ['maxEntries', 'maxBytes'], `${what} limits`);
  for (const key of ['maxEntries', 'maxBytes'] as const) {
    const limit = raw[key];
    if (limit !== undefined && !(typeof limit === 'number' && Number.isSafeInteger(limit) && limit > 0)) {
      throw new InvalidRequestError(`${what}: limits.${key} must be a positive whole number`);
    }
  }
  return { limits: raw as RestoreCommand['limits'] };
}

/** What the backup function is asked: a backup, or its dry run. */
export interface BackupFunctionRequest {
  readonly command: BackupCommand;
  readonly dryRun: boolean;
}

export function parseBackupFunctionRequest(value: unknown): BackupFunctionRequest {
  const record = expectRecord(value, 'backup request');
  const { dryRun, ...rest } = record;
  if (dryRun !== undefined && typeof dryRun !== 'boolean') throw new InvalidRequestError('backup request: "dryRun" must be true or false');
  return { command: parseBackupCommand(rest), dryRun: dryRun === true };
}

/** What the restore function is asked: a restore (or its dry run), a verification, a listing of backups. */
export type RestoreFunctionRequest =
  | { readonly kind: 'restore'; readonly command: RestoreCommand; readonly dryRun: boolean }
  | { readonly kind: 'verify'; readonly command: VerifyCommand }
  /** `pages`: one page of the listing, of the objects after `after` (BackupsPage; the function chooses how many). */
  | { readonly kind: 'backups'; readonly command: BackupsCommand; readonly pages: boolean; readonly after?: string };

export function parseRestoreFunctionRequest(value: unknown): RestoreFunctionRequest {
  const record = expectRecord(value, 'restore request');
  const { operation, dryRun, ...rest } = record;
  if (operation === 'verify') {
    const what = 'verify request';
    if (dryRun !== undefined) throw new InvalidRequestError(`${what}: unknown field "dryRun"`);
    onlyKeys(rest, ['from', 'limits', 'record', 'storage', 'identitySecret'], what);
    return {
      kind: 'verify',
      command: {
        from: requiredString(rest, 'from', what),
        ...optionalLimits(rest, what),
        ...optionalBoolean(rest, 'record', what),
        ...optionalStorage(rest, what),
        ...optionalIdentitySecret(rest, what),
      },
    };
  }
  if (operation === 'backups') {
    const what = 'backups request';
    if (dryRun !== undefined) throw new InvalidRequestError(`${what}: unknown field "dryRun"`);
    onlyKeys(rest, ['tenant', 'in', 'storage', 'pages', 'after'], what);
    const pages = optionalBoolean(rest, 'pages', what).pages ?? false;
    if (rest.after !== undefined && !pages) throw new InvalidRequestError(`${what}: "after" goes with "pages": true`);
    return {
      kind: 'backups',
      command: { tenant: requiredString(rest, 'tenant', what), in: requiredString(rest, 'in', what), ...optionalStorage(rest, what) },
      pages,
      ...(rest.after !== undefined && { after: requiredString(rest, 'after', what) }),
    };
  }
  if (operation !== undefined) throw new InvalidRequestError(`restore request: unknown operation ${JSON.stringify(operation)?.slice(0, 40)} (are the CLI and the gateway the same version?)`);
  if (dryRun !== undefined && typeof dryRun !== 'boolean') throw new InvalidRequestError('restore request: "dryRun" must be true or false');
  return { kind: 'restore', command: parseRestoreCommand(rest), dryRun: dryRun === true };
}

/** A direct prune: the command, and whether the caller reads an answer with cut decision lists (`bounded`). */
export function parsePruneRequest(value: unknown): { command: PruneCommand; bounded: boolean } {
  const record = expectRecord(value, 'prune request');
  const { bounded, ...command } = record;
  if (bounded !== undefined && typeof bounded !== 'boolean') throw new InvalidRequestError('prune request: "bounded" must be true or false');
  return { command: parsePruneCommand(command), bounded: bounded === true };
}

export function parsePruneCommand(value: unknown, what = 'prune request'): PruneCommand {
  const record = expectRecord(value, what);
  onlyKeys(record, PRUNE_COMMAND_FIELDS, what);
  const keep = expectRecord(record.keep, `${what} keep`);
  onlyKeys(keep, RETENTION_KEYS, `${what} keep`);
  const policy: { -readonly [K in keyof RetentionPolicy]: RetentionPolicy[K] } = {};
  for (const rule of RETENTION_RULES) {
    const count = keep[rule];
    if (count === undefined || count === null) continue;
    if (!(typeof count === 'number' && Number.isSafeInteger(count) && count >= 0)) {
      throw new InvalidRequestError(`${what}: keep.${rule} must be a whole number`);
    }
    policy[rule] = count;
  }
  if (keep.within !== undefined && keep.within !== null) {
    if (typeof keep.within !== 'string' || parseKeepWithin(keep.within) === undefined) throw new InvalidRequestError(`${what}: keep.within must be a span such as 7d, 36h or 1y6m`);
    policy.within = keep.within;
  }
  return {
    tenant: requiredString(record, 'tenant', what),
    in: requiredString(record, 'in', what),
    keep: policy,
    ...optionalBoolean(record, 'dryRun', what),
    ...pruneStorage(record, what),
  };
}

/** A prune's storage: as any request's, and `deleteIfMatch` (true or false). */
function pruneStorage(record: Record<string, unknown>, what: string): { storage?: PruneStoreFlags } {
  if (!isRecord(record.storage) || record.storage.deleteIfMatch === undefined) return optionalStorage(record, what);
  const { deleteIfMatch, ...rest } = record.storage;
  if (typeof deleteIfMatch !== 'boolean') throw new InvalidRequestError(`${what}: storage.deleteIfMatch must be true or false`);
  const { storage } = optionalStorage({ storage: rest }, what);
  return { storage: { ...storage, deleteIfMatch } };
}

/** The refusal of an age secret key given where the name of the secret holding it belongs (the key is not quoted). */
export const SECRET_KEY_AS_SECRET_NAME =
  '--identity-secret takes the name of the Secrets Manager secret holding the identity, not the secret key itself (not shown, sent or logged)';

/** `identitySecret`: a secret's name (identity-secrets.ts checks it is under the stack's prefix). */
function optionalIdentitySecret(record: Record<string, unknown>, what: string): { identitySecret?: string } {
  if (record.identitySecret === undefined) return {};
  const identitySecret = requiredString(record, 'identitySecret', what);
  // Checked before the request is logged: a key pasted here must not reach the logs.
  if (looksLikeSecretKey(identitySecret)) throw new InvalidRequestError(`${what}: ${SECRET_KEY_AS_SECRET_NAME}`);
  return { identitySecret };
}

/** A recipient's text is ~62 characters; anything much longer is not one (the core parses each). */
const MAX_RECIPIENT_CHARS = 200;

function optionalRecipients(record: Record<string, unknown>, what: string): { encryptTo?: string[] } {
  const value = record.encryptTo;
  if (value === undefined || value === null) return {};
  if (!Array.isArray(value) || value.length > MAX_RECIPIENTS || !value.every((item) => typeof item === 'string' && item.length <= MAX_RECIPIENT_CHARS)) {
    throw new InvalidRequestError(`${what}: "encryptTo" must be a list of at most ${MAX_RECIPIENTS} age recipients (age1… strings)`);
  }
  return value.length === 0 ? {} : { encryptTo: value as string[] };
}

export function parseListRequest(value: unknown): ParsedListRequest {
  const what = 'list request';
  const record = value === undefined || value === null ? {} : expectRecord(value, what);
  onlyKeys(record, ['names', 'ownership', 'expectUid', 'expectGid', 'after', 'limit', 'pages'], what);
  const ownership = optionalBoolean(record, 'ownership', what).ownership ?? false;
  const names = optionalBoolean(record, 'names', what).names ?? false;
  const pages = optionalBoolean(record, 'pages', what).pages ?? false;
  if (pages && ownership) throw new InvalidRequestError(`${what}: "pages" and "ownership" exclude each other`);
  const page: { after?: string; limit?: number } = {};
  if (record.after !== undefined && record.after !== null) {
    if (typeof record.after !== 'string') throw new InvalidRequestError(`${what}: "after" must be a tenant name`);
    page.after = record.after;
  }
  if (record.limit !== undefined && record.limit !== null) {
    if (!(typeof record.limit === 'number' && Number.isSafeInteger(record.limit) && record.limit >= 1 && record.limit <= MAX_LIST_PAGE)) {
      throw new InvalidRequestError(`${what}: "limit" must be a whole number from 1 to ${MAX_LIST_PAGE}`);
    }
    page.limit = record.limit;
  }
  if ((page.after !== undefined || page.limit !== undefined) && !pages && (!names || ownership)) {
    throw new InvalidRequestError(`${what}: "after" and "limit" page through names: they go with "names": true (or "pages": true)`);
  }
  const ids: { expectUid?: number; expectGid?: number } = {};
  for (const key of ['expectUid', 'expectGid'] as const) {
    const id = record[key];
    if (id === undefined || id === null) continue;
    if (!(typeof id === 'number' && Number.isSafeInteger(id) && id >= 0 && id <= 0xffffffff)) {
      throw new InvalidRequestError(`${what}: "${key}" must be a POSIX ID (a whole number from 0 to 4294967295)`);
    }
    if (!ownership) throw new InvalidRequestError(`${what}: "${key}" goes with "ownership": true`);
    ids[key] = id;
  }
  return { names, ownership, pages, ...ids, ...page };
}

/** The most names one list page holds: 10,000 names of 32 characters stay far below Lambda's 6 MB answer. */
export const MAX_LIST_PAGE = 10_000;

/** One page of a sorted list of names: those after `after`, at most `limit`, and where the next page starts. */
export function pageOfNames(sorted: readonly string[], after: string | undefined, limit: number | undefined): { tenants: string[]; next?: string } {
  const start = after === undefined ? 0 : sorted.findIndex((name) => name > after);
  const rest = start === -1 ? [] : sorted.slice(start);
  if (limit === undefined || rest.length <= limit) return { tenants: [...rest] };
  const tenants = rest.slice(0, limit);
  return { tenants, next: tenants[tenants.length - 1]! };
}

function optionalStorage(record: Record<string, unknown>, what: string): { storage?: StorageFlags } {
  if (record.storage === undefined) return {};
  const storage = expectRecord(record.storage, `${what} storage`);
  onlyKeys(storage, STORAGE_KEYS, `${what} storage`);
  const flags: Record<string, string> = {};
  for (const key of STORAGE_KEYS) {
    const value = storage[key];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string') throw new InvalidRequestError(`${what}: storage.${key} must be a string`);
    assertFieldLength(value, `storage.${key}`, what);
    flags[key] = value;
  }
  return { storage: flags as StorageFlags };
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function expectRecord(value: unknown, what: string): Record<string, unknown> {
  if (!isRecord(value)) throw new InvalidRequestError(`${what}: expected a JSON object`);
  return value;
}

function onlyKeys(record: Record<string, unknown>, allowed: readonly string[], what: string): void {
  const unknown = Object.keys(record).filter((key) => !allowed.includes(key));
  if (unknown.length > 0) {
    throw new InvalidRequestError(
      `${what}: unknown field${unknown.length === 1 ? '' : 's'} ${unknown.map((key) => JSON.stringify(key)).join(', ')} ` +
        '(are the CLI and the gateway the same version?)',
    );
  }
}

/**
 * The longest string field a request may carry: a location (an S3 key is at most 1,024
 * bytes), a name or a key, with room to spare. Fields reach the logs, the metrics document
 * and the completion event before the core judges them: a field of megabytes would be
 * written into each (and cut off there, which breaks the JSON a metric or event is read from).
 */
export const MAX_FIELD_CHARS = 2048;

function requiredString(record: Record<string, unknown>, key: string, what: string): string {
  const value = record[key];
  if (typeof value !== 'string') throw new InvalidRequestError(`${what}: "${key}" must be a string`);
  assertFieldLength(value, key, what);
  return value;
}

/** The EventBridge event's id, when the rule passed one (logged with the run). */
function optionalEventId(record: Record<string, unknown>, what: string): { eventId?: string } {
  if (typeof record.eventId !== 'string') return {};
  assertFieldLength(record.eventId, 'eventId', what);
  return { eventId: record.eventId };
}

function assertFieldLength(value: string, key: string, what: string): void {
  if (value.length > MAX_FIELD_CHARS) throw new InvalidRequestError(`${what}: "${key}" is too long (${value.length} characters; at most ${MAX_FIELD_CHARS})`);
}

function optionalBoolean<K extends string>(record: Record<string, unknown>, key: K, what: string): { [P in K]?: boolean } {
  const value = record[key];
  if (value === undefined || value === null) return {};
  if (typeof value !== 'boolean') throw new InvalidRequestError(`${what}: "${key}" must be true or false`);
  return { [key]: value } as { [P in K]?: boolean };
}

// ---------------------------------------------------------------------------------------
// Scheduled invocations

/** A cron rule's payload, validated, with the date placeholders of `to` expanded. */
export interface ScheduledBackupRequest {
  readonly command: BackupCommand;
  readonly cronName: string;
  /** The time the placeholders were expanded with, and where it came from. */
  readonly time: Date;
  readonly timeSource: 'event' | 'clock';
  /** The schedule's time zone, when not UTC: the dates in `to` are written in it. */
  readonly timeZone?: string;
  readonly eventId?: string;
}

/** A cron rule's prune payload, validated. */
export interface ScheduledPruneRequest {
  readonly command: PruneCommand;
  readonly cronName: string;
  readonly eventId?: string;
}

export function parseScheduledPrune(value: unknown): ScheduledPruneRequest {
  const what = 'scheduled prune';
  const record = expectRecord(value, what);
  if (record.source === 'aws.events') {
    throw new InvalidRequestError('a scheduled event without openclaw\'s payload: create schedules with `openclaw cron add`, whose rules pass the prune to run');
  }
  onlyKeys(record, ['source', 'tenant', 'cronName', 'time', 'eventId', 'timeZone', 'command'], what);
  const tenant = requiredString(record, 'tenant', what);
  const command = parsePruneCommand(record.command, `${what} command`);
  if (command.tenant !== tenant) throw new InvalidRequestError(`${what}: the command prunes "${command.tenant}", not the cron's tenant "${tenant}"`);
  if (command.dryRun === true) throw new InvalidRequestError(`${what}: a scheduled prune cannot be a dry run`);
  return { command, cronName: requiredString(record, 'cronName', what), ...optionalEventId(record, what) };
}

export function isScheduledEvent(value: unknown): boolean {
  return isRecord(value) && (value.source === CRON_PAYLOAD_SOURCE || value.source === 'aws.events');
}

export function parseCronPayload(value: unknown, now: () => Date): ScheduledBackupRequest {
  const what = 'scheduled backup';
  const record = expectRecord(value, what);
  if (record.source === 'aws.events') {
    throw new InvalidRequestError(
      'a scheduled event without openclaw\'s payload: create schedules with `openclaw cron add`, whose rules pass the backup to run',
    );
  }
  onlyKeys(record, ['source', 'tenant', 'cronName', 'time', 'eventId', 'timeZone', 'command'], what);
  const tenant = requiredString(record, 'tenant', what);
  const cronName = requiredString(record, 'cronName', what);
  const command = parseBackupCommand(record.command, `${what} command`);
  if (command.tenant !== tenant) throw new InvalidRequestError(`${what}: the command backs up "${command.tenant}", not the cron's tenant "${tenant}"`);
  const { time, timeSource } = eventTime(record, now, what);
  const timeZone = optionalTimeZone(record, what);
  return {
    command: { ...command, to: expandTemplate(command.to, { time, tenant, ...(timeZone !== undefined && { timeZone }) }) },
    cronName,
    time,
    timeSource,
    ...(timeZone !== undefined && { timeZone }),
    ...optionalEventId(record, what),
  };
}

function eventTime(record: Record<string, unknown>, now: () => Date, what: string): { time: Date; timeSource: 'event' | 'clock' } {
  if (record.time === undefined || record.time === null) return { time: now(), timeSource: 'clock' };
  // A time without a zone is UTC's, as on Lambda (whose zone is UTC), not the reading process's: a
  // test or a direct caller under TZ=Pacific/Kiritimati filled {date} in with 14 hours' difference.
  const utc = typeof record.time === 'string' && /^\d{4}-\d\d-\d\dT[\d:.]+$/.test(record.time) ? `${record.time}Z` : record.time;
  const parsed = typeof utc === 'string' && /^\d{4}-\d\d-\d\dT/.test(utc) ? new Date(utc) : new Date(Number.NaN);
  if (Number.isNaN(parsed.getTime())) throw new InvalidRequestError(`${what}: "time" must be an ISO 8601 time`);
  return { time: parsed, timeSource: 'event' };
}

function optionalTimeZone(record: Record<string, unknown>, what: string): string | undefined {
  if (record.timeZone === undefined || record.timeZone === null) return undefined;
  if (typeof record.timeZone !== 'string') throw new InvalidRequestError(`${what}: "timeZone" must be an IANA time zone name`);
  try {
    return assertTimeZone(record.timeZone);
  } catch (error) {
    throw new InvalidRequestError(`${what}: ${(error as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------
// Fan-out

/** A fan-out request, validated: the template, and the time and run it is expanded for. */
export interface FanOutRequest {
  readonly to: string;
  readonly overwrite: boolean;
  readonly cronName?: string;
  readonly time: Date;
  readonly timeSource: 'event' | 'clock';
  readonly timeZone?: string;
  readonly runId?: string;
  /** The recipients every archive is encrypted to, canonical; absent: not encrypted. */
  readonly encryptTo?: readonly string[];
  /** How every archive's object is stored (`--sse`, `--sse-kms-key-id`, `--storage-class`); absent: the bucket's defaults. */
  readonly storage?: S3ObjectFlags;
  /** A continuation: the run goes on with the tenants after this one (in name order). */
  readonly after?: string;
}

export function isFanOutPayload(value: unknown): boolean {
  return isRecord(value) && value.source === FANOUT_PAYLOAD_SOURCE;
}

export function parseFanOutRequest(value: unknown, now: () => Date): FanOutRequest {
  const what = 'fan-out request';
  const record = expectRecord(value, what);
  if (record.source !== FANOUT_PAYLOAD_SOURCE) throw new InvalidRequestError(`${what}: "source" must be "${FANOUT_PAYLOAD_SOURCE}"`);
  if (record.version !== FANOUT_PAYLOAD_VERSION) {
    throw new InvalidRequestError(`${what}: version ${JSON.stringify(record.version)} is not one this gateway knows (${FANOUT_PAYLOAD_VERSION}): are the CLI and the gateway the same version?`);
  }
  onlyKeys(record, [...FANOUT_FIELDS, ...FANOUT_CONTINUATION_FIELDS], what);
  const to = requiredString(record, 'to', what);
  if (record.after !== undefined && (typeof record.after !== 'string' || !isValidTenantName(record.after))) {
    throw new InvalidRequestError(`${what}: "after" must be a tenant name`);
  }
  assertAllTenantsDestination(to);
  // Checked once here, not once per tenant in the queue.
  const encryptTo = backupRecipients(optionalRecipients(record, what).encryptTo ?? []).map((recipient) => recipient.text);
  const { time, timeSource } = eventTime(record, now, what);
  const timeZone = optionalTimeZone(record, what);
  const storage = fanOutStorage(record, what);
  // Checked last: cron add's field check (gateway-fields.ts) asks with a run ID no run can have,
  // and reads any other refusal as every field parsed.
  for (const key of ['cronName', 'runId'] as const) {
    if (record[key] !== undefined && record[key] !== null && (typeof record[key] !== 'string' || !/^[A-Za-z0-9._:-]{1,128}$/.test(record[key]))) {
      throw new InvalidRequestError(`${what}: "${key}" must be 1-128 letters, digits, ".", "_", ":" and "-"`);
    }
  }
  return {
    to,
    overwrite: optionalBoolean(record, 'overwrite', what).overwrite ?? false,
    time,
    timeSource,
    ...(typeof record.cronName === 'string' && { cronName: record.cronName }),
    ...(timeZone !== undefined && { timeZone }),
    ...(typeof record.runId === 'string' && { runId: record.runId }),
    ...(encryptTo.length > 0 && { encryptTo }),
    ...storage,
    ...(typeof record.after === 'string' && { after: record.after }),
  };
}

/** A fan-out's `storage`: only how the objects are stored (the fan-out's backups use the functions' role and bucket), checked once here. */
function fanOutStorage(record: Record<string, unknown>, what: string): { storage?: S3ObjectFlags } {
  const { storage } = optionalStorage(record, what);
  if (storage === undefined) return {};
  const objectKeys: readonly string[] = S3_OBJECT_FLAGS.map(([key]) => key);
  const other = Object.keys(storage).filter((key) => !objectKeys.includes(key));
  if (other.length > 0) throw new InvalidRequestError(`${what}: storage.${other[0]} is not taken by a fan-out (its backups use the gateway's bucket and role)`);
  try {
    s3ObjectSettings(storage);
  } catch (error) {
    throw new InvalidRequestError(`${what}: ${(error as Error).message}`);
  }
  return Object.keys(storage).length === 0 ? {} : { storage };
}

/** What the fan-out answers: what it queued, and the tenants it could not queue. */
export interface FanOutResult {
  readonly operation: 'backup-all';
  readonly runId: string;
  readonly time: string;
  readonly template: string;
  /** `to` expanded for a sample tenant (the first), to show what the keys look like. */
  readonly sample?: string;
  readonly tenants: number;
  readonly queued: number;
  /** Tenants left out because they could not be queued, with the reason. */
  readonly failed: readonly { readonly tenant: string; readonly code: string; readonly message: string }[];
  /** Tenants not queued beyond those in `failed`, left out of it to fit a Lambda answer (an older CLI counts only `failed`). */
  readonly failedOmitted?: number;
  /**
   * False when the fan-out ran out of time before it listed every tenant: those after
   * `lastListed` (in name order; every one, without it) were neither queued nor named in
   * `failed`. Absent from gateways older than the field.
   */
  readonly complete?: boolean;
  readonly lastListed?: string;
  /** The recipients every queued backup encrypts its archive to; absent: not encrypted. */
  readonly encryptedTo?: readonly string[];
  /** The queue's name, and how many backups it runs at once (the backup function's maximum concurrency), when known. */
  readonly queue?: string;
}

export function isValidTenantList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((name) => typeof name === 'string' && isValidTenantName(name));
}
