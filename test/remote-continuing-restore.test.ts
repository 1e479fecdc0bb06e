// A remote restore that outlasts its invocation, as this CLI reads the restore function's
// answer: the real handler's (s3rver as S3, a 5-second budget running down 50 ms at every look
// at the time left, its next piece queued on an array): one line that the restore continues
// on the gateway, nothing in the slot until it ends, and how to follow it; exit 0.

import path from 'node:path';

import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { Logger } from '@aws-lambda-powertools/logger';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

import { completionPublisher } from '../functions/events.js';
import { backupHandler } from '../functions/backup-handler.js';
import { restoreHandler } from '../functions/restore-handler.js';
import type { RestoreWorkMessage } from '../shared/control-plane/work-queue.js';
import { budgetContext, continuationConfig, stubRoleReachingS3At, writeSessionTurns } from './helpers/continuation.js';
import { runMain, stubRemoteCaller } from './helpers/run-main.js';
import { startS3Server, type S3TestServer } from './helpers/s3-server.js';
import { tempDir } from './helpers/tree.js';

const dir = tempDir('openclaw-continuing-restore-');
const base = path.join(dir.path, 'mnt-tenants');
const eventBridge = mockClient(EventBridgeClient);
const lambda = mockClient(LambdaClient);
const logger = new Logger({ serviceName: 'openclaw-backup-test' });
let server: S3TestServer;
const queue: RestoreWorkMessage[] = [];
const config = continuationConfig(base);
const LOCATION = 's3://backups/acme/2026-06-03.tar.zst';
let answer: Record<string, unknown>;

beforeAll(async () => {
  server = await startS3Server({ bucket: 'backups' });
  stubRoleReachingS3At(server.endpoint);
  writeSessionTurns(path.join(base, 'acme'), 80);
  eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e' }] });
  const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    const publish = completionPublisher(new EventBridgeClient({ region: 'us-east-1' }), config.eventBus, logger);
    await backupHandler({ config, logger, publish })({ tenant: 'acme', to: LOCATION }, budgetContext('req-b', 900_000));
    const continueRestore = async (message: RestoreWorkMessage) => void queue.push(message);
    answer = (await restoreHandler({ config, logger, publish, continueRestore })({ from: LOCATION, as: 'acme-copy' }, budgetContext('req-r'))) as unknown as Record<string, unknown>;
  } finally {
    write.mockRestore();
  }
  vi.unstubAllEnvs();
});
afterAll(async () => {
  eventBridge.restore();
  lambda.restore();
  await server.dispose();
  dir.cleanup();
});
beforeEach(() => {
  lambda.reset();
  stubRemoteCaller();
});
afterEach(() => vi.unstubAllEnvs());

const remote = (...args: string[]) => runMain(['--stack', 'openclaw-backup', ...args, 'tenants', 'restore', '--from', LOCATION, '--as', 'acme-copy']);
const answering = (payload: unknown) => lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: new TextEncoder().encode(JSON.stringify(payload)) as never });

describe('the answer of a restore that continues in further invocations', () => {
  it('is a continuing restore (the real handler, its next piece queued), with a failure beside it for older CLIs', () => {
    expect(answer).toMatchObject({ operation: 'restore', suspended: true, tenant: 'acme-copy', location: LOCATION, pieces: 1, ok: false, error: { code: 'RESTORE_CONTINUES' } });
    expect(queue).toHaveLength(1);
  });

  it('is one line and how to follow it to this CLI (exit 0); --json shows it without the older CLIs\' failure', async () => {
    answering(answer);
    const human = await remote();
    expect(human.stderr).toBe('');
    expect(human.status).toBe(0);
    expect(human.stdout.split('\n').slice(0, 2)).toEqual([
      `The restore of tenant "acme-copy" from ${LOCATION} continues on the gateway in further invocations (piece 1 done, chain ${String(answer.chain)})`,
      '  nothing is in the slot until its last piece commits (a --force restore leaves the old tenant there until then); follow it with `openclaw tenants list` or its completion event (OpenClaw Restore Succeeded or Failed)',
    ]);
    const json = await remote('--json');
    expect(json.status).toBe(0);
    const { ok: _ok, error: _error, ...suspended } = answer;
    expect(JSON.parse(json.stdout)).toEqual(suspended);
  });
});
