// The one factory the CLI and the Lambda handlers call: turns `--to`/`--from` and the
// storage flags into an ArchiveLocation. Every flag is validated first, as a usage error
// naming the flag, before any client or credential is touched; the AWS SDK is imported
// only for s3:// locations (the CLI must start in under 300 ms). `display` holds the
// bucket and key or the path, never credentials or the --pipe command.

import { stat } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../errors.js';
import { assertLocalPath } from '../local-path.js';
import { LocalFileLocation, type LocalFileOptions } from './local.js';
import { withPipeCommand } from './pipe.js';
import { redact as redactText } from './redact.js';
import { assertRegion, assertRegionVariable, isS3Url, parseS3Url, type KeyAccess } from './s3-url.js';
import { S3_OBJECT_FLAGS, s3ObjectSettings, type S3ObjectFlags } from './s3-object-settings.js';
import type { ArchiveLocation, StoreEndpoint } from './types.js';
import type { S3Client } from '@aws-sdk/client-s3';

export { redact } from './redact.js';

/** `--sse`, `--sse-kms-key-id` and `--storage-class` (s3-object-settings.ts) apply to a backup's writes only. */
export interface LocationOptions extends S3ObjectFlags {
  /** `--aws-profile`: a profile of the shared AWS config (SSO included). */
  readonly awsProfile?: string;
  /** `--region` */
  readonly region?: string;
  /** `--endpoint`: an S3-compatible store, e.g. https://minio.internal:9000. */
  readonly endpoint?: string;
  /** `--access-key` and `--secret-key`: static credentials, both or neither. */
  readonly accessKey?: string;
  readonly secretKey?: string;
  /** `--pipe`: a shell command the archive passes through (e.g. `age -r …`). */
  readonly pipe?: string;
  /** Expected archive size in bytes: lets S3 uploads pick a part size that fits. */
  readonly expectedBytes?: number;
  /**
   * S3: how long an upload's attempt may go without its socket taking a byte, and a download
   * without bytes (OPENCLAW_S3_STALL_TIMEOUT, part-progress.ts); the socket's idle timeout
   * grows with it. Ignored for local files. @default PART_STALL_MS
   */
  readonly stallTimeoutMs?: number;
  /** The CLI's: `stallTimeoutMs` came from `--stall-timeout`, which remote mode refuses (the environment's it does not send). */
  readonly stallTimeoutFromFlag?: true;
  /**
   * S3: what the key is opened for: `read` (restore, verify) takes any key S3 can hold, as
   * `tenants backups` lists them; `write` holds a backup's key to parseS3Url's stricter rule.
   * @default 'write'
   */
  readonly access?: KeyAccess;
  /** Local files: see LocalFileOptions.sweptDirectories. */
  readonly sweptDirectories?: Set<string>;
}

const S3_ONLY_FLAGS = [
  ['awsProfile', '--aws-profile'],
  ['region', '--region'],
  ['endpoint', '--endpoint'],
  ['accessKey', '--access-key'],
  ['secretKey', '--secret-key'],
  ...S3_OBJECT_FLAGS,
] as const;

const SCHEME_PATTERN = /^([a-z][a-z0-9+.-]*):\/\//i;
/**
 * Schemes a backup location could be meant as: `gs:/b/k` or `https:x` is a mistyped URL,
 * never a file the user wants created under that name (`s3:` as a directory, a file `https:`).
 */
const URL_SCHEMES = new Set(['s3', 's3a', 's3n', 'gs', 'gcs', 'az', 'azure', 'abfs', 'abfss', 'wasb', 'wasbs', 'r2', 'b2', 'minio', 'swift', 'oss', 'cos', 'hdfs', 'http', 'https', 'ftp', 'ftps', 'sftp', 'scp', 'ssh', 'rsync', 'webdav', 'dav', 'davs', 'smb', 'nfs', 'file']);

export async function openLocation(spec: string, options: LocationOptions = {}): Promise<ArchiveLocation> {
  const location = isS3Url(spec) ? await openS3(spec, options) : await openLocal(spec, options);
  // A name ending in `.age` says the command encrypts with age: what it writes is checked to be an age file.
  return options.pipe === undefined ? location : withPipeCommand(location, options.pipe, { writesAge: /\.age$/i.test(spec) });
}

