// Our archive's bytes, written in bounded memory:
//
//   [skippable zstd frame: archive marker] [zstd frame] [zstd frame] … [skippable frame: footer]
//
// The zstd frames, decoded and concatenated, are one plain POSIX tar stream (pax headers
// where names need them) whose entries all live under `tenants/<name>/`, ending with the
// manifest. `zstd -dc | tar -x` restores it; the marker tells our restore that the archive
// is ours, so a missing manifest means damage rather than a foreign archive, and carries the
// creation time and tool version; the footer carries the manifest's SHA-256, so a listing
// reads both ends of a file instead of all of it (`zstd -d` skips both). File content is
// read straight into the frame buffers. What goes in, and which version of a live file, is
// the backup's business (backup/tenant-archive.ts, backup/live-files.ts).
//
// An archive can be written in pieces (a backup that continues in another invocation):
// `suspend` ends a piece between two entries, handing back the unfinished frame's input, and
// a writer created with `resume` writes the next piece, without the marker, from there on.
// The pieces, concatenated, are the bytes one writer would have written.

import crypto, { createHash } from 'node:crypto';

import { entryNameFor } from '../tenant/names.js';
import {
  assertManifestRestorable,
  entriesToCreate,
  ARCHIVE_FOOTER_NIBBLE,
  ARCHIVE_MARKER_NIBBLE,
  MANIFEST_FILE_NAME,
  MANIFEST_FORMAT,
  MANIFEST_FORMAT_VERSION,
  serializeManifest,
  type ArchiveFooter,
  type ArchiveMarker,
  type Manifest,
} from './manifest.js';
import { TOOL_VERSION } from '../version.js';
import { BLOCK_SIZE, encodeHeader, END_OF_ARCHIVE, paddingAfter, writeFileHeader, type EntryToWrite } from './tar-format.js';
import { copyBytes, FrameWriter, type CompressOptions } from './zstd-encoder.js';
import { skippableFrame } from './zstd-format.js';

/** Zeros hashed at a time for a file that came up short. */
const STREAM_CHUNK = 1024 * 1024;

/** Reads `length` bytes of a file at `position` into `target` at `offset`; returns how many it read (0 at its end). */
export type ReadAt = (target: Buffer, offset: number, length: number, position: number) => number | Promise<number>;

/** An entry's place and attributes: its path inside the tenant, its mode, its modification time (ms). */
export interface EntryAttributes {
  readonly relPath: string;
  readonly mode: number;
  readonly mtimeMs: number;
}

/** Where a suspended writer stopped: the unfinished frame's input, and the content bytes taken in so far. */
export interface SuspendedWriter {
  readonly pendingFrame: Buffer;
  readonly contentBytes: number;
  /** The archive's bytes the earlier pieces wrote, for the footer; unknown (none there) from a version before it. */
  readonly archiveBytes?: number;
}

export class ArchiveWriter {
  private readonly out: FrameWriter;
  private manifestSha256: string | undefined;
  /** Once finished: the least --max-entries whose restore reads the manifest, undefined when the default does. */
  manifestEntriesToRead: number | undefined;
  /** The entries the manifest counts, for the footer (set by `finish`). */
  private entries: number | undefined;
  /** Where one-block headers are encoded (a header is copied into the frames before the next is encoded). */
  private readonly headerBlock = Buffer.alloc(BLOCK_SIZE);
  private contentBytes = 0;
  /** The archive's bytes handed out so far, earlier pieces' included; undefined when an earlier piece's are unknown. */
  private archiveBytes: number | undefined;
  /** What entry names start with: `entryNameFor(tenant, relPath)` is this and `relPath`. */
  private readonly entryPrefix: string;

  /** `createdAt`: the manifest's creation time, repeated in the marker. `resume`: what `suspend` returned, to write the next piece. */
  constructor(
    private readonly tenant: string,
    compression?: CompressOptions,
    private readonly createdAt?: Date,
    private readonly resume?: SuspendedWriter,
  ) {
    this.out = new FrameWriter(compression, resume?.pendingFrame);
    this.contentBytes = resume?.contentBytes ?? 0;
    this.archiveBytes = resume === undefined ? 0 : resume.archiveBytes;
    this.entryPrefix = `${entryNameFor(tenant, '')}/`;
  }

