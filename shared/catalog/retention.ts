// Which backups a retention policy keeps, with restic's `forget` semantics: backups are
// taken newest first; `last N` keeps the N newest; `hourly N` keeps the newest backup of each
// of the N most recent hours that have one (and likewise daily, weekly by ISO week, monthly,
// yearly), and the oldest backup too while the rule has some of its N left (restic 0.16's
// "oldest daily snapshot": fewer periods than N hold a backup, so the rule keeps the oldest
// as well, and the history reaches back as far as it can; `--keep-yearly 2` over backups of
// this year alone keeps the first one, not only the newest); `within D` keeps every backup
// made within the span D before the newest backup (strictly after the newest's time less D,
// as restic's --keep-within); a backup kept by any rule stays, with every rule that kept it
// as a reason; the rest go. Hours, days, weeks, months and years are UTC, from each backup's
// creation time, never the clock. Pure.

import { formatDate } from '../schedule/destination-template.js';

export interface RetentionPolicy {
  readonly last?: number;
  readonly hourly?: number;
  readonly daily?: number;
  readonly weekly?: number;
  readonly monthly?: number;
  readonly yearly?: number;
  /** A span (`7d`, `36h`, `1y6m`: parseKeepWithin) before the newest backup: every backup made within it is kept. */
  readonly within?: string;
}

/** The rules that take a count. */
export const RETENTION_RULES = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
export type RetentionRule = (typeof RETENTION_RULES)[number];
/** Every key a policy may have. */
export const RETENTION_KEYS = [...RETENTION_RULES, 'within'] as const;

/** The bucket a time falls in, per rule; `last` puts every backup in a bucket of its own. */
const BUCKET: Readonly<Record<RetentionRule, (time: Date, index: number) => string>> = {
  last: (_time, index) => String(index),
  hourly: (time) => formatDate('%FT%H', time),
  daily: (time) => formatDate('%F', time),
  weekly: (time) => formatDate('%G-W%V', time),
  monthly: (time) => formatDate('%Y-%m', time),
  yearly: (time) => formatDate('%Y', time),
};

/** A `--keep-within` span, by unit: years and months are calendar ones (UTC), as restic's. */
export interface KeepWithin {
  readonly years: number;
  readonly months: number;
  readonly days: number;
  readonly hours: number;
}

/** A span no backup history is longer than: a larger number is a typo, not a policy. */
const MAX_WITHIN_HOURS = 1000 * 366 * 24;
const UNIT_HOURS = { y: 366 * 24, m: 31 * 24, w: 7 * 24, d: 24, h: 1 } as const;

/**
 * `7d`, `36h`, `2w`, `1y6m`, `1y2m3d4h`: whole numbers each followed by its unit (y years,
 * m months, w weeks, d days, h hours), each unit at most once, largest first, not all 0;
 * undefined when `text` is none of these.
 */
export function parseKeepWithin(text: string): KeepWithin | undefined {
  const match = /^(?:(\d+)y)?(?:(\d+)m)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?$/.exec(text);
  if (match === null || text === '') return undefined;
  const [years, months, weeks, days, hours] = match.slice(1).map((part) => (part === undefined ? 0 : Number(part))) as [number, number, number, number, number];
  const total = years * UNIT_HOURS.y + months * UNIT_HOURS.m + weeks * UNIT_HOURS.w + days * UNIT_HOURS.d + hours;
  if (total === 0 || !(total <= MAX_WITHIN_HOURS)) return undefined;
  return { years, months, days: days + 7 * weeks, hours };
}

/** The time `span` before `time`, in UTC calendar terms (31 March less 1m is 3 March, as Go's AddDate gives restic). */
export function spanBefore(time: Date, span: KeepWithin): Date {
  const start = new Date(time.getTime());
  start.setUTCFullYear(start.getUTCFullYear() - span.years, start.getUTCMonth() - span.months, start.getUTCDate() - span.days);
  start.setUTCHours(start.getUTCHours() - span.hours);
  return start;
}

/**
 * The earliest time `span` before `time` or before any later time reaches back to: where the
 * newest of the whole set may be later than `time`, a span counted back from it starts no later
 * than this. spanBefore alone is no bound, for a month back does not move with its end:
 * from 31 March it is 3 March, from 1 April 1 March. It moves back only where a month begins
 * (a day's count past a month's end runs into the next), so the first instant of the month
 * after `time` is the only later time to ask.
 */
export function earliestSpanBefore(time: Date, span: KeepWithin): Date {
  const nextMonth = new Date(Date.UTC(time.getUTCFullYear(), time.getUTCMonth() + 1, 1));
  return new Date(Math.min(spanBefore(time, span).getTime(), spanBefore(nextMonth, span).getTime()));
}

export interface Retained<T> {
  readonly item: T;
  /** Why it is kept, e.g. `daily 2026-06-03`, `last`, `within 7d`. */
  readonly reasons: readonly string[];
}

export interface RetentionOutcome<T> {
  /** Newest first. */
  readonly keep: readonly Retained<T>[];
  readonly remove: readonly T[];
}

/** Whether the policy keeps anything at all (a policy without rules would remove everything). */
export function hasRules(policy: RetentionPolicy): boolean {
  return RETENTION_RULES.some((rule) => (policy[rule] ?? 0) > 0) || (policy.within !== undefined && parseKeepWithin(policy.within) !== undefined);
}

/**
 * `options.partOfLarger`: the items are some of a larger set (a prune that looked at part of a
 * store), whose newest may be later than theirs; `within` then counts back as far as from any
 * later newest (earliestSpanBefore), so that every item the whole set's policy keeps is kept.
 * Every other rule keeps of a part at least what it keeps of the whole that is in the part.
 */
export function applyRetention<T>(items: readonly T[], timeOf: (item: T) => Date, policy: RetentionPolicy, options: { readonly partOfLarger?: boolean } = {}): RetentionOutcome<T> {
  const sorted = [...items].sort((a, b) => timeOf(b).getTime() - timeOf(a).getTime());
  const left = new Map<RetentionRule, number>(RETENTION_RULES.map((rule) => [rule, policy[rule] ?? 0]));
  const lastBucket = new Map<RetentionRule, string>();
  const span = policy.within === undefined ? undefined : parseKeepWithin(policy.within);
  const spanStart = options.partOfLarger === true ? earliestSpanBefore : spanBefore;
  const withinAfter = span === undefined || sorted.length === 0 ? undefined : spanStart(timeOf(sorted[0]!), span).getTime();
  const keep: Retained<T>[] = [];
  const remove: T[] = [];
  sorted.forEach((item, index) => {
    const reasons: string[] = [];
    const oldest = index === sorted.length - 1;
    for (const rule of RETENTION_RULES) {
      if (left.get(rule)! <= 0) continue;
      const bucket = BUCKET[rule](timeOf(item), index);
      const again = lastBucket.get(rule) === bucket;
      if (again && !oldest) continue;
      lastBucket.set(rule, bucket);
      left.set(rule, left.get(rule)! - 1);
      reasons.push(rule === 'last' ? 'last' : `${again ? 'oldest ' : ''}${rule} ${bucket}`);
    }
    if (withinAfter !== undefined && timeOf(item).getTime() > withinAfter) reasons.push(`within ${policy.within}`);
    if (reasons.length > 0) keep.push({ item, reasons });
    else remove.push(item);
  });
  return { keep, remove };
}
