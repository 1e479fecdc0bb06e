// The tar layer of tenant archives, written and read synchronously over buffers: no stream
// object per entry, no copy of file content on the way in or out.
//
// Writing emits POSIX ustar headers, preceded by a pax extended header ('x') when a name or
// link target does not fit the ustar fields or is not ASCII (one that is not UTF-8, held as
// raw-name.ts holds it, goes in as its bytes, as GNU tar writes it; read back the same way);
// sizes past 8 GiB use GNU tar's base-256 field. Reading accepts what GNU tar and tar-stream
// write (ustar, GNU, old GNU and v7 headers; pax 'x' path/linkpath/size/mtime; GNU 'L'/'K'
// long names; 'g' global headers with other records are skipped; GNU tar's volume label 'V'
// is skipped, its incremental directory 'D' read as a directory, reported after its list of
// names with those the list says the archive does not hold) and reports damage — a bad
// checksum, an unknown format, an unreadable number, input that ends inside an entry — as
// CorruptArchiveError.
//
// The archive ends at its first zero block, as it does for GNU tar (the end-of-archive
// marker is two; `tar -t` lists nothing after one). What follows may only be zeros, at most
// MAX_TRAILING_ZERO_BYTES of them (any tar's record padding); anything else there, like an
// entry `tar -t` would not show, is refused as UnsafeArchiveError, and so is whatever other
// readers would read differently: a global pax header that sets a name, size or time (GNU
// tar applies it to every later entry, libarchive ignores it), two extended headers of one
// kind for one entry, a GNU long name and a pax path (or long link and linkpath) for one. What an entry may be (its name, its type, its size) is the extractor's
// business, not the reader's; GNU sparse files are reported as 'sparse-file'.

import { ArchiveLimitError, CorruptArchiveError, UnsafeArchiveError } from '../errors.js';
import { decodeRawName, rawName } from '../raw-name.js';
import { innerFormatHint } from './other-format.js';

export const BLOCK_SIZE = 512;
/** Largest pax or GNU long-name body read: names and link targets are checked later, this only bounds memory. */
const MAX_EXTENDED_HEADER_BYTES = 4 * 1024 * 1024;
/**
 * Zero bytes accepted after the end-of-archive block, end marker included: the padding of a
 * tar record up to 16 MiB (GNU tar's default record is 10 KiB; `-b 32768` is 16 MiB).
 */
export const MAX_TRAILING_ZERO_BYTES = 16 * 1024 * 1024;
/** pax records that change an entry; the others (comments, xattrs, uid/gid…) are not kept. */
const PAX_KEYS_READ = new Set(['path', 'linkpath', 'size', 'mtime']);
const PAX_SPARSE_PREFIX = 'GNU.sparse.';
const PAX_SPARSE_NAME = 'GNU.sparse.name';
/** GNU tar's `-g --format=posix` keeps a directory's list of names in this record (the 'D' entry's content in its other formats). */
const PAX_DUMPDIR = 'GNU.dumpdir';
const MAX_OCTAL_11 = 0o77777777777;
const USTAR_MAGIC = 'ustar\u000000';
/** The magic field of a v7 header: none. */
const V7_MAGIC = '\u0000'.repeat(6);
/** The entry types a v7 header may have: file (also NUL), hard link, symlink, directory (GNU tar's v7 writes '5'). */
const V7_TYPEFLAGS = new Set(['0', '1', '2', '5']);
/** GNU tar's volume label (`tar -V`), which names the archive and extracts to nothing. */
const VOLUME_LABEL = 'V';
/** GNU tar's incremental directory (`tar -g`): a directory whose content lists its entries' names. */
const DUMPDIR = 'D';
/** A dump directory's records: a letter, a name, a NUL; an empty record ends the list. 'Y': in the archive; 'D': a directory. */
const DUMPDIR_IN_ARCHIVE = new Set([0x59, 0x44]);
/** Names of absent records kept for messages (two: the one a caller may pass over, and one more). */
const MAX_ABSENT_NAMES_KEPT = 2;
/** Bytes of each kept name (Linux's NAME_MAX). */
const MAX_ABSENT_NAME_BYTES = 255;

export type TarEntryType =
  | 'file'
  | 'link'
  | 'symlink'
  | 'character-device'
  | 'block-device'
  | 'directory'
  | 'fifo'
  | 'contiguous-file'
  /** GNU tar's sparse file ('S', or pax GNU.sparse.* records): its data is a map, then pieces. */
  | 'sparse-file';

