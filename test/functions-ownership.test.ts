// The ownership scan of the list function (`{ ownership: true }`, used by `openclaw doctor`):
// the owner of the base dir and of each tenant root, mismatches below them, pty/ skipped,
// symlinks not followed, and an incomplete scan said to be one.

import { chownSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { listHandler } from '../functions/list-handler.js';
import type { LambdaContext } from '../functions/lambda-context.js';
import { scanOwnership } from '../shared/tenant/ownership.js';
import { tempDir } from './helpers/tree.js';

const dir = tempDir('openclaw-ownership-');
const base = path.join(dir.path, 'tenants');
const uid = process.getuid!();
const gid = process.getgid!();
const isRoot = uid === 0;
const OTHER = 4321;

const context: LambdaContext = {
  awsRequestId: 'r',
  functionName: 'openclaw-backup-list',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:openclaw-backup-list',
  memoryLimitInMB: '256',
  getRemainingTimeInMillis: () => 60_000,
};

beforeAll(() => {
  for (const tenant of ['acme', 'beta']) {
    mkdirSync(path.join(base, tenant, 'memory'), { recursive: true });
    writeFileSync(path.join(base, tenant, 'config.json'), '{}');
    writeFileSync(path.join(base, tenant, 'memory', 'main.sqlite'), 'x');
    mkdirSync(path.join(base, tenant, 'pty'));
    writeFileSync(path.join(base, tenant, 'pty', 'session'), 'ephemeral');
  }
  symlinkSync('/etc', path.join(base, 'acme', 'outside'));
});
afterAll(() => dir.cleanup());

describe('ownership scan', () => {
  it('reports the owner of the base dir and each tenant, and no mismatch when all is the expected user\'s', async () => {
    const report = await scanOwnership(base, ['acme', 'beta'], { expected: { uid, gid } });
    expect(report).toEqual({
      expected: { uid, gid },
      base: { uid, gid, mode: expect.stringMatching(/^[0-7]{3,4}$/) },
      // acme: root, config.json, memory/, memory/main.sqlite, outside (the link itself); pty/ skipped
      tenants: [
        { name: 'acme', uid, gid, entries: 5, mismatched: 0 },
        { name: 'beta', uid, gid, entries: 4, mismatched: 0 },
      ],
      mismatched: 0,
      samples: [],
      complete: true,
    });
  });

  it.runIf(isRoot)('finds a file another user owns under a name that is not UTF-8 (it was lstat\'ed as U+FFFD and missed)', async () => {
    const tenant = path.join(dir.path, 'raw-names');
    mkdirSync(path.join(tenant, 'gamma'), { recursive: true });
    const stray = Buffer.from(`${tenant}/gamma/caf\xe9`, 'latin1');
    writeFileSync(stray, 'x');
    chownSync(stray, OTHER, OTHER);
    const report = await scanOwnership(tenant, ['gamma'], { expected: { uid, gid } });
    expect(report.tenants).toEqual([{ name: 'gamma', uid, gid, entries: 2, mismatched: 1 }]);
    expect(report.samples).toEqual([{ path: 'gamma/caf\udce9', uid: OTHER, gid: OTHER }]);
  });

  it('counts every entry as mismatched against another identity, with samples', async () => {
    const report = await scanOwnership(base, ['acme', 'beta'], { expected: { uid: uid + 1, gid } });
    expect(report.mismatched).toBe(1 + 5 + 4);
    expect(report.tenants.map((tenant) => tenant.mismatched)).toEqual([5, 4]);
    expect(report.samples).toHaveLength(5);
    expect(report.samples[0]).toEqual({ path: '.', uid, gid });
    expect(report.samples.map((sample) => sample.path)).toContain('acme');
  });

  it.runIf(isRoot)('finds the one file another user owns', async () => {
    const stray = path.join(base, 'beta', 'memory', 'main.sqlite');
    chownSync(stray, OTHER, OTHER);
    try {
      const report = await scanOwnership(base, ['acme', 'beta']);
      expect(report.expected).toEqual({ uid, gid }); // the base dir's owner, when none is given
      expect(report.mismatched).toBe(1);
      expect(report.tenants.find((tenant) => tenant.name === 'beta')).toMatchObject({ uid, gid, mismatched: 1 });
      expect(report.samples).toEqual([{ path: 'beta/memory/main.sqlite', uid: OTHER, gid: OTHER }]);
    } finally {
      chownSync(stray, uid, gid);
    }
  });

  it('says so when it stops early', async () => {
    const limited = await scanOwnership(base, ['acme', 'beta'], { maxEntries: 3 });
    expect(limited.complete).toBe(false);
    const aborted = await scanOwnership(base, ['acme', 'beta'], { signal: AbortSignal.abort() });
    expect(aborted).toMatchObject({ complete: false, tenants: [] });
  });
});

describe('list function with { ownership: true }', () => {
  const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });
  const list = listHandler({ config: { tenantsDir: base, allowedSourceBuckets: [], abortMarginMs: 1000 }, logger });

  it('answers the names and the ownership report', async () => {
    const answer = (await list({ ownership: true, expectUid: uid, expectGid: gid }, context)) as unknown as { tenants: string[]; ownership: { mismatched: number; complete: boolean } };
    expect(answer.tenants).toEqual(['acme', 'beta']);
    expect(answer.ownership).toMatchObject({ expected: { uid, gid }, mismatched: 0, complete: true });
  });

  it('keeps the old requests as they were, and refuses IDs without ownership', async () => {
    expect(await list({ names: true }, context)).toEqual({ tenants: ['acme', 'beta'] });
    expect(await list({ expectUid: 1000 }, context)).toMatchObject({ ok: false, error: { code: 'INVALID_REQUEST', message: expect.stringMatching(/goes with "ownership": true/) } });
    expect(await list({ ownership: true, expectUid: -1 }, context)).toMatchObject({ ok: false, error: { code: 'INVALID_REQUEST', message: expect.stringMatching(/POSIX ID/) } });
    expect(await list({ ownership: 'yes' }, context)).toMatchObject({ ok: false, error: { code: 'INVALID_REQUEST' } });
  });
});
