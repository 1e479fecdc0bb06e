// Rough edges an operator meets first, through the built CLI: --json answers every usage
// error (commander's own too) with one {"error"} object; a destination that is a mistyped
// URL is refused instead of becoming a local file named "s3:"; a missing tenant base dir is
// an error naming it, not an empty list; hints for an age-encrypted archive restored without
// --pipe and for a destination named like another format; a backup in pieces that broke
// (its state damaged, or a day old) keeps a tenant busy only until `tenants recover` ends it.

import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createSampleTenant } from '../scripts/sample-tenant.js';
import { misleadingArchiveName } from '../shared/archive/archive-name.js';
import { continuationPathFor, saveContinuation } from '../shared/backup/continuation.js';
import { startWebServer } from './helpers/s3-server.js';
import { onTmpfs } from './helpers/tmpfs.js';
import { cliPath, runCli, runCliIn, tempDir } from './helpers/tree.js';

const dir = tempDir('openclaw-operator-');
const base = path.join(dir.path, 'tenants');
const archive = path.join(dir.path, 'acme.tar.zst');
const hasAge = existsSync('/usr/bin/age') && existsSync('/usr/bin/age-keygen');
// The cron commands here are refused before the crontab is read; were one not, it would meet
// a crontab command that does not exist, never the user's crontab.
process.env.OPENCLAW_CRONTAB = path.join(dir.path, 'no-crontab');

