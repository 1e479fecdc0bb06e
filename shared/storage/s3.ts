// A backup archive as one S3 object (AWS or an S3-compatible store), written with a
// streamed multipart upload and read with a streamed GET that resumes where it broke.
//
// Memory is bounded: the upload (s3-upload.ts) reuses `queueSize + 1` part buffers. The
// body's size is unknown while it streams, yet S3 allows at most 10,000 parts, so the part
// size is fixed up front: 8 MiB by default (as the aws CLI), which holds archives up to
// 78 GiB with 24 MiB of buffers (two parts in flight), or larger when the caller hints the
// expected size (a backup hints the tenant's size), planned for 9,000 parts to leave 10%
// headroom for an underestimate, but never larger than the parts S3's largest object (5 TiB)
// needs: bigger parts would only cost memory (a 10 TiB hint asked for 2.3 GiB of buffers).
//
// All or nothing: the object only appears when the upload completes. Any failure (an S3
// error, the body erroring, the abort signal) stops feeding parts at once, cancels the
// parts in flight, and aborts the multipart upload.
//
// No silent overwrite: a HEAD (diagnosed with a one-byte GET, since HEAD errors have no
// body) refuses early, and on AWS the write itself is conditional (`If-None-Match: *` on
// PutObject and CompleteMultipartUpload) so a concurrent writer cannot be clobbered either.
// Custom endpoints rely on the HEAD check alone unless `conditionalWrites` is set: stores
// that do not know the header may ignore it (s3rver does) or, worse, fail the completion
// of a 100 GB upload on it. Where the HEAD check cannot look (write-only credentials: HEAD
// and GET denied) the header is sent there too: it is the only check left, and without it a
// backup replaced the archive at its key without a word.
//
// Metadata: tenant, format version, tool version and creation time are user metadata
// (`x-amz-meta-openclaw-*`), set when the upload starts. The manifest digest is known only
// once the body has ended; it is attached as object tags (`openclaw-*`) right after the
// upload completes, with the size of the object completed (`openclaw-stored-bytes`): the one
// record that the object under the key is the whole of what the backup stored, for an
// archive whose own bytes cannot show it (encrypted, piped: no readable footer; listing and
// prune, catalog/backups.ts). Tags rather than a CopyObject-in-place with MetadataDirective REPLACE:
// tagging works for any size (copy is limited to 5 GiB), does not rewrite the data, keeps
// the ETag and multipart checksums, and does not create a second full version in a
// versioned (or Object Lock) backup bucket. If tagging fails (a store without object
// tagging, such as R2; a throttled or denied call; the deadline), the archive stands
// untagged and the write still succeeds, saying so (WriteResult.unrecorded, a note of the backup),
// unless the tagging's 404 and a HEAD's show the store holds no object there after its 200 to the upload: the digest is also in the archive's own manifest and
// in the backup's result, and an untagged encrypted or piped archive is only counted by no
// prune rule until `tenants verify` marks it (kept, never removed in the place of another). The
// complete archive is never removed again: that would need s3:DeleteObject, which the
// gateway's backup role deliberately does not hold (a caller able to delete could erase a
// tenant's history), and a failed backup that left its archive behind would block its own
// retry with DESTINATION_EXISTS.
//
// Integrity: on AWS every part carries a CRC32 checksum S3 verifies; custom endpoints get
// only the checksums the API requires (see s3-client.ts).
//
// Verification marks (`tenants verify`): the tag `openclaw-verified` (verified-mark.ts) is
// added to the object's tags, on the version that was read (or, unversioned, only while the
// object still has the ETag that was read), keeping the other tags.
//
// Reads resume: if the body breaks mid-way, a ranged GET continues from the byte where it
// stopped, pinned to the first response's ETag with If-Match (and the answer's ETag and
// Content-Range are checked), so a changed object is an error rather than a splice. At
// most `maxResumes` consecutive breaks without progress are tolerated; a ranged GET whose
// connection is refused or dropped (a store restarting) is one more such break.
//
// Silence is bounded: a store that accepts connections and never answers would otherwise
// hold a command for ten minutes (five attempts, each waiting out the socket's two-minute
// idle timeout). The look at the key before a write and every GET of a read (the first and
// each resume) must be answered within a minute, retries included, or fail as "cannot
// reach … no answer in 60 s"; a body that delivers nothing for a minute while we wait for
// it counts as a break and is resumed like any other.

import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Readable as ReadableStream } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { GetObjectCommandOutput, HeadObjectCommandOutput, S3Client, Tag } from '@aws-sdk/client-s3';
import { AbortedError, DestinationExistsError, OpenClawError, StorageError } from '../errors.js';
import { loadS3Sdk, type S3Sdk } from './s3-client.js';
import { NotS3Answer, notS3NotFound, s3ErrorName, s3StatusCode, translateS3Error, type S3ErrorContext } from './s3-errors.js';
import { formatS3Url } from './s3-url.js';
import { SKIPPABLE_MAGIC_BASE } from '../archive/zstd-format.js';
import { PartStalled } from './part-progress.js';
import { CommitUnconfirmed, MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, uploadStream, UploadFailure, type StreamUploadResult, type UploadCheckpoint } from './s3-upload.js';
import { abortedError, destroyQuietly, holdErrors, isAbortError, onAbort, readAtMost, throwIfAborted } from './streams.js';
import { OPERATION_ID_METADATA_KEY } from './types.js';
import type { ArchiveLocation, ArchiveMetadata, CheckWritableOptions, PieceOptions, PieceResult, ReadOptions, StoredArchive, StoredPiecesOptions, StoreEndpoint, VerifiedMark, WriteOptions, WriteResult } from './types.js';
import { formatMarkTag, VERIFIED_TAG } from './verified-mark.js';
import { unconfirmedEncryption, type AppliedEncryption, type S3ObjectSettings } from './s3-object-settings.js';

const MiB = 1024 * 1024;

/** S3's limits on multipart uploads (MAX_PARTS, MIN_PART_SIZE, MAX_PART_SIZE, from s3-upload.ts). */
export { MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE };
/** S3's largest object. */
export const MAX_OBJECT_SIZE = 5 * 1024 * 1024 * MiB;
/** The part size at which MAX_PARTS parts hold S3's largest object (525 MiB): a hint can ask for no more. */
export const LARGEST_USEFUL_PART_SIZE = Math.ceil(MAX_OBJECT_SIZE / MAX_PARTS / MiB) * MiB;

/** 8 MiB parts without a size hint: 9,000 of them are 70 GiB, and the parts past those grow (s3-upload.ts partSizeAt). */
export const DEFAULT_PART_SIZE = 8 * MiB;
/** Parts planned for a hinted size: 10% headroom below MAX_PARTS. */
export const PLANNED_PARTS = 9_000;
/** Parts in flight are limited so their buffers stay near this budget (1 or 2 parts of the default size). */
export const IN_FLIGHT_BUDGET = 16 * MiB;
export const MAX_QUEUE_SIZE = 4;

