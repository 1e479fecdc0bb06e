// What a scheduled backup runs, and how it gets there: the `--cmd` of `openclaw cron add`
// parsed as an openclaw command line, the date templates in its `--to`, the EventBridge
// rule's name, and the payload the rule hands the backup function. Pure: no SDK, no I/O.
//
// `--cmd` is never given to a shell. It is split into words with shell quoting rules
// ('…', "…", backslash) and only one substitution is understood: `$(date +FORMAT)`
// (also `date -u` / `date --utc`). It becomes a `{date:FORMAT}` placeholder, expanded by
// the backup function when the rule fires, in UTC, from the scheduled event's time (which
// the rule passes in; see `cronTargetInput`), so a retried invocation writes the same key;
// in the schedule's --timezone when it has one, which `date -u` is then refused with).
// Everything else a shell would do (`;`, pipes, redirections, `$VAR`, backticks, other
// commands) is refused with the reason. The commands that can be scheduled are
// `openclaw tenants backup <tenant> --to s3://…` and `openclaw tenants prune <tenant> --in
// s3://… --keep-…`, for the cron's own tenant (`parseScheduledCommand` tells them apart);
// their flags are the CLI's own (command-flags.ts), each of which is taken, ignored or
// refused here.
//
// The payload's `command.to` is a destination template (destination-template.ts); `<` and
// `>` are refused everywhere because EventBridge's input transformer would take them for
// its own placeholders.

import { CronCommandError, UsageError } from '../errors.js';
import { s3ObjectSettings, type S3ObjectFlags } from '../storage/s3-object-settings.js';
import { assertTenantName } from '../tenant/names.js';
import { BACKUP_FLAGS, GLOBAL_FLAGS, PRUNE_FLAGS, RESTORE_FLAGS, type BackupFlag, type FlagSpec, type GlobalFlag, type PruneFlag } from '../command-flags.js';
import type { BackupCommand, PruneCommand, PruneStoreFlags, StorageFlags } from '../operations.js';
import { parseKeepWithin, RETENTION_RULES, type RetentionPolicy, type RetentionRule } from '../catalog/retention.js';
import { isRegionName, isS3Url, parseS3Prefix, parseS3Url } from '../storage/s3-url.js';
import { dateFormatProblem, expandTemplate, hasPlaceholders, namesTenant, templateProblem } from './destination-template.js';

/** `source` of the payload a cron schedule (or a rule of the previous version) sends to the backup function. */
export const CRON_PAYLOAD_SOURCE = 'openclaw.cron';

/** `source` of the payload that starts a fan-out: an all-tenants schedule's, or `tenants backup --all`'s. */
export const FANOUT_PAYLOAD_SOURCE = 'openclaw.fanout';
/** The fan-out payload's version: a fan-out function refuses one it does not know. */
export const FANOUT_PAYLOAD_VERSION = 1;

/** Tags on every rule `cron add` creates. */
export const TENANT_TAG = 'openclaw:tenant';
export const CRON_NAME_TAG = 'openclaw:cron-name';

/** The one target of a cron rule. */
export const CRON_TARGET_ID = 'openclaw-backup';

/** EventBridge's rule name rule. */
export const RULE_NAME_PATTERN = /^[.\-_A-Za-z0-9]{1,64}$/;
export const MAX_RULE_NAME_LENGTH = 64;
/** EventBridge's limit on a rule's Description. */
export const MAX_DESCRIPTION_LENGTH = 512;

export const CRON_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;


// ---------------------------------------------------------------------------------------
// Rule names

export function assertCronName(name: string): string {
  if (!CRON_NAME_PATTERN.test(name)) {
    throw new CronCommandError(`invalid cron name ${JSON.stringify(name)}: letters, digits, ".", "-" and "_", starting with a letter or digit`);
  }
  return name;
}

/** `<prefix>-<tenant>-<cron name>`, checked against EventBridge's rules for rule names. */
export function cronRuleName(prefix: string, tenant: string, cronName: string): string {
  assertTenantName(tenant);
  assertCronName(cronName);
  const name = `${prefix}-${tenant}-${cronName}`;
  if (name.length > MAX_RULE_NAME_LENGTH) {
    throw new CronCommandError(
      `the rule name "${name}" is ${name.length} characters; EventBridge allows ${MAX_RULE_NAME_LENGTH}: ` +
        `use a cron name of at most ${Math.max(0, MAX_RULE_NAME_LENGTH - prefix.length - tenant.length - 2)} characters`,
    );
  }
  if (!RULE_NAME_PATTERN.test(name)) throw new CronCommandError(`the rule name "${name}" is not a valid EventBridge rule name`);
  return name;
}

/** Rule names of one tenant's crons start with this (other tenants' may too: check the tags). */
export function cronRulePrefix(prefix: string, tenant?: string): string {
  return tenant === undefined ? `${prefix}-` : `${prefix}-${tenant}-`;
}

