// Zstandard framing for tenant archives. `@mongodb-js/zstd` only compresses and decompresses
// whole buffers, so an archive is written as a sequence of independent frames, each holding
// `frameSize` bytes of input (standard zstd: `zstd -d` reads concatenated frames), and the
// frames are compressed and decompressed several at a time on the libuv thread pool.
//
// Reading must also accept what the `zstd` CLI writes (`tar | zstd` makes one frame of any
// size) and must survive hostile input, so the decoder finds frame and block boundaries from
// the format itself (RFC 8878) and enforces these limits:
// - a frame is decoded whole (zstd-codec.ts) only when it is complete and both its compressed
//   size and its decoded size (bounded from its block headers) are at most
//   `maxNativeFrameBytes`, so at most that much input is buffered per frame, and frames
//   decode in parallel only while their sizes together stay within twice that;
// - a larger frame (or a decompression bomb) is streamed in slices of at most 64 blocks or
//   1 MiB of input, fewer when its window is large (the pure-JS decoder moves its whole
//   window once per block), so at most 8 MiB of output exists per step, each yielded chunk is
//   ≤ 128 KiB and each step takes milliseconds; its window may be at most 8 MiB, which every
//   zstd level from 1 to 19 stays within (`--ultra` levels and `--long` need more);
// - windows above 128 MiB (zstd's own default decoder limit) and skippable-frame payloads
//   above `maxSkippableBytes` (when they are asked for at all) are refused with
//   ArchiveLimitError;
// - anything malformed, cut short, failing its content checksum, or not matching its
//   declared content size is a CorruptArchiveError.
// Every frame that carries a content checksum is verified, whichever way it is decoded; our
// own frames carry none (archive integrity is the manifest's job), `zstd` CLI frames do.

import os from 'node:os';
import { ArchiveLimitError, CorruptArchiveError, UsageError } from '../errors.js';
import { compressFrame, decodeWholeFrame, streamingFrameDecoders, type StreamingDecoderFactory, type StreamingFrameDecoder } from './zstd-codec.js';

const MiB = 1024 * 1024;
const DEFAULT_FRAME_SIZE = 2 * MiB;
const DEFAULT_LEVEL = 3;
/**
 * Our frames hold 2 MiB; 8 MiB keeps frames decoding whole (16 MiB together, plus the 8 MiB
 * chunk being consumed) well inside the restore's memory budget: with 32 MiB, 32 MiB frames
 * took a restore to 235 MiB of peak RSS.
 */
const DEFAULT_MAX_NATIVE_FRAME_BYTES = 8 * MiB;
/** Compressed frames kept for reuse: the writer fills one while the others compress. */
const MAX_SPARE_FRAMES = 1;

const ZSTD_MAGIC = 0xfd2fb528;
const SKIPPABLE_MAGIC_BASE = 0x184d2a50;
const SKIPPABLE_HEADER_BYTES = 8;
const BLOCK_HEADER_BYTES = 3;
const CHECKSUM_BYTES = 4;
/** Block_Maximum_Size: no block decodes to more, and no block's Block_Size may exceed it. */
const BLOCK_MAXIMUM_SIZE = 128 * 1024;
const MAX_WINDOW_BYTES = 128 * MiB;
/**
 * Largest window of a streamed frame: the pure-JS decoder allocates all of it, anew for each
 * frame, and old ones wait for the garbage collector (24 frames with 32 MiB windows took a
 * restore to 202 MiB of peak RSS). zstd levels 1-19 use at most 8 MiB.
 */
const MAX_STREAMING_WINDOW_BYTES = 8 * MiB;
const STREAM_SLICE_BLOCKS = 64;
const STREAM_SLICE_BYTES = 1 * MiB;
/** Window bytes the pure-JS decoder may move per slice (it shifts its window once per block). */
const STREAM_SLICE_WINDOW_MOVES = 256 * MiB;
const DEFAULT_MAX_SKIPPABLE_BYTES = 64 * 1024;

