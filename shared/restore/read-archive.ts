// Reading one archive end to end, with every check a restore makes: the stored bytes
// decoded frame by frame (zstd-decoder.ts, its limits), our marker and footer recognised and
// checked, the tar stream extracted under the limits and verified against the manifest
// (extract.ts), and the marker and footer checked against what the archive turned out to
// hold. Restore (restore.ts) reads through it into a staging directory; `tenants verify` and
// a restore's dry run read through it with `discard`, writing nothing. One path, so the two
// can never check differently. An age-encrypted archive is decrypted here, before anything
// else sees a byte (archive/encrypted-archive.ts), with the identities given; without them it
// is refused with a hint, so restore, its dry run and verify all read encrypted archives alike.

import type { Readable } from 'node:stream';

import { unlockHeader } from '../age/decrypt.js';
import { AgeHeaderReader, DEFAULT_HEADER_LIMITS, type AgeHeader, type HeaderDone } from '../age/header.js';
import type { AgeIdentity } from '../age/keys.js';
import { derivePayloadKey, openSealedChunk, PAYLOAD_NONCE_BYTES, SEALED_CHUNK_BYTES } from '../age/stream.js';
import { plaintextArchive, type AgeCliRoute } from '../archive/encrypted-archive.js';
import { ArchiveLimitError, CorruptArchiveError, StorageError } from '../errors.js';
import { formatBytes, groupThousands, plural, quotedPath } from '../format.js';
import { EPHEMERAL_DIR } from '../tenant/names.js';
import { ExtractionSuspended, extractTenantArchive, type ExtractOptions, type ExtractProgress, type ExtractResult } from './extract.js';
import type { ExtractLimits } from './limits.js';
import {
  ARCHIVE_FOOTER_NIBBLE,
  ARCHIVE_MARKER_NIBBLE,
  assertMarkerReadable,
  entriesToCreate,
  findArchiveFooter,
  MAX_FOOTER_BYTES,
  parseArchiveFooter,
  parseArchiveMarker,
  type ArchiveFooter,
  type ArchiveMarker,
} from '../archive/manifest.js';
import { throwIfAborted } from '../storage/streams.js';
import type { ArchiveLocation, ReadOptions } from '../storage/types.js';
import { decompressFrames } from '../archive/zstd-decoder.js';
import { SKIPPABLE_HEADER_BYTES } from '../archive/zstd-format.js';

export interface ReadArchiveOptions extends Pick<ExtractOptions, 'prepare' | 'signal' | 'fileAccess' | 'workerThresholdBytes' | 'discard' | 'owner' | 'pieces'>, Pick<ReadOptions, 'onIdentity' | 'expectIdentity'> {
  readonly limits: ExtractLimits;
  /** Identities to decrypt an age-encrypted archive with (`--identity`); without, such an archive is refused with a hint. */
  readonly identities?: readonly AgeIdentity[];
  /** Where the hints send an age file only the `age` CLI reads (encrypted-archive.ts). @default 'pipe' */
  readonly ageCli?: AgeCliRoute;
  /** `archiveTotalBytes`: the stored archive's size, when the location told it (ReadOptions.onSize). */
  readonly onProgress?: (progress: ExtractProgress & { readonly archiveBytes: number; readonly archiveTotalBytes?: number }) => void;
  /** Refuse, before anything is extracted, an archive whose stored size (as the location tells it) is larger; `reason` ends the message. A function: asked then (the time left once leftovers were swept), given the stored size when the location told it. */
  readonly maxArchiveBytes?: ArchiveSizeLimit | ((archiveBytes: number | undefined) => ArchiveSizeLimit);
  /**
   * Refuse, before anything is extracted, an archive whose footer counts more entries to create
   * (a location that reads its last bytes: S3); `reason` ends the message. Asked once the size passed.
   * An encrypted archive's footer is read from its last age chunks with `identities`
   * (encryptedArchiveFooter). An archive without that count in its footer (older,
   * encrypted with no identity given, another tool's) is not refused.
   */
  /** Given the archive's size when the store told it: the time its bytes take comes out of the time its entries have. */
  readonly maxArchiveEntries?: (archiveBytes: number | undefined) => ArchiveEntryLimit;
  /**
   * Read the footer's entry count up front as maxArchiveEntries does (a later restore piece whose
   * checkpoint has none: its first piece ran on the previous version) and give it here, undefined
   * where the footer has none, before anything is extracted; what this throws refuses the archive.
   */
  readonly onFooterEntries?: (entries: number | undefined) => void;
  /** Called once the location answered the archive's opening read (S3: its first GET's headers came): its body may still hold back every byte. */
  readonly onOpened?: () => void;
  /**
   * Called once the archive's first bytes came (the first chunk of its body reached the reading,
   * before the deadline is checked on it): before, nothing was read or replayed.
   */
  readonly onFirstBytes?: () => void;
}

