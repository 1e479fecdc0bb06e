// The restore function's entry check reads an encrypted archive's footer up front: the age
// header from the stored bytes' first chunks, the last two STREAM chunks by one ranged read of
// the end (read-archive.ts encryptedArchiveFooter). The footer may lie wholly in the last chunk,
// across the last two (a last chunk of a few bytes), or end a full last chunk.

import { randomBytes } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { encryptAge, generateIdentity } from '../shared/age/index.js';
import { ARCHIVE_FOOTER_NIBBLE, MANIFEST_FORMAT } from '../shared/archive/manifest.js';
import { skippableFrame } from '../shared/archive/zstd-format.js';
import { encryptedArchiveFooter } from '../shared/restore/read-archive.js';
import type { ArchiveLocation } from '../shared/storage/types.js';

const CHUNK = 64 * 1024;
const identity = generateIdentity();
const footerFrame = skippableFrame(Buffer.from(JSON.stringify({ format: MANIFEST_FORMAT, tenant: 'acme', manifestSha256: 'ab'.repeat(32), entries: 123_456 })), ARCHIVE_FOOTER_NIBBLE);

async function encrypted(plaintext: Buffer): Promise<Buffer> {
  const pieces: Uint8Array[] = [];
  async function* source() {
    yield plaintext;
  }
  for await (const piece of encryptAge(source(), [identity.recipient])) pieces.push(piece);
  return Buffer.concat(pieces);
}

/** An archive whose plaintext is `fillBytes` random bytes then the footer's frame. */
async function archive(fillBytes: number): Promise<Buffer> {
  return encrypted(Buffer.concat([randomBytes(fillBytes), footerFrame]));
}

/** Reads `stored` as the store would: its start in 100-byte chunks, its end by a ranged read (counted). */
async function footerOf(stored: Buffer, identities = [identity]) {
  const tails: number[] = [];
  const location = { display: 's3://b/a.tar.zst.age', readTail: async (bytes: number) => (tails.push(bytes), stored.subarray(Math.max(0, stored.length - bytes))) } as unknown as ArchiveLocation;
  async function* start() {
    for (let at = 0; at < stored.length; at += 100) yield stored.subarray(at, at + 100);
  }
  const chunks = start();
  const peeked: Uint8Array[] = [];
  const footer = await encryptedArchiveFooter(location, { chunks, peeked, identities, archiveBytes: stored.length }, undefined);
  // What was read ahead is the stored bytes' start, handed on whole.
  const ahead = Buffer.concat(peeked);
  expect(ahead.equals(stored.subarray(0, ahead.length))).toBe(true);
  return { footer, tails };
}

describe("an encrypted archive's footer, read up front with the identity", () => {
  it('lies in its only chunk', async () => {
    const { footer, tails } = await footerOf(await archive(500));
    expect(footer).toMatchObject({ tenant: 'acme', entries: 123_456 });
    expect(tails).toHaveLength(1);
  });

  it('lies across the last two chunks when the last holds only a few bytes of it', async () => {
    for (const lastBytes of [1, 5, footerFrame.length - 1]) {
      const stored = await archive(2 * CHUNK + lastBytes - footerFrame.length);
      const { footer, tails } = await footerOf(stored);
      expect(footer, `last chunk of ${lastBytes} bytes`).toMatchObject({ entries: 123_456 });
      // One ranged read: a whole sealed chunk and the last one.
      expect(tails).toEqual([CHUNK + 16 + lastBytes + 16]);
    }
  });

  it('ends a full last chunk (the plaintext a multiple of 64 KiB)', async () => {
    const { footer } = await footerOf(await archive(3 * CHUNK - footerFrame.length));
    expect(footer).toMatchObject({ entries: 123_456 });
  });

  it('is not taken from an end altered, another key, or a file that is not age: none (the read that follows says what it is)', async () => {
    const stored = await archive(CHUNK);
    const altered = Buffer.from(stored);
    altered[altered.length - 20]! ^= 1;
    expect((await footerOf(altered)).footer).toBeUndefined();
    expect((await footerOf(stored, [generateIdentity()])).footer).toBeUndefined();
    const plain = Buffer.concat([randomBytes(300), footerFrame]);
    const { footer, tails } = await footerOf(plain);
    expect(footer).toBeUndefined();
    expect(tails).toEqual([]);
  });

  it('is not taken from an archive cut at a chunk boundary (its last chunk there sealed as a middle one)', async () => {
    const whole = await archive(2 * CHUNK);
    const headerAndNonce = whole.length - (2 * CHUNK + footerFrame.length + 3 * 16);
    expect((await footerOf(whole.subarray(0, headerAndNonce + 2 * (CHUNK + 16)))).footer).toBeUndefined();
  });
});
