// The manifest: the last entry of every archive we write. It names the tenant and the tool,
// holds one digest per directory over what restore must find in it (names, types, sizes,
// content SHA-256s, link targets; see tree-digest.ts) and records what the backup left out
// and why. Restore checks the extracted tree against it before anything is committed; a
// parse failure here is a corrupt archive. Version 1 listed every entry instead; restore
// still reads it, by digesting that list the same way.

import { CorruptArchiveError } from './errors.js';
import { digestTree, type DirectoryDigest } from './tree-digest.js';

export const MANIFEST_FORMAT = 'openclawmu-tenant-backup';
export const MANIFEST_FORMAT_VERSION = 2;
/** File name of the manifest inside `tenants/<name>/`; a tenant file with this name is never archived. */
export const MANIFEST_FILE_NAME = '.openclaw-backup-manifest.json';

/** An entry of a version 1 manifest. */
export type ManifestV1Entry =
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
  /** Every archived directory, in the order first met, with the digest of its direct children. */
  readonly directories: readonly DirectoryDigest[];
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

/** Parses and structurally checks a manifest read from an archive (either version). */
export function parseManifest(bytes: Buffer): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new CorruptArchiveError('the archive manifest is not valid JSON', { cause: error });
  }
  const manifest = value as Manifest & { entries?: unknown };
  if (typeof value !== 'object' || value === null || manifest.format !== MANIFEST_FORMAT) {
    throw new CorruptArchiveError('the archive manifest is not an OpenClawMU tenant manifest');
  }
  if (manifest.formatVersion !== 1 && manifest.formatVersion !== MANIFEST_FORMAT_VERSION) {
    throw new CorruptArchiveError(
      `the archive uses manifest format version ${String(manifest.formatVersion)}; this tool reads versions 1 and ${MANIFEST_FORMAT_VERSION}`,
    );
  }
  if (typeof manifest.tenant !== 'string') throw new CorruptArchiveError('the archive manifest is incomplete');
  const directories = manifest.formatVersion === 1 ? directoriesOfV1(manifest.entries) : manifest.directories;
  if (!Array.isArray(directories)) throw new CorruptArchiveError('the archive manifest is incomplete');
  for (const directory of directories) {
    if (!isWellFormedDirectory(directory)) {
      throw new CorruptArchiveError(`the archive manifest has a malformed directory: ${JSON.stringify(directory).slice(0, 200)}`);
    }
  }
  return {
    format: manifest.format,
    formatVersion: manifest.formatVersion,
    tenant: manifest.tenant,
    createdAt: manifest.createdAt,
    tool: manifest.tool,
    totals: manifest.totals,
    directories,
    skipped: Array.isArray(manifest.skipped) ? manifest.skipped : [],
    warnings: Array.isArray(manifest.warnings) ? manifest.warnings : [],
  };
}

function isWellFormedDirectory(directory: DirectoryDigest): boolean {
  return (
    typeof directory === 'object' &&
    directory !== null &&
    typeof directory.path === 'string' &&
    Number.isSafeInteger(directory.entries) &&
    directory.entries >= 0 &&
    typeof directory.sha256 === 'string' &&
    SHA256_HEX.test(directory.sha256)
  );
}

/** A version 1 entry list, digested as a version 2 manifest records it. */
function directoriesOfV1(entries: unknown): DirectoryDigest[] | undefined {
  if (!Array.isArray(entries)) return undefined;
  for (const entry of entries as ManifestV1Entry[]) {
    if (!isWellFormedV1Entry(entry)) {
      throw new CorruptArchiveError(`the archive manifest has a malformed entry: ${JSON.stringify(entry).slice(0, 200)}`);
    }
  }
  return digestTree(entries as ManifestV1Entry[]);
}

function isWellFormedV1Entry(entry: ManifestV1Entry): boolean {
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
