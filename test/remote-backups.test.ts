// The new commands in remote mode: the CLI invokes the gateway's functions (Invoke mocked,
// handing the payload to the real handlers: a temp dir as the EFS mount, s3rver as an
// S3-compatible store the deployer allowed) and prints what local mode prints, with the
// same exit codes: tenants verify and tenants backups on the restore function, the dry runs,
// tenants prune on the prune function (direct, and as a cron rule's scheduled payload, with
// its completion event), and the remote policy's refusals. backup --all is not remote yet.

import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Logger } from '@aws-lambda-powertools/logger';
import { mockClient } from 'aws-sdk-client-mock';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

import { completionPublisher } from '../functions/events.js';
import { localOperations, type BackupsCommand, type OperationHooks } from '../shared/operations.js';
import { InvalidRequestError } from '../shared/errors.js';
import { failureResponse, isRecord } from '../shared/control-plane/protocol.js';
import { skippedFields } from '../shared/control-plane/list-pages.js';
import { backupHandler } from '../functions/backup-handler.js';
import { listHandler } from '../functions/list-handler.js';
import { pruneHandler } from '../functions/prune-handler.js';
import { restoreHandler } from '../functions/restore-handler.js';
import { ScheduledOperationError } from '../functions/scheduled-error.js';
import type { PruneResult } from '../shared/catalog/prune.js';
import type { LambdaContext } from '../functions/lambda-context.js';
import type { FunctionConfig } from '../shared/control-plane/function-config.js';
import { cronTargetInput, parseScheduledCommand } from '../shared/schedule/cron-command.js';
import { backupAt, DAY, makeTenants } from './helpers/backups.js';
import { runMain, stubRemoteCaller } from './helpers/run-main.js';
import { AWS_CLI, awsCliEnvironment, S3RVER_ACCESS_KEY, startCountingProxy, startS3Server, type S3TestServer } from './helpers/s3-server.js';
import { tempDir } from './helpers/tree.js';
import { lambdaContext } from './helpers/lambda-context.js';
import { createS3Client } from '../shared/storage/s3-client.js';

const lambda = mockClient(LambdaClient);
const eventBridge = mockClient(EventBridgeClient);
const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const decode = (payload: Uint8Array | undefined) => JSON.parse(new TextDecoder().decode(payload)) as unknown;
const context = () => lambdaContext();

const dir = tempDir('openclaw-remote-backups-');
const base = path.join(dir.path, 'tenants');
const JUNE_1 = Date.parse('2026-06-01T03:00:00.000Z');
let server: S3TestServer;
let config: FunctionConfig;
const invoked: string[] = [];

beforeAll(async () => {
  makeTenants(base, ['acme']);
  server = await startS3Server({ bucket: 'backups' });
  for (let day = 0; day < 4; day++) await backupAt(base, 'acme', `s3://backups/backups/acme/${day + 1}.tar.zst`, new Date(JUNE_1 + day * DAY), server);
});
afterAll(async () => {
  lambda.restore();
  eventBridge.restore();
  await server.dispose();
  dir.cleanup();
});
beforeEach(() => {
  lambda.reset();
  eventBridge.reset();
  invoked.length = 0;
  stubRemoteCaller();
  const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });
  config = { tenantsDir: base, backupBucket: 'backups', backupKeyPrefix: 'backups/', allowedSourceBuckets: [], allowedEndpoints: [server.endpoint], abortMarginMs: 1000, eventBus: 'bus' };
  const publish = completionPublisher(new EventBridgeClient({ region: 'eu-west-1' }), config.eventBus, logger);
  const handlers: Record<string, (event: unknown, context: LambdaContext) => Promise<unknown>> = {
    'openclaw-backup-backup': backupHandler({ config, logger, publish }),
    'openclaw-backup-restore': restoreHandler({ config, logger, publish }),
    'openclaw-backup-list': listHandler({ config, logger }),
    'openclaw-backup-prune': pruneHandler({ config, logger, publish }),
  };
  lambda.on(InvokeCommand).callsFake(async (input: { FunctionName: string; Payload: Uint8Array }) => {
    invoked.push(input.FunctionName);
    return { StatusCode: 200, Payload: encode(await handlers[input.FunctionName]!(decode(input.Payload), context())) };
  });
  eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0 });
});

const storage = () => ['--endpoint', server.endpoint, '--access-key', S3RVER_ACCESS_KEY, '--secret-key', 'test-secret-key'];
const local = (args: string[]) => runMain(['--tenants-dir', base, ...args]);
const remote = (args: string[]) => runMain(['--stack', 'openclaw-backup', ...args]);
const normalise = (text: string) => text.replace(/\d+(\.\d+)? s\b/g, 'N s').replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, 'TIME').replace(/\(\d{4}-\d\d-\d\d \d\d:\d\d UTC\)/g, '(TIME)');

