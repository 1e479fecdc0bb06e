// Decryption of age files with X25519 identities, as a stream. The header is read with the
// bounded strict parser (header.ts); then each identity is tried on each X25519 stanza, the
// header MAC is checked with the file key found, and the payload is opened chunk by chunk
// (stream.ts), each chunk released only once authenticated. Passphrase (scrypt) files and
// other stanza types are not decrypted: scrypt is refused with a message saying so, unknown
// types are skipped as the spec requires.
//
// Failures are typed (errors.ts): not an age file, unsupported, header limit, no identity
// matched (the wrong key), damaged (header, MAC, or payload: truncated, tampered, reordered,
// extended). Memory: the header (bounded by its limits) until it is checked, then one
// sealed chunk plus the input chunk in hand.

import { Transform } from 'node:stream';

import { AgeBadIdentityError, AgeDamagedError, AgeNoIdentityMatchedError, AgeUnsupportedError } from '../errors.js';
import { AgeHeaderReader, DEFAULT_HEADER_LIMITS, headerMacMatches, type AgeHeader, type HeaderLimits } from './header.js';
import type { AgeIdentity } from './keys.js';
import { derivePayloadKey, PAYLOAD_NONCE_BYTES, StreamDecryptor, takeJoined } from './stream.js';
import { checkX25519Stanza, unwrapFileKey, X25519_STANZA_TYPE } from './x25519.js';

export interface AgeDecryptOptions {
  readonly limits?: HeaderLimits;
}

const MAX_TYPES_SHOWN = 5;
const MAX_TYPE_CHARS = 40;

/**
 * Summarises stanza types for a message: `X25519 ×2, scrypt`. A hostile header may carry
 * thousands of long types: at most five are named, each cut at 40 characters.
 */
export function describeRecipientTypes(types: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const type of types) counts.set(type, (counts.get(type) ?? 0) + 1);
  const named = [...counts].slice(0, MAX_TYPES_SHOWN).map(([type, count]) => {
    const shown = type.length > MAX_TYPE_CHARS ? `${type.slice(0, MAX_TYPE_CHARS)}…` : type;
    return count === 1 ? shown : `${shown} ×${count}`;
  });
  if (counts.size > MAX_TYPES_SHOWN) named.push(`${counts.size - MAX_TYPES_SHOWN} more types`);
  return named.join(', ');
}

/** Finds the file key: the first identity that opens an X25519 stanza, MAC checked. */
export function unlockHeader(header: AgeHeader, identities: readonly AgeIdentity[]): Buffer {
  const types = header.stanzas.map((stanza) => stanza.type);
  if (types.includes('scrypt')) {
    throw new AgeUnsupportedError('the file is encrypted with a passphrase (scrypt), which is not supported; encrypt backups to an X25519 recipient (age1…)');
  }
  const stanzas = header.stanzas.filter((stanza) => stanza.type === X25519_STANZA_TYPE).map(checkX25519Stanza);
  let fileKey: Buffer | undefined;
  search: for (const identity of identities) {
    for (const stanza of stanzas) {
      fileKey = unwrapFileKey(stanza, identity);
      if (fileKey !== undefined) break search;
    }
  }
  if (fileKey === undefined) {
    const given = identities.length === 1 ? 'the identity given cannot' : `none of the ${identities.length} identities given can`;
    throw new AgeNoIdentityMatchedError(
      `wrong key: ${given} decrypt this file (it is encrypted to ${header.stanzas.length} recipient${header.stanzas.length === 1 ? '' : 's'}: ${describeRecipientTypes(types)})`,
      types,
    );
  }
  if (!headerMacMatches(fileKey, header)) {
    fileKey.fill(0);
    throw new AgeDamagedError('damaged age file: the header MAC does not match (the header was altered)', 'header-mac');
  }
  return fileKey;
}

/** Decrypts one file: feed it with `write`, close it with `end`; plaintext goes to `out`. */
export class AgeDecryptor {
  private headerReader: AgeHeaderReader | undefined;
  private nonce: Buffer | undefined = Buffer.alloc(PAYLOAD_NONCE_BYTES);
  private nonceBytes = 0;
  private fileKey: Buffer | undefined;
  private payload: StreamDecryptor | undefined;
  /** The header, once read (its stanza types are public). */
  header: AgeHeader | undefined;

