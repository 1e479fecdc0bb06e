// Backs up one tenant to an archive location: the core operation behind the CLI's
// `tenants backup` and the backup Lambda. Sweeps the base dir of dead operations' leftovers
// (base-dir-sweep.ts) and its own scratch space of killed backups' (temp-area.ts), holds
// the tenant's lock for the whole run (first settling any interrupted restore of it),
// refuses to overwrite an existing archive unless asked, and streams the archive to the
// location in bounded memory, encrypted to age recipients when asked (compress, then
// encrypt: archive/encrypted-archive.ts). A read-only base dir (a snapshot, a read-only mount: EROFS on
// the lock file) cannot change under the backup and cannot take a lock: the tenant is backed
// up without one, saying so, unless the snapshot caught a restore of it mid-commit.
//
// A backup may be written in pieces, each in its own process (`backupTenantInPieces`: the
// Lambda, whose invocations end at 15 minutes): a piece stops between two entries when
// `stopWhen` says so, suspends the S3 multipart upload and saves where it stands
// (continuation.ts); the next piece, given the chain's name, takes the tenant's lock again
// and goes on. The finished object is an ordinary archive; an encrypted one is one age file,
// its age stream suspended and resumed with the archive (the payload key travels in the
// state, continuation.ts). Locations without `writePiece` (local files) are written in one
// piece.

import { promises as fs } from 'node:fs';
import { Readable } from 'node:stream';

import { createTenantArchive, type ArchiveProgress, type ArchiveSummary, type SuspendedArchive } from './tenant-archive.js';
import { assertNoRestoreChain } from '../restore/restore-continuation.js';
import { assertNoContinuation, chainGoesOn, UNJUDGED_COMMIT_KEPT_AGES, type ChainEnder, type CommittingArchive, continuationPathFor, endDamagedChain, RecipientsChangedChainEndedError, loadContinuation, newChainId, removeContinuation, saveContinuation, staleChains, UnreadableContinuationError, type Continuation } from './continuation.js';
import { sweepBaseDir, type SweepResult } from '../tenant/base-dir-sweep.js';
import { crashPoint } from '../crash-points.js';
import { ContinuationEndedError, describeError, errnoCode, errnoMessage, FileSystemError, OpenClawError, TenantBusyError } from '../errors.js';
import { redact } from '../storage/redact.js';
import { assertTenantName } from '../tenant/names.js';
import { entriesToCreate, MANIFEST_FORMAT_VERSION, type Manifest, type ManifestNote } from '../archive/manifest.js';
import { beyondDefaultLimits } from '../restore/limits.js';
import { abortedError, onAbort, throwIfAborted } from '../storage/streams.js';
import { MANIFEST_DIGEST_METADATA_KEY, OPERATION_ID_METADATA_KEY, type ArchiveLocation, type PieceResult, type StoreEndpoint, type WriteOptions, type WriteResult } from '../storage/types.js';
import { acquireTenantLock, type TenantLock } from '../tenant/lock.js';
import { handBackMovedAsideLocks, isMidCommit, recoverSlotWithin, type RecoverOptions, type RecoveryAction } from '../tenant/slot.js';
import { TempArea } from './temp-area.js';
import { assertOutsideTenantsDir, tenantDirFor, tenantsDirNotFound } from '../tenant/tenants.js';
import { TOOL_VERSION } from '../version.js';
import type { CompressOptions } from '../archive/zstd-encoder.js';
import { assertSwapsCanBeTold, type FileAccess } from '../file-access.js';
import { writersMayBeRemote, type SqliteOptions } from './sqlite-policy.js';
import type { AgeRecipient } from '../age/keys.js';
import { encryptArchive, encryptArchivePiece } from '../archive/encrypted-archive.js';
import { shownPath } from '../format.js';

export interface BackupRequest {
  readonly tenantsDir: string;
  readonly tenant: string;
  readonly location: ArchiveLocation;
  /** Replace an archive already at the location. */
  readonly overwrite?: boolean;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: ArchiveProgress & { readonly archiveBytes: number }) => void;
  readonly compression?: CompressOptions;
  /** Injectable clock for reproducible tests. */
  readonly now?: () => Date;
  /** How to call the file system; by default chosen for the tenant's (file-access.ts). */
  readonly fileAccess?: FileAccess;
  /** How live SQLite databases are read (sqlite-policy.ts); by default by the tenant's file system, failing on a database with no consistent copy. */
  readonly sqlite?: SqliteOptions;
  /** Encrypt the archive to these age recipients (after compression); none: stored as tar.zst. */
  readonly recipients?: readonly AgeRecipient[];
  /**
   * The base dir as the caller swept it (`backup --all`: once for every tenant): the backup
   * then does not sweep it, and recovers its tenant from the names that sweep read (only
   * moved-aside locks are looked for again, under the lock: one listing). Absent: the backup
   * sweeps the base dir itself.
   */
  readonly sweptBaseDir?: Pick<SweepResult, 'names'> & Partial<Pick<SweepResult, 'recovered'>>;
  /** The caller removed dead backups' scratch areas under os.tmpdir() for this run (`backup --all`: once); absent: the backup does. */
  readonly tmpdirSwept?: boolean;
  /** The scheduled run this backup is (its event's ID), stored with the archive (ArchiveMetadata.runId). */
  readonly runId?: string;
  /** The completion event's operationId this attempt gives, stored with the archive (ArchiveMetadata.operationId). */
  readonly operationId?: string;
  /** Who ends a backup in pieces that broke, as a tenant it keeps busy is refused with (continuation.ts). @default `tenants recover` */
  readonly chainEnder?: ChainEnder;
  /**
   * Stops removing what interrupted operations left (the base dir's sweep, and the tenant's
   * own trash or unverified staging) once aborted: the Lambda's share of its invocation for
   * them. The slot is settled (its journal's renames are never stopped) and the backup goes
   * on, a notice saying so; the next command or sweep removes the rest. @default no limit
   */
  readonly leftoversSignal?: AbortSignal;
  /** Told of a restore in pieces of the tenant (or, sweeping, of another) that its recovery ended (RecoverOptions.onRestoreChainEnded). */
  readonly onRestoreChainEnded?: RecoverOptions['onRestoreChainEnded'];
}

