// The zstd codec behind one seam, so it can be replaced (by Node 24's zlib zstd, for
// instance) without touching the framing (zstd-encoder.ts, zstd-decoder.ts). Frames are
// compressed whole by libzstd (@mongodb-js/zstd) on the thread pool, and decoded one of two
// ways:
// - `decodeWholeFrame`: a complete frame handed to libzstd on the thread pool, for frames the
//   walker has bounded to a few MiB in and out;
// - `StreamingFrameDecoder`: any larger frame, pushed in slices that end next to block
//   boundaries and decoded by fzstd's pure-JS streaming decoder, so memory stays bounded by
//   the frame's window whatever the frame decodes to.
// Both keep one promise: a frame that carries a content checksum (the low 32 bits of the
// XXH64 of its content, RFC 8878 §3.1.1) is verified before its end is reported. libzstd
// does that itself; fzstd skips the checksum unread, so the streaming decoder hashes what it
// yields (xxhash-wasm, one 64-bit hash state per frame) and compares at the frame's end.
// Failures are plain Errors: the walker wraps them with the frame's offset.

import { createRequire } from 'node:module';
import { Decompress } from 'fzstd';
import type { XXHashAPI } from 'xxhash-wasm';

interface NativeZstd {
  compress(data: Buffer, level: number): Promise<Buffer>;
  decompress(data: Buffer): Promise<Buffer>;
}

// The package's index.js (1.2.2) calls the binding without the level, so every frame would be
// level 3 whatever was asked; its napi bindings take the level.
const nativeZstd = createRequire(import.meta.url)('@mongodb-js/zstd/bindings.js') as NativeZstd;

/** One frame holding `data`, with its content size and without a checksum (libzstd's defaults). */
export function compressFrame(data: Buffer, level: number): Promise<Buffer> {
  return nativeZstd.compress(data, level);
}

/** Decodes one complete frame; rejects on damage, a content checksum mismatch included. */
export function decodeWholeFrame(frame: Buffer): Promise<Buffer> {
  return nativeZstd.decompress(frame);
}

/** Decodes one frame pushed piece by piece; `push` returns what those bytes decoded to. */
export interface StreamingFrameDecoder {
  /**
   * `bytes` continue the frame (the first push starts at its magic number). With `final`,
   * they end it, its checksum field included, and the checksum is verified.
   */
  push(bytes: Buffer, final: boolean): Buffer[];
}

/** Makes the streaming decoder of one frame; `hasChecksum` says whether its header announced a checksum. */
export type StreamingDecoderFactory = (frame: { readonly hasChecksum: boolean }) => StreamingFrameDecoder;

let streamingFactory: Promise<StreamingDecoderFactory> | undefined;

/**
 * The streaming decoder factory, once what it needs (a small WebAssembly module, loaded on
 * first use: most restores never stream a frame) is compiled; once per process.
 */
export function streamingFrameDecoders(): Promise<StreamingDecoderFactory> {
  streamingFactory ??= import('xxhash-wasm')
    .then(({ default: xxhash }) => xxhash())
    .then((api) => (frame) => fzstdDecoder(frame.hasChecksum, api));
  return streamingFactory;
}

function fzstdDecoder(hasChecksum: boolean, api: XXHashAPI): StreamingFrameDecoder {
  const hash = hasChecksum ? api.create64() : undefined;
  const output: Buffer[] = [];
  const decoder = new Decompress((chunk) => {
    if (chunk.length === 0) return;
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    hash?.update(bytes);
    output.push(bytes);
  });
  return {
    push(bytes, final) {
      // fzstd steps over the checksum field without reading it.
      const stored = final && hash !== undefined && bytes.length >= 4 ? bytes.readUInt32LE(bytes.length - 4) : undefined;
      try {
        decoder.push(bytes, final);
        if (final && hash !== undefined) {
          const computed = Number(hash.digest() & 0xffffffffn);
          if (computed !== stored) {
            throw new Error(
              `content checksum mismatch: the frame records ${hex(stored)}, its content hashes to ${hex(computed)}`,
            );
          }
        }
      } catch (error) {
        output.length = 0;
        throw error;
      }
      return output.splice(0);
    },
  };
}

function hex(value: number | undefined): string {
  if (value === undefined) return 'nothing';
  return `0x${value.toString(16).padStart(8, '0')}`;
}
