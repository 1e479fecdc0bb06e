// 10,000 tenants through one all-tenants run, in simulation: the real fan-out handler pages
// through the tenant list and sends one message per tenant to a simulated SQS queue, which
// throttles and fails entries on its side now and then; the real work-queue handler of the
// backup function consumes it through a simulated event source mapping with the stack's
// defaults (MaximumConcurrency 100 on Elastic, visibility timeout 30 minutes, three
// attempts, then the DLQ). Backups take 30-90 s of virtual time each (the per-tenant time
// docs/scale.md assumes for a 1 GiB tenant on EFS); no real time passes. Some tenants vanish
// after the list, some fail once, a few fail always, and SQS delivers a few messages twice.
//
// What must hold: every tenant is backed up exactly once (a duplicate finds its archive, or
// the tenant busy, and never runs twice), never more than 100 at once and 100 most of the
// time, the throttled sends are answered with back-off and lose nothing, a vanished tenant
// is one skip (not a failure, not a DLQ message), a tenant that always fails ends in the DLQ
// after three attempts without touching any other, and the night fits the 2-hour window.

import { SendMessageBatchCommand, SQSClient, type SendMessageBatchCommandInput } from '@aws-sdk/client-sqs';
import { Logger } from '@aws-lambda-powertools/logger';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, describe, expect, it } from 'vitest';

import { DEFAULT_MAX_RECEIVE_COUNT, DEFAULT_WORK_VISIBILITY_TIMEOUT } from '../infra/backup-fanout.js';
import { defaultBackupConcurrency } from '../infra/backup-concurrency.js';
import type { BackupResult } from '../shared/backup/backup.js';
import { parseWorkMessage } from '../shared/control-plane/work-queue.js';
import { DestinationExistsError, StorageError, TenantBusyError, TenantNotFoundError } from '../shared/errors.js';
import type { TenantOperations } from '../shared/operations.js';
import { fanOutHandler } from '../functions/fanout-handler.js';
import type { LambdaContext } from '../functions/lambda-context.js';
import type { OperationRecord } from '../functions/metrics.js';
import { workQueueHandler } from '../functions/queue-handler.js';
import { drain, SimulatedQueue, VirtualClock } from './helpers/scale-sim.js';

const TENANTS = 10_000;
const WINDOW_MS = 2 * 3_600_000;
const sqs = mockClient(SQSClient);
afterAll(() => sqs.restore());

const names = Array.from({ length: TENANTS }, (_, index) => `tenant-${String(index).padStart(5, '0')}`);
/** A deterministic 30-90 s per tenant (mean 60 s). */
const durationOf = (index: number) => 30_000 + ((index * 7919) % 61) * 1000;
const every = (step: number, offset: number) => new Set(names.filter((_, index) => index % step === offset));
const vanished = every(997, 11); // deleted between the fan-out's list and their backup
const flaky = every(503, 7); // fail their first attempt (S3 unreachable for a moment)
const doomed = new Set(['tenant-04242', 'tenant-08888']); // fail every attempt
const deliveredTwice = new Set(['tenant-00042', 'tenant-05000', 'tenant-09999']); // SQS's at-least-once