export interface PieceRequest extends BackupRequest {
  /** Asked between entries: true stops this piece there, and the backup continues in another. */
  readonly stopWhen: () => boolean;
  /** The chain this piece continues (from the last piece's BackupSuspended); absent: a new backup. */
  readonly chain?: string;
}

/** A piece that stopped early: the backup goes on in another piece of the same chain. */
export interface BackupSuspended {
  readonly operation: 'backup';
  readonly suspended: true;
  readonly tenant: string;
  readonly location: string;
  /** Give it to the next piece (`PieceRequest.chain`). */
  readonly chain: string;
  /** Pieces run so far, this one included. */
  readonly pieces: number;
  /** So far: files, their bytes, and bytes of the archive. */
  readonly files: number;
  readonly bytes: number;
  readonly archiveBytes: number;
  readonly durationMs: number;
  readonly createdAt: string;
}

export interface BackupResult {
  readonly operation: 'backup';
  readonly tenant: string;
  readonly location: string;
  /** The S3-compatible endpoint the archive went to, and what chose it; absent for AWS and local files. */
  readonly endpoint?: StoreEndpoint;
  readonly files: number;
  /** Of `files`, the later names of a file, archived as hard links (content stored once); absent from a gateway older than the count. */
  readonly hardlinks?: number;
  readonly directories: number;
  readonly symlinks: number;
  /** Bytes of file content archived. */
  readonly bytes: number;
  /** Bytes of the stored archive (after compression and any pipe command). */
  readonly archiveBytes: number;
  readonly durationMs: number;
  readonly createdAt: string;
  readonly manifestSha256: string;
  /** Left out of the archive, with the reason (pty/, sockets, escaping symlinks, companions of snapshotted databases, vanished entries). */
  readonly skipped: readonly ManifestNote[];
  /** Caveats, all counted as warnings: files changed as they were read, databases archived raw, entries that vanished (also in `skipped`). */
  readonly warnings: readonly ManifestNote[];
  readonly recovered: RecoveryAction;
  /** Things the operator should know about how the backup was taken (e.g. without a lock on a read-only base dir). */
  readonly notices: readonly string[];
  /** The age recipients (public keys) the stored archive is encrypted to; absent: not encrypted. */
  readonly encryptedTo?: readonly string[];
}


export async function backupTenant(request: BackupRequest): Promise<BackupResult> {
  const result = await runBackup(request);
  if ('suspended' in result) throw new Error('a backup in one piece was suspended'); // cannot happen: nothing asked it to stop
  return result;
}

/**
 * A backup that may be written in pieces (see the module comment). A piece that fails once
 * it has touched the upload ends the chain: the upload is aborted and the state removed. One
 * that fails before (its lock taken by another operation, say) leaves the state for a retry.
 */
export async function backupTenantInPieces(request: PieceRequest): Promise<BackupResult | BackupSuspended> {
  return runBackup(request);
}

/**
 * A system error that reached the backup unexplained, as a FileSystemError that says where
 * and why in one line: the destination's own failures are StorageErrors already, so these
 * come from reading the tenant (a file or directory it may not read, an I/O error) or from
 * the scratch space. Our own errors and anything unrecognised pass through.
 */
export function backupReadError(error: unknown, tenant: string): unknown {
  if (error instanceof OpenClawError || !(error instanceof Error)) return error;
  const what = errnoMessage(error);
  if (what === undefined) return error;
  const { path: where, syscall } = error as NodeJS.ErrnoException;
  const place = where !== undefined ? ` (${shownPath(where)})` : syscall !== undefined ? ` (${syscall})` : '';
  return new FileSystemError(`cannot back up tenant "${tenant}": ${what}${place}`, { cause: error });
}

type RunRequest = BackupRequest & Partial<Pick<PieceRequest, 'stopWhen' | 'chain'>>;

function runBackup(request: RunRequest): Promise<BackupResult | BackupSuspended> {
  return backupSteps(request).catch((error: unknown) => {
    throw backupReadError(error, request.tenant);
  });
}

