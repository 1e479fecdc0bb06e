import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { firstListedTwice, MANIFEST_FORMAT, MANIFEST_FORMAT_VERSION, parseManifest } from '../shared/archive/manifest.js';
import { CorruptArchiveError } from '../shared/errors.js';

const SHA = 'ab'.repeat(32);

/** A manifest listing `directories`, with `fields` put over this version's (undefined leaves a field out). */
function manifestBytes(directories: readonly object[], fields: Record<string, unknown> = {}): Buffer {
  return Buffer.from(
    JSON.stringify({
      format: MANIFEST_FORMAT,
      formatVersion: MANIFEST_FORMAT_VERSION,
      tenant: 'acme',
      createdAt: '2026-12-06T13:00:00.000Z',
      tool: { name: 'openclaw', version: '0.1.0' },
      totals: { files: 0, directories: directories.length, symlinks: 0, bytes: 0 },
      directories,
      skipped: [],
      warnings: [],
      ...fields,
    }),
  );
}

/** What parseManifest refused before: the first path seen again, walking the list in order. */
function firstSeenAgain(paths: readonly string[]): string | undefined {
  const seen = new Set<string>();
  for (const path of paths) {
    if (seen.has(path)) return path;
    seen.add(path);
  }
  return undefined;
}

function refusal(bytes: Buffer): string | undefined {
  try {
    parseManifest(bytes);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(CorruptArchiveError);
    return (error as Error).message;
  }
}

describe('a manifest that lists a directory twice', () => {
  it('names the path whose second listing comes first, as a walk in order would', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('', 'a', 'b', 'a/b', 'b/a', 'é', '\u{1F600}', 'x'.repeat(40)), { maxLength: 12 }), (paths) => {
        const twice = firstSeenAgain(paths);
        const message = refusal(manifestBytes(paths.map((path) => ({ path, entries: 0, sha256: SHA }))));
        if (twice === undefined) expect(message).toBeUndefined();
        else expect(message).toBe(`the archive manifest is malformed: directories: "${twice}" is listed twice`);
      }),
      { numRuns: 500 },
    );
  });

  it('finds one repeat among 100,000 distinct paths wherever it is', () => {
    const paths = Array.from({ length: 100_000 }, (_, i) => `p${Math.floor(i / 1000)}/e${i % 1000}`);
    expect(refusal(manifestBytes(paths.map((path) => ({ path, entries: 0, sha256: SHA }))))).toBeUndefined();
    for (const [first, again] of [
      [0, 99_999],
      [77_777, 12],
      [5_000, 5_001],
    ] as const) {
      const listed = [...paths];
      listed[again] = listed[first]!;
      expect(refusal(manifestBytes(listed.map((path) => ({ path, entries: 0, sha256: SHA }))))).toMatch(
        new RegExp(`directories: "${paths[first]}" is listed twice$`),
      );
    }
  });

  it('tells apart paths whose 32-bit FNV-1a hashes are equal', () => {
    // "costarring" and "liquid" are a known FNV-1a 32 collision.
    expect(refusal(manifestBytes(['costarring', 'liquid'].map((path) => ({ path, entries: 0, sha256: SHA }))))).toBeUndefined();
    expect(refusal(manifestBytes(['costarring', 'liquid', 'costarring'].map((path) => ({ path, entries: 0, sha256: SHA }))))).toMatch(
      /"costarring" is listed twice$/,
    );
  });

  it('names the right path when several listed paths share one hash, each listed several times', () => {
    const oneHash = ['d0\ua2e5\u303c', 'd1\u06d6\u6038', 'd2\ua591\u7cce', 'd3\u0596\uacca', 'd4\u0e94\ub42b'];
    expect(new Set(oneHash.map(fnv1a))).toEqual(new Set([0x12345678]));
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...oneHash), { maxLength: 12 }), (paths) => {
        const twice = firstSeenAgain(paths);
        const message = refusal(manifestBytes(paths.map((path) => ({ path, entries: 0, sha256: SHA }))));
        if (twice === undefined) expect(message).toBeUndefined();
        else expect(message).toBe(`the archive manifest is malformed: directories: "${twice}" is listed twice`);
      }),
      { numRuns: 500 },
    );
  });

  it('finds a repeat among more than 2^21 directories (its index had 21 bits: such a manifest was refused whole)', () => {
    const count = 2 ** 21 + 3;
    const distinct = (index: number) => `d${index}`;
    expect(firstListedTwice(count, distinct)).toBeUndefined();
    // The last two repeat earlier ones, a hash collision ("costarring", "liquid") among them: the earlier second listing is named.
    const paths = (index: number) => (index === 7 ? 'costarring' : index === 9 ? 'liquid' : index === count - 2 ? 'liquid' : index === count - 1 ? 'd5' : distinct(index));
    expect(firstListedTwice(count, paths)).toBe('liquid');
    expect(firstListedTwice(count, (index) => (index === count - 2 ? 'x' : paths(index)))).toBe('d5');
  });

  it('reads each path once where an archive made every path share the published FNV-1a hash (the hash it sorts by starts at random)', () => {
    // 12 pairs of 7 characters, each pair's two reaching one FNV-1a state from where the pair
    // before left it (found by birthday search in seconds): 4,096 paths of one published hash.
    const pairs = [
      ['mds3aaa', '8yaacaa'], ['03zlaaa', 'fpapaaa'], ['0rjfaaa', 'hpfhaaa'], ['75zlaaa', 'epcpaaa'], ['zkifaaa', '2yahaaa'], ['75zlaaa', 'epcpaaa'],
      ['zkifaaa', '2yahaaa'], ['75zlaaa', 'epcpaaa'], ['zkifaaa', '2yahaaa'], ['75zlaaa', 'epcpaaa'], ['zkifaaa', '2yahaaa'], ['75zlaaa', 'epcpaaa'],
    ] as const;
    const paths = Array.from({ length: 2 ** pairs.length }, (_, m) => `d/${pairs.map((pair, i) => pair[(m >> i) & 1]).join('')}`);
    expect(new Set(paths).size).toBe(paths.length);
    expect(new Set(paths.map(fnv1a)).size).toBe(1);
    let reads = 0;
    const pathOf = (index: number) => {
      reads++;
      return paths[index]!;
    };
    // Each path is read once to be hashed; only paths of one hash are read again, to be sorted as strings.
    expect(firstListedTwice(paths.length, pathOf)).toBeUndefined();
    expect(reads).toBeLessThan(paths.length + 16);
    paths[4000] = paths[123]!;
    expect(firstListedTwice(paths.length, pathOf)).toBe(paths[123]);
  });
});

