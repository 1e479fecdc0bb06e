// The list client of the fan-out and the monitor (functions/list-client.ts) against a stand-in
// Lambda endpoint with a real LambdaClient: when the invocation itself fails (throttled,
// denied, no such function, a proxy's HTML page, nothing listening), the error names the list
// function and that the tenants could not be learnt, in one line, as the fan-out answers it.

import { LambdaClient } from '@aws-sdk/client-lambda';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { listFunctionPages } from '../functions/list-client.js';

describe('list client, when Lambda itself answers (a real client, a stand-in endpoint)', () => {
  let server: Server;
  let answer: (response: ServerResponse) => void = () => {};
  beforeAll(async () => {
    server = createServer((request, response) => {
      request.resume();
      request.on('end', () => answer(response));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const client = (port = (server.address() as AddressInfo).port) =>
    new LambdaClient({ region: 'eu-west-1', endpoint: `http://127.0.0.1:${port}`, maxAttempts: 1, credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
  const lambdaError = (status: number, type: string, message: string) => (response: ServerResponse) => {
    response.writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': type });
    response.end(JSON.stringify({ Type: 'User', message }));
  };

  it('names the list function and what it means when the invocation fails: throttled, denied, missing, a proxy\'s page, out of memory, unreachable', async () => {
    const pages = () => listFunctionPages(client(), 'openclaw-backup-list')(undefined, 10);
    answer = lambdaError(429, 'TooManyRequestsException', 'Rate Exceeded.');
    await expect(pages()).rejects.toMatchObject({
      code: 'THROTTLED',
      message: "cannot learn the tenants from openclaw-backup-list: Lambda throttled the invocation (Rate Exceeded.): the account's or the function's concurrency is in use",
    });
    answer = lambdaError(403, 'AccessDeniedException', 'User: arn:aws:sts::123456789012:assumed-role/fanout/x is not authorized to perform: lambda:InvokeFunction');
    await expect(pages()).rejects.toMatchObject({ code: 'ACCESS_DENIED', message: expect.stringMatching(/^cannot learn the tenants from openclaw-backup-list: access denied \(User: .* is not authorized/) });
    answer = lambdaError(404, 'ResourceNotFoundException', 'Function not found: arn:aws:lambda:eu-west-1:123456789012:function:openclaw-backup-list');
    await expect(pages()).rejects.toMatchObject({ code: 'AWS_ERROR', message: expect.stringMatching(/^cannot learn the tenants from openclaw-backup-list: no such function \(Function not found: .*\); OPENCLAW_LIST_FUNCTION names it$/) });
    answer = (response) => {
      response.writeHead(502, { 'content-type': 'text/html' });
      response.end('<html><body>Bad gateway</body></html>');
    };
    await expect(pages()).rejects.toMatchObject({ code: 'AWS_ERROR', message: "cannot learn the tenants from openclaw-backup-list: the answer (HTTP 502) is no Lambda answer, perhaps a proxy's page" });
    // The function itself failed (Lambda's error payload): its type says why.
    answer = (response) => {
      response.writeHead(200, { 'content-type': 'application/json', 'x-amz-function-error': 'Unhandled' });
      response.end(JSON.stringify({ errorType: 'Runtime.OutOfMemory', errorMessage: 'RequestId: r-1 Error: Runtime exited with error: signal: killed' }));
    };
    await expect(pages()).rejects.toMatchObject({ code: 'REMOTE_FUNCTION_ERROR', message: 'openclaw-backup-list failed: Runtime.OutOfMemory: RequestId: r-1 Error: Runtime exited with error: signal: killed' });
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await expect(listFunctionPages(client(port), 'openclaw-backup-list')(undefined, 10)).rejects.toMatchObject({
      code: 'AWS_ERROR',
      message: expect.stringMatching(/^cannot learn the tenants from openclaw-backup-list: Lambda cannot be reached \(.*ECONNREFUSED.*; nothing accepts connections at that address and port\)$/),
    });
  });
});
