// The crontab text our local crons live in (shared/schedule/crontab.ts): the line for a
// cron, read back; only marked lines are ever changed; `%` escaped and read back as cron
// reads it; commands and paths a crontab line cannot carry are refused.

import { describe, expect, it } from 'vitest';

import { commandCronRuns, crontabEntries, crontabEntry, withEntry, withoutEntry, type CrontabPaths } from '../shared/schedule/crontab.js';

const PATHS: CrontabPaths = { node: '/usr/local/bin/node', cli: '/opt/openclaw/bin/openclaw.js', tenantsDir: '/srv/openclaw/tenants', log: '/var/log/openclaw/acme.log' };
const CMD = 'openclaw tenants backup acme --to /var/backups/acme/$(date +%F).tar.zst';
const FAILED =
  " || { code=$?; echo \"openclaw: cron nightly of tenant acme failed (exit $code), the end of its log\" '/var/log/openclaw/acme.log': >&2; " +
  "tail -n 5 '/var/log/openclaw/acme.log' >&2; exit $code; }";
/** After the command, inside the log's redirection: a failure's line in the log. */
const FAILED_IN_LOG = ' || { code=$?; echo "--- cron nightly of tenant acme failed (exit $code)"; (exit $code); }';
const HEADING = 'echo "--- cron nightly of tenant acme, $(date +%FT%T%z)"';
const LINE =
  `0 3 * * * { ${HEADING.replaceAll('%', '\\%')}; OPENCLAW_NODE='/usr/local/bin/node' /bin/sh '/opt/openclaw/bin/openclaw.js' --tenants-dir '/srv/openclaw/tenants' ` +
  `tenants backup acme --to /var/backups/acme/$(date +\\%F).tar.zst${FAILED_IN_LOG}; } >> '/var/log/openclaw/acme.log' 2>&1${FAILED} # openclaw:acme:nightly`;
/** A line as the version before wrote it: node itself, the launcher's settings copied with a fixed pool. */
const FIXED_POOL_LINE =
  `0 3 * * * { ${HEADING.replaceAll('%', '\\%')}; MALLOC_ARENA_MAX=2 UV_THREADPOOL_SIZE=64 '/usr/local/bin/node' --max-semi-space-size=4 '/opt/openclaw/bin/openclaw.js' --tenants-dir '/srv/openclaw/tenants' ` +
  `tenants backup acme --to /var/backups/acme/$(date +\\%F).tar.zst; } >> '/var/log/openclaw/acme.log' 2>&1${FAILED} # openclaw:acme:nightly`;
/** A line as a version before that wrote it: no heading of each run in the log. */
const PREVIOUS_LINE =
  "0 3 * * * MALLOC_ARENA_MAX=2 UV_THREADPOOL_SIZE=64 '/usr/local/bin/node' --max-semi-space-size=4 '/opt/openclaw/bin/openclaw.js' --tenants-dir '/srv/openclaw/tenants' " +
  `tenants backup acme --to /var/backups/acme/$(date +\\%F).tar.zst >> '/var/log/openclaw/acme.log' 2>&1${FAILED} # openclaw:acme:nightly`;
/** A line as an older version wrote it: no thread pool size, no failure notice. */
const OLD_LINE =
  "0 3 * * * MALLOC_ARENA_MAX=2 '/usr/local/bin/node' --max-semi-space-size=4 '/opt/openclaw/bin/openclaw.js' --tenants-dir '/srv/openclaw/tenants' " +
  "tenants backup acme --to /var/backups/acme/$(date +\\%F).tar.zst >> '/var/log/openclaw/acme.log' 2>&1 # openclaw:acme:nightly";

const THEIRS = 'MAILTO=ops@example.com\n# m h dom mon dow command\n15 * * * * /usr/local/bin/rotate --all % stdin here\n';

