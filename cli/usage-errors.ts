// Commander's usage errors as the one line the CLI prints for every error, saying what to do:
// commander writes its message, a "(Did you mean …?)" and a help hint on separate lines, says
// only "unknown option '--as'" for a flag of another command, and reports a mistyped required
// flag (`restore --form FILE`) as the required one missing, hiding the typo.

import type { Command, CommanderError } from 'commander';

import { SECRET_FLAGS } from './context.js';

/** A flag an operator gives to the wrong command, and what to do instead. */
const MISPLACED_FLAGS: Readonly<Record<string, string>> = {
  'tenants backup --as':
    'tenants backup has no --as: it backs up the tenant named by its argument (tenants backup NAME --to DEST); --as is for tenants restore, to restore under another name',
  'tenants backup --from':
    'tenants backup has no --from: it reads the tenant named by its argument and writes the archive --to DEST; --from is for tenants restore and verify',
  'tenants restore --to':
    'tenants restore has no --to: it reads the archive --from SRC and restores into the tenant base dir (--tenants-dir DIR) under the archive\'s tenant name, or --as NAME',
  'tenants verify --to': 'tenants verify has no --to: it reads the archive --from SRC and writes nothing',
  'tenants verify --dry-run':
    'tenants verify has no --dry-run: it writes to no tenant, only the verification mark beside the archive (--no-record: not even that); tenants restore --dry-run shows what a restore would do',
  'tenants backup --force': 'tenants backup has no --force: --overwrite replaces an existing archive at --to DEST (--force is for tenants restore, to replace a tenant)',
  'tenants restore --overwrite': 'tenants restore has no --overwrite: --force replaces the tenant in its slot (kept until the restored one is verified)',
  'tenants backup --tenant': 'tenants backup has no --tenant: name the tenant as its argument (tenants backup NAME --to DEST), or --all for every tenant',
  'tenants restore --tenant': 'tenants restore has no --tenant: the archive names its tenant; --as NAME restores under another name',
  'tenants restore --name': 'tenants restore has no --name: the archive names its tenant; --as NAME restores under another name',
  'tenants backups --from': 'tenants backups has no --from: name the directory or s3:// prefix to search with --in LOCATION',
  'tenants backups --to': 'tenants backups has no --to: name the directory or s3:// prefix to search with --in LOCATION',
  'tenants prune --from': 'tenants prune has no --from: name the directory or s3:// prefix of the backups with --in LOCATION',
  'tenants prune --to': 'tenants prune has no --to: name the directory or s3:// prefix of the backups with --in LOCATION',
  // It was named "an option of tenants recover", whose --keep settles an interrupted restore.
  'tenants prune --keep':
    'tenants prune has no --keep: give the rules that keep backups, --keep-last N, --keep-daily N (or hourly, weekly, monthly, yearly) or --keep-within SPAN',
};

/**
 * Other tools' names for our flags (the AWS CLI's, age's, plain words), which no edit distance
 * finds: `--profile` got no hint, `--source` was taken for a mistyped `--force`.
 */
const OTHER_TOOLS_FLAGS: Readonly<Record<string, string>> = {
  '--profile': '--aws-profile',
  '--endpoint-url': '--endpoint',
  '--recipient': '--encrypt-to',
  '-r': '--encrypt-to',
  '--recipients': '--recipients-file',
  '-R': '--recipients-file',
  '--identity-file': '--identity',
  '-i': '--identity',
  '--source': '--from',
  '--src': '--from',
  '--input': '--from',
  '--destination': '--to',
  '--dest': '--to',
  '--command': '--cmd',
  '--cron': '--schedule',
};

/** Positional arguments a command does not take, and why. */
const NO_ARGUMENTS: Readonly<Record<string, string>> = {
  'tenants restore':
    'the archive names its tenant: give it with --from SRC, and --as NAME to restore under another name',
  'tenants verify': 'give the archive with --from SRC',
  'tenants list': 'it lists every tenant of the base dir',
};

/**
 * The one line (without the "openclaw: " prefix) for a usage error commander raised while
 * parsing `command`'s arguments.
 */
