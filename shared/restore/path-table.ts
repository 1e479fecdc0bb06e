// Every path an extraction has created, what it is, and (for a directory) the mode and time it
// gets at the end, held compactly: a restore of a million files keeps all of them to the end
// (duplicate names, hard-link and symlink targets, the final symlink check, directory
// attributes), so their cost per entry is its memory. An entry is its parent's id and its own
// name, never its whole path: ids index typed arrays, names are packed into one byte arena
// (each UTF-16 code unit as UTF-8 would encode it as a code point, lone surrogates of raw
// names included, so distinct names stay distinct), and one open-addressing table of ids finds
// (parent, name). About 30 bytes and the name's length per entry, where a Map of path strings
// to objects took ~100 (a V8 string per path and the Map's entry: 1M files peaked at 239 MiB).
// Nothing is ever removed, and a directory stays one: an id, once known, keeps its meaning.

import { randomInt } from 'node:crypto';

import { ArchiveLimitError } from '../errors.js';
import { formatBytes } from '../format.js';

export type PathKind = 'directory' | 'file' | 'symlink';

const DIRECTORY = 1;
const FILE = 2;
const SYMLINK = 3;
const KINDS: readonly PathKind[] = ['directory', 'directory', 'file', 'symlink'];

const INITIAL_ENTRIES = 1024;
const INITIAL_NAME_BYTES = 16 * 1024;
/** What `nameEnds` can address (and more than the default limits let names add up to: PATH_CHARACTERS_PER_ENTRY). */
const MAX_NAME_BYTES = 2 ** 32 - 1;
/** Code units turned into a string at a time (String.fromCharCode takes them as arguments). */
const DECODE_SLICE = 4096;

export class PathTable {
  /** The tenant root: a directory, with no name and no parent. */
  static readonly ROOT = 0;

  private count = 0;
  private parents = new Int32Array(INITIAL_ENTRIES);
  private hashes = new Int32Array(INITIAL_ENTRIES);
  /** Entry `id`'s name is `names[nameEnds[id - 1] .. nameEnds[id]]` (the root's is empty). */
  private nameEnds = new Uint32Array(INITIAL_ENTRIES);
  private kinds = new Uint8Array(INITIAL_ENTRIES);
  /** A directory's index in `modes`/`mtimes`, a symlink's in `targets`. */
  private details = new Int32Array(INITIAL_ENTRIES);
  private names = new Uint8Array(INITIAL_NAME_BYTES);
  /** Ids + 1 (0: free), at `hash & (slots.length - 1)` or the next free slot after it; at most half full. */
  private slots = new Int32Array(INITIAL_ENTRIES * 2);
  private directoryCount = 0;
  private modes = new Uint16Array(INITIAL_ENTRIES);
  private mtimes = new Float64Array(INITIAL_ENTRIES);
  private readonly targets: string[] = [];
  /** Per table, so that names chosen to collide in one restore's table do not in another's. */
  private readonly seed = randomInt(0x7fffffff);

  constructor() {
    this.append(-1, '', DIRECTORY, 0);
    this.details[PathTable.ROOT] = this.newDirectory(0o750, Number.NaN);
  }

  /** Entries held, the root included. */
  get size(): number {
    return this.count;
  }

  /** Bytes of memory the table holds (its arrays as allocated, not counting symlink targets). */
  get bytesHeld(): number {
    return (
      this.parents.byteLength +
      this.hashes.byteLength +
      this.nameEnds.byteLength +
      this.kinds.byteLength +
      this.details.byteLength +
      this.names.byteLength +
      this.slots.byteLength +
      this.modes.byteLength +
      this.mtimes.byteLength
    );
  }