describe('remote and local runs of the new commands', () => {
  it('tenants verify runs on the restore function, with the same output and the mark recorded', async () => {
    const args = ['tenants', 'verify', '--from', 's3://backups/backups/acme/1.tar.zst', ...storage()];
    const [l, r] = [await local([...args, '--no-record']), await remote(args)];
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(invoked).toEqual(['openclaw-backup-restore']);
    expect(normalise(r.stdout).split('\n').slice(0, 3)).toEqual(normalise(l.stdout).split('\n').slice(0, 3));
    expect(r.stdout).toMatch(/recorded as verified beside the archive/);
    const damaged = await remote(['tenants', 'verify', '--from', 's3://backups/backups/acme/none.tar.zst', ...storage()]);
    expect(damaged.status).toBe(1);
    expect(damaged.stderr).toBe('openclaw: no archive at s3://backups/backups/acme/none.tar.zst\n');
  });

  it('tenants backups lists alike, and shows the verification', async () => {
    const args = ['--json', 'tenants', 'backups', 'acme', '--in', 's3://backups/backups/', ...storage()];
    const [l, r] = [await local(args), await remote(args)];
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(JSON.parse(l.stdout));
    expect(JSON.parse(r.stdout).backups.map((entry: { name: string; verifiedAt?: string }) => [entry.name, entry.verifiedAt !== undefined])).toEqual([
      ['acme/4.tar.zst', false],
      ['acme/3.tar.zst', false],
      ['acme/2.tar.zst', false],
      ['acme/1.tar.zst', true],
    ]);
  });

  it('tenants backups lists alike under a prefix a backup would not write but a restore reads (a backslash: refused before by the gateway and the function)', async () => {
    await promisify(execFile)(AWS_CLI, ['--endpoint-url', server.endpoint, 's3api', 'copy-object', '--bucket', 'backups', '--copy-source', 'backups/backups/acme/2.tar.zst', '--key', 'other\\acme/2.tar.zst'], { env: awsCliEnvironment() });
    const args = ['--json', 'tenants', 'backups', 'acme', '--in', 's3://backups/other\\acme/', ...storage()];
    const [l, r] = [await local(args), await remote(args)];
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(JSON.parse(l.stdout));
    expect(JSON.parse(r.stdout).backups.map((entry: { location: string }) => entry.location)).toEqual(['s3://backups/other\\acme/2.tar.zst']);
  });

  it('tenants backups in pages of a real store lists what local mode lists: every entry, in its order, with its counts', async () => {
    makeTenants(base, ['beta']);
    for (let day = 0; day < 3; day++) await backupAt(base, 'beta', `s3://backups/backups/beta/${day + 1}.tar.zst`, new Date(JUNE_1 + day * DAY), server);
    // Two of acme's with the same creation time as another's: the order among them is the local listing's too.
    await backupAt(base, 'acme', 's3://backups/backups/acme/b-twin.tar.zst', new Date(JUNE_1 + DAY), server);
    await backupAt(base, 'acme', 's3://backups/backups/acme/a-twin.tar.zst', new Date(JUNE_1 + DAY), server);
    // Pages of 2 objects (the function's are of 2,000): 9 objects, 5 pages.
    const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });
    const real = localOperations(base);
    const operations = { ...real, listBackups: (command: BackupsCommand, hooks?: OperationHooks<never>) => real.listBackups({ ...command, ...(command.page !== undefined && { page: { ...command.page, limit: 2 } }) }, hooks) };
    const restore = restoreHandler({ config, logger, publish: async () => {}, operations });
    const requests: Record<string, unknown>[] = [];
    lambda.on(InvokeCommand).callsFake(async (input: { Payload: Uint8Array }) => {
      requests.push(decode(input.Payload) as Record<string, unknown>);
      return { StatusCode: 200, Payload: encode(await restore(decode(input.Payload), context())) };
    });
    try {
      const args = ['tenants', 'backups', 'acme', '--in', 's3://backups/backups/', ...storage()];
      const [l, r] = [await local(['--json', ...args]), await remote(['--json', ...args])];
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const listing = JSON.parse(r.stdout) as { backups: { name: string }[]; otherObjects: number };
      expect(listing).toEqual(JSON.parse(l.stdout));
      // acme/2 and the twins share a creation time: among them the store's modification times
      // (to the second) decide, then the names, the same in both listings (above).
      const names = listing.backups.map((entry) => entry.name);
      expect([names.slice(0, 2), names.slice(2, 5).sort(), names.slice(5)]).toEqual([['acme/4.tar.zst', 'acme/3.tar.zst'], ['acme/2.tar.zst', 'acme/a-twin.tar.zst', 'acme/b-twin.tar.zst'], ['acme/1.tar.zst']]);
      expect(listing.otherObjects).toBe(3);
      expect(requests.map((request) => request.after)).toEqual([undefined, 'acme/2.tar.zst', 'acme/4.tar.zst', 'acme/b-twin.tar.zst', 'beta/2.tar.zst']);
      const [lt, rt] = [await local(args), await remote(args)];
      expect(rt.stdout).toBe(lt.stdout);
    } finally {
      const client = await createS3Client(server.clientOptions);
      for (const key of ['beta/1.tar.zst', 'beta/2.tar.zst', 'beta/3.tar.zst', 'acme/a-twin.tar.zst', 'acme/b-twin.tar.zst']) await client.send(new DeleteObjectCommand({ Bucket: 'backups', Key: `backups/${key}` }));
      rmSync(path.join(base, 'beta'), { recursive: true });
    }
  });

  it('tenants backups in pages lists each key of the store once: each page goes on from where the one before stopped (before: each listed the prefix from its start)', async () => {
    // 24 objects in pages of 4 (the function's are of 2,000): 6 pages, 6 ListObjectsV2 requests either way (24 keys are one request), but they held 144 keys, 6 times the store.
    const proxy = await startCountingProxy(server.endpoint);
    const client = await createS3Client(server.clientOptions);
    const keys = Array.from({ length: 24 }, (_, n) => `paged/acme/${String(n).padStart(2, '0')}.bin`);
    const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });
    const real = localOperations(base);
    const operations = { ...real, listBackups: (command: BackupsCommand, hooks?: OperationHooks<never>) => real.listBackups({ ...command, ...(command.page !== undefined && { page: { ...command.page, limit: 4 } }) }, hooks) };
    const restore = restoreHandler({ config: { ...config, allowedEndpoints: [proxy.endpoint] }, logger, publish: async () => {}, operations });
    const requests: Record<string, unknown>[] = [];
    lambda.on(InvokeCommand).callsFake(async (input: { Payload: Uint8Array }) => {
      requests.push(decode(input.Payload) as Record<string, unknown>);
      return { StatusCode: 200, Payload: encode(await restore(decode(input.Payload), context())) };
    });
    try {
      for (const key of keys) await client.send(new PutObjectCommand({ Bucket: 'backups', Key: key, Body: Buffer.alloc(100, 7) }));
      const args = ['--json', 'tenants', 'backups', 'acme', '--in', 's3://backups/paged/', '--endpoint', proxy.endpoint, '--access-key', S3RVER_ACCESS_KEY, '--secret-key', 'test-secret-key'];
      const [l, r] = [await local(args), await remote(args)];
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const listing = JSON.parse(r.stdout) as { backups: unknown[]; otherObjects: number };
      expect(listing.backups.length + listing.otherObjects).toBe(24);
      expect({ ...listing, endpoint: undefined }).toEqual({ ...JSON.parse(l.stdout), endpoint: undefined });
      expect(requests.map((request) => request.after)).toEqual([undefined, 'acme/03.bin', 'acme/07.bin', 'acme/11.bin', 'acme/15.bin', 'acme/19.bin']);
      // The local listing's one request (24 keys), then one a page, of its own 4 keys.
      expect(proxy.requests.filter((request) => /[?&]list-type=2/.test(request.url))).toHaveLength(7);
      expect(proxy.listedKeys()).toBe(24 + 24);
    } finally {
      for (const key of keys) await client.send(new DeleteObjectCommand({ Bucket: 'backups', Key: key }));
      client.destroy();
      await proxy.stop();
    }
  });

  it('dry runs of backup and restore answer with the plan and no completion event', async () => {
    const backup = await remote(['--json', 'tenants', 'backup', 'acme', '--to', 's3://backups/backups/acme/5.tar.zst', '--dry-run', ...storage()]);
    expect(backup.status).toBe(0);
    expect(JSON.parse(backup.stdout)).toMatchObject({ operation: 'backup-plan', tenant: 'acme', destination: 'absent' });
    const restore = await remote(['tenants', 'restore', '--from', 's3://backups/backups/acme/4.tar.zst', '--dry-run', ...storage()]);
    expect(restore.status).toBe(3);
    expect(restore.stdout).toMatch(/the restore would be REFUSED: tenant "acme" already exists/);
    expect(invoked).toEqual(['openclaw-backup-backup', 'openclaw-backup-restore']);
    expect(eventBridge.commandCalls(PutEventsCommand)).toHaveLength(0);
  });

  it('tenants prune runs on the prune function: a dry run, then for real, with a completion event', async () => {
    const dry = await remote(['--json', 'tenants', 'prune', 'acme', '--in', 's3://backups/backups/acme/', '--keep-last', '2', '--dry-run', '--delete-if-match', ...storage()]);
    expect(dry.stderr).toBe('');
    expect(dry.status).toBe(0);
    expect(decode(lambda.commandCalls(InvokeCommand)[0]!.args[0].input.Payload as Uint8Array)).toMatchObject({ storage: { endpoint: server.endpoint, deleteIfMatch: true } });
    // 1.tar.zst is the newest verified backup: kept whatever the rules say.
    expect(JSON.parse(dry.stdout).remove.map((decision: { location: string }) => path.basename(decision.location))).toEqual(['2.tar.zst']);
    expect(eventBridge.commandCalls(PutEventsCommand)).toHaveLength(0);
    const real = await remote(['tenants', 'prune', 'acme', '--in', 's3://backups/backups/acme/', '--keep-last', '2', ...storage()]);
    expect(real.status).toBe(0);
    expect(real.stdout).toMatch(/^Kept 3 and removed 1 backup /);
    expect(invoked).toEqual(['openclaw-backup-prune', 'openclaw-backup-prune']);
    const events = eventBridge.commandCalls(PutEventsCommand).map((call) => call.args[0].input.Entries![0]!);
    expect(events.map((entry) => entry.DetailType)).toEqual(['OpenClaw Prune Succeeded']);
    expect(JSON.parse(events[0]!.Detail!)).toMatchObject({ tenant: 'acme', location: 's3://backups/backups/acme/', trigger: 'direct', kept: 3, removed: 1 });
  });

  it('refuses what the gateway does not allow, and --jobs with --all, as local mode would refuse a usage error', async () => {
    const outside = await remote(['tenants', 'prune', 'acme', '--in', 's3://backups/', '--keep-last', '1']);
    expect(outside.status).toBe(3);
    expect(outside.stderr).toMatch(/--in must be s3:\/\/backups\/backups\/…/);
    const otherBucket = await remote(['tenants', 'backups', 'acme', '--in', 's3://elsewhere/backups/']);
    expect(otherBucket.status).toBe(3);
    expect(otherBucket.stderr).toBe('openclaw: this gateway lists archives in s3://backups/backups/ only, not in bucket "elsewhere"\n');
    const pruneElsewhere = await remote(['tenants', 'prune', 'acme', '--in', 's3://elsewhere/backups/', '--keep-last', '1']);
    expect(pruneElsewhere.stderr).toBe('openclaw: this gateway prunes archives in s3://backups/backups/ only, not in bucket "elsewhere"\n');
    const localPath = await remote(['tenants', 'backups', 'acme', '--in', '/var/backups/']);
    expect(localPath.status).toBe(2);
    expect(localPath.stderr).toMatch(/--in must be s3:\/\/bucket\/prefix\//);
    const all = await remote(['tenants', 'backup', '--all', '--to', 's3://backups/backups/{tenant}/{date}.tar.zst', '--jobs', '2']);
    expect(all.status).toBe(2);
    expect(all.stderr).toMatch(/^openclaw: --jobs is for --all on this machine/);
    const skipping = await remote(['tenants', 'backup', '--all', '--to', 's3://backups/backups/{tenant}/{date}.tar.zst', '--skip-existing']);
    expect([skipping.status, skipping.stderr]).toEqual([2, 'openclaw: --skip-existing is for --all on this machine: a gateway queues a backup of every tenant (back up those missing by name)\n']);
    const raw = await remote(['tenants', 'backup', '--all', '--to', 's3://backups/backups/{tenant}/{date}.tar.zst', '--sqlite-raw-fallback']);
    expect([raw.status, raw.stderr]).toEqual([2, "openclaw: --sqlite-raw-fallback goes with --all on this machine: a gateway's queued backups take none (give it to each tenant's backup by name)\n"]);
  });
});