const BLOCK_RLE = 1;
const BLOCK_COMPRESSED = 2;
const BLOCK_RESERVED = 3;

export interface CompressOptions {
  /** Bytes of input per frame: zstd -3 looks back 2 MiB anyway. @default 2 MiB */
  frameSize?: number;
  /** zstd compression level. @default 3 */
  level?: number;
  /** Frames compressing at once. @default os.availableParallelism() + 1 */
  concurrency?: number;
}

/**
 * Cuts the input into frames of exactly `frameSize` bytes (the last one shorter), compresses
 * them in parallel and yields the compressed frames in input order. Input is read only as
 * frames are needed, so memory stays near `concurrency * 2 * frameSize` whatever the input
 * size. Empty input yields nothing.
 */
export async function* compressFrames(
  source: AsyncIterable<Uint8Array>,
  options: CompressOptions = {},
): AsyncGenerator<Buffer> {
  const writer = new FrameWriter(options);
  const feeding = (async () => {
    for await (const chunk of source) await writer.write(chunk);
    await writer.close();
  })();
  feeding.catch((error: unknown) => writer.abort(error));
  try {
    yield* writer.frames();
    await feeding;
  } finally {
    writer.abort(new Error('the compressed stream was closed'));
    await feeding.catch(() => undefined);
  }
}

/**
 * The push side of compression: bytes are written (or read by the caller straight into
 * frame space), each full frame is compressed on the thread pool while the next fills, and
 * `frames()` yields the compressed frames in order. A writer waits while `concurrency`
 * frames are compressing or waiting to be taken; frame buffers are reused once compressed.
 */
export class FrameWriter {
  private readonly frameSize: number;
  private readonly level: number;
  private readonly concurrency: number;
  private frame: Buffer | undefined;
  private filled = 0;
  private readonly queue: { compressed: Promise<Buffer>; input: Buffer }[] = [];
  private readonly spare: Buffer[] = [];
  private closed = false;
  private failure: { error: unknown } | undefined;
  private wakeWriter: (() => void) | undefined;
  private wakeReader: (() => void) | undefined;

  constructor(options: CompressOptions = {}) {
    this.frameSize = positiveInteger(options.frameSize ?? DEFAULT_FRAME_SIZE, 'frameSize');
    this.level = integer(options.level ?? DEFAULT_LEVEL, 'level');
    this.concurrency = positiveInteger(options.concurrency ?? defaultConcurrency(), 'concurrency');
  }

  /** Copies `bytes` in. Returns a promise only when a full frame has to wait for room. */
  write(bytes: Uint8Array): Promise<void> | undefined {
    return this.append(bytes.length, (frame, at, done, step) => frame.set(bytes.subarray(done, done + step), at));
  }

  /** Appends `length` zero bytes. */
  zeros(length: number): Promise<void> | undefined {
    return this.append(length, (frame, at, _done, step) => frame.fill(0, at, at + step));
  }

  /**
   * Appends `length` bytes that `put` places, one stretch of free frame space at a time
   * (`done` bytes placed so far). Returns a promise only when a full frame has to wait for room.
   */
  private append(length: number, put: (frame: Buffer, at: number, done: number, step: number) => void, done = 0): Promise<void> | undefined {
    while (done < length) {
      const frame = this.currentFrame();
      const step = Math.min(length - done, frame.length - this.filled);
      put(frame, this.filled, done, step);
      this.filled += step;
      done += step;
      if (this.filled === frame.length) {
        const waiting = this.emit();
        if (waiting !== undefined) return waiting.then(() => this.append(length, put, done));
      }
    }
    return undefined;
  }

  /**
   * Lets `read` put up to `length` bytes straight into frame space, one call per stretch of
   * free space; stops early when `read` returns 0. Returns how many bytes were appended.
   */
  async readInto(length: number, read: (target: Buffer, offset: number, length: number) => number | Promise<number>): Promise<number> {
    let appended = 0;
    while (appended < length) {
      const frame = this.currentFrame();
      const got = await read(frame, this.filled, Math.min(length - appended, frame.length - this.filled));
      if (got === 0) break;
      this.filled += got;
      appended += got;
      if (this.filled === frame.length) await this.emit();
    }
    return appended;
  }

