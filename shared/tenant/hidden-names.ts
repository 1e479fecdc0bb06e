// Every name the tool itself creates in the tenant base dir, built and parsed in one place.
// They all start with ".openclaw-", which no tenant name can, and each parses back to
// exactly one tenant (a prefix test would take "acme-2"'s files for "acme"'s). Locks and
// their temporary files carry their owner (process-owner.ts); everything else is created
// only while the tenant's lock is held, so the lock says whether its owner is alive.

import { randomBytes } from 'node:crypto';

import { OWNER_TAG_PATTERN, ownerTag, parseOwnerTag, type ProcessOwner } from './process-owner.js';

export const HIDDEN_PREFIX = '.openclaw-';

export type HiddenKind =
  /** `.openclaw-lock-<t>`: the tenant's lock. */
  | 'lock'
  /** The lock's content before it is linked into place. */
  | 'lock-temp'
  /**
   * `.openclaw-lock-<t>.aside`: a stale lock moved aside while it is taken over (one name per
   * tenant, so that a command holding the lock finds one a killed taker left by one lstat).
   */
  | 'lock-aside'
  /** A stale lock an earlier version's taker moved aside (owner in its name). */
  | 'lock-broken'
  /**
   * A stale lock an older version's taker moved aside, killed before it removed it: named
   * without its owner (`.stale-<rand>`, or `<rand>.broken`), so no one can tell whether that
   * taker is done; removed once an hour old (lock.ts removeOldMovedAsideLock).
   */
  | 'lock-broken-old'
  /** A taker's claim while it takes over a stale lock (created by lock-takeover.ts). */
  | 'lock-taking'
  /** The lock's second name when it is empty (no room on the disk for its record), saying who holds it (lock.ts). */
  | 'lock-held'
  /** `.openclaw-journal-<t>.json`: what a restore of the tenant is doing. */
  | 'journal'
  | 'journal-temp'
  /** A restore's extraction directory. */
  | 'staging'
  /** The previous tenant while `restore --force` moves the new one in. */
  | 'aside'
  /** Trees on their way out: nothing in them is kept. */
  | 'trash'
  /** An encrypted backup's snapshots and copies of live files (backup/temp-area.ts). */
  | 'scratch'
  /** `.openclaw-continuation-<t>`: a backup continuing across invocations (backup/continuation.ts). */
  | 'continuation'
  | 'continuation-temp'
  /** `.openclaw-restore-continuation-<t>`: a restore continuing across invocations (restore/restore-continuation.ts). */
  | 'restore-continuation'
  | 'restore-continuation-temp';

export interface HiddenName {
  readonly name: string;
  readonly tenant: string;
  readonly kind: HiddenKind;
  /** The process that created it (lock temporaries and claims only). */
  readonly owner?: ProcessOwner;
}

const TENANT = '([a-z0-9][a-z0-9_-]{0,31})';
const RANDOM = '[0-9a-f]{12}';
const PATTERNS: readonly [HiddenKind, RegExp][] = [
  ['lock', new RegExp(`^\\.openclaw-lock-${TENANT}$`)],
  ['lock-temp', new RegExp(`^\\.openclaw-lock-${TENANT}\\.(${OWNER_TAG_PATTERN})\\.${RANDOM}\\.tmp$`)],
  ['lock-aside', new RegExp(`^\\.openclaw-lock-${TENANT}\\.aside$`)],
  ['lock-broken', new RegExp(`^\\.openclaw-lock-${TENANT}\\.(${OWNER_TAG_PATTERN})\\.${RANDOM}\\.broken$`)],
  ['lock-broken-old', new RegExp(`^\\.openclaw-lock-${TENANT}\\.(?:stale-${RANDOM}|${RANDOM}\\.broken)$`)],
  ['lock-taking', new RegExp(`^\\.openclaw-lock-${TENANT}\\.(${OWNER_TAG_PATTERN})\\.${RANDOM}\\.taking$`)],
  ['lock-held', new RegExp(`^\\.openclaw-lock-${TENANT}\\.(${OWNER_TAG_PATTERN})\\.${RANDOM}\\.(?:backup|restore|recover)\\.held$`)],
  ['journal', new RegExp(`^\\.openclaw-journal-${TENANT}\\.json$`)],
  ['journal-temp', new RegExp(`^\\.openclaw-journal-${TENANT}\\.json\\.[0-9a-f]+\\.tmp$`)],
  ['staging', new RegExp(`^\\.openclaw-staging-${TENANT}-${RANDOM}$`)],
  ['aside', new RegExp(`^\\.openclaw-aside-${TENANT}-${RANDOM}$`)],
  ['trash', new RegExp(`^\\.openclaw-trash-${TENANT}-${RANDOM}$`)],
  ['scratch', new RegExp(`^\\.openclaw-scratch-${TENANT}-${RANDOM}$`)],
  ['continuation', new RegExp(`^\\.openclaw-continuation-${TENANT}$`)],
  ['continuation-temp', new RegExp(`^\\.openclaw-continuation-${TENANT}\\.${RANDOM}\\.tmp$`)],
  ['restore-continuation', new RegExp(`^\\.openclaw-restore-continuation-${TENANT}$`)],
  ['restore-continuation-temp', new RegExp(`^\\.openclaw-restore-continuation-${TENANT}\\.${RANDOM}\\.tmp$`)],
];

/** What a name in the base dir is, if the tool made it. */
export function parseHiddenName(name: string): HiddenName | undefined {
  if (!name.startsWith(HIDDEN_PREFIX)) return undefined;
  for (const [kind, pattern] of PATTERNS) {
    const match = pattern.exec(name);
    if (match === null) continue;
    const owner = match[2] === undefined ? undefined : parseOwnerTag(match[2]);
    return { name, tenant: match[1]!, kind, ...(owner !== undefined && { owner }) };
  }
  return undefined;
}

const random = () => randomBytes(6).toString('hex');

export const hiddenNames = {
  lock: (tenant: string) => `${HIDDEN_PREFIX}lock-${tenant}`,
  lockTemp: (tenant: string) => `${HIDDEN_PREFIX}lock-${tenant}.${ownerTag()}.${random()}.tmp`,
  lockAside: (tenant: string) => `${HIDDEN_PREFIX}lock-${tenant}.aside`,
  lockHeld: (tenant: string, operation: 'backup' | 'restore' | 'recover') => `${HIDDEN_PREFIX}lock-${tenant}.${ownerTag()}.${random()}.${operation}.held`,
  journal: (tenant: string) => `${HIDDEN_PREFIX}journal-${tenant}.json`,
  journalTemp: (tenant: string) => `${HIDDEN_PREFIX}journal-${tenant}.json.${random()}.tmp`,
  staging: (tenant: string) => `${HIDDEN_PREFIX}staging-${tenant}-${random()}`,
  aside: (tenant: string) => `${HIDDEN_PREFIX}aside-${tenant}-${random()}`,
  trash: (tenant: string) => `${HIDDEN_PREFIX}trash-${tenant}-${random()}`,
  scratch: (tenant: string) => `${HIDDEN_PREFIX}scratch-${tenant}-${random()}`,
  continuation: (tenant: string) => `${HIDDEN_PREFIX}continuation-${tenant}`,
  continuationTemp: (tenant: string) => `${HIDDEN_PREFIX}continuation-${tenant}.${random()}.tmp`,
  restoreContinuation: (tenant: string) => `${HIDDEN_PREFIX}restore-continuation-${tenant}`,
  restoreContinuationTemp: (tenant: string) => `${HIDDEN_PREFIX}restore-continuation-${tenant}.${random()}.tmp`,
};
