// Version skew between the CLI and a deployed gateway (shared/control-plane/gateway-fields.ts):
// `cron add` asks the target function's own parser before storing a payload with a field added
// since the first gateway with schedules, and refuses in one line (exit 2, no schedule) what an
// older function would refuse at every run; a direct command's "unknown field" refusal names
// the fix. The older functions' answers are those the functions bundled from e64c466 (12-05,
// before --sse) and 618ef76 (12-04, the first with schedules) give, recorded from their
// bundles; the current ones are the real handlers, whose field checks change nothing.

import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { DescribeRuleCommand, EventBridgeClient, ListRulesCommand, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { GetFunctionCommand, InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { CreateScheduleCommand, SchedulerClient } from '@aws-sdk/client-scheduler';
import { SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { Logger } from '@aws-lambda-powertools/logger';
import { mockClient } from 'aws-sdk-client-mock';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { fanOutHandler } from '../functions/fanout-handler.js';
import { backupHandler } from '../functions/backup-handler.js';
import { pruneHandler } from '../functions/prune-handler.js';
import type { LambdaContext } from '../functions/lambda-context.js';
import { generateIdentity } from '../shared/age/keys.js';
import { ADDED_FIELDS, FIELD_CHECK_RUN_ID, FIELD_CHECK_TENANT, addedFieldsOf, olderGatewayError, refusedFields } from '../shared/control-plane/gateway-fields.js';
import { BACKUP_COMMAND_FIELDS, FANOUT_FIELDS, PRUNE_COMMAND_FIELDS, STORAGE_KEYS, errorFromBody } from '../shared/control-plane/protocol.js';
import { runMain, stubRemoteCaller } from './helpers/run-main.js';
import { tempDir } from './helpers/tree.js';

const scheduler = mockClient(SchedulerClient);
const dynamodb = mockClient(DynamoDBClient);
const events = mockClient(EventBridgeClient);
const lambda = mockClient(LambdaClient);
const sqs = mockClient(SQSClient);
const ARN = (role: string) => `arn:aws:lambda:eu-west-1:123456789012:function:openclaw-backup-${role}`;
const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value)) as never;
const decode = (payload: Uint8Array | undefined) => JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>;
const refusal = (message: string) => ({ ok: false, error: { code: 'INVALID_REQUEST', outcome: 'usage', message } });
const SAME = ' (are the CLI and the gateway the same version?)';

/** What older functions answer, word for word (their bundles, run with these requests). */
const OLDER = {
  /** e64c466's backup function, asked with --sse. */
  backupSse: refusal(`backup request storage: unknown field "sse"${SAME}`),
  /** e64c466's fan-out, asked with --storage-class. */
  fanOutStorage: refusal(`fan-out request: unknown field "storage"${SAME}`),
  /** 618ef76's backup function, asked with --encrypt-to. */
  backupEncryptTo: refusal(`backup request: unknown field "encryptTo"${SAME}`),
  /** 618ef76's prune function, asked with --delete-if-match. */
  pruneDeleteIfMatch: refusal(`prune request storage: unknown field "deleteIfMatch"${SAME}`),
};

const recipient = generateIdentity().recipient.text;
const invoked = () => lambda.commandCalls(InvokeCommand).map((call) => ({ name: call.args[0].input.FunctionName, payload: decode(call.args[0].input.Payload as Uint8Array) }));
const created = () => scheduler.commandCalls(CreateScheduleCommand).map((call) => call.args[0].input);
const addTenant = (cmd: string) => runMain(['--stack', 'openclaw-backup', 'cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'nightly', '--cmd', cmd]);
const addAll = (...flags: string[]) =>
  runMain(['--stack', 'openclaw-backup', 'cron', 'add', '--all', '--schedule', '0 3 * * *', '--name', 'nightly', '--to', 's3://my-bucket/backups/{tenant}/{date}.tar.zst', ...flags]);

beforeEach(() => {
  for (const client of [scheduler, dynamodb, events, lambda, sqs]) client.reset();
  stubRemoteCaller();
  const variables = { OPENCLAW_BACKUP_BUCKET: 'my-bucket' };
  for (const role of ['backup', 'fanout', 'prune']) {
    lambda.on(GetFunctionCommand, { FunctionName: `openclaw-backup-${role}` }).resolves({ Configuration: { FunctionArn: ARN(role), Environment: { Variables: variables } } });
  }
  events.on(DescribeRuleCommand).rejects(Object.assign(new Error('Rule does not exist.'), { name: 'ResourceNotFoundException' }));
  events.on(ListRulesCommand).resolves({ Rules: [] });
  scheduler.on(CreateScheduleCommand).resolves({ ScheduleArn: 'arn:aws:scheduler:eu-west-1:123456789012:schedule/openclaw-backup/x' });
  dynamodb.on(PutItemCommand).resolves({});
});
afterEach(() => vi.unstubAllEnvs());
afterAll(() => {
  for (const client of [scheduler, dynamodb, events, lambda, sqs]) client.restore();
});

describe('cron add against a function older than a field of its payload', () => {
  it('--sse in a tenant\'s --cmd: refused in one line (exit 2) naming the flag and the fix, no schedule; the function was asked with a dry run no tenant can match', async () => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: encode(OLDER.backupSse) });
    const result = await addTenant('openclaw tenants backup acme --to s3://my-bucket/acme/$(date +%F).tar.zst --sse AES256');
    expect(result.status).toBe(2);
    expect(result.stderr).toBe(
      'openclaw: openclaw-backup-backup was deployed by an older version that does not take --sse, so it would refuse this cron at every run: update the stack (cdk deploy), then add the cron again\n',
    );
    expect(created()).toEqual([]);
    expect(invoked()).toEqual([
      { name: 'openclaw-backup-backup', payload: { tenant: FIELD_CHECK_TENANT, to: expect.stringMatching(/^s3:\/\/my-bucket\/acme\/\d{4}-\d\d-\d\d\.tar\.zst$/), storage: { sse: 'AES256' }, dryRun: true } },
    ]);
  });

  it('--encrypt-to in a tenant\'s --cmd, against the first backup function with schedules', async () => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: encode(OLDER.backupEncryptTo) });
    const result = await runMain(['--json', '--stack', 'openclaw-backup', 'cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'nightly', '--cmd', `openclaw tenants backup acme --to s3://my-bucket/acme/$(date +%F).tar.zst.age --encrypt-to ${recipient}`]);
    expect(result.status).toBe(2);
    expect(JSON.parse(result.stdout)).toEqual({ error: { code: 'REMOTE_UNSUPPORTED', message: expect.stringMatching(/^openclaw-backup-backup was deployed by an older version that does not take --encrypt-to, .*update the stack \(cdk deploy\)/) } });
    expect(created()).toEqual([]);
  });

  it('cron add --all --storage-class --encrypt-to against a fan-out older than storage: names --storage-class only, no schedule', async () => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: encode(OLDER.fanOutStorage) });
    const result = await addAll('--storage-class', 'STANDARD_IA', '--encrypt-to', recipient);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/^openclaw: openclaw-backup-fanout was deployed by an older version that does not take --storage-class, so it would refuse this cron at every run: update the stack \(cdk deploy\), then add the cron again\n$/);
    expect(created()).toEqual([]);
    // A direct fan-out (no cronName: a refusal is not retried) with a run ID no run has: nothing is listed or queued.
    expect(invoked()).toEqual([
      { name: 'openclaw-backup-fanout', payload: { source: 'openclaw.fanout', version: 1, to: 's3://my-bucket/backups/{tenant}/{date}.tar.zst', encryptTo: [recipient], storage: { storageClass: 'STANDARD_IA' }, runId: FIELD_CHECK_RUN_ID } },
    ]);
  });

  it('a prune cron with --delete-if-match against a prune function older than it', async () => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: encode(OLDER.pruneDeleteIfMatch) });
    const result = await addTenant('openclaw tenants prune acme --in s3://my-bucket/acme/ --keep-daily 7 --delete-if-match');
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/^openclaw: openclaw-backup-prune was deployed by an older version that does not take --delete-if-match, /);
    expect(created()).toEqual([]);
    expect(invoked()).toEqual([{ name: 'openclaw-backup-prune', payload: { tenant: FIELD_CHECK_TENANT, in: 's3://my-bucket/acme/', keep: { daily: 7 }, storage: { deleteIfMatch: true }, dryRun: true } }]);
  });

  it('a payload with no added field is taken by every version with schedules: nothing is asked', async () => {
    const result = await addTenant('openclaw tenants backup acme --to s3://my-bucket/acme/$(date +%F).tar.zst');
    expect(result.status).toBe(0);
    expect(invoked()).toEqual([]);
    expect(created()).toHaveLength(1);
  });

  it('a function that does not answer the check: cron add fails in one line, no schedule', async () => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, FunctionError: 'Unhandled', Payload: encode({ errorType: 'Error', errorMessage: 'boom' }) });
    const result = await addTenant('openclaw tenants backup acme --to s3://my-bucket/acme/$(date +%F).tar.zst --sse AES256');
    expect(result.status).toBe(1);
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/asking openclaw-backup-backup whether it takes --sse: it did not answer/);
    expect(created()).toEqual([]);
  });
});

