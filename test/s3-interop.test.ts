// S3Location against a real S3-compatible server (s3rver): what the AWS CLI sees of our
// uploads (and we of its), the metadata and digest tag, a download cut mid-way and resumed,
// a server that dies mid-upload, a write whose answer is lost, the error diagnosis on real
// HTTP answers, and an endpoint that is a web server rather than S3.

import { GetObjectTaggingCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DestinationExistsError, StorageError } from '../shared/errors.js';
import { createS3Client } from '../shared/storage/s3-client.js';
import { S3Location } from '../shared/storage/s3.js';
import { S3ArchiveStore } from '../shared/storage/s3-store.js';
import { AWS_CLI, awsCliEnvironment, startAnswerLosingProxy, startCuttingProxy, startS3Server, startUploadAbortingProxy, startWebServer, type CommitRequest, type S3TestServer } from './helpers/s3-server.js';
import { bodyOf, readAll, sha256, writeOptions } from './storage-contract.js';

const MiB = 1024 * 1024;
const run = promisify(execFile);

let server: S3TestServer;
let client: S3Client;

beforeAll(async () => {
  server = await startS3Server();
  client = await createS3Client(server.clientOptions);
});
afterAll(async () => {
  client?.destroy();
  await server?.dispose();
});

function at(key: string, s3 = client, endpoint = server.endpoint): S3Location {
  return new S3Location({ client: s3, bucket: server.bucket, key, endpoint, partSize: 5 * MiB, resumeDelayMs: 1 });
}

function awsCli(args: string[], input?: Buffer) {
  const child = run(AWS_CLI, ['--endpoint-url', server.endpoint, ...args], { env: awsCliEnvironment(), encoding: 'buffer', maxBuffer: 256 * MiB });
  if (input !== undefined) child.child.stdin?.end(input);
  return child;
}

describe.runIf(existsSync(AWS_CLI))('AWS CLI interoperability', () => {
  it('lists and downloads a multipart upload of ours byte for byte', async () => {
    const data = randomBytes(12 * MiB + 333);
    await at('cli/ours.tar.zst').write(bodyOf(data), writeOptions());
    const listing = (await awsCli(['s3', 'ls', `s3://${server.bucket}/cli/`])).stdout.toString();
    expect(listing).toMatch(new RegExp(`\\s${data.length}\\s+ours\\.tar\\.zst`));
    const downloaded = (await awsCli(['s3', 'cp', `s3://${server.bucket}/cli/ours.tar.zst`, '-'])).stdout;
    expect(downloaded.length).toBe(data.length);
    expect(sha256(downloaded)).toBe(sha256(data));
  });

  it('reads what the AWS CLI uploaded', async () => {
    const data = randomBytes(3 * MiB + 1);
    await awsCli(['s3', 'cp', '-', `s3://${server.bucket}/cli/theirs.tar.zst`], data);
    expect(sha256(await readAll(await at('cli/theirs.tar.zst').read()))).toBe(sha256(data));
  });
});

