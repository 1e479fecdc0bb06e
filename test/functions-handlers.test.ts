// The Lambda handlers invoked with real event shapes: a direct-invoke payload as the CLI
// sends it, a scheduled EventBridge event run through the input transformer `cron add`
// puts on its rules, and restore payloads. A temp dir stands for the EFS mount, s3rver for
// S3 (an S3-compatible endpoint, as allowed from the VPC); EventBridge PutEvents is mocked
// and its exact input checked. A fake Lambda context supplies the deadline.

import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { TenantOperations } from '../shared/operations.js';
import { localOperations } from '../shared/operations.js';
import { Logger } from '@aws-lambda-powertools/logger';
import { mockClient } from 'aws-sdk-client-mock';
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

import { createSampleTenant } from '../scripts/sample-tenant.js';
import { cronTargetInput, parseCronCommand } from '../shared/schedule/cron-command.js';
import { readFunctionConfig, type FunctionConfig } from '../shared/control-plane/function-config.js';
import { completionPublisher } from '../functions/events.js';
import { backupHandler } from '../functions/backup-handler.js';
import { backupsPage, tenantsPage } from '../shared/control-plane/list-pages.js';
import { boundedOwnership } from '../shared/control-plane/bounded-answers.js';
import { listHandler } from '../functions/list-handler.js';
import { restoreHandler } from '../functions/restore-handler.js';
import { ScheduledOperationError } from '../functions/scheduled-error.js';
import type { LambdaContext } from '../functions/lambda-context.js';
import { AbortedError } from '../shared/errors.js';
import { summarizeTenant, summarizeTenants } from '../shared/tenant/tenants.js';
import { describeTree, runCli, tempDir } from './helpers/tree.js';
import { S3RVER_ACCESS_KEY, startS3Server, startTaggingRefusingProxy, type S3TestServer } from './helpers/s3-server.js';
import { zerosArchive } from './helpers/zstd.js';

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const EVENT_BUS = 'openclaw-backup-events';

/** A fake Lambda context whose clock runs down from `remainingMs`. */
function fakeContext(remainingMs = 900_000, requestId = 'req-1'): LambdaContext {
  const deadline = Date.now() + remainingMs;
  return {
    awsRequestId: requestId,
    functionName: 'openclaw-backup-backup',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:openclaw-backup-backup',
    memoryLimitInMB: '1024',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
}

/** What EventBridge's input transformer makes of an event (JSON template, unquoted placeholders). */
function applyInputTransformer(transformer: { InputPathsMap: Record<string, string>; InputTemplate: string }, event: Record<string, unknown>): unknown {
  let text = transformer.InputTemplate;
  for (const [name, jsonPath] of Object.entries(transformer.InputPathsMap)) {
    const value = jsonPath.replace(/^\$\./, '').split('.').reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], event);
    text = text.split(`<${name}>`).join(JSON.stringify(value));
  }
  return JSON.parse(text);
}

function scheduledEvent(time: string, ruleName: string): Record<string, unknown> {
  return {
    version: '0',
    id: '89d1a02d-5ec7-412e-82f5-13505f849b41',
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '123456789012',
    time,
    region: 'eu-west-1',
    resources: [`arn:aws:events:eu-west-1:123456789012:rule/${ruleName}`],
    detail: {},
  };
}

const dir = tempDir('openclaw-functions-');
const base = path.join(dir.path, 'mnt-tenants');
const eventBridge = mockClient(EventBridgeClient);
let server: S3TestServer;
let s3: S3Client;
let config: FunctionConfig;
let logged: string[] = [];
const logger = new Logger({ serviceName: 'openclaw-backup-test' });

beforeAll(async () => {
  createSampleTenant(path.join(base, 'acme'), { sessions: 3, memoryRows: 30 });
  createSampleTenant(path.join(base, 'beta'), { sessions: 1, memoryRows: 5, mediaFiles: 0 });
  server = await startS3Server({ bucket: 'backups' });
  s3 = new S3Client({
    endpoint: server.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: S3RVER_ACCESS_KEY, secretAccessKey: 'x' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
  // s3rver stands for an S3-compatible store the deployer listed (context allowedEndpoints).
  config = {
    tenantsDir: base,
    backupBucket: 'backups',
    allowedSourceBuckets: [],
    allowedEndpoints: [server.endpoint],
    eventBus: EVENT_BUS,
    stackPrefix: 'openclaw-backup',
    abortMarginMs: 1000,
  };
  // The execution role's credentials, as Lambda puts them in the environment.
  vi.stubEnv('AWS_ACCESS_KEY_ID', S3RVER_ACCESS_KEY);
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'role-secret');
  vi.stubEnv('AWS_REGION', 'us-east-1');
});
afterAll(async () => {
  vi.unstubAllEnvs();
  eventBridge.restore();
  s3.destroy();
  await server.dispose();
  dir.cleanup();
});
beforeEach(() => {
  eventBridge.reset();
  eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'ev-1' }] });
  // Powertools writes JSON lines to stdout (errors to stderr): keep them to inspect, quietly.
  logged = [];
  for (const stream of [process.stdout, process.stderr]) {
    vi.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
      logged.push(String(chunk));
      return true;
    });
  }
});
afterEach(() => {
  vi.restoreAllMocks();
});

function handlers() {
  const publish = completionPublisher(new EventBridgeClient({ region: 'eu-west-1' }), config.eventBus, logger);
  return {
    backup: backupHandler({ config, logger, publish }),
    restore: restoreHandler({ config, logger, publish }),
    list: listHandler({ config, logger }),
  };
}

function publishedEvents(): Array<{ EventBusName?: string; Source?: string; DetailType?: string; Detail: Record<string, unknown> }> {
  return eventBridge.commandCalls(PutEventsCommand).map((call) => {
    const entries = call.args[0].input.Entries!;
    expect(entries).toHaveLength(1);
    const { Detail, ...rest } = entries[0]!;
    expect(Object.keys(rest).sort()).toEqual(['DetailType', 'EventBusName', 'Source']);
    return { ...rest, Detail: JSON.parse(Detail!) as Record<string, unknown> };
  });
}

async function objectExists(key: string): Promise<boolean> {
  try {
    const object = await s3.send(new GetObjectCommand({ Bucket: 'backups', Key: key }));
    await object.Body?.transformToByteArray();
    return true;
  } catch {
    return false;
  }
}

