// The archives below an S3 prefix (archive-store.ts): ListObjectsV2 (paged; a store that says
// a page is truncated without a continuation token goes on after its last key, one that gives no
// way on, or goes round in a loop (a token again, pages of keys listed before, 1,000 pages of no key), fails rather
// than stop at that page or list for ever; a key sent twice is listed once; keys a store URL-encodes, answering
// EncodingType url, are decoded; one page of a listing, `listPage`, starts after the key the
// page before ended on, StartAfter, and asks for no more keys than it takes, so that the pages
// of the gateway's `tenants backups` cost the requests of one listing), then per object
// one ranged GET of its first HEAD_BYTES (which also returns its user metadata) and
// GetObjectTagging (the manifest digest, the size the backup stored, and the verification mark). Tags are optional: a store
// without tagging (R2), or credentials without s3:GetObjectTagging, list without them (the
// latter said: `tagsDenied`, since marks may be there unseen, and prune refuses then).
// The last TAIL_BYTES (our footer: whether the object is whole) cost one more ranged GET,
// pinned to the first GET's ETag, made only for the objects the caller wants the end of
// (the listing: the tenant's own archives whose marker promises a footer), and none for
// an object the first GET read whole.
//
// An object a lifecycle rule moved to an archive storage class (GLACIER, DEEP_ARCHIVE, an
// Intelligent-Tiering archive tier) refuses every GET until it is restored (403
// InvalidObjectState): its metadata comes from a HEAD instead, which archived objects answer,
// so it is still dated and attributed, and one such backup does not fail the whole listing.
//
// Removal is DeleteObject on the key, never on a version: in a versioned bucket that adds a
// delete marker and the data stays as a noncurrent version until the bucket's lifecycle
// expires it, which `deletionTerms` reads (versioning, lifecycle rules, Object Lock) so the
// caller can say so. `holdOf` reads an object's retention and legal hold when the bucket has
// Object Lock: its data cannot be deleted before then, whatever a delete marker hides.
//
// A removal is of the object as listed (a backup may have written the key again since, with
// `--overwrite`): on AWS the DeleteObject carries `If-Match: <listed ETag>` (S3 honours it on
// general purpose buckets since September 2025; it needs s3:GetObject beside s3:DeleteObject)
// and answers 412 for anything else, 404 for an object already gone. Custom endpoints may
// ignore that header (s3rver does, and deletes) or refuse it, so there, unless
// `conditionalWrites` is set (`tenants prune --delete-if-match`: the operator's word that the
// store honours it), and after a store refused the header, a HEAD right before the
// delete compares the ETag instead. That only narrows the window to the time between the
// HEAD and the DELETE: a write landing in it is still deleted. A changed object is refused
// with StorageError CHANGED.

import type { Readable } from 'node:stream';
import type { GetObjectCommandOutput, HeadObjectCommandOutput, LifecycleRule, S3Client } from '@aws-sdk/client-s3';

import { InvalidRequestError, OpenClawError, StorageError } from '../errors.js';
import {
  HEAD_BYTES,
  MAX_LISTED_OBJECTS,
  startsWithMarker,
  TAIL_BYTES,
  type ArchiveStore,
  type DeletionTerms,
  type InspectOptions,
  type ListedPage,
  type ListPage,
  type ObjectFacts,
  type ObjectHold,
  type StoredObject,
  type UnfinishedUpload,
  type UploadsOptions,
} from './archive-store.js';
import { loadS3Sdk, type S3Sdk } from './s3-client.js';
import { NotS3Answer, notS3NotFound, s3ErrorName, s3StatusCode, translateS3Error, type S3ErrorContext } from './s3-errors.js';
import { ANSWER_DEADLINE_MS, METADATA_PREFIX, SEAL_METADATA_KEY, sealHolds, STORED_BYTES_METADATA_KEY } from './s3.js';
import { MAX_PARTS } from './s3-upload.js';
import { readableKeyProblemOf } from './s3-url.js';
import { abortedError, destroyQuietly, onAbort, readAtMost } from './streams.js';
import type { ArchiveMetadata, ReadOptions, StoreEndpoint } from './types.js';
import { parseMarkTag, VERIFIED_TAG } from './verified-mark.js';

/** The most keys a ListObjectsV2 answer holds (S3's MaxKeys default and maximum). */
const S3_MAX_KEYS = 1000;
/**
 * Truncated pages that hold keys, none not listed before, after which a listing is taken to go
 * round in a loop (a store that ignores the continuation token and sends page one again under
 * a new one).
 */
const MAX_PAGES_WITHOUT_NEW_KEYS = 20;
/**
 * Truncated pages that hold no key at all, each with a new continuation token, since the last
 * new key, after which a listing is taken to go on for ever. S3 may answer pages with no keys
 * (it skips delete markers, of which a versioned bucket may hold many): those are no loop, so
 * they count only toward this much larger bound (a request each: minutes, not for ever).
 */
const MAX_EMPTY_PAGES = 1000;
/** Pages of a ListMultipartUploads listing in a row without an upload, after which it is taken to go round. */
const MAX_PAGES_WITHOUT_UPLOADS = 100;
/** The longest key S3 stores, in bytes of UTF-8. */
const MAX_KEY_BYTES = 1024;

/** Answers meaning "this store or these credentials cannot tell": the listing goes on without it. */
const CANNOT_TELL = new Set(['AccessDenied', 'NotImplemented', 'MethodNotAllowed', 'NotSupported', 'XNotImplemented']);
/** Answers to a DeleteObject with If-Match from a store that does not take the header: the HEAD check stands in. */
const REFUSES_CONDITION = new Set(['NotImplemented', 'XNotImplemented', 'NotSupported', 'InvalidArgument', 'InvalidRequest']);

