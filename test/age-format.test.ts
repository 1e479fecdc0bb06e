// The age module on its own: encodings and keys, the C2SP test vectors (npm `cctv-age`),
// round trips at chunk-boundary sizes, damaged files, hostile headers, and bounded memory.
// Interop with the `age` CLI is in age-interop.test.ts.

import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { inflateSync } from 'node:zlib';
import * as vectors from 'cctv-age';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { AbortedError, OpenClawError } from '../shared/errors.js';
import { decodeBech32, decodeCanonicalBase64, encodeBase64, encodeBech32 } from '../shared/age/encoding.js';
import { AGE_MAGIC, formatHeader, parseHeaderPrefix } from '../shared/age/header.js';
import { derivePayloadKey, StreamEncryptor } from '../shared/age/stream.js';
import {
  AgeBadIdentityError,
  AgeBadRecipientError,
  AgeDamagedError,
  AgeDecryptor,
  AgeEncryptor,
  AgeHeaderLimitError,
  AgeNoIdentityMatchedError,
  AgeNotEncryptedError,
  AgeUnsupportedError,
  createAgeDecryptStream,
  createAgeEncryptStream,
  decryptAge,
  encryptAge,
  formatIdentity,
  generateIdentity,
  isAgeFile,
  loadIdentityFile,
  loadRecipientsFile,
  parseIdentity,
  parseIdentityFile,
  parseRecipient,
  parseRecipientsFile,
  summarizeAgeHeader,
  type AgeIdentity,
  type AgeRecipient,
} from '../shared/age/index.js';
import { cutAt } from './helpers/chunks.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const CHUNK = 64 * KiB;
const SEALED = CHUNK + 16;

v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc') as () => void;

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Encrypts `plaintext` fed in `pieces` (positions to cut at). */
function encrypt(plaintext: Uint8Array, recipients: readonly AgeRecipient[], cuts: readonly number[] = []): Buffer {
  const encryptor = new AgeEncryptor(recipients);
  const out: Uint8Array[] = [];
  for (const piece of cutAt(plaintext, cuts)) encryptor.write(piece, out);
  encryptor.end(out);
  return Buffer.concat(out);
}

/** Decrypts `file` fed in pieces; returns what was released and the error, if any. */
function decrypt(file: Uint8Array, identities: readonly AgeIdentity[], cuts: readonly number[] = []): { plaintext: Buffer; error?: unknown } {
  const out: Uint8Array[] = [];
  try {
    const decryptor = new AgeDecryptor(identities);
    for (const piece of cutAt(file, cuts)) decryptor.write(piece, out);
    decryptor.end(out);
    return { plaintext: Buffer.concat(out) };
  } catch (error) {
    return { plaintext: Buffer.concat(out), error };
  }
}

function decryptOrThrow(file: Uint8Array, identities: readonly AgeIdentity[], cuts: readonly number[] = []): Buffer {
  const { plaintext, error } = decrypt(file, identities, cuts);
  if (error !== undefined) throw error;
  return plaintext;
}

/** Cut positions: every `step` bytes, and a few random ones. */
function cuts(length: number, step: number, random = 5): number[] {
  const points: number[] = [];
  for (let at = step; at < length; at += step) points.push(at);
  for (let i = 0; i < random; i++) points.push(Math.floor(Math.random() * length));
  return points;
}

const alice = generateIdentity();
const bob = generateIdentity();
const carol = generateIdentity();

describe('encodings', () => {
  it.each([
    ['', ''],
    ['AA', '00'],
    ['AAA', '0000'],
    ['AAAA', '000000'],
    ['/w', 'ff'],
    ['+/8', 'fbff'],
  ])('decodes canonical unpadded base64 %j', (text, hex) => {
    expect(decodeCanonicalBase64(text)?.toString('hex')).toBe(hex);
    expect(encodeBase64(Buffer.from(hex, 'hex'))).toBe(text);
  });

  it.each([
    ['AA==', 'padding'],
    ['AAA=', 'padding'],
    ['A', 'impossible length'],
    ['AB', 'non-zero trailing bits'],
    ['AAB', 'non-zero trailing bits'],
    ['AA\r', 'CR'],
    ['AA A', 'space'],
    ['AA\nAA', 'newline'],
    ['-_8', 'URL-safe alphabet'],
  ])('refuses %j (%s)', (text) => {
    expect(decodeCanonicalBase64(text)).toBeUndefined();
  });

  it('round-trips Bech32 and keeps the case of the HRP', () => {
    const bytes = randomBytes(32);
    const lower = encodeBech32('age', bytes);
    const upper = encodeBech32('AGE-SECRET-KEY-', bytes);
    expect(upper).toBe(upper.toUpperCase());
    expect(decodeBech32(lower)).toEqual({ hrp: 'age', bytes });
    expect(decodeBech32(upper)).toEqual({ hrp: 'AGE-SECRET-KEY-', bytes });
    expect(decodeBech32(`${lower.slice(0, 10)}${lower.slice(10).toUpperCase()}`)).toMatch(/mixes upper and lower case/);
    const typo = `${lower.slice(0, -1)}${lower.endsWith('q') ? 'p' : 'q'}`;
    expect(decodeBech32(typo)).toMatch(/checksum/);
    expect(decodeBech32('age1')).toMatch(/separator/);
    expect(decodeBech32(`${lower.slice(0, 10)}b${lower.slice(11)}`)).toMatch(/alphabet/);
  });
});

