// A backup larger than one invocation, through the real handlers: the backup function,
// invoked directly with a 5-second budget, stops between entries, saves its state on the
// (temporary) tenant volume and queues its next piece; the work queue handler runs the
// pieces, each with 5 seconds, until one completes the archive: one ordinary object in S3
// (s3rver) that GNU tar + zstd list and the restore function restores and verifies. The
// "queue" is an array the handler's `continueBackup` appends to.
//
// The budget runs down with the backup's progress rather than the machine's speed: every
// look at the time left costs the fake context 50 ms of virtual time, and only that (real
// time counted too made a loaded machine's first piece stop before its first file), and a
// piece looks once per entry, so a piece archives ~20 entries whatever the machine
// (the tenant: ~30 MiB in ~230 entries, so a dozen pieces; 300 MiB would only be slower).
//
// An encrypted backup continues too: one age file (the `age` CLI opens it; restore decrypts
// it with the identity from the function's secret), whose age stream's key stays in the
// state file (mode 0600), never in a message, a result, an event or a log line.
//
// Also: a piece killed after it sent parts (plain or encrypted; its message comes again, the older state on
// disk) does not spoil the archive; the last piece killed after it completed the upload
// (S3 then answers NoSuchUpload for it, played by a proxy, s3rver does not) ends, its message
// come again, as one success with nothing stored again, and killed before it sent the
// completion goes on as before; a first piece whose hand-over never left is taken up
// by the same backup asked again, and its failure says so in one line; a tenant that changes between pieces still restores and verifies, each file as the
// piece that read it saw it; a chain whose next piece never comes is abandoned by the next
// backup invocation (upload aborted, state removed, failure event); a live chain keeps
// other backups and restores of the tenant out; and a first piece whose state cannot be
// saved (its tenant volume full) aborts its multipart upload, since no chain can end it,
// while a last piece that cannot record its commit keeps the upload and comes again.

import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';

import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { AbortMultipartUploadCommand, GetObjectCommand, GetObjectTaggingCommand, HeadObjectCommand, PutObjectTaggingCommand, S3Client } from '@aws-sdk/client-s3';
import { Logger } from '@aws-lambda-powertools/logger';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

import { backupHandler } from '../functions/backup-handler.js';
import { restoreHandler } from '../functions/restore-handler.js';
import type { HandlerDeps } from '../functions/handler-deps.js';
import { workQueueHandler } from '../functions/queue-handler.js';
import { formatIdentity, generateIdentity, isAgeFile } from '../shared/age/index.js';
import { findArchiveFooterFrame } from '../shared/archive/manifest.js';
import { continuationPathFor, loadContinuation } from '../shared/backup/continuation.js';
import { lockPathFor } from '../shared/tenant/lock.js';
import { compareWalkOrder } from '../shared/backup/tenant-walk.js';
import { encodeWorkMessage, type WorkMessage } from '../shared/control-plane/work-queue.js';
import { budgetContext, continuationConfig, queueingDeps, stubRoleReachingS3At, publishedEvents } from './helpers/continuation.js';
import { lambdaContext } from './helpers/lambda-context.js';
import { S3RVER_ACCESS_KEY, startCompletedUploadProxy, startLookRefusingProxy, startRecordingProxy, startS3Server, startTagReadRefusingProxy, startWatchingProxy, isTagRead, type S3TestServer } from './helpers/s3-server.js';
import { describeTree, sh, tempDir } from './helpers/tree.js';

const dir = tempDir('openclaw-continuation-');
const base = path.join(dir.path, 'mnt-tenants');
const eventBridge = mockClient(EventBridgeClient);
const logger = new Logger({ serviceName: 'openclaw-backup-test' });
let server: S3TestServer;
let s3: S3Client;
const queue: WorkMessage[] = [];

const config = continuationConfig(base);

const deps = (): HandlerDeps => queueingDeps(config, logger, queue);

/** Runs queued pieces until the queue is empty; how many ran. */
async function drainQueue(): Promise<number> {
  const handle = workQueueHandler(deps());
  let pieces = 0;
  for (let message = queue.shift(); message !== undefined; message = queue.shift()) {
    pieces++;
    const answer = await handle({ Records: [{ messageId: `m-${pieces}`, body: encodeWorkMessage(message), eventSource: 'aws:sqs' }] }, budgetContext(`req-q${pieces}`));
    expect(answer).toEqual({ batchItemFailures: [] });
    if (pieces > 100) throw new Error('the chain does not end');
  }
  return pieces;
}

const events = () => publishedEvents(eventBridge);

async function download(key: string): Promise<string> {
  const answer = await s3.send(new GetObjectCommand({ Bucket: 'backups', Key: key }));
  const file = path.join(dir.path, key.replaceAll('/', '_'));
  writeFileSync(file, await answer.Body!.transformToByteArray());
  return file;
}

function makeTenant(name: string): string {
  const tenantDir = path.join(base, name);
  for (let d = 0; d < 10; d++) {
    for (let f = 0; f < 20; f++) {
      const file = path.join(tenantDir, `sessions-${d}`, `s-${String(f).padStart(2, '0')}.jsonl`);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, `{"turn":${f},"text":"${'conversation '.repeat(200 + f)}"}\n`);
    }
    // Incompressible media: S3 parts fill, tails are carried from piece to piece.
    writeFileSync(path.join(tenantDir, `sessions-${d}`, 'media.bin'), randomBytes(3 * 1024 * 1024));
  }
  mkdirSync(path.join(tenantDir, 'pty'));
  writeFileSync(path.join(tenantDir, 'pty', 'scrollback'), 'ephemeral');
  return tenantDir;
}

beforeAll(async () => {
  server = await startS3Server({ bucket: 'backups' });
  s3 = new S3Client({ endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: S3RVER_ACCESS_KEY, secretAccessKey: 'x' }, requestChecksumCalculation: 'WHEN_REQUIRED' });
  stubRoleReachingS3At(server.endpoint);
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
  for (const stream of [process.stdout, process.stderr]) vi.spyOn(stream, 'write').mockImplementation(() => true);
});
afterEach(() => vi.restoreAllMocks());

