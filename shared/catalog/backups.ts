// `tenants backups NAME --in LOCATION`: one tenant's archives in a directory or below an S3
// prefix, newest first, from what each says about itself without being downloaded (a store's
// `inspect`: first bytes, the last bytes of the tenant's own archives, S3 metadata and tags,
// verification marks).
//
// What an object is, from its first bytes: our archive (the marker frame names the tenant,
// and from 0.1.0's listing on its creation time and tool version; the footer frame at the end
// the manifest digest), an age-encrypted file (`age-encryption.org/v1`), a zstd stream of
// another tool, or unknown (piped through some other command); or, for an S3 object in an
// archive storage class (Glacier), unread: archived. An S3 object also carries what
// the backup recorded beside it (tenant, creation time, tool version; the digest as a tag),
// whatever its bytes are, so an encrypted S3 archive is dated and attributed as well as a
// plain one. A local file whose bytes do not name its tenant (encrypted, from another tool, or
// with `.tar` in its name) is attributed by its path: listed when a directory on its way (the
// store's own included) is named after the tenant. The marker and footer are parsed as strictly as restore parses them;
// a malformed one makes the entry "unknown" with a note, never the listing fail.
//
// Dates are the manifest's creation time (marker, metadata, or a verification mark that
// recorded it), never the store's object time, which a copy or a restore of the bucket changes.

import { AGE_MAGIC_BYTES, isAgeFile, summarizeAgeHeader } from '../age/probe.js';
import {
  ARCHIVE_MARKER_NIBBLE,
  bytesAfterArchiveFooter,
  findArchiveFooterFrame,
  parseArchiveMarker,
  type ArchiveFooter,
  type ArchiveMarker,
} from '../archive/manifest.js';
import { SKIPPABLE_HEADER_BYTES, SKIPPABLE_MAGIC_BASE, ZSTD_MAGIC } from '../archive/zstd-format.js';
import { quotedPath } from '../format.js';
import { describeError, StorageError } from '../errors.js';
import type { ArchiveStore, ObjectFacts, StoredObject } from '../storage/archive-store.js';
import type { ArchiveMetadata, StoreEndpoint } from '../storage/types.js';
import { throwIfAborted } from '../storage/streams.js';
import { assertTenantName } from '../tenant/names.js';

/** Objects inspected at once (each a few small reads or requests). */
const INSPECT_CONCURRENCY = 8;

/**
 * Most backups of one tenant a listing keeps (each a few hundred bytes, held to be sorted:
 * ~33 MiB): eleven years of hourly backups. The objects of other tenants are not held, so a
 * store listed in parts (S3) may hold any number of them.
 */
export const MAX_LISTED_BACKUPS = 100_000;

export type BackupContent =
  /** Our archive, readable as it is. */
  | 'archive'
  /** A zstd stream of another tool (e.g. `tar | zstd`): restorable, not verifiable per file. */
  | 'zstd'
  /** An age-encrypted file (`--pipe "age -r …"`). */
  | 'encrypted'
  /** Bytes of some other `--pipe` command, or not an archive. */
  | 'unknown'
  /** In an S3 archive storage class (Glacier): its bytes cannot be read until it is restored. */
  | 'archived';

