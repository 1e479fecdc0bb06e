// Builds the S3 client from the user's flags, and loads the AWS SDK only when S3 is used:
// the SDK takes a few hundred milliseconds to import, and the CLI must start in under
// 300 ms for local backups. Nothing here imports the SDK statically (`import type` is
// erased); tests/storage-lazy-sdk checks that.
//
// Credentials, in order: static keys (`--access-key`/`--secret-key`), a named profile
// (`--aws-profile`, through `fromIni`, which also covers SSO, assumed roles and
// credential_process from the shared config), else the SDK's default chain (environment,
// shared files, container and instance roles), where AWS_ACCESS_KEY_ID and its secret beat
// AWS_PROFILE as in the AWS CLI.

import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import type { BuildHandler, BuildHandlerArguments, DeserializeHandler, DeserializeHandlerArguments, HandlerExecutionContext } from '@smithy/types';
import { createHash } from 'node:crypto';
import { pipeline, Readable, Transform } from 'node:stream';

import { environmentKeysOverProfile } from './configured-endpoint.js';
import { NotS3Answer } from './s3-errors.js';

export type S3Sdk = typeof import('@aws-sdk/client-s3');

export interface S3ConnectionOptions {
  /** `--region`; otherwise the SDK's resolution (AWS_REGION, the profile), or us-east-1 for a custom endpoint (open-location.ts passes the profile's region there). */
  readonly region?: string;
  /** `--aws-profile`: credentials and region from that profile of the shared config. */
  readonly awsProfile?: string;
  /** `--endpoint`: an S3-compatible store (MinIO, Ceph, R2…): path-style requests. */
  readonly endpoint?: string;
  /** `--access-key` / `--secret-key`: static credentials, both or neither. */
  readonly accessKey?: string;
  readonly secretKey?: string;
  readonly sessionToken?: string;
  /**
   * Attempts per request, including the first; the SDK retries throttling, 5xx and
   * network errors with backoff. @default 5
   */
  readonly maxAttempts?: number;
  /** How long a socket may stay silent before the request fails. @default SOCKET_TIMEOUT_MS */
  readonly socketTimeoutMs?: number;
  /** PEM certificates to trust instead of Node's own list (AWS_CA_BUNDLE, a profile's ca_bundle). */
  readonly caBundle?: Buffer;
}

/** Region used to sign requests to a custom endpoint when none is given. */
export const CUSTOM_ENDPOINT_DEFAULT_REGION = 'us-east-1';

/**
 * Connect timeout and socket inactivity timeout, so a dead network fails instead of hanging.
 * An idle timeout, not a total one: a 5 GiB part may take long, but never sits silent for
 * two minutes. (It is `socketTimeout`: since @smithy/node-http-handler 4.x `requestTimeout`
 * only logs a warning unless `throwOnRequestTimeout` is set, and it bounds the whole
 * request, which no fixed value fits for large parts.)
 */
export const CONNECTION_TIMEOUT_MS = 10_000;
export const SOCKET_TIMEOUT_MS = 120_000;

let s3Sdk: Promise<S3Sdk> | undefined;

export function loadS3Sdk(): Promise<S3Sdk> {
  return (s3Sdk ??= import('@aws-sdk/client-s3'));
}

