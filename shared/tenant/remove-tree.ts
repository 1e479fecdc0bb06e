// Removal of a whole tree that belongs to the tenant slot's machinery: an unverified staging
// directory, an old tenant moved to trash. `rm -rf` semantics, and also through directories
// the tree itself made read-only: a restored tenant keeps its directories' modes (a cache of
// mode 0555, say), and without root nothing can be unlinked inside such a directory
// (EACCES), so neither fs.rm nor `rm -rf` can remove the tree. Run by the user that owns the
// tree (it restored it, or holds the slot), so on a permission error each directory that
// lacks it is given u+rwx, never through a link (lstat first; directories only), and the
// removal is tried once more. As root the first attempt always succeeds.
//
// A tree moved beside the slot (aside, trash: names longer than the tenant's) may hold paths
// longer than PATH_MAX there that fitted in the slot, and fs.rm names every entry by its
// whole path (ENAMETOOLONG). Then each directory whose entries could be out of reach is
// moved up to the top of the tree under a short name first (one rename of a path that still
// fits), and the removal is tried again.

import { promises as fs } from 'node:fs';
import path from 'node:path';

import { PATH_MAX_BYTES } from './names.js';

const PERMISSION_DENIED = new Set(['EACCES', 'EPERM']);
const OWNER_ALL = 0o700;
/** Longest name a directory entry may have (NAME_MAX). */
const NAME_MAX_BYTES = 255;

/** Removes `target` and everything below it; absent is fine. */
export async function removeTree(target: string): Promise<void> {
  let prepared = false;
  for (;;) {
    try {
      await fs.rm(target, { recursive: true, force: true });
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? '';
      if (prepared || (!PERMISSION_DENIED.has(code) && code !== 'ENAMETOOLONG')) throw error;
      prepared = true;
      await prepareForRemoval(target);
    }
  }
}

/**
 * From the top down: gives every directory u+rwx where it lacks it, and moves each directory
 * whose entries' paths could be longer than PATH_MAX to the top of `root` (`root/~N`), so
 * that every path in the tree fits. The failed fs.rm may still be removing entries (it stops
 * at the first error, not its other calls in flight): whatever vanishes meanwhile is skipped.
 */
async function prepareForRemoval(root: string): Promise<void> {
  let moved = 0;
  const pending = [root];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    let entries;
    try {
      const stat = await fs.lstat(dir);
      if (!stat.isDirectory()) continue;
      if ((stat.mode & OWNER_ALL) !== OWNER_ALL) await fs.chmod(dir, (stat.mode & 0o7777) | OWNER_ALL);
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      const child = path.join(dir, entry.name);
      if (Buffer.byteLength(child) + 1 + NAME_MAX_BYTES <= PATH_MAX_BYTES) {
        pending.push(child);
        continue;
      }
      pending.push(await moveToTop(root, child, () => moved++));
    }
  }
}

/** Renames `dir` to an unused short name at the top of `root`; returns where it went. */
async function moveToTop(root: string, dir: string, nextNumber: () => number): Promise<string> {
  for (;;) {
    const to = path.join(root, `~${nextNumber()}`);
    try {
      // rename(2) would replace an empty directory: never one of the tree's own.
      await fs.mkdir(to);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw error;
    }
    await fs.rename(dir, to);
    return to;
  }
}
