// The functions' configuration, read once per cold start from the environment the stack
// sets. A bad value fails the cold start with a message naming the variable, rather than
// every invocation later.
//
//   OPENCLAW_TENANTS_DIR              the EFS mount with one directory per tenant (/mnt/tenants)
//   OPENCLAW_BACKUP_BUCKET            the bucket backups write to and restores read from
//   OPENCLAW_BACKUP_PREFIX            optional: the key prefix (ending in "/") of the backups in
//                                     that bucket; the only keys the role may write and read there
//   OPENCLAW_ALLOWED_SOURCE_BUCKETS   more buckets restores may read, comma-separated
//   OPENCLAW_ALLOWED_ENDPOINTS        optional: the only S3-compatible endpoints (origins,
//                                     comma-separated) a request may name; unset = any
//   OPENCLAW_EVENT_BUS                bus for completion events; unset = none published
//   OPENCLAW_STACK_PREFIX             the deployment prefix (logs)
//   OPENCLAW_ABORT_MARGIN_MS          optional: how long before the timeout to stop (60000)

import path from 'node:path';

import { bucketNameProblem, keyProblemOf } from '../shared/storage/s3-url.js';

export interface FunctionConfig {
  readonly tenantsDir: string;
  readonly backupBucket?: string;
  /** Keys in the backup bucket start with this (e.g. `backups/`); undefined: any key. */
  readonly backupKeyPrefix?: string;
  readonly allowedSourceBuckets: readonly string[];
  /** Origins (`https://host:port`); undefined: any endpoint. */
  readonly allowedEndpoints?: readonly string[];
  readonly eventBus?: string;
  readonly stackPrefix?: string;
  readonly abortMarginMs: number;
}

export const DEFAULT_TENANTS_DIR = '/mnt/tenants';
export const DEFAULT_ABORT_MARGIN_MS = 60_000;

/** The function's environment is wrong: thrown at cold start. */
export class FunctionConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FunctionConfigError';
  }
}

export function readFunctionConfig(env: NodeJS.ProcessEnv = process.env): FunctionConfig {
  const text = (name: string) => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const list = (name: string) => (text(name) ?? '').split(',').map((item) => item.trim()).filter((item) => item !== '');

  const tenantsDir = text('OPENCLAW_TENANTS_DIR') ?? DEFAULT_TENANTS_DIR;
  if (!path.isAbsolute(tenantsDir)) throw new FunctionConfigError(`OPENCLAW_TENANTS_DIR must be an absolute path, got ${JSON.stringify(tenantsDir)}`);

  const backupBucket = text('OPENCLAW_BACKUP_BUCKET');
  const allowedSourceBuckets = list('OPENCLAW_ALLOWED_SOURCE_BUCKETS');
  for (const [name, bucket] of [
    ...(backupBucket === undefined ? [] : [['OPENCLAW_BACKUP_BUCKET', backupBucket] as const]),
    ...allowedSourceBuckets.map((bucket) => ['OPENCLAW_ALLOWED_SOURCE_BUCKETS', bucket] as const),
  ]) {
    const problem = bucketNameProblem(bucket);
    if (problem !== undefined) throw new FunctionConfigError(`${name}: invalid bucket name ${JSON.stringify(bucket)}: ${problem}`);
  }

  const backupKeyPrefix = text('OPENCLAW_BACKUP_PREFIX');
  if (backupKeyPrefix !== undefined && (!backupKeyPrefix.endsWith('/') || backupKeyPrefix.startsWith('/') || keyProblemOf(backupKeyPrefix.slice(0, -1)) !== undefined)) {
    throw new FunctionConfigError(`OPENCLAW_BACKUP_PREFIX must be a key prefix ending in "/", like backups/, got ${JSON.stringify(backupKeyPrefix)}`);
  }

  const endpoints = text('OPENCLAW_ALLOWED_ENDPOINTS') === undefined ? undefined : list('OPENCLAW_ALLOWED_ENDPOINTS').map(originOf);

  const margin = text('OPENCLAW_ABORT_MARGIN_MS');
  const abortMarginMs = margin === undefined ? DEFAULT_ABORT_MARGIN_MS : Number(margin);
  if (!Number.isSafeInteger(abortMarginMs) || abortMarginMs < 0) {
    throw new FunctionConfigError(`OPENCLAW_ABORT_MARGIN_MS must be a whole number of milliseconds, got ${JSON.stringify(margin)}`);
  }

  return {
    tenantsDir: path.resolve(tenantsDir),
    ...(backupBucket !== undefined && { backupBucket }),
    ...(backupKeyPrefix !== undefined && { backupKeyPrefix }),
    allowedSourceBuckets,
    ...(endpoints !== undefined && { allowedEndpoints: endpoints }),
    ...(text('OPENCLAW_EVENT_BUS') !== undefined && { eventBus: text('OPENCLAW_EVENT_BUS') }),
    ...(text('OPENCLAW_STACK_PREFIX') !== undefined && { stackPrefix: text('OPENCLAW_STACK_PREFIX') }),
    abortMarginMs,
  };
}

/** `scheme://host[:port]` of a URL, or undefined when it is not an http(s) URL. */
export function endpointOrigin(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.origin : undefined;
  } catch {
    return undefined;
  }
}

function originOf(url: string): string {
  const origin = endpointOrigin(url);
  if (origin === undefined) throw new FunctionConfigError(`OPENCLAW_ALLOWED_ENDPOINTS: ${JSON.stringify(url)} is not an http(s) URL`);
  return origin;
}
