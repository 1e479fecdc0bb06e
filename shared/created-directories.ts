// `mkdir -p` that can be taken back. A write that fails or is interrupted after creating the
// parents of its target (`--to /base/a/b/c/acme.tar.zst`, a restore's new base dir) removes
// them again, leaving the file system as it found it. Only the directories it created
// itself: they are made one level at a time, so one that existed, or that another process
// made meanwhile, is never counted; and only while empty (rmdir, never a recursive removal).

import { promises as fs } from 'node:fs';
import path from 'node:path';

import { errnoCode } from './errors.js';

/**
 * Creates `directory` and its missing parents, as `mkdir -p` (and with its errors: EEXIST
 * when `directory` is a file, ENOTDIR when a parent is); returns the ones it created,
 * topmost first. A failure part way removes those it had created before it is thrown.
 */
export async function createDirectories(directory: string, mode?: number): Promise<string[]> {
  const missing: string[] = [];
  let existing: string | undefined;
  for (let dir = path.resolve(directory); ; ) {
    const found = await fs.stat(dir).catch((error: unknown) => {
      if (['ENOENT', 'ENOTDIR'].includes(errnoCode(error) ?? '')) return undefined;
      throw error;
    });
    if (found !== undefined) {
      if (found.isDirectory()) existing = dir;
      break;
    }
    missing.unshift(dir);
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  // `directory` is there, but is not a directory: mkdir says so, as mkdir -p would.
  if (missing.length === 0 && existing === undefined) await fs.mkdir(directory, { mode });

  const created: string[] = [];
  try {
    for (const dir of missing) {
      try {
        await fs.mkdir(dir, { mode });
        created.push(dir);
      } catch (error) {
        if (errnoCode(error) !== 'EEXIST') throw error;
        // Another process made it meanwhile: it is theirs (and mkdir of the next level says if it is not a directory).
      }
    }
  } catch (error) {
    await removeCreatedDirectories(created);
    throw error;
  }
  return created;
}

/**
 * Removes directories `createDirectories` returned, deepest first, while they are empty:
 * the first one that holds anything (or cannot be removed) stops it, keeping its parents.
 * Best effort: never throws (the failure the caller is reporting is the one that matters).
 */
export async function removeCreatedDirectories(created: readonly string[]): Promise<void> {
  for (const dir of [...created].reverse()) {
    try {
      await fs.rmdir(dir);
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') return;
    }
  }
}
