// Turns a tenant directory into the bytes of a backup archive, streamed in bounded memory:
// the walk (tenant-walk.ts) in byte order; small files read ahead of the writer
// (read-ahead.ts: reader threads on a local disk, many calls in flight on a network file
// system) and archived as read, unless they turn out to be databases; every other file as
// live-files.ts chooses to read it (SQLite companions held back until their database is
// settled); the tree's digest and totals, and the manifest, all written by
// archive/archive-writer.ts.
//
// An archive can be written in pieces, by runs that may be processes or invocations apart
// (a backup that continues across Lambda invocations): asked to (`stopWhen`, checked between
// entries, never inside one), a run stops after the entry it archived last and hands back
// where it stopped (`SuspendedArchive`: the walk's position, the digests, notes and counts
// so far, the unfinished frame's input). A run given that (`resume`) walks on after that
// entry and writes the rest. The pieces, concatenated, are the archive one run would have
// written of the same files (test/archive-parts.test.ts).
//
// Files that vanish mid-walk are left out with a warning; the tenant directory itself
// vanishing (removed, or renamed away, or replaced by another directory) fails the run
// before the archive is finished (TenantNotFoundError), so a tenant deleted or renamed
// during its backup is never stored as a backup of a few of its files, or of two trees.

import { promises as fs, type Stats } from 'node:fs';
import path from 'node:path';

import { ArchiveWriter } from '../archive/archive-writer.js';
import type { CompressOptions } from '../archive/zstd-encoder.js';
import { MANIFEST_FORMAT, MANIFEST_FORMAT_VERSION, type Manifest, type ManifestNote } from '../archive/manifest.js';
import { TreeDigest, type TreeDigestState, type TreeEntry } from '../archive/tree-digest.js';
import { FileSystemError, TenantNotFoundError } from '../errors.js';
import { PackedListing } from '../packed-listing.js';
import { fileAccessFor, isVanished, type FileAccess } from '../file-access.js';
import { shownPath } from '../format.js';
import { TOOL_NAME, TOOL_VERSION } from '../version.js';
import { databaseOf, hasCompanions, packCompanionOrFile, packFile, WHOLE_READ_LIMIT, type FileItem, type PackContext } from './live-files.js';
import { LinkTargets } from './link-targets.js';
import { sqlitePolicyFor, type SqliteOptions } from './sqlite-policy.js';
import { TempArea } from './temp-area.js';
import { readAheadFor, type ReadPart, type Segment } from './read-ahead.js';
import { READ_LINKED, READ_VANISHED, READ_WHOLE } from './read-run.js';
import { isSqliteHeader } from './sqlite-snapshot.js';
import { ReadScratch } from './stable-read.js';
import { noteVanished, recordNote, TenantWalk, type WalkItem, type WalkNotes } from './tenant-walk.js';

export interface ArchiveProgress {
  readonly files: number;
  readonly bytes: number;
}

export interface ArchiveSummary {
  readonly suspended?: undefined;
  readonly manifest: Manifest;
  readonly manifestSha256: string;
  /** Of the manifest's files, the later names of a file, archived as hard links (their content stored once). */
  readonly hardlinks: number;
  /** The least --max-entries whose restore reads the manifest, when past the default's (limits.ts ManifestLimits). */
  readonly manifestEntriesToRead?: number;
}

/** Where a run that stopped early left the archive (JSON-safe, but for `pendingFrame`). */
export interface ArchiveCheckpoint {
  /** The last item of the walk that was dealt with: the next run walks on after it. */
  readonly resumeAfter: string;
  readonly digest: TreeDigestState;
  readonly skipped: readonly ManifestNote[];
  readonly warnings: readonly ManifestNote[];
  readonly totals: Manifest['totals'];
  /** Content bytes taken in so far (progress). */
  readonly contentBytes: number;
  /** Databases archived as snapshots, and files whose companions may follow (live-files.ts). */
  readonly snapshotted: readonly string[];
  readonly settled: readonly string[];
  /** Companions held back until their database is packed. */
  readonly waiting: readonly { readonly database: string; readonly relPath: string }[];
  /** Files with more than one name archived so far (link-key.ts, and the name): absent from checkpoints of versions before hard links. */
  readonly links?: readonly (readonly [string, string])[];
  /** Of `totals.files`, those archived as hard links: absent from checkpoints of versions before it was counted. */
  readonly hardlinks?: number;
  /** The archive's bytes its pieces wrote so far (TenantArchive.checkpointToSave), for the footer: absent from checkpoints of versions before it. */
  readonly archiveBytes?: number;
}

