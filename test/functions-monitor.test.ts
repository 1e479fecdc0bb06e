// The monitor function (functions/monitor-handler.ts) with a mocked clock, a mocked list of
// tenants and the status table faked in memory (helpers/fake-status-table.ts): completion
// events become each tenant's last success and failure (late events never win), and the
// freshness check finds a tenant whose last success is older than 26 hours, gives a new
// tenant its 26 hours from when it was first seen, and emits the `StaleTenants` metric as
// CloudWatch EMF (real Powertools output, read back from stdout).

import { Logger } from '@aws-lambda-powertools/logger';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { getFreshnessRecord } from '../shared/control-plane/status-table.js';
import { createMetrics, powertoolsMetrics } from '../functions/metrics.js';
import { monitorHandler } from '../functions/monitor-handler.js';
import { fakeStatusTable, tenantRecord, type FakeStatusTable } from './helpers/fake-status-table.js';
import { lambdaContext } from './helpers/lambda-context.js';

const TABLE = 'openclaw-backup-status';
const logger = new Logger({ serviceName: 'openclaw-backup', logLevel: 'SILENT' });
const context = lambdaContext({ awsRequestId: 'req-m', functionName: 'openclaw-backup-monitor', memoryLimitInMB: '256', remaining: 60_000 });
const HOUR = 3_600_000;
const T0 = Date.parse('2026-06-10T12:00:00Z');

let table: FakeStatusTable;
let clock: number;
let tenants: string[];
let stdout: string[];

beforeEach(() => {
  // Pages of 2: the check reads the whole table whatever its size.
  table = fakeStatusTable(2);
  clock = T0;
  tenants = [];
  stdout = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout.push(String(chunk)), true)));
});
afterEach(() => {
  vi.restoreAllMocks();
  table.restore();
});
afterAll(() => vi.restoreAllMocks());

const monitor = () =>
  monitorHandler({
    logger,
    db: new DynamoDBClient({ region: 'eu-west-1' }),
    table: TABLE,
    listNames: async () => tenants,
    now: () => new Date(clock),
    metrics: powertoolsMetrics(createMetrics('openclaw-backup')),
  });

function completion(ok: boolean, tenant: string | null, at: number, extra: Record<string, unknown> = {}) {
  return {
    version: '0',
    id: `ev-${at}`,
    'detail-type': ok ? 'OpenClaw Backup Succeeded' : 'OpenClaw Backup Failed',
    source: 'openclaw.backup',
    account: '123456789012',
    time: new Date(at).toISOString().replace('.000Z', 'Z'),
    region: 'eu-west-1',
    resources: [],
    detail: {
      tenant,
      location: `s3://my-bucket/backups/${tenant}/x.tar.zst`,
      trigger: 'queue',
      requestId: 'r',
      durationMs: 1234,
      ...(ok ? { bytes: 1000, archiveBytes: 400 } : { error: { code: 'STORAGE', message: 'S3 said no' } }),
      ...extra,
    },
  };
}

/** The EMF documents written to stdout. */
const emf = () => stdout.flatMap((line) => line.split('\n')).filter((line) => line.includes('"_aws"')).map((line) => JSON.parse(line) as Record<string, unknown>);

describe('recording outcomes', () => {
  it('keeps each tenant\'s last success and last failure, and never lets an older event win', async () => {
    const handle = monitor();
    expect(await handle(completion(true, 'acme', T0 - 2 * HOUR), context)).toEqual({ recorded: 'recorded', tenant: 'acme' });
    expect(await handle(completion(false, 'acme', T0 - HOUR), context)).toEqual({ recorded: 'recorded', tenant: 'acme' });
    // A retry of an earlier delivery arrives late.
    expect(await handle(completion(true, 'acme', T0 - 3 * HOUR, { bytes: 1 }), context)).toEqual({ recorded: 'older', tenant: 'acme' });
    expect(tenantRecord(table, 'acme')).toEqual({
      kind: 'tenant',
      name: 'acme',
      lastSuccessAt: '2026-06-10T10:00:00.000Z',
      lastSuccessLocation: 's3://my-bucket/backups/acme/x.tar.zst',
      lastSuccessTrigger: 'queue',
      lastDurationMs: 1234,
      lastBytes: 1000,
      lastArchiveBytes: 400,
      lastFailureAt: '2026-06-10T11:00:00.000Z',
      lastFailureLocation: 's3://my-bucket/backups/acme/x.tar.zst',
      lastFailureTrigger: 'queue',
      lastFailureCode: 'STORAGE',
      lastFailureMessage: 'S3 said no',
    });
  });

  it('ignores restores and failures that named no tenant', async () => {
    const handle = monitor();
    expect(await handle({ ...completion(true, 'acme', T0), 'detail-type': 'OpenClaw Restore Succeeded' }, context)).toEqual({ recorded: 'ignored' });
    expect(await handle(completion(false, null, T0), context)).toEqual({ recorded: 'ignored' });
    expect(table.items.size).toBe(0);
    await expect(handle({ something: 'else' }, context)).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
  });
});

