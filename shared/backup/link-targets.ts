// The files of more than one name a backup has archived so far, by what tells each from
// every other file (link-key.ts), with the name it was archived under: a later name of the
// same file is archived as a hard link to that name. Held packed, outside the heap (four
// numbers an entry, the names' UTF-16 code units in one arena, an open-addressed table of
// entry numbers), not as a key string and a name string in a Map: a tenant copied with
// `cp -al` has every file of two names, and 1,000,000 of them held ~130 bytes of heap each,
// which V8 let grow to a few times that before it collected. A resumable backup's checkpoint
// keeps them as `[linkKey, name]` pairs, as before (`entries`, `fromEntries`).

import { linkKey, type LinkIdentity } from './link-key.js';

/** Entries, and slots of the table (twice as many), at first. */
const FIRST_ENTRIES = 256;
/** Code units of the names' arena at first. */
const FIRST_UNITS = 4096;
/** Code units turned into a string at a time (`String.fromCharCode` takes them as arguments). */
const UNITS_A_CALL = 4096;

export class LinkTargets {
  /** Per entry: inode, size, mtime, ctime. */
  private identities = new Float64Array(FIRST_ENTRIES * 4);
  /** Per entry: where its name starts in `units`, and its length. */
  private nameStarts = new Float64Array(FIRST_ENTRIES);
  private nameLengths = new Uint32Array(FIRST_ENTRIES);
  private units = new Uint16Array(FIRST_UNITS);
  private unitsUsed = 0;
  /** Entry number + 1 by the identity's hash (linear probing); 0 is an empty slot. */
  private slots = new Uint32Array(FIRST_ENTRIES * 2);
  private count = 0;
  /** The files whose inode number is past 2^53, by `linkKey` (of the exact number): rare, so kept plainly. */
  private readonly beyondExact = new Map<string, string>();

  static fromEntries(entries: readonly (readonly [string, string])[] | undefined): LinkTargets {
    const targets = new LinkTargets();
    for (const [key, name] of entries ?? []) {
      const identity = identityOfKey(key);
      // A key this version did not write can match no file it reads: the later names of that file are archived with their content.
      if (identity !== undefined) targets.set(identity, name);
    }
    return targets;
  }

  get size(): number {
    return this.count + this.beyondExact.size;
  }

  /** The name the file was archived under; undefined if it was not (or its inode number is not exact and no `exactIno` came: `isExact`). */
  get(file: LinkIdentity): string | undefined {
    if (!isExact(file)) return file.exactIno === undefined ? undefined : this.beyondExact.get(linkKey(file));
    const entry = this.find(file);
    return entry === undefined ? undefined : this.nameOf(entry);
  }

  /** Records the name the file was archived under (replacing an earlier one of the same file); not a file whose inode number is not exact and came without `exactIno`. */
  set(file: LinkIdentity, name: string): void {
    if (!isExact(file)) {
      if (file.exactIno !== undefined) this.beyondExact.set(linkKey(file), name);
      return;
    }
    let entry = this.find(file);
    if (entry === undefined) {
      if ((this.count + 1) * 2 > this.slots.length) this.grow();
      entry = this.count++;
      this.identities.set([file.ino, file.size, file.mtimeMs, file.ctimeMs], entry * 4);
      this.slots[this.emptySlotFor(file)] = entry + 1;
    }
    this.nameStarts[entry] = this.store(name);
    this.nameLengths[entry] = name.length;
  }

  /** `[linkKey, name]` (a checkpoint's form): in the order the files were first recorded, those of inode numbers past 2^53 last. */
  entries(): [string, string][] {
    const entries: [string, string][] = [];
    for (let entry = 0; entry < this.count; entry++) entries.push([linkKey(this.identityOf(entry)), this.nameOf(entry)]);
    entries.push(...this.beyondExact);
    return entries;
  }

  private find(file: LinkIdentity): number | undefined {
    const mask = this.slots.length - 1;
    for (let slot = hashOf(file) & mask; ; slot = (slot + 1) & mask) {
      const held = this.slots[slot]!;
      if (held === 0) return undefined;
      const at = (held - 1) * 4;
      const ids = this.identities;
      if (ids[at] === file.ino && ids[at + 1] === file.size && ids[at + 2] === file.mtimeMs && ids[at + 3] === file.ctimeMs) return held - 1;
    }
  }

