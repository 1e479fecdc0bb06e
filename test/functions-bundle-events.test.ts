// The backup function's bundle and the success of a backup whose attempt was killed after it
// stored its archive and before it published its completion event (crash point
// `backup:stored`, as a timeout's reset kills the runtime process). The attempt that comes
// next for the same run (Lambda's retry of a scheduled event, with the same request ID; SQS's
// redelivery of a queued backup's message) finds the archive its run stored, and says the
// success then: the monitor heard nothing from the killed attempt, and its freshness alarm
// would call the tenant stale. Another run's archive at the same key says nothing of this run.
// Each invocation is a runtime process with Node 24 on the bundle as the stack builds it;
// s3rver stands in for S3, a small HTTP server for EventBridge.

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { GetObjectCommand, GetObjectTaggingCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { createSampleTenant } from '../scripts/sample-tenant.js';
import { generateIdentity } from '../shared/age/index.js';
import { encodeWorkMessage } from '../shared/control-plane/work-queue.js';
import { backupFunctionEnvironment, bundleFunction, invokeInSandbox, node24, startEventBridgeStandIn, type EventBridgeStandIn, type PublishedEvent, type SandboxInvocation } from './helpers/function-bundle.js';
import { S3RVER_ACCESS_KEY, startS3Server, startTaggingRefusingProxy, type S3TestServer } from './helpers/s3-server.js';
import { tempDir } from './helpers/tree.js';

const dir = tempDir('openclaw-bundle-events-');
const base = path.join(dir.path, 'mnt-tenants');
const sandboxTmp = path.join(dir.path, 'sandbox-tmp');
let bundle: string;
let server: S3TestServer;
let eventBridge: EventBridgeStandIn;
const events: PublishedEvent[] = [];

/** One invocation in a fresh runtime process (a sandbox) with the request ID given, its completion events sent to the stand-in bus. */
function invoke(event: unknown, requestId: string, crashAt?: string, extraEnv: Record<string, string> = {}): Promise<SandboxInvocation> {
  const env = backupFunctionEnvironment(base, server.endpoint, {
    TMPDIR: sandboxTmp,
    OPENCLAW_EVENT_BUS: 'openclaw-backup-events',
    AWS_ENDPOINT_URL_EVENTBRIDGE: eventBridge.endpoint,
    // Queued backups carry no endpoint: the function's environment names it, as a stack behind a custom endpoint would.
    AWS_ENDPOINT_URL_S3: server.endpoint,
    ...(crashAt !== undefined && { OPENCLAW_TEST_CRASH_AT: crashAt }),
    ...extraEnv,
  });
  return invokeInSandbox(bundle, event, { requestId, env });
}

/** What S3 says of the archive: its size and the manifest digest its backup tagged it with. */
async function stored(key: string): Promise<{ bytes: number; digest: string | undefined }> {
  const s3 = new S3Client({ region: 'us-east-1', endpoint: server.endpoint, forcePathStyle: true, credentials: { accessKeyId: S3RVER_ACCESS_KEY, secretAccessKey: 'x' } });
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'backups', Key: key }));
    const tags = await s3.send(new GetObjectTaggingCommand({ Bucket: 'backups', Key: key }));
    return { bytes: head.ContentLength!, digest: tags.TagSet?.find((tag) => tag.Key === 'openclaw-manifest-sha256')?.Value };
  } finally {
    s3.destroy();
  }
}

/**
 * What a writer allowed s3:PutObject leaves at the key (another tool, a copy cut short, a forger
 * who read the run's ID in a failure event): the first `keep` bytes of the object there, under
 * the very user metadata it had (the run's ID, tenant, creation time, seal), no tags.
 */