describe('a backup that continues across invocations', () => {
  it('writes one ordinary archive in many 5-second invocations, which restores and verifies', async () => {
    const tenantDir = makeTenant('big');
    const first = await backupHandler(deps())({ tenant: 'big', to: 's3://backups/big/one.tar.zst' }, budgetContext('req-1'));
    expect(first).toMatchObject({ operation: 'backup', suspended: true, tenant: 'big', pieces: 1 });
    expect(existsSync(continuationPathFor(base, 'big'))).toBe(true);
    expect(events()).toEqual([]);

    const pieces = 1 + (await drainQueue());
    expect(pieces).toBeGreaterThanOrEqual(5);
    expect(existsSync(continuationPathFor(base, 'big'))).toBe(false);
    const done = events();
    expect(done).toHaveLength(1);
    expect(done[0]).toMatchObject({ detailType: 'OpenClaw Backup Succeeded', detail: { tenant: 'big', location: 's3://backups/big/one.tar.zst', trigger: 'direct' } });

    const file = await download('big/one.tar.zst');
    const listing = sh(`zstd -dc '${file}' | tar -tf -`).toString().split('\n').filter((line) => line !== '');
    expect(listing).toContain('tenants/big/sessions-9/media.bin');
    expect(listing.filter((line) => line.endsWith('.jsonl'))).toHaveLength(200);
    expect(new Set(listing).size).toBe(listing.length);

    const restored = await restoreHandler(deps())({ from: 's3://backups/big/one.tar.zst', as: 'big-copy' }, budgetContext('req-r', 900_000));
    expect(restored).toMatchObject({ operation: 'restore', tenant: 'big-copy', verified: true });
    expect(describeTree(path.join(base, 'big-copy'))).toEqual(describeTree(tenantDir, { exclude: (relPath) => relPath === 'pty' }));
    const verified = await restoreHandler(deps())({ operation: 'verify', from: 's3://backups/big/one.tar.zst' }, budgetContext('req-v', 900_000));
    expect(verified).toMatchObject({ verified: true });
  });

  it('continues a backup with --sse and --storage-class: every piece\'s message carries them, and the object is stored so', async () => {
    makeTenant('classy');
    const storage = { sse: 'AES256', storageClass: 'ONEZONE_IA' };
    const first = await backupHandler(deps())({ tenant: 'classy', to: 's3://backups/classy/one.tar.zst', storage }, budgetContext('req-c1'));
    expect(first).toMatchObject({ operation: 'backup', suspended: true, tenant: 'classy' });
    expect(queue[0]).toMatchObject({ tenant: 'classy', storage });
    const handle = workQueueHandler(deps());
    for (let piece = 1, message = queue.shift(); message !== undefined; piece++, message = queue.shift()) {
      if (queue.length === 0 && message.continues !== undefined) expect(message.storage).toEqual(storage);
      const answer = await handle({ Records: [{ messageId: `c-${piece}`, body: encodeWorkMessage(message), eventSource: 'aws:sqs' }] }, budgetContext(`req-c${piece + 1}`));
      expect(answer).toEqual({ batchItemFailures: [] });
      if (piece > 100) throw new Error('the chain does not end');
    }
    expect(events()).toEqual([expect.objectContaining({ detailType: 'OpenClaw Backup Succeeded' })]);
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'backups', Key: 'classy/one.tar.zst' }));
    // s3rver keeps the storage class (not the encryption header: the recording proxy's test in s3-object-settings.test.ts shows it sent).
    expect(head.StorageClass).toBe('ONEZONE_IA');
    // Nor does it answer with the encryption: the chain's last piece tells the operator in its log.
    const logged = [process.stdout, process.stderr].flatMap((stream) => vi.mocked(stream.write).mock.calls.map((call) => String(call[0])));
    expect(logged.filter((line) => line.includes('did not confirm --sse AES256'))).toHaveLength(1);
  });

  it('a backup done in one invocation carries the unconfirmed --sse back in its notices (what the CLI prints in remote mode)', async () => {
    mkdirSync(path.join(base, 'small'), { recursive: true });
    writeFileSync(path.join(base, 'small', 'config.json'), '{}\n');
    const result = await backupHandler(deps())({ tenant: 'small', to: 's3://backups/small/one.tar.zst', storage: { sse: 'aws:kms' } }, budgetContext('req-s1', 900_000));
    expect(result).toMatchObject({ operation: 'backup', tenant: 'small', notices: [expect.stringMatching(/^WARNING: s3:\/\/backups\/small\/one\.tar\.zst is stored whole, but the store \S+ did not confirm --sse aws:kms \(its answer named no server-side encryption\)/)] });
  });

  it('continues an encrypted backup into one age file, which age -d opens and restore decrypts, its key only in the state file', async () => {
    const identity = generateIdentity();
    const keyFile = path.join(dir.path, 'secret-key.txt');
    writeFileSync(keyFile, `${formatIdentity(identity)}\n`, { mode: 0o600 });
    const tenantDir = makeTenant('secret');
    const to = 's3://backups/secret/one.tar.zst.age';
    const first = await backupHandler(deps())({ tenant: 'secret', to, encryptTo: [identity.recipient.text] }, budgetContext('req-1'));
    expect(first).toMatchObject({ operation: 'backup', suspended: true, tenant: 'secret', pieces: 1 });
    expect(queue).toEqual([expect.objectContaining({ tenant: 'secret', to, encryptTo: [identity.recipient.text], continues: expect.objectContaining({ trigger: 'direct' }) })]);
    const stateFile = continuationPathFor(base, 'secret');
    expect(statSync(stateFile).mode & 0o777).toBe(0o600);
    const { encryption } = (await loadContinuation(base, 'secret'))!;
    expect(encryption?.recipients).toEqual([identity.recipient.text]);
    const key = Buffer.from(encryption!.stream.payloadKey);
    const messages = [JSON.stringify(first), ...queue.map((message) => encodeWorkMessage(message))];

    let pieces = 1;
    for (let message = queue.shift(); message !== undefined; message = queue.shift()) {
      pieces++;
      const answer = await workQueueHandler(deps())({ Records: [{ messageId: `m-${pieces}`, body: encodeWorkMessage(message), eventSource: 'aws:sqs' }] }, budgetContext(`req-q${pieces}`));
      expect(answer).toEqual({ batchItemFailures: [] });
      messages.push(...queue.map((next) => encodeWorkMessage(next)));
      if (pieces > 100) throw new Error('the chain does not end');
    }
    expect(pieces).toBeGreaterThanOrEqual(5);
    expect(existsSync(stateFile)).toBe(false);
    const done = events();
    expect(done).toEqual([expect.objectContaining({ detailType: 'OpenClaw Backup Succeeded', detail: expect.objectContaining({ tenant: 'secret', location: to }) })]);

    // Where the key could leak: the messages, the answers, the events, the log lines.
    const logged = [process.stdout, process.stderr].flatMap((stream) => vi.mocked(stream.write).mock.calls.map((call) => String(call[0])));
    expect(logged.some((line) => line.includes('backup piece done'))).toBe(true);
    const seen = [...messages, ...done.map((event) => JSON.stringify(event)), ...logged].join('\n');
    for (const encoding of ['hex', 'base64', 'base64url'] as const) expect(seen).not.toContain(key.toString(encoding));

    const file = await download('secret/one.tar.zst.age');
    expect(isAgeFile(readFileSync(file))).toBe(true);
    // The size tag counts every piece's bytes: listing and prune take the object for whole.
    const tags = await s3.send(new GetObjectTaggingCommand({ Bucket: 'backups', Key: 'secret/one.tar.zst.age' }));
    expect(tags.TagSet).toContainEqual({ Key: 'openclaw-stored-bytes', Value: String(statSync(file).size) });
    const listing = sh(`age -d -i '${keyFile}' '${file}' | zstd -dc | tar -tf -`).toString().split('\n').filter((line) => line !== '');
    expect(listing).toContain('tenants/secret/sessions-9/media.bin');
    expect(listing.filter((line) => line.endsWith('.jsonl'))).toHaveLength(200);
    expect(new Set(listing).size).toBe(listing.length);

    const withIdentity = { ...deps(), identitySecrets: async (name: string) => (name === 'openclaw-backup/backup-key' ? [identity] : []) };
    const refused = await restoreHandler(deps())({ from: to, as: 'secret-copy' }, budgetContext('req-r0', 900_000));
    expect(refused).toMatchObject({ ok: false, error: { message: expect.stringMatching(/is encrypted with age/) } });
    const restored = await restoreHandler(withIdentity)({ from: to, as: 'secret-copy', identitySecret: 'openclaw-backup/backup-key' }, budgetContext('req-r', 900_000));
    expect(restored).toMatchObject({ operation: 'restore', tenant: 'secret-copy', verified: true });
    expect(describeTree(path.join(base, 'secret-copy'))).toEqual(describeTree(tenantDir, { exclude: (relPath) => relPath === 'pty' }));
  });

  it('completes the upload with If-None-Match, in whichever piece ends it, at an endpoint whose credentials may write but not look (HEAD and GET denied)', async () => {
    // s3rver ignores the header: what is asked for is recorded by the proxy.
    const tenant = 'write-only';
    makeTenant(tenant);
    const proxy = await startLookRefusingProxy(server.endpoint);
    vi.stubEnv('AWS_ENDPOINT_URL_S3', proxy.endpoint);
    try {
      await backupHandler(deps())({ tenant, to: `s3://backups/${tenant}/one.tar.zst` }, budgetContext('req-1', 8000));
      const handle = workQueueHandler(deps());
      let pieces = 1;
      for (let message = queue.shift(); message !== undefined; message = queue.shift()) {
        pieces++;
        expect(await handle({ Records: [{ messageId: `m-${pieces}`, body: encodeWorkMessage(message), eventSource: 'aws:sqs' }] }, budgetContext(`req-${pieces}`))).toEqual({ batchItemFailures: [] });
        if (pieces > 100) throw new Error('the chain does not end');
      }
      expect(pieces).toBeGreaterThan(1);
      expect(events()).toEqual([expect.objectContaining({ detailType: 'OpenClaw Backup Succeeded' })]);
      const completions = proxy.requests.filter((request) => request.method === 'POST' && request.url.includes('uploadId='));
      expect(completions).toHaveLength(1);
      expect(completions[0]!.headers['if-none-match']).toBe('*');
    } finally {
      vi.stubEnv('AWS_ENDPOINT_URL_S3', server.endpoint);
      await proxy.stop();
    }
  });

  it('needs no s3:GetObjectTagging, which its role lacks: a backup in pieces, its dry run and a backup meeting an archive at its key read no tags', async () => {
    const tenant = 'no-tag-reads';
    makeTenant(tenant);
    const proxy = await startTagReadRefusingProxy(server.endpoint);
    vi.stubEnv('AWS_ENDPOINT_URL_S3', proxy.endpoint);
    try {
      const to = `s3://backups/${tenant}/one.tar.zst`;
      expect(await backupHandler(deps())({ tenant, to, dryRun: true }, budgetContext('req-dry', 900_000))).toMatchObject({ operation: 'backup-plan', tenant });
      expect(await backupHandler(deps())({ tenant, to }, budgetContext('req-1', 8000))).toMatchObject({ suspended: true });
      expect(await drainQueue()).toBeGreaterThan(0);
      expect(events()).toEqual([expect.objectContaining({ detailType: 'OpenClaw Backup Succeeded' })]);
      expect(await backupHandler(deps())({ tenant, to }, budgetContext('req-again', 900_000))).toMatchObject({ ok: false, error: { code: 'DESTINATION_EXISTS' } });
      expect(proxy.requests.filter((request) => isTagRead(request.method, request.url))).toEqual([]);
      expect(proxy.requests.filter((request) => request.method === 'PUT' && request.url.includes('tagging')).length).toBeGreaterThan(0);
    } finally {
      vi.stubEnv('AWS_ENDPOINT_URL_S3', server.endpoint);
      await proxy.stop();
    }
  });

  it.each([['plain', false], ['encrypted', true]])('goes on from the last saved state when a piece was killed and its message comes again (%s)', async (kind, encrypted) => {
    const identity = generateIdentity();
    const tenant = `killed-${kind}`;
    const to = `s3://backups/${tenant}/one.tar.zst`;
    const tenantDir = makeTenant(tenant);
    await backupHandler(deps())({ tenant, to, ...(encrypted && { encryptTo: [identity.recipient.text] }) }, budgetContext('req-1', 8000));
    const stateFile = continuationPathFor(base, tenant);
    const saved = readFileSync(stateFile);
    const message = queue.shift()!;
    // The next piece runs (sending parts, saving a newer state, queueing its successor) and is
    // then "killed" before its rename: the disk holds the older state, and its message returns.
    const handle = workQueueHandler(deps());
    const record = { messageId: 'm-1', body: encodeWorkMessage(message), eventSource: 'aws:sqs' };
    expect(await handle({ Records: [record] }, budgetContext('req-2', 8000))).toEqual({ batchItemFailures: [] });
    writeFileSync(stateFile, saved);
    queue.length = 0;
    expect(await handle({ Records: [record] }, budgetContext('req-3'))).toEqual({ batchItemFailures: [] });
    await drainQueue();

    expect(existsSync(stateFile)).toBe(false);
    const withIdentity = { ...deps(), identitySecrets: async () => [identity] };
    const restored = await restoreHandler(withIdentity)({ from: to, as: `${tenant}-copy`, ...(encrypted && { identitySecret: 'openclaw-backup/backup-key' }) }, budgetContext('req-r', 900_000));
    expect(restored).toMatchObject({ verified: true });
    expect(describeTree(path.join(base, `${tenant}-copy`))).toEqual(describeTree(tenantDir, { exclude: (relPath) => relPath === 'pty' }));
  });

  it.each([['plain', false], ['encrypted', true]])(
    'finishes as a success, storing nothing again, when the piece that completed the upload was killed before it removed its state and its message comes again (%s, S3 answering NoSuchUpload for a completed upload)',
    async (kind, encrypted) => {
      // AWS knows a completed upload no more (NoSuchUpload); s3rver takes parts for it still.
      const tenant = `completed-${kind}`;
      const stateFile = continuationPathFor(base, tenant);
      // What the disk holds as the upload completes: a piece killed right then leaves it so.
      let atCompletion: Buffer | undefined;
      const proxy = await startCompletedUploadProxy(server.endpoint, { onCompleting: () => (atCompletion = readFileSync(stateFile)) });
      vi.stubEnv('AWS_ENDPOINT_URL_S3', proxy.endpoint);
      try {
        const identity = generateIdentity();
        const key = `${tenant}/one.tar.zst`;
        const to = `s3://backups/${key}`;
        const tenantDir = makeTenant(tenant);
        await backupHandler(deps())({ tenant, to, ...(encrypted && { encryptTo: [identity.recipient.text] }) }, budgetContext('req-1', 8000));
        // Run the pieces until one completes the archive; it is "killed" after the completion,
        // before it tagged the object and removed its state.
        const handle = workQueueHandler(deps());
        let last: { messageId: string; body: string; eventSource: string } | undefined;
        for (let message = queue.shift(), n = 2; message !== undefined; message = queue.shift(), n++) {
          const record = { messageId: `m-${n}`, body: encodeWorkMessage(message), eventSource: 'aws:sqs' };
          last = record;
          expect(await handle({ Records: [record] }, budgetContext(`req-${n}`))).toEqual({ batchItemFailures: [] });
          if (n > 100) throw new Error('the chain does not end');
        }
        expect(existsSync(stateFile)).toBe(false);
        const stored = await s3.send(new HeadObjectCommand({ Bucket: 'backups', Key: key }));
        const tagged = (await s3.send(new GetObjectTaggingCommand({ Bucket: 'backups', Key: key }))).TagSet;
        expect(tagged).toContainEqual({ Key: 'openclaw-stored-bytes', Value: String(stored.ContentLength) });
        writeFileSync(stateFile, atCompletion!, { mode: 0o600 });
        await s3.send(new PutObjectTaggingCommand({ Bucket: 'backups', Key: key, Tagging: { TagSet: [] } }));
        eventBridge.reset();
        eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e' }] });
        const requestsBefore = proxy.requests.length;

        expect(await handle({ Records: [last!] }, budgetContext('req-again'))).toEqual({ batchItemFailures: [] });
        expect(queue).toEqual([]);
        expect(existsSync(stateFile)).toBe(false);
        expect(events()).toEqual([expect.objectContaining({ detailType: 'OpenClaw Backup Succeeded', detail: expect.objectContaining({ tenant, location: to, manifestSha256: expect.any(String) }) })]);
        // Nothing stored again: no part, no completion, the same object; its tags written.
        const again = proxy.requests.slice(requestsBefore).filter((request) => request.url.includes('uploadId') || request.method === 'POST' || (request.method === 'PUT' && !request.url.includes('tagging')));
        expect(again).toEqual([]);
        const after = await s3.send(new HeadObjectCommand({ Bucket: 'backups', Key: key }));
        expect(after.ETag).toBe(stored.ETag);
        expect((await s3.send(new GetObjectTaggingCommand({ Bucket: 'backups', Key: key }))).TagSet).toEqual(tagged);

        const withIdentity = { ...deps(), identitySecrets: async () => [identity] };
        const restored = await restoreHandler(withIdentity)({ from: to, as: `${tenant}-copy`, ...(encrypted && { identitySecret: 'openclaw-backup/backup-key' }) }, budgetContext('req-r', 900_000));
        expect(restored).toMatchObject({ verified: true });
        expect(describeTree(path.join(base, `${tenant}-copy`))).toEqual(describeTree(tenantDir, { exclude: (relPath) => relPath === 'pty' }));
      } finally {
        vi.stubEnv('AWS_ENDPOINT_URL_S3', server.endpoint);
        await proxy.stop();
      }
    },
  );

  it('says the success again when the last piece\'s message comes again after its state was removed (a kill before the event): the chain\'s operation ID, the stored size', async () => {
    const tenant = 'last-again';
    const key = `${tenant}/one.tar.zst`;
    makeTenant(tenant);
    await backupHandler(deps())({ tenant, to: `s3://backups/${key}` }, budgetContext('req-1', 8000));
    const handle = workQueueHandler(deps());
    let last: WorkMessage | undefined;
    for (let message = queue.shift(), piece = 1; message !== undefined; message = queue.shift(), piece++) {
      last = message;
      expect(await handle({ Records: [{ messageId: `again-${piece}`, body: encodeWorkMessage(message), eventSource: 'aws:sqs' }] }, budgetContext(`req-again-${piece}`))).toEqual({ batchItemFailures: [] });
    }
    expect(existsSync(continuationPathFor(base, tenant))).toBe(false);
    const chain = last!.continues!.chain;
    expect(events().filter((event) => event.detail.tenant === tenant)).toEqual([expect.objectContaining({ detailType: 'OpenClaw Backup Succeeded', detail: expect.objectContaining({ operationId: chain }) })]);
    eventBridge.resetHistory();

    // Delivered again (its piece killed after it removed the state, before it published: the
    // crash point backup:stored), it finds its chain ended and the archive there its run's.
    expect(await handle({ Records: [{ messageId: 'again-last', body: encodeWorkMessage(last!), eventSource: 'aws:sqs', attributes: { ApproximateReceiveCount: '2' } }] }, budgetContext('req-again-redelivered'))).toEqual({ batchItemFailures: [] });
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'backups', Key: key }));
    expect(events()).toEqual([
      expect.objectContaining({ detailType: 'OpenClaw Backup Succeeded', detail: expect.objectContaining({ tenant, location: `s3://backups/${key}`, trigger: 'direct', chain, operationId: chain, archiveBytes: head.ContentLength }) }),
    ]);

    // A chain of another run ended, meeting this archive at the key: nothing said of it.
    eventBridge.resetHistory();
    const other: WorkMessage = { ...last!, run: { ...last!.run, id: 'another-run' } };
    expect(await handle({ Records: [{ messageId: 'other-run', body: encodeWorkMessage(other), eventSource: 'aws:sqs' }] }, budgetContext('req-other-run'))).toEqual({ batchItemFailures: [] });
    expect(events().filter((event) => event.detailType === 'OpenClaw Backup Succeeded')).toEqual([]);
  });

  it("says a queued backup's success under its chain's operation ID when its first message comes again after the chain completed (its first delivery's invocation killed after it handed over)", async () => {
    const tenant = 'first-again';
    const key = `${tenant}/one.tar.zst`;
    makeTenant(tenant);
    const first: WorkMessage = { version: 1, kind: 'backup', tenant, to: `s3://backups/${key}`, run: { id: 'run-first-again', time: new Date().toISOString(), template: 's3://backups/{tenant}/one.tar.zst' } };
    queue.push(first);
    expect(await drainQueue()).toBeGreaterThan(1);
    const succeeded = events().filter((event) => event.detail.tenant === tenant);
    expect(succeeded).toEqual([expect.objectContaining({ detailType: 'OpenClaw Backup Succeeded', detail: expect.objectContaining({ chain: expect.any(String) }) })]);
    const chain = succeeded[0]!.detail.chain as string;
    expect(succeeded[0]!.detail.operationId).toBe(chain);
    eventBridge.resetHistory();

    // SQS delivers the first message again: the archive there is its run's, said once more
    // under the operation ID every event of this backup had (the chain's), not another.
    const again = await workQueueHandler(deps())({ Records: [{ messageId: 'first-again-2', body: encodeWorkMessage(first), eventSource: 'aws:sqs', attributes: { ApproximateReceiveCount: '2' } }] }, budgetContext('req-first-again-2'));
    expect(again).toEqual({ batchItemFailures: [] });
    expect(events()).toEqual([expect.objectContaining({ detailType: 'OpenClaw Backup Succeeded', detail: expect.objectContaining({ tenant, location: `s3://backups/${key}`, runId: 'run-first-again', operationId: chain }) })]);
  });

  it('ends as a success, a day later, a chain whose last piece completed the archive and whose message never came again', async () => {
    const tenant = 'completed-lost';
    const key = `${tenant}/one.tar.zst`;
    const to = `s3://backups/${key}`;
    const stateFile = continuationPathFor(base, tenant);
    let atCompletion: Buffer | undefined;
    const proxy = await startCompletedUploadProxy(server.endpoint, { onCompleting: () => (atCompletion = readFileSync(stateFile)) });
    vi.stubEnv('AWS_ENDPOINT_URL_S3', proxy.endpoint);
    try {
      makeTenant(tenant);
      await backupHandler(deps())({ tenant, to }, budgetContext('req-1', 8000));
      await drainQueue();
      // The last piece said it: the chain's ID is the operation's, for a consumer to drop the one said again below.
      const said = events().filter((event) => event.detail.tenant === tenant);
      expect(said).toEqual([expect.objectContaining({ detailType: 'OpenClaw Backup Succeeded', detail: expect.objectContaining({ chain: expect.any(String) }) })]);
      const chain = said[0]!.detail.chain as string;
      expect(said[0]!.detail.operationId).toBe(chain);
      expect(atCompletion!.includes(chain)).toBe(true);
      const tagged = (await s3.send(new GetObjectTaggingCommand({ Bucket: 'backups', Key: key }))).TagSet;
      writeFileSync(stateFile, atCompletion!, { mode: 0o600 });
      await s3.send(new PutObjectTaggingCommand({ Bucket: 'backups', Key: key, Tagging: { TagSet: [] } }));
      const dayAgo = new Date(Date.now() - 25 * 60 * 60 * 1000);
      utimesSync(stateFile, dayAgo, dayAgo);
      eventBridge.reset();
      eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e' }] });

      // Any backup invocation ends it first: no abort, no failure, the archive tagged, one success event.
      mkdirSync(path.join(base, 'tiny'), { recursive: true });
      writeFileSync(path.join(base, 'tiny', 'config.json'), '{}\n');
      const other = await backupHandler(deps())({ tenant: 'tiny', to: 's3://backups/tiny/one.tar.zst' }, budgetContext('req-4', 900_000));
      expect(other).toMatchObject({ operation: 'backup', tenant: 'tiny' });
      expect(existsSync(stateFile)).toBe(false);
      expect(events().filter((event) => event.detail.tenant === tenant)).toEqual([
        expect.objectContaining({ detailType: 'OpenClaw Backup Succeeded', detail: expect.objectContaining({ location: to, manifestSha256: expect.any(String), chain, operationId: chain, requestId: 'req-4' }) }),
      ]);
      expect((await s3.send(new GetObjectTaggingCommand({ Bucket: 'backups', Key: key }))).TagSet).toEqual(tagged);
    } finally {
      vi.stubEnv('AWS_ENDPOINT_URL_S3', server.endpoint);
      await proxy.stop();
    }
  });

  it('goes on from the state it started from when the last piece was killed after it recorded that it commits, before the commit was sent', async () => {
    const tenant = 'uncommitted';
    const to = `s3://backups/${tenant}/one.tar.zst`;
    const stateFile = continuationPathFor(base, tenant);
    let atCompletion: Buffer | undefined;
    // The completion is refused unsent: the last piece fails (s3rver keeps the upload, refusing its abort), as if killed just before it.
    let refusing = true;
    const proxy = await startCompletedUploadProxy(server.endpoint, { onCompleting: () => (atCompletion ??= readFileSync(stateFile)), refuse: () => refusing });
    vi.stubEnv('AWS_ENDPOINT_URL_S3', proxy.endpoint);
    try {
      const tenantDir = makeTenant(tenant);
      await backupHandler(deps())({ tenant, to }, budgetContext('req-1', 8000));
      const handle = workQueueHandler(deps());
      let last: { messageId: string; body: string; eventSource: string } | undefined;
      for (let message = queue.shift(), n = 2; message !== undefined; message = queue.shift(), n++) {
        last = { messageId: `m-${n}`, body: encodeWorkMessage(message), eventSource: 'aws:sqs' };
        await handle({ Records: [last] }, budgetContext(`req-${n}`));
      }
      expect(atCompletion).toBeDefined();
      writeFileSync(stateFile, atCompletion!, { mode: 0o600 });
      expect((await loadContinuation(base, tenant))?.state.committing).toMatchObject({ bytes: expect.any(Number) });
      refusing = false;
      eventBridge.reset();
      eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e' }] });

      expect(await handle({ Records: [last!] }, budgetContext('req-again'))).toEqual({ batchItemFailures: [] });
      expect(queue).toEqual([]);
      expect(existsSync(stateFile)).toBe(false);
      expect(events()).toEqual([expect.objectContaining({ detailType: 'OpenClaw Backup Succeeded', detail: expect.objectContaining({ tenant, location: to }) })]);
      const restored = await restoreHandler(deps())({ from: to, as: `${tenant}-copy` }, budgetContext('req-r', 900_000));
      expect(restored).toMatchObject({ verified: true });
      expect(describeTree(path.join(base, `${tenant}-copy`))).toEqual(describeTree(tenantDir, { exclude: (relPath) => relPath === 'pty' }));
    } finally {
      vi.stubEnv('AWS_ENDPOINT_URL_S3', server.endpoint);
      await proxy.stop();
    }
  });

  it('goes on from the first piece\'s saved state when its hand-over never left (the queue refused it, or the piece was killed after the save) and the same backup comes again', async () => {
    const tenant = 'handover';
    const to = `s3://backups/${tenant}/one.tar.zst`;
    const tenantDir = makeTenant(tenant);
    const refusing = { ...deps(), continueBackup: async () => Promise.reject(new Error('the work queue is unavailable')) };
    const first = await backupHandler(refusing)({ tenant, to }, budgetContext('req-1'));
    // One line that says what happened and what becomes of it, not "unexpected error: …".
    expect(first).toMatchObject({
      ok: false,
      error: {
        code: 'AWS_ERROR',
        outcome: 'failed',
        message: expect.stringMatching(
          new RegExp(`^the backup of "${tenant}" to ${to} stopped after piece 1 to go on in another invocation, but its next piece could not be queued on the work queue: the work queue is unavailable; nothing is stored yet: the same backup asked again .* goes on from where it stopped, else the backup invocation after \\S+ abandons it$`),
        ),
      },
    });
    expect(existsSync(continuationPathFor(base, tenant))).toBe(true);
    expect(queue).toEqual([]);

    // The same request again (a scheduled invocation's retry, a redelivered message): not "busy", the chain goes on.
    const again = await backupHandler(deps())({ tenant, to }, budgetContext('req-2'));
    expect(again).toMatchObject({ operation: 'backup', suspended: true, tenant, pieces: 2 });
    await drainQueue();
    expect(existsSync(continuationPathFor(base, tenant))).toBe(false);
    const restored = await restoreHandler(deps())({ from: to, as: `${tenant}-copy` }, budgetContext('req-r', 900_000));
    expect(restored).toMatchObject({ verified: true });
    expect(describeTree(path.join(base, `${tenant}-copy`))).toEqual(describeTree(tenantDir, { exclude: (relPath) => relPath === 'pty' }));

    // A backup of the tenant to another archive is still refused while a chain owns it.
    const unreachable = Object.assign(new Error('connect ECONNREFUSED 10.0.0.9:443'), { code: 'ECONNREFUSED' });
    const cut = await backupHandler({ ...deps(), continueBackup: async () => Promise.reject(unreachable) })({ tenant, to: `s3://backups/${tenant}/two.tar.zst` }, budgetContext('req-3'));
    expect(cut).toMatchObject({ ok: false, error: { code: 'AWS_ERROR', message: expect.stringContaining('could not be queued on the work queue: cannot reach SQS (connect ECONNREFUSED 10.0.0.9:443): the function\'s subnets need a route to SQS') } });
    const other = await backupHandler(deps())({ tenant, to: `s3://backups/${tenant}/three.tar.zst` }, budgetContext('req-4'));
    expect(other).toMatchObject({ ok: false, error: { code: 'TENANT_BUSY' } });
  });

  it('hands back the message of a piece its invocation\'s deadline stopped before it wrote, its chain\'s state untouched: delivered again, the chain goes on to one success event', async () => {
    const tenant = 'late-piece';
    const to = `s3://backups/${tenant}/one.tar.zst`;
    makeTenant(tenant);
    await backupHandler(deps())({ tenant, to }, budgetContext('req-1'));
    const record = { messageId: 'm-2', body: encodeWorkMessage(queue.shift()!), eventSource: 'aws:sqs' };
    const saved = readFileSync(continuationPathFor(base, tenant));
    // The invocation's time runs out as the piece starts (its 5th look at the time left: the
    // deadline's own; a tenant volume slow to answer), the abort margin's left for the event.
    let looks = 0;
    const runningOut = lambdaContext({ awsRequestId: 'req-2', remaining: () => (++looks === 5 ? 0 : 30_000) });
    const answer = await workQueueHandler(deps())({ Records: [record] }, runningOut);
    // Not handed back: a failure event, the state left for a day (the tenant busy: its scheduled
    // backups refused) until the chain was abandoned, with a second failure event.
    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-2' }] });
    expect(readFileSync(continuationPathFor(base, tenant)).equals(saved)).toBe(true);
    expect(events()).toEqual([]);

    // A piece stops before the deadline (stopWhen): another receive has the time it had.
    const handle = workQueueHandler(deps());
    expect(await handle({ Records: [record] }, budgetContext('req-2-again'))).toEqual({ batchItemFailures: [] });
    for (let message = queue.shift(), n = 3; message !== undefined; message = queue.shift(), n++) {
      expect(await handle({ Records: [{ messageId: `m-${n}`, body: encodeWorkMessage(message), eventSource: 'aws:sqs' }] }, budgetContext(`req-${n}`))).toEqual({ batchItemFailures: [] });
    }
    expect(existsSync(continuationPathFor(base, tenant))).toBe(false);
    expect(events()).toEqual([expect.objectContaining({ detailType: 'OpenClaw Backup Succeeded', detail: expect.objectContaining({ tenant, location: to }) })]);
  });

  it('refuses up front a restore of an archive larger than the time left restores at the configured throughput', async () => {
    const slow = { ...deps(), config: { ...config, restoreMBps: 1 } };
    const refused = await restoreHandler(slow)({ from: 's3://backups/big/one.tar.zst', as: 'too-big' }, budgetContext('req-r', 10_000));
    expect(refused).toMatchObject({ ok: false, error: { code: 'ARCHIVE_LIMIT' } });
    expect((refused as { error: { message: string } }).error.message).toMatch(/^s3:\/\/backups\/big\/one\.tar\.zst is [\d.]+ MiB, more than the [\d.]+ MiB the restore function can restore in the \d s it has left at 1 MB\/s/);
    // Nothing was written: no tenant, no staging area, no lock.
    expect(readdirSync(base).filter((name) => name.includes('too-big'))).toEqual([]);
  });

  it('refuses up front a restore of an archive whose footer counts more entries than the time left stages at the configured rate', async () => {
    // The archive's last bytes say how many files, directories and links it holds.
    const archive = readFileSync(await download('big/one.tar.zst'));
    const footer = archive.subarray(-200).toString('latin1');
    const entries = Number(/"entries":(\d+)[,}]/.exec(footer)![1]);
    // And its length, which the pieces that wrote it counted between them.
    const { footer: parsed, frameBytes } = findArchiveFooterFrame(archive.subarray(-1032))!;
    expect(parsed.bytesBefore! + frameBytes).toBe(archive.length);
    expect(entries).toBe(1 + 10 * 22); // the tenant's directory, 10 × (a directory, 20 sessions, media); pty/ is never archived
    // ~899 s at 0.24 a second: ~215 entries.
    const slow = { ...deps(), config: { ...config, restoreEntriesPerSecond: 0.24 } };
    const refused = await restoreHandler(slow)({ from: 's3://backups/big/one.tar.zst', as: 'too-many' }, budgetContext('req-r', 900_000));
    expect(refused).toMatchObject({ ok: false, error: { code: 'ARCHIVE_LIMIT' } });
    expect((refused as { error: { message: string } }).error.message).toMatch(
      /^s3:\/\/backups\/big\/one\.tar\.zst holds 221 entries to restore \(its footer says\), more than the 2[01]\d the restore function can stage in the 8\d\d s it has left at 0\.24 a second \(OPENCLAW_RESTORE_ENTRIES_PER_SECOND\): restore it with the CLI/,
    );
    expect(readdirSync(base).filter((name) => name.includes('too-many'))).toEqual([]);
    // At a rate that stages them in the time left, it restores.
    const enough = { ...deps(), config: { ...config, restoreEntriesPerSecond: 0.3 } };
    expect(await restoreHandler(enough)({ from: 's3://backups/big/one.tar.zst', as: 'just-enough' }, budgetContext('req-r2', 900_000))).toMatchObject({ verified: true });
  });

  it('counts the time the archive\'s bytes take out of the time its entries have: each check alone would pass it', async () => {
    const bytes = statSync(await download('big/one.tar.zst')).size;
    // ~899 s: its bytes take 250 of them, leaving ~649 s, at 0.3 a second ~194 entries for its 221.
    const mbps = bytes / 1e6 / 250;
    const both = { ...deps(), config: { ...config, restoreEntriesPerSecond: 0.3, restoreMBps: mbps } };
    const refused = await restoreHandler(both)({ from: 's3://backups/big/one.tar.zst', as: 'too-slow' }, budgetContext('req-r3', 900_000));
    expect(refused).toMatchObject({ ok: false, error: { code: 'ARCHIVE_LIMIT' } });
    expect((refused as { error: { message: string } }).error.message).toMatch(
      /holds 221 entries to restore \(its footer says\), more than the 19\d the restore function can stage in the 64\d s it has left at 0\.3 a second \(OPENCLAW_RESTORE_ENTRIES_PER_SECOND\), after the 250 s its [\d.]+ [KM]iB take at [\d.e-]+ MB\/s \(OPENCLAW_RESTORE_MBPS\): restore it with the CLI/,
    );
    expect(readdirSync(base).filter((name) => name.includes('too-slow'))).toEqual([]);
  });

  it('archives each file as the piece that read it saw it, when the tenant changes between pieces', async () => {
    const tenantDir = makeTenant('moving');
    await backupHandler(deps())({ tenant: 'moving', to: 's3://backups/moving/one.tar.zst' }, budgetContext('req-1'));
    const position = (await loadContinuation(base, 'moving'))!.state.archive.resumeAfter;
    const walked = 'sessions-0/s-00.jsonl';
    const ahead = 'sessions-9/s-19.jsonl';
    expect(compareWalkOrder(walked, position)).toBeLessThanOrEqual(0);
    expect(compareWalkOrder(ahead, position)).toBeGreaterThan(0);
    const before = readFileSync(path.join(tenantDir, walked));
    writeFileSync(path.join(tenantDir, walked), 'changed after it was archived\n');
    writeFileSync(path.join(tenantDir, ahead), 'changed before it was archived\n');
    writeFileSync(path.join(tenantDir, 'sessions-9', 'new.jsonl'), 'created between pieces\n');
    rmSync(path.join(tenantDir, 'sessions-8', 's-05.jsonl'));

    await drainQueue();
    const restored = await restoreHandler(deps())({ from: 's3://backups/moving/one.tar.zst', as: 'moving-copy' }, budgetContext('req-r', 900_000));
    expect(restored).toMatchObject({ verified: true });
    const copy = path.join(base, 'moving-copy');
    expect(readFileSync(path.join(copy, walked))).toEqual(before);
    expect(readFileSync(path.join(copy, ahead), 'utf8')).toBe('changed before it was archived\n');
    expect(readFileSync(path.join(copy, 'sessions-9', 'new.jsonl'), 'utf8')).toBe('created between pieces\n');
    expect(existsSync(path.join(copy, 'sessions-8', 's-05.jsonl'))).toBe(false);
  });

  it('keeps other backups and restores of the tenant out while it continues, and ends a chain whose next piece never comes', async () => {
    makeTenant('broken');
    // A longer first piece: past two media files, so its upload holds a part.
    await backupHandler(deps())({ tenant: 'broken', to: 's3://backups/broken/one.tar.zst' }, budgetContext('req-1', 8000));
    expect(queue).toHaveLength(1);
    const { state } = (await loadContinuation(base, 'broken'))!;
    // The next piece is lost (its message, say, or the process was killed again and again).
    queue.length = 0;

    const other = await backupHandler(deps())({ tenant: 'broken', to: 's3://backups/broken/two.tar.zst' }, budgetContext('req-2', 900_000));
    expect(other).toMatchObject({ ok: false, error: { code: 'TENANT_BUSY' } });
    const restore = await restoreHandler(deps())({ from: 's3://backups/big/one.tar.zst', as: 'broken', force: true }, budgetContext('req-3', 900_000));
    expect(restore).toMatchObject({ ok: false, error: { code: 'TENANT_BUSY' } });
    expect(state.upload.uploadId).toBeDefined();

    // A day later (the state's age is what counts), any backup invocation ends the chain first.
    const dayAgo = new Date(Date.now() - 25 * 60 * 60 * 1000);
    utimesSync(continuationPathFor(base, 'broken'), dayAgo, dayAgo);
    // s3rver cannot abort a multipart upload (405): the abort is answered here and recorded.
    const aborted: unknown[] = [];
    const send = S3Client.prototype.send;
    vi.spyOn(S3Client.prototype, 'send').mockImplementation(function (this: S3Client, command: unknown, ...rest: unknown[]) {
      if (command instanceof AbortMultipartUploadCommand) {
        aborted.push(command.input);
        return Promise.resolve({});
      }
      return (send as (...args: unknown[]) => unknown).call(this, command, ...rest);
    } as typeof send);
    eventBridge.reset();
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e' }] });
    const after = await backupHandler(deps())({ tenant: 'big', to: 's3://backups/big/two.tar.zst' }, budgetContext('req-4', 900_000));
    expect(after).toMatchObject({ operation: 'backup', tenant: 'big' });

    expect(aborted).toEqual([{ Bucket: 'backups', Key: 'broken/one.tar.zst', UploadId: state.upload.uploadId }]);
    expect(existsSync(continuationPathFor(base, 'broken'))).toBe(false);
    const failed = events().filter((event) => event.detailType === 'OpenClaw Backup Failed');
    expect(failed).toEqual([
      expect.objectContaining({ detail: expect.objectContaining({ tenant: 'broken', location: 's3://backups/broken/one.tar.zst', error: expect.objectContaining({ code: 'CONTINUATION_ENDED' }) }) }),
    ]);
    // The lost piece, delivered late, has nothing left to continue: skipped, not failed.
    const late = await workQueueHandler(deps())(
      { Records: [{ messageId: 'late', body: encodeWorkMessage({ version: 1, kind: 'backup', tenant: 'broken', to: 's3://backups/broken/one.tar.zst', run: { id: 'req-1', time: state.createdAt, template: 's3://backups/broken/one.tar.zst' }, continues: { chain: state.chain, trigger: 'direct' } }), eventSource: 'aws:sqs' }] },
      budgetContext('req-5'),
    );
    expect(late).toEqual({ batchItemFailures: [] });
  });
});