/** The client configuration for `options`, without creating a client. */
export async function s3ClientConfig(options: S3ConnectionOptions): Promise<S3ClientConfig> {
  const config: S3ClientConfig = {
    maxAttempts: options.maxAttempts ?? 5,
    requestHandler: {
      connectionTimeout: CONNECTION_TIMEOUT_MS,
      socketTimeout: options.socketTimeoutMs ?? SOCKET_TIMEOUT_MS,
      // Options, not an Agent: the SDK keeps its own keep-alive and socket limit.
      ...(options.caBundle !== undefined && { httpsAgent: { ca: options.caBundle } }),
    },
  };
  if (options.region !== undefined) config.region = options.region;
  if (options.endpoint === undefined) {
    // A bucket in another region answers 301 with its region (x-amz-bucket-region): the request
    // is sent again there, as the aws CLI does. The gateway's functions run in their own
    // region and take no --region for a bucket; a 400 the SDK does not follow still says which
    // region to pass (s3-errors.ts). Not for custom endpoints: the header names an AWS region.
    config.followRegionRedirects = true;
  } else {
    config.endpoint = options.endpoint;
    config.forcePathStyle = true;
    config.region ??= CUSTOM_ENDPOINT_DEFAULT_REGION;
    // The SDK's default (WHEN_SUPPORTED) adds CRC32 checksums to every upload, sent as
    // `aws-chunked` trailers for streamed bodies; many S3-compatible stores do not speak
    // that framing and store it as data or reject the request (aws-sdk-js-v3 #6810,
    // #6819). Only checksums the API requires are sent to custom endpoints, and response
    // checksums are only validated when the operation requires it.
    config.requestChecksumCalculation = 'WHEN_REQUIRED';
    config.responseChecksumValidation = 'WHEN_REQUIRED';
  }
  if (options.accessKey !== undefined && options.secretKey !== undefined) {
    config.credentials = {
      accessKeyId: options.accessKey,
      secretAccessKey: options.secretKey,
      ...(options.sessionToken !== undefined && { sessionToken: options.sessionToken }),
    };
  } else if (options.awsProfile !== undefined) {
    const { fromIni } = await import('@aws-sdk/credential-providers');
    config.credentials = fromIni({ profile: options.awsProfile });
    // Also makes the client read the region (and other settings) from that profile.
    config.profile = options.awsProfile;
  } else {
    const keys = environmentKeysOverProfile();
    if (keys !== undefined) config.credentials = keys;
  }
  return config;
}

export async function createS3Client(options: S3ConnectionOptions): Promise<S3Client> {
  const [sdk, config] = await Promise.all([loadS3Sdk(), s3ClientConfig(options)]);
  const client = new sdk.S3Client(config);
  client.middlewareStack.add(skipPayloadSigningWhenChecksummed, UNSIGNED_PAYLOAD_MIDDLEWARE);
  if (options.endpoint !== undefined) client.middlewareStack.addRelativeTo(contentMd5InsteadOfChecksums, CONTENT_MD5_MIDDLEWARE);
  client.middlewareStack.add(boundedAnswers, BOUNDED_ANSWERS_MIDDLEWARE);
  client.middlewareStack.add(unparsedAnswersRetried, UNPARSED_ANSWERS_MIDDLEWARE);
  return client;
}

// In the deserialize step, below the SDK's retries (finalizeRequest step) and its deserializer.
const UNPARSED_ANSWERS_MIDDLEWARE = { name: 'openclawUnparsedAnswersRetried', step: 'deserialize', priority: 'low', override: true } as const;

/**
 * Node's HTTP parser failing on an answer (`HPE_*`: bytes that are no HTTP, as a store's or a
 * proxy's stray bytes after a body of the stated length read by the next request on the kept
 * connection) makes the request one the SDK retries, as it does a reset connection: the socket
 * is destroyed with the error, and the attempt after it goes out on another. Without this the
 * first such answer failed a listing of many backups. Marked retryable through the SDK's own
 * trait; what persists is said in one line by s3-errors.ts.
 */
function unparsedAnswersRetried<Input extends object, Output extends object>(next: DeserializeHandler<Input, Output>): DeserializeHandler<Input, Output> {
  return async (args: DeserializeHandlerArguments<Input>) => {
    try {
      return await next(args);
    } catch (error) {
      if (isHttpParseError(error)) (error as { $retryable?: object }).$retryable ??= {};
      throw error;
    }
  };
}

/** An error of Node's HTTP parser (llhttp's `HPE_*` codes). */
function isHttpParseError(error: unknown): boolean {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('HPE_');
}

/**
 * The most bytes of an answer the SDK reads whole (a listing page, tags, an error document):
 * S3's largest, a ListObjectsV2 page of 1,000 keys of 1,024 bytes each escaped, is under 6 MiB.
 * A store that sent one page of a million keys (214 MB of XML) took the CLI past 1 GiB.
 */
export const MAX_ANSWER_BYTES = 8 * 1024 * 1024;

// In the deserialize step, below the SDK's deserializer (lower priority runs nearer the wire).
const BOUNDED_ANSWERS_MIDDLEWARE = { name: 'openclawBoundedAnswers', step: 'deserialize', priority: 'low', override: true } as const;

/**
 * Answers the SDK parses whole fail past MAX_ANSWER_BYTES, read no further. GetObject's body
 * is the caller's stream, read as it goes, and left alone (its error documents are not).
 */
