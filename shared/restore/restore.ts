// Restores one tenant from an archive location: the core operation behind the CLI's
// `tenants restore` and the restore Lambda. Streams the archive (no temporary copy),
// extracts it into a staging directory under the base dir, verifies it against its
// manifest, and only then commits it into the slot (see tenant/slot.ts). Anything that
// fails or is refused leaves the slot exactly as it was and nothing else behind. First it
// sweeps the base dir of dead operations' leftovers (base-dir-sweep.ts) and settles any
// interrupted restore of the target under its lock.

import { promises as fs } from 'node:fs';
import path from 'node:path';

import { sweepBaseDir } from '../tenant/base-dir-sweep.js';
import { crashPoint } from '../crash-points.js';
import { RemovalStoppedError } from '../tenant/remove-tree.js';
import { createDirectories, removeCreatedDirectories } from '../created-directories.js';
import { nearestExisting, whyNotWritable } from '../file-system-kind.js';
import { AbortedError, ArchiveLimitError, describeError, errnoCode, errnoMessage, FileSystemError, OpenClawError, StorageError, TenantBusyError, UsageError } from '../errors.js';
import type { AgeIdentity } from '../age/keys.js';
import type { AgeCliRoute } from '../archive/encrypted-archive.js';
import type { ExtractProgress } from './extract.js';
import { DEFAULT_LIMITS, type ExtractLimits } from './limits.js';
import type { ManifestNote } from '../archive/manifest.js';
import { archiveCounts, copiedLinksNotice, encryptionNotices, ephemeralNotice, NO_MANIFEST_NOTICE, readTenantArchive, type ArchiveCounts, type ArchiveEntryLimit, type ArchiveSizeLimit } from './read-archive.js';
import { assertTenantName } from '../tenant/names.js';
import type { ArchiveLocation, StoreEndpoint } from '../storage/types.js';
import { acquireTenantLock, lockPathFor, type TenantLock } from '../tenant/lock.js';
import { assertNoContinuation, type ChainEnder } from '../backup/continuation.js';
import { assertSlotAvailable, createStagingArea, MoveInPendingError, recoverSlotWithin, reopenStagingArea, STAGING_MODE, type RecoverOptions, type RecoveryAction, type StagingArea } from '../tenant/slot.js';
import { assertNoRestoreChain, loadRestoreCheckpoint, MAX_REWRITES, removeRestoreCheckpoint, RESTORE_CHECKPOINT_VERSION, saveRestoreCheckpoint, type RestoreCheckpoint } from './restore-continuation.js';
import { ExtractionSuspended, type StoredRead } from './extract.js';
import { inheritedOwner, type Owner } from '../tenant/ownership.js';
import { tenantsDirNotFound } from '../tenant/tenants.js';
import { assertRemovalsCanBeTold, DIRECTORY_FLAGS, namedBy, pinDirectory, type FileAccess } from '../file-access.js';
import { formatBytes, groupThousands, plural, shownPath } from '../format.js';

export interface RestoreRequest {
  readonly tenantsDir: string;
  readonly location: ArchiveLocation;
  /** Restore under this name instead of the archive's. */
  readonly as?: string;
  /** Replace an existing tenant in the slot. */
  readonly force?: boolean;
  readonly limits?: ExtractLimits;
  readonly signal?: AbortSignal;
  /** `archiveTotalBytes`: the stored archive's size, when the location told it (ReadOptions.onSize). */
  readonly onProgress?: (progress: ExtractProgress & { readonly archiveBytes: number; readonly archiveTotalBytes?: number }) => void;
  /** How to call the file system; by default chosen for the base dir's (file-access.ts). */
  readonly fileAccess?: FileAccess;
  /** When files start being written on a worker thread (extract.ts). */
  readonly workerThresholdBytes?: number;
  /**
   * `--owner`: who owns the restored tree. By default, when running as root, the owner of the
   * tenant replaced, else of the base dir (ownership.ts); otherwise the process's own user.
   * Changing to another user needs root.
   */
  readonly owner?: Owner;
  /** Identities to decrypt an age-encrypted archive with (`--identity`); without, such an archive is refused with a hint. */
  readonly identities?: readonly AgeIdentity[];
  /** Where the hints send an age file only the `age` CLI reads (encrypted-archive.ts AgeCliRoute). @default 'pipe' */
  readonly ageCli?: AgeCliRoute;
  /** Refuse, before extracting anything, an archive stored larger than this (the restore function: what its time left can restore). */
  readonly maxArchiveBytes?: ArchiveSizeLimit | ((archiveBytes: number | undefined) => ArchiveSizeLimit);
  /** Refuse, before extracting anything, an archive whose footer counts more entries (the restore function: what its time left can stage). */
  readonly maxArchiveEntries?: (archiveBytes: number | undefined) => ArchiveEntryLimit;
  /** Who ends a backup in pieces that broke, as a tenant it keeps busy is refused with (continuation.ts). @default `tenants recover` */
  readonly chainEnder?: ChainEnder;
  /**
   * Epoch ms by which a restore that failed or was stopped must have returned (the restore
   * function: its invocation's end less the time to answer): removing its staging directory
   * stops there, leaving the rest, with the journal, to the next command on the tenant or the
   * next sweep of the base dir, as a kill would. @default no limit
   */
  readonly cleanupBy?: number;
  /**
   * Stops removing what interrupted operations left (the base dir's sweep, the tenant's own
   * trash) once aborted: the restore function's share of its time for them; the rest is left
   * to the next command (BackupRequest.leftoversSignal). @default no limit
   */
  readonly leftoversSignal?: AbortSignal;
  /** Told of a restore in pieces of the tenant (or, sweeping, of another) that its recovery ended (RecoverOptions.onRestoreChainEnded). */
  readonly onRestoreChainEnded?: RecoverOptions['onRestoreChainEnded'];
}

