// The names a deployed gateway is known by, spelled once for the three parties that must
// agree on them: the stack that creates the resources (infra/), the functions that run in it
// (functions/) and the CLI that calls it in remote mode (cli/). Pure constants and string
// rules; no AWS SDK, no CDK.

import { UsageError } from '../errors.js';

/**
 * The deployment prefix: names the stack's resources, its exports and the EventBridge rules
 * the CLI creates (`<prefix>-<tenant>-<cron>`), so it must fit all of them: rule names allow
 * 64 characters, a tenant name takes up to 32 and two separators.
 */
export const STACK_PREFIX_PATTERN = /^[a-z][a-z0-9-]{0,22}[a-z0-9]$/;
export const DEFAULT_STACK_PREFIX = 'openclaw-backup';

export function assertStackPrefix(stack: string): string {
  if (!STACK_PREFIX_PATTERN.test(stack)) {
    throw new UsageError(
      `invalid --stack ${JSON.stringify(stack)}: the stack prefix is 2-24 lowercase letters, digits and "-" ` +
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

/** The gateway's Lambda functions that mount the tenants, each named `<prefix>-<role>`. */
export const FUNCTION_ROLES = ['backup', 'restore', 'list'] as const;
/** The prune function (`<prefix>-prune`): S3 only, no file system, a role of its own that may delete. */
export const PRUNE_ROLE = 'prune';
export type FunctionRole = (typeof FUNCTION_ROLES)[number] | typeof PRUNE_ROLE;

export function functionName(stack: string, role: FunctionRole): string {
  return `${stack}-${role}`;
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
  abortMargin: 'OPENCLAW_ABORT_MARGIN_MS',
  connectTimeout: 'OPENCLAW_CONNECT_TIMEOUT_MS',
  requestTimeout: 'OPENCLAW_REQUEST_TIMEOUT_MS',
  cpus: 'OPENCLAW_CPUS',
  serviceName: 'POWERTOOLS_SERVICE_NAME',
} as const;

/** `source` of every completion event the functions publish. */
export const EVENT_SOURCE = 'openclaw.backup';

/** `detail-type` of the completion events, by operation and outcome. */
export const EVENT_DETAIL_TYPES = {
  backup: { ok: 'OpenClaw Backup Succeeded', failed: 'OpenClaw Backup Failed' },
  restore: { ok: 'OpenClaw Restore Succeeded', failed: 'OpenClaw Restore Failed' },
  prune: { ok: 'OpenClaw Prune Succeeded', failed: 'OpenClaw Prune Failed' },
} as const;
