// The control plane's SDK failures as one line each: a network that never reached AWS says
// so (instead of "Error: getaddrinfo ENOTFOUND …"), a missing function names the stack, a
// proxy's page in place of AWS's answer says so (instead of "SyntaxError: Unexpected token '<'").

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { describe, expect, it } from 'vitest';

import { translateAwsError } from '../shared/control-plane/aws-errors.js';
import { RemoteError, UsageError } from '../shared/errors.js';

const plane = { stack: 'openclaw-backup', region: 'eu-west-1' };

describe('translateAwsError', () => {
  it.each([
    ['ENOTFOUND', '; the host name does not resolve: check its spelling, and DNS'],
    ['EAI_AGAIN', '; the host name could not be resolved now: check DNS and the network'],
    ['ECONNREFUSED', '; nothing accepts connections at that address and port'],
    ['ETIMEDOUT', ''],
  ])('says AWS could not be reached on %s, what the code means (as for S3), and what to check', (code, meaning) => {
    const cause = Object.assign(new Error(`getaddrinfo ${code} lambda.eu-west-1.amazonaws.com`), { code });
    const error = translateAwsError(cause, plane, 'invoking openclaw-backup-list');
    expect(error).toBeInstanceOf(RemoteError);
    expect(error).toMatchObject({ code: 'AWS_ERROR', outcome: 'failed' });
    expect(error.message).toBe(
      `invoking openclaw-backup-list: cannot reach AWS in eu-west-1 (getaddrinfo ${code} lambda.eu-west-1.amazonaws.com${meaning}): check the network (a proxy, a VPC endpoint) and --region`,
    );
  });

  it('still names the stack for a function that is not there', () => {
    const cause = Object.assign(new Error('Function not found'), { name: 'ResourceNotFoundException' });
    const error = translateAwsError(cause, plane, 'invoking openclaw-backup-list');
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toMatch(/^invoking openclaw-backup-list: not found in eu-west-1: is the stack "openclaw-backup" deployed there\?/);
  });

  it.each([
    [502, 'try again shortly; if it stays, check the network'],
    [403, 'check the network'],
  ])('says an HTTP %i page that is no AWS answer is one, and what to do', async (status, advice) => {
    const proxy = createServer((_request, response) => response.writeHead(status, { 'content-type': 'text/html' }).end('<html><body>Bad Gateway</body></html>'));
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const client = new LambdaClient({
        region: 'eu-west-1',
        endpoint: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
        credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
        maxAttempts: 1,
      });
      const cause = await client.send(new InvokeCommand({ FunctionName: 'openclaw-backup-list' })).then(
        () => undefined,
        (error: unknown) => error,
      );
      const error = translateAwsError(cause, plane, 'invoking openclaw-backup-list');
      expect(error).toMatchObject({ code: 'AWS_ERROR', outcome: 'failed' });
      expect(error.message).toBe(`invoking openclaw-backup-list: the answer in eu-west-1 (HTTP ${status}) is no AWS answer, perhaps a proxy's page: ${advice} (a proxy, a VPC endpoint) and --region`);
    } finally {
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});
