// The backup side of the operations (backup, its pieces and dry run, `backup --all`, the sweep
// of the base dir, ending broken backup chains): what the backup function runs, in a module of
// its own so that its bundle carries no archive reader or extraction (restore-operations.ts has
// those) and no prune (test/functions-bundle-inputs.test.ts). localOperations joins the sides.

import os from 'node:os';

import { abandonStaleBackups, backupTenant, backupTenantInPieces, type BackupRequest, type BackupResult } from './backup/backup.js';
import { assertAllTemplate, backupAll, defaultJobs } from './backup/backup-all.js';
import type { CompressOptions } from './archive/zstd-encoder.js';
import { planBackup } from './backup/backup-plan.js';
import { sweepBaseDir } from './tenant/base-dir-sweep.js';
import { TempArea } from './backup/temp-area.js';
import { openLocation } from './storage/open-location.js';
import { isS3Url } from './storage/s3-url.js';
import { assertTenantNameIn, listSkippedTenants, listTenantNames, summarizeTenant, type RecoveredTenant } from './tenant/tenants.js';
import { ContinuationEndedError, DestinationExistsError, UsageError } from './errors.js';
import { assertNotPlaintextAsAge, backupRecipients } from './archive/encrypted-archive.js';
import type { AgeRecipient } from './age/keys.js';
import { backupAt, existingBackupFinder, type RunWrites } from './catalog/existing-backup.js';
import { namesToBackUp } from './tenant/listing.js';
import { byName } from './tenant/names.js';
import type { BackupCommand, BackupHooks, BackupProgress, LocalOptions, OperationHooks, TenantOperations } from './operations.js';

/** What the backup function runs. */
export type BackupOperations = Required<Pick<TenantOperations, 'backup' | 'backupPiece' | 'abandonStaleBackups' | 'sweepBaseDir' | 'sweepScratchAreas' | 'backupAll' | 'planBackup' | 'storedByRun'>>;

/** What the backups of one `backup --all` share: the sweeps of the base dir, the destination directories and os.tmpdir() (each once per run). */
interface BackupRun {
  readonly sweptBaseDir?: BackupRequest['sweptBaseDir'];
  readonly sweptDirectories?: Set<string>;
  readonly tmpdirSwept?: boolean;
}

