// The `openclaw` command: parses flags, runs one operation, maps every error to a one-line
// message and a distinct exit code. Subcommands live one per file; none holds logic of its own.

import { constants as osConstants } from 'node:os';

import { Command, CommanderError } from 'commander';

import { AbortedError, describeError, errnoCode, errnoMessage, outcomeOf, permissionErrno, ReportedError, UsageError, type Outcome } from '../shared/errors.js';
import type { TenantOperations } from '../shared/operations.js';
import { assertTenantsDirShape, resolveTenantsDir } from '../shared/tenant/tenants.js';
import { TOOL_VERSION } from '../shared/version.js';
import { assertStackPrefix, type ControlPlane } from '../shared/control-plane/deployment.js';
import { assertRegion } from '../shared/storage/s3-url.js';
import { GLOBAL_FLAGS } from '../shared/command-flags.js';
import { hangUpIgnored } from '../shared/hang-up.js';
import { addControlPlaneOptions, addFlags, type CliContext, type ParsedCommandLine } from './context.js';
import { registerCron } from './cron.js';
import { registerDoctor } from './doctor.js';
import { createOutput, jsonLine, shownText, type Output } from './output.js';
import { withTenantSuggestion } from './tenant-suggestion.js';
import { usageErrorLine } from './usage-errors.js';
import { remoteOperations, remoteTenantsDirLabel } from './remote.js';
import { registerBackup } from './tenants-backup.js';
import { registerBackups } from './tenants-backups.js';
import { registerPrune } from './tenants-prune.js';
import { registerVerify } from './tenants-verify.js';
import { registerList } from './tenants-list.js';
import { registerRecover } from './tenants-recover.js';
import { registerRestore } from './tenants-restore.js';

export const EXIT_CODES: Record<Outcome | 'ok', number> = {
  ok: 0,
  failed: 1,
  usage: 2,
  refused: 3,
};