async function cutInPlace(key: string, keep: number): Promise<void> {
  const s3 = new S3Client({ region: 'us-east-1', endpoint: server.endpoint, forcePathStyle: true, credentials: { accessKeyId: S3RVER_ACCESS_KEY, secretAccessKey: 'x' }, requestChecksumCalculation: 'WHEN_REQUIRED' });
  try {
    const object = await s3.send(new GetObjectCommand({ Bucket: 'backups', Key: key }));
    const bytes = Buffer.from(await object.Body!.transformToByteArray());
    await s3.send(new PutObjectCommand({ Bucket: 'backups', Key: key, Body: bytes.subarray(0, keep), Metadata: object.Metadata }));
  } finally {
    s3.destroy();
  }
}

/** The outcomes an invocation counted in its metrics (CloudWatch's embedded metric format on stdout): Succeeded, Failed, Refused, Skipped. */
function countedOutcomes(invocation: SandboxInvocation): string[] {
  return invocation.stdout
    .split('\n')
    .filter((line) => line.startsWith('{') && line.includes('"_aws"'))
    .flatMap((line) => Object.keys(JSON.parse(line) as Record<string, unknown>).filter((key) => ['Succeeded', 'Failed', 'Refused', 'Skipped'].includes(key)));
}

function scheduled(eventId: string, key: string, endpoint = server.endpoint): Record<string, unknown> {
  return { source: 'openclaw.cron', tenant: 'acme', cronName: 'nightly', time: '2026-06-04T03:00:00Z', eventId, command: { tenant: 'acme', to: `s3://backups/${key}`, storage: { endpoint } } };
}

function queued(messageId: string, key: string, runId: string, receiveCount: number): Record<string, unknown> {
  const body = encodeWorkMessage({ version: 1, kind: 'backup', tenant: 'acme', to: `s3://backups/${key}`, run: { id: runId, time: '2026-06-04T03:00:00.000Z', template: 's3://backups/queued/{tenant}.tar.zst', cronName: 'nightly' } });
  return { Records: [{ messageId, body, eventSource: 'aws:sqs', attributes: { ApproximateReceiveCount: String(receiveCount) } }] };
}

beforeAll(async () => {
  if (node24 === undefined) return;
  createSampleTenant(path.join(base, 'acme'), { sessions: 1, memoryRows: 20, mediaFiles: 0 });
  mkdirSync(sandboxTmp);
  server = await startS3Server({ bucket: 'backups' });
  eventBridge = await startEventBridgeStandIn(events);
  bundle = await bundleFunction('backup', path.join(dir.path, 'asset'));
}, 120_000);

afterAll(async () => {
  await server?.dispose();
  await eventBridge?.close();
  dir.cleanup();
});

beforeEach(() => {
  events.length = 0;
});

