// The functions' configuration, read once per cold start from the environment the stack
// sets. A bad value fails the cold start with a message naming the variable, rather than
// every invocation later.
//
//   OPENCLAW_TENANTS_DIR              the EFS mount with one directory per tenant (/mnt/tenants)
//   OPENCLAW_BACKUP_BUCKET            the bucket backups write to and restores read from
//   OPENCLAW_BACKUP_PREFIX            optional: the key prefix (ending in "/") of the backups in
//                                     that bucket; the only keys the role may write and read there
//   OPENCLAW_ALLOWED_SOURCE_BUCKETS   more buckets restores may read, comma-separated
//   OPENCLAW_ALLOWED_ENDPOINTS        optional: the only S3-compatible endpoints (comma-separated)
//                                     a request may name: an origin allows that host, an entry
//                                     with a path that path and below it (endpoint-allowlist.ts);
//                                     unset or empty = none: the functions then reach AWS S3
//                                     only, with their role
//   OPENCLAW_ALLOW_OVERWRITE          optional: "true" lets a backup replace an existing archive
//                                     (--overwrite); unset or "false" = refused
//   OPENCLAW_ENCRYPT_TO               optional: age1… recipients (comma-separated) every archive
//                                     the functions store is encrypted to, beside the request's
//                                     own (control-plane/remote-policy.ts `withStackRecipients`);
//                                     unset or empty = only what each request names
//   OPENCLAW_EVENT_BUS                bus for completion events; unset = none published
//   OPENCLAW_STACK_PREFIX             the deployment prefix (logs)
//   OPENCLAW_ABORT_MARGIN_MS          optional: how long before the timeout to stop (60000)
//   OPENCLAW_CONTINUE_MARGIN_MS       optional: a backup that continues across invocations
//                                     stops taking new entries this long before the abort
//                                     margin, to finish the entry it is on and hand over (120000)
//   OPENCLAW_RESTORE_MBPS             optional: the restore throughput the restore function counts
//                                     on (MB/s); it refuses up front an archive larger than that
//                                     rate restores in the invocation's time left (40)
//   OPENCLAW_RESTORE_REPLAY_MBPS      optional: the rate (MB/s of stored archive) at which a later
//                                     piece of a restore in pieces reads again, without writing,
//                                     what earlier pieces wrote; with OPENCLAW_RESTORE_MBPS it
//                                     bounds the archive a restore in pieces takes on (80)
//   OPENCLAW_RESTORE_ENTRIES_PER_SECOND optional: the files, directories and links a second the
//                                     restore function counts on staging; it refuses up front an
//                                     archive whose footer counts more than that rate stages in
//                                     the invocation's time left, or, with the restore queue, a
//                                     chain of pieces (45: measured 48-57 at 5 ms a request)
//   OPENCLAW_ABANDON_AFTER_MS         optional: a continuing backup whose next piece has not
//                                     come for this long is abandoned: upload aborted, state
//                                     removed, failure event (86400000, a day)
//                                     at least an hour (MIN_ABANDON_AFTER_MS)
//   OPENCLAW_CONNECT_TIMEOUT_MS       optional: connect timeout of the AWS clients the functions
//                                     create themselves (EventBridge) (3000)
//   OPENCLAW_REQUEST_TIMEOUT_MS       optional: their per-request timeout, and the most a
//                                     completion event may take to publish (10000); both are
//                                     further bounded by the invocation's time left
//   OPENCLAW_CPUS                     optional: the vCPUs the function's memory buys (1,769 MB
//                                     a vCPU); frames compressed at once and writer threads
//                                     follow it (shared/cpu-budget.ts); unset = what Node sees
//   AWS_LAMBDA_FUNCTION_MEMORY_SIZE   set by Lambda: the function's memory (MiB); the restore
//                                     function grants a request's limits.maxEntries only up to
//                                     what it holds (restore/function-limits.ts memoryEntryLimit);
//                                     unset (not in Lambda) = any

import path from 'node:path';

import { DEFAULT_ABANDON_AFTER_MS } from '../backup/continuation.js';
import { backupRecipients } from '../archive/encrypted-archive.js';
import { FunctionConfigError } from '../errors.js';
import { FUNCTION_ENV as ENV, TENANTS_MOUNT_PATH } from './deployment.js';
import { allowedEndpoint, allowedEndpointProblem } from './endpoint-allowlist.js';
import { bucketNameProblem, keyProblemOf } from '../storage/s3-url.js';

