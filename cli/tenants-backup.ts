// `openclaw tenants backup NAME --to DEST`, `tenants backup --all --to TEMPLATE` (every tenant: here, or
// on a gateway queued for its backup function: see cli/remote.ts), and their `--dry-run`

import { InvalidArgumentError, type Command } from 'commander';

import type { BackupResult, BackupSuspended } from '../shared/backup/backup.js';
import type { BackupAllResult } from '../shared/backup/backup-all.js';
import type { BackupPlan } from '../shared/backup/backup-plan.js';
import { isQueuedBackupAll, type BackupAllCommand, type BackupCommand, type QueuedBackupAll } from '../shared/operations.js';
import { BACKUP_FLAGS } from '../shared/command-flags.js';
import { dryRunRefused, ReportedError, UsageError } from '../shared/errors.js';
import { addFlags, storageFlags, type CliContext } from './context.js';
import { withRecipientsFiles } from '../shared/archive/encrypted-archive.js';
import { misleadingArchiveName } from '../shared/archive/archive-name.js';
import { expandTemplate, namesOtherArchivesAfter, templateProblem } from '../shared/schedule/destination-template.js';
import { byName } from '../shared/tenant/names.js';
import type { RecoveryAction } from '../shared/tenant/slot.js';
import { count, filesCounted, formatBytes, plural, shownPath, shownText, progressText, rate, recoveryText, seconds, table, via, wouldNot } from './output.js';

export function registerBackup(tenants: Command, context: CliContext): void {
  const command = tenants
    .command('backup')
    .description('snapshot one tenant (or every tenant, with --all) as a tar.zst archive to S3, an S3-compatible store, or a local file')
    .argument('[tenant]', 'tenant name (none with --all)')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  openclaw tenants backup acme --to /var/backups/acme/2026-06-03.tar.zst\n' +
        '  openclaw tenants backup acme --to s3://my-bucket/acme/2026-06-03.tar.zst --aws-profile production\n' +
        '  openclaw tenants backup acme --to s3://my-bucket/acme/2026-06-03.tar.zst.age --encrypt-to age1... --encrypt-to age1...\n' +
        '  openclaw tenants backup acme --to /var/backups/acme/2026-06-03.tar.zst.age --recipients-file /etc/openclaw/recipients.txt\n' +
        '  openclaw tenants backup acme --to s3://my-bucket/acme/2026-06-03.tar.zst --sse aws:kms --sse-kms-key-id alias/backups --storage-class STANDARD_IA\n' +
        '  openclaw tenants backup --all --to "/var/backups/{tenant}/{date}.tar.zst" --jobs 2\n' +
        '  openclaw tenants backup --all --to "/var/backups/{tenant}/{date}.tar.zst" --skip-existing   # finishes that run, interrupted, the same (UTC) day\n' +
        '  openclaw tenants backup acme --to /var/backups/acme/x.tar.zst --dry-run\n' +
        '  openclaw --stack openclaw-backup tenants backup --all --to "s3://my-bucket/backups/{tenant}/{date}.tar.zst.age" --recipients-file recipients.txt',
    );
  addFlags(command, BACKUP_FLAGS, { jobs: jobsValue });
  command.action(async (tenant: string | undefined, flags: Record<string, unknown>) => {
    const storage = storageFlags(flags);
    const encryptTo = await recipientTexts(flags, context.signal);
    const misnamed = misleadingArchiveName(flags.to as string, { encrypted: encryptTo.length > 0, piped: storage.pipe !== undefined });
    // Said with the result (and in its --json notices), never in front of a refusal's one line.
    const warnIfMisnamed = (): void => {
      if (misnamed !== undefined) context.output.notice(`warning: ${misnamed}`);
    };
    if (flags.all === true) {
      if (tenant !== undefined) throw new UsageError(`give a tenant or --all, not both (got "${tenant}" and --all)`);
      if (flags.dryRun === true) throw new UsageError('--dry-run takes one tenant: run it per tenant (tenants list --names)');
      assertSkipExistingFits(flags);
      await backupEveryTenant(context, warnIfMisnamed, {
        to: flags.to as string,
        overwrite: flags.overwrite === true,
        ...(flags.skipExisting === true && { skipExisting: true }),
        ...(flags.sqliteRawFallback === true && { sqliteRawFallback: true }),
        storage,
        ...(flags.jobs !== undefined && { jobs: flags.jobs as number }),
        ...(encryptTo.length > 0 && { encryptTo }),
      });
      return;
    }
    if (tenant === undefined) throw new UsageError('name the tenant to back up, or give --all');
    if (flags.jobs !== undefined) throw new UsageError('--jobs goes with --all');
    assertSkipExistingFits(flags);
    const request: BackupCommand = {
      tenant,
      to: destinationOf(flags.to as string, tenant),
      overwrite: flags.overwrite === true,
      ...(flags.sqliteRawFallback === true && { sqliteRawFallback: true }),
      storage,
      ...(encryptTo.length > 0 && { encryptTo }),
    };
    if (flags.dryRun === true) {
      const plan = await context.operations().planBackup(request, { signal: context.signal });
      warnIfMisnamed();
      context.output.result(plan, describePlan(plan));
      if (plan.refusal !== undefined) throw dryRunRefused(plan.refusal);
      return;
    }
    const started = Date.now();
    const progress = context.output.progress(`backup ${tenant}`);
    const result = await context
      .operations()
      .backup(request, {
        signal: context.signal,
        measureTotal: context.output.interactive,
        onProgress: (p) =>
          progress.update(() =>
            progressText(`${count(p.files)} files, ${formatBytes(p.bytes)} read, ${formatBytes(p.archiveBytes)} written, ${rate(p.bytes, started)}`, p.bytes, p.totalBytes, started),
          ),
      })
      .finally(() => progress.done());
    warnIfMisnamed();
    context.output.result(result, describeBackup(result));
  });
}

