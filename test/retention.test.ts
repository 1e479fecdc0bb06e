// Retention policies with restic `forget` semantics (catalog/retention.ts): which backups each
// rule keeps, with the reasons, on hand-made timelines whose answers are worked out by hand.

import { describe, expect, it } from 'vitest';

import { applyRetention, earliestSpanBefore, hasRules, parseKeepWithin, RETENTION_RULES, spanBefore, type RetentionPolicy } from '../shared/catalog/retention.js';

const at = (iso: string) => ({ id: iso, time: new Date(iso) });
const timeOf = (item: { time: Date }) => item.time;
const kept = (items: { id: string; time: Date }[], policy: RetentionPolicy) => {
  const outcome = applyRetention(items, timeOf, policy);
  return { keep: outcome.keep.map(({ item, reasons }) => [item.id, reasons]), remove: outcome.remove.map((item) => item.id) };
};

// Two backups a day, 2026-05-25 (Monday) to 2026-06-07 (Sunday): 28 backups, oldest last.
const TWO_A_DAY = Array.from({ length: 14 }, (_, day) => [3, 15].map((hour) => at(new Date(Date.UTC(2026, 4, 25 + day, hour)).toISOString()))).flat().reverse();

describe('applyRetention', () => {
  it('keep-last keeps the n newest, whatever order they come in', () => {
    const items = [at('2026-06-01T00:00:00Z'), at('2026-06-03T00:00:00Z'), at('2026-06-02T00:00:00Z')];
    expect(kept(items, { last: 2 })).toEqual({
      keep: [['2026-06-03T00:00:00Z', ['last']], ['2026-06-02T00:00:00Z', ['last']]],
      remove: ['2026-06-01T00:00:00Z'],
    });
  });

  it('keep-daily keeps the newest of each of the n most recent days that have a backup (UTC days)', () => {
    const result = kept(TWO_A_DAY, { daily: 3 });
    expect(result.keep).toEqual([
      ['2026-06-07T15:00:00.000Z', ['daily 2026-06-07']],
      ['2026-06-06T15:00:00.000Z', ['daily 2026-06-06']],
      ['2026-06-05T15:00:00.000Z', ['daily 2026-06-05']],
    ]);
    expect(result.remove).toHaveLength(25);
  });

  it('days with no backup do not count: keep-daily 3 reaches back past a gap', () => {
    const items = [at('2026-06-10T01:00:00Z'), at('2026-06-05T01:00:00Z'), at('2026-06-04T23:59:59Z'), at('2026-06-01T12:00:00Z'), at('2026-05-30T12:00:00Z')];
    expect(kept(items, { daily: 3 }).keep.map(([id]) => id)).toEqual(['2026-06-10T01:00:00Z', '2026-06-05T01:00:00Z', '2026-06-04T23:59:59Z']);
  });

  it('keep-weekly buckets by ISO week (Monday to Sunday), keep-monthly by month, keep-yearly by year', () => {
    const result = kept(TWO_A_DAY, { weekly: 2 });
    // Weeks 2026-W22 (May 25-31) and W23 (June 1-7).
    expect(result.keep).toEqual([
      ['2026-06-07T15:00:00.000Z', ['weekly 2026-W23']],
      ['2026-05-31T15:00:00.000Z', ['weekly 2026-W22']],
    ]);
    // Two months with a backup, 3 of 5 left: the oldest stays too (oldest monthly).
    expect(kept(TWO_A_DAY, { monthly: 5 }).keep).toEqual([
      ['2026-06-07T15:00:00.000Z', ['monthly 2026-06']],
      ['2026-05-31T15:00:00.000Z', ['monthly 2026-05']],
      ['2026-05-25T03:00:00.000Z', ['oldest monthly 2026-05']],
    ]);
    const years = [at('2026-01-01T00:00:00Z'), at('2025-12-31T23:59:59Z'), at('2025-06-01T00:00:00Z'), at('2024-02-29T00:00:00Z')];
    expect(kept(years, { yearly: 2 })).toEqual({
      keep: [['2026-01-01T00:00:00Z', ['yearly 2026']], ['2025-12-31T23:59:59Z', ['yearly 2025']]],
      remove: ['2025-06-01T00:00:00Z', '2024-02-29T00:00:00Z'],
    });
  });

  it('a backup kept by any rule stays, with every rule that keeps it as a reason', () => {
    const result = kept(TWO_A_DAY, { last: 2, daily: 2, weekly: 2 });
    expect(result.keep).toEqual([
      ['2026-06-07T15:00:00.000Z', ['last', 'daily 2026-06-07', 'weekly 2026-W23']],
      ['2026-06-07T03:00:00.000Z', ['last']],
      ['2026-06-06T15:00:00.000Z', ['daily 2026-06-06']],
      ['2026-05-31T15:00:00.000Z', ['weekly 2026-W22']],
    ]);
    expect(result.remove).toHaveLength(24);
  });

  it('a rule with some of its count left when the backups run out keeps the oldest backup too, as restic 0.16 does ("oldest daily snapshot"): a young tenant keeps its first backup', () => {
    // Three backups over two days, --keep-daily 7: both days' newest, and the oldest, the second of its day.
    const young = [at('2026-06-02T03:00:00Z'), at('2026-06-01T15:00:00Z'), at('2026-06-01T03:00:00Z')];
    expect(kept(young, { daily: 7 })).toEqual({
      keep: [
        ['2026-06-02T03:00:00Z', ['daily 2026-06-02']],
        ['2026-06-01T15:00:00Z', ['daily 2026-06-01']],
        ['2026-06-01T03:00:00Z', ['oldest daily 2026-06-01']],
      ],
      remove: [],
    });
    // --keep-yearly 2 over backups of one year alone: the newest and the first (restic issue 3624's case), not the newest alone.
    const oneYear = [at('2026-11-01T00:00:00Z'), at('2026-06-01T00:00:00Z'), at('2026-02-01T00:00:00Z')];
    expect(kept(oneYear, { yearly: 2 })).toEqual({
      keep: [
        ['2026-11-01T00:00:00Z', ['yearly 2026']],
        ['2026-02-01T00:00:00Z', ['oldest yearly 2026']],
      ],
      remove: ['2026-06-01T00:00:00Z'],
    });
    // A rule whose count is used up before the oldest keeps nothing more: --keep-daily 3 over 14 days.
    expect(kept(TWO_A_DAY, { daily: 3 }).keep.map(([id]) => id)).not.toContain('2026-05-25T03:00:00.000Z');
    // The oldest in a bucket of its own is kept as any other; `last` never says oldest.
    expect(kept(young, { last: 5, daily: 1 }).keep.map(([, reasons]) => reasons)).toEqual([['last', 'daily 2026-06-02'], ['last'], ['last']]);
  });

  it('keeps and removes what a model of restic 0.16+ ApplyPolicy (written from its Go code: buckets by year*1e6+month*1e4+day*100+hour, ISO weeks, the oldest while counts are left, within by After) keeps and removes, on 5,000 seeded random histories and policies', () => {
    let seed = 16;
    const random = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const isoWeek = (time: Date) => {
      // The ISO year and week of a UTC date: the week holding its Thursday.
      const thursday = new Date(Date.UTC(time.getUTCFullYear(), time.getUTCMonth(), time.getUTCDate() + 3 - ((time.getUTCDay() + 6) % 7)));
      const firstThursday = new Date(Date.UTC(thursday.getUTCFullYear(), 0, 4));
      const week = 1 + Math.round((thursday.getTime() - firstThursday.getTime()) / 86_400_000 / 7 - (3 - ((firstThursday.getUTCDay() + 6) % 7)) / 7);
      return thursday.getUTCFullYear() * 100 + week;
    };
    const buckers: Record<(typeof RETENTION_RULES)[number], (time: Date, nr: number) => number> = {
      last: (_time, nr) => nr,
      hourly: (time) => time.getUTCFullYear() * 1_000_000 + (time.getUTCMonth() + 1) * 10_000 + time.getUTCDate() * 100 + time.getUTCHours(),
      daily: (time) => time.getUTCFullYear() * 10_000 + (time.getUTCMonth() + 1) * 100 + time.getUTCDate(),
      weekly: isoWeek,
      monthly: (time) => time.getUTCFullYear() * 100 + time.getUTCMonth() + 1,
      yearly: (time) => time.getUTCFullYear(),
    };
    const restic = (items: { id: string; time: Date }[], policy: RetentionPolicy) => {
      const list = [...items].sort((a, b) => b.time.getTime() - a.time.getTime());
      const buckets = RETENTION_RULES.map((rule) => ({ count: policy[rule] ?? 0, bucker: buckers[rule], last: -1 }));
      const within = policy.within === undefined ? undefined : spanBefore(list[0]!.time, parseKeepWithin(policy.within)!).getTime();
      const keep: string[] = [];
      list.forEach((cur, nr) => {
        let keepIt = within !== undefined && cur.time.getTime() > within;
        for (const bucket of buckets) {
          if (bucket.count <= 0) continue;
          const value = bucket.bucker(cur.time, nr);
          if (value !== bucket.last || nr === list.length - 1) {
            keepIt = true;
            bucket.last = value;
            bucket.count -= 1;
          }
        }
        if (keepIt) keep.push(cur.id);
      });
      return keep;
    };
    for (let run = 0; run < 5_000; run++) {
      const steps = [60_000, 20 * 60_000, 3_600_000, 5 * 3_600_000, 86_400_000, 4 * 86_400_000, 20 * 86_400_000, 200 * 86_400_000];
      let time = Date.UTC(2023, 0, 1) + Math.floor(random() * 3 * 365) * 86_400_000 + Math.floor(random() * 86_400) * 1000;
      const items = Array.from({ length: 1 + Math.floor(random() * 12) }, (_, index) => {
        time += Math.floor(random() * steps[Math.floor(random() * steps.length)]!);
        return { id: String(index), time: new Date(time) };
      });
      const policy: { -readonly [K in keyof RetentionPolicy]: RetentionPolicy[K] } = {};
      for (const rule of RETENTION_RULES) if (random() < 0.3) policy[rule] = 1 + Math.floor(random() * 4);
      if (random() < 0.3 || !hasRules(policy)) policy.within = ['2h', '1d', '3d', '1w', '1m', '1y'][Math.floor(random() * 6)]!;
      const ours = applyRetention(items, timeOf, policy).keep.map(({ item }) => item.id);
      expect([policy, items.map((item) => item.time.toISOString()), ours]).toEqual([policy, items.map((item) => item.time.toISOString()), restic(items, policy)]);
    }
  });

  it('hasRules says whether a policy keeps anything', () => {
    expect(hasRules({})).toBe(false);
    expect(hasRules({ daily: 0 })).toBe(false);
    expect(hasRules({ monthly: 1 })).toBe(true);
  });

  it('keep-hourly keeps the newest of each of the n most recent UTC hours that have a backup', () => {
    const items = [at('2026-06-07T15:40:00Z'), at('2026-06-07T15:10:00Z'), at('2026-06-07T14:59:59Z'), at('2026-06-07T12:00:00Z'), at('2026-06-06T23:30:00Z')];
    expect(kept(items, { hourly: 3 })).toEqual({
      keep: [
        ['2026-06-07T15:40:00Z', ['hourly 2026-06-07T15']],
        ['2026-06-07T14:59:59Z', ['hourly 2026-06-07T14']],
        ['2026-06-07T12:00:00Z', ['hourly 2026-06-07T12']],
      ],
      remove: ['2026-06-07T15:10:00Z', '2026-06-06T23:30:00Z'],
    });
  });

  it('keep-within keeps every backup made strictly after the newest one less the span (not the clock), with the other rules', () => {
    // Newest 2026-06-07T15:00: 1d reaches back to 2026-06-06T15:00, which is not within it (restic's After).
    expect(kept(TWO_A_DAY, { within: '1d' }).keep).toEqual([
      ['2026-06-07T15:00:00.000Z', ['within 1d']],
      ['2026-06-07T03:00:00.000Z', ['within 1d']],
    ]);
    expect(kept(TWO_A_DAY, { within: '36h' }).keep.map(([id]) => id)).toEqual(['2026-06-07T15:00:00.000Z', '2026-06-07T03:00:00.000Z', '2026-06-06T15:00:00.000Z']);
    expect(kept(TWO_A_DAY, { within: '1w' }).keep).toHaveLength(14);
    expect(kept(TWO_A_DAY, { within: '12h', weekly: 2 }).keep).toEqual([
      ['2026-06-07T15:00:00.000Z', ['weekly 2026-W23', 'within 12h']],
      ['2026-05-31T15:00:00.000Z', ['weekly 2026-W22']],
    ]);
    expect(kept([], { within: '7d' })).toEqual({ keep: [], remove: [] });
    expect(hasRules({ within: '7d' })).toBe(true);
    expect(hasRules({ within: '0d' })).toBe(false);
  });

  it('keep-within counts months and years by the UTC calendar, as restic (Go AddDate) does', () => {
    expect(spanBefore(new Date('2026-03-31T10:00:00Z'), parseKeepWithin('1m')!).toISOString()).toBe('2026-03-03T10:00:00.000Z');
    expect(spanBefore(new Date('2028-02-29T00:00:00Z'), parseKeepWithin('1y')!).toISOString()).toBe('2027-03-01T00:00:00.000Z');
    expect(spanBefore(new Date('2026-01-01T01:00:00Z'), parseKeepWithin('1y2m3d4h')!).toISOString()).toBe('2024-10-28T21:00:00.000Z');
    expect(spanBefore(new Date('2026-06-07T00:00:00Z'), parseKeepWithin('2w')!).toISOString()).toBe('2026-05-24T00:00:00.000Z');
  });

  it('keep-within counted back from any later newest starts no earlier than earliestSpanBefore, and there exactly where a month begins', () => {
    expect(earliestSpanBefore(new Date('2026-03-31T10:00:00Z'), parseKeepWithin('1m')!).toISOString()).toBe('2026-03-01T00:00:00.000Z');
    expect(earliestSpanBefore(new Date('2026-06-07T00:00:00Z'), parseKeepWithin('2w')!).toISOString()).toBe('2026-05-24T00:00:00.000Z');
    // Every hour of 2026-2028 (the spans' steps fall on whole hours): the least start from it or any later hour.
    const hours = Array.from({ length: 3 * 366 * 24 }, (_, hour) => new Date(Date.UTC(2026, 0, 1) + hour * 3_600_000));
    for (const text of ['1m', '1y', '1m3d', '2m', '1y1m', '13m5h', '36h']) {
      const span = parseKeepWithin(text)!;
      const starts = hours.map((time) => spanBefore(time, span).getTime());
      for (let index = starts.length - 2; index >= 0; index--) starts[index] = Math.min(starts[index]!, starts[index + 1]!);
      const last = hours.findIndex((time) => time.getTime() >= Date.UTC(2028, 10, 1));
      const wrong = hours.slice(0, last).filter((time, index) => earliestSpanBefore(time, span).getTime() !== starts[index]);
      expect([text, wrong.slice(0, 3)]).toEqual([text, []]);
    }
  });

  it('judged over any part of a set (partOfLarger), keeps every item of the part that the whole set keeps, for every combination of rules, the within spans crossing month ends (a seeded search of 8,000 cases)', () => {
    let seed = 47;
    const random = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const spans = ['1m', '2m', '1y', '1y1m', '3d', '1m3d', '10h', '1w', '1m1w2d5h', '13m'];
    let removedButKept = 0;
    for (let run = 0; run < 8_000; run++) {
      const month = Math.floor(random() * 24);
      // Half spread over hours to years; half around a month's end (its first days, its last days, the first hours of the next):
      // where a span in months counted back from a newest the part does not hold starts earlier than from the part's newest.
      const around =
        run % 2 === 0
          ? [[Date.UTC(2024, month, 1), [3_600_000, 86_400_000, 7 * 86_400_000, 40 * 86_400_000, 400 * 86_400_000][Math.floor(random() * 5)]! * 3]]
          : [[Date.UTC(2024, month, 1), 4 * 86_400_000], [Date.UTC(2024, month + 1, 1) - 3 * 86_400_000, 3 * 86_400_000], [Date.UTC(2024, month + 1, 1), 12 * 3_600_000]];
      const items = Array.from({ length: 1 + Math.floor(random() * 10) }, (_, index) => {
        const [from, width] = around[Math.floor(random() * around.length)]! as [number, number];
        return { id: String(index), time: new Date(from + Math.floor(random() * width)) };
      });
      const policy: { -readonly [K in keyof RetentionPolicy]: RetentionPolicy[K] } = {};
      for (const rule of ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const) if (random() < (run % 2 === 0 ? 0.3 : 0.1)) policy[rule] = 1 + Math.floor(random() * 3);
      if (run % 2 === 1) policy.within = ['1m', '13m', '1y1m', '1m3d'][Math.floor(random() * 4)]!;
      else if (random() < 0.6 || !hasRules(policy)) policy.within = spans[Math.floor(random() * spans.length)]!;
      const wholeKeeps = new Set(applyRetention(items, timeOf, policy).keep.map(({ item }) => item));
      const part = items.filter(() => random() < 0.5);
      removedButKept += applyRetention(part, timeOf, policy, { partOfLarger: true }).remove.filter((item) => wholeKeeps.has(item)).length;
    }
    expect(removedButKept).toBe(0);
  });

  it.each(['', '7', '0d', '0y0h', 'd7', '7days', '7D', '1h1d', '1d1d', '-1d', '1.5d', ' 7d', '7d ', '1001y', '99999999999999999999h'])('keep-within refuses %j', (text) => {
    expect(parseKeepWithin(text)).toBeUndefined();
  });
});
