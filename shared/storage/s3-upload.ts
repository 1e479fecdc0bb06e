// A stream of unknown length uploaded as one S3 object: a single PutObject when it fits in
// one part, else a multipart upload with at most `queueSize` parts in flight. Parts are of
// the planned size up to part 9,000 (a tenth of S3's 10,000 kept as headroom); an archive
// larger than its plan (a tenant that grew while it was read, a `--pipe` that expands, a
// size that could not be measured) goes on with parts that double every 100 parts, up to
// S3's largest part (partSizeAt): 10,000 parts of an 8 MiB plan hold 1.3 TiB, not 78 GiB.
// They grow no larger than a quarter of the memory (largestGrownPart), so that the two of
// them held at once (one in flight, one filling) never take the process past its memory:
// a Lambda of 2 GiB keeps to 512 MiB parts (369 GiB in all on an 8 MiB plan) and fails at
// the parts limit in one line, rather than being killed for its memory at 1 GiB parts (and
// Node 20, whose buffers end at 4 GiB, keeps to 4 GiB parts).
//
// Parts are filled by copying the stream's chunks into `queueSize + 1` part buffers that
// are reused for the whole upload, so memory is fixed at (queueSize + 1) × partSize (past
// the plan: two parts of the size of the moment, one in flight and one filling) and an
// upload leaves no garbage behind: a fresh buffer per part (what @aws-sdk/lib-storage
// allocates) waits for V8's next full collection, which came to 15-25 MiB of peak RSS on
// a 600 MiB backup. A buffer is reused only once the request that sent it has settled,
// retries included.
//
// An upload can span processes (a backup that continues in another invocation): asked to
// suspend once the body has ended (`suspendWhen`), it sends what it holds as a part if that
// is at least S3's minimum part size, and answers with its checkpoint (the upload id, the
// parts sent, the bytes that are not a part yet) instead of completing; an upload given that
// checkpoint (`resume`) goes on with the next part number. S3 keeps the parts until the
// upload is completed or aborted.
//
// The first failure wins: an S3 error, the body's error or the abort signal stops reading
// the body, cancels every request in flight and aborts the multipart upload (twice if the
// first abort fails, each attempt bounded by ABORT_UPLOAD_TIMEOUT_MS). One cancelled while S3
// was creating it has no id to abort: it holds no part, and a lifecycle rule removes it. The
// error tells where it came from so the caller can word it.
//
// An abort that comes while CompleteMultipartUpload is in flight does not cancel it: S3 may
// carry out a request the client gave up on, and the archive would then be stored, whole,
// under its name while the backup reported a failure. The commit's own answer decides.
//
// A commit whose answer is lost: the PutObject or CompleteMultipartUpload reached the store
// and was carried out, then the connection dropped, and the SDK's retry fails on the object
// its own first attempt made (412 under If-None-Match, NoSuchUpload for a completed upload).
// So when the committing request fails, a HEAD looks at the key: if it holds an object of
// the upload's size with exactly the upload's user metadata (a backup's tenant and creation
// time, to the millisecond), that object is this upload and the write succeeded. An upload
// without metadata cannot be recognised and keeps the error.

import { constants as bufferConstants } from 'node:buffer';
import { totalmem } from 'node:os';
import type { Readable } from 'node:stream';
import type { CompletedPart, S3Client, UploadPartCommandOutput } from '@aws-sdk/client-s3';
import { StorageError } from '../errors.js';
import { formatBytes } from '../format.js';
import type { AppliedEncryption, S3ObjectSettings } from './s3-object-settings.js';
import type { S3Sdk } from './s3-client.js';
import { NotS3Answer, s3ErrorName, s3StatusCode } from './s3-errors.js';
import { release } from '../released-buffers.js';
import { abortedError, destroyQuietly, onAbort } from './streams.js';
import { PART_STALL_MS, WATCH_PROGRESS_OPTIONS, watchProgress } from './part-progress.js';

