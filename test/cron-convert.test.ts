// shared/schedule/cron-schedule.ts: Unix 5-field cron → EventBridge cron(...). A table of conversions and of
// refusals, then an oracle check: the times an independent EventBridge evaluator (below)
// derives from the output must be the times cron-parser derives from the input.

import { CronExpressionParser } from 'cron-parser';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { CronScheduleError } from '../shared/errors.js';
import { firstRunSkippedByClockChange, nextRuns, toEventBridgeCron, validateUnixSchedule } from '../shared/schedule/cron-schedule.js';

const CONVERSIONS: ReadonlyArray<readonly [string, string]> = [
  ['0 3 * * *', 'cron(0 3 * * ? *)'],
  ['  0   3 * *  * ', 'cron(0 3 * * ? *)'],
  ['* * * * *', 'cron(* * * * ? *)'],
  ['*/15 * * * *', 'cron(0/15 * * * ? *)'],
  ['5/10 * * * *', 'cron(5/10 * * * ? *)'],
  ['0-30/10 * * * *', 'cron(0,10,20,30 * * * ? *)'],
  ['0 */6 * * *', 'cron(0 0/6 * * ? *)'],
  ['0 9-17 * * *', 'cron(0 9-17 * * ? *)'],
  ['0 8,12 * * *', 'cron(0 8,12 * * ? *)'],
  ['0,1,2,3,10 0 * * *', 'cron(0-3,10 0 * * ? *)'],
  ['0-59 0-23 1-31 1-12 *', 'cron(* * * * ? *)'],
  // Day of month restricted: day of week becomes "?".
  ['30 2 1 * *', 'cron(30 2 1 * ? *)'],
  ['0 0 1,15 * *', 'cron(0 0 1,15 * ? *)'],
  ['0 3 */2 * *', 'cron(0 3 1/2 * ? *)'],
  ['0 0 L * *', 'cron(0 0 L * ? *)'],
  // Day of week restricted: day of month becomes "?"; Unix 0 and 7 = Sunday = EventBridge 1.
  ['0 3 * * 0', 'cron(0 3 ? * SUN *)'],
  ['0 3 * * 7', 'cron(0 3 ? * SUN *)'],
  ['0 3 * * 1-5', 'cron(0 3 ? * MON-FRI *)'],
  ['0 3 * * mon-fri', 'cron(0 3 ? * MON-FRI *)'],
  ['0 3 * * 0,6', 'cron(0 3 ? * SUN,SAT *)'],
  ['0 3 * * 6,7', 'cron(0 3 ? * SUN,SAT *)'],
  ['0 3 * * 5-7', 'cron(0 3 ? * SUN,FRI,SAT *)'],
  ['0 3 * * */2', 'cron(0 3 ? * SUN,TUE,THU,SAT *)'],
  ['0 3 * * 1-7', 'cron(0 3 * * ? *)'],
  ['0 0 * * 5L', 'cron(0 0 ? * 6L *)'],
  ['0 0 * * 1#3', 'cron(0 0 ? * 2#3 *)'],
  ['0 0 * * 0#1', 'cron(0 0 ? * 1#1 *)'],
  // Months: numbers, names, steps.
  ['0 0 1 JAN,JUL *', 'cron(0 0 1 1,7 ? *)'],
  ['0 0 1 */3 *', 'cron(0 0 1 1/3 ? *)'],
  ['0 0 * jan-mar/2 *', 'cron(0 0 * 1,3 ? *)'],
  ['0 0 1 1-12/6 *', 'cron(0 0 1 1,7 ? *)'],
  // Overlapping items, which cron accepts and cron-parser alone would not.
  ['1-5,3-7 * * * *', 'cron(1-7 * * * ? *)'],
  ['0 3 * * 0,7', 'cron(0 3 ? * SUN *)'],
  ['0 3 * * 7,0-2', 'cron(0 3 ? * SUN-TUE *)'],
  ['0 0 * 6-8 1-5', 'cron(0 0 ? 6-8 MON-FRI *)'],
  ['0 0 1 jul,7 *', 'cron(0 0 1 7 ? *)'],
  // Vixie cron: both restricted but one covers every day (OR) → every day.
  ['0 0 1-31 * 1', 'cron(0 0 * * ? *)'],
  ['0 0 15 * 0-6', 'cron(0 0 * * ? *)'],
  // Vixie cron: a day field starting with "*" ANDs the two; a full other field drops out.
  ['0 0 */2 * 0-7', 'cron(0 0 1/2 * ? *)'],
  ['0 0 */1 * 1', 'cron(0 0 ? * MON *)'],
  ['0 0 ? * 1', 'cron(0 0 ? * MON *)'],
  // Macros.
  ['@daily', 'cron(0 0 * * ? *)'],
  ['@midnight', 'cron(0 0 * * ? *)'],
  ['@hourly', 'cron(0 * * * ? *)'],
  ['@weekly', 'cron(0 0 ? * SUN *)'],
  ['@monthly', 'cron(0 0 1 * ? *)'],
  ['@YEARLY', 'cron(0 0 1 1 ? *)'],
];

