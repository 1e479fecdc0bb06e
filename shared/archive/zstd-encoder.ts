// The writing side of our zstd framing. An archive is written as a sequence of independent
// frames, each holding `frameSize` bytes of input (standard zstd: `zstd -d` reads
// concatenated frames), compressed several at a time off the main thread by the process's
// codec (zstd-codec.ts) while the next one fills: frames compress in parallel, and frames of
// a few MiB compress whole, which every codec can. Memory stays near
// `concurrency * 2 * frameSize` whatever the input size.
//
// A writer can be suspended (`suspend`): the full frames are compressed and handed out, and
// the input of the unfinished frame is returned instead of compressed, so a writer created
// later with it as `pending` cuts the same frames: the compressed stream, in pieces, is the
// one an uninterrupted writer produces.

import { zstdCodec, type ZstdCodec } from './zstd-codec.js';
import { defaultConcurrency, integer, MiB, positiveInteger } from './zstd-format.js';

const DEFAULT_FRAME_SIZE = 2 * MiB;
const DEFAULT_LEVEL = 3;
/**
 * The first frame's buffer starts this small and doubles as it fills, up to `frameSize`: a
 * small archive (a tenant of a few files) needs a few KiB, not a whole frame. Thousands of
 * such archives in one process (`backup --all`) each allocating 2 MiB made V8 run a full
 * collection every few tenants (it starts one per ~64 MiB of memory outside its heap).
 */
const FIRST_FRAME_BYTES = 64 * 1024;

/**
 * Sources at least this long are copied by `copyBytes` in one call into C++ (Buffer's fill
 * with a buffer: one memcpy); shorter ones by TypedArray's set, which costs no such call.
 */
const NATIVE_COPY_BYTES = 4 * 1024;

/**
 * Copies `source` into `target` at `at` (`target` has the room). TypedArray's set from or
 * into a SharedArrayBuffer is V8's `relaxed_memmove`, a word at a time as if another thread
 * might write meanwhile: the backup copies small files' content out of the reader threads'
 * arenas (read-ahead.ts), the restore its decoded chunks into the buffer its writer threads
 * share (worker-tree-writer.ts), 1.7-2.3 % of a large backup's or restore's CPU; libc's
 * memcpy copies the same bytes in 0.4-0.7 of the time (docs/benchmarks.md, stop 47). In
 * both, no other thread touches those bytes during the copy.
 */
export function copyBytes(target: Buffer, at: number, source: Uint8Array): void {
  // (memcpy is for separate memory: a view of the target itself is copied by set, which allows overlap.)
  if (source.length >= NATIVE_COPY_BYTES && source.buffer !== target.buffer) target.fill(source, at, at + source.length);
  else target.set(source, at);
}

export interface CompressOptions {
  /** Bytes of input per frame: zstd -3 looks back 2 MiB anyway. @default 2 MiB */
  frameSize?: number;
  /** zstd compression level. @default 3 */
  level?: number;
  /** Frames compressing at once. @default the CPU budget (cpu-budget.ts) + 1 */
  concurrency?: number;
  /** @default the process's codec (zstd-codec.ts) */
  codec?: ZstdCodec;
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
  private readonly codec: ZstdCodec;
  private frame: Buffer | undefined;
  private filled = 0;
  /** Whether a full frame has been handed on: later frames are made at full size. */
  private emitted = false;
  private readonly queue: { compressed: Promise<Buffer>; input: Buffer }[] = [];
  private readonly spare: Buffer[] = [];
  private closed = false;
  private failure: { error: unknown } | undefined;
  private readonly stop = new AbortController();
  private wakeWriter: (() => void) | undefined;
  private wakeReader: (() => void) | undefined;

  /** `pending`: the unfinished frame's input a suspended writer returned (shorter than a frame). */
  constructor(options: CompressOptions = {}, pending?: Uint8Array) {
    this.frameSize = positiveInteger(options.frameSize ?? DEFAULT_FRAME_SIZE, 'frameSize');
    this.level = integer(options.level ?? DEFAULT_LEVEL, 'level');
    this.concurrency = positiveInteger(options.concurrency ?? defaultConcurrency(), 'concurrency');
    this.codec = options.codec ?? zstdCodec();
    if (pending !== undefined && pending.length > 0) {
      if (pending.length >= this.frameSize) throw new RangeError('a pending frame must be shorter than the frame size');
      this.frame = Buffer.allocUnsafe(this.frameSize);
      this.frame.set(pending);
      this.filled = pending.length;
    }
  }