/** `--skip-existing` goes with `--all`, and not with `--overwrite` (the command's checks, and those of a local cron's --cmd). */
export function assertSkipExistingFits(flags: Record<string, unknown>): void {
  if (flags.skipExisting !== true) return;
  if (flags.all !== true) throw new UsageError("--skip-existing goes with --all (one tenant's backup refuses an archive already there, or replaces it with --overwrite)");
  if (flags.overwrite === true) throw new UsageError('give --skip-existing or --overwrite, not both: one keeps the archives already there, the other replaces them');
  // A run a minute later names other archives: none of an earlier run's is ever there to skip.
  // Asked of a time within an hour and a day (an hourly --to, asked at 10:59:30, would change too).
  if (typeof flags.to === 'string' && namesOtherArchivesAfter(flags.to, new Date('2000-01-01T00:30:00Z'), 61_000)) {
    throw new UsageError(`--skip-existing with a --to that names other archives a minute later (${JSON.stringify(flags.to)}): no archive of an earlier run is there to skip; back up those missing by name (openclaw tenants backup NAME --to …)`);
  }
}

async function backupEveryTenant(context: CliContext, warnIfMisnamed: () => void, request: BackupAllCommand): Promise<void> {
  const progress = context.output.progress('backup --all');
  const result = await context
    .operations()
    .backupAll(request, {
      signal: context.signal,
      onProgress: (p) => progress.update(() => `${p.done}/${p.total} done${p.failed > 0 ? `, ${p.failed} failed` : ''}; running ${p.running.join(', ')}`),
    })
    .finally(() => progress.done());
  warnIfMisnamed();
  if (isQueuedBackupAll(result)) {
    context.output.result(result, describeQueued(result, context.remote?.stack));
    if (result.complete === false) throw new ReportedError('BACKUP_ALL_INCOMPLETE', unlisted(result));
    if (notQueued(result) > 0) throw new ReportedError('BACKUP_ALL_INCOMPLETE', `${count(notQueued(result))} of ${count(result.tenants)} tenants were not queued`);
    return;
  }
  context.output.result(result, describeAll(result, context.tenantsDir));
  if (result.failed > 0) {
    const names = result.results.filter((outcome) => !outcome.ok).map((outcome) => shownPath(outcome.tenant));
    const message = `${plural(result.failed, 'backup')} of ${count(result.results.length)} failed: ${names.join(', ')}${existingHint(result, request)}`;
    context.output.notice(message);
    throw new ReportedError('BACKUP_ALL_FAILED', message);
  }
}

