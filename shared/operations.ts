// The operations a user asks for, as plain serialisable commands, and the one interface
// that runs them. The CLI builds a command from its flags and hands it to an executor:
// in-process (`localOperations`, the embedded default) or a deployed gateway's Lambda
// functions (remote mode), which run these same local operations on the EFS volume.

import { backupTenant, type BackupResult } from './backup/backup.js';
import type { ExtractProgress } from './restore/extract.js';
import { DEFAULT_LIMITS, type ExtractLimits } from './restore/limits.js';
import { assertTenantName } from './tenant/names.js';
import { recoverTenant, type RecoverResult } from './tenant/recover.js';
import { restoreTenant, type RestoreResult } from './restore/restore.js';
import { openLocation, type LocationOptions } from './storage/open-location.js';
import { isS3Url } from './storage/s3-url.js';
import { listTenantNames, summarizeTenant, summarizeTenants, type TenantSummary } from './tenant/tenants.js';
import type { ArchiveProgress } from './backup/tenant-archive.js';
import type { Keep } from './tenant/slot.js';
import type { Owner } from './tenant/ownership.js';
import { AgeBadRecipientError, UsageError } from './errors.js';
import { MAX_RECIPIENTS } from './archive/encrypted-archive.js';
import { loadIdentityFile, parseRecipient, type AgeIdentity, type AgeRecipient } from './age/keys.js';

/** How to reach the archive: S3 credentials and endpoint, and an optional filter command (the user's flags). */
export type StorageFlags = Omit<LocationOptions, 'expectedBytes'>;

export interface BackupCommand {
  readonly tenant: string;
  /** `s3://bucket/key` or a local path. */
  readonly to: string;
  readonly overwrite?: boolean;
  readonly storage?: StorageFlags;
  /** `--encrypt-to` and the keys of `--recipients-file`: age1… recipients (public keys) to encrypt the archive to. */
  readonly encryptTo?: readonly string[];
}

export interface RestoreCommand {
  /** `s3://bucket/key` or a local path. */
  readonly from: string;
  readonly as?: string;
  readonly force?: boolean;
  readonly limits?: Partial<ExtractLimits>;
  readonly storage?: StorageFlags;
  /** `--owner UID:GID` (local mode only: on the gateway the access point's user owns everything). */
  readonly owner?: Owner;
  /** `--identity FILE`: age identity files on this machine (local mode only: identities never travel to the gateway). */
  readonly identityFiles?: readonly string[];
  /** `--identity-secret NAME`: the Secrets Manager secret the gateway's restore function reads the identity from (remote mode only). */
  readonly identitySecret?: string;
}

/** Reads the identities held by a named secret (the restore function's Secrets Manager client). */
export type IdentitySecretReader = (name: string, signal?: AbortSignal) => Promise<AgeIdentity[]>;

export interface LocalOperationsOptions {
  /** Where `--identity-secret` is read; absent (the CLI's local mode): the flag is refused. */
  readonly identitySecrets?: IdentitySecretReader;
}

export interface RecoverCommand {
  readonly tenant: string;
  readonly keep?: Keep;
}

export interface OperationHooks<P> {
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: P) => void;
  /**
   * Progress should carry a total (for a percent and an ETA), even where finding it costs
   * something: a backup to a local file walks the tenant once more first (one lstat per
   * entry). Ask only when the progress is shown.
   */
  readonly measureTotal?: boolean;
}

/** `totalBytes`: the tenant's file content as a walk before the backup found it, when measured. */
export type BackupProgress = ArchiveProgress & { readonly archiveBytes: number; readonly totalBytes?: number };
/** `archiveTotalBytes`: the stored archive's size, when the store told it (not through --pipe). */
export type RestoreProgress = ExtractProgress & { readonly archiveBytes: number; readonly archiveTotalBytes?: number };

/** Runs operations somewhere: in this process, or on a deployed gateway. */
export interface TenantOperations {
  backup(command: BackupCommand, hooks?: OperationHooks<BackupProgress>): Promise<BackupResult>;
  restore(command: RestoreCommand, hooks?: OperationHooks<RestoreProgress>): Promise<RestoreResult>;
  /** Settles an interrupted restore (`tenants recover`); local mode only. */
  recover(command: RecoverCommand): Promise<RecoverResult>;
  listNames(): Promise<string[]>;
  listSummaries(): Promise<TenantSummary[]>;
}

