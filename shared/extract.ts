// Safe extraction of a tenant archive's tar stream into a fresh staging directory.
//
// Every entry goes through two stages. First a pure check of its name (names.ts): only
// `tenants/<name>/…`, one tenant per archive, no absolute paths, `..`, backslashes or
// control characters. Then checks against what this extraction has itself created, kept
// in memory: a parent must be a directory we made (never a symlink), a file is created
// with O_EXCL|O_NOFOLLOW so nothing is written through a link, a symlink must resolve
// inside the tenant root (checked when created, and again over the final tree, so entry
// order cannot smuggle an escape), a hardlink may only point at an earlier regular file.
// Devices, FIFOs, unknown entry types and directories or links carrying data are refused;
// setuid/setgid/sticky bits dropped. Entry count (implied directories included), unpacked
// size, nesting depth (1024) and symlink target length (4095 bytes) are capped while
// streaming. When the archive carries a manifest (the last entry), the extracted tree must
// match it exactly. Damage the tar parser finds is a CorruptArchiveError.

import { createHash } from 'node:crypto';
import { closeSync, constants as fsConstants, fchmodSync, futimesSync, mkdirSync, openSync, promises as fs, writevSync } from 'node:fs';
import path from 'node:path';
import tar, { type Extract as TarExtract } from 'tar-stream';

type TarEntry = TarExtract extends AsyncIterable<infer Entry> ? Entry : never;

import { ArchiveLimitError, CorruptArchiveError, OpenClawError, UnsafeArchiveError } from './errors.js';
import { ioModeFor, type IoMode } from './io-mode.js';
import { resolveInsideRoot } from './link-resolve.js';
import { formatBytes } from './format.js';
import { MANIFEST_FILE_NAME, parseManifest, type Manifest } from './manifest.js';
import { entryNameFor, parseEntryName } from './names.js';

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

/** Deepest an entry may lie below the tenant root: node-tar's default maxDepth (CVE-2024-28863). */
const MAX_DEPTH = 1024;
/** Longest symlink target Linux stores (PATH_MAX - 1). */
const MAX_LINK_TARGET_BYTES = 4095;
/** Largest manifest we accept (about 2 million entries). */
const MAX_MANIFEST_BYTES = 512 * 1024 * 1024;
/** Files up to this size are collected whole and written in one call (in the background on network file systems). */
const SMALL_FILE_LIMIT = 1024 * 1024;
/** Small-file writes in flight at once: overlaps the file system's latency (EFS!). */
const WRITE_CONCURRENCY = 16;
const FILE_FLAGS = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;

export interface ExtractProgress {
  readonly entries: number;
  readonly bytes: number;
}

export interface ExtractOptions {
  /**
   * Called once, with the tenant name the archive's first entry carries, before anything is
   * written; returns the empty directory to extract the tenant root into.
   */
  readonly prepare: (archiveTenant: string) => Promise<string>;
  readonly limits?: ExtractLimits;
  /** Whether the archive is known to be ours, so a missing manifest is damage, not a foreign archive. */
  readonly requireManifest?: () => boolean;
  readonly onProgress?: (progress: ExtractProgress) => void;
  /** How to call the file system; by default chosen for the staging directory's (io-mode.ts). */
  readonly ioMode?: IoMode;
}

export interface ExtractResult {
  readonly tenant: string;
  readonly files: number;
  readonly directories: number;
  readonly symlinks: number;
  readonly hardlinks: number;
  readonly bytes: number;
  /** The archive's manifest, which the extracted tree was verified against; undefined for foreign archives. */
  readonly manifest?: Manifest;
}

type Node =
  | { type: 'directory'; mode: number; mtime: Date; explicit: boolean }
  | { type: 'file'; size: number; sha256: string; hardlink: boolean }
  | { type: 'symlink'; target: string };

/** Extracts the tar stream `tarBytes`; rejects (having written only inside the staging directory) on any violation. */
export async function extractTenantArchive(tarBytes: AsyncIterable<Uint8Array>, options: ExtractOptions): Promise<ExtractResult> {
  const extract = tar.extract();
  const failures: StreamFailures = {};
  extract.on('error', (error: Error) => {
    failures.parser ??= error;
  });
  const feeding = feed(tarBytes, extract, failures);
  feeding.catch(() => undefined); // observed below; a failure must not count as unhandled while unpack is busy
  try {
    const result = await unpack(extract, options);
    await feeding;
    return result;
  } catch (error) {
    extract.destroy();
    await feeding.catch(() => undefined);
    throw classify(error, failures);
  } finally {
    // Stop the producer (the decoder, the download) if we bailed out early.
    await (tarBytes as AsyncGenerator<Uint8Array>).return?.(undefined)?.catch?.(() => undefined);
  }
}

