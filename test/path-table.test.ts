// The table of every path a restore has created (shared/restore/path-table.ts): what it finds,
// and what it costs per entry, which is what a restore of a million files holds to its end.
import v8 from 'node:v8';
import vm from 'node:vm';

import { describe, expect, it } from 'vitest';

import { PathTable } from '../shared/restore/path-table.js';

v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc') as () => void;

/** Heap and ArrayBuffer bytes in use once garbage is collected (twice: V8 frees ArrayBuffers after a sweep). */
function liveBytes(): number {
  collectGarbage();
  collectGarbage();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
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
