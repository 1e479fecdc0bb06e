// Makes a rename, link or unlink in a directory durable: an fsync of the directory itself.

import { promises as fs } from 'node:fs';

import { errnoCode, errnoMessage, FileSystemError } from './errors.js';

/** What a file system that does not fsync directories answers (the rename is still atomic there). */
const REFUSED_ON_DIRECTORIES = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * Fsyncs `directory`. A directory that cannot be opened, or whose fsync fails (EIO: the
 * file system could not write it), is an error; one whose file system refuses fsync on
 * directories is not: its durability across a power cut is the file system's own.
 */
export async function syncDirectory(directory: string): Promise<void> {
  const handle = await fs.open(directory, 'r');
  try {
    await handle.sync();
  } catch (error) {
    if (REFUSED_ON_DIRECTORIES.has(errnoCode(error) ?? '')) return;
    const what = errnoMessage(error);
    if (what === undefined) throw error;
    throw new FileSystemError(`cannot make the changes in ${directory} durable (fsync): ${what}`, { cause: error });
  } finally {
    await handle.close();
  }
}
