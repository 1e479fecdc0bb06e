// `tenants recover` on a disk with no inode left removes, without the tenant's lock, what a
// gone restore left (slot.ts removeWhatGoneRestoresLeft). Through a FUSE view, a lookup of the
// journal may be answered from the view's cache of when there was none (negative entries)
// while a restore's committing journal is there: read so here, by a journal read that answers
// ENOENT (what bindfs -o negative_timeout answers; test/crash/disk-full.crash.ts mounts one for the lock).

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import * as fileAccess from '../shared/file-access.js';
import { journalPathFor, recoverSlot, removeWhatGoneRestoresLeft } from '../shared/tenant/slot.js';
import { tempDir } from './helpers/tree.js';

vi.mock('../shared/file-access.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../shared/file-access.js')>();
  return { ...actual, readOwnFileAndOwner: vi.fn(actual.readOwnFileAndOwner) };
});

const STAGING = '.openclaw-staging-acme-0123456789ab';
let dir: ReturnType<typeof tempDir>;
let base: string;
beforeEach(() => {
  dir = tempDir();
  base = path.join(dir.path, 'tenants');
  mkdirSync(path.join(base, STAGING, 'sessions'), { recursive: true });
  writeFileSync(path.join(base, STAGING, 'config.json'), 'new tenant');
  writeFileSync(path.join(base, STAGING, 'sessions', 'b.jsonl'), 'restored session');
  // Verified and committing, killed before its staging directory was moved in; no lock file at all.
  writeFileSync(journalPathFor(base, 'acme'), JSON.stringify({ tenant: 'acme', phase: 'committing', staging: STAGING }));
});
afterEach(() => {
  vi.mocked(fileAccess.readOwnFileAndOwner).mockRestore();
  dir.cleanup();
});

function journalLookedUpFromANegativeCache(): void {
  const read = vi.mocked(fileAccess.readOwnFileAndOwner);
  const actual = read.getMockImplementation()!;
  read.mockImplementation(async (file, ...rest) => {
    if (file === journalPathFor(base, 'acme')) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${file}'`), { code: 'ENOENT' });
    return actual(file, ...rest);
  });
}

describe('removing what gone restores left, without the lock', () => {
  it('keeps a verified staged tenant whose committing journal a lookup misses but the listing shows', async () => {
    journalLookedUpFromANegativeCache();
    expect(await removeWhatGoneRestoresLeft(base, 'acme', async () => true)).toBe(false);
    expect(readFileSync(path.join(base, STAGING, 'config.json'), 'utf8')).toBe('new tenant');
    vi.mocked(fileAccess.readOwnFileAndOwner).mockRestore();
    // The recovery under the lock that follows finishes the commit.
    expect(await recoverSlot(base, 'acme')).toBe('finished-commit');
    expect(readFileSync(path.join(base, 'acme', 'config.json'), 'utf8')).toBe('new tenant');
  });

  it('still removes an unverified staging directory that no journal names, in a lookup or the listing', async () => {
    rmSync(journalPathFor(base, 'acme'));
    expect(await removeWhatGoneRestoresLeft(base, 'acme', async () => true)).toBe(true);
    expect(existsSync(path.join(base, STAGING))).toBe(false);
  });
});
