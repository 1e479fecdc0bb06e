// Unix cron (5 fields, as in a crontab) → EventBridge's `cron(...)` (6 fields; the syntax
// of EventBridge rules and of EventBridge Scheduler, which adds a time zone), for
// `openclaw cron add`. Pure: no SDK, no clock unless asked for.
//
// The expression is first validated by cron-parser (ranges, names, steps, impossible dates
// such as "30 2"), whose parsed value sets are then written out in the syntax EventBridge
// accepts for each field:
//   minutes, hours, month        `*`, `a/n` (a step running to the field's end), `a-b`, lists
//   day of month                 the same, plus `L` (last day)
//   day of week                  names SUN-SAT, `MON-FRI`, lists (EventBridge allows no step
//                                here), `nL` (last such weekday), `n#k` (k-th such weekday)
// Unix days of week are 0-7 with 0 and 7 = Sunday; EventBridge's are 1-7 with 1 = Sunday.
//
// Days follow Vixie cron / cronie, the system cron being replaced: when both day fields are
// restricted a job runs on days matching EITHER; when one of them starts with `*` (as in
// `*/2`), only days matching BOTH. EventBridge needs one of the two to be `?`, so a schedule
// is refused when both really restrict the day; the message says how to split it in two.
// Also refused, with a reason: seconds (6 fields), `@reboot`, cron-parser's hashed `H`
// values, `L`/`#` inside lists, and expressions longer than EventBridge's 256 characters.

import { CronExpressionParser, type CronExpression } from 'cron-parser';

import { CronScheduleError } from '../errors.js';
import { quotedValue } from '../format.js';

export interface ConvertedSchedule {
  /** The schedule as given, whitespace collapsed (macros kept as written). */
  readonly schedule: string;
  /** For PutRule's ScheduleExpression, e.g. `cron(0 3 * * ? *)`. */
  readonly expression: string;
  /** A 5-field Unix expression with exactly the EventBridge rule's meaning (for previews). */
  readonly canonical: string;
}

/** Predefined schedules of Vixie cron, as 5 fields. */
const MACROS: Readonly<Record<string, string>> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

const DAY_NAMES = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] as const;

/** EventBridge's limit on a rule's ScheduleExpression. */
export const MAX_SCHEDULE_EXPRESSION_LENGTH = 256;

const FIELD_NAMES = ['minute', 'hour', 'day of month', 'month', 'day of week'] as const;