describe.skipIf(node24 === undefined)('the backup bundle after an attempt killed between storing its archive and publishing its success', () => {
  it("publishes the success on Lambda's retry of the scheduled event, with the operation ID the killed attempt had", async () => {
    const killed = await invoke(scheduled('ev-killed', 'scheduled/acme.tar.zst'), 'req-scheduled', 'backup:stored');
    expect(killed.signal ?? killed.status).toBe('SIGKILL');
    expect(events).toEqual([]);
    const archive = await stored('scheduled/acme.tar.zst');
    expect(archive.digest).toMatch(/^[0-9a-f]{64}$/);

    // Lambda's retries of an asynchronous invocation keep its request ID.
    const retried = await invoke(scheduled('ev-killed', 'scheduled/acme.tar.zst'), 'req-scheduled');
    expect(retried.answer).toEqual({ operation: 'backup', skipped: 'an earlier attempt of this scheduled run stored its archive' });
    expect(events).toEqual([
      {
        DetailType: 'OpenClaw Backup Succeeded',
        Detail: expect.objectContaining({ tenant: 'acme', location: 's3://backups/scheduled/acme.tar.zst', trigger: 'schedule', cronName: 'nightly', operationId: 'req-scheduled', archiveBytes: archive.bytes, manifestSha256: archive.digest }),
      },
    ]);
    // A success said late is counted as one (the dashboard's backups succeeded), not as skipped.
    expect(countedOutcomes(retried)).toEqual(['Succeeded']);
  });

  it("publishes the success on SQS's redelivery of a queued backup's message, with the operation ID the killed attempt had (its request ID, stored with the archive)", async () => {
    const killed = await invoke(queued('m-1', 'queued/acme.tar.zst', 'run-queued', 1), 'req-queued-1', 'backup:stored');
    expect(killed.signal ?? killed.status).toBe('SIGKILL');
    expect(events).toEqual([]);
    const archive = await stored('queued/acme.tar.zst');

    const redelivered = await invoke(queued('m-1', 'queued/acme.tar.zst', 'run-queued', 2), 'req-queued-2');
    expect(redelivered.answer).toEqual({ batchItemFailures: [] });
    expect(events).toEqual([
      {
        DetailType: 'OpenClaw Backup Succeeded',
        Detail: expect.objectContaining({ tenant: 'acme', location: 's3://backups/queued/acme.tar.zst', trigger: 'queue', runId: 'run-queued', cronName: 'nightly', operationId: 'req-queued-1', requestId: 'req-queued-2', archiveBytes: archive.bytes, manifestSha256: archive.digest }),
      },
    ]);
    expect(countedOutcomes(redelivered)).toEqual(['Succeeded']);
  });

  it("publishes no success for an archive another run stored at the same key", async () => {
    expect((await invoke(scheduled('ev-first', 'other/acme.tar.zst'), 'req-first')).answer).toMatchObject({ operation: 'backup', tenant: 'acme' });
    expect(events.map((event) => event.DetailType)).toEqual(['OpenClaw Backup Succeeded']);
    events.length = 0;

    // Another scheduled run writing the same key: refused, thrown, its failure announced.
    const otherSchedule = await invoke(scheduled('ev-second', 'other/acme.tar.zst'), 'req-second');
    expect(otherSchedule.answer).toMatchObject({ thrown: 'DestinationExistsError' });
    // A queued backup of another fan-out run: skipped (its archive exists), nothing said of it.
    const otherRun = await invoke(queued('m-2', 'other/acme.tar.zst', 'run-other', 1), 'req-other');
    expect(otherRun.answer).toEqual({ batchItemFailures: [] });
    expect(events.map((event) => event.DetailType)).toEqual(['OpenClaw Backup Failed']);
  });

  it("publishes the run's failure, once and under the killed attempt's operation ID, for an object at the key naming the run that is no complete backup (cut short, its metadata kept)", async () => {
    const killed = await invoke(scheduled('ev-cut', 'cut/acme.tar.zst'), 'req-cut', 'backup:stored');
    expect(killed.signal ?? killed.status).toBe('SIGKILL');
    const archive = await stored('cut/acme.tar.zst');
    await cutInPlace('cut/acme.tar.zst', Math.floor(archive.bytes / 2));
    expect((await stored('cut/acme.tar.zst')).bytes).toBe(Math.floor(archive.bytes / 2));

    // The key is taken by no backup: no attempt of this run will store one, so none is thrown to Lambda's retries.
    const notWhole = /^s3:\/\/backups\/cut(-queued)?\/acme\.tar\.zst: the object an earlier attempt of this run stored there is no complete backup \(.+\): this run stored no backup of "acme"; back it up again to another key$/;
    const retried = await invoke(scheduled('ev-cut', 'cut/acme.tar.zst'), 'req-cut');
    expect(retried.answer).toEqual({ ok: false, error: { code: 'CORRUPT_ARCHIVE', outcome: 'refused', message: expect.stringMatching(notWhole) } });
    expect(events).toEqual([
      {
        DetailType: 'OpenClaw Backup Failed',
        Detail: expect.objectContaining({ tenant: 'acme', location: 's3://backups/cut/acme.tar.zst', trigger: 'schedule', cronName: 'nightly', operationId: 'req-cut', error: { code: 'CORRUPT_ARCHIVE', message: expect.stringMatching(notWhole) } }),
      },
    ]);
    expect(countedOutcomes(retried)).toEqual(['Failed']);
    events.length = 0;

    // A queued backup's redelivery over its first delivery's archive cut so: its failure, under the first delivery's operation ID.
    await invoke(queued('m-cut', 'cut-queued/acme.tar.zst', 'run-cut', 1), 'req-cut-q1', 'backup:stored');
    const queuedArchive = await stored('cut-queued/acme.tar.zst');
    await cutInPlace('cut-queued/acme.tar.zst', queuedArchive.bytes - 1);
    const redelivered = await invoke(queued('m-cut', 'cut-queued/acme.tar.zst', 'run-cut', 2), 'req-cut-q2');
    expect(redelivered.answer).toEqual({ batchItemFailures: [] });
    expect(events).toEqual([
      {
        DetailType: 'OpenClaw Backup Failed',
        Detail: expect.objectContaining({ tenant: 'acme', location: 's3://backups/cut-queued/acme.tar.zst', trigger: 'queue', runId: 'run-cut', operationId: 'req-cut-q1', requestId: 'req-cut-q2', error: { code: 'CORRUPT_ARCHIVE', message: expect.stringMatching(notWhole) } }),
      },
    ]);
    expect(countedOutcomes(redelivered)).toEqual(['Failed']);
  });

  it('publishes its failure, not a success, for a plain archive of the run when the stack now encrypts every backup (its recipients set between the attempts)', async () => {
    const killed = await invoke(scheduled('ev-plain', 'plain/acme.tar.zst'), 'req-plain', 'backup:stored');
    expect(killed.signal ?? killed.status).toBe('SIGKILL');
    expect((await stored('plain/acme.tar.zst')).digest).toMatch(/^[0-9a-f]{64}$/);

    const retried = await invoke(scheduled('ev-plain', 'plain/acme.tar.zst'), 'req-plain', undefined, { OPENCLAW_ENCRYPT_TO: generateIdentity().recipient.text });
    expect(retried.answer).toMatchObject({ ok: false, error: { code: 'CORRUPT_ARCHIVE' } });
    // Its failure: the run stored no backup as the stack now writes them.
    expect(events.map((event) => [event.DetailType, event.Detail.operationId])).toEqual([['OpenClaw Backup Failed', 'req-plain']]);
  });

  it("publishes no failure for an encrypted archive of the run that its attempt could not tag (a store without tagging, a denied or throttled call): whole, though nothing recorded it so", async () => {
    // The stack encrypts every backup; the killed attempt's tagging was refused (as R2 answers every tagging call), so its
    // archive stands untagged: its bytes cannot show it whole, and nothing recorded it whole. It is this run's whole backup.
    const recipient = generateIdentity().recipient.text;
    const refusing = await startTaggingRefusingProxy(server.endpoint);
    try {
      const killed = await invoke(scheduled('ev-untagged', 'untagged/acme.tar.zst', refusing.endpoint), 'req-untagged', 'backup:stored', { OPENCLAW_ENCRYPT_TO: recipient, OPENCLAW_ALLOWED_ENDPOINTS: refusing.endpoint, AWS_ENDPOINT_URL_S3: refusing.endpoint });
      expect(killed.signal ?? killed.status).toBe('SIGKILL');
    } finally {
      await refusing.stop();
    }
    expect((await stored('untagged/acme.tar.zst')).digest).toBeUndefined();

    const retried = await invoke(scheduled('ev-untagged', 'untagged/acme.tar.zst'), 'req-untagged', undefined, { OPENCLAW_ENCRYPT_TO: recipient });
    // Not "this run stored no backup": a retry cannot tell (its WARN log says so; tenants verify tells).
    expect(retried.answer).toEqual({ operation: 'backup', skipped: 'an earlier attempt of this scheduled run stored its archive' });
    expect(events).toEqual([]);
    expect(countedOutcomes(retried)).toEqual(['Skipped']);
  });
});
