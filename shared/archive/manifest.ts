// The manifest: the last entry of every archive we write. It names the tenant and the tool,
// holds one digest per directory over what restore must find in it (names, types, sizes,
// content SHA-256s, link targets; see tree-digest.ts) and records what the backup left out
// and why. Restore checks the extracted tree against it before anything is committed. Version
// 1 listed every entry instead; restore still reads it, by digesting that list the same way.
//
// A manifest comes from an archive, so it is untrusted until `parseManifest` has checked its
// whole shape: every field's type, strings' lengths, integers' ranges, no duplicate directory,
// so nothing that uses it later (the CLI's summary, the Lambda's answer) can fail on it. Its
// size is bounded before it is parsed (ManifestLimits, restore/limits.ts: by default 32 MiB: a
// version 2 manifest is ~110 bytes per directory, a few KiB for most tenants, 22 MB for 200,000
// directories; the largest version 1 manifest, 9 MiB for 200,000 files, fits; and 262,144
// objects and arrays and 2,097,152 values, because JSON.parse turns 16 MiB of `{},` into 500 MiB
// of objects). A larger --max-entries raises them (bytes and objects in proportion), up to 16 times. A backup whose
// manifest is past what any --max-entries reads fails (`assertManifestRestorable`) rather than
// store an archive no restore would read; one past the defaults says which --max-entries reads it.
// The archive marker (the leading skippable frame) and footer (the trailing one) are checked
// as strictly.
import { randomBytes } from 'node:crypto';

import { ArchiveLimitError, CorruptArchiveError } from '../errors.js';
import { formatBytes, groupThousands, quotedPath } from '../format.js';
import { releasable, release } from '../released-buffers.js';
import { DEFAULT_MANIFEST_LIMITS, entriesToReadManifest, MOST_MANIFEST_LIMITS, type ManifestLimits } from '../restore/limits.js';
import { TOOL_VERSION } from '../version.js';
import { digestTree, type DirectoryDigest } from './tree-digest.js';
import { SKIPPABLE_HEADER_BYTES, SKIPPABLE_MAGIC_BASE } from './zstd-format.js';

export const MANIFEST_FORMAT = 'openclawmu-tenant-backup';
export const MANIFEST_FORMAT_VERSION = 2;
/** File name of the manifest inside `tenants/<name>/`; a tenant file with this name is never archived. */
export const MANIFEST_FILE_NAME = '.openclaw-backup-manifest.json';

/** An entry of a version 1 manifest. */
export type ManifestV1Entry =
  | { readonly path: string; readonly type: 'file'; readonly size: number; readonly mode: number; readonly mtimeMs: number; readonly sha256: string }
  | { readonly path: string; readonly type: 'directory'; readonly mode: number; readonly mtimeMs: number }
  | { readonly path: string; readonly type: 'symlink'; readonly target: string; readonly mtimeMs: number };

export interface ManifestNote {
  readonly path: string;
  readonly reason: string;
}

export interface Manifest {
  readonly format: typeof MANIFEST_FORMAT;
  readonly formatVersion: number;
  readonly tenant: string;
  readonly createdAt: string;
  readonly tool: { readonly name: string; readonly version: string };
  /** Every archived directory, in the order first met, with the digest of its direct children. */
  /** An array, or TreeDigest.directoryList's digests made as they are read (a backup's). */
  readonly directories: ManifestDirectories;
  /** Left out of the archive (pty/, sockets, escaping symlinks, vanished files). */
  readonly skipped: readonly ManifestNote[];
  /** Archived, but with a caveat (file changed while read, database archived raw). */
  readonly warnings: readonly ManifestNote[];
  readonly totals: { readonly files: number; readonly directories: number; readonly symlinks: number; readonly bytes: number };
}

/** How many directories `serializeManifest` turns into JSON at a time. */
const DIRECTORIES_PER_PIECE = 2048;

/**
 * The manifest as JSON (`JSON.stringify`'s bytes), its directories turned into text a piece at
 * a time: in one string, 100,000 directories (11 MB of JSON) came on the heap at the very end
 * of a backup, on top of all it had left there since its last full collection, and its peak
 * went from 146 to 208 MiB depending on when that collection fell.
 */
export function serializeManifest(manifest: Manifest): Buffer {
  const { directories } = manifest;
  const slice = (start: number, end: number) => Array.from({ length: Math.min(end, directories.length) - start }, (_, k) => directories.at(start + k)!);
  if (directories.length <= DIRECTORIES_PER_PIECE) return Buffer.from(JSON.stringify({ ...manifest, directories: slice(0, directories.length) }), 'utf8');
  const [before, after] = JSON.stringify({ ...manifest, directories: [] }).split('"directories":[]');
  const pieces = [Buffer.from(`${before}"directories":[`, 'utf8')];
  for (let start = 0; start < directories.length; start += DIRECTORIES_PER_PIECE) {
    const piece = JSON.stringify(slice(start, start + DIRECTORIES_PER_PIECE));
    pieces.push(Buffer.from(start === 0 ? piece.slice(1, -1) : `,${piece.slice(1, -1)}`, 'utf8'));
  }
  pieces.push(Buffer.from(`]${after}`, 'utf8'));
  return Buffer.concat(pieces);
}