export interface BackupEntry {
  /** What `tenants restore --from` / `verify --from` take. */
  readonly location: string;
  /** Path or key below the listed location. */
  readonly name: string;
  /** The tenant the archive says it holds; undefined when only its path names the tenant. */
  readonly tenant?: string;
  /** The manifest's creation time (ISO 8601); undefined when nothing recorded it. */
  readonly createdAt?: string;
  readonly createdAtFrom?: 'archive' | 'metadata' | 'verification';
  readonly bytes: number;
  /** The store's own time of the object (for reference; not used to order or prune). */
  readonly modifiedAt: string;
  /** The size of the object the backup completed, as it recorded it (S3 tag). */
  readonly storedBytes?: number;
  /** The S3 ETag as listed: a prune removes the object only while it still has it. */
  readonly etag?: string;
  readonly toolVersion?: string;
  readonly manifestSha256?: string;
  readonly content: BackupContent;
  /** The storage class of an `archived` object (GLACIER, DEEP_ARCHIVE…). */
  readonly storageClass?: string;
  /** Recipient stanza types of an encrypted archive (e.g. ["X25519"]). */
  readonly recipients?: readonly string[];
  /** When `tenants verify` last found this archive intact (a mark beside it). */
  readonly verifiedAt?: string;
  /**
   * Our archive whose last bytes hold no footer although its marker says it was written by a
   * version that ends every archive with one: the file or object is cut short (a copy that
   * stopped, a full disk, a multipart upload someone completed early) or its end is damaged
   * (a footer naming another tenant than its marker, which restore refuses).
   */
  readonly incomplete?: true;
  /**
   * An S3 object dated by its metadata whose bytes cannot show that it is whole (encrypted,
   * piped through another tool, archived to Glacier: no footer to read), and which nothing
   * recorded whole either: no size tag from the backup that completed it (nor, from a version
   * before that tag, the digest tag), no verification mark. A multipart upload someone
   * completed by hand, a copy cut short by another tool, or a store without object tagging.
   */
  readonly unconfirmed?: true;
  /** Its S3 tags could not be read (access denied): a verification mark or the backup's size tag may be there, unseen. */
  readonly tagsDenied?: true;
  /**
   * A local file this tool would not have written as this process's user: another user's (not
   * this process's user's, root's, nor the listed directory's owner's), or writable by others.
   * Anyone can make an archive naming any tenant; counted, another user's would take the place
   * of real backups in a directory all may write in. Says whose, or who may write it.
   */
  readonly untrusted?: string;
  /** Why something could not be read. */
  readonly note?: string;
}

export interface BackupsListing {
  readonly operation: 'backups';
  readonly tenant: string;
  readonly location: string;
  /** The S3-compatible endpoint listed, and what chose it; absent for AWS and local directories. */
  readonly endpoint?: StoreEndpoint;
  /** Newest first; those without a creation time last, by object time. */
  readonly backups: readonly BackupEntry[];
  /** Objects looked at that belong to other tenants or are not attributable. */
  readonly otherObjects: number;
  /**
   * The oldest backups left out of `backups` to keep an answer within a limit (a Lambda
   * response holds at most 6 MB); absent when every backup is listed.
   */
  readonly omitted?: number;
  /** Objects listed but not looked at (their names failed the listing's `looksAt`); absent when it looked at all. */
  readonly notLookedAt?: number;
  /** A page's (BackupsPage): the name of its last object, to ask the next page `after`; absent on the last page. */
  readonly next?: string;
}

/**
 * One page of a listing (the gateway's answers, each within a Lambda response): the objects
 * whose names sort after `after` (in the store's order: S3's is by UTF-8 bytes), at most
 * `limit` of them, are listed (from there, where the store can: ArchiveStore.listPage) and inspected; the page lists
 * those of them that are the tenant's backups and counts the others. mergeBackupsPages makes
 * the pages one listing, the same as that of the whole store.
 */
export interface BackupsPage {
  readonly after?: string;
  readonly limit: number;
}

