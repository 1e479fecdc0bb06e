// Destination templates: where a scheduled or all-tenants backup writes, with the parts that
// change from run to run left as placeholders, expanded when the backup runs (from the
// scheduled time, so a retried run writes the same key; in UTC, or in the schedule's time
// zone when it has one, so a 00:30 Berlin backup is named after the Berlin date):
//   {tenant}        the tenant's name (for a template shared by every tenant)
//   {date}          YYYY-MM-DD                  {time}   HHMMSS
//   {date:FORMAT}   FORMAT a strftime subset (DATE_FORMATS), what `$(date +FORMAT)` becomes
// Literal `{` and `}` are refused so a placeholder is never ambiguous. Pure.

import { CronCommandError } from '../errors.js';

type Formatter = (date: Date) => string;

const pad = (value: number, width = 2) => String(value).padStart(width, '0');
const DAY_ABBREVIATIONS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTH_ABBREVIATIONS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function isoWeek(date: Date): { year: number; week: number } {
  const day = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
  const weekday = day.getUTCDay() || 7;
  day.setUTCDate(day.getUTCDate() + 4 - weekday); // the Thursday of this ISO week
  const yearStart = Date.UTC(day.getUTCFullYear(), 0, 1);
  return { year: day.getUTCFullYear(), week: Math.ceil(((day.getTime() - yearStart) / 86_400_000 + 1) / 7) };
}

/** `date +FORMAT` conversions understood in templates, all in UTC. */
export const DATE_FORMATS: Readonly<Record<string, Formatter>> = {
  Y: (d) => pad(d.getUTCFullYear(), 4),
  y: (d) => pad(d.getUTCFullYear() % 100),
  m: (d) => pad(d.getUTCMonth() + 1),
  d: (d) => pad(d.getUTCDate()),
  H: (d) => pad(d.getUTCHours()),
  M: (d) => pad(d.getUTCMinutes()),
  S: (d) => pad(d.getUTCSeconds()),
  F: (d) => `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`,
  T: (d) => `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`,
  j: (d) => pad(Math.floor((d.getTime() - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1, 3),
  u: (d) => String(d.getUTCDay() || 7),
  w: (d) => String(d.getUTCDay()),
  a: (d) => DAY_ABBREVIATIONS[d.getUTCDay()]!,
  b: (d) => MONTH_ABBREVIATIONS[d.getUTCMonth()]!,
  s: (d) => String(Math.floor(d.getTime() / 1000)),
  V: (d) => pad(isoWeek(d).week),
  G: (d) => pad(isoWeek(d).year, 4),
  '%': () => '%',
};

/** Why `format` is not a usable `date +FORMAT`, or undefined. */
export function dateFormatProblem(format: string): string | undefined {
  if (format === '') return 'the date format is empty';
  // `%Y/../..` would climb out of what the template names before it ({tenant} too).
  if (format.split('/').some((segment) => segment === '.' || segment === '..')) return `"." and ".." are not allowed as path segments in a date format ("${format}")`;
  for (let index = 0; index < format.length; index++) {
    const char = format[index]!;
    if (/[{}<>]/.test(char)) return `"${char}" is not allowed in a date format`;
    if (char !== '%') continue;
    const conversion = format[++index];
    if (conversion === undefined) return `the date format "${format}" ends with a lone "%"`;
    if (!(conversion in DATE_FORMATS)) {
      return `"%${conversion}" is not supported in a date format (supported: ${Object.keys(DATE_FORMATS).map((c) => `%${c}`).join(' ')})`;
    }
  }
  return undefined;
}

/** `date` formatted as `date +FORMAT` would in `timeZone` (default UTC). */
export function formatDate(format: string, date: Date, timeZone?: string): string {
  const wall = timeZone === undefined ? date : wallClock(date, timeZone);
  return format.replace(/%(.)/g, (_match, conversion: string) => (conversion === 's' ? DATE_FORMATS.s!(date) : DATE_FORMATS[conversion]!(wall)));
}

/**
 * The instant whose UTC fields read as `date`'s local time in `timeZone`: formatting it
 * with the UTC getters above gives the zone's date and time (seconds since the epoch, `%s`,
 * come from the real instant).
 */
function wallClock(date: Date, timeZone: string): Date {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  }).formatToParts(date);
  const field = (type: Intl.DateTimeFormatPartTypes) => Number(parts.find((part) => part.type === type)?.value ?? Number.NaN);
  return new Date(Date.UTC(field('year'), field('month') - 1, field('day'), field('hour'), field('minute'), field('second'), date.getUTCMilliseconds()));
}