/** Signals that stop a command the way Ctrl-C does; Node's default for each kills it without cleaning up. */
const INTERRUPTING_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export async function main(argv: readonly string[]): Promise<number> {
  // The AWS SDK warns on every run under Node 20 that its releases from 2027 on will need
  // Node 22: advice for whoever upgrades this package's dependencies (see the README), not
  // for the operator, whose output it would clutter.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  if (!process.stdout.listeners('error').includes(dropOutputWhenReaderLeaves)) process.stdout.on('error', dropOutputWhenReaderLeaves);
  if (!process.stderr.listeners('error').includes(carryOnWithoutStderr)) process.stderr.on('error', carryOnWithoutStderr);
  failWritesWhenStdoutWasClosed();
  // The first SIGINT, SIGTERM or SIGHUP (the terminal or ssh session went away) aborts the
  // operation, which cleans up and ends with the shell's code for that signal (128 + its
  // number); a second SIGINT or SIGTERM exits at once, and so does the first signal during a
  // command that has nothing to clean up (it said so: exitAtOnceOnInterrupt). A hang-up
  // comes more than once without anyone insisting (the kernel signals the terminal's
  // foreground jobs, their shell signals them again): a SIGHUP never cuts the cleanup short.
  // Started under nohup, a hang-up changes nothing (shared/hang-up.ts).
  // A command that ignores the signal (it must finish what it started) still ends with that
  // code, so a script sees the interruption.
  const abort = new AbortController();
  let interruptedBy: NodeJS.Signals | undefined;
  let nothingToCleanUp = false;
  const interrupt = (signal: NodeJS.Signals) => {
    if (abort.signal.aborted && signal === 'SIGHUP') return;
    if (abort.signal.aborted || nothingToCleanUp) process.exit(signalExitCode(signal));
    interruptedBy = signal;
    abort.abort(new AbortedError(`interrupted by ${signal}`));
  };
  const ignore = () => {};
  const handlers = INTERRUPTING_SIGNALS.map((signal) => [signal, signal === 'SIGHUP' && hangUpIgnored() ? ignore : interrupt] as const);
  for (const [signal, handler] of handlers) process.on(signal, handler);

  const said: { output?: Output } = {};
  const program = buildProgram(abort.signal, () => (nothingToCleanUp = true), asksForJson(argv), said);
  try {
    await program.parseAsync(helpOfUnknownCommand(helpOfSubcommand(argv, program), program) as string[], { from: 'user' });
    if (interruptedBy === undefined) return EXIT_CODES.ok;
    process.stderr.write(`openclaw: interrupted by ${interruptedBy}, after the command had completed\n`);
    return signalExitCode(interruptedBy);
  } catch (caught) {
    const error = workingDirectoryGone(caught)
      ? new UsageError('the working directory no longer exists (it was deleted): give absolute paths, or run the command from an existing directory')
      : caught;
    const json = program.opts().json === true || asksForJson(argv);
    if (error instanceof CommanderError) {
      // Help and version are "errors" to commander; it has already printed them.
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || (error.code === 'commander.help' && error.exitCode === 0)) {
        return EXIT_CODES.ok;
      }
      // A command given without its subcommand (`openclaw tenants`): a usage error in one
      // line like the others (commander's help on stderr is silenced), not a success that did nothing.
      if (error.code === 'commander.help') {
        const message = missingCommandLine(failedCommand.get(error) ?? program);
        if (json && !stdoutWasClosed()) process.stdout.write(errorLine(said.output, { code: 'USAGE', message }));
        process.stderr.write(`openclaw: ${message}\n`);
        return EXIT_CODES.usage;
      }
      const message = usageErrorLine(error, failedCommand.get(error) ?? program);
      if (json && !stdoutWasClosed()) process.stdout.write(errorLine(said.output, { code: 'USAGE', message }));
      process.stderr.write(`openclaw: ${shownText(message)}\n`);
      return EXIT_CODES.usage;
    }
    if (error instanceof ReportedError) return EXIT_CODES[error.outcome];
    const message = await withTenantSuggestion(withPermissionHint(describeError(error), error), error);
    if (json && !stdoutWasClosed()) process.stdout.write(errorLine(said.output, { code: errorCode(error), message }));
    process.stderr.write(`openclaw: ${shownText(message)}\n`);
    // Whatever the interruption made fail (the --pipe command the terminal's Ctrl-C also
    // reached, an aborted request), the shell is told it was the signal.
    if (interruptedBy !== undefined) return signalExitCode(interruptedBy);
    return EXIT_CODES[outcomeOf(error)];
  } finally {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  }
}

/**
 * What a user who is not root can do about a file the system refused: "permission denied" alone
 * said not (the tenant base dir and its files are usually root's or the gateway's user's).
 */
function withPermissionHint(message: string, error: unknown): string {
  return permissionErrno(error) === undefined ? message : withRunAsHint(message);
}

/** `message` (of a permission the system denied) with whom to run as, unless run as root or it names an owner already. */
function withRunAsHint(message: string): string {
  const uid = process.geteuid?.();
  // A message that names the owner already says whom to run as.
  if (uid === undefined || uid === 0 || /\buid\b/.test(message)) return message;
  return `${message} (run as uid ${uid}: run it as the user that owns these files, or as root with sudo)`;
}

/**
 * A local dry run's refusal for want of permission, with the hint the real run's error gets
 * (withPermissionHint): the dry run said only "permission denied". A remote plan's is not
 * hinted (the gateway's user is not this one).
 */
function hintedPlan<P extends { readonly refusal?: { readonly message: string; readonly errno?: string } }>(plan: P): P {
  if (plan.refusal?.errno === undefined) return plan;
  return { ...plan, refusal: { ...plan.refusal, message: withRunAsHint(plan.refusal.message) } };
}

