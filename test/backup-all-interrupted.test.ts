// `tenants backup --all` interrupted (Ctrl-C) between backups: the error says which tenants
// it left backed up, and which not; it said only "interrupted by SIGINT".

import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { AbortedError } from '../shared/errors.js';
import { localOperations } from '../shared/operations.js';
import { makeTenants } from './helpers/backups.js';
import { tempDir } from './helpers/tree.js';

const dir = tempDir('openclaw-all-interrupted-');
const tenantsDir = path.join(dir.path, 'tenants');

beforeAll(() => makeTenants(tenantsDir, ['acme', 'beta', 'gamma', 'delta']));
afterAll(() => dir.cleanup());

it('names the tenants backed up before the interruption, those never started, and how to back them up', async () => {
  const interrupt = new AbortController();
  const run = localOperations(tenantsDir).backupAll(
    { to: path.join(dir.path, 'out', '{tenant}.tar.zst'), jobs: 1 },
    {
      signal: interrupt.signal,
      // Ctrl-C as the second backup finishes: the third and fourth are never started.
      onProgress: (progress) => {
        if (progress.done === 2) interrupt.abort(new AbortedError('interrupted by SIGINT'));
      },
    },
  );
  await expect(run).rejects.toThrow(new AbortedError('interrupted by SIGINT: 2 of 4 tenants backed up (acme, beta), 2 not started (delta, gamma): run it again with --skip-existing to back up the rest'));
});

it('names the backups it stopped as interrupted, not failed (which read as if they had failed on their own)', async () => {
  const interrupt = new AbortController();
  const run = localOperations(tenantsDir).backupAll(
    { to: path.join(dir.path, 'stopped', '{tenant}.tar.zst'), jobs: 2 },
    {
      signal: interrupt.signal,
      // Ctrl-C as the second backup starts: both running ones are stopped, two never started.
      onProgress: (progress) => {
        if (progress.running.length === 2) interrupt.abort(new AbortedError('interrupted by SIGINT'));
      },
    },
  );
  await expect(run).rejects.toThrow(new AbortedError('interrupted by SIGINT: 0 of 4 tenants backed up, 2 interrupted (acme, beta), 2 not started (delta, gamma): run it again with --skip-existing to back up the rest'));
});

it('names every tenant left to back up by name, however many: a few of those backed up', async () => {
  const many = path.join(dir.path, 'many');
  const names = Array.from({ length: 14 }, (_, index) => `t${String(index + 1).padStart(2, '0')}`);
  makeTenants(many, names);
  const interrupt = new AbortController();
  const run = localOperations(many).backupAll(
    { to: path.join(dir.path, 'many-out', '{tenant}.tar.zst'), jobs: 1 },
    {
      signal: interrupt.signal,
      // Ctrl-C as the twelfth backup finishes: 12 backed up (10 named), 2 never started.
      onProgress: (progress) => {
        if (progress.done === 12) interrupt.abort(new AbortedError('interrupted by SIGINT'));
      },
    },
  );
  await expect(run).rejects.toThrow(new AbortedError('interrupted by SIGINT: 12 of 14 tenants backed up (t01, t02, t03, t04, t05, t06, t07, t08, t09, t10, and 2 more), 2 not started (t13, t14): run it again with --skip-existing to back up the rest'));

  const stopped = new AbortController();
  const early = localOperations(many).backupAll(
    { to: path.join(dir.path, 'many-early', '{tenant}.tar.zst'), jobs: 1 },
    {
      signal: stopped.signal,
      onProgress: (progress) => {
        if (progress.done === 1) stopped.abort(new AbortedError('interrupted by SIGINT'));
      },
    },
  );
  await expect(early).rejects.toThrow(new AbortedError(`interrupted by SIGINT: 1 of 14 tenants backed up (t01), 13 not started (${names.slice(1).join(', ')}): run it again with --skip-existing to back up the rest`));
});