/** 32-bit FNV-1a over UTF-16 units, from its published basis. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

describe('the directories of a manifest', () => {
  it('hold their three fields and nothing an archive added to them', () => {
    const parsed = parseManifest(manifestBytes([{ path: 'a', entries: 1, sha256: SHA, extra: { nested: [1, 2] } }, { path: 'b', entries: 2, sha256: SHA }]));
    expect([...parsed.directories]).toEqual([
      { path: 'a', entries: 1, sha256: SHA },
      { path: 'b', entries: 2, sha256: SHA },
    ]);
    expect(Object.keys(parsed.directories.at(0)!)).toEqual(['path', 'entries', 'sha256']);
  });

  it('keep a field named __proto__ out, as an own field is not inherited', () => {
    const bytes = Buffer.from(manifestBytes([{ path: 'a', entries: 1, sha256: SHA }]).toString().replace('"sha256"', '"__proto__":{"polluted":1},"sha256"'));
    const [directory] = parseManifest(bytes).directories;
    expect(Object.keys(directory!)).toEqual(['path', 'entries', 'sha256']);
    expect((directory as unknown as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('a version 1 manifest', () => {
  it('digests more directories than a version 2 manifest may list: each entry "a/b" of a directory makes "a" too', () => {
    const entries = Array.from({ length: 140_000 }, (_, i) => ({ path: `p${i}/q`, type: 'directory', mode: 0o755, mtimeMs: 0 }));
    const bytes = manifestBytes([], {
      formatVersion: 1,
      tool: { name: 'openclaw', version: '0.0.9' },
      totals: { files: 0, directories: entries.length, symlinks: 0, bytes: 0 },
      directories: undefined,
      entries,
    });
    const { directories } = parseManifest(bytes);
    expect(directories).toHaveLength(280_000);
    expect([...directories].slice(0, 2).map(({ path }) => path)).toEqual(['p0/q', 'p0']);
  });
});