beforeAll(() => {
  createSampleTenant(path.join(base, 'acme'), { sessions: 1, memoryRows: 5, mediaFiles: 0 });
  expect(runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', archive]).status).toBe(0);
});
afterAll(() => dir.cleanup());

/** One JSON object on stdout, and the same one line on stderr. */
function expectJsonError(args: string[], status: number, code: string, message: RegExp) {
  const run = runCli(args);
  expect(run.status).toBe(status);
  expect(run.stdout.trim().split('\n')).toHaveLength(1);
  const answer = JSON.parse(run.stdout) as { error: { code: string; message: string } };
  expect(Object.keys(answer)).toEqual(['error']);
  expect(answer.error.code).toBe(code);
  expect(answer.error.message).toMatch(message);
  expect(run.stderr.split('\n')[0]).toBe(`openclaw: ${answer.error.message}`);
  expect(run.stderr).not.toMatch(/\n\s+at /);
}

describe('--json on usage errors', () => {
  it.each<[string, string[], RegExp]>([
    ['an unknown option', ['--json', 'tenants', 'backup', 'acme', '--to', archive, '--bogus'], /^unknown option '--bogus' \(see openclaw tenants backup --help\)$/],
    ['an unknown option before the command', ['--json', '--bogus', 'tenants', 'list'], /^unknown option '--bogus' \(see openclaw --help\)$/],
    ['a missing required option', ['--json', 'tenants', 'backup', 'acme'], /^required option '--to <destination>' not specified \(see openclaw tenants backup --help\)$/],
    ['a missing argument', ['--json', 'tenants', 'recover'], /^missing required argument 'tenant' \(see openclaw tenants recover --help\)$/],
    ['an unknown command', ['--json', 'tenants', 'frobnicate'], /^unknown command 'frobnicate' \(see openclaw tenants --help\)$/],
    ['a missing command', ['--json', 'tenants'], /^missing command: give one of backup, restore, verify, list, backups, prune, recover \(see openclaw tenants --help\)$/],
    ['an invalid option value', ['--json', 'tenants', 'restore', '--from', archive, '--max-entries', 'lots'], /argument 'lots' is invalid\. must be a positive whole number \(see openclaw tenants restore --help\)$/],
    ['--json after the command', ['tenants', 'backup', 'acme', '--json'], /^required option '--to <destination>' not specified \(see openclaw tenants backup --help\)$/],
  ])('answers %s with one error object', (_label, args, message) => {
    expectJsonError(['--tenants-dir', base, ...args], 2, 'USAGE', message);
  });

  it('answers our own usage errors the same way', () => {
    expectJsonError(['--tenants-dir', base, '--json', 'tenants', 'backup', '../etc', '--to', archive], 2, 'INVALID_NAME', /invalid tenant name/);
  });

  // Read by a person (README's --json row says so), unlike `--json --version`.
  it('leaves help plain text, wherever --json stands', () => {
    expect(runCli(['--json', 'tenants', 'backup', '--help'])).toMatchObject({ status: 0, stdout: expect.stringMatching(/^Usage: openclaw tenants backup/) });
    expect(runCli(['tenants', 'prune', '--help', '--json'])).toMatchObject({ status: 0, stdout: expect.stringMatching(/^Usage: openclaw tenants prune/) });
    expect(runCli(['help', '--json', 'cron', 'add'])).toMatchObject({ status: 0, stdout: expect.stringMatching(/^Usage: openclaw cron add/) });
  });

  it('answers a command without its subcommand as a usage error, not a success that did nothing', () => {
    for (const [args, line] of [
      [[], 'openclaw: missing command: give one of tenants, cron, doctor (see openclaw --help)\n'],
      [['cron'], 'openclaw: missing command: give one of add, list, rm, migrate (see openclaw cron --help)\n'],
    ] as const) {
      expect(runCli([...args])).toMatchObject({ status: 2, stdout: '', stderr: line });
    }
    expect(runCli(['help', 'tenants'])).toMatchObject({ status: 0, stdout: expect.stringMatching(/^Usage: openclaw tenants/) });
  });

  it('names the command help was asked about that is none (it said "missing command")', () => {
    for (const [args, line] of [
      [['help', 'tenant'], 'openclaw: unknown command "tenant": give one of tenants, cron, doctor (see openclaw --help)\n'],
      [['tenants', 'help', 'restor'], 'openclaw: unknown command "restor": give one of backup, restore, verify, list, backups, prune, recover (see openclaw tenants --help)\n'],
      [['help', 'tenants', 'restor'], 'openclaw: unknown command "restor": give one of backup, restore, verify, list, backups, prune, recover (see openclaw tenants --help)\n'],
      // Not "unknown command 'tenant' (see openclaw --help)" for the group's name mistyped.
      [['help', 'tenant', 'backup'], 'openclaw: unknown command "tenant": give one of tenants, cron, doctor (see openclaw --help)\n'],
    ] as const) {
      expect(runCli([...args])).toMatchObject({ status: 2, stdout: '', stderr: line });
    }
  });
});

describe('an operator\'s slip on the command line', () => {
  // Each is one line on stderr (commander's "(Did you mean …?)", lowercased, and help hint included) that
  // names what to type instead, exit 2, and nothing written.
  it.each<[string, string[], string]>([
    ['a misspelled required flag', ['tenants', 'restore', '--form', archive], "unknown option '--form' (did you mean --from?) (see openclaw tenants restore --help)"],
    ['a misspelled command', ['tenants', 'bakup', 'acme', '--to', path.join(dir.path, 'typo.tar.zst')], "unknown command 'bakup' (did you mean backup?) (see openclaw tenants --help)"],
    // With --help it showed the help of `tenants` (or of openclaw) and exited 0, as if the command had been understood.
    ['a misspelled command asked for its help', ['tenants', 'backpu', '--help'], "unknown command 'backpu' (did you mean backup?) (see openclaw tenants --help)"],
    ['a misspelled group asked for its help', ['tenats', '-h'], "unknown command 'tenats' (did you mean tenants?) (see openclaw --help)"],
    ['a misspelled --to', ['tenants', 'backup', 'acme', '--too', path.join(dir.path, 'typo.tar.zst')], "unknown option '--too' (did you mean --to?) (see openclaw tenants backup --help)"],
    ['a misspelled --keep-last', ['tenants', 'prune', 'acme', '--in', dir.path, '--keep-lst', '3'], "unknown option '--keep-lst' (did you mean --keep-last?) (see openclaw tenants prune --help)"],
    // It was named an option of tenants recover (whose --keep old|new|slot settles a restore).
    ['restic\'s --keep for a keep rule', ['tenants', 'prune', 'acme', '--in', dir.path, '--keep', '3'], 'tenants prune has no --keep: give the rules that keep backups, --keep-last N, --keep-daily N (or hourly, weekly, monthly, yearly) or --keep-within SPAN (see openclaw tenants prune --help)'],
    ['--as on backup', ['tenants', 'backup', 'acme', '--to', path.join(dir.path, 'as.tar.zst'), '--as', 'other'], 'tenants backup has no --as: it backs up the tenant named by its argument (tenants backup NAME --to DEST); --as is for tenants restore, to restore under another name (see openclaw tenants backup --help)'],
    ['--to on restore', ['tenants', 'restore', '--from', archive, '--to', dir.path], "tenants restore has no --to: it reads the archive --from SRC and restores into the tenant base dir (--tenants-dir DIR) under the archive's tenant name, or --as NAME (see openclaw tenants restore --help)"],
    ['--force on backup', ['tenants', 'backup', 'acme', '--to', archive, '--force'], 'tenants backup has no --force: --overwrite replaces an existing archive at --to DEST (--force is for tenants restore, to replace a tenant) (see openclaw tenants backup --help)'],
    ['--overwrite on restore', ['tenants', 'restore', '--from', archive, '--overwrite'], 'tenants restore has no --overwrite: --force replaces the tenant in its slot (kept until the restored one is verified) (see openclaw tenants restore --help)'],
    ['--tenant on backup', ['tenants', 'backup', '--tenant', 'acme', '--to', path.join(dir.path, 'flag.tar.zst')], 'tenants backup has no --tenant: name the tenant as its argument (tenants backup NAME --to DEST), or --all for every tenant (see openclaw tenants backup --help)'],
    ['a tenant named to restore', ['tenants', 'restore', 'acme', '--from', archive], 'tenants restore takes no argument (got "acme"): the archive names its tenant: give it with --from SRC, and --as NAME to restore under another name'],
    // Another tool's name for a flag: the AWS CLI's --profile and --endpoint-url, age's -r and -i, plain words.
    ['the AWS CLI\'s --profile', ['tenants', 'backup', 'acme', '--to', path.join(dir.path, 'p.tar.zst'), '--profile', 'production'], "unknown option '--profile' (did you mean --aws-profile?) (see openclaw tenants backup --help)"],
    ['the AWS CLI\'s --endpoint-url', ['tenants', 'backups', 'acme', '--in', 's3://bucket/acme/', '--endpoint-url', 'http://127.0.0.1:9'], "unknown option '--endpoint-url' (did you mean --endpoint?) (see openclaw tenants backups --help)"],
    ['age\'s -r', ['tenants', 'backup', 'acme', '--to', path.join(dir.path, 'r.tar.zst.age'), '-r', 'age1x'], "unknown option '-r' (did you mean --encrypt-to?) (see openclaw tenants backup --help)"],
    ['age\'s -i', ['tenants', 'restore', '--from', archive, '-i', 'key.txt'], "unknown option '-i' (did you mean --identity?) (see openclaw tenants restore --help)"],
    // After `--` a word is an argument, not an option: it was taken for age's -r.
    ['a word after -- that looks like a flag', ['tenants', 'backup', '--', '-r'], "required option '--to <destination>' not specified (see openclaw tenants backup --help)"],
    ['a word after -- to a command that takes no argument', ['tenants', 'restore', '--', '-i'], 'tenants restore takes no argument (got "-i"): the archive names its tenant: give it with --from SRC, and --as NAME to restore under another name'],
    // It was taken for a mistyped --force.
    ['--source for --from', ['tenants', 'restore', '--source', archive], "unknown option '--source' (did you mean --from?) (see openclaw tenants restore --help)"],
    ['--command for --cmd', ['cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'n', '--command', 'openclaw tenants list'], "unknown option '--command' (did you mean --cmd?) (see openclaw cron add --help)"],
    ['--tenant for a tenant argument', ['cron', 'list', '--tenant', 'acme'], 'cron list has no --tenant: name the tenant as its argument (cron list NAME) (see openclaw cron list --help)'],
    // It said only that --from was missing.
    ['the archive named to restore without --from', ['tenants', 'restore', archive], `tenants restore takes no argument (got ${JSON.stringify(archive)}): the archive names its tenant: give it with --from SRC, and --as NAME to restore under another name`],
    ['the archive named to verify without --from', ['tenants', 'verify', archive], `tenants verify takes no argument (got ${JSON.stringify(archive)}): give the archive with --from SRC`],
    // It said only that --dry-run is an option of backup, restore, prune and cron migrate.
    ['--dry-run on verify', ['tenants', 'verify', '--from', archive, '--dry-run'], 'tenants verify has no --dry-run: it writes to no tenant, only the verification mark beside the archive (--no-record: not even that); tenants restore --dry-run shows what a restore would do (see openclaw tenants verify --help)'],
    ['a flag of another command', ['tenants', 'list', '--in', dir.path], 'tenants list has no option --in: it is an option of tenants backups, tenants prune (see openclaw tenants list --help)'],
    // A value given with an unknown flag is not shown: a mistyped --secret-key's is a key.
    ['a misspelled --secret-key with its value', ['tenants', 'backup', 'acme', '--to', path.join(dir.path, 'k.tar.zst'), '--secret-kye=TopSecret99'], "unknown option '--secret-kye=…' (did you mean --secret-key?) (see openclaw tenants backup --help)"],
    ['an unknown flag with a value', ['tenants', 'list', '--bogus=TopSecret99'], "unknown option '--bogus=…' (see openclaw tenants list --help)"],
    ['a subcommand\'s flag before the command', ['--secret-key=TopSecret99', 'tenants', 'list'], 'openclaw has no option --secret-key: it is an option of tenants backup, tenants restore, tenants verify, tenants backups, tenants prune (see openclaw --help)'],
    // It was "did you mean --version?", the nearest global flag.
    ['--region before the command', ['--region', 'eu-west-1', 'tenants', 'list'], 'openclaw has no option --region: it is an option of tenants backup, tenants restore, tenants verify, tenants list, tenants backups, tenants prune, cron add, cron list, cron rm, cron migrate, doctor (see openclaw --help)'],
    // It said "doctor takes 0 arguments (), got 1".
    ['a word after doctor', ['doctor', 'extra'], 'doctor takes no argument (got "extra") (see openclaw doctor --help)'],
    ['a word after cron migrate', ['cron', 'migrate', 'acme'], 'cron migrate takes no argument (got "acme") (see openclaw cron migrate --help)'],
    ['an unquoted value with a space', ['tenants', 'backup', 'acme', 'extra', '--to', path.join(dir.path, 'extra.tar.zst')], 'tenants backup takes 1 argument (tenant), got 2: "acme" "extra" (quote a value that holds spaces) (see openclaw tenants backup --help)'],
    // A secret key with a space, unquoted: its second word became an argument, which was quoted.
    ['an unquoted --secret-key with a space', ['tenants', 'backup', 'acme', '--to', 's3://bucket/k.tar.zst', '--access-key', 'AK1', '--secret-key', 'Top', 'Secret99'], 'tenants backup takes 1 argument (tenant), got 2: not shown, since --secret-key was given (quote a value that holds spaces) (see openclaw tenants backup --help)'],
    ['an unquoted --secret-key= with a space, to a command without arguments', ['tenants', 'restore', '--from', 's3://bucket/k.tar.zst', '--access-key', 'AK1', '--secret-key=Top', 'Secret99'], 'tenants restore takes no argument (got 1, not shown, since --secret-key was given): the archive names its tenant: give it with --from SRC, and --as NAME to restore under another name'],
  ])('%s', (_label, args, message) => {
    const before = readdirSync(dir.path).sort();
    const run = runCli(['--tenants-dir', base, ...args]);
    expect(run).toMatchObject({ status: 2, stdout: '', stderr: `openclaw: ${message}\n` });
    expect(JSON.parse(runCli(['--tenants-dir', base, '--json', ...args]).stdout)).toEqual({ error: { code: 'USAGE', message } });
    expect(readdirSync(dir.path).sort()).toEqual(before);
    expect(readdirSync(base)).toEqual(['acme']);
  });
});

describe('a tenant name in capitals', () => {
  it('names the lowercase name to write, unless a directory of the base dir has that name: then it is the directory no command backs up (writing "acme" would back up another tenant)', () => {
    const mixed = path.join(dir.path, 'mixed-case');
    mkdirSync(path.join(mixed, 'Acme', 'memory'), { recursive: true });
    mkdirSync(path.join(mixed, 'acme', 'memory'), { recursive: true });
    const to = path.join(dir.path, 'mixed-case.tar.zst');
    const directory = `openclaw: "Acme" in ${mixed} is not a valid tenant name (^[a-z0-9][a-z0-9_-]{0,31}$): no command backs it up; rename it to a tenant name or move it out of the base dir\n`;
    for (const dryRun of [[], ['--dry-run']]) {
      const result = runCli(['--tenants-dir', mixed, 'tenants', 'backup', 'Acme', '--to', to, ...dryRun]);
      expect(result.stderr).toBe(directory);
      expect(result.status).toBe(2);
    }
    // Housekeeping there (lost+found, our own dot-directories) is never to be renamed or moved out.
    mkdirSync(path.join(mixed, 'lost+found'));
    const housekeeping = runCli(['--tenants-dir', mixed, 'tenants', 'backup', 'lost+found', '--to', to]);
    expect(housekeeping.stderr).toMatch(/^openclaw: invalid tenant name "lost\+found": must match /);
    const typed = runCli(['--tenants-dir', mixed, 'tenants', 'backup', 'ACME', '--to', to]);
    expect(typed.stderr).toBe('openclaw: invalid tenant name "ACME": tenant names are lowercase: write "acme"\n');
    expect(existsSync(to)).toBe(false);
  });
});

describe('a flag whose value was left out', () => {
  // Commander gives the flag the next argument, whatever it is: `--to $DEST --overwrite` with
  // DEST empty wrote the archive to ./--overwrite (exit 0), `--tenants-dir --json` restored
  // into ./--json/, `--log --replace` appended a cron's log to ./--replace.
  it.each<[string, string[]]>([
    ['--to', ['tenants', 'backup', 'acme', '--to', '--overwrite']],
    ['--tenants-dir', ['--tenants-dir', '--json', 'tenants', 'restore', '--from', archive]],
    ['--from', ['tenants', 'restore', '--from', '--force']],
    ['--in', ['tenants', 'prune', 'acme', '--in', '--keep-last', '3']],
    ['--encrypt-to', ['tenants', 'backup', 'acme', '--to', 'x.tar.zst.age', '--encrypt-to', '--recipients-file', 'r.txt']],
    ['--log', ['cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'n', '--cmd', `openclaw tenants backup acme --to ${path.join(dir.path, 'c.tar.zst')}`, '--log', '--replace']],
    ['--cmd\'s --to', ['cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'n', '--cmd', 'openclaw tenants backup acme --to --overwrite']],
  ])('is refused for %s (exit 2, one line), writing nothing', (flag, args) => {
    const cwd = path.join(dir.path, 'cwd');
    mkdirSync(cwd, { recursive: true });
    const run = runCli(['--tenants-dir', base, ...args].slice(args[0] === '--tenants-dir' ? 2 : 0), { cwd });
    expect(run.status).toBe(2);
    const named = flag.replace(/^--cmd's /, '');
    expect(run.stderr).toMatch(new RegExp(`^openclaw: (--cmd: )?option '${named} <[a-z]+>' argument '--[a-z-]+' is invalid\\. the value is missing: --[a-z-]+ is a flag \\(to name a file so, write \\./--[a-z-]+\\) \\(see openclaw (?:[a-z ]+ )?--help\\)\n$`));
    expect(readdirSync(cwd)).toEqual([]);
    expect(readdirSync(base)).toEqual(['acme']);
  });

  it('is refused when the next argument is the short flag -h (--to -h wrote the archive to ./-h)', () => {
    const cwd = path.join(dir.path, 'cwd-short');
    mkdirSync(cwd);
    const run = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', '-h'], { cwd });
    expect(run.status).toBe(2);
    expect(run.stderr).toBe("openclaw: option '--to <destination>' argument '-h' is invalid. the value is missing: -h is a flag (to name a file so, write ./-h) (see openclaw tenants backup --help)\n");
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('takes a file of such a name written ./--name', () => {
    const cwd = path.join(dir.path, 'cwd-dashes');
    mkdirSync(cwd);
    const run = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', './--overwrite'], { cwd });
    expect(run.status, run.stderr).toBe(0);
    expect(readdirSync(cwd)).toEqual(['--overwrite']);
  });
});

describe('a flag given twice', () => {
  it.each<[string, string[], RegExp]>([
    ['--to', ['tenants', 'backup', 'acme', '--to', path.join(dir.path, 'first.tar.zst'), '--to', path.join(dir.path, 'second.tar.zst')], /^option '--to <destination>' argument '.*second\.tar\.zst' is invalid\. given twice \(first ".*first\.tar\.zst"\): give it once \(see openclaw tenants backup --help\)$/],
    ['--from', ['tenants', 'restore', '--from', archive, '--from', archive, '--as', 'twice'], /^option '--from <source>' argument '.*' is invalid\. given twice/],
    ['--as', ['tenants', 'restore', '--from', archive, '--as', 'one', '--as', 'two'], /^option '--as <name>' argument 'two' is invalid\. given twice \(first "one"\)/],
    ['--max-entries', ['tenants', 'verify', '--from', archive, '--max-entries', '5', '--max-entries', '6'], /^option '--max-entries <n>' argument '6' is invalid\. given twice/],
    ['--tenants-dir', ['--tenants-dir', base, 'tenants', 'list'], /^option '--tenants-dir <dir>' argument '.*' is invalid\. given twice/],
    // cron's, doctor's and the remote-mode flags too, not only those of shared/command-flags.ts.
    ['cron add --schedule', ['cron', 'add', 'acme', '--schedule', '0 3 * * *', '--schedule', '0 4 * * *', '--name', 'n', '--cmd', `openclaw tenants backup acme --to ${path.join(dir.path, 'c.tar.zst')}`], /^option '--schedule <cron>' argument '0 4 \* \* \*' is invalid\. given twice \(first "0 3 \* \* \*"\)/],
    ['cron add --log', ['cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'n', '--cmd', 'openclaw tenants list', '--log', '/a.log', '--log', '/b.log'], /^option '--log <file>' argument '\/b\.log' is invalid\. given twice/],
    ['doctor --expect-uid', ['doctor', '--expect-uid', '1000', '--expect-uid', '0'], /^option '--expect-uid <uid>' argument '0' is invalid\. given twice/],
    ['tenants list --region', ['tenants', 'list', '--region', 'eu-west-1', '--region', 'us-east-1'], /^option '--region <region>' argument 'us-east-1' is invalid\. given twice/],
    // A choice flag too: `--keep old … --keep new` kept the restored tree and deleted the previous tenant.
    ['tenants recover --keep', ['tenants', 'recover', 'acme', '--keep', 'old', '--keep', 'new'], /^option '--keep <tree>' argument 'new' is invalid\. given twice \(first "old"\): give it once \(see openclaw tenants recover --help\)$/],
  ])('is refused for %s (exit 2, one JSON error), instead of the last one winning in silence', (_flag, args, message) => {
    const before = readdirSync(dir.path).sort();
    expectJsonError(['--tenants-dir', base, '--json', ...args], 2, 'USAGE', message);
    expect(readdirSync(dir.path).sort()).toEqual(before);
    expect(readdirSync(base)).toEqual(['acme']);
  });

  it('still takes only its choices for --keep', () => {
    expectJsonError(['--tenants-dir', base, '--json', 'tenants', 'recover', 'acme', '--keep', 'slots'], 2, 'USAGE', /^option '--keep <tree>' argument 'slots' is invalid\. Allowed choices are old, new, slot\./);
    expectJsonError(['--tenants-dir', base, '--json', 'tenants', 'recover', 'acme', '--keep', '--json'], 2, 'USAGE', /^option '--keep <tree>' argument missing/);
  });

  it('is still collected for a repeatable one', () => {
    const run = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'twice.tar.zst.age'), '--encrypt-to', 'garbage-one', '--encrypt-to', 'garbage-two']);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/recipient "garbage-one" is not an age recipient/);
  });
});

describe('a --secret-key', () => {
  // Its refusals echoed it: given twice, both secrets went to stderr and the --json error
  // (a cron's log, a CI log); a secret starting with `--` (MinIO's are chosen freely) was
  // refused as a flag, and shown.
  const listing = ['--json', 'tenants', 'backups', 'acme', '--in', 's3://bkt/p/', '--endpoint', 'http://127.0.0.1:1', '--access-key', 'a'];

  it.each<[string, string[], string]>([
    ['given twice', ['--secret-key', 'TOPSECRET-one', '--secret-key', 'TOPSECRET-two'], 'given twice: give it once'],
    ['followed by a flag', ['--secret-key', '--region', 'eu-west-1'], 'the value is missing: --region is a flag'],
    ['in a --cmd, given twice', [], 'given twice: give it once'],
  ])('is refused %s without showing its value', (what, flags, why) => {
    const args = what.startsWith('in a --cmd')
      ? ['--json', 'cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'n', '--cmd', 'openclaw tenants backup acme --to s3://bkt/k.tar.zst --endpoint http://h:1 --secret-key TOPSECRET-one --secret-key TOPSECRET-two']
      : [...listing, ...flags];
    const run = runCli(['--tenants-dir', base, ...args]);
    expect(run.status).toBe(2);
    expect(run.stdout + run.stderr).not.toContain('TOPSECRET');
    expect(run.stderr).toMatch(new RegExp(`^openclaw: (--cmd: )?option '--secret-key' is invalid \\(its value not shown\\)\\. ${why} \\(see openclaw tenants [a-z]+ --help\\)\n$`));
  });

  it('may start with --', () => {
    const run = runCli(['--tenants-dir', base, ...listing, '--secret-key=--TOPSECRET+/x']);
    expect(run.stdout + run.stderr).not.toContain('TOPSECRET');
    expect(JSON.parse(run.stdout)).toMatchObject({ error: { code: 'UNREACHABLE' } });
  });
});

describe('a destination that looks like a mistyped URL', () => {
  it.each([['s3:/bucket/acme.tar.zst'], ['s3:bucket/acme.tar.zst'], ['S3:/bucket/acme.tar.zst'], ['s3//bucket/acme.tar.zst'], ['gs:/bucket/acme.tar.zst'], ['https:bucket/acme.tar.zst']])(
    'refuses %s without writing anything',
    (to) => {
      const cwd = path.join(dir.path, `cwd-${Buffer.from(to).toString('hex')}`);
      mkdirSync(cwd);
      const run = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', to], { cwd });
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(new RegExp(`^openclaw: ${JSON.stringify(to).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} looks like a mistyped URL, not a file path: write `));
      expect(run.stderr.split('\n')).toHaveLength(2);
      expect(readdirSync(cwd)).toEqual([]);
    },
  );

  it('refuses one after a space (a quoted variable), which was taken as a relative path and backed up there', () => {
    const cwd = path.join(dir.path, 'cwd-space');
    mkdirSync(cwd);
    const run = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', ' s3://bucket/acme.tar.zst'], { cwd });
    expect(run).toMatchObject({ status: 2, stdout: '' });
    expect(run.stderr).toBe('openclaw: " s3://bucket/acme.tar.zst" starts with whitespace: write the location without it (a local name that starts so: prefix it with ./)\n');
    expect(readdirSync(cwd)).toEqual([]);
    // So are a listing's and a prune's, which looked in such a directory.
    for (const args of [['backups', 'acme'], ['prune', 'acme', '--keep-last', '1']]) {
      const refused = runCli(['--tenants-dir', base, 'tenants', ...args, '--in', 's3:/bucket/acme/'], { cwd });
      expect(refused, args[0]).toMatchObject({ status: 2, stdout: '' });
      expect(refused.stderr, args[0]).toMatch(/^openclaw: "s3:\/bucket\/acme\/" looks like a mistyped URL, not a file path: write s3:\/\/bucket\/prefix\/ /);
    }
  });

  it('refuses one as a restore source too', () => {
    const run = runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', 's3:/bucket/acme.tar.zst']);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/looks like a mistyped URL/);
  });

  it('refuses "-", which many tools read as standard output or input, instead of writing a file named "-"', () => {
    const cwd = path.join(dir.path, 'cwd-dash');
    mkdirSync(cwd);
    const expected = 'openclaw: "-" is taken as a file name here, not standard input or output: give a file path or s3://bucket/key (a local file named "-": write ./-)\n';
    expect(runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', '-'], { cwd })).toMatchObject({ status: 2, stdout: '', stderr: expected });
    expect(runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', '-', '--as', 'dash'], { cwd })).toMatchObject({ status: 2, stderr: expected });
    expect(readdirSync(cwd)).toEqual([]);
    expect(runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', './-'], { cwd }).status).toBe(0);
    expect(readdirSync(cwd)).toEqual(['-']);
  });

  // A shell expands ~ only at the start of a word: `--tenants-dir=~/tenants` (or a quoted one,
  // or one in an environment file) reached the CLI as it is, and a restore created the base
  // dir ./~/tenants/acme in the working directory; `--to 'C:\b\x'` wrote a file of that name.
  it.each<[string, string[], string]>([
    ['--tenants-dir=~/tenants', ['--tenants-dir=~/tenants', 'tenants', 'restore', '--from', archive], '--tenants-dir "~/tenants" starts with ~'],
    ['OPENCLAW_TENANTS_DIR=~/tenants', ['tenants', 'restore', '--from', archive], 'OPENCLAW_TENANTS_DIR "~/tenants" starts with ~'],
    ['--to=~/acme.tar.zst', ['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to=~/acme.tar.zst'], 'the location "~/acme.tar.zst" starts with ~'],
    ['--in "~"', ['--tenants-dir', base, 'tenants', 'backups', 'acme', '--in', '~'], 'the location "~" starts with ~'],
    ['--identity=~/key.txt', ['--tenants-dir', base, 'tenants', 'verify', '--from', archive, '--identity=~/key.txt'], 'identity file "~/key.txt" starts with ~'],
    ['--to "C:\\b\\acme.tar.zst"', ['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', 'C:\\b\\acme.tar.zst'], 'the location "C:\\\\b\\\\acme.tar.zst" is a Windows path'],
    ['--tenants-dir "D:/tenants"', ['--tenants-dir', 'D:/tenants', 'tenants', 'restore', '--from', archive], '--tenants-dir "D:/tenants" is a Windows path'],
  ])('refuses %s, a path no shell expanded or a Windows one, in one line, writing nothing', (what, args, start) => {
    const cwd = path.join(dir.path, `cwd-${Buffer.from(what).toString('hex')}`);
    mkdirSync(cwd);
    const env = { HOME: '/home/operator', OPENCLAW_TENANTS_DIR: what.startsWith('OPENCLAW') ? '~/tenants' : base };
    const run = runCli(args, { cwd, env });
    expect(run).toMatchObject({ status: 2, stdout: '' });
    expect(run.stderr.startsWith(`openclaw: ${start}`), run.stderr).toBe(true);
    expect(run.stderr).toMatch(what.includes('~/') ? /: write "\/home\/operator\/[a-z.]+" \(a file or directory of that name: prefix it with \.\/\)\n$/ : /\(a file or directory of that name: prefix it with \.\/\)\n$/);
    expect(run.stderr.split('\n')).toHaveLength(2);
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('names the --all template as written, not one tenant\'s archive, when it starts with ~', () => {
    // It was told to write "/home/operator/b/sample-tenant.tar.zst": every tenant's backup to one file.
    const run = runCli(['--tenants-dir', base, 'tenants', 'backup', '--all', '--to', '~/b/{tenant}.tar.zst'], { env: { HOME: '/home/operator' } });
    expect(run).toMatchObject({ status: 2, stdout: '' });
    expect(run.stderr).toMatch(/^openclaw: the location "~\/b\/\{tenant\}\.tar\.zst" starts with ~, .*: write "\/home\/operator\/b\/\{tenant\}\.tar\.zst" \(/);
  });

  // Read here as /C:/b/acme.tar.zst (`--to file://C:/x.tar.zst` created a directory C: at the
  // root); a restore or a check looked there (only those run here: nothing written outside).
  it.each(['file:///C:/b/acme.tar.zst', 'file://c:/b/acme.tar.zst', 'file:///D:\\b\\acme.tar.zst'])('refuses the Windows file URL %s', (url) => {
    for (const command of [['restore', '--as', 'from-url'], ['verify']]) {
      const run = runCli(['--tenants-dir', base, 'tenants', ...command, '--from', url]);
      expect(run).toMatchObject({ status: 2, stdout: '' });
      expect(run.stderr).toMatch(/^openclaw: the location "file:[^"]+" is a Windows file URL: write a path of this machine, from \/ \(a directory [CcD]: at the root: write its path, \/[CcD]:\/…, without file:\/\/\)\n$/);
    }
    expect(existsSync(path.join(base, 'from-url'))).toBe(false);
  });

  it('takes ./~ for a file of that name', () => {
    const cwd = path.join(dir.path, 'cwd-tilde');
    mkdirSync(cwd);
    expect(runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', './~acme.tar.zst'], { cwd }).status).toBe(0);
    expect(readdirSync(cwd)).toEqual(['~acme.tar.zst']);
  });

  it('says how to name the archive when --to is an existing directory, and writes nothing in it', () => {
    const into = path.join(dir.path, 'into-dir');
    mkdirSync(into);
    const run = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', into]);
    expect(run).toMatchObject({ status: 1, stdout: '', stderr: `openclaw: ${into} is a directory, not an archive file: name the archive in it, e.g. ${into}/NAME.tar.zst\n` });
    expect(readdirSync(into)).toEqual([]);
  });

  it('says how to find the archive when --from is a directory', () => {
    const from = path.join(dir.path, 'from-dir');
    mkdirSync(from);
    const expected = `openclaw: ${from} is a directory, not an archive file: give the archive's path (tenants backups NAME --in ${from} lists a tenant's archives in it)\n`;
    expect(runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', from, '--as', 'from-dir'])).toMatchObject({ status: 1, stdout: '', stderr: expected });
    expect(runCli(['--tenants-dir', base, 'tenants', 'verify', '--from', from])).toMatchObject({ status: 1, stderr: expected });
    expect(existsSync(path.join(base, 'from-dir'))).toBe(false);
  });

  // `--from DIR/` was a usage error (exit 2) where `--from DIR` failed NOT_A_FILE (exit 1, as the
  // exit-code table has it): the slash changes neither the exit code nor the line.
  it('says the same, with the same exit code, when the directory is given with a trailing slash', () => {
    const from = path.join(dir.path, 'from-slash-dir');
    mkdirSync(from);
    const expected = `openclaw: ${from} is a directory, not an archive file: give the archive's path (tenants backups NAME --in ${from} lists a tenant's archives in it)\n`;
    expect(runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', `${from}/`, '--as', 'from-slash-dir'])).toMatchObject({ status: 1, stdout: '', stderr: expected });
    expect(runCli(['--tenants-dir', base, 'tenants', 'verify', '--from', `${from}/`])).toMatchObject({ status: 1, stderr: expected });
    expect(runCli(['--json', '--tenants-dir', base, 'tenants', 'verify', '--from', `${from}/`])).toMatchObject({ status: 1, stdout: `${JSON.stringify({ error: { code: 'NOT_A_FILE', message: expected.slice('openclaw: '.length, -1) } })}\n` });
    expect(runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', `${from}/`])).toMatchObject({ status: 1, stderr: `openclaw: ${from} is a directory, not an archive file: name the archive in it, e.g. ${from}/NAME.tar.zst\n` });
    expect(runCli(['--tenants-dir', base, 'tenants', 'verify', '--from', `${from}-missing/`])).toMatchObject({ status: 2, stderr: `openclaw: "${from}-missing/" names a directory: give the archive's file name\n` });
    expect(readdirSync(from)).toEqual([]);
    expect(existsSync(path.join(base, 'from-slash-dir'))).toBe(false);
  });

  it('says which directory to give when --in is an archive', () => {
    const expected = `openclaw: ${archive} is not a directory: give the directory the archives are in, ${dir.path} (tenants verify --from ${archive} checks this one)\n`;
    expect(runCli(['--tenants-dir', base, 'tenants', 'backups', 'acme', '--in', archive])).toMatchObject({ status: 2, stdout: '', stderr: expected });
    expect(runCli(['--tenants-dir', base, 'tenants', 'prune', 'acme', '--in', archive, '--keep-last', '1'])).toMatchObject({ status: 2, stderr: expected });
    expect(runCli(['--tenants-dir', base, 'tenants', 'prune', 'acme', '--in', archive, '--keep-last', '1', '--dry-run'])).toMatchObject({ status: 2, stderr: expected });
    expect(JSON.parse(runCli(['--json', '--tenants-dir', base, 'tenants', 'backups', 'acme', '--in', archive]).stdout)).toEqual({ error: { code: 'USAGE', message: expected.slice('openclaw: '.length, -1) } });
    expect(existsSync(archive)).toBe(true);
  });
});

describe('a local destination inside the tenant base dir', () => {
  // In the tenant's own directory the archive would be in every later backup of it and be
  // deleted by a restore --force of the tenant; anywhere else in the base dir it makes up a
  // tenant (listed, backed up by --all).
  it.each<[string, string[]]>([
    ['the tenant\'s own directory', ['acme', 'self.tar.zst']],
    ['a new directory, which would become a tenant', ['backups', 'acme.tar.zst']],
    ['the base dir itself', ['acme.tar.zst']],
  ])('is refused in %s (exit 2), before anything is written', (_where, parts) => {
    const before = describeBase();
    for (const extra of [[], ['--dry-run']]) {
      const run = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(base, ...parts), ...extra]);
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(/^openclaw: .* is inside the tenant base dir .*: store backups outside it\n$/);
      expect(describeBase()).toEqual(before);
    }
  });

  it('is refused through a symlink into the base dir, and for every tenant of --all', () => {
    const link = path.join(dir.path, 'into-base');
    symlinkSync(base, link);
    const before = describeBase();
    expect(runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(link, 'acme', 'x.tar.zst')]).status).toBe(2);
    const all = runCli(['--tenants-dir', base, 'tenants', 'backup', '--all', '--to', path.join(base, '{tenant}', 'x.tar.zst')]);
    expect(all.status).toBe(1);
    expect(all.stdout).toMatch(/inside the tenant base dir/);
    expect(describeBase()).toEqual(before);
    rmSync(link);
  });

  it('is not confused with a sibling directory that shares the base dir\'s name as a prefix', () => {
    const sibling = path.join(`${base}-backups`, 'acme.tar.zst');
    expect(runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', sibling]).status).toBe(0);
    rmSync(`${base}-backups`, { recursive: true });
  });
});

/** Every path under the base dir. */
function describeBase(): string[] {
  return (readdirSync(base, { recursive: true }) as string[]).sort();
}

describe('a missing tenant base dir', () => {
  const missing = path.join(dir.path, 'no-such-base');

  it('is an error naming it for list, list --names, backup and recover, never "no tenants"', () => {
    const expected = `the tenant base dir ${missing} does not exist (set it with --tenants-dir or OPENCLAW_TENANTS_DIR)`;
    for (const args of [['tenants', 'list'], ['tenants', 'list', '--names'], ['tenants', 'backup', 'acme', '--to', path.join(dir.path, 'x.tar.zst')], ['tenants', 'recover', 'acme']]) {
      const run = runCli(['--tenants-dir', missing, ...args]);
      expect(run).toMatchObject({ status: 1, stdout: '', stderr: `openclaw: ${expected}\n` });
    }
    expectJsonError(['--tenants-dir', missing, '--json', 'tenants', 'list'], 1, 'TENANTS_DIR_NOT_FOUND', /does not exist/);
    // A file where the base dir should be.
    const file = path.join(dir.path, 'a-file');
    writeFileSync(file, '');
    expect(runCli(['--tenants-dir', file, 'tenants', 'list']).stderr).toBe(`openclaw: the tenant base dir ${file} is not a directory (set it with --tenants-dir or OPENCLAW_TENANTS_DIR)\n`);
    // An empty base dir is fine: no tenants.
    const empty = path.join(dir.path, 'empty-base');
    mkdirSync(empty);
    expect(runCli(['--tenants-dir', empty, 'tenants', 'list', '--names'])).toMatchObject({ status: 0, stdout: '' });
  });

  it('is created by a restore (a new gateway), as before', () => {
    const fresh = path.join(dir.path, 'new-gateway', 'tenants');
    expect(runCli(['--tenants-dir', fresh, 'tenants', 'restore', '--from', archive]).status).toBe(0);
    expect(readdirSync(fresh)).toEqual(['acme']);
  });

  it('is refused by a restore when a file stands where the base dir should be, with one line', () => {
    const file = path.join(dir.path, 'a-file-base');
    writeFileSync(file, 'not a directory\n');
    const run = runCli(['--tenants-dir', file, 'tenants', 'restore', '--from', archive]);
    expect(run).toMatchObject({ status: 1, stderr: `openclaw: the tenant base dir ${file} is not a directory (set it with --tenants-dir or OPENCLAW_TENANTS_DIR)\n` });
    expect(readFileSync(file, 'utf8')).toBe('not a directory\n');
  });

  it('is never the working directory: an empty --tenants-dir or OPENCLAW_TENANTS_DIR is a usage error', () => {
    const cwd = path.join(dir.path, 'cwd');
    mkdirSync(path.join(cwd, 'looks-like-a-tenant'), { recursive: true });
    for (const args of [['tenants', 'list', '--names'], ['tenants', 'backup', '--all', '--to', path.join(dir.path, 'from-cwd-{tenant}.tar.zst')], ['tenants', 'restore', '--from', archive]]) {
      for (const [flags, env] of [[['--tenants-dir', ''], {}], [[], { OPENCLAW_TENANTS_DIR: '' }]] as const) {
        const run = runCli([...flags, ...args], { cwd, env });
        expect(run).toMatchObject({ status: 2, stdout: '' });
        expect(run.stderr).toMatch(/^openclaw: (--tenants-dir|OPENCLAW_TENANTS_DIR) is empty: name the tenant base dir\n$/);
      }
    }
    expect(readdirSync(cwd)).toEqual(['looks-like-a-tenant']);
    expect(readdirSync(dir.path).filter((name) => name.startsWith('from-cwd-'))).toEqual([]);
  });

  it('is never the working directory: an empty or relative HOME, without --tenants-dir or OPENCLAW_TENANTS_DIR, is a usage error', () => {
    const cwd = path.join(dir.path, 'cwd-home');
    mkdirSync(path.join(cwd, '.openclaw', 'tenants', 'looks-like-a-tenant'), { recursive: true });
    for (const args of [['tenants', 'list', '--names'], ['tenants', 'backup', '--all', '--to', path.join(dir.path, 'from-home-{tenant}.tar.zst')], ['tenants', 'restore', '--from', archive]]) {
      for (const HOME of ['', '.']) {
        const run = runCli(args, { cwd, env: { HOME, OPENCLAW_TENANTS_DIR: undefined } });
        expect(run).toMatchObject({ status: 2, stdout: '' });
        const shown = HOME === '' ? 'HOME is empty' : 'HOME is not an absolute path (".")';
        expect(run.stderr).toBe(`openclaw: ${shown}: name the tenant base dir with --tenants-dir or OPENCLAW_TENANTS_DIR\n`);
      }
    }
    expect(readdirSync(path.join(cwd, '.openclaw', 'tenants'))).toEqual(['looks-like-a-tenant']);
    expect(readdirSync(dir.path).filter((name) => name.startsWith('from-home-'))).toEqual([]);
  });

  it('names a tenant missing from an existing base dir with exit code 3', () => {
    expectJsonError(['--tenants-dir', base, '--json', 'tenants', 'backup', 'nobody', '--to', path.join(dir.path, 'n.tar.zst')], 3, 'TENANT_NOT_FOUND', /no tenant "nobody"/);
  });
});

describe('a --pipe command that exits 0 without reading the whole archive', () => {
  // The archive fits whole in the buffer the command reads it from, so every write succeeded:
  // "Backed up … 100 B stored", exit 0.
  it('fails the backup in one line and stores nothing; fails a restore through one the same way', () => {
    const partial = path.join(dir.path, 'partial.tar.zst');
    const run = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', partial, '--pipe', 'trap "" TERM; head -c 100; sleep 0.5']);
    expect(run).toMatchObject({ status: 1, stdout: '', stderr: 'openclaw: pipe command exited before reading all of its input\n' });
    expect(existsSync(partial)).toBe(false);
    expect(readdirSync(dir.path).filter((name) => name.includes('partial'))).toEqual([]);
    const restore = runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive, '--as', 'partial', '--pipe', 'head -c 100; sleep 0.5']);
    expect(restore).toMatchObject({ status: 1, stderr: 'openclaw: pipe command exited before reading all of its input\n' });
    expect(readdirSync(base)).not.toContain('partial');
  });
});

describe('hints', () => {
  it.runIf(hasAge)('says an age-encrypted archive needs an identity (or --pipe) to decrypt it', () => {
    const key = path.join(dir.path, 'key.txt');
    execFileSync('age-keygen', ['-o', key], { stdio: 'ignore' });
    const recipient = execFileSync('age-keygen', ['-y', key], { encoding: 'utf8' }).trim();
    const encrypted = path.join(dir.path, 'acme.tar.zst.age');
    writeFileSync(encrypted, execFileSync('age', ['-r', recipient], { input: readFileSync(archive) }));
    const run = runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', encrypted, '--as', 'secret']);
    expect(run.status).toBe(2);
    expect(run.stderr).toBe(
      `openclaw: ${encrypted} is encrypted with age (it starts with the age header): give the identity that decrypts it, ` +
        '--identity KEY_FILE (remote mode: --identity-secret NAME), or decrypt it with --pipe "age -d -i KEY_FILE"\n',
    );
    expect(readdirSync(base)).toEqual(['acme']);
    // With --pipe it restores.
    expect(runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', encrypted, '--as', 'secret', '--pipe', `age -d -i '${key}'`]).status).toBe(0);
  });

  it('warns when a destination is named like another format, and backs up all the same', () => {
    const gz = path.join(dir.path, 'acme.tar.gz');
    const run = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', gz]);
    expect(run.status).toBe(0);
    expect(run.stderr).toBe(
      `openclaw: warning: the archive is a zstd-compressed tar, but its name ends in .tar.gz (gzip): consider ${path.join(dir.path, 'acme.tar.zst')} (tar -xf and file managers pick the tool by the name)\n`,
    );
    expect(existsSync(gz)).toBe(true);
    // With --json the warning is in the result's notices too: a script saw it only on stderr.
    const json = runCli(['--json', '--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', gz, '--overwrite']);
    expect(json.status).toBe(0);
    expect(json.stderr).toBe(run.stderr);
    expect(JSON.parse(json.stdout)).toMatchObject({ operation: 'backup', notices: [run.stderr.slice('openclaw: '.length, -1)] });
  });

  it('takes the name of an archive piped through a command as that command\'s to choose, except inside a trailing .age', () => {
    // `zstd -dc | gzip` stores a gzip-compressed tar: .tar.gz is its right name, and .tar.zst the misleading one.
    const gz = path.join(dir.path, 'piped', 'acme.tar.gz');
    const run = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', gz, '--pipe', 'zstd -dc | gzip -1']);
    expect(run.status).toBe(0);
    expect(run.stderr).toBe('');
    expect(execFileSync('tar', ['-tzf', gz], { encoding: 'utf8' }).split('\n')[0]).toBe('tenants/acme/');
    expect(misleadingArchiveName('/b/acme.tgz.age', { piped: true })).toMatch(/consider \/b\/acme\.tar\.zst\.age /);
    for (const chosen of ['/b/acme.tgz', '/b/acme.tar.gpg', '/b/acme.tar.zst']) expect(misleadingArchiveName(chosen, { piped: true }), chosen).toBeUndefined();
  });

  it('names the better name for each misleading suffix, and none for ours', () => {
    expect(misleadingArchiveName('/b/acme.tgz')).toMatch(/ends in \.tgz \(gzip\): consider \/b\/acme\.tar\.zst /);
    expect(misleadingArchiveName('/b/acme.gz')).toMatch(/ends in \.gz \(gzip\): consider \/b\/acme\.tar\.zst /);
    expect(misleadingArchiveName('s3://b/acme.TAR')).toMatch(/ends in \.tar \(an uncompressed tar\): consider s3:\/\/b\/acme\.tar\.zst /);
    expect(misleadingArchiveName('/b/acme.tar.gz.age')).toMatch(/consider \/b\/acme\.tar\.zst\.age /);
    expect(misleadingArchiveName('/b/acme.zip')).toMatch(/\(zip\)/);
    for (const fine of ['/b/acme.tar.zst', '/b/acme.tar.zst.age', 's3://b/acme-2026-06-03', '/b/acme.tzst', '/b/tarball']) expect(misleadingArchiveName(fine), fine).toBeUndefined();
  });

  it('names an age-encrypted archive\'s name that says zstd with .age after it, and backs up all the same', () => {
    const recipient = execFileSync('age-keygen', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).match(/public key: (age1\w+)/)![1]!;
    const zst = path.join(dir.path, 'encrypted', 'acme.tar.zst');
    const run = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', zst, '--encrypt-to', recipient]);
    expect(run.status).toBe(0);
    expect(run.stderr).toBe(
      `openclaw: warning: the archive is encrypted with age, but its name ends in .zst (zstd): consider ${zst}.age (age -d -i KEY_FILE gives the tar.zst back; zstd and tar cannot read it before)\n`,
    );
    expect(readFileSync(zst).subarray(0, 22).toString()).toBe('age-encryption.org/v1\n');
    expect(misleadingArchiveName('s3://b/acme.tzst', { encrypted: true })).toMatch(/ends in \.tzst \(zstd\): consider s3:\/\/b\/acme\.tzst\.age /);
    expect(misleadingArchiveName('/b/acme.tar.gz', { encrypted: true })).toMatch(/consider \/b\/acme\.tar\.zst\.age /);
    for (const fine of ['/b/acme.tar.zst.age', '/b/acme.tar.zst.AGE', 's3://b/acme-2026-06-03']) expect(misleadingArchiveName(fine, { encrypted: true }), fine).toBeUndefined();
  });
});

describe('a TMPDIR a backup cannot make its scratch directory in', () => {
  it.each([
    ['does not exist', () => path.join(dir.path, 'no-such-tmp'), 'it does not exist'],
    ['is a file', () => archive, 'it is not a directory'],
  ])('(%s) is named in one line, exit 1, and nothing is stored', (_label, tmpdir, why) => {
    const to = path.join(dir.path, 'tmpdir-check', 'acme.tar.zst');
    const run = runCli(['--tenants-dir', base, '--json', 'tenants', 'backup', 'acme', '--to', to], { env: { TMPDIR: tmpdir() } });
    expect(run.status).toBe(1);
    expect(JSON.parse(run.stdout).error.code).toBe('FILESYSTEM');
    expect(run.stderr).toBe(`openclaw: cannot make a scratch directory in the temporary directory ${tmpdir()} (TMPDIR): ${why}\n`);
    expect(existsSync(to)).toBe(false);
  });
});

describe('a working directory deleted before the command', () => {
  it.each([
    ['a relative --to', ['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', 'acme.tar.zst']],
    ['a relative --tenants-dir', ['--tenants-dir', 'tenants', 'tenants', 'list']],
    ['a relative --from', ['--tenants-dir', base, 'tenants', 'restore', '--from', 'acme.tar.zst', '--as', 'gone']],
  ])('with %s is a usage error in one line (exit 2), nothing done', (_label, args) => {
    const cwd = path.join(dir.path, 'deleted-cwd');
    mkdirSync(cwd);
    const before = readdirSync(base);
    const run = spawnSync('sh', ['-c', 'cd "$1" && rmdir "$1" && shift && exec "$@"', 'sh', cwd, process.execPath, cliPath, ...args], { encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toBe('openclaw: the working directory no longer exists (it was deleted): give absolute paths, or run the command from an existing directory\n');
    expect(readdirSync(base)).toEqual(before);
  });
});

describe('tenants list with a tenant whose directory is a symlink', () => {
  it('names it on stderr and exits 1, as backup --all does, with the real tenants alone on stdout', () => {
    const listed = path.join(dir.path, 'listed');
    createSampleTenant(path.join(listed, 'acme'), { sessions: 1, memoryRows: 1, mediaFiles: 0 });
    mkdirSync(path.join(dir.path, 'elsewhere-moved'), { recursive: true });
    symlinkSync(path.join(dir.path, 'elsewhere-moved'), path.join(listed, 'moved'));
    const names = runCli(['--tenants-dir', listed, 'tenants', 'list', '--names']);
    expect(names).toMatchObject({ status: 1, stdout: 'acme\n' });
    expect(names.stderr).toMatch(/^openclaw: tenant "moved" in .* is a symlink; refusing to follow it: skipped\n/);
    const table = runCli(['--tenants-dir', listed, 'tenants', 'list']);
    expect(table.status).toBe(1);
    expect(table.stdout).toMatch(/^NAME .*\nacme /);
    expect(table.stdout).not.toMatch(/moved/);
    expect(table.stderr).toMatch(/tenant "moved" .* is a symlink/);
    const json = runCli(['--tenants-dir', listed, '--json', 'tenants', 'list', '--names']);
    expect(json.status).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({ tenants: ['acme'], skipped: [{ name: 'moved', reason: expect.stringMatching(/is a symlink/) }] });
    rmSync(path.join(listed, 'moved'));
    expect(runCli(['--tenants-dir', listed, 'tenants', 'list', '--names'])).toMatchObject({ status: 0, stdout: 'acme\n', stderr: '' });
  });
});

describe('tenants list with directories whose names are no tenant names', () => {
  it('warns of each on stderr and exits 0, the real tenants alone on stdout; hidden names and lost+found are not warned of', () => {
    const listed = path.join(dir.path, 'stray-names');
    createSampleTenant(path.join(listed, 'acme'), { sessions: 1, memoryRows: 1, mediaFiles: 0 });
    for (const name of ['Acme', 'acme.old', 'lost+found', '.snapshot']) mkdirSync(path.join(listed, name), { recursive: true });
    writeFileSync(path.join(listed, 'NOTES.txt'), 'a file is no tenant\n');
    const names = runCli(['--tenants-dir', listed, 'tenants', 'list', '--names']);
    expect(names).toMatchObject({ status: 0, stdout: 'acme\n' });
    expect(names.stderr.split('\n')).toEqual([
      expect.stringMatching(/^openclaw: warning: "Acme" in .* is not a valid tenant name .*: no command backs it up; rename it/),
      expect.stringMatching(/^openclaw: warning: "acme\.old" in .* is not a valid tenant name/),
      '',
    ]);
    const json = runCli(['--tenants-dir', listed, '--json', 'tenants', 'list', '--names']);
    expect(json.status).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      tenants: ['acme'],
      skipped: [
        { name: 'Acme', reason: expect.stringMatching(/not a valid tenant name/), invalidName: true },
        { name: 'acme.old', reason: expect.stringMatching(/not a valid tenant name/), invalidName: true },
      ],
    });
  });
});

describe('tenants recover of a tenant that does not exist', () => {
  it('is refused with exit 3 and the one line backup gives, not "nothing to recover"', () => {
    const backup = runCli(['--tenants-dir', base, 'tenants', 'backup', 'nosuch', '--to', path.join(dir.path, 'nosuch.tar.zst')]);
    expect(backup.status).toBe(3);
    const recover = runCli(['--tenants-dir', base, 'tenants', 'recover', 'nosuch']);
    expect(recover).toMatchObject({ status: 3, stdout: '', stderr: backup.stderr });
    expect(recover.stderr).toMatch(/^openclaw: no tenant "nosuch" in .*\n$/);
    expectJsonError(['--tenants-dir', base, '--json', 'tenants', 'recover', 'nosuch'], 3, 'TENANT_NOT_FOUND', /^no tenant "nosuch" in /);
    expect(readdirSync(base).filter((name) => name.includes('nosuch'))).toEqual([]);
    expect(runCli(['--tenants-dir', base, 'tenants', 'recover', 'acme'])).toMatchObject({ status: 0, stdout: 'Tenant "acme": nothing to recover\n' });
  });
});

describe('a tenant name one typo away from a tenant of the base dir', () => {
  it('is refused (exit 3) in one line naming the near tenant, for backup and recover, in --json too', () => {
    const backup = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acne', '--to', path.join(dir.path, 'acne.tar.zst')]);
    expect(backup).toMatchObject({ status: 3, stdout: '', stderr: `openclaw: no tenant "acne" in ${base} (see tenants list): did you mean "acme"?\n` });
    expect(runCli(['--tenants-dir', base, 'tenants', 'recover', 'acmee'])).toMatchObject({ status: 3, stderr: `openclaw: no tenant "acmee" in ${base} (see tenants list): did you mean "acme"?\n` });
    expectJsonError(['--tenants-dir', base, '--json', 'tenants', 'backup', 'came', '--to', path.join(dir.path, 'came.tar.zst')], 3, 'TENANT_NOT_FOUND', /^no tenant "came" in .*: did you mean "acme"\?$/);
    expect(existsSync(path.join(dir.path, 'acne.tar.zst'))).toBe(false);
  });
});

describe('a backup in pieces that broke, in local mode', () => {
  const state = continuationPathFor(base, 'acme');
  const saved = (location: string) => ({
    state: {
      version: 1 as const,
      chain: 'cd'.repeat(12),
      tenant: 'acme',
      location,
      createdAt: '2026-06-03T03:00:00.000Z',
      startedAt: '2026-06-03T03:00:00.000Z',
      savedAt: '2026-06-03T03:14:00.000Z',
      pieces: 3,
      archive: { resumeAfter: 'a', digest: { directories: [] }, skipped: [], warnings: [], totals: { files: 1, directories: 1, symlinks: 0, bytes: 1 }, contentBytes: 1, snapshotted: [], settled: [], waiting: [] },
      upload: { uploadId: 'upload-7', parts: [{ PartNumber: 1, ETag: '"e"' }], bytes: 6_000_000, partSize: 8 * 1024 * 1024 },
    },
    pendingFrame: Buffer.alloc(0),
    tail: Buffer.from('tail'),
  });
  const dayAgo = () => new Date(Date.now() - 25 * 60 * 60 * 1000);

  it('a damaged state: the busy backup names `tenants recover`, which ends it, and the backup then runs', () => {
    writeFileSync(state, 'garbage\n');
    const busy = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'chain-1.tar.zst')]);
    expect(busy).toMatchObject({ status: 3, stdout: '' });
    expect(busy.stderr).toMatch(/^openclaw: tenant "acme" is busy: .*`openclaw tenants recover acme` ends it when no piece has saved it for 24 h, or its state is damaged\n$/);
    const recover = runCli(['--tenants-dir', base, 'tenants', 'recover', 'acme']);
    expect(recover).toMatchObject({ status: 0, stderr: '' });
    expect(recover.stdout).toMatch(/^Tenant "acme": ended a backup in pieces whose state was damaged; its destination is unknown .* AbortIncompleteMultipartUpload removes it\n$/);
    expect(existsSync(state)).toBe(false);
    expect(runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'chain-1.tar.zst')]).status).toBe(0);
  });

  it('a chain saved lately is left alone (it may continue on a gateway sharing the base dir), said with its age and when recover ends it', async () => {
    await saveContinuation(base, saved('s3://backups/acme/live.tar.zst'));
    const recover = runCli(['--tenants-dir', base, 'tenants', 'recover', 'acme']);
    expect(recover).toMatchObject({ status: 0, stderr: '' });
    expect(recover.stdout).toMatch(/^Tenant "acme": a backup in pieces to s3:\/\/backups\/acme\/live\.tar\.zst continues \(state saved \d+ s ago, [^)]+\): left alone; recover ends it after \S+Z if no piece saves it before\n$/);
    const json = JSON.parse(runCli(['--tenants-dir', base, '--json', 'tenants', 'recover', 'acme']).stdout);
    expect(json).toMatchObject({ operation: 'recover', tenant: 'acme', recovered: 'none', continuation: { outcome: 'continuing', pieces: 3 } });
    expect(Date.parse(json.continuation.endsAfter) - Date.parse(json.continuation.savedAt)).toBe(24 * 60 * 60 * 1000);
    expect(existsSync(state)).toBe(true);
    expect(runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'chain-2.tar.zst')]).status).toBe(3);
    rmSync(state);
  });

  it('a chain a day old: its multipart upload aborted with the default credentials, or what is left at the store said', async () => {
    for (const [status, upload] of [[204, 'its multipart upload was aborted'], [403, 'its multipart upload upload-7 could not be aborted']] as const) {
      const server = await startWebServer(status);
      try {
        await saveContinuation(base, saved('s3://backups/acme/old.tar.zst'));
        utimesSync(state, dayAgo(), dayAgo());
        const env = { PATH: process.env.PATH, HOME: dir.path, AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret', AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_S3: server.endpoint, AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent', AWS_EC2_METADATA_DISABLED: 'true', AWS_MAX_ATTEMPTS: '1' };
        const recover = await runCliIn(env, ['--tenants-dir', base, '--json', 'tenants', 'recover', 'acme']);
        expect(recover).toMatchObject({ status: 0, stderr: '' });
        expect(JSON.parse(recover.stdout).continuation).toMatchObject({ outcome: 'ended', reason: 'stale', location: 's3://backups/acme/old.tar.zst', chain: 'cd'.repeat(12), pieces: 3, upload: status === 204 ? 'aborted' : 'left' });
        expect(server.requests.filter((request) => request.method === 'DELETE').map((request) => request.url)).toEqual([expect.stringMatching(/acme\/old\.tar\.zst\?.*uploadId=upload-7/)]);
        expect(existsSync(state)).toBe(false);
        await saveContinuation(base, saved('s3://backups/acme/old.tar.zst'));
        utimesSync(state, dayAgo(), dayAgo());
        const text = await runCliIn(env, ['--tenants-dir', base, 'tenants', 'recover', 'acme']);
        expect(text.stdout).toMatch(new RegExp(`^Tenant "acme": ended a backup in pieces to s3://backups/acme/old\\.tar\\.zst that stopped continuing \\(no piece since \\S+Z\\); ${upload.replaceAll('.', '\\.')}`));
        expect(existsSync(state)).toBe(false);
      } finally {
        await server.stop();
      }
    }
  });
});

// Run as root, the test gives the CLI another user (nobody), for whom permissions hold.
describe.runIf(process.getuid?.() === 0)('what this user may not read', () => {
  const NOBODY = 65534;
  let place: string;
  beforeAll(() => {
    place = path.join(dir.path, 'unreadable');
    mkdirSync(place);
    chownSync(place, NOBODY, NOBODY); // where its archives go
    chmodSync(dir.path, 0o755);
  });

  // What to do about it: the message said only "permission denied".
  const RUN_AS = ` (run as uid ${NOBODY}: run it as the user that owns these files, or as root with sudo)`;

  function asNobody(args: string[]) {
    const run = spawnSync(process.execPath, [cliPath, ...args], { uid: NOBODY, gid: NOBODY, cwd: place, env: { ...process.env, HOME: place }, encoding: 'utf8' });
    return { status: run.status, stdout: run.stdout, stderr: run.stderr };
  }

  /** A base dir holding acme, which nobody owns and may write, but for `unreadable` (a path in it, or acme itself) left to root. */
  function baseWith(name: string, unreadable: string, mode: number): string {
    const where = path.join(place, name);
    cpSync(base, where, { recursive: true });
    execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, where]);
    const target = path.join(where, unreadable);
    chownSync(target, 0, 0);
    chmodSync(target, mode);
    return where;
  }

  it('a base dir: every listing names it, in one line (exit 1)', () => {
    const locked = baseWith('locked', '', 0o700);
    const expected = `openclaw: cannot read the tenant base dir ${locked}: permission denied${RUN_AS}\n`;
    for (const args of [['tenants', 'list'], ['tenants', 'list', '--names'], ['tenants', 'backup', '--all', '--to', path.join(place, '{tenant}.tar.zst')]]) {
      expect(asNobody(['--tenants-dir', locked, ...args])).toMatchObject({ status: 1, stderr: expected });
    }
    const json = asNobody(['--tenants-dir', locked, '--json', 'tenants', 'list']);
    expect(JSON.parse(json.stdout)).toEqual({ error: { code: 'FILESYSTEM', message: `cannot read the tenant base dir ${locked}: permission denied${RUN_AS}` } });
  });

  it('a directory of a tenant: the backup and its dry run name it, in one line (exit 1)', () => {
    const tenants = baseWith('dir', 'acme/workspace', 0o700);
    const workspace = path.join(tenants, 'acme', 'workspace');
    const destination = path.join(place, 'dir.tar.zst');
    expect(asNobody(['--tenants-dir', tenants, 'tenants', 'backup', 'acme', '--to', destination])).toMatchObject({
      status: 1,
      stderr: `openclaw: cannot back up tenant "acme": permission denied (${workspace})${RUN_AS}\n`,
    });
    expect(asNobody(['--tenants-dir', tenants, 'tenants', 'backup', 'acme', '--to', destination, '--dry-run'])).toMatchObject({
      status: 1,
      stderr: `openclaw: cannot back up tenant "acme": permission denied (${workspace})${RUN_AS}\n`,
    });
    expect(existsSync(destination)).toBe(false);
  });

  it('a file of a tenant: the backup and its dry run name it, in one line (exit 1), and leave no archive', () => {
    const tenants = baseWith('file', 'acme/config.json', 0o600);
    const destination = path.join(place, 'file.tar.zst');
    const expected = { status: 1, stdout: '', stderr: `openclaw: cannot back up tenant "acme": permission denied (${path.join(tenants, 'acme', 'config.json')})${RUN_AS}\n` };
    // The dry run said "would back up" (exit 0) for a backup that then failed.
    expect(asNobody(['--tenants-dir', tenants, 'tenants', 'backup', 'acme', '--to', destination, '--dry-run'])).toEqual(expected);
    expect(asNobody(['--tenants-dir', tenants, 'tenants', 'backup', 'acme', '--to', destination])).toMatchObject(expected);
    expect(readdirSync(place).filter((name) => name.includes('file.tar.zst'))).toEqual([]);
  });

  it('a file its mode bits deny but an ACL grants, or one of its own it may read: the dry run passes, as the backup would', () => {
    const tenants = baseWith('granted', 'acme/config.json', 0o600);
    const config = path.join(tenants, 'acme', 'config.json');
    try {
      execFileSync('setfacl', ['-m', `u:${NOBODY}:r`, config]);
    } catch {
      chownSync(config, NOBODY, NOBODY); // no ACLs here: a file of its own
    }
    const destination = path.join(place, 'granted.tar.zst');
    expect(asNobody(['--tenants-dir', tenants, 'tenants', 'backup', 'acme', '--to', destination, '--dry-run'])).toMatchObject({ status: 0, stderr: '' });
    expect(asNobody(['--tenants-dir', tenants, 'tenants', 'backup', 'acme', '--to', destination])).toMatchObject({ status: 0, stderr: '' });
  });

  it.runIf(existsSync('/usr/bin/setfacl'))('a file its mode bits grant but an ACL denies: the dry run fails naming it, as the backup does', () => {
    // The dry run went by the mode bits (-rw-r--r--+): "would back up", exit 0, for a backup that then failed.
    const tenants = baseWith('acl-denied', 'acme/config.json', 0o644);
    const config = path.join(tenants, 'acme', 'config.json');
    execFileSync('setfacl', ['-m', `u:${NOBODY}:---`, config]);
    const destination = path.join(place, 'acl-denied.tar.zst');
    const expected = { status: 1, stdout: '', stderr: `openclaw: cannot back up tenant "acme": permission denied (${config})${RUN_AS}\n` };
    expect(asNobody(['--tenants-dir', tenants, 'tenants', 'backup', 'acme', '--to', destination, '--dry-run'])).toEqual(expected);
    expect(asNobody(['--tenants-dir', tenants, 'tenants', 'backup', 'acme', '--to', destination])).toMatchObject(expected);
  });
});

describe('--max-bytes takes a size as --help shows one', () => {
  // It took only plain numbers: 256GiB, as the help's own default reads, was a usage error.
  it.each([['1KiB'], ['1K'], ['0.5 KiB'], ['1024']])('%s bounds what the archive may unpack to', (size) => {
    const run = runCli(['--tenants-dir', base, 'tenants', 'verify', '--from', archive, '--no-record', '--max-bytes', size]);
    expect(run).toMatchObject({ status: 3, stdout: '' });
    expect(run.stderr).toMatch(/^openclaw: .*more than (1\.0 KiB|512 B)/);
  });

  it('256GiB passes an archive under it', () => {
    expect(runCli(['--tenants-dir', base, 'tenants', 'verify', '--from', archive, '--no-record', '--max-bytes', '256GiB'])).toMatchObject({ status: 0, stderr: '' });
  });

  it.each([['4KB'], ['1.5'], ['0KiB'], ['1e3']])('%s is a usage error', (size) => {
    expect(runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive, '--max-bytes', size])).toMatchObject({
      status: 2,
      stderr: `openclaw: option '--max-bytes <size>' argument '${size}' is invalid. must be a positive number of bytes, plain or with KiB, MiB, GiB or TiB (e.g. 256GiB) (see openclaw tenants restore --help)\n`,
    });
  });
});

describe('a damaged archive is named', () => {
  // "archive is truncated: …" said not which archive, in a log of many (cron, a loop over backups).
  it.each([['verify', ['tenants', 'verify', '--no-record']], ['restore', ['tenants', 'restore', '--as', 'cut']], ['restore --dry-run', ['tenants', 'restore', '--dry-run']]])(
    'by %s, with what is wrong with it',
    (_label, command) => {
      const cut = path.join(dir.path, 'cut.tar.zst');
      writeFileSync(cut, readFileSync(archive).subarray(0, 600));
      const run = runCli(['--tenants-dir', base, ...command, '--from', cut]);
      expect(run).toMatchObject({ status: 3, stdout: '', stderr: `openclaw: ${cut}: archive is truncated: the zstd stream ends inside a frame\n` });
      rmSync(cut);
    },
  );

  // An empty file (a failed download, a `> FILE` that wrote nothing) said "empty or truncated", not what to do.
  it.each([['verify', ['tenants', 'verify', '--no-record']], ['restore', ['tenants', 'restore', '--as', 'empty']]])('empty, by %s, saying what to give instead', (_label, command) => {
    const empty = path.join(dir.path, 'empty.tar.zst');
    writeFileSync(empty, '');
    const run = runCli(['--tenants-dir', base, ...command, '--from', empty]);
    expect(run).toMatchObject({
      status: 3,
      stdout: '',
      stderr: `openclaw: ${empty}: the archive holds no tenant entries (it is empty, or was cut short before its first): give the path of a complete backup (tenants backups NAME --in DIR lists those in a directory)\n`,
    });
    expect(existsSync(path.join(base, 'empty'))).toBe(false);
    rmSync(empty);
  });

  // So is one refused as unsafe (a GNU tar of the tenant's directory, not of tenants/acme) or past a limit.
  it.each([['verify', ['tenants', 'verify', '--no-record']], ['restore', ['tenants', 'restore', '--as', 'gnu']]])('refused as unsafe or too large, by %s', (_label, command) => {
    const gnu = path.join(dir.path, 'gnu.tar.zst');
    execFileSync('tar', ['-C', base, '--zstd', '-cf', gnu, 'acme']);
    expect(runCli(['--tenants-dir', base, ...command, '--from', gnu])).toMatchObject({
      status: 3,
      stdout: '',
      stderr: expect.stringMatching(new RegExp(`^openclaw: ${gnu.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: entry outside tenants/<name>/ .*: "acme/"\n$`)),
    });
    rmSync(gnu);
    expect(runCli(['--tenants-dir', base, ...command, '--from', archive, '--max-entries', '2'])).toMatchObject({
      status: 3,
      stdout: '',
      stderr: `openclaw: ${archive}: the archive has more than 2 entries (raise --max-entries if it is genuine)\n`,
    });
  });
});

describe('a --tenants-dir that is no tenant base dir', () => {
  // `--tenants-dir BASE/acme` listed acme's sessions, memory, workspace… as tenants (exit 0), backed
  // them up as such, and a restore made a tenant inside the tenant; the base dir's parent listed one
  // tenant, "tenants".
  it('a tenant\'s own directory is refused for every command, naming its parent; nothing is created in it', () => {
    const tenantDir = path.join(base, 'acme');
    const before = readdirSync(tenantDir).sort();
    const line = `openclaw: ${tenantDir} looks like a tenant's own directory (files and pty/ at its top), not the tenant base dir that holds the tenants: give its parent (--tenants-dir ${base})\n`;
    for (const args of [
      ['tenants', 'list'],
      ['tenants', 'backup', 'sessions', '--to', path.join(dir.path, 'sessions.tar.zst')],
      ['tenants', 'backup', '--all', '--to', path.join(dir.path, 'all', '{tenant}.tar.zst')],
      ['tenants', 'restore', '--from', archive, '--as', 'inner'],
      ['tenants', 'recover', 'sessions'],
      ['cron', 'add', 'sessions', '--schedule', '0 3 * * *', '--name', 'nightly', '--cmd', 'openclaw tenants backup sessions --to /b/sessions.tar.zst'],
    ]) {
      expect(runCli(['--tenants-dir', tenantDir, ...args]), args.join(' ')).toMatchObject({ status: 2, stdout: '', stderr: line });
    }
    expect(runCli(['tenants', 'list'], { env: { OPENCLAW_TENANTS_DIR: tenantDir } })).toMatchObject({ status: 2, stderr: line });
    expect(readdirSync(tenantDir).sort()).toEqual(before);
    expect(existsSync(path.join(dir.path, 'sessions.tar.zst'))).toBe(false);
    // doctor counted its subdirectories as tenants ("holds 7 tenants", exit 0).
    const doctor = runCli(['--tenants-dir', tenantDir, 'doctor']);
    expect(doctor.status).toBe(1);
    expect(doctor.stdout).toContain(`  FAIL  base dir: ${line.slice('openclaw: '.length, -1)}\n`);
  });

  // A restored tenant has no pty/ (a restore never writes it): `--tenants-dir BASE/acme` after a
  // restore listed channels, cron, memory, sessions, usage and workspace as tenants (exit 0).
  it('a restored tenant\'s own directory, without pty/, is refused by its config.json and token.sha256', () => {
    const restoredBase = path.join(dir.path, 'restored-base');
    expect(runCli(['--tenants-dir', restoredBase, 'tenants', 'restore', '--from', archive]).status).toBe(0);
    const tenantDir = path.join(restoredBase, 'acme');
    expect(existsSync(path.join(tenantDir, 'pty'))).toBe(false);
    const line = `openclaw: ${tenantDir} looks like a tenant's own directory (config.json and token.sha256 at its top), not the tenant base dir that holds the tenants: give its parent (--tenants-dir ${restoredBase})\n`;
    for (const args of [['tenants', 'list'], ['tenants', 'backup', '--all', '--to', path.join(dir.path, 'restored-all', '{tenant}.tar.zst')], ['tenants', 'restore', '--from', archive, '--as', 'inner']]) {
      expect(runCli(['--tenants-dir', tenantDir, ...args]), args.join(' ')).toMatchObject({ status: 2, stdout: '', stderr: line });
    }
    expect(existsSync(path.join(tenantDir, 'inner'))).toBe(false);
    // Its parent is the base dir it is: listed as before.
    expect(runCli(['--tenants-dir', restoredBase, 'tenants', 'list', '--names'])).toMatchObject({ status: 0, stdout: 'acme\n' });
    // And the parent of a base dir named tenants/ holding only restored tenants listed one tenant, "tenants" (exit 0).
    const parent = path.join(dir.path, 'restored-parent');
    const inner = path.join(parent, 'tenants');
    expect(runCli(['--tenants-dir', inner, 'tenants', 'restore', '--from', archive]).status).toBe(0);
    expect(runCli(['--tenants-dir', parent, 'tenants', 'list', '--names'])).toMatchObject({
      status: 2,
      stdout: '',
      stderr: `openclaw: ${parent} holds the tenant base dir ${inner} (with tenant "acme" in it), not the tenants themselves: give --tenants-dir ${inner}\n`,
    });
  });

  // A new gateway's base dir, holding its own config.json and token.sha256 and no tenant yet,
  // was refused as a tenant's own directory by every command, its first restore included (exit 2).
  it('a new gateway\'s base dir holding config.json and token.sha256 and no tenant yet is one: listed, restored into', () => {
    const fresh = path.join(dir.path, 'gateway-before-its-first-tenant');
    mkdirSync(fresh);
    writeFileSync(path.join(fresh, 'config.json'), '{"gateway": true}');
    writeFileSync(path.join(fresh, 'token.sha256'), 'gateway token hash\n');
    expect(runCli(['--tenants-dir', fresh, 'tenants', 'list'])).toMatchObject({ status: 0, stdout: `no tenants in ${fresh}\n`, stderr: '' });
    expect(runCli(['--tenants-dir', fresh, 'tenants', 'restore', '--from', archive]).status).toBe(0);
    expect(runCli(['--tenants-dir', fresh, 'tenants', 'list', '--names'])).toMatchObject({ status: 0, stdout: 'acme\n' });
    // The tenant restored there is still refused as a base dir.
    expect(runCli(['--tenants-dir', path.join(fresh, 'acme'), 'tenants', 'list', '--names'])).toMatchObject({ status: 2, stdout: '' });
  });

  it('the parent of a base dir named tenants/ is refused, naming the base dir in it', () => {
    expect(runCli(['--tenants-dir', dir.path, 'tenants', 'list', '--names'])).toMatchObject({
      status: 2,
      stdout: '',
      stderr: `openclaw: ${dir.path} holds the tenant base dir ${base} (with tenant "acme" in it), not the tenants themselves: give --tenants-dir ${base}\n`,
    });
  });

  it('a base dir holding a stray file, or tenants named pty and tenants, is still one', () => {
    const other = tempDir('openclaw-shape-');
    try {
      const withFile = path.join(other.path, 'with-file');
      mkdirSync(path.join(withFile, 'acme', 'pty'), { recursive: true });
      writeFileSync(path.join(withFile, 'acme', 'config.json'), '{}');
      writeFileSync(path.join(withFile, 'README'), 'the gateway\'s tenants\n');
      expect(runCli(['--tenants-dir', withFile, 'tenants', 'list', '--names'])).toMatchObject({ status: 0, stdout: 'acme\n' });
      const oddNames = path.join(other.path, 'odd-names');
      for (const tenant of ['pty', 'tenants']) {
        mkdirSync(path.join(oddNames, tenant, 'sessions'), { recursive: true });
        writeFileSync(path.join(oddNames, tenant, 'config.json'), '{}');
      }
      expect(runCli(['--tenants-dir', oddNames, 'tenants', 'list', '--names'])).toMatchObject({ status: 0, stdout: 'pty\ntenants\n' });
      // One of a tenant's own files alone (a stray config.json, a token.sha256) is no sign either.
      for (const stray of ['config.json', 'token.sha256']) {
        writeFileSync(path.join(withFile, stray), '{}');
        expect(runCli(['--tenants-dir', withFile, 'tenants', 'list', '--names']), stray).toMatchObject({ status: 0, stdout: 'acme\n' });
        rmSync(path.join(withFile, stray));
      }
    } finally {
      other.cleanup();
    }
  });
});

describe('a destination that is a device, FIFO or socket', () => {
  // `--to /dev/null --overwrite` (a trial run, as root) renamed the archive over /dev/null: a
  // regular file of mode 0600 from then on, which every other user's programs failed to write.
  const refusal = (where: string, kind: string) =>
    `openclaw: ${where} is ${kind}, not an archive file, and is never replaced (not with --overwrite either): give the path of a file to write\n`;

  it('is refused, with --overwrite too, and left as it was', () => {
    const fifo = path.join(dir.path, 'fifo.tar.zst');
    execFileSync('mkfifo', [fifo]);
    for (const flags of [[], ['--overwrite']]) {
      const run = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', fifo, ...flags]);
      expect(run, flags.join(' ')).toMatchObject({ status: 1, stdout: '', stderr: refusal(fifo, 'a FIFO') });
    }
    // The dry run says so too, rather than that --overwrite would replace it, and exits 1 as the backup does (it exited 3).
    const dry = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', fifo, '--overwrite', '--dry-run']);
    expect(dry.status).toBe(1);
    expect(dry.stdout).toContain(`the backup would FAIL: ${fifo} is a FIFO, not an archive file`);
    expect(execFileSync('stat', ['-c', '%F', fifo], { encoding: 'utf8' })).toBe('fifo\n');
    // Given to --from, it is named so too, with what to give instead (it said "is not a regular file").
    expect(runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', fifo, '--as', 'fifo'])).toMatchObject({
      status: 1,
      stdout: '',
      stderr: `openclaw: ${fifo} is a FIFO, not an archive file: give the path of one (tenants backups NAME --in DIR lists those in a directory)\n`,
    });
    expect(readdirSync(dir.path).filter((name) => name.startsWith('.fifo'))).toEqual([]);
    rmSync(fifo);
  });

  it.skipIf(process.geteuid?.() !== 0)('a character device such as /dev/null, as root', () => {
    const devNull = path.join(dir.path, 'null');
    execFileSync('mknod', ['-m', '666', devNull, 'c', '1', '3']);
    const run = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', devNull, '--overwrite']);
    expect(run).toMatchObject({ status: 1, stdout: '', stderr: refusal(devNull, 'a character device') });
    expect(execFileSync('stat', ['-c', '%F %a', devNull], { encoding: 'utf8' })).toBe('character special file 666\n');
    rmSync(devNull);
  });

  // The rename replaces a symlink: `--to /dev/stdout --overwrite` (its "already exists" answered
  // with --overwrite) made root's /dev/stdout, a symlink to /proc/self/fd/1, a regular file.
  it('a symlink to one, such as /dev/stdout, with --overwrite too, and the symlink left as it was', () => {
    const link = path.join(dir.path, 'stdout.tar.zst');
    symlinkSync('/dev/null', link);
    for (const flags of [[], ['--overwrite']]) {
      const run = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', link, ...flags]);
      expect(run, flags.join(' ')).toMatchObject({ status: 1, stdout: '', stderr: refusal(link, 'a symlink to a character device') });
    }
    expect(readlinkSync(link)).toBe('/dev/null');
    rmSync(link);
  });

  // `--to LINK --overwrite`, LINK a symlink to the backup directory: the archive was renamed over
  // the link (exit 0, a file where the link was); without --overwrite the refusal said to pass it.
  it('a symlink to a directory is refused as the directory itself is, with --overwrite too, the link and the directory left as they were', () => {
    const into = path.join(dir.path, 'into');
    mkdirSync(into);
    const link = path.join(dir.path, 'backups-link');
    symlinkSync(into, link);
    for (const flags of [[], ['--overwrite']]) {
      const run = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', link, ...flags]);
      expect(run, flags.join(' ')).toMatchObject({
        status: 1,
        stdout: '',
        stderr: `openclaw: ${link} is a symlink to a directory, not an archive file, and is never replaced (not with --overwrite either): name the archive in it, e.g. ${path.join(link, 'NAME.tar.zst')}\n`,
      });
    }
    const dry = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', link, '--overwrite', '--dry-run']);
    // Exit 1, as the backup (it exited 3).
    expect(dry.status).toBe(1);
    expect(dry.stdout).toContain(`the backup would FAIL: ${link} is a symlink to a directory`);
    expect(readlinkSync(link)).toBe(into);
    expect(readdirSync(into)).toEqual([]);
    expect(readdirSync(dir.path).filter((name) => name.endsWith('.partial'))).toEqual([]);
  });
});