export interface FunctionConfig {
  readonly tenantsDir: string;
  readonly backupBucket?: string;
  /** Keys in the backup bucket start with this (e.g. `backups/`); undefined: any key. */
  readonly backupKeyPrefix?: string;
  readonly allowedSourceBuckets: readonly string[];
  /** Endpoints (`https://host:port`, the whole host, or `https://host:port/path`, that path and below) a request may name; undefined or empty: none. */
  readonly allowedEndpoints?: readonly string[];
  /** A backup may replace an existing archive (`--overwrite`); undefined: no. */
  readonly allowOverwrite?: boolean;
  /** age1… recipients every backup is encrypted to, whatever the request names (the stack's `encryptTo`); undefined or empty: the request's own only. */
  readonly encryptTo?: readonly string[];
  readonly eventBus?: string;
  readonly stackPrefix?: string;
  readonly abortMarginMs: number;
  /** A piece of a backup in pieces stops taking entries when the time left falls under `abortMarginMs` + this. @default DEFAULT_CONTINUE_MARGIN_MS */
  readonly continueMarginMs?: number;
  /** The restore throughput (MB/s of stored archive) the restore function counts on to refuse what it cannot finish. @default DEFAULT_RESTORE_MBPS */
  readonly restoreMBps?: number;
  /** The rate (MB/s of stored archive) a later piece of a restore in pieces replays what earlier pieces wrote (read from S3, decrypted, decompressed, hashed, nothing written). @default DEFAULT_RESTORE_REPLAY_MBPS */
  readonly restoreReplayMBps?: number;
  /** The entries (files, directories, links) a second the restore function counts on staging, to refuse what it cannot finish. @default DEFAULT_RESTORE_ENTRIES_PER_SECOND */
  readonly restoreEntriesPerSecond?: number;
  /** A backup in pieces whose state has not been saved for this long has broken: it is cleaned up. @default DEFAULT_ABANDON_AFTER_MS */
  readonly abandonAfterMs?: number;
  /** Connect timeout of the AWS clients the functions create. @default DEFAULT_CONNECT_TIMEOUT_MS */
  readonly connectTimeoutMs?: number;
  /** Per-request timeout of those clients. @default DEFAULT_REQUEST_TIMEOUT_MS */
  readonly requestTimeoutMs?: number;
  /** CPUs the function may keep busy; undefined: what Node sees. */
  readonly cpus?: number;
  /** The function's memory in MiB (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, which Lambda sets); undefined: not known, nothing is held back for it. */
  readonly memoryMiB?: number;
}

export const DEFAULT_TENANTS_DIR = TENANTS_MOUNT_PATH;
/** Where Lambda tells a function its memory (MiB). */
export const LAMBDA_MEMORY_SIZE = 'AWS_LAMBDA_FUNCTION_MEMORY_SIZE';
export const DEFAULT_ABORT_MARGIN_MS = 60_000;
/**
 * The least OPENCLAW_ABANDON_AFTER_MS: a chain's next piece may wait for the work queue's
 * visibility timeout (the function's timeout, at most 15 min, plus a minute) and a backlog, and
 * a chain ended between two live pieces loses its backup.
 */
export const MIN_ABANDON_AFTER_MS = 3_600_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 3_000;
export const DEFAULT_CONTINUE_MARGIN_MS = 120_000;
export const DEFAULT_RESTORE_MBPS = 40;
/**
 * A later restore piece's replay (docs/scale.md): through the bundle under Node 24 from s3rver,
 * 1.61 GB replayed in 19-28 s on a 2-core machine at load 12-13 (57-84 MB/s), 185-220 MB a
 * second of the piece's CPU; counted at 80 as one GET stream from S3 in a function of about one
 * vCPU (not measured here), and a compressible archive's stored bytes cost more to decode.
 * Stop 47, `tenants verify` from s3rver against a local file: ~270 against ~730 MB a CPU
 * second, so ~310 MB/s by CPU in such a function; kept at 80 (one GET stream's rate).
 */
export const DEFAULT_RESTORE_REPLAY_MBPS = 80;
/**
 * Entries a restore stages a second on a volume ~5 ms a request away (EFS): measured through
 * the restore bundle under Node 24 behind bench/latencyfs.py at 5 ms, 48-57 a second (stop 45:
 * 55-57; stop 46: 48-49, 1,216 in 25.5 s, 841 in 17.4 s; docs/scale.md); counted just under the
 * lowest. It was 200 (one request of 5 ms an entry): 3.5-4x what a restore stages, so an
 * archive of 100,000 small files passed and stopped at its deadline.
 */
export const DEFAULT_RESTORE_ENTRIES_PER_SECOND = 45;
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** `tenants recover` ends a chain by the same age (backup/continuation.ts). */
export { DEFAULT_ABANDON_AFTER_MS };

