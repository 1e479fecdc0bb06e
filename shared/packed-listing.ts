// A directory's listing held as one buffer of its names' bytes, an offset per name and a byte
// of type per name, not as a string and an object a name: a backup walks a directory of
// 1,000,000 files holding its whole listing in walk order, and with a string a name (and a
// Dirent, while it was read) it peaked at 307-343 MiB; V8 lets its heap grow to a few times
// what it last found alive, so what the listing keeps on the heap counts several times over.
// Here it takes about the names' bytes and 5 bytes a name, outside the heap. A listing of a
// few names (most directories) is kept as strings until it grows past PACK_AFTER: packing
// costs typed arrays of its own, which 100,000 small directories felt (0.3 s more CPU).

import { decodeRawName, hasRawBytes, rawByteLength, rawName } from './raw-name.js';

/**
 * What a listing tells of a name that is not a regular file (its d_type, or its lstat where
 * the file system gives none); 'untyped' where it tells nothing, for the caller to lstat.
 */
export type ListedType = 'directory' | 'symlink' | 'socket' | 'FIFO' | 'device' | 'special file' | 'untyped';

/** Type codes as kept, one byte a name: 0 is a regular file. */
const TYPES: readonly (ListedType | undefined)[] = [undefined, 'directory', 'symlink', 'socket', 'FIFO', 'device', 'special file', 'untyped'];

/** U+FFFD in UTF-8: what Node puts in place of bytes of a name that are not UTF-8. */
const REPLACEMENT = Buffer.from('\uFFFD');

/** How many names a listing keeps as strings before it packs them. */
const PACK_AFTER = 1024;

/** A character from U+D800 up, where JavaScript's order of strings is not their UTF-8 bytes' (surrogate pairs sort before U+E000-U+FFFF). */
const SORTS_DIFFERENTLY_IN_UTF8 = /[\ud800-\uffff]/;

/** What an empty packed listing holds, shared (never written: `add` grows each first). */
const NO_BYTES = Buffer.alloc(0);
const NO_STARTS = new Uint32Array(1);
const NO_TYPES = new Uint8Array(0);

export class PackedListing {
  /** The names while there are no more than PACK_AFTER, with their type codes; undefined once packed. */
  private few: { names: string[]; types: number[] } | undefined;
  private bytes = NO_BYTES;
  /** Where each name starts in `bytes`; one more than there are names, the last where the next would start. */
  private starts = NO_STARTS;
  private types = NO_TYPES;
  private count = 0;

  /** `packAfter`: how many names it keeps as strings before it packs them. */
  constructor(private readonly packAfter = PACK_AFTER) {
    if (packAfter > 0) this.few = { names: [], types: [] };
  }

  /** A listing of `names`, all regular files, in the order given. */
  static of(names: readonly string[]): PackedListing {
    const listing = new PackedListing();
    for (const name of names) listing.add(name, undefined);
    return listing;
  }

  /** How many names it holds. */
  get size(): number {
    return this.count;
  }

  /** Adds a name (a string as raw-name.ts holds names, or its bytes) of `type` (undefined: a regular file). */
  add(name: string | Uint8Array, type: ListedType | undefined): void {
    const code = type === undefined ? 0 : TYPES.indexOf(type);
    if (this.few !== undefined) {
      if (this.count < this.packAfter) {
        this.few.names.push(typeof name === 'string' ? name : decodeRawName(name));
        this.few.types.push(code);
        this.count++;
        return;
      }
      this.pack();
    }
    const at = this.count;
    if (at === this.types.length) this.growEntries();
    const start = this.starts[at]!;
    const length = typeof name === 'string' ? (hasRawBytes(name) ? this.append(rawName(name), start) : this.appendText(name, start)) : this.append(name, start);
    this.starts[at + 1] = start + length;
    this.types[at] = code;
    this.count = at + 1;
  }

  /** Moves the names kept as strings into the buffer. */
  private pack(): void {
    const { names, types } = this.few!;
    this.few = undefined;
    this.count = 0;
    this.starts = new Uint32Array(names.length * 2 + 1);
    this.types = new Uint8Array(names.length * 2);
    names.forEach((name, at) => this.add(name, TYPES[types[at]!]));
  }

  /** The `index`th name. */
  name(index: number): string {
    if (this.few !== undefined) return this.few.names[index]!;
    return decodeRawName(this.bytes, this.starts[index], this.starts[index + 1]);
  }

  /** The length in bytes of the `index`th name. */
  byteLength(index: number): number {
    if (this.few !== undefined) return rawByteLength(this.few.names[index]!);
    return this.starts[index + 1]! - this.starts[index]!;
  }

