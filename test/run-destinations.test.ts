// shared/schedule/run-destinations.ts: a schedule whose --to names one archive for two runs
// is found before the cron is added (the later run would fail, the archive existing).

import { describe, expect, it } from 'vitest';

import { CronScheduleError } from '../shared/errors.js';
import { scheduleShape } from '../shared/schedule/cron-schedule.js';
import { formatDate } from '../shared/schedule/destination-template.js';
import { assertDistinctDestinations, firstSharedRun, repeatedDestination, sampleRuns } from '../shared/schedule/run-destinations.js';

const FROM = new Date('2026-12-05T18:00:00Z');
const named = (format: string, zone = 'UTC') => (time: Date) => `/b/${formatDate(format, time, zone)}.tar.zst`;
const repeated = (schedule: string, format: string, zone = 'UTC') => repeatedDestination(sampleRuns(scheduleShape(schedule), zone, FROM), named(format, zone));

describe('repeated destinations', () => {
  it('finds two runs that write one archive: a fixed name, a date under a twice-daily schedule, a weekday, a day of the month, a time without a date', () => {
    expect(repeated('0 3 * * *', 'fixed')).toMatchObject({ first: new Date('2026-12-06T03:00:00Z'), second: new Date('2026-12-07T03:00:00Z') });
    expect(repeated('0 3,15 * * *', '%F')).toMatchObject({ destination: '/b/2026-12-06.tar.zst', second: new Date('2026-12-06T15:00:00Z') });
    expect(repeated('0 3 * * *', '%a')).toMatchObject({ destination: '/b/Sun.tar.zst', second: new Date('2026-12-13T03:00:00Z') });
    expect(repeated('0 3 * * 1-5', '%u')).toMatchObject({ second: new Date('2026-12-14T03:00:00Z') });
    expect(repeated('0 3 1 * *', '%d')).toMatchObject({ second: new Date('2027-02-01T03:00:00Z') });
    expect(repeated('* * * * *', '%m%d-%H%M')).toMatchObject({ second: new Date('2027-12-06T00:00:00Z') });
    expect(repeated('*/15 * * * *', '%F-%H')).toMatchObject({ second: new Date('2026-12-05T18:30:00Z') });
  });

  it('finds them for a schedule with one run or none in the sampled year: a day that has passed this year, the 29th of February', () => {
    // Runs on 2027-12-01 and 2028-12-01 only (400 days from FROM end in January 2028): both were accepted, a fixed name too.
    expect(repeated('0 3 1 12 *', 'fixed')).toMatchObject({ first: new Date('2027-12-01T03:00:00Z'), second: new Date('2028-12-01T03:00:00Z') });
    expect(repeated('0 3 1 12 *', '%m')).toMatchObject({ destination: '/b/12.tar.zst', second: new Date('2028-12-01T03:00:00Z') });
    expect(repeated('0 3 29 2 *', 'fixed')).toMatchObject({ first: new Date('2028-02-29T03:00:00Z'), second: new Date('2032-02-29T03:00:00Z') });
    expect(repeated('0 3 29 2 *', '%F')).toBeUndefined();
    expect(repeated('0 3 1 12 *', '%Y')).toBeUndefined();
  });

  it('passes names that change with every run, across a year and the clock changes of a zone', () => {
    expect(repeated('0 3 * * *', '%F')).toBeUndefined();
    expect(repeated('*/15 * * * *', '%F-%H%M')).toBeUndefined();
    expect(repeated('0 3,15 * * *', '%F-%H')).toBeUndefined();
    expect(repeated('@weekly', '%G-W%V')).toBeUndefined();
    // 02:30 comes twice on the last Sunday of October in Berlin, once in New York's November: one run a day.
    expect(repeated('30 2 * * *', '%F', 'Europe/Berlin')).toBeUndefined();
    expect(repeated('30 1 * * *', '%F', 'America/New_York')).toBeUndefined();
    // Runs on the last Friday of the month (EventBridge's 5L, read as Scheduler reads it).
    expect(repeated('0 3 * * 5L', '%Y-%m')).toBeUndefined();
  });

  it('refuses in one line that names both runs, the zone and what to do', () => {
    expect(() => assertDistinctDestinations(scheduleShape('0 3,15 * * *'), 'UTC', named('%F'), FROM)).toThrow(
      '--to names the same archive, /b/2026-12-06.tar.zst, for the run at 2026-12-06 03:00 and the one at 2026-12-06 15:00 (UTC): the later one would fail, ' +
        'the archive existing, and so would every such run after it; put the run\'s date and time in --to (e.g. $(date +%F-%H%M)), or give --overwrite to replace the archive each time',
    );
    expect(() => assertDistinctDestinations(scheduleShape('0 3 * * *'), 'UTC', () => '/b/q $(date +%F).tar.zst', FROM)).toThrow(/\(\$\(date …\) in single quotes is not run: write it in double quotes or unquoted\)/);
    expect(() => scheduleShape('0 3 * *')).toThrow(CronScheduleError);
  });
});

describe('shared runs', () => {
  const shared = (schedule: string, other: string, zone = 'UTC') => firstSharedRun(scheduleShape(schedule), scheduleShape(other), zone, FROM);

  it('finds the first minute two schedules share, however far in the new one\'s runs it is', () => {
    expect(shared('0 3 * * *', '0 */3 * * *')).toBe('2026-12-06 03:00');
    expect(shared('0 */3 * * *', '0 3 * * *')).toBe('2026-12-06 03:00');
    // Every minute's first 300 runs end at 23:00, then one run a day at 00:00: the noon one was missed.
    expect(shared('* * * * *', '0 12 * * *')).toBe('2026-12-06 12:00');
    expect(shared('*/2 * * * *', '30 9 * * 1')).toBe('2026-12-07 09:30');
    expect(shared('0 3 * * *', '0 3 29 2 *')).toBe('2028-02-29 03:00');
    expect(shared('30 1 * * *', '*/5 * * * *', 'America/New_York')).toBe('2026-12-06 01:30');
  });

  it('finds none where the hours, the minutes or the days differ', () => {
    expect(shared('0 3 * * *', '0 4 * * *')).toBeUndefined();
    expect(shared('0 3 * * *', '30 3 * * *')).toBeUndefined();
    expect(shared('0 3 * * 1', '0 3 * * 2')).toBeUndefined();
  });
});
