// S3Location against aws-sdk-client-mock: the paths s3rver cannot show (multipart aborts,
// conditional writes, ETag-pinned resumes, AWS checksums) and the exact requests sent.

import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { sdkStreamMixin } from '@smithy/util-stream';
import { mockClient } from 'aws-sdk-client-mock';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AbortedError, DestinationExistsError, StorageError } from '../shared/errors.js';
import { createS3Client } from '../shared/storage/s3-client.js';
import { uploadCapacity } from '../shared/storage/s3-upload.js';
import { DEFAULT_PART_SIZE, LARGEST_USEFUL_PART_SIZE, MAX_OBJECT_SIZE, MAX_PARTS, planUpload, S3Location, userMetadata, type S3LocationOptions } from '../shared/storage/s3.js';
import { bodyOf, failingBody, METADATA, readAll, sha256, stallingBody, writeOptions } from './storage-contract.js';

const MiB = 1024 * 1024;
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const s3 = mockClient(S3Client);
let client: S3Client;

beforeAll(async () => {
  client = await createS3Client({ region: 'us-east-1', accessKey: 'AKIAIOSFODNN7EXAMPLE', secretKey: SECRET });
});
afterAll(() => {
  s3.restore();
  client.destroy();
});

function s3Error(name: string, status: number, message = `${name} happened`) {
  return new S3ServiceException({ name, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status }, message });
}

function location(options: Partial<S3LocationOptions> = {}): S3Location {
  return new S3Location({ client, bucket: 'my-bucket', key: 'acme/x.tar.zst', partSize: 5 * MiB, secrets: [SECRET], ...options });
}

/** Bytes of each part as sent: the uploader reuses its part buffers once a part is answered. */
let partBodies = new Map<number, Buffer>();

/** A bucket where nothing exists yet and every upload request succeeds. */
function emptyBucket(): void {
  s3.reset();
  partBodies = new Map();
  s3.on(HeadObjectCommand).rejects(s3Error('NotFound', 404, 'UnknownError'));
  s3.on(GetObjectCommand).rejects(s3Error('NoSuchKey', 404));
  s3.on(PutObjectCommand).resolves({ ETag: '"single"' });
  s3.on(CreateMultipartUploadCommand).resolves({ UploadId: 'upload-1' });
  s3.on(UploadPartCommand).callsFake((input: { PartNumber: number; Body: Uint8Array }) => {
    partBodies.set(input.PartNumber, Buffer.from(input.Body));
    return { ETag: `"part-${input.PartNumber}"` };
  });
  s3.on(CompleteMultipartUploadCommand).resolves({ ETag: '"multi-3"', VersionId: 'v-1' });
  s3.on(AbortMultipartUploadCommand).resolves({});
  s3.on(PutObjectTaggingCommand).resolves({});
  s3.on(DeleteObjectCommand).resolves({});
}

/** A GetObject answer whose body is `data`, optionally breaking after `breakAfter` bytes. */
function getAnswer(data: Buffer, extra: Record<string, unknown> = {}, breakAfter?: number) {
  const body =
    breakAfter === undefined
      ? Readable.from([data], { objectMode: false })
      : new Readable({
          read() {
            this.push(data.subarray(0, breakAfter));
            this.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
          },
        });
  return { Body: sdkStreamMixin(body), ETag: '"v1"', ...extra };
}

describe('planUpload', () => {
  it('uses 8 MiB parts, 2 in flight, when nothing is known: 70 GiB in 9,000 parts, and room for 1.3 TiB as the parts past those grow', () => {
    expect(planUpload()).toEqual({ partSize: 8 * MiB, queueSize: 2 });
    expect(DEFAULT_PART_SIZE * 9_000).toBeGreaterThanOrEqual(70 * 1024 * MiB);
    expect(uploadCapacity(DEFAULT_PART_SIZE)).toBeGreaterThan(1.3 * 1024 * 1024 * MiB);
  });
  it('grows the part size from the expected size, keeping 10% of the parts spare, and fewer in flight', () => {
    const plan = planUpload(500 * 1024 * MiB);
    expect(plan.partSize % MiB).toBe(0);
    expect(Math.ceil((500 * 1024 * MiB) / plan.partSize)).toBeLessThanOrEqual(9_000);
    expect(plan.queueSize).toBe(1);
    expect(planUpload(4 * 1024 * 1024 * MiB).partSize).toBe(467 * MiB);
    expect(planUpload(1_000).partSize).toBe(8 * MiB);
    expect(planUpload(100 * 1024 * MiB)).toEqual({ partSize: 12 * MiB, queueSize: 1 });
  });
  it('asks no larger parts than S3\'s largest object (5 TiB) needs in 10,000, however large the hint', () => {
    expect(LARGEST_USEFUL_PART_SIZE).toBe(525 * MiB);
    expect(LARGEST_USEFUL_PART_SIZE * MAX_PARTS).toBeGreaterThanOrEqual(MAX_OBJECT_SIZE);
    for (const tib of [5, 10, 50, 1024]) expect(planUpload(tib * 1024 * 1024 * MiB)).toEqual({ partSize: 525 * MiB, queueSize: 1 });
  });
  it('never goes below S3 minimum of 5 MiB', () => {
    expect(planUpload(undefined, 1024).partSize).toBe(5 * MiB);
  });
});