/** Prefix of our user metadata keys and object tag keys. */
export const METADATA_PREFIX = 'openclaw-';
/** The final metadata (object tag `openclaw-stored-bytes`) that records the size of the object a backup completed. */
export const STORED_BYTES_METADATA_KEY = 'stored-bytes';
/**
 * The seal (user metadata and object tag `openclaw-seal`): binds the tags a backup writes as it
 * completes an object to that object's upload. Tags can be set by anyone allowed
 * s3:PutObjectTagging, which needs no s3:PutObject: with it, a size tag added to an object
 * that never got one (a `--pipe` output cut short) made it the tenant's newest whole backup,
 * and prune removed the real ones in its favour. The upload starts with the SHA-256 of a random
 * secret in its user metadata, which only a rewrite of the object (s3:PutObject) can change;
 * the secret itself is told only in the tags written once the object is known whole. A listing
 * takes an object's size and digest tags only beside the secret whose digest its metadata holds
 * (sealHolds), so no one can make tags for an object whose backup never wrote them. Objects
 * without the seal in their metadata (older versions; a write in pieces, whose later
 * invocations would need the secret in their checkpoint) are taken as before.
 */
export const SEAL_METADATA_KEY = 'seal';

/** The digest of a seal's secret, as user metadata holds it. */
export function sealDigest(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/**
 * Whether the tags of an object may be taken as written by the backup that completed it: its
 * user metadata names no seal (taken as before), or the seal tag's secret is the one it names.
 */
export function sealHolds(userMetadata: Readonly<Record<string, string>> | undefined, sealTag: string | undefined): boolean {
  const sealed = userMetadata?.[`${METADATA_PREFIX}${SEAL_METADATA_KEY}`];
  if (sealed === undefined) return true;
  return sealTag !== undefined && sealDigest(sealTag) === sealed;
}

/**
 * Whether an object's user metadata names a seal and its tags carry none: the tags are not the
 * ones its backup wrote (anyone allowed s3:PutObjectTagging replaced them; a write of tags
 * replaces the whole set), so nothing in them is the backup's record.
 */
export function sealMissing(userMetadata: Readonly<Record<string, string>> | undefined, sealTag: string | undefined): boolean {
  return userMetadata?.[`${METADATA_PREFIX}${SEAL_METADATA_KEY}`] !== undefined && sealTag === undefined;
}

export interface UploadPlan {
  readonly partSize: number;
  readonly queueSize: number;
}

/**
 * Part size and parallelism for an upload: `partSize` (default 8 MiB) or more when
 * `expectedBytes` needs it, rounded up to whole MiB; fewer parts in flight as parts grow.
 */
export function planUpload(expectedBytes?: number, partSize = DEFAULT_PART_SIZE, queueSize?: number): UploadPlan {
  let size = Math.max(partSize, MIN_PART_SIZE);
  if (expectedBytes !== undefined && expectedBytes > 0) {
    size = Math.max(size, Math.min(Math.ceil(expectedBytes / PLANNED_PARTS / MiB) * MiB, LARGEST_USEFUL_PART_SIZE));
  }
  size = Math.min(size, MAX_PART_SIZE);
  const queue = queueSize ?? Math.min(MAX_QUEUE_SIZE, Math.max(1, Math.floor(IN_FLIGHT_BUDGET / size)));
  return { partSize: size, queueSize: queue };
}

export interface S3LocationOptions {
  readonly client: S3Client;
  readonly bucket: string;
  readonly key: string;
  /** A custom endpoint as messages show it (origin and path: open-location.ts); undefined for AWS. */
  readonly endpoint?: string;
  /** Where the custom endpoint came from (`--endpoint`, `AWS_ENDPOINT_URL_S3`, `profile minio, endpoint_url`). @default '--endpoint' */
  readonly endpointSource?: string;
  /** Expected archive size in bytes, to choose a part size that fits in 10,000 parts. */
  readonly expectedBytes?: number;
  /** @default 8 MiB (at least 5 MiB, S3's minimum) */
  readonly partSize?: number;
  /** Parts uploaded in parallel. @default 1–4, from the part size */
  readonly queueSize?: number;
  /** Send `If-None-Match: *` when not overwriting. @default true on AWS, false on custom endpoints */
  readonly conditionalWrites?: boolean;
  /** Server-side encryption and storage class the archive's object is created with (`--sse`, `--sse-kms-key-id`, `--storage-class`). @default - the bucket's defaults */
  readonly objectSettings?: S3ObjectSettings;
  /** Per-part checksum S3 verifies. @default 'CRC32' on AWS, none on custom endpoints */
  readonly checksumAlgorithm?: 'CRC32' | 'CRC32C' | 'SHA1' | 'SHA256';
  /** Consecutive broken downloads, without progress in between, resumed before giving up. @default 5 */
  readonly maxResumes?: number;
  /** Delay before the first resume, doubled for each further one. @default 200 */
  readonly resumeDelayMs?: number;
  /** Secrets to mask in messages (secret key, session token). */
  readonly secrets?: readonly (string | undefined)[];
  /**
   * How long the look at the key before a write, and each GET of a read (the first and every
   * resume), may wait for an answer, retries included. @default ANSWER_DEADLINE_MS
   */
  readonly answerDeadlineMs?: number;
  /**
   * How long a read waits for the body's next bytes before the connection counts as broken and
   * is resumed, and how long an attempt to send a part may go without the socket taking a byte
   * before it is retried. @default STALL_DEADLINE_MS (PART_STALL_MS for uploads, the same minute)
   */
  readonly stallDeadlineMs?: number;
}

/**
 * These requests are a few hundred bytes each way (a GET's answer is its headers): a store
 * that accepts connections and never answers fails them in a minute, not after every
 * attempt has waited out the socket's two-minute idle timeout (ten minutes).
 */
export const ANSWER_DEADLINE_MS = 60_000;
/** A download silent this long is broken (a dead connection, a wedged store): resumed, at most `maxResumes` times without progress. */
const STALL_DEADLINE_MS = 60_000;
/**
 * What a download must bring in each stall time spent waiting for the store (273 bytes a
 * second at the default 60 s): a store sending a byte every few seconds never falls silent
 * for a stall time, and a restore of 80 KiB so took a day. Slower, it is broken as a silent
 * one is, and resuming it counts as no progress; so does a break that brought less.
 */
export const MIN_BYTES_PER_STALL = 16 * 1024;

/** What a look at the key found: an object (and the scheduled run whose backup stored it, if its metadata names one), none, or it cannot tell. */
type Probe = { readonly exists: true; readonly storedByRun?: string } | 'absent' | 'unknown';

export class S3Location implements ArchiveLocation {
  readonly display: string;
  readonly bucket: string;
  readonly key: string;
  readonly plan: UploadPlan;
  readonly endpoint?: StoreEndpoint;
  readonly objectSettings: S3ObjectSettings;
  private readonly client: S3Client;
  private readonly options: S3LocationOptions;
  private region: Promise<string | undefined> | undefined;
  /** The object `read` opened: what a verification mark is pinned to; its user metadata, which names the seal its tags are taken beside (sealHolds). */
  private opened: { readonly etag?: string; readonly versionId?: string; readonly bytes?: number; readonly metadata?: Readonly<Record<string, string>> } | undefined;

  constructor(options: S3LocationOptions) {
    this.options = options;
    this.client = options.client;
    this.bucket = options.bucket;
    this.key = options.key;
    this.display = formatS3Url(options);
    this.objectSettings = options.objectSettings ?? {};
    if (options.endpoint !== undefined) this.endpoint = { url: options.endpoint, source: options.endpointSource ?? '--endpoint' };
    this.plan = planUpload(options.expectedBytes, options.partSize, options.queueSize);
  }

  async checkWritable(options: CheckWritableOptions): Promise<void> {
    const { signal } = options;
    const sdk = await loadS3Sdk();
    const context = await this.context('check');
    throwIfAborted(signal);
    let state: Probe;
    try {
      state = await this.probe(sdk, context, signal);
    } catch (error) {
      if (signal?.aborted) throw abortedError(signal);
      throw error;
    }
    if (typeof state === 'object' && !options.overwrite) throw this.existsError(state);
  }

  async write(body: Readable, options: WriteOptions): Promise<WriteResult> {
    return this.upload(body, options);
  }

  /** A piece of a write that spans processes: the multipart upload goes on from `resume`, and is suspended rather than completed when `suspendWhen` says so. */
  async writePiece(body: Readable, options: PieceOptions): Promise<PieceResult> {
    return this.upload(body, options, options);
  }

  async abandonPieces(at: UploadCheckpoint, options: ReadOptions = {}): Promise<void> {
    if (at.uploadId === undefined) return;
    const [sdk, context] = await Promise.all([loadS3Sdk(), this.context('write')]);
    try {
      await this.client.send(new sdk.AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.key, UploadId: at.uploadId }), { abortSignal: options.signal });
    } catch (error) {
      if (s3ErrorName(error) === 'NoSuchUpload' || s3StatusCode(error) === 404) return;
      if (options.signal?.aborted) throw abortedError(options.signal);
      throw translateS3Error(error, context);
    }
  }

  private async upload(body: Readable, options: WriteOptions, piece?: PieceOptions): Promise<PieceResult> {
    const { signal, overwrite } = options;
    const resume = piece?.resume as UploadCheckpoint | undefined;
    // An error of `body` during the pre-check must not go unhandled; the upload reads it.
    holdErrors(body);
    const context = await this.context('write');
    let sdk: S3Sdk;
    let state: Probe;
    try {
      sdk = await loadS3Sdk();
      throwIfAborted(signal);
      state = !overwrite && resume === undefined ? await this.probe(sdk, context, signal) : 'absent';
      if (typeof state === 'object') throw this.existsError(state);
      throwIfAborted(signal);
    } catch (error) {
      destroyQuietly(body);
      if (signal?.aborted) throw abortedError(signal);
      throw translateS3Error(error, context);
    }

    const checksumAlgorithm = this.options.checksumAlgorithm ?? (this.options.endpoint === undefined ? 'CRC32' : undefined);
    // Where no look was allowed (write-only credentials), the conditional write is the only check
    // left, at any endpoint: without it a second backup to the key replaced the first, unsaid.
    // A continuing piece does not look: its chain's first piece decided, and its checkpoint says so.
    const couldNotLook = state === 'unknown' || resume?.conditional === true;
    const conditional = !overwrite && (this.options.conditionalWrites ?? (this.options.endpoint === undefined || couldNotLook));
    let tags: Tag[] = [];
    let uploaded: StreamUploadResult;
    // A write in pieces is left unsealed: its commit may come in another invocation (SEAL_METADATA_KEY).
    const seal = piece === undefined ? randomBytes(32).toString('base64url') : undefined;
    try {
      uploaded = await uploadStream(body, {
        sdk,
        client: this.client,
        target: {
          Bucket: this.bucket,
          Key: this.key,
          ContentType: 'application/octet-stream',
          Metadata: { ...userMetadata(options.metadata), ...(seal !== undefined && { [`${METADATA_PREFIX}${SEAL_METADATA_KEY}`]: sealDigest(seal) }) },
          ...this.objectSettings,
          ...(checksumAlgorithm !== undefined && { ChecksumAlgorithm: checksumAlgorithm }),
          ...(conditional && { IfNoneMatch: '*' }),
        },
        // A continuing piece keeps its chain's part size, and the parts in flight that size allows.
        ...(resume === undefined ? this.plan : planUpload(undefined, resume.partSize, this.options.queueSize)),
        ...(piece !== undefined && { suspendWhen: piece.suspendWhen }),
        ...(piece?.committing !== undefined && { committing: piece.committing }),
        ...(piece?.keepPiecesOnFailure !== undefined && { keepUploadOnBodyFailure: piece.keepPiecesOnFailure }),
        ...(resume !== undefined && { resume }),
        beforeCommit: (stored) => {
          // No tags for bytes not known whole (a --pipe command's age output shorter than age makes, or an output no one can
          // measure: pipe.ts outputWhole): the object is then unconfirmed, not a completed backup. Not the digest tag either:
          // listings count an object carrying it whole (backups.ts: the versions before the size tag), and a cut age output
          // `age -r R | { head -c 300; cat >/dev/null; }` with only its digest tag was still acme's newest backup to prune.
          tags =
            options.bodyWhole?.() === false
              ? []
              : tagsFor({ ...options.finalMetadata?.(), [STORED_BYTES_METADATA_KEY]: String(stored), ...(seal !== undefined && { [SEAL_METADATA_KEY]: seal }) });
        },
        ...(signal !== undefined && { signal }),
        ...(this.options.stallDeadlineMs !== undefined && { stallMs: this.options.stallDeadlineMs }),
      });
    } catch (error) {
      const failed = error instanceof UploadFailure ? this.failureError(error, context, signal) : translateS3Error(error, context);
      if (!(error instanceof UploadFailure)) destroyQuietly(body);
      if (couldNotLook && conditional && this.options.conditionalWrites === undefined && failed instanceof StorageError && failed.code === 'NOT_SUPPORTED') {
        throw new StorageError(
          `the store ${this.options.endpoint ?? 'S3'} does not support If-None-Match, which keeps a backup from replacing an archive at ${this.display}, and these credentials may not look whether one is there (HEAD and GET denied): allow them s3:GetObject there, or pass --overwrite to write it unchecked`,
          'NOT_SUPPORTED',
          { cause: failed },
        );
      }
      throw failed;
    }
    const { bytes, versionId, suspended } = uploaded;
    if (suspended !== undefined) return { bytes, suspended };
    // Committed: the archive is complete at the location. A late abort no longer undoes it,
    // and neither does a failed tagging: see the module comment.
    const unrecorded = tags.length > 0 ? await this.tag(sdk, context, tags, versionId, signal) : undefined;
    const unconfirmed = this.unconfirmed(uploaded.applied ?? {});
    return { bytes, ...(unrecorded !== undefined && { unrecorded }), ...(unconfirmed !== undefined && { unconfirmed }) };
  }

  /** What of `--sse`, `--sse-kms-key-id` the store's answer did not confirm, naming the store; undefined when it did or none was asked for. */
  private unconfirmed(applied: AppliedEncryption): string | undefined {
    const what = unconfirmedEncryption(this.objectSettings, applied);
    return what === undefined ? undefined : `the store ${this.options.endpoint ?? 'S3'} did not confirm ${what}`;
  }

  /**
   * The archive a write in pieces committed (types.ts): the object at the key, if it is
   * `bytes` long and carries the write's tenant and creation time (to the millisecond) in its
   * user metadata, which the upload's first piece set; its tags are written again. A piece
   * killed between CompleteMultipartUpload and the end of its backup leaves just that object,
   * and its upload id is then unknown to S3 (NoSuchUpload): going on with the upload would fail.
   */
  async storedPieces(options: StoredPiecesOptions): Promise<WriteResult | undefined> {
    const { signal, bytes } = options;
    const [sdk, context] = await Promise.all([loadS3Sdk(), this.context('write')]);
    let head: { ContentLength?: number; Metadata?: Record<string, string>; VersionId?: string } & AppliedEncryption | undefined;
    try {
      head = await this.headObject(sdk, context, signal);
    } catch (error) {
      if (signal?.aborted) throw abortedError(signal);
      if (error instanceof OpenClawError) throw error;
      // Not found; or not allowed to look (no s3:GetObject): the piece goes on as it would have.
      const status = s3StatusCode(error);
      if (status !== 404 && status !== 403) throw translateS3Error(error, context);
    }
    const metadata = head?.Metadata ?? {};
    if (head === undefined || head.ContentLength !== bytes || metadata[`${METADATA_PREFIX}tenant`] !== options.tenant || metadata[`${METADATA_PREFIX}created-at`] !== options.createdAt) return undefined;
    const unrecorded = await this.tag(sdk, context, tagsFor({ ...options.finalMetadata, [STORED_BYTES_METADATA_KEY]: String(bytes) }), head.VersionId, signal);
    const unconfirmed = this.unconfirmed(head);
    return { bytes, ...(unrecorded !== undefined && { unrecorded }), ...(unconfirmed !== undefined && { unconfirmed }) };
  }

  /** Attaches `tags` to the object (the version written); why it could not, or undefined. */
  private async tag(sdk: S3Sdk, context: S3ErrorContext, tags: Tag[], versionId: string | undefined, signal: AbortSignal | undefined): Promise<string | undefined> {
    let missing = false;
    const failed = await this.answered(context, signal, (abortSignal) =>
      this.client.send(
        new sdk.PutObjectTaggingCommand({
          Bucket: this.bucket,
          Key: this.key,
          ...(versionId !== undefined && { VersionId: versionId }),
          Tagging: { TagSet: tags },
        }),
        { abortSignal },
      ),
    ).then(
      () => undefined,
      (error: unknown) => {
        missing = !(error instanceof OpenClawError) && s3StatusCode(error) === 404;
        return (error instanceof OpenClawError ? error : translateS3Error(error, context)).message;
      },
    );
    // The store answered the upload as done, then knows no such object (a proxy or store that
    // answers 200 and keeps nothing): unless a HEAD finds it after all (a store that answers an
    // API it lacks with 404), that is no backup, whatever the upload's answer said.
    if (missing && !(await this.exists(sdk, context, signal))) {
      throw new StorageError(`the store ${this.options.endpoint ?? 'S3'} answered the upload of ${this.display} as done, but holds no object there: not stored`, 'S3');
    }
    // Said, not thrown: a backup that cannot tag its archive would otherwise go unnoticed,
    // and an encrypted or piped one is then counted by no prune rule until it is verified.
    return failed === undefined ? undefined : `its tags (manifest digest, size stored) could not be attached: ${failed}`;
  }

  /** HEAD of the object at the key (its latest version), answered as every call here is. */
  private headObject(sdk: S3Sdk, context: S3ErrorContext, signal: AbortSignal | undefined): Promise<HeadObjectCommandOutput> {
    return this.answered(context, signal, (abortSignal) => this.client.send(new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: this.key }), { abortSignal }));
  }

  /** Whether a HEAD finds an object at the key: false only for a 404 (any other answer, or none, is no proof it is absent). */
  private async exists(sdk: S3Sdk, context: S3ErrorContext, signal: AbortSignal | undefined): Promise<boolean> {
    try {
      await this.headObject(sdk, context, signal);
      return true;
    } catch (error) {
      if (signal?.aborted) throw abortedError(signal);
      return error instanceof OpenClawError || s3StatusCode(error) !== 404;
    }
  }

  /** Whether objects lie below the key taken as a folder (`KEY/…`); false when the store does not say. */
  private async isPrefix(sdk: S3Sdk, signal: AbortSignal | undefined): Promise<boolean> {
    try {
      const answer = await this.client.send(new sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: `${this.key}/`, MaxKeys: 1 }), { ...(signal !== undefined && { abortSignal: signal }) });
      return (answer.KeyCount ?? answer.Contents?.length ?? 0) > 0;
    } catch {
      return false;
    }
  }

  async read(options: ReadOptions = {}): Promise<Readable> {
    const { signal } = options;
    const [sdk, context] = await Promise.all([loadS3Sdk(), this.context('read')]);
    throwIfAborted(signal);
    const expected = options.expectIdentity === undefined ? undefined : parseObjectIdentity(options.expectIdentity);
    const changed = () => new StorageError(`${this.display} is no longer the object an earlier read found there (written again or removed): read it again`, 'CHANGED');
    if (options.expectIdentity !== undefined && expected === undefined) throw changed();
    let first: GetObjectCommandOutput;
    try {
      first = await this.answered(context, signal, (abortSignal) =>
        this.client.send(
          new sdk.GetObjectCommand({
            Bucket: this.bucket,
            Key: this.key,
            ...(expected !== undefined && { IfMatch: expected.etag }),
            ...(expected?.versionId !== undefined && { VersionId: expected.versionId }),
          }),
          { abortSignal },
        ),
      );
    } catch (error) {
      if (expected !== undefined && (s3StatusCode(error) === 412 || s3ErrorName(error) === 'PreconditionFailed' || s3StatusCode(error) === 404)) throw changed();
      const failure = translateS3Error(notS3NotFound(error, 'GetObject') ?? error, context);
      if (failure instanceof StorageError && failure.code === 'NOT_FOUND' && (await this.isPrefix(sdk, signal))) {
        throw new StorageError(`${failure.message}: it is a prefix with objects below it: give the archive's key (tenants backups NAME --in ${this.display}/ lists a tenant's archives in it)`, 'NOT_FOUND', { cause: error });
      }
      throw failure;
    }
    if (first.ETag === undefined) {
      destroyQuietly(first.Body as Readable | undefined);
      throw translateS3Error(new NotS3Answer('GetObject'), context);
    }
    const named = objectIdentity(first.ETag, first.VersionId);
    // A store that ignores If-Match must not hand a later piece another object.
    if (options.expectIdentity !== undefined && named !== options.expectIdentity) {
      destroyQuietly(first.Body as Readable | undefined);
      throw changed();
    }
    options.onIdentity?.(named);
    this.opened = {
      etag: first.ETag,
      versionId: first.VersionId,
      ...(first.ContentLength !== undefined && { bytes: first.ContentLength }),
      ...(first.Metadata !== undefined && { metadata: first.Metadata }),
    };
    if (first.ContentLength !== undefined) options.onSize?.(first.ContentLength);
    const body = this.resumingBody(sdk, first, context, signal);
    const encoding = first.ContentEncoding;
    const stream = ReadableStream.from(encoding !== undefined && COMPRESSING_CODING.test(encoding) ? this.notCompressedOnTheWay(body, encoding) : body, { objectMode: false });
    // The caller may hold the stream unread while the signal aborts (a restore reading the
    // archive's footer with a ranged GET first): destroyed with the abort and nobody listening
    // yet, it threw the deadline's AbortedError uncaught (a Lambda's runtime ends on that). Its
    // reader gets the error when it starts (holdErrors), the ranged GET rejects with it too.
    holdErrors(stream);
    const stopListening = onAbort(signal, () => stream.destroy(abortedError(signal)));
    stream.once('close', () => {
      stopListening();
      // Destroyed before it was read (a restore refused by the footer's count, an abort), the
      // body reader never started and never let the first answer go: its connection stayed busy.
      destroyQuietly(first.Body as Readable | undefined);
    });
    return stream;
  }

  async readTail(bytes: number, options: ReadOptions = {}): Promise<Buffer | undefined> {
    const { signal } = options;
    // Not opened, or its size untold (an answer without Content-Length): no end to ask for.
    if (this.opened?.bytes === undefined) return undefined;
    const { etag, versionId, bytes: size } = this.opened;
    if (size === 0) return Buffer.alloc(0);
    const [sdk, context] = await Promise.all([loadS3Sdk(), this.context('read')]);
    const changed = () => new StorageError(`${this.display} was written again while it was read (its ETag is no longer the one read): read it again`, 'CHANGED');
    try {
      // The bytes come within the answer's deadline too: a store dripping them would hold the restore.
      return await this.answered(context, signal, async (abortSignal) => {
        const answer = await this.client.send(
          new sdk.GetObjectCommand({
            Bucket: this.bucket,
            Key: this.key,
            Range: `bytes=${Math.max(0, size - bytes)}-${size - 1}`,
            ...(etag !== undefined && { IfMatch: etag }),
            ...(versionId !== undefined && { VersionId: versionId }),
          }),
          { abortSignal },
        );
        if (etag !== undefined && answer.ETag !== undefined && answer.ETag !== etag) {
          destroyQuietly(answer.Body as Readable | undefined);
          throw changed();
        }
        // The whole object from its start (200, no Content-Range): its first bytes are no end.
        if (answer.ContentRange === undefined && (answer.ContentLength ?? 0) > bytes) {
          destroyQuietly(answer.Body as Readable | undefined);
          return undefined;
        }
        return readAtMost(answer.Body as Readable | undefined, bytes, { answerBytes: answer.ContentLength, signal: abortSignal });
      });
    } catch (error) {
      if (signal?.aborted) throw abortedError(signal);
      if (error instanceof OpenClawError) throw error;
      if (s3StatusCode(error) === 412 || s3ErrorName(error) === 'PreconditionFailed') throw changed();
      throw translateS3Error(error, context);
    }
  }

  async markVerified(mark: VerifiedMark, options: ReadOptions = {}): Promise<void> {
    const { signal } = options;
    const [sdk, context] = await Promise.all([loadS3Sdk(), this.context('check')]);
    const versionId = this.opened?.versionId;
    const target = { Bucket: this.bucket, Key: this.key, ...(versionId !== undefined && { VersionId: versionId }) };
    try {
      await this.answered(context, signal, async (abortSignal) => {
        if (versionId === undefined && this.opened?.etag !== undefined) {
          const head = await this.client.send(new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: this.key }), { abortSignal });
          if (head.ETag !== this.opened.etag) throw new StorageError(`${this.display} changed after it was verified: not marked`, 'CHANGED');
        }
        const current = await this.client.send(new sdk.GetObjectTaggingCommand(target), { abortSignal });
        const kept = (current.TagSet ?? []).filter((tag) => tag.Key !== VERIFIED_TAG);
        await this.client.send(
          new sdk.PutObjectTaggingCommand({ ...target, Tagging: { TagSet: [...kept, { Key: VERIFIED_TAG, Value: formatMarkTag(mark) }] } }),
          { abortSignal },
        );
      });
    } catch (error) {
      if (signal?.aborted) throw abortedError(signal);
      throw translateS3Error(error, context);
    }
  }

  /**
   * Removes the tags that say the object `read` opened is whole (its verification mark, the
   * size its backup stored), the caller having found it damaged: as forgetWhole does of the
   * record beside a local archive. Only of the version read (by its version ID, else while its
   * ETag is unchanged); best effort. Before, verify said damaged (exit 3) while the object kept
   * `openclaw-verified`, so `tenants backups` listed it verified and prune counted it whole.
   * The digest tag goes too: listings take it as the record of a whole backup where no size tag
   * is (backups.ts, for earlier versions' objects), and an encrypted object verify had just found
   * damaged, left with it, was still the tenant's newest backup to prune (--keep-last 1 would
   * have removed the whole older one).
   */
  async forgetWhole(options: ReadOptions = {}): Promise<void> {
    const { signal } = options;
    if (this.opened === undefined) return;
    const [sdk, context] = await Promise.all([loadS3Sdk(), this.context('check')]);
    const versionId = this.opened.versionId;
    const target = { Bucket: this.bucket, Key: this.key, ...(versionId !== undefined && { VersionId: versionId }) };
    // The seal too: left, anyone allowed s3:GetObjectTagging and s3:PutObjectTagging read it there and put the size tag back beside it.
    const forgotten = new Set([VERIFIED_TAG, `${METADATA_PREFIX}${STORED_BYTES_METADATA_KEY}`, `${METADATA_PREFIX}manifest-sha256`, `${METADATA_PREFIX}${SEAL_METADATA_KEY}`]);
    try {
      await this.answered(context, signal, async (abortSignal) => {
        if (versionId === undefined && this.opened?.etag !== undefined) {
          const head = await this.client.send(new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: this.key }), { abortSignal });
          if (head.ETag !== this.opened.etag) return;
        }
        const current = await this.client.send(new sdk.GetObjectTaggingCommand(target), { abortSignal });
        const kept = (current.TagSet ?? []).filter((tag) => tag.Key === undefined || !forgotten.has(tag.Key));
        if (kept.length === (current.TagSet ?? []).length) return;
        await this.client.send(new sdk.PutObjectTaggingCommand({ ...target, Tagging: { TagSet: kept } }), { abortSignal });
      });
    } catch (error) {
      if (signal?.aborted) throw abortedError(signal);
      const translated = translateS3Error(error, context);
      // A store without object tagging holds no tags to remove.
      if (translated instanceof StorageError && translated.code === 'NOT_SUPPORTED') return;
      throw translated;
    }
  }

  /**
   * The `manifest-sha256` tag of the object `read` opened (of its version, where the store
   * named one). Anything that is no tag set holding a digest is undefined, nothing to compare:
   * a store without tagging (R2), credentials without s3:GetObjectTagging (a restore function
   * given another bucket to read from), a failed or unanswered call; and a digest tag of a sealed
   * object with no seal tag beside it (sealMissing: someone else wrote its tags). Without a version, the
   * key may have been written again since it was read (`--overwrite`): a digest that is not the
   * one expected is taken only if a HEAD still finds the ETag read, else StorageError CHANGED.
   */
  async recordedDigest(options: ReadOptions & { readonly expected?: string } = {}): Promise<string | undefined> {
    const { signal } = options;
    if (this.opened === undefined) return undefined;
    const { etag, versionId } = this.opened;
    const [sdk, context] = await Promise.all([loadS3Sdk(), this.context('check')]);
    const target = { Bucket: this.bucket, Key: this.key, ...(versionId !== undefined && { VersionId: versionId }) };
    let digest: string | undefined;
    try {
      const tags = await this.answered(context, signal, (abortSignal) => this.client.send(new sdk.GetObjectTaggingCommand(target), { abortSignal }));
      const tag = (name: string) => tags.TagSet?.find((entry) => entry.Key === name)?.Value;
      // None from tags without the seal of a sealed object (sealMissing): anyone allowed s3:PutObjectTagging wrote them, and a
      // digest among them made verify call a whole backup damaged (exit 3, its own tags removed) and restore refuse it, while
      // listings ignored that tag. A seal that is not the one the metadata served names is no such case: the tags are a
      // backup's own, the bytes and metadata served another object's (a store that mixes up its objects): compared.
      digest = sealMissing(this.opened.metadata, tag(`${METADATA_PREFIX}${SEAL_METADATA_KEY}`)) ? undefined : tag(`${METADATA_PREFIX}manifest-sha256`);
    } catch {
      if (signal?.aborted) throw abortedError(signal);
      return undefined;
    }
    if (digest === undefined || !/^[0-9a-f]{64}$/.test(digest)) return undefined;
    if (digest === options.expected || versionId !== undefined || etag === undefined) return digest;
    const head = await this.headObject(sdk, context, signal).catch(() => {
      if (signal?.aborted) throw abortedError(signal);
      return undefined;
    });
    if (head !== undefined && head.ETag !== etag) {
      throw new StorageError(`${this.display} was written again while it was read (its ETag is no longer the one read): read it again`, 'CHANGED');
    }
    return digest;
  }

  /**
   * A HEAD of the key and its tags: the size, the run and creation time its metadata names, and
   * the manifest's digest tag only where the object is sealed and its seal tag holds (tags of
   * an unsealed object anyone allowed s3:PutObjectTagging could have written). Undefined for a
   * 404; any other failure rejects.
   */
  async storedArchive(options: ReadOptions = {}): Promise<StoredArchive | undefined> {
    const { signal } = options;
    const [sdk, context] = await Promise.all([loadS3Sdk(), this.context('check')]);
    let head: HeadObjectCommandOutput;
    try {
      head = await this.client.send(new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: this.key }), { abortSignal: signal });
    } catch (error) {
      if (signal?.aborted) throw abortedError(signal);
      if (s3StatusCode(error) === 404) return undefined;
      throw translateS3Error(error, context);
    }
    const metadata = head.Metadata ?? {};
    const runId = metadata[`${METADATA_PREFIX}run-id`];
    const createdAt = metadata[`${METADATA_PREFIX}created-at`];
    const operationId = metadata[`${METADATA_PREFIX}operation-id`];
    let manifestSha256: string | undefined;
    // The chain's operation ID its last piece tagged the archive with (unsealed, as a write in pieces is), over the first piece's in the metadata.
    let chainOperationId: string | undefined;
    try {
      const tags = await this.client.send(new sdk.GetObjectTaggingCommand({ Bucket: this.bucket, Key: this.key }), { abortSignal: signal });
      const tag = (name: string) => tags.TagSet?.find((entry) => entry.Key === name)?.Value;
      const sealed = metadata[`${METADATA_PREFIX}${SEAL_METADATA_KEY}`] !== undefined;
      const holds = sealHolds(metadata, tag(`${METADATA_PREFIX}${SEAL_METADATA_KEY}`));
      const digest = tag(`${METADATA_PREFIX}manifest-sha256`);
      if (sealed && holds && digest !== undefined && /^[0-9a-f]{64}$/.test(digest)) manifestSha256 = digest;
      if (holds) chainOperationId = tag(`${METADATA_PREFIX}${OPERATION_ID_METADATA_KEY}`);
    } catch {
      if (signal?.aborted) throw abortedError(signal);
    }
    const said = chainOperationId ?? operationId;
    return { bytes: head.ContentLength ?? 0, ...(runId !== undefined && { runId }), ...(said !== undefined && { operationId: said }), ...(createdAt !== undefined && { createdAt }), ...(manifestSha256 !== undefined && { manifestSha256 }) };
  }

  /** Is there an object? HEAD first; HEAD errors carry no body, so a 1-byte GET names the problem. */
  private probe(sdk: S3Sdk, context: S3ErrorContext, signal?: AbortSignal): Promise<Probe> {
    return this.answered(context, signal, (abortSignal) => this.lookAtKey(sdk, context, abortSignal));
  }

  /**
   * `request`, given a signal that also fires at the answer deadline: past it, a StorageError
   * UNREACHABLE "no answer"; an abort of `signal` stays AbortedError. The deadline ends when
   * `request` settles, so a body still streaming after it is never cut off by it.
   */
  private async answered<T>(context: S3ErrorContext, signal: AbortSignal | undefined, request: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const deadlineMs = this.options.answerDeadlineMs ?? ANSWER_DEADLINE_MS;
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), deadlineMs);
    try {
      return await request(signal === undefined ? deadline.signal : AbortSignal.any([signal, deadline.signal]));
    } catch (error) {
      if (signal?.aborted) throw abortedError(signal);
      if (!deadline.signal.aborted) throw error;
      throw new StorageError(`cannot reach ${context.endpoint ?? 'S3'} for ${context.display}: no answer in ${deadlineMs / 1000} s`, 'UNREACHABLE', { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }

  private async lookAtKey(sdk: S3Sdk, context: S3ErrorContext, signal: AbortSignal): Promise<Probe> {
    let head: { ETag?: string; Metadata?: Record<string, string> } | undefined;
    try {
      head = await this.client.send(new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: this.key }), { abortSignal: signal });
    } catch (headError) {
      const status = s3StatusCode(headError);
      if (status === undefined || status >= 500) throw translateS3Error(headError, context);
    }
    if (head !== undefined) {
      if (head.ETag === undefined) throw translateS3Error(new NotS3Answer('HeadObject'), context);
      const storedByRun = head.Metadata?.[`${METADATA_PREFIX}run-id`];
      return { exists: true, ...(storedByRun !== undefined && { storedByRun }) };
    }
    try {
      const answer = await this.client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.key, Range: 'bytes=0-0' }), { abortSignal: signal });
      destroyQuietly(answer.Body as Readable | undefined);
      if (answer.ETag === undefined) throw new NotS3Answer('GetObject');
      return { exists: true };
    } catch (getError) {
      const name = s3ErrorName(getError);
      if (name === 'NoSuchKey') return 'absent';
      // An empty object has no byte 0.
      if (name === 'InvalidRange') return { exists: true };
      // Write-only credentials (no s3:GetObject) cannot look: the conditional write decides.
      if (name === 'AccessDenied') return 'unknown';
      throw translateS3Error(notS3NotFound(getError, 'GetObject') ?? getError, context);
    }
  }

  /**
   * The body, unless the answer says it encoded it (`Content-Encoding`, never asked for) and its
   * first bytes show it: gzip's magic, or for `br`, `deflate` and `compress` (which have none)
   * anything but the start of a zstd stream or an age file. A proxy on the way (or the store)
   * compressed it, and the archive at rest may well be whole. Read as it came it was called a
   * .tar.gz to recompress, or not a zstd archive. (`zstd` is not judged: a proxy's zstd stream
   * starts as an archive of another tool does.)
   */
  private async *notCompressedOnTheWay(body: AsyncGenerator<Buffer>, encoding: string): AsyncGenerator<Buffer> {
    const judgedByItsStart = /gzip/i.test(encoding) ? startsLikeGzip : (start: Buffer) => !startsLikeArchive(start);
    let start = Buffer.alloc(0);
    for await (const chunk of body) {
      if (start.length < ARCHIVE_START_BYTES) {
        start = Buffer.concat([start, chunk]);
        if (start.length < ARCHIVE_START_BYTES) continue;
        if (judgedByItsStart(start)) throw this.compressedOnTheWay(encoding);
        yield start;
        continue;
      }
      yield chunk;
    }
    if (start.length > 0 && start.length < ARCHIVE_START_BYTES) {
      if (judgedByItsStart(start)) throw this.compressedOnTheWay(encoding);
      yield start;
    }
  }

  private compressedOnTheWay(encoding: string): StorageError {
    return new StorageError(
      `the store ${this.options.endpoint ?? 'S3'} sent ${this.display} compressed (Content-Encoding: ${shownEncoding(encoding)}), which the read did not ask for: ` +
        'the store or a proxy on the way compressed it, and the archive at rest may well be whole: read it past that proxy (NO_PROXY), or copy the object without its Content-Encoding',
      'S3',
    );
  }

  private async *resumingBody(
    sdk: S3Sdk,
    first: GetObjectCommandOutput,
    context: S3ErrorContext,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<Buffer> {
    const expected = first.ContentLength;
    const etag = first.ETag;
    const maxResumes = this.options.maxResumes ?? 5;
    const resumeDelay = this.options.resumeDelayMs ?? 200;
    const stallMs = this.options.stallDeadlineMs ?? STALL_DEADLINE_MS;
    let body = first.Body as Readable | undefined;
    let offset = 0;
    let breaksWithoutProgress = 0;
    // Only time spent waiting for the store counts: while the consumer holds us at `yield`
    // (a slow disk), the body is paused by our own backpressure, not stalled; and while this
    // thread is busy (a slow disk written with blocking calls, chunk after chunk), bytes the
    // store sent wait unread, so only the event loop's idle time is counted as waiting.
    let waiting = false;
    let idleAtWaitStart = 0;
    const idleWaited = () => performance.eventLoopUtilization().idle - idleAtWaitStart;
    const checkStalled = () => {
      if (!waiting) return;
      const left = stallMs - idleWaited();
      if (left > 0) watchdog = setTimeout(checkStalled, Math.ceil(left)).unref();
      else destroyQuietly(body, new Error(`no data in ${stallMs / 1000} s`));
    };
    let watchdog = setTimeout(checkStalled, stallMs).unref();
    try {
      for (;;) {
        if (body === undefined) throw new StorageError(`S3 returned no body for ${this.display}`, 'S3');
        const start = offset;
        let broken: unknown;
        let tooSlow = false;
        let waitedMs = 0;
        let bytesInWait = 0;
        // Iterated by hand so that only the body's errors count as breaks: an error the
        // consumer throws in at `yield` (Readable.from does on destroy) ends the generator.
        const chunks = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
        for (;;) {
          let step: IteratorResult<Buffer>;
          waiting = true;
          idleAtWaitStart = performance.eventLoopUtilization().idle;
          watchdog.refresh();
          try {
            step = await chunks.next();
          } catch (error) {
            broken = error;
            break;
          } finally {
            waiting = false;
            waitedMs += idleWaited();
          }
          if (step.done === true) break;
          offset += step.value.length;
          bytesInWait += step.value.length;
          yield step.value;
          if (waitedMs < stallMs) continue;
          if (bytesInWait < MIN_BYTES_PER_STALL) {
            tooSlow = true;
            broken = new Error(`only ${bytesInWait} bytes in ${Math.round(waitedMs / 1000)} s (a download must bring ${MIN_BYTES_PER_STALL / 1024} KiB each stall time)`);
            break;
          }
          waitedMs = 0;
          bytesInWait = 0;
        }
        if (signal?.aborted) throw abortedError(signal);
        if (broken !== undefined && !isResumable(broken)) {
          throw new StorageError(`download of ${this.display} failed at byte ${offset}: ${describe(broken)}`, 'READ_FAILED', { cause: broken });
        }
        if (expected === undefined ? broken === undefined : offset >= expected) return;
        broken ??= new Error(`connection closed after ${offset} of ${expected} bytes`);
        if (etag === undefined) {
          throw new StorageError(`download of ${this.display} broke at byte ${offset} and cannot resume (no ETag): ${describe(broken)}`, 'READ_FAILED', { cause: broken });
        }
        // A break after a few bytes is no progress either: a store closing each connection after
        // its first bytes was resumed without end, a reconnection per few bytes.
        breaksWithoutProgress = offset - start >= MIN_BYTES_PER_STALL && !tooSlow ? 1 : breaksWithoutProgress + 1;
        if (breaksWithoutProgress > maxResumes) {
          throw new StorageError(`download of ${this.display} kept breaking at byte ${offset}: ${describe(broken)}`, 'READ_FAILED', { cause: broken });
        }
        destroyQuietly(body);
        body = undefined;
        // A reconnection the store refuses or drops (a store restarting) is one more break
        // without progress: the next waits twice as long, the last fails as unreachable.
        while (body === undefined) {
          try {
            await delay(resumeDelay * 2 ** (breaksWithoutProgress - 1), undefined, { signal });
          } catch {
            throw abortedError(signal);
          }
          try {
            body = await this.openRange(sdk, offset, etag, first.VersionId, context, signal);
          } catch (error) {
            if (!isConnectionLost(error) || ++breaksWithoutProgress > maxResumes) throw error;
          }
        }
      }
    } finally {
      clearTimeout(watchdog);
      destroyQuietly(body);
    }
  }

  private async openRange(
    sdk: S3Sdk,
    offset: number,
    etag: string,
    /** The version the first GET read, in a versioned bucket: the key may hold a newer object by now. */
    versionId: string | undefined,
    context: S3ErrorContext,
    signal: AbortSignal | undefined,
  ): Promise<Readable> {
    let answer: GetObjectCommandOutput;
    try {
      answer = await this.answered(context, signal, (abortSignal) =>
        this.client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.key, Range: `bytes=${offset}-`, IfMatch: etag, ...(versionId !== undefined && { VersionId: versionId }) }), { abortSignal }),
      );
    } catch (error) {
      // A resume starts inside the object the first GET sized: a store that ignores If-Match
      // answers 416 when the key holds a shorter object now (a `backup --overwrite` finished
      // meanwhile: s3rver, which also cuts the first body short as it replaces the file). It
      // read "S3 InvalidRange (HTTP 416) … The requested range is not satisfiable".
      if (s3ErrorName(error) === 'InvalidRange' || s3StatusCode(error) === 416) {
        throw new StorageError(`${this.display} changed while it was being read`, 'CHANGED', { cause: error });
      }
      throw translateS3Error(error, context);
    }
    const body = answer.Body as Readable | undefined;
    // Stores that ignore If-Match or Range must not get a chance to splice two objects.
    if (answer.ETag !== undefined && answer.ETag !== etag) {
      destroyQuietly(body);
      throw new StorageError(`${this.display} changed while it was being read`, 'CHANGED');
    }
    if (!answer.ContentRange?.startsWith(`bytes ${offset}-`)) {
      destroyQuietly(body);
      throw new StorageError(`cannot resume the download of ${this.display}: the store ignored the byte range`, 'READ_FAILED');
    }
    if (body === undefined) throw new StorageError(`S3 returned no body for ${this.display}`, 'S3');
    return body;
  }

  private failureError(failure: UploadFailure, context: S3ErrorContext, signal: AbortSignal | undefined): unknown {
    const note = failure.abortNote;
    if (failure.source === 'abort' || (signal?.aborted && isAbortError(failure.error))) {
      const error = abortedError(signal);
      return note === undefined ? error : new AbortedError(`${error.message}; ${note}`, { cause: error });
    }
    // The body's errors belong to the caller: passed on untouched.
    if (failure.source === 'body' || failure.source === 'committing') return failure.error;
    // Before "aborted by something else": a completed upload is no longer there to abort either.
    if (failure.error instanceof CommitUnconfirmed) {
      const said = translateS3Error(failure.error.failure, context);
      const mayBeOurs = `found so by a retry of this backup's own write whose first answer was lost: it may be this backup's archive, stored whole, and these credentials may not look (HEAD denied) to tell: list it with tenants backups (or verify it) with credentials that may read it`;
      if (said instanceof DestinationExistsError) return new DestinationExistsError(`${context.display} already exists, ${mayBeOurs}, or pass --overwrite to write it again`, {}, { cause: failure.error.failure });
      if (failure.uploadGone) return new StorageError(`the multipart upload of ${context.display} was gone, ${mayBeOurs}; else it was aborted by something else, and the backup is to run again`, 'S3', { cause: failure.error.failure });
      return said;
    }
    // Whatever the store said to the part or the completion that failed (AWS: NoSuchUpload; an
    // emulator: HTTP 500), an upload it no longer knows was aborted by someone else.
    if (failure.uploadGone && !(failure.error instanceof PartStalled)) {
      return new StorageError(
        `the multipart upload of ${context.display} was aborted while it was written, by something else (a prune, a lifecycle rule AbortIncompleteMultipartUpload, an abort-multipart-upload): nothing was stored; run the backup again`,
        'S3',
        { cause: failure.error },
      );
    }
    const error = failure.error instanceof PartStalled ? stalledError(failure.error, context) : translateS3Error(failure.error, context);
    if (note === undefined) return error;
    if (error instanceof StorageError) return new StorageError(`${error.message}; ${note}`, error.code, { cause: failure.error });
    return error;
  }

  private existsError(existing: { readonly storedByRun?: string }): DestinationExistsError {
    return new DestinationExistsError(`${this.display} already exists: pass --overwrite to replace it`, existing);
  }

  private async context(operation: S3ErrorContext['operation']): Promise<S3ErrorContext> {
    this.region ??= Promise.resolve()
      .then(() => this.client.config.region())
      .catch(() => undefined);
    const region = await this.region;
    return {
      display: this.display,
      bucket: this.bucket,
      operation,
      ...(region !== undefined && { region }),
      ...(this.options.endpoint !== undefined && { endpoint: this.options.endpoint }),
      ...(this.options.secrets !== undefined && { secrets: this.options.secrets }),
    };
  }
}

