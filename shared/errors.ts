// Every error a user can meet, in one registry. Each is an OpenClawError with a stable
// `code` from ERROR_CODES and the `outcome` that code stands for, which the CLI maps to an
// exit code and the Lambda handlers put on the wire; the message is one line a user can act
// on and never contains a secret. Every class accepts a `cause` (kept for logs, never shown).
// The remote side switches over ErrorCode exhaustively (control-plane/protocol.ts); a code
// this version does not know (a newer gateway's) arrives as a WireError.
//
// System errors (errno) are described in words by one helper, `errnoMessage`, wherever the
// core turns them into one of these.

import { statfsSync } from 'node:fs';
import { constants } from 'node:os';
import path from 'node:path';

import { quotedPath, shownPath } from './format.js';

/** How an operation ended, as seen by a caller: drives exit codes and HTTP-like statuses. */
export type Outcome = 'usage' | 'refused' | 'failed';

/** Every code, with the outcome it stands for. */
const CODES = {
  // The request is malformed: exit 2.
  USAGE: 'usage',
  INVALID_NAME: 'usage',
  INVALID_SCHEDULE: 'usage',
  INVALID_CRON_COMMAND: 'usage',
  /** A Lambda request the function does not accept. */
  INVALID_REQUEST: 'usage',
  NO_REGION: 'usage',
  /** A command that needs a deployed gateway (`--stack`). */
  REMOTE_ONLY: 'usage',
  /** A flag or location remote mode cannot serve (`--pipe`, a local path). */
  REMOTE_UNSUPPORTED: 'usage',
  STACK_NOT_FOUND: 'usage',
  /** An age recipient or identity (or a file of them) that cannot be used. */
  AGE_BAD_RECIPIENT: 'usage',
  AGE_BAD_IDENTITY: 'usage',
  /** A local backup destination inside the tenant base dir (it would become part of a tenant, or one). */
  DESTINATION_IN_TENANTS_DIR: 'usage',

  // Refused, nothing changed: exit 3.
  UNSAFE_ARCHIVE: 'refused',
  CORRUPT_ARCHIVE: 'refused',
  ARCHIVE_LIMIT: 'refused',
  SLOT_OCCUPIED: 'refused',
  RECOVERY_NEEDED: 'refused',
  TENANT_BUSY: 'refused',
  /** A piece of a backup in pieces whose chain has ended (completed, failed, or cleaned up as abandoned). */
  CONTINUATION_ENDED: 'refused',
  TENANT_NOT_FOUND: 'refused',
  DESTINATION_EXISTS: 'refused',
  /** A bucket or endpoint the deployment does not allow. */
  LOCATION_NOT_ALLOWED: 'refused',
  OVERWRITE_NOT_ALLOWED: 'refused',
  CRON_EXISTS: 'refused',
  CRON_NAME_TAKEN: 'refused',
  CRON_NOT_FOUND: 'refused',
  /** Object Lock or a legal hold keeps a backup that prune would remove. */
  OBJECT_LOCKED: 'refused',
  /** Prune could not read the tags (verification marks) of the backups it judges: nothing was removed. */
  MARKS_UNREADABLE: 'refused',
  /** A dry run found that the real run would be refused (it printed why). */
  DRY_RUN_REFUSED: 'refused',
  // Encrypted archives (age).
  AGE_NOT_ENCRYPTED: 'refused',
  AGE_UNSUPPORTED: 'refused',
  AGE_NO_IDENTITY_MATCHED: 'refused',
  AGE_DAMAGED: 'refused',
  AGE_HEADER_LIMIT: 'refused',

  // Failed: exit 1.
  ABORTED: 'failed',
  FILESYSTEM: 'failed',
  /** The tenant base dir does not exist (a wrong --tenants-dir, an unmounted volume). */
  TENANTS_DIR_NOT_FOUND: 'failed',
  /** The local `crontab` command failed (cron add|list|rm without --stack). */
  CRONTAB_FAILED: 'failed',
  PIPE_FAILED: 'failed',
  /** What this Node needs for zstd or SQLite (a built-in, or an optional package on Node 20) is missing. */
  MODULE_UNAVAILABLE: 'failed',
  /** A live SQLite database of which no consistent copy could be had (and no --sqlite-raw-fallback). */
  SQLITE_SNAPSHOT_FAILED: 'failed',
  // Storage (local file, S3, S3-compatible store).
  STORAGE: 'failed',
  NOT_FOUND: 'failed',
  NOT_A_FILE: 'failed',
  NOT_A_DIRECTORY: 'failed',
  ACCESS_DENIED: 'failed',
  NO_SPACE: 'failed',
  READ_ONLY: 'failed',
  NAME_TOO_LONG: 'failed',
  IO: 'failed',
  SHORT_WRITE: 'failed',
  READ_FAILED: 'failed',
  INVALID_METADATA: 'failed',
  S3: 'failed',
  NO_SUCH_BUCKET: 'failed',
  INVALID_CREDENTIALS: 'failed',
  NO_CREDENTIALS: 'failed',
  EXPIRED_CREDENTIALS: 'failed',
  CLOCK_SKEW: 'failed',
  WRONG_REGION: 'failed',
  UNREACHABLE: 'failed',
  THROTTLED: 'failed',
  CHANGED: 'failed',
  NOT_SUPPORTED: 'failed',
  TOO_LARGE: 'failed',
  // The control plane (Lambda, EventBridge, EFS, EC2 calls of remote mode).
  AWS_ERROR: 'failed',
  REMOTE_TIMEOUT: 'failed',
  REMOTE_FUNCTION_ERROR: 'failed',
  REMOTE_PROTOCOL: 'failed',
  CRON_TARGET_FAILED: 'failed',
  /** `doctor` found failing checks (already printed). */
  DOCTOR_FAILED: 'failed',
  /** `backup --all`: some tenants' backups failed (each named in the summary already printed). */
  BACKUP_ALL_FAILED: 'failed',
  /** `tenants backup --all` could not queue every tenant (the ones left out already printed). */
  BACKUP_ALL_INCOMPLETE: 'failed',
  /** `tenants list`: a name that looks like a tenant was left out (a symlinked directory; each named on stderr already). */
  TENANTS_SKIPPED: 'failed',
  /** `tenants list`: a tenant was listed but not summed (unreadable, or its walk outlasted the list function; its STATE column says which). */
  TENANTS_NOT_SUMMED: 'failed',
} as const satisfies Record<string, Outcome>;

