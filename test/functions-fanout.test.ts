// The fan-out function's handler (functions/fanout-handler.ts) over mocked SQS and a page
// source, the list client it and the monitor use (functions/list-client.ts) over a mocked
// Lambda, and the list function's pages (functions/list-handler.ts on a temp dir).

import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { SendMessageBatchCommand, SQSClient, type SendMessageBatchCommandInput } from '@aws-sdk/client-sqs';
import { Logger } from '@aws-lambda-powertools/logger';
import { mockClient } from 'aws-sdk-client-mock';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';

import type { FunctionConfig } from '../shared/control-plane/function-config.js';
import { generateIdentity } from '../shared/age/keys.js';
import { parseWorkMessage } from '../shared/control-plane/work-queue.js';
import { fanOutHandler } from '../functions/fanout-handler.js';
import { listHandler } from '../functions/list-handler.js';
import { ScheduledOperationError } from '../functions/scheduled-error.js';
import { allTenantNames, listFunctionPages } from '../functions/list-client.js';
import type { MetricCounts } from '../functions/metrics.js';
import { tempDir } from './helpers/tree.js';
import { lambdaContext } from './helpers/lambda-context.js';

const sqs = mockClient(SQSClient);
const lambda = mockClient(LambdaClient);
const QUEUE = 'https://sqs.eu-west-1.amazonaws.com/123456789012/openclaw-backup-work';
const logger = new Logger({ serviceName: 'openclaw-backup-test', logLevel: 'SILENT' });
const config: FunctionConfig = { tenantsDir: '/mnt/tenants', backupBucket: 'my-bucket', backupKeyPrefix: 'backups/', allowedSourceBuckets: [], abortMarginMs: 60_000 };
const context = lambdaContext({ awsRequestId: 'req-f', functionName: 'openclaw-backup-fanout', memoryLimitInMB: '256', remaining: 300_000 });
/** A Lambda answer's payload (the SDK's blob adapter type, which tests need not build). */
const payloadOf = (value: unknown) => new TextEncoder().encode(JSON.stringify(value)) as never;
const okFor = (input: SendMessageBatchCommandInput) => ({ Successful: (input.Entries ?? []).map((entry) => ({ Id: entry.Id!, MessageId: 'm', MD5OfMessageBody: '' })), Failed: [] });

beforeEach(() => {
  sqs.reset();
  lambda.reset();
  sqs.on(SendMessageBatchCommand).callsFake(okFor);
});
afterAll(() => {
  sqs.restore();
  lambda.restore();
});

/** The list function's pages of `names`, in name order, after the one given. */
function pagesOf(names: string[]) {
  return async (after: string | undefined, limit: number) => {
    const start = after === undefined ? 0 : names.indexOf(after) + 1;
    const tenants = names.slice(start, start + limit);
    return start + limit < names.length ? { tenants, next: tenants[tenants.length - 1]! } : { tenants };
  };
}

function fanOut(names: string[], stack: Partial<FunctionConfig> = {}) {
  const counts: { operation: string; counts: MetricCounts; properties?: Record<string, unknown> }[] = [];
  let listed = 0;
  const handle = fanOutHandler({
    config: { ...config, ...stack },
    logger,
    sqs: new SQSClient({ region: 'eu-west-1' }),
    queueUrl: QUEUE,
    listPage: (after, limit) => {
      listed++;
      return pagesOf(names)(after, limit);
    },
    metrics: { record() {}, count: (operation, values, properties) => void counts.push({ operation, counts: values, ...(properties !== undefined && { properties }) }) },
    now: () => new Date('2026-06-03T09:15:00Z'),
    sleep: async () => {},
  });
  return { handle, counts, listed: () => listed };
}

const payload = (extra: Record<string, unknown> = {}) => ({ source: 'openclaw.fanout', version: 1, to: 's3://my-bucket/backups/{tenant}/{date}-{time}.tar.zst', ...extra });

