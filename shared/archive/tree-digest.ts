// What a manifest records about the tree, and what restore recomputes from the entries it
// extracted: one SHA-256 per directory over its direct children, in archive order. A child
// is a record of NUL-terminated fields (no name or link target can hold a NUL, and the type
// fixes the field count, so records never run together):
//   file       "f" name size sha256-of-content
//   directory  "d" name
//   symlink    "l" name target
//   hard link  "h" name target-path   (a later name of a file archived under an earlier one)
// Names and targets are hashed as their bytes (UTF-8, or raw where not: raw-name.ts).
// A tree of 200,000 small files costs a few hundred digests instead of 200,000 entries.
// The digests so far can be saved and taken up again (`save`, `TreeDigest.resume`): a backup
// that continues in another invocation goes on hashing where the last one stopped. Only a
// digest made `resumable` can be saved: it hashes in JavaScript (resumable-sha256.ts), since
// node:crypto's hash state cannot be exported; any other uses node:crypto, several times
// faster. Both give the same digests.
// A directory's records are kept as bytes until they pass UNHASHED_BYTES, and only then go
// into a hash: an open node:crypto Hash costs ~800 bytes of RSS however little it holds
// (its JavaScript object, its native wrapper, OpenSSL's context), and a backup or restore
// keeps every directory's open to the end. 100,000 empty directories held ~80 MiB of them.
// The bytes of every directory lie in shared blocks, its counts in typed arrays (TreeDigest).

import * as crypto from 'node:crypto';
import { createHash, type Hash } from 'node:crypto';

import { hasRawBytes, rawName } from '../raw-name.js';
import { ResumableSha256, type Sha256State } from './resumable-sha256.js';

export type TreeEntry =
  | { readonly path: string; readonly type: 'file'; readonly size: number; readonly sha256: string }
  | { readonly path: string; readonly type: 'directory' }
  | { readonly path: string; readonly type: 'symlink'; readonly target: string }
  | { readonly path: string; readonly type: 'hardlink'; readonly target: string };

export interface DirectoryDigest {
  /** Relative to the tenant root; '' is the root. */
  readonly path: string;
  /** How many direct children the directory holds. */
  readonly entries: number;
  readonly sha256: string;
}

/** Directory digests read by index, as a manifest's are (manifest.ts ManifestDirectories). */
export interface DirectoryList extends Iterable<DirectoryDigest> {
  readonly length: number;
  at(index: number): DirectoryDigest | undefined;
}

/** The digests so far, JSON-safe: each directory in the order first met. */
export interface TreeDigestState {
  readonly directories: readonly { readonly path: string; readonly entries: number; readonly listed: boolean; readonly hash: Sha256State }[];
}

export interface TreeDigestOptions {
  /** Whether `save` will be called: the digests are then hashed so that they can be. @default false */
  readonly resumable?: boolean;
}

const DIGEST_BYTES = 32;
/** File records hashed at a time: ~100 small files' worth. */
const PENDING_BYTES = 16 * 1024;
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');
/**
 * Record bytes a directory keeps unhashed: past them its records go into a hash of its own.
 * Below an open hash's cost with room to spare.
 */
export const UNHASHED_BYTES = 256;
/** A fresh SHA-256 state's chaining words, as `String` writes them. */
const INITIAL_WORDS = String(new ResumableSha256().save().h);
/** `recordLength` of a directory whose records went into a hash of its own (`hashes`). */
const HASHED = 0xffff;
/** Bytes of one block of the record store: every directory's unhashed records lie in one block. */
const BLOCK_BYTES = 256 * 1024;
const NO_DIRECTORY = -1;
const EMPTY = Buffer.alloc(0);

/**
 * Every open directory is a number, its fields in typed arrays and its unhashed records in
 * blocks of bytes shared by all, rather than an object, a string of its records and a Map
 * value each: 200,000 directories of two files held ~300 bytes of heap and ~500 of RSS each
 * that way (stop 50; 1,000,001 directories: a backup 909 MiB, a restore 832 MiB).
 */
export class TreeDigest {
  /** Each directory's number, in the order first met (a Map iterates in insertion order). */
  private readonly directories = new Map<string, number>();
  private count = 0;
  /** Per directory number: direct children. */
  private entries = new Float64Array(1024);
  /** Per directory number: 1 once it had an entry of its own. */
  private listed = new Uint8Array(1024);
  /** Per directory number: where its records lie (block × BLOCK_BYTES + offset), how many, and room there. */
  private recordsAt = new Float64Array(1024);
  private recordLength = new Uint16Array(1024);
  private recordRoom = new Uint16Array(1024);
  /** The directories whose records passed UNHASHED_BYTES, by number. */
  private readonly hashes = new Map<number, ResumableSha256 | Hash>();
  private readonly blocks: Buffer[] = [];
  /** Bytes used of the last block. */
  private blockUsed = BLOCK_BYTES;
  private readonly resumable: boolean;
  /** The directory the last entry went into (entries come directory by directory): no lookup for its siblings. */
  private lastParentPath: string | undefined;
  private lastParent = NO_DIRECTORY;
  /** File records not hashed yet, all of one directory's (`pendingFor`). */
  private pending = Buffer.allocUnsafe(PENDING_BYTES);
  private pendingLength = 0;
  private pendingFor = NO_DIRECTORY;

