// The backup function's /tmp and the tenants' plaintext in it. On EFS a backup's SQLite
// snapshots and spooled copies go to os.tmpdir() (shared/backup/temp-area.ts), encrypted
// backups' too: the sandbox's own disk, not two more trips over the network. A backup removes
// its area as it ends; a timeout that Lambda ends by resetting the sandbox (the runtime
// process killed, /tmp kept for the next one) leaves it, and a backup stuck in a read the
// deadline cannot stop keeps it until it gets past that read.
//
// So every invocation of the backup function, whatever it was asked (a backup, its dry run, a
// work queue batch, a message that does not read), first removes the areas of processes that
// are gone, before anything else and within the invocation's own deadline rather than the
// leftovers' share (a few areas take milliseconds; the share can be nothing): no plaintext of
// an earlier invocation outlives the start of the next. And at the time the deadline's
// cleanup must be done by (cleanupDeadline), and at the invocation's end, the areas its
// backups made and have not removed are removed under them (TempArea.scope: only this
// invocation's, should the handlers run side by side in one process, as in tests).

import { TempArea } from '../shared/backup/temp-area.js';
import type { TenantOperations } from '../shared/operations.js';
import type { FunctionConfig } from '../shared/control-plane/function-config.js';
import { cleanupDeadline, deadlineSignal, type LambdaContext } from './lambda-context.js';

export interface ScratchGuardLog {
  addContext(context: LambdaContext): void;
  warn(message: string, keys: Record<string, unknown>): void;
}

/** What of the operations the guard calls: absent (operations that run elsewhere, or a simulation's), the tmpdir is not swept. */
export type ScratchSweep = TenantOperations['sweepScratchAreas'];

/** Runs one invocation of the backup function (`run`) with its /tmp kept free of plaintext (see the top of the file). */
export function withScratchGuard<R>(context: LambdaContext, config: FunctionConfig, logger: ScratchGuardLog, sweep: ScratchSweep, run: () => Promise<R>): Promise<R> {
  // Its own scope of areas: what it removes at its deadline and end is what its backups made.
  return TempArea.scope(() => guarded(context, config, logger, sweep, run));
}

async function guarded<R>(context: LambdaContext, config: FunctionConfig, logger: ScratchGuardLog, sweep: ScratchSweep, run: () => Promise<R>): Promise<R> {
  // Its warnings are this invocation's: in a warm sandbox the logger still held the previous one's request id.
  logger.addContext(context);
  if (sweep !== undefined) {
    const deadline = deadlineSignal(context, config.abortMarginMs);
    try {
      await sweep({ signal: deadline.signal });
    } catch (error) {
      logger.warn('the scratch areas of stopped backups in the function\'s tmpdir could not all be removed', { error: (error as Error).message });
    } finally {
      deadline.dispose();
    }
  }
  const removeLeft = async (when: string) => {
    const removed = await TempArea.removeLiveUnderTmpdir(when);
    if (removed > 0) logger.warn('scratch areas of backups still running removed from the function\'s tmpdir', { when, areas: removed });
  };
  const timer = setTimeout(() => void removeLeft("at the invocation's deadline"), Math.max(0, cleanupDeadline(context, config.abortMarginMs) - Date.now()));
  timer.unref();
  try {
    return await run();
  } finally {
    clearTimeout(timer);
    await removeLeft("at the invocation's end");
  }
}