/**
 * The committing request failed on a retry of the SDK's, and nothing could look at the key
 * (HEAD denied to write-only credentials, or no answer): its first attempt may have stored this
 * very upload, its answer lost, and the retry then failed on it (412 under If-None-Match,
 * NoSuchUpload for a completed multipart upload). Told apart from an object that was there
 * before (a first attempt's 412) and from an upload aborted by something else.
 */
export class CommitUnconfirmed extends Error {
  constructor(
    readonly target: Pick<UploadTarget, 'Bucket' | 'Key'>,
    readonly failure: unknown,
  ) {
    super(`the commit of s3://${target.Bucket}/${target.Key} failed on a retry, unseen`, { cause: failure });
  }
}

/** Whether the SDK sent the request more than once: an earlier attempt may have been carried out. */
function retried(error: unknown): boolean {
  const attempts = typeof error === 'object' && error !== null ? (error as { $metadata?: { attempts?: number } }).$metadata?.attempts : undefined;
  return attempts !== undefined && attempts > 1;
}

/** What every request of the upload names: the object and the headers it is created with. */
export interface UploadTarget {
  readonly Bucket: string;
  readonly Key: string;
  readonly ContentType?: string;
  readonly Metadata?: Record<string, string>;
  readonly ChecksumAlgorithm?: 'CRC32' | 'CRC32C' | 'SHA1' | 'SHA256';
  /** Server-side encryption and storage class (s3-object-settings.ts): set where the object is created, PutObject or CreateMultipartUpload. */
  readonly ServerSideEncryption?: S3ObjectSettings['ServerSideEncryption'];
  readonly SSEKMSKeyId?: string;
  readonly StorageClass?: S3ObjectSettings['StorageClass'];
  /** '*' makes the object's creation conditional (PutObject and CompleteMultipartUpload). */
  readonly IfNoneMatch?: string;
}

/**
 * How long each attempt to abort a failed multipart upload may take: a store that stopped
 * answering must not hold up a failed or interrupted backup for the SDK's whole timeouts
 * (two minutes of silence, five times over); a lifecycle rule removes what is left.
 */
export const ABORT_UPLOAD_TIMEOUT_MS = 15_000;

/** S3's limit on the parts of one multipart upload. */
export const MAX_PARTS = 10_000;
/** S3's smallest part, but for the last. */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
/** S3's largest part. */
export const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;

/**
 * The largest a part grown past the plan may be (partSizeAt) in a process of `memory` bytes: a
 * quarter of it (two parts are held at once), in whole MiB, at most S3's largest part and
 * Node's largest buffer (4 GiB on Node 20).
 */
export function largestGrownPart(memory = memoryBytes()): number {
  const MiB = 1024 * 1024;
  return Math.max(MIN_PART_SIZE, Math.min(Math.floor(memory / 4 / MiB) * MiB, MAX_PART_SIZE, bufferConstants.MAX_LENGTH));
}

/** The machine's memory, or less: its cgroup's limit, a Lambda's memory size (which its runtime sets in the environment). */
function memoryBytes(): number {
  const lambdaMiB = Number(process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE);
  const limits = [totalmem(), process.constrainedMemory?.() ?? 0, Number.isSafeInteger(lambdaMiB) ? lambdaMiB * 1024 * 1024 : 0];
  return Math.min(...limits.filter((bytes) => bytes > 0));
}

/**
 * The size of part `partNumber` (from 1) of an upload planned at `partSize`: `partSize` up to
 * nine tenths of `maxParts`, then doubled every hundredth of `maxParts`, at most `largest`
 * (never less than the plan). Only an archive larger than its plan gets there; a resumed
 * upload computes the same sizes (given the same memory: S3 takes parts of any size).
 */
export function partSizeAt(partNumber: number, partSize: number, maxParts = MAX_PARTS, largest = MAX_PART_SIZE): number {
  const planned = Math.floor(maxParts * 0.9);
  if (partNumber <= planned) return partSize;
  const doublings = Math.ceil((partNumber - planned) / Math.max(1, Math.floor(maxParts / 100)));
  return Math.max(partSize, Math.min(partSize * 2 ** Math.min(doublings, 30), largest));
}