describe('cron add against the current functions (the real handlers answer the check)', () => {
  const dir = tempDir('openclaw-gateway-fields-');
  const base = path.join(dir.path, 'tenants');
  const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });
  const config = { tenantsDir: base, backupBucket: 'my-bucket', allowedSourceBuckets: [], stackPrefix: 'openclaw-backup', abortMarginMs: 1000 };
  const published: unknown[] = [];
  const publish = async (event: unknown) => void published.push(event);
  const counted: unknown[] = [];
  const metrics = { count: (...args: unknown[]) => void counted.push(args) };
  const context = (): LambdaContext => ({ awsRequestId: 'req', functionName: 'f', functionVersion: '$LATEST', invokedFunctionArn: ARN('f'), memoryLimitInMB: '2048', getRemainingTimeInMillis: () => 600_000 }) as LambdaContext;
  afterAll(() => dir.cleanup());

  beforeEach(() => {
    published.length = 0;
    counted.length = 0;
    const handlers: Record<string, (event: unknown, context: LambdaContext) => Promise<unknown>> = {
      'openclaw-backup-backup': backupHandler({ config, logger, publish, metrics: metrics as never }),
      'openclaw-backup-prune': pruneHandler({ config, logger, publish, metrics: metrics as never }),
      'openclaw-backup-fanout': fanOutHandler({ config, logger, metrics: metrics as never, sqs: new SQSClient({}), queueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/openclaw-backup-work', listPage: async () => { throw new Error('listed'); } }),
    };
    lambda.on(InvokeCommand).callsFake(async (input: { FunctionName: string; Payload: Uint8Array }) => ({ StatusCode: 200, Payload: encode(await handlers[input.FunctionName]!(decode(input.Payload), context())) }));
  });

  it('takes --sse, --sse-kms-key-id, --storage-class, --encrypt-to, --delete-if-match; the checks publish, queue and list nothing', async () => {
    for (const cmd of [
      `openclaw tenants backup acme --to s3://my-bucket/acme/$(date +%F).tar.zst.age --sse aws:kms --sse-kms-key-id alias/backups --storage-class STANDARD_IA --encrypt-to ${recipient}`,
      'openclaw tenants prune acme --in s3://my-bucket/acme/ --keep-daily 7 --delete-if-match',
    ]) {
      const result = await addTenant(cmd);
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
    }
    const all = await addAll('--sse', 'AES256', '--storage-class', 'STANDARD_IA', '--encrypt-to', recipient);
    expect(all.stderr).toBe('');
    expect(all.status).toBe(0);
    expect(invoked().map((call) => call.name)).toEqual(['openclaw-backup-backup', 'openclaw-backup-prune', 'openclaw-backup-fanout']);
    expect(created()).toHaveLength(3);
    expect(published).toEqual([]);
    expect(sqs.commandCalls(SendMessageCommand)).toEqual([]);
    expect(sqs.commandCalls(SendMessageBatchCommand)).toEqual([]);
    expect(events.commandCalls(PutEventsCommand)).toEqual([]);
    // The fan-out's refusal of the run ID counts as one direct refusal, never as a failure.
    expect(JSON.stringify(counted)).not.toMatch(/"failed"/);
  });

  it('a field none of them knows (a later CLI\'s) is refused by each check as unknown', async () => {
    const { fieldCheckRequest } = await import('../shared/control-plane/gateway-fields.js');
    const later = { later: true };
    const answers = await Promise.all([
      backupHandler({ config, logger, publish })(fieldCheckRequest('backup', { tenant: 'acme', to: 's3://my-bucket/acme/x.tar.zst', storage: { sse: 'AES256', later: 'x' } }), context()),
      backupHandler({ config, logger, publish })(fieldCheckRequest('backup', { tenant: 'acme', to: 's3://my-bucket/acme/x.tar.zst', ...later }), context()),
      pruneHandler({ config, logger, publish })(fieldCheckRequest('prune', { tenant: 'acme', in: 's3://my-bucket/acme/', keep: { daily: 1 }, storage: { deleteIfMatch: true, later: 'x' } }), context()),
      fanOutHandler({ config, logger, sqs: new SQSClient({}), queueUrl: 'https://sqs.eu-west-1.amazonaws.com/1/q', listPage: async () => { throw new Error('listed'); } })(
        fieldCheckRequest('fanout', { source: 'openclaw.fanout', version: 1, to: 's3://my-bucket/b/{tenant}.tar.zst', storage: { sse: 'AES256', later: 'x' } }),
        context(),
      ),
    ]);
    for (const answer of answers) expect(answer).toMatchObject({ ok: false, error: { code: 'INVALID_REQUEST', message: expect.stringMatching(/unknown field "later"/) } });
    expect(published).toEqual([]);
  });
});

