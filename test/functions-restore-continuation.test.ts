// A restore larger than one invocation, through the real handlers against s3rver: the restore
// function, invoked directly with a 5-second budget (50 ms of virtual time per look at the
// time left, test/helpers/continuation.ts), stops between entries, keeps its staging and
// checkpoint on the (temporary) tenant volume, queues its next piece on the restore queue (an
// array here) and answers the CLI `suspended`; the restore queue handler runs the pieces until
// one commits. Also: the object written again between pieces, a backup of the tenant while
// its restore is mid-chain, and a piece delivered again.

import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync, linkSync, chmodSync, utimesSync } from 'node:fs';
import path from 'node:path';

import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Logger } from '@aws-lambda-powertools/logger';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

import { completionPublisher } from '../functions/events.js';
import { AbortedError } from '../shared/errors.js';
import { generateIdentity } from '../shared/age/index.js';
import { backupHandler, functionBackupOperations } from '../functions/backup-handler.js';
import type { HandlerDeps, RestoreSide } from '../functions/handler-deps.js';
import type { OperationRecord } from '../functions/metrics.js';
import { functionRestoreOperations, restoreHandler } from '../functions/restore-handler.js';
import { restoreQueueHandler } from '../functions/restore-queue-handler.js';
import { encodeRestoreWorkMessage, type RestoreWorkMessage } from '../shared/control-plane/work-queue.js';
import { loadRestoreCheckpoint, MAX_REWRITES, restoreCheckpointPathFor, saveRestoreCheckpoint } from '../shared/restore/restore-continuation.js';
import { RESTORE_PIECE_RECEIVES } from '../shared/control-plane/deployment.js';
import { recoverTenant } from '../shared/tenant/recover.js';
import { listTenantNames } from '../shared/tenant/tenants.js';
import { budgetContext, continuationConfig, stubRoleReachingS3At, publishedEvents } from './helpers/continuation.js';
import { S3RVER_ACCESS_KEY, startS3Server, startBodyHoldingProxy, startOpeningHoldingProxy, startTailHoldingProxy, type S3TestServer } from './helpers/s3-server.js';
import { describeTree, tempDir } from './helpers/tree.js';
import { writeWithFooterEntries } from './helpers/backups.js';

const dir = tempDir('openclaw-restore-continuation-');
const base = path.join(dir.path, 'mnt-tenants');
const eventBridge = mockClient(EventBridgeClient);
const logger = new Logger({ serviceName: 'openclaw-backup-test' });
let server: S3TestServer;
let s3: S3Client;
const queue: RestoreWorkMessage[] = [];
const config = continuationConfig(base);

const deps = () => {
  const shared: HandlerDeps<RestoreSide> = {
    config,
    logger,
    publish: completionPublisher(new EventBridgeClient({ region: 'us-east-1' }), config.eventBus, logger),
    continueRestore: async (message) => {
      queue.push(JSON.parse(encodeRestoreWorkMessage(message)) as RestoreWorkMessage);
    },
  };
  return { ...shared, operations: functionRestoreOperations(config) };
};

const events = () => publishedEvents(eventBridge);

/**
 * deps() whose restore pieces meet their invocation's deadline once they have written (a piece
 * is asked whether to stop only from then on) and do not stop: stopped by the deadline mid-write.
 */
function stoppedOnceWriting(): ReturnType<typeof deps> {
  const real = deps();
  const restorePiece = real.operations.restorePiece!;
  return {
    ...real,
    operations: {
      ...real.operations,
      restorePiece: (command, hooks) => {
        const deadline = new AbortController();
        const suspend = () => {
          deadline.abort(new AbortedError('stopped: the Lambda invocation was about to time out'));
          return false;
        };
        return restorePiece(command, { ...hooks, signal: deadline.signal, pieces: { ...hooks.pieces, suspend } });
      },
    },
  };
}

/** Delivers the next queued piece; its answer. */
async function deliver(message: RestoreWorkMessage, id: string) {
  return restoreQueueHandler(deps())({ Records: [{ messageId: id, body: encodeRestoreWorkMessage(message), eventSource: 'aws:sqs' }] }, budgetContext(`req-${id}`));
}

/** Runs queued pieces until the queue is empty; how many ran. */
async function drainQueue(): Promise<number> {
  let pieces = 0;
  for (let message = queue.shift(); message !== undefined; message = queue.shift()) {
    pieces++;
    expect(await deliver(message, `m-${pieces}`)).toEqual({ batchItemFailures: [] });
    if (pieces > 200) throw new Error('the chain does not end');
  }
  return pieces;
}

function makeTenant(name: string): string {
  const tenantDir = path.join(base, name);
  for (let d = 0; d < 6; d++) {
    for (let f = 0; f < 15; f++) {
      const file = path.join(tenantDir, `sessions-${d}`, `s-${String(f).padStart(2, '0')}.jsonl`);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, `{"turn":${f},"text":"${'conversation '.repeat(50 + f)}"}\n`, { mode: f % 3 === 0 ? 0o600 : 0o644 });
    }
  }
  linkSync(path.join(tenantDir, 'sessions-0', 's-00.jsonl'), path.join(tenantDir, 'linked.jsonl'));
  symlinkSync('sessions-1/s-01.jsonl', path.join(tenantDir, 'latest'));
  chmodSync(path.join(tenantDir, 'sessions-5'), 0o750);
  return tenantDir;
}

const hidden = () => readdirSync(base).filter((name) => name.startsWith('.openclaw-'));

beforeAll(async () => {
  server = await startS3Server({ bucket: 'backups' });
  s3 = new S3Client({ endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: S3RVER_ACCESS_KEY, secretAccessKey: 'x' }, requestChecksumCalculation: 'WHEN_REQUIRED' });
  stubRoleReachingS3At(server.endpoint);
  makeTenant('acme');
  const backedUp = await backupHandler({ config, logger, publish: async () => undefined })({ tenant: 'acme', to: 's3://backups/acme/one.tar.zst' }, budgetContext('req-b', 900_000));
  expect(backedUp).toMatchObject({ tenant: 'acme' });
});
afterAll(async () => {
  vi.unstubAllEnvs();
  eventBridge.restore();
  s3.destroy();
  await server.dispose();
  dir.cleanup();
});
beforeEach(() => {
  queue.length = 0;
  eventBridge.reset();
  eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e' }] });
});