/** The magic nibble of the archive's leading skippable frame, whose payload is an ArchiveMarker. */
export const ARCHIVE_MARKER_NIBBLE = 0x0c;

/** Payload of the archive's leading skippable frame: marks the archive as ours. */
export interface ArchiveMarker {
  readonly format: typeof MANIFEST_FORMAT;
  readonly formatVersion: number;
  readonly tenant: string;
  /**
   * The manifest's creation time and the tool's version, repeated here so that a listing
   * (`tenants backups`) reads them from the archive's first bytes. Archives written before
   * 0.1.0's listing carry neither.
   */
  readonly createdAt?: string;
  readonly toolVersion?: string;
}

/** The magic nibble of the archive's trailing skippable frame, whose payload is an ArchiveFooter. */
export const ARCHIVE_FOOTER_NIBBLE = 0x0d;
/** Largest footer payload written or read: a few short fields. */
export const MAX_FOOTER_BYTES = 1024;

/**
 * Payload of the archive's last frame (after the tar stream's frames): the manifest's
 * SHA-256, known only once the manifest is written, so a listing of local archives reads it
 * from the file's last bytes. Restore and verify check it against the manifest they read.
 */
export interface ArchiveFooter {
  readonly format: typeof MANIFEST_FORMAT;
  readonly tenant: string;
  readonly manifestSha256: string;
  /**
   * The entries a restore creates: the manifest's files (hard links included), directories and
   * symlinks. Lets the restore function refuse, from the archive's last bytes and before it
   * writes anything, a tenant of more files than it can stage in its time left. Archives
   * written before it carry none; restore and verify check it against the manifest.
   */
  readonly entries?: number;
  /**
   * The archive's bytes before this frame (the marker and the compressed frames): with the
   * frame's own length, the archive's whole length, so a listing (and `--skip-existing`) tells
   * from the last bytes alone an archive cut in its middle, whose end survived. Archives written
   * before it, or continued from the state of a version before it, carry none.
   */
  readonly bytesBefore?: number;
}

/** The entries of `totals` a restore creates, as the footer counts them. */
export function entriesToCreate(totals: Manifest['totals']): number {
  return totals.files + totals.directories + totals.symlinks;
}

/** Longest path or note a manifest may hold, in UTF-16 units: PATH_MAX bytes with every byte escaped, and more. */
const MAX_PATH_CHARS = 32 * 1024;
const MAX_REASON_CHARS = 64 * 1024;
const MAX_LABEL_CHARS = 256;
export const SHA256_HEX = /^[0-9a-f]{64}$/;
/** What Date#toISOString writes, and its variants with an offset or fewer fraction digits. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
/** Printable labels: no control characters (they are shown to people as they are). */
export const LABEL = /^[^\u0000-\u001f\u007f-\u009f]*$/;

/**
 * Parses and checks the whole shape of a manifest read from an archive (either version).
 * `consume`: the caller is done with `bytes`, whose memory is freed once they are read as text
 * (when it is theirs alone: not a view of a larger buffer),
 * before the JSON is parsed (released-buffers.ts): for 100,000 directories the manifest is
 * 11 MB, and its bytes, text and parsed tree at once were a restore's peak.
 */
export function parseManifest(bytes: Buffer, options: { readonly consume?: boolean; readonly limits?: ManifestLimits } = {}): ParsedManifest {
  assertParseable(bytes, options.limits ?? DEFAULT_MANIFEST_LIMITS);
  try {
    const streamed = manifestWithDirectoriesInBytes(bytes);
    if (streamed !== undefined) return streamed;
  } catch {
    // Refused or not valid JSON: parsed whole below, which says why as it always did.
  }
  return checkedManifest(parsedJson(bytes, options.consume === true), (m) => m.array('directories').map((entry, i) => directory(entry, `directories[${i}]`)));
}

/** A parsed manifest's directories: an array, or read one at a time from the manifest's bytes each time they are walked. */
export interface ManifestDirectories extends Iterable<DirectoryDigest> {
  readonly length: number;
  at(index: number): DirectoryDigest | undefined;
}

export type ParsedManifest = Omit<Manifest, 'directories'> & { readonly directories: ManifestDirectories };