describe('S3 on s3rver', () => {
  it('stores the metadata as x-amz-meta-openclaw-* and the digest as a tag', async () => {
    const location = at('meta/x.tar.zst');
    await location.write(bodyOf(randomBytes(6 * MiB)), { ...writeOptions(), finalMetadata: () => ({ 'manifest-sha256': 'c0ffee'.repeat(10) + 'beef' }) });
    const head = await client.send(new HeadObjectCommand({ Bucket: server.bucket, Key: 'meta/x.tar.zst' }));
    expect(head.Metadata).toEqual({
      'openclaw-tenant': 'acme',
      'openclaw-format-version': '1',
      'openclaw-tool-version': '0.1.0-test',
      'openclaw-created-at': '2026-06-03T10:00:00.000Z',
      // The digest of the secret its tags tell (s3.ts SEAL_METADATA_KEY).
      'openclaw-seal': expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(head.ContentLength).toBe(6 * MiB);
    const tags = await client.send(new GetObjectTaggingCommand({ Bucket: server.bucket, Key: 'meta/x.tar.zst' }));
    expect(tags.TagSet).toEqual([
      { Key: 'openclaw-manifest-sha256', Value: 'c0ffee'.repeat(10) + 'beef' },
      { Key: 'openclaw-stored-bytes', Value: String(6 * MiB) },
      { Key: 'openclaw-seal', Value: expect.stringMatching(/^[\w-]{43}$/) },
    ]);
  });

  it('reads the last bytes of the object it opened, and refuses them once the key was written again', async () => {
    const first = randomBytes(3 * MiB + 17);
    const location = at('tail/one.tar.zst');
    await location.write(bodyOf(first), writeOptions());
    const stream = await location.read();
    expect(sha256((await location.readTail(1032))!)).toBe(sha256(first.subarray(-1032)));
    expect(sha256(await readAll(stream))).toBe(sha256(first));

    const reading = await location.read();
    await at('tail/one.tar.zst').write(bodyOf(randomBytes(3 * MiB)), { ...writeOptions(), overwrite: true });
    await expect(location.readTail(1032)).rejects.toMatchObject({ code: 'CHANGED', message: expect.stringContaining('was written again while it was read') });
    reading.destroy();
  });

  it('resumes a download the network cut, from the byte where it stopped', async () => {
    const data = randomBytes(4 * MiB + 99);
    await at('resume/x.tar.zst').write(bodyOf(data), writeOptions());
    const cutAt = 1234567;
    const proxy = await startCuttingProxy(server.endpoint, cutAt);
    const viaProxy = await createS3Client({ ...server.clientOptions, endpoint: proxy.endpoint });
    try {
      const back = await readAll(await at('resume/x.tar.zst', viaProxy, proxy.endpoint).read());
      expect(back.length).toBe(data.length);
      expect(sha256(back)).toBe(sha256(data));
      const gets = proxy.requests.filter((request) => request.method === 'GET');
      expect(gets).toHaveLength(2);
      expect(gets[0]!.headers.range).toBeUndefined();
      expect(gets[1]!.headers.range).toBe(`bytes=${cutAt}-`);
      expect(gets[1]!.headers['if-match']).toMatch(/^"[0-9a-f]+"$/);
    } finally {
      viaProxy.destroy();
      await proxy.stop();
    }
  });

  it('says the upload was aborted when someone else aborts it mid-way (a prune, a lifecycle rule)', async () => {
    const key = 'aborted-by-another/x.tar.zst';
    const proxy = await startUploadAbortingProxy(server.endpoint);
    const viaProxy = await createS3Client({ ...server.clientOptions, endpoint: proxy.endpoint });
    async function* aborted(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 30; i++) {
        // Once the first parts have landed, the upload is aborted.
        if (i === 16) {
          await delay(300);
          proxy.abortUploads();
        }
        yield randomBytes(MiB);
      }
    }
    try {
      const error = await at(key, viaProxy, proxy.endpoint).write(Readable.from(aborted(), { objectMode: false }), writeOptions()).catch((e: unknown) => e);
      // It said "S3 NoSuchUpload (HTTP 404) for …" (AWS), or that the store "does not answer like S3 (HTTP 500 …)" (moto's answer to a completion).
      expect(error).toBeInstanceOf(StorageError);
      expect((error as Error).message).toBe(
        `the multipart upload of s3://${server.bucket}/${key} was aborted while it was written, by something else (a prune, a lifecycle rule AbortIncompleteMultipartUpload, an abort-multipart-upload): nothing was stored; run the backup again`,
      );
      await expect(at(key).read()).rejects.toMatchObject({ code: 'NOT_FOUND' });
    } finally {
      viaProxy.destroy();
      await proxy.stop();
    }
  });

  it('fails clearly and leaves nothing when the server dies mid-upload', async () => {
    const doomed = await startS3Server();
    const doomedClient = await createS3Client(doomed.clientOptions);
    try {
      let produced = 0;
      async function* slow(): AsyncGenerator<Buffer> {
        for (let i = 0; i < 40; i++) {
          produced += MiB;
          // Let the first parts land, then pull the plug.
          if (produced === 16 * MiB) {
            await delay(300);
            await doomed.stop();
          }
          yield randomBytes(MiB);
        }
      }
      const location = new S3Location({ client: doomedClient, bucket: doomed.bucket, key: 'dies/x.tar.zst', endpoint: doomed.endpoint, partSize: 5 * MiB });
      const error = await location.write(Readable.from(slow(), { objectMode: false }), writeOptions()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StorageError);
      expect(error).toMatchObject({ code: 'UNREACHABLE' });
      expect((error as Error).message).toMatch(new RegExp(`^cannot reach ${doomed.endpoint} for s3://${doomed.bucket}/dies/x\\.tar\\.zst: E[A-Z]+`));
      // The dead server cannot abort the upload either, and the message says so.
      expect((error as Error).message).toMatch(/; the incomplete multipart upload could not be aborted \(ECONNREFUSED\)/);
      expect(produced).toBeLessThan(40 * MiB);

      const revived = await startS3Server({ directory: doomed.directory, bucket: doomed.bucket });
      const revivedClient = await createS3Client(revived.clientOptions);
      try {
        const again = new S3Location({ client: revivedClient, bucket: revived.bucket, key: 'dies/x.tar.zst', endpoint: revived.endpoint });
        await expect(again.read()).rejects.toMatchObject({ code: 'NOT_FOUND' });
      } finally {
        revivedClient.destroy();
        await revived.stop();
      }
    } finally {
      doomedClient.destroy();
      await doomed.dispose();
    }
  });

  it('diagnoses a missing bucket, unknown credentials and an unreachable endpoint on real answers', async () => {
    await expect(
      new S3Location({ client, bucket: 'no-such-bucket', key: 'x', endpoint: server.endpoint }).checkWritable({ overwrite: false }),
    ).rejects.toMatchObject({ code: 'NO_SUCH_BUCKET' });

    const stranger = await createS3Client({ ...server.clientOptions, accessKey: 'AKIAUNKNOWN' });
    try {
      const error = await at('x', stranger).checkWritable({ overwrite: false }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'INVALID_CREDENTIALS' });
      expect((error as Error).message).not.toContain(server.clientOptions.secretKey);
    } finally {
      stranger.destroy();
    }

    const nowhere = await createS3Client({ ...server.clientOptions, endpoint: 'http://127.0.0.1:9', maxAttempts: 1 });
    try {
      await expect(at('x', nowhere, 'http://127.0.0.1:9').read()).rejects.toMatchObject({ code: 'UNREACHABLE' });
    } finally {
      nowhere.destroy();
    }
  });
});