describe('a plaintext backup in pieces under way when the stack starts encrypting (encryptTo deployed)', () => {
  it('ends rather than completing unencrypted: one failure event, nothing stored, the upload and the state gone', async () => {
    makeTenant('midway');
    const to = 's3://backups/midway/one.tar.zst';
    expect(await backupHandler(deps())({ tenant: 'midway', to }, budgetContext('req-1'))).toMatchObject({ suspended: true, pieces: 1 });
    expect((await loadContinuation(base, 'midway'))!.encryption).toBeUndefined();
    // Plaintext pieces until the multipart upload has begun (a first part sent).
    for (let piece = 2; (await loadContinuation(base, 'midway'))!.state.upload.uploadId === undefined; piece++) {
      const message = { messageId: `m-plain-${piece}`, body: encodeWorkMessage(queue.shift()!), eventSource: 'aws:sqs' };
      expect(await workQueueHandler(deps())({ Records: [message] }, budgetContext(`req-plain-${piece}`))).toEqual({ batchItemFailures: [] });
      if (piece > 20) throw new Error('no upload begun');
    }
    const stackKey = generateIdentity().recipient.text;
    const record = { messageId: 'm-2', body: encodeWorkMessage(queue.shift()!), eventSource: 'aws:sqs' };
    const recording = await startRecordingProxy(server.endpoint);
    vi.stubEnv('AWS_ENDPOINT_URL_S3', recording.endpoint);
    try {
      const encrypting = queueingDeps({ ...config, encryptTo: [stackKey] }, logger, queue);
      expect(await workQueueHandler(encrypting)({ Records: [record] }, budgetContext('req-2'))).toEqual({ batchItemFailures: [] });
    } finally {
      vi.stubEnv('AWS_ENDPOINT_URL_S3', server.endpoint);
      await recording.stop();
    }
    expect(queue).toEqual([]);
    // Not one more part: its multipart upload aborted.
    expect(recording.requests.filter((request) => request.method === 'PUT')).toEqual([]);
    expect(recording.requests.filter((request) => request.method === 'DELETE' && request.url.includes('uploadId='))).toHaveLength(1);
    expect(events()).toEqual([
      { detailType: 'OpenClaw Backup Failed', detail: expect.objectContaining({ tenant: 'midway', location: to, error: expect.objectContaining({ code: 'AGE_BAD_RECIPIENT', message: expect.stringContaining('is ended: its first piece began it unencrypted, this piece was asked for it encrypted to 1 recipient(s)') }) }) },
    ]);
    await expect(s3.send(new HeadObjectCommand({ Bucket: 'backups', Key: 'midway/one.tar.zst' }))).rejects.toThrow();
    expect(existsSync(continuationPathFor(base, 'midway'))).toBe(false);
  });

  it('ends as the success it was when its last piece had stored the archive whole (unencrypted, as it began) and was killed before removing its state', async () => {
    const tenant = 'stored-before';
    const stateFile = continuationPathFor(base, tenant);
    // What the disk holds as the upload completes: a piece killed right then leaves it so.
    let atCompletion: Buffer | undefined;
    const proxy = await startCompletedUploadProxy(server.endpoint, { onCompleting: () => (atCompletion = readFileSync(stateFile)) });
    vi.stubEnv('AWS_ENDPOINT_URL_S3', proxy.endpoint);
    try {
      makeTenant(tenant);
      const key = `${tenant}/one.tar.zst`;
      const to = `s3://backups/${key}`;
      await backupHandler(deps())({ tenant, to }, budgetContext('req-1', 8000));
      const handle = workQueueHandler(deps());
      let last: { messageId: string; body: string; eventSource: string } | undefined;
      for (let message = queue.shift(), n = 2; message !== undefined; message = queue.shift(), n++) {
        last = { messageId: `m-${n}`, body: encodeWorkMessage(message), eventSource: 'aws:sqs' };
        expect(await handle({ Records: [last] }, budgetContext(`req-${n}`))).toEqual({ batchItemFailures: [] });
        if (n > 100) throw new Error('the chain does not end');
      }
      const stored = await s3.send(new HeadObjectCommand({ Bucket: 'backups', Key: key }));
      writeFileSync(stateFile, atCompletion!, { mode: 0o600 });
      expect((await loadContinuation(base, tenant))!.encryption).toBeUndefined();
      eventBridge.reset();
      eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e' }] });
      const requestsBefore = proxy.requests.length;

      // Its message comes again after the stack's encryptTo was deployed.
      const encrypting = queueingDeps({ ...config, encryptTo: [generateIdentity().recipient.text] }, logger, queue);
      expect(await workQueueHandler(encrypting)({ Records: [last!] }, budgetContext('req-again'))).toEqual({ batchItemFailures: [] });
      expect(queue).toEqual([]);
      expect(existsSync(stateFile)).toBe(false);
      expect(events()).toEqual([
        {
          detailType: 'OpenClaw Backup Succeeded',
          detail: expect.objectContaining({ tenant, location: to, manifestSha256: expect.any(String) }),
        },
      ]);
      expect(events()[0]!.detail).not.toHaveProperty('encryptedTo');
      // Nothing stored again, nothing aborted: the same object.
      const again = proxy.requests.slice(requestsBefore).filter((request) => request.url.includes('uploadId') || request.method === 'POST' || (request.method === 'PUT' && !request.url.includes('tagging')));
      expect(again).toEqual([]);
      expect((await s3.send(new HeadObjectCommand({ Bucket: 'backups', Key: key }))).ETag).toBe(stored.ETag);
    } finally {
      vi.stubEnv('AWS_ENDPOINT_URL_S3', server.endpoint);
      await proxy.stop();
    }
  });
});