/** Checks the shape of a parsed manifest; `directoriesOf` reads and checks a version 2 manifest's directories. */
function checkedManifest(value: unknown, directoriesOf: (m: Checked) => ManifestDirectories): ParsedManifest {
  if (!isRecord(value) || value.format !== MANIFEST_FORMAT) {
    throw new CorruptArchiveError('the archive manifest is not an OpenClawMU tenant manifest');
  }
  const m = new Checked(value, 'the archive manifest');
  const formatVersion = value.formatVersion;
  if (formatVersion !== 1 && formatVersion !== MANIFEST_FORMAT_VERSION) {
    throw new CorruptArchiveError(
      `the archive uses manifest format version ${JSON.stringify(formatVersion)?.slice(0, 40)}; this tool reads versions 1 and ${MANIFEST_FORMAT_VERSION}`,
    );
  }
  const tool = m.record('tool');
  const totals = m.record('totals');
  const directories = formatVersion === 1 ? digestTree(m.array('entries').map((entry, i) => v1Entry(entry, `entries[${i}]`))) : directoriesOf(m);
  const twice = firstListedTwice(directories.length, (index) => directories.at(index)!.path);
  if (twice !== undefined) throw m.malformed(`${quotedPath(twice.slice(0, 200))} is listed twice`, 'directories');
  return {
    format: MANIFEST_FORMAT,
    formatVersion,
    tenant: m.label('tenant'),
    createdAt: m.time('createdAt'),
    tool: { name: tool.label('name'), version: tool.label('version') },
    totals: { files: totals.count('files'), directories: totals.count('directories'), symlinks: totals.count('symlinks'), bytes: totals.count('bytes') },
    directories,
    skipped: m.array('skipped').map((note, i) => manifestNote(note, `skipped[${i}]`)),
    warnings: m.array('warnings').map((note, i) => manifestNote(note, `warnings[${i}]`)),
  };
}

/**
 * A version 2 manifest whose `directories` stay in its bytes, each read again from there when
 * they are walked: parsed whole, its text and its 200,000 directory objects (~50 MiB) were a
 * restore's peak, on top of the tree it had extracted. The rest of it is parsed with the array
 * left empty, and each directory on its own, so JSON.parse still reads every value. Undefined
 * where this scan cannot be sure to read the manifest as JSON.parse would (not an object, a
 * `directories` key given twice or not holding an array, version 1); it throws on anything
 * parsing it whole would refuse, and the caller then parses it whole to say why.
 */
function manifestWithDirectoriesInBytes(bytes: Buffer): ParsedManifest | undefined {
  const array = topLevelArray(bytes, 'directories');
  if (array === undefined) return undefined;
  const rest = JSON.parse(Buffer.concat([bytes.subarray(0, array.open), Buffer.from('[]'), bytes.subarray(array.close + 1)]).toString('utf8')) as unknown;
  if (!isRecord(rest) || rest.formatVersion !== MANIFEST_FORMAT_VERSION) return undefined;
  // Each is read and checked, in order, as checkedManifest looks for a path listed twice.
  return checkedManifest(rest, () => new DirectoriesInBytes(bytes, Uint32Array.from(array.elements)));
}

/** Directories read from the manifest's bytes as they are asked for, `elements` their start and end offsets. */
class DirectoriesInBytes implements ManifestDirectories {
  constructor(
    private readonly bytes: Buffer,
    private readonly elements: Uint32Array,
  ) {}

  get length(): number {
    return this.elements.length / 2;
  }

  at(index: number): DirectoryDigest | undefined {
    if (!(index >= 0 && index < this.length)) return undefined;
    const start = this.elements[2 * index]!;
    const end = this.elements[2 * index + 1]!;
    return directoryAsWritten(this.bytes, start, end) ?? directory(JSON.parse(this.bytes.toString('utf8', start, end)), `directories[${index}]`);
  }

  *[Symbol.iterator](): Iterator<DirectoryDigest> {
    for (let index = 0; index < this.length; index++) yield this.at(index)!;
  }
}

const WRITTEN_PATH = Buffer.from('{"path":"');
const WRITTEN_ENTRIES = Buffer.from('","entries":');
const WRITTEN_SHA256 = Buffer.from(',"sha256":"');
const SHA256_CHARS = 64;

/**
 * The directory in `bytes` from `start` to `end` when it is exactly as a backup writes it
 * (`{"path":"…","entries":N,"sha256":"…"}`, no escape, no space, a valid value in every field),
 * read without JSON.parse: a directory is read up to three times as the manifest is checked
 * and walked, and JSON.parse and the field checks of 200,000 of them cost 0.1 s each time.
 * Undefined for anything else, which JSON.parse then reads: a string without a backslash or
 * control character is its UTF-8 bytes, decoded as the whole text would be (its ends are ASCII).
 */