describe('a write whose answer is lost', () => {
  // The request that commits the object reaches the store and is carried out, then the
  // connection drops: the SDK's retry finds the key taken by its own first attempt (412 on
  // AWS with If-None-Match, NoSuchUpload or an error for a completed multipart upload).
  it.each<[CommitRequest, number, boolean]>([
    ['PutObject', MiB, true],
    ['PutObject', MiB, false],
    ['CompleteMultipartUpload', 12 * MiB, true],
    ['CompleteMultipartUpload', 12 * MiB, false],
  ])('succeeds when the lost %s (%i bytes, conditional: %s) did store the archive', async (commit, size, conditionalWrites) => {
    const proxy = await startAnswerLosingProxy(server.endpoint, commit);
    const viaProxy = await createS3Client({ ...server.clientOptions, endpoint: proxy.endpoint });
    const key = `lost/${commit}-${conditionalWrites}.tar.zst`;
    try {
      const data = randomBytes(size);
      const location = new S3Location({ client: viaProxy, bucket: server.bucket, key, endpoint: proxy.endpoint, partSize: 5 * MiB, conditionalWrites });
      const result = await location.write(bodyOf(data), { ...writeOptions(), finalMetadata: () => ({ 'manifest-sha256': 'ab'.repeat(32) }) });
      expect(result.bytes).toBe(size);
      const commits = proxy.requests.filter((request) => (commit === 'PutObject' ? request.method === 'PUT' && !/[?&](partNumber|tagging)=/.test(request.url) : request.method === 'POST' && request.url.includes('uploadId=')));
      expect(commits.length).toBeGreaterThanOrEqual(2);
      expect(sha256(await readAll(await at(key).read()))).toBe(sha256(data));
      const tags = await client.send(new GetObjectTaggingCommand({ Bucket: server.bucket, Key: key }));
      expect(tags.TagSet).toEqual([
        { Key: 'openclaw-manifest-sha256', Value: 'ab'.repeat(32) },
        { Key: 'openclaw-stored-bytes', Value: String(size) },
        { Key: 'openclaw-seal', Value: expect.stringMatching(/^[\w-]{43}$/) },
      ]);
    } finally {
      viaProxy.destroy();
      await proxy.stop();
    }
  });
});

