// `--identity-secret NAME` on the restore function: the age identity is read from AWS Secrets
// Manager, never from the invocation payload. Only secrets named `<stack prefix>/…` are read
// (the role is granted exactly those, infra/backup-functions.ts; this check gives the clear
// message first). The secret's string is an age identity file (AGE-SECRET-KEY-1… lines, #
// comments), as `age-keygen` writes it. Messages name the secret, never its value.

import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

import { looksLikeSecretKey, parseIdentityFile, type AgeIdentity } from '../shared/age/keys.js';
import { SECRET_KEY_AS_SECRET_NAME } from '../shared/control-plane/protocol.js';
import { unreachableCode } from '../shared/control-plane/aws-errors.js';
import { AgeBadIdentityError, RemoteError } from '../shared/errors.js';
import type { IdentitySecretReader } from '../shared/operations.js';
import { abortedError } from '../shared/storage/streams.js';

/** Secrets Manager's own limit on a secret name. */
const MAX_SECRET_NAME_CHARS = 512;
const SECRET_NAME_PATTERN = /^[A-Za-z0-9/_+=.@-]+$/;

/** The reader the restore function hands the core; `stackPrefix` undefined: every name is refused. */
export function secretIdentityReader(client: SecretsManagerClient, stackPrefix: string | undefined): IdentitySecretReader {
  return async (name, signal) => {
    assertIdentitySecretName(name, stackPrefix);
    let text: string | undefined;
    try {
      const answer = await client.send(new GetSecretValueCommand({ SecretId: name }), { abortSignal: signal });
      text = answer.SecretString ?? (answer.SecretBinary === undefined ? undefined : Buffer.from(answer.SecretBinary).toString('utf8'));
    } catch (error) {
      // Stopped by the invocation's deadline: the deadline's own error, as every other step answers it.
      if (signal?.aborted === true) throw abortedError(signal);
      throw secretError(error, name);
    }
    if (text === undefined) throw new AgeBadIdentityError(`the secret "${name}" holds no value`);
    return parseIdentityFile(text, `the secret "${name}"`) satisfies AgeIdentity[];
  };
}

export function assertIdentitySecretName(name: string, stackPrefix: string | undefined): void {
  if (looksLikeSecretKey(name)) throw new AgeBadIdentityError(SECRET_KEY_AS_SECRET_NAME);
  if (name.length === 0 || name.length > MAX_SECRET_NAME_CHARS || !SECRET_NAME_PATTERN.test(name)) {
    throw new AgeBadIdentityError(`invalid --identity-secret ${JSON.stringify(name.slice(0, 80))}: a Secrets Manager secret name (letters, digits and /_+=.@-)`);
  }
  if (stackPrefix === undefined || !name.startsWith(`${stackPrefix}/`) || name.length === stackPrefix.length + 1) {
    throw new AgeBadIdentityError(
      `the restore function reads identities only from secrets named ${stackPrefix ?? '<stack prefix>'}/…, not "${name}": store the identity there`,
    );
  }
}

function secretError(error: unknown, name: string): Error {
  const kind = (error as { name?: string }).name ?? '';
  if (kind === 'ResourceNotFoundException') return new AgeBadIdentityError(`the secret "${name}" does not exist (in the gateway's account and region)`);
  if (kind === 'AccessDeniedException') {
    return new RemoteError('ACCESS_DENIED', `the restore function may not read the secret "${name}" (or the KMS key that encrypts it)`, { cause: error });
  }
  if (kind === 'DecryptionFailure') return new RemoteError('ACCESS_DENIED', `the secret "${name}" cannot be decrypted with its KMS key`, { cause: error });
  const cannot = `cannot read the secret "${name}"`;
  if (kind === 'TimeoutError') return new RemoteError('AWS_ERROR', `${cannot}: Secrets Manager did not answer in time (OPENCLAW_REQUEST_TIMEOUT_MS, two attempts)`, { cause: error });
  const code = unreachableCode(error);
  if (code !== undefined) {
    return new RemoteError('AWS_ERROR', `${cannot}: Secrets Manager cannot be reached (${code}): check the function's network (a VPC endpoint or NAT for Secrets Manager)`, { cause: error });
  }
  // Its text is never shown: a JSON parser's quotes the answer, which may hold the secret's value.
  if (kind === 'SyntaxError') return new RemoteError('AWS_ERROR', `${cannot}: the answer is not Secrets Manager's (not its JSON: a proxy in the way?)`, { cause: error });
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return new RemoteError('AWS_ERROR', `${cannot}: ${kind || 'error'}${status === undefined ? '' : ` (HTTP ${status})`}`, { cause: error });
}
