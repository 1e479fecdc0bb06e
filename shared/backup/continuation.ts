// The state of a backup that continues across processes (a Lambda invocation that ran out of
// time hands over to the next): one file per tenant in the tenant base dir,
// `.openclaw-continuation-<tenant>`, written atomically (a temporary file, fsync'ed, renamed
// over the last state, the directory fsync'ed), so a crash at any moment leaves the previous
// piece's state or the new one whole. It holds where the archive stands
// (tenant-archive.ts's checkpoint: the walk's position, the digests, notes and counts so far),
// where the upload stands (the multipart upload's id and parts), and two byte strings that
// have not reached the store yet: the unfinished zstd frame's input (under a frame, 2 MiB)
// and the upload's tail (under S3's 5 MiB minimum part). An encrypted backup's state adds its
// age stream (age/encrypt.ts SuspendedAgeFile): the recipients, the next chunk's index, the
// plaintext not sealed yet (at most 64 KiB) and the payload key. The key decrypts the
// archive: the file is created mode 0600, next to the tenant's plaintext data it guards no
// less, and the key never leaves it (not in the queue's message, the results, events or logs).
// A state file another user owns (but the base dir's owner), or that its group or others may
// write, is not one this tool saved: it is refused as damaged, and its chain ends.
//
// While the file exists the chain owns the tenant between its pieces, as a lock would: a new
// backup or a restore of the tenant is refused (TenantBusyError) until the chain ends,
// completed, failed, or cleaned up as abandoned (`staleChains`: by the backup function, or
// by `tenants recover`, which also ends a chain whose state is damaged). Each piece holds the
// tenant's lock while it runs. The base-dir sweep leaves the file alone; a temporary file of
// a killed save is removed by the tenant's recovery (slot.ts), like a journal's.
//
// Format: "OCCS1\n", the state's JSON length (4 bytes, big-endian), the JSON, the frame's
// bytes, for an encrypted backup the payload key's and the unsealed plaintext's bytes, then
// the tail's bytes; the JSON gives every length, and a file whose lengths do not add up is
// refused.

import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { crashPoint } from '../crash-points.js';
import { AgeBadRecipientError, errnoMessage, FileSystemError, TenantBusyError } from '../errors.js';
import { notSavedByThisTool, readOwnFileIfPresent } from '../file-access.js';
import { replaceFileWhole } from '../write-whole.js';
import { hiddenNames, parseHiddenName } from '../tenant/hidden-names.js';
import { tenantLockHeldHere } from '../tenant/lock.js';
import type { UploadCheckpoint } from '../storage/s3-upload.js';
import type { ArchiveCheckpoint } from './tenant-archive.js';
import type { SuspendedAgeFile } from '../age/encrypt.js';
import type { Manifest, ManifestNote } from '../archive/manifest.js';
import { PAYLOAD_KEY_BYTES, CHUNK_BYTES } from '../age/stream.js';

const MAGIC = Buffer.from('OCCS1\n');
/** The magic of a later format ("OCCS2\n" on). */
const LATER_MAGIC = /^OCCS(?:[2-9]|[1-9]\d+)\n/;
export const CONTINUATION_FORMAT_VERSION = 1;

/**
 * How long a chain's state may go unsaved before the chain counts as broken and is ended:
 * the functions' default (OPENCLAW_ABANDON_AFTER_MS), and `tenants recover`'s rule. Pieces
 * hand over within minutes, so a live chain is never this old.
 */
export const DEFAULT_ABANDON_AFTER_MS = 24 * 60 * 60 * 1000;

/**
 * A state file this version cannot continue from: damaged or not this tool's (nothing can continue it), or
 * `laterFormat`: written by a later version, which may still be continuing it.
 */
export class UnreadableContinuationError extends FileSystemError {
  constructor(
    message: string,
    readonly laterFormat: boolean,
  ) {
    super(message);
  }
}

/**
 * A piece that found its chain's state damaged ended the chain (endDamagedChain): the backup
 * failed for good, and another delivery of the piece's message would find nothing to continue.
 */
export class DamagedChainEndedError extends FileSystemError {}

/**
 * A piece asked to encrypt otherwise than its chain's archive began (the stack's encryptTo
 * deployed or changed mid-chain) ended the chain: failed for good, one failure event; another
 * delivery of its message finds nothing to continue.
 */