describe('a backup whose saved state is damaged between pieces', () => {
  it('ends its chain at the next piece: one failure event, the message not handed back, the tenant free for the next backup', async () => {
    makeTenant('damaged');
    const to = 's3://backups/damaged/one.tar.zst';
    await backupHandler(deps())({ tenant: 'damaged', to }, budgetContext('req-1'));
    const file = continuationPathFor(base, 'damaged');
    const bytes = readFileSync(file);
    bytes.fill(0x20, 20, 60); // inside its JSON
    writeFileSync(file, bytes);
    const record = { messageId: 'm-2', body: encodeWorkMessage(queue.shift()!), eventSource: 'aws:sqs' };

    // Handed back, each receive failed alike: three failure events, then the DLQ, the tenant busy for a day.
    expect(await workQueueHandler(deps())({ Records: [record] }, budgetContext('req-2'))).toEqual({ batchItemFailures: [] });
    expect(existsSync(file)).toBe(false);
    // Delivered again all the same (SQS now and then): nothing left to continue, skipped.
    expect(await workQueueHandler(deps())({ Records: [record] }, budgetContext('req-3'))).toEqual({ batchItemFailures: [] });
    expect(events()).toEqual([
      {
        detailType: 'OpenClaw Backup Failed',
        detail: expect.objectContaining({
          tenant: 'damaged',
          location: to,
          error: {
            code: 'FILESYSTEM',
            message: `the state of the continuing backup of "damaged" (${file}) is damaged: the backup to ${to} is ended (its state removed; a multipart upload it started stays at the store until a bucket lifecycle rule AbortIncompleteMultipartUpload removes it)`,
          },
        }),
      },
    ]);
    expect(await backupHandler(deps())({ tenant: 'damaged', to: 's3://backups/damaged/two.tar.zst' }, budgetContext('req-4', 900_000))).toMatchObject({ operation: 'backup', tenant: 'damaged' });
  });
});