export function readFunctionConfig(env: NodeJS.ProcessEnv = process.env): FunctionConfig {
  const text = (name: string) => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const list = (name: string) => (text(name) ?? '').split(',').map((item) => item.trim()).filter((item) => item !== '');

  const tenantsDir = text(ENV.tenantsDir) ?? DEFAULT_TENANTS_DIR;
  if (!path.isAbsolute(tenantsDir)) throw new FunctionConfigError(`${ENV.tenantsDir} must be an absolute path, got ${JSON.stringify(tenantsDir)}`);

  const backupBucket = text(ENV.bucket);
  const allowedSourceBuckets = list(ENV.allowedSourceBuckets);
  for (const [name, bucket] of [
    ...(backupBucket === undefined ? [] : [[ENV.bucket, backupBucket] as const]),
    ...allowedSourceBuckets.map((bucket) => [ENV.allowedSourceBuckets, bucket] as const),
  ]) {
    const problem = bucketNameProblem(bucket);
    if (problem !== undefined) throw new FunctionConfigError(`${name}: invalid bucket name ${JSON.stringify(bucket)}: ${problem}`);
  }

  const backupKeyPrefix = text(ENV.keyPrefix);
  if (backupKeyPrefix !== undefined && (!backupKeyPrefix.endsWith('/') || backupKeyPrefix.startsWith('/') || keyProblemOf(backupKeyPrefix.slice(0, -1)) !== undefined)) {
    throw new FunctionConfigError(`${ENV.keyPrefix} must be a key prefix ending in "/", like backups/, got ${JSON.stringify(backupKeyPrefix)}`);
  }

  const endpoints = list(ENV.allowedEndpoints).map(allowedEntry);

  const allowOverwrite = text(ENV.allowOverwrite);
  if (allowOverwrite !== undefined && allowOverwrite !== 'true' && allowOverwrite !== 'false') {
    throw new FunctionConfigError(`${ENV.allowOverwrite} must be true or false, got ${JSON.stringify(allowOverwrite)}`);
  }

  let encryptTo: string[] = [];
  try {
    encryptTo = backupRecipients(list(ENV.encryptTo)).map((recipient) => recipient.text);
  } catch (error) {
    throw new FunctionConfigError(`${ENV.encryptTo}: ${(error as Error).message}`);
  }

  const milliseconds = (name: string, fallback: number, min: number): number => {
    const value = text(name);
    const parsed = value === undefined ? fallback : Number(value);
    if (!Number.isSafeInteger(parsed) || parsed < min) {
      throw new FunctionConfigError(`${name} must be a whole number of milliseconds${min > 0 ? ` (at least ${min})` : ''}, got ${JSON.stringify(value)}`);
    }
    return parsed;
  };
  const abortMarginMs = milliseconds(ENV.abortMargin, DEFAULT_ABORT_MARGIN_MS, 0);
  const continueMarginMs = milliseconds(ENV.continueMargin, DEFAULT_CONTINUE_MARGIN_MS, 0);
  const abandonAfterMs = milliseconds(ENV.abandonAfter, DEFAULT_ABANDON_AFTER_MS, MIN_ABANDON_AFTER_MS);
  const connectTimeoutMs = milliseconds(ENV.connectTimeout, DEFAULT_CONNECT_TIMEOUT_MS, 1);
  const requestTimeoutMs = milliseconds(ENV.requestTimeout, DEFAULT_REQUEST_TIMEOUT_MS, 1);

  const restoreText = text(ENV.restoreMBps);
  const restoreMBps = restoreText === undefined ? DEFAULT_RESTORE_MBPS : Number(restoreText);
  if (!(Number.isFinite(restoreMBps) && restoreMBps > 0)) throw new FunctionConfigError(`${ENV.restoreMBps} must be a positive number of MB/s, got ${JSON.stringify(restoreText)}`);
  const replayText = text(ENV.restoreReplayMBps);
  const restoreReplayMBps = replayText === undefined ? DEFAULT_RESTORE_REPLAY_MBPS : Number(replayText);
  if (!(Number.isFinite(restoreReplayMBps) && restoreReplayMBps > 0)) throw new FunctionConfigError(`${ENV.restoreReplayMBps} must be a positive number of MB/s, got ${JSON.stringify(replayText)}`);
  const entriesText = text(ENV.restoreEntriesPerSecond);
  const restoreEntriesPerSecond = entriesText === undefined ? DEFAULT_RESTORE_ENTRIES_PER_SECOND : Number(entriesText);
  if (!(Number.isFinite(restoreEntriesPerSecond) && restoreEntriesPerSecond > 0)) {
    throw new FunctionConfigError(`${ENV.restoreEntriesPerSecond} must be a positive number of entries a second, got ${JSON.stringify(entriesText)}`);
  }

  const cpusText = text(ENV.cpus);
  const cpus = cpusText === undefined ? undefined : Number(cpusText);
  if (cpus !== undefined && !(Number.isSafeInteger(cpus) && cpus >= 1)) {
    throw new FunctionConfigError(`${ENV.cpus} must be a whole number of CPUs (at least 1), got ${JSON.stringify(cpusText)}`);
  }

  const memoryText = text(LAMBDA_MEMORY_SIZE);
  const memoryMiB = memoryText === undefined ? undefined : Number(memoryText);
  if (memoryMiB !== undefined && !(Number.isSafeInteger(memoryMiB) && memoryMiB >= 1)) {
    throw new FunctionConfigError(`${LAMBDA_MEMORY_SIZE} must be a whole number of MiB, got ${JSON.stringify(memoryText)}`);
  }

  return {
    tenantsDir: path.resolve(tenantsDir),
    ...(backupBucket !== undefined && { backupBucket }),
    ...(backupKeyPrefix !== undefined && { backupKeyPrefix }),
    allowedSourceBuckets,
    allowedEndpoints: endpoints,
    allowOverwrite: allowOverwrite === 'true',
    ...(encryptTo.length > 0 && { encryptTo }),
    ...(text(ENV.eventBus) !== undefined && { eventBus: text(ENV.eventBus) }),
    ...(text(ENV.stackPrefix) !== undefined && { stackPrefix: text(ENV.stackPrefix) }),
    abortMarginMs,
    continueMarginMs,
    abandonAfterMs,
    restoreMBps,
    restoreReplayMBps,
    restoreEntriesPerSecond,
    connectTimeoutMs,
    requestTimeoutMs,
    ...(cpus !== undefined && { cpus }),
    ...(memoryMiB !== undefined && { memoryMiB }),
  };
}

