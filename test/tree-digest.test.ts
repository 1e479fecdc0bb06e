// The directory digests a manifest records: pinned to the record format written out by hand,
// so a change to the encoding (which would make every existing backup fail verification)
// cannot pass unnoticed.

import { createHash } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { MANIFEST_FORMAT, MANIFEST_FORMAT_VERSION, serializeManifest, type Manifest } from '../shared/archive/manifest.js';
import { digestTree, TreeDigest, UNHASHED_BYTES, type TreeEntry } from '../shared/archive/tree-digest.js';
import { liveBytes } from './helpers/live-bytes.js';

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

describe('directory digests', () => {
  it('digests each directory over its direct children, as NUL-terminated records in archive order', () => {
    const digests = digestTree([
      { path: '', type: 'directory' },
      { path: 'notes', type: 'directory' },
      { path: 'notes/a.md', type: 'file', size: 2, sha256: sha256('hi') },
      { path: 'link', type: 'symlink', target: 'notes/a.md' },
      { path: 'notes/empty', type: 'directory' },
    ]);
    expect(digests).toEqual([
      { path: '', entries: 2, sha256: sha256('d\0notes\0' + 'l\0link\0notes/a.md\0') },
      { path: 'notes', entries: 2, sha256: sha256(`f\0a.md\x002\0${sha256('hi')}\0` + 'd\0empty\0') },
      { path: 'notes/empty', entries: 0, sha256: sha256('') },
    ]);
  });

  it('hashes a name or target that is not UTF-8 as its bytes (raw-name.ts), so two that differ only there differ', () => {
    const bytesSha = (latin1: string) => createHash('sha256').update(Buffer.from(latin1, 'latin1')).digest('hex');
    for (const resumable of [false, true]) {
      const digest = new TreeDigest({ resumable });
      digest.add({ path: '', type: 'directory' });
      digest.add({ path: 'caf\udce9', type: 'file', size: 2, sha256: sha256('hi') });
      digest.add({ path: 'd\udcff', type: 'directory' });
      digest.add({ path: 'l\udcfe', type: 'symlink', target: 'caf\udce9' });
      expect(digest.digests()[0]).toEqual({
        path: '',
        entries: 3,
        sha256: bytesSha(`f\0caf\xe9\x002\0${sha256('hi')}\0` + 'd\0d\xff\0' + 'l\0l\xfe\0caf\xe9\0'),
      });
    }
    expect(digestTree([{ path: 'a\udcff', type: 'directory' }])).not.toEqual(digestTree([{ path: 'a\udcfe', type: 'directory' }]));
  });

  it('gives a directory implied by its entries a digest too, so an unlisted one can be found', () => {
    expect(digestTree([{ path: 'a/b/f', type: 'file', size: 0, sha256: sha256('') }]).map((d) => d.path)).toEqual(['a/b']);
  });

  it('counts a directory met twice once', () => {
    const twice = digestTree([
      { path: '', type: 'directory' },
      { path: 'd', type: 'directory' },
      { path: 'd', type: 'directory' },
    ]);
    expect(twice[0]).toEqual({ path: '', entries: 1, sha256: sha256('d\0d\0') });
  });

  it('tells apart trees that differ in one name, type, size, content, target, or in order', () => {
    const file = (path: string, content = 'x'): TreeEntry => ({ path, type: 'file', size: content.length, sha256: sha256(content) });
    const base: TreeEntry[] = [file('a'), file('b'), { path: 'l', type: 'symlink', target: 'a' }];
    const variants: TreeEntry[][] = [
      [file('a2'), file('b'), base[2]!],
      [{ path: 'a', type: 'directory' }, file('b'), base[2]!],
      [{ path: 'a', type: 'file', size: 2, sha256: sha256('x') }, file('b'), base[2]!],
      [file('a', 'y'), file('b'), base[2]!],
      [file('a'), file('b'), { path: 'l', type: 'symlink', target: 'b' }],
      [file('a'), file('b'), { path: 'l', type: 'hardlink', target: 'a' }],
      [file('b'), file('a'), base[2]!],
      // Field boundaries cannot shift: a name cannot hold a NUL, and every record ends with one.
      [file('a'), file('b'), { path: 'l', type: 'symlink', target: 'a\nd' }],
    ];
    const rootOf = (entries: TreeEntry[]) => digestTree(entries).find((d) => d.path === '')!.sha256;
    const all = [base, ...variants].map(rootOf);
    expect(new Set(all).size).toBe(all.length);
  });

  it('keeps a directory of few entries as bytes, and hashes only a directory whose records pass UNHASHED_BYTES', () => {
    // An open hash per directory, to the end of the run, is ~800 bytes of RSS each: 100,000
    // empty directories took a backup from ~160 to ~225 MiB.
    const digest = new TreeDigest();
    const records: string[] = [];
    digest.add({ path: '', type: 'directory' });
    for (let i = 0; i < 1000; i++) {
      digest.add({ path: `e${i}`, type: 'directory' });
      records.push(`d\0e${i}\0`);
    }
    digest.add({ path: 'e1/a', type: 'file', size: 1, sha256: sha256('a') });
    digest.add({ path: 'e2/ü', type: 'symlink', target: 'ß' });
    expect(digest.hashesOpen).toBe(1); // the root: 1,000 records
    const digests = digest.digests();
    expect(digests[0]).toEqual({ path: '', entries: 1000, sha256: sha256(records.join('')) });
    expect(digests.find((d) => d.path === 'e1')).toEqual({ path: 'e1', entries: 1, sha256: sha256(`f\0a\x001\0${sha256('a')}\0`) });
    expect(digests.find((d) => d.path === 'e2')).toEqual({ path: 'e2', entries: 1, sha256: sha256('l\0ü\0ß\0') });
    expect(digests.find((d) => d.path === 'e3')).toEqual({ path: 'e3', entries: 0, sha256: sha256('') });
    const edge = new TreeDigest();
    edge.add({ path: 'x'.repeat(UNHASHED_BYTES - 3), type: 'directory' }); // a record of UNHASHED_BYTES exactly
    expect(edge.hashesOpen).toBe(0);
    edge.add({ path: 'y', type: 'directory' });
    expect(edge.hashesOpen).toBe(1);
    expect(edge.digests().find((d) => d.path === '')?.sha256).toBe(sha256(`d\0${'x'.repeat(UNHASHED_BYTES - 3)}\0d\0y\0`));
  });

  it('can be read at any time and still take more entries', () => {
    const digest = new TreeDigest();
    digest.add({ path: 'a', type: 'directory' });
    const rootOf = () => digest.digests().find((d) => d.path === '')!;
    expect(rootOf()).toEqual({ path: '', entries: 1, sha256: sha256('d\0a\0') });
    digest.add({ path: 'b', type: 'directory' });
    expect(rootOf()).toEqual({ path: '', entries: 2, sha256: sha256('d\0a\0d\0b\0') });
  });
});