describe('keys', () => {
  it('derives the recipient of the spec example identity (known answer)', () => {
    const identity = parseIdentity('AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX');
    expect(identity.recipient.text).toBe('age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj');
    expect(formatIdentity(identity)).toBe('AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX');
    expect(parseRecipient(identity.recipient.text).publicBytes).toEqual(identity.recipient.publicBytes);
  });

  it('formats generated identities so they parse back to the same key', () => {
    const text = formatIdentity(alice);
    expect(text).toMatch(/^AGE-SECRET-KEY-1[0-9A-Z]{58}$/);
    expect(parseIdentity(text).recipient.text).toBe(alice.recipient.text);
    expect(alice.recipient.text).toMatch(/^age1[0-9a-z]{58}$/);
    expect(bob.recipient.text).not.toBe(alice.recipient.text);
  });

  const goodRecipient = 'age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj';
  it.each([
    [goodRecipient.toUpperCase(), /must be lowercase/],
    [`${goodRecipient.slice(0, -1)}k`, /checksum/],
    [goodRecipient.slice(0, -3), /checksum/],
    [` ${goodRecipient}`, /not an age recipient/],
    ['age1pq1x34nzsvr0rxjsgdn8zgyhfe8j7ceq5r9rdelkjuh3y235jzxshfg87pzf5zrqtzdxz95paef6caq5aapdmwjjq', /post-quantum/],
    ['age1yubikey1qwt50d05nh5vutpdzmlg5wn80xq5negm4uj9ghv0snvdd3yysf5yw3rhl3t', /plugin recipients are not supported/],
    ['age1tag1qt8lw0ual6avlwmwatk888yqnmdamm7xfd0wak53ut6elz5c4swx2yqdj4e', /tagged/],
    ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKq8 user@host', /SSH keys are not supported/],
    [encodeBech32('age', randomBytes(31)), /31 bytes instead of 32/],
    ['AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX', /a secret key \(AGE-SECRET-KEY-…\) was given as a recipient/],
    ['', /not an age recipient/],
    ['age1\u001b[31mred', /not an age recipient|malformed/],
  ])('refuses the recipient %j', (text, message) => {
    let caught: unknown;
    try {
      parseRecipient(text);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(AgeBadRecipientError);
    const error = caught as AgeBadRecipientError;
    expect(error).toBeInstanceOf(OpenClawError);
    expect(error.code).toBe('AGE_BAD_RECIPIENT');
    expect(error.outcome).toBe('usage');
    expect(error.message).toMatch(message);
    expect(error.message).not.toMatch(/[\n\r\u001b]/);
  });

  const secret = 'AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX';
  it.each([` ${secret}`, `"${secret}"`, `'${secret}'`, secret.replace('KEY-1', 'KEY1'), `identity: ${secret}`, `\t${secret.toLowerCase()}`, `AGE-PLUGIN-YUBIKEY1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQ5Y6PY7`])(
    'refuses a secret key given as a recipient without quoting it, also pasted with a space, quotes or a typo: %j',
    (text) => {
      expect(() => parseRecipient(text)).toThrow(/a secret key \(AGE-SECRET-KEY-…\) was given as a recipient/);
      let message = '';
      try {
        parseRecipientsFile(`# escrow\n${text}\n`, 'recipients file r.txt');
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toMatch(/^recipients file r.txt, line 2: a secret key/);
      expect(message.toUpperCase()).not.toContain('GFPYYSJZ');
      expect(message.toUpperCase()).not.toContain('QYQSZQGP');
    },
  );

  it.each([
    [secret.toLowerCase(), /must be uppercase/],
    [`${secret.slice(0, -1)}Q`, /checksum/],
    [secret.slice(0, 40), /checksum|separator/],
    ['AGE-SECRET-KEY-PQ-1XX76JRALNLXDMEW0CRK45QMCCH4X06SE84UN3VPM33W6HWDX0H3SK3ZQFR', /post-quantum/],
    ['AGE-PLUGIN-YUBIKEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQ5Y6PY7', /plugin identities/],
    ['age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj', /is a recipient/],
    ['-----BEGIN OPENSSH PRIVATE KEY-----', /SSH and PEM keys/],
    [encodeBech32('AGE-SECRET-KEY-', randomBytes(33)), /33 bytes instead of 32/],
    ['hunter2', /not an age identity/],
  ])('refuses the identity %j without quoting it', (text, message) => {
    let caught: unknown;
    try {
      parseIdentity(text, 'identity file k.txt, line 2');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(AgeBadIdentityError);
    const error = caught as AgeBadIdentityError;
    expect(error.code).toBe('AGE_BAD_IDENTITY');
    expect(error.outcome).toBe('usage');
    expect(error.message).toMatch(message);
    expect(error.message).toContain('identity file k.txt, line 2');
    if (text.length > 12) expect(error.message).not.toContain(text.slice(16, 40));
  });

  it('reads identity files as age -i does: comments, blank lines, CRLF, several keys', () => {
    const text = `# created: 2026-01-01T00:00:00Z\r\n# public key: ${alice.recipient.text}\r\n${formatIdentity(alice)}\r\n\n#\n${formatIdentity(bob)}`;
    expect(parseIdentityFile(text).map((identity) => identity.recipient.text)).toEqual([alice.recipient.text, bob.recipient.text]);
  });

  it('refuses identity files that hold no key, a bad line (named by number), or are encrypted', () => {
    expect(() => parseIdentityFile('# only a comment\n\n', 'k.txt')).toThrow(/k.txt holds no identities/);
    expect(() => parseIdentityFile(`${formatIdentity(alice)}\n  ${formatIdentity(bob)}\n`, 'k.txt')).toThrow(/k.txt, line 2 is not an age identity/);
    expect(() => parseIdentityFile(`${AGE_MAGIC}-> scrypt abc 18\n`, 'k.txt')).toThrow(/itself encrypted/);
    expect(() => parseIdentityFile('-----BEGIN AGE ENCRYPTED FILE-----\nYWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IHNjcnlwdCBhYmMgMTgK\n-----END AGE ENCRYPTED FILE-----\n', 'k.txt')).toThrow(/k.txt is itself encrypted/);
    expect(() => parseIdentityFile(`${'A'.repeat(9000)}\n`, 'k.txt')).toThrow(AgeBadIdentityError);
  });

  it('reads recipients files as age -R does and names the bad line', () => {
    const text = `# team\n${alice.recipient.text}\n\n${bob.recipient.text}\r\n`;
    expect(parseRecipientsFile(text).map((recipient) => recipient.text)).toEqual([alice.recipient.text, bob.recipient.text]);
    expect(() => parseRecipientsFile(`${alice.recipient.text}\nage1oops\n`, 'r.txt')).toThrow(/r.txt, line 2: recipient "age1oops"/);
    expect(() => parseRecipientsFile('# nobody\n', 'r.txt')).toThrow(/r.txt holds no recipients/);
  });

  describe('key files on disk', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'age-keys-'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('loads identity and recipients files, and says which file cannot be read', async () => {
      await writeFile(path.join(dir, 'key.txt'), `# public key: ${carol.recipient.text}\n${formatIdentity(carol)}\n`);
      await writeFile(path.join(dir, 'recipients.txt'), `${carol.recipient.text}\n`);
      expect((await loadIdentityFile(path.join(dir, 'key.txt')))[0]!.recipient.text).toBe(carol.recipient.text);
      expect((await loadRecipientsFile(path.join(dir, 'recipients.txt')))[0]!.text).toBe(carol.recipient.text);
      await expect(loadIdentityFile(path.join(dir, 'missing.txt'))).rejects.toThrow(/^identity file ".*missing.txt" does not exist$/);
      await expect(loadIdentityFile(dir)).rejects.toThrow(AgeBadIdentityError);
      await expect(loadRecipientsFile(path.join(dir, 'missing.txt'))).rejects.toThrow(AgeBadRecipientError);
      await expect(loadRecipientsFile(path.join(dir, 'key.txt', 'below-a-file'))).rejects.toThrow(/^recipients file ".*below-a-file" does not exist$/);
    });

    it('refuses a secret key given where the key file\'s path belongs, without quoting it', async () => {
      const secretKey = formatIdentity(carol);
      await expect(loadIdentityFile(secretKey)).rejects.toThrow(/^--identity takes the path of a file holding the identity, not the secret key itself/);
      await expect(loadIdentityFile(` ${secretKey}`)).rejects.not.toThrow(secretKey.slice(20));
      await expect(loadRecipientsFile(secretKey)).rejects.toThrow(/^a secret key \(AGE-SECRET-KEY-…\) was given as a recipients file/);
    });

    it('reads a key file from a pipe or device, bounded: a device that never ends fails at the size limit', async () => {
      await expect(loadIdentityFile('/dev/zero')).rejects.toThrow(/identity file "\/dev\/zero" is larger than 16 MiB/);
      await expect(loadRecipientsFile('/dev/null')).rejects.toThrow(/holds no recipients/);
      await expect(loadIdentityFile(dir)).rejects.toThrow(/is not a file/);
    });

    it('waits on a named FIFO for its writer, who may come later, and an abort ends the wait (opening it blocked for good, SIGTERM too)', async () => {
      const fifo = path.join(dir, 'key.fifo');
      execFileSync('mkfifo', [fifo]);
      const loading = loadIdentityFile(fifo);
      await new Promise((resolve) => setImmediate(resolve));
      await writeFile(fifo, `${formatIdentity(carol)}\n`);
      expect((await loading)[0]!.recipient.text).toBe(carol.recipient.text);

      const abort = new AbortController();
      const waiting = loadRecipientsFile(fifo, abort.signal);
      await new Promise((resolve) => setImmediate(resolve));
      abort.abort(new AbortedError('interrupted by SIGTERM'));
      await expect(waiting).rejects.toThrow(/^interrupted by SIGTERM$/);
    });
  });
});

// ---- the C2SP age test vectors ----

interface Vector {
  readonly name: string;
  readonly expect: string;
  readonly payload?: string;
  readonly fileKey?: Buffer;
  readonly identities: string[];
  readonly passphrases: string[];
  readonly armored: boolean;
  readonly file: Buffer;
}

function parseVector(name: string, bytes: Uint8Array): Vector {
  const data = Buffer.from(bytes);
  const split = data.indexOf('\n\n');
  const fields = data.toString('latin1', 0, split).split('\n');
  const vector: { -readonly [K in keyof Vector]: Vector[K] } = { name, expect: '', identities: [], passphrases: [], armored: false, file: data.subarray(split + 2) };
  let compressed = false;
  for (const field of fields) {
    const colon = field.indexOf(': ');
    const [key, value] = [field.slice(0, colon), field.slice(colon + 2)];
    if (key === 'expect') vector.expect = value;
    else if (key === 'payload') vector.payload = value;
    else if (key === 'file key') vector.fileKey = Buffer.from(value, 'hex');
    else if (key === 'identity') vector.identities.push(value);
    else if (key === 'passphrase') vector.passphrases.push(value);
    else if (key === 'armored') vector.armored = value === 'yes';
    else if (key === 'compressed') compressed = value === 'zlib';
  }
  if (compressed) vector.file = inflateSync(vector.file);
  return vector;
}

const allVectors = Object.entries(vectors as unknown as Record<string, Uint8Array>).map(([name, bytes]) => parseVector(name, bytes));
const x25519Vectors = allVectors.filter((vector) => !vector.armored && vector.passphrases.length === 0 && vector.identities.every((id) => id.startsWith('AGE-SECRET-KEY-1')));

function isHeaderFailure(error: unknown): boolean {
  return (
    (error instanceof AgeDamagedError && error.part === 'header') ||
    error instanceof AgeNotEncryptedError ||
    error instanceof AgeUnsupportedError ||
    error instanceof AgeHeaderLimitError
  );
}

describe('C2SP test vectors (cctv-age)', () => {
  it('has the vectors', () => {
    expect(allVectors.length).toBeGreaterThan(100);
    expect(x25519Vectors.length).toBeGreaterThan(60);
  });

  it.each(x25519Vectors.map((vector) => [vector.name, vector] as const))('%s', (_name, vector) => {
    const identities = vector.identities.length === 0 ? [alice] : vector.identities.map((text) => parseIdentity(text));
    // Whole, then in small pieces (the header parser and STREAM see every split).
    for (const split of [[], cuts(vector.file.length, Math.max(7, Math.floor(vector.file.length / 1000)), 20)]) {
      const { plaintext, error } = decrypt(vector.file, identities, split);
      switch (vector.expect) {
        case 'success':
          expect(error).toBeUndefined();
          expect(sha256(plaintext)).toBe(vector.payload);
          break;
        case 'no match':
          expect(error).toBeInstanceOf(AgeNoIdentityMatchedError);
          break;
        case 'HMAC failure':
          expect(error).toBeInstanceOf(AgeDamagedError);
          expect((error as AgeDamagedError).part).toBe('header-mac');
          break;
        case 'header failure':
          expect(isHeaderFailure(error), String(error)).toBe(true);
          break;
        case 'payload failure':
          expect(error).toBeInstanceOf(AgeDamagedError);
          expect((error as AgeDamagedError).part).toBe('payload');
          // Exactly the plaintext the reference implementation releases before failing.
          if (vector.payload !== undefined) expect(sha256(plaintext)).toBe(vector.payload);
          break;
        default:
          throw new Error(`unknown expectation ${vector.expect}`);
      }
    }
  });

  it('re-encodes every parsed header to the same bytes, and re-seals every successful payload identically', () => {
    let headers = 0;
    let payloads = 0;
    for (const vector of allVectors) {
      if (vector.armored || vector.expect === 'header failure') continue;
      if (!vector.identities.every((id) => id.startsWith('AGE-SECRET-KEY-1'))) continue;
      const done = parseHeaderPrefix(vector.file);
      expect(done, vector.name).toBeDefined();
      const { header, rest } = done!;
      expect(formatHeader(header.macInput, header.mac)).toEqual(vector.file.subarray(0, header.length));
      headers += 1;
      if (vector.expect !== 'success' || vector.fileKey === undefined || vector.passphrases.length > 0) continue;
      const identities = vector.identities.map((text) => parseIdentity(text));
      const plaintext = decryptOrThrow(vector.file, identities);
      const nonce = rest.subarray(0, 16);
      const sealer = new StreamEncryptor(derivePayloadKey(vector.fileKey, nonce));
      const out: Uint8Array[] = [];
      sealer.write(plaintext, out);
      sealer.end(out);
      expect(Buffer.concat(out).equals(rest.subarray(16)), vector.name).toBe(true);
      payloads += 1;
    }
    expect(headers).toBeGreaterThan(40);
    expect(payloads).toBeGreaterThan(10);
  });

  it('refuses passphrase (scrypt) files with a message saying so', () => {
    const scrypt = allVectors.filter((vector) => !vector.armored && vector.passphrases.length > 0);
    expect(scrypt.length).toBeGreaterThan(10);
    for (const vector of scrypt) {
      const { error } = decrypt(vector.file, [alice]);
      if (error instanceof AgeUnsupportedError) expect(error.message).toMatch(/passphrase \(scrypt\)/);
      // `Scrypt` is not `scrypt`: an unknown stanza type, so no match, as the vector expects.
      else if (vector.expect === 'no match') expect(error, vector.name).toBeInstanceOf(AgeNoIdentityMatchedError);
      else expect(vector.expect === 'header failure' && isHeaderFailure(error), `${vector.name}: ${String(error)}`).toBe(true);
    }
  });

  it('refuses ASCII-armored files and post-quantum identities clearly', () => {
    const armored = allVectors.find((vector) => vector.name === 'armor_x25519')!;
    expect(decrypt(armored.file, [alice]).error).toBeInstanceOf(AgeUnsupportedError);
    expect(decrypt(armored.file, [alice]).error).toHaveProperty('message', expect.stringMatching(/ASCII-armored/));
    const hybrid = allVectors.find((vector) => vector.name === 'hybrid')!;
    expect(() => parseIdentity(hybrid.identities[0]!)).toThrow(/post-quantum identities/);
    // A file for a post-quantum recipient is not ours to open: no match, types listed.
    const { error } = decrypt(hybrid.file, [alice]);
    expect(error).toBeInstanceOf(AgeNoIdentityMatchedError);
    expect((error as AgeNoIdentityMatchedError).recipientTypes).toEqual(['mlkem768x25519']);
  });
});

// ---- our own files ----

const payloadSizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK, 3 * CHUNK + 1, 4 * MiB + 123];

describe('round trips', () => {
  it.each(payloadSizes)('%i bytes: encrypts, decrypts in any split, and has the size the format dictates', (size) => {
    const plaintext = randomBytes(size);
    const file = encrypt(plaintext, [alice.recipient], cuts(size, 40_000));
    const headerLength = parseHeaderPrefix(file)!.header.length;
    const chunks = Math.max(1, Math.ceil(size / CHUNK));
    expect(file.length).toBe(headerLength + 16 + size + 16 * chunks);
    expect(decryptOrThrow(file, [alice]).equals(plaintext)).toBe(true);
    expect(decryptOrThrow(file, [alice], cuts(file.length, 33_333, 10)).equals(plaintext)).toBe(true);
    if (size <= CHUNK + 1) expect(decryptOrThrow(file, [alice], cuts(file.length, 1, 0)).equals(plaintext)).toBe(true);
  });

  it('ends a payload of whole chunks with a full final chunk, and an empty one with one empty chunk', () => {
    const exact = encrypt(randomBytes(2 * CHUNK), [alice.recipient]);
    const headerLength = parseHeaderPrefix(exact)!.header.length;
    expect(exact.length - headerLength - 16).toBe(2 * SEALED);
    const empty = encrypt(Buffer.alloc(0), [alice.recipient]);
    expect(empty.length - parseHeaderPrefix(empty)!.header.length).toBe(16 + 16);
  });

  it('encrypts to several recipients; each identity opens it, any order of identities', () => {
    const plaintext = randomBytes(200_000);
    const file = encrypt(plaintext, [alice.recipient, bob.recipient]);
    expect(summarizeAgeHeader(file)?.recipientTypes).toEqual(['X25519', 'X25519']);
    expect(decryptOrThrow(file, [alice]).equals(plaintext)).toBe(true);
    expect(decryptOrThrow(file, [bob]).equals(plaintext)).toBe(true);
    expect(decryptOrThrow(file, [carol, bob]).equals(plaintext)).toBe(true);
    const { error } = decrypt(file, [carol]);
    expect(error).toBeInstanceOf(AgeNoIdentityMatchedError);
    expect((error as AgeNoIdentityMatchedError).outcome).toBe('refused');
    expect((error as AgeNoIdentityMatchedError).message).toMatch(/^wrong key: the identity given cannot decrypt this file \(it is encrypted to 2 recipients: X25519 ×2\)$/);
  });

  it('uses a fresh file key, nonce and ephemeral share for every file', () => {
    const plaintext = Buffer.from('same input');
    const first = encrypt(plaintext, [alice.recipient]);
    const second = encrypt(plaintext, [alice.recipient]);
    expect(first.equals(second)).toBe(false);
    const [a, b] = [parseHeaderPrefix(first)!, parseHeaderPrefix(second)!];
    expect(a.header.stanzas[0]!.args[0]).not.toBe(b.header.stanzas[0]!.args[0]);
    expect(a.rest.subarray(0, 16).equals(b.rest.subarray(0, 16))).toBe(false);
  });

  it('works as Transforms in a stream pipeline and as async generators', async () => {
    const plaintext = randomBytes(3 * CHUNK + 5);
    const sealed: Buffer[] = [];
    await pipeline(Readable.from(cutAt(plaintext, cuts(plaintext.length, 50_000))), createAgeEncryptStream([bob.recipient]), async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) sealed.push(chunk);
    });
    const opened: Buffer[] = [];
    await pipeline(Readable.from(sealed), createAgeDecryptStream([bob]), async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) opened.push(chunk);
    });
    expect(Buffer.concat(opened).equals(plaintext)).toBe(true);

    const viaGenerators: Uint8Array[] = [];
    for await (const chunk of decryptAge(encryptAge(Readable.from([plaintext]), [carol.recipient]), [carol])) viaGenerators.push(chunk);
    expect(Buffer.concat(viaGenerators).equals(plaintext)).toBe(true);
  });

  it('emits one buffer per input chunk (so a consumer writing each makes few system calls)', async () => {
    const chunks: Buffer[] = [];
    const input = Array.from({ length: 4 }, () => randomBytes(MiB));
    await pipeline(Readable.from(input), createAgeEncryptStream([alice.recipient]), async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) chunks.push(chunk);
    });
    expect(chunks.length).toBeLessThanOrEqual(input.length + 1);
    const plaintext: Buffer[] = [];
    await pipeline(Readable.from(chunks), createAgeDecryptStream([alice]), async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) plaintext.push(chunk);
    });
    expect(plaintext.length).toBeLessThanOrEqual(chunks.length);
    expect(Buffer.concat(plaintext).equals(Buffer.concat(input))).toBe(true);
  });

  it('fails a pipeline with the typed error when the input is damaged', async () => {
    const file = encrypt(randomBytes(100_000), [alice.recipient]);
    const cut = file.subarray(0, file.length - 10);
    await expect(pipeline(Readable.from([cut]), createAgeDecryptStream([alice]), new Writable({ write: (_c, _e, callback) => callback() }))).rejects.toBeInstanceOf(
      AgeDamagedError,
    );
    await expect(pipeline(Readable.from([file]), createAgeDecryptStream([bob]), new Writable({ write: (_c, _e, callback) => callback() }))).rejects.toBeInstanceOf(
      AgeNoIdentityMatchedError,
    );
  });

  it('refuses to start without recipients or identities', () => {
    expect(() => new AgeEncryptor([])).toThrow(AgeBadRecipientError);
    expect(() => new AgeDecryptor([])).toThrow(AgeBadIdentityError);
  });
});