export function toEventBridgeCron(input: string): ConvertedSchedule {
  const schedule = input.trim().split(/\s+/).join(' ');
  if (schedule === '') throw new CronScheduleError('the schedule is empty: give 5 fields, e.g. "0 3 * * *" (03:00 UTC every day)');
  const unix = expandMacro(schedule);
  const fields = unix.split(' ');
  if (fields.length === 6 || fields.length === 7) {
    throw new CronScheduleError(
      `schedule ${quotedValue(schedule)} has ${fields.length} fields: EventBridge has no seconds field; give the 5 Unix fields ` +
        '(minute hour day-of-month month day-of-week)',
    );
  }
  if (fields.length !== 5) {
    throw new CronScheduleError(
      `schedule ${quotedValue(schedule)} has ${fields.length} field${fields.length === 1 ? '' : 's'}: expected 5 ` +
        '(minute hour day-of-month month day-of-week), e.g. "0 3 * * *"',
    );
  }
  fields.forEach((field, index) => {
    if (/(^|[,/-])H/i.test(field)) {
      throw new CronScheduleError(`schedule "${schedule}": hashed "H" values (${FIELD_NAMES[index]} "${field}") are not Unix cron; give a fixed value`);
    }
  });

  const { parsed, parsedFields } = parseUnix(schedule, fields);
  const [rawMinute, rawHour, rawDom, rawMonth, rawDow] = fields as [string, string, string, string, string];
  const { minute, hour, dayOfMonth, month, dayOfWeek } = parsed.fields;

  const minutes = numericField(minute.values, 0, 59);
  const hours = numericField(hour.values, 0, 23);
  const months = numericField(month.values, 1, 12);
  const dom = dayOfMonthField(schedule, dayOfMonth.values);
  const dow = dayOfWeekField(schedule, dayOfWeek.values, dayOfWeek.nthDay);

  // Vixie cron: a day field starting with "*" makes the two day fields AND, else they OR.
  const starred = /^[*?]/.test(rawDom) || /^[*?]/.test(rawDow);
  let ebDom: string;
  let ebDow: string;
  let unixDom: string;
  let unixDow: string;
  if (starred ? dom.full && dow.full : dom.full || dow.full) {
    [ebDom, ebDow, unixDom, unixDow] = ['*', '?', '*', '*'];
  } else if (starred && dow.full) {
    [ebDom, ebDow, unixDom, unixDow] = [dom.expression, '?', rawDom, '*'];
  } else if (starred && dom.full) {
    [ebDom, ebDow, unixDom, unixDow] = ['?', dow.expression, '*', rawDow];
  } else if (starred) {
    throw new CronScheduleError(
      `schedule "${schedule}": with a day field starting with "*", cron runs only on days matching both ` +
        `the day of month "${rawDom}" and the day of week "${rawDow}"; EventBridge cannot combine the two ` +
        '(one of them must be "?"): restrict only one of them',
    );
  } else {
    throw new CronScheduleError(
      `schedule "${schedule}": Unix cron runs on days matching either the day of month "${rawDom}" or the day of week ` +
        `"${rawDow}"; EventBridge cannot combine the two (one of them must be "?"): add two crons, ` +
        `"${rawMinute} ${rawHour} ${rawDom} ${rawMonth} *" and "${rawMinute} ${rawHour} * ${rawMonth} ${rawDow}"`,
    );
  }

  const expression = `cron(${minutes.expression} ${hours.expression} ${ebDom} ${months.expression} ${ebDow} *)`;
  if (expression.length > MAX_SCHEDULE_EXPRESSION_LENGTH) {
    throw new CronScheduleError(
      `schedule "${schedule}" becomes ${expression.length} characters in EventBridge syntax, more than its limit of ` +
        `${MAX_SCHEDULE_EXPRESSION_LENGTH}: use ranges or steps instead of long lists`,
    );
  }
  // cron-parser reads the canonical form back for previews: overlapping items as their union.
  const canonical = [parsedFields[0], parsedFields[1], unixDom === '*' ? '*' : parsedFields[2], parsedFields[3], unixDow === '*' ? '*' : parsedFields[4]].join(' ');
  return { schedule, expression, canonical };
}

/**
 * The next `count` times the converted schedule fires after `from`, its fields read in
 * `timeZone` (default UTC), as EventBridge Scheduler fires it across daylight saving time:
 * a time the clocks skip does not run that day (cron-parser would move it an hour on), and a
 * time the clocks repeat runs once.
 */
export function nextRuns(converted: ConvertedSchedule, count: number, from: Date = new Date(), timeZone = 'UTC'): Date[] {
  const expression = CronExpressionParser.parse(converted.canonical, { tz: timeZone, currentDate: from });
  const { minute, hour } = expression.fields;
  const wallClock = wallClockIn(timeZone);
  const runs: Date[] = [];
  let previous: string | undefined;
  // Each skipped or repeated run costs one more step; a year of hourly runs has few of them.
  for (let step = 0; runs.length < count && step < count + 100 && expression.hasNext(); step++) {
    const run = expression.next().toDate();
    const local = wallClock(run);
    if (local === previous) continue;
    previous = local;
    const [localHour, localMinute] = local.slice(11).split(':').map(Number);
    if ((hour.values as readonly number[]).includes(localHour!) && (minute.values as readonly number[]).includes(localMinute!)) runs.push(run);
  }
  return runs;
}

/**
 * The first day within a year after `from` on which the clocks of `timeZone` skip a time the
 * schedule fires at (`2027-03-28 02:30`, local), which EventBridge Scheduler then does not
 * run; undefined when none does.
 */
