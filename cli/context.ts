// What every subcommand needs: where the tenants are, how to run operations (in this
// process, or on a deployed gateway), how to report, and the Ctrl-C signal.

import { InvalidArgumentError, Option, type Command } from 'commander';

import type { FlagSpec } from '../shared/command-flags.js';

import { UsageError } from '../shared/errors.js';
import { parseStallTimeout, STALL_TIMEOUT_ENV } from '../shared/storage/part-progress.js';
import type { StorageFlags, TenantOperations } from '../shared/operations.js';
import type { ControlPlane } from '../shared/control-plane/deployment.js';
import type { Output } from './output.js';

export interface CliContext {
  readonly output: Output;
  readonly signal: AbortSignal;
  /** For commands that change nothing (listings, checks): the first SIGINT/SIGTERM/SIGHUP ends the process at once. */
  exitAtOnceOnInterrupt(): void;
  /** The tenant base dir (local mode), or `<stack>:/mnt/tenants` (remote mode). */
  readonly tenantsDir: string;
  /** The gateway the CLI talks to (`--stack` / OPENCLAW_STACK), or undefined in local mode. */
  readonly remote: ControlPlane | undefined;
  /** Built on first use, so `--help` and usage errors load nothing heavy. */
  operations(): TenantOperations;
  /**
   * `argv` parsed by this CLI's own program definition without running anything (a cron's
   * `--cmd`): commander's errors (unknown option or command, a flag given twice, a missing
   * one) are thrown as CommanderError, help or version included.
   */
  parseCommandLine(argv: readonly string[]): Promise<ParsedCommandLine>;
}

/** A command line as the CLI reads it: which command, its arguments and its flags (the global ones too). */
export interface ParsedCommandLine {
  /** E.g. `['tenants', 'backup']`. */
  readonly command: readonly string[];
  readonly args: readonly unknown[];
  readonly flags: Readonly<Record<string, unknown>>;
}

/** The remote control plane, or a usage error explaining that `what` needs one. */
export function requireRemote(context: CliContext, what: string, hint = ''): ControlPlane {
  const remote = context.remote;
  if (remote === undefined) {
    throw new UsageError(`${what} works on a deployed gateway: give --stack <prefix> or set OPENCLAW_STACK${hint}`, 'REMOTE_ONLY');
  }
  return remote;
}

/**
 * Adds the options declared in `flags` (shared/command-flags.ts), in order; `parsers` turn
 * the values of some of them into numbers.
 */
export function addFlags<K extends string>(command: Command, flags: Readonly<Record<K, FlagSpec>>, parsers: Partial<Record<K, (value: string) => unknown>> = {}): Command {
  for (const key of Object.keys(flags) as K[]) {
    const spec = flags[key];
    const option = new Option(spec.value === undefined ? spec.flag : `${spec.flag} ${spec.value}`, spec.description);
    if (spec.required === true) option.makeOptionMandatory();
    const parse = parsers[key];
    if (spec.repeatable === true) option.argParser(repeated(parse));
    else if (spec.secret === true) option.argParser(onceSecret(spec.flag, command));
    else if (spec.value !== undefined) option.argParser(once(parse));
    command.addOption(option);
  }
  return command;
}

/**
 * A flag that takes one value refuses a second one: commander would keep the last in
 * silence, so `--to a … --to b` (a script appending to a command line) would write to b.
 * Nor is its value another flag (`notAFlag`).
 */
export function once(parse?: (value: string) => unknown): (value: string, previous: unknown) => unknown {
  return (value, previous) => {
    notAFlag(value);
    if (previous !== undefined) {
      throw new InvalidArgumentError(`given twice${typeof previous === 'string' ? ` (first ${JSON.stringify(previous)})` : ''}: give it once`);
    }
    return parse === undefined ? value : parse(value);
  };
}

