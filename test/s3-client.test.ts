// Which credentials and settings the S3 client gets from the flags: static keys, a named
// profile (through the shared config files), or the default chain; custom endpoints get
// path-style requests and only required checksums.

import { PutObjectCommand, UploadPartCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createServer, type Socket } from 'node:net';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { CONNECTION_TIMEOUT_MS, createS3Client, s3ClientConfig, SOCKET_TIMEOUT_MS } from '../shared/storage/s3-client.js';

let dir: string;
const clients: S3Client[] = [];
async function client(options: Parameters<typeof createS3Client>[0]): Promise<S3Client> {
  const created = await createS3Client(options);
  clients.push(created);
  return created;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'openclaw-awsconfig-'));
  await writeFile(
    join(dir, 'config'),
    ['[profile production]', 'region = eu-west-3', '', '[default]', 'region = us-west-2', ''].join('\n'),
  );
  await writeFile(
    join(dir, 'credentials'),
    [
      '[production]',
      'aws_access_key_id = AKIAPRODUCTIONEXAMPLE',
      'aws_secret_access_key = production-secret',
      '',
      '[default]',
      'aws_access_key_id = AKIADEFAULTFILEEXAMPLE',
      'aws_secret_access_key = default-file-secret',
      '',
    ].join('\n'),
  );
});
afterEach(() => vi.unstubAllEnvs());
afterAll(async () => {
  for (const created of clients) created.destroy();
  await rm(dir, { recursive: true, force: true });
});

function isolateFromMachine(): void {
  vi.stubEnv('AWS_CONFIG_FILE', join(dir, 'config'));
  vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', join(dir, 'credentials'));
  for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_REGION', 'AWS_DEFAULT_REGION']) {
    vi.stubEnv(name, undefined);
  }
}

describe('createS3Client', () => {
  it('uses static keys when given, path-style and required-only checksums for a custom endpoint', async () => {
    isolateFromMachine();
    const s3 = await client({ endpoint: 'https://minio.internal:9000', accessKey: 'AK', secretKey: 'SK' });
    expect(await s3.config.credentials()).toMatchObject({ accessKeyId: 'AK', secretAccessKey: 'SK' });
    expect(s3.config.forcePathStyle).toBe(true);
    expect(await s3.config.requestChecksumCalculation()).toBe('WHEN_REQUIRED');
    expect(await s3.config.responseChecksumValidation()).toBe('WHEN_REQUIRED');
    expect(await s3.config.region()).toBe('us-east-1');
    const endpoint = await s3.config.endpoint?.();
    expect(endpoint).toMatchObject({ hostname: 'minio.internal', port: 9000, protocol: 'https:' });
  });

  it('uses --region over the default for custom endpoints', async () => {
    isolateFromMachine();
    const s3 = await client({ endpoint: 'http://127.0.0.1:9000', accessKey: 'AK', secretKey: 'SK', region: 'garage' });
    expect(await s3.config.region()).toBe('garage');
  });

  it('reads credentials and region from the named profile', async () => {
    isolateFromMachine();
    const s3 = await client({ awsProfile: 'production' });
    expect(await s3.config.credentials()).toMatchObject({ accessKeyId: 'AKIAPRODUCTIONEXAMPLE', secretAccessKey: 'production-secret' });
    expect(await s3.config.region()).toBe('eu-west-3');
  });

  it('lets --region win over the profile region', async () => {
    isolateFromMachine();
    const s3 = await client({ awsProfile: 'production', region: 'ap-south-1' });
    expect(await s3.config.region()).toBe('ap-south-1');
  });

  it('fails clearly for an unknown profile', async () => {
    isolateFromMachine();
    const s3 = await client({ awsProfile: 'nope', region: 'us-east-1' });
    await expect(s3.config.credentials()).rejects.toThrow(/nope/);
  });

  it('falls back to the default chain: environment first', async () => {
    isolateFromMachine();
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIAENVEXAMPLE');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'env-secret');
    vi.stubEnv('AWS_REGION', 'ca-central-1');
    const s3 = await client({});
    expect(await s3.config.credentials()).toMatchObject({ accessKeyId: 'AKIAENVEXAMPLE', secretAccessKey: 'env-secret' });
    expect(await s3.config.region()).toBe('ca-central-1');
  });

  it("takes the environment's keys over AWS_PROFILE, as the AWS CLI does (only --aws-profile beats them), without the SDK's warning", async () => {
    isolateFromMachine();
    vi.stubEnv('AWS_PROFILE', 'production');
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIAENVEXAMPLE');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'env-secret');
    vi.stubEnv('AWS_SESSION_TOKEN', 'env-token');
    const warn = vi.spyOn(console, 'warn');
    const s3 = await client({});
    expect(await s3.config.credentials()).toMatchObject({ accessKeyId: 'AKIAENVEXAMPLE', secretAccessKey: 'env-secret', sessionToken: 'env-token' });
    // The region still comes from the profile AWS_PROFILE names.
    expect(await s3.config.region()).toBe('eu-west-3');
    expect(warn).not.toHaveBeenCalled();
    const named = await client({ awsProfile: 'production' });
    expect(await named.config.credentials()).toMatchObject({ accessKeyId: 'AKIAPRODUCTIONEXAMPLE' });
  });

  it('falls back to the default chain: the default profile of the shared files', async () => {
    isolateFromMachine();
    const s3 = await client({});
    expect(await s3.config.credentials()).toMatchObject({ accessKeyId: 'AKIADEFAULTFILEEXAMPLE' });
  });

  it('keeps AWS defaults without an endpoint: virtual-hosted style and CRC checksums', async () => {
    isolateFromMachine();
    const s3 = await client({ region: 'eu-west-1', accessKey: 'AK', secretKey: 'SK' });
    expect(s3.config.forcePathStyle).toBeFalsy();
    expect(await s3.config.requestChecksumCalculation()).toBe('WHEN_SUPPORTED');
    expect(await s3.config.maxAttempts()).toBe(5);
  });
});

