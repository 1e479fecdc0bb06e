// The zstd codec of Node ≥ 22.15: node:zlib's zstd (libzstd inside Node), on libuv's thread
// pool like the other zlib codecs. Measured here, it is as fast as @mongodb-js/zstd at level
// 3 on 2 MiB frames once the whole output fits one zlib chunk (`chunkSize` at least the
// output's bound) and the input's size is pledged (also what writes the content size into
// the frame header): ~167 MB/s against ~55 MB/s with zlib's 16 KiB default chunks.
// libzstd verifies a frame's content checksum whenever the frame has one (a flipped byte
// fails with ZSTD_error_checksum_wrong), and ZSTD_d_windowLogMax caps the window a frame may
// make the decoder allocate.

import zlib from 'node:zlib';

import { releasable } from '../released-buffers.js';
import type { CodecChoice, StreamedFrame, StreamingFrameDecoder, ZstdCodec } from './zstd-codec.js';

/** 2^27 = 128 MiB: libzstd's default limit, for frames decoded whole. */
const WHOLE_FRAME_WINDOW_LOG_MAX = 27;
/** Output chunks of a streamed frame: one block's worst case, so each chunk is at most 128 KiB. */
const STREAM_CHUNK_BYTES = 128 * 1024;
/** zlib's smallest chunk. */
const MIN_CHUNK_BYTES = 64;
/** Idle whole-frame decoders kept for the next frames (the oldest goes first): about as many as a restore decodes at once. */
const MAX_IDLE_DECODERS = 4;
/** A frame's output of at most this is copied, and its decoder kept. */
const MAX_COPIED_OUTPUT_BYTES = 16 * 1024;

/** node:zlib's zstd, or why this Node has none usable. */
export function zlibZstdCodec(): CodecChoice {
  const constants = zlib.constants as Partial<Record<string, number>>;
  if (typeof zlib.zstdCompress !== 'function' || typeof zlib.createZstdDecompress !== 'function' || constants.ZSTD_d_windowLogMax === undefined) {
    return { unavailable: `Node ${process.versions.node} has no zstd in node:zlib` };
  }
  const windowLogMax = constants.ZSTD_d_windowLogMax;
  const endFrame = constants.ZSTD_e_end!;

  const codec: ZstdCodec = {
    name: 'node:zlib',
    compressFrame: (data, level) => compressWhole(data, compressionParams(level, data.length), endFrame),
    decodeWholeFrame: (frame, decodedBound) => decodeWhole(frame, decodedBound, windowLogMax),
    streamingDecoder: (frame) => Promise.resolve(streamingDecoder(frame, windowLogMax)),
  };
  return codec;
}

/**
 * Level 3's match-finder tables for inputs over 256 KiB are 2^17 (hashLog) and 2^16
 * (chainLog) entries of 4 bytes, 768 KiB: more than this machine's L2 keeps beside the
 * frame and the other threads' work, so most lookups of ZSTD_compressBlock_doubleFast (half
 * of a large backup's CPU) miss it. Half as large (2^16 and 2^15, 384 KiB): the large
 * benchmark tree's tar stream in 2 MiB frames took 15 % less CPU and the large backup 11-13 %
 * (medians of alternating pairs), for 1.0 % more archive bytes there and 2.1-2.3 % on 200,000
 * tiny JSON files (docs/benchmarks.md, stop 49). Only whole frames over 256 KiB at
 * level 3 take them: smaller inputs get smaller tables from libzstd anyway, other levels
 * keep theirs. (The addon of Node 20 takes a level only: its frames keep level 3's tables.)
 */
export const LEVEL3_FRAME_TABLES = { minBytes: 256 * 1024 + 1, hashLog: 16, chainLog: 15 } as const;

/** zlib's zstd parameters for one frame of `length` bytes at `level`, without a checksum. */
export function compressionParams(level: number, length: number): Record<number, number> {
  const constants = zlib.constants as Record<string, number>;
  const params: Record<number, number> = { [constants.ZSTD_c_compressionLevel!]: level, [constants.ZSTD_c_checksumFlag!]: 0 };
  if (level === 3 && length >= LEVEL3_FRAME_TABLES.minBytes) {
    params[constants.ZSTD_c_hashLog!] = LEVEL3_FRAME_TABLES.hashLog;
    params[constants.ZSTD_c_chainLog!] = LEVEL3_FRAME_TABLES.chainLog;
  }
  return params;
}

