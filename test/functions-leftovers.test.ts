// The functions under Lambda's time limit with big leftovers of interrupted operations in the
// base dir, and a work queue message delivered twice. A temp dir stands for the EFS mount,
// s3rver for S3, a fake context for the deadline.

import { Logger } from '@aws-lambda-powertools/logger';
import { existsSync, mkdirSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

import { createSampleTenant } from '../scripts/sample-tenant.js';
import type { FunctionConfig } from '../shared/control-plane/function-config.js';
import { encodeWorkMessage, type WorkMessage } from '../shared/control-plane/work-queue.js';
import { DEFAULT_CONTINUE_MARGIN_MS } from '../shared/control-plane/function-config.js';
import { continuationPathFor } from '../shared/backup/continuation.js';
import { hostId } from '../shared/tenant/process-owner.js';
import { TempArea } from '../shared/backup/temp-area.js';
import type { BackupSide } from '../functions/handler-deps.js';
import { acquireTenantLock } from '../shared/tenant/lock.js';
import { backupHandler } from '../functions/backup-handler.js';
import { listHandler } from '../functions/list-handler.js';
import { MIN_BACKUP_TIME_MS } from '../functions/invocation.js';
import { restoreHandler } from '../functions/restore-handler.js';
import type { LambdaContext } from '../functions/lambda-context.js';
import type { OperationMetrics } from '../functions/metrics.js';
import { workQueueHandler } from '../functions/queue-handler.js';
import { restoreKilledMidCommit } from './helpers/killed-restore.js';
import { tempDir } from './helpers/tree.js';
import { S3RVER_ACCESS_KEY, startS3Server, type S3TestServer } from './helpers/s3-server.js';
import { lambdaContext } from './helpers/lambda-context.js';

const dir = tempDir('openclaw-functions-leftovers-');
const base = path.join(dir.path, 'mnt-tenants');
const logger = new Logger({ serviceName: 'openclaw-backup-test' });
let server: S3TestServer;
let config: FunctionConfig;
let logged: string[] = [];

function fakeContext(remainingMs: number): LambdaContext {
  const deadline = Date.now() + remainingMs;
  return lambdaContext({ awsRequestId: 'req-leftovers', remaining: () => Math.max(0, deadline - Date.now()) });
}

/** A trash an interrupted restore --force left: `files` files in directories of 100. */
function leftTrash(tenant: string, files: number): string {
  const trash = path.join(base, `.openclaw-trash-${tenant}-${'0123456789ab'}`);
  for (let d = 0; d * 100 < files; d++) {
    mkdirSync(path.join(trash, `d${d}`), { recursive: true });
    for (let i = 0; i < 100 && d * 100 + i < files; i++) writeFileSync(path.join(trash, `d${d}`, `f${i}`), '');
  }
  return trash;
}

beforeAll(async () => {
  createSampleTenant(path.join(base, 'acme'), { sessions: 1, memoryRows: 5, mediaFiles: 0 });
  createSampleTenant(path.join(base, 'beta'), { sessions: 1, memoryRows: 5, mediaFiles: 0 });
  server = await startS3Server({ bucket: 'backups' });
  config = { tenantsDir: base, backupBucket: 'backups', allowedSourceBuckets: [], allowedEndpoints: [server.endpoint], stackPrefix: 'openclaw-backup', abortMarginMs: 1000 };
  vi.stubEnv('AWS_ACCESS_KEY_ID', S3RVER_ACCESS_KEY);
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'role-secret');
  vi.stubEnv('AWS_REGION', 'us-east-1');
});
afterAll(async () => {
  vi.unstubAllEnvs();
  await server.dispose();
  dir.cleanup();
});
beforeEach(() => {
  logged = [];
  for (const stream of [process.stdout, process.stderr]) {
    vi.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
      logged.push(String(chunk));
      return true;
    });
  }
  return () => vi.restoreAllMocks();
});

