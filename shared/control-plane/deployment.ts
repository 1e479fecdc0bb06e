// The names a deployed gateway is known by, spelled once for the three parties that must
// agree on them: the stack that creates the resources (infra/), the functions that run in it
// (functions/) and the CLI that calls it in remote mode (cli/). Pure constants and string
// rules; no AWS SDK, no CDK.

import { decodeBech32 } from '../age/encoding.js';
import { UsageError } from '../errors.js';
import { quotedValue } from '../format.js';

/**
 * The deployment prefix: names the stack's resources, its exports and the EventBridge rules
 * the CLI creates (`<prefix>-<tenant>-<cron>`), so it must fit all of them: rule names allow
 * 64 characters, a tenant name takes up to 32 and two separators.
 */
export const STACK_PREFIX_PATTERN = /^[a-z][a-z0-9-]{0,22}[a-z0-9]$/;
export const DEFAULT_STACK_PREFIX = 'openclaw-backup';

/** `source`: where the prefix came from, as the message names it (`--stack`, or `OPENCLAW_STACK` when the environment set it). */
export function assertStackPrefix(stack: string, source: '--stack' | 'OPENCLAW_STACK' = '--stack'): string {
  if (!STACK_PREFIX_PATTERN.test(stack)) {
    throw new UsageError(
      `invalid ${source} ${quotedValue(stack)}: the stack prefix is 2-24 lowercase letters, digits and "-" ` +
        `(the prefix the gateway was deployed with, e.g. ${DEFAULT_STACK_PREFIX})`,
    );
  }
  return stack;
}

/** A deployed gateway as remote mode addresses it: its prefix, and the AWS profile and region to call it with. */
export interface ControlPlane {
  /** The stack prefix: functions are `<stack>-backup`, `<stack>-restore`, `<stack>-list`. */
  readonly stack: string;
  readonly profile?: string;
  readonly region?: string;
}

/** The gateway's Lambda functions on the tenant volume (in its VPC, mounting EFS), each named `<prefix>-<role>`. */
export const FUNCTION_ROLES = ['backup', 'restore', 'list'] as const;
/** The prune function (`<prefix>-prune`): S3 only, no file system, a role of its own that may delete. */
export const PRUNE_ROLE = 'prune';
export type FunctionRole = (typeof FUNCTION_ROLES)[number] | typeof PRUNE_ROLE;

/**
 * The coordinating functions, outside the VPC and without the tenant volume: `fanout` queues
 * one backup per tenant (all-tenant schedules, `tenants backup --all`), `monitor` records each
 * backup's outcome and checks every tenant's freshness.
 */
export const CONTROL_FUNCTION_ROLES = ['fanout', 'monitor'] as const;
export type ControlFunctionRole = (typeof CONTROL_FUNCTION_ROLES)[number];

export function functionName(stack: string, role: FunctionRole | ControlFunctionRole): string {
  return `${stack}-${role}`;
}

/** The EventBridge Scheduler group holding every schedule `cron add` creates: named like the stack. */
export function scheduleGroupName(stack: string): string {
  return stack;
}

/** The queue of per-tenant backups the fan-out fills and the backup function drains. */
export function workQueueName(stack: string): string {
  return `${stack}-work`;
}

/** The restore function's queue of next pieces, and its dead-letter queue. */
export function restoreQueueName(stack: string): string {
  return `${stack}-restore-work`;
}

/**
 * Receives of a piece's message on the restore queue before it goes to the restore DLQ (the
 * stack's maxReceiveCount): pieces killed or stopped by their deadline after they wrote use a
 * receive each, and the one that ends their chain (one line, one Failed event) is receive
 * MAX_REWRITES + 2 (restore/restore-continuation.ts); one more is spare for a delivery handed
 * back before it wrote (the store unreachable). With 3, that ending receive never came: the
 * message sat in the DLQ, no event, the tenant busy for the abandon time.
 */
export const RESTORE_PIECE_RECEIVES = 5;

export function restoreDeadLetterQueueName(stack: string): string {
  return `${stack}-restore-work-dlq`;
}

/** Where a queued backup goes after its last attempt. */
export function workDeadLetterQueueName(stack: string): string {
  return `${stack}-work-dlq`;
}

