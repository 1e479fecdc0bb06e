// The progress line on a terminal: percent and ETA from the work done and the total (a
// backup's tenant size from a walk, a restore's stored archive size), as pure formatting and
// once through a pseudo-terminal (`script`), where the built CLI believes stderr is a TTY.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { duration, fitted, percentAndEta, progressText } from '../cli/output.js';
import { cliPath, tempDir } from './helpers/tree.js';

describe('percent and ETA', () => {
  it('is empty without a total', () => {
    expect(percentAndEta(10, undefined, 5000)).toBe('');
    expect(percentAndEta(10, 0, 5000)).toBe('');
  });

  it('shows the percent at once and the ETA after a second of history', () => {
    expect(percentAndEta(0, 1000, 0)).toBe('0%');
    expect(percentAndEta(250, 1000, 999)).toBe('25%');
    expect(percentAndEta(250, 1000, 1000)).toBe('25%, ETA 3 s');
    expect(percentAndEta(100, 1000, 10_000)).toBe('10%, ETA 1m 30s');
    expect(percentAndEta(1, 1000, 10_000)).toBe('0%, ETA 2h 46m');
    expect(percentAndEta(0, 1000, 10_000)).toBe('0%'); // no rate yet
  });

  it('stays below 100% until the operation says it is done, even when the total was low', () => {
    expect(percentAndEta(999, 1000, 5000)).toBe('99%, ETA 0 s');
    expect(percentAndEta(1000, 1000, 5000)).toBe('99%, ETA 0 s');
    expect(percentAndEta(5000, 1000, 5000)).toBe('99%, ETA 0 s'); // files grew while read
  });

  it('writes durations for people', () => {
    expect([0, 499, 500, 59_499, 60_000, 65_000, 3_599_000, 3_600_000, 7_380_000].map(duration)).toEqual(['0 s', '0 s', '1 s', '59 s', '1m 00s', '1m 05s', '59m 59s', '1h 00m', '2h 03m']);
  });

  it('cuts a line to the terminal\'s width less a column, and leaves it whole where the width is unknown', () => {
    expect(fitted('backup acme: 50% · 3 files', 20)).toBe('backup acme: 50% ·…');
    expect(fitted('backup acme: 50% · 3 files', 27)).toBe('backup acme: 50% · 3 files');
    expect(fitted('backup acme: 50% · 3 files', 26)).toBe('backup acme: 50% · 3 fil…');
    expect(fitted('backup acme: 50% · 3 files', undefined)).toBe('backup acme: 50% · 3 files');
    expect(fitted('backup acme: 50% · 3 files', 0)).toBe('backup acme: 50% · 3 files');
  });

  it('puts percent and ETA before the details, and leaves the details alone without a total', () => {
    expect(progressText('3 files, 12.0 MiB read', 50, 100, 1_000, 3_000)).toBe('50%, ETA 2 s · 3 files, 12.0 MiB read');
    expect(progressText('3 files, 12.0 MiB read', 50, undefined, 1_000, 3_000)).toBe('3 files, 12.0 MiB read');
  });
});

const hasScript = existsSync('/usr/bin/script');

describe.runIf(hasScript)('on a terminal', () => {
  const dir = tempDir('openclaw-progress-');
  const base = path.join(dir.path, 'tenants');
  const archive = path.join(dir.path, 'acme.tar.zst');
  beforeAll(() => {
    mkdirSync(path.join(base, 'acme', 'data'), { recursive: true });
    for (let i = 0; i < 4; i++) writeFileSync(path.join(base, 'acme', 'data', `blob-${i}`), randomBytes(8 * 1024 * 1024));
  });
  afterAll(() => dir.cleanup());

  /** The CLI under a pseudo-terminal: what it drew on it, stdout and stderr together. */
  function onTerminal(args: string[], terminal: { columns?: number; env?: NodeJS.ProcessEnv } = {}): { status: number | null; screen: string } {
    const command = [process.execPath, cliPath, ...args].map((word) => `'${word}'`).join(' ');
    const sized = terminal.columns === undefined ? command : `stty cols ${terminal.columns}; ${command}`;
    const run = spawnSync('script', ['-qec', sized, '/dev/null'], { encoding: 'utf8', env: { ...process.env, ...terminal.env } });
    return { status: run.status, screen: run.stdout };
  }

  it('draws a backup\'s and a restore\'s percent, then clears the line for the summary', () => {
    const backup = onTerminal(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', archive]);
    expect(backup.status).toBe(0);
    const drawn = backup.screen.split('\r\x1b[2K').slice(1, -1);
    expect(drawn.length).toBeGreaterThan(0);
    for (const line of drawn) expect(line).toMatch(/^backup acme: \d{1,2}%(, ETA [^·]+)? · [\d,]+ files, .* read, .* written, .*\/s$/);
    expect(backup.screen).toMatch(/\r\x1b\[2KBacked up tenant "acme"/);

    const restore = onTerminal(['--tenants-dir', base, 'tenants', 'restore', '--from', archive, '--as', 'copy']);
    expect(restore.status).toBe(0);
    const restoring = restore.screen.split('\r\x1b[2K').slice(1, -1);
    expect(restoring.length).toBeGreaterThan(0);
    for (const line of restoring) expect(line).toMatch(/^restore: \d{1,2}%(, ETA [^·]+)? · [\d,]+ entries, .* unpacked, .* read, .*\/s$/);
  });

  it('draws a verify\'s percent from the stored size', () => {
    const verifyArchive = path.join(dir.path, 'verify.tar.zst');
    expect(onTerminal(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', verifyArchive]).status).toBe(0);
    const verify = onTerminal(['tenants', 'verify', '--from', verifyArchive]);
    expect(verify.status).toBe(0);
    const drawn = verify.screen.split('\r\x1b[2K').slice(1, -1);
    expect(drawn.length).toBeGreaterThan(0);
    for (const line of drawn) expect(line).toMatch(/^verify: \d{1,2}%(, ETA [^·]+)? · [\d,]+ entries, .* checked, .* read, .*\/s$/);
    expect(verify.screen).toMatch(/\r\x1b\[2KIntact: /);
  });

  it('fits the line to a narrow terminal, which would wrap it and leave a row behind at each redraw', () => {
    const run = onTerminal(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'narrow.tar.zst')], { columns: 40 });
    expect(run.status).toBe(0);
    const drawn = run.screen.split('\r\x1b[2K').slice(1, -1);
    expect(drawn.length).toBeGreaterThan(0);
    for (const line of drawn) {
      expect(line.length).toBeLessThanOrEqual(39);
      expect(line).toMatch(/^backup acme: \d{1,2}%.*…$/);
    }
  });

  it('draws nothing on a dumb terminal, which shows the erase sequence as text', () => {
    const run = onTerminal(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'dumb.tar.zst')], { env: { TERM: 'dumb' } });
    expect(run.status).toBe(0);
    expect(run.screen).not.toContain('\x1b');
    expect(run.screen).toMatch(/^Backed up tenant "acme"/);
  });

  it('draws nothing with --json', () => {
    const run = onTerminal(['--tenants-dir', base, '--json', 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'json.tar.zst')]);
    expect(run.status).toBe(0);
    expect(run.screen).not.toContain('\x1b[2K');
    expect(JSON.parse(run.screen.trim())).toMatchObject({ operation: 'backup', tenant: 'acme' });
  });
});
