// The operations a user asks for, as plain serialisable commands, and the one interface
// that runs them. The CLI builds a command from its flags and hands it to an executor:
// in-process (`localOperations`, the embedded default) or a deployed gateway's Lambda
// functions (remote mode), which run these same local operations on the EFS volume.

import os from 'node:os';

import { abandonStaleBackups, backupTenant, backupTenantInPieces, type AbandonedBackup, type AbandonOptions, type BackupRequest, type BackupResult, type BackupSuspended } from './backup/backup.js';
import { assertAllTemplate, backupAll, defaultJobs, type BackupAllProgress, type BackupAllResult } from './backup/backup-all.js';
import type { CompressOptions } from './archive/zstd-encoder.js';
import { planBackup, type BackupPlan } from './backup/backup-plan.js';
import { listBackups, type BackupsListing, type BackupsPage } from './catalog/backups.js';
import { pruneBackups, type PruneResult } from './catalog/prune.js';
import type { RetentionPolicy } from './catalog/retention.js';
import { planRestore, type RestorePlan } from './restore/restore-plan.js';
import { verifyArchive, type VerifyResult } from './restore/verify.js';
import { openStore } from './storage/open-store.js';
import type { ExtractProgress } from './restore/extract.js';
import type { ArchiveEntryLimit, ArchiveSizeLimit } from './restore/read-archive.js';
import { DEFAULT_LIMITS, type ExtractLimits } from './restore/limits.js';
import { assertTenantName } from './tenant/names.js';
import { recoverTenant, type RecoverResult } from './tenant/recover.js';
import { sweepBaseDir } from './tenant/base-dir-sweep.js';
import { TempArea } from './backup/temp-area.js';
import { restoreTenantPiece, type RestoreChainEnded, type RestorePieces, type RestoreResult, type RestoreSuspended } from './restore/restore.js';
import { openLocation, type LocationOptions } from './storage/open-location.js';
import { isS3Url } from './storage/s3-url.js';
import { assertTenantNameIn, listSkippedTenants, listTenantNames, summarizeTenant, summarizeTenants, type ListPage, type SkippedTenants, type TenantSummary } from './tenant/tenants.js';
import type { ArchiveProgress } from './backup/tenant-archive.js';
import type { SqliteWriters } from './backup/sqlite-policy.js';
import type { Keep, RecoverOptions } from './tenant/slot.js';
import type { ChainEnder } from './backup/continuation.js';
import type { FanOutResult } from './control-plane/protocol.js';
import type { Owner } from './tenant/ownership.js';
import { ArchiveLimitError, CorruptArchiveError, UnsafeArchiveError, UsageError } from './errors.js';
import { assertNotPlaintextAsAge, backupRecipients, type AgeCliRoute } from './archive/encrypted-archive.js';
import { loadIdentityFile, type AgeIdentity, type AgeRecipient } from './age/keys.js';
import { existingBackupFinder } from './catalog/existing-backup.js';

/** How to reach the archive: S3 credentials and endpoint, and an optional filter command (the user's flags). */
export type StorageFlags = Omit<LocationOptions, 'expectedBytes'>;

