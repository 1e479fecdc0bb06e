// A read from a store that goes silent (a real S3 client and a local HTTP server that answers
// as told, or not at all): a GET never answered fails within its deadline as "no answer", a
// body that stops delivering bytes is resumed from where it stopped, a store that keeps
// stalling fails in one line, and an abort stays an abort. None of it waits out the socket's
// two-minute idle timeout.

import type { S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { AbortedError, StorageError } from '../shared/errors.js';
import { createS3Client } from '../shared/storage/s3-client.js';
import { S3Location, type S3LocationOptions } from '../shared/storage/s3.js';
import { readAll, sha256 } from './storage-contract.js';

const DATA = randomBytes(200_000);
const STALL_AT = 65_536;
const ETAG = '"v1"';
const KEY = 'acme/x.tar.zst';

type Answer = (request: IncomingMessage, response: ServerResponse) => void;

let server: Server;
let client: S3Client;
let endpoint = '';
let answer: Answer;
const gets: { range?: string; ifMatch?: string }[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    request.resume();
    if (request.method === 'GET') gets.push({ range: request.headers.range, ifMatch: request.headers['if-match'] });
    answer(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  client = await createS3Client({ endpoint, accessKey: 'AK', secretKey: 'SK' });
});
beforeEach(() => {
  gets.length = 0;
  server.closeAllConnections();
});
afterAll(async () => {
  client.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function location(options: Partial<S3LocationOptions> = {}): S3Location {
  return new S3Location({ client, bucket: 'b', key: KEY, endpoint, resumeDelayMs: 1, ...options });
}

const neverAnswered: Answer = () => {};

/** The whole object's headers and its bytes up to STALL_AT, then silence. */
const stallsMidway: Answer = (_request, response) => {
  response.writeHead(200, { 'content-length': DATA.length, etag: ETAG, 'content-type': 'application/octet-stream' });
  response.write(DATA.subarray(0, STALL_AT));
};

/** A ranged GET's headers, then `bytes` of the rest (all of it by default) and silence if that is not the end. */
function servesRange(request: IncomingMessage, response: ServerResponse, bytes = Infinity): void {
  const from = Number(/^bytes=(\d+)-$/.exec(request.headers.range ?? '')?.[1]);
  response.writeHead(206, {
    'content-length': DATA.length - from,
    'content-range': `bytes ${from}-${DATA.length - 1}/${DATA.length}`,
    etag: ETAG,
    'content-type': 'application/octet-stream',
  });
  const end = Math.min(DATA.length, from + bytes);
  if (end === DATA.length) response.end(DATA.subarray(from));
  else response.write(DATA.subarray(from, end));
}

function firstThen(then: Answer): Answer {
  return (request, response) => (request.headers.range === undefined ? stallsMidway : then)(request, response);
}

describe('a read from a store that never answers', () => {
  it('fails within the deadline, as unreachable, with the look at the key\'s message', async () => {
    answer = neverAnswered;
    const failure = await location({ answerDeadlineMs: 300 }).read().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(StorageError);
    expect(failure).toMatchObject({ code: 'UNREACHABLE', message: `cannot reach ${endpoint} for s3://b/${KEY}: no answer in 0.3 s` });
  }, 10_000);

  it('answers an abort as an abort, not as the deadline', async () => {
    answer = neverAnswered;
    const controller = new AbortController();
    const reading = location().read({ signal: controller.signal }).catch((error: unknown) => error);
    setTimeout(() => controller.abort(), 50);
    expect(await reading).toBeInstanceOf(AbortedError);
  }, 10_000);
});

describe('a read whose end is asked for while its body is held', () => {
  it('answers an abort during a ranged GET never answered as an abort, from the GET and from the held body alike, nothing thrown uncaught', async () => {
    // The first GET answers at once (the whole object, unread); the GET of its end never does.
    answer = (request, response) => {
      if (request.headers.range !== undefined) return;
      response.writeHead(200, { 'content-length': DATA.length, etag: ETAG, 'content-type': 'application/octet-stream' });
      response.end(DATA);
    };
    const controller = new AbortController();
    const read = location();
    const stream = await read.read({ signal: controller.signal });
    const tail = read.readTail(1024, { signal: controller.signal }).catch((error: unknown) => error);
    setTimeout(() => controller.abort(new AbortedError('stopped: the Lambda invocation was about to time out')), 50);
    expect(await tail).toMatchObject({ message: 'stopped: the Lambda invocation was about to time out' });
    expect(gets).toEqual([{}, { range: `bytes=${DATA.length - 1024}-${DATA.length - 1}`, ifMatch: ETAG }]);
    // The restore goes on (it hands its message back, removes what it staged) before the body is read, if ever.
    await sleep(20);
    expect(stream.destroyed).toBe(true);
    const failure = await readAll(stream).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(AbortedError);
    expect(failure).toMatchObject({ message: 'stopped: the Lambda invocation was about to time out' });
  }, 10_000);
});

describe('a read destroyed before it is read', () => {
  it('lets its connection go (a restore refused by the footer\'s count before it read a byte)', async () => {
    answer = stallsMidway;
    const closed = new Promise<void>((resolve) => server.once('connection', (socket) => socket.once('close', () => resolve())));
    const stream = await location().read();
    stream.destroy();
    // Left open, the GET's connection stayed busy with its unread body until the store gave up on it.
    await closed;
    expect(gets).toHaveLength(1);
  }, 10_000);
});

describe('a read whose body stops delivering bytes', () => {
  it('resumes where it stopped, pinned to the ETag, and reads the object whole', async () => {
    answer = firstThen((request, response) => servesRange(request, response));
    const back = await readAll(await location({ stallDeadlineMs: 500 }).read());
    expect(sha256(back)).toBe(sha256(DATA));
    expect(gets).toEqual([{}, { range: `bytes=${STALL_AT}-`, ifMatch: ETAG }]);
  }, 10_000);

  it('counts each stall that made progress as a new break', async () => {
    // Each resume delivers 30,000 bytes, then stalls: more stalls than maxResumes, none without progress.
    answer = firstThen((request, response) => servesRange(request, response, 30_000));
    const back = await readAll(await location({ stallDeadlineMs: 300, maxResumes: 1 }).read());
    expect(sha256(back)).toBe(sha256(DATA));
    expect(gets).toHaveLength(1 + Math.ceil((DATA.length - STALL_AT) / 30_000));
  }, 20_000);

  it('fails in one line when every resume stalls without progress', async () => {
    answer = firstThen((request, response) => servesRange(request, response, 0));
    const failure = await readAll(await location({ stallDeadlineMs: 300, maxResumes: 2 }).read()).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(StorageError);
    expect(failure).toMatchObject({ code: 'READ_FAILED', message: `download of s3://b/${KEY} kept breaking at byte ${STALL_AT}: no data in 0.3 s` });
    expect(gets).toHaveLength(3);
  }, 10_000);

  it('fails as unreachable when a resume is never answered', async () => {
    answer = firstThen(neverAnswered);
    // The deadline holds for the first GET too, answered at once by a server in this process:
    // on a loaded machine, not always within 0.3 s.
    const failure = await readAll(await location({ stallDeadlineMs: 200, answerDeadlineMs: 1000 }).read()).catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: 'UNREACHABLE', message: `cannot reach ${endpoint} for s3://b/${KEY}: no answer in 1 s` });
    expect(gets).toHaveLength(2);
  }, 10_000);

  it('answers an abort during the stall as an abort', async () => {
    answer = stallsMidway;
    const controller = new AbortController();
    // The default stall deadline (a minute) is far beyond the test's timeout: only the abort can end this read.
    const stream = await location().read({ signal: controller.signal });
    let received = 0;
    stream.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received === STALL_AT) setTimeout(() => controller.abort(), 50);
    });
    const failure = await new Promise((resolve) => stream.once('error', resolve));
    expect(failure).toBeInstanceOf(AbortedError);
    expect(received).toBe(STALL_AT);
    expect(gets).toHaveLength(1);
  }, 10_000);

  it('does not take a consumer that holds the body back for a stall', async () => {
    answer = (_request, response) => {
      response.writeHead(200, { 'content-length': DATA.length, etag: ETAG, 'content-type': 'application/octet-stream' });
      response.end(DATA);
    };
    const stream = await location({ stallDeadlineMs: 300 }).read();
    const chunks: Buffer[] = [];
    for await (const chunk of stream) {
      if (chunks.length === 0) await sleep(1_000);
      chunks.push(chunk as Buffer);
    }
    expect(sha256(Buffer.concat(chunks))).toBe(sha256(DATA));
    expect(gets).toHaveLength(1);
  }, 10_000);

  it('does not take a consumer busy with blocking calls between chunks for a stall, nor for a drip', async () => {
    // An honest store sending 1 KiB every 5 ms, and a consumer that blocks this thread 250 ms
    // after each chunk (a slow disk written with blocking calls): the bytes sent meanwhile wait
    // unread. Counted as waiting, each block was a stall, or a drip of 1 KiB: 6 breaks, failed.
    const object = DATA.subarray(0, 8 * 1024);
    answer = (request, response) => {
      const from = Number(/^bytes=(\d+)-$/.exec(request.headers.range ?? '')?.[1] ?? 0);
      response.writeHead(from === 0 ? 200 : 206, {
        'content-length': object.length - from,
        ...(from > 0 && { 'content-range': `bytes ${from}-${object.length - 1}/${object.length}` }),
        etag: ETAG,
        'content-type': 'application/octet-stream',
      });
      let sent = from;
      const timer = setInterval(() => {
        if (response.destroyed) return clearInterval(timer);
        response.write(object.subarray(sent, (sent += 1024)));
        if (sent >= object.length) {
          clearInterval(timer);
          response.end();
        }
      }, 5);
    };
    const blocked = new Int32Array(new SharedArrayBuffer(4));
    const chunks: Buffer[] = [];
    for await (const chunk of await location({ stallDeadlineMs: 100 }).read()) {
      chunks.push(chunk as Buffer);
      Atomics.wait(blocked, 0, 0, 250);
    }
    expect(sha256(Buffer.concat(chunks))).toBe(sha256(object));
    expect(gets).toHaveLength(1);
  }, 20_000);
});