function directoryAsWritten(bytes: Buffer, start: number, end: number): DirectoryDigest | undefined {
  if (!bytesAt(bytes, start, end, WRITTEN_PATH)) return undefined;
  const pathStart = start + WRITTEN_PATH.length;
  let i = pathStart;
  for (; i < end; i++) {
    const byte = bytes[i]!;
    if (byte === 0x22) break;
    if (byte === 0x5c || byte < 0x20) return undefined;
  }
  const pathEnd = i;
  if (pathEnd - pathStart > MAX_PATH_CHARS || !bytesAt(bytes, pathEnd, end, WRITTEN_ENTRIES)) return undefined;
  i = pathEnd + WRITTEN_ENTRIES.length;
  // 0, or up to 15 digits without a leading zero: a safe integer, written as JSON writes it.
  let entries = 0;
  const digitsStart = i;
  if (bytes[i] === 0x30) i++;
  else for (; i < end && bytes[i]! >= 0x30 && bytes[i]! <= 0x39 && i - digitsStart < 15; i++) entries = entries * 10 + bytes[i]! - 0x30;
  if (i === digitsStart || !bytesAt(bytes, i, end, WRITTEN_SHA256)) return undefined;
  i += WRITTEN_SHA256.length;
  if (end !== i + SHA256_CHARS + 2 || bytes[end - 2] !== 0x22 || bytes[end - 1] !== 0x7d) return undefined;
  for (let k = i; k < i + SHA256_CHARS; k++) {
    const byte = bytes[k]!;
    if (!((byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66))) return undefined;
  }
  return { path: bytes.toString('utf8', pathStart, pathEnd), entries, sha256: bytes.toString('latin1', i, i + SHA256_CHARS) };
}

/** Whether `expected` is in `bytes` at `at`, before `end`. */
function bytesAt(bytes: Buffer, at: number, end: number, expected: Buffer): boolean {
  if (at + expected.length > end) return false;
  for (let k = 0; k < expected.length; k++) if (bytes[at + k] !== expected[k]) return false;
  return true;
}

const isJsonSpace = (byte: number | undefined) => byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;

/** Offset just past the string whose opening quote is at `start`, or -1 when it never closes. */
function stringEnd(bytes: Buffer, start: number): number {
  for (let i = start + 1; i < bytes.length; i++) {
    const byte = bytes[i];
    if (byte === 0x5c) i++;
    else if (byte === 0x22) return i + 1;
  }
  return -1;
}

/**
 * Where the array that the top-level object's `key` holds opens and closes, and its elements'
 * start and end offsets (separators and brackets are found outside strings: the bytes of a
 * multi-byte UTF-8 character are never a quote or backslash). Undefined when the JSON is not an
 * object, holds the key twice (JSON.parse keeps the last) or not with an array. It does not
 * check the JSON otherwise: parsing the rest and every element does.
 */
function topLevelArray(bytes: Buffer, key: string): { open: number; close: number; elements: number[] } | undefined {
  let i = 0;
  while (isJsonSpace(bytes[i])) i++;
  if (bytes[i] !== 0x7b) return undefined;
  let found: { open: number; close: number; elements: number[] } | undefined;
  let depth = 0;
  let expectKey = false;
  let elementStart = 0;
  for (; i < bytes.length; i++) {
    const byte = bytes[i]!;
    if (isJsonSpace(byte)) continue;
    const inArray = found !== undefined && found.close < 0;
    if (byte === 0x22) {
      const end = stringEnd(bytes, i);
      if (end < 0) return undefined;
      if (depth === 1 && expectKey) {
        let colon = end;
        while (isJsonSpace(bytes[colon])) colon++;
        if (bytes[colon] === 0x3a && JSON.parse(bytes.toString('utf8', i, end)) === key) {
          if (found !== undefined) return undefined;
          let open = colon + 1;
          while (isJsonSpace(bytes[open])) open++;
          if (bytes[open] !== 0x5b) return undefined;
          found = { open, close: -1, elements: [] };
          depth = 2;
          elementStart = open + 1;
          i = open;
          expectKey = false;
          continue;
        }
      }
      expectKey = false;
      i = end - 1;
    } else if (byte === 0x7b || byte === 0x5b) {
      depth++;
      expectKey = depth === 1;
    } else if (byte === 0x7d || byte === 0x5d) {
      depth--;
      if (inArray && depth === 1) {
        if (byte !== 0x5d) return undefined;
        let content = elementStart;
        while (isJsonSpace(bytes[content])) content++;
        if (found!.elements.length > 0 || content < i) found!.elements.push(elementStart, i);
        found!.close = i;
      }
      expectKey = false;
    } else if (byte === 0x2c) {
      if (inArray && depth === 2) {
        found!.elements.push(elementStart, i);
        elementStart = i + 1;
      }
      expectKey = depth === 1;
    } else expectKey = false;
  }
  return found !== undefined && found.close >= 0 ? found : undefined;
}

/**
 * The manifest's bytes parsed as JSON. Its text is garbage once this returns, before the
 * parsed tree is checked and copied: for 200,000 directories that is 22 MB off a restore's
 * peak, which it otherwise held to the end of `parseManifest`.
 */
function parsedJson(bytes: Buffer, consume: boolean): unknown {
  const text = bytes.toString('utf8');
  // Only memory that is all the manifest's: freeing a view's detaches the whole of what it is a
  // view of (a pooled or shared buffer's other data would be gone).
  if (consume && bytes.byteLength === bytes.buffer.byteLength) release(releasable(bytes));
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CorruptArchiveError('the archive manifest is not valid JSON', { cause: error });
  }
}