describe('the backup function with big leftovers in the base dir', () => {
  // A trash of 20,000 files took a backup invocation's whole time on EFS (and past its end:
  // tried with the built function, 2.7 s into a 2 s invocation on local disk) before the
  // backup began. The leftovers now get half of what is left beyond what the backup needs.
  it('leaves them past their share of the invocation, backs up, and removes them in the next', async () => {
    const other = leftTrash('beta', 300);
    const own = leftTrash('acme', 300);
    const backup = backupHandler({ config, logger, publish: async () => undefined });
    const request = { tenant: 'acme', to: 's3://backups/leftovers/acme.tar.zst', storage: { endpoint: server.endpoint } };
    // No share for leftovers: all of it is what a backup needs (the abort margin and MIN_BACKUP_TIME_MS).
    const result = await backup(request, fakeContext(config.abortMarginMs + MIN_BACKUP_TIME_MS));
    expect(result).toMatchObject({ operation: 'backup', tenant: 'acme', recovered: 'removed-leftovers' });
    expect((result as unknown as { notices: string[] }).notices).toEqual([expect.stringMatching(/^what an interrupted operation left of tenant "acme" \(.*\) was not all removed in the time given to it: the next command on the tenant goes on removing it$/)]);
    expect(readdirSync(path.join(other, 'd0'))).toHaveLength(100);
    expect(readdirSync(path.join(own, 'd0'))).toHaveLength(100);
    expect(logged.some((line) => line.includes('the sweep of leftovers stopped at its share of the invocation'))).toBe(true);

    const next = await backup({ ...request, to: 's3://backups/leftovers/acme-2.tar.zst' }, fakeContext(900_000));
    expect(next).toMatchObject({ operation: 'backup', notices: [] });
    expect(existsSync(other)).toBe(false);
    expect(existsSync(own)).toBe(false);
  });
});

