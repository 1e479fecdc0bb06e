// Scheduled backups on this machine: the user's crontab, edited as text (pure functions; the
// `crontab` command that reads and installs it is crontab-runner.ts's business).
//
// An entry of ours is one line that ends with a marker comment, `# openclaw:<tenant>:<name>`
// (sh ignores it; cron passes the whole line to sh), so only our lines are ever changed and
// every other line (the user's jobs, SHELL=, MAILTO=, comments) is kept byte for byte. A
// line runs as cron runs it: /bin/sh with PATH=/usr/bin:/bin and little else, in local
// time. So it names everything absolutely: the CLI's launcher (bin/openclaw.js, run by
// /bin/sh, told which node binary to start), the tenant base dir, and a log
// file its output is appended to; and every `%` is written `\%` (cron turns a bare one into a
// newline). A run that fails says so in the log, after its output, and on stderr, which cron
// mails (MAILTO) or logs: the output in the log alone would leave a failing nightly backup
// unnoticed. A run that succeeds says nothing to cron.
//
// The command given (`--cmd`) stays the user's shell words after the program name, checked
// to be one openclaw command (cron-command.ts's rules: no `;`, `|`, `&`, redirections or
// substitutions other than `$(date +FORMAT)`), without the settings the line supplies
// (`--tenants-dir`, `--stack`), without `#` (it would comment out the log redirection) or a
// backslash (cron implementations read those differently).

import { CronCommandError, LocalCronError, UsageError } from '../errors.js';
import { assertOpenclawCommandLine, assertCronName, splitWords } from './cron-command.js';
import { assertTenantName } from '../tenant/names.js';

/** The start of our marker comment. */
export const MARKER_PREFIX = '# openclaw:';
/** The variable that names the node binary bin/openclaw.js runs (else `node` from PATH). */
export const NODE_BINARY_VARIABLE = 'OPENCLAW_NODE';

/** Where the line finds everything: absolute paths, known when `cron add` runs. */
export interface CrontabPaths {
  /** The node binary (process.execPath). */
  readonly node: string;
  /** The CLI's script (bin/openclaw.js, symlinks resolved). */
  readonly cli: string;
  readonly tenantsDir: string;
  /** The file the command's output is appended to. */
  readonly log: string;
}

export interface LocalCronSpec {
  readonly tenant: string;
  readonly name: string;
  /** 5 Unix cron fields or a macro (@daily…), already validated (cron-schedule.ts). */
  readonly schedule: string;
  /** `openclaw …`, as the user gave it. */
  readonly cmd: string;
}

/** One of our crontab lines, read back. */
export interface LocalCronEntry {
  readonly tenant: string;
  readonly name: string;
  readonly schedule: string;
  /** `openclaw …` as it was given, when the line is still in the shape we wrote; else the line's command. */
  readonly cmd: string;
  readonly tenantsDir?: string;
  readonly log?: string;
  /** False for a line of ours that someone commented out. */
  readonly enabled: boolean;
  readonly line: string;
}

/** The crontab line for `spec`. Throws CronCommandError / UsageError for anything that would not run as written. */
export function crontabEntry(spec: LocalCronSpec, paths: CrontabPaths): string {
  assertTenantName(spec.tenant);
  assertCronName(spec.name);
  const rest = commandAfterProgram(spec.cmd);
  const quoted = (what: string, value: string) => quotedPath(what, value);
  const command =
    `{ ${runHeading(spec.tenant, spec.name)}; ` +
    `${launcherCall(paths)} --tenants-dir ${quoted('the tenant base dir', paths.tenantsDir)} ${rest}${failureLine(spec.tenant, spec.name)}; } ` +
    `>> ${quoted('the log file', paths.log)} 2>&1` +
    failureNotice(spec.tenant, spec.name, quoted('the log file', paths.log));
  return `${spec.schedule} ${escapePercent(command)} ${marker(spec.tenant, spec.name)}`;
}

/**
 * The log's line before each run's output: which cron ran and when, in local time with its
 * offset (the output itself carries no date).
 */
function runHeading(tenant: string, name: string): string {
  return `echo "--- cron ${name} of tenant ${tenant}, $(date +%FT%T%z)"`;
}

/**
 * How the line starts the CLI: through its launcher, as the `openclaw` command does, so that
 * Node gets what bin/openclaw.js gives it at run time (a 4 MiB young generation, two malloc
 * arenas, and libuv's pool of THREAD_POOL_SIZE threads, a quarter of `ulimit -u` when that is
 * smaller: libuv aborts the process without a word when it cannot start every thread). The
 * launcher runs `node` from PATH, which cron's PATH may not hold: NODE_BINARY_VARIABLE names
 * this node binary instead. (Lines written before ran node itself with the launcher's
 * settings copied and a fixed pool of 64, which under a small process limit aborted where the
 * same command typed by hand ran: `cron add --replace` rewrites them.)
 */