describe('answers larger than a Lambda response', () => {
  /** What Lambda answers for a function's result: the payload, or its own error over 6 MB. */
  const asLambda = (result: unknown) => {
    const payload = encode(result);
    return payload.length <= 6 * 1024 * 1024
      ? { StatusCode: 200, Payload: payload }
      : { StatusCode: 200, FunctionError: 'Unhandled', Payload: encode({ errorType: 'Function.ResponseSizeTooLarge', errorMessage: 'Response payload size exceeded maximum allowed payload size (6291456 bytes).' }) };
  };

  // 20,000 backups of acme among 5,000 objects of other tenants: 9 MB of JSON in one answer.
  const backups = Array.from({ length: 20_000 }, (_, n) => ({
    location: `s3://backups/backups/acme/${String(20_000 - n).padStart(5, '0')}.tar.zst`,
    name: `acme/${String(20_000 - n).padStart(5, '0')}.tar.zst`,
    tenant: 'acme',
    createdAt: new Date(JUNE_1 - n * 3_600_000).toISOString(),
    createdAtFrom: 'archive' as const,
    bytes: 548_718,
    modifiedAt: new Date(JUNE_1 - n * 3_600_000).toISOString(),
    etag: `"${'e5'.repeat(16)}"`,
    toolVersion: '0.1.0',
    manifestSha256: 'c7'.repeat(32),
    content: 'archive' as const,
  }));
  const others = Array.from({ length: 5_000 }, (_, n) => `beta/${String(n).padStart(5, '0')}.tar.zst`);
  /** The restore function over that store (a page inspects only its objects, by name), its requests recorded; `older`: deployed before pages. */
  const gateway = (older = false) => {
    const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });
    const objects = [...backups.map((entry) => ({ name: entry.name, entry })), ...others.map((name) => ({ name, entry: undefined }))].sort((a, b) => (a.name < b.name ? -1 : 1));
    const operations = {
      ...localOperations(base),
      listBackups: async (command: { page?: { after?: string; limit: number } }) => {
        const after = command.page?.after;
        const rest = objects.filter((object) => after === undefined || object.name > after);
        const page = command.page === undefined ? rest : rest.slice(0, command.page.limit);
        const entries = page.flatMap((object) => (object.entry === undefined ? [] : [object.entry]));
        return {
          operation: 'backups' as const,
          tenant: 'acme',
          location: 's3://backups/backups/',
          backups: entries.sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt)),
          otherObjects: page.length - entries.length,
          ...(page.length < rest.length && { next: page.at(-1)!.name }),
        };
      },
    };
    const restore = restoreHandler({ config, logger, publish: async () => {}, operations });
    const requests: Record<string, unknown>[] = [];
    lambda.on(InvokeCommand).callsFake(async (input: { Payload: Uint8Array }) => {
      const request = decode(input.Payload) as Record<string, unknown>;
      requests.push(request);
      if (older && 'pages' in request) return asLambda(failureResponse(new InvalidRequestError('backups request: unknown field "pages" (are the CLI and the gateway the same version?)')));
      return asLambda(await restore(request, context()));
    });
    return requests;
  };

  it('tenants backups of 20,000 backups reads the restore function\'s pages and lists every one, newest first, with its counts (before: the newest that fit)', async () => {
    expect(encode(backups).length).toBeGreaterThan(6 * 1024 * 1024);
    const requests = gateway();
    const text = await remote(['tenants', 'backups', 'acme', '--in', 's3://backups/backups/']);
    expect(text.stderr).toBe('');
    expect(text.status).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(20_003);
    expect(lines[0]).toBe('20,000 backups of "acme" in s3://backups/backups/, newest first:');
    expect(lines[2]).toMatch(/ s3:\/\/backups\/backups\/acme\/20000\.tar\.zst$/);
    expect(lines.at(-2)).toMatch(/ s3:\/\/backups\/backups\/acme\/00001\.tar\.zst$/);
    expect(lines.at(-1)).toMatch(/^\(and 5,000 other objects there: /);
    // 25,000 objects, 2,000 a page: each page goes on after the last object of the one before.
    expect(requests).toHaveLength(13);
    expect(requests.map((request) => request.after)).toEqual([undefined, ...Array.from({ length: 12 }, (_, n) => [...backups.map((entry) => entry.name), ...others].sort()[(n + 1) * 2_000 - 1])]);

    const json = await remote(['--json', 'tenants', 'backups', 'acme', '--in', 's3://backups/backups/']);
    expect(json.status).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ operation: 'backups', tenant: 'acme', location: 's3://backups/backups/', backups, otherObjects: 5_000 });
  });

  it('lists a prefix of more than 100,000 objects in pages, keeping only the tenant\'s; takes a next that sorts after in UTF-8 bytes (S3\'s order)', async () => {
    const entry = { location: 's3://backups/backups/acme/1.tar.zst', name: 'acme/1.tar.zst', tenant: 'acme', createdAt: '2026-06-01T00:00:00.000Z', createdAtFrom: 'archive', bytes: 10, modifiedAt: '2026-06-01T00:00:00.000Z', content: 'archive' };
    const page = (next?: string) => ({ operation: 'backups', tenant: 'acme', location: 's3://backups/backups/', backups: next === undefined ? [entry] : [], otherObjects: 40_000, ...(next !== undefined && { next }) });
    // In S3's order U+1F600 comes after U+FFFD; in JavaScript's (UTF-16 code units) before it.
    const nexts = ['acme/\ufffd', 'acme/\u{1f600}', 'beta/x', 'gamma/y'];
    const requests: Record<string, unknown>[] = [];
    lambda.on(InvokeCommand).callsFake(async (input: { Payload: Uint8Array }) => {
      requests.push(decode(input.Payload) as Record<string, unknown>);
      return { StatusCode: 200, Payload: encode(page(nexts[requests.length - 1])) };
    });
    const json = await remote(['--json', 'tenants', 'backups', 'acme', '--in', 's3://backups/backups/']);
    expect(json.stderr).toBe('');
    expect(json.status).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ backups: [entry], otherObjects: 200_000 });
    expect(requests.map((request) => request.after)).toEqual([undefined, 'acme/\ufffd', 'acme/\u{1f600}', 'beta/x', 'gamma/y']);
  });

  it('stops a listing of more than 100,000 backups of the tenant as a listing in one piece does, though no page holds them all', async () => {
    const entries = (from: number) =>
      Array.from({ length: 40_000 }, (_, n) => ({ location: `s3://backups/backups/acme/${from + n}.tar.zst`, name: `acme/${from + n}.tar.zst`, tenant: 'acme', bytes: 10, modifiedAt: '2026-06-01T00:00:00.000Z', content: 'archive' }));
    const requests: Record<string, unknown>[] = [];
    lambda.on(InvokeCommand).callsFake(async (input: { Payload: Uint8Array }) => {
      requests.push(decode(input.Payload) as Record<string, unknown>);
      const at = requests.length;
      return { StatusCode: 200, Payload: encode({ operation: 'backups', tenant: 'acme', location: 's3://backups/backups/', backups: entries(at * 40_000), otherObjects: 0, next: `acme/${at}` }) };
    });
    const text = await remote(['tenants', 'backups', 'acme', '--in', 's3://backups/backups/']);
    expect(text.stderr).toBe('openclaw: s3://backups/backups/ holds more than 100000 backups of "acme": give a narrower prefix or directory\n');
    expect(text.status).toBe(1);
    expect(requests).toHaveLength(3);
  });

  it('asks a gateway older than pages the old way: the newest that fit, and how many more there are', async () => {
    const requests = gateway(true);
    const text = await remote(['tenants', 'backups', 'acme', '--in', 's3://backups/backups/']);
    expect(text.stderr).toBe('');
    expect(text.status).toBe(0);
    expect(requests.map((request) => request.pages)).toEqual([true, undefined]);
    const lines = text.stdout.trimEnd().split('\n');
    const shown = lines.length - 4; // the heading, the table's header, the other objects, the closing note
    expect(shown).toBeGreaterThan(1000);
    expect(lines[0]).toBe(`20,000 backups of "acme" in s3://backups/backups/, the newest ${shown.toLocaleString('en-US')} first:`);
    expect(lines[2]).toMatch(/ s3:\/\/backups\/backups\/acme\/20000\.tar\.zst$/);
    expect(lines.at(-1)).toBe(
      `… and ${(20_000 - shown).toLocaleString('en-US')} older backups, left out of the gateway's answer (a Lambda response holds at most 6 MB; a gateway of this version answers in pages): run tenants backups without --stack to list them all, or prune them`,
    );

    const json = await remote(['--json', 'tenants', 'backups', 'acme', '--in', 's3://backups/backups/']);
    expect(json.status).toBe(0);
    const listing = JSON.parse(json.stdout) as { backups: { name: string }[]; omitted: number };
    expect(listing.backups.length + listing.omitted).toBe(20_000);
    expect(listing.backups.map((entry) => entry.name)).toEqual(backups.slice(0, listing.backups.length).map((entry) => entry.name));
  });
});