/**
 * A zlib zstd decoder kept between whole frames. A handle per frame (zlib.zstdDecompress)
 * allocates a libzstd context, its window and zlib's output buffer each time, reported to V8
 * as outside memory: under Node 24 a large restore spent 17 % of its main thread collecting
 * them. A kept handle is reset between frames (the window cap stays), and only one whose last
 * output filled its output buffer is kept, so the next frame's output starts a fresh buffer
 * and comes whole in one piece, which nothing else shares.
 */
interface WholeFrameDecoder {
  readonly stream: zlib.ZstdDecompress;
  readonly chunkBytes: number;
}

const idleDecoders: WholeFrameDecoder[] = [];

function wholeFrameDecoder(chunkBytes: number, windowLogMaxParam: number): WholeFrameDecoder {
  const index = idleDecoders.findIndex((decoder) => decoder.chunkBytes === chunkBytes);
  if (index >= 0) return idleDecoders.splice(index, 1)[0]!;
  const stream = zlib.createZstdDecompress({ chunkSize: chunkBytes, params: { [windowLogMaxParam]: WHOLE_FRAME_WINDOW_LOG_MAX } });
  return { stream, chunkBytes };
}

/**
 * One complete frame (the frame reader has walked its blocks) decoded into at most
 * `decodedBound` bytes, as zlib.zstdDecompress with `maxOutputLength` would, on a kept decoder.
 */
function decodeWhole(frame: Buffer, decodedBound: number, windowLogMaxParam: number): Promise<Buffer> {
  const decoder = wholeFrameDecoder(Math.max(MIN_CHUNK_BYTES, decodedBound), windowLogMaxParam);
  const { stream } = decoder;
  return new Promise((resolve, reject) => {
    const pieces: Buffer[] = [];
    let produced = 0;
    let failed = false;
    const detach = () => {
      stream.off('data', onData);
      stream.off('error', onError);
    };
    const fail = (error: Error) => {
      if (failed) return;
      failed = true;
      detach();
      stream.destroy();
      reject(error);
    };
    const onData = (piece: Buffer) => {
      produced += piece.length;
      if (produced > Math.max(1, decodedBound)) fail(new RangeError(`the frame decodes to more than ${decodedBound} bytes`));
      else pieces.push(piece);
    };
    const onError = (error: Error) => fail(codecError(error));
    stream.on('data', onData);
    stream.on('error', onError);
    // The write's callback comes once zlib has consumed the whole frame and pushed what it decoded.
    stream.write(frame, (error) => {
      if (failed) return;
      if (error) return fail(codecError(error));
      detach();
      const only = pieces.length === 1 ? pieces[0]! : undefined;
      const fillsItsBuffer = only !== undefined && only.byteOffset === 0 && only.byteLength === only.buffer.byteLength;
      // A small output is copied out of the buffer zlib goes on filling (a later output of
      // this decoder may be a releasable view of it), so its decoder is kept too: a new one
      // per frame cost ~30 µs more, a million tiny frames 60 s of CPU instead of 30.
      const small = produced <= MAX_COPIED_OUTPUT_BYTES;
      if (fillsItsBuffer || small) {
        (stream as zlib.ZstdDecompress & { reset(): void }).reset();
        idleDecoders.push(decoder);
        if (idleDecoders.length > MAX_IDLE_DECODERS) idleDecoders.shift()!.stream.destroy();
      } else {
        stream.destroy();
      }
      resolve(fillsItsBuffer || !small ? releasable(joined(pieces)) : Buffer.concat(pieces));
    });
  });
}

/** libzstd's errors in the words every codec uses (the checksum's as the Node 20 codec words it). */
function codecError(error: Error): Error {
  switch ((error as NodeJS.ErrnoException).code) {
    case 'ZSTD_error_checksum_wrong':
      return new Error('content checksum mismatch: the content does not hash to the checksum the frame records', { cause: error });
    case 'ZSTD_error_frameParameter_windowTooLarge':
      return new Error(`the frame needs a larger window than allowed (${error.message})`, { cause: error });
    default:
      return error;
  }
}

