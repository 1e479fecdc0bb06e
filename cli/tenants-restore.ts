// `openclaw tenants restore --from SRC [--as NAME] [--force]`

import { InvalidArgumentError, type Command } from 'commander';

import type { RestoreCommand } from '../shared/operations.js';
import { NO_MANIFEST_NOTICE, type RestoreResult, type RestoreSuspended } from '../shared/restore/restore.js';
import type { RestorePlan } from '../shared/restore/restore-plan.js';
import { dryRunRefused } from '../shared/errors.js';
import { RESTORE_FLAGS } from '../shared/command-flags.js';
import { parseOwner, type Owner } from '../shared/tenant/ownership.js';
import { addFlags, storageFlags, type CliContext } from './context.js';
import { count, filesCounted, formatBytes, plural, shownPath, shownText, progressText, rate, recoveryText, seconds, via, wouldNot } from './output.js';

const MAX_NOTES_SHOWN = 10;

export const PAIRING_REMINDER =
  'Reminder: WhatsApp pairings must be re-paired by QR code; Telegram and Slack tokens carry over.';

export function registerRestore(tenants: Command, context: CliContext): void {
  const command = tenants
    .command('restore')
    .description('restore a tenant from an archive, verified before it replaces anything')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  openclaw tenants restore --from /var/backups/acme/2026-06-03.tar.zst\n' +
        '  openclaw tenants restore --from s3://my-bucket/acme/2026-06-03.tar.zst --as acme-staging\n' +
        '  openclaw tenants restore --from s3://my-bucket/acme/x.tar.zst.age --identity key.txt --force\n' +
        '  openclaw --stack openclaw-backup tenants restore --from s3://bucket/acme/x.tar.zst.age --identity-secret openclaw-backup/backup-key\n' +
        '  openclaw tenants restore --from /var/backups/acme/2026-06-03.tar.zst --dry-run',
    );
  addFlags(command, RESTORE_FLAGS, { maxEntries: positiveInteger, maxBytes: byteCount, owner: ownerIds });
  command.action(async (flags: Record<string, unknown>) => {
    const request: RestoreCommand = {
      from: flags.from as string,
      as: flags.as as string | undefined,
      force: flags.force === true,
      limits: {
        ...(flags.maxEntries !== undefined && { maxEntries: flags.maxEntries as number }),
        ...(flags.maxBytes !== undefined && { maxBytes: flags.maxBytes as number }),
      },
      storage: storageFlags(flags),
      ...(flags.owner !== undefined && { owner: flags.owner as Owner }),
      ...(flags.identity !== undefined && { identityFiles: flags.identity as string[] }),
      ...(typeof flags.identitySecret === 'string' && { identitySecret: flags.identitySecret }),
    };
    const started = Date.now();
    if (flags.dryRun === true) {
      const progress = context.output.progress('restore --dry-run');
      const plan = await context
        .operations()
        .planRestore(request, {
          signal: context.signal,
          onProgress: (p) =>
            progress.update(() =>
              progressText(`${count(p.entries)} entries, ${formatBytes(p.bytes)} checked, ${formatBytes(p.archiveBytes)} read`, p.archiveBytes, p.archiveTotalBytes, started),
            ),
        })
        .finally(() => progress.done());
      context.output.result(plan, describePlan(plan));
      if (plan.refusal !== undefined) throw dryRunRefused(plan.refusal);
      return;
    }
    const progress = context.output.progress('restore');
    const result = await context
      .operations()
      .restore(request, {
        signal: context.signal,
        onProgress: (p) =>
          progress.update(() =>
            progressText(
              `${count(p.entries)} entries, ${formatBytes(p.bytes)} unpacked, ${formatBytes(p.archiveBytes)} read, ${rate(p.bytes, started)}`,
              p.archiveBytes,
              p.archiveTotalBytes,
              started,
            ),
          ),
      })
      .finally(() => progress.done());
    context.output.result(result, describeRestore(result, context.tenantsDir));
  });
}

