// The reading side of our zstd framing: decodes a stream of concatenated zstd frames (ours,
// or what the `zstd` CLI writes: `tar | zstd` makes one frame of any size) in bounded memory,
// whatever the input claims. zstd-frame-reader.ts finds the frames and enforces the limits;
// here each frame is decoded by the process's codec (zstd-codec.ts): whole, off the main
// thread, when it is small, several at once but never more than twice `maxNativeFrameBytes`
// together, or streamed slice by slice when it is large, and the output leaves in order. A
// frame decoded whole is copied into a reused buffer (frame-pool.ts), so that the input chunks
// are freed as soon as they are consumed (released-buffers.ts).
// Every frame that carries a content checksum is verified, whichever way it is decoded; our
// own frames carry none (archive integrity is the manifest's job), `zstd` CLI frames do.

import { setImmediate as nextTurn } from 'node:timers/promises';
import { CorruptArchiveError, ModuleUnavailableError } from '../errors.js';
import { throwIfAborted } from '../storage/streams.js';
import { FramePool } from './frame-pool.js';
import { InOrder } from './in-order.js';
import { zstdCodec, type StreamingFrameDecoder, type ZstdCodec } from './zstd-codec.js';
import { defaultConcurrency, MiB, positiveInteger } from './zstd-format.js';
import { contentSizeMismatch, FrameReader, type StreamingFrame, type WholeFrame } from './zstd-frame-reader.js';

/**
 * Our frames hold 2 MiB; 8 MiB keeps frames decoding whole (16 MiB together, plus the 8 MiB
 * chunk being consumed) well inside the restore's memory budget: with 32 MiB, 32 MiB frames
 * took a restore to 235 MiB of peak RSS.
 */
const DEFAULT_MAX_NATIVE_FRAME_BYTES = 8 * MiB;
const DEFAULT_MAX_SKIPPABLE_BYTES = 64 * 1024;
/**
 * The event loop gets a turn at least this often (as in extract.ts): skippable frames handed
 * over are handled on the spot, without an await that lets a timer or a signal handler run, so
 * a chunk of a million of them kept SIGTERM and the restore function's deadline waiting 11-17 s.
 */
const EVENT_LOOP_TURN_MS = 50;

export interface DecompressOptions {
  /** Frames decoding whole at once. @default the CPU budget (cpu-budget.ts) + 1 */
  concurrency?: number;
  /**
   * Largest frame, compressed or (bounded) decoded, decoded whole; larger frames are
   * streamed. Frames decoding whole at once hold at most twice this. @default 8 MiB
   */
  maxNativeFrameBytes?: number;
  /**
   * Receives each skippable frame, in stream order: after every byte decoded before it has
   * been yielded, with where the frame starts in the stream. Without it, skippable frames are
   * skipped without being buffered.
   */
  onSkippableFrame?: (payload: Buffer, magicNibble: number, offset: number) => void;
  /** Which skippable frames `onSkippableFrame` receives; the others are skipped unread. @default all */
  skippableNibbles?: readonly number[];
  /** Largest skippable payload `onSkippableFrame` receives; a larger one is refused. @default 64 KiB */
  maxSkippableBytes?: number;
  /** @default the process's codec (zstd-codec.ts) */
  codec?: ZstdCodec;
  /**
   * Checked before every frame, the event loop turning at least every 50 ms: a chunk of input
   * may hold a million tiny frames, which take seconds to decode and yield nothing a consumer
   * could check it on.
   */
  signal?: AbortSignal;
}