// ---------------------------------------------------------------------------------------
// Words: shell quoting without a shell

/** A word's literal text, or a `$(date +FORMAT)` (`utc`: `date -u`, `date --utc`). */
export type WordPart = { readonly text: string } | { readonly date: string; readonly utc?: true };
export type Word = readonly WordPart[];

const METACHARACTERS = new Set([';', '|', '&', '<', '>', '(', ')', '`']);

/** Splits `line` into words with shell quoting rules; `$(date +FORMAT)` becomes a date part. */
export function splitWords(line: string): Word[] {
  const words: Word[] = [];
  let parts: WordPart[] | undefined;
  let text = '';
  const append = (value: string) => {
    parts ??= [];
    text += value;
  };
  const flush = () => {
    if (text !== '') parts!.push({ text });
    text = '';
  };
  const endWord = () => {
    if (parts === undefined) return;
    flush();
    words.push(parts.length === 0 ? [{ text: '' }] : parts);
    parts = undefined;
  };
  const substitution = (at: number): number => {
    const close = line.indexOf(')', at + 2);
    if (close === -1) throw new CronCommandError('unterminated "$(" in --cmd');
    const { format, utc } = dateSubstitution(line.slice(at + 2, close));
    parts ??= [];
    flush();
    parts.push({ date: format, ...(utc && { utc: true as const }) });
    return close + 1;
  };

  let index = 0;
  while (index < line.length) {
    const char = line[index]!;
    if (/\s/.test(char)) {
      endWord();
      index++;
    } else if (char === "'") {
      const close = line.indexOf("'", index + 1);
      if (close === -1) throw new CronCommandError("unterminated ' quote in --cmd");
      append(line.slice(index + 1, close));
      index = close + 1;
    } else if (char === '"') {
      append('');
      index++;
      for (;;) {
        const inner = line[index];
        if (inner === undefined) throw new CronCommandError('unterminated " quote in --cmd');
        if (inner === '"') {
          index++;
          break;
        }
        if (inner === '\\' && index + 1 < line.length && '"\\$`\n'.includes(line[index + 1]!)) {
          append(line[index + 1]!);
          index += 2;
        } else if (inner === '$') {
          index = dollar(index);
        } else if (inner === '`') {
          throw notAShell('backquotes (`…`)');
        } else {
          append(inner);
          index++;
        }
      }
    } else if (char === '\\') {
      if (index + 1 >= line.length) throw new CronCommandError('--cmd ends with a lone "\\"');
      append(line[index + 1]!);
      index += 2;
    } else if (char === '$') {
      index = dollar(index);
    } else if (METACHARACTERS.has(char)) {
      throw notAShell(char === '`' ? 'backquotes (`…`)' : `"${char}"`);
    } else if (char === '#' && parts === undefined) {
      throw notAShell('comments ("#")');
    } else {
      append(char);
      index++;
    }
  }
  endWord();
  return words;

  function dollar(at: number): number {
    if (line[at + 1] === '(') return substitution(at);
    throw notAShell(line[at + 1] === '{' || /[A-Za-z_]/.test(line[at + 1] ?? '') ? 'variables ("$NAME")' : '"$"');
  }
}

function notAShell(what: string): CronCommandError {
  return new CronCommandError(
    `--cmd is one openclaw command, not run by a shell: ${what} cannot be used (the only substitution is $(date +FORMAT))`,
  );
}

/** The FORMAT of `date +FORMAT`, `date -u +FORMAT` or `date --utc +FORMAT` (`utc`); anything else is refused. */
function dateSubstitution(inner: string): { format: string; utc: boolean } {
  if (inner.includes('$(')) throw notAShell('nested "$(…)"');
  const words = splitWords(inner).map((word) => word.map((part) => ('text' in part ? part.text : '')).join(''));
  const [command, ...args] = words;
  const flags = args.filter((arg) => arg === '-u' || arg === '--utc');
  const formats = args.filter((arg) => arg.startsWith('+'));
  if (command !== 'date' || formats.length !== 1 || flags.length + formats.length !== args.length || flags.length > 1) {
    throw notAShell(`"$(${inner})"`);
  }
  const format = formats[0]!.slice(1);
  const problem = dateFormatProblem(format);
  if (problem !== undefined) throw new CronCommandError(`in "$(${inner})": ${problem}`);
  return { format, utc: flags.length === 1 };
}

/** A word as a template: text with `{date:FORMAT}` placeholders. */
function wordTemplate(word: Word): string {
  return word.map((part) => ('text' in part ? part.text : `{date:${part.date}}`)).join('');
}

// ---------------------------------------------------------------------------------------
// The command

export interface ScheduledBackup {
  /** The backup the function runs; `to` is a template (`{date:FORMAT}` placeholders). */
  readonly command: BackupCommand;
  /** Whether `to` has placeholders, expanded when the rule fires. */
  readonly templated: boolean;
  /**
   * `--recipients-file` paths of the line: the caller reads them when the cron is added and
   * adds their recipients to `command.encryptTo` (this parser does no I/O).
   */
  readonly recipientsFiles?: readonly string[];
}

