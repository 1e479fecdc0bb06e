// Translates AWS SDK errors into the project's typed errors at the S3 boundary, so nothing
// above the storage layer ever sees an SDK exception. Each case is one clear line with a
// stable code, naming the location and what to do about it. The SDK is not imported: the
// translation works on the shape of the errors (name, HTTP status, errno code), which keeps
// this module cheap to load and easy to test with plain objects. Secrets never reach a
// message: only pieces we chose go in, and the SDK's own text passes through `redact`.

import { AbortedError, DestinationExistsError, OpenClawError, StorageError, UsageError, type StorageCode } from '../errors.js';
import { escapedNameHint } from '../format.js';
import { connectionResetReason, networkReason } from '../network-reasons.js';
import { redact } from './redact.js';
import { isRegionName } from './s3-url.js';
import { isAbortError } from './streams.js';

/** What was being done where, for the message. */
export interface S3ErrorContext {
  /** `s3://bucket/key`. */
  readonly display: string;
  readonly bucket: string;
  /** A conditional write (If-None-Match) fails as DestinationExistsError; a read's If-Match as CHANGED. */
  readonly operation: 'check' | 'read' | 'write';
  /** The configured region, for wrong-region hints. */
  readonly region?: string;
  /** The custom endpoint (its origin and path), for "cannot reach" and "no such bucket" messages. */
  readonly endpoint?: string;
  /** Secret key, session token: masked wherever they might appear. */
  readonly secrets?: readonly (string | undefined)[];
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
]);

const TLS_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

const INVALID_CREDENTIAL_NAMES = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidToken',
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'InvalidSecurity',
]);

const EXPIRED_CREDENTIAL_NAMES = new Set(['ExpiredToken', 'ExpiredTokenException', 'TokenRefreshRequired', 'RequestExpired']);

const REGION_NAMES = new Set([
  'PermanentRedirect',
  'AuthorizationHeaderMalformed',
  'IllegalLocationConstraintException',
  'TemporaryRedirect',
  'Redirect',
  'MovedPermanently',
]);

/**
 * An answer no S3 store gives: a 200 to a HEAD, GET or PutObject without an ETag, a listing
 * without any of its fields, a 404 to a GET or a listing without an error code (S3 names
 * NoSuchKey or NoSuchBucket there; only HEAD answers have no body). The endpoint is some other
 * HTTP server (a web server's default site, a console port taken for the API port, a gateway
 * that answers 404 to everything): nothing it said may pass for a stored, missing or found object.
 */
export class NotS3Answer extends Error {
  constructor(
    readonly request: string,
    readonly answer = '200 without an S3 answer',
  ) {
    super(`${request} got ${answer}`);
    this.name = 'NotS3Answer';
  }
}

/** A GET's or a listing's 404 without an S3 error code (see NotS3Answer), else undefined. */
export function notS3NotFound(error: unknown, request: string): NotS3Answer | undefined {
  const coded = typeof error === 'object' && error !== null && typeof (error as { Code?: unknown }).Code === 'string';
  return s3StatusCode(error) === 404 && s3ErrorName(error) === 'NotFound' && !coded ? new NotS3Answer(request, 'a 404 without an S3 error code') : undefined;
}

interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  Region?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
  $response?: { headers?: Record<string, string | undefined> };
}

/** The SDK's error name, or for network failures the errno code. */
export function s3ErrorName(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const shape = error as SdkErrorShape;
  return shape.name === 'Error' && shape.code !== undefined ? shape.code : shape.name;
}

export function s3StatusCode(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  return (error as SdkErrorShape).$metadata?.httpStatusCode;
}