export interface ArchiveSizeLimit {
  readonly bytes: number;
  readonly reason: string;
}

export interface ArchiveEntryLimit {
  readonly entries: number;
  readonly reason: string;
}

export interface ReadArchive {
  readonly extracted: ExtractResult;
  /** The leading frame that marks the archive as ours; undefined for an archive made by another tool. */
  readonly marker?: ArchiveMarker;
  /** The trailing frame with the manifest's digest (archives from 0.1.0's listing on). */
  readonly footer?: ArchiveFooter;
  /** Bytes after the footer's frame that decode to nothing (the footer is not the archive's end, as a listing reads it); absent: none. */
  readonly bytesAfterFooter?: number;
  /** Bytes read from the location. */
  readonly archiveBytes: number;
  /** The stored bytes were an age file, decrypted (every chunk authenticated). */
  readonly encrypted: boolean;
}

/** What an archive holds and how much of it was read: restore, verify and restore --dry-run report these alike. */
export interface ArchiveCounts {
  readonly files: number;
  readonly directories: number;
  readonly symlinks: number;
  readonly hardlinks: number;
  readonly bytes: number;
  /** Bytes read from the location. */
  readonly archiveBytes: number;
}

export function archiveCounts({ extracted, archiveBytes }: ReadArchive): ArchiveCounts {
  return { files: extracted.files, directories: extracted.directories, symlinks: extracted.symlinks, hardlinks: extracted.hardlinks, bytes: extracted.bytes, archiveBytes };
}

/** Reading an archive that is not encrypted, with an identity given, is allowed: it says so. */
export const NOT_ENCRYPTED_NOTICE = 'the archive is not encrypted: the identity given was not needed';

/** What a restore of an archive without a manifest says about it (restore and its dry run alike). */
export const NO_MANIFEST_NOTICE = 'the archive has no manifest (made by another tool?): per-file verification was not possible';

/**
 * The notice for an archive (only ever a foreign one) that holds the tenant's `pty/`, which a
 * restore leaves out: `restored` for the restore itself, else for verify and the dry run.
 */
export function ephemeralNotice({ extracted }: Pick<ReadArchive, 'extracted'>, restored: boolean): string[] {
  const { entries, bytes } = extracted.ephemeral;
  if (entries === 0) return [];
  return [
    `the archive's ${EPHEMERAL_DIR}/ (${plural(entries, 'entry', 'entries')}, ${formatBytes(bytes)}) is ephemeral terminal state: ` +
      (restored ? 'left out' : 'a restore leaves it out'),
  ];
}

/**
 * What a restore says when the file system refused hard links and their names were made copies
 * (tree-writer.ts): the tenant takes more space than the backup's `bytes`, its names no longer linked.
 */
export function copiedLinksNotice({ extracted }: Pick<ReadArchive, 'extracted'>): string[] {
  const { names, bytes } = extracted.copiedLinks;
  if (names === 0) return [];
  return [
    `${plural(names, 'hard link')} restored as ${names === 1 ? 'a copy' : 'copies'} of ${names === 1 ? 'its file' : 'their files'} (${formatBytes(bytes)} more on disk): ` +
      'the file system restored into refused the links (it has no hard links, or a file reached its limit of names); the names are no longer linked',
  ];
}

