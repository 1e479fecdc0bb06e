// An upload to a store that stops reading a part (s3rver behind a proxy that stops reading
// part 2's body and never answers) fails once every attempt's socket took nothing for the
// stall time, in one line naming the stall, and aborts its multipart upload: it waited out the
// socket's two-minute idle timeout, twice an attempt, five attempts (20 minutes). A slow but
// moving part is never cut, nor is the wait for the answer while the send buffer drains.

import type { S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { StorageError } from '../shared/errors.js';
import { PartStalled, watchProgress } from '../shared/storage/part-progress.js';
import { createS3Client, loadS3Sdk } from '../shared/storage/s3-client.js';
import { S3Location } from '../shared/storage/s3.js';
import { MIN_PART_SIZE } from '../shared/storage/s3-upload.js';
import { startS3Server, startStallingProxy, type S3TestServer } from './helpers/s3-server.js';

describe('an upload to a store that stops reading part 2', () => {
  let server: S3TestServer;
  let proxy: Awaited<ReturnType<typeof startStallingProxy>>;
  let client: S3Client;

  beforeAll(async () => {
    server = await startS3Server();
    proxy = await startStallingProxy(server.endpoint, 2);
    client = await createS3Client({ ...server.clientOptions, endpoint: proxy.endpoint, maxAttempts: 3 });
  });
  afterAll(async () => {
    client.destroy();
    await proxy.stop();
    await server.dispose();
  });

  it('retries the part while its attempts stall, then fails in one line naming the stall and aborts the upload', async () => {
    const data = randomBytes(3 * MIN_PART_SIZE);
    const location = new S3Location({ client, bucket: server.bucket, key: 'acme/x.tar.zst', endpoint: proxy.endpoint, partSize: MIN_PART_SIZE, queueSize: 1, stallDeadlineMs: 500 });
    const failure = await location.write(Readable.from([data]), { overwrite: true, metadata: { tenant: 'acme', formatVersion: 2, toolVersion: 'test', createdAt: '2026-12-05T00:00:00.000Z' } }).catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(StorageError);
    const { message, code } = failure as StorageError;
    expect(code).toBe('UNREACHABLE');
    expect(message.split('\n')).toHaveLength(1);
    expect(message).toMatch(/^upload to s3:\/\/backups\/acme\/x\.tar\.zst stalled: the store took nothing of part 2 for 500 ms \(.*\), after 3 attempts/);
    // Each of the SDK's attempts was ended by the stall and the part sent again whole.
    expect(proxy.stalled()).toBe(3);
    // The multipart upload was aborted (s3rver answers that with 405: the note says so).
    expect(proxy.requests.some((request) => request.method === 'DELETE' && request.url.includes('uploadId='))).toBe(true);
    const sdk = await loadS3Sdk();
    const direct = await createS3Client(server.clientOptions);
    try {
      await expect(direct.send(new sdk.HeadObjectCommand({ Bucket: server.bucket, Key: 'acme/x.tar.zst' }))).rejects.toMatchObject({ name: 'NotFound' });
    } finally {
      direct.destroy();
    }
  });
});

describe('an upload of one part to a store that stops reading it', () => {
  let server: S3TestServer;
  let proxy: Awaited<ReturnType<typeof startStallingProxy>>;
  let client: S3Client;

  beforeAll(async () => {
    server = await startS3Server();
    proxy = await startStallingProxy(server.endpoint, 'PutObject');
    client = await createS3Client({ ...server.clientOptions, endpoint: proxy.endpoint, maxAttempts: 2 });
  });
  afterAll(async () => {
    client.destroy();
    await proxy.stop();
    await server.dispose();
  });

  it('retries the PutObject while it stalls, then fails in one line naming the stall', async () => {
    // Small enough for the sockets' buffers to take it whole: the answer is what never comes.
    const data = randomBytes(100_000);
    const location = new S3Location({ client, bucket: server.bucket, key: 'acme/small.tar.zst', endpoint: proxy.endpoint, stallDeadlineMs: 500 });
    const failure = await location.write(Readable.from([data]), { overwrite: true, metadata: { tenant: 'acme', formatVersion: 2, toolVersion: 'test', createdAt: '2026-12-05T00:00:00.000Z' } }).catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(StorageError);
    expect((failure as StorageError).message).toMatch(/^upload to s3:\/\/backups\/acme\/small\.tar\.zst stalled: the store took nothing of the object for (1 s \(no answer after all 100000 bytes|500 ms \(it stopped at byte \d+ of 100000)\), after 2 attempts$/);
    expect(proxy.stalled()).toBe(2);
  });
});

describe('a part whose bytes keep moving', () => {
  /** Runs the watching middleware on `data` against a request that takes each piece after `pieceMs` and answers `answerMs` after the last. */
  async function send(data: Buffer, stallMs: number, pieceMs: number | ((piece: number) => number), answerMs: number): Promise<{ readonly taken: number }> {
    let taken = 0;
    let pieces = 0;
    const handler = watchProgress<object, { $metadata: object }>(2, stallMs)(
      (args) =>
        new Promise((resolve, reject) => {
          // Like an HTTP request, not destroyed once its body is written: it waits for the answer.
          const request = new Writable({
            autoDestroy: false,
            highWaterMark: 16 * 1024,
            write(chunk: Buffer, _encoding, done) {
              taken += chunk.length;
              pieces += 1;
              setTimeout(done, typeof pieceMs === 'number' ? pieceMs : pieceMs(pieces));
            },
            final(done) {
              done();
              setTimeout(() => resolve({ response: {}, output: { $metadata: {} } }), answerMs);
            },
          });
          request.on('error', reject);
          ((args.request as { body: Readable }).body).pipe(request);
        }),
      {},
    );
    await handler({ input: {}, request: { body: data } });
    return { taken };
  }

  it('is not cut however long it takes while the socket takes bytes', async () => {
    const data = randomBytes(2 * 1024 * 1024);
    // 32 pieces of 64 KiB, 40 ms each: over a second, three times the stall time.
    await expect(send(data, 400, 40, 0)).resolves.toEqual({ taken: data.length });
  });

  it('waits for the answer as long as the last bytes took to be taken (a slow link draining the send buffer)', async () => {
    const data = randomBytes(2 * 1024 * 1024);
    // Taken over more than a second; the answer 700 ms after the last byte, longer than the stall time.
    await expect(send(data, 400, 40, 700)).resolves.toEqual({ taken: data.length });
  });

  it('waits for the answer past the stall time when the buffers took every byte at once (a slow uplink draining them failed every attempt)', async () => {
    const data = randomBytes(2 * 1024 * 1024);
    // Every piece taken at once, the answer 1.5 stall times later: the buffers draining at the link's rate.
    await expect(send(data, 300, 0, 450)).resolves.toEqual({ taken: data.length });
  });

  it('is not cut while the socket takes bytes in bursts (a full send buffer is writable again once half of it is sent)', async () => {
    const data = randomBytes(4 * 1024 * 1024);
    // 64 pieces, 20 ms each but for a pause of 500 ms after every 32nd (640 ms of history), longer than the stall time.
    await expect(send(data, 300, (piece) => (piece % 32 === 0 ? 500 : 20), 0)).resolves.toEqual({ taken: data.length });
  });

  it('is ended when the socket takes nothing for the stall time', async () => {
    const data = randomBytes(1024 * 1024);
    const failure = await send(data, 200, 60_000, 0).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(PartStalled);
    expect((failure as PartStalled).message).toMatch(/^the store took nothing of part 2 for 200 ms \(it stopped at byte \d+ of 1048576\)$/);
    await sleep(0);
  });
});