  /** Copies `bytes` in. Returns a promise only when a full frame has to wait for room. */
  write(bytes: Uint8Array): Promise<void> | undefined {
    if (this.fits(bytes.length)) {
      copyBytes(this.frame!, this.filled, bytes);
      this.filled += bytes.length;
      return undefined;
    }
    return this.append(bytes.length, (frame, at, done, step) => copyBytes(frame, at, bytes.subarray(done, done + step)));
  }

  /** Appends `length` zero bytes. */
  zeros(length: number): Promise<void> | undefined {
    if (this.fits(length)) {
      Uint8Array.prototype.fill.call(this.frame!, 0, this.filled, this.filled + length);
      this.filled += length;
      return undefined;
    }
    return this.append(length, (frame, at, _done, step) => frame.fill(0, at, at + step));
  }

  /**
   * The frame being filled, if `length` more bytes fit into it without filling it, for a
   * caller that writes them there itself, from `filledTo` on, then calls `advance(length)`.
   */
  spaceFor(length: number): Buffer | undefined {
    return this.fits(length) ? this.frame : undefined;
  }

  /** Where the free space of the frame being filled starts. */
  get filledTo(): number {
    return this.filled;
  }

  /** Takes in `length` bytes written into the frame `spaceFor(length)` returned. */
  advance(length: number): void {
    if (!this.fits(length)) throw new RangeError('FrameWriter.advance past the space asked for');
    this.filled += length;
  }

  /** Whether `length` bytes go into the current frame without filling it (most writes: no closure, no frame change). */
  private fits(length: number): boolean {
    return this.frame !== undefined && this.failure === undefined && this.filled + length < this.frame.length;
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
        if (frame.length < this.frameSize) {
          this.grow();
          continue;
        }
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
      if (this.filled === frame.length) {
        if (frame.length < this.frameSize) this.grow();
        else await this.emit();
      }
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

  /**
   * Ends `frames()` after the full frames, without compressing the unfinished one: returns
   * its input (a copy), for a writer that goes on later (`pending`).
   */
  suspend(): Buffer {
    const pending = this.frame === undefined ? Buffer.alloc(0) : Buffer.from(this.frame.subarray(0, this.filled));
    this.frame = undefined;
    this.closed = true;
    this.wakeReader?.();
    return pending;
  }

  /** Fails both sides: a waiting writer, and the reader of `frames()`. The first reason wins. */
  abort(error: unknown): void {
    if (this.failure === undefined) {
      this.failure = { error };
      this.stop.abort(error);
    }
    this.wakeWriter?.();
    this.wakeReader?.();
  }

  /** Aborted, with the first reason, once the writer is (`abort`): for work feeding it that runs long between writes. */
  get signal(): AbortSignal {
    return this.stop.signal;
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
        if (head.input.length === this.frameSize && this.spare.length < this.concurrency) this.spare.push(head.input);
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
      this.frame = this.spare.pop() ?? Buffer.allocUnsafe(this.emitted ? this.frameSize : Math.min(FIRST_FRAME_BYTES, this.frameSize));
      this.filled = 0;
    }
    return this.frame;
  }

  /** Doubles the (full) first frame's buffer, up to `frameSize`. */
  private grow(): void {
    const larger = Buffer.allocUnsafe(Math.min(this.frame!.length * 2, this.frameSize));
    larger.set(this.frame!.subarray(0, this.filled));
    this.frame = larger;
  }

  private emit(): Promise<void> | undefined {
    const full = this.frame!;
    this.frame = undefined;
    this.emitted = true;
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
    const compressed = this.codec.compressFrame(frame, this.level);
    compressed.catch((error: unknown) => this.abort(error));
    this.queue.push({ compressed, input: frame });
    this.wakeReader?.();
  }
}