describe('a file written by several encryptors in turn', () => {
  /** Encrypts `plaintext` in runs that each stop (suspend) at the next stop; the saved position goes through a copy, as a file on disk. */
  function inRuns(plaintext: Buffer, stops: readonly number[]): Buffer {
    const out: Uint8Array[] = [];
    let encryptor = new AgeEncryptor([alice.recipient]);
    let from = 0;
    for (const stop of stops) {
      for (const piece of cutAt(plaintext.subarray(from, stop), [30_000, 70_000])) encryptor.write(piece, out);
      const saved = encryptor.suspend(out);
      expect(saved.pending.length).toBeLessThanOrEqual(CHUNK);
      encryptor = new AgeEncryptor({ chunkIndex: saved.chunkIndex, payloadKey: Buffer.from(saved.payloadKey), pending: Buffer.from(saved.pending) });
      from = stop;
    }
    encryptor.write(plaintext.subarray(from), out);
    encryptor.end(out);
    return Buffer.concat(out);
  }

  // Stops before anything was written, inside a chunk, on a chunk boundary (a full chunk held back: more may follow), twice in one chunk.
  it.each([[[0]], [[1]], [[CHUNK - 1]], [[CHUNK]], [[CHUNK + 1]], [[2 * CHUNK, 2 * CHUNK]], [[10, 20, CHUNK, 3 * CHUNK + 5]]])('stops at %j: one age file of the format\'s size', (stops) => {
    for (const size of [3 * CHUNK + 5, 4 * CHUNK]) {
      const plaintext = randomBytes(size);
      const file = inRuns(plaintext, stops);
      const headerLength = parseHeaderPrefix(file)!.header.length;
      expect(file.length).toBe(headerLength + 16 + size + 16 * Math.ceil(size / CHUNK));
      expect(decryptOrThrow(file, [alice]).equals(plaintext)).toBe(true);
    }
  });

  it('seals the chunks exactly as one encryptor would', () => {
    const key = derivePayloadKey(randomBytes(16), randomBytes(16));
    const plaintext = randomBytes(5 * CHUNK + 123);
    const whole: Uint8Array[] = [];
    const once = new StreamEncryptor(key);
    once.write(plaintext, whole);
    once.end(whole);
    const pieces: Uint8Array[] = [];
    let sealer = new StreamEncryptor(key);
    let from = 0;
    for (const stop of [7, CHUNK, 3 * CHUNK + 1, 3 * CHUNK + 2]) {
      sealer.write(plaintext.subarray(from, stop), pieces);
      sealer = new StreamEncryptor(key, sealer.suspend());
      from = stop;
    }
    sealer.write(plaintext.subarray(from), pieces);
    sealer.end(pieces);
    expect(Buffer.concat(pieces).equals(Buffer.concat(whole))).toBe(true);
  });

  it('refuses a position that no payload can be at', () => {
    const key = derivePayloadKey(randomBytes(16), randomBytes(16));
    expect(() => new StreamEncryptor(key, { chunkIndex: 1, pending: Buffer.alloc(0) })).toThrow(RangeError);
    expect(() => new StreamEncryptor(key, { chunkIndex: 0, pending: Buffer.alloc(CHUNK + 1) })).toThrow(RangeError);
    expect(() => new StreamEncryptor(key, { chunkIndex: -1, pending: Buffer.alloc(1) })).toThrow(RangeError);
    expect(() => new AgeEncryptor({ chunkIndex: 0, payloadKey: Buffer.alloc(16), pending: Buffer.alloc(1) })).toThrow(RangeError);
  });
});

