// Walks a tenant directory for backup: depth first, a directory before its children,
// names in byte order so archives are reproducible. Never follows a symlink. Leaves out
// what must not or cannot be archived, each with a reason: the ephemeral `pty/` tree,
// sockets, FIFOs and devices, symlinks whose target would resolve outside the tenant (so
// every backup is restorable), and files that vanish mid-walk (a vanished entry is both
// left out and warned about: the tenant changed under the backup).
//
// Each file comes with its directory's listing (`siblings`), so the archive writer can tell
// a SQLite database that has a `-wal`/`-shm`/`-journal` beside it from an idle one, whatever
// order the two are met in. (Byte order always puts `x.sqlite` before `x.sqlite-wal`: a
// name sorts before every name it is a prefix of.)

import { lstatSync, readlinkSync, promises as fs, type Stats } from 'node:fs';
import path from 'node:path';

import { isVanished, PARALLEL_ACCESS, type FileAccess } from '../file-access.js';
import { resolveInsideRoot } from '../restore/link-resolve.js';
import { MANIFEST_FILE_NAME, type ManifestNote } from '../archive/manifest.js';

/** Top-level directory of a tenant holding ephemeral terminal state: never backed up. */
export const EPHEMERAL_DIR = 'pty';

export type WalkItem =
  | { readonly kind: 'directory'; readonly relPath: string; readonly stat: Stats }
  | {
      readonly kind: 'file';
      readonly relPath: string;
      readonly absPath: string;
      /** The file's own name (last path segment). */
      readonly name: string;
      /** Every name in the file's directory when it was listed (one shared set per directory). */
      readonly siblings: ReadonlySet<string>;
      readonly stat: Stats;
    }
  | { readonly kind: 'symlink'; readonly relPath: string; readonly target: string; readonly stat: Stats };

/** Where the walk records what it leaves out. */
export interface WalkNotes {
  /** Left out of the archive, with the reason. */
  readonly skipped: ManifestNote[];
  /** Caveats about the backup: entries that vanished while it ran are noted here too. */
  readonly warnings: ManifestNote[];
}

/** Records an entry that disappeared between being listed and being read: skipped, and warned about. */
export function noteVanished(notes: WalkNotes, relPath: string): void {
  notes.skipped.push({ path: relPath, reason: 'vanished during backup' });
  notes.warnings.push({ path: relPath, reason: 'vanished during backup; not archived' });
}

/** A directory whose entry is archived but which vanished before its contents could be listed. */
function noteVanishedDirectory(notes: WalkNotes, relPath: string): void {
  notes.skipped.push({ path: relPath, reason: 'directory vanished during backup' });
  notes.warnings.push({ path: relPath, reason: 'directory vanished during backup; its contents are not archived' });
}

/** How many lstat calls one directory may have in flight. */
const STAT_CONCURRENCY = 64;

export async function* walkTenant(root: string, notes: WalkNotes, access: FileAccess = PARALLEL_ACCESS): AsyncGenerator<WalkItem> {
  const rootStat = await fs.lstat(root);
  yield { kind: 'directory', relPath: '', stat: rootStat };
  yield* walkDirectory(root, [], notes, access);
}

async function* walkDirectory(root: string, dirSegments: string[], notes: WalkNotes, access: FileAccess): AsyncGenerator<WalkItem> {
  const { skipped } = notes;
  const dirPath = path.join(root, ...dirSegments);
  let names: string[];
  try {
    const listed = access.readdir(dirPath);
    names = listed instanceof Promise ? await listed : listed;
  } catch (error) {
    if (isVanished(error)) {
      noteVanishedDirectory(notes, dirSegments.join('/'));
      return;
    }
    throw error;
  }
  sortByBytes(names);
  const siblings: ReadonlySet<string> = new Set(names);

  const atRoot = dirSegments.length === 0;
  const wanted = names.filter((name) => {
    if (atRoot && name === EPHEMERAL_DIR) {
      skipped.push({ path: EPHEMERAL_DIR, reason: 'ephemeral terminal state is never backed up' });
      return false;
    }
    if (atRoot && name === MANIFEST_FILE_NAME) {
      skipped.push({ path: name, reason: 'name reserved for the backup manifest' });
      return false;
    }
    return true;
  });

  for (let start = 0; start < wanted.length; start += STAT_CONCURRENCY) {
    const batch = wanted.slice(start, start + STAT_CONCURRENCY);
    const statted = access.lstatEach(batch.map((name) => path.join(dirPath, name)));
    const stats = statted instanceof Promise ? await statted : statted;
    for (let i = 0; i < batch.length; i++) {
      const name = batch[i]!;
      const stat = stats[i];
      const segments = [...dirSegments, name];
      const relPath = segments.join('/');
      if (stat === undefined) {
        noteVanished(notes, relPath);
        continue;
      }
      if (stat.isDirectory()) {
        yield { kind: 'directory', relPath, stat };
        yield* walkDirectory(root, segments, notes, access);
      } else if (stat.isFile()) {
        yield { kind: 'file', relPath, absPath: path.join(dirPath, name), name, siblings, stat };
      } else if (stat.isSymbolicLink()) {
        const item = symlinkItem(root, segments, stat, notes);
        if (item) yield item;
      } else {
        skipped.push({ path: relPath, reason: `${describeSpecial(stat)} cannot be archived` });
      }
    }
  }
}

function symlinkItem(root: string, segments: string[], stat: Stats, notes: WalkNotes): WalkItem | undefined {
  const relPath = segments.join('/');
  let target: string;
  try {
    target = readlinkSync(path.join(root, ...segments));
  } catch (error) {
    if (isVanished(error)) {
      noteVanished(notes, relPath);
      return undefined;
    }
    throw error;
  }
  if (resolveInsideRoot(segments.slice(0, -1), target, (at) => readLinkOnDisk(root, at)) === undefined) {
    notes.skipped.push({ path: relPath, reason: `symlink target ${JSON.stringify(target)} resolves outside the tenant` });
    return undefined;
  }
  return { kind: 'symlink', relPath, target, stat };
}

function readLinkOnDisk(root: string, segments: readonly string[]): string | undefined {
  const full = path.join(root, ...segments);
  try {
    return lstatSync(full).isSymbolicLink() ? readlinkSync(full) : undefined;
  } catch {
    return undefined; // a dangling component: nothing further to follow
  }
}

function describeSpecial(stat: Stats): string {
  if (stat.isSocket()) return 'socket';
  if (stat.isFIFO()) return 'FIFO';
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return 'device';
  return 'special file';
}

/**
 * Sorts names in the byte order of their UTF-8 encoding. JavaScript compares UTF-16 code
 * units, which agrees with it unless a name holds a character from U+D800 up (surrogate
 * pairs sort before U+E000-U+FFFF there): only then are the names encoded to compare.
 */
function sortByBytes(names: string[]): void {
  if (!names.some((name) => /[\ud800-\uffff]/.test(name))) {
    names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return;
  }
  const encoded = new Map(names.map((name) => [name, Buffer.from(name)]));
  names.sort((a, b) => Buffer.compare(encoded.get(a)!, encoded.get(b)!));
}