export function localBackupOperations(tenantsDir: string, options: LocalOptions = {}): BackupOperations {
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
      ...(hooks.operationId !== undefined && { operationId: hooks.operationId }),
      ...(hooks.leftoversSignal !== undefined && { leftoversSignal: hooks.leftoversSignal }),
      ...(options.chainEnder !== undefined && { chainEnder: options.chainEnder }),
      ...(hooks.onRestoreChainEnded !== undefined && { onRestoreChainEnded: hooks.onRestoreChainEnded }),
    };
  };
  const backup = async (command: BackupCommand, hooks: OperationHooks<BackupProgress>, compression?: CompressOptions, run?: BackupRun): Promise<BackupResult> =>
    backupTenant(await backupRequest(command, hooks, compression, undefined, run));
  const sweptBy = (hooks: BackupHooks): BackupRun => (hooks.sweptBaseDir === undefined ? {} : { sweptBaseDir: hooks.sweptBaseDir });
  return {
    backup: (command, hooks = {}) => backup(command, hooks, undefined, sweptBy(hooks)),
    abandonStaleBackups: (olderThanMs, sweptBaseDir, abandon) => abandonStaleBackups(tenantsDir, olderThanMs, (location) => openLocation(location, {}), sweptBaseDir, abandon),
    sweepBaseDir: (sweep) =>
      sweepBaseDir(tenantsDir, { ...(sweep?.signal !== undefined && { signal: sweep.signal }), ...(sweep?.onRestoreChainEnded !== undefined && { onRestoreChainEnded: sweep.onRestoreChainEnded }) }).catch(() => undefined),
    sweepScratchAreas: ({ signal }) => TempArea.sweep(undefined, signal),
    backupPiece: async (command, hooks) =>
      backupTenantInPieces({ ...(await backupRequest(command, hooks, undefined, hooks.chain, sweptBy(hooks))), stopWhen: hooks.stopWhen, ...(hooks.chain !== undefined && { chain: hooks.chain }) }),
    async backupAll(command, hooks = {}) {
      // Bad recipients fail the command before any backup, not every backup one by one.
      parseRecipients(command);
      // So do bad storage flags (--region, --storage-class…): checked against the template's first expansion.
      assertAllTemplate(command.to, command.storage);
      // A missing base dir is an error (TENANTS_DIR_NOT_FOUND), never "no tenants, all backed up".
      const skipped = await listSkippedTenants(tenantsDir);
      // What the listing's sweep recovered (an interrupted restore rolled back) is said by the run, and by that tenant's backup.
      let recoveredByListing: readonly RecoveredTenant[] = [];
      const listNames = async () => {
        const listed = await listTenantNames(tenantsDir);
        recoveredByListing = listed.recovered;
        return listed;
      };
      const { tenants } = await namesToBackUp({ listNames, listSkipped: async () => skipped });
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
      const swept = await sweepBaseDir(tenantsDir).catch(() => undefined);
      const recovered = new Map([...recoveredByListing.map(({ tenant, action }) => [tenant, action] as const), ...(swept?.recovered ?? [])]);
      const sweptBaseDir = swept === undefined ? undefined : { names: swept.names, recovered };
      // Once even when it fails: it goes on past an area it cannot remove (a mount point
      // inside it), and each backup's own sweep met that same area again (7 sweeps of $TMPDIR
      // for 6 tenants, each opening it).
      await TempArea.sweep().catch(() => undefined);
      const run: BackupRun = { ...(sweptBaseDir !== undefined && { sweptBaseDir }), sweptDirectories: new Set(), tmpdirSwept: true };
      const result = await backupAll({
        tenants,
        notTenants: skipped.filter((tenant) => tenant.invalidName === true),
        template: command.to,
        jobs,
        signal: hooks.signal,
        onProgress: hooks.onProgress,
        ...(command.skipExisting === true && {
          findExisting: existingBackupFinder(command.storage ?? {}, runWrites(command), command.to),
        }),
        backupOne: (tenant, to, signal) =>
          backup({ tenant, to, overwrite: command.overwrite, ...(command.sqliteRawFallback === true && { sqliteRawFallback: true }), storage: command.storage, ...(command.encryptTo !== undefined && { encryptTo: command.encryptTo }) }, { signal }, compression, run),
      });
      // Every interrupted restore the run's sweeps settled first (rolled back, finished; garbage removed is no news), the tenant there now or not (a rolled-back `restore --as new`).
      const said = [...recovered].filter(([, action]) => action !== 'removed-leftovers' && action !== 'none');
      if (said.length === 0) return result;
      return { ...result, recovered: said.sort(([a], [b]) => byName(a, b)).map(([tenant, action]) => ({ tenant, action })) };
    },
    async storedByRun(command, runId, skipped, options = {}) {
      const mayBeOurs = skipped instanceof DestinationExistsError ? skipped.storedByRun === runId : skipped instanceof ContinuationEndedError;
      if (!mayBeOurs) return undefined;
      const location = await openLocation(command.to, { ...command.storage });
      const stored = await location.storedArchive?.(options);
      if (stored?.runId !== runId) return undefined;
      // Its metadata names the run, which anyone allowed s3:PutObject can write under bytes cut
      // short or of their own: whole only as a listing would count it, and as this run writes it.
      const judged = await backupAt(command.to, command.tenant, command.storage ?? {}, runWrites(command), options.signal);
      const notWhole =
        judged === undefined ? 'gone since' : judged.problem ?? judged.unlike ?? (judged.entry.bytes !== stored.bytes ? `replaced since (${judged.entry.bytes} bytes where it had ${stored.bytes})` : undefined);
      // Bytes that cannot show themselves whole, which nothing recorded whole, and nothing else against them: undecided, not cut short.
      const undecided = judged !== undefined && judged.entry.unconfirmed === true && judged.entry.tenant === command.tenant && judged.entry.untrusted === undefined && judged.entry.bytes === stored.bytes && judged.unlike === undefined && asThisRunWrites(judged.entry.content, runWrites(command));
      if (notWhole !== undefined) return { location: location.display, notWhole, ...(stored.operationId !== undefined && { operationId: stored.operationId }), ...(undecided && { undecided: true as const }) };
      return { ...stored, location: location.display };
    },
    async planBackup(command, hooks = {}) {
      await assertTenantNameIn(tenantsDir, command.tenant);
      // The recipients are checked as the backup would check them.
      parseRecipients(command);
      const location = await openLocation(command.to, { ...command.storage });
      return planBackup({ tenantsDir, tenant: command.tenant, location, overwrite: command.overwrite, signal: hooks.signal });
    },
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

/** What a backup of `command` writes: whatever its --pipe command makes, archives encrypted to its recipients, or plain ones. */
/** Whether bytes of `content` are what a run that `writes` so stores (encrypted where it encrypts; anything through --pipe). */
function asThisRunWrites(content: string, writes: RunWrites): boolean {
  return writes === 'piped' || (writes === 'encrypted') === (content === 'encrypted');
}

function runWrites(command: Pick<BackupCommand, 'storage' | 'encryptTo'>): RunWrites {
  return command.storage?.pipe !== undefined ? 'piped' : (command.encryptTo ?? []).length > 0 ? 'encrypted' : 'plain';
}