export interface RestoreResult extends ArchiveCounts {
  readonly operation: 'restore';
  /** The name the tenant was restored under. */
  readonly tenant: string;
  /** The name the archive carries. */
  readonly archiveTenant: string;
  readonly location: string;
  /** The S3-compatible endpoint the archive came from, and what chose it; absent for AWS and local files. */
  readonly endpoint?: StoreEndpoint;
  readonly durationMs: number;
  /** Whether every entry was checked against the archive's manifest. */
  readonly verified: boolean;
  readonly replaced: boolean;
  readonly backupCreatedAt?: string;
  /** Notes the backup recorded (files changed while read, databases archived raw). */
  readonly warnings: readonly ManifestNote[];
  readonly recovered: RecoveryAction;
  readonly notices: readonly string[];
  /** Who the restored entries were given to (a restore as root, or --owner); absent: the process's own user. */
  readonly owner?: Owner;
  /** The stored archive was age-encrypted and decrypted (every chunk authenticated). */
  readonly decrypted?: true;
}

export { NO_MANIFEST_NOTICE, NOT_ENCRYPTED_NOTICE } from './read-archive.js';

/**
 * A restore in pieces (restore-continuation.ts; the restore function): the piece stops
 * between two entries once `suspend` says so, keeping its staging directory and a checkpoint
 * for the next piece, which reads the same object again and replays what came before.
 */
export interface RestorePieces {
  /** Names the chain (continuation.ts newChainId): the first piece's checkpoint carries it, the later pieces name it. */
  readonly chain: string;
  /** Asked between two entries with the time the queued writes still need; once true, this piece stops as soon as it has written something and they are done. */
  readonly suspend: (backlogMs: number) => boolean;
  /**
   * A later piece: the tenant the chain restores into (its checkpoint's name), and which piece
   * it is (the queue message's, which always names it; absent: a caller that runs its pieces
   * one after another and never twice, so no duplicate to recognise). Absent: the first piece.
   */
  readonly resume?: { readonly tenant: string; readonly piece?: number };
  /**
   * The hand-over (the restore function queues the next piece): called once the piece's
   * checkpoint is saved marked `handingOver`, still under the tenant's lock, the mark cleared
   * once it returns. A first piece killed before it had leaves a chain recovery ends
   * (restore-continuation.ts `handingOver`) rather than one that keeps the tenant busy with no
   * piece to come; failing, it ends the chain (checkpoint and staging removed) and its error
   * is the piece's. A later piece's message comes again (killed, or its error handed back):
   * it finds the mark and only hands over again, without reading the archive.
   */
  readonly handOver?: (suspended: RestoreSuspended) => Promise<void>;
  /**
   * The last piece of a chain, once committed and before it removes the checkpoint (still
   * marked `committing`): the restore function publishes the completion event here, so that a
   * piece killed before it had leaves the checkpoint for the recovery that says it
   * (RecoverOptions.onRestoreChainEnded).
   */
  readonly onCommitted?: (result: RestoreResult) => Promise<void>;
  /**
   * The most pieces the chain may take (the restore function: those that fit in the abandon
   * time, restoreChainPieceLimit), asked by a later piece once it has its checkpoint: a chain
   * whose pieces so far read too small a share of the stored archive for the rest to fit is
   * ended there (chainTooSlow). Absent: no bound.
   */
  readonly maxPieces?: () => ChainPieceLimit;
}

/** The most pieces a restore chain may take, and why (the end of the message that ends a chain needing more). */
export interface ChainPieceLimit {
  readonly pieces: number;
  readonly reason: string;
}

/**
 * Why a later piece ends its chain, from how far its pieces so far got; undefined: it may go
 * on. Every piece reads the archive from its start and replays what earlier pieces wrote before
 * it writes, so a later piece replays at least as long as an earlier one and has at most as
 * long to write: each piece gets no further through the archive's work than the one before it.
 * `done` pieces that got a share s of the way then got at most s/done each on average, the last
 * no more than that, and every later one no more than the last: the chain takes at least done/s
 * pieces in all. Above the bound it cannot end within it, and would go on for days with the
 * tenant busy. The share is the larger of the stored bytes read and, where the footer counted
 * them (`read.entries`), the entries written: the work done (bytes written at one rate, entries
 * staged at another) is a share between the two, so the larger is never under it. The bytes are
 * counted as they came in, ahead of the entry a piece stopped at: never under the truth either;
 * the count errs toward going on. An encrypted archive's footer gave no count: its bytes alone
 * stand for its work, which an archive much slower to write at its start than at its end
 * (millions of tiny files, then a few large ones) breaks: its chain can be ended early.
 */
export function chainTooSlow(location: string, done: number, read: { readonly bytes: number; readonly total: number; readonly entries?: number; readonly written: number }, limit: ChainPieceLimit): string | undefined {
  if (read.total <= 0) return undefined;
  // A footer counting fewer entries than the pieces wrote lies (restore and verify refuse it at its end): its count judges nothing,
  // the bytes alone do. Taken, `entries: 1` made every later piece's share 1 (done), and a hostile archive's chain ran to the abandon time.
  const entries = read.entries === undefined || read.entries <= 0 || read.written > read.entries ? undefined : read.entries;
  const share = Math.min(1, Math.max(read.bytes / read.total, entries === undefined ? 0 : read.written / entries));
  if (share >= 1 || done <= limit.pieces * share) return undefined;
  const atLeast = share === 0 ? undefined : Math.ceil(done / share);
  const percent = 100 * share;
  const shown = percent >= 1 || percent === 0 ? percent.toFixed(0) : percent.toPrecision(1);
  const through = entries === undefined ? `read ${shown}% of its ${formatBytes(read.total)}` : `got ${shown}% through its ${formatBytes(read.total)} and ${plural(entries, 'entry', 'entries')} (the further of the two)`;
  return (
    `${location} cannot be restored in pieces in time: ${plural(done, 'piece')} ${through} (each replays what earlier pieces wrote before it writes), ` +
    `so the chain needs ${atLeast === undefined ? 'more pieces than can be counted' : `at least ${groupThousands(atLeast)} pieces`}, more than the ${groupThousands(limit.pieces)} ${limit.reason}`
  );
}

