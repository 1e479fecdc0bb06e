// The flags of the openclaw command line that more than the CLI must know, declared once:
// the CLI builds its commander options from these tables (cli/), and `cron add` parses the
// `tenants backup` or `tenants prune` line of its `--cmd` against the same ones (schedule/cron-command.ts),
// which must decide, for every flag here, what a scheduled backup does with it. Data only:
// no commander, no parsing.

import { formatBytes } from './format.js';
import { DEFAULT_LIMITS } from './restore/limits.js';

/** One flag as `--help` shows it. */
export interface FlagSpec {
  /** The long form, e.g. `--to`; commander's option key is its camel case (`tenantsDir`). */
  readonly flag: `--${string}`;
  /** The value's placeholder (`<destination>`), for a flag that takes one. */
  readonly value?: `<${string}>`;
  readonly description: string;
  /** The command refuses to run without it. */
  readonly required?: true;
  /** May be given more than once; the values are collected in order. */
  readonly repeatable?: true;
  /**
   * Its value is a secret: no message shows it (a usage error names the flag only), and any
   * value is taken but another flag of the command (a secret may start with `--`).
   */
  readonly secret?: true;
}

/** Flags of `openclaw` itself, given before the subcommand. */
export const GLOBAL_FLAGS = {
  tenantsDir: { flag: '--tenants-dir', value: '<dir>', description: 'tenant base dir (default: $OPENCLAW_TENANTS_DIR, else ~/.openclaw/tenants)' },
  stack: { flag: '--stack', value: '<prefix>', description: 'remote mode: run on the gateway deployed with this stack prefix (default: $OPENCLAW_STACK)' },
  json: { flag: '--json', description: 'print one machine-readable JSON result on stdout' },
} as const satisfies Record<string, FlagSpec>;

/** Where an archive lives and how to reach it: the same flags for backup and restore, but --pipe's direction. */
function storageFlags(direction: 'backup' | 'restore') {
  return {
    awsProfile: {
      flag: '--aws-profile',
      value: '<name>',
      description: 'AWS profile from the shared config/credentials files (SSO included); in remote mode, the profile the gateway is called with',
    },
    region: { flag: '--region', value: '<region>', description: 'AWS region of the bucket (at an --endpoint: the region requests are signed for); in remote mode, also the region of the gateway' },
    endpoint: { flag: '--endpoint', value: '<url>', description: 'S3-compatible endpoint (MinIO, R2, Ceph…); path-style addressing' },
    accessKey: { flag: '--access-key', value: '<id>', description: 'access key for --endpoint (or set OPENCLAW_S3_ACCESS_KEY)' },
    secretKey: { flag: '--secret-key', value: '<secret>', description: 'secret key for --endpoint (or set OPENCLAW_S3_SECRET_KEY)', secret: true },
    stallTimeout: {
      flag: '--stall-timeout',
      value: '<duration>',
      description:
        'how long an S3 upload or download may go without a byte before it is retried, and the time a download must bring 16 KiB in (90s, 10m, 1h; 1s to 24h; default 60s, or $OPENCLAW_S3_STALL_TIMEOUT): for a slow link; not in remote mode',
    },
    pipe: {
      flag: '--pipe',
      value: '<command>',
      description:
        direction === 'backup'
          ? 'send the archive through this shell command before storing it (e.g. "age -r age1..."); not in remote mode; every user sees its text in ps: a secret goes in a file it reads'
          : 'read the stored bytes through this shell command first (e.g. "age -d -i key.txt"); not in remote mode; every user sees its text in ps: a secret goes in a file it reads',
    },
  } as const satisfies Record<string, FlagSpec>;
}

/** The S3 flags of a command that works on many archives at once (`--in`): no `--pipe`, no `--stall-timeout` (small requests only, held to 60 s). */
function storeFlags() {
  const { pipe: _pipe, stallTimeout: _stallTimeout, ...flags } = storageFlags('restore');
  return flags;
}

/** `openclaw tenants backup <tenant>` (or `--all`), in `--help` order. */
export const BACKUP_FLAGS = {
  to: {
    flag: '--to',
    value: '<destination>',
    description: 's3://bucket/key.tar.zst or a local file path; with --all a template naming {tenant} (and {date}, {time}, {date:FORMAT}: UTC)',
    required: true,
  },
  overwrite: { flag: '--overwrite', description: 'replace an existing archive at the destination' },
  sqliteRawFallback: {
    flag: '--sqlite-raw-fallback',
    description: 'archive a SQLite database of which no consistent copy can be had (locked, or changing under every copy) raw, with a warning, instead of failing the backup',
  },
  all: { flag: '--all', description: 'every tenant, instead of one: --to is then a template naming {tenant} (and {date}, {time}, {date:FORMAT})' },
  skipExisting: {
    flag: '--skip-existing',
    description:
      'with --all on this machine: a tenant whose destination already holds a complete backup of it is skipped, not failed (to finish an interrupted --all); ' +
      'anything else there still fails. With a --to without {date} or {time}, every later run skips every tenant',
  },
  jobs: { flag: '--jobs', value: '<n>', description: 'with --all on this machine: tenants backed up at once (default: the number of cores, at most 4); a gateway runs its own number at once' },
  dryRun: { flag: '--dry-run', description: 'show what would be archived and what left out, reading no file content and writing nothing' },
  encryptTo: {
    flag: '--encrypt-to',
    value: '<recipient>',
    description: 'encrypt the archive with age to this recipient (an age1… public key; repeatable): the stored object is an age file',
    repeatable: true,
  },
  recipientsFile: {
    flag: '--recipients-file',
    value: '<file>',
    description: 'encrypt to the recipients in this file (one age1… per line, # comments, as age -R; repeatable)',
    repeatable: true,
  },
  ...storageFlags('backup'),
  sse: {
    flag: '--sse',
    value: '<algorithm>',
    description: 'S3 server-side encryption of the archive: AES256, aws:kms or aws:kms:dsse (as aws s3 cp --sse; default: the bucket\'s default encryption)',
  },
  sseKmsKeyId: { flag: '--sse-kms-key-id', value: '<key>', description: 'the KMS key of --sse aws:kms: key id, ARN or alias/NAME (default: the AWS managed key aws/s3)' },
  storageClass: {
    flag: '--storage-class',
    value: '<class>',
    description: 'S3 storage class of the archive: STANDARD, STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER_IR… (GLACIER and DEEP_ARCHIVE are refused: use a lifecycle rule)',
  },
} as const satisfies Record<string, FlagSpec>;