describe('S3Location.write (mocked S3)', () => {
  beforeEach(emptyBucket);

  it('uploads in parts with metadata, CRC32 checksums and If-None-Match, then tags the digest', async () => {
    const data = randomBytes(12 * MiB + 5);
    const result = await location().write(bodyOf(data), { ...writeOptions(), finalMetadata: () => ({ 'manifest-sha256': 'ab'.repeat(32) }) });
    expect(result.bytes).toBe(data.length);

    const create = s3.commandCalls(CreateMultipartUploadCommand)[0]!.args[0].input;
    expect(create).toMatchObject({
      Bucket: 'my-bucket',
      Key: 'acme/x.tar.zst',
      ChecksumAlgorithm: 'CRC32',
      Metadata: {
        'openclaw-tenant': 'acme',
        'openclaw-format-version': '1',
        'openclaw-tool-version': '0.1.0-test',
        'openclaw-created-at': '2026-06-03T10:00:00.000Z',
      },
    });
    const parts = s3.commandCalls(UploadPartCommand).map((call) => call.args[0].input);
    expect(parts.map((part) => part.PartNumber).sort()).toEqual([1, 2, 3]);
    expect(parts.every((part) => part.ChecksumAlgorithm === 'CRC32')).toBe(true);
    expect(Buffer.concat([1, 2, 3].map((n) => partBodies.get(n)!)).equals(data)).toBe(true);
    expect(s3.commandCalls(CompleteMultipartUploadCommand)[0]!.args[0].input.MultipartUpload?.Parts).toEqual([
      { PartNumber: 1, ETag: '"part-1"' },
      { PartNumber: 2, ETag: '"part-2"' },
      { PartNumber: 3, ETag: '"part-3"' },
    ]);
    expect(s3.commandCalls(CompleteMultipartUploadCommand)[0]!.args[0].input).toMatchObject({ IfNoneMatch: '*', UploadId: 'upload-1' });
    expect(s3.commandCalls(PutObjectTaggingCommand)[0]!.args[0].input).toEqual({
      Bucket: 'my-bucket',
      Key: 'acme/x.tar.zst',
      VersionId: 'v-1',
      Tagging: {
        TagSet: [
          { Key: 'openclaw-manifest-sha256', Value: 'ab'.repeat(32) },
          { Key: 'openclaw-stored-bytes', Value: String(data.length) },
          { Key: 'openclaw-seal', Value: expect.stringMatching(/^[\w-]{43}$/) },
        ],
      },
    });
    expect(s3.commandCalls(AbortMultipartUploadCommand)).toHaveLength(0);
  });

  it('sends a small archive as one conditional PutObject, then tags the size it stored', async () => {
    await location().write(bodyOf(Buffer.from('small')), writeOptions());
    const put = s3.commandCalls(PutObjectCommand)[0]!.args[0].input;
    expect(put).toMatchObject({ IfNoneMatch: '*', ChecksumAlgorithm: 'CRC32' });
    expect(Buffer.from(put.Body as Uint8Array).toString()).toBe('small');
    expect(s3.commandCalls(CreateMultipartUploadCommand)).toHaveLength(0);
    expect(s3.commandCalls(PutObjectTaggingCommand).map((call) => call.args[0].input.Tagging?.TagSet)).toEqual([[{ Key: 'openclaw-stored-bytes', Value: '5' }, { Key: 'openclaw-seal', Value: expect.stringMatching(/^[\w-]{43}$/) }]]);
  });

  it('sends a body of exactly one part as a PutObject, and one byte more as two parts', async () => {
    await location().write(bodyOf(randomBytes(5 * MiB)), writeOptions());
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(1);
    expect(s3.commandCalls(CreateMultipartUploadCommand)).toHaveLength(0);
    s3.resetHistory();
    const data = randomBytes(5 * MiB + 1);
    await location().write(bodyOf(data), writeOptions());
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
    expect([partBodies.get(1)!.length, partBodies.get(2)!.length]).toEqual([5 * MiB, 1]);
    expect(Buffer.concat([partBodies.get(1)!, partBodies.get(2)!]).equals(data)).toBe(true);
  });

  it('reuses its part buffers: memory stays at the parts in flight plus the one filling', async () => {
    const target = location({ queueSize: 2 });
    const buffers = new Set<ArrayBufferLike>();
    s3.on(UploadPartCommand).callsFake(async (input: { PartNumber: number; Body: Uint8Array }) => {
      buffers.add(input.Body.buffer);
      partBodies.set(input.PartNumber, Buffer.from(input.Body));
      await new Promise((resolve) => setTimeout(resolve, 5));
      return { ETag: `"part-${input.PartNumber}"` };
    });
    const data = randomBytes(40 * MiB + 17);
    await target.write(bodyOf(data), writeOptions());
    expect(partBodies.size).toBe(9);
    expect(Buffer.concat([...partBodies.keys()].sort((a, b) => a - b).map((n) => partBodies.get(n)!)).equals(data)).toBe(true);
    expect(buffers.size).toBeLessThanOrEqual(3);
  });

  it('maps a failed conditional PutObject to DestinationExistsError', async () => {
    s3.on(PutObjectCommand).rejects(s3Error('PreconditionFailed', 412));
    await expect(location().write(bodyOf(Buffer.from('small')), writeOptions())).rejects.toBeInstanceOf(DestinationExistsError);
  });

  it('still refuses when the key a failed conditional PutObject found holds another backup (same size, another creation time)', async () => {
    s3.on(PutObjectCommand).rejects(s3Error('PreconditionFailed', 412));
    s3.on(HeadObjectCommand)
      .rejectsOnce(s3Error('NotFound', 404, 'UnknownError'))
      .resolves({ ETag: '"other"', ContentLength: 5, Metadata: { ...userMetadata(METADATA), 'openclaw-created-at': '2026-06-02T10:00:00.000Z' } });
    await expect(location().write(bodyOf(Buffer.from('small')), writeOptions())).rejects.toBeInstanceOf(DestinationExistsError);
    expect(s3.commandCalls(HeadObjectCommand)).toHaveLength(2);
  });

  it('takes a failed conditional PutObject that finds this very upload at the key (its answer was lost) as done', async () => {
    s3.on(PutObjectCommand).rejects(s3Error('PreconditionFailed', 412));
    s3.on(HeadObjectCommand)
      .rejectsOnce(s3Error('NotFound', 404, 'UnknownError'))
      // The metadata this upload sent, its seal's digest with it.
      .callsFake(() => ({ ETag: '"mine"', ContentLength: 5, Metadata: s3.commandCalls(PutObjectCommand)[0]!.args[0].input.Metadata, VersionId: 'v-9' }));
    await expect(location().write(bodyOf(Buffer.from('small')), { ...writeOptions(), finalMetadata: () => ({ 'manifest-sha256': 'cd'.repeat(32) }) })).resolves.toEqual({ bytes: 5 });
    expect(s3.commandCalls(PutObjectTaggingCommand)[0]!.args[0].input).toMatchObject({ VersionId: 'v-9' });
  });

  it('maps a failed conditional completion to DestinationExistsError and aborts the upload', async () => {
    s3.on(CompleteMultipartUploadCommand).rejects(s3Error('PreconditionFailed', 412));
    await expect(location().write(bodyOf(randomBytes(11 * MiB)), writeOptions())).rejects.toBeInstanceOf(DestinationExistsError);
    expect(s3.commandCalls(AbortMultipartUploadCommand)).toHaveLength(1);
  });

  it('reports a body that fails while the destination is still being checked, and stores nothing', async () => {
    s3.on(HeadObjectCommand).callsFake(async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      throw s3Error('NotFound', 404, 'UnknownError');
    });
    const boom = new Error('tar producer failed early');
    const body = new Readable({ read() {} });
    setTimeout(() => body.destroy(boom), 5);
    await expect(location().write(body, writeOptions())).rejects.toBe(boom);
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
    expect(s3.commandCalls(CreateMultipartUploadCommand)).toHaveLength(0);
  });

  it('refuses before reading the body when HEAD finds an object', async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 10, ETag: '"x"' });
    const body = bodyOf(randomBytes(1000));
    await expect(location().write(body, writeOptions())).rejects.toBeInstanceOf(DestinationExistsError);
    expect(body.destroyed).toBe(true);
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
  });

  it('with overwrite: no HEAD and no If-None-Match', async () => {
    await location().write(bodyOf(Buffer.from('small')), writeOptions({ overwrite: true }));
    expect(s3.commandCalls(HeadObjectCommand)).toHaveLength(0);
    expect(s3.commandCalls(PutObjectCommand)[0]!.args[0].input.IfNoneMatch).toBeUndefined();
  });

  it('on a custom endpoint: no checksum algorithm and no If-None-Match unless asked', async () => {
    await location({ endpoint: 'https://minio.internal:9000' }).write(bodyOf(Buffer.from('a')), writeOptions());
    const put = s3.commandCalls(PutObjectCommand)[0]!.args[0].input;
    expect(put.ChecksumAlgorithm).toBeUndefined();
    expect(put.IfNoneMatch).toBeUndefined();
    s3.resetHistory();
    await location({ endpoint: 'https://minio.internal:9000', conditionalWrites: true }).write(bodyOf(Buffer.from('a')), writeOptions());
    expect(s3.commandCalls(PutObjectCommand)[0]!.args[0].input.IfNoneMatch).toBe('*');
  });

  it('on a custom endpoint that lets it write but not look (write-only credentials): If-None-Match all the same, the only check left', async () => {
    s3.on(HeadObjectCommand).rejects(s3Error('Unknown', 403, 'UnknownError'));
    s3.on(GetObjectCommand).rejects(s3Error('AccessDenied', 403));
    await location({ endpoint: 'https://minio.internal:9000' }).write(bodyOf(Buffer.from('a')), writeOptions());
    expect(s3.commandCalls(PutObjectCommand)[0]!.args[0].input.IfNoneMatch).toBe('*');
    s3.resetHistory();
    await location({ endpoint: 'https://minio.internal:9000' }).write(bodyOf(randomBytes(12 * MiB)), writeOptions());
    expect(s3.commandCalls(CompleteMultipartUploadCommand)[0]!.args[0].input.IfNoneMatch).toBe('*');
    s3.resetHistory();
    await location({ endpoint: 'https://minio.internal:9000' }).write(bodyOf(Buffer.from('a')), writeOptions({ overwrite: true }));
    expect(s3.commandCalls(PutObjectCommand)[0]!.args[0].input.IfNoneMatch).toBeUndefined();
  });

  it('says what to do when such a store refuses If-None-Match (NotImplemented): allow the credentials to look, or --overwrite', async () => {
    s3.on(HeadObjectCommand).rejects(s3Error('Unknown', 403, 'UnknownError'));
    s3.on(GetObjectCommand).rejects(s3Error('AccessDenied', 403));
    s3.on(PutObjectCommand).rejects(s3Error('NotImplemented', 501));
    await expect(location({ endpoint: 'https://minio.internal:9000' }).write(bodyOf(Buffer.from('a')), writeOptions())).rejects.toThrow(
      'the store https://minio.internal:9000 does not support If-None-Match, which keeps a backup from replacing an archive at s3://my-bucket/acme/x.tar.zst, and these credentials may not look whether one is there (HEAD and GET denied): allow them s3:GetObject there, or pass --overwrite to write it unchecked',
    );
  });

  it('aborts the multipart upload when the body fails mid-way, and reports the body error', async () => {
    const boom = new Error('tar producer failed');
    await expect(location().write(failingBody(12 * MiB, boom), writeOptions())).rejects.toBe(boom);
    expect(s3.commandCalls(UploadPartCommand).length).toBeGreaterThanOrEqual(2);
    expect(s3.commandCalls(AbortMultipartUploadCommand)).toHaveLength(1);
    expect(s3.commandCalls(AbortMultipartUploadCommand)[0]!.args[0].input).toEqual({ Bucket: 'my-bucket', Key: 'acme/x.tar.zst', UploadId: 'upload-1' });
    expect(s3.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(0);
  });

  it('stops reading the body at the first S3 error, aborts, and reports that error', async () => {
    s3.on(UploadPartCommand, { PartNumber: 2 }).rejects(s3Error('AccessDenied', 403));
    let produced = 0;
    async function* endless(): AsyncGenerator<Buffer> {
      for (;;) {
        produced += MiB;
        yield randomBytes(MiB);
      }
    }
    const body = Readable.from(endless(), { objectMode: false });
    const error = await location().write(body, writeOptions()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ code: 'ACCESS_DENIED' });
    expect(produced).toBeLessThan(60 * MiB);
    expect(body.destroyed).toBe(true);
    expect(s3.commandCalls(AbortMultipartUploadCommand)).toHaveLength(1);
  });

  it('aborts the multipart upload when the signal aborts', async () => {
    const controller = new AbortController();
    const error = await location()
      .write(stallingBody(12 * MiB, () => setTimeout(() => controller.abort(), 20)), writeOptions({ signal: controller.signal }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AbortedError);
    expect(s3.commandCalls(AbortMultipartUploadCommand)).toHaveLength(1);
    expect(s3.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(0);
  });

  it('tries the abort a second time when the first attempt fails', async () => {
    s3.on(AbortMultipartUploadCommand).rejectsOnce(s3Error('InternalError', 500)).resolves({});
    const boom = new Error('boom');
    await expect(location().write(failingBody(12 * MiB, boom), writeOptions())).rejects.toBe(boom);
    expect(s3.commandCalls(AbortMultipartUploadCommand)).toHaveLength(2);
  });

  it('says so when the incomplete upload cannot be aborted at all', async () => {
    s3.on(UploadPartCommand, { PartNumber: 2 }).rejects(s3Error('InternalError', 500));
    s3.on(AbortMultipartUploadCommand).rejects(s3Error('MethodNotAllowed', 405));
    const error = await location().write(bodyOf(randomBytes(12 * MiB)), writeOptions()).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'S3' });
    expect((error as Error).message).toMatch(/InternalError .*; the incomplete multipart upload could not be aborted \(MethodNotAllowed\)/);
  });

  // The backup role holds no s3:DeleteObject: a complete archive is never removed again, and
  // a failed tagging neither fails the backup nor blocks its retry with DESTINATION_EXISTS.
  it.each([
    ['a new object on AWS, tagging denied', {}, {}, s3Error('AccessDenied', 403)],
    ['an overwritten object on AWS, tagging denied', {}, { overwrite: true }, s3Error('AccessDenied', 403)],
    ['a custom endpoint that has no object tagging', { endpoint: 'http://127.0.0.1:9000' }, {}, s3Error('NotImplemented', 501)],
  ] as const)('keeps %s, untagged, and never deletes', async (_name, where, how, failure) => {
    s3.on(PutObjectTaggingCommand).rejects(failure);
    const result = await location(where).write(bodyOf(randomBytes(11 * MiB)), { ...writeOptions(how), finalMetadata: () => ({ 'manifest-sha256': 'ab' }) });
    expect(result.bytes).toBe(11 * MiB);
    // Said, for the backup's note: an encrypted one is otherwise counted by no prune rule, unnoticed.
    expect(result.unrecorded).toMatch(/^its tags \(manifest digest, size stored\) could not be attached: .*s3:\/\/my-bucket\/acme\/x\.tar\.zst/);
    expect(s3.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(1);
    expect(s3.commandCalls(PutObjectTaggingCommand)).toHaveLength(1);
    expect(s3.commandCalls(DeleteObjectCommand)).toHaveLength(0);
  });

  it('says nothing of its tags when they were attached', async () => {
    const result = await location().write(bodyOf(randomBytes(11 * MiB)), { ...writeOptions(), finalMetadata: () => ({ 'manifest-sha256': 'ab' }) });
    expect(result).toEqual({ bytes: 11 * MiB });
  });

  it('tags the new version with the digest and the size stored, under the write\'s abort signal', async () => {
    const controller = new AbortController();
    await location().write(bodyOf(randomBytes(11 * MiB)), { ...writeOptions({ signal: controller.signal }), finalMetadata: () => ({ 'manifest-sha256': 'ab' }) });
    const [tagging] = s3.commandCalls(PutObjectTaggingCommand);
    expect(tagging!.args[0].input).toMatchObject({ Bucket: 'my-bucket', Key: 'acme/x.tar.zst', Tagging: { TagSet: [{ Key: 'openclaw-manifest-sha256', Value: 'ab' }, { Key: 'openclaw-stored-bytes', Value: String(11 * MiB) }, { Key: 'openclaw-seal', Value: expect.stringMatching(/^[\w-]{43}$/) }] } });
    expect((tagging!.args as unknown[])[1]).toMatchObject({ abortSignal: controller.signal });
  });

  it('refuses final metadata that cannot be a tag before committing', async () => {
    const error = await location()
      .write(bodyOf(randomBytes(11 * MiB)), { ...writeOptions(), finalMetadata: () => ({ 'bad key!': 'x' }) })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'INVALID_METADATA' });
    expect(s3.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(0);
    expect(s3.commandCalls(AbortMultipartUploadCommand)).toHaveLength(1);
  });
});