/** A flag that may be given more than once: its values in order, none of them another flag. */
export function repeated(parse?: (value: string) => unknown): (value: string, previous: unknown[] | undefined) => unknown[] {
  return (value, previous) => {
    notAFlag(value);
    return [...(previous ?? []), parse === undefined ? value : parse(value)];
  };
}

/**
 * The flags whose values are secrets (FlagSpec.secret): usageErrorLine leaves the value out of
 * commander's "option '--secret-key <secret>' argument '…' is invalid.".
 */
export const SECRET_FLAGS = new Set<string>();

/**
 * A secret flag's value, given once: refused given twice, or when it is another flag of the
 * command (the value left out: `--secret-key $S --json` with S empty), in messages that do
 * not show it; any other value is taken, one starting with `--` too (a secret key may).
 */
function onceSecret(flag: string, command: Command): (value: string, previous: unknown) => string {
  SECRET_FLAGS.add(flag);
  return (value, previous) => {
    const name = value.split('=')[0]!;
    for (let at: Command | null = command; at !== null; at = at.parent) {
      if (at.options.some((option) => option.long === name || option.short === name)) throw new InvalidArgumentError(`the value is missing: ${name} is a flag`);
    }
    if (previous !== undefined) throw new InvalidArgumentError('given twice: give it once');
    return value;
  };
}

/**
 * Commander gives a flag that takes a value the next argument whatever it is, so a value left
 * out (`--to $DEST --overwrite` with DEST empty) made the next flag the value: a backup written
 * to a file `./--overwrite`, a restore into a base dir `./--json`. No value of ours is shaped
 * like a long flag, or is the short -h (`--to -h` wrote ./-h; commander takes -V anywhere as
 * the version); a file of such a name is written `./--name`.
 */
function notAFlag(value: string): void {
  if (/^--[a-zA-Z]/.test(value) || value === '-h') {
    throw new InvalidArgumentError(`the value is missing: ${value} is a flag (to name a file so, write ./${value})`);
  }
}

/** `--aws-profile` / `--region` for commands that only call the gateway (remote mode). */
export function addControlPlaneOptions(command: Command): Command {
  return command
    .option('--aws-profile <name>', 'remote mode: the AWS profile the gateway is called with (default: AWS_PROFILE)', once())
    .option('--region <region>', 'remote mode: the region of the gateway (default: AWS_REGION or the profile\'s)', once());
}

/** OPENCLAW_S3_STALL_TIMEOUT in milliseconds, if set. */
function envStallTimeout(): number | undefined {
  const value = process.env[STALL_TIMEOUT_ENV];
  return value === undefined ? undefined : parseStallTimeout(value);
}

export function storageFlags(flags: Record<string, unknown>): StorageFlags {
  const text = (key: string) => (typeof flags[key] === 'string' ? (flags[key] as string) : undefined);
  const endpoint = text('endpoint');
  // Keys from the environment keep them out of `ps`; they only apply to a custom endpoint.
  const fromEnv = (name: string) => (endpoint === undefined ? undefined : process.env[name]);
  // The flag before the environment, as --access-key before OPENCLAW_S3_ACCESS_KEY.
  const stallTimeout = text('stallTimeout') !== undefined ? parseStallTimeout(text('stallTimeout')!, '--stall-timeout') : envStallTimeout();
  return {
    awsProfile: text('awsProfile'),
    region: text('region'),
    endpoint,
    accessKey: text('accessKey') ?? fromEnv('OPENCLAW_S3_ACCESS_KEY'),
    secretKey: text('secretKey') ?? fromEnv('OPENCLAW_S3_SECRET_KEY'),
    pipe: text('pipe'),
    // `tenants backup` only (command-flags.ts).
    sse: text('sse'),
    sseKmsKeyId: text('sseKmsKeyId'),
    storageClass: text('storageClass'),
    // A slow link's stall time (part-progress.ts); this machine's requests only, never a gateway's.
    ...(stallTimeout !== undefined && { stallTimeoutMs: stallTimeout }),
    ...(text('stallTimeout') !== undefined && { stallTimeoutFromFlag: true as const }),
  };
}
