// resolveInsideRoot (shared/restore/link-resolve.ts): table tests, then a property test against the
// kernel. The property builds random trees of directories and relative symlinks on disk,
// resolves a random target from a random directory both ways, and demands the same answer:
// inside the root at the same place, or not inside (escaped, or a loop the kernel refuses).

import { closeSync, constants as fsConstants, lstatSync, mkdirSync, mkdtempSync, openSync, readlinkSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { linkReader } from '../shared/restore/extract.js';
import { CHARACTERS_PER_STEP, MAX_LINK_HOPS, MAX_RESOLVE_WORK, resolveInsideRoot, unresolvedReason, type ReadLinkAt } from '../shared/restore/link-resolve.js';
import { PathTable } from '../shared/restore/path-table.js';

const linksFrom =
  (links: Readonly<Record<string, string>>): ReadLinkAt =>
  (segments) =>
    Object.hasOwn(links, segments.join('/')) ? links[segments.join('/')] : undefined;

function chain(length: number): Record<string, string> {
  const links: Record<string, string> = {};
  for (let i = 0; i < length; i++) links[`l${i}`] = i === length - 1 ? 'end' : `l${i + 1}`;
  return links;
}

describe('resolveInsideRoot: table', () => {
  it.each<[string, string[], string, Record<string, string>, string[] | undefined]>([
    ['a plain name', [], 'a', {}, ['a']],
    ['"." is the link\'s own directory', ['d'], '.', {}, ['d']],
    ['"." and empty parts are skipped', [], './a/./b/', {}, ['a', 'b']],
    ['".." to the root itself', ['d'], '..', {}, []],
    ['".." twice from one level down escapes', ['d'], '../..', {}, undefined],
    ['".." from the root escapes', [], '..', {}, undefined],
    ['leaving and coming back still escapes', [], '../root/x', {}, undefined],
    ['absolute target', [], '/etc/passwd', {}, undefined],
    ['absolute target with many slashes', [], '////etc', {}, undefined],
    ['empty target', [], '', {}, undefined],
    ['NUL in the target', [], 'a\u0000b', {}, undefined],
    ['".." below a missing directory', [], 'x/../..', {}, undefined],
    ['deep ".." that stays inside', ['a', 'b'], '../../c', {}, ['c']],
    ['through a link to a directory', [], 'l/x', { l: 'sub' }, ['sub', 'x']],
    ['".." after a link is physical (the link target\'s parent)', [], 'l/..', { l: 'a/b' }, ['a']],
    ['a link to "." then ".." escapes', [], 'l/..', { l: '.' }, undefined],
    ['a link to ".." escapes', [], 'l', { l: '..' }, undefined],
    ['a link to ".." one level down is the root', ['d'], 'l/x', { 'd/l': '..' }, ['x']],
    ['a chain of links', [], 'a/x', { a: 'b', b: 'c', c: 'sub' }, ['sub', 'x']],
    ['a link in a subdirectory resolves from its own directory', [], 's/l/x', { 's/l': '../t', t: 'u' }, ['u', 'x']],
    ['a chain that ends outside', [], 'a', { a: 'b', b: 'sub/c', 'sub/c': '../..' }, undefined],
    ['a chain through an absolute link', [], 'a/x', { a: 'b', b: '/etc' }, undefined],
    ['a link to itself is a loop', [], 'a', { a: 'a' }, undefined],
    ['two links pointing at each other', [], 'a', { a: 'b', b: 'a' }, undefined],
    [`${MAX_LINK_HOPS} hops are allowed`, [], 'l0', chain(MAX_LINK_HOPS), ['end']],
    [`${MAX_LINK_HOPS + 1} hops are not`, [], 'l0', chain(MAX_LINK_HOPS + 1), undefined],
    ['backslashes are ordinary characters on POSIX', [], '..\\..\\x', {}, ['..\\..\\x']],
    ['a drive-relative look-alike is one relative name', [], 'C:../x', {}, ['C:..', 'x']],
  ])('%s', (_label, linkDir, target, links, expected) => {
    expect(resolveInsideRoot(linkDir, target, linksFrom(links))).toEqual(expected);
  });

  it('refuses a resolution costing more than MAX_RESOLVE_WORK (depth of every path looked up)', () => {
    const deep = Array<string>(1000).fill('d');
    const steps = (n: number) => 'x/../'.repeat(n);
    const affordable = Math.floor(MAX_RESOLVE_WORK / 1001);
    expect(resolveInsideRoot(deep, steps(affordable), linksFrom({}))).toEqual(deep);
    expect(resolveInsideRoot(deep, steps(affordable + 1), linksFrom({}))).toBeUndefined();
  });

  it('adds the work each resolution took to `spent`, capped at MAX_RESOLVE_WORK for one refused as too costly', () => {
    const spent = { work: 0 };
    expect(resolveInsideRoot(['a'], 'b/c', linksFrom({}), spent)).toEqual(['a', 'b', 'c']);
    expect(spent.work).toBe(2 + 3); // looked up a/b, then a/b/c
    expect(resolveInsideRoot(Array<string>(1000).fill('d'), 'x/../'.repeat(1000), linksFrom({}), spent)).toBeUndefined();
    expect(spent.work).toBe(5 + MAX_RESOLVE_WORK);
  });

  it('counts the name looked up as one more step per CHARACTERS_PER_STEP of its characters (a reader hashes and compares it), the path above it by depth', () => {
    const spent = { work: 0 };
    const long = 'n'.repeat(255);
    expect(resolveInsideRoot([long], long, linksFrom({}), spent)).toEqual([long, long]);
    expect(spent.work).toBe(2 + Math.floor(255 / CHARACTERS_PER_STEP)); // looked up long/long, the first long known
    expect(resolveInsideRoot([long], `${long}/${long}`, linksFrom({}), spent)).toEqual([long, long, long]);
    expect(spent.work).toBe(2 + 85 + (2 + 85) + (3 + 85));
  });

  it.each([
    ['an absolute target', [], '/etc', {}, 'escapes'],
    ['".." above the root', ['a'], '../../x', {}, 'escapes'],
    ['a chain that ends outside', [], 'a', { a: 'b', b: '..' }, 'escapes'],
    ['a link to itself', [], 'a', { a: 'a' }, 'too many links'],
    ['two links pointing at each other', [], 'a', { a: 'b', b: 'a' }, 'too many links'],
    [`${MAX_LINK_HOPS + 1} hops inside`, [], 'l0', chain(MAX_LINK_HOPS + 1), 'too many links'],
    ['more work than MAX_RESOLVE_WORK', Array<string>(1000).fill('d'), 'x/../'.repeat(1000), {}, 'too costly'],
  ])('unresolvedReason names why a link was refused: %s', (_label, linkDir, target, links, reason) => {
    expect(resolveInsideRoot(linkDir, target, linksFrom(links))).toBeUndefined();
    expect(unresolvedReason(linkDir, target, linksFrom(links))).toBe(reason);
  });

  it('does not modify the linkDir it is given', () => {
    const linkDir = ['a', 'b'];
    resolveInsideRoot(linkDir, '../c', linksFrom({}));
    expect(linkDir).toEqual(['a', 'b']);
  });
});

// ---------------------------------------------------------------------------------------
// Property: agreement with the kernel.

const NAMES = ['a', 'b', 'c'] as const;
const MAX_TREE_DEPTH = 3;

type Slot = { kind: 'absent' } | { kind: 'dir' } | { kind: 'link'; target: string };

/** Every position of the full tree over NAMES up to MAX_TREE_DEPTH, parents before children. */
const POSITIONS: string[][] = (() => {
  const out: string[][] = [];
  let level: string[][] = [[]];
  for (let depth = 1; depth <= MAX_TREE_DEPTH; depth++) {
    level = level.flatMap((parent) => NAMES.map((name) => [...parent, name]));
    out.push(...level);
  }
  return out;
})();

const targetArb = fc.oneof(
  { weight: 12, arbitrary: fc.array(fc.constantFrom('..', '..', '.', 'a', 'b', 'c'), { minLength: 1, maxLength: 5 }).map((parts) => parts.join('/')) },
  { weight: 2, arbitrary: fc.array(fc.constantFrom('..', 'a', 'b'), { minLength: 1, maxLength: 3 }).map((parts) => `${parts.join('/')}/`) },
  { weight: 1, arbitrary: fc.constantFrom('/', '/a', '//a/b') },
);

const slotArb: fc.Arbitrary<Slot> = fc.oneof(
  { weight: 3, arbitrary: fc.constant<Slot>({ kind: 'dir' }) },
  { weight: 2, arbitrary: fc.constant<Slot>({ kind: 'absent' }) },
  { weight: 3, arbitrary: targetArb.map<Slot>((target) => ({ kind: 'link', target })) },
);

interface Scenario {
  readonly slots: Slot[];
  readonly dirPick: number;
  readonly target: string;
}

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  slots: fc.array(slotArb, { minLength: POSITIONS.length, maxLength: POSITIONS.length }),
  dirPick: fc.nat(),
  target: targetArb,
});

