// Holes in restored files. A tar entry stores a sparse file's holes as zeros (ours: backup
// cannot tell a hole from written zeros), so a 20 GiB disk image holding a few KiB of data
// would be written back as 20 GiB and no longer fit the disk that held it. Long runs of zeros
// are therefore not written: the file is written at positions past them (and extended to its
// size at the end), and reads them back as zeros all the same, as `cp --sparse=auto` and GNU
// tar's sparse extraction leave them. Short runs are written, so an ordinary file is not cut
// into fragments. Pure: the writers (sync, writer threads, network) do the calls it plans.

/** Runs of zeros at least this long are left unwritten (a hole). */
export const HOLE_MIN_BYTES = 64 * 1024;
/** Content is judged in cells of this size, aligned to the file's own offsets (a file system's block). */
const CELL_BYTES = 4096;
/**
 * Cells are first looked at this many at a time: a span of them that reads as zeros is one
 * step, as that many zero cells would be (one compare, not 16, for a run of zeros).
 */
const SPAN_BYTES = 16 * CELL_BYTES;
const ZEROS = Buffer.alloc(SPAN_BYTES);

/** Where one file's content goes, call by call: what to write, at which offset. */
export interface HoleWrites {
  /** Write `bytes[from, from + length)` at file offset `position`. */
  data(from: number, length: number, position: number): void;
  /** Write `length` zero bytes at `position` (a short run of zeros that began in an earlier piece of content). */
  zeros(length: number, position: number): void;
}

/**
 * Follows one file's content as it arrives in pieces and plans its writes, leaving runs of
 * HOLE_MIN_BYTES zeros or more unwritten. A run that ends a piece is held back until the next
 * piece shows whether it is long enough; `endsInHole` tells the writer, after the last
 * piece, to extend the file to its size (ftruncate), which also covers held-back zeros.
 */
export class HolePlanner {
  /** File offset of the next byte to arrive. */
  private position = 0;
  /** Zero bytes just before `position` that were neither written nor skipped yet. */
  private heldZeros = 0;

  constructor(private readonly minHole = HOLE_MIN_BYTES) {}

  /** Bytes received so far: the file's size once the last piece has arrived. */
  get size(): number {
    return this.position;
  }

  /** Whether the file's last bytes were not written: it must be extended to `size`. */
  get endsInHole(): boolean {
    return this.heldZeros > 0;
  }

  plan(bytes: Uint8Array, writes: HoleWrites): void {
    const start = this.position;
    let dataFrom = -1; // start (in `bytes`) of the run being kept for writing
    let zeroFrom = 0; // start (in `bytes`) of the current run of zeros; its held part lies before 0
    let zeroLength = this.heldZeros; // the current run of zeros, held part included
    let held = this.heldZeros;
    for (let at = 0; at < bytes.length; ) {
      const cellEnd = Math.min(bytes.length, at + CELL_BYTES - ((start + at) % CELL_BYTES));
      const spanEnd = Math.min(bytes.length, at + SPAN_BYTES - ((start + at) % CELL_BYTES));
      const zeroSpan = spanEnd > cellEnd && isZero(bytes, at, spanEnd);
      const end = zeroSpan ? spanEnd : cellEnd;
      if (zeroSpan || isZero(bytes, at, end)) {
        if (zeroLength === 0) zeroFrom = at;
        zeroLength += end - at;
      } else if (zeroLength > 0) {
        if (zeroLength >= this.minHole) {
          if (dataFrom !== -1) writes.data(dataFrom, zeroFrom - dataFrom, start + dataFrom);
          dataFrom = at;
        } else {
          if (held > 0) writes.zeros(held, start - held);
          if (dataFrom === -1) dataFrom = zeroFrom;
        }
        zeroLength = 0;
        held = 0;
      } else if (dataFrom === -1) {
        dataFrom = at;
      }
      at = end;
    }
    const dataTo = zeroLength > 0 ? zeroFrom : bytes.length;
    if (dataFrom !== -1 && dataTo > dataFrom) writes.data(dataFrom, dataTo - dataFrom, start + dataFrom);
    this.heldZeros = zeroLength;
    this.position = start + bytes.length;
  }
}

/**
 * A restored file whose pieces a HolePlanner plans as they come, into `writes`, which take the
 * data from `bytes`, the piece being planned (the synchronous writer and the writer threads'
 * sinks: the network writer awaits its writes instead).
 */
export abstract class PlannedFile {
  protected readonly holes = new HolePlanner();
  /** The piece being planned (a view of the current chunk). */
  protected bytes: Buffer | undefined;
  protected abstract readonly writes: HoleWrites;

  get size(): number {
    return this.holes.size;
  }

  write(bytes: Buffer): undefined {
    this.bytes = bytes;
    this.holes.plan(bytes, this.writes);
    this.bytes = undefined;
    return undefined;
  }
}

function isZero(bytes: Uint8Array, from: number, to: number): boolean {
  if (bytes[from] !== 0 || bytes[to - 1] !== 0) return false;
  return ZEROS.compare(bytes, from, to, 0, to - from) === 0;
}