describe('a crontab entry', () => {
  it('calls the CLI\'s launcher and node by absolute path, with the base dir, a log, % escaped and our marker', () => {
    expect(crontabEntry({ tenant: 'acme', name: 'nightly', schedule: '0 3 * * *', cmd: CMD }, PATHS)).toBe(LINE);
    expect(crontabEntry({ tenant: 'acme', name: 'weekly', schedule: '@weekly', cmd: '/usr/local/bin/openclaw --json tenants backup acme --to "/b/x y.tar.zst"' }, PATHS)).toMatch(
      /^@weekly \{ echo "--- cron weekly of tenant acme, \$\(date \+\\%FT\\%T\\%z\)"; OPENCLAW_NODE='\/usr\/local\/bin\/node' \/bin\/sh .* --tenants-dir '\/srv\/openclaw\/tenants' --json tenants backup acme --to "\/b\/x y.tar.zst" \|\| \{ code=\$\?; echo "--- cron weekly of tenant acme failed \(exit \$code\)"; \(exit \$code\); \}; \} >> .* # openclaw:acme:weekly$/,
    );
  });

  it('is what cron hands to sh, once cron has read its %', () => {
    const { command, stdin } = commandCronRuns(LINE);
    expect(command).toBe(
      `{ ${HEADING}; OPENCLAW_NODE='/usr/local/bin/node' /bin/sh '/opt/openclaw/bin/openclaw.js' --tenants-dir '/srv/openclaw/tenants' ` +
        `tenants backup acme --to /var/backups/acme/$(date +%F).tar.zst${FAILED_IN_LOG}; } >> '/var/log/openclaw/acme.log' 2>&1${FAILED} # openclaw:acme:nightly`,
    );
    expect(stdin).toBe('');
    // A bare % ends the command; the rest is the command's stdin, % as newlines.
    expect(commandCronRuns('15 * * * * /usr/local/bin/rotate --all % stdin here%line two \\% kept')).toEqual({ command: '/usr/local/bin/rotate --all ', stdin: ' stdin here\nline two % kept' });
    // A % in a path is escaped too.
    const line = crontabEntry({ tenant: 'acme', name: 'n', schedule: '0 3 * * *', cmd: CMD }, { ...PATHS, log: '/var/log/100%/acme.log' });
    expect(line).toContain(">> '/var/log/100\\%/acme.log' 2>&1");
    expect(commandCronRuns(line).command).toContain(">> '/var/log/100%/acme.log' 2>&1");
  });

  it('reads back as it was given', () => {
    expect(crontabEntries(`${THEIRS}${LINE}\n`)).toEqual([
      { tenant: 'acme', name: 'nightly', schedule: '0 3 * * *', cmd: CMD, tenantsDir: PATHS.tenantsDir, log: PATHS.log, enabled: true, line: LINE },
    ]);
    // Commented out by hand: still ours, disabled. Edited by hand: its command as it stands.
    const edited = '30 4 * * 1-5 /usr/bin/true --x 10\\% # openclaw:beta:weekday';
    expect(crontabEntries(`#${LINE}\n${edited}\n`)).toEqual([
      { tenant: 'acme', name: 'nightly', schedule: '0 3 * * *', cmd: CMD, tenantsDir: PATHS.tenantsDir, log: PATHS.log, enabled: false, line: `#${LINE}` },
      { tenant: 'beta', name: 'weekday', schedule: '30 4 * * 1-5', cmd: '/usr/bin/true --x 10%', enabled: true, line: edited },
    ]);
    expect(crontabEntries(THEIRS)).toEqual([]);
    // Lines earlier versions installed (node itself with a fixed pool; no heading; no thread pool size, no failure notice) are still ours, in our shape.
    for (const earlier of [FIXED_POOL_LINE, PREVIOUS_LINE, OLD_LINE]) {
      expect(crontabEntries(`${earlier}\n`)).toEqual([
        { tenant: 'acme', name: 'nightly', schedule: '0 3 * * *', cmd: CMD, tenantsDir: PATHS.tenantsDir, log: PATHS.log, enabled: true, line: earlier },
      ]);
    }
  });
});

