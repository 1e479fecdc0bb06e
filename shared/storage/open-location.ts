// The one factory the CLI and the Lambda handlers call: turns `--to`/`--from` and the
// storage flags into an ArchiveLocation. Every flag is validated first, as a usage error
// naming the flag, before any client or credential is touched; the AWS SDK is imported
// only for s3:// locations (the CLI must start in under 300 ms). `display` holds the
// bucket and key or the path, never credentials or the --pipe command.

import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../errors.js';
import { assertLocalPath } from '../local-path.js';
import { LocalFileLocation, type LocalFileOptions } from './local.js';
import { withPipeCommand } from './pipe.js';
import { assertRegion, isS3Url, parseS3Url } from './s3-url.js';
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
  const location = isS3Url(spec) ? await openS3(spec, options) : openLocal(spec, options);
  return options.pipe === undefined ? location : withPipeCommand(location, options.pipe);
}

/** All checks of `spec` and `options` that need no I/O; throws UsageError. */
export function validateLocationOptions(spec: string, options: LocationOptions): void {
  if (spec.trim() === '') throw new UsageError('the archive location is empty: give s3://bucket/key or a file path');
  if (options.pipe !== undefined && options.pipe.trim() === '') throw new UsageError('--pipe needs a command');
  if (options.expectedBytes !== undefined && !(Number.isSafeInteger(options.expectedBytes) && options.expectedBytes >= 0)) {
    throw new UsageError('the expected archive size must be a whole number of bytes');
  }
  if (!isS3Url(spec)) {
    assertLocalPath(spec, 'the location');
    for (const [option, flag] of S3_ONLY_FLAGS) {
      if (options[option] !== undefined) throw new UsageError(`${flag} applies only to s3:// locations`);
    }
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
  const { bucket, key } = parseS3Url(spec);
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

function openLocal(spec: string, options: LocationOptions): ArchiveLocation {
  validateLocationOptions(spec, options);
  const scheme = SCHEME_PATTERN.exec(spec)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    if (spec === '-') {
      throw new UsageError('"-" is taken as a file name here, not standard input or output: give a file path or s3://bucket/key (a local file named "-": write ./-)');
    }
    assertNotMistypedUrl(spec);
    if (spec.endsWith('/')) throw new UsageError(`${JSON.stringify(spec)} names a directory: give the archive's file name`);
    return new LocalFileLocation(spec, localOptions(options));
  }
  if (scheme === 's3') throw new UsageError('S3 URLs are written in lowercase: s3://bucket/key');
  if (scheme !== 'file') {
    throw new UsageError(`unsupported location ${JSON.stringify(`${scheme}://…`)}: give s3://bucket/key or a file path`);
  }
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

/**
 * A local path that is really a URL with a slip of the keyboard (`s3:/bucket/key`, `s3:bucket`,
 * `s3//bucket/key`, `gs:/b/k`, `file:/x`): refused, or the archive would land in a local
 * file or directory named after the scheme.
 */
function assertNotMistypedUrl(spec: string): void {
  const shown = JSON.stringify(spec.length > 60 ? `${spec.slice(0, 60)}…` : spec);
  const colon = /^([a-z][a-z0-9+.-]*):/i.exec(spec);
  const slashes = /^([a-z][a-z0-9+.-]*)\/\//i.exec(spec);
  const scheme = (colon ?? slashes)?.[1]?.toLowerCase();
  if (scheme === undefined || !URL_SCHEMES.has(scheme)) return;
  const meant = scheme === 's3' ? 's3://bucket/key' : scheme === 'file' ? 'file:///absolute/path or a plain path' : `${scheme}://… (not supported: give s3://bucket/key or a file path)`;
  throw new UsageError(`${shown} looks like a mistyped URL, not a file path: write ${meant} (a local file of that name: prefix it with ./)`);
}

/**
 * `scheme://host[:port]` of a valid endpoint, given by `--endpoint` or configured (`source`
 * names where); the URL itself is never echoed (it may hold credentials).
 */
function endpointOrigin(endpoint: string, source = '--endpoint'): string {
  const what = source === '--endpoint' ? '--endpoint' : `endpoint URL (from ${source})`;
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
  return url.origin;
}
