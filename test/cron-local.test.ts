// `openclaw cron add|list|rm` without --stack: entries in the user's crontab that run from
// cron's bare environment. The crontab here is a stand-in (OPENCLAW_CRONTAB: a script that
// keeps it in a file), so no test touches a real user's crontab; the installed line is run
// as cron runs it (`env -i SHELL=/bin/sh PATH=/usr/bin:/bin sh -c …`, after cron's reading of
// `%`) and the backup must appear. One test uses the real `crontab` binary (Debian's cron),
// as root inside a private mount namespace whose /var/spool/cron/crontabs is an empty tmpfs:
// the machine's crontabs are never seen or changed.

import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { createSampleTenant } from '../scripts/sample-tenant.js';
import { THREAD_POOL_SIZE } from '../shared/file-access.js';
import { commandCronRuns } from '../shared/schedule/crontab.js';
import { cliPath, runCli, runCliAsync, tempDir } from './helpers/tree.js';

const THEIRS = 'MAILTO=ops@example.com\n# m h dom mon dow command\n15 * * * * /usr/local/bin/rotate --all\n';

let dir: ReturnType<typeof tempDir>;
let base: string;
let home: string;
let crontabFile: string;
let fakeCrontab: string;

beforeEach(() => {
  dir = tempDir('openclaw-cron-local-');
  base = path.join(dir.path, 'tenants');
  home = path.join(dir.path, 'home');
  mkdirSync(home);
  createSampleTenant(path.join(base, 'acme'), { sessions: 2, memoryRows: 10 });
  crontabFile = path.join(dir.path, 'crontab.txt');
  fakeCrontab = path.join(dir.path, 'fake-crontab');
  // crontab(1)'s interface: -l prints the crontab (or "no crontab for USER", exit 1), - installs stdin.
  writeFileSync(
    fakeCrontab,
    `#!/bin/sh\ncase "$1" in\n  -l) if [ -f '${crontabFile}' ]; then cat '${crontabFile}'; else echo "no crontab for $(id -un)" >&2; exit 1; fi ;;\n  -) cat > '${crontabFile}' ;;\n  *) echo "usage: crontab [-l | -]" >&2; exit 2 ;;\nesac\n`,
  );
  chmodSync(fakeCrontab, 0o755);
});
afterEach(() => dir.cleanup());

function openclaw(args: string[], env: NodeJS.ProcessEnv = {}) {
  return runCli(['--tenants-dir', base, ...args], { env: { OPENCLAW_CRONTAB: fakeCrontab, HOME: home, ...env } });
}

