// The restore function grants a request's limits.maxEntries (the CLI's --max-entries) only up
// to what its memory holds: the manifest a restore, its dry run and verify read grows with it
// (shared/restore/limits.ts manifestLimits), and so do the entry paths held: a hostile manifest at
// the bounds of 16,000,000 took a function of 1,024 MiB out of heap with no answer and no event,
// and 5,000,000 long paths and such a manifest took 1.3 GiB (docs/scale.md). A request
// asking more is refused in one line, before anything is read, naming the most it grants and
// the memory that would grant it; what it grants goes on as before, and so does any request
// where the memory is not known (not in Lambda). The memory is Lambda's
// AWS_LAMBDA_FUNCTION_MEMORY_SIZE, read with the rest of the configuration.

import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { Logger } from '@aws-lambda-powertools/logger';
import { mockClient } from 'aws-sdk-client-mock';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

import { createSampleTenant } from '../scripts/sample-tenant.js';
import { completionPublisher } from '../functions/events.js';
import { backupHandler } from '../functions/backup-handler.js';
import type { LambdaContext } from '../functions/lambda-context.js';
import { restoreHandler } from '../functions/restore-handler.js';
import { readFunctionConfig, type FunctionConfig } from '../shared/control-plane/function-config.js';
import { memoryEntryLimit } from '../shared/restore/function-limits.js';
import { tempDir } from './helpers/tree.js';
import { S3RVER_ACCESS_KEY, startS3Server, type S3TestServer } from './helpers/s3-server.js';

const EVENT_BUS = 'openclaw-backup-events';
const dir = tempDir('openclaw-restore-memory-');
const base = path.join(dir.path, 'tenants');
const logger = new Logger({ serviceName: 'openclaw-backup-test' });
const eventBridge = mockClient(EventBridgeClient);
let server: S3TestServer;
const FROM = 's3://backups/memory/acme.tar.zst';