const REMOTE_MODE_HELP = `
Remote mode:
  With --stack <prefix> (or OPENCLAW_STACK=<prefix>) the tenants commands run on the gateway
  deployed with that prefix: its <prefix>-backup, -restore (also verify and backups), -list
  and -prune Lambda functions, with the same flags, output and exit codes. --aws-profile and
  --region then choose the account and region the gateway is called in (AWS_PROFILE /
  AWS_REGION by default). Archives must be s3:// locations, --pipe is not available, and no
  progress is shown. "tenants backup --all" queues every tenant's backup there. "cron"
  schedules backups there (EventBridge Scheduler, in a time zone, for one tenant or --all);
  "doctor" checks the deployment. Without --stack (or with --stack '') everything runs on
  this machine.

Exit status (every command, both modes):
  0 success; 1 failed (I/O, storage, network, a missing base dir); 2 usage error (bad flag,
  name, URL or value: nothing done); 3 refused, nothing changed (a missing tenant, an occupied
  slot, a busy tenant, an existing archive, a damaged or unsafe archive); 130, 143, 129
  interrupted by SIGINT, SIGTERM, SIGHUP, after cleaning up. Errors are one line on stderr;
  with --json also {"error": {"code", "message"}} on stdout.`;

/** `said`: where the command's Output is kept, for the JSON of an error to carry the notices said before it. */
function buildProgram(signal: AbortSignal, exitAtOnceOnInterrupt: () => void, json: boolean, said: { output?: Output } = {}): Command {
  const version = `${TOOL_VERSION}\n`;
  const program = new Command('openclaw')
    .description('OpenClawMU gateway tools: back up and restore tenants')
    .version(TOOL_VERSION)
    .addHelpText('after', REMOTE_MODE_HELP)
    // Usage errors are printed by main, as one line (usage-errors.ts); `--json --version` is an object too.
    .configureOutput({ outputError: () => {}, writeErr: () => {}, writeOut: (text) => process.stdout.write(json && text === version ? jsonLine({ version: TOOL_VERSION }) : text) });
  addFlags(program, GLOBAL_FLAGS);

  // `--aws-profile` / `--region` of the command that runs: in remote mode, the control plane's.
  let controlFlags: { profile?: string; region?: string } = {};
  program.hook('preAction', (_program, action) => {
    const flags = action.opts() as { awsProfile?: unknown; region?: unknown };
    controlFlags = {
      ...(typeof flags.awsProfile === 'string' && { profile: flags.awsProfile }),
      ...(typeof flags.region === 'string' && { region: flags.region }),
    };
  });

  let operations: TenantOperations | undefined;
  // One for the command: it holds the notices its JSON result carries (made anew, each was lost).
  let output: Output | undefined;
  const context: CliContext = {
    signal,
    exitAtOnceOnInterrupt,
    get output() {
      const json = program.opts().json === true;
      if (output === undefined || output.json !== json) output = said.output = createOutput({ json });
      return output;
    },
    get remote(): ControlPlane | undefined {
      // `--stack ''` runs locally even when OPENCLAW_STACK is set.
      const given = program.opts().stack as string | undefined;
      const stack = given ?? process.env.OPENCLAW_STACK;
      if (stack === undefined || stack === '') return undefined;
      // A region that is no hostname component is refused here, not by the SDK inside the first call (exit 1).
      if (controlFlags.region !== undefined) assertRegion(controlFlags.region);
      return { stack: assertStackPrefix(stack, given === undefined ? 'OPENCLAW_STACK' : '--stack'), ...controlFlags };
    },
    get tenantsDir() {
      const remote = this.remote;
      return remote === undefined ? resolveTenantsDir(program.opts().tenantsDir as string | undefined) : remoteTenantsDirLabel(remote);
    },
    operations() {
      const remote = this.remote;
      if (remote !== undefined && program.opts().tenantsDir !== undefined) {
        throw new UsageError(`--tenants-dir is a local-mode setting: with --stack the gateway's functions use their EFS mount`);
      }
      operations ??= remote === undefined ? lazyLocalOperations(this.tenantsDir, (message) => this.output.notice(message)) : remoteOperations(remote);
      return operations;
    },
    parseCommandLine: (argv) => parseWithoutRunning(argv),
  };

  const tenants = program.command('tenants').description('back up, restore, verify and list tenants; list and prune their backups');
  registerBackup(tenants, context);
  registerRestore(tenants, context);
  registerVerify(tenants, context);
  registerList(tenants, context);
  registerBackups(tenants, context);
  registerPrune(tenants, context);
  registerRecover(tenants, context);
  const list = tenants.commands.find((command) => command.name() === 'list');
  if (list !== undefined) addControlPlaneOptions(list);
  registerCron(program, context);
  registerDoctor(program, context);
  for (const command of allCommands(program)) {
    command.exitOverride((error) => {
      failedCommand.set(error, command);
      throw error;
    });
  }
  return program;
}

