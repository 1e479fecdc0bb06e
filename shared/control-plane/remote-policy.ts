// What a request may ask of the functions, checked before any S3 client exists. The
// execution role enforces least privilege too; this is where the user gets a clear message
// instead of an AccessDenied from deep inside an upload.
//   - archives live in S3: a local path would land on the function's own disk or the EFS mount
//   - `--pipe` runs a shell command: not in Lambda
//   - `--aws-profile`: the function has no profiles, it uses its execution role
//   - AWS S3 (no endpoint): backups write to the backup bucket (under its key prefix, when
//     one is configured) only; restores read there and from the allowed source buckets;
//     always with the execution role: keys in the request are refused (they would let a
//     caller write the tenant into an account of their own)
//   - an S3-compatible endpoint (its own keys, reached from the VPC): only one the deployer
//     listed in OPENCLAW_ALLOWED_ENDPOINTS (none by default; an entry with a path allows that
//     path and below it only: endpoint-allowlist.ts), any bucket there
//   - `--overwrite`: only where the deployer allowed it (OPENCLAW_ALLOW_OVERWRITE); a backup
//     function that can replace archives can erase a tenant's history
//   - the stack's `encryptTo` (OPENCLAW_ENCRYPT_TO): every backup is encrypted to those
//     recipients too, whether the request names none or others (`withStackRecipients`)
//   - many archives at once (`tenants backups`, `tenants prune`: `s3://bucket/prefix/`): a
//     listing where a restore may read, a prune only in the backup bucket, both within its key
//     prefix when one is configured
// Every check here runs before anything is read from the tenant volume or S3.

import { AgeBadRecipientError, LocationNotAllowedError, OverwriteNotAllowedError, UsageError } from '../errors.js';
import { MAX_RECIPIENTS } from '../archive/encrypted-archive.js';
import { parseRecipient } from '../age/keys.js';
import type { BackupCommand, StorageFlags } from '../operations.js';
import { isS3Url, parseS3Prefix, parseS3Url } from '../storage/s3-url.js';
import { endpointAllowed, requestedEndpoint } from './endpoint-allowlist.js';
import type { FunctionConfig } from './function-config.js';

/** Why --pipe is refused in remote mode, and the built-in age encryption that works there instead. */
export function pipeRefusal(direction: 'backup' | 'restore'): string {
  const instead =
    direction === 'backup'
      ? 'encrypt with --encrypt-to age1… or --recipients-file FILE (age, built in; restore with --identity-secret NAME)'
      : 'an age-encrypted archive is decrypted with --identity-secret NAME (an age identity in Secrets Manager)';
  return `--pipe runs a shell command and is not available in remote mode (the gateway's Lambda functions): ${instead}, or run the CLI without --stack to pipe through your own tool`;
}

export function assertRemoteStorage(direction: 'backup' | 'restore', location: string, storage: StorageFlags | undefined, config: FunctionConfig): void {
  if (storage?.pipe !== undefined) throw new UsageError(pipeRefusal(direction), 'REMOTE_UNSUPPORTED');
  if (storage?.awsProfile !== undefined) {
    throw new UsageError(
      '--aws-profile is not available in the gateway\'s functions: they use their execution role ' +
        '(in remote mode --aws-profile chooses the account the CLI calls the gateway with)',
      'REMOTE_UNSUPPORTED',
    );
  }
  const flag = direction === 'backup' ? '--to' : '--from';
  if (!isS3Url(location)) {
    throw new UsageError(
      `in remote mode archives are stored in S3: ${flag} must be s3://bucket/key ` +
        '(the gateway\'s functions cannot reach a path on this machine)',
      'REMOTE_UNSUPPORTED',
    );
  }
  const { bucket, key } = parseS3Url(location, direction === 'restore' ? 'read' : 'write');

  if (storage?.endpoint !== undefined) {
    const allowed = config.allowedEndpoints ?? [];
    const shown = requestedEndpoint(storage.endpoint);
    if (allowed.length === 0) {
      throw new LocationNotAllowedError(
        `this gateway allows no S3-compatible endpoint (--endpoint ${shown ?? '…'}): its functions reach AWS S3 only, with their own role ` +
          '(the deployer lists allowed endpoints in the stack\'s context key allowedEndpoints)',
      );
    }
    if (shown === undefined || !endpointAllowed(allowed, storage.endpoint)) {
      throw new LocationNotAllowedError(`this gateway does not allow the endpoint ${shown ?? 'given'}: allowed are ${allowed.join(', ')}`);
    }
    return;
  }
  if (storage?.accessKey !== undefined || storage?.secretKey !== undefined) {
    throw new LocationNotAllowedError(
      '--access-key/--secret-key are for an allowed S3-compatible --endpoint: on AWS the gateway\'s functions use their execution role only',
    );
  }

  if (config.backupBucket === undefined && (direction === 'backup' || config.allowedSourceBuckets.length === 0)) {
    throw new LocationNotAllowedError('this gateway has no backup bucket configured (OPENCLAW_BACKUP_BUCKET): it cannot reach S3');
  }
  const allowed = direction === 'backup' ? [config.backupBucket!] : [...(config.backupBucket === undefined ? [] : [config.backupBucket]), ...config.allowedSourceBuckets];
  if (!allowed.includes(bucket)) {
    throw new LocationNotAllowedError(
      direction === 'backup'
        ? `this gateway backs up to ${backupArea(config)} only, not to bucket "${bucket}"`
        : `this gateway restores from ${[backupArea(config), ...config.allowedSourceBuckets.map((name) => `s3://${name}/`)].join(', ')} only, not from bucket "${bucket}"`,
    );
  }
  const prefix = config.backupKeyPrefix;
  if (bucket === config.backupBucket && prefix !== undefined && !key.startsWith(prefix)) {
    throw new LocationNotAllowedError(
      `this gateway keeps its archives under ${backupArea(config)}: ${flag} must be s3://${bucket}/${prefix}…, not ${location}`,
    );
  }
}