describe('the backup function with many broken chains or dead scratch areas', () => {
  // Each broken chain costs an S3 abort and an event: from the built function, 5,000 of them
  // answered 95 s into a 2 s invocation (s3rver). They now get a share of their own.
  it('ends the broken chains within their share of the invocation, the rest in the next', async () => {
    const events: { ok: boolean; detail: { tenant: string | null } }[] = [];
    const queue: WorkMessage[] = [];
    const backup = backupHandler({ config, logger, publish: async (event) => void events.push(event as never), continueBackup: async (message) => void queue.push(message) });
    const dayAgo = new Date(Date.now() - 25 * 60 * 60 * 1000);
    const broken = ['chain-a', 'chain-b', 'chain-c'];
    for (const tenant of broken) {
      mkdirSync(path.join(base, tenant));
      // A state nothing can read: ended as a broken chain all the same, with no S3 call.
      writeFileSync(continuationPathFor(base, tenant), 'damaged state');
      utimesSync(continuationPathFor(base, tenant), dayAgo, dayAgo);
    }
    const states = () => broken.filter((tenant) => existsSync(continuationPathFor(base, tenant)));
    try {
      const request = { tenant: 'acme', to: 's3://backups/chains/acme.tar.zst', storage: { endpoint: server.endpoint } };
      // No share for leftovers: all of it is what a backup that can continue needs.
      expect(await backup(request, fakeContext(config.abortMarginMs + DEFAULT_CONTINUE_MARGIN_MS))).toMatchObject({ operation: 'backup', tenant: 'acme' });
      expect(states()).toEqual(broken);
      expect(events.filter((event) => !event.ok)).toEqual([]);
      expect(logged.some((line) => line.includes('the ending of broken backup chains stopped at its share of the invocation'))).toBe(true);

      expect(await backup({ ...request, to: 's3://backups/chains/acme-2.tar.zst' }, fakeContext(900_000))).toMatchObject({ operation: 'backup', tenant: 'acme' });
      expect(states()).toEqual([]);
      expect(events.filter((event) => !event.ok).map((event) => event.detail.tenant).sort()).toEqual(broken);
      expect(queue).toEqual([]);
    } finally {
      for (const tenant of broken) rmSync(path.join(base, tenant), { recursive: true, force: true });
    }
  });

  // Every invocation first removes dead backups' scratch areas from os.tmpdir() (on Lambda,
  // the function's /tmp, which a timeout's reset keeps): SQLite snapshots of tenants, in
  // plaintext for an encrypted backup too. They had waited for a backup with time to spare
  // beyond its own (the leftovers' share); they now go first, within the invocation's deadline
  // (functions/scratch-guard.ts; the bundle: functions-bundle-scratch).
  it('removes dead scratch areas from its tmpdir first, even with only the time a backup needs left', async () => {
    const tmp = path.join(dir.path, 'function-tmp');
    mkdirSync(tmp);
    // Areas of processes of this host that are gone (no pid is that high).
    const areas = [0, 1, 2].map((i) => path.join(tmp, `openclaw-backup-${99_000_000 + i}-12345-${hostId()}-dead0${i}`));
    for (const area of areas) {
      mkdirSync(area, { mode: 0o700 });
      writeFileSync(path.join(area, '1-snapshot.sqlite'), 'tenant data');
    }
    const before = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    try {
      const backup = backupHandler({ config, logger, publish: async () => undefined });
      const request = { tenant: 'acme', to: 's3://backups/scratch/acme.tar.zst', storage: { endpoint: server.endpoint } };
      expect(await backup(request, fakeContext(config.abortMarginMs + MIN_BACKUP_TIME_MS))).toMatchObject({ operation: 'backup', tenant: 'acme' });
      expect(readdirSync(tmp)).toEqual([]);
    } finally {
      if (before === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = before;
    }
  });

  // A backup that does not stop at its deadline (a read of the tenant volume that hangs: no
  // signal stops it) kept its snapshot in /tmp until it got past that read, or, once Lambda
  // reset the sandbox at the timeout, until the next invocation. It is removed under it when
  // the deadline's cleanup must be done by, and the backup makes no copy there again.
  // The sweep runs before the handler adds its invocation's context to the logger: in a warm
  // sandbox its warning carried the previous invocation's request id (Powertools keeps it).
  it("says a failed sweep of its tmpdir under the invocation's own request id, not the previous one's", async () => {
    const before = process.env.TMPDIR;
    try {
      const backup = backupHandler({ config, logger, publish: async () => undefined });
      const request = { tenant: 'acme', to: 's3://backups/scratch/ids.tar.zst', dryRun: true, storage: { endpoint: server.endpoint } };
      await backup(request, lambdaContext({ awsRequestId: 'req-earlier' }));
      process.env.TMPDIR = path.join(dir.path, 'no-such-tmpdir');
      logged = [];
      await backup(request, lambdaContext({ awsRequestId: 'req-this-one' }));
      const warning = logged.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => String(line.message).startsWith('the scratch areas of stopped backups'));
      expect(warning).toMatchObject({ level: 'WARN', function_request_id: 'req-this-one' });
    } finally {
      if (before === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = before;
    }
  });

  it("removes a stuck backup's scratch area at the deadline's cleanup time, while the backup still runs", async () => {
    const tmp = path.join(dir.path, 'function-tmp-stuck');
    mkdirSync(tmp);
    const before = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    let release = () => {};
    const stuck = new Promise<void>((resolve) => (release = resolve));
    let snapshot = '';
    const operations = {
      backup: async () => {
        const temp = TempArea.underTmpdir();
        snapshot = await temp.file('snapshot');
        writeFileSync(snapshot, 'tenant data');
        await stuck; // deaf to the deadline's signal
        await temp.file('next');
        throw new Error('unreachable: the area was removed');
      },
      planBackup: async () => {
        throw new Error('not asked');
      },
    } as unknown as BackupSide;
    try {
      const quick: FunctionConfig = { ...config, abortMarginMs: 400 };
      const backup = backupHandler({ config: quick, logger, publish: async () => undefined, operations });
      const answer = backup({ tenant: 'acme', to: 's3://backups/scratch/stuck.tar.zst', storage: { endpoint: server.endpoint } }, fakeContext(3_000));
      await vi.waitFor(() => expect(snapshot).not.toBe(''));
      // Another invocation in the same process (a dry run) ends meanwhile: it removes its own areas, not this one's.
      expect(await backup({ tenant: 'acme', to: 's3://backups/scratch/other.tar.zst', dryRun: true }, fakeContext(900_000))).toMatchObject({ ok: false });
      expect(existsSync(snapshot)).toBe(true);
      await vi.waitFor(() => expect(readdirSync(tmp)).toEqual([]), { timeout: 5_000, interval: 20 });
      release();
      expect(await answer).toMatchObject({ ok: false, error: { message: expect.stringContaining("scratch directory was removed at the invocation's deadline") } });
      expect(readdirSync(tmp)).toEqual([]);
    } finally {
      release();
      if (before === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = before;
    }
  });
});

describe('the restore function with big leftovers in the base dir', () => {
  // Its sweep before the restore had no bound either: the built function answered 3.4 s into
  // a 2 s invocation over a trash of 20,000 files, and its size check, made before the sweep,
  // counted on time the sweep then took.
  it('leaves them past their share of the invocation, restores, and removes them in the next', async () => {
    const publish = async () => undefined;
    const stored = await backupHandler({ config, logger, publish })({ tenant: 'beta', to: 's3://backups/leftovers/beta.tar.zst', storage: { endpoint: server.endpoint } }, fakeContext(900_000));
    expect(stored).toMatchObject({ operation: 'backup' });
    const other = leftTrash('delta', 300);
    const own = leftTrash('beta-copy', 300);
    const restore = restoreHandler({ config, logger, publish });
    const request = { from: 's3://backups/leftovers/beta.tar.zst', as: 'beta-copy', storage: { endpoint: server.endpoint } };
    const result = await restore(request, fakeContext(config.abortMarginMs + MIN_BACKUP_TIME_MS));
    expect(result).toMatchObject({ operation: 'restore', tenant: 'beta-copy', recovered: 'removed-leftovers' });
    expect((result as unknown as { notices: string[] }).notices).toContainEqual(expect.stringMatching(/^what an interrupted operation left of tenant "beta-copy" .* was not all removed in the time given to it/));
    expect(readdirSync(path.join(other, 'd0'))).toHaveLength(100);
    expect(readdirSync(path.join(own, 'd0'))).toHaveLength(100);

    expect(await restore({ ...request, force: true }, fakeContext(900_000))).toMatchObject({ operation: 'restore', replaced: true });
    expect(existsSync(other)).toBe(false);
    expect(existsSync(own)).toBe(false);
    rmSync(path.join(base, 'beta-copy'), { recursive: true });
  });
});

describe('the list function with big leftovers in the base dir', () => {
  // The fan-out's page of names swept the base dir with no deadline: 20,000 files of trash
  // answered 2.4 s into a 1 s invocation (the built function), so the fan-out got no page.
  it('answers the fan-out its page of names at the deadline, the sweep left to the next listing', async () => {
    const trash = leftTrash('gamma', 300);
    const list = listHandler({ config, logger });
    expect(await list({ names: true, limit: 1000 }, fakeContext(0))).toEqual({ tenants: ['acme', 'beta'] });
    expect(readdirSync(path.join(trash, 'd0'))).toHaveLength(100);
    expect(await list({ names: true, ownership: true }, fakeContext(0))).toMatchObject({ tenants: ['acme', 'beta'] });
    expect(await list({ names: true }, fakeContext(0))).toEqual({ tenants: ['acme', 'beta'] });
    expect(readdirSync(path.join(trash, 'd0'))).toHaveLength(100);
    expect(await list({ names: true, limit: 1000 }, fakeContext(60_000))).toEqual({ tenants: ['acme', 'beta'] });
    expect(existsSync(trash)).toBe(false);
  });

  // A restore --force killed between its renames leaves the slot absent (old tree aside, new
  // one staged) until a sweep moves the new one in. A page whose sweep stopped before reaching
  // that tenant left it out: the fan-out did not back it up, and the monitor did not check it.
  it('names a tenant a killed restore left mid-commit though the sweep stopped before it', async () => {
    restoreKilledMidCommit(base, 'gamma');
    const list = listHandler({ config, logger });
    expect(await list({ names: true, limit: 1000 }, fakeContext(0))).toEqual({ tenants: ['acme', 'beta', 'gamma'] });
    expect(await list({ names: true, ownership: true }, fakeContext(0))).toMatchObject({ tenants: ['acme', 'beta', 'gamma'] });
    expect(await list({ names: true }, fakeContext(0))).toEqual({ tenants: ['acme', 'beta', 'gamma'] });
    expect(existsSync(path.join(base, 'gamma'))).toBe(false);
    // With time, the sweep finishes the commit: the restored tree in the slot, nothing left beside it.
    expect(await list({ names: true, limit: 1000 }, fakeContext(60_000))).toEqual({ tenants: ['acme', 'beta', 'gamma'] });
    expect(readdirSync(base).filter((name) => name.includes('gamma'))).toEqual(['gamma']);
    rmSync(path.join(base, 'gamma'), { recursive: true });
  });

  // doctor --stack's ownership scan lists the base dir too: what its sweep settled first was logged, never answered, and doctor said nothing of it.
  it('answers doctor\'s ownership scan with what its listing settled first', async () => {
    restoreKilledMidCommit(base, 'gamma');
    const list = listHandler({ config, logger });
    expect(await list({ ownership: true }, fakeContext(60_000))).toMatchObject({ tenants: ['acme', 'beta', 'gamma'], recovered: [{ tenant: 'gamma', action: 'finished-commit' }] });
    // Said once: the next scan found nothing to settle.
    expect(await list({ ownership: true }, fakeContext(60_000))).not.toHaveProperty('recovered');
    rmSync(path.join(base, 'gamma'), { recursive: true });
  });
});

describe('a work queue message delivered twice', () => {
  // SQS delivers a message twice now and then: the second delivery found the tenant locked by
  // the first, which was backing up to the same key, and failed (TENANT_BUSY), raising the
  // backup-failures alarm for a backup that succeeded.
  it('is skipped while the first delivery backs up to the same archive, a failure while another operation holds the tenant', async () => {
    const records: Parameters<OperationMetrics['record']>[0][] = [];
    const metrics: OperationMetrics = { record: (record) => void records.push(record), count: () => undefined };
    const events: unknown[] = [];
    const queued = workQueueHandler({ config, logger, publish: async (event) => void events.push(event), metrics });
    const message = (to: string) => ({
      Records: [
        {
          messageId: `m-${to}`,
          eventSource: 'aws:sqs',
          attributes: { ApproximateReceiveCount: '1' },
          body: encodeWorkMessage({ version: 1, kind: 'backup', tenant: 'beta', to, run: { id: 'run-1', time: '2026-06-03T01:00:00.000Z', template: 's3://backups/{tenant}/x.tar.zst' } }),
        },
      ],
    });
    const to = 's3://backups/twice/beta.tar.zst';
    const first = await acquireTenantLock(base, 'beta', 'backup', { target: to });
    try {
      expect(await queued(message(to), fakeContext(900_000))).toEqual({ batchItemFailures: [] });
      expect(records).toEqual([expect.objectContaining({ outcome: 'skipped', errorCode: 'TENANT_BUSY', reason: expect.stringMatching(/^the same backup \(this tenant to this archive\) is running in another invocation/) })]);
      expect(events).toEqual([]);
      expect(logged.some((line) => line.includes('"backup skipped"'))).toBe(true);
      // A backup of the tenant to another archive (or a restore) holding it is a real failure: it comes back.
      expect(await queued(message('s3://backups/twice/other.tar.zst'), fakeContext(900_000))).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-s3://backups/twice/other.tar.zst' }] });
      expect(records[1]).toMatchObject({ outcome: 'failed', errorCode: 'TENANT_BUSY' });
    } finally {
      await first.release();
    }
    const restore = await acquireTenantLock(base, 'beta', 'restore', { target: to });
    try {
      expect(await queued(message(to), fakeContext(900_000))).toMatchObject({ batchItemFailures: [{ itemIdentifier: `m-${to}` }] });
    } finally {
      await restore.release();
    }
  });
});