function launcherCall(paths: CrontabPaths): string {
  return `${NODE_BINARY_VARIABLE}=${quotedPath('the node binary', paths.node)} /bin/sh ${quotedPath('the CLI script', paths.cli)}`;
}

/** How many of the log's last lines a failed run repeats on stderr: an error is one line, a `--all` summary a few. */
export const FAILURE_LOG_LINES = 5;

/**
 * Inside the log's redirection, after the command: when it fails, a line that says so after
 * its output, with its exit status (an abort or a kill leaves no error of ours in the log:
 * libuv's abort only the shell's "Aborted"), so that `grep 'failed (exit' LOG` finds every
 * failed run; then the command's own status again. Not written when the log cannot be opened
 * (the group does not run; the notice on stderr says why).
 */
function failureLine(tenant: string, name: string): string {
  return ` || { code=$?; echo "--- cron ${name} of tenant ${tenant} failed (exit $code)"; (exit $code); }`;
}

/**
 * After the command: when it fails, a line naming the cron, its exit status and its log on
 * stderr, then the end of the log (the run's error), and the command's own exit status
 * (which cron logs). Double quotes hold only names and digits: the log path stays in
 * single quotes.
 */
function failureNotice(tenant: string, name: string, quotedLog: string): string {
  return (
    ` || { code=$?; echo "openclaw: cron ${name} of tenant ${tenant} failed (exit $code), the end of its log" ${quotedLog}: >&2; ` +
    `tail -n ${FAILURE_LOG_LINES} ${quotedLog} >&2; exit $code; }`
  );
}

/** Our entries in a crontab's text, in order. */
export function crontabEntries(text: string): LocalCronEntry[] {
  const entries: LocalCronEntry[] = [];
  for (const line of lines(text)) {
    const entry = parseEntry(line);
    if (entry !== undefined) entries.push(entry);
  }
  return entries;
}

/**
 * The crontab with `line` as the entry for tenant/name: appended, or in place of the existing
 * one when `replace`; refused (CRON_EXISTS) when one exists and `replace` is not given.
 */
export function withEntry(text: string, tenant: string, name: string, line: string, replace: boolean): { text: string; replaced: boolean } {
  const existing = lines(text);
  const at = existing.findIndex((candidate) => isEntryOf(candidate, tenant, name));
  if (at !== -1 && !replace) {
    throw new LocalCronError('CRON_EXISTS', `tenant "${tenant}" already has a cron "${name}" in this crontab: give --replace, or remove it first with cron rm`);
  }
  const kept = existing.filter((candidate, index) => index === at || !isEntryOf(candidate, tenant, name));
  const next = at === -1 ? [...kept, line] : kept.map((candidate) => (isEntryOf(candidate, tenant, name) ? line : candidate));
  return { text: joinLines(next), replaced: at !== -1 };
}

/** The crontab without the entry for tenant/name; refused (CRON_NOT_FOUND) when there is none. */
export function withoutEntry(text: string, tenant: string, name: string): string {
  const existing = lines(text);
  const kept = existing.filter((line) => !isEntryOf(line, tenant, name));
  if (kept.length === existing.length) throw new LocalCronError('CRON_NOT_FOUND', `tenant "${tenant}" has no cron "${name}" in this crontab (see cron list ${tenant})`);
  return joinLines(kept);
}

/**
 * What cron hands to the shell for a line, and what it feeds the command's stdin: the
 * command part after the schedule, cut at the first bare `%` (the rest, with `%` as
 * newlines, is stdin), with `\%` turned into `%`. For running an installed line in a test
 * as cron would.
 */
export function commandCronRuns(line: string): { command: string; stdin: string } {
  const match = SCHEDULE.exec(line);
  if (match === null) throw new UsageError('not a crontab entry line');
  const body = line.slice(match[0].length);
  let command = '';
  for (let index = 0; index < body.length; index++) {
    const char = body[index]!;
    if (char === '\\' && body[index + 1] === '%') {
      command += '%';
      index++;
    } else if (char === '%') {
      return { command, stdin: body.slice(index + 1).replace(/(?<!\\)%/g, '\n').replace(/\\%/g, '%') };
    } else command += char;
  }
  return { command, stdin: '' };
}

// ---------------------------------------------------------------------------------------

/** A schedule at the start of a line: five fields, or one @macro. */
const SCHEDULE = /^\s*(?:@[a-z]+|\S+\s+\S+\s+\S+\s+\S+\s+\S+)\s+/i;
/** Our marker at the end of a line. */
const MARKER = /\s+# openclaw:([^:\s]+):(\S+)\s*$/;
/**
 * The command part of a line in the shape crontabEntry writes (the launcher told which node
 * to run, a failure's line in the log), or wrote before (node itself with the launcher's
 * settings copied, a fixed pool; before that without the run's heading, the thread pool's
 * size or the failure notice).
 */
