// Which TreeWriter writes a restore, and when that changes: the one place where the
// restore's speed is weighed (extract.ts only decides what is written, and in which order).
//   - A network file system (EFS): many calls in flight throughout (ParallelTreeWriter).
//   - A local disk: synchronous calls on this thread (SyncTreeWriter) until the archive has
//     declared WORKER_THRESHOLD_BYTES of file content or WORKER_THRESHOLD_ENTRIES entries,
//     then writer threads (WorkerTreeWriter): starting threads costs more than a small
//     archive takes. The switch happens between two decoded chunks, or before opening the
//     file whose size takes the archive past WORKER_THRESHOLD_BYTES: that file is written
//     on the threads from its first byte (a tenant of one 500 MiB file was otherwise written
//     whole on this thread, beside the hashing); a file already open stays with the writer
//     that opened it.
//   - Nothing at all (`tenants verify`, a restore's dry run): DiscardingTreeWriter.

import type { FileAccess } from '../file-access.js';
import { DiscardingTreeWriter } from './discarding-tree-writer.js';
import { ParallelTreeWriter } from './parallel-tree-writer.js';
import { SyncTreeWriter } from './sync-tree-writer.js';
import type { CopyBudget, FileSink, Owner, TreeWriter } from './tree-writer.js';
import { WorkerTreeWriter } from './worker-tree-writer.js';

const WORKER_THRESHOLD_BYTES = 16 * 1024 * 1024;
const WORKER_THRESHOLD_ENTRIES = 1024;

export interface TreeWriterChoice {
  /** How the target's file system is called (file-access.ts). */
  readonly access: FileAccess;
  /**
   * On a local disk, bytes of content (or 1,024 entries, unless this is Infinity) after which
   * files are written on writer threads; 0 or less: from the start. @default 16 MiB
   */
  readonly workerThresholdBytes?: number;
  /** Write nothing: the extraction's checks run, the tree is not created. */
  readonly discard?: boolean;
  /** Who gets every entry created (tree-writer.ts); none: the process's own identity, no chown call. */
  readonly owner?: Owner;
  /** What copies of hard links the file system refuses may take (tree-writer.ts). */
  readonly budget?: CopyBudget;
  /** The restore's stop (its deadline, Ctrl-C): ends a network writer's waits for its queue. */
  readonly signal?: AbortSignal;
}

export function chooseTreeWriter(choice: TreeWriterChoice): TreeWriter {
  const { owner, budget } = choice;
  if (choice.discard === true) return new DiscardingTreeWriter();
  if (choice.access.kind === 'parallel') return new ParallelTreeWriter(undefined, owner, undefined, budget, choice.signal);
  const threshold = choice.workerThresholdBytes ?? WORKER_THRESHOLD_BYTES;
  return threshold <= 0 ? new WorkerTreeWriter(undefined, owner, budget) : new SyncThenThreads(threshold, owner, budget);
}

/** SyncTreeWriter until the archive is worth writer threads, then a WorkerTreeWriter. */
class SyncThenThreads implements TreeWriter {
  /** Neither writer does. */
  readonly readsChunksLater = false;
  private current: TreeWriter;
  private switched = false;
  /** The chunk being read: a writer switched to in its middle is told of it. */
  private chunk: Buffer | undefined;
  /** What the archive has declared so far: file content, and entries written. */
  private bytes = 0;
  private entries = 0;

  constructor(
    private readonly thresholdBytes: number,
    private readonly owner: Owner | undefined,
    private readonly budget: CopyBudget | undefined,
  ) {
    this.current = new SyncTreeWriter(owner, budget);
  }

  beginChunk(chunk: Buffer): void {
    this.chunk = chunk;
    if (!this.switched && (this.bytes >= this.thresholdBytes || (this.thresholdBytes !== Infinity && this.entries >= WORKER_THRESHOLD_ENTRIES))) {
      this.switchToThreads();
    }
    this.current.beginChunk(chunk);
  }

  /** Between two calls: every call of the synchronous writer is done, none is left to wait for. */
  private switchToThreads(): void {
    this.current = new WorkerTreeWriter(undefined, this.owner, this.budget);
    this.switched = true;
  }

  endChunk(): Promise<void> | undefined {
    return this.current.endChunk();
  }

  mkdir(absPath: string): Promise<void> | undefined {
    this.entries++;
    return this.current.mkdir(absPath);
  }

  openFile(absPath: string, size: number, mode: number, mtime: Date): FileSink | Promise<FileSink> {
    this.entries++;
    this.bytes += size;
    if (!this.switched && this.bytes > this.thresholdBytes) {
      this.switchToThreads();
      this.current.beginChunk(this.chunk!);
    }
    return this.current.openFile(absPath, size, mode, mtime);
  }

  symlink(target: string, absPath: string, mtime: Date): Promise<void> | undefined {
    this.entries++;
    return this.current.symlink(target, absPath, mtime);
  }

  link(existingPath: string, absPath: string): Promise<void> | undefined {
    this.entries++;
    return this.current.link(existingPath, absPath);
  }

  flush(): Promise<void> {
    return this.current.flush();
  }

  settle(): Promise<void> {
    return this.current.settle();
  }

  setAttributes(absPath: string, mode: number, mtime: Date): Promise<void> | undefined {
    return this.current.setAttributes(absPath, mode, mtime);
  }
}