describe('fan-out handler', () => {
  it('queues every tenant for a direct invocation and answers what it queued', async () => {
    const { handle, counts } = fanOut(['acme', 'beta', 'gamma']);
    const answer = await handle(payload(), context);
    expect(answer).toEqual({
      operation: 'backup-all',
      runId: 'req-f',
      time: '2026-06-03T09:15:00.000Z',
      template: 's3://my-bucket/backups/{tenant}/{date}-{time}.tar.zst',
      sample: 's3://my-bucket/backups/acme/2026-06-03-091500.tar.zst',
      tenants: 3,
      queued: 3,
      failed: [],
      complete: true,
      queue: 'openclaw-backup-work',
    });
    const bodies = sqs.commandCalls(SendMessageBatchCommand).flatMap((call) => call.args[0].input.Entries!.map((entry) => parseWorkMessage(entry.MessageBody!)));
    expect(bodies.map((body) => body.to)).toEqual(['acme', 'beta', 'gamma'].map((tenant) => `s3://my-bucket/backups/${tenant}/2026-06-03-091500.tar.zst`));
    expect(counts).toEqual([{ operation: 'fanout', counts: { succeeded: 1, queued: 3, queueFailures: 0, durationMs: expect.any(Number) }, properties: expect.objectContaining({ trigger: 'direct', runId: 'req-f' }) }]);
  });

  it('takes the scheduled time, zone and run ID an all-tenants schedule passes', async () => {
    const { handle } = fanOut(['acme']);
    const answer = await handle(payload({ cronName: 'nightly', time: '2026-06-02T22:30:00Z', timeZone: 'Europe/Berlin', runId: 'exec-1' }), context);
    expect(answer).toMatchObject({ runId: 'exec-1', sample: 's3://my-bucket/backups/acme/2026-06-03-003000.tar.zst' });
  });

  it('carries the recipients (public keys) into every tenant\'s message, each once, and answers them', async () => {
    const [alice, bob] = [generateIdentity().recipient.text, generateIdentity().recipient.text];
    const { handle } = fanOut(['acme', 'beta']);
    const answer = await handle(payload({ encryptTo: [alice, bob, alice] }), context);
    expect(answer).toMatchObject({ queued: 2, encryptedTo: [alice, bob] });
    const bodies = sqs.commandCalls(SendMessageBatchCommand).flatMap((call) => call.args[0].input.Entries!.map((entry) => parseWorkMessage(entry.MessageBody!)));
    expect(bodies.map((body) => [body.tenant, body.encryptTo])).toEqual([
      ['acme', [alice, bob]],
      ['beta', [alice, bob]],
    ]);
    // Without recipients the messages carry none: those archives are stored as plain tar.zst.
    sqs.resetHistory();
    await handle(payload(), context);
    expect(sqs.commandCalls(SendMessageBatchCommand).flatMap((call) => call.args[0].input.Entries!.map((entry) => JSON.parse(entry.MessageBody!) as object))).toEqual([
      expect.not.objectContaining({ encryptTo: expect.anything() }),
      expect.not.objectContaining({ encryptTo: expect.anything() }),
    ]);
  });

  it('carries --sse, --sse-kms-key-id and --storage-class into every tenant\'s message, and refuses a bad one (or an endpoint) before it lists a tenant', async () => {
    const { handle, listed } = fanOut(['acme', 'beta']);
    const storage = { sse: 'aws:kms', sseKmsKeyId: 'alias/backups', storageClass: 'STANDARD_IA' };
    expect(await handle(payload({ storage }), context)).toMatchObject({ queued: 2 });
    const bodies = sqs.commandCalls(SendMessageBatchCommand).flatMap((call) => call.args[0].input.Entries!.map((entry) => parseWorkMessage(entry.MessageBody!)));
    expect(bodies.map((body) => [body.tenant, body.storage])).toEqual([
      ['acme', storage],
      ['beta', storage],
    ]);
    sqs.resetHistory();
    const before = listed();
    expect(await handle(payload({ storage: { storageClass: 'GLACIER' } }), context)).toMatchObject({ ok: false, error: { code: 'INVALID_REQUEST', message: expect.stringMatching(/--storage-class GLACIER is refused/) } });
    expect(await handle(payload({ storage: { endpoint: 'https://minio.internal' } }), context)).toMatchObject({ ok: false, error: { code: 'INVALID_REQUEST', message: expect.stringMatching(/storage\.endpoint is not taken by a fan-out/) } });
    expect(listed()).toBe(before);
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
  });

  it('on a stack with encryptTo, refuses 64 recipients of its own (65 with the stack key) before it lists a tenant, naming the stack key', async () => {
    const stackKey = generateIdentity().recipient.text;
    const { handle, listed } = fanOut(['acme'], { encryptTo: [stackKey] });
    const own = Array.from({ length: 64 }, () => generateIdentity().recipient.text);
    expect(await handle(payload({ encryptTo: own }), context)).toMatchObject({ ok: false, error: { code: 'AGE_BAD_RECIPIENT', message: expect.stringContaining(`every backup to its key ${stackKey} too (encryptTo)`) } });
    expect(listed()).toBe(0);
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
    expect(await handle(payload({ encryptTo: own.slice(0, 63) }), context)).toMatchObject({ queued: 1, encryptedTo: [...own.slice(0, 63), stackKey] });
  });

  it('refuses a bad recipient before it lists a single tenant', async () => {
    const { handle, listed } = fanOut(['acme']);
    const secret = await handle(payload({ encryptTo: ['AGE-SECRET-KEY-1QQQQ'] }), context);
    expect(secret).toMatchObject({ ok: false, error: { code: 'AGE_BAD_RECIPIENT', message: expect.stringMatching(/a secret key .* was given as a recipient/) } });
    expect(JSON.stringify(secret)).not.toContain('AGE-SECRET-KEY-1QQQQ');
    expect(await handle(payload({ encryptTo: ['age1notakey'] }), context)).toMatchObject({ ok: false, error: { code: 'AGE_BAD_RECIPIENT', message: expect.stringMatching(/^recipient "age1notakey" is malformed/) } });
    expect(await handle(payload({ encryptTo: 'age1x' }), context)).toMatchObject({ ok: false, error: { code: 'INVALID_REQUEST', message: expect.stringMatching(/"encryptTo" must be a list/) } });
    expect(listed()).toBe(0);
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
  });

  it('refuses a template the gateway could not write before it lists a single tenant', async () => {
    const { handle, listed, counts } = fanOut(['acme']);
    expect(await handle(payload({ to: 's3://other-bucket/{tenant}.tar.zst' }), context)).toEqual({
      ok: false,
      error: { code: 'LOCATION_NOT_ALLOWED', outcome: 'refused', message: expect.stringMatching(/backs up to s3:\/\/my-bucket\/backups\/ only/) },
    });
    expect(await handle(payload({ to: 's3://my-bucket/backups/all.tar.zst' }), context)).toMatchObject({ ok: false, error: { code: 'INVALID_CRON_COMMAND', message: expect.stringMatching(/same key for every tenant/) } });
    expect(await handle(payload({ overwrite: true }), context)).toMatchObject({ ok: false, error: { code: 'OVERWRITE_NOT_ALLOWED' } });
    expect(await handle({ source: 'openclaw.fanout', version: 9, to: 's3://my-bucket/backups/{tenant}' }, context)).toMatchObject({ ok: false, error: { code: 'INVALID_REQUEST' } });
    expect(listed()).toBe(0);
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
    expect(counts.map((entry) => entry.counts)).toEqual(Array(4).fill({ refused: 1, durationMs: expect.any(Number) }));
  });

  // Counted Refused, such a payload raised no alarm: the tenants went stale unnoticed until the freshness alarm, ~26 hours on.
  it('counts a payload without its source marker Failed at once, a schedule\'s (it names its cron) answered and not retried', async () => {
    const { handle, listed, counts } = fanOut(['acme']);
    const { source: _marker, ...unmarked } = payload({ cronName: 'nightly' });
    const errors = vi.spyOn(logger, 'error');
    expect(await handle(unmarked, context)).toMatchObject({ ok: false, error: { code: 'INVALID_REQUEST', message: expect.stringMatching(/expected \{ "source": "openclaw.fanout"/) } });
    expect(errors.mock.calls.filter(([message]) => message === 'scheduled fan-out not retried')).toHaveLength(1);
    // Nor does a direct one pass as a caller's refusal: the CLI marks every payload it sends.
    const { source: _also, ...direct } = payload();
    expect(await handle(direct, context)).toMatchObject({ ok: false, error: { code: 'INVALID_REQUEST' } });
    expect(counts.map((entry) => [entry.counts, entry.properties])).toEqual([
      [{ failed: 1, durationMs: expect.any(Number) }, expect.objectContaining({ trigger: 'schedule', retried: false, unmarked: true })],
      [{ failed: 1, durationMs: expect.any(Number) }, expect.objectContaining({ trigger: 'direct', unmarked: true })],
    ]);
    expect(listed()).toBe(0);
    errors.mockRestore();
  });

  // EventBridge Scheduler invokes asynchronously: a throw is run twice more by Lambda, each refused the same way, then left in the DLQ.
  it('answers a scheduled run whose payload it refuses, counted Failed and logged as not retried, rather than throwing for Lambda to retry it', async () => {
    const { handle, listed, counts } = fanOut(['acme']);
    const refusals = [
      payload({ cronName: 'nightly', to: 's3://other-bucket/{tenant}.tar.zst' }),
      payload({ cronName: 'nightly', overwrite: true }),
      { ...payload({ cronName: 'nightly' }), version: 9 },
      payload({ cronName: 'nightly', encryptTo: ['age1notakey'] }),
    ];
    const errors = vi.spyOn(logger, 'error');
    for (const refused of refusals) expect(await handle(refused, context)).toMatchObject({ ok: false, error: { outcome: expect.stringMatching(/^(refused|usage)$/) } });
    expect(errors.mock.calls.filter(([message]) => message === 'scheduled fan-out not retried')).toHaveLength(refusals.length);
    expect(counts.map((entry) => [entry.counts, entry.properties])).toEqual(
      Array(refusals.length).fill([{ failed: 1, durationMs: expect.any(Number) }, expect.objectContaining({ trigger: 'schedule', retried: false })]),
    );
    expect(listed()).toBe(0);
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
    errors.mockRestore();
  });

  it('throws for a scheduled run that could queue nothing (Lambda runs it again), answers one that queued some', async () => {
    sqs.on(SendMessageBatchCommand).rejects(Object.assign(new Error('slow down'), { name: 'ThrottlingException' }));
    const none = fanOut(['acme', 'beta']);
    await expect(none.handle(payload({ cronName: 'nightly' }), context)).rejects.toBeInstanceOf(ScheduledOperationError);
    expect(none.counts[0]!.counts).toMatchObject({ failed: 1, queued: 0, queueFailures: 2 });

    sqs.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => ({
      Successful: input.Entries!.slice(1).map((entry) => ({ Id: entry.Id!, MessageId: 'm', MD5OfMessageBody: '' })),
      Failed: [{ Id: input.Entries![0]!.Id!, SenderFault: true, Code: 'InvalidParameterValue', Message: 'bad' }],
    }));
    const some = fanOut(['acme', 'beta']);
    const answer = await some.handle(payload({ cronName: 'nightly' }), context);
    expect(answer).toMatchObject({ tenants: 2, queued: 1, failed: [{ tenant: 'acme', code: 'InvalidParameterValue' }] });
    expect(some.counts[0]!.counts).toMatchObject({ failed: 1, queued: 1, queueFailures: 1 });
  });

  // The deadline between two pages: the tenants of the pages not listed were neither queued
  // nor named, and the answer (and so the CLI: exit 0) read "queued 20 of 20 tenants".
  it('answers that it stopped before listing every tenant, and after which one', async () => {
    const names = Array.from({ length: 40 }, (_, index) => `t${String(index).padStart(2, '0')}`);
    const handle = fanOutHandler({
      config,
      logger,
      sqs: new SQSClient({ region: 'eu-west-1' }),
      queueUrl: QUEUE,
      listPage: pagesOf(names),
      now: () => new Date('2026-06-03T09:15:00Z'),
      options: { pageSize: 20, concurrency: 1 },
    });
    // 4 ms left: the deadline (3 ms) comes while the first page's last batch is being sent.
    let batches = 0;
    sqs.on(SendMessageBatchCommand).callsFake(async (input: SendMessageBatchCommandInput) => {
      if (++batches === 2) await new Promise((resolve) => setTimeout(resolve, 50));
      return okFor(input);
    });
    const answer = await handle(payload(), lambdaContext({ awsRequestId: 'req-f', functionName: 'openclaw-backup-fanout', remaining: 4 }));
    expect(answer).toMatchObject({ tenants: 20, queued: 20, failed: [], complete: false, lastListed: 't19' });
    sqs.on(SendMessageBatchCommand).callsFake(okFor);
    expect(await handle(payload(), context)).toMatchObject({ tenants: 40, queued: 40, complete: true });
    expect(await handle(payload(), context)).not.toHaveProperty('lastListed');
  });

  // A list page still answering at the deadline (the list function may take its whole minute)
  // was waited for past it: Lambda ended the fan-out at its timeout, answering nothing.
  it('stops waiting for a list page at its deadline and answers what it queued', async () => {
    const names = ['acme', 'beta', 'gamma'];
    let secondPageAsked = false;
    const handle = fanOutHandler({
      config,
      logger,
      sqs: new SQSClient({ region: 'eu-west-1' }),
      queueUrl: QUEUE,
      listPage: (after, _limit, signal) => {
        if (after === undefined) return Promise.resolve({ tenants: names.slice(0, 2), next: 'beta' });
        secondPageAsked = true;
        // The second page answers only once its request is given up, else (a build that waits) long after the deadline.
        return new Promise((resolve, reject) => {
          const late = setTimeout(() => resolve({ tenants: names.slice(2) }), 5_000);
          signal?.addEventListener('abort', () => {
            clearTimeout(late);
            reject(Object.assign(new Error('Request aborted'), { name: 'AbortError' }));
          });
        });
      },
      now: () => new Date('2026-06-03T09:15:00Z'),
    });
    // 1 s left: the deadline 750 ms in, long after the first page is queued, long before the second page's answer.
    const answer = await handle(payload(), lambdaContext({ awsRequestId: 'req-f', functionName: 'openclaw-backup-fanout', remaining: 1_000 }));
    expect(secondPageAsked).toBe(true);
    expect(answer).toMatchObject({ tenants: 2, queued: 2, failed: [], complete: false, lastListed: 'beta' });
    // Scheduled, it throws, so Lambda runs it again (as when its timeout had ended it): the
    // same scheduled time gives the same keys, so the tenants queued already are skipped.
    await expect(handle(payload({ cronName: 'nightly', time: '2026-06-02T22:30:00Z' }), lambdaContext({ awsRequestId: 'req-g', functionName: 'openclaw-backup-fanout', remaining: 1_000 }))).rejects.toThrow(
      /^AWS_ERROR: the fan-out ran out of time before it listed every tenant \(queued 2 of the 2 it listed, up to "beta"\) and could not hand the rest on: it runs again, and the tenants queued already find their archives and are skipped$/,
    );
  });

  // A scheduled run out of time threw, and Lambda's retry (the same event) listed and queued
  // again every tenant from the first: each queued twice, three times after both retries
  // (with --overwrite, backed up as often), and, given no more time than the first attempt,
  // it never got further. Now it hands the rest on, after the last tenant it got past.
  it('hands the rest of a scheduled run on, and its continuation queues only the tenants not queued yet', async () => {
    const names = Array.from({ length: 40 }, (_, index) => `t${String(index).padStart(2, '0')}`);
    const handedOn: { functionName: string; payload: Record<string, unknown> }[] = [];
    let handOnFails = false;
    const handle = fanOutHandler({
      config: { ...config, allowOverwrite: true },
      logger,
      sqs: new SQSClient({ region: 'eu-west-1' }),
      queueUrl: QUEUE,
      listPage: pagesOf(names),
      handOn: async (functionName, next) => {
        if (handOnFails) throw new Error('Rate exceeded');
        handedOn.push({ functionName, payload: next });
      },
      now: () => new Date('2026-06-03T09:15:00Z'),
      sleep: async () => {},
      options: { pageSize: 20, concurrency: 1 },
    });
    // 4 ms left: the second batch is throttled once the deadline (3 ms) has come, so t10-t19
    // are cut short (ABORTED) and the run goes on after t09.
    let batches = 0;
    sqs.on(SendMessageBatchCommand).callsFake(async (input: SendMessageBatchCommandInput) => {
      if (++batches === 2) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
      }
      return okFor(input);
    });
    const scheduled = payload({ cronName: 'nightly', time: '2026-06-02T22:30:00Z', overwrite: true });
    const first = await handle(scheduled, lambdaContext({ awsRequestId: 'req-g', functionName: 'openclaw-backup-fanout', remaining: 4 }));
    expect(first).toMatchObject({ runId: 'req-g', tenants: 20, queued: 10, failed: [], complete: false });
    expect(handedOn).toEqual([
      { functionName: 'openclaw-backup-fanout', payload: { ...scheduled, runId: 'req-g', time: '2026-06-02T22:30:00.000Z', after: 't09' } },
    ]);

    sqs.on(SendMessageBatchCommand).callsFake(okFor);
    const rest = await handle(handedOn[0]!.payload, lambdaContext({ awsRequestId: 'req-h', functionName: 'openclaw-backup-fanout', remaining: 300_000 }));
    expect(rest).toMatchObject({ runId: 'req-g', tenants: 30, queued: 30, failed: [], complete: true });
    expect(handedOn).toHaveLength(1);
    const bodies = sqs.commandCalls(SendMessageBatchCommand).flatMap((call) => (call.args[0].input.Entries ?? []).map((entry) => parseWorkMessage(entry.MessageBody!)));
    const queuedOnce = bodies.filter((_, index) => index < 10 || index >= 20);
    expect(queuedOnce.map((body) => body.tenant)).toEqual(names);
    expect(new Set(queuedOnce.map((body) => `${body.run?.id} ${body.to}`)).size).toBe(40);
    expect(queuedOnce.every((body) => body.run?.id === 'req-g' && body.to.endsWith('/2026-06-02-223000.tar.zst'))).toBe(true);

    // Not handed on (the invocation refused): thrown, so Lambda runs this one again.
    handOnFails = true;
    batches = 0;
    sqs.on(SendMessageBatchCommand).callsFake(async (input: SendMessageBatchCommandInput) => {
      if (++batches === 2) await new Promise((resolve) => setTimeout(resolve, 50));
      return okFor(input);
    });
    await expect(handle(scheduled, lambdaContext({ awsRequestId: 'req-i', functionName: 'openclaw-backup-fanout', remaining: 4 }))).rejects.toThrow(/could not hand the rest on: it runs again/);
  });

  // Each invocation of a long scheduled run gets only so far (its third list page answers
  // only once the deadline gives it up): the run goes on over several invocations, each
  // handed on by the one before, all under the first one's run ID and keys.
  it('carries a scheduled run over several continuations: every tenant queued once, none skipped', async () => {
    const names = Array.from({ length: 30 }, (_, index) => `t${String(index).padStart(2, '0')}`);
    const handedOn: Record<string, unknown>[] = [];
    let pagesThisInvocation = 0;
    const handle = fanOutHandler({
      config,
      logger,
      sqs: new SQSClient({ region: 'eu-west-1' }),
      queueUrl: QUEUE,
      listPage: (after, limit, signal) => {
        if (++pagesThisInvocation < 3) return pagesOf(names)(after, limit);
        return new Promise((_, reject) => signal?.addEventListener('abort', () => reject(Object.assign(new Error('Request aborted'), { name: 'AbortError' }))));
      },
      handOn: async (_functionName, next) => void handedOn.push(next),
      now: () => new Date('2026-06-03T09:15:00Z'),
      sleep: async () => {},
      options: { pageSize: 5, concurrency: 1 },
    });
    const answers: unknown[] = [];
    let event: Record<string, unknown> | undefined = payload({ cronName: 'nightly', time: '2026-06-02T22:30:00Z' });
    for (let invocation = 0; event !== undefined && invocation < 10; invocation++) {
      pagesThisInvocation = 0;
      answers.push(await handle(event, lambdaContext({ awsRequestId: `req-${invocation}`, functionName: 'openclaw-backup-fanout', remaining: 1_000 })));
      event = handedOn[invocation];
    }
    expect(answers).toEqual([
      expect.objectContaining({ runId: 'req-0', tenants: 10, queued: 10, failed: [], complete: false, lastListed: 't09' }),
      expect.objectContaining({ runId: 'req-0', tenants: 10, queued: 10, failed: [], complete: false, lastListed: 't19' }),
      expect.objectContaining({ runId: 'req-0', tenants: 10, queued: 10, failed: [], complete: true }),
    ]);
    expect(handedOn.map((next) => [next.runId, next.time, next.after])).toEqual([
      ['req-0', '2026-06-02T22:30:00.000Z', 't09'],
      ['req-0', '2026-06-02T22:30:00.000Z', 't19'],
    ]);
    const bodies = sqs.commandCalls(SendMessageBatchCommand).flatMap((call) => (call.args[0].input.Entries ?? []).map((entry) => parseWorkMessage(entry.MessageBody!)));
    expect(bodies.map((body) => body.tenant)).toEqual(names);
    expect(bodies.every((body) => body.run?.id === 'req-0' && body.to.endsWith('/2026-06-02-223000.tar.zst'))).toBe(true);
  });

  it('takes "after" only as a tenant name', async () => {
    const { handle } = fanOut(['acme']);
    expect(await handle(payload({ after: '../x' }), context)).toMatchObject({ ok: false, error: { code: 'INVALID_REQUEST', message: 'fan-out request: "after" must be a tenant name' } });
  });
});