/** The notice to add when identities were given for an archive that needed none. */
export function encryptionNotices(read: Pick<ReadArchive, 'encrypted'>, identities: readonly AgeIdentity[] | undefined): string[] {
  return !read.encrypted && (identities?.length ?? 0) > 0 ? [NOT_ENCRYPTED_NOTICE] : [];
}

export async function readTenantArchive(location: ArchiveLocation, options: ReadArchiveOptions): Promise<ReadArchive> {
  const { signal } = options;
  let archiveTotalBytes: number | undefined;
  let identity: string | undefined;
  const source = await location.read({
    signal,
    onSize: (bytes) => (archiveTotalBytes = bytes),
    onIdentity: (named) => {
      identity = named;
      options.onIdentity?.(named);
    },
    ...(options.expectIdentity !== undefined && { expectIdentity: options.expectIdentity }),
  });
  options.onOpened?.();
  if (options.expectIdentity !== undefined && identity !== options.expectIdentity) {
    source.destroy();
    throw new StorageError(`${location.display} cannot be told to be the archive an earlier piece read: the restore cannot go on from it`, 'CHANGED');
  }
  const limit = typeof options.maxArchiveBytes === 'function' ? options.maxArchiveBytes(archiveTotalBytes) : options.maxArchiveBytes;
  if (limit !== undefined && archiveTotalBytes !== undefined && archiveTotalBytes > limit.bytes) {
    source.destroy();
    throw new ArchiveLimitError(`${location.display} is ${formatBytes(archiveTotalBytes)}, more than the ${formatBytes(limit.bytes)} ${limit.reason}`);
  }
  /** The entries to create the footer counts, where the entry check read it (a first piece; a later one whose checkpoint had none). */
  const chunks = (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  /** The first chunks, read ahead for an age header (the entry check of an encrypted archive): read again from here. */
  const peeked: Uint8Array[] = [];
  const footerEntries =
    options.maxArchiveEntries === undefined && options.onFooterEntries === undefined
      ? undefined
      : await refuseTooManyEntries(location, source, options.maxArchiveEntries === undefined ? undefined : () => options.maxArchiveEntries!(archiveTotalBytes), signal, {
          chunks,
          peeked,
          identities: options.identities,
          archiveBytes: archiveTotalBytes,
        });
  if (options.onFooterEntries !== undefined) {
    try {
      options.onFooterEntries(footerEntries);
    } catch (error) {
      source.destroy();
      throw error;
    }
  }
  let archiveBytes = 0;
  let marker: ArchiveMarker | undefined;
  let footer: ArchiveFooter | undefined;
  let encrypted = false;
  let firstBytes = false;
  async function* counted(): AsyncGenerator<Uint8Array> {
    try {
      for (;;) {
        const chunk = peeked.shift() ?? (await chunks.next()).value;
        if (chunk === undefined) return;
        // Said before the deadline is checked: a piece stopped from here on was reading the archive.
        if (!firstBytes) {
          firstBytes = true;
          options.onFirstBytes?.();
        }
        throwIfAborted(signal);
        archiveBytes += chunk.length;
        yield chunk;
      }
    } finally {
      await chunks.return?.();
    }
  }
  // An age file without identities is refused here with a hint (also one that --pipe left
  // encrypted): the zstd decoder would call it "not a zstd stream".
  /** The archive's bytes after decryption, read so far; and where its footer's frame ends. */
  let plaintextBytes = 0;
  let footerEnd: number | undefined;
  async function* countedPlaintext(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    for await (const chunk of chunks) {
      plaintextBytes += chunk.length;
      yield chunk;
    }
  }
  const plaintext = plaintextArchive(counted(), {
    display: location.display,
    ...(options.identities !== undefined && { identities: options.identities }),
    ...(options.ageCli !== undefined && { ageCli: options.ageCli }),
    onFormat: (isEncrypted) => (encrypted = isEncrypted),
  });
  const frames = decompressFrames(countedPlaintext(plaintext), {
    signal,
    skippableNibbles: [ARCHIVE_MARKER_NIBBLE, ARCHIVE_FOOTER_NIBBLE],
    onSkippableFrame: (payload, nibble, offset) => {
      if (nibble === ARCHIVE_MARKER_NIBBLE) {
        if (marker !== undefined) throw new CorruptArchiveError('the archive has two archive markers');
        marker = parseArchiveMarker(payload);
        if (marker !== undefined) assertMarkerReadable(marker);
        return;
      }
      const parsed = parseArchiveFooter(payload);
      if (parsed === undefined) return;
      if (footer !== undefined) throw new CorruptArchiveError('the archive has two archive footers');
      // The length a listing (and --skip-existing) checks the stored archive against: a verified archive must pass it.
      if (parsed.bytesBefore !== undefined && parsed.bytesBefore !== offset) {
        throw new CorruptArchiveError(`the archive footer says ${groupThousands(parsed.bytesBefore)} bytes come before it, but ${groupThousands(offset)} do (bytes cut or added, or the footer was changed)`);
      }
      footer = parsed;
      footerEnd = offset + SKIPPABLE_HEADER_BYTES + payload.length;
    },
  });
  async function* decoded(): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of frames) {
        throwIfAborted(signal);
        // The footer is written last: anything decoded after it was appended to the archive.
        if (footer !== undefined) throw new CorruptArchiveError('the archive continues after its footer (two archives joined?)');
        yield chunk;
      }
    } finally {
      await frames.return(undefined);
    }
  }

  const extracted = await extractTenantArchive(decoded(), {
    limits: options.limits,
    signal,
    prepare: options.prepare,
    ...(options.fileAccess !== undefined && { fileAccess: options.fileAccess }),
    ...(options.workerThresholdBytes !== undefined && { workerThresholdBytes: options.workerThresholdBytes }),
    ...(options.discard !== undefined && { discard: options.discard }),
    ...(options.owner !== undefined && { owner: options.owner }),
    ...(options.pieces !== undefined && { pieces: options.pieces }),
    requireManifest: () => marker !== undefined || footer !== undefined,
    onProgress: (progress) => options.onProgress?.({ ...progress, archiveBytes, ...(archiveTotalBytes !== undefined && { archiveTotalBytes }) }),
  }).catch((error: unknown) => {
    // A piece stopped for the next: how far into the stored archive it read goes into the
    // chain's checkpoint (the next piece judges the chain's pace by it). Counted as the stored
    // bytes came in, read ahead of the entry it stopped at: the share is never under the truth.
    if (!(error instanceof ExtractionSuspended) || archiveTotalBytes === undefined || archiveTotalBytes <= 0) throw error;
    throw new ExtractionSuspended(error.written, error.copiedLinks, error.lastWritten, { bytes: Math.min(archiveBytes, archiveTotalBytes), total: archiveTotalBytes, ...(footerEntries !== undefined && { entries: footerEntries }) });
  });
  throwIfAborted(signal);
  assertEndsAgree(extracted, marker, footer);
  await assertRecordedDigest(location, extracted, signal);
  // Frames after the footer that decode to nothing (another tool's skippable frame, an empty frame): a listing finds no footer at the end.
  const bytesAfterFooter = footerEnd === undefined ? 0 : plaintextBytes - footerEnd;
  return { extracted, marker, footer, archiveBytes, encrypted, ...(bytesAfterFooter > 0 && { bytesAfterFooter }) };
}