describe('a prune of more backups than one Lambda answer holds', () => {
  const asLambda = (result: unknown) => {
    const payload = encode(result);
    return payload.length <= 6 * 1024 * 1024
      ? { StatusCode: 200, Payload: payload }
      : { StatusCode: 200, FunctionError: 'Unhandled', Payload: encode({ errorType: 'Function.ResponseSizeTooLarge', errorMessage: 'Response payload size exceeded maximum allowed payload size (6291456 bytes).' }) };
  };
  const decision = (n: number, reasons: string[]) => ({
    location: `s3://backups/backups/acme/${new Date(JUNE_1 - n * 3_600_000).toISOString()}.tar.zst`,
    createdAt: new Date(JUNE_1 - n * 3_600_000).toISOString(),
    bytes: 1_000,
    reasons,
  });
  // 45,000 backups, 7 kept: a first prune of a long history (7.4 MB of JSON).
  const result = {
    operation: 'prune' as const,
    tenant: 'acme',
    location: 's3://backups/backups/acme/',
    dryRun: false,
    policy: { last: 7 },
    keep: Array.from({ length: 7 }, (_, n) => decision(n, ['last 7'])),
    remove: Array.from({ length: 44_993 }, (_, n) => decision(45_000 - n, ['no keep rule matches'])),
    removed: 44_993,
    skipped: [],
    bytesRemoved: 44_993_000,
    deletion: { checked: 'etag-head' as const },
    notes: [],
  };
  const gateway = (older = false, answer: object = result) => {
    const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });
    let pruned = 0;
    const operations = { ...localOperations(base), prune: async () => (pruned++, answer as unknown as PruneResult) };
    const prune = pruneHandler({ config, logger, publish: async () => {}, operations });
    lambda.on(InvokeCommand).callsFake(async (input: { Payload: Uint8Array }) => {
      const request = decode(input.Payload);
      // A gateway deployed before `bounded`: its request check knew no such field, and pruned nothing.
      if (older && isRecord(request) && 'bounded' in request) return asLambda(failureResponse(new InvalidRequestError('prune request: unknown field "bounded" (are the CLI and the gateway the same version?)')));
      return asLambda(await prune(request, context()));
    });
    return () => pruned;
  };
  const args = ['tenants', 'prune', 'acme', '--in', 's3://backups/backups/acme/', '--keep-last', '7'];

  it('answers with the removed it can hold and counts the rest, instead of failing after the prune ran', async () => {
    expect(encode(result).length).toBeGreaterThan(6 * 1024 * 1024);
    const pruned = gateway();
    const text = await remote(args);
    expect(text.stderr).toBe('');
    expect(text.status).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('Kept 7 and removed 44993 backups (42.9 MiB) of "acme" in s3://backups/backups/acme/');
    const shown = lines.filter((line) => /^\s+removed\s/.test(line)).length;
    expect(shown).toBeGreaterThan(10_000);
    expect(lines.at(-1)).toBe(
      `  … and ${(44_993 - shown).toLocaleString('en-US')} later removed and 7 older kept, left out of the gateway's answer (a Lambda response holds at most 6 MB)`,
    );
    const json = JSON.parse((await remote(['--json', ...args])).stdout) as PruneResult;
    expect(json.remove.length + json.removeOmitted!).toBe(44_993);
    expect(json.remove.map((entry) => entry.location)).toEqual(result.remove.slice(0, json.remove.length).map((entry) => entry.location));
    expect(json.removeOmittedBytes).toBe(json.removeOmitted! * 1_000);
    expect(pruned()).toBe(2);
  });

  it('answers a scheduled prune of as many within a Lambda response too: a larger answer, which no one reads, would fail the invocation after the prune ran, and Lambda would retry it', async () => {
    const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });
    const operations = { ...localOperations(base), prune: async () => result as unknown as PruneResult };
    const prune = pruneHandler({ config, logger, publish: async () => {}, operations });
    const event = { source: 'openclaw.cron', tenant: 'acme', cronName: 'nightly-prune', time: '2026-06-10T04:30:00Z', eventId: 'e-big', command: { tenant: 'acme', in: 's3://backups/backups/acme/', keep: { last: 7 } } };
    const answer = (await prune(event, context())) as PruneResult;
    expect(encode(answer).length).toBeLessThan(6 * 1024 * 1024);
    expect(answer).toMatchObject({ removed: 44_993, removeOmitted: 44_993 - answer.remove.length });
  });

  it('counts a direct prune in its metrics, a refused one as refused, and not a dry run, which removes nothing', async () => {
    const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });
    const metrics = { record: vi.fn(), count: vi.fn() };
    let answer: object = result;
    const operations = { ...localOperations(base), prune: async () => answer as unknown as PruneResult };
    const prune = pruneHandler({ config, logger, publish: async () => {}, operations, metrics });
    const request = { tenant: 'acme', in: 's3://backups/backups/acme/', keep: { last: 7 } };
    await prune(request, context());
    answer = { ...result, dryRun: true };
    await prune({ ...request, dryRun: true }, context());
    await prune({ ...request, dryRun: true, in: 's3://other/acme/' }, context());
    await prune({ ...request, in: 's3://other/acme/' }, context());
    expect(metrics.record.mock.calls.map(([record]) => record)).toEqual([
      expect.objectContaining({ operation: 'prune', outcome: 'succeeded', trigger: 'direct', tenant: 'acme' }),
      expect.objectContaining({ operation: 'prune', outcome: 'refused', trigger: 'direct', tenant: 'acme', errorCode: expect.any(String) }),
    ]);
  });

  it('counts the skipped among the removals left out as skipped, not removed, and names them', async () => {
    // The two oldest chosen changed since the listing (written again): chosen, not removed; their decisions are left out of the answer, `skipped` is not.
    const skipped = result.remove.slice(-2).map((decision) => ({ location: decision.location, reason: 'changed since it was listed (written again?): not removed' }));
    gateway(false, { ...result, removed: 44_991, bytesRemoved: 44_991_000, skipped });
    const text = await remote(args);
    expect(text.status, text.stderr).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('Kept 7 and removed 44991 backups (42.9 MiB) of "acme" in s3://backups/backups/acme/');
    const shown = lines.filter((line) => /^\s+removed\s/.test(line)).length;
    expect(lines.slice(-3)).toEqual([
      `  … and ${(44_991 - shown).toLocaleString('en-US')} later removed and 2 later skipped (below) and 7 older kept, left out of the gateway's answer (a Lambda response holds at most 6 MB)`,
      ...skipped.map((skip) => `  skipped ${skip.location}: ${skip.reason}`),
    ]);
  });

  it('answers a prune whose every removal was skipped (a store whose If-Match never matches) within a Lambda response: the first skips and notes named, the rest counted', async () => {
    const reason = 'changed since it was listed (written again?): not removed';
    const skipped = result.remove.map((decision) => ({ location: decision.location, reason }));
    const notes = ['the store keeps every version', ...skipped.map((skip) => `${skip.location} ${skip.reason}`)];
    const everySkipped = { ...result, removed: 0, bytesRemoved: 0, skipped, notes };
    const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });
    const operations = { ...localOperations(base), prune: async () => everySkipped as unknown as PruneResult };
    const prune = pruneHandler({ config, logger, publish: async () => {}, operations });
    const answer = (await prune({ tenant: 'acme', in: 's3://backups/backups/acme/', keep: { last: 7 }, bounded: true }, context())) as PruneResult;
    expect(encode(answer).length).toBeLessThan(6 * 1024 * 1024);
    // Every removal shown carries its skip; the skips of those left out are named up to 100, then counted.
    expect(answer.skipped.slice(0, answer.remove.length)).toEqual(skipped.slice(0, answer.remove.length));
    expect(answer.skipped.length).toBe(answer.remove.length + 100);
    expect(answer.skipped.length + answer.skippedOmitted!).toBe(44_993);
    expect(answer.notes).toEqual([...notes.slice(0, 100), `${(notes.length - 100).toLocaleString('en-US')} more notes not shown (a Lambda response holds at most 6 MB)`]);

    gateway(false, everySkipped);
    const text = await remote(args);
    expect(text.status, text.stderr).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('Kept 7 and removed 0 backups (0 B) of "acme" in s3://backups/backups/acme/');
    const shown = lines.filter((line) => /^\s+skipped\s+\d/.test(line)).length;
    expect(shown).toBe(answer.remove.length);
    expect(lines.some((line) => /^\s+removed\s/.test(line))).toBe(false);
    expect(lines).toContain(`  … and ${(44_993 - shown).toLocaleString('en-US')} later skipped (the first 100 below) and 7 older kept, left out of the gateway's answer (a Lambda response holds at most 6 MB)`);
    expect(lines.filter((line) => line.startsWith('  skipped s3://'))).toHaveLength(100);
  });

  it('counts the kept that no rule counts among those left out, in its first line', async () => {
    const keep = result.keep.map((decision, n) => (n < 5 ? decision : { ...decision, reasons: ['not shown whole: …; counted by no rule'], uncounted: true as const }));
    gateway(false, { ...result, keep });
    const text = await remote(args);
    expect(text.status, text.stderr).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('Kept 7 (2 counted by no rule: see WHY) and removed 44993 backups (42.9 MiB) of "acme" in s3://backups/backups/acme/');
    expect(lines.at(-1)).toMatch(/ and 7 older kept, left out of the gateway's answer/);
  });

  it('asks a gateway older than bounded answers again without, once it refused the field before pruning', async () => {
    const pruned = gateway(true);
    const run = await remote(args);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/^openclaw: openclaw-backup-prune could not answer: its answer is larger than the 6 MB a Lambda response may hold; the prune itself may have finished/);
    expect(pruned()).toBe(1);
  });
});

