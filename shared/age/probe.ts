// Looking at an age file without decrypting it: whether a byte prefix is an age file (for
// "encrypted?" in listings and hints), and which recipient stanza types its header carries
// (for `backups`). Both read only a prefix the caller already has; the summary parses the
// header strictly, with the same limits as decryption.

import { AGE_MAGIC, ARMOR_BEGIN, DEFAULT_HEADER_LIMITS, parseHeaderPrefix, VERSION_PREFIX, type HeaderLimits } from './header.js';

const MAGIC = Buffer.from(AGE_MAGIC, 'latin1');

/** Bytes `isAgeFile` needs to see: the `age-encryption.org/v1\n` line. */
export const AGE_MAGIC_BYTES = MAGIC.length;

/** Whether `prefix` starts with the age v1 magic line (binary age file; not ASCII armor). */
export function isAgeFile(prefix: Uint8Array): boolean {
  return startsWith(prefix, MAGIC);
}

const VERSION_START = Buffer.from(VERSION_PREFIX, 'latin1');

/**
 * Whether `prefix` starts with age's version line, whatever follows `age-encryption.org/`:
 * a v1 file, another version, or a v1 file whose line ends a text tool converted. Read as
 * age, such a file gets age's own diagnosis instead of being taken for something else.
 */
export function startsLikeAgeFile(prefix: Uint8Array): boolean {
  return startsWith(prefix, VERSION_START);
}

/** The start of age's ASCII armor (`age -a`): `-----BEGIN AGE ENCRYPTED FILE-----`, as far as AGE_MAGIC_BYTES show it. */
const ARMOR_START = Buffer.from(ARMOR_BEGIN, 'latin1').subarray(0, AGE_MAGIC_BYTES);

/** Whether `prefix` starts like an ASCII-armored age file (PEM-style base64, `age -a`). */
export function isArmoredAgeFile(prefix: Uint8Array): boolean {
  return startsWith(prefix, ARMOR_START);
}

function startsWith(prefix: Uint8Array, start: Buffer): boolean {
  return prefix.length >= start.length && start.equals(Buffer.from(prefix.buffer, prefix.byteOffset, start.length));
}

export interface AgeHeaderSummary {
  /** The stanza types in header order, e.g. `["X25519", "X25519"]`. */
  readonly recipientTypes: readonly string[];
  /** Length of the header, MAC line included (the payload nonce follows it). */
  readonly headerBytes: number;
}

/**
 * Summarises the header at the start of `prefix`, or returns undefined when `prefix` ends
 * before the header does (read more, up to `limits.maxHeaderBytes`; a header with a few
 * X25519 recipients takes about 100 bytes each). Throws the typed errors of the header
 * parser for input that is not a well-formed age header.
 */
export function summarizeAgeHeader(prefix: Uint8Array, limits: HeaderLimits = DEFAULT_HEADER_LIMITS): AgeHeaderSummary | undefined {
  const done = parseHeaderPrefix(prefix, limits);
  if (done === undefined) return undefined;
  return { recipientTypes: done.header.stanzas.map((stanza) => stanza.type), headerBytes: done.header.length };
}