describe('backup handler', () => {
  it('backs up a tenant for a direct invocation and publishes a success event', async () => {
    const payload = {
      tenant: 'acme',
      to: 's3://backups/direct/acme.tar.zst',
      overwrite: false,
      storage: { endpoint: server.endpoint, accessKey: S3RVER_ACCESS_KEY, secretKey: SECRET },
    };
    const result = await handlers().backup(payload, fakeContext());
    expect(result).toMatchObject({ operation: 'backup', tenant: 'acme', location: 's3://backups/direct/acme.tar.zst', recovered: 'none' });
    expect(await objectExists('direct/acme.tar.zst')).toBe(true);

    const [event, ...more] = publishedEvents();
    expect(more).toEqual([]);
    const backup = result as { bytes: number; archiveBytes: number; durationMs: number; manifestSha256: string };
    expect(event).toEqual({
      EventBusName: EVENT_BUS,
      Source: 'openclaw.backup',
      DetailType: 'OpenClaw Backup Succeeded',
      Detail: {
        tenant: 'acme',
        location: 's3://backups/direct/acme.tar.zst',
        trigger: 'direct',
        requestId: 'req-1',
        operationId: 'req-1',
        durationMs: backup.durationMs,
        bytes: backup.bytes,
        archiveBytes: backup.archiveBytes,
        manifestSha256: backup.manifestSha256,
      },
    });
    expect(logged.join('')).not.toContain(SECRET);
    expect(logged.some((line) => /"message":"backup finished"/.test(line))).toBe(true);
  });

  it('logs a backup\'s notices as a warning (its archive could not be tagged), which no one reads in a scheduled run\'s answer', async () => {
    const proxy = await startTaggingRefusingProxy(server.endpoint);
    try {
      const payload = { tenant: 'acme', to: 's3://backups/direct/untagged.tar.zst', storage: { endpoint: proxy.endpoint, accessKey: S3RVER_ACCESS_KEY, secretKey: SECRET } };
      const publish = completionPublisher(new EventBridgeClient({ region: 'eu-west-1' }), config.eventBus, logger);
      const result = await backupHandler({ config: { ...config, allowedEndpoints: [proxy.endpoint] }, logger, publish })(payload, fakeContext());
      expect(result).toMatchObject({ operation: 'backup', notices: [expect.stringMatching(/its tags \(manifest digest, size stored\) could not be attached/)] });
      const warning = logged.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.message === 'backup notices');
      expect(warning).toMatchObject({ level: 'WARN', location: 's3://backups/direct/untagged.tar.zst', notices: [expect.stringMatching(/could not be attached: .*access denied/i)] });
    } finally {
      await proxy.stop();
    }
  });

  it('runs a scheduled backup from its rule\'s input, dated by the event time, and throws when it fails', async () => {
    const scheduled = parseCronCommand(
      `openclaw tenants backup acme --to s3://backups/acme/$(date +%F).tar.zst --endpoint ${server.endpoint}`,
      { tenant: 'acme', stack: 'openclaw-backup' },
    );
    const transformer = cronTargetInput('acme', 'nightly', scheduled.command);
    const event = applyInputTransformer(transformer, scheduledEvent('2026-06-03T03:00:00Z', 'openclaw-backup-acme-nightly'));
    expect(event).toEqual({
      source: 'openclaw.cron',
      tenant: 'acme',
      cronName: 'nightly',
      time: '2026-06-03T03:00:00Z',
      eventId: '89d1a02d-5ec7-412e-82f5-13505f849b41',
      command: { tenant: 'acme', to: 's3://backups/acme/{date:%F}.tar.zst', storage: { endpoint: server.endpoint } },
    });

    const { backup } = handlers();
    const result = await backup(event, fakeContext(900_000, 'req-cron-1'));
    expect(result).toMatchObject({ operation: 'backup', location: 's3://backups/acme/2026-06-03.tar.zst' });
    expect(await objectExists('acme/2026-06-03.tar.zst')).toBe(true);
    expect(publishedEvents()[0]).toMatchObject({ DetailType: 'OpenClaw Backup Succeeded', Detail: { trigger: 'schedule', cronName: 'nightly', requestId: 'req-cron-1' } });

    // A retry of the same event (Lambda's async retries keep the request ID, after a first
    // attempt that failed once the archive was stored) finds the archive its run stored:
    // nothing to do, nothing thrown (no retry after it, nothing in the on-failure destination),
    // no failure announced; its success is (again: at least once, the same operationId).
    eventBridge.resetHistory();
    const retried = await backup(event, fakeContext(900_000, 'req-cron-1'));
    expect(retried).toEqual({ operation: 'backup', skipped: 'an earlier attempt of this scheduled run stored its archive' });
    expect(publishedEvents()).toEqual([
      expect.objectContaining({ DetailType: 'OpenClaw Backup Succeeded', Detail: expect.objectContaining({ trigger: 'schedule', cronName: 'nightly', operationId: 'req-cron-1', location: 's3://backups/acme/2026-06-03.tar.zst' }) }),
    ]);
    expect(logged.some((line) => /"message":"backup skipped"/.test(line))).toBe(true);

    eventBridge.resetHistory();
    // Another run writing the same key (a second event the same day) is refused, thrown so
    // the failure reaches the on-failure destination, and announced.
    const otherRun = applyInputTransformer(transformer, { ...scheduledEvent('2026-06-03T15:00:00Z', 'openclaw-backup-acme-nightly'), id: 'another-event-id' });
    const failure = await backup(otherRun, fakeContext(900_000, 'req-cron-3')).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ScheduledOperationError);
    expect((failure as Error).name).toBe('DestinationExistsError');
    expect((failure as Error).message).toMatch(/^DESTINATION_EXISTS: /);
    const [failed] = publishedEvents();
    expect(failed).toEqual({
      EventBusName: EVENT_BUS,
      Source: 'openclaw.backup',
      DetailType: 'OpenClaw Backup Failed',
      Detail: {
        tenant: 'acme',
        location: 's3://backups/acme/2026-06-03.tar.zst',
        trigger: 'schedule',
        cronName: 'nightly',
        requestId: 'req-cron-3',
        operationId: 'req-cron-3',
        durationMs: expect.any(Number),
        error: { code: 'DESTINATION_EXISTS', message: expect.stringMatching(/exists/) },
      },
    });
  });

  it('uses its own clock when the payload carries no event time', async () => {
    const now = () => new Date('2031-01-02T00:00:00Z');
    const publish = completionPublisher(new EventBridgeClient({ region: 'eu-west-1' }), undefined, logger);
    const backup = backupHandler({ config, logger, publish, now });
    const result = await backup(
      { source: 'openclaw.cron', tenant: 'beta', cronName: 'x', command: { tenant: 'beta', to: 's3://backups/beta/{date:%Y%m%d}.tar.zst', storage: { endpoint: server.endpoint } } },
      fakeContext(),
    );
    expect(result).toMatchObject({ location: 's3://backups/beta/20310102.tar.zst' });
    expect(eventBridge.commandCalls(PutEventsCommand)).toHaveLength(0); // no bus configured
  });

  it('refuses what remote mode cannot do, before touching S3, with the CLI\'s codes', async () => {
    const { backup } = handlers();
    const cases: Array<[unknown, string, string, RegExp]> = [
      [{ tenant: 'acme', to: 's3://backups/x.tar.zst', storage: { pipe: 'age -r age1x' } }, 'REMOTE_UNSUPPORTED', 'usage', /--pipe runs a shell command and is not available in remote mode .*: encrypt with --encrypt-to/],
      [{ tenant: 'acme', to: 's3://backups/x.tar.zst', storage: { awsProfile: 'prod' } }, 'REMOTE_UNSUPPORTED', 'usage', /execution role/],
      [{ tenant: 'acme', to: '/mnt/tenants/acme/x.tar.zst' }, 'REMOTE_UNSUPPORTED', 'usage', /--to must be s3:\/\/bucket\/key/],
      [{ tenant: 'acme', to: 's3://elsewhere/x.tar.zst' }, 'LOCATION_NOT_ALLOWED', 'refused', /backs up to s3:\/\/backups\/ only, not to bucket "elsewhere"/],
      [{ tenant: '../etc', to: 's3://backups/x.tar.zst' }, 'INVALID_NAME', 'usage', /invalid tenant name/],
      [{ tenant: 'acme', to: 's3://backups/x.tar.zst', extra: 1 }, 'INVALID_REQUEST', 'usage', /unknown field "extra"/],
      [{ tenant: 'acme', to: 7 }, 'INVALID_REQUEST', 'usage', /"to" must be a string/],
      ['hello', 'INVALID_REQUEST', 'usage', /expected a JSON object/],
      [{ tenant: 'nobody', to: 's3://backups/nobody.tar.zst', storage: { endpoint: server.endpoint } }, 'TENANT_NOT_FOUND', 'refused', /no tenant "nobody"/],
    ];
    for (const [payload, code, outcome, message] of cases) {
      const response = await backup(payload, fakeContext());
      expect(response, JSON.stringify(payload)).toEqual({ ok: false, error: { code, outcome, message: expect.stringMatching(message) } });
    }
    expect(publishedEvents().map((event) => event.DetailType)).toEqual(cases.map(() => 'OpenClaw Backup Failed'));
  });

  it('keeps a megabyte field out of the logs, the metrics and the completion event (CloudWatch and EventBridge cut or refuse entries over 256 KiB)', async () => {
    const metrics = { record: vi.fn(), count: vi.fn() };
    const backup = backupHandler({ config, logger, publish: completionPublisher(new EventBridgeClient({ region: 'eu-west-1' }), config.eventBus, logger), metrics });
    const huge = 'a'.repeat(1024 * 1024);
    for (const payload of [{ tenant: huge, to: 's3://backups/x.tar.zst' }, { tenant: 'acme', to: `s3://backups/${huge}` }]) {
      const response = await backup(payload, fakeContext());
      expect(response).toEqual({ ok: false, error: { code: 'INVALID_REQUEST', outcome: 'usage', message: expect.stringMatching(/is too long \(1048\d{3} characters; at most 2048\)/) } });
    }
    const longest = (texts: string[]) => Math.max(...texts.map((text) => text.length));
    expect(longest(logged)).toBeLessThan(16 * 1024);
    expect(longest(publishedEvents().map((event) => JSON.stringify(event.Detail)))).toBeLessThan(16 * 1024);
    expect(longest(metrics.record.mock.calls.map(([record]) => JSON.stringify(record)))).toBeLessThan(16 * 1024);
  });

  it('answers a scheduled event that does not read as a backup without throwing: Lambda\'s retries would get the same event', async () => {
    const metrics = { record: vi.fn(), count: vi.fn() };
    const backup = backupHandler({ config, logger, publish: completionPublisher(new EventBridgeClient({ region: 'eu-west-1' }), config.eventBus, logger), metrics });
    const scheduled = parseCronCommand(`openclaw tenants backup acme --to s3://backups/edited/$(date +%F).tar.zst --endpoint ${server.endpoint}`, { tenant: 'acme', stack: 'openclaw-backup' });
    const fromOpenclaw = applyInputTransformer(cronTargetInput('acme', 'nightly', scheduled.command), scheduledEvent('2026-06-04T03:00:00Z', 'openclaw-backup-acme-nightly')) as Record<string, unknown>;
    const unreadable: Array<[unknown, RegExp]> = [
      [scheduledEvent('2026-06-03T03:00:00Z', 'hand-made'), /without openclaw's payload/],
      [{ ...fromOpenclaw, time: 'yesterday' }, /"time" must be an ISO 8601 time/],
      [{ ...fromOpenclaw, tenant: 'beta' }, /backs up "acme", not the cron's tenant "beta"/],
    ];
    for (const [event, message] of unreadable) {
      logged = [];
      const response = await backup(event, fakeContext());
      expect(response).toEqual({ ok: false, error: { code: 'INVALID_REQUEST', outcome: 'usage', message: expect.stringMatching(message) } });
      const notRetried = logged.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.message === 'scheduled backup not retried');
      expect(notRetried).toMatchObject({ level: 'ERROR', errorCode: 'INVALID_REQUEST', reason: expect.stringMatching(/the same event retried/) });
    }
    // Still a failure someone must hear of: the Failed metric (the backup-failures alarm) and the failure event.
    expect(metrics.record.mock.calls.map(([record]) => record)).toEqual(unreadable.map(() => expect.objectContaining({ operation: 'backup', outcome: 'failed', trigger: 'schedule', errorCode: 'INVALID_REQUEST' })));
    expect(publishedEvents().map((event) => event.DetailType)).toEqual(unreadable.map(() => 'OpenClaw Backup Failed'));
    expect(await objectExists('edited/2026-06-04.tar.zst')).toBe(false);
  });

  it('stops before the Lambda timeout and stores nothing', async () => {
    const { backup } = handlers();
    const response = await backup({ tenant: 'acme', to: 's3://backups/late/acme.tar.zst', storage: { endpoint: server.endpoint } }, fakeContext(0));
    expect(response).toEqual({ ok: false, error: { code: 'ABORTED', outcome: 'failed', message: expect.any(String) } });
    expect(await objectExists('late/acme.tar.zst')).toBe(false);
    expect(readdirSync(base).sort()).toEqual(['acme', 'beta']);
  });

  it('answers a scheduled backup stopped by the invocation\'s deadline without throwing: Lambda\'s retries would run into the same deadline', async () => {
    const scheduled = parseCronCommand(`openclaw tenants backup acme --to s3://backups/late/$(date +%F).tar.zst --endpoint ${server.endpoint}`, { tenant: 'acme', stack: 'openclaw-backup' });
    const event = applyInputTransformer(cronTargetInput('acme', 'nightly', scheduled.command), scheduledEvent('2026-06-04T03:00:00Z', 'openclaw-backup-acme-nightly'));
    const metrics = { record: vi.fn(), count: vi.fn() };
    const backup = backupHandler({ config, logger, publish: completionPublisher(new EventBridgeClient({ region: 'eu-west-1' }), config.eventBus, logger), metrics });

    const response = await backup(event, fakeContext(0, 'req-cron-late'));

    expect(response).toEqual({ ok: false, error: { code: 'ABORTED', outcome: 'failed', message: expect.stringMatching(/^stopped: the Lambda invocation was about to time out/) } });
    expect(await objectExists('late/2026-06-04.tar.zst')).toBe(false);
    // Still a failure for the operator: the Failed metric (the backup-failures alarm) and an error in the log
    // (and the failure event, which this invocation with no time left at all does not get to send).
    expect(metrics.record).toHaveBeenCalledWith(expect.objectContaining({ operation: 'backup', outcome: 'failed', trigger: 'schedule', errorCode: 'ABORTED', cronName: 'nightly' }));
    const notRetried = logged.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.message === 'scheduled backup not retried');
    expect(notRetried).toMatchObject({ level: 'ERROR', reason: expect.stringMatching(/invocation's time/) });
  });

  it('still throws for a scheduled backup that failed otherwise, so that Lambda retries it', async () => {
    const scheduled = parseCronCommand(`openclaw tenants backup nobody --to s3://backups/nobody/$(date +%F).tar.zst --endpoint ${server.endpoint}`, { tenant: 'nobody', stack: 'openclaw-backup' });
    const event = applyInputTransformer(cronTargetInput('nobody', 'nightly', scheduled.command), scheduledEvent('2026-06-04T03:00:00Z', 'openclaw-backup-nobody-nightly'));
    await expect(handlers().backup(event, fakeContext())).rejects.toBeInstanceOf(ScheduledOperationError);
  });

  it('keeps a finished backup a success when the completion event cannot be published', async () => {
    eventBridge.on(PutEventsCommand).rejects(Object.assign(new Error('no route to EventBridge'), { name: 'TimeoutError' }));
    const result = await handlers().backup({ tenant: 'beta', to: 's3://backups/beta/kept.tar.zst', storage: { endpoint: server.endpoint } }, fakeContext());
    expect(result).toMatchObject({ operation: 'backup', tenant: 'beta' });
    expect(logged.some((line) => /could not publish the completion event/.test(line))).toBe(true);

    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'InternalFailure', ErrorMessage: 'x' }] });
    const again = await handlers().backup({ tenant: 'beta', to: 's3://backups/beta/kept-2.tar.zst', storage: { endpoint: server.endpoint } }, fakeContext());
    expect(again).toMatchObject({ operation: 'backup' });
    expect(logged.some((line) => /completion event rejected by EventBridge/.test(line))).toBe(true);
  });

  it('never logs or answers with a secret, even when S3 fails', async () => {
    const response = await handlers().backup(
      { tenant: 'acme', to: 's3://no-such-bucket/acme.tar.zst', storage: { endpoint: server.endpoint, accessKey: S3RVER_ACCESS_KEY, secretKey: SECRET } },
      fakeContext(),
    );
    expect(response).toMatchObject({ ok: false, error: { outcome: 'failed' } });
    expect(JSON.stringify(response)).not.toContain(SECRET);
    expect(logged.join('')).not.toContain(SECRET);
    expect(JSON.stringify(eventBridge.calls().map((call) => call.args[0].input))).not.toContain(SECRET);
  });
});

