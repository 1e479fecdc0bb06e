// Whether the runs of a schedule write distinct archives. A backup never replaces an existing
// archive without `--overwrite` (locally, and on the gateway, where another run's archive is
// refused too), so a cron whose `--to` names one archive for two of its runs fails the later
// one, and every such run after it: a fixed name (`--to /b/acme.tar.zst`), a day's date
// under a schedule that runs twice a day (`0 3,15 * * *` with `$(date +%F)`), a weekday's
// name (`$(date +%a)`, a rotation that wants `--overwrite`), `$(date …)` in single quotes,
// which the shell leaves as it is. `cron add` finds such a pair before the cron is installed,
// from a sample of the runs: the first SAMPLED_RUNS of them (collisions within a day) and
// the first of each day for a year and a bit (names that come back: a weekday, a day of the
// month, a time without a date), and on until two days have runs (a yearly schedule whose day
// has passed, the 29th of February: a fixed name fails at the second). Pure, no clock but the
// `from` given.

import { CronCommandError } from '../errors.js';
import type { ScheduleShape } from './cron-schedule.js';

/** How many consecutive runs are sampled (every minute: five hours). */
export const SAMPLED_RUNS = 300;
/** How many days ahead the first run of each day is sampled (a name without the year comes back within a year). */
export const SAMPLED_DAYS = 400;
/** How far the days are sampled to find a second day with runs (29 February comes back within 8 years and a day). */
export const LAST_SAMPLED_DAY = 8 * 366 + 1;

/**
 * Runs of `shape` after `from`, read in `timeZone`: the first SAMPLED_RUNS, then the first
 * of each day up to SAMPLED_DAYS days ahead, or further (up to LAST_SAMPLED_DAY) until two
 * days have runs; ascending. A local time the clocks skip is left
 * out and one they repeat taken once, as Scheduler runs them (cron runs a skipped time just
 * after: the same day, the same names).
 */
export function sampleRuns(shape: ScheduleShape, timeZone: string, from: Date, limit = Number.POSITIVE_INFINITY): Date[] {
  const offset = offsetIn(timeZone);
  const wall = wallFields(timeZone);
  const [startYear, startMonth, startDay] = wall(from);
  const runs: Date[] = [];
  let daysWithRuns = 0;
  for (let index = 0; index <= SAMPLED_DAYS || (daysWithRuns < 2 && index <= LAST_SAMPLED_DAY); index++) {
    const date = new Date(Date.UTC(startYear, startMonth - 1, startDay + index));
    const [year, month, day] = [date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate()];
    if (!shape.runsOn(year, month, day, date.getUTCDay())) continue;
    let firstOfDay = true;
    for (const hour of shape.hours) {
      for (const minute of shape.minutes) {
        if (!firstOfDay && runs.length >= SAMPLED_RUNS) break;
        const local = Date.UTC(year, month - 1, day, hour, minute);
        // The instant whose wall clock is `local` (the earlier one when the clocks repeat it).
        const guess = local - offset(local - offset(local));
        const instant = [guess - 3_600_000, guess].find((time) => time + offset(time) === local);
        if (instant === undefined || instant <= from.getTime()) continue;
        runs.push(new Date(instant));
        if (runs.length >= limit) return runs;
        firstOfDay = false;
      }
    }
    if (!firstOfDay) daysWithRuns++;
  }
  return runs;
}

export interface RepeatedDestination {
  readonly destination: string;
  readonly first: Date;
  readonly second: Date;
}

/** The first two runs (ascending) that `destination` names the same archive for, or undefined. */
export function repeatedDestination(runs: readonly Date[], destination: (time: Date) => string): RepeatedDestination | undefined {
  const seen = new Map<string, Date>();
  for (const run of runs) {
    const name = destination(run);
    const earlier = seen.get(name);
    if (earlier !== undefined) return { destination: name, first: earlier, second: run };
    seen.set(name, run);
  }
  return undefined;
}

/**
 * Refuses (exit 2) a schedule whose `--to` names one archive for two runs, without
 * `--overwrite`: the later run would fail, the archive existing, night after night.
 * `example`: a date and time as this --to writes them (`cron add --all`'s template has no
 * shell to run `$(date …)`); `note`: how its dates are written, where the runs' zone is not it.
 */
