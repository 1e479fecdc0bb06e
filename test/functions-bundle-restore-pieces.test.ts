// The restore function's bundle (esbuild, as the stack bundles it) restoring a tenant in pieces
// against s3rver, with real deadlines: each invocation's context leaves it just over the abort
// and continue margins, so every piece stops at the first entry after its first write and
// queues its next piece on the restore queue, here a TLS stand-in answering SendMessage (the
// SDK sends to the queue URL's own host). The test delivers each queued message back to the
// bundle as its SQS event source mapping would, until one piece commits; the restored tree is
// compared with the original: every file's SHA-256, modes, times, symlinks, and the hard link's
// shared inode. Node 24 only (the bundle needs node:zlib's zstd), as functions-bundle.

import { randomBytes } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { checkAsset } from '../infra/bundle-check.js';
import { formatIdentity, generateIdentity } from '../shared/age/keys.js';
import { zlibZstdCodec } from '../shared/archive/zstd-codec-zlib.js';
import { nodeSqliteDriver } from '../shared/backup/sqlite-driver.js';
import { DEFAULT_ABORT_MARGIN_MS, DEFAULT_CONTINUE_MARGIN_MS, MIN_ABANDON_AFTER_MS } from '../shared/control-plane/function-config.js';
import { restoreCheckpointPathFor } from '../shared/restore/restore-continuation.js';
import { createSampleTenant } from '../scripts/sample-tenant.js';
import { bundleFunction, startSqsStandIn, type SqsStandIn } from './helpers/function-bundle.js';
import { describeTree, tempDir } from './helpers/tree.js';
import { S3RVER_ACCESS_KEY, startS3Server, type S3TestServer } from './helpers/s3-server.js';

type Handler = (event: unknown, context: unknown) => Promise<Record<string, unknown>>;

const builtIns = !('unavailable' in zlibZstdCodec()) && !('unavailable' in nodeSqliteDriver());
const dir = tempDir('openclaw-bundle-restore-pieces-');
const base = path.join(dir.path, 'mnt-tenants');
let server: S3TestServer;
let sqs: SqsStandIn;
const handlers: Record<string, Handler> = {};
const bundles: Record<string, string> = {};

