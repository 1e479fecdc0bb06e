// `openclaw tenants recover NAME [--keep old|new|slot]`

import { Option, type Command } from 'commander';

import type { ChainRecovery } from '../shared/backup/backup.js';
import type { RecoverResult } from '../shared/tenant/recover.js';
import { KEEP_CHOICES, type Keep } from '../shared/tenant/slot.js';
import { once, type CliContext } from './context.js';
import { duration } from './output.js';

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
    .description('settle an interrupted restore of a tenant now (every command on the tenant does this first), and end a broken backup in pieces')
    .argument('<tenant>', 'tenant name')
    .addOption(keepOption())
    .addHelpText(
      'after',
      '\nRecovery needs a decision only when a restore --force was interrupted while the previous tenant\n' +
        'was set aside and something re-created the slot since (e.g. the gateway wrote a session file).\n' +
        'Its error names each directory and what it holds:\n' +
        '  --keep old   the previous tenant (set aside by the restore)\n' +
        '  --keep new   the restored tenant (verified against its archive)\n' +
        '  --keep slot  whatever the slot holds now\n' +
        'To keep files from more than one, copy them into the one you keep first.\n' +
        '\nA backup in pieces (continued by the gateway) keeps the tenant busy until it ends; recover ends\n' +
        'one whose state is damaged, or was not saved for a day (its multipart upload is aborted), and\n' +
        'leaves a younger one alone, saying when it would end it.\n' +
        '\nExamples:\n' +
        '  openclaw tenants recover acme\n' +
        '  openclaw tenants recover acme --keep new',
    )
    .action(async (tenant: string, flags: { keep?: Keep }) => {
      const result = await context.operations().recover({ tenant, ...(flags.keep !== undefined && { keep: flags.keep }) });
      const unused = flags.keep !== undefined && !result.recovered.startsWith('kept-') ? ' (no decision was needed: --keep was not used)' : '';
      const chain = result.continuation;
      // A choice carried out whose trash could not be deleted: done, the line says, with the reason below.
      const outcome = result.notices === undefined ? OUTCOMES[result.recovered] : OUTCOMES[result.recovered].replace('; removed the others', '; moved the others to trash, which could not all be deleted');
      const restoreChain = result.restoreChain;
      const slot = (chain !== undefined || restoreChain?.outcome === 'continuing') && result.recovered === 'none' ? [] : [`Tenant "${tenant}": ${outcome}${unused}`];
      const notes = (result.notices ?? []).map((notice) => `  note: ${notice}`);
      const chains = [...(chain === undefined ? [] : [`Tenant "${tenant}": ${chainLine(chain)}`]), ...(restoreChain === undefined ? [] : [`Tenant "${tenant}": ${restoreChainLine(restoreChain)}`])];
      context.output.result(result, [...slot, ...notes, ...chains]);
    });
}

function chainLine(chain: ChainRecovery): string {
  const to = chain.location === undefined ? '' : ` to ${chain.location}`;
  if (chain.outcome === 'continuing') {
    return `a backup in pieces${to} continues (state saved ${duration(chain.ageMs)} ago, ${chain.savedAt}): left alone; recover ends it after ${chain.endsAfter} if no piece saves it before`;
  }
  const why = chain.reason === 'damaged' ? 'whose state was damaged' : `that stopped continuing (no piece since ${chain.savedAt})`;
  const upload =
    chain.upload === 'aborted'
      ? '; its multipart upload was aborted'
      : chain.upload === 'left'
        ? `; ${chain.leftAtStore}`
        : chain.upload === 'completed'
          ? '; its last piece had completed the archive: stored whole, its tags written now'
          : '';
  return `ended a backup in pieces${to} ${why}${upload}`;
}

function restoreChainLine(chain: NonNullable<RecoverResult['restoreChain']>): string {
  const from = chain.location === undefined ? '' : ` from ${chain.location}`;
  if (chain.outcome === 'continuing') {
    const whose = chain.foreign === undefined ? '' : `; its checkpoint is ${chain.foreign}: the restore function's user's, if its EFS access point is not the base dir's owner`;
    return `a restore in pieces${from} continues (checkpoint saved ${chain.savedAt ?? 'recently'}${whose}): left alone; recover ends it after ${chain.endsAfter} if no piece saves it before`;
  }
  const why =
    chain.why === 'stale'
      ? `that stopped continuing (no piece since ${chain.savedAt ?? 'the abandon time'})`
      : chain.why === 'handing-over'
        ? 'whose first piece was killed before it queued the next, or before it recorded that it had'
        : chain.why === 'damaged'
          ? 'whose checkpoint was damaged'
          : chain.why === 'not-ours'
            ? `whose checkpoint is not one this tool saved (${chain.reason ?? 'another user\'s'})${chain.ownedBy !== undefined ? FOREIGN_OWNER_HINT : ''}`
            : 'that stopped continuing or whose checkpoint was damaged';
  const staged =
    chain.stagingSetAside === undefined
      ? 'what it had staged was removed'
      : `what it had staged was set aside, not removed (no journal shows this tool made it, and neither root nor the base dir's owner owns it): it is now ${chain.stagingSetAside}: inspect it, then remove it by hand`;
  return `ended a restore in pieces${from} ${why}: ${staged}, the slot holds what it held; no completion event comes for it (recover publishes none, and a piece of it still queued finds it ended and skips): restore again`;
}

/** A checkpoint of the restore function's user, read by root on a host where that user does not own the base dir. */
const FOREIGN_OWNER_HINT =
  '; if that user is the restore function\'s (the EFS access point\'s), the chain was live: give the base dir to that user (chown), so that recovery trusts what the functions save there';

/**
 * `--keep`: one of KEEP_CHOICES, given once (commander's choices keep the last in silence:
 * `--keep old … --keep new` deleted the previous tenant).
 */
function keepOption(): Option {
  const option = new Option('--keep <tree>', 'when recovery needs a decision: put this tree in the slot and delete the others').choices(KEEP_CHOICES as Keep[]);
  const choice = option.parseArg!;
  return option.argParser(once((value) => choice(value, undefined)));
}