/**
 * One frame holding `data`, compressed in one call: the write itself ends the frame
 * (ZSTD_e_end), so libzstd compresses the input where it lies, and the stream is then dropped
 * rather than ended (ending would append an empty frame). zlib.zstdCompress writes, then
 * ends the frame in a second call: libzstd first copies the input into a window buffer of
 * its own (2 MiB more per frame compressing; incompressible frames took twice as long), and
 * the frame comes in two pieces that are concatenated, leaving zlib's output buffer of
 * `chunkSize` bytes to the garbage collector. Here the frame is a view of that buffer from
 * its start, which its last consumer may free at once (released-buffers.ts). (Compressed in
 * one call, libzstd 1.5.7 splits the blocks finely; the frame's declared content size still
 * bounds its output for the restore's frame reader.)
 */
function compressWhole(data: Buffer, params: Record<number, number>, endFrame: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const stream = zlib.createZstdCompress({ chunkSize: Math.max(MIN_CHUNK_BYTES, compressBound(data.length)), pledgedSrcSize: data.length, flush: endFrame, params });
    const pieces: Buffer[] = [];
    stream.on('data', (piece: Buffer) => pieces.push(piece));
    stream.on('error', (error) => reject(codecError(error)));
    // The write's callback comes once zlib has consumed all of it and pushed what it made
    // (the streaming decoder below relies on the same order).
    stream.write(data, (error) => {
      stream.destroy();
      if (error) reject(codecError(error));
      else resolve(releasable(joined(pieces)));
    });
  });
}

/** The pieces as one buffer: a view when they lie side by side in one buffer from its start, else a copy. */
function joined(pieces: readonly Buffer[]): Buffer {
  const first = pieces[0];
  if (first === undefined) return Buffer.alloc(0);
  let end = first.byteOffset;
  for (const piece of pieces) {
    if (piece.buffer !== first.buffer || piece.byteOffset !== end) return Buffer.concat(pieces);
    end += piece.length;
  }
  return Buffer.from(first.buffer, first.byteOffset, end - first.byteOffset);
}

/** ZSTD_compressBound (zstd.h): the largest frame `size` bytes can compress to. */
function compressBound(size: number): number {
  const small = 128 * 1024;
  return size + (size >>> 8) + (size < small ? (small - size) >>> 11 : 0);
}

function streamingDecoder(frame: StreamedFrame, windowLogMaxParam: number): StreamingFrameDecoder {
  const stream = zlib.createZstdDecompress({
    chunkSize: STREAM_CHUNK_BYTES,
    params: { [windowLogMaxParam]: Math.max(10, Math.ceil(Math.log2(frame.windowSize))) },
  });
  let failure: Error | undefined;
  stream.on('error', (error) => (failure ??= codecError(error)));
  // Flowing: each output chunk is handed over as zlib pushes it, before the callback of the
  // write that produced it (the stream's buffer stays empty, so nothing waits in it).
  // A chunk that fills zlib's output buffer is its own (zlib takes a new one for what
  // follows); a shorter one shares it with the next.
  let output: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => output.push(chunk.byteLength === chunk.buffer.byteLength ? releasable(chunk) : chunk));
  const taken = (): Buffer[] => {
    const chunks = output;
    output = [];
    return chunks;
  };
  const settled = (done: (callback: (error?: Error | null) => void) => void): Promise<void> =>
    new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(codecError(error));
      stream.once('error', onError);
      done((error) => {
        stream.off('error', onError);
        if (error) reject(codecError(error));
        else resolve();
      });
    });

  return {
    async push(bytes, final) {
      if (failure !== undefined) throw failure;
      // A write's callback comes once zlib has consumed all of it and pushed what it decoded;
      // `end`'s once the frame is finished (libzstd has checked the checksum by then).
      await settled((callback) => stream.write(bytes, callback));
      if (final) await settled((callback) => stream.end(() => callback()));
      if (failure !== undefined) throw failure;
      return taken();
    },
    close() {
      output = [];
      stream.destroy();
    },
  };
}
