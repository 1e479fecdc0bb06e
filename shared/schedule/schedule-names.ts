// The names of the EventBridge Scheduler schedules `cron add` creates, in the stack's own
// schedule group: `<tenant>.<cron name>` for one tenant, `_all.<cron name>` for every tenant.
// Tenant names never hold "." and never start with "_" (tenant/names.ts), so a name splits
// back at its first "." into exactly one owner and cron name: `cron list` reads both from
// ListSchedules' summaries alone, without a call per schedule, and two crons can never
// collide (the rule names of the previous version could: "a-b"+"c" and "a"+"b-c").
// Pure: no SDK.

import { CronCommandError } from '../errors.js';
import { assertTenantName, isValidTenantName } from '../tenant/names.js';
import { assertCronName } from './cron-command.js';

/** Scheduler's rule for schedule names. */
export const SCHEDULE_NAME_PATTERN = /^[0-9a-zA-Z_.-]{1,64}$/;
export const MAX_SCHEDULE_NAME_LENGTH = 64;

/** The owner part of an all-tenants schedule's name (no tenant name can be it). */
export const ALL_TENANTS_OWNER = '_all';
/** How listings show an all-tenants cron's tenant. */
export const ALL_TENANTS_LABEL = '*';

/** Whose cron it is: one tenant's, or every tenant's (a fan-out). */
export type CronOwner = { readonly tenant: string } | { readonly all: true };

export function isAllTenants(owner: CronOwner): owner is { readonly all: true } {
  return 'all' in owner;
}

export function ownerLabel(owner: CronOwner): string {
  return isAllTenants(owner) ? ALL_TENANTS_LABEL : owner.tenant;
}

/** `<tenant>.<cron name>` or `_all.<cron name>`, within Scheduler's 64 characters. */
export function scheduleName(owner: CronOwner, cronName: string): string {
  assertCronName(cronName);
  const head = isAllTenants(owner) ? ALL_TENANTS_OWNER : assertTenantName(owner.tenant);
  const name = `${head}.${cronName}`;
  if (name.length > MAX_SCHEDULE_NAME_LENGTH) {
    throw new CronCommandError(
      `the schedule name "${name}" is ${name.length} characters; EventBridge Scheduler allows ${MAX_SCHEDULE_NAME_LENGTH}: ` +
        `use a cron name of at most ${MAX_SCHEDULE_NAME_LENGTH - head.length - 1} characters`,
    );
  }
  if (!SCHEDULE_NAME_PATTERN.test(name)) throw new CronCommandError(`the schedule name "${name}" is not a valid EventBridge Scheduler name`);
  return name;
}

/** The owner and cron name of a schedule made by `cron add`; undefined for any other name. */
export function parseScheduleName(name: string): { readonly owner: CronOwner; readonly cronName: string } | undefined {
  const dot = name.indexOf('.');
  if (dot <= 0) return undefined;
  const head = name.slice(0, dot);
  const cronName = name.slice(dot + 1);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(cronName)) return undefined;
  if (head === ALL_TENANTS_OWNER) return { owner: { all: true }, cronName };
  return isValidTenantName(head) ? { owner: { tenant: head }, cronName } : undefined;
}

/** ListSchedules' NamePrefix for one tenant's crons (exact: "acme." never matches "acme-2"), or for all-tenant crons. */
export function scheduleNamePrefix(owner: CronOwner): string {
  return `${isAllTenants(owner) ? ALL_TENANTS_OWNER : assertTenantName(owner.tenant)}.`;
}

/**
 * The order `cron list` shows crons in, by tenant, then name: character codes, as `tenants
 * list` sorts names, never the caller's locale (`localeCompare` put "aaron" after "zed" under
 * LANG=da_DK.UTF-8, and "B" before or after "a" by locale).
 */
export function compareCrons(a: { readonly tenant: string; readonly name: string }, b: { readonly tenant: string; readonly name: string }): number {
  const text = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  return text(a.tenant, b.tenant) || text(a.name, b.name);
}