/** x-amz-meta-openclaw-* headers: printable ASCII only, as HTTP headers require. */
export function userMetadata(metadata: ArchiveMetadata): Record<string, string> {
  const entries: Record<string, string> = {
    [`${METADATA_PREFIX}tenant`]: metadata.tenant,
    [`${METADATA_PREFIX}format-version`]: String(metadata.formatVersion),
    [`${METADATA_PREFIX}tool-version`]: metadata.toolVersion,
    [`${METADATA_PREFIX}created-at`]: metadata.createdAt,
    ...(metadata.runId !== undefined && { [`${METADATA_PREFIX}run-id`]: metadata.runId }),
    ...(metadata.operationId !== undefined && { [`${METADATA_PREFIX}operation-id`]: metadata.operationId }),
  };
  for (const [key, value] of Object.entries(entries)) {
    if (!/^[\x20-\x7e]*$/.test(value)) {
      throw new StorageError(`metadata ${key} must be printable ASCII for S3: ${JSON.stringify(value)}`, 'INVALID_METADATA');
    }
  }
  return entries;
}

const TAG_TEXT = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;
const MAX_TAGS = 10;

/** Object tags for the final metadata, within S3's limits (10 tags, 128/256 characters). */
export function tagsFor(finalMetadata: Readonly<Record<string, string>>): Tag[] {
  const entries = Object.entries(finalMetadata);
  if (entries.length > MAX_TAGS) throw new StorageError(`at most ${MAX_TAGS} final metadata entries fit in S3 object tags`, 'INVALID_METADATA');
  return entries.map(([name, value]) => {
    const key = `${METADATA_PREFIX}${name}`;
    if (key.length > 128 || value.length > 256 || !TAG_TEXT.test(key) || !TAG_TEXT.test(value)) {
      throw new StorageError(`final metadata ${JSON.stringify(name)} cannot be an S3 object tag`, 'INVALID_METADATA');
    }
    return { Key: key, Value: value };
  });
}