export interface SuspendedArchive {
  readonly suspended: true;
  readonly checkpoint: ArchiveCheckpoint;
  /** Input of the unfinished zstd frame: the next run compresses it first. */
  readonly pendingFrame: Buffer;
}

export interface TenantArchiveOptions {
  /** Absolute path of the tenant directory. */
  readonly tenantDir: string;
  readonly tenant: string;
  readonly createdAt: Date;
  readonly compression?: CompressOptions;
  readonly onProgress?: (progress: ArchiveProgress) => void;
  /** How to call the file system; by default chosen for the tenant's (file-access.ts). */
  readonly fileAccess?: FileAccess;
  /** How live SQLite databases are read; by default by the tenant's file system (sqlite-policy.ts). */
  readonly sqlite?: SqliteOptions;
  /** The backup's: once aborted, a wait for a database's lock (or for it to hold still) ends with its reason. */
  readonly signal?: AbortSignal;
  /** Asked between entries whether to stop here (the archive is then suspended, not finished). */
  readonly stopWhen?: () => boolean;
  /** Where an earlier run stopped: this one writes the rest (without the marker). `createdAt` must be that run's. */
  readonly resume?: SuspendedArchive;
  /** Where snapshots and copies of live files go; the run removes it when it ends. @default an area under os.tmpdir() */
  readonly temp?: TempArea;
}

export interface TenantArchive {
  /** The archive's bytes; consume it once. Stopping early cancels the walk. */
  readonly chunks: AsyncGenerator<Buffer>;
  /** Resolves once the manifest has been written into the stream, or once the run stopped early (`stopWhen`). */
  readonly summary: Promise<ArchiveSummary | SuspendedArchive>;
  /** Bytes of file content read so far, the file being read included (ArchiveProgress counts finished files). */
  contentRead(): number;
  /**
   * What to save of a suspended run once `chunks` is all read: its checkpoint, with the
   * archive's bytes all its pieces wrote (for the footer; left out when an earlier piece's are unknown).
   */
  checkpointToSave(suspended: SuspendedArchive): ArchiveCheckpoint;
  /** Stops the walk at its next entry, whether or not `chunks` is still being read; `summary` then rejects. */
  abort(reason: unknown): void;
}

export function createTenantArchive(options: TenantArchiveOptions): TenantArchive {
  const { resume } = options;
  const writer = new ArchiveWriter(
    options.tenant,
    options.compression,
    options.createdAt,
    resume === undefined ? undefined : { pendingFrame: resume.pendingFrame, contentBytes: resume.checkpoint.contentBytes, ...(knownBytes(resume.checkpoint.archiveBytes) && { archiveBytes: resume.checkpoint.archiveBytes }) },
  );
  const summary = packTenant(writer, options);
  summary.catch((error: unknown) => writer.abort(error));

  async function* chunks(): AsyncGenerator<Buffer> {
    try {
      yield* writer.chunks();
      await summary;
    } finally {
      writer.abort(new Error('archive stream closed'));
    }
  }
  return { chunks: chunks(), summary, contentRead: () => writer.contentRead, checkpointToSave: ({ checkpoint }) => withArchiveBytes(checkpoint, writer.bytesWritten), abort: (reason) => writer.abort(reason) };
}

function withArchiveBytes(checkpoint: ArchiveCheckpoint, archiveBytes: number | undefined): ArchiveCheckpoint {
  const { archiveBytes: _earlier, ...rest } = checkpoint;
  return archiveBytes === undefined ? rest : { ...rest, archiveBytes };
}