export type ErrorCode = keyof typeof CODES;
export const ERROR_CODES = Object.keys(CODES) as readonly ErrorCode[];

/** The codes of one outcome. */
export type CodeOf<O extends Outcome> = { [C in ErrorCode]: (typeof CODES)[C] extends O ? C : never }[ErrorCode];
export type UsageCode = CodeOf<'usage'>;

/** Codes a storage location fails with. */
export type StorageCode =
  | 'STORAGE'
  | 'NOT_FOUND'
  | 'NOT_A_FILE'
  | 'NOT_A_DIRECTORY'
  | 'ACCESS_DENIED'
  | 'NO_SPACE'
  | 'READ_ONLY'
  | 'NAME_TOO_LONG'
  | 'IO'
  | 'SHORT_WRITE'
  | 'READ_FAILED'
  | 'INVALID_METADATA'
  | 'S3'
  | 'NO_SUCH_BUCKET'
  | 'INVALID_CREDENTIALS'
  | 'NO_CREDENTIALS'
  | 'EXPIRED_CREDENTIALS'
  | 'CLOCK_SKEW'
  | 'WRONG_REGION'
  | 'UNREACHABLE'
  | 'THROTTLED'
  | 'CHANGED'
  | 'NOT_SUPPORTED'
  | 'TOO_LARGE';

