// `openclaw tenants verify --from SRC`: the restore's every check, nothing written.

import type { Command } from 'commander';

import type { VerifyResult } from '../shared/restore/verify.js';
import { VERIFY_FLAGS } from '../shared/command-flags.js';
import { addFlags, storageFlags, type CliContext } from './context.js';
import { count, filesCounted, formatBytes, plural, shownPath, shownText, progressText, rate, seconds, via } from './output.js';
import { byteCount, positiveInteger } from './tenants-restore.js';

const MAX_NOTES_SHOWN = 10;

export function registerVerify(tenants: Command, context: CliContext): void {
  const command = tenants
    .command('verify')
    .description('read a whole archive and check it as a restore would (every frame, tar header and file against the manifest); write nothing')
    .addHelpText(
      'after',
      '\nExit status: 0 intact, 3 damaged or unsafe (the first bad directory is named), 1 unreadable (I/O, storage).\n' +
        'An intact archive is marked as verified beside it (an S3 object tag, a hidden file): prune never removes the newest verified backup.\n' +
        '\nExamples:\n' +
        '  openclaw tenants verify --from /var/backups/acme/2026-06-03.tar.zst\n' +
        '  openclaw tenants verify --from s3://my-bucket/acme/x.tar.zst.age --identity key.txt\n' +
        '  openclaw --stack openclaw-backup tenants verify --from s3://bucket/acme/x.tar.zst.age --identity-secret openclaw-backup/backup-key',
    );
  addFlags(command, VERIFY_FLAGS, { maxEntries: positiveInteger, maxBytes: byteCount });
  command.action(async (flags: Record<string, unknown>) => {
    const started = Date.now();
    const progress = context.output.progress('verify');
    const result = await context
      .operations()
      .verify(
        {
          from: flags.from as string,
          limits: {
            ...(flags.maxEntries !== undefined && { maxEntries: flags.maxEntries as number }),
            ...(flags.maxBytes !== undefined && { maxBytes: flags.maxBytes as number }),
          },
          record: flags.record !== false,
          storage: storageFlags(flags),
          ...(flags.identity !== undefined && { identityFiles: flags.identity as string[] }),
          ...(typeof flags.identitySecret === 'string' && { identitySecret: flags.identitySecret }),
        },
        {
          signal: context.signal,
          onProgress: (p) =>
            progress.update(() =>
              progressText(
                `${count(p.entries)} entries, ${formatBytes(p.bytes)} checked, ${formatBytes(p.archiveBytes)} read, ${rate(p.bytes, started)}`,
                p.archiveBytes,
                p.archiveTotalBytes,
                started,
              ),
            ),
        },
      )
      .finally(() => progress.done());
    context.output.result(result, describeVerify(result));
  });
}

function describeVerify(result: VerifyResult): string[] {
  const lines = [
    `${result.verified ? 'Intact' : 'Readable'}: ${shownPath(result.location)}${via(result.endpoint)} holds tenant "${result.tenant}"`,
    `  ${filesCounted(result.files, result.hardlinks)}, ${plural(result.directories, 'directory', 'directories')}, ${plural(result.symlinks, 'symlink')}; ` +
      `${formatBytes(result.bytes)} of content, ${formatBytes(result.archiveBytes)} read, in ${seconds(result.durationMs)}`,
    result.verified
      ? `  every frame, tar header and file checked against the manifest (sha256 ${result.manifestSha256}; backup taken ${result.backupCreatedAt} by version ${result.toolVersion})`
      : '  NOT verified per file: the archive has no manifest (made by another tool?)',
  ];
  if (result.decrypted === true) lines.push('  decrypted with age (every chunk authenticated)');
  for (const note of result.warnings.slice(0, MAX_NOTES_SHOWN)) lines.push(`  backup warning: ${shownPath(note.path)}: ${shownText(note.reason)}`);
  if (result.warnings.length > MAX_NOTES_SHOWN) lines.push(`  … and ${result.warnings.length - MAX_NOTES_SHOWN} more backup warnings (see --json)`);
  if (result.recorded !== undefined) lines.push(`  recorded as verified beside the archive (${result.recorded})`);
  for (const notice of result.notices) lines.push(`  note: ${shownText(notice)}`);
  return lines;
}