/** What a stopping piece's checkpoint says it read: its own count, with the footer's entries a first piece read carried on. */
function storedReadNow(read: StoredRead | undefined, before: RestoreCheckpoint['storedRead']): Pick<RestoreCheckpoint, 'storedRead'> {
  if (read === undefined) return {};
  const entries = read.entries ?? before?.entries;
  return { storedRead: { bytes: read.bytes, total: read.total, ...(entries !== undefined && { entries }) } };
}

/** A piece stopped for the next one: the tenant's staging and checkpoint wait for it; the slot holds what it held. */
export interface RestoreSuspended {
  readonly operation: 'restore';
  readonly suspended: true;
  readonly tenant: string;
  readonly chain: string;
  readonly location: string;
  /** Writer calls (directories, files, links) done over all pieces so far. */
  readonly written: number;
  readonly pieces: number;
  readonly durationMs: number;
}

/** A later piece found its chain ended or already past it (a duplicate delivery of a piece already run, or the chain abandoned): nothing done. */
export interface RestoreChainEnded {
  readonly operation: 'restore';
  readonly chainEnded: true;
  readonly tenant: string;
  readonly chain: string;
  /** The chain goes on, past this piece: this delivery is a duplicate of a piece already run, whose next piece is queued. */
  readonly alreadyRun?: true;
}

export async function restoreTenant(request: RestoreRequest): Promise<RestoreResult> {
  return (await restoreTenantPiece(request)) as RestoreResult;
}

/**
 * restoreTenant, in pieces when `pieces` is given: a piece stops only where the next can read
 * the very object again (its store named it: ReadOptions.onIdentity; a `--pipe` command's
 * output cannot be), else the restore runs as one piece, as restoreTenant does. A later piece
 * run as root pins the staging directory by the inode its journal recorded.
 */
