// Large buffers handed down a pipeline to one last consumer, which frees their memory as soon
// as it is done with them instead of leaving it to the garbage collector.
//
// Each compressed frame of a backup and each decoded frame of a restore is a fresh buffer of
// about 2 MiB from the codec (zstd-codec.ts), used once. V8 frees such memory only when a
// collection finds the buffer dead, and it starts one for outside memory only every ~64 MiB:
// that garbage was 50-60 MiB of a large backup's peak RSS under Node 24 (and, freed late and
// out of order, it fragments malloc's heap). So the producer marks a buffer `releasable`
// when it hands it on and never touches it again, and the consumer that uses it last calls
// `release` once nothing reads it any more: ArrayBuffer.prototype.transfer detaches it and the
// memory goes back at once (Node 20 has it behind a V8 flag: stagedTransfer). A buffer nobody
// marked, or one a stage in between copied or merged (a stream may concatenate chunks), is
// left alone: `release` is always safe to call on any chunk, and a consumer that never calls
// it only leaves garbage, as before.

import v8 from 'node:v8';
import vm from 'node:vm';

const marked = new WeakSet<Uint8Array>();
/**
 * Smallest buffer marked: far above what Buffer.allocUnsafe takes from its shared 8 KiB pool
 * (at most 4 KiB), whose memory holds other buffers too; and smaller ones matter little.
 */
const MIN_RELEASABLE_BYTES = 64 * 1024;

type Transfer = (this: ArrayBuffer, newLength?: number) => ArrayBuffer;
const transfer = (ArrayBuffer.prototype as { transfer?: Transfer }).transfer ?? stagedTransfer();

/**
 * Node 20's V8 (11.3) has ArrayBuffer.prototype.transfer behind a flag: set at run time, it
 * takes effect in contexts created after, so a new context lends its function (which works on
 * any ArrayBuffer). Used only once it has been seen to detach a buffer; else undefined.
 */
function stagedTransfer(): Transfer | undefined {
  try {
    v8.setFlagsFromString('--harmony-rab-gsab-transfer');
    const staged = vm.runInNewContext('ArrayBuffer.prototype.transfer') as Transfer | undefined;
    if (typeof staged !== 'function') return undefined;
    const probe = new ArrayBuffer(8);
    const moved = staged.call(probe, 0);
    return probe.byteLength === 0 && moved.byteLength === 0 ? staged : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Marks `buffer` as freeable by its last consumer. Only for a buffer that is the one view
 * anyone will read of its memory (a codec's output), handed on by a producer that will not
 * read it again. Returns it.
 */
export function releasable<T extends Uint8Array>(buffer: T): T {
  if (buffer.byteOffset === 0 && buffer.byteLength >= MIN_RELEASABLE_BYTES && buffer.buffer instanceof ArrayBuffer) marked.add(buffer);
  return buffer;
}

/** Whether `chunk` is marked releasable (and not yet released). */
export function isReleasable(chunk: Uint8Array): boolean {
  return marked.has(chunk);
}

/** Frees the memory of `chunk` now if it was marked releasable (once); does nothing otherwise. */
export function release(chunk: Uint8Array): void {
  if (!marked.delete(chunk)) return;
  const memory = chunk.buffer as ArrayBuffer;
  try {
    transfer?.call(memory, 0);
  } catch {
    // Memory that cannot be detached (an addon's, say) waits for the collector.
  }
}
