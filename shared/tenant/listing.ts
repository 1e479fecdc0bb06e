// The listing operations alone (names, summaries, skipped names) and the names a backup of
// all tenants tries: what the list function runs, apart from shared/operations.ts, whose
// executor reaches every archive reader and writer and the S3 client. The list function's
// bundle imports this and no operation it never runs (test/functions-bundle-inputs.test.ts).

import { byName } from './names.js';
import { listSkippedTenants, listTenantNames, summarizeTenants, type ListedNames, type ListedSummaries, type ListPage, type SkippedTenants } from './tenants.js';

export interface TenantListing {
  /** The tenants' names, sorted, and what the listing's sweep settled first. `signal`: the sweep of the base dir before the listing stops there (the list function's deadline); the names are answered whole. */
  listNames(options?: { readonly signal?: AbortSignal }): Promise<ListedNames>;
  /** Every tenant's summary, sorted by name, and what the listing's sweep settled first; with `page`, those of one page only (the list function's pages). */
  listSummaries(page?: ListPage): Promise<ListedSummaries>;
  /** Names in the base dir that `listNames` leaves out though they look like tenants (a symlinked directory), each with why (through a gateway, those its answer held, and how many more). */
  listSkipped(): Promise<SkippedTenants>;
}

/** The listing of the tenants in `tenantsDir` (the base dir on this host, or the EFS mount). */
export function localTenantListing(tenantsDir: string): TenantListing {
  return {
    listNames: (options) => listTenantNames(tenantsDir, options?.signal),
    listSummaries: (page) => summarizeTenants(tenantsDir, page),
    listSkipped: () => listSkippedTenants(tenantsDir),
  };
}

/**
 * Every name a backup of all tenants tries, sorted: the listed tenants and the skipped ones
 * (a symlinked directory), whose backups then fail by name instead of being passed over.
 * The local `backup --all` and the gateway's fan-out (through the list function's pages) both.
 */
export async function namesToBackUp(listing: Pick<TenantListing, 'listNames' | 'listSkipped'>, signal?: AbortSignal): Promise<ListedNames> {
  const [listed, skipped] = await Promise.all([listing.listNames(signal === undefined ? undefined : { signal }), listing.listSkipped()]);
  // A name no tenant can have is no backup to try (backupAll's `notTenants` reports it).
  const symlinked = skipped.filter((tenant) => tenant.invalidName !== true).map((tenant) => tenant.name);
  // What the listing's sweep settled first goes with the names (the fan-out's list function logs it).
  return { tenants: [...new Set([...listed.tenants, ...symlinked])].sort(byName), recovered: listed.recovered };
}
