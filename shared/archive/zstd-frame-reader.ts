// The synchronous half of the zstd decoder (zstd-decoder.ts): walks frame and block headers
// (RFC 8878) over the bytes received so far and says what to do with each frame, enforcing
// the limits a hostile stream must not pass:
// - a frame is handed over to be decoded whole only when it is complete and both its
//   compressed size and its decoded size (bounded by its block headers, and by the content
//   size it declares, which the codecs hold it to) are at most `maxNativeFrameBytes`;
// - a larger frame (or a decompression bomb) is handed to the codec's streaming decoder in
//   slices of at most 64 blocks or 1 MiB of input, fewer when its window is large (the
//   pure-JS decoder of Node 20 moves its whole window once per block), so at most 8 MiB of
//   output exists per step and each step takes milliseconds; its window may be at most
//   8 MiB, which every zstd level from 1 to 19 stays within (`--ultra` levels and `--long`
//   need more);
// - windows above 128 MiB (zstd's own default decoder limit) and skippable-frame payloads
//   above `maxSkippableBytes` (when they are asked for at all) are refused with
//   ArchiveLimitError;
// - anything malformed, cut short, failing its content checksum, or not matching its
//   declared content size is a CorruptArchiveError (the size of a streamed frame is checked
//   by its caller, zstd-decoder.ts, which sees what it decoded to).

import { ArchiveLimitError, CorruptArchiveError } from '../errors.js';
import { ByteQueue } from './byte-queue.js';
import { NO_ARCHIVE_HINT, OTHER_FORMAT_PROBE_BYTES, otherFormatHint } from './other-format.js';
import {
  BLOCK_COMPRESSED,
  BLOCK_HEADER_BYTES,
  BLOCK_MAXIMUM_SIZE,
  BLOCK_RESERVED,
  BLOCK_RLE,
  CHECKSUM_BYTES,
  MiB,
  SKIPPABLE_HEADER_BYTES,
  SKIPPABLE_MAGIC_BASE,
  ZSTD_MAGIC,
} from './zstd-format.js';

const MAX_WINDOW_BYTES = 128 * MiB;
/**
 * Largest window of a streamed frame: the decoder allocates all of it for each frame (the
 * pure-JS one anew, the old ones waiting for the garbage collector: 24 frames with 32 MiB
 * windows took a restore to 202 MiB of peak RSS). zstd levels 1-19 use at most 8 MiB.
 */
const MAX_STREAMING_WINDOW_BYTES = 8 * MiB;
/** What `skippable` answers for a frame passed over unread. */
const SKIPPED = Symbol('skipped');
const STREAM_SLICE_BLOCKS = 64;
const STREAM_SLICE_BYTES = 1 * MiB;
/** Window bytes the pure-JS decoder may move per slice (it shifts its window once per block). */
const STREAM_SLICE_WINDOW_MOVES = 256 * MiB;

export interface WholeFrame {
  readonly bytes: Buffer;
  readonly offset: number;
  readonly contentSize: number | undefined;
  /** Most bytes it can decode to. */
  readonly decodedBound: number;
}

export type ReaderEvent =
  /** A whole frame to decode at once. */
  | ({ kind: 'frame' } & WholeFrame)
  /** `offset`: where the frame (its header) starts in the stream. */
  | { kind: 'skippable'; payload: Buffer; magicNibble: number; offset: number }
  /** The current frame is too large to decode whole: its bytes follow as slices. */
  | ({ kind: 'streaming' } & StreamingFrame)
  /** The next bytes of the streamed frame, starting at stream offset `from`; `final` ends the frame. */
  | { kind: 'slice'; bytes: Buffer; from: number; final: boolean }
  /** A whole frame that decodes to nothing, checked here: nothing to decode or yield. */
  | typeof EMPTY_FRAME;

/**
 * One event for every empty frame, which needs no codec: a frame costs ~40 µs there, and a
 * million empty frames (9 MB) took 36-56 s to restore.
 */
export const EMPTY_FRAME = Object.freeze({ kind: 'empty' as const });
/** The content checksum of no content: the low 32 bits of XXH64 of zero bytes, seed 0. */
const EMPTY_CONTENT_CHECKSUM = 0x51d8e999;

/** What the decoder of a streamed frame needs from its header. */
export interface StreamingFrame {
  readonly offset: number;
  readonly contentSize: number | undefined;
  readonly hasChecksum: boolean;
  readonly windowSize: number;
}