function describeRestore(result: RestoreResult | RestoreSuspended, tenantsDir: string): string[] {
  if ('suspended' in result) {
    return [
      `The restore of tenant "${result.tenant}" from ${shownPath(result.location)} continues on the gateway in further invocations (piece ${result.pieces} done, chain ${result.chain})`,
      `  nothing is in the slot until its last piece commits (a --force restore leaves the old tenant there until then); follow it with \`openclaw tenants list\` or its completion event (OpenClaw Restore Succeeded or Failed)`,
    ];
  }
  const renamed = result.archiveTenant === result.tenant ? '' : ` (archived as "${result.archiveTenant}")`;
  const lines = [
    `Restored tenant "${result.tenant}"${renamed} from ${shownPath(result.location)}${via(result.endpoint)} into ${tenantsDir}/${result.tenant}` +
      (result.replaced ? ', replacing the previous one' : ''),
    `  ${filesCounted(result.files, result.hardlinks)}, ${plural(result.directories, 'directory', 'directories')}, ${plural(result.symlinks, 'symlink')}; ` +
      `${formatBytes(result.bytes)} in ${seconds(result.durationMs)}`,
    result.verified
      ? `  verified every entry against the manifest (backup taken ${result.backupCreatedAt})`
      : '  NOT verified per file: the archive has no manifest',
  ];
  if (result.decrypted === true) lines.push('  decrypted with age (every chunk authenticated)');
  // The missing manifest is the line above; a gateway of an older version may send no notices.
  for (const notice of result.notices ?? []) if (notice !== NO_MANIFEST_NOTICE) lines.push(`  note: ${shownText(notice)}`);
  if (result.owner !== undefined) lines.push(`  owned by ${result.owner.uid}:${result.owner.gid}`);
  for (const note of result.warnings.slice(0, MAX_NOTES_SHOWN)) lines.push(`  backup warning: ${shownPath(note.path)}: ${shownText(note.reason)}`);
  if (result.warnings.length > MAX_NOTES_SHOWN) lines.push(`  … and ${result.warnings.length - MAX_NOTES_SHOWN} more backup warnings (see --json)`);
  if (result.recovered !== 'none') lines.push(`  note: ${recoveryText(result.tenant, result.recovered)}`);
  lines.push(PAIRING_REMINDER);
  return lines;
}

function describePlan(plan: RestorePlan): string[] {
  const renamed = plan.archiveTenant === plan.tenant ? '' : ` (archived as "${plan.archiveTenant}")`;
  const lines = [
    `Dry run: would restore tenant "${plan.tenant}"${renamed} from ${shownPath(plan.location)}${via(plan.endpoint)} into ${plan.target}`,
    `  the archive holds ${filesCounted(plan.files, plan.hardlinks)}, ${plural(plan.directories, 'directory', 'directories')}, ${plural(plan.symlinks, 'symlink')}; ` +
      `${formatBytes(plan.bytes)} (${formatBytes(plan.archiveBytes)} stored)`,
    plan.verified
      ? `  every entry checks out against the manifest (backup taken ${plan.backupCreatedAt}, by version ${plan.backupToolVersion})`
      : '  NOT verifiable per file: the archive has no manifest',
  ];
  if (plan.decrypted === true) lines.push('  decrypted with age (every chunk authenticated)');
  if (plan.topLevel.length > 0) lines.push(`  top level: ${plan.topLevel.map((dir) => `${shownPath(dir.name)}/ (${plural(dir.entries, 'entry', 'entries')})`).join(', ')}`);
  if (plan.replaces !== undefined) {
    const kept = plan.refusal === undefined ? ' (kept until the new one is verified and in place)' : '';
    if ('unreadable' in plan.replaces) lines.push(`  it would REPLACE the tenant there now, which cannot be read to describe it (${shownText(plan.replaces.unreadable)})${kept}`);
    else {
      lines.push(
        `  it would REPLACE the tenant there now: ${plural(plan.replaces.files, 'file')}, ${formatBytes(plan.replaces.bytes)}, last modified ${plan.replaces.lastModified}${kept}`,
      );
    }
  } else if (plan.refusal === undefined) lines.push(`  ${plan.target} is free: nothing would be replaced`);
  for (const note of plan.warnings.slice(0, MAX_NOTES_SHOWN)) lines.push(`  backup warning: ${shownPath(note.path)}: ${shownText(note.reason)}`);
  for (const notice of plan.notices) lines.push(`  note: ${shownText(notice)}`);
  if (plan.refusal !== undefined) lines.push(wouldNot('restore', plan.refusal));
  else lines.push('  nothing was written');
  return lines;
}

function ownerIds(value: string): Owner {
  const owner = parseOwner(value);
  if (owner === undefined) throw new InvalidArgumentError('must be UID:GID in numbers, e.g. 1000:1000 (see id -u NAME, id -g NAME)');
  return owner;
}

const BYTE_UNITS: Readonly<Record<string, number>> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** A positive number of bytes: plain (274877906944), or in binary units as --help shows them (256GiB, 256G, 1.5 TiB). */
export function byteCount(value: string): number {
  const match = /^(\d+(?:\.\d+)?) ?(?:([kmgt])(?:ib)?|(b))?$/i.exec(value.trim());
  const unit = BYTE_UNITS[(match?.[2] ?? match?.[3] ?? '').toLowerCase()];
  const bytes = match === null || unit === undefined ? NaN : Math.floor(Number(match[1]) * unit);
  if (!Number.isSafeInteger(bytes) || bytes <= 0 || (unit === 1 && match?.[1]?.includes('.'))) {
    throw new InvalidArgumentError('must be a positive number of bytes, plain or with KiB, MiB, GiB or TiB (e.g. 256GiB)');
  }
  return bytes;
}

export function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(parsed) || parsed <= 0) {
    throw new InvalidArgumentError('must be a positive whole number');
  }
  return parsed;
}