/** The bytes `maxParts` parts of an upload planned at `partSize` hold (partSizeAt). */
export function uploadCapacity(partSize: number, maxParts = MAX_PARTS, largest = MAX_PART_SIZE): number {
  let bytes = 0;
  for (let part = 1; part <= maxParts; part++) bytes += partSizeAt(part, partSize, maxParts, largest);
  return bytes;
}

/** Where a suspended upload stands (JSON-safe, but for `tail`). */
export interface UploadCheckpoint {
  /** Absent while everything fits in `tail` (no part sent yet). */
  readonly uploadId?: string;
  readonly parts: readonly CompletedPart[];
  /** Bytes of the body so far, `tail` included. */
  readonly bytes: number;
  readonly partSize: number;
  /** The bytes not sent as a part yet (fewer than MIN_PART_SIZE). */
  readonly tail: Buffer;
  /** The upload completes only where no object is (If-None-Match): a later piece keeps that, whatever it could look at. */
  readonly conditional?: true;
}

export interface StreamUpload {
  readonly sdk: S3Sdk;
  readonly client: S3Client;
  readonly target: UploadTarget;
  /** The planned part size: that of the first 9,000 parts (partSizeAt). */
  readonly partSize: number;
  readonly queueSize: number;
  /** @default MAX_PARTS */
  readonly maxParts?: number;
  /** The largest a part grown past the plan may be (partSizeAt). @default largestGrownPart() */
  readonly largestPart?: number;
  /** Called once the body has ended, before the object is committed, with the object's size (every piece's bytes); throwing cancels the upload. */
  readonly beforeCommit?: (bytes: number) => void;
  readonly signal?: AbortSignal;
  /** Called once the body has ended, before `beforeCommit`: true suspends the upload instead of completing it. */
  readonly suspendWhen?: () => boolean;
  /** A suspended upload to go on with. */
  readonly resume?: UploadCheckpoint;
  /**
   * Awaited once every part is sent, right before the request that commits the object
   * (PutObject or CompleteMultipartUpload), with the object's size; throwing fails the upload
   * and leaves it as it is, not aborted: a write in pieces records there that it is committing
   * (backup.ts), and its upload stays its chain's, to go on with or abandon.
   */
  readonly committing?: (bytes: number) => Promise<void>;
  /** Asked when the body fails: true leaves the upload as it is, not aborted (as a `committing` that threw does). */
  readonly keepUploadOnBodyFailure?: (error: unknown) => boolean;
  /** @default ABORT_UPLOAD_TIMEOUT_MS */
  readonly abortTimeoutMs?: number;
  /** How long an attempt to send a part (or the single PutObject) may go without the socket taking a byte (part-progress.ts). @default PART_STALL_MS */
  readonly stallMs?: number;
}

export interface StreamUploadResult {
  readonly bytes: number;
  readonly versionId?: string;
  /** Set when the upload was suspended rather than completed. */
  readonly suspended?: UploadCheckpoint;
  /** The encryption the store's answer to the committing request (or the HEAD that found the object) names. */
  readonly applied?: AppliedEncryption;
}

/** `applied` from an S3 answer's encryption fields; nothing when it names none. */
function appliedOf(answer: AppliedEncryption): { readonly applied?: AppliedEncryption } {
  if (answer.ServerSideEncryption === undefined && answer.SSEKMSKeyId === undefined) return {};
  return {
    applied: {
      ...(answer.ServerSideEncryption !== undefined && { ServerSideEncryption: answer.ServerSideEncryption }),
      ...(answer.SSEKMSKeyId !== undefined && { SSEKMSKeyId: answer.SSEKMSKeyId }),
    },
  };
}

/** `committing`: the `committing` callback threw; the upload is left as it is, to its owner. */
export type UploadFailureSource = 'body' | 's3' | 'abort' | 'committing';