describe.skipIf(!existsSync('/proc/self'))('a destination on a file system that takes no new files', () => {
  // It said "a parent directory vanished" of /proc, which is there.
  // A restore that creates the base dir said "unexpected error: ENOENT: no such file or directory, mkdir \"/proc/tenants\"".
  // Deeper (`/proc/x/tenants`, ENOENT at the mkdir of /proc/x) it still said "unexpected error: ENOENT …" (code ENOENT in --json).
  it.each([['/proc/openclaw-tenants'], ['/proc/openclaw/tenants'], ['/proc/openclaw/a/tenants']])('a restore whose base dir would be made at %s says so in its own words, as its dry run does', (tenantsDir) => {
    const line = `cannot create the tenant base dir ${tenantsDir}: /proc takes no new files (a proc file system): give a base dir on a disk`;
    expect(runCli(['--tenants-dir', tenantsDir, 'tenants', 'restore', '--from', archive])).toMatchObject({ status: 1, stdout: '', stderr: `openclaw: ${line}\n` });
    expect(JSON.parse(runCli(['--tenants-dir', tenantsDir, '--json', 'tenants', 'restore', '--from', archive]).stdout)).toEqual({ error: { code: 'FILESYSTEM', message: line } });
    expect(runCli(['--tenants-dir', tenantsDir, 'tenants', 'restore', '--from', archive, '--dry-run']).stdout).toContain(`the restore would FAIL: ${line}\n`);
  });

  it('says the directory takes none, not that it vanished', () => {
    const run = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', '/proc/acme.tar.zst']);
    expect(run).toMatchObject({ status: 1, stdout: '', stderr: 'openclaw: cannot write /proc/acme.tar.zst: /proc takes no new files (a proc file system): give a path on a disk\n' });
  });

  // access(W_OK) answers root yes there: the dry run said "nothing was read or written" and exit 0
  // where the backup fails (/proc/x: ENOENT at its mkdir; /sys: EACCES).
  it.each([
    ['/proc/x/acme.tar.zst', '/proc', 'proc'],
    ['/sys/acme.tar.zst', '/sys', 'sysfs'],
  ])('a dry run to %s says the backup would be refused, as the backup is', (to, directory, kind) => {
    const line = `cannot write ${to}: ${directory} takes no new files (a ${kind} file system): give a path on a disk`;
    const dry = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', to, '--dry-run']);
    // Exit 1, as the backup: the dry run exited 3 for the same cause.
    expect(dry.status, dry.stdout).toBe(1);
    expect(dry.stdout).toContain(`the backup would FAIL: ${line}\n`);
    expect(runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', to])).toMatchObject({ status: 1, stdout: '', stderr: `openclaw: ${line}\n` });
  });
});

/** The tmpfs of these tests: 256 KiB and 8 inodes, soon full either way. */
const SMALL_TMPFS = 'size=256k,nr_inodes=8';

/** Calls `make` with 0, 1, 2… until it throws (the file system full). */
function fillUntilFull(make: (at: number) => void): void {
  for (let at = 0; ; at++) {
    try {
      make(at);
    } catch {
      return;
    }
  }
}

describe('a destination on a full file system', () => {
  // The dry run said "nothing was read or written" (exit 0), where the backup read the whole
  // tenant and then failed its first write (ENOSPC, exit 1).
  it('a dry run says the backup would be refused, and the backup fails before it reads: no inode left, then no block', async (context) => {
    await onTmpfs(context, path.join(dir.path, 'full-disk'), SMALL_TMPFS, async (disk) => {
      const to = path.join(disk, 'backups', 'acme.tar.zst');
      fillUntilFull((at) => writeFileSync(path.join(disk, `f${at}`), ''));
      for (const why of ['no inode left on the device (there may be space left: see df -i)', 'no space left on the device']) {
        const line = `cannot write ${to}: ${why}`;
        const dry = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', to, '--dry-run']);
        expect(dry.status, dry.stdout).toBe(1);
        expect(dry.stdout).toContain(`the backup would FAIL: ${line}\n`);
        expect(runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', to])).toMatchObject({ status: 1, stdout: '', stderr: `openclaw: ${line}\n` });
        // Then inodes free, and every block taken.
        for (const name of readdirSync(disk)) rmSync(path.join(disk, name));
        writeFileSync(path.join(disk, 'block-filler'), '');
        fillUntilFull(() => appendFileSync(path.join(disk, 'block-filler'), Buffer.alloc(4096)));
      }
      expect(readdirSync(disk)).toEqual(['block-filler']);
    });
  });

  // Whether the file system is one of the kernel's and whether it is full were two statfs
  // calls on the same directory: on a network file system two round trips (~1.9 ms each on a
  // 1 ms latency mount) for every backup, each of `backup --all`'s too.
  it.runIf(existsSync('/usr/bin/strace'))('is asked of its file system once', () => {
    const into = path.join(dir.path, 'statfs-once');
    mkdirSync(into);
    const log = path.join(dir.path, 'statfs.log');
    const run = spawnSync('strace', ['-f', '-qq', '-o', log, '-e', 'trace=statfs', process.execPath, cliPath, '--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(into, 'acme.tar.zst')], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(existsSync(path.join(into, 'acme.tar.zst'))).toBe(true);
    expect(readFileSync(log, 'utf8').split('\n').filter((line) => line.includes(`statfs("${into}"`))).toHaveLength(1);
    rmSync(log);
    rmSync(into, { recursive: true });
  });
});

const NOBODY_UID = 65534;
describe.skipIf(process.geteuid?.() !== 0 || !existsSync('/usr/bin/setpriv'))('permission denied, not run as root', () => {
  // "cannot write the lock file …: permission denied" said not what to do about it.
  it('says to run as the files\' owner or as root', () => {
    const shared = tempDir('openclaw-not-root-');
    try {
      chmodSync(shared.path, 0o755);
      const rootsBase = path.join(shared.path, 'tenants');
      mkdirSync(path.join(rootsBase, 'acme'), { recursive: true, mode: 0o755 });
      const run = spawnSync('setpriv', [`--reuid=${NOBODY_UID}`, `--regid=${NOBODY_UID}`, '--clear-groups', process.execPath, cliPath, '--tenants-dir', rootsBase, 'tenants', 'backup', 'acme', '--to', path.join(shared.path, 'acme.tar.zst')], { encoding: 'utf8' });
      expect(run).toMatchObject({
        status: 1,
        stdout: '',
        stderr: `openclaw: cannot write the lock file ${path.join(rootsBase, '.openclaw-lock-acme')}: permission denied (run as uid ${NOBODY_UID}: run it as the user that owns these files, or as root with sudo)\n`,
      });
    } finally {
      shared.cleanup();
    }
  });
});

// `restore --dry-run` into a base dir the restore cannot write or create said "… is free:
// nothing would be replaced", exit 0, where the restore then failed at its first write (exit 1):
// under /proc, on a read-only or a full file system, as a user who may not write there.
describe('a restore\'s dry run into a base dir the restore cannot write or create', () => {
  function expectBothRefuse(tenantsDir: string, dryLine: string, restoreLine: RegExp, run: (args: string[]) => { status: number | null; stdout: string; stderr: string } = runCli, from = archive) {
    const dry = run(['--tenants-dir', tenantsDir, 'tenants', 'restore', '--from', from, '--dry-run']);
    // Exit 1, as the restore: the dry run exited 3 for the same cause.
    expect(dry.status, dry.stdout + dry.stderr).toBe(1);
    expect(dry.stdout).toContain(`  the restore would FAIL: ${dryLine}\n`);
    expect(dry.stdout).not.toContain('is free');
    const real = run(['--tenants-dir', tenantsDir, 'tenants', 'restore', '--from', from]);
    expect(real.status, real.stderr).toBe(1);
    expect(real.stderr).toMatch(restoreLine);
  }

  it.skipIf(!existsSync('/proc/self'))('under /proc', () => {
    expectBothRefuse('/proc/openclaw-tenants', 'cannot create the tenant base dir /proc/openclaw-tenants: /proc takes no new files (a proc file system): give a base dir on a disk', /^openclaw: cannot create the tenant base dir \/proc\/openclaw-tenants: /);
  });

  it('on a read-only file system, and on a full one', async (context) => {
    await onTmpfs(context, path.join(dir.path, 'restore-disk'), SMALL_TMPFS, async (disk) => {
      const tenantsDir = path.join(disk, 'tenants');
      execFileSync('mount', ['-o', 'remount,ro', disk]);
      expectBothRefuse(tenantsDir, `cannot create the tenant base dir ${tenantsDir}: read-only file system (${disk})`, /: read-only file system/);
      execFileSync('mount', ['-o', 'remount,rw', disk]);
      fillUntilFull((at) => writeFileSync(path.join(disk, `f${at}`), ''));
      expectBothRefuse(tenantsDir, `cannot create the tenant base dir ${tenantsDir}: no space or no inode left on the device (${disk}: see df and df -i)`, /: no inode left on the device/);
    });
  });

  it.skipIf(process.geteuid?.() !== 0 || !existsSync('/usr/bin/setpriv'))('as a user who may not write in it', () => {
    const shared = tempDir('openclaw-not-root-');
    try {
      chmodSync(shared.path, 0o755);
      const rootsBase = path.join(shared.path, 'tenants');
      mkdirSync(rootsBase, { mode: 0o755 });
      const from = path.join(shared.path, 'acme.tar.zst');
      cpSync(archive, from);
      chmodSync(from, 0o644);
      const asNobody = (args: string[]) => {
        const run = spawnSync('setpriv', [`--reuid=${NOBODY_UID}`, `--regid=${NOBODY_UID}`, '--clear-groups', process.execPath, cliPath, ...args], { encoding: 'utf8' });
        return { status: run.status, stdout: run.stdout, stderr: run.stderr };
      };
      // With whom to run as, as the restore's own error says: the dry run said only "permission denied".
      const runAs = ` (run as uid ${NOBODY_UID}: run it as the user that owns these files, or as root with sudo)`;
      expectBothRefuse(rootsBase, `cannot write in the tenant base dir ${rootsBase}: permission denied${runAs}`, new RegExp(`: permission denied${runAs.replace(/[()]/g, '\\$&')}\n$`), asNobody, from);
      expectBothRefuse(path.join(rootsBase, 'inner'), `cannot create the tenant base dir ${path.join(rootsBase, 'inner')}: permission denied (${rootsBase})${runAs}`, /: permission denied/, asNobody, from);
      expect(readdirSync(rootsBase)).toEqual([]);
    } finally {
      shared.cleanup();
    }
  });
});

// Every refusal a dry run can give, beside the real run for the same cause: the dry run exited 3
// for all of them, where the real run exits 1 for what fails (a destination or base dir it
// cannot write) and 3 for what it refuses (an occupied slot, an existing archive).
describe('a dry run exits as the real run does', () => {
  const runAs = (args: string[]) => {
    const run = spawnSync('setpriv', [`--reuid=${NOBODY_UID}`, `--regid=${NOBODY_UID}`, '--clear-groups', process.execPath, cliPath, ...args], { encoding: 'utf8' });
    return { status: run.status, stdout: run.stdout, stderr: run.stderr };
  };
  const asRoot = (args: string[]) => runCli(args);
  const rootOnly = (path.join(dir.path, 'root-only'));
  beforeAll(() => {
    chmodSync(dir.path, 0o755);
    mkdirSync(rootOnly, { mode: 0o755 });
  });
  const cases: [string, () => string[], number, typeof asRoot][] = [
    ['restore into an occupied slot', () => ['--tenants-dir', base, 'tenants', 'restore', '--from', archive], 3, asRoot],
    ['restore into a base dir under /sys', () => ['--tenants-dir', '/sys/kernel/openclaw-tenants', 'tenants', 'restore', '--from', archive], 1, asRoot],
    ['restore into a base dir this user may not create', () => ['--tenants-dir', path.join(rootOnly, 'tenants'), 'tenants', 'restore', '--from', path.join(rootOnly, 'acme.tar.zst')], 1, runAs],
    // These two said "unexpected error: ENOTDIR: not a directory, lstat …" (after reading the whole archive).
    ['restore into a base dir that is a file', () => ['--tenants-dir', archive, 'tenants', 'restore', '--from', archive], 1, asRoot],
    ['restore into a base dir under a file', () => ['--tenants-dir', path.join(archive, 'tenants'), 'tenants', 'restore', '--from', archive], 1, asRoot],
    ['backup to an existing archive', () => ['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', archive], 3, asRoot],
    ['backup of a missing tenant', () => ['--tenants-dir', base, 'tenants', 'backup', 'nobody-here', '--to', path.join(dir.path, 'none.tar.zst')], 3, asRoot],
    ['backup to a file under /proc', () => ['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', '/proc/openclaw/acme.tar.zst'], 1, asRoot],
  ];
  it.skipIf(process.geteuid?.() !== 0 || !existsSync('/usr/bin/setpriv')).each(cases)('%s', (_label, args, status, run) => {
    if (!existsSync(path.join(rootOnly, 'acme.tar.zst'))) {
      cpSync(archive, path.join(rootOnly, 'acme.tar.zst'));
      chmodSync(path.join(rootOnly, 'acme.tar.zst'), 0o644);
    }
    const dry = run([...args(), '--dry-run']);
    const real = run(args());
    expect({ dry: dry.status, real: real.status }, dry.stdout + dry.stderr + real.stderr).toEqual({ dry: status, real: status });
    // The dry run got as far as the real run's refusal (not a failure of its own before it).
    expect(dry.stdout + dry.stderr).toMatch(/would (be REFUSED|FAIL): |no tenant "nobody-here"|is not a directory \(set it with --tenants-dir/);
    // A failure the dry run meets before its plan is the real run's own line.
    if (dry.stderr !== '') expect(dry.stderr).toBe(real.stderr);
  });
});