describe('tenants list of more tenants than one Lambda answer holds', () => {
  const asLambda = (result: unknown) => {
    const payload = encode(result);
    return payload.length <= 6 * 1024 * 1024
      ? { StatusCode: 200, Payload: payload }
      : { StatusCode: 200, FunctionError: 'Unhandled', Payload: encode({ errorType: 'Function.ResponseSizeTooLarge', errorMessage: 'Response payload size exceeded maximum allowed payload size (6291456 bytes).' }) };
  };
  const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });
  const names = Array.from({ length: 60_000 }, (_, n) => `t${String(n).padStart(31, '0')}`);
  const summary = (name: string) => ({ name, state: 'ok' as const, bytes: 548_718, files: 36, lastModified: new Date(JUNE_1) });
  /** The list function over 60,000 tenants (only the page asked for is summarized), its requests recorded. */
  const gateway = (older = false, skipped: { name: string; reason: string }[] = [], tenants = names) => {
    const operations = {
      ...localOperations(base),
      listNames: async () => ({ tenants, recovered: [] }),
      listSkipped: async () => skipped,
      listSummaries: async (page: { after?: string; limit?: number } = {}) => ({ tenants: tenants.filter((name) => page.after === undefined || name > page.after).slice(0, page.limit).map(summary), recovered: [] }),
    };
    const list = listHandler({ config, logger, operations });
    const requests: unknown[] = [];
    lambda.on(InvokeCommand).callsFake(async (input: { Payload: Uint8Array }) => {
      const request = decode(input.Payload);
      requests.push(request);
      // A gateway deployed before pages: its request check knew no such field.
      if (older && isRecord(request) && 'pages' in request) return asLambda(failureResponse(new InvalidRequestError('list request: unknown field "pages" (are the CLI and the gateway the same version?)')));
      // ... and it answered the whole listing, however large: Lambda refused one over 6 MB.
      if (older && isRecord(request)) return asLambda({ tenants: (request.names === true ? await operations.listNames() : await operations.listSummaries()).tenants, ...skippedFields(await operations.listSkipped()) });
      return asLambda(await list(request, context()));
    });
    return requests;
  };

  it('reads the list function\'s pages: every tenant once, in order (before: over 6 MB, the command failed)', async () => {
    // The whole list in one answer: what Lambda refused.
    expect(encode({ tenants: names.map(summary) }).length).toBeGreaterThan(6 * 1024 * 1024);
    const requests = gateway();
    const json = await remote(['--json', 'tenants', 'list']);
    expect(json.stderr).toBe('');
    expect(json.status).toBe(0);
    const listed = JSON.parse(json.stdout) as { tenants: { name: string; bytes: number; lastModified: string }[] };
    expect(listed.tenants.map((tenant) => tenant.name)).toEqual(names);
    expect(listed.tenants[59_999]).toMatchObject({ bytes: 548_718, lastModified: new Date(JUNE_1).toISOString() });
    expect(requests).toEqual([{ names: false, pages: true }, ...[1, 2, 3, 4, 5].map((page) => ({ names: false, pages: true, after: names[page * 10_000 - 1] }))]);

    requests.length = 0;
    const text = await remote(['tenants', 'list', '--names']);
    expect(text.status).toBe(0);
    expect(text.stdout).toBe(`${names.join('\n')}\n`);
    // The skipped tenants came with the names: no second listing.
    expect(requests).toHaveLength(6);
  });

  it('names the skipped tenants a page has room for and counts the others, whatever their number (before: over 6 MB every page failed, or the function crashed)', async () => {
    // 60,000 symlinked tenant directories: their reasons alone are 8 MB of JSON.
    const skipped = names.map((name) => ({ name: `s${name}`, reason: `tenant "s${name}" in /mnt/tenants is a symlink; refusing to follow it` }));
    expect(encode(skipped).length).toBeGreaterThan(6 * 1024 * 1024);
    for (const tenants of [names.slice(0, 3), []]) {
      const requests = gateway(false, skipped, tenants);
      const text = await remote(['tenants', 'list', '--names']);
      expect(text.status).toBe(1);
      expect(text.stdout).toBe(tenants.map((name) => `${name}\n`).join(''));
      const notices = text.stderr.trimEnd().split('\n');
      const named = notices.length - 1;
      expect(notices.at(-2)).toBe(`openclaw: tenant "s${names[named - 1]}" in /mnt/tenants is a symlink; refusing to follow it: skipped`);
      expect(named).toBeGreaterThan(5_000);
      expect(notices[0]).toBe(`openclaw: tenant "s${names[0]}" in /mnt/tenants is a symlink; refusing to follow it: skipped`);
      expect(notices.at(-1)).toBe(
        `openclaw: ${(60_000 - named).toLocaleString('en-US')} more tenants skipped, not named in the gateway's answer (a Lambda response holds at most 6 MB): run tenants list without --stack on a host that mounts the tenant volume to name them`,
      );
      expect(requests).toHaveLength(1);
      const json = await remote(['--json', 'tenants', 'list']);
      expect(json.status).toBe(1);
      const listed = JSON.parse(json.stdout) as { tenants: { name: string }[]; skipped: { name: string }[]; skippedOmitted: number };
      expect(listed.tenants.map((tenant) => tenant.name)).toEqual(tenants);
      expect(listed.skipped.map((tenant) => tenant.name)).toEqual(skipped.slice(0, named).map((tenant) => tenant.name));
      expect(listed.skippedOmitted).toBe(60_000 - named);
    }
  });

  it('asks a gateway older than pages for the whole list, as before, and says why one too large for its answer fails', async () => {
    const requests = gateway(true);
    const big = await remote(['tenants', 'list', '--names']);
    expect(big.status).toBe(0);
    expect(big.stdout.split('\n')).toHaveLength(60_001);
    expect(requests).toEqual([{ names: true, pages: true }, { names: true }]);
    const summaries = await remote(['tenants', 'list']);
    expect(summaries.status).toBe(1);
    expect(summaries.stderr).toBe(
      'openclaw: openclaw-backup-list could not answer: its answer is larger than the 6 MB a Lambda response may hold; run the command without --stack, on a host that mounts the tenant volume (tenants list) or reaches the bucket; ' +
        'the gateway was deployed by an older version, whose openclaw-backup-list cannot answer in pages: deploy this version\'s to list every tenant through it\n',
    );
  });
});