export async function listBackups(
  store: ArchiveStore,
  tenant: string,
  options: {
    readonly signal?: AbortSignal;
    readonly page?: BackupsPage;
    /** Which listed objects to inspect, by name alone (on S3 each inspection is a request); the rest are counted in `notLookedAt`. @default all */
    readonly looksAt?: (object: StoredObject) => boolean;
    /** Told what each object looked at turned out to be (whoever's it is), before the next objects are taken. */
    readonly looked?: (object: StoredObject, entry: BackupEntry) => void;
  } = {},
): Promise<BackupsListing> {
  assertTenantName(tenant);
  const { signal, page, looksAt, looked } = options;
  // Only the end of the tenant's own archives that promise a footer is read: on S3 each end is a request.
  const wantsTail = (head: Buffer) => {
    const marker = classifyHead(head, []).marker;
    return marker?.tenant === tenant && marker.createdAt !== undefined;
  };
  // An object whose marker, or else metadata, names another tenant is that tenant's whatever its
  // tags say (describeStoredArchive): its tags are not read (on S3 a request per object, half
  // of those of a bucket-wide prefix). One that names none may be attributed by its verification mark.
  const wantsTags = (head: Buffer, metadata: Partial<ArchiveMetadata> | undefined) => {
    const named = classifyHead(head, []).marker?.tenant ?? metadata?.tenant;
    return named === undefined || named === tenant;
  };
  // A page of a store that lists from where the page before stopped (S3: StartAfter) costs the requests of its own objects only.
  let nextPage: string | undefined;
  const parts = await (async (): Promise<AsyncIterator<StoredObject[]>> => {
    // A whole listing, an answer of the store at a time where it can (S3: 1,000 objects): each
    // inspected before the next is taken, not 100,000 objects listed first and all held.
    if (page === undefined) return store.listInParts !== undefined ? store.listInParts({ signal })[Symbol.asyncIterator]() : oneArray(await store.list({ signal }));
    const listed = store.listPage !== undefined ? await store.listPage(page, { signal }) : pageOfObjects(await store.list({ signal }), page);
    nextPage = listed.next;
    return oneArray(listed.objects);
  })();
  const entries: BackupEntry[] = [];
  let listedObjects = 0;
  let gone = 0;
  let notLookedAt = 0;
  let part: readonly StoredObject[] = [];
  let next = 0;
  let partsDone = false;
  let nextPart: Promise<void> | undefined;
  // The next object to inspect: the workers take from the current part; the first to find it
  // used up asks for the next, the others wait for the same.
  const take = async (): Promise<StoredObject | undefined> => {
    for (;;) {
      if (next < part.length) return part[next++]!;
      if (partsDone) return undefined;
      nextPart ??= parts.next().then((result) => {
        if (result.done === true) partsDone = true;
        else [part, next, listedObjects] = [result.value, 0, listedObjects + result.value.length];
        nextPart = undefined;
      });
      await nextPart;
    }
  };
  const worker = async () => {
    for (let object = await take(); object !== undefined; object = await take()) {
      throwIfAborted(signal);
      if (looksAt?.(object) === false) {
        notLookedAt += 1;
        continue;
      }
      let facts: ObjectFacts;
      try {
        facts = await store.inspect(object, { signal, wantsTail, wantsTags });
      } catch (error) {
        // Removed since it was listed (another prune of the same place was quicker): not there to list.
        if (!(error instanceof StorageError && error.code === 'NOT_FOUND')) throw error;
        gone += 1;
        continue;
      }
      const entry = describeStoredArchive(object, facts);
      looked?.(object, entry);
      if (!belongsTo(entry, tenant, store.baseName)) continue;
      if (entries.length >= MAX_LISTED_BACKUPS) throw tooManyBackups(store.display, tenant);
      entries.push(entry);
    }
  };
  try {
    await Promise.all(Array.from({ length: INSPECT_CONCURRENCY }, worker));
  } finally {
    // A listing stopped part way (an inspection failed, aborted) ends the store's walk: a local one holds its directories open.
    if (!partsDone) void parts.return?.().catch(() => {});
  }
  return {
    operation: 'backups',
    tenant,
    location: store.display,
    ...(store.endpoint !== undefined && { endpoint: store.endpoint }),
    backups: newestFirst(entries),
    otherObjects: listedObjects - gone - notLookedAt - entries.length,
    ...(looksAt !== undefined && { notLookedAt }),
    ...(nextPage !== undefined && { next: nextPage }),
  };
}

/** The refusal of a listing that holds more than MAX_LISTED_BACKUPS of the tenant's backups. */
export function tooManyBackups(location: string, tenant: string): StorageError {
  return new StorageError(`${location} holds more than ${MAX_LISTED_BACKUPS} backups of ${quotedPath(tenant)}: give a narrower prefix or directory`, 'TOO_LARGE');
}

function oneArray<T>(value: T): AsyncIterator<T> {
  let given = false;
  return { next: async () => (given ? { done: true, value: undefined } : ((given = true), { done: false, value })) };
}

/** The objects of one page of a whole listing (a store without `listPage`): sorted by name, those after `after`, at most `limit`; `next` when more follow. */
function pageOfObjects(objects: readonly StoredObject[], page: BackupsPage): { objects: StoredObject[]; next?: string } {
  const after = page.after;
  const sorted = objects.filter((object) => after === undefined || object.name > after).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (sorted.length <= page.limit) return { objects: sorted };
  const shown = sorted.slice(0, page.limit);
  return { objects: shown, next: shown[shown.length - 1]!.name };
}

