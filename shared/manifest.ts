// The manifest: the last entry of every archive we write. It names the tenant and the tool,
// lists every entry with what restore must find (type, size, mode, mtime, SHA-256 or link
// target) and records what the backup left out and why. Restore checks the extracted tree
// against it before anything is committed; a parse failure here is a corrupt archive.

import { CorruptArchiveError } from './errors.js';

export const MANIFEST_FORMAT = 'openclawmu-tenant-backup';
export const MANIFEST_FORMAT_VERSION = 1;
/** File name of the manifest inside `tenants/<name>/`; a tenant file with this name is never archived. */
export const MANIFEST_FILE_NAME = '.openclaw-backup-manifest.json';

export type ManifestEntry =
  | { readonly path: string; readonly type: 'file'; readonly size: number; readonly mode: number; readonly mtimeMs: number; readonly sha256: string }
  | { readonly path: string; readonly type: 'directory'; readonly mode: number; readonly mtimeMs: number }
  | { readonly path: string; readonly type: 'symlink'; readonly target: string; readonly mtimeMs: number };

export interface ManifestNote {
  readonly path: string;
  readonly reason: string;
}

export interface Manifest {
  readonly format: typeof MANIFEST_FORMAT;
  readonly formatVersion: number;
  readonly tenant: string;
  readonly createdAt: string;
  readonly tool: { readonly name: string; readonly version: string };
  /** Every archived entry, in archive order, paths relative to the tenant root ('' is the root). */
  readonly entries: readonly ManifestEntry[];
  /** Left out of the archive (pty/, sockets, escaping symlinks, vanished files). */
  readonly skipped: readonly ManifestNote[];
  /** Archived, but with a caveat (file changed while read, database archived raw). */
  readonly warnings: readonly ManifestNote[];
  readonly totals: { readonly files: number; readonly directories: number; readonly symlinks: number; readonly bytes: number };
}

export function serializeManifest(manifest: Manifest): Buffer {
  return Buffer.from(JSON.stringify(manifest), 'utf8');
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Parses and structurally checks a manifest read from an archive. */
export function parseManifest(bytes: Buffer): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new CorruptArchiveError('the archive manifest is not valid JSON', { cause: error });
  }
  const manifest = value as Manifest;
  if (typeof value !== 'object' || value === null || manifest.format !== MANIFEST_FORMAT) {
    throw new CorruptArchiveError('the archive manifest is not an OpenClawMU tenant manifest');
  }
  if (manifest.formatVersion !== MANIFEST_FORMAT_VERSION) {
    throw new CorruptArchiveError(
      `the archive uses manifest format version ${String(manifest.formatVersion)}; this tool reads version ${MANIFEST_FORMAT_VERSION}`,
    );
  }
  if (typeof manifest.tenant !== 'string' || !Array.isArray(manifest.entries)) {
    throw new CorruptArchiveError('the archive manifest is incomplete');
  }
  for (const entry of manifest.entries) {
    if (!isWellFormedEntry(entry)) {
      throw new CorruptArchiveError(`the archive manifest has a malformed entry: ${JSON.stringify(entry).slice(0, 200)}`);
    }
  }
  return {
    ...manifest,
    skipped: Array.isArray(manifest.skipped) ? manifest.skipped : [],
    warnings: Array.isArray(manifest.warnings) ? manifest.warnings : [],
  };
}

function isWellFormedEntry(entry: ManifestEntry): boolean {
  if (typeof entry !== 'object' || entry === null || typeof entry.path !== 'string') return false;
  switch (entry.type) {
    case 'file':
      return Number.isSafeInteger(entry.size) && entry.size >= 0 && SHA256_HEX.test(entry.sha256) && Number.isInteger(entry.mode);
    case 'directory':
      return Number.isInteger(entry.mode);
    case 'symlink':
      return typeof entry.target === 'string';
    default:
      return false;
  }
}