const nightly = (to: string, ...extra: string[]) => ['cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'nightly', '--cmd', `openclaw tenants backup acme --to ${to}`, ...extra];

/** `cron add acme … --cmd CMD` is refused as a usage error, with `message` (a whole stderr, or a pattern) and nothing on stdout. */
function expectRefused(cmd: string, message: string | RegExp): void {
  const run = openclaw(['cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'nightly', '--cmd', cmd]);
  expect(run.status, cmd).toBe(2);
  expect(run.stdout, cmd).toBe('');
  if (typeof message === 'string') expect(run.stderr, cmd).toBe(message);
  else expect(run.stderr, cmd).toMatch(message);
}

/**
 * Runs a crontab line as cron would: its command after cron's reading of %, with cron's
 * environment, from HOME. `before`: shell commands cron's shell runs first (a lower limit, as
 * PAM would set); `env`: more of cron's environment (what a crontab's NAME=value lines set).
 */
function runAsCron(line: string, { before = '', env = [] }: { before?: string; env?: string[] } = {}) {
  const { command, stdin } = commandCronRuns(line);
  const at = `date() { command date -d '${CRON_DAY} 03:00' "$@"; }; `;
  return spawnSync('env', ['-i', 'SHELL=/bin/sh', 'PATH=/usr/bin:/bin', `HOME=${home}`, 'LOGNAME=root', ...env, 'sh', '-c', `${at}${before}${command}`], { cwd: home, input: stdin, encoding: 'utf8' });
}

/**
 * `$(date +%F)` in a line runAsCron runs: its shell's `date` reads a fixed day's 03:00, as if
 * cron ran it then (the test read the machine's day after the run: a run across its
 * midnight named the other day than the test looked for).
 */
const CRON_DAY = '2026-06-03';

/** For a test that runs the CLI some 25 times: 20-35 s on a busy 2-core machine, over the default 60 s under a heavier load (it timed out). */
const SPAWNING_TIMEOUT_MS = 180_000;

describe('cron add in local mode', () => {
  it('installs a line that backs up from cron\'s environment, keeping the rest of the crontab', () => {
    writeFileSync(crontabFile, THEIRS);
    const backups = path.join(dir.path, 'backups');
    const added = openclaw(nightly(`${backups}/acme-$(date +%F).tar.zst`));
    expect(added.stderr).toBe('');
    expect(added.status).toBe(0);
    const log = path.join(home, '.openclaw', 'logs', 'cron-acme-nightly.log');
    expect(added.stdout.split('\n')).toEqual([
      'Added cron "nightly" for tenant "acme" in this user\'s crontab (see crontab -l)',
      "  schedule  0 3 * * *, in this machine's local time (cron)",
      `  runs      openclaw tenants backup acme --to ${backups}/acme-$(date +%F).tar.zst`,
      `  with      ${process.execPath} ${cliPath} --tenants-dir ${base}`,
      `  log       ${log} (output appended)`,
      '',
    ]);

    const crontab = readFileSync(crontabFile, 'utf8');
    expect(crontab.startsWith(THEIRS)).toBe(true);
    const line = crontab.slice(THEIRS.length, -1);
    expect(line).toBe(
      `0 3 * * * { echo "--- cron nightly of tenant acme, $(date +\\%FT\\%T\\%z)"; OPENCLAW_NODE='${process.execPath}' /bin/sh '${cliPath}' --tenants-dir '${base}' ` +
        `tenants backup acme --to ${backups}/acme-$(date +\\%F).tar.zst || { code=$?; echo "--- cron nightly of tenant acme failed (exit $code)"; (exit $code); }; } >> '${log}' 2>&1 ` +
        `|| { code=$?; echo "openclaw: cron nightly of tenant acme failed (exit $code), the end of its log" '${log}': >&2; tail -n 5 '${log}' >&2; exit $code; } ` +
        '# openclaw:acme:nightly',
    );

    // A run that succeeds says nothing to cron (which would mail it).
    const ran = runAsCron(line);
    expect(ran.status, ran.stderr).toBe(0);
    expect(ran.stdout + ran.stderr).toBe('');
    expect(existsSync(path.join(backups, `acme-${CRON_DAY}.tar.zst`))).toBe(true);
    // Each run's output in the log under a heading that dates it (the output has no date).
    const heading = `--- cron nightly of tenant acme, ${CRON_DAY}T\\d\\d:\\d\\d:\\d\\d[+-]\\d{4}\\n`;
    expect(readFileSync(log, 'utf8')).toMatch(new RegExp(`^${heading}Backed up tenant "acme" to ${backups}/acme-${CRON_DAY}\\.tar\\.zst\\n`));
    // The same day again: refused (the archive exists), and the log keeps both runs, the
    // failed one with a line of its own after its output (grep failed).
    const again = runAsCron(line);
    expect(again.status).toBe(3);
    expect(readFileSync(log, 'utf8')).toMatch(
      new RegExp(`^${heading}Backed up tenant "acme"[^]*\\n${heading}openclaw: .*already exists: pass --overwrite to replace it\\n--- cron nightly of tenant acme failed \\(exit 3\\)\\n$`),
    );
    // A run that fails says so to cron too (mailed to MAILTO), with the error from its log.
    expect(again.stdout).toBe('');
    expect(again.stderr).toMatch(
      new RegExp(`^openclaw: cron nightly of tenant acme failed \\(exit 3\\), the end of its log ${log}:\\n[^]*\\nopenclaw: .*already exists: pass --overwrite to replace it\\n--- cron nightly of tenant acme failed \\(exit 3\\)\\n$`),
    );
  });

  it('tells cron when the line cannot run at all (the log\'s directory or the node binary gone)', () => {
    const log = path.join(dir.path, 'logs', 'acme.log');
    expect(openclaw([...nightly(`${dir.path}/b/$(date +%F).tar.zst`), '--log', log]).status).toBe(0);
    const line = readFileSync(crontabFile, 'utf8').trim();
    rmSync(path.join(dir.path, 'logs'), { recursive: true });
    const noLog = runAsCron(line);
    expect(noLog.status).not.toBe(0);
    expect(noLog.stderr).toMatch(/^.*acme\.log.*\nopenclaw: cron nightly of tenant acme failed \(exit 2\), the end of its log /);
    mkdirSync(path.dirname(log));
    const noNode = runAsCron(line.replace(`'${process.execPath}'`, `'${dir.path}/node-was-here'`));
    expect(noNode.status).toBe(127);
    expect(noNode.stderr).toMatch(/^openclaw: cron nightly of tenant acme failed \(exit 127\), the end of its log [^]*openclaw: cannot start: [^\n]*node-was-here not found [^\n]*\n--- cron nightly of tenant acme failed \(exit 127\)\n$/);
    expect(readFileSync(log, 'utf8')).toMatch(/openclaw: cannot start: [^\n]*node-was-here not found [^\n]*\n--- cron nightly of tenant acme failed \(exit 127\)\n$/);
  });

  it('refuses a --to that names one archive for two runs (each later one would find it and fail), unless --overwrite', () => {
    writeFileSync(crontabFile, THEIRS);
    let crons = 0;
    const add = (schedule: string, to: string, ...extra: string[]) =>
      openclaw(['cron', 'add', 'acme', '--schedule', schedule, '--name', `n${++crons}`, '--cmd', `openclaw tenants backup acme --to ${to}${extra.map((flag) => ` ${flag}`).join('')}`], { TZ: 'UTC' });
    const refusals: Array<[string, string, RegExp]> = [
      ['0 3 * * *', '/b/acme.tar.zst', /^openclaw: --to names the same archive, \/b\/acme\.tar\.zst, for the run at (\S+) 03:00 and the one at (\S+) 03:00 \(UTC\): the later one would fail/],
      ['0 3,15 * * *', '/b/$(date +%F).tar.zst', /for the run at (\S+) 03:00 and the one at \1 15:00 \(UTC\)/],
      ['0 3 * * *', '/b/$(date +%a).tar.zst', /^openclaw: --to names the same archive, \/b\/[A-Z][a-z]{2}\.tar\.zst,/],
      ['0 */6 * * *', '/b/{date}.tar.zst', /the later one would fail/],
      ['0 3 * * *', "'/b/q $(date +%F).tar.zst'", /\/b\/q \$\(date \+%F\)\.tar\.zst, .*\(\$\(date …\) in single quotes is not run: write it in double quotes or unquoted\)/],
      // Every boot's run after the first found the archive and failed (it was installed).
      ['@reboot', '/b/acme.tar.zst', /^openclaw: --to names the same archive, \/b\/acme\.tar\.zst, at every boot \(@reboot\): the run at the second boot would fail/],
      // Runs on 2027-12-01 and 2028-12-01 only in 400 days from 2026-12-05: it was installed.
      ['0 3 1 12 *', '/b/acme.tar.zst', /^openclaw: --to names the same archive, \/b\/acme\.tar\.zst, for the run at \d{4}-12-01 03:00 and the one at \d{4}-12-01 03:00 \(UTC\)/],
    ];
    for (const [schedule, to, message] of refusals) {
      const run = add(schedule, to);
      expect(run.status, to).toBe(2);
      expect(run.stderr, to).toMatch(message);
      expect(run.stderr.split('\n')).toHaveLength(2);
    }
    // In New York, 19:00 and 21:00 of one day are one UTC day in winter (00:00 and 02:00), which {date} writes; in
    // summer 21:00 and the next day's 19:00 are (01:00 and 23:00): the message says so (the date seemed the wrong day).
    const zoned = openclaw(['cron', 'add', 'acme', '--schedule', '0 19,21 * * *', '--name', 'ny', '--cmd', 'openclaw tenants backup acme --to /b/{date}.tar.zst'], { TZ: 'America/New_York' });
    expect(zoned.status).toBe(2);
    expect(zoned.stderr).toMatch(/^openclaw: --to names the same archive, \/b\/(\S+)\.tar\.zst, for the run at \S+ (19:00 and the one at \S+ 21:00|21:00 and the one at \S+ 19:00) \(America\/New_York\) \(\{date\} and \{time\} are written in UTC\): the later/);
    expect(readFileSync(crontabFile, 'utf8')).toBe(THEIRS);
    // A rotation says so with --overwrite; a name with the run's date and time (@reboot too), a dry run (it writes nothing) pass.
    // (Each after the first is warned of the crons before it that back up acme at 03:00 too.)
    for (const [schedule, to, ...extra] of [['0 3 * * *', '/b/$(date +%a).tar.zst', '--overwrite'], ['*/15 * * * *', '/b/$(date +%F-%H%M).tar.zst'], ['0 3,15 * * *', '/b/{date}-$(date -u +%H).tar.zst'], ['@reboot', '/b/acme-$(date +%F-%H%M%S).tar.zst'], ['@reboot', '/b/acme.tar.zst', '--overwrite'], ['0 3 * * *', '/b/acme.tar.zst', '--dry-run']] as const) {
      const added = add(schedule, to, ...extra);
      expect(added.status, to).toBe(0);
      expect(added.stderr, to).not.toMatch(/--to names/);
    }
    expect(readFileSync(crontabFile, 'utf8').match(/# openclaw:acme:n\d+$/gm)).toHaveLength(6);
  }, SPAWNING_TIMEOUT_MS);

  it('warns when another cron backs up the same tenant at the same minute (one of the two would find it busy and fail)', () => {
    const add = (tenant: string, name: string, schedule: string, cmd: string) =>
      openclaw(['cron', 'add', tenant, '--schedule', schedule, '--name', name, '--cmd', cmd], { TZ: 'UTC' });
    mkdirSync(path.join(base, 'beta'));
    expect(add('acme', 'local', '0 3 * * *', 'openclaw tenants backup acme --to /b/$(date +%F).tar.zst')).toMatchObject({ status: 0, stderr: '' });
    expect(add('acme', 'later', '30 3 * * *', 'openclaw tenants backup acme --to s3://b/acme/$(date +%F).tar.zst')).toMatchObject({ status: 0, stderr: '' });
    expect(add('beta', 'local', '0 3 * * *', 'openclaw tenants backup beta --to /b/beta-$(date +%F).tar.zst')).toMatchObject({ status: 0, stderr: '' });
    expect(add('acme', 'prune', '0 3 * * *', 'openclaw tenants prune acme --in /b/ --keep-daily 7')).toMatchObject({ status: 0, stderr: '' });
    const s3 = add('acme', 's3', '0 3 * * *', 'openclaw tenants backup acme --to s3://b/acme/$(date +%F)-s3.tar.zst');
    expect(s3.status).toBe(0);
    expect(s3.stderr).toMatch(
      /^openclaw: warning: cron "local" of tenant "acme" backs up this tenant at \S+ 03:00 \(UTC\) too: two backups of a tenant cannot run at once, and the later to start fails \(tenant busy, exit 3\): give cron "s3" another time\n$/,
    );
    // Another base dir's crons back up other tenants (each base dir has its own locks): no warning either way.
    const elsewhere = path.join(dir.path, 'other-tenants');
    const addElsewhere = (tenant: string, name: string, cmd: string) =>
      runCli(['--tenants-dir', elsewhere, 'cron', 'add', tenant, '--schedule', '0 3 * * *', '--name', name, '--cmd', cmd], { env: { OPENCLAW_CRONTAB: fakeCrontab, HOME: home, TZ: 'UTC' } });
    createSampleTenant(path.join(elsewhere, 'acme'), { sessions: 1, memoryRows: 1 });
    expect(addElsewhere('acme', 'there', 'openclaw tenants backup acme --to /b/there-$(date +%F).tar.zst')).toMatchObject({ status: 0, stderr: '' });
    expect(addElsewhere('all', 'there', 'openclaw tenants backup --all --to /b/there/{tenant}/{date}.tar.zst')).toMatchObject({ status: 0, stderr: expect.not.stringMatching(/local|s3/) });
    const all = add('all', 'weekly', '0 3 * * 1', 'openclaw tenants backup --all --to /b/{tenant}/w-{date}.tar.zst');
    expect(all.stderr.match(/backs up the same tenants at \S+ 03:00 \(UTC\)/g)).toHaveLength(3);
    // A cron every minute shares a minute with each of them, also one twelve hours from now (past the five hours
    // of runs it was compared by, and not at the 00:00 of the days after: it was added without a word).
    const noon = (new Date().getUTCHours() + 12) % 24;
    expect(add('acme', 'midday', `0 ${noon} * * *`, 'openclaw tenants backup acme --to /b/m-$(date +%F).tar.zst').status).toBe(0);
    const often = add('acme', 'often', '* * * * *', 'openclaw tenants backup acme --to /b/o-$(date +%F-%H%M).tar.zst');
    expect(often.stderr.match(/^openclaw: warning: cron "\w+" of tenant "\w+" backs up/gm)).toHaveLength(5);
    expect(often.stderr).toMatch(new RegExp(`cron "midday" of tenant "acme" backs up this tenant at \\S+ ${String(noon).padStart(2, '0')}:00 \\(UTC\\)`));
  });

  it('refuses a second cron of that name unless --replace, and replaces it in place', () => {
    writeFileSync(crontabFile, THEIRS);
    expect(openclaw(nightly('/b/a-$(date +%F).tar.zst')).status).toBe(0);
    const again = openclaw(['--json', ...nightly('/b/other-$(date +%F).tar.zst')]);
    expect(again.status).toBe(3);
    expect(JSON.parse(again.stdout)).toEqual({ error: { code: 'CRON_EXISTS', message: 'tenant "acme" already has a cron "nightly" in this crontab: give --replace, or remove it first with cron rm' } });
    const replaced = openclaw(['--json', 'cron', 'add', 'acme', '--schedule', '@daily', '--name', 'nightly', '--cmd', 'openclaw tenants backup acme --to /b/c-$(date +%F).tar.zst', '--replace', '--log', path.join(dir.path, 'acme.log')]);
    expect(replaced.status).toBe(0);
    expect(JSON.parse(replaced.stdout)).toMatchObject({ operation: 'cron-add', mode: 'local', replaced: true, schedule: '@daily', timezone: 'local', log: path.join(dir.path, 'acme.log') });
    const crontab = readFileSync(crontabFile, 'utf8');
    expect(crontab.match(/# openclaw:/g)).toHaveLength(1);
    expect(crontab).toMatch(new RegExp(`^${THEIRS.replace(/[*]/g, '\\*')}@daily .*--to /b/c-\\$\\(date \\+\\\\%F\\)\\.tar\\.zst \\|\\| .*; \\} >> '${dir.path}/acme\\.log' 2>&1 \\|\\| .* # openclaw:acme:nightly\\n$`));
  });

  it('refuses what would not run from cron, and leaves the crontab alone', () => {
    writeFileSync(crontabFile, THEIRS);
    for (const [cmd, message] of [
      ['openclaw --tenants-dir /elsewhere tenants backup acme --to /b/x.tar.zst', /drop --tenants-dir from --cmd/],
      ['openclaw --stack prod tenants backup acme --to s3://b/x.tar.zst', /drop --stack from --cmd/],
      ['openclaw tenants backup acme --to /b/x.tar.zst; rm -rf /', /not run by a shell/],
      ['openclaw tenants backup acme --to /b/#1.tar.zst', /"#" in --cmd/],
    ] as const) {
      const run = openclaw(['cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'nightly', '--cmd', cmd]);
      expect(run.status, cmd).toBe(2);
      expect(run.stderr).toMatch(message);
    }
    expect(openclaw(['cron', 'add', 'acme', '--schedule', '0 3 * *', '--name', 'nightly', '--cmd', 'openclaw tenants list']).stderr).toMatch(/has 4 fields/);
    // A log no run could open (a directory, a path below a file) or a name no log file can
    // carry (past 255 bytes): each run's `>>` failed and the cron failed every time, unlogged.
    const list = ['--schedule', '0 3 * * *', '--cmd', 'openclaw tenants list'];
    const logIsDirectory = openclaw(['cron', 'add', 'acme', '--name', 'nightly', ...list, '--log', dir.path]);
    expect(logIsDirectory.status).toBe(2);
    expect(logIsDirectory.stderr).toBe(`openclaw: the cron's log file ${dir.path} is a directory: give a file's path, e.g. ${dir.path}/cron.log\n`);
    const logBelowFile = openclaw(['cron', 'add', 'acme', '--name', 'nightly', ...list, '--log', `${crontabFile}/logs/x.log`]);
    expect(logBelowFile.status).toBe(2);
    expect(logBelowFile.stderr).toBe(`openclaw: the cron's log file ${crontabFile}/logs/x.log cannot be created: ${crontabFile} is not a directory\n`);
    // One no lookup reaches (a segment past 255 bytes, a symlink loop) was "unexpected error: ENAMETOOLONG…", exit 1.
    const logTooLong = openclaw(['cron', 'add', 'acme', '--name', 'nightly', ...list, '--log', `${dir.path}/${'l'.repeat(300)}/x.log`]);
    expect(logTooLong.status).toBe(2);
    expect(logTooLong.stderr).toMatch(/^openclaw: the cron's log file \S+\/x\.log cannot be created: a name is too long for this file system\n$/i);
    symlinkSync('loop', path.join(dir.path, 'loop'));
    const logInLoop = openclaw(['cron', 'add', 'acme', '--name', 'nightly', ...list, '--log', `${dir.path}/loop/x.log`]);
    expect(logInLoop.status).toBe(2);
    expect(logInLoop.stderr).toMatch(/^openclaw: the cron's log file \S+\/loop\/x\.log cannot be created: [^\n]*symbolic links[^\n]*\n$/i);
    const longName = openclaw(['cron', 'add', 'acme', '--name', 'n'.repeat(300), ...list]);
    expect(longName.status).toBe(2);
    expect(longName.stderr).toBe('openclaw: the cron name "nnnnnnnnnnnnnnnn…" is 300 characters: give one of at most 64 (it names the cron\'s log file)\n');
    expect(readFileSync(crontabFile, 'utf8')).toBe(THEIRS);
    const remoteLog = runCli(['--stack', 'openclaw-backup', ...nightly('s3://b/x.tar.zst', '--log', '/tmp/x.log')], { env: { AWS_REGION: 'eu-west-1' } });
    expect(remoteLog.status).toBe(2);
    expect(remoteLog.stderr).toBe('openclaw: --log is for a cron on this machine: a scheduled backup on the gateway logs to CloudWatch\n');
  });

  it('checks --cmd as the CLI would parse it, so that a line that fails every night is refused now', () => {
    writeFileSync(crontabFile, THEIRS);
    for (const [cmd, message] of [
      ['openclaw tenants backup acme --to /b/x.tar.zst --bogus', /^openclaw: --cmd: unknown option '--bogus' \(see openclaw tenants backup --help\)\n$/],
      // A mistyped --to is named, not reported as --to missing.
      ['openclaw tenants backup acme --too /b/x.tar.zst', /^openclaw: --cmd: unknown option '--too' \(did you mean --to\?\) \(see openclaw tenants backup --help\)\n$/],
      ['openclaw tenants bakup acme --to /b/x.tar.zst', /^openclaw: --cmd: unknown command 'bakup' \(did you mean backup\?\) \(see openclaw tenants --help\)\n$/],
      ['openclaw tenants backup acme --to /b/x.tar.zst --to /b/y.tar.zst', /^openclaw: --cmd: option '--to <destination>' argument '\/b\/y\.tar\.zst' is invalid\. given twice \(first "\/b\/x\.tar\.zst"\): give it once \(see openclaw tenants backup --help\)\n$/],
      ['openclaw tenants backup acme', /^openclaw: --cmd: required option '--to <destination>' not specified \(see openclaw tenants backup --help\)\n$/],
      ['openclaw tenants backup acme --to /b/x.tar.zst --help', /^openclaw: --cmd only shows help or the version: give a command to run\n$/],
      [`openclaw tenants backup acme --to ${base}/acme/$(date +%F).tar.zst`, /^openclaw: --cmd: .* is inside the tenant base dir .*: store backups outside it\n$/],
      [`openclaw tenants backup --all --to ${base}/{tenant}.tar.zst`, /^openclaw: --cmd: .* is inside the tenant base dir/],
      ['openclaw tenants backup ../etc --to /b/x.tar.zst', /^openclaw: --cmd: invalid tenant name/],
      ['openclaw tenants backup acme --to /b/$(date +%F).tar.zst.age', /^openclaw: --cmd: ".*" ends in "\.age" but nothing encrypts the archive/],
      // cron runs the line from HOME: a relative path would be checked here and written there.
      ['openclaw tenants backup acme --to backups/acme/$(date +%F).tar.zst', /^openclaw: --cmd: --to "backups\/acme\/2026-12-31\.tar\.zst" is a relative path, which cron would take from the home directory it runs the line in: give an absolute path\n$/],
      // Not "a relative path": cron's shell expands an unquoted ~, where nothing here checks it.
      ['openclaw tenants backup acme --to ~/b/$(date +%F).tar.zst', /^openclaw: --cmd: --to "~\/b\/2026-12-31\.tar\.zst" starts with ~, which cron's shell expands to the home directory it runs the line with, or keeps if quoted: give an absolute path \(~ is \/.*\/home here\)\n$/],
      ["openclaw tenants backup acme --to /b/$(date +%F).tar.zst.age --recipients-file '~/recipients.txt'", /^openclaw: --cmd: --recipients-file "~\/recipients\.txt" starts with ~, .*: give an absolute path \(~ is /],
      ['openclaw tenants backup acme --to ~/acme.tar.zst', /^openclaw: --cmd: --to "~\/acme\.tar\.zst" starts with ~, /],
      ['openclaw tenants prune acme --in ./backups --keep-last 3', /^openclaw: --cmd: --in "\.\/backups" is a relative path/],
      ['openclaw tenants backup acme --to /b/x.tar.zst.age --recipients-file keys.txt', /^openclaw: --cmd: --recipients-file "keys\.txt" is a relative path/],
      // No relative path either: the command's own refusal, which says what to write instead.
      ['openclaw tenants backup acme --to s3:/backups/acme/$(date +%F).tar.zst', /^openclaw: --cmd: "s3:\/backups\/acme\/2026-12-31\.tar\.zst" looks like a mistyped URL, not a file path: write s3:\/\/bucket\/key /],
      ['openclaw tenants backup acme --to S3://backups/acme/$(date +%F).tar.zst', /^openclaw: --cmd: S3 URLs are written in lowercase: s3:\/\/bucket\/key\n$/],
      ['openclaw tenants backup acme --to https://backups.s3.amazonaws.com/acme/$(date +%F).tar.zst', /^openclaw: --cmd: .*s3:\/\/backups\/acme\/2026-12-31\.tar\.zst/],
      ['openclaw tenants prune acme --in s3:backups/acme/ --keep-last 3', /^openclaw: --cmd: "s3:backups\/acme\/" looks like a mistyped URL, not a file path: write s3:\/\/bucket\/prefix\/ /],
      ['openclaw tenants backup acme --to C:/b/$(date +%F).tar.zst', /^openclaw: --cmd: --to "C:\/b\/2026-12-31\.tar\.zst" is a Windows path: write a path of this machine, from \/ /],
      // How the object is stored: a refused class or key fails every run.
      ['openclaw tenants backup acme --to s3://backups/acme/$(date +%F).tar.zst --storage-class GLACIER', /^openclaw: --cmd: --storage-class GLACIER is refused: .*lifecycle rule/],
      ['openclaw tenants backup acme --to s3://backups/acme/x.tar.zst --sse-kms-key-id alias/backups', /^openclaw: --cmd: --sse-kms-key-id names the key of --sse aws:kms/],
      ['openclaw tenants backup acme --to /b/x.tar.zst --sse AES256', /^openclaw: --cmd: --sse applies only to s3:\/\/ locations\n$/],
      ['openclaw tenants backup acme --to /b/x.tar.zst --stall-timeout 10m', /^openclaw: --cmd: --stall-timeout applies only to s3:\/\/ locations\n$/],
      // A stall time that is none fails every run.
      ['openclaw tenants backup acme --to s3://backups/acme/$(date +%F).tar.zst --stall-timeout 10min', /^openclaw: --cmd: --stall-timeout "10min" is no stall time: give 1s to 24h, e.g. 90s, 10m or 1h\n$/],
      // --skip-existing as the command refuses it: every run would fail.
      ['openclaw tenants backup acme --to /b/$(date +%F).tar.zst --skip-existing', /^openclaw: --cmd: --skip-existing goes with --all /],
      ['openclaw tenants backup --all --to /b/{tenant}/$(date +%F).tar.zst --skip-existing --overwrite', /^openclaw: --cmd: give --skip-existing or --overwrite, not both/],
    ] as const) expectRefused(cmd, message);
    expect(readFileSync(crontabFile, 'utf8')).toBe(THEIRS);
    // --json: the same line as one error object.
    const json = openclaw(['--json', 'cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'nightly', '--cmd', 'openclaw tenants backup acme --to /b/x.tar.zst --bogus']);
    expect(JSON.parse(json.stdout)).toEqual({ error: { code: 'INVALID_CRON_COMMAND', message: "--cmd: unknown option '--bogus' (see openclaw tenants backup --help)" } });
    // Good lines still go in, dates and all.
    expect(openclaw(nightly(`${dir.path}/b/$(date +%F).tar.zst`)).status).toBe(0);
    expect(openclaw([...nightly(`${dir.path}/b/$(date +%F).tar.zst.age --encrypt-to age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj`), '--replace']).status).toBe(0);
    expect(openclaw([...nightly('s3://backups/acme/$(date +%F).tar.zst --stall-timeout 10m'), '--replace']).status).toBe(0);
  }, SPAWNING_TIMEOUT_MS);

  it('refuses a --cmd that backs up or prunes another tenant than the cron\'s, with remote mode\'s message', () => {
    writeFileSync(crontabFile, THEIRS);
    for (const [cmd, message] of [
      ['openclaw tenants backup other --to /x/{date}.tar.zst', 'openclaw: --cmd backs up tenant "other", but the cron belongs to tenant "acme": they must be the same\n'],
      ['openclaw --json tenants backup --to /x/a.tar.zst -- other', 'openclaw: --cmd backs up tenant "other", but the cron belongs to tenant "acme": they must be the same\n'],
      ['openclaw tenants prune other --in /x --keep-last 1', 'openclaw: --cmd prunes tenant "other", but the cron belongs to tenant "acme": they must be the same\n'],
    ] as const) expectRefused(cmd, message);
    expect(readFileSync(crontabFile, 'utf8')).toBe(THEIRS);
    // The cron's own tenant, a backup of every tenant (filed under a name of your choice) and
    // commands that back up or prune no tenant still go in.
    for (const [name, cmd] of [
      ['own', `openclaw tenants backup acme --to ${dir.path}/b/acme/$(date +%F).tar.zst`],
      ['own-prune', `openclaw tenants prune acme --in ${dir.path}/b/acme --keep-daily 7`],
      ['all', `openclaw tenants backup --all --to ${dir.path}/b/{tenant}/{date}.tar.zst`],
      ['verify', `openclaw tenants verify --from ${dir.path}/b/acme/x.tar.zst`],
    ] as const) {
      const run = openclaw(['cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', name, '--cmd', cmd]);
      expect(run.status, `${cmd}: ${run.stderr}`).toBe(0);
    }
  });

  // busybox's crontab (1.35, Debian's busybox-static) says no crontab its own way, "crontab:
  // can't open 'root': No such file or directory" (exit 1): cron add failed "could not read the
  // crontab" for a user with none yet, so no entry could ever be added (reproduced with busybox
  // crontab -c DIR). Its other failures still fail: taken for an empty crontab, the install
  // would write over the user's jobs.
  it("adds to busybox's crontab when the user has none yet, and still fails when busybox cannot read the crontab", () => {
    const busybox = path.join(dir.path, 'busybox-crontab');
    const spool = path.join(dir.path, 'spool');
    // busybox crontab's interface and words: -l chdirs to its spool directory, then opens the user's file.
    writeFileSync(
      busybox,
      `#!/bin/sh\ncd '${spool}' 2>/dev/null || { echo "crontab: can't change directory to '${spool}': No such file or directory" >&2; exit 1; }\n` +
        `case "$1" in\n  -l) if [ -f "$(id -un)" ]; then cat "$(id -un)"; else echo "crontab: can't open '$(id -un)': No such file or directory" >&2; exit 1; fi ;;\n  -) cat > "$(id -un)" ;;\nesac\n`,
    );
    chmodSync(busybox, 0o755);
    const noSpool = openclaw(nightly('/b/$(date +%F).tar.zst'), { OPENCLAW_CRONTAB: busybox });
    expect(noSpool.stderr).toBe(`openclaw: ${busybox} could not read the crontab (exit 1): crontab: can't change directory to '${spool}': No such file or directory\n`);
    expect(noSpool.status).toBe(1);
    mkdirSync(spool);
    const added = openclaw(nightly('/b/$(date +%F).tar.zst'), { OPENCLAW_CRONTAB: busybox });
    expect(added.status, added.stderr).toBe(0);
    const listed = openclaw(['cron', 'list'], { OPENCLAW_CRONTAB: busybox });
    expect(listed.stdout).toMatch(/^acme +nightly +0 3 \* \* \* +enabled +openclaw tenants backup acme --to \/b\/\$\(date \+%F\)\.tar\.zst$/m);
  });

  it('says when the crontab command fails', () => {
    const failing = path.join(dir.path, 'failing-crontab');
    writeFileSync(failing, '#!/bin/sh\necho "crontab: your crontab is locked by the administrator" >&2\nexit 1\n');
    chmodSync(failing, 0o755);
    const locked = openclaw(['--json', ...nightly('/b/$(date +%F).tar.zst')], { OPENCLAW_CRONTAB: failing });
    expect(locked.status).toBe(1);
    expect(JSON.parse(locked.stdout).error).toEqual({ code: 'CRONTAB_FAILED', message: `${failing} could not read the crontab (exit 1): crontab: your crontab is locked by the administrator` });
    const missing = openclaw(nightly('/b/$(date +%F).tar.zst'), { OPENCLAW_CRONTAB: path.join(dir.path, 'no-such-crontab') });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe(`openclaw: ${path.join(dir.path, 'no-such-crontab')} not found: OPENCLAW_CRONTAB names it; name the crontab command there, or unset OPENCLAW_CRONTAB to use crontab\n`);
    // A crontab file named where the command goes (a file, not a program): said so, not `spawn … EACCES`.
    const crontabText = path.join(dir.path, 'my-crontab');
    writeFileSync(crontabText, '0 4 * * * true\n');
    const notCommand = openclaw(nightly('/b/$(date +%F).tar.zst'), { OPENCLAW_CRONTAB: crontabText });
    expect(notCommand.status).toBe(1);
    expect(notCommand.stderr).toBe(`openclaw: ${crontabText} is not an executable command (permission denied): OPENCLAW_CRONTAB names the crontab command, one that takes -l and - as crontab does, not a crontab file; or unset it to use crontab\n`);
    const noCron = openclaw(nightly('/b/$(date +%F).tar.zst'), { OPENCLAW_CRONTAB: '', PATH: path.join(dir.path, 'empty-path') });
    expect(noCron.status).toBe(1);
    expect(noCron.stderr).toBe('openclaw: crontab not found: install cron (apt-get install cron), or set OPENCLAW_CRONTAB to the crontab command\n');
  });

  it('refuses an empty or relative HOME, which would put its log and the crontab\'s lock in the working directory', () => {
    const cwd = path.join(dir.path, 'cwd');
    mkdirSync(cwd);
    for (const HOME of ['', 'home']) {
      const refused = (args: string[]) => runCli(['--tenants-dir', base, ...args], { cwd, env: { OPENCLAW_CRONTAB: fakeCrontab, HOME } });
      const shown = HOME === '' ? 'HOME is empty' : 'HOME is not an absolute path ("home")';
      expect(refused(nightly('/b/$(date +%F).tar.zst'))).toMatchObject({ status: 2, stdout: '', stderr: `openclaw: ${shown}: name the log file with --log\n` });
      const logged = refused(nightly('/b/$(date +%F).tar.zst', '--log', path.join(dir.path, 'nightly.log')));
      expect(logged).toMatchObject({ status: 2, stdout: '', stderr: `openclaw: ${shown}: set it (the crontab's lock is ~/.openclaw/crontab.lock)\n` });
      expect(refused(['cron', 'rm', 'acme', 'nightly'])).toMatchObject({ status: 2, stderr: `openclaw: ${shown}: set it (the crontab's lock is ~/.openclaw/crontab.lock)\n` });
    }
    expect(readdirSync(cwd)).toEqual([]);
    expect(existsSync(crontabFile)).toBe(false);
  });

  it('warns when the base dir is missing, since the cron would fail', () => {
    const run = runCli(['--tenants-dir', path.join(dir.path, 'not-yet'), ...nightly('/b/$(date +%F).tar.zst')], { env: { OPENCLAW_CRONTAB: fakeCrontab, HOME: home } });
    expect(run.status).toBe(0);
    expect(run.stderr).toBe(`openclaw: warning: the tenant base dir ${dir.path}/not-yet does not exist (yet): the cron fails until it does\n`);
  });

  it('takes any openclaw command, says so in its help and when --cmd is missing, and warns of a scheduled restore over the live tenant (--force) or that only its first run can do (no --force)', () => {
    const help = openclaw(['cron', 'add', '--help']).stdout.replace(/\s+/g, ' ');
    expect(help).toContain('schedule an openclaw command for one tenant (a backup, prune, verify…; remote mode: a backup or a prune)');
    expect(help).toContain('any openclaw command; remote mode: tenants backup or tenants prune');
    // It said "the openclaw tenants backup command to run", as if nothing else could be scheduled.
    expect(openclaw(['cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'nightly'])).toMatchObject({
      status: 2,
      stderr: 'openclaw: cron add acme needs --cmd: the openclaw command to run, e.g. --cmd "openclaw tenants backup acme --to …" (any openclaw command)\n',
    });
    const archive = path.join(dir.path, 'acme.tar.zst');
    const restore = (flags: string) => ['cron', 'add', 'acme', '--schedule', '0 5 * * *', '--name', 'restore', '--replace', '--cmd', `openclaw tenants restore --from ${archive} ${flags}`];
    // A nightly restore over the live tenant loses each day's changes: added, but said.
    expect(openclaw(restore('--force'))).toMatchObject({
      status: 0,
      stderr:
        'openclaw: warning: this cron runs tenants restore --force: every run replaces the live tenant with the archive, and what changed since the archive is lost; ' +
        'to test restores on a schedule, restore under another name, replaced each run (--as NAME-restore-test --force), or give --dry-run\n',
    });
    expect(readFileSync(crontabFile, 'utf8')).toContain(`tenants restore --from ${archive} --force`);
    // Without --force every run after the first is refused, the tenant then existing (exit 3 each night, said only in the log).
    for (const [flags, whom] of [['', "the archive's tenant"], ['--as acme-restore-test', 'tenant "acme-restore-test"']] as const) {
      expect(openclaw(restore(flags)), flags).toMatchObject({
        status: 0,
        stderr:
          `openclaw: warning: this cron runs tenants restore without --force: the first run restores ${whom}, and every later run is refused (exit 3) since it then exists; ` +
          'to test restores on a schedule, restore under another name, replaced each run (--as NAME-restore-test --force), or give --dry-run\n',
      });
    }
    for (const quiet of ['--as acme-restore-test --force', '--force --dry-run', '--dry-run', '--as acme-$(date +%F)']) expect(openclaw(restore(quiet)), quiet).toMatchObject({ status: 0, stderr: '' });
    expect(openclaw(['cron', 'add', 'acme', '--schedule', '0 6 * * *', '--name', 'verify', '--cmd', `openclaw tenants verify --from ${archive}`])).toMatchObject({ status: 0, stderr: '' });
  });

  it('warns when the tenant it backs up does not exist, since every run would fail', () => {
    // A mistyped tenant was added in silence and failed every night (exit 3), said only in its log.
    const backup = (tenant: string) => ['cron', 'add', tenant, '--schedule', '0 3 * * *', '--name', 'nightly', '--cmd', `openclaw tenants backup ${tenant} --to /b/${tenant}-$(date +%F).tar.zst`];
    expect(openclaw(backup('acne'))).toMatchObject({ status: 0, stderr: `openclaw: warning: no tenant "acne" in ${base} (yet): the cron fails until it exists (see tenants list)\n` });
    // With --json the warning is in the result's notices too (it was on stderr only).
    const json = openclaw(['--json', ...backup('acne'), '--replace']);
    expect(json.stderr).toBe(`openclaw: warning: no tenant "acne" in ${base} (yet): the cron fails until it exists (see tenants list)\n`);
    expect(JSON.parse(json.stdout)).toMatchObject({ operation: 'cron-add', notices: [`warning: no tenant "acne" in ${base} (yet): the cron fails until it exists (see tenants list)`] });
    expect(openclaw(backup('acme'))).toMatchObject({ status: 0, stderr: '' });
    // A tenant whose directory is a symlink, which every backup refuses to follow (exit 3).
    symlinkSync(path.join(base, 'acme'), path.join(base, 'linked'));
    expect(openclaw(backup('linked'))).toMatchObject({ status: 0, stderr: `openclaw: warning: tenant "linked" in ${base} is a symlink, which a backup refuses to follow: the cron fails until it is a directory\n` });
    // A prune of a tenant removed since still has backups to prune.
    expect(openclaw(['cron', 'add', 'gone', '--schedule', '0 4 * * *', '--name', 'prune', '--cmd', 'openclaw tenants prune gone --in /b --keep-last 3'])).toMatchObject({ status: 0, stderr: '' });
    expect(readFileSync(crontabFile, 'utf8')).toMatch(/# openclaw:acne:nightly\n[\s\S]*# openclaw:acme:nightly\n[\s\S]*# openclaw:gone:prune\n/);
  });

  it('says its warnings in the --json error of an install that fails too (they were on stderr only)', () => {
    const refusing = path.join(dir.path, 'refusing-crontab');
    writeFileSync(refusing, `#!/bin/sh\ncase "$1" in\n  -l) echo "no crontab for $(id -un)" >&2; exit 1 ;;\n  *) echo "crontab: your use of crontab is not allowed" >&2; exit 1 ;;\nesac\n`);
    chmodSync(refusing, 0o755);
    const warning = `warning: no tenant "acne" in ${base} (yet): the cron fails until it exists (see tenants list)`;
    const run = openclaw(['--json', 'cron', 'add', 'acne', '--schedule', '0 3 * * *', '--name', 'nightly', '--cmd', 'openclaw tenants backup acne --to /b/acne-$(date +%F).tar.zst'], { OPENCLAW_CRONTAB: refusing });
    expect(run.status).toBe(1);
    const answer = JSON.parse(run.stdout) as { error: { code: string; message: string }; notices: string[] };
    expect(answer).toEqual({ error: { code: 'CRONTAB_FAILED', message: expect.stringContaining('not allowed') }, notices: [warning] });
    expect(run.stderr).toBe(`openclaw: ${warning}\nopenclaw: ${answer.error.message}\n`);
  });

  it('starts node through the launcher, with the pool it gives under the process limit at run time', () => {
    // libuv aborts Node, without a word, when it cannot start every thread of its pool, and
    // the process limit counts threads: a line that fixed the pool at 64 died under `ulimit -u 60`
    // (exit 134, "Aborted" in the log) where the command typed by hand ran with 15.
    const reporter = path.join(dir.path, 'report.cjs');
    writeFileSync(reporter, `process.stderr.write('STARTED ' + JSON.stringify({ execArgv: process.execArgv, arenas: process.env.MALLOC_ARENA_MAX, pool: process.env.UV_THREADPOOL_SIZE }) + '\\n');\n`);
    expect(openclaw(['cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'listing', '--cmd', 'openclaw tenants list --names']).status).toBe(0);
    const line = readFileSync(crontabFile, 'utf8').trim();
    const log = path.join(home, '.openclaw', 'logs', 'cron-acme-listing.log');
    const started = (before: string, env: string[] = []) => {
      rmSync(log, { force: true });
      const ran = runAsCron(line, { before, env: [`NODE_OPTIONS=--require ${reporter}`, ...env] });
      expect(ran.status, readFileSync(log, 'utf8')).toBe(0);
      const [report, ...rest] = readFileSync(log, 'utf8').split('\n').slice(1);
      expect(rest).toEqual(['acme', '']);
      return JSON.parse(report!.replace(/^STARTED /, '')) as { execArgv: string[]; arenas: string; pool: string };
    };
    const limit = (threads: number) => `ulimit -u ${threads} 2>/dev/null || ulimit -p ${threads}; `; // dash names it -p
    expect(started('')).toEqual({ execArgv: ['--max-semi-space-size=4'], arenas: '2', pool: String(THREAD_POOL_SIZE) });
    expect(started(limit(60))).toMatchObject({ pool: '15', execArgv: ['--max-semi-space-size=4', '--v8-pool-size=3'] });
    expect(started(limit(8))).toMatchObject({ pool: '2', execArgv: ['--max-semi-space-size=4', '--v8-pool-size=1'] });
    // What the crontab's own NAME=value lines set is kept, as the launcher keeps the user's.
    expect(started(limit(60), ['UV_THREADPOOL_SIZE=8', 'MALLOC_ARENA_MAX=4'])).toMatchObject({ arenas: '4', pool: '8' });
  });

  it('runs a line the version before installed (node itself, a fixed pool), and lists and replaces it', () => {
    const backups = path.join(dir.path, 'backups');
    const log = path.join(home, '.openclaw', 'logs', 'cron-acme-nightly.log');
    mkdirSync(path.dirname(log), { recursive: true });
    const before =
      `0 3 * * * { echo "--- cron nightly of tenant acme, $(date +\\%FT\\%T\\%z)"; MALLOC_ARENA_MAX=2 UV_THREADPOOL_SIZE=64 '${process.execPath}' --max-semi-space-size=4 '${cliPath}' --tenants-dir '${base}' ` +
      `tenants backup acme --to ${backups}/acme-$(date +\\%F).tar.zst; } >> '${log}' 2>&1 ` +
      `|| { code=$?; echo "openclaw: cron nightly of tenant acme failed (exit $code), the end of its log" '${log}': >&2; tail -n 5 '${log}' >&2; exit $code; } ` +
      '# openclaw:acme:nightly';
    writeFileSync(crontabFile, `${THEIRS}${before}\n`);
    const ran = runAsCron(before);
    expect(ran.status, ran.stderr).toBe(0);
    expect(existsSync(path.join(backups, `acme-${CRON_DAY}.tar.zst`))).toBe(true);
    expect(JSON.parse(openclaw(['--json', 'cron', 'list']).stdout).crons).toEqual([
      { tenant: 'acme', name: 'nightly', schedule: '0 3 * * *', cmd: `openclaw tenants backup acme --to ${backups}/acme-$(date +%F).tar.zst`, tenantsDir: base, log, enabled: true },
    ]);
    expect(openclaw([...nightly(`${backups}/acme-$(date +%F).tar.zst`), '--replace']).status).toBe(0);
    const crontab = readFileSync(crontabFile, 'utf8');
    expect(crontab.startsWith(THEIRS)).toBe(true);
    expect(crontab.slice(THEIRS.length)).toMatch(/^0 3 \* \* \* \{ echo .*; OPENCLAW_NODE='[^']*' \/bin\/sh .* # openclaw:acme:nightly\n$/);
    expect(openclaw(['cron', 'rm', 'acme', 'nightly']).status).toBe(0);
    expect(readFileSync(crontabFile, 'utf8')).toBe(THEIRS);
  });
});

describe('the new commands from cron in local mode', () => {
  it('backup --all with a {tenant} template, then a prune, each run from cron\'s environment', () => {
    createSampleTenant(path.join(base, 'globex'), { sessions: 1, memoryRows: 5 });
    const backups = path.join(dir.path, 'backups');
    const all = openclaw(['cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'all', '--cmd', `openclaw tenants backup --all --to ${backups}/{tenant}/$(date +%F).tar.zst --jobs 2`]);
    expect(all.status, all.stderr).toBe(0);
    const prune = openclaw(['cron', 'add', 'acme', '--schedule', '30 3 * * *', '--name', 'prune', '--cmd', `openclaw tenants prune acme --in ${backups}/acme --keep-last 1`]);
    expect(prune.status, prune.stderr).toBe(0);
    const lines = readFileSync(crontabFile, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(2);

    const backedUp = runAsCron(lines[0]!);
    expect(backedUp.status, backedUp.stderr).toBe(0);
    for (const tenant of ['acme', 'globex']) expect(existsSync(path.join(backups, tenant, `${CRON_DAY}.tar.zst`)), tenant).toBe(true);
    expect(readFileSync(path.join(home, '.openclaw', 'logs', 'cron-acme-all.log'), 'utf8')).toMatch(/^--- cron all of tenant acme, \S+\nBacked up 2 of 2 tenants/);

    // A second backup, taken after the cron's: the prune keeps the newest only (by creation time, not name).
    const later = openclaw(['tenants', 'backup', 'acme', '--to', path.join(backups, 'acme', 'later.tar.zst')]);
    expect(later.status, later.stderr).toBe(0);
    const pruned = runAsCron(lines[1]!);
    expect(pruned.status, pruned.stderr).toBe(0);
    expect(readFileSync(path.join(home, '.openclaw', 'logs', 'cron-acme-prune.log'), 'utf8')).toMatch(/^--- cron prune of tenant acme, \S+\nKept 1 and removed 1 backup/);
    expect(existsSync(path.join(backups, 'acme', `${CRON_DAY}.tar.zst`))).toBe(false);
    expect(existsSync(path.join(backups, 'acme', 'later.tar.zst'))).toBe(true);
  });
});

describe('cron list and rm in local mode', () => {
  it('refuses a --secret-key in --cmd, which every user would read in ps while each run lasts, and lists an older line\'s masked', () => {
    writeFileSync(crontabFile, THEIRS);
    for (const key of ['--secret-key TopSecret99', '--secret-key=TopSecret99']) {
      const cmd = `openclaw tenants backup acme --to s3://backups/acme/$(date +%F).tar.zst --endpoint https://minio.internal:9000 --access-key AK1 ${key}`;
      expectRefused(cmd, /^openclaw: --cmd: --secret-key would be in the crontab line, which every user of this machine sees in `ps` while each run lasts: drop it and set OPENCLAW_S3_SECRET_KEY=\.\.\. .*\n$/);
      expectRefused(cmd.replace('backup acme --to', 'prune acme --keep-last 3 --in').replace('$(date +%F).tar.zst', ''), /^openclaw: --cmd: --secret-key would be in the crontab line/);
    }
    expect(readFileSync(crontabFile, 'utf8')).toBe(THEIRS);
    // A line a version before this one installed: listed with the key masked, in --json too.
    expect(openclaw(nightly('/b/acme.tar.zst --overwrite')).status).toBe(0);
    writeFileSync(crontabFile, readFileSync(crontabFile, 'utf8').replace(' --overwrite ', " --overwrite --secret-key 'Top Secret99' "));
    const listed = openclaw(['cron', 'list']);
    expect(listed.stdout).toContain("openclaw tenants backup acme --to /b/acme.tar.zst --overwrite --secret-key ***\n");
    const json = openclaw(['--json', 'cron', 'list']);
    expect(JSON.parse(json.stdout).crons[0].cmd).toBe('openclaw tenants backup acme --to /b/acme.tar.zst --overwrite --secret-key ***');
    expect(listed.stdout + json.stdout).not.toContain('Secret99');
  });

  it('masks the whole of an older line\'s --secret-key however the shell quotes it (a quote, a space, a backslash in the key)', () => {
    expect(openclaw(nightly('/b/acme.tar.zst --overwrite')).status).toBe(0);
    const line = readFileSync(crontabFile, 'utf8');
    const keys = ["'Top'\\''Secret99'", '"Top\\"Secret99"', 'Top\\ Secret99', "Top'  'Secret99", '"Top $HOME"Secret99'];
    for (const [at, key] of keys.entries()) {
      for (const written of [`--secret-key ${key}`, `--secret-key=${key}`]) {
        writeFileSync(crontabFile, line.replace(' --overwrite ', ` --overwrite ${written} `));
        const listed = openclaw(['--json', 'cron', 'list']);
        expect(listed.status, `${at}: ${written}`).toBe(0);
        expect(JSON.parse(listed.stdout).crons[0].cmd, written).toBe(`openclaw tenants backup acme --to /b/acme.tar.zst --overwrite ${written.startsWith('--secret-key=') ? '--secret-key=' : '--secret-key '}***`);
      }
    }
  });

  it('lists our entries only, and removes one leaving everything else', () => {
    writeFileSync(crontabFile, THEIRS);
    expect(openclaw(nightly('/b/acme-$(date +%F).tar.zst')).status).toBe(0);
    createSampleTenant(path.join(base, 'beta'), { sessions: 1, memoryRows: 1, mediaFiles: 0 });
    expect(openclaw(['cron', 'add', 'beta', '--schedule', '30 2 * * 1-5', '--name', 'weekday', '--cmd', 'openclaw tenants backup beta --to /b/beta.tar.zst --overwrite']).status).toBe(0);

    const table = openclaw(['cron', 'list']);
    expect(table.status).toBe(0);
    expect(table.stdout.split('\n')).toEqual([
      'TENANT  NAME     SCHEDULE (LOCAL)  STATE    COMMAND',
      'acme    nightly  0 3 * * *         enabled  openclaw tenants backup acme --to /b/acme-$(date +%F).tar.zst',
      'beta    weekday  30 2 * * 1-5      enabled  openclaw tenants backup beta --to /b/beta.tar.zst --overwrite',
      '',
    ]);
    const json = JSON.parse(openclaw(['--json', 'cron', 'list', 'beta']).stdout);
    expect(json).toEqual({
      crons: [{ tenant: 'beta', name: 'weekday', schedule: '30 2 * * 1-5', cmd: 'openclaw tenants backup beta --to /b/beta.tar.zst --overwrite', tenantsDir: base, log: path.join(home, '.openclaw', 'logs', 'cron-beta-weekday.log'), enabled: true }],
    });

    const removed = openclaw(['cron', 'rm', 'acme', 'nightly']);
    expect(removed).toMatchObject({ status: 0, stdout: 'Removed cron "nightly" of tenant "acme" from this user\'s crontab\n' });
    // `cron remove`, as a new operator first types it, is `cron rm` (it was an unknown command).
    expect(openclaw(['cron', 'remove', 'beta', 'weekday'])).toMatchObject({ status: 0, stdout: 'Removed cron "weekday" of tenant "beta" from this user\'s crontab\n' });
    expect(readFileSync(crontabFile, 'utf8')).toBe(THEIRS);
    const gone = openclaw(['cron', 'rm', 'acme', 'nightly']);
    expect(gone.status).toBe(3);
    expect(gone.stderr).toBe('openclaw: tenant "acme" has no cron "nightly" in this crontab (see cron list acme)\n');
    expect(openclaw(['cron', 'list']).stdout).toBe("no crons in this user's crontab\n");
  });

  it('keeps every entry when cron add and cron rm run at the same time (a script adding many tenants in parallel)', async () => {
    writeFileSync(crontabFile, THEIRS);
    const tenants = Array.from({ length: 8 }, (_, index) => `t${index}`);
    const env = { OPENCLAW_CRONTAB: fakeCrontab, HOME: home };
    const all = (args: (tenant: string) => string[]) =>
      Promise.all(
        tenants.map(
          (tenant) =>
            new Promise<number | null>((resolve) => {
              const child = runCliAsync(['--tenants-dir', base, ...args(tenant)], { env });
              child.stdout.resume();
              child.stderr.resume();
              child.on('close', resolve);
            }),
        ),
      );
    expect(await all((tenant) => ['cron', 'add', tenant, '--schedule', '0 3 * * *', '--name', 'nightly', '--cmd', `openclaw tenants backup ${tenant} --to /b/${tenant}-$(date +%F).tar.zst`])).toEqual(tenants.map(() => 0));
    const crontab = readFileSync(crontabFile, 'utf8');
    expect(crontab.startsWith(THEIRS)).toBe(true);
    expect(crontab.match(/# openclaw:t\d:nightly$/gm)?.sort()).toEqual(tenants.map((tenant) => `# openclaw:${tenant}:nightly`));
    expect(await all((tenant) => ['cron', 'rm', tenant, 'nightly'])).toEqual(tenants.map(() => 0));
    expect(readFileSync(crontabFile, 'utf8')).toBe(THEIRS);
    expect(readdirSync(path.join(home, '.openclaw'))).toEqual(['logs']);
  });

  it('installs an empty crontab when the last line goes and the crontab command cannot remove one (a stand-in taking only -l and -)', () => {
    expect(openclaw(nightly('/b/$(date +%F).tar.zst')).status).toBe(0);
    expect(openclaw(['cron', 'rm', 'acme', 'nightly'])).toMatchObject({ status: 0, stderr: '' });
    expect(readFileSync(crontabFile, 'utf8')).toBe('');
  });

  it('reads a user without a crontab as one without crons', () => {
    expect(openclaw(['cron', 'list', 'acme'])).toMatchObject({ status: 0, stdout: 'no crons for tenant "acme" in this user\'s crontab\n' });
  });
});

const canUseRealCrontab =
  process.geteuid?.() === 0 && existsSync('/usr/bin/crontab') && existsSync('/usr/bin/unshare') && existsSync('/var/spool/cron/crontabs') &&
  spawnSync('unshare', ['-m', '--propagation', 'private', 'mount', '-t', 'tmpfs', 'tmpfs', '/var/spool/cron/crontabs']).status === 0;

/** A word quoted for sh. */
const quote = (word: string) => `'${word.replace(/'/g, "'\\''")}'`;
/** The CLI with `args`, as one sh command line. */
const cli = (...args: string[]) => [process.execPath, cliPath, '--tenants-dir', base, ...args].map(quote).join(' ');

describe.skipIf(!canUseRealCrontab)('with the real crontab command (a private, empty crontab spool)', () => {
  it('installs, lists and removes the entry, and the installed line backs up from cron\'s environment', () => {
    const backups = path.join(dir.path, 'real-backups');
    const script = [
      'set -e',
      'mount -t tmpfs -o mode=1730 tmpfs /var/spool/cron/crontabs',
      'chgrp crontab /var/spool/cron/crontabs',
      `echo '15 * * * * /usr/local/bin/rotate --all' | crontab -`,
      cli(...nightly(`${backups}/acme-$(date +%F).tar.zst`)),
      'echo "=== crontab"',
      'crontab -l',
      'echo "=== list"',
      cli('--json', 'cron', 'list'),
      cli('cron', 'rm', 'acme', 'nightly'),
      'echo "=== after"',
      'crontab -l',
    ].join('\n');
    const run = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8', env: { ...process.env, HOME: home, OPENCLAW_CRONTAB: '' } });
    expect(run.status, run.stderr).toBe(0);
    const [, installed, listed, after] = run.stdout.split(/^=== (?:crontab|list|after)\n/m);
    const lines = installed!.trim().split('\n');
    expect(lines[0]).toBe('15 * * * * /usr/local/bin/rotate --all');
    expect(lines[1]).toMatch(/^0 3 \* \* \* \{ echo .*; OPENCLAW_NODE='[^']*' \/bin\/sh .* # openclaw:acme:nightly$/);
    expect(JSON.parse(listed!.split('\n')[0]!).crons).toMatchObject([{ tenant: 'acme', name: 'nightly', schedule: '0 3 * * *', enabled: true }]);
    expect(after!.trim()).toBe('15 * * * * /usr/local/bin/rotate --all');

    const ran = runAsCron(lines[1]!);
    expect(ran.status, ran.stderr).toBe(0);
    expect(existsSync(path.join(backups, `acme-${CRON_DAY}.tar.zst`))).toBe(true);
  });

  // The last line removed, an empty crontab was installed: `crontab -l` printed nothing (exit 0)
  // where it had said "no crontab for root". The crontab is removed now, as `crontab -r` does.
  it('removes the crontab when cron rm takes out its last line, and keeps the user\'s own lines otherwise', () => {
    const script = [
      'set -e',
      'mount -t tmpfs -o mode=1730 tmpfs /var/spool/cron/crontabs',
      'chgrp crontab /var/spool/cron/crontabs',
      cli(...nightly('/b/acme-$(date +%F).tar.zst')),
      cli('cron', 'rm', 'acme', 'nightly'),
      'echo "=== after"',
      'crontab -l 2>&1 || echo "exit $?"',
      'ls -A /var/spool/cron/crontabs',
    ].join('\n');
    const run = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8', env: { ...process.env, HOME: home, OPENCLAW_CRONTAB: '' } });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout.split('=== after\n')[1]).toBe(`no crontab for ${spawnSync('id', ['-un'], { encoding: 'utf8' }).stdout.trim()}\nexit 1\n`);
  });

  // `crontab -` runs in a session of its own and outlives the CLI. Fed through a pipe, it took
  // the end of what the CLI had written when killed (a socket pair's ~200 KB) for the end of
  // the crontab: 3426 of 8000 jobs were left. Its input is a file now, read whole.
  it('installs the whole crontab when cron add is killed while crontab - runs, and the next cron command works and leaves nothing', () => {
    const jobs = Array.from({ length: 8000 }, (_, i) => `* * * * * /bin/true job${String(i).padStart(4, '0')}`.padEnd(63, '#')).join('\n') + '\n';
    const theirs = path.join(dir.path, 'theirs.crontab');
    writeFileSync(theirs, jobs);
    const installing = path.join(dir.path, 'installing');
    // crontab, once it has been handed its input: the CLI is killed there.
    const slowCrontab = path.join(dir.path, 'slow-crontab');
    writeFileSync(slowCrontab, `#!/bin/sh\n[ "$1" = - ] && touch '${installing}' && sleep 1\nexec crontab "$@"\n`);
    chmodSync(slowCrontab, 0o755);
    const script = [
      'set -e',
      'mount -t tmpfs -o mode=1730 tmpfs /var/spool/cron/crontabs',
      'chgrp crontab /var/spool/cron/crontabs',
      `crontab ${quote(theirs)}`,
      `OPENCLAW_CRONTAB=${quote(slowCrontab)} ${cli(...nightly(`${dir.path}/acme-$(date +%F).tar.zst`))} >/dev/null 2>&1 & added=$!`, // (node makes the pipe it shares non-blocking, and crontab -l then lost output)
      `until [ -e ${quote(installing)} ]; do sleep 0.02; done`,
      'kill -9 $added',
      'wait $added || true',
      // crontab - ends its install on its own.
      'sleep 2',
      'echo "=== killed"',
      'crontab -l',
      `${cli('cron', 'rm', 'acme', 'nightly')} >/dev/null`,
      'echo "=== after"',
      'crontab -l',
    ].join('\n');
    const run = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8', env: { ...process.env, HOME: home, OPENCLAW_CRONTAB: '' }, maxBuffer: 16 * 1024 * 1024 });
    expect(run.status, run.stderr).toBe(0);
    const [, killed, after] = run.stdout.split(/^=== (?:killed|after)\n/m);
    const ours = killed!.split('\n').filter((line) => line.endsWith('# openclaw:acme:nightly'));
    expect(ours).toHaveLength(1);
    expect(killed!.replace(`${ours[0]}\n`, '')).toBe(jobs);
    expect(after).toBe(jobs);
    expect(readdirSync(path.join(home, '.openclaw'))).toEqual(['logs']);
  }, 60_000);

  // The killed command's `crontab -` went on alone, and the next cron command, once it had
  // taken over the dead command's lock (2 s), read the crontab and installed its own edit; the
  // `crontab -` ending later installed over it: "Added cron hourly", exit 0, and no hourly in
  // the crontab (reproduced with Debian's crontab, its rename held 4 s by strace). The next
  // command now waits while that `crontab -` runs.
  it('never lets the next cron command install beside a killed cron add\'s crontab - that still runs: it waits, and both edits stay', () => {
    const installing = path.join(dir.path, 'installing');
    // crontab, once it has its input, taking 4 s before it installs it: the CLI is killed meanwhile,
    // not before it has named the staged input after this crontab (synchronously at its spawn:
    // 0.5 s is room for that on a loaded machine; a kill inside that moment is the race left).
    const slowCrontab = path.join(dir.path, 'slow-crontab');
    writeFileSync(slowCrontab, `#!/bin/sh\n[ "$1" = - ] && sleep 0.5 && touch '${installing}' && sleep 4\nexec crontab "$@"\n`);
    chmodSync(slowCrontab, 0o755);
    const hourly = ['cron', 'add', 'acme', '--schedule', '0 * * * *', '--name', 'hourly', '--cmd', `openclaw tenants backup acme --to ${dir.path}/acme-$(date +%F-%H).tar.zst`];
    const script = [
      'set -e',
      'mount -t tmpfs -o mode=1730 tmpfs /var/spool/cron/crontabs',
      'chgrp crontab /var/spool/cron/crontabs',
      `OPENCLAW_CRONTAB=${quote(slowCrontab)} ${cli(...nightly(`${dir.path}/acme-$(date +%F).tar.zst`))} >/dev/null 2>&1 & added=$!`,
      `until [ -e ${quote(installing)} ]; do sleep 0.02; done`,
      'kill -9 $added',
      'wait $added || true',
      `${cli(...hourly)} >/dev/null`,
      'echo "=== crontab"',
      'crontab -l',
    ].join('\n');
    const run = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8', env: { ...process.env, HOME: home, OPENCLAW_CRONTAB: '' } });
    expect(run.status, run.stderr).toBe(0);
    const crontab = run.stdout.split(/^=== crontab\n/m)[1]!;
    expect(crontab.split('\n').filter((line) => line.includes('# openclaw:')).map((line) => line.slice(line.lastIndexOf('# openclaw:')))).toEqual(['# openclaw:acme:nightly', '# openclaw:acme:hourly']);
    expect(readdirSync(path.join(home, '.openclaw'))).toEqual(['logs']);
  }, 60_000);
});
