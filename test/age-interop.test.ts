// The age module against the `age` CLI (Debian's age, the reference Go implementation) as
// an independent client, both ways: what we encrypt `age -d` opens, what `age -r` / `age -R`
// encrypts we open; keys made by `age-keygen` work here and ours work there; the wrong key
// and damaged files are refused on both sides.

import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  AgeDamagedError,
  AgeDecryptor,
  AgeEncryptor,
  AgeNoIdentityMatchedError,
  createAgeDecryptStream,
  createAgeEncryptStream,
  formatIdentity,
  generateIdentity,
  loadIdentityFile,
  loadRecipientsFile,
  summarizeAgeHeader,
  type AgeIdentity,
  type AgeRecipient,
} from '../shared/age/index.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const CHUNK = 64 * KiB;

let dir: string;
let aliceKeyFile: string;
let bobKeyFile: string;
let alice: AgeIdentity;
let bob: AgeIdentity;

function age(args: readonly string[], input?: Uint8Array): SpawnSyncReturns<Buffer> {
  const result = spawnSync('age', args, { input, maxBuffer: 64 * MiB });
  // age may refuse and exit before it has read all its input: Node 24 reports that write as
  // EPIPE (Node 20 did not); the exit status says what happened.
  const refusedEarly = (result.error as NodeJS.ErrnoException | undefined)?.code === 'EPIPE' && result.status !== null;
  if (result.error && !refusedEarly) throw result.error;
  return result;
}

function ageOk(args: readonly string[], input?: Uint8Array): Buffer {
  const result = age(args, input);
  expect(result.status, result.stderr.toString()).toBe(0);
  return result.stdout;
}

function encrypt(plaintext: Uint8Array, recipients: readonly AgeRecipient[]): Buffer {
  const encryptor = new AgeEncryptor(recipients);
  const out: Uint8Array[] = [];
  for (let at = 0; at < plaintext.length; at += 100_000) encryptor.write(plaintext.subarray(at, at + 100_000), out);
  encryptor.end(out);
  return Buffer.concat(out);
}

function decrypt(file: Uint8Array, identities: readonly AgeIdentity[]): { plaintext: Buffer; error?: unknown } {
  const out: Uint8Array[] = [];
  try {
    const decryptor = new AgeDecryptor(identities);
    for (let at = 0; at < file.length; at += 50_000) decryptor.write(file.subarray(at, at + 50_000), out);
    decryptor.end(out);
    return { plaintext: Buffer.concat(out) };
  } catch (error) {
    return { plaintext: Buffer.concat(out), error };
  }
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'age-interop-'));
  aliceKeyFile = path.join(dir, 'alice.txt');
  bobKeyFile = path.join(dir, 'bob.txt');
  for (const file of [aliceKeyFile, bobKeyFile]) {
    const made = spawnSync('age-keygen', ['-o', file]);
    expect(made.status, made.stderr?.toString()).toBe(0);
  }
  alice = (await loadIdentityFile(aliceKeyFile))[0]!;
  bob = (await loadIdentityFile(bobKeyFile))[0]!;
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 5 * MiB + 7];

describe('keys', () => {
  it('derives from an age-keygen identity file the recipient age-keygen -y prints', () => {
    const printed = spawnSync('age-keygen', ['-y', aliceKeyFile]).stdout.toString().trim();
    expect(alice.recipient.text).toBe(printed);
    expect(readFileSync(aliceKeyFile, 'utf8')).toContain(formatIdentity(alice));
  });

  it('makes identities the age CLI accepts, with the recipient it derives', () => {
    const ours = generateIdentity();
    const keyFile = path.join(dir, 'ours.txt');
    writeFileSync(keyFile, `# public key: ${ours.recipient.text}\n${formatIdentity(ours)}\n`, { mode: 0o600 });
    expect(spawnSync('age-keygen', ['-y', keyFile]).stdout.toString().trim()).toBe(ours.recipient.text);
    const file = ageOk(['-r', ours.recipient.text], Buffer.from('to our key'));
    expect(ageOk(['-d', '-i', keyFile], file).toString()).toBe('to our key');
  });
});

describe('we encrypt, age decrypts', () => {
  it.each(sizes)('%i bytes', (size) => {
    const plaintext = randomBytes(size);
    const file = encrypt(plaintext, [alice.recipient]);
    expect(ageOk(['-d', '-i', aliceKeyFile], file).equals(plaintext)).toBe(true);
  });

  it('to several recipients: age opens it with either key', () => {
    const plaintext = randomBytes(300_000);
    const file = encrypt(plaintext, [alice.recipient, bob.recipient]);
    expect(ageOk(['-d', '-i', aliceKeyFile], file).equals(plaintext)).toBe(true);
    expect(ageOk(['-d', '-i', bobKeyFile], file).equals(plaintext)).toBe(true);
  });

  it('through the Transform, file to file', async () => {
    const plaintext = randomBytes(2 * MiB + 3);
    const source = path.join(dir, 'plain.bin');
    const sealed = path.join(dir, 'plain.bin.age');
    writeFileSync(source, plaintext);
    await pipeline(createReadStream(source), createAgeEncryptStream([bob.recipient]), createWriteStream(sealed));
    expect(ageOk(['-d', '-i', bobKeyFile, sealed]).equals(plaintext)).toBe(true);
  });

  it('age refuses our file with the wrong key, or truncated, tampered or extended', () => {
    const plaintext = randomBytes(3 * CHUNK + 10);
    const file = encrypt(plaintext, [alice.recipient]);
    expect(age(['-d', '-i', bobKeyFile], file).status).not.toBe(0);
    const tampered = Buffer.from(file);
    tampered[file.length - 100]! ^= 1;
    for (const damaged of [file.subarray(0, file.length - 1), file.subarray(0, file.length - 26), tampered, Buffer.concat([file, Buffer.from('x')])]) {
      expect(age(['-d', '-i', aliceKeyFile], damaged).status).not.toBe(0);
    }
  });
});

