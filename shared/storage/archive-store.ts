// Many archives in one place: a local directory (local-store.ts) or an S3 prefix
// (s3-store.ts), for `tenants backups` and `tenants prune`. Where ArchiveLocation (types.ts)
// is one archive's bytes, a store lists what is there and reads only what each archive says
// about itself without being downloaded: its first and last bytes, what the backup recorded
// beside it (S3 metadata and tags), and verification marks. It also removes archives, and
// says what removing means there (versioning, lifecycle, Object Lock). Which archives belong
// to whom, and which to remove, is decided above (catalog/).
//
// Bounds: a whole listing (`list`) holds at most MAX_LISTED_OBJECTS objects (a larger prefix is
// refused: give a narrower one); a listing in parts (`listInParts`, S3) has no bound of its own,
// its caller dropping each part before the next (catalog/backups.ts bounds what it keeps);
// HEAD_BYTES per object, and TAIL_BYTES of those whose first bytes the caller
// wants the end of (on S3 each tail is one more ranged GET).
//
// A removal is of the object as listed: a store refuses (StorageError CHANGED) one that
// changed since, where it can tell, so a prune never deletes a backup written again under
// the same name after it chose the old one.

import { ARCHIVE_MARKER_NIBBLE } from '../archive/manifest.js';
import { SKIPPABLE_MAGIC_BASE } from '../archive/zstd-format.js';
import type { ArchiveMetadata, ReadOptions, StoreEndpoint, VerifiedMark } from './types.js';

/** Most objects one whole listing (`list`) holds. */
export const MAX_LISTED_OBJECTS = 100_000;
/** First bytes read of each object: the marker frame, or an age header with many recipients. */
export const HEAD_BYTES = 4096;
/** Last bytes read of an archive whose end is wanted: the footer frame. */
export const TAIL_BYTES = 1024;

export interface StoredObject {
  /** The key below the bucket (S3) or the path below the directory (local), `/`-separated. */
  readonly name: string;
  /** What `--from` takes: `s3://bucket/key` or the absolute path. */
  readonly location: string;
  readonly bytes: number;
  /** The store's own time of the object (LastModified, mtime): not the backup's. */
  readonly modifiedAt: Date;
  /** The S3 ETag as listed: a removal is conditional on it. */
  readonly etag?: string;
}

export interface ListPage {
  readonly after?: string;
  /** At least 1. */
  readonly limit: number;
}

export interface ListedPage {
  readonly objects: StoredObject[];
  readonly next?: string;
}

export interface InspectOptions extends ReadOptions {
  /**
   * Whether the object's last TAIL_BYTES are wanted, given its first bytes.
   * @default behind our archive marker
   */
  readonly wantsTail?: (head: Buffer) => boolean;
  /**
   * Whether what the backup recorded as tags (S3: the digest, the size it stored, the
   * verification mark: one request more) is wanted, given the first bytes and the metadata.
   * @default always
   */
  readonly wantsTags?: (head: Buffer, metadata: Partial<ArchiveMetadata> | undefined) => boolean;
}

export interface ObjectFacts {
  /** The object's first bytes (at most HEAD_BYTES). */
  readonly head: Buffer;
  /** Its last bytes (at most TAIL_BYTES), where our footer is; undefined where not wanted. */
  readonly tail?: Buffer;
  /** What the backup recorded beside the bytes (S3 user metadata). */
  readonly metadata?: Partial<ArchiveMetadata>;
  /** The manifest digest the backup recorded beside the bytes (S3 tag). */
  readonly manifestSha256?: string;
  /** Its tags could not be read (access denied): a verification mark or the backup's tags may be there, unseen. */
  readonly tagsDenied?: true;
  /** The size of the object the backup completed (S3 tag): another size is not the whole of what it stored. */
  readonly storedBytes?: number;
  readonly verified?: VerifiedMark;
  /** Why a local file is not to be counted as this tool's backup, whatever its bytes say: another user's, or writable by others (verified-mark.ts archiveNotTrusted). */
  readonly notTrusted?: string;
  /**
   * The S3 storage class that keeps the object's bytes from being read until it is restored
   * (GLACIER, DEEP_ARCHIVE, an Intelligent-Tiering archive tier): `head` is empty then, and
   * what is known comes from its metadata and tags.
   */
  readonly storageClass?: string;
}

/** A multipart upload below the store's prefix that was started and never completed nor aborted. */
export interface UnfinishedUpload {
  /** The key it would have made, below the prefix. */
  readonly name: string;
  /** `s3://bucket/key`. */
  readonly location: string;
  readonly uploadId: string;
  readonly initiatedAt: Date;
}

export interface UploadsOptions extends ReadOptions {
  /** Whether an upload to this name (below the prefix) is wanted; the others are listed past, not held. @default all */
  readonly wanted?: (name: string) => boolean;
}

/** What keeps an object's data from being deleted now. */
export interface ObjectHold {
  /** Object Lock retention: GOVERNANCE or COMPLIANCE, until when. */
  readonly mode?: string;
  readonly retainUntil?: Date;
  readonly legalHold: boolean;
}

