// Builds tar archives byte by byte, for tests that need archives no honest packer writes:
// every header field is ours to set (name, mode, size, typeflag, linkname, checksum, magic),
// and pax 'x'/'g' records and GNU 'L'/'K' long names are written by hand. tar-stream's
// `pack` refuses or normalises exactly the things the hostile-archive tests need, so it is
// not used here. Nothing touches the disk.

import { createHash } from 'node:crypto';

import { MANIFEST_FILE_NAME, MANIFEST_FORMAT, MANIFEST_FORMAT_VERSION, type Manifest, type ManifestV1Entry } from '../../shared/archive/manifest.js';
import { digestTree } from '../../shared/archive/tree-digest.js';
import { hasRawBytes, rawName } from '../../shared/raw-name.js';

export const BLOCK = 512;

export interface RawHeader {
  /** Bytes of the name field (at most 100 are written; longer input is cut, as a raw writer would). */
  readonly name: string | Buffer;
  /** Typeflag character: '0' file, '1' hardlink, '2' symlink, '3' char dev, '4' block dev, '5' dir, '6' FIFO, '7' contiguous, 'x' pax, 'g' global pax, 'L'/'K' GNU long names, 'S' sparse, or any other byte. */
  readonly typeflag: string;
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  /** Declared size (octal); ignored when `sizeField` is given. */
  readonly size?: number;
  /** Raw 12 bytes of the size field, e.g. a base-256 encoding. */
  readonly sizeField?: Buffer;
  /** Seconds since the epoch. */
  readonly mtime?: number;
  /** Raw 12 bytes of the mtime field. */
  readonly mtimeField?: Buffer;
  readonly linkname?: string | Buffer;
  /** ustar prefix field (155 bytes). */
  readonly prefix?: string | Buffer;
  /** 'ustar' (POSIX, default), 'gnu' ("ustar  \0") or 'none' (v7: no magic). */
  readonly magic?: 'ustar' | 'gnu' | 'none';
  /** Checksum to store; by default the correct one. */
  readonly checksum?: number;
}

/** One 512-byte header exactly as described. */
export function rawHeader(h: RawHeader): Buffer {
  const buf = Buffer.alloc(BLOCK);
  writeField(buf, 0, 100, h.name);
  writeOctal(buf, 100, 8, h.mode ?? 0o644);
  writeOctal(buf, 108, 8, h.uid ?? 0);
  writeOctal(buf, 116, 8, h.gid ?? 0);
  if (h.sizeField !== undefined) h.sizeField.copy(buf, 124, 0, 12);
  else writeOctal(buf, 124, 12, h.size ?? 0);
  if (h.mtimeField !== undefined) h.mtimeField.copy(buf, 136, 0, 12);
  else writeOctal(buf, 136, 12, h.mtime ?? 1_700_000_000);
  buf.write(h.typeflag.slice(0, 1), 156, 'latin1');
  if (h.linkname !== undefined) writeField(buf, 157, 100, h.linkname);
  switch (h.magic ?? 'ustar') {
    case 'ustar':
      buf.write('ustar\u000000', 257, 'latin1');
      break;
    case 'gnu':
      buf.write('ustar  \u0000', 257, 'latin1');
      break;
    case 'none':
      break;
  }
  buf.write('root', 265, 'latin1');
  buf.write('root', 297, 'latin1');
  if (h.prefix !== undefined) writeField(buf, 345, 155, h.prefix);
  const sum = h.checksum ?? checksum(buf);
  buf.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'latin1');
  return buf;
}

/** The ustar checksum: the sum of all bytes with the checksum field read as spaces. */
export function checksum(block: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return sum;
}

/** Data followed by zero padding to the next 512-byte boundary. */
export function padded(data: Buffer): Buffer {
  const rest = data.length % BLOCK;
  return rest === 0 ? data : Buffer.concat([data, Buffer.alloc(BLOCK - rest)]);
}

/** Pax extended-header records: "<len> key=value\n", the length counting itself. */
export function paxRecords(records: Readonly<Record<string, string | Buffer>>): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of Object.entries(records)) {
    const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.isBuffer(value) ? value : Buffer.from(value), Buffer.from('\n')]);
    let length = body.length + 1;
    while (String(length).length + body.length !== length) length = String(length).length + body.length;
    parts.push(Buffer.from(String(length)), body);
  }
  return Buffer.concat(parts);
}

