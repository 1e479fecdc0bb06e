// The files (device and inode) of more than one name a walk has met, to count each one's
// content once (`tenants list`, `backup --dry-run`). Held as numbers in open-addressed
// tables outside the heap, one a device, not as a `dev:ino` string in a Set: a tenant copied
// with `cp -al` has a file of two names for every file, and 1,000,000 of them held a string
// and a Set entry each on the heap, which V8 let grow to a few times that before it collected
// (273-390 MiB peak). Here a file takes 8 bytes of a table at most half full (16-32 bytes).
// A device and an inode are numbers as `fs.lstat` gives them (exact below 2^53), which is
// what the strings were made of; an inode past that is held by its exact `dev:ino` aside.

/** Slots of a device's table at first (a power of two). */
const FIRST_SLOTS = 1024;

export class SeenInodes {
  private readonly devices = new Map<number, InodeTable>();
  /** The files whose inode number is past 2^53, by their exact `dev:ino` (decimal): rare, so kept plainly. */
  private readonly beyondExact = new Set<string>();

  /**
   * Records the file; whether it was not there before (the first of its names met). A file
   * whose inode number is past 2^53 (not exact: another file's may round to it) is told by
   * `exact`, its `dev:ino` from a bigint lstat, as a backup tells it (link-targets.ts); without
   * that it is never there.
   */
  add(dev: number, ino: number, exact?: string): boolean {
    if (!Number.isSafeInteger(ino)) {
      if (exact === undefined) return true;
      if (this.beyondExact.has(exact)) return false;
      this.beyondExact.add(exact);
      return true;
    }
    let table = this.devices.get(dev);
    if (table === undefined) {
      table = new InodeTable();
      this.devices.set(dev, table);
    }
    return table.add(ino);
  }

  get size(): number {
    let size = this.beyondExact.size;
    for (const table of this.devices.values()) size += table.size;
    return size;
  }
}

/** One device's inodes: linear probing in a table at most half full; an empty slot holds NaN. */
class InodeTable {
  private slots = emptySlots(FIRST_SLOTS);
  size = 0;

  add(ino: number): boolean {
    if ((this.size + 1) * 2 > this.slots.length) this.grow();
    const seen = placeIn(this.slots, ino);
    if (!seen) this.size++;
    return !seen;
  }

  private grow(): void {
    const old = this.slots;
    this.slots = emptySlots(old.length * 2);
    for (const ino of old) if (!Number.isNaN(ino)) placeIn(this.slots, ino);
  }
}

function emptySlots(count: number): Float64Array {
  return new Float64Array(count).fill(Number.NaN);
}

/** Puts the inode in its slot or the first empty one after it; whether it was there already. */
function placeIn(slots: Float64Array, ino: number): boolean {
  const mask = slots.length - 1;
  for (let slot = hashOf(ino) & mask; ; slot = (slot + 1) & mask) {
    const held = slots[slot]!;
    if (held === ino) return true;
    if (Number.isNaN(held)) {
      slots[slot] = ino;
      return false;
    }
  }
}

/** Mixes the inode's two 32-bit halves (a multiply by an odd number keeps consecutive inodes in distinct slots). */
function hashOf(ino: number): number {
  const hash = Math.imul((ino >>> 0) ^ Math.imul(Math.floor(ino / 0x100000000) >>> 0, 0x85ebca6b), 0x9e3779b1);
  return (hash ^ (hash >>> 16)) >>> 0;
}
