// A write into a volume about to fill comes back short without an error (the next one says
// ENOSPC): FileHandle.writev returns how much it wrote and does not go on.

import type { promises as fs } from 'node:fs';

/** Writes every byte of `pieces` at the handle's position, or throws (ENOSPC, EIO…). */
export async function writeWhole(handle: fs.FileHandle, pieces: readonly Buffer[]): Promise<void> {
  let left = pieces.filter((piece) => piece.length > 0);
  while (left.length > 0) {
    let { bytesWritten } = await handle.writev(left);
    if (bytesWritten === 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' });
    while (left.length > 0 && bytesWritten >= left[0]!.length) bytesWritten -= left.shift()!.length;
    if (bytesWritten > 0) left[0] = left[0]!.subarray(bytesWritten);
  }
}
