// The zstd codec of Node 20, which has no zstd of its own: optional packages. Whole frames go
// to libzstd through @mongodb-js/zstd (a napi-rs addon: prebuilt per platform, on the
// thread pool; it only takes whole buffers). Frames too large for that are decoded by
// fzstd's pure-JS streaming decoder, which steps over the content checksum unread, so the
// decoder hashes what it yields itself (xxhash-wasm, one 64-bit hash state per frame) and
// compares at the frame's end. fzstd and xxhash-wasm are loaded on first use: most restores
// never stream a frame.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

import { releasable } from '../released-buffers.js';
import type { CodecChoice, StreamingFrameDecoder } from './zstd-codec.js';

interface NativeZstd {
  compress(data: Buffer, level: number): Promise<Buffer>;
  decompress(data: Buffer): Promise<Buffer>;
}

interface StreamingTools {
  readonly Decompress: typeof import('fzstd').Decompress;
  readonly xxhash: Awaited<ReturnType<typeof import('xxhash-wasm').default>>;
}

/** @mongodb-js/zstd with fzstd for large frames, or why the addon cannot be loaded here. */
export function addonZstdCodec(): CodecChoice {
  let native: NativeZstd;
  try {
    native = loadNative();
  } catch (error) {
    return { unavailable: `the optional package @mongodb-js/zstd cannot be loaded (${firstLine(error)})` };
  }
  let tools: Promise<StreamingTools> | undefined;
  return {
    name: '@mongodb-js/zstd',
    compressFrame: (data, level) => native.compress(data, level).then(releasable),
    decodeWholeFrame: (frame) =>
      native.decompress(frame).then(releasable, (error: unknown) => {
        // libzstd's words for a checksum that does not match, put as the other codecs put them.
        if (error instanceof Error && /doesn't match checksum/.test(error.message)) {
          throw new Error(`content checksum mismatch (${error.message})`, { cause: error });
        }
        throw error;
      }),
    async streamingDecoder(frame) {
      tools ??= loadStreamingTools();
      return fzstdDecoder(frame.hasChecksum, await tools);
    },
  };
}

/**
 * The package's napi bindings. Not its index.js (1.2.2), which calls them without the level,
 * so every frame would be level 3 whatever was asked. On glibc Linux, the platform package
 * its bindings.js would pick, loaded directly: bindings.js asks `process.report` whether the
 * C library is musl, which costs ~5 ms of every backup's start-up (7.0-8.8 against 1.6-1.7 ms
 * to load).
 */
function loadNative(): NativeZstd {
  const load = createRequire(import.meta.url);
  const { platform, arch } = process;
  const glibcLinux = platform === 'linux' && (arch === 'x64' || arch === 'arm64') && !existsSync(`/lib/ld-musl-${arch === 'arm64' ? 'aarch64' : 'x86_64'}.so.1`);
  if (glibcLinux) {
    try {
      return load(`@mongodb-js/zstd-linux-${arch}-gnu`) as NativeZstd;
    } catch {
      // Not installed here: bindings.js looks in its other places.
    }
  }
  return load('@mongodb-js/zstd/bindings.js') as NativeZstd;
}

async function loadStreamingTools(): Promise<StreamingTools> {
  try {
    const [{ Decompress }, { default: xxhashWasm }] = await Promise.all([import('fzstd'), import('xxhash-wasm')]);
    return { Decompress, xxhash: await xxhashWasm() };
  } catch (error) {
    throw new Error(`the optional packages fzstd and xxhash-wasm, which decode large frames on this Node, cannot be loaded (${firstLine(error)})`, { cause: error });
  }
}

function fzstdDecoder(hasChecksum: boolean, tools: StreamingTools): StreamingFrameDecoder {
  const hash = hasChecksum ? tools.xxhash.create64() : undefined;
  const output: Buffer[] = [];
  const decoder = new tools.Decompress((chunk) => {
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
            throw new Error(`content checksum mismatch: the frame records ${hex(stored)}, its content hashes to ${hex(computed)}`);
          }
        }
      } catch (error) {
        output.length = 0;
        return Promise.reject(error as Error);
      }
      return Promise.resolve(output.splice(0));
    },
    close() {
      output.length = 0;
    },
  };
}

function hex(value: number | undefined): string {
  if (value === undefined) return 'nothing';
  return `0x${value.toString(16).padStart(8, '0')}`;
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}