export interface TarHeader {
  readonly name: string;
  /** undefined for a typeflag this reader does not know. */
  readonly type: TarEntryType | undefined;
  readonly typeflag: string;
  readonly size: number;
  readonly mode: number;
  /** Seconds since the epoch; a pax mtime may carry a fraction. */
  readonly mtime: number;
  readonly linkname: string | undefined;
  /**
   * GNU tar's incremental directory ('D'): the names its list marks as not in this archive
   * ('N', or a rename record), which a level above 0 of `tar -g` gives every file unchanged
   * since the level before (and `--exclude` what it left out). Reported once the list is read.
   */
  readonly absent?: DumpdirAbsent;
  /**
   * A pax GNU sparse file's own name (GNU.sparse.name, formats 0.1 and 1.0, whose `path` is a
   * stand-in `…/GNUSparseFile.<pid>/<name>`): what a refusal of it names.
   */
  readonly sparseName?: string;
}

/** How many of a dump directory's names are not in the archive, and the first few of them. */
export interface DumpdirAbsent {
  readonly count: number;
  /** At most MAX_ABSENT_NAMES_KEPT of them, each cut at NAME_MAX bytes. */
  readonly names: readonly string[];
}

export interface EntryToWrite {
  readonly name: string;
  readonly type: 'file' | 'directory' | 'symlink' | 'hardlink';
  readonly mode: number;
  /** Seconds since the epoch (floored; in base-256 before 1970 and after 2242, as GNU tar writes them). */
  readonly mtime: number;
  readonly size?: number;
  readonly linkname?: string;
}

const TYPEFLAGS: Record<EntryToWrite['type'], string> = { file: '0', directory: '5', symlink: '2', hardlink: '1' };

/** Zero bytes that bring `size` bytes of content up to a whole number of blocks. */
export function paddingAfter(size: number): number {
  const rest = size % BLOCK_SIZE;
  return rest === 0 ? 0 : BLOCK_SIZE - rest;
}

/** Two zero blocks: the end of a tar archive. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK_SIZE);

/**
 * The header block(s) of one entry: 512 bytes, or a pax header, its records and the ustar
 * block. With `reuse` (a 512-byte buffer), a header that fits one block is written into it
 * and `reuse` is returned: valid until the next call with the same buffer.
 */
export function encodeHeader(entry: EntryToWrite, reuse?: Buffer): Buffer {
  const size = entry.size ?? 0;
  const name = entry.type === 'directory' && !entry.name.endsWith('/') ? `${entry.name}/` : entry.name;
  const linkname = entry.linkname ?? '';
  const typeflag = TYPEFLAGS[entry.type];
  // Most names fit the name field as they are: written straight in, checked for ASCII on the way.
  if (name.length <= 100 && linkname.length <= 100) {
    const block = reuse ?? Buffer.allocUnsafe(BLOCK_SIZE);
    if (writeUstar(block, entry.mode, size, entry.mtime, name, '', linkname, typeflag)) return block;
  }
  const split = splitUstarName(name);
  const linkFits = linkname.length <= 100 && isAscii(linkname);
  if (split !== undefined && linkFits) {
    const block = reuse ?? Buffer.allocUnsafe(BLOCK_SIZE);
    writeUstar(block, entry.mode, size, entry.mtime, split.name, split.prefix, linkname, typeflag);
    return block;
  }
  // A name that is not UTF-8 goes in as its bytes (raw-name.ts), as GNU tar writes it: no
  // `hdrcharset=BINARY`, which GNU tar 1.34 warns of as an unknown keyword (it reads the bytes
  // as they are either way, as this reader does).
  const records = [paxRecord('path', rawName(name)), ...(linkFits ? [] : [paxRecord('linkpath', rawName(linkname))])];
  const body = Buffer.concat(records);
  const out = Buffer.alloc(BLOCK_SIZE + body.length + paddingAfter(body.length) + BLOCK_SIZE);
  writeUstar(out, entry.mode, body.length, entry.mtime, 'PaxHeader', '', '', 'x');
  body.copy(out, BLOCK_SIZE);
  const at = out.length - BLOCK_SIZE;
  const fallback = asciiFallback(name, 100);
  writeUstar(out.subarray(at), entry.mode, size, entry.mtime, fallback, '', linkFits ? linkname : asciiFallback(linkname, 100), typeflag);
  return out;
}

/** "ustar\0" "00": the POSIX magic and version. */
const USTAR_MAGIC_BYTES = Buffer.from(USTAR_MAGIC, 'latin1');
/** The checksum field counts as eight spaces while the sum is taken. */
const CHECKSUM_FIELD_AS_SPACES = 8 * 0x20;

/** What every ustar block we write holds: uid and gid 0, the magic, device numbers 0; zeros elsewhere. */
const USTAR_TEMPLATE = (() => {
  const block = Buffer.alloc(BLOCK_SIZE);
  writeOctal(block, 108, 8, 0);
  writeOctal(block, 116, 8, 0);
  USTAR_MAGIC_BYTES.copy(block, 257);
  writeOctal(block, 329, 8, 0);
  writeOctal(block, 337, 8, 0);
  return new Uint8Array(block.buffer, block.byteOffset, BLOCK_SIZE);
})();
/** The checksum of the template, its checksum field counted as spaces: each field written adds its bytes. */
const TEMPLATE_SUM = checksum(USTAR_TEMPLATE);

