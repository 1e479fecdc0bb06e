// Safe extraction of a tenant archive's tar stream into a fresh staging directory.
//
// Every entry goes through two stages. First a pure check of its name (names.ts): only
// `tenants/<name>/…`, one tenant per archive, no absolute paths, `..` or NUL (a backslash or
// a control character is an ordinary character of a Linux name, shown escaped in messages).
// Then checks against what this extraction has itself created, kept in memory: a parent
// must be a directory we made (never a symlink), a file is created with O_EXCL|O_NOFOLLOW
// so nothing is written through a link, a symlink must resolve inside the tenant root
// (checked when created, and again over the final tree, so entry order cannot smuggle an
// escape), a hardlink may only point at an earlier regular file.
// Devices, FIFOs, unknown entry types and directories or links carrying data are refused;
// setuid/setgid bits dropped (a directory keeps its sticky bit). Entry count (implied directories included), unpacked
// size, the characters of all paths held in memory and of symlink targets (128 per entry allowed
// each, on average; hard link targets count with the paths), the
// work of checking symlinks (256 steps per entry allowed, on average), nesting depth (1024)
// and symlink target length (4095 bytes) are capped while
// streaming, and so is the tar stream itself: it may exceed what its entries declare only by
// their headers' worth (TAR_OVERHEAD_PER_ENTRY each, plus TAR_OVERHEAD_SLACK), so no run of
// headers, padding or zeros goes on for long. The abort signal is checked before every entry
// and chunk, and the event loop gets a turn every 50 ms (decoding and writing can otherwise
// run for minutes on microtasks alone, and a SIGTERM handler or a deadline timer never
// runs). When the archive carries a manifest (the last entry), the extracted tree must match
// it exactly; without one, its tar stream must end with the end-of-archive marker (cut between
// two entries, it would otherwise pass for whole). Damage the tar parser finds is a
// CorruptArchiveError.
//
// The tenant's `pty/` (ephemeral terminal state, which a backup never archives) is left out
// whatever its entries are, the FIFOs and devices refused elsewhere included: nothing is
// created for them, their content is read past and counted (`ephemeral`), still within the
// limits. Entries no reader can be sure where they end (GNU sparse files, unknown types) stay
// refused there too. A hardlink from outside `pty/` to a file in it is refused: that file's
// content is not kept, so the link would have nothing to point at (materialising it would
// mean writing pty/ content after all). An archive with a manifest (ours) never holds `pty/`:
// one that holds or lists it is refused as not matching it.
//
// This module decides what is created and in which order; a TreeWriter creates it, and which
// writer that is (and when it changes, for speed) is choose-tree-writer.ts's business. With
// `discard` (`tenants verify`, a restore's dry run) the writer creates nothing: every check
// here runs the same, since none of them reads back what was written.

import { createHash, type Hash } from 'node:crypto';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';

import { ArchiveLimitError, CorruptArchiveError, UnsafeArchiveError } from '../errors.js';
import { fileAccessFor, SYNC_ACCESS, type FileAccess } from '../file-access.js';
import { DEFAULT_LIMITS, entriesToReadManifest, manifestLimits, MAX_ENTRY_DEPTH, type ExtractLimits, type ManifestLimits } from './limits.js';
import { MAX_LINK_HOPS, resolveInsideRoot, unresolvedReason, type ReadLinkAt } from './link-resolve.js';
import { formatBytes, plural, quotedPath, shownPath } from '../format.js';
import { MANIFEST_FILE_NAME, parseManifest, type Manifest, type ParsedManifest } from '../archive/manifest.js';
import { entryNameFor, EPHEMERAL_DIR, isArchiveRootName, parseEntryName } from '../tenant/names.js';
import { rawByteLength } from '../raw-name.js';
import { release } from '../released-buffers.js';
import { throwIfAborted } from '../storage/streams.js';
import { TarReader, type TarHeader } from '../archive/tar-format.js';
import { sha256Hex, TreeDigest, type DirectoryDigest } from '../archive/tree-digest.js';
import { chooseTreeWriter } from './choose-tree-writer.js';
import { ResumingTreeWriter } from './resuming-tree-writer.js';
import { PathTable } from './path-table.js';
import { COPY_OVER_LIMIT, copiedLinks, copyBudget, type CopyBudget, type FileSink, type Owner, type TreeWriter } from './tree-writer.js';

/** Longest symlink target Linux stores (PATH_MAX - 1). */
const MAX_LINK_TARGET_BYTES = 4095;
/**
 * Every path the extraction has created is held in memory (`paths`), implied directories
 * included: their characters may add up to this much per entry the limits allow on average,
 * 256 MB by default. Real trees average well under 100; without a bound, 1.2 million empty
 * files with 3.8 KiB names (5 MiB stored) took `tenants verify` past its 4 GiB heap. A hard
 * link's target is not held, but it is parsed, looked up and digested as a path is: its
 * characters count too (40,000 links to a file 1,000 names deep, 335 KiB stored, took 8.5 s
 * of CPU to verify when they did not).
 */
const PATH_CHARACTERS_PER_ENTRY = 128;
/**
 * Symlink targets are held in memory too (`paths`, for the final check of where links lead),
 * in a bound of their own: a tenant of 70,000 links ten 200-character names deep holds as
 * many characters in its targets as in its paths. Without one, 200,000 links of 4 KiB
 * targets (1.3 MB stored) took `tenants verify` to 1 GiB and 18 s of CPU.
 */
const LINK_TARGET_CHARACTERS_PER_ENTRY = 128;
/**
 * Symlink resolution work (link-resolve.ts: MAX_RESOLVE_WORK per link) the whole archive may
 * take, per entry the limits allow: each link is checked when created and again over the
 * final tree. Real links take tens; 2,000 links of 700 components took 16 s to check, so
 * 2 million (8 MB stored) would have taken hours.
 */
