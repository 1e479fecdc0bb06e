// The look at the key before a write, the requests of a listing or a prune, and the tagging
// after an upload or a verification, against a store that accepts connections and never
// answers (a local HTTP server that reads requests and sends nothing): each fails within its
// deadline as "no answer", not after every attempt has waited out the socket's idle timeout.

import type { S3Client } from '@aws-sdk/client-s3';
import { createServer, type Server } from 'node:http';
import { Readable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { StorageError } from '../shared/errors.js';
import { createS3Client } from '../shared/storage/s3-client.js';
import { S3Location } from '../shared/storage/s3.js';
import { S3ArchiveStore } from '../shared/storage/s3-store.js';

let server: Server;
let client: S3Client;
let endpoint = '';

beforeAll(async () => {
  server = createServer((request) => request.resume());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  client = await createS3Client({ endpoint, accessKey: 'AK', secretKey: 'SK' });
});
afterAll(async () => {
  client.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function location(): S3Location {
  return new S3Location({ client, bucket: 'b', key: 'acme/x.tar.zst', endpoint, answerDeadlineMs: 300 });
}

describe('a store that never answers the look at the key', () => {
  it('fails the check within the deadline, as unreachable', async () => {
    const failure = await location().checkWritable({ overwrite: false }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(StorageError);
    expect(failure).toMatchObject({ code: 'UNREACHABLE', message: `cannot reach ${endpoint} for s3://b/acme/x.tar.zst: no answer in 0.3 s` });
  });

  it('answers an abort as an abort, not as the deadline', async () => {
    const controller = new AbortController();
    const checking = location().checkWritable({ overwrite: false, signal: controller.signal }).catch((error: unknown) => error);
    setTimeout(() => controller.abort(), 50);
    expect(await checking).toMatchObject({ code: 'ABORTED' });
  });
});

describe('a store that never answers a listing or a prune', () => {
  const store = () => new S3ArchiveStore({ client, bucket: 'b', prefix: 'acme/', endpoint, answerDeadlineMs: 300 });
  const object = { name: '1.tar.zst', location: 's3://b/acme/1.tar.zst', bytes: 10_000, modifiedAt: new Date(), etag: '"e"' };

  it('fails the listing, the look at an object and its removal within the deadline, as unreachable', async () => {
    await expect(store().list()).rejects.toMatchObject({ code: 'UNREACHABLE', message: `cannot reach ${endpoint} for s3://b/acme/: no answer in 0.3 s` });
    await expect(store().inspect(object)).rejects.toMatchObject({ code: 'UNREACHABLE', message: `cannot reach ${endpoint} for s3://b/acme/1.tar.zst: no answer in 0.3 s` });
    await expect(store().remove(object)).rejects.toMatchObject({ code: 'UNREACHABLE', message: `cannot reach ${endpoint} for s3://b/acme/1.tar.zst: no answer in 0.3 s` });
    await expect(store().deletionTerms()).rejects.toMatchObject({ code: 'UNREACHABLE' });
  });

  it('answers an abort as an abort, not as the deadline', async () => {
    const controller = new AbortController();
    const listing = store().list({ signal: controller.signal }).catch((error: unknown) => error);
    setTimeout(() => controller.abort(), 50);
    expect(await listing).toMatchObject({ code: 'ABORTED' });
  });
});

describe('a store that takes the upload and never answers its tagging', () => {
  let taggingServer: Server;
  let taggingClient: S3Client;
  let taggingEndpoint = '';
  const taggingRequests: string[] = [];

  beforeAll(async () => {
    taggingServer = createServer((request, response) => {
      request.resume();
      if (request.url?.includes('tagging')) {
        taggingRequests.push(`${request.method} ${request.url}`);
        return;
      }
      request.on('end', () => response.writeHead(200, { ETag: '"stored"' }).end());
    });
    await new Promise<void>((resolve) => taggingServer.listen(0, '127.0.0.1', resolve));
    taggingEndpoint = `http://127.0.0.1:${(taggingServer.address() as AddressInfo).port}`;
    taggingClient = await createS3Client({ endpoint: taggingEndpoint, accessKey: 'AK', secretKey: 'SK' });
  });
  afterAll(async () => {
    taggingClient.destroy();
    taggingServer.closeAllConnections();
    await new Promise((resolve) => taggingServer.close(resolve));
  });

  const taggingLocation = () => new S3Location({ client: taggingClient, bucket: 'b', key: 'acme/x.tar.zst', endpoint: taggingEndpoint, answerDeadlineMs: 300 });
  const metadata = { tenant: 'acme', formatVersion: 2, toolVersion: '1', createdAt: new Date(0).toISOString() };

  it('keeps the stored archive when the tags get no answer: tags are optional', async () => {
    const written = await taggingLocation().write(Readable.from([Buffer.from('archive bytes')]), {
      overwrite: true,
      metadata,
      finalMetadata: () => ({ 'manifest-sha256': 'a'.repeat(64) }),
    });
    expect(written.bytes).toBe(13);
    expect(taggingRequests).toEqual([expect.stringMatching(/^PUT \/b\/acme\/x\.tar\.zst\?.*tagging/)]);
  });

  it('fails marking a verified archive within the deadline, as unreachable', async () => {
    const mark = { verifiedAt: new Date(0).toISOString(), manifestSha256: 'a'.repeat(64), createdAt: new Date(0).toISOString() };
    await expect(taggingLocation().markVerified(mark)).rejects.toMatchObject({
      code: 'UNREACHABLE',
      message: `cannot reach ${taggingEndpoint} for s3://b/acme/x.tar.zst: no answer in 0.3 s`,
    });
  });
});

describe('a store that answers the reads of a listing at once and drips their bytes', () => {
  let drippingServer: Server;
  let drippingClient: S3Client;
  let drippingEndpoint = '';
  const timers = new Set<NodeJS.Timeout>();
  let dripped: 'first bytes' | 'last bytes' = 'first bytes';

  beforeAll(async () => {
    // A GET of the `dripped` range: 206 with its headers at once, then a byte every 20 ms (4 KiB: 80 s); the other range at once.
    drippingServer = createServer((request, response) => {
      request.resume();
      const [, from, to] = /^bytes=(\d+)-(\d+)$/.exec(request.headers.range ?? '') ?? [undefined, '0', '4095'];
      const length = Number(to) - Number(from) + 1;
      response.writeHead(206, { ETag: '"dripped"', 'Content-Length': length, 'Content-Range': `bytes ${from}-${to}/10000`, 'Last-Modified': new Date(0).toUTCString() });
      if ((from === '0') !== (dripped === 'first bytes')) {
        response.end(Buffer.alloc(length, 0x28));
        return;
      }
      let sent = 0;
      const timer = setInterval(() => {
        if (response.destroyed || sent === length) {
          clearInterval(timer);
          timers.delete(timer);
          response.end();
          return;
        }
        response.write(Buffer.from([sent++ === 0 ? 0x28 : 0]));
      }, 20);
      timers.add(timer);
    });
    await new Promise<void>((resolve) => drippingServer.listen(0, '127.0.0.1', resolve));
    drippingEndpoint = `http://127.0.0.1:${(drippingServer.address() as AddressInfo).port}`;
    drippingClient = await createS3Client({ endpoint: drippingEndpoint, accessKey: 'AK', secretKey: 'SK' });
  });
  afterAll(async () => {
    for (const timer of timers) clearInterval(timer);
    drippingClient.destroy();
    drippingServer.closeAllConnections();
    await new Promise((resolve) => drippingServer.close(resolve));
  });

  it.each(['first bytes', 'last bytes'] as const)('fails the look at an object whose %s drip within the answer deadline, as unreachable, instead of an hour an object at a byte a second', async (which) => {
    dripped = which;
    const store = new S3ArchiveStore({ client: drippingClient, bucket: 'b', prefix: 'acme/', endpoint: drippingEndpoint, answerDeadlineMs: 300 });
    const object = { name: '1.tar.zst', location: 's3://b/acme/1.tar.zst', bytes: 10_000, modifiedAt: new Date(), etag: '"dripped"' };
    await expect(store.inspect(object, { wantsTail: () => true })).rejects.toMatchObject({ code: 'UNREACHABLE', message: `cannot reach ${drippingEndpoint} for s3://b/acme/1.tar.zst: no answer in 0.3 s` });
  });
});