describe('saved and resumed digests', () => {
  it('give the digests of an uninterrupted run, across every split of the entries', () => {
    const entries: TreeEntry[] = [
      { path: '', type: 'directory' },
      { path: 'd', type: 'directory' },
      ...Array.from({ length: 30 }, (_, i): TreeEntry => ({ path: `d/${'é'.repeat(i)}${i}`, type: 'file', size: i, sha256: sha256(String(i)) })),
      { path: 'l', type: 'symlink', target: 'd' },
    ];
    const whole = digestTree(entries);
    for (let split = 0; split <= entries.length; split++) {
      const first = new TreeDigest({ resumable: true });
      for (const entry of entries.slice(0, split)) first.add(entry);
      const second = TreeDigest.resume(JSON.parse(JSON.stringify(first.save())));
      for (const entry of entries.slice(split)) second.add(entry);
      expect(second.digests()).toEqual(whole);
    }
  });

  it('are the digests node:crypto gives, whichever way the files are added', () => {
    const entries: TreeEntry[] = [
      { path: '', type: 'directory' },
      ...Array.from({ length: 40 }, (_, i): TreeEntry => ({ path: `${i % 3 === 0 ? 'a' : 'a/b'}/${'ü'.repeat(i)}${i}`, type: 'file', size: i * 1000, sha256: sha256(String(i)) })),
      { path: 'a', type: 'directory' },
      { path: 'top', type: 'file', size: 1, sha256: sha256('t') },
    ];
    const resumable = new TreeDigest({ resumable: true });
    const native = new TreeDigest();
    for (const entry of entries) {
      resumable.add(entry);
      if (entry.type === 'file') native.addFile(entry.path, entry.size, entry.sha256);
      else native.add(entry);
    }
    expect(native.digests()).toEqual(resumable.digests());
    expect(native.digests()).toEqual(digestTree(entries));
  });

  it('are the same when file digests come as bytes, records are batched across directories, a name is very long, and the digest is saved midway', () => {
    const entries: TreeEntry[] = [
      { path: '', type: 'directory' },
      ...Array.from({ length: 300 }, (_, i): TreeEntry => ({ path: `${['a', 'a/b', 'c'][i % 3]}/${i === 7 ? 'x'.repeat(20_000) : 'é'.repeat(i % 5)}${i}`, type: 'file', size: i * 7, sha256: sha256(String(i)) })),
      { path: 'a', type: 'directory' },
      { path: 'top', type: 'file', size: 0, sha256: sha256('') },
    ];
    const bytes = new TreeDigest();
    let resumable = new TreeDigest({ resumable: true });
    entries.forEach((entry, i) => {
      if (i === 150) resumable = TreeDigest.resume(JSON.parse(JSON.stringify(resumable.save())));
      if (entry.type !== 'file') {
        bytes.add(entry);
        resumable.add(entry);
        return;
      }
      const digest = Buffer.concat([Buffer.alloc(i % 4), Buffer.from(entry.sha256, 'hex')]);
      bytes.addFileDigest(entry.path, entry.size, digest, i % 4);
      resumable.addFile(entry.path, entry.size, entry.sha256);
    });
    expect(bytes.digests()).toEqual(digestTree(entries));
    expect(resumable.digests()).toEqual(digestTree(entries));
  });

  it('hash a file entry of any size and digest text exactly as its record reads', () => {
    const entries: TreeEntry[] = [
      { path: 'a/x', type: 'file', size: -Number.MAX_VALUE, sha256: 'ü'.repeat(6000) },
      { path: 'a/y', type: 'file', size: 1.5, sha256: '\ud800' },
      { path: 'a/z', type: 'file', size: 2 ** 60, sha256: sha256('z') },
    ];
    const native = new TreeDigest();
    for (const entry of entries) if (entry.type === 'file') native.addFile(entry.path, entry.size, entry.sha256);
    expect(native.digests()).toEqual(digestTree(entries));
  });

  it('cannot be saved unless made resumable', () => {
    expect(() => new TreeDigest().save()).toThrow(/not made resumable/);
  });

  it('takes a directory\'s digest out, as digests() gives it, and leaves the rest in the order first met', () => {
    const entries: TreeEntry[] = [
      { path: '', type: 'directory' },
      { path: 'a', type: 'directory' },
      { path: 'a/f', type: 'file', size: 1, sha256: sha256('x') },
      { path: 'b', type: 'directory' },
      { path: 'c/d', type: 'symlink', target: '../a' },
    ];
    const all = digestTree(entries);
    const digest = new TreeDigest();
    for (const entry of entries.slice(0, 3)) digest.add(entry);
    // Taken while its files are still pending, and added to again after: the parent is looked up anew.
    expect(digest.take('a')).toEqual({ path: 'a', entries: 1, sha256: sha256('f\0f\x001\0' + sha256('x') + '\0') });
    expect(digest.take('a')).toBeUndefined();
    for (const entry of entries.slice(3)) digest.add(entry);
    expect(digest.take('b')).toEqual(all.find((d) => d.path === 'b'));
    expect([...digest.remaining()]).toEqual(['', 'c']);
    expect(digest.take('')).toEqual(all.find((d) => d.path === ''));
    expect(digest.take('c')).toEqual(all.find((d) => d.path === 'c'));
    expect([...digest.remaining()]).toEqual([]);
  });

  it('holds an open directory of two files in its records\' bytes and ~100 more (its path, its numbers), not an object and a string of them', () => {
    // A backup or restore keeps every directory open to its end: 200,000 such directories had
    // taken ~300 bytes of heap each (an object, a Map value, the records as a string), ~500 of RSS.
    const directories = 100_000;
    const file = sha256('content');
    const before = liveBytes();
    const digest = new TreeDigest();
    let recordBytes = 0;
    for (let i = 0; i < directories; i++) {
      const path = `data/d${Math.floor(i / 1000)}/s${i % 1000}`;
      digest.add({ path, type: 'directory' });
      digest.addFile(`${path}/a.txt`, 8, file);
      digest.addFile(`${path}/b.txt`, 8, file);
      recordBytes += 2 * `f\0a.txt\x008\0${file}\0`.length;
    }
    const perDirectory = (liveBytes() - before) / directories;
    // The path (the Map's key, ~16 characters and a string's header), its number and its counts are the rest: 104 bytes (was 149).
    expect(perDirectory - recordBytes / directories).toBeLessThan(125);
    expect(digest.digests().at(-1)).toEqual({ path: `data/d99/s999`, entries: 2, sha256: sha256(`f\0a.txt\x008\0${file}\0f\0b.txt\x008\0${file}\0`) });
  });

  it('lists the digests made as they are read, and a manifest written from the list is the one written from the array', () => {
    const digest = new TreeDigest();
    digest.add({ path: '', type: 'directory' });
    for (let i = 0; i < 5_000; i++) {
      digest.add({ path: `d${i}`, type: 'directory' });
      digest.addFile(`d${i}/f`, i, sha256(String(i)));
    }
    const list = digest.directoryList();
    const array = digest.digests();
    expect(list.length).toBe(5_001);
    expect([...list]).toEqual(array);
    expect(list.at(5_001)).toBeUndefined();
    const manifest = (directories: typeof list): Manifest => ({
      format: MANIFEST_FORMAT,
      formatVersion: MANIFEST_FORMAT_VERSION,
      tenant: 'acme',
      createdAt: '2026-12-07T00:00:00.000Z',
      tool: { name: 'openclawmu-backup', version: '0' },
      directories,
      skipped: [],
      warnings: [],
      totals: { files: 5_000, directories: 5_001, symlinks: 0, bytes: 0 },
    });
    expect(serializeManifest(manifest(list)).equals(serializeManifest(manifest(array)))).toBe(true);
    const few = digestTree([{ path: '', type: 'directory' }, { path: 'a', type: 'directory' }]);
    expect(serializeManifest(manifest(few)).toString()).toContain(`"directories":${JSON.stringify(few)},`);
  });
});
