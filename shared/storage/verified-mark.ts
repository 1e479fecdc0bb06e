// How a verification mark (types.ts VerifiedMark) is stored, for the two places that write
// one (local.ts, s3.ts) and the listings that read them back (local-store.ts, s3-store.ts):
//   - beside a local archive, a hidden JSON file `.<archive>.openclaw-verified` that also
//     names the archive's size and mtime: a mark whose archive changed since is ignored;
//   - on an S3 object, the tag `openclaw-verified` (`<time> <manifest sha256>`), next to the
//     backup's own `openclaw-manifest-sha256` tag (s3.ts tagsFor).
// The same hidden file beside a local age-encrypted archive (--encrypt-to, or `--pipe "age …"`,
// `age -a` too, whose output is as long as age makes one of the archive: WriteOptions.bodyWhole),
// whose bytes name no tenant, holds, until a verification replaces it, what the backup recorded
// as it completed the file: its tenant, creation time, tool version and manifest digest, for
// that size and mtime (a local StoredRecord: what S3's metadata and size tag say of an object),
// so that `--skip-existing` and the listings know it without its key.
// Marks are read from places anyone with write access can change, so they are parsed as
// strictly as the archive's own metadata; a malformed mark is no mark. Nor is one another
// user may have written (`markNotTrusted`, the rule file-access.ts notSavedByThisTool gives
// the restore checkpoint): a mark is taken only if its owner is the archive's, and is this
// process's user, root, or the owner of the directory it is in, and neither its group nor
// others may write it; root's is taken too beside an archive of this process's user or the
// directory's owner (whose own marks are taken: `sudo openclaw tenants verify` of a user's
// archive in that user's directory wrote a mark no listing took, the hint to verify it a loop).
// Before, in a backup directory others may write in (mode 1777, root's), another user's junk
// file with a record beside it naming tenant acme and the time now was listed as acme's newest
// encrypted backup, and root's `tenants prune acme --keep-last 1` removed both real backups,
// which that user could not have removed (the sticky bit).

