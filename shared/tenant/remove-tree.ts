// Removal of a whole tree that belongs to the tenant slot's machinery: an unverified staging
// directory, an old tenant moved to trash. `rm -rf` semantics, and also through directories
// the tree itself made read-only: a restored tenant keeps its directories' modes (a cache of
// mode 0555, say), and without root nothing can be unlinked inside such a directory
// (EACCES), so neither fs.rm nor `rm -rf` can remove the tree. Run by the user that owns the
// tree (it restored it, or holds the slot), so on a permission error each directory that
// lacks it is given u+rwx, never through a link (lstat first; directories only), and the
// removal is tried once more. As root the first attempt always succeeds.

import { promises as fs } from 'node:fs';
import path from 'node:path';

const PERMISSION_DENIED = new Set(['EACCES', 'EPERM']);
const OWNER_ALL = 0o700;

/** Removes `target` and everything below it; absent is fine. */
export async function removeTree(target: string): Promise<void> {
  try {
    await fs.rm(target, { recursive: true, force: true });
  } catch (error) {
    if (!PERMISSION_DENIED.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
    await openDirectories(target);
    await fs.rm(target, { recursive: true, force: true });
  }
}

/**
 * Gives every directory at and below `dir` u+rwx where it lacks it, from the top down. The
 * failed fs.rm may still be removing entries (it stops at the first error, not its other
 * calls in flight): whatever vanishes meanwhile is skipped.
 */
async function openDirectories(dir: string): Promise<void> {
  try {
    const stat = await fs.lstat(dir);
    if (!stat.isDirectory()) return;
    if ((stat.mode & OWNER_ALL) !== OWNER_ALL) await fs.chmod(dir, (stat.mode & 0o7777) | OWNER_ALL);
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) await openDirectories(path.join(dir, entry.name));
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