/**
 * The pages of a listing (BackupsPage, read one after another) as one listing, ordered as a
 * listing of the whole store is: what `tenants backups` shows through the gateway.
 */
export function mergeBackupsPages(pages: readonly BackupsListing[]): BackupsListing {
  const { next: _next, omitted: _omitted, ...first } = pages[0]!;
  return {
    ...first,
    backups: newestFirst(pages.flatMap((page) => page.backups)),
    otherObjects: pages.reduce((total, page) => total + page.otherObjects, 0),
  };
}

/** What one stored object is, from its facts. Pure. */
export function describeStoredArchive(object: StoredObject, facts: ObjectFacts): BackupEntry {
  const notes: string[] = [];
  const head = facts.storageClass !== undefined ? { content: 'archived' as const } : classifyHead(facts.head, notes);
  if (facts.storageClass !== undefined) notes.push(`in the ${facts.storageClass} storage class: restore it (aws s3api restore-object) before a restore or verify reads it`);
  const { footer, frameBytes, malformed } = facts.tail === undefined || head.content !== 'archive' ? {} : findFooter(facts.tail);
  if (malformed !== undefined) notes.push(malformed);
  if (facts.notTrusted !== undefined) notes.push(`not counted as a backup: ${facts.notTrusted}`);
  if (facts.tagsDenied === true) notes.push('its tags could not be read (access denied: s3:GetObjectTagging): a verification mark or the size its backup stored is unseen');
  const metadata = facts.metadata;
  // An encrypted local file names its tenant in its verification mark only (a mark for this size and mtime).
  const tenant = head.marker?.tenant ?? metadata?.tenant ?? (head.marker === undefined ? facts.verified?.tenant : undefined);
  const createdAt = head.marker?.createdAt ?? metadata?.createdAt ?? facts.verified?.createdAt;
  const createdAtFrom = head.marker?.createdAt !== undefined ? 'archive' : metadata?.createdAt !== undefined ? 'metadata' : facts.verified !== undefined ? 'verification' : undefined;
  const manifestSha256 = footer?.manifestSha256 ?? facts.manifestSha256 ?? facts.verified?.manifestSha256;
  // Restore and verify refuse such an archive: its end is no end of this backup.
  const othersFooter = footer !== undefined && footer.tenant !== head.marker?.tenant;
  if (othersFooter) notes.push(`the footer names tenant ${quotedPath(footer.tenant)}`);
  // The marker's creation time and the footer came in the same version: a dated marker promises a footer.
  const footless = footer === undefined && facts.tail !== undefined && head.marker?.createdAt !== undefined;
  // A footer that is there but cannot be read was named above: it is no missing one.
  if (footless && malformed === undefined) {
    const appended = bytesAfterArchiveFooter(facts.tail!);
    notes.push(appended === undefined ? 'no footer at its end: the file is cut short or its end is damaged' : `${appended} bytes follow its footer: appended by another tool?`);
  }
  // The size the backup completed, where it recorded one: any other is not what it stored.
  const resized = facts.storedBytes !== undefined && facts.storedBytes !== object.bytes;
  if (resized) notes.push(`${object.bytes} bytes, but the backup that wrote it stored ${facts.storedBytes}: cut short or replaced by another tool`);
  // The length the footer gives, where it gives one (written from 0.1.x on): a cut in the middle whose end survived shows here.
  const footerBytes = footer?.bytesBefore === undefined ? undefined : footer.bytesBefore + frameBytes!;
  const misfit = footerBytes !== undefined && footerBytes !== object.bytes && !resized;
  if (misfit) notes.push(`${object.bytes} bytes, but its footer says the archive is ${footerBytes}: cut in its middle, or bytes added`);
  const incomplete = footless || othersFooter || resized || misfit;
  // A mark for another digest is about another version of the archive.
  const verifiedAt = facts.verified !== undefined && (manifestSha256 === undefined || facts.verified.manifestSha256 === manifestSha256) ? facts.verified.verifiedAt : undefined;
  // Whole by its own bytes only where a footer can be read: for the rest, what the backup recorded as it completed (or a verification).
  const unconfirmed =
    !incomplete && createdAt !== undefined && createdAtFrom === 'metadata' && head.content !== 'archive' && facts.storedBytes === undefined && facts.manifestSha256 === undefined && verifiedAt === undefined;
  if (unconfirmed) {
    notes.push(
      `nothing shows it whole: its bytes cannot (${head.content === 'archived' ? 'archived' : head.content === 'encrypted' ? 'encrypted' : 'not our plain archive'}) and it carries no size tag from the backup that completed it (completed by another tool, cut short, a store without object tagging, or its backup could not tag it: throttled, denied?); tenants verify it to count it`,
    );
  }
  // Or, where the mark is for this archive, the verification's: beside a local encrypted archive it replaced the backup's record.
  const toolVersion = head.marker?.toolVersion ?? metadata?.toolVersion ?? (verifiedAt !== undefined ? facts.verified?.toolVersion : undefined);
  return {
    location: object.location,
    name: object.name,
    ...(tenant !== undefined && { tenant }),
    ...(createdAt !== undefined && { createdAt: new Date(createdAt).toISOString(), createdAtFrom }),
    bytes: object.bytes,
    ...(facts.storedBytes !== undefined && { storedBytes: facts.storedBytes }),
    modifiedAt: object.modifiedAt.toISOString(),
    ...(object.etag !== undefined && { etag: object.etag }),
    ...(toolVersion !== undefined && { toolVersion }),
    ...(manifestSha256 !== undefined && { manifestSha256 }),
    content: head.content,
    ...(facts.storageClass !== undefined && { storageClass: facts.storageClass }),
    ...(head.recipients !== undefined && { recipients: head.recipients }),
    ...(verifiedAt !== undefined && { verifiedAt }),
    ...(incomplete && { incomplete: true as const }),
    ...(unconfirmed && { unconfirmed: true as const }),
    ...(facts.tagsDenied === true && { tagsDenied: true as const }),
    ...(facts.notTrusted !== undefined && { untrusted: facts.notTrusted }),
    ...(notes.length > 0 && { note: notes.join('; ') }),
  };
}