describe('S3Location.writePiece (mocked S3)', () => {
  beforeEach(emptyBucket);

  it('keeps as few parts in flight as the part size its chain started with allows, not its own plan\'s', async () => {
    // The chain's first piece planned 24 MiB parts from the tenant's size: one in flight. A
    // continuing piece is not given the size, so its own plan is the default's (5 MiB here: 3 in flight).
    let inFlight = 0;
    let most = 0;
    s3.on(UploadPartCommand).callsFake(async (input: { PartNumber: number }) => {
      most = Math.max(most, ++inFlight);
      await new Promise((resolve) => setTimeout(resolve, 20));
      inFlight--;
      return { ETag: `"part-${input.PartNumber}"` };
    });
    const resume = { uploadId: 'upload-1', parts: [{ PartNumber: 1, ETag: '"part-1"' }], bytes: 24 * MiB, partSize: 24 * MiB, tail: Buffer.alloc(0) };
    const piece = location();
    expect(piece.plan.queueSize).toBeGreaterThan(1);
    const result = await piece.writePiece(bodyOf(randomBytes(100 * MiB), MiB), { ...writeOptions(), resume, suspendWhen: () => false });
    expect(result.bytes).toBe(124 * MiB);
    expect(s3.commandCalls(UploadPartCommand)).toHaveLength(5);
    expect(most).toBe(planUpload(undefined, 24 * MiB).queueSize);
    expect(most).toBe(1);
  });
  it('at a custom endpoint where the first piece could not look (write-only credentials), completes in a later piece with If-None-Match all the same', async () => {
    s3.on(HeadObjectCommand).rejects(s3Error('Unknown', 403, 'UnknownError'));
    s3.on(GetObjectCommand).rejects(s3Error('AccessDenied', 403));
    const endpoint = 'https://minio.internal:9000';
    const first = await location({ endpoint }).writePiece(bodyOf(randomBytes(12 * MiB), MiB), { ...writeOptions(), suspendWhen: () => true });
    expect(first.suspended).toBeDefined();
    const last = await location({ endpoint }).writePiece(bodyOf(randomBytes(MiB), MiB), { ...writeOptions(), resume: first.suspended!, suspendWhen: () => false });
    expect(last.suspended).toBeUndefined();
    expect(s3.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(1);
    expect(s3.commandCalls(CompleteMultipartUploadCommand)[0]!.args[0].input.IfNoneMatch).toBe('*');
  });

  it('at a custom endpoint where the first piece looked and found no object, completes in a later piece as a write in one piece does there: without If-None-Match', async () => {
    const endpoint = 'https://minio.internal:9000';
    const first = await location({ endpoint }).writePiece(bodyOf(randomBytes(12 * MiB), MiB), { ...writeOptions(), suspendWhen: () => true });
    expect(first.suspended).toBeDefined();
    await location({ endpoint }).writePiece(bodyOf(randomBytes(MiB), MiB), { ...writeOptions(), resume: first.suspended!, suspendWhen: () => false });
    expect(s3.commandCalls(CompleteMultipartUploadCommand)[0]!.args[0].input.IfNoneMatch).toBeUndefined();
  });
});

describe('S3Location.checkWritable (mocked S3)', () => {
  beforeEach(emptyBucket);

  it('names a missing bucket, which HEAD cannot', async () => {
    s3.on(GetObjectCommand).rejects(s3Error('NoSuchBucket', 404));
    await expect(location().checkWritable({ overwrite: false })).rejects.toMatchObject({ code: 'NO_SUCH_BUCKET' });
  });

  it('names bad credentials behind a bare HEAD 403', async () => {
    s3.on(HeadObjectCommand).rejects(s3Error('Unknown', 403, 'UnknownError'));
    s3.on(GetObjectCommand).rejects(s3Error('InvalidAccessKeyId', 403));
    await expect(location().checkWritable({ overwrite: false })).rejects.toMatchObject({ code: 'INVALID_CREDENTIALS' });
  });

  it('lets write-only credentials through: the conditional write decides', async () => {
    s3.on(HeadObjectCommand).rejects(s3Error('Unknown', 403, 'UnknownError'));
    s3.on(GetObjectCommand).rejects(s3Error('AccessDenied', 403));
    await expect(location().checkWritable({ overwrite: false })).resolves.toBeUndefined();
  });

  it('treats an empty object as existing', async () => {
    s3.on(HeadObjectCommand).rejects(s3Error('Unknown', 403, 'UnknownError'));
    s3.on(GetObjectCommand).rejects(s3Error('InvalidRange', 416));
    await expect(location().checkWritable({ overwrite: false })).rejects.toBeInstanceOf(DestinationExistsError);
  });

  it('reports an unreachable endpoint', async () => {
    s3.on(HeadObjectCommand).rejects(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }));
    const error = await location({ endpoint: 'http://127.0.0.1:9' }).checkWritable({ overwrite: false }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'UNREACHABLE' });
    expect((error as Error).message).toBe('cannot reach http://127.0.0.1:9 for s3://my-bucket/acme/x.tar.zst: ECONNREFUSED (nothing accepts connections at that address and port)');
  });
});