export function translateS3Error(error: unknown, context: S3ErrorContext): OpenClawError {
  if (error instanceof OpenClawError) return error;
  if (isAbortError(error)) return new AbortedError('operation aborted', { cause: error });

  const shape: SdkErrorShape = typeof error === 'object' && error !== null ? (error as SdkErrorShape) : {};
  const name = shape.name ?? '';
  const errno = shape.code ?? '';
  const status = shape.$metadata?.httpStatusCode;
  const message = firstLine(redact(String(shape.message ?? error), context.secrets));
  const where = context.display;
  const fail = (text: string, code: StorageCode) => new StorageError(text, code, { cause: error });

  // A body that is not XML at all: a web page where S3 sends its error document.
  if (message.startsWith('@aws-sdk XML parse error')) {
    return fail(`${context.endpoint ?? 'the endpoint'} does not answer like S3 (HTTP ${status ?? '?'} with a body that is not S3's XML) for ${where}: is it the store's S3 API endpoint?`, 'S3');
  }
  if (error instanceof NotS3Answer) {
    return fail(`${context.endpoint ?? 'the endpoint'} does not answer like S3 (${error.request} got ${error.answer}) for ${where}: is it the store's S3 API endpoint?`, 'S3');
  }
  // Node's HTTP parser failed on the answer (`HPE_*`), on every attempt (s3-client.ts retries it).
  if (errno.startsWith('HPE_')) {
    const attempts = shape.$metadata?.attempts ?? 1;
    return fail(`${context.endpoint ?? 'S3'} answered with bytes that are not valid HTTP (${errno}${attempts > 1 ? `, ${attempts} attempts` : ''}) for ${where}: a proxy on the way or the store is at fault`, 'S3');
  }
  if (message === 'Region is missing') {
    return new UsageError('no AWS region configured: pass --region or set AWS_REGION', 'NO_REGION');
  }
  if (NETWORK_CODES.has(errno) || TLS_CODES.has(errno) || errno === 'EPROTO' || name === 'TimeoutError' || name === 'RequestTimeout') {
    const target = context.endpoint ?? 'S3';
    // A server that accepts the connection and never answers: each attempt waited out the socket's idle timeout.
    const attempts = shape.$metadata?.attempts ?? 1;
    const reason = TLS_CODES.has(errno)
      ? ' (TLS certificate problem: a private CA is trusted through AWS_CA_BUNDLE=FILE or NODE_EXTRA_CA_CERTS=FILE)'
      : errno === 'EPROTO'
        ? tlsHandshakeReason(message, context.endpoint)
        : errno === 'ECONNRESET'
        ? ` (${connectionResetReason(context.endpoint, attempts)})`
        : name === 'TimeoutError'
        ? ` (no answer${attempts > 1 ? ` in ${attempts} attempts` : ''})`
        : networkReason(errno) === undefined ? '' : ` (${networkReason(errno)})`;
    return fail(`cannot reach ${target} for ${where}: ${errno || name}${reason}`, 'UNREACHABLE');
  }
  if (name === 'NoSuchBucket') {
    const at = context.endpoint === undefined ? '' : ` at ${context.endpoint}`;
    return fail(`S3 bucket ${JSON.stringify(context.bucket)} does not exist${at} (${where})`, 'NO_SUCH_BUCKET');
  }
  if (name === 'NoSuchKey' || (name === 'NotFound' && status === 404)) {
    return fail(`no archive at ${where}${escapedNameHint(where)}`, 'NOT_FOUND');
  }
  if (name === 'PreconditionFailed' || name === 'ConditionalRequestConflict' || status === 412) {
    if (context.operation === 'read') return fail(`${where} changed while it was being read`, 'CHANGED');
    return new DestinationExistsError(`${where} already exists: pass --overwrite to replace it`);
  }
  // A custom endpoint's redirect that names no region (a proxy sending http:// to https://, a
  // load balancer, another host): the SDK does not follow it (its requests are signed for the
  // endpoint, and a gateway's allowlist names that endpoint), and no --region helps.
  if (context.endpoint !== undefined && status !== undefined && status >= 300 && status < 400 && awsRedirectRegion(shape) === undefined) {
    const location = shape.$response?.headers?.location;
    const to = location ? ` to ${JSON.stringify(firstLine(redact(location, context.secrets)))}` : '';
    return fail(`${context.endpoint} answered HTTP ${status}, a redirect${to}, for ${where}: redirects are not followed: give the store's own S3 address as the endpoint`, 'S3');
  }
  // A custom endpoint that is S3 of one region (`--endpoint https://s3.amazonaws.com`, an
  // AWS_ENDPOINT_URL of a regional endpoint) redirecting to the bucket's: requests go to the
  // endpoint whatever --region says, so only another endpoint reaches the bucket.
  if (context.endpoint !== undefined && status !== undefined && status >= 300 && status < 400) {
    const actual = awsRedirectRegion(shape)!;
    return fail(
      `S3 bucket ${JSON.stringify(context.bucket)} is in region ${actual}, which ${context.endpoint} does not serve (HTTP ${status}): give that region's endpoint (${regionalEndpoint(actual, context.endpoint)}), or leave the endpoint out and pass --region ${actual}`,
      'WRONG_REGION',
    );
  }
  if (REGION_NAMES.has(name) || status === 301 || status === 307) {
    const actual = bucketRegion(shape);
    const configured = context.region !== undefined ? `, not ${context.region}` : '';
    const hint =
      actual !== undefined
        ? `S3 bucket ${JSON.stringify(context.bucket)} is in region ${actual}${configured}: pass --region ${actual}`
        : `S3 bucket ${JSON.stringify(context.bucket)} is in another region${configured}: pass the bucket's --region`;
    return fail(hint, 'WRONG_REGION');
  }
  if (EXPIRED_CREDENTIAL_NAMES.has(name) || /\b(expired|refresh failed)\b/i.test(message)) {
    return fail(
      `AWS credentials have expired (${where}): renew them, e.g. with "aws sso login"`,
      'EXPIRED_CREDENTIALS',
    );
  }
  if (INVALID_CREDENTIAL_NAMES.has(name)) {
    return fail(`S3 rejected the credentials (${name}) for ${where}: check the access key and secret key`, 'INVALID_CREDENTIALS');
  }
  if (name === 'CredentialsProviderError' || name === 'TokenProviderError') {
    if (/could not load credentials from any providers/i.test(message)) {
      return fail(
        `no AWS credentials found for ${where}: use --aws-profile, --access-key/--secret-key or the AWS_* environment variables`,
        'NO_CREDENTIALS',
      );
    }
    return fail(`cannot load AWS credentials for ${where}: ${message}`, 'NO_CREDENTIALS');
  }
  if (name === 'RequestTimeTooSkewed') {
    return fail(`S3 refused the request for ${where}: this machine's clock is wrong`, 'CLOCK_SKEW');
  }
  // SSE-KMS: S3 passes on what KMS said (KMS.NotFoundException for a mistyped --sse-kms-key-id,
  // KMS.DisabledException, KMS.KMSInvalidStateException for a key pending deletion…).
  if (name.startsWith('KMS.')) {
    const said = message && message !== name ? `: ${truncate(message, 200)}` : '';
    if (/Throttling|LimitExceeded/.test(name)) return fail(`KMS is throttling S3's requests for ${where} (${name}${said}): try again later`, 'THROTTLED');
    const advice =
      context.operation === 'write'
        ? 'check --sse-kms-key-id (the key, its region), that the key is enabled, and the credentials\' kms:GenerateDataKey on it'
        : 'the key must be enabled, and the credentials need kms:Decrypt on it';
    return fail(`S3 cannot use the KMS key of ${where} (${name}${said}): ${advice}`, 'ACCESS_DENIED');
  }
  // A 403 too, but not about permissions: a lifecycle rule moved the object to Glacier.
  if (name === 'InvalidObjectState') {
    const storageClass = typeof (shape as { StorageClass?: unknown }).StorageClass === 'string' ? ` (${(shape as { StorageClass: string }).StorageClass})` : '';
    return fail(`${where} is in an archive storage class${storageClass}: restore it first (aws s3api restore-object), then read it`, 'NOT_SUPPORTED');
  }
  if (name === 'AccessDenied' || name === 'AllAccessDisabled' || name === 'Forbidden' || status === 403) {
    // S3 names some causes beyond the bare "Access Denied": Object Lock, an explicit deny in a bucket policy (one demanding SSE-KMS).
    const said = message === '' || message === name || /^(access ?denied\.?|forbidden|unknown ?error)$/i.test(message) ? '' : ` (S3: ${truncate(message, 200)})`;
    // Without s3:ListBucket, S3 answers a key that is not there 403, not 404: a mistyped --from reads as a permission problem.
    const orMissing = context.operation !== 'write' && said === '' && !where.endsWith('/') ? ', or the key: S3 answers a missing key so too when the credentials lack s3:ListBucket' : '';
    return fail(`access denied to ${where}: check the credentials' S3 permissions and the bucket policy${said}${orMissing}`, 'ACCESS_DENIED');
  }
  // A failure S3 answers inside a 200 OK (a CompleteMultipartUpload, a CopyObject; a proxy's
  // PutObject), or an empty 200 to a CompleteMultipartUpload: the SDK makes them a 503
  // InternalError, which is the store failing the request, not throttling it.
  if (name === 'InternalError' && status === 503) {
    const detail = message && message !== name && message !== 'UnknownError' ? `: ${truncate(message, 200)}` : '';
    return fail(`the store failed the request for ${where} (S3 InternalError${detail}): try again`, 'S3');
  }
  if (name === 'SlowDown' || name === 'ServiceUnavailable' || status === 503) {
    return fail(`S3 is throttling requests for ${where}: try again later`, 'THROTTLED');
  }
  // A 5xx without S3's error document (the SDK calls it Unknown): a proxy's or a load
  // balancer's answer, or a store that failed before it could say why.
  if (name === 'Unknown' && status !== undefined && status >= 500 && status !== 501) {
    return fail(
      `${context.endpoint ?? 'S3'} answered HTTP ${status} for ${where} without an S3 error (a proxy's or a load balancer's page?): the store, or what stands in front of it, failed the request; try again later, and if it stays, check them`,
      'S3',
    );
  }
  if (name === 'NotImplemented' || status === 501) {
    return fail(`the S3 store does not support a request needed for ${where} (NotImplemented)`, 'NOT_SUPPORTED');
  }
  if (name === 'EntityTooLarge' || /Exceeded \d+ parts/.test(message)) {
    return fail(
      `archive too large for one upload to ${where}: give the expected size so larger parts are used`,
      'TOO_LARGE',
    );
  }
  // A 2xx answer the SDK could not read (a LastModified that is no date, a number that is none): not S3's.
  if (status !== undefined && status >= 200 && status < 300 && shape.$response !== undefined && (name === 'TypeError' || name === 'SyntaxError' || name === 'RangeError')) {
    return fail(`${context.endpoint ?? 'S3'} does not answer like S3 (HTTP ${status} with an answer that cannot be read: ${truncate(message, 200)}) for ${where}`, 'S3');
  }
  const label = name && name !== 'Error' && name !== 'Unknown' ? name : errno || 'error';
  const http = status !== undefined ? ` (HTTP ${status})` : '';
  const detail = message && message !== label && message !== 'UnknownError' ? `: ${truncate(message, 200)}` : '';
  return fail(`S3 ${label}${http} for ${where}${detail}`, 'S3');
}