  constructor(options: TreeDigestOptions = {}) {
    this.resumable = options.resumable === true;
  }

  /** A resumable digest that goes on from `state` (from `save`). */
  static resume(state: TreeDigestState): TreeDigest {
    const digest = new TreeDigest({ resumable: true });
    for (const { path, entries, listed, hash } of state.directories) {
      const at = digest.directory(path);
      digest.entries[at] = entries;
      digest.listed[at] = listed ? 1 : 0;
      // Under one block the state is the bytes themselves, the chaining words untouched.
      const bytes = hash.length < 64 && String(hash.h) === INITIAL_WORDS ? Buffer.from(hash.pending, 'base64') : undefined;
      if (bytes !== undefined && bytes.length === hash.length && bytes.length <= UNHASHED_BYTES) digest.append(at, bytes);
      else {
        digest.hashes.set(at, new ResumableSha256(hash));
        digest.recordLength[at] = HASHED;
      }
    }
    return digest;
  }

  save(): TreeDigestState {
    if (!this.resumable) throw new Error('TreeDigest.save: this digest was not made resumable');
    this.flush();
    return {
      directories: [...this.directories].map(([path, at]) => ({
        path,
        entries: this.entries[at]!,
        listed: this.listed[at] === 1,
        hash: ((this.hashes.get(at) as ResumableSha256 | undefined) ?? new ResumableSha256().update(this.records(at))).save(),
      })),
    };
  }

  /** `add` of a file entry, without the entry object. */
  addFile(path: string, size: number, sha256: string): void {
    const at = this.fileRecordStart(path, size, sha256.length * 3);
    this.pendingLength = at + this.pending.write(sha256, at, 'utf8');
    this.pending[this.pendingLength++] = 0;
  }

  /** `addFile` with the content's SHA-256 as the 32 bytes at `digestAt` in `digest` (no hex string per file). */
  addFileDigest(path: string, size: number, digest: Uint8Array, digestAt: number): void {
    let at = this.fileRecordStart(path, size, 2 * DIGEST_BYTES);
    const { pending } = this;
    for (let i = digestAt; i < digestAt + DIGEST_BYTES; i++) {
      const byte = digest[i]!;
      pending[at++] = HEX_DIGITS[byte >> 4]!;
      pending[at++] = HEX_DIGITS[byte & 15]!;
    }
    pending[at++] = 0;
    this.pendingLength = at;
  }

  /**
   * Writes a file record up to its digest ("f" name size, each NUL-terminated) into the
   * parent's pending bytes, with room left for `digestBytes` and a NUL; returns where the
   * digest goes. Records are hashed in batches (`flush`): one hash update per many files
   * rather than a string and an update per file.
   */
  private fileRecordStart(path: string, size: number, digestBytes: number): number {
    const slash = path.lastIndexOf('/');
    const parent = this.parentOf(path, slash);
    this.entries[parent] = this.entries[parent]! + 1;
    const name = path.slice(slash + 1);
    // Room for the record at its longest: name in UTF-8 (at most 3 bytes per UTF-16 unit), a size, the digest, NULs.
    const longest = 1 + 1 + name.length * 3 + 1 + 24 + 1 + digestBytes + 1;
    if (parent !== this.pendingFor || this.pendingLength + longest > this.pending.length) {
      this.flush();
      this.pendingFor = parent;
    }
    if (longest > this.pending.length) this.pending = Buffer.allocUnsafe(longest); // a name no file system allows: from an archive
    const { pending } = this;
    let at = this.pendingLength;
    pending[at++] = 0x66; // "f"
    pending[at++] = 0;
    at = writeUtf8(pending, at, name);
    pending[at++] = 0;
    at = writeDecimal(pending, at, size);
    pending[at++] = 0;
    return at;
  }

  /** Hashes the pending file records into their directory's digest. */
  private flush(): void {
    if (this.pendingFor !== NO_DIRECTORY && this.pendingLength > 0) this.update(this.pendingFor, this.pending.subarray(0, this.pendingLength));
    this.pendingLength = 0;
    this.pendingFor = NO_DIRECTORY;
  }

