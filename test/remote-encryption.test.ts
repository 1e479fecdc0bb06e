// Encryption in remote mode, through the real handlers: `cron add` with --encrypt-to and
// --recipients-file in its --cmd stores the recipients (public keys) in the schedule's
// payload, and the scheduled backup the schedule triggers (its Input with Scheduler's
// placeholders filled in, into the real backup handler; s3rver as S3) stores an age file the `age` CLI
// decrypts with either key. Every tenant's backup, by `tenants backup --all --encrypt-to` or
// by a `cron add --all --encrypt-to` schedule, goes through the real fan-out, its work queue
// messages (a mocked queue) and the real queue handler, and stores age files the `age` CLI
// decrypts and the CLI restores with --identity. A remote restore reads its identity from Secrets Manager
// (mocked) by --identity-secret, never from the payload; secrets outside the stack's prefix
// and --identity files are refused in remote mode.

import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { DescribeRuleCommand, EventBridgeClient, ListRulesCommand, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { CreateScheduleCommand, SchedulerClient } from '@aws-sdk/client-scheduler';
import { GetFunctionCommand, InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendMessageBatchCommand, SQSClient, type SendMessageBatchCommandInput } from '@aws-sdk/client-sqs';
import { Logger } from '@aws-lambda-powertools/logger';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

import { createSampleTenant } from '../scripts/sample-tenant.js';
import { completionPublisher } from '../functions/events.js';
import { fanOutHandler } from '../functions/fanout-handler.js';
import { backupHandler } from '../functions/backup-handler.js';
import { listHandler } from '../functions/list-handler.js';
import { restoreHandler } from '../functions/restore-handler.js';
import { listFunctionPages } from '../functions/list-client.js';
import { workQueueHandler } from '../functions/queue-handler.js';
import { secretIdentityReader } from '../functions/identity-secrets.js';
import type { LambdaContext } from '../functions/lambda-context.js';
import { generateIdentity } from '../shared/age/keys.js';
import { readFunctionConfig, type FunctionConfig } from '../shared/control-plane/function-config.js';
import { localOperations, type TenantOperations } from '../shared/operations.js';
import { runMain } from './helpers/run-main.js';
import { S3RVER_ACCESS_KEY, startS3Server, type S3TestServer } from './helpers/s3-server.js';
import { describeTree, sh, tempDir } from './helpers/tree.js';
import { lambdaContext } from './helpers/lambda-context.js';

const exec = promisify(execFile);
const lambda = mockClient(LambdaClient);
const events = mockClient(EventBridgeClient);
const secrets = mockClient(SecretsManagerClient);
const scheduler = mockClient(SchedulerClient);
const dynamodb = mockClient(DynamoDBClient);
const sqs = mockClient(SQSClient);
const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const decode = (payload: Uint8Array | undefined) => JSON.parse(new TextDecoder().decode(payload)) as unknown;

const dir = tempDir('openclaw-remote-age-');
const base = path.join(dir.path, 'mnt-tenants');
const keys = { alice: path.join(dir.path, 'alice.txt'), bob: path.join(dir.path, 'bob.txt') };
const recipient = { alice: '', bob: '' };
const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });
let server: S3TestServer;
let config: FunctionConfig;

const context = () => lambdaContext();

async function download(url: string, file: string): Promise<void> {
  await exec('/usr/bin/aws', ['s3', 'cp', '--endpoint-url', server.endpoint, url, file], {
    env: { ...process.env, AWS_ACCESS_KEY_ID: S3RVER_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: 'x', AWS_DEFAULT_REGION: 'us-east-1' },
  });
}

async function upload(file: string, url: string): Promise<void> {
  await exec('/usr/bin/aws', ['s3', 'cp', '--endpoint-url', server.endpoint, file, url], {
    env: { ...process.env, AWS_ACCESS_KEY_ID: S3RVER_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: 'x', AWS_DEFAULT_REGION: 'us-east-1' },
  });
}

beforeAll(async () => {
  createSampleTenant(path.join(base, 'acme'), { sessions: 2, memoryRows: 20 });
  for (const name of ['alice', 'bob'] as const) {
    sh(`age-keygen -o '${keys[name]}' 2>/dev/null`);
    recipient[name] = sh(`age-keygen -y '${keys[name]}'`).toString().trim();
  }
  server = await startS3Server({ bucket: 'backups' });
  config = { tenantsDir: base, backupBucket: 'backups', allowedSourceBuckets: [], allowedEndpoints: [server.endpoint], stackPrefix: 'openclaw-backup', abortMarginMs: 1000 };
});
afterAll(async () => {
  lambda.restore();
  events.restore();
  secrets.restore();
  scheduler.restore();
  dynamodb.restore();
  sqs.restore();
  await server.dispose();
  dir.cleanup();
});
beforeEach(() => {
  lambda.reset();
  events.reset();
  secrets.reset();
  scheduler.reset();
  dynamodb.reset();
  sqs.reset();
  vi.stubEnv('OPENCLAW_STACK', '');
  vi.stubEnv('AWS_REGION', 'us-east-1');
  // The execution role's credentials as Lambda sets them (s3rver takes any).
  vi.stubEnv('AWS_ACCESS_KEY_ID', S3RVER_ACCESS_KEY);
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'role-secret');
  events.on(PutEventsCommand).resolves({ FailedEntryCount: 0 });
});
afterEach(() => vi.unstubAllEnvs());

