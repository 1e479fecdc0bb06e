// Built-in encryption of stored archives (`--encrypt-to` / `--identity`): the one seam between
// the archive's bytes (tar.zst) and what a location stores. Backup compresses, then encrypts
// (`encryptArchive`); every reader of a stored archive (restore; verify and listings later)
// turns the stored bytes back into the tar.zst stream with `plaintextArchive`, which looks at
// the first bytes: an age file is decrypted with the identities given, or refused with a
// hint when there are none; anything else passes through unchanged. The stored object is a
// standard age v1 file (`age -d -i key.txt FILE | zstd -d | tar -t` reads it), also when a
// backup wrote it in pieces, in several processes (`encryptArchivePiece`).
//
// Memory: one 64 KiB age chunk plus the input chunk in hand (shared/age/). Plaintext leaves
// the decryptor only once its chunk authenticated; a wrong key, a truncated or tampered file
// fails as a typed age error (exit 3), so a restore that meets one commits nothing.

import { AgeBadRecipientError, AgeHeaderLimitError, AgeNoIdentityMatchedError, AgeUnsupportedError, UsageError } from '../errors.js';
import { AgeDecryptor } from '../age/decrypt.js';
import { AgeEncryptor, encryptAge, type SuspendedAgeFile } from '../age/encrypt.js';
import { takeJoined } from '../age/stream.js';
import { loadRecipientsFile, parseRecipient, type AgeIdentity, type AgeRecipient } from '../age/keys.js';
import { AGE_MAGIC_BYTES, isArmoredAgeFile, startsLikeAgeFile } from '../age/probe.js';
import { X25519_STANZA_TYPE } from '../age/x25519.js';

/** At most this many recipients per backup (each adds a stanza of ~100 bytes to the header). */
export const MAX_RECIPIENTS = 64;
/** At most this many recipient texts are read for one backup, the same key given more than once included. */
const MAX_RECIPIENT_TEXTS = MAX_RECIPIENTS * 4;

/**
 * The recipients a backup is encrypted to, from their `age1…` texts: each one checked (a bad
 * one is an AgeBadRecipientError naming it), written canonically, the same key once.
 */
export function backupRecipients(texts: readonly string[]): AgeRecipient[] {
  if (texts.length > MAX_RECIPIENT_TEXTS) throw tooManyRecipients(texts.length);
  const recipients: AgeRecipient[] = [];
  for (const text of texts) {
    const recipient = parseRecipient(text);
    // The same key twice would only make the header longer.
    if (!recipients.some((other) => other.text === recipient.text)) recipients.push(recipient);
  }
  if (recipients.length > MAX_RECIPIENTS) throw tooManyRecipients(recipients.length);
  return recipients;
}

/**
 * `texts` and then the keys of the recipients files `files` (read on this machine), for
 * backupRecipients. A file is refused by its count of keys before any is parsed, as
 * backupRecipients refuses that many texts: 10,000 keys in one file took 5.6 s to be refused, a
 * 16 MiB file (its size limit) some two minutes.
 */
export async function withRecipientsFiles(texts: readonly string[], files: readonly string[], signal?: AbortSignal): Promise<string[]> {
  const all = [...texts];
  for (const file of files) {
    const given = all.length;
    const bound = { most: MAX_RECIPIENT_TEXTS - given, tooMany: (count: number) => tooManyRecipients(given + count) };
    all.push(...(await loadRecipientsFile(file, signal, bound)).map((recipient) => recipient.text));
  }
  return all;
}

/**
 * Refuses to store a plaintext archive under a name ending in `.age`: the name says it is
 * encrypted, so the recipients were forgotten (or lost on the way to a schedule).
 */
export function assertNotPlaintextAsAge(to: string): void {
  if (!/\.age$/i.test(to)) return;
  throw new UsageError(
    `${JSON.stringify(to)} ends in ".age" but nothing encrypts the archive: give --encrypt-to age1… or --recipients-file FILE ` +
      '(or encrypt with --pipe "age -r …"), or store it under a name without ".age"',
  );
}

function tooManyRecipients(count: number): AgeBadRecipientError {
  return new AgeBadRecipientError(`too many recipients (${count}): at most ${MAX_RECIPIENTS}`);
}

