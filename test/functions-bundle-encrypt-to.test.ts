// The backup function's bundle (esbuild, as the stack bundles it) on a stack with `encryptTo`
// (OPENCLAW_ENCRYPT_TO, what infra/backup-functions.ts sets): a one-off backup request naming
// no recipients is stored as an age file the stack's key opens (the `age` CLI decrypts it),
// never in plaintext; a request naming its own recipient gets the stack's beside it. Node 24
// only (the bundle needs node:zlib's zstd), as functions-bundle.

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { checkAsset } from '../infra/bundle-check.js';
import { formatIdentity, generateIdentity } from '../shared/age/keys.js';
import { zlibZstdCodec } from '../shared/archive/zstd-codec-zlib.js';
import { nodeSqliteDriver } from '../shared/backup/sqlite-driver.js';
import { createSampleTenant } from '../scripts/sample-tenant.js';
import { bundleFunction } from './helpers/function-bundle.js';
import { sh, tempDir } from './helpers/tree.js';
import { S3RVER_ACCESS_KEY, startS3Server, type S3TestServer } from './helpers/s3-server.js';

type Handler = (event: unknown, context: unknown) => Promise<Record<string, unknown>>;

const builtIns = !('unavailable' in zlibZstdCodec()) && !('unavailable' in nodeSqliteDriver());
const dir = tempDir('openclaw-bundle-encrypt-to-');
const base = path.join(dir.path, 'mnt-tenants');
const stackKey = generateIdentity();
const ownKey = generateIdentity();
let server: S3TestServer;
let handler: Handler;

const context = () => ({
  awsRequestId: 'req-encrypt-to',
  functionName: 'openclaw-backup-backup',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:openclaw-backup-backup',
  memoryLimitInMB: '2048',
  getRemainingTimeInMillis: () => 900_000,
});

beforeAll(async () => {
  if (!builtIns) return;
  createSampleTenant(path.join(base, 'acme'), { sessions: 2, memoryRows: 20 });
  server = await startS3Server({ bucket: 'backups' });
  for (const [name, value] of Object.entries({
    OPENCLAW_TENANTS_DIR: base,
    OPENCLAW_BACKUP_BUCKET: 'backups',
    OPENCLAW_ALLOWED_ENDPOINTS: server.endpoint,
    OPENCLAW_STACK_PREFIX: 'openclaw-backup',
    OPENCLAW_ENCRYPT_TO: stackKey.recipient.text,
    OPENCLAW_CPUS: '1',
    POWERTOOLS_SERVICE_NAME: 'openclaw-backup',
    AWS_ACCESS_KEY_ID: S3RVER_ACCESS_KEY,
    AWS_SECRET_ACCESS_KEY: 'role-secret',
    AWS_REGION: 'us-east-1',
  })) {
    vi.stubEnv(name, value);
  }
  const outdir = path.join(dir.path, 'asset');
  const bundle = await bundleFunction('backup', outdir);
  expect(checkAsset(outdir)).toEqual([]);
  handler = ((await import(pathToFileURL(bundle).href)) as { handler: Handler }).handler;
}, 120_000);

afterAll(async () => {
  vi.unstubAllEnvs();
  await server?.dispose();
  dir.cleanup();
});

async function invoke(event: unknown): Promise<Record<string, unknown>> {
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    return await handler(event, context());
  } finally {
    out.mockRestore();
  }
}

/** Whether the identity opens the stored object, as the `age` CLI decrypts it, to acme's archive. */
async function opens(key: string, identity: ReturnType<typeof generateIdentity>): Promise<boolean> {
  const s3 = new S3Client({ region: 'us-east-1', endpoint: server.endpoint, forcePathStyle: true, credentials: { accessKeyId: S3RVER_ACCESS_KEY, secretAccessKey: 'x' } });
  const file = path.join(dir.path, key.replace(/\W/g, '-'));
  writeFileSync(file, Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: 'backups', Key: key }))).Body!.transformToByteArray()));
  const keyFile = `${file}.key`;
  writeFileSync(keyFile, `${formatIdentity(identity)}\n`);
  try {
    return sh(`age -d -i '${keyFile}' '${file}' 2>/dev/null | zstd -dq | tar -t`).toString().includes('tenants/acme/.openclaw-backup-manifest.json');
  } catch {
    return false;
  }
}

describe('the backup bundle on a stack with encryptTo', () => {
  it.runIf(builtIns)('stores a request naming no recipients as an age file the stack key opens', async () => {
    const answer = await invoke({ tenant: 'acme', to: 's3://backups/bundle/plain-request.tar.zst', storage: { endpoint: server.endpoint } });
    expect(answer).toMatchObject({ operation: 'backup', tenant: 'acme', encryptedTo: [stackKey.recipient.text] });
    expect(await opens('bundle/plain-request.tar.zst', stackKey)).toBe(true);
    expect(await opens('bundle/plain-request.tar.zst', ownKey)).toBe(false);
  });

  it.runIf(builtIns)("adds the stack key to a request's own recipient: either key opens the archive", async () => {
    const answer = await invoke({ tenant: 'acme', to: 's3://backups/bundle/own.tar.zst.age', storage: { endpoint: server.endpoint }, encryptTo: [ownKey.recipient.text] });
    expect(answer).toMatchObject({ operation: 'backup', encryptedTo: [ownKey.recipient.text, stackKey.recipient.text] });
    expect(await opens('bundle/own.tar.zst.age', stackKey)).toBe(true);
    expect(await opens('bundle/own.tar.zst.age', ownKey)).toBe(true);
  });
});
