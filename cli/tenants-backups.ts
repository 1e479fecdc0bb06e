// `openclaw tenants backups NAME --in LOCATION`: the tenant's archives, newest first.

import type { Command } from 'commander';

import type { BackupEntry, BackupsListing } from '../shared/catalog/backups.js';
import { BACKUPS_FLAGS } from '../shared/command-flags.js';
import { addFlags, storageFlags, type CliContext } from './context.js';
import { count, formatBytes, plural, shownPath, shownText, tableLines, utcSecond, via } from './output.js';

export function registerBackups(tenants: Command, context: CliContext): void {
  const command = tenants
    .command('backups')
    .description("list a tenant's backups in a directory or below an S3 prefix, newest first (reads only their first and last bytes and metadata)")
    .argument('<tenant>', 'tenant name')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  openclaw tenants backups acme --in /var/backups/acme/\n' +
        '  openclaw tenants backups acme --in s3://my-bucket/backups/ --aws-profile production',
    );
  addFlags(command, BACKUPS_FLAGS);
  command.action(async (tenant: string, flags: Record<string, unknown>) => {
    const { pipe: _pipe, ...storage } = storageFlags(flags);
    const listing = await context.operations().listBackups({ tenant, in: flags.in as string, storage }, { signal: context.signal });
    // Written as it is made: 100,000 backups' JSON or table is no one's to hold as one text.
    await context.output.streamResult(listing, ['backups'], context.output.json ? [] : describeListing(listing));
  });
}

export function* describeListing(listing: BackupsListing): Generator<string> {
  if (listing.backups.length === 0) {
    yield `no backups of "${listing.tenant}" in ${shownPath(listing.location)}${via(listing.endpoint)}${listing.otherObjects > 0 ? ` (${otherObjects(listing)})` : ''}`;
    return;
  }
  const row = (entry: BackupEntry) => [
    entry.createdAt === undefined ? `? (file ${utcSecond(entry.modifiedAt)})` : utcSecond(entry.createdAt),
    formatBytes(entry.bytes),
    entry.toolVersion ?? '-',
    entry.manifestSha256 === undefined ? '-' : entry.manifestSha256.slice(0, 12),
    describeContent(entry),
    entry.verifiedAt === undefined ? '-' : entry.verifiedAt.slice(0, 10),
    shownPath(entry.location) + (entry.note === undefined ? '' : `  (${shownText(entry.note)})`),
  ];
  const omitted = listing.omitted ?? 0;
  yield omitted === 0
    ? `${plural(listing.backups.length, 'backup')} of "${listing.tenant}" in ${shownPath(listing.location)}${via(listing.endpoint)}, newest first:`
    : `${plural(listing.backups.length + omitted, 'backup')} of "${listing.tenant}" in ${shownPath(listing.location)}${via(listing.endpoint)}, the newest ${count(listing.backups.length)} first:`;
  yield* tableLines(['CREATED', 'SIZE', 'VERSION', 'MANIFEST', 'CONTENT', 'VERIFIED', 'LOCATION'], function* () {
    for (const entry of listing.backups) yield row(entry);
  }, [1]);
  if (listing.otherObjects > 0) yield `(and ${otherObjects(listing)})`;
  if (omitted > 0) {
    yield `… and ${plural(omitted, 'older backup')}, left out of the gateway's answer (a Lambda response holds at most 6 MB; a gateway of this version answers in pages): run tenants backups without --stack to list them all, or prune them`;
  }
}

/**
 * The objects listed but not shown: an encrypted or piped archive of this tenant among them
 * when nothing attributes it yet (README: a verification mark, or a directory named after it).
 */
function otherObjects(listing: BackupsListing): string {
  return `${plural(listing.otherObjects, 'other object')} there: another tenant's, no archive, or one that does not name "${listing.tenant}" (encrypted or piped) and was never checked by tenants verify --from`;
}

function describeContent(entry: BackupEntry): string {
  switch (entry.content) {
    case 'archive':
      return 'tar.zst';
    case 'zstd':
      return 'zstd (other tool)';
    case 'encrypted':
      return `encrypted (age${entry.recipients === undefined ? '' : `: ${entry.recipients.join(', ')}`})`;
    case 'unknown':
      return 'unknown/piped';
    case 'archived':
      return `archived (${entry.storageClass ?? '?'})`;
  }
}
