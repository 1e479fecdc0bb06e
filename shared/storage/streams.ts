// Small stream and abort helpers shared by the storage locations, so that every location
// turns an aborted signal into the same AbortedError and hands readers a stream whose
// errors are already translated.

import { PassThrough, type Readable } from 'node:stream';
import { AbortedError, OpenClawError } from '../errors.js';

/** The error an aborted operation rejects with: the signal's reason when it is ours. */
export function abortedError(signal?: AbortSignal): OpenClawError {
  const reason: unknown = signal?.reason;
  if (reason instanceof OpenClawError) return reason;
  return new AbortedError('operation aborted', { cause: reason });
}

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw abortedError(signal);
}

/** Node's and the SDK's abort errors (AbortError / ABORT_ERR), not ours. */
export function isAbortError(error: unknown): boolean {
  if (error instanceof AbortedError) return true;
  if (!(error instanceof Error)) return false;
  return error.name === 'AbortError' || (error as NodeJS.ErrnoException).code === 'ABORT_ERR';
}

/** Runs `listener` once when `signal` aborts; returns the function that unregisters it. */
export function onAbort(signal: AbortSignal | undefined, listener: () => void): () => void {
  if (signal === undefined) return () => {};
  if (signal.aborted) {
    queueMicrotask(listener);
    return () => {};
  }
  signal.addEventListener('abort', listener, { once: true });
  return () => signal.removeEventListener('abort', listener);
}

/** Destroys a stream the caller gave us, ignoring streams already gone. */
export function destroyQuietly(stream: Readable | undefined, error?: Error): void {
  if (stream !== undefined && !stream.destroyed) stream.destroy(error);
}

/**
 * Returns a stream carrying `source`'s bytes whose errors pass through `mapError`, and which
 * is destroyed with AbortedError when `signal` aborts. Destroying the returned stream
 * destroys `source`.
 */
export function guardReadable(
  source: Readable,
  mapError: (error: unknown) => Error,
  signal?: AbortSignal,
): Readable {
  const out = new PassThrough();
  // Destroyed by an abort before its reader listens (held while a footer is read), it must not
  // throw the AbortedError uncaught: the reader gets it when it starts.
  holdErrors(out);
  const stopListening = onAbort(signal, () => out.destroy(abortedError(signal)));
  source.once('error', (error) => out.destroy(mapError(error)));
  out.once('close', () => {
    stopListening();
    destroyQuietly(source);
  });
  source.pipe(out);
  return out;
}

/**
 * Keeps an error of `body` before we start consuming it (while a location still checks or
 * opens things) from crashing the process as an unhandled 'error' event; the stream keeps
 * the error (`errored`) and the pipeline that consumes it later rejects with it.
 */
export function holdErrors(body: Readable): void {
  body.on('error', ignore);
}

function ignore(): void {}

/**
 * The first `limit` bytes of `body` (fewer if it ends first); the body is destroyed either way.
 * An abort of `signal` (an answer's deadline) ends the read with an error: a store dripping the
 * bytes one a second held a listing for an hour an object. An answer that says it holds no more
 * (`answerBytes`, its Content-Length: a ranged GET's) is read to its end, so that its connection
 * goes back to the pool: stopped at the limit with its end unread, the answer was destroyed with
 * its socket, and every object a listing inspected cost a new connection (on AWS a TLS handshake:
 * 6,006 connections for 6,000 GETs). A longer answer (a store that ignored the range) is cut at
 * the limit, its connection closed.
 */
export async function readAtMost(body: Readable | undefined, limit: number, options: { answerBytes?: number | undefined; signal?: AbortSignal } = {}): Promise<Buffer> {
  if (body === undefined) return Buffer.alloc(0);
  const { answerBytes, signal } = options;
  const toItsEnd = answerBytes !== undefined && answerBytes <= limit;
  const chunks: Buffer[] = [];
  let length = 0;
  const stop = onAbort(signal, () => destroyQuietly(body, new Error('the answer did not come whole in time')));
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      length += chunk.length;
      if (length > limit || (length === limit && !toItsEnd)) break;
    }
  } finally {
    stop();
    destroyQuietly(body);
  }
  return Buffer.concat(chunks).subarray(0, limit);
}
