// The restore chain as the function that runs it in pieces sees it: the message that queues a
// chain's next piece, and whether a chain still owns its tenant (restore-continuation.ts).

import type { RestoreWorkMessage } from '../control-plane/work-queue.js';
import type { RestoreCommand } from '../operations.js';
import type { RestoreSuspended } from './restore.js';
import { loadRestoreCheckpoint } from './restore-continuation.js';

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