function allowedEntry(entry: string): string {
  const problem = allowedEndpointProblem(entry);
  if (problem !== undefined) throw new FunctionConfigError(`${ENV.allowedEndpoints}: ${JSON.stringify(entry)} ${problem}`);
  return allowedEndpoint(entry);
}

/**
 * What the coordinating functions read besides the above: the fan-out its queue and the list
 * function, the monitor its table, the list function and the freshness limit.
 *   OPENCLAW_WORK_QUEUE_URL       the fan-out: the queue it sends one message per tenant to
 *   OPENCLAW_LIST_FUNCTION        both: the function that lists the tenants
 *   OPENCLAW_STATUS_TABLE         the monitor: the status table
 *   OPENCLAW_STALE_AFTER_HOURS    the monitor: hours without a successful backup before a tenant is stale (26)
 */
export interface CoordinatorConfig {
  readonly workQueueUrl?: string;
  /** OPENCLAW_RESTORE_QUEUE_URL: the restore function's queue of next pieces; absent: restores do not continue. */
  readonly restoreQueueUrl?: string;
  readonly listFunction?: string;
  readonly statusTable?: string;
  readonly staleAfterHours: number;
}

export function readCoordinatorConfig(env: NodeJS.ProcessEnv = process.env): CoordinatorConfig {
  const text = (name: string) => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const workQueueUrl = text(ENV.workQueueUrl);
  if (workQueueUrl !== undefined && !/^https:\/\/\S+\/\d{12}\/[A-Za-z0-9_-]{1,80}$/.test(workQueueUrl)) {
    throw new FunctionConfigError(`${ENV.workQueueUrl} must be an SQS queue URL, got ${JSON.stringify(workQueueUrl)}`);
  }
  const restoreQueueUrl = text(ENV.restoreQueueUrl);
  if (restoreQueueUrl !== undefined && !/^https:\/\/\S+\/\d{12}\/[A-Za-z0-9_-]{1,80}$/.test(restoreQueueUrl)) {
    throw new FunctionConfigError(`${ENV.restoreQueueUrl} must be an SQS queue URL, got ${JSON.stringify(restoreQueueUrl)}`);
  }
  const hours = text(ENV.staleAfterHours);
  const staleAfterHours = hours === undefined ? 26 : Number(hours);
  if (!Number.isFinite(staleAfterHours) || staleAfterHours <= 0) {
    throw new FunctionConfigError(`${ENV.staleAfterHours} must be a positive number of hours, got ${JSON.stringify(hours)}`);
  }
  return {
    ...(workQueueUrl !== undefined && { workQueueUrl }),
    ...(restoreQueueUrl !== undefined && { restoreQueueUrl }),
    ...(text(ENV.listFunction) !== undefined && { listFunction: text(ENV.listFunction) }),
    ...(text(ENV.statusTable) !== undefined && { statusTable: text(ENV.statusTable) }),
    staleAfterHours,
  };
}

/** A setting a function cannot start without. */
export function required<T>(value: T | undefined, name: string): T {
  if (value === undefined) throw new FunctionConfigError(`${name} is not set: the stack sets it; is this function deployed by it?`);
  return value;
}