export interface S3StoreOptions {
  readonly client: S3Client;
  readonly bucket: string;
  /** The key prefix, empty or ending in "/". */
  readonly prefix: string;
  /** Origin of a custom endpoint, for messages. */
  readonly endpoint?: string;
  /** Where the custom endpoint came from (open-location.ts). @default '--endpoint' */
  readonly endpointSource?: string;
  readonly secrets?: readonly (string | undefined)[];
  /** Objects a ListObjectsV2 page holds (S3's maximum is 1,000). */
  readonly pageSize?: number;
  /**
   * How long each request may wait for its answer, retries included: a store that accepts
   * connections and never answers fails a listing or a prune in a minute, not after every
   * attempt has waited out the socket's idle timeout. @default ANSWER_DEADLINE_MS (s3.ts)
   */
  readonly answerDeadlineMs?: number;
  /**
   * Delete with `If-Match: <listed ETag>` and trust the store to refuse a changed object, as
   * S3LocationOptions' writes. @default true on AWS, false on custom endpoints (a HEAD compares the ETag instead)
   */
  readonly conditionalWrites?: boolean;
}

export class S3ArchiveStore implements ArchiveStore {
  readonly display: string;
  readonly baseName: string;
  readonly endpoint?: StoreEndpoint;
  private readonly client: S3Client;
  /** Cleared when the store refuses If-Match on a delete. */
  private conditionalDeletes: boolean;

  constructor(private readonly options: S3StoreOptions) {
    this.client = options.client;
    this.conditionalDeletes = options.conditionalWrites ?? options.endpoint === undefined;
    if (options.endpoint !== undefined) this.endpoint = { url: options.endpoint, source: options.endpointSource ?? '--endpoint' };
    this.display = `s3://${options.bucket}/${options.prefix}`;
    this.baseName = options.prefix.split('/').filter((part) => part !== '').pop() ?? '';
  }

  async list(options: ReadOptions = {}): Promise<StoredObject[]> {
    const found: StoredObject[] = [];
    for await (const objects of this.listInParts(options)) {
      if (found.length + objects.length > MAX_LISTED_OBJECTS) throw new StorageError(`${this.display} holds more than ${MAX_LISTED_OBJECTS} objects: give a narrower prefix`, 'TOO_LARGE');
      for (const object of objects) found.push(object);
    }
    return found;
  }

  async *listInParts(options: ReadOptions = {}): AsyncGenerator<StoredObject[]> {
    for await (const { objects } of this.listed({}, options.signal)) yield objects;
  }

  /**
   * One page: ListObjectsV2 from `StartAfter` the prefix and `after`, asking no more keys than
   * the page still needs, so that the pages of a listing together cost the requests of one
   * (a page no longer lists the prefix from its start to find its place: 20,000 objects in
   * pages of 2,000 were 200 requests, now 20). More follow when the last request said its
   * listing goes on, or held more objects than the page takes (a store that ignores MaxKeys).
   */
  async listPage(page: ListPage, options: ReadOptions = {}): Promise<ListedPage> {
    const startAfter = page.after === undefined ? undefined : this.startAfter(page.after);
    const objects: StoredObject[] = [];
    for await (const listed of this.listed({ ...(startAfter !== undefined && { startAfter }), maxKeys: () => page.limit - objects.length }, options.signal)) {
      const room = page.limit - objects.length;
      objects.push(...listed.objects.slice(0, room));
      if (listed.objects.length > room || (objects.length === page.limit && listed.truncated)) return { objects, next: objects.at(-1)!.name };
      if (objects.length === page.limit) break;
    }
    return { objects };
  }

  /**
   * The key a page starts after: the prefix and the name the page before ended on (a cursor
   * the caller sends back, so input): a string that is no key S3 could hold (not well-formed
   * UTF-16, over 1,024 bytes of UTF-8 with the prefix) is refused in one line.
   */
  private startAfter(after: string): string {
    const key = this.options.prefix + after;
    if (after === '' || !isWellFormedText(after) || Buffer.byteLength(key) > MAX_KEY_BYTES) {
      throw new InvalidRequestError(`${this.display}: the listing cannot go on after ${JSON.stringify(after.slice(0, 100))}: it is no name below the prefix that a listing gives`);
    }
    return key;
  }

