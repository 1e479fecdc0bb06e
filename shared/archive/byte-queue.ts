// The input of the zstd decoder as it arrived: chunks not yet consumed, addressed by their
// offset in the whole stream, so frame and block headers can be read across chunk borders
// without copying, and a frame taken whole as one view when it lies in one chunk.

import { isReleasable, release } from '../released-buffers.js';

/**
 * Input bytes not yet consumed, kept as the chunks they arrived in. Positions are offsets in
 * the whole stream; `start` and `end` bound the bytes held.
 */
export class ByteQueue {
  private readonly chunks: Buffer[] = [];
  /** Stream offset just past each chunk. */
  private readonly ends: number[] = [];
  /** Index of the chunk the last lookup found: lookups mostly move forward. */
  private hint = 0;
  /** Releasable chunks wholly consumed since `releaseConsumed` last ran. */
  private consumed: Buffer[] = [];
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

  /**
   * Removes the bytes before `upTo` and returns them: a view if they lie in one chunk (unless
   * `copy`), else a copy, into a buffer from `allocate` when given.
   */
  take(upTo: number, allocate: (bytes: number) => Buffer = Buffer.allocUnsafe, copy = false): Buffer {
    const first = this.chunks[0]!;
    const firstStart = this.ends[0]! - first.length;
    let bytes: Buffer;
    if (upTo <= this.ends[0]! && !copy) {
      bytes = first.subarray(this.start - firstStart, upTo - firstStart);
    } else {
      bytes = allocate(upTo - this.start);
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
    for (let i = 0; i < drop; i++) if (isReleasable(this.chunks[i]!)) this.consumed.push(this.chunks[i]!);
    this.chunks.splice(0, drop);
    this.ends.splice(0, drop);
    this.hint = Math.max(0, this.hint - drop);
  }

  /**
   * Frees the chunks consumed so far whose last consumer this queue is (released-buffers.ts).
   * For when no view `take` returned of them is read any more.
   */
  releaseConsumed(): void {
    for (const chunk of this.consumed) release(chunk);
    this.consumed = [];
  }

  private chunkIndex(at: number): number {
    let index = this.hint;
    if (index >= this.chunks.length || this.ends[index]! - this.chunks[index]!.length > at) index = 0;
    while (this.ends[index]! <= at) index++;
    this.hint = index;
    return index;
  }
}
