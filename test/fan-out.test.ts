// shared/control-plane/fan-out.ts against a mocked SQS client: pages of names, batches of
// at most 10 with the exact message format (work-queue.ts), back-off after throttling and
// after entries SQS failed on its side, no retry of the sender's faults, a typed error for
// what no retry fixes, and the deadline.

import { SendMessageBatchCommand, SQSClient, type SendMessageBatchCommandInput } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';

import { fanOut, type FanOutDeps, type NamesPage } from '../shared/control-plane/fan-out.js';
import { parseWorkMessage } from '../shared/control-plane/work-queue.js';

const sqs = mockClient(SQSClient);
const QUEUE = 'https://sqs.eu-west-1.amazonaws.com/123456789012/openclaw-backup-work';
const RUN = { template: 's3://bucket/backups/{tenant}/{date}.tar.zst', time: new Date('2026-06-03T01:00:00Z'), runId: 'run-1', cronName: 'nightly' };

function pages(names: readonly string[]) {
  const calls: (string | undefined)[] = [];
  const listPage = async (after: string | undefined, limit: number): Promise<NamesPage> => {
    calls.push(after);
    const start = after === undefined ? 0 : names.indexOf(after) + 1;
    const tenants = names.slice(start, start + limit);
    return start + limit < names.length ? { tenants, next: tenants[tenants.length - 1]! } : { tenants };
  };
  return { listPage, calls };
}

const tenantsOf = (input: SendMessageBatchCommandInput) => (input.Entries ?? []).map((entry) => parseWorkMessage(entry.MessageBody!).tenant);
const okFor = (input: SendMessageBatchCommandInput) => ({ Successful: (input.Entries ?? []).map((entry) => ({ Id: entry.Id!, MessageId: `m-${entry.Id}`, MD5OfMessageBody: '' })), Failed: [] });

beforeEach(() => {
  sqs.reset();
  sqs.on(SendMessageBatchCommand).callsFake(okFor);
});
afterAll(() => sqs.restore());

function deps(names: readonly string[], extra: Partial<FanOutDeps> = {}) {
  const { listPage, calls } = pages(names);
  const sleeps: number[] = [];
  return {
    deps: { sqs: new SQSClient({ region: 'eu-west-1' }), queueUrl: QUEUE, listPage, sleep: async (ms: number) => void sleeps.push(ms), random: () => 1, ...extra } satisfies FanOutDeps,
    calls,
    sleeps,
  };
}

