// The functions' bundles, each invocation a Node 24 runtime process (a sandbox), killed while a
// piece of a chain replaces its chain's file (crash points `continuation:temp-written`: a
// backup chain's state written whole beside its name, the rename ahead;
// `restore-checkpoint:temp-written`: a restore chain's checkpoint, the same), as a timeout's
// reset or the OOM killer does. Every piece is delivered with a kill at its first such write,
// then (its message comes again, as SQS redelivers it) at its second, and so on until a
// delivery passes them all: a backup piece saves once (its state to hand over, or the last its
// commit's mark); a restore piece up to three times (its mark before its first write, its
// checkpoint to hand over, the mark of its hand-over cleared; the last its commit's mark); a
// first restore piece killed once it had queued its next leaves its checkpoint marked as
// handing over. The chains go on and complete: the backup's archive verifies with the CLI and
// restores the tenant; the restore's tree is the tenant's; no temporary, state or staging is
// left in the base dir, and no other tenant appears. s3rver stands in for S3, two TLS
// stand-ins for the work and restore queues.

import { mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createSampleTenant } from '../scripts/sample-tenant.js';
import { DEFAULT_ABORT_MARGIN_MS, DEFAULT_CONTINUE_MARGIN_MS } from '../shared/control-plane/function-config.js';
import { backupFunctionEnvironment, bundleFunction, invokeInSandbox, node24, startEventBridgeStandIn, startSqsStandIn, type EventBridgeStandIn, type PublishedEvent, type SandboxInvocation, type SqsStandIn } from './helpers/function-bundle.js';
import { S3RVER_ACCESS_KEY, startS3Server, type S3TestServer } from './helpers/s3-server.js';
import { describeTree, runCliIn, tempDir } from './helpers/tree.js';

const dir = tempDir('openclaw-bundle-crash-pieces-');
const base = path.join(dir.path, 'mnt-tenants');
const sandboxTmp = path.join(dir.path, 'sandbox-tmp');
let server: S3TestServer;
let workQueue: SqsStandIn;
let restoreQueue: SqsStandIn;
const bundles: Record<string, string> = {};
let eventBridge: EventBridgeStandIn;
/** The completion events the functions published, oldest first. */
const events: PublishedEvent[] = [];

/** A piece's time: the margins and 20 looks of 50 ms (the looking clock), a few entries. */
const PIECE_MS = DEFAULT_ABORT_MARGIN_MS + DEFAULT_CONTINUE_MARGIN_MS + 1_000;

function invoke(name: 'backup' | 'restore', event: unknown, requestId: string, crashAt?: string, s3Endpoint = server.endpoint): Promise<SandboxInvocation> {
  const env = backupFunctionEnvironment(base, server.endpoint, {
    TMPDIR: sandboxTmp,
    AWS_ENDPOINT_URL_S3: s3Endpoint,
    OPENCLAW_EVENT_BUS: 'openclaw-backup-events',
    AWS_ENDPOINT_URL_EVENTBRIDGE: eventBridge.endpoint,
    OPENCLAW_WORK_QUEUE_URL: workQueue.queueUrl,
    OPENCLAW_RESTORE_QUEUE_URL: restoreQueue.queueUrl,
    // The stand-in queues' certificates are self-signed.
    NODE_TLS_REJECT_UNAUTHORIZED: '0',
    ...(crashAt !== undefined && { OPENCLAW_TEST_CRASH_AT: crashAt }),
  });
  return invokeInSandbox(bundles[name]!, event, { requestId, remainingMs: PIECE_MS, lookMs: 50, env });
}

/** The base dir's hidden names (states, checkpoints, temporaries, staging, locks). */
const hidden = () => readdirSync(base).filter((name) => name.startsWith('.openclaw-')).sort();

/**
 * Delivers each message `queue` receives to `name`'s bundle, first with a kill at the 1st
 * reach of `point`, then again (SQS's redelivery) at the 2nd, … until a delivery is not
 * killed: its answer must hand nothing back. Returns how many deliveries were killed, per piece.
 */
async function drainKilling(name: 'backup' | 'restore', queue: SqsStandIn, point: string, seen: (killedAt: number) => void | Promise<void>): Promise<number[]> {
  const kills: number[] = [];
  for (let body = queue.sent.shift(); body !== undefined; body = queue.sent.shift()) {
    const piece = kills.length + 2;
    let nth = 1;
    for (; ; nth++) {
      const records = { Records: [{ messageId: `${name}-${piece}`, body, eventSource: 'aws:sqs', attributes: { ApproximateReceiveCount: String(nth) } }] };
      const delivered = await invoke(name, records, `req-${name}-${piece}-${nth}`, `${point}@${nth}`);
      if (delivered.signal === 'SIGKILL') {
        // Killed with the temporary written beside the name, not renamed over it.
        expect(hidden().some((file) => file.endsWith('.tmp')), `${name} piece ${piece} killed at ${point}@${nth} left its temporary`).toBe(true);
        await seen(nth);
        continue;
      }
      expect(delivered.answer, `${name} piece ${piece}, delivery ${nth}`).toEqual({ batchItemFailures: [] });
      break;
    }
    kills.push(nth - 1);
    if (kills.length > 60) throw new Error('the chain does not end');
  }
  return kills;
}

