// The storage contract (shared/storage/types.ts) as one suite that every location must
// pass: local file, in-memory and S3 (s3rver). Each implementation supplies only how to
// make a fresh location and how to look for leftovers (temporary files, objects).

import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { AbortedError, DestinationExistsError, StorageError } from '../shared/errors.js';
import type { ArchiveLocation, ArchiveMetadata, WriteOptions } from '../shared/storage/types.js';

export interface ContractSubject {
  /** A location holding no archive yet; `name` is unique per call. */
  location(name: string): Promise<ArchiveLocation> | ArchiveLocation;
  /** Anything the location left behind besides a committed archive (temp files…): [] when clean. */
  leftovers(location: ArchiveLocation): Promise<string[]>;
}

/** What differs between implementations, known when the suite is declared. */
export interface ContractOptions {
  /** Size of the large round trip; for S3 several parts. */
  readonly largeBytes: number;
  /** Two concurrent writes without overwrite: exactly one wins (not on stores ignoring If-None-Match). */
  readonly atomicNoClobber: boolean;
  /** The bytes read are the bytes stored, so `read` tells their size (not through --pipe). @default true */
  readonly readsStoredBytes?: boolean;
}

export const METADATA: ArchiveMetadata = {
  tenant: 'acme',
  formatVersion: 1,
  toolVersion: '0.1.0-test',
  createdAt: '2026-06-03T10:00:00.000Z',
};

export function writeOptions(overrides: Partial<WriteOptions> = {}): WriteOptions {
  return { overwrite: false, metadata: METADATA, ...overrides };
}

/** `data` as a stream of `chunk`-sized pieces. */
export function bodyOf(data: Buffer, chunk = 256 * 1024): Readable {
  function* pieces(): Generator<Buffer> {
    for (let offset = 0; offset < data.length; offset += chunk) yield data.subarray(offset, offset + chunk);
  }
  return Readable.from(pieces(), { objectMode: false });
}

/** Produces `bytes` bytes, then fails with `error`. */
export function failingBody(bytes: number, error: Error): Readable {
  async function* pieces(): AsyncGenerator<Buffer> {
    const chunk = 256 * 1024;
    for (let sent = 0; sent < bytes; sent += chunk) {
      yield randomBytes(Math.min(chunk, bytes - sent));
      await delay(0);
    }
    throw error;
  }
  return Readable.from(pieces(), { objectMode: false });
}