/** Where a schedule's invocation goes when EventBridge Scheduler cannot deliver it. */
export function scheduleDeadLetterQueueName(stack: string): string {
  return `${stack}-schedule-dlq`;
}

/** The DynamoDB table of each tenant's last backup outcome, the cron catalog and the freshness check. */
export function statusTableName(stack: string): string {
  return `${stack}-status`;
}

/**
 * The role EventBridge Scheduler assumes to invoke the functions: `<prefix>-scheduler-<region>`
 * (infra/role-names.ts names every role of the stack this way).
 */
export function schedulerRoleName(stack: string, region: string): string {
  return `${stack}-scheduler-${region}`;
}

/** Partition, region and account of an ARN, e.g. of a function: what the names above need to become ARNs. */
export interface ArnParts {
  readonly partition: string;
  readonly region: string;
  readonly account: string;
}

export function arnParts(arn: string): ArnParts | undefined {
  const [scheme, partition, , region, account] = arn.split(':');
  if (scheme !== 'arn' || partition === undefined || region === undefined || account === undefined || !/^\d{12}$/.test(account)) return undefined;
  return { partition, region, account };
}

export function schedulerRoleArn(stack: string, where: ArnParts): string {
  return `arn:${where.partition}:iam::${where.account}:role/${schedulerRoleName(stack, where.region)}`;
}

export function queueArn(name: string, where: ArnParts): string {
  return `arn:${where.partition}:sqs:${where.region}:${where.account}:${name}`;
}

/** Where every function mounts the tenant access point (Lambda requires a path under /mnt). */
export const TENANTS_MOUNT_PATH = '/mnt/tenants';

/** The environment variables the stack sets and the functions read (function-config.ts says what each means). */
export const FUNCTION_ENV = {
  tenantsDir: 'OPENCLAW_TENANTS_DIR',
  bucket: 'OPENCLAW_BACKUP_BUCKET',
  keyPrefix: 'OPENCLAW_BACKUP_PREFIX',
  eventBus: 'OPENCLAW_EVENT_BUS',
  stackPrefix: 'OPENCLAW_STACK_PREFIX',
  allowedSourceBuckets: 'OPENCLAW_ALLOWED_SOURCE_BUCKETS',
  allowedEndpoints: 'OPENCLAW_ALLOWED_ENDPOINTS',
  allowOverwrite: 'OPENCLAW_ALLOW_OVERWRITE',
  encryptTo: 'OPENCLAW_ENCRYPT_TO',
  abortMargin: 'OPENCLAW_ABORT_MARGIN_MS',
  continueMargin: 'OPENCLAW_CONTINUE_MARGIN_MS',
  abandonAfter: 'OPENCLAW_ABANDON_AFTER_MS',
  restoreMBps: 'OPENCLAW_RESTORE_MBPS',
  restoreReplayMBps: 'OPENCLAW_RESTORE_REPLAY_MBPS',
  restoreEntriesPerSecond: 'OPENCLAW_RESTORE_ENTRIES_PER_SECOND',
  connectTimeout: 'OPENCLAW_CONNECT_TIMEOUT_MS',
  requestTimeout: 'OPENCLAW_REQUEST_TIMEOUT_MS',
  cpus: 'OPENCLAW_CPUS',
  serviceName: 'POWERTOOLS_SERVICE_NAME',
  /** The fan-out: the queue it fills, the function it lists tenants with. */
  workQueueUrl: 'OPENCLAW_WORK_QUEUE_URL',
  /** The restore function: the queue its next pieces go through (restore/restore-continuation.ts). */
  restoreQueueUrl: 'OPENCLAW_RESTORE_QUEUE_URL',
  listFunction: 'OPENCLAW_LIST_FUNCTION',
  /** The monitor: the status table, and how old a tenant's last success may get. */
  statusTable: 'OPENCLAW_STATUS_TABLE',
  staleAfterHours: 'OPENCLAW_STALE_AFTER_HOURS',
  metricsNamespace: 'POWERTOOLS_METRICS_NAMESPACE',
} as const;

/**
 * What the work queue's visibility timeout must exceed the backup function's timeout by: the
 * age at which the tenant lock of a process on another host counts as gone (the lock's
 * STALE_AFTER_MS, shared/tenant/process-owner.ts). A delivery that finds the tenant locked
 * for the same archive is taken for a duplicate and deleted: a message back sooner after its
 * first delivery was killed at the timeout found that lock still live, and was lost.
 */
