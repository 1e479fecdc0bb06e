// The functions as Lambda runs them: each handler bundled by esbuild the way the stack bundles
// it (one ES module for Node 24, the AWS SDK inside, nothing external, nothing installed
// beside it), checked by the stack's bundle check, then loaded from a directory with no
// node_modules and invoked: a backup to an S3-compatible store (s3rver) and a restore of it
// into a second tenant, and an encrypted one restored with the identity its Secrets Manager
// secret holds (a local stand-in answering GetSecretValue, reached as the SDK reaches an
// endpoint set in the environment), a tampered or cut copy of it refused with the tenant kept
// whole. On a Node with zstd and SQLite built in (nodejs24.x) they work; on
// Node 20, which would need the optional native packages, the bundle answers
// MODULE_UNAVAILABLE instead of crashing.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { checkAsset } from '../infra/bundle-check.js';
import { formatIdentity, generateIdentity } from '../shared/age/keys.js';
import { zlibZstdCodec } from '../shared/archive/zstd-codec-zlib.js';
import { nodeSqliteDriver } from '../shared/backup/sqlite-driver.js';
import { createSampleTenant } from '../scripts/sample-tenant.js';
import { backupFunctionEnvironment, bundleFunction } from './helpers/function-bundle.js';
import { describeTree, tempDir } from './helpers/tree.js';
import { S3RVER_ACCESS_KEY, startS3Server, type S3TestServer } from './helpers/s3-server.js';

type Handler = (event: unknown, context: unknown) => Promise<Record<string, unknown>>;

const builtIns = !('unavailable' in zlibZstdCodec()) && !('unavailable' in nodeSqliteDriver());
const dir = tempDir('openclaw-functions-bundle-');
const base = path.join(dir.path, 'mnt-tenants');
let server: S3TestServer;
// Secrets Manager for the restore function's --identity-secret: GetSecretValue answered from here.
const identity = generateIdentity();
const secretNames: string[] = [];
let secretsServer: Server;
const handlers: Record<string, Handler> = {};

function context(remainingMs = 900_000): unknown {
  const deadline = Date.now() + remainingMs;
  return {
    awsRequestId: 'req-bundle',
    functionName: 'openclaw-backup-backup',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:openclaw-backup-backup',
    memoryLimitInMB: '2048',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
}

beforeAll(async () => {
  createSampleTenant(path.join(base, 'acme'), { sessions: 3, memoryRows: 50 });
  server = await startS3Server({ bucket: 'backups' });
  secretsServer = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      const { SecretId } = JSON.parse(body) as { SecretId: string };
      secretNames.push(`${String(request.headers['x-amz-target'])} ${SecretId}`);
      response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
      response.end(JSON.stringify({ ARN: `arn:aws:secretsmanager:us-east-1:123456789012:secret:${SecretId}`, Name: SecretId, SecretString: `# key\n${formatIdentity(identity)}\n` }));
    });
  });
  await new Promise<void>((resolve) => secretsServer.listen(0, '127.0.0.1', resolve));
  // The environment the stack sets (no event bus: no completion events), and the role's keys.
  for (const [name, value] of Object.entries(
    backupFunctionEnvironment(base, server.endpoint, {
      AWS_ENDPOINT_URL_SECRETS_MANAGER: `http://127.0.0.1:${(secretsServer.address() as AddressInfo).port}`,
      // What Lambda sets: the restore function grants --max-entries by it.
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '2048',
    }),
  )) {
    vi.stubEnv(name, value);
  }
  for (const name of ['backup', 'restore']) {
    const outdir = path.join(dir.path, 'asset', name);
    const bundle = await bundleFunction(name, outdir);
    expect(checkAsset(outdir), `${name} asset`).toEqual([]);
    const module = (await import(pathToFileURL(bundle).href)) as { handler: Handler };
    handlers[name] = module.handler;
  }
}, 120_000);

afterAll(async () => {
  vi.unstubAllEnvs();
  await server?.dispose();
  await new Promise((resolve) => secretsServer?.close(resolve));
  dir.cleanup();
});

