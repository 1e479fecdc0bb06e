// The wire contract between the CLI's remote mode and the functions: what each function
// accepts, what it answers, and how an answer becomes the same typed error (same one-line
// message, same exit code) the CLI would have raised running locally. Pure; shared by the
// handlers and cli/remote.ts.
//
// Requests (Invoke payloads, JSON):
//   <prefix>-backup   a BackupCommand: { tenant, to, overwrite?, storage?, encryptTo? }
//                     (encryptTo: age1… recipients, public keys; the archive is stored encrypted)
//                     or a cron rule's payload: { source: "openclaw.cron", tenant, cronName,
//                     time, eventId, command: BackupCommand with a templated `to` }
//   <prefix>-restore  a RestoreCommand: { from, as?, force?, limits?, storage?, identitySecret? }
//                     (identitySecret: the name of the Secrets Manager secret holding the age
//                     identity; identities themselves never travel in a payload)
//   <prefix>-list     { names?: boolean, ownership?: boolean, expectUid?: number, expectGid?: number }
//                     (ownership: also report who owns the tenant tree, for `doctor`; a gateway
//                     older than that answers INVALID_REQUEST "unknown field")
// Responses:
//   success           the core's result: BackupResult, RestoreResult, or { tenants }
//                     (names, or summaries with `lastModified` as an ISO string), with
//                     `ownership` (shared/tenant/ownership.ts OwnershipReport) when asked for
//   failure           { ok: false, error: { code, outcome, message } } for direct invocations;
//                     a cron invocation throws instead, so Lambda retries it and its failure
//                     reaches the on-failure destination and the Errors metric.

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
  OverwriteNotAllowedError,
  PipeCommandError,
  RemoteError,
  SlotOccupiedError,
  StorageError,
  TenantBusyError,
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
import type { BackupCommand, RestoreCommand, StorageFlags } from '../operations.js';
import { CRON_PAYLOAD_SOURCE } from '../schedule/cron-command.js';
import { expandTemplate } from '../schedule/destination-template.js';
import { redact } from '../storage/redact.js';
import { MAX_RECIPIENTS } from '../archive/encrypted-archive.js';

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
  /** Also report the owner of the base dir, of each tenant root, and mismatches below. */
  readonly ownership?: boolean;
  /** The identity the tree should belong to (the access point's POSIX user); only with `ownership`. */
  readonly expectUid?: number;
  readonly expectGid?: number;
}

export interface ParsedListRequest {
  readonly names: boolean;
  readonly ownership: boolean;
  readonly expectUid?: number;
  readonly expectGid?: number;
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
  UNSAFE_ARCHIVE: (message) => new UnsafeArchiveError(message),
  CORRUPT_ARCHIVE: (message) => new CorruptArchiveError(message),
  ARCHIVE_LIMIT: (message) => new ArchiveLimitError(message),
  SLOT_OCCUPIED: (message) => new SlotOccupiedError(message),
  // Its class holds the trees' names; the message names them too.
  RECOVERY_NEEDED: wireOnly('RECOVERY_NEEDED', 'refused'),
  TENANT_BUSY: (message) => new TenantBusyError(message),
  TENANT_NOT_FOUND: (message) => new TenantNotFoundError(message),
  DESTINATION_EXISTS: (message) => new DestinationExistsError(message),
  LOCATION_NOT_ALLOWED: (message) => new LocationNotAllowedError(message),
  OVERWRITE_NOT_ALLOWED: (message) => new OverwriteNotAllowedError(message),
  CRON_EXISTS: remote('CRON_EXISTS'),
  CRON_NAME_TAKEN: remote('CRON_NAME_TAKEN'),
  CRON_NOT_FOUND: remote('CRON_NOT_FOUND'),
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
};

// ---------------------------------------------------------------------------------------
// Requests

const STORAGE_KEYS = ['awsProfile', 'region', 'endpoint', 'accessKey', 'secretKey', 'pipe'] as const;

export function parseBackupCommand(value: unknown, what = 'backup request'): BackupCommand {
  const record = expectRecord(value, what);
  onlyKeys(record, ['tenant', 'to', 'overwrite', 'storage', 'encryptTo'], what);
  return {
    tenant: requiredString(record, 'tenant', what),
    to: requiredString(record, 'to', what),
    ...optionalBoolean(record, 'overwrite', what),
    ...optionalStorage(record, what),
    ...optionalRecipients(record, what),
  };
}

export function parseRestoreCommand(value: unknown): RestoreCommand {
  const what = 'restore request';
  const record = expectRecord(value, what);
  onlyKeys(record, ['from', 'as', 'force', 'limits', 'storage', 'identitySecret'], what);
  let limits: RestoreCommand['limits'];
  if (record.limits !== undefined) {
    const raw = expectRecord(record.limits, `${what} limits`);
    onlyKeys(raw, ['maxEntries', 'maxBytes'], `${what} limits`);
    for (const key of ['maxEntries', 'maxBytes'] as const) {
      const limit = raw[key];
      if (limit !== undefined && !(typeof limit === 'number' && Number.isSafeInteger(limit) && limit > 0)) {
        throw new InvalidRequestError(`${what}: limits.${key} must be a positive whole number`);
      }
    }
    limits = raw as RestoreCommand['limits'];
  }
  return {
    from: requiredString(record, 'from', what),
    ...(record.as !== undefined && { as: requiredString(record, 'as', what) }),
    ...optionalBoolean(record, 'force', what),
    ...(limits !== undefined && { limits }),
    ...optionalStorage(record, what),
    ...(record.identitySecret !== undefined && { identitySecret: requiredString(record, 'identitySecret', what) }),
  };
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
  onlyKeys(record, ['names', 'ownership', 'expectUid', 'expectGid'], what);
  const ownership = optionalBoolean(record, 'ownership', what).ownership ?? false;
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
  return { names: optionalBoolean(record, 'names', what).names ?? false, ownership, ...ids };
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

function requiredString(record: Record<string, unknown>, key: string, what: string): string {
  const value = record[key];
  if (typeof value !== 'string') throw new InvalidRequestError(`${what}: "${key}" must be a string`);
  return value;
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
  readonly eventId?: string;
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
  onlyKeys(record, ['source', 'tenant', 'cronName', 'time', 'eventId', 'command'], what);
  const tenant = requiredString(record, 'tenant', what);
  const cronName = requiredString(record, 'cronName', what);
  const command = parseBackupCommand(record.command, `${what} command`);
  if (command.tenant !== tenant) throw new InvalidRequestError(`${what}: the command backs up "${command.tenant}", not the cron's tenant "${tenant}"`);
  let time = now();
  let timeSource: ScheduledBackupRequest['timeSource'] = 'clock';
  if (record.time !== undefined && record.time !== null) {
    const parsed = typeof record.time === 'string' ? new Date(record.time) : new Date(Number.NaN);
    if (Number.isNaN(parsed.getTime())) throw new InvalidRequestError(`${what}: "time" must be an ISO 8601 time`);
    time = parsed;
    timeSource = 'event';
  }
  return {
    command: { ...command, to: expandTemplate(command.to, { time, tenant }) },
    cronName,
    time,
    timeSource,
    ...(typeof record.eventId === 'string' && { eventId: record.eventId }),
  };
}