/** The core operations on the base dir, recording every call: the handlers reach the tenant volume only through them. */
function recordingOperations(): { operations: TenantOperations; calls: string[] } {
  const real = localOperations(base);
  const calls: string[] = [];
  return {
    calls,
    operations: {
      backup: (...args) => (calls.push('backup'), real.backup(...args)),
      backupAll: (...args) => (calls.push('backupAll'), real.backupAll(...args)),
      restore: (...args) => (calls.push('restore'), real.restore(...args)),
      listNames: () => (calls.push('listNames'), real.listNames()),
      listSummaries: (page) => (calls.push('listSummaries'), real.listSummaries(page)),
      listSkipped: () => real.listSkipped(),
      recover: (...args) => (calls.push('recover'), real.recover(...args)),
      planBackup: (...args) => (calls.push('planBackup'), real.planBackup(...args)),
      planRestore: (...args) => (calls.push('planRestore'), real.planRestore(...args)),
      verify: (...args) => (calls.push('verify'), real.verify(...args)),
      listBackups: (...args) => (calls.push('listBackups'), real.listBackups(...args)),
      prune: (...args) => (calls.push('prune'), real.prune(...args)),
    },
  };
}

describe('what a caller may not make the functions do', () => {
  // Exfiltration: with the defaults of a deployed stack (no endpoint listed) nothing but the
  // stack's bucket is reachable, and a refusal comes before anything is read: the tenant
  // volume is not touched and no S3 request of any kind is sent.
  const deployed = (): FunctionConfig => ({ tenantsDir: base, backupBucket: 'backups', backupKeyPrefix: 'backups/', allowedSourceBuckets: [], eventBus: EVENT_BUS, abortMarginMs: 1000 });
  const attacker = { endpoint: 'https://s3.attacker.example', accessKey: 'AKIAATTACKER', secretKey: 'attacker-secret' };

  it.each([
    ['any endpoint, when the deployer listed none', deployed(), { tenant: 'acme', to: 's3://loot/acme.tar.zst', storage: attacker }, 'LOCATION_NOT_ALLOWED', /allows no S3-compatible endpoint \(--endpoint https:\/\/s3\.attacker\.example\)/],
    ['an endpoint that is not on the list', { ...deployed(), allowedEndpoints: ['https://minio.internal:9000'] }, { tenant: 'acme', to: 's3://loot/acme.tar.zst', storage: attacker }, 'LOCATION_NOT_ALLOWED', /does not allow the endpoint https:\/\/s3\.attacker\.example: allowed are https:\/\/minio\.internal:9000/],
    ['AWS S3 itself named as an endpoint, with other keys', deployed(), { tenant: 'acme', to: 's3://loot/acme.tar.zst', storage: { ...attacker, endpoint: 'https://s3.eu-west-1.amazonaws.com' } }, 'LOCATION_NOT_ALLOWED', /allows no S3-compatible endpoint/],
    ['static keys for the stack\'s own bucket', deployed(), { tenant: 'acme', to: 's3://backups/backups/acme.tar.zst', storage: { accessKey: attacker.accessKey, secretKey: attacker.secretKey } }, 'LOCATION_NOT_ALLOWED', /execution role only/],
    ['--overwrite, which the deployer did not allow', deployed(), { tenant: 'acme', to: 's3://backups/backups/acme.tar.zst', overwrite: true }, 'OVERWRITE_NOT_ALLOWED', /never replaces an archive: --overwrite is turned off/],
  ] as const)('refuses %s before reading anything', async (_name, gateway, payload, code, message) => {
    const s3Mock = mockClient(S3Client);
    try {
      const { operations, calls } = recordingOperations();
      const publish = completionPublisher(new EventBridgeClient({ region: 'eu-west-1' }), gateway.eventBus, logger);
      const response = await backupHandler({ config: gateway, logger, publish, operations })(payload, fakeContext());
      expect(response).toEqual({ ok: false, error: { code, outcome: 'refused', message: expect.stringMatching(message) } });
      expect(calls).toEqual([]);
      expect(s3Mock.calls()).toHaveLength(0);
      expect(JSON.stringify(response)).not.toContain('attacker-secret');
      expect(publishedEvents().map((event) => event.DetailType)).toEqual(['OpenClaw Backup Failed']);
    } finally {
      s3Mock.restore();
    }
  });

  it('refuses another store behind the host of an allowed endpoint with a path, before reading anything', async () => {
    // The deployer listed one store behind a proxy (OPENCLAW_ALLOWED_ENDPOINTS as the stack
    // sets it); another path on that host is another store, with the caller's own keys.
    const gateway = { ...readFunctionConfig({ OPENCLAW_TENANTS_DIR: base, OPENCLAW_BACKUP_BUCKET: 'backups', OPENCLAW_ALLOWED_ENDPOINTS: 'https://proxy.internal/minio-a' }), eventBus: EVENT_BUS };
    for (const endpoint of ['https://proxy.internal/minio-b', 'https://proxy.internal/minio-ab', 'https://proxy.internal/minio-a/%2e%2e/minio-b', 'https://proxy.internal/']) {
      const s3Mock = mockClient(S3Client);
      try {
        const { operations, calls } = recordingOperations();
        const publish = completionPublisher(new EventBridgeClient({ region: 'eu-west-1' }), EVENT_BUS, logger);
        const response = await backupHandler({ config: gateway, logger, publish, operations })({ tenant: 'acme', to: 's3://loot/acme.tar.zst', storage: { ...attacker, endpoint } }, fakeContext());
        expect(response, endpoint).toEqual({ ok: false, error: { code: 'LOCATION_NOT_ALLOWED', outcome: 'refused', message: expect.stringMatching(/^this gateway does not allow the endpoint https:\/\/proxy\.internal\/?[^ ]*: allowed are https:\/\/proxy\.internal\/minio-a$/) } });
        expect(calls).toEqual([]);
        expect(s3Mock.calls()).toHaveLength(0);
      } finally {
        s3Mock.restore();
      }
    }
  });

  it('refuses an unlisted endpoint for a restore before reading anything', async () => {
    const s3Mock = mockClient(S3Client);
    try {
      const { operations, calls } = recordingOperations();
      const publish = completionPublisher(new EventBridgeClient({ region: 'eu-west-1' }), EVENT_BUS, logger);
      const response = await restoreHandler({ config: deployed(), logger, publish, operations })(
        { from: 's3://planted/acme.tar.zst', as: 'acme-2', storage: attacker },
        fakeContext(),
      );
      expect(response).toMatchObject({ ok: false, error: { code: 'LOCATION_NOT_ALLOWED', outcome: 'refused' } });
      expect(calls).toEqual([]);
      expect(s3Mock.calls()).toHaveLength(0);
    } finally {
      s3Mock.restore();
    }
  });

  it('lets --overwrite through only where the deployer allowed it', async () => {
    const { backup } = handlers();
    const to = 's3://backups/overwrite/beta.tar.zst';
    expect(await backup({ tenant: 'beta', to, storage: { endpoint: server.endpoint } }, fakeContext())).toMatchObject({ operation: 'backup' });
    const refused = await backup({ tenant: 'beta', to, overwrite: true, storage: { endpoint: server.endpoint } }, fakeContext());
    expect(refused).toMatchObject({ ok: false, error: { code: 'OVERWRITE_NOT_ALLOWED' } });
    const publish = completionPublisher(new EventBridgeClient({ region: 'eu-west-1' }), undefined, logger);
    const allowed = backupHandler({ config: { ...config, allowOverwrite: true }, logger, publish });
    expect(await allowed({ tenant: 'beta', to, overwrite: true, storage: { endpoint: server.endpoint } }, fakeContext())).toMatchObject({ operation: 'backup', tenant: 'beta' });
  });
});

