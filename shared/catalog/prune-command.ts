// `tenants prune` as an operation: the store its flags open, the retention run on it. Apart
// from shared/operations.ts so that the prune function, which runs nothing else, imports no
// archive reader or writer and no tenant walk (test/functions-bundle-inputs.test.ts).

import type { OperationHooks, PruneCommand } from '../operations.js';
import { openStore } from '../storage/open-store.js';
import { assertTenantName } from '../tenant/names.js';
import { pruneBackups, type PruneResult } from './prune.js';

export async function runPrune(command: PruneCommand, hooks: OperationHooks<never> = {}): Promise<PruneResult> {
  assertTenantName(command.tenant);
  const store = await openStore(command.in, { ...command.storage });
  return pruneBackups({ store, tenant: command.tenant, policy: command.keep, dryRun: command.dryRun, signal: hooks.signal });
}