export interface CronCommandContext {
  /** The cron's tenant: the command must back up this one. */
  readonly tenant: string;
  /** The stack prefix in use: a `--stack` in the command must name it. */
  readonly stack: string;
  /** The schedule's time zone when it is not UTC: its dates are written in it. */
  readonly timeZone?: string;
}

/** What a scheduled backup does with a flag of `openclaw` or `openclaw tenants backup`. */
type ScheduledUse =
  /** `--to`: the archive's key, a template (`$(date …)` allowed). */
  | 'destination'
  /** A switch of the BackupCommand the function runs (`--overwrite`, `--sqlite-raw-fallback`). */
  | 'command'
  /** A storage flag the function uses as given (`--endpoint`). */
  | 'storage'
  /** `--encrypt-to`: a recipient (public key) stored in the rule's payload. */
  | 'recipient'
  /** `--recipients-file`: read when the cron is added; its recipients are stored in the payload. */
  | 'recipients-file'
  /** Meaningless there (`--json`: the function answers in JSON anyway). */
  | 'ignored'
  /** `--stack`: must name the stack the cron is added to. */
  | 'this-stack'
  | { readonly refused: string };

const DROP_KEYS =
  'keys in --cmd would be stored in clear text in the EventBridge rule: drop --access-key/--secret-key (the function uses its execution role)';

/** Every flag the CLI's `tenants backup` accepts (shared/command-flags.ts), and what a scheduled backup does with it. */
const SCHEDULED: { readonly [F in GlobalFlag | BackupFlag]: ScheduledUse } = {
  tenantsDir: { refused: 'the scheduled backup reads the gateway\'s tenants (its EFS mount): drop --tenants-dir' },
  stack: 'this-stack',
  json: 'ignored',
  to: 'destination',
  overwrite: 'command',
  // The scheduled backup takes it as the CLI's backup does: a database the function cannot
  // copy consistently is then archived raw with a warning instead of failing the run.
  sqliteRawFallback: 'command',
  all: { refused: 'a cron backs up one tenant: to schedule every tenant, use `cron add --all --schedule … --name … --to s3://bucket/…/{tenant}/{date}.tar.zst`' },
  encryptTo: 'recipient',
  recipientsFile: 'recipients-file',
  awsProfile: {
    refused: 'the scheduled backup runs with the backup function\'s execution role: drop --aws-profile (give it to `cron add` itself to choose the account the rule is created in)',
  },
  // With --endpoint: the region that store is signed for, as in `tenants backup` (checked after the loop).
  region: 'storage',
  endpoint: 'storage',
  accessKey: { refused: DROP_KEYS },
  secretKey: { refused: DROP_KEYS },
  // How the archive's object is stored: checked with the other storage flags (open-location.ts).
  sse: 'storage',
  sseKmsKeyId: 'storage',
  storageClass: 'storage',
  pipe: {
    refused:
      '--pipe runs a shell command and is not available in a scheduled (Lambda) backup: to encrypt, give --encrypt-to age1… (or --recipients-file FILE); the bucket also encrypts archives at rest',
  },
  stallTimeout: {
    refused: '--stall-timeout sets the stall time of this machine\'s S3 transfers: the scheduled backup runs in the backup function, with its own (drop it)',
  },
  skipExisting: { refused: '--skip-existing goes with a local --all; a scheduled backup writes a new archive each run ({date} or $(date …) in --to)' },
  jobs: { refused: '--jobs goes with a local --all; a scheduled --all queues every tenant on the gateway, which runs them a bounded number at a time' },
  dryRun: { refused: 'a scheduled backup runs for real: try the command with --dry-run by hand first' },
};

type BackupLineFlag = { readonly key: GlobalFlag | BackupFlag; readonly spec: FlagSpec };
const BACKUP_LINE_FLAGS = new Map<string, BackupLineFlag>(
  [...Object.entries(GLOBAL_FLAGS), ...Object.entries(BACKUP_FLAGS)].map(([key, spec]) => [spec.flag, { key: key as BackupLineFlag['key'], spec }]),
);

/** "--to, --overwrite and --endpoint": the flags a scheduled backup takes. */
const TAKEN = (() => {
  const taken = [...BACKUP_LINE_FLAGS.values()].filter(({ key }) => ['destination', 'command', 'storage', 'recipient', 'recipients-file'].includes(SCHEDULED[key] as string)).map(({ spec }) => spec.flag);
  return `${taken.slice(0, -1).join(', ')} and ${taken[taken.length - 1]}`;
})();

