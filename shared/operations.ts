// The operations a user asks for, as plain serialisable commands, and the one interface
// that runs them. The CLI builds a command from its flags and hands it to an executor:
// in-process (`localOperations`, the embedded default) or a deployed gateway's Lambda
// functions (remote mode), which run these same local operations on the EFS volume.

import type { AbandonedBackup, AbandonOptions, BackupRequest, BackupResult, BackupSuspended } from './backup/backup.js';
import type { BackupAllProgress, BackupAllResult } from './backup/backup-all.js';
import type { BackupPlan } from './backup/backup-plan.js';
import type { BackupsListing, BackupsPage } from './catalog/backups.js';
import type { PruneResult } from './catalog/prune.js';
import { runPrune } from './catalog/prune-command.js';
import { localBackupOperations } from './backup-operations.js';
import { localRestoreOperations } from './restore-operations.js';
import type { RetentionPolicy } from './catalog/retention.js';
import type { RestorePlan } from './restore/restore-plan.js';
import type { VerifyResult } from './restore/verify.js';
import type { ExtractProgress } from './restore/extract.js';
import type { ArchiveEntryLimit, ArchiveSizeLimit } from './restore/read-archive.js';
import type { ExtractLimits } from './restore/limits.js';
import { recoverTenant, type RecoverResult } from './tenant/recover.js';
import type { RestoreChainEnded, RestorePieces, RestoreResult, RestoreSuspended } from './restore/restore.js';
import type { LocationOptions } from './storage/open-location.js';
import type { StoredArchive } from './storage/types.js';
import type { ArchiveProgress } from './backup/tenant-archive.js';
import type { SqliteWriters } from './backup/sqlite-policy.js';
import type { Keep, RecoverOptions } from './tenant/slot.js';
import type { ChainEnder } from './backup/continuation.js';
import type { FanOutResult } from './control-plane/protocol.js';
import type { Owner } from './tenant/ownership.js';
import type { AgeCliRoute } from './archive/encrypted-archive.js';
import type { AgeIdentity } from './age/keys.js';
import { localTenantListing, type TenantListing } from './tenant/listing.js';

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
/** What storedByRun found that a backup's run stored: its complete backup (the success to say), or an archive that is none and why (the failure to say, under the operation ID its metadata names). */
/**
 * `undecided`: the run's archive is this tenant's as this run writes it, at the size HEAD found, and only nothing shows it
 * whole (encrypted or piped bytes its attempt could not tag: a store without tagging, a denied or throttled call): maybe whole, no failure to say.
 */
export type RunArchive = (StoredArchive & { readonly location: string }) | { readonly location: string; readonly notWhole: string; readonly operationId?: string; readonly undecided?: true };

export interface BackupHooks extends OperationHooks<BackupProgress> {
  readonly sweptBaseDir?: SweptBaseDir;
  readonly runId?: string;
  /** The completion event's operationId this attempt gives, stored with the archive beside `runId`. */
  readonly operationId?: string;
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
export interface TenantOperations extends TenantListing {
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
  /**
   * Removes from the tmpdir the scratch areas of backups whose process is gone (TempArea.sweep:
   * a function's /tmp after a timeout reset its sandbox), until `options.signal` fires. Only where
   * the operations run in this process.
   */
  sweepScratchAreas?(options: { readonly signal: AbortSignal }): Promise<void>;
  /**
   * After a backup of run `runId` was skipped (`skipped`: what refused it), the archive at the
   * command's destination an earlier attempt of this run stored (killed before it said so):
   * the store refused the destination as existing with this run's ID in its metadata, or the
   * chain the piece continued had ended and the archive there names this run. Undefined when
   * the skip says nothing of this run, when there is no archive or another run's. The archive
   * is this run's complete backup only as `tenants backups` judges it and as this run writes
   * (encrypted or plain): any other (cut short, replaced under the run's metadata) is answered
   * with why it is none (`notWhole`), no success to say. Only where the operations run in this process.
   */
  storedByRun?(command: BackupCommand, runId: string, skipped: unknown, options?: { readonly signal?: AbortSignal }): Promise<RunArchive | undefined>;
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

export function localOperations(tenantsDir: string, options: LocalOptions = {}): TenantOperations {
  return {
    ...localBackupOperations(tenantsDir, options),
    ...localRestoreOperations(tenantsDir, options),
    prune: runPrune,
    recover: (command) => recoverTenant({ tenantsDir, tenant: command.tenant, keep: command.keep }),
    ...localTenantListing(tenantsDir),
  };
}