describe('list client', () => {
  it('asks the list function for pages and collects every name', async () => {
    lambda
      .on(InvokeCommand)
      .resolvesOnce({ Payload: payloadOf({ tenants: ['a', 'b'], next: 'b' }) })
      .resolvesOnce({ Payload: payloadOf({ tenants: ['c'] }) });
    const names = await allTenantNames(listFunctionPages(new LambdaClient({ region: 'eu-west-1' }), 'openclaw-backup-list'), 2);
    expect(names).toEqual(['a', 'b', 'c']);
    expect(lambda.commandCalls(InvokeCommand).map((call) => JSON.parse(new TextDecoder().decode(call.args[0].input.Payload as Uint8Array)))).toEqual([
      { names: true, limit: 2 },
      { names: true, limit: 2, after: 'b' },
    ]);
  });

  it('never mistakes a failure for an empty list', async () => {
    const pages = listFunctionPages(new LambdaClient({ region: 'eu-west-1' }), 'openclaw-backup-list');
    lambda.on(InvokeCommand).resolves({ FunctionError: 'Unhandled', Payload: payloadOf({ errorMessage: 'Task timed out after 60.00 seconds' }) });
    await expect(pages(undefined, 10)).rejects.toMatchObject({ code: 'REMOTE_FUNCTION_ERROR', message: 'openclaw-backup-list failed: Task timed out after 60.00 seconds' });
    lambda.on(InvokeCommand).resolves({ Payload: payloadOf({ ok: false, error: { code: 'FILESYSTEM', outcome: 'failed', message: 'EIO' } }) });
    await expect(pages(undefined, 10)).rejects.toMatchObject({ code: 'FILESYSTEM' });
    lambda.on(InvokeCommand).resolves({ Payload: payloadOf({ tenants: ['../etc'] }) });
    await expect(pages(undefined, 10)).rejects.toMatchObject({ code: 'REMOTE_PROTOCOL' });
  });
});

