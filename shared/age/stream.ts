// The age payload: STREAM over ChaCha20-Poly1305 in 64 KiB chunks (node:crypto, so OpenSSL's
// vectorised code does the work). Chunk i is sealed under the payload key with the nonce
// `i as 11 bytes big endian || flag`, where flag is 1 for the last chunk only. The last chunk
// may be shorter than 64 KiB but is empty only when the whole payload is (then it is just a
// tag); a payload that ends exactly on a chunk boundary ends with a full last chunk.
//
// Both directions are synchronous state machines fed chunk by chunk, so async generators and
// Transform streams can wrap them. Neither copies the data it is given: input chunks are held
// as views until a whole chunk (plus one byte, which tells a middle chunk from the last) is
// there, then fed to the cipher slice by slice; so, as with any Node stream, a chunk must not
// be modified once written. At most one chunk of input is held between writes. Decryption
// releases a chunk's plaintext only after its tag verified; anything missing, reordered,
// altered, or appended is an AgeDamagedError.

import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, type KeyObject, createSecretKey } from 'node:crypto';

import { AgeDamagedError } from '../errors.js';

export const PAYLOAD_NONCE_BYTES = 16;
export const PAYLOAD_KEY_BYTES = 32;
export const CHUNK_BYTES = 64 * 1024;
const TAG_BYTES = 16;
export const SEALED_CHUNK_BYTES = CHUNK_BYTES + TAG_BYTES;
const LAST_CHUNK_FLAG = 1;
/** 2^48 chunks (16 EiB): far beyond any file, and chunk indexes stay exact in a double. */
const MAX_CHUNKS = 2 ** 48;
const AEAD_OPTIONS = { authTagLength: TAG_BYTES } as const;

/** The bytes after the header of an age file of `plaintextBytes`: the nonce, then each chunk sealed (one empty chunk for nothing), as age and this tool's encryptor write them. */
export function agePayloadBytes(plaintextBytes: number): number {
  const chunks = Math.max(1, Math.ceil(plaintextBytes / CHUNK_BYTES));
  return PAYLOAD_NONCE_BYTES + plaintextBytes + chunks * TAG_BYTES;
}

/** payload key = HKDF-SHA-256(ikm = file key, salt = nonce, info = "payload"). */
export function derivePayloadKey(fileKey: Uint8Array, nonce: Uint8Array): KeyObject {
  return createSecretKey(Buffer.from(hkdfSync('sha256', fileKey, nonce, 'payload', PAYLOAD_KEY_BYTES)));
}

export function newPayloadNonce(): Buffer {
  return randomBytes(PAYLOAD_NONCE_BYTES);
}

/**
 * Views of consecutive input bytes, taken off the front a chunk at a time. A piece is
 * dropped as soon as it is taken whole (a view keeps its entire buffer alive).
 */
class PendingBytes {
  private pieces: Uint8Array[] = [];
  bytes = 0;

  add(piece: Uint8Array): void {
    if (piece.length === 0) return;
    this.pieces.push(piece);
    this.bytes += piece.length;
  }

  /** Removes the first `count` bytes (count <= bytes), as views. */
  take(count: number): Uint8Array[] {
    const taken: Uint8Array[] = [];
    let needed = count;
    let used = 0;
    while (needed > 0) {
      const piece = this.pieces[used]!;
      if (piece.length <= needed) {
        taken.push(piece);
        needed -= piece.length;
        used += 1;
      } else {
        taken.push(piece.subarray(0, needed));
        this.pieces[used] = piece.subarray(needed);
        needed = 0;
      }
    }
    // What stays is the tail of the input: less than a chunk, in as many pieces as it came.
    if (used > 0) this.pieces = used === this.pieces.length ? [] : this.pieces.slice(used);
    this.bytes -= count;
    return taken;
  }

  takeAll(): Uint8Array[] {
    return this.take(this.bytes);
  }
}