async function backupSteps(request: RunRequest): Promise<BackupResult | BackupSuspended> {
  const started = Date.now();
  const { tenantsDir, tenant, location, signal } = request;
  assertTenantName(tenant);
  assertSwapsCanBeTold(tenant);
  const baseDir = await fs.stat(tenantsDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
    throw error;
  });
  if (baseDir === undefined || !baseDir.isDirectory()) throw tenantsDirNotFound(tenantsDir, baseDir === undefined ? 'ENOENT' : 'ENOTDIR');
  const { leftoversSignal } = request;
  const ended = request.onRestoreChainEnded === undefined ? {} : { onRestoreChainEnded: request.onRestoreChainEnded };
  const swept = request.sweptBaseDir ?? (await sweepBaseDir(tenantsDir, { except: tenant, ...(leftoversSignal !== undefined && { signal: leftoversSignal }), ...ended }).catch(() => undefined));
  if (request.tmpdirSwept !== true) await TempArea.sweep(undefined, leftoversSignal).catch(() => undefined);
  const notices: string[] = [];
  const lock = await lockUnlessReadOnly(tenantsDir, tenant, notices, location.display);
  try {
    // An interrupted restore may have left the slot mid-commit: settle it before reading
    // (nothing to settle, or nothing that could be, on a read-only base dir).
    const own = lock === undefined ? 'none' : await recoverSlotWithin(tenantsDir, tenant, { ...(swept !== undefined && { names: swept.names }), notices, ...(leftoversSignal !== undefined && { signal: leftoversSignal }), ...ended });
    // A run's one sweep (backup --all) settled it before this backup: said by it all the same.
    const recovered = own === 'none' ? (request.sweptBaseDir?.recovered?.get(tenant) ?? 'none') : own;
    // A restore in pieces owns the tenant (a new one: no slot yet) until its last piece commits.
    if (lock !== undefined) await assertNoRestoreChain(tenantsDir, tenant, 'backup');
    const tenantDir = await tenantDirFor(tenantsDir, tenant);
    if (location.localPath !== undefined) await assertOutsideTenantsDir(tenantsDir, location.localPath);
    const recipients = request.recipients ?? [];
    // In pieces only where the state can be kept between them: not on a read-only base dir (no lock).
    const inPieces = request.stopWhen !== undefined && location.writePiece !== undefined && lock !== undefined;
    let from: Continuation | undefined;
    if (request.chain !== undefined) {
      from = await loadContinuation(tenantsDir, tenant).catch((error: unknown) => (lock === undefined ? Promise.reject(error) : endDamagedChain(error, tenantsDir, tenant, location.display)));
      if (from?.state.chain === request.chain && from.state.location === location.display && inPieces && !sameRecipients(from, recipients)) {
        // Asked to encrypt otherwise than its first piece began the archive (the stack's
        // encryptTo deployed or changed mid-chain): the archive could be neither, so the
        // chain ends here, its upload aborted, rather than completing as it began.
        const { abortError, completed } = await endChain(tenantsDir, tenant, from, async () => location);
        // Its last piece had committed the archive (stored whole, as it began) and was killed
        // before removing the state: that backup succeeded; nothing is left to abort or end.
        if (completed !== undefined) {
          notices.push(`the continuing backup of "${tenant}" to ${location.display} had been stored whole by its last piece, ${from.encryption === undefined ? 'unencrypted' : 'encrypted'} as it began, before encryptTo changed: the next backup follows the new setting`);
          return completedChainResult({ from, completed, location, tenant, recovered, notices });
        }
        const was = from.encryption === undefined ? 'unencrypted' : `encrypted to ${from.encryption.recipients.length} recipient(s)`;
        const asked = recipients.length === 0 ? 'unencrypted' : `encrypted to ${recipients.length} recipient(s)`;
        throw new RecipientsChangedChainEndedError(
          `the continuing backup of "${tenant}" to ${location.display} is ended: its first piece began it ${was}, this piece was asked for it ${asked} (encryptTo changed while it ran); ` +
            `${abortError === undefined ? 'its upload aborted' : `its upload could not be aborted (${describeError(abortError)})`}, its state removed: the next backup starts over`,
        );
      }
      if (from?.state.chain !== request.chain || from.state.location !== location.display || !inPieces || !sameRecipients(from, recipients)) {
        throw new ContinuationEndedError(`the continuing backup of "${tenant}" (chain ${request.chain}) has ended: its state is gone or belongs to another backup`);
      }
    } else {
      // A chain whose first piece saved its state but never handed over (the queue refused
      // the message, or the piece was killed in between) is this same backup asked again:
      // it goes on; a backup of the tenant to anywhere else stays refused while a chain owns it.
      from = inPieces ? await ownChain(tenantsDir, tenant, location.display, recipients) : undefined;
      if (from === undefined) {
        if (lock !== undefined) await assertNoContinuation(tenantsDir, tenant, 'backup', request.chainEnder);
        await location.checkWritable({ overwrite: request.overwrite ?? false, removeDeadPartials: true, ...(signal !== undefined && { signal }) });
      }
    }
    throwIfAborted(signal);

    // The piece that committed this chain's archive was killed before it removed the state
    // (its message came again): the archive is stored whole, and S3 knows its upload no more
    // (NoSuchUpload to a part or a completion). Ended as that piece would have, nothing stored again.
    const completed = from === undefined ? undefined : await completedArchive(location, tenant, from, signal);
    if (from !== undefined && completed !== undefined) {
      from.encryption?.stream.payloadKey.fill(0);
      await removeContinuation(tenantsDir, tenant);
      return completedChainResult({ from, completed, location, tenant, recovered, notices });
    }

    const createdAt = from === undefined ? (request.now ?? (() => new Date()))() : new Date(from.state.createdAt);
    let archiveBytes = from?.state.upload.bytes ?? 0;
    let progress: ArchiveProgress = { files: from?.state.archive.totals.files ?? 0, bytes: from?.state.archive.totals.bytes ?? 0 };
    const archive = createTenantArchive({
      tenantDir,
      tenant,
      createdAt,
      compression: request.compression,
      fileAccess: request.fileAccess,
      sqlite: request.sqlite,
      signal,
      // Encrypted, or through a --pipe command (which may encrypt: `age -r`, `gpg`): the
      // plaintext copies stay in the base dir, beside the live files (temp-area.ts). Through
      // `--pipe "age -r …"` they had gone to $TMPDIR, where a killed backup's SQLite snapshot
      // stayed until the next backup on this machine. Not on network storage (EFS: each copy
      // would cross the network twice more), nor without the lock (a read-only base dir): $TMPDIR there.
      ...((recipients.length > 0 || location.piped === true) && lock !== undefined && writersMayBeRemote(tenantsDir) === undefined && { temp: TempArea.inTenantsDir(tenantsDir, tenant) }),
      onProgress: (update) => {
        progress = update;
      },
      ...(inPieces && { stopWhen: request.stopWhen }),
      ...(from !== undefined && { resume: { suspended: true, checkpoint: from.state.archive, pendingFrame: from.pendingFrame } }),
    });
    // Settled before the body ends (the archive's stream awaits it), so the store can ask.
    let outcome: ArchiveSummary | SuspendedArchive | undefined;
    void archive.summary.then((summary) => (outcome = summary)).catch(() => undefined);
    const manifestSha256 = () => (outcome !== undefined && !outcome.suspended ? outcome.manifestSha256 : undefined);

    /** Its lock found taken over at the archive's end: a later piece's upload is then its chain's, for the taker to judge. */
    let lockLost = false;
    async function* counted(): AsyncGenerator<Buffer> {
      for await (const chunk of archive.chunks) {
        throwIfAborted(signal);
        archiveBytes += chunk.length;
        // Bytes read so far, the file being read included: a large file moves the percent too.
        request.onProgress?.({ ...progress, bytes: Math.max(progress.bytes, archive.contentRead()), archiveBytes });
        yield chunk;
      }
      // Frozen past the stale interval, this process may have had its lock taken over, and a
      // restore may have replaced the tenant while it read: the archive would hold parts of
      // both. Its end fails instead, so nothing is stored.
      await lock?.assertHeld().catch((error: unknown) => {
        lockLost = true;
        throw error;
      });
    }

    // Encrypted in pieces: the age file goes on from where the last piece stopped, and is
    // suspended with the archive (the same moment the upload is asked about).
    const encryption = recipients.length > 0 && inPieces ? encryptArchivePiece(counted(), from?.encryption?.stream ?? recipients, () => outcome?.suspended === true) : undefined;
    const stored = encryption?.chunks ?? (recipients.length > 0 ? encryptArchive(counted(), recipients) : counted());
    // The encryptor holds its own copy: the saved key need not stay in memory.
    from?.encryption?.stream.payloadKey.fill(0);
    const body = Readable.from(stored, { objectMode: false });
    const options: WriteOptions = {
      overwrite: request.overwrite ?? false,
      signal,
      metadata: { tenant, formatVersion: MANIFEST_FORMAT_VERSION, toolVersion: TOOL_VERSION, createdAt: createdAt.toISOString(), ...(request.runId !== undefined && { runId: request.runId }), ...(request.operationId !== undefined && { operationId: request.operationId }) },
      finalMetadata: (): Record<string, string> => {
        const digest = manifestSha256();
        return { ...(digest !== undefined && { [MANIFEST_DIGEST_METADATA_KEY]: digest }), ...chainOperation(from) };
      },
    };
    let written: PieceResult;
    // Why the last piece could not record that it commits: the upload is then left as it is.
    let commitUnrecorded: unknown;
    // Stopped, the walk ends at its next entry: the store, waiting for the archive's next frame
    // (2 MiB of small files on EFS: seconds), would only see the signal once it came.
    const stopWalk = onAbort(signal, () => archive.abort(abortedError(signal!)));
    try {
      if (!inPieces) written = await location.write(body, options);
      else {
        try {
          written = await location.writePiece!(body, {
            ...options,
            suspendWhen: () => outcome?.suspended === true,
            // A chain's last piece records, before it commits the upload, that it is doing so.
            ...(from !== undefined && {
              committing: (bytes: number) =>
                saveCommitting(tenantsDir, from!, outcome, bytes).catch((error: unknown) => {
                  commitUnrecorded = error;
                  throw error;
                }),
            }),
            ...(from !== undefined && { resume: { ...from.state.upload, tail: from.tail } }),
            // A first piece's upload is its own (no state names it yet): aborted as any failed one.
            ...(from !== undefined && { keepPiecesOnFailure: () => lockLost }),
          });
        } catch (error) {
          // The commit not recorded (the tenant volume full, an I/O error): the state is the
          // one the piece started from, which its message's next delivery goes on from, the
          // upload kept, as after a piece killed. Else the chain has ended: its upload aborted
          // (with the piece, or now), its state removed (unless another chain's).
          const goesOn = commitUnrecorded instanceof FileSystemError && !(commitUnrecorded instanceof UnreadableContinuationError);
          // A piece whose lock was taken over (frozen past LOCK_STALE_MS mid-upload) touches
          // nothing more: the chain's state and upload are the taker's to judge (it may be this
          // piece's message delivered again, going on from that state). Ending the chain here
          // removed the state under the other command's lock, aborted the upload the taker
          // went on with, and sent a failure event besides the chain's own.
          if (from !== undefined && !goesOn) await lock?.assertHeld();
          if (from !== undefined && !goesOn) {
            if (commitUnrecorded !== undefined) await location.abandonPieces?.({ ...from.state.upload, tail: from.tail }, { ...(signal !== undefined && { signal }) }).catch(() => undefined);
            if (!(commitUnrecorded instanceof ContinuationEndedError)) await removeContinuation(tenantsDir, tenant).catch(() => undefined);
          }
          throw error;
        }
      }
    } catch (error) {
      // A store that stopped reading (aborted, failed) leaves the stream unread, not always
      // closed: the archive's walk then waited on it for good, its scratch area (a
      // database's snapshot under os.tmpdir()) kept for the life of the process, which no
      // sweep removes (its owner is alive): a warm Lambda's /tmp filled up abort by abort.
      // Stopped, the walk ends at its next entry and removes its scratch area; it is waited
      // for, so nothing of the tenant is read once its lock is released.
      archive.abort(error);
      body.destroy();
      await archive.summary.catch(() => undefined);
      // Frozen past the stale interval mid-archive, its lock taken over and its scratch area in
      // the base dir removed by the taker's sweep, the backup failed on its own copy's absence:
      // "unexpected error: ENOENT … open /proc/self/fd/18/1-database" (exit 1). Said as the lost
      // lock it is (exit 3), as the archive's end says it.
      if (lock !== undefined && !(error instanceof TenantBusyError)) {
        const lost = await lock.assertHeld().then(
          () => undefined,
          (lockError: unknown) => (lockError instanceof TenantBusyError ? lockError : undefined),
        );
        if (lost !== undefined) throw lost;
      }
      throw error;
    } finally {
      stopWalk();
    }
    const summary = await archive.summary;
    if (summary.suspended) {
      const chain = from?.state.chain ?? newChainId();
      const { tail, ...upload } = written.suspended!;
      const pieces = (from?.state.pieces ?? 0) + 1;
      const savedAt = new Date().toISOString();
      const stream = encryption?.suspended();
      if (recipients.length > 0 && stream === undefined) throw new Error('an encrypted backup was suspended without its age stream'); // cannot happen: both follow `outcome`
      try {
        await saveContinuation(tenantsDir, {
          state: { version: 1, chain, tenant, location: location.display, createdAt: createdAt.toISOString(), startedAt: from?.state.startedAt ?? new Date(started).toISOString(), savedAt, pieces, archive: archive.checkpointToSave(summary), upload },
          pendingFrame: summary.pendingFrame,
          ...(stream !== undefined && { encryption: { recipients: recipients.map((recipient) => recipient.text), stream } }),
          tail,
        });
      } catch (error) {
        // A first piece whose state was not saved leaves no chain that could go on with its
        // upload or end it (a later piece's older state still names it): it is aborted now.
        if (from === undefined && !(await chainGoesOn(tenantsDir, tenant, chain))) await location.abandonPieces?.({ ...upload, tail }, { ...(signal !== undefined && { signal }) }).catch(() => undefined);
        throw error;
      } finally {
        stream?.payloadKey.fill(0);
      }
      crashPoint('backup:piece-saved');
      const { totals } = summary.checkpoint;
      return { operation: 'backup', suspended: true, tenant, location: location.display, chain, pieces, files: totals.files, bytes: totals.bytes, archiveBytes: written.bytes, durationMs: Date.now() - started, createdAt: createdAt.toISOString() };
    }
    if (from !== undefined) {
      crashPoint('backup:chain-committed');
      await removeContinuation(tenantsDir, tenant);
    }
    if (written.unrecorded !== undefined) notices.push(unrecordedNotice(location.display, written.unrecorded));
    if (written.unconfirmed !== undefined) notices.push(unconfirmedNotice(location.display, written.unconfirmed));
    if (written.note !== undefined) notices.push(written.note);
    const { manifest, manifestSha256: digest } = summary;
    pushLimitsNotice(notices, manifest.totals, { directories: manifest.directories.length, entriesToRead: summary.manifestEntriesToRead });
    crashPoint('backup:stored');
    return {
      operation: 'backup',
      tenant,
      location: location.display,
      ...(location.endpoint !== undefined && { endpoint: location.endpoint }),
      files: manifest.totals.files,
      hardlinks: summary.hardlinks,
      directories: manifest.totals.directories,
      symlinks: manifest.totals.symlinks,
      bytes: manifest.totals.bytes,
      archiveBytes: written.bytes,
      // A backup in pieces took from its first piece's start (time in the queue included).
      durationMs: Date.now() - (from === undefined ? started : Date.parse(from.state.startedAt)),
      createdAt: manifest.createdAt,
      manifestSha256: digest,
      skipped: manifest.skipped,
      warnings: manifest.warnings,
      recovered,
      notices,
      ...(recipients.length > 0 && { encryptedTo: recipients.map((recipient) => recipient.text) }),
    };
  } finally {
    await lock?.release();
  }
}

