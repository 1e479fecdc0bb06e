// A backup of a tenant larger than a restore takes by default (more than 2,000,000 entries,
// more than 256 GiB of content) says so, with the flag a restore then needs: before, the
// backup said nothing and the restore, the day it was needed, refused the archive (exit 3).

import { mkdirSync, writeFileSync, linkSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { beyondDefaultLimits, DEFAULT_LIMITS, DEFAULT_MANIFEST_LIMITS, entriesToReadManifest, manifestLimits, MOST_MANIFEST_LIMITS, type ManifestLimits } from '../shared/restore/limits.js';
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

  it('names the --max-entries that reads a manifest past the default bounds (a tenant of more than 262,144 directories)', () => {
    expect(beyondDefaultLimits(900_004, 10, { directories: 300_001, entriesToRead: 2_288_873 })).toBe(
      'the archive holds a manifest of 300,001 directories (by default a restore reads 262,144 directories and notes, 32.0 MiB), more than restore and verify take by default: give them --max-entries 2288873 (or more)',
    );
    // The larger of what the entries and the manifest need.
    expect(beyondDefaultLimits(3_000_004, 10, { directories: 300_001, entriesToRead: 2_288_873 })).toMatch(/^the archive holds 3,000,004 entries .* and a manifest of 300,001 directories .*: give them --max-entries 3000004 \(or more\)$/);
    expect(beyondDefaultLimits(900_004, 10, { directories: 200_000, entriesToRead: undefined })).toBeUndefined();
  });

  describe('the manifest limits follow --max-entries', () => {
    it('are the defaults every earlier version read, up to the default --max-entries', () => {
      for (const maxEntries of [1, 1_000, DEFAULT_LIMITS.maxEntries]) expect(manifestLimits(maxEntries)).toEqual(DEFAULT_MANIFEST_LIMITS);
      expect(DEFAULT_MANIFEST_LIMITS).toEqual({ bytes: 32 * 1024 * 1024, containers: 262_144, values: 2_097_152 });
    });

    it('grow in proportion above it, up to 16 times at 32,000,000 entries (bytes below V8\'s longest string), and no further', () => {
      // Values by 3 for each object more (a directory's), not by 8: 16,777,152 short strings parsed into 1.7 GiB.
      expect(manifestLimits(4_000_000)).toEqual({ bytes: 64 * 1024 * 1024, containers: 524_288, values: 2_097_152 + 3 * 262_144 });
      // What was the most (2^21 objects: the duplicate check's 21-bit index) is now half way.
      expect(manifestLimits(16_000_000)).toEqual({ bytes: 256 * 1024 * 1024, containers: 2_097_152, values: 7_602_176 });
      expect(MOST_MANIFEST_LIMITS).toEqual({ bytes: 511 * 1024 * 1024, containers: 4_194_304, values: 13_893_632 });
      expect(MOST_MANIFEST_LIMITS.bytes).toBeLessThanOrEqual(2 ** 29 - 24);
      expect(manifestLimits(32_000_000)).toEqual(MOST_MANIFEST_LIMITS);
      expect(manifestLimits(Number.MAX_SAFE_INTEGER)).toEqual(MOST_MANIFEST_LIMITS);
    });

    it.each([
      [{ bytes: 10, containers: 262_145, values: 10 }],
      [{ bytes: 110 * 1_000_000, containers: 1_000_006, values: 3_000_010 }],
      [{ bytes: 33 * 1024 * 1024, containers: 10, values: 10 }],
      [{ bytes: 10, containers: 10, values: 5_000_000 }],
    ])('the least --max-entries named for %o reads it, one less does not', (size) => {
      const entries = entriesToReadManifest(size)!;
      const fits = (limits: ManifestLimits) => size.bytes <= limits.bytes && size.containers <= limits.containers && size.values <= limits.values;
      expect(fits(manifestLimits(entries))).toBe(true);
      expect(fits(manifestLimits(entries - 1))).toBe(false);
    });

    it('names none within the defaults, and says when none reads it', () => {
      expect(entriesToReadManifest(DEFAULT_MANIFEST_LIMITS)).toBeUndefined();
      expect(entriesToReadManifest({ ...MOST_MANIFEST_LIMITS })).toBe(32_000_000);
      expect(entriesToReadManifest({ ...MOST_MANIFEST_LIMITS, containers: MOST_MANIFEST_LIMITS.containers + 1 })).toBe(Infinity);
    });
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
