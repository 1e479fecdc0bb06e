// A remote backup that outlasts its invocation, as the CLIs of every version read the backup
// function's answer. The answer is the real handler's (s3rver as S3, a 5-second budget that
// runs down by 50 ms at every look at the time left, as in functions-continuation.test.ts).
// A CLI older than backups in pieces (test/helpers/old-cli-backup.ts: its code path, which
// cannot change) took the suspended answer for a finished backup and failed reading counts it
// lacks: "unexpected error: Cannot read properties of undefined (reading 'length')", exit 1,
// nothing said of a backup still going on. The answer carries a failure for it beside the
// BackupSuspended (protocol.ts continuingAnswer): it prints that one line (the backup
// continues, is not finished, how to follow it; exit 1), while this CLI shows a continuing
// backup (exit 0), from that answer and from the bare one of the gateways before it.

import path from 'node:path';

import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { Logger } from '@aws-lambda-powertools/logger';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

import { backupHandler } from '../functions/backup-handler.js';
import type { HandlerDeps } from '../functions/handler-deps.js';
import type { WorkMessage } from '../shared/control-plane/work-queue.js';
import { budgetContext, continuationConfig, queueingDeps, stubRoleReachingS3At, writeSessionTurns } from './helpers/continuation.js';
import { oldCliBackup } from './helpers/old-cli-backup.js';
import { runMain, stubRemoteCaller } from './helpers/run-main.js';
import { startS3Server, type S3TestServer } from './helpers/s3-server.js';
import { tempDir } from './helpers/tree.js';

const dir = tempDir('openclaw-continuing-answer-');
const base = path.join(dir.path, 'mnt-tenants');
const eventBridge = mockClient(EventBridgeClient);
const lambda = mockClient(LambdaClient);
const logger = new Logger({ serviceName: 'openclaw-backup-test' });
let server: S3TestServer;
const queue: WorkMessage[] = [];

const config = continuationConfig(base);

const deps = (): HandlerDeps => queueingDeps(config, logger, queue);

const LOCATION = 's3://backups/acme/2026-06-03.tar.zst';
let answer: Record<string, unknown>;
let scheduledAnswer: Record<string, unknown>;

beforeAll(async () => {
  server = await startS3Server({ bucket: 'backups' });
  stubRoleReachingS3At(server.endpoint);
  for (const tenant of ['acme', 'nightly']) writeSessionTurns(path.join(base, tenant), 80);
  eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e' }] });
  const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    answer = (await backupHandler(deps())({ tenant: 'acme', to: LOCATION }, budgetContext('req-1'))) as unknown as Record<string, unknown>;
    const cron = { source: 'openclaw.cron', tenant: 'nightly', cronName: 'nightly', time: '2026-06-03T03:00:00Z', eventId: '89d1a02d-5ec7-412e-82f5-13505f849b41', command: { tenant: 'nightly', to: 's3://backups/nightly/{date:%F}.tar.zst' } };
    scheduledAnswer = (await backupHandler(deps())(cron, budgetContext('req-2'))) as unknown as Record<string, unknown>;
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

const remote = (...args: string[]) => runMain(['--stack', 'openclaw-backup', ...args, 'tenants', 'backup', 'acme', '--to', LOCATION]);
const answering = (payload: unknown) => lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: new TextEncoder().encode(JSON.stringify(payload)) as never });

describe('the answer of a backup that continues in further invocations', () => {
  it('is a continuing backup (the real handler, its next piece queued)', () => {
    expect(answer).toMatchObject({ operation: 'backup', suspended: true, tenant: 'acme', location: LOCATION, pieces: 1 });
    expect(answer.files).toBeGreaterThan(0);
    expect(answer.files).toBeLessThan(80);
    expect(queue).toHaveLength(2);
  });

  it('stays bare for a scheduled run, whose answer nobody reads', () => {
    expect(scheduledAnswer).toMatchObject({ operation: 'backup', suspended: true, tenant: 'nightly', location: 's3://backups/nightly/2026-06-03.tar.zst', pieces: 1 });
    expect(scheduledAnswer).not.toHaveProperty('ok');
    expect(scheduledAnswer).not.toHaveProperty('error');
  });

  it('is a one-line failure to a CLI older than backups in pieces: the backup continues and is not finished (exit 1), not "unexpected error"', () => {
    const human = oldCliBackup(answer, false);
    expect(human.status).toBe(1);
    expect(human.stdout).toBe('');
    expect(human.stderr).toMatch(
      new RegExp(
        `^openclaw: the backup of tenant "acme" to s3://backups/acme/2026-06-03\\.tar\\.zst continues on the gateway in further invocations \\(${String(answer.files)} files, [^)]+ so far\\): ` +
          'it is not finished and may still fail; its completion event \\(OpenClaw Backup Succeeded or Failed\\) reports the end, tenants backups lists the archive then, ' +
          'and the same backup asked again goes on with it \\(this CLI is older than the gateway and cannot show a continuing backup: update it\\)\\n$',
      ),
    );
    const json = oldCliBackup(answer, true);
    expect(json.status).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({ error: { code: 'BACKUP_CONTINUES', message: human.stderr.slice('openclaw: '.length, -1) } });
  });

  it('is a continuing backup to this CLI (exit 0), and --json shows it without the older CLIs\' failure', async () => {
    answering(answer);
    const human = await remote();
    expect(human.stderr).toBe('');
    expect(human.status).toBe(0);
    expect(human.stdout.split('\n').slice(0, 2)).toEqual([
      `The backup of tenant "acme" to ${LOCATION} continues on the gateway in further invocations`,
      expect.stringMatching(new RegExp(`^  so far ${String(answer.files)} files, `)),
    ]);
    const json = await remote('--json');
    expect(json.status).toBe(0);
    const { ok: _ok, error: _error, ...suspended } = answer;
    expect(JSON.parse(json.stdout)).toEqual(suspended);
    // The bare answer of the gateways between backups in pieces and this one: the same.
    answering(suspended);
    expect(await remote('--json')).toEqual(json);
  });
});
