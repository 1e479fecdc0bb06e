// Typed errors for the whole core. Every failure a user can meet is one of these, with a
// stable `code` and an `outcome` the CLI and the Lambda handlers map to exit codes and
// responses; the message is one line a user can act on and never contains a secret.

/** How an operation ended, as seen by a caller: drives exit codes and HTTP-like statuses. */
export type Outcome = 'usage' | 'refused' | 'failed';

export abstract class OpenClawError extends Error {
  abstract readonly code: string;
  abstract readonly outcome: Outcome;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The request itself is malformed: a bad flag, name, URL or key. */
export class UsageError extends OpenClawError {
  readonly code: string;
  readonly outcome = 'usage' as const;
  constructor(message: string, code = 'USAGE') {
    super(message);
    this.code = code;
  }
}

/** A tenant name, `--as` value, S3 URL or key that breaks the rules. */
export class InvalidNameError extends UsageError {
  constructor(message: string) {
    super(message, 'INVALID_NAME');
  }
}

/** The archive is unsafe or not what it claims to be; nothing was committed. */
export class UnsafeArchiveError extends OpenClawError {
  readonly code = 'UNSAFE_ARCHIVE';
  readonly outcome = 'refused' as const;
  constructor(
    message: string,
    readonly entry?: string,
  ) {
    super(entry === undefined ? message : `${message}: ${JSON.stringify(entry)}`);
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
    readonly pending: {
      readonly tenant: string;
      /** Base names in the tenants dir: the verified restored tenant, the previous tenant. */
      readonly staging?: string;
      readonly aside?: string;
      readonly choices: readonly ('old' | 'new' | 'slot')[];
    },
  ) {
    super(message);
  }
}

/** Another operation holds the tenant's lock. */
export class TenantBusyError extends OpenClawError {
  readonly code = 'TENANT_BUSY';
  readonly outcome = 'refused' as const;
}

/** The tenant to back up does not exist or is not a plain directory. */
export class TenantNotFoundError extends OpenClawError {
  readonly code = 'TENANT_NOT_FOUND';
  readonly outcome = 'refused' as const;
}

/** The backup destination already holds an object and overwriting was not asked for. */
export class DestinationExistsError extends OpenClawError {
  readonly code = 'DESTINATION_EXISTS';
  readonly outcome = 'refused' as const;
}

/** Reading or writing a backup location failed (local file, S3, pipe command). */
export class StorageError extends OpenClawError {
  readonly outcome = 'failed' as const;
  constructor(
    message: string,
    readonly code: string = 'STORAGE',
    options?: { cause?: unknown },
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

/** Local file system trouble during backup or restore. */
export class FileSystemError extends OpenClawError {
  readonly code = 'FILESYSTEM';
  readonly outcome = 'failed' as const;
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
    const detail = errno.code && !error.message.startsWith(`${errno.code}:`) ? `${errno.code}: ` : '';
    return `unexpected error: ${detail}${firstLine(error.message)}`;
  }
  return `unexpected error: ${String(error)}`;
}

export function outcomeOf(error: unknown): Outcome {
  return error instanceof OpenClawError ? error.outcome : 'failed';
}

function firstLine(text: string): string {
  const newline = text.indexOf('\n');
  return newline === -1 ? text : text.slice(0, newline);
}