describe('S3Location.read (mocked S3)', () => {
  beforeEach(() => s3.reset());

  it('resumes a broken download with a ranged GET pinned to the ETag', async () => {
    const data = randomBytes(3 * MiB);
    s3.on(GetObjectCommand)
      .resolvesOnce(getAnswer(data, { ContentLength: data.length }, MiB + 7) as never)
      .resolvesOnce(getAnswer(data.subarray(MiB + 7), { ContentRange: `bytes ${MiB + 7}-${data.length - 1}/${data.length}` }) as never);
    const back = await readAll(await location({ resumeDelayMs: 1 }).read());
    expect(sha256(back)).toBe(sha256(data));
    const calls = s3.commandCalls(GetObjectCommand).map((call) => call.args[0].input);
    expect(calls).toHaveLength(2);
    expect(calls[0]!.Range).toBeUndefined();
    expect(calls[1]).toMatchObject({ Range: `bytes=${MiB + 7}-`, IfMatch: '"v1"' });
  });

  it('resumes when the body ends short of its Content-Length', async () => {
    const data = randomBytes(100_000);
    s3.on(GetObjectCommand)
      .resolvesOnce(getAnswer(data.subarray(0, 40_000), { ContentLength: data.length }) as never)
      .resolvesOnce(getAnswer(data.subarray(40_000), { ContentRange: `bytes 40000-99999/100000` }) as never);
    expect(sha256(await readAll(await location({ resumeDelayMs: 1 }).read()))).toBe(sha256(data));
    expect(s3.commandCalls(GetObjectCommand)[1]!.args[0].input.Range).toBe('bytes=40000-');
  });

  it.each([
    ['the object changed in between (412 to the resume, which names the first ETag), rather than splicing', 'PreconditionFailed', 412],
    ['a store ignores If-Match and the key now holds a shorter object (416 to the resume)', 'InvalidRange', 416],
  ] as const)('fails with CHANGED when %s', async (_case, code, status) => {
    const data = randomBytes(100_000);
    s3.on(GetObjectCommand)
      .resolvesOnce(getAnswer(data, { ContentLength: data.length }, 60_000) as never)
      .rejectsOnce(s3Error(code, status));
    const error = await readAll(await location({ resumeDelayMs: 1 }).read()).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'CHANGED', message: 's3://my-bucket/acme/x.tar.zst changed while it was being read' });
  });

  it('fails with CHANGED when a store ignores If-Match and sends another ETag', async () => {
    const data = randomBytes(100_000);
    s3.on(GetObjectCommand)
      .resolvesOnce(getAnswer(data, { ContentLength: data.length }, 10_000) as never)
      .resolvesOnce(getAnswer(data.subarray(10_000), { ETag: '"v2"', ContentRange: 'bytes 10000-99999/100000' }) as never);
    const error = await readAll(await location({ resumeDelayMs: 1 }).read()).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'CHANGED' });
  });

  it('gives up after the bounded number of breaks without progress', async () => {
    const data = randomBytes(100_000);
    s3.on(GetObjectCommand)
      .resolvesOnce(getAnswer(data, { ContentLength: data.length }, 10_000) as never)
      .callsFake(() => getAnswer(data.subarray(10_000), { ContentRange: 'bytes 10000-99999/100000' }, 0));
    const error = await readAll(await location({ resumeDelayMs: 1, maxResumes: 3 }).read()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ code: 'READ_FAILED' });
    expect((error as Error).message).toMatch(/kept breaking at byte 10000: read ECONNRESET/);
    expect(s3.commandCalls(GetObjectCommand)).toHaveLength(4);
  });

  it('counts a refused reconnection as one more break, so a store that restarts within the resumes does not fail the read', async () => {
    const data = randomBytes(100_000);
    const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9000'), { code: 'ECONNREFUSED' });
    s3.on(GetObjectCommand)
      .resolvesOnce(getAnswer(data, { ContentLength: data.length }, 10_000) as never)
      .rejectsOnce(refused())
      .rejectsOnce(refused())
      .resolvesOnce(getAnswer(data.subarray(10_000), { ContentRange: 'bytes 10000-99999/100000' }) as never);
    expect(sha256(await readAll(await location({ resumeDelayMs: 1 }).read()))).toBe(sha256(data));
    expect(s3.commandCalls(GetObjectCommand).slice(1).map((call) => call.args[0].input.Range)).toEqual(['bytes=10000-', 'bytes=10000-', 'bytes=10000-']);
  });

  it('fails as unreachable, in one line, once the reconnections are refused as often as breaks may repeat', async () => {
    const data = randomBytes(100_000);
    s3.on(GetObjectCommand)
      .resolvesOnce(getAnswer(data, { ContentLength: data.length }, 10_000) as never)
      .rejects(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9000'), { code: 'ECONNREFUSED' }));
    const error = await readAll(await location({ resumeDelayMs: 1, maxResumes: 3, endpoint: 'http://127.0.0.1:9000' }).read()).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'UNREACHABLE', message: 'cannot reach http://127.0.0.1:9000 for s3://my-bucket/acme/x.tar.zst: ECONNREFUSED (nothing accepts connections at that address and port)' });
    // The break, then a refused reconnection for each further break allowed.
    expect(s3.commandCalls(GetObjectCommand)).toHaveLength(1 + 3);
  });

  it('reports a missing object as NOT_FOUND before any stream exists', async () => {
    s3.on(GetObjectCommand).rejects(s3Error('NoSuchKey', 404));
    await expect(location().read()).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'no archive at s3://my-bucket/acme/x.tar.zst' });
  });
});