/**
 * Refuses, before a backup stores it, a manifest `parseManifest` would refuse whatever
 * --max-entries it is given: the archive would hold the whole tenant, and no restore or verify
 * would read it (a tenant of 200,000 directories had made one past the 16 MiB of before,
 * stored as if it were a backup). Answers the least --max-entries that reads it, undefined
 * when the default does (the backup says it: beyondDefaultLimits).
 */
export function assertManifestRestorable(bytes: Buffer, directories: number): number | undefined {
  const entries = entriesToReadManifest(manifestSize(bytes));
  if (entries === Infinity) {
    throw new ArchiveLimitError(
      `the tenant's manifest (${groupThousands(directories)} directories, ${formatBytes(bytes.length)}) is past what any restore reads ` +
        `(${formatBytes(MOST_MANIFEST_LIMITS.bytes)}, ${groupThousands(MOST_MANIFEST_LIMITS.containers)} directories and notes, with any --max-entries): no restore could read the archive, so it is not stored`,
    );
  }
  return entries;
}

/**
 * The archive marker's payload, or undefined when it is not ours (another tool's skippable
 * frame of the same nibble). One that says it is ours is checked as strictly as a manifest.
 */
export function parseArchiveMarker(payload: Buffer): ArchiveMarker | undefined {
  const value = ourPayload(payload);
  if (value === undefined) return undefined;
  const marker = new Checked(value, 'the archive marker');
  const formatVersion = marker.count('formatVersion');
  if (formatVersion < 1) throw marker.malformed('not a format version', 'formatVersion');
  return {
    format: MANIFEST_FORMAT,
    formatVersion,
    tenant: marker.label('tenant'),
    ...(value.createdAt !== undefined && { createdAt: marker.time('createdAt') }),
    ...(value.toolVersion !== undefined && { toolVersion: marker.label('toolVersion') }),
  };
}

/**
 * Refuses, from the archive's first frame, an archive in a format version newer than this
 * tool reads, naming the version that wrote it; otherwise that shows only at the manifest,
 * the last entry, once the whole archive has been read.
 */
export function assertMarkerReadable(marker: ArchiveMarker): void {
  if (marker.formatVersion <= MANIFEST_FORMAT_VERSION) return;
  const writer = marker.toolVersion === undefined ? 'a newer version of this tool' : `version ${marker.toolVersion} of this tool`;
  throw new CorruptArchiveError(
    `the archive is in format version ${marker.formatVersion}, written by ${writer}; this tool (version ${TOOL_VERSION}) reads versions 1 and ${MANIFEST_FORMAT_VERSION}: restore it with a newer version`,
  );
}

/** The archive footer's payload, or undefined when it is not ours; one that says it is ours is checked strictly. */
export function parseArchiveFooter(payload: Buffer): ArchiveFooter | undefined {
  if (payload.length > MAX_FOOTER_BYTES) return undefined;
  const value = ourPayload(payload);
  if (value === undefined) return undefined;
  const footer = new Checked(value, 'the archive footer');
  const entries = value['entries'] === undefined ? undefined : footer.count('entries');
  const bytesBefore = value['bytesBefore'] === undefined ? undefined : footer.count('bytesBefore');
  return {
    format: MANIFEST_FORMAT,
    tenant: footer.label('tenant'),
    manifestSha256: footer.sha256('manifestSha256'),
    ...(entries !== undefined && { entries }),
    ...(bytesBefore !== undefined && { bytesBefore }),
  };
}

/**
 * Our footer frame when an archive's last bytes (`tail`) end with one; undefined when they do
 * not. One that says it is ours and is malformed throws CorruptArchiveError.
 */
export function findArchiveFooter(tail: Buffer): ArchiveFooter | undefined {
  return findArchiveFooterFrame(tail)?.footer;
}

/** As findArchiveFooter, with the length of the footer's frame (header included). */
export function findArchiveFooterFrame(tail: Buffer): { readonly footer: ArchiveFooter; readonly frameBytes: number } | undefined {
  const magic = SKIPPABLE_MAGIC_BASE + ARCHIVE_FOOTER_NIBBLE;
  for (let at = tail.length - SKIPPABLE_HEADER_BYTES; at >= 0; at--) {
    if (tail.readUInt32LE(at) === magic && tail.readUInt32LE(at + 4) === tail.length - at - SKIPPABLE_HEADER_BYTES) {
      const footer = parseArchiveFooter(tail.subarray(at + SKIPPABLE_HEADER_BYTES));
      return footer === undefined ? undefined : { footer, frameBytes: tail.length - at };
    }
  }
  return undefined;
}

/**
 * How many bytes follow our footer frame in `tail` when it is not at its end (another tool
 * appended frames: verify refuses such an archive); undefined when no footer lies before the end.
 */