/** A checkpoint's byte count the footer can carry: one from a damaged state is dropped, not written. */
function knownBytes(bytes: number | undefined): bytes is number {
  return Number.isSafeInteger(bytes) && bytes! >= 0;
}

async function packTenant(writer: ArchiveWriter, options: TenantArchiveOptions): Promise<ArchiveSummary | SuspendedArchive> {
  const { tenant, tenantDir, stopWhen } = options;
  const root = await tenantRoot(tenantDir, tenant);
  const from = options.resume?.checkpoint;
  // Only a run that may stop has to save the digests (hashed in JavaScript then: tree-digest.ts).
  const digest = from === undefined ? new TreeDigest({ resumable: stopWhen !== undefined }) : TreeDigest.resume(from.digest);
  const notes: WalkNotes = { skipped: [...(from?.skipped ?? [])], warnings: [...(from?.warnings ?? [])] };
  const totals = { ...(from?.totals ?? { files: 0, directories: 0, symlinks: 0, bytes: 0 }) };
  const access = options.fileAccess ?? fileAccessFor(tenantDir);
  const context: PackContext = {
    writer,
    scratch: new ReadScratch(WHOLE_READ_LIMIT),
    notes,
    access,
    temp: options.temp ?? TempArea.underTmpdir(),
    snapshotted: new Set(from?.snapshotted),
    settled: new Set(from?.settled),
    sqlite: sqlitePolicyFor(tenantDir, options.sqlite),
    links: LinkTargets.fromEntries(from?.links),
    ...(options.signal !== undefined && { signal: options.signal }),
  };
  /** Companions met before their database (not the walk's byte order, but allowed): held until it is packed. */
  const waiting = new Map<string, FileItem[]>();
  // Held back by an earlier run: its path as the walk's (a real path: tenant-walk.ts).
  const realDir = from?.waiting.length ? await fs.realpath(tenantDir) : tenantDir;
  for (const { database, relPath } of from?.waiting ?? []) waiting.set(database, [...(waiting.get(database) ?? []), heldBackItem(realDir, relPath)]);
  const run = new PackRun(context, digest, totals, from?.hardlinks ?? 0, waiting, from?.resumeAfter, stopWhen, options.onProgress);

  // Databases with companions, and the companions, are read in their turn (live-files.ts), not ahead.
  const walk = new TenantWalk(tenantDir, access, from === undefined ? {} : { resumeAfter: from.resumeAfter });
  const ahead = readAheadFor(walk, access, (item) => databaseOf(item) === undefined && !hasCompanions(item));
  let stopped = false;
  try {
    for (;;) {
      const next = ahead.next();
      const segment = next instanceof Promise ? await next : next;
      if (segment === undefined) break;
      stopped = await run.packSegment(segment);
      if (stopped) break;
    }
    // Companions whose database never came (it was not a regular file, or vanished from the listing).
    if (!stopped) for (const companions of waiting.values()) for (const companion of companions) run.record(await packFile(context, companion));
  } catch (error) {
    // A read that failed because the whole tenant went away says so.
    throw (await assertSameRoot(tenantDir, tenant, root).then(
      () => undefined,
      (vanished: unknown) => (vanished instanceof TenantNotFoundError ? vanished : undefined),
    )) ?? error;
  } finally {
    await ahead.close();
    await context.temp.dispose();
  }

  assertNoMountMade(walk, tenant);
  if (stopped) {
    const { pendingFrame, contentBytes } = writer.suspend();
    const checkpoint: ArchiveCheckpoint = {
      resumeAfter: run.last!,
      digest: digest.save(),
      skipped: notes.skipped,
      warnings: notes.warnings,
      totals,
      contentBytes,
      snapshotted: [...context.snapshotted],
      settled: [...context.settled],
      waiting: [...waiting].flatMap(([database, companions]) => companions.map((companion) => ({ database, relPath: companion.relPath }))),
      links: context.links.entries(),
      hardlinks: run.hardlinks,
    };
    return { suspended: true, checkpoint, pendingFrame };
  }

  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    formatVersion: MANIFEST_FORMAT_VERSION,
    tenant,
    createdAt: options.createdAt.toISOString(),
    tool: { name: TOOL_NAME, version: TOOL_VERSION },
    directories: digest.directoryList(),
    skipped: notes.skipped,
    warnings: notes.warnings,
    totals,
  };
  await assertSameRoot(tenantDir, tenant, root);
  const manifestSha256 = await writer.finish(manifest);
  return { manifest, manifestSha256, hardlinks: run.hardlinks, ...(writer.manifestEntriesToRead !== undefined && { manifestEntriesToRead: writer.manifestEntriesToRead }) };
}

