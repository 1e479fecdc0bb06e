// Local disks: the tree written with synchronous calls on the calling thread, four per file
// like GNU tar's. A local disk answers a metadata call faster than a hop to libuv's pool
// costs (file-access.ts); right for small archives, and the model the other writers follow.

import * as fsSync from 'node:fs';
import { chmodSync, closeSync, fchmodSync, fchownSync, ftruncateSync, futimesSync, lchownSync, linkSync, lutimesSync, mkdirSync, openSync, symlinkSync, utimesSync, writeSync } from 'node:fs';

import { fsPath } from '../raw-name.js';
import { noSpace } from '../write-whole.js';
import { PlannedFile, type HoleWrites } from './holes.js';
import { copyLinkedFile, FILE_FLAGS, LINK_REFUSED, umaskStrips, type CopyBudget, type FileSink, type Owner, type TreeWriter } from './tree-writer.js';

export class SyncTreeWriter implements TreeWriter {
  readonly readsChunksLater = false;
  /** Who gets every entry created (tree-writer.ts); none: no chown call at all. */
  /** `budget`: what copies of refused links may take (tree-writer.ts). */
  constructor(
    private readonly owner?: Owner,
    private readonly budget?: CopyBudget,
  ) {}

  beginChunk(): void {}

  endChunk(): undefined {
    return undefined;
  }

  mkdir(absPath: string): undefined {
    mkdirSync(fsPath(absPath), { mode: 0o700 });
    return undefined;
  }

  symlink(target: string, absPath: string, mtime: Date): undefined {
    const at = fsPath(absPath);
    symlinkSync(fsPath(target), at);
    if (this.owner !== undefined) lchownSync(at, this.owner.uid, this.owner.gid);
    lutimesSync(at, mtime, mtime);
    return undefined;
  }

  link(existingPath: string, absPath: string): undefined {
    try {
      linkSync(fsPath(existingPath), fsPath(absPath));
    } catch (error) {
      if (!LINK_REFUSED.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
      copyLinkedFile(fsSync, fsPath(existingPath), fsPath(absPath), this.budget);
    }
    return undefined;
  }

  openFile(absPath: string, _size: number, mode: number, mtime: Date): FileSink {
    return new SyncFileSink(openSync(fsPath(absPath), FILE_FLAGS, mode), mode, mtime, this.owner);
  }

  async flush(): Promise<void> {}
  async settle(): Promise<void> {}

  setAttributes(absPath: string, mode: number, mtime: Date): undefined {
    // lchown: a directory this restore made, but no call on a restored path ever follows a link.
    const at = fsPath(absPath);
    if (this.owner !== undefined) lchownSync(at, this.owner.uid, this.owner.gid);
    chmodSync(at, mode);
    utimesSync(at, mtime, mtime);
    return undefined;
  }
}

/** Writes at the offsets a HolePlanner gives: long runs of zeros stay holes (holes.ts). */
class SyncFileSink extends PlannedFile implements FileSink {
  private fd: number | undefined;
  protected readonly writes: HoleWrites = {
    data: (from, length, position) => writeFully(this.fd!, this.bytes!, from, length, position),
    zeros: (length, position) => writeFully(this.fd!, Buffer.alloc(length), 0, length, position),
  };

  constructor(fd: number, private readonly mode: number, private readonly mtime: Date, private readonly owner: Owner | undefined) {
    super();
    this.fd = fd;
  }

  finish(): undefined {
    const fd = this.fd!;
    this.fd = undefined;
    try {
      if (this.holes.endsInHole) ftruncateSync(fd, this.holes.size);
      if (this.owner !== undefined) fchownSync(fd, this.owner.uid, this.owner.gid);
      if (umaskStrips(this.mode)) fchmodSync(fd, this.mode);
      futimesSync(fd, this.mtime, this.mtime);
    } finally {
      closeSync(fd);
    }
    return undefined;
  }

  abandon(): undefined {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    return undefined;
  }
}

function writeFully(fd: number, bytes: Buffer, from: number, length: number, position: number): void {
  for (let written = 0, wrote = 0; written < length; written += wrote) {
    wrote = writeSync(fd, bytes, from + written, length - written, position + written);
    // None of its bytes taken (a file system about to fill, a FUSE one): retried, it would spin for good.
    if (wrote === 0) throw noSpace();
  }
}