/**
 * `--in s3://bucket/prefix/` of `tenants backups` (`list`: where restores may read) and
 * `tenants prune` (`prune`: the backup bucket only), within the key prefix.
 */
export function assertRemoteStore(purpose: 'list' | 'prune', location: string, storage: Omit<StorageFlags, 'pipe'> | undefined, config: FunctionConfig): void {
  if (!isS3Url(location)) {
    throw new UsageError(
      'in remote mode archives are stored in S3: --in must be s3://bucket/prefix/ (the gateway\'s functions cannot reach a directory on this machine)',
      'REMOTE_UNSUPPORTED',
    );
  }
  const { bucket, prefix } = parseS3Prefix(location, purpose === 'list' ? 'read' : 'write');
  const keyPrefix = config.backupKeyPrefix;
  if (storage?.endpoint === undefined && bucket === config.backupBucket && keyPrefix !== undefined && !prefix.startsWith(keyPrefix)) {
    throw new LocationNotAllowedError(`this gateway keeps its archives under ${backupArea(config)}: --in must be s3://${bucket}/${keyPrefix}…, not ${location}`);
  }
  if (storage?.endpoint === undefined && config.backupBucket !== undefined) {
    const readable = [config.backupBucket, ...(purpose === 'list' ? config.allowedSourceBuckets : [])];
    if (!readable.includes(bucket)) {
      throw new LocationNotAllowedError(
        purpose === 'prune'
          ? `this gateway prunes archives in ${backupArea(config)} only, not in bucket "${bucket}"`
          : `this gateway lists archives in ${[backupArea(config), ...config.allowedSourceBuckets.map((name) => `s3://${name}/`)].join(', ')} only, not in bucket "${bucket}"`,
      );
    }
  }
  // The same rules as for one archive there: a key inside the prefix stands for it.
  assertRemoteStorage(purpose === 'prune' ? 'backup' : 'restore', `s3://${bucket}/${prefix}x`, storage, config);
}

/** `--overwrite` is the deployer's opt-in (OPENCLAW_ALLOW_OVERWRITE); refused otherwise. */
export function assertOverwriteAllowed(overwrite: boolean | undefined, config: Pick<FunctionConfig, 'allowOverwrite'>): void {
  if (overwrite === true && config.allowOverwrite !== true) {
    throw new OverwriteNotAllowedError(
      'this gateway never replaces an archive: --overwrite is turned off for its functions ' +
        '(the deployer allows it with the stack\'s context key allowOverwrite); back up to a new key instead',
    );
  }
}

/** `s3://bucket/prefix/` of the backup area. */
export function backupArea(config: Pick<FunctionConfig, 'backupBucket' | 'backupKeyPrefix'>): string {
  return `s3://${config.backupBucket ?? '?'}/${config.backupKeyPrefix ?? ''}`;
}

/**
 * The backup the functions run for `command`: with the stack's `encryptTo`, encrypted to those
 * recipients beside the request's own (as a restic or borg repository encrypts every snapshot
 * with its key, whatever a run says: no run stores plaintext because a flag was forgotten, and
 * none fails for it). Without `encryptTo` the command as it came. The recipients are public
 * keys: anyone holding the request's identities or the stack's can open the archive.
 */
export function withStackRecipients(command: BackupCommand, config: Pick<FunctionConfig, 'encryptTo'>): BackupCommand {
  if ((config.encryptTo ?? []).length === 0) return command;
  return { ...command, encryptTo: stackRecipients(command.encryptTo ?? [], config) };
}

/**
 * A request's own recipients (each key once), then the stack's `encryptTo` not among them. More
 * than an archive can carry (MAX_RECIPIENTS) is refused in one line naming the stack's keys: the
 * request may name that many fewer (age's own "too many recipients" would not say why).
 */
export function stackRecipients(own: readonly string[], config: Pick<FunctionConfig, 'encryptTo'>): readonly string[] {
  const stack = config.encryptTo ?? [];
  if (stack.length === 0) return own;
  const canonical = (text: string): string => {
    try {
      return parseRecipient(text).text;
    } catch {
      return text; // a bad one is named by backupRecipients
    }
  };
  const texts: string[] = [];
  for (const text of own) if (!texts.includes(canonical(text))) texts.push(canonical(text));
  const added = stack.filter((recipient) => !texts.includes(canonical(recipient)));
  if (texts.length + added.length > MAX_RECIPIENTS) {
    const keys = stack.length === 1 ? `its key ${stack[0]}` : `its ${stack.length} keys (${stack.join(', ')})`;
    throw new AgeBadRecipientError(
      `too many recipients: this stack encrypts every backup to ${keys} too (encryptTo), which with the ${texts.length} the request names makes ${texts.length + added.length}, ` +
        `at most ${MAX_RECIPIENTS}: name at most ${MAX_RECIPIENTS - stack.length} others (the stack's own may be left out)`,
    );
  }
  return [...texts, ...added];
}