/**
 * The bucket's real region from the x-amz-bucket-region header, the error body, or its message;
 * only a region's name (what a store sends is shown as a --region to pass).
 */
function bucketRegion(shape: SdkErrorShape): string | undefined {
  const named = [shape.$response?.headers?.['x-amz-bucket-region'], shape.Region, /expecting '([a-z0-9-]+)'/.exec(shape.message ?? '')?.[1]];
  return named.find((region): region is string => typeof region === 'string' && isRegionName(region));
}

/** The region of a redirect from S3 of one region (an AWS region's name: it is made into an endpoint's address). */
function awsRedirectRegion(shape: SdkErrorShape): string | undefined {
  const region = bucketRegion(shape);
  return region !== undefined && AWS_REGION_SHAPE.test(region) ? region : undefined;
}

const AWS_REGION_SHAPE = /^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/;

/**
 * AWS's S3 endpoint of `region` (China's regions have a domain of their own), in the form of
 * the endpoint given: FIPS (`s3-fips.`) and dual-stack (`.dualstack.`) kept.
 */
function regionalEndpoint(region: string, endpoint: string): string {
  const host = URL.canParse(endpoint) ? new URL(endpoint).hostname : '';
  const service = host.startsWith('s3-fips.') ? 's3-fips' : 's3';
  const dualstack = /^s3(?:-fips)?\.dualstack\./.test(host) ? '.dualstack' : '';
  return `https://${service}${dualstack}.${region}.amazonaws.com${region.startsWith('cn-') ? '.cn' : ''}`;
}

function firstLine(text: string): string {
  const newline = text.indexOf('\n');
  return (newline === -1 ? text : text.slice(0, newline)).trim();
}

function truncate(text: string, length: number): string {
  return text.length <= length ? text : `${text.slice(0, length - 1)}…`;
}

/**
 * Why the TLS handshake failed (`EPROTO`), without OpenSSL's own line: an `https://` endpoint
 * whose port speaks plain HTTP (a MinIO or s3rver without TLS) answers OpenSSL's first record
 * with an HTTP error, "wrong version number".
 */
function tlsHandshakeReason(message: string, endpoint: string | undefined): string {
  if (!/wrong version number|packet length too long|http request/i.test(message)) return ' (the TLS handshake failed)';
  const plain = endpoint?.startsWith('https://') === true ? `http://${endpoint.slice('https://'.length)}` : undefined;
  return ` (the TLS handshake failed: the port answers without TLS${plain === undefined ? '' : `: for a store without TLS give the endpoint as ${plain}`})`;
}