describe('S3Location.recordedDigest', () => {
  const digest = (c: string) => c.repeat(64);
  const tagged = (value: string) => ({ TagSet: [{ Key: 'openclaw-tenant', Value: 'acme' }, { Key: 'openclaw-manifest-sha256', Value: value }] });

  it('is the manifest digest tag of the version read; without a version, a differing one counts only while the ETag is the one read', async () => {
    s3.reset();
    s3.on(GetObjectCommand).resolves(getAnswer(Buffer.from('x'), { VersionId: 'ver-1' }));
    s3.on(GetObjectTaggingCommand).resolves(tagged(digest('b')));
    const versioned = location();
    (await versioned.read()).destroy();
    expect(await versioned.recordedDigest({ expected: digest('a') })).toBe(digest('b'));
    expect(s3.commandCalls(GetObjectTaggingCommand)[0]!.args[0].input).toEqual({ Bucket: 'my-bucket', Key: 'acme/x.tar.zst', VersionId: 'ver-1' });
    expect(s3.commandCalls(HeadObjectCommand)).toHaveLength(0);

    s3.reset();
    s3.on(GetObjectCommand).resolves(getAnswer(Buffer.from('x')));
    s3.on(GetObjectTaggingCommand).resolves(tagged(digest('b')));
    s3.on(HeadObjectCommand).resolves({ ETag: '"v1"' });
    const plain = location();
    (await plain.read()).destroy();
    expect(await plain.recordedDigest({ expected: digest('b') })).toBe(digest('b'));
    expect(s3.commandCalls(HeadObjectCommand)).toHaveLength(0);
    expect(await plain.recordedDigest({ expected: digest('a') })).toBe(digest('b'));
    s3.on(HeadObjectCommand).resolves({ ETag: '"v2"' });
    await expect(plain.recordedDigest({ expected: digest('a') })).rejects.toMatchObject({ code: 'CHANGED', message: 's3://my-bucket/acme/x.tar.zst was written again while it was read (its ETag is no longer the one read): read it again' });
  });

  it('is undefined, nothing to compare, where the tags cannot be read or hold no digest', async () => {
    for (const answer of [s3Error('AccessDenied', 403), s3Error('NotImplemented', 501), s3Error('NoSuchKey', 404), s3Error('InternalError', 500)]) {
      s3.reset();
      s3.on(GetObjectCommand).resolves(getAnswer(Buffer.from('x')));
      s3.on(GetObjectTaggingCommand).rejects(answer);
      const at = location();
      (await at.read()).destroy();
      expect(await at.recordedDigest({ expected: digest('a') })).toBeUndefined();
    }
    s3.reset();
    s3.on(GetObjectCommand).resolves(getAnswer(Buffer.from('x')));
    s3.on(GetObjectTaggingCommand).resolves(tagged('not a digest'));
    const at = location();
    expect(await at.recordedDigest()).toBeUndefined();
    (await at.read()).destroy();
    expect(await at.recordedDigest({ expected: digest('a') })).toBeUndefined();
  });
});
