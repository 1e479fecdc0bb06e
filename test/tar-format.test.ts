// The tar layer (shared/archive/tar-format.ts), held against three readers and writers we did not
// write: GNU tar (lists and extracts what encodeHeader writes; writes gnu, oldgnu, posix and
// ustar archives of a real tree for TarReader to read), tar-stream (packs archives TarReader
// must read as tar-stream itself does, and extracts what encodeHeader writes), and a
// fast-check property that chunk boundaries never change what TarReader reports. Damage —
// bad checksums, unknown formats, unreadable numbers, truncation anywhere, malformed pax —
// must surface as CorruptArchiveError; oversized extended headers as ArchiveLimitError.

import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { linkSync, lstatSync, lutimesSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import fc from 'fast-check';
import tar, { type Header as TarStreamHeader } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ArchiveLimitError, CorruptArchiveError, UnsafeArchiveError } from '../shared/errors.js';
import { BLOCK_SIZE, END_OF_ARCHIVE, MAX_TRAILING_ZERO_BYTES, TarReader, encodeHeader, paddingAfter, type EntryToWrite, type TarHeader } from '../shared/archive/tar-format.js';
import { TarBuilder, base256, checksum, padded, paxRecords, rawHeader } from './helpers/tar-builder.js';
import { describeTree, tempDir, type TreeEntry } from './helpers/tree.js';
import { cutAt } from './helpers/chunks.js';

/** 2023-11-14 22:13:20 UTC. */
const MTIME = 1_700_000_000;
const MTIME_LISTED = '2023-11-14 22:13:20';
const GiB = 2 ** 30;
const MiB = 2 ** 20;

const dir = tempDir('tar-format-');
afterAll(() => dir.cleanup());

// ---------------------------------------------------------------------------------------------
// Helpers

interface Written {
  readonly entry: EntryToWrite;
  readonly content?: Buffer;
}

/** encodeHeader, content and padding for each entry, then the end-of-archive blocks. */
function archiveOf(entries: readonly Written[], options: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const { entry, content } of entries) {
    parts.push(encodeHeader(entry));
    if (content !== undefined) parts.push(content, Buffer.alloc(paddingAfter(content.length)));
  }
  if (options.end ?? true) parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

interface ReadEntry {
  readonly header: TarHeader;
  readonly offset: number;
  readonly data: Buffer;
}

/** Pushes every chunk, draining next() after each, then calls end(): the entries with their content joined. */
function read(chunks: Iterable<Buffer>): ReadEntry[] {
  const reader = new TarReader();
  const entries: { header: TarHeader; offset: number; parts: Buffer[] }[] = [];
  for (const chunk of chunks) {
    reader.push(chunk);
    for (let event = reader.next(); event !== undefined; event = reader.next()) {
      if (event.kind === 'entry') {
        entries.push({ header: event.header, offset: event.offset, parts: [] });
      } else {
        const current = entries.at(-1);
        if (current === undefined) throw new Error('data event before any entry');
        if (event.bytes.length === 0) throw new Error('empty data event');
        current.parts.push(Buffer.from(event.bytes)); // a view, valid until the next push
      }
    }
  }
  reader.end();
  return entries.map(({ header, offset, parts }) => ({ header, offset, data: Buffer.concat(parts) }));
}

const readWhole = (archive: Buffer): ReadEntry[] => read([archive]);

function inChunksOf(bytes: Buffer, size: number): Buffer[] {
  const pieces: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) pieces.push(bytes.subarray(at, at + size));
  return pieces;
}


/** What two readers must agree on. */
interface Comparable {
  readonly name: string;
  readonly type: string | undefined;
  readonly size: number;
  readonly mode: number;
  readonly mtime: number;
  readonly linkname: string | undefined;
  readonly data: Buffer;
}

function comparable({ header, data }: ReadEntry): Comparable {
  return { name: header.name, type: header.type, size: header.size, mode: header.mode, mtime: header.mtime, linkname: header.linkname, data };
}

function comparableTarStream({ header, data }: { header: TarStreamHeader; data: Buffer }): Comparable {
  return {
    name: header.name,
    type: header.type ?? undefined,
    size: header.size,
    mode: header.mode,
    mtime: Math.floor(header.mtime.getTime() / 1000),
    linkname: header.linkname ?? undefined,
    data,
  };
}

function expectedOf({ entry, content }: Written): Comparable {
  return {
    name: entry.type === 'directory' && !entry.name.endsWith('/') ? `${entry.name}/` : entry.name,
    type: entry.type,
    size: entry.size ?? 0,
    mode: entry.mode,
    mtime: Math.floor(entry.mtime),
    linkname: entry.linkname,
    data: content ?? Buffer.alloc(0),
  };
}

async function tarStreamPack(entries: readonly { header: Partial<TarStreamHeader> & { name: string }; content?: Buffer }[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const { header, content } of entries) {
    if (content === undefined) pack.entry({ ...header });
    else pack.entry({ ...header }, content);
  }
  pack.finalize();
  const parts: Buffer[] = [];
  for await (const chunk of pack) parts.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(parts);
}

async function tarStreamExtract(archive: Buffer): Promise<{ header: TarStreamHeader; data: Buffer }[]> {
  const extract = tar.extract();
  extract.end(archive);
  const out: { header: TarStreamHeader; data: Buffer }[] = [];
  for await (const entry of extract) {
    const parts: Buffer[] = [];
    for await (const chunk of entry) parts.push(Buffer.from(chunk as Uint8Array));
    out.push({ header: entry.header, data: Buffer.concat(parts) });
  }
  return out;
}

const GNU_TAR_ENV = { ...process.env, LC_ALL: 'C.UTF-8', TZ: 'UTC' };

function gnuTar(args: readonly string[]): string {
  return execFileSync('tar', args, { env: GNU_TAR_ENV, encoding: 'utf8', maxBuffer: 64 * MiB, stdio: ['ignore', 'pipe', 'pipe'] });
}

interface Listed {
  readonly perms: string;
  readonly size: number;
  readonly time: string;
  readonly name: string;
  readonly target?: string;
}

/** `tar -tv` output, one record a line: permissions, size, UTC time, name and symlink target. */
function parseListing(text: string): Listed[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const match = /^(\S{10}) \d+\/\d+ +(\d+) (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (.*)$/.exec(line);
      if (match === null) throw new Error(`unexpected tar -tv line: ${line}`);
      const [, perms, size, time, rest] = match as unknown as [string, string, string, string, string];
      if (perms.startsWith('l')) {
        const arrow = rest.indexOf(' -> ');
        return { perms, size: Number(size), time, name: rest.slice(0, arrow), target: rest.slice(arrow + 4) };
      }
      return { perms, size: Number(size), time, name: rest };
    });
}

function gnuList(archivePath: string): Listed[] {
  return parseListing(gnuTar(['--numeric-owner', '--full-time', '--quoting-style=literal', '-tvf', archivePath]));
}

/** Every header block of an archive (meta headers included), walked with sizes read as plain octal. */
function typeflagsOf(archive: Buffer): { typeflag: string; prefixed: boolean }[] {
  const found: { typeflag: string; prefixed: boolean }[] = [];
  for (let at = 0; at + BLOCK_SIZE <= archive.length; ) {
    const block = archive.subarray(at, at + BLOCK_SIZE);
    if (block.every((byte) => byte === 0)) {
      at += BLOCK_SIZE;
      continue;
    }
    const size = parseInt(block.toString('latin1', 124, 136).replace(/[\0 ]/g, ''), 8);
    found.push({ typeflag: String.fromCharCode(block[156]!), prefixed: block[345] !== 0 });
    at += BLOCK_SIZE + Math.ceil(size / BLOCK_SIZE) * BLOCK_SIZE;
  }
  return found;
}