/** What made the tar stream fail: its source (download, decoder), or the parser on the bytes. */
interface StreamFailures {
  source?: unknown;
  parser?: unknown;
}

async function feed(source: AsyncIterable<Uint8Array>, extract: TarExtract, failures: StreamFailures): Promise<void> {
  try {
    for await (const chunk of source) {
      if (extract.destroyed) return;
      if (!extract.write(chunk)) await drainOrClose(extract);
    }
    extract.end(undefined);
  } catch (error) {
    failures.source = error;
    extract.destroy(error as Error);
    throw error;
  }
}

/**
 * tar-stream reports damage (a bad checksum, an unknown format, a negative size, input that
 * ends inside a header or an entry) as plain Errors, and an entry cut short as a bare
 * "Stream was destroyed". Those are a corrupt archive; a failing source keeps its own error.
 */
function classify(error: unknown, failures: StreamFailures): unknown {
  if (error instanceof OpenClawError) return error;
  if (failures.source !== undefined) return failures.source;
  if (failures.parser !== undefined) {
    const detail = failures.parser instanceof Error ? failures.parser.message : String(failures.parser);
    return new CorruptArchiveError(`the archive is damaged or truncated: ${detail}`, { cause: failures.parser });
  }
  return error;
}

function drainOrClose(stream: TarExtract): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}

