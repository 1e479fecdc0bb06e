// The one storage interface every backup location implements (local file, S3, in memory),
// with the contract each implementation must keep (test/storage-contract.ts checks it on
// every one). `--pipe` is a wrapper around it (pipe.ts), never part of an implementation;
// retries are the S3 client's own (s3-client.ts).

import type { Readable } from 'node:stream';

import type { S3ObjectSettings } from './s3-object-settings.js';
import type { UploadCheckpoint } from './s3-upload.js';

/** A write in pieces, each in its own process: where the last piece left the upload, and whether to suspend this one once its body has ended. */
export interface PieceOptions extends WriteOptions {
  readonly resume?: UploadCheckpoint;
  readonly suspendWhen: () => boolean;
  /**
   * Awaited right before the piece that is not suspended commits the archive, with its size
   * (every piece's bytes); throwing fails the write and leaves its pieces as they are (for
   * the caller to go on with or `abandonPieces`). Lets the caller record that the archive
   * may be stored from then on, for `storedPieces` to find if it is killed before it knows.
   */
  readonly committing?: (bytes: number) => Promise<void>;
  /**
   * Asked when the body fails: true leaves the pieces as they are, not aborted (the caller's
   * lock was taken over: the upload is its chain's, which the taker goes on with or ends).
   */
  readonly keepPiecesOnFailure?: (error: unknown) => boolean;
}

/** What `storedPieces` looks for: the archive a write in pieces committed, and what to record beside it. */
export interface StoredPiecesOptions {
  /** The write's tenant and creation time (ArchiveMetadata's), which the archive carries. */
  readonly tenant: string;
  readonly createdAt: string;
  /** The size `committing` was given. */
  readonly bytes: number;
  /** As WriteOptions' `finalMetadata`'s answer. */
  readonly finalMetadata: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
}

/** A piece's answer: `suspended` (what the next piece goes on from) unless the archive was committed. */
export interface PieceResult extends WriteResult {
  readonly suspended?: UploadCheckpoint;
}

/** The finalMetadata key of the manifest's digest (S3: a tag; local: the stored record, verified-mark.ts). */
export const MANIFEST_DIGEST_METADATA_KEY = 'manifest-sha256';
/** The final metadata (S3: object tag `openclaw-operation-id`) a chain's last piece records: the chain's operationId, which its events gave (ArchiveMetadata.operationId names the attempt that began the upload). */
export const OPERATION_ID_METADATA_KEY = 'operation-id';

/** Facts about an archive that a location may record beside the bytes (e.g. S3 metadata). */
export interface ArchiveMetadata {
  readonly tenant: string;
  readonly formatVersion: number;
  readonly toolVersion: string;
  /** ISO-8601 creation time of the backup. */
  readonly createdAt: string;
  /** The scheduled run the backup belongs to (its event's ID): a retry of the run knows the archive as its own. */
  readonly runId?: string;
  /** The completion event's operationId of the attempt that stored it (a backup in one invocation: its request ID), for a later attempt of the run to say the success with. */
  readonly operationId?: string;
}

/** What a store says of an archive already at a location (storedArchive): its size, the run that stored it, its sealed digest. */
export interface StoredArchive {
  readonly bytes: number;
  /** ArchiveMetadata.runId, when the archive's metadata names one. */
  readonly runId?: string;
  /** ArchiveMetadata.operationId, when the archive's metadata names one. */
  readonly operationId?: string;
  readonly createdAt?: string;
  /** The manifest's digest the backup recorded beside the archive, only where its seal holds (S3: tags nobody else could have written). */
  readonly manifestSha256?: string;
}

export interface WriteOptions {
  /** Replace an existing archive at the location; otherwise refuse with DestinationExistsError. */
  readonly overwrite: boolean;
  readonly metadata: ArchiveMetadata;
  /**
   * Metadata known only once the body has ended (the manifest's SHA-256). Called at most
   * once, after the body's last byte was consumed and before the write is committed.
   */
  readonly finalMetadata?: () => Readonly<Record<string, string>>;
  /**
   * Whether the body's bytes, now ended, are whole as far as their maker can tell (a `--pipe`
   * command's: an age file as long as age makes one of what it read); false: cut short, so no
   * record beside a local archive (verified-mark.ts StoredRecord) nor S3 size tag says its
   * backup completed it. Undefined, or no function: whole.
   */
  readonly bodyWhole?: () => boolean | undefined;
  readonly signal?: AbortSignal;
}