  /** Compresses what is left; `frames()` ends after it. */
  async close(): Promise<void> {
    if (this.frame !== undefined && this.filled > 0) {
      const last = this.frame.subarray(0, this.filled);
      this.frame = undefined;
      await this.enqueue(last);
    }
    this.closed = true;
    this.wakeReader?.();
  }

  /** Fails both sides: a waiting writer, and the reader of `frames()`. The first reason wins. */
  abort(error: unknown): void {
    this.failure ??= { error };
    this.wakeWriter?.();
    this.wakeReader?.();
  }

  async *frames(): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        if (this.failure !== undefined) throw this.failure.error;
        const head = this.queue[0];
        if (head === undefined) {
          if (this.closed) return;
          await new Promise<void>((resolve) => (this.wakeReader = resolve));
          this.wakeReader = undefined;
          continue;
        }
        const compressed = await head.compressed;
        this.queue.shift();
        if (head.input.length === this.frameSize && this.spare.length < MAX_SPARE_FRAMES) this.spare.push(head.input);
        this.wakeWriter?.();
        yield compressed;
      }
    } finally {
      this.abort(new Error('the compressed stream was closed'));
    }
  }

  private currentFrame(): Buffer {
    if (this.failure !== undefined) throw this.failure.error;
    if (this.frame === undefined) {
      this.frame = this.spare.pop() ?? Buffer.allocUnsafe(this.frameSize);
      this.filled = 0;
    }
    return this.frame;
  }

  private emit(): Promise<void> | undefined {
    const full = this.frame!;
    this.frame = undefined;
    if (this.queue.length < this.concurrency) {
      this.push(full);
      return undefined;
    }
    return this.enqueue(full);
  }

  private async enqueue(frame: Buffer): Promise<void> {
    while (this.queue.length >= this.concurrency) {
      if (this.failure !== undefined) throw this.failure.error;
      await new Promise<void>((resolve) => (this.wakeWriter = resolve));
      this.wakeWriter = undefined;
    }
    if (this.failure !== undefined) throw this.failure.error;
    this.push(frame);
  }

  private push(frame: Buffer): void {
    const compressed = compressFrame(frame, this.level);
    compressed.catch((error: unknown) => this.abort(error));
    this.queue.push({ compressed, input: frame });
    this.wakeReader?.();
  }
}

/** A zstd skippable frame (magic 0x184D2A50 + nibble, 4-byte LE length, payload): decoders, including `zstd -d`, skip it. */
export function skippableFrame(payload: Uint8Array, magicNibble = 0): Buffer {
  if (!Number.isInteger(magicNibble) || magicNibble < 0 || magicNibble > 15) {
    throw new UsageError(`skippable frame magic nibble must be an integer from 0 to 15, not ${magicNibble}`);
  }
  if (payload.length > 0xffffffff) {
    throw new UsageError(`skippable frame payload of ${payload.length} bytes exceeds 4 GiB`);
  }
  const frame = Buffer.allocUnsafe(SKIPPABLE_HEADER_BYTES + payload.length);
  frame.writeUInt32LE(SKIPPABLE_MAGIC_BASE + magicNibble, 0);
  frame.writeUInt32LE(payload.length, 4);
  frame.set(payload, SKIPPABLE_HEADER_BYTES);
  return frame;
}

export interface DecompressOptions {
  /** Frames decompressing at once on the native path. @default os.availableParallelism() + 1 */
  concurrency?: number;
  /**
   * Largest frame, compressed or (bounded) decoded, decoded whole; larger frames are
   * streamed. Frames decoding whole at once hold at most twice this. @default 8 MiB
   */
  maxNativeFrameBytes?: number;
  /**
   * Receives each skippable frame, in stream order: after every byte decoded before it has
   * been yielded. Without it, skippable frames are skipped without being buffered.
   */
  onSkippableFrame?: (payload: Buffer, magicNibble: number) => void;
  /** Which skippable frames `onSkippableFrame` receives; the others are skipped unread. @default all */
  skippableNibbles?: readonly number[];
  /** Largest skippable payload `onSkippableFrame` receives; a larger one is refused. @default 64 KiB */
  maxSkippableBytes?: number;
}

