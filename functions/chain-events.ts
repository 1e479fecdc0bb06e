// The ends of backups in pieces that broke, which no piece of theirs will announce (ended by
// the backup function's sweep, abandonBrokenChains): each gets its completion event, log line
// and metrics here. Restores in pieces that recovery ended: restore-chain-events.ts.

import { abandonedBackupMessage, type AbandonedBackup } from '../shared/backup/backup.js';
import { DEFAULT_ABANDON_AFTER_MS } from '../shared/control-plane/function-config.js';
import type { SweptBaseDir, TenantOperations } from '../shared/operations.js';
import type { HandlerDeps } from './handler-deps.js';
import { timeLeft } from './invocation.js';
import type { LambdaContext } from './lambda-context.js';
import { operationKeys } from './events.js';
import { noMetrics } from './metrics.js';

/**
 * Ends the chains of backups in pieces that broke (their state not saved for
 * `abandonAfterMs`), each with a failure event. Never throws: a backup is not held up by
 * another's leftovers.
 */
export async function abandonBrokenChains(deps: HandlerDeps<unknown>, operations: Pick<TenantOperations, 'abandonStaleBackups'>, context: LambdaContext, swept: SweptBaseDir | undefined, signal: AbortSignal): Promise<void> {
  if (deps.continueBackup === undefined || operations.abandonStaleBackups === undefined) return;
  try {
    const olderThanMs = deps.config.abandonAfterMs ?? DEFAULT_ABANDON_AFTER_MS;
    // Each chain's event as soon as it is ended: the events too come within the share.
    await operations.abandonStaleBackups(olderThanMs, swept, {
      signal,
      onAbandoned: (chain) => chainEnded(deps, context, chain),
      // Its one outcome waits for the store's answer (a later invocation, or the last piece's message again).
      onKept: (chain, error) =>
        deps.logger.warn('kept a stale backup chain whose last piece was committing its archive: the store did not say whether it holds it whole', { tenant: chain.tenant, location: chain.location, chain: chain.chain, errorMessage: (error as Error | undefined)?.message }),
    });
  } catch (error) {
    deps.logger.warn('could not look for abandoned backups', { errorMessage: (error as Error).message });
  }
}

/** The event, log line and metrics of a broken chain that was ended (abandonBrokenChains). */
async function chainEnded(deps: HandlerDeps<unknown>, context: LambdaContext, chain: AbandonedBackup): Promise<void> {
  const durationMs = Math.max(0, Date.now() - Date.parse(chain.startedAt)) || 0;
  if (chain.completed !== undefined) {
    // Its last piece completed the archive and was killed before it ended the chain: a success, said once, now.
    const { committed, stored } = chain.completed;
    deps.logger.warn('ended a backup whose last piece stored its archive but never ended it', { tenant: chain.tenant, location: chain.location, chain: chain.chain, pieces: chain.pieces, savedAt: chain.savedAt, ...(stored.unrecorded !== undefined && { unrecorded: stored.unrecorded }) });
    await deps.publish(
      {
        operation: 'backup',
        ok: true,
        detail: { tenant: chain.tenant, location: chain.location, trigger: 'queue', ...operationKeys(context.awsRequestId, chain.chain), durationMs, bytes: committed.totals.bytes, archiveBytes: stored.bytes, manifestSha256: committed.manifestSha256 },
      },
      timeLeft(context),
    );
    (deps.metrics ?? noMetrics).record({ operation: 'backup', outcome: 'succeeded', trigger: 'queue', tenant: chain.tenant, durationMs, bytes: committed.totals.bytes, archiveBytes: stored.bytes, files: committed.totals.files });
    return;
  }
  const message = abandonedBackupMessage(chain);
  deps.logger.error('abandoned a backup that stopped continuing', { tenant: chain.tenant, location: chain.location, chain: chain.chain, pieces: chain.pieces, startedAt: chain.startedAt, savedAt: chain.savedAt });
  await deps.publish(
    {
      operation: 'backup',
      ok: false,
      detail: { tenant: chain.tenant, location: chain.location, trigger: 'queue', ...operationKeys(context.awsRequestId, chain.chain), durationMs, error: { code: 'CONTINUATION_ENDED', message } },
    },
    timeLeft(context),
  );
  (deps.metrics ?? noMetrics).record({ operation: 'backup', outcome: 'failed', trigger: 'queue', tenant: chain.tenant, durationMs, errorCode: 'CONTINUATION_ENDED' });
}
