// The limits a restore enforces that a user may raise (`--max-entries`, `--max-bytes`):
// apart from the extractor so that the CLI's flags and the request parsers can name the
// defaults without loading it.

import { formatBytes, groupThousands } from '../format.js';

export interface ExtractLimits {
  /** Most entries (files, directories, links) one archive may hold. */
  readonly maxEntries: number;
  /** Most bytes of file content one archive may unpack to. */
  readonly maxBytes: number;
}

export const DEFAULT_LIMITS: ExtractLimits = {
  maxEntries: 2_000_000,
  maxBytes: 256 * 1024 ** 3,
};

/**
 * What a restore reads of an archive's manifest, which it holds whole (its bytes, and where
 * each directory lies in them) until the tree is checked: a version 2 manifest is ~110 bytes
 * and one object per directory (and one per note), so these bound it before it is parsed. At
 * the default --max-entries they are what every earlier version read (32 MiB, 262,144 objects
 * and arrays, 2,097,152 values); a larger --max-entries raises the bytes and objects in
 * proportion, the values by 3 for each object more (valuesBeside) (the memory
 * a hostile manifest can take grows with the entries the reader allowed, as the path table's
 * does), up to MOST_MANIFEST_LIMITS at 16 times the default.
 */
export interface ManifestLimits {
  readonly bytes: number;
  /** Objects and arrays: a version 1 entry or version 2 directory is one, and so is a note. */
  readonly containers: number;
  /** Values in objects and arrays (counted by their separators). */
  readonly values: number;
}

export const DEFAULT_MANIFEST_LIMITS: ManifestLimits = { bytes: 32 * 1024 * 1024, containers: 256 * 1024, values: 2 * 1024 * 1024 };
/**
 * The most any --max-entries lets a restore read: 16 times the defaults' objects (2^22, reached
 * at --max-entries 32,000,000), and 511 MiB of JSON, which stays a string V8 can hold (2^29 - 24
 * characters) when a manifest has to be parsed whole. Was 8 times (2^21 objects, 256 MiB): the
 * check for a path listed twice packed its indices in 21 bits (manifest.ts firstListedTwice
 * takes any count now), so a backup of more than ~2,097,000 directories failed.
 */
export const MOST_MANIFEST_LIMITS: ManifestLimits = { bytes: 511 * 1024 * 1024, containers: 4 * 1024 * 1024, values: valuesBeside(4 * 1024 * 1024) };

/**
 * Values a manifest of `containers` objects and arrays may hold past the defaults: the default's
 * 2,097,152 and 3 more for each object past its 262,144 (a directory is one object of 3 values
 * with its separator, a note one of 2). Not 8 a container as at the defaults (version 1's
 * entries, written only within them): each value is memory JSON.parse makes, and 16,777,152
 * short strings (the 8 times) parsed into 1.7 GiB, 7,602,176 (this at 2^21) into less than half.
 */
function valuesBeside(containers: number): number {
  return DEFAULT_MANIFEST_LIMITS.values + 3 * Math.max(0, containers - DEFAULT_MANIFEST_LIMITS.containers);
}

/** The manifest limits a reader given `maxEntries` enforces (see ManifestLimits). */
export function manifestLimits(maxEntries: number): ManifestLimits {
  if (maxEntries <= DEFAULT_LIMITS.maxEntries) return DEFAULT_MANIFEST_LIMITS;
  const scaled = (key: 'bytes' | 'containers') => Math.min(MOST_MANIFEST_LIMITS[key], Math.floor((DEFAULT_MANIFEST_LIMITS[key] * maxEntries) / DEFAULT_LIMITS.maxEntries));
  const containers = scaled('containers');
  return { bytes: scaled('bytes'), containers, values: valuesBeside(containers) };
}

/**
 * The least --max-entries whose manifest limits take a manifest of this size: undefined when the
 * defaults do, Infinity when none does (past MOST_MANIFEST_LIMITS).
 */
export function entriesToReadManifest(size: ManifestLimits): number | undefined {
  const fits = (limits: ManifestLimits) => size.bytes <= limits.bytes && size.containers <= limits.containers && size.values <= limits.values;
  if (fits(DEFAULT_MANIFEST_LIMITS)) return undefined;
  if (!fits(MOST_MANIFEST_LIMITS)) return Infinity;
  const containersForValues = DEFAULT_MANIFEST_LIMITS.containers + Math.max(0, (size.values - DEFAULT_MANIFEST_LIMITS.values) / 3);
  const ratio = Math.max(size.bytes / DEFAULT_MANIFEST_LIMITS.bytes, size.containers / DEFAULT_MANIFEST_LIMITS.containers, containersForValues / DEFAULT_MANIFEST_LIMITS.containers);
  let entries = Math.max(DEFAULT_LIMITS.maxEntries + 1, Math.ceil(ratio * DEFAULT_LIMITS.maxEntries) - 1);
  while (!fits(manifestLimits(entries))) entries++;
  return entries;
}

/** `bytes` (more than `limit`) as a size that reads as more than it: exact bytes where both round to one size. */
function moreBytesThan(bytes: number, limit: number): string {
  return formatBytes(bytes) === formatBytes(limit) ? `${groupThousands(bytes)} bytes` : formatBytes(bytes);
}

/**
 * What a backup says when its archive holds more than a restore and `verify` take by default:
 * stored whole, it restores only with the limit raised, which whoever restores it has to know
 * before, not learn from a refusal. `entries` are the tar entries a restore counts (the
 * manifest's own included), `bytes` the content it unpacks to.
 */
export function beyondDefaultLimits(entries: number, bytes: number, manifest?: { readonly directories: number; readonly entriesToRead: number | undefined }): string | undefined {
  const manifestEntries = manifest?.entriesToRead ?? 0;
  const over = [
    ...(entries > DEFAULT_LIMITS.maxEntries ? [`${groupThousands(entries)} entries (the default --max-entries is ${groupThousands(DEFAULT_LIMITS.maxEntries)})`] : []),
    ...(manifestEntries > DEFAULT_LIMITS.maxEntries ? [`a manifest of ${groupThousands(manifest!.directories)} directories (by default a restore reads ${groupThousands(DEFAULT_MANIFEST_LIMITS.containers)} directories and notes, ${formatBytes(DEFAULT_MANIFEST_LIMITS.bytes)})`] : []),
    ...(bytes > DEFAULT_LIMITS.maxBytes ? [`${moreBytesThan(bytes, DEFAULT_LIMITS.maxBytes)} of content (the default --max-bytes is ${formatBytes(DEFAULT_LIMITS.maxBytes)})`] : []),
  ];
  if (over.length === 0) return undefined;
  const maxEntries = Math.max(entries, manifestEntries);
  const flags = [...(maxEntries > DEFAULT_LIMITS.maxEntries ? [`--max-entries ${maxEntries}`] : []), ...(bytes > DEFAULT_LIMITS.maxBytes ? [`--max-bytes ${bytes}`] : [])];
  return `the archive holds ${over.join(' and ')}, more than restore and verify take by default: give them ${flags.join(' ')} (or more)`;
}

/**
 * Deepest an entry may lie below the tenant root: node-tar's default maxDepth
 * (CVE-2024-28863). Not a flag: a backup leaves out what lies deeper, so every backup restores.
 */
export const MAX_ENTRY_DEPTH = 1024;