/** Runs a handler with Powertools' log lines kept off the test output. */
async function invoke(name: string, event: unknown, remainingMs?: number): Promise<Record<string, unknown>> {
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    return await handlers[name]!(event, context(remainingMs));
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

describe('the bundled handlers', () => {
  it.runIf(builtIns)('back up and restore through node:zlib and node:sqlite, with nothing native beside them', async () => {
    const storage = { endpoint: server.endpoint };
    const backup = await invoke('backup', { tenant: 'acme', to: 's3://backups/bundle/acme.tar.zst', storage });
    expect(backup).toMatchObject({ operation: 'backup', tenant: 'acme', warnings: [] });
    expect(backup.skipped).not.toContainEqual(expect.objectContaining({ reason: expect.stringMatching(/SQLite/) }));
    const restore = await invoke('restore', { from: 's3://backups/bundle/acme.tar.zst', as: 'acme-copy', storage });
    expect(restore).toMatchObject({ operation: 'restore', tenant: 'acme-copy', verified: true });
    expect(describeTree(path.join(base, 'acme-copy'))).toEqual(describeTree(path.join(base, 'acme'), { exclude: (p) => p === 'pty' || p.startsWith('pty/') }));
  });

  it.runIf(builtIns)('refuse up front a restore of more files than the time left stages, by the count in the archive footer', async () => {
    const storage = { endpoint: server.endpoint };
    const many = path.join(base, 'many');
    mkdirSync(many, { recursive: true });
    for (let i = 0; i < 1000; i++) writeFileSync(path.join(many, `f${i}`), '');
    expect(await invoke('backup', { tenant: 'many', to: 's3://backups/bundle/many.tar.zst', storage })).toMatchObject({ operation: 'backup', files: 1000 });
    // 3 s beyond the 60 s abort margin, at 200 a second (the default): ~600 of the 1,001 entries.
    const refused = await invoke('restore', { from: 's3://backups/bundle/many.tar.zst', as: 'many-copy', storage }, 63_000);
    expect(refused).toMatchObject({ ok: false, error: { code: 'ARCHIVE_LIMIT', message: expect.stringMatching(/^s3:\/\/backups\/bundle\/many\.tar\.zst holds 1,001 entries to restore \(its footer says\), more than the \d+ the restore function can stage in the [0-3] s it has left at 45 a second/) } });
    expect(existsSync(path.join(base, 'many-copy'))).toBe(false);
    expect(await invoke('restore', { from: 's3://backups/bundle/many.tar.zst', as: 'many-copy', storage })).toMatchObject({ operation: 'restore', tenant: 'many-copy', files: 1000, verified: true });
  });

  it.runIf(builtIns)('refuse up front a restore of an encrypted archive of more files than the time left stages, by the footer read from its last age chunks with the identity secret', async () => {
    const storage = { endpoint: server.endpoint };
    const many = path.join(base, 'many-age');
    mkdirSync(many, { recursive: true });
    for (let i = 0; i < 1000; i++) writeFileSync(path.join(many, `f${i}`), '');
    const to = 's3://backups/bundle/many.tar.zst.age';
    expect(await invoke('backup', { tenant: 'many-age', to, storage, encryptTo: [identity.recipient.text] })).toMatchObject({ operation: 'backup', files: 1000 });
    const refused = await invoke('restore', { from: to, as: 'many-age-copy', storage, identitySecret: 'openclaw-backup/key' }, 63_000);
    expect(refused).toMatchObject({ ok: false, error: { code: 'ARCHIVE_LIMIT', message: expect.stringMatching(/^s3:\/\/backups\/bundle\/many\.tar\.zst\.age holds 1,001 entries to restore \(its footer says\), more than the \d+ the restore function can stage in the [0-3] s it has left/) } });
    expect(existsSync(path.join(base, 'many-age-copy'))).toBe(false);
    expect(await invoke('restore', { from: to, as: 'many-age-copy', storage, identitySecret: 'openclaw-backup/key' })).toMatchObject({ operation: 'restore', tenant: 'many-age-copy', files: 1000, verified: true });
    expect(secretNames).toEqual(['secretsmanager.GetSecretValue openclaw-backup/key', 'secretsmanager.GetSecretValue openclaw-backup/key']);
    secretNames.length = 0;
  });

  it('refuse a restore or verify asking a --max-entries past what the function\'s memory (AWS_LAMBDA_FUNCTION_MEMORY_SIZE) holds, in one line before anything is read', async () => {
    const storage = { endpoint: server.endpoint };
    const limits = { maxEntries: 4_992_001 };
    for (const event of [{ from: 's3://backups/bundle/acme.tar.zst', as: 'acme-many', storage, limits }, { operation: 'verify', from: 's3://backups/bundle/acme.tar.zst', record: false, storage, limits }]) {
      expect(await invoke('restore', event)).toEqual({
        ok: false,
        error: { code: 'ARCHIVE_LIMIT', outcome: 'refused', message: expect.stringMatching(/^--max-entries 4,992,001 is more than the restore function's 2,048 MiB of memory holds .*: it grants at most 4,992,000: give --max-entries 4992000 or less, give the restore function 2,049 MiB of memory or more \(the stack's memorySizeMiB\), or use the CLI/) },
      });
    }
    expect(existsSync(path.join(base, 'acme-many'))).toBe(false);
  });

  it.runIf(builtIns)('answer a scheduled backup its deadline stopped instead of throwing it to two retries that would stop the same way', async () => {
    const event = { source: 'openclaw.cron', tenant: 'acme', cronName: 'nightly', time: '2026-06-04T03:00:00Z', eventId: 'ev-late', command: { tenant: 'acme', to: 's3://backups/bundle/late-{date:%F}.tar.zst', storage: { endpoint: server.endpoint } } };
    const answer = await invoke('backup', event, 0);
    expect(answer).toEqual({ ok: false, error: { code: 'ABORTED', outcome: 'failed', message: expect.stringMatching(/^stopped: the Lambda invocation was about to time out/) } });
  });

  it.runIf(builtIns)('answer a scheduled event that does not read as a backup instead of throwing it to two retries of the same event', async () => {
    const event = { source: 'openclaw.cron', tenant: 'acme', cronName: 'nightly', time: 'tonight', command: { tenant: 'acme', to: 's3://backups/bundle/edited.tar.zst', storage: { endpoint: server.endpoint } } };
    const answer = await invoke('backup', event);
    expect(answer).toEqual({ ok: false, error: { code: 'INVALID_REQUEST', outcome: 'usage', message: expect.stringMatching(/"time" must be an ISO 8601 time/) } });
  });

  it.runIf(builtIns)('encrypt to a recipient, restore with the identity from Secrets Manager, and refuse a tampered copy leaving the tenant whole', async () => {
    const storage = { endpoint: server.endpoint };
    const backup = await invoke('backup', { tenant: 'acme', to: 's3://backups/bundle/acme.tar.zst.age', storage, encryptTo: [identity.recipient.text] });
    expect(backup).toMatchObject({ operation: 'backup', tenant: 'acme', encryptedTo: [identity.recipient.text] });
    const restore = await invoke('restore', { from: 's3://backups/bundle/acme.tar.zst.age', as: 'acme-age', storage, identitySecret: 'openclaw-backup/backup-key' });
    expect(restore).toMatchObject({ operation: 'restore', tenant: 'acme-age', verified: true });
    expect(secretNames).toEqual(['secretsmanager.GetSecretValue openclaw-backup/backup-key']);
    const tree = () => describeTree(path.join(base, 'acme-age'));
    const restored = tree();
    expect(restored).toEqual(describeTree(path.join(base, 'acme'), { exclude: (p) => p === 'pty' || p.startsWith('pty/') }));

    const s3 = new S3Client({ region: 'us-east-1', endpoint: server.endpoint, forcePathStyle: true, credentials: { accessKeyId: S3RVER_ACCESS_KEY, secretAccessKey: 'x' } });
    const stored = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: 'backups', Key: 'bundle/acme.tar.zst.age' }))).Body!.transformToByteArray());
    const damaged = async (key: string, bytes: Buffer, message: RegExp) => {
      await s3.send(new PutObjectCommand({ Bucket: 'backups', Key: key, Body: bytes }));
      const answer = await invoke('restore', { from: `s3://backups/${key}`, as: 'acme-age', force: true, storage, identitySecret: 'openclaw-backup/backup-key' });
      expect(answer).toEqual({ ok: false, error: { code: 'AGE_DAMAGED', outcome: 'refused', message: expect.stringMatching(message) } });
      expect(tree()).toEqual(restored);
    };
    const flipped = Buffer.from(stored);
    flipped[flipped.length - 100]! ^= 1;
    await damaged('bundle/flipped.tar.zst.age', flipped, /^damaged age file: the last chunk \(\d+\) failed authentication/);
    const header = stored.indexOf('\n--- ') + 1;
    const payload = stored.indexOf('\n', header) + 1 + 16;
    await damaged('bundle/cut.tar.zst.age', stored.subarray(0, payload + 65536 + 16), /^damaged age file: the final chunk is missing \(truncated file\)$/);
  });

  it.runIf(!builtIns)('answer MODULE_UNAVAILABLE on a Node without zstd and SQLite built in', async () => {
    const backup = await invoke('backup', { tenant: 'acme', to: 's3://backups/bundle/node20.tar.zst', storage: { endpoint: server.endpoint } });
    expect(backup).toEqual({ ok: false, error: { code: 'MODULE_UNAVAILABLE', outcome: 'failed', message: expect.stringMatching(/is not available/) } });
  });
});