/**
 * All checks of `spec` and `options` that need no I/O; throws UsageError. `what`: a single
 * archive (`--to`, `--from`) or a place of many (`--in`), for the messages.
 */
export function validateLocationOptions(spec: string, options: LocationOptions, what: LocationKind = 'archive'): void {
  if (spec.trim() === '') throw new UsageError('the archive location is empty: give s3://bucket/key or a file path');
  if (options.pipe !== undefined && options.pipe.trim() === '') throw new UsageError('--pipe needs a command');
  if (options.expectedBytes !== undefined && !(Number.isSafeInteger(options.expectedBytes) && options.expectedBytes >= 0)) {
    throw new UsageError('the expected archive size must be a whole number of bytes');
  }
  if (!isS3Url(spec)) {
    // Before the S3 flags: `S3://b/k --endpoint URL` is a mistyped URL, not a misplaced --endpoint.
    assertWrittenAsPath(spec, what);
    assertLocalPath(spec, 'the location');
    for (const [option, flag] of S3_ONLY_FLAGS) {
      if (options[option] !== undefined) throw new UsageError(`${flag} applies only to s3:// locations`);
    }
    // $OPENCLAW_S3_STALL_TIMEOUT is a setting of the machine, for whatever S3 it reaches; the flag is asked for here.
    if (options.stallTimeoutFromFlag === true) throw new UsageError('--stall-timeout applies only to s3:// locations');
    return;
  }
  for (const [option, flag] of S3_ONLY_FLAGS) {
    if (options[option] !== undefined && options[option].trim() === '') throw new UsageError(`${flag} needs a value`);
  }
  if ((options.accessKey === undefined) !== (options.secretKey === undefined)) {
    throw new UsageError('--access-key and --secret-key go together: give both or neither');
  }
  if (options.awsProfile !== undefined && options.accessKey !== undefined) {
    throw new UsageError('--aws-profile and --access-key/--secret-key exclude each other: give one of them');
  }
  if (options.region !== undefined) assertRegion(options.region);
  if (options.endpoint !== undefined) endpointOrigin(options.endpoint);
  s3ObjectSettings(options);
}

async function openS3(spec: string, options: LocationOptions): Promise<ArchiveLocation> {
  validateLocationOptions(spec, options);
  const { bucket, key } = parseS3Url(spec, options.access);
  const { client, endpoint } = await s3ClientFor(options);
  const { S3Location } = await import('./s3.js');
  return new S3Location({
    client,
    bucket,
    key,
    ...(endpoint !== undefined && { endpoint: endpoint.url, endpointSource: endpoint.source }),
    ...(options.expectedBytes !== undefined && { expectedBytes: options.expectedBytes }),
    ...(options.stallTimeoutMs !== undefined && { stallDeadlineMs: options.stallTimeoutMs }),
    objectSettings: s3ObjectSettings(options),
    secrets: [options.secretKey],
  });
}

/**
 * The S3 client for validated `options`, and the S3-compatible endpoint it talks to:
 * `--endpoint`, else one the environment or the profile configures (AWS_ENDPOINT_URL_S3,
 * endpoint_url…), resolved for `--aws-profile` as for AWS_PROFILE: either way an
 * S3-compatible store, with the same settings (path-style, checksums only when required).
 * Shared with open-store.ts, so a listing or a prune reaches the store a backup wrote to.
 */
