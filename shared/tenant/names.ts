// Validation of every name that comes from outside: tenant names (the gateway's tenant ID
// rule), `--as` values and archive entry paths. Pure string checks, no file system: the
// extractor and the CLI both call these, so a rule lives in exactly one place.

import { InvalidNameError, UnsafeArchiveError } from '../errors.js';
import { quotedPath } from '../format.js';
import { rawByteLength } from '../raw-name.js';

/** The gateway's tenant ID rule. */
export const TENANT_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/** Linux's limits on one path component and on a whole path (PATH_MAX less its NUL): longer names cannot be created anyway. */
const NAME_MAX_BYTES = 255;
export const PATH_MAX_BYTES = 4095;

/** Prefix every archive entry lives under: `tenants/<name>/…`. */
export const ARCHIVE_ROOT = 'tenants';

/** A tenant's top-level directory of ephemeral terminal state: never backed up, never restored. */
export const EPHEMERAL_DIR = 'pty';

export function isValidTenantName(name: string): boolean {
  return TENANT_NAME_PATTERN.test(name);
}

const SHOWN_NAME_CHARS = 64;

/** Throws unless `name` is a valid tenant name; `what` names the source in the message. */
export function assertTenantName(name: string, what = 'tenant name'): string {
  if (!isValidTenantName(name)) {
    // A name from outside may be of any length: the message quotes enough of it to recognise.
    const shown = name.length > SHOWN_NAME_CHARS ? `${quotedPath(name.slice(0, SHOWN_NAME_CHARS))}… (${name.length} characters)` : quotedPath(name);
    const lowercase = name.toLowerCase();
    if (isValidTenantName(lowercase)) throw new InvalidNameError(`invalid ${what} ${shown}: tenant names are lowercase: write ${quotedPath(lowercase)}`);
    throw new InvalidNameError(
      `invalid ${what} ${shown}: must match ${TENANT_NAME_PATTERN.source} ` +
        '(lowercase letters, digits, "-" and "_", at most 32 characters, no "/" or "..")',
    );
  }
  return name;
}

/** An archive entry name split into the tenant it belongs to and its path inside the tenant. */
export interface EntryLocation {
  readonly tenant: string;
  /** Path segments below `tenants/<tenant>/`; empty for the tenant root itself. */
  readonly segments: readonly string[];
}

/**
 * Pure first stage of extraction: turn a tar entry name into a location inside a tenant,
 * refusing anything that could point elsewhere. A trailing "/" (directory entries) and
 * "./" prefixes from GNU tar are accepted; everything else odd is refused.
 *
 * A segment may hold any character Linux allows in a file name, NUL aside (no file name
 * holds one, and a C string would end there): a backslash or a control character is no
 * path separator on Linux, so it cannot lead out of the tenant. Messages show names escaped
 * (format.ts). A name starting with a drive letter (`C:`) is refused as well: it would be
 * outside `tenants/` anyway, and says what the archive was made for.
 */
export function parseEntryName(name: string): EntryLocation {
  if (name.length === 0) throw new UnsafeArchiveError('entry with an empty name');
  if (name.includes('\0')) throw new UnsafeArchiveError('entry name with a NUL character', name);
  if (name.startsWith('/')) throw new UnsafeArchiveError('entry with an absolute path', name);
  if (/^[A-Za-z]:/.test(name)) throw new UnsafeArchiveError('entry with a drive-letter path', name);

  let rest = name;
  while (rest.startsWith('./')) rest = rest.slice(2);
  if (rest.endsWith('/')) rest = rest.slice(0, -1);
  if (rawByteLength(rest) > PATH_MAX_BYTES) throw new UnsafeArchiveError(`entry name longer than ${PATH_MAX_BYTES} bytes`, name);
  const segments = rest.split('/');
  for (const segment of segments) {
    if (segment === '..') throw new UnsafeArchiveError('entry with a ".." segment', name);
    if (segment === '.' || segment === '') throw new UnsafeArchiveError('entry with an empty or "." segment', name);
    if (rawByteLength(segment) > NAME_MAX_BYTES) {
      throw new UnsafeArchiveError(`entry with a path component longer than ${NAME_MAX_BYTES} bytes`, name);
    }
  }
  if (segments[0] !== ARCHIVE_ROOT || segments.length < 2) {
    throw new UnsafeArchiveError(
      `entry outside ${ARCHIVE_ROOT}/<name>/ (an archive holds one tenant as ${ARCHIVE_ROOT}/<name>/…: make it with tar -C <the directory holding ${ARCHIVE_ROOT}/> --zstd -cf FILE ${ARCHIVE_ROOT}/<name>)`,
      name,
    );
  }
  const tenant = segments[1]!;
  if (!isValidTenantName(tenant)) throw new UnsafeArchiveError('entry for an invalid tenant name', name);
  return { tenant, segments: segments.slice(2) };
}

/**
 * Whether `name` is the directory that holds the tenant rather than a part of it: `./` or
 * `tenants/` (with any `./` before it, with or without the trailing slash), which GNU tar
 * archives first when given `.` or `tenants` (`tar -C base -cf - tenants`). A restore
 * creates neither, so such an entry is passed over.
 */
export function isArchiveRootName(name: string): boolean {
  let rest = name;
  while (rest.startsWith('./')) rest = rest.slice(2);
  if (rest.endsWith('/')) rest = rest.slice(0, -1);
  return rest === '' || rest === '.' || rest === ARCHIVE_ROOT;
}

/** `tenants/<tenant>/<relative>` (directories get a trailing slash from the tar packer). */
export function entryNameFor(tenant: string, relativePath: string): string {
  return relativePath === '' ? `${ARCHIVE_ROOT}/${tenant}` : `${ARCHIVE_ROOT}/${tenant}/${relativePath}`;
}

/** Tenant names (and other names of ours, ASCII) in order: by their UTF-16 units, as `sort()` without a comparator, whatever the locale (localeCompare's is not). */
export function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