export const WORK_REDELIVERY_MARGIN_MS = 60_000;

/**
 * The least memory (MiB) the stack gives the backup and restore functions (its
 * `memorySizeMiB`): a restore, its dry run or a verify takes an archive up to the default
 * limits whatever the memory (--max-entries 2,000,000, the manifest's default bounds:
 * shared/restore/limits.ts), and a hostile archive built to them (1,998,000 empty files of
 * 125-character paths, then a version 1 manifest of 262,100 directory entries, 27 MB), verified
 * from S3 by the restore bundle under Node 24 with the heap flags Lambda sets for the memory,
 * peaked at 583 MiB RSS in a function of 512 (past it: Lambda ends it, no answer, no event) and
 * at 642 MiB in one of 1,024, which refused it in one line (docs/scale.md). Above it, the
 * restore function grants --max-entries by its memory (function-limits.ts memoryEntryLimit).
 */
export const LEAST_FUNCTION_MEMORY_MIB = 1024;

/** `source` of every completion event the functions publish. */
export const EVENT_SOURCE = 'openclaw.backup';

/** `detail-type` of the completion events, by operation and outcome. */
export const EVENT_DETAIL_TYPES = {
  backup: { ok: 'OpenClaw Backup Succeeded', failed: 'OpenClaw Backup Failed' },
  restore: { ok: 'OpenClaw Restore Succeeded', failed: 'OpenClaw Restore Failed' },
  prune: { ok: 'OpenClaw Prune Succeeded', failed: 'OpenClaw Prune Failed' },
} as const;

/**
 * The custom metrics every function emits (CloudWatch embedded metric format, through
 * Powertools Metrics), and the alarms and dashboard of the stack read. Two dimensions only,
 * `service` (the prefix) and `operation`: the tenant is a property of each record, never a
 * dimension (10,000 tenants would be 10,000 metrics, each billed).
 */
export const METRIC_NAMESPACE = 'OpenClawBackup';
export const METRIC_OPERATIONS = ['backup', 'restore', 'prune', 'fanout', 'freshness', 'list'] as const;
export type MetricOperation = (typeof METRIC_OPERATIONS)[number];
export const METRIC_NAMES = {
  /** One per operation that did its job. */
  succeeded: 'Succeeded',
  /**
   * One per operation that did not: every failure, and every refusal nobody was there to
   * see (scheduled and queued runs). A direct invocation's refusal is the caller's answer.
   */
  failed: 'Failed',
  /** A direct invocation refused (a usage error, an existing archive): the caller saw it. */
  refused: 'Refused',
  /** A queued backup with nothing to do: the tenant vanished, or its archive already exists. */
  skipped: 'Skipped',
  durationMs: 'DurationMs',
  bytes: 'Bytes',
  archiveBytes: 'ArchiveBytes',
  files: 'Files',
  /** The fan-out: messages queued, and tenants it could not queue. */
  queued: 'TenantsQueued',
  queueFailures: 'QueueSendFailures',
  /** The freshness check: tenants without a successful backup for too long, and tenants checked. */
  staleTenants: 'StaleTenants',
  tenantsChecked: 'TenantsChecked',
} as const;

/** What the stack's hourly schedule hands the monitor function to run the freshness check. */
export const FRESHNESS_CHECK_EVENT = { source: 'openclaw.monitor', check: 'freshness' } as const;

/**
 * Why `text` is no X25519 age recipient the stack's `encryptTo` may hold: not `age1` and 58
 * Bech32 characters, or a checksum that does not hold (a mistyped character: such a stack had
 * deployed, and every backup function and fan-out then failed its cold start, age/keys.ts
 * parseRecipient, each scheduled run three times and each queued message until the
 * dead-letter queue). Undefined: it is one.
 */
export function stackRecipientProblem(text: string): string | undefined {
  if (!/^age1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{58}$/.test(text)) return 'must be an X25519 age recipient: age1 and 58 lower-case Bech32 characters (age-keygen -y KEYFILE prints it)';
  const decoded = decodeBech32(text);
  return typeof decoded === 'string' ? `is malformed: it ${decoded}` : undefined;
}