export interface WriteResult {
  /** Bytes stored at the location. */
  readonly bytes: number;
  /**
   * Why what the location records beside a complete archive (S3: the digest and size tags)
   * could not be recorded; the archive itself is stored whole. Absent when it was, or when the
   * location records nothing.
   */
  readonly unrecorded?: string;
  /**
   * What of the requested server-side encryption the store's answer did not confirm (S3:
   * s3-object-settings.ts, unconfirmedEncryption), naming the store; the archive is stored
   * whole, maybe not encrypted as asked. Absent when confirmed or when none was asked for.
   */
  readonly unconfirmed?: string;
  /** Anything else worth a note beside a complete archive (--pipe: its command's stderr let go). */
  readonly note?: string;
}

export interface CheckWritableOptions {
  /** Whether an existing archive may be replaced; otherwise it is refused. */
  readonly overwrite: boolean;
  readonly signal?: AbortSignal;
  /**
   * A local destination found full first removes the temporary archives whose writer is gone
   * from the archive's directory, and is asked again (a backup's run; a dry run changes nothing,
   * and is not refused for a full disk while there are some).
   */
  readonly removeDeadPartials?: boolean;
}

export interface ReadOptions {
  readonly signal?: AbortSignal;
  /**
   * Called at most once, before the first byte, with the stored archive's size when the
   * store knows it without another request (a file's stat, an object's Content-Length); for
   * progress only. A wrapper that changes the bytes (--pipe) does not pass it on.
   */
  readonly onSize?: (bytes: number) => void;
  /**
   * Called at most once, before the first byte, with what names the very object read (an S3
   * object's ETag and VersionId, a file's device, inode, size and times), when the store can
   * say: a restore in pieces reads the same object again (`expectIdentity`).
   */
  readonly onIdentity?: (identity: string) => void;
  /** Read only the object an earlier read's `onIdentity` named: another one there now is refused (StorageError CHANGED). */
  readonly expectIdentity?: string;
}

/** The S3-compatible store a location talks to instead of AWS, and what chose it. */
export interface StoreEndpoint {
  /** Its origin, `scheme://host[:port]` (never credentials). */
  readonly url: string;
  /** `--endpoint`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, `profile NAME, endpoint_url`, `profile NAME, services X`. */
  readonly source: string;
}

/** What `tenants verify` records beside an archive it found intact (prune keeps the newest such backup). */
export interface VerifiedMark {
  /** ISO-8601 time of the verification. */
  readonly verifiedAt: string;
  /** SHA-256 of the manifest the archive was verified against. */
  readonly manifestSha256: string;
  /** The manifest's creation time (lets a listing date an archive whose marker predates it). */
  readonly createdAt: string;
  /**
   * The manifest's tenant, recorded beside a local file (lets a listing attribute, and prune
   * count, an encrypted archive, whose bytes say nothing until decrypted); an S3 object has it
   * in its metadata.
   */
  readonly tenant?: string;
  /**
   * The manifest's tool version, recorded beside a local file: the mark replaces the backup's
   * record (verified-mark.ts StoredRecord), which was where a listing of an encrypted archive
   * found it (its VERSION column showed `-` once the archive was verified). An S3 object keeps
   * it in its metadata; the tag does not carry it.
   */
  readonly toolVersion?: string;
}

/** Where one backup archive lives. */
export interface ArchiveLocation {
  /** How to show the location to a user: no credentials, ever. */
  readonly display: string;

  /** The S3-compatible endpoint an S3 location uses; absent for AWS itself and for local files. */
  readonly endpoint?: StoreEndpoint;

  /** S3: the server-side encryption and storage class the archive's object is created with (empty: the bucket's defaults); absent for local files. */
  readonly objectSettings?: S3ObjectSettings;

  /** The absolute path of a file on this machine (through a --pipe command too); absent for any other store. */
  readonly localPath?: string;

  /**
   * The bytes pass through an operator's command (`--pipe`), which may encrypt them (`age`,
   * `gpg`): a backup keeps its plaintext copies where an encrypted one does (temp-area.ts).
   */
  readonly piped?: boolean;

  /**
   * Cheap pre-flight check before any tenant data is read: rejects with
   * DestinationExistsError when an archive is already there and `overwrite` is false, and
   * with StorageError when the location clearly cannot be written (missing bucket or
   * directory, access denied). A pass is no promise: `write` checks again atomically
   * where the store allows it. `signal` aborting rejects with AbortedError at once (a store
   * that does not answer must not hold up an interrupted command).
   */
  checkWritable(options: CheckWritableOptions): Promise<void>;