const LINK_WORK_PER_ENTRY = 256;
/**
 * Tar headers, pax records (long names and link targets, up to 4 KiB each) and padding: the
 * tar stream may exceed the content its entries declare by this much per entry…
 */
const TAR_OVERHEAD_PER_ENTRY = 10 * 1024;
/** …and by this much in all: a few extended headers of up to 4 MiB, up to 16 MiB of padding after the end. */
const TAR_OVERHEAD_SLACK = 32 * 1024 * 1024;
/** Longest the extraction runs without letting the event loop turn (signals, timers). */
const EVENT_LOOP_TURN_MS = 50;
/**
 * A name met twice (but a directory's): `tar -r` and `tar -u` append a file again, and GNU
 * tar extracts the last, over what an earlier one made (a link, a directory's place…). A
 * restore does not guess which version the operator meant.
 */
const DUPLICATE_ENTRY =
  'duplicate entry (the archive holds this name more than once, as tar -r or -u appends a file again; GNU tar extracts the last): ' +
  'extract it with GNU tar and archive that tree again';
/** Progress is reported every this many entries (and for every file over 1 MiB). */
const PROGRESS_EVERY_ENTRIES = 64;
/** The content digest of an empty file. */
const EMPTY_SHA256 = sha256Hex('');

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
  /** Ends the extraction (with AbortedError) before the next entry or chunk once aborted. */
  readonly signal?: AbortSignal;
  /** Whether the archive is known to be ours, so a missing manifest is damage, not a foreign archive. */
  readonly requireManifest?: () => boolean;
  readonly onProgress?: (progress: ExtractProgress) => void;
  /** How to call the file system; by default chosen for the staging directory's (file-access.ts). */
  readonly fileAccess?: FileAccess;
  /** On a local disk, when files start being written on writer threads (choose-tree-writer.ts). @default 16 MiB */
  readonly workerThresholdBytes?: number;
  /** Check everything, write nothing: `prepare`'s directory is only a name (choose-tree-writer.ts). */
  readonly discard?: boolean;
  /** Who gets every entry written (tree-writer.ts), asked once `prepare` has chosen the target; none: no chown. */
  readonly owner?: () => Owner | undefined;
  /** A restore in pieces (restore-continuation.ts): what earlier pieces wrote, and when this one stops. */
  readonly pieces?: ExtractPieces;
}

export interface ExtractPieces {
  /** Writer calls earlier pieces completed: replayed without writing (resuming-tree-writer.ts). */
  readonly skip: number;
  /**
   * Asked between two entries with the time the writer's queued writes still need (0 for a
   * writer that writes as it goes): once true, the extraction stops there as soon as this piece
   * has written something (ExtractionSuspended), after those writes.
   */
  readonly suspend: (backlogMs: number) => boolean;
  /** Awaited before this piece's first write. */
  readonly beforeFirstWrite: () => Promise<void>;
  /** The hard links earlier pieces made copies of (ExtractionSuspended.copiedLinks): a replay makes none, and --max-bytes counts them all. */
  readonly copiedLinks?: CopiedLinks;
  /** What the last piece wrote last (ExtractionSuspended.lastWritten): the replay's call `skip` must be it. */
  readonly lastWritten?: string;
  /** The piece before was killed after its first write: what it made past `skip` is replaced (resuming-tree-writer.ts). */
  readonly rewrite?: boolean;
}

export interface CopiedLinks {
  readonly names: number;
  readonly bytes: number;
}

/** Stored bytes a piece had read of the stored archive's `total` (its size as the store told it) when it stopped. */
export interface StoredRead {
  readonly bytes: number;
  readonly total: number;
  /** The entries to create the archive's footer counts, where the first piece read it (a plain archive): the writes so far are a share of them. */
  readonly entries?: number;
}

/** A piece of a restore stopped between two entries, everything it wrote flushed: `written` writer calls are complete in the staging directory. */
export class ExtractionSuspended extends Error {
  constructor(
    readonly written: number,
    /** The copies of refused hard links every piece so far made. */
    readonly copiedLinks: CopiedLinks,
    /** The path below the tenant root of the last entry this piece created. */
    readonly lastWritten: string,
    /** How far into the stored archive this piece had read when it stopped (read-archive.ts adds it, where the store told the size). */
    readonly storedRead?: StoredRead,
  ) {
    super(`the extraction stopped for the next piece after ${written} writes`);
  }
}

/**
 * A manifest once the tree was verified against it: its directories are dropped as they are
 * checked, all but the top level's (a restore's plan shows them). For 200,000 directories they
 * are ~30 MiB of heap, which a restore --force otherwise held while it removed the old tenant.
 */
export type VerifiedManifest = Omit<Manifest, 'directories'> & {
  /** The manifest's directories directly under the tenant's, in its order. */
  readonly topLevel: readonly DirectoryDigest[];
};

export interface ExtractResult {
  readonly tenant: string;
  /** Names of regular files, hard links included (as a backup's totals count them). */
  readonly files: number;
  readonly directories: number;
  readonly symlinks: number;
  /** How many of `files` are hard links to an earlier name (their content is counted once, in `bytes`). */
  readonly hardlinks: number;
  readonly bytes: number;
  /** The archive's manifest, which the extracted tree was verified against; undefined for foreign archives. */
  readonly manifest?: VerifiedManifest;
  /** SHA-256 of the manifest's bytes as stored (what a backup reports and tags its archive with). */
  readonly manifestSha256?: string;
  /** The tenant's `pty/` entries (itself included) left out, and the bytes of content they carried. */
  readonly ephemeral: { readonly entries: number; readonly bytes: number };
  /** Hard links the file system refused, made copies of their files (tree-writer.ts), and the bytes those copies took. */
  readonly copiedLinks: { readonly names: number; readonly bytes: number };
}

