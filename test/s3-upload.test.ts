// uploadStream's own limits and races, against aws-sdk-client-mock (s3-location.test.ts
// covers the requests an S3Location sends through it).

import * as sdk from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { StorageError } from '../shared/errors.js';
import { uploadStream, UploadFailure } from '../shared/storage/s3-upload.js';
import { bodyOf } from './storage-contract.js';

const MiB = 1024 * 1024;
const s3 = mockClient(sdk.S3Client);
const client = new sdk.S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' } });
afterAll(() => {
  s3.restore();
  client.destroy();
});

beforeEach(() => {
  s3.reset();
  s3.on(sdk.CreateMultipartUploadCommand).resolves({ UploadId: 'upload-1' });
  s3.on(sdk.UploadPartCommand).callsFake((input: { PartNumber: number }) => ({ ETag: `"part-${input.PartNumber}"` }));
  s3.on(sdk.CompleteMultipartUploadCommand).resolves({});
  s3.on(sdk.AbortMultipartUploadCommand).resolves({});
});

const target = { Bucket: 'b', Key: 'acme/x.tar.zst' };

describe('uploadStream', () => {
  it('stops with a clear error instead of sending more parts than S3 allows', async () => {
    const body = bodyOf(randomBytes(16 * MiB));
    const error = await uploadStream(body, { sdk, client, target, partSize: 5 * MiB, queueSize: 2, maxParts: 2 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UploadFailure);
    const { error: cause, source } = error as UploadFailure;
    expect(source).toBe('s3');
    expect(cause).toBeInstanceOf(StorageError);
    expect(cause).toMatchObject({ code: 'TOO_LARGE', message: expect.stringMatching(/limit of 2 parts of 5 MiB/) });
    expect(s3.commandCalls(sdk.UploadPartCommand)).toHaveLength(2);
    expect(s3.commandCalls(sdk.CompleteMultipartUploadCommand)).toHaveLength(0);
    expect(s3.commandCalls(sdk.AbortMultipartUploadCommand)).toHaveLength(1);
    expect(body.destroyed).toBe(true);
  });

  it('sends no part once aborted while the multipart upload was being created, and aborts it', async () => {
    const controller = new AbortController();
    s3.on(sdk.CreateMultipartUploadCommand).callsFake(async () => {
      controller.abort();
      await new Promise((resolve) => setTimeout(resolve, 10));
      return { UploadId: 'upload-2' };
    });
    const error = await uploadStream(bodyOf(randomBytes(12 * MiB)), { sdk, client, target, partSize: 5 * MiB, queueSize: 2, signal: controller.signal }).catch(
      (e: unknown) => e,
    );
    expect((error as UploadFailure).source).toBe('abort');
    expect(s3.commandCalls(sdk.UploadPartCommand)).toHaveLength(0);
    expect(s3.commandCalls(sdk.AbortMultipartUploadCommand)[0]!.args[0].input).toMatchObject({ UploadId: 'upload-2' });
  });
});
