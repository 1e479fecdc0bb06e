// uploadStream against a store that stops answering (a real S3 client and a local HTTP server
// that starts multipart uploads, then never answers a part or the abort): an interrupted
// upload ends promptly, its cleanup bounded, saying what it left for the lifecycle rule; and
// against one that drops every connection, the note names the dropped connection.
// (s3-upload.test.ts mocks every S3Client, so this lives apart.)

import * as sdk from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createS3Client } from '../shared/storage/s3-client.js';
import { uploadStream, UploadFailure } from '../shared/storage/s3-upload.js';
import { bodyOf } from './storage-contract.js';

const MiB = 1024 * 1024;
let server: Server;
let client: sdk.S3Client;
const seen: string[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    const url = request.url ?? '';
    seen.push(url.includes('x-id=AbortMultipartUpload') ? 'abort' : url.includes('x-id=UploadPart') ? 'part' : request.method!);
    request.resume();
    if (request.method === 'POST' && url.includes('uploads')) {
      request.on('end', () => {
        response.writeHead(200, { 'content-type': 'application/xml' });
        response.end('<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>up-1</UploadId></InitiateMultipartUploadResult>');
      });
    }
    // Anything else: never answered.
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  client = await createS3Client({ endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, accessKey: 'AK', secretKey: 'SK', maxAttempts: 1 });
});
afterAll(async () => {
  client.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('an upload to a store that stops answering', () => {
  it('ends at the abort signal, its cleanup given up after the abort timeout, with a note', async () => {
    const controller = new AbortController();
    const uploading = uploadStream(bodyOf(randomBytes(16 * MiB)), { sdk, client, target: { Bucket: 'b', Key: 'k' }, partSize: 5 * MiB, queueSize: 2, signal: controller.signal, abortTimeoutMs: 200 });
    const settled = uploading.catch((error: unknown) => error);
    for (let waited = 0; !seen.includes('part'); waited += 10) {
      if (waited > 10_000) throw new Error(`no part was sent: ${seen.join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    controller.abort();
    const failure = await settled;
    expect(failure).toBeInstanceOf(UploadFailure);
    expect(failure).toMatchObject({
      source: 'abort',
      abortNote: 'the incomplete multipart upload could not be aborted (no answer in 0.2 s); a bucket lifecycle rule AbortIncompleteMultipartUpload cleans it up',
    });
    expect(seen.filter((request) => request === 'abort')).toHaveLength(2);
  }, 15_000);
});

describe('an upload to a store that drops its connections', () => {
  it('names the dropped connection, not the SDK\'s TimeoutError, as why its multipart upload could not be aborted', async () => {
    // Starts the multipart upload, then closes the connection of every part and every abort
    // unanswered (a store going down): the SDK names such an error TimeoutError, code ECONNRESET.
    const dropping = createServer((request, response) => {
      const url = request.url ?? '';
      request.resume();
      if (request.method === 'POST' && url.includes('uploads')) {
        request.on('end', () => {
          response.writeHead(200, { 'content-type': 'application/xml' });
          response.end('<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>up-2</UploadId></InitiateMultipartUploadResult>');
        });
        return;
      }
      request.socket.destroy();
    });
    await new Promise<void>((resolve) => dropping.listen(0, '127.0.0.1', resolve));
    const dropClient = await createS3Client({ endpoint: `http://127.0.0.1:${(dropping.address() as AddressInfo).port}`, accessKey: 'AK', secretKey: 'SK', maxAttempts: 1 });
    try {
      const failure = await uploadStream(bodyOf(randomBytes(12 * MiB)), { sdk, client: dropClient, target: { Bucket: 'b', Key: 'k' }, partSize: 5 * MiB, queueSize: 1 }).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(UploadFailure);
      expect(failure).toMatchObject({
        source: 's3',
        abortNote: 'the incomplete multipart upload could not be aborted (ECONNRESET); a bucket lifecycle rule AbortIncompleteMultipartUpload cleans it up',
      });
    } finally {
      dropClient.destroy();
      dropping.closeAllConnections();
      await new Promise((resolve) => dropping.close(resolve));
    }
  }, 15_000);
});
