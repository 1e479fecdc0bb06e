// The X25519 recipient stanza: the 16-byte file key sealed with ChaCha20-Poly1305 (zero
// nonce) under HKDF-SHA-256(ikm = X25519(ephemeral, recipient), salt = ephemeral share ||
// recipient, info = "age-encryption.org/v1/X25519"). A new ephemeral key per stanza.
//
// Unwrapping follows the spec's MUSTs: a stanza whose type is not exactly `X25519` is not
// ours (ignored), but an `X25519` stanza with other than one argument, a share that is not
// the canonical encoding of 32 bytes, a body that is not 32 bytes, or an all-zero shared
// secret (a low-order share) makes the header damaged, whoever it was addressed to.

import { createCipheriv, createDecipheriv, diffieHellman, generateKeyPairSync, hkdfSync, type KeyObject } from 'node:crypto';

import { decodeCanonicalBase64, encodeBase64 } from './encoding.js';
import { AgeBadRecipientError, AgeDamagedError } from '../errors.js';
import type { Stanza } from './header.js';
import { x25519PublicBytes, x25519PublicKeyFromBytes, type AgeIdentity, type AgeRecipient } from './keys.js';

export const X25519_STANZA_TYPE = 'X25519';
export const FILE_KEY_BYTES = 16;
const WRAP_INFO = 'age-encryption.org/v1/X25519';
const TAG_BYTES = 16;
const ZERO_NONCE = Buffer.alloc(12);
const AEAD_OPTIONS = { authTagLength: TAG_BYTES } as const;

function isAllZero(bytes: Uint8Array): boolean {
  let bits = 0;
  for (const byte of bytes) bits |= byte;
  return bits === 0;
}

/** X25519 agreement; undefined when OpenSSL refuses the point or the result is all zero. */
function agree(privateKey: KeyObject, publicKey: KeyObject): Buffer | undefined {
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey, publicKey });
  } catch {
    return undefined;
  }
  return isAllZero(shared) ? undefined : shared;
}

function wrapKey(shared: Buffer, share: Buffer, recipientBytes: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([share, recipientBytes]), WRAP_INFO, 32));
}

/** Seals `fileKey` for one recipient. */
export function wrapFileKey(fileKey: Uint8Array, recipient: AgeRecipient): Stanza {
  const ephemeral = generateKeyPairSync('x25519');
  const share = x25519PublicBytes(ephemeral.publicKey);
  const shared = agree(ephemeral.privateKey, recipient.publicKey);
  if (shared === undefined) {
    throw new AgeBadRecipientError(`recipient ${recipient.text} is not a usable X25519 public key (low-order point)`);
  }
  const cipher = createCipheriv('chacha20-poly1305', wrapKey(shared, share, recipient.publicBytes), ZERO_NONCE, AEAD_OPTIONS);
  const sealed = Buffer.concat([cipher.update(fileKey), cipher.final(), cipher.getAuthTag()]);
  return { type: X25519_STANZA_TYPE, args: [encodeBase64(share)], body: sealed };
}

function damaged(message: string): AgeDamagedError {
  return new AgeDamagedError(`damaged age header: ${message}`, 'header');
}

/** An X25519 stanza checked against the spec, ready to try identities on. */
export interface X25519Stanza {
  readonly share: Buffer;
  readonly shareKey: KeyObject;
  readonly body: Buffer;
}

/** Checks an `X25519` stanza's shape; throws AgeDamagedError when it breaks the rules. */
export function checkX25519Stanza(stanza: Stanza): X25519Stanza {
  if (stanza.args.length !== 1) throw damaged(`an X25519 stanza has ${stanza.args.length} arguments instead of 1`);
  const share = decodeCanonicalBase64(stanza.args[0]!);
  if (share === undefined || share.length !== 32) throw damaged('an X25519 stanza share is not the canonical encoding of 32 bytes');
  if (stanza.body.length !== FILE_KEY_BYTES + TAG_BYTES) throw damaged(`an X25519 stanza body is ${stanza.body.length} bytes instead of 32`);
  let shareKey: KeyObject;
  try {
    shareKey = x25519PublicKeyFromBytes(share);
  } catch {
    throw damaged('an X25519 stanza share is not a valid X25519 point');
  }
  return { share, shareKey, body: stanza.body };
}

/**
 * The file key if `identity` opens the stanza, undefined if the stanza is for someone else.
 * Throws AgeDamagedError for a low-order share (all-zero shared secret).
 */
export function unwrapFileKey(stanza: X25519Stanza, identity: AgeIdentity): Buffer | undefined {
  const shared = agree(identity.privateKey, stanza.shareKey);
  if (shared === undefined) throw damaged('an X25519 stanza share is a low-order point');
  const decipher = createDecipheriv('chacha20-poly1305', wrapKey(shared, stanza.share, identity.recipient.publicBytes), ZERO_NONCE, AEAD_OPTIONS);
  decipher.setAuthTag(stanza.body.subarray(FILE_KEY_BYTES));
  const fileKey = decipher.update(stanza.body.subarray(0, FILE_KEY_BYTES));
  try {
    decipher.final();
  } catch {
    return undefined;
  }
  return fileKey;
}