describe('a backup whose saved state is not one this tool saved', () => {
  it('ends its chain at the next piece as a damaged one: one failure event, the state removed', async () => {
    makeTenant('planted');
    const to = 's3://backups/planted/one.tar.zst';
    await backupHandler(deps())({ tenant: 'planted', to }, budgetContext('req-1'));
    const file = continuationPathFor(base, 'planted');
    chmodSync(file, 0o666);
    const record = { messageId: 'm-2', body: encodeWorkMessage(queue.shift()!), eventSource: 'aws:sqs' };
    expect(await workQueueHandler(deps())({ Records: [record] }, budgetContext('req-2'))).toEqual({ batchItemFailures: [] });
    expect(existsSync(file)).toBe(false);
    expect(events()).toEqual([
      {
        detailType: 'OpenClaw Backup Failed',
        detail: expect.objectContaining({
          tenant: 'planted',
          error: {
            code: 'FILESYSTEM',
            message: `the state of the continuing backup of "planted" (${file}) is writable by its group (mode 0666; saved 0600): not one this tool saved, so no piece goes on from it: the backup to ${to} is ended (its state removed; a multipart upload it started stays at the store until a bucket lifecycle rule AbortIncompleteMultipartUpload removes it)`,
          },
        }),
      },
    ]);
  });
});