// cron-parser is no oracle for these: it ORs the day fields whenever neither is a bare "*",
// where Vixie cron (what a crontab runs) ANDs them when one starts with "*"; and it refuses
// overlapping items.
const VIXIE_ONLY = new Set(['0 0 */2 * 0-7', '0 0 */1 * 1', '1-5,3-7 * * * *', '0 3 * * 0,7', '0 3 * * 7,0-2', '0 0 1 jul,7 *']);
const MACROS: Record<string, string> = { '@midnight': '0 0 * * *' };

const REFUSALS: ReadonlyArray<readonly [string, RegExp]> = [
  ['', /empty/],
  ['0 3 * *', /4 fields: expected 5/],
  ['0 0 3 * * *', /6 fields: EventBridge has no seconds field/],
  ['0 0 3 * * * 2026', /7 fields: EventBridge has no seconds field/],
  ['0 3 1 * 1', /either the day of month "1" or the day of week "1".*two crons, "0 3 1 \* \*" and "0 3 \* \* 1"/],
  ['0 3 1,15 * MON-FRI', /either the day of month/],
  ['0 3 L * 5', /either the day of month/],
  ['0 3 */2 * 1', /days matching both .*restrict only one/],
  ['0 3 1 * */2', /days matching both/],
  ['61 * * * *', /^invalid schedule "61 \* \* \* \*": the minute "61" is out of range: it takes 0-59, as one value, a range a-b/],
  ['0 24 * * *', /^invalid schedule "0 24 \* \* \*": the hour "24" is out of range: it takes 0-23,/],
  ['0 0 0 * *', /^invalid schedule "0 0 0 \* \*": the day of month "0" is out of range: it takes 1-31,/],
  ['0 0 1,32 * *', /^invalid schedule "0 0 1,32 \* \*": the day of month "1,32" is out of range: it takes 1-31,/],
  ['0 0 * 13 *', /^invalid schedule "0 0 \* 13 \*": the month "13" is out of range: it takes 1-12 or jan-dec,/],
  ['0 0 * * 8', /^invalid schedule "0 0 \* \* 8": the day of week "8" is out of range: it takes 0-7 \(0 and 7 are Sunday\) or sun-sat,/],
  ['1-5,3-70 * * * *', /^invalid schedule "1-5,3-70 \* \* \* \*": the minute "1-5,3-70" is out of range/],
  ['*/0 * * * *', /^invalid schedule "\*\/0 \* \* \* \*": the minute "\*\/0" steps by 0: it takes 0-59/],
  ['0 0 * * fri,sunday', /^invalid schedule "0 0 \* \* fri,sunday": the day of week "fri,sunday" is not a cron field: it takes 0-7 \(0 and 7 are Sunday\) or sun-sat/],
  ['0 0 * sept *', /^invalid schedule "0 0 \* sept \*": the month "sept" is not a cron field: it takes 1-12 or jan-dec/],
  ['0 0 30 2 *', /^invalid schedule "0 0 30 2 \*": it never runs: day of month "30" never comes in month "2" \(February has 29 days at most; April, June, September and November 30\): give a day the month has$/],
  ['0 0 31 4 *', /^invalid schedule "0 0 31 4 \*": it never runs: day of month "31" never comes in month "4"/],
  ['a b c d e', /^invalid schedule "a b c d e": the minute "a" is not a cron field: it takes 0-59/],
  ['0 0 15W * *', /invalid schedule/],
  ['0 0 LW * *', /invalid schedule/],
  ['H 3 * * *', /hashed "H" values \(minute "H"\)/],
  ['0 H(0-5) * * *', /hashed "H"/],
  ['0 0 * * 1,5L', /"L" .* must stand alone/],
  ['0 0 1,L * *', /"L" .* must stand alone|invalid schedule/],
  ['@reboot', /@reboot has no EventBridge equivalent/],
  ['@fortnightly', /unknown schedule "@fortnightly"/],
];

