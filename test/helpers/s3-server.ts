// A real S3-compatible server for tests: s3rver in-process on 127.0.0.1, a random port and
// a temporary directory, with one bucket, silent. s3rver's gaps (see ../shared/README.md):
// it ignores If-None-Match and If-Match, answers AbortMultipartUpload with 405 and
// ListMultipartUploads with 501, so those paths are tested with aws-sdk-client-mock.
// Only the access key id "S3RVER" is accepted (any secret: SigV4 is not verified).

import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3ConnectionOptions } from '../../shared/storage/s3-client.js';

interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
  httpServer?: Server;
  logger: { close(): void };
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance;

// s3rver ships no type declarations.
const require = createRequire(import.meta.url);
const S3rver = require('s3rver') as S3rverConstructor;

// s3rver makes its continuation tokens with single DES, which OpenSSL 3 keeps in its legacy
// provider: without --openssl-legacy-provider every listing it must truncate (more keys than
// MaxKeys) answered 500. Three-key DES with the one key three times is single DES, and is in
// the default provider: s3rver's calls are handed to it, so a listing goes on in pages as S3's does.
const crypto = require('node:crypto') as Record<'createCipheriv' | 'createDecipheriv', (...args: unknown[]) => unknown>;
for (const name of ['createCipheriv', 'createDecipheriv'] as const) {
  const original = crypto[name];
  if (original.name === 'singleDesAsTripleDes') continue;
  crypto[name] = function singleDesAsTripleDes(...args: unknown[]) {
    const [algorithm, key, ...rest] = args;
    return algorithm === 'des' && Buffer.isBuffer(key) && key.length === 8 ? original('des-ede3-cbc', Buffer.concat([key, key, key]), ...rest) : original(...args);
  };
}

export const S3RVER_ACCESS_KEY = 'S3RVER';

/** The independent client: /usr/bin/aws, where Debian's awscli is installed. */
export const AWS_CLI = '/usr/bin/aws';

/** The environment /usr/bin/aws runs in against s3rver: its keys, and nothing of this machine's AWS configuration. */
export function awsCliEnvironment(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: '/nonexistent',
    AWS_ACCESS_KEY_ID: S3RVER_ACCESS_KEY,
    AWS_SECRET_ACCESS_KEY: S3RVER_ACCESS_KEY,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: '/nonexistent/config',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_PAGER: '',
  };
}

export interface S3TestServer {
  readonly endpoint: string;
  readonly port: number;
  readonly bucket: string;
  /** Where s3rver keeps its files; reuse it to restart the server with the same content. */
  readonly directory: string;
  /** For createS3Client: endpoint, static credentials, us-east-1, no retries to speak of. */
  readonly clientOptions: S3ConnectionOptions;
  /** Stops the server, cutting open connections. Idempotent. */
  stop(): Promise<void>;
  /** stop() and remove the directory. */
  dispose(): Promise<void>;
}

export interface StartOptions {
  readonly bucket?: string;
  /** Reuse the content of an earlier server. */
  readonly directory?: string;
  readonly port?: number;
  /** Serve HTTPS with this PEM key and certificate (endpoint https://127.0.0.1:PORT). */
  readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer };
}