describe('damaged files are refused, and nothing unauthenticated is released', () => {
  const plaintext = randomBytes(3 * CHUNK + 1000);
  const file = encrypt(plaintext, [alice.recipient]);
  const payloadStart = parseHeaderPrefix(file)!.header.length + 16;
  const chunkAt = (index: number) => payloadStart + index * SEALED;

  function expectDamaged(damagedFile: Uint8Array, part: 'header' | 'header-mac' | 'payload', message?: RegExp): Buffer {
    for (const split of [[], cuts(damagedFile.length, 65_000)]) {
      const { plaintext: released, error } = decrypt(damagedFile, [alice], split);
      expect(error).toBeInstanceOf(AgeDamagedError);
      expect((error as AgeDamagedError).part).toBe(part);
      expect((error as AgeDamagedError).code).toBe('AGE_DAMAGED');
      expect((error as AgeDamagedError).outcome).toBe('refused');
      if (message) expect((error as Error).message).toMatch(message);
      // Whatever came out is a prefix of the real plaintext, in whole chunks.
      expect(released.equals(plaintext.subarray(0, released.length))).toBe(true);
      expect(released.length % CHUNK).toBe(0);
    }
    return decrypt(damagedFile, [alice]).plaintext;
  }

  it('truncated anywhere in the payload', () => {
    for (const end of [payloadStart - 1, payloadStart, payloadStart + 10, chunkAt(1), chunkAt(1) + 16, chunkAt(2) + 500, chunkAt(3), chunkAt(3) + 17, file.length - 1]) {
      const part = end < payloadStart ? 'header' : 'payload';
      expectDamaged(file.subarray(0, end), part);
    }
  });

  it('cut exactly after a middle chunk: the chunks before it are released, then refused as truncated', () => {
    const released = expectDamaged(file.subarray(0, chunkAt(2)), 'payload', /final chunk is missing/);
    expect(released.length).toBe(2 * CHUNK);
  });

  it('truncated in the header', () => {
    for (const end of [5, 30, 60, 100, payloadStart - 20]) {
      const { error } = decrypt(file.subarray(0, end), [alice]);
      expect(isHeaderFailure(error), String(error)).toBe(true);
    }
  });

  it('chunks reordered, dropped or duplicated', () => {
    const chunk = (index: number) => file.subarray(chunkAt(index), Math.min(chunkAt(index + 1), file.length));
    const head = file.subarray(0, payloadStart);
    expectDamaged(Buffer.concat([head, chunk(1), chunk(0), chunk(2), chunk(3)]), 'payload');
    expectDamaged(Buffer.concat([head, chunk(0), chunk(2), chunk(3)]), 'payload');
    expectDamaged(Buffer.concat([head, chunk(0), chunk(1), chunk(1), chunk(2), chunk(3)]), 'payload');
  });

  it('any payload byte flipped (ciphertext, tag, nonce)', () => {
    for (const at of [payloadStart - 16, payloadStart - 1, payloadStart, chunkAt(1) - 1, chunkAt(1) + 100, chunkAt(3) + 3, file.length - 1]) {
      const tampered = Buffer.from(file);
      tampered[at]! ^= 0x01;
      expectDamaged(tampered, 'payload');
    }
  });

  it('data appended after the final chunk', () => {
    // The short last chunk grows by what was appended and no longer authenticates.
    expectDamaged(Buffer.concat([file, Buffer.from([0])]), 'payload', /last chunk \(3\) failed authentication/);
    expectDamaged(Buffer.concat([file, file.subarray(chunkAt(3))]), 'payload');
    // A payload of whole chunks ends with a full final chunk: it is released, then refused.
    const whole = encrypt(plaintext.subarray(0, 2 * CHUNK), [alice.recipient]);
    for (const extra of [1, 100, SEALED + 3]) {
      const { plaintext: released, error } = decrypt(Buffer.concat([whole, randomBytes(extra)]), [alice]);
      expect(error).toBeInstanceOf(AgeDamagedError);
      expect((error as Error).message).toMatch(/data follows the final chunk/);
      expect(released.equals(plaintext.subarray(0, 2 * CHUNK))).toBe(true);
    }
  });

  it('the header altered: MAC mismatch, or a stanza no longer opens', () => {
    const macLine = file.indexOf('\n--- ') + 5;
    const badMac = Buffer.from(file);
    badMac[macLine] = badMac[macLine] === 0x41 ? 0x42 : 0x41;
    expect(decrypt(badMac, [alice]).error).toSatisfy((error) => error instanceof AgeDamagedError || isHeaderFailure(error));
    // A second, well-formed stanza added: everything parses, only the MAC catches it.
    const extra = Buffer.from(`-> X25519 ${encodeBase64(randomBytes(32))}\n${encodeBase64(randomBytes(32))}\n`);
    const grown = Buffer.concat([file.subarray(0, macLine - 4), extra, file.subarray(macLine - 4)]);
    const { error } = decrypt(grown, [alice]);
    expect(error).toBeInstanceOf(AgeDamagedError);
    expect((error as AgeDamagedError).part).toBe('header-mac');
    // The stanza body altered: the wrap tag fails, so no identity matches.
    const stanzaBody = file.indexOf('\n', file.indexOf('-> X25519')) + 1;
    const badBody = Buffer.from(file);
    badBody[stanzaBody] = badBody[stanzaBody] === 0x41 ? 0x42 : 0x41;
    expect(decrypt(badBody, [alice]).error).toSatisfy((e) => e instanceof AgeNoIdentityMatchedError || isHeaderFailure(e));
  });
});