/**
 * An archive larger than a restore takes by default is said so (the entries a restore counts:
 * what the manifest totals, and the manifest itself); it is stored whole and restores with the
 * limit raised, and refusing to back up a tenant that large would leave it with no backup.
 */
function pushLimitsNotice(notices: string[], totals: Manifest['totals'], manifest: { directories: number; entriesToRead: number | undefined }): void {
  const notice = beyondDefaultLimits(entriesToCreate(totals) + 1, totals.bytes, manifest);
  if (notice !== undefined) notices.push(notice);
}

/** Said, not thrown: the archive is stored, and failing would leave no backup at all. */
function unconfirmedNotice(display: string, unconfirmed: string): string {
  return `WARNING: ${display} is stored whole, but ${unconfirmed}: it may not be encrypted at rest as asked (a store that ignores the encryption headers); check the bucket's default encryption`;
}

function unrecordedNotice(display: string, unrecorded: string): string {
  return `${display} is stored whole, but ${unrecorded}; an encrypted or piped archive counts for tenants prune only once tenants verify marks it (tenants backups notes it "unconfirmed")`;
}

/**
 * Records in the chain's state, right before its last piece commits the upload, the archive it
 * commits (ContinuationState.committing). The rest is the state as saved on disk, which the
 * piece started from, read again: a piece run again from it goes on from there when the
 * commit never happened.
 */