  /**
   * The objects below the prefix, a ListObjectsV2 answer at a time, in the store's key order
   * (directory markers and empty objects left out), from after `startAfter`; `maxKeys` is
   * asked before each request for the keys still wanted.
   */
  private async *listed(
    from: { readonly startAfter?: string; readonly maxKeys?: () => number },
    signal: AbortSignal | undefined,
  ): AsyncGenerator<{ objects: StoredObject[]; truncated: boolean }> {
    const sdk = await loadS3Sdk();
    const startBytes = from.startAfter === undefined ? undefined : Buffer.from(from.startAfter);
    let token: string | undefined;
    let startAfter = from.startAfter;
    // A store that sends its listing round in a loop (tokens A, B, A…, or page one again under
    // a new token each time) must fail, not list for ever nor list a key twice. The first
    // MAX_LISTED_OBJECTS keys are remembered rather than compared in order: a store may sort
    // otherwise than by UTF-8 bytes. Past them the keys must come in S3's order (every store
    // we know lists so), each after the last, and the keys are no longer held (a million of
    // them were ~100 MiB): one that does not is a key sent again if this page or the one
    // before held it, else the store's order strays (a key of its own dropped as sent again
    // would be missing from the listing): refused.
    const tokens = new Set<string>();
    const seen = new Set<string>();
    let pageKeys = new Set<string>();
    let pageBeforeKeys = new Set<string>();
    let lastListed: Buffer | undefined;
    let inOrder = true;
    let listedKeys = 0;
    let pagesWithoutNewKeys = 0;
    let emptyPages = 0;
    for (;;) {
      const maxKeys = Math.min(this.options.pageSize ?? S3_MAX_KEYS, Math.max(1, from.maxKeys?.() ?? S3_MAX_KEYS));
      const page = await this.call(async (abortSignal) => {
        try {
          return await this.client.send(
            new sdk.ListObjectsV2Command({
              Bucket: this.options.bucket,
              ...(this.options.prefix !== '' && { Prefix: this.options.prefix }),
              ...((this.options.pageSize !== undefined || maxKeys < S3_MAX_KEYS) && { MaxKeys: maxKeys }),
              ...(token !== undefined && { ContinuationToken: token }),
              ...(startAfter !== undefined && { StartAfter: startAfter }),
            }),
            { abortSignal },
          );
        } catch (error) {
          throw notS3NotFound(error, 'ListObjectsV2') ?? error;
        }
      }, signal);
      // An empty S3 listing still names its bucket and key count; a web server's 200 names nothing.
      if (page.Contents === undefined && page.Name === undefined && page.KeyCount === undefined && page.IsTruncated === undefined) {
        throw translateS3Error(new NotS3Answer('ListObjectsV2'), this.context());
      }
      // Keys come URL-encoded when the store answers with EncodingType url (some do unasked).
      const keyOf = (key: string) => (page.EncodingType === 'url' ? decodeListedKey(key, this.display) : key);
      let lastKey: string | undefined;
      let newKeys = false;
      const objects: StoredObject[] = [];
      [pageBeforeKeys, pageKeys] = [pageKeys, new Set<string>()];
      for (const listed of page.Contents ?? []) {
        if (listed.Key === undefined) continue;
        const item = { ...listed, Key: keyOf(listed.Key) };
        lastKey = item.Key;
        // A key a page before held (a store that sent it again): listed already.
        const keyBytes = Buffer.from(item.Key);
        const afterLast = lastListed === undefined || Buffer.compare(keyBytes, lastListed) > 0;
        if (listedKeys < MAX_LISTED_OBJECTS) {
          if (seen.has(item.Key)) continue;
          seen.add(item.Key);
          pageKeys.add(item.Key);
          inOrder &&= afterLast;
        } else {
          seen.clear();
          const sentAgain = !afterLast && (pageKeys.has(item.Key) || pageBeforeKeys.has(item.Key));
          if (!inOrder || (!afterLast && !sentAgain)) {
            throw new StorageError(`${this.display}: the store lists more than ${MAX_LISTED_OBJECTS} keys, not in S3's order (by their UTF-8 bytes): past that many, a key it sends again cannot be told from a new one: give a narrower prefix`, 'TOO_LARGE');
          }
          pageKeys.add(item.Key);
          if (sentAgain) continue;
        }
        listedKeys += 1;
        if (afterLast) lastListed = keyBytes;
        newKeys = true;
        // A key outside the prefix (a store that ignored it): its name below the prefix would be another key's.
        if (!item.Key.startsWith(this.options.prefix)) continue;
        // A key no backup writes that an HTTP layer on the way, or a store keeping objects as files,
        // may resolve to another: a "." or ".." segment (restore refuses to read it), or an empty
        // one below the prefix (nginx merges "//"), or a NUL (a layer taking the key as a C string
        // ends it there): a DELETE of `acme/zz/../kept`, `acme//kept` or `acme/kept\0` took the
        // backup prune kept. Also over 1,024 bytes, or not valid Unicode.
        const below = item.Key.slice(this.options.prefix.length);
        if (readableKeyProblemOf(item.Key) !== undefined || below.startsWith('/') || below.includes('//')) continue;
        // At or before where the listing was to start (a store that ignored StartAfter): listed already.
        if (startBytes !== undefined && Buffer.compare(Buffer.from(item.Key), startBytes) <= 0) continue;
        if (item.Key.endsWith('/') || (item.Size ?? 0) === 0) continue;
        objects.push({
          name: item.Key.slice(this.options.prefix.length),
          location: `s3://${this.options.bucket}/${item.Key}`,
          bytes: item.Size ?? 0,
          modifiedAt: item.LastModified ?? new Date(0),
          ...(item.ETag !== undefined && { etag: quotedEtag(item.ETag) }),
        });
      }
      yield { objects, truncated: page.IsTruncated === true };
      if (page.IsTruncated !== true) return;
      const next = nextPage(page.NextContinuationToken, lastKey, { token, startAfter });
      if (next === undefined) {
        throw new StorageError(`${this.display}: the store says its listing goes on but gives no way past the page it sent (no new continuation token, no key to start after): cannot list it whole`, 'S3');
      }
      if (newKeys) [pagesWithoutNewKeys, emptyPages] = [0, 0];
      else if (lastKey === undefined) emptyPages += 1;
      else pagesWithoutNewKeys += 1;
      const why =
        next.token !== undefined && tokens.has(next.token)
          ? 'a continuation token it gave before'
          : pagesWithoutNewKeys >= MAX_PAGES_WITHOUT_NEW_KEYS
            ? `${MAX_PAGES_WITHOUT_NEW_KEYS} pages without a key not listed before`
            : emptyPages >= MAX_EMPTY_PAGES
              ? `${MAX_EMPTY_PAGES} pages without a key`
              : undefined;
      if (why !== undefined) throw new StorageError(`${this.display}: the store's listing goes round in a loop (${why}): cannot list it whole`, 'S3');
      if (next.token !== undefined) tokens.add(next.token);
      ({ token, startAfter } = next);
    }
  }

  async objectAt(name: string, options: ReadOptions = {}): Promise<StoredObject | undefined> {
    const sdk = await loadS3Sdk();
    const key = `${this.options.prefix}${name}`;
    const location = `s3://${this.options.bucket}/${key}`;
    let head: HeadObjectCommandOutput;
    try {
      head = await this.call((abortSignal) => this.client.send(new sdk.HeadObjectCommand({ Bucket: this.options.bucket, Key: key }), { abortSignal }), options.signal, location);
    } catch (error) {
      // Without s3:ListBucket, S3 answers a key that is not there 403 (a HEAD needs only
      // s3:GetObject of one that is): none these credentials may read.
      if (error instanceof StorageError && (error.code === 'NOT_FOUND' || error.code === 'ACCESS_DENIED')) return undefined;
      throw error;
    }
    if ((head.ContentLength ?? 0) === 0) return undefined;
    return {
      name,
      location,
      bytes: head.ContentLength ?? 0,
      modifiedAt: head.LastModified ?? new Date(0),
      ...(head.ETag !== undefined && { etag: quotedEtag(head.ETag) }),
    };
  }