/** `block` with `text` written at `offset` and its checksum made right again. */
function patched(block: Buffer, offset: number, bytes: Buffer): Buffer {
  const copy = Buffer.from(block);
  bytes.copy(copy, offset);
  copy.write(`${checksum(copy).toString(8).padStart(6, '0')}\u0000 `, 148, 'latin1');
  return copy;
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** A tree description (test/helpers/tree.ts) of what TarReader read, hard links resolved to their targets. */
function treeFromArchive(entries: readonly ReadEntry[]): Record<string, TreeEntry> {
  const tree: Record<string, TreeEntry> = {};
  for (const { header, data } of entries) {
    const name = header.name.replace(/\/$/, '');
    switch (header.type) {
      case 'directory':
        tree[name] = { type: 'directory', mode: header.mode, mtime: header.mtime };
        break;
      case 'file':
        tree[name] = { type: 'file', mode: header.mode, mtime: header.mtime, size: header.size, sha256: sha256(data) };
        break;
      case 'symlink':
        tree[name] = { type: 'symlink', target: header.linkname! };
        break;
      case 'link':
        tree[name] = tree[header.linkname!]!;
        break;
      default:
        break; // fifos and devices: describeTree does not list them
    }
  }
  return tree;
}

// ---------------------------------------------------------------------------------------------
// What encodeHeader writes, as GNU tar and tar-stream read it

const text = (value: string): Buffer => Buffer.from(value, 'utf8');
const pattern = (length: number, seed: number): Buffer => Buffer.from(Array.from({ length }, (_, i) => (i * 31 + seed) & 0xff));

const SPLIT_NAME = `split/${'a'.repeat(90)}/${'b'.repeat(90)}.txt`;
const NO_SPLIT_NAME = `${'c'.repeat(150)}.txt`;
const LONG_TARGET = `${'far/'.repeat(40)}away`;
/** Splits only with the longest prefix ustar allows: 155 bytes. */
const PREFIX_155_NAME = `${'p'.repeat(155)}/${'q'.repeat(50)}`;
/** One byte too many for the prefix, so pax. */
const PREFIX_156_NAME = `${'s'.repeat(156)}/${'t'.repeat(50)}`;
const TARGET_100 = `${'to/'.repeat(33)}t`;

/** Entries, each with how `tar -tv` must list it and whether encodeHeader needs a pax header for it. */
const WRITTEN: readonly (Written & { readonly listed: string; readonly pax: boolean })[] = [
  { entry: { name: 'short.txt', type: 'file', mode: 0o640, mtime: MTIME, size: 11 }, content: text('hello, tar\n'), listed: '-rw-r-----', pax: false },
  { entry: { name: 'tool', type: 'file', mode: 0o4755, mtime: MTIME, size: 10 }, content: text('#!/bin/sh\n'), listed: '-rwsr-xr-x', pax: false },
  { entry: { name: 'private', type: 'directory', mode: 0o750, mtime: MTIME }, listed: 'drwxr-x---', pax: false },
  { entry: { name: 'private/secret.txt', type: 'file', mode: 0o600, mtime: MTIME + 1, size: 7 }, content: text('secret\n'), listed: '-rw-------', pax: false },
  { entry: { name: 'empty', type: 'file', mode: 0o644, mtime: MTIME, size: 0 }, content: Buffer.alloc(0), listed: '-rw-r--r--', pax: false },
  { entry: { name: 'exact-512.bin', type: 'file', mode: 0o644, mtime: MTIME, size: 512 }, content: pattern(512, 1), listed: '-rw-r--r--', pax: false },
  { entry: { name: 'over-513.bin', type: 'file', mode: 0o644, mtime: MTIME, size: 513 }, content: pattern(513, 2), listed: '-rw-r--r--', pax: false },
  { entry: { name: 'x'.repeat(100), type: 'file', mode: 0o644, mtime: MTIME, size: 3 }, content: text('100'), listed: '-rw-r--r--', pax: false },
  { entry: { name: SPLIT_NAME, type: 'file', mode: 0o644, mtime: MTIME, size: 6 }, content: text('split\n'), listed: '-rw-r--r--', pax: false },
  { entry: { name: `deep/${'e'.repeat(99)}`, type: 'directory', mode: 0o755, mtime: MTIME }, listed: 'drwxr-xr-x', pax: false },
  { entry: { name: PREFIX_155_NAME, type: 'file', mode: 0o644, mtime: MTIME, size: 4 }, content: text('155\n'), listed: '-rw-r--r--', pax: false },
  { entry: { name: PREFIX_156_NAME, type: 'file', mode: 0o644, mtime: MTIME, size: 4 }, content: text('156\n'), listed: '-rw-r--r--', pax: true },
  { entry: { name: NO_SPLIT_NAME, type: 'file', mode: 0o644, mtime: MTIME, size: 5 }, content: text('long\n'), listed: '-rw-r--r--', pax: true },
  { entry: { name: 'ünïcødé', type: 'directory', mode: 0o700, mtime: MTIME }, listed: 'drwx------', pax: true },
  { entry: { name: 'ünïcødé/名前.txt', type: 'file', mode: 0o644, mtime: MTIME, size: 8 }, content: text('unicode\n'), listed: '-rw-r--r--', pax: true },
  { entry: { name: 'link', type: 'symlink', mode: 0o777, mtime: MTIME, linkname: 'short.txt' }, listed: 'lrwxrwxrwx', pax: false },
  { entry: { name: 'link-to-unicode', type: 'symlink', mode: 0o777, mtime: MTIME, linkname: 'ünïcødé/名前.txt' }, listed: 'lrwxrwxrwx', pax: true },
  { entry: { name: 'link-100', type: 'symlink', mode: 0o777, mtime: MTIME, linkname: TARGET_100 }, listed: 'lrwxrwxrwx', pax: false },
  { entry: { name: 'link-far', type: 'symlink', mode: 0o777, mtime: MTIME, linkname: LONG_TARGET }, listed: 'lrwxrwxrwx', pax: true },
];

describe('paddingAfter and END_OF_ARCHIVE', () => {
  it.each([
    [0, 0],
    [1, 511],
    [11, 501],
    [511, 1],
    [512, 0],
    [513, 511],
    [10 * GiB + 1, 511],
  ])('pads %i bytes of content with %i zero bytes to a whole block', (size, padding) => {
    expect(paddingAfter(size)).toBe(padding);
    expect((size + padding) % 512).toBe(0);
  });

  it('ends an archive with two zero blocks', () => {
    expect(END_OF_ARCHIVE.length).toBe(1024);
    expect(END_OF_ARCHIVE.every((byte) => byte === 0)).toBe(true);
  });
});

describe('encodeHeader, read by GNU tar', () => {
  let archivePath = '';
  beforeAll(() => {
    archivePath = path.join(dir.path, 'ours.tar');
    writeFileSync(archivePath, archiveOf(WRITTEN));
  });

  it('writes one 512-byte ustar block when the name fits (in the prefix split too), a pax header in front when not', () => {
    for (const { entry, pax } of WRITTEN) {
      const header = encodeHeader(entry);
      const typeflagOf = (block: Buffer) => String.fromCharCode(block[156]!);
      if (pax) {
        expect(header.length, entry.name).toBeGreaterThan(512);
        expect(typeflagOf(header), entry.name).toBe('x');
      } else {
        expect(header.length, entry.name).toBe(512);
      }
      expect(header.length % 512).toBe(0);
      expect(typeflagOf(header.subarray(header.length - 512)), entry.name).toBe({ file: '0', directory: '5', symlink: '2', hardlink: '1' }[entry.type]);
    }
    const split = encodeHeader(WRITTEN.find((w) => w.entry.name === SPLIT_NAME)!.entry);
    expect(split.toString('latin1', 345, 500).replace(/\0+$/, '')).toBe(`split/${'a'.repeat(90)}`);
    expect(split.toString('latin1', 0, 100).replace(/\0+$/, '')).toBe(`${'b'.repeat(90)}.txt`);
  });

  it('lists every name, in order, with a trailing slash on directories', () => {
    const names = gnuTar(['--quoting-style=literal', '-tf', archivePath]).split('\n').filter((line) => line !== '');
    expect(names).toEqual(WRITTEN.map((w) => expectedOf(w).name));
  });

  it('lists types, permission bits (setuid included), sizes, mtimes and symlink targets as written', () => {
    expect(gnuList(archivePath)).toEqual(
      WRITTEN.map((w) => ({
        perms: w.listed,
        size: w.entry.size ?? 0,
        time: w.entry.mtime === MTIME ? MTIME_LISTED : '2023-11-14 22:13:21',
        name: expectedOf(w).name,
        ...(w.entry.type === 'symlink' ? { target: w.entry.linkname } : {}),
      })),
    );
  });

  it('extracts every file byte for byte, with its mode and mtime, and every symlink with its target', () => {
    const out = path.join(dir.path, 'gnu-extracted');
    mkdirSync(out);
    gnuTar(['-x', '-p', '-f', archivePath, '-C', out]);
    const tree = describeTree(out);
    for (const { entry, content } of WRITTEN) {
      const name = entry.name.replace(/\/$/, '');
      const expected: TreeEntry =
        entry.type === 'file'
          ? { type: 'file', mode: entry.mode, mtime: entry.mtime, size: content!.length, sha256: sha256(content!) }
          : entry.type === 'directory'
            ? { type: 'directory', mode: entry.mode, mtime: entry.mtime }
            : { type: 'symlink', target: entry.linkname };
      // Whether set-user-ID survives extraction depends on who extracts; the listing above shows it is in the archive.
      const permissions = (t: TreeEntry | undefined) => (t?.mode === undefined ? t : { ...t, mode: t.mode & 0o777 });
      expect(permissions(tree[name]), name).toEqual(permissions(expected));
    }
    expect(readFileSync(path.join(out, SPLIT_NAME), 'utf8')).toBe('split\n');
    expect(readlinkSync(path.join(out, 'link-far'))).toBe(LONG_TARGET);
  });

  it('writes sizes past 8 GiB in base-256, which GNU tar lists as the exact size', () => {
    const header = encodeHeader({ name: 'big.bin', type: 'file', mode: 0o644, mtime: MTIME, size: 10 * GiB });
    expect(header.length).toBe(512);
    expect([...header.subarray(124, 136)]).toEqual([0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x80, 0, 0, 0]);
    const bigPath = path.join(dir.path, 'big-header-only.tar');
    writeFileSync(bigPath, header);
    // Only the header is there, so GNU tar lists it and then fails on the missing content.
    const listing = spawnSync('tar', ['--numeric-owner', '--full-time', '-tvf', bigPath], { env: GNU_TAR_ENV, encoding: 'utf8' });
    expect(listing.status).not.toBe(0);
    expect(parseListing(listing.stdout)).toEqual([{ perms: '-rw-r--r--', size: 10 * GiB, time: MTIME_LISTED, name: 'big.bin' }]);
  });

  it('keeps octal up to the largest 11-digit size and switches to base-256 one byte later', () => {
    const largestOctal = 2 ** 33 - 1;
    const octal = encodeHeader({ name: 'f', type: 'file', mode: 0o644, mtime: MTIME, size: largestOctal });
    expect(octal.toString('latin1', 124, 136)).toBe('77777777777\0');
    const binary = encodeHeader({ name: 'f', type: 'file', mode: 0o644, mtime: MTIME, size: largestOctal + 1 });
    expect(binary[124]).toBe(0x80);
    for (const [header, size] of [
      [octal, largestOctal],
      [binary, largestOctal + 1],
    ] as const) {
      const reader = new TarReader();
      reader.push(header);
      const event = reader.next();
      expect(event?.kind === 'entry' && event.header.size).toBe(size);
    }
  });

  it('floors fractional mtimes, writes those before 1970 or after 2242 in base-256 as GNU tar does, and masks the mode to its 12 permission bits', () => {
    const YEAR_2300 = Date.parse('2300-01-01T00:00:00Z') / 1000;
    const archive = archiveOf([
      { entry: { name: 'fraction', type: 'file', mode: 0o100644, mtime: MTIME + 0.9 } },
      { entry: { name: 'before-epoch', type: 'file', mode: 0o644, mtime: -86_400.5 } },
      { entry: { name: 'last-octal', type: 'file', mode: 0o644, mtime: 2 ** 33 - 1 } },
      { entry: { name: 'far-future', type: 'file', mode: 0o644, mtime: YEAR_2300 } },
    ]);
    const archivePath2 = path.join(dir.path, 'out-of-octal.tar');
    writeFileSync(archivePath2, archive);
    const listed = (seconds: number) => new Date(seconds * 1000).toISOString().replace('T', ' ').slice(0, 19);
    expect(gnuList(archivePath2).map(({ perms, time }) => [perms, time])).toEqual([
      ['-rw-r--r--', MTIME_LISTED],
      ['-rw-r--r--', listed(-86_401)],
      ['-rw-r--r--', listed(2 ** 33 - 1)],
      ['-rw-r--r--', listed(YEAR_2300)],
    ]);
    expect([1, 2, 3].map((i) => archive[i * BLOCK_SIZE + 136])).toEqual([0xff, 0x37, 0x80]);
    expect(readWhole(archive).map(({ header }) => [header.mode, header.mtime])).toEqual([
      [0o644, MTIME],
      [0o644, -86_401],
      [0o644, 2 ** 33 - 1],
      [0o644, YEAR_2300],
    ]);
  });
});

describe('encodeHeader, byte for byte', () => {
  it('writes the bytes it always wrote (every backup archive of the same files stays the same)', () => {
    const written = archiveOf(WRITTEN);
    expect(createHash('sha256').update(written).digest('hex')).toBe('2ac9242cc4eac75c49d78984019bf9cc125ef7d55cd48e81c9c7ebbd086cfc4a');
  });

  it('writes into a reused block what it writes into a new one, whatever the block held', () => {
    const reuse = Buffer.alloc(BLOCK_SIZE, 0xff);
    for (const previous of [undefined, ...WRITTEN]) {
      if (previous !== undefined) encodeHeader(previous.entry, reuse);
      for (const { entry } of WRITTEN) {
        const fresh = encodeHeader(entry);
        expect(encodeHeader(entry, reuse).equals(fresh), entry.name).toBe(true);
        if (previous !== undefined) encodeHeader(previous.entry, reuse);
      }
    }
  });
});

describe('encodeHeader, read by tar-stream and by TarReader', () => {
  it('tar-stream extracts every entry with the name, type, size, mode, mtime, link target and content written', async () => {
    const archive = archiveOf(WRITTEN);
    const extracted = await tarStreamExtract(archive);
    expect(extracted.map(comparableTarStream)).toEqual(WRITTEN.map(expectedOf));
  });

  it('TarReader reads back exactly what it wrote, and agrees with tar-stream', async () => {
    const archive = archiveOf(WRITTEN);
    const ours = readWhole(archive).map(comparable);
    expect(ours).toEqual(WRITTEN.map(expectedOf));
    expect(ours).toEqual((await tarStreamExtract(archive)).map(comparableTarStream));
  });

  it('reports each entry at the offset of its ustar header block', () => {
    const archive = archiveOf(WRITTEN);
    const entries = readWhole(archive);
    let at = 0;
    WRITTEN.forEach(({ entry, content }, i) => {
      const header = encodeHeader(entry);
      expect(entries[i]!.offset).toBe(at + header.length - 512);
      at += header.length + (content?.length ?? 0) + paddingAfter(content?.length ?? 0);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Archives tar-stream packs, read by TarReader

describe('TarReader on archives packed by tar-stream', () => {
  const date = new Date(MTIME * 1000 + 999);
  const packed: { header: Partial<TarStreamHeader> & { name: string }; content?: Buffer }[] = [
    { header: { name: 'plain.txt', mode: 0o640, mtime: date }, content: text('plain\n') },
    { header: { name: 'dir', type: 'directory', mode: 0o750, mtime: date } },
    { header: { name: 'dir/setuid', mode: 0o4755, mtime: date }, content: text('#!/bin/sh\n') },
    { header: { name: 'empty', mtime: date }, content: Buffer.alloc(0) },
    { header: { name: 'exact-512.bin', mtime: date }, content: pattern(512, 3) },
    { header: { name: 'over-513.bin', mtime: date }, content: pattern(513, 4) },
    { header: { name: `${'p'.repeat(90)}/${'q'.repeat(90)}`, mtime: date }, content: text('prefix split\n') },
    { header: { name: `${'r'.repeat(150)}`, mtime: date }, content: text('pax path\n') },
    { header: { name: 'ünï/名前.txt', mtime: date }, content: text('utf-8 name in pax\n') },
    { header: { name: 'symlink', type: 'symlink', linkname: 'plain.txt', mtime: date } },
    { header: { name: 'symlink-raw-utf8', type: 'symlink', linkname: 'zïel/名前', mtime: date } },
    { header: { name: 'symlink-far', type: 'symlink', linkname: LONG_TARGET, mtime: date } },
    { header: { name: 'hardlink', type: 'link', linkname: 'plain.txt', mtime: date } },
    { header: { name: 'with-xattr', mtime: date, pax: { 'SCHILY.xattr.user.k': 'v', comment: 'ignored' } }, content: text('x\n') },
  ];

  let archive: Buffer = Buffer.alloc(0);
  beforeAll(async () => {
    archive = await tarStreamPack(packed);
  });

  it('packs the long, non-ASCII and xattr entries with pax headers, and the 181-byte name in the ustar prefix', () => {
    const flags = typeflagsOf(archive);
    expect(flags.filter((f) => f.typeflag === 'x')).toHaveLength(4);
    expect(flags.some((f) => f.prefixed)).toBe(true);
  });

  it('reads the name, type, size, mode, mtime in whole seconds, link target and content of every entry', () => {
    expect(readWhole(archive).map(comparable)).toEqual(
      packed.map(({ header, content }) => ({
        name: header.name,
        type: header.type ?? 'file',
        size: content?.length ?? 0,
        mode: header.mode ?? (header.type === 'directory' ? 0o755 : 0o644),
        mtime: MTIME,
        linkname: header.linkname,
        data: content ?? Buffer.alloc(0),
      })),
    );
  });

  it('reads exactly what tar-stream extracts from the same bytes', async () => {
    expect(readWhole(archive).map(comparable)).toEqual((await tarStreamExtract(archive)).map(comparableTarStream));
  });
});

// ---------------------------------------------------------------------------------------------
// Archives GNU tar writes, read by TarReader

/** 1960-01-01 00:00:00 UTC. */
const PRE_EPOCH = -315_619_200;

/** A --format=gnu archive of one file "f" ("old\n") modified at PRE_EPOCH; its path. */
function preEpochGnuArchive(tag: string): string {
  const old = path.join(dir.path, `pre-epoch-${tag}`);
  mkdirSync(old);
  writeFileSync(path.join(old, 'f'), 'old\n');
  // Not utimesSync: Node turns a negative time into "now".
  execFileSync('touch', ['-m', '-d', `@${PRE_EPOCH}`, path.join(old, 'f')]);
  expect(Math.floor(lstatSync(path.join(old, 'f')).mtimeMs / 1000)).toBe(PRE_EPOCH);
  const file = path.join(dir.path, `pre-epoch-${tag}.tar`);
  gnuTar(['--format=gnu', '-cf', file, '-C', old, 'f']);
  return file;
}

describe('TarReader on archives written by GNU tar', () => {
  let tree = '';
  const UNICODE_NAME = 'ünïcødé-名前.txt';
  const LONG_NAME = `${'n'.repeat(120)}.txt`;
  const DEEP = `${'l'.repeat(80)}/${'m'.repeat(80)}`;
  let members: string[] = [];

  beforeAll(() => {
    tree = path.join(dir.path, 'gnu-tree');
    mkdirSync(path.join(tree, DEEP), { recursive: true });
    mkdirSync(path.join(tree, 'private'), { mode: 0o750 });
    const files: [string, Buffer, number][] = [
      ['short.txt', text('hello, tar\n'), 0o640],
      ['empty', Buffer.alloc(0), 0o644],
      ['exact-512.bin', pattern(512, 5), 0o644],
      ['over-513.bin', pattern(513, 6), 0o644],
      ['setuid-tool', text('#!/bin/sh\n'), 0o4755],
      ['private/note.txt', text('note\n'), 0o600],
      [UNICODE_NAME, text('unicode\n'), 0o644],
      [LONG_NAME, text('long name\n'), 0o644],
      [`${DEEP}/file.txt`, text('deep\n'), 0o644],
      ['hard-a', text('shared inode\n'), 0o644],
    ];
    for (const [name, content, mode] of files) {
      writeFileSync(path.join(tree, name), content);
      execFileSync('chmod', [mode.toString(8), path.join(tree, name)]); // umask-free, setuid included
    }
    execFileSync('chmod', ['750', path.join(tree, 'private')]);
    linkSync(path.join(tree, 'hard-a'), path.join(tree, 'hard-b'));
    symlinkSync('short.txt', path.join(tree, 'link'));
    symlinkSync(UNICODE_NAME, path.join(tree, 'link-unicode'));
    symlinkSync(LONG_TARGET, path.join(tree, 'link-far'));
    execFileSync('mkfifo', [path.join(tree, 'fifo')]);
    for (const name of [...files.map(([name]) => name), 'hard-b', 'fifo']) utimesSync(path.join(tree, name), MTIME, MTIME);
    for (const name of ['link', 'link-unicode', 'link-far']) lutimesSync(path.join(tree, name), MTIME, MTIME);
    for (const name of [DEEP, path.dirname(DEEP), 'private']) utimesSync(path.join(tree, name), MTIME, MTIME);
    members = ['empty', 'exact-512.bin', 'fifo', 'hard-a', 'hard-b', 'link', 'link-far', 'link-unicode', path.dirname(DEEP), LONG_NAME, 'over-513.bin', 'private', 'setuid-tool', 'short.txt', UNICODE_NAME];
  });

  function gnuArchive(format: string, only: readonly string[] = members): Buffer {
    const file = path.join(dir.path, `gnu-${format}-${only.length}.tar`);
    gnuTar([`--format=${format}`, '--sort=name', '-cf', file, '-C', tree, ...only]);
    return readFileSync(file);
  }

  function gnuNames(archive: Buffer): string[] {
    const file = path.join(dir.path, 'names.tar');
    writeFileSync(file, archive);
    return gnuTar(['--quoting-style=literal', '-tf', file]).split('\n').filter((line) => line !== '');
  }

  function expectedTree(only: readonly string[] = members): Record<string, TreeEntry> {
    const all = describeTree(tree);
    delete all['']; // the temp dir itself is not archived
    return Object.fromEntries(Object.entries(all).filter(([name]) => only.some((member) => name === member || name.startsWith(`${member}/`))));
  }

  it.each(['gnu', 'oldgnu', 'posix'])('reads a --format=%s archive: every entry, in GNU tar\'s order, as on disk', (format) => {
    const archive = gnuArchive(format);
    const entries = readWhole(archive);
    expect(entries.map((e) => e.header.name)).toEqual(gnuNames(archive));
    expect(treeFromArchive(entries)).toEqual(expectedTree());
    const byName = new Map(entries.map((e) => [e.header.name, e.header]));
    expect(byName.get('fifo')).toMatchObject({ type: 'fifo', size: 0, mtime: MTIME });
    expect(byName.get('hard-b')).toMatchObject({ type: 'link', linkname: 'hard-a', size: 0 });
    expect(byName.get('setuid-tool')).toMatchObject({ type: 'file', mode: 0o4755 });
    expect(byName.get('link-far')).toMatchObject({ type: 'symlink', linkname: LONG_TARGET, mtime: MTIME });
    expect(byName.get(`${DEEP}/file.txt`)?.size).toBe(5);
  });

  it('the gnu archive really carries GNU long-name (L) and long-link (K) headers, the posix one pax (x) headers', () => {
    expect(new Set(typeflagsOf(gnuArchive('gnu')).map((f) => f.typeflag))).toEqual(new Set(['0', '1', '2', '5', '6', 'L', 'K']));
    const posix = new Set(typeflagsOf(gnuArchive('posix')).map((f) => f.typeflag));
    expect(posix.has('x')).toBe(true);
    expect(posix.has('L')).toBe(false);
  });

  it('reads a --format=ustar archive, whose long paths GNU tar splits into prefix and name', () => {
    const only = [path.dirname(DEEP), 'link', 'link-unicode', 'private', 'short.txt', UNICODE_NAME];
    const archive = gnuArchive('ustar', only);
    expect(typeflagsOf(archive).some((f) => f.prefixed)).toBe(true);
    expect(typeflagsOf(archive).every((f) => f.typeflag !== 'x')).toBe(true);
    const entries = readWhole(archive);
    expect(entries.map((e) => e.header.name)).toEqual(gnuNames(archive));
    expect(treeFromArchive(entries)).toEqual(expectedTree(only));
  });

  it('reads a --format=v7 archive (no magic, no prefix), whose names fit 99 bytes', () => {
    const only = ['empty', 'hard-a', 'hard-b', 'link', 'link-unicode', 'private', 'short.txt', UNICODE_NAME];
    const archive = gnuArchive('v7', only);
    expect(archive.toString('latin1', 257, 263)).toBe('\0'.repeat(6));
    const entries = readWhole(archive);
    expect(entries.map((e) => e.header.name)).toEqual(gnuNames(archive));
    expect(treeFromArchive(entries)).toEqual(expectedTree(only));
    const byName = new Map(entries.map((e) => [e.header.name, e.header]));
    expect(byName.get('private/')).toMatchObject({ type: 'directory', mode: 0o750 });
    expect(byName.get('hard-b')).toMatchObject({ type: 'link', linkname: 'hard-a' });
  });

  it('reads the content GNU tar stored, byte for byte, including the 512- and 513-byte files', () => {
    const entries = readWhole(gnuArchive('gnu'));
    const content = (name: string) => entries.find((e) => e.header.name === name)!.data;
    expect(content('exact-512.bin').equals(readFileSync(path.join(tree, 'exact-512.bin')))).toBe(true);
    expect(content('over-513.bin').equals(readFileSync(path.join(tree, 'over-513.bin')))).toBe(true);
    expect(content(UNICODE_NAME).toString()).toBe('unicode\n');
    expect(content('empty').length).toBe(0);
  });

  it('GNU tar writes a pre-1970 mtime as a negative base-256 number (see the known defect below)', () => {
    const file = preEpochGnuArchive('listed');
    expect(readFileSync(file)[136]).toBe(0xff);
    expect(gnuList(file).map(({ name, time }) => [name, time])).toEqual([['f', '1960-01-01 00:00:00']]);
  });
});

// ---------------------------------------------------------------------------------------------
// Chunk boundaries

/** An archive of everything the reader handles: pax, prefix split, GNU L/K, a 'g' header, an unknown typeflag, padding after the end. */
function mixedArchive(): Buffer {
  const handmade = new TarBuilder()
    .pax({ comment: 'global, ignored', 'SCHILY.xattr.user.x': 'y' }, 'g')
    .gnuLongName(`gnu/${'L'.repeat(200)}`)
    .gnuLongName(`target/${'K'.repeat(200)}`, 'K')
    .symlink('gnu-short', 'short-target')
    .special('unknown-type', 'Z', pattern(700, 7))
    .file('after-unknown.txt', 'after\n')
    .pax({ size: '1300' })
    .raw({ name: 'pax-sized', typeflag: '0', size: 0 }, pattern(1300, 8))
    .unterminated();
  return Buffer.concat([archiveOf(WRITTEN, { end: false }), handmade, END_OF_ARCHIVE, Buffer.alloc(8 * 512)]);
}

describe('TarReader, whatever the chunk boundaries', () => {
  let archive: Buffer = Buffer.alloc(0);
  /** What one push of the whole archive yields. */
  let reference: ReadEntry[] = [];
  beforeAll(() => {
    archive = mixedArchive();
    reference = readWhole(archive);
  });

  it('reads the mixed archive as expected in one push (the reference the other tests compare to)', () => {
    expect(reference.map((e) => e.header.name)).toEqual([
      ...WRITTEN.map((w) => expectedOf(w).name),
      `gnu/${'L'.repeat(200)}`,
      'unknown-type',
      'after-unknown.txt',
      'pax-sized',
    ]);
    expect(reference.at(-4)?.header.linkname).toBe(`target/${'K'.repeat(200)}`);
    expect(reference.at(-3)?.header).toMatchObject({ type: undefined, typeflag: 'Z', size: 700 });
    expect(reference.at(-3)?.data.equals(pattern(700, 7))).toBe(true);
    expect(reference.at(-2)?.data.toString()).toBe('after\n');
    expect(reference.at(-1)?.header.size).toBe(1300);
    expect(reference.at(-1)?.data.equals(pattern(1300, 8))).toBe(true);
  });

  it.each([1, 7, 256, 511, 512, 513, 4099])('yields the same entries, offsets and content when pushed in %i-byte chunks', (size) => {
    expect(read(inChunksOf(archive, size))).toEqual(reference);
  });

  it('yields the same entries, offsets and content for any cut points (fast-check)', () => {
    const halvingEveryBlock = Array.from({ length: archive.length / 512 }, (_, i) => i * 512 + 256);
    const insideHeaderFields = Array.from({ length: archive.length / 512 }, (_, i) => i * 512 + 150);
    fc.assert(
      fc.property(fc.array(fc.nat({ max: archive.length }), { maxLength: 60 }), (cuts) => {
        expect(read(cutAt(archive, cuts))).toEqual(reference);
      }),
      { numRuns: 300, examples: [[halvingEveryBlock], [insideHeaderFields], [[1]], [[archive.length - 1]]] },
    );
  });

  it('yields the same events for an archive GNU tar wrote (fast-check)', () => {
    const tree = path.join(dir.path, 'chunk-tree');
    mkdirSync(path.join(tree, 'd'.repeat(90)), { recursive: true });
    writeFileSync(path.join(tree, 'd'.repeat(90), `${'f'.repeat(90)}.bin`), pattern(3000, 9));
    symlinkSync('t'.repeat(150), path.join(tree, 'l'.repeat(110)));
    const file = path.join(dir.path, 'chunk.tar');
    gnuTar(['--format=gnu', '--sort=name', '-cf', file, '-C', tree, '.']);
    const gnu = readFileSync(file);
    const expected = readWhole(gnu);
    expect(expected.map((e) => e.header.type)).toEqual(['directory', 'directory', 'file', 'symlink']);
    fc.assert(
      fc.property(fc.array(fc.nat({ max: gnu.length }), { maxLength: 30 }), (cuts) => {
        expect(read(cutAt(gnu, cuts))).toEqual(expected);
      }),
      { numRuns: 150 },
    );
  });

  it('hands out content as views into the pushed chunk, not copies', () => {
    const single = archiveOf([{ entry: { name: 'f', type: 'file', mode: 0o644, mtime: MTIME, size: 5 }, content: text('12345') }]);
    const reader = new TarReader();
    reader.push(single);
    expect(reader.next()?.kind).toBe('entry');
    const data = reader.next();
    expect(data?.kind).toBe('data');
    if (data?.kind !== 'data') return;
    expect(data.bytes.buffer).toBe(single.buffer);
    expect(data.bytes.byteOffset).toBe(single.byteOffset + 512);
    expect(reader.next()).toBeUndefined();
  });

  it('refuses a push before the previous chunk was consumed', () => {
    const reader = new TarReader();
    reader.push(archiveOf(WRITTEN.slice(0, 1)));
    expect(() => reader.push(Buffer.alloc(512))).toThrow(/before the previous chunk was consumed/);
  });
});

// ---------------------------------------------------------------------------------------------
// Headers as other tars write them

describe('TarReader on hand-built headers', () => {
  it.each([
    ['0', 'file'],
    ['1', 'link'],
    ['2', 'symlink'],
    ['3', 'character-device'],
    ['4', 'block-device'],
    ['5', 'directory'],
    ['6', 'fifo'],
    ['7', 'contiguous-file'],
  ])('reads typeflag %s as a %s, as tar-stream does', async (typeflag, type) => {
    const archive = new TarBuilder().raw({ name: 'entry', typeflag, linkname: typeflag === '1' || typeflag === '2' ? 'target' : undefined }).build();
    const [entry] = readWhole(archive);
    expect(entry?.header).toMatchObject({ type, typeflag });
    const [theirs] = await tarStreamExtract(archive);
    expect(comparable(entry!)).toEqual(comparableTarStream(theirs!));
  });

  it('reads an old-style directory (typeflag NUL, 0 or 7, name ending in a slash) as a directory, as GNU tar extracts it, and a NUL typeflag as 0', () => {
    const archive = new TarBuilder()
      .raw({ name: 'old-dir/', typeflag: '\0' })
      .raw({ name: 'old-dir2/', typeflag: '0' })
      .raw({ name: 'old-file', typeflag: '\0' })
      .raw({ name: 'contiguous-dir/', typeflag: '7' })
      .raw({ name: 'contiguous-file', typeflag: '7' })
      .build();
    expect(readWhole(archive).map(({ header }) => [header.name, header.type, header.typeflag])).toEqual([
      ['old-dir/', 'directory', '0'],
      ['old-dir2/', 'directory', '0'],
      ['old-file', 'file', '0'],
      ['contiguous-dir/', 'directory', '7'],
      ['contiguous-file', 'contiguous-file', '7'],
    ]);
  });

  it("reads past GNU tar's volume label (V) and reads an incremental directory (D) as a directory, without its list of names", () => {
    const names = text('Nfile\0Ysub\0\0');
    const archive = new TarBuilder()
      .raw({ name: 'weekly', typeflag: 'V', magic: 'none' })
      .raw({ name: 'dumped/', typeflag: 'D', magic: 'gnu', size: names.length, mode: 0o750 }, names)
      .file('dumped/file', 'x')
      .build();
    expect(readWhole(archive).map(({ header, data }) => [header.name, header.type, header.size, data.length])).toEqual([
      ['dumped/', 'directory', 0, 0],
      ['dumped/file', 'file', 1, 1],
    ]);
  });

  it("reports the names an incremental directory's list marks as not in the archive (N, or a rename), read in chunks of any size", () => {
    // `tar -g` a second time: its files unchanged since the first are N, not in this archive.
    const names = text(`Nconfig.json\0Dsessions\0Ys2.json\0R${'r'.repeat(300)}\0Ttoken\0\0Nafter-the-end\0`);
    const archive = new TarBuilder()
      .raw({ name: 'level1/', typeflag: 'D', magic: 'gnu', size: names.length }, names)
      .raw({ name: 'level0/', typeflag: 'D', magic: 'gnu', size: 14 }, text('Ya\0Db\0Yc\0\0\0\0'))
      .file('level1/s2.json', 'x')
      .build();
    for (const size of [1, 7, 512, archive.length]) {
      const chunks = Array.from({ length: Math.ceil(archive.length / size) }, (_, i) => archive.subarray(i * size, (i + 1) * size));
      expect(read(chunks).map(({ header }) => [header.name, header.size, header.absent])).toEqual([
        ['level1/', 0, { count: 3, names: ['config.json', 'r'.repeat(255)] }],
        ['level0/', 0, undefined],
        ['level1/s2.json', 1, undefined],
      ]);
    }
  });

  it("reports the names a GNU.dumpdir pax record (tar -g --format=posix: a directory's list) marks as not in the archive", () => {
    const archive = new TarBuilder()
      .pax({ 'GNU.dumpdir': 'Nconfig.json\0Dnotes\0\0' })
      .raw({ name: 'level1/', typeflag: '5' })
      .pax({ 'GNU.dumpdir': 'Ya\0Db\0\0' })
      .raw({ name: 'level0/', typeflag: '5' })
      .build();
    expect(readWhole(archive).map(({ header }) => [header.name, header.type, header.absent])).toEqual([
      ['level1/', 'directory', { count: 1, names: ['config.json'] }],
      ['level0/', 'directory', undefined],
    ]);
  });

  it('reads the GNU magic ("ustar  ") and ignores the prefix field there (GNU keeps other data in it)', () => {
    const archive = new TarBuilder().raw({ name: 'gnu-name', typeflag: '0', magic: 'gnu', prefix: 'not-a-prefix' }).raw({ name: 'posix-name', typeflag: '0', prefix: 'is/a/prefix' }).build();
    expect(readWhole(archive).map((e) => e.header.name)).toEqual(['gnu-name', 'is/a/prefix/posix-name']);
  });

  it('reads numbers padded with spaces and NULs, a 12-digit size filling its field, and a positive base-256 size', () => {
    const withSize = (field: string | Buffer, content: Buffer) =>
      new TarBuilder().raw({ name: 'f', typeflag: '0', sizeField: Buffer.isBuffer(field) ? field : Buffer.from(field, 'latin1') }, content).build();
    expect(readWhole(withSize('   17 \0\0\0\0\0\0', pattern(15, 1)))[0]?.data.equals(pattern(15, 1))).toBe(true);
    expect(readWhole(withSize('000000000017', pattern(15, 2)))[0]?.header.size).toBe(15);
    expect(readWhole(withSize(base256(1000n), pattern(1000, 3)))[0]?.data.equals(pattern(1000, 3))).toBe(true);
    expect(readWhole(new TarBuilder().raw({ name: 'f', typeflag: '5', mode: 0o755, mtimeField: base256(BigInt(MTIME)) }).build())[0]?.header.mtime).toBe(MTIME);
  });

  it('accepts a checksum computed over signed bytes, as some old tars wrote it', () => {
    const name = Buffer.from('naïve-名前', 'utf8');
    const unsigned = rawHeader({ name, typeflag: '0' });
    let signed = 0;
    for (let i = 0; i < 512; i++) signed += i >= 148 && i < 156 ? 0x20 : (unsigned[i]! << 24) >> 24;
    expect(signed).not.toBe(checksum(unsigned));
    const archive = Buffer.concat([rawHeader({ name, typeflag: '0', checksum: signed }), END_OF_ARCHIVE]);
    expect(readWhole(archive)[0]?.header.name).toBe('naïve-名前');
  });

  describe('the end of the archive, as GNU tar reads it', () => {
    const a = archiveOf([{ entry: { name: 'a', type: 'file', mode: 0o644, mtime: MTIME, size: 2 }, content: text('a\n') }], { end: false });
    const b = archiveOf([{ entry: { name: 'b', type: 'file', mode: 0o644, mtime: MTIME, size: 2 }, content: text('b\n') }], { end: false });
    const names = (archive: Buffer): string[] => readWhole(archive).map((e) => e.header.name);

    it('ends at the first zero block and accepts zero padding after it, a partial block too', () => {
      expect(names(Buffer.concat([a, END_OF_ARCHIVE]))).toEqual(['a']);
      expect(names(Buffer.concat([a, Buffer.alloc(512)]))).toEqual(['a']);
      expect(names(Buffer.concat([a, END_OF_ARCHIVE, Buffer.alloc(20 * 512 + 100)]))).toEqual(['a']);
      expect(names(Buffer.concat([a, Buffer.alloc(MAX_TRAILING_ZERO_BYTES)]))).toEqual(['a']);
    });

    it('refuses more zero padding than any record size needs, without reading on', () => {
      const reader = new TarReader();
      reader.push(a);
      while (reader.next() !== undefined);
      const zeros = Buffer.alloc(1024 * 1024);
      let pushed = 0;
      expect(() => {
        for (;;) {
          reader.push(zeros);
          pushed += zeros.length;
          while (reader.next() !== undefined);
        }
      }).toThrow(/more than 16 MiB of padding after its end-of-archive marker \(at byte 1024\)/);
      expect(pushed).toBe(MAX_TRAILING_ZERO_BYTES + zeros.length);
      expect(reader.ended).toBe(true);
    });

    it.each([
      ['an entry after the two end blocks (tar -t stops before it)', () => Buffer.concat([a, END_OF_ARCHIVE, b, END_OF_ARCHIVE]), 2048],
      ['an entry after a lone zero block (GNU tar stops there too)', () => Buffer.concat([a, Buffer.alloc(512), b, END_OF_ARCHIVE]), 1536],
      ['entries after leading zero blocks (GNU tar lists nothing)', () => Buffer.concat([Buffer.alloc(3 * 512), a, END_OF_ARCHIVE]), 1536],
      ['one stray byte in the padding', () => Buffer.concat([a, END_OF_ARCHIVE, Buffer.alloc(5000), Buffer.from([1])]), 1024 + 1024 + 5000],
    ])('refuses %s', (_, build, at) => {
      const archive = build();
      expect(() => consume(archive)).toThrow(UnsafeArchiveError);
      expect(() => consume(archive)).toThrow(new RegExp(`data after its end-of-archive marker \\(at byte ${at}; the marker is at byte \\d+\\), which tar -t does not list`));
      for (const size of [1, 511, 4096]) expect(() => read(inChunksOf(archive, size))).toThrow(UnsafeArchiveError);
    });

    it('agrees with GNU tar, which lists only what comes before the first zero block', () => {
      const file = path.join(dir.path, 'after-end.tar');
      writeFileSync(file, Buffer.concat([a, END_OF_ARCHIVE, b, END_OF_ARCHIVE]));
      expect(gnuList(file).map((entry) => entry.name)).toEqual(['a']);
      writeFileSync(file, Buffer.concat([a, Buffer.alloc(512), b, END_OF_ARCHIVE]));
      expect(gnuList(file).map((entry) => entry.name)).toEqual(['a']);
    });
  });

  describe('global pax headers (g), which GNU tar applies to every later entry and libarchive ignores', () => {
    it.each([['path'], ['linkpath'], ['size'], ['mtime']])('refuses one that sets %s', (key) => {
      const archive = new TarBuilder().pax({ [key]: '1' }, 'g').file('real.txt', 'real\n').build();
      expect(() => consume(archive)).toThrow(UnsafeArchiveError);
      expect(() => consume(archive)).toThrow(new RegExp(`global pax header at byte 0 sets ${key} for every later entry`));
    });

    it('agrees with GNU tar, which renames every later entry after a global path', () => {
      const file = path.join(dir.path, 'global-path.tar');
      writeFileSync(file, new TarBuilder().pax({ path: 'global/evil' }, 'g').file('real.txt', 'real\n').build());
      expect(gnuList(file).map((entry) => entry.name)).toEqual(['global/evil']);
    });

    it('skips one with other records (git archive writes a comment), while an x header after it applies', () => {
      const archive = new TarBuilder()
        .pax({ comment: '0123456789abcdef', charset: 'ISO-IR 10646 2000 UTF-8' }, 'g')
        .file('real.txt', 'real\n')
        .pax({ path: 'from-x.txt' })
        .file('ustar-name.txt', 'x\n')
        .build();
      expect(readWhole(archive).map((e) => e.header.name)).toEqual(['real.txt', 'from-x.txt']);
    });
  });

  it.each([
    ['two pax headers', (b: TarBuilder) => b.pax({ path: 'first' }).pax({ size: '2' }), 'x'],
    ['two GNU long names', (b: TarBuilder) => b.gnuLongName('first').gnuLongName('second'), 'L'],
    ['two GNU long link names', (b: TarBuilder) => b.gnuLongName('first', 'K').gnuLongName('second', 'K'), 'K'],
  ])('refuses %s for one entry (readers disagree on which applies)', (_, build, typeflag) => {
    const archive = build(new TarBuilder()).file('f', 'x\n').build();
    expect(() => consume(archive)).toThrow(UnsafeArchiveError);
    expect(() => consume(archive)).toThrow(`two '${typeflag}' extended headers for one entry`);
  });

  it.each([
    ['a GNU long name, then a pax path', (b: TarBuilder) => b.gnuLongName('/etc/from-L').pax({ path: 'from-x' }), 'path'],
    ['a pax path, then a GNU long name', (b: TarBuilder) => b.pax({ path: 'from-x' }).gnuLongName('/etc/from-L'), 'path'],
    ['a GNU long link name and a pax linkpath', (b: TarBuilder) => b.gnuLongName('/etc', 'K').pax({ linkpath: 'inside' }), 'linkpath'],
  ])('refuses %s for one entry (GNU tar takes the pax one, Python\'s tarfile the first)', (_, build, key) => {
    const archive = build(new TarBuilder()).symlink('f', 'x').build();
    expect(() => consume(archive)).toThrow(UnsafeArchiveError);
    expect(() => consume(archive)).toThrow(`a GNU long name and a pax ${key} for one entry`);
  });

  it('reports a GNU sparse file (typeflag S, or pax GNU.sparse records) as sparse, not as a plain file', () => {
    const archive = new TarBuilder()
      .special('old-sparse', 'S', text('map'))
      .pax({ 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.name': 'real-name', 'GNU.sparse.realsize': '9999' })
      .file('GNUSparseFile.0/real-name', 'map and data')
      .build();
    expect(readWhole(archive).map((e) => [e.header.name, e.header.type])).toEqual([
      ['old-sparse', 'sparse-file'],
      ['GNUSparseFile.0/real-name', 'sparse-file'],
    ]);
  });

  it('names a pax sparse file by its GNU.sparse.name, and by its path when that record is empty (a refusal must name something)', () => {
    const archive = new TarBuilder()
      .pax({ 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.name': 'real-name', 'GNU.sparse.realsize': '9999' })
      .file('GNUSparseFile.0/real-name', 'map and data')
      .pax({ 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.name': '', 'GNU.sparse.realsize': '9999' })
      .file('GNUSparseFile.0/stand-in', 'map and data')
      .build();
    expect(readWhole(archive).map((e) => e.header.sparseName)).toEqual(['real-name', undefined]);
  });

  it('reads a pax mtime, fractions and times outside the octal field included', () => {
    const archive = new TarBuilder()
      .pax({ mtime: '1700000000.123456789' })
      .file('fraction', 'x')
      .pax({ mtime: '-315619200' })
      .file('before-1970', 'x')
      .pax({ mtime: '8999999999.5' })
      .file('after-2242', 'x')
      .file('octal', 'x', { mtime: 1234 })
      .build();
    expect(readWhole(archive).map((e) => [e.header.name, e.header.mtime])).toEqual([
      ['fraction', 1700000000.123456789],
      ['before-1970', -315619200],
      ['after-2242', 8999999999.5],
      ['octal', 1234],
    ]);
  });

  it.each(['', 'soon', '1e9', '0x10', '1.', '.5', '--1', '12345678901234567'])('refuses the pax mtime %j as damage', (value) => {
    const archive = new TarBuilder().pax({ mtime: value }).file('f', 'x').build();
    expect(() => consume(archive)).toThrow(CorruptArchiveError);
    expect(() => consume(archive)).toThrow(/pax mtime/);
  });

  it('agrees with GNU tar on the pax mtime it writes for a file from 1960 and one from 2300', () => {
    const tree = path.join(dir.path, 'pax-times');
    mkdirSync(tree, { recursive: true });
    writeFileSync(path.join(tree, 'old'), 'o');
    writeFileSync(path.join(tree, 'future'), 'f');
    // Node 20's utimes mangles a negative time with a fraction; touch does not.
    execFileSync('touch', ['-d', '1960-01-01 00:00:00.25 UTC', path.join(tree, 'old')]);
    execFileSync('touch', ['-d', '2300-01-01 00:00:00.5 UTC', path.join(tree, 'future')]);
    const file = path.join(dir.path, 'pax-times.tar');
    gnuTar(['--format=pax', '--sort=name', '-cf', file, '-C', tree, 'future', 'old']);
    expect(readWhole(readFileSync(file)).map((e) => [e.header.name, e.header.mtime])).toEqual([
      ['future', 10413792000.5],
      ['old', -315619199.75],
    ]);
  });

  it('applies a pax path, linkpath and size to the next entry only', () => {
    const archive = new TarBuilder()
      .pax({ path: 'pax/ünï.txt', linkpath: 'pax/target', size: '3' })
      .raw({ name: 'ustar-name', typeflag: '2', linkname: 'ustar-target', size: 0 }, text('abc'))
      .symlink('second', 'second-target')
      .build();
    expect(readWhole(archive).map(comparable)).toEqual([
      { name: 'pax/ünï.txt', type: 'symlink', size: 3, mode: 0o644, mtime: MTIME, linkname: 'pax/target', data: text('abc') },
      { name: 'second', type: 'symlink', size: 0, mode: 0o777, mtime: MTIME, linkname: 'second-target', data: Buffer.alloc(0) },
    ]);
  });

  it('reads pax values holding newlines, equals signs and UTF-8 (the record length frames them)', () => {
    const name = ' a=b\nc/名前 with spaces.txt\n';
    const archive = archiveOf([{ entry: { name, type: 'file', mode: 0o644, mtime: MTIME, size: 1 }, content: text('!') }]);
    expect(readWhole(archive)[0]?.header.name).toBe(name);
  });

  // Decoded as UTF-8, each bad byte would become U+FFFD: the entry restored under a name
  // other than the one GNU tar restores, and `a\xff` and `a\xfe` met as one. Each is kept as
  // a lone surrogate U+DC80 + byte (raw-name.ts), the bytes it stands for.
  it.each([
    ['a ustar name', () => new TarBuilder().raw({ name: Buffer.from('tenants/acme/a\xff', 'latin1'), typeflag: '0' }), 'tenants/acme/a\udcff', undefined],
    ['a ustar prefix', () => new TarBuilder().raw({ prefix: Buffer.from('tenants/acme/\xc3', 'latin1'), name: 'x', typeflag: '0' }), 'tenants/acme/\udcc3/x', undefined],
    ['a ustar link target', () => new TarBuilder().raw({ name: 'l', typeflag: '2', linkname: Buffer.from('t\xe2\x82', 'latin1') }), 'l', 't\udce2\udc82'],
    ['a GNU long name (an encoded surrogate)', () => new TarBuilder().gnuLongName(Buffer.from('tenants/acme/\xed\xa0\x80', 'latin1')).file('decoy'), 'tenants/acme/\udced\udca0\udc80', undefined],
    ['a GNU long link', () => new TarBuilder().gnuLongName(Buffer.from('\xff', 'latin1'), 'K').symlink('l', 'decoy'), 'l', '\udcff'],
    ['a pax path (hdrcharset=BINARY, as Python writes it)', () => new TarBuilder().pax({ hdrcharset: 'BINARY', path: Buffer.from('tenants/acme/a\xff', 'latin1') }).file('decoy'), 'tenants/acme/a\udcff', undefined],
    ['a pax path without hdrcharset (GNU tar in a UTF-8 locale)', () => new TarBuilder().pax({ path: Buffer.from('tenants/acme/caf\xe9 \xc3\xa9', 'latin1') }).file('decoy'), 'tenants/acme/caf\udce9 é', undefined],
    ['a pax linkpath (an overlong slash)', () => new TarBuilder().pax({ linkpath: Buffer.from('\xc0\xaf', 'latin1') }).symlink('l', 'decoy'), 'l', '\udcc0\udcaf'],
  ])('keeps the bytes of a name that is not UTF-8 in %s', (_label, build, name, linkname) => {
    const [entry] = readWhole(build().build());
    expect([entry?.header.name, entry?.header.linkname]).toEqual([name, linkname]);
  });

  it('writes a name and link target that are not UTF-8 as their bytes in pax records (as GNU tar does), which GNU tar lists as they are', () => {
    const name = 'tenants/acme/caf\udce9';
    const archive = archiveOf([
      { entry: { name, type: 'file', mode: 0o644, mtime: MTIME, size: 2 }, content: text('hi') },
      { entry: { name: 'tenants/acme/l\udcff', type: 'symlink', mode: 0o777, mtime: MTIME, linkname: 'caf\udce9' } },
      { entry: { name: 'tenants/acme/h', type: 'hardlink', mode: 0o644, mtime: MTIME, linkname: name } },
    ]);
    expect(archive.includes(Buffer.from('path=tenants/acme/caf\xe9\n', 'latin1'))).toBe(true);
    expect(readWhole(archive).map((e) => [e.header.name, e.header.linkname])).toEqual([
      [name, undefined],
      ['tenants/acme/l\udcff', 'caf\udce9'],
      ['tenants/acme/h', name],
    ]);
    writeFileSync(path.join(dir.path, 'raw-names.tar'), archive);
    const listed = execFileSync('tar', ['-tvf', path.join(dir.path, 'raw-names.tar'), '--quoting-style=escape'], { env: GNU_TAR_ENV, encoding: 'latin1' });
    expect(listed).toContain('tenants/acme/caf\\351\n');
    expect(listed).toContain('tenants/acme/l\\377 -> caf\\351\n');
    expect(listed).toContain('tenants/acme/h link to tenants/acme/caf\\351\n');
  });

  it('reads U+FFFD written as UTF-8 (a character a name may hold), and a ustar name cut inside a character where a long name or pax path replaces it', () => {
    const cut = Buffer.from(`${'a'.repeat(99)}é`).subarray(0, 100); // 99 letters and half an é
    const archive = new TarBuilder()
      .file('tenants/acme/\ufffd')
      .gnuLongName(`${'a'.repeat(99)}é`)
      .raw({ name: cut, typeflag: '0', magic: 'gnu' })
      .pax({ path: `${'a'.repeat(99)}é`, linkpath: 'é'.repeat(60) })
      .raw({ name: cut, typeflag: '2', linkname: Buffer.from('é'.repeat(60)).subarray(0, 100) })
      .build();
    expect(readWhole(archive).map((e) => [e.header.name, e.header.linkname])).toEqual([
      ['tenants/acme/\ufffd', undefined],
      [`${'a'.repeat(99)}é`, undefined],
      [`${'a'.repeat(99)}é`, 'é'.repeat(60)],
    ]);
  });

  it('reads an extended header of exactly 4 MiB', () => {
    const body = Buffer.concat([paxRecords({ path: 'from-a-4-MiB-header' }), Buffer.alloc(4 * MiB - paxRecords({ path: 'from-a-4-MiB-header' }).length)]);
    const archive = new TarBuilder().raw({ name: 'PaxHeader', typeflag: 'x', size: body.length }, body).file('ustar-name', 'x').build();
    expect(readWhole(archive).map((e) => e.header.name)).toEqual(['from-a-4-MiB-header']);
  });
});

// ---------------------------------------------------------------------------------------------
// Damage

/** Pushes `archive` whole and drains it; end() only if `end`. */
function consume(archive: Buffer, end = true): void {
  const reader = new TarReader();
  reader.push(archive);
  while (reader.next() !== undefined);
  if (end) reader.end();
}

describe('TarReader on damaged archives', () => {
  const good = archiveOf([{ entry: { name: 'file.txt', type: 'file', mode: 0o644, mtime: MTIME, size: 10 }, content: text('0123456789') }]);
  const header = good.subarray(0, 512);

  it('reads the undamaged archive these tests start from', () => {
    expect(readWhole(good).map((e) => e.data.toString())).toEqual(['0123456789']);
  });

  it('refuses a header whose checksum does not match', () => {
    const damaged = Buffer.from(good);
    damaged[3] = damaged[3]! ^ 0x01; // one bit of the name
    expect(() => consume(damaged)).toThrow(CorruptArchiveError);
    expect(() => consume(damaged)).toThrow(/bad tar header checksum at byte 0/);
    const badField = Buffer.from(good);
    badField.write('0000000\0', 148, 'latin1');
    expect(() => consume(badField)).toThrow(/checksum/);
  });

  it('reads a header with no magic at all as v7, for the entry types v7 has', () => {
    const v7 = Buffer.concat([patched(header, 257, Buffer.alloc(8)), good.subarray(512)]);
    expect(readWhole(v7).map((e) => [e.header.name, e.header.type, e.data.toString()])).toEqual([['file.txt', 'file', '0123456789']]);
  });

  it.each([
    ['no magic (v7) on a pax header', Buffer.alloc(8), 'x'],
    ['no magic (v7) on a GNU long name', Buffer.alloc(8), 'L'],
    ['no magic (v7) on a FIFO', Buffer.alloc(8), '6'],
    ['a misspelt magic', Buffer.from('ustaR\u000000', 'latin1'), '0'],
    ['a zip file', Buffer.from('PK\u0003\u0004\0\0\0\0', 'latin1'), '0'],
  ])('refuses an unknown header format: %s', (_, magic, typeflag) => {
    const damaged = Buffer.concat([patched(patched(header, 257, magic), 156, Buffer.from(typeflag, 'latin1')), good.subarray(512)]);
    expect(() => consume(damaged)).toThrow(CorruptArchiveError);
    expect(() => consume(damaged)).toThrow(/unknown tar header format/);
  });

  it.each([
    ['an 8', '00000000018\0'],
    ['a 9', '9\0\0\0\0\0\0\0\0\0\0\0'],
    ['a letter', '0000000001a\0'],
    ['a minus sign', '-0000000001\0'],
    ['digits after a space', '000000 0012\0'],
  ])('refuses a size field holding %s', (_, field) => {
    const damaged = Buffer.concat([patched(header, 124, Buffer.from(field, 'latin1')), good.subarray(512)]);
    expect(() => consume(damaged)).toThrow(CorruptArchiveError);
    expect(() => consume(damaged)).toThrow(/unreadable size/);
  });

  it('refuses a negative or oversized base-256 size, and an unreadable mode or mtime', () => {
    for (const field of [base256(-1n), base256(-1000n)]) {
      const negative = Buffer.concat([patched(header, 124, field), good.subarray(512)]);
      expect(() => consume(negative)).toThrow(CorruptArchiveError);
      expect(() => consume(negative)).toThrow(/unreadable size/);
    }
    // Past 2^53 (and, with 0x81, past 2^88): no safe integer holds it.
    for (const field of [base256(2n ** 53n + 1n), Buffer.from([0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5])]) {
      expect(() => consume(Buffer.concat([patched(header, 124, field), good.subarray(512)]))).toThrow(/unreadable size/);
    }
    expect(() => consume(patched(header, 100, Buffer.from('0000x44\0', 'latin1')))).toThrow(/unreadable mode/);
    expect(() => consume(patched(header, 136, Buffer.from('1234567890z\0', 'latin1')))).toThrow(/unreadable modification time/);
  });

  it('refuses a pax header followed by the end-of-archive blocks, at once', () => {
    const pax = archiveOf([{ entry: { name: NO_SPLIT_NAME, type: 'file', mode: 0o644, mtime: MTIME, size: 10 }, content: text('0123456789') }]);
    const dangling = Buffer.concat([pax.subarray(0, pax.length - 1024 - 1024), END_OF_ARCHIVE]);
    expect(() => consume(dangling, false)).toThrow(CorruptArchiveError);
    expect(() => consume(dangling, false)).toThrow(/an extended header is followed by the end of the archive/);
  });

  describe('truncation', () => {
    const pax = archiveOf([{ entry: { name: NO_SPLIT_NAME, type: 'file', mode: 0o644, mtime: MTIME, size: 10 }, content: text('0123456789') }]);
    const gnuLong = new TarBuilder().gnuLongName('g'.repeat(300)).file('short', '0123456789').build();

    it('accepts input that ends between entries, with or without the end-of-archive blocks', () => {
      expect(() => consume(good)).not.toThrow();
      expect(() => consume(good.subarray(0, 1024))).not.toThrow();
      expect(() => consume(pax.subarray(0, pax.length - 1024))).not.toThrow();
    });

    it.each([
      ['inside the first header', () => good.subarray(0, 300)],
      ['inside an end-of-archive block', () => good.subarray(0, 1024 + 100)],
      ['right after a header whose content is missing', () => good.subarray(0, 512)],
      ['inside content', () => good.subarray(0, 512 + 4)],
      ['inside padding', () => good.subarray(0, 512 + 10 + 100)],
      ['right after the content, before its padding', () => good.subarray(0, 512 + 10)],
      ['inside a pax header block', () => pax.subarray(0, 200)],
      ['inside a pax body', () => pax.subarray(0, 512 + 50)],
      ['between a pax header and its entry', () => pax.subarray(0, pax.length - 1024 - 1024)],
      ['inside a GNU long-name body', () => gnuLong.subarray(0, 512 + 100)],
      ['between a GNU long name and its entry', () => gnuLong.subarray(0, 1024)],
    ])('end() throws when the input ends %s', (_, cut) => {
      const truncated = cut();
      expect(() => consume(truncated, false)).not.toThrow();
      expect(() => consume(truncated)).toThrow(CorruptArchiveError);
      expect(() => consume(truncated)).toThrow(/ends inside an entry/);
    });
  });

  describe('malformed pax records', () => {
    const withPax = (body: string) => {
      const bytes = Buffer.from(body, 'latin1');
      return Buffer.concat([rawHeader({ name: 'PaxHeader', typeflag: 'x', size: bytes.length }), padded(bytes), rawHeader({ name: 'f', typeflag: '0' }), END_OF_ARCHIVE]);
    };

    it('reads the well-formed record these tests damage', () => {
      expect(readWhole(withPax('16 path=pax.txt\n'))[0]?.header.name).toBe('pax.txt');
    });

    it.each([
      ['a length that is not a number', 'xx path=pax.txt\n'],
      ['no space after the length', '16path=pax.txt\n\n'],
      ['a length past the end of the body', '99 path=pax.txt\n'],
      ['a record not ending in a newline', '16 path=pax.txt!'],
      ['a length shorter than its own digits', '2 path=pax.txt\n'],
      ['a length of zero', '0 path=pax.txt\n'],
      ['no equals sign', '15 pathpax.txt\n'],
      ['an empty keyword', '12 =pax.txt\n'],
      ['a good record followed by a truncated one', '16 path=pax.txt\n20 linkpath=x\n'],
    ])('refuses %s', (_, body) => {
      expect(() => consume(withPax(body))).toThrow(CorruptArchiveError);
      expect(() => consume(withPax(body))).toThrow(/malformed pax/);
    });

    it.each([
      ['not a number', '12 size=12x\n'],
      ['negative', '11 size=-1\n'],
      ['beyond 2^53', '25 size=9007199254740993\n'],
    ])('refuses a pax size that is %s', (_, body) => {
      expect(() => consume(withPax(body))).toThrow(CorruptArchiveError);
      expect(() => consume(withPax(body))).toThrow(/pax size/);
    });
  });

  it.each(['x', 'g', 'L', 'K'])('refuses a %s extended header over 4 MiB with ArchiveLimitError, before reading its body', (typeflag) => {
    const reader = new TarReader();
    reader.push(rawHeader({ name: 'big-extended', typeflag, size: 4 * MiB + 1 }));
    expect(() => reader.next()).toThrow(ArchiveLimitError);
  });

  it('reads back a 10 GiB size from a header alone (base-256), then wants its content', () => {
    const reader = new TarReader();
    reader.push(encodeHeader({ name: 'huge.bin', type: 'file', mode: 0o600, mtime: MTIME, size: 10 * GiB }));
    const event = reader.next();
    expect(event).toEqual({ kind: 'entry', offset: 0, header: { name: 'huge.bin', type: 'file', typeflag: '0', size: 10 * GiB, mode: 0o600, mtime: MTIME, linkname: undefined } });
    expect(reader.next()).toBeUndefined();
    expect(() => reader.end()).toThrow(CorruptArchiveError);
  });
});

// ---------------------------------------------------------------------------------------------
// Regressions found while writing this suite

describe('regressions', () => {
  it('reads a GNU tar (--format=gnu) archive holding a file modified before 1970: the mtime is a negative base-256 number', () => {
    const archive = readFileSync(preEpochGnuArchive('regression'));
    expect(readWhole(archive).map((e) => [e.header.name, e.header.mtime, e.data.toString()])).toEqual([['f', PRE_EPOCH, 'old\n']]);
  });

  it("reads a tar-stream header of a file modified before 1970: '-' then octal digits (this tool's archives before 109b34c)", () => {
    // tar-stream 3.2 writes a negative mtime as `-` + the octal digits of its magnitude, which
    // GNU tar takes for obsolete base-64; tar-stream reads it back as the negative number.
    const block = encodeHeader({ name: 'f', type: 'file', mode: 0o644, mtime: MTIME, size: 0 });
    const field = Buffer.from(`-${(-PRE_EPOCH).toString(8)} `.padEnd(12, '\0'), 'latin1');
    expect(readWhole(patched(block, 136, field)).map((e) => [e.header.name, e.header.mtime])).toEqual([['f', PRE_EPOCH]]);
  });

  it("still refuses a '-' in the size field, and a '-' without digits in the mtime", () => {
    const block = encodeHeader({ name: 'f', type: 'file', mode: 0o644, mtime: MTIME, size: 0 });
    expect(() => consume(patched(block, 124, Buffer.from('-0000000001\0', 'latin1')))).toThrow(/unreadable size/);
    expect(() => consume(patched(block, 136, Buffer.from('-\0\0\0\0\0\0\0\0\0\0\0', 'latin1')))).toThrow(/unreadable modification time/);
  });

  it('keeps the leading slash of a 101-character name that starts with one (no split at slash 0 into an empty prefix)', () => {
    const name = `/${'a'.repeat(100)}`;
    expect(readWhole(encodeHeader({ name, type: 'file', mode: 0o644, mtime: MTIME }))[0]?.header.name).toBe(name);
  });

  it('still refuses a negative base-256 size', () => {
    const block = encodeHeader({ name: 'f', type: 'file', mode: 0o644, mtime: MTIME, size: 1 });
    block.fill(0xff, 124, 136);
    block.fill(0x20, 148, 156);
    let sum = 0;
    for (const byte of block) sum += byte;
    block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    const reader = new TarReader();
    reader.push(block);
    expect(() => reader.next()).toThrow(/unreadable size/);
  });
});