function context(clock: VirtualClock, startedAt: number, name: string): LambdaContext {
  return {
    awsRequestId: `req-${startedAt}`,
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:eu-west-1:123456789012:function:${name}`,
    memoryLimitInMB: '2048',
    getRemainingTimeInMillis: () => Math.max(0, 900_000 - (clock.now - startedAt)),
  };
}

describe('10,000 tenants in one night, simulated', () => {
  it('backs up every tenant through the queue, a bounded number at a time, within the window', async () => {
    const clock = new VirtualClock();
    const concurrency = defaultBackupConcurrency({ mode: 'elastic' });
    const queue = new SimulatedQueue(clock, DEFAULT_WORK_VISIBILITY_TIMEOUT.toMilliseconds(), DEFAULT_MAX_RECEIVE_COUNT);
    const logger = new Logger({ serviceName: 'openclaw-backup', logLevel: 'SILENT' });

    // ---- SQS: batches of at most 10; every 9th request throttled, every 13th fails two entries on SQS's side.
    let requests = 0;
    const batchSizes: number[] = [];
    sqs.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => {
      requests++;
      batchSizes.push(input.Entries!.length);
      if (requests % 9 === 0) throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } });
      const entries = input.Entries!;
      const failing = requests % 13 === 0 ? entries.slice(0, 2) : [];
      for (const entry of entries) {
        if (failing.includes(entry)) continue;
        queue.send(entry.MessageBody!);
        if (deliveredTwice.has(parseWorkMessage(entry.MessageBody!).tenant)) queue.send(entry.MessageBody!);
      }
      return {
        Successful: entries.filter((entry) => !failing.includes(entry)).map((entry) => ({ Id: entry.Id!, MessageId: 'm', MD5OfMessageBody: '' })),
        Failed: failing.map((entry) => ({ Id: entry.Id!, SenderFault: false, Code: 'InternalError', Message: 'try again' })),
      };
    });

    // ---- The fan-out: the real handler, the list function a page of 1,000 names at a time.
    const pagesAsked: (string | undefined)[] = [];
    const backOffs: number[] = [];
    const fanOut = fanOutHandler({
      config: { tenantsDir: '/mnt/tenants', backupBucket: 'my-bucket', backupKeyPrefix: 'backups/', allowedSourceBuckets: [], abortMarginMs: 30_000 },
      logger,
      sqs: new SQSClient({ region: 'eu-west-1' }),
      queueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/openclaw-backup-work',
      listPage: async (after, limit) => {
        pagesAsked.push(after);
        await clock.sleep(300); // the list function's answer
        const start = after === undefined ? 0 : names.indexOf(after) + 1;
        const tenants = names.slice(start, start + limit);
        return start + limit < names.length ? { tenants, next: tenants.at(-1)! } : { tenants };
      },
      now: () => new Date(Date.parse('2026-06-03T01:00:00Z') + clock.now),
      sleep: (ms) => (backOffs.push(ms), clock.sleep(ms)),
      random: () => 0.5,
    });

    // ---- The backup function: the real queue handler, backups that take virtual time.
    const stored = new Set<string>();
    const running = new Set<string>();
    const attempts = new Map<string, number>();
    const backedUp = new Map<string, number>();
    const doneAt = new Map<string, number>();
    let mostBackupsAtOnce = 0;
    const operations: Pick<TenantOperations, 'backup'> = {
      async backup(command) {
        const { tenant, to } = command;
        attempts.set(tenant, (attempts.get(tenant) ?? 0) + 1);
        if (vanished.has(tenant)) throw new TenantNotFoundError(`no tenant "${tenant}" in /mnt/tenants`);
        if (stored.has(to)) throw new DestinationExistsError(`${to} exists already`);
        if (running.has(tenant)) throw new TenantBusyError(`tenant "${tenant}" is being backed up`);
        running.add(tenant);
        mostBackupsAtOnce = Math.max(mostBackupsAtOnce, running.size);
        try {
          const index = names.indexOf(tenant);
          if (doomed.has(tenant) || (flaky.has(tenant) && attempts.get(tenant) === 1)) {
            await clock.sleep(5_000);
            throw new StorageError('S3 did not answer', 'UNREACHABLE');
          }
          await clock.sleep(durationOf(index));
          stored.add(to);
          backedUp.set(tenant, (backedUp.get(tenant) ?? 0) + 1);
          doneAt.set(tenant, clock.now);
          return { operation: 'backup', tenant, location: to, files: 10_000, directories: 100, symlinks: 0, bytes: 2 ** 30, archiveBytes: 2 ** 29, durationMs: durationOf(index), createdAt: '', manifestSha256: '', skipped: [], warnings: [], notices: [], recovered: 'none' } satisfies BackupResult;
        } finally {
          running.delete(tenant);
        }
      },
    };
    const records: OperationRecord[] = [];
    const consume = workQueueHandler({
      config: { tenantsDir: '/mnt/tenants', backupBucket: 'my-bucket', backupKeyPrefix: 'backups/', allowedSourceBuckets: [], abortMarginMs: 60_000 },
      logger,
      publish: async () => {},
      operations: operations as TenantOperations,
      metrics: { record: (record) => void records.push(record), count() {} },
    });

    // ---- The night: the schedule fires the fan-out; the mapping drains the queue as it fills.
    let fanOutAnswer: unknown;
    const fanOutDone = fanOut({ source: 'openclaw.fanout', version: 1, to: 's3://my-bucket/backups/{tenant}/{date}.tar.zst', cronName: 'nightly', time: '2026-06-03T01:00:00Z', runId: 'exec-1' }, context(clock, 0, 'openclaw-backup-fanout')).then((answer) => (fanOutAnswer = answer));
    const stats = await drain(queue, clock, (event, invocation) => consume(event, context(clock, invocation.startedAt, 'openclaw-backup-backup')), concurrency, () => fanOutAnswer === undefined);
    await fanOutDone;

    // The fan-out: ten pages, batches of at most ten, throttling answered with back-off, nothing lost.
    expect(fanOutAnswer).toMatchObject({ operation: 'backup-all', runId: 'exec-1', tenants: TENANTS, queued: TENANTS, failed: [] });
    expect(pagesAsked).toEqual([undefined, ...Array.from({ length: 9 }, (_, page) => names[(page + 1) * 1000 - 1])]);
    expect(Math.max(...batchSizes)).toBe(10);
    expect(requests).toBeGreaterThan(TENANTS / 10);
    // Each throttled or partly failed request was followed by one back-off and one request more.
    expect(backOffs.length).toBe(requests - TENANTS / 10);
    expect(backOffs.length).toBeGreaterThan(100);
    expect(backOffs.every((ms) => ms > 0 && ms <= 10_000)).toBe(true);

    // Every tenant that exists was backed up, exactly once; none that vanished; none twice.
    const expected = names.filter((name) => !vanished.has(name) && !doomed.has(name));
    expect(backedUp.size).toBe(expected.length);
    expect([...backedUp.values()].every((times) => times === 1)).toBe(true);
    expect(expected.every((name) => backedUp.has(name))).toBe(true);

    // Bounded: never more than the mapping's maximum, and the maximum in use.
    expect(concurrency).toBe(100);
    expect(stats.mostAtOnce).toBe(concurrency);
    expect(mostBackupsAtOnce).toBeLessThanOrEqual(concurrency);

    // A vanished tenant is one skip; a doomed one three failures and a DLQ message; nobody else failed for good.
    const outcomes = (tenant: string) => records.filter((record) => record.tenant === tenant).map((record) => record.outcome);
    for (const tenant of vanished) expect(outcomes(tenant)).toEqual(['skipped']);
    for (const tenant of doomed) expect(outcomes(tenant)).toEqual(['failed', 'failed', 'failed']);
    for (const tenant of flaky) expect(outcomes(tenant)).toEqual(['failed', 'succeeded']);
    expect(queue.deadLetters.map((message) => parseWorkMessage(message.body).tenant).sort()).toEqual([...doomed].sort());
    expect(queue.deadLetters.every((message) => message.receiveCount === DEFAULT_MAX_RECEIVE_COUNT)).toBe(true);
    // The second copies of a message found the tenant busy or its archive stored, and never ran.
    for (const tenant of deliveredTwice) expect(outcomes(tenant).filter((outcome) => outcome === 'succeeded')).toHaveLength(1);
    expect(records.filter((record) => record.outcome === 'succeeded')).toHaveLength(expected.length);

    // The window: every tenant that did not fail was done within 2 hours of the schedule;
    // the retries of the ones that did came later, one visibility timeout per attempt.
    const bulkDoneAt = Math.max(...expected.filter((tenant) => !flaky.has(tenant)).map((tenant) => doneAt.get(tenant)!));
    expect(bulkDoneAt).toBeLessThanOrEqual(WINDOW_MS);
    expect(stats.finishedAt).toBeLessThanOrEqual(WINDOW_MS + DEFAULT_MAX_RECEIVE_COUNT * DEFAULT_WORK_VISIBILITY_TIMEOUT.toMilliseconds());
  }, 120_000);
});
