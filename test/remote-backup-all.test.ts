// `openclaw --stack P tenants backup --all --to TEMPLATE` in-process: the exact Invoke of the
// fan-out function, the answer printed (and exit 1 when tenants were left out), what is
// refused before any call (a bad recipient included), the recipients sent, and a run where the
// mocked Invoke hands the payload to the real fan-out handler, whose messages land on a mocked
// queue. (remote-encryption.test.ts follows encrypted messages on to the backup function.)

import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { SendMessageBatchCommand, SQSClient, type SendMessageBatchCommandInput } from '@aws-sdk/client-sqs';
import { Logger } from '@aws-lambda-powertools/logger';
import { mockClient } from 'aws-sdk-client-mock';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { generateIdentity } from '../shared/age/keys.js';
import { parseWorkMessage } from '../shared/control-plane/work-queue.js';
import { fanOutHandler } from '../functions/fanout-handler.js';
import { runMain as run, stubRemoteCaller } from './helpers/run-main.js';
import { tempDir } from './helpers/tree.js';
import { lambdaContext } from './helpers/lambda-context.js';

const lambda = mockClient(LambdaClient);
const sqs = mockClient(SQSClient);
const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value)) as never;
const TEMPLATE = 's3://my-bucket/backups/{tenant}/{date}.tar.zst';
const dir = tempDir('openclaw-remote-all-');

const RESULT = {
  operation: 'backup-all',
  runId: 'req-9',
  time: '2026-06-03T09:00:00.000Z',
  template: TEMPLATE,
  sample: 's3://my-bucket/backups/acme/2026-06-03.tar.zst',
  tenants: 3,
  queued: 3,
  failed: [],
  queue: 'openclaw-backup-work',
};

beforeEach(() => {
  lambda.reset();
  sqs.reset();
  stubRemoteCaller();
});
afterEach(() => vi.unstubAllEnvs());
afterAll(() => {
  lambda.restore();
  sqs.restore();
  dir.cleanup();
});

const backupAll = (...extra: string[]) => run(['--stack', 'openclaw-backup', 'tenants', 'backup', '--all', '--to', TEMPLATE, ...extra]);

