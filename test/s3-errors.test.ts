// Each SDK error shape → a typed error with a stable code and one clear line, and no
// secret in any message.

import http from 'node:http';
import net, { type AddressInfo } from 'node:net';

import { S3ServiceException } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { AbortedError, DestinationExistsError, StorageError, UsageError } from '../shared/errors.js';
import { redact } from '../shared/storage/redact.js';
import { translateS3Error, type S3ErrorContext } from '../shared/storage/s3-errors.js';
import { runMain } from './helpers/run-main.js';

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const TOKEN = 'IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN';

const context: S3ErrorContext = {
  display: 's3://my-bucket/acme/x.tar.zst',
  bucket: 'my-bucket',
  operation: 'write',
  region: 'us-east-1',
  endpoint: 'https://minio.internal:9000',
  secrets: [SECRET, TOKEN],
};

function s3Error(name: string, status: number, message = `${name} happened`, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  const error = new S3ServiceException({ name, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status }, message });
  Object.assign(error, extra);
  Object.defineProperty(error, '$response', { value: { statusCode: status, headers }, enumerable: false });
  return error;
}

function networkError(code: string) {
  return Object.assign(new Error(`connect ${code} 10.0.0.1:9000`), { code, $metadata: {} });
}

describe('translateS3Error', () => {
  it.each([
    ['NoSuchBucket', s3Error('NoSuchBucket', 404), 'NO_SUCH_BUCKET', /bucket "my-bucket" does not exist/],
    ['NoSuchKey', s3Error('NoSuchKey', 404), 'NOT_FOUND', /no archive at s3:\/\/my-bucket\/acme\/x\.tar\.zst/],
    ['HEAD 404', s3Error('NotFound', 404, 'UnknownError'), 'NOT_FOUND', /no archive at/],
    ['AccessDenied', s3Error('AccessDenied', 403), 'ACCESS_DENIED', /access denied to s3:\/\/my-bucket/],
    ['HEAD 403', s3Error('Unknown', 403, 'UnknownError'), 'ACCESS_DENIED', /access denied .*bucket policy$/],
    ['AccessDenied naming its cause', s3Error('AccessDenied', 403, 'Access Denied because object protected by object lock.'), 'ACCESS_DENIED', /bucket policy \(S3: Access Denied because object protected by object lock\.\)$/],
    ['AccessDenied, bare', s3Error('AccessDenied', 403, 'Access Denied'), 'ACCESS_DENIED', /bucket policy$/],
    ['InvalidAccessKeyId', s3Error('InvalidAccessKeyId', 403), 'INVALID_CREDENTIALS', /rejected the credentials \(InvalidAccessKeyId\)/],
    ['SignatureDoesNotMatch', s3Error('SignatureDoesNotMatch', 403), 'INVALID_CREDENTIALS', /check the access key and secret key/],
    ['InvalidToken', s3Error('InvalidToken', 400), 'INVALID_CREDENTIALS', /rejected the credentials/],
    ['ExpiredToken', s3Error('ExpiredToken', 400, 'The provided token has expired.'), 'EXPIRED_CREDENTIALS', /credentials have expired/],
    [
      'expired SSO session',
      Object.assign(new Error('The SSO session associated with this profile has expired or is otherwise invalid.'), { name: 'CredentialsProviderError' }),
      'EXPIRED_CREDENTIALS',
      /aws sso login/,
    ],
    [
      'no credentials at all',
      Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }),
      'NO_CREDENTIALS',
      /no AWS credentials found .*--aws-profile/,
    ],
    [
      'unknown profile',
      Object.assign(new Error('Could not resolve credentials using profile: [nope] in configuration/credentials file(s).'), { name: 'CredentialsProviderError' }),
      'NO_CREDENTIALS',
      /cannot load AWS credentials .*\[nope\]/,
    ],
    ['RequestTimeTooSkewed', s3Error('RequestTimeTooSkewed', 403), 'CLOCK_SKEW', /clock is wrong/],
    [
      'KMS.NotFoundException on a write',
      s3Error('KMS.NotFoundException', 400, 'Invalid keyId alias/backups'),
      'ACCESS_DENIED',
      /^S3 cannot use the KMS key of s3:\/\/my-bucket\/acme\/x\.tar\.zst \(KMS\.NotFoundException: Invalid keyId alias\/backups\): check --sse-kms-key-id \(the key, its region\), that the key is enabled, and the credentials' kms:GenerateDataKey on it$/,
    ],
    ['KMS.ThrottlingException', s3Error('KMS.ThrottlingException', 400, 'Rate exceeded'), 'THROTTLED', /^KMS is throttling S3's requests for .*: try again later$/],
    ['ECONNREFUSED', networkError('ECONNREFUSED'), 'UNREACHABLE', /cannot reach https:\/\/minio\.internal:9000 .*: ECONNREFUSED \(nothing accepts connections at that address and port\)$/],
    ['ENOTFOUND', networkError('ENOTFOUND'), 'UNREACHABLE', /: ENOTFOUND \(the host name does not resolve: check its spelling, and DNS\)$/],
    ['EAI_AGAIN', networkError('EAI_AGAIN'), 'UNREACHABLE', /: EAI_AGAIN \(the host name could not be resolved now: check DNS and the network\)$/],
    ['ETIMEDOUT', networkError('ETIMEDOUT'), 'UNREACHABLE', /ETIMEDOUT/],
    ['TimeoutError', Object.assign(new Error('Connection timed out after 10000 ms'), { name: 'TimeoutError' }), 'UNREACHABLE', /: TimeoutError \(no answer\)$/],
    [
      'TimeoutError after retries',
      Object.assign(new Error('the request socket timed out after 120000 ms of inactivity'), { name: 'TimeoutError', $metadata: { attempts: 5 } }),
      'UNREACHABLE',
      /^cannot reach https:\/\/minio\.internal:9000 for s3:\/\/my-bucket\/acme\/x\.tar\.zst: TimeoutError \(no answer in 5 attempts\)$/,
    ],
    ['self-signed certificate', networkError('DEPTH_ZERO_SELF_SIGNED_CERT'), 'UNREACHABLE', /: DEPTH_ZERO_SELF_SIGNED_CERT \(TLS certificate problem: a private CA is trusted through AWS_CA_BUNDLE=FILE or NODE_EXTRA_CA_CERTS=FILE\)$/],
    [
      'PermanentRedirect with region header',
      s3Error('PermanentRedirect', 301, 'The bucket you are attempting to access must be addressed using the specified endpoint.', {}, { 'x-amz-bucket-region': 'eu-west-1' }),
      'WRONG_REGION',
      /is in region eu-west-1, which https:\/\/minio\.internal:9000 does not serve \(HTTP 301\)/,
    ],
    [
      'AuthorizationHeaderMalformed with Region',
      s3Error('AuthorizationHeaderMalformed', 400, "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-central-1'", { Region: 'eu-central-1' }),
      'WRONG_REGION',
      /--region eu-central-1/,
    ],
    [
      'AuthorizationHeaderMalformed, region only in the message',
      s3Error('AuthorizationHeaderMalformed', 400, "the region 'us-east-1' is wrong; expecting 'ap-south-1'"),
      'WRONG_REGION',
      /--region ap-south-1/,
    ],
    [
      'AuthorizationHeaderMalformed at a store with a region of its own naming',
      s3Error('AuthorizationHeaderMalformed', 400, "the region 'us-east-1' is wrong; expecting 'garage'"),
      'WRONG_REGION',
      /--region garage$/,
    ],
    ['SlowDown', s3Error('SlowDown', 503), 'THROTTLED', /throttling/],
    [
      'InvalidObjectState (Glacier)',
      s3Error('InvalidObjectState', 403, "The operation is not valid for the object's storage class", { StorageClass: 'DEEP_ARCHIVE' }),
      'NOT_SUPPORTED',
      /^s3:\/\/my-bucket\/acme\/x\.tar\.zst is in an archive storage class \(DEEP_ARCHIVE\): restore it first \(aws s3api restore-object\), then read it$/,
    ],
    ['NotImplemented', s3Error('NotImplemented', 501), 'NOT_SUPPORTED', /does not support/],
    ['too many parts', new Error('Exceeded 10000 parts in multipart upload to Bucket: my-bucket Key: acme/x.tar.zst.'), 'TOO_LARGE', /expected size/],
    ['InternalError', s3Error('InternalError', 500, 'We encountered an internal error. Please try again.'), 'S3', /S3 InternalError \(HTTP 500\) for s3:\/\/my-bucket\/acme\/x\.tar\.zst: We encountered/],
    [
      'a 5xx without an S3 error: a proxy\'s page',
      s3Error('Unknown', 502, 'UnknownError'),
      'S3',
      /^https:\/\/minio\.internal:9000 answered HTTP 502 for s3:\/\/my-bucket\/acme\/x\.tar\.zst without an S3 error \(a proxy's or a load balancer's page\?\): the store, or what stands in front of it, failed the request; try again later, and if it stays, check them$/,
    ],
    [
      'a web page for an error document',
      Object.assign(new Error('@aws-sdk XML parse error: mismatched tags <meta> and </head>.'), { $metadata: { httpStatusCode: 404 } }),
      'S3',
      /^https:\/\/minio\.internal:9000 does not answer like S3 \(HTTP 404 with a body that is not S3's XML\) for s3:\/\/my-bucket\/acme\/x\.tar\.zst: is it the store's S3 API endpoint\?$/,
    ],
  ])('%s', (_label, error, code, message) => {
    const translated = translateS3Error(error, context);
    expect(translated.code).toBe(code);
    expect(translated.message).toMatch(message);
    expect(translated.message).not.toContain('\n');
  });

  it('turns a failed conditional write into DestinationExistsError, and a failed If-Match read into CHANGED', () => {
    const failed = s3Error('PreconditionFailed', 412, 'At least one of the pre-conditions you specified did not hold');
    expect(translateS3Error(failed, context)).toBeInstanceOf(DestinationExistsError);
    expect(translateS3Error(s3Error('ConditionalRequestConflict', 409), context)).toBeInstanceOf(DestinationExistsError);
    const changed = translateS3Error(failed, { ...context, operation: 'read' });
    expect(changed).toBeInstanceOf(StorageError);
    expect(changed.code).toBe('CHANGED');
  });

  it('reads a region redirect from AWS S3 as one, and a custom endpoint\'s redirect naming no region as a redirect', () => {
    const aws = { ...context, endpoint: undefined };
    const headWithoutBody = translateS3Error(s3Error('Unknown', 301, 'UnknownError'), aws);
    expect([headWithoutBody.code, headWithoutBody.message]).toEqual(['WRONG_REGION', 'S3 bucket "my-bucket" is in another region, not us-east-1: pass the bucket\'s --region']);
    const named = translateS3Error(s3Error('PermanentRedirect', 301, 'moved', {}, { 'x-amz-bucket-region': 'eu-west-1' }), aws);
    expect([named.code, named.message]).toEqual(['WRONG_REGION', 'S3 bucket "my-bucket" is in region eu-west-1, not us-east-1: pass --region eu-west-1']);
    // A proxy sending http:// to https://: no --region helps, and the SDK does not follow it.
    for (const status of [301, 302, 307, 308]) {
      const redirect = translateS3Error(s3Error('Unknown', status, 'UnknownError', {}, { location: `https://minio.internal:9000/my-bucket/acme/x.tar.zst?X-Amz-Signature=${SECRET}` }), context);
      expect([redirect.code, redirect.message]).toEqual([
        'S3',
        `https://minio.internal:9000 answered HTTP ${status}, a redirect to "https://minio.internal:9000/my-bucket/acme/x.tar.zst?X-Amz-Signature=***", for s3://my-bucket/acme/x.tar.zst: redirects are not followed: give the store's own S3 address as the endpoint`,
      ]);
    }
    const bare = translateS3Error(s3Error('TemporaryRedirect', 307), context);
    expect(bare.message).toBe("https://minio.internal:9000 answered HTTP 307, a redirect, for s3://my-bucket/acme/x.tar.zst: redirects are not followed: give the store's own S3 address as the endpoint");
    // A custom endpoint that is S3 of another region: its requests go there whatever --region says, so the endpoint must change.
    const regional = translateS3Error(s3Error('PermanentRedirect', 301, 'moved', {}, { 'x-amz-bucket-region': 'eu-west-1' }), { ...context, endpoint: 'https://s3.amazonaws.com', region: 'eu-west-1' });
    expect([regional.code, regional.message]).toEqual([
      'WRONG_REGION',
      'S3 bucket "my-bucket" is in region eu-west-1, which https://s3.amazonaws.com does not serve (HTTP 301): give that region\'s endpoint (https://s3.eu-west-1.amazonaws.com), or leave the endpoint out and pass --region eu-west-1',
    ]);
    const china = translateS3Error(s3Error('TemporaryRedirect', 307, 'moved', {}, { 'x-amz-bucket-region': 'cn-north-1' }), { ...context, endpoint: 'https://s3.amazonaws.com' });
    expect(china.message).toMatch(/give that region's endpoint \(https:\/\/s3\.cn-north-1\.amazonaws\.com\.cn\)/);
    // A FIPS or dual-stack endpoint is answered with the same kind of endpoint: no advice drops FIPS.
    const redirect = s3Error('PermanentRedirect', 301, 'moved', {}, { 'x-amz-bucket-region': 'us-west-2' });
    expect(translateS3Error(redirect, { ...context, endpoint: 'https://s3-fips.us-east-1.amazonaws.com' }).message).toMatch(/give that region's endpoint \(https:\/\/s3-fips\.us-west-2\.amazonaws\.com\)/);
    expect(translateS3Error(redirect, { ...context, endpoint: 'https://s3-fips.dualstack.us-east-1.amazonaws.com' }).message).toMatch(/\(https:\/\/s3-fips\.dualstack\.us-west-2\.amazonaws\.com\)/);
    expect(translateS3Error(redirect, { ...context, endpoint: 'https://s3.dualstack.us-east-1.amazonaws.com' }).message).toMatch(/\(https:\/\/s3\.dualstack\.us-west-2\.amazonaws\.com\)/);
    // A store's header that is no region is not made into an address to give (nor a --region to pass).
    const forged = translateS3Error(s3Error('PermanentRedirect', 301, 'moved', {}, { 'x-amz-bucket-region': 'evil.example/#' }), context);
    expect(translateS3Error(s3Error('PermanentRedirect', 301, 'moved', {}, { 'x-amz-bucket-region': 'garage' }), context).message).toMatch(/answered HTTP 301, a redirect, for .*: redirects are not followed/);
    expect(forged.message).toBe("https://minio.internal:9000 answered HTTP 301, a redirect, for s3://my-bucket/acme/x.tar.zst: redirects are not followed: give the store's own S3 address as the endpoint");
  });

  it('reports a store behind a redirecting proxy as a redirect, not a region, and sends nothing to where it points (the CLI)', async () => {
    const requests: string[] = [];
    const target = http.createServer((request, response) => { requests.push(`target ${request.method} ${request.url}`); response.writeHead(500).end(); });
    const proxy = http.createServer((request, response) => {
      requests.push(`proxy ${request.method} ${request.url}`);
      const { port } = target.address() as AddressInfo;
      response.writeHead(301, { location: `http://127.0.0.1:${port}/other${request.url}`, 'content-type': 'text/html' }).end('<html>301 Moved Permanently</html>');
    });
    await Promise.all([target, proxy].map((server) => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))));
    try {
      const endpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/minio-a`;
      const result = await runMain(['tenants', 'backups', 'acme', '--in', 's3://backups/', '--endpoint', endpoint, '--access-key', 'AKIAEXAMPLE', '--secret-key', SECRET]);
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(new RegExp(`^openclaw: ${endpoint.replace(/[.]/g, '\\.')} answered HTTP 301, a redirect to "http://127\\.0\\.0\\.1:\\d+/other/minio-a/backups/\\?list-type=2[^"]*", for s3://backups/: redirects are not followed: give the store's own S3 address as the endpoint\\n$`));
      expect(result.stderr).not.toContain(SECRET);
      expect(requests.length).toBeGreaterThan(0);
      expect(requests.every((line) => line.startsWith('proxy GET /minio-a/backups/?list-type=2'))).toBe(true);
    } finally {
      await Promise.all([target, proxy].map((server) => new Promise((resolve) => server.close(resolve))));
    }
  });

  it('says an https:// endpoint whose port speaks plain HTTP answers without TLS, naming the http:// one, not OpenSSL\'s "wrong version number" line (the CLI)', async () => {
    const plainStore = http.createServer((_request, response) => response.writeHead(500).end());
    await new Promise<void>((resolve) => plainStore.listen(0, '127.0.0.1', resolve));
    try {
      const address = `127.0.0.1:${(plainStore.address() as AddressInfo).port}`;
      const result = await runMain(['tenants', 'backups', 'acme', '--in', 's3://backups/', '--endpoint', `https://${address}`, '--access-key', 'AKIAEXAMPLE', '--secret-key', SECRET]);
      expect(result).toMatchObject({ status: 1, stdout: '' });
      expect(result.stderr).toBe(`openclaw: cannot reach https://${address} for s3://backups/: EPROTO (the TLS handshake failed: the port answers without TLS: for a store without TLS give the endpoint as http://${address})\n`);
    } finally {
      await new Promise((resolve) => plainStore.close(resolve));
    }
  });

  it('says an http:// endpoint whose connection is reset before any answer may be a TLS port, naming the https:// one, not "no answer" (the CLI)', async () => {
    // What a TLS port (Node's own) does with a plain HTTP request: reads it and resets the connection.
    const tlsPort = net.createServer((socket) => socket.once('data', () => socket.resetAndDestroy()));
    await new Promise<void>((resolve) => tlsPort.listen(0, '127.0.0.1', resolve));
    try {
      const address = `127.0.0.1:${(tlsPort.address() as AddressInfo).port}`;
      const result = await runMain(['tenants', 'backups', 'acme', '--in', 's3://backups/', '--endpoint', `http://${address}`, '--access-key', 'AKIAEXAMPLE', '--secret-key', SECRET]);
      expect(result).toMatchObject({ status: 1, stdout: '' });
      expect(result.stderr).toMatch(new RegExp(`^openclaw: cannot reach http://${address.replace(/[.]/g, '\\.')} for s3://backups/: ECONNRESET \\(the connection was reset before any answer( in each of \\d+ attempts)?: a port that speaks TLS does that to plain HTTP: for a store with TLS give the endpoint as https://${address.replace(/[.]/g, '\\.')}\\)\\n$`));
    } finally {
      await new Promise((resolve) => tlsPort.close(resolve));
    }
  });

  it('names where a missing bucket was looked for: the endpoint with its path, or S3 itself', () => {
    const at = (endpoint?: string) => translateS3Error(s3Error('NoSuchBucket', 404), { ...context, endpoint }).message;
    expect(at('http://127.0.0.1:9000/base')).toBe('S3 bucket "my-bucket" does not exist at http://127.0.0.1:9000/base (s3://my-bucket/acme/x.tar.zst)');
    expect(at(undefined)).toBe('S3 bucket "my-bucket" does not exist (s3://my-bucket/acme/x.tar.zst)');
  });

  it('says a read of an SSE-KMS object whose key is disabled needs the key enabled and kms:Decrypt, not a --sse-kms-key-id', () => {
    const error = translateS3Error(s3Error('KMS.DisabledException', 400, 'arn:aws:kms:us-east-1:1:key/abc is disabled.'), { ...context, operation: 'read' });
    expect([error.code, error.message]).toEqual([
      'ACCESS_DENIED',
      'S3 cannot use the KMS key of s3://my-bucket/acme/x.tar.zst (KMS.DisabledException: arn:aws:kms:us-east-1:1:key/abc is disabled.): the key must be enabled, and the credentials need kms:Decrypt on it',
    ]);
  });

  it('says a read denied without S3\'s reason may be of a key that is not there (403 for a missing key without s3:ListBucket)', () => {
    const read = translateS3Error(s3Error('AccessDenied', 403, 'Access Denied'), { ...context, operation: 'read' });
    expect(read.message).toBe("access denied to s3://my-bucket/acme/x.tar.zst: check the credentials' S3 permissions and the bucket policy, or the key: S3 answers a missing key so too when the credentials lack s3:ListBucket");
    const write = translateS3Error(s3Error('AccessDenied', 403, 'Access Denied'), context);
    expect(write.message).toBe("access denied to s3://my-bucket/acme/x.tar.zst: check the credentials' S3 permissions and the bucket policy");
  });

  it('reports a missing region as a usage error', () => {
    const translated = translateS3Error(new Error('Region is missing'), context);
    expect(translated).toBeInstanceOf(UsageError);
    expect(translated.message).toMatch(/--region/);
  });

  it('reports aborts as AbortedError and passes our own errors through', () => {
    expect(translateS3Error(Object.assign(new Error('Request aborted'), { name: 'AbortError' }), context)).toBeInstanceOf(AbortedError);
    const ours = new StorageError('mine', 'IO');
    expect(translateS3Error(ours, context)).toBe(ours);
  });

  it('never lets a secret key, session token or presigned URL into a message', () => {
    const leaky = [
      s3Error('InternalError', 500, `failed with secret ${SECRET} and token ${TOKEN}`),
      s3Error('Weird', 400, `see https://my-bucket.s3.amazonaws.com/x?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20260603&X-Amz-Signature=abcdef0123&X-Amz-Security-Token=${TOKEN}`),
      s3Error('Weird', 400, `Authorization: AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20260603/us-east-1/s3/aws4_request, Signature=deadbeef`),
      Object.assign(new Error(`could not use ${SECRET}`), { name: 'CredentialsProviderError' }),
    ];
    for (const error of leaky) {
      const { message } = translateS3Error(error, context);
      expect(message).not.toContain(SECRET);
      expect(message).not.toContain(TOKEN);
      expect(message).not.toContain('abcdef0123');
      expect(message).not.toContain('deadbeef');
    }
  });
});