describe('editing the crontab', () => {
  it('appends ours and keeps every other line byte for byte', () => {
    const { text, replaced } = withEntry(THEIRS, 'acme', 'nightly', LINE, false);
    expect(replaced).toBe(false);
    expect(text).toBe(`${THEIRS}${LINE}\n`);
    // A crontab whose last line has no newline gets one: cron ignores such a line.
    expect(withEntry('15 * * * * /bin/true', 'acme', 'nightly', LINE, false).text).toBe(`15 * * * * /bin/true\n${LINE}\n`);
    expect(withEntry('', 'acme', 'nightly', LINE, false).text).toBe(`${LINE}\n`);
  });

  it('refuses a second cron of the same name unless replacing, and replaces it in place', () => {
    const installed = `${LINE}\n${THEIRS}`;
    expect(() => withEntry(installed, 'acme', 'nightly', LINE, false)).toThrow(expect.objectContaining({ code: 'CRON_EXISTS', outcome: 'refused' }));
    const other = LINE.replace('0 3 * * *', '30 2 * * *');
    expect(withEntry(installed, 'acme', 'nightly', other, true)).toEqual({ text: `${other}\n${THEIRS}`, replaced: true });
    // Another tenant's cron of the same name, or another name, is another cron.
    expect(withEntry(installed, 'acme-2', 'nightly', LINE.replace(':acme:', ':acme-2:'), false).text.match(/# openclaw:/g)).toHaveLength(2);
  });

  it('removes only our line, and refuses when there is none', () => {
    expect(withoutEntry(`${THEIRS}${LINE}\n`, 'acme', 'nightly')).toBe(THEIRS);
    expect(withoutEntry(`${LINE}\n`, 'acme', 'nightly')).toBe('');
    expect(() => withoutEntry(THEIRS, 'acme', 'nightly')).toThrow(expect.objectContaining({ code: 'CRON_NOT_FOUND', outcome: 'refused' }));
    expect(() => withoutEntry(`${LINE}\n`, 'acme', 'nightly-2')).toThrow(/has no cron "nightly-2"/);
  });
});

describe('what a crontab line cannot carry', () => {
  it.each([
    ['a second command', 'openclaw tenants list; rm -rf /', /not run by a shell|";"/],
    ['a pipe', 'openclaw tenants list --names | head', /"\|"/],
    ['another program', 'rm -rf /', /must be an openclaw command/],
    ['no program name', 'tenants backup acme --to /b/x.tar.zst', /^--cmd must be an openclaw command, got "tenants": write the whole command, starting with openclaw \("openclaw tenants …"\)$/],
    ['a quoted program name', "'openclaw' tenants backup acme --to /b/x.tar.zst", /must start with openclaw \(unquoted\)/],
    ['a #', 'openclaw tenants backup acme --to /b/#1.tar.zst', /"#" in --cmd/],
    ['a backslash', 'openclaw tenants backup acme --to /b/x\\ y.tar.zst', /backslash/],
    ['a newline', 'openclaw tenants backup acme\n--to /b/x.tar.zst', /control character/],
    ['--tenants-dir', 'openclaw --tenants-dir /elsewhere tenants backup acme --to /b/x.tar.zst', /drop --tenants-dir/],
    ['--tenants-dir=', 'openclaw --tenants-dir=/elsewhere tenants backup acme --to /b/x.tar.zst', /drop --tenants-dir/],
    ['--stack', 'openclaw --stack prod tenants backup acme --to s3://b/x.tar.zst', /drop --stack/],
    ['nothing to run', 'openclaw', /names no openclaw command/],
  ])('refuses %s in --cmd', (_label, cmd, message) => {
    expect(() => crontabEntry({ tenant: 'acme', name: 'nightly', schedule: '0 3 * * *', cmd }, PATHS)).toThrow(message);
  });

  it.each([
    ['a relative path', { log: 'logs/acme.log' }, /the log file must be an absolute path for cron/],
    ['a quote', { tenantsDir: "/srv/o'claw" }, /the tenant base dir "\/srv\/o'claw" holds a quote/],
    ['a newline', { cli: '/opt/x\n* * * * * evil' }, /the CLI script .* control character/],
  ])('refuses a path with %s', (_label, paths, message) => {
    expect(() => crontabEntry({ tenant: 'acme', name: 'nightly', schedule: '0 3 * * *', cmd: CMD }, { ...PATHS, ...paths })).toThrow(message);
  });

  it('refuses names that would break the marker', () => {
    expect(() => crontabEntry({ tenant: 'acme', name: 'night:ly', schedule: '0 3 * * *', cmd: CMD }, PATHS)).toThrow();
    expect(() => crontabEntry({ tenant: 'ac me', name: 'nightly', schedule: '0 3 * * *', cmd: CMD }, PATHS)).toThrow(/invalid tenant name/);
  });
});