/**
 * A run again after a partial one (a tenant busy, a disk full) fails on every archive the first
 * wrote: the tenants' lines say --overwrite; the summary names what resumes instead.
 */
function existingHint(result: BackupAllResult, request: BackupAllCommand): string {
  if (request.skipExisting === true || request.overwrite === true) return '';
  const existing = result.results.filter((outcome) => !outcome.ok && outcome.error.code === 'DESTINATION_EXISTS').length;
  if (existing === 0 || namesOtherArchivesAfter(request.to, new Date(result.time), 61_000)) return '';
  return ` (${count(existing)} of them because an archive is already at its destination: run it again with --skip-existing to back up only the others, or --overwrite to replace those archives)`;
}

export function describeAll(result: BackupAllResult, tenantsDir: string): string[] {
  if (result.results.length === 0) return [`no tenants in ${tenantsDir}: nothing to back up`];
  const rows = result.results.map((outcome) =>
    outcome.ok && 'skipped' in outcome
      ? ['skipped', outcome.tenant, '-', formatBytes(outcome.existing.bytes), '-', `${shownPath(outcome.existing.location)} (already there)`]
      : outcome.ok
      ? ['ok', outcome.tenant, formatBytes(outcome.result.bytes), formatBytes(outcome.result.archiveBytes), seconds(outcome.result.durationMs), shownPath(outcome.result.location)]
      : ['FAILED', shownPath(outcome.tenant), '-', '-', '-', failure(outcome.to, outcome.error.message)],
  );
  const endpoint = result.results.find((outcome) => 'result' in outcome && outcome.result.endpoint !== undefined);
  const skipped = result.skipped ?? 0;
  const lines = [
    `Backed up ${count(result.succeeded - skipped)} of ${plural(result.results.length, 'tenant')} (${result.jobs} at once) in ${seconds(result.durationMs)}` +
      `${endpoint !== undefined && 'result' in endpoint ? via(endpoint.result.endpoint) : ''}${skipped > 0 ? `; ${count(skipped)} skipped (already there)` : ''}${result.failed > 0 ? `; ${count(result.failed)} FAILED` : ''}`,
    ...table(['', 'TENANT', 'CONTENT', 'STORED', 'TIME', 'ARCHIVE'], rows, [2, 3, 4]).map((line) => `  ${line}`),
  ];
  // What the run's sweeps, or a tenant's own backup, settled first of an interrupted restore: once
  // a tenant, there now or not (a rolled-back restore of a new tenant has no backup to say it);
  // garbage removed is no news.
  const recovered = new Map((result.recovered ?? []).map(({ tenant, action }) => [tenant, action]));
  for (const outcome of result.results) if ('result' in outcome && isNews(outcome.result.recovered)) recovered.set(outcome.tenant, outcome.result.recovered);
  const listed = new Set(result.results.map((outcome) => outcome.tenant));
  for (const [tenant, action] of [...recovered].sort(([a], [b]) => byName(a, b))) if (isNews(action)) lines.push(`  note: ${recoveryText(tenant, action, listed.has(tenant))}`);
  for (const outcome of result.results) {
    if (!('result' in outcome)) continue;
    for (const notice of outcome.result.notices ?? []) lines.push(`  note: ${outcome.tenant}: ${shownText(notice)}`);
    // A database archived raw (--sqlite-raw-fallback) is no consistent copy: said, as for one tenant's backup.
    for (const note of outcome.result.warnings.slice(0, 10)) lines.push(`  warning: ${outcome.tenant}: ${shownPath(note.path)}: ${shownText(note.reason)}`);
    if (outcome.result.warnings.length > 10) lines.push(`  warning: ${outcome.tenant}: … and ${outcome.result.warnings.length - 10} more (see --json)`);
  }
  return lines;
}

/** Whether a recovery is worth a line: a tenant's own backup that settled nothing must not hide what the run's sweep settled of it. */
function isNews(action: RecoveryAction | undefined): action is RecoveryAction {
  return action !== undefined && action !== 'none' && action !== 'removed-leftovers';
}