/**
 * "missing command: give one of backup, restore, … (see openclaw tenants --help)"; for
 * `help NAME` of a command that is none, "unknown command 'NAME': give one of …".
 */
function missingCommandLine(command: Command): string {
  const names: string[] = [];
  for (let at: Command | null = command; at?.parent != null; at = at.parent) names.unshift(at.name());
  const subcommands = command.commands.map((sub) => sub.name()).filter((name) => name !== 'help');
  const [first, asked] = command.args;
  const what = first === 'help' && asked !== undefined ? `unknown command ${JSON.stringify(asked)}` : 'missing command';
  return `${what}: give one of ${subcommands.join(', ')} (see ${['openclaw', ...names, '--help'].join(' ')})`;
}

/** The command whose arguments commander was parsing when it raised a usage error. */
const failedCommand = new WeakMap<CommanderError, Command>();

function allCommands(command: Command): Command[] {
  return [command, ...command.commands.flatMap(allCommands)];
}

/** A fresh program whose commands record what they were given instead of running, and print nothing. */
async function parseWithoutRunning(argv: readonly string[]): Promise<ParsedCommandLine> {
  const program = buildProgram(new AbortController().signal, () => {}, false);
  let parsed: ParsedCommandLine | undefined;
  for (const command of allCommands(program)) {
    command.configureOutput({ writeOut: () => {}, writeErr: () => {}, outputError: () => {} });
    if (command.commands.length > 0) continue;
    command.action((...received: unknown[]) => {
      const self = received[received.length - 1] as Command;
      const names: string[] = [];
      for (let at: Command | null = self; at !== null && at !== program; at = at.parent) names.unshift(at.name());
      parsed = { command: names, args: received.slice(0, -2), flags: { ...program.opts(), ...self.opts() } };
    });
  }
  try {
    await program.parseAsync(argv as string[], { from: 'user' });
  } catch (error) {
    if (!(error instanceof CommanderError) || ['commander.helpDisplayed', 'commander.help', 'commander.version'].includes(error.code)) throw error;
    throw new CommanderError(error.exitCode, error.code, usageErrorLine(error, failedCommand.get(error) ?? program));
  }
  if (parsed === undefined) throw new CommanderError(2, 'commander.help', 'no command');
  return parsed;
}

/** The in-process operations, imported on first use: `--help` and usage errors skip the core. */
function lazyLocalOperations(tenantsDir: string, notice: (message: string) => void): TenantOperations {
  let loaded: Promise<TenantOperations> | undefined;
  // A base dir that is plainly a tenant's own directory, or the base dir's parent, is refused before any operation (tenants.ts assertTenantsDirShape).
  const load = () =>
    (loaded ??= import('../shared/operations.js').then(async ({ localOperations }) => {
      await assertTenantsDirShape(tenantsDir);
      return localOperations(tenantsDir);
    }));
  // The commands that never sweep the base dir still remove a killed encrypting backup's
  // plaintext scratch areas, or, as dry runs, say they are there (base-dir-sweep.ts removeDeadScratchAreas).
  const loadAndSettleScratch = async (dryRun: boolean) => {
    const operations = await load();
    const { removeDeadScratchAreas } = await import('../shared/tenant/base-dir-sweep.js');
    const found = await removeDeadScratchAreas(tenantsDir, { dryRun }).catch(() => []);
    if (dryRun && found.length > 0) notice(deadScratchNotice(tenantsDir, found));
    return operations;
  };
  return {
    backup: async (command, hooks) => (await load()).backup(command, hooks),
    backupAll: async (command, hooks) => (await load()).backupAll(command, hooks),
    restore: async (command, hooks) => (await load()).restore(command, hooks),
    recover: async (command) => (await load()).recover(command),
    planBackup: async (command, hooks) => hintedPlan(await (await loadAndSettleScratch(true)).planBackup(command, hooks)),
    planRestore: async (command, hooks) => hintedPlan(await (await loadAndSettleScratch(true)).planRestore(command, hooks)),
    verify: async (command, hooks) => (await loadAndSettleScratch(false)).verify(command, hooks),
    listBackups: async (command, hooks) => (await loadAndSettleScratch(false)).listBackups(command, hooks),
    prune: async (command, hooks) => (await loadAndSettleScratch(command.dryRun === true)).prune(command, hooks),
    listNames: async () => (await load()).listNames(),
    listSummaries: async (page) => (await load()).listSummaries(page),
    listSkipped: async () => (await load()).listSkipped(),
  };
}