  async inspect(object: StoredObject, options: InspectOptions = {}): Promise<ObjectFacts> {
    const sdk = await loadS3Sdk();
    const key = this.keyOf(object);
    let answer: GetObjectCommandOutput;
    let head: Buffer;
    try {
      // The first bytes come within the answer's deadline too: a store dripping them a byte a second took an hour an object.
      ({ answer, head } = await this.call(
        async (abortSignal) => {
          const answer = await this.client.send(new sdk.GetObjectCommand({ Bucket: this.options.bucket, Key: key, Range: `bytes=0-${HEAD_BYTES - 1}` }), { abortSignal });
          return { answer, head: await readAtMost(answer.Body as Readable | undefined, HEAD_BYTES, { answerBytes: answer.ContentLength, signal: abortSignal }) };
        },
        options.signal,
        object.location,
      ));
    } catch (error) {
      if (!(error instanceof StorageError && s3ErrorName(error.cause) === 'InvalidObjectState')) throw error;
      return this.inspectArchived(sdk, object, options);
    }
    const tail = (options.wantsTail ?? startsWithMarker)(head) ? await this.readTail(sdk, object, answer, head, options.signal) : undefined;
    return { head, ...(tail !== undefined && { tail }), ...(await this.recorded(sdk, object, head, answer.Metadata, options)) };
  }