export class RecipientsChangedChainEndedError extends AgeBadRecipientError {}

export interface ContinuationState {
  readonly version: typeof CONTINUATION_FORMAT_VERSION;
  /** Names the chain: the continuation message carries it, and a piece goes on only from its own chain's state. */
  readonly chain: string;
  readonly tenant: string;
  /** The destination, as shown to users (`s3://bucket/key`). */
  readonly location: string;
  /** The archive's creation time (its marker's and manifest's). */
  readonly createdAt: string;
  /** When the first piece started, and when the last one saved this. */
  readonly startedAt: string;
  readonly savedAt: string;
  /** Pieces run so far. */
  readonly pieces: number;
  readonly archive: ArchiveCheckpoint;
  readonly upload: Omit<UploadCheckpoint, 'tail'>;
  /**
   * Set by the piece that ends the archive, right before it commits the upload (the rest of
   * the state is the one it started from): the archive may be stored whole from then on. A
   * piece run again from this state (the committing one killed before it removed the state)
   * looks for that archive first and, found, ends the chain as a success without storing
   * anything again; not found (killed before the commit), it goes on from the rest as ever.
   */
  readonly committing?: CommittingArchive;
}

/** The whole archive a chain's last piece is committing: its size, and what its backup's result says of it. */
export interface CommittingArchive {
  readonly bytes: number;
  readonly manifestSha256: string;
  readonly totals: Manifest['totals'];
  readonly skipped: readonly ManifestNote[];
  readonly warnings: readonly ManifestNote[];
  /** The least --max-entries whose restore reads its manifest, when past the default's (absent from states of earlier versions). */
  readonly manifestEntriesToRead?: number;
}

/** An encrypted backup's age file between pieces. */
export interface SavedEncryption {
  /** The age1… recipients its header was written to (public keys). */
  readonly recipients: readonly string[];
  /** Where its payload stands; `payloadKey` is a secret. */
  readonly stream: SuspendedAgeFile;
}

export interface Continuation {
  readonly state: ContinuationState;
  readonly pendingFrame: Buffer;
  /** Present when the archive is encrypted. */
  readonly encryption?: SavedEncryption;
  readonly tail: Buffer;
}

/** How the JSON records an encrypted backup's stream: lengths of the bytes beside it, never the key. */
interface EncryptionRecord {
  readonly recipients: readonly string[];
  readonly chunkIndex: number;
  readonly keyBytes: number;
  readonly pendingBytes: number;
}

export function continuationPathFor(tenantsDir: string, tenant: string): string {
  return path.join(tenantsDir, hiddenNames.continuation(tenant));
}

/** A new chain's name. */
export function newChainId(): string {
  return randomBytes(12).toString('hex');
}

/**
 * Replaces the tenant's continuation state, atomically, while the tenant's lock held here is
 * still this process's (checked just before the rename): a piece stalled in the fsync past
 * LOCK_STALE_MS, its lock taken over, renamed its state in under the other command's lock.
 */
export async function saveContinuation(tenantsDir: string, continuation: Continuation): Promise<void> {
  const { state, pendingFrame, encryption, tail } = continuation;
  const stream = encryption?.stream;
  const record: EncryptionRecord | undefined =
    encryption === undefined ? undefined : { recipients: encryption.recipients, chunkIndex: stream!.chunkIndex, keyBytes: stream!.payloadKey.length, pendingBytes: stream!.pending.length };
  const json = Buffer.from(JSON.stringify({ ...state, frameBytes: pendingFrame.length, tailBytes: tail.length, ...(record !== undefined && { encryption: record }) }));
  const length = Buffer.alloc(4);
  length.writeUInt32BE(json.length);
  const target = continuationPathFor(tenantsDir, state.tenant);
  const pieces = stream === undefined ? [MAGIC, length, json, pendingFrame, tail] : [MAGIC, length, json, pendingFrame, stream.payloadKey, stream.pending, tail];
  try {
    const lock = tenantLockHeldHere(tenantsDir, state.tenant);
    await replaceFileWhole(tenantsDir, hiddenNames.continuationTemp(state.tenant), path.basename(target), pieces, async () => {
      crashPoint('continuation:temp-written');
      await lock?.assertHeld();
    });
  } catch (error) {
    if (error instanceof TenantBusyError) throw error;
    throw new FileSystemError(`cannot save the state of the continuing backup of "${state.tenant}" (${target}): ${errnoMessage(error) ?? String(error)}`, { cause: error });
  }
}