async function unpack(extract: TarExtract, options: ExtractOptions): Promise<ExtractResult> {
  const limits = options.limits ?? DEFAULT_LIMITS;
  const tooManyEntries = () =>
    new ArchiveLimitError(`the archive has more than ${limits.maxEntries} entries (raise --max-entries if it is genuine)`);
  const nodes = new Map<string, Node>();
  let writes: TreeWriter = new SyncTreeWriter();
  let tenant: string | undefined;
  let root = '';
  let manifest: Manifest | undefined;
  let entryCount = 0;
  let unpackedBytes = 0;
  const counts = { files: 0, directories: 0, symlinks: 0, hardlinks: 0 };

  try {
    for await (const entry of extract as AsyncIterable<TarEntry>) {
      const header = entry.header;
      if ((header.type as string) === 'pax-global-header') {
        await drain(entry);
        continue;
      }
      const location = parseEntryName(header.name);
      if (manifest !== undefined) throw new UnsafeArchiveError('entry after the manifest', header.name);
      if (tenant === undefined) {
        tenant = location.tenant;
        root = await options.prepare(tenant);
        writes = (options.ioMode ?? ioModeFor(root)) === 'sync' ? new SyncTreeWriter() : new ParallelTreeWriter(WRITE_CONCURRENCY);
      } else if (location.tenant !== tenant) {
        throw new UnsafeArchiveError(`entry for a second tenant (the archive is for "${tenant}")`, header.name);
      }
      if (++entryCount > limits.maxEntries) throw tooManyEntries();
      // No directory or link carries data. tar-stream never ends the body of a directory that
      // declares a size (draining it would hang), and a link's body would bypass maxBytes.
      if ((header.type === 'directory' || header.type === 'symlink' || header.type === 'link') && (header.size ?? 0) > 0) {
        throw new UnsafeArchiveError(`${header.type} entry that carries data`, header.name);
      }

      const segments = location.segments;
      if (segments.length > MAX_DEPTH) {
        throw new ArchiveLimitError(`entry nested deeper than ${MAX_DEPTH} directories: ${JSON.stringify(header.name.slice(0, 120))}…`);
      }
      const relPath = segments.join('/');
      const absPath = path.join(root, ...segments);
      const mode = (header.mode ?? 0o644) & 0o777;
      const mtime = header.mtime ?? new Date();
      if (Number.isNaN(mtime.getTime())) throw new CorruptArchiveError(`entry with an invalid modification time: ${JSON.stringify(header.name)}`);

      if (segments.length === 1 && segments[0] === MANIFEST_FILE_NAME && isRegularFile(header.type)) {
        if ((header.size ?? 0) > MAX_MANIFEST_BYTES) {
          throw new ArchiveLimitError(`the manifest is larger than ${formatBytes(MAX_MANIFEST_BYTES)}: ${header.name}`);
        }
        manifest = parseManifest(await collect(entry, MAX_MANIFEST_BYTES, header.name));
        continue;
      }

      if (segments.length === 0) {
        if (header.type !== 'directory') throw new UnsafeArchiveError('the tenant root entry is not a directory', header.name);
        if (nodes.has('')) throw new UnsafeArchiveError('duplicate entry', header.name);
        nodes.set('', { type: 'directory', mode, mtime, explicit: true });
        counts.directories++;
        await drain(entry);
        continue;
      }

      // Directories an entry implies count too: each is a node in memory and an inode on disk.
      entryCount += await ensureParents(root, segments, nodes, header.name, writes);
      if (entryCount > limits.maxEntries) throw tooManyEntries();
      const existing = nodes.get(relPath);
      if (existing !== undefined && !(existing.type === 'directory' && header.type === 'directory')) {
        throw new UnsafeArchiveError('duplicate entry', header.name);
      }

      switch (header.type as string) {
        case 'directory': {
          if (existing === undefined) {
            await writes.mkdir(absPath);
            counts.directories++;
          }
          nodes.set(relPath, { type: 'directory', mode, mtime, explicit: true });
          await drain(entry);
          break;
        }
        case 'file':
        case 'contiguous-file': {
          const size = header.size ?? 0;
          unpackedBytes += size;
          if (unpackedBytes > limits.maxBytes) {
            throw new ArchiveLimitError(`the archive unpacks to more than ${formatBytes(limits.maxBytes)} (raise --max-bytes if it is genuine)`);
          }
          const written = await writeFile(entry, absPath, size, mode, mtime, writes);
          nodes.set(relPath, { type: 'file', size: written.size, sha256: written.sha256, hardlink: false });
          counts.files++;
          break;
        }
        case 'symlink': {
          const target = header.linkname ?? '';
          // symlink(2) holds at most PATH_MAX - 1 bytes; checking a longer (pax) target would
          // cost time quadratic in its length before the kernel refused it anyway.
          if (Buffer.byteLength(target) > MAX_LINK_TARGET_BYTES) {
            throw new UnsafeArchiveError(`symlink target longer than ${MAX_LINK_TARGET_BYTES} bytes`, header.name);
          }
          if (resolveInsideRoot(segments.slice(0, -1), target, linkReader(nodes)) === undefined) {
            throw new UnsafeArchiveError(`symlink whose target ${JSON.stringify(target)} escapes the tenant`, header.name);
          }
          await fs.symlink(target, absPath);
          await fs.lutimes(absPath, mtime, mtime);
          nodes.set(relPath, { type: 'symlink', target });
          counts.symlinks++;
          await drain(entry);
          break;
        }
        case 'link': {
          const target = parseEntryName(header.linkname ?? '');
          const targetPath = target.segments.join('/');
          const targetNode = nodes.get(targetPath);
          if (target.tenant !== tenant || targetNode?.type !== 'file') {
            throw new UnsafeArchiveError('hardlink to something other than an earlier regular file of the tenant', header.name);
          }
          await writes.flush();
          await fs.link(path.join(root, ...target.segments), absPath);
          nodes.set(relPath, { ...targetNode, hardlink: true });
          counts.hardlinks++;
          await drain(entry);
          break;
        }
        default:
          throw new UnsafeArchiveError(`${header.type ?? 'unknown'} entry refused (only files, directories and links are restored)`, header.name);
      }
      options.onProgress?.({ entries: entryCount, bytes: unpackedBytes });
    }
    await writes.flush();
  } catch (error) {
    await writes.settle();
    throw error;
  }

  if (tenant === undefined) throw new CorruptArchiveError('the archive holds no tenant entries (empty or truncated)');
  if (!nodes.has('')) nodes.set('', { type: 'directory', mode: 0o750, mtime: new Date(), explicit: false });
  assertLinksStayInside(nodes, tenant);
  if (manifest !== undefined) verifyAgainstManifest(nodes, manifest, tenant);
  else if (options.requireManifest?.()) {
    throw new CorruptArchiveError('the archive is truncated or damaged: its manifest (the last entry) is missing');
  }
  await applyDirectoryAttributes(root, nodes);

  return { tenant, ...counts, bytes: unpackedBytes, manifest };
}

/**
 * Creates the missing parent directories of `segments`. Every recorded path's ancestors are
 * recorded directories, so the deepest recorded ancestor alone decides whether the entry
 * lies below a link or a file: one lookup for most entries, not one join per level.
 */