/**
 * Decodes a stream of concatenated zstd frames (ours, or any zstd CLI output) and yields the
 * decoded bytes in order, in bounded memory. Throws CorruptArchiveError on malformed or
 * truncated input and ArchiveLimitError when a frame exceeds a limit (see the module comment).
 */
export async function* decompressFrames(
  source: AsyncIterable<Uint8Array>,
  options: DecompressOptions = {},
): AsyncGenerator<Buffer> {
  const concurrency = positiveInteger(options.concurrency ?? defaultConcurrency(), 'concurrency');
  const maxNativeFrameBytes = positiveInteger(
    options.maxNativeFrameBytes ?? DEFAULT_MAX_NATIVE_FRAME_BYTES,
    'maxNativeFrameBytes',
  );
  const maxSkippableBytes = positiveInteger(options.maxSkippableBytes ?? DEFAULT_MAX_SKIPPABLE_BYTES, 'maxSkippableBytes');
  const { onSkippableFrame, skippableNibbles } = options;
  const collect = (nibble: number): boolean => onSkippableFrame !== undefined && (skippableNibbles?.includes(nibble) ?? true);
  const reader = new FrameReader(maxNativeFrameBytes, maxSkippableBytes, collect);
  const pending = new InOrder<Decoded>();
  /** Bytes the frames decoding whole hold, in and out: at most twice maxNativeFrameBytes. */
  const inFlightLimit = 2 * maxNativeFrameBytes;
  let inFlight = 0;

  function* release(decoded: Decoded): Generator<Buffer> {
    if (decoded.kind === 'skippable') onSkippableFrame?.(decoded.payload, decoded.magicNibble);
    else {
      inFlight -= decoded.holds;
      if (decoded.data.length > 0) yield decoded.data;
    }
  }

  for await (const chunk of source) {
    reader.push(asBuffer(chunk));
    for (let event = reader.next(); event !== undefined; event = reader.next()) {
      switch (event.kind) {
        case 'frame': {
          const holds = event.bytes.length + event.decodedBound;
          while (pending.size >= concurrency || (pending.size > 0 && inFlight + holds > inFlightLimit)) {
            yield* release(await pending.next());
          }
          inFlight += holds;
          pending.add(decodeNative(event, holds));
          break;
        }
        case 'skippable':
          pending.add(Promise.resolve(event));
          break;
        case 'streaming':
          reader.streamingDecoders ??= await streamingFrameDecoders();
          while (pending.size > 0) yield* release(await pending.next());
          break;
        case 'decoded':
          // Emptied as it goes: optimized code may keep the last event alive a while.
          for (let data = event.chunks.shift(); data !== undefined; data = event.chunks.shift()) yield data;
          break;
      }
    }
    while (pending.headSettled()) yield* release(await pending.next());
  }
  reader.end();
  while (pending.size > 0) yield* release(await pending.next());
}

type Decoded =
  /** `holds`: the bytes counted in flight while the frame decoded. */
  | { kind: 'data'; data: Buffer; holds: number }
  | { kind: 'skippable'; payload: Buffer; magicNibble: number };

interface WholeFrame {
  readonly bytes: Buffer;
  readonly offset: number;
  readonly contentSize: number | undefined;
  /** Most bytes it can decode to. */
  readonly decodedBound: number;
}

type ReaderEvent =
  /** A whole frame to decode at once. */
  | ({ kind: 'frame' } & WholeFrame)
  | { kind: 'skippable'; payload: Buffer; magicNibble: number }
  /** The current frame is too large for the native decoder: its bytes follow as `decoded`. */
  | { kind: 'streaming' }
  | { kind: 'decoded'; chunks: Buffer[] };

