// What a scheduled backup runs, and how it gets there: the `--cmd` of `openclaw cron add`
// parsed as an openclaw command line, the date templates in its `--to`, the EventBridge
// rule's name, and the payload the rule hands the backup function. Pure: no SDK, no I/O.
//
// `--cmd` is never given to a shell. It is split into words with shell quoting rules
// ('…', "…", backslash) and only one substitution is understood: `$(date +FORMAT)`
// (also `date -u` / `date --utc`). It becomes a `{date:FORMAT}` placeholder, expanded by
// the backup function when the rule fires, in UTC, from the scheduled event's time (which
// the rule passes in; see `cronTargetInput`), so a retried invocation writes the same key.
// Everything else a shell would do (`;`, pipes, redirections, `$VAR`, backticks, other
// commands) is refused with the reason. The only command that can be scheduled is
// `openclaw tenants backup <tenant> --to s3://…`, for the cron's own tenant; its flags are
// the CLI's own (command-flags.ts), each of which is taken, ignored or refused here.
//
// The payload's `command.to` is a destination template (destination-template.ts); `<` and
// `>` are refused everywhere because EventBridge's input transformer would take them for
// its own placeholders.

import { CronCommandError } from '../errors.js';
import { assertTenantName } from '../tenant/names.js';
import { BACKUP_FLAGS, GLOBAL_FLAGS, RESTORE_FLAGS, type BackupFlag, type FlagSpec, type GlobalFlag } from '../command-flags.js';
import type { BackupCommand, StorageFlags } from '../operations.js';
import { parseS3Url } from '../storage/s3-url.js';
import { dateFormatProblem, expandTemplate, hasPlaceholders, templateProblem } from './destination-template.js';

/** `source` of the payload a cron rule sends to the backup function. */
export const CRON_PAYLOAD_SOURCE = 'openclaw.cron';

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

export type WordPart = { readonly text: string } | { readonly date: string };
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
    const format = dateSubstitution(line.slice(at + 2, close));
    parts ??= [];
    flush();
    parts.push({ date: format });
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

/** The FORMAT of `date +FORMAT`, `date -u +FORMAT` or `date --utc +FORMAT`; anything else is refused. */
function dateSubstitution(inner: string): string {
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
  return format;
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
}

/** What a scheduled backup does with a flag of `openclaw` or `openclaw tenants backup`. */
type ScheduledUse =
  /** `--to`: the archive's key, a template (`$(date …)` allowed). */
  | 'destination'
  /** A switch of the BackupCommand the function runs (`--overwrite`). */
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
  encryptTo: 'recipient',
  recipientsFile: 'recipients-file',
  awsProfile: {
    refused: 'the scheduled backup runs with the backup function\'s execution role: drop --aws-profile (give it to `cron add` itself to choose the account the rule is created in)',
  },
  region: { refused: 'the scheduled backup runs in the gateway\'s region: drop --region (give it to `cron add` itself to choose where the rule is created)' },
  endpoint: 'storage',
  accessKey: { refused: DROP_KEYS },
  secretKey: { refused: DROP_KEYS },
  pipe: {
    refused:
      '--pipe runs a shell command and is not available in a scheduled (Lambda) backup: to encrypt, give --encrypt-to age1… (or --recipients-file FILE); the bucket also encrypts archives at rest',
  },
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
    throw new CronCommandError(`--cmd must be an openclaw command (it is not run by a shell), got ${JSON.stringify(program)}`);
  }

  assertSchedulableCommand(words);
  const positionals: string[] = [];
  let to: string | undefined;
  const switches: Partial<Record<BackupFlag | GlobalFlag, true>> = {};
  const storage: Record<string, string> = {};
  const encryptTo: string[] = [];
  const recipientsFiles: string[] = [];
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
      case 'destination':
        if (to !== undefined) throw new CronCommandError(`${name} is given twice in --cmd`);
        to = wordTemplate(value());
        break;
      case 'command':
        switches[known.key] = true;
        break;
      case 'storage':
        storage[known.key] = literal(value(), name);
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
        if (stack !== context.stack) throw new CronCommandError(`--cmd names --stack ${stack}, but the cron is added to ${context.stack}`);
        break;
      }
    }
  }

  const [group, verb, tenant, ...extra] = positionals;
  if (group !== 'tenants' || verb !== 'backup') {
    throw new CronCommandError(`only "openclaw tenants backup <tenant> --to s3://…" can be scheduled, got "openclaw ${positionals.join(' ')}"`);
  }
  if (tenant === undefined) throw new CronCommandError('--cmd names no tenant: openclaw tenants backup <tenant> --to s3://…');
  if (extra.length > 0) throw new CronCommandError(`unexpected ${JSON.stringify(extra.join(' '))} in --cmd`);
  assertTenantName(tenant);
  if (tenant !== context.tenant) {
    throw new CronCommandError(`--cmd backs up tenant "${tenant}", but the cron belongs to tenant "${context.tenant}": they must be the same`);
  }
  if (to === undefined) throw new CronCommandError('--cmd has no --to: openclaw tenants backup <tenant> --to s3://bucket/key');
  assertScheduledDestination(to, tenant);

  return {
    command: {
      tenant,
      to,
      ...(switches.overwrite === true && { overwrite: true }),
      ...(Object.keys(storage).length > 0 && { storage: storage as StorageFlags }),
      ...(encryptTo.length > 0 && { encryptTo }),
    },
    templated: hasPlaceholders(to),
    ...(recipientsFiles.length > 0 && { recipientsFiles }),
  };
}

/** Options of any openclaw command that take a value (to find the subcommand before judging options). */
const VALUE_OPTIONS = new Set<string>(
  [GLOBAL_FLAGS, BACKUP_FLAGS, RESTORE_FLAGS].flatMap((flags) => Object.values<FlagSpec>(flags)).filter((spec) => spec.value !== undefined).map((spec) => spec.flag),
);

function assertSchedulableCommand(words: readonly Word[]): void {
  const commands: string[] = [];
  for (let index = 1; index < words.length && commands.length < 2; index++) {
    const head = words[index]!.map((part) => ('text' in part ? part.text : '')).join('');
    if (head === '--') break;
    if (!head.startsWith('-')) commands.push(head);
    else if (VALUE_OPTIONS.has(head)) index++;
  }
  if (commands[0] !== 'tenants' || commands[1] !== 'backup') {
    throw new CronCommandError(`only "openclaw tenants backup <tenant> --to s3://…" can be scheduled, got "openclaw ${commands.join(' ')}"`);
  }
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
  /** The backup; `to` is a template. */
  readonly command: BackupCommand;
}

export interface InputTransformer {
  readonly InputPathsMap: Record<string, string>;
  readonly InputTemplate: string;
}

/**
 * The rule target's input transformer: the payload with the scheduled event's `time` and
 * `id` filled in by EventBridge. (`<time>` unquoted in a JSON template becomes a JSON string.)
 */
export function cronTargetInput(tenant: string, cronName: string, command: BackupCommand): InputTransformer {
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
    throw new CronCommandError(`--cmd must be an openclaw command, got ${JSON.stringify(name ?? '')}`);
  }
}