function context(): LambdaContext {
  const deadline = Date.now() + 900_000;
  return {
    awsRequestId: 'req-memory',
    functionName: 'openclaw-backup-restore',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:openclaw-backup-restore',
    memoryLimitInMB: '1024',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
}

/** The configuration a function of `memory` MiB reads (none: not in Lambda). */
function configOf(memory?: string): FunctionConfig {
  return readFunctionConfig({
    OPENCLAW_TENANTS_DIR: base,
    OPENCLAW_BACKUP_BUCKET: 'backups',
    OPENCLAW_ALLOWED_ENDPOINTS: server.endpoint,
    OPENCLAW_EVENT_BUS: EVENT_BUS,
    OPENCLAW_ABORT_MARGIN_MS: '1000',
    ...(memory !== undefined && { AWS_LAMBDA_FUNCTION_MEMORY_SIZE: memory }),
  });
}

function restoreOf(memory?: string) {
  const config = configOf(memory);
  return restoreHandler({ config, logger, publish: completionPublisher(new EventBridgeClient({ region: 'eu-west-1' }), config.eventBus, logger) });
}

function published(): Record<string, unknown>[] {
  return eventBridge.commandCalls(PutEventsCommand).flatMap((call) => (call.args[0].input.Entries ?? []).map((entry) => JSON.parse(entry.Detail ?? '{}') as Record<string, unknown>));
}

beforeAll(async () => {
  createSampleTenant(path.join(base, 'acme'), { sessions: 2, memoryRows: 10 });
  server = await startS3Server({ bucket: 'backups' });
  vi.stubEnv('AWS_ACCESS_KEY_ID', S3RVER_ACCESS_KEY);
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'role-secret');
  vi.stubEnv('AWS_REGION', 'us-east-1');
});
afterAll(async () => {
  vi.unstubAllEnvs();
  eventBridge.restore();
  await server?.dispose();
  dir.cleanup();
});
beforeEach(() => {
  eventBridge.reset();
  eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'ev-1' }] });
  for (const stream of [process.stdout, process.stderr]) vi.spyOn(stream, 'write').mockImplementation(() => true);
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe('the restore function and --max-entries past what its memory holds', () => {
  const storage = () => ({ endpoint: server.endpoint });
  const refusal = /^--max-entries 16,000,000 is more than the restore function's 2,048 MiB of memory holds \(an archive read within that limit may take up to 5\.2 GiB\): it grants at most 4,992,000: give --max-entries 4992000 or less, give the restore function 5,718 MiB of memory or more \(the stack's memorySizeMiB\), or use the CLI in local mode on a host that mounts the tenant volume$/;

  beforeAll(async () => {
    const config = configOf('1024');
    const backup = await backupHandler({ config, logger, publish: completionPublisher(new EventBridgeClient({ region: 'eu-west-1' }), undefined, logger) })({ tenant: 'acme', to: FROM, storage: storage() }, context());
    expect(backup).toMatchObject({ operation: 'backup', tenant: 'acme' });
  });

  it('reads Lambda\'s memory size with the rest of the configuration, and refuses one that is no number of MiB', () => {
    expect(configOf('1024').memoryMiB).toBe(1024);
    expect(configOf().memoryMiB).toBeUndefined();
    expect(() => configOf('1 GiB')).toThrow(/^AWS_LAMBDA_FUNCTION_MEMORY_SIZE must be a whole number of MiB, got "1 GiB"$/);
  });

  it('grants 3,000 entries a MiB past 384, never fewer than the default 2,000,000', () => {
    expect([128, 512, 1024, 1050, 1051, 2048, 10_240].map(memoryEntryLimit)).toEqual([2_000_000, 2_000_000, 2_000_000, 2_000_000, 2_001_000, 4_992_000, 29_568_000]);
  });

  it('refuses a restore, its dry run and a verify asking more, in one line naming the memory, before anything is read (the restore with its failure event)', async () => {
    const restore = restoreOf('2048');
    const limits = { maxEntries: 16_000_000 };
    expect(await restore({ from: FROM, as: 'acme-copy', storage: storage(), limits }, context())).toEqual({ ok: false, error: { code: 'ARCHIVE_LIMIT', outcome: 'refused', message: expect.stringMatching(refusal) } });
    expect(existsSync(path.join(base, 'acme-copy'))).toBe(false);
    expect(published()).toEqual([expect.objectContaining({ tenant: 'acme-copy', location: FROM, error: { code: 'ARCHIVE_LIMIT', message: expect.stringMatching(refusal) } })]);
    eventBridge.resetHistory();
    expect(await restore({ from: FROM, as: 'acme-copy', storage: storage(), limits, dryRun: true }, context())).toMatchObject({ ok: false, error: { code: 'ARCHIVE_LIMIT', message: expect.stringMatching(refusal) } });
    expect(await restore({ operation: 'verify', from: FROM, record: false, storage: storage(), limits }, context())).toMatchObject({ ok: false, error: { code: 'ARCHIVE_LIMIT', message: expect.stringMatching(refusal) } });
    expect(published()).toEqual([]);
    // Past what any memory grants: the CLI in local mode only.
    const most = await restore({ operation: 'verify', from: FROM, record: false, storage: storage(), limits: { maxEntries: 1_000_000_000 } }, context());
    expect(most).toMatchObject({ ok: false, error: { code: 'ARCHIVE_LIMIT', message: expect.stringMatching(/^--max-entries 1,000,000,000 is more than .* it grants at most 4,992,000: give --max-entries 4992000 or less, or use the CLI in local mode on a host that mounts the tenant volume$/) } });
    // The default, whatever the memory.
    const small = await restoreOf('512')({ operation: 'verify', from: FROM, record: false, storage: storage(), limits: { maxEntries: 2_000_001 } }, context());
    expect(small).toMatchObject({ ok: false, error: { code: 'ARCHIVE_LIMIT', message: expect.stringMatching(/^--max-entries 2,000,001 is more than the restore function's 512 MiB of memory holds .* it grants at most 2,000,000: give --max-entries 2000000 or less, give the restore function 1,051 MiB of memory or more/) } });
  });

  it('goes on with what the memory grants, and with any --max-entries where the memory is not known', async () => {
    const verify = (memory: string | undefined, maxEntries: number) => restoreOf(memory)({ operation: 'verify', from: FROM, record: false, storage: storage(), limits: { maxEntries } }, context());
    expect(await verify('512', 2_000_000)).toMatchObject({ operation: 'verify', verified: true });
    expect(await verify('2048', 4_992_000)).toMatchObject({ operation: 'verify', verified: true });
    expect(await verify('10240', 16_000_000)).toMatchObject({ operation: 'verify', verified: true });
    expect(await verify(undefined, 16_000_000)).toMatchObject({ operation: 'verify', verified: true });
    expect(await restoreOf('2048')({ from: FROM, as: 'acme-granted', storage: storage(), limits: { maxEntries: 4_992_000 } }, context())).toMatchObject({ operation: 'restore', tenant: 'acme-granted', verified: true });
  });
});
