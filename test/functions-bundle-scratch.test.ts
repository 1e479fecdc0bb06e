// The backup function's bundle and the tenants' plaintext in its /tmp (functions/scratch-guard.ts).
// Lambda ends a timed-out invocation by resetting the sandbox: the runtime process is killed and
// /tmp is kept for the next one. Each sandbox is a process here, run with Node 24 (the runtime)
// on the bundle as the stack builds it: the first killed while its backup's SQLite snapshot lies
// in the scratch area (the crash point right after the copy is written), the next one invoked
// with anything at all. s3rver stands in for S3.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createSampleTenant } from '../scripts/sample-tenant.js';
import { bundleFunction } from './helpers/function-bundle.js';
import { S3RVER_ACCESS_KEY, startS3Server, type S3TestServer } from './helpers/s3-server.js';
import { repoRoot, tempDir } from './helpers/tree.js';

const node24 = (() => {
  if (Number(process.versions.node.split('.')[0]) >= 24) return process.execPath;
  const bundled = process.env.OPENCLAW_NODE24 ?? path.join(repoRoot, '.tools', 'node24', 'node_modules', '.bin', 'node');
  return existsSync(bundled) ? bundled : undefined;
})();

const dir = tempDir('openclaw-bundle-scratch-');
const base = path.join(dir.path, 'mnt-tenants');
const sandboxTmp = path.join(dir.path, 'sandbox-tmp');
const driver = path.join(dir.path, 'invoke.mjs');
let bundle: string;
let server: S3TestServer;

// One invocation in a fresh runtime process: the handler's answer on the last line of stdout.
const DRIVER = `
const [bundle, event, remaining] = process.argv.slice(2);
const { handler } = await import(bundle);
const deadline = Date.now() + Number(remaining);
const context = { awsRequestId: 'req-' + process.pid, functionName: 'openclaw-backup-backup', functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:openclaw-backup-backup', memoryLimitInMB: '2048',
  getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()) };
const answer = await handler(JSON.parse(event), context);
process.stdout.write('\\nANSWER ' + JSON.stringify(answer) + '\\n');
`;

/** Asynchronous: s3rver answers from this process. */
async function invoke(event: unknown, { remainingMs = 900_000, crashAt }: { remainingMs?: number; crashAt?: string } = {}): Promise<{ status: number | null; signal: NodeJS.Signals | null; answer?: Record<string, unknown> }> {
  const child = spawn(node24!, [driver, bundle, JSON.stringify(event), String(remainingMs)], {
    stdio: ['ignore', 'pipe', 'ignore'],
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      TMPDIR: sandboxTmp,
      OPENCLAW_TENANTS_DIR: base,
      OPENCLAW_BACKUP_BUCKET: 'backups',
      OPENCLAW_ALLOWED_ENDPOINTS: server.endpoint,
      OPENCLAW_STACK_PREFIX: 'openclaw-backup',
      OPENCLAW_CPUS: '1',
      POWERTOOLS_SERVICE_NAME: 'openclaw-backup',
      AWS_ACCESS_KEY_ID: S3RVER_ACCESS_KEY,
      AWS_SECRET_ACCESS_KEY: 'role-secret',
      AWS_REGION: 'us-east-1',
      ...(crashAt !== undefined && { OPENCLAW_TEST_CRASH_AT: crashAt }),
    },
  });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  const [status, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (code, killedBy) => resolve([code, killedBy])));
  const line = stdout.split('\n').find((text) => text.startsWith('ANSWER '));
  return { status, signal, ...(line !== undefined && { answer: JSON.parse(line.slice('ANSWER '.length)) as Record<string, unknown> }) };
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
  writeFileSync(driver, DRIVER);
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