type Verdict = { kind: 'inside'; segments: string[] } | { kind: 'not-inside'; why: 'outside' | 'loop' };

/** Creates the tree on disk; returns the real directories (link-free paths) and the links. */
function buildTree(root: string, slots: readonly Slot[]): { dirs: string[][]; links: Record<string, string> } {
  const exists = new Set<string>(['']);
  const dirs: string[][] = [[]];
  const links: Record<string, string> = {};
  POSITIONS.forEach((position, index) => {
    const parent = position.slice(0, -1).join('/');
    const slot = slots[index]!;
    if (!exists.has(parent) || slot.kind === 'absent') return;
    const key = position.join('/');
    const abs = path.join(root, ...position);
    if (slot.kind === 'dir') {
      mkdirSync(abs);
      exists.add(key);
      dirs.push(position);
    } else {
      symlinkSync(slot.target, abs);
      links[key] = slot.target;
    }
  });
  return { dirs, links };
}

/** What the kernel makes of `<dir>/<target>`: opened, then named by /proc/self/fd. */
function kernelOpen(dirAbs: string, target: string): { real: string } | { errno: string } {
  let fd: number;
  try {
    // String concatenation, never path.join: join would fold ".." lexically.
    fd = openSync(`${dirAbs}/${target}`, fsConstants.O_RDONLY);
  } catch (error) {
    return { errno: (error as NodeJS.ErrnoException).code ?? 'UNKNOWN' };
  }
  try {
    return { real: readlinkSync(`/proc/self/fd/${fd}`) };
  } finally {
    closeSync(fd);
  }
}

