// An upload's request is held to its progress, not to a total time: a 5 GiB part on a slow
// link may take hours while its bytes move, but a store that stops reading a part (wedged,
// or a link gone dead behind a NAT that still holds the connection) must not keep a backup
// for the socket's idle timeout, which Node waits out twice while a write is pending (two
// minutes each), times the SDK's five attempts: twenty minutes, more than the backup
// function's fifteen.
//
// So each attempt of an UploadPart or PutObject sends its body as a stream that counts what
// the socket takes from it (it is read only as fast as the socket accepts bytes): an attempt
// whose socket took nothing for `stallMs` is ended, with an error the SDK retries as a
// timeout, within its attempts. The body is the same buffer every attempt; only how it is
// handed to the HTTP request changes, below the SDK's retries and signing (a middleware of
// the deserialize step, which runs once per attempt), so a retry sends it again whole.
//
// A socket takes bytes in bursts: once its send buffer is full it is writable again only when
// the kernel has sent half of it, and once every byte is taken the answer still waits for what
// the sockets' buffers hold. On a slow link both take as long as the link needs for those
// bytes, so each wait is allowed as long as the last BACKLOG_BYTES (which hold them) took to be
// taken, if that is longer than `stallMs`: a store that stops reading after taking them fast
// is given `stallMs`, a slow link what it has shown it needs.

import { Readable, type Writable } from 'node:stream';
import type { DeserializeHandlerArguments, DeserializeMiddleware, MetadataBearer } from '@smithy/types';
import { UsageError } from '../errors.js';

/** How long an upload's request may go without its socket taking a byte (or, once all are taken, without an answer). */
export const PART_STALL_MS = 60_000;

/** What one push hands the HTTP request: the socket takes a part in pieces of this size. */
const PIECE_BYTES = 64 * 1024;
/**
 * What may still be on its way once the socket has taken every byte: the largest send buffer
 * Linux grows a TCP socket's to by default (net.ipv4.tcp_wmem, 4 MiB) and the largest receive
 * buffer of a Linux peer (net.ipv4.tcp_rmem, 6 MiB).
 */
const BACKLOG_BYTES = 10 * 1024 * 1024;
const PIECES_IN_BACKLOG = BACKLOG_BYTES / PIECE_BYTES;
/**
 * Once the socket has taken every byte, the answer waits for what the buffers still hold,
 * which drains at the link's rate, and buffers that took their bytes in one burst tell nothing
 * of that rate: a slow uplink (64 KiB/s, 4 MiB in the send buffer: 64 s) failed every attempt
 * at 60 s. That wait is allowed twice the stall time, the socket's idle timeout, which bounded
 * it before (Node waits it out once when no write is pending), so no link that worked before
 * fails now; a store that takes a part whole and never answers is still given up on then.
 */
export const ANSWER_WAIT_FACTOR = 2;

/**
 * The environment variable that sets the stall time of this machine's S3 requests (uploads'
 * attempts, downloads' silences): a link slower than the default allows (a part's buffered
 * bytes drained at under ~35 KiB/s fail every attempt at 60 s) gives it e.g. 10m.
 */
export const STALL_TIMEOUT_ENV = 'OPENCLAW_S3_STALL_TIMEOUT';
const STALL_UNITS: Readonly<Record<string, number>> = { '': 1000, s: 1000, m: 60_000, h: 3_600_000 };
const MIN_STALL_MS = 1000;
const MAX_STALL_MS = 24 * 3_600_000;

/** `value` of `--stall-timeout` or STALL_TIMEOUT_ENV (`source`: "90", "90s", "10m", "1h") in milliseconds; throws UsageError in one line. */
export function parseStallTimeout(value: string, source: '--stall-timeout' | typeof STALL_TIMEOUT_ENV = STALL_TIMEOUT_ENV): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$/i.exec(value);
  const ms = match === null ? Number.NaN : Math.round(Number(match[1]) * (STALL_UNITS[match[2]!.toLowerCase()] ?? Number.NaN));
  if (!(ms >= MIN_STALL_MS && ms <= MAX_STALL_MS)) {
    const given = source === STALL_TIMEOUT_ENV ? `${STALL_TIMEOUT_ENV}=${JSON.stringify(value)}` : `${source} ${JSON.stringify(value)}`;
    throw new UsageError(`${given} is no stall time: give 1s to 24h, e.g. 90s, 10m or 1h`);
  }
  return ms;
}