/**
 * The manifest the bytes carry must be the one recorded beside the object (its S3 tag), where
 * one can be read: a store or caching proxy that served another object's bytes for this one
 * (the tenant's backup of another day, or another tenant's) had them restored, exit 0, under
 * this archive's name. Refused before anything is moved in; verify fails alike.
 */
async function assertRecordedDigest(location: ArchiveLocation, extracted: ExtractResult, signal: AbortSignal | undefined): Promise<void> {
  if (location.recordedDigest === undefined) return;
  const carried = extracted.manifestSha256;
  const recorded = await location.recordedDigest({ ...(signal !== undefined && { signal }), ...(carried !== undefined && { expected: carried }) });
  throwIfAborted(signal);
  if (recorded === undefined || recorded === carried) return;
  const { manifest } = extracted;
  const tagged = `sha256 ${recorded.slice(0, 12)}…`;
  const served =
    manifest === undefined || carried === undefined
      ? `an archive without a manifest, where the object's tag records one (${tagged})`
      : `an archive whose manifest (sha256 ${carried.slice(0, 12)}…, tenant ${quotedPath(manifest.tenant)}, made ${new Date(manifest.createdAt).toISOString()}) is not the one the object's tag records (${tagged})`;
  throw new CorruptArchiveError(
    `${location.display}: the store served ${served}: ` +
      "another object's bytes? (a store or caching proxy that mixes up its objects)",
  );
}

