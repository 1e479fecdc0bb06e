// The fan-out against a stand-in SQS endpoint that answers as a proxy or load balancer may (an
// HTML page, HTTP 502), with a real SQSClient: each tenant's failure, and the fan-out's own
// when SQS's answer is no retryable one, says the answer was no SQS answer, not the SDK
// parser's "Unexpected token '<'…".

import { SQSClient } from '@aws-sdk/client-sqs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { fanOut } from '../shared/control-plane/fan-out.js';

let server: Server;
let status = 502;
beforeAll(async () => {
  server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      response.writeHead(status, { 'content-type': 'text/html' });
      response.end('<html><body><h1>Bad gateway</h1></body></html>');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('a fan-out whose SQS answers with a proxy\'s page', () => {
  it('names the answer as no SQS answer in every tenant\'s failure, and in the fan-out\'s own', async () => {
    const sqs = new SQSClient({ region: 'eu-west-1', endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, maxAttempts: 1, credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
    const run = { template: 's3://bucket/backups/{tenant}/{date}.tar.zst', time: new Date('2026-06-03T01:00:00Z'), runId: 'run-1' };
    const deps = {
      sqs,
      queueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/openclaw-backup-work',
      listPage: async () => ({ tenants: ['acme', 'beta'] }),
      sleep: async () => {},
    };
    const outcome = await fanOut(run, deps, { maxAttempts: 2 });
    expect(outcome.queued).toBe(0);
    expect(outcome.failed).toEqual(['acme', 'beta'].map((tenant) => ({ tenant, code: 'SQS', message: "not queued after 2 attempts: the answer (HTTP 502) is no SQS answer, perhaps a proxy's page" })));
    // A 4xx page is not retried: the fan-out ends with it.
    status = 403;
    await expect(fanOut(run, deps, { maxAttempts: 2 })).rejects.toMatchObject({
      code: 'AWS_ERROR',
      message: "sending to the work queue: the answer (HTTP 403) is no SQS answer, perhaps a proxy's page (0 of 2 tenants listed so far were queued)",
    });
  });
});
