// Which backups a retention policy keeps, with restic's `forget` semantics: backups are
// taken newest first; `last N` keeps the N newest; `daily N` keeps the newest backup of each
// of the N most recent days that have one (and likewise weekly by ISO week, monthly,
// yearly); a backup kept by any rule stays, with every rule that kept it as a reason; the
// rest go. Days, weeks, months and years are UTC, from each backup's creation time. Pure.

import { formatDate } from '../schedule/destination-template.js';

export interface RetentionPolicy {
  readonly last?: number;
  readonly daily?: number;
  readonly weekly?: number;
  readonly monthly?: number;
  readonly yearly?: number;
}

export const RETENTION_RULES = ['last', 'daily', 'weekly', 'monthly', 'yearly'] as const;
export type RetentionRule = (typeof RETENTION_RULES)[number];

/** The bucket a time falls in, per rule; `last` puts every backup in a bucket of its own. */
const BUCKET: Readonly<Record<RetentionRule, (time: Date, index: number) => string>> = {
  last: (_time, index) => String(index),
  daily: (time) => formatDate('%F', time),
  weekly: (time) => formatDate('%G-W%V', time),
  monthly: (time) => formatDate('%Y-%m', time),
  yearly: (time) => formatDate('%Y', time),
};

export interface Retained<T> {
  readonly item: T;
  /** Why it is kept, e.g. `daily 2026-06-03`, `last`. */
  readonly reasons: readonly string[];
}

export interface RetentionOutcome<T> {
  /** Newest first. */
  readonly keep: readonly Retained<T>[];
  readonly remove: readonly T[];
}

/** Whether the policy keeps anything at all (a policy without rules would remove everything). */
export function hasRules(policy: RetentionPolicy): boolean {
  return RETENTION_RULES.some((rule) => (policy[rule] ?? 0) > 0);
}

export function applyRetention<T>(items: readonly T[], timeOf: (item: T) => Date, policy: RetentionPolicy): RetentionOutcome<T> {
  const sorted = [...items].sort((a, b) => timeOf(b).getTime() - timeOf(a).getTime());
  const left = new Map<RetentionRule, number>(RETENTION_RULES.map((rule) => [rule, policy[rule] ?? 0]));
  const lastBucket = new Map<RetentionRule, string>();
  const keep: Retained<T>[] = [];
  const remove: T[] = [];
  sorted.forEach((item, index) => {
    const reasons: string[] = [];
    for (const rule of RETENTION_RULES) {
      if (left.get(rule)! <= 0) continue;
      const bucket = BUCKET[rule](timeOf(item), index);
      if (lastBucket.get(rule) === bucket) continue;
      lastBucket.set(rule, bucket);
      left.set(rule, left.get(rule)! - 1);
      reasons.push(rule === 'last' ? 'last' : `${rule} ${bucket}`);
    }
    if (reasons.length > 0) keep.push({ item, reasons });
    else remove.push(item);
  });
  return { keep, remove };
}