describe('toEventBridgeCron', () => {
  it.each(CONVERSIONS)('converts %j to %s', (unix, expected) => {
    expect(toEventBridgeCron(unix).expression).toBe(expected);
  });

  it.each(REFUSALS)('refuses %j', (unix, reason) => {
    let caught: unknown;
    try {
      toEventBridgeCron(unix);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(CronScheduleError);
    expect((caught as CronScheduleError).code).toBe('INVALID_SCHEDULE');
    expect((caught as CronScheduleError).outcome).toBe('usage');
    expect((caught as Error).message).toMatch(reason);
  });

  it('fires at the same minutes as cron-parser says the Unix schedule does', () => {
    for (const [unix] of CONVERSIONS) if (!VIXIE_ONLY.has(unix)) expectSameRuns(unix);
  });

  it('keeps that promise for generated schedules', () => {
    const value = (min: number, max: number) => fc.integer({ min, max }).map(String);
    const item = (min: number, max: number) =>
      fc.oneof(
        value(min, max),
        fc.tuple(fc.integer({ min, max }), fc.integer({ min, max })).map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`),
        fc.integer({ min: 2, max: max - min }).map((step) => `*/${step}`),
        fc.tuple(fc.integer({ min, max }), fc.integer({ min: 2, max: Math.max(2, max - min) })).map(([a, step]) => `${a}/${step}`),
        fc.tuple(fc.integer({ min, max }), fc.integer({ min, max }), fc.integer({ min: 1, max: 9 })).map(
          ([a, b, step]) => `${Math.min(a, b)}-${Math.max(a, b)}/${step}`,
        ),
      );
    const field = (min: number, max: number) => fc.oneof(fc.constant('*'), fc.array(item(min, max), { minLength: 1, maxLength: 4 }).map((items) => items.join(',')));
    // Day fields: one of them "*", the other anything (both restricted is refused above).
    const days = fc.oneof(fc.tuple(field(1, 28), fc.constant('*')), fc.tuple(fc.constant('*'), field(0, 7)));
    fc.assert(
      fc.property(field(0, 59), field(0, 23), days, field(1, 12), (minute, hour, [dom, dow], month) => {
        const unix = `${minute} ${hour} ${dom} ${month} ${dow}`;
        let converted;
        try {
          converted = toEventBridgeCron(unix);
        } catch (error) {
          // What is left to refuse here is what cron-parser finds invalid (e.g. "50-40").
          expect((error as Error).message).toMatch(/^invalid schedule/);
          return;
        }
        expect(converted.expression.length).toBeLessThanOrEqual(256);
        expectSameRuns(unix);
      }),
      { numRuns: 150, seed: 20260603 },
    );
  });

  it('previews the next runs in UTC with the rule\'s meaning', () => {
    const runs = nextRuns(toEventBridgeCron('0 3 * * 1-5'), 3, new Date('2026-06-05T12:00:00Z'));
    expect(runs.map((date) => date.toISOString())).toEqual(['2026-06-08T03:00:00.000Z', '2026-06-09T03:00:00.000Z', '2026-06-10T03:00:00.000Z']);
  });

  // `cron add` previews after creating the schedule: a preview that threw left a created schedule behind an "unexpected error".
  it('previews schedules with overlapping items, which cron-parser alone refuses', () => {
    const from = new Date('2026-06-05T12:00:00Z');
    const iso = (unix: string, count: number) => nextRuns(toEventBridgeCron(unix), count, from).map((date) => date.toISOString());
    expect(iso('0 3 * * 0,7', 2)).toEqual(['2026-06-07T03:00:00.000Z', '2026-06-14T03:00:00.000Z']);
    expect(iso('0 3 * * mon,MON', 2)).toEqual(['2026-06-08T03:00:00.000Z', '2026-06-15T03:00:00.000Z']);
    expect(iso('1-5,3-7 13 * * *', 2)).toEqual(['2026-06-05T13:01:00.000Z', '2026-06-05T13:02:00.000Z']);
    expect(iso('0 0 1-5,3-7 * *', 2)).toEqual(['2026-06-06T00:00:00.000Z', '2026-06-07T00:00:00.000Z']);
    for (const unix of CONVERSIONS.map(([schedule]) => schedule)) expect(iso(unix, 3), unix).toHaveLength(3);
  });

  // EventBridge Scheduler: a time the clocks skip is not run that day, a repeated one runs once.
  it('previews across daylight saving time as Scheduler runs it', () => {
    const local = (unix: string, from: string, zone: string, count: number) =>
      nextRuns(toEventBridgeCron(unix), count, new Date(from), zone).map((date) => date.toLocaleString('sv-SE', { timeZone: zone }).slice(0, 16));
    expect(local('30 2 * * *', '2027-03-26T12:00:00Z', 'Europe/Berlin', 3)).toEqual(['2027-03-27 02:30', '2027-03-29 02:30', '2027-03-30 02:30']);
    expect(local('30 2 * * *', '2027-03-13T12:00:00Z', 'America/New_York', 2)).toEqual(['2027-03-15 02:30', '2027-03-16 02:30']);
    expect(local('0 * * * *', '2026-10-25T00:30:00+02:00', 'Europe/Berlin', 3)).toEqual(['2026-10-25 01:00', '2026-10-25 02:00', '2026-10-25 03:00']);
    expect(local('30 1 * * *', '2026-11-01T00:00:00Z', 'America/New_York', 2)).toEqual(['2026-11-01 01:30', '2026-11-02 01:30']);
  });

  it('names the first run within a year that the zone\'s clocks skip', () => {
    const skipped = (unix: string, zone: string, from: string) => firstRunSkippedByClockChange(toEventBridgeCron(unix), zone, new Date(from));
    expect(skipped('30 2 * * *', 'Europe/Berlin', '2026-12-05T00:00:00Z')).toBe('2027-03-28 02:30');
    expect(skipped('30 2 * * 0', 'Europe/Berlin', '2026-12-05T00:00:00Z')).toBe('2027-03-28 02:30');
    expect(skipped('30 2 * * 1-5', 'Europe/Berlin', '2026-12-05T00:00:00Z')).toBeUndefined();
    expect(skipped('0 3 * * *', 'Europe/Berlin', '2026-12-05T00:00:00Z')).toBeUndefined();
    expect(skipped('*/20 * * * *', 'America/New_York', '2026-12-05T00:00:00Z')).toBe('2027-03-14 02:00');
    expect(skipped('0 0 * * *', 'America/Santiago', '2026-08-01T00:00:00Z')).toBe('2026-09-06 00:00');
    expect(skipped('15 2 * * *', 'Australia/Lord_Howe', '2026-08-01T00:00:00Z')).toBe('2026-10-04 02:15');
    expect(skipped('45 2 * * *', 'Australia/Lord_Howe', '2026-08-01T00:00:00Z')).toBeUndefined();
    expect(skipped('30 2 * * *', 'Asia/Kolkata', '2026-12-05T00:00:00Z')).toBeUndefined();
  });
});

describe('validateUnixSchedule (local crontab lines)', () => {
  it('accepts what a crontab accepts, @reboot included', () => {
    expect(validateUnixSchedule(' 0  3 * * * ')).toBe('0 3 * * *');
    expect(validateUnixSchedule('@reboot')).toBe('@reboot');
    expect(validateUnixSchedule('0 3 1 * 1')).toBe('0 3 1 * 1');
  });
  it('refuses what a crontab refuses', () => {
    expect(() => validateUnixSchedule('0 0 3 * * *')).toThrow(/expected 5/);
    expect(() => validateUnixSchedule('  ')).toThrow(/^the schedule is empty: give 5 fields, e\.g\. "0 3 \* \* \*"/);
    expect(() => validateUnixSchedule('daily')).toThrow(/^schedule "daily" has 1 field: expected 5/);
    // A long value is quoted by its start: the message stays one readable line.
    expect(() => validateUnixSchedule('0 '.repeat(300))).toThrow(/^schedule "(0 ){32}"… \(599 characters\) has 300 fields: expected 5/);
    expect(() => validateUnixSchedule('61 * * * *')).toThrow(/invalid schedule/);
    // EventBridge's extensions, which cron-parser accepts and Debian's crontab refuses ("bad day-of-month").
    for (const [schedule, what] of [['0 3 L * *', '"L" \\(last day'], ['0 3 ? * 1', '"\\?"'], ['0 3 * * 5L', '"5L"'], ['0 3 * * 1#2', '"1#2"'], ['0 3 1,L * *', '"L"'], ['5/15 * * * *', '"5/15" \\(a step needs a range: 5-59/15\\)'], ['0 1,2/6 * * *', '"2/6" \\(a step needs a range: 2-23/6\\)']] as const) {
      expect(() => validateUnixSchedule(schedule), schedule).toThrow(new RegExp(`${what}.* is not Unix cron: a crontab refuses it`));
    }
    // Debian's crontab reads macros case-sensitively ("bad minute" for @DAILY).
    expect(() => validateUnixSchedule('@DAILY')).toThrow(/"@DAILY": cron's macros are lower case \(@daily\): a crontab refuses it/);
    expect(() => validateUnixSchedule('@Reboot')).toThrow(/lower case \(@reboot\)/);
    expect(validateUnixSchedule('@daily')).toBe('@daily');
    expect(validateUnixSchedule('*/15 1-5/2 * * *')).toBe('*/15 1-5/2 * * *');
    expect(validateUnixSchedule('0 3 1 jul,JUL *')).toBe('0 3 1 jul,JUL *');
  });
  it('refuses a range that runs backwards, which Debian\'s cron installs and never runs, saying what to write', () => {
    const cases = [
      ['0 3 * * sat-sun', 'the day of week range "sat-sun" runs backwards (6-0); cron does not wrap around (Debian\'s installs it and never runs it): write 6-7 (Sunday is 7 too)'],
      ['0 3 * * mon-sun', 'write 1-7 (Sunday is 7 too)'],
      ['0 3 * * 5-1', 'write 5-6,0-1 (two ranges)'],
      ['0 22-2 * * *', 'the hour range "22-2" runs backwards (22-2); cron does not wrap around (Debian\'s installs it and never runs it): write 22-23,0-2 (two ranges)'],
      ['0 3 25-5/2 * *', 'write 25-31/2,1-5/2 (two ranges)'],
      ['0 3 1 nov-feb *', 'write 11-12,1-2 (two ranges)'],
      // Sunday as 7 starts the range: it said to write 7-6,0-1, which runs backwards too.
      ['0 3 * * 7-1', 'write 0-1 (Sunday is 0 too)'],
      ['0 3 * * 7-2/2', 'write 0-2/2 (Sunday is 0 too)'],
    ] as const;
    for (const [schedule, message] of cases) {
      expect(() => validateUnixSchedule(schedule), schedule).toThrow(message);
      expect(() => toEventBridgeCron(schedule), schedule).toThrow(message);
      // What it says to write is taken.
      let said = '';
      try {
        validateUnixSchedule(schedule);
      } catch (error) {
        said = (error as Error).message;
      }
      const [, item, instead] = /range "([^"]+)" .*: write (\S+) \(/.exec(said)!;
      const fields = schedule.split(' ');
      const rewritten = fields.map((field) => (field === item ? instead : field)).join(' ');
      expect(validateUnixSchedule(rewritten), `${schedule} -> ${rewritten}`).toBe(rewritten);
      toEventBridgeCron(rewritten);
    }
    expect(validateUnixSchedule('0 3 * * mon-fri')).toBe('0 3 * * mon-fri');
    expect(validateUnixSchedule('0 3 * jan-dec/2 *')).toBe('0 3 * jan-dec/2 *');
  });
});

// ---------------------------------------------------------------------------------------
// An independent evaluator of EventBridge cron expressions (UTC), from AWS's documentation.

const EB_DAY_NAMES = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
const EB_MONTH_NAMES = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];

function ebValue(text: string, names?: readonly string[], base = 1): number {
  const index = names?.indexOf(text.toUpperCase()) ?? -1;
  if (index >= 0) return index + base;
  if (!/^\d+$/.test(text)) throw new Error(`bad value ${text}`);
  return Number(text);
}

function ebSet(field: string, min: number, max: number, names?: readonly string[]): Set<number> {
  const set = new Set<number>();
  if (field === '*' || field === '?') {
    for (let value = min; value <= max; value++) set.add(value);
    return set;
  }
  for (const item of field.split(',')) {
    const [range, stepText] = item.split('/');
    const step = stepText === undefined ? 1 : Number(stepText);
    const [from, to] = range!.includes('-') ? range!.split('-').map((v) => ebValue(v, names)) : [ebValue(range!, names), stepText === undefined ? ebValue(range!, names) : max];
    for (let value = from!; value <= to!; value += step) set.add(value);
  }
  return set;
}

function ebMatcher(expression: string): { minutes: number[]; hours: number[]; day: (date: Date) => boolean } {
  const match = /^cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)$/.exec(expression);
  if (!match) throw new Error(`not an EventBridge cron: ${expression}`);
  const [, minute, hour, dom, month, dow, year] = match as unknown as string[];
  expect(year).toBe('*');
  expect([dom, dow].filter((field) => field === '?')).toHaveLength(1);
  const minutes = ebSet(minute!, 0, 59);
  const hours = ebSet(hour!, 0, 23);
  const months = ebSet(month!, 1, 12, EB_MONTH_NAMES);
  const lastDay = (date: Date) => new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 0)).getUTCDate();
  let dayMatches: (date: Date) => boolean;
  if (dom !== '?') {
    const days = dom === 'L' ? undefined : ebSet(dom!, 1, 31);
    dayMatches = (date) => (days === undefined ? date.getUTCDate() === lastDay(date) : days.has(date.getUTCDate()));
  } else if (/^\dL$/.test(dow!)) {
    const weekday = Number(dow![0]);
    dayMatches = (date) => date.getUTCDay() + 1 === weekday && date.getUTCDate() + 7 > lastDay(date);
  } else if (/^\d#\d$/.test(dow!)) {
    const [weekday, nth] = dow!.split('#').map(Number);
    dayMatches = (date) => date.getUTCDay() + 1 === weekday && Math.ceil(date.getUTCDate() / 7) === nth;
  } else {
    const weekdays = ebSet(dow!, 1, 7, EB_DAY_NAMES);
    dayMatches = (date) => weekdays.has(date.getUTCDay() + 1);
  }
  return {
    minutes: [...minutes].sort((a, b) => a - b),
    hours: [...hours].sort((a, b) => a - b),
    day: (date) => months.has(date.getUTCMonth() + 1) && dayMatches(date),
  };
}

/** The first `count` matching minutes after `from` (exclusive), within `days` days. */
function ebRuns(expression: string, from: Date, count: number, days: number): string[] {
  const { minutes, hours, day } = ebMatcher(expression);
  const runs: string[] = [];
  for (let index = 0; index < days && runs.length < count; index++) {
    const date = new Date(from.getTime() + index * 86_400_000);
    if (!day(date)) continue;
    for (const hour of hours) {
      for (const minute of minutes) {
        const time = date.getTime() + hour * 3_600_000 + minute * 60_000;
        if (time > from.getTime() && runs.length < count) runs.push(new Date(time).toISOString());
      }
    }
  }
  return runs;
}

function expectSameRuns(unix: string): void {
  const from = new Date('2026-01-01T00:00:00Z');
  const expression = toEventBridgeCron(unix).expression;
  const days = 800;
  const eb = ebRuns(expression, from, 40, days);
  const end = new Date(from.getTime() + days * 86_400_000);
  const input = unix.startsWith('@') ? (MACROS[unix.toLowerCase()] ?? unix.toLowerCase()) : unix;
  let parsed;
  try {
    parsed = CronExpressionParser.parse(input, { tz: 'UTC', currentDate: from, endDate: end });
  } catch (error) {
    // Overlapping items (generated "0-0,0-0"): cron-parser cannot judge those.
    if (/duplicate values/.test((error as Error).message)) return;
    throw error;
  }
  const expected: string[] = [];
  while (expected.length < 40 && parsed.hasNext()) expected.push(parsed.next().toISOString()!);
  expect(eb, `${unix} → ${expression}`).toEqual(expected);
}
