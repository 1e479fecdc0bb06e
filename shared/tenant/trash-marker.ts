// The mark by which a command's sweep tells a tree the tool made for removal from one someone
// else put under such a name (the base dir's owner renaming a root-only tenant so that root's
// sweep would delete it): a file `.openclaw-trash` at the tree's top naming the directory by
// its inode number, which nobody can write into a tree they may not write in. Trash carries it
// from just before its move to trash, an encrypted backup's scratch area from its creation.

import { constants as fsConstants, promises as fs } from 'node:fs';

import { writeWhole } from '../write-whole.js';

/** The file a tree the tool may remove carries at its top. */
export const TRASH_MARKER = '.openclaw-trash';

/**
 * What the marker says: the directory's own inode number, which an archive restored into a
 * tenant cannot know in advance. Not its device: an NFS mount's (EFS's) differs between
 * mounts, and a trash marked by one Lambda sandbox is swept by another.
 */
export function markerContent(stat: { ino: bigint }): string {
  return `openclaw trash ${stat.ino}\n`;
}

/**
 * Writes the marker into the directory reached by `link` (`/proc/self/fd/N` of a directory
 * opened no-follow, so that nothing swapped in under its name meanwhile is marked), whose
 * inode is `ino`; one already there (a tenant's own file of that name) is replaced.
 */
export async function writeTrashMarker(link: string, ino: bigint): Promise<void> {
  const marker = `${link}/${TRASH_MARKER}`;
  await fs.rm(marker, { force: true });
  const handle = await fs.open(marker, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o600);
  try {
    await writeWhole(handle, [Buffer.from(markerContent({ ino }))]);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