const OUR_SHAPE = new RegExp(
  `^(?:\\{ echo "[^"]*"; )?(?:${NODE_BINARY_VARIABLE}='[^']*' /bin/sh|MALLOC_ARENA_MAX=2(?: UV_THREADPOOL_SIZE=\\d+)? '[^']*' --max-semi-space-size=4) '[^']*' --tenants-dir '(?<tenantsDir>[^']*)' (?<rest>.*?)(?: \\|\\| \\{ code=\\$\\?; echo "[^"]*"; \\(exit \\$code\\); \\})?(?:; \\})? >> '(?<log>[^']*)' 2>&1` +
    `(?: \\|\\| \\{ code=\\$\\?; .*; exit \\$code; \\})?$`,
);

function marker(tenant: string, name: string): string {
  return `${MARKER_PREFIX}${tenant}:${name}`;
}

function parseEntry(line: string): LocalCronEntry | undefined {
  const found = MARKER.exec(line);
  if (found === null) return undefined;
  const [, tenant, name] = found as unknown as [string, string, string];
  const trimmed = line.trimStart();
  const enabled = !trimmed.startsWith('#');
  const active = enabled ? trimmed : trimmed.replace(/^#+\s*/, '');
  const schedule = SCHEDULE.exec(active);
  if (schedule === null) return undefined;
  const command = active.slice(schedule[0].length, active.length - found[0].length);
  const ours = OUR_SHAPE.exec(command)?.groups;
  const unescape = (text: string) => text.replace(/\\%/g, '%');
  return {
    tenant,
    name,
    schedule: schedule[0].trim(),
    cmd: ours === undefined ? unescape(command) : `openclaw ${unescape(ours.rest!)}`,
    ...(ours !== undefined && { tenantsDir: unescape(ours.tenantsDir!), log: unescape(ours.log!) }),
    enabled,
    line,
  };
}

function isEntryOf(line: string, tenant: string, name: string): boolean {
  const found = MARKER.exec(line);
  return found !== null && found[1] === tenant && found[2] === name;
}

function lines(text: string): string[] {
  const all = text.split('\n');
  if (all.length > 0 && all[all.length - 1] === '') all.pop();
  return all;
}

/** Lines joined, ending with a newline: cron ignores a last line without one. */
function joinLines(all: readonly string[]): string {
  return all.length === 0 ? '' : `${all.join('\n')}\n`;
}

function escapePercent(command: string): string {
  return command.replace(/%/g, '\\%');
}

/** `'path'` for sh: absolute, and without what single quotes, cron or one line cannot hold. */
function quotedPath(what: string, value: string): string {
  if (!value.startsWith('/')) throw new UsageError(`${what} must be an absolute path for cron, got ${JSON.stringify(value)}`);
  // eslint-disable-next-line no-control-regex
  if (/['\\\u0000-\u001f\u007f]/.test(value)) {
    throw new UsageError(`${what} ${JSON.stringify(value)} holds a quote, a backslash or a control character, which a crontab line cannot carry safely`);
  }
  return `'${value}'`;
}

/** The user's command after its program name (`openclaw` or `…/openclaw`), checked for a crontab line. */
function commandAfterProgram(cmd: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(cmd)) throw new CronCommandError('--cmd holds a control character (a newline?): give one line');
  if (cmd.includes('#')) throw new CronCommandError('"#" in --cmd would comment out the rest of the crontab line: rename the file');
  if (cmd.includes('\\')) throw new CronCommandError('a backslash in --cmd is read differently by different crons: quote the word instead');
  assertOpenclawCommandLine(cmd);
  const program = /^\s*(?:\/\S*\/)?openclaw(?=\s|$)/.exec(cmd);
  if (program === null) throw new CronCommandError('--cmd must start with openclaw (unquoted), e.g. "openclaw tenants backup acme --to /var/backups/acme/$(date +%F).tar.zst"');
  for (const word of splitWords(cmd).slice(1)) {
    const text = word.map((part) => ('text' in part ? part.text : '')).join('');
    const flag = text.split('=')[0];
    if (flag === '--tenants-dir') throw new CronCommandError('drop --tenants-dir from --cmd: the line gets the base dir cron add runs with (openclaw --tenants-dir DIR cron add …)');
    if (flag === '--stack') throw new CronCommandError('drop --stack from --cmd: a cron on this machine runs locally (add the cron with --stack to schedule it on the gateway)');
  }
  const rest = cmd.slice(program[0].length).trim();
  if (rest === '') throw new CronCommandError('--cmd names no openclaw command: e.g. "openclaw tenants backup acme --to …"');
  return rest;
}
