// The freshness check (run hourly by the monitor function): which tenants on the volume have
// had no successful backup for longer than the limit (26 hours by default: a nightly backup
// plus two hours of slack). Why a record of outcomes rather than reading the bucket: a
// template can put archives anywhere (the key need not name the tenant), the bucket grows by
// 10,000 keys a night, and an archive's presence does not say it was completed by us; the
// completion events do, and the backup role may not write markers into the bucket anyway
// (it never overwrites). So the monitor records each backup's outcome (status-table.ts), and
// this check compares the tenants the list function sees with those records.
//
// A tenant with no record counts from when the check first saw it (it is marked then), so a
// new tenant has the full limit to get its first backup; a record whose tenant is gone is
// ignored. The clock and clients are injected (tests move the clock).

import { markFirstSeen, putFreshnessRecord, readTenantStatuses, type Db } from './status-table.js';

export const DEFAULT_STALE_AFTER_HOURS = 26;
/** How many stale tenants the record and the logs name (the count is always complete). */
export const STALE_SAMPLE_SIZE = 20;

export interface FreshnessDeps {
  readonly db: Db;
  readonly table: string;
  /** Every tenant on the volume. */
  listNames(): Promise<readonly string[]>;
  readonly now: () => Date;
  readonly staleAfterHours?: number;
  /** First-seen marks written at once. @default 10 */
  readonly concurrency?: number;
}

export interface StaleTenant {
  readonly tenant: string;
  /** Its last successful backup, if it ever had one. */
  readonly lastSuccessAt?: string;
  /** What its age is measured from: the last success, or when it was first seen. */
  readonly since: string;
}

export interface FreshnessReport {
  readonly checkedAt: string;
  readonly tenants: number;
  readonly staleAfterHours: number;
  /** Oldest first. */
  readonly stale: readonly StaleTenant[];
  /** Tenants seen for the first time by this check. */
  readonly firstSeen: number;
}

export async function checkFreshness(deps: FreshnessDeps): Promise<FreshnessReport> {
  const staleAfterHours = deps.staleAfterHours ?? DEFAULT_STALE_AFTER_HOURS;
  const [names, statuses] = await Promise.all([deps.listNames(), readTenantStatuses(deps.db, deps.table)]);
  const now = deps.now();
  const checkedAt = now.toISOString();
  const limitMs = staleAfterHours * 3_600_000;

  const unseen = names.filter((tenant) => {
    const status = statuses.get(tenant);
    return status?.lastSuccessAt === undefined && status?.firstSeenAt === undefined;
  });
  let next = 0;
  const mark = async () => {
    while (next < unseen.length) await markFirstSeen(deps.db, deps.table, unseen[next++]!, checkedAt);
  };
  await Promise.all(Array.from({ length: Math.min(deps.concurrency ?? 10, unseen.length) }, mark));

  const stale: StaleTenant[] = [];
  for (const tenant of names) {
    const status = statuses.get(tenant);
    const since = status?.lastSuccessAt ?? status?.firstSeenAt ?? checkedAt;
    const sinceMs = Date.parse(since);
    if (Number.isNaN(sinceMs) || now.getTime() - sinceMs > limitMs) {
      stale.push({ tenant, since, ...(status?.lastSuccessAt !== undefined && { lastSuccessAt: status.lastSuccessAt }) });
    }
  }
  stale.sort((a, b) => (a.since < b.since ? -1 : a.since > b.since ? 1 : a.tenant < b.tenant ? -1 : 1));

  await putFreshnessRecord(deps.db, deps.table, {
    checkedAt,
    tenants: names.length,
    stale: stale.length,
    staleSample: stale.slice(0, STALE_SAMPLE_SIZE).map((entry) => entry.tenant),
    staleAfterHours,
  });
  return { checkedAt, tenants: names.length, staleAfterHours, stale, firstSeen: unseen.length };
}