async function saveCommitting(tenantsDir: string, from: Continuation, outcome: ArchiveSummary | SuspendedArchive | undefined, bytes: number): Promise<void> {
  if (outcome === undefined || outcome.suspended) throw new Error('a backup in pieces is committing before its archive ended'); // cannot happen: the body has ended
  const { tenant, chain } = from.state;
  const saved = await loadContinuation(tenantsDir, tenant);
  if (saved?.state.chain !== chain) throw new ContinuationEndedError(`the continuing backup of "${tenant}" (chain ${chain}) has ended: its state is gone or belongs to another backup`);
  const { manifest, manifestSha256, manifestEntriesToRead } = outcome;
  try {
    await saveContinuation(tenantsDir, {
      ...saved,
      state: {
        ...saved.state,
        savedAt: new Date().toISOString(),
        committing: { bytes, manifestSha256, totals: manifest.totals, skipped: manifest.skipped, warnings: manifest.warnings, ...(manifestEntriesToRead !== undefined && { manifestEntriesToRead }) },
      },
    });
  } finally {
    saved.encryption?.stream.payloadKey.fill(0);
  }
}

/** The tenant's chain, if it writes to `location` as asked (same recipients); a damaged state is left to assertNoContinuation. */
async function ownChain(tenantsDir: string, tenant: string, location: string, recipients: readonly AgeRecipient[]): Promise<Continuation | undefined> {
  const saved = await loadContinuation(tenantsDir, tenant).catch(() => undefined);
  return saved !== undefined && saved.state.location === location && sameRecipients(saved, recipients) ? saved : undefined;
}