/** A state holds the JSON, a pending zstd frame, an age chunk and the upload's tail (under 5 MiB): a larger file under its name is not one. */
const CONTINUATION_MAX_BYTES = 256 * 1024 * 1024;

/** The tenant's continuation state; undefined when there is none. */
export async function loadContinuation(tenantsDir: string, tenant: string): Promise<Continuation | undefined> {
  const file = continuationPathFor(tenantsDir, tenant);
  const read = await readOwnFileIfPresent(file, CONTINUATION_MAX_BYTES, `the state of the continuing backup of "${tenant}"`);
  if (read === undefined) return undefined;
  // A planted state would choose what the next piece skips, and the upload it completes.
  const foreign = await notSavedByThisTool(tenantsDir, read);
  if (foreign !== undefined) throw new UnreadableContinuationError(`the state of the continuing backup of "${tenant}" (${file}) is ${foreign}: not one this tool saved, so no piece goes on from it`, false);
  const { bytes } = read;
  const damaged = () => new UnreadableContinuationError(`the state of the continuing backup of "${tenant}" (${file}) is damaged`, false);
  const later = () => new UnreadableContinuationError(`the state of the continuing backup of "${tenant}" (${file}) was written by a later version of openclaw`, true);
  if (LATER_MAGIC.test(bytes.subarray(0, 16).toString('latin1'))) throw later();
  if (bytes.length < MAGIC.length + 4 || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) throw damaged();
  const jsonEnd = MAGIC.length + 4 + bytes.readUInt32BE(MAGIC.length);
  let parsed: ContinuationState & { frameBytes: number; tailBytes: number; encryption?: EncryptionRecord };
  try {
    parsed = JSON.parse(bytes.subarray(MAGIC.length + 4, jsonEnd).toString('utf8'));
  } catch {
    throw damaged();
  }
  if (!isRecord(parsed)) throw damaged();
  const { frameBytes, tailBytes, encryption: record, ...state } = parsed;
  if (typeof state.version === 'number' && state.version > CONTINUATION_FORMAT_VERSION) throw later();
  if (state.version !== CONTINUATION_FORMAT_VERSION || state.tenant !== tenant) throw damaged();
  if (typeof state.chain !== 'string' || typeof state.location !== 'string' || !isUploadRecord(state.upload) || !isArchiveRecord(state.archive)) throw damaged();
  // The creation time goes into the manifest the last piece writes (one it cannot parse makes the archive unrestorable), the others into the events.
  if (!isIsoTime(state.createdAt) || !isIsoTime(state.startedAt) || !isIsoTime(state.savedAt) || !(isByteCount(state.pieces) && state.pieces >= 1)) throw damaged();
  if (!isByteCount(frameBytes) || !isByteCount(tailBytes)) throw damaged();
  if (record !== undefined && !(isRecord(record) && isEncryptionRecord(record))) throw damaged();
  if (state.committing !== undefined && !(isRecord(state.committing) && isCommittingArchive(state.committing))) throw damaged();
  const keyBytes = record?.keyBytes ?? 0;
  const pendingBytes = record?.pendingBytes ?? 0;
  if (jsonEnd + frameBytes + keyBytes + pendingBytes + tailBytes !== bytes.length) throw damaged();
  let at = jsonEnd;
  const take = (count: number): Buffer => bytes.subarray(at, (at += count));
  const pendingFrame = take(frameBytes);
  const encryption: SavedEncryption | undefined =
    record === undefined ? undefined : { recipients: record.recipients, stream: { chunkIndex: record.chunkIndex, payloadKey: take(keyBytes), pending: take(pendingBytes) } };
  return { state, pendingFrame, ...(encryption !== undefined && { encryption }), tail: take(tailBytes) };
}

/** A time as a piece saves it (Date's toISOString). */
function isIsoTime(value: unknown): boolean {
  return typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/.test(value) && !Number.isNaN(Date.parse(value));
}