async function ensureParents(
  root: string,
  segments: readonly string[],
  nodes: Map<string, Node>,
  entryName: string,
  writes: TreeWriter,
): Promise<number> {
  const parents: string[] = [];
  for (let depth = 1; depth < segments.length; depth++) {
    parents.push(depth === 1 ? segments[0]! : `${parents[depth - 2]}/${segments[depth - 1]}`);
  }
  let known = parents.length;
  while (known > 0 && !nodes.has(parents[known - 1]!)) known--;
  if (known > 0) {
    const node = nodes.get(parents[known - 1]!)!;
    if (node.type !== 'directory') {
      throw new UnsafeArchiveError(`entry below a ${node.type === 'symlink' ? 'symlink' : 'file'} (nothing is written through links)`, entryName);
    }
  }
  for (let index = known; index < parents.length; index++) {
    await writes.mkdir(path.join(root, parents[index]!));
    nodes.set(parents[index]!, { type: 'directory', mode: 0o755, mtime: new Date(), explicit: false });
  }
  return parents.length - known;
}

interface WrittenFile {
  readonly size: number;
  readonly sha256: string;
}

async function writeFile(
  entry: TarEntry,
  absPath: string,
  size: number,
  mode: number,
  mtime: Date,
  writes: TreeWriter,
): Promise<WrittenFile> {
  const hash = createHash('sha256');
  if (size <= SMALL_FILE_LIMIT) {
    const chunks: Buffer[] = [];
    let length = 0;
    for await (const chunk of entry as AsyncIterable<Buffer>) {
      hash.update(chunk);
      chunks.push(chunk);
      length += chunk.length;
    }
    await writes.writeSmall(absPath, chunks, mode, mtime);
    return { size: length, sha256: hash.digest('hex') };
  }

  const handle = await fs.open(absPath, FILE_FLAGS, mode);
  let length = 0;
  try {
    for await (const chunk of entry as AsyncIterable<Buffer>) {
      hash.update(chunk);
      length += chunk.length;
      await handle.write(chunk);
    }
    if (umaskStrips(mode)) await handle.chmod(mode);
    await handle.utimes(mtime, mtime);
  } finally {
    await handle.close();
  }
  return { size: length, sha256: hash.digest('hex') };
}

/** The process umask, read once: files are created with their final mode, fixed up only where it strips bits. */
const UMASK = process.umask();
const umaskStrips = (mode: number) => (mode & ~UMASK) !== mode;

/**
 * The file-system side of extraction for small files and directories. Files are created
 * with O_EXCL|O_NOFOLLOW (never through a link) and their final mode and mtime.
 */
interface TreeWriter {
  mkdir(absPath: string): Promise<void>;
  writeSmall(absPath: string, chunks: readonly Buffer[], mode: number, mtime: Date): Promise<void>;
  /** Waits for every write in flight and rethrows the first failure. */
  flush(): Promise<void>;
  /** Waits for every write in flight, failed or not. */
  settle(): Promise<void>;
}

/** Local disks: synchronous calls, four per file, like GNU tar's (io-mode.ts says why). */
class SyncTreeWriter implements TreeWriter {
  async mkdir(absPath: string): Promise<void> {
    mkdirSync(absPath, { mode: 0o700 });
  }

  async writeSmall(absPath: string, chunks: readonly Buffer[], mode: number, mtime: Date): Promise<void> {
    const fd = openSync(absPath, FILE_FLAGS, mode);
    try {
      if (chunks.length > 0) writevSync(fd, chunks as Buffer[]);
      if (umaskStrips(mode)) fchmodSync(fd, mode);
      futimesSync(fd, mtime, mtime);
    } finally {
      closeSync(fd);
    }
  }

  async flush(): Promise<void> {}
  async settle(): Promise<void> {}
}

/** Network file systems (EFS): a bounded set of writes in flight hides each call's latency. */
class ParallelTreeWriter implements TreeWriter {
  private readonly pending = new Set<Promise<void>>();
  private failure: unknown;
  constructor(private readonly limit: number) {}

  async mkdir(absPath: string): Promise<void> {
    await fs.mkdir(absPath, { mode: 0o700 });
  }

  async writeSmall(absPath: string, chunks: readonly Buffer[], mode: number, mtime: Date): Promise<void> {
    this.rethrow();
    while (this.pending.size >= this.limit) await Promise.race(this.pending);
    this.rethrow();
    const running: Promise<void> = writeSmallAsync(absPath, chunks, mode, mtime)
      .catch((error: unknown) => {
        this.failure ??= error;
      })
      .finally(() => this.pending.delete(running));
    this.pending.add(running);
  }