/**
 * One run's packing of the walk's items, a segment at a time. Its own class of small methods,
 * not closures in packTenant: V8's optimizing compiler compiles a hot function whole, and
 * packTenant's ~170 lines were compiled twice a tiny backup (the first code thrown away for
 * type feedback: a wait for a reader not met before), 333 ms of compile time in a 20,000-file
 * backup (docs/benchmarks.md, stop 46); here only the small per-item methods are hot.
 */
class PackRun {
  /** The last item dealt with, and whether a run may stop after it: not right after a directory, whose note (it vanished) or listing follows. */
  last: string | undefined;
  private mayStop = false;

  constructor(
    private readonly context: PackContext,
    private readonly digest: TreeDigest,
    private readonly totals: { files: number; directories: number; symlinks: number; bytes: number },
    public hardlinks: number,
    /** Companions met before their database (not the walk's byte order, but allowed): held until it is packed. */
    private readonly waiting: Map<string, FileItem[]>,
    resumeAfter: string | undefined,
    private readonly stopWhen: (() => boolean) | undefined,
    private readonly onProgress: ((progress: ArchiveProgress) => void) | undefined,
  ) {
    this.last = resumeAfter;
  }

  /** Packs a segment's items; true if the run stopped (`stopWhen`) before its end. */
  async packSegment(segment: Segment): Promise<boolean> {
    const { items, slots } = segment;
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (item.kind === 'note') {
        recordNote(this.context.notes, item);
        this.last = item.relPath;
        continue;
      }
      if (this.mayStop && this.stopWhen?.() === true) return true;
      this.last = item.relPath;
      this.mayStop = item.kind !== 'directory';
      if (item.kind !== 'file') this.record(await packItem(this.context.writer, item));
      else if (slots[i] === -1) await this.packInTurn(item);
      else {
        const found = segment.partOf(slots[i]!);
        const packed = this.packRead(item, found instanceof Promise ? await found : found, slots[i]!);
        if (packed !== undefined) await packed;
      }
    }
    return false;
  }

  /** A file the read-ahead read (or found vanished, or a later name of): undefined when done without waiting. */
  private packRead(item: FileItem, part: ReadPart, slot: number): Promise<void> | undefined {
    const outcome = part.outcome(slot);
    if (outcome === READ_VANISHED) {
      noteVanished(this.context.notes, item.relPath);
      return undefined;
    }
    if (outcome === READ_LINKED) return this.packLinked(item, part, slot);
    if (outcome !== READ_WHOLE) return this.packInTurn(item);
    const content = part.content(slot);
    // A database (by its header) takes the general way: a snapshot, or a checked copy.
    if (isSqliteHeader(content)) return this.packInTurn(item);
    const written = this.context.writer.file({ relPath: item.relPath, mode: part.mode(slot), mtimeMs: part.mtimeMs(slot) }, content);
    this.digest.addFileDigest(item.relPath, content.length, part.sha256Bytes(slot), part.sha256Offset(slot));
    this.countFile(content.length);
    return written;
  }

  /**
   * Not read: a later name of a file archived already is a link to it, the first one is read now,
   * as a file of one name is (on a local disk in one go by path, not through a handle: docs/scale.md).
   */
  private async packLinked(item: FileItem, part: ReadPart, slot: number): Promise<void> {
    const target = this.context.links.get(part.linkIdentity(slot));
    if (target === undefined) {
      this.record(await packFile(this.context, item));
      return;
    }
    const written = this.context.writer.hardlink({ relPath: item.relPath, target, mode: part.mode(slot), mtimeMs: part.mtimeMs(slot) });
    if (written !== undefined) await written;
    this.record({ path: item.relPath, type: 'hardlink', target });
  }

  /** A file the read-ahead did not archive: the general way, companions after their database. */
  private async packInTurn(item: FileItem): Promise<void> {
    const { context, waiting } = this;
    const base = databaseOf(item);
    if (base !== undefined && !context.settled.has(base)) {
      waiting.set(base, [...(waiting.get(base) ?? []), item]);
      return;
    }
    this.record(await packCompanionOrFile(context, item, base));
    if (hasCompanions(item)) {
      context.settled.add(item.relPath);
      for (const companion of waiting.get(item.relPath) ?? []) this.record(await packCompanionOrFile(context, companion, item.relPath));
      waiting.delete(item.relPath);
    }
  }

  record(entry: TreeEntry | undefined): void {
    if (entry === undefined) return;
    this.digest.add(entry);
    if (entry.type === 'file') this.countFile(entry.size);
    else if (entry.type === 'hardlink') {
      this.countFile(0); // a name of a file counted once for its content
      this.hardlinks++;
    }
    else if (entry.type === 'directory') this.totals.directories++;
    else this.totals.symlinks++;
  }

  private countFile(size: number): void {
    const { totals } = this;
    totals.files++;
    totals.bytes += size;
    this.onProgress?.({ files: totals.files, bytes: totals.bytes });
  }
}

