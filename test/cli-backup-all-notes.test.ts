// backup --all's text report says each interrupted restore its run settled once. A tenant's own
// backup that settled nothing itself ('none': the run's sweep had done it, or failed and the
// backup swept on its own) hid the run's note in the text, while --json's top-level `recovered`
// kept it.

import { describe, expect, it } from 'vitest';
import { describeAll } from '../cli/tenants-backup.js';
import type { BackupAllResult } from '../shared/backup/backup-all.js';

function resultOfAcme(ownRecovery: string | undefined): BackupAllResult {
  return {
    operation: 'backup-all',
    template: '/backups/{tenant}.tar.zst',
    time: '2026-12-07T16:00:00.000Z',
    jobs: 1,
    succeeded: 1,
    failed: 0,
    durationMs: 1200,
    recovered: [{ tenant: 'acme', action: 'rolled-back' }],
    results: [
      {
        ok: true,
        tenant: 'acme',
        result: { bytes: 2048, archiveBytes: 900, durationMs: 1000, location: '/backups/acme.tar.zst', warnings: [], ...(ownRecovery !== undefined && { recovered: ownRecovery }) },
      },
    ],
  } as unknown as BackupAllResult;
}

const rollbackNote = '  note: an interrupted earlier restore of tenant "acme" was rolled back first: the tenant is as it was before that restore';

describe('backup --all text report of a restore its run rolled back', () => {
  it.each([['none'], ['removed-leftovers'], [undefined]])("says it once when the tenant's own backup settled nothing (%s)", (ownRecovery) => {
    const lines = describeAll(resultOfAcme(ownRecovery), '/srv/tenants');
    expect(lines.filter((line) => line.startsWith('  note: '))).toEqual([rollbackNote]);
  });

  it("says what the tenant's own backup settled when it settled something", () => {
    const lines = describeAll(resultOfAcme('finished-commit'), '/srv/tenants');
    expect(lines.filter((line) => line.startsWith('  note: '))).toEqual(['  note: an interrupted earlier restore of tenant "acme" was finished first: the restored tenant is in place']);
  });
});