/** An object whose fields can be read (JSON's null is an object to typeof). */
function isRecord(value: unknown): value is object {
  return typeof value === 'object' && value !== null;
}

function isByteCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function isUploadRecord(upload: unknown): boolean {
  if (!isRecord(upload)) return false;
  const { uploadId, parts, bytes, partSize } = upload as Partial<UploadCheckpoint>;
  return (uploadId === undefined || typeof uploadId === 'string') && Array.isArray(parts) && parts.every(isRecord) && isByteCount(bytes) && isByteCount(partSize);
}

/** The archive's checkpoint as far as a piece reads it before its walk (its digest state is the tree digest's to judge). */
function isArchiveRecord(archive: unknown): boolean {
  if (!isRecord(archive)) return false;
  const { resumeAfter, digest, skipped, warnings, totals, snapshotted, settled, waiting, archiveBytes } = archive as Partial<ArchiveCheckpoint>;
  // archiveBytes becomes the footer's bytesBefore: another value there would make the archive's end unreadable.
  return typeof resumeAfter === 'string' && isRecord(digest) && isRecord(totals) && [skipped, warnings, snapshotted, settled, waiting].every(Array.isArray) && (archiveBytes === undefined || isByteCount(archiveBytes));
}

function isCommittingArchive(committing: CommittingArchive): boolean {
  return (
    Number.isSafeInteger(committing.bytes) &&
    committing.bytes >= 0 &&
    typeof committing.manifestSha256 === 'string' &&
    typeof committing.totals === 'object' &&
    committing.totals !== null &&
    Array.isArray(committing.skipped) &&
    Array.isArray(committing.warnings) &&
    (committing.manifestEntriesToRead === undefined || Number.isSafeInteger(committing.manifestEntriesToRead))
  );
}

function isEncryptionRecord(record: EncryptionRecord): boolean {
  return (
    Array.isArray(record.recipients) &&
    record.recipients.length > 0 &&
    record.recipients.every((recipient) => typeof recipient === 'string') &&
    Number.isSafeInteger(record.chunkIndex) &&
    record.chunkIndex >= 0 &&
    record.keyBytes === PAYLOAD_KEY_BYTES &&
    Number.isSafeInteger(record.pendingBytes) &&
    record.pendingBytes >= 0 &&
    record.pendingBytes <= CHUNK_BYTES
  );
}

/**
 * Whether the chain `chain` still owns the tenant, its state readable: a piece of it that
 * failed (the tenant volume full as it saved, S3 unreachable) leaves the state it started
 * from, which its message's next delivery goes on from; the chain has not ended.
 */
export async function chainGoesOn(tenantsDir: string, tenant: string, chain: string): Promise<boolean> {
  const saved = await loadContinuation(tenantsDir, tenant).catch(() => undefined);
  saved?.encryption?.stream.payloadKey.fill(0);
  return saved?.state.chain === chain;
}

/**
 * What a piece does when its chain's state cannot be read: damaged, nothing can continue from
 * it, and each delivery of the piece's message would fail alike (a Failed event each, then the
 * DLQ, the tenant kept busy a day until the chain was abandoned). The chain is ended there, as
 * `tenants recover` ends it: the state removed, its upload (whose ID was in the state) left to
 * the bucket's lifecycle rule. Any other failure to read it, or a state a later version wrote,
 * is thrown as it is. The caller holds the tenant's lock.
 */
export async function endDamagedChain(error: unknown, tenantsDir: string, tenant: string, location: string): Promise<never> {
  if (!(error instanceof UnreadableContinuationError) || error.laterFormat) throw error;
  await removeContinuation(tenantsDir, tenant);
  throw new DamagedChainEndedError(
    `${error.message}: the backup to ${location} is ended (its state removed; a multipart upload it started stays at the store until a bucket lifecycle rule AbortIncompleteMultipartUpload removes it)`,
    { cause: error },
  );
}

export async function removeContinuation(tenantsDir: string, tenant: string): Promise<void> {
  await fs.rm(continuationPathFor(tenantsDir, tenant), { force: true });
}