/** The archive's chunks, encrypted to `recipients` (one output buffer per input chunk). */
export function encryptArchive(chunks: AsyncIterable<Uint8Array>, recipients: readonly AgeRecipient[]): AsyncGenerator<Uint8Array> {
  return encryptAge(chunks, recipients);
}

/**
 * One piece of an encrypted archive written in pieces (backup/backup.ts): the first piece is
 * given the recipients (the header comes first), the others where the last one stopped. Once
 * `chunks` ends, the age file ends, or, when `suspendWhen()` says so, is suspended: then
 * `suspended()` answers where it stands, for the next piece (its payload key is a secret).
 */
export function encryptArchivePiece(
  chunks: AsyncIterable<Uint8Array>,
  from: readonly AgeRecipient[] | SuspendedAgeFile,
  suspendWhen: () => boolean,
): { readonly chunks: AsyncGenerator<Uint8Array>; suspended(): SuspendedAgeFile | undefined } {
  // Created here, not in the generator: a bad recipient or saved position fails before any byte is read.
  const encryptor = new AgeEncryptor(from);
  let suspended: SuspendedAgeFile | undefined;
  async function* piece(): AsyncGenerator<Uint8Array> {
    const out: Uint8Array[] = [];
    for await (const chunk of chunks) {
      encryptor.write(chunk, out);
      const joined = takeJoined(out);
      if (joined !== undefined) yield joined;
    }
    if (suspendWhen()) suspended = encryptor.suspend(out);
    else encryptor.end(out);
    const joined = takeJoined(out);
    if (joined !== undefined) yield joined;
  }
  return { chunks: piece(), suspended: () => suspended };
}

export interface PlaintextOptions {
  /** Identities to decrypt an age-encrypted archive with; none: such an archive is refused with a hint. */
  readonly identities?: readonly AgeIdentity[];
  /** How to name the archive in messages (no credentials). */
  readonly display: string;
  /** Told once, before the first plaintext byte, whether the stored bytes are age-encrypted. */
  readonly onFormat?: (encrypted: boolean) => void;
  /** Where the hints send an age file read only by the `age` CLI (AgeCliRoute). @default 'pipe' */
  readonly ageCli?: AgeCliRoute;
}

/**
 * Where the `age` CLI can open an age file this module does not read (a passphrase, SSH or
 * plugin recipients, ASCII armor, a header past the limits): 'pipe', through `--pipe` on this
 * machine; 'download' in the gateway's functions, which run no shell (`--pipe` is refused in
 * remote mode), so only on a copy, restored by the CLI without `--stack`.
 */
export type AgeCliRoute = 'pipe' | 'download';

/** How to run `age` (`command`) on `display` by `route`, for the end of a message. */
function ageCliHint(route: AgeCliRoute, display: string, command: string): string {
  if (route === 'pipe') return `decrypt it with --pipe "${command}"`;
  return `download it (aws s3 cp ${display} FILE; remote mode runs no --pipe) and restore it without --stack, through --pipe "${command}"`;
}

/** The hint for an encrypted archive read without an identity. */
export function encryptedArchiveHint(display: string, route: AgeCliRoute = 'pipe'): string {
  const start = `${display} is encrypted with age (it starts with the age header): give the identity that decrypts it, `;
  if (route === 'download') return `${start}--identity-secret NAME (an age identity in Secrets Manager)`;
  return `${start}--identity KEY_FILE (remote mode: --identity-secret NAME), or ${ageCliHint(route, display, 'age -d -i KEY_FILE')}`;
}

/** The hint for an ASCII-armored age file, which is read only through the age CLI. */
export function armoredArchiveHint(display: string, route: AgeCliRoute = 'pipe'): string {
  return `${display} is an ASCII-armored age file (age -a), which is not read directly: ${ageCliHint(route, display, 'age -d -i KEY_FILE')}, or store it unarmored (age without -a)`;
}

/**
 * The tar.zst stream held by `stored`: decrypted when it is an age file (with
 * `options.identities`), else unchanged. An age file without identities is a UsageError
 * (exit 2) carrying the hint; age's own errors (wrong key, damage) pass through typed.
 */
