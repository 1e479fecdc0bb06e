// Encryption to age X25519 recipients, as a stream: header (one stanza per recipient, then
// the MAC), the 16-byte payload nonce, then the STREAM payload (stream.ts). The header is
// built when the encryptor is created, so a bad recipient fails before any byte is read or
// written. Memory stays at one 64 KiB chunk plus the input chunk in hand, whatever the size.
// The stream wrappers emit one buffer per input chunk (the sealed 64 KiB chunks and their
// tags joined): a consumer that writes each buffer with its own system call, like the
// local file location, would otherwise make two per 64 KiB, and those queue on the libuv
// thread pool behind compression (measured: a large backup took up to twice as long).
//
// One file may be written by several encryptors in turn, processes apart: `suspend` stops
// one without ending the payload and answers with the payload key, the next chunk's index
// and the plaintext not sealed yet; an encryptor created from that writes the rest. The
// pieces' output, concatenated, is one age file (test/age-format.test.ts).

import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { Transform } from 'node:stream';

import { AgeBadRecipientError } from '../errors.js';
import { computeHeaderMac, formatHeader, formatHeaderWithoutMac } from './header.js';
import type { AgeRecipient } from './keys.js';
import { derivePayloadKey, newPayloadNonce, PAYLOAD_KEY_BYTES, StreamEncryptor, takeJoined, type StreamPosition } from './stream.js';
import { FILE_KEY_BYTES, wrapFileKey } from './x25519.js';

/**
 * Where an age file being written stands when its writer stops before the end, to go on in
 * another process (a backup that continues in another invocation): the header is written,
 * the payload is not finished. `payloadKey` is a secret: whoever holds it decrypts the file.
 */
export interface SuspendedAgeFile extends StreamPosition {
  /** HKDF of the file key and the header's nonce (stream.ts): the key the payload's chunks are sealed under. */
  readonly payloadKey: Buffer;
}

/** Encrypts one file: feed it with `write`, close it with `end` (or stop with `suspend`); output goes to `out`. */
export class AgeEncryptor {
  private prologue: Buffer | undefined;
  private readonly payloadKey: KeyObject;
  private readonly payload: StreamEncryptor;

  /** A new file to `recipients`; or, given where an earlier encryptor stopped, the rest of that file (no header). */
  constructor(to: readonly AgeRecipient[] | SuspendedAgeFile) {
    if (!Array.isArray(to)) {
      const from = to as SuspendedAgeFile;
      if (from.payloadKey.length !== PAYLOAD_KEY_BYTES) throw new RangeError('not an age payload key');
      this.payloadKey = createSecretKey(Buffer.from(from.payloadKey));
      this.payload = new StreamEncryptor(this.payloadKey, from);
      return;
    }
    const recipients = to as readonly AgeRecipient[];
    if (recipients.length === 0) throw new AgeBadRecipientError('no recipients to encrypt to');
    const fileKey = randomBytes(FILE_KEY_BYTES);
    try {
      const macInput = formatHeaderWithoutMac(recipients.map((recipient) => wrapFileKey(fileKey, recipient)));
      const nonce = newPayloadNonce();
      this.prologue = Buffer.concat([formatHeader(macInput, computeHeaderMac(fileKey, macInput)), nonce]);
      this.payloadKey = derivePayloadKey(fileKey, nonce);
      this.payload = new StreamEncryptor(this.payloadKey);
    } finally {
      fileKey.fill(0);
    }
  }

  write(chunk: Uint8Array, out: Uint8Array[]): void {
    this.emitPrologue(out);
    this.payload.write(chunk, out);
  }

  end(out: Uint8Array[]): void {
    this.emitPrologue(out);
    this.payload.end(out);
  }

  /** Stops before the end: the header (if not out yet) goes to `out`; the answer lets another encryptor write the rest. */
  suspend(out: Uint8Array[]): SuspendedAgeFile {
    this.emitPrologue(out);
    return { ...this.payload.suspend(), payloadKey: this.payloadKey.export() };
  }

  private emitPrologue(out: Uint8Array[]): void {
    if (this.prologue === undefined) return;
    out.push(this.prologue);
    this.prologue = undefined;
  }
}

/** Encrypts `source` to `recipients`; yields the age file, one buffer per input chunk. */
export async function* encryptAge(source: AsyncIterable<Uint8Array>, recipients: readonly AgeRecipient[]): AsyncGenerator<Uint8Array> {
  const encryptor = new AgeEncryptor(recipients);
  const out: Uint8Array[] = [];
  for await (const chunk of source) {
    encryptor.write(chunk, out);
    const joined = takeJoined(out);
    if (joined !== undefined) yield joined;
  }
  encryptor.end(out);
  yield takeJoined(out)!;
}

/** A Transform for stream pipelines: plaintext in, age file out (one buffer per input chunk). */
export function createAgeEncryptStream(recipients: readonly AgeRecipient[]): Transform {
  const encryptor = new AgeEncryptor(recipients);
  const out: Uint8Array[] = [];
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      try {
        encryptor.write(chunk, out);
      } catch (error) {
        out.length = 0;
        callback(error as Error);
        return;
      }
      callback(null, takeJoined(out));
    },
    flush(callback) {
      try {
        encryptor.end(out);
      } catch (error) {
        out.length = 0;
        callback(error as Error);
        return;
      }
      callback(null, takeJoined(out));
    },
  });
}
