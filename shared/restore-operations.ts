// The restore side of the operations (restore, its pieces and dry run, verify, the listing of
// a tenant's backups): what the restore function runs, in a module of its own so that its
// bundle carries no archive writer, SQLite snapshot or prune (test/functions-bundle-inputs.test.ts).
// localOperations joins the sides.

import { listBackups } from './catalog/backups.js';
import { planRestore } from './restore/restore-plan.js';
import { verifyArchive } from './restore/verify.js';
import { openStore } from './storage/open-store.js';
import { DEFAULT_LIMITS } from './restore/limits.js';
import { assertTenantName } from './tenant/names.js';
import { restoreTenantPiece, type RestoreChainEnded, type RestorePieces, type RestoreResult, type RestoreSuspended } from './restore/restore.js';
import { openLocation } from './storage/open-location.js';
import { ArchiveLimitError, CorruptArchiveError, UnsafeArchiveError, UsageError } from './errors.js';
import { loadIdentityFile, type AgeIdentity } from './age/keys.js';
import type { IdentitySources, LocalOptions, RestoreCommand, RestoreHooks, StorageFlags, TenantOperations } from './operations.js';

/** What the restore function runs (reading archives is its job and its role's). */
export type RestoreOperations = Required<Pick<TenantOperations, 'restore' | 'restorePiece' | 'planRestore' | 'verify' | 'listBackups'>>;

export function localRestoreOperations(tenantsDir: string, options: LocalOptions = {}): RestoreOperations {
  const restore = async (command: RestoreCommand, hooks: RestoreHooks, pieces?: RestorePieces): Promise<RestoreResult | RestoreSuspended | RestoreChainEnded> => {
    if (command.as !== undefined) assertTenantName(command.as, '--as name');
    const identities = await loadIdentities(command, options, hooks.signal);
    const location = await openLocation(command.from, { ...command.storage, access: 'read' });
    return await restoreTenantPiece({
      tenantsDir,
      location,
      as: command.as,
      force: command.force,
      limits: { ...DEFAULT_LIMITS, ...command.limits },
      ...(command.owner !== undefined && { owner: command.owner }),
      ...(identities.length > 0 && { identities }),
      ...(options.ageCli !== undefined && { ageCli: options.ageCli }),
      signal: hooks.signal,
      onProgress: hooks.onProgress,
      ...(hooks.maxArchiveBytes !== undefined && { maxArchiveBytes: hooks.maxArchiveBytes }),
      ...(hooks.maxArchiveEntries !== undefined && { maxArchiveEntries: hooks.maxArchiveEntries }),
      ...(hooks.cleanupBy !== undefined && { cleanupBy: hooks.cleanupBy }),
      ...(hooks.leftoversSignal !== undefined && { leftoversSignal: hooks.leftoversSignal }),
      ...(options.chainEnder !== undefined && { chainEnder: options.chainEnder }),
      ...(hooks.onRestoreChainEnded !== undefined && { onRestoreChainEnded: hooks.onRestoreChainEnded }),
      ...(pieces !== undefined && { pieces }),
    }).catch(namingArchive(location.display));
  };
  return {
    restore: (command, hooks = {}) => restore(command, hooks) as Promise<RestoreResult>,
    restorePiece: (command, hooks) => restore(command, hooks, hooks.pieces),
    async planRestore(command, hooks = {}) {
      if (command.as !== undefined) assertTenantName(command.as, '--as name');
      const identities = await loadIdentities(command, options, hooks.signal);
      const location = await openLocation(command.from, { ...command.storage, access: 'read' });
      return await planRestore({
        ...(identities.length > 0 && { identities }),
        ...(options.ageCli !== undefined && { ageCli: options.ageCli }),
        tenantsDir,
        location,
        as: command.as,
        force: command.force,
        limits: { ...DEFAULT_LIMITS, ...command.limits },
        signal: hooks.signal,
        onProgress: hooks.onProgress,
      }).catch(namingArchive(location.display));
    },
    async verify(command, hooks = {}) {
      const identities = await loadIdentities(command, options, hooks.signal);
      const location = await openLocation(command.from, { ...command.storage, access: 'read' });
      return await verifyArchive({
        location,
        limits: { ...DEFAULT_LIMITS, ...command.limits },
        record: command.record,
        signal: hooks.signal,
        onProgress: hooks.onProgress,
        ...(identities.length > 0 && { identities }),
        ...(options.ageCli !== undefined && { ageCli: options.ageCli }),
      }).catch(namingArchive(location.display));
    },
    async listBackups(command, hooks = {}) {
      assertTenantName(command.tenant);
      // What exists is listed: a prefix the read rule takes (restore's and verify's), not only one a backup could write.
      const store = await openStore(command.in, { ...command.storage, access: 'read' });
      return listBackups(store, command.tenant, { signal: hooks.signal, ...(command.page !== undefined && { page: command.page }) });
    },
  };
}

/** The identities of `--identity` files or of `--identity-secret`; none when neither is given. */
async function loadIdentities(
  command: IdentitySources & { readonly storage?: StorageFlags },
  options: LocalOptions,
  signal: AbortSignal | undefined,
): Promise<AgeIdentity[]> {
  const files = command.identityFiles ?? [];
  const given = files.length > 0 || command.identitySecret !== undefined;
  if (given && command.storage?.pipe !== undefined) {
    throw new UsageError('--identity/--identity-secret and --pipe exclude each other: built-in decryption replaces --pipe "age -d -i …"');
  }
  const identities: AgeIdentity[] = [];
  for (const file of files) identities.push(...(await loadIdentityFile(file, signal)));
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

/**
 * A damaged, unsafe or oversized archive's message names it: "archive is truncated" or "entry
 * outside tenants/<name>/" alone said not which archive in a log of many (cron, a script's
 * loop over backups).
 */
function namingArchive(display: string): (error: unknown) => never {
  return (error) => {
    const refusesTheArchive = error instanceof CorruptArchiveError || error instanceof UnsafeArchiveError || error instanceof ArchiveLimitError;
    if (refusesTheArchive && !error.message.includes(display)) error.message = `${display}: ${error.message}`;
    throw error;
  };
}