/**
 * Decodes a stream of concatenated zstd frames (ours, or any zstd CLI output) and yields the
 * decoded bytes in order, in bounded memory. Throws CorruptArchiveError on malformed or
 * truncated input and ArchiveLimitError when a frame exceeds a limit (zstd-frame-reader.ts lists them).
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
  const codec = options.codec ?? zstdCodec();
  const collect = (nibble: number): boolean => onSkippableFrame !== undefined && (skippableNibbles?.includes(nibble) ?? true);
  /** Bytes the frames decoding whole hold, in and out: at most twice maxNativeFrameBytes. */
  const inFlightLimit = 2 * maxNativeFrameBytes;
  // Whole frames are copied out of the input into reused buffers (frame-pool.ts).
  const pool = new FramePool(maxNativeFrameBytes);
  const reader = new FrameReader(maxNativeFrameBytes, maxSkippableBytes, collect, (bytes) => pool.acquire(bytes));
  const pending = new InOrder<Decoded>();
  let inFlight = 0;
  let lastTurn = performance.now();
  /** The frame being streamed, if any. */
  let streamed: { readonly frame: StreamingFrame; readonly decoder: StreamingFrameDecoder; produced: number } | undefined;

  function* release(decoded: Decoded): Generator<Buffer> {
    if (decoded.kind === 'skippable') onSkippableFrame?.(decoded.payload, decoded.magicNibble, decoded.offset);
    else {
      inFlight -= decoded.holds;
      // (A codec's output is never a view of its input; were it one, the buffer stays out of the pool.)
      if (decoded.data.buffer !== decoded.frame.buffer) pool.release(decoded.frame);
      if (decoded.data.length > 0) yield decoded.data;
    }
  }

  try {
    for await (const chunk of source) {
      reader.push(asBuffer(chunk));
      for (let event = reader.next(); event !== undefined; event = reader.next()) {
        if (performance.now() - lastTurn >= EVENT_LOOP_TURN_MS) {
          await nextTurn();
          lastTurn = performance.now();
        }
        throwIfAborted(options.signal);
        switch (event.kind) {
          case 'frame': {
            const holds = event.bytes.length + event.decodedBound;
            while (pending.size >= concurrency || (pending.size > 0 && inFlight + holds > inFlightLimit)) {
              yield* release(await pending.next());
            }
            inFlight += holds;
            pending.add(decodeWhole(codec, event, holds));
            break;
          }
          case 'empty':
            break;
          case 'skippable':
            // In order with the frames before it, and as bounded: a stream of a million
            // skippable frames must not queue a million payloads (and promises) at once.
            if (pending.size === 0) yield* release(event);
            else {
              while (pending.size >= concurrency) yield* release(await pending.next());
              pending.add(Promise.resolve(event));
            }
            break;
          case 'streaming': {
            const { offset, contentSize, hasChecksum, windowSize } = event;
            const decoder = await codec.streamingDecoder({ hasChecksum, windowSize }).catch((error: unknown) => {
              throw frameError(offset, offset, error);
            });
            streamed = { frame: { offset, contentSize, hasChecksum, windowSize }, decoder, produced: 0 };
            while (pending.size > 0) yield* release(await pending.next());
            break;
          }
          case 'slice': {
            const stream = streamed!;
            const chunks = await stream.decoder.push(event.bytes, event.final).catch((error: unknown) => {
              throw frameError(stream.frame.offset, event.from, error);
            });
            // Emptied as it goes: optimized code may keep the last array alive a while.
            for (let data = chunks.shift(); data !== undefined; data = chunks.shift()) {
              stream.produced += data.length;
              yield data;
            }
            if (event.final) {
              streamed = undefined;
              stream.decoder.close();
              const { contentSize, offset } = stream.frame;
              if (contentSize !== undefined && stream.produced !== contentSize) throw contentSizeMismatch(offset, contentSize, stream.produced);
            }
            break;
          }
        }
      }
      reader.releaseConsumed();
      while (pending.headSettled()) yield* release(await pending.next());
    }
    reader.end();
    while (pending.size > 0) yield* release(await pending.next());
  } finally {
    streamed?.decoder.close();
  }
}

/** A streamed frame's failure, with where: the frame, and the bytes being decoded. */
function frameError(frameOffset: number, from: number, error: unknown): Error {
  if (error instanceof ModuleUnavailableError) return error;
  return new CorruptArchiveError(
    `corrupt zstd frame at byte ${frameOffset}${from > frameOffset ? ` (in the bytes from ${from})` : ''}: ${(error as Error).message}`,
    { cause: error },
  );
}

type Decoded =
  /** `holds`: the bytes counted in flight while the frame decoded; `frame`: its input, which the codec is done with. */
  | { kind: 'data'; data: Buffer; holds: number; frame: Buffer }
  | { kind: 'skippable'; payload: Buffer; magicNibble: number; offset: number };

async function decodeWhole(codec: ZstdCodec, frame: WholeFrame, holds: number): Promise<Decoded> {
  let data: Buffer;
  try {
    data = await codec.decodeWholeFrame(frame.bytes, frame.decodedBound);
  } catch (error) {
    if (error instanceof ModuleUnavailableError) throw error;
    throw new CorruptArchiveError(
      `corrupt zstd frame at byte ${frame.offset}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  if (frame.contentSize !== undefined && data.length !== frame.contentSize) {
    throw contentSizeMismatch(frame.offset, frame.contentSize, data.length);
  }
  return { kind: 'data', data, holds, frame: frame.bytes };
}

function asBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}