export function bytesAfterArchiveFooter(tail: Buffer): number | undefined {
  const magic = SKIPPABLE_MAGIC_BASE + ARCHIVE_FOOTER_NIBBLE;
  for (let at = tail.length - SKIPPABLE_HEADER_BYTES; at >= 0; at--) {
    if (tail.readUInt32LE(at) !== magic) continue;
    const end = at + SKIPPABLE_HEADER_BYTES + tail.readUInt32LE(at + 4);
    if (end >= tail.length) continue;
    try {
      if (parseArchiveFooter(tail.subarray(at + SKIPPABLE_HEADER_BYTES, end)) !== undefined) return tail.length - end;
    } catch {
      // Not a footer of ours that reads: keep looking before it.
    }
  }
  return undefined;
}

/** A skippable frame's JSON payload when it says it is ours; undefined for another tool's frame of the same nibble. */
function ourPayload(payload: Buffer): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  return isRecord(value) && value.format === MANIFEST_FORMAT ? value : undefined;
}

/** Refuses JSON too large to parse in bounded memory, before JSON.parse sees it. */
function assertParseable(bytes: Buffer, limits: ManifestLimits): void {
  if (bytes.length > limits.bytes) throw new ArchiveLimitError(`the archive manifest is larger than ${formatBytes(limits.bytes)}${raiseTo({ bytes: bytes.length, containers: 0, values: 0 })}`);
  const size = manifestSize(bytes);
  if (size.names > MAX_FIELD_NAMES) {
    throw new ArchiveLimitError(`the archive manifest holds more than ${MAX_FIELD_NAMES} different field names (a manifest uses fewer than 30); refusing to parse it`);
  }
  if (size.shapes > MAX_OBJECT_SHAPES) {
    throw new ArchiveLimitError(`the archive manifest holds objects of more than ${MAX_OBJECT_SHAPES} different field lists (ours use a few dozen); refusing to parse it`);
  }
  if (size.containers > limits.containers || size.values > limits.values) {
    throw new ArchiveLimitError(
      `the archive manifest holds more than ${limits.containers} objects or ${limits.values} values; refusing to parse it${raiseTo(size)}`,
    );
  }
}

/** What lets a manifest of `size` through, said after a refusal: the --max-entries that reads it, or that none does. */
function raiseTo(size: ManifestLimits): string {
  const entries = entriesToReadManifest(size);
  if (entries === undefined) return '';
  return entries === Infinity ? ' (past what any --max-entries reads)' : ` (raise --max-entries to ${entries} or more if it is genuine)`;
}

/**
 * Most different field names (object keys) a manifest may use. A manifest of either version uses
 * fewer than 30, but JSON.parse gives every new name its own hidden class and transitions
 * (~270 bytes a name): 2^21 objects of 8 names of their own each (16,777,216 values, 170 MB,
 * within the bounds of --max-entries 16,000,000) parsed into 4.3 GiB in 78 s, and at the
 * default bounds into 606 MiB, where the same values as short strings take 1.7 GiB and 254 MiB.
 * Fixed, not raised with --max-entries: a larger tenant uses no more names.
 */
export const MAX_FIELD_NAMES = 1024;
/**
 * Most different field lists (names in the order an object gives them, each prefix counted) a
 * manifest's objects may have. JSON.parse gives each its own hidden class, so 1,000 names in
 * different orders make millions: 262,000 notes of 8 of them (17 MB, within the default bounds)
 * took 369 MiB and 12 s to refuse where the same fields in one order took 126 MiB and 1.4 s, and
 * 2,000,000 notes of 3 at --max-entries 16,000,000 took 625 MiB and 48 s. Fixed, as
 * MAX_FIELD_NAMES: a larger tenant's manifest uses no more lists.
 */
export const MAX_OBJECT_SHAPES = 4096;
/** A field name longer than this is counted as a new name each time it is met (none of ours is near it), not kept. */
const LONGEST_KEPT_NAME = 256;

/**
 * The manifest's bytes, and its objects and arrays and values as assertParseable counts them
 * (outside strings), the different field names it uses (counted up to MAX_FIELD_NAMES + 1;
 * a name written with an escape counts apart from the same name without: never fewer than
 * JSON.parse sees), and the different field lists its objects have (counted up to
 * MAX_OBJECT_SHAPES + 1: each object's names in order, as JSON.parse makes hidden classes; a
 * name given twice in one object counts as a longer list, never fewer).
 */
