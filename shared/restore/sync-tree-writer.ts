// Local disks: the tree written with synchronous calls on the calling thread, four per file
// like GNU tar's. A local disk answers a metadata call faster than a hop to libuv's pool
// costs (file-access.ts); right for small archives, and the model the other writers follow.

import { chmodSync, closeSync, fchmodSync, futimesSync, linkSync, lutimesSync, mkdirSync, openSync, symlinkSync, utimesSync, writeSync } from 'node:fs';

import { FILE_FLAGS, umaskStrips, type FileSink, type TreeWriter } from './tree-writer.js';

export class SyncTreeWriter implements TreeWriter {
  beginChunk(): void {}

  endChunk(): undefined {
    return undefined;
  }

  mkdir(absPath: string): undefined {
    mkdirSync(absPath, { mode: 0o700 });
    return undefined;
  }

  symlink(target: string, absPath: string, mtime: Date): undefined {
    symlinkSync(target, absPath);
    lutimesSync(absPath, mtime, mtime);
    return undefined;
  }

  link(existingPath: string, absPath: string): undefined {
    linkSync(existingPath, absPath);
    return undefined;
  }

  openFile(absPath: string, _size: number, mode: number, mtime: Date): FileSink {
    return new SyncFileSink(openSync(absPath, FILE_FLAGS, mode), mode, mtime);
  }

  async flush(): Promise<void> {}
  async settle(): Promise<void> {}

  setAttributes(absPath: string, mode: number, mtime: Date): undefined {
    chmodSync(absPath, mode);
    utimesSync(absPath, mtime, mtime);
    return undefined;
  }
}

class SyncFileSink implements FileSink {
  size = 0;
  private fd: number | undefined;

  constructor(fd: number, private readonly mode: number, private readonly mtime: Date) {
    this.fd = fd;
  }

  write(bytes: Buffer): undefined {
    for (let written = 0; written < bytes.length; ) written += writeSync(this.fd!, bytes, written, bytes.length - written);
    this.size += bytes.length;
    return undefined;
  }

  finish(): undefined {
    const fd = this.fd!;
    this.fd = undefined;
    try {
      if (umaskStrips(this.mode)) fchmodSync(fd, this.mode);
      futimesSync(fd, this.mtime, this.mtime);
    } finally {
      closeSync(fd);
    }
    return undefined;
  }

  abandon(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