/**
 * The resolver treats a missing component as a directory (at restore time it may be created
 * later as one). To ask the kernel the same question, create the first missing directory on
 * the kernel's own path, found by opening ever longer prefixes. Returns false when the
 * missing component lies above `base` (so the walk has certainly left the root).
 */
function createFirstMissing(dirAbs: string, target: string, base: string, depth = 0): boolean | 'loop' {
  if (depth > 2 * MAX_LINK_HOPS) return 'loop';
  if (target.startsWith('/')) return false; // an absolute link: the walk is at the file system's root
  const parts = target.split('/');
  for (let k = 0; k < parts.length; k++) {
    const prefix = parts.slice(0, k + 1).join('/');
    const opened = kernelOpen(dirAbs, prefix);
    if ('real' in opened) continue;
    if (opened.errno === 'ELOOP') return 'loop';
    if (opened.errno !== 'ENOENT') throw new Error(`unexpected ${opened.errno} opening ${dirAbs}/${prefix}`);
    const before = k === 0 ? { real: dirAbs } : kernelOpen(dirAbs, parts.slice(0, k).join('/'));
    if (!('real' in before)) throw new Error(`prefix of ${prefix} vanished`);
    const missing = path.join(before.real, parts[k]!);
    let isLink = false;
    try {
      isLink = lstatSync(missing).isSymbolicLink();
    } catch {
      isLink = false;
    }
    if (isLink) return createFirstMissing(before.real, readlinkSync(missing), base, depth + 1);
    if (!before.real.startsWith(`${base}/`)) return false;
    mkdirSync(missing);
    return true;
  }
  throw new Error(`nothing missing on ${dirAbs}/${target}`);
}

function kernelVerdict(root: string, base: string, linkDir: readonly string[], target: string): Verdict {
  if (target.startsWith('/')) return { kind: 'not-inside', why: 'outside' };
  const dirAbs = path.join(root, ...linkDir);
  for (let attempt = 0; attempt < 200; attempt++) {
    const opened = kernelOpen(dirAbs, target);
    if ('real' in opened) {
      if (opened.real === root) return { kind: 'inside', segments: [] };
      if (opened.real.startsWith(`${root}/`)) return { kind: 'inside', segments: opened.real.slice(root.length + 1).split('/') };
      return { kind: 'not-inside', why: 'outside' };
    }
    if (opened.errno === 'ELOOP') return { kind: 'not-inside', why: 'loop' };
    if (opened.errno !== 'ENOENT') throw new Error(`unexpected ${opened.errno}`);
    const progress = createFirstMissing(dirAbs, target, base);
    if (progress === 'loop') return { kind: 'not-inside', why: 'loop' };
    if (!progress) return { kind: 'not-inside', why: 'outside' };
  }
  throw new Error('the kernel oracle made no progress');
}