export async function s3ClientFor(options: LocationOptions): Promise<{ client: S3Client; endpoint?: StoreEndpoint }> {
  const { assertProfileExists, configuredCaBundle, configuredEndpoint, loadSharedFiles, profileRegion } = await import('./configured-endpoint.js');
  // Read once for every setting below.
  const files = await loadSharedFiles();
  const shared = { profile: options.awsProfile, files };
  // Static keys make the profile irrelevant.
  if (options.accessKey === undefined) await assertProfileExists(options.awsProfile, process.env, files);
  const configured = options.endpoint !== undefined ? { url: options.endpoint, source: '--endpoint' } : await configuredEndpoint('S3', shared);
  const endpoint = configured === undefined ? undefined : { url: endpointOrigin(configured.url, configured.source), source: configured.source };
  const caBundle = await configuredCaBundle(shared);
  // A custom endpoint is signed for --region, else the profile's region (B2, Wasabi and a MinIO
  // with a region refuse any other), else us-east-1 (s3-client.ts); AWS resolves its own.
  const region = options.region ?? (configured !== undefined ? await profileRegion(shared) : undefined);
  if (region === undefined && configured === undefined) assertRegionVariable();
  // Only now, with everything valid, is the SDK loaded.
  const { createS3Client, SOCKET_TIMEOUT_MS } = await import('./s3-client.js');
  // A longer stall time would be cut short by the socket's idle timeout, which bounds the wait
  // for an upload's answer (twice the stall time, part-progress.ts) and the other requests.
  const socketTimeoutMs = options.stallTimeoutMs === undefined ? undefined : Math.max(SOCKET_TIMEOUT_MS, 2 * options.stallTimeoutMs);
  const client = await createS3Client({
    ...(socketTimeoutMs !== undefined && { socketTimeoutMs }),
    ...(region !== undefined && { region }),
    ...(options.awsProfile !== undefined && { awsProfile: options.awsProfile }),
    ...(configured !== undefined && { endpoint: configured.url }),
    ...(options.accessKey !== undefined && { accessKey: options.accessKey }),
    ...(options.secretKey !== undefined && { secretKey: options.secretKey }),
    ...(caBundle !== undefined && { caBundle: caBundle.pem }),
  });
  return { client, ...(endpoint !== undefined && { endpoint }) };
}

async function openLocal(spec: string, options: LocationOptions): Promise<ArchiveLocation> {
  validateLocationOptions(spec, options);
  const scheme = SCHEME_PATTERN.exec(spec)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    if (spec === '-') {
      throw new UsageError('"-" is taken as a file name here, not standard input or output: give a file path or s3://bucket/key (a local file named "-": write ./-)');
    }
    if (spec.endsWith('/')) {
      // A directory that is there is judged as the same name without its slash is (NOT_A_FILE,
      // exit 1, naming the archive to give): `--from out/` was a usage error (exit 2) where
      // `--from out` failed so. Any other name ending in a slash names no file at all.
      if ((await stat(spec).catch(() => undefined))?.isDirectory() !== true) throw new UsageError(`${JSON.stringify(spec)} names a directory: give the archive's file name`);
    }
    return new LocalFileLocation(spec, localOptions(options));
  }
  // Any other scheme was refused by validateLocationOptions.
  let path: string;
  try {
    path = fileURLToPath(spec);
  } catch {
    throw new UsageError(`invalid file URL ${JSON.stringify(spec)}: expected file:///absolute/path`);
  }
  if (!isAbsolute(path) || path.endsWith('/')) {
    throw new UsageError(`invalid file URL ${JSON.stringify(spec)}: expected file:///absolute/path/archive.tar.zst`);
  }
  return new LocalFileLocation(path, localOptions(options));
}

function localOptions(options: LocationOptions): LocalFileOptions {
  return options.sweptDirectories === undefined ? {} : { sweptDirectories: options.sweptDirectories };
}

/** A single archive (`--to`, `--from`: s3://bucket/key or a file) or a place of many (`--in`: s3://bucket/prefix/ or a directory). */
export type LocationKind = 'archive' | 'store';

/**
 * A location that is not s3:// must be meant as a local path: refused when it is a URL of
 * another scheme (`S3://`, `https://…`; `file://` only for an archive, which openLocal reads), a
 * URL with a slip of the keyboard (`s3:/bucket/key`, `s3:bucket`, `s3//bucket/key`, `gs:/b/k`,
 * `file:/x`), or starts with whitespace (` s3://b/k` from a quoted variable, ` /var/x`, which
 * would be relative): else a backup would land in a local file or directory named after the
 * scheme, or below the working directory, and a listing or a prune would look there.
 */