/** Extracts the tar stream `tarBytes`; rejects (having written only inside the staging directory) on any violation. */
export async function extractTenantArchive(tarBytes: AsyncIterable<Uint8Array>, options: ExtractOptions): Promise<ExtractResult> {
  const extraction = new Extraction(options);
  const { signal } = options;
  let lastTurn = performance.now();
  // Awaited only when due: an await per entry would hand the writer threads one batch per
  // entry (measured: 400,000 empty files took twice as long, most of it in the kernel).
  const turnDue = (): boolean => performance.now() - lastTurn >= EVENT_LOOP_TURN_MS;
  /** Lets signal handlers and timers run when this extraction has held the thread long enough. */
  const turn = async (): Promise<void> => {
    await nextTurn();
    lastTurn = performance.now();
  };
  try {
    const reader = new TarReader();
    for await (const input of tarBytes) {
      if (turnDue()) await turn();
      throwIfAborted(signal);
      const chunk = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
      reader.push(chunk);
      extraction.beginChunk(chunk);
      for (let event = reader.next(); event !== undefined; event = reader.next()) {
        let pending: Promise<void> | undefined;
        if (event.kind === 'entry') {
          if (turnDue()) await turn();
          throwIfAborted(signal);
          if (options.pieces !== undefined) await extraction.suspendIfAsked(options.pieces.suspend);
          pending = extraction.entry(event.header);
        } else pending = extraction.data(event.bytes);
        if (pending !== undefined) await pending;
      }
      const pending = extraction.endChunk();
      if (pending !== undefined) await pending;
      extraction.doneWith(input);
    }
    reader.end();
    return await extraction.finish(reader.ended);
  } catch (error) {
    if (error instanceof ExtractionSuspended) throw error;
    await extraction.abandon();
    throw (error as NodeJS.ErrnoException).code === COPY_OVER_LIMIT ? extraction.overLimit() : error;
  }
}

/** The directory an entry lies in, and how many directories it implied (created for it). */
type Implied = readonly [parent: number, impliedDirectories: number];

type Body =
  | { readonly kind: 'manifest'; readonly bytes: Buffer; filled: number }
  /**
   * `hash`: made once the content arrives in more than one piece; content that arrives whole
   * in one piece (nearly every small file) is hashed in one call into `sha256`: no Hash object.
   */
  | { readonly kind: 'file'; readonly relPath: string; readonly sink: FileSink; hash: Hash | undefined; sha256: string | undefined }
  /** Content of a left-out entry: read past. */
  | { readonly kind: 'skipped' };

/** One extraction: the entries seen so far, what they created, and the entry whose content is arriving. */
class Extraction {
  private readonly limits: ExtractLimits;
  /** What it reads of the manifest: more with a larger --max-entries (limits.ts). */
  private readonly manifestLimits: ManifestLimits;
  /** Every path created so far (path-table.ts): what it is matters to later entries, a file's content only to the digest. */
  private readonly paths = new PathTable();
  /** Whether the archive has given the tenant root an entry of its own. */
  private rootListed = false;
  /** The parent directory of the last entry and its id (entries come directory by directory): one lookup for its siblings. */
  private lastParent: { segments: readonly string[]; depth: number; id: number } = { segments: [], depth: 0, id: PathTable.ROOT };
  /** What the manifest's directory digests must match, computed from the entries as they are extracted. */
  private readonly digest = new TreeDigest();
  /** Chosen once the target directory is known (choose-tree-writer.ts). */
  private writes: TreeWriter | undefined;
  /** `writes` in a restore in pieces. */
  private resuming: ResumingTreeWriter | undefined;
  private tenant: string | undefined;
  private root = '';
  private manifest: ParsedManifest | undefined;
  private manifestSha256: string | undefined;
  private manifestSeen = false;
  private entryCount = 0;
  /** Characters of the paths of the entries held (`paths`; createParents adds the implied directories') and of hard link targets. */
  private readonly held = { pathCharacters: 0, linkTargetCharacters: 0 };
  /** Symlink resolution work so far (LINK_WORK_PER_ENTRY). */
  private readonly linkWork = { work: 0 };
  private unpackedBytes = 0;
  /** Bytes of tar stream read, and how many of them entries have declared as content. */
  private streamBytes = 0;
  private declaredBytes = 0;
  private readonly counts = { files: 0, directories: 0, symlinks: 0, hardlinks: 0 };
  private readonly ephemeral = { entries: 0, bytes: 0 };
  /** Content declared so far, and what copies of hard links the file system refused took (tree-writer.ts). */
  private readonly budget: CopyBudget;
  private body: Body | undefined;
  private remaining = 0;
  private currentChunk: Buffer | undefined;
  private progressCalls = 0;

  constructor(private readonly options: ExtractOptions) {
    this.limits = options.limits ?? DEFAULT_LIMITS;
    this.manifestLimits = manifestLimits(this.limits.maxEntries);
    this.budget = copyBudget(this.limits.maxBytes);
    const before = options.pieces?.copiedLinks;
    if (before !== undefined) {
      Atomics.store(this.budget.counts, 1, BigInt(before.bytes));
      Atomics.store(this.budget.counts, 2, BigInt(before.names));
    }
  }

  /** A chunk of the tar stream is about to be read. */
  beginChunk(chunk: Buffer): void {
    this.currentChunk = chunk;
    this.writes?.beginChunk(chunk);
  }

  endChunk(): Promise<void> | undefined {
    this.streamBytes += this.currentChunk!.length;
    const allowed = this.declaredBytes + (this.entryCount + 1) * TAR_OVERHEAD_PER_ENTRY + TAR_OVERHEAD_SLACK;
    if (this.streamBytes > allowed) {
      throw new ArchiveLimitError(
        `the archive's tar stream runs ${formatBytes(this.streamBytes - this.declaredBytes)} beyond the content of its ${plural(this.entryCount, 'entry', 'entries')}: refusing it`,
      );
    }
    return this.writes?.endChunk();
  }