describe('an event bus the functions cannot reach', () => {
  it('does not fail a finished backup when PutEvents never answers', async () => {
    // No `events` endpoint and no NAT: the request hangs. The publication is given up after
    // its budget and the backup answers as the success it is.
    eventBridge.on(PutEventsCommand).callsFake(() => new Promise(() => {}));
    const publish = completionPublisher(new EventBridgeClient({ region: 'eu-west-1' }), EVENT_BUS, logger, { timeoutMs: 300 });
    const backup = backupHandler({ config, logger, publish });
    const result = await backup({ tenant: 'beta', to: 's3://backups/hang/beta.tar.zst', storage: { endpoint: server.endpoint } }, fakeContext());
    expect(result).toMatchObject({ operation: 'backup', tenant: 'beta', location: 's3://backups/hang/beta.tar.zst' });
    expect(await objectExists('hang/beta.tar.zst')).toBe(true);
    expect(eventBridge.commandCalls(PutEventsCommand)).toHaveLength(1);
    expect(logged.some((line) => /could not publish the completion event: EventBridge did not answer in time/.test(line))).toBe(true);
  });

  it('spends no more than the invocation\'s time left on the event', async () => {
    eventBridge.on(PutEventsCommand).callsFake(() => new Promise(() => {}));
    const publish = completionPublisher(new EventBridgeClient({ region: 'eu-west-1' }), EVENT_BUS, logger, { timeoutMs: 3_600_000 });
    const event = { operation: 'backup', ok: true, detail: { tenant: 'beta', location: 's3://b/k', trigger: 'direct', requestId: 'r', operationId: 'r', durationMs: 1 } } as const;
    // 2.2 s left, 2 s kept back for answering: the event gets 0.2 s, not the hour it was allowed.
    await publish(event, { remainingMs: 2_200 });
    expect(logged.some((line) => /"timeoutMs":200\b/.test(line))).toBe(true);
    // Less than the reserve left: not even tried.
    eventBridge.resetHistory();
    await publish(event, { remainingMs: 1_500 });
    expect(eventBridge.commandCalls(PutEventsCommand)).toHaveLength(0);
    expect(logged.some((line) => /no time left in the invocation/.test(line))).toBe(true);
  });
});