function manifestSize(bytes: Buffer): ManifestLimits & { readonly names: number; readonly shapes: number } {
  let containers = 0;
  let values = 0;
  let inString = false;
  let stringStart = 0;
  // Each name kept once, by its hash, as where its bytes lie and its number; one whose hash another holds counts apart.
  const names = new Map<number, { readonly start: number; readonly id: number }>();
  let unkept = 0;
  // The field lists: 0 is an object's empty one; a list and a name's number lead to the list with the name added.
  const shapes = new Map<number, number>();
  // Each open container's list so far (ARRAY for an array), while nesting stays within what any
  // bounds take (deeper is refused for its objects and arrays anyway).
  const open: number[] = [];
  let depth = 0;
  const ARRAY = -1;
  const NAME_IDS = 2 * (MAX_FIELD_NAMES + 1);
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    if (inString) {
      if (byte === 0x5c) i++; // backslash: skip the escaped byte
      else if (byte === 0x22) {
        inString = false;
        if (names.size + unkept > MAX_FIELD_NAMES) continue;
        let next = i + 1;
        while (isJsonSpace(bytes[next])) next++;
        if (bytes[next] !== 0x3a) continue;
        const start = stringStart + 1;
        let id: number;
        if (i - start > LONGEST_KEPT_NAME) {
          id = names.size + unkept++;
        } else {
          let hash = 0x811c9dc5;
          for (let k = start; k < i; k++) hash = Math.imul(hash ^ bytes[k]!, 0x01000193);
          hash = (hash >>> 0) * 512 + (i - start);
          const kept = names.get(hash);
          if (kept === undefined) names.set(hash, { start, id: (id = names.size + unkept) });
          else if (sameBytes(bytes, kept.start, start, i - start)) id = kept.id;
          else id = names.size + unkept++;
        }
        const list = depth <= open.length ? open[depth - 1] : undefined;
        if (list === undefined || list === ARRAY || shapes.size > MAX_OBJECT_SHAPES) continue;
        const step = list * NAME_IDS + id;
        let after = shapes.get(step);
        if (after === undefined) shapes.set(step, (after = shapes.size + 1));
        open[depth - 1] = after;
      }
    } else if (byte === 0x22) {
      inString = true;
      stringStart = i;
    } else if (byte === 0x7b || byte === 0x5b) {
      containers++;
      if (depth++ < MOST_MANIFEST_LIMITS.containers) open.push(byte === 0x7b ? 0 : ARRAY);
    } else if (byte === 0x7d || byte === 0x5d) {
      if (depth > 0 && depth-- <= open.length) open.pop();
    } else if (byte === 0x2c) values++;
  }
  return { bytes: bytes.length, containers, values, names: names.size + unkept, shapes: shapes.size };
}

/** Whether `bytes` holds the same `length` bytes at `a` and at `b`. */
function sameBytes(bytes: Buffer, a: number, b: number, length: number): boolean {
  for (let k = 0; k < length; k++) if (bytes[a + k] !== bytes[b + k]) return false;
  return true;
}

/**
 * A directory as parsed when it holds the three fields and nothing else (a manifest we wrote),
 * else a copy of them: for 200,000 directories a copy of each was 9 MiB more at the peak.
 */
function directory(value: unknown, at: string): DirectoryDigest {
  const d = new Checked(value, 'the archive manifest', at);
  const path = d.path('path');
  const entries = d.count('entries');
  const sha256 = d.sha256('sha256');
  return fieldCount(value as object) === 3 ? (value as DirectoryDigest) : { path, entries, sha256 };
}

/** How many own enumerable fields `value` has (a parsed JSON object's are all its fields). */
function fieldCount(value: object): number {
  let count = 0;
  for (const key in value) if (Object.hasOwn(value, key)) count++;
  return count;
}

/**
 * The path listed a second time earliest, or undefined when every path is listed once. Sorts
 * the paths' hashes packed with their indices instead of keeping a Set of 200,000 paths
 * (8-10 MiB at a restore's peak); paths of one hash are compared as strings, sorted, so that
 * colliding hashes cost n log n, not n². Any count: past 2^21 paths the hash keeps fewer bits
 * (hash * span + index stays below 2^53, exact in a double), which only makes groups of one
 * hash larger (each compared as strings); it had refused every manifest of more than 2^21
 * directories, so no backup of more could be stored.
 */
export function firstListedTwice(count: number, pathOf: (index: number) => string): string | undefined {
  let indexBits = 21;
  while (2 ** indexBits < count) indexBits++;
  const span = 2 ** indexBits;
  const hashSpan = 2 ** Math.min(32, 53 - indexBits);
  const keys = new Float64Array(count);
  for (let index = 0; index < count; index++) keys[index] = (pathHash(pathOf(index)) % hashSpan) * span + index;
  keys.sort();
  let earliest = Infinity;
  for (let start = 0; start < count; ) {
    const hash = Math.floor(keys[start]! / span);
    let end = start + 1;
    while (end < count && Math.floor(keys[end]! / span) === hash) end++;
    if (end - start > 1) {
      // Each path read once (reading one may parse its directory again: manifestWithDirectoriesInBytes).
      const listed: { index: number; path: string }[] = [];
      for (let k = start; k < end; k++) listed.push({ index: keys[k]! % span, path: pathOf(keys[k]! % span) });
      listed.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : a.index - b.index));
      for (let k = 1; k < listed.length; k++) {
        // Within equal paths the indices ascend: the least later one of a pair is the earliest second listing.
        if (listed[k]!.path === listed[k - 1]!.path) earliest = Math.min(earliest, listed[k]!.index);
      }
    }
    start = end;
  }
  return earliest === Infinity ? undefined : pathOf(earliest);
}