  /** The type of the `index`th name; undefined for a regular file. */
  type(index: number): ListedType | undefined {
    return TYPES[this.few === undefined ? this.types[index]! : this.few.types[index]!];
  }

  /** Every name, in order. */
  *names(): IterableIterator<string> {
    for (let index = 0; index < this.count; index++) yield this.name(index);
  }

  /** Whether a name holds U+FFFD, as one read as text does in place of bytes that are not UTF-8 (a name no call can open). */
  hasReplacedName(): boolean {
    if (this.few !== undefined) return this.few.names.some((name) => name.includes('\uFFFD'));
    return this.bytes.subarray(0, this.starts[this.count]).includes(REPLACEMENT);
  }

  /**
   * The same names in the byte order of their bytes (a name before every name it is a prefix of),
   * each once: a listing that gave a name twice (a FUSE or network file system's readdir) had
   * the entry, and all under it, walked and archived twice, and no restore takes a name twice.
   */
  sorted(): PackedListing {
    if (this.count < 2) return this; // most directories of a tree of many: no copy to make
    if (this.few !== undefined) return this.sortedFew(this.few);
    const { bytes, starts } = this;
    const order = new Uint32Array(this.count);
    for (let index = 0; index < order.length; index++) order[index] = index;
    order.sort((a, b) => {
      const aEnd = starts[a + 1]!;
      const bEnd = starts[b + 1]!;
      for (let i = starts[a]!, j = starts[b]!; i < aEnd && j < bEnd; i++, j++) {
        const difference = bytes[i]! - bytes[j]!;
        if (difference !== 0) return difference;
      }
      return aEnd - starts[a]! - (bEnd - starts[b]!);
    });
    const sorted = new PackedListing(0);
    sorted.bytes = Buffer.allocUnsafe(starts[this.count]!);
    sorted.starts = new Uint32Array(this.count + 1);
    sorted.types = new Uint8Array(this.count);
    let end = 0;
    let kept = 0;
    for (let at = 0; at < order.length; at++) {
      const index = order[at]!;
      if (kept > 0 && sorted.bytes.compare(bytes, starts[index], starts[index + 1], sorted.starts[kept - 1], end) === 0) continue;
      end += bytes.copy(sorted.bytes, end, starts[index], starts[index + 1]);
      sorted.starts[++kept] = end;
      sorted.types[kept - 1] = this.types[index]!;
    }
    sorted.count = kept;
    return sorted;
  }

  /** The index of `name` in a sorted listing (`sorted`); -1 if it holds no such name. */
  indexOf(name: string): number {
    if (this.few !== undefined) return this.few.names.indexOf(name);
    const wanted = rawName(name);
    let low = 0;
    let high = this.count - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const order = this.bytes.compare(wanted, 0, wanted.length, this.starts[middle], this.starts[middle + 1]);
      if (order === 0) return middle;
      if (order < 0) low = middle + 1;
      else high = middle - 1;
    }
    return -1;
  }

  private sortedFew({ names, types }: { names: string[]; types: number[] }): PackedListing {
    const order = names.map((_, at) => at);
    if (!names.some((name) => SORTS_DIFFERENTLY_IN_UTF8.test(name))) {
      order.sort((a, b) => (names[a]! < names[b]! ? -1 : names[a]! > names[b]! ? 1 : 0));
    } else {
      const encoded = names.map((name) => rawName(name));
      order.sort((a, b) => Buffer.compare(encoded[a]!, encoded[b]!));
    }
    const once = order.filter((at, position) => position === 0 || names[at] !== names[order[position - 1]!]);
    const sorted = new PackedListing(this.packAfter);
    sorted.few = { names: once.map((at) => names[at]!), types: once.map((at) => types[at]!) };
    sorted.count = once.length;
    return sorted;
  }

  private appendText(name: string, start: number): number {
    // A UTF-16 unit takes at most 3 bytes in UTF-8.
    this.reserve(start + name.length * 3);
    return this.bytes.write(name, start, 'utf8');
  }

  private append(bytes: Uint8Array, start: number): number {
    this.reserve(start + bytes.length);
    this.bytes.set(bytes, start);
    return bytes.length;
  }

  private reserve(needed: number): void {
    if (needed <= this.bytes.length) return;
    const grown = Buffer.allocUnsafe(Math.max(needed, this.bytes.length * 2));
    this.bytes.copy(grown, 0, 0, this.starts[this.count]);
    this.bytes = grown;
  }

  private growEntries(): void {
    const capacity = Math.max(16, this.types.length * 2);
    const starts = new Uint32Array(capacity + 1);
    starts.set(this.starts);
    const types = new Uint8Array(capacity);
    types.set(this.types);
    this.starts = starts;
    this.types = types;
  }
}