import type { Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';

import { LABEL, SHA256_HEX } from '../archive/manifest.js';
import { writableByOthers } from '../file-access.js';
import { quotedPath, shownPath } from '../format.js';
import { isValidTenantName } from '../tenant/names.js';
import type { VerifiedMark } from './types.js';

export const VERIFIED_MARK_SUFFIX = '.openclaw-verified';
const LOCAL_FORMAT = 'openclawmu-verified';
const STORED_FORMAT = 'openclawmu-stored';
/** Largest mark file read. */
export const MAX_LOCAL_MARK_BYTES = 4096;
/** The S3 tag key (METADATA_PREFIX + 'verified'). */
export const VERIFIED_TAG = 'openclaw-verified';

/** A tool version's length in a record: 1 to 64 characters (none a control character: manifest.ts's LABEL). */
const MAX_TOOL_VERSION_CHARS = 64;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

/** Who made a mark and the archive beside it: their owners, the mark's mode, the directory's owner, and this process's user (undefined where there are no uids). */
export interface MarkOwners {
  readonly mark: { readonly uid: number; readonly mode: number };
  readonly archiveUid: number;
  readonly directoryUid: number;
  readonly self: number | undefined;
}

/** Why a mark is not to be trusted as this tool's (see above), or undefined if it may be. */
export function markNotTrusted({ mark, archiveUid, directoryUid, self }: MarkOwners): string | undefined {
  if (self === undefined) return undefined;
  const writable = writableByOthers(mark);
  if (writable !== undefined) return writable;
  // Root's (a `sudo … tenants verify` of a user's archive) beside an archive whose owner could have written the mark itself: that owner could rewrite the archive anyway.
  const rootsForTrustedOwner = mark.uid === 0 && (archiveUid === self || archiveUid === directoryUid);
  if (mark.uid !== archiveUid && !rootsForTrustedOwner) return `owned by uid ${mark.uid}, the archive by uid ${archiveUid}`;
  if (mark.uid !== self && mark.uid !== 0 && mark.uid !== directoryUid) return ownedByNoneOf(mark.uid, self, directoryUid, "the directory's owner");
  return undefined;
}

/** Who made a local archive at `path`: its owner and mode, the owner of the directory listed (the store's, not the archive's own: see below), and this process's user. */
export interface ArchiveOwners {
  readonly path: string;
  readonly archive: { readonly uid: number; readonly mode: number };
  readonly directoryUid: number;
  readonly self: number | undefined;
}

/**
 * Why a local archive is not to be counted as this tool's backup (see markNotTrusted), or
 * undefined if it may be: its owner must be this process's user, root or the owner of the
 * directory listed, and neither its group nor others may write it. Our plain archive names its
 * tenant in its own bytes, and anyone can make one (the tool is theirs to run): in a directory
 * others may write in (1777, root's), another user's archive of a tenant of their own named
 * acme was acme's newest backup, and root's `prune acme --keep-last 1` would have removed both
 * real ones, as the record rule above had stopped for encrypted ones. The directory listed is
 * the one that counts: a subdirectory another user made there is theirs (a record and junk
 * file in it had been taken too).
 */
export function archiveNotTrusted({ path, archive, directoryUid, self }: ArchiveOwners): string | undefined {
  if (self === undefined) return undefined;
  const othersOwn = archive.uid !== self && archive.uid !== 0 && archive.uid !== directoryUid;
  const othersWrite = (archive.mode & 0o022) !== 0;
  if (!othersOwn && !othersWrite) return undefined;
  // What it is, and the command that makes it counted (a copy made by `cp` or `aws s3 cp` under
  // umask 002 is group-writable): before, the line named the mode and "saved 0600", as for the
  // base dir's own files, and no way out. The command is not last: a listing shows the reason
  // in parentheses, whose `)` would be copied with the path.
  const file = commandWord(path);
  const chmod = othersWrite ? `chmod go-w ${file}` : undefined;
  if (othersOwn) {
    const chown = `chown ${self} ${file}${chmod === undefined ? '' : ` && ${chmod}`}`;
    const fix = self === 0 ? chown : `have root run ${chown}`;
    return `${ownedByNoneOf(archive.uid, self, directoryUid, 'the owner of the directory listed')}: ${fix} if it is a backup you trust`;
  }
  return `writable by ${(archive.mode & 0o020) !== 0 ? 'its group' : 'others'} (mode ${(archive.mode & 0o7777).toString(8).padStart(4, '0')}): ${chmod!} if it is a backup you trust`;
}

/** `path` as one shell word where it shows as itself (else as shown: escaped, in double quotes), for a command a message suggests. */
function commandWord(path: string): string {
  if (shownPath(path) !== path) return quotedPath(path);
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(path) ? path : `'${path.replaceAll("'", `'\\''`)}'`;
}

/**
 * "owned by uid U, neither …" naming each owner whose files are taken once: root's listing of
 * its own directory had said "neither this process's user (uid 0), root, nor the owner of the
 * directory listed (uid 0)", three names for one.
 */
function ownedByNoneOf(uid: number, self: number, directoryUid: number, directory: string): string {
  const owners = [
    self === 0 ? "this process's user (root)" : `this process's user (uid ${self})`,
    ...(self === 0 ? [] : ['root']),
    ...(directoryUid === self || directoryUid === 0 ? [] : [`${directory} (uid ${directoryUid})`]),
  ];
  if (owners.length === 1) return `owned by uid ${uid}, not ${owners[0]}`;
  return `owned by uid ${uid}, neither ${owners.slice(0, -1).join(', ')}${owners.length > 2 ? ',' : ''} nor ${owners.at(-1)}`;
}

/** `.<archive>.openclaw-verified` in the archive's directory. */
export function verifiedMarkPath(archivePath: string): string {
  return join(dirname(archivePath), `.${basename(archivePath)}${VERIFIED_MARK_SUFFIX}`);
}

/** The archive a mark at `markPath` (as `verifiedMarkPath` names it) is for. */
export function markedArchivePath(markPath: string): string {
  return join(dirname(markPath), basename(markPath).slice(1, -VERIFIED_MARK_SUFFIX.length));
}

export function formatLocalMark(mark: VerifiedMark, archive: Pick<Stats, 'size' | 'mtimeMs'>): Buffer {
  // A version no listing would take (a manifest allows longer labels) is left out, not the mark with it.
  const { toolVersion, ...rest } = mark;
  const kept = toolVersion !== undefined && isToolVersion(toolVersion) ? { ...rest, toolVersion } : rest;
  return Buffer.from(`${JSON.stringify({ format: LOCAL_FORMAT, ...kept, archiveBytes: archive.size, archiveMtimeMs: archive.mtimeMs })}\n`);
}