export function localOperations(tenantsDir: string, options: LocalOperationsOptions = {}): TenantOperations {
  return {
    async backup(command, hooks = {}) {
      assertTenantName(command.tenant);
      const recipients = parseRecipients(command);
      // An S3 upload picks its part size from the expected size (10,000 parts at most);
      // the tenant's file bytes bound the archive's, and the walk is cheap beside the backup.
      const expectedBytes = isS3Url(command.to) || hooks.measureTotal === true ? await tenantBytes(tenantsDir, command.tenant) : undefined;
      const location = await openLocation(command.to, { ...command.storage, expectedBytes });
      const { onProgress } = hooks;
      return backupTenant({
        tenantsDir,
        tenant: command.tenant,
        location,
        overwrite: command.overwrite,
        signal: hooks.signal,
        ...(recipients.length > 0 && { recipients }),
        onProgress: onProgress === undefined || expectedBytes === undefined ? onProgress : (progress) => onProgress({ ...progress, totalBytes: expectedBytes }),
      });
    },
    async restore(command, hooks = {}) {
      if (command.as !== undefined) assertTenantName(command.as, '--as name');
      const identities = await loadIdentities(command, options, hooks.signal);
      const location = await openLocation(command.from, { ...command.storage });
      return restoreTenant({
        tenantsDir,
        location,
        as: command.as,
        force: command.force,
        limits: { ...DEFAULT_LIMITS, ...command.limits },
        ...(command.owner !== undefined && { owner: command.owner }),
        ...(identities.length > 0 && { identities }),
        signal: hooks.signal,
        onProgress: hooks.onProgress,
      });
    },
    recover: (command) => recoverTenant({ tenantsDir, tenant: command.tenant, keep: command.keep }),
    listNames: () => listTenantNames(tenantsDir),
    listSummaries: () => summarizeTenants(tenantsDir),
  };
}

async function tenantBytes(tenantsDir: string, tenant: string): Promise<number | undefined> {
  try {
    return (await summarizeTenant(tenantsDir, tenant)).bytes;
  } catch {
    return undefined; // a missing tenant is reported by the backup itself, with its own message
  }
}

/** The age recipients of `--encrypt-to` / `--recipients-file`, validated before anything is read. */
function parseRecipients(command: BackupCommand): AgeRecipient[] {
  const texts = command.encryptTo ?? [];
  if (texts.length === 0) return [];
  if (command.storage?.pipe !== undefined) {
    throw new UsageError(
      '--encrypt-to/--recipients-file and --pipe exclude each other: built-in encryption replaces --pipe "age -r …"; ' +
        'to encrypt with another tool, leave --encrypt-to out and give it as --pipe',
    );
  }
  if (texts.length > MAX_RECIPIENTS) throw new AgeBadRecipientError(`too many recipients (${texts.length}): at most ${MAX_RECIPIENTS}`);
  const recipients = texts.map((text) => parseRecipient(text));
  // The same key twice would only make the header longer.
  return recipients.filter((recipient, index) => recipients.findIndex((other) => other.text === recipient.text) === index);
}

/** The identities of `--identity` files or of `--identity-secret`; none when neither is given. */
async function loadIdentities(command: RestoreCommand, options: LocalOperationsOptions, signal: AbortSignal | undefined): Promise<AgeIdentity[]> {
  const files = command.identityFiles ?? [];
  const given = files.length > 0 || command.identitySecret !== undefined;
  if (given && command.storage?.pipe !== undefined) {
    throw new UsageError('--identity/--identity-secret and --pipe exclude each other: built-in decryption replaces --pipe "age -d -i …"');
  }
  const identities: AgeIdentity[] = [];
  for (const file of files) identities.push(...(await loadIdentityFile(file)));
  if (command.identitySecret !== undefined) {
    if (options.identitySecrets === undefined) {
      throw new UsageError(
        '--identity-secret is read by the gateway\'s restore function from AWS Secrets Manager (remote mode, --stack): here, give the identity file with --identity FILE',
        'REMOTE_ONLY',
      );
    }
    identities.push(...(await options.identitySecrets(command.identitySecret, signal)));
  }
  return identities;
}