  /** The archive's bytes as they are ready: the marker, the compressed frames, the footer; consume once. */
  async *chunks(): AsyncGenerator<Buffer> {
    const marker: ArchiveMarker = {
      format: MANIFEST_FORMAT,
      formatVersion: MANIFEST_FORMAT_VERSION,
      tenant: this.tenant,
      ...(this.createdAt !== undefined && { createdAt: this.createdAt.toISOString() }),
      toolVersion: TOOL_VERSION,
    };
    if (this.resume === undefined) yield this.counted(skippableFrame(Buffer.from(JSON.stringify(marker)), ARCHIVE_MARKER_NIBBLE));
    for await (const frame of this.out.frames()) yield this.counted(frame);
    // The frames end only after `finish` closed them, which set the digest.
    if (this.manifestSha256 !== undefined) {
      const footer: ArchiveFooter = {
        format: MANIFEST_FORMAT,
        tenant: this.tenant,
        manifestSha256: this.manifestSha256,
        ...(this.entries !== undefined && { entries: this.entries }),
        ...(this.archiveBytes !== undefined && { bytesBefore: this.archiveBytes }),
      };
      yield skippableFrame(Buffer.from(JSON.stringify(footer)), ARCHIVE_FOOTER_NIBBLE);
    }
  }

  /**
   * The archive's bytes `chunks()` has handed out, earlier pieces' included (the footer's
   * excepted): where a suspended piece ends, once its chunks are all read. Undefined when an
   * earlier piece's are unknown.
   */
  get bytesWritten(): number | undefined {
    return this.archiveBytes;
  }

  private counted(chunk: Buffer): Buffer {
    if (this.archiveBytes !== undefined) this.archiveBytes += chunk.length;
    return chunk;
  }

  /** Bytes of file content taken in so far, a file being streamed included: for progress. */
  get contentRead(): number {
    return this.contentBytes;
  }

  /** Fails both sides: whoever writes entries, and the reader of `chunks()`. The first reason wins. */
  abort(error: unknown): void {
    this.out.abort(error);
  }

  /**
   * Aborted, with the first reason, once the writer fails or is aborted (the backup's signal,
   * the store stopped reading): for work that prepares an entry and runs long before writing
   * it (a large file copied to a spool first), which would otherwise only notice at its write.
   */
  get stopped(): AbortSignal {
    return this.out.signal;
  }

  directory(entry: EntryAttributes): Promise<void> | undefined {
    return this.add({ name: entryNameFor(this.tenant, entry.relPath), type: 'directory', mode: entry.mode, mtime: tarMtime(entry.mtimeMs) });
  }

  symlink(entry: EntryAttributes & { readonly target: string }): Promise<void> | undefined {
    return this.add({ name: entryNameFor(this.tenant, entry.relPath), type: 'symlink', linkname: entry.target, mode: entry.mode, mtime: tarMtime(entry.mtimeMs) });
  }

  /**
   * Another name of a regular file archived earlier in this archive (`target`, relative to
   * the tenant like `relPath`): a tar hard link, which carries no content.
   */
  hardlink(entry: EntryAttributes & { readonly target: string }): Promise<void> | undefined {
    return this.add({ name: entryNameFor(this.tenant, entry.relPath), type: 'hardlink', linkname: entryNameFor(this.tenant, entry.target), mode: entry.mode, mtime: tarMtime(entry.mtimeMs) });
  }

  /** A regular file whose content is in memory; a promise only if the writer has to wait for room (await it before the next call). */
  file(entry: EntryAttributes, content: Buffer): Promise<void> | undefined {
    const size = content.length;
    this.contentBytes += size;
    const mtime = tarMtime(entry.mtimeMs);
    // Most small files: header, content and padding straight into the frame being filled.
    const padded = size + paddingAfter(size);
    const frame = this.out.spaceFor(BLOCK_SIZE + padded);
    if (frame !== undefined) {
      const at = this.out.filledTo;
      if (writeFileHeader(frame, at, this.entryPrefix, entry.relPath, entry.mode, mtime, size)) {
        copyBytes(frame, at + BLOCK_SIZE, content);
        fillZeros(frame, at + BLOCK_SIZE + size, at + BLOCK_SIZE + padded);
        this.out.advance(BLOCK_SIZE + padded);
        return undefined;
      }
    }
    return this.add({ name: entryNameFor(this.tenant, entry.relPath), type: 'file', mode: entry.mode, mtime, size }, content);
  }