export function assertWrittenAsPath(spec: string, what: LocationKind): void {
  // Echoed without credentials, as parseS3Url refuses `s3://AKIA…:secret@b/k` without them: a
  // `user:secret@` (after `s3://`, or a slip of it: `s3:/`, `s3//`, `s3:`), a presigned query.
  const masked = redactText(spec.replace(SLIPPED_CREDENTIALS, '$1***@'));
  const shown = JSON.stringify(masked.length > 60 ? `${masked.slice(0, 60)}…` : masked);
  const s3Form = what === 'archive' ? 's3://bucket/key' : 's3://bucket/prefix/';
  const pathForm = what === 'archive' ? 'a file path' : 'a directory';
  if (/^\s/.test(spec)) {
    throw new UsageError(`${shown} starts with whitespace: write the location without it (a local name that starts so: prefix it with ./)`);
  }
  const scheme = SCHEME_PATTERN.exec(spec)?.[1]?.toLowerCase();
  if (scheme !== undefined) {
    if (scheme === 's3') throw new UsageError(`S3 URLs are written in lowercase: ${s3Form}`);
    if (scheme === 'file' && what === 'archive') return;
    if (scheme === 'http' || scheme === 'https') throw new UsageError(webAddressRefusal(spec, s3Form, pathForm));
    throw new UsageError(`unsupported location ${JSON.stringify(`${scheme}://…`)}: give ${s3Form} or ${pathForm}`);
  }
  const colon = /^([a-z][a-z0-9+.-]*):/i.exec(spec);
  const slashes = /^([a-z][a-z0-9+.-]*)\/\//i.exec(spec);
  const slip = (colon ?? slashes)?.[1]?.toLowerCase();
  if (slip === undefined || !URL_SCHEMES.has(slip)) return;
  const meant = slip === 's3' ? s3Form : slip === 'file' ? 'file:///absolute/path or a plain path' : `${slip}://… (not supported: give ${s3Form} or ${pathForm})`;
  throw new UsageError(`${shown} looks like a mistyped URL, not a file path: write ${meant} (a local file of that name: prefix it with ./)`);
}

/**
 * `user:secret@` after a URL scheme (` s3://AK:SK@b/k`) or a slip of it (`s3:/`, `s3//`, `s3:`),
 * up to the first "@": an AWS secret key holds "/" and "+" but no "@".
 */
const SLIPPED_CREDENTIALS = /^(\s*[a-z][a-z0-9+.-]*(?::\/{0,2}|\/\/))[^@\s]*:[^@\s]*@/i;

/** AWS S3's web addresses of an object: virtual-hosted (`BUCKET.s3[.-]REGION.amazonaws.com/KEY`) or path-style (`s3[.-]REGION.amazonaws.com/BUCKET/KEY`). */
const S3_VIRTUAL_HOST = /^(.+)\.s3(?:[.-][a-z0-9-]+)*\.amazonaws\.com(?:\.cn)?$/;
const S3_PATH_HOST = /^s3(?:[.-][a-z0-9-]+)*\.amazonaws\.com(?:\.cn)?$/;
/**
 * Hosts of S3 that name no bucket: an access point (`NAME-ACCOUNT.s3-accesspoint.REGION…`), an
 * Object Lambda or a Multi-Region Access Point, S3 Control. Read as virtual-hosted, their first
 * label would be named as a bucket: one the user does not own, that anyone may create.
 */
const S3_NOT_A_BUCKET_HOST = /(?:^|\.)s3-(?:accesspoint|object-lambda|global|control)(?:[.-]|$)/;

/** An S3 interface (PrivateLink) endpoint's host, in AWS's partitions and China's. */
const S3_INTERFACE_ENDPOINT_HOST = /\.vpce\.amazonaws\.com(?:\.cn)?$/;
/**
 * Hosts of AWS S3 that take virtual-hosted requests only, or are no S3 API at all: access points
 * (`NAME-ACCOUNT.s3-accesspoint.REGION…`), Object Lambda, Multi-Region Access Points, S3 Control,
 * Transfer Acceleration, website endpoints (`s3-website-REGION`, `s3-website.REGION`).
 */
const S3_VIRTUAL_ONLY_HOST = /(?:^|\.)s3-(?:accesspoint|object-lambda|global|control|accelerate|website)(?=[.-])[^]*\.amazonaws\.com(?:\.cn)?$/;

/**
 * The refusal of an http(s) URL typed as a location: an AWS S3 object's web address is named as
 * the s3:// URL it stands for (built from its host and path only: the query of a presigned URL
 * holds a signature, never echoed), any other as a web address whose store goes in --endpoint.
 */
function webAddressRefusal(spec: string, s3Form: string, pathForm: string): string {
  let url: URL | undefined;
  try {
    url = new URL(spec);
  } catch {
    url = undefined;
  }
  const hostname = url?.hostname.toLowerCase() ?? '';
  const host = S3_NOT_A_BUCKET_HOST.test(hostname) ? '' : hostname;
  let path: string | undefined;
  try {
    // In the path of an S3 web address a "+" stands for a space (the console's object URL
    // writes `a b` as `a+b`, and a "+" of the key as %2B), as S3 reads it.
    path = url === undefined ? undefined : decodeURIComponent(url.pathname.slice(1).replaceAll('+', ' '));
  } catch {
    path = undefined;
  }
  const virtual = S3_VIRTUAL_HOST.exec(host)?.[1];
  const [bucket, key] = virtual !== undefined ? [virtual, path] : S3_PATH_HOST.test(host) && path !== undefined && path.includes('/') ? [path.slice(0, path.indexOf('/')), path.slice(path.indexOf('/') + 1)] : [];
  if (bucket !== undefined && key !== undefined && key !== '') {
    return `${JSON.stringify(`${url!.protocol}//…`)} is an S3 object's web address, not a location: write ${JSON.stringify(`s3://${bucket}/${key}`)}`;
  }
  return `${JSON.stringify(`${url?.protocol ?? 'http:'}//…`)} is a web address, not a location: give ${s3Form} (an S3-compatible store's address goes in --endpoint) or ${pathForm}`;
}

/**
 * `scheme://host[:port][/path]` of a valid endpoint, given by `--endpoint` or configured
 * (`source` names where), as messages show it: with its path, which the SDK puts before the
 * bucket in every request (a store behind a proxy at `/s3`), so that a "no such bucket" there
 * names where the bucket was looked for; never credentials (refused here).
 */
function endpointOrigin(endpoint: string, source = '--endpoint'): string {
  const what = source === '--endpoint' ? '--endpoint' : `endpoint URL (from ${source})`;
  // `minio.internal:9000` parses as a URL of scheme `minio.internal:`, and `127.0.0.1:9000` as none.
  if (/^[\w.-]+(:\d+)?(\/\S*)?$/.test(endpoint)) {
    throw new UsageError(`invalid ${what} ${JSON.stringify(endpoint)}: give the URL with its scheme, https://${endpoint} (or http://${endpoint} for a store without TLS)`);
  }
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new UsageError(`invalid ${what}: expected a URL like https://minio.internal:9000`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new UsageError(`invalid ${what}: only http:// and https:// URLs are supported`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new UsageError(`credentials in ${what} are not supported: use --access-key and --secret-key`);
  }
  if (url.search !== '' || url.hash !== '') throw new UsageError(`invalid ${what}: no query or fragment allowed`);
  if (url.hostname === '') throw new UsageError(`invalid ${what}: no host`);
  // (A fully qualified name's final dot changes nothing of what follows.)
  const hostname = url.hostname.replace(/\.$/, '');
  // An interface endpoint, `[bucket.]vpce-….s3.REGION.vpce.amazonaws.com[.cn]`, takes path-style requests.
  const interfaceEndpoint = S3_INTERFACE_ENDPOINT_HOST.test(hostname);
  if (!interfaceEndpoint && S3_VIRTUAL_ONLY_HOST.test(hostname)) {
    throw new UsageError(
      `invalid ${what}: ${url.origin} is an address of AWS S3 that takes no path-style requests (an access point, S3 Control, Object Lambda, a Multi-Region Access Point, Transfer Acceleration or a website): on AWS leave the endpoint out, and name an access point by its alias as the bucket (s3://ALIAS/key)`,
    );
  }
  // AWS's address of one bucket: path-style requests there put the bucket again before each
  // key (s3://b/acme/x.tar.zst stored as b/acme/x.tar.zst in bucket b, where no listing of acme/ finds it).
  const bucketHost = interfaceEndpoint ? undefined : S3_VIRTUAL_HOST.exec(hostname)?.[1];
  if (bucketHost !== undefined) {
    const service = `${url.protocol}//${url.host.slice(bucketHost.length + 1)}`;
    throw new UsageError(`invalid ${what}: ${url.origin} is the address of bucket ${JSON.stringify(bucketHost)}, not of S3: give ${service} (on AWS, leave the endpoint out)`);
  }
  const path = url.pathname.replace(/\/+$/, '');
  return `${url.origin}${path}`;
}