export async function restoreTenantPiece(request: RestoreRequest & { readonly pieces?: RestorePieces }): Promise<RestoreResult | RestoreSuspended | RestoreChainEnded> {
  const started = Date.now();
  const { tenantsDir, location, signal } = request;
  let force = request.force ?? false;
  /** A later piece's are its checkpoint's, as the first piece was given them: its message does not change them. */
  let limits = request.limits ?? DEFAULT_LIMITS;
  const resumeTenant = request.pieces?.resume === undefined ? undefined : assertTenantName(request.pieces.resume.tenant, 'tenant');
  const targetOverride = resumeTenant ?? (request.as === undefined ? undefined : assertTenantName(request.as, '--as name'));
  assertRemovalsCanBeTold();
  const self = processOwner();
  if (request.owner !== undefined && self !== undefined && self.uid !== 0 && request.owner.uid !== self.uid) {
    throw new UsageError(`--owner ${request.owner.uid}:${request.owner.gid} gives the tenant to another user, which needs root: run the restore as root, or leave --owner out`);
  }
  const { pieces } = request;
  const ended = request.onRestoreChainEnded === undefined ? {} : { onRestoreChainEnded: request.onRestoreChainEnded };
  /** A later piece's checkpoint, loaded under the lock. */
  let checkpoint: RestoreCheckpoint | undefined;
  /** What a later piece found its checkpoint past it to be: a duplicate delivery, or its own earlier run that had not handed over. */
  let past: 'already-run' | 'hand-over-again' | undefined;
  /** What the store says this piece read (ReadOptions.onIdentity). */
  let identity: string | undefined;
  /** Whether this piece has marked its checkpoint as written past (a failure from then on ends the chain). */
  let marked = false;
  /** Whether the archive was read to its end (this piece is the last: it commits from here). */
  let extractedAll = false;
  let suspendedResult: RestoreSuspended | undefined;

  let lock: TenantLock | undefined;
  let staging: StagingArea | undefined;
  let pinned: PinnedStaging | undefined;
  let recovered: RecoveryAction = 'none';
  /** What recovering the slot left and said so (a leftover it could not remove). */
  const recoveryNotices: string[] = [];
  let replaced = false;
  /** Who gets the restored entries; undefined: whoever creates them (no chown call). */
  let owner: Owner | undefined;

  // A piece names its chain in the lock: the next one, queued by a first piece still holding it, waits for it.
  const lockOptions = pieces === undefined ? {} : { target: `restore chain ${pieces.chain}`, waitForSameTarget: resumeTenant !== undefined };
  async function claimSlot(tenant: string): Promise<void> {
    lock = await acquireTenantLock(tenantsDir, tenant, 'restore', lockOptions).catch(async (error: unknown) => {
      // Another restore onto this new gateway, refused, removed the base dir it had made
      // (empty until a lock is in it) after we found it there: make it again, once.
      if (errnoCode(error instanceof FileSystemError ? error.cause : error) !== 'ENOENT') throw error;
      await makeBaseDir();
      return acquireTenantLock(tenantsDir, tenant, 'restore', lockOptions);
    }).catch(async (error: unknown) => {
      if (resumeTenant !== undefined) await endChainWithoutRoomForLock(tenant, error);
      throw error;
    });
    await assertNoContinuation(tenantsDir, tenant, 'restore', request.chainEnder);
    // Recovery first: it ends a restore chain no piece saved for the abandon time, and leaves a live one, refused next.
    recovered = await recoverSlotWithin(tenantsDir, tenant, { notices: recoveryNotices, ...(request.leftoversSignal !== undefined && { signal: request.leftoversSignal }), ...ended, ...(resumeTenant !== undefined && { endForeignRestoreChain: true }) });
    if (resumeTenant === undefined) await assertNoRestoreChain(tenantsDir, tenant, 'restore');
    if (resumeTenant !== undefined) {
      checkpoint = await loadRestoreCheckpoint(tenantsDir, tenant);
      if (checkpoint?.chain !== pieces!.chain) return;
      if (checkpoint.location !== location.display) {
        throw new UsageError(`the continuing restore of "${tenant}" reads ${checkpoint.location}, not ${location.display}: a piece goes on only from its own archive`);
      }
      const piece = pieces!.resume!.piece;
      if (piece !== undefined && checkpoint.pieces !== piece - 1) {
        past = checkpoint.pieces === piece && checkpoint.handingOver === true ? 'hand-over-again' : 'already-run';
        return;
      }
      force = checkpoint.force;
      if (checkpoint.limits !== undefined) limits = checkpoint.limits;
      // Its staging gone or replaced, nothing can go on from it: the chain ends here (the
      // journal is then an interrupted restore's, which the next recovery settles).
      staging = await reopenStagingArea(tenantsDir, tenant, checkpoint.staging).catch(async (error: unknown) => {
        await removeRestoreCheckpoint(tenantsDir, tenant);
        throw error;
      });
      // Killed (or stopped by its deadline) after its first write: this piece writes again past the count, unless pieces in a row ended so.
      if (checkpoint.writing && (checkpoint.rewrites ?? 0) >= MAX_REWRITES) {
        throw new FileSystemError(
          `the continuing restore of "${tenant}" cannot go on: ${(checkpoint.rewrites ?? 0) + 1} pieces in a row ended while they wrote past its checkpoint (killed: out of memory; or stopped by the function's deadline: their writes outlasted the time they counted on), and the next would too; what it had staged is removed, the slot holds what it held: restore again with more memory or a longer timeout for the restore function, or from the CLI`,
        );
      }
      // Its pace so far tells a chain that cannot end within the pieces it may take. A
      // checkpoint with no entry count (its first piece ran on the previous version) is judged
      // once this piece has read the footer's (onFooterEntries), not by its bytes alone: tiny
      // files first had ended a chain that would finish.
      if (checkpoint.storedRead?.entries !== undefined) assertChainFast(checkpoint, undefined);
    }
    replaced = (await assertSlotAvailable(tenantsDir, tenant, force)) === 'occupied';
    const wanted = checkpoint !== undefined ? checkpoint.owner : (request.owner ?? (self?.uid === 0 ? await inheritedOwner(tenantsDir, tenant) : undefined));
    owner = wanted === undefined || (wanted.uid === self?.uid && wanted.gid === self.gid) ? undefined : wanted;
  }

  /**
   * A later piece whose lock the volume has no room for (no inode left: ENOSPC, EDQUOT) would
   * fail the same way on every delivery, land in the restore DLQ and leave the tenant busy for
   * the abandon time: it ends the chain instead (its checkpoint removed, its failure event
   * sent), unless a lock is there (a piece of the chain may be running: its message comes again).
   */
  async function endChainWithoutRoomForLock(tenant: string, error: unknown): Promise<void> {
    const code = errnoCode(error instanceof FileSystemError ? error.cause : error);
    if (code !== 'ENOSPC' && code !== 'EDQUOT') return;
    if ((await fs.lstat(lockPathFor(tenantsDir, tenant)).catch(() => undefined)) !== undefined) return;
    if ((await loadRestoreCheckpoint(tenantsDir, tenant).catch(() => undefined))?.chain !== pieces!.chain) return;
    await removeRestoreCheckpoint(tenantsDir, tenant);
    throw new FileSystemError(
      `the continuing restore of "${tenant}" cannot go on: the tenant volume has no room for its lock (${code}: no inode or no space left), as it would not on another delivery; the chain ends here, what it had staged is removed by the next command on the tenant, the slot holds what it held: free inodes or space on the volume, then restore again`,
      { cause: error },
    );
  }

  /** A later piece's chain ended (ArchiveLimitError) when its pace so far needs more pieces than it may take (chainTooSlow); `entries`: the footer's count where the checkpoint has none. */
  function assertChainFast(saved: RestoreCheckpoint, entries: number | undefined): void {
    if (saved.storedRead === undefined || pieces!.maxPieces === undefined) return;
    const read = { ...saved.storedRead, ...(saved.storedRead.entries === undefined && entries !== undefined && { entries }), written: saved.written };
    const tooSlow = chainTooSlow(saved.location, saved.pieces, read, pieces!.maxPieces());
    if (tooSlow !== undefined) throw new ArchiveLimitError(`${tooSlow}; the chain ends here, what it had staged is removed, the slot holds what it held`);
  }

  /**
   * Why a mkdir of the base dir failed with ENOENT where no part of the path was missing by
   * the time it is asked: the nearest existing directory is on one of the kernel's file
   * systems (as the dry run says it); undefined for anything else.
   */
  async function kernelFileSystemSaid(error: NodeJS.ErrnoException): Promise<string | undefined> {
    if (error.code !== 'ENOENT') return undefined;
    const from = await nearestExisting(tenantsDir);
    const refusal = await whyNotWritable(from);
    if (refusal?.kind === 'kernel') return `${shownPath(from)} takes no new files (a ${refusal.fileSystem} file system): give a base dir on a disk`;
    const parentThere = (await fs.stat(path.dirname(tenantsDir)).catch(() => undefined))?.isDirectory() === true;
    return parentThere ? `${path.dirname(tenantsDir)} takes no new directories (no such file or directory): give a base dir on a disk` : undefined;
  }

  let createdDirectories: readonly string[] = [];
  /** A restore onto a new gateway may create its base dir; a refused one removes it again. */
  async function makeBaseDir(): Promise<void> {
    const created = await createDirectories(tenantsDir, 0o750).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code === 'EEXIST' || error.code === 'ENOTDIR') throw tenantsDirNotFound(tenantsDir, 'ENOTDIR');
      // `--tenants-dir /proc/tenants` said "unexpected error: ENOENT: no such file or directory, mkdir …";
      // so did `/proc/x/tenants` (its mkdir of /proc/x), after /proc/tenants was mended alone.
      const why = errnoMessage(error) ?? (await kernelFileSystemSaid(error));
      throw why === undefined ? error : new FileSystemError(`cannot create the tenant base dir ${tenantsDir}: ${why}`, { cause: error });
    });
    createdDirectories = [...createdDirectories, ...created];
    if (created.length > 0 && request.owner !== undefined) await giveCreatedBaseDir(tenantsDir, request.owner);
  }

  /** The chain's checkpoint as this piece leaves it (suspended), or the first piece's. */
  function checkpointNow(fields: Pick<RestoreCheckpoint, 'written' | 'writing' | 'pieces' | 'copiedLinks' | 'storedRead' | 'lastWritten' | 'rewriting'>): RestoreCheckpoint {
    const now = new Date().toISOString();
    return {
      version: RESTORE_CHECKPOINT_VERSION,
      chain: pieces!.chain,
      tenant: stagedTenant!,
      location: location.display,
      identity: identity!,
      staging: path.basename(staging!.dir),
      force,
      limits,
      ...(owner !== undefined && { owner }),
      startedAt: checkpoint?.startedAt ?? new Date(started).toISOString(),
      savedAt: now,
      ...fields,
    };
  }
  /** The tenant restored into, once known. */
  let stagedTenant: string | undefined;

  /**
   * Queues the next piece, then clears the checkpoint's `handingOver` mark. A first piece that
   * fails ends the chain here (its next piece, if queued, finds no checkpoint); a later one
   * leaves the mark for its message, delivered again, to hand over again.
   */
  async function handOverUnderLock(suspended: RestoreSuspended, saved: RestoreCheckpoint): Promise<void> {
    const { handingOver: _, ...cleared } = saved;
    await (async () => {
      await pieces!.handOver!(suspended);
      crashPoint('restore:piece-handed-over');
      await saveRestoreCheckpoint(tenantsDir, cleared);
    })().catch(async (failure: unknown) => {
      if (suspended.pieces === 1) await removeRestoreCheckpoint(tenantsDir, saved.tenant);
      throw failure;
    });
  }

  let committed = false;
  /** A later piece whose deadline had come before it began to read the archive. */
  let lateStart = false;
  /** A later piece that reads the footer's entry count (its checkpoint has none) and has not yet got it: no entry is read before. */
  let readingFooter = false;
  /** A later piece whose archive's first bytes have not come yet (its opening GET unanswered, its body not begun, or the footer's read first): no entry is read before. */
  let awaitingFirstBytes = false;
  /** Whether the location answered the archive's opening read (S3: its GET's headers came). */
  let opened = false;
  try {
    await makeBaseDir();
    await sweepBaseDir(tenantsDir, { except: targetOverride, ...(request.leftoversSignal !== undefined && { signal: request.leftoversSignal }), ...ended }).catch(() => undefined);
    if (targetOverride !== undefined) {
      await claimSlot(targetOverride).catch((error: unknown) => {
        throw restoreWriteError(error, tenantsDir);
      });
      if (resumeTenant !== undefined && (checkpoint?.chain !== pieces!.chain || past === 'already-run')) {
        committed = true; // nothing made: the base dir is not this piece's to remove
        return { operation: 'restore', chainEnded: true, tenant: resumeTenant, chain: pieces!.chain, ...(past === 'already-run' && { alreadyRun: true as const }) };
      }
      if (past === 'hand-over-again') {
        committed = true;
        const saved = checkpoint!;
        const suspended: RestoreSuspended = { operation: 'restore', suspended: true, tenant: saved.tenant, chain: saved.chain, location: saved.location, written: saved.written, pieces: saved.pieces, durationMs: Date.now() - started };
        await handOverUnderLock(suspended, saved);
        return suspended;
      }
    }

    // A later piece whose deadline came during its start (the lock its chain's previous piece
    // held to hand over, the leftovers' share): it reads and writes nothing, and its chain is as
    // it was for its message's next delivery, which has an invocation of its own.
    lateStart = checkpoint !== undefined && signal?.aborted === true;
    const footerToRead = checkpoint !== undefined && checkpoint.storedRead?.entries === undefined;
    readingFooter = footerToRead;
    awaitingFirstBytes = checkpoint !== undefined;
    const read = await readTenantArchive(location, {
      limits,
      signal,
      onOpened: () => (opened = true),
      onFirstBytes: () => (awaitingFirstBytes = false),
      ...(request.identities !== undefined && { identities: request.identities }),
      ...(request.ageCli !== undefined && { ageCli: request.ageCli }),
      // A later piece's archive was judged by its first piece, with a whole invocation: judged
      // again by what this piece's own time left reads (its sweep, its wait for the lock), one
      // late piece ended a running chain as a refusal. Out of time, it meets its deadline.
      ...(request.maxArchiveBytes !== undefined && checkpoint === undefined && { maxArchiveBytes: request.maxArchiveBytes }),
      ...(request.maxArchiveEntries !== undefined && checkpoint === undefined && { maxArchiveEntries: request.maxArchiveEntries }),
      // A checkpoint with no entry count: the footer's read once, judged by, and carried on (storedReadNow).
      ...(footerToRead && {
        onFooterEntries: (entries: number | undefined) => {
          readingFooter = false;
          assertChainFast(checkpoint!, entries);
        },
      }),
      ...(checkpoint !== undefined && { expectIdentity: checkpoint.identity }),
      onIdentity: (named) => (identity = named),
      ...(pieces !== undefined && {
        pieces: {
          skip: checkpoint?.written ?? 0,
          ...(checkpoint?.copiedLinks !== undefined && { copiedLinks: checkpoint.copiedLinks }),
          ...(checkpoint !== undefined && { lastWritten: checkpoint.lastWritten }),
          ...((checkpoint?.writing === true || checkpoint?.rewriting === true) && { rewrite: true }),
          suspend: (backlogMs) => identity !== undefined && pieces.suspend(backlogMs),
          beforeFirstWrite: async () => {
            if (checkpoint === undefined) return;
            const { committing: _, ...latest } = checkpoint;
            const rewrites = checkpoint.writing ? { rewrites: (checkpoint.rewrites ?? 0) + 1 } : {};
            await saveRestoreCheckpoint(tenantsDir, { ...latest, writing: true, ...rewrites, savedAt: new Date().toISOString() });
            marked = true;
            crashPoint('restore:piece-marked');
          },
        },
      }),
      ...(request.fileAccess !== undefined && { fileAccess: request.fileAccess }),
      ...(request.workerThresholdBytes !== undefined && { workerThresholdBytes: request.workerThresholdBytes }),
      owner: () => owner,
      onProgress: (progress) => {
        crashPoint('restore:extracting');
        request.onProgress?.(progress);
      },
      prepare: async (archiveTenant) => {
        const target = targetOverride ?? archiveTenant;
        stagedTenant = target;
        if (lock === undefined) await claimSlot(target);
        if (checkpoint === undefined) staging = await createStagingArea(tenantsDir, target);
        // As root even with no owner to give it to: the base dir may be another user's while
        // the tenant it replaces is root's (no chown then), and that user could swap the
        // staging directory all the same.
        if (owner === undefined && self?.uid !== 0) return staging!.dir;
        pinned = await pinStaging(staging!.dir, checkpoint === undefined ? undefined : staging!.inode);
        return pinned.root;
      },
    }).catch(async (error: unknown) => {
      if (error instanceof ExtractionSuspended) {
        const handOver = pieces!.handOver;
        const copied = error.copiedLinks.names > 0 ? { copiedLinks: error.copiedLinks } : {};
        const saved = checkpointNow({ written: error.written, writing: false, pieces: (checkpoint?.pieces ?? 0) + 1, ...copied, ...storedReadNow(error.storedRead, checkpoint?.storedRead), lastWritten: error.lastWritten, ...((checkpoint?.writing === true || checkpoint?.rewriting === true) && { rewriting: true as const }) });
        await saveRestoreCheckpoint(tenantsDir, handOver === undefined ? saved : { ...saved, handingOver: true });
        crashPoint('restore:piece-saved');
        suspendedResult = { operation: 'restore', suspended: true, tenant: saved.tenant, chain: saved.chain, location: location.display, written: saved.written, pieces: saved.pieces, durationMs: Date.now() - started };
        if (checkpoint !== undefined) staging = undefined; // the chain's now, whatever its hand-over comes to: the message comes again
        if (handOver !== undefined) await handOverUnderLock(suspendedResult, saved);
        staging = undefined; // the chain's now
        return undefined;
      }
      if (pinned !== undefined) pinned.unpinErrorPath(error);
      // Frozen past the stale interval, this process may have had its lock taken over and its
      // extraction rolled back (the staging directory removed under it): that, not the ENOENT
      // it met, is what happened. Also while its staging was being made (frozen between its
      // mkdir and its check, it said the directory "was replaced while it was made: check who
      // else writes in the base dir"). Not when the slot's recovery stopped busy: it handed a
      // live holder's moved-aside lock back over this one, which is what it says.
      if (!(error instanceof TenantBusyError)) await (lock as TenantLock | undefined)?.assertHeld();
      throw restoreWriteError(error, tenantsDir);
    });
    if (read === undefined) {
      committed = true; // the base dir holds the chain's staging
      return suspendedResult!;
    }
    extractedAll = true;
    const { extracted, encrypted } = read;
    crashPoint('restore:verified');
    const tenant = targetOverride ?? extracted.tenant;
    // The lock first: frozen past the stale interval, its taker rolled the staging back, and that
    // (not "moved or replaced by someone else: check who else writes in the base dir") is what happened.
    await (lock as TenantLock | undefined)?.assertHeld();
    await pinned?.assertStillNamed();
    if (checkpoint !== undefined) {
      const committing = { archiveTenant: extracted.tenant, files: extracted.files, bytes: extracted.bytes, archiveBytes: read.archiveBytes, verified: extracted.manifest !== undefined, replaced };
      const { handingOver: _, ...latest } = checkpoint;
      await saveRestoreCheckpoint(tenantsDir, { ...latest, writing: true, savedAt: new Date().toISOString(), committing });
    }
    const held = lock as TenantLock | undefined;
    const { notice: tidyUpNotice } = await staging!.commit({ force, ...(request.cleanupBy !== undefined && { until: request.cleanupBy }), ...(held !== undefined && { assertHeld: () => held.assertHeld() }) }).catch((error: unknown) => {
      throw error instanceof MoveInPendingError ? moveInPendingError(error, tenantsDir) : restoreWriteError(error, tenantsDir);
    });
    staging = undefined;
    committed = true;
    crashPoint('restore:committed');
    await pinned?.assertMovedIn(path.join(tenantsDir, tenant));
    await pinned?.close();

    const notices = [...recoveryNotices, ...encryptionNotices(read, request.identities)];
    if (extracted.manifest === undefined) notices.push(NO_MANIFEST_NOTICE);
    notices.push(...ephemeralNotice(read, true));
    notices.push(...copiedLinksNotice(read));
    if (tidyUpNotice !== undefined) notices.push(tidyUpNotice);
    const result: RestoreResult = {
      operation: 'restore',
      tenant,
      archiveTenant: extracted.tenant,
      location: location.display,
      ...(location.endpoint !== undefined && { endpoint: location.endpoint }),
      ...archiveCounts(read),
      durationMs: Date.now() - started,
      verified: extracted.manifest !== undefined,
      replaced,
      backupCreatedAt: extracted.manifest?.createdAt,
      warnings: extracted.manifest?.warnings ?? [],
      recovered,
      notices,
      ...(owner !== undefined && { owner }),
      ...(encrypted ? { decrypted: true as const } : {}),
    };
    if (checkpoint !== undefined) {
      // Said first, then the checkpoint removed: killed between, the next recovery says it again rather than never.
      await pieces!.onCommitted?.(result);
      crashPoint('restore:piece-told-committed');
      await removeRestoreCheckpoint(tenantsDir, tenant);
    }
    return result;
  } catch (caught) {
    let error = caught;
    /** A later piece stopped by its deadline while it read the footer's count or waited for the archive's first bytes, before any entry: its chain is as it was for its message's next delivery. */
    const stoppedBeforeReading = checkpoint !== undefined && !lateStart && !marked && (readingFooter || awaitingFirstBytes) && error instanceof AbortedError && signal?.aborted === true;
    // Stopped by its deadline before its first write: every piece replays more than this one did.
    if (lateStart && error instanceof AbortedError) {
      error = new AbortedError(
        `piece ${checkpoint!.pieces + 1} of the continuing restore of "${checkpoint!.tenant}" was stopped by its deadline before it began to read the archive (its time went to its start: waiting for the tenant's lock, the leftovers of interrupted operations): it wrote nothing, the chain goes on from its checkpoint when its message comes again`,
        { cause: error },
      );
    } else if (stoppedBeforeReading) {
      // Its time went to the footer's GET or the archive's opening one (a store throttling or not answering), not to replaying
      // the earlier pieces' writes, which a next piece would meet again: ending the chain there
      // threw away what every piece before it staged, with a message blaming the replay.
      error = new AbortedError(
        readingFooter && opened
          ? `piece ${checkpoint!.pieces + 1} of the continuing restore of "${checkpoint!.tenant}" was stopped by its deadline while it read the archive's footer (the entry count its chain's first piece, run by the previous version, did not keep; the store was slow to answer): it wrote nothing, the chain goes on from its checkpoint when its message comes again`
          : `piece ${checkpoint!.pieces + 1} of the continuing restore of "${checkpoint!.tenant}" was stopped by its deadline while it waited for the archive's first bytes (${opened ? 'the store answered its read but sent none of the body' : 'the store did not answer its opening read'}): it wrote nothing, the chain goes on from its checkpoint when its message comes again`,
        { cause: error },
      );
    } else if (checkpoint !== undefined && !marked && error instanceof AbortedError && signal?.aborted === true) {
      error = new AbortedError(
        `piece ${checkpoint.pieces + 1} of the continuing restore of "${checkpoint.tenant}" was stopped by its deadline before it wrote anything: it reads the archive again from its start and replays the ${checkpoint.written} writes earlier pieces made, which took all its time, and a next piece replays at least as much; ` +
          `the chain ends here, what it had staged is removed, the slot holds what it held: restore again with a longer timeout for the restore function (up to 900 s), or with the CLI on a host that mounts the tenant volume (one process, no invocation's limit)`,
        { cause: error },
      );
    }
    // Stopped by its deadline once it wrote (its queued writes or one large file outlasted the
    // time its stop counted on): as if killed there, its checkpoint keeps the mark and its
    // message, delivered again, writes again from the count (MAX_REWRITES bounds the repeats).
    // Ending the chain had thrown away what every piece before it staged.
    const stoppedWriting = checkpoint !== undefined && marked && !extractedAll && staging !== undefined && error instanceof AbortedError && signal?.aborted === true;
    if (stoppedWriting) {
      error = new AbortedError(
        `piece ${checkpoint!.pieces + 1} of the continuing restore of "${checkpoint!.tenant}" was stopped by its deadline after it began writing: the chain goes on from its checkpoint when its message comes again (that piece writes again what this one wrote past it)`,
        { cause: error },
      );
    }
    // A piece whose lock was taken over (frozen past LOCK_STALE_MS: its checkpoint's fsync
    // hung) touches nothing more: its checkpoint and staging are the taker's to judge. Ending
    // the chain here removed them under the other command's lock.
    if (staging !== undefined) {
      const lost = await (lock as TenantLock | undefined)?.assertHeld().then(() => undefined, (failure: unknown) => failure);
      if (lost !== undefined) {
        staging = undefined;
        throw lost;
      }
    }
    // A later piece that failed ends its chain (first the checkpoint, so that a kill between
    // leaves an interrupted restore's staging, which recovery removes), unless it wrote
    // nothing and may well succeed when delivered again (the store unreachable).
    if (checkpoint !== undefined && staging !== undefined && !stoppedWriting && (marked || (!mayRetry(error) && !lateStart && !stoppedBeforeReading))) {
      await removeRestoreCheckpoint(tenantsDir, checkpoint.tenant);
    } else if (checkpoint !== undefined) {
      staging = undefined; // still the chain's
    }
    const leftover = staging as StagingArea | undefined;
    staging = undefined;
    const stopped = leftover !== undefined && (await leftover.discard({ ...(request.cleanupBy !== undefined && { until: request.cleanupBy }) }).then(() => false, (failure: unknown) => failure instanceof RemovalStoppedError));
    // Stopped by its deadline with no time left to remove what it staged: the answer says who does.
    if (stopped && error instanceof AbortedError) {
      throw new AbortedError(`${error.message}; what it had staged (${shownPath(leftover.dir)}) was not all removed in the time left: the next command on the tenant removes it, the slot holds what it held`, { cause: error });
    }
    throw error;
  } finally {
    await (pinned as PinnedStaging | undefined)?.close();
    const leftover = staging as StagingArea | undefined;
    if (leftover !== undefined) await leftover.discard().catch(() => undefined);
    await (lock as TenantLock | undefined)?.release();
    if (!committed) await removeCreatedDirectories(createdDirectories);
  }
}

