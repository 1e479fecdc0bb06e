// The CLI against an S3-compatible store that misbehaves on purpose: a local proxy in front of
// s3rver that answers a write as done and keeps nothing. A backup must never say "Backed up"
// for an archive the store does not hold.

import { createHash } from 'node:crypto';
import { createBrotliCompress, createDeflate, createGzip } from 'node:zlib';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import path from 'node:path';
import { GetObjectTaggingCommand, PutObjectTaggingCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ALIAS_REASON } from '../shared/catalog/prune.js';
import { restoreTenant } from '../shared/restore/restore.js';
import { createS3Client } from '../shared/storage/s3-client.js';
import { S3Location } from '../shared/storage/s3.js';
import { backupAt, makeTenants } from './helpers/backups.js';
import { runMain } from './helpers/run-main.js';
import { startS3Server, type S3TestServer } from './helpers/s3-server.js';
import { tempDir } from './helpers/tree.js';

const dir = tempDir('openclaw-s3-hostile-');
const tenantsDir = path.join(dir.path, 'tenants');
let server: S3TestServer;

beforeAll(async () => {
  makeTenants(tenantsDir, ['acme']);
  server = await startS3Server();
});
afterAll(async () => {
  await server.dispose();
  dir.cleanup();
});

/** Sends `request` on to `url` (s3rver) and its answer back as it came. */
function forward(request: IncomingMessage, response: ServerResponse, url: string): void {
  const upstream = httpRequest(url, { method: request.method, headers: request.headers }, (answer) => {
    response.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(response);
  });
  upstream.on('error', () => response.destroy());
  request.pipe(upstream);
}

/** `proxy` listening on a free local port: its endpoint, and how to stop it. */
async function listening(proxy: Server): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        proxy.close(() => resolve());
        proxy.closeAllConnections();
      }),
  };
}

/**
 * A proxy in front of s3rver that answers every PutObject 200 with an ETag and drops its body
 * (a cache, a broken gateway, a store out of space that says nothing); with `tagging404` it also
 * answers every PutObjectTagging 404 NoSuchKey itself (a store that answers an API it lacks so).
 * Everything else passes through.
 */
async function startSwallowingProxy(target: string, swallow: { readonly puts: boolean; readonly tagging404: boolean; readonly internalErrorIn200?: boolean }): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const proxy = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://proxy');
    const tagging = url.searchParams.has('tagging');
    if (request.method === 'PUT' && ((swallow.puts && url.searchParams.get('x-id') === 'PutObject') || (swallow.tagging404 && tagging))) {
      request.resume();
      request.on('end', () => {
        if (tagging) {
          response.writeHead(404, { 'content-type': 'application/xml' });
          response.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>');
        } else if (swallow.internalErrorIn200 === true) {
          // As S3 may answer a CompleteMultipartUpload or a CopyObject: 200 OK, and the failure in the body.
          response.writeHead(200, { 'content-type': 'application/xml' });
          response.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>');
        } else {
          response.writeHead(200, { etag: '"d41d8cd98f00b204e9800998ecf8427e"', 'content-length': '0' }).end();
        }
      });
      return;
    }
    forward(request, response, `${target}${request.url ?? '/'}`);
  });
  return listening(proxy);
}

const flags = (endpoint: string) => ['--tenants-dir', tenantsDir, '--endpoint', endpoint, '--access-key', 'S3RVER', '--secret-key', 'test-secret-key', '--region', 'us-east-1'];

describe('a store that answers an upload as done and keeps nothing', () => {
  it('fails the backup in one line (exit 1), never "Backed up"', async () => {
    const proxy = await startSwallowingProxy(server.endpoint, { puts: true, tagging404: false });
    try {
      const result = await runMain(['tenants', 'backup', 'acme', '--to', 's3://backups/swallowed/acme.tar.zst', ...flags(proxy.endpoint)]);
      expect(result).toMatchObject({ status: 1, stdout: '' });
      expect(result.stderr).toBe(`openclaw: the store ${proxy.endpoint} answered the upload of s3://backups/swallowed/acme.tar.zst as done, but holds no object there: not stored\n`);
    } finally {
      await proxy.stop();
    }
  });

  it('says a failure answered inside a 200 OK is the store\'s failure, not throttling', async () => {
    const proxy = await startSwallowingProxy(server.endpoint, { puts: true, tagging404: false, internalErrorIn200: true });
    try {
      const result = await runMain(['tenants', 'backup', 'acme', '--to', 's3://backups/failed-in-200/acme.tar.zst', ...flags(proxy.endpoint)]);
      expect(result).toMatchObject({ status: 1, stdout: '' });
      expect(result.stderr).toBe('openclaw: the store failed the request for s3://backups/failed-in-200/acme.tar.zst (S3 InternalError: We encountered an internal error. Please try again.): try again\n');
    } finally {
      await proxy.stop();
    }
  });

  it('still backs up, with the note, at a store that answers the tagging API 404 but holds the object', async () => {
    const proxy = await startSwallowingProxy(server.endpoint, { puts: false, tagging404: true });
    try {
      const result = await runMain(['tenants', 'backup', 'acme', '--to', 's3://backups/untaggable/acme.tar.zst', ...flags(proxy.endpoint)]);
      expect(result.status).toBe(0);
      expect(result.stdout).toMatch(/^Backed up tenant "acme" to s3:\/\/backups\/untaggable\/acme\.tar\.zst/);
      expect(result.stdout).toMatch(/its tags \(manifest digest, size stored\) could not be attached: no archive at s3:\/\/backups\/untaggable\/acme\.tar\.zst/);
    } finally {
      await proxy.stop();
    }
  });
});

/**
 * A proxy in front of s3rver that serves the object at `servedKey` for every GET and HEAD of
 * `askedKey` (a cache or a store that mixes up its objects: bytes and headers alike); with
 * `tagging` it answers every GetObjectTagging with that status itself (a store without tagging,
 * credentials without s3:GetObjectTagging). Everything else passes through.
 */