describe('freshness check', () => {
  const check = { source: 'openclaw.monitor', check: 'freshness' };

  it('finds the tenant with no success in 26 hours, and gives a new tenant 26 hours from when it was first seen', async () => {
    const handle = monitor();
    await handle(completion(true, 'acme', T0 - 27 * HOUR), context);
    await handle(completion(true, 'beta', T0 - 2 * HOUR), context);
    // Gamma failed every night: it has a failure, never a success.
    await handle(completion(false, 'gamma', T0 - 3 * HOUR), context);
    // A tenant that was deleted keeps its record: it is not stale, it is gone.
    await handle(completion(true, 'gone', T0 - 300 * HOUR), context);
    tenants = ['acme', 'beta', 'gamma', 'newbie'];

    const first = await handle(check, context);
    expect(first).toEqual({
      freshness: { checkedAt: '2026-06-10T12:00:00.000Z', tenants: 4, staleAfterHours: 26, stale: 1, staleSample: ['acme'], firstSeen: 2 },
    });
    expect(tenantRecord(table, 'newbie')).toEqual({ kind: 'tenant', name: 'newbie', firstSeenAt: '2026-06-10T12:00:00.000Z' });
    expect(tenantRecord(table, 'gamma')!.firstSeenAt).toBe('2026-06-10T12:00:00.000Z');

    // The clock moves 25 hours: beta's success is 27 hours old; newbie and gamma (first seen
    // 25 hours ago) are not stale yet.
    clock = T0 + 25 * HOUR;
    expect(await handle(check, context)).toMatchObject({ freshness: { stale: 2, staleSample: ['acme', 'beta'], firstSeen: 0 } });
    clock = T0 + 27 * HOUR;
    expect(await handle(check, context)).toMatchObject({ freshness: { stale: 4, staleSample: ['acme', 'beta', 'gamma', 'newbie'] } });

    // A success puts acme right; the record doctor reads follows.
    await handle(completion(true, 'acme', clock - HOUR), context);
    expect(await handle(check, context)).toMatchObject({ freshness: { stale: 3, staleSample: ['beta', 'gamma', 'newbie'] } });
    expect(await getFreshnessRecord(new DynamoDBClient({ region: 'eu-west-1' }), TABLE)).toEqual({
      checkedAt: '2026-06-11T15:00:00.000Z',
      tenants: 4,
      stale: 3,
      staleSample: ['beta', 'gamma', 'newbie'],
      staleAfterHours: 26,
    });
  });

  it('emits StaleTenants and TenantsChecked as EMF, with the tenant names as a property, not a dimension', async () => {
    const handle = monitor();
    await handle(completion(true, 'acme', T0 - 30 * HOUR), context);
    tenants = ['acme'];
    await handle(check, context);
    const [document] = emf();
    expect(document).toMatchObject({
      _aws: {
        CloudWatchMetrics: [
          {
            Namespace: 'OpenClawBackup',
            Dimensions: [['service', 'operation']],
            Metrics: expect.arrayContaining([
              { Name: 'StaleTenants', Unit: 'Count' },
              { Name: 'TenantsChecked', Unit: 'Count' },
            ]),
          },
        ],
      },
      service: 'openclaw-backup',
      operation: 'freshness',
      StaleTenants: 1,
      TenantsChecked: 1,
      staleSample: '["acme"]',
    });
  });
});