  /** Adds `entry` to its parent's digest; a directory also starts a digest of its own. A directory met twice counts once. */
  add(entry: TreeEntry): void {
    if (entry.type === 'file') return this.addFile(entry.path, entry.size, entry.sha256);
    this.flush();
    if (entry.type === 'directory') {
      const own = this.directory(entry.path);
      if (this.listed[own] === 1) return;
      this.listed[own] = 1;
      if (entry.path === '') return;
    }
    const slash = entry.path.lastIndexOf('/');
    const parent = this.parentOf(entry.path, slash);
    const name = entry.path.slice(slash + 1);
    this.entries[parent] = this.entries[parent]! + 1;
    // A name not UTF-8 is hashed as its bytes (raw-name.ts): hashed as UTF-8 text, each of its
    // bad bytes would be U+FFFD's, and two names that differ in them would hash alike.
    const record = (text: string): Buffer => (hasRawBytes(text) ? rawName(text) : Buffer.from(text, 'utf8'));
    switch (entry.type) {
      case 'directory':
        this.update(parent, record(`d\0${name}\0`));
        break;
      case 'symlink':
        this.update(parent, record(`l\0${name}\0${entry.target}\0`));
        break;
      case 'hardlink':
        this.update(parent, record(`h\0${name}\0${entry.target}\0`));
        break;
    }
  }

  /** Every directory that was listed or holds an entry, in the order first met. */
  digests(): DirectoryDigest[] {
    this.flush();
    const digests: DirectoryDigest[] = [];
    for (const [path, at] of this.directories) digests.push({ path, entries: this.entries[at]!, sha256: this.hexOf(at) });
    return digests;
  }

  /**
   * Every directory's digest as `digests` has them, each made when it is read (`at`), not held:
   * a backup's manifest is written from it a piece at a time, where the array of 200,000
   * digest objects (each with its hex string) had been ~150 bytes a directory at its end.
   * Holds the paths in order; valid while no entry is added.
   */
  directoryList(): DirectoryList {
    this.flush();
    const paths = [...this.directories.keys()];
    const numbers = Uint32Array.from(this.directories.values());
    return {
      length: paths.length,
      at: (index) => (index >= 0 && index < paths.length ? { path: paths[index]!, entries: this.entries[numbers[index]!]!, sha256: this.hexOf(numbers[index]!) } : undefined),
      *[Symbol.iterator]() {
        for (let index = 0; index < paths.length; index++) yield this.at(index)!;
      },
    };
  }

  /**
   * Takes `path`'s digest out (undefined when no entry was in or under it): a restore checks
   * its manifest directory by directory, letting each go, rather than holding a second list of
   * every directory's digest and a map of them beside the manifest (`remaining` is left).
   */
  take(path: string): DirectoryDigest | undefined {
    this.flush();
    const at = this.directories.get(path);
    if (at === undefined) return undefined;
    const digest = { path, entries: this.entries[at]!, sha256: this.hexOf(at) };
    this.directories.delete(path);
    this.hashes.delete(at);
    if (at === this.lastParent) {
      this.lastParentPath = undefined;
      this.lastParent = NO_DIRECTORY;
    }
    return digest;
  }

  /** The directories not taken yet, in the order first met. */
  remaining(): IterableIterator<string> {
    return this.directories.keys();
  }

  /** How many directories' records are in a hash of their own (the rest are kept as bytes). */
  get hashesOpen(): number {
    return this.hashes.size;
  }

  /** Adds `bytes` to directory `at`'s records: kept as they are while few, else hashed. */
  private update(at: number, bytes: Buffer): void {
    const length = this.recordLength[at]!;
    if (length === HASHED) {
      this.hashes.get(at)!.update(bytes);
      return;
    }
    if (length + bytes.length <= UNHASHED_BYTES) {
      this.append(at, bytes);
      return;
    }
    const hash = this.resumable ? new ResumableSha256() : createHash('sha256');
    hash.update(this.records(at));
    hash.update(bytes);
    this.hashes.set(at, hash);
    this.recordLength[at] = HASHED;
  }

  /** Directory `at`'s unhashed records (a view: valid until the next append). */
  private records(at: number): Buffer {
    const length = this.recordLength[at]!;
    if (length === 0) return EMPTY;
    const where = this.recordsAt[at]!;
    const offset = where % BLOCK_BYTES;
    return this.blocks[(where - offset) / BLOCK_BYTES]!.subarray(offset, offset + length);
  }