/**
 * How to make a backup whose bytes name no tenant count: an encrypted one by a verification; one
 * some other --pipe command made (gpg, openssl enc, zstd: a backup records none whole, whether
 * it is complete cannot be told) by a verification through the command that undoes it. Before,
 * an interrupted `backup --all --pipe "gpg …"` rerun with --skip-existing was told only to pass
 * --overwrite for each tenant it had backed up.
 */
function noTenantHint(content: BackupContent): string {
  if (content === 'encrypted') return ': tenants verify it to record whose it is';
  if (content === 'unknown' || content === 'zstd') return ": if a backup piped through a command other than age, tenants verify it with --pipe and the command that undoes it to record whose it is";
  return '';
}

/**
 * The object described, and why it is no complete backup of `tenant` by what it says of itself
 * (undefined: it is one). Our plain archive must end with a footer naming the tenant as its
 * marker does; bytes that cannot show it (encrypted, archived) must be the tenant's by their
 * metadata or verification, at the size their backup recorded as it completed them, or verified.
 */
export function wholeBackupOf(object: StoredObject, facts: ObjectFacts, tenant: string): { readonly entry: BackupEntry; readonly problem?: string } {
  const entry = describeStoredArchive(object, facts);
  const problem = ((): string | undefined => {
    if (entry.tenant === undefined) return `its ${entry.content === 'encrypted' ? 'encrypted ' : ''}bytes name no tenant${noTenantHint(entry.content)}`;
    if (entry.tenant !== tenant) return `it is a backup of tenant ${quotedPath(entry.tenant)}`;
    if (facts.notTrusted !== undefined) return `another user's file, or writable by others: ${facts.notTrusted}`;
    if (entry.incomplete === true || entry.unconfirmed === true) return entry.note ?? 'it is cut short';
    if (entry.content === 'archive') {
      const footer = facts.tail === undefined ? undefined : findFooter(facts.tail).footer;
      if (footer === undefined) return entry.note ?? 'no footer at its end shows it whole (written by a version before footers?)';
      if (footer.tenant !== tenant) return `the footer names tenant ${quotedPath(footer.tenant)}`;
      // Its first and last bytes cannot show a cut in its middle without the length (older footers): what recorded it whole can.
      if (footer.bytesBefore !== undefined || entry.verifiedAt !== undefined || facts.storedBytes === object.bytes) return undefined;
      return 'its footer gives no length (written by a version before it did), so a cut in its middle would not show: tenants verify it to count it';
    }
    if (entry.verifiedAt !== undefined || facts.storedBytes === object.bytes) return undefined;
    return entry.note ?? `${entry.content === 'unknown' ? 'not our archive' : `its bytes (${entry.content}) cannot show it whole`} and nothing recorded it whole`;
  })();
  return { entry, ...(problem !== undefined && { problem }) };
}