async function startMixingProxy(target: string, mix: { readonly askedKey?: string; readonly servedKey?: string; readonly tagging?: { readonly status: number; readonly code: string } }): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const proxy = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://proxy');
    if (request.method === 'GET' && url.searchParams.has('tagging') && mix.tagging !== undefined) {
      response.writeHead(mix.tagging.status, { 'content-type': 'application/xml' });
      response.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${mix.tagging.code}</Code><Message>no</Message></Error>`);
      return;
    }
    const mixed = (request.method === 'GET' || request.method === 'HEAD') && !url.searchParams.has('tagging') && mix.askedKey !== undefined && url.pathname === mix.askedKey;
    const forwarded = mixed ? `${mix.servedKey!}${url.search}` : (request.url ?? '/');
    forward(request, response, `${target}${forwarded}`);
  });
  return listening(proxy);
}

describe('a store that serves another object\'s bytes for the one asked', () => {
  const older = 's3://backups/mixed/acme-2026-01-01.tar.zst';
  const newer = 's3://backups/mixed/acme-2026-01-03.tar.zst';
  const mixUp = { askedKey: '/backups/mixed/acme-2026-01-03.tar.zst', servedKey: '/backups/mixed/acme-2026-01-01.tar.zst' };
  beforeAll(async () => {
    await backupAt(tenantsDir, 'acme', older, new Date('2026-01-01T03:00:00Z'), server);
    await backupAt(tenantsDir, 'acme', newer, new Date('2026-01-03T03:00:00Z'), server);
  });

  it('refuses the restore (exit 3) before anything is moved in, and verify fails alike, when the object\'s manifest digest tag names another archive', async () => {
    const proxy = await startMixingProxy(server.endpoint, mixUp);
    try {
      const restored = await runMain(['tenants', 'restore', '--from', newer, '--as', 'mixed', ...flags(proxy.endpoint)]);
      expect(restored).toMatchObject({ status: 3, stdout: '' });
      expect(restored.stderr).toMatch(
        /^openclaw: s3:\/\/backups\/mixed\/acme-2026-01-03\.tar\.zst: the store served an archive whose manifest \(sha256 [0-9a-f]{12}…, tenant "acme", made 2026-01-01T03:00:00\.000Z\) is not the one the object's tag records \(sha256 [0-9a-f]{12}…\): another object's bytes\? \(a store or caching proxy that mixes up its objects\)\n$/,
      );
      expect(existsSync(path.join(tenantsDir, 'mixed'))).toBe(false);
      const verified = await runMain(['tenants', 'verify', '--from', newer, ...flags(proxy.endpoint)]);
      expect(verified).toMatchObject({ status: 3, stdout: '' });
      expect(verified.stderr).toMatch(/^openclaw: s3:\/\/backups\/mixed\/acme-2026-01-03\.tar\.zst: the store served an archive whose manifest .* is not the one the object's tag records .*: another object's bytes\? .*\n$/);
    } finally {
      await proxy.stop();
    }
  });

  it('restores and verifies as before where the tag agrees, or cannot be read (denied, no tagging API)', async () => {
    for (const tagging of [undefined, { status: 403, code: 'AccessDenied' }, { status: 501, code: 'NotImplemented' }]) {
      const proxy = await startMixingProxy(server.endpoint, { ...(tagging !== undefined && { tagging }) });
      try {
        const verified = await runMain(['tenants', 'verify', '--from', newer, '--no-record', ...flags(proxy.endpoint)]);
        expect(verified.stderr).toBe('');
        expect(verified.status).toBe(0);
        const restored = await runMain(['tenants', 'restore', '--from', newer, '--as', 'unmixed', '--force', ...flags(proxy.endpoint)]);
        expect(restored.stderr).toBe('');
        expect(restored.status).toBe(0);
        expect(restored.stdout).toMatch(/^Restored tenant "unmixed" \(archived as "acme"\) from s3:\/\/backups\/mixed\/acme-2026-01-03\.tar\.zst/);
      } finally {
        await proxy.stop();
      }
    }
  });
});

// Anyone allowed s3:PutObjectTagging (no s3:PutObject) can write an object's tags. Listings take
// a sealed object's digest tag only beside its seal (s3.ts sealHolds); verify and restore took
// any: a forged digest tag made verify call a whole backup damaged (exit 3), remove the tags its
// backup wrote, and made restore refuse it ("the store served … another object's bytes?").
describe('a digest tag someone else wrote on a sealed object', () => {
  it('is none to verify and restore, as to listings: the backup verifies and restores, its own tags kept', async () => {
    const at = 's3://backups/forged-digest/acme-2026-01-05.tar.zst';
    await backupAt(tenantsDir, 'acme', at, new Date('2026-01-05T03:00:00Z'), server);
    const client = await createS3Client(server.clientOptions);
    try {
      const target = { Bucket: 'backups', Key: 'forged-digest/acme-2026-01-05.tar.zst' };
      const own = (await client.send(new GetObjectTaggingCommand(target))).TagSet ?? [];
      expect(own.map((tag) => tag.Key).sort()).toEqual(['openclaw-manifest-sha256', 'openclaw-seal', 'openclaw-stored-bytes']);
      await client.send(new PutObjectTaggingCommand({ ...target, Tagging: { TagSet: [{ Key: 'openclaw-manifest-sha256', Value: 'a'.repeat(64) }] } }));
      const restored = await runMain(['tenants', 'restore', '--from', at, '--as', 'forged-digest', ...flags(server.endpoint)]);
      expect(restored.stderr).toBe('');
      expect(restored.status).toBe(0);
      const verified = await runMain(['tenants', 'verify', '--from', at, ...flags(server.endpoint)]);
      expect(verified.stderr).toBe('');
      expect(verified.status).toBe(0);
      // The seal-less digest is left as it was; verify adds its mark beside it.
      const after = (await client.send(new GetObjectTaggingCommand(target))).TagSet ?? [];
      expect(after.map((tag) => tag.Key).sort()).toEqual(['openclaw-manifest-sha256', 'openclaw-verified']);
    } finally {
      client.destroy();
    }
  });
});

/**
 * A proxy in front of s3rver that plays a store of before the SDK's CRC32 checksums (older
 * MinIO, Oracle's): a request with an `x-amz-checksum-*` header is refused as an unsupported
 * header, and a PutObjectTagging must carry a Content-MD5 that matches its body.
 */
async function startMd5OnlyProxy(target: string): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const refuse = (response: ServerResponse, message: string) => {
    response.writeHead(400, { 'content-type': 'application/xml' });
    response.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidArgument</Code><Message>${message}</Message></Error>`);
  };
  const proxy = createServer((request, response) => {
    const checksumHeader = Object.keys(request.headers).find((name) => name.startsWith('x-amz-checksum-') || name.startsWith('x-amz-sdk-checksum-'));
    if (checksumHeader !== undefined) {
      request.resume();
      request.on('end', () => refuse(response, `Unsupported header '${checksumHeader}' received for this API call.`));
      return;
    }
    if (request.method !== 'PUT' || !new URL(request.url ?? '/', 'http://proxy').searchParams.has('tagging')) {
      forward(request, response, `${target}${request.url ?? '/'}`);
      return;
    }
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      if (request.headers['content-md5'] !== createHash('md5').update(body).digest('base64')) {
        refuse(response, 'Missing required header for this request: Content-Md5');
        return;
      }
      const upstream = httpRequest(`${target}${request.url ?? '/'}`, { method: 'PUT', headers: request.headers }, (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      });
      upstream.on('error', () => response.destroy());
      upstream.end(body);
    });
  });
  return listening(proxy);
}