/** Why an upload failed: the first error, where it came from, and a note if cleanup failed. */
export class UploadFailure extends Error {
  constructor(
    readonly error: unknown,
    readonly source: UploadFailureSource,
    readonly abortNote: string | undefined,
    /** The store knew the upload no more (NoSuchUpload, to a request or to aborting it): someone else aborted it. */
    readonly uploadGone = false,
  ) {
    super('upload failed', { cause: error });
  }
}

/** Uploads every byte of `body`; on failure `body` is destroyed and rejects with UploadFailure. */
export async function uploadStream(body: Readable, upload: StreamUpload): Promise<StreamUploadResult> {
  return new Uploader(body, upload).run();
}

class Uploader {
  /** Aborted at the first failure: every request of the upload stops then, but for the AbortMultipartUpload that cleans up. */
  private readonly cancelRequests = new AbortController();
  private readonly freeBuffers: Buffer[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly completed: CompletedPart[] = [];
  private failure: { readonly error: unknown; readonly source: UploadFailureSource } | undefined;
  private uploadId: string | undefined;
  private partsStarted = 0;
  private bytes = 0;
  private readonly largestPart: number;
  /** The object is stored: whatever failed or aborted meanwhile, the upload succeeded. */
  private committed = false;

  constructor(
    private readonly body: Readable,
    private readonly upload: StreamUpload,
  ) {
    const { resume } = upload;
    this.largestPart = Math.min(upload.largestPart ?? largestGrownPart(), MAX_PART_SIZE);
    if (resume !== undefined) {
      if (resume.partSize !== upload.partSize || resume.tail.length >= upload.partSize) throw new RangeError('a resumed upload keeps its part size');
      this.uploadId = resume.uploadId;
      this.completed.push(...resume.parts);
      this.partsStarted = resume.parts.length;
      this.bytes = resume.bytes;
    }
  }

  async run(): Promise<StreamUploadResult> {
    const stopListening = onAbort(this.upload.signal, () => this.fail(abortedError(this.upload.signal), 'abort'));
    try {
      const result = await this.transfer();
      if (this.failure === undefined || this.committed) return result;
    } catch (error) {
      this.fail(error, 's3');
    } finally {
      stopListening();
    }
    destroyQuietly(this.body);
    await Promise.allSettled(this.inFlight);
    const failure = this.failure as NonNullable<Uploader['failure']>;
    const kept = failure.source === 'committing' || (failure.source === 'body' && this.upload.keepUploadOnBodyFailure?.(failure.error) === true);
    const abortNote = kept ? undefined : await this.abortMultipartUpload();
    throw new UploadFailure(failure.error, failure.source, abortNote, this.uploadGone || s3ErrorName(failure.error) === 'NoSuchUpload');
  }

  private async transfer(): Promise<StreamUploadResult> {
    const { resume } = this.upload;
    let part: Buffer | undefined;
    let filled = 0;
    if (resume !== undefined && resume.tail.length > 0) {
      part = Buffer.allocUnsafeSlow(this.nextPartSize());
      filled = resume.tail.copy(part);
    }
    try {
      for await (const chunk of this.body as AsyncIterable<Uint8Array>) {
        for (let offset = 0; offset < chunk.length; ) {
          // A full part is sent only when more bytes follow: a body of one part is a PutObject.
          if (part !== undefined && filled === part.length) {
            await this.sendPart(part, filled);
            part = undefined;
            filled = 0;
            if (this.failure !== undefined) return { bytes: this.bytes };
          }
          part ??= this.partBuffer();
          const length = Math.min(chunk.length - offset, part.length - filled);
          part.set(chunk.subarray(offset, offset + length), filled);
          filled += length;
          offset += length;
          this.bytes += length;
        }
        release(chunk); // copied into the parts (released-buffers.ts)
        if (this.failure !== undefined) return { bytes: this.bytes };
      }
    } catch (error) {
      this.fail(error, 'body');
      return { bytes: this.bytes };
    }
    if (this.failure !== undefined) return { bytes: this.bytes };
    try {
      if (this.upload.suspendWhen?.() === true) return await this.suspend(part, filled);
      this.upload.beforeCommit?.(this.bytes);
    } catch (error) {
      this.fail(error, 'body');
      return { bytes: this.bytes };
    }
    if (this.partsStarted === 0) {
      if (!(await this.aboutToCommit())) return { bytes: this.bytes };
      return this.commit(() => this.putObject(part?.subarray(0, filled) ?? Buffer.alloc(0)));
    }
    if (part !== undefined && filled > 0) await this.sendPart(part, filled);
    await Promise.all(this.inFlight);
    if (this.failure !== undefined || !(await this.aboutToCommit())) return { bytes: this.bytes };
    return this.commit(() => this.completeMultipartUpload());
  }

  /** The size of the part filled next: parts are sent in order, one filled at a time. */
  private nextPartSize(): number {
    return partSizeAt(this.partsStarted + 1, this.upload.partSize, this.upload.maxParts, this.largestPart);
  }

  /** A buffer for the next part: a free one of its size, or a new one (the smaller free ones are let go once parts grow). */
  private partBuffer(): Buffer {
    const size = this.nextPartSize();
    let buffer = this.freeBuffers.pop();
    while (buffer !== undefined && buffer.length !== size) buffer = this.freeBuffers.pop();
    return buffer ?? Buffer.allocUnsafeSlow(size);
  }

  /** Runs `committing`; false (the upload failed, not aborted) if it threw. */
  private async aboutToCommit(): Promise<boolean> {
    try {
      await this.upload.committing?.(this.bytes);
    } catch (error) {
      this.fail(error, 'committing');
    }
    return this.failure === undefined;
  }

  /** Runs the request that commits the object; if it fails, the key may hold this upload all the same (module comment). */
  private async commit(request: () => Promise<StreamUploadResult>): Promise<StreamUploadResult> {
    let result: StreamUploadResult | undefined;
    try {
      result = await request();
    } catch (error) {
      const landed = await this.landedDespiteFailure();
      if (landed === 'unseen' && retried(error)) throw new CommitUnconfirmed(this.upload.target, error);
      if (typeof landed !== 'object') throw error;
      result = landed;
    }
    this.committed = true;
    return result;
  }

  /** This upload's object at the key (its size and all its user metadata); 'another': not there, or another object; 'unseen': no look (denied, no answer, nothing to tell it by). */
  private async landedDespiteFailure(): Promise<StreamUploadResult | 'another' | 'unseen'> {
    const { sdk, client, target, signal } = this.upload;
    const expected = Object.entries(target.Metadata ?? {});
    if (expected.length === 0 || signal?.aborted) return 'unseen';
    const deadline = AbortSignal.timeout(this.upload.abortTimeoutMs ?? ABORT_UPLOAD_TIMEOUT_MS);
    try {
      const head = await client.send(new sdk.HeadObjectCommand({ Bucket: target.Bucket, Key: target.Key }), {
        abortSignal: signal === undefined ? deadline : AbortSignal.any([signal, deadline]),
      });
      const ours = head.ETag !== undefined && head.ContentLength === this.bytes && expected.every(([name, value]) => head.Metadata?.[name] === value);
      return ours ? { bytes: this.bytes, ...(head.VersionId !== undefined && { versionId: head.VersionId }), ...appliedOf(head) } : 'another';
    } catch (error) {
      return s3StatusCode(error) === 404 || s3ErrorName(error) === 'NotFound' ? 'another' : 'unseen';
    }
  }

  /** Sends what is held if it may be a part, waits for the parts in flight, and answers with the checkpoint. */
  private async suspend(part: Buffer | undefined, filled: number): Promise<StreamUploadResult> {
    let tail = part?.subarray(0, filled) ?? Buffer.alloc(0);
    if (part !== undefined && filled >= MIN_PART_SIZE) {
      await this.sendPart(part, filled);
      tail = Buffer.alloc(0);
    }
    await Promise.all(this.inFlight);
    if (this.failure !== undefined) return { bytes: this.bytes };
    const parts = [...this.completed].sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    const checkpoint: UploadCheckpoint = {
      ...(this.uploadId !== undefined && { uploadId: this.uploadId }),
      parts,
      bytes: this.bytes,
      partSize: this.upload.partSize,
      tail: Buffer.from(tail),
      ...(this.upload.target.IfNoneMatch !== undefined && { conditional: true }),
    };
    return { bytes: this.bytes, suspended: checkpoint };
  }

  /** Starts uploading `part` once a slot is free (never throws: failures go to `fail`); the buffer returns to the pool when done. */
  private async sendPart(part: Buffer, length: number): Promise<void> {
    // Parts grown past the plan go fewer at a time: the bytes in flight stay those of the plan.
    const { queueSize, partSize } = this.upload;
    const slots = Math.min(queueSize, Math.max(1, Math.floor((queueSize * partSize) / part.length)));
    while (this.inFlight.size >= slots) await Promise.race(this.inFlight);
    if (this.failure !== undefined) return;
    try {
      this.uploadId ??= await this.createMultipartUpload();
    } catch (error) {
      this.fail(error, 's3');
      return;
    }
    if (this.failure !== undefined) return;
    const maxParts = this.upload.maxParts ?? MAX_PARTS;
    if (this.partsStarted >= maxParts) {
      const { partSize } = this.upload;
      const held = formatBytes(uploadCapacity(partSize, maxParts, this.largestPart));
      // Held back by memory: say so, and what lets the parts grow further.
      const memory =
        this.largestPart < MAX_PART_SIZE && partSizeAt(maxParts, partSize, maxParts) > this.largestPart
          ? `, grown to no more than ${formatBytes(this.largestPart)}, a quarter of the memory: more memory (the functions' memorySizeMiB) lets them grow further`
          : '';
      this.fail(
        new StorageError(
          `the archive outgrew S3's limit of ${maxParts.toLocaleString('en-US')} parts (${held} from parts of ${formatBytes(partSize)}${memory}); it was larger than the tenant's size suggested`,
          'TOO_LARGE',
        ),
        's3',
      );
      return;
    }
    const partNumber = ++this.partsStarted;
    const sending = this.uploadPart(part.subarray(0, length), partNumber)
      .catch((error: unknown) => this.fail(error, 's3'))
      .finally(() => {
        this.inFlight.delete(sending);
        if (part.length === this.nextPartSize()) this.freeBuffers.push(part);
      });
    this.inFlight.add(sending);
  }

  private async createMultipartUpload(): Promise<string> {
    const { sdk, client, target } = this.upload;
    const { IfNoneMatch: _conditionalAtCompletion, ...create } = target;
    const answer = await client.send(new sdk.CreateMultipartUploadCommand(create), { abortSignal: this.cancelRequests.signal });
    if (answer.UploadId === undefined) throw new StorageError('S3 started a multipart upload without an upload id', 'S3');
    return answer.UploadId;
  }

  private async uploadPart(data: Buffer, partNumber: number): Promise<void> {
    const { sdk, client, target } = this.upload;
    const command = new sdk.UploadPartCommand({
      Bucket: target.Bucket,
      Key: target.Key,
      UploadId: this.uploadId,
      PartNumber: partNumber,
      Body: data,
      ContentLength: data.length,
      ...(target.ChecksumAlgorithm !== undefined && { ChecksumAlgorithm: target.ChecksumAlgorithm }),
    });
    command.middlewareStack.add(watchProgress(partNumber, this.upload.stallMs ?? PART_STALL_MS), WATCH_PROGRESS_OPTIONS);
    const answer: UploadPartCommandOutput = await client.send(command, { abortSignal: this.cancelRequests.signal });
    if (answer.ETag === undefined) throw new StorageError(`S3 answered part ${partNumber} without an ETag`, 'S3');
    this.completed.push({
      PartNumber: partNumber,
      ETag: answer.ETag,
      ...(answer.ChecksumCRC32 !== undefined && { ChecksumCRC32: answer.ChecksumCRC32 }),
      ...(answer.ChecksumCRC32C !== undefined && { ChecksumCRC32C: answer.ChecksumCRC32C }),
      ...(answer.ChecksumSHA1 !== undefined && { ChecksumSHA1: answer.ChecksumSHA1 }),
      ...(answer.ChecksumSHA256 !== undefined && { ChecksumSHA256: answer.ChecksumSHA256 }),
    });
  }

  private async completeMultipartUpload(): Promise<StreamUploadResult> {
    const { sdk, client, target } = this.upload;
    const parts = [...this.completed].sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    const answer = await client.send(
      new sdk.CompleteMultipartUploadCommand({
        Bucket: target.Bucket,
        Key: target.Key,
        UploadId: this.uploadId,
        MultipartUpload: { Parts: parts },
        ...(target.IfNoneMatch !== undefined && { IfNoneMatch: target.IfNoneMatch }),
      }),
      // Not cancelled by a failure or an abort from now on (module comment).
    );
    return { bytes: this.bytes, ...(answer.VersionId !== undefined && { versionId: answer.VersionId }), ...appliedOf(answer) };
  }

  private async putObject(data: Buffer): Promise<StreamUploadResult> {
    const { sdk, client, target } = this.upload;
    const command = new sdk.PutObjectCommand({ ...target, Body: data, ContentLength: data.length });
    command.middlewareStack.add(watchProgress(undefined, this.upload.stallMs ?? PART_STALL_MS), WATCH_PROGRESS_OPTIONS);
    const answer = await client.send(command, { abortSignal: this.cancelRequests.signal });
    // Every S3 store answers a stored object with its ETag; a web server answers anything with 200.
    if (answer.ETag === undefined) throw new NotS3Answer('PutObject');
    return { bytes: this.bytes, ...(answer.VersionId !== undefined && { versionId: answer.VersionId }), ...appliedOf(answer) };
  }

  private fail(error: unknown, source: UploadFailureSource): void {
    if (this.failure !== undefined) return;
    this.failure = { error, source };
    this.cancelRequests.abort();
    destroyQuietly(this.body);
  }

  private uploadGone = false;

  /** Aborts the multipart upload, if one was started; a note for the message if that fails twice. */
  private async abortMultipartUpload(): Promise<string | undefined> {
    if (this.uploadId === undefined) return undefined;
    const { sdk, client, target } = this.upload;
    const timeoutMs = this.upload.abortTimeoutMs ?? ABORT_UPLOAD_TIMEOUT_MS;
    let why = 'error';
    for (let attempt = 0; attempt < 2; attempt++) {
      const deadline = AbortSignal.timeout(timeoutMs);
      try {
        await client.send(new sdk.AbortMultipartUploadCommand({ Bucket: target.Bucket, Key: target.Key, UploadId: this.uploadId }), { abortSignal: deadline });
        return undefined;
      } catch (error) {
        if (s3ErrorName(error) === 'NoSuchUpload' || s3StatusCode(error) === 404) {
          this.uploadGone = s3ErrorName(error) === 'NoSuchUpload';
          return undefined;
        }
        // The SDK names a dropped connection TimeoutError too: its errno code says what happened.
        why = deadline.aborted ? `no answer in ${timeoutMs / 1000} s` : (errnoOf(error) ?? s3ErrorName(error) ?? 'error');
      }
    }
    return `the incomplete multipart upload could not be aborted (${why}); a bucket lifecycle rule AbortIncompleteMultipartUpload cleans it up`;
  }
}

/** A network failure's errno code (ECONNRESET, ECONNREFUSED…), whatever name the SDK gave the error. */
function errnoOf(error: unknown): string | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) ? code : undefined;
}