  /** What an object in an archive storage class says about itself without its bytes: HEAD's metadata and storage class, and its tags. */
  private async inspectArchived(sdk: S3Sdk, object: StoredObject, options: InspectOptions): Promise<ObjectFacts> {
    const signal = options.signal;
    const head = await this.call(
      (abortSignal) => this.client.send(new sdk.HeadObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(object) }), { abortSignal }),
      signal,
      object.location,
    );
    // An Intelligent-Tiering object names its archive tier apart: INTELLIGENT_TIERING ARCHIVE_ACCESS.
    const storageClass = [head.StorageClass ?? 'archive', head.ArchiveStatus].filter((part) => part !== undefined).join(' ');
    const bytes = Buffer.alloc(0);
    return { head: bytes, storageClass, ...(await this.recorded(sdk, object, bytes, head.Metadata, options)) };
  }

  /**
   * What the backup recorded beside the bytes: user metadata, and the digest, the size stored
   * and the verification mark as tags, where wanted (`wantsTags`: not for another tenant's
   * object, half the requests of a bucket-wide listing).
   */
  private async recorded(sdk: S3Sdk, object: StoredObject, head: Buffer, userMetadata: Record<string, string> | undefined, options: InspectOptions): Promise<Omit<ObjectFacts, 'head'>> {
    const signal = options.signal;
    const metadata = metadataOf(userMetadata);
    if (options.wantsTags?.(head, metadata) === false) return { metadata };
    const key = this.keyOf(object);
    let tagsDenied = false;
    const tags = await this.call(
      (abortSignal) => this.client.send(new sdk.GetObjectTaggingCommand({ Bucket: this.options.bucket, Key: key }), { abortSignal }),
      signal,
      object.location,
    ).catch((error: unknown) => {
      if (error instanceof StorageError && (error.code === 'ACCESS_DENIED' || error.code === 'NOT_SUPPORTED' || CANNOT_TELL.has(s3ErrorName(error.cause) ?? ''))) {
        // Denied: the tags exist and are unseen (a store without tagging answers NotImplemented: it holds none).
        tagsDenied = error.code === 'ACCESS_DENIED' || s3ErrorName(error.cause) === 'AccessDenied';
        return undefined;
      }
      throw error;
    });
    const tag = (name: string) => tags?.TagSet?.find((entry) => entry.Key === name)?.Value;
    // The backup's own tags only beside the seal its upload began with (s3.ts SEAL_METADATA_KEY): anyone allowed s3:PutObjectTagging can write tags.
    const sealed = sealHolds(userMetadata, tag(`${METADATA_PREFIX}${SEAL_METADATA_KEY}`));
    const digest = sealed ? tag(`${METADATA_PREFIX}manifest-sha256`) : undefined;
    const stored = sealed ? tag(`${METADATA_PREFIX}${STORED_BYTES_METADATA_KEY}`) : undefined;
    const verified = parseMarkTag(tag(VERIFIED_TAG));
    return {
      ...(tagsDenied ? { tagsDenied: true as const } : {}),
      metadata,
      ...(digest !== undefined && /^[0-9a-f]{64}$/.test(digest) && { manifestSha256: digest }),
      ...(stored !== undefined && /^\d{1,16}$/.test(stored) && { storedBytes: Number(stored) }),
      ...(verified !== undefined && { verified }),
    };
  }

  async deletionTerms(options: ReadOptions = {}): Promise<DeletionTerms> {
    const sdk = await loadS3Sdk();
    const bucket = this.options.bucket;
    const versioning = await this.optional((abortSignal) => this.client.send(new sdk.GetBucketVersioningCommand({ Bucket: bucket }), { abortSignal }), options.signal);
    const lock = await this.optional(
      (abortSignal) => this.client.send(new sdk.GetObjectLockConfigurationCommand({ Bucket: bucket }), { abortSignal }),
      options.signal,
      ['ObjectLockConfigurationNotFoundError', 'ObjectLockConfigurationNotFound'],
    );
    const lifecycle = await this.optional(
      (abortSignal) => this.client.send(new sdk.GetBucketLifecycleConfigurationCommand({ Bucket: bucket }), { abortSignal }),
      options.signal,
      ['NoSuchLifecycleConfiguration'],
    );
    const status = versioning === 'unknown' ? 'unknown' : versioning === 'absent' ? 'off' : versioning.Status === 'Enabled' ? 'enabled' : versioning.Status === 'Suspended' ? 'suspended' : versioning.Status === undefined ? 'off' : 'unknown';
    const days = lifecycle === 'unknown' || lifecycle === 'absent' ? undefined : noncurrentExpiration(lifecycle.Rules ?? [], this.options.prefix);
    return {
      versioning: status,
      lifecycle: lifecycle === 'unknown' ? 'unknown' : 'known',
      ...(days !== undefined && { noncurrentExpirationDays: days }),
      // Only ObjectLockConfigurationNotFound says no lock: a configuration answered without `Enabled` (an empty body, an odd value) cannot tell.
      objectLock: lock === 'unknown' ? 'unknown' : lock === 'absent' ? 'off' : lock.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled' ? 'enabled' : 'unknown',
    };
  }

  async holdOf(object: StoredObject, options: ReadOptions = {}): Promise<ObjectHold | undefined> {
    const sdk = await loadS3Sdk();
    const key = this.keyOf(object);
    const notLocked = ['NoSuchObjectLockConfiguration', 'ObjectLockConfigurationNotFoundError', 'InvalidRequest'];
    const retention = await this.optional(
      (abortSignal) => this.client.send(new sdk.GetObjectRetentionCommand({ Bucket: this.options.bucket, Key: key }), { abortSignal }),
      options.signal,
      notLocked,
    );
    const legalHold = await this.optional(
      (abortSignal) => this.client.send(new sdk.GetObjectLegalHoldCommand({ Bucket: this.options.bucket, Key: key }), { abortSignal }),
      options.signal,
      notLocked,
    );
    const until = typeof retention === 'object' ? retention.Retention?.RetainUntilDate : undefined;
    const held = typeof legalHold === 'object' && legalHold.LegalHold?.Status === 'ON';
    const retained = until !== undefined && until.getTime() > Date.now();
    if (!retained && !held) return undefined;
    return {
      legalHold: held,
      ...(retained && { retainUntil: until, ...(typeof retention === 'object' && retention.Retention?.Mode !== undefined && { mode: retention.Retention.Mode }) }),
    };
  }

  /**
   * 'gone' where S3 said the key was not there (the conditional delete's 404, or the HEAD's).
   * An unconditional DeleteObject answers 204 either way: in a versioned bucket its answer names
   * the delete marker it added, and the version right below that marker says whether an object
   * or another's delete marker was current (removedUnderMarker); in a bucket never versioned
   * nothing tells (nor in a suspended one: its "null" marker replaces the one before), so one removed
   * by another between the HEAD and the DELETE is taken for 'removed'.
   */
  async remove(object: StoredObject, options: ReadOptions = {}): Promise<'removed' | 'gone'> {
    const sdk = await loadS3Sdk();
    if (this.conditionalDeletes && object.etag !== undefined) {
      const conditional = await this.deleteIfMatch(sdk, object, quotedEtag(object.etag), options.signal);
      if (conditional !== 'refused') return conditional;
      this.conditionalDeletes = false;
    }
    if (!(await this.stillAsListed(sdk, object, options.signal))) return 'gone';
    const answer = await this.call(
      (abortSignal) => this.client.send(new sdk.DeleteObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(object) }), { abortSignal }),
      options.signal,
      object.location,
    );
    // A marker of a suspended bucket ("null") replaces the null version below it: nothing left to read.
    if (answer?.DeleteMarker === true && answer.VersionId !== undefined && answer.VersionId !== 'null') return this.removedUnderMarker(sdk, object, answer.VersionId, options.signal);
    return 'removed';
  }

  /**
   * Whether the delete that added `marker` removed an object ('removed') or found another's
   * delete marker current ('gone': another prune deleted it between the HEAD and the DELETE):
   * the one version listed right after the marker, in S3's own order of the key's versions
   * (ListObjectVersions from KeyMarker/VersionIdMarker; no times compared, which two deletes
   * in one second share). 'removed' where the store or the credentials cannot list versions
   * (s3:ListBucketVersions), as before.
   */
  private async removedUnderMarker(sdk: S3Sdk, object: StoredObject, marker: string, signal: AbortSignal | undefined): Promise<'removed' | 'gone'> {
    const key = this.keyOf(object);
    const below = await this.optional(
      (abortSignal) => this.client.send(new sdk.ListObjectVersionsCommand({ Bucket: this.options.bucket, Prefix: key, KeyMarker: key, VersionIdMarker: marker, MaxKeys: 1 }), { abortSignal }),
      signal,
    );
    if (typeof below !== 'object') return 'removed';
    // Its own marker listed again is a store that ignored VersionIdMarker (listing the key from its newest): it cannot tell.
    const belowIt = (listed: { readonly Key?: string; readonly VersionId?: string }) => listed.Key === key && listed.VersionId !== marker;
    if (below.DeleteMarkers?.some(belowIt) === true) return 'gone';
    const version = below.Versions?.find(belowIt);
    // Another version than the one listed was current: written between the HEAD and the DELETE (a `backup --overwrite`,
    // a retried upload), and the marker hid that newer backup, which no rule judged. The marker goes again, so that it is current.
    if (version !== undefined && !sameVersionAs(object, version)) await this.unhide(sdk, object, marker);
    // Nothing below the marker of this key (a listing cut short, or a store that ignores the markers): as before.
    return 'removed';
  }

  /**
   * Removes this prune's own delete `marker` (DeleteObject of that version alone: the delete marker
   * is no data), making the version below it current again, and throws CHANGED as a conditional
   * delete would have; where the store refuses, a failure naming the marker to remove by hand.
   * Not cut short by the prune's signal (Ctrl-C, the Lambda deadline): one request within its
   * own timeout, and stopped there the newer backup would stay hidden, unsaid.
   */
  private async unhide(sdk: S3Sdk, object: StoredObject, marker: string): Promise<never> {
    const key = this.keyOf(object);
    try {
      await this.call(
        (abortSignal) => this.client.send(new sdk.DeleteObjectCommand({ Bucket: this.options.bucket, Key: key, VersionId: marker }), { abortSignal }),
        undefined,
        object.location,
      );
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new StorageError(
        `${object.location} was written again between the check before its delete and the delete, which hid that newer version behind delete marker ${marker}; ` +
          `removing the marker failed (${why}): make the newer version current again with: aws s3api delete-object --bucket ${this.options.bucket} --key ${JSON.stringify(key)} --version-id ${marker}`,
        'S3',
        { cause: error },
      );
    }
    throw new StorageError(`${object.location} changed since it was listed (written again right before its delete; the delete marker was removed, the newer version is current): not removed`, 'CHANGED');
  }

  async unfinishedUploads(options: UploadsOptions = {}): Promise<UnfinishedUpload[] | undefined> {
    const sdk = await loadS3Sdk();
    const found: UnfinishedUpload[] = [];
    const held = new Set<string>();
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    // Upload ID markers given at the current key marker: one again is the store going round.
    let markersAtKey = new Set<string>();
    let pagesWithoutUploads = 0;
    for (;;) {
      const page = await this.optional(
        (abortSignal) =>
          this.client.send(
            new sdk.ListMultipartUploadsCommand({
              Bucket: this.options.bucket,
              ...(this.options.prefix !== '' && { Prefix: this.options.prefix }),
              ...(keyMarker !== undefined && { KeyMarker: keyMarker }),
              ...(uploadIdMarker !== undefined && { UploadIdMarker: uploadIdMarker }),
            }),
            { abortSignal },
          ),
        options.signal,
      );
      if (page === 'absent' || page === 'unknown' || typeof page !== 'object') return undefined;
      for (const upload of page.Uploads ?? []) {
        if (upload.Key === undefined || upload.UploadId === undefined || upload.Initiated === undefined || !upload.Key.startsWith(this.options.prefix)) continue;
        const name = upload.Key.slice(this.options.prefix.length);
        // Only those the caller wants are held (a prune: its tenant's), so any number may be listed past them.
        if (options.wanted?.(name) === false || held.has(`${upload.UploadId}\0${upload.Key}`)) continue;
        if (found.length >= MAX_LISTED_OBJECTS) throw new StorageError(`${this.display} holds more than ${MAX_LISTED_OBJECTS} unfinished multipart uploads${options.wanted === undefined ? '' : ' of those looked for'}: give a narrower prefix`, 'TOO_LARGE');
        held.add(`${upload.UploadId}\0${upload.Key}`);
        found.push({ name, location: `s3://${this.options.bucket}/${upload.Key}`, uploadId: upload.UploadId, initiatedAt: upload.Initiated });
      }
      const next = [page.NextKeyMarker, page.NextUploadIdMarker] as const;
      if (page.IsTruncated !== true || next[0] === undefined) return found;
      // Markers that go back (in S3's order, by UTF-8 bytes), or come again at one key, or pages without an upload
      // under new markers on and on, are a store going round: not followed (S3 pages go forward, 1,000 uploads each).
      pagesWithoutUploads = (page.Uploads?.length ?? 0) === 0 ? pagesWithoutUploads + 1 : 0;
      const order = keyMarker === undefined ? 1 : Buffer.compare(Buffer.from(next[0]), Buffer.from(keyMarker));
      if (order === 0 && next[1] === uploadIdMarker) return found;
      if (order > 0) markersAtKey = new Set();
      if (order < 0 || markersAtKey.has(next[1] ?? '') || pagesWithoutUploads >= MAX_PAGES_WITHOUT_UPLOADS) {
        throw new StorageError(`${this.display}: the store's listing of unfinished multipart uploads goes round in a loop (${order < 0 ? 'a key marker before the last' : markersAtKey.has(next[1] ?? '') ? 'an upload ID marker it gave before' : `${MAX_PAGES_WITHOUT_UPLOADS} pages without an upload`}): cannot list them whole`, 'S3');
      }
      markersAtKey.add(next[1] ?? '');
      [keyMarker, uploadIdMarker] = next;
    }
  }

  async lastPartAt(upload: UnfinishedUpload, options: ReadOptions = {}): Promise<Date | undefined | 'gone'> {
    const sdk = await loadS3Sdk();
    let newest: Date | undefined;
    let parts = 0;
    let partMarker: string | undefined;
    for (;;) {
      let page;
      try {
        page = await this.answered(
          options.signal,
          (abortSignal) =>
            this.client.send(
              new sdk.ListPartsCommand({ Bucket: this.options.bucket, Key: this.options.prefix + upload.name, UploadId: upload.uploadId, ...(partMarker !== undefined && { PartNumberMarker: partMarker }) }),
              { abortSignal },
            ),
          upload.location,
        );
      } catch (error) {
        if (options.signal?.aborted) throw abortedError(options.signal);
        if (error instanceof OpenClawError) throw error;
        if (s3ErrorName(error) === 'NoSuchUpload') return 'gone';
        throw translateS3Error(error, this.context(upload.location));
      }
      for (const part of page.Parts ?? []) if (part.LastModified !== undefined && (newest === undefined || part.LastModified > newest)) newest = part.LastModified;
      parts += page.Parts?.length ?? 0;
      // An upload holds at most 10,000 parts: a store listing more is going round (the upload is then left alone).
      if (parts > MAX_PARTS) throw new StorageError(`${upload.location}: the store listed more than ${MAX_PARTS} parts of upload ${upload.uploadId}`, 'S3');
      // A store that says it goes on but gives no marker past this page, or the same one again, is not followed round.
      const next = page.NextPartNumberMarker;
      if (page.IsTruncated !== true || next === undefined || next === partMarker) return newest;
      partMarker = next;
    }
  }

  storeTime(): Date {
    // The SDK sets the offset from every answer's Date header (and signs with it), so a host whose clock is off still works.
    const offset = (this.client.config as { systemClockOffset?: number }).systemClockOffset ?? 0;
    return new Date(Date.now() + offset);
  }

  async abortUpload(upload: UnfinishedUpload, options: ReadOptions = {}): Promise<void> {
    const sdk = await loadS3Sdk();
    try {
      await this.answered(
        options.signal,
        (abortSignal) => this.client.send(new sdk.AbortMultipartUploadCommand({ Bucket: this.options.bucket, Key: this.options.prefix + upload.name, UploadId: upload.uploadId }), { abortSignal }),
        upload.location,
      );
    } catch (error) {
      if (options.signal?.aborted) throw abortedError(options.signal);
      if (error instanceof OpenClawError) throw error;
      // Completed or aborted meanwhile (its backup finished, another prune was quicker): not there to abort.
      if (s3ErrorName(error) === 'NoSuchUpload') return;
      throw translateS3Error(error, this.context(upload.location));
    }
  }

  /** DeleteObject with If-Match: 'done' (deleted, or already gone), or 'refused' when the store does not take the header. */
  private async deleteIfMatch(sdk: S3Sdk, object: StoredObject, etag: string, signal: AbortSignal | undefined): Promise<'removed' | 'gone' | 'refused'> {
    try {
      await this.answered(
        signal,
        (abortSignal) => this.client.send(new sdk.DeleteObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(object), IfMatch: etag }), { abortSignal }),
        object.location,
      );
      return 'removed';
    } catch (error) {
      if (signal?.aborted) throw abortedError(signal);
      if (error instanceof OpenClawError) throw error;
      const name = s3ErrorName(error) ?? '';
      const status = s3StatusCode(error);
      if (status === 412 || name === 'PreconditionFailed' || name === 'ConditionalRequestConflict') throw changedSinceListed(object, error);
      if (name === 'NoSuchKey' || (status === 404 && name !== 'NoSuchBucket')) return 'gone';
      if (REFUSES_CONDITION.has(name) || status === 501) return 'refused';
      throw translateS3Error(error, this.context(object.location));
    }
  }

  /** Whether the object is still the one listed (HEAD: its ETag, or size and time); false when gone; CHANGED when not. */
  private async stillAsListed(sdk: S3Sdk, object: StoredObject, signal: AbortSignal | undefined): Promise<boolean> {
    const head = await this.call(
      (abortSignal) => this.client.send(new sdk.HeadObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(object) }), { abortSignal }),
      signal,
      object.location,
    ).catch((error: unknown) => {
      if (error instanceof StorageError && error.code === 'NOT_FOUND') return undefined;
      throw error;
    });
    if (head === undefined) return false;
    const sameVersion =
      object.etag !== undefined && head.ETag !== undefined ? quotedEtag(head.ETag) === quotedEtag(object.etag) : head.LastModified?.getTime() === object.modifiedAt.getTime();
    if (!sameVersion || (head.ContentLength !== undefined && head.ContentLength !== object.bytes)) throw changedSinceListed(object);
    return true;
  }

  /** The object's last TAIL_BYTES, from the first GET's bytes when they hold it all, else one ranged GET pinned to its ETag. */
  private async readTail(sdk: S3Sdk, object: StoredObject, first: GetObjectCommandOutput, head: Buffer, signal: AbortSignal | undefined): Promise<Buffer> {
    const size = totalSize(first.ContentRange) ?? object.bytes;
    if (size <= head.length) return head.subarray(Math.max(0, head.length - TAIL_BYTES));
    const start = Math.max(0, size - TAIL_BYTES);
    const changed = () => new StorageError(`${object.location} changed while it was being listed: list again`, 'CHANGED');
    try {
      // Its bytes come within the answer's deadline too, as the first bytes do (inspect).
      return await this.answered(
        signal,
        async (abortSignal) => {
          const answer = await this.client.send(
            new sdk.GetObjectCommand({
              Bucket: this.options.bucket,
              Key: this.keyOf(object),
              Range: `bytes=${start}-${size - 1}`,
              ...(first.ETag !== undefined && { IfMatch: first.ETag }),
            }),
            { abortSignal },
          );
          if (first.ETag !== undefined && answer.ETag !== undefined && answer.ETag !== first.ETag) {
            destroyQuietly(answer.Body as Readable | undefined);
            throw changed();
          }
          // The whole object from its start (200, no Content-Range): its first bytes are no end, and were taken for a footer missing.
          if (answer.ContentRange === undefined && (answer.ContentLength ?? 0) > TAIL_BYTES) {
            destroyQuietly(answer.Body as Readable | undefined);
            throw new StorageError(`${this.options.endpoint ?? 'S3'} ignored the byte range of a GET of ${object.location} (it sent the whole object from its start): cannot read its end to tell whether it is whole`, 'S3');
          }
          // Other bytes than those asked for (a 206 from the start): read as the end, they too were taken for a footer missing.
          if (answer.ContentRange !== undefined && !answer.ContentRange.startsWith(`bytes ${start}-`)) {
            destroyQuietly(answer.Body as Readable | undefined);
            throw new StorageError(
              `${this.options.endpoint ?? 'S3'} answered a GET of the last bytes of ${object.location} (from byte ${start}) with other bytes (Content-Range: ${JSON.stringify(answer.ContentRange.slice(0, 100))}): cannot read its end to tell whether it is whole`,
              'S3',
            );
          }
          return readAtMost(answer.Body as Readable | undefined, TAIL_BYTES, { answerBytes: answer.ContentLength, signal: abortSignal });
        },
        object.location,
      );
    } catch (error) {
      if (signal?.aborted) throw abortedError(signal);
      if (error instanceof OpenClawError) throw error;
      if (s3StatusCode(error) === 412 || s3ErrorName(error) === 'PreconditionFailed') throw changed();
      throw translateS3Error(error, this.context(object.location));
    }
  }

  private keyOf(object: StoredObject): string {
    return `${this.options.prefix}${object.name}`;
  }

  private context(display = this.display): S3ErrorContext {
    return {
      display,
      bucket: this.options.bucket,
      operation: 'check',
      ...(this.options.endpoint !== undefined && { endpoint: this.options.endpoint }),
      ...(this.options.secrets !== undefined && { secrets: this.options.secrets }),
    };
  }

  /**
   * Runs one request with a signal of its own that follows `signal` (the SDK leaves a listener
   * on the signal it is given, and a listing makes hundreds of requests under the command's
   * one) and fires at the answer deadline: past it, StorageError UNREACHABLE "no answer".
   */
  private async answered<T>(signal: AbortSignal | undefined, run: (abortSignal: AbortSignal) => Promise<T>, display = this.display): Promise<T> {
    const deadlineMs = this.options.answerDeadlineMs ?? ANSWER_DEADLINE_MS;
    const request = new AbortController();
    const stop = onAbort(signal, () => request.abort(signal?.reason));
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      request.abort();
    }, deadlineMs);
    try {
      return await run(request.signal);
    } catch (error) {
      if (!late || signal?.aborted) throw error;
      throw new StorageError(`cannot reach ${this.options.endpoint ?? 'S3'} for ${display}: no answer in ${deadlineMs / 1000} s`, 'UNREACHABLE', { cause: error });
    } finally {
      clearTimeout(timer);
      stop();
    }
  }

  private async call<T>(run: (abortSignal: AbortSignal) => Promise<T>, signal: AbortSignal | undefined, display?: string): Promise<T> {
    try {
      return await this.answered(signal, run, display);
    } catch (error) {
      if (signal?.aborted) throw abortedError(signal);
      if (error instanceof OpenClawError) throw error;
      throw translateS3Error(error, this.context(display));
    }
  }

  /** A bucket setting: its value, 'absent' (one of `absentNames`), or 'unknown' (the store or the credentials cannot tell). */
  private async optional<T>(run: (abortSignal: AbortSignal) => Promise<T>, signal: AbortSignal | undefined, absentNames: readonly string[] = []): Promise<T | 'absent' | 'unknown'> {
    try {
      return await this.answered(signal, run);
    } catch (error) {
      if (signal?.aborted) throw abortedError(signal);
      if (error instanceof OpenClawError) throw error;
      const name = s3ErrorName(error) ?? '';
      if (absentNames.includes(name)) return 'absent';
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (CANNOT_TELL.has(name) || status === 403 || status === 405 || status === 501) return 'unknown';
      throw translateS3Error(error, this.context());
    }
  }
}


