// The human tables of `tenants backups` and `tenants prune` for a prefix of very many backups:
// built with Math.max(...cells) and lines.push(...rows), they overflowed the call stack past
// about 120,000 rows ("Maximum call stack size exceeded") instead of printing.

import { describe, expect, it } from 'vitest';
import { describeListing } from '../cli/tenants-backups.js';
import { describePrune } from '../cli/tenants-prune.js';
import type { BackupEntry } from '../shared/catalog/backups.js';
import type { PruneDecision, PruneResult } from '../shared/catalog/prune.js';

const COUNT = 200_000;
const name = (index: number) => `acme/${String(index).padStart(6, '0')}.tar.zst`;

describe('tables of 200,000 backups', () => {
  it('tenants backups lists every one, one line each', () => {
    const backups: BackupEntry[] = Array.from({ length: COUNT }, (_, index) => ({
      location: `s3://backups/${name(index)}`,
      name: name(index),
      tenant: 'acme',
      bytes: 684 + (index % 7),
      modifiedAt: '2026-12-06T10:41:00.000Z',
      createdAt: '2026-12-06T10:41:00.667Z',
      content: 'archive',
    }));
    const lines = [...describeListing({ operation: 'backups', tenant: 'acme', location: 's3://backups/', backups, otherObjects: 0 })];
    expect(lines).toHaveLength(2 + COUNT);
    expect(lines[0]).toBe('200,000 backups of "acme" in s3://backups/, newest first:');
    expect(lines.at(-1)).toMatch(/^2026-12-06 10:41:00 UTC {2}\d+ B .*s3:\/\/backups\/acme\/199999\.tar\.zst$/);
  });

  it('tenants prune --dry-run shows every decision', () => {
    const decisions: PruneDecision[] = Array.from({ length: COUNT }, (_, index) => ({
      location: `s3://backups/${name(index)}`,
      createdAt: '2026-12-06T10:41:00.667Z',
      bytes: 684,
      reasons: ['beyond --keep-last 1'],
    })) as unknown as PruneDecision[];
    const result = { operation: 'prune', tenant: 'acme', location: 's3://backups/', dryRun: true, keep: [], remove: decisions, removed: 0, skipped: [], bytesRemoved: 0, notes: [] } as unknown as PruneResult;
    const lines = [...describePrune(result)];
    expect(lines.filter((line) => line.startsWith('  would remove'))).toHaveLength(COUNT);
  });
});
