// The restore chain as the function that runs it in pieces sees it: the message that queues a
// chain's next piece, whether a chain still owns its tenant (restore-continuation.ts), and what
// the failure event of a chain that recovery ended says.

import type { RestoreWorkMessage } from '../control-plane/work-queue.js';
import type { RestoreCommand } from '../operations.js';
import type { RestoreSuspended } from './restore.js';
import { loadRestoreCheckpoint, type EndedRestoreChain } from './restore-continuation.js';

/** The restore queue's message for the piece after `suspended`. */
export function nextPieceMessage(command: RestoreCommand, suspended: RestoreSuspended): RestoreWorkMessage {
  return {
    version: 1,
    kind: 'restore',
    tenant: suspended.tenant,
    command: {
      from: command.from,
      ...(command.limits !== undefined && { limits: command.limits as Record<string, number> }),
      ...(command.identitySecret !== undefined && { identitySecret: command.identitySecret }),
    },
    continues: { chain: suspended.chain, trigger: 'direct' },
    piece: suspended.pieces + 1,
  };
}

/** Whether the restore chain `chain` still owns the tenant (its checkpoint there, readable). */
export async function restoreChainGoesOn(tenantsDir: string, tenant: string, chain: string): Promise<boolean> {
  const checkpoint = await loadRestoreCheckpoint(tenantsDir, tenant).catch(() => undefined);
  return checkpoint?.chain === chain;
}

/** Why a chain that recovery ended (EndedRestoreChain, not committed) ended, as its failure event says it. */
export function endedRestoreChainMessage(ended: EndedRestoreChain): string {
  const why =
    ended.why === 'damaged'
      ? `its checkpoint is damaged (saved ${ended.savedAt})`
      : ended.why === 'not-ours'
        ? `its checkpoint is not one it saved: ${ended.reason ?? 'another user\'s'}`
        : ended.why === 'handing-over'
          ? 'its first piece stopped (killed) before it queued the next, or before it recorded that it had'
          : `no piece since ${ended.savedAt}`;
  return `the restore stopped continuing${ended.pieces === undefined ? '' : ` after ${ended.pieces} invocation(s)`} (${why}): abandoned, what it had staged removed, the slot holds what it held: restore again`;
}