/**
 * Fails if a file system was mounted inside the tenant while the run read it: a directory
 * the walk had listed before the mount was made had its files read through the mount, under
 * the tenant's names (another directory's files, with a bind mount), which no check of a
 * path tells from its own. Run again, the walk finds the mount point and skips it.
 */
function assertNoMountMade(walk: TenantWalk, tenant: string): void {
  const made = walk.mountsMadeSince();
  if (made.length === 0) return;
  const more = made.length > 1 ? ` (and ${made.length - 1} more)` : '';
  throw new FileSystemError(
    `something was mounted inside tenant "${tenant}" during its backup, at ${shownPath(made[0]!)}${more}: what was read below it may be what is mounted there, not the tenant's own files; nothing was stored (run the backup again: a mount point is archived as an empty directory)`,
  );
}

/** The tenant directory as the run begins. */
async function tenantRoot(tenantDir: string, tenant: string): Promise<Stats> {
  const stat = await fs.lstat(tenantDir).catch((error: unknown) => {
    if (isVanished(error)) return undefined;
    throw error;
  });
  if (stat === undefined || !stat.isDirectory()) throw vanishedTenant(tenantDir, tenant);
  return stat;
}

/** Fails unless the tenant's name still holds the directory the run began with. */
async function assertSameRoot(tenantDir: string, tenant: string, root: Stats): Promise<void> {
  const now = await tenantRoot(tenantDir, tenant);
  if (now.ino !== root.ino || now.dev !== root.dev) throw vanishedTenant(tenantDir, tenant);
}

function vanishedTenant(tenantDir: string, tenant: string): TenantNotFoundError {
  return new TenantNotFoundError(`tenant "${tenant}" vanished from ${path.dirname(tenantDir)} during its backup (removed or renamed); nothing was stored`);
}

/** A companion held back by an earlier run, as the walk would have listed it. */
function heldBackItem(tenantDir: string, relPath: string): FileItem {
  const name = relPath.slice(relPath.lastIndexOf('/') + 1);
  return { kind: 'file', relPath, dirPath: path.dirname(path.join(tenantDir, relPath)), name, listing: { names: PackedListing.of([name]) }, stat: undefined };
}

async function packItem(writer: ArchiveWriter, item: Extract<WalkItem, { kind: 'directory' | 'symlink' }>): Promise<TreeEntry> {
  const { relPath } = item;
  const mtimeMs = item.stat.mtimeMs;
  if (item.kind === 'directory') {
    await writer.directory({ relPath, mode: item.stat.mode & 0o7777, mtimeMs });
    return { path: item.relPath, type: 'directory' };
  }
  await writer.symlink({ relPath, target: item.target, mode: 0o777, mtimeMs });
  return { path: item.relPath, type: 'symlink', target: item.target };
}