/** How the entry check reads an encrypted archive's footer: the stored bytes' first chunks taken from `chunks` into `peeked` (read again from there). */
export interface AgeFooterRead {
  readonly chunks: AsyncIterator<Uint8Array>;
  readonly peeked: Uint8Array[];
  readonly identities: readonly AgeIdentity[] | undefined;
  readonly archiveBytes: number | undefined;
}

/**
 * The most of the stored archive's start read ahead for its age header and payload nonce: as
 * long a header as the decryption that follows reads (DEFAULT_HEADER_LIMITS, 1 MiB). An X25519
 * stanza takes ~98 bytes, so 3,000 recipients make a ~290 KiB header: with 64 KiB read ahead,
 * such an archive got no up-front count and was judged by its bytes alone. What is read ahead
 * is handed on to the read (`peeked`), never read twice.
 */
const AGE_HEADER_PEEK_BYTES = DEFAULT_HEADER_LIMITS.maxHeaderBytes + PAYLOAD_NONCE_BYTES;

/**
 * An age-encrypted archive's footer, read up front: the header from the stored bytes' first
 * chunks (kept in `peeked`), the file key unwrapped with the identities, then the last two
 * STREAM chunks by one ranged read of the end, each opened (authenticated) under its index.
 * The footer is in the last chunk or, when that chunk is short, across the last two. Anything
 * that is not such a file (plain, armored, another key, damaged) gives undefined: the read
 * that follows says what it is; only the store's own errors are thrown.
 */
export async function encryptedArchiveFooter(location: ArchiveLocation, read: AgeFooterRead, signal: AbortSignal | undefined): Promise<ArchiveFooter | undefined> {
  const { chunks, peeked, identities, archiveBytes } = read;
  if (identities === undefined || identities.length === 0 || archiveBytes === undefined || location.readTail === undefined) return undefined;
  const reader = new AgeHeaderReader(DEFAULT_HEADER_LIMITS);
  let header: AgeHeader | undefined;
  let peekedBytes = 0;
  for (let rest: Uint8Array = new Uint8Array(0); header === undefined || rest.length < PAYLOAD_NONCE_BYTES; ) {
    if (peekedBytes >= AGE_HEADER_PEEK_BYTES) return undefined;
    // The store's own errors (and an abort) are thrown as the read would have thrown them.
    const next = await chunks.next();
    if (next.done === true) return undefined;
    peeked.push(next.value);
    peekedBytes += next.value.length;
    if (header !== undefined) {
      rest = Buffer.concat([rest, next.value]);
      continue;
    }
    let done: HeaderDone | undefined;
    try {
      done = reader.push(next.value);
    } catch {
      // Not an age file (plain, armored) or a damaged one: judged as before; the read says what it is.
      return undefined;
    }
    if (done !== undefined) ({ header, rest } = done);
  }
  const start = Buffer.concat(peeked);
  const nonce = start.subarray(header.length, header.length + PAYLOAD_NONCE_BYTES);
  const payloadStart = header.length + PAYLOAD_NONCE_BYTES;
  const sealedBytes = archiveBytes - payloadStart;
  if (sealedBytes <= 0) return undefined;
  const lastIndex = Math.ceil(sealedBytes / SEALED_CHUNK_BYTES) - 1;
  const lastStart = payloadStart + lastIndex * SEALED_CHUNK_BYTES;
  const tailStart = lastIndex > 0 ? lastStart - SEALED_CHUNK_BYTES : lastStart;
  let key;
  try {
    const fileKey = unlockHeader(header, identities);
    key = derivePayloadKey(fileKey, nonce);
    fileKey.fill(0);
  } catch {
    // Another key, a damaged header: the read says so.
    return undefined;
  }
  const tail = await location.readTail(archiveBytes - tailStart, { ...(signal !== undefined && { signal }) });
  if (tail === undefined || tail.length !== archiveBytes - tailStart) return undefined;
  const last = openSealedChunk(key, lastIndex, true, tail.subarray(lastStart - tailStart));
  const before = lastIndex > 0 ? openSealedChunk(key, lastIndex - 1, false, tail.subarray(0, lastStart - tailStart)) : Buffer.alloc(0);
  if (last === undefined || before === undefined) return undefined;
  return findArchiveFooter(Buffer.concat([before, last]));
}