export async function startS3Server(options: StartOptions = {}): Promise<S3TestServer> {
  const bucket = options.bucket ?? 'backups';
  const directory = options.directory ?? (await mkdtemp(join(tmpdir(), 'openclaw-s3rver-')));
  const server = new S3rver({
    address: '127.0.0.1',
    port: options.port ?? 0,
    directory,
    silent: true,
    configureBuckets: [{ name: bucket }],
    ...(options.tls !== undefined && { key: options.tls.key, cert: options.tls.cert }),
  });
  // s3rver closes its (silent) logger when the server closes; a request finishing after
  // that makes winston complain on stderr. Keep the logger open.
  server.logger.close = () => {};
  const { port } = await server.run();
  const endpoint = `${options.tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`;
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      const closing = server.close();
      server.httpServer?.closeAllConnections();
      await closing;
    })());
  return {
    endpoint,
    port,
    bucket,
    directory,
    clientOptions: { endpoint, region: 'us-east-1', accessKey: S3RVER_ACCESS_KEY, secretKey: 'test-secret-key', maxAttempts: 2 },
    stop,
    async dispose() {
      await stop();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

/** A local HTTP server of a test (a proxy in front of s3rver, or a web server that is not S3). */
export interface RecordingServer {
  readonly endpoint: string;
  /** Every request it was sent, in order. */
  readonly requests: RecordedRequest[];
  stop(): Promise<void>;
}

/**
 * An HTTP proxy in front of `target` that cuts the first `times` plain (not ranged) GET
 * responses after `afterBytes` body bytes: the headers promise the full length, then the
 * connection closes. Everything else passes through untouched.
 */
export async function startCuttingProxy(target: string, afterBytes: number, times = 1): Promise<RecordingServer> {
  const requests: RecordedRequest[] = [];
  let cutsLeft = times;
  const server = createServer((request, response) => {
    requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers });
    const upstream = httpRequest(`${target}${request.url ?? '/'}`, { method: request.method, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      const cut = request.method === 'GET' && request.headers.range === undefined && answer.statusCode === 200 && cutsLeft > 0;
      if (!cut) {
        answer.pipe(response);
        return;
      }
      cutsLeft -= 1;
      let sent = 0;
      answer.on('data', (chunk: Buffer) => {
        if (sent >= afterBytes) return;
        const piece = chunk.subarray(0, afterBytes - sent);
        sent += piece.length;
        response.write(piece);
        if (sent >= afterBytes) {
          answer.destroy();
          response.socket?.end();
        }
      });
    });
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  return listening(server, requests);
}


/**
 * An HTTP proxy in front of `target` (s3rver) that stops reading the body of every UploadPart
 * of part `stallPart`, or every PutObject of an object (a wedged store, a dead link behind a NAT that still holds the
 * connection): it never reads on nor answers, and the sender's socket fills up. Everything
 * else passes through untouched. `stalled` counts the parts it stopped.
 */
export async function startStallingProxy(target: string, stallPart: number | 'PutObject' = 2): Promise<RecordingServer & { readonly stalled: () => number }> {
  const requests: RecordedRequest[] = [];
  let stalled = 0;
  const server = createServer((request, response) => {
    requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers });
    const url = new URL(request.url ?? '/', 'http://proxy');
    const stalls = stallPart === 'PutObject' ? url.searchParams.get('x-id') === 'PutObject' : url.searchParams.get('partNumber') === String(stallPart);
    if (request.method === 'PUT' && stalls) {
      stalled += 1;
      request.pause();
      return;
    }
    passThrough(target, request, response);
  });
  return { ...(await listening(server, requests)), stalled: () => stalled };
}

/** A GET of an object's end (a closed byte range not from 0: a footer's read). */
function isTailRead(request: IncomingMessage): boolean {
  const range = request.headers.range;
  return request.method === 'GET' && typeof range === 'string' && /^bytes=[1-9]\d*-\d+$/.test(range);
}

/** A GET of an object from its start (no byte range, or one from 0: a restore's opening read). */
function isOpeningRead(request: IncomingMessage): boolean {
  const url = new URL(request.url ?? '/', 'http://proxy');
  const range = request.headers.range;
  const objectRead = request.method === 'GET' && url.pathname.split('/').filter(Boolean).length >= 2 && [...url.searchParams.keys()].every((key) => key === 'x-id');
  return objectRead && (range === undefined || (typeof range === 'string' && range.startsWith('bytes=0-')));
}

/**
 * An HTTP proxy in front of `target` (s3rver) that holds the requests `holds` picks, as a store
 * throttling or wedged does: `'request'`, never answered; `'body'`, answered with the store's
 * status and headers, then not one byte of the body (a connection that stalls after its answer
 * began). Everything else passes through. `held` counts what it holds; `stop` cuts them.
 */
async function startHoldingProxy(target: string, holds: (request: IncomingMessage) => 'request' | 'body' | undefined): Promise<RecordingServer & { readonly held: () => number }> {
  const requests: RecordedRequest[] = [];
  let held = 0;
  const server = createServer((request, response) => {
    requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers });
    const hold = holds(request);
    if (hold === undefined) return passThrough(target, request, response);
    if (hold === 'request') {
      held += 1;
      return;
    }
    const upstream = httpRequest(`${target}${request.url ?? '/'}`, { method: request.method, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      response.flushHeaders();
      held += 1;
      answer.resume(); // read and dropped: the body never reaches the client
    });
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  return { ...(await listening(server, requests)), held: () => held };
}