describe('a store that takes Content-MD5 and refuses the SDK\'s x-amz-checksum headers', () => {
  it('gets the backup\'s tags and the verification mark all the same', async () => {
    const proxy = await startMd5OnlyProxy(server.endpoint);
    try {
      const backedUp = await runMain(['tenants', 'backup', 'acme', '--to', 's3://backups/md5-only/acme.tar.zst', ...flags(proxy.endpoint)]);
      expect(backedUp.stderr).toBe('');
      expect(backedUp.status).toBe(0);
      expect(backedUp.stdout).not.toMatch(/note:/);
      const verified = await runMain(['tenants', 'verify', '--from', 's3://backups/md5-only/acme.tar.zst', ...flags(proxy.endpoint)]);
      expect(verified.status).toBe(0);
      expect(verified.stdout).toMatch(/\n {2}recorded as verified beside the archive \(/);
      const listed = await runMain(['--json', 'tenants', 'backups', 'acme', '--in', 's3://backups/md5-only/', ...flags(proxy.endpoint)]);
      const [entry] = (JSON.parse(listed.stdout) as { backups: { manifestSha256?: string; storedBytes?: number; verifiedAt?: string }[] }).backups;
      expect(entry).toMatchObject({ manifestSha256: expect.stringMatching(/^[0-9a-f]{64}$/), verifiedAt: expect.any(String) });
    } finally {
      await proxy.stop();
    }
  });
});

/** A proxy in front of s3rver whose ListObjectsV2 answers give each ETag bare, without its quotes (NetApp ONTAP, some Ceph); HEAD's stay quoted. */
function startBareEtagListingProxy(target: string): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  return startListingRewritingProxy(target, (xml) => xml.replace(/<ETag>(?:&quot;|")([^<&"]*)(?:&quot;|")<\/ETag>/g, '<ETag>$1</ETag>'));
}

/**
 * A proxy in front of s3rver that passes every ListObjectsV2 answer through `rewrite`; with
 * `mergeSlashes` it sends other requests on with each run of "/" in their path made one, as
 * nginx does by default.
 */
async function startListingRewritingProxy(
  target: string,
  rewrite: (xml: string) => string,
  options: {
    readonly mergeSlashes?: boolean;
    readonly caseInsensitive?: boolean;
    readonly cutAtNul?: boolean;
    readonly backslashSeparates?: boolean;
    readonly trimsNameEnds?: boolean;
    readonly ntfsStreams?: boolean;
    readonly ntfsNamedStreams?: boolean;
    readonly dropsInvisible?: boolean;
  } = {},
): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const proxy = createServer((request, response) => {
    if (request.method !== 'GET' || !new URL(request.url ?? '/', 'http://proxy').searchParams.has('list-type')) {
      const url = (request.url ?? '/').replace(/^[^?]*/, (pathPart) => {
        // As a layer handing the key on as a C string: it ends at its first NUL.
        const cut = options.cutAtNul === true ? pathPart.replace(/%00.*$/s, '') : pathPart;
        // As a store keeping objects as files on Windows, where "\\" separates a path's names too (s3rver then resolves "..").
        const whole = options.backslashSeparates === true ? cut.replace(/%5C/gi, '/') : cut;
        const merged = options.mergeSlashes === true ? whole.replace(/\/{2,}/g, '/') : whole;
        // As a store that trims whitespace and control characters off each name's ends (a gateway calling strip() on them).
        const trimmed = options.trimsNameEnds === true ? merged.replace(/(?<=\/)(%(0[0-9A-F]|1[0-9A-F]|20|7F))+|(%(0[0-9A-F]|1[0-9A-F]|20|7F))+(?=\/|$)/gi, '') : merged;
        // As a store keeping objects as files on NTFS, where "kept.tar.zst::$DATA" is the file's own data.
        const streamless = options.ntfsStreams === true ? trimmed.replace(/%3A%3A%24DATA$/i, '') : trimmed;
        // As a store keeping objects as files on NTFS, where "kept.tar.zst:s" names a stream of the file ("removed" with it, when the file is).
        const named = options.ntfsNamedStreams === true ? streamless.replace(/(%3A|:)[^/:%]*((%3A|:)%24DATA)?$/i, '') : streamless;
        // As a store that drops characters drawn as nothing (a zero-width space).
        const visible = options.dropsInvisible === true ? named.replace(/%E2%80%8B/gi, '') : named;
        // As a store keeping objects as files on a case-insensitive Windows volume: "A.zst." is "a.zst".
        return options.caseInsensitive === true ? visible.toLowerCase().replace(/(\.|%20)+(?=\/|$)/g, '') : visible;
      });
      forward(request, response, `${target}${url}`);
      return;
    }
    const upstream = httpRequest(`${target}${request.url ?? '/'}`, { method: 'GET', headers: request.headers }, (answer) => {
      const chunks: Buffer[] = [];
      answer.on('data', (chunk: Buffer) => chunks.push(chunk));
      answer.on('end', () => {
        const body = rewrite(Buffer.concat(chunks).toString('utf8'));
        const { 'content-length': _length, 'transfer-encoding': _encoding, ...headers } = answer.headers;
        response.writeHead(answer.statusCode ?? 502, { ...headers, 'content-length': Buffer.byteLength(body) });
        response.end(body);
      });
    });
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  return listening(proxy);
}

describe('a store that lists ETags without their quotes', () => {
  it('prunes what no rule keeps: the HEAD\'s quoted ETag is the listed one', async () => {
    for (const day of ['01', '02', '03']) await backupAt(tenantsDir, 'acme', `s3://backups/bare-etags/acme-2026-02-${day}.tar.zst`, new Date(`2026-02-${day}T03:00:00Z`), server);
    const proxy = await startBareEtagListingProxy(server.endpoint);
    try {
      const pruned = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', 's3://backups/bare-etags/', '--keep-last', '1', ...flags(proxy.endpoint)]);
      expect(pruned.stderr).toBe('');
      expect(pruned.status).toBe(0);
      const listed = await runMain(['--json', 'tenants', 'backups', 'acme', '--in', 's3://backups/bare-etags/', ...flags(server.endpoint)]);
      expect((JSON.parse(listed.stdout) as { backups: { location: string }[] }).backups.map((entry) => entry.location)).toEqual(['s3://backups/bare-etags/acme-2026-02-03.tar.zst']);
    } finally {
      await proxy.stop();
    }
  });
});

/**
 * A store that answers every ListObjectsV2 with one page of `keys` empty objects below
 * backups/huge/ (S3 sends at most 1,000 a page), written as the client reads it: how many
 * bytes of XML it got out before the client went away.
 */
async function startHugePageStore(keys: number): Promise<{ endpoint: string; stop: () => Promise<void>; written: () => number }> {
  let written = 0;
  const store = createServer((request, response) => {
    request.resume();
    response.writeHead(200, { 'content-type': 'application/xml' });
    const head = '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>backups</Name><Prefix>backups/huge/</Prefix><IsTruncated>false</IsTruncated>';
    const entry = (index: number) => `<Contents><Key>backups/huge/k${index}</Key><LastModified>2026-02-01T03:00:00.000Z</LastModified><ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag><Size>0</Size></Contents>`;
    let index = 0;
    const more = () => {
      while (index < keys && !response.destroyed) {
        const chunk = Array.from({ length: Math.min(1000, keys - index) }, (_, offset) => entry(index + offset)).join('');
        index += 1000;
        written += chunk.length;
        if (!response.write(chunk)) return void response.once('drain', more);
      }
      if (!response.destroyed) response.end('</ListBucketResult>');
    };
    response.on('close', () => (index = keys));
    response.write(head);
    more();
  });
  return { ...(await listening(store)), written: () => written };
}

describe('a store that answers a listing with one page of 200,000 keys', () => {
  it('fails the listing in one line (exit 1) once the answer passes 8 MiB, reading no further, instead of parsing it whole', async () => {
    // 200,000 keys are 34 MB of XML (446 MiB of the CLI before); a million took it to 1.7 GiB and 54 s.
    const store = await startHugePageStore(200_000);
    try {
      for (const command of [['backups', 'acme'], ['prune', 'acme', '--keep-last', '1']]) {
        const before = store.written();
        const listed = await runMain(['tenants', ...command, '--in', 's3://backups/huge/', ...flags(store.endpoint)]);
        expect(listed.stderr).toBe(`openclaw: ${store.endpoint} does not answer like S3 (ListObjectsV2 got an answer of more than 8 MiB, more than any S3 answer holds) for s3://backups/huge/: is it the store's S3 API endpoint?\n`);
        expect(listed.status).toBe(1);
        expect(store.written() - before).toBeLessThan(16 * 1024 * 1024);
      }
    } finally {
      await store.stop();
    }
  });

  it('still lists a page of a few thousand keys (a store that ignores MaxKeys)', async () => {
    const store = await startHugePageStore(5_000);
    try {
      const listed = await runMain(['tenants', 'backups', 'acme', '--in', 's3://backups/huge/', ...flags(store.endpoint)]);
      expect(listed.stderr).toBe('');
      expect(listed.stdout).toContain('no backups of "acme"');
      expect(listed.status).toBe(0);
    } finally {
      await store.stop();
    }
  });
});

describe('a store that lists keys with a ".." segment or a "//" naming a backup it also lists', () => {
  it('leaves those keys out: prune never deletes them, which a store resolving the path took for the backup kept', async () => {
    for (const day of ['01', '02', '03']) await backupAt(tenantsDir, 'acme', `s3://backups/dot-segments/acme-2026-02-${day}.tar.zst`, new Date(`2026-02-${day}T03:00:00Z`), server);
    // s3rver keeps objects as files and resolves "zz/.." as a path does; the proxy makes "//" one "/", as nginx does.
    const proxy = await startListingRewritingProxy(
      server.endpoint,
      (xml) =>
        xml.replace(/<Contents><Key>dot-segments\/acme-2026-02-03\.tar\.zst<\/Key>.*?<\/Contents>/, (entry) => entry + entry.replace('dot-segments/', 'dot-segments/zz/../') + entry.replace('dot-segments/', 'dot-segments//')),
      { mergeSlashes: true },
    );
    try {
      const listed = await runMain(['--json', 'tenants', 'backups', 'acme', '--in', 's3://backups/dot-segments/', ...flags(proxy.endpoint)]);
      expect((JSON.parse(listed.stdout) as { backups: { name: string }[] }).backups.map((entry) => entry.name)).toEqual(['acme-2026-02-03.tar.zst', 'acme-2026-02-02.tar.zst', 'acme-2026-02-01.tar.zst']);
      const pruned = await runMain(['tenants', 'prune', 'acme', '--in', 's3://backups/dot-segments/', '--keep-last', '1', ...flags(proxy.endpoint)]);
      expect(pruned.stderr).toBe('');
      expect(pruned.status).toBe(0);
      const left = await runMain(['--json', 'tenants', 'backups', 'acme', '--in', 's3://backups/dot-segments/', ...flags(server.endpoint)]);
      expect((JSON.parse(left.stdout) as { backups: { name: string }[] }).backups.map((entry) => entry.name)).toEqual(['acme-2026-02-03.tar.zst']);
    } finally {
      await proxy.stop();
    }
  });
});

describe('a store that lists a key with a NUL naming a backup it also lists, and takes a key up to its NUL', () => {
  it('leaves that key out: prune never deletes it, which took the backup kept ("Kept 1 and removed 1", none left)', async () => {
    for (const day of ['01', '02', '03']) await backupAt(tenantsDir, 'acme', `s3://backups/nul-keys/acme-2026-02-${day}.tar.zst`, new Date(`2026-02-${day}T03:00:00Z`), server);
    // The listing URL-encoded (as a store may answer unasked), so that its XML can carry the NUL.
    const proxy = await startListingRewritingProxy(
      server.endpoint,
      (xml) =>
        xml
          .replace(/<ListBucketResult[^>]*>/, '$&<EncodingType>url</EncodingType>')
          .replace(/<Contents><Key>nul-keys\/acme-2026-02-03\.tar\.zst<\/Key>.*?<\/Contents>/, (entry) => entry + entry.replace('.tar.zst</Key>', '.tar.zst%00</Key>')),
      { cutAtNul: true },
    );
    try {
      const listed = await runMain(['--json', 'tenants', 'backups', 'acme', '--in', 's3://backups/nul-keys/', ...flags(proxy.endpoint)]);
      expect(listed.stderr).toBe('');
      expect((JSON.parse(listed.stdout) as { backups: { name: string }[] }).backups.map((entry) => entry.name)).toEqual(['acme-2026-02-03.tar.zst', 'acme-2026-02-02.tar.zst', 'acme-2026-02-01.tar.zst']);
      const pruned = await runMain(['tenants', 'prune', 'acme', '--in', 's3://backups/nul-keys/', '--keep-last', '1', ...flags(proxy.endpoint)]);
      expect(pruned.stderr).toBe('');
      expect(pruned.status).toBe(0);
      const left = await runMain(['--json', 'tenants', 'backups', 'acme', '--in', 's3://backups/nul-keys/', ...flags(server.endpoint)]);
      expect((JSON.parse(left.stdout) as { backups: { name: string }[] }).backups.map((entry) => entry.name)).toEqual(['acme-2026-02-03.tar.zst']);
    } finally {
      await proxy.stop();
    }
  });
});

describe('a store on Windows, where a backslash separates names too, that lists a second name for a backup it also lists', () => {
  it.each([
    ['a ".." between backslashes', 'x\\..\\acme-2026-02-03.tar.zst', 1, 'left out'],
    ['a backslash for a slash', 'sub\\acme-2026-02-03.tar.zst', 2, 'kept'],
  ])('never deletes the backup kept through %s (%s)', async (_what, alias, run, fate) => {
    const prefix = `backslash-alias-${run}`;
    const inSub = alias.startsWith('sub') ? 'sub/' : '';
    for (const day of ['01', '02', '03']) await backupAt(tenantsDir, 'acme', `s3://backups/${prefix}/${inSub}acme-2026-02-${day}.tar.zst`, new Date(`2026-02-${day}T03:00:00Z`), server);
    const proxy = await startListingRewritingProxy(
      server.endpoint,
      (xml) =>
        xml.replace(new RegExp(`<Contents><Key>${prefix}/${inSub}acme-2026-02-03\\.tar\\.zst</Key>.*?</Contents>`), (entry) => entry + entry.replace(`${inSub}acme-2026-02-03.tar.zst`, alias)),
      { backslashSeparates: true },
    );
    try {
      const pruned = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', `s3://backups/${prefix}/`, '--keep-last', '1', ...flags(proxy.endpoint)]);
      expect(pruned.stderr).toBe('');
      expect(pruned.status).toBe(0);
      const result = JSON.parse(pruned.stdout) as { keep: { location: string }[]; remove: { location: string }[] };
      const kept = [`s3://backups/${prefix}/${inSub}acme-2026-02-03.tar.zst`, ...(fate === 'kept' ? [`s3://backups/${prefix}/${alias}`] : [])];
      expect(result.keep.map((decision) => decision.location).sort()).toEqual(kept.sort());
      expect(result.remove.map((decision) => decision.location)).toEqual([`s3://backups/${prefix}/${inSub}acme-2026-02-01.tar.zst`, `s3://backups/${prefix}/${inSub}acme-2026-02-02.tar.zst`]);
      const left = await runMain(['--json', 'tenants', 'backups', 'acme', '--in', `s3://backups/${prefix}/`, ...flags(server.endpoint)]);
      expect((JSON.parse(left.stdout) as { backups: { name: string }[] }).backups.map((entry) => entry.name)).toEqual([`${inSub}acme-2026-02-03.tar.zst`]);
    } finally {
      await proxy.stop();
    }
  });
});

describe('a store that lists a LastModified that is no date', () => {
  it('says the store does not answer like S3, in one line (exit 1), not "S3 TypeError"', async () => {
    await backupAt(tenantsDir, 'acme', 's3://backups/bad-dates/acme-2026-02-01.tar.zst', new Date('2026-02-01T03:00:00Z'), server);
    const proxy = await startListingRewritingProxy(server.endpoint, (xml) => xml.replace(/<LastModified>[^<]*</g, '<LastModified>garbage<'));
    try {
      for (const command of [['backups', 'acme'], ['prune', 'acme', '--keep-last', '1']]) {
        const listed = await runMain(['tenants', ...command, '--in', 's3://backups/bad-dates/', ...flags(proxy.endpoint)]);
        expect(listed.stderr).toBe(`openclaw: ${proxy.endpoint} does not answer like S3 (HTTP 200 with an answer that cannot be read: Invalid RFC3339 timestamp format garbage) for s3://backups/bad-dates/\n`);
        expect(listed.status).toBe(1);
      }
    } finally {
      await proxy.stop();
    }
  });
});

describe('a store that ignores Range and sends every object whole', () => {
  it('fails the listing in one line (exit 1) naming the ignored range, instead of calling each backup cut short', async () => {
    await backupAt(tenantsDir, 'acme', 's3://backups/no-ranges/acme-2026-02-01.tar.zst', new Date('2026-02-01T03:00:00Z'), server);
    const proxy = await listening(
      createServer((request, response) => {
        const { range: _range, ...headers } = request.headers;
        const upstream = httpRequest(`${server.endpoint}${request.url ?? '/'}`, { method: request.method, headers }, (answer) => {
          response.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(response);
        });
        upstream.on('error', () => response.destroy());
        request.pipe(upstream);
      }),
    );
    try {
      const listed = await runMain(['tenants', 'backups', 'acme', '--in', 's3://backups/no-ranges/', ...flags(proxy.endpoint)]);
      expect(listed.stderr).toBe(`openclaw: ${proxy.endpoint} ignored the byte range of a GET of s3://backups/no-ranges/acme-2026-02-01.tar.zst (it sent the whole object from its start): cannot read its end to tell whether it is whole\n`);
      expect(listed.status).toBe(1);
    } finally {
      await proxy.stop();
    }
  });
});

describe('a store that answers a GET of an object\'s last bytes with its first ones (a 206 from byte 0)', () => {
  it('fails the listing in one line (exit 1) naming the other bytes, instead of calling each backup cut short', async () => {
    await backupAt(tenantsDir, 'acme', 's3://backups/wrong-ranges/acme-2026-02-01.tar.zst', new Date('2026-02-01T03:00:00Z'), server);
    const proxy = await listening(
      createServer((request, response) => {
        const asked = /^bytes=(\d+)-(\d+)$/.exec(request.headers.range ?? '');
        const headers = asked === null ? request.headers : { ...request.headers, range: `bytes=0-${Number(asked[2]) - Number(asked[1])}` };
        const upstream = httpRequest(`${server.endpoint}${request.url ?? '/'}`, { method: request.method, headers }, (answer) => {
          response.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(response);
        });
        upstream.on('error', () => response.destroy());
        request.pipe(upstream);
      }),
    );
    try {
      const listed = await runMain(['tenants', 'backups', 'acme', '--in', 's3://backups/wrong-ranges/', ...flags(proxy.endpoint)]);
      expect(listed.stderr).toMatch(new RegExp(`^openclaw: ${proxy.endpoint} answered a GET of the last bytes of s3://backups/wrong-ranges/acme-2026-02-01\\.tar\\.zst \\(from byte \\d+\\) with other bytes \\(Content-Range: "bytes 0-\\d+/\\d+"\\): cannot read its end to tell whether it is whole\n$`));
      expect(listed.status).toBe(1);
    } finally {
      await proxy.stop();
    }
  });
});

describe('a store that ignores Range or tells no size, to the restore function', () => {
  it('restores as before: the count in the footer is not read, nothing is refused for it', async () => {
    const key = 's3://backups/no-ranges/acme-2026-02-02.tar.zst';
    await backupAt(tenantsDir, 'acme', key, new Date('2026-02-02T03:00:00Z'), server);
    const ranges: string[] = [];
    const proxy = await listening(
      createServer((request, response) => {
        const { range, ...headers } = request.headers;
        if (range !== undefined) ranges.push(range);
        const upstream = httpRequest(`${server.endpoint}${request.url ?? '/'}`, { method: request.method, headers }, (answer) => {
          response.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(response);
        });
        upstream.on('error', () => response.destroy());
        request.pipe(upstream);
      }),
    );
    const client = await createS3Client({ ...server.clientOptions, endpoint: proxy.endpoint });
    try {
      const location = new S3Location({ client, bucket: 'backups', key: 'no-ranges/acme-2026-02-02.tar.zst', endpoint: proxy.endpoint });
      // A limit no archive passes, were its count read.
      const restored = await restoreTenant({ tenantsDir, location, as: 'acme-copy', maxArchiveEntries: () => ({ entries: 0, reason: 'stand in for the time left' }) });
      expect(restored).toMatchObject({ tenant: 'acme-copy', verified: true });
      // The end was asked for, once, and the whole object came.
      expect(ranges).toEqual([expect.stringMatching(/^bytes=\d+-\d+$/)]);
    } finally {
      client.destroy();
      await proxy.stop();
      rmSync(path.join(tenantsDir, 'acme-copy'), { recursive: true, force: true });
    }
  });

  it('restores as before from a store that answers without Content-Length (chunked): no size, no end asked for', async () => {
    const key = 's3://backups/chunked/acme-2026-02-02.tar.zst';
    await backupAt(tenantsDir, 'acme', key, new Date('2026-02-02T03:00:00Z'), server);
    const ranges: string[] = [];
    const proxy = await listening(
      createServer((request, response) => {
        if (request.headers.range !== undefined) ranges.push(request.headers.range);
        const upstream = httpRequest(`${server.endpoint}${request.url ?? '/'}`, { method: request.method, headers: request.headers }, (answer) => {
          const { 'content-length': _length, ...headers } = answer.headers;
          response.writeHead(answer.statusCode ?? 502, request.method === 'GET' ? headers : answer.headers);
          answer.pipe(response);
        });
        upstream.on('error', () => response.destroy());
        request.pipe(upstream);
      }),
    );
    const client = await createS3Client({ ...server.clientOptions, endpoint: proxy.endpoint });
    try {
      const location = new S3Location({ client, bucket: 'backups', key: 'chunked/acme-2026-02-02.tar.zst', endpoint: proxy.endpoint });
      const restored = await restoreTenant({ tenantsDir, location, as: 'acme-copy', maxArchiveEntries: () => ({ entries: 0, reason: 'stand in for the time left' }) });
      expect(restored).toMatchObject({ tenant: 'acme-copy', verified: true });
      expect(ranges).toEqual([]);
    } finally {
      client.destroy();
      await proxy.stop();
      rmSync(path.join(tenantsDir, 'acme-copy'), { recursive: true, force: true });
    }
  });
});

describe('a proxy that compresses the answer to a GET the client did not ask compressed', () => {
  it.each([
    ['gzip', createGzip],
    ['br', createBrotliCompress],
    ['deflate', createDeflate],
  ] as const)('says the store or a proxy on the way sent it compressed with %s (exit 1), not that the archive is a .tar.gz to recompress or no zstd archive', async (coding, compressor) => {
    const key = `s3://backups/${coding}/acme.tar.zst`;
    await backupAt(tenantsDir, 'acme', key, new Date('2026-02-01T03:00:00Z'), server);
    const proxy = await listening(
      createServer((request, response) => {
        const upstream = httpRequest(`${server.endpoint}${request.url ?? '/'}`, { method: request.method, headers: request.headers }, (answer) => {
          if (request.method !== 'GET' || answer.statusCode !== 200 || request.headers.range !== undefined || new URL(request.url ?? '/', 'http://proxy').search !== '?x-id=GetObject') {
            response.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(response);
            return;
          }
          const { 'content-length': _length, etag, ...headers } = answer.headers;
          response.writeHead(200, { ...headers, ...(etag !== undefined && { etag }), 'content-encoding': coding });
          answer.pipe(compressor()).pipe(response);
        });
        upstream.on('error', () => response.destroy());
        request.pipe(upstream);
      }),
    );
    try {
      for (const command of [['tenants', 'verify', '--from', key], ['tenants', 'restore', '--from', key, '--as', `acme-${coding}`]]) {
        const run = await runMain([...command, ...flags(proxy.endpoint)]);
        expect(run.stderr, command.join(' ')).toMatch(new RegExp(`^openclaw: .*${proxy.endpoint.replace(/[.]/g, '\\.')} sent s3://backups/${coding}/acme\\.tar\\.zst compressed \\(Content-Encoding: ${coding}\\), which the read did not ask for: the store or a proxy on the way compressed it`));
        expect(run.stderr).not.toMatch(/gzip -dc|tar\.gz/);
        expect(run.status, command.join(' ')).toBe(1);
      }
      expect(existsSync(path.join(tenantsDir, `acme-${coding}`))).toBe(false);
      // The archive at rest is whole: read past the proxy it verifies.
      expect((await runMain(['tenants', 'verify', '--from', key, ...flags(server.endpoint)])).status).toBe(0);
    } finally {
      await proxy.stop();
    }
  });
});

describe('a case-insensitive store that lists a second name, differing in case or a trailing dot only, for a backup it also lists', () => {
  it.each([
    ['Acme-2026-02-03.tar.zst', 'before', 1],
    ['ACME-2026-02-03.TAR.ZST', 'after', 2],
    ['acme-2026-02-03.tar.zst.', 'after', 3],
  ])('never deletes the backup kept through the alias %s (listed %s it)', async (alias, order, run) => {
    const prefix = `case-alias-${run}`;
    for (const day of ['01', '02', '03']) await backupAt(tenantsDir, 'acme', `s3://backups/${prefix}/acme-2026-02-${day}.tar.zst`, new Date(`2026-02-${day}T03:00:00Z`), server);
    // The proxy lists the alias beside the real key and, as a store on a case-insensitive file
    // system does, reads and deletes any key by its lower-case name (without a trailing dot).
    const proxy = await startListingRewritingProxy(
      server.endpoint,
      (xml) =>
        xml.replace(new RegExp(`<Contents><Key>${prefix}/acme-2026-02-03\\.tar\\.zst</Key>.*?</Contents>`), (entry) => {
          const aliasEntry = entry.replace('acme-2026-02-03.tar.zst', alias);
          return order === 'before' ? aliasEntry + entry : entry + aliasEntry;
        }),
      { caseInsensitive: true },
    );
    try {
      const pruned = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', `s3://backups/${prefix}/`, '--keep-last', '1', ...flags(proxy.endpoint)]);
      expect(pruned.stderr).toBe('');
      expect(pruned.status).toBe(0);
      const result = JSON.parse(pruned.stdout) as { keep: { location: string; reasons: string[] }[]; remove: { location: string }[] };
      expect(result.keep.map((decision) => decision.location).sort()).toEqual([`s3://backups/${prefix}/${alias}`, `s3://backups/${prefix}/acme-2026-02-03.tar.zst`].sort());
      expect(result.keep.flatMap((decision) => decision.reasons).some((reason) => reason.startsWith(`${ALIAS_REASON} s3://`))).toBe(true);
      expect(result.remove.map((decision) => decision.location)).toEqual([`s3://backups/${prefix}/acme-2026-02-01.tar.zst`, `s3://backups/${prefix}/acme-2026-02-02.tar.zst`]);
      const left = await runMain(['--json', 'tenants', 'backups', 'acme', '--in', `s3://backups/${prefix}/`, ...flags(server.endpoint)]);
      expect((JSON.parse(left.stdout) as { backups: { name: string }[] }).backups.map((entry) => entry.name)).toEqual(['acme-2026-02-03.tar.zst']);
    } finally {
      await proxy.stop();
    }
  });
});

describe('a store that lists a second name for a backup it also lists, which it takes for the backup: whitespace or a control character trimmed off its ends, or an NTFS stream name', () => {
  it.each([
    ['a tab at the end', '%09', 1, { trimsNameEnds: true }],
    ['a line feed and a space at the end', '%0A%20', 2, { trimsNameEnds: true }],
    ['a control character at the end', '%1F', 3, { trimsNameEnds: true }],
    ['the NTFS stream name "::$DATA" at the end', '%3A%3A%24DATA', 4, { ntfsStreams: true }],
    ['a space at the start', '%20', 5, { trimsNameEnds: true }],
    // Before, these two were removed, and with them the backup kept (--keep-last 1 left none).
    ['an NTFS named stream "s" at the end', '%3As', 6, { ntfsNamedStreams: true }],
    ['a zero-width space in it', '%E2%80%8B', 7, { dropsInvisible: true }],
  ] as const)('never deletes the backup kept through its name with %s', async (what, encoded, run, store) => {
    const prefix = `trimmed-alias-${run}`;
    for (const day of ['01', '02', '03']) await backupAt(tenantsDir, 'acme', `s3://backups/${prefix}/acme-2026-02-${day}.tar.zst`, new Date(`2026-02-${day}T03:00:00Z`), server);
    // The listing URL-encoded (as a store may answer unasked), so that its XML can carry any character.
    const proxy = await startListingRewritingProxy(
      server.endpoint,
      (xml) =>
        xml
          .replace(/<ListBucketResult[^>]*>/, '$&<EncodingType>url</EncodingType>')
          .replace(new RegExp(`<Contents><Key>${prefix}/acme-2026-02-03\\.tar\\.zst</Key>.*?</Contents>`), (entry) =>
            entry + (what.endsWith('at the start') ? entry.replace(`${prefix}/acme`, `${prefix}/${encoded}acme`) : entry.replace('.tar.zst</Key>', `.tar.zst${encoded}</Key>`)),
          ),
      store,
    );
    try {
      const pruned = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', `s3://backups/${prefix}/`, '--keep-last', '1', ...flags(proxy.endpoint)]);
      expect(pruned.stderr).toBe('');
      expect(pruned.status).toBe(0);
      const result = JSON.parse(pruned.stdout) as { keep: { location: string; reasons: string[] }[]; remove: { location: string }[] };
      expect(result.keep).toHaveLength(2);
      expect(result.keep.flatMap((decision) => decision.reasons).some((reason) => reason.startsWith(`${ALIAS_REASON} s3://backups/${prefix}/`))).toBe(true);
      expect(result.remove.map((decision) => decision.location)).toEqual([`s3://backups/${prefix}/acme-2026-02-01.tar.zst`, `s3://backups/${prefix}/acme-2026-02-02.tar.zst`]);
      const left = await runMain(['--json', 'tenants', 'backups', 'acme', '--in', `s3://backups/${prefix}/`, ...flags(server.endpoint)]);
      expect((JSON.parse(left.stdout) as { backups: { name: string }[] }).backups.map((entry) => entry.name)).toEqual(['acme-2026-02-03.tar.zst']);
    } finally {
      await proxy.stop();
    }
  });
});

/** Answers `request` with `url`'s answer: its headers and first `atOnce` bytes at once, then one byte every `everyMs`. */
function dripFrom(url: string, request: IncomingMessage, response: ServerResponse, timers: Set<NodeJS.Timeout>, { atOnce, everyMs }: { atOnce: number; everyMs: number }): void {
  const upstream = httpRequest(url, { method: 'GET', headers: request.headers }, (answer) => {
    const chunks: Buffer[] = [];
    answer.on('data', (chunk: Buffer) => chunks.push(chunk));
    answer.on('end', () => {
      const body = Buffer.concat(chunks);
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      if (atOnce > 0) response.write(body.subarray(0, atOnce));
      let sent = atOnce;
      const timer = setInterval(() => {
        if (sent >= body.length || response.destroyed) {
          clearInterval(timer);
          timers.delete(timer);
          response.end();
          return;
        }
        response.write(body.subarray(sent, ++sent));
      }, everyMs);
      timers.add(timer);
    });
  });
  upstream.on('error', () => response.destroy());
  request.pipe(upstream);
}

/**
 * A proxy in front of s3rver whose GETs of an object's bytes (restore and verify, and their
 * resumes from an offset) send their first KiB, then one byte every 200 ms: never silent for
 * the 1 s stall time the test gives, and an archive of 80 KiB would take 4.5 hours. Everything
 * else passes through. (It drips from this process, as the CLI runs: each byte is time this
 * thread is busy, which the download rightly does not count as waiting for the store; a byte
 * every 20 ms made that time, and so the test's length, grow with the machine's load.)
 */
async function startDrippingProxy(target: string): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const timers = new Set<NodeJS.Timeout>();
  const proxy = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://proxy');
    if (request.method !== 'GET' || url.searchParams.get('x-id') !== 'GetObject' || request.headers.range === 'bytes=0-0') {
      forward(request, response, `${target}${request.url ?? '/'}`);
      return;
    }
    dripFrom(`${target}${request.url ?? '/'}`, request, response, timers, { atOnce: 1024, everyMs: 200 });
  });
  const listened = await listening(proxy);
  return {
    endpoint: listened.endpoint,
    stop: () => {
      for (const timer of timers) clearInterval(timer);
      return listened.stop();
    },
  };
}