/** Produces `bytes` bytes, calls `then`, and then never ends (until destroyed). */
export function stallingBody(bytes: number, then: () => void): Readable {
  let sent = 0;
  let announced = false;
  return new Readable({
    read() {
      if (sent < bytes) {
        const size = Math.min(256 * 1024, bytes - sent);
        sent += size;
        this.push(randomBytes(size));
      } else if (!announced) {
        announced = true;
        then();
      }
    },
  });
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function expectNoArchive(location: ArchiveLocation): Promise<void> {
  await expect(location.read()).rejects.toMatchObject({ code: 'NOT_FOUND' });
}

export function describeStorageContract(name: string, options: ContractOptions, subject: () => ContractSubject): void {
  describe(`storage contract: ${name}`, () => {
    let counter = 0;
    const fresh = async () => subject().location(`contract-${Date.now()}-${counter++}.tar.zst`);

    it('round-trips a small archive byte for byte and reports its size', async () => {
      const location = await fresh();
      const data = randomBytes(100_000);
      const result = await location.write(bodyOf(data, 7_000), writeOptions());
      expect(result.bytes).toBe(data.length);
      expect(sha256(await readAll(await location.read()))).toBe(sha256(data));
      expect(await subject().leftovers(location)).toEqual([]);
    });

    it(options.readsStoredBytes === false ? 'tells no size for bytes that are not the stored ones' : 'tells the stored size before the first byte, once (for a restore\'s percent)', async () => {
      const location = await fresh();
      const data = randomBytes(54_321);
      await location.write(bodyOf(data, 7_000), writeOptions());
      const sizes: number[] = [];
      const stream = await location.read({ onSize: (bytes) => sizes.push(bytes) });
      const expected = options.readsStoredBytes === false ? [] : [data.length];
      expect(sizes).toEqual(expected);
      expect((await readAll(stream)).length).toBe(data.length);
      expect(sizes).toEqual(expected);
    });

    it('round-trips an empty archive', async () => {
      const location = await fresh();
      const result = await location.write(bodyOf(Buffer.alloc(0)), writeOptions());
      expect(result.bytes).toBe(0);
      expect((await readAll(await location.read())).length).toBe(0);
    });

    it('round-trips a large archive', async () => {
      const location = await fresh();
      const data = randomBytes(options.largeBytes);
      const result = await location.write(bodyOf(data, 1024 * 1024 + 3), writeOptions());
      expect(result.bytes).toBe(data.length);
      const back = await readAll(await location.read());
      expect(back.length).toBe(data.length);
      expect(sha256(back)).toBe(sha256(data));
      expect(await subject().leftovers(location)).toEqual([]);
    });

    it('calls finalMetadata at most once, after the last byte of the body', async () => {
      const location = await fresh();
      let ended = false;
      const calls: boolean[] = [];
      async function* pieces(): AsyncGenerator<Buffer> {
        yield randomBytes(10_000);
        yield randomBytes(10_000);
        ended = true;
      }
      await location.write(Readable.from(pieces(), { objectMode: false }), {
        ...writeOptions(),
        finalMetadata: () => {
          calls.push(ended);
          return { 'manifest-sha256': 'a'.repeat(64) };
        },
      });
      expect(calls.length).toBeLessThanOrEqual(1);
      expect(calls.every(Boolean)).toBe(true);
    });

    it('passes checkWritable on a fresh location', async () => {
      const location = await fresh();
      await expect(location.checkWritable({ overwrite: false })).resolves.toBeUndefined();
      await expect(location.checkWritable({ overwrite: true })).resolves.toBeUndefined();
    });

    it('refuses to overwrite without the flag, in checkWritable and in write', async () => {
      const location = await fresh();
      const first = randomBytes(5_000);
      await location.write(bodyOf(first), writeOptions());
      await expect(location.checkWritable({ overwrite: false })).rejects.toBeInstanceOf(DestinationExistsError);
      const second = bodyOf(randomBytes(5_000));
      await expect(location.write(second, writeOptions())).rejects.toBeInstanceOf(DestinationExistsError);
      expect(sha256(await readAll(await location.read()))).toBe(sha256(first));
      expect(await subject().leftovers(location)).toEqual([]);
    });

    it('overwrites with the flag', async () => {
      const location = await fresh();
      await location.write(bodyOf(randomBytes(5_000)), writeOptions());
      await expect(location.checkWritable({ overwrite: true })).resolves.toBeUndefined();
      const second = randomBytes(7_000);
      const result = await location.write(bodyOf(second), writeOptions({ overwrite: true }));
      expect(result.bytes).toBe(second.length);
      expect(sha256(await readAll(await location.read()))).toBe(sha256(second));
    });

    it('leaves nothing behind when the body fails mid-way, and reports the body error', async () => {
      const location = await fresh();
      const boom = new Error('archive producer failed');
      await expect(location.write(failingBody(12 * 1024 * 1024, boom), writeOptions())).rejects.toBe(boom);
      await expectNoArchive(location);
      expect(await subject().leftovers(location)).toEqual([]);
    });

    it('keeps the previous archive when an overwrite fails mid-way', async () => {
      const location = await fresh();
      const first = randomBytes(5_000);
      await location.write(bodyOf(first), writeOptions());
      const boom = new Error('archive producer failed');
      await expect(location.write(failingBody(3 * 1024 * 1024, boom), writeOptions({ overwrite: true }))).rejects.toBe(boom);
      expect(sha256(await readAll(await location.read()))).toBe(sha256(first));
      expect(await subject().leftovers(location)).toEqual([]);
    });

    it('leaves nothing behind when aborted mid-way, and destroys the body', async () => {
      const location = await fresh();
      const controller = new AbortController();
      const body = stallingBody(12 * 1024 * 1024, () => controller.abort());
      const error = await location.write(body, writeOptions({ signal: controller.signal })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AbortedError);
      expect(body.destroyed).toBe(true);
      await expectNoArchive(location);
      expect(await subject().leftovers(location)).toEqual([]);
    });

    it('rejects a write whose signal is already aborted, without storing anything', async () => {
      const location = await fresh();
      const controller = new AbortController();
      controller.abort();
      const body = bodyOf(randomBytes(1_000));
      await expect(location.write(body, writeOptions({ signal: controller.signal }))).rejects.toBeInstanceOf(AbortedError);
      expect(body.destroyed).toBe(true);
      await expectNoArchive(location);
    });

    it('reads a missing archive as NOT_FOUND', async () => {
      const location = await fresh();
      const error = await location.read().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StorageError);
      expect(error).toMatchObject({ code: 'NOT_FOUND' });
    });

    it('ends a read with AbortedError when the signal aborts mid-stream', async () => {
      const location = await fresh();
      await location.write(bodyOf(randomBytes(2 * 1024 * 1024)), writeOptions());
      const controller = new AbortController();
      const stream = await location.read({ signal: controller.signal });
      const error = await (async () => {
        let seen = 0;
        for await (const chunk of stream) {
          seen += (chunk as Buffer).length;
          if (seen > 0) controller.abort();
        }
      })().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AbortedError);
    });

    it('ends a read held unread while its signal aborts with AbortedError once it is read, and throws nothing uncaught meanwhile', async () => {
      // A restore holds the stream it opened while it reads the archive's footer first (a ranged
      // GET): the Lambda's deadline aborting then threw its AbortedError uncaught from the S3
      // stream (no 'error' listener yet), which ends a Lambda runtime; vitest fails the run on it.
      const location = await fresh();
      await location.write(bodyOf(randomBytes(300_000)), writeOptions());
      const controller = new AbortController();
      const stream = await location.read({ signal: controller.signal });
      controller.abort();
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(stream.destroyed).toBe(true);
      expect(await readAll(stream).catch((e: unknown) => e)).toBeInstanceOf(AbortedError);
    });

    it.runIf(options.atomicNoClobber)('lets exactly one of two concurrent writes win without --overwrite', async () => {
      const location = await fresh();
      const results = await Promise.allSettled([
        location.write(bodyOf(randomBytes(300_000), 10_000), writeOptions()),
        location.write(bodyOf(randomBytes(300_000), 10_000), writeOptions()),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const rejected = results.find((r) => r.status === 'rejected');
      expect(rejected?.reason).toBeInstanceOf(DestinationExistsError);
      expect(await subject().leftovers(location)).toEqual([]);
    });
  });
}
