// The table of every path a restore has created (shared/restore/path-table.ts): what it finds,
// and what it costs per entry, which is what a restore of a million files holds to its end.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { PathTable } from '../shared/restore/path-table.js';
import { liveBytes } from './helpers/live-bytes.js';

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

describe('PathTable', () => {
  it('finds each entry by its parent and name, and every path by its segments', () => {
    const table = new PathTable();
    const config = table.addDirectory(PathTable.ROOT, 'config', 0o700, 1000);
    const file = table.addFile(config, 'a.json');
    const link = table.addSymlink(PathTable.ROOT, 'latest', 'config/a.json');

    expect(table.child(PathTable.ROOT, 'config')).toBe(config);
    expect(table.child(config, 'a.json')).toBe(file);
    expect(table.child(PathTable.ROOT, 'a.json')).toBe(-1);
    expect(table.child(config, 'a.jso')).toBe(-1);
    expect(table.child(config, 'a.json2')).toBe(-1);
    expect(table.find(['config', 'a.json'])).toBe(file);
    expect(table.find(['config', 'a.json'], 1)).toBe(config);
    expect(table.find([])).toBe(PathTable.ROOT);
    expect(table.find(['latest', 'a.json'])).toBe(-1);
    expect([table.kind(PathTable.ROOT), table.kind(config), table.kind(file), table.kind(link)]).toEqual(['directory', 'directory', 'file', 'symlink']);
    expect(table.target(link)).toBe('config/a.json');
    expect([table.mode(config), table.mtimeMs(config)]).toEqual([0o700, 1000]);
    table.setDirectoryAttributes(config, 0o1777, 2000);
    expect([table.mode(config), table.mtimeMs(config)]).toEqual([0o1777, 2000]);
    expect(table.segments(file)).toEqual(['config', 'a.json']);
    expect(table.size).toBe(4);
  });

  it('keeps names apart that differ only in characters past ASCII, raw bytes (lone surrogates) included', () => {
    const table = new PathTable();
    const names = ['caf\u00e9', 'caf\udce9', 'caf\ufffd', 'caf\u0065\u0301', '\u{1f600}', '\ud83d', '\ude00', 'a\u07ff', 'a\u0800', 'a', 'A', ''];
    const ids = names.map((name) => table.addFile(PathTable.ROOT, name));
    names.forEach((name, index) => {
      expect(table.child(PathTable.ROOT, name)).toBe(ids[index]);
      expect(table.segments(ids[index]!)).toEqual([name]);
    });
    expect(table.child(PathTable.ROOT, 'caf')).toBe(-1);
    expect(table.child(PathTable.ROOT, 'caf\u00e9\u00e9')).toBe(-1);
  });

  it('lists directories deepest first, each depth in the order added, and symlinks in the order added', () => {
    const table = new PathTable();
    const a = table.addDirectory(PathTable.ROOT, 'a', 0o755, 0);
    const s1 = table.addSymlink(a, 's1', '.');
    const ab = table.addDirectory(a, 'b', 0o755, 0);
    const c = table.addDirectory(PathTable.ROOT, 'c', 0o755, 0);
    const abd = table.addDirectory(ab, 'd', 0o755, 0);
    const cd = table.addDirectory(c, 'd', 0o755, 0);
    table.addFile(abd, 'f');
    const s2 = table.addSymlink(PathTable.ROOT, 's2', 'a');
    expect([...table.directoriesDeepestFirst()]).toEqual([abd, ab, cd, a, c, PathTable.ROOT]);
    expect([...table.symlinks()]).toEqual([s1, s2]);
  });

  it('finds what a Map of (parent, name) finds, through every growth of its arrays, slots and name bytes', () => {
    // Few distinct code units, so that names repeat and differ in one unit past ASCII, a lone
    // surrogate or a pair; long names grow the name bytes, many entries the slots (past 1,024, 2,048, 4,096).
    const unit = fc.constantFrom('a', 'b', '\u00e9', '\u07ff', '\u0800', '\ud83d', '\ude00', '\uffff');
    const name = fc.oneof(
      fc.array(unit, { minLength: 1, maxLength: 4 }).map((units) => units.join('')),
      fc.tuple(unit, fc.integer({ min: 60, max: 255 })).map(([first, length]) => first.repeat(length)),
      fc.nat(100_000).map((n) => `f${n}`),
    );
    const kind = fc.constantFrom('directory', 'file', 'symlink');
    const additions = fc.array(fc.tuple(fc.nat(), name, kind), { minLength: 5000, maxLength: 6000 });
    const sizes: number[] = [];
    fc.assert(
      fc.property(additions, (entries) => {
        const table = new PathTable();
        const model = new Map<string, { id: number; kind: string; parent: number; name: string }>();
        const directories = [PathTable.ROOT];
        const key = (parent: number, child: string) => `${parent}/${child}`;
        const wrong: string[] = [];
        const check = (what: string, actual: unknown, expected: unknown) => {
          if (actual !== expected) wrong.push(`${what}: ${String(actual)}, not ${String(expected)}`);
        };
        const expectAllFound = () => {
          for (const entry of model.values()) {
            check('child', table.child(entry.parent, entry.name), entry.id);
            check('kind', table.kind(entry.id), entry.kind);
          }
        };
        for (const [pick, child, what] of entries) {
          const parent = directories[pick % directories.length]!;
          const known = model.get(key(parent, child));
          check('child', table.child(parent, child), known?.id ?? -1);
          if (known !== undefined) continue;
          const id =
            what === 'directory' ? table.addDirectory(parent, child, 0o700, 1) : what === 'file' ? table.addFile(parent, child) : table.addSymlink(parent, child, child);
          model.set(key(parent, child), { id, kind: what, parent, name: child });
          if (what === 'directory') directories.push(id);
          // Every entry again just past each doubling (the slots are rebuilt then).
          if (isPowerOfTwo(table.size) || isPowerOfTwo(table.size - 1)) expectAllFound();
        }
        expectAllFound();
        for (const entry of model.values()) {
          const parentSegments = table.segments(entry.parent);
          check('segments', table.segments(entry.id).join('/'), [...parentSegments, entry.name].join('/'));
          check('find', table.find([...parentSegments, entry.name]), entry.id);
          if (entry.kind === 'symlink') check('target', table.target(entry.id), entry.name);
          check('child', table.child(entry.parent, `${entry.name}\u0000`), -1);
          check('child', table.child(entry.parent, entry.name.slice(0, -1)), model.get(key(entry.parent, entry.name.slice(0, -1)))?.id ?? -1);
        }
        check('size', table.size, model.size + 1);
        const deepestFirst = directories.map((id) => [id, table.segments(id).length] as const).sort((a, b) => b[1] - a[1] || a[0] - b[0]);
        check('directoriesDeepestFirst', [...table.directoriesDeepestFirst()].join(), deepestFirst.map(([id]) => id).join());
        sizes.push(table.size);
        expect(wrong.slice(0, 5)).toEqual([]);
      }),
      // Not shrunk: shrinking thousands of additions would take minutes.
      { numRuns: 20, endOnFailure: true },
    );
    expect(Math.min(...sizes)).toBeGreaterThan(4097);
  });

  it('holds a million-file shape at under 40 bytes per entry (a Map of path strings to nodes took 62)', () => {
    // 250,501 entries: just under the arrays' capacity (they double), as a real count may be.
    const directories = 500;
    const filesEach = 500;
    const before = liveBytes();
    const table = new PathTable();
    for (let d = 0; d < directories; d++) {
      const directory = table.addDirectory(PathTable.ROOT, `d${String(d).padStart(4, '0')}`, 0o755, d);
      for (let f = 0; f < filesEach; f++) table.addFile(directory, `f${String(f).padStart(4, '0')}`);
    }
    const perEntry = (liveBytes() - before) / table.size;
    expect(table.find(['d0499', 'f0499'])).toBeGreaterThan(0);
    expect(perEntry).toBeLessThan(40);
  });
});
