// A write into a volume about to fill comes back short without an error (the next one says
// ENOSPC): FileHandle.write and writev return how much they wrote and do not go on.

import { promises as fs } from 'node:fs';
import path from 'node:path';

import { syncDirectory } from './sync-directory.js';

/** Writes every byte of `pieces` at the handle's position, or throws (ENOSPC, EIO…). */
export async function writeWhole(handle: fs.FileHandle, pieces: readonly Buffer[]): Promise<void> {
  let left = pieces.filter((piece) => piece.length > 0);
  while (left.length > 0) {
    let { bytesWritten } = await handle.writev(left);
    if (bytesWritten === 0) throw noSpace();
    while (left.length > 0 && bytesWritten >= left[0]!.length) bytesWritten -= left.shift()!.length;
    if (bytesWritten > 0) left[0] = left[0]!.subarray(bytesWritten);
  }
}

/** Writes every byte of `bytes` at `position` (the handle's own position unmoved), or throws (ENOSPC, EIO…). */
export async function writeWholeAt(handle: fs.FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, written, bytes.length - written, position + written);
    if (bytesWritten === 0) throw noSpace();
    written += bytesWritten;
  }
}

/**
 * Replaces `directory`/`target` by a file of exactly `pieces`, mode 0600: written whole to
 * `directory`/`temp` (made new, never an existing file), fsynced, renamed over the target, the
 * directory fsynced. A crash leaves the old file or the new one whole. Failing, it removes the
 * temporary file and throws the error as it is (the caller says what could not be saved).
 * `beforeRename` runs between the fsync and the rename (the tenant's lock still held: a holder
 * stalled in the fsync past LOCK_STALE_MS, its lock taken over, must not rename its state in).
 */
export async function replaceFileWhole(directory: string, temp: string, target: string, pieces: readonly Buffer[], beforeRename?: () => Promise<void>): Promise<void> {
  const tempPath = path.join(directory, temp);
  try {
    const handle = await fs.open(tempPath, 'wx', 0o600);
    try {
      await writeWhole(handle, pieces);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await beforeRename?.();
    await fs.rename(tempPath, path.join(directory, target));
    await syncDirectory(directory);
  } catch (error) {
    await fs.rm(tempPath, { force: true }).catch(() => undefined);
    throw error;
  }
}

/** The failure of a write that took none of its bytes: one retried would spin for good. */
export function noSpace(): Error {
  return Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' });
}
