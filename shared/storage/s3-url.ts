// Strict parsing of `s3://bucket/key` locations. Pure string checks, run before any S3
// client exists, so a typo fails in microseconds with one clear line instead of as an
// SDK error after credentials were loaded. Buckets follow S3's naming rules for general
// purpose buckets; the key a backup writes is held to a stricter rule than S3's (which
// allows nearly any UTF-8) so that a backup key is also a sane relative path: no "." / ".."
// / empty segments, no leading "/", no control characters, no backslash, at most 1024
// bytes. A key read from (`--from`: restore, verify) may be any key S3 holds but for "." and
// ".." segments: an archive another tool copied to `dr//acme.tar.zst` or `old\acme.tar.zst`
// is listed by `tenants backups` and must be restorable as listed.
// The URL is taken literally: no percent-decoding, exactly like `aws s3 cp`.

import { InvalidNameError, UsageError } from '../errors.js';
import { quotedValue } from '../format.js';

export interface S3Url {
  readonly bucket: string;
  readonly key: string;
}

export const S3_SCHEME = 's3://';

/** S3's limit on a key's UTF-8 length. */
export const MAX_KEY_BYTES = 1024;

// C0 controls, DEL and C1 controls.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;
// With the `u` flag a well-formed surrogate pair is one code point, so this matches only
// lone surrogates, which have no UTF-8 encoding.
const LONE_SURROGATE = /\p{Cs}/u;
const IPV4_LIKE = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;
const RESERVED_PREFIXES = ['xn--', 'sthree-', 'amzn-s3-demo-'];
const RESERVED_SUFFIXES = ['-s3alias', '--ol-s3', '.mrap', '--x-s3', '--table-s3'];

/** What an AWS region (or an S3-compatible store's) may be called: a hostname component. */
const REGION_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/i;

export function isRegionName(region: string): boolean {
  return REGION_PATTERN.test(region);
}

/** `--region`, checked before any client is made: a usage error, not the SDK's. */
export function assertRegion(region: string): string {
  if (!isRegionName(region)) throw new UsageError(`invalid --region ${JSON.stringify(region)}: give a region name such as eu-west-1 (letters, digits, "-" and "_")`);
  return region;
}

/**
 * AWS_REGION, when the SDK is about to read it (no --region, no custom endpoint's region): set
 * but no region name (empty, blank, `eu west`) is a usage error naming it. The SDK said
 * `Region not accepted: region="" is not a valid hostname component.` (the aws CLI fails too:
 * `Invalid endpoint: https://s3..amazonaws.com`).
 */
export function assertRegionVariable(env: NodeJS.ProcessEnv = process.env): void {
  const region = env.AWS_REGION;
  if (region === undefined || isRegionName(region)) return;
  throw new UsageError(`invalid AWS_REGION ${JSON.stringify(region)}: unset it, or set a region name such as eu-west-1 (letters, digits, "-" and "_"), or give --region`);
}

export function isS3Url(text: string): boolean {
  return text.startsWith(S3_SCHEME);
}

export function formatS3Url(url: S3Url): string {
  return `${S3_SCHEME}${url.bucket}/${url.key}`;
}

/**
 * What a key is used for: `write` (a backup's destination: keyProblemOf's rule) or `read` (an
 * archive to restore or verify: any key S3 can hold, readableKeyProblemOf).
 */
export type KeyAccess = 'read' | 'write';

/** Parses `s3://bucket/key`, throwing InvalidNameError with the broken rule. */
export function parseS3Url(text: string, access: KeyAccess = 'write'): S3Url {
  if (!isS3Url(text)) {
    throw new InvalidNameError(`not an S3 URL: expected s3://bucket/key, got ${JSON.stringify(text)}`);
  }
  const rest = text.slice(S3_SCHEME.length);
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  // Checked before the bucket is echoed: `s3://AKIA…:secret@bucket/key` must not end up in
  // an error message, nor the secret's start when it holds a "/" (as AWS secret keys do:
  // the text before the first "/" is then `AKIA…:wJalr…`, no bucket name holds a ":").
  if (bucket.includes('@') || (bucket.includes(':') && rest.includes('@'))) {
    throw new InvalidNameError(
      'credentials in S3 URLs are not supported: use --access-key/--secret-key or --aws-profile',
    );
  }
  const bucketProblem = bucketNameProblem(bucket);
  if (bucketProblem !== undefined) {
    throw new InvalidNameError(`invalid S3 bucket name ${JSON.stringify(bucket)}: ${bucketProblem}`);
  }
  if (slash === -1 || slash === rest.length - 1) {
    throw new InvalidNameError(`S3 URL ${JSON.stringify(text)} has no object key: expected s3://bucket/key`);
  }
  const key = rest.slice(slash + 1);
  const keyProblem = access === 'read' ? readableKeyProblemOf(key) : keyProblemOf(key);
  if (keyProblem !== undefined) {
    throw new InvalidNameError(`invalid S3 object key ${quotedValue(key, 200)}: ${keyProblem}`);
  }
  return { bucket, key };
}