interface FrameHeader {
  readonly offset: number;
  readonly headerBytes: number;
  readonly contentSize: number | undefined;
  readonly windowSize: number;
  readonly hasChecksum: boolean;
}

interface FrameScan {
  readonly header: FrameHeader;
  /** Stream offset of the next block header to read. */
  scan: number;
  /** Upper bound of the decoded size of the blocks read so far. */
  decodedBound: number;
  /** Stream offset just past the frame, once its last block header has been read. */
  end: number | undefined;
  /** Set once the frame is streamed: blocks per slice, fewer for a large window. */
  sliceBlocks: number | undefined;
}

/**
 * Walks frame and block headers over a byte queue and turns the input into events. Offsets are positions in the whole input stream.
 */
export class FrameReader {
  private readonly queue = new ByteQueue();
  private frame: FrameScan | undefined;
  private skipRemaining = 0;

  constructor(
    private readonly maxNativeFrameBytes: number,
    private readonly maxSkippableBytes: number,
    private readonly collectSkippable: (magicNibble: number) => boolean,
    /** Where a whole frame is copied to. */
    private readonly allocateFrame?: (bytes: number) => Buffer,
  ) {}

  push(chunk: Buffer): void {
    this.queue.push(chunk);
  }

  /**
   * Frees the input consumed so far, if it was marked releasable (released-buffers.ts): call
   * once every event returned so far has been handled (a slice is a view of the input; whole
   * frames and skippable payloads are copies).
   */
  releaseConsumed(): void {
    this.queue.releaseConsumed();
  }

  /** The next event the bytes received so far allow, or undefined when more input is needed. */
  next(): ReaderEvent | undefined {
    const queue = this.queue;
    // A loop, not a call per frame: a chunk may hold a million 8-byte skippable frames.
    while (this.frame === undefined) {
      if (this.skipRemaining > 0) {
        const skipped = Math.min(this.skipRemaining, queue.length);
        queue.discard(queue.start + skipped);
        this.skipRemaining -= skipped;
        if (this.skipRemaining > 0) return undefined;
      }
      if (queue.length < 4) return undefined;
      const magic = queue.uint32At(queue.start);
      if ((magic & 0xfffffff0) !== SKIPPABLE_MAGIC_BASE) break;
      const event = this.skippable(magic & 0xf);
      if (event !== SKIPPED) return event;
    }
    if (this.frame === undefined) {
      const header = this.readFrameHeader();
      if (header === undefined) return undefined;
      this.frame = {
        header,
        scan: header.offset + header.headerBytes,
        decodedBound: 0,
        end: undefined,
        sliceBlocks: undefined,
      };
      if (header.contentSize !== undefined && header.contentSize > this.maxNativeFrameBytes) {
        return this.startStreaming(this.frame);
      }
    }
    return this.frame.sliceBlocks === undefined ? this.nextNative(this.frame) : this.nextStreaming(this.frame);
  }

  /** Throws unless the input ended on a frame boundary. */
  end(): void {
    if (this.frame !== undefined || this.skipRemaining > 0 || this.queue.length > 0) {
      throw new CorruptArchiveError('archive is truncated: the zstd stream ends inside a frame');
    }
  }

  /** The frame's event, undefined when more input is needed, or SKIPPED when it is passed over unread. */
  private skippable(magicNibble: number): ReaderEvent | typeof SKIPPED | undefined {
    const queue = this.queue;
    if (queue.length < SKIPPABLE_HEADER_BYTES) return undefined;
    const offset = queue.start;
    const size = queue.uint32At(offset + 4);
    if (!this.collectSkippable(magicNibble)) {
      queue.discard(offset + SKIPPABLE_HEADER_BYTES);
      this.skipRemaining = size;
      return SKIPPED;
    }
    if (size > this.maxSkippableBytes) {
      throw new ArchiveLimitError(
        `skippable frame at byte ${offset} holds ${size} bytes, more than the ` +
          `${this.maxSkippableBytes}-byte limit`,
      );
    }
    if (queue.length < SKIPPABLE_HEADER_BYTES + size) return undefined;
    // A copy, like whole frames: it is read after later input has been consumed.
    const payload = queue.take(offset + SKIPPABLE_HEADER_BYTES + size, Buffer.allocUnsafe, true).subarray(SKIPPABLE_HEADER_BYTES);
    return { kind: 'skippable', payload, magicNibble, offset };
  }

