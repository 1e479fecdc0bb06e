// The tenant base dir: where it is, which tenants it holds, and how big they are.

import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { TenantNotFoundError } from './errors.js';
import { assertTenantName, isValidTenantName } from './names.js';
import { ioModeFor } from './io-mode.js';
import { walkTenant } from './tenant-walk.js';

/** `--tenants-dir`, else `OPENCLAW_TENANTS_DIR`, else `~/.openclaw/tenants`; always absolute. */
export function resolveTenantsDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = flag ?? env.OPENCLAW_TENANTS_DIR ?? path.join(os.homedir(), '.openclaw', 'tenants');
  return path.resolve(chosen);
}

/** The tenant's directory, refused unless it is a real directory (a symlinked tenant could point anywhere). */
export async function tenantDirFor(tenantsDir: string, tenant: string): Promise<string> {
  assertTenantName(tenant);
  const dir = path.join(tenantsDir, tenant);
  let stat;
  try {
    stat = await fs.lstat(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new TenantNotFoundError(`no tenant "${tenant}" in ${tenantsDir}`);
    }
    throw error;
  }
  if (stat.isSymbolicLink()) throw new TenantNotFoundError(`tenant "${tenant}" in ${tenantsDir} is a symlink; refusing to follow it`);
  if (!stat.isDirectory()) throw new TenantNotFoundError(`tenant "${tenant}" in ${tenantsDir} is not a directory`);
  return dir;
}

/** Names of the tenants in the base dir, sorted; an absent base dir holds none. */
export async function listTenantNames(tenantsDir: string): Promise<string[]> {
  let entries;
  try {
    entries = await fs.readdir(tenantsDir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return entries
    .filter((entry) => entry.isDirectory() && isValidTenantName(entry.name))
    .map((entry) => entry.name)
    .sort();
}

export interface TenantSummary {
  readonly name: string;
  /** Bytes of regular files that a backup would archive (pty/ excluded). */
  readonly bytes: number;
  readonly files: number;
  /** Newest modification time of anything in the tenant. */
  readonly lastModified: Date;
}

export async function summarizeTenants(tenantsDir: string): Promise<TenantSummary[]> {
  const names = await listTenantNames(tenantsDir);
  return Promise.all(names.map((name) => summarizeTenant(tenantsDir, name)));
}

export async function summarizeTenant(tenantsDir: string, name: string): Promise<TenantSummary> {
  const root = path.join(tenantsDir, name);
  const totals = { bytes: 0, files: 0, lastModifiedMs: 0 };
  // The backup's own walk, so the summary counts exactly what a backup would archive.
  for await (const item of walkTenant(root, { skipped: [], warnings: [] }, ioModeFor(root))) {
    totals.lastModifiedMs = Math.max(totals.lastModifiedMs, item.stat.mtimeMs);
    if (item.kind === 'file') {
      totals.files++;
      totals.bytes += item.stat.size;
    }
  }
  return { name, bytes: totals.bytes, files: totals.files, lastModified: new Date(totals.lastModifiedMs) };
}