/** A dry run's line for the dead scratch areas it met and left (`names`: in the base dir). */
function deadScratchNotice(tenantsDir: string, names: readonly string[]): string {
  const shown = names.length > 3 ? `${names.slice(0, 3).join(', ')} and ${names.length - 3} more` : names.join(', ');
  const one = names.length === 1;
  return `${shown} in ${tenantsDir}: ${one ? "a killed encrypted backup's scratch area holds" : "killed encrypted backups' scratch areas hold"} plaintext copies of tenant files; a dry run removes nothing: the same command without --dry-run (or tenants list) removes ${one ? 'it' : 'them'}`;
}

/**
 * `openclaw help tenants backup` as `openclaw tenants help backup`: commander's help command
 * takes one command name and ignores the rest, so it showed the help of `tenants` for that of
 * `tenants backup` (`help cron add` likewise); the group's own help command shows the
 * subcommand's, or names one that is none. Only a group (a command with subcommands) is so
 * turned: `help doctor x` stays doctor's help and `help bogus x` the error of `help bogus`.
 * Options may come before `help` or anywhere after it (`help tenants backup --json`, `-h`),
 * and `help` where a command's name goes is the help command's own name, dropped: `help help`
 * is `help`, `help tenants help backup` is `help tenants backup`.
 */
function helpOfSubcommand(argv: readonly string[], program: Command): readonly string[] {
  const valued = new Set<string>(Object.values(GLOBAL_FLAGS).flatMap((spec) => ('value' in spec ? [spec.flag] : [])));
  const end = argv.includes('--') ? argv.indexOf('--') : argv.length;
  // Where the words that are neither an option nor a global option's value are.
  const names: number[] = [];
  for (let at = 0; at < end; at += 1) {
    if (!argv[at]!.startsWith('-')) names.push(at);
    else if (valued.has(argv[at]!)) at += 1;
  }
  if (names.length === 0 || argv[names[0]!] !== 'help') return argv;
  const dropped = new Set<number>();
  let next = 1;
  const skipHelp = () => {
    if (names[next] !== undefined && argv[names[next]!] === 'help') dropped.add(names[next++]!);
  };
  skipHelp();
  const groupAt = names[next++];
  const group = groupAt === undefined ? undefined : program.commands.find((command) => command.name() === argv[groupAt]);
  if (group !== undefined && group.commands.length > 0) {
    skipHelp();
    if (names[next] !== undefined) {
      // `help` moves to just after the group's name.
      return argv.flatMap((word, at) => (at === names[0] || dropped.has(at) ? [] : at === groupAt ? [word, 'help'] : [word]));
    }
  }
  return argv.filter((_word, at) => !dropped.has(at));
}

/**
 * `openclaw tenants backpu --help`: commander showed the help of `tenants` and exited 0, as if
 * the mistyped command had been understood. Without its help flags the line fails as any
 * unknown command does, in one line naming the nearest (`did you mean backup?`), exit 2.
 */
