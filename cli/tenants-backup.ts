// `openclaw tenants backup NAME --to DEST`, and `openclaw tenants backup --all --to TEMPLATE`
// (every tenant; on a gateway, queued for its backup function: see cli/remote.ts).

import type { Command } from 'commander';

import type { BackupResult } from '../shared/backup/backup.js';
import { ReportedError, UsageError } from '../shared/errors.js';
import type { BackupAllResult, BackupCommand } from '../shared/operations.js';
import { BACKUP_FLAGS } from '../shared/command-flags.js';
import { addFlags, storageFlags, type CliContext } from './context.js';
import { misleadingArchiveName } from '../shared/archive/archive-name.js';
import { count, formatBytes, plural, printable, progressText, rate, seconds, via } from './output.js';

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
        '  openclaw tenants backup acme --to s3://my-bucket/acme/x.tar.zst.age --pipe "age -r age1..."\n' +
        '  openclaw --stack openclaw-backup tenants backup --all --to "s3://my-bucket/backups/{tenant}/{date}.tar.zst"',
    );
  addFlags(command, BACKUP_FLAGS);
  command.action(async (tenant: string | undefined, flags: Record<string, unknown>) => {
    if (flags.all === true) {
      if (tenant !== undefined) throw new UsageError(`tenants backup --all backs up every tenant: drop the tenant name "${tenant}"`);
      const result = await context.operations().backupAll({ to: flags.to as string, overwrite: flags.overwrite === true, storage: storageFlags(flags) }, { signal: context.signal });
      context.output.result(result, describeQueued(result, context.remote?.stack));
      if (result.failed.length > 0) {
        throw new ReportedError('BACKUP_ALL_INCOMPLETE', `${result.failed.length} of ${result.tenants} tenants were not queued`);
      }
      return;
    }
    if (tenant === undefined) throw new UsageError('tenants backup needs a tenant name, or --all for every tenant');
    const request: BackupCommand = {
      tenant,
      to: flags.to as string,
      overwrite: flags.overwrite === true,
      storage: storageFlags(flags),
    };
    const misnamed = misleadingArchiveName(request.to);
    if (misnamed !== undefined) context.output.notice(`warning: ${misnamed}`);
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
    context.output.result(result, describeBackup(result));
  });
}

function describeBackup(result: BackupResult): string[] {
  const lines = [
    `Backed up tenant "${result.tenant}" to ${result.location}${via(result.endpoint)}`,
    `  ${plural(result.files, 'file')}, ${plural(result.directories, 'directory', 'directories')}, ${plural(result.symlinks, 'symlink')}; ` +
      `${formatBytes(result.bytes)} of content, ${formatBytes(result.archiveBytes)} stored, in ${seconds(result.durationMs)}`,
    `  manifest sha256 ${result.manifestSha256}`,
  ];
  // A gateway of an older version sends no notices.
  for (const notice of result.notices ?? []) lines.push(`  note: ${printable(notice)}`);
  if (result.skipped.length > 0) {
    lines.push(`  left out ${result.skipped.length}:`);
    for (const note of result.skipped.slice(0, 10)) lines.push(`    ${printable(note.path)}: ${printable(note.reason)}`);
    if (result.skipped.length > 10) lines.push(`    … and ${result.skipped.length - 10} more (see --json)`);
  }
  if (result.warnings.length > 0) {
    lines.push(`  warnings ${result.warnings.length}:`);
    for (const note of result.warnings.slice(0, 10)) lines.push(`    ${printable(note.path)}: ${printable(note.reason)}`);
    if (result.warnings.length > 10) lines.push(`    … and ${result.warnings.length - 10} more (see --json)`);
  }
  return lines;
}

function describeQueued(result: BackupAllResult, stack: string | undefined): string[] {
  const lines = [
    `Queued ${count(result.queued)} of ${plural(result.tenants, 'tenant')} for backup${stack === undefined ? '' : ` on ${stack}`} (run ${result.runId}), to ${result.template}`,
    ...(result.sample === undefined ? [] : [`  e.g.      ${result.sample}`]),
    `  they run on the gateway a bounded number at a time, from the queue ${result.queue ?? '?'}: follow them with \`openclaw${stack === undefined ? '' : ` --stack ${stack}`} doctor\` and the dashboard`,
  ];
  if (result.failed.length > 0) {
    lines.push(`  not queued ${result.failed.length}:`);
    for (const failure of result.failed.slice(0, 10)) lines.push(`    ${failure.tenant}: ${failure.code}: ${printable(failure.message)}`);
    if (result.failed.length > 10) lines.push(`    … and ${result.failed.length - 10} more (see --json)`);
  }
  return lines;
}