export function assertDistinctDestinations(
  shape: ScheduleShape,
  timeZone: string,
  destination: (time: Date) => string,
  from: Date = new Date(),
  example = '$(date +%F-%H%M)',
  note = '',
): void {
  const found = repeatedDestination(sampleRuns(shape, timeZone, from), destination);
  if (found === undefined) return;
  const when = wallClockText(timeZone);
  const quoted = found.destination.includes('$(') ? ' ($(date …) in single quotes is not run: write it in double quotes or unquoted)' : '';
  throw new CronCommandError(
    `--to names the same archive, ${found.destination}, for the run at ${when(found.first)} and the one at ${when(found.second)} (${timeZone})${note}${quoted}: ` +
      'the later one would fail, the archive existing, and so would every such run after it; put the run\'s date and time in --to ' +
      `(e.g. ${example}), or give --overwrite to replace the archive each time`,
  );
}

/**
 * Refuses (exit 2) an `@reboot` schedule whose `--to` names the same archive whenever it runs
 * (no date in it, or `$(date …)` in single quotes), without `--overwrite`: the run at the
 * second boot would fail, the archive existing, and so would every one after it. A name with
 * a date is left to the boots' times, which no schedule says.
 */
export function assertChangingDestination(destination: (time: Date) => string): void {
  // Two instants that differ in every field a date format names (in any zone).
  const name = destination(new Date('2001-01-01T00:00:00Z'));
  if (name !== destination(new Date('2002-02-02T11:11:11Z'))) return;
  const quoted = name.includes('$(') ? ' ($(date …) in single quotes is not run: write it in double quotes or unquoted)' : '';
  throw new CronCommandError(
    `--to names the same archive, ${name}, at every boot (@reboot)${quoted}: the run at the second boot would fail, the archive existing, and so would every one after it; ` +
      "put the run's date and time in --to (e.g. $(date +%F-%H%M%S)), or give --overwrite to replace the archive each time",
  );
}

/**
 * The first run after `from` at which `shape` and `other` both run, as `YYYY-MM-DD HH:MM` in
 * `timeZone`, or undefined: two backups of one tenant cannot run at once (the later to start
 * finds the tenant busy and fails). Each runs at every hour it names at every minute it names,
 * so the runs they share are those of their common hours, minutes and days: found as such,
 * not among a sample of one's runs (every minute's five sampled hours missed a daily cron at
 * noon).
 */
export function firstSharedRun(shape: ScheduleShape, other: ScheduleShape, timeZone: string, from: Date): string | undefined {
  const hours = shape.hours.filter((hour) => other.hours.includes(hour));
  const minutes = shape.minutes.filter((minute) => other.minutes.includes(minute));
  if (hours.length === 0 || minutes.length === 0) return undefined;
  const both: ScheduleShape = { hours, minutes, runsOn: (...day) => shape.runsOn(...day) && other.runsOn(...day) };
  const [first] = sampleRuns(both, timeZone, from, 1);
  return first === undefined ? undefined : wallClockText(timeZone)(first);
}

/** The offset of `timeZone` from UTC at an instant, in milliseconds. */
function offsetIn(timeZone: string): (time: number) => number {
  const wall = wallFields(timeZone);
  return (time) => {
    const [year, month, day, hour, minute] = wall(new Date(time));
    return Date.UTC(year, month - 1, day, hour, minute) - Math.floor(time / 60_000) * 60_000;
  };
}

/** Year, month (1-12), day, hour and minute of an instant in `timeZone`. */
function wallFields(timeZone: string): (date: Date) => [number, number, number, number, number] {
  const format = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric' });
  return (date) => {
    const parts = format.formatToParts(date);
    const field = (type: Intl.DateTimeFormatPartTypes) => Number(parts.find((part) => part.type === type)?.value);
    return [field('year'), field('month'), field('day'), field('hour'), field('minute')];
  };
}

/** `2027-03-28 02:30`, the wall clock of an instant in `timeZone`. */
function wallClockText(timeZone: string): (date: Date) => string {
  const wall = wallFields(timeZone);
  const pad = (value: number) => String(value).padStart(2, '0');
  return (date) => {
    const [year, month, day, hour, minute] = wall(date);
    return `${year}-${pad(month)}-${pad(day)} ${pad(hour)}:${pad(minute)}`;
  };
}