/** Never answers a GET of an object's end (a footer's read). */
export function startTailHoldingProxy(target: string): Promise<RecordingServer & { readonly held: () => number }> {
  return startHoldingProxy(target, (request) => (isTailRead(request) ? 'request' : undefined));
}

/** Never answers a GET of an object from its start (a restore's opening read); listings, HEADs and reads of an end pass. */
export function startOpeningHoldingProxy(target: string): Promise<RecordingServer & { readonly held: () => number }> {
  return startHoldingProxy(target, (request) => (isOpeningRead(request) ? 'request' : undefined));
}

/** Answers a GET of an object from its start with its status and headers, then holds its body. */
export function startBodyHoldingProxy(target: string): Promise<RecordingServer & { readonly held: () => number }> {
  return startHoldingProxy(target, (request) => (isOpeningRead(request) ? 'body' : undefined));
}

/**
 * An HTTP proxy in front of `target` (s3rver) that passes everything through and counts the
 * keys its ListObjectsV2 answers held: what listings cost a store (S3 answers 1,000 keys a request).
 */
export async function startCountingProxy(target: string): Promise<RecordingServer & { readonly listedKeys: () => number }> {
  const requests: RecordedRequest[] = [];
  let listedKeys = 0;
  const server = createServer((request, response) => {
    requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers });
    const listing = request.method === 'GET' && new URL(request.url ?? '/', 'http://proxy').searchParams.get('list-type') === '2';
    const upstream = httpRequest(`${target}${request.url ?? '/'}`, { method: request.method, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      if (listing) {
        let body = '';
        answer.on('data', (chunk: Buffer) => (body += chunk.toString('latin1')));
        answer.on('end', () => (listedKeys += body.split('<Key>').length - 1));
      }
      answer.pipe(response);
    });
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  return { ...(await listening(server, requests)), listedKeys: () => listedKeys };
}

/**
 * An HTTP server that is not S3: every request, whatever its method, gets `status` and a small
 * web page (a web server's default site, a console port taken for the API port, a captive
 * portal), or with 404 an empty body (a gateway that knows no such host).
 */
export async function startWebServer(status = 200): Promise<RecordingServer> {
  const requests: RecordedRequest[] = [];
  const server = createServer((request, response) => {
    requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers });
    request.resume();
    request.on('end', () => {
      if (status === 404) response.writeHead(404).end();
      else response.writeHead(status, { 'content-type': 'text/html' }).end('<html><body>Welcome</body></html>');
    });
  });
  return listening(server, requests);
}

/** The request that commits an object: a single PutObject, or CompleteMultipartUpload. */
export type CommitRequest = 'PutObject' | 'CompleteMultipartUpload';

/**
 * An HTTP proxy in front of `target` (s3rver) that loses the answer to the first `lose`
 * request: the request reaches the server and is carried out, then the connection is cut
 * instead of answering, so the client retries a write that already happened. Like AWS, and
 * unlike s3rver, it refuses a PutObject or CompleteMultipartUpload that carries
 * `If-None-Match: *` with 412 when the key already exists.
 */