/** Parses `--cmd` into the backup it schedules. */
export function parseCronCommand(line: string, context: CronCommandContext): ScheduledBackup {
  if (/[<>]/.test(line)) throw notAShell('"<" and ">"');
  const words = splitWords(line);
  if (words.length === 0) throw new CronCommandError('--cmd is empty: give an openclaw command, e.g. "openclaw tenants backup acme --to s3://bucket/acme/$(date +%F).tar.zst"');
  const literal = (word: Word, what: string): string => {
    if (word.some((part) => 'date' in part)) throw new CronCommandError(`$(date …) can only be used in --to, not in ${what}`);
    return word.map((part) => ('text' in part ? part.text : '')).join('');
  };

  const program = literal(words[0]!, 'the command name');
  if (program !== 'openclaw' && !program.endsWith('/openclaw')) {
    throw new CronCommandError(`--cmd must be an openclaw command (it is not run by a shell), got ${JSON.stringify(program)}${startWithOpenclaw(program)}`);
  }

  assertSchedulableCommand(words);
  const positionals: string[] = [];
  let to: string | undefined;
  const switches: Partial<Record<BackupFlag | GlobalFlag, true>> = {};
  const storage: Record<string, string> = {};
  const encryptTo: string[] = [];
  const recipientsFiles: string[] = [];
  const given = new Map<string, string>();
  let optionsEnded = false;
  for (let index = 1; index < words.length; index++) {
    const word = words[index]!;
    const first = word[0]!;
    const head = 'text' in first ? first.text : '';
    if (optionsEnded || !head.startsWith('-') || head === '-') {
      positionals.push(literal(word, positionals.length === 2 ? 'the tenant name' : 'the command'));
      continue;
    }
    if (head === '--' && word.length === 1) {
      optionsEnded = true;
      continue;
    }
    const equals = head.indexOf('=');
    const name = equals === -1 ? head : head.slice(0, equals);
    const takesNoValue = () => {
      if (equals !== -1 || word.length > 1) throw new CronCommandError(`${name} takes no value`);
    };
    const value = (): Word => {
      if (equals !== -1) return [{ text: head.slice(equals + 1) }, ...word.slice(1)];
      if (word.length > 1) throw new CronCommandError(`unknown option ${JSON.stringify(wordTemplate(word))} in --cmd`);
      const next = words[++index];
      if (next === undefined) throw new CronCommandError(`${name} in --cmd needs a value`);
      return next;
    };
    const known = BACKUP_LINE_FLAGS.get(name);
    if (known === undefined) throw new CronCommandError(`unknown option ${JSON.stringify(name)} in --cmd (a scheduled backup takes ${TAKEN})`);
    const use = SCHEDULED[known.key];
    if (typeof use === 'object') throw new CronCommandError(use.refused);
    if (known.spec.value === undefined) takesNoValue();
    switch (use) {
      case 'destination': {
        const destination = value();
        // `{date:FORMAT}` is written in the schedule's zone: `date -u` cannot be kept there.
        if (context.timeZone !== undefined && destination.some((part) => 'date' in part && part.utc === true)) {
          throw new CronCommandError(
            `$(date -u …) in --to names the UTC date, but this schedule writes its dates in ${context.timeZone} (--timezone): drop -u, or --timezone`,
          );
        }
        to = wordTemplate(destination);
        takeOnce(given, known.spec, to);
        break;
      }
      case 'command':
        switches[known.key] = true;
        break;
      case 'storage':
        storage[known.key] = literal(value(), name);
        takeOnce(given, known.spec, storage[known.key]!);
        break;
      case 'recipient':
        encryptTo.push(literal(value(), name));
        break;
      case 'recipients-file':
        recipientsFiles.push(literal(value(), name));
        break;
      case 'ignored':
        break;
      case 'this-stack': {
        const stack = literal(value(), name);
        takeOnce(given, known.spec, stack);
        if (stack !== context.stack) throw new CronCommandError(`--cmd names --stack ${stack}, but the cron is added to ${context.stack}`);
        break;
      }
    }
  }

  assertScheduledRegion(storage, 'the scheduled backup runs in the gateway\'s region: drop --region (give it to `cron add` itself to choose where the rule is created)');
  assertScheduledObjectSettings(storage);
  const [group, verb, tenant, ...extra] = positionals;
  if (group !== 'tenants' || verb !== 'backup') {
    throw new CronCommandError(`only "openclaw tenants backup <tenant> --to s3://…" can be scheduled, got "openclaw ${positionals.join(' ')}"`);
  }
  if (tenant === undefined) throw new CronCommandError('--cmd names no tenant: openclaw tenants backup <tenant> --to s3://…');
  if (extra.length > 0) throw new CronCommandError(`unexpected ${JSON.stringify(extra.join(' '))} in --cmd`);
  assertTenantName(tenant);
  assertCronTenant(['tenants', 'backup'], tenant, context.tenant);
  if (to === undefined) throw new CronCommandError('--cmd has no --to: openclaw tenants backup <tenant> --to s3://bucket/key');
  assertScheduledDestination(to, tenant);

  return {
    command: {
      tenant,
      to,
      ...(switches.overwrite === true && { overwrite: true }),
      ...(switches.sqliteRawFallback === true && { sqliteRawFallback: true }),
      ...(Object.keys(storage).length > 0 && { storage: storage as StorageFlags }),
      ...(encryptTo.length > 0 && { encryptTo }),
    },
    templated: hasPlaceholders(to),
    ...(recipientsFiles.length > 0 && { recipientsFiles }),
  };
}

