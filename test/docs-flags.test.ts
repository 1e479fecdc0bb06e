// The README as a new operator reads it, against the built CLI's --help: every flag a
// command's --help offers is documented (README.md, infra/README*.md), and every
// `openclaw …` example in their shell blocks, and in the Examples of every --help, names a
// command that exists with flags that command takes (a `--cmd "openclaw …"` inside one is
// checked as a command of its own); `help GROUP COMMAND` shows that command's help.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { repoRoot, runCli } from './helpers/tree.js';

const COMMANDS = [
  [],
  ['tenants', 'backup'],
  ['tenants', 'restore'],
  ['tenants', 'verify'],
  ['tenants', 'list'],
  ['tenants', 'backups'],
  ['tenants', 'prune'],
  ['tenants', 'recover'],
  ['cron', 'add'],
  ['cron', 'list'],
  ['cron', 'rm'],
  ['cron', 'migrate'],
  ['doctor'],
] as const;
const GROUPS = new Set(['tenants', 'cron']);
const DOCS = ['README.md', path.join('infra', 'README.md'), path.join('infra', 'README-cross-account.md')].map((file) => readFileSync(path.join(repoRoot, file), 'utf8'));

/**
 * The long flags the options section of a --help lists: each at the start of a term, two
 * spaces in (a description's wrapped line, further in, may start with another flag it names:
 * cron add's "--timezone)", tenants backup's "--all a template…").
 */
function helpFlags(command: readonly string[]): Set<string> {
  const options = (helpOf(command).split('\nOptions:')[1] ?? '').split(/\n\S/)[0]!;
  return new Set([...options.matchAll(/^ {2}(?:-\w, )?(--[a-z][a-z0-9-]*)/gm)].map((match) => match[1]!));
}

const helpTexts = new Map<string, string>();
/** The --help of `command`, run once. */
function helpOf(command: readonly string[]): string {
  const key = command.join(' ');
  if (!helpTexts.has(key)) {
    const run = runCli([...command, '--help']);
    expect(run.status, run.stderr).toBe(0);
    helpTexts.set(key, run.stdout);
  }
  return helpTexts.get(key)!;
}

const flags = new Map(COMMANDS.map((command) => [command.join(' '), helpFlags(command)]));
const globalFlags = flags.get('')!;

/** The `openclaw …` commands of the docs' shell blocks, continuation lines joined. */
function examples(text: string): string[] {
  const blocks = [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1]!.replace(/\\\n\s*/g, ' '));
  return blocks.flatMap((block) => block.split('\n').map((line) => line.trim()).filter((line) => line.startsWith('openclaw ')));
}

/** The command path and the flags of one example (`[--log FILE]` as `--log FILE`); quoted values (a `--cmd`) are returned to check on their own. */
function parseExample(line: string): { command: string; flags: string[]; nested: string[] } {
  const nested = [...line.matchAll(/"(openclaw [^"]*)"/g)].map((match) => match[1]!.replace(/\\\$/g, '$'));
  const words = line.replace(/"[^"]*"/g, 'VALUE').replace(/\s+#.*$/, '').replace(/[[\]|]/g, ' ').trim().split(/\s+/).slice(1);
  const command: string[] = [];
  const given: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word.startsWith('--')) given.push(word.split('=')[0]!);
    else if (command.length === 0 && (GROUPS.has(word) || word === 'doctor') && !words[i - 1]?.startsWith('--')) command.push(word);
    else if (command.length === 1 && GROUPS.has(command[0]!)) command.push(word);
  }
  return { command: command.join(' '), flags: given, nested };
}

describe('the docs and the CLI agree', () => {
  it('documents every flag of every --help', () => {
    const missing = [...flags].flatMap(([command, offered]) =>
      [...offered].filter((flag) => flag !== '--help' && flag !== '--version' && !DOCS.some((doc) => new RegExp(`${flag}(?![a-z0-9-])`).test(doc))).map((flag) => `${command} ${flag}`),
    );
    expect(missing).toEqual([]);
  });

  it("runs every example with a command and flags the CLI has", () => {
    const wrong: string[] = [];
    const check = (line: string) => {
      const example = parseExample(line);
      const offered = flags.get(example.command);
      if (offered === undefined) return void wrong.push(`${line}: no command "${example.command}"`);
      for (const flag of example.flags) if (!offered.has(flag) && !globalFlags.has(flag)) wrong.push(`${line}: ${example.command} has no ${flag}`);
      example.nested.forEach(check);
    };
    const lines = DOCS.flatMap(examples);
    expect(lines.length).toBeGreaterThan(20);
    lines.forEach(check);
    // The Examples of every --help, continuation lines joined, likewise.
    const helpLines = COMMANDS.flatMap((command) => (helpOf(command).split('\nExamples:\n')[1] ?? '').replace(/\\\n\s*/g, ' ').split('\n').map((line) => line.trim()).filter((line) => line.startsWith('openclaw ')));
    expect(helpLines.length).toBeGreaterThan(20);
    helpLines.forEach(check);
    expect(wrong).toEqual([]);
  });

  // `openclaw --help` said nothing of exit codes, which a script needs first.
  it('lists in openclaw --help the exit codes of the README\'s table', () => {
    const table = DOCS[0]!.split('\nExit codes:\n')[1]!.split('\n\n')[0]!;
    const documented = [...table.matchAll(/^\| `(\d+)`(?: \/ `(\d+)`)?(?: \/ `(\d+)`)? \|/gm)].flatMap((row) => row.slice(1).filter((code) => code !== undefined));
    expect(documented).toEqual(['0', '1', '2', '3', '130', '143', '129']);
    const help = helpOf([]).split('\nExit status (every command, both modes):\n')[1] ?? '';
    expect(help.match(/\b\d+\b/g)).toEqual(documented);
  });

  // Commander's help command takes one name: `help tenants backup` showed the help of `tenants`.
  it('shows a subcommand\'s help for help GROUP COMMAND, as GROUP COMMAND --help does', () => {
    for (const command of COMMANDS.filter((command) => command.length === 2)) {
      expect(runCli(['--tenants-dir', '/nonexistent', 'help', ...command]), command.join(' ')).toMatchObject({ status: 0, stdout: helpOf(command) });
    }
  });

  // An option after the names (`help tenants backup --json`) showed the group's help again;
  // `help doctor x` (no group) failed as "doctor takes 0 arguments, got 2: "help" "x"";
  // `help help` and `help tenants help` named an unknown command "help".
  it('takes options anywhere after help, help\'s own name where a command goes, and turns only a group', () => {
    for (const [args, command] of [
      [['help', 'tenants', 'backup', '--json'], ['tenants', 'backup']],
      [['help', 'cron', 'add', '-h'], ['cron', 'add']],
      [['help', '--json', 'tenants', 'restore'], ['tenants', 'restore']],
      [['help', 'help'], []],
      [['help', 'help', 'tenants', 'verify'], ['tenants', 'verify']],
      [['help', 'tenants', 'help', 'prune'], ['tenants', 'prune']],
      [['help', 'tenants', 'help'], ['tenants']],
      [['help', 'doctor', 'x'], ['doctor']],
    ] as const) {
      expect(runCli([...args]), args.join(' ')).toMatchObject({ status: 0, stdout: helpOf(command) });
    }
  });
});