/**
 * Where the next ListObjectsV2 page starts: the store's continuation token, else (a store that
 * says the listing is truncated without one) after the page's last key; undefined when neither
 * moves on from the page just read (no token and no key, or the same token or key again),
 * which would list the same page forever.
 */
export function nextPage(
  nextToken: string | undefined,
  lastKey: string | undefined,
  current: { readonly token?: string | undefined; readonly startAfter?: string | undefined },
): { token?: string; startAfter?: string } | undefined {
  if (nextToken !== undefined && nextToken !== '') return nextToken === current.token ? undefined : { token: nextToken };
  if (lastKey === undefined || lastKey === current.startAfter) return undefined;
  return { startAfter: lastKey };
}

/** Whether the string is well-formed UTF-16 (no lone surrogate): only such a string is the UTF-8 of a key. */
function isWellFormedText(text: string): boolean {
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text);
}

/** A key of a listing answered with EncodingType url: `+` is a space, `%XX` a byte of its UTF-8. */
function decodeListedKey(key: string, display: string): string {
  try {
    return decodeURIComponent(key.replace(/\+/g, ' '));
  } catch {
    throw new StorageError(`${display}: the store listed a URL-encoded key that does not decode: ${JSON.stringify(key.slice(0, 100))}`, 'S3');
  }
}

