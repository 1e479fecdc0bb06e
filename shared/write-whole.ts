// A write into a volume about to fill comes back short without an error (the next one says
// ENOSPC): FileHandle.write and writev return how much they wrote and do not go on.

import type { promises as fs } from 'node:fs';

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

function noSpace(): Error {
  return Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' });
}