describe('a write whose answer is lost, with credentials that may not look (write-only)', () => {
  // Before, the retry's 412 said only "already exists: pass --overwrite to replace it", though
  // the object there was this backup's own, stored whole (and for a multipart upload, that it
  // was "aborted by something else": nothing stored).
  it.each<[CommitRequest, number]>([
    ['PutObject', MiB],
    ['CompleteMultipartUpload', 12 * MiB],
  ])('says the object found by the lost %s\'s retry may be its own (%i bytes)', async (commit, size) => {
    const proxy = await startAnswerLosingProxy(server.endpoint, commit, { deniesLooks: true });
    const viaProxy = await createS3Client({ ...server.clientOptions, endpoint: proxy.endpoint });
    const key = `lost-unseen/${commit}.tar.zst`;
    try {
      const data = randomBytes(size);
      const location = new S3Location({ client: viaProxy, bucket: server.bucket, key, endpoint: proxy.endpoint, partSize: 5 * MiB, conditionalWrites: true });
      const error = await location.write(bodyOf(data), writeOptions()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DestinationExistsError);
      expect((error as Error).message).toBe(
        `s3://${server.bucket}/${key} already exists, found so by a retry of this backup's own write whose first answer was lost: it may be this backup's archive, stored whole, and these credentials may not look (HEAD denied) to tell: list it with tenants backups (or verify it) with credentials that may read it, or pass --overwrite to write it again`,
      );
      expect(sha256(await readAll(await at(key).read()))).toBe(sha256(data));
    } finally {
      viaProxy.destroy();
      await proxy.stop();
    }
  });

  it('says only "already exists" of an object there before the write (its first attempt refused)', async () => {
    const key = 'lost-unseen/there-before.tar.zst';
    await at(key).write(bodyOf(randomBytes(1000)), writeOptions());
    const proxy = await startAnswerLosingProxy(server.endpoint, 'PutObject', { deniesLooks: true, answersToLose: 0 });
    const viaProxy = await createS3Client({ ...server.clientOptions, endpoint: proxy.endpoint });
    try {
      const location = new S3Location({ client: viaProxy, bucket: server.bucket, key, endpoint: proxy.endpoint, partSize: 5 * MiB, conditionalWrites: true });
      const error = await location.write(bodyOf(randomBytes(MiB)), writeOptions()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DestinationExistsError);
      expect((error as Error).message).toBe(`s3://${server.bucket}/${key} already exists: pass --overwrite to replace it`);
    } finally {
      viaProxy.destroy();
      await proxy.stop();
    }
  });
});

describe('an endpoint that is a web server, not S3', () => {
  // Every request gets 200 and a page: nothing may pass for a stored, found or listed archive.
  it('never reports a backup as stored, nor the key as taken', async () => {
    const web = await startWebServer();
    const viaWeb = await createS3Client({ ...server.clientOptions, endpoint: web.endpoint, maxAttempts: 1 });
    try {
      const location = new S3Location({ client: viaWeb, bucket: server.bucket, key: 'acme/x.tar.zst', endpoint: web.endpoint, partSize: 5 * MiB });
      for (const overwrite of [true, false]) {
        const error = await location.write(bodyOf(randomBytes(1000)), writeOptions({ overwrite })).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(StorageError);
        expect((error as Error).message).toMatch(new RegExp(`^${web.endpoint} does not answer like S3 `));
      }
      await expect(location.checkWritable({ overwrite: false })).rejects.toMatchObject({ code: 'S3', message: expect.stringMatching(/does not answer like S3/) });
      // Its page is not a damaged archive either.
      await expect(location.read()).rejects.toMatchObject({ code: 'S3', message: expect.stringMatching(/does not answer like S3 \(GetObject got 200/) });
      const store = new S3ArchiveStore({ client: viaWeb, bucket: server.bucket, prefix: 'acme/', endpoint: web.endpoint });
      await expect(store.list()).rejects.toMatchObject({ code: 'S3', message: expect.stringMatching(/does not answer like S3/) });
    } finally {
      viaWeb.destroy();
      await web.stop();
    }
  });

  it('never takes a gateway that answers 404 to everything for a store without the archive', async () => {
    const gateway = await startWebServer(404);
    const viaGateway = await createS3Client({ ...server.clientOptions, endpoint: gateway.endpoint, maxAttempts: 1 });
    try {
      const location = new S3Location({ client: viaGateway, bucket: server.bucket, key: 'acme/x.tar.zst', endpoint: gateway.endpoint });
      const notS3 = { code: 'S3', message: expect.stringMatching(new RegExp(`^${gateway.endpoint} does not answer like S3 \\((GetObject|ListObjectsV2) got a 404 without an S3 error code\\)`)) };
      await expect(location.read()).rejects.toMatchObject(notS3);
      await expect(location.checkWritable({ overwrite: false })).rejects.toMatchObject(notS3);
      await expect(new S3ArchiveStore({ client: viaGateway, bucket: server.bucket, prefix: 'acme/', endpoint: gateway.endpoint }).list()).rejects.toMatchObject(notS3);
      // A real store's 404 still means what it says.
      await expect(at('acme/none.tar.zst').read()).rejects.toMatchObject({ code: 'NOT_FOUND' });
    } finally {
      viaGateway.destroy();
      await gateway.stop();
    }
  });
});