/**
 * Writes a ustar block over `block` at `at` (whatever it held), the name field holding
 * `namePrefix` then `name`. Returns false, having written part of it, if a name is not ASCII.
 */
function writeUstar(block: Buffer, mode: number, size: number, mtime: number, name: string, prefix: string, linkname: string, typeflag: string, at = 0, namePrefix = ''): boolean {
  block.set(USTAR_TEMPLATE, at);
  let sum = TEMPLATE_SUM;
  const namePrefixSum = writeAscii(block, at, namePrefix);
  const nameSum = writeAscii(block, at + namePrefix.length, name);
  const linkSum = writeAscii(block, at + 157, linkname);
  const prefixSum = writeAscii(block, at + 345, prefix);
  if (namePrefixSum < 0 || nameSum < 0 || linkSum < 0 || prefixSum < 0) return false;
  sum += namePrefixSum + nameSum + linkSum + prefixSum;
  sum += writeOctal(block, at + 100, 8, mode & 0o7777);
  if (size <= MAX_OCTAL_11) sum += writeOctal(block, at + 124, 12, size);
  else sum += writeBase256(block, at + 124, 12, size);
  const seconds = Math.floor(mtime);
  if (seconds >= 0 && seconds <= MAX_OCTAL_11) sum += writeOctal(block, at + 136, 12, seconds);
  else sum += writeBase256(block, at + 136, 12, seconds);
  const flag = typeflag.charCodeAt(0);
  block[at + 156] = flag;
  sum += flag;
  writeOctal(block, at + 148, 8, sum);
  return true;
}

/**
 * The header of a regular file named `namePrefix + name`, written into `target` at `at` when
 * it takes one block (the name fits the name field and is ASCII, as most do): the block
 * `encodeHeader` would return. Returns false, having written part of the block, when it does
 * not: use `encodeHeader` then. (The name in two parts: no string joined per file.)
 */
export function writeFileHeader(target: Buffer, at: number, namePrefix: string, name: string, mode: number, mtime: number, size: number): boolean {
  return namePrefix.length + name.length <= 100 && writeUstar(target, mode, size, mtime, name, '', '', TYPEFLAGS.file, at, namePrefix);
}

/** Writes `text` at `offset` one byte per character; returns the bytes' sum, or -1 (and stops) at a character past ASCII. */
function writeAscii(block: Buffer, offset: number, text: string): number {
  let sum = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0x7f) return -1;
    block[offset + i] = code;
    sum += code;
  }
  return sum;
}

/** `length - 1` octal digits then a NUL, in a field of `length` bytes (digit by digit: no string per field). Returns the bytes' sum. */
function writeOctal(block: Buffer, offset: number, length: number, value: number): number {
  const end = offset + length - 1;
  block[end] = 0;
  let sum = 0;
  let at = end - 1;
  for (; at >= offset && value > 0x7fffffff; at--) {
    const digit = value % 8;
    block[at] = 0x30 + digit;
    sum += 0x30 + digit;
    value = Math.floor(value / 8);
  }
  for (; at >= offset; at--) {
    const digit = value & 7;
    block[at] = 0x30 + digit;
    sum += 0x30 + digit;
    value >>>= 3;
  }
  return sum;
}

/** GNU base-256, as GNU tar writes what octal cannot hold (a negative one in two's complement, after 0xff). Returns the bytes' sum. */
function writeBase256(block: Buffer, offset: number, length: number, value: number): number {
  const negative = value < 0;
  let magnitude = negative ? -value - 1 : value;
  block[offset] = negative ? 0xff : 0x80;
  let sum = block[offset]!;
  for (let i = length - 1; i > 0; i--) {
    const byte = negative ? 0xff - (magnitude % 256) : magnitude % 256;
    block[offset + i] = byte;
    sum += byte;
    magnitude = Math.floor(magnitude / 256);
  }
  return sum;
}