const PLACEHOLDER = /\{(tenant|date|time)(?::([^{}]*))?\}/g;
const PLACEHOLDERS_HELP = 'placeholders are {tenant}, {date}, {time} and {date:FORMAT}';

/** Why `template` is not a valid destination template, or undefined. */
export function templateProblem(template: string): string | undefined {
  const literal = template.replace(PLACEHOLDER, '');
  const unknown = /\{[^{}]*\}/.exec(literal)?.[0];
  if (unknown !== undefined) return `${unknown} is no placeholder (${PLACEHOLDERS_HELP})`;
  if (/[{}]/.test(literal)) return `literal "{" and "}" are not allowed (${PLACEHOLDERS_HELP})`;
  for (const match of template.matchAll(PLACEHOLDER)) {
    const [, name, format] = match;
    if (format === undefined) continue;
    if (name !== 'date') return `{${name}} takes no format (${PLACEHOLDERS_HELP})`;
    const problem = dateFormatProblem(format);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/** What a template is expanded with: the run's time, and the tenant for `{tenant}`. */
export interface TemplateValues {
  readonly time: Date;
  readonly tenant?: string;
  /** The IANA zone dates and times are written in. @default UTC */
  readonly timeZone?: string;
}

/** Expands every placeholder; a `{tenant}` without a tenant is refused. */
export function expandTemplate(template: string, values: TemplateValues): string {
  const problem = templateProblem(template);
  if (problem !== undefined) throw new CronCommandError(`invalid template ${JSON.stringify(template)}: ${problem}`);
  return template.replace(PLACEHOLDER, (_match, name: string, format: string | undefined) => {
    if (name === 'tenant') {
      if (values.tenant === undefined) throw new CronCommandError(`the template ${JSON.stringify(template)} names {tenant}, but no tenant was given`);
      return values.tenant;
    }
    if (name === 'time') return formatDate('%H%M%S', values.time, values.timeZone);
    return formatDate(format ?? '%F', values.time, values.timeZone);
  });
}

/** Whether a valid template names other archives `ms` after `time` (its `{time}`, or a `{date:…}` format of the hour or minute). */
export function namesOtherArchivesAfter(template: string, time: Date, ms: number): boolean {
  if (!hasPlaceholders(template)) return false;
  return expandTemplate(template, { time: new Date(time.getTime() + ms), tenant: 'x' }) !== expandTemplate(template, { time, tenant: 'x' });
}

export function hasPlaceholders(template: string): boolean {
  return templateProblem(template) === undefined && PLACEHOLDER_TEST.test(template);
}

/** Whether the template names `{tenant}` (one destination for every tenant). */
export function namesTenant(template: string): boolean {
  return /\{tenant\}/.test(template);
}

const PLACEHOLDER_TEST = /\{(tenant|date|time)(:[^{}]*)?\}/;

/**
 * The local directory a template names before its first placeholder (`/srv/b/{tenant}/{date}.tar.zst`:
 * `/srv/b`): the one directory the user named, below which each run's archives lie. `.` when the
 * first component already has one. Not for an S3 URL.
 */
export function fixedDirectoryOf(template: string): string {
  const components = template.split('/');
  const first = components.findIndex((component) => PLACEHOLDER_TEST.test(component));
  const fixed = components.slice(0, first === -1 ? components.length - 1 : first);
  if (fixed.length === 0) return '.';
  const joined = fixed.join('/');
  return joined === '' ? '/' : joined;
}