/**
 * Where this process's path hash starts: random, so that no archive can be made for it. With
 * the published FNV-1a (basis 0x811c9dc5), paths made to share one hash are found in seconds
 * (k colliding pairs of 7 characters make 2^k paths of one hash), and all of a manifest's
 * directories then fall in one group, each read twice, held and sorted as strings: 2,097,152
 * such paths took 52 s and 2.0 GiB RSS, against 3.9 s and 1.1 GiB for as many others (262,144:
 * 2.3 s against 0.7). A random basis alone is not enough (1 in ~90 bases kept such a set
 * colliding): the shift in pathHash carries the high bits down into the low ones, which FNV's
 * multiply never does. Only the groups depend on it, not what firstListedTwice returns.
 */
const PATH_HASH_BASIS = randomBytes(4).readUInt32LE(0);

/** A 32-bit hash of a string's UTF-16 units: FNV-1a's step, a shift mixed in, from PATH_HASH_BASIS. */
function pathHash(text: string): number {
  let hash = PATH_HASH_BASIS;
  for (let i = 0; i < text.length; i++) {
    hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
    hash ^= hash >>> 15;
  }
  return hash >>> 0;
}

function manifestNote(value: unknown, at: string): ManifestNote {
  const note = new Checked(value, 'the archive manifest', at);
  return { path: note.path('path'), reason: note.text('reason', MAX_REASON_CHARS) };
}

/** A version 1 entry, as the digest needs it. */
function v1Entry(value: unknown, at: string): ManifestV1Entry {
  const e = new Checked(value, 'the archive manifest', at);
  const path = e.path('path');
  const mtimeMs = e.number('mtimeMs');
  const type = isRecord(value) ? value.type : undefined;
  switch (type) {
    case 'file':
      return { path, type, size: e.count('size'), mode: e.count('mode'), mtimeMs, sha256: e.sha256('sha256') };
    case 'directory':
      return { path, type, mode: e.count('mode'), mtimeMs };
    case 'symlink':
      return { path, type, target: e.path('target'), mtimeMs };
    default:
      throw e.malformed('not file, directory or symlink', 'type');
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads typed fields of one JSON object, refusing the manifest with the field's name on any mismatch. */
class Checked {
  private readonly fields: Record<string, unknown>;

  constructor(
    value: unknown,
    private readonly what: string,
    private readonly at = '',
  ) {
    if (!isRecord(value)) throw this.malformed('not an object');
    this.fields = value;
  }

  /** The error naming `key` of this object (or the object itself) and what is wrong with it. */
  malformed(problem: string, key?: string): CorruptArchiveError {
    const where = [this.at, key].filter((part) => part !== undefined && part !== '').join('.');
    return new CorruptArchiveError(`${this.what} is malformed: ${where === '' ? '' : `${where}: `}${problem}`);
  }

  record(key: string): Checked {
    return new Checked(this.fields[key], this.what, this.at === '' ? key : `${this.at}.${key}`);
  }

  array(key: string): unknown[] {
    const value = this.fields[key];
    if (!Array.isArray(value)) throw this.malformed('not an array', key);
    return value;
  }

  text(key: string, maxChars: number): string {
    const value = this.fields[key];
    if (typeof value !== 'string') throw this.malformed('not a string', key);
    if (value.length > maxChars) throw this.malformed(`longer than ${maxChars} characters`, key);
    return value;
  }

  path(key: string): string {
    return this.text(key, MAX_PATH_CHARS);
  }

  /** A short printable string: a tenant name, a tool's name or version. */
  label(key: string): string {
    const value = this.text(key, MAX_LABEL_CHARS);
    if (!LABEL.test(value)) throw this.malformed('holds control characters', key);
    return value;
  }

  time(key: string): string {
    const value = this.text(key, MAX_LABEL_CHARS);
    if (!ISO_TIME.test(value) || !Number.isFinite(Date.parse(value))) throw this.malformed('not an ISO 8601 time', key);
    return value;
  }

  /** A non-negative safe integer. */
  count(key: string): number {
    const value = this.fields[key];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw this.malformed('not a whole number from 0 to 2^53', key);
    return value;
  }

  number(key: string): number {
    const value = this.fields[key];
    if (typeof value !== 'number' || !Number.isFinite(value)) throw this.malformed('not a number', key);
    return value;
  }

  sha256(key: string): string {
    const value = this.fields[key];
    if (typeof value !== 'string' || !SHA256_HEX.test(value)) throw this.malformed('not a SHA-256 in lowercase hex', key);
    return value;
  }
}