export function usageErrorLine(error: CommanderError, command: Command): string {
  const path = commandPath(command);
  const help = ` (see openclaw ${path === '' ? '' : `${path} `}--help)`;
  const message = withoutSecret(commanderMessage(error));
  // A mistyped flag leaves the command without the one it needed: the typo is what to fix.
  const unknown = error.code === 'commander.unknownOption' ? /^unknown option '([^']*)'/.exec(message)?.[1] : firstUnknownOption(command);
  if (unknown !== undefined) return `${unknownOptionLine(unknown, command, path)}${help}`;
  const why = command.registeredArguments.length === 0 && command.args.length > 0 ? NO_ARGUMENTS[path] : undefined;
  // `tenants restore FILE` (the archive as an argument) said only that --from was missing.
  if (error.code === 'commander.missingMandatoryOptionValue' && why !== undefined) return noArgumentLine(path, command, why);
  if (error.code === 'commander.excessArguments') {
    if (why !== undefined) return noArgumentLine(path, command, why);
    // `doctor extra` said "doctor takes 0 arguments (), got 1".
    if (command.registeredArguments.length === 0) return `${noArgumentLine(path, command)}${help}`;
    const given = argumentsShown(command);
    const expected = command.registeredArguments.map((argument) => argument.name()).join(', ');
    return `${path} takes ${command.registeredArguments.length} argument${command.registeredArguments.length === 1 ? '' : 's'} (${expected}), got ${command.args.length}: ${given} (quote a value that holds spaces)${help}`;
  }
  return `${message}${help}`;
}

function noArgumentLine(path: string, command: Command, why?: string): string {
  const secret = secretFlagGiven(command);
  return `${path} takes no argument (got ${secret === undefined ? argumentsShown(command) : `${command.args.length}, ${argumentsShown(command)}`})${why === undefined ? '' : `: ${why}`}`;
}

/** The arguments, quoted; not shown when a secret flag was given: `--secret-key Part1 Part2` (a key with a space, unquoted) made Part2 an argument. */
function argumentsShown(command: Command): string {
  const secret = secretFlagGiven(command);
  return secret === undefined ? command.args.map((arg) => JSON.stringify(arg)).join(' ') : `not shown, since ${secret} was given`;
}

/**
 * The secret flag (SECRET_FLAGS) given on the command line to `command` or a command above it,
 * if any: a word of its value may be among the arguments (a key with a space, unquoted).
 */
function secretFlagGiven(command: Command): string | undefined {
  for (let at: Command | null = command; at !== null; at = at.parent) {
    const here = at;
    const option = here.options.find((each) => each.long !== undefined && SECRET_FLAGS.has(each.long) && here.getOptionValueSource(each.attributeName()) === 'cli');
    if (option !== undefined) return option.long;
  }
  return undefined;
}

/**
 * Commander's "option '--secret-key <secret>' argument 'VALUE' is invalid. WHY" without the
 * value (SECRET_FLAGS): a usage error's line goes to the terminal, logs and --json output.
 */
function withoutSecret(message: string): string {
  const flag = /^option '(--[a-z0-9-]+) <[^>]*>' argument '/.exec(message);
  if (flag === null || !SECRET_FLAGS.has(flag[1]!)) return message;
  // The reason after the value is ours and never holds "' is invalid."; the value may.
  const end = message.lastIndexOf("' is invalid.");
  return end === -1 ? message : `option '${flag[1]}' is invalid (its value not shown).${message.slice(end + "' is invalid.".length)}`;
}

/**
 * An unknown flag is named without a value given with it (`--secret-kye=VALUE`, a mistyped
 * --secret-key, showed its key on the terminal, in --json and in a cron's log); the program
 * itself is named `openclaw`.
 */