  /**
   * Streams `size` bytes of a file into one entry, read straight into the archive's frame
   * buffers, starting with `head` (the first bytes, already read) if given. A file that comes
   * up short is padded with zeros (the header has promised the size), as GNU tar does.
   */
  async streamFile(entry: EntryAttributes, size: number, readAt: ReadAt, head?: Buffer): Promise<{ sha256: string; shortBy: number }> {
    const { out } = this;
    const hash = createHash('sha256');
    await out.write(encodeHeader({ name: entryNameFor(this.tenant, entry.relPath), mode: entry.mode, mtime: tarMtime(entry.mtimeMs), type: 'file', size }));
    let position = 0;
    if (head !== undefined && head.length > 0) {
      const first = head.subarray(0, size);
      hash.update(first);
      await out.write(first);
      position = first.length;
      this.contentBytes += first.length;
    }
    const hashed = (target: Buffer, offset: number, bytesRead: number): number => {
      hash.update(target.subarray(offset, offset + bytesRead));
      position += bytesRead;
      this.contentBytes += bytesRead;
      return bytesRead;
    };
    const read = (target: Buffer, offset: number, length: number): number | Promise<number> => {
      const got = readAt(target, offset, length, position);
      return typeof got === 'number' ? hashed(target, offset, got) : got.then((bytesRead) => hashed(target, offset, bytesRead));
    };
    const streamed = position + (await out.readInto(size - position, read));
    const shortBy = size - streamed;
    if (shortBy > 0) {
      // A chunk hashed, then written, at a time: all hashed at once (4 GiB of a file cut to
      // nothing while read) held the thread 5 s, a deadline's timer and the abort with it.
      const zeros = Buffer.alloc(Math.min(shortBy, STREAM_CHUNK));
      for (let left = shortBy; left > 0; left -= zeros.length) {
        const chunk = left >= zeros.length ? zeros : zeros.subarray(0, left);
        hash.update(chunk);
        await out.zeros(chunk.length);
      }
    }
    await out.zeros(paddingAfter(size));
    return { sha256: hash.digest('hex'), shortBy };
  }

  /** Ends the archive: the manifest as its last entry, then the end-of-archive blocks. Returns the manifest's SHA-256. */
  async finish(manifest: Manifest): Promise<string> {
    const manifestBytes = serializeManifest(manifest);
    this.manifestEntriesToRead = assertManifestRestorable(manifestBytes, manifest.directories.length);
    await this.add({ name: entryNameFor(this.tenant, MANIFEST_FILE_NAME), type: 'file', mode: 0o600, mtime: tarMtime(Date.parse(manifest.createdAt)), size: manifestBytes.length }, manifestBytes);
    await this.out.write(END_OF_ARCHIVE);
    this.manifestSha256 = sha256(manifestBytes);
    this.entries = entriesToCreate(manifest.totals);
    await this.out.close();
    return this.manifestSha256;
  }

  /** Ends this piece of the archive between two entries (see the module comment); `chunks()` ends after the full frames. */
  suspend(): SuspendedWriter {
    return { pendingFrame: this.out.suspend(), contentBytes: this.contentBytes };
  }

  /**
   * One entry: its header (encoded into a reused block: entries are added one after another)
   * and its content. Returns a promise only if the frames are full and it has to wait.
   */
  private add(entry: EntryToWrite, content?: Buffer): Promise<void> | undefined {
    const header = this.out.write(encodeHeader(entry, this.headerBlock));
    if (header !== undefined) return header.then(() => this.addContent(content));
    return this.addContent(content);
  }

  private addContent(content: Buffer | undefined): Promise<void> | undefined {
    if (content === undefined || content.length === 0) return undefined;
    const { out } = this;
    const written = out.write(content);
    if (written !== undefined) return written.then(() => out.zeros(paddingAfter(content.length)));
    return out.zeros(paddingAfter(content.length));
  }
}

/** Zeros bytes `start` to `end` (TypedArray's fill: none of Buffer.fill's argument handling). */
function fillZeros(target: Buffer, start: number, end: number): void {
  Uint8Array.prototype.fill.call(target, 0, start, end);
}

/**
 * A tar header's mtime: whole seconds, truncated as GNU tar does. Not `stat.mtime`: Node
 * rounds that Date to the nearest millisecond, so a file modified in the last half
 * millisecond of a second would be archived a second late.
 */
function tarMtime(mtimeMs: number): number {
  return Math.floor(mtimeMs / 1000);
}

export function sha256(bytes: Uint8Array): string {
  return oneShotHash !== undefined ? oneShotHash('sha256', bytes, 'hex') : createHash('sha256').update(bytes).digest('hex');
}

/** crypto.hash (Node 20.12+): one call instead of a Hash object per file. */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: Uint8Array, encoding: 'hex') => string }).hash;
