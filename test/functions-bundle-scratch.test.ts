// The backup function's bundle and the tenants' plaintext in its /tmp (functions/scratch-guard.ts).
// Lambda ends a timed-out invocation by resetting the sandbox: the runtime process is killed and
// /tmp is kept for the next one. Each sandbox is a process here, run with Node 24 (the runtime)
// on the bundle as the stack builds it: the first killed while its backup's SQLite snapshot lies
// in the scratch area (the crash point right after the copy is written), the next one invoked
// with anything at all. s3rver stands in for S3.

import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createSampleTenant } from '../scripts/sample-tenant.js';
import { backupFunctionEnvironment, bundleFunction, invokeInSandbox, node24, type SandboxInvocation } from './helpers/function-bundle.js';
import { startS3Server, type S3TestServer } from './helpers/s3-server.js';
import { tempDir } from './helpers/tree.js';

const dir = tempDir('openclaw-bundle-scratch-');
const base = path.join(dir.path, 'mnt-tenants');
const sandboxTmp = path.join(dir.path, 'sandbox-tmp');
let bundle: string;
let server: S3TestServer;

/** One invocation in a fresh runtime process (a sandbox) whose /tmp is sandboxTmp. */
function invoke(event: unknown, { remainingMs, crashAt }: { remainingMs?: number; crashAt?: string } = {}): Promise<SandboxInvocation> {
  const env = backupFunctionEnvironment(base, server.endpoint, { TMPDIR: sandboxTmp, ...(crashAt !== undefined && { OPENCLAW_TEST_CRASH_AT: crashAt }) });
  return invokeInSandbox(bundle, event, { requestId: `req-${Math.random().toString(36).slice(2)}`, ...(remainingMs !== undefined && { remainingMs }), env });
}

/** A backup killed where its snapshot of a tenant database lies in the sandbox's /tmp, as a timeout's reset kills it; the area's path. */
async function killedMidBackup(key: string): Promise<string> {
  const killed = await invoke({ tenant: 'acme', to: `s3://backups/killed/${key}.tar.zst`, storage: { endpoint: server.endpoint } }, { crashAt: 'backup:temp-copy-written' });
  expect(killed.signal ?? killed.status).toBe('SIGKILL');
  const areas = readdirSync(sandboxTmp).filter((name) => name.startsWith('openclaw-backup-'));
  expect(areas).toHaveLength(1);
  const area = path.join(sandboxTmp, areas[0]!);
  const [copy] = readdirSync(area);
  // The tenant's database, in plaintext.
  expect(readFileSync(path.join(area, copy!)).subarray(0, 16).toString('latin1')).toBe('SQLite format 3\0');
  return area;
}

beforeAll(async () => {
  if (node24 === undefined) return;
  createSampleTenant(path.join(base, 'acme'), { sessions: 1, memoryRows: 20, mediaFiles: 0 });
  mkdirSync(sandboxTmp);
  server = await startS3Server({ bucket: 'backups' });
  bundle = await bundleFunction('backup', path.join(dir.path, 'asset'));
}, 120_000);

afterAll(async () => {
  await server?.dispose();
  dir.cleanup();
});

describe.skipIf(node24 === undefined)("the backup bundle's /tmp after an invocation killed mid-backup (a timeout's reset)", () => {
  // Only the next backup with time to spare had removed it: a dry run, a batch whose message
  // did not read, or a backup started with little time left (the leftovers' share: none) each
  // left the killed backup's SQLite snapshot in /tmp, tried from the bundle, and a stack with
  // encryptTo keeps its backups' snapshots there too (on EFS).
  it.each([
    ['a dry run', { tenant: 'acme', to: 's3://backups/next/dry.tar.zst', dryRun: true }, 900_000, { operation: 'backup-plan' }],
    ['a work queue batch whose message does not read', { Records: [{ messageId: 'm1', body: 'not json', eventSource: 'aws:sqs', attributes: { ApproximateReceiveCount: '1' } }] }, 900_000, { batchItemFailures: [] }],
    ['a backup with only the least time a backup needs left', { tenant: 'acme', to: 's3://backups/next/short.tar.zst' }, 31_500, { operation: 'backup', tenant: 'acme' }],
  ])('is rid of the killed backup\'s plaintext by the next invocation, whatever it is: %s', async (_name, event, remainingMs, answer) => {
    const area = await killedMidBackup(_name.replace(/\W+/g, '-'));
    const next = await invoke('tenant' in event ? { ...event, storage: { endpoint: server.endpoint } } : event, { remainingMs });
    expect(next.answer).toMatchObject(answer);
    expect(existsSync(area)).toBe(false);
    expect(readdirSync(sandboxTmp)).toEqual([]);
  });
});
