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
 * Below an open hash's cost with room to spare: a string of this many bytes and the few
 * pieces it was appended from take under half of it.
 */
export const UNHASHED_BYTES = 256;
/** A fresh SHA-256 state's chaining words, as `String` writes them. */
const INITIAL_WORDS = String(new ResumableSha256().save().h);

interface OpenDirectory {
  /** Made when `unhashed` passes UNHASHED_BYTES. */
  hash: ResumableSha256 | Hash | undefined;
  /** The records not in `hash` yet, one character per byte (latin1). */
  unhashed: string;
  entries: number;
  /** Had an entry of its own. */
  listed: boolean;
}

export class TreeDigest {
  private readonly directories = new Map<string, OpenDirectory>();
  private readonly resumable: boolean;
  /** The directory the last entry went into (entries come directory by directory): no lookup for its siblings. */
  private lastParentPath: string | undefined;
  private lastParent: OpenDirectory | undefined;
  /** File records not hashed yet, all of one directory's (`pendingFor`). */
  private pending = Buffer.allocUnsafe(PENDING_BYTES);
  private pendingLength = 0;
  private pendingFor: OpenDirectory | undefined;

  constructor(options: TreeDigestOptions = {}) {
    this.resumable = options.resumable === true;
  }

  /** A resumable digest that goes on from `state` (from `save`). */
  static resume(state: TreeDigestState): TreeDigest {
    const digest = new TreeDigest({ resumable: true });
    for (const { path, entries, listed, hash } of state.directories) {
      // Under one block the state is the bytes themselves, the chaining words untouched.
      const bytes = hash.length < 64 && String(hash.h) === INITIAL_WORDS ? Buffer.from(hash.pending, 'base64') : undefined;
      digest.directories.set(
        path,
        bytes !== undefined && bytes.length === hash.length
          ? { hash: undefined, unhashed: bytes.toString('latin1'), entries, listed }
          : { hash: new ResumableSha256(hash), unhashed: '', entries, listed },
      );
    }
    return digest;
  }

  save(): TreeDigestState {
    if (!this.resumable) throw new Error('TreeDigest.save: this digest was not made resumable');
    this.flush();
    return {
      directories: [...this.directories].map(([path, open]) => ({
        path,
        entries: open.entries,
        listed: open.listed,
        hash: ((open.hash as ResumableSha256 | undefined) ?? new ResumableSha256().update(Buffer.from(open.unhashed, 'latin1'))).save(),
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
    parent.entries++;
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
    if (this.pendingFor !== undefined && this.pendingLength > 0) this.update(this.pendingFor, this.pending.subarray(0, this.pendingLength));
    this.pendingLength = 0;
    this.pendingFor = undefined;
  }

  /** Adds `entry` to its parent's digest; a directory also starts a digest of its own. A directory met twice counts once. */
  add(entry: TreeEntry): void {
    if (entry.type === 'file') return this.addFile(entry.path, entry.size, entry.sha256);
    this.flush();
    if (entry.type === 'directory') {
      const own = this.directory(entry.path);
      if (own.listed) return;
      own.listed = true;
      if (entry.path === '') return;
    }
    const slash = entry.path.lastIndexOf('/');
    const parent = this.parentOf(entry.path, slash);
    const name = entry.path.slice(slash + 1);
    parent.entries++;
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
    for (const [path, open] of this.directories) digests.push({ path, entries: open.entries, sha256: hexOf(open) });
    return digests;
  }

  /**
   * Takes `path`'s digest out (undefined when no entry was in or under it): a restore checks
   * its manifest directory by directory, letting each go, rather than holding a second list of
   * every directory's digest and a map of them beside the manifest (`remaining` is left).
   */
  take(path: string): DirectoryDigest | undefined {
    this.flush();
    const open = this.directories.get(path);
    if (open === undefined) return undefined;
    this.directories.delete(path);
    if (open === this.lastParent) {
      this.lastParentPath = undefined;
      this.lastParent = undefined;
    }
    return { path, entries: open.entries, sha256: hexOf(open) };
  }

  /** The directories not taken yet, in the order first met. */
  remaining(): IterableIterator<string> {
    return this.directories.keys();
  }

  /** How many directories' records are in a hash of their own (the rest are kept as bytes). */
  get hashesOpen(): number {
    let open = 0;
    for (const directory of this.directories.values()) if (directory.hash !== undefined) open++;
    return open;
  }

  /** Adds `bytes` to `open`'s records: kept as they are while few, else hashed. */
  private update(open: OpenDirectory, bytes: Buffer): void {
    if (open.hash !== undefined) {
      open.hash.update(bytes);
      return;
    }
    if (open.unhashed.length + bytes.length <= UNHASHED_BYTES) {
      open.unhashed += bytes.toString('latin1');
      return;
    }
    const hash = this.resumable ? new ResumableSha256() : createHash('sha256');
    hash.update(Buffer.from(open.unhashed, 'latin1'));
    hash.update(bytes);
    open.hash = hash;
    open.unhashed = '';
  }

  /** The directory holding `path`, whose last slash is at `slash`. */
  private parentOf(path: string, slash: number): OpenDirectory {
    const last = this.lastParentPath;
    if (last !== undefined && slash === last.length && path.startsWith(last)) return this.lastParent!;
    const parentPath = slash === -1 ? '' : path.slice(0, slash);
    const parent = this.directory(parentPath);
    this.lastParentPath = parentPath;
    this.lastParent = parent;
    return parent;
  }

  private directory(path: string): OpenDirectory {
    let open = this.directories.get(path);
    if (open === undefined) {
      open = { hash: undefined, unhashed: '', entries: 0, listed: false };
      this.directories.set(path, open);
    }
    return open;
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

const NOT_ASCII = /[^\x00-\x7f]/;

/** The digest so far, leaving the directory able to take more. */
function hexOf({ hash, unhashed }: OpenDirectory): string {
  // Text of bytes up to 0x7F is its own UTF-8: hashed as it is, without a Buffer a directory.
  if (hash === undefined) return sha256Hex(NOT_ASCII.test(unhashed) ? Buffer.from(unhashed, 'latin1') : unhashed);
  return hash instanceof ResumableSha256 ? hash.hex() : hash.copy().digest('hex');
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