/** What Scheduler sends for a schedule's Input: its context attributes filled in. */
function scheduledInput(input: string, time: string, executionId: string): unknown {
  return JSON.parse(input.split('<aws.scheduler.scheduled-time>').join(time).split('<aws.scheduler.execution-id>').join(executionId));
}

describe('a scheduled backup with --encrypt-to', () => {
  it('stores the recipients in the schedule, and the backup the schedule runs is an age file both keys open', async () => {
    lambda.on(GetFunctionCommand).resolves({
      Configuration: {
        FunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:openclaw-backup-backup',
        Environment: { Variables: { OPENCLAW_BACKUP_BUCKET: 'backups', OPENCLAW_ALLOWED_ENDPOINTS: server.endpoint } },
      },
    });
    events.on(DescribeRuleCommand).rejects(Object.assign(new Error('no rule'), { name: 'ResourceNotFoundException' }));
    events.on(ListRulesCommand).resolves({ Rules: [] });
    scheduler.on(CreateScheduleCommand).resolves({ ScheduleArn: 'arn:aws:scheduler:us-east-1:123456789012:schedule/openclaw-backup/acme.nightly' });
    // cron add asks the backup function whether it takes --encrypt-to (gateway-fields.ts): the real handler answers.
    const backup = backupHandler({ config, logger, publish: completionPublisher(new EventBridgeClient({}), undefined, logger) });
    lambda.on(InvokeCommand).callsFake(async (input: { Payload: Uint8Array }) => ({ StatusCode: 200, Payload: encode(await backup(decode(input.Payload), context())) }));
    dynamodb.on(PutItemCommand).resolves({});
    const recipientsFile = path.join(dir.path, 'escrow.txt');
    writeFileSync(recipientsFile, `# escrow key\n${recipient.bob}\n`);
    const cmd = `openclaw tenants backup acme --to s3://backups/acme/$(date +%F).tar.zst.age --endpoint ${server.endpoint} --encrypt-to ${recipient.alice} --recipients-file ${recipientsFile}`;
    const added = await runMain(['--stack', 'openclaw-backup', 'cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'nightly', '--cmd', cmd]);
    expect(added.stderr).toBe('');
    expect(added.status).toBe(0);

    const input = scheduler.commandCalls(CreateScheduleCommand)[0]!.args[0].input.Target!.Input!;
    const payload = scheduledInput(input, '2026-06-03T03:00:00Z', 'execution-1') as { command: Record<string, unknown> };
    // Public keys only, canonical, the file's read when the cron was added.
    expect(payload.command.encryptTo).toEqual([recipient.alice, recipient.bob]);
    expect(input).not.toMatch(/AGE-SECRET-KEY/);

    const result = (await backupHandler({ config, logger, publish: completionPublisher(new EventBridgeClient({}), undefined, logger) })(payload, context())) as unknown as Record<string, unknown>;
    expect(result.operation).toBe('backup');
    expect(result.encryptedTo).toEqual([recipient.alice, recipient.bob]);
    const file = path.join(dir.path, 'scheduled.tar.zst.age');
    await download('s3://backups/acme/2026-06-03.tar.zst.age', file);
    for (const key of Object.values(keys)) {
      expect(sh(`age -d -i '${key}' '${file}' | zstd -dq | tar -t`).toString()).toMatch(/tenants\/acme\/\.openclaw-backup-manifest\.json/);
    }
  });

  it('refuses a schedule that would store plaintext archives under names ending in .age (recipients forgotten)', async () => {
    const one = await runMain(['--stack', 'openclaw-backup', 'cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'n', '--cmd', 'openclaw tenants backup acme --to s3://backups/acme/$(date +%F).tar.zst.age']);
    expect(one.status).toBe(2);
    expect(one.stderr).toMatch(/ends in "\.age" but nothing encrypts the archive/);
    const all = await runMain(['--stack', 'openclaw-backup', 'cron', 'add', '--all', '--schedule', '0 3 * * *', '--name', 'n', '--to', 's3://backups/{tenant}/{date}.tar.zst.age']);
    expect(all.status).toBe(2);
    expect(all.stderr).toMatch(/ends in "\.age" but nothing encrypts the archive/);
    expect(scheduler.commandCalls(CreateScheduleCommand)).toHaveLength(0);
  });

  it('refuses --pipe in a scheduled --cmd with a pointer to --encrypt-to', async () => {
    const result = await runMain(['--stack', 'openclaw-backup', 'cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'n', '--cmd', 'openclaw tenants backup acme --to s3://backups/k --pipe "age -r x"']);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/give --encrypt-to age1/);
  });
});

describe('every tenant, encrypted, through the fan-out and the work queue', () => {
  const allBase = path.join(dir.path, 'all-tenants');
  const allConfig = (): FunctionConfig => ({ ...config, tenantsDir: allBase });
  const QUEUE = 'https://sqs.us-east-1.amazonaws.com/123456789012/openclaw-backup-work';
  let fanOut: (event: unknown, context: LambdaContext) => Promise<unknown>;

  beforeAll(() => {
    for (const name of ['one', 'two']) createSampleTenant(path.join(allBase, name), { sessions: 1, memoryRows: 8 });
  });

  beforeEach(() => {
    // The gateway: the fan-out lists the tenants through the (real) list function and sends
    // its messages to a mocked queue.
    fanOut = fanOutHandler({
      config: allConfig(),
      logger,
      sqs: new SQSClient({ region: 'us-east-1' }),
      queueUrl: QUEUE,
      listPage: listFunctionPages(new LambdaClient({ region: 'us-east-1' }), 'openclaw-backup-list'),
      now: () => new Date('2026-06-03T03:00:00Z'),
    });
    const handlers: Record<string, (event: unknown, context: LambdaContext) => Promise<unknown>> = {
      'openclaw-backup-fanout': fanOut,
      'openclaw-backup-list': listHandler({ config: allConfig(), logger }),
    };
    lambda.on(InvokeCommand).callsFake(async (input: { FunctionName: string; Payload: Uint8Array }) => ({
      StatusCode: 200,
      Payload: encode(await handlers[input.FunctionName]!(decode(input.Payload), context())),
    }));
    sqs.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => ({ Successful: input.Entries!.map((entry) => ({ Id: entry.Id!, MessageId: 'm', MD5OfMessageBody: '' })) }));
  });

  /** The backup function drains what the fan-out queued (its role's writes go to s3rver here). */
  async function drainQueue(): Promise<unknown> {
    const local = localOperations(allBase);
    const operations: TenantOperations = {
      ...local,
      backup: (command, hooks) => local.backup({ ...command, storage: { endpoint: server.endpoint, accessKey: S3RVER_ACCESS_KEY, secretKey: 'x' } }, hooks),
    };
    const publish = completionPublisher(new EventBridgeClient({ region: 'us-east-1' }), undefined, logger);
    const bodies = sqs.commandCalls(SendMessageBatchCommand).flatMap((call) => call.args[0].input.Entries!.map((entry) => entry.MessageBody!));
    const Records = bodies.map((body, index) => ({ messageId: `m-${index}`, body, eventSource: 'aws:sqs', attributes: { ApproximateReceiveCount: '1' } }));
    return workQueueHandler({ config: allConfig(), logger, publish, operations })({ Records }, context());
  }

  /** Each tenant's archive under `prefix` is an age file both keys decrypt, holding that tenant. */
  async function expectAgeFiles(prefix: string): Promise<void> {
    for (const tenant of ['one', 'two']) {
      const file = path.join(dir.path, `${prefix.replace(/\W/g, '-')}-${tenant}.tar.zst.age`);
      await download(`s3://backups/${prefix}/${tenant}/2026-06-03.tar.zst.age`, file);
      for (const key of Object.values(keys)) {
        expect(sh(`age -d -i '${key}' '${file}' | zstd -dq | tar -t`).toString()).toContain(`tenants/${tenant}/.openclaw-backup-manifest.json`);
      }
    }
  }

  it('tenants backup --all --encrypt-to: every queued backup stores an age file; the CLI restores it with --identity', async () => {
    const recipientsFile = path.join(dir.path, 'all-escrow.txt');
    writeFileSync(recipientsFile, `${recipient.bob}\n`);
    const template = 's3://backups/direct/{tenant}/{date}.tar.zst.age';
    const queued = await runMain(['--stack', 'openclaw-backup', 'tenants', 'backup', '--all', '--to', template, '--encrypt-to', recipient.alice, '--recipients-file', recipientsFile]);
    expect(queued.stderr).toBe('');
    expect(queued.status).toBe(0);
    expect(queued.stdout).toMatch(/^Queued 2 of 2 tenants for backup on openclaw-backup/);
    expect(queued.stdout).toContain(`  each archive encrypted with age to 2 recipients: ${recipient.alice}, ${recipient.bob}\n`);
    expect(await drainQueue()).toEqual({ batchItemFailures: [] });
    await expectAgeFiles('direct');

    const url = 's3://backups/direct/two/2026-06-03.tar.zst.age';
    const restored = await runMain(['--tenants-dir', allBase, 'tenants', 'restore', '--from', url, '--as', 'two-r', '--identity', keys.bob, '--endpoint', server.endpoint]);
    expect(restored.stderr).toBe('');
    expect(restored.status).toBe(0);
    const tree = (name: string) => describeTree(path.join(allBase, name), { exclude: (rel) => rel.startsWith('pty') });
    expect(tree('two-r')).toEqual(tree('two'));
    rmSync(path.join(allBase, 'two-r'), { recursive: true, force: true });
    const payloads = lambda.commandCalls(InvokeCommand).map((call) => new TextDecoder().decode(call.args[0].input.Payload as Uint8Array));
    expect(payloads.join('\n')).not.toMatch(/AGE-SECRET-KEY/);
  });

  it('on a stack with encryptTo, a fan-out naming no recipients queues every backup with the stack key, and they are stored encrypted', async () => {
    const stackFanOut = fanOutHandler({
      config: { ...allConfig(), encryptTo: [recipient.bob] },
      logger,
      sqs: new SQSClient({ region: 'us-east-1' }),
      queueUrl: QUEUE,
      listPage: listFunctionPages(new LambdaClient({ region: 'us-east-1' }), 'openclaw-backup-list'),
      now: () => new Date('2026-06-03T03:00:00Z'),
    });
    const answer = await stackFanOut({ source: 'openclaw.fanout', version: 1, to: 's3://backups/stack-all/{tenant}/{date}.tar.zst' }, context());
    expect(answer).toMatchObject({ queued: 2, encryptedTo: [recipient.bob] });
    const bodies = sqs.commandCalls(SendMessageBatchCommand).flatMap((call) => call.args[0].input.Entries!.map((entry) => JSON.parse(entry.MessageBody!) as Record<string, unknown>));
    expect(bodies.map((body) => body.encryptTo)).toEqual([[recipient.bob], [recipient.bob]]);
    expect(await drainQueue()).toEqual({ batchItemFailures: [] });
    for (const tenant of ['one', 'two']) {
      const file = path.join(dir.path, `stack-all-${tenant}`);
      await download(`s3://backups/stack-all/${tenant}/2026-06-03.tar.zst`, file);
      expect(sh(`age -d -i '${keys.bob}' '${file}' | zstd -dq | tar -t`).toString()).toContain(`tenants/${tenant}/.openclaw-backup-manifest.json`);
    }
  });

  it('cron add --all --encrypt-to stores the recipients in the schedule; the run it starts stores age files', async () => {
    lambda.on(GetFunctionCommand, { FunctionName: 'openclaw-backup-backup' }).resolves({
      Configuration: { FunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:openclaw-backup-backup', Environment: { Variables: { OPENCLAW_BACKUP_BUCKET: 'backups' } } },
    });
    lambda.on(GetFunctionCommand, { FunctionName: 'openclaw-backup-fanout' }).resolves({ Configuration: { FunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:openclaw-backup-fanout' } });
    scheduler.on(CreateScheduleCommand).resolves({ ScheduleArn: 'arn:aws:scheduler:us-east-1:123456789012:schedule/openclaw-backup/_all.nightly' });
    dynamodb.on(PutItemCommand).resolves({});
    const added = await runMain([
      '--stack', 'openclaw-backup', 'cron', 'add', '--all', '--schedule', '0 3 * * *', '--name', 'nightly',
      '--to', 's3://backups/scheduled/{tenant}/{date}.tar.zst.age', '--encrypt-to', recipient.alice, '--encrypt-to', recipient.bob,
    ]);
    expect(added.stderr).toBe('');
    expect(added.status).toBe(0);
    const input = scheduler.commandCalls(CreateScheduleCommand)[0]!.args[0].input.Target!.Input!;
    expect(input).not.toMatch(/AGE-SECRET-KEY/);
    const payload = scheduledInput(input, '2026-06-03T03:00:00Z', 'execution-all');
    expect(payload).toMatchObject({ source: 'openclaw.fanout', cronName: 'nightly', encryptTo: [recipient.alice, recipient.bob] });

    // Scheduler invokes the fan-out with the schedule's Input.
    const answer = await fanOut(payload, context());
    expect(answer).toMatchObject({ queued: 2, runId: 'execution-all', encryptedTo: [recipient.alice, recipient.bob] });
    expect(await drainQueue()).toEqual({ batchItemFailures: [] });
    await expectAgeFiles('scheduled');
  });
});

describe('remote backup and restore with encryption', () => {
  const storage = () => ['--endpoint', server.endpoint];
  const remote = (...args: string[]) => runMain(['--stack', 'openclaw-backup', ...args]);

  beforeEach(() => {
    const publish = completionPublisher(new EventBridgeClient({ region: 'us-east-1' }), undefined, logger);
    const identitySecrets = secretIdentityReader(new SecretsManagerClient({ region: 'us-east-1' }), 'openclaw-backup');
    const handlers: Record<string, (event: unknown, context: LambdaContext) => Promise<unknown>> = {
      'openclaw-backup-backup': backupHandler({ config, logger, publish }),
      'openclaw-backup-restore': restoreHandler({ config, logger, publish, identitySecrets }),
      'openclaw-backup-list': listHandler({ config, logger }),
    };
    lambda.on(InvokeCommand).callsFake(async (input: { FunctionName: string; Payload: Uint8Array }) => ({
      StatusCode: 200,
      Payload: encode(await handlers[input.FunctionName]!(decode(input.Payload), context())),
    }));
    secrets.on(GetSecretValueCommand, { SecretId: 'openclaw-backup/backup-key' }).resolves({ SecretString: readFileSync(keys.alice, 'utf8') });
    secrets.on(GetSecretValueCommand, { SecretId: 'openclaw-backup/missing' }).rejects(Object.assign(new Error('not found'), { name: 'ResourceNotFoundException' }));
  });

  it('sends recipients, restores with the identity from Secrets Manager, and never sends an identity', async () => {
    const url = 's3://backups/acme/remote.tar.zst.age';
    const backup = await remote('tenants', 'backup', 'acme', '--to', url, '--encrypt-to', recipient.alice, ...storage());
    expect(backup.stderr).toBe('');
    expect(backup.status).toBe(0);
    const file = path.join(dir.path, 'remote.tar.zst.age');
    await download(url, file);
    expect(sh(`age -d -i '${keys.alice}' '${file}' | zstd -dq | tar -t`).toString()).toMatch(/tenants\/acme\//);

    const restore = await remote('tenants', 'restore', '--from', url, '--as', 'acme-r', '--identity-secret', 'openclaw-backup/backup-key', ...storage());
    expect(restore.stderr).toBe('');
    expect(restore.status).toBe(0);
    expect(describeTree(path.join(base, 'acme-r'), { exclude: (rel) => rel.startsWith('pty') })).toEqual(describeTree(path.join(base, 'acme'), { exclude: (rel) => rel.startsWith('pty') }));
    expect(secrets.commandCalls(GetSecretValueCommand).map((call) => call.args[0].input)).toEqual([{ SecretId: 'openclaw-backup/backup-key' }]);
    const payloads = lambda.commandCalls(InvokeCommand).map((call) => new TextDecoder().decode(call.args[0].input.Payload as Uint8Array));
    expect(payloads.join('\n')).not.toMatch(/AGE-SECRET-KEY/);
    expect(payloads.some((payload) => payload.includes('"identitySecret":"openclaw-backup/backup-key"'))).toBe(true);
  });

  it('verifies and dry-runs a restore of an encrypted archive with the identity from Secrets Manager', async () => {
    const url = 's3://backups/acme/remote-verify.tar.zst.age';
    const backup = await remote('tenants', 'backup', 'acme', '--to', url, '--encrypt-to', recipient.alice, ...storage());
    expect(backup.status).toBe(0);
    const verified = await remote('--json', 'tenants', 'verify', '--from', url, '--no-record', '--identity-secret', 'openclaw-backup/backup-key', ...storage());
    expect(verified.stderr).toBe('');
    expect(verified.status).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ operation: 'verify', tenant: 'acme', verified: true, decrypted: true });
    const plan = await remote('--json', 'tenants', 'restore', '--from', url, '--as', 'acme-plan', '--dry-run', '--identity-secret', 'openclaw-backup/backup-key', ...storage());
    expect(plan.stderr).toBe('');
    expect(plan.status).toBe(0);
    expect(JSON.parse(plan.stdout)).toMatchObject({ operation: 'restore-plan', tenant: 'acme-plan', decrypted: true });
    const noIdentity = await remote('tenants', 'verify', '--from', url, '--no-record', ...storage());
    expect(noIdentity.status).toBe(2);
    expect(noIdentity.stderr).toMatch(/is encrypted with age/);
    const identityFile = await remote('tenants', 'verify', '--from', url, '--identity', keys.alice, ...storage());
    expect(identityFile.status).toBe(2);
    expect(identityFile.stderr).toMatch(/identities never travel to the gateway/);
  });

  it('refuses: no identity, --identity in remote mode, a secret outside the prefix, a missing secret; --identity-secret locally', async () => {
    const url = 's3://backups/acme/remote.tar.zst.age';
    const none = await remote('tenants', 'restore', '--from', url, '--as', 'acme-x', ...storage());
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/is encrypted with age .*--identity-secret NAME/);
    // Neither --identity FILE nor --pipe works in remote mode: not offered.
    expect(none.stderr).not.toMatch(/--pipe|--identity KEY_FILE/);

    const file = await remote('tenants', 'restore', '--from', url, '--as', 'acme-x', '--identity', keys.alice, ...storage());
    expect(file.status).toBe(2);
    expect(file.stderr).toMatch(/identities never travel to the gateway: store it in AWS Secrets Manager under openclaw-backup\//);

    const outside = await remote('tenants', 'restore', '--from', url, '--as', 'acme-x', '--identity-secret', 'prod/db-password', ...storage());
    expect(outside.status).toBe(2);
    expect(outside.stderr).toMatch(/reads identities only from secrets named openclaw-backup\/…, not "prod\/db-password"/);
    const missing = await remote('tenants', 'restore', '--from', url, '--as', 'acme-x', '--identity-secret', 'openclaw-backup/missing', ...storage());
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/the secret "openclaw-backup\/missing" does not exist/);
    expect(secrets.commandCalls(GetSecretValueCommand).map((call) => call.args[0].input.SecretId)).toEqual(['openclaw-backup/missing']);

    const local = await runMain(['--tenants-dir', base, 'tenants', 'restore', '--from', url, '--as', 'acme-x', '--identity-secret', 'openclaw-backup/backup-key', ...storage()]);
    expect(local.status).toBe(2);
    expect(local.stderr).toMatch(/--identity-secret is read by the gateway's restore function/);
  });

  it('refuses the secret key itself given as --identity-secret before anything is sent, without quoting it; so does the function', async () => {
    const secretKey = readFileSync(keys.alice, 'utf8').split('\n').find((line) => line.startsWith('AGE-SECRET-KEY-1'))!;
    const given = await remote('--json', 'tenants', 'restore', '--from', 's3://backups/acme/remote.tar.zst.age', '--as', 'acme-x', '--identity-secret', secretKey, ...storage());
    expect(given.status).toBe(2);
    expect(JSON.parse(given.stdout).error.message).toMatch(/--identity-secret takes the name of the Secrets Manager secret holding the identity, not the secret key itself/);
    expect(given.stdout + given.stderr).not.toContain(secretKey.slice(20));
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(0);
    // A request that bypasses the CLI: refused while parsing, before it is logged or a secret is asked for.
    const logged: string[] = [];
    const watched = new Logger({ serviceName: 'test', logLevel: 'SILENT' });
    for (const level of ['debug', 'info', 'warn', 'error'] as const) vi.spyOn(watched, level).mockImplementation((...args: unknown[]) => void logged.push(JSON.stringify(args)));
    const publish = completionPublisher(new EventBridgeClient({ region: 'us-east-1' }), undefined, watched);
    const handler = restoreHandler({ config, logger: watched, publish, identitySecrets: secretIdentityReader(new SecretsManagerClient({ region: 'us-east-1' }), 'openclaw-backup') });
    const answer = JSON.stringify(await handler({ from: 's3://backups/acme/remote.tar.zst.age', as: 'acme-x', identitySecret: ` ${secretKey}` }, context()));
    expect(answer).toMatch(/not the secret key itself/);
    expect(answer + logged.join('\n')).not.toContain(secretKey.slice(20));
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(0);
  });

  it('an age file the gateway cannot read (passphrase, SSH key, armored, a header past the limits) is refused with what works in remote mode: no --pipe, which is refused there', async () => {
    // Headers as age writes them (the file is refused at its header, the payload does not matter).
    const b64 = (bytes: number) => randomBytes(bytes).toString('base64').replace(/=+$/, '');
    const stanza = (line: string) => Buffer.concat([Buffer.from(`age-encryption.org/v1\n${line}\n${b64(32)}\n--- ${b64(32)}\n`), randomBytes(1000)]);
    const files: [string, Buffer, RegExp][] = [
      ['passphrase', stanza(`-> scrypt ${b64(16)} 18`), /^openclaw: .*encrypted with a passphrase \(scrypt\), which is not supported; .*/],
      ['ssh', stanza(`-> ssh-ed25519 ${b64(4)} ${b64(32)}`), /^openclaw: wrong key: .*ssh-ed25519\); only X25519 identities .*/],
      ['armored', Buffer.from(`-----BEGIN AGE ENCRYPTED FILE-----\n${b64(120)}\n-----END AGE ENCRYPTED FILE-----\n`), /^openclaw: .* is an ASCII-armored age file \(age -a\).*/],
      ['limits', Buffer.concat([Buffer.from(`age-encryption.org/v1\n${'-> grease\n\n'.repeat(4097)}`), randomBytes(1000)]), /^openclaw: .*more than 4096 recipient stanzas \(limit\).*/],
    ];
    for (const [name, bytes, message] of files) {
      const url = `s3://backups/acme/hint-${name}.tar.zst.age`;
      const file = path.join(dir.path, `hint-${name}.tar.zst.age`);
      writeFileSync(file, bytes);
      await upload(file, url);
      for (const command of [['restore', '--as', 'acme-hint'], ['verify', '--no-record']]) {
        const run = await remote('tenants', ...command, '--from', url, '--identity-secret', 'openclaw-backup/backup-key', ...storage());
        expect(run.status, `${name} ${command[0]}`).not.toBe(0);
        expect(run.stderr).toMatch(message);
        expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
        // --pipe is refused in remote mode: the hint names the way that works there, the age CLI on this machine.
        expect(run.stderr).not.toMatch(/decrypt it with --pipe/);
        expect(run.stderr).toContain(`download it (aws s3 cp ${url} FILE; remote mode runs no --pipe) and restore it without --stack, through --pipe "age -d`);
      }
    }
    expect(existsSync(path.join(base, 'acme-hint'))).toBe(false);
  });

  it('maps Secrets Manager refusals to one-line errors', async () => {
    secrets.on(GetSecretValueCommand, { SecretId: 'openclaw-backup/denied' }).rejects(Object.assign(new Error('denied'), { name: 'AccessDeniedException' }));
    const read = secretIdentityReader(new SecretsManagerClient({ region: 'us-east-1' }), 'openclaw-backup');
    await expect(read('openclaw-backup/denied')).rejects.toMatchObject({ code: 'ACCESS_DENIED', outcome: 'failed' });
    secrets.on(GetSecretValueCommand, { SecretId: 'openclaw-backup/not-a-key' }).resolves({ SecretString: 'hunter2' });
    const error = (await read('openclaw-backup/not-a-key').catch((caught: unknown) => caught)) as Error;
    expect(error).toMatchObject({ code: 'AGE_BAD_IDENTITY' });
    expect(error.message).not.toContain('hunter2');
    await expect(secretIdentityReader(new SecretsManagerClient({ region: 'us-east-1' }), undefined)('openclaw-backup/backup-key')).rejects.toMatchObject({ code: 'AGE_BAD_IDENTITY' });
  });
});

describe("a stack with encryptTo (OPENCLAW_ENCRYPT_TO): every archive it stores is encrypted", () => {
  const stackConfig = (): FunctionConfig => ({ ...config, encryptTo: [recipient.bob] });
  const publish = () => completionPublisher(new EventBridgeClient({ region: 'us-east-1' }), undefined, logger);

  /** The age file at `key` opens with each of `openers` and holds acme; `others` cannot open it. */
  async function expectAgeFile(key: string, openers: (keyof typeof keys)[], others: (keyof typeof keys)[] = []): Promise<void> {
    const file = path.join(dir.path, `stack-${key.replace(/\W/g, '-')}`);
    await download(`s3://backups/${key}`, file);
    expect(readFileSync(file).subarray(0, 21).toString()).toBe('age-encryption.org/v1');
    for (const name of openers) expect(sh(`age -d -i '${keys[name]}' '${file}' | zstd -dq | tar -t`).toString()).toContain('tenants/acme/.openclaw-backup-manifest.json');
    for (const name of others) expect(() => sh(`age -d -i '${keys[name]}' '${file}' 2>/dev/null`)).toThrow();
  }

  it('a one-off backup request naming no recipients stores an age file the stack key opens (direct, dry run says so)', async () => {
    const handler = backupHandler({ config: stackConfig(), logger, publish: publish() });
    const request = { tenant: 'acme', to: 's3://backups/stack/direct.tar.zst', storage: { endpoint: server.endpoint } };
    const result = (await handler(request, context())) as unknown as Record<string, unknown>;
    expect(result).toMatchObject({ operation: 'backup', encryptedTo: [recipient.bob] });
    await expectAgeFile('stack/direct.tar.zst', ['bob'], ['alice']);
    // A dry run of a name ending in .age and no recipients: the stack encrypts it, so nothing to refuse (without encryptTo: refused).
    const dry = { tenant: 'acme', to: 's3://backups/stack/dry.tar.zst.age', storage: { endpoint: server.endpoint }, dryRun: true };
    expect(await handler(dry, context())).not.toHaveProperty('refusal');
    expect(await backupHandler({ config, logger, publish: publish() })(dry, context())).toMatchObject({ ok: false, error: { message: expect.stringContaining('nothing encrypts the archive') } });
  });

  it('the CLI in remote mode says the archive it asked for in plaintext was encrypted to the stack key', async () => {
    const handler = backupHandler({ config: stackConfig(), logger, publish: publish() });
    lambda.on(InvokeCommand).callsFake(async (input: { Payload: Uint8Array }) => ({ StatusCode: 200, Payload: encode(await handler(decode(input.Payload), context())) }));
    const backup = await runMain(['--stack', 'openclaw-backup', 'tenants', 'backup', 'acme', '--to', 's3://backups/stack/cli.tar.zst', '--endpoint', server.endpoint]);
    expect(backup.stderr).toBe('');
    expect(backup.status).toBe(0);
    expect(backup.stdout).toContain(`  encrypted with age to 1 recipient: ${recipient.bob}\n`);
    await expectAgeFile('stack/cli.tar.zst', ['bob'], ['alice']);
    // Its name says .tar.zst; the restore goes by the file's first bytes and asks for the key.
    const restore = (...more: string[]) => runMain(['--tenants-dir', base, 'tenants', 'restore', '--from', 's3://backups/stack/cli.tar.zst', '--as', 'acme-stack', '--endpoint', server.endpoint, ...more]);
    const noKey = await restore();
    expect(noKey.status).not.toBe(0);
    expect(noKey.stderr).toMatch(/identity/);
    expect(noKey.stderr.trim().split('\n')).toHaveLength(1);
    const restored = await restore('--identity', keys.bob);
    expect(restored.stderr).toBe('');
    expect(restored.status).toBe(0);
    const tree = (name: string) => describeTree(path.join(base, name), { exclude: (rel) => rel.startsWith('pty') });
    expect(tree('acme-stack')).toEqual(tree('acme'));
    rmSync(path.join(base, 'acme-stack'), { recursive: true, force: true });
  });

  it('a request naming other recipients gets the stack key too: both open the archive', async () => {
    const handler = backupHandler({ config: stackConfig(), logger, publish: publish() });
    const request = { tenant: 'acme', to: 's3://backups/stack/both.tar.zst.age', storage: { endpoint: server.endpoint }, encryptTo: [recipient.alice] };
    expect(await handler(request, context())).toMatchObject({ operation: 'backup', encryptedTo: [recipient.alice, recipient.bob] });
    await expectAgeFile('stack/both.tar.zst.age', ['alice', 'bob']);
  });

  it('a queued backup without recipients (a fan-out run, a schedule made before the stack had encryptTo) is stored encrypted', async () => {
    const body = JSON.stringify({ version: 1, kind: 'backup', tenant: 'acme', to: 's3://backups/stack/queued.tar.zst', run: { id: 'run-1', time: '2026-06-03T03:00:00.000Z', template: 's3://backups/stack/queued.tar.zst' } });
    const local = localOperations(base);
    const operations: TenantOperations = {
      ...local,
      backup: (command, hooks) => local.backup({ ...command, storage: { endpoint: server.endpoint, accessKey: S3RVER_ACCESS_KEY, secretKey: 'x' } }, hooks),
    };
    const answer = await workQueueHandler({ config: stackConfig(), logger, publish: publish(), operations })({ Records: [{ messageId: 'm-1', body, eventSource: 'aws:sqs', attributes: { ApproximateReceiveCount: '1' } }] }, context());
    expect(answer).toEqual({ batchItemFailures: [] });
    await expectAgeFile('stack/queued.tar.zst', ['bob'], ['alice']);
  });

  it('a request naming 64 recipients besides the stack key is refused in one line naming the stack key; repeated keys count once', async () => {
    const handler = backupHandler({ config: stackConfig(), logger, publish: publish() });
    const others = Array.from({ length: 64 }, () => generateIdentity().recipient.text);
    const request = { tenant: 'acme', to: 's3://backups/stack/many.tar.zst.age', storage: { endpoint: server.endpoint } };
    const refused = (await handler({ ...request, encryptTo: others }, context())) as unknown as { ok: boolean; error: { message: string } };
    expect(refused).toMatchObject({ ok: false, error: { message: expect.stringContaining(`encrypts every backup to its key ${recipient.bob} too`) } });
    expect(refused.error.message).toContain('makes 65, at most 64: name at most 63 others');
    expect(refused.error.message).not.toContain('\n');
    // 63 others and one of them again: with the stack key 64 distinct keys, stored.
    const fits = [...others.slice(0, 63), others[0]!];
    const stored = (await handler({ ...request, encryptTo: fits }, context())) as unknown as { encryptedTo: string[] };
    expect(stored).toMatchObject({ operation: 'backup' });
    expect(stored.encryptedTo).toHaveLength(64);
    await expectAgeFile('stack/many.tar.zst.age', ['bob'], ['alice']);
  });

  it('without encryptTo a request naming none is stored in plaintext, as before', async () => {
    const handler = backupHandler({ config, logger, publish: publish() });
    await handler({ tenant: 'acme', to: 's3://backups/stack/plain.tar.zst', storage: { endpoint: server.endpoint } }, context());
    const file = path.join(dir.path, 'stack-plain');
    await download('s3://backups/stack/plain.tar.zst', file);
    expect(sh(`zstd -dq < '${file}' | tar -t`).toString()).toContain('tenants/acme/.openclaw-backup-manifest.json');
  });

  it('cron add --stack takes a name ending in .age without --encrypt-to when the stack encrypts every backup; its runs are age files', async () => {
    lambda.on(GetFunctionCommand).resolves({
      Configuration: {
        FunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:openclaw-backup-backup',
        Environment: { Variables: { OPENCLAW_BACKUP_BUCKET: 'backups', OPENCLAW_ALLOWED_ENDPOINTS: server.endpoint, OPENCLAW_ENCRYPT_TO: recipient.bob } },
      },
    });
    events.on(DescribeRuleCommand).rejects(Object.assign(new Error('no rule'), { name: 'ResourceNotFoundException' }));
    events.on(ListRulesCommand).resolves({ Rules: [] });
    scheduler.on(CreateScheduleCommand).resolves({ ScheduleArn: 'arn:aws:scheduler:us-east-1:123456789012:schedule/openclaw-backup/acme.stack' });
    dynamodb.on(PutItemCommand).resolves({});
    const handler = backupHandler({ config: stackConfig(), logger, publish: publish() });
    lambda.on(InvokeCommand).callsFake(async (input: { Payload: Uint8Array }) => ({ StatusCode: 200, Payload: encode(await handler(decode(input.Payload), context())) }));
    const cmd = `openclaw tenants backup acme --to s3://backups/stack/$(date +%F).tar.zst.age --endpoint ${server.endpoint}`;
    const added = await runMain(['--stack', 'openclaw-backup', 'cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'stack', '--cmd', cmd]);
    expect(added.stderr).toBe('');
    expect(added.status).toBe(0);
    const payload = scheduledInput(scheduler.commandCalls(CreateScheduleCommand)[0]!.args[0].input.Target!.Input!, '2026-06-03T03:00:00Z', 'execution-stack');
    expect(await handler(payload, context())).toMatchObject({ operation: 'backup', encryptedTo: [recipient.bob] });
    await expectAgeFile('stack/2026-06-03.tar.zst.age', ['bob'], ['alice']);
  });

  it('the functions refuse to start with a recipient they cannot read in OPENCLAW_ENCRYPT_TO, naming it', () => {
    expect(() => readFunctionConfig({ OPENCLAW_ENCRYPT_TO: `${recipient.bob},age1nope` })).toThrow(/^OPENCLAW_ENCRYPT_TO: .*age1nope/);
    expect(readFunctionConfig({ OPENCLAW_ENCRYPT_TO: ` ${recipient.bob} , ${recipient.alice},${recipient.bob}` }).encryptTo).toEqual([recipient.bob, recipient.alice]);
    expect(readFunctionConfig({}).encryptTo).toBeUndefined();
  });
});