describe('hostile and foreign input', () => {
  /** Feeds `source` to a decryptor until it throws; returns the error and the bytes it read. */
  async function feed(source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, limits?: ConstructorParameters<typeof AgeDecryptor>[1]): Promise<{ error: unknown; consumed: number }> {
    const decryptor = new AgeDecryptor([alice], limits);
    const out: Uint8Array[] = [];
    let consumed = 0;
    try {
      for await (const chunk of source) {
        consumed += chunk.length;
        decryptor.write(chunk, out);
        out.length = 0;
      }
      decryptor.end(out);
    } catch (error) {
      return { error, consumed };
    }
    return { error: undefined, consumed };
  }

  /** `prefix`, then `unit` repeated without end (the consumer stops it). */
  function* endless(prefix: string, unit: string, unitsPerChunk = 1024): Generator<Buffer> {
    yield Buffer.from(prefix, 'latin1');
    const chunk = Buffer.from(unit.repeat(unitsPerChunk), 'latin1');
    for (;;) yield chunk;
  }

  it('an endless argument line is refused after the line limit', async () => {
    const { error, consumed } = await feed(endless(`${AGE_MAGIC}-> X25519 `, 'A'));
    expect(error).toBeInstanceOf(AgeHeaderLimitError);
    expect((error as Error).message).toMatch(/line 2 is longer than 4096 bytes/);
    expect(consumed).toBeLessThan(8 * KiB);
  });

  it('an endless body line is refused after 64 columns', async () => {
    const { error, consumed } = await feed(endless(`${AGE_MAGIC}-> X25519 abc\n`, 'A', 16));
    expect(error).toBeInstanceOf(AgeDamagedError);
    expect((error as Error).message).toMatch(/longer than 64 columns/);
    expect(consumed).toBeLessThan(200);
  });

  it('endless stanzas are refused at the stanza limit, endless full body lines at the header limit', async () => {
    const stanzas = await feed(endless(AGE_MAGIC, '-> a\n\n'));
    expect(stanzas.error).toBeInstanceOf(AgeHeaderLimitError);
    expect((stanzas.error as Error).message).toMatch(/more than 4096 recipient stanzas/);
    expect(stanzas.consumed).toBeLessThan(64 * KiB);

    const body = await feed(endless(`${AGE_MAGIC}-> X25519 abc\n`, `${'A'.repeat(64)}\n`));
    expect(body.error).toBeInstanceOf(AgeHeaderLimitError);
    expect((body.error as Error).message).toMatch(/larger than 1048576 bytes/);
    expect(body.consumed).toBeLessThan(1 * MiB + 100 * KiB);

    const small = await feed(endless(`${AGE_MAGIC}-> X25519 abc\n`, `${'A'.repeat(64)}\n`), { limits: { maxHeaderBytes: 4096, maxStanzas: 4, maxLineBytes: 256 } });
    expect(small.error).toBeInstanceOf(AgeHeaderLimitError);
    expect(small.consumed).toBeLessThan(4096 + 65 * 1024);
  });

  it('input that is not an age file is refused from its first bytes', async () => {
    const zstd = await feed(endless('\x28\xb5\x2f\xfd', '\0', 65536));
    expect(zstd.error).toBeInstanceOf(AgeNotEncryptedError);
    expect(zstd.consumed).toBeLessThanOrEqual(4);
    const tar = await feed([Buffer.from('tenants/acme/\0\0\0')]);
    expect(tar.error).toBeInstanceOf(AgeNotEncryptedError);
    expect((await feed([])).error).toBeInstanceOf(AgeNotEncryptedError);
    expect((await feed([])).error).toHaveProperty('message', 'the input is empty, not an age file');
    expect((await feed([Buffer.from('age-encryption.org/v2\n')])).error).toBeInstanceOf(AgeUnsupportedError);
    expect((await feed([Buffer.from('-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n')])).error).toBeInstanceOf(AgeUnsupportedError);
    expect((await feed([Buffer.from('-----BEGIN PGP MESSAGE-----\n')])).error).toBeInstanceOf(AgeNotEncryptedError);
  });

  it.each([
    ['CRLF line ends', `${AGE_MAGIC}-> X25519 abc\r\n\n--- ${'A'.repeat(43)}\n`],
    ['no stanza', `${AGE_MAGIC}--- ${'A'.repeat(43)}\n`],
    ['empty argument', `${AGE_MAGIC}-> X25519  abc\n\n--- ${'A'.repeat(43)}\n`],
    ['stanza without arguments', `${AGE_MAGIC}->\n\n--- ${'A'.repeat(43)}\n`],
    ['padded body', `${AGE_MAGIC}-> x\nAA==\n--- ${'A'.repeat(43)}\n`],
    ['non-canonical body', `${AGE_MAGIC}-> x\nAB\n--- ${'A'.repeat(43)}\n`],
    ['bad base64 character', `${AGE_MAGIC}-> x\nA*A\n--- ${'A'.repeat(43)}\n`],
    ['a short body line followed by another', `${AGE_MAGIC}-> x\nAA\nAA\n--- ${'A'.repeat(43)}\n`],
    ['stanza missing its final line', `${AGE_MAGIC}-> x\n${'A'.repeat(64)}\n--- ${'A'.repeat(43)}\n`],
    ['short MAC', `${AGE_MAGIC}-> x\n\n--- ${'A'.repeat(42)}\n`],
    ['MAC with padding', `${AGE_MAGIC}-> x\n\n--- ${'A'.repeat(42)}=\n`],
    ['MAC line with trailing space', `${AGE_MAGIC}-> x\n\n--- ${'A'.repeat(43)} \n`],
    ['non-ASCII argument', `${AGE_MAGIC}-> x\u00e9\n\n--- ${'A'.repeat(43)}\n`],
    ['X25519 stanza with two arguments', `${AGE_MAGIC}-> X25519 ${'A'.repeat(43)} x\n${'A'.repeat(43)}\n--- ${'A'.repeat(43)}\n`],
    ['X25519 share of 31 bytes', `${AGE_MAGIC}-> X25519 ${'A'.repeat(42)}\n${'A'.repeat(43)}\n--- ${'A'.repeat(43)}\n`],
    ['X25519 body of 33 bytes', `${AGE_MAGIC}-> X25519 ${encodeBase64(randomBytes(32))}\n${'A'.repeat(44)}\n--- ${'A'.repeat(43)}\n`],
  ])('a malformed header is damaged: %s', async (_name, header) => {
    const { error } = await feed([Buffer.from(header, 'latin1'), randomBytes(100)]);
    expect(isHeaderFailure(error), String(error)).toBe(true);
    expect(error).toBeInstanceOf(AgeDamagedError);
  });

  it('names at most five stanza types, shortened, when no identity matches', () => {
    const stanzas = Array.from({ length: 40 }, (_, i) => `-> ${String(i).padStart(3, '0')}${'t'.repeat(2000)}\n\n`).join('');
    const file = Buffer.from(`${AGE_MAGIC}-> X25519 ${encodeBase64(randomBytes(32))}\n${encodeBase64(randomBytes(32))}\n${stanzas}--- ${'A'.repeat(43)}\n`);
    const { error } = decrypt(file, [alice]);
    expect(error).toBeInstanceOf(AgeNoIdentityMatchedError);
    expect((error as Error).message.length).toBeLessThan(400);
    expect((error as Error).message).toMatch(/41 recipients: X25519, 000t+…, 001t+…, 002t+…, 003t+…, 36 more types\)$/);
    expect((error as AgeNoIdentityMatchedError).recipientTypes).toHaveLength(41);
  });

  it('a passphrase (scrypt) header is refused as unsupported', async () => {
    const { error } = await feed([Buffer.from(`${AGE_MAGIC}-> scrypt ${encodeBase64(randomBytes(16))} 18\n${encodeBase64(randomBytes(32))}\n--- ${'A'.repeat(43)}\n`)]);
    expect(error).toBeInstanceOf(AgeUnsupportedError);
    expect((error as Error).message).toMatch(/passphrase \(scrypt\)/);
  });
});