async function decodeNative(frame: WholeFrame, holds: number): Promise<Decoded> {
  let data: Buffer;
  try {
    data = await decodeWholeFrame(frame.bytes);
  } catch (error) {
    throw new CorruptArchiveError(
      `corrupt zstd frame at byte ${frame.offset}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  if (frame.contentSize !== undefined && data.length !== frame.contentSize) {
    throw contentSizeMismatch(frame.offset, frame.contentSize, data.length);
  }
  return { kind: 'data', data, holds };
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
  stream: StreamingDecode | undefined;
}

interface StreamingDecode {
  /** Made at the first slice (the factory is loaded once a frame needs it). */
  decoder: StreamingFrameDecoder | undefined;
  /** Blocks per slice: fewer for a large window. */
  readonly sliceBlocks: number;
  produced: number;
}

/**
 * The synchronous half of decompressFrames: walks frame and block headers over a byte queue
 * and turns the input into events. Offsets are positions in the whole input stream.
 */
class FrameReader {
  private readonly queue = new ByteQueue();
  private frame: FrameScan | undefined;
  private skipRemaining = 0;

  /** Set by the caller on the first 'streaming' event, before asking for the next one. */
  streamingDecoders: StreamingDecoderFactory | undefined;

  constructor(
    private readonly maxNativeFrameBytes: number,
    private readonly maxSkippableBytes: number,
    private readonly collectSkippable: (magicNibble: number) => boolean,
  ) {}

  push(chunk: Buffer): void {
    this.queue.push(chunk);
  }

  /** The next event the bytes received so far allow, or undefined when more input is needed. */
  next(): ReaderEvent | undefined {
    const queue = this.queue;
    if (this.skipRemaining > 0) {
      const skipped = Math.min(this.skipRemaining, queue.length);
      queue.discard(queue.start + skipped);
      this.skipRemaining -= skipped;
      if (this.skipRemaining > 0) return undefined;
    }
    if (this.frame === undefined) {
      if (queue.length < 4) return undefined;
      const magic = queue.uint32At(queue.start);
      if ((magic & 0xfffffff0) === SKIPPABLE_MAGIC_BASE) return this.skippable(magic & 0xf);
      const header = this.readFrameHeader();
      if (header === undefined) return undefined;
      this.frame = {
        header,
        scan: header.offset + header.headerBytes,
        decodedBound: 0,
        end: undefined,
        stream: undefined,
      };
      if (header.contentSize !== undefined && header.contentSize > this.maxNativeFrameBytes) {
        return this.startStreaming(this.frame);
      }
    }
    return this.frame.stream === undefined ? this.nextNative(this.frame) : this.nextStreaming(this.frame);
  }

  /** Throws unless the input ended on a frame boundary. */
  end(): void {
    if (this.frame !== undefined || this.skipRemaining > 0 || this.queue.length > 0) {
      throw new CorruptArchiveError('archive is truncated: the zstd stream ends inside a frame');
    }
  }

  private skippable(magicNibble: number): ReaderEvent | undefined {
    const queue = this.queue;
    if (queue.length < SKIPPABLE_HEADER_BYTES) return undefined;
    const offset = queue.start;
    const size = queue.uint32At(offset + 4);
    if (!this.collectSkippable(magicNibble)) {
      queue.discard(offset + SKIPPABLE_HEADER_BYTES);
      this.skipRemaining = size;
      return this.next();
    }
    if (size > this.maxSkippableBytes) {
      throw new ArchiveLimitError(
        `skippable frame at byte ${offset} holds ${size} bytes, more than the ` +
          `${this.maxSkippableBytes}-byte limit`,
      );
    }
    if (queue.length < SKIPPABLE_HEADER_BYTES + size) return undefined;
    const payload = queue.take(offset + SKIPPABLE_HEADER_BYTES + size).subarray(SKIPPABLE_HEADER_BYTES);
    return { kind: 'skippable', payload, magicNibble };
  }

  /** Parses the frame header at the queue's start (RFC 8878 §3.1.1.1), or undefined if incomplete. */
  private readFrameHeader(): FrameHeader | undefined {
    const queue = this.queue;
    const offset = queue.start;
    if (queue.uint32At(offset) !== ZSTD_MAGIC) {
      throw new CorruptArchiveError(`not a zstd stream: bad frame magic at byte ${offset}`);
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
        `zstd frame at byte ${offset} needs dictionary ${dictionaryId}; archives never use one`,
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
          `more than the ${MAX_WINDOW_BYTES / MiB} MiB limit`,
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
    while (frame.end === undefined && this.readBlock(frame)) {
      const compressedBytes = frame.scan - offset;
      if (frame.decodedBound > this.maxNativeFrameBytes || compressedBytes > this.maxNativeFrameBytes) {
        return this.startStreaming(frame);
      }
    }
    if (frame.end === undefined || queue.end < frame.end) return undefined;
    this.frame = undefined;
    const { contentSize } = frame.header;
    return { kind: 'frame', bytes: queue.take(frame.end), offset, contentSize, decodedBound: contentSize ?? frame.decodedBound };
  }

  private startStreaming(frame: FrameScan): ReaderEvent {
    const { windowSize, offset } = frame.header;
    if (windowSize > MAX_STREAMING_WINDOW_BYTES) {
      throw new ArchiveLimitError(
        `zstd frame at byte ${offset} needs a ${Math.ceil(windowSize / MiB)} MiB window; frames over ` +
          `${this.maxNativeFrameBytes / MiB} MiB may use at most ${MAX_STREAMING_WINDOW_BYTES / MiB} MiB (zstd levels 1-19, without --ultra or --long)`,
      );
    }
    const sliceBlocks = Math.max(1, Math.min(STREAM_SLICE_BLOCKS, Math.floor(STREAM_SLICE_WINDOW_MOVES / windowSize)));
    frame.stream = { decoder: undefined, sliceBlocks, produced: 0 };
    // Walk the blocks again from the first: each push must end next to a block boundary.
    frame.scan = frame.header.offset + frame.header.headerBytes;
    frame.end = undefined;
    return { kind: 'streaming' };
  }

  private nextStreaming(frame: FrameScan): ReaderEvent | undefined {
    const queue = this.queue;
    let blocks = 0;
    while (
      frame.end === undefined &&
      blocks < frame.stream!.sliceBlocks &&
      frame.scan - queue.start < STREAM_SLICE_BYTES &&
      this.readBlock(frame)
    ) {
      blocks++;
    }
    if (frame.end !== undefined && queue.end >= frame.end) {
      const chunks = this.pushToDecoder(frame, frame.end, true);
      const { contentSize, offset } = frame.header;
      if (contentSize !== undefined && frame.stream!.produced !== contentSize) {
        throw contentSizeMismatch(offset, contentSize, frame.stream!.produced);
      }
      this.frame = undefined;
      return { kind: 'decoded', chunks };
    }
    if (blocks === 0) return undefined;
    // fzstd keeps a reference to the tail of every push that ends exactly on a block boundary
    // and drops them only once a push ends inside a block: without this, a long frame would
    // keep all its compressed bytes alive. So the last byte waits for the next push.
    return { kind: 'decoded', chunks: this.pushToDecoder(frame, frame.scan - 1, false) };
  }

  private pushToDecoder(frame: FrameScan, upTo: number, final: boolean): Buffer[] {
    const stream = frame.stream!;
    stream.decoder ??= this.streamingDecoders!({ hasChecksum: frame.header.hasChecksum });
    const offset = this.queue.start;
    let chunks: Buffer[];
    try {
      chunks = stream.decoder.push(this.queue.take(upTo), final);
    } catch (error) {
      throw new CorruptArchiveError(
        `corrupt zstd frame at byte ${frame.header.offset} (in the bytes from ${offset}): ` +
          (error as Error).message,
        { cause: error },
      );
    }
    for (const chunk of chunks) stream.produced += chunk.length;
    return chunks;
  }
}

/**
 * Input bytes not yet consumed, kept as the chunks they arrived in. Positions are offsets in
 * the whole stream; `start` and `end` bound the bytes held.
 */
class ByteQueue {
  private readonly chunks: Buffer[] = [];
  /** Stream offset just past each chunk. */
  private readonly ends: number[] = [];
  /** Index of the chunk the last lookup found: lookups mostly move forward. */
  private hint = 0;
  start = 0;
  end = 0;

  get length(): number {
    return this.end - this.start;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.end += chunk.length;
    this.ends.push(this.end);
  }

  byteAt(at: number): number {
    const index = this.chunkIndex(at);
    const chunk = this.chunks[index]!;
    return chunk[chunk.length - (this.ends[index]! - at)]!;
  }

  /** Little-endian unsigned integer of `bytes` bytes at `at`; exact up to 2^53. */
  uintAt(at: number, bytes: number): number {
    let value = 0;
    for (let i = bytes - 1; i >= 0; i--) value = value * 256 + this.byteAt(at + i);
    return value;
  }

  uint32At(at: number): number {
    return this.uintAt(at, 4);
  }

  /** Removes the bytes before `upTo` and returns them: a view if they lie in one chunk, else a copy. */
  take(upTo: number): Buffer {
    const first = this.chunks[0]!;
    const firstStart = this.ends[0]! - first.length;
    let bytes: Buffer;
    if (upTo <= this.ends[0]!) {
      bytes = first.subarray(this.start - firstStart, upTo - firstStart);
    } else {
      bytes = Buffer.allocUnsafe(upTo - this.start);
      let written = 0;
      for (let i = 0; written < bytes.length; i++) {
        const chunk = this.chunks[i]!;
        const chunkStart = this.ends[i]! - chunk.length;
        const from = Math.max(this.start, chunkStart) - chunkStart;
        const to = Math.min(upTo, this.ends[i]!) - chunkStart;
        written += chunk.copy(bytes, written, from, to);
      }
    }
    this.discard(upTo);
    return bytes;
  }

  discard(upTo: number): void {
    this.start = upTo;
    let drop = 0;
    while (drop < this.ends.length && this.ends[drop]! <= upTo) drop++;
    this.chunks.splice(0, drop);
    this.ends.splice(0, drop);
    this.hint = Math.max(0, this.hint - drop);
  }

  private chunkIndex(at: number): number {
    let index = this.hint;
    if (index >= this.chunks.length || this.ends[index]! - this.chunks[index]!.length > at) index = 0;
    while (this.ends[index]! <= at) index++;
    this.hint = index;
    return index;
  }
}

/**
 * Promises consumed in the order they were added. Each gets a rejection handler at once, so a
 * failure waiting in the queue is not reported as unhandled before it is awaited.
 */
class InOrder<T> {
  private readonly entries: { promise: Promise<T>; settled: boolean }[] = [];

  get size(): number {
    return this.entries.length;
  }

  add(promise: Promise<T>): void {
    const entry = { promise, settled: false };
    const markSettled = (): void => {
      entry.settled = true;
    };
    promise.then(markSettled, markSettled);
    this.entries.push(entry);
  }

  headSettled(): boolean {
    return this.entries[0]?.settled ?? false;
  }

  next(): Promise<T> {
    return this.entries.shift()!.promise;
  }
}

function contentSizeMismatch(offset: number, declared: number, actual: number): CorruptArchiveError {
  return new CorruptArchiveError(
    `corrupt zstd frame at byte ${offset}: it declares ${declared} bytes of content but decodes to ${actual}`,
  );
}

function asBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

function defaultConcurrency(): number {
  return os.availableParallelism() + 1;
}

function integer(value: number, name: string): number {
  if (!Number.isSafeInteger(value)) throw new UsageError(`${name} must be an integer, not ${value}`);
  return value;
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new UsageError(`${name} must be a positive integer, not ${value}`);
  }
  return value;
}
