// The restore function's --identity-secret when Secrets Manager does not answer as it should:
// refused connections, an answer that never comes, a proxy's page, and the invocation's
// deadline reached while waiting. A real client (the one the function builds) against a local
// server reached as the SDK reaches an endpoint set in the environment; each failure is one
// line that says what went wrong, and never quotes the answer.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

import { createSecretsManagerClient } from '../functions/aws-clients.js';
import { secretIdentityReader } from '../functions/identity-secrets.js';
import { AbortedError } from '../shared/errors.js';

const SECRET_VALUE = 'AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ';
let server: Server;
let endpoint: string;
const unanswered: (() => void)[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      const { SecretId } = JSON.parse(body) as { SecretId: string };
      if (SecretId.endsWith('/silent')) {
        unanswered.push(() => response.destroy());
        return;
      }
      // A cut answer: JSON.parse's message would quote it, value and all.
      response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
      response.end(`{"Name":"${SecretId}","SecretString":"${SECRET_VALUE}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(() => vi.unstubAllEnvs());

afterAll(async () => {
  for (const hangUp of unanswered) hangUp();
  await new Promise((resolve) => server.close(resolve));
});

/** The function's reader with the client it builds, sent to `at` (the SDK reads the endpoint, region and keys from the environment). */
function reader(at: string, requestTimeoutMs = 10_000) {
  vi.stubEnv('AWS_ENDPOINT_URL_SECRETS_MANAGER', at);
  vi.stubEnv('AWS_REGION', 'us-east-1');
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'role-key');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'role-secret');
  return secretIdentityReader(createSecretsManagerClient({ requestTimeoutMs }), 'openclaw-backup');
}

async function failure(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  return (await promise.then(() => expect.fail('read a secret'), (error: unknown) => error)) as Error & { code?: string };
}

describe('reading an identity secret when Secrets Manager fails', () => {
  it('stopped by the deadline while waiting: the deadline stop, as every other step answers it', async () => {
    const controller = new AbortController();
    const read = reader(endpoint)('openclaw-backup/silent', controller.signal);
    while (unanswered.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    controller.abort(new AbortedError('stopped: the Lambda invocation was about to time out'));
    const error = await failure(read);
    expect(error).toBeInstanceOf(AbortedError);
    expect(error).toMatchObject({ code: 'ABORTED', message: 'stopped: the Lambda invocation was about to time out' });
  });

  it('no answer within the request timeout: says so, not a bare error name', async () => {
    const error = await failure(reader(endpoint, 50)('openclaw-backup/silent'));
    expect(error).toMatchObject({ code: 'AWS_ERROR', message: 'cannot read the secret "openclaw-backup/silent": Secrets Manager did not answer in time (OPENCLAW_REQUEST_TIMEOUT_MS, two attempts)' });
  });

  it('a connection refused: names it and where to look', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const at = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));
    const error = await failure(reader(at)('openclaw-backup/backup-key'));
    expect(error.code).toBe('AWS_ERROR');
    expect(error.message).toMatch(/^cannot read the secret "openclaw-backup\/backup-key": Secrets Manager cannot be reached \(ECONNREFUSED\): check the function's network/);
  });

  it('an answer that is not its JSON: said without quoting it (it may hold the value)', async () => {
    const error = await failure(reader(endpoint)('openclaw-backup/cut'));
    expect(error).toMatchObject({ code: 'AWS_ERROR', message: 'cannot read the secret "openclaw-backup/cut": the answer is not Secrets Manager\'s (not its JSON: a proxy in the way?)' });
    expect(error.message).not.toContain('AGE-SECRET-KEY');
  });
});