function classifyHead(head: Buffer, notes: string[]): { content: BackupContent; marker?: ArchiveMarker; recipients?: readonly string[] } {
  if (head.length >= SKIPPABLE_HEADER_BYTES && head.readUInt32LE(0) === SKIPPABLE_MAGIC_BASE + ARCHIVE_MARKER_NIBBLE) {
    const size = head.readUInt32LE(4);
    if (SKIPPABLE_HEADER_BYTES + size > head.length) notes.push('its marker frame is larger than a marker can be');
    else {
      try {
        const marker = parseArchiveMarker(head.subarray(SKIPPABLE_HEADER_BYTES, SKIPPABLE_HEADER_BYTES + size));
        if (marker !== undefined) return { content: 'archive', marker };
      } catch (error) {
        notes.push(describeError(error));
        return { content: 'unknown' };
      }
    }
  }
  if (head.length >= AGE_MAGIC_BYTES && isAgeFile(head)) {
    try {
      const summary = summarizeAgeHeader(head);
      return { content: 'encrypted', ...(summary !== undefined && { recipients: summary.recipientTypes }) };
    } catch (error) {
      notes.push(describeError(error));
      return { content: 'encrypted' };
    }
  }
  if (head.length >= 4 && head.readUInt32LE(0) === ZSTD_MAGIC) return { content: 'zstd' };
  if (head.length >= 4 && (head.readUInt32LE(0) & 0xfffffff0) === SKIPPABLE_MAGIC_BASE) return { content: 'zstd' };
  return { content: 'unknown' };
}

/** Our footer frame (and its length), if the tail ends with one; `malformed`, what is wrong with one that cannot be read. */
function findFooter(tail: Buffer): { footer?: ArchiveFooter; frameBytes?: number; malformed?: string } {
  try {
    return findArchiveFooterFrame(tail) ?? {};
  } catch (error) {
    return { malformed: describeError(error) };
  }
}

/**
 * The tenant's by what the archive says; else, if it says nothing, by a directory named after
 * the tenant, for what looks like an archive: encrypted, a zstd stream, or bytes of another
 * `--pipe` command under a name with `.tar` in it (a tenant's own files lying in such a
 * directory are not its backups).
 */
function belongsTo(entry: BackupEntry, tenant: string, storeName: string): boolean {
  if (entry.tenant !== undefined) return entry.tenant === tenant;
  if ((entry.content === 'unknown' || entry.content === 'archived') && !entry.name.split('/').at(-1)!.includes('.tar')) return false;
  return inTenantDirectory(entry.name, tenant, storeName);
}

/** Whether a directory on the name's way (the store's own included) is named after the tenant. */
export function inTenantDirectory(name: string, tenant: string, storeName: string): boolean {
  return [storeName, ...name.split('/').slice(0, -1)].includes(tenant);
}

function newestFirst(entries: BackupEntry[]): BackupEntry[] {
  const time = (entry: BackupEntry) => (entry.createdAt === undefined ? undefined : Date.parse(entry.createdAt));
  return entries.sort((a, b) => {
    const [ta, tb] = [time(a), time(b)];
    if (ta !== undefined && tb !== undefined && ta !== tb) return tb - ta;
    if (ta !== undefined && tb === undefined) return -1;
    if (ta === undefined && tb !== undefined) return 1;
    const byObject = Date.parse(b.modifiedAt) - Date.parse(a.modifiedAt);
    return byObject !== 0 ? byObject : a.location < b.location ? -1 : 1;
  });
}
