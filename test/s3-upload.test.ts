// uploadStream's own limits and races, against aws-sdk-client-mock (s3-location.test.ts
// covers the requests an S3Location sends through it).

import * as sdk from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { StorageError } from '../shared/errors.js';
import { largestGrownPart, MAX_PART_SIZE, MAX_PARTS, partSizeAt, uploadCapacity, uploadStream, UploadFailure } from '../shared/storage/s3-upload.js';
import { constants as bufferConstants } from 'node:buffer';
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
    // Two parts of a 5 MiB plan hold 5 + 10 MiB (the last grown: partSizeAt).
    const body = bodyOf(randomBytes(16 * MiB));
    const error = await uploadStream(body, { sdk, client, target, partSize: 5 * MiB, queueSize: 2, maxParts: 2 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UploadFailure);
    const { error: cause, source } = error as UploadFailure;
    expect(source).toBe('s3');
    expect(cause).toBeInstanceOf(StorageError);
    expect(cause).toMatchObject({ code: 'TOO_LARGE', message: expect.stringMatching(/limit of 2 parts \(15\.0 MiB from parts of 5\.0 MiB\)/) });
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

describe('an archive larger than its plan', () => {
  const partLengths = () => s3.commandCalls(sdk.UploadPartCommand).map((call) => (call.args[0].input as { Body: Buffer }).Body.length / MiB);

  it('keeps the planned part size for 9,000 parts, then doubles it every 100, up to the largest part S3 takes', () => {
    const plan = 8 * MiB;
    expect(partSizeAt(1, plan)).toBe(plan);
    expect(partSizeAt(9_000, plan)).toBe(plan);
    expect(partSizeAt(9_001, plan)).toBe(16 * MiB);
    expect(partSizeAt(9_100, plan)).toBe(16 * MiB);
    expect(partSizeAt(9_101, plan)).toBe(32 * MiB);
    expect(partSizeAt(MAX_PARTS, plan)).toBe(MAX_PART_SIZE);
    // What 10,000 parts hold: 78 GiB of fixed 8 MiB parts before; an unmeasured tenant of 80 GiB or
    // one that grew from 1 GiB to 100 GiB while read now fits, and so do 5 MiB parts past 1 TiB.
    expect(uploadCapacity(plan)).toBeGreaterThan(1.3 * 1024 ** 4);
    expect(uploadCapacity(5 * MiB)).toBeGreaterThan(1024 ** 4);
    let parts = 0;
    for (let bytes = 0; bytes < 100 * 1024 ** 3; ) bytes += partSizeAt(++parts, plan);
    expect(parts).toBeLessThan(MAX_PARTS);
  });

  it('sends the parts past the plan grown, in order, every byte once, and completes', async () => {
    // maxParts 10: 9 planned parts of 5 MiB (45 MiB), where a fixed part size held 50 MiB at most.
    const data = randomBytes(54 * MiB);
    // Copied when sent: the upload reuses its part buffers.
    const sent = new Map<number, Buffer>();
    s3.on(sdk.UploadPartCommand).callsFake((input: { PartNumber: number; Body: Buffer }) => {
      sent.set(input.PartNumber, Buffer.from(input.Body));
      return { ETag: `"part-${input.PartNumber}"` };
    });
    const result = await uploadStream(bodyOf(data), { sdk, client, target, partSize: 5 * MiB, queueSize: 2, maxParts: 10 });
    expect(result).toEqual({ bytes: 54 * MiB });
    expect(partLengths()).toEqual([5, 5, 5, 5, 5, 5, 5, 5, 5, 9]);
    expect(Buffer.concat([...sent.keys()].sort((a, b) => a - b).map((number) => sent.get(number)!)).equals(data)).toBe(true);
    const completed = s3.commandCalls(sdk.CompleteMultipartUploadCommand)[0]!.args[0].input as sdk.CompleteMultipartUploadCommandInput;
    expect(completed.MultipartUpload!.Parts!.map((part) => part.PartNumber)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('grows the parts no larger than a quarter of the memory, two being held at once: a Lambda of 2 GiB keeps to 512 MiB parts', () => {
    const GiB = 1024 * MiB;
    expect(largestGrownPart(2 * GiB)).toBe(512 * MiB);
    expect(largestGrownPart(10 * GiB)).toBe(2560 * MiB);
    // Never past S3's largest part, nor Node's largest buffer (4 GiB on Node 20, where a 5 GiB part threw a RangeError).
    expect(largestGrownPart(64 * GiB)).toBe(Math.min(MAX_PART_SIZE, bufferConstants.MAX_LENGTH));
    expect(largestGrownPart(8 * MiB)).toBe(5 * MiB);
    expect(partSizeAt(MAX_PARTS, 8 * MiB, MAX_PARTS, 512 * MiB)).toBe(512 * MiB);
    expect(partSizeAt(9_001, 8 * MiB, MAX_PARTS, 5 * MiB)).toBe(8 * MiB);
    expect(uploadCapacity(8 * MiB, MAX_PARTS, 512 * MiB)).toBeGreaterThan(368 * GiB);
  });

  it('keeps to the largest part memory allows, and past the parts limit says that more memory lets the parts grow', async () => {
    // Memory for parts of 5 MiB at most: no part grows, where part 10 was 10 MiB.
    const limited = { sdk, client, target, partSize: 5 * MiB, queueSize: 2, maxParts: 10, largestPart: 5 * MiB };
    const data = randomBytes(50 * MiB);
    const sent = new Map<number, Buffer>();
    s3.on(sdk.UploadPartCommand).callsFake((input: { PartNumber: number; Body: Buffer }) => {
      sent.set(input.PartNumber, Buffer.from(input.Body));
      return { ETag: `"part-${input.PartNumber}"` };
    });
    expect(await uploadStream(bodyOf(data), limited)).toEqual({ bytes: 50 * MiB });
    expect(partLengths()).toEqual([5, 5, 5, 5, 5, 5, 5, 5, 5, 5]);
    expect(Buffer.concat([...sent.keys()].sort((a, b) => a - b).map((number) => sent.get(number)!)).equals(data)).toBe(true);

    s3.resetHistory();
    const error = await uploadStream(bodyOf(randomBytes(50 * MiB + 1)), limited).catch((e: unknown) => e);
    expect((error as UploadFailure).error).toMatchObject({
      code: 'TOO_LARGE',
      message: expect.stringMatching(/limit of 10 parts \(50\.0 MiB from parts of 5\.0 MiB, grown to no more than 5\.0 MiB, a quarter of the memory: more memory \(the functions' memorySizeMiB\) lets them grow further\)/),
    });
    expect(partLengths()).toEqual([5, 5, 5, 5, 5, 5, 5, 5, 5, 5]);
  });

  it('grows the parts of a resumed upload by their number, as one upload would', async () => {
    const resume = { uploadId: 'upload-9', parts: Array.from({ length: 9 }, (_, i) => ({ PartNumber: i + 1, ETag: `"p${i + 1}"` })), bytes: 45 * MiB, partSize: 5 * MiB, tail: Buffer.alloc(0) };
    const result = await uploadStream(bodyOf(randomBytes(10 * MiB)), { sdk, client, target, partSize: 5 * MiB, queueSize: 2, maxParts: 10, resume, suspendWhen: () => false });
    expect(result).toEqual({ bytes: 55 * MiB });
    expect(partLengths()).toEqual([10]);
    expect(s3.commandCalls(sdk.UploadPartCommand)[0]!.args[0].input).toMatchObject({ PartNumber: 10, UploadId: 'upload-9' });
  });
});

describe('an abort while the upload is being committed', () => {
  it('lets CompleteMultipartUpload finish: the archive is stored whole, and the upload says so', async () => {
    const controller = new AbortController();
    s3.on(sdk.CompleteMultipartUploadCommand).callsFake(async () => {
      // The deadline fires while S3 puts the parts together.
      controller.abort();
      await new Promise((resolve) => setTimeout(resolve, 10));
      return { VersionId: 'v-1' };
    });
    const result = await uploadStream(bodyOf(randomBytes(12 * MiB)), { sdk, client, target, partSize: 5 * MiB, queueSize: 2, signal: controller.signal });
    expect(result).toEqual({ bytes: 12 * MiB, versionId: 'v-1' });
    const [complete] = s3.commandCalls(sdk.CompleteMultipartUploadCommand);
    // What the SDK's send was given besides the command (aws-sdk-client-mock types only the command).
    const options = (complete!.args as unknown[])[1] as { abortSignal?: AbortSignal } | undefined;
    expect(options?.abortSignal?.aborted ?? false).toBe(false);
    expect(s3.commandCalls(sdk.AbortMultipartUploadCommand)).toHaveLength(0);
  });

  it('still fails, and aborts the upload, when the commit fails after the abort', async () => {
    const controller = new AbortController();
    s3.on(sdk.CompleteMultipartUploadCommand).callsFake(async () => {
      controller.abort();
      throw Object.assign(new Error('We encountered an internal error. Please try again.'), { name: 'InternalError', $metadata: { httpStatusCode: 500 } });
    });
    const error = await uploadStream(bodyOf(randomBytes(12 * MiB)), { sdk, client, target, partSize: 5 * MiB, queueSize: 2, signal: controller.signal }).catch((e: unknown) => e);
    expect((error as UploadFailure).source).toBe('abort');
    expect(s3.commandCalls(sdk.AbortMultipartUploadCommand)).toHaveLength(1);
  });
});

describe('an upload in pieces', () => {
  const partSize = 6 * MiB;
  const bodyBytes = (call: { args: [{ input: unknown }] }) => (call.args[0].input as { Body: Buffer }).Body;

  it('suspends with its checkpoint instead of completing, and a resumed one goes on with the next part number', async () => {
    const data = randomBytes(20 * MiB);
    // Piece 1: 8 MiB, one full part, then 2 MiB that stay behind (under S3's 5 MiB minimum).
    const first = await uploadStream(bodyOf(data.subarray(0, 8 * MiB)), { sdk, client, target, partSize, queueSize: 2, suspendWhen: () => true });
    expect(first.suspended).toMatchObject({ uploadId: 'upload-1', bytes: 8 * MiB, partSize, parts: [{ PartNumber: 1, ETag: '"part-1"' }] });
    expect(first.suspended!.tail.equals(data.subarray(6 * MiB, 8 * MiB))).toBe(true);
    expect(s3.commandCalls(sdk.CompleteMultipartUploadCommand)).toHaveLength(0);
    expect(s3.commandCalls(sdk.AbortMultipartUploadCommand)).toHaveLength(0);

    // Piece 2: the tail and 3.5 MiB more pass a part's minimum: sent as a (shorter) part at the suspension.
    const second = await uploadStream(bodyOf(data.subarray(8 * MiB, 11.5 * MiB)), { sdk, client, target, partSize, queueSize: 2, resume: first.suspended!, suspendWhen: () => true });
    expect(second.suspended).toMatchObject({ uploadId: 'upload-1', bytes: 11.5 * MiB, parts: [{ PartNumber: 1 }, { PartNumber: 2 }] });
    expect(second.suspended!.tail).toHaveLength(0);

    // Piece 3 completes: no new multipart upload, every part in order, every byte once.
    const last = await uploadStream(bodyOf(data.subarray(11.5 * MiB)), { sdk, client, target, partSize, queueSize: 2, resume: second.suspended!, suspendWhen: () => false });
    expect(last).toEqual({ bytes: 20 * MiB });
    expect(s3.commandCalls(sdk.CreateMultipartUploadCommand)).toHaveLength(1);
    const parts = s3.commandCalls(sdk.UploadPartCommand).map((call) => [(call.args[0].input as { PartNumber: number }).PartNumber, bodyBytes(call)] as const);
    expect(parts.map(([number]) => number)).toEqual([1, 2, 3, 4]);
    expect(Buffer.concat(parts.map(([, bytes]) => bytes)).equals(data)).toBe(true);
    const completed = s3.commandCalls(sdk.CompleteMultipartUploadCommand)[0]!.args[0].input as sdk.CompleteMultipartUploadCommandInput;
    expect(completed.MultipartUpload!.Parts!.map((part) => part.PartNumber)).toEqual([1, 2, 3, 4]);
  });

  it('keeps a small piece whole in its checkpoint, without a multipart upload, and ends it as one PutObject', async () => {
    s3.on(sdk.PutObjectCommand).resolves({ ETag: '"single"' });
    const data = randomBytes(3 * MiB);
    const first = await uploadStream(bodyOf(data.subarray(0, MiB)), { sdk, client, target, partSize, queueSize: 2, suspendWhen: () => true });
    expect(first.suspended).toMatchObject({ bytes: MiB, parts: [] });
    expect(first.suspended!.uploadId).toBeUndefined();
    await uploadStream(bodyOf(data.subarray(MiB)), { sdk, client, target, partSize, queueSize: 2, resume: first.suspended!, suspendWhen: () => false });
    expect(s3.commandCalls(sdk.CreateMultipartUploadCommand)).toHaveLength(0);
    expect((s3.commandCalls(sdk.PutObjectCommand)[0]!.args[0].input as { Body: Buffer }).Body.equals(data)).toBe(true);
  });

  it('aborts the whole upload when a resumed piece fails', async () => {
    s3.on(sdk.UploadPartCommand).rejects(new Error('boom'));
    const resume = { uploadId: 'upload-9', parts: [{ PartNumber: 1, ETag: '"p1"' }], bytes: 6 * MiB, partSize, tail: Buffer.alloc(0) };
    const error = await uploadStream(bodyOf(randomBytes(13 * MiB)), { sdk, client, target, partSize, queueSize: 2, resume, suspendWhen: () => false }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UploadFailure);
    expect(s3.commandCalls(sdk.AbortMultipartUploadCommand)[0]!.args[0].input).toMatchObject({ UploadId: 'upload-9' });
  });
});
