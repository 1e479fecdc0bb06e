// The program of a writer thread (worker-tree-writer.ts), and the messages it exchanges
// with the main thread.
//
// It runs as a CommonJS script given to the Worker as source text (`eval`), built from the
// function below: no file path has to be resolved at run time, so it works unchanged from
// the CLI's bundle and from each Lambda function's bundle. A hard link the file system refuses
// is made a copy by tree-writer.ts's `copyLinkedFile`, its source text passed in beside.

import { copyLinkedFile, LINK_REFUSED, type CopyBudget } from './tree-writer.js';

/**
 * One operation for a writer thread: open (the one current file); write a range of the
 * batch's bytes to it at a file offset; write zeros at an offset; extend it to a size (it
 * ends in a hole: holes.ts); close it (fchown to uid:gid unless -1, chmod unless -1, then
 * set its mtime); hard link; close the current file after a failure. (Directories and
 * symlinks are made by the main thread.) A batch sends its operations flattened into one
 * array of strings and numbers (cheap to clone); a path that is not UTF-8 goes as its bytes
 * (raw-name.ts): a Buffer, which arrives as a Uint8Array and is made a Buffer again.
 */
export type WorkerOp =
  | ['open', string | Buffer, number]
  | ['write', number, number, number]
  | ['zeros', number, number]
  | ['extend', number]
  | ['close', number, number, number, number]
  | ['link', string | Buffer, string | Buffer]
  | ['abandon'];

export interface WorkerBatch {
  readonly batch: number;
  readonly ops: (string | number | Buffer)[];
  /** The chunk's bytes; write offsets are relative to it. */
  readonly bytes: SharedArrayBuffer | undefined;
}

export interface WorkerReply {
  readonly batch: number;
  /** The first failure, once there has been one; every later batch is skipped. */
  readonly error?: { message: string; code?: string; errno?: number; syscall?: string; path?: string; dest?: string };
}

/**
 * The worker's whole program, run as a CommonJS script with `eval` (so bundling the
 * gateway's code cannot lose a file). `load` is the script's `require`, passed in as an
 * argument: a bundler rewrites `require(...)` calls it can see into helpers that do not
 * exist in the worker; and it declares no inner named function, since a bundler that keeps
 * names (the functions' esbuild: minify + keepNames) would call a helper of its own from one.
 * Mirrors SyncTreeWriter call for call, for files and hard links.
 */
function workerMain(load: NodeJS.Require, copyLinked: typeof copyLinkedFile, refused: readonly string[]): void {
  const { parentPort, workerData } = load('node:worker_threads') as typeof import('node:worker_threads');
  const budget = (workerData ?? undefined) as CopyBudget | undefined; // what copies of refused links may take
  const fsSync = load('node:fs') as typeof import('node:fs');
  const flags = fsSync.constants.O_WRONLY | fsSync.constants.O_CREAT | fsSync.constants.O_EXCL | fsSync.constants.O_NOFOLLOW;
  let fd = -1;
  let failure: WorkerReply['error'];
  parentPort!.on('message', ({ batch, ops, bytes }: WorkerBatch) => {
    if (failure === undefined) {
      const data = bytes === undefined ? undefined : new Uint8Array(bytes);
      try {
        for (let i = 0; i < ops.length; ) {
          switch (ops[i]) {
            case 'open': {
              const opened = ops[i + 1] as string | Uint8Array;
              fd = fsSync.openSync(typeof opened === 'string' ? opened : Buffer.from(opened.buffer, opened.byteOffset, opened.byteLength), flags, ops[i + 2] as number);
              i += 3;
              break;
            }
            case 'write': {
              const offset = ops[i + 1] as number;
              const length = ops[i + 2] as number;
              const position = ops[i + 3] as number;
              // A write that takes none of its bytes (a file system about to fill, a FUSE one) would be retried for good: it fails as writeWhole's does.
              for (let written = 0, wrote = 0; written < length; written += wrote) {
                wrote = fsSync.writeSync(fd, data!, offset + written, length - written, position + written);
                if (wrote === 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' });
              }
              i += 4;
              break;
            }
            case 'zeros': {
              const length = ops[i + 1] as number;
              const position = ops[i + 2] as number;
              const zeros = new Uint8Array(length);
              for (let written = 0, wrote = 0; written < length; written += wrote) {
                wrote = fsSync.writeSync(fd, zeros, written, length - written, position + written);
                if (wrote === 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' });
              }
              i += 3;
              break;
            }
            case 'extend':
              fsSync.ftruncateSync(fd, ops[i + 1] as number);
              i += 2;
              break;
            case 'close': {
              const closing = fd;
              fd = -1;
              try {
                const uid = ops[i + 3] as number;
                if (uid !== -1) fsSync.fchownSync(closing, uid, ops[i + 4] as number);
                const mode = ops[i + 1] as number;
                if (mode !== -1) fsSync.fchmodSync(closing, mode);
                // A Date: Node takes a negative number of seconds (before 1970) for "now".
                const mtime = new Date((ops[i + 2] as number) * 1000);
                fsSync.futimesSync(closing, mtime, mtime);
              } finally {
                fsSync.closeSync(closing);
              }
              i += 5;
              break;
            }
            case 'link': {
              const existingOp = ops[i + 1] as string | Uint8Array;
              const linkOp = ops[i + 2] as string | Uint8Array;
              const existing = typeof existingOp === 'string' ? existingOp : Buffer.from(existingOp.buffer, existingOp.byteOffset, existingOp.byteLength);
              const linkPath = typeof linkOp === 'string' ? linkOp : Buffer.from(linkOp.buffer, linkOp.byteOffset, linkOp.byteLength);
              try {
                fsSync.linkSync(existing, linkPath);
              } catch (error) {
                if (!refused.includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
                copyLinked(fsSync, existing, linkPath, budget);
              }
              i += 3;
              break;
            }
            case 'abandon':
              if (fd !== -1) fsSync.closeSync(fd);
              fd = -1;
              i += 1;
              break;
            default:
              throw new Error(`unknown operation ${String(ops[i])}`);
          }
        }
      } catch (error) {
        const { message, code, errno, syscall, path, dest } = error as NodeJS.ErrnoException & { dest?: string };
        failure = { message, code, errno, syscall, path, dest };
        if (fd !== -1) fsSync.closeSync(fd);
        fd = -1;
      }
    }
    parentPort!.postMessage({ batch, error: failure } satisfies WorkerReply);
  });
}

/** The writer thread's source text, for `new Worker(WRITER_THREAD_SOURCE, { eval: true })`. */
export const WRITER_THREAD_SOURCE = `(${workerMain.toString()})(require, ${copyLinkedFile.toString()}, ${JSON.stringify([...LINK_REFUSED])})`;
