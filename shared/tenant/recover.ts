// Settles an interrupted restore of one tenant on request: the core behind
// `openclaw tenants recover NAME [--keep old|new|slot]`. Every command that takes a
// tenant's lock already recovers it first (tenant/slot.ts); this one exists for the case
// recovery refuses, where only the operator can say which tree the slot should hold.

import { promises as fs } from 'node:fs';

import { sweepBaseDir } from './base-dir-sweep.js';
import { assertTenantName } from './names.js';
import { acquireTenantLock } from './lock.js';
import { tenantDirFor, tenantsDirNotFound } from './tenants.js';
import { recoverSlot, recoverSlotKeeping, type Keep, type RecoveryAction } from './slot.js';

export interface RecoverRequest {
  readonly tenantsDir: string;
  readonly tenant: string;
  /** Which tree the slot keeps when recovery needs a decision. */
  readonly keep?: Keep;
}

export interface RecoverResult {
  readonly operation: 'recover';
  readonly tenant: string;
  readonly recovered: RecoveryAction;
}

export async function recoverTenant(request: RecoverRequest): Promise<RecoverResult> {
  const { tenantsDir, tenant, keep } = request;
  assertTenantName(tenant);
  const base = await fs.stat(tenantsDir).catch(() => undefined);
  if (!base?.isDirectory()) throw tenantsDirNotFound(tenantsDir, base === undefined ? 'ENOENT' : 'ENOTDIR');
  await sweepBaseDir(tenantsDir, { except: tenant }).catch(() => undefined);
  const lock = await acquireTenantLock(tenantsDir, tenant, 'recover');
  try {
    const recovered = keep === undefined ? await recoverSlot(tenantsDir, tenant) : await recoverSlotKeeping(tenantsDir, tenant, keep);
    // Nothing to settle and no tenant: the name is wrong, as backup or restore would say.
    if (recovered === 'none') await tenantDirFor(tenantsDir, tenant);
    return { operation: 'recover', tenant, recovered };
  } finally {
    await lock.release();
  }
}