/** A context whose time left is the margins and `overMs` more, counted in real time. */
function context(overMs: number): unknown {
  const deadline = Date.now() + DEFAULT_ABORT_MARGIN_MS + DEFAULT_CONTINUE_MARGIN_MS + overMs;
  return {
    awsRequestId: 'req-bundle',
    functionName: 'openclaw-backup-restore',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:openclaw-backup-restore',
    memoryLimitInMB: '2048',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
}

beforeAll(async () => {
  if (!builtIns) return;
  const acme = path.join(base, 'acme');
  createSampleTenant(acme, { sessions: 2, memoryRows: 20 });
  writeFileSync(path.join(acme, 'shared.txt'), 'one inode, two names\n');
  linkSync(path.join(acme, 'shared.txt'), path.join(acme, 'second-name.txt'));
  symlinkSync('config.json', path.join(acme, 'config-link'));
  mkdirSync(path.join(acme, 'private'));
  writeFileSync(path.join(acme, 'private', 'key'), 'k', { mode: 0o600 });
  chmodSync(path.join(acme, 'private'), 0o700);
  server = await startS3Server({ bucket: 'backups' });
  sqs = await startSqsStandIn(path.join(dir.path, 'certs'));
  for (const [name, value] of Object.entries({
    OPENCLAW_TENANTS_DIR: base,
    OPENCLAW_BACKUP_BUCKET: 'backups',
    OPENCLAW_STACK_PREFIX: 'openclaw-backup',
    OPENCLAW_CPUS: '1',
    OPENCLAW_RESTORE_QUEUE_URL: sqs.queueUrl,
    POWERTOOLS_SERVICE_NAME: 'openclaw-backup',
    AWS_ACCESS_KEY_ID: S3RVER_ACCESS_KEY,
    AWS_SECRET_ACCESS_KEY: 'role-secret',
    AWS_REGION: 'us-east-1',
    // The function's role reaches "S3" (s3rver) as the environment names it; the stand-in SQS is self-signed.
    AWS_ENDPOINT_URL_S3: server.endpoint,
    NODE_TLS_REJECT_UNAUTHORIZED: '0',
  })) {
    vi.stubEnv(name, value);
  }
  for (const name of ['backup', 'restore']) {
    const outdir = path.join(dir.path, 'asset', name);
    const bundle = await bundleFunction(name, outdir);
    bundles[name] = bundle;
    expect(checkAsset(outdir), `${name} asset`).toEqual([]);
    handlers[name] = ((await import(pathToFileURL(bundle).href)) as { handler: Handler }).handler;
  }
}, 120_000);

afterAll(async () => {
  vi.unstubAllEnvs();
  await server?.dispose();
  await sqs?.close();
  dir.cleanup();
});

/**
 * A context whose clock moves 50 ms each time the handler asks it (budgetContext's), so the
 * time the first piece judges the archive by, and where each piece stops, do not hang on the
 * machine's load.
 */
function lookingContext(budgetMs: number): unknown {
  let looks = 0;
  return { ...(context(0) as object), getRemainingTimeInMillis: () => Math.max(0, budgetMs - 50 * looks++) };
}

/** The restore bundle loaded again (its configuration is read once, at its cold start) with `env` added. */
async function restoreBundleWith(env: Record<string, string | undefined>, name: string): Promise<Handler> {
  for (const [key, value] of Object.entries(env)) vi.stubEnv(key, value);
  return ((await import(`${pathToFileURL(bundles.restore!).href}?${name}`)) as { handler: Handler }).handler;
}

/** Runs a handler with Powertools' log lines kept off the test output. */
async function invoke(name: string | Handler, event: unknown, overMs: number | (() => unknown)): Promise<Record<string, unknown>> {
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  // The SQS client's note that it sends to the queue URL's host (the stand-in's) rather than AWS's.
  const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
  try {
    return await (typeof name === 'string' ? handlers[name]! : name)(event, typeof overMs === 'number' ? context(overMs) : overMs());
  } finally {
    out.mockRestore();
    err.mockRestore();
    warn.mockRestore();
  }
}

describe('the bundled restore function', () => {
  it.runIf(builtIns)('restores a tenant in pieces handed over through the restore queue: every file, mode, link as backed up', async () => {
    expect(await invoke('backup', { tenant: 'acme', to: 's3://backups/pieces/acme.tar.zst' }, 600_000)).toMatchObject({ operation: 'backup', tenant: 'acme' });
    // The first piece judges the chain by its own time beyond the margins (restoreChainLimit): a second of it, on the looking clock.
    const first = await invoke('restore', { from: 's3://backups/pieces/acme.tar.zst', as: 'acme-copy' }, () => lookingContext(DEFAULT_ABORT_MARGIN_MS + DEFAULT_CONTINUE_MARGIN_MS + 1_000));
    expect(first).toMatchObject({ operation: 'restore', suspended: true, tenant: 'acme-copy', pieces: 1, ok: false, error: { code: 'RESTORE_CONTINUES' } });
    // Its checkpoint says how far into the stored archive it read, and the entries the plain archive's footer counts (the next piece judges the chain's pace by both).
    const saved = JSON.parse(readFileSync(restoreCheckpointPathFor(base, 'acme-copy'), 'utf8').slice('OCRC1\n'.length)) as { storedRead: { bytes: number; total: number; entries: number } };
    expect(saved.storedRead).toEqual({ bytes: expect.any(Number), total: expect.any(Number), entries: expect.any(Number) });
    expect(saved.storedRead.entries).toBeGreaterThan(10);
    let pieces = 1;
    for (let body = sqs.sent.shift(); body !== undefined; body = sqs.sent.shift()) {
      expect(JSON.parse(body)).toMatchObject({ version: 1, kind: 'restore', tenant: 'acme-copy', command: { from: 's3://backups/pieces/acme.tar.zst' }, continues: { chain: first.chain, trigger: 'direct' } });
      const answer = await invoke('restore', { Records: [{ messageId: `m-${pieces}`, body, eventSource: 'aws:sqs' }] }, 0);
      expect(answer).toEqual({ batchItemFailures: [] });
      pieces++;
      if (pieces > 500) throw new Error('the chain does not end');
    }
    expect(pieces).toBeGreaterThanOrEqual(3);
    const copy = path.join(base, 'acme-copy');
    expect(describeTree(copy)).toEqual(describeTree(path.join(base, 'acme'), { exclude: (p) => p === 'pty' }));
    expect(statSync(path.join(copy, 'shared.txt')).ino).toBe(statSync(path.join(copy, 'second-name.txt')).ino);
    expect(readdirSync(base).filter((name) => name.startsWith('.openclaw-'))).toEqual([]);
  }, 300_000);

  it.runIf(builtIns)('goes on with a chain whose first piece ran on the previous version (a checkpoint with no entry count): a later piece reads the footer\'s count, is judged by it and carries it on; tiny files first no longer end the chain', async () => {
    // Tiny files first, one large incompressible file last: a first piece gets further through the entries than through the bytes.
    const tiny = path.join(base, 'tiny');
    mkdirSync(path.join(tiny, 'a'), { recursive: true });
    for (let i = 0; i < 200; i++) writeFileSync(path.join(tiny, 'a', `t${i}.txt`), `${i}\n`);
    writeFileSync(path.join(tiny, 'z.bin'), randomBytes(1024 * 1024));
    expect(await invoke('backup', { tenant: 'tiny', to: 's3://backups/pieces/tiny.tar.zst' }, 600_000)).toMatchObject({ operation: 'backup', tenant: 'tiny' });
    const first = await invoke('restore', { from: 's3://backups/pieces/tiny.tar.zst', as: 'tiny-copy' }, () => lookingContext(DEFAULT_ABORT_MARGIN_MS + DEFAULT_CONTINUE_MARGIN_MS + 1_000));
    expect(first).toMatchObject({ operation: 'restore', suspended: true, tenant: 'tiny-copy', pieces: 1 });
    const file = restoreCheckpointPathFor(base, 'tiny-copy');
    const saved = JSON.parse(readFileSync(file, 'utf8').slice('OCRC1\n'.length)) as { written: number; storedRead: { bytes: number; total: number; entries?: number } };
    const entries = saved.storedRead.entries!;
    expect(entries).toBe(203);
    expect(saved.written).toBeGreaterThan(0);
    expect(saved.written).toBeLessThan(entries);
    // The previous version's checkpoint: no entry count, and the stored bytes its first piece read
    // through the tiny files, a thousandth of the archive; a piece of 180 s (the margins) gets
    // 480 of a day: by bytes alone the chain needs 1,000 pieces and was ended.
    const { entries: _, ...old } = saved.storedRead;
    writeFileSync(file, `OCRC1\n${JSON.stringify({ ...saved, storedRead: { ...old, bytes: Math.floor(old.total / 1_000) } })}`, { mode: 0o600 });
    const second = sqs.sent.shift()!;
    expect(await invoke('restore', { Records: [{ messageId: 'tiny-2', body: second, eventSource: 'aws:sqs' }] }, 0)).toEqual({ batchItemFailures: [] });
    // Judged by the footer's count (the share of the entries written), it went on, and its checkpoint carries the count again.
    const next = JSON.parse(readFileSync(file, 'utf8').slice('OCRC1\n'.length)) as { pieces: number; storedRead: { entries?: number } };
    expect(next).toMatchObject({ pieces: 2, storedRead: { entries } });
    let pieces = 2;
    for (let body = sqs.sent.shift(); body !== undefined; body = sqs.sent.shift()) {
      // Pieces of 780 s (110 of a day) from here: the next writes the rest.
      expect(await invoke('restore', { Records: [{ messageId: `tiny-${++pieces}`, body, eventSource: 'aws:sqs' }] }, () => lookingContext(DEFAULT_ABORT_MARGIN_MS + DEFAULT_CONTINUE_MARGIN_MS + 600_000))).toEqual({ batchItemFailures: [] });
      if (pieces > 500) throw new Error('the chain does not end');
    }
    expect(describeTree(path.join(base, 'tiny-copy'))).toEqual(describeTree(tiny, { exclude: (p) => p === 'pty' }));
    expect(readdirSync(base).filter((name) => name.startsWith('.openclaw-'))).toEqual([]);
  }, 300_000);

  it.runIf(builtIns)('restores in pieces an archive one invocation is refused: a chain whose pieces replay faster than they write takes on more than one piece writes', async () => {
    const backup = await invoke('backup', { tenant: 'acme', to: 's3://backups/pieces/big.tar.zst' }, 600_000);
    const archiveBytes = backup.archiveBytes as number;
    // 5 s invocations, 1 + 3 s of margins: one invocation writes ~4 s, a piece ~1 s. Written at a
    // tenth of the archive a second, one invocation writes at most 40% of it; replayed at ten
    // archives a second, a piece replays it all in 0.1 s, so a chain of ~10 pieces takes it on.
    const rates = {
      OPENCLAW_ABORT_MARGIN_MS: '1000',
      OPENCLAW_CONTINUE_MARGIN_MS: '3000',
      OPENCLAW_RESTORE_MBPS: String(archiveBytes / 10 / 1e6),
      OPENCLAW_RESTORE_REPLAY_MBPS: String((archiveBytes * 10) / 1e6),
    };
    try {
      const oneInvocation = await restoreBundleWith({ ...rates, OPENCLAW_RESTORE_QUEUE_URL: undefined }, 'one-invocation');
      const refused = await invoke(oneInvocation, { from: 's3://backups/pieces/big.tar.zst', as: 'acme-big' }, () => lookingContext(5_000));
      expect(refused).toMatchObject({ ok: false, error: { code: 'ARCHIVE_LIMIT', message: expect.stringMatching(/the restore function can restore in the 3 s it has left at [\d.e-]+ MB\/s \(OPENCLAW_RESTORE_MBPS\)/) } });

      const inPieces = await restoreBundleWith({ ...rates, OPENCLAW_RESTORE_QUEUE_URL: sqs.queueUrl }, 'in-pieces');
      const first = await invoke(inPieces, { from: 's3://backups/pieces/big.tar.zst', as: 'acme-big' }, () => lookingContext(5_000));
      expect(first).toMatchObject({ operation: 'restore', suspended: true, tenant: 'acme-big', pieces: 1 });
      let pieces = 1;
      for (let body = sqs.sent.shift(); body !== undefined; body = sqs.sent.shift()) {
        expect(await invoke(inPieces, { Records: [{ messageId: `big-${pieces}`, body, eventSource: 'aws:sqs' }] }, () => lookingContext(5_000))).toEqual({ batchItemFailures: [] });
        pieces++;
        if (pieces > 500) throw new Error('the chain does not end');
      }
      expect(pieces).toBeGreaterThanOrEqual(2);
      expect(describeTree(path.join(base, 'acme-big'))).toEqual(describeTree(path.join(base, 'acme'), { exclude: (p) => p === 'pty' }));
      expect(readdirSync(base).filter((name) => name.startsWith('.openclaw-'))).toEqual([]);
    } finally {
      vi.stubEnv('OPENCLAW_RESTORE_QUEUE_URL', sqs.queueUrl);
    }
  }, 300_000);

  it.runIf(builtIns)('ends a chain restoring an encrypted archive once its pace shows it needs more pieces than the abandon time allows: a failure event, the old tenant whole, nothing left', async () => {
    // 1,200 files of 8 KiB that do not compress (~10 MB): each piece writes a handful of them.
    const many = path.join(base, 'pace');
    mkdirSync(path.join(many, 'files'), { recursive: true });
    for (let i = 0; i < 1200; i++) writeFileSync(path.join(many, 'files', `f${i}.bin`), randomBytes(8192));
    const identity = generateIdentity();
    expect(await invoke('backup', { tenant: 'pace', to: 's3://backups/pieces/pace.tar.zst.age', encryptTo: [identity.recipient.text] }, 600_000)).toMatchObject({ operation: 'backup', tenant: 'pace', files: 1200 });
    // The tenant the chain would replace.
    mkdirSync(path.join(base, 'pace-old'));
    writeFileSync(path.join(base, 'pace-old', 'keep.txt'), 'the old tenant\n');
    // Secrets Manager (the identity) and EventBridge (the completion events) in one stand-in.
    const events: Record<string, unknown>[] = [];
    const aws = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        const target = String(request.headers['x-amz-target']);
        response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        if (target === 'AWSEvents.PutEvents') {
          const { Entries } = JSON.parse(body) as { Entries: { Detail: string }[] };
          events.push(...Entries.map((entry) => JSON.parse(entry.Detail) as Record<string, unknown>));
          response.end(JSON.stringify({ FailedEntryCount: 0, Entries: Entries.map((_, i) => ({ EventId: `e-${events.length}-${i}` })) }));
          return;
        }
        const { SecretId } = JSON.parse(body) as { SecretId: string };
        response.end(JSON.stringify({ ARN: `arn:aws:secretsmanager:us-east-1:123456789012:secret:${SecretId}`, Name: SecretId, SecretString: `${formatIdentity(identity)}\n` }));
      });
    });
    await new Promise<void>((resolve) => aws.listen(0, '127.0.0.1', resolve));
    const awsEndpoint = `http://127.0.0.1:${(aws.address() as AddressInfo).port}`;
    try {
      // Pieces of 1,561 s (the margins, 25 min of them to continue, and a second: a few entries
      // each, on the looking clock) in the least abandon time, an hour: 2 pieces at most.
      const budget = DEFAULT_ABORT_MARGIN_MS + 1_500_000 + 1_000;
      const paced = await restoreBundleWith(
        {
          // The rates and abort margin at their defaults (an earlier test here set its own).
          OPENCLAW_RESTORE_MBPS: undefined,
          OPENCLAW_RESTORE_REPLAY_MBPS: undefined,
          OPENCLAW_ABORT_MARGIN_MS: undefined,
          // Entries staged fast enough that the footer's count (read up front from the last age
          // chunks) lets the chain start: only its pace can end it.
          OPENCLAW_RESTORE_ENTRIES_PER_SECOND: '1000000',
          OPENCLAW_ABANDON_AFTER_MS: String(MIN_ABANDON_AFTER_MS),
          OPENCLAW_CONTINUE_MARGIN_MS: '1500000', OPENCLAW_EVENT_BUS: 'openclaw-backup-events', AWS_ENDPOINT_URL_SECRETS_MANAGER: awsEndpoint,
          AWS_ENDPOINT_URL_EVENTBRIDGE: awsEndpoint,
        },
        'paced',
      );
      const request = { from: 's3://backups/pieces/pace.tar.zst.age', as: 'pace-old', force: true, identitySecret: 'openclaw-backup/backup-key' };
      const first = await invoke(paced, request, () => lookingContext(budget));
      expect(first).toMatchObject({ operation: 'restore', suspended: true, tenant: 'pace-old', pieces: 1 });
      const checkpoint = JSON.parse(readFileSync(restoreCheckpointPathFor(base, 'pace-old'), 'utf8').slice('OCRC1\n'.length)) as { storedRead: { bytes: number; total: number; entries?: number } };
      // Encrypted: the footer, inside the age stream, read up front from its last chunks.
      expect(checkpoint.storedRead.entries).toBe(1_202);
      // The first piece read under half the archive's stored bytes (what it read ahead of the entry it stopped at too), and fewer of its entries: the chain needs more than 2 pieces.
      expect(checkpoint.storedRead.total).toBeGreaterThan(9_000_000);
      expect(checkpoint.storedRead.bytes * 2).toBeLessThan(checkpoint.storedRead.total);
      const body = sqs.sent.shift()!;
      expect(await invoke(paced, { Records: [{ messageId: 'pace-2', body, eventSource: 'aws:sqs' }] }, () => lookingContext(budget))).toEqual({ batchItemFailures: [] });
      expect(sqs.sent).toEqual([]);
      expect(events).toEqual([
        expect.objectContaining({
          tenant: 'pace-old',
          operationId: first.chain,
          error: {
            code: 'ARCHIVE_LIMIT',
            message: expect.stringMatching(
              /^s3:\/\/backups\/pieces\/pace\.tar\.zst\.age cannot be restored in pieces in time: 1 piece got [\d.]+% through its [\d.]+ MiB and 1,202 entries \(the further of the two\) \(each replays what earlier pieces wrote before it writes\), so the chain needs at least [\d,]+ pieces, more than the 2 invocations of 15\d\d s that fit in 1 h \(OPENCLAW_ABANDON_AFTER_MS: the tenant is busy while a chain runs\): restore it with the CLI in local mode on a host that mounts the tenant volume; the chain ends here, what it had staged is removed, the slot holds what it held$/,
            ),
          },
        }),
      ]);
      expect(readdirSync(path.join(base, 'pace-old'))).toEqual(['keep.txt']);
      expect(readFileSync(path.join(base, 'pace-old', 'keep.txt'), 'utf8')).toBe('the old tenant\n');
      expect(readdirSync(base).filter((name) => name.startsWith('.openclaw-'))).toEqual([]);
    } finally {
      vi.stubEnv('OPENCLAW_EVENT_BUS', undefined);
      vi.stubEnv('OPENCLAW_ABANDON_AFTER_MS', undefined);
      vi.stubEnv('OPENCLAW_CONTINUE_MARGIN_MS', undefined);
      await new Promise((resolve) => aws.close(resolve));
    }
  }, 300_000);
});