  constructor(
    private readonly identities: readonly AgeIdentity[],
    options: AgeDecryptOptions = {},
  ) {
    if (identities.length === 0) throw new AgeBadIdentityError('no identities to decrypt with');
    this.headerReader = new AgeHeaderReader(options.limits ?? DEFAULT_HEADER_LIMITS);
  }

  write(chunk: Uint8Array, out: Uint8Array[]): void {
    let rest: Uint8Array = chunk;
    if (this.headerReader !== undefined) {
      const done = this.headerReader.push(rest);
      if (done === undefined) return;
      this.headerReader = undefined;
      this.header = done.header;
      this.fileKey = unlockHeader(done.header, this.identities);
      rest = done.rest;
    }
    if (this.nonce !== undefined) {
      const taken = Math.min(PAYLOAD_NONCE_BYTES - this.nonceBytes, rest.length);
      this.nonce.set(rest.subarray(0, taken), this.nonceBytes);
      this.nonceBytes += taken;
      rest = rest.subarray(taken);
      if (this.nonceBytes < PAYLOAD_NONCE_BYTES) return;
      this.payload = new StreamDecryptor(derivePayloadKey(this.fileKey!, this.nonce));
      this.fileKey!.fill(0);
      this.fileKey = undefined;
      this.nonce = undefined;
    }
    this.payload!.write(rest, out);
  }

  end(out: Uint8Array[]): void {
    if (this.headerReader !== undefined) this.headerReader.end();
    if (this.payload === undefined) {
      this.fileKey?.fill(0);
      throw new AgeDamagedError('damaged age file: it ends before its payload nonce (truncated file)', 'header');
    }
    this.payload.end(out);
  }
}

/**
 * Runs `step` and hands what it produced to `deliver` as one buffer, even when it throws: a
 * chunk that authenticated is released before the error about what follows it.
 */
function drive(step: (out: Uint8Array[]) => void, out: Uint8Array[], deliver: (piece: Uint8Array) => void): void {
  try {
    step(out);
  } finally {
    const joined = takeJoined(out);
    if (joined !== undefined) deliver(joined);
  }
}

/** Decrypts the age file `source` with `identities`; yields the plaintext, one buffer per input chunk at most. */
export async function* decryptAge(
  source: AsyncIterable<Uint8Array>,
  identities: readonly AgeIdentity[],
  options: AgeDecryptOptions = {},
): AsyncGenerator<Uint8Array> {
  const decryptor = new AgeDecryptor(identities, options);
  const out: Uint8Array[] = [];
  let ready: Uint8Array | undefined;
  const keep = (piece: Uint8Array) => (ready = piece);
  let failure: { error: unknown } | undefined;
  for await (const chunk of source) {
    try {
      drive((o) => decryptor.write(chunk, o), out, keep);
    } catch (error) {
      failure = { error };
    }
    if (ready !== undefined) yield ready;
    ready = undefined;
    if (failure !== undefined) throw failure.error;
  }
  try {
    drive((o) => decryptor.end(o), out, keep);
  } catch (error) {
    failure = { error };
  }
  if (ready !== undefined) yield ready;
  if (failure !== undefined) throw failure.error;
}

/** A Transform for stream pipelines: age file in, plaintext out (one buffer per input chunk at most). */
export function createAgeDecryptStream(identities: readonly AgeIdentity[], options: AgeDecryptOptions = {}): Transform {
  const decryptor = new AgeDecryptor(identities, options);
  const out: Uint8Array[] = [];
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      try {
        drive((o) => decryptor.write(chunk, o), out, (piece) => this.push(piece));
      } catch (error) {
        callback(error as Error);
        return;
      }
      callback();
    },
    flush(callback) {
      try {
        drive((o) => decryptor.end(o), out, (piece) => this.push(piece));
      } catch (error) {
        callback(error as Error);
        return;
      }
      callback();
    },
  });
}