describe('a backup whose notes are many and not ASCII', () => {
  it('answers within 6 MB of UTF-8, its note lists cut, instead of failing after storing the archive', async () => {
    // 25,000 FIFOs (never archived: each a skipped note) named in CJK, three bytes a character:
    // 3.2 million characters of JSON, 6.9 million bytes.
    const tenantDir = path.join(base, 'cjk');
    mkdirSync(path.join(tenantDir, 'workspace'), { recursive: true });
    writeFileSync(path.join(tenantDir, 'config.json'), '{}');
    const name = '数据备份恢复测试文件名称'.repeat(6);
    const fifos = Array.from({ length: 25_000 }, (_, n) => path.join(tenantDir, 'workspace', `${name}${n}`));
    for (let at = 0; at < fifos.length; at += 2000) execFileSync('mkfifo', fifos.slice(at, at + 2000));
    const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });
    const backup = backupHandler({ config, logger, publish: async () => {} });
    const asLambda = (result: unknown) => {
      const payload = encode(result);
      return payload.length <= 6 * 1024 * 1024
        ? { StatusCode: 200, Payload: payload }
        : { StatusCode: 200, FunctionError: 'Unhandled', Payload: encode({ errorType: 'Function.ResponseSizeTooLarge', errorMessage: 'Response payload size exceeded maximum allowed payload size (6291456 bytes).' }) };
    };
    lambda.on(InvokeCommand).callsFake(async (input: { Payload: Uint8Array }) => asLambda(await backup(decode(input.Payload), context())));

    const result = await remote(['--json', 'tenants', 'backup', 'cjk', '--to', 's3://backups/backups/cjk/1.tar.zst', ...storage()]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const answer = JSON.parse(result.stdout) as { files: number; skipped: { path: string; reason: string }[] };
    expect(answer.files).toBe(1);
    expect(answer.skipped).toHaveLength(1001);
    expect(answer.skipped.at(-1)).toEqual({ path: '…', reason: '24000 more not shown (the Lambda response is limited to 6 MB)' });
  }, 60_000);
});