  /** After `endChunk` has settled: frees the chunk's memory now if no write will read it later (released-buffers.ts). */
  doneWith(chunk: Uint8Array): void {
    if (this.writes === undefined || !this.writes.readsChunksLater) release(chunk);
  }

  /** A header. Returns a promise only when the file system is called asynchronously. */
  entry(header: TarHeader): Promise<void> | undefined {
    if (header.type === 'directory' && header.size === 0 && isArchiveRootName(header.name)) {
      // `./` or `tenants/` (tar given `.` or `tenants`): the tenant's parents, not the tenant.
      if (this.manifestSeen) throw new UnsafeArchiveError('entry after the manifest', header.name);
      if (++this.entryCount > this.limits.maxEntries) throw this.tooManyEntries();
      return undefined;
    }
    const location = parseEntryName(header.name);
    if (this.manifestSeen) throw new UnsafeArchiveError('entry after the manifest', header.name);
    if (this.tenant === undefined) return this.firstEntry(header, location.tenant, location.segments);
    return this.nextEntry(header, location.tenant, location.segments);
  }

  private async firstEntry(header: TarHeader, tenant: string, segments: readonly string[]): Promise<void> {
    this.tenant = tenant;
    this.root = await this.options.prepare(tenant);
    const chosen = chooseTreeWriter({
      access: this.options.fileAccess ?? (this.options.discard === true ? SYNC_ACCESS : fileAccessFor(this.root)),
      workerThresholdBytes: this.options.workerThresholdBytes,
      discard: this.options.discard,
      owner: this.options.owner?.(),
      budget: this.budget,
      signal: this.options.signal,
    });
    const pieces = this.options.pieces;
    this.resuming = pieces === undefined ? undefined : new ResumingTreeWriter(chosen, pieces.skip, pieces.beforeFirstWrite, this.root, pieces.lastWritten, pieces.rewrite === true);
    this.writes = this.resuming ?? chosen;
    // The chunk holding this first entry began before there was a writer.
    this.writes.beginChunk(this.currentChunk!);
    const pending = this.nextEntry(header, tenant, segments);
    if (pending !== undefined) await pending;
  }

  private nextEntry(header: TarHeader, tenant: string, segments: readonly string[]): Promise<void> | undefined {
    if (tenant !== this.tenant) {
      throw new UnsafeArchiveError(
        `entry for a second tenant (the archive is for "${this.tenant}"; a restore takes one tenant: archive each on its own, ` +
          `tar -C <the directory holding tenants/> --zstd -cf FILE tenants/<name>)`,
        header.name,
      );
    }
    if (++this.entryCount > this.limits.maxEntries) throw this.tooManyEntries();
    // No directory or link carries data: its body would bypass maxBytes.
    if ((header.type === 'directory' || header.type === 'symlink' || header.type === 'link') && header.size > 0) {
      throw new UnsafeArchiveError(`${header.type} entry that carries data`, header.name);
    }
    if (segments.length > MAX_ENTRY_DEPTH) {
      throw new ArchiveLimitError(`entry nested deeper than ${MAX_ENTRY_DEPTH} directories: ${quotedPath(header.name.slice(0, 120))}…`);
    }
    // setuid and setgid bits are dropped (a root restore would make the archive's programs
    // run as the base dir's owner); a directory's sticky bit is kept: without it a directory
    // of mode 1777 (a shared tmp) comes back 0777, where every local user may delete or
    // rename the tenant's files in it.
    const mode = header.mode & (header.type === 'directory' ? 0o1777 : 0o777);
    const mtime = new Date(header.mtime * 1000);
    if (Number.isNaN(mtime.getTime())) throw new CorruptArchiveError(`entry with an invalid modification time: ${quotedPath(header.name)}`);

    if (segments[0] === EPHEMERAL_DIR) return this.leaveOut(header);
    if (header.absent !== undefined) assertNoneAbsent(header, segments);

    if (segments.length === 1 && segments[0] === MANIFEST_FILE_NAME && isRegularFile(header.type)) {
      if (header.size > this.manifestLimits.bytes) {
        const entries = entriesToReadManifest({ bytes: header.size, containers: 0, values: 0 });
        const raise = entries === Infinity ? 'past what any --max-entries reads' : `raise --max-entries to ${entries} or more if it is genuine`;
        throw new ArchiveLimitError(`the manifest is larger than ${formatBytes(this.manifestLimits.bytes)} (${raise}): ${shownPath(header.name)}`);
      }
      this.manifestSeen = true;
      this.declaredBytes += header.size;
      this.startBody({ kind: 'manifest', bytes: Buffer.allocUnsafe(header.size), filled: 0 }, header.size);
      return undefined;
    }

    if (segments.length === 0) {
      if (header.type !== 'directory') throw new UnsafeArchiveError('the tenant root entry is not a directory', header.name);
      if (this.rootListed) throw new UnsafeArchiveError(DUPLICATE_ENTRY, header.name);
      this.rootListed = true;
      this.paths.setDirectoryAttributes(PathTable.ROOT, mode, mtime.getTime());
      this.digest.add({ path: '', type: 'directory' });
      this.counts.directories++;
      return undefined;
    }

    const relPath = segments.length === 1 ? segments[0]! : segments.join('/');
    const absPath = path.join(this.root, relPath);
    this.held.pathCharacters += relPath.length;
    const parent = this.parentOf(segments, header.name);
    if (typeof parent === 'number') return this.place(header, parent, 0, relPath, absPath, segments, mode, mtime);
    if (parent instanceof Promise) return parent.then(([id, created]) => this.place(header, id, created, relPath, absPath, segments, mode, mtime));
    return this.place(header, parent[0], parent[1], relPath, absPath, segments, mode, mtime);
  }

