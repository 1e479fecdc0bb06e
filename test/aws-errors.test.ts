// The control plane's SDK failures as one line each: a network that never reached AWS says
// so (instead of "Error: getaddrinfo ENOTFOUND …"), a missing function names the stack.

import { describe, expect, it } from 'vitest';

import { translateAwsError } from '../shared/control-plane/aws-errors.js';
import { RemoteError, UsageError } from '../shared/errors.js';

const plane = { stack: 'openclaw-backup', region: 'eu-west-1' };

describe('translateAwsError', () => {
  it.each(['ENOTFOUND', 'ECONNREFUSED', 'ETIMEDOUT'])('says AWS could not be reached on %s, and what to check', (code) => {
    const cause = Object.assign(new Error(`getaddrinfo ${code} lambda.eu-west-1.amazonaws.com`), { code });
    const error = translateAwsError(cause, plane, 'invoking openclaw-backup-list');
    expect(error).toBeInstanceOf(RemoteError);
    expect(error).toMatchObject({ code: 'AWS_ERROR', outcome: 'failed' });
    expect(error.message).toBe(
      `invoking openclaw-backup-list: cannot reach AWS in eu-west-1 (getaddrinfo ${code} lambda.eu-west-1.amazonaws.com): check the network (a proxy, a VPC endpoint) and --region`,
    );
  });

  it('still names the stack for a function that is not there', () => {
    const cause = Object.assign(new Error('Function not found'), { name: 'ResourceNotFoundException' });
    const error = translateAwsError(cause, plane, 'invoking openclaw-backup-list');
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toMatch(/^invoking openclaw-backup-list: not found in eu-west-1: is the stack "openclaw-backup" deployed there\?/);
  });
});