/** Whether a version ListObjectVersions names is the object as listed: its ETag, or its time where either lacks one; and its size. */
function sameVersionAs(object: StoredObject, version: { readonly ETag?: string; readonly LastModified?: Date; readonly Size?: number }): boolean {
  const same = object.etag !== undefined && version.ETag !== undefined ? quotedEtag(version.ETag) === quotedEtag(object.etag) : version.LastModified === undefined || version.LastModified.getTime() === object.modifiedAt.getTime();
  return same && (version.Size === undefined || version.Size === object.bytes);
}

function changedSinceListed(object: StoredObject, cause?: unknown): StorageError {
  return new StorageError(`${object.location} changed since it was listed: not removed`, 'CHANGED', cause !== undefined ? { cause } : undefined);
}

/** The object's size from a ranged GET's Content-Range (`bytes 0-4095/123456`). */
function totalSize(contentRange: string | undefined): number | undefined {
  const total = /\/(\d+)$/.exec(contentRange ?? '')?.[1];
  return total === undefined ? undefined : Number(total);
}

function metadataOf(metadata: Record<string, string> | undefined): Partial<ArchiveMetadata> | undefined {
  if (metadata === undefined) return undefined;
  const get = (name: string) => metadata[`${METADATA_PREFIX}${name}`];
  const formatVersion = Number(get('format-version'));
  const createdAt = get('created-at');
  const result: { -readonly [K in keyof ArchiveMetadata]?: ArchiveMetadata[K] } = {};
  if (get('tenant') !== undefined) result.tenant = get('tenant');
  if (Number.isSafeInteger(formatVersion) && formatVersion > 0) result.formatVersion = formatVersion;
  if (get('tool-version') !== undefined) result.toolVersion = get('tool-version');
  if (createdAt !== undefined && isUtcTime(createdAt)) result.createdAt = new Date(createdAt).toISOString();
  return Object.keys(result).length === 0 ? undefined : result;
}