  private emptySlotFor(file: LinkIdentity): number {
    const mask = this.slots.length - 1;
    let slot = hashOf(file) & mask;
    while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
    return slot;
  }

  /** Doubles the entries' room and the table, placing every entry again. */
  private grow(): void {
    const room = this.slots.length;
    this.identities = grown(this.identities, room * 4);
    this.nameStarts = grown(this.nameStarts, room);
    this.nameLengths = grown(this.nameLengths, room);
    this.slots = new Uint32Array(room * 2);
    for (let entry = 0; entry < this.count; entry++) this.slots[this.emptySlotFor(this.identityOf(entry))] = entry + 1;
  }

  /** Appends the name's code units to the arena; where they start. */
  private store(name: string): number {
    const start = this.unitsUsed;
    if (start + name.length > this.units.length) this.units = grown(this.units, Math.max(this.units.length * 2, start + name.length));
    for (let i = 0; i < name.length; i++) this.units[start + i] = name.charCodeAt(i);
    this.unitsUsed += name.length;
    return start;
  }

  private nameOf(entry: number): string {
    const start = this.nameStarts[entry]!;
    const end = start + this.nameLengths[entry]!;
    let name = '';
    for (let from = start; from < end; from += UNITS_A_CALL) name += String.fromCharCode(...this.units.subarray(from, Math.min(end, from + UNITS_A_CALL)));
    return name;
  }

  private identityOf(entry: number): LinkIdentity {
    const at = entry * 4;
    const ids = this.identities;
    return { ino: ids[at]!, size: ids[at + 1]!, mtimeMs: ids[at + 2]!, ctimeMs: ids[at + 3]! };
  }
}

/**
 * Whether the inode number is the file's own: `fs.stat` gives it as a number, exact below
 * 2^53 only. Past that (overlayfs with xino puts the layer's number in the top bits: inodes of
 * ~2^63, where neighbouring numbers round to one), two files can have one number and the same
 * size, mtime and ctime (timestamps of one clock tick, a tool's fixed mtime), and the later
 * one's names were archived as links to the other's content. Such a file is a link target
 * only by its exact number (`exactIno`, from a bigint stat of the handle it was read through);
 * without it, each of its names is archived with its content.
 */
function isExact(file: LinkIdentity): boolean {
  return Number.isSafeInteger(file.ino);
}

function grown<T extends Float64Array | Uint32Array | Uint16Array>(array: T, length: number): T {
  const bigger = new (array.constructor as new (length: number) => T)(length);
  bigger.set(array);
  return bigger;
}

/** The identity a checkpoint's key names, if it is one `linkKey` writes. */
function identityOfKey(key: string): LinkIdentity | undefined {
  const parts = key.split(':');
  if (parts.length !== 4) return undefined;
  const [ino, size, mtimeMs, ctimeMs] = parts.map(Number) as [number, number, number, number];
  const identity: LinkIdentity = Number.isSafeInteger(ino) || !/^[1-9][0-9]*$/.test(parts[0]!) ? { ino, size, mtimeMs, ctimeMs } : { ino, exactIno: parts[0]!, size, mtimeMs, ctimeMs };
  return linkKey(identity) === key ? identity : undefined;
}

const bits = new Float64Array(1);
const bitsAsWords = new Uint32Array(bits.buffer);

/** Mixes the 32-bit halves of the four numbers: a file archived in many versions (written to between its names) spreads over the table too. */
function hashOf(file: LinkIdentity): number {
  let hash = 0x811c9dc5;
  for (const value of [file.ino, file.size, file.mtimeMs, file.ctimeMs]) {
    bits[0] = value;
    hash = Math.imul(hash ^ bitsAsWords[0]!, 0x9e3779b1);
    hash = Math.imul(hash ^ bitsAsWords[1]!, 0x85ebca6b);
  }
  return (hash ^ (hash >>> 15)) >>> 0;
}