/** An attempt whose socket took no byte for the stall time; `code` makes the SDK retry it as a timeout. */
export class PartStalled extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(
    readonly partNumber: number | undefined,
    /** How long it waited: the stall time, or more for an answer (WatchedBody). */
    readonly waitedMs: number,
    readonly acceptedBytes: number,
    readonly totalBytes: number,
  ) {
    const what = partNumber === undefined ? 'the object' : `part ${partNumber}`;
    const where = acceptedBytes >= totalBytes ? `no answer after all ${totalBytes} bytes` : `it stopped at byte ${acceptedBytes} of ${totalBytes}`;
    super(`the store took nothing of ${what} for ${formatSeconds(waitedMs)} (${where})`);
  }
}

/** The middleware that sends each attempt's body as a watched stream (module comment); `partNumber` undefined for a PutObject. */
export function watchProgress<Input extends object, Output extends MetadataBearer>(partNumber: number | undefined, stallMs: number): DeserializeMiddleware<Input, Output> {
  return (next) => async (args: DeserializeHandlerArguments<Input>) => {
    const request = args.request as { body?: unknown } | undefined;
    const data = request?.body;
    if (request === undefined || !(data instanceof Uint8Array) || data.byteLength === 0) return next(args);
    const body = new WatchedBody(Buffer.from(data.buffer, data.byteOffset, data.byteLength), partNumber, stallMs);
    // A copy: the retry middleware holds the original, whose buffer body keeps it retryable.
    const sent: unknown = Object.assign(Object.create(Object.getPrototypeOf(request) as object) as object, request, { body });
    try {
      return await next({ ...args, request: sent });
    } finally {
      body.settled();
    }
  };
}

/** Where the watched middleware goes on a command's stack. */
export const WATCH_PROGRESS_OPTIONS = { step: 'deserialize', name: 'openclawWatchProgress' } as const;

class WatchedBody extends Readable {
  private offset = 0;
  private pieces = 0;
  /** When each of the last PIECES_IN_BACKLOG pieces was taken, by piece number modulo their count. */
  private readonly takenAt: number[] = [];
  private destination: Writable | undefined;
  private stalled: PartStalled | undefined;
  private timer: NodeJS.Timeout;
  /** How long the running timer waits: the stall time, or longer (module comment). */
  private waitMs: number;

  constructor(
    private readonly data: Buffer,
    private readonly partNumber: number | undefined,
    private readonly stallMs: number,
  ) {
    super({ highWaterMark: PIECE_BYTES });
    this.waitMs = stallMs;
    this.timer = setTimeout(() => this.stall(), stallMs).unref();
  }

  // Called whenever the request wants more: the socket took what was pushed before.
  override _read(): void {
    const now = Date.now();
    const oldest = this.pieces < PIECES_IN_BACKLOG ? this.takenAt[0] : this.takenAt[this.pieces % PIECES_IN_BACKLOG];
    const taken = this.offset >= this.data.length;
    clearTimeout(this.timer);
    this.waitMs = Math.max(taken ? ANSWER_WAIT_FACTOR * this.stallMs : this.stallMs, now - (oldest ?? now));
    this.timer = setTimeout(() => this.stall(), this.waitMs).unref();
    if (taken) {
      this.push(null);
      return;
    }
    this.takenAt[this.pieces % PIECES_IN_BACKLOG] = now;
    this.pieces += 1;
    const end = Math.min(this.offset + PIECE_BYTES, this.data.length);
    const piece = this.data.subarray(this.offset, end);
    this.offset = end;
    this.push(piece);
  }

  override pipe<T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }): T {
    this.destination = destination as unknown as Writable;
    if (this.stalled !== undefined) queueMicrotask(() => this.destination?.destroy(this.stalled));
    return super.pipe(destination, options);
  }

  /** The attempt has its answer (or failed): nothing more to watch. */
  settled(): void {
    clearTimeout(this.timer);
  }

  private stall(): void {
    // The time it waited, which names the stall: longer than the stall time for an answer.
    this.stalled = new PartStalled(this.partNumber, this.waitMs, this.offset - this.readableLength, this.data.length);
    // Destroying the request fails the attempt with this error (and closes its socket).
    this.destination?.destroy(this.stalled);
    this.destroy();
  }
}

function formatSeconds(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 1000)} s` : `${ms} ms`;
}