function helpOfUnknownCommand(argv: readonly string[], program: Command): readonly string[] {
  const valued = new Set<string>(Object.values(GLOBAL_FLAGS).flatMap((spec) => ('value' in spec ? [spec.flag] : [])));
  const end = argv.includes('--') ? argv.indexOf('--') : argv.length;
  let group: Command = program;
  for (let at = 0; at < end && group.commands.length > 0; at += 1) {
    const word = argv[at]!;
    if (word.startsWith('-')) {
      if (group === program && valued.has(word)) at += 1;
      continue;
    }
    const sub = group.commands.find((command) => command.name() === word || command.aliases().includes(word));
    if (sub === undefined && word !== 'help') return argv.filter((arg, index) => index >= end || (arg !== '--help' && arg !== '-h'));
    if (sub === undefined) break;
    group = sub;
  }
  return argv;
}

/**
 * `--json` among the arguments (before any `--`): commander may fail before it has parsed
 * the global options, e.g. on an unknown option, and the answer must still be JSON.
 */
function asksForJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + osConstants.signals[signal];
}

/** `{"error": {code, message}}`, and the notices the command said before it failed (on stderr already). */
function errorLine(output: Output | undefined, error: { code: string; message: string }): string {
  return output?.json === true ? output.errorLine(error) : jsonLine({ error });
}

function errorCode(error: unknown): string {
  return typeof (error as { code?: unknown }).code === 'string' ? (error as { code: string }).code : 'UNEXPECTED';
}

/** A relative path was resolved against a working directory that was deleted: process.cwd() fails (ENOENT, uv_cwd). */
function workingDirectoryGone(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.syscall === 'uv_cwd';
}

/**
 * The reader of stdout went away (`openclaw tenants list --names | head -1`, or the terminal
 * hung up: EIO): the rest of the output is dropped quietly, as Unix tools do, and the
 * command's own exit code stands (a `backup --all` piped into a reader that left still exits
 * 1 when a backup failed; a backup that completed after its ssh session went away exits 0).
 * Any other failure to write (`>/dev/full`) ends the command, whose output was its result.
 */
function dropOutputWhenReaderLeaves(error: NodeJS.ErrnoException): void {
  if (error.code === 'EPIPE' || (error.code === 'EIO' && process.stdout.isTTY)) return;
  const why = error.code === 'EBADF' ? 'stdout is closed (EBADF)' : errnoMessage(error) === undefined ? (error.code ?? error.message) : `${errnoMessage(error)} (${errnoCode(error)})`;
  process.stderr.write(`openclaw: cannot write the output: ${why}\n`);
  process.exit(EXIT_CODES.failed);
}

/** The launcher found stdout closed (`>&-`, bin/openclaw.js): Node put /dev/null in its place. */
const stdoutWasClosedAtStart = process.env.OPENCLAW_STDOUT_CLOSED === '1';
function stdoutWasClosed(): boolean {
  return stdoutWasClosedAtStart;
}

/**
 * A command whose stdout was closed writes its result nowhere: as GNU tools do, the first
 * write fails the command (exit 1, "Bad file descriptor"), whatever it has done, so a script
 * does not take the lost output for a success. An error is only said on stderr, with its
 * own exit code. Not passed on to what the command starts (a --pipe command).
 */
function failWritesWhenStdoutWasClosed(): void {
  if (!stdoutWasClosed()) return;
  delete process.env.OPENCLAW_STDOUT_CLOSED;
  process.stdout.write = () => {
    dropOutputWhenReaderLeaves(Object.assign(new Error('stdout is closed'), { code: 'EBADF' }));
    return false;
  };
}

/**
 * stderr cannot be written (the terminal hung up: EIO; `2>/dev/full`; its reader left): the
 * progress line and messages are lost, but the command goes on (a restore or backup under
 * way still cleans up if interrupted) and its exit code still tells. Unhandled, the error
 * would end the process at once, mid-operation, with code 1.
 */
function carryOnWithoutStderr(): void {}
