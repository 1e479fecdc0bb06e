// Buffers a whole zstd frame is copied into (byte-queue.ts), used again once that frame has
// decoded. Every whole frame is copied, even one that lies in one input chunk: then no view
// outlives the chunk, which is freed as soon as it is consumed (released-buffers.ts). Why
// reuse them: input that arrives in small pieces makes every frame a copy; an age-encrypted
// archive reaches the decoder as 64 KiB chunks of plaintext (node:crypto allocates each), so
// a restore made one new ~1-2 MiB buffer per frame, ~300 of
// them for a 600 MiB tenant, each garbage as soon as its frame decoded and freed only at the
// next GC, and glibc kept the heap they had grown (peak RSS 193-220 MiB against 176-209 MiB
// for the same archive unencrypted). Reused, they stay the few the decoder has in flight.
//
// A buffer comes back only after the codec has finished with it (the caller releases it when
// the frame's decode settled), and only the pool's own buffers come back. What the pool
// keeps is bounded by `maxBytes` (the decoder's in-flight limit); a frame's failure leaves
// its buffer to the garbage collector.

/** Smallest buffer made: our frames hold 2 MiB before compression, so one fits any of ours. */
const MIN_BUFFER_BYTES = 2 * 1024 * 1024;

export class FramePool {
  private readonly free: Buffer[] = [];
  private freeBytes = 0;
  /** The buffers handed out and not yet taken back. */
  private readonly lent = new WeakSet<ArrayBufferLike>();

  constructor(private readonly maxBytes: number) {}

  /** A buffer of exactly `bytes` (a view of a pooled one, which may be larger). */
  acquire(bytes: number): Buffer {
    const index = this.free.findIndex((buffer) => buffer.length >= bytes);
    let buffer: Buffer;
    if (index === -1) {
      buffer = Buffer.allocUnsafeSlow(Math.max(bytes, MIN_BUFFER_BYTES));
    } else {
      buffer = this.free.splice(index, 1)[0]!;
      this.freeBytes -= buffer.length;
    }
    this.lent.add(buffer.buffer);
    return buffer.subarray(0, bytes);
  }

  /** Takes back a buffer `acquire` gave, once nothing reads it any more; anything else is ignored. */
  release(view: Buffer): void {
    const backing = view.buffer;
    // Only once: a second release of the same frame must not hand its buffer out twice.
    if (!this.lent.delete(backing) || this.freeBytes + backing.byteLength > this.maxBytes) return;
    this.free.push(Buffer.from(backing, 0, backing.byteLength));
    this.freeBytes += backing.byteLength;
  }
}