describe('a store that drips an archive a byte at a time, never silent for the stall time', () => {
  it('fails restore and verify in one line (exit 1) once resuming brings no more speed, instead of reading for ever', async () => {
    await backupAt(tenantsDir, 'acme', 's3://backups/dripped/acme-2026-02-01.tar.zst', new Date('2026-02-01T03:00:00Z'), server);
    const proxy = await startDrippingProxy(server.endpoint);
    try {
      for (const command of [
        ['restore', '--from', 's3://backups/dripped/acme-2026-02-01.tar.zst', '--force'],
        ['verify', '--from', 's3://backups/dripped/acme-2026-02-01.tar.zst'],
      ]) {
        const result = await runMain(['tenants', ...command, '--stall-timeout', '1s', ...flags(proxy.endpoint)]);
        expect(result.stderr).toMatch(/^openclaw: download of s3:\/\/backups\/dripped\/acme-2026-02-01\.tar\.zst kept breaking at byte \d+: only \d+ bytes in \d+ s \(a download must bring 16 KiB each stall time\)\n$/);
        expect(result.status).toBe(1);
      }
    } finally {
      await proxy.stop();
    }
  // ~25 s of waiting the download must do (6 stall times and 6.2 s between resumes, twice), and its busy time, which grows with the load.
  }, 180_000);
});