/**
 * `--owner` given the base dir the restore just made, through a descriptor opened without
 * following a symlink: its parent may be that owner's (a base dir in the service user's home),
 * who could rename the new directory away and leave a symlink in its place, and a chown by
 * name then gave the link's target (a root-only directory) to that user.
 */
async function giveCreatedBaseDir(tenantsDir: string, owner: Owner): Promise<void> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(tenantsDir, DIRECTORY_FLAGS);
  } catch (error) {
    const code = errnoCode(error);
    if (code !== 'ELOOP' && code !== 'ENOTDIR' && code !== 'ENOENT') throw error;
    throw new FileSystemError(`the base dir ${shownPath(tenantsDir)} the restore made was moved or replaced before it was given to ${owner.uid}:${owner.gid}: nothing was restored; check who else writes in ${shownPath(path.dirname(tenantsDir))}`, { cause: error });
  }
  try {
    await handle.chown(owner.uid, owner.gid);
  } finally {
    await handle.close();
  }
}

/** The staging directory reached through its descriptor (`pinStaging`). */
interface PinnedStaging {
  /** The path to write under: `/proc/self/fd/N/`, or the directory's own path without procfs. */
  readonly root: string;
  /** Gives an errno error met under `root` the directory's own path, to be shown. */
  unpinErrorPath(error: unknown): void;
  /** Throws unless the directory's path still leads to it (moved into the slot by that path next). */
  assertStillNamed(): Promise<void>;
  /**
   * Throws unless `slot` is the directory: the move into the slot goes by the staging name,
   * which its owner could swap for a symlink between assertStillNamed and the rename (the
   * journal's rename in between tells it when), and the link was moved in instead.
   */
  assertMovedIn(slot: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * The staging directory as a restore run as root writes into it, for another owner or not
 * (the tenant it replaces may be root's in a base dir that is not). The base dir's owner (the
 * gateway's service user) may rename the staging directory
 * (root's, 0700, which it cannot enter) away and put a symlink in its place, and root, going
 * on by paths, then created, chmodded and chowned entries wherever the link pointed (a
 * root-only directory named like one in the archive was made 0777 and the owner's, and new
 * files were created in it). Through `/proc/self/fd/N` every path resolves in the directory
 * opened here, whatever its name becomes meanwhile (the worker threads share the descriptor).
 * The directory opened must be the one just made (file-access.ts pinDirectory), root's,
 * empty and 0700, else the restore stops there: that user could also rename the new one away
 * and put a directory of their own in its place, which passed the path check, and, theirs,
 * swap a subdirectory of the tree for a symlink while root wrote it (a root-only directory
 * was made 0755 and root created the archive's files in it, and the restore said it
 * succeeded). Without procfs, the path as before.
 */
async function pinStaging(dir: string, madeEarlier?: string): Promise<PinnedStaging> {
  const when = madeEarlier === undefined ? 'while it was made' : 'between two pieces of the restore';
  const pinned = await pinDirectory(dir, (how, cause) => new FileSystemError(`the restore's staging directory ${shownPath(dir)} was replaced ${when} (${how}): restore again, and check who else writes in the base dir`, cause === undefined ? undefined : { cause }), madeEarlier === undefined ? { mode: STAGING_MODE } : { inode: madeEarlier });
  const { link } = pinned;
  return {
    // The final slash makes even an lchown of the tenant's own directory follow the magic link.
    root: link === undefined ? dir : `${link}/`,
    unpinErrorPath(error) {
      if (link !== undefined) namedBy(error, link, dir);
    },
    async assertStillNamed() {
      if (!(await pinned.isAt())) {
        throw new FileSystemError(`the restore's staging directory ${shownPath(dir)} was moved or replaced by someone else while the restore ran: nothing was moved into the slot; check who else writes in the base dir`);
      }
    },
    async assertMovedIn(slot) {
      if (await pinned.isAt(slot)) return;
      const now = await pinned.whereNow();
      const where = now === undefined ? 'no longer there' : `now at ${shownPath(now)}`;
      throw new FileSystemError(
        `the restore's staging directory ${shownPath(dir)} was replaced by someone else just before it was moved into the slot: ${shownPath(slot)} holds what they put there, not the restored tenant (${where}); check who else writes in the base dir, then restore again`,
      );
    },
    close: () => pinned.close(),
  };
}

/**
 * A system error met while creating the staging tree, as a FileSystemError that says where
 * and why in one line; our own errors and anything unrecognised pass through.
 */
export function restoreWriteError(error: unknown, tenantsDir: string): unknown {
  if (error instanceof OpenClawError || !(error instanceof Error)) return error;
  const { code, path: where } = error as NodeJS.ErrnoException;
  // Every entry's name is unique in the archive (extract.ts): a clash is the file system's doing.
  const what = code === 'EEXIST' ? 'two entries name the same file here (a file system that folds case or Unicode forms?)' : errnoMessage(error);
  if (what === undefined) return error;
  const place = where === undefined ? '' : ` (${shownPath(where)})`;
  return new FileSystemError(`cannot write the restored tenant under ${tenantsDir}: ${what}${place}`, { cause: error });
}

/** A failed move into the slot, in one line that says the restore is not lost: the next command finishes it. */
function moveInPendingError(error: MoveInPendingError, tenantsDir: string): FileSystemError {
  const { tenant } = error;
  return new FileSystemError(
    `${describeError(restoreWriteError(error.cause, tenantsDir))}; the restored tenant is verified and its move into the slot recorded: the next command on tenant "${tenant}" (e.g. openclaw tenants recover ${tenant}) finishes it`,
    { cause: error.cause },
  );
}

/** A failure a later piece that wrote nothing leaves its chain for: delivered again, it may well succeed. */
function mayRetry(error: unknown): boolean {
  // Not a piece stopped by its deadline: delivered again, it would meet the same one.
  return error instanceof StorageError && error.code !== 'CHANGED' && error.code !== 'NOT_FOUND';
}

/** The effective user and group of this process (undefined where POSIX IDs do not exist). */
function processOwner(): Owner | undefined {
  return process.geteuid === undefined || process.getegid === undefined ? undefined : { uid: process.geteuid(), gid: process.getegid() };
}