export interface BackupCommand {
  readonly tenant: string;
  /** `s3://bucket/key` or a local path. */
  readonly to: string;
  readonly overwrite?: boolean;
  /** Archive a SQLite database of which no consistent copy can be had raw, with a warning, instead of failing. */
  readonly sqliteRawFallback?: boolean;
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

/** Where the identities that decrypt an archive come from (restore, its dry run, verify). */
export interface IdentitySources {
  /** `--identity FILE`: age identity files on this machine (local mode only: identities never travel to the gateway). */
  readonly identityFiles?: readonly string[];
  /** `--identity-secret NAME`: the Secrets Manager secret the gateway's functions read the identity from (remote mode only). */
  readonly identitySecret?: string;
}

/** `tenants backup --all`: every tenant, each to `to` with its placeholders filled in ({tenant}, {date}, …). */
export interface BackupAllCommand {
  /** A destination template naming `{tenant}` (destination-template.ts). */
  readonly to: string;
  /** Backups at once on this machine. @default from the cores (backup-all.ts); a gateway runs its own number at once */
  readonly jobs?: number;
  readonly overwrite?: boolean;
  /** As BackupCommand's, for every tenant (local mode only: a gateway's fan-out takes none). */
  readonly sqliteRawFallback?: boolean;
  /** `--skip-existing`: a tenant whose destination holds a complete backup of it already is skipped (local mode only). */
  readonly skipExisting?: boolean;
  readonly storage?: StorageFlags;
  /** age1… recipients every archive is encrypted to (as BackupCommand.encryptTo). */
  readonly encryptTo?: readonly string[];
}

/** What `tenants backup --all` did on a gateway: the backups it queued, which run there a bounded number at a time. */
export type QueuedBackupAll = FanOutResult;

/** Local mode runs every backup and answers with their outcomes; a gateway queues them. */
export function isQueuedBackupAll(result: BackupAllResult | QueuedBackupAll): result is QueuedBackupAll {
  return 'queued' in result;
}

/** `tenants verify --from SRC`: the restore's checks, nothing written. */
export interface VerifyCommand {
  readonly from: string;
  readonly limits?: Partial<ExtractLimits>;
  /** Record the verification beside the archive (tag, hidden file). @default true */
  readonly record?: boolean;
  readonly storage?: StorageFlags;
  /** `--identity FILE` (local mode) / `--identity-secret NAME` (remote mode): as RestoreCommand's. */
  readonly identityFiles?: readonly string[];
  readonly identitySecret?: string;
}

/** Where many archives live: `s3://bucket/prefix/` or a directory. `--pipe` does not apply. */
export type StoreFlags = Omit<StorageFlags, 'pipe'>;

/** `tenants backups NAME --in LOCATION` */
export interface BackupsCommand {
  readonly tenant: string;
  readonly in: string;
  readonly storage?: StoreFlags;
  /** One page of the listing only (the gateway's answers); absent: the whole. */
  readonly page?: BackupsPage;
}

/** A prune's store flags: those of any store, and `--delete-if-match` (open-store.ts). */
export type PruneStoreFlags = StoreFlags & { readonly deleteIfMatch?: boolean };

/** `tenants prune NAME --in LOCATION --keep-…` */
export interface PruneCommand {
  readonly tenant: string;
  readonly in: string;
  readonly keep: RetentionPolicy;
  readonly dryRun?: boolean;
  readonly storage?: PruneStoreFlags;
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
  /** Told of a restore in pieces the operation's recovery ended (RecoverOptions.onRestoreChainEnded): the functions publish its failure event. */
  readonly onRestoreChainEnded?: RecoverOptions['onRestoreChainEnded'];
}

/** `maxArchiveBytes`, `maxArchiveEntries`: refuse up front an archive larger than this, of more entries (restore.ts); the restore function's time limit; `cleanupBy`, when its cleanup must end. */
export interface RestoreHooks extends OperationHooks<RestoreProgress> {
  readonly maxArchiveBytes?: ArchiveSizeLimit | ((archiveBytes: number | undefined) => ArchiveSizeLimit);
  readonly maxArchiveEntries?: (archiveBytes: number | undefined) => ArchiveEntryLimit;
  /** Stops removing leftovers of interrupted operations once aborted (RestoreRequest.leftoversSignal). */
  readonly leftoversSignal?: AbortSignal;
  /** Epoch ms by which a failed or stopped restore must have returned, its cleanup included (RestoreRequest.cleanupBy). */
  readonly cleanupBy?: number;
}

/** A piece of a backup in pieces (backup.ts): when to stop, and the chain it continues. */
/** The names a sweep of the base dir read (BackupRequest.sweptBaseDir). */
export type SweptBaseDir = NonNullable<BackupRequest['sweptBaseDir']>;

/**
 * `sweptBaseDir`: the base dir as `sweepBaseDir` left it, for backups run one after another (a
 * work queue batch). `runId`: the scheduled run the backup is, stored with its archive.
 */
export interface BackupHooks extends OperationHooks<BackupProgress> {
  readonly sweptBaseDir?: SweptBaseDir;
  readonly runId?: string;
  /** Stops removing leftovers of interrupted operations once aborted (BackupRequest.leftoversSignal): the Lambda's share of its time for them. */
  readonly leftoversSignal?: AbortSignal;
}

export interface PieceHooks extends BackupHooks {
  readonly stopWhen: () => boolean;
  readonly chain?: string;
}

/** `totalBytes`: the tenant's file content as a walk before the backup found it, when measured. */
export type BackupProgress = ArchiveProgress & { readonly archiveBytes: number; readonly totalBytes?: number };
/** `archiveTotalBytes`: the stored archive's size, when the store told it (not through --pipe). */
export type RestoreProgress = ExtractProgress & { readonly archiveBytes: number; readonly archiveTotalBytes?: number };
export type VerifyProgress = RestoreProgress;
export type { BackupAllProgress };

/** Runs operations somewhere: in this process, or on a deployed gateway. */
export interface TenantOperations {
  /** On a gateway, a backup that outlasts its invocation answers BackupSuspended: it continues there (backup.ts). */
  backup(command: BackupCommand, hooks?: BackupHooks): Promise<BackupResult | BackupSuspended>;
  /** A piece of a backup that may continue in another process (backup.ts); only where the operations run in this process. */
  backupPiece?(command: BackupCommand, hooks: PieceHooks): Promise<BackupResult | BackupSuspended>;
  /** Ends the backups in pieces whose next piece has not come for `olderThanMs` (backup.ts), until `options.signal` fires; only where `backupPiece` is. */
  abandonStaleBackups?(olderThanMs: number, sweptBaseDir?: SweptBaseDir, options?: AbandonOptions): Promise<AbandonedBackup[]>;
  /**
   * Settles the leftovers of every tenant in the base dir (tenant/base-dir-sweep.ts) and
   * answers the names it read, for backups that follow to recover from instead of listing the
   * base dir again, as `backup --all` does; undefined when the sweep failed (each then sweeps
   * itself). Only where the operations run in this process. `signal`: stops settling (the
   * tenants not reached are left to the next sweep), the names read still answered.
   */
  sweepBaseDir?(options?: { readonly signal?: AbortSignal; readonly onRestoreChainEnded?: RecoverOptions['onRestoreChainEnded'] }): Promise<SweptBaseDir | undefined>;
  /** On a gateway, a restore that outlasts its invocation answers RestoreSuspended: it continues there (restore.ts). */
  restore(command: RestoreCommand, hooks?: RestoreHooks): Promise<RestoreResult | RestoreSuspended>;
  /**
   * A piece of a restore that may continue in another process (restore.ts restoreTenantPiece):
   * the first with `pieces.resume` absent, each later one naming the tenant its chain restores
   * into (the command's `as` is then ignored). Only where the operations run in this process.
   */
  restorePiece?(command: RestoreCommand, hooks: RestoreHooks & { readonly pieces: RestorePieces }): Promise<RestoreResult | RestoreSuspended | RestoreChainEnded>;
  /** Every tenant (`backup --all`): run here, each failure in the result, not thrown; or queued on a gateway. */
  backupAll(command: BackupAllCommand, hooks?: OperationHooks<BackupAllProgress>): Promise<BackupAllResult | QueuedBackupAll>;
  /** What `backup` would do (`--dry-run`): nothing is written. */
  planBackup(command: BackupCommand, hooks?: OperationHooks<never>): Promise<BackupPlan>;
  /** What `restore` would do (`--dry-run`): the archive is read and checked, nothing is written. */
  planRestore(command: RestoreCommand, hooks?: OperationHooks<RestoreProgress>): Promise<RestorePlan>;
  verify(command: VerifyCommand, hooks?: OperationHooks<VerifyProgress>): Promise<VerifyResult>;
  listBackups(command: BackupsCommand, hooks?: OperationHooks<never>): Promise<BackupsListing>;
  prune(command: PruneCommand, hooks?: OperationHooks<never>): Promise<PruneResult>;
  /** Settles an interrupted restore (`tenants recover`); local mode only. */
  recover(command: RecoverCommand): Promise<RecoverResult>;
  /** `signal`: the sweep of the base dir before the listing stops there (the list function's deadline); the names are answered whole. */
  listNames(options?: { readonly signal?: AbortSignal }): Promise<string[]>;
  /** Every tenant's summary, sorted by name; with `page`, those of one page only (the list function's pages). */
  listSummaries(page?: ListPage): Promise<TenantSummary[]>;
  /** Names in the base dir that `listNames` leaves out though they look like tenants (a symlinked directory), each with why (through a gateway, those its answer held, and how many more). */
  listSkipped(): Promise<SkippedTenants>;
}

/**
 * Every name a backup of all tenants tries, sorted: the listed tenants and the skipped ones
 * (a symlinked directory), whose backups then fail by name instead of being passed over.
 * The local `backup --all` and the gateway's fan-out (through the list function's pages) both.
 */
export async function namesToBackUp(operations: Pick<TenantOperations, 'listNames' | 'listSkipped'>, signal?: AbortSignal): Promise<string[]> {
  const [names, skipped] = await Promise.all([operations.listNames(signal === undefined ? undefined : { signal }), operations.listSkipped()]);
  // A name no tenant can have is no backup to try (backupAll's `notTenants` reports it).
  const symlinked = skipped.filter((tenant) => tenant.invalidName !== true).map((tenant) => tenant.name);
  return [...new Set([...names, ...symlinked])].sort();
}

export interface LocalOptions {
  /**
   * Where the writers of the tenants' SQLite databases may be (backup/sqlite-policy.ts).
   * @default by the tenant's file system type
   */
  readonly sqliteWriters?: SqliteWriters;
  /** Whether SQLite's file locks reach writers on other hosts (backup/sqlite-policy.ts: EFS's NFSv4). @default false */
  readonly sqliteLocksAcrossHosts?: boolean;
  /** Where `--identity-secret` is read (the gateway's functions); absent (the CLI's local mode): the flag is refused. */
  readonly identitySecrets?: IdentitySecretReader;
  /** Who ends a backup in pieces that broke (the gateway's functions: they do); the busy message names it. @default `tenants recover` */
  readonly chainEnder?: ChainEnder;
  /** Where hints send an age file only the `age` CLI reads: 'download' in the gateway's functions, which run no --pipe. @default 'pipe' */
  readonly ageCli?: AgeCliRoute;
}

/** What the backups of one `backup --all` share: the sweeps of the base dir, the destination directories and os.tmpdir() (each once per run). */
interface BackupRun {
  readonly sweptBaseDir?: BackupRequest['sweptBaseDir'];
  readonly sweptDirectories?: Set<string>;
  readonly tmpdirSwept?: boolean;
}

export function localOperations(tenantsDir: string, options: LocalOptions = {}): TenantOperations {
  /** The core's request for a backup command. `chain`: a continuing piece, which keeps the part size its chain started with. */
  const backupRequest = async (command: BackupCommand, hooks: BackupHooks, compression?: CompressOptions, chain?: string, run: BackupRun = {}): Promise<BackupRequest> => {
    await assertTenantNameIn(tenantsDir, command.tenant);
    const recipients = parseRecipients(command);
    // An S3 upload picks its part size from the expected size (10,000 parts at most);
    // the tenant's file bytes bound the archive's, and the walk is cheap beside the backup.
    const measure = chain === undefined && (isS3Url(command.to) || hooks.measureTotal === true);
    const expectedBytes = measure ? await tenantBytes(tenantsDir, command.tenant) : undefined;
    const location = await openLocation(command.to, { ...command.storage, expectedBytes, ...(run.sweptDirectories !== undefined && { sweptDirectories: run.sweptDirectories }) });
    const { onProgress } = hooks;
    return {
      tenantsDir,
      tenant: command.tenant,
      location,
      overwrite: command.overwrite,
      sqlite: { writers: options.sqliteWriters, rawFallback: command.sqliteRawFallback, locksAcrossHosts: options.sqliteLocksAcrossHosts },
      signal: hooks.signal,
      ...(recipients.length > 0 && { recipients }),
      onProgress: onProgress === undefined || expectedBytes === undefined ? onProgress : (progress) => onProgress({ ...progress, totalBytes: expectedBytes }),
      ...(compression !== undefined && { compression }),
      ...(run.sweptBaseDir !== undefined && { sweptBaseDir: run.sweptBaseDir }),
      ...(run.tmpdirSwept === true && { tmpdirSwept: true }),
      ...(hooks.runId !== undefined && { runId: hooks.runId }),
      ...(hooks.leftoversSignal !== undefined && { leftoversSignal: hooks.leftoversSignal }),
      ...(options.chainEnder !== undefined && { chainEnder: options.chainEnder }),
      ...(hooks.onRestoreChainEnded !== undefined && { onRestoreChainEnded: hooks.onRestoreChainEnded }),
    };
  };
  const backup = async (command: BackupCommand, hooks: OperationHooks<BackupProgress>, compression?: CompressOptions, run?: BackupRun): Promise<BackupResult> =>
    backupTenant(await backupRequest(command, hooks, compression, undefined, run));
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
  const sweptBy = (hooks: BackupHooks): BackupRun => (hooks.sweptBaseDir === undefined ? {} : { sweptBaseDir: hooks.sweptBaseDir });
  return {
    backup: (command, hooks = {}) => backup(command, hooks, undefined, sweptBy(hooks)),
    abandonStaleBackups: (olderThanMs, sweptBaseDir, abandon) => abandonStaleBackups(tenantsDir, olderThanMs, (location) => openLocation(location, {}), sweptBaseDir, abandon),
    sweepBaseDir: (sweep) =>
      sweepBaseDir(tenantsDir, { ...(sweep?.signal !== undefined && { signal: sweep.signal }), ...(sweep?.onRestoreChainEnded !== undefined && { onRestoreChainEnded: sweep.onRestoreChainEnded }) }).catch(() => undefined),
    backupPiece: async (command, hooks) =>
      backupTenantInPieces({ ...(await backupRequest(command, hooks, undefined, hooks.chain, sweptBy(hooks))), stopWhen: hooks.stopWhen, ...(hooks.chain !== undefined && { chain: hooks.chain }) }),
    restore: (command, hooks = {}) => restore(command, hooks) as Promise<RestoreResult>,
    restorePiece: (command, hooks) => restore(command, hooks, hooks.pieces),
    async backupAll(command, hooks = {}) {
      // Bad recipients fail the command before any backup, not every backup one by one.
      parseRecipients(command);
      // So do bad storage flags (--region, --storage-class…): checked against the template's first expansion.
      assertAllTemplate(command.to, command.storage);
      // A missing base dir is an error (TENANTS_DIR_NOT_FOUND), never "no tenants, all backed up".
      const skipped = await listSkippedTenants(tenantsDir);
      const tenants = await namesToBackUp({ listNames: () => listTenantNames(tenantsDir), listSkipped: async () => skipped });
      const jobs = command.jobs ?? defaultJobs();
      // The backups at once share the cores' compression: their frames in flight together stay
      // near one backup's, and so does memory (measured on 2 cores, tenants of 600, 245 and 60
      // MiB: --jobs 1 peaks at 175-183 MiB; --jobs 2 and 3 at 200-217 MiB with every backup
      // compressing on all cores, 149-164 MiB sharing them).
      const compression: CompressOptions = { concurrency: Math.max(1, Math.floor((os.availableParallelism() + 1) / jobs)) };
      // One sweep for the run, before any backup: each recovers its tenant from the names it
      // read instead of listing the base dir again (at 3,000 tenants, 3 listings each of
      // 3,000 names made the run quadratic: 49 s, and 152 s at 6,000).
      // Likewise each destination directory is cleared of dead writers' temporaries once, and
      // os.tmpdir() of dead backups' scratch areas.
      const sweptBaseDir = await sweepBaseDir(tenantsDir).catch(() => undefined);
      const tmpdirSwept = await TempArea.sweep().then(
        () => true,
        () => false,
      );
      const run: BackupRun = { ...(sweptBaseDir !== undefined && { sweptBaseDir }), sweptDirectories: new Set(), tmpdirSwept };
      return backupAll({
        tenants,
        notTenants: skipped.filter((tenant) => tenant.invalidName === true),
        template: command.to,
        jobs,
        signal: hooks.signal,
        onProgress: hooks.onProgress,
        ...(command.skipExisting === true && {
          findExisting: existingBackupFinder(command.storage ?? {}, command.storage?.pipe !== undefined ? 'piped' : (command.encryptTo ?? []).length > 0 ? 'encrypted' : 'plain', command.to),
        }),
        backupOne: (tenant, to, signal) =>
          backup({ tenant, to, overwrite: command.overwrite, ...(command.sqliteRawFallback === true && { sqliteRawFallback: true }), storage: command.storage, ...(command.encryptTo !== undefined && { encryptTo: command.encryptTo }) }, { signal }, compression, run),
      });
    },
    async planBackup(command, hooks = {}) {
      await assertTenantNameIn(tenantsDir, command.tenant);
      // The recipients are checked as the backup would check them.
      parseRecipients(command);
      const location = await openLocation(command.to, { ...command.storage });
      return planBackup({ tenantsDir, tenant: command.tenant, location, overwrite: command.overwrite, signal: hooks.signal });
    },
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
    async prune(command, hooks = {}) {
      assertTenantName(command.tenant);
      const store = await openStore(command.in, { ...command.storage });
      return pruneBackups({ store, tenant: command.tenant, policy: command.keep, dryRun: command.dryRun, signal: hooks.signal });
    },
    recover: (command) => recoverTenant({ tenantsDir, tenant: command.tenant, keep: command.keep }),
    listNames: (options) => listTenantNames(tenantsDir, options?.signal),
    listSummaries: (page) => summarizeTenants(tenantsDir, page),
    listSkipped: () => listSkippedTenants(tenantsDir),
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
function parseRecipients(command: Pick<BackupCommand, 'to' | 'encryptTo' | 'storage'>): AgeRecipient[] {
  const texts = command.encryptTo ?? [];
  if (texts.length === 0) {
    // A name that says "encrypted" over a plaintext archive: the recipients were forgotten (or lost on the way).
    if (command.storage?.pipe === undefined) assertNotPlaintextAsAge(command.to);
    return [];
  }
  if (command.storage?.pipe !== undefined) {
    throw new UsageError(
      '--encrypt-to/--recipients-file and --pipe exclude each other: built-in encryption replaces --pipe "age -r …"; ' +
        'to encrypt with another tool, leave --encrypt-to out and give it as --pipe',
    );
  }
  return backupRecipients(texts);
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
