// The limits a restore enforces that a user may raise (`--max-entries`, `--max-bytes`):
// apart from the extractor so that the CLI's flags and the request parsers can name the
// defaults without loading it.

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
 * Deepest an entry may lie below the tenant root: node-tar's default maxDepth
 * (CVE-2024-28863). Not a flag: a backup leaves out what lies deeper, so every backup restores.
 */
export const MAX_ENTRY_DEPTH = 1024;