describe('restore handler', () => {
  it('verifies and restores into the tenant base dir, then refuses an occupied slot', async () => {
    const { backup, restore } = handlers();
    await backup({ tenant: 'acme', to: 's3://backups/restore/acme.tar.zst', storage: { endpoint: server.endpoint } }, fakeContext());
    eventBridge.resetHistory();

    const payload = { from: 's3://backups/restore/acme.tar.zst', as: 'acme-copy', force: false, limits: {}, storage: { endpoint: server.endpoint } };
    const result = await restore(payload, fakeContext(900_000, 'req-r1'));
    expect(result).toMatchObject({ operation: 'restore', tenant: 'acme-copy', archiveTenant: 'acme', verified: true, replaced: false });
    expect(describeTree(path.join(base, 'acme-copy'))).toEqual(describeTree(path.join(base, 'acme'), { exclude: (p) => p === 'pty' || p.startsWith('pty/') }));
    const restored = result as { bytes: number; archiveBytes: number; durationMs: number };
    expect(publishedEvents()).toEqual([
      {
        EventBusName: EVENT_BUS,
        Source: 'openclaw.backup',
        DetailType: 'OpenClaw Restore Succeeded',
        Detail: {
          tenant: 'acme-copy',
          archiveTenant: 'acme',
          location: 's3://backups/restore/acme.tar.zst',
          trigger: 'direct',
          requestId: 'req-r1',
          operationId: 'req-r1',
          durationMs: restored.durationMs,
          bytes: restored.bytes,
          archiveBytes: restored.archiveBytes,
          verified: true,
          replaced: false,
        },
      },
    ]);

    eventBridge.resetHistory();
    const refused = await restore(payload, fakeContext(900_000, 'req-r2'));
    expect(refused).toEqual({ ok: false, error: { code: 'SLOT_OCCUPIED', outcome: 'refused', message: expect.stringMatching(/--force/) } });
    expect(publishedEvents()[0]).toEqual({
      EventBusName: EVENT_BUS,
      Source: 'openclaw.backup',
      DetailType: 'OpenClaw Restore Failed',
      Detail: {
        tenant: 'acme-copy',
        location: 's3://backups/restore/acme.tar.zst',
        trigger: 'direct',
        requestId: 'req-r2',
        operationId: 'req-r2',
        durationMs: expect.any(Number),
        error: { code: 'SLOT_OCCUPIED', message: expect.stringMatching(/--force/) },
      },
    });
  });

  it('refuses a damaged archive and leaves the base dir as it was', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'backups', Key: 'garbage.tar.zst', Body: Buffer.alloc(4096, 7) }));
    const before = readdirSync(base).sort();
    const response = await handlers().restore({ from: 's3://backups/garbage.tar.zst', as: 'garbage', storage: { endpoint: server.endpoint } }, fakeContext());
    expect(response).toMatchObject({ ok: false, error: { outcome: 'refused' } });
    expect(readdirSync(base).sort()).toEqual(before);
    expect(existsSync(path.join(base, 'garbage'))).toBe(false);
  });

  it('stops a verify that outlasts the invocation (64 GiB of zeros in 2 MiB stored), saying the time ran out', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'backups', Key: 'bomb.tar.zst', Body: zerosArchive('acme', 64n * 1024n ** 3n) }));
    const response = await handlers().restore({ operation: 'verify', from: 's3://backups/bomb.tar.zst', storage: { endpoint: server.endpoint } }, fakeContext(2_000));
    expect(response).toEqual({ ok: false, error: { code: 'ABORTED', outcome: 'failed', message: 'stopped: the Lambda invocation was about to time out' } });
  });

  it('refuses sources outside the allowed buckets and --pipe', async () => {
    const { restore } = handlers();
    expect(await restore({ from: 's3://other-bucket/acme.tar.zst' }, fakeContext())).toEqual({
      ok: false,
      error: { code: 'LOCATION_NOT_ALLOWED', outcome: 'refused', message: 'this gateway restores from s3://backups/ only, not from bucket "other-bucket"' },
    });
    expect(await restore({ from: 's3://backups/acme.tar.zst', storage: { pipe: 'age -d -i k' } }, fakeContext())).toMatchObject({
      ok: false,
      error: { code: 'REMOTE_UNSUPPORTED', outcome: 'usage' },
    });
    expect(await restore({ from: 's3://backups/acme.tar.zst', limits: { maxEntries: -1 } }, fakeContext())).toMatchObject({
      ok: false,
      error: { code: 'INVALID_REQUEST', outcome: 'usage' },
    });
  });
});

