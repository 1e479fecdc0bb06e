// The two options a schedule has besides its cron fields: the time zone it runs in
// (`cron add --timezone`, an IANA name, default UTC) and the flexible time window
// EventBridge Scheduler may spread its start over (`--window 60m`, at most 24 h, default
// off). Pure: time zones are checked with the runtime's own Intl database, no SDK.

import { CronScheduleError } from '../errors.js';

export const DEFAULT_TIME_ZONE = 'UTC';
/** Scheduler's limit on MaximumWindowInMinutes. */
export const MAX_WINDOW_MINUTES = 1440;

/** An IANA zone name: `Europe/Berlin`, `America/Argentina/Buenos_Aires`, `UTC`; never an offset such as `+01:00`. */
const ZONE_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+){0,2}$/;

/**
 * The zone as given, its letter case as Intl spells it (`europe/berlin` → `Europe/Berlin`;
 * an alias such as `America/Argentina/Buenos_Aires` is kept, not renamed), or a usage error.
 */
export function assertTimeZone(input: string): string {
  const zone = input.trim();
  if (!ZONE_NAME.test(zone)) {
    throw new CronScheduleError(`invalid --timezone ${JSON.stringify(input)}: give an IANA time zone name, e.g. Europe/Berlin, America/New_York or UTC`);
  }
  try {
    const resolved = new Intl.DateTimeFormat('en-US', { timeZone: zone }).resolvedOptions().timeZone;
    return resolved.toLowerCase() === zone.toLowerCase() ? resolved : zone;
  } catch {
    throw new CronScheduleError(`unknown --timezone ${JSON.stringify(input)}: give an IANA time zone name, e.g. Europe/Berlin, America/New_York or UTC`);
  }
}

export function isUtc(zone: string): boolean {
  return zone === 'UTC' || zone === 'Etc/UTC' || zone === 'Etc/GMT' || zone === 'GMT';
}

/**
 * `--window`: `60m`, `90min`, `2h`, a bare number of minutes, or `off`/`0`; returns minutes
 * (0 = off: the schedule starts at its time).
 */
export function parseWindow(input: string): number {
  const text = input.trim().toLowerCase();
  if (text === 'off' || text === '0') return 0;
  const match = /^(\d+)\s*(m|min|mins|minutes?|h|hours?)?$/.exec(text);
  const minutes = match === null ? Number.NaN : Number(match[1]) * (match[2]?.startsWith('h') ? 60 : 1);
  if (!Number.isSafeInteger(minutes) || minutes < 1 || minutes > MAX_WINDOW_MINUTES) {
    throw new CronScheduleError(
      `invalid --window ${JSON.stringify(input)}: give the time the start may be spread over, from 1m to ${MAX_WINDOW_MINUTES / 60}h (e.g. 60m, 2h), or off`,
    );
  }
  return minutes;
}

/** `60m`, `2h`, `1h30m`; `off` for 0. */
export function formatWindow(minutes: number): string {
  if (minutes === 0) return 'off';
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return hours === 0 ? `${rest}m` : rest === 0 ? `${hours}h` : `${hours}h${rest}m`;
}