/** Whether a piece is asked to encrypt as its chain's state says the archive is: to the same recipients, or not at all. */
function sameRecipients(from: Continuation, recipients: readonly AgeRecipient[]): boolean {
  const saved = from.encryption?.recipients ?? [];
  return saved.length === recipients.length && recipients.every((recipient) => saved.includes(recipient.text));
}

/**
 * The tenant's lock; or, when the base dir is read-only (EROFS), no lock and a notice: the
 * tenant cannot change under the backup. A snapshot that caught a restore of this tenant
 * mid-commit is refused (the slot may hold neither tree whole); one that caught it before
 * the commit holds the old tenant intact.
 */
async function lockUnlessReadOnly(tenantsDir: string, tenant: string, notices: string[], target: string): Promise<TenantLock | undefined> {
  try {
    return await acquireTenantLock(tenantsDir, tenant, 'backup', { target });
  } catch (error) {
    if (errnoCode(error instanceof FileSystemError ? error.cause : error) !== 'EROFS') throw error;
  }
  if (await isMidCommit(tenantsDir, tenant)) {
    throw new TenantBusyError(
      `tenant "${tenant}" was being moved into place by a restore when this read-only copy of ${tenantsDir} was taken: back up the live base dir, or a copy taken later`,
    );
  }
  notices.push(`the tenant base dir ${tenantsDir} is read-only (a snapshot?): the tenant cannot change, so it was backed up without taking its lock`);
  return undefined;
}

/** A chain that broke, cleaned up: what its state said, and whether its upload could be aborted. */
export interface AbandonedBackup {
  readonly tenant: string;
  readonly location: string;
  readonly chain: string;
  readonly pieces: number;
  readonly startedAt: string;
  readonly savedAt: string;
  /** Why the upload could not be aborted (a bucket lifecycle rule AbortIncompleteMultipartUpload removes it then). */
  readonly abortError?: unknown;
  /** Its last piece had completed the archive (then was killed): stored whole, tagged now, nothing aborted. */
  readonly completed?: CompletedChain;
}

/** What a broken chain's failure event says: how far it came, and where its upload went. */
export function abandonedBackupMessage(chain: AbandonedBackup): string {
  const note = chain.abortError === undefined ? '' : `; its multipart upload could not be aborted (${redact(describeError(chain.abortError))}): a bucket lifecycle rule AbortIncompleteMultipartUpload removes it`;
  return `the backup stopped continuing after ${chain.pieces} invocation(s) (no piece since ${chain.savedAt}): abandoned${note}`;
}

/** The archive of a chain whose last piece completed it and was killed before it ended the chain. */
export interface CompletedChain {
  readonly committed: CommittingArchive;
  readonly stored: WriteResult;
}

export { UNJUDGED_COMMIT_KEPT_AGES } from './continuation.js';

/** How far `abandonStaleBackups` goes, and who hears of each chain it ends. */
export interface AbandonOptions {
  /** Once aborted, no further chain is taken up (the one under way is ended): the rest are left for a later run. */
  readonly signal?: AbortSignal;
  /** Told of each chain once it is ended, before the next is taken up (its completion event). */
  readonly onAbandoned?: (chain: AbandonedBackup) => Promise<void>;
  /** Told of a chain kept because the store could not say whether its last piece's archive is whole (UNJUDGED_COMMIT_KEPT_AGES), with the store's error. */
  readonly onKept?: (chain: { readonly tenant: string; readonly location: string; readonly chain: string }, error: unknown) => void;
}

/**
 * Ends the chains of backups in pieces whose state was last saved more than `olderThanMs`
 * ago (their next piece never came: a lost message, a piece killed again and again): under
 * the tenant's lock, the upload is aborted and the state removed. A tenant whose lock is
 * held is left for a later run, as are those not reached when `options.signal` fires (one S3
 * abort each: 5,000 of them took 95 s of a 2 s invocation). `sweptBaseDir`: as
 * BackupRequest's, its names are looked through instead of listing the base dir again.
 */
