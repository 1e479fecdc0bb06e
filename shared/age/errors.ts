// Typed errors of the age module. They subclass the core's OpenClawError so the CLI and the
// Lambda handlers map them to exit codes like every other error; each has a stable code.
// Messages are one line and never contain a secret key (recipients are public and may be
// quoted, identities never are).

import { OpenClawError } from '../errors.js';

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
  ) {
    super(message);
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
  ) {
    super(message);
  }
}

/** The header exceeds a safety limit (total size, line length, stanza count). */
export class AgeHeaderLimitError extends OpenClawError {
  readonly code = 'AGE_HEADER_LIMIT';
  readonly outcome = 'refused' as const;
}