describe('fanOut', () => {
  it('reads the tenants a page at a time and queues one versioned message per tenant, ten per batch', async () => {
    const names = Array.from({ length: 25 }, (_, index) => `t${String(index).padStart(2, '0')}`);
    const { deps: d, calls } = deps(names);
    const outcome = await fanOut({ ...RUN, timeZone: 'Europe/Berlin' }, d, { pageSize: 12 });
    expect(outcome).toEqual({ tenants: 25, queued: 25, failed: [], pages: 3, requests: 5, retries: 0, complete: true, lastListed: 't24', sample: 's3://bucket/backups/t00/2026-06-03.tar.zst' });
    expect(calls).toEqual([undefined, 't11', 't23']);
    const inputs = sqs.commandCalls(SendMessageBatchCommand).map((call) => call.args[0].input);
    // Pages of 12 and 12 and 1: batches of 10 and 2, 10 and 2, 1.
    expect(inputs.map((input) => input.Entries!.length)).toEqual([10, 2, 10, 2, 1]);
    expect(inputs.flatMap(tenantsOf)).toEqual(names);
    expect(inputs.every((input) => input.QueueUrl === QUEUE)).toBe(true);
    expect(JSON.parse(inputs[0]!.Entries![0]!.MessageBody!)).toEqual({
      version: 1,
      kind: 'backup',
      tenant: 't00',
      // 01:00 UTC is 03:00 in Berlin: the Berlin date.
      to: 's3://bucket/backups/t00/2026-06-03.tar.zst',
      run: { id: 'run-1', time: '2026-06-03T01:00:00.000Z', template: 's3://bucket/backups/{tenant}/{date}.tar.zst', cronName: 'nightly' },
    });
    expect(new Set(inputs[0]!.Entries!.map((entry) => entry.Id)).size).toBe(10);
  });

  it('backs off and sends again when SQS throttles the request, or fails entries on its side', async () => {
    let call = 0;
    sqs.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => {
      call++;
      if (call <= 2) throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } });
      if (call === 3) {
        const [first, ...rest] = input.Entries!;
        return { Successful: rest.map((entry) => ({ Id: entry.Id!, MessageId: 'm', MD5OfMessageBody: '' })), Failed: [{ Id: first!.Id!, SenderFault: false, Code: 'InternalError', Message: 'try again' }] };
      }
      return okFor(input);
    });
    const { deps: d, sleeps } = deps(['a', 'b', 'c']);
    const outcome = await fanOut(RUN, d, { baseDelayMs: 100, maxDelayMs: 1000 });
    expect(outcome).toMatchObject({ tenants: 3, queued: 3, failed: [], requests: 4, retries: 3 });
    // Exponential, capped (random() = 1: the full ceiling each time).
    expect(sleeps).toEqual([100, 200, 400]);
    expect(tenantsOf(sqs.commandCalls(SendMessageBatchCommand)[3]!.args[0].input)).toEqual(['a']);
  });

  it('reports by tenant what could not be queued, never dropping one silently', async () => {
    sqs.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => ({
      Successful: [],
      Failed: input.Entries!.map((entry) => (parseWorkMessage(entry.MessageBody!).tenant === 'big' ? { Id: entry.Id!, SenderFault: true, Code: 'InvalidParameterValue', Message: 'too long' } : { Id: entry.Id!, SenderFault: false, Code: 'ServiceUnavailable' })),
    }));
    const { deps: d, sleeps } = deps(['big', 'small']);
    const outcome = await fanOut(RUN, d, { maxAttempts: 3, baseDelayMs: 10 });
    expect(outcome.queued).toBe(0);
    expect(outcome.failed).toEqual([
      { tenant: 'big', code: 'InvalidParameterValue', message: 'SQS refused the message: too long' },
      { tenant: 'small', code: 'SQS', message: 'not queued after 3 attempts: ServiceUnavailable' },
    ]);
    expect(sleeps).toHaveLength(2);
  });

  it('stops with a typed error when no retry can help', async () => {
    sqs.on(SendMessageBatchCommand).rejects(Object.assign(new Error('The specified queue does not exist.'), { name: 'QueueDoesNotExist', $metadata: { httpStatusCode: 400 } }));
    const { deps: d } = deps(['a']);
    await expect(fanOut(RUN, d)).rejects.toMatchObject({ code: 'AWS_ERROR', message: expect.stringMatching(/^sending to the work queue: QueueDoesNotExist: The specified queue does not exist\. \(0 of 1 tenants/) });
  });

  it('stops at the deadline and names the tenants it did not queue', async () => {
    const controller = new AbortController();
    let batches = 0;
    sqs.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => {
      if (++batches === 1) controller.abort();
      return okFor(input);
    });
    const names = Array.from({ length: 40 }, (_, index) => `t${String(index).padStart(2, '0')}`);
    const { deps: d } = deps(names, { signal: controller.signal });
    const outcome = await fanOut(RUN, d, { pageSize: 20, concurrency: 1 });
    expect(outcome.complete).toBe(false);
    expect(outcome.queued).toBe(10);
    expect(outcome.pages).toBe(1);
    expect(outcome.lastListed).toBe('t19');
    expect(outcome.failed.map((failure) => failure.tenant)).toEqual(names.slice(10, 20));
    expect(outcome.failed[0]!.code).toBe('ABORTED');
    // Where the run goes on (fanout-handler.ts hands it on): after the last tenant queued.
    expect(outcome.resumeAfter).toBe('t09');
    // The last page cut short: every tenant listed, yet some left out by the deadline.
    batches = 0;
    const last = new AbortController();
    sqs.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => {
      if (++batches === 1) last.abort();
      return okFor(input);
    });
    const cut = await fanOut(RUN, deps(names.slice(0, 20), { signal: last.signal }).deps, { pageSize: 20, concurrency: 1 });
    expect(cut).toMatchObject({ complete: true, queued: 10, resumeAfter: 't09' });
    // A list that ignores "after" (the same page again): no going back, however far it got.
    batches = 0;
    const again = new AbortController();
    sqs.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => {
      if (++batches === 1) again.abort();
      return okFor(input);
    });
    const stuck = await fanOut({ ...RUN, after: 't15' }, { ...deps([]).deps, listPage: async () => ({ tenants: names.slice(0, 20), next: 't19' }), signal: again.signal }, { pageSize: 20, concurrency: 1 });
    expect(stuck).toMatchObject({ complete: false, queued: 10 });
    expect(stuck).not.toHaveProperty('resumeAfter');
  });

  // A request that timed out at the deadline may have been queued by SQS all the same: its
  // tenants were named "ran out of time before it could queue" them.
  it('says a tenant cut short after a request that got no answer may have been queued', async () => {
    const controller = new AbortController();
    sqs.on(SendMessageBatchCommand).callsFake(() => {
      controller.abort();
      throw Object.assign(new Error('Connection timed out after 10000 ms'), { name: 'TimeoutError' });
    });
    const { deps: d } = deps(['a'], { signal: controller.signal });
    const outcome = await fanOut(RUN, d);
    expect(outcome).toMatchObject({ queued: 0, complete: true, failed: [{ tenant: 'a', code: 'ABORTED', message: 'the fan-out ran out of time after a request that got no answer (TimeoutError: Connection timed out after 10000 ms): this tenant may have been queued' }] });
    expect(outcome).not.toHaveProperty('resumeAfter');
  });

  // A back-off under way at the deadline (up to 20 s) was slept out whole, and another
  // request sent after it: past the deadline's margin, Lambda's timeout ended the fan-out.
  it('cuts a back-off short at the deadline and names the tenants it did not queue', async () => {
    const controller = new AbortController();
    sqs.on(SendMessageBatchCommand).callsFake(() => {
      controller.abort();
      throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    });
    let backOffs = 0;
    // A back-off that never ends by itself: only the deadline can end the wait (a build that sleeps it out never answers).
    const sleep = () => new Promise<void>(() => void ++backOffs);
    const { deps: d } = deps(['a', 'b'], { signal: controller.signal, sleep });
    const outcome = await fanOut(RUN, d, { concurrency: 1 });
    expect(backOffs).toBe(1);
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(1);
    expect(outcome).toMatchObject({ tenants: 2, queued: 0, failed: [{ tenant: 'a', code: 'ABORTED' }, { tenant: 'b', code: 'ABORTED' }] });
  });

  it('keeps at most `concurrency` batches in flight', async () => {
    let inFlight = 0;
    let most = 0;
    sqs.on(SendMessageBatchCommand).callsFake(async (input: SendMessageBatchCommandInput) => {
      most = Math.max(most, ++inFlight);
      await new Promise((resolve) => setImmediate(resolve));
      inFlight--;
      return okFor(input);
    });
    const { deps: d } = deps(Array.from({ length: 100 }, (_, index) => `t${String(index).padStart(3, '0')}`));
    await fanOut(RUN, d, { concurrency: 3 });
    expect(most).toBe(3);
  });
});