/** A part (or the single PutObject) whose every attempt stalled: said so, not 'no answer' (the store took no bytes, part-progress.ts). */
function stalledError(stalled: PartStalled, context: S3ErrorContext): StorageError {
  const attempts = (stalled as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1;
  return new StorageError(`upload to ${context.display} stalled: ${stalled.message}${attempts > 1 ? `, after ${attempts} attempts` : ''}`, 'UNREACHABLE', { cause: stalled });
}

/** Connections the store refused or dropped before answering: worth another ranged GET (an answer that never came is not: its deadline was a minute). */
const CONNECTION_LOST = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ECONNABORTED']);

function isConnectionLost(error: unknown): boolean {
  if (!(error instanceof StorageError) || error.code !== 'UNREACHABLE') return false;
  return CONNECTION_LOST.has((error.cause as NodeJS.ErrnoException | undefined)?.code ?? '');
}

/** Breaks worth a ranged retry: anything but an abort or a checksum mismatch. */
function isResumable(error: unknown): boolean {
  if (error instanceof OpenClawError || isAbortError(error)) return false;
  return !/checksum/i.test(error instanceof Error ? error.message : String(error));
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    const message = error.message.split('\n', 1)[0] ?? '';
    return code !== undefined && !message.includes(code) ? `${code}: ${message}` : message;
  }
  return String(error);
}