  /** The stream's first bytes, as many of OTHER_FORMAT_PROBE_BYTES as have arrived (the queue starts at 0). */
  private firstBytes(): Buffer {
    const bytes = Buffer.alloc(Math.min(this.queue.length, OTHER_FORMAT_PROBE_BYTES));
    for (let i = 0; i < bytes.length; i++) bytes[i] = this.queue.byteAt(i);
    return bytes;
  }

  /** Parses the frame header at the queue's start (RFC 8878 §3.1.1.1), or undefined if incomplete. */
  private readFrameHeader(): FrameHeader | undefined {
    const queue = this.queue;
    const offset = queue.start;
    if (queue.uint32At(offset) !== ZSTD_MAGIC) {
      const hint = offset === 0 ? (otherFormatHint(this.firstBytes()) ?? `bad frame magic at byte 0: ${NO_ARCHIVE_HINT}`) : `bad frame magic at byte ${offset}`;
      throw new CorruptArchiveError(`not a zstd stream: ${hint}`);
    }
    if (queue.length < 5) return undefined;
    const descriptor = queue.byteAt(offset + 4);
    if (descriptor & 0x08) {
      throw new CorruptArchiveError(`not a zstd stream: reserved bit set in the frame header at byte ${offset}`);
    }
    const contentSizeFlag = descriptor >> 6;
    const singleSegment = (descriptor & 0x20) !== 0;
    const dictionaryBytes = [0, 1, 2, 4][descriptor & 0x03]!;
    const contentSizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][contentSizeFlag]!;
    const windowBytes = singleSegment ? 0 : 1;
    const headerBytes = 5 + windowBytes + dictionaryBytes + contentSizeBytes;
    if (queue.length < headerBytes) return undefined;