beforeAll(async () => {
  if (node24 === undefined) return;
  const acme = path.join(base, 'acme');
  createSampleTenant(acme, { sessions: 3, memoryRows: 20, mediaFiles: 1 });
  mkdirSync(sandboxTmp);
  server = await startS3Server({ bucket: 'backups' });
  workQueue = await startSqsStandIn(path.join(dir.path, 'certs-work'));
  restoreQueue = await startSqsStandIn(path.join(dir.path, 'certs-restore'));
  for (const name of ['backup', 'restore'] as const) bundles[name] = await bundleFunction(name, path.join(dir.path, 'asset', name));
  eventBridge = await startEventBridgeStandIn(events);
}, 120_000);

afterAll(async () => {
  await server?.dispose();
  await workQueue?.close();
  await restoreQueue?.close();
  await eventBridge?.close();
  dir.cleanup();
});

describe.skipIf(node24 === undefined)('chains of function pieces killed while a piece replaces its chain\'s file', () => {
  it('a backup chain whose every piece is killed once at `continuation:temp-written` goes on from the state it started from: one archive, which the CLI verifies', async () => {
    // The first piece killed at its one save: no state, nothing queued; Lambda's retry of the
    // invocation (the same request) starts the chain again, its recovery removing the temporary.
    const killed = await invoke('backup', { tenant: 'acme', to: 's3://backups/crash/acme.tar.zst' }, 'req-backup-1', 'continuation:temp-written');
    expect(killed.signal).toBe('SIGKILL');
    expect(workQueue.sent).toEqual([]);
    expect(hidden().filter((name) => name.startsWith('.openclaw-continuation-'))).toEqual([expect.stringMatching(/^\.openclaw-continuation-acme\.\w+\.tmp$/)]);
    const first = await invoke('backup', { tenant: 'acme', to: 's3://backups/crash/acme.tar.zst' }, 'req-backup-1');
    expect(first.answer).toMatchObject({ operation: 'backup', suspended: true, tenant: 'acme', pieces: 1 });
    const kills = await drainKilling('backup', workQueue, 'continuation:temp-written', () => undefined);
    // Every later piece (the last: its commit's mark) was killed once at its one save.
    expect(kills.length).toBeGreaterThanOrEqual(2);
    expect(kills.every((count) => count === 1)).toBe(true);
    expect(hidden()).toEqual([]);
    expect(readdirSync(base)).toEqual(['acme']);

    const verified = await runCliIn(
      { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir.path, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      ['--json', 'tenants', 'verify', '--from', 's3://backups/crash/acme.tar.zst', '--endpoint', server.endpoint, '--access-key', S3RVER_ACCESS_KEY, '--secret-key', 'x', '--region', 'us-east-1'],
    );
    expect(verified.stderr).toBe('');
    expect(verified.status).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ verified: true, tenant: 'acme' });
  }, 120_000);

  it('a restore chain whose every later piece is killed at each `restore-checkpoint:temp-written` in turn goes on: the tree restored is the tenant\'s, nothing left beside it', async () => {
    const acme = describeTree(path.join(base, 'acme'));
    const request = { from: 's3://backups/crash/acme.tar.zst', as: 'acme-copy' };
    // A first piece killed at its one save (its checkpoint to hand over): nothing queued; its
    // staging and temporary are an interrupted restore's, which the restore asked again removes.
    const unsaved = await invoke('restore', request, 'req-restore-1', 'restore-checkpoint:temp-written@1');
    expect(unsaved.signal).toBe('SIGKILL');
    expect(restoreQueue.sent).toEqual([]);
    expect(hidden()).toEqual([expect.stringMatching(/^\.openclaw-journal-acme-copy\.json$/), expect.stringMatching(/^\.openclaw-lock-acme-copy$/), expect.stringMatching(/^\.openclaw-restore-continuation-acme-copy\.\w+\.tmp$/), expect.stringMatching(/^\.openclaw-staging-acme-copy-/)]);
    // Killed once it had queued its next, its mark of handing over not yet cleared: as designed
    // (docs/scale.md), that first piece's restore failed; its queued piece ends the chain, and nothing is left of it.
    const handedOver = await invoke('restore', request, 'req-restore-2', 'restore-checkpoint:temp-written@2');
    expect(handedOver.signal).toBe('SIGKILL');
    expect(restoreQueue.sent).toHaveLength(1);
    expect(hidden().filter((name) => name.endsWith('.tmp'))).toHaveLength(1);
    expect(await drainKilling('restore', restoreQueue, 'restore-checkpoint:temp-written', () => undefined)).toEqual([0]);
    expect(hidden()).toEqual([]);
    expect(readdirSync(base)).toEqual(['acme']);

    const first = await invoke('restore', request, 'req-restore-3');
    expect(first.answer).toMatchObject({ operation: 'restore', suspended: true, tenant: 'acme-copy', pieces: 1 });
    const killedAt = new Set<number>();
    const kills = await drainKilling('restore', restoreQueue, 'restore-checkpoint:temp-written', (nth) => void killedAt.add(nth));
    // Killed at its mark before its first write, at its save to hand over, after it handed over (its message then only hands over again), and the last at its commit's mark.
    expect([...killedAt].sort()).toEqual([1, 2, 3]);
    expect(kills.filter((count) => count > 0).length).toBeGreaterThanOrEqual(2);
    expect(hidden()).toEqual([]);
    expect(readdirSync(base).sort()).toEqual(['acme', 'acme-copy']);
    expect(describeTree(path.join(base, 'acme-copy'))).toEqual(describeTree(path.join(base, 'acme'), { exclude: (p) => p === 'pty' }));
    expect(describeTree(path.join(base, 'acme'))).toEqual(acme);
  }, 180_000);

  // Its last piece stored the archive whole and was killed before it removed the chain's state;
  // a day later another invocation's sweep judged the chain while S3 did not answer: it said
  // the chain's failure ('OpenClaw Backup Failed', CONTINUATION_ENDED) and removed its state;
  // the last piece's message came again, found the archive whole under its run and said its
  // success: a failure, then a success, under the chain's one operation ID.
  it("a backup chain whose last piece was killed once it stored the archive, judged while S3 does not answer, says one outcome under its operation ID: its success", async () => {
    const to = 's3://backups/judged-late/acme.tar.zst';
    const first = await invoke('backup', { tenant: 'acme', to }, 'req-judged-1');
    expect(first.answer).toMatchObject({ operation: 'backup', suspended: true, tenant: 'acme' });
    const chain = (first.answer as { chain: string }).chain;
    const records = (body: string, nth: number) => ({ Records: [{ messageId: 'judged-last', body, eventSource: 'aws:sqs', attributes: { ApproximateReceiveCount: String(nth) } }] });
    let last: string | undefined;
    for (let body = workQueue.sent.shift(); body !== undefined && last === undefined; body = workQueue.sent.shift()) {
      const delivered = await invoke('backup', records(body, 1), 'req-judged-piece', 'backup:chain-committed');
      if (delivered.signal === 'SIGKILL') last = body;
      else expect(delivered.answer).toEqual({ batchItemFailures: [] });
    }
    expect(last).toBeDefined();
    const state = hidden().filter((name) => name.startsWith('.openclaw-continuation-acme'));
    expect(state).toHaveLength(1);
    const dayAgo = new Date(Date.now() - 25 * 60 * 60 * 1000);
    utimesSync(path.join(base, state[0]!), dayAgo, dayAgo);

    // Another tenant's backup, S3 not answering: its sweep finds the chain a day old.
    mkdirSync(path.join(base, 'other'), { recursive: true });
    writeFileSync(path.join(base, 'other', 'note.txt'), 'other');
    await invoke('backup', { tenant: 'other', to: 's3://backups/judged-late/other.tar.zst' }, 'req-judged-other', undefined, 'http://127.0.0.1:1');
    // The tenant's own next backup meanwhile is refused busy, saying why it is kept past its abandon time (not that time, gone by).
    const busy = await invoke('backup', { tenant: 'acme', to: 's3://backups/judged-late/acme-2.tar.zst' }, 'req-judged-busy', undefined, 'http://127.0.0.1:1');
    expect(busy.answer).toMatchObject({ ok: false, error: { code: 'TENANT_BUSY', message: expect.stringMatching(/Its last piece was committing its archive \(s3:\/\/backups\/judged-late\/acme\.tar\.zst\), and the store has not said whether it holds it whole: kept until it does .* the gateway's first backup invocation after \S+ ends it in any case \(failure event\)$/) } });
    // The last piece's message again, S3 answering.
    expect((await invoke('backup', records(last!, 2), 'req-judged-again')).answer).toEqual({ batchItemFailures: [] });

    const chainEvents = events.filter((event) => event.Detail.operationId === chain).map((event) => event.DetailType);
    expect(chainEvents.length).toBeGreaterThan(0);
    expect(new Set(chainEvents)).toEqual(new Set(['OpenClaw Backup Succeeded']));
    expect(hidden().filter((name) => name.startsWith('.openclaw-continuation-'))).toEqual([]);
  }, 120_000);
});
