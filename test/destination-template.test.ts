// shared/schedule/destination-template.ts: the placeholders of a scheduled or all-tenants
// backup's destination, expanded when the backup runs, in UTC or in the schedule's time zone.

import { describe, expect, it } from 'vitest';

import { expandTemplate, fixedDirectoryOf, hasPlaceholders, namesTenant, templateProblem } from '../shared/schedule/destination-template.js';

const time = new Date('2026-06-03T03:00:07Z');

describe('expandTemplate', () => {
  it.each([
    ['s3://b/acme/{date:%F}.tar.zst', 's3://b/acme/2026-06-03.tar.zst'],
    ['s3://b/acme/{date:%Y}/{date:%m}/{date:%d}/{date:%H%M%S}.tar.zst', 's3://b/acme/2026/06/03/030007.tar.zst'],
    ['s3://b/{date:%FT%T}', 's3://b/2026-06-03T03:00:07'],
    ['s3://b/{date:%y%j-%u%w-%a%b}', 's3://b/26154-33-WedJun'],
    ['s3://b/{date:%s}', 's3://b/1780455607'],
    ['s3://b/{date:%G-W%V}', 's3://b/2026-W23'],
    ['s3://b/{date:100%%}', 's3://b/100%'],
    ['s3://b/plain', 's3://b/plain'],
    ['s3://b/backups/{tenant}/{date}.tar.zst', 's3://b/backups/acme/2026-06-03.tar.zst'],
    ['/var/backups/{tenant}/{date}-{time}.tar.zst', '/var/backups/acme/2026-06-03-030007.tar.zst'],
  ])('expands %s in UTC', (template, expected) => {
    expect(expandTemplate(template, { time, tenant: 'acme' })).toBe(expected);
  });

  it('uses ISO weeks across the year boundary', () => {
    expect(expandTemplate('{date:%G-W%V}', { time: new Date('2027-01-01T00:00:00Z') })).toBe('2026-W53');
    expect(expandTemplate('{date:%G-W%V}', { time: new Date('2025-12-29T00:00:00Z') })).toBe('2026-W01');
  });

  it('refuses {tenant} when no tenant is given', () => {
    expect(() => expandTemplate('s3://b/{tenant}/x', { time })).toThrow(/names \{tenant\}, but no tenant was given/);
  });
});

describe('templateProblem', () => {
  it.each([
    ['s3://b/{date:%F', /literal/],
    ['s3://b/{date:%}', /lone "%"/],
    ['s3://b/{date:%Z}', /"%Z" is not supported/],
    ['s3://b/{oops}', /^\{oops\} is no placeholder \(placeholders are \{tenant\}, \{date\}, \{time\} and \{date:FORMAT\}\)$/],
    ['/backups/{tenant}/{day}.tar.zst', /^\{day\} is no placeholder /],
    ['/backups/{Tenant}/{date}.tar.zst', /^\{Tenant\} is no placeholder /],
    ['/backups/{tenant}/{date}}.tar.zst', /literal/],
    ['s3://b/{tenant:x}', /\{tenant\} takes no format/],
    ['s3://b/{time:%H}', /\{time\} takes no format/],
    ['/backups/{tenant}/{date:%Y/../../..}/x.tar.zst', /"\." and "\.\." are not allowed as path segments/],
    ['/backups/{tenant}/{date:./%F}.tar.zst', /"\." and "\.\." are not allowed as path segments/],
  ])('finds what is wrong with %s', (template, reason) => {
    expect(templateProblem(template)).toMatch(reason);
    expect(() => expandTemplate(template, { time, tenant: 'acme' })).toThrow(/invalid template/);
  });

  it('accepts every placeholder', () => {
    expect(templateProblem('s3://b/{tenant}/{date}/{time}/{date:%F}')).toBeUndefined();
    expect(templateProblem('/backups/{tenant}/{date:%Y/%m/%d..%H}.tar.zst')).toBeUndefined();
  });
});

describe('hasPlaceholders and namesTenant', () => {
  it.each([
    ['s3://b/plain', false, false],
    ['s3://b/{date}', true, false],
    ['s3://b/{time}', true, false],
    ['s3://b/{date:%F}', true, false],
    ['s3://b/{tenant}.tar.zst', true, true],
  ])('%s', (template, placeholders, tenant) => {
    expect(hasPlaceholders(template)).toBe(placeholders);
    expect(namesTenant(template)).toBe(tenant);
  });
});

describe('expandTemplate in a time zone', () => {
  it('writes the zone\'s date and time, and %s from the instant', () => {
    // 23:30 UTC on June 2 is 01:30 on June 3 in Berlin (summer time, UTC+2).
    const late = new Date('2026-06-02T23:30:05Z');
    expect(expandTemplate('s3://b/{tenant}/{date}-{time}.tar.zst', { time: late, tenant: 'acme', timeZone: 'Europe/Berlin' })).toBe('s3://b/acme/2026-06-03-013005.tar.zst');
    expect(expandTemplate('s3://b/{tenant}/{date}-{time}.tar.zst', { time: late, tenant: 'acme' })).toBe('s3://b/acme/2026-06-02-233005.tar.zst');
    expect(expandTemplate('{date:%s}', { time: late, timeZone: 'Europe/Berlin' })).toBe('1780443005');
    expect(expandTemplate('{date:%a %j %G-W%V}', { time: new Date('2026-12-31T23:30:00Z'), timeZone: 'Asia/Tokyo' })).toBe('Fri 001 2026-W53');
  });

  it('follows daylight saving time', () => {
    // New York: UTC-5 in January, UTC-4 in July.
    expect(expandTemplate('{date:%H}', { time: new Date('2026-01-15T12:00:00Z'), timeZone: 'America/New_York' })).toBe('07');
    expect(expandTemplate('{date:%H}', { time: new Date('2026-07-15T12:00:00Z'), timeZone: 'America/New_York' })).toBe('08');
  });
});

describe('fixedDirectoryOf', () => {
  it('is the directory named before the first placeholder', () => {
    expect(fixedDirectoryOf('/srv/b/{tenant}/{date}.tar.zst')).toBe('/srv/b');
    expect(fixedDirectoryOf('/srv/b/{tenant}.tar.zst')).toBe('/srv/b');
    expect(fixedDirectoryOf('/srv/b/x-{date}/{tenant}.tar.zst')).toBe('/srv/b');
    expect(fixedDirectoryOf('b/{tenant}/x.tar.zst')).toBe('b');
    expect(fixedDirectoryOf('{tenant}/x.tar.zst')).toBe('.');
    expect(fixedDirectoryOf('/{tenant}.tar.zst')).toBe('/');
    expect(fixedDirectoryOf('/srv/b/acme.tar.zst')).toBe('/srv/b');
  });
});