export async function abandonStaleBackups(
  tenantsDir: string,
  olderThanMs: number,
  open: (location: string) => Promise<ArchiveLocation>,
  sweptBaseDir?: BackupRequest['sweptBaseDir'],
  options: AbandonOptions = {},
): Promise<AbandonedBackup[]> {
  const abandoned: AbandonedBackup[] = [];
  for await (const tenant of staleChains(tenantsDir, olderThanMs, Date.now(), sweptBaseDir?.names)) {
    if (options.signal?.aborted === true) break;
    let lock: TenantLock;
    try {
      lock = await acquireTenantLock(tenantsDir, tenant, 'backup');
    } catch (error) {
      if (error instanceof TenantBusyError) continue;
      throw error;
    }
    let ended: AbandonedBackup;
    try {
      // Taken under the name a taker now gone left free, beside a live holder (a piece of this
      // very chain) whose lock it moved aside: the name goes back to it, and its tenant is left.
      const handedBack = await handBackMovedAsideLocks(tenantsDir, tenant, lock).then(
        () => false,
        (error: unknown) => {
          if (error instanceof TenantBusyError) return true;
          throw error;
        },
      );
      if (handedBack) continue;
      // Judged stale before its lock was taken: a piece that held the lock then (a message
      // come late) may have saved the chain since and let go, and a live chain must not be
      // ended. Looked at again under the lock, as `tenants recover` does (endBrokenChain).
      const stat = await fs.stat(continuationPathFor(tenantsDir, tenant)).catch(() => undefined);
      if (stat === undefined || Date.now() - stat.mtimeMs <= olderThanMs) continue;
      const from = await loadContinuation(tenantsDir, tenant).catch(() => undefined);
      // A last piece that was committing the archive, where the store cannot say now whether it
      // holds it whole: kept for a later run (up to twice the age), not ended as failed, so that a
      // success found later (its message delivered again, or the next run's look) is the chain's
      // one outcome, never a failure and then a success under one operation ID.
      const judgeLater = Date.now() - stat.mtimeMs <= UNJUDGED_COMMIT_KEPT_AGES * olderThanMs;
      const { abortError, completed, kept } = await endChain(tenantsDir, tenant, from, open, { keepUnjudgedCommit: judgeLater });
      if (kept) {
        options.onKept?.({ tenant, location: from!.state.location, chain: from!.state.chain }, abortError);
        continue;
      }
      const state = from?.state;
      ended = {
        tenant,
        location: state?.location ?? '',
        chain: state?.chain ?? '',
        pieces: state?.pieces ?? 0,
        startedAt: state?.startedAt ?? '',
        savedAt: state?.savedAt ?? '',
        ...(from === undefined && { abortError: new Error('its state could not be read') }),
        ...(abortError !== undefined && { abortError }),
        ...(completed !== undefined && { completed }),
      };
    } finally {
      await lock.release();
    }
    abandoned.push(ended);
    await options.onAbandoned?.(ended);
  }
  return abandoned;
}

/**
 * Aborts a chain's upload, when its state says where, and removes the state; answers why the
 * upload could not be aborted. A chain whose last piece completed the archive (its state
 * records it committing, and the archive is at the location) has nothing to abort: the
 * archive is tagged and answered instead. The caller holds the tenant's lock.
 */
async function endChain(
  tenantsDir: string,
  tenant: string,
  from: Continuation | undefined,
  open: (location: string) => Promise<ArchiveLocation>,
  options: { readonly keepUnjudgedCommit?: boolean } = {},
): Promise<{ abortError?: unknown; completed?: CompletedChain; kept?: true }> {
  let abortError: unknown;
  let completed: CompletedChain | undefined;
  if (from !== undefined) {
    let judged = false;
    try {
      const location = await open(from.state.location);
      completed = await completedArchive(location, tenant, from);
      judged = true;
      if (completed === undefined) await location.abandonPieces?.({ ...from.state.upload, tail: from.tail });
    } catch (error) {
      abortError = error;
    }
    from.encryption?.stream.payloadKey.fill(0);
    // `keepUnjudgedCommit`: a chain committing its archive that the store could not judge keeps its state.
    if (!judged && from.state.committing !== undefined && options.keepUnjudgedCommit === true) return { abortError, kept: true };
  }
  await removeContinuation(tenantsDir, tenant);
  return { ...(abortError !== undefined && { abortError }), ...(completed !== undefined && { completed }) };
}

/**
 * The result of a chain whose last piece had committed its archive (stored whole) and was
 * killed before removing its state: that archive, as the chain began it (its recipients).
 * The state is removed by the caller.
 */
function completedChainResult(args: { from: Continuation; completed: CompletedChain; location: ArchiveLocation; tenant: string; recovered: RecoveryAction; notices: string[] }): BackupResult {
  const { from, completed, location, tenant, recovered, notices } = args;
  const { committed, stored } = completed;
  if (stored.unrecorded !== undefined) notices.push(unrecordedNotice(location.display, stored.unrecorded));
  if (stored.unconfirmed !== undefined) notices.push(unconfirmedNotice(location.display, stored.unconfirmed));
  pushLimitsNotice(notices, committed.totals, { directories: committed.totals.directories, entriesToRead: committed.manifestEntriesToRead });
  const encryptedTo = from.encryption?.recipients ?? [];
  return {
    operation: 'backup',
    tenant,
    location: location.display,
    ...(location.endpoint !== undefined && { endpoint: location.endpoint }),
    ...committed.totals,
    archiveBytes: stored.bytes,
    durationMs: Date.now() - Date.parse(from.state.startedAt),
    createdAt: from.state.createdAt,
    manifestSha256: committed.manifestSha256,
    skipped: committed.skipped,
    warnings: committed.warnings,
    recovered,
    notices,
    ...(encryptedTo.length > 0 && { encryptedTo: [...encryptedTo] }),
  };
}