/** A failed tenant's ARCHIVE cell: the archive, then why, naming it once (`X: X already exists` said it twice). */
function failure(to: string | undefined, message: string): string {
  const shown = shownText(message);
  return to === undefined || shown.includes(shownPath(to)) ? shown : `${shownPath(to)}: ${shown}`;
}

function describePlan(plan: BackupPlan): string[] {
  const lines = [
    `Dry run: would back up tenant "${plan.tenant}" to ${shownPath(plan.location)}${via(plan.endpoint)}` +
      (plan.destination === 'exists' ? (plan.refusal === undefined ? ', replacing the archive there (--overwrite)' : '') : ''),
    `  ${filesCounted(plan.files, plan.hardlinks)}, ${plural(plan.directories, 'directory', 'directories')}, ${plural(plan.symlinks, 'symlink')}; ${formatBytes(plan.bytes)} of content as the files are now`,
  ];
  if (plan.largest.length > 0) lines.push(`  largest: ${plan.largest.map((file) => `${shownPath(file.path)} (${formatBytes(file.bytes)})`).join(', ')}`);
  if (plan.skipped.length > 0) {
    lines.push(`  left out ${plan.skipped.length}:`);
    for (const note of plan.skipped.slice(0, 10)) lines.push(`    ${shownPath(note.path)}: ${shownText(note.reason)}`);
    if (plan.skipped.length > 10) lines.push(`    … and ${plan.skipped.length - 10} more (see --json)`);
  }
  if (plan.mayBeSkipped.length > 0) {
    lines.push(`  may be left out ${plan.mayBeSkipped.length} (decided from content a dry run does not read):`);
    for (const note of plan.mayBeSkipped.slice(0, 10)) lines.push(`    ${shownPath(note.path)}: ${shownText(note.reason)}`);
  }
  if (plan.s3 !== undefined) {
    const { sse, sseKmsKeyId, storageClass } = plan.s3;
    const settings = [sse !== undefined && `--sse ${sse}`, sseKmsKeyId !== undefined && `--sse-kms-key-id ${sseKmsKeyId}`, storageClass !== undefined && `--storage-class ${storageClass}`].filter((part) => part !== false);
    lines.push(`  S3 object settings: ${settings.length > 0 ? settings.join(' ') : "the bucket's defaults (no --sse, --storage-class)"}`);
  }
  if (plan.refusal !== undefined) lines.push(wouldNot('backup', plan.refusal));
  else lines.push('  nothing was read or written');
  return lines;
}

/**
 * One tenant's `--to` with the placeholders of `--all` and of scheduled backups ({tenant},
 * {date}, {time}, {date:FORMAT}) filled in now, in UTC: a cron line may say `{date}` instead
 * of `$(date +\%F)`. A brace that is no placeholder is refused, as in a template.
 */
function destinationOf(to: string, tenant: string): string {
  if (!/[{}]/.test(to)) return to;
  const problem = templateProblem(to);
  if (problem !== undefined) throw new UsageError(`invalid --to ${JSON.stringify(to)}: ${problem}`);
  return expandTemplate(to, { time: new Date(), tenant });
}

/**
 * `--encrypt-to` and the recipients of `--recipients-file`, as age1… texts: the files are read
 * here, on this machine, in local and remote mode alike (only public keys go to the gateway).
 */
async function recipientTexts(flags: Record<string, unknown>, signal: AbortSignal): Promise<string[]> {
  return withRecipientsFiles((flags.encryptTo as string[] | undefined) ?? [], (flags.recipientsFile as string[] | undefined) ?? [], signal);
}

