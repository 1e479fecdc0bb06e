// The zstd codec behind one seam, chosen once per process, so the framing (zstd-encoder.ts,
// zstd-decoder.ts, zstd-frame-reader.ts) never knows which libzstd it talks to:
// - Node ≥ 22.15: node:zlib's zstd (zstd-codec-zlib.ts). Built in: nothing native ships,
//   which is what the Lambda functions (nodejs24.x) run.
// - Node 20: the optional packages @mongodb-js/zstd for whole frames and fzstd + xxhash-wasm
//   for large frames (zstd-codec-addon.ts).
// - Neither: every call fails with ModuleUnavailableError, which says what is missing; the
//   commands that compress nothing (list, help) still work.
//
// Every codec keeps the same promises:
// - `compressFrame`: one standard frame holding `data`, without a content checksum (the
//   manifest covers our archives), compressed off the main thread; node:zlib also records
//   the content size (it is pledged), @mongodb-js/zstd 1.2.2 does not;
// - `decodeWholeFrame`: a complete frame (the walker has bounded it to a few MiB in and out)
//   decoded at once off the main thread, with a window of at most 128 MiB (zstd's own
//   default limit), into at most `decodedBound` bytes and at most the content size the frame
//   declares (node:zlib: maxOutputLength; @mongodb-js/zstd decodes into a buffer of the
//   declared size): a frame holding more fails;
// - the buffers both return are their own, used by nobody else: the last consumer may free
//   them (released-buffers.ts);
// - `streamingDecoder`: one larger frame pushed in slices that end next to block boundaries,
//   each push answered with what those bytes decoded to, with a window of at most
//   `windowSize` (the walker refuses more than 8 MiB before asking);
// - a frame that carries a content checksum (the low 32 bits of the XXH64 of its content,
//   RFC 8878 §3.1.1) is verified before its end is reported, on either path;
// - failures are plain Errors (the walker wraps them with the frame's offset), except
//   ModuleUnavailableError.

import { ModuleUnavailableError } from '../errors.js';
import { addonZstdCodec } from './zstd-codec-addon.js';
import { zlibZstdCodec } from './zstd-codec-zlib.js';

export interface ZstdCodec {
  /** What it is built on, for logs and the benchmark: `node:zlib` or `@mongodb-js/zstd`. */
  readonly name: string;
  /** One frame holding `data` at `level`, without a checksum. */
  compressFrame(data: Buffer, level: number): Promise<Buffer>;
  /**
   * Decodes one complete frame that decodes to at most `decodedBound` bytes; rejects on
   * damage, a content checksum mismatch included.
   */
  decodeWholeFrame(frame: Buffer, decodedBound: number): Promise<Buffer>;
  /** The decoder of one frame too large to decode whole. */
  streamingDecoder(frame: StreamedFrame): Promise<StreamingFrameDecoder>;
}

/** What the walker read from a streamed frame's header. */
export interface StreamedFrame {
  /** Its header announces a content checksum. */
  readonly hasChecksum: boolean;
  /** The window it declares, already checked against the walker's limit. */
  readonly windowSize: number;
}

/** Decodes one frame pushed piece by piece. */
export interface StreamingFrameDecoder {
  /**
   * `bytes` continue the frame (the first push starts at its magic number); resolves to what
   * they decoded to. With `final`, they end it, its checksum field included, and the
   * checksum is verified.
   */
  push(bytes: Buffer, final: boolean): Promise<Buffer[]>;
  /** Frees what the decoder holds; for a frame abandoned before its end (harmless after it). */
  close(): void;
}

/** A codec, or why it cannot be had in this process. */
export type CodecChoice = ZstdCodec | { readonly unavailable: string };

let chosen: ZstdCodec | undefined;

/** The codec of this process: node:zlib where Node has zstd, else the optional packages. */
export function zstdCodec(): ZstdCodec {
  chosen ??= chooseCodec();
  return chosen;
}

function chooseCodec(): ZstdCodec {
  const builtIn = zlibZstdCodec();
  if (!('unavailable' in builtIn)) return builtIn;
  const addon = addonZstdCodec();
  if (!('unavailable' in addon)) return addon;
  return unavailableCodec(
    `zstd is not available: ${builtIn.unavailable}, and ${addon.unavailable} ` +
      '(Node 22.15 or later has zstd built in; on Node 20 reinstall with the optional dependencies)',
  );
}

function unavailableCodec(reason: string): ZstdCodec {
  const fail = () => Promise.reject(new ModuleUnavailableError(reason));
  return { name: 'unavailable', compressFrame: fail, decodeWholeFrame: fail, streamingDecoder: fail };
}