/**
 * The operationId a chain's events give (its chain ID), recorded beside the archive its last
 * piece completes (S3: a tag), where the metadata its upload began with names the first
 * piece's request (or none, begun by a later piece): an attempt of the same run that finds the
 * archive later (its first message delivered again) says its success under that ID too.
 */
function chainOperation(from: Continuation | undefined): Record<string, string> {
  return from === undefined ? {} : { [OPERATION_ID_METADATA_KEY]: from.state.chain };
}

/**
 * The archive a chain's last piece committed (its state records it committing), when it is
 * stored whole at `location`: that size, the chain's tenant and creation time.
 */
async function completedArchive(location: ArchiveLocation, tenant: string, from: Continuation, signal?: AbortSignal): Promise<CompletedChain | undefined> {
  const committed = from.state.committing;
  if (committed === undefined) return undefined;
  const stored = await location.storedPieces?.({
    tenant,
    createdAt: from.state.createdAt,
    bytes: committed.bytes,
    finalMetadata: { [MANIFEST_DIGEST_METADATA_KEY]: committed.manifestSha256, ...chainOperation(from) },
    ...(signal !== undefined && { signal }),
  });
  return stored === undefined ? undefined : { committed, stored };
}

/** What `tenants recover` did about a backup in pieces that owned the tenant (`endBrokenChain`). */
export type ChainRecovery = EndedChain | ContinuingChain;

export interface EndedChain {
  readonly outcome: 'ended';
  /** `damaged`: its state could not be read, so nothing could continue it; `stale`: not saved for the abandon age. */
  readonly reason: 'damaged' | 'stale';
  /** When its state was last saved (the file's modification time). */
  readonly savedAt: string;
  /** What its state said; absent when it was damaged. */
  readonly location?: string;
  readonly chain?: string;
  readonly pieces?: number;
  /**
   * Its multipart upload: aborted; `none` started (nothing sent yet, or not to S3); `left` at
   * the store, `leftAtStore` saying what and why; or `completed`: its last piece had completed
   * the archive, which is stored whole (tagged now).
   */
  readonly upload: 'aborted' | 'none' | 'left' | 'completed';
  readonly leftAtStore?: string;
}

export interface ContinuingChain {
  readonly outcome: 'continuing';
  readonly savedAt: string;
  readonly ageMs: number;
  /** From this moment `tenants recover` ends it, if no piece has saved it since. */
  readonly endsAfter: string;
  /** What its state says; absent when a later version wrote it. */
  readonly location?: string;
  readonly pieces?: number;
}

/**
 * Ends the tenant's backup in pieces when it has broken: its state damaged (nothing can
 * continue it), or not saved for `olderThanMs` (as `abandonStaleBackups`); a younger one may
 * be live on a gateway that shares the base dir, and is left alone. Undefined: no chain. The
 * caller holds the tenant's lock.
 */
export async function endBrokenChain(
  tenantsDir: string,
  tenant: string,
  olderThanMs: number,
  open: (location: string) => Promise<ArchiveLocation>,
  now = Date.now(),
): Promise<ChainRecovery | undefined> {
  const file = continuationPathFor(tenantsDir, tenant);
  const stat = await fs.stat(file).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw new FileSystemError(`cannot read the state of the continuing backup of "${tenant}" (${file}): ${errnoMessage(error) ?? String(error)}`, { cause: error });
  });
  if (stat === undefined) return undefined;
  let from: Continuation | undefined;
  let unreadable: UnreadableContinuationError | undefined;
  try {
    from = await loadContinuation(tenantsDir, tenant);
  } catch (error) {
    // Any other failure (a permission, an I/O error) says nothing about the chain: it is thrown.
    if (!(error instanceof UnreadableContinuationError)) throw error;
    unreadable = error;
  }
  if (from === undefined && unreadable === undefined) return undefined;
  const savedMs = stat.mtime.getTime();
  const savedAt = stat.mtime.toISOString();
  const ageMs = Math.max(0, now - savedMs);
  const state = from?.state;
  const damaged = unreadable !== undefined && !unreadable.laterFormat;
  if (!damaged && ageMs <= olderThanMs) {
    return { outcome: 'continuing', savedAt, ageMs, endsAfter: new Date(savedMs + olderThanMs).toISOString(), ...(state !== undefined && { location: state.location, pieces: state.pieces }) };
  }
  const { abortError, completed } = await endChain(tenantsDir, tenant, from, open);
  const reason = damaged ? 'damaged' : 'stale';
  const described = state === undefined ? {} : { location: state.location, chain: state.chain, pieces: state.pieces };
  if (from === undefined) {
    const leftAtStore = 'its destination is unknown (its state could not be read): a multipart upload it started stays at the store until a bucket lifecycle rule AbortIncompleteMultipartUpload removes it';
    return { outcome: 'ended', reason, savedAt, upload: 'left', leftAtStore };
  }
  if (completed !== undefined) return { outcome: 'ended', reason, savedAt, ...described, upload: 'completed' };
  const { uploadId } = from.state.upload;
  if (uploadId !== undefined && abortError !== undefined) {
    const why = abortError instanceof Error ? abortError.message : String(abortError);
    const leftAtStore =
      `its multipart upload ${uploadId} could not be aborted (${why}): ` +
      'a bucket lifecycle rule AbortIncompleteMultipartUpload removes it, or abort it with credentials allowed s3:AbortMultipartUpload';
    return { outcome: 'ended', reason, savedAt, ...described, upload: 'left', leftAtStore };
  }
  return { outcome: 'ended', reason, savedAt, ...described, upload: uploadId === undefined ? 'none' : 'aborted' };
}