export function firstRunSkippedByClockChange(converted: ConvertedSchedule, timeZone: string, from: Date = new Date()): string | undefined {
  const wallClock = wallClockIn(timeZone);
  const offsetMinutes = (time: number) => {
    const wall = wallClock(new Date(time));
    return (Date.parse(`${wall.replace(' ', 'T')}:00Z`) - Math.floor(time / 60_000) * 60_000) / 60_000;
  };
  const HOUR = 3_600_000;
  const start = Math.floor(from.getTime() / HOUR) * HOUR;
  // Read the wall clock as if it were UTC: the skipped local times are [before the jump, after it).
  const asUtc = CronExpressionParser.parse(converted.canonical, { tz: 'UTC', currentDate: new Date(0) });
  for (let time = start; time < start + 366 * 24 * HOUR; time += HOUR) {
    const [before, after] = [offsetMinutes(time), offsetMinutes(time + HOUR)];
    if (after <= before) continue;
    // The change lies within this hour: find its minute.
    let change = time;
    while (offsetMinutes(change) === before) change += 60_000;
    const gapStart = change + before * 60_000;
    const gapEnd = change + after * 60_000;
    asUtc.reset(new Date(gapStart - 1));
    const run = asUtc.next().toDate();
    if (run.getTime() < gapEnd) return run.toISOString().slice(0, 16).replace('T', ' ');
  }
  return undefined;
}