/** The mark in `bytes`, if it is well formed and names this size and mtime of the archive. */
export function parseLocalMark(bytes: Buffer, archive: Pick<Stats, 'size' | 'mtimeMs'>): VerifiedMark | undefined {
  const record = parsedObject(bytes);
  if (record === undefined || record.format !== LOCAL_FORMAT || record.archiveBytes !== archive.size || record.archiveMtimeMs !== archive.mtimeMs) return undefined;
  const mark = markOf(record.verifiedAt, record.manifestSha256, record.createdAt);
  // Marks before this version name no tenant; nor, as taken, does one naming what no tenant
  // is called (`../x`, control characters): it would take the archive away from the tenant its
  // path names, into a listing no one asks for.
  const tenant = record.tenant;
  // Marks before this version name no tool version (the backup's record they replaced did); a malformed one is no mark.
  const toolVersion = record.toolVersion;
  if (mark === undefined || (toolVersion !== undefined && !isToolVersion(toolVersion))) return undefined;
  return {
    ...mark,
    ...(typeof tenant === 'string' && isValidTenantName(tenant) && { tenant }),
    ...(toolVersion !== undefined && { toolVersion }),
  };
}

/** A tool version as records and marks hold it: 1 to 64 characters, none a control character. */
function isToolVersion(value: unknown): value is string {
  return typeof value === 'string' && value.length >= 1 && value.length <= MAX_TOOL_VERSION_CHARS && LABEL.test(value);
}

/** What the backup that completed a local archive recorded beside it (in the mark's file, until a verification's mark replaces it). */
export interface StoredRecord {
  readonly tenant: string;
  readonly createdAt: string;
  readonly toolVersion: string;
  readonly formatVersion: number;
  readonly manifestSha256?: string;
}

export function formatLocalStoredRecord(record: StoredRecord, archive: Pick<Stats, 'size' | 'mtimeMs'>): Buffer {
  return Buffer.from(`${JSON.stringify({ format: STORED_FORMAT, ...record, archiveBytes: archive.size, archiveMtimeMs: archive.mtimeMs })}\n`);
}

/** The record in `bytes`, if it is well formed and names this size and mtime of the archive. */
export function parseLocalStoredRecord(bytes: Buffer, archive: Pick<Stats, 'size' | 'mtimeMs'>): StoredRecord | undefined {
  const record = parsedObject(bytes);
  if (record === undefined || record.format !== STORED_FORMAT || record.archiveBytes !== archive.size || record.archiveMtimeMs !== archive.mtimeMs) return undefined;
  const { tenant, createdAt, toolVersion, formatVersion, manifestSha256 } = record;
  if (typeof tenant !== 'string' || !isValidTenantName(tenant)) return undefined;
  if (typeof createdAt !== 'string' || !ISO_TIME.test(createdAt) || Number.isNaN(Date.parse(createdAt))) return undefined;
  if (!isToolVersion(toolVersion)) return undefined;
  if (typeof formatVersion !== 'number' || !Number.isSafeInteger(formatVersion) || formatVersion < 1) return undefined;
  if (manifestSha256 !== undefined && (typeof manifestSha256 !== 'string' || !SHA256_HEX.test(manifestSha256))) return undefined;
  return { tenant, createdAt, toolVersion, formatVersion, ...(manifestSha256 !== undefined && { manifestSha256 }) };
}

function parsedObject(bytes: Buffer): Record<string, unknown> | undefined {
  if (bytes.length > MAX_LOCAL_MARK_BYTES) return undefined;
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The tag's value: `<verifiedAt> <manifestSha256> <createdAt>` (tag values allow spaces, not JSON's quotes; the tenant is in the object's metadata). */
export function formatMarkTag(mark: VerifiedMark): string {
  return `${mark.verifiedAt} ${mark.manifestSha256} ${mark.createdAt}`;
}

export function parseMarkTag(value: string | undefined): VerifiedMark | undefined {
  if (value === undefined) return undefined;
  const [verifiedAt, manifestSha256, createdAt, ...rest] = value.split(' ');
  return rest.length === 0 ? markOf(verifiedAt, manifestSha256, createdAt) : undefined;
}

function markOf(verifiedAt: unknown, manifestSha256: unknown, createdAt: unknown): VerifiedMark | undefined {
  if (typeof verifiedAt !== 'string' || !ISO_TIME.test(verifiedAt) || Number.isNaN(Date.parse(verifiedAt))) return undefined;
  if (typeof createdAt !== 'string' || !ISO_TIME.test(createdAt) || Number.isNaN(Date.parse(createdAt))) return undefined;
  if (typeof manifestSha256 !== 'string' || !SHA256_HEX.test(manifestSha256)) return undefined;
  return { verifiedAt, manifestSha256, createdAt };
}