  async flush(): Promise<void> {
    await this.settle();
    this.rethrow();
  }

  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all(this.pending);
  }

  private rethrow(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}

async function writeSmallAsync(absPath: string, chunks: readonly Buffer[], mode: number, mtime: Date): Promise<void> {
  const handle = await fs.open(absPath, FILE_FLAGS, mode);
  try {
    if (chunks.length > 0) await handle.writev(chunks as Buffer[]);
    if (umaskStrips(mode)) await handle.chmod(mode);
    await handle.utimes(mtime, mtime);
  } finally {
    await handle.close();
  }
}

function linkReader(nodes: Map<string, Node>) {
  return (segments: readonly string[]): string | undefined => {
    const node = nodes.get(segments.join('/'));
    return node?.type === 'symlink' ? node.target : undefined;
  };
}

/** Re-checks every symlink against the final tree: a link added later can change how an earlier one resolves. */
function assertLinksStayInside(nodes: Map<string, Node>, tenant: string): void {
  const readLink = linkReader(nodes);
  for (const [relPath, node] of nodes) {
    if (node.type !== 'symlink') continue;
    const segments = relPath.split('/');
    if (resolveInsideRoot(segments.slice(0, -1), node.target, readLink) === undefined) {
      throw new UnsafeArchiveError(`symlink whose target ${JSON.stringify(node.target)} escapes the tenant`, entryNameFor(tenant, relPath));
    }
  }
}

function verifyAgainstManifest(nodes: Map<string, Node>, manifest: Manifest, tenant: string): void {
  if (manifest.tenant !== tenant) {
    throw new CorruptArchiveError(`the manifest is for tenant "${manifest.tenant}" but the entries are for "${tenant}"`);
  }
  const mismatch = (what: string, relPath: string) =>
    new CorruptArchiveError(`the archive does not match its manifest: ${what} ${JSON.stringify(relPath === '' ? '.' : relPath)}`);
  const listed = new Set<string>();
  for (const expected of manifest.entries) {
    listed.add(expected.path);
    const actual = nodes.get(expected.path);
    if (actual === undefined) throw mismatch('missing entry', expected.path);
    if (actual.type !== expected.type) throw mismatch(`${expected.type} restored as a ${actual.type}`, expected.path);
    if (expected.type === 'file' && actual.type === 'file') {
      if (actual.size !== expected.size) throw mismatch(`size differs (${actual.size} != ${expected.size}) for`, expected.path);
      if (actual.sha256 !== expected.sha256) throw mismatch('SHA-256 differs for', expected.path);
    }
    if (expected.type === 'symlink' && actual.type === 'symlink' && actual.target !== expected.target) {
      throw mismatch('symlink target differs for', expected.path);
    }
  }
  for (const [relPath, node] of nodes) {
    if (listed.has(relPath)) continue;
    if (node.type === 'directory' && !node.explicit) continue;
    throw mismatch('entry not listed in the manifest', relPath);
  }
}

/** Directory modes and times last, deepest first: writing children changes a directory's mtime, and a read-only one could not take them. */
async function applyDirectoryAttributes(root: string, nodes: Map<string, Node>): Promise<void> {
  const directories = [...nodes].filter(([, node]) => node.type === 'directory') as [string, Extract<Node, { type: 'directory' }>][];
  directories.sort(([a], [b]) => depth(b) - depth(a));
  for (const [relPath, node] of directories) {
    const absPath = relPath === '' ? root : path.join(root, ...relPath.split('/'));
    await fs.chmod(absPath, node.mode);
    await fs.utimes(absPath, node.mtime, node.mtime);
  }
}

function depth(relPath: string): number {
  if (relPath === '') return 0;
  let count = 1;
  for (const char of relPath) if (char === '/') count++;
  return count;
}

function isRegularFile(type: string | null | undefined): boolean {
  return type === 'file' || type === 'contiguous-file';
}

async function drain(entry: TarEntry): Promise<void> {
  for await (const chunk of entry as AsyncIterable<Buffer>) void chunk;
}

async function collect(entry: TarEntry, limit: number, name: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of entry as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > limit) throw new ArchiveLimitError(`the manifest is larger than ${formatBytes(limit)}: ${name}`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, length);
}