describe('probing without decrypting', () => {
  it('tells an age file by its magic line', () => {
    const file = encrypt(Buffer.from('x'), [alice.recipient]);
    expect(isAgeFile(file)).toBe(true);
    expect(isAgeFile(file.subarray(0, 22))).toBe(true);
    expect(isAgeFile(file.subarray(0, 21))).toBe(false);
    expect(isAgeFile(Buffer.from('age-encryption.org/v2\n'))).toBe(false);
    expect(isAgeFile(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))).toBe(false);
    expect(isAgeFile(new Uint8Array(0))).toBe(false);
    expect(isAgeFile(Buffer.concat([Buffer.from('xx'), file]).subarray(2))).toBe(true);
  });

  it('lists the stanza types of a header from a prefix, grease included', () => {
    const file = encrypt(randomBytes(10), [alice.recipient, bob.recipient, carol.recipient]);
    const summary = summarizeAgeHeader(file.subarray(0, 4096));
    expect(summary?.recipientTypes).toEqual(['X25519', 'X25519', 'X25519']);
    expect(summary?.headerBytes).toBe(parseHeaderPrefix(file)!.header.length);
    expect(summarizeAgeHeader(file.subarray(0, 100))).toBeUndefined();
    const grease = allVectors.find((vector) => vector.name === 'x25519_grease')!;
    expect(summarizeAgeHeader(grease.file)?.recipientTypes).toEqual(['grease', 'X25519', 'grease']);
    expect(() => summarizeAgeHeader(Buffer.from('PK\x03\x04'))).toThrow(AgeNotEncryptedError);
  });
});

describe('bounded memory', () => {
  it('streams 256 MiB through encryption and decryption holding less than 8 MiB', async () => {
    const pieceBytes = 1 * MiB;
    const pieces = 256;
    let live = 0;
    const baseline = (() => {
      collectGarbage();
      collectGarbage();
      return process.memoryUsage().arrayBuffers;
    })();
    const pattern = randomBytes(pieceBytes);
    async function* source(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < pieces; i++) {
        // A fresh buffer each time, as a real producer makes.
        yield Buffer.from(pattern);
        if (i % 32 === 31) {
          collectGarbage();
          collectGarbage();
          live = Math.max(live, process.memoryUsage().arrayBuffers - baseline);
        }
      }
    }
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of decryptAge(encryptAge(source(), [alice.recipient]), [alice])) {
      hash.update(chunk);
      bytes += chunk.length;
    }
    expect(bytes).toBe(pieces * pieceBytes);
    const expected = createHash('sha256');
    for (let i = 0; i < pieces; i++) expected.update(pattern);
    expect(hash.digest('hex')).toBe(expected.digest('hex'));
    expect(live).toBeLessThan(8 * MiB);
  });
});
