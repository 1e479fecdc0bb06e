// The `openclaw` command: parses flags, runs one operation, maps every error to a one-line
// message and a distinct exit code. Subcommands live one per file; none holds logic of its own.

import { Command, CommanderError, Option } from 'commander';

import { describeError, outcomeOf, type Outcome } from '../shared/errors.js';
import { localOperations, type TenantOperations } from '../shared/operations.js';
import { resolveTenantsDir } from '../shared/tenants.js';
import { TOOL_VERSION } from '../shared/version.js';
import type { CliContext } from './context.js';
import { createOutput } from './output.js';
import { registerBackup } from './tenants-backup.js';
import { registerList } from './tenants-list.js';
import { registerRestore } from './tenants-restore.js';

export const EXIT_CODES: Record<Outcome | 'ok', number> = {
  ok: 0,
  failed: 1,
  usage: 2,
  refused: 3,
};

export async function main(argv: readonly string[]): Promise<number> {
  const abort = new AbortController();
  const interrupt = () => {
    if (abort.signal.aborted) process.exit(130);
    abort.abort();
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);

  const program = buildProgram(abort.signal);
  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return EXIT_CODES.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are "errors" to commander; it has already printed them.
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') {
        return EXIT_CODES.ok;
      }
      return EXIT_CODES.usage;
    }
    const json = program.opts().json === true;
    if (json) process.stdout.write(`${JSON.stringify({ error: { code: errorCode(error), message: describeError(error) } })}\n`);
    process.stderr.write(`openclaw: ${describeError(error)}\n`);
    return EXIT_CODES[outcomeOf(error)];
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
  }
}

function buildProgram(signal: AbortSignal): Command {
  const program = new Command('openclaw')
    .description('OpenClawMU gateway tools: back up and restore tenants')
    .version(TOOL_VERSION)
    .addOption(new Option('--tenants-dir <dir>', 'tenant base dir (default: $OPENCLAW_TENANTS_DIR, else ~/.openclaw/tenants)'))
    .option('--json', 'print one machine-readable JSON result on stdout')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (text, write) => write(`openclaw: ${text.replace(/^error: /, '')}`) })
    .exitOverride();

  let operations: TenantOperations | undefined;
  const context: CliContext = {
    signal,
    get output() {
      return createOutput({ json: program.opts().json === true });
    },
    get tenantsDir() {
      return resolveTenantsDir(program.opts().tenantsDir as string | undefined);
    },
    operations() {
      operations ??= localOperations(this.tenantsDir);
      return operations;
    },
  };

  const tenants = program.command('tenants').description('back up, restore and list tenants');
  registerBackup(tenants, context);
  registerRestore(tenants, context);
  registerList(tenants, context);
  for (const command of [tenants, ...tenants.commands]) command.exitOverride();
  return program;
}

function errorCode(error: unknown): string {
  return typeof (error as { code?: unknown }).code === 'string' ? (error as { code: string }).code : 'UNEXPECTED';
}