/** An `s3://bucket/prefix/` location of many archives: the prefix is empty or ends in "/". */
export interface S3Prefix {
  readonly bucket: string;
  readonly prefix: string;
}

/**
 * Parses `s3://bucket/`, `s3://bucket/prefix/` (or `s3://bucket/prefix`, taken as the folder
 * `prefix/`), with the bucket and key rules of parseS3Url: `read` (`tenants backups`: list what
 * exists, e.g. under a prefix with a backslash another tool wrote, whose archives restore and
 * verify read) or `write` (`tenants prune` and the backup rule of a scheduled prune).
 */
export function parseS3Prefix(text: string, access: KeyAccess = 'write'): S3Prefix {
  if (!isS3Url(text)) throw new InvalidNameError(`not an S3 URL: expected s3://bucket/prefix/, got ${JSON.stringify(text)}`);
  const rest = text.slice(S3_SCHEME.length);
  const slash = rest.indexOf('/');
  const path = slash === -1 ? '' : rest.slice(slash + 1).replace(/\/+$/, '');
  if (path === '') {
    // Only the bucket: checked by the same rules, with a placeholder key.
    const { bucket } = parseS3Url(`${S3_SCHEME}${slash === -1 ? rest : rest.slice(0, slash)}/x`);
    return { bucket, prefix: '' };
  }
  const { bucket, key } = parseS3Url(`${S3_SCHEME}${rest.slice(0, slash)}/${path}`, access);
  return { bucket, prefix: `${key}/` };
}

/** Why `name` is not a valid general purpose bucket name, or undefined when it is. */
export function bucketNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'empty';
  if (name.length < 3 || name.length > 63) return 'must be 3 to 63 characters long';
  if (/[A-Z]/.test(name)) return 'must be lowercase';
  if (!/^[a-z0-9.-]+$/.test(name)) return 'only lowercase letters, digits, "." and "-" are allowed';
  if (!/^[a-z0-9]/.test(name) || !/[a-z0-9]$/.test(name)) return 'must start and end with a letter or digit';
  if (name.includes('..')) return 'must not contain ".."';
  if (name.includes('.-') || name.includes('-.')) return 'a "." must not be next to a "-"';
  if (IPV4_LIKE.test(name)) return 'must not look like an IP address';
  const prefix = RESERVED_PREFIXES.find((p) => name.startsWith(p));
  if (prefix !== undefined) return `the prefix "${prefix}" is reserved`;
  const suffix = RESERVED_SUFFIXES.find((s) => name.endsWith(s));
  if (suffix !== undefined) return `the suffix "${suffix}" is reserved`;
  return undefined;
}

/**
 * Why `key` cannot be read as named (empty, not valid Unicode, over 1024 bytes of UTF-8: no
 * key S3 can hold; a final "/": a folder; a "." or ".." segment: an HTTP layer on the way may resolve it, and read
 * another key than the one named, outside a gateway's prefix too, and so may one on Windows between
 * backslashes; a NUL, where a layer taking
 * the key as a C string ends it), or undefined.
 */
export function readableKeyProblemOf(key: string): string | undefined {
  if (key.length === 0) return 'empty';
  if (LONE_SURROGATE.test(key)) return 'is not valid Unicode';
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) return `longer than ${MAX_KEY_BYTES} bytes in UTF-8`;
  // A listing never shows such a key (a folder marker): `--from s3://b/acme/` is a folder typed for an archive.
  if (key.endsWith('/')) return 'ends with "/" (that names a folder, not an archive)';
  // Between backslashes too: a store keeping objects as files on Windows separates names with them.
  const dots = key.split(/[/\\]/).find((segment) => segment === '.' || segment === '..');
  if (dots !== undefined) return `contains a "${dots}" segment`;
  // A layer that hands the key on as a C string ends it there: another key (a listed `kept.tar.zst\0`, deleted, took `kept.tar.zst`).
  if (key.includes('\0')) return 'contains a NUL character';
  return undefined;
}

/** Why `key` is not acceptable as a backup object key, or undefined when it is. */
export function keyProblemOf(key: string): string | undefined {
  if (key.length === 0) return 'empty';
  if (CONTROL_CHARACTERS.test(key)) return 'contains a control character';
  if (LONE_SURROGATE.test(key)) return 'is not valid Unicode';
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) return `longer than ${MAX_KEY_BYTES} bytes in UTF-8`;
  if (key.includes('\\')) return 'contains a backslash';
  if (key.startsWith('/')) return 'starts with "/"';
  if (key.endsWith('/')) return 'ends with "/" (that names a folder, not an archive)';
  for (const segment of key.split('/')) {
    if (segment === '') return 'contains an empty segment ("//")';
    if (segment === '.' || segment === '..') return `contains a "${segment}" segment`;
  }
  return undefined;
}