/**
 * Empties `out` and returns its pieces as one buffer (the piece itself when there is one),
 * or undefined when it was empty.
 */
export function takeJoined(out: Uint8Array[]): Uint8Array | undefined {
  if (out.length === 0) return undefined;
  const joined = out.length === 1 ? out[0]! : Buffer.concat(out);
  out.length = 0;
  return joined;
}

class ChunkNonce {
  readonly bytes = Buffer.alloc(12);
  index = 0;

  set(last: boolean): Buffer {
    if (this.index >= MAX_CHUNKS) throw new RangeError('age STREAM chunk counter exhausted');
    this.bytes.writeUIntBE(this.index, 5, 6);
    this.bytes[11] = last ? LAST_CHUNK_FLAG : 0;
    return this.bytes;
  }
}

/**
 * Where an unfinished payload stands: the next chunk's index, and the plaintext not sealed yet
 * (1 to CHUNK_BYTES bytes once anything was written: a full chunk waits for the byte that
 * makes it a middle one).
 */
export interface StreamPosition {
  readonly chunkIndex: number;
  readonly pending: Buffer;
}

/**
 * Encrypts a payload; `write` and `end` append the sealed bytes to `out`. A payload may be
 * sealed by several encryptors in turn (processes apart): `suspend` hands over where it
 * stands instead of ending, and an encryptor given that position and the same key goes on,
 * so the chunks come out exactly as one encryptor would have sealed them.
 */
export class StreamEncryptor {
  private readonly pending = new PendingBytes();
  private readonly nonce = new ChunkNonce();
  private ended = false;

  constructor(
    private readonly key: KeyObject,
    from?: StreamPosition,
  ) {
    if (from === undefined) return;
    const { chunkIndex, pending } = from;
    if (!Number.isSafeInteger(chunkIndex) || chunkIndex < 0 || chunkIndex >= MAX_CHUNKS || pending.length > CHUNK_BYTES || (chunkIndex > 0 && pending.length === 0)) {
      throw new RangeError('not a position in an age STREAM payload');
    }
    this.nonce.index = chunkIndex;
    this.pending.add(pending);
  }

  write(chunk: Uint8Array, out: Uint8Array[]): void {
    this.pending.add(chunk);
    // A full chunk is sealed as a middle chunk only once a byte after it exists.
    while (this.pending.bytes > CHUNK_BYTES) this.seal(this.pending.take(CHUNK_BYTES), false, out);
  }

  end(out: Uint8Array[]): void {
    if (this.ended) return;
    this.ended = true;
    this.seal(this.pending.takeAll(), true, out);
  }

  /** Stops without ending the payload (nothing more is sealed here): where it stands, the unsealed plaintext copied. */
  suspend(): StreamPosition {
    if (this.ended) throw new Error('the payload has already ended');
    this.ended = true;
    return { chunkIndex: this.nonce.index, pending: Buffer.concat(this.pending.takeAll()) };
  }

  private seal(slices: readonly Uint8Array[], last: boolean, out: Uint8Array[]): void {
    const cipher = createCipheriv('chacha20-poly1305', this.key, this.nonce.set(last), AEAD_OPTIONS);
    for (const slice of slices) {
      const sealed = cipher.update(slice);
      if (sealed.length > 0) out.push(sealed);
    }
    cipher.final();
    out.push(cipher.getAuthTag());
    this.nonce.index += 1;
  }
}

/**
 * Opens one sealed chunk on its own (a chunk read out of place, by a ranged read): its
 * plaintext when its tag verifies as chunk `index` (the last one when `last`), else undefined.
 */
export function openSealedChunk(key: KeyObject, index: number, last: boolean, sealed: Uint8Array): Buffer | undefined {
  if (sealed.length < TAG_BYTES || sealed.length > SEALED_CHUNK_BYTES || !Number.isSafeInteger(index) || index < 0 || index >= MAX_CHUNKS) return undefined;
  const nonce = new ChunkNonce();
  nonce.index = index;
  const decipher = createDecipheriv('chacha20-poly1305', key, nonce.set(last), AEAD_OPTIONS);
  const plaintext = decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES));
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  try {
    decipher.final();
  } catch {
    return undefined;
  }
  return plaintext;
}