function describeBackup(result: BackupResult | BackupSuspended): string[] {
  if ('suspended' in result) {
    return [
      `The backup of tenant "${result.tenant}" to ${shownPath(result.location)} continues on the gateway in further invocations`,
      `  so far ${plural(result.files, 'file')}, ${formatBytes(result.bytes)} of content, ${formatBytes(result.archiveBytes)} stored, in ${seconds(result.durationMs)}`,
      '  its completion event (OpenClaw Backup Succeeded or Failed) reports the end; tenants backups lists the archive then',
    ];
  }
  const lines = [
    `Backed up tenant "${result.tenant}" to ${shownPath(result.location)}${via(result.endpoint)}`,
    `  ${filesCounted(result.files, result.hardlinks)}, ${plural(result.directories, 'directory', 'directories')}, ${plural(result.symlinks, 'symlink')}; ` +
      `${formatBytes(result.bytes)} of content, ${formatBytes(result.archiveBytes)} stored, in ${seconds(result.durationMs)}`,
    `  manifest sha256 ${result.manifestSha256}`,
  ];
  const recipients = result.encryptedTo ?? [];
  if (recipients.length > 0) lines.push(`  encrypted with age to ${plural(recipients.length, 'recipient')}: ${recipients.join(', ')}`);
  // A gateway of an older version sends no notices.
  for (const notice of result.notices ?? []) lines.push(`  note: ${shownText(notice)}`);
  // As a restore says it: the staging and journal an interrupted (killed, or lock-lost) restore left were settled first.
  if (result.recovered !== undefined && result.recovered !== 'none') lines.push(`  note: ${recoveryText(result.tenant, result.recovered)}`);
  if (result.skipped.length > 0) {
    lines.push(`  left out ${result.skipped.length}:`);
    for (const note of result.skipped.slice(0, 10)) lines.push(`    ${shownPath(note.path)}: ${shownText(note.reason)}`);
    if (result.skipped.length > 10) lines.push(`    … and ${result.skipped.length - 10} more (see --json)`);
  }
  if (result.warnings.length > 0) {
    lines.push(`  warnings ${result.warnings.length}:`);
    for (const note of result.warnings.slice(0, 10)) lines.push(`    ${shownPath(note.path)}: ${shownText(note.reason)}`);
    if (result.warnings.length > 10) lines.push(`    … and ${result.warnings.length - 10} more (see --json)`);
  }
  return lines;
}

function jobsValue(value: string): number {
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(parsed) || parsed < 1 || parsed > 64) throw new InvalidArgumentError('must be a whole number from 1 to 64');
  return parsed;
}

/** What a fan-out that ran out of time before it listed every tenant left out. */
function unlisted(result: QueuedBackupAll): string {
  const left = result.lastListed === undefined ? 'none was queued' : `the tenants after ${JSON.stringify(result.lastListed)} (in name order) were not queued`;
  return `the fan-out ran out of time before it listed every tenant: ${left}`;
}

function describeQueued(result: QueuedBackupAll, stack: string | undefined): string[] {
  const lines = [
    `Queued ${count(result.queued)} of ${plural(result.tenants, 'tenant')} for backup${stack === undefined ? '' : ` on ${stack}`} (run ${result.runId}), to ${result.template}`,
    ...(result.sample === undefined ? [] : [`  e.g.      ${result.sample}`]),
    ...(result.encryptedTo === undefined || result.encryptedTo.length === 0
      ? []
      : [`  each archive encrypted with age to ${plural(result.encryptedTo.length, 'recipient')}: ${result.encryptedTo.join(', ')}`]),
    `  they run on the gateway a bounded number at a time, from the queue ${result.queue ?? '?'}: follow them with \`openclaw${stack === undefined ? '' : ` --stack ${stack}`} doctor\` and the dashboard`,
  ];
  if (result.complete === false) lines.push(`  ${unlisted(result)}`);
  if (notQueued(result) > 0) {
    lines.push(`  not queued ${count(notQueued(result))}:`);
    for (const failure of result.failed.slice(0, 10)) lines.push(`    ${failure.tenant}: ${failure.code}: ${shownText(failure.message)}`);
    const shown = Math.min(result.failed.length, 10);
    if (notQueued(result) > shown) lines.push(`    … and ${count(notQueued(result) - shown)} more (see --json${(result.failedOmitted ?? 0) > 0 ? `, which names ${count(result.failed.length)}: the gateway's answer holds at most 6 MB` : ''})`);
  }
  return lines;
}

/** The tenants a queued backup of all could not queue: those named, and those left out of the answer. */
function notQueued(result: QueuedBackupAll): number {
  return result.failed.length + (typeof result.failedOmitted === 'number' && result.failedOmitted > 0 ? result.failedOmitted : 0);
}