/** A header's value as a message may show it: printable, and short. */
/** A Content-Encoding naming a compression: what a proxy on the way may apply unasked. */
const COMPRESSING_CODING = /gzip|\bbr\b|deflate|compress/i;
const ARCHIVE_START_BYTES = 4;
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
/** zstd's frame magic, and the starts of an age file and of its ASCII armor. */
const ARCHIVE_STARTS = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.from('age-'), Buffer.from('----')];

function startsLikeGzip(start: Buffer): boolean {
  return start.length >= 2 && start.subarray(0, 2).equals(GZIP_MAGIC);
}

/** Whether `start` begins as an archive restore reads: a zstd frame, a skippable frame (our marker), an age file. */
function startsLikeArchive(start: Buffer): boolean {
  if (start.length < ARCHIVE_START_BYTES) return false;
  const magic = start.readUInt32LE(0);
  return (magic & 0xfffffff0) === SKIPPABLE_MAGIC_BASE || ARCHIVE_STARTS.some((known) => start.subarray(0, ARCHIVE_START_BYTES).equals(known));
}

function shownEncoding(value: string): string {
  const printable = value.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > 40 ? `${printable.slice(0, 40)}…` : printable;
}

/** An object's identity as ReadOptions.onIdentity tells it: its ETag, and its VersionId in a versioned bucket. */
function objectIdentity(etag: string, versionId: string | undefined): string {
  return `s3:${JSON.stringify(versionId === undefined ? { etag } : { etag, versionId })}`;
}

function parseObjectIdentity(identity: string): { readonly etag: string; readonly versionId?: string } | undefined {
  if (!identity.startsWith('s3:')) return undefined;
  try {
    const parsed = JSON.parse(identity.slice(3)) as { etag?: unknown; versionId?: unknown };
    if (typeof parsed.etag !== 'string' || (parsed.versionId !== undefined && typeof parsed.versionId !== 'string')) return undefined;
    return { etag: parsed.etag, ...(typeof parsed.versionId === 'string' && { versionId: parsed.versionId }) };
  } catch {
    return undefined;
  }
}