  /**
   * Stores every byte of `body` as the archive. All or nothing: when the promise resolves
   * the complete archive is at the location; when it rejects (a store error, `body`
   * erroring, `signal` aborting) nothing new is visible at the location, a previous archive
   * there is untouched, and no temporary file or incomplete multipart upload is left behind.
   * A rejected write has destroyed `body`, so whatever produces it stops too.
   * Memory use is bounded whatever the body's size.
   */
  write(body: Readable, options: WriteOptions): Promise<WriteResult>;

  /**
   * `write`, in pieces that may run in different processes (a backup that continues in
   * another invocation): a piece whose `suspendWhen` answers true once its body has ended
   * commits nothing and answers with where the write stands, which the next piece is given as
   * `resume`; the piece that is not suspended commits the whole archive. Optional: only S3,
   * whose multipart uploads outlive a process, offers it. A failed piece leaves nothing, as
   * a failed `write`.
   */
  writePiece?(body: Readable, options: PieceOptions): Promise<PieceResult>;

  /**
   * The archive a write in pieces committed, when its last piece was killed after the commit
   * and before its caller knew (a piece run again then finds it, where S3 knows the upload no
   * more: NoSuchUpload): when the location holds an archive of `bytes` bytes that carries the
   * write's tenant and creation time, what the location records beside it (S3: the tags) is
   * written again and its WriteResult answered; undefined when it holds no such archive.
   */
  storedPieces?(options: StoredPiecesOptions): Promise<WriteResult | undefined>;

  /** Gives up a write in pieces whose chain broke: what its pieces stored is discarded (an aborted multipart upload). */
  abandonPieces?(at: UploadCheckpoint, options?: ReadOptions): Promise<void>;

  /**
   * Streams the archive's bytes from the first. Rejects with StorageError code NOT_FOUND
   * when there is no archive; failures later surface as an error on the stream (a
   * StorageError). Implementations may resume broken transfers transparently.
   */
  read(options?: ReadOptions): Promise<Readable>;

  /**
   * The last `bytes` bytes (all, if it is shorter) of the archive `read` opened, pinned to it
   * (S3: a ranged GET of its ETag and version): StorageError CHANGED when it was written again
   * since; undefined when the store cannot serve them (it ignores byte ranges, or did not tell
   * the object's size) or nothing was opened. Optional (S3
   * offers it): the restore function reads the footer with it before anything is written
   * (read-archive.ts).
   */
  readTail?(bytes: number, options?: ReadOptions): Promise<Buffer | undefined>;

  /**
   * Records that the archive read last was verified intact: an object tag on S3, a hidden
   * file beside a local archive. Optional (the in-memory location has none). Rejects with
   * StorageError when the mark cannot be written (read-only access); the caller decides
   * whether that matters. A mark never changes the archive's bytes.
   */
  markVerified?(mark: VerifiedMark, options?: ReadOptions): Promise<void>;

  /**
   * Forgets what recorded the archive `read` opened whole (a local verification's mark, or the
   * record its backup wrote beside an encrypted one), after a verification found its bytes damaged:
   * its size and mtime unchanged (bit rot, a write in place under `touch -r`), the listings,
   * `--skip-existing` and prune would count it whole still. Optional; rejects when what
   * records it whole is there and could not be removed (verify then says so with its verdict).
   */
  forgetWhole?(options?: ReadOptions): Promise<void>;

  /**
   * The manifest digest recorded beside the archive `read` opened (the backup's S3 object
   * tag), to be compared with the manifest its bytes carry: a store or caching proxy that
   * serves another object's bytes for this one is found out before a restore moves them in.
   * Undefined when nothing is recorded or it cannot be read (a store without tagging,
   * credentials without s3:GetObjectTagging, a failed call): then there is nothing to compare.
   * Optional (local files record none). `expected`: the digest the bytes carried (a digest
   * that differs is checked against the object's current ETag). Rejects with StorageError
   * CHANGED when the object was written again since it was read, AbortedError when aborted.
   */
  recordedDigest?(options?: ReadOptions & { readonly expected?: string }): Promise<string | undefined>;
  /**
   * What the store says of the archive at the location without reading it (S3: a HEAD and its
   * tags), undefined when there is none. For a run that finds its own archive stored by an
   * earlier attempt (killed before it said so) to say it now. Optional (local files: none).
   */
  storedArchive?(options?: ReadOptions): Promise<StoredArchive | undefined>;
}