describe('a direct command against an older function', () => {
  it('tenants backup --sse: its refusal names the fix, in one line (exit 2)', async () => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: encode(OLDER.backupSse) });
    const result = await runMain(['--stack', 'openclaw-backup', 'tenants', 'backup', 'acme', '--to', 's3://my-bucket/acme/x.tar.zst', '--sse', 'AES256']);
    expect(result.status).toBe(2);
    expect(result.stderr).toBe(
      'openclaw: backup request storage: unknown field "sse": openclaw-backup-backup was deployed by an older version than this CLI; update the stack (cdk deploy)\n',
    );
  });

  it('other refusals are left as they are', () => {
    const error = errorFromBody({ code: 'INVALID_REQUEST', outcome: 'usage', message: 'backup request: "tenant" must be a string' });
    expect(olderGatewayError('openclaw-backup-backup', error)).toBe(error);
  });
});

describe('the table of added fields', () => {
  // What the first gateway with schedules (618ef76, 12-04) took: every field beyond these must be in ADDED_FIELDS.
  const FIRST = {
    backup: ['tenant', 'to', 'overwrite', 'sqliteRawFallback', 'storage'],
    prune: ['tenant', 'in', 'keep', 'dryRun', 'storage'],
    fanout: ['source', 'version', 'to', 'overwrite', 'cronName', 'time', 'timeZone', 'runId'],
    storage: ['awsProfile', 'region', 'endpoint', 'accessKey', 'secretKey', 'pipe'],
  };

  it('names every field the parsers take beyond the first gateway with schedules', () => {
    const added = Object.keys(ADDED_FIELDS);
    for (const [fields, first] of [[BACKUP_COMMAND_FIELDS, FIRST.backup], [PRUNE_COMMAND_FIELDS, FIRST.prune], [FANOUT_FIELDS, FIRST.fanout]] as const) {
      // A fan-out's `storage` came with its storage.* fields.
      for (const field of fields.filter((field) => !(first as readonly string[]).includes(field))) {
        expect(field === 'storage' ? added.some((name) => name.startsWith('storage.')) : added.includes(field), field).toBe(true);
      }
    }
    for (const key of STORAGE_KEYS.filter((key) => !FIRST.storage.includes(key))) expect(added).toContain(`storage.${key}`);
    expect(added).toContain('storage.deleteIfMatch');
  });

  it('finds the added fields a payload carries, and reads which an "unknown field" refusal names', () => {
    expect(addedFieldsOf({ tenant: 'a', to: 's3://b/k', storage: { endpoint: 'https://x', sse: 'AES256' }, encryptTo: ['age1…'] })).toEqual(['encryptTo', 'storage.sse']);
    expect(addedFieldsOf({ tenant: 'a', to: 's3://b/k', storage: { region: 'eu-west-1' } })).toEqual([]);
    // A prune's newer retention rules: an older prune function would refuse them at every run.
    expect(addedFieldsOf({ tenant: 'a', in: 's3://b/p/', keep: { daily: 7, hourly: 24, within: '7d' } })).toEqual(['keep.hourly', 'keep.within']);
    expect(addedFieldsOf({ tenant: 'a', in: 's3://b/p/', keep: { daily: 7 } })).toEqual([]);
    const sent = ['encryptTo', 'storage.sse', 'storage.storageClass'];
    expect(refusedFields(OLDER.backupSse, sent)).toEqual(['storage.sse']);
    expect(refusedFields(OLDER.fanOutStorage, sent)).toEqual(['storage.sse', 'storage.storageClass']);
    expect(refusedFields(refusal(`backup request: unknown fields "encryptTo", "dryRun"${SAME}`), sent)).toEqual(['encryptTo']);
    // A refusal naming none of them (a gateway older than dry runs): every one is in doubt.
    expect(refusedFields(refusal(`backup request: unknown field "dryRun"${SAME}`), sent)).toEqual(sent);
    expect(refusedFields({ ok: false, error: { code: 'INVALID_NAME', outcome: 'usage', message: 'invalid tenant name' } }, sent)).toEqual([]);
    expect(refusedFields(refusal('fan-out request: "runId" must be 1-128 letters'), sent)).toEqual([]);
  });
});