/**
 * `--region` in --cmd: with `--endpoint`, the region that store is signed for (B2, Wasabi or a
 * MinIO with a region refuse any other), sent with the scheduled command as `tenants backup`
 * sends it; without, it would name the gateway's region, which the cron cannot change.
 */
function assertScheduledRegion(storage: Record<string, unknown>, refusal: string): void {
  if (storage.region === undefined) return;
  if (storage.endpoint === undefined) throw new CronCommandError(refusal);
  if (!isRegionName(storage.region as string)) throw new CronCommandError(`invalid --region ${JSON.stringify(storage.region)} in --cmd`);
}

/** `--sse`, `--sse-kms-key-id` and `--storage-class` in --cmd: checked when the cron is added, not when it first fires. */
function assertScheduledObjectSettings(storage: S3ObjectFlags): void {
  try {
    s3ObjectSettings(storage);
  } catch (error) {
    if (error instanceof UsageError) throw new CronCommandError(`${error.message} (in --cmd)`);
    throw error;
  }
}

/** The commands that act on the one tenant they name, and what the refusal says they do to it. */
const TENANT_VERBS: Readonly<Record<string, string>> = {
  'tenants backup': 'backs up',
  'tenants prune': 'prunes',
};

/**
 * A tenant's cron acts on that tenant: the tenant its backup or prune names must be the
 * cron's, in local mode (crontab) and remote mode (Scheduler) alike. Other commands, and a
 * command naming no tenant (`tenants backup --all`), are left to each mode's own rules.
 */
export function assertCronTenant(command: readonly string[], commandTenant: string | undefined, cronTenant: string): void {
  const verb = TENANT_VERBS[command.join(' ')];
  if (verb === undefined || commandTenant === undefined || commandTenant === cronTenant) return;
  throw new CronCommandError(`--cmd ${verb} tenant "${commandTenant}", but the cron belongs to tenant "${cronTenant}": they must be the same`);
}

/**
 * Refuses a second value of a flag that takes one, as the CLI does (cli/context.ts): else
 * the last would win in silence. `given` holds the first value of each flag seen so far.
 */
function takeOnce(given: Map<string, string>, spec: FlagSpec, value: string): void {
  if (spec.repeatable === true) return;
  const first = given.get(spec.flag);
  if (first !== undefined) throw new CronCommandError(`${spec.flag} is given twice in --cmd (first ${JSON.stringify(first)}): give it once`);
  given.set(spec.flag, value);
}

/** Options of any openclaw command that take a value (to find the subcommand before judging options). */
const VALUE_OPTIONS = new Set<string>(
  [GLOBAL_FLAGS, BACKUP_FLAGS, RESTORE_FLAGS, PRUNE_FLAGS].flatMap((flags) => Object.values<FlagSpec>(flags)).filter((spec) => spec.value !== undefined).map((spec) => spec.flag),
);

/** The first two command words of a line (`tenants backup`), skipping options and their values. */
function subcommandOf(words: readonly Word[]): string[] {
  const commands: string[] = [];
  for (let index = 1; index < words.length && commands.length < 2; index++) {
    const head = words[index]!.map((part) => ('text' in part ? part.text : '')).join('');
    if (head === '--') break;
    if (!head.startsWith('-')) commands.push(head);
    else if (VALUE_OPTIONS.has(head)) index++;
  }
  return commands;
}

const SCHEDULABLE = 'only "openclaw tenants backup <tenant> --to s3://…" and "openclaw tenants prune <tenant> --in s3://… --keep-…" can be scheduled';

function assertSchedulableCommand(words: readonly Word[]): void {
  const commands = subcommandOf(words);
  if (commands[0] !== 'tenants' || commands[1] !== 'backup') {
    throw new CronCommandError(`${SCHEDULABLE}, got "openclaw ${commands.join(' ')}"`);
  }
}

// ---------------------------------------------------------------------------------------
// Scheduled prunes

/** What a cron runs: a backup (its `to` a template) or a prune. */
export type ScheduledCommand =
  | ({ readonly kind: 'backup' } & ScheduledBackup)
  | { readonly kind: 'prune'; readonly command: PruneCommand; readonly templated: false };

/** Parses `--cmd` into the backup or prune it schedules. */
export function parseScheduledCommand(line: string, context: CronCommandContext): ScheduledCommand {
  if (/[<>]/.test(line)) throw notAShell('"<" and ">"');
  const words = splitWords(line);
  const [group, verb] = words.length === 0 ? [] : subcommandOf(words);
  if (group === 'tenants' && verb === 'prune') return { kind: 'prune', command: parsePruneLine(words, context), templated: false };
  return { kind: 'backup', ...parseCronCommand(line, context) };
}