/**
 * Who ends a chain that broke, as the busy message tells: `tenants recover` where the base dir
 * is mounted (the CLI's local mode, the default), or the gateway's backup function, which ends
 * every chain no piece has saved for `abandonAfterMs` at its next invocation (functions/chain-events.ts).
 */
export type ChainEnder = { readonly by: 'recover' } | { readonly by: 'gateway'; readonly abandonAfterMs: number };

/**
 * How many abandon ages a chain whose last piece was committing its archive is kept while the
 * store cannot be asked whether it holds that archive whole (abandonStaleBackups): then it is
 * ended as any other, its failure said, so that a store gone for good holds the tenant one more
 * age at most.
 */
export const UNJUDGED_COMMIT_KEPT_AGES = 2;

/** Refuses to start an operation on a tenant that a continuing backup owns between its pieces. */
export async function assertNoContinuation(tenantsDir: string, tenant: string, operation: string, ender: ChainEnder = { by: 'recover' }): Promise<void> {
  const file = continuationPathFor(tenantsDir, tenant);
  const stat = await fs.stat(file).catch(() => undefined);
  if (stat === undefined) return;
  const busy = `tenant "${tenant}" is busy: a backup of it continues across invocations (state ${file}, saved ${stat.mtime.toISOString()}); the ${operation} can run once it ends`;
  if (ender.by === 'gateway') {
    // `tenants recover` cannot run through the gateway: the functions end it themselves.
    const hours = Math.round((ender.abandonAfterMs / 3_600_000) * 10) / 10;
    // Past that time, a chain still there is most often one its last piece was committing, kept while the store
    // cannot say whether it holds that archive whole (abandonStaleBackups): the date above is gone, the line says why.
    const committing = Date.now() > stat.mtimeMs + ender.abandonAfterMs ? await loadContinuation(tenantsDir, tenant).then(
            (from) => {
              from?.encryption?.stream.payloadKey.fill(0);
              return from?.state.committing !== undefined ? from.state.location : undefined;
            },
            () => undefined,
          ) : undefined;
    if (committing !== undefined) {
      throw new TenantBusyError(
        `${busy}. Its last piece was committing its archive (${committing}), and the store has not said whether it holds it whole: ` +
          `kept until it does (the gateway's WARN log 'kept a stale backup chain' names the store's error), then its outcome is said; ` +
          `the gateway's first backup invocation after ${new Date(stat.mtimeMs + UNJUDGED_COMMIT_KEPT_AGES * ender.abandonAfterMs).toISOString()} ends it in any case (failure event)`,
      );
    }
    throw new TenantBusyError(
      `${busy}. One that broke is ended (upload aborted, failure event) by the gateway's first backup invocation after ` +
        `${new Date(stat.mtimeMs + ender.abandonAfterMs).toISOString()} (${hours} h without a piece); a damaged state is ended at once by ` +
        `\`openclaw --tenants-dir DIR tenants recover ${tenant}\` on a host that mounts the tenant volume at DIR`,
    );
  }
  throw new TenantBusyError(
    `${busy}, or once an abandoned one is cleaned up: \`openclaw tenants recover ${tenant}\` ends it ` +
      `when no piece has saved it for ${DEFAULT_ABANDON_AFTER_MS / 3_600_000} h, or its state is damaged`,
  );
}

/**
 * Tenants whose continuation state was last saved more than `olderThanMs` ago: chains that
 * broke. `names`: the base dir's names, when the caller has just read them (saves a readdir;
 * a chain whose state appeared since is younger than any `olderThanMs` anyway). One at a
 * time, each state looked at (one stat, on EFS milliseconds) only when the caller asks for
 * the next: one that stops at its deadline has ended the chains it found first, rather than
 * spent its time looking at every state before ending any.
 */
export async function* staleChains(tenantsDir: string, olderThanMs: number, now = Date.now(), names?: readonly string[]): AsyncGenerator<string> {
  names ??= await fs.readdir(tenantsDir).catch(() => [] as string[]);
  for (const name of names) {
    const hidden = parseHiddenName(name);
    if (hidden?.kind !== 'continuation') continue;
    const stat = await fs.stat(path.join(tenantsDir, name)).catch(() => undefined);
    if (stat !== undefined && now - stat.mtimeMs > olderThanMs) yield hidden.tenant;
  }
}