function splitUstarName(name: string): { name: string; prefix: string } | undefined {
  if (!isAscii(name)) return undefined;
  if (name.length <= 100) return { name, prefix: '' };
  // The prefix ends at a slash; the name keeps what follows it (a directory's trailing slash included).
  for (let slash = name.indexOf('/', 1); slash !== -1 && slash <= 155; slash = name.indexOf('/', slash + 1)) {
    const rest = name.length - slash - 1;
    if (rest <= 100 && rest > 0) return { name: name.slice(slash + 1), prefix: name.slice(0, slash) };
  }
  return undefined;
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

function asciiFallback(text: string, length: number): string {
  return text.replace(/[^\x20-\x7e]/g, '_').slice(-length);
}

/** One pax record: "<length> <key>=<value>\n", the length counting itself; the value as bytes. */
function paxRecord(key: string, value: Buffer): Buffer {
  const restBytes = 1 + key.length + 1 + value.length + 1;
  let length = restBytes + 1;
  while (String(length).length + restBytes !== length) length = String(length).length + restBytes;
  return Buffer.concat([Buffer.from(`${length} ${key}=`, 'latin1'), value, Buffer.of(0x0a)]);
}

/** The header checksum: the sum of the block's bytes, the checksum field counted as spaces. */
function checksum(block: Uint8Array): number {
  let sum = CHECKSUM_FIELD_AS_SPACES;
  for (let i = 0; i < 148; i++) sum += block[i]!;
  for (let i = 156; i < BLOCK_SIZE; i++) sum += block[i]!;
  return sum;
}

/** Signed-byte checksum, which some old tars wrote. */
/**
 * Content whose first block is not a tar header but starts as another format does (a zstd
 * stream compressed twice, a .tar.gz or an age file compressed again, a ZIP) is refused as
 * that format, with what to do, rather than as a damaged tar.
 */
function assertTarAtStart(prefix: Buffer): void {
  const hint = innerFormatHint(prefix);
  if (hint !== undefined && !checksumMatches(prefix)) throw new CorruptArchiveError(`the archive does not hold a tar: ${hint}`);
}

function checksumMatches(block: Buffer): boolean {
  if (block.length < BLOCK_SIZE) return false;
  try {
    const stored = readNumber(block, 148, 8, 0, 'checksum');
    return stored === checksum(block) || stored === signedChecksum(block);
  } catch {
    return false;
  }
}

function signedChecksum(block: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < BLOCK_SIZE; i++) sum += i >= 148 && i < 156 ? 0x20 : ((block[i]! << 24) >> 24);
  return sum;
}

export type TarEvent =
  /** An entry's header; `header.size` bytes of `data` events follow (none for size 0). */
  | { readonly kind: 'entry'; readonly header: TarHeader; readonly offset: number }
  /** Content of the current entry: a view into the pushed input, valid until the next push. */
  | { readonly kind: 'data'; readonly bytes: Buffer };

type ReaderState = 'header' | 'extended' | 'content' | 'padding' | 'trailer' | 'dumpdir';

/** A dump directory's list being read: its header is reported once the list is over. */
interface PendingDumpdir {
  readonly header: TarHeader;
  readonly offset: number;
  readonly size: number;
  readonly list: DumpdirScan;
}

/** A dump directory's list, read so far (scanDumpdir). */
interface DumpdirScan {
  /** Whether the next byte starts a record; `ended` once the empty record is met. */
  atRecordStart: boolean;
  ended: boolean;
  count: number;
  readonly names: string[];
  /** The absent name being read, when it is one of those kept. */
  name: Buffer[] | undefined;
  nameBytes: number;
}

interface PendingExtended {
  readonly typeflag: string;
  readonly size: number;
  readonly offset: number;
}

/**
 * Reads a tar stream pushed in chunks of any size. Call `next()` until it returns
 * undefined after each `push()`, and `end()` once the input is over.
 */
export class TarReader {
  private chunk: Buffer = Buffer.alloc(0);
  private at = 0;
  /** Stream offset of `chunk[0]`. */
  private chunkOffset = 0;
  private readonly scratch = Buffer.alloc(BLOCK_SIZE);
  private scratchFilled = 0;
  private state: ReaderState = 'header';
  private remaining = 0;
  private extended: PendingExtended | undefined;
  private extendedParts: Buffer[] = [];
  private pax: PaxRecords | undefined;
  private longName: string | undefined;
  private longLink: string | undefined;
  private entrySize = 0;
  /** Stream offset of the end-of-archive block, once met. */
  private endOffset: number | undefined;
  private trailingBytes = 0;
  private dumpdir: PendingDumpdir | undefined;

  /** Whether the end-of-archive marker has been read. */
  get ended(): boolean {
    return this.endOffset !== undefined;
  }

  push(chunk: Buffer): void {
    if (this.at < this.chunk.length) throw new Error('TarReader.push before the previous chunk was consumed');
    this.chunkOffset += this.chunk.length;
    this.chunk = chunk;
    this.at = 0;
  }