/** A size field in GNU base-256 (first byte 0x80 positive, 0xff negative two's complement). */
export function base256(value: bigint): Buffer {
  const buf = Buffer.alloc(12);
  let v = value < 0n ? (1n << 88n) + value : value;
  for (let i = 11; i >= 1; i--) {
    buf[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  buf[0] = value < 0n ? 0xff : 0x80;
  return buf;
}

export interface EntryOptions {
  readonly mode?: number;
  readonly mtime?: number;
  /** Declared size when it should differ from the data (for files). */
  readonly size?: number;
  /** Extra header fields (typeflag, checksum, magic…) to override. */
  readonly header?: Partial<RawHeader>;
}

/** What the builder knows it put in, for writing a manifest that matches. */
type Recorded = ManifestV1Entry;

/** A version 1 manifest: every entry listed (what backups wrote before version 2). */
export type ManifestV1 = Omit<Manifest, 'directories' | 'formatVersion'> & { readonly formatVersion: 1; readonly entries: readonly ManifestV1Entry[] };
type WithoutPath<T> = T extends unknown ? Omit<T, 'path'> : never;

/**
 * Appends entries to an in-memory tar stream. High-level methods write a plain ustar
 * header, adding a pax 'x' header in front when a name does not fit 100 bytes; `raw`,
 * `pax`, `gnuLongName` and `bytes` put exactly the given bytes in.
 */
export class TarBuilder {
  private readonly parts: Buffer[] = [];
  private readonly recorded: Recorded[] = [];

  /** A regular file ('0'). */
  file(name: string, content: string | Buffer = '', options: EntryOptions = {}): this {
    const data = Buffer.isBuffer(content) ? content : Buffer.from(content);
    const mode = options.mode ?? 0o644;
    this.entry({ name, typeflag: '0', mode, mtime: options.mtime, size: options.size ?? data.length, ...options.header }, data);
    this.record(name, {
      type: 'file',
      size: data.length,
      mode: mode & 0o777,
      mtimeMs: (options.mtime ?? 1_700_000_000) * 1000,
      sha256: createHash('sha256').update(data).digest('hex'),
    });
    return this;
  }

  /** A directory ('5'); the trailing slash is the caller's choice. */
  dir(name: string, options: EntryOptions = {}): this {
    const mode = options.mode ?? 0o755;
    this.entry({ name, typeflag: '5', mode, mtime: options.mtime, size: options.size ?? 0, ...options.header });
    this.record(name, { type: 'directory', mode: mode & 0o777, mtimeMs: (options.mtime ?? 1_700_000_000) * 1000 });
    return this;
  }

  /** A symbolic link ('2') whose target is `target`, byte for byte. */
  symlink(name: string, target: string, options: EntryOptions = {}): this {
    this.entry({ name, typeflag: '2', mode: options.mode ?? 0o777, mtime: options.mtime, linkname: target, size: options.size ?? 0, ...options.header });
    this.record(name, { type: 'symlink', target, mtimeMs: (options.mtime ?? 1_700_000_000) * 1000 });
    return this;
  }

  /** A hard link ('1') to the archive member named `target`. */
  hardlink(name: string, target: string, options: EntryOptions = {}): this {
    this.entry({ name, typeflag: '1', mode: options.mode ?? 0o644, mtime: options.mtime, linkname: target, size: options.size ?? 0, ...options.header });
    return this;
  }

  /** Any other typeflag ('3', '4', '6', 'S', …) with optional data. */
  special(name: string, typeflag: string, data: Buffer = Buffer.alloc(0), options: EntryOptions = {}): this {
    this.entry({ name, typeflag, mode: options.mode ?? 0o644, size: options.size ?? data.length, ...options.header }, data);
    return this;
  }

  /** A header exactly as given, then `data` padded (pass `data` longer or shorter than the declared size to lie). */
  raw(header: RawHeader, data?: Buffer): this {
    this.parts.push(rawHeader(header));
    if (data !== undefined && data.length > 0) this.parts.push(padded(data));
    return this;
  }

  /** A pax extended header ('x', or 'g' for global) applying `records` to the next entry. */
  pax(records: Readonly<Record<string, string | Buffer>>, typeflag: 'x' | 'g' = 'x', options: { size?: number } = {}): this {
    const data = paxRecords(records);
    return this.raw({ name: 'PaxHeader/entry', typeflag, size: options.size ?? data.length }, data);
  }

  /** A GNU long name ('L') or long link name ('K') for the next entry. */
  gnuLongName(name: string | Buffer, typeflag: 'L' | 'K' = 'L'): this {
    const data = Buffer.concat([Buffer.isBuffer(name) ? name : Buffer.from(name), Buffer.alloc(1)]);
    return this.raw({ name: '././@LongLink', typeflag, size: data.length, magic: 'gnu' }, data);
  }

  /** Bytes appended verbatim. */
  bytes(data: Buffer): this {
    this.parts.push(data);
    return this;
  }

  /**
   * The manifest entry (`tenants/<tenant>/.openclaw-backup-manifest.json`) with the directory
   * digests of every file, directory and symlink added so far through the high-level methods;
   * `edit` may change it to lie.
   */
  manifest(tenant: string, edit: (manifest: Manifest) => Manifest = (m) => m): this {
    const { entries: _listed, ...common } = this.manifestV1(tenant);
    return this.manifestEntry(tenant, edit({ ...common, formatVersion: MANIFEST_FORMAT_VERSION, directories: digestTree(this.recorded) }));
  }

  /** The same as a version 1 manifest, which lists every entry instead of digesting directories. */
  withManifestV1(tenant: string, edit: (manifest: ManifestV1) => ManifestV1 = (m) => m): this {
    return this.manifestEntry(tenant, edit(this.manifestV1(tenant)));
  }

  private manifestV1(tenant: string): ManifestV1 {
    const entries = this.recorded;
    return {
      format: MANIFEST_FORMAT,
      formatVersion: 1,
      tenant,
      createdAt: '2024-01-01T00:00:00.000Z',
      tool: { name: 'tar-builder', version: '0' },
      entries,
      skipped: [],
      warnings: [],
      totals: {
        files: entries.filter((e) => e.type === 'file').length,
        directories: entries.filter((e) => e.type === 'directory').length,
        symlinks: entries.filter((e) => e.type === 'symlink').length,
        bytes: entries.reduce((sum, e) => sum + (e.type === 'file' ? e.size : 0), 0),
      },
    };
  }

  private manifestEntry(tenant: string, manifest: Manifest | ManifestV1): this {
    const data = Buffer.from(JSON.stringify(manifest));
    this.entry({ name: `tenants/${tenant}/${MANIFEST_FILE_NAME}`, typeflag: '0', mode: 0o600, size: data.length }, data);
    return this;
  }

  /** The archive so far, without the end-of-archive blocks (a stream cut at an entry boundary). */
  unterminated(): Buffer {
    return Buffer.concat(this.parts);
  }

  /** The archive with its two zero end blocks. */
  build(): Buffer {
    return Buffer.concat([...this.parts, Buffer.alloc(2 * BLOCK)]);
  }

  private entry(header: RawHeader, data?: Buffer): void {
    const name = typeof header.name === 'string' ? header.name : undefined;
    const link = typeof header.linkname === 'string' ? header.linkname : undefined;
    const records: Record<string, string | Buffer> = {};
    if (name !== undefined && Buffer.byteLength(name) > 100) records.path = bytesOf(name);
    if (link !== undefined && Buffer.byteLength(link) > 100) records.linkpath = bytesOf(link);
    if (Object.keys(records).length > 0) this.pax(records);
    this.raw(
      {
        ...header,
        // A name that is not UTF-8 (raw-name.ts: a lone surrogate per byte) as its bytes.
        name: records.path === undefined ? bytesOf(header.name) : 'long-name-in-pax',
        linkname: records.linkpath === undefined ? (header.linkname === undefined ? undefined : bytesOf(header.linkname)) : 'long-link-in-pax',
      },
      data,
    );
  }

  private record(name: string, entry: WithoutPath<Recorded>): void {
    const match = /^tenants\/[^/]+\/?(.*)$/.exec(name);
    if (match === null) return;
    const path = match[1]!.replace(/\/$/, '');
    this.recorded.push({ ...entry, path } as Recorded);
  }
}

function bytesOf(field: string | Buffer): string | Buffer {
  return typeof field === 'string' && hasRawBytes(field) ? rawName(field) : field;
}

/** An archive's bytes as an async source, in chunks of `size` bytes (tests partial reads). */
export async function* chunked(data: Buffer, size = 997): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size);
}

/**
 * A source that yields `head` and then `tailBytes` zero bytes lazily, counting what it handed
 * out: for proving a huge declared entry is refused before its body is read.
 */
export function lazySource(head: Buffer, tailBytes: number, chunk = 64 * 1024): { source: AsyncGenerator<Uint8Array>; yielded: () => number } {
  let yielded = 0;
  const zeros = Buffer.alloc(chunk);
  async function* generate(): AsyncGenerator<Uint8Array> {
    yielded += head.length;
    yield head;
    let left = tailBytes;
    while (left > 0) {
      const n = Math.min(left, chunk);
      left -= n;
      yielded += n;
      yield zeros.subarray(0, n);
    }
  }
  return { source: generate(), yielded: () => yielded };
}

function writeField(buf: Buffer, offset: number, length: number, value: string | Buffer): void {
  const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8');
  bytes.copy(buf, offset, 0, Math.min(bytes.length, length));
}

function writeOctal(buf: Buffer, offset: number, length: number, value: number): void {
  const digits = value.toString(8).padStart(length - 1, '0');
  buf.write(`${digits.slice(-(length - 1))}\u0000`, offset, 'latin1');
}
