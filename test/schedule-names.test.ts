// shared/schedule/schedule-names.ts and schedule-options.ts: the Scheduler schedule names
// `cron add` gives (and `cron list` reads back without a call per schedule), time zones and
// flexible windows.

import { describe, expect, it } from 'vitest';

import { parseScheduleName, scheduleName, scheduleNamePrefix } from '../shared/schedule/schedule-names.js';
import { assertTimeZone, formatWindow, parseWindow } from '../shared/schedule/schedule-options.js';

describe('schedule names', () => {
  it('names a tenant\'s cron <tenant>.<cron> and an all-tenants cron _all.<cron>, and reads both back', () => {
    expect(scheduleName({ tenant: 'acme' }, 'nightly-backup')).toBe('acme.nightly-backup');
    expect(scheduleName({ all: true }, 'nightly')).toBe('_all.nightly');
    expect(parseScheduleName('acme.nightly-backup')).toEqual({ owner: { tenant: 'acme' }, cronName: 'nightly-backup' });
    expect(parseScheduleName('_all.nightly')).toEqual({ owner: { all: true }, cronName: 'nightly' });
    // A cron name may hold dots: the first one splits.
    expect(parseScheduleName('a-b.c.d')).toEqual({ owner: { tenant: 'a-b' }, cronName: 'c.d' });
  });

  it('cannot collide: tenant "a-b" with cron "c" and tenant "a" with cron "b-c" get different names', () => {
    expect(scheduleName({ tenant: 'a-b' }, 'c')).not.toBe(scheduleName({ tenant: 'a' }, 'b-c'));
  });

  it('leaves names it did not make alone', () => {
    for (const name of ['handmade', '.x', 'Acme.nightly', '_other.x', 'acme.', 'acme.-x']) expect(parseScheduleName(name), name).toBeUndefined();
  });

  it('keeps within Scheduler\'s 64 characters, saying how long the cron name may be', () => {
    const tenant = 'a'.repeat(32);
    expect(scheduleName({ tenant }, 'b'.repeat(31))).toHaveLength(64);
    expect(() => scheduleName({ tenant }, 'b'.repeat(32))).toThrow(/at most 31 characters/);
    expect(() => scheduleName({ tenant: 'Bad' }, 'x')).toThrow(/invalid tenant name/);
    expect(() => scheduleName({ tenant: 'acme' }, 'bad name')).toThrow(/invalid cron name/);
  });

  it('lists one tenant\'s crons by an exact prefix', () => {
    expect(scheduleNamePrefix({ tenant: 'acme' })).toBe('acme.');
    expect(scheduleNamePrefix({ all: true })).toBe('_all.');
  });
});

describe('time zones', () => {
  it('takes IANA names and spells them canonically', () => {
    expect(assertTimeZone('Europe/Berlin')).toBe('Europe/Berlin');
    expect(assertTimeZone('europe/berlin')).toBe('Europe/Berlin');
    expect(assertTimeZone('America/Argentina/Buenos_Aires')).toBe('America/Argentina/Buenos_Aires');
    expect(assertTimeZone('UTC')).toBe('UTC');
  });

  it('refuses unknown zones and offsets with a usage error', () => {
    for (const zone of ['Mars/Olympus', '+01:00', 'UTC+1', '', 'Europe/Berlin; rm -rf /']) {
      expect(() => assertTimeZone(zone), zone).toThrow(expect.objectContaining({ code: 'INVALID_SCHEDULE', message: expect.stringMatching(/--timezone/) }));
    }
  });
});

describe('flexible windows', () => {
  it.each([
    ['60m', 60],
    ['90min', 90],
    ['2h', 120],
    ['45', 45],
    ['24h', 1440],
    ['off', 0],
    ['0', 0],
  ])('reads %s as %i minutes', (input, minutes) => {
    expect(parseWindow(input)).toBe(minutes);
  });

  it.each(['25h', '1441m', '-5m', '1.5h', 'soon', '60s'])('refuses %s', (input) => {
    expect(() => parseWindow(input)).toThrow(/invalid --window/);
  });

  it('formats minutes back', () => {
    expect([0, 45, 60, 90, 1440].map(formatWindow)).toEqual(['off', '45m', '1h', '1h30m', '24h']);
  });
});