describe('redact', () => {
  it('masks given secrets, presigned URL signatures, Authorization values and URL credentials', () => {
    expect(redact(`key ${SECRET} here`, [SECRET])).toBe('key *** here');
    expect(redact('https://h/x?X-Amz-Signature=abc&a=1')).toBe('https://h/x?X-Amz-Signature=***&a=1');
    expect(redact('https://user:pass@minio:9000/')).toBe('https://***@minio:9000/');
    expect(redact('s3://AKIAEXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCY@b/k')).toBe('s3://***@b/k');
    expect(redact('s3://bucket/key@2026.tar.zst and s3://b/a:b@c')).toBe('s3://bucket/key@2026.tar.zst and s3://b/a:b@c');
    expect(redact('AWS region us-east-1')).toBe('AWS region us-east-1');
    expect(redact('short', ['ab'])).toBe('short');
  });

  it('masks age secret keys and plugin identities, in any case, but not the hints that name their prefix', () => {
    const key = 'AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ';
    expect(redact(`age: error: unknown recipient type: "${key}"`)).toBe('age: error: unknown recipient type: "AGE-SECRET-KEY-1***"');
    expect(redact(`bad ${key.toLowerCase()}!`)).toBe('bad AGE-SECRET-KEY-1***!');
    expect(redact('id AGE-PLUGIN-YUBIKEY-1QXYZ0 end')).toBe('id AGE-PLUGIN-YUBIKEY-1*** end');
    // age-keygen's post-quantum keys (its default from age 1.4) and a plugin whose name has a dash.
    expect(redact('"AGE-SECRET-KEY-PQ-1K30MYPZAHAXHR22YHH27EGDVLU0QNSUH3DSV7J7NR3X6D9LHXNWSDLTV4T"')).toBe('"AGE-SECRET-KEY-PQ-1***"');
    expect(redact('id age-secret-key-pq-1k30mypzahaxhr22 end')).toBe('id AGE-SECRET-KEY-PQ-1*** end');
    expect(redact('id AGE-PLUGIN-FIDO2-HMAC-1QVQQQQZQZZZZ end')).toBe('id AGE-PLUGIN-FIDO2-HMAC-1*** end');
    expect(redact('use an X25519 identity (AGE-SECRET-KEY-1…)')).toBe('use an X25519 identity (AGE-SECRET-KEY-1…)');
  });

  it('masks an age key after any character but a letter, and after the letter of an escape; not a word that ends in "age"', () => {
    const key = 'AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ';
    const masked = 'AGE-SECRET-KEY-1***';
    // A name or number it was pasted onto (`\b` found no word start there: shown whole before).
    expect(redact(`MY_${key}`)).toBe(`MY_${masked}`);
    expect(redact(`0${key}`)).toBe(`0${masked}`);
    expect(redact(`id=x_${key.toLowerCase()} end`)).toBe(`id=x_${masked} end`);
    // Escaped in JSON or a URL, coloured by a terminal escape.
    expect(redact(`{"stderr":"age: error:\\n${key}\\tx"}`)).toBe(`{"stderr":"age: error:\\n${masked}\\tx"}`);
    expect(redact(`https://h/?recipient=%22${key}%22&i=%3D${key}%0A${key}`)).toBe(`https://h/?recipient=%22${masked}%22&i=%3D${masked}%0A${masked}`);
    expect(redact(`\x1b[1;31m${key}\x1b[0m`)).toBe(`\x1b[1;31m${masked}\x1b[0m`);
    expect(redact('\\u0022AGE-PLUGIN-YUBIKEY-1QXYZ0\\u0022')).toBe('\\u0022AGE-PLUGIN-YUBIKEY-1***\\u0022');
    // Words ending in "age" before "-plugin-…-1…" or "-secret-key-1…": names, not keys.
    for (const text of ['npm i image-plugin-resize-1abc', 'storage-secret-key-1b rotated', 'IMAGE-PLUGIN-V-1A', 'usage-plugin-x-1z']) expect(redact(text)).toBe(text);
  });

  // After a letter, a key was shown whole (`wAGE-SECRET-KEY-1…`, a key pasted onto a word): the
  // exact form age-keygen writes (58 bech32 characters) is masked after anything.
  it('masks a whole age secret key in its exact form right after a letter, but not a word that only starts like one', () => {
    const key = 'AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX';
    expect(redact(`w${key}`)).toBe('wAGE-SECRET-KEY-1***');
    expect(redact(`passphrase${key}end`)).toBe('passphraseAGE-SECRET-KEY-1***end');
    expect(redact(`\u001b${key}`)).toBe('\u001bAGE-SECRET-KEY-1***');
    for (const text of ['storage-secret-key-1b rotated', 'STORAGE-SECRET-KEY-1B', `wAGE-SECRET-KEY-1${'Q'.repeat(57)}`, 'wAGE-SECRET-KEY-1BIO']) expect(redact(text)).toBe(text);
  });

  // Each `a://` of a long run with no `@` after it had scanned the rest of the run for one: 64 KB took 10 s, 1 MB some 45 minutes.
  it('reads a 1 MB line of URL schemes once: nothing masked where no @ follows, every user:password@ where one does', () => {
    const schemes = 'a://'.repeat(256 * 1024);
    expect(redact(schemes)).toBe(schemes);
    expect(redact(`x@${schemes}`)).toBe(`x@${schemes}`);
    expect(redact(`${'b://u:p@h/'.repeat(100_000)} ${schemes}`)).toBe(`${'b://***@h/'.repeat(100_000)} ${schemes}`);
    expect(redact(`see https://user:pass@minio:9000/ and\ts3://k:s/e@b/k`)).toBe('see https://***@minio:9000/ and\ts3://***@b/k');
  });
});