type PruneUse = 'location' | 'keep' | 'keep-within' | 'storage' | 'storage-switch' | 'ignored' | 'this-stack' | { readonly refused: string };

/** Every flag the CLI's `tenants prune` accepts, and what a scheduled prune does with it. */
const SCHEDULED_PRUNE: { readonly [F in GlobalFlag | PruneFlag]: PruneUse } = {
  tenantsDir: 'ignored',
  stack: 'this-stack',
  json: 'ignored',
  in: 'location',
  keepLast: 'keep',
  keepHourly: 'keep',
  keepWithin: 'keep-within',
  keepDaily: 'keep',
  keepWeekly: 'keep',
  keepMonthly: 'keep',
  keepYearly: 'keep',
  dryRun: { refused: 'a scheduled prune runs for real: try the command with --dry-run by hand first' },
  awsProfile: { refused: 'the scheduled prune runs with the prune function\'s execution role: drop --aws-profile (give it to `cron add` itself)' },
  region: 'storage',
  endpoint: 'storage',
  accessKey: { refused: DROP_KEYS },
  secretKey: { refused: DROP_KEYS },
  deleteIfMatch: 'storage-switch',
};

const PRUNE_LINE_FLAGS = new Map<string, { readonly key: GlobalFlag | PruneFlag; readonly spec: FlagSpec }>(
  [...Object.entries(GLOBAL_FLAGS), ...Object.entries(PRUNE_FLAGS)].map(([key, spec]) => [spec.flag, { key: key as GlobalFlag | PruneFlag, spec }]),
);

const KEEP_RULES: Readonly<Partial<Record<GlobalFlag | PruneFlag, RetentionRule>>> = {
  keepLast: 'last',
  keepHourly: 'hourly',
  keepDaily: 'daily',
  keepWeekly: 'weekly',
  keepMonthly: 'monthly',
  keepYearly: 'yearly',
};

function parsePruneLine(words: readonly Word[], context: CronCommandContext): PruneCommand {
  const literal = (word: Word, what: string): string => {
    if (word.some((part) => 'date' in part)) throw new CronCommandError(`$(date …) cannot be used in a scheduled prune (${what})`);
    return word.map((part) => ('text' in part ? part.text : '')).join('');
  };
  const program = literal(words[0]!, 'the command name');
  if (program !== 'openclaw' && !program.endsWith('/openclaw')) {
    throw new CronCommandError(`--cmd must be an openclaw command (it is not run by a shell), got ${JSON.stringify(program)}${startWithOpenclaw(program)}`);
  }
  const positionals: string[] = [];
  const keep: { -readonly [K in RetentionRule]?: number } & { within?: string } = {};
  const storage: Record<string, string | boolean> = {};
  const given = new Map<string, string>();
  let location: string | undefined;
  let optionsEnded = false;
  for (let index = 1; index < words.length; index++) {
    const text = literal(words[index]!, 'the command');
    if (optionsEnded || !text.startsWith('-') || text === '-') {
      positionals.push(text);
      continue;
    }
    if (text === '--') {
      optionsEnded = true;
      continue;
    }
    const equals = text.indexOf('=');
    const name = equals === -1 ? text : text.slice(0, equals);
    const known = PRUNE_LINE_FLAGS.get(name);
    if (known === undefined) throw new CronCommandError(`unknown option ${JSON.stringify(name)} in --cmd (a scheduled prune takes --in, --keep-*, --endpoint and --delete-if-match)`);
    const use = SCHEDULED_PRUNE[known.key];
    if (typeof use === 'object') throw new CronCommandError(use.refused);
    let value: string | undefined;
    if (known.spec.value !== undefined) {
      if (equals !== -1) value = text.slice(equals + 1);
      else {
        const next = words[++index];
        if (next === undefined) throw new CronCommandError(`${name} in --cmd needs a value`);
        value = literal(next, name);
      }
    } else if (equals !== -1) throw new CronCommandError(`${name} takes no value`);
    if (value !== undefined) takeOnce(given, known.spec, value);
    switch (use) {
      case 'location':
        location = value!;
        break;
      case 'keep': {
        const count = Number(value);
        if (!/^\d+$/.test(value!) || !Number.isSafeInteger(count)) throw new CronCommandError(`${name} in --cmd must be a whole number`);
        keep[KEEP_RULES[known.key]!] = count;
        break;
      }
      case 'keep-within':
        if (parseKeepWithin(value!) === undefined) throw new CronCommandError(`${name} in --cmd must be a span such as 7d, 36h or 1y6m`);
        keep.within = value!;
        break;
      case 'storage':
        storage[known.key] = value!;
        break;
      case 'storage-switch':
        storage[known.key] = true;
        break;
      case 'ignored':
        break;
      case 'this-stack':
        if (value !== context.stack) throw new CronCommandError(`--cmd names --stack ${value}, but the cron is added to ${context.stack}`);
        break;
    }
  }
  assertScheduledRegion(storage, 'the scheduled prune runs in the gateway\'s region: drop --region (give it to `cron add` itself)');
  const [, , tenant, ...extra] = positionals;
  if (tenant === undefined) throw new CronCommandError('--cmd names no tenant: openclaw tenants prune <tenant> --in s3://… --keep-…');
  if (extra.length > 0) throw new CronCommandError(`unexpected ${JSON.stringify(extra.join(' '))} in --cmd`);
  assertTenantName(tenant);
  assertCronTenant(['tenants', 'prune'], tenant, context.tenant);
  if (location === undefined || !isS3Url(location)) {
    throw new CronCommandError('a scheduled prune works on S3: --cmd needs --in s3://bucket/prefix/');
  }
  parseS3Prefix(location);
  if (keep.within === undefined && !RETENTION_RULES.some((rule) => (keep[rule] ?? 0) > 0)) {
    throw new CronCommandError('--cmd keeps nothing: a scheduled prune needs at least one --keep-last/-hourly/-daily/-weekly/-monthly/-yearly above 0, or --keep-within');
  }
  return { tenant, in: location, keep: keep as RetentionPolicy, ...(Object.keys(storage).length > 0 && { storage: storage as PruneStoreFlags }) };
}