  /**
   * The id of the directory `segments` lies in, its missing ancestors created (a promise of
   * it and their count when some were). Every recorded path's ancestors are recorded
   * directories, so the first recorded ancestor that is not one decides whether the entry
   * lies below a link or a file.
   */
  private parentOf(segments: readonly string[], entryName: string): number | Implied | Promise<Implied> {
    const depth = segments.length - 1;
    const last = this.lastParent;
    if (last.depth === depth && sameLeadingSegments(last.segments, segments, depth)) return last.id;
    const paths = this.paths;
    let id = PathTable.ROOT;
    let known = 0;
    for (; known < depth; known++) {
      const next = paths.child(id, segments[known]!);
      if (next < 0) break;
      if (paths.kind(next) !== 'directory') {
        throw new UnsafeArchiveError(`entry below a ${paths.kind(next) === 'symlink' ? 'symlink' : 'file'} (nothing is written through links)`, entryName);
      }
      id = next;
    }
    if (known === depth) {
      this.lastParent = { segments, depth, id };
      return id;
    }
    const created = (parent: number): Implied => {
      this.lastParent = { segments, depth, id: parent };
      return [parent, depth - known];
    };
    const parent = this.createParents(segments, known, id);
    return typeof parent === 'number' ? created(parent) : parent.then(created);
  }

  /**
   * Creates the directories `segments[index .. length - 2]` below `id` (implied by an entry,
   * without entries of their own); returns the last one's id (a promise of it when the writer
   * is asynchronous).
   */
  private createParents(segments: readonly string[], index: number, id: number): number | Promise<number> {
    for (; index < segments.length - 1; index++) {
      const relPath = segments.slice(0, index + 1).join('/');
      this.held.pathCharacters += relPath.length;
      id = this.paths.addDirectory(id, segments[index]!, 0o755, Date.now());
      const pending = this.writes!.mkdir(path.join(this.root, relPath));
      if (pending !== undefined) {
        const next = index + 1;
        const parent = id;
        return pending.then(() => this.createParents(segments, next, parent));
      }
    }
    return id;
  }

  private place(
    header: TarHeader,
    parent: number,
    impliedDirectories: number,
    relPath: string,
    absPath: string,
    segments: readonly string[],
    mode: number,
    mtime: Date,
  ): Promise<void> | undefined {
    // Directories an entry implies count too: each is a node in memory and an inode on disk.
    this.entryCount += impliedDirectories;
    if (this.entryCount > this.limits.maxEntries) throw this.tooManyEntries();
    this.assertPathsAffordable();
    const paths = this.paths;
    const writes = this.writes!;
    const name = segments[segments.length - 1]!;
    const existing = paths.child(parent, name);
    if (existing >= 0 && !(paths.kind(existing) === 'directory' && header.type === 'directory')) {
      throw new UnsafeArchiveError(DUPLICATE_ENTRY, header.name);
    }

    switch (header.type) {
      case 'directory': {
        this.digest.add({ path: relPath, type: 'directory' });
        if (existing >= 0) {
          paths.setDirectoryAttributes(existing, mode, mtime.getTime());
          return undefined;
        }
        paths.addDirectory(parent, name, mode, mtime.getTime());
        this.counts.directories++;
        return writes.mkdir(absPath);
      }
      case 'file':
      case 'contiguous-file': {
        this.unpackedBytes += header.size;
        this.declaredBytes += header.size;
        this.assertContentAffordable();
        // Recorded now (so a later entry cannot claim the path), completed when its content has arrived.
        paths.addFile(parent, name);
        this.counts.files++;
        const sink = writes.openFile(absPath, header.size, mode, mtime);
        if (sink instanceof Promise) return sink.then((opened) => this.startFile(relPath, opened, header.size));
        return this.startFile(relPath, sink, header.size);
      }
      case 'symlink':
        return this.symlink(header, parent, relPath, absPath, segments, mtime);
      case 'link':
        this.held.pathCharacters += header.linkname?.length ?? 0;
        this.assertPathsAffordable();
        return this.hardlink(header, parent, name, relPath, absPath);
      default:
        throw refusedType(header);
    }
  }

  private assertPathsAffordable(): void {
    if (this.held.pathCharacters > this.limits.maxEntries * PATH_CHARACTERS_PER_ENTRY) {
      throw new ArchiveLimitError(
        `the archive's entry paths and hard link targets add up to more than ${formatBytes(this.limits.maxEntries * PATH_CHARACTERS_PER_ENTRY)} (an average of ${PATH_CHARACTERS_PER_ENTRY} per entry allowed; raise --max-entries if it is genuine)`,
      );
    }
  }

  /**
   * An entry under `pty/`: nothing is created, its content is read past. Its content still
   * counts against --max-bytes (it is decoded all the same) and its header against
   * --max-entries.
   */
  private leaveOut(header: TarHeader): undefined {
    // The reader cannot tell where these end the way every other reader would: refused anywhere.
    if (header.type === undefined || header.type === 'sparse-file') throw refusedType(header);
    this.ephemeral.entries++;
    this.ephemeral.bytes += header.size;
    this.declaredBytes += header.size;
    this.assertContentAffordable();
    if (header.size > 0) this.startBody({ kind: 'skipped' }, header.size);
    return undefined;
  }

  private assertContentAffordable(): void {
    const declared = this.unpackedBytes + this.ephemeral.bytes;
    Atomics.store(this.budget.counts, 0, BigInt(declared));
    if (declared > this.limits.maxBytes) {
      throw new ArchiveLimitError(`the archive unpacks to more than ${formatBytes(this.limits.maxBytes)} (raise --max-bytes if it is genuine)`);
    }
    if (declared + Number(Atomics.load(this.budget.counts, 1)) > this.limits.maxBytes) throw this.overLimit();
  }

  /** Copies of hard links the file system refused (tree-writer.ts) took the restore past --max-bytes. */
  overLimit(): ArchiveLimitError {
    return new ArchiveLimitError(
      `the archive unpacks to more than ${formatBytes(this.limits.maxBytes)} with its hard links made copies, which the file system restored into refused as links (raise --max-bytes if it is genuine)`,
    );
  }