/** An archive whose footer counts more entries than `limit` (asked now; none: only read) is refused; `source` is destroyed then. Returns the footer's count, where it has one. */
async function refuseTooManyEntries(
  location: ArchiveLocation,
  source: Readable,
  limit: (() => ArchiveEntryLimit) | undefined,
  signal: AbortSignal | undefined,
  encrypted: AgeFooterRead,
): Promise<number | undefined> {
  if (location.readTail === undefined) return undefined;
  let footer: ArchiveFooter | undefined;
  try {
    footer = await encryptedArchiveFooter(location, encrypted, signal);
    if (footer === undefined) {
      const tail = await location.readTail(SKIPPABLE_HEADER_BYTES + MAX_FOOTER_BYTES, { ...(signal !== undefined && { signal }) });
      // A store that cannot serve the end (it ignores byte ranges, tells no size) gets the restore as before: stopped at the deadline if it must be.
      footer = tail === undefined ? undefined : findArchiveFooter(tail);
    }
  } catch (error) {
    source.destroy();
    throw error;
  }
  if (limit === undefined || footer?.entries === undefined) return footer?.entries;
  const { entries, reason } = limit();
  if (footer.entries <= entries) return footer.entries;
  source.destroy();
  throw new ArchiveLimitError(`${location.display} holds ${plural(footer.entries, 'entry', 'entries')} to restore (its footer says), more than the ${groupThousands(entries)} ${reason}`);
}

/** What the marker and footer say must be what the archive holds. */
function assertEndsAgree(extracted: ExtractResult, marker: ArchiveMarker | undefined, footer: ArchiveFooter | undefined): void {
  if (marker !== undefined && marker.tenant !== extracted.tenant) {
    throw new CorruptArchiveError(`the archive is marked as tenant ${quotedPath(marker.tenant)} but its entries are for "${extracted.tenant}"`);
  }
  const manifest = extracted.manifest;
  if (marker?.createdAt !== undefined && manifest !== undefined && Date.parse(marker.createdAt) !== Date.parse(manifest.createdAt)) {
    throw new CorruptArchiveError(`the archive marker says it was created ${marker.createdAt}, its manifest ${manifest.createdAt}`);
  }
  if (footer === undefined) return;
  if (footer.tenant !== extracted.tenant) {
    throw new CorruptArchiveError(`the archive footer names tenant ${quotedPath(footer.tenant)} but its entries are for "${extracted.tenant}"`);
  }
  if (extracted.manifestSha256 !== footer.manifestSha256) {
    throw new CorruptArchiveError('the archive footer does not match its manifest (the manifest or the footer was changed)');
  }
  if (footer.entries !== undefined && manifest !== undefined && footer.entries !== entriesToCreate(manifest.totals)) {
    throw new CorruptArchiveError(`the archive footer counts ${plural(footer.entries, 'entry', 'entries')}, its manifest ${groupThousands(entriesToCreate(manifest.totals))} (the footer was changed)`);
  }
}