    let at = offset + 5 + windowBytes;
    const dictionaryId = queue.uintAt(at, dictionaryBytes);
    if (dictionaryId !== 0) {
      throw new CorruptArchiveError(
        `zstd frame at byte ${offset} needs dictionary ${dictionaryId}; archives never use one: ` +
          'decompress it with zstd -dc -D DICTIONARY FILE and compress that again without one (| zstd -o NEW.tar.zst)',
      );
    }
    at += dictionaryBytes;
    let contentSize: number | undefined;
    if (contentSizeBytes > 0) {
      contentSize = queue.uintAt(at, contentSizeBytes) + (contentSizeBytes === 2 ? 256 : 0);
    }
    let windowSize: number;
    if (singleSegment) {
      windowSize = contentSize!;
    } else {
      const windowDescriptor = queue.byteAt(offset + 5);
      const windowBase = 2 ** (10 + (windowDescriptor >> 3));
      windowSize = windowBase + (windowBase / 8) * (windowDescriptor & 0x07);
    }
    if (windowSize > MAX_WINDOW_BYTES) {
      throw new ArchiveLimitError(
        `zstd frame at byte ${offset} needs a ${Math.ceil(windowSize / MiB)} MiB window, ` +
          `more than the ${MAX_WINDOW_BYTES / MiB} MiB limit: recompress it with zstd -dc --long=31 FILE | zstd -o NEW.tar.zst`,
      );
    }
    return { offset, headerBytes, contentSize, windowSize, hasChecksum: (descriptor & 0x04) !== 0 };
  }

  /** Reads the block header at `frame.scan` and steps over its block, if all of it has arrived. */
  private readBlock(frame: FrameScan): boolean {
    const queue = this.queue;
    const at = frame.scan;
    if (queue.end < at + BLOCK_HEADER_BYTES) return false;
    const blockHeader = queue.uintAt(at, BLOCK_HEADER_BYTES);
    const blockType = (blockHeader >> 1) & 0x03;
    const blockSize = blockHeader >>> 3;
    if (blockType === BLOCK_RESERVED) {
      throw new CorruptArchiveError(`corrupt zstd frame: reserved block type at byte ${at}`);
    }
    if (blockSize > BLOCK_MAXIMUM_SIZE) {
      throw new CorruptArchiveError(
        `corrupt zstd frame: block of ${blockSize} bytes at byte ${at} exceeds the 128 KiB maximum`,
      );
    }
    const blockEnd = at + BLOCK_HEADER_BYTES + (blockType === BLOCK_RLE ? 1 : blockSize);
    if (queue.end < blockEnd) return false;
    frame.scan = blockEnd;
    frame.decodedBound += blockType === BLOCK_COMPRESSED ? BLOCK_MAXIMUM_SIZE : blockSize;
    if (blockHeader & 0x01) frame.end = blockEnd + (frame.header.hasChecksum ? CHECKSUM_BYTES : 0);
    return true;
  }

  private nextNative(frame: FrameScan): ReaderEvent | undefined {
    const queue = this.queue;
    const offset = frame.header.offset;
    const { contentSize } = frame.header;
    // The blocks bound what it can decode to; a declared content size, if smaller, is what it
    // should, and every codec decodes a whole frame into at most that (a frame that holds more
    // fails): libzstd splits the blocks of a frame compressed in one call finely, and their
    // 128 KiB apiece would send many a 2 MiB frame to the streaming decoder.
    const bound = (): number => Math.min(contentSize ?? frame.decodedBound, frame.decodedBound);
    while (frame.end === undefined && this.readBlock(frame)) {
      const compressedBytes = frame.scan - offset;
      if (bound() > this.maxNativeFrameBytes || compressedBytes > this.maxNativeFrameBytes) {
        return this.startStreaming(frame);
      }
    }
    if (frame.end === undefined || queue.end < frame.end) return undefined;
    this.frame = undefined;
    if (this.isEmpty(frame)) {
      queue.discard(frame.end);
      return EMPTY_FRAME;
    }
    const decodedBound = bound();
    // Always a copy (into the decoder's reused buffers): the input chunks it came from are
    // then consumed, and freed as soon as the events they produced are handled.
    return { kind: 'frame', bytes: queue.take(frame.end, this.allocateFrame, true), offset, contentSize, decodedBound };
  }

  /**
   * Its blocks are all raw or RLE blocks of 0 bytes, it declares no content size or 0, and it
   * carries no checksum or the checksum of nothing: what any codec would decode to nothing.
   * Anything else, however small, goes to the codec, whose refusals stay what they were.
   */
  private isEmpty(frame: FrameScan): boolean {
    const { contentSize, hasChecksum } = frame.header;
    if (frame.decodedBound !== 0 || (contentSize ?? 0) !== 0) return false;
    return !hasChecksum || this.queue.uint32At(frame.end! - CHECKSUM_BYTES) === EMPTY_CONTENT_CHECKSUM;
  }

  private startStreaming(frame: FrameScan): ReaderEvent {
    const { windowSize, offset } = frame.header;
    if (windowSize > MAX_STREAMING_WINDOW_BYTES) {
      throw new ArchiveLimitError(
        `zstd frame at byte ${offset} needs a ${Math.ceil(windowSize / MiB)} MiB window; frames over ` +
          `${this.maxNativeFrameBytes / MiB} MiB may use at most ${MAX_STREAMING_WINDOW_BYTES / MiB} MiB (zstd levels 1-19, without --ultra or --long): ` +
          'recompress it with zstd -dc --long=31 FILE | zstd -o NEW.tar.zst',
      );
    }
    frame.sliceBlocks = Math.max(1, Math.min(STREAM_SLICE_BLOCKS, Math.floor(STREAM_SLICE_WINDOW_MOVES / windowSize)));
    // Walk the blocks again from the first: each push must end next to a block boundary.
    frame.scan = frame.header.offset + frame.header.headerBytes;
    frame.end = undefined;
    const { contentSize, hasChecksum } = frame.header;
    return { kind: 'streaming', offset, contentSize, hasChecksum, windowSize };
  }

  private nextStreaming(frame: FrameScan): ReaderEvent | undefined {
    const queue = this.queue;
    let blocks = 0;
    while (
      frame.end === undefined &&
      blocks < frame.sliceBlocks! &&
      frame.scan - queue.start < STREAM_SLICE_BYTES &&
      this.readBlock(frame)
    ) {
      blocks++;
    }
    if (frame.end !== undefined && queue.end >= frame.end) {
      this.frame = undefined;
      return this.slice(frame.end, true);
    }
    if (blocks === 0) return undefined;
    // fzstd (Node 20) keeps a reference to the tail of every push that ends exactly on a block
    // boundary and drops them only once a push ends inside a block: without this, a long frame
    // would keep all its compressed bytes alive. So the last byte waits for the next push.
    return this.slice(frame.scan - 1, false);
  }

  private slice(upTo: number, final: boolean): ReaderEvent {
    const from = this.queue.start;
    return { kind: 'slice', bytes: this.queue.take(upTo), from, final };
  }
}

export function contentSizeMismatch(offset: number, declared: number, actual: number): CorruptArchiveError {
  return new CorruptArchiveError(
    `corrupt zstd frame at byte ${offset}: it declares ${declared} bytes of content but decodes to ${actual}`,
  );
}