describe('a store that closes every download after its first 100 bytes', () => {
  it('fails restore and verify in one line (exit 1) after 5 such breaks in a row, instead of a reconnection per 100 bytes', async () => {
    await backupAt(tenantsDir, 'acme', 's3://backups/cut/acme-2026-02-01.tar.zst', new Date('2026-02-01T03:00:00Z'), server);
    let gets = 0;
    const proxy = await listening(
      createServer((request, response) => {
        const url = new URL(request.url ?? '/', 'http://proxy');
        if (request.method !== 'GET' || url.searchParams.get('x-id') !== 'GetObject' || request.headers.range === 'bytes=0-0') {
          forward(request, response, `${server.endpoint}${request.url ?? '/'}`);
          return;
        }
        gets++;
        const upstream = httpRequest(`${server.endpoint}${request.url ?? '/'}`, { method: 'GET', headers: request.headers }, (answer) => {
          response.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.once('data', (chunk: Buffer) => {
            answer.destroy();
            response.write(chunk.subarray(0, 100), () => response.destroy());
          });
        });
        upstream.on('error', () => response.destroy());
        request.pipe(upstream);
      }),
    );
    try {
      for (const command of [
        ['restore', '--from', 's3://backups/cut/acme-2026-02-01.tar.zst', '--force'],
        ['verify', '--from', 's3://backups/cut/acme-2026-02-01.tar.zst'],
      ]) {
        gets = 0;
        const result = await runMain(['tenants', ...command, ...flags(proxy.endpoint)]);
        expect(result.stderr).toMatch(/^openclaw: download of s3:\/\/backups\/cut\/acme-2026-02-01\.tar\.zst kept breaking at byte 600: /);
        expect(result.stderr.split('\n')).toHaveLength(2);
        expect(result.status).toBe(1);
        expect(gets).toBe(6);
      }
    } finally {
      await proxy.stop();
    }
  // 12.4 s of waiting between resumes the download must do, and its busy time, which grows with the load.
  }, 120_000);
});

