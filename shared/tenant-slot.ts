// The tenant slot `<base>/<name>/` and the all-or-nothing way a restore fills it.
//
// A restore extracts into a hidden staging directory beside the slot, verifies it, then
// commits by rename. With --force the old tenant is first renamed aside and deleted only
// after the new one is in. A journal file records each step before it is taken, so that
// after a crash (kill -9) the next operation on the tenant can tell exactly where the
// restore stopped: before the staging directory was renamed into the slot it is rolled
// back (the old tenant returns), after it the commit is finished. The slot is never left
// empty or half-written. Hidden names start with "." and no tenant name can.

import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { FileSystemError, SlotOccupiedError } from './errors.js';

type JournalPhase = 'extracting' | 'committing';

interface Journal {
  readonly tenant: string;
  readonly phase: JournalPhase;
  /** Base names inside the tenants dir. */
  readonly staging: string;
  readonly aside?: string;
}

export function journalPathFor(tenantsDir: string, tenant: string): string {
  return path.join(tenantsDir, `.openclaw-journal-${tenant}.json`);
}

const stagingPrefix = (tenant: string) => `.openclaw-staging-${tenant}-`;
const asidePrefix = (tenant: string) => `.openclaw-aside-${tenant}-`;

/** What recovery found and did; empty when there was nothing to recover. */
export type RecoveryAction = 'none' | 'rolled-back' | 'finished-commit' | 'removed-leftovers';

export type SlotState = 'absent' | 'empty' | 'occupied';

export async function slotState(tenantsDir: string, tenant: string): Promise<SlotState> {
  const slot = path.join(tenantsDir, tenant);
  let stat;
  try {
    stat = await fs.lstat(slot);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw error;
  }
  if (!stat.isDirectory()) return 'occupied';
  const dir = await fs.opendir(slot);
  try {
    return (await dir.read()) === null ? 'empty' : 'occupied';
  } finally {
    await dir.close().catch(() => undefined);
  }
}

/** Refuses unless the slot can take a restored tenant (absent or empty, or anything with force). */
export async function assertSlotAvailable(tenantsDir: string, tenant: string, force: boolean): Promise<SlotState> {
  const state = await slotState(tenantsDir, tenant);
  if (state === 'occupied' && !force) {
    throw new SlotOccupiedError(
      `tenant "${tenant}" already exists in ${tenantsDir}: restore with --force to replace it, or --as NAME to restore under another name`,
    );
  }
  return state;
}

export interface StagingArea {
  /** Absolute path of the directory the archive is extracted into. */
  readonly dir: string;
  /** Renames the staged tenant into its slot: the commit point of a restore. */
  commit(options: { force: boolean }): Promise<void>;
  /** Removes the staging directory and journal; the slot is untouched. */
  discard(): Promise<void>;
}

export async function createStagingArea(tenantsDir: string, tenant: string): Promise<StagingArea> {
  const staging = `${stagingPrefix(tenant)}${randomBytes(6).toString('hex')}`;
  const stagingDir = path.join(tenantsDir, staging);
  const journalPath = journalPathFor(tenantsDir, tenant);
  await writeJournal(journalPath, { tenant, phase: 'extracting', staging });
  await fs.mkdir(stagingDir, { mode: 0o700 });
  const slot = path.join(tenantsDir, tenant);

  return {
    dir: stagingDir,
    async commit({ force }) {
      const state = await assertSlotAvailable(tenantsDir, tenant, force);
      if (state === 'occupied') {
        const aside = `${asidePrefix(tenant)}${randomBytes(6).toString('hex')}`;
        await writeJournal(journalPath, { tenant, phase: 'committing', staging, aside });
        await fs.rename(slot, path.join(tenantsDir, aside));
        await fs.rename(stagingDir, slot);
        await syncDir(tenantsDir);
        await fs.rm(journalPath, { force: true });
        await fs.rm(path.join(tenantsDir, aside), { recursive: true, force: true });
      } else {
        // rename(2) atomically replaces an empty directory, and fails if one appeared meanwhile.
        try {
          await fs.rename(stagingDir, slot);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === 'ENOTEMPTY' || code === 'EEXIST') {
            throw new SlotOccupiedError(`tenant "${tenant}" appeared in ${tenantsDir} during the restore; nothing was changed`);
          }
          throw error;
        }
        await syncDir(tenantsDir);
        await fs.rm(journalPath, { force: true });
      }
    },
    async discard() {
      await fs.rm(stagingDir, { recursive: true, force: true });
      await fs.rm(journalPath, { force: true });
    },
  };
}