  /** The entry `name` in directory `parent`, or -1. */
  child(parent: number, name: string): number {
    const hash = this.hash(parent, name);
    const mask = this.slots.length - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const id = this.slots[slot]! - 1;
      if (id < 0) return -1;
      if (this.hashes[id] === hash && this.parents[id] === parent && this.nameIs(id, name)) return id;
    }
  }

  /** The entry at the first `length` segments of a path below the root (the root for none), or -1. */
  find(segments: readonly string[], length = segments.length): number {
    let id = PathTable.ROOT;
    for (let index = 0; index < length && id >= 0; index++) id = this.child(id, segments[index]!);
    return id;
  }

  kind(id: number): PathKind {
    return KINDS[this.kinds[id]!]!;
  }

  addDirectory(parent: number, name: string, mode: number, mtimeMs: number): number {
    return this.append(parent, name, DIRECTORY, this.newDirectory(mode, mtimeMs));
  }

  /** A directory met again: the mode and time it gets are the later entry's. */
  setDirectoryAttributes(id: number, mode: number, mtimeMs: number): void {
    const index = this.details[id]!;
    this.modes[index] = mode;
    this.mtimes[index] = mtimeMs;
  }

  addFile(parent: number, name: string): number {
    return this.append(parent, name, FILE, 0);
  }

  addSymlink(parent: number, name: string, target: string): number {
    this.targets.push(target);
    return this.append(parent, name, SYMLINK, this.targets.length - 1);
  }

  /** A symlink's target. */
  target(id: number): string {
    return this.targets[this.details[id]!]!;
  }

  mode(id: number): number {
    return this.modes[this.details[id]!]!;
  }

  mtimeMs(id: number): number {
    return this.mtimes[this.details[id]!]!;
  }

  /** The directory holding `id` (-1 for the root). */
  parent(id: number): number {
    return this.parents[id]!;
  }

  /** The names from the root down to `id` (none for the root). */
  segments(id: number): string[] {
    const segments: string[] = [];
    for (; id !== PathTable.ROOT; id = this.parents[id]!) segments.push(this.name(id));
    return segments.reverse();
  }

  /** Every symlink's id, in the order they were added. */
  *symlinks(): Generator<number> {
    for (let id = 0; id < this.count; id++) if (this.kinds[id] === SYMLINK) yield id;
  }

  /** Every directory's id (the root's too), deepest first, each depth in the order added. */
  directoriesDeepestFirst(): Int32Array {
    // A parent is always added before its children, so depths fill in one pass.
    const depths = new Uint16Array(this.count);
    let deepest = 0;
    for (let id = 1; id < this.count; id++) {
      depths[id] = depths[this.parents[id]!]! + 1;
      if (this.kinds[id] === DIRECTORY && depths[id]! > deepest) deepest = depths[id]!;
    }
    const starts = new Int32Array(deepest + 2);
    for (let id = 0; id < this.count; id++) if (this.kinds[id] === DIRECTORY) starts[deepest - depths[id]! + 1]!++;
    for (let depth = 1; depth < starts.length; depth++) starts[depth]! += starts[depth - 1]!;
    const ordered = new Int32Array(this.directoryCount);
    for (let id = 0; id < this.count; id++) if (this.kinds[id] === DIRECTORY) ordered[starts[deepest - depths[id]!]!++] = id;
    return ordered;
  }

  private newDirectory(mode: number, mtimeMs: number): number {
    if (this.directoryCount === this.modes.length) {
      this.modes = grown(this.modes, this.modes.length * 2);
      this.mtimes = grown(this.mtimes, this.mtimes.length * 2);
    }
    this.modes[this.directoryCount] = mode;
    this.mtimes[this.directoryCount] = mtimeMs;
    return this.directoryCount++;
  }

  private append(parent: number, name: string, kind: number, detail: number): number {
    const id = this.count;
    if (id === this.parents.length) {
      const capacity = id * 2;
      this.parents = grown(this.parents, capacity);
      this.hashes = grown(this.hashes, capacity);
      this.nameEnds = grown(this.nameEnds, capacity);
      this.kinds = grown(this.kinds, capacity);
      this.details = grown(this.details, capacity);
    }
    if ((id + 1) * 2 > this.slots.length) this.rehash(this.slots.length * 2);
    const hash = this.hash(parent, name);
    this.parents[id] = parent;
    this.hashes[id] = hash;
    this.kinds[id] = kind;
    this.details[id] = detail;
    this.nameEnds[id] = this.encode(name, id === 0 ? 0 : this.nameEnds[id - 1]!);
    this.count++;
    if (parent >= 0) this.place(id, hash);
    return id;
  }

  private place(id: number, hash: number): void {
    const mask = this.slots.length - 1;
    let slot = hash & mask;
    while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
    this.slots[slot] = id + 1;
  }

  private rehash(slotCount: number): void {
    this.slots = new Int32Array(slotCount);
    for (let id = 1; id < this.count; id++) this.place(id, this.hashes[id]!);
  }

  /** Seeded and mixed per code unit (FNV-1a's multiply, then a shift), of the parent's id and the name. */
  private hash(parent: number, name: string): number {
    let hash = Math.imul(this.seed ^ parent, 0x9e3779b1);
    for (let index = 0; index < name.length; index++) {
      hash = Math.imul(hash ^ name.charCodeAt(index), 0x01000193);
      hash ^= hash >>> 15;
    }
    return hash;
  }

  /** Writes `name`'s code units from `start`; returns where they end. */
  private encode(name: string, start: number): number {
    const needed = start + name.length * 3;
    if (needed > MAX_NAME_BYTES) throw new ArchiveLimitError(`the archive's names add up to more than ${formatBytes(MAX_NAME_BYTES)}: refusing it`);
    if (needed > this.names.length) this.names = grown(this.names, Math.min(MAX_NAME_BYTES, Math.max(this.names.length * 2, needed)));
    const names = this.names;
    let at = start;
    for (let index = 0; index < name.length; index++) {
      const unit = name.charCodeAt(index);
      if (unit < 0x80) names[at++] = unit;
      else if (unit < 0x800) {
        names[at++] = 0xc0 | (unit >> 6);
        names[at++] = 0x80 | (unit & 0x3f);
      } else {
        names[at++] = 0xe0 | (unit >> 12);
        names[at++] = 0x80 | ((unit >> 6) & 0x3f);
        names[at++] = 0x80 | (unit & 0x3f);
      }
    }
    return at;
  }

  private nameIs(id: number, name: string): boolean {
    const names = this.names;
    let at = this.nameEnds[id - 1]!;
    const end = this.nameEnds[id]!;
    for (let index = 0; index < name.length; index++) {
      if (at >= end) return false;
      const unit = name.charCodeAt(index);
      if (unit < 0x80) {
        if (names[at++] !== unit) return false;
      } else if (unit < 0x800) {
        if (names[at] !== (0xc0 | (unit >> 6)) || names[at + 1] !== (0x80 | (unit & 0x3f))) return false;
        at += 2;
      } else {
        if (names[at] !== (0xe0 | (unit >> 12)) || names[at + 1] !== (0x80 | ((unit >> 6) & 0x3f)) || names[at + 2] !== (0x80 | (unit & 0x3f))) return false;
        at += 3;
      }
    }
    return at === end;
  }

  private name(id: number): string {
    const names = this.names;
    const end = this.nameEnds[id]!;
    const units: number[] = [];
    let text = '';
    for (let at = this.nameEnds[id - 1]!; at < end; ) {
      const lead = names[at]!;
      if (lead < 0x80) units.push(lead), at++;
      else if (lead < 0xe0) units.push(((lead & 0x1f) << 6) | (names[at + 1]! & 0x3f)), (at += 2);
      else units.push(((lead & 0x0f) << 12) | ((names[at + 1]! & 0x3f) << 6) | (names[at + 2]! & 0x3f)), (at += 3);
      if (units.length === DECODE_SLICE) text += String.fromCharCode(...units.splice(0));
    }
    return text + String.fromCharCode(...units);
  }
}

function grown<T extends Int32Array | Uint32Array | Uint16Array | Uint8Array | Float64Array>(array: T, capacity: number): T {
  const larger = new (array.constructor as new (length: number) => T)(capacity);
  larger.set(array);
  return larger;
}