/** `openclaw tenants restore`, in `--help` order (`--max-entries` takes a positive whole number, `--max-bytes` a size: 256GiB). */
export const RESTORE_FLAGS = {
  from: { flag: '--from', value: '<source>', description: 's3://bucket/key.tar.zst or a local file path', required: true },
  as: { flag: '--as', value: '<name>', description: 'restore under this tenant name instead of the archive\'s' },
  force: { flag: '--force', description: 'replace an existing tenant (it is kept until the new one is verified and in place)' },
  maxEntries: { flag: '--max-entries', value: '<n>', description: `refuse archives with more entries (default ${DEFAULT_LIMITS.maxEntries})` },
  maxBytes: { flag: '--max-bytes', value: '<size>', description: `refuse archives that unpack to more bytes, plain or with KiB, MiB, GiB, TiB (default ${formatBytes(DEFAULT_LIMITS.maxBytes).replace('.0 ', '')})` },
  dryRun: { flag: '--dry-run', description: 'read and check the archive, show where it would go and what it would replace; write nothing' },
  owner: {
    flag: '--owner',
    value: '<uid:gid>',
    description: 'give the restored files to this user and group (numbers; needs root). As root the default is the owner of the tenant replaced, else of the base dir. Not in remote mode',
  },
  identity: {
    flag: '--identity',
    value: '<file>',
    description: 'decrypt an age-encrypted archive with the identities in this file (AGE-SECRET-KEY-1… lines, as age -i; repeatable). Not in remote mode',
    repeatable: true,
  },
  identitySecret: {
    flag: '--identity-secret',
    value: '<name>',
    description: 'remote mode: the gateway reads the identity from this AWS Secrets Manager secret (named <stack prefix>/…)',
  },
  ...storageFlags('restore'),
} as const satisfies Record<string, FlagSpec>;

/** `openclaw tenants verify`, in `--help` order. */
export const VERIFY_FLAGS = {
  from: { flag: '--from', value: '<source>', description: 's3://bucket/key.tar.zst or a local file path', required: true },
  maxEntries: RESTORE_FLAGS.maxEntries,
  maxBytes: RESTORE_FLAGS.maxBytes,
  noRecord: { flag: '--no-record', description: 'do not record the verification beside the archive (an S3 tag, a hidden file)' },
  identity: RESTORE_FLAGS.identity,
  identitySecret: RESTORE_FLAGS.identitySecret,
  ...storageFlags('restore'),
} as const satisfies Record<string, FlagSpec>;

/** `openclaw tenants backups <tenant>` */
export const BACKUPS_FLAGS = {
  in: { flag: '--in', value: '<location>', description: 's3://bucket/prefix/ or a local directory (searched below, 8 levels deep)', required: true },
  ...storeFlags(),
} as const satisfies Record<string, FlagSpec>;

/** `openclaw tenants prune <tenant>`: the `--keep-*` flags take whole numbers, `--keep-within` a span. */
export const PRUNE_FLAGS = {
  in: BACKUPS_FLAGS.in,
  keepLast: { flag: '--keep-last', value: '<n>', description: 'keep the n newest backups' },
  keepWithin: { flag: '--keep-within', value: '<span>', description: 'keep every backup made within this span before the newest backup: 7d, 36h, 2w, 1y6m (y, m, w, d, h)' },
  keepHourly: { flag: '--keep-hourly', value: '<n>', description: 'keep the newest backup of each of the last n hours that have one (UTC)' },
  keepDaily: { flag: '--keep-daily', value: '<n>', description: 'keep the newest backup of each of the last n days that have one (UTC)' },
  keepWeekly: { flag: '--keep-weekly', value: '<n>', description: 'keep the newest backup of each of the last n ISO weeks that have one' },
  keepMonthly: { flag: '--keep-monthly', value: '<n>', description: 'keep the newest backup of each of the last n months that have one' },
  keepYearly: { flag: '--keep-yearly', value: '<n>', description: 'keep the newest backup of each of the last n years that have one' },
  dryRun: { flag: '--dry-run', description: 'show what would be kept and removed, and why; remove nothing' },
  ...storeFlags(),
  deleteIfMatch: {
    flag: '--delete-if-match',
    description:
      'the --endpoint store honours If-Match on DeleteObject: delete each backup only if it is still the one listed (its ETag), instead of comparing it by a HEAD right before the delete (a write between the two is lost). AWS S3 does this always',
  },
} as const satisfies Record<string, FlagSpec>;

export type GlobalFlag = keyof typeof GLOBAL_FLAGS;
export type BackupFlag = keyof typeof BACKUP_FLAGS;
export type PruneFlag = keyof typeof PRUNE_FLAGS;