function damagedPayload(message: string): AgeDamagedError {
  return new AgeDamagedError(`damaged age file: ${message}`, 'payload');
}

/** Decrypts a payload; `write` and `end` append authenticated plaintext to `out`. */
export class StreamDecryptor {
  private readonly pending = new PendingBytes();
  private readonly nonce = new ChunkNonce();
  private readonly tag = Buffer.alloc(TAG_BYTES);
  private finished = false;

  constructor(private readonly key: KeyObject) {}

  write(chunk: Uint8Array, out: Uint8Array[]): void {
    if (this.finished) {
      if (chunk.length > 0) throw damagedPayload('data follows the final chunk');
      return;
    }
    this.pending.add(chunk);
    while (this.pending.bytes > SEALED_CHUNK_BYTES) {
      const slices = this.pending.take(SEALED_CHUNK_BYTES);
      if (this.open(slices, false, out)) continue;
      // A full chunk sealed as the last one, with more data after it: release it as the
      // `age` CLI does (it is authentic), then refuse what follows.
      if (this.open(slices, true, out)) {
        this.finished = true;
        throw damagedPayload('data follows the final chunk');
      }
      throw damagedPayload(`chunk ${this.nonce.index} failed authentication (tampered, reordered or corrupted)`);
    }
  }

  end(out: Uint8Array[]): void {
    if (this.finished) return;
    const remaining = this.pending.bytes;
    if (remaining === 0) throw damagedPayload(this.nonce.index === 0 ? 'the payload is missing (truncated file)' : 'the final chunk is missing (truncated file)');
    if (remaining < TAG_BYTES) throw damagedPayload('the last chunk is cut short (truncated file)');
    if (remaining === TAG_BYTES && this.nonce.index > 0) throw damagedPayload('the final chunk is empty, which only an empty file may have');
    const slices = this.pending.takeAll();
    if (!this.open(slices, true, out)) {
      // A middle chunk that authenticates means the file was cut at a chunk boundary: release
      // it as the `age` CLI does (it is authentic), then refuse the missing end.
      if (remaining === SEALED_CHUNK_BYTES && this.open(slices, false, out)) throw damagedPayload('the final chunk is missing (truncated file)');
      throw damagedPayload(`the last chunk (${this.nonce.index}) failed authentication (truncated, tampered or corrupted)`);
    }
    this.finished = true;
  }

  /**
   * Opens one sealed chunk given as slices; appends the plaintext to `out` and returns true
   * when its tag verifies under the nonce for `last`, returns false (appending nothing) when not.
   */
  private open(slices: readonly Uint8Array[], last: boolean, out: Uint8Array[]): boolean {
    const decipher = createDecipheriv('chacha20-poly1305', this.key, this.nonce.set(last), AEAD_OPTIONS);
    let total = 0;
    for (const slice of slices) total += slice.length;
    const ciphertextBytes = total - TAG_BYTES;
    const plaintext: Buffer[] = [];
    let position = 0;
    for (const slice of slices) {
      const end = position + slice.length;
      if (position < ciphertextBytes) {
        const opened = decipher.update(end <= ciphertextBytes ? slice : slice.subarray(0, ciphertextBytes - position));
        if (opened.length > 0) plaintext.push(opened);
      }
      if (end > ciphertextBytes) {
        const from = Math.max(ciphertextBytes - position, 0);
        this.tag.set(slice.subarray(from), position + from - ciphertextBytes);
      }
      position = end;
    }
    decipher.setAuthTag(this.tag);
    try {
      decipher.final();
    } catch {
      return false;
    }
    for (const piece of plaintext) out.push(piece);
    this.nonce.index += 1;
    return true;
  }
}
