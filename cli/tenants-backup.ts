// `openclaw tenants backup NAME --to DEST`

import type { Command } from 'commander';

import type { BackupResult } from '../shared/backup/backup.js';
import type { BackupCommand } from '../shared/operations.js';
import { BACKUP_FLAGS } from '../shared/command-flags.js';
import { addFlags, storageFlags, type CliContext } from './context.js';
import { loadRecipientsFile } from '../shared/age/keys.js';
import { misleadingArchiveName } from '../shared/archive/archive-name.js';
import { count, formatBytes, plural, printable, progressText, rate, seconds, via } from './output.js';

export function registerBackup(tenants: Command, context: CliContext): void {
  const command = tenants
    .command('backup')
    .description('snapshot one tenant as a tar.zst archive to S3, an S3-compatible store, or a local file')
    .argument('<tenant>', 'tenant name')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  openclaw tenants backup acme --to /var/backups/acme/2026-06-03.tar.zst\n' +
        '  openclaw tenants backup acme --to s3://my-bucket/acme/2026-06-03.tar.zst --aws-profile production\n' +
        '  openclaw tenants backup acme --to s3://my-bucket/acme/2026-06-03.tar.zst.age --encrypt-to age1... --encrypt-to age1...\n' +
        '  openclaw tenants backup acme --to /var/backups/acme/2026-06-03.tar.zst.age --recipients-file /etc/openclaw/recipients.txt',
    );
  addFlags(command, BACKUP_FLAGS);
  command.action(async (tenant: string, flags: Record<string, unknown>) => {
    const encryptTo = await recipientTexts(flags);
    const request: BackupCommand = {
      tenant,
      to: flags.to as string,
      overwrite: flags.overwrite === true,
      storage: storageFlags(flags),
      ...(encryptTo.length > 0 && { encryptTo }),
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

/**
 * `--encrypt-to` and the recipients of `--recipients-file`, as age1… texts: the files are read
 * here, on this machine, in local and remote mode alike (only public keys go to the gateway).
 */
async function recipientTexts(flags: Record<string, unknown>): Promise<string[]> {
  const texts = [...((flags.encryptTo as string[] | undefined) ?? [])];
  for (const file of (flags.recipientsFile as string[] | undefined) ?? []) texts.push(...(await loadRecipientsFile(file)).map((recipient) => recipient.text));
  return texts;
}

function describeBackup(result: BackupResult): string[] {
  const lines = [
    `Backed up tenant "${result.tenant}" to ${result.location}${via(result.endpoint)}`,
    `  ${plural(result.files, 'file')}, ${plural(result.directories, 'directory', 'directories')}, ${plural(result.symlinks, 'symlink')}; ` +
      `${formatBytes(result.bytes)} of content, ${formatBytes(result.archiveBytes)} stored, in ${seconds(result.durationMs)}`,
    `  manifest sha256 ${result.manifestSha256}`,
  ];
  const recipients = result.encryptedTo ?? [];
  if (recipients.length > 0) lines.push(`  encrypted with age to ${plural(recipients.length, 'recipient')}: ${recipients.join(', ')}`);
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