  private startFile(relPath: string, sink: FileSink, size: number): Promise<void> | undefined {
    this.startBody({ kind: 'file', relPath, sink, hash: undefined, sha256: size === 0 ? EMPTY_SHA256 : undefined }, size);
    return this.remaining === 0 ? this.endBody() : undefined;
  }

  private async symlink(header: TarHeader, parent: number, relPath: string, absPath: string, segments: readonly string[], mtime: Date): Promise<void> {
    const target = header.linkname ?? '';
    // symlink(2) holds at most PATH_MAX - 1 bytes; checking a longer (pax) target would
    // cost time quadratic in its length before the kernel refused it anyway.
    if (rawByteLength(target) > MAX_LINK_TARGET_BYTES) {
      throw new UnsafeArchiveError(`symlink target longer than ${MAX_LINK_TARGET_BYTES} bytes`, header.name);
    }
    this.held.linkTargetCharacters += target.length;
    if (this.held.linkTargetCharacters > this.limits.maxEntries * LINK_TARGET_CHARACTERS_PER_ENTRY) {
      throw new ArchiveLimitError(
        `the archive's symlink targets add up to more than ${formatBytes(this.limits.maxEntries * LINK_TARGET_CHARACTERS_PER_ENTRY)} (an average of ${LINK_TARGET_CHARACTERS_PER_ENTRY} per entry allowed; raise --max-entries if it is genuine)`,
      );
    }
    const linkDir = segments.slice(0, -1);
    const readLink = linkReader(this.paths, linkDir, parent);
    const resolved = resolveInsideRoot(linkDir, target, readLink, this.linkWork);
    this.assertLinkWorkAffordable();
    if (resolved === undefined) throw unresolvedLink(segments, target, readLink, header.name);
    const pending = this.writes!.symlink(target, absPath, mtime);
    if (pending !== undefined) await pending;
    this.paths.addSymlink(parent, segments[segments.length - 1]!, target);
    this.digest.add({ path: relPath, type: 'symlink', target });
    this.counts.symlinks++;
    this.progress();
  }

  private async hardlink(header: TarHeader, parent: number, name: string, relPath: string, absPath: string): Promise<void> {
    const target = parseEntryName(header.linkname ?? '');
    if (target.tenant === this.tenant && target.segments[0] === EPHEMERAL_DIR) {
      throw new UnsafeArchiveError(
        `hardlink to a file under ${EPHEMERAL_DIR}/, which is left out (ephemeral terminal state), so it has no content to link to; ` +
          `re-create the archive without ${EPHEMERAL_DIR}/ (tar --exclude=${entryNameFor(this.tenant, EPHEMERAL_DIR)})`,
        header.name,
      );
    }
    const targetId = this.paths.find(target.segments);
    if (target.tenant === this.tenant && target.segments.length > 0 && targetId < 0) {
      throw new UnsafeArchiveError(
        'hardlink to a name no earlier entry of the archive gives (GNU tar cannot extract it either): ' +
          're-create the archive with GNU tar, which stores a file under its first name and its other names as links to it',
        header.name,
      );
    }
    if (target.tenant !== this.tenant || targetId < 0 || this.paths.kind(targetId) !== 'file') {
      throw new UnsafeArchiveError('hardlink to something other than an earlier regular file of the tenant', header.name);
    }
    const pending = this.writes!.link(path.join(this.root, ...target.segments), absPath);
    if (pending !== undefined) await pending;
    this.paths.addFile(parent, name);
    this.digest.add({ path: relPath, type: 'hardlink', target: target.segments.join('/') });
    this.counts.files++; // every name of a regular file, as a backup counts them
    this.counts.hardlinks++;
    this.progress();
  }

  private startBody(body: Body, size: number): void {
    this.body = body;
    this.remaining = size;
  }

  /** Content of the current entry. */
  data(bytes: Buffer): Promise<void> | undefined {
    const body = this.body!;
    const whole = bytes.length === this.remaining;
    this.remaining -= bytes.length;
    if (body.kind === 'manifest') body.filled += bytes.copy(body.bytes, body.filled); // the chunk may be handed to the writer thread
    else if (body.kind === 'file') {
      if (whole && body.hash === undefined) body.sha256 = sha256Hex(bytes);
      else (body.hash ??= createHash('sha256')).update(bytes);
      const pending = body.sink.write(bytes);
      if (pending !== undefined) return this.remaining === 0 ? pending.then(() => this.endBody()) : pending;
    }
    return this.remaining === 0 ? this.endBody() : undefined;
  }

  private endBody(): Promise<void> | undefined {
    const body = this.body!;
    this.body = undefined;
    if (body.kind === 'manifest') {
      this.manifestSha256 = createHash('sha256').update(body.bytes).digest('hex');
      this.manifest = parseManifest(body.bytes, { consume: true, limits: this.manifestLimits });
      return undefined;
    }
    if (body.kind === 'skipped') return undefined;
    const done = body.sink.finish();
    const record = (): undefined => {
      const { size } = body.sink;
      this.digest.add({ path: body.relPath, type: 'file', size, sha256: body.sha256 ?? body.hash!.digest('hex') });
      return this.progress(size);
    };
    if (done === undefined) return record();
    return done.then(record);
  }

  private progress(size = 0): undefined {
    if (++this.progressCalls % PROGRESS_EVERY_ENTRIES === 0 || size > 1024 * 1024) {
      this.options.onProgress?.({ entries: this.entryCount, bytes: this.unpackedBytes });
    }
    return undefined;
  }

  private assertLinkWorkAffordable(): void {
    if (this.linkWork.work > this.limits.maxEntries * LINK_WORK_PER_ENTRY) {
      throw new ArchiveLimitError(
        `checking where the archive's symlinks lead takes more than ${LINK_WORK_PER_ENTRY} steps per allowed entry (their targets are unusually long or chained; raise --max-entries if it is genuine)`,
      );
    }
  }

