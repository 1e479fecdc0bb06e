// Makes a rename, link or unlink in a directory durable: an fsync of the directory itself.

import { promises as fs } from 'node:fs';

/**
 * Fsyncs `directory`. A directory that cannot be opened is an error; one whose file system
 * refuses fsync on directories (EINVAL on some) is not: the rename is still atomic there, only
 * its durability across a power cut is the file system's own.
 */
export async function syncDirectory(directory: string): Promise<void> {
  const handle = await fs.open(directory, 'r');
  try {
    await handle.sync();
  } catch {
    // See above: refused on this file system.
  } finally {
    await handle.close();
  }
}