export async function startAnswerLosingProxy(target: string, lose: CommitRequest, options: { readonly deniesLooks?: boolean; readonly answersToLose?: number } = {}): Promise<RecordingServer> {
  const requests: RecordedRequest[] = [];
  let answersToLose = options.answersToLose ?? 1;
  const commitOf = (method: string | undefined, url: URL): CommitRequest | undefined => {
    if (method === 'POST' && url.searchParams.has('uploadId')) return 'CompleteMultipartUpload';
    if (method === 'PUT' && !url.searchParams.has('uploadId') && !url.searchParams.has('tagging') && !url.searchParams.has('partNumber')) return 'PutObject';
    return undefined;
  };
  const keyExists = (path: string) =>
    new Promise<boolean>((resolve) => {
      const head = httpRequest(`${target}${path}`, { method: 'HEAD' }, (answer) => {
        answer.resume();
        resolve(answer.statusCode === 200);
      });
      head.on('error', () => resolve(false));
      head.end();
    });
  const server = createServer((request, response) => {
    void (async () => {
      requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers });
      const url = new URL(request.url ?? '/', 'http://proxy');
      const commit = commitOf(request.method, url);
      // Write-only credentials: a look at an object (HEAD, GET) is denied.
      if (options.deniesLooks === true && (request.method === 'HEAD' || (request.method === 'GET' && url.pathname.split('/').length > 2 && url.search === ''))) {
        request.resume();
        response.writeHead(403, { 'content-type': 'application/xml' });
        response.end(request.method === 'HEAD' ? undefined : '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>');
        return;
      }
      if (commit !== undefined && request.headers['if-none-match'] === '*' && (await keyExists(url.pathname))) {
        request.resume();
        response.writeHead(412, { 'content-type': 'application/xml' });
        response.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>');
        return;
      }
      const upstream = httpRequest(`${target}${request.url ?? '/'}`, { method: request.method, headers: request.headers }, (answer) => {
        if (commit === lose && answersToLose > 0) {
          answersToLose -= 1;
          answer.resume();
          answer.on('end', () => request.socket.destroy());
          return;
        }
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      });
      upstream.on('error', () => response.destroy());
      request.pipe(upstream);
    })();
  });
  return listening(server, requests);
}

/**
 * An HTTP proxy in front of `target` (s3rver) that plays AWS for objects a lifecycle rule moved
 * to the GLACIER storage class (`archived(key)`): a GET of one is refused with 403
 * InvalidObjectState until it is restored, a HEAD and a listing say GLACIER; tags, metadata
 * (through HEAD) and deletes work as usual. s3rver has no storage classes.
 */
export async function startGlacierProxy(target: string, archived: (key: string) => boolean): Promise<RecordingServer> {
  const requests: RecordedRequest[] = [];
  const server = createServer((request, response) => {
    requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers });
    const url = new URL(request.url ?? '/', 'http://proxy');
    const key = decodeURIComponent(url.pathname.split('/').slice(2).join('/'));
    if (request.method === 'GET' && archived(key) && !url.searchParams.has('tagging')) {
      request.resume();
      response.writeHead(403, { 'content-type': 'application/xml' });
      response.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidObjectState</Code><Message>The operation is not valid for the object\'s storage class</Message><StorageClass>GLACIER</StorageClass></Error>');
      return;
    }
    const listing = request.method === 'GET' && url.searchParams.get('list-type') === '2';
    const upstream = httpRequest(`${target}${request.url ?? '/'}`, { method: request.method, headers: request.headers }, (answer) => {
      const headers = { ...answer.headers };
      if (request.method === 'HEAD' && archived(key)) headers['x-amz-storage-class'] = 'GLACIER';
      if (!listing) {
        response.writeHead(answer.statusCode ?? 502, headers);
        answer.pipe(response);
        return;
      }
      const chunks: Buffer[] = [];
      answer.on('data', (chunk: Buffer) => chunks.push(chunk));
      answer.on('end', () => {
        const body = Buffer.concat(chunks)
          .toString()
          .replace(/<Contents>(.*?)<\/Contents>/gs, (contents: string, inner: string) => {
            const listed = /<Key>(.*?)<\/Key>/s.exec(inner)?.[1] ?? '';
            return archived(listed) ? contents.replace(/<StorageClass>[A-Z_]*<\/StorageClass>/, '<StorageClass>GLACIER</StorageClass>') : contents;
          });
        response.writeHead(answer.statusCode ?? 502, { ...headers, 'content-length': String(Buffer.byteLength(body)) });
        response.end(body);
      });
    });
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  return listening(server, requests);
}

/**
 * An HTTP proxy in front of `target` (s3rver) that, like AWS S3, B2, Wasabi or a MinIO with a
 * region, refuses a request signed for any region but `region`: 400 AuthorizationHeaderMalformed
 * naming the region it expects. s3rver checks no signature's region.
 */
