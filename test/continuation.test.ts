// The state a backup in pieces keeps between invocations (backup/continuation.ts): it round
// trips, a damaged file is refused rather than resumed from, the base-dir sweep leaves it
// alone while the tenant's recovery removes a killed save's temporary file, and while it
// exists the tenant is busy for other operations.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { abandonedChains, assertNoContinuation, continuationPathFor, loadContinuation, saveContinuation, type Continuation } from '../shared/backup/continuation.js';
import { FileSystemError, TenantBusyError } from '../shared/errors.js';
import { sweepBaseDir } from '../shared/tenant/base-dir-sweep.js';
import { recoverSlot } from '../shared/tenant/slot.js';
import { tempDir } from './helpers/tree.js';

const dir = tempDir();
afterAll(() => dir.cleanup());

function sample(tenant: string): Continuation {
  return {
    state: {
      version: 1,
      chain: 'ab'.repeat(12),
      tenant,
      location: `s3://backups/${tenant}.tar.zst`,
      createdAt: '2026-06-03T03:00:00.000Z',
      startedAt: '2026-06-03T03:00:00.000Z',
      savedAt: '2026-06-03T03:14:00.000Z',
      pieces: 1,
      archive: { resumeAfter: 'a/b', digest: { directories: [] }, skipped: [], warnings: [], totals: { files: 1, directories: 2, symlinks: 0, bytes: 3 }, contentBytes: 3, snapshotted: [], settled: [], waiting: [] },
      upload: { uploadId: 'u-1', parts: [{ PartNumber: 1, ETag: '"e"' }], bytes: 6_000_000, partSize: 8 * 1024 * 1024 },
    },
    pendingFrame: Buffer.from('frame bytes'),
    tail: Buffer.from('tail bytes'),
  };
}

describe('continuation state', () => {
  const base = path.join(dir.path, 'tenants');
  mkdirSync(path.join(base, 'acme'), { recursive: true });

  it('round trips, and refuses a damaged file', async () => {
    expect(await loadContinuation(base, 'acme')).toBeUndefined();
    await saveContinuation(base, sample('acme'));
    const loaded = (await loadContinuation(base, 'acme'))!;
    expect(loaded.state).toEqual(sample('acme').state);
    expect(loaded.pendingFrame.toString()).toBe('frame bytes');
    expect(loaded.tail.toString()).toBe('tail bytes');
    const file = continuationPathFor(base, 'acme');
    const whole = readFileSync(file);
    writeFileSync(file, whole.subarray(0, whole.length - 3));
    await expect(loadContinuation(base, 'acme')).rejects.toThrow(FileSystemError);
    await expect(loadContinuation(base, 'acme')).rejects.toThrow(/is damaged/);
    writeFileSync(file, whole);
  });

  it('makes the tenant busy, survives the sweep, and its temporary file goes with the tenant\'s recovery', async () => {
    await expect(assertNoContinuation(base, 'acme', 'restore')).rejects.toThrow(TenantBusyError);
    const temp = path.join(base, '.openclaw-continuation-acme.0123456789ab.tmp');
    writeFileSync(temp, 'half a save');
    await sweepBaseDir(base);
    expect(existsSync(continuationPathFor(base, 'acme'))).toBe(true);
    await recoverSlot(base, 'acme');
    expect(existsSync(temp)).toBe(false);
    expect(existsSync(continuationPathFor(base, 'acme'))).toBe(true);
  });

  it('names the chains whose state has not been saved for a while', async () => {
    expect(await abandonedChains(base, 60_000)).toEqual([]);
    expect(await abandonedChains(base, 60_000, Date.now() + 120_000)).toEqual(['acme']);
  });
});
