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
export function beyondDefaultLimits(entries: number, bytes: number): string | undefined {
  const over = [
    ...(entries > DEFAULT_LIMITS.maxEntries ? [`${groupThousands(entries)} entries (the default --max-entries is ${groupThousands(DEFAULT_LIMITS.maxEntries)})`] : []),
    ...(bytes > DEFAULT_LIMITS.maxBytes ? [`${moreBytesThan(bytes, DEFAULT_LIMITS.maxBytes)} of content (the default --max-bytes is ${formatBytes(DEFAULT_LIMITS.maxBytes)})`] : []),
  ];
  if (over.length === 0) return undefined;
  const flags = [...(entries > DEFAULT_LIMITS.maxEntries ? [`--max-entries ${entries}`] : []), ...(bytes > DEFAULT_LIMITS.maxBytes ? [`--max-bytes ${bytes}`] : [])];
  return `the archive holds ${over.join(' and ')}, more than restore and verify take by default: give them ${flags.join(' ')} (or more)`;
}

/**
 * Deepest an entry may lie below the tenant root: node-tar's default maxDepth
 * (CVE-2024-28863). Not a flag: a backup leaves out what lies deeper, so every backup restores.
 */
export const MAX_ENTRY_DEPTH = 1024;
