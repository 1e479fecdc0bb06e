// "no tenant "acne"" with the names of the base dir a typo is nearest to, as an unknown
// command or flag gets: the core says what is missing, the CLI looks around for what was meant.

import { readdir } from 'node:fs/promises';

import { TenantNotFoundError } from '../shared/errors.js';
import { isValidTenantName } from '../shared/tenant/names.js';
import { editDistance } from './usage-errors.js';

/**
 * `message` with `did you mean "acme"?` when `error` names a tenant missing from a local base
 * dir holding a near name (commander's rule for commands and flags: at most 3 edits, and more
 * than 40% of the name kept). Unchanged when there is none, or the base dir cannot be read.
 */
export async function withTenantSuggestion(message: string, error: unknown): Promise<string> {
  if (!(error instanceof TenantNotFoundError) || error.absent === undefined) return message;
  const { tenant, tenantsDir } = error.absent;
  let names: string[];
  try {
    names = (await readdir(tenantsDir, { withFileTypes: true })).filter((entry) => entry.isDirectory() && isValidTenantName(entry.name)).map((entry) => entry.name);
  } catch {
    return message;
  }
  const nearest = nearestNames(tenant, names);
  if (nearest.length === 0) return message;
  const shown = nearest.map((name) => `"${name}"`);
  return `${message}: did you mean ${shown.length === 1 ? shown[0] : `one of ${shown.join(', ')}`}?`;
}

/** The names nearest to `wanted` by edit distance, sorted; none when no name is near enough. */
function nearestNames(wanted: string, names: readonly string[]): string[] {
  let best: string[] = [];
  let bestDistance = 3;
  for (const name of names) {
    if (name === wanted) continue;
    const distance = editDistance(wanted, name);
    const length = Math.max(wanted.length, name.length);
    if ((length - distance) / length <= 0.4 || distance > bestDistance) continue;
    if (distance < bestDistance) best = [];
    bestDistance = distance;
    best.push(name);
  }
  return best.sort();
}