/** `YYYY-MM-DD HH:MM` of an instant in a time zone. */
function wallClockIn(timeZone: string): (date: Date) => string {
  const format = new Intl.DateTimeFormat('sv-SE', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  return (date) => format.format(date);
}

/**
 * Validates a schedule for a local crontab line (Vixie cron: 5 fields or a macro, `@reboot`
 * included); returns it with whitespace collapsed.
 */
export function validateUnixSchedule(input: string): string {
  const schedule = input.trim().split(/\s+/).join(' ');
  if (schedule.startsWith('@') && schedule !== schedule.toLowerCase()) {
    throw new CronScheduleError(`schedule "${schedule}": cron's macros are lower case (${schedule.toLowerCase()}): a crontab refuses it`);
  }
  if (schedule === '@reboot') return schedule;
  if (schedule === '') throw new CronScheduleError('the schedule is empty: give 5 fields, e.g. "0 3 * * *" (03:00 every day, local time), or a macro such as @daily');
  const unix = expandMacro(schedule);
  const fields = unix.split(' ');
  if (fields.length !== 5) {
    throw new CronScheduleError(`schedule ${quotedValue(schedule)} has ${fields.length} field${fields.length === 1 ? '' : 's'}: expected 5 (minute hour day-of-month month day-of-week)`);
  }
  if (fields.some((field) => /(^|[,/-])H/i.test(field))) throw new CronScheduleError(`schedule "${schedule}": hashed "H" values are not Unix cron`);
  parseUnix(schedule, fields);
  const extension = quartzExtension(fields);
  if (extension !== undefined) {
    throw new CronScheduleError(`schedule "${schedule}": ${extension} is not Unix cron: a crontab refuses it (EventBridge takes it: cron add --stack)`);
  }
  return schedule;
}

/** A schedule's times of day and which days it runs on, read as cron reads its fields. */
export interface ScheduleShape {
  /** Minutes of the hour, ascending. */
  readonly minutes: readonly number[];
  /** Hours of the day, ascending. */
  readonly hours: readonly number[];
  /** Whether it runs on that calendar day (month 1-12, weekday 0 = Sunday). */
  runsOn(year: number, month: number, day: number, weekday: number): boolean;
}

/**
 * The shape of a 5-field schedule or macro (not `@reboot`): Vixie cron's days (both day
 * fields restricted: either matches; one starting with `*`: both), with `L`, `nL` and `n#k`
 * as EventBridge reads them, so that the canonical form of a converted schedule (whose other
 * day field is `*`) reads as Scheduler runs it.
 */
export function scheduleShape(input: string): ScheduleShape {
  const schedule = input.trim().split(/\s+/).join(' ');
  const fields = expandMacro(schedule).split(' ');
  if (fields.length !== 5) throw new CronScheduleError(`schedule ${quotedValue(schedule)} has ${fields.length} fields: expected 5 (minute hour day-of-month month day-of-week)`);
  const { parsed } = parseUnix(schedule, fields);
  const { minute, hour, dayOfMonth, month, dayOfWeek } = parsed.fields;
  const numbers = (values: readonly (number | string)[]) => [...new Set(values.filter((value): value is number => typeof value === 'number'))].sort((a, b) => a - b);
  const months = new Set(numbers(month.values));
  const dom = new Set(numbers(dayOfMonth.values));
  const lastDayOfMonth = dayOfMonth.values.includes('L');
  const dow = new Set(numbers(dayOfWeek.values).map((day) => day % 7));
  const lastWeekday = (dayOfWeek.values as readonly (number | string)[]).find((value) => typeof value === 'string') as string | undefined;
  const nth = dayOfWeek.nthDay;
  const starred = /^[*?]/.test(fields[2]!) || /^[*?]/.test(fields[4]!);
  return {
    minutes: numbers(minute.values),
    hours: numbers(hour.values),
    runsOn(year, monthOfYear, day, weekday) {
      if (!months.has(monthOfYear)) return false;
      const last = new Date(Date.UTC(year, monthOfYear, 0)).getUTCDate();
      const domMatches = dom.has(day) || (lastDayOfMonth && day === last);
      const dowMatches =
        lastWeekday !== undefined ? weekday === Number.parseInt(lastWeekday, 10) % 7 && day + 7 > last : dow.has(weekday) && (nth === 0 || Math.ceil(day / 7) === nth);
      return starred ? domMatches && dowMatches : domMatches || dowMatches;
    },
  };
}

/** The highest value of each of the five fields (Vixie cron's ranges). */
const FIELD_HIGH = ['59', '23', '31', '12', '7'] as const;

/** The first EventBridge (Quartz) extension cron-parser accepts and Vixie cron refuses: `?`, `L`, `nL`, `n#k`, and a step after one value (`5/15`). */
function quartzExtension(fields: readonly string[]): string | undefined {
  for (const [index, field] of fields.entries()) {
    for (const item of field.split(',')) {
      const stepAfterOneValue = /^([^*/-]+)\/(.+)$/.exec(item);
      if (stepAfterOneValue !== null) return `"${item}" (a step needs a range: ${stepAfterOneValue[1]}-${FIELD_HIGH[index]}/${stepAfterOneValue[2]})`;
      if (item.includes('?')) return '"?" (no specific value)';
      if (item.includes('#')) return `"${item}" (n-th weekday of the month)`;
      if (index === 2 && /^L/i.test(item)) return `"${item}" (last day of the month)`;
      if (index === 4 && /^\d+L$/i.test(item)) return `"${item}" (last weekday of the month)`;
    }
  }
  return undefined;
}

/**
 * cron-parser, which refuses overlapping list items ("1-5,3-7", "0,7" in the day of week)
 * that cron accepts: each such field is then written as the union of its items, each item
 * validated on its own by cron-parser, and the whole expression parsed again. Returns the
 * fields as cron-parser accepted them.
 */
function parseUnix(schedule: string, fields: readonly string[]): { parsed: CronExpression; parsedFields: readonly string[] } {
  const parse = (text: string) => CronExpressionParser.parse(text, { tz: 'UTC' });
  assertUpwardRanges(schedule, fields);
  try {
    try {
      return { parsed: parse(fields.join(' ')), parsedFields: fields };
    } catch (error) {
      if (!/duplicate values/i.test((error as Error).message)) throw error;
      const parsedFields = fields.map((field, index) => unionOfItems(field, index, parse));
      return { parsed: parse(parsedFields.join(' ')), parsedFields };
    }
  } catch (error) {
    throw refusalNamingTheField(schedule, fields, parse, (error as Error).message);
  }
}

/** What each field takes, for a refusal that names the field. */
const FIELD_VALUES = ['0-59', '0-23', '1-31', '1-12 or jan-dec', '0-7 (0 and 7 are Sunday) or sun-sat'] as const;

/**
 * cron-parser's refusal in our words: the field at fault and what it takes (its own text,
 * "Constraint error, got value 61 expected range 0-59", names neither), or, when every field
 * is valid alone, that the days named never come in the months named ("30 2").
 */
function refusalNamingTheField(schedule: string, fields: readonly string[], parse: (text: string) => CronExpression, parserMessage: string): CronScheduleError {
  const validAlone = (item: string, index: number): boolean => {
    try {
      parse(FIELD_KEYS.map((_, position) => (position === index ? item : '*')).join(' '));
      return true;
    } catch (error) {
      // cron-parser refuses overlapping items ("1-5,3-7") that cron takes: judge each item.
      return /duplicate values/i.test((error as Error).message) && item.split(',').every((part) => validAlone(part, index));
    }
  };
  const index = fields.findIndex((field, position) => !validAlone(field, position));
  if (index === -1) {
    if (/day of month/i.test(parserMessage)) {
      return new CronScheduleError(
        `invalid schedule "${schedule}": it never runs: day of month "${fields[2]}" never comes in month "${fields[3]}" (February has 29 days at most; April, June, September and November 30): give a day the month has`,
      );
    }
    return new CronScheduleError(`invalid schedule "${schedule}": ${parserMessage}`);
  }
  const fault = /Constraint error, got (value|range)/.test(parserMessage) ? 'is out of range' : /cannot repeat at every 0/.test(parserMessage) ? 'steps by 0' : 'is not a cron field';
  return new CronScheduleError(
    `invalid schedule "${schedule}": the ${FIELD_NAMES[index]} "${fields[index]}" ${fault}: it takes ${FIELD_VALUES[index]}, as one value, a range a-b, a list a,b, a step */n or a-b/n, or *`,
  );
}

const MONTH_NAMES = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'] as const;

/**
 * A range that runs backwards (`sat-sun`, `mon-sun`, `22-2`): Debian's cron installs it and
 * never runs it (it does not wrap around); cron-parser's refusal ("Invalid range: 6-0,
 * min(6) > max(0)") does not say what to write instead.
 */
function assertUpwardRanges(schedule: string, fields: readonly string[]): void {
  fields.forEach((field, index) => {
    for (const item of field.split(',')) {
      const range = /^([a-z0-9]+)-([a-z0-9]+)(\/\d+)?$/i.exec(item);
      if (range === null) continue;
      const value = (text: string) => {
        const name = text.toLowerCase();
        if (index === 3 && MONTH_NAMES.includes(name as (typeof MONTH_NAMES)[number])) return MONTH_NAMES.indexOf(name as (typeof MONTH_NAMES)[number]) + 1;
        if (index === 4 && DAY_NAMES.includes(name.toUpperCase() as (typeof DAY_NAMES)[number])) return DAY_NAMES.indexOf(name.toUpperCase() as (typeof DAY_NAMES)[number]);
        return /^\d+$/.test(text) ? Number(text) : Number.NaN;
      };
      const [from, to] = [value(range[1]!), value(range[2]!)];
      if (!(from > to)) continue;
      const step = range[3] ?? '';
      // A day of week from Sunday as 7 (7-1) starts the week: 0-1, not 7-6,0-1 (which runs backwards too).
      const instead =
        index === 4 && from === 7
          ? `0-${to}${step} (Sunday is 0 too)`
          : index === 4 && to === 0
            ? `${from}-7${step} (Sunday is 7 too)`
            : `${from}-${index === 4 ? 6 : FIELD_HIGH[index]}${step},${index === 2 || index === 3 ? 1 : 0}-${to}${step} (two ranges)`;
      throw new CronScheduleError(
        `schedule "${schedule}": the ${FIELD_NAMES[index]} range "${item}" runs backwards (${from}-${to}); cron does not wrap around (Debian's installs it and never runs it): write ${instead}`,
      );
    }
  });
}

const FIELD_KEYS = ['minute', 'hour', 'dayOfMonth', 'month', 'dayOfWeek'] as const;

function unionOfItems(field: string, index: number, parse: (text: string) => CronExpression): string {
  const items = field.split(',');
  // `L` (last) and `#` (n-th weekday) items; not the "l" of a month name such as JUL.
  if (items.length < 2 || items.some((item) => /#|(^|\d)L$/i.test(item))) return field;
  const values = new Set<number>();
  for (const item of items) {
    const alone = FIELD_KEYS.map((_, position) => (position === index ? item : '*')).join(' ');
    for (const value of parse(alone).fields[FIELD_KEYS[index]!].values) values.add(index === 4 ? Number(value) % 7 : Number(value));
  }
  return [...values].sort((a, b) => a - b).join(',');
}

function expandMacro(schedule: string): string {
  if (!schedule.startsWith('@')) return schedule;
  const macro = schedule.toLowerCase();
  if (macro === '@reboot') {
    throw new CronScheduleError('@reboot has no EventBridge equivalent: rules run on a schedule, not when something starts');
  }
  const expanded = MACROS[macro];
  if (expanded === undefined) {
    throw new CronScheduleError(`unknown schedule ${JSON.stringify(schedule)}: use 5 fields or one of ${Object.keys(MACROS).join(', ')}`);
  }
  return expanded;
}

interface Field {
  readonly expression: string;
  /** Every value of the field's range is included. */
  readonly full: boolean;
}

/** Writes a set of numbers as `*`, `a/n` (a step to the end), or ranges and single values. */
function numericField(values: readonly (number | string)[], min: number, max: number): Field {
  const set = [...new Set(values.filter((value): value is number => typeof value === 'number'))].sort((a, b) => a - b);
  if (set.length === max - min + 1) return { expression: '*', full: true };
  return { expression: compress(set, max, String), full: false };
}

function dayOfMonthField(schedule: string, values: readonly (number | string)[]): Field {
  if (values.includes('L')) {
    if (values.length !== 1) throw new CronScheduleError(`schedule "${schedule}": "L" (last day of the month) must stand alone in the day of month for EventBridge`);
    return { expression: 'L', full: false };
  }
  return numericField(values, 1, 31);
}

function dayOfWeekField(schedule: string, values: readonly (number | string)[], nth: number): Field {
  const last = values.filter((value): value is string => typeof value === 'string');
  if (last.length > 0) {
    if (values.length !== 1) throw new CronScheduleError(`schedule "${schedule}": "L" (last weekday of the month) must stand alone in the day of week for EventBridge`);
    const day = Number.parseInt(last[0]!, 10) % 7;
    return { expression: `${day + 1}L`, full: false };
  }
  // Unix 0 and 7 are both Sunday.
  const days = [...new Set((values as number[]).map((value) => value % 7))].sort((a, b) => a - b);
  if (nth > 0) {
    if (days.length !== 1) throw new CronScheduleError(`schedule "${schedule}": "#" (n-th weekday of the month) must stand alone in the day of week for EventBridge`);
    return { expression: `${days[0]! + 1}#${nth}`, full: false };
  }
  if (days.length === 7) return { expression: '*', full: true };
  // No steps in EventBridge's day of week: write every day out, by name.
  return { expression: compress(days, Number.POSITIVE_INFINITY, (day) => DAY_NAMES[day]!), full: false };
}

/**
 * Sorted distinct values → EventBridge text. An arithmetic progression of three or more that
 * runs to the field's end (what `*\/n` and `a/n` produce) is `a/n`; anything else is runs of three or
 * more consecutive values as `a-b` and the rest listed.
 */
function compress(values: readonly number[], max: number, name: (value: number) => string): string {
  if (values.length >= 3) {
    const step = values[1]! - values[0]!;
    const progression = step > 1 && values.every((value, index) => index === 0 || value - values[index - 1]! === step);
    if (progression && values[values.length - 1]! + step > max) return `${name(values[0]!)}/${step}`;
  }
  const parts: string[] = [];
  for (let start = 0; start < values.length; ) {
    let end = start;
    while (end + 1 < values.length && values[end + 1] === values[end]! + 1) end++;
    if (end - start >= 2) parts.push(`${name(values[start]!)}-${name(values[end]!)}`);
    else for (let index = start; index <= end; index++) parts.push(name(values[index]!));
    start = end + 1;
  }
  return parts.join(',');
}
