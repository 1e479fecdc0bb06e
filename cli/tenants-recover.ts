// `openclaw tenants recover NAME [--keep old|new|slot]`

import { Option, type Command } from 'commander';

import type { RecoverResult } from '../shared/tenant/recover.js';
import { KEEP_CHOICES, type Keep } from '../shared/tenant/slot.js';
import type { CliContext } from './context.js';

const OUTCOMES: Readonly<Record<RecoverResult['recovered'], string>> = {
  none: 'nothing to recover',
  'rolled-back': 'removed an unfinished restore; the slot was never touched',
  'finished-commit': 'finished an interrupted restore: the restored tenant is in place',
  'removed-leftovers': 'removed leftovers of an interrupted operation',
  'kept-old': 'kept the previous tenant; removed the others',
  'kept-new': 'kept the restored tenant; removed the others',
  'kept-slot': 'kept what the slot held; removed the others',
};

export function registerRecover(tenants: Command, context: CliContext): void {
  tenants
    .command('recover')
    .description('settle an interrupted restore of a tenant now (every command on the tenant does this first)')
    .argument('<tenant>', 'tenant name')
    .addOption(
      new Option('--keep <tree>', 'when recovery needs a decision: put this tree in the slot and delete the others').choices(KEEP_CHOICES as Keep[]),
    )
    .addHelpText(
      'after',
      '\nRecovery needs a decision only when a restore --force was interrupted while the previous tenant\n' +
        'was set aside and something re-created the slot since (e.g. the gateway wrote a session file).\n' +
        'Its error names each directory and what it holds:\n' +
        '  --keep old   the previous tenant (set aside by the restore)\n' +
        '  --keep new   the restored tenant (verified against its archive)\n' +
        '  --keep slot  whatever the slot holds now\n' +
        'To keep files from more than one, copy them into the one you keep first.\n' +
        '\nExamples:\n' +
        '  openclaw tenants recover acme\n' +
        '  openclaw tenants recover acme --keep new',
    )
    .action(async (tenant: string, flags: { keep?: Keep }) => {
      const result = await context.operations().recover({ tenant, ...(flags.keep !== undefined && { keep: flags.keep }) });
      const unused = flags.keep !== undefined && !result.recovered.startsWith('kept-') ? ' (no decision was needed: --keep was not used)' : '';
      context.output.result(result, [`Tenant "${tenant}": ${OUTCOMES[result.recovered]}${unused}`]);
    });
}