  /**
   * Appends `bytes` (at most UNHASHED_BYTES with what is there) to directory `at`'s records:
   * in place where there is room (its own, or the last block's free bytes right after it), else
   * moved to the last block's end with room for twice as many (what it leaves is not reused: at
   * most ~UNHASHED_BYTES a directory, only one whose records come apart).
   */
  private append(at: number, bytes: Buffer): void {
    if (bytes.length === 0) return;
    const length = this.recordLength[at]!;
    const needed = length + bytes.length;
    let where = this.recordsAt[at]!;
    const room = this.recordRoom[at]!;
    if (needed > room) {
      const lastBlock = (this.blocks.length - 1) * BLOCK_BYTES;
      if (room > 0 && where + room === lastBlock + this.blockUsed && this.blockUsed + needed - room <= BLOCK_BYTES) {
        // The last thing in the last block: grows where it is.
        this.blockUsed += needed - room;
        this.recordRoom[at] = needed;
      } else {
        const newRoom = room === 0 ? needed : Math.min(UNHASHED_BYTES, Math.max(needed, 2 * room));
        if (this.blockUsed + newRoom > BLOCK_BYTES) {
          this.blocks.push(Buffer.allocUnsafeSlow(BLOCK_BYTES));
          this.blockUsed = 0;
        }
        const moved = (this.blocks.length - 1) * BLOCK_BYTES + this.blockUsed;
        if (length > 0) this.records(at).copy(this.blocks[this.blocks.length - 1]!, this.blockUsed);
        this.blockUsed += newRoom;
        this.recordsAt[at] = where = moved;
        this.recordRoom[at] = newRoom;
      }
    }
    const offset = where % BLOCK_BYTES;
    bytes.copy(this.blocks[(where - offset) / BLOCK_BYTES]!, offset + length);
    this.recordLength[at] = needed;
  }

  /** The digest so far of directory `at`, leaving it able to take more. */
  private hexOf(at: number): string {
    const hash = this.hashes.get(at);
    if (hash === undefined) return sha256Hex(this.records(at));
    return hash instanceof ResumableSha256 ? hash.hex() : hash.copy().digest('hex');
  }

  /** The directory holding `path`, whose last slash is at `slash`. */
  private parentOf(path: string, slash: number): number {
    const last = this.lastParentPath;
    if (last !== undefined && slash === last.length && path.startsWith(last)) return this.lastParent;
    const parentPath = slash === -1 ? '' : path.slice(0, slash);
    const parent = this.directory(parentPath);
    this.lastParentPath = parentPath;
    this.lastParent = parent;
    return parent;
  }

  /** Directory `path`'s number, a new one when it was not met before. */
  private directory(path: string): number {
    let at = this.directories.get(path);
    if (at === undefined) {
      at = this.count++;
      if (at === this.entries.length) this.grow();
      this.directories.set(path, at);
    }
    return at;
  }

  /** Twice the room in every per-directory array. */
  private grow(): void {
    const size = 2 * this.entries.length;
    const grown = <T extends Float64Array | Uint8Array | Uint16Array>(old: T, make: new (n: number) => T): T => {
      const next = new make(size);
      next.set(old);
      return next;
    };
    this.entries = grown(this.entries, Float64Array);
    this.listed = grown(this.listed, Uint8Array);
    this.recordsAt = grown(this.recordsAt, Float64Array);
    this.recordLength = grown(this.recordLength, Uint16Array);
    this.recordRoom = grown(this.recordRoom, Uint16Array);
  }
}

/** Writes `text` as UTF-8 at `at`; returns where it ends. ASCII byte by byte (Buffer.write costs more than a short name). */
function writeUtf8(target: Buffer, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0x7f) return hasRawBytes(text) ? at + rawName(text.slice(i)).copy(target, at) : at - i + target.write(text, at - i, 'utf8');
    target[at++] = code;
  }
  return at;
}

/** Writes `value` (a whole number ≥ 0, as `String(value)` has it) at `at`; returns where it ends. */
function writeDecimal(target: Buffer, at: number, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) return at + target.write(String(value), at, 'latin1');
  const start = at;
  do {
    target[at++] = 0x30 + (value % 10);
    value = Math.floor(value / 10);
  } while (value > 0);
  for (let low = start, high = at - 1; low < high; low++, high--) {
    const digit = target[low]!;
    target[low] = target[high]!;
    target[high] = digit;
  }
  return at;
}

/** The digests of `entries`, in archive order. */
export function digestTree(entries: Iterable<TreeEntry>): DirectoryDigest[] {
  const digest = new TreeDigest();
  for (const entry of entries) digest.add(entry);
  return digest.digests();
}

/**
 * SHA-256 in hex, in one call: `crypto.hash` (Node 20.12 and later) makes no Hash object,
 * whose native memory (~800 bytes) waits for a collection; a restore checking 200,000
 * directories made one each, 14-18 MiB of its peak RSS. Earlier Node takes `createHash`.
 * The restore hashes a file's content with it too when the content arrives in one piece (extract.ts).
 */
export const sha256Hex: (bytes: Buffer | string) => string =
  typeof (crypto as Partial<typeof crypto>).hash === 'function'
    ? (bytes) => crypto.hash('sha256', bytes, 'hex')
    : (bytes) => createHash('sha256').update(bytes).digest('hex');