/**
 * The `--to` of a backup of every tenant: a scheduled destination whose key names
 * `{tenant}`, so that no two tenants write the same archive.
 */
export function assertAllTenantsDestination(to: string): { bucket: string } {
  const checked = assertScheduledDestination(to);
  if (!namesTenant(to)) {
    throw new CronCommandError(
      `--to ${JSON.stringify(to)} is the same key for every tenant: put {tenant} in it, e.g. s3://bucket/backups/{tenant}/{date}.tar.zst`,
    );
  }
  return checked;
}

/**
 * A scheduled `--to`: an s3:// URL whose bucket is literal, valid once expanded (with the
 * tenant it is for, or a sample name when one template serves every tenant).
 */
export function assertScheduledDestination(to: string, tenant = 'sample-tenant'): { bucket: string } {
  if (!to.startsWith('s3://')) {
    throw new CronCommandError(`a scheduled backup stores its archive in S3: --to must be s3://bucket/key, got ${JSON.stringify(to)}`);
  }
  const problem = templateProblem(to);
  if (problem !== undefined) throw new CronCommandError(`invalid --to ${JSON.stringify(to)}: ${problem}`);
  const bucketPart = to.slice('s3://'.length).split('/')[0]!;
  if (hasPlaceholders(bucketPart)) throw new CronCommandError('the bucket in --to must be literal: placeholders and $(date …) can only be used in the key');
  // Expanded with a sample date, the URL must follow the usual rules.
  const { bucket } = parseS3Url(expandTemplate(to, { time: new Date(Date.UTC(2026, 11, 31, 23, 59, 59)), tenant }));
  return { bucket };
}

// ---------------------------------------------------------------------------------------
// The rule's payload

/** What a cron rule hands the backup function (after its input transformer ran). */
export interface CronPayload {
  readonly source: typeof CRON_PAYLOAD_SOURCE;
  readonly tenant: string;
  readonly cronName: string;
  /** The scheduled event's `time` (ISO 8601, UTC): the date placeholders are expanded with it. */
  readonly time?: string;
  /** The scheduled event's `id`, for the logs. */
  readonly eventId?: string;
  /** The backup (`to` a template) or the prune. */
  readonly command: BackupCommand | PruneCommand;
}

/** A schedule's context attributes, which EventBridge Scheduler replaces in a target's Input when it fires. */
export const SCHEDULER_ATTRIBUTES = {
  scheduledTime: '<aws.scheduler.scheduled-time>',
  executionId: '<aws.scheduler.execution-id>',
} as const;

/**
 * The Input of a tenant's schedule: the payload with the scheduled time and the execution's
 * ID filled in by Scheduler (quoted: Scheduler replaces the placeholder's text only), and
 * the schedule's time zone when it is not UTC (dates in `to` are written in it).
 */
export function cronScheduleInput(tenant: string, cronName: string, command: BackupCommand | PruneCommand, timeZone?: string): string {
  const fixed = JSON.stringify({ source: CRON_PAYLOAD_SOURCE, tenant, cronName });
  if (/[<>]/.test(fixed + JSON.stringify(command) + (timeZone ?? ''))) throw notAShell('"<" and ">"');
  return (
    `${fixed.slice(0, -1)},"time":"${SCHEDULER_ATTRIBUTES.scheduledTime}","eventId":"${SCHEDULER_ATTRIBUTES.executionId}",` +
    `${timeZone === undefined ? '' : `"timeZone":${JSON.stringify(timeZone)},`}"command":${JSON.stringify(command)}}`
  );
}