/**
 * An ISO 8601 UTC time, as a backup writes it (`toISOString`), of a day that exists: Date.parse
 * alone takes `1` for 2001 and rolls 2026-02-30 over to March 2, dating an object where no
 * backup put it (a prune would order it among the real ones by that date).
 */
function isUtcTime(value: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/.test(value)) return false;
  const time = Date.parse(value);
  return Number.isFinite(time) && new Date(time).toISOString().slice(0, 19) === value.slice(0, 19);
}

/** The shortest NoncurrentVersionExpiration of an enabled rule that covers the whole prefix. */
function noncurrentExpiration(rules: readonly LifecycleRule[], prefix: string): number | undefined {
  let days: number | undefined;
  for (const rule of rules) {
    if (rule.Status !== 'Enabled' || rule.NoncurrentVersionExpiration?.NoncurrentDays === undefined) continue;
    const rulePrefix = rule.Filter?.Prefix ?? rule.Filter?.And?.Prefix ?? rule.Prefix ?? '';
    const tagged = rule.Filter?.Tag !== undefined || (rule.Filter?.And?.Tags?.length ?? 0) > 0;
    if (tagged || !prefix.startsWith(rulePrefix)) continue;
    days = Math.min(days ?? Infinity, rule.NoncurrentVersionExpiration.NoncurrentDays);
  }
  return days;
}

/**
 * An ETag quoted, as HTTP and S3 give it. Some stores (NetApp ONTAP, some Ceph) list it bare in
 * ListObjectsV2 and quoted in a HEAD: compared as given, every listed object looked written
 * again since, and prune removed none.
 */
function quotedEtag(etag: string): string {
  return /^(?:W\/)?".*"$/.test(etag) ? etag : `"${etag}"`;
}

