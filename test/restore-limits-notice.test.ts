// A backup of a tenant larger than a restore takes by default (more than 2,000,000 entries,
// more than 256 GiB of content) says so, with the flag a restore then needs: before, the
// backup said nothing and the restore, the day it was needed, refused the archive (exit 3).

import { mkdirSync, writeFileSync, linkSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { beyondDefaultLimits, DEFAULT_LIMITS } from '../shared/restore/limits.js';
import { runCli, tempDir } from './helpers/tree.js';

describe('an archive beyond the restore defaults', () => {
  it('is said so only past a default, naming the counts and the flags a restore and verify then need', () => {
    expect(beyondDefaultLimits(DEFAULT_LIMITS.maxEntries, DEFAULT_LIMITS.maxBytes)).toBeUndefined();
    expect(beyondDefaultLimits(2_000_053, 10)).toBe(
      'the archive holds 2,000,053 entries (the default --max-entries is 2,000,000), more than restore and verify take by default: give them --max-entries 2000053 (or more)',
    );
    const bytes = DEFAULT_LIMITS.maxBytes + 1;
    // Just past the default, in bytes: "256.0 GiB, the default 256.0 GiB" read as no more than it.
    expect(beyondDefaultLimits(5, bytes)).toBe(
      `the archive holds 274,877,906,945 bytes of content (the default --max-bytes is 256.0 GiB), more than restore and verify take by default: give them --max-bytes ${bytes} (or more)`,
    );
    expect(beyondDefaultLimits(5, 300 * 1024 ** 3)).toBe(
      'the archive holds 300.0 GiB of content (the default --max-bytes is 256.0 GiB), more than restore and verify take by default: give them --max-bytes 322122547200 (or more)',
    );
    expect(beyondDefaultLimits(2_000_001, bytes)).toMatch(/ entries .* and .* of content .*: give them --max-entries 2000001 --max-bytes \d+ \(or more\)$/);
  });

  describe('the entries it counts are those a verify counts', () => {
    const dir = tempDir();
    afterAll(() => dir.cleanup());
    const base = path.join(dir.path, 'tenants');
    const tenant = path.join(base, 'acme');
    mkdirSync(path.join(tenant, 'memory', 'deeper'), { recursive: true });
    for (let i = 0; i < 20; i++) writeFileSync(path.join(tenant, 'memory', `f${i}`), `file ${i}`);
    linkSync(path.join(tenant, 'memory', 'f0'), path.join(tenant, 'memory', 'deeper', 'second name'));
    symlinkSync('f1', path.join(tenant, 'memory', 'link'));
    const archive = path.join(dir.path, 'acme.tar.zst');

    it('the manifest totals and the manifest itself: the --max-entries the notice would name is the least a verify takes', () => {
      const backup = runCli(['--tenants-dir', base, '--json', 'tenants', 'backup', 'acme', '--to', archive]);
      expect(backup.status).toBe(0);
      const totals = JSON.parse(backup.stdout) as { files: number; directories: number; symlinks: number; notices: string[] };
      expect(totals.notices).toEqual([]);
      const entries = totals.files + totals.directories + totals.symlinks + 1;
      // What the backup hands beyondDefaultLimits when the tenant is large.
      expect(entries).toBe(21 + 3 + 1 + 1);
      expect(runCli(['--tenants-dir', base, 'tenants', 'verify', '--no-record', '--from', archive, '--max-entries', String(entries)]).status).toBe(0);
      const refused = runCli(['--tenants-dir', base, 'tenants', 'verify', '--no-record', '--from', archive, '--max-entries', String(entries - 1)]);
      expect(refused.status).toBe(3);
      expect(refused.stderr).toContain(`more than ${entries - 1} entries`);
    });
  });
});