/** What removing an archive does in this store. */
export interface DeletionTerms {
  /** S3 versioning: with it, a removal adds a delete marker and the data stays as a noncurrent version. */
  readonly versioning: 'enabled' | 'suspended' | 'off' | 'unknown';
  /** Days after which a lifecycle rule deletes noncurrent versions under this prefix (undefined: no such rule, or unknown). */
  readonly noncurrentExpirationDays?: number;
  readonly lifecycle: 'known' | 'unknown';
  readonly objectLock: 'enabled' | 'off' | 'unknown';
}

export interface ArchiveStore {
  /** `s3://bucket/prefix/` or the directory. */
  readonly display: string;
  /** The last segment of the store's own path (the directory's or prefix's name), to attribute unreadable archives. */
  readonly baseName: string;
  /** The S3-compatible endpoint, and what chose it; absent for AWS and local directories. */
  readonly endpoint?: StoreEndpoint;
  /** Every object below, at most MAX_LISTED_OBJECTS (StorageError TOO_LARGE beyond). No order promised. */
  list(options?: ReadOptions): Promise<StoredObject[]>;
  /**
   * The same listing as `list`, an answer of the store at a time, for a caller that is done with
   * each before the next: not bounded by MAX_LISTED_OBJECTS, since nothing holds it whole (a
   * bucket-wide prefix of a million objects lists in a thousand answers). Absent: `list`.
   */
  listInParts?(options?: ReadOptions): AsyncIterable<StoredObject[]>;
  /**
   * One page of the listing, without listing what comes before it: the objects whose names
   * sort after `after` in the store's own order (S3: by the bytes of their UTF-8), at most
   * `limit`, and `next` (the last one's name, to ask the next page after) when more may
   * follow. `after` comes from the caller (the gateway's pages): a name no object below could
   * have is refused (InvalidRequestError). Absent: a page is cut from `list`.
   */
  listPage?(page: ListPage, options?: ReadOptions): Promise<ListedPage>;
  /**
   * The object at `name` (below the store's directory or prefix), as a listing would give it,
   * without listing (a hidden local name included): undefined when there is none, or none a listing
   * would give (an empty object, a local name that is no regular file), or none the credentials may
   * read (S3's 403, its answer for a key not there without s3:ListBucket).
   */
  objectAt(name: string, options?: ReadOptions): Promise<StoredObject | undefined>;
  /** What the object says about itself; reads only HEAD_BYTES, TAIL_BYTES (if wanted) and what lies beside it. */
  inspect(object: StoredObject, options?: InspectOptions): Promise<ObjectFacts>;
  deletionTerms(options?: ReadOptions): Promise<DeletionTerms>;
  /** Whether Object Lock or a legal hold keeps the object's data now; undefined when nothing does. */
  holdOf(object: StoredObject, options?: ReadOptions): Promise<ObjectHold | undefined>;
  /**
   * Removes the archive (and its verification mark). Refuses (StorageError CHANGED) when the
   * object is no longer the one listed, where the store can tell. One already gone is no
   * failure (another prune was quicker): 'gone', where the store can tell that this call found
   * nothing to remove, so a prune counts only what it removed itself; else 'removed'.
   */
  remove(object: StoredObject, options?: ReadOptions): Promise<'removed' | 'gone'>;
  /**
   * Removes the verification marks the last `list` saw whose archive is gone: what a prune
   * killed between removing an archive and its mark leaves (stores whose marks live apart
   * from their objects only). Never throws.
   */
  removeStrayMarks?(options?: ReadOptions): Promise<void>;
  /**
   * Removes the temporary names whose writer is gone beside the archives `remove` removed: a
   * killed backup's second name of an archive keeps its bytes (local directories only). Never throws.
   */
  removeDeadTemporaries?(options?: ReadOptions): Promise<void>;
  /**
   * S3: the multipart uploads below the prefix never completed nor aborted (a killed backup's
   * parts, billed and invisible to a listing), those `wanted` only, at most MAX_LISTED_OBJECTS
   * of them (any number listed); undefined when the store cannot say (no ListMultipartUploads:
   * s3rver; access denied). Absent: no such thing.
   */
  unfinishedUploads?(options?: UploadsOptions): Promise<UnfinishedUpload[] | undefined>;
  /**
   * When the upload last took a part (the newest part's time; undefined: none yet), or 'gone'
   * (completed or aborted since the listing): a backup still sending is told by this, not by
   * when its upload started, which may be long ago or made up (moto says 2010 for every one).
   */
  lastPartAt?(upload: UnfinishedUpload, options?: ReadOptions): Promise<Date | undefined | 'gone'>;
  /**
   * The time now by the store's clock, as far as its answers told (S3: the SDK's offset from
   * their Date headers), for comparing with the times it gives (an upload's start, a part's).
   */
  storeTime?(): Date;
  /** Aborts one, removing its parts; one gone already counts as aborted. */
  abortUpload?(upload: UnfinishedUpload, options?: ReadOptions): Promise<void>;
}

/** Whether the bytes start with our archive marker frame (behind which our footer ends the archive). */
export function startsWithMarker(head: Buffer): boolean {
  return head.length >= 4 && head.readUInt32LE(0) === SKIPPABLE_MAGIC_BASE + ARCHIVE_MARKER_NIBBLE;
}
