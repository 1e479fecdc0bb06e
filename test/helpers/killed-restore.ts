// What a restore killed part way leaves in a base dir, laid out by hand: for tests of what a
// later listing, sweep or command makes of it.

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { journalPathFor } from '../../shared/tenant/slot.js';

/**
 * What a `restore --force` of `tenant` killed between its renames leaves in `base`: the slot
 * absent, the old tree aside, the new one staged (each holding a config.json saying which), its
 * journal at 'committing'. No lock: the caller leaves one as its case needs.
 */
export function restoreKilledMidCommit(base: string, tenant: string): { staging: string; aside: string } {
  const staging = `.openclaw-staging-${tenant}-0123456789ab`;
  const aside = `.openclaw-aside-${tenant}-ba9876543210`;
  mkdirSync(path.join(base, staging));
  writeFileSync(path.join(base, staging, 'config.json'), 'new tenant');
  mkdirSync(path.join(base, aside));
  writeFileSync(path.join(base, aside, 'config.json'), 'old tenant');
  writeFileSync(journalPathFor(base, tenant), JSON.stringify({ tenant, phase: 'committing', staging, aside }));
  return { staging, aside };
}