export async function* plaintextArchive(stored: AsyncIterable<Uint8Array>, options: PlaintextOptions): AsyncGenerator<Uint8Array> {
  const iterator = stored[Symbol.asyncIterator]();
  // Enough bytes to tell (a stream may start with a chunk shorter than the magic line).
  const head: Uint8Array[] = [];
  let headBytes = 0;
  let ended = false;
  try {
    while (headBytes < AGE_MAGIC_BYTES) {
      const next = await iterator.next();
      if (next.done === true) {
        ended = true;
        break;
      }
      head.push(next.value);
      headBytes += next.value.length;
    }
  } catch (error) {
    await iterator.return?.().catch(() => undefined);
    throw error;
  }
  const first = head.length === 1 ? head[0]! : Buffer.concat(head);
  // Any `age-encryption.org/…` start: a damaged or newer age file is told apart by the age parser, not called "not a zstd stream".
  const encrypted = startsLikeAgeFile(first);
  if (isArmoredAgeFile(first)) {
    // Not damaged, only wrapped: the zstd reader would call it "not a zstd stream".
    await iterator.return?.().catch(() => undefined);
    throw new UsageError(armoredArchiveHint(options.display, options.ageCli));
  }
  if (encrypted && (options.identities === undefined || options.identities.length === 0)) {
    await iterator.return?.().catch(() => undefined);
    throw new UsageError(encryptedArchiveHint(options.display, options.ageCli));
  }
  options.onFormat?.(encrypted);

  async function* whole(): AsyncGenerator<Uint8Array> {
    if (first.length > 0) yield first;
    if (ended) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done === true) return;
      yield next.value;
    }
  }
  const source = whole();
  try {
    if (encrypted) yield* decryptPieces(source, options.identities!, (command) => ageCliHint(options.ageCli ?? 'pipe', options.display, command));
    else yield* source;
  } finally {
    await source.return(undefined).catch(() => undefined);
    await iterator.return?.().catch(() => undefined);
  }
}

/**
 * The plaintext of the age file `source`, in the pieces the decryptor opens (64 KiB each), not
 * joined per input chunk: the zstd frame reader queues pieces of any size, and joining them
 * would copy every byte once more (a 2 MiB read became 4 MiB of short-lived buffers, which
 * lifted a large restore's peak RSS). Authentic pieces are yielded before an error about
 * what follows them.
 */
async function* decryptPieces(source: AsyncIterable<Uint8Array>, identities: readonly AgeIdentity[], hint: (command: string) => string): AsyncGenerator<Uint8Array> {
  const decryptor = new AgeDecryptor(identities);
  const out: Uint8Array[] = [];
  const step = function* (run: () => void): Generator<Uint8Array> {
    let failure: { error: unknown } | undefined;
    try {
      run();
    } catch (error) {
      failure = { error };
    }
    const pieces = out.splice(0);
    yield* pieces;
    if (failure !== undefined) throw failure.error;
  };
  try {
    for await (const chunk of source) yield* step(() => decryptor.write(chunk, out));
    yield* step(() => decryptor.end(out));
  } catch (error) {
    throw withAgeCliHint(error, decryptor.header?.stanzas.map((stanza) => stanza.type), hint);
  }
}

/**
 * An age file this module does not read but the `age` CLI does is refused as the age module
 * refuses it, with the way to restore it all the same: through `age`, which `--pipe` runs with
 * the terminal (so it can ask for a passphrase), where `hint` says (AgeCliRoute). Such are a
 * header past the safety limits, and a file with no X25519 recipient stanza (a passphrase, SSH
 * or plugin recipients).
 */
function withAgeCliHint(error: unknown, types: readonly string[] | undefined, hint: (command: string) => string): unknown {
  if (error instanceof AgeHeaderLimitError) {
    return new AgeHeaderLimitError(`${error.message}; age reads it: ${hint('age -d -i KEY_FILE')}`, { cause: error });
  }
  if (types === undefined || types.includes(X25519_STANZA_TYPE)) return error;
  if (error instanceof AgeUnsupportedError && types.includes('scrypt')) {
    return new AgeUnsupportedError(`${error.message}; to restore this one, ${hint('age -d')} (age asks for the passphrase)`, { cause: error });
  }
  if (error instanceof AgeNoIdentityMatchedError) {
    return new AgeNoIdentityMatchedError(
      `${error.message}; only X25519 identities (AGE-SECRET-KEY-1…) are read here: ${hint('age -d -i KEY_FILE')}`,
      error.recipientTypes,
      { cause: error },
    );
  }
  return error;
}