export function startRegionProxy(target: string, region: string): Promise<RecordingServer> {
  return startRefusingProxy(target, (request) => {
    const signed = /Credential=[^/]+\/\d{8}\/([^/]+)\/s3\/aws4_request/.exec(String(request.headers.authorization ?? ''))?.[1];
    if (signed === region) return undefined;
    return {
      status: 400,
      body: `<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; the region '${signed ?? ''}' is wrong; expecting '${region}'</Message><Region>${region}</Region><RequestId>0</RequestId></Error>`,
    };
  });
}

/** An HTTP proxy in front of `target` (s3rver) that passes every request on and records it: the headers a client sent, which s3rver may not keep. */
export function startRecordingProxy(target: string): Promise<RecordingServer> {
  return startRefusingProxy(target, () => undefined);
}

/** An HTTP proxy in front of `target` (s3rver) that passes every request on, recorded, after `onRequest` has seen it (a test acts there, as another host would, mid-upload). */
export function startWatchingProxy(target: string, onRequest: (method: string, url: URL) => void): Promise<RecordingServer> {
  return startRefusingProxy(target, (request) => {
    onRequest(request.method ?? '', new URL(request.url ?? '/', 'http://proxy'));
    return undefined;
  });
}

/**
 * An HTTP proxy in front of `target` (s3rver) that refuses every PutObjectTagging with 403
 * AccessDenied, as AWS does for credentials without s3:PutObjectTagging (and, with 503
 * SlowDown, a tagging throttled past its retries); everything else passes through untouched.
 */
export function startTaggingRefusingProxy(target: string): Promise<RecordingServer> {
  return startRefusingProxy(target, (request) =>
    request.method === 'PUT' && new URL(request.url ?? '/', 'http://proxy').searchParams.has('tagging')
      ? { status: 403, body: '<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>0</RequestId></Error>' }
      : undefined,
  );
}

/**
 * An HTTP proxy in front of `target` (s3rver) that refuses every GetObjectTagging with 403
 * AccessDenied, as AWS does for a role without s3:GetObjectTagging (the backup function's);
 * everything else passes through untouched.
 */
export function startTagReadRefusingProxy(target: string): Promise<RecordingServer> {
  return startRefusingProxy(target, (request) =>
    isTagRead(request.method ?? '', request.url ?? '/') ? { status: 403, body: '<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>0</RequestId></Error>' } : undefined,
  );
}

/** Is this request a GetObjectTagging (GET `?tagging`)? */
export function isTagRead(method: string, url: string): boolean {
  return method === 'GET' && new URL(url, 'http://proxy').searchParams.has('tagging');
}

/** What a test does as a CompleteMultipartUpload reaches the completed-upload proxy. */
export interface CompletingHooks {
  /** Called as the completion arrives, before it is carried out: a test reads there what a client killed right then leaves. */
  readonly onCompleting?: () => void;
  /** True refuses it (400 InvalidPart) without passing it on: as if the client had died before sending it. */
  readonly refuse?: () => boolean;
}

/**
 * An HTTP proxy in front of `target` (s3rver) that, like AWS, knows a multipart upload no more
 * once it is completed: any later request naming its upload id (UploadPart, ListParts,
 * CompleteMultipartUpload, AbortMultipartUpload) is answered 404 NoSuchUpload. s3rver keeps
 * taking parts and completions for it.
 */