describe('list function pages', () => {
  const dir = tempDir('openclaw-list-pages-');
  afterAll(() => dir.cleanup());

  it('answers sorted pages of names and where the next one starts', async () => {
    for (const name of ['delta', 'alpha', 'charlie', 'bravo', 'echo']) mkdirSync(path.join(dir.path, name));
    const list = listHandler({ config: { ...config, tenantsDir: dir.path }, logger });
    expect(await list({ names: true, limit: 2 }, context)).toEqual({ tenants: ['alpha', 'bravo'], next: 'bravo' });
    expect(await list({ names: true, limit: 2, after: 'bravo' }, context)).toEqual({ tenants: ['charlie', 'delta'], next: 'delta' });
    expect(await list({ names: true, limit: 2, after: 'delta' }, context)).toEqual({ tenants: ['echo'] });
    // A name that vanished between two pages still places the next page.
    expect(await list({ names: true, limit: 2, after: 'beta' }, context)).toEqual({ tenants: ['bravo', 'charlie'], next: 'charlie' });
    expect(await list({ limit: 2 }, context)).toMatchObject({ ok: false, error: { code: 'INVALID_REQUEST', message: expect.stringMatching(/go with "names": true/) } });
    expect(await list({ names: true, limit: 0 }, context)).toMatchObject({ ok: false, error: { code: 'INVALID_REQUEST' } });
  });
});