  private tooManyEntries(): ArchiveLimitError {
    return new ArchiveLimitError(`the archive has more than ${this.limits.maxEntries} entries (raise --max-entries if it is genuine)`);
  }

  /**
   * After the last entry: every write finished, links re-checked, the tree matched against the
   * manifest. `ended`: whether the tar stream had its end-of-archive marker.
   */
  async finish(ended: boolean): Promise<ExtractResult> {
    await this.writes?.flush();
    this.resuming?.assertReplayed();
    const { tenant, paths } = this;
    if (tenant === undefined) throw new CorruptArchiveError(
        'the archive holds no tenant entries (it is empty, or was cut short before its first): give the path of a complete backup (tenants backups NAME --in DIR lists those in a directory)',
      );
    if (!this.rootListed) paths.setDirectoryAttributes(PathTable.ROOT, 0o750, Date.now());
    assertLinksStayInside(paths, tenant, this.linkWork, () => this.assertLinkWorkAffordable());
    let manifest: VerifiedManifest | undefined;
    if (this.manifest !== undefined) {
      manifest = verifyAgainstManifest(this.digest, this.manifest, tenant, this.ephemeral.entries);
      this.manifest = undefined; // the directories checked are garbage from here on
    } else if (this.options.requireManifest?.()) {
      throw new CorruptArchiveError('the archive is truncated or damaged: its manifest (the last entry) is missing');
    } else if (!ended) {
      // Every tar writer ends the stream with zero blocks: without them, and without a manifest
      // to say what the archive held, a stream cut between two entries would pass for whole.
      throw new CorruptArchiveError('the archive is truncated: its tar stream ends without the end-of-archive marker');
    }
    throwIfAborted(this.options.signal);
    await applyDirectoryAttributes(this.root, paths, this.writes!, this.options.signal);
    return {
      tenant,
      ...this.counts,
      bytes: this.unpackedBytes,
      manifest,
      ...(manifest !== undefined && { manifestSha256: this.manifestSha256 }),
      ephemeral: { ...this.ephemeral },
      copiedLinks: copiedLinks(this.budget),
    };
  }

  /**
   * Between two entries: once this piece has written something and a stop for the next piece
   * is `asked`, waits for every write and throws ExtractionSuspended with the count done.
   */
  async suspendIfAsked(asked: (backlogMs: number) => boolean): Promise<void> {
    const resuming = this.resuming;
    // Asked only once this piece wrote (it has a last entry): a replay does not look at the clock.
    const lastWritten = resuming?.lastWritten;
    if (resuming === undefined || lastWritten === undefined || this.body !== undefined || !asked(resuming.backlogMs())) return;
    await resuming.flush();
    throw new ExtractionSuspended(resuming.calls, copiedLinks(this.budget), lastWritten);
  }

  /** After a failure: the open file closed, writes in flight settled. */
  async abandon(): Promise<void> {
    if (this.body?.kind === 'file') await this.body.sink.abandon();
    this.body = undefined;
    await this.writes?.settle();
  }
}

/** Whether `a` and `b` begin with the same `count` segments. */
function sameLeadingSegments(a: readonly string[], b: readonly string[], count: number): boolean {
  for (let index = 0; index < count; index++) if (a[index] !== b[index]) return false;
  return true;
}

/**
 * The archive's symlinks as link-resolve.ts reads them for a link in directory `linkDir` (id
 * `linkDirId`): it asks for one path after another, each the last one with a name pushed or
 * popped, so the ids of the last path's directories are kept and only the names that changed
 * are looked up (as link-resolve.ts counts the work), not every name of the path again from
 * the root: 1,040 links through 255-character names took 18 s of CPU so.
 */
export function linkReader(paths: PathTable, linkDir: readonly string[], linkDirId: number): ReadLinkAt {
  const known = [...linkDir];
  /** `ids[i]`: the entry at `known[0..i]`, or -1. */
  const ids: number[] = [];
  for (let id = linkDirId; id !== PathTable.ROOT; id = paths.parent(id)) ids.push(id);
  ids.reverse();
  return (segments) => {
    let same = 0;
    for (; same < segments.length && same < known.length && segments[same] === known[same]; same++) {
      // The same name again (`x/../x/y`), kept as this string: compared by identity from now on, not character by character.
      known[same] = segments[same]!;
    }
    known.length = same;
    ids.length = same;
    let id = same === 0 ? PathTable.ROOT : ids[same - 1]!;
    for (let index = same; index < segments.length; index++) {
      if (id >= 0) id = paths.child(id, segments[index]!);
      known.push(segments[index]!);
      ids.push(id);
    }
    return id >= 0 && paths.kind(id) === 'symlink' ? paths.target(id) : undefined;
  };
}

/** Re-checks every symlink against the final tree: a link added later can change how an earlier one resolves. */
function assertLinksStayInside(paths: PathTable, tenant: string, spent: { work: number }, assertAffordable: () => void): void {
  for (const id of paths.symlinks()) {
    const segments = paths.segments(id);
    const target = paths.target(id);
    const linkDir = segments.slice(0, -1);
    const readLink = linkReader(paths, linkDir, paths.parent(id));
    const resolved = resolveInsideRoot(linkDir, target, readLink, spent);
    assertAffordable();
    if (resolved === undefined) {
      throw unresolvedLink(segments, target, readLink, entryNameFor(tenant, segments.join('/')));
    }
  }
}

/**
 * `ephemeralEntries`: how many `pty/` entries were left out; a backup never archives any.
 * Each directory's digest is taken out of `extracted` as the manifest names it (its paths are
 * unique: manifest.ts), so what is left at the end is what the manifest does not list.
 */
