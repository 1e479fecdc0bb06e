// Network file systems (NFS, so EFS under the Lambda functions; SMB; FUSE): each call waits
// about a millisecond, so many promise calls are kept in flight. Small files are collected
// whole and written in one call in the background, a bounded number at once; a large file
// is written through its own handle, in order.

import { promises as fs } from 'node:fs';

import { FILE_FLAGS, umaskStrips, type FileSink, type Owner, type TreeWriter } from './tree-writer.js';

/** Files up to this size are collected whole and written in one call in the background. */
const SMALL_FILE_LIMIT = 1024 * 1024;
/** Small-file writes in flight at once: overlaps the file system's latency (EFS!). */
const WRITE_CONCURRENCY = 16;

/**
 * Network file systems (EFS): a bounded set of small-file writes in flight hides each
 * call's latency; a large file is written through its own handle in order.
 */
export class ParallelTreeWriter implements TreeWriter {
  private readonly pending = new Set<Promise<void>>();
  private failure: unknown;
  /** `owner`: who gets every entry created (tree-writer.ts). */
  constructor(private readonly limit = WRITE_CONCURRENCY, private readonly owner?: Owner) {}

  beginChunk(): void {}

  endChunk(): undefined {
    return undefined;
  }

  async mkdir(absPath: string): Promise<void> {
    await fs.mkdir(absPath, { mode: 0o700 });
  }

  async symlink(target: string, absPath: string, mtime: Date): Promise<void> {
    await fs.symlink(target, absPath);
    if (this.owner !== undefined) await fs.lchown(absPath, this.owner.uid, this.owner.gid);
    await fs.lutimes(absPath, mtime, mtime);
  }

  async link(existingPath: string, absPath: string): Promise<void> {
    await this.drain(); // the file linked to may still be in flight
    await fs.link(existingPath, absPath);
  }

  async openFile(absPath: string, size: number, mode: number, mtime: Date): Promise<FileSink> {
    if (size <= SMALL_FILE_LIMIT) return new CollectingSink((chunks) => this.writeSmall(absPath, chunks, mode, mtime));
    return new HandleSink(await fs.open(absPath, FILE_FLAGS, mode), mode, mtime, this.owner);
  }

  private async writeSmall(absPath: string, chunks: readonly Buffer[], mode: number, mtime: Date): Promise<void> {
    this.rethrow();
    while (this.pending.size >= this.limit) await Promise.race(this.pending);
    this.rethrow();
    const running: Promise<void> = writeSmallAsync(absPath, chunks, mode, mtime, this.owner)
      .catch((error: unknown) => {
        this.failure ??= error;
      })
      .finally(() => this.pending.delete(running));
    this.pending.add(running);
  }

  flush(): Promise<void> {
    return this.drain();
  }

  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all(this.pending);
  }

  async setAttributes(absPath: string, mode: number, mtime: Date): Promise<void> {
    if (this.owner !== undefined) await fs.lchown(absPath, this.owner.uid, this.owner.gid);
    await fs.chmod(absPath, mode);
    await fs.utimes(absPath, mtime, mtime);
  }

  private async drain(): Promise<void> {
    await this.settle();
    this.rethrow();
  }

  private rethrow(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}

/** Holds a small file's content (views of the decoded stream, which is never reused) for one background write. */
class CollectingSink implements FileSink {
  size = 0;
  private readonly chunks: Buffer[] = [];
  constructor(private readonly write_: (chunks: readonly Buffer[]) => Promise<void>) {}

  write(bytes: Buffer): undefined {
    this.chunks.push(bytes);
    this.size += bytes.length;
    return undefined;
  }

  finish(): Promise<void> {
    return this.write_(this.chunks);
  }

  abandon(): void {}
}

class HandleSink implements FileSink {
  size = 0;
  constructor(private readonly handle: fs.FileHandle, private readonly mode: number, private readonly mtime: Date, private readonly owner: Owner | undefined) {}

  async write(bytes: Buffer): Promise<void> {
    await this.handle.write(bytes);
    this.size += bytes.length;
  }

  async finish(): Promise<void> {
    try {
      if (this.owner !== undefined) await this.handle.chown(this.owner.uid, this.owner.gid);
      if (umaskStrips(this.mode)) await this.handle.chmod(this.mode);
      await this.handle.utimes(this.mtime, this.mtime);
    } finally {
      await this.handle.close();
    }
  }

  abandon(): void {
    this.handle.close().catch(() => undefined);
  }
}

async function writeSmallAsync(absPath: string, chunks: readonly Buffer[], mode: number, mtime: Date, owner: Owner | undefined): Promise<void> {
  const handle = await fs.open(absPath, FILE_FLAGS, mode);
  try {
    if (chunks.length > 0) await handle.writev(chunks as Buffer[]);
    if (owner !== undefined) await handle.chown(owner.uid, owner.gid);
    if (umaskStrips(mode)) await handle.chmod(mode);
    await handle.utimes(mtime, mtime);
  } finally {
    await handle.close();
  }
}
