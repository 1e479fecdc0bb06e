// `openclaw cron add|list|rm` without --stack: scheduled backups in this user's crontab
// (shared/schedule/crontab.ts writes and reads the lines, crontab-runner.ts calls `crontab`,
// or the command OPENCLAW_CRONTAB names). A line calls this very node binary and CLI script
// by absolute path, with the tenant base dir this command runs with, and appends its output
// to a log file, so it runs from cron's bare environment as it runs here.

import { lstatSync, mkdirSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';

import { CommanderError } from 'commander';

import { CronCommandError, FileSystemError, UsageError, errnoMessage } from '../shared/errors.js';
import { assertNotPlaintextAsAge } from '../shared/archive/encrypted-archive.js';
import { crontabEntries, crontabEntry, withEntry, withoutEntry, type CrontabPaths, type LocalCronEntry } from '../shared/schedule/crontab.js';
import { withCrontabLock } from '../shared/schedule/crontab-lock.js';
import { installCrontab, readCrontab } from '../shared/schedule/crontab-runner.js';
import { assertCronName, assertCronTenant, splitWords, type Word } from '../shared/schedule/cron-command.js';
import { expandTemplate, formatDate } from '../shared/schedule/destination-template.js';
import { assertWrittenAsPath, validateLocationOptions } from '../shared/storage/open-location.js';
import { isS3Url } from '../shared/storage/s3-url.js';
import { parseStallTimeout } from '../shared/storage/part-progress.js';
import { assertLocalPath } from '../shared/local-path.js';
import { assertTenantName } from '../shared/tenant/names.js';
import { assertTenantsDirShape, homeDirectory } from '../shared/tenant/tenants.js';
import type { CliContext } from './context.js';
import { assertSkipExistingFits } from './tenants-backup.js';
import { commanderMessage } from './usage-errors.js';

export interface LocalCronFlags {
  readonly schedule: string;
  readonly name: string;
  readonly cmd: string;
  readonly replace?: boolean;
  readonly log?: string;
}

/**
 * A cron name's length here: a gateway's schedule names fit 64 characters with the prefix and
 * tenant; on this machine the name is in the default log file's (`cron-<tenant>-<name>.log`),
 * which past 255 bytes cannot be created, and every run failed with nothing logged.
 */
const MAX_LOCAL_CRON_NAME_LENGTH = 64;

/**
 * Refuses a log file that a run could never open: a directory, or one below a file. The shell
 * of each run fails its `>>` then, and the cron failed every time with nothing logged.
 */
function assertLogFilePath(log: string): void {
  for (let at = log; ; at = path.dirname(at)) {
    const found = existing(log, at);
    if (found !== undefined) {
      if (at === log && found.isDirectory()) throw new UsageError(`the cron's log file ${log} is a directory: give a file's path, e.g. ${path.join(log, 'cron.log')}`);
      if (at !== log && !found.isDirectory()) throw new UsageError(`the cron's log file ${log} cannot be created: ${at} is not a directory`);
      return;
    }
    if (path.dirname(at) === at) return;
  }
}

/**
 * What is at `at`, on the way to the log file `log`; undefined where nothing is, or where a file
 * stands for one of its directories (ENOTDIR). A path that cannot be looked up (a name past 255
 * bytes, a symlink loop, a directory this user cannot search) no run could open either.
 */
function existing(log: string, at: string): ReturnType<typeof statSync> {
  try {
    return statSync(at, { throwIfNoEntry: false });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw new UsageError(`the cron's log file ${log} cannot be created: ${errnoMessage(error) ?? (error as Error).message}`);
  }
}

export async function addLocalCron(context: CliContext, tenant: string, flags: LocalCronFlags): Promise<void> {
  assertCronName(flags.name);
  if (flags.name.length > MAX_LOCAL_CRON_NAME_LENGTH) {
    throw new CronCommandError(`the cron name "${flags.name.slice(0, 16)}…" is ${flags.name.length} characters: give one of at most ${MAX_LOCAL_CRON_NAME_LENGTH} (it names the cron's log file)`);
  }
  // cron-parser is loaded only by the commands that need it.
  const { validateUnixSchedule } = await import('../shared/schedule/cron-schedule.js');
  const schedule = validateUnixSchedule(flags.schedule);
  if (flags.log !== undefined) assertLocalPath(flags.log, '--log');
  const paths: CrontabPaths = {
    node: process.execPath,
    cli: cliScript(),
    tenantsDir: context.tenantsDir,
    log: path.resolve(flags.log ?? path.join(homeDirectory('name the log file with --log'), '.openclaw', 'logs', `cron-${tenant}-${flags.name}.log`)),
  };
  assertLogFilePath(paths.log);
  // The cron's every run would be refused so (a tenant's own directory, the base dir's parent): refused now instead.
  await assertTenantsDirShape(paths.tenantsDir);
  const line = crontabEntry({ tenant, name: flags.name, schedule, cmd: flags.cmd }, paths);
  const { backedUp, restores, restoredAs } = await assertRunsAsGiven(context, tenant, flags.cmd, schedule);

  // Said before the crontab is changed: with --json they are in the notices of an install that fails too.
  if (!isDirectory(paths.tenantsDir)) context.output.notice(`warning: the tenant base dir ${paths.tenantsDir} does not exist (yet): the cron fails until it does`);
  // A mistyped tenant failed every night (TENANT_NOT_FOUND, exit 3), said only in its log; so
  // did one whose directory is a symlink, which a backup refuses to follow (exit 3).
  else if (backedUp !== undefined) {
    const found = lstatSync(path.join(paths.tenantsDir, backedUp), { throwIfNoEntry: false });
    if (found?.isSymbolicLink() === true) {
      context.output.notice(`warning: tenant "${backedUp}" in ${paths.tenantsDir} is a symlink, which a backup refuses to follow: the cron fails until it is a directory`);
    } else if (found?.isDirectory() !== true) {
      context.output.notice(`warning: no tenant "${backedUp}" in ${paths.tenantsDir} (yet): the cron fails until it exists (see tenants list)`);
    }
  }
  if (restores === 'replacing') {
    context.output.notice(
      'warning: this cron runs tenants restore --force: every run replaces the live tenant with the archive, and what changed since the archive is lost; ' +
        'to test restores on a schedule, restore under another name, replaced each run (--as NAME-restore-test --force), or give --dry-run',
    );
  }
  if (restores === 'once') {
    context.output.notice(
      `warning: this cron runs tenants restore without --force: the first run restores ${restoredAs === undefined ? "the archive's tenant" : `tenant "${restoredAs}"`}, and every later run is refused (exit 3) since it then exists; ` +
        'to test restores on a schedule, restore under another name, replaced each run (--as NAME-restore-test --force), or give --dry-run',
    );
  }
  const crontab = crontabCommand();
  const { replaced, others } = await withCrontabLock(crontabLockPath(), async (staging) => {
    const edited = withEntry(await readCrontab(crontab), tenant, flags.name, line, flags.replace === true);
    try {
      mkdirSync(path.dirname(paths.log), { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new FileSystemError(`cannot create ${path.dirname(paths.log)}, the directory of the cron's log file: ${errnoMessage(error) ?? (error as Error).message}`);
    }
    await installCrontab(crontab, edited.text, staging);
    return { replaced: edited.replaced, others: crontabEntries(edited.text).filter((entry) => !(entry.tenant === tenant && entry.name === flags.name)) };
  });

  for (const notice of await sharedMinutes(tenant, flags.name, schedule, flags.cmd, others.filter((other) => sameBaseDir(other, paths.tenantsDir)))) context.output.notice(notice);
  const [entry] = crontabEntries(line);
  context.output.result(
    { operation: 'cron-add', mode: 'local', tenant, name: flags.name, schedule, timezone: 'local', cmd: entry?.cmd ?? flags.cmd, log: paths.log, line, replaced },
    [
      `${replaced ? 'Replaced' : 'Added'} cron "${flags.name}" for tenant "${tenant}" in this user's crontab (see crontab -l)`,
      `  schedule  ${schedule}, in this machine's local time (cron)`,
      `  runs      ${entry?.cmd ?? flags.cmd}`,
      `  with      ${paths.node} ${paths.cli} --tenants-dir ${paths.tenantsDir}`,
      `  log       ${paths.log} (output appended)`,
    ],
  );
}

/**
 * `--cmd` (already one openclaw command by crontab.ts's rules) parsed by this CLI's own
 * program definition, and the checks a backup makes before it reads anything: what fails
 * here would fail every night. A backup or prune must be of the cron's own tenant, as on a
 * gateway. `$(date +FORMAT)` stands for a date meanwhile. Returns the one tenant a backup
 * backs up (none for a prune or `--all`), and how a restore restores: `replacing` the live
 * tenant each run (`--force` without `--as`), or `once` (without `--force`, every run after the
 * first is refused, unless `--as` has the date in it), and as whom.
 */
async function assertRunsAsGiven(
  context: CliContext,
  cronTenant: string,
  cmd: string,
  schedule: string,
): Promise<{ readonly backedUp: string | undefined; readonly restores?: 'replacing' | 'once'; readonly restoredAs?: string }> {
  const words = splitWords(cmd).slice(1);
  const argv = words.map((word) => word.map((part) => ('text' in part ? part.text : SAMPLE_DATE)).join(''));
  try {
    const parsed = await context.parseCommandLine(argv);
    assertAbsolutePaths(parsed.flags);
    if (parsed.flags.secretKey !== undefined) throw new CronCommandError(SECRET_IN_LINE);
    const [tenant] = parsed.args as [string | undefined];
    const backup = parsed.command.join(' ') === 'tenants backup';
    if (backup && tenant !== undefined) assertTenantName(tenant);
    assertCronTenant(parsed.command, tenant, cronTenant);
    if (!backup) {
      if (parsed.command.join(' ') !== 'tenants restore' || parsed.flags.dryRun === true) return { backedUp: undefined };
      const restoredAs = typeof parsed.flags.as === 'string' ? parsed.flags.as : undefined;
      // Under another name, --force replaces the copy the last run made (a restore test).
      if (parsed.flags.force === true) return { backedUp: undefined, ...(restoredAs === undefined && { restores: 'replacing' as const }) };
      // A name with the date in it (--as acme-$(date +%F)) is a new tenant each day.
      if (restoredAs?.includes(SAMPLE_DATE) === true) return { backedUp: undefined };
      return { backedUp: undefined, restores: 'once', ...(restoredAs !== undefined && { restoredAs }) };
    }
    assertSkipExistingFits(parsed.flags);
    const to = parsed.flags.to as string;
    if (parsed.flags.encryptTo === undefined && parsed.flags.recipientsFile === undefined && parsed.flags.pipe === undefined) assertNotPlaintextAsAge(to);
    const destination = parsed.flags.all === true ? expandTemplate(to, { time: new Date(), tenant: 'sample-tenant' }) : to;
    // How the object is stored (--sse, --storage-class): a refused one would fail every run.
    const text = (key: string) => (typeof parsed.flags[key] === 'string' ? (parsed.flags[key] as string) : undefined);
    const stallTimeout = text('stallTimeout');
    if (stallTimeout !== undefined) parseStallTimeout(stallTimeout, '--stall-timeout');
    validateLocationOptions(destination, {
      sse: text('sse'),
      sseKmsKeyId: text('sseKmsKeyId'),
      storageClass: text('storageClass'),
      ...(stallTimeout !== undefined && { stallTimeoutFromFlag: true as const }),
    });
    if (!isS3Url(destination)) {
      const { assertOutsideTenantsDir } = await import('../shared/tenant/tenants.js');
      await assertOutsideTenantsDir(context.tenantsDir, destination);
    }
    // A dry run writes nothing: its runs may name one archive.
    if (parsed.flags.overwrite !== true && parsed.flags.dryRun !== true) await assertDistinctRuns(context, words, schedule);
    return { backedUp: parsed.flags.all === true ? undefined : tenant };
  } catch (error) {
    if (error instanceof CommanderError) {
      if (['commander.helpDisplayed', 'commander.help', 'commander.version'].includes(error.code)) {
        throw new CronCommandError('--cmd only shows help or the version: give a command to run');
      }
      throw new CronCommandError(`--cmd: ${commanderMessage(error)}`);
    }
    if (error instanceof UsageError && !(error instanceof CronCommandError)) throw new CronCommandError(`--cmd: ${error.message}`);
    throw error;
  }
}

/**
 * cron runs each line as `/bin/sh -c LINE`, and that shell's command line, which every user
 * reads in `ps` (/proc/PID/cmdline is world-readable), is the whole line for as long as the
 * run lasts: a secret key in it would be anyone's. The crontab's own variables are not (a
 * process's environment is readable by its user only).
 */
const SECRET_IN_LINE =
  "--cmd: --secret-key would be in the crontab line, which every user of this machine sees in `ps` while each run lasts: drop it and set OPENCLAW_S3_SECRET_KEY=... (and OPENCLAW_S3_ACCESS_KEY) on a line of their own above it in the crontab (crontab -e), or use --aws-profile";

/**
 * `--secret-key VALUE` (or `--secret-key=VALUE`) in a listed line, its value masked: a line added
 * before `cron add` refused it. The value is the whole shell word, however quoted: a key with a
 * quote or a space written `'it'\''s'`, `"a\"b"` or `a\ b` showed what followed the first part.
 */
function withoutSecretKey(cmd: string): string {
  return cmd.replace(/(--secret-key(?:=|\s+))(?:'[^']*'|"(?:[^"\\]|\\[\s\S])*"|\\[\s\S]|[^\s'"\\])+/g, '$1***');
}

/**
 * The archive each run writes must be a new one (without --overwrite the backup refuses an
 * existing one): `$(date +FORMAT)` as the line's shell writes it, in this machine's local
 * time (cron's; `date -u`: UTC), then the placeholders as the CLI fills them, in UTC.
 */
async function assertDistinctRuns(context: CliContext, words: readonly Word[], schedule: string): Promise<void> {
  const dates: { format: string; utc: boolean }[] = [];
  const marked = words.map((word) =>
    word.map((part) => ('text' in part ? part.text : `${DATE_MARK}${dates.push({ format: part.date, utc: part.utc === true }) - 1}${DATE_MARK}`)).join(''),
  );
  const to = (await context.parseCommandLine(marked)).flags.to as string;
  const { scheduleShape } = await import('../shared/schedule/cron-schedule.js');
  const { assertChangingDestination, assertDistinctDestinations } = await import('../shared/schedule/run-destinations.js');
  const { isUtc } = await import('../shared/schedule/schedule-options.js');
  const local = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const destination = (time: Date) => {
    const shell = to.replace(DATE_MARKS, (_match, index: string) => {
      const { format, utc } = dates[Number(index)]!;
      return formatDate(format, time, utc ? 'UTC' : local);
    });
    return expandTemplate(shell, { time, tenant: 'sample-tenant' });
  };
  if (schedule === '@reboot') assertChangingDestination(destination);
  else {
    // A placeholder's date is UTC's: 19:00 in New York is the next day's {date}.
    const note = /\{(date|time)[:}]/.test(to) && !isUtc(local) ? ' ({date} and {time} are written in UTC)' : '';
    assertDistinctDestinations(scheduleShape(schedule), local, destination, new Date(), undefined, note);
  }
}

/** Stands around a `$(date …)`'s index in --to while the runs' archives are named (no path or template holds it). */
const DATE_MARK = '\u0000';
const DATE_MARKS = /\u0000(\d+)\u0000/g;

/**
 * Whether `other` runs on the tenant base dir `tenantsDir`: a tenant's lock is in its own base dir,
 * so crons of two base dirs never find each other's tenants busy. A line whose base dir cannot be
 * read (edited by hand) is taken for this one's.
 */
function sameBaseDir(other: LocalCronEntry, tenantsDir: string): boolean {
  return other.tenantsDir === undefined || path.resolve(other.tenantsDir) === path.resolve(tenantsDir);
}

/**
 * Warnings for the enabled crons (of the same base dir) that back up the same tenant (its own, or a `--all`) at a
 * minute this one does: one of the two finds the tenant busy and fails (exit 3), every time.
 */
async function sharedMinutes(tenant: string, name: string, schedule: string, cmd: string, others: readonly LocalCronEntry[]): Promise<string[]> {
  const backs = (line: string) => /(^|\s)tenants\s+backup\s/.test(line);
  const all = (line: string) => /(^|\s)--all(\s|$)/.test(line);
  if (schedule === '@reboot' || !backs(cmd)) return [];
  const { scheduleShape } = await import('../shared/schedule/cron-schedule.js');
  const { firstSharedRun } = await import('../shared/schedule/run-destinations.js');
  const local = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const [shape, now] = [scheduleShape(schedule), new Date()];
  const notices: string[] = [];
  for (const other of others) {
    if (!other.enabled || other.schedule === '@reboot' || !backs(other.cmd) || !(all(cmd) || all(other.cmd) || other.tenant === tenant)) continue;
    let shared: string | undefined;
    try {
      shared = firstSharedRun(shape, scheduleShape(other.schedule), local, now);
    } catch {
      continue; // a line edited by hand that we cannot read: cron's business
    }
    if (shared === undefined) continue;
    notices.push(
      `warning: cron "${other.name}" of tenant "${other.tenant}" backs up ${all(other.cmd) || all(cmd) ? 'the same tenants' : 'this tenant'} at ${shared} (${local}) too: ` +
        `two backups of a tenant cannot run at once, and the later to start fails (tenant busy, exit 3): give cron "${name}" another time`,
    );
  }
  return notices;
}

/** Flags of the commands a cron may run whose values are local paths (or s3:// URLs). */
const PATH_FLAGS = [
  ['to', '--to'],
  ['from', '--from'],
  ['in', '--in'],
  ['identity', '--identity'],
  ['recipientsFile', '--recipients-file'],
] as const;

/**
 * cron runs the line from the user's home directory, not from where `cron add` ran: a
 * relative path would be checked here and written there.
 */
function assertAbsolutePaths(flags: Readonly<Record<string, unknown>>): void {
  for (const [name, flag] of PATH_FLAGS) {
    const value = flags[name];
    for (const given of Array.isArray(value) ? value : value === undefined ? [] : [value]) {
      if (typeof given !== 'string' || isS3Url(given)) continue;
      // What the command itself refuses, with its message: a mistyped URL (`s3:/b/k`, `S3://…`,
      // `https://…`), a leading space, a Windows path. Each is no relative path, and was called one.
      if (name === 'to' || name === 'from' || name === 'in') assertWrittenAsPath(given, name === 'in' ? 'store' : 'archive');
      if (!given.startsWith('~')) assertLocalPath(given, flag);
      if (given.startsWith('file://') || path.isAbsolute(given)) continue;
      // Unquoted, cron's shell expands it to the home directory of its run, which no check here
      // sees; quoted, it is a directory ~ there. It was called a relative path.
      if (given.startsWith('~')) {
        const home = process.env.HOME !== undefined && path.isAbsolute(process.env.HOME) ? ` (~ is ${process.env.HOME} here)` : '';
        throw new CronCommandError(`--cmd: ${flag} ${JSON.stringify(given)} starts with ~, which cron's shell expands to the home directory it runs the line with, or keeps if quoted: give an absolute path${home}`);
      }
      throw new CronCommandError(`--cmd: ${flag} ${JSON.stringify(given)} is a relative path, which cron would take from the home directory it runs the line in: give an absolute path`);
    }
  }
}

/** What `$(date +FORMAT)` stands for while `--cmd` is checked. */
const SAMPLE_DATE = '2026-12-31';

export async function listLocalCrons(context: CliContext, tenant: string | undefined): Promise<void> {
  const crons = crontabEntries(await readCrontab(crontabCommand()))
    .filter((entry) => tenant === undefined || entry.tenant === tenant)
    .map((entry) => ({ ...entry, cmd: withoutSecretKey(entry.cmd) }));
  const rows = crons.map((cron) => [cron.tenant, cron.name, cron.schedule, cron.enabled ? 'enabled' : 'disabled', cron.cmd]);
  context.output.result(
    { crons: crons.map(({ line: _line, ...cron }) => cron) },
    crons.length === 0 ? [`no crons${tenant === undefined ? '' : ` for tenant "${tenant}"`} in this user's crontab`] : table(['TENANT', 'NAME', 'SCHEDULE (LOCAL)', 'STATE', 'COMMAND'], rows),
  );
}

export async function removeLocalCron(context: CliContext, tenant: string, name: string): Promise<void> {
  assertCronName(name);
  const crontab = crontabCommand();
  await withCrontabLock(crontabLockPath(), async (staging) => installCrontab(crontab, withoutEntry(await readCrontab(crontab), tenant, name), staging));
  context.output.result({ operation: 'cron-rm', mode: 'local', tenant, name }, [`Removed cron "${name}" of tenant "${tenant}" from this user's crontab`]);
}

/** `crontab`, or the command OPENCLAW_CRONTAB names (tests; systems whose crontab is elsewhere). */
function crontabCommand(): string {
  const chosen = process.env.OPENCLAW_CRONTAB;
  return chosen === undefined || chosen.trim() === '' ? 'crontab' : chosen;
}

/** Held while a cron command reads, edits and installs the crontab (crontab-lock.ts). */
function crontabLockPath(): string {
  return path.join(homeDirectory('set it (the crontab\'s lock is ~/.openclaw/crontab.lock)'), '.openclaw', 'crontab.lock');
}

/** The script this CLI was started from (bin/openclaw.js), symlinks (npm's bin links) resolved. */
function cliScript(): string {
  const script = process.argv[1];
  if (script === undefined) throw new UsageError('cannot tell where the openclaw CLI is installed: run cron add through the openclaw command');
  return realpathSync(script);
}

function isDirectory(dir: string): boolean {
  return statSync(dir, { throwIfNoEntry: false })?.isDirectory() === true;
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const format = (row: string[]) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ');
  return [format(header), ...rows.map(format)];
}