function verifyAgainstManifest(extracted: TreeDigest, manifest: ParsedManifest, tenant: string, ephemeralEntries: number): VerifiedManifest {
  if (manifest.tenant !== tenant) {
    throw new CorruptArchiveError(`the manifest is for tenant ${quotedPath(manifest.tenant)} but the entries are for "${tenant}"`);
  }
  const mismatch = (what: string) => new CorruptArchiveError(`the archive does not match its manifest: ${what}`);
  if (ephemeralEntries > 0) throw mismatch(`it holds ${plural(ephemeralEntries, 'entry', 'entries')} under ${EPHEMERAL_DIR}/, which a backup never archives`);
  const isEphemeral = (directory: DirectoryDigest) => directory.path === EPHEMERAL_DIR || directory.path.startsWith(`${EPHEMERAL_DIR}/`);
  // A listed pty/ is what is said first, wherever it is listed (the directories are read again
  // from the manifest's bytes each time they are walked: only a mismatch walks them twice).
  const listsEphemeral = () => mismatch(`it lists ${EPHEMERAL_DIR}/, which a backup never archives`);
  const firstSaid = (problem: CorruptArchiveError) => {
    for (const directory of manifest.directories) if (isEphemeral(directory)) return listsEphemeral();
    return problem;
  };
  const quoted = (relPath: string) => quotedPath(relPath === '' ? '.' : relPath);
  const topLevel: DirectoryDigest[] = [];
  for (const expected of manifest.directories) {
    if (isEphemeral(expected)) throw listsEphemeral();
    if (expected.path !== '' && !expected.path.includes('/')) topLevel.push(expected);
    const actual = extracted.take(expected.path);
    if (actual === undefined) throw firstSaid(mismatch(`directory ${quoted(expected.path)} is missing`));
    if (actual.entries !== expected.entries) {
      throw firstSaid(mismatch(`directory ${quoted(expected.path)} holds ${plural(actual.entries, 'entry', 'entries')}, the manifest lists ${expected.entries}`));
    }
    if (actual.sha256 !== expected.sha256) {
      throw firstSaid(mismatch(`the names, types, sizes, contents or link targets of the entries in ${quoted(expected.path)} differ`));
    }
  }
  for (const unlisted of extracted.remaining()) throw mismatch(`directory ${quoted(unlisted)} is not listed`);
  const { directories, ...rest } = manifest;
  return { ...rest, topLevel };
}

/**
 * Directory modes and times last, deepest first: writing children changes a directory's
 * mtime, and a read-only one could not take them.
 */
async function applyDirectoryAttributes(root: string, paths: PathTable, writes: TreeWriter, signal: AbortSignal | undefined): Promise<void> {
  let done = 0;
  for (const id of paths.directoriesDeepestFirst()) {
    if (++done % 1024 === 0) throwIfAborted(signal);
    const absPath = id === PathTable.ROOT ? root : path.join(root, ...paths.segments(id));
    const pending = writes.setAttributes(absPath, paths.mode(id), new Date(paths.mtimeMs(id)));
    if (pending !== undefined) await pending;
  }
}

/**
 * A symlink that does not resolve inside the tenant: one out of it (an absolute target, even
 * one into it, or one that climbs out), what another tool's archive may hold; or one whose
 * chain of links is a loop, longer than the kernel follows, or too costly to check.
 */
function unresolvedLink(segments: readonly string[], target: string, readLink: ReadLinkAt, entryName: string): UnsafeArchiveError {
  const what = {
    escapes: 'escapes the tenant',
    'too many links': `leads through more than ${MAX_LINK_HOPS} symlinks (a loop, or a chain the kernel would not follow either)`,
    'too costly': 'takes too many steps through symlinks and directories to check',
  }[unresolvedReason(segments.slice(0, -1), target, readLink)];
  return new UnsafeArchiveError(
    `symlink whose target ${quotedPath(target)} ${what} (a restore never creates one; leave it out of the archive: tar --exclude=<this entry>)`,
    entryName,
  );
}

/**
 * A directory of an incremental archive (`tar -g`) must list only what the archive holds: a
 * level above 0 holds just what changed since the level before it (the list marks the rest
 * absent, and so does --exclude what it left out), and restored alone it would replace the
 * tenant with a tree that lacks the rest. `pty/` absent from the tenant root is left out anyway.
 */
function assertNoneAbsent(header: TarHeader, segments: readonly string[]): void {
  const absent = header.absent!;
  const names = segments.length === 0 ? absent.names.filter((name) => name !== EPHEMERAL_DIR) : absent.names;
  const count = absent.count - (absent.names.length - names.length);
  if (count === 0) return;
  const shown = names[0] === undefined ? '' : ` (${quotedPath(names[0])}${count > 1 ? ', …' : ''})`;
  throw new UnsafeArchiveError(
    `directory of an incremental archive (tar -g) whose list names ${plural(count, 'entry', 'entries')} the archive does not hold${shown}: ` +
      'a level above 0 holds only what changed since the one before it (and --exclude marks what it left out so), and restored alone ' +
      'it would replace the tenant without the rest: extract the chain in order with GNU tar --incremental and archive that tree again, or archive without -g',
    header.name,
  );
}

/** An entry of a type no restore creates; a GNU sparse file with what to do instead. */
function refusedType(header: TarHeader): UnsafeArchiveError {
  if (header.type === 'sparse-file') {
    return new UnsafeArchiveError(
      'sparse-file entry refused (GNU tar --sparse wrote it, or bsdtar, which stores a file with holes so unless told --no-read-sparse; only files, directories and links are restored): ' +
        're-create the archive without --sparse (bsdtar: with --no-read-sparse), ' +
        'or, from this archive alone, extract it with GNU tar and archive that tree again without --sparse ' +
        '(a restore leaves long runs of zeros unwritten, so the file comes back sparse all the same)',
      header.sparseName ?? header.name,
    );
  }
  return new UnsafeArchiveError(`${header.type ?? 'unknown'} entry refused (only files, directories and links are restored)`, header.name);
}

function isRegularFile(type: string | null | undefined): boolean {
  return type === 'file' || type === 'contiguous-file';
}
