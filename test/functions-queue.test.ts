// The backup function fed by its SQS event source mapping (functions/queue-handler.ts):
// real backups of real tenants (a temp dir stands for the EFS mount, s3rver for the bucket)
// from work queue messages, and the partial batch response: one tenant's failure never
// touches another's, a vanished tenant and an existing archive are skipped (not failures,
// no completion event), a message of a newer version fails so it lands in the DLQ, one that
// will never read is answered (a failure, not handed back), a message that
// would start too late is handed back unstarted; a message with recipients stores an age file
// the age CLI decrypts. Metrics and completion events are captured. The base dir is listed
// once per batch (the sweep and the abandoned-chain check share it), and once per direct backup.

import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Logger } from '@aws-lambda-powertools/logger';
import { mockClient } from 'aws-sdk-client-mock';
import { promises as fsp, readFileSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

import { createSampleTenant } from '../scripts/sample-tenant.js';
import type { FunctionConfig } from '../shared/control-plane/function-config.js';
import { encodeWorkMessage, parseWorkMessage, type BackupWorkMessage } from '../shared/control-plane/work-queue.js';
import { createS3Client } from '../shared/storage/s3-client.js';
import { localOperations, type TenantOperations } from '../shared/operations.js';
import { completionPublisher } from '../functions/events.js';
import type { LambdaContext } from '../functions/lambda-context.js';
import type { OperationRecord } from '../functions/metrics.js';
import { workQueueHandler } from '../functions/queue-handler.js';
import { isSqsBatch, type SqsRecord } from '../functions/sqs-batch.js';
import { backupHandler } from '../functions/backup-handler.js';
import { publishedEvents } from './helpers/continuation.js';
import { sh, tempDir } from './helpers/tree.js';
import { S3RVER_ACCESS_KEY, startS3Server, type S3TestServer } from './helpers/s3-server.js';
import { lambdaContext } from './helpers/lambda-context.js';

const dir = tempDir('openclaw-queue-');
const base = path.join(dir.path, 'mnt-tenants');
const eventBridge = mockClient(EventBridgeClient);
const logger = new Logger({ serviceName: 'openclaw-backup-test', logLevel: 'SILENT' });
let server: S3TestServer;
let config: FunctionConfig;
let operations: TenantOperations;

function context(remainingMs = 900_000): LambdaContext {
  const deadline = Date.now() + remainingMs;
  return lambdaContext({ awsRequestId: 'req-q', memoryLimitInMB: '2048', remaining: () => Math.max(0, deadline - Date.now()) });
}

function message(tenant: string, to = `s3://backups/nightly/${tenant}/2026-06-03.tar.zst`): BackupWorkMessage {
  return { version: 1, kind: 'backup', tenant, to, run: { id: 'run-7', time: '2026-06-03T03:00:00.000Z', template: 's3://backups/nightly/{tenant}/{date}.tar.zst', cronName: 'nightly' } };
}

function record(id: string, body: string, receiveCount = 1): SqsRecord {
  return { messageId: id, body, eventSource: 'aws:sqs', attributes: { ApproximateReceiveCount: String(receiveCount) } };
}

function handler() {
  const records: OperationRecord[] = [];
  const publish = completionPublisher(new EventBridgeClient({ region: 'eu-west-1' }), 'openclaw-backup-events', logger);
  const metrics = { record: (entry: OperationRecord) => void records.push(entry), count() {} };
  return { handle: workQueueHandler({ config, logger, publish, operations, metrics }), records };
}

/** A handler whose log lines are kept and shown to `onLine` as they are written (a test's clock can follow them). */
function handlerWatchingItsLog(onLine: (line: Record<string, unknown>) => void) {
  const lines: Record<string, unknown>[] = [];
  const logging = new Logger({ serviceName: 'openclaw-backup-test', logLevel: 'INFO' });
  const capture = (chunk: string | Uint8Array): boolean => {
    const line = JSON.parse(String(chunk)) as Record<string, unknown>;
    lines.push(line);
    onLine(line);
    return true;
  };
  vi.spyOn(process.stdout, 'write').mockImplementation(capture);
  vi.spyOn(process.stderr, 'write').mockImplementation(capture);
  const records: OperationRecord[] = [];
  const publish = completionPublisher(new EventBridgeClient({ region: 'eu-west-1' }), 'openclaw-backup-events', logging);
  const handle = workQueueHandler({ config, logger: logging, publish, operations, metrics: { record: (entry: OperationRecord) => void records.push(entry), count() {} } });
  return { handle, lines, records };
}

const events = () => publishedEvents(eventBridge);

beforeAll(async () => {
  createSampleTenant(path.join(base, 'acme'), { sessions: 2, memoryRows: 10, mediaFiles: 0 });
  createSampleTenant(path.join(base, 'beta'), { sessions: 1, memoryRows: 5, mediaFiles: 0 });
  server = await startS3Server({ bucket: 'backups' });
  config = { tenantsDir: base, backupBucket: 'backups', allowedSourceBuckets: [], eventBus: 'openclaw-backup-events', stackPrefix: 'openclaw-backup', abortMarginMs: 1000 };
  // The function writes with its role to AWS S3; here the same backups go to s3rver.
  const local = localOperations(base);
  operations = {
    ...local,
    backup: (command, hooks) => local.backup({ ...command, storage: { endpoint: server.endpoint, accessKey: S3RVER_ACCESS_KEY, secretKey: 'x' } }, hooks),
  };
});
afterAll(async () => {
  eventBridge.restore();
  await server.dispose();
  dir.cleanup();
});
beforeEach(() => {
  eventBridge.reset();
  eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e' }] });
});
afterEach(() => vi.restoreAllMocks());

describe('work queue handler', () => {
  it('recognises SQS batches only', () => {
    expect(isSqsBatch({ Records: [record('m1', '{}')] })).toBe(true);
    expect(isSqsBatch({ Records: [] })).toBe(false);
    expect(isSqsBatch({ Records: [{ eventSource: 'aws:s3', messageId: 'x', body: '' }] })).toBe(false);
    expect(isSqsBatch({ tenant: 'acme', to: 's3://b/k' })).toBe(false);
  });

  it('backs up each tenant of a batch on its own: one failure is reported alone, a vanished tenant is skipped', async () => {
    const { handle, records } = handler();
    const answer = await handle(
      {
        Records: [
          record('m-acme', encodeWorkMessage(message('acme'))),
          record('m-ghost', encodeWorkMessage(message('ghost'))),
          // The gateway may write only to its own bucket: refused, and reported for a retry.
          record('m-elsewhere', encodeWorkMessage(message('beta', 's3://not-ours/beta.tar.zst'))),
          record('m-beta', encodeWorkMessage(message('beta'))),
        ],
      },
      context(),
    );
    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-elsewhere' }] });
    expect(records.map((entry) => [entry.tenant, entry.outcome, entry.trigger, entry.errorCode])).toEqual([
      ['acme', 'succeeded', 'queue', undefined],
      ['ghost', 'skipped', 'queue', 'TENANT_NOT_FOUND'],
      ['beta', 'failed', 'queue', 'LOCATION_NOT_ALLOWED'],
      ['beta', 'succeeded', 'queue', undefined],
    ]);
    expect(records[0]).toMatchObject({ runId: 'run-7', cronName: 'nightly', bytes: expect.any(Number), archiveBytes: expect.any(Number), files: expect.any(Number) });
    expect(records[1]!.reason).toMatch(/vanished/);
    // Completion events for the backups that ran or failed; none for the skip.
    expect(events().map((event) => [event.detailType, event.detail.tenant, event.detail.trigger, event.detail.runId])).toEqual([
      ['OpenClaw Backup Succeeded', 'acme', 'queue', 'run-7'],
      ['OpenClaw Backup Failed', 'beta', 'queue', 'run-7'],
      ['OpenClaw Backup Succeeded', 'beta', 'queue', 'run-7'],
    ]);
  });

  it('skips a message whose archive exists already (a repeated fan-out, or an attempt that finished)', async () => {
    const { handle, records } = handler();
    const body = encodeWorkMessage(message('acme', 's3://backups/twice/acme.tar.zst'));
    expect(await handle({ Records: [record('first', body)] }, context())).toEqual({ batchItemFailures: [] });
    expect(await handle({ Records: [record('again', body, 2)] }, context())).toEqual({ batchItemFailures: [] });
    expect(records.map((entry) => [entry.outcome, entry.errorCode])).toEqual([
      ['succeeded', undefined],
      ['skipped', 'DESTINATION_EXISTS'],
    ]);
  });

  it('hands back a message of a version or field it does not know, so that it reaches the DLQ as it was for a redrive', async () => {
    const { handle, records } = handler();
    const newer = JSON.stringify({ ...message('acme'), version: 2 });
    const newField = JSON.stringify({ ...message('acme'), priority: 'high' });
    const answer = await handle({ Records: [record('m-newer', newer), record('m-new-field', newField)] }, context());
    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-newer' }, { itemIdentifier: 'm-new-field' }] });
    expect(records.map((entry) => [entry.outcome, entry.errorCode, entry.tenant])).toEqual([
      ['failed', 'INVALID_REQUEST', 'acme'],
      ['failed', 'INVALID_REQUEST', 'acme'],
    ]);
  });

  // Every receive published "OpenClaw Backup Failed" (tenant null) and counted Failed: three
  // failure events for one message that only waits for a redrive, and nothing ran.
  it('hands back a message of a newer version on every receive without a completion event, counted in Failed on its first receive only', async () => {
    const { handle, lines, records } = handlerWatchingItsLog(() => {});
    const newer = JSON.stringify({ ...message('acme'), version: 2 });
    for (const receive of [1, 2, 3]) {
      expect(await handle({ Records: [record('m-newer', newer, receive)] }, context())).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-newer' }] });
    }
    expect(events()).toEqual([]);
    expect(records.map((entry) => [entry.outcome, entry.errorCode, entry.tenant])).toEqual([['failed', 'INVALID_REQUEST', 'acme']]);
    const handedBack = lines.filter((line) => line.message === 'queued backup handed back unread');
    expect(handedBack.map((line) => line.attempt)).toEqual([1, 2, 3]);
    expect(handedBack[0]).toMatchObject({ tenant: 'acme', errorMessage: expect.stringMatching(/^work queue message: version 2 is not one this backup function knows/), reason: expect.stringMatching(/newer version wrote it: it goes to the work DLQ .*redrive the work DLQ$/) });
    expect(lines.filter((line) => line.message === 'backup failed')).toEqual([]);
  });

  it('answers a message that will never read (not JSON, a field of the wrong type): a failure of the tenant it names, logged with its body, not handed back', async () => {
    const { handle, lines, records } = handlerWatchingItsLog(() => {});
    const wrongType = JSON.stringify({ ...message('acme'), to: 42 });
    const answer = await handle({ Records: [record('m-junk', 'not json'), record('m-wrong-type', wrongType)] }, context());
    expect(answer).toEqual({ batchItemFailures: [] });
    // The tenant a message names is the failure's (the monitor records it), when it names one.
    expect(records.map((entry) => [entry.outcome, entry.errorCode, entry.tenant])).toEqual([
      ['failed', 'INVALID_REQUEST', null],
      ['failed', 'INVALID_REQUEST', 'acme'],
    ]);
    expect(events().map((event) => [event.detailType, event.detail.tenant, (event.detail.error as { message: string }).message])).toEqual([
      ['OpenClaw Backup Failed', null, 'work queue message: not JSON'],
      ['OpenClaw Backup Failed', 'acme', 'work queue message: "to" must be an s3:// URL'],
    ]);
    const notRetried = lines.filter((line) => line.message === 'queued backup not retried');
    expect(notRetried.map((line) => [line.messageId, line.body])).toEqual([
      ['m-junk', 'not json'],
      ['m-wrong-type', wrongType],
    ]);
    expect(notRetried[0]!.reason).toMatch(/does not read as a work queue message/);
  });

  it('encrypts the archive to the message\'s recipients: the age CLI decrypts it', async () => {
    const key = path.join(dir.path, 'queue-key.txt');
    sh(`age-keygen -o '${key}' 2>/dev/null`);
    const recipient = sh(`age-keygen -y '${key}'`).toString().trim();
    const { handle, records } = handler();
    const to = 's3://backups/encrypted/acme.tar.zst.age';
    expect(await handle({ Records: [record('m-age', encodeWorkMessage({ ...message('acme', to), encryptTo: [recipient] }))] }, context())).toEqual({ batchItemFailures: [] });
    expect(records.map((entry) => [entry.tenant, entry.outcome])).toEqual([['acme', 'succeeded']]);
    const client = await createS3Client(server.clientOptions);
    const stored = await client.send(new GetObjectCommand({ Bucket: 'backups', Key: 'encrypted/acme.tar.zst.age' }));
    const file = path.join(dir.path, 'queued.tar.zst.age');
    writeFileSync(file, await stored.Body!.transformToByteArray());
    client.destroy();
    expect(readFileSync(file).subarray(0, 21).toString()).toBe('age-encryption.org/v1');
    expect(sh(`age -d -i '${key}' '${file}' | zstd -dq | tar -t`).toString()).toContain('tenants/acme/.openclaw-backup-manifest.json');
  });

  it('fails a message whose recipient is not an age1… public key, before anything is written, and does not hand it back', async () => {
    const { handle, records } = handler();
    const body = encodeWorkMessage({ ...message('acme', 's3://backups/bad-key/acme.tar.zst.age'), encryptTo: ['age1notakey'] });
    expect(await handle({ Records: [record('m-bad-key', body)] }, context())).toEqual({ batchItemFailures: [] });
    expect(records.map((entry) => [entry.outcome, entry.errorCode])).toEqual([['failed', 'INVALID_REQUEST']]);
    expect(() => parseWorkMessage(body)).toThrow(/work queue message: "encryptTo": recipient "age1notakey" is malformed/);
  });

  it('lists the base dir once per batch, however many messages it holds, and once per direct backup', async () => {
    // As deployed, with a work queue to continue on (the abandoned-chain check runs); in one piece here.
    const deps = { config, logger, publish: async () => {}, operations: { ...operations, backupPiece: undefined }, continueBackup: async () => {} };
    const listingsOf = async (invoke: () => Promise<unknown>) => {
      const readdir = vi.spyOn(fsp, 'readdir');
      syncBuiltinESMExports();
      try {
        await invoke();
        return readdir.mock.calls.filter(([at]) => path.resolve(String(at)) === base).length;
      } finally {
        readdir.mockRestore();
        syncBuiltinESMExports();
      }
    };
    const batch = (size: number) => () =>
      workQueueHandler(deps)(
        { Records: Array.from({ length: size }, (_, index) => record(`m-${size}-${index}`, encodeWorkMessage(message(index % 2 === 0 ? 'acme' : 'beta', `s3://backups/listings/${size}-${index}.tar.zst`)))) },
        context(),
      );
    expect(await listingsOf(batch(2))).toBe(1);
    expect(await listingsOf(batch(6))).toBe(1);
    const direct = await listingsOf(() => backupHandler(deps)({ tenant: 'acme', to: 's3://backups/listings/direct.tar.zst' }, context()));
    expect(direct).toBe(1);
    const stored = await createS3Client(server.clientOptions).then((client) => client.send(new ListObjectsV2Command({ Bucket: 'backups', Prefix: 'listings/' })).finally(() => client.destroy()));
    expect(stored.Contents?.map((item) => item.Key).sort()).toEqual(['listings/2-0.tar.zst', 'listings/2-1.tar.zst', ...Array.from({ length: 6 }, (_, index) => `listings/6-${index}.tar.zst`), 'listings/direct.tar.zst'].sort());
  });

  it('answers a backup its invocation\'s deadline stopped as failed, not handed back: each further receive would run into the same deadline', async () => {
    let timeLeft = 900_000;
    const { handle, lines, records } = handlerWatchingItsLog((line) => {
      // The invocation's time runs out once the backup has started (a file longer than the invocation).
      if (line.message === 'backup started') timeLeft = 0;
    });

    const answer = await handle({ Records: [record('stopped', encodeWorkMessage(message('acme', 's3://backups/stopped/acme.tar.zst')))] }, lambdaContext({ remaining: () => timeLeft }));

    expect(answer).toEqual({ batchItemFailures: [] });
    expect(records).toEqual([expect.objectContaining({ operation: 'backup', outcome: 'failed', trigger: 'queue', tenant: 'acme', errorCode: 'ABORTED', cronName: 'nightly' })]);
    // (Its failure event too, which an invocation with no time left at all does not get to send.)
    expect(lines.find((line) => line.message === 'queued backup not retried')).toMatchObject({ level: 'ERROR', messageId: 'stopped', errorCode: 'ABORTED' });
  });

  it('hands back a backup the deadline stopped after another of its batch used part of the invocation: a receive of its own has the whole time', async () => {
    let timeLeft = 900_000;
    let started = 0;
    const { handle, lines, records } = handlerWatchingItsLog((line) => {
      // The first backup of the batch takes ten minutes; the second starts with five and runs out.
      if (line.message === 'backup started' && ++started === 2) timeLeft = 0;
      if (line.message === 'backup finished') timeLeft = 300_000;
    });

    const answer = await handle(
      {
        Records: [
          record('first', encodeWorkMessage(message('beta', 's3://backups/late/beta.tar.zst'))),
          record('late', encodeWorkMessage(message('acme', 's3://backups/late/acme.tar.zst'))),
        ],
      },
      lambdaContext({ remaining: () => timeLeft }),
    );

    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: 'late' }] });
    expect(records).toEqual([expect.objectContaining({ tenant: 'beta', outcome: 'succeeded' }), expect.objectContaining({ tenant: 'acme', outcome: 'failed', errorCode: 'ABORTED' })]);
    expect(lines.find((line) => line.message === 'queued backup not retried')).toBeUndefined();
  });

  it('still hands back a backup that failed otherwise, for the queue to try again', async () => {
    const { handle } = handler();
    const answer = await handle({ Records: [record('refused', encodeWorkMessage(message('acme', 's3://nobucket/acme.tar.zst')))] }, context());
    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: 'refused' }] });
  });

  it('hands back unstarted a message the invocation has no time left for', async () => {
    const { handle, records } = handler();
    const answer = await handle({ Records: [record('late', encodeWorkMessage(message('acme', 's3://backups/late/acme.tar.zst')))] }, context(20_000));
    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: 'late' }] });
    expect(records).toEqual([]);
  });
});