describe.runIf(process.geteuid?.() === 0)('a backup that continues across invocations, its tenant volume full between pieces', () => {
  // A tmpfs of its own: filled up after a piece, the next cannot save its state.
  const volume = path.join(dir.path, 'full-volume');
  const volumeDeps = (): HandlerDeps => queueingDeps(continuationConfig(volume), logger, queue);
  beforeAll(() => {
    mkdirSync(volume);
    sh(`mount -t tmpfs -o size=96m tmpfs '${volume}'`);
  });
  afterAll(() => sh(`umount '${volume}'`));
  // Each case's tenant (~30 MiB) and state go: three would fill the volume.
  afterEach(() => {
    for (const name of readdirSync(volume)) rmSync(path.join(volume, name), { recursive: true, force: true });
  });

  /** Takes every free byte of the volume with one file; `unfill` removes it. */
  const fill = () => {
    const fd = openSync(path.join(volume, 'filler'), 'a');
    try {
      for (;;) writeSync(fd, Buffer.alloc(64 * 1024));
    } catch {
      // full
    } finally {
      closeSync(fd);
    }
  };
  const unfill = () => rmSync(path.join(volume, 'filler'));

  /** Takes every free byte of the volume but `room`. */
  const fillLeaving = (room: number) => {
    fill();
    truncateSync(path.join(volume, 'filler'), statSync(path.join(volume, 'filler')).size - room);
  };

  /** `tenant` made on the volume and its first piece run: its next piece's delivery, and the state that piece starts from. */
  const afterFirstPiece = async (tenant: string) => {
    const to = `s3://backups/${tenant}/one.tar.zst`;
    sh(`cp -a '${makeTenant(`${tenant}-source`)}' '${path.join(volume, tenant)}'`);
    await backupHandler(volumeDeps())({ tenant, to }, budgetContext('req-1'));
    const handle = workQueueHandler(volumeDeps());
    const record = { messageId: 'm-2', body: encodeWorkMessage(queue.shift()!), eventSource: 'aws:sqs' };
    return { to, handle, record, saved: readFileSync(continuationPathFor(volume, tenant)) };
  };

  /** Delivers every queued piece in turn, as the queue would, each answered as done. */
  const deliverTheRest = async (handle: ReturnType<typeof workQueueHandler>) => {
    for (let message = queue.shift(), n = 3; message !== undefined; message = queue.shift(), n++) {
      expect(await handle({ Records: [{ messageId: `m-${n}`, body: encodeWorkMessage(message), eventSource: 'aws:sqs' }] }, budgetContext(`req-${n}`))).toEqual({ batchItemFailures: [] });
    }
  };

  /** The chain ended: no state left, one success event, the archive verified. */
  const expectEndedInOneSuccess = async (tenant: string, to: string) => {
    expect(existsSync(continuationPathFor(volume, tenant))).toBe(false);
    expect(events()).toEqual([expect.objectContaining({ detailType: 'OpenClaw Backup Succeeded', detail: expect.objectContaining({ tenant, location: to }) })]);
    const verified = await restoreHandler(volumeDeps())({ operation: 'verify', from: to }, budgetContext('req-v', 900_000));
    expect(verified).toMatchObject({ verified: true });
  };

  it('a first piece that cannot save its state fails in one line and aborts the multipart upload it started: no chain is left to end it', async () => {
    const tenant = 'full-first';
    const to = `s3://backups/${tenant}/one.tar.zst`;
    sh(`cp -a '${makeTenant('full-first-source')}' '${path.join(volume, tenant)}'`);
    const recording = await startRecordingProxy(server.endpoint);
    vi.stubEnv('AWS_ENDPOINT_URL_S3', recording.endpoint);
    // Room for the lock (a page), none for the state.
    fillLeaving(4096);
    try {
      const answer = await backupHandler(volumeDeps())({ tenant, to }, budgetContext('req-first', 8_000));
      expect(answer).toMatchObject({ ok: false, error: { code: 'FILESYSTEM', message: expect.stringMatching(/^cannot save the state of the continuing backup of "full-first" \(\S+\): no space left on the device$/) } });
    } finally {
      unfill();
      vi.stubEnv('AWS_ENDPOINT_URL_S3', server.endpoint);
      await recording.stop();
    }
    expect(queue).toEqual([]);
    expect(existsSync(continuationPathFor(volume, tenant))).toBe(false);
    const started = recording.requests.filter((request) => request.method === 'POST' && request.url.includes('?uploads'));
    expect(started).toHaveLength(1);
    const aborted = recording.requests.filter((request) => request.method === 'DELETE' && request.url.includes('uploadId='));
    expect(aborted).toHaveLength(1);
    expect(events()).toEqual([expect.objectContaining({ detailType: 'OpenClaw Backup Failed', detail: expect.objectContaining({ tenant }) })]);
  });

  it('the last piece that cannot record that it commits fails and comes again, its upload kept; redelivered with room, the chain ends in one success event', async () => {
    const tenant = 'full-last';
    const { to, handle, record, saved } = await afterFirstPiece(tenant);
    // Room for the lock (a page), none for the state that records the commit. Time for the rest of the tenant: the last piece.
    fillLeaving(4096);
    try {
      expect(await handle({ Records: [record] }, budgetContext('req-2', 900_000))).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-2' }] });
    } finally {
      unfill();
    }
    expect(queue).toEqual([]);
    // The chain had ended: its upload aborted, its state removed, a failure event for a backup of ten pieces' work.
    expect(events()).toEqual([]);
    expect(readFileSync(continuationPathFor(volume, tenant)).equals(saved)).toBe(true);

    expect(await handle({ Records: [record] }, budgetContext('req-2-again', 900_000))).toEqual({ batchItemFailures: [] });
    expect(queue).toEqual([]);
    await expectEndedInOneSuccess(tenant, to);
  });

  it('a piece whose state fits the volume only in part fails and comes again: the state it started from is not replaced by a torn one', async () => {
    const tenant = 'part';
    const { to, handle, record, saved } = await afterFirstPiece(tenant);
    // Room for the lock and 64 KiB of the state (its upload's tail alone is larger): the write comes back short, without an error.
    fillLeaving(4096 + 64 * 1024);
    let answer;
    try {
      answer = await handle({ Records: [record] }, budgetContext('req-2'));
    } finally {
      unfill();
    }
    // It saved the first 64 KiB as the state and handed over: the next piece found it damaged and ended the chain.
    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-2' }] });
    expect(queue).toEqual([]);
    expect(events()).toEqual([]);
    expect(readFileSync(continuationPathFor(volume, tenant)).equals(saved)).toBe(true);

    expect(await handle({ Records: [record] }, budgetContext('req-2-again'))).toEqual({ batchItemFailures: [] });
    await deliverTheRest(handle);
    await expectEndedInOneSuccess(tenant, to);
  });

  it('a piece that cannot save its state fails and comes again without a failure event; redelivered with room, the chain ends in one success event', async () => {
    const tenant = 'full';
    const { to, handle, record, saved } = await afterFirstPiece(tenant);
    fill();
    const answer = await handle({ Records: [record] }, budgetContext('req-2'));
    unfill();
    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-2' }] });
    // It said "OpenClaw Backup Failed" of a backup that then went on and succeeded: two completion events.
    expect(events()).toEqual([]);
    expect(readFileSync(continuationPathFor(volume, tenant)).equals(saved)).toBe(true);

    expect(await handle({ Records: [record] }, budgetContext('req-2-again'))).toEqual({ batchItemFailures: [] });
    await deliverTheRest(handle);
    await expectEndedInOneSuccess(tenant, to);
    const listing = sh(`zstd -dc '${await download(`${tenant}/one.tar.zst`)}' | tar -tf -`).toString().split('\n').filter((line) => line.endsWith('.jsonl') || line.endsWith('.bin'));
    expect(listing).toHaveLength(210);
  });
});