function unknownOptionLine(flag: string, command: Command, path: string): string {
  const name = flag.split('=')[0] as string;
  const shown = name === flag ? flag : `${name}=…`;
  const misplaced = MISPLACED_FLAGS[`${path} ${name}`];
  if (misplaced !== undefined) return misplaced;
  const ours = OTHER_TOOLS_FLAGS[name];
  if (ours !== undefined && flagsOf(command).has(ours)) return `unknown option '${shown}' (did you mean ${ours}?)`;
  if (name === '--tenant' && command.registeredArguments.some((argument) => argument.name() === 'tenant')) {
    return `${path} has no --tenant: name the tenant as its argument (${path} NAME)`;
  }
  const elsewhere = commandsWithFlag(rootOf(command), name).filter((other) => other !== command);
  // A subcommand's flag put before it, `openclaw --stack P --region R tenants …`, is said so
  // before any near name of the few global flags (it was "did you mean --version?").
  const beforeCommand = path === '' && elsewhere.length > 0;
  const suggestions = beforeCommand ? [] : suggestedFlags(name, command);
  if (suggestions.length > 0) return `unknown option '${shown}' (did you mean ${suggestions.length === 1 ? '' : 'one of '}${suggestions.join(', ')}?)`;
  if (elsewhere.length > 0) return `${path === '' ? 'openclaw' : path} has no option ${name}: it is an option of ${elsewhere.map(commandPath).join(', ')}`;
  return `unknown option '${shown}'`;
}

/**
 * The first option among the arguments commander could not place: after it, commander
 * classifies everything as unknown, so a required flag given after a typo looks missing.
 */
function firstUnknownOption(command: Command): string | undefined {
  if (command.commands.length > 0) return undefined;
  // After `--` every word is an argument (`tenants backup -- -r` names a tenant "-r"): commander
  // keeps the `--` among the arguments only when an unknown option came before it.
  const end = command.args.indexOf('--');
  if (end === -1 && givenWords(command).includes('--')) return undefined;
  return command.args.slice(0, end === -1 ? undefined : end).find((arg) => arg.startsWith('-') && arg !== '-');
}

/** The words the program was given (commander's rawArgs, untyped). */
function givenWords(command: Command): readonly unknown[] {
  const raw = (rootOf(command) as { rawArgs?: unknown }).rawArgs;
  return Array.isArray(raw) ? raw : [];
}

/** The long flags of this command (or the global ones) nearest to a mistyped one, by commander's rule. */
function suggestedFlags(flag: string, command: Command): string[] {
  if (!flag.startsWith('--')) return [];
  const candidates = flagsOf(command);
  let best: string[] = [];
  let bestDistance = 3;
  for (const candidate of candidates) {
    const distance = editDistance(flag.slice(2), candidate.slice(2));
    const length = Math.max(flag.length, candidate.length) - 2;
    if ((length - distance) / length <= 0.4 || distance > bestDistance) continue;
    if (distance < bestDistance) best = [];
    bestDistance = distance;
    best.push(candidate);
  }
  return best.sort();
}

/** The long flags `command` takes, its own and those of the commands above it (the global ones). */
function flagsOf(command: Command): Set<string> {
  const flags = new Set<string>();
  for (let at: Command | null = command; at !== null; at = at.parent) {
    for (const option of at.options) if (option.long !== undefined && !option.hidden) flags.add(option.long);
  }
  return flags;
}

/** Optimal string alignment distance (an adjacent swap counts one), as commander's. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

function commandsWithFlag(root: Command, flag: string): Command[] {
  const found: Command[] = [];
  const visit = (command: Command) => {
    if (command.commands.length === 0 && command.options.some((option) => option.long === flag || option.short === flag)) found.push(command);
    command.commands.forEach(visit);
  };
  visit(root);
  return found;
}

function rootOf(command: Command): Command {
  let root = command;
  while (root.parent !== null) root = root.parent;
  return root;
}

/** "tenants backup", "cron add"; "" for the program itself. */
function commandPath(command: Command): string {
  const names: string[] = [];
  for (let at: Command | null = command; at?.parent != null; at = at.parent) names.unshift(at.name());
  return names.join(' ');
}

/**
 * Commander's message of `error` in one line, without its "error: " (it puts a "(Did you mean
 * …?)" on a line of its own), and "(Did you mean backup?)" in the case of the unknown option's
 * "(did you mean --from?)".
 */
export function commanderMessage(error: CommanderError): string {
  return oneLine(error.message.replace(/^error: /, '')).replace('(Did you mean ', '(did you mean ');
}

function oneLine(text: string): string {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .join(' ');
}