describe('a store that drips the last bytes the restore function asks for', () => {
  it('fails the restore in one line within the answer deadline, nothing staged, instead of waiting on the tail for ever', async () => {
    const key = 's3://backups/dripped-tail/acme-2026-02-03.tar.zst';
    await backupAt(tenantsDir, 'acme', key, new Date('2026-02-03T03:00:00Z'), server);
    const timers = new Set<NodeJS.Timeout>();
    // The ranged GET of the archive's end: its headers at once, then a byte a second (1,032 bytes: 17 minutes).
    const proxy = await listening(
      createServer((request, response) => {
        const range = request.headers.range;
        if (request.method !== 'GET' || range === undefined || range === 'bytes=0-0') {
          forward(request, response, `${server.endpoint}${request.url ?? '/'}`);
          return;
        }
        dripFrom(`${server.endpoint}${request.url ?? '/'}`, request, response, timers, { atOnce: 0, everyMs: 1000 });
      }),
    );
    const client = await createS3Client({ ...server.clientOptions, endpoint: proxy.endpoint });
    try {
      const location = new S3Location({ client, bucket: 'backups', key: 'dripped-tail/acme-2026-02-03.tar.zst', endpoint: proxy.endpoint, answerDeadlineMs: 2_000 });
      const before = readdirSync(tenantsDir).sort();
      const restore = restoreTenant({ tenantsDir, location, as: 'acme-copy', maxArchiveEntries: () => ({ entries: 1_000_000, reason: 'stand in for the time left' }) });
      await expect(restore).rejects.toMatchObject({
        code: 'UNREACHABLE',
        message: `cannot reach ${proxy.endpoint} for ${key}: no answer in 2 s`,
      });
      expect(existsSync(path.join(tenantsDir, 'acme-copy'))).toBe(false);
      // No staging directory, journal or lock left in the base dir.
      expect(readdirSync(tenantsDir).sort()).toEqual(before);
    } finally {
      for (const timer of timers) clearInterval(timer);
      client.destroy();
      await proxy.stop();
    }
  }, 30_000);
});