export async function startCompletedUploadProxy(target: string, hooks: CompletingHooks = {}): Promise<RecordingServer> {
  const completed = new Set<string>();
  const requests: RecordedRequest[] = [];
  const refuse = (response: ServerResponse, status: number, code: string, message: string) => {
    response.writeHead(status, { 'content-type': 'application/xml' });
    response.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message><RequestId>0</RequestId></Error>`);
  };
  const server = createServer((request, response) => {
    requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers });
    const uploadId = new URL(request.url ?? '/', 'http://proxy').searchParams.get('uploadId');
    if (uploadId !== null && completed.has(uploadId)) {
      request.resume();
      refuse(response, 404, 'NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.');
      return;
    }
    const completing = request.method === 'POST' && uploadId !== null;
    if (completing) hooks.onCompleting?.();
    if (completing && hooks.refuse?.() === true) {
      request.resume();
      refuse(response, 400, 'InvalidPart', 'One or more of the specified parts could not be found.');
      return;
    }
    const upstream = httpRequest(`${target}${request.url ?? '/'}`, { method: request.method, headers: request.headers }, (answer) => {
      const body: Buffer[] = [];
      answer.on('data', (chunk: Buffer) => body.push(chunk));
      answer.on('end', () => {
        // A completion's errors may come in a 200 answer (S3 does that): only a result counts.
        if (completing && answer.statusCode === 200 && Buffer.concat(body).includes('CompleteMultipartUploadResult')) completed.add(uploadId);
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        response.end(Buffer.concat(body));
      });
    });
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  return listening(server, requests);
}

/**
 * A proxy in front of `target` playing a store whose multipart uploads someone else aborts (a
 * prune, a lifecycle rule; s3rver has no AbortMultipartUpload): after `abortUploads()`, every
 * request naming an upload is answered as AWS answers one it no longer knows, 404 NoSuchUpload.
 */
export async function startUploadAbortingProxy(target: string): Promise<RecordingServer & { abortUploads(): void }> {
  let aborted = false;
  const proxy = await startRefusingProxy(target, (request) =>
    aborted && new URL(request.url ?? '/', 'http://proxy').searchParams.has('uploadId')
      ? { status: 404, body: '<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.</Message><RequestId>0</RequestId></Error>' }
      : undefined,
  );
  return { ...proxy, abortUploads: () => (aborted = true) };
}

/**
 * An HTTP proxy in front of `target` (s3rver) that answers as AWS does credentials without
 * s3:ListBucket: a HEAD or GET of a key that is not there gets 403 AccessDenied, not 404.
 */
export async function startNoListBucketProxy(target: string): Promise<RecordingServer> {
  const requests: RecordedRequest[] = [];
  const server = createServer((request, response) => {
    requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers });
    const upstream = httpRequest(`${target}${request.url ?? '/'}`, { method: request.method, headers: request.headers }, (answer) => {
      if ((request.method === 'HEAD' || request.method === 'GET') && answer.statusCode === 404) {
        answer.resume();
        response.writeHead(403, { 'content-type': 'application/xml' });
        response.end(request.method === 'HEAD' ? undefined : '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>');
        return;
      }
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    });
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  return listening(server, requests);
}

/** An HTTP proxy in front of `target` answering the S3 error `refusal` gives for a request, passing the others through. */
/**
 * An HTTP proxy in front of `target` (s3rver) that refuses every HeadObject and GetObject with
 * 403 AccessDenied, as AWS does for credentials allowed s3:PutObject but not s3:GetObject
 * (write-only: they cannot look whether a key holds an object); everything else passes through.
 */
export function startLookRefusingProxy(target: string): Promise<RecordingServer> {
  return startRefusingProxy(target, (request) =>
    (request.method === 'HEAD' || request.method === 'GET') && !new URL(request.url ?? '/', 'http://proxy').searchParams.has('list-type')
      ? { status: 403, body: '<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>0</RequestId></Error>' }
      : undefined,
  );
}

async function startRefusingProxy(target: string, refusal: (request: IncomingMessage) => { status: number; body: string } | undefined): Promise<RecordingServer> {
  const requests: RecordedRequest[] = [];
  const server = createServer((request, response) => {
    requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers });
    const refused = refusal(request);
    if (refused !== undefined) {
      request.resume();
      response.writeHead(refused.status, { 'content-type': 'application/xml' });
      response.end(`<?xml version="1.0" encoding="UTF-8"?>${refused.body}`);
      return;
    }
    passThrough(target, request, response);
  });
  return listening(server, requests);
}

/** Sends `request` on to the server at `target` unchanged, and its answer back. */
function passThrough(target: string, request: IncomingMessage, response: ServerResponse): void {
  const upstream = httpRequest(`${target}${request.url ?? '/'}`, { method: request.method, headers: request.headers }, (answer) => {
    response.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(response);
  });
  upstream.on('error', () => response.destroy());
  request.pipe(upstream);
}

/** `server` listening on a free local port: its endpoint, the requests it records, and a stop. */
async function listening(server: Server, requests: RecordedRequest[]): Promise<RecordingServer> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