describe('a later piece whose lock another host took over while it uploaded', () => {
  // Frozen past LOCK_STALE_MS mid-upload (its invocation's host stalled), its lock taken over
  // by another command (here: the lock file replaced by another host's): it ended the chain
  // under the taker's lock, its state removed (and, had it met the loss recording its commit,
  // its upload aborted), though the chain is the taker's to judge (found by review-pieces8).
  it('touches nothing: the state as it started from, the upload not aborted, no event, its message handed back', async () => {
    const tenant = 'taken';
    const to = `s3://backups/${tenant}/one.tar.zst`;
    makeTenant(tenant);
    await backupHandler(deps())({ tenant, to }, budgetContext('req-1'));
    const saved = readFileSync(continuationPathFor(base, tenant));
    const lockPath = lockPathFor(base, tenant);
    let takenOver = false;
    const watching = await startWatchingProxy(server.endpoint, (method, url) => {
      if (takenOver || method !== 'PUT' || !url.searchParams.has('partNumber')) return;
      takenOver = true;
      rmSync(lockPath);
      writeFileSync(lockPath, JSON.stringify({ token: 'taker', pid: 7, host: 'other', hostId: 'ffffffffffff', started: 9, operation: 'recover', startedAt: new Date().toISOString() }));
    });
    vi.stubEnv('AWS_ENDPOINT_URL_S3', watching.endpoint);
    let answer;
    const record = { messageId: 'm-2', body: encodeWorkMessage(queue.shift()!), eventSource: 'aws:sqs' };
    try {
      answer = await workQueueHandler(deps())({ Records: [record] }, budgetContext('req-2', 900_000));
    } finally {
      vi.stubEnv('AWS_ENDPOINT_URL_S3', server.endpoint);
      await watching.stop();
      rmSync(lockPath, { force: true });
    }
    expect(takenOver).toBe(true);
    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-2' }] });
    expect(queue).toEqual([]);
    expect(events()).toEqual([]);
    expect(existsSync(continuationPathFor(base, tenant)) && readFileSync(continuationPathFor(base, tenant)).equals(saved)).toBe(true);
    expect(watching.requests.filter((request) => request.method === 'DELETE' && request.url.includes('uploadId='))).toEqual([]);
    expect(watching.requests.filter((request) => request.method === 'POST' && request.url.includes('uploadId='))).toEqual([]);

    // Its message delivered again (the taker gone): the chain goes on from that state and upload to one success.
    expect(await workQueueHandler(deps())({ Records: [record] }, budgetContext('req-2-again', 900_000))).toEqual({ batchItemFailures: [] });
    expect(existsSync(continuationPathFor(base, tenant))).toBe(false);
    expect(events()).toEqual([expect.objectContaining({ detailType: 'OpenClaw Backup Succeeded', detail: expect.objectContaining({ tenant, location: to }) })]);
    const verified = await restoreHandler(deps())({ operation: 'verify', from: to }, budgetContext('req-v', 900_000));
    expect(verified).toMatchObject({ verified: true });
  });
});