  next(): TarEvent | undefined {
    for (;;) {
      const available = this.chunk.length - this.at;
      if (available === 0) return undefined;
      switch (this.state) {
        case 'content': {
          const length = Math.min(available, this.remaining);
          const bytes = this.chunk.subarray(this.at, this.at + length);
          this.at += length;
          this.remaining -= length;
          if (this.remaining === 0) this.afterContent();
          return { kind: 'data', bytes };
        }
        case 'padding': {
          const length = Math.min(available, this.remaining);
          this.at += length;
          this.remaining -= length;
          if (this.remaining === 0) this.state = 'header';
          continue;
        }
        case 'extended': {
          const length = Math.min(available, this.remaining);
          this.extendedParts.push(Buffer.from(this.chunk.subarray(this.at, this.at + length))); // the caller may reuse its chunk
          this.at += length;
          this.remaining -= length;
          if (this.remaining === 0) this.finishExtended();
          continue;
        }
        case 'trailer': {
          this.readTrailer(available);
          continue;
        }
        case 'dumpdir': {
          const length = Math.min(available, this.remaining);
          scanDumpdir(this.dumpdir!.list, this.chunk.subarray(this.at, this.at + length));
          this.at += length;
          this.remaining -= length;
          if (this.remaining === 0) return this.finishDumpdir();
          continue;
        }
        case 'header': {
          const block = this.takeBlock();
          if (block === undefined) return undefined;
          const event = this.readHeader(block, this.chunkOffset + this.at - BLOCK_SIZE);
          if (event !== undefined) return event;
          continue;
        }
      }
    }
  }

  /** Throws CorruptArchiveError unless the input ended between entries. */
  end(): void {
    if ((this.state !== 'header' && this.state !== 'trailer') || this.scratchFilled > 0 || this.dumpdir !== undefined || this.extended !== undefined || this.pax !== undefined || this.longName !== undefined || this.longLink !== undefined) {
      if (this.chunkOffset + this.at === this.scratchFilled) assertTarAtStart(this.scratch.subarray(0, this.scratchFilled));
      throw new CorruptArchiveError('the archive is damaged or truncated: the tar stream ends inside an entry');
    }
  }

  private takeBlock(): Buffer | undefined {
    const available = this.chunk.length - this.at;
    if (this.scratchFilled === 0 && available >= BLOCK_SIZE) {
      const block = this.chunk.subarray(this.at, this.at + BLOCK_SIZE);
      this.at += BLOCK_SIZE;
      return block;
    }
    const length = Math.min(available, BLOCK_SIZE - this.scratchFilled);
    this.chunk.copy(this.scratch, this.scratchFilled, this.at, this.at + length);
    this.at += length;
    this.scratchFilled += length;
    if (this.scratchFilled < BLOCK_SIZE) return undefined;
    this.scratchFilled = 0;
    return this.scratch;
  }

  /** After the end-of-archive block: zeros only, and not too many. */
  private readTrailer(available: number): void {
    const bytes = this.chunk.subarray(this.at, this.at + available);
    const nonZero = firstNonZero(bytes);
    if (nonZero !== -1) {
      throw new UnsafeArchiveError(
        `the archive holds data after its end-of-archive marker (at byte ${this.chunkOffset + this.at + nonZero}; the marker is at byte ${this.endOffset}), ` +
          'which tar -t does not list: refused',
      );
    }
    this.at += available;
    this.trailingBytes += available;
    if (this.trailingBytes > MAX_TRAILING_ZERO_BYTES) {
      throw new ArchiveLimitError(`the archive has more than ${MAX_TRAILING_ZERO_BYTES / (1024 * 1024)} MiB of padding after its end-of-archive marker (at byte ${this.endOffset})`);
    }
  }

  private readHeader(block: Buffer, offset: number): TarEvent | undefined {
    if (block[0] === 0 && firstNonZero(block) === -1) {
      if (this.pax !== undefined || this.longName !== undefined || this.longLink !== undefined) {
        throw new CorruptArchiveError(`the archive is damaged: an extended header is followed by the end of the archive at byte ${offset}`);
      }
      this.endOffset = offset;
      this.trailingBytes = BLOCK_SIZE;
      this.state = 'trailer';
      return undefined;
    }
    if (offset === 0) assertTarAtStart(block);
    const stored = readNumber(block, 148, 8, offset, 'checksum');
    const sum = checksum(block);
    if (stored !== sum && stored !== signedChecksum(block)) {
      throw new CorruptArchiveError(`the archive is damaged: bad tar header checksum at byte ${offset}`);
    }
    const magic = block.toString('latin1', 257, 263);
    const ustar = magic === 'ustar\u0000';
    const typeflag = block[156] === 0 ? '0' : String.fromCharCode(block[156]!);
    // v7 (`tar --format=v7`) has no magic: its entries are files, links, symlinks and
    // directories only, named in the name field alone. An extended header without a magic is
    // no format GNU tar writes.
    const v7 = magic === V7_MAGIC && (V7_TYPEFLAGS.has(typeflag) || typeflag === VOLUME_LABEL);
    if (!ustar && !v7 && magic !== 'ustar ') {
      throw new CorruptArchiveError(`the archive is damaged: unknown tar header format at byte ${offset}`);
    }
    const size = readNumber(block, 124, 12, offset, 'size');

    if (typeflag === VOLUME_LABEL) {
      // `tar -V LABEL` names the archive in a first header (without a magic in GNU tar's
      // default format): GNU tar extracts nothing for it, and neither does this reader.
      if (this.pax !== undefined || this.longName !== undefined || this.longLink !== undefined) {
        throw new UnsafeArchiveError(`an extended header for a volume label, at byte ${offset}`);
      }
      this.skipContent(size);
      return undefined;
    }

    if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
      if (size > MAX_EXTENDED_HEADER_BYTES) {
        throw new ArchiveLimitError(`tar extended header of ${size} bytes at byte ${offset} exceeds the ${MAX_EXTENDED_HEADER_BYTES}-byte limit`);
      }
      const pending = typeflag === 'x' ? this.pax : typeflag === 'L' ? this.longName : typeflag === 'K' ? this.longLink : undefined;
      if (pending !== undefined) {
        // GNU tar and libarchive do not agree on which one applies.
        throw new UnsafeArchiveError(`two '${typeflag}' extended headers for one entry, at byte ${offset}`);
      }
      this.extended = { typeflag, size, offset };
      this.extendedParts = [];
      this.remaining = size;
      this.state = 'extended';
      if (size === 0) this.finishExtended();
      return undefined;
    }