/**
 * Brings the slot back to a clean state after an interrupted restore. Call it while
 * holding the tenant's lock, before anything else touches the slot.
 */
export async function recoverSlot(tenantsDir: string, tenant: string): Promise<RecoveryAction> {
  const journalPath = journalPathFor(tenantsDir, tenant);
  const journal = await readJournal(journalPath);
  const slot = path.join(tenantsDir, tenant);
  let action: RecoveryAction = 'none';

  if (journal?.phase === 'committing' && journal.aside !== undefined) {
    const asidePath = path.join(tenantsDir, journal.aside);
    const stagingPath = path.join(tenantsDir, journal.staging);
    const asideExists = await exists(asidePath);
    const stagingExists = await exists(stagingPath);
    if (asideExists && stagingExists) {
      // Died between the two renames (slot empty) or before the first: the new tenant never went in.
      if (await exists(slot)) await fs.rm(stagingPath, { recursive: true, force: true });
      else {
        await fs.rename(asidePath, slot);
        await fs.rm(stagingPath, { recursive: true, force: true });
      }
      action = 'rolled-back';
    } else if (asideExists) {
      // The new tenant is in the slot; only the old one's removal was left.
      await fs.rm(asidePath, { recursive: true, force: true });
      action = 'finished-commit';
    } else if (stagingExists) {
      await fs.rm(stagingPath, { recursive: true, force: true });
      action = 'rolled-back';
    }
    await syncDir(tenantsDir);
  } else if (journal !== undefined) {
    await fs.rm(path.join(tenantsDir, journal.staging), { recursive: true, force: true });
    action = 'rolled-back';
  }
  if (journal !== undefined) await fs.rm(journalPath, { force: true });

  const leftovers = await removeLeftovers(tenantsDir, tenant);
  return action === 'none' && leftovers ? 'removed-leftovers' : action;
}

/** Staging or aside directories that no journal names: a crash before the journal was written, or after it was removed. */
async function removeLeftovers(tenantsDir: string, tenant: string): Promise<boolean> {
  let names: string[];
  try {
    names = await fs.readdir(tenantsDir);
  } catch {
    return false;
  }
  let removed = false;
  for (const name of names) {
    if (name.startsWith(stagingPrefix(tenant))) {
      await fs.rm(path.join(tenantsDir, name), { recursive: true, force: true });
      removed = true;
    } else if (name.startsWith(asidePrefix(tenant))) {
      const slot = path.join(tenantsDir, tenant);
      if (await exists(slot)) await fs.rm(path.join(tenantsDir, name), { recursive: true, force: true });
      else await fs.rename(path.join(tenantsDir, name), slot);
      removed = true;
    }
  }
  return removed;
}

async function writeJournal(journalPath: string, journal: Journal): Promise<void> {
  const temp = `${journalPath}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await fs.open(temp, 'w', 0o600);
  try {
    await handle.writeFile(JSON.stringify(journal));
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(temp, journalPath);
  await syncDir(path.dirname(journalPath));
}

async function readJournal(journalPath: string): Promise<Journal | undefined> {
  let raw: string;
  try {
    raw = await fs.readFile(journalPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const journal = JSON.parse(raw) as Journal;
    if (typeof journal.staging !== 'string' || !journal.staging.startsWith('.openclaw-staging-') || journal.staging.includes('/')) {
      throw new Error('bad staging name');
    }
    if (journal.aside !== undefined && (!journal.aside.startsWith('.openclaw-aside-') || journal.aside.includes('/'))) {
      throw new Error('bad aside name');
    }
    return journal;
  } catch (error) {
    throw new FileSystemError(`the restore journal ${journalPath} is damaged; inspect it and remove it by hand`, { cause: error });
  }
}

async function exists(target: string): Promise<boolean> {
  try {
    await fs.lstat(target);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } catch {
    // Some file systems refuse fsync on directories; the rename is still atomic there.
  } finally {
    await handle.close();
  }
}