describe('a scheduled prune', () => {
  /** A prune handler whose metrics are a mock and whose log lines (stderr) are kept. */
  function pruneHandlerWatchingItsLog() {
    const logged: Record<string, unknown>[] = [];
    const logger = new Logger({ serviceName: 'test', logLevel: 'INFO' });
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => (logged.push(JSON.parse(String(chunk)) as Record<string, unknown>), true));
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const metrics = { record: vi.fn(), count: vi.fn() };
    return { logged, metrics, handler: pruneHandler({ config, logger, publish: async () => {}, metrics }) };
  }

  it('runs the payload a cron rule hands the prune function, and rethrows a failure for Lambda', async () => {
    const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });
    const publish = completionPublisher(new EventBridgeClient({ region: 'eu-west-1' }), 'bus', logger);
    const metrics = { record: vi.fn(), count: vi.fn() };
    const handler = pruneHandler({ config, logger, publish, metrics });
    const scheduled = parseScheduledCommand(`openclaw tenants prune acme --in s3://backups/backups/acme/ --keep-last 1 --endpoint ${server.endpoint} --delete-if-match`, { tenant: 'acme', stack: 'openclaw-backup' });
    expect(scheduled.command.storage).toEqual({ endpoint: server.endpoint, deleteIfMatch: true });
    // What EventBridge's input transformer makes of the template (the keys the CLI never sends).
    const transformer = cronTargetInput('acme', 'nightly-prune', { ...scheduled.command, storage: { ...scheduled.command.storage, accessKey: S3RVER_ACCESS_KEY, secretKey: 'test-secret-key' } });
    const event = JSON.parse(transformer.InputTemplate.replace('<time>', '"2026-06-10T04:30:00Z"').replace('<eventId>', '"e-1"'));
    const result = (await handler(event, context())) as { removed: number; keep: readonly unknown[] };
    expect(result.removed).toBe(1);
    expect(result.keep).toHaveLength(2); // the newest, and the newest verified
    const entry = eventBridge.commandCalls(PutEventsCommand).at(-1)!.args[0].input.Entries![0]!;
    expect(JSON.parse(entry.Detail!)).toMatchObject({ trigger: 'schedule', cronName: 'nightly-prune', removed: 1 });

    const refused = JSON.parse(transformer.InputTemplate.replace('<time>', '"x"').replace('<eventId>', '"e-2"').replace('"in":"s3://backups/backups/acme/"', '"in":"s3://other/"'));
    await expect(handler(refused, context())).rejects.toBeInstanceOf(ScheduledOperationError);
    expect(metrics.record.mock.calls.map(([record]) => record)).toEqual([
      expect.objectContaining({ operation: 'prune', outcome: 'succeeded', trigger: 'schedule', tenant: 'acme', cronName: 'nightly-prune' }),
      expect.objectContaining({ operation: 'prune', outcome: 'failed', trigger: 'schedule', tenant: 'acme', cronName: 'nightly-prune', errorCode: expect.any(String) }),
    ]);
  });

  it('answers a scheduled event that does not read as a prune without throwing: Lambda\'s retries would get the same event', async () => {
    const { logged, metrics, handler } = pruneHandlerWatchingItsLog();
    const scheduled = parseScheduledCommand(`openclaw tenants prune acme --in s3://backups/backups/acme/ --keep-last 1 --endpoint ${server.endpoint}`, { tenant: 'acme', stack: 'openclaw-backup' });
    const transformer = cronTargetInput('acme', 'nightly-prune', scheduled.command);
    const event = JSON.parse(transformer.InputTemplate.replace('<time>', '"2026-06-10T04:30:00Z"').replace('<eventId>', '"e-4"')) as Record<string, unknown>;
    try {
      for (const unreadable of [{ ...event, tenant: 'beta' }, { source: 'aws.events', 'detail-type': 'Scheduled Event', time: '2026-06-10T04:30:00Z', detail: {} }]) {
        logged.length = 0;
        const answer = await handler(unreadable, context());
        expect(answer).toEqual({ ok: false, error: expect.objectContaining({ code: 'INVALID_REQUEST' }) });
        expect(logged.find((line) => line.message === 'scheduled prune not retried')).toMatchObject({ level: 'ERROR', errorCode: 'INVALID_REQUEST', reason: expect.stringMatching(/the same event retried/) });
      }
      // Still a failure someone must hear of: an answered invocation never reaches Lambda's Errors (prune-errors), so the Failed metric (prune-failures).
      expect(metrics.record.mock.calls.map(([record]) => record)).toEqual([
        expect.objectContaining({ operation: 'prune', outcome: 'failed', trigger: 'schedule', errorCode: 'INVALID_REQUEST' }),
        expect.objectContaining({ operation: 'prune', outcome: 'failed', trigger: 'schedule', errorCode: 'INVALID_REQUEST' }),
      ]);
    } finally {
      vi.restoreAllMocks();
    }
  });

  it("answers one its invocation's deadline stopped before it removed anything, without throwing: Lambda's retries would list into the same deadline", async () => {
    const { logged, metrics, handler } = pruneHandlerWatchingItsLog();
    const scheduled = parseScheduledCommand(`openclaw tenants prune acme --in s3://backups/backups/acme/ --keep-last 1 --endpoint ${server.endpoint}`, { tenant: 'acme', stack: 'openclaw-backup' });
    const transformer = cronTargetInput('acme', 'nightly-prune', { ...scheduled.command, storage: { ...scheduled.command.storage, accessKey: S3RVER_ACCESS_KEY, secretKey: 'test-secret-key' } });
    const event = JSON.parse(transformer.InputTemplate.replace('<time>', '"2026-06-10T04:30:00Z"').replace('<eventId>', '"e-3"'));
    try {
      // No time left at all: stopped before its listing's first request.
      const answer = await handler(event, lambdaContext({ remaining: 0 }));
      expect(answer).toEqual({ ok: false, error: expect.objectContaining({ code: 'ABORTED', message: expect.stringMatching(/^stopped: the Lambda invocation was about to time out/) }) });
      expect(logged.find((line) => line.message === 'scheduled prune not retried')).toMatchObject({ level: 'ERROR', errorCode: 'ABORTED' });
      expect(metrics.record).toHaveBeenCalledExactlyOnceWith(expect.objectContaining({ operation: 'prune', outcome: 'failed', trigger: 'schedule', tenant: 'acme', errorCode: 'ABORTED', cronName: 'nightly-prune' }));
    } finally {
      vi.restoreAllMocks();
    }
  });
});