/**
 * A raw TCP stand-in in front of s3rver that sends each answer whole (its stated Content-Length)
 * and then, `lateMs` later, `extra` bytes more on the same kept-alive connection: a proxy or a
 * store that miscounts its bodies. The next request on that connection reads them as the start
 * of its answer, which is no HTTP. `answers` counts the answers sent.
 */
async function startLateBytesStandIn(target: string, extra: string, lateMs: number): Promise<{ endpoint: string; stop: () => Promise<void>; answers: () => number }> {
  let answers = 0;
  const sockets = new Set<Socket>();
  const standIn = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let pending = Buffer.alloc(0);
    let busy = false;
    const next = (): void => {
      const end = pending.indexOf('\r\n\r\n');
      if (busy || end < 0) return;
      const [requestLine = '', ...headerLines] = pending.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of headerLines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const bodyLength = Number(headers['content-length'] ?? 0);
      if (pending.length < end + 4 + bodyLength) return;
      const body = pending.subarray(end + 4, end + 4 + bodyLength);
      pending = pending.subarray(end + 4 + bodyLength);
      const [method = 'GET', url = '/'] = requestLine.split(' ');
      busy = true;
      const upstream = httpRequest(`${target}${url}`, { method, headers, agent: false }, (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => {
          const whole = Buffer.concat(chunks);
          const lines = [`HTTP/1.1 ${answer.statusCode ?? 502} ${answer.statusMessage ?? ''}`];
          for (const [name, value] of Object.entries(answer.headers)) {
            if (['content-length', 'transfer-encoding', 'connection', 'keep-alive'].includes(name)) continue;
            for (const one of Array.isArray(value) ? value : [value ?? '']) lines.push(`${name}: ${one}`);
          }
          const length = method === 'HEAD' ? (answer.headers['content-length'] ?? '0') : String(whole.length);
          lines.push(`content-length: ${length}`, 'connection: keep-alive', '', '');
          socket.write(Buffer.concat([Buffer.from(lines.join('\r\n'), 'latin1'), method === 'HEAD' ? Buffer.alloc(0) : whole]));
          answers++;
          setTimeout(() => {
            if (!socket.destroyed) socket.write(extra);
          }, lateMs);
          busy = false;
          next();
        });
      });
      upstream.on('error', () => socket.destroy());
      upstream.end(body);
    };
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      next();
    });
  });
  await new Promise<void>((resolve) => standIn.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(standIn.address() as AddressInfo).port}`,
    answers: () => answers,
    stop: () =>
      new Promise<void>((resolve) => {
        standIn.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

describe('a store that sends bytes after the answer it stated the length of, late, on a kept connection', () => {
  it('lists and verifies the backups as before: the request the stray bytes spoil is sent again on a new connection', async () => {
    for (const day of ['01', '02', '03', '04', '05', '06']) {
      await backupAt(tenantsDir, 'acme', `s3://backups/late-bytes/acme-2026-03-${day}.tar.zst`, new Date(`2026-03-${day}T03:00:00Z`), server);
    }
    const direct = await runMain(['tenants', 'backups', 'acme', '--in', 's3://backups/late-bytes/', ...flags(server.endpoint)]);
    expect(direct.status).toBe(0);
    const standIn = await startLateBytesStandIn(server.endpoint, 'stray bytes\r\n', 20);
    try {
      const listed = await runMain(['tenants', 'backups', 'acme', '--in', 's3://backups/late-bytes/', ...flags(standIn.endpoint)]);
      expect(listed.stderr).toBe('');
      expect(listed.stdout).toBe(direct.stdout.replace(server.endpoint, standIn.endpoint));
      expect(listed.status).toBe(0);
      const verified = await runMain(['tenants', 'verify', '--from', 's3://backups/late-bytes/acme-2026-03-06.tar.zst', ...flags(standIn.endpoint)]);
      expect(verified.stderr).toBe('');
      expect(verified.status).toBe(0);
    } finally {
      await standIn.stop();
    }
  }, 60_000);

  it('says in one line (exit 1) that the answers are not valid HTTP when every attempt gets no HTTP', async () => {
    let requests = 0;
    const garbler = createNetServer((socket) => {
      socket.on('error', () => socket.destroy());
      socket.on('data', () => {
        requests++;
        socket.end('stray bytes\r\n\r\n');
      });
    });
    await new Promise<void>((resolve) => garbler.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(garbler.address() as AddressInfo).port}`;
    try {
      const listed = await runMain(['tenants', 'backups', 'acme', '--in', 's3://backups/late-bytes/', ...flags(endpoint)]);
      expect(listed.stderr).toBe(
        `openclaw: ${endpoint} answered with bytes that are not valid HTTP (HPE_INVALID_CONSTANT, 5 attempts) for s3://backups/late-bytes/: a proxy on the way or the store is at fault\n`,
      );
      expect(listed.status).toBe(1);
      expect(requests).toBe(5);
    } finally {
      await new Promise<void>((resolve) => garbler.close(() => resolve()));
    }
  }, 60_000);
});