    let entrySize = size;
    let mtime = readNumber(block, 136, 12, offset, 'modification time', true);
    const pax = this.pax;
    const paxPath = pax?.records.get('path');
    const paxLink = pax?.records.get('linkpath');
    // GNU tar takes the pax value whichever comes first, Python's tarfile the first header.
    if ((paxPath !== undefined && this.longName !== undefined) || (paxLink !== undefined && this.longLink !== undefined)) {
      throw new UnsafeArchiveError(`a GNU long name and a pax ${paxPath !== undefined && this.longName !== undefined ? 'path' : 'linkpath'} for one entry, at byte ${offset}`);
    }
    // The ustar fields only where nothing replaces them: a writer may cut a UTF-8 character
    // there, in a name its long-name or pax header carries whole.
    const name = paxPath ?? this.longName ?? ustarName(block, ustar);
    const linkname = paxLink ?? this.longLink ?? (block[157] === 0 ? undefined : utf8Field(block, 157, 100));
    if (pax !== undefined) {
      const paxSize = pax.records.get('size');
      const paxMtime = pax.records.get('mtime');
      if (paxSize !== undefined) {
        if (!/^\d{1,16}$/.test(paxSize) || !Number.isSafeInteger(Number(paxSize))) {
          throw new CorruptArchiveError(`the archive is damaged: pax size ${JSON.stringify(paxSize.slice(0, 40))} at byte ${offset}`);
        }
        entrySize = Number(paxSize);
      }
      // GNU tar writes a time outside the octal field's range (before 1970, after 2242) only here.
      if (paxMtime !== undefined) {
        if (!/^-?\d{1,16}(\.\d{1,30})?$/.test(paxMtime)) {
          throw new CorruptArchiveError(`the archive is damaged: pax mtime ${JSON.stringify(paxMtime.slice(0, 40))} at byte ${offset}`);
        }
        mtime = Number(paxMtime);
      }
    }
    this.pax = undefined;
    this.longName = undefined;
    this.longLink = undefined;

    let type = ENTRY_TYPES[typeflag];
    // A file's name ending in a slash names a directory (old tars wrote directories so), for
    // a contiguous file too: GNU tar extracts either as a directory.
    if ((typeflag === '0' || typeflag === '7') && name.endsWith('/')) type = 'directory';
    if (pax?.sparse === true) type = 'sparse-file';
    const header: TarHeader = {
      name,
      type,
      typeflag,
      size: entrySize,
      mode: readNumber(block, 100, 8, offset, 'mode'),
      mtime,
      linkname,
      ...(pax?.absent !== undefined && { absent: pax.absent }),
      // An empty one names nothing: the refusal names the entry's path then.
      ...(type === 'sparse-file' && pax?.sparseName !== undefined && pax.sparseName !== '' && { sparseName: pax.sparseName }),
    };
    if (typeflag === DUMPDIR) {
      // A directory of `tar -g` (listed-incremental), its content the names it held then:
      // GNU tar extracts the directory and reads past the list unless told --incremental.
      // The list is read for the names it says this archive does not hold, and the
      // directory reported after it.
      const pending: PendingDumpdir = { header: { ...header, size: 0 }, offset, size: entrySize, list: newDumpdirScan() };
      this.dumpdir = pending;
      this.remaining = entrySize;
      if (entrySize > 0) {
        this.state = 'dumpdir';
        return undefined;
      }
      return this.finishDumpdir();
    }
    this.remaining = entrySize;
    this.entrySize = entrySize;
    if (entrySize === 0) this.afterContent();
    else this.state = 'content';
    return { kind: 'entry', header, offset };
  }

  /** The dump directory whose list has been read, with the names it marks absent. */
  private finishDumpdir(): TarEvent {
    const pending = this.dumpdir!;
    this.dumpdir = undefined;
    this.entrySize = 0;
    this.remaining = paddingAfter(pending.size);
    this.state = this.remaining === 0 ? 'header' : 'padding';
    const absent = absentOf(pending.list);
    return { kind: 'entry', header: absent === undefined ? pending.header : { ...pending.header, absent }, offset: pending.offset };
  }

  /** Reads past `size` bytes of content that no event reports, and their padding. */
  private skipContent(size: number): void {
    this.entrySize = 0;
    this.remaining = size + paddingAfter(size);
    this.state = this.remaining === 0 ? 'header' : 'padding';
  }

  private afterContent(): void {
    this.remaining = paddingAfter(this.entrySize);
    this.state = this.remaining === 0 ? 'header' : 'padding';
  }

  private finishExtended(): void {
    const extended = this.extended!;
    const body = Buffer.concat(this.extendedParts, extended.size);
    this.extended = undefined;
    this.extendedParts = [];
    if (extended.typeflag === 'x') this.pax = parsePax(body, extended.offset);
    else if (extended.typeflag === 'g') assertHarmlessGlobal(parsePax(body, extended.offset), extended.offset);
    else if (extended.typeflag === 'L') this.longName = utf8Field(body, 0, body.length);
    else if (extended.typeflag === 'K') this.longLink = utf8Field(body, 0, body.length);
    this.remaining = paddingAfter(extended.size);
    this.state = this.remaining === 0 ? 'header' : 'padding';
  }
}