/** Codes of the control plane's own failures and refusals (remote mode's AWS calls, `cron`). */
export type RemoteCode =
  | 'NO_CREDENTIALS'
  | 'ACCESS_DENIED'
  | 'INVALID_CREDENTIALS'
  | 'THROTTLED'
  | 'AWS_ERROR'
  | 'REMOTE_TIMEOUT'
  | 'REMOTE_FUNCTION_ERROR'
  | 'REMOTE_PROTOCOL'
  | 'CRON_EXISTS'
  | 'CRON_NAME_TAKEN'
  | 'CRON_NOT_FOUND'
  | 'CRON_TARGET_FAILED';

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(CODES, code);
}

export function outcomeOfCode(code: ErrorCode): Outcome {
  return CODES[code];
}

export interface ErrorOptions {
  readonly cause?: unknown;
}

export abstract class OpenClawError extends Error {
  abstract readonly code: ErrorCode | ForeignCode;
  abstract readonly outcome: Outcome;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The request itself is malformed: a bad flag, name, URL or key. */
export class UsageError extends OpenClawError {
  readonly code: UsageCode;
  readonly outcome = 'usage' as const;
  constructor(message: string, code: UsageCode = 'USAGE', options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** A tenant name, `--as` value, S3 URL or key that breaks the rules. */
export class InvalidNameError extends UsageError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'INVALID_NAME', options);
  }
}

/** A schedule EventBridge cannot express, or not a valid schedule at all. */
export class CronScheduleError extends UsageError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'INVALID_SCHEDULE', options);
  }
}

/** A cron `--cmd`, a `--to` template, or a rule name that breaks the rules. */
export class CronCommandError extends UsageError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'INVALID_CRON_COMMAND', options);
  }
}

/** A request that is not what a gateway function accepts (wrong fields, wrong types). */
export class InvalidRequestError extends UsageError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'INVALID_REQUEST', options);
  }
}

/** The archive is unsafe or not what it claims to be; nothing was committed. */
export class UnsafeArchiveError extends OpenClawError {
  readonly code = 'UNSAFE_ARCHIVE';
  readonly outcome = 'refused' as const;
  constructor(
    message: string,
    readonly entry?: string,
    options?: ErrorOptions,
  ) {
    super(entry === undefined ? message : `${message}: ${quotedPath(entry)}`, options);
  }
}

/** The archive is damaged: truncated, undecodable, or its content does not match its manifest. */
export class CorruptArchiveError extends OpenClawError {
  readonly code = 'CORRUPT_ARCHIVE';
  readonly outcome = 'refused' as const;
}

/** The archive exceeds a configured safety limit (entry count, unpacked bytes). */
export class ArchiveLimitError extends OpenClawError {
  readonly code = 'ARCHIVE_LIMIT';
  readonly outcome = 'refused' as const;
}

/** The restore target slot holds a tenant and `--force` was not given. */
export class SlotOccupiedError extends OpenClawError {
  readonly code = 'SLOT_OCCUPIED';
  readonly outcome = 'refused' as const;
}

/** Which trees an interrupted restore left, and which `tenants recover --keep` choices settle it. */
export interface PendingRecovery {
  readonly tenant: string;
  /** Base names in the tenants dir: the verified restored tenant, the previous tenant. */
  readonly staging?: string;
  readonly aside?: string;
  readonly choices: readonly ('old' | 'new' | 'slot')[];
}

/**
 * An interrupted restore left trees that recovery cannot settle without losing one (the
 * slot was re-created while the old tenant was set aside): nothing was moved; the message
 * names each directory, what it holds, and the `tenants recover --keep` choices.
 */