// A versioned bucket keeps the version a restore reads when the key is written again meanwhile
// (a `backup --overwrite`, or the next backup under a fixed name): the download resumes from
// that version. Asked by key alone, the resume met the new object's ETag (412), and a restore in
// pieces pinned to that version by its checkpoint could never get past a dropped connection.
describe('a versioned store whose key is written again while a restore reads it, and that drops the download once', () => {
  it('resumes from the version it began reading (the range GET names its VersionId), restored and verified', async () => {
    const key = 'versioned/acme-2026-02-03.tar.zst';
    await backupAt(tenantsDir, 'acme', `s3://backups/${key}`, new Date('2026-02-03T03:00:00Z'), server);
    const plain = await createS3Client(server.clientOptions);
    const original = await plain.send(new (await import('@aws-sdk/client-s3')).GetObjectCommand({ Bucket: 'backups', Key: key }));
    const bytes = Buffer.from(await original.Body!.transformToByteArray());
    const etag = original.ETag!;
    plain.destroy();
    const gets: string[] = [];
    const proxy = await listening(
      createServer((request, response) => {
        const url = new URL(request.url ?? '/', 'http://proxy');
        if (request.method !== 'GET' || url.pathname !== `/backups/${key}` || url.searchParams.has('tagging')) {
          forward(request, response, `${server.endpoint}${request.url ?? '/'}`);
          return;
        }
        const versionId = url.searchParams.get('versionId');
        const range = request.headers.range;
        gets.push(`${range ?? 'whole'} ${versionId ?? 'latest'}`);
        request.resume();
        // The key holds a newer object since the first GET: asked for by key alone, its ETag is another.
        if (gets.length > 1 && versionId !== 'v1') {
          response.writeHead(412, { 'content-type': 'application/xml' });
          response.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>');
          return;
        }
        const from = range === undefined ? 0 : Number(/^bytes=(\d+)-/.exec(range)![1]);
        const to = range === undefined || /-$/.test(range) ? bytes.length - 1 : Number(/-(\d+)$/.exec(range)![1]);
        const headers = { etag, 'x-amz-version-id': 'v1', 'content-length': String(to - from + 1), 'last-modified': new Date('2026-02-03T03:00:00Z').toUTCString() };
        if (range === undefined) {
          // The first download drops after its first 1,000 bytes.
          response.writeHead(200, headers);
          response.write(bytes.subarray(0, 1000), () => response.destroy());
          return;
        }
        response.writeHead(206, { ...headers, 'content-range': `bytes ${from}-${to}/${bytes.length}` });
        response.end(bytes.subarray(from, to + 1));
      }),
    );
    const client = await createS3Client({ ...server.clientOptions, endpoint: proxy.endpoint });
    try {
      const location = new S3Location({ client, bucket: 'backups', key, endpoint: proxy.endpoint });
      const restored = await restoreTenant({ tenantsDir, location, as: 'acme-versioned' });
      expect(restored).toMatchObject({ tenant: 'acme-versioned', verified: true });
      expect(gets).toContain('bytes=1000- v1');
    } finally {
      client.destroy();
      await proxy.stop();
      rmSync(path.join(tenantsDir, 'acme-versioned'), { recursive: true, force: true });
    }
  });
});