/**
 * Reads part of a dump directory's list (records cross chunk boundaries): counts the records
 * that are neither in the archive ('Y') nor a directory ('D'), keeping the first names.
 */
function scanDumpdir(list: DumpdirScan, bytes: Buffer): void {
  let at = 0;
  while (at < bytes.length && !list.ended) {
    if (list.atRecordStart) {
      const letter = bytes[at++]!;
      if (letter === 0) {
        list.ended = true; // what follows the empty record is no record
        return;
      }
      list.atRecordStart = false;
      if (!DUMPDIR_IN_ARCHIVE.has(letter)) {
        list.count++;
        if (list.names.length < MAX_ABSENT_NAMES_KEPT) {
          list.name = [];
          list.nameBytes = 0;
        }
      }
      continue;
    }
    const nul = bytes.indexOf(0, at);
    const end = nul === -1 ? bytes.length : nul;
    if (list.name !== undefined && list.nameBytes < MAX_ABSENT_NAME_BYTES) {
      const piece = bytes.subarray(at, Math.min(end, at + MAX_ABSENT_NAME_BYTES - list.nameBytes));
      list.name.push(Buffer.from(piece)); // the caller may reuse its chunk
      list.nameBytes += piece.length;
    }
    if (nul === -1) return;
    if (list.name !== undefined) list.names.push(Buffer.concat(list.name).toString('utf8'));
    list.name = undefined;
    list.atRecordStart = true;
    at = nul + 1;
  }
}

function newDumpdirScan(): DumpdirScan {
  return { atRecordStart: true, ended: false, count: 0, names: [], name: undefined, nameBytes: 0 };
}

function absentOf(list: DumpdirScan): DumpdirAbsent | undefined {
  return list.count === 0 ? undefined : { count: list.count, names: list.names };
}

const ENTRY_TYPES: Record<string, TarEntryType | undefined> = {
  '0': 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'character-device',
  '4': 'block-device',
  '5': 'directory',
  '6': 'fifo',
  '7': 'contiguous-file',
  D: 'directory',
  S: 'sparse-file',
};

interface PaxRecords {
  /** The records this reader uses (PAX_KEYS_READ); a later record of a key replaces an earlier one, as in GNU tar. */
  readonly records: Map<string, string>;
  /** Whether GNU.sparse.* records make the entry a sparse file. */
  readonly sparse: boolean;
  /** GNU.sparse.name: the sparse file's own name (TarHeader.sparseName). */
  readonly sparseName: string | undefined;
  /** What a GNU.dumpdir record (`tar -g --format=posix`: a directory's list of names) marks absent. */
  readonly absent: DumpdirAbsent | undefined;
}

/** GNU tar applies a global header's records to every later entry; libarchive ignores them. Only harmless ones are accepted. */
function assertHarmlessGlobal(pax: PaxRecords, offset: number): void {
  const keys = [...pax.records.keys()];
  if (keys.length > 0 || pax.sparse) {
    throw new UnsafeArchiveError(
      `a global pax header at byte ${offset} sets ${keys.length > 0 ? keys.join(', ') : 'GNU.sparse'} for every later entry (GNU tar applies it, other readers do not)`,
    );
  }
}