export class RecoveryNeededError extends OpenClawError {
  readonly code = 'RECOVERY_NEEDED';
  readonly outcome = 'refused' as const;
  constructor(
    message: string,
    readonly pending: PendingRecovery,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

// ---- Encrypted archives (shared/age/). Messages never quote a secret key.

/** An `age1…` recipient (or a recipients file) that cannot be used: exit 2. */
export class AgeBadRecipientError extends OpenClawError {
  readonly code = 'AGE_BAD_RECIPIENT';
  readonly outcome = 'usage' as const;
}

/** An `AGE-SECRET-KEY-1…` identity (or an identity file) that cannot be used: exit 2. */
export class AgeBadIdentityError extends OpenClawError {
  readonly code = 'AGE_BAD_IDENTITY';
  readonly outcome = 'usage' as const;
}

/** The input does not start like an age file at all (no `age-encryption.org/v1` line). */
export class AgeNotEncryptedError extends OpenClawError {
  readonly code = 'AGE_NOT_ENCRYPTED';
  readonly outcome = 'refused' as const;
}

/**
 * A well-formed age file this module does not decrypt: another format version, ASCII armor,
 * or a passphrase (scrypt) stanza.
 */
export class AgeUnsupportedError extends OpenClawError {
  readonly code = 'AGE_UNSUPPORTED';
  readonly outcome = 'refused' as const;
}

/** None of the given identities opens any recipient stanza of the file (the wrong key). */
export class AgeNoIdentityMatchedError extends OpenClawError {
  readonly code = 'AGE_NO_IDENTITY_MATCHED';
  readonly outcome = 'refused' as const;
  constructor(
    message: string,
    /** The stanza types the header carries, e.g. `["X25519", "X25519"]`. */
    readonly recipientTypes: readonly string[],
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Which part of the file was found damaged. */
export type AgeDamagedPart = 'header' | 'header-mac' | 'payload';

/**
 * The file is malformed, truncated, tampered with or extended: the header breaks the format's
 * rules, its MAC does not match, or a payload chunk fails authentication, is missing, or is
 * followed by data. Plaintext released before the error was authentic; the rest is refused.
 */
export class AgeDamagedError extends OpenClawError {
  readonly code = 'AGE_DAMAGED';
  readonly outcome = 'refused' as const;
  constructor(
    message: string,
    readonly part: AgeDamagedPart,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The header exceeds a safety limit (total size, line length, stanza count). */
export class AgeHeaderLimitError extends OpenClawError {
  readonly code = 'AGE_HEADER_LIMIT';
  readonly outcome = 'refused' as const;
}

/** Another operation holds the tenant's lock. */
export class TenantBusyError extends OpenClawError {
  readonly code = 'TENANT_BUSY';
  readonly outcome = 'refused' as const;
  /**
   * The holder is a backup of the tenant to this very destination (its lock names it): the
   * same backup asked twice (SQS delivers a message twice now and then), which the second
   * need not run. Set too for a piece of a restore in pieces whose chain holds the lock
   * (lock.ts `target`), which only the backup's queue handler reads.
   */
  sameBackup?: boolean;
}

/** The backup a continuation message names has ended: nothing is left to continue (backup/continuation.ts). */
export class ContinuationEndedError extends OpenClawError {
  readonly code = 'CONTINUATION_ENDED';
  readonly outcome = 'refused' as const;
}

/** The tenant to back up does not exist or is not a plain directory. */
export class TenantNotFoundError extends OpenClawError {
  readonly code = 'TENANT_NOT_FOUND';
  readonly outcome = 'refused' as const;
  /** The name looked for and the base dir it is not in, when nothing is there by that name (the CLI suggests a near one). */
  readonly absent?: { readonly tenant: string; readonly tenantsDir: string };
  constructor(message: string, absent?: { readonly tenant: string; readonly tenantsDir: string }, options?: ErrorOptions) {
    super(message, options);
    if (absent !== undefined) this.absent = absent;
  }
}

/**
 * The tenant base dir is missing: an error, never "no tenants" (a loop over `tenants list`
 * would back up nothing and succeed). A restore creates it instead.
 */
export class TenantsDirNotFoundError extends OpenClawError {
  readonly code = 'TENANTS_DIR_NOT_FOUND';
  readonly outcome = 'failed' as const;
}

/** The backup destination already holds an object and overwriting was not asked for. */
export class DestinationExistsError extends OpenClawError {
  readonly code = 'DESTINATION_EXISTS';
  readonly outcome = 'refused' as const;
  /** The scheduled run whose backup stored the archive already there, when the store's metadata names one. */
  readonly storedByRun?: string;
  constructor(message: string, existing: { readonly storedByRun?: string } = {}, options?: ErrorOptions) {
    super(message, options);
    if (existing.storedByRun !== undefined) this.storedByRun = existing.storedByRun;
  }
}

/** Object Lock or a legal hold keeps the data of a backup prune would remove: nothing was removed. */
export class ObjectLockedError extends OpenClawError {
  readonly code = 'OBJECT_LOCKED';
  readonly outcome = 'refused' as const;
}

/** Prune could not read the S3 tags of some backups (access denied): it cannot tell which one was verified, so it removes nothing. */
export class MarksUnreadableError extends OpenClawError {
  readonly code = 'MARKS_UNREADABLE';
  readonly outcome = 'refused' as const;
}

/** The request names a bucket or endpoint this deployment does not allow. */
export class LocationNotAllowedError extends OpenClawError {
  readonly code = 'LOCATION_NOT_ALLOWED';
  readonly outcome = 'refused' as const;
}

/** `--overwrite` on a gateway whose deployer did not allow it. */
export class OverwriteNotAllowedError extends OpenClawError {
  readonly code = 'OVERWRITE_NOT_ALLOWED';
  readonly outcome = 'refused' as const;
}

/** Reading or writing a backup location failed (local file, S3, pipe command). */
export class StorageError extends OpenClawError {
  readonly outcome = 'failed' as const;
  constructor(
    message: string,
    readonly code: StorageCode = 'STORAGE',
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The `--pipe` command failed (could not start, or exited non-zero). */
export class PipeCommandError extends OpenClawError {
  readonly code = 'PIPE_FAILED';
  readonly outcome = 'failed' as const;
}

/** The operation was interrupted (Ctrl-C, SIGTERM, Lambda timeout). */
export class AbortedError extends OpenClawError {
  readonly code = 'ABORTED';
  readonly outcome = 'failed' as const;
}

/** A prune interrupted after it removed some backups: run again, it goes on with the rest. */
export class PruneStoppedError extends AbortedError {}

/**
 * This process lacks what an operation needs: zstd (node:zlib on Node ≥ 22.15, else the
 * optional @mongodb-js/zstd) or SQLite (node:sqlite on Node ≥ 22.16, else the optional
 * better-sqlite3). A deployment error: the message says what to install.
 */
export class ModuleUnavailableError extends OpenClawError {
  readonly code = 'MODULE_UNAVAILABLE';
  readonly outcome = 'failed' as const;
}

/**
 * No transactionally consistent copy of a live SQLite database could be taken (it kept
 * changing under every copy, or stayed locked), so the tenant's backup fails rather than
 * archive it raw; `--sqlite-raw-fallback` archives it raw with a warning instead.
 */
export class SqliteSnapshotError extends OpenClawError {
  readonly code = 'SQLITE_SNAPSHOT_FAILED';
  readonly outcome = 'failed' as const;
}

/** Local file system trouble during backup or restore. */
export class FileSystemError extends OpenClawError {
  readonly code = 'FILESYSTEM';
  readonly outcome = 'failed' as const;
}

/** The user's crontab, as `cron add|list|rm` edit it in local mode: an entry that exists or not, or `crontab` failing. */
export class LocalCronError extends OpenClawError {
  readonly outcome: Outcome;
  constructor(
    readonly code: 'CRON_EXISTS' | 'CRON_NOT_FOUND' | 'CRONTAB_FAILED',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.outcome = CODES[code];
  }
}

/** A failure or refusal of the control plane: an AWS call of remote mode, a cron rule, the gateway's answer. */
export class RemoteError extends OpenClawError {
  readonly outcome: Outcome;
  constructor(
    readonly code: RemoteCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.outcome = CODES[code];
  }
}

/** A code this version does not know: one a newer gateway reported. */
export type ForeignCode = string & { readonly foreign: unique symbol };

/**
 * An error known only by what the wire carries (code, outcome, message): one with a code
 * this version does not know (a newer gateway's), or one whose class holds context the
 * wire does not (RecoveryNeededError's trees).
 */
export class WireError extends OpenClawError {
  readonly code: ErrorCode | ForeignCode;
  constructor(
    code: string,
    readonly outcome: Outcome,
    message: string,
  ) {
    super(message);
    this.code = code as ErrorCode | ForeignCode;
  }
}

/**
 * A failure the command has already reported in full (e.g. `doctor`'s checklist): the CLI
 * exits with its outcome's code without printing it again.
 */
export class ReportedError extends OpenClawError {
  readonly outcome: Outcome;
  constructor(
    readonly code: 'DOCTOR_FAILED' | 'BACKUP_ALL_FAILED' | 'BACKUP_ALL_INCOMPLETE' | 'DRY_RUN_REFUSED' | 'TENANTS_SKIPPED' | 'TENANTS_NOT_SUMMED',
    message: string,
    outcome: Outcome = CODES[code],
  ) {
    super(message);
    this.outcome = outcome;
  }
}

/**
 * A dry run that found the real run would not go through, printed already: it exits as the real
 * run would for the same cause, by the code the plan gives it (`SLOT_OCCUPIED`,
 * `DESTINATION_EXISTS`: refused, 3; `FILESYSTEM`, `ACCESS_DENIED`, `NO_SPACE`: failed, 1).
 * A restore dry run into a base dir it could not write exited 3 where the restore exits 1.
 */
export function dryRunRefused(refusal: { readonly code: string; readonly message: string }): ReportedError {
  return new ReportedError('DRY_RUN_REFUSED', refusal.message, dryRunOutcome(refusal));
}

/**
 * How the real run would end for a dry run's refusal (by its code: an unknown one, a newer
 * gateway's, fails): what the dry run exits with and says ("would be REFUSED", "would FAIL").
 */
export function dryRunOutcome(refusal: { readonly code: string }): Outcome {
  return Object.hasOwn(CODES, refusal.code) ? CODES[refusal.code as ErrorCode] : 'failed';
}

/** `EACCES` or `EPERM` when the system refused `error` (or one of its causes) for want of permission; undefined otherwise. */
export function permissionErrno(error: unknown): 'EACCES' | 'EPERM' | undefined {
  for (let cause: unknown = error; cause instanceof Error; cause = cause.cause) {
    const code = errnoCode(cause);
    if (code === 'EACCES' || code === 'EPERM') return code;
  }
  return undefined;
}

/**
 * A gateway function's environment is wrong: thrown at cold start, so the deployment fails
 * loudly instead of every invocation later. Not an OpenClawError: no user request caused it.
 */
export class FunctionConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FunctionConfigError';
  }
}

export function isOpenClawError(error: unknown): error is OpenClawError {
  return error instanceof OpenClawError;
}

/**
 * One line for a user: OpenClaw errors speak for themselves; anything else (a bug or an
 * unexpected system error) is summarised with its errno code, never a stack trace.
 */
export function describeError(error: unknown): string {
  if (error instanceof OpenClawError) return error.message;
  if (error instanceof Error) {
    const errno = error as NodeJS.ErrnoException;
    if (errno.code === 'ERR_WORKER_INIT_FAILED' && error.message === 'EAGAIN') return `cannot start a thread: ${NO_MORE_PROCESSES}`;
    const detail = errno.code && !error.message.startsWith(`${errno.code}:`) ? `${errno.code}: ` : '';
    return `unexpected error: ${detail}${firstLine(withPathsShown(error.message, errno))}`;
  }
  return `unexpected error: ${String(error)}`;
}

/**
 * A system error the core explains in words, with the path (or the call) it names:
 * "input/output error (/srv/tenants/acme)"; anything else as `describeError` says it.
 */
export function describeSystemError(error: unknown): string {
  const what = errnoMessage(error);
  if (what === undefined) return describeError(error);
  const { path: where, syscall } = error as NodeJS.ErrnoException;
  const place = where !== undefined ? ` (${shownPath(where)})` : syscall !== undefined ? ` (${syscall})` : '';
  return `${what}${place}`;
}

export function outcomeOf(error: unknown): Outcome {
  return error instanceof OpenClawError ? error.outcome : 'failed';
}

/**
 * Why a thread or process could not start (EAGAIN from pthread_create or fork): the user's
 * limit of processes and threads, which counts each thread of each of their processes.
 */
export const NO_MORE_PROCESSES = 'the limit of processes and threads is reached (raise it: ulimit -u)';

/** System errors the core explains in words: the file system refused, not our bug. */
const ERRNO_MESSAGES: Readonly<Record<string, string>> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'a file is larger than this file system or the file-size limit (ulimit -f) allows',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EMFILE: 'too many open files (raise the open-file limit: ulimit -n)',
  ENFILE: 'too many open files in the system',
  EIO: 'input/output error',
  ENAMETOOLONG: 'a name is too long for this file system',
  EMLINK: 'too many links or subdirectories for this file system',
  EBUSY: 'the device or resource is busy',
  EXDEV: 'cannot move across file systems',
};

/** Errno names by number (Linux: 122 is EDQUOT). */
const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([name, number]) => [number, name]));

/**
 * The errno code of a system error (`ENOSPC`), if it is one. Node 20's libuv has no name for
 * some errors the kernel returns (EDQUOT: a quota exceeded on write or fsync); they arrive as
 * `UNKNOWN` (synchronous calls) or `Unknown system error -122` (asynchronous ones), and are
 * named here by their number.
 */
export function errnoCode(error: unknown): string | undefined {
  const { code, errno } = (error ?? {}) as NodeJS.ErrnoException;
  if (typeof code !== 'string') return undefined;
  if ((code === 'UNKNOWN' || code.startsWith('Unknown system error')) && typeof errno === 'number') return ERRNO_NAMES.get(Math.abs(errno)) ?? code;
  return code;
}

/** What a system error means, in words ("no space left on the device"); undefined for anything else. */
export function errnoMessage(error: unknown): string | undefined {
  if (error instanceof OpenClawError) return undefined;
  const code = errnoCode(error);
  if (code === 'ENOSPC' && isOutOfInodes((error as NodeJS.ErrnoException).path)) return NO_INODE_LEFT;
  return code === undefined ? undefined : ERRNO_MESSAGES[code];
}

export const NO_INODE_LEFT = 'no inode left on the device (there may be space left: see df -i)';

/**
 * Whether ENOSPC at `at` (the path a call failed on) means no inode left rather than no space:
 * its file system counts inodes and has none free (tmpfs with nr_inodes, ext4 with many small
 * files), where "no space left" sent the operator to `df`, which showed space free.
 */
function isOutOfInodes(at: string | undefined): boolean {
  if (typeof at !== 'string' || at === '') return false;
  for (let dir = at; ; dir = path.dirname(dir)) {
    try {
      const stats = statfsSync(dir);
      return stats.files > 0 && stats.ffree === 0;
    } catch {
      if (path.dirname(dir) === dir) return false;
    }
  }
}

/**
 * A system error's message with the paths Node quoted in it (`open '/x/a'`, `link '/a' -> '/b'`)
 * shown as names are (format.ts): a name may hold a newline, which would cut the message at
 * the first line, or a backslash, which would pass for an escape.
 */
function withPathsShown(message: string, error: NodeJS.ErrnoException & { dest?: unknown }): string {
  let shown = message;
  for (const quoted of [error.path, error.dest]) {
    if (typeof quoted === 'string' && quoted !== '') shown = shown.replaceAll(`'${quoted}'`, quotedPath(quoted));
  }
  return shown;
}

function firstLine(text: string): string {
  const newline = text.indexOf('\n');
  return newline === -1 ? text : text.slice(0, newline);
}