describe('age encrypts, we decrypt', () => {
  it.each(sizes)('%i bytes', (size) => {
    const plaintext = randomBytes(size);
    const file = ageOk(['-r', alice.recipient.text], plaintext);
    const { plaintext: opened, error } = decrypt(file, [alice]);
    expect(error).toBeUndefined();
    expect(opened.equals(plaintext)).toBe(true);
  });

  it('to several recipients (-r twice, and -R with a recipients file): we open it with either key', async () => {
    const plaintext = randomBytes(200_000);
    const recipientsFile = path.join(dir, 'recipients.txt');
    writeFileSync(recipientsFile, `# the team\n${alice.recipient.text}\n\n${bob.recipient.text}\n`);
    const recipients = await loadRecipientsFile(recipientsFile);
    expect(recipients.map((recipient) => recipient.text)).toEqual([alice.recipient.text, bob.recipient.text]);
    for (const file of [ageOk(['-r', alice.recipient.text, '-r', bob.recipient.text], plaintext), ageOk(['-R', recipientsFile], plaintext)]) {
      expect(summarizeAgeHeader(file)?.recipientTypes).toEqual(['X25519', 'X25519']);
      expect(decrypt(file, [bob]).plaintext.equals(plaintext)).toBe(true);
      expect(decrypt(file, [alice]).plaintext.equals(plaintext)).toBe(true);
    }
    // And our encryption to the same recipients file opens with age.
    expect(ageOk(['-d', '-i', bobKeyFile], encrypt(plaintext, recipients)).equals(plaintext)).toBe(true);
  });

  it('through the Transform, file to file', async () => {
    const plaintext = randomBytes(3 * MiB);
    const source = path.join(dir, 'plain2.bin');
    const sealed = path.join(dir, 'plain2.bin.age');
    const opened = path.join(dir, 'plain2.out');
    writeFileSync(source, plaintext);
    ageOk(['-r', alice.recipient.text, '-o', sealed, source]);
    await pipeline(createReadStream(sealed), createAgeDecryptStream([bob, alice]), createWriteStream(opened));
    expect(readFileSync(opened).equals(plaintext)).toBe(true);
  });

  it('refuses the wrong key, naming what the file is encrypted to', () => {
    const file = ageOk(['-r', alice.recipient.text], randomBytes(1000));
    const { plaintext, error } = decrypt(file, [bob]);
    expect(error).toBeInstanceOf(AgeNoIdentityMatchedError);
    expect((error as Error).message).toBe('wrong key: the identity given cannot decrypt this file (it is encrypted to 1 recipient: X25519)');
    expect(plaintext.length).toBe(0);
  });

  it('refuses age output truncated, tampered with or extended, releasing nothing unauthenticated', () => {
    const plaintext = randomBytes(3 * CHUNK + 10);
    const file = ageOk(['-r', alice.recipient.text], plaintext);
    const payloadStart = file.indexOf('\n--- ') + 5 + 43 + 1 + 16;
    const flipped = (at: number) => {
      const copy = Buffer.from(file);
      copy[at]! ^= 0x80;
      return copy;
    };
    const damaged = [
      file.subarray(0, file.length - 1),
      file.subarray(0, payloadStart + 2 * (CHUNK + 16)),
      file.subarray(0, payloadStart - 3),
      flipped(payloadStart + 5),
      flipped(file.length - 1),
      flipped(payloadStart - 17),
      Buffer.concat([file, Buffer.from([0])]),
    ];
    for (const bad of damaged) {
      const { plaintext: released, error } = decrypt(bad, [alice]);
      expect(error).toBeInstanceOf(AgeDamagedError);
      expect(released.equals(plaintext.subarray(0, released.length))).toBe(true);
      expect(age(['-d', '-i', aliceKeyFile], bad).status).not.toBe(0);
    }
    // A flipped MAC: both refuse the header.
    const badMac = flipped(file.indexOf('\n--- ') + 6);
    expect(decrypt(badMac, [alice]).error).toBeInstanceOf(AgeDamagedError);
    expect(age(['-d', '-i', aliceKeyFile], badMac).status).not.toBe(0);
  });
});