describe('payload signing', () => {
  interface SentRequest {
    readonly protocol: string;
    readonly headers: Record<string, string>;
  }

  /** A client whose requests are answered here, with every request's headers kept. */
  async function capturingClient(options: Parameters<typeof createS3Client>[0]): Promise<{ s3: S3Client; sent: SentRequest[] }> {
    const s3 = await client(options);
    const sent: SentRequest[] = [];
    s3.config.requestHandler = {
      handle: async (request: SentRequest) => {
        sent.push({ protocol: request.protocol, headers: { ...request.headers } });
        return { response: { statusCode: 200, headers: { etag: '"e"' }, body: Readable.from([]) } };
      },
    } as unknown as typeof s3.config.requestHandler;
    return { s3, sent };
  }

  const body = Buffer.from('archive bytes');
  const sha256 = createHash('sha256').update(body).digest('hex');

  it('does not hash an AWS upload twice: CRC32 checked by S3 over HTTPS, payload unsigned', async () => {
    isolateFromMachine();
    const { s3, sent } = await capturingClient({ region: 'eu-west-1', accessKey: 'AK', secretKey: 'SK' });
    await s3.send(new UploadPartCommand({ Bucket: 'b', Key: 'k', UploadId: 'u', PartNumber: 1, Body: body, ChecksumAlgorithm: 'CRC32' }));
    const headers = sent[0]!.headers;
    expect(sent[0]!.protocol).toBe('https:');
    expect(headers['x-amz-checksum-crc32']).toBeDefined();
    expect(headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    expect(headers.authorization).toMatch(/SignedHeaders=[^,]*x-amz-content-sha256/);
  });

  it('signs the payload over plain HTTP, and when no checksum protects the body', async () => {
    isolateFromMachine();
    const plain = await capturingClient({ endpoint: 'http://127.0.0.1:9000', accessKey: 'AK', secretKey: 'SK' });
    await plain.s3.send(new PutObjectCommand({ Bucket: 'b', Key: 'k', Body: body, ChecksumAlgorithm: 'CRC32' }));
    expect(plain.sent[0]!.headers['x-amz-content-sha256']).toBe(sha256);
    const unchecked = await capturingClient({ endpoint: 'https://minio.internal:9000', accessKey: 'AK', secretKey: 'SK' });
    await unchecked.s3.send(new PutObjectCommand({ Bucket: 'b', Key: 'k', Body: body }));
    expect(Object.keys(unchecked.sent[0]!.headers).some((name) => name.startsWith('x-amz-checksum-'))).toBe(false);
    expect(unchecked.sent[0]!.headers['x-amz-content-sha256']).toBe(sha256);
  });
});

describe('a bucket in another region than the client\'s', () => {
  /** A client whose requests AWS answers for a bucket in eu-west-1: 301 PermanentRedirect, naming it, to requests signed for another region. */
  async function bucketInIreland(options: Parameters<typeof createS3Client>[0]): Promise<{ s3: S3Client; sent: string[] }> {
    const s3 = await client(options);
    const sent: string[] = [];
    s3.config.requestHandler = {
      handle: async (request: { hostname: string; method: string; headers: Record<string, string> }) => {
        const scope = /Credential=[^/]+\/\d+\/([^/]+)\//.exec(request.headers.authorization ?? '')?.[1];
        sent.push(`${request.method} ${request.hostname} ${scope}`);
        if (scope === 'eu-west-1') return { response: { statusCode: 200, headers: { etag: '"e"' }, body: Readable.from([]) } };
        const xml = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint.</Message><Endpoint>backups.s3.eu-west-1.amazonaws.com</Endpoint><Bucket>backups</Bucket></Error>';
        return { response: { statusCode: 301, headers: { 'x-amz-bucket-region': 'eu-west-1', 'content-type': 'application/xml' }, body: Readable.from(request.method === 'HEAD' ? [] : [Buffer.from(xml)]) } };
      },
    } as unknown as typeof s3.config.requestHandler;
    return { s3, sent };
  }

  it('follows AWS\'s redirect to the bucket\'s region, as the aws CLI does (the gateway\'s functions cannot be given a --region for the bucket)', async () => {
    isolateFromMachine();
    const { s3, sent } = await bucketInIreland({ region: 'us-east-1', accessKey: 'AK', secretKey: 'SK' });
    await s3.send(new HeadObjectCommand({ Bucket: 'backups', Key: 'k' }));
    await s3.send(new PutObjectCommand({ Bucket: 'backups', Key: 'k', Body: Buffer.from('archive bytes') }));
    expect(sent).toEqual([
      'HEAD backups.s3.us-east-1.amazonaws.com us-east-1',
      'HEAD backups.s3.eu-west-1.amazonaws.com eu-west-1',
      'PUT backups.s3.us-east-1.amazonaws.com us-east-1',
      'PUT backups.s3.eu-west-1.amazonaws.com eu-west-1',
    ]);
  });

  it('does not at a custom endpoint: the redirect names an AWS region, not the store\'s', async () => {
    isolateFromMachine();
    const { s3 } = await bucketInIreland({ endpoint: 'https://minio.internal:9000', accessKey: 'AK', secretKey: 'SK' });
    await expect(s3.send(new HeadObjectCommand({ Bucket: 'backups', Key: 'k' }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 301 } });
  });
});

describe('timeouts', () => {
  it('bounds connecting and every silence on the socket', async () => {
    expect((await s3ClientConfig({})).requestHandler).toEqual({ connectionTimeout: CONNECTION_TIMEOUT_MS, socketTimeout: SOCKET_TIMEOUT_MS });
  });

  it('fails a request to a store that accepts the connection and never answers', async () => {
    const sockets = new Set<Socket>();
    const blackHole = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
    const { port } = blackHole.address() as { port: number };
    try {
      const s3 = await client({ endpoint: `http://127.0.0.1:${port}`, accessKey: 'AK', secretKey: 'SK', maxAttempts: 1, socketTimeoutMs: 200 });
      const error = await s3.send(new HeadObjectCommand({ Bucket: 'b', Key: 'k' })).catch((e: unknown) => e);
      expect(error).toMatchObject({ name: 'TimeoutError' });
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => blackHole.close(() => resolve()));
    }
  });
});