describe('list handler', () => {
  it('lists the tenants on the volume, names or summaries', async () => {
    const { list } = handlers();
    const names = await list({ names: true }, fakeContext());
    expect(names).toEqual({ tenants: expect.arrayContaining(['acme', 'beta']) });
    const summaries = JSON.parse(JSON.stringify(await list({}, fakeContext()))) as { tenants: Array<Record<string, unknown>> };
    expect(summaries.tenants.find((tenant) => tenant.name === 'beta')).toEqual({
      name: 'beta',
      state: 'ok',
      bytes: expect.any(Number),
      files: expect.any(Number),
      lastModified: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(await list({ names: 'yes' }, fakeContext())).toMatchObject({ ok: false, error: { code: 'INVALID_REQUEST' } });
  });

  // A restore of a new tenant killed on the volume: the fan-out's page of names (backup --all
  // through the gateway, scheduled) rolled it back in its sweep and said so nowhere: its pages
  // go to no person, and no tenant is left to carry a backup's note.
  it('logs, as a warning, every interrupted restore its sweep rolled back, the fan-out\'s pages and tenants list\'s alike', async () => {
    const source = path.join(dir.path, 'rolled-back-source.tar.zst');
    expect(runCli(['--tenants-dir', base, 'tenants', 'backup', 'beta', '--to', source]).status).toBe(0);
    const crashed = () => expect(runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', source, '--as', 'newco'], { env: { OPENCLAW_TEST_CRASH_AT: 'restore:verified' } }).status).not.toBe(0);
    const warnings = () => logged.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.message === 'the listing settled interrupted restores first');
    const { list } = handlers();
    crashed();
    const page = (await list({ names: true, limit: 100 }, fakeContext())) as { tenants: string[] };
    expect(page.tenants).not.toContain('newco');
    expect(warnings()).toEqual([expect.objectContaining({ level: 'WARN', recovered: [{ tenant: 'newco', action: 'rolled-back' }] })]);
    crashed();
    expect(await list({ pages: true }, fakeContext())).toMatchObject({ recovered: [{ tenant: 'newco', action: 'rolled-back' }] });
    expect(warnings()).toHaveLength(2);
    // Said once: the next listing has nothing to settle.
    expect(await list({ names: true, limit: 100 }, fakeContext())).not.toHaveProperty('recovered');
    expect(warnings()).toHaveLength(2);
  });

  // The same sweep runs before doctor --stack's ownership scan and an older CLI's whole
  // listing: each rolled the restore back too and logged nothing of it.
  it.each([
    ['doctor --stack\'s ownership scan', { ownership: true }],
    ["an older CLI's whole listing of names", { names: true }],
    ["an older CLI's whole listing of summaries", {}],
  ])('logs the restores it rolled back as a warning too: %s', async (_name, request) => {
    const source = path.join(dir.path, 'rolled-back-whole-source.tar.zst');
    if (!existsSync(source)) expect(runCli(['--tenants-dir', base, 'tenants', 'backup', 'beta', '--to', source]).status).toBe(0);
    expect(runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', source, '--as', 'newco'], { env: { OPENCLAW_TEST_CRASH_AT: 'restore:verified' } }).status).not.toBe(0);
    const warnings = () => logged.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.message === 'the listing settled interrupted restores first');
    const before = warnings().length;
    const { list } = handlers();
    expect(await list(request, fakeContext())).toHaveProperty('tenants');
    expect(warnings().slice(before)).toEqual([expect.objectContaining({ level: 'WARN', recovered: [{ tenant: 'newco', action: 'rolled-back' }] })]);
  });

  it('names a tenant whose directory is a symlink as skipped, as the local list does', async () => {
    const link = path.join(base, 'moved');
    symlinkSync(path.join(base, 'acme'), link);
    try {
      const { list } = handlers();
      const skipped = [{ name: 'moved', reason: expect.stringMatching(/"moved" .* is a symlink; refusing to follow it/) }];
      const names = (await list({ names: true }, fakeContext())) as { tenants: string[] };
      expect(names).toEqual({ tenants: expect.not.arrayContaining(['moved']), skipped });
      expect(await list({}, fakeContext())).toMatchObject({ skipped });
      // The pages the fan-out queues a backup for each name of: it is among them, so its backup fails by name, as in a local backup --all.
      const page = (await list({ names: true, after: 'm', limit: 100 }, fakeContext())) as { tenants: string[] };
      expect(page.tenants).toContain('moved');
      // tenants list's pages: names or summaries without it, and it apart, on every page.
      const first = JSON.parse(JSON.stringify(await list({ pages: true, limit: 1 }, fakeContext())));
      expect(first).toEqual({ tenants: [expect.objectContaining({ name: 'acme', state: 'ok' })], next: 'acme', skipped });
      expect(await list({ names: true, pages: true, after: 'acme' }, fakeContext())).toEqual({ tenants: expect.not.arrayContaining(['acme', 'moved']), skipped });
    } finally {
      rmSync(link);
    }
  });

  it('names a directory whose name is no tenant name apart, as a stray, keeps it out of the fan-out\'s pages, and sends it beside the ownership report', async () => {
    const stray = path.join(base, 'Acme');
    const link = path.join(base, 'moved');
    mkdirSync(stray);
    symlinkSync(path.join(base, 'acme'), link);
    try {
      const { list } = handlers();
      const strays = [{ name: 'Acme', reason: expect.stringMatching(/"Acme" .* is not a valid tenant name/), invalidName: true }];
      const skipped = [{ name: 'moved', reason: expect.stringMatching(/is a symlink/) }];
      // A stray is sent in `strays`, never in `skipped`: a CLI older than strays names every `skipped`
      // entry as a tenant not listed and exits 1, so its tenants list would fail for a stray `Acme/`.
      expect(await list({ names: true }, fakeContext())).toEqual({ tenants: expect.not.arrayContaining(['Acme']), skipped, strays });
      expect(await list({ names: true, pages: true }, fakeContext())).toEqual({ tenants: expect.not.arrayContaining(['Acme']), skipped, strays });
      expect(await list({ pages: true }, fakeContext())).toMatchObject({ skipped, strays });
      // No backup can be queued for a name no tenant can have: the fan-out's pages leave it out.
      const page = (await list({ names: true, limit: 100 }, fakeContext())) as { tenants: string[] };
      expect(page.tenants).not.toContain('Acme');
      expect(page.tenants).toContain('moved');
      expect(await list({ ownership: true }, fakeContext())).toMatchObject({ skipped: [strays[0], skipped[0]] });
    } finally {
      rmSync(stray, { recursive: true });
      rmSync(link);
    }
  });

  it('pages tenants list: only the page\'s tenants are walked, cut to what fits an answer, and the request is checked', async () => {
    const { list } = handlers();
    const { operations, calls } = recordingOperations();
    const all = (await operations.listNames()).tenants;
    expect(all.length).toBeGreaterThanOrEqual(2);
    const summaries = await tenantsPage(operations, { names: false, ownership: false, pages: true, limit: 1 });
    expect(summaries).toMatchObject({ tenants: [{ name: all[0] }], next: all[0] });
    // An answer that would not fit holds fewer tenants (at least one, for the listing to go on), and goes on after the last.
    expect(await tenantsPage(operations, { names: true, ownership: false, pages: true }, 20)).toEqual({ tenants: [all[0]], next: all[0] });
    expect(calls.filter((call) => call === 'listSummaries')).toHaveLength(1);
    // Skipped tenants beyond a quarter of the answer are counted, not named: the page fits, and one without tenants answers (it threw, reading the name of none).
    const many = Array.from({ length: 100 }, (_, n) => ({ name: `s${n}`, reason: 'r'.repeat(50) }));
    for (const names of [[], all]) {
      const crowded = { ...operations, listNames: async () => ({ tenants: names, recovered: [] }), listSkipped: async () => many };
      const page = await tenantsPage(crowded, { names: true, ownership: false, pages: true }, 2_000);
      expect(JSON.stringify(page).length).toBeLessThanOrEqual(2_000);
      const named = page.skipped?.length ?? 0;
      expect(named).toBeGreaterThan(3);
      expect(page).toEqual({ tenants: names, skipped: many.slice(0, named), skippedOmitted: 100 - named });
    }
    // tenants backups' pages: one whose entries would not fit is asked again for a quarter as many objects.
    const asked: number[] = [];
    const listing = (entries: number) => ({ operation: 'backups' as const, tenant: 'acme', location: 's3://b/p/', backups: Array.from({ length: entries }, (_, n) => ({ location: `s3://b/p/${'k'.repeat(900)}${n}`, name: `${'k'.repeat(900)}${n}`, bytes: 1, modifiedAt: '2026-06-01T00:00:00.000Z', content: 'unknown' as const })), otherObjects: 0, next: 'x' });
    const fitted = await backupsPage(async (limit) => (asked.push(limit), listing(limit)), 40_000, 100);
    expect(asked).toEqual([100, 25, 7]);
    expect(fitted.backups).toHaveLength(7);
    expect(JSON.stringify(fitted).length).toBeLessThanOrEqual(40_000);
    for (const [request, message] of [
      [{ pages: true, ownership: true }, '"pages" and "ownership" exclude each other'],
      [{ after: 'a' }, '"after" and "limit" page through names: they go with "names": true (or "pages": true)'],
      [{ pages: 'yes' }, '"pages" must be true or false'],
      [{ pages: true, limit: 10_001 }, '"limit" must be a whole number from 1 to 10000'],
    ] as const) {
      expect(await list(request, fakeContext()), JSON.stringify(request)).toEqual({ ok: false, error: { code: 'INVALID_REQUEST', outcome: 'usage', message: `list request: ${message}` } });
    }
  });
});

describe('the ownership answer doctor reads', () => {
  // 80,000 tenants on the list bundle made 8.2 MB, over Lambda's 6 MB: doctor read "failed instead of answering".
  it('is cut to what fits a Lambda answer: the names first, then the tenants owned as expected, a tenant owned by another user kept', () => {
    const names = Array.from({ length: 3_000 }, (_, index) => `tenant-${String(index).padStart(6, '0')}`);
    const tenants = names.map((name, index) => ({ name, uid: index === 2_999 ? 0 : 1000, gid: 1000, entries: 12, mismatched: index === 2_999 ? 12 : 0 }));
    const answer = { tenants: names, ownership: { expected: { uid: 1000, gid: 1000 }, base: { uid: 1000, gid: 1000, mode: '750' }, tenants, mismatched: 12, samples: [], complete: true } };
    expect(boundedOwnership(answer, 1_000_000)).toBe(answer);
    const withoutNames = boundedOwnership(answer, 250_000);
    expect(withoutNames).toEqual({ ...answer, tenants: [] });
    const cut = boundedOwnership(answer, 50_000);
    expect(Buffer.byteLength(JSON.stringify(cut))).toBeLessThanOrEqual(50_000);
    expect(cut.tenants).toEqual([]);
    expect(cut.ownership.tenants[0]).toEqual(tenants[2_999]);
    expect(cut.ownership).toMatchObject({ complete: false, mismatched: 12, tenantsOmitted: 3_000 - cut.ownership.tenants.length });
    expect(cut.ownership.tenants.length).toBeGreaterThan(100);
  });

  it('keeps, after the tenants owned by another user, those holding entries owned by another', () => {
    // 72,000 tenants from the list bundle: the one whose files were another user's, named last, was left out.
    const names = Array.from({ length: 3_000 }, (_, index) => `tenant-${String(index).padStart(6, '0')}`);
    const tenants = names.map((name, index) => ({ name, uid: index === 0 ? 0 : 1000, gid: 1000, entries: 12, mismatched: index === 0 || index === 2_999 ? 5 : 0 }));
    const answer = { tenants: names, ownership: { expected: { uid: 1000, gid: 1000 }, base: { uid: 1000, gid: 1000, mode: '750' }, tenants, mismatched: 10, samples: [], complete: true } };
    const cut = boundedOwnership(answer, 50_000);
    expect(cut.ownership.tenants.slice(0, 2)).toEqual([tenants[0], tenants[2_999]]);
    expect(cut.ownership.tenantsOmitted).toBe(3_000 - cut.ownership.tenants.length);
  });
});

describe('function modules', () => {
  it('read their configuration once and export a handler', async () => {
    vi.stubEnv('OPENCLAW_TENANTS_DIR', base);
    vi.stubEnv('OPENCLAW_BACKUP_BUCKET', 'backups');
    vi.stubEnv('POWERTOOLS_SERVICE_NAME', 'openclaw-backup');
    const list = await import('../functions/list.js');
    expect(await list.handler({ names: true }, fakeContext())).toEqual({ tenants: expect.arrayContaining(['acme', 'beta']) });
    const backup = await import('../functions/backup.js');
    const restore = await import('../functions/restore.js');
    expect(typeof backup.handler).toBe('function');
    expect(await restore.handler({ from: 's3://elsewhere/x' }, fakeContext())).toMatchObject({ ok: false, error: { code: 'LOCATION_NOT_ALLOWED' } });
    expect(logged.some((line) => /"service":"openclaw-backup"/.test(line))).toBe(true);
  });
});

describe('the restore function at its deadline', () => {
  it('gives the restore until three quarters of the abort margin after its deadline to clean up, and answers its stop in one line', async () => {
    const { operations } = recordingOperations();
    let cleanupBy: number | undefined;
    const stopping: TenantOperations = {
      ...operations,
      restore: async (_command, hooks) => {
        cleanupBy = hooks?.cleanupBy;
        throw new AbortedError('stopped: the Lambda invocation was about to time out; what it had staged (/mnt/tenants/.openclaw-staging-acme-1) was not all removed in the time left: the next command on the tenant removes it, the slot holds what it held');
      },
    };
    const publish = completionPublisher(new EventBridgeClient({ region: 'eu-west-1' }), undefined, logger);
    const context = fakeContext(900_000);
    const end = Date.now() + context.getRemainingTimeInMillis();
    const response = await restoreHandler({ config: { ...config, abortMarginMs: 60_000 }, logger, publish, operations: stopping })({ from: 's3://backups/restore/acme.tar.zst', as: 'acme-2' }, context);
    expect(response).toEqual({ ok: false, error: { code: 'ABORTED', outcome: 'failed', message: expect.stringMatching(/^stopped: .*the next command on the tenant removes it, the slot holds what it held$/) } });
    // 15 s (a quarter of the margin) kept for the answer and the completion event.
    expect(cleanupBy).toBeGreaterThan(end - 60_000);
    expect(cleanupBy).toBeLessThanOrEqual(end - 15_000);
  });
});

describe('the list function at its deadline', () => {
  // On EFS a tenant of 200,000 files takes minutes to walk, and a page walks up to 10,000
  // tenants: past the 60 s timeout Lambda ended the invocation and `tenants list` failed.
  it('stops the walks, answers the tenants walked with the next page after the last, and none walked in one line', async () => {
    const stopped = new AbortController();
    stopped.abort(new AbortedError('stopped: the Lambda invocation was about to time out'));
    expect(await summarizeTenants(base, { signal: stopped.signal })).toEqual({ tenants: [], recovered: [] });

    const { operations } = recordingOperations();
    const all = (await operations.listNames()).tenants;
    const deadline = new AbortController();
    // The first tenant's walk had ended when the deadline came.
    const cut: TenantOperations = { ...operations, listSummaries: async (page) => { const walked = await operations.listSummaries({ ...page, limit: 1 }); deadline.abort(); return walked; } };
    expect(await tenantsPage(cut, { names: false, ownership: false, pages: true }, undefined, deadline.signal)).toMatchObject({ tenants: [{ name: all[0], state: 'ok' }], next: all[0] });
    const none: TenantOperations = { ...operations, listSummaries: async () => ({ tenants: [], recovered: [] }) };
    await expect(tenantsPage(none, { names: false, ownership: false, pages: true, after: all[0] }, undefined, stopped.signal)).rejects.toThrow(
      new AbortedError(
        `the list function ran out of time removing what interrupted operations left in the base dir, before walking the first tenant after "${all[0]}" (the next listing goes on removing it): list again, or list the tenants without --stack on a host that mounts the tenant volume`,
      ),
    );
    // A page walked whole before the deadline is answered as before.
    expect(await tenantsPage(operations, { names: false, ownership: false, pages: true }, undefined, new AbortController().signal)).toMatchObject({ tenants: all.map((name) => ({ name })) });
  });

  it('goes on past a tenant whose walk outlasts a whole invocation: named as not walked, the next page after it', async () => {
    const volume = tempDir('openclaw-unwalkable-');
    try {
      for (const name of ['a-huge', 'b-small', 'c-small']) mkdirSync(path.join(volume.path, name, 'sessions'), { recursive: true });
      for (let f = 0; f < 5_000; f++) writeFileSync(path.join(volume.path, 'a-huge', 'sessions', `s-${f}.jsonl`), '{}\n');
      for (const name of ['b-small', 'c-small']) writeFileSync(path.join(volume.path, name, 'sessions', 's.jsonl'), '{}\n');
      const operations = localOperations(volume.path);
      // The deadline comes as soon as the walks have begun: the first tenant's, of 5,000 files, cannot have ended.
      const deadline = new AbortController();
      const { signal } = deadline;
      const aborted = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'aborted')!.get!;
      let looked = false;
      Object.defineProperty(signal, 'aborted', { get: () => { if (!looked) { looked = true; setImmediate(() => deadline.abort(new AbortedError('stopped: the Lambda invocation was about to time out'))); } return aborted.call(signal) as boolean; } });
      const first = await tenantsPage(operations, { names: false, ownership: false, pages: true }, undefined, signal);
      expect(first.tenants[0]).toEqual({ name: 'a-huge', state: 'unreadable', detail: expect.stringMatching(/^not walked: its walk outlasted the list function's invocation .*: tenants list without --stack on a host that mounts the tenant volume sums it$/) });
      expect(first.next).toBe((first.tenants.at(-1) as { name: string }).name);
      const rest = await tenantsPage(operations, { names: false, ownership: false, pages: true, after: first.next! }, undefined, new AbortController().signal);
      expect([...first.tenants, ...rest.tenants].map((tenant) => (tenant as { name: string }).name)).toEqual(['a-huge', 'b-small', 'c-small']);
      expect(rest.next).toBeUndefined();
    } finally {
      volume.cleanup();
    }
  });

  // A CLI older than the list's pages asks `{}` (or `{ names: true }`) and shows what it gets as the whole list.
  it('answers an older CLI\'s whole listing in one line, never in part, when the deadline stops its walks or it would not fit an answer', async () => {
    const { operations } = recordingOperations();
    const olderCli = /: this CLI lists in one answer; update it \(it lists in pages\), or list the tenants without --stack on a host that mounts the tenant volume$/;
    // The walks had not all ended when the deadline came (before: walked on past it, and Lambda ended the invocation).
    const walkedUntilTheDeadline: TenantOperations = {
      ...operations,
      listSummaries: async (page) => {
        const walked = await operations.listSummaries(page);
        const signal = page!.signal!;
        if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
        return { ...walked, tenants: walked.tenants.slice(0, 1) };
      },
    };
    const stopped = await listHandler({ config, logger, operations: walkedUntilTheDeadline })({}, fakeContext(2_000));
    expect(stopped).toEqual({ ok: false, error: { code: 'ABORTED', outcome: 'failed', message: expect.stringMatching(/^the list function ran out of time walking the tenants \(1 walked\)/) } });
    expect((stopped as { error: { message: string } }).error.message).toMatch(olderCli);
    // 70,000 names of 60 characters: over Lambda's 6 MB answer, which Lambda refuses with no word of why.
    const many = Array.from({ length: 70_000 }, (_, index) => `${'t'.repeat(54)}${String(index).padStart(6, '0')}`);
    const tooMany = await listHandler({ config, logger, operations: { ...operations, listNames: async () => ({ tenants: many, recovered: [] }) } })({ names: true }, fakeContext());
    expect(tooMany).toEqual({ ok: false, error: { code: 'INVALID_REQUEST', outcome: 'usage', message: expect.stringMatching(/^the 70,000 tenants do not fit one Lambda answer \(6 MB\)/) } });
    expect((tooMany as { error: { message: string } }).error.message).toMatch(olderCli);
    // One that fits and ends in time is answered whole, as before.
    expect(await handlers().list({}, fakeContext())).toMatchObject({ tenants: (await operations.listNames()).tenants.map((name) => ({ name })) });
  });

  it('stops a tenant\'s walk on a local disk when the deadline\'s timer fires, though each call of that walk is synchronous', async () => {
    const wideBase = path.join(dir.path, 'wide-tenants');
    const files = path.join(wideBase, 'wide', 'files');
    mkdirSync(files, { recursive: true });
    for (let index = 0; index < 12_000; index++) writeFileSync(path.join(files, `f${index}`), '');
    const deadline = new AbortController();
    setTimeout(() => deadline.abort(new AbortedError('stopped: the Lambda invocation was about to time out')), 0);
    await expect(summarizeTenant(wideBase, 'wide', deadline.signal)).rejects.toThrow('stopped: the Lambda invocation was about to time out');
    // Without a deadline the same walk counts every file.
    expect(await summarizeTenant(wideBase, 'wide')).toMatchObject({ files: 12_000 });
  });
});
