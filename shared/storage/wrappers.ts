// Cross-cutting behaviour as wrappers around any ArchiveLocation rather than code inside
// each one: retrying the calls that can be retried, and reporting what happened.
//
// Only `checkWritable` and opening a `read` are retried, and only on transient failures
// (unreachable endpoint, throttling): they are cheap and idempotent. A `write` is never
// retried here, since its body is a one-shot stream. These retries sit above the SDK's own
// per-request retries (which S3Location keeps), for outages longer than those.

import { Transform, type Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { isOpenClawError } from '../errors.js';
import { abortedError, destroyQuietly } from './streams.js';
import type { ArchiveLocation, ReadOptions, WriteOptions, WriteResult } from './types.js';

/** StorageError codes worth another try. */
export const TRANSIENT_CODES: ReadonlySet<string> = new Set(['UNREACHABLE', 'THROTTLED']);

export interface RetryOptions {
  /** Tries in all, the first included. @default 3 */
  readonly attempts?: number;
  /** Delay before the second try, doubled for each further one. @default 1000 */
  readonly delayMs?: number;
  /** @default a StorageError whose code is in TRANSIENT_CODES */
  readonly isRetriable?: (error: unknown) => boolean;
}

export function withRetries(inner: ArchiveLocation, options: RetryOptions = {}): ArchiveLocation {
  const attempts = Math.max(1, options.attempts ?? 3);
  const delayMs = options.delayMs ?? 1000;
  const isRetriable = options.isRetriable ?? ((error: unknown) => isOpenClawError(error) && TRANSIENT_CODES.has(error.code));

  async function retrying<T>(operation: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await operation();
      } catch (error) {
        if (attempt >= attempts || !isRetriable(error) || signal?.aborted) throw error;
        try {
          await delay(delayMs * 2 ** (attempt - 1), undefined, { signal });
        } catch {
          throw abortedError(signal);
        }
      }
    }
  }

  return {
    display: inner.display,
    checkWritable: (writable) => retrying(() => inner.checkWritable(writable)),
    write: (body, writeOptions) => inner.write(body, writeOptions),
    read: (readOptions: ReadOptions = {}) => retrying(() => inner.read(readOptions), readOptions.signal),
  };
}

/** One finished storage operation. */
export interface StorageEvent {
  readonly operation: 'check' | 'write' | 'read';
  readonly location: string;
  readonly outcome: 'ok' | 'error';
  readonly durationMs: number;
  /** Bytes written, or read once the stream has ended. */
  readonly bytes?: number;
  /** The error's code when it failed. */
  readonly code?: string;
}

/**
 * Reports every operation to `log` once it has finished; a read is finished when its
 * stream ends or fails, not when it opens.
 */
export function withLogging(inner: ArchiveLocation, log: (event: StorageEvent) => void): ArchiveLocation {
  const report = (operation: StorageEvent['operation'], started: number, outcome: StorageEvent['outcome'], extra: Partial<StorageEvent>) =>
    log({ operation, location: inner.display, outcome, durationMs: Date.now() - started, ...extra });
  const codeOf = (error: unknown) => (isOpenClawError(error) ? error.code : 'UNEXPECTED');

  return {
    display: inner.display,
    async checkWritable(writable) {
      const started = Date.now();
      try {
        await inner.checkWritable(writable);
        report('check', started, 'ok', {});
      } catch (error) {
        report('check', started, 'error', { code: codeOf(error) });
        throw error;
      }
    },
    async write(body: Readable, writeOptions: WriteOptions): Promise<WriteResult> {
      const started = Date.now();
      try {
        const result = await inner.write(body, writeOptions);
        report('write', started, 'ok', { bytes: result.bytes });
        return result;
      } catch (error) {
        report('write', started, 'error', { code: codeOf(error) });
        throw error;
      }
    },
    async read(readOptions?: ReadOptions): Promise<Readable> {
      const started = Date.now();
      let stream: Readable;
      try {
        stream = await inner.read(readOptions);
      } catch (error) {
        report('read', started, 'error', { code: codeOf(error) });
        throw error;
      }
      let bytes = 0;
      let reported = false;
      const once = (outcome: StorageEvent['outcome'], extra: Partial<StorageEvent>) => {
        if (!reported) report('read', started, outcome, extra);
        reported = true;
      };
      const counted = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          bytes += chunk.length;
          callback(null, chunk);
        },
      });
      stream.once('error', (error) => {
        once('error', { code: codeOf(error), bytes });
        counted.destroy(error);
      });
      counted.once('end', () => once('ok', { bytes }));
      counted.once('close', () => destroyQuietly(stream));
      stream.pipe(counted);
      return counted;
    },
  };
}
