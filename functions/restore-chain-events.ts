// The ends of restores in pieces that recovery ended (the backup and restore functions'
// sweeps, a restore's own recovery): no piece of theirs will announce them. Apart from
// chain-events.ts (backups in pieces that broke) so that the restore function's bundle carries
// none of the backup core.

import type { EndedRestoreChain } from '../shared/restore/restore-continuation.js';
import { endedRestoreChainMessage } from '../shared/restore/restore-chain.js';
import type { HandlerDeps } from './handler-deps.js';
import { timeLeft } from './invocation.js';
import type { LambdaContext } from './lambda-context.js';
import { operationKeys } from './events.js';
import { noMetrics } from './metrics.js';

/**
 * The failure event, log line and metrics of a restore in pieces that recovery ended (no
 * piece saved it for the abandon time, its first piece was killed before it queued the
 * next, or its checkpoint is damaged): no piece of it will say so, its messages find no
 * checkpoint. Never throws: the operation whose recovery ended it goes on.
 */
export function restoreChainEnded(deps: HandlerDeps<unknown>, context: LambdaContext): (ended: EndedRestoreChain) => Promise<void> {
  return async (ended) => {
    const durationMs = ended.startedAt === undefined ? 0 : Math.max(0, Date.now() - Date.parse(ended.startedAt)) || 0;
    if (ended.committed !== undefined) {
      // Its last piece was killed once its commit's journal was written, before it said so: a success, said once, now.
      const { archiveTenant, bytes, archiveBytes, files, verified, replaced } = ended.committed;
      try {
        deps.logger.warn('finished a restore whose last piece committed but never said so', { tenant: ended.tenant, location: ended.location, chain: ended.chain, pieces: ended.pieces, savedAt: ended.savedAt });
        await deps.publish(
          {
            operation: 'restore',
            ok: true,
            detail: { tenant: ended.tenant, archiveTenant, location: ended.location ?? '', trigger: 'direct', ...operationKeys(context.awsRequestId, ended.chain), durationMs, bytes, archiveBytes, verified, replaced },
          },
          timeLeft(context),
        );
        (deps.metrics ?? noMetrics).record({ operation: 'restore', outcome: 'succeeded', trigger: 'direct', tenant: ended.tenant, durationMs, bytes, archiveBytes, files });
      } catch (error) {
        deps.logger.warn('could not publish the end of a restore whose last piece committed', { tenant: ended.tenant, errorMessage: (error as Error).message });
      }
      return;
    }
    const message = endedRestoreChainMessage(ended);
    try {
      deps.logger.error('ended a restore that stopped continuing', { tenant: ended.tenant, location: ended.location, chain: ended.chain, pieces: ended.pieces, why: ended.why, savedAt: ended.savedAt });
      await deps.publish(
        {
          operation: 'restore',
          ok: false,
          detail: {
            tenant: ended.tenant,
            location: ended.location ?? '',
            trigger: 'direct',
            ...operationKeys(context.awsRequestId, ended.chain),
            durationMs,
            error: { code: 'CONTINUATION_ENDED', message },
          },
        },
        timeLeft(context),
      );
      (deps.metrics ?? noMetrics).record({ operation: 'restore', outcome: 'failed', trigger: 'direct', tenant: ended.tenant, durationMs, errorCode: 'CONTINUATION_ENDED' });
    } catch (error) {
      deps.logger.warn('could not publish the end of an abandoned restore', { tenant: ended.tenant, errorMessage: (error as Error).message });
    }
  };
}
