// `--sse`, `--sse-kms-key-id` and `--storage-class` (shared/storage/s3-object-settings.ts): the
// checks, the headers of every request that creates the object (aws-sdk-client-mock, and
// s3rver behind a recording proxy, read back with the aws CLI where s3rver keeps them), the
// CLI's one-line refusals, and the warning when the store's answer does not confirm the
// encryption asked for (s3rver ignores the headers).

import * as sdk from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { UsageError } from '../shared/errors.js';
import { parseCronCommand } from '../shared/schedule/cron-command.js';
import { parseBackupCommand } from '../shared/control-plane/protocol.js';
import { createS3Client } from '../shared/storage/s3-client.js';
import { s3ObjectSettings, unconfirmedEncryption } from '../shared/storage/s3-object-settings.js';
import { S3Location } from '../shared/storage/s3.js';
import { makeTenants, s3Flags } from './helpers/backups.js';
import { runMain } from './helpers/run-main.js';
import { AWS_CLI, awsCliEnvironment, startGlacierProxy, startRecordingProxy, startS3Server, type S3TestServer } from './helpers/s3-server.js';
import { tempDir } from './helpers/tree.js';
import { bodyOf, writeOptions } from './storage-contract.js';

const MiB = 1024 * 1024;

describe('s3ObjectSettings', () => {
  it.each([
    [{}, {}],
    [{ sse: 'AES256' }, { ServerSideEncryption: 'AES256' }],
    [{ sse: 'aes256' }, { ServerSideEncryption: 'AES256' }],
    [{ sse: 'aws:kms' }, { ServerSideEncryption: 'aws:kms' }],
    [{ sse: 'aws:kms', sseKmsKeyId: 'alias/backups' }, { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'alias/backups' }],
    [
      { sse: 'aws:kms:dsse', sseKmsKeyId: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab' },
      { ServerSideEncryption: 'aws:kms:dsse', SSEKMSKeyId: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab' },
    ],
    [{ storageClass: 'standard_ia' }, { StorageClass: 'STANDARD_IA' }],
    [{ storageClass: 'GLACIER_IR' }, { StorageClass: 'GLACIER_IR' }],
    [{ storageClass: 'INTELLIGENT_TIERING' }, { StorageClass: 'INTELLIGENT_TIERING' }],
  ])('takes %j', (flags, settings) => {
    expect(s3ObjectSettings(flags)).toEqual(settings);
  });

  it.each([
    [{ sse: 'kms' }, /^invalid --sse "kms": give AES256, aws:kms, aws:kms:dsse/],
    [{ sse: '' }, /^--sse needs a value$/],
    [{ sseKmsKeyId: 'alias/backups' }, /^--sse-kms-key-id names the key of --sse aws:kms/],
    [{ sse: 'AES256', sseKmsKeyId: 'alias/backups' }, /^--sse-kms-key-id names the key of --sse aws:kms \(or aws:kms:dsse\), and --sse AES256 takes none \(S3's own keys\): give --sse aws:kms, or leave --sse-kms-key-id out$/],
    [{ sse: 'aws:kms', sseKmsKeyId: 'alias/a b' }, /^invalid --sse-kms-key-id "alias\/a b"/],
    [{ storageClass: 'COLD' }, /^invalid --storage-class "COLD": give STANDARD, STANDARD_IA/],
    [{ storageClass: 'GLACIER' }, /^--storage-class GLACIER is refused: an object there cannot be read until it is restored .*lifecycle rule/],
    [{ storageClass: 'deep_archive' }, /^--storage-class DEEP_ARCHIVE is refused: .*up to 48 hours/],
  ])('refuses %j in one line', (flags, message) => {
    let error: unknown;
    try {
      s3ObjectSettings(flags);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain('\n');
  });
});

describe('unconfirmedEncryption', () => {
  const kms = { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: '1234abcd-12ab-34cd-56ef-1234567890ab' } as const;
  const arn = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
  it.each([
    ['nothing asked', {}, {}, undefined],
    ['AES256 confirmed', { ServerSideEncryption: 'AES256' }, { ServerSideEncryption: 'AES256' }, undefined],
    ['AES256 not answered', { ServerSideEncryption: 'AES256' }, {}, '--sse AES256 (its answer named no server-side encryption)'],
    ['aws:kms answered AES256', { ServerSideEncryption: 'aws:kms' }, { ServerSideEncryption: 'AES256' }, '--sse aws:kms (its answer named AES256)'],
    ['a key id answered as its ARN', kms, { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: arn }, undefined],
    ['a key ARN answered as itself', { ...kms, SSEKMSKeyId: arn }, { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: arn }, undefined],
    ['another key', kms, { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: arn.replace('1234abcd', 'ffffffff') }, `--sse-kms-key-id ${kms.SSEKMSKeyId} (its answer named the KMS key ${arn.replace('1234abcd', 'ffffffff')})`],
    ['no key answered', kms, { ServerSideEncryption: 'aws:kms' }, `--sse-kms-key-id ${kms.SSEKMSKeyId} (its answer named no KMS key)`],
    ['a MinIO key name answered with arn:aws:kms: before it', { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'backups-key' }, { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'arn:aws:kms:backups-key' }, undefined],
    ['a MinIO key asked with arn:aws:kms:, answered without (older MinIO)', { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'arn:aws:kms:backups-key' }, { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'backups-key' }, undefined],
    ['another MinIO key', { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'backups-key' }, { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'arn:aws:kms:other-key' }, '--sse-kms-key-id backups-key (its answer named the KMS key arn:aws:kms:other-key)'],
    ['a key ARN answered as another region\'s', { ...kms, SSEKMSKeyId: arn }, { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: arn.replace('us-east-1', 'eu-west-1') }, `--sse-kms-key-id ${arn} (its answer named the KMS key ${arn.replace('us-east-1', 'eu-west-1')})`],
    ['an alias (its key ARN cannot be told without KMS)', { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'alias/backups' }, { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: arn }, undefined],
  ] as const)('%s', (_name, requested, applied, expected) => {
    expect(unconfirmedEncryption(requested, applied)).toBe(expected);
  });
});

describe('the requests that create the object carry them (aws-sdk-client-mock)', () => {
  const s3 = mockClient(sdk.S3Client);
  let client: sdk.S3Client;
  beforeAll(async () => {
    client = await createS3Client({ region: 'us-east-1', accessKey: 'AKIAIOSFODNN7EXAMPLE', secretKey: 'secret' });
  });
  afterAll(() => {
    s3.restore();
    client.destroy();
  });
  const settings = { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'alias/backups', StorageClass: 'STANDARD_IA' } as const;

  function bucket(): void {
    s3.reset();
    s3.on(sdk.HeadObjectCommand).rejects(new sdk.S3ServiceException({ name: 'NotFound', $fault: 'client', $metadata: { httpStatusCode: 404 }, message: 'UnknownError' }));
    s3.on(sdk.GetObjectCommand).rejects(new sdk.S3ServiceException({ name: 'NoSuchKey', $fault: 'client', $metadata: { httpStatusCode: 404 }, message: 'NoSuchKey' }));
    s3.on(sdk.PutObjectCommand).resolves({ ETag: '"single"' });
    s3.on(sdk.CreateMultipartUploadCommand).resolves({ UploadId: 'upload-1' });
    s3.on(sdk.UploadPartCommand).callsFake((input: { PartNumber: number }) => ({ ETag: `"part-${input.PartNumber}"` }));
    s3.on(sdk.CompleteMultipartUploadCommand).resolves({ ETag: '"multi-3"' });
    s3.on(sdk.PutObjectTaggingCommand).resolves({});
  }

  it('PutObject of an archive smaller than a part', async () => {
    bucket();
    const at = new S3Location({ client, bucket: 'my-bucket', key: 'acme/x.tar.zst', partSize: 5 * MiB, objectSettings: settings });
    await at.write(bodyOf(randomBytes(100_000)), writeOptions());
    expect(s3.commandCalls(sdk.PutObjectCommand)).toHaveLength(1);
    expect(s3.commandCalls(sdk.PutObjectCommand)[0]!.args[0].input).toMatchObject(settings);
  });

  it('CreateMultipartUpload of a larger one (parts and completion inherit them, as S3 wants)', async () => {
    bucket();
    const at = new S3Location({ client, bucket: 'my-bucket', key: 'acme/x.tar.zst', partSize: 5 * MiB, objectSettings: settings });
    await at.write(bodyOf(randomBytes(11 * MiB)), writeOptions());
    expect(s3.commandCalls(sdk.PutObjectCommand)).toHaveLength(0);
    expect(s3.commandCalls(sdk.CreateMultipartUploadCommand)[0]!.args[0].input).toMatchObject(settings);
    expect(s3.commandCalls(sdk.UploadPartCommand)).toHaveLength(3);
    for (const call of s3.commandCalls(sdk.UploadPartCommand)) expect(call.args[0].input).not.toHaveProperty('StorageClass');
  });

  it('a PutObject answer without ServerSideEncryption is said, naming the store; one with it is not', async () => {
    bucket();
    const at = new S3Location({ client, bucket: 'my-bucket', key: 'acme/x.tar.zst', endpoint: 'https://store.example', partSize: 5 * MiB, objectSettings: { ServerSideEncryption: 'AES256' } });
    const unconfirmed = await at.write(bodyOf(randomBytes(1000)), writeOptions());
    expect(unconfirmed).toMatchObject({ bytes: 1000, unconfirmed: 'the store https://store.example did not confirm --sse AES256 (its answer named no server-side encryption)' });
    s3.on(sdk.PutObjectCommand).resolves({ ETag: '"single"', ServerSideEncryption: 'AES256' });
    const confirmed = await at.write(bodyOf(randomBytes(1000)), { ...writeOptions(), overwrite: true });
    expect(confirmed).not.toHaveProperty('unconfirmed');
  });

  it('so is a CompleteMultipartUpload answer without it, or naming another KMS key', async () => {
    bucket();
    const key = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const at = new S3Location({ client, bucket: 'my-bucket', key: 'acme/x.tar.zst', partSize: 5 * MiB, objectSettings: { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: key } });
    expect(await at.write(bodyOf(randomBytes(11 * MiB)), writeOptions())).toMatchObject({ unconfirmed: 'the store S3 did not confirm --sse aws:kms (its answer named no server-side encryption)' });
    const other = key.replace('1234abcd', 'ffffffff');
    s3.on(sdk.CompleteMultipartUploadCommand).resolves({ ETag: '"multi-3"', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: other });
    expect(await at.write(bodyOf(randomBytes(11 * MiB)), { ...writeOptions(), overwrite: true })).toMatchObject({ unconfirmed: `the store S3 did not confirm --sse-kms-key-id ${key} (its answer named the KMS key ${other})` });
    s3.on(sdk.CompleteMultipartUploadCommand).resolves({ ETag: '"multi-3"', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: key });
    expect(await at.write(bodyOf(randomBytes(11 * MiB)), { ...writeOptions(), overwrite: true })).not.toHaveProperty('unconfirmed');
    expect(s3.commandCalls(sdk.CompleteMultipartUploadCommand)).toHaveLength(3);
  });

  it('where the committing answer was lost, the HEAD that finds the object is what confirms it (PutObject and multipart)', async () => {
    const key = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const at = new S3Location({ client, bucket: 'my-bucket', key: 'acme/x.tar.zst', partSize: 5 * MiB, objectSettings: { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: key.slice(key.indexOf('/') + 1) } });
    for (const size of [1000, 11 * MiB]) {
      for (const applied of [{ ServerSideEncryption: 'aws:kms', SSEKMSKeyId: key }, {}]) {
        bucket();
        let stored: { Metadata?: Record<string, string> } | undefined;
        const lost = (input: { Metadata?: Record<string, string> }) => {
          stored ??= input;
          throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
        };
        s3.on(sdk.PutObjectCommand).callsFake(lost);
        s3.on(sdk.CreateMultipartUploadCommand).callsFake((input: { Metadata?: Record<string, string> }) => ((stored = input), { UploadId: 'upload-1' }));
        s3.on(sdk.CompleteMultipartUploadCommand).callsFake(() => lost({}));
        s3.on(sdk.HeadObjectCommand).callsFake(() => {
          if (stored === undefined) throw new sdk.S3ServiceException({ name: 'NotFound', $fault: 'client', $metadata: { httpStatusCode: 404 }, message: 'UnknownError' });
          return { ETag: '"landed"', ContentLength: size, Metadata: stored.Metadata, ...applied };
        });
        const result = await at.write(bodyOf(randomBytes(size)), writeOptions());
        if (applied.ServerSideEncryption === undefined) expect(result.unconfirmed).toBe('the store S3 did not confirm --sse aws:kms (its answer named no server-side encryption)');
        else expect(result).not.toHaveProperty('unconfirmed');
      }
    }
  });

  it('none without the flags: the bucket\'s defaults apply', async () => {
    bucket();
    const at = new S3Location({ client, bucket: 'my-bucket', key: 'acme/x.tar.zst', partSize: 5 * MiB });
    await at.write(bodyOf(randomBytes(1000)), writeOptions());
    const input = s3.commandCalls(sdk.PutObjectCommand)[0]!.args[0].input;
    for (const field of ['ServerSideEncryption', 'SSEKMSKeyId', 'StorageClass']) expect(input).not.toHaveProperty(field);
  });
});

describe('against s3rver', () => {
  let server: S3TestServer;
  let tenants: ReturnType<typeof tempDir>;
  beforeAll(async () => {
    server = await startS3Server();
    tenants = tempDir();
    makeTenants(tenants.path, ['acme']);
  });
  afterAll(async () => {
    await server?.dispose();
    tenants?.cleanup();
  });

  async function headObject(key: string): Promise<Record<string, unknown>> {
    const { stdout } = await promisify(execFile)(AWS_CLI, ['--endpoint-url', server.endpoint, '--output', 'json', 's3api', 'head-object', '--bucket', server.bucket, '--key', key], { env: awsCliEnvironment() });
    return JSON.parse(stdout) as Record<string, unknown>;
  }

  it.runIf(existsSync(AWS_CLI))('tenants backup sends the headers, and the aws CLI reads the storage class back (s3rver drops the encryption headers)', async () => {
    const proxy = await startRecordingProxy(server.endpoint);
    try {
      const flags = s3Flags(server).map((flag) => (flag === server.endpoint ? proxy.endpoint : flag));
      const run = await runMain(['--tenants-dir', tenants.path, 'tenants', 'backup', 'acme', '--to', 's3://backups/sse/acme.tar.zst', ...flags, '--sse', 'aws:kms', '--sse-kms-key-id', 'alias/backups', '--storage-class', 'STANDARD_IA']);
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      const puts = proxy.requests.filter((request) => request.method === 'PUT' && !request.url.includes('tagging'));
      expect(puts).toHaveLength(1);
      expect(puts[0]!.headers).toMatchObject({ 'x-amz-server-side-encryption': 'aws:kms', 'x-amz-server-side-encryption-aws-kms-key-id': 'alias/backups', 'x-amz-storage-class': 'STANDARD_IA' });
    } finally {
      await proxy.stop();
    }
    expect(await headObject('sse/acme.tar.zst')).toMatchObject({ StorageClass: 'STANDARD_IA' });
  });

  it.runIf(existsSync(AWS_CLI))('a multipart upload is created with them', async () => {
    const proxy = await startRecordingProxy(server.endpoint);
    const client = await createS3Client({ ...server.clientOptions, endpoint: proxy.endpoint });
    try {
      const at = new S3Location({ client, bucket: server.bucket, key: 'sse/multipart.tar.zst', endpoint: proxy.endpoint, partSize: 5 * MiB, objectSettings: { ServerSideEncryption: 'AES256', StorageClass: 'ONEZONE_IA' } });
      await at.write(bodyOf(randomBytes(11 * MiB)), writeOptions());
      const create = proxy.requests.find((request) => request.method === 'POST' && /[?&]uploads(=|&|$)/.test(request.url));
      expect(create?.headers).toMatchObject({ 'x-amz-server-side-encryption': 'AES256', 'x-amz-storage-class': 'ONEZONE_IA' });
    } finally {
      client.destroy();
      await proxy.stop();
    }
    expect(await headObject('sse/multipart.tar.zst')).toMatchObject({ StorageClass: 'ONEZONE_IA', ContentLength: 11 * MiB });
  });

  it('a backup whose store does not confirm --sse says so in one line (and in --json), exit 0; --dry-run shows the settings', async () => {
    const run = await runMain(['--tenants-dir', tenants.path, 'tenants', 'backup', 'acme', '--to', 's3://backups/sse/unconfirmed.tar.zst', ...s3Flags(server), '--sse', 'AES256']);
    expect(run.status).toBe(0);
    expect(run.stderr).toBe('');
    const warnings = run.stdout.split('\n').filter((line) => line.includes('did not confirm'));
    expect(warnings).toEqual([
      `  note: WARNING: s3://backups/sse/unconfirmed.tar.zst is stored whole, but the store ${server.endpoint} did not confirm --sse AES256 (its answer named no server-side encryption): ` +
        "it may not be encrypted at rest as asked (a store that ignores the encryption headers); check the bucket's default encryption",
    ]);
    const json = await runMain(['--json', '--tenants-dir', tenants.path, 'tenants', 'backup', 'acme', '--to', 's3://backups/sse/unconfirmed-json.tar.zst', ...s3Flags(server), '--sse', 'aws:kms']);
    expect(json.status).toBe(0);
    expect((JSON.parse(json.stdout) as { notices: string[] }).notices).toEqual([expect.stringContaining(`the store ${server.endpoint} did not confirm --sse aws:kms`)]);
    const plain = await runMain(['--json', '--tenants-dir', tenants.path, 'tenants', 'backup', 'acme', '--to', 's3://backups/sse/plain.tar.zst', ...s3Flags(server)]);
    expect((JSON.parse(plain.stdout) as { notices: string[] }).notices).toEqual([]);

    const plan = await runMain(['--tenants-dir', tenants.path, 'tenants', 'backup', 'acme', '--dry-run', '--to', 's3://backups/sse/plan.tar.zst', ...s3Flags(server), '--sse', 'aws:kms', '--sse-kms-key-id', 'alias/backups', '--storage-class', 'standard_ia']);
    expect(plan.status).toBe(0);
    expect(plan.stdout).toContain('  S3 object settings: --sse aws:kms --sse-kms-key-id alias/backups --storage-class STANDARD_IA\n');
    const planJson = await runMain(['--json', '--tenants-dir', tenants.path, 'tenants', 'backup', 'acme', '--dry-run', '--to', 's3://backups/sse/plan.tar.zst', ...s3Flags(server)]);
    expect(JSON.parse(planJson.stdout)).toMatchObject({ operation: 'backup-plan', s3: {} });
  });

  it('verify and restore of a backup a lifecycle rule moved to GLACIER fail in one line saying why (S3: 403 InvalidObjectState)', async () => {
    const backup = await runMain(['--tenants-dir', tenants.path, 'tenants', 'backup', 'acme', '--to', 's3://backups/sse/archived.tar.zst', ...s3Flags(server), '--storage-class', 'STANDARD_IA']);
    expect(backup.status).toBe(0);
    const glacier = await startGlacierProxy(server.endpoint, (key) => key === 'sse/archived.tar.zst');
    try {
      const flags = s3Flags(server).map((flag) => (flag === server.endpoint ? glacier.endpoint : flag));
      for (const command of [['tenants', 'verify'], ['tenants', 'restore', '--as', 'acme-copy']]) {
        const run = await runMain(['--json', '--tenants-dir', tenants.path, ...command, '--from', 's3://backups/sse/archived.tar.zst', ...flags]);
        expect(run.status).toBe(1);
        expect(run.stderr).toBe('openclaw: s3://backups/sse/archived.tar.zst is in an archive storage class (GLACIER): restore it first (aws s3api restore-object), then read it\n');
        expect(JSON.parse(run.stdout)).toMatchObject({ error: { code: 'NOT_SUPPORTED' } });
      }
    } finally {
      await glacier.stop();
    }
  });

  it('refuses the flags in one line, exit 2, before anything is read or stored', async () => {
    const cases: [string[], RegExp][] = [
      [['--to', path.join(tenants.path, '..', 'x.tar.zst'), '--sse', 'AES256'], /^openclaw: --sse applies only to s3:\/\/ locations\n$/],
      [['--to', path.join(tenants.path, '..', 'x.tar.zst'), '--storage-class', 'STANDARD_IA'], /^openclaw: --storage-class applies only to s3:\/\/ locations\n$/],
      [['--to', 's3://backups/sse/refused.tar.zst', ...s3Flags(server), '--storage-class', 'GLACIER'], /^openclaw: --storage-class GLACIER is refused: /],
      [['--to', 's3://backups/sse/refused.tar.zst', ...s3Flags(server), '--storage-class', 'COLD'], /^openclaw: invalid --storage-class "COLD"/],
      [['--to', 's3://backups/sse/refused.tar.zst', ...s3Flags(server), '--sse-kms-key-id', 'alias/backups'], /^openclaw: --sse-kms-key-id names the key of --sse aws:kms/],
    ];
    for (const [args, message] of cases) {
      const run = await runMain(['--tenants-dir', tenants.path, 'tenants', 'backup', 'acme', ...args]);
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(message);
      expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    }
    const all = await runMain(['--tenants-dir', tenants.path, 'tenants', 'backup', '--all', '--to', 's3://backups/sse/{tenant}.tar.zst', ...s3Flags(server), '--storage-class', 'DEEP_ARCHIVE']);
    expect(all.status).toBe(2);
    expect(all.stderr).toMatch(/^openclaw: --storage-class DEEP_ARCHIVE is refused/);
    // Any bad storage flag of --all is one usage error, not one failed backup per tenant (it was: exit 1, each tenant FAILED).
    const region = await runMain(['--tenants-dir', tenants.path, 'tenants', 'backup', '--all', '--to', 's3://backups/sse/{tenant}.tar.zst', ...s3Flags(server).slice(0, -2), '--region', 'bad region']);
    expect(region.status).toBe(2);
    expect(region.stderr).toBe('openclaw: invalid --region "bad region": give a region name such as eu-west-1 (letters, digits, "-" and "_")\n');
  });

  it('refuses --stall-timeout with a local archive, as the other S3 flags (it was taken and did nothing)', async () => {
    const local = path.join(tenants.path, '..', 'stall.tar.zst');
    for (const command of [
      ['tenants', 'backup', 'acme', '--to', local],
      ['tenants', 'backup', '--all', '--to', path.join(tenants.path, '..', '{tenant}-stall.tar.zst')],
      ['tenants', 'restore', '--from', local, '--as', 'acme-copy'],
      ['tenants', 'verify', '--from', local],
    ]) {
      const run = await runMain(['--tenants-dir', tenants.path, ...command, '--stall-timeout', '90s']);
      expect(run.stderr).toBe('openclaw: --stall-timeout applies only to s3:// locations\n');
      expect(run.status).toBe(2);
    }
    expect(existsSync(local)).toBe(false);
  });
});

describe('scheduled and remote backups', () => {
  it('a cron line keeps them, and refuses a bad one when the cron is added', () => {
    const line = 'openclaw tenants backup acme --to s3://backups/acme/$(date +%F).tar.zst --sse aws:kms --sse-kms-key-id alias/backups --storage-class STANDARD_IA';
    expect(parseCronCommand(line, { tenant: 'acme', stack: 'oc' }).command.storage).toEqual({ sse: 'aws:kms', sseKmsKeyId: 'alias/backups', storageClass: 'STANDARD_IA' });
    expect(() => parseCronCommand('openclaw tenants backup acme --to s3://backups/acme/x.tar.zst --storage-class GLACIER', { tenant: 'acme', stack: 'oc' })).toThrow(
      /^--storage-class GLACIER is refused: .* \(in --cmd\)$/,
    );
  });

  it('the backup function takes them in its request', () => {
    const command = parseBackupCommand({ tenant: 'acme', to: 's3://backups/acme/x.tar.zst', storage: { sse: 'aws:kms', sseKmsKeyId: 'alias/backups', storageClass: 'GLACIER_IR' } });
    expect(command.storage).toEqual({ sse: 'aws:kms', sseKmsKeyId: 'alias/backups', storageClass: 'GLACIER_IR' });
  });
});
