// The AWS clients the functions build for themselves, against a real socket: an EventBridge
// endpoint that accepts connections and never answers (what an imported VPC without an
// `events` endpoint or NAT looks like from inside, short of the connect timeout). The
// client's own request timeout ends each attempt, the publisher logs the failure, and it
// returns instead of holding the invocation until Lambda's timeout.

import { createServer, type Server, type Socket } from 'node:net';
import { Logger } from '@aws-lambda-powertools/logger';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { CLIENT_MAX_ATTEMPTS, createEventBridgeClient, eventBridgeClientConfig } from '../functions/aws-clients.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS } from '../shared/control-plane/function-config.js';
import { completionPublisher } from '../functions/events.js';

let blackHole: Server;
let endpoint: string;
const sockets = new Set<Socket>();
let requests = 0;

beforeAll(async () => {
  blackHole = createServer((socket) => {
    sockets.add(socket);
    socket.on('data', () => {
      requests += 1;
    });
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
  const address = blackHole.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  endpoint = `http://127.0.0.1:${address.port}`;
});
afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => blackHole.close(() => resolve()));
});

describe('the functions\' EventBridge client', () => {
  it('is configured with connect and request timeouts and a bounded number of attempts', () => {
    expect(eventBridgeClientConfig({})).toEqual({
      maxAttempts: CLIENT_MAX_ATTEMPTS,
      requestHandler: { connectionTimeout: DEFAULT_CONNECT_TIMEOUT_MS, requestTimeout: DEFAULT_REQUEST_TIMEOUT_MS, throwOnRequestTimeout: true },
    });
    expect(eventBridgeClientConfig({ connectTimeoutMs: 1500, requestTimeoutMs: 4000 })).toEqual({
      maxAttempts: 2,
      requestHandler: { connectionTimeout: 1500, requestTimeout: 4000, throwOnRequestTimeout: true },
    });
  });

  it('gives up on a bus that never answers, and the publisher only logs it', async () => {
    const client = createEventBridgeClient(
      { connectTimeoutMs: 1000, requestTimeoutMs: 300 },
      { endpoint, region: 'eu-west-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-secret' } },
    );
    const lines: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (lines.push(String(chunk)), true));
    const spyErr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (lines.push(String(chunk)), true));
    try {
      const logger = new Logger({ serviceName: 'openclaw-backup-test' });
      // A generous publication budget: the client's own request timeout is what ends this.
      const publish = completionPublisher(client, 'openclaw-backup-events', logger, { timeoutMs: 60_000 });
      await publish(
        { operation: 'backup', ok: true, detail: { tenant: 'acme', location: 's3://b/k', trigger: 'schedule', requestId: 'r', operationId: 'r', durationMs: 1 } },
        { remainingMs: 120_000 },
      );
    } finally {
      spy.mockRestore();
      spyErr.mockRestore();
      client.destroy();
    }
    expect(requests).toBe(CLIENT_MAX_ATTEMPTS);
    const failure = lines.find((line) => line.includes('could not publish the completion event'));
    expect(failure).toBeDefined();
    expect(JSON.parse(failure!)).toMatchObject({ level: 'ERROR', eventBus: 'openclaw-backup-events', errorName: 'TimeoutError' });
  });
});