describe('tenants backup --all on a gateway', () => {
  it('invokes the fan-out once and prints what it queued', async () => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: encode(RESULT) });
    const result = await backupAll();
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const [call] = lambda.commandCalls(InvokeCommand);
    expect(call!.args[0].input.FunctionName).toBe('openclaw-backup-fanout');
    expect(call!.args[0].input.InvocationType).toBe('RequestResponse');
    expect(JSON.parse(new TextDecoder().decode(call!.args[0].input.Payload as Uint8Array))).toEqual({ source: 'openclaw.fanout', version: 1, to: TEMPLATE });
    expect(result.stdout.split('\n')).toEqual([
      `Queued 3 of 3 tenants for backup on openclaw-backup (run req-9), to ${TEMPLATE}`,
      '  e.g.      s3://my-bucket/backups/acme/2026-06-03.tar.zst',
      '  they run on the gateway a bounded number at a time, from the queue openclaw-backup-work: follow them with `openclaw --stack openclaw-backup doctor` and the dashboard',
      '',
    ]);
  });

  it('sends the recipients of --encrypt-to and --recipients-file (public keys, each once) and says the archives are encrypted', async () => {
    const [alice, bob] = [generateIdentity().recipient.text, generateIdentity().recipient.text];
    const file = path.join(dir.path, 'recipients.txt');
    writeFileSync(file, `# escrow\n${bob}\n${alice}\n`);
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: encode({ ...RESULT, encryptedTo: [alice, bob] }) });
    const result = await backupAll('--encrypt-to', alice, '--recipients-file', file);
    expect(result.stderr).toBe(`openclaw: warning: the archive is encrypted with age, but its name ends in .zst (zstd): consider ${TEMPLATE}.age (age -d -i KEY_FILE gives the tar.zst back; zstd and tar cannot read it before)\n`);
    expect(result.status).toBe(0);
    const [call] = lambda.commandCalls(InvokeCommand);
    expect(JSON.parse(new TextDecoder().decode(call!.args[0].input.Payload as Uint8Array))).toEqual({ source: 'openclaw.fanout', version: 1, to: TEMPLATE, encryptTo: [alice, bob] });
    expect(result.stdout.split('\n')[2]).toBe(`  each archive encrypted with age to 2 recipients: ${alice}, ${bob}`);
  });

  it('names the tenants it could not queue and exits 1, with one JSON object under --json', async () => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: encode({ ...RESULT, queued: 2, failed: [{ tenant: 'beta', code: 'THROTTLED', message: 'not queued after 8 attempts: ThrottlingException: slow down' }] }) });
    const result = await backupAll();
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/^Queued 2 of 3 tenants/);
    expect(result.stdout).toContain('  not queued 1:\n    beta: THROTTLED: not queued after 8 attempts: ThrottlingException: slow down\n');
    expect(result.stderr).toBe('');
    const json = await run(['--stack', 'openclaw-backup', '--json', 'tenants', 'backup', '--all', '--to', TEMPLATE]);
    expect(json.status).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ operation: 'backup-all', queued: 2 });
  });

  // A gateway whose fan-out ran out of time between two pages of tenants: the CLI said "Queued 2 of 2" and exited 0.
  it('says the fan-out stopped before listing every tenant, and after which one, and exits 1', async () => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: encode({ ...RESULT, tenants: 2, queued: 2, complete: false, lastListed: 'beta' }) });
    const result = await backupAll();
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/^Queued 2 of 2 tenants/);
    expect(result.stdout).toContain('\n  the fan-out ran out of time before it listed every tenant: the tenants after "beta" (in name order) were not queued\n');
    expect(result.stderr).toBe('');
    const json = await run(['--stack', 'openclaw-backup', '--json', 'tenants', 'backup', '--all', '--to', TEMPLATE]);
    expect(json.status).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ operation: 'backup-all', complete: false, lastListed: 'beta' });
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: encode({ ...RESULT, tenants: 0, queued: 0, complete: false }) });
    const none = await backupAll();
    expect(none.status).toBe(1);
    expect(none.stdout).toContain('\n  the fan-out ran out of time before it listed every tenant: none was queued\n');
  });

  it('refuses before any call what cannot work', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--stack', 'openclaw-backup', 'tenants', 'backup', '--all', '--to', 's3://my-bucket/backups/all.tar.zst'], /same key for every tenant: put \{tenant\} in it/],
      [['--stack', 'openclaw-backup', 'tenants', 'backup', 'acme', '--all', '--to', TEMPLATE], /give a tenant or --all, not both/],
      [['--stack', 'openclaw-backup', 'tenants', 'backup', '--all', '--to', '/var/backups/{tenant}.tar.zst'], /--to must be s3:\/\/bucket\/key/],
      [['--stack', 'openclaw-backup', 'tenants', 'backup', '--all', '--to', TEMPLATE, '--endpoint', 'https://minio.example'], /drop --endpoint/],
      [['--stack', 'openclaw-backup', 'tenants', 'backup', '--to', TEMPLATE], /name the tenant to back up, or give --all/],
      [['--stack', 'openclaw-backup', 'tenants', 'backup', '--all', '--to', TEMPLATE, '--encrypt-to', 'age1notakey'], /^openclaw: recipient "age1notakey" is malformed/],
      [['--stack', 'openclaw-backup', 'tenants', 'backup', '--all', '--to', TEMPLATE, '--encrypt-to', 'AGE-SECRET-KEY-1XYZ'], /a secret key \(AGE-SECRET-KEY-…\) was given as a recipient/],
    ];
    for (const [args, message] of cases) {
      const result = await run(args);
      expect(result.status, message.source).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr.trimEnd().split('\n'), message.source).toHaveLength(1);
    }
    expect(lambda.calls()).toHaveLength(0);
  });

  it('queues, through the real fan-out handler, one message per tenant the list function names', async () => {
    const handle = fanOutHandler({
      config: { tenantsDir: '/mnt/tenants', backupBucket: 'my-bucket', backupKeyPrefix: 'backups/', allowedSourceBuckets: [], abortMarginMs: 60_000 },
      logger: new Logger({ serviceName: 'openclaw-backup', logLevel: 'SILENT' }),
      sqs: new SQSClient({ region: 'eu-west-1' }),
      queueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/openclaw-backup-work',
      listPage: async () => ({ tenants: ['acme', 'beta'] }),
      now: () => new Date('2026-06-03T09:00:00Z'),
    });
    sqs.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => ({ Successful: input.Entries!.map((entry) => ({ Id: entry.Id!, MessageId: 'm', MD5OfMessageBody: '' })) }));
    lambda.on(InvokeCommand).callsFake(async (input: { Payload: Uint8Array }) => {
      const answer = await handle(JSON.parse(new TextDecoder().decode(input.Payload)), lambdaContext({ awsRequestId: 'req-real', functionName: 'openclaw-backup-fanout', memoryLimitInMB: '256', remaining: 300_000 }));
      return { StatusCode: 200, Payload: encode(answer) };
    });
    const result = await backupAll();
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^Queued 2 of 2 tenants for backup on openclaw-backup \(run req-real\)/);
    const messages = sqs.commandCalls(SendMessageBatchCommand).flatMap((call) => call.args[0].input.Entries!.map((entry) => parseWorkMessage(entry.MessageBody!)));
    expect(messages.map((message) => message.to)).toEqual(['s3://my-bucket/backups/acme/2026-06-03.tar.zst', 's3://my-bucket/backups/beta/2026-06-03.tar.zst']);
  });

  // A queue whose key the fan-out's role may not use refuses every message: 40,000 failures made a
  // 9.3 MB answer, which Lambda refuses (over 6 MB), and the CLI learnt nothing of what happened.
  it('counts every tenant not queued when the fan-out\'s answer names only those that fit a Lambda answer', async () => {
    const names = Array.from({ length: 40_000 }, (_, index) => `tenant-${String(index).padStart(6, '0')}`);
    const handle = fanOutHandler({
      config: { tenantsDir: '/mnt/tenants', backupBucket: 'my-bucket', backupKeyPrefix: 'backups/', allowedSourceBuckets: [], abortMarginMs: 60_000 },
      logger: new Logger({ serviceName: 'openclaw-backup', logLevel: 'SILENT' }),
      sqs: new SQSClient({ region: 'eu-west-1' }),
      queueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/openclaw-backup-work',
      listPage: async (after, limit) => {
        const start = after === undefined ? 0 : names.indexOf(after) + 1;
        const tenants = names.slice(start, start + limit);
        return start + limit < names.length ? { tenants, next: tenants.at(-1)! } : { tenants };
      },
      now: () => new Date('2026-06-03T09:00:00Z'),
    });
    const denied = 'The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access.';
    sqs.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => ({ Successful: [], Failed: input.Entries!.map((entry) => ({ Id: entry.Id!, SenderFault: true, Code: 'KMS.AccessDeniedException', Message: denied })) }));
    let answerBytes = 0;
    lambda.on(InvokeCommand).callsFake(async (input: { Payload: Uint8Array }) => {
      const answer = encode(await handle(JSON.parse(new TextDecoder().decode(input.Payload)), lambdaContext({ awsRequestId: 'req-kms', functionName: 'openclaw-backup-fanout', memoryLimitInMB: '512', remaining: 300_000 })));
      answerBytes = (answer as Uint8Array).length;
      return { StatusCode: 200, Payload: answer };
    });
    const result = await backupAll();
    expect(answerBytes).toBeLessThanOrEqual(4_000_000);
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/^Queued 0 of 40,000 tenants/);
    expect(result.stdout).toContain(`  not queued 40,000:\n    tenant-000000: KMS.AccessDeniedException: SQS refused the message: ${denied}\n`);
    expect(result.stdout).toMatch(/\n {4}… and 39,990 more \(see --json, which names [\d,]+: the gateway's answer holds at most 6 MB\)\n/);
    expect(result.stderr).toBe('');
  });
});