/** pax records "<length> <key>=<value>\n"; values are UTF-8 and may hold any byte but the record's own framing. */
function parsePax(body: Buffer, offset: number): PaxRecords {
  const records = new Map<string, string>();
  let sparse = false;
  let sparseName: string | undefined;
  let absent: DumpdirAbsent | undefined;
  let at = 0;
  while (at < body.length) {
    if (body[at] === 0) break; // NUL padding after the records
    const space = body.indexOf(0x20, at);
    const lengthText = space === -1 ? '' : body.toString('latin1', at, space);
    const length = /^\d{1,8}$/.test(lengthText) ? Number(lengthText) : NaN;
    if (!(length > space - at + 1) || at + length > body.length || body[at + length - 1] !== 0x0a) {
      throw new CorruptArchiveError(`the archive is damaged: malformed pax header at byte ${offset}`);
    }
    const record = body.subarray(space + 1, at + length - 1);
    const equals = record.indexOf(0x3d);
    if (equals <= 0) throw new CorruptArchiveError(`the archive is damaged: malformed pax record at byte ${offset}`);
    const key = record.toString('utf8', 0, equals);
    if (key === 'path' || key === 'linkpath') records.set(key, utf8Text(record, equals + 1, record.length));
    else if (PAX_KEYS_READ.has(key)) records.set(key, record.toString('utf8', equals + 1));
    else if (key.startsWith(PAX_SPARSE_PREFIX)) {
      sparse = true;
      if (key === PAX_SPARSE_NAME) sparseName = utf8Text(record, equals + 1, record.length);
    }
    else if (key === PAX_DUMPDIR) {
      const list = newDumpdirScan();
      scanDumpdir(list, record.subarray(equals + 1));
      absent = absentOf(list);
    }
    at += length;
  }
  return { records, sparse, sparseName, absent };
}

const ZEROS = Buffer.alloc(64 * 1024);

/** Index of the first byte that is not zero, or -1. */
function firstNonZero(bytes: Buffer): number {
  for (let at = 0; at < bytes.length; at += ZEROS.length) {
    const piece = bytes.subarray(at, at + ZEROS.length);
    if (piece.equals(ZEROS.subarray(0, piece.length))) continue;
    for (let i = 0; i < piece.length; i++) if (piece[i] !== 0) return at + i;
  }
  return -1;
}

/** The ustar name: the name field, after the prefix field's path where there is one (POSIX ustar only). */
function ustarName(block: Buffer, ustar: boolean): string {
  const name = utf8Field(block, 0, 100);
  return ustar && block[345] !== 0 ? `${utf8Field(block, 345, 155)}/${name}` : name;
}

/** A NUL-terminated (or field-filling) UTF-8 name or link target (`what`), from the header at `headerOffset`. */
function utf8Field(bytes: Buffer, offset: number, length: number): string {
  const end = bytes.indexOf(0, offset);
  return utf8Text(bytes, offset, end === -1 || end > offset + length ? offset + length : end);
}

/**
 * Bytes `start` to `end` of a name or link target as text (raw-name.ts): a byte that is not
 * UTF-8 is kept as a lone surrogate, never decoded to U+FFFD, so the entry is restored under
 * the bytes GNU tar restores it under, and two such names stay two. (pax values are UTF-8
 * unless `hdrcharset=BINARY`; GNU tar writes raw bytes with or without it: both read alike.)
 */
function utf8Text(bytes: Buffer, start: number, end: number): string {
  return decodeRawName(bytes, start, end);
}

/**
 * An octal field (spaces and NULs around the digits allowed), or GNU base-256 when the top
 * bit is set: 0x80 then a positive number, or 0xff then a negative one in two's complement
 * (GNU tar writes a file from before 1970 so), accepted only where `signed`. Where `signed`,
 * octal digits after a '-' are a negative number too: tar-stream writes a file from before
 * 1970 so, and this tool's archives were written by tar-stream before its own tar layer.
 */
function readNumber(block: Buffer, offset: number, length: number, headerOffset: number, what: string, signed = false): number {
  const damaged = () => new CorruptArchiveError(`the archive is damaged: unreadable ${what} in the tar header at byte ${headerOffset}`);
  const first = block[offset]!;
  if (first & 0x80) {
    const negative = first === 0xff;
    if (first !== 0x80 && !(negative && signed)) throw damaged();
    let value = 0;
    for (let i = offset + 1; i < offset + length; i++) value = value * 256 + (negative ? 0xff - block[i]! : block[i]!);
    if (!Number.isSafeInteger(value)) throw damaged();
    return negative ? -(value + 1) : value;
  }
  let value = 0;
  let i = offset;
  const end = offset + length;
  while (i < end && (block[i] === 0x20 || block[i] === 0)) i++;
  const minus = signed && i < end && block[i] === 0x2d;
  if (minus) i++;
  let digits = 0;
  for (; i < end; i++, digits++) {
    const byte = block[i]!;
    if (byte === 0x20 || byte === 0) break;
    if (byte < 0x30 || byte > 0x37) throw damaged();
    value = value * 8 + (byte - 0x30);
  }
  for (; i < end; i++) if (block[i] !== 0x20 && block[i] !== 0) throw damaged();
  if (minus) {
    if (digits === 0) throw damaged();
    return -value;
  }
  return value;
}