describe('the restore function, a restore larger than one invocation', () => {
  it('answers suspended, goes on through the restore queue in 3+ pieces, and restores the tenant whole: contents, modes, links', async () => {
    const answer = await restoreHandler(deps())({ from: 's3://backups/acme/one.tar.zst', as: 'acme-copy' }, budgetContext('req-r1'));
    expect(answer).toMatchObject({ operation: 'restore', suspended: true, tenant: 'acme-copy', pieces: 1, ok: false, error: { code: 'RESTORE_CONTINUES' } });
    expect(queue).toHaveLength(1);
    expect(queue[0]).toMatchObject({ version: 1, kind: 'restore', tenant: 'acme-copy', command: { from: 's3://backups/acme/one.tar.zst' }, continues: { trigger: 'direct' } });
    expect(events()).toEqual([]);
    const pieces = await drainQueue();
    expect(pieces + 1).toBeGreaterThanOrEqual(3);
    expect(describeTree(path.join(base, 'acme-copy'))).toEqual(describeTree(path.join(base, 'acme')));
    expect(hidden()).toEqual([]);
    expect(events()).toEqual([{ detailType: 'OpenClaw Restore Succeeded', detail: expect.objectContaining({ tenant: 'acme-copy', verified: true, chain: (answer as { chain: string }).chain }) }]);
  });

  it('each piece delivered twice (SQS delivers at least once): the second copy is answered as done and queues nothing; the chain does not fork; a piece delivered after its chain ended does nothing', async () => {
    await restoreHandler(deps())({ from: 's3://backups/acme/one.tar.zst', as: 'acme-twice' }, budgetContext('req-r2'));
    let last: RestoreWorkMessage | undefined;
    let pieces = 0;
    for (let message = queue.shift(), n = 0; message !== undefined; message = queue.shift(), n++) {
      last = message;
      pieces++;
      expect(await deliver(message, `a-${n}`)).toEqual({ batchItemFailures: [] });
      const queued = queue.length;
      expect(queued).toBeLessThanOrEqual(1);
      expect(await deliver(message, `b-${n}`)).toEqual({ batchItemFailures: [] });
      expect(queue).toHaveLength(queued);
      if (pieces > 200) throw new Error('the chain does not end');
    }
    expect(pieces).toBeGreaterThanOrEqual(2);
    expect(describeTree(path.join(base, 'acme-twice'))).toEqual(describeTree(path.join(base, 'acme')));
    expect(events()).toEqual([{ detailType: 'OpenClaw Restore Succeeded', detail: expect.objectContaining({ tenant: 'acme-twice' }) }]);
    eventBridge.resetHistory();
    expect(await deliver(last!, 'again')).toEqual({ batchItemFailures: [] });
    expect(events()).toEqual([]);
    expect(hidden()).toEqual([]);
  });

  it('two deliveries of one piece at the same time (its visibility timeout passed): the second waits for the first and goes on from where it left the chain; one completion event', async () => {
    await restoreHandler(deps())({ from: 's3://backups/acme/one.tar.zst', as: 'acme-together' }, budgetContext('req-t1'));
    const message = queue.shift()!;
    expect(await Promise.all([deliver(message, 't-a'), deliver(message, 't-b')])).toEqual([{ batchItemFailures: [] }, { batchItemFailures: [] }]);
    // One of them ran the piece, the other found the chain past it: one next piece, not a fork.
    expect(queue).toHaveLength(1);
    await drainQueue();
    expect(describeTree(path.join(base, 'acme-together'))).toEqual(describeTree(path.join(base, 'acme')));
    expect(hidden().filter((name) => name.includes('-acme-together'))).toEqual([]);
    expect(events()).toEqual([{ detailType: 'OpenClaw Restore Succeeded', detail: expect.objectContaining({ tenant: 'acme-together' }) }]);
  });

  it('keeps the tenant busy mid-chain: a backup of it is refused; the old tenant stays in the slot', async () => {
    makeTenant('busy');
    writeFileSync(path.join(base, 'busy', 'marker'), 'the old tenant');
    const answer = await restoreHandler(deps())({ from: 's3://backups/acme/one.tar.zst', as: 'busy', force: true }, budgetContext('req-r3'));
    expect(answer).toMatchObject({ suspended: true });
    const backup = await backupHandler({ config, logger, publish: async () => undefined })({ tenant: 'busy', to: 's3://backups/busy/x.tar.zst' }, budgetContext('req-b2', 900_000));
    expect(backup).toMatchObject({ ok: false, error: { code: 'TENANT_BUSY', message: expect.stringMatching(/a restore of it continues across invocations/) } });
    const again = await restoreHandler(deps())({ from: 's3://backups/acme/one.tar.zst', as: 'busy', force: true }, budgetContext('req-r4'));
    expect(again).toMatchObject({ ok: false, error: { code: 'TENANT_BUSY' } });
    queue.splice(1);
    expect(readdirSync(path.join(base, 'busy'))).toContain('marker');
    await drainQueue();
    expect(describeTree(path.join(base, 'busy'))).toEqual(describeTree(path.join(base, 'acme')));
  });

  it('a piece that cannot queue its next: the first ends its restore in one line (restore again), a later one is handed back and goes on when delivered again', async () => {
    const refusing = { ...deps(), continueRestore: async () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:443'), { code: 'ECONNREFUSED' })) };
    const first = await restoreHandler(refusing)({ from: 's3://backups/acme/one.tar.zst', as: 'handed' }, budgetContext('req-h1'));
    expect(first).toMatchObject({ ok: false, error: { message: expect.stringMatching(/could not be queued on the restore queue: cannot reach SQS .* the restore has ended, what it staged removed: restore again$/) } });
    expect(events()).toEqual([{ detailType: 'OpenClaw Restore Failed', detail: expect.objectContaining({ tenant: 'handed' }) }]);
    // Ended under its lock: nothing of it left (its checkpoint, staging, journal, lock).
    expect(hidden().filter((name) => name.includes('-handed'))).toEqual([]);
    // Restored again: the chain runs.
    expect(await restoreHandler(deps())({ from: 's3://backups/acme/one.tar.zst', as: 'handed' }, budgetContext('req-h2'))).toMatchObject({ suspended: true });
    const message = queue.shift()!;
    const record = { Records: [{ messageId: 'h', body: encodeRestoreWorkMessage(message), eventSource: 'aws:sqs' }] };
    expect(await restoreQueueHandler(refusing)(record, budgetContext('req-h3'))).toEqual({ batchItemFailures: [{ itemIdentifier: 'h' }] });
    expect(await restoreQueueHandler(deps())(record, budgetContext('req-h4'))).toEqual({ batchItemFailures: [] });
    await drainQueue();
    expect(describeTree(path.join(base, 'handed'))).toEqual(describeTree(path.join(base, 'acme')));
    // The first attempt's staging is an interrupted restore's: removed by the pieces' recovery
    // when their share of the (here virtual) time allows, else by the next command on the tenant.
    await recoverTenant({ tenantsDir: base, tenant: 'handed' });
    expect(hidden()).toEqual([]);
  });

  it('a later piece stopped by its deadline after it began writing is handed back, no event: delivered again, it writes again from the checkpoint and the chain ends with one success event', async () => {
    expect(await restoreHandler(deps())({ from: 's3://backups/acme/one.tar.zst', as: 'late-stop' }, budgetContext('req-s1'))).toMatchObject({ suspended: true });
    const stopping = stoppedOnceWriting();
    const message = queue.shift()!;
    const record = { Records: [{ messageId: 's', body: encodeRestoreWorkMessage(message), eventSource: 'aws:sqs' }] };
    expect(await restoreQueueHandler(stopping)(record, budgetContext('req-s2'))).toEqual({ batchItemFailures: [{ itemIdentifier: 's' }] });
    expect(events()).toEqual([]);
    expect(await loadRestoreCheckpoint(base, 'late-stop')).toMatchObject({ chain: message.continues.chain, writing: true });
    expect(await restoreQueueHandler(deps())(record, budgetContext('req-s3'))).toEqual({ batchItemFailures: [] });
    await drainQueue();
    expect(describeTree(path.join(base, 'late-stop'))).toEqual(describeTree(path.join(base, 'acme')));
    expect(events()).toEqual([{ detailType: 'OpenClaw Restore Succeeded', detail: expect.objectContaining({ tenant: 'late-stop' }) }]);
    expect(hidden().filter((name) => name.includes('-late-stop'))).toEqual([]);
  });

  // Every delivery of a piece stopped by its deadline once it wrote (replay and rewrite outlast
  // the invocation each time): the queue receives the message at most RESTORE_PIECE_RECEIVES
  // times, then moves it to the restore DLQ. With MAX_REWRITES 2 and three receives, the
  // delivery that ends the chain (the fourth) never came: the message sat in the DLQ, no
  // event, the tenant busy for the abandon time.
  it('a piece stopped by its deadline after it began writing on every delivery: its last receive before the restore DLQ ends the chain, one Failed event, nothing left', async () => {
    expect(await restoreHandler(deps())({ from: 's3://backups/acme/one.tar.zst', as: 'loop-stop' }, budgetContext('req-l1'))).toMatchObject({ suspended: true });
    const stopping = stoppedOnceWriting();
    expect(RESTORE_PIECE_RECEIVES).toBeGreaterThanOrEqual(MAX_REWRITES + 3); // one receive spare
    const body = encodeRestoreWorkMessage(queue.shift()!);
    let answer: unknown;
    for (let receive = 1; receive <= RESTORE_PIECE_RECEIVES; receive++) {
      answer = await restoreQueueHandler(stopping)({ Records: [{ messageId: 'l', body, eventSource: 'aws:sqs', attributes: { ApproximateReceiveCount: String(receive) } }] }, budgetContext(`req-l${receive + 1}`));
      if (receive < RESTORE_PIECE_RECEIVES && (answer as { batchItemFailures: unknown[] }).batchItemFailures.length === 0) break;
    }
    expect(answer).toEqual({ batchItemFailures: [] });
    expect(events()).toEqual([{ detailType: 'OpenClaw Restore Failed', detail: expect.objectContaining({ tenant: 'loop-stop', error: expect.objectContaining({ message: expect.stringMatching(/cannot go on: 3 pieces in a row ended while they wrote past its checkpoint \(killed: out of memory; or stopped by the function's deadline: their writes outlasted the time they counted on\).*: restore again with more memory or a longer timeout for the restore function/) }) }) }]);
    expect(existsSync(path.join(base, 'loop-stop'))).toBe(false);
    expect(hidden().filter((name) => name.includes('-loop-stop'))).toEqual([]);
  });

  it('a chain that stopped continuing, ended by the recovery of a later backup or restore of the tenant: one failure event (CONTINUATION_ENDED), its late message does nothing', async () => {
    makeTenant('stale');
    // No piece for the abandon time: a backup of the tenant ends it, then backs it up.
    expect(await restoreHandler(deps())({ from: 's3://backups/acme/one.tar.zst', as: 'stale', force: true }, budgetContext('req-s1'))).toMatchObject({ suspended: true });
    const late = queue.shift()!;
    const old = new Date(Date.now() - 25 * 3600_000);
    utimesSync(restoreCheckpointPathFor(base, 'stale'), old, old);
    // A listing's sweep (the list function, the fan-out) leaves it to one that says it ended.
    expect((await listTenantNames(base)).tenants).toContain('stale');
    expect(existsSync(restoreCheckpointPathFor(base, 'stale'))).toBe(true);
    const backup = await backupHandler({ ...deps(), operations: functionBackupOperations(config) })({ tenant: 'stale', to: 's3://backups/stale/after.tar.zst' }, budgetContext('req-s2', 900_000));
    expect(backup).toMatchObject({ tenant: 'stale' });
    expect(events()).toEqual([
      { detailType: 'OpenClaw Restore Failed', detail: expect.objectContaining({ tenant: 'stale', chain: late.continues.chain, location: 's3://backups/acme/one.tar.zst', error: { code: 'CONTINUATION_ENDED', message: expect.stringMatching(/^the restore stopped continuing after 1 invocation\(s\) \(no piece since .*\): abandoned/) } }) },
      { detailType: 'OpenClaw Backup Succeeded', detail: expect.objectContaining({ tenant: 'stale' }) },
    ]);
    eventBridge.resetHistory();
    expect(await deliver(late, 'late')).toEqual({ batchItemFailures: [] });
    expect(events()).toEqual([]);
    // Its first piece killed before it had cleared its hand-over mark, at each side of queueing its
    // next: the next restore of the tenant ends it, or that next piece itself; one failure event.
    for (const endedBy of ['its queued piece', 'restore']) {
      expect(await restoreHandler(deps())({ from: 's3://backups/acme/one.tar.zst', as: 'stale', force: true }, budgetContext('req-s3'))).toMatchObject({ suspended: true });
      const killed = queue.shift()!;
      await saveRestoreCheckpoint(base, { ...(await loadRestoreCheckpoint(base, 'stale'))!, handingOver: true });
      eventBridge.resetHistory();
      if (endedBy === 'restore') {
        expect(await restoreHandler(deps())({ from: 's3://backups/acme/one.tar.zst', as: 'stale', force: true }, budgetContext('req-s4'))).toMatchObject({ suspended: true });
      } else {
        expect(await deliver(killed, 'killed')).toEqual({ batchItemFailures: [] });
        expect(queue, endedBy).toEqual([]);
      }
      expect(events(), endedBy).toEqual([
        { detailType: 'OpenClaw Restore Failed', detail: expect.objectContaining({ tenant: 'stale', chain: killed.continues.chain, error: expect.objectContaining({ code: 'CONTINUATION_ENDED', message: expect.stringMatching(/its first piece stopped \(killed\) before it queued the next, or before it recorded that it had\)/) }) }) },
      ]);
    }
    await drainQueue();
    expect(describeTree(path.join(base, 'stale'))).toEqual(describeTree(path.join(base, 'acme')));
    expect(events().map((event) => event.detailType)).toEqual(['OpenClaw Restore Failed', 'OpenClaw Restore Succeeded']);
    // The ended chains' staging: removed by a recovery whose share of the (here virtual) time allows.
    await recoverTenant({ tenantsDir: base, tenant: 'stale' });
    expect(hidden().filter((name) => name.includes('-stale'))).toEqual([]);
  });

  // A message that is not the chain's is no tenant's restore: an event would tell a monitor
  // "failed" and then, from the real chain, "succeeded" for the same tenant.
  it('refuses a queued piece whose message names no piece number or another chain: logged (with its body) and counted in Failed, no tenant event, not handed back; the chain does not fork, its own message goes on', async () => {
    expect(await restoreHandler(deps())({ from: 's3://backups/acme/one.tar.zst', as: 'numbered' }, budgetContext('req-n1'))).toMatchObject({ suspended: true });
    const message = queue.shift()!;
    expect(message.piece).toBe(2);
    const { piece: _, ...unnumbered } = message;
    const records: OperationRecord[] = [];
    const counted = { ...deps(), metrics: { record: (record: OperationRecord) => void records.push(record), count: () => undefined } };
    const logged = vi.spyOn(logger, 'error');
    try {
      const body = encodeRestoreWorkMessage(unnumbered as RestoreWorkMessage);
      expect(await restoreQueueHandler(counted)({ Records: [{ messageId: 'unnumbered', body, eventSource: 'aws:sqs' }] }, budgetContext('req-unnumbered'))).toEqual({ batchItemFailures: [] });
      expect(logged).toHaveBeenCalledWith('queued restore piece not retried', expect.objectContaining({ messageId: 'unnumbered', errorCode: 'INVALID_REQUEST', body }));
    } finally {
      logged.mockRestore();
    }
    expect(records).toEqual([expect.objectContaining({ operation: 'restore', outcome: 'failed', tenant: 'numbered', errorCode: 'INVALID_REQUEST' })]);
    expect(await deliver({ ...message, continues: { ...message.continues, chain: 'c'.repeat(24) } }, 'other-chain')).toEqual({ batchItemFailures: [] });
    expect(queue).toEqual([]);
    expect(events()).toEqual([]);
    expect(await deliver(message, 'numbered')).toEqual({ batchItemFailures: [] });
    await drainQueue();
    expect(describeTree(path.join(base, 'numbered'))).toEqual(describeTree(path.join(base, 'acme')));
    expect(events()).toEqual([{ detailType: 'OpenClaw Restore Succeeded', detail: expect.objectContaining({ tenant: 'numbered' }) }]);
  });

  // Every receive published "OpenClaw Restore Failed" (tenant null) and counted Refused
  // (which no alarm watches): as many failure events as receives, for a message that waits for a redrive.
  it('hands back a queued piece of a newer version on every receive without a tenant event, counted in Failed on its first receive only', async () => {
    const records: OperationRecord[] = [];
    const counted = { ...deps(), metrics: { record: (record: OperationRecord) => void records.push(record), count: () => undefined } };
    const body = JSON.stringify({ version: 2, kind: 'restore', tenant: 'later', command: { from: 's3://backups/acme/one.tar.zst' }, continues: { chain: 'c'.repeat(24), trigger: 'direct' }, piece: 2 });
    const logged = vi.spyOn(logger, 'error');
    try {
      for (const receive of ['1', '2', '3']) {
        const record = { messageId: 'newer', body, eventSource: 'aws:sqs', attributes: { ApproximateReceiveCount: receive } };
        expect(await restoreQueueHandler(counted)({ Records: [record] }, budgetContext(`req-newer-${receive}`))).toEqual({ batchItemFailures: [{ itemIdentifier: 'newer' }] });
      }
      expect(logged.mock.calls.map(([message, attributes]) => [message, (attributes as { attempt: number }).attempt])).toEqual([1, 2, 3].map((attempt) => ['queued restore handed back unread', attempt]));
      expect(logged).toHaveBeenCalledWith('queued restore handed back unread', expect.objectContaining({ tenant: 'later', errorMessage: expect.stringMatching(/version 2 is not one this restore function knows/), reason: expect.stringMatching(/restore DLQ/) }));
    } finally {
      logged.mockRestore();
    }
    expect(events()).toEqual([]);
    expect(records).toEqual([expect.objectContaining({ operation: 'restore', outcome: 'failed', tenant: 'later', errorCode: 'INVALID_REQUEST' })]);
  });

  it('ends in one line, with its failure event, a chain whose checkpoint does not say what its last piece wrote last (damaged: the replay could not be checked)', async () => {
    makeTenant('unchecked');
    const before = describeTree(path.join(base, 'unchecked'));
    expect(await restoreHandler(deps())({ from: 's3://backups/acme/one.tar.zst', as: 'unchecked', force: true }, budgetContext('req-u1'))).toMatchObject({ suspended: true });
    const { lastWritten, ...unchecked } = (await loadRestoreCheckpoint(base, 'unchecked'))!;
    expect(lastWritten).toEqual(expect.any(String));
    writeFileSync(restoreCheckpointPathFor(base, 'unchecked'), readFileSync(restoreCheckpointPathFor(base, 'unchecked'), 'utf8').replace(`,"lastWritten":${JSON.stringify(lastWritten)}`, ''));
    expect(readFileSync(restoreCheckpointPathFor(base, 'unchecked'), 'utf8')).toContain(JSON.stringify(unchecked.staging));
    expect(await deliver(queue.shift()!, 'unchecked')).toEqual({ batchItemFailures: [] });
    expect(queue).toEqual([]);
    expect(events()).toEqual([
      { detailType: 'OpenClaw Restore Failed', detail: expect.objectContaining({ tenant: 'unchecked', error: { code: 'CONTINUATION_ENDED', message: expect.stringMatching(/^the restore stopped continuing \(its checkpoint is damaged \(saved .*\)\): abandoned, what it had staged removed, the slot holds what it held: restore again$/) } }) },
    ]);
    expect(describeTree(path.join(base, 'unchecked'))).toEqual(before);
    await recoverTenant({ tenantsDir: base, tenant: 'unchecked' });
    expect(hidden().filter((name) => name.includes('-unchecked'))).toEqual([]);
  });

  it('a last piece that committed but was killed before it published: the next recovery of the tenant (here a backup) publishes the restore\'s success event, once', async () => {
    expect(await restoreHandler(deps())({ from: 's3://backups/acme/one.tar.zst', as: 'told' }, budgetContext('req-k1'))).toMatchObject({ suspended: true });
    const midChain = (await loadRestoreCheckpoint(base, 'told'))!;
    await drainQueue();
    // As such a piece leaves it: the commit done (journal gone), the checkpoint marked committing.
    await saveRestoreCheckpoint(base, { ...midChain, writing: true, committing: { archiveTenant: 'acme', files: 91, bytes: 68610, archiveBytes: 1708, verified: true, replaced: false } });
    eventBridge.resetHistory();
    expect(await backupHandler({ ...deps(), operations: functionBackupOperations(config) })({ tenant: 'told', to: 's3://backups/told/after.tar.zst' }, budgetContext('req-k2', 900_000))).toMatchObject({ tenant: 'told' });
    expect(events()).toEqual([
      { detailType: 'OpenClaw Restore Succeeded', detail: expect.objectContaining({ tenant: 'told', archiveTenant: 'acme', chain: midChain.chain, bytes: 68610, archiveBytes: 1708, verified: true, replaced: false }) },
      { detailType: 'OpenClaw Backup Succeeded', detail: expect.objectContaining({ tenant: 'told' }) },
    ]);
    expect(hidden().filter((name) => name.includes('-told'))).toEqual([]);
  });

  // Closing note of stop 46, "Left": killed between its PutEvents and the checkpoint's removal, a last piece's success is said
  // again by the next recovery, and a consumer could not tell the two events apart from two restores.
  it('a success said twice (the last piece killed after its event, before it removed the checkpoint) carries the chain as operationId both times', async () => {
    const answer = await restoreHandler(deps())({ from: 's3://backups/acme/one.tar.zst', as: 'twice' }, budgetContext('req-t1'));
    const chain = (answer as { chain: string }).chain;
    const midChain = (await loadRestoreCheckpoint(base, 'twice'))!;
    expect(midChain.chain).toBe(chain);
    await drainQueue();
    const [said] = events();
    expect(said).toEqual({ detailType: 'OpenClaw Restore Succeeded', detail: expect.objectContaining({ tenant: 'twice', chain, operationId: chain, requestId: expect.stringMatching(/^req-m-/) }) });
    // As such a piece leaves it: the tree committed, the checkpoint still there, marked committing.
    await saveRestoreCheckpoint(base, { ...midChain, writing: true, committing: { archiveTenant: 'acme', files: 91, bytes: 68610, archiveBytes: 1708, verified: true, replaced: false } });
    eventBridge.resetHistory();
    await backupHandler({ ...deps(), operations: functionBackupOperations(config) })({ tenant: 'twice', to: 's3://backups/twice/after.tar.zst' }, budgetContext('req-t2', 900_000));
    const [again, backup] = events();
    expect(again).toEqual({ detailType: 'OpenClaw Restore Succeeded', detail: expect.objectContaining({ tenant: 'twice', chain, operationId: chain, requestId: 'req-t2' }) });
    // An operation in one invocation: its request ID (the backup's own, not the restore's).
    expect(backup).toEqual({ detailType: 'OpenClaw Backup Succeeded', detail: expect.objectContaining({ tenant: 'twice', operationId: 'req-t2', requestId: 'req-t2' }) });
    expect(backup!.detail).not.toHaveProperty('chain');
    expect(hidden().filter((name) => name.includes('-twice'))).toEqual([]);
  });

  it('still refuses up front an archive of more bytes than a chain restores (every piece replays what earlier pieces wrote before it writes)', async () => {
    // Replayed no faster than written: a second piece would replay for its whole time, so the chain is one piece.
    const slow = { ...deps(), config: { ...config, restoreMBps: 0.000_01, restoreReplayMBps: 0.000_01 } };
    const answer = await restoreHandler(slow)({ from: 's3://backups/acme/one.tar.zst', as: 'too-big' }, budgetContext('req-big'));
    expect(answer).toMatchObject({
      ok: false,
      error: {
        code: 'ARCHIVE_LIMIT',
        message: expect.stringMatching(/is \d+(?:\.\d)? KiB, more than the \d+ B the restore function can restore in 1 piece of \d+ s at 0\.00001 MB\/s written \(OPENCLAW_RESTORE_MBPS\) and 0\.00001 MB\/s replayed \(OPENCLAW_RESTORE_REPLAY_MBPS\), each replaying/),
      },
    });
    expect(queue).toEqual([]);
    expect(hidden()).toEqual([]);
  });

  // The chain was judged by its bytes alone: an archive of millions of tiny files passed and
  // staged ~40,000 entries a piece for days, the tenant busy all along.
  it('refuses up front an archive whose footer counts more entries than a chain stages within the abandon time, naming both rates; at a rate that stages them, it restores', async () => {
    // A 900 s invocation and an abandon time of 1,800 s: 2 pieces of ~895 s; at 0.03 a second they stage ~53 of its 99 entries.
    const slow = { ...deps(), config: { ...config, abandonAfterMs: 1_800_000, restoreEntriesPerSecond: 0.03 } };
    const answer = await restoreHandler(slow)({ from: 's3://backups/acme/one.tar.zst', as: 'too-many' }, budgetContext('req-many', 900_000));
    expect(answer).toMatchObject({
      ok: false,
      error: {
        code: 'ARCHIVE_LIMIT',
        message: expect.stringMatching(
          /^s3:\/\/backups\/acme\/one\.tar\.zst holds 99 entries to restore \(its footer says\), more than the 5\d the restore function can restore in pieces with its [\d.]+ KiB in the 2 pieces of 89\d s that fit in 0\.5 h \(OPENCLAW_ABANDON_AFTER_MS: the tenant is busy while a chain runs\) at 0\.03 entries a second staged \(OPENCLAW_RESTORE_ENTRIES_PER_SECOND\) and 40 MB\/s written \(OPENCLAW_RESTORE_MBPS\), each replaying .*: restore it with the CLI in local mode on a host that mounts the tenant volume$/,
        ),
      },
    });
    expect(queue).toEqual([]);
    expect(hidden()).toEqual([]);
    expect(existsSync(path.join(base, 'too-many'))).toBe(false);
    expect(events()).toEqual([{ detailType: 'OpenClaw Restore Failed', detail: expect.objectContaining({ tenant: 'too-many', error: expect.objectContaining({ code: 'ARCHIVE_LIMIT' }) }) }]);
    // At 0.1 a second the two pieces stage ~179: taken on (and, with all that time, restored in one).
    const enough = { ...deps(), config: { ...config, abandonAfterMs: 1_800_000, restoreEntriesPerSecond: 0.1 } };
    expect(await restoreHandler(enough)({ from: 's3://backups/acme/one.tar.zst', as: 'just-enough' }, budgetContext('req-enough', 900_000))).toMatchObject({ tenant: 'just-enough', verified: true });
    expect(describeTree(path.join(base, 'just-enough'))).toEqual(describeTree(path.join(base, 'acme')));
  });

  // An encrypted archive's footer is inside its age stream: the first piece judged it by its bytes
  // alone, and a chain of tiny files ran for days (or was ended late by its pace, chainTooSlow).
  it('refuses up front an encrypted archive whose footer (read with the identity from the last age chunk) counts more entries than a chain stages; at a rate that stages them, it restores', async () => {
    const identity = generateIdentity();
    const backedUp = await backupHandler({ config, logger, publish: async () => undefined })(
      { tenant: 'acme', to: 's3://backups/acme/one.tar.zst.age', encryptTo: [identity.recipient.text] },
      budgetContext('req-b-age', 900_000),
    );
    expect(backedUp).toMatchObject({ tenant: 'acme' });
    const withIdentity = (restoreEntriesPerSecond: number) => {
      const identityConfig = { ...config, abandonAfterMs: 1_800_000, restoreEntriesPerSecond };
      const identitySecrets = async () => [identity];
      return { ...deps(), config: identityConfig, identitySecrets, operations: functionRestoreOperations(identityConfig, identitySecrets) };
    };
    const from = 's3://backups/acme/one.tar.zst.age';
    const answer = await restoreHandler(withIdentity(0.03))({ from, as: 'too-many-age', identitySecret: 'openclaw-backup/key' }, budgetContext('req-many-age', 900_000));
    expect(answer).toMatchObject({
      ok: false,
      error: { code: 'ARCHIVE_LIMIT', message: expect.stringMatching(/^s3:\/\/backups\/acme\/one\.tar\.zst\.age holds 99 entries to restore \(its footer says\), more than the 5\d the restore function can restore in pieces/) },
    });
    expect(queue).toEqual([]);
    expect(hidden()).toEqual([]);
    expect(existsSync(path.join(base, 'too-many-age'))).toBe(false);
    const enough = await restoreHandler(withIdentity(0.1))({ from, as: 'enough-age', identitySecret: 'openclaw-backup/key' }, budgetContext('req-enough-age', 900_000));
    expect(enough).toMatchObject({ tenant: 'enough-age', verified: true });
    expect(describeTree(path.join(base, 'enough-age'))).toEqual(describeTree(path.join(base, 'acme')));
    // In pieces, the chain's checkpoint carries the footer's count: later pieces judge its pace by the entries written too (chainTooSlow).
    const identitySecrets = async () => [identity];
    const inPieces = () => ({ ...deps(), identitySecrets, operations: functionRestoreOperations(config, identitySecrets) });
    expect(await restoreHandler(inPieces())({ from, as: 'chain-age', identitySecret: 'openclaw-backup/key' }, budgetContext('req-chain-age'))).toMatchObject({ suspended: true });
    expect((await loadRestoreCheckpoint(base, 'chain-age'))!.storedRead).toMatchObject({ entries: 99 });
    for (let message = queue.shift(), n = 0; message !== undefined; message = queue.shift(), n++) {
      const answer = await restoreQueueHandler(inPieces())({ Records: [{ messageId: `age-${n}`, body: encodeRestoreWorkMessage(message), eventSource: 'aws:sqs' }] }, budgetContext(`req-age-${n}`));
      expect(answer).toEqual({ batchItemFailures: [] });
      if (n > 200) throw new Error('the chain does not end');
    }
    expect(describeTree(path.join(base, 'chain-age'))).toEqual(describeTree(path.join(base, 'acme')));
  });

  it('a later piece whose checkpoint has no entry count (its first piece ran on the previous version) reads the encrypted footer\'s with the identity and is judged by it: ended in one line naming the entries', async () => {
    const identity = generateIdentity();
    const from = 's3://backups/acme/old-chain.tar.zst.age';
    expect(await backupHandler({ config, logger, publish: async () => undefined })({ tenant: 'acme', to: from, encryptTo: [identity.recipient.text] }, budgetContext('req-b-old', 900_000))).toMatchObject({ tenant: 'acme' });
    const identitySecrets = async () => [identity];
    const inPieces = (pieceConfig: typeof config) => ({ ...deps(), config: pieceConfig, identitySecrets, operations: functionRestoreOperations(pieceConfig, identitySecrets) });
    expect(await restoreHandler(inPieces(config))({ from, as: 'old-chain', identitySecret: 'openclaw-backup/key' }, budgetContext('req-old-chain'))).toMatchObject({ suspended: true });
    const saved = (await loadRestoreCheckpoint(base, 'old-chain'))!;
    expect(saved.written).toBeGreaterThan(0);
    expect(saved.written * 2).toBeLessThan(99);
    // The previous version's checkpoint: no entry count, almost none of the bytes read.
    const { entries: _, ...old } = saved.storedRead!;
    await saveRestoreCheckpoint(base, { ...saved, storedRead: { ...old, bytes: 1 } });
    // Pieces of ~5 s in 10 s: 2 allowed; the entries written are under half of the footer's 99.
    const message = queue.shift()!;
    const answer = await restoreQueueHandler(inPieces({ ...config, abandonAfterMs: 10_000 }))({ Records: [{ messageId: 'old-1', body: encodeRestoreWorkMessage(message), eventSource: 'aws:sqs' }] }, budgetContext('req-old-1'));
    expect(answer).toEqual({ batchItemFailures: [] });
    expect(queue).toEqual([]);
    expect(events()).toEqual([
      {
        detailType: 'OpenClaw Restore Failed',
        detail: expect.objectContaining({
          tenant: 'old-chain',
          error: expect.objectContaining({ code: 'ARCHIVE_LIMIT', message: expect.stringMatching(/^s3:\/\/backups\/acme\/old-chain\.tar\.zst\.age cannot be restored in pieces in time: 1 piece got [\d.]+% through its [\d.]+ KiB and 99 entries \(the further of the two\) .*the chain ends here/) }),
        }),
      },
    ]);
    expect(await loadRestoreCheckpoint(base, 'old-chain')).toBeUndefined();
    expect(hidden().filter((name) => name.includes('old-chain'))).toEqual([]);
    expect(existsSync(path.join(base, 'old-chain'))).toBe(false);
  });

  it("a footer that counts fewer entries than the pieces wrote (entries: 1 in a hostile archive) does not judge the chain: a later piece ends it by its bytes, as one with no count", async () => {
    const real = await s3.send(new GetObjectCommand({ Bucket: 'backups', Key: 'acme/one.tar.zst' }));
    const realPath = path.join(dir.path, 'one.tar.zst');
    writeFileSync(realPath, Buffer.from(await real.Body!.transformToByteArray()));
    const lyingPath = path.join(dir.path, 'lying.tar.zst');
    writeWithFooterEntries(realPath, lyingPath, '1');
    await s3.send(new PutObjectCommand({ Bucket: 'backups', Key: 'acme/lying.tar.zst', Body: readFileSync(lyingPath) }));
    const from = 's3://backups/acme/lying.tar.zst';
    // Its one entry is under any limit: taken on, in pieces.
    expect(await restoreHandler(deps())({ from, as: 'liar' }, budgetContext('req-liar'))).toMatchObject({ suspended: true });
    const saved = (await loadRestoreCheckpoint(base, 'liar'))!;
    expect(saved.storedRead).toMatchObject({ entries: 1 });
    expect(saved.written).toBeGreaterThan(1);
    // Almost none of its bytes read (a large archive of tiny files): 2 pieces fit in 10 s.
    await saveRestoreCheckpoint(base, { ...saved, storedRead: { ...saved.storedRead!, bytes: 1 } });
    const message = queue.shift()!;
    const answer = await restoreQueueHandler({ ...deps(), config: { ...config, abandonAfterMs: 10_000 } })({ Records: [{ messageId: 'liar-1', body: encodeRestoreWorkMessage(message), eventSource: 'aws:sqs' }] }, budgetContext('req-liar-1'));
    expect(answer).toEqual({ batchItemFailures: [] });
    expect(queue).toEqual([]);
    expect(events()).toEqual([
      {
        detailType: 'OpenClaw Restore Failed',
        detail: expect.objectContaining({
          tenant: 'liar',
          error: expect.objectContaining({ code: 'ARCHIVE_LIMIT', message: expect.stringMatching(/^s3:\/\/backups\/acme\/lying\.tar\.zst cannot be restored in pieces in time: 1 piece read [\d.]+% of its [\d.]+ KiB \(each replays .*the chain ends here/) }),
        }),
      },
    ]);
    expect(await loadRestoreCheckpoint(base, 'liar')).toBeUndefined();
    expect(existsSync(path.join(base, 'liar'))).toBe(false);
  });

  it('a later piece stopped by its deadline while it reads the footer\'s count (a GET the store never answers) hands its message back, its checkpoint kept, no event: delivered again, the chain ends restored (before: ended, "replays the 17 writes …, which took all its time")', async () => {
    const first = await restoreHandler(deps())({ from: 's3://backups/acme/one.tar.zst', as: 'footer-held' }, budgetContext('req-footer-held'));
    expect(first).toMatchObject({ suspended: true });
    // The previous version's checkpoint: no entry count, so this piece reads the footer's first.
    const saved = (await loadRestoreCheckpoint(base, 'footer-held'))!;
    const { entries: _, ...old } = saved.storedRead!;
    await saveRestoreCheckpoint(base, { ...saved, storedRead: old });
    const message = queue.shift()!;
    const proxy = await startTailHoldingProxy(server.endpoint);
    stubRoleReachingS3At(proxy.endpoint);
    try {
      const answer = await restoreQueueHandler(deps())({ Records: [{ messageId: 'held-1', body: encodeRestoreWorkMessage(message), eventSource: 'aws:sqs' }] }, budgetContext('req-held-1'));
      expect(proxy.held()).toBe(1);
      expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: 'held-1' }] });
    } finally {
      stubRoleReachingS3At(server.endpoint);
      await proxy.stop();
    }
    expect(events()).toEqual([]);
    expect(await loadRestoreCheckpoint(base, 'footer-held')).toMatchObject({ chain: saved.chain, written: saved.written });
    // Its message delivered again: the footer read, the chain goes on to the end.
    queue.push(message);
    await drainQueue();
    expect(describeTree(path.join(base, 'footer-held'))).toEqual(describeTree(path.join(base, 'acme')));
    expect(events()).toEqual([{ detailType: 'OpenClaw Restore Succeeded', detail: expect.objectContaining({ tenant: 'footer-held', operationId: saved.chain }) }]);
    expect(hidden().filter((name) => name.includes('footer-held'))).toEqual([]);
  });

  it('a later piece stopped by its deadline while it waits for the archive\'s first bytes (an opening GET the store never answers) hands its message back, its checkpoint kept, no event: delivered again, the chain ends restored (before: ended, "replays the … writes …, which took all its time")', async () => {
    const first = await restoreHandler(deps())({ from: 's3://backups/acme/one.tar.zst', as: 'opening-held' }, budgetContext('req-opening-held'));
    expect(first).toMatchObject({ suspended: true });
    const saved = (await loadRestoreCheckpoint(base, 'opening-held'))!;
    expect(saved.storedRead?.entries).toBeDefined();
    const message = queue.shift()!;
    const proxy = await startOpeningHoldingProxy(server.endpoint);
    stubRoleReachingS3At(proxy.endpoint);
    try {
      const answer = await restoreQueueHandler(deps())({ Records: [{ messageId: 'opening-held-1', body: encodeRestoreWorkMessage(message), eventSource: 'aws:sqs' }] }, budgetContext('req-opening-held-1'));
      expect(proxy.held()).toBeGreaterThanOrEqual(1);
      expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: 'opening-held-1' }] });
    } finally {
      stubRoleReachingS3At(server.endpoint);
      await proxy.stop();
    }
    expect(events()).toEqual([]);
    expect(await loadRestoreCheckpoint(base, 'opening-held')).toMatchObject({ chain: saved.chain, written: saved.written, pieces: saved.pieces });
    queue.push(message);
    await drainQueue();
    expect(describeTree(path.join(base, 'opening-held'))).toEqual(describeTree(path.join(base, 'acme')));
    expect(events()).toEqual([{ detailType: 'OpenClaw Restore Succeeded', detail: expect.objectContaining({ tenant: 'opening-held', operationId: saved.chain }) }]);
    expect(hidden().filter((name) => name.includes('opening-held'))).toEqual([]);
  });

  /** A held piece's run through the queue handler behind `proxy`: its answer and the message its failure logged. */
  async function heldPiece(message: RestoreWorkMessage, messageId: string, proxy: { endpoint: string; held: () => number; stop: () => Promise<void> }) {
    const logged: string[] = [];
    const onLog = (...args: unknown[]) => {
      const errorMessage = (args[1] as { errorMessage?: unknown } | undefined)?.errorMessage;
      if (typeof errorMessage === 'string') logged.push(errorMessage);
    };
    const errors = vi.spyOn(logger, 'error').mockImplementation(onLog);
    const warnings = vi.spyOn(logger, 'warn').mockImplementation(onLog);
    stubRoleReachingS3At(proxy.endpoint);
    try {
      const answer = await restoreQueueHandler(deps())({ Records: [{ messageId, body: encodeRestoreWorkMessage(message), eventSource: 'aws:sqs' }] }, budgetContext(`req-${messageId}`));
      return { answer, held: proxy.held(), logged };
    } finally {
      errors.mockRestore();
      warnings.mockRestore();
      stubRoleReachingS3At(server.endpoint);
      await proxy.stop();
    }
  }

  it('a later piece whose opening GET is answered (status, headers) but whose body never sends a byte hands its message back, saying it waited for the first bytes: delivered again, the chain ends restored (before: ended, "replays the … writes …, which took all its time", a Failed event)', async () => {
    const first = await restoreHandler(deps())({ from: 's3://backups/acme/one.tar.zst', as: 'body-held' }, budgetContext('req-body-held'));
    expect(first).toMatchObject({ suspended: true });
    const saved = (await loadRestoreCheckpoint(base, 'body-held'))!;
    expect(saved.storedRead?.entries).toBeDefined();
    const message = queue.shift()!;
    const { answer, held, logged } = await heldPiece(message, 'body-held-1', await startBodyHoldingProxy(server.endpoint));
    expect(held).toBeGreaterThanOrEqual(1);
    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: 'body-held-1' }] });
    expect(logged).toContainEqual(
      expect.stringMatching(/^piece \d+ of the continuing restore of "body-held" was stopped by its deadline while it waited for the archive's first bytes \(the store answered its read but sent none of the body\): it wrote nothing, the chain goes on from its checkpoint when its message comes again$/),
    );
    expect(events()).toEqual([]);
    expect(await loadRestoreCheckpoint(base, 'body-held')).toMatchObject({ chain: saved.chain, written: saved.written, pieces: saved.pieces });
    queue.push(message);
    await drainQueue();
    expect(describeTree(path.join(base, 'body-held'))).toEqual(describeTree(path.join(base, 'acme')));
    expect(events()).toEqual([{ detailType: 'OpenClaw Restore Succeeded', detail: expect.objectContaining({ tenant: 'body-held', operationId: saved.chain }) }]);
    expect(hidden().filter((name) => name.includes('body-held'))).toEqual([]);
  });

  it("a later piece with no entry count in its checkpoint whose opening GET the store never answers names that read, not the footer's (before: \"while it read the archive's footer\")", async () => {
    const first = await restoreHandler(deps())({ from: 's3://backups/acme/one.tar.zst', as: 'old-opening-held' }, budgetContext('req-old-opening-held'));
    expect(first).toMatchObject({ suspended: true });
    const saved = (await loadRestoreCheckpoint(base, 'old-opening-held'))!;
    const { entries: _, ...old } = saved.storedRead!;
    await saveRestoreCheckpoint(base, { ...saved, storedRead: old });
    const message = queue.shift()!;
    const { answer, held, logged } = await heldPiece(message, 'old-opening-held-1', await startOpeningHoldingProxy(server.endpoint));
    expect(held).toBeGreaterThanOrEqual(1);
    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: 'old-opening-held-1' }] });
    expect(logged).toContainEqual(
      expect.stringMatching(/^piece \d+ of the continuing restore of "old-opening-held" was stopped by its deadline while it waited for the archive's first bytes \(the store did not answer its opening read\): it wrote nothing, the chain goes on from its checkpoint when its message comes again$/),
    );
    expect(events()).toEqual([]);
    queue.push(message);
    await drainQueue();
    expect(describeTree(path.join(base, 'old-opening-held'))).toEqual(describeTree(path.join(base, 'acme')));
    expect(events()).toEqual([{ detailType: 'OpenClaw Restore Succeeded', detail: expect.objectContaining({ tenant: 'old-opening-held', operationId: saved.chain }) }]);
  });

  it('a later piece is not refused for the bytes its own time left would read: the first piece judged the archive with a whole invocation, and one late piece ended a running chain as a refusal (a WARN, "restore it with the CLI")', async () => {
    const first = await restoreHandler(deps())({ from: 's3://backups/acme/one.tar.zst', as: 'late' }, budgetContext('req-late'));
    expect(first).toMatchObject({ suspended: true });
    // This piece's time left reads almost nothing at the rate the deployment counts on.
    const slow = { ...deps(), config: { ...config, restoreMBps: 0.000_01 } };
    const message = queue.shift()!;
    expect(await restoreQueueHandler(slow)({ Records: [{ messageId: 'late-1', body: encodeRestoreWorkMessage(message), eventSource: 'aws:sqs' }] }, budgetContext('req-late-1'))).toEqual({ batchItemFailures: [] });
    expect(events()).toEqual([]);
    await drainQueue();
    expect(describeTree(path.join(base, 'late'))).toEqual(describeTree(path.join(base, 'acme')));
    expect(events()).toEqual([{ detailType: 'OpenClaw Restore Succeeded', detail: expect.objectContaining({ tenant: 'late' }) }]);
    expect(hidden().filter((name) => name.includes('-late'))).toEqual([]);
  });

  it('refuses to go on when the object was written again between pieces: failure event, staging gone, the old tenant whole', async () => {
    makeTenant('victim');
    const before = describeTree(path.join(base, 'victim'));
    await backupHandler({ config, logger, publish: async () => undefined })({ tenant: 'acme', to: 's3://backups/acme/two.tar.zst' }, budgetContext('req-b3', 900_000));
    const answer = await restoreHandler(deps())({ from: 's3://backups/acme/two.tar.zst', as: 'victim', force: true }, budgetContext('req-r5'));
    expect(answer).toMatchObject({ suspended: true });
    await s3.send(new PutObjectCommand({ Bucket: 'backups', Key: 'acme/two.tar.zst', Body: 'another object now' }));
    expect(await deliver(queue.shift()!, 'changed')).toEqual({ batchItemFailures: [] });
    expect(queue).toEqual([]);
    expect(events()).toEqual([{ detailType: 'OpenClaw Restore Failed', detail: expect.objectContaining({ tenant: 'victim', error: expect.objectContaining({ code: 'CHANGED' }) }) }]);
    expect(describeTree(path.join(base, 'victim'))).toEqual(before);
    expect(hidden()).toEqual([]);
  });
});