function boundedAnswers<Input extends object, Output extends object>(next: DeserializeHandler<Input, Output>, context: HandlerExecutionContext): DeserializeHandler<Input, Output> {
  return async (args: DeserializeHandlerArguments<Input>) => {
    const result = await next(args);
    const response = result.response as { statusCode?: number; body?: unknown };
    const request = (context.commandName ?? 'the request').replace(/Command$/, '');
    if (response.body instanceof Readable && (request !== 'GetObject' || (response.statusCode ?? 200) >= 300)) {
      response.body = cutAfter(response.body, MAX_ANSWER_BYTES, request);
    }
    return result;
  };
}

/** `body` as it comes, failing with NotS3Answer (and the body destroyed) once past `limit` bytes. */
function cutAfter(body: Readable, limit: number, request: string): Readable {
  let seen = 0;
  const counted = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen > limit) done(new NotS3Answer(request, `an answer of more than ${limit / 1024 / 1024} MiB, more than any S3 answer holds`));
      else done(null, chunk);
    },
  });
  pipeline(body, counted, () => {});
  return counted;
}

const UNSIGNED_PAYLOAD_MIDDLEWARE = { name: 'openclawUnsignedPayload', step: 'build', priority: 'low', override: true } as const;
const CONTENT_SHA256 = 'x-amz-content-sha256';

/**
 * Over HTTPS, a body that carries a checksum header S3 verifies (CRC32 on every upload to
 * AWS) is not hashed a second time for the signature: `UNSIGNED-PAYLOAD`, as the aws CLI
 * does. TLS protects it in transit and the checksum end to end; SHA-256 of every uploaded
 * byte (0.25 s of CPU per 370 MB here, more on a Lambda) is saved. Plain HTTP and bodies
 * without a checksum are signed as before. (A bucket policy that denies unsigned payloads
 * through the `s3:x-amz-content-sha256` condition key refuses the aws CLI alike.) Runs after
 * the SDK's checksum middleware (same step, lower priority) and before signing (a later step).
 */
function skipPayloadSigningWhenChecksummed<Input extends object, Output extends object>(next: BuildHandler<Input, Output>): BuildHandler<Input, Output> {
  return async (args: BuildHandlerArguments<Input>) => {
    const request = args.request as Partial<HttpRequestLike> | undefined;
    const headers = request?.headers;
    if (request?.protocol === 'https:' && headers !== undefined && !(CONTENT_SHA256 in headers)) {
      const checksummed = Object.keys(headers).some((name) => name.toLowerCase().startsWith('x-amz-checksum-'));
      if (checksummed) headers[CONTENT_SHA256] = 'UNSIGNED-PAYLOAD';
    }
    return next(args);
  };
}

interface HttpRequestLike {
  readonly protocol: string;
  readonly headers: Record<string, string>;
}

const CONTENT_MD5_MIDDLEWARE = { name: 'openclawContentMd5', relation: 'before', toMiddleware: UNSIGNED_PAYLOAD_MIDDLEWARE.name, override: true } as const;
const CHECKSUM_HEADER = /^x-amz-(?:sdk-)?checksum-/i;

/**
 * At a custom endpoint, the checksum an API requires (PutObjectTagging's: the tags and the
 * verification mark) goes as Content-MD5, which every S3-compatible store takes, instead of
 * the SDK's `x-amz-checksum-crc32` (since SDK 3.729), which older MinIO, Oracle's and others
 * refuse as an unsupported header: there no tag was ever attached, so no encrypted backup was
 * ever confirmed whole for prune. AWS itself takes either; the SDK's own default stays there.
 * Only bodies at hand (the XML of such calls) are hashed; a streamed body keeps its headers.
 */
function contentMd5InsteadOfChecksums<Input extends object, Output extends object>(next: BuildHandler<Input, Output>): BuildHandler<Input, Output> {
  return async (args: BuildHandlerArguments<Input>) => {
    const request = args.request as Partial<HttpRequestLike & { body: unknown }> | undefined;
    const headers = request?.headers;
    const body = request?.body;
    const names = headers === undefined ? [] : Object.keys(headers).filter((name) => CHECKSUM_HEADER.test(name));
    if (headers !== undefined && names.length > 0 && (typeof body === 'string' || body instanceof Uint8Array)) {
      for (const name of names) delete headers[name];
      headers['content-md5'] = createHash('md5').update(body).digest('base64');
    }
    return next(args);
  };
}