describe('resolveInsideRoot: agrees with the kernel', () => {
  let scratch = '';
  beforeAll(() => {
    scratch = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'link-resolve-')));
  });
  afterAll(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  it('on random trees of directories and relative symlinks (200 cases)', () => {
    const seen = { inside: 0, outside: 0, loop: 0 };
    let run = 0;
    fc.assert(
      fc.property(scenarioArb, ({ slots, dirPick, target }) => {
        // base/o1/o2/r: the root's name "r" is not in NAMES, so a walk that leaves the root
        // can never find its way back in; escapes are therefore visible in the final path.
        const base = path.join(scratch, `case-${run++}`);
        const root = path.join(base, 'o1', 'o2', 'r');
        mkdirSync(root, { recursive: true });
        try {
          const { dirs, links } = buildTree(root, slots);
          const linkDir = dirs[dirPick % dirs.length]!;
          const ours = resolveInsideRoot(linkDir, target, linksFrom(links));
          const kernel = kernelVerdict(root, base, linkDir, target);
          if (kernel.kind === 'inside') seen.inside++;
          else seen[kernel.why]++;
          if (kernel.kind === 'inside') expect(ours).toEqual(kernel.segments);
          else expect(ours).toBeUndefined();
        } finally {
          rmSync(base, { recursive: true, force: true });
        }
      }),
      // A fixed seed, as below: how many of each outcome occur is then no chance.
      { numRuns: 200, seed: 42 },
    );
    // The property must not hold vacuously: all three outcomes occur.
    expect(seen.inside).toBeGreaterThan(20);
    expect(seen.outside).toBeGreaterThan(20);
    expect(seen.loop).toBeGreaterThan(0);
  });

  it('on symlinks placed inside the tree (the extractor\'s question: does this link stay inside?)', () => {
    let run = 0;
    fc.assert(
      fc.property(
        fc.array(slotArb, { minLength: POSITIONS.length, maxLength: POSITIONS.length }),
        (slots) => {
          const base = path.join(scratch, `links-${run++}`);
          const root = path.join(base, 'o1', 'o2', 'r');
          mkdirSync(root, { recursive: true });
          try {
            const { links } = buildTree(root, slots);
            for (const [linkPath, target] of Object.entries(links)) {
              const segments = linkPath.split('/');
              const ours = resolveInsideRoot(segments.slice(0, -1), target, linksFrom(links));
              const kernel = kernelVerdict(root, base, segments.slice(0, -1), target);
              if (kernel.kind === 'inside') expect(ours, linkPath).toEqual(kernel.segments);
              else expect(ours, linkPath).toBeUndefined();
            }
          } finally {
            rmSync(base, { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('resolveInsideRoot with the restore\'s reader (extract.ts linkReader), which keeps the last path\'s lookups', () => {
  it('answers, and counts the work, as a reader that looks every path up from the root', () => {
    const name = fc.constantFrom('a', 'b', 'c', 'n'.repeat(200));
    const part = fc.oneof(name, fc.constantFrom('..', '.', ''));
    const targetArb = fc.array(part, { minLength: 1, maxLength: 12 }).map((parts) => parts.join('/'));
    const entryArb = fc.tuple(fc.array(name, { minLength: 1, maxLength: 5 }), fc.option(targetArb, { nil: undefined }));
    const outcomes = { inside: 0, refused: 0, throughLinks: 0 };
    fc.assert(
      fc.property(fc.array(entryArb, { maxLength: 30 }), fc.nat(), targetArb, (entries, dirPick, target) => {
        const table = new PathTable();
        const directories = [PathTable.ROOT];
        for (const [segments, linkTarget] of entries) {
          let parent = PathTable.ROOT;
          for (const segment of segments.slice(0, -1)) {
            const existing = table.child(parent, segment);
            if (existing < 0) directories.push((parent = table.addDirectory(parent, segment, 0o700, 1)));
            else if (table.kind(existing) === 'directory') parent = existing;
            else return;
          }
          const last = segments.at(-1)!;
          if (table.child(parent, last) >= 0) continue;
          if (linkTarget === undefined) directories.push(table.addDirectory(parent, last, 0o700, 1));
          else table.addSymlink(parent, last, linkTarget);
        }
        const linkDirId = directories[dirPick % directories.length]!;
        const linkDir = table.segments(linkDirId);
        const fromRoot: ReadLinkAt = (segments) => {
          const id = table.find(segments);
          return id >= 0 && table.kind(id) === 'symlink' ? table.target(id) : undefined;
        };
        let hops = 0;
        const counted: ReadLinkAt = (segments) => {
          const found = fromRoot(segments);
          if (found !== undefined) hops++;
          return found;
        };
        const expectedWork = { work: 0 };
        const expected = resolveInsideRoot(linkDir, target, counted, expectedWork);
        const work = { work: 0 };
        expect(resolveInsideRoot(linkDir, target, linkReader(table, linkDir, linkDirId), work)).toEqual(expected);
        expect(work.work).toBe(expectedWork.work);
        if (expected === undefined) expect(unresolvedReason(linkDir, target, linkReader(table, linkDir, linkDirId))).toBe(unresolvedReason(linkDir, target, fromRoot));
        outcomes[expected === undefined ? 'refused' : 'inside']++;
        if (hops > 0) outcomes.throughLinks++;
      }),
      // A fixed seed: the counts below say what the cases covered, which a random seed left to chance (20 through links once).
      { numRuns: 500, seed: 42 },
    );
    expect(outcomes.inside).toBeGreaterThan(50);
    expect(outcomes.refused).toBeGreaterThan(50);
    expect(outcomes.throughLinks).toBeGreaterThan(20);
  });
});