/** What starts a fan-out (protocol.ts parses it): the destination template and the run's identity. */
export interface FanOutPayload {
  readonly source: typeof FANOUT_PAYLOAD_SOURCE;
  readonly version: typeof FANOUT_PAYLOAD_VERSION;
  /** A template naming {tenant}; dates are filled from `time`. */
  readonly to: string;
  readonly overwrite?: boolean;
  /** The all-tenants cron that fired; absent for `tenants backup --all`. */
  readonly cronName?: string;
  /** The scheduled time (ISO 8601); absent: the fan-out's clock. */
  readonly time?: string;
  readonly timeZone?: string;
  /** Identifies the run in logs and messages; absent: the invocation's request ID. */
  readonly runId?: string;
  /** age1… recipients (public keys) every tenant's archive is encrypted to; absent: not encrypted. */
  readonly encryptTo?: readonly string[];
  /** `--sse`, `--sse-kms-key-id`, `--storage-class` of every tenant's archive; absent: the bucket's defaults (a gateway older than the field refuses it as unknown). */
  readonly storage?: S3ObjectFlags;
}

/** The Input of an all-tenants schedule: a fan-out payload with Scheduler's time and execution ID. */
export function fanOutScheduleInput(cronName: string, to: string, options: { overwrite?: boolean; timeZone?: string; encryptTo?: readonly string[]; storage?: S3ObjectFlags } = {}): string {
  const payload = {
    source: FANOUT_PAYLOAD_SOURCE,
    version: FANOUT_PAYLOAD_VERSION,
    to,
    ...(options.overwrite === true && { overwrite: true }),
    ...(options.encryptTo !== undefined && options.encryptTo.length > 0 && { encryptTo: options.encryptTo }),
    ...(options.storage !== undefined && Object.keys(options.storage).length > 0 && { storage: options.storage }),
    cronName,
    ...(options.timeZone !== undefined && { timeZone: options.timeZone }),
  };
  const fixed = JSON.stringify(payload);
  if (/[<>]/.test(fixed)) throw notAShell('"<" and ">"');
  return `${fixed.slice(0, -1)},"time":"${SCHEDULER_ATTRIBUTES.scheduledTime}","runId":"${SCHEDULER_ATTRIBUTES.executionId}"}`;
}

export interface InputTransformer {
  readonly InputPathsMap: Record<string, string>;
  readonly InputTemplate: string;
}

/**
 * The rule target's input transformer: the payload with the scheduled event's `time` and
 * `id` filled in by EventBridge. (`<time>` unquoted in a JSON template becomes a JSON string.)
 */
export function cronTargetInput(tenant: string, cronName: string, command: BackupCommand | PruneCommand): InputTransformer {
  const fixed = JSON.stringify({ source: CRON_PAYLOAD_SOURCE, tenant, cronName });
  if (/[<>]/.test(fixed + JSON.stringify(command))) throw notAShell('"<" and ">"');
  return {
    InputPathsMap: { time: '$.time', eventId: '$.id' },
    InputTemplate: `${fixed.slice(0, -1)},"time":<time>,"eventId":<eventId>,"command":${JSON.stringify(command)}}`,
  };
}

/** What `cron list` shows, stored as the rule's Description. */
export interface CronDescription {
  readonly schedule: string;
  readonly cmd: string;
}

export function cronDescription(schedule: string, cmd: string): string {
  const description = JSON.stringify({ schedule, cmd } satisfies CronDescription);
  if (description.length > MAX_DESCRIPTION_LENGTH) {
    throw new CronCommandError(
      `--cmd is too long to keep in the rule's description (EventBridge allows ${MAX_DESCRIPTION_LENGTH} characters): shorten it`,
    );
  }
  return description;
}

export function parseCronDescription(description: string | undefined): CronDescription | undefined {
  if (description === undefined) return undefined;
  try {
    const value = JSON.parse(description) as Partial<CronDescription>;
    return typeof value.schedule === 'string' && typeof value.cmd === 'string' ? { schedule: value.schedule, cmd: value.cmd } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * For a local crontab line (crontab.ts): the same "one openclaw command, only $(date +FORMAT)"
 * rule, without the remote-only restrictions (local paths, --pipe and profiles work there).
 */
export function assertOpenclawCommandLine(line: string): void {
  if (/[<>]/.test(line)) throw notAShell('"<" and ">"');
  const [program] = splitWords(line);
  const name = program?.map((part) => ('text' in part ? part.text : '$(…)')).join('');
  if (name === undefined || (name !== 'openclaw' && !name.endsWith('/openclaw'))) {
    throw new CronCommandError(`--cmd must be an openclaw command, got ${JSON.stringify(name ?? '')}${startWithOpenclaw(name ?? '')}`);
  }
}

/** A --cmd that left out the program name (`tenants backup acme …`): said what to write. */
function startWithOpenclaw(program: string): string {
  return ['tenants', 'cron', 'doctor'].includes(program) ? `: write the whole command, starting with openclaw ("openclaw ${program} …")` : '';
}
