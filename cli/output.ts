// How the CLI talks to people and scripts: a live progress line on a TTY stderr (nothing
// otherwise), a short human report on stdout, or one JSON object with `--json`.

import type { Writable } from 'node:stream';

import { formatBytes, shownText } from '../shared/format.js';
import { dryRunOutcome } from '../shared/errors.js';

export interface Output {
  readonly json: boolean;
  /** Whether progress is drawn (stderr is a terminal, output is for humans): worth measuring a total for. */
  readonly interactive: boolean;
  /** A progress reporter; a no-op unless stderr is a TTY and output is for humans. */
  progress(label: string): ProgressLine;
  result(value: object, humanLines: readonly string[]): void;
  /**
   * A result too large to hold as text (100,000 backups): with `--json` the same line as
   * `result` writes, its arrays under `listKeys` written an element at a time; for people, the
   * lines as they are made. Each waits for stdout to take what came before.
   */
  streamResult<K extends string>(value: { readonly [key in K]: readonly unknown[] }, listKeys: readonly K[], humanLines: Iterable<string>): Promise<void>;
  /** A line on stderr; with `--json`, also in the result's `notices` if it comes before the result. */
  notice(message: string): void;
  /** With `--json`, the `{"error": …}` line that stands for the result, with the notices said before it; without, "". */
  errorLine(error: { readonly code: string; readonly message: string }): string;
}

export interface ProgressLine {
  /** `describe` is called only when the line is due to be redrawn (at most 10 times a second). */
  update(describe: () => string): void;
  done(): void;
}

const PROGRESS_INTERVAL_MS = 100;

export function createOutput(options: { json: boolean }): Output {
  // A dumb terminal (Emacs' shell, some CI consoles) shows the erase sequence as text.
  const interactive = process.stderr.isTTY === true && !options.json && process.env.TERM !== 'dumb';
  // The CLI's own warnings (a misleading archive name, a cron that will fail): a script reading
  // the JSON saw none of them, only stderr did.
  const pending: string[] = [];
  return {
    json: options.json,
    interactive,
    progress(label) {
      if (!interactive) return { update() {}, done() {} };
      let last = 0;
      let shown = false;
      return {
        update(describe) {
          const now = Date.now();
          if (now - last < PROGRESS_INTERVAL_MS) return;
          last = now;
          shown = true;
          process.stderr.write(`\r\x1b[2K${fitted(`${label}: ${describe()}`, process.stderr.columns)}`);
        },
        done() {
          if (shown) process.stderr.write('\r\x1b[2K');
        },
      };
    },
    // Each line through shownText, whatever built it: no control character reaches the
    // terminal raw (names are escaped where they are quoted; this is the net under that).
    result(value, humanLines) {
      if (options.json) process.stdout.write(jsonLine(withNotices(value, pending.splice(0))));
      else for (const line of humanLines) process.stdout.write(`${shownText(line)}\n`);
    },
    async streamResult(value, listKeys, humanLines) {
      await writeChunks(process.stdout, options.json ? jsonLineChunks(withNotices(value, pending.splice(0)) as typeof value, listKeys) : humanChunks(humanLines));
    },
    notice(message) {
      process.stderr.write(`openclaw: ${shownText(message)}\n`);
      if (options.json) pending.push(message);
    },
    errorLine(error) {
      return options.json ? jsonLine(withNotices({ error }, pending.splice(0))) : '';
    },
  };
}

/** `value` with the CLI's `notices` after the operation's own. */
function withNotices(value: object, notices: readonly string[]): object {
  if (notices.length === 0) return value;
  const own = (value as { notices?: unknown }).notices;
  return { ...value, notices: [...(Array.isArray(own) ? own : []), ...notices] };
}

/**
 * One line of JSON. JSON.stringify escapes C0 controls but writes DEL, C1 controls and the
 * invisible marks raw; written as \u escapes (shownText) they read back the same.
 */
export function jsonLine(value: unknown): string {
  return `${shownText(JSON.stringify(value))}\n`;
}

/**
 * jsonLine(value) in pieces: the arrays under `listKeys` an element at a time, so the whole
 * line is never one string (JSON.stringify's rules: undefined members left out, toJSON honoured).
 */
export function* jsonLineChunks(value: object, listKeys: readonly string[]): Generator<string> {
  const record = value as Record<string, unknown>;
  let first = true;
  for (const key of Object.keys(record)) {
    const listed = listKeys.includes(key) && Array.isArray(record[key]);
    const member = listed ? '[]' : JSON.stringify(record[key]);
    if (member === undefined) continue;
    const name = `${first ? '{' : ','}${JSON.stringify(key)}:`;
    first = false;
    if (!listed) {
      yield shownText(name + member);
      continue;
    }
    yield shownText(`${name}[`);
    let index = 0;
    for (const element of record[key] as readonly unknown[]) yield shownText(`${index++ === 0 ? '' : ','}${JSON.stringify(element) ?? 'null'}`);
    yield ']';
  }
  yield first ? '{}\n' : '}\n';
}

function* humanChunks(lines: Iterable<string>): Generator<string> {
  for (const line of lines) yield `${shownText(line)}\n`;
}

/**
 * Text gathered to ~64 KiB a write, waiting for `drain` whenever the stream's buffer is full.
 * A stream that fails or closes (the reader left: EPIPE) takes nothing more and ends the
 * writing quietly: what that means for the command is its 'error' listener's to say (main.ts).
 */
export async function writeChunks(stream: Writable, chunks: Iterable<string>): Promise<void> {
  let pending = '';
  const write = async () => {
    if (!stream.write(pending)) await drainedOrGone(stream);
    pending = '';
  };
  for (const chunk of chunks) {
    if (stream.destroyed || stream.errored !== null) return;
    pending += chunk;
    if (pending.length >= 65_536) await write();
  }
  if (pending !== '' && !stream.destroyed && stream.errored === null) await write();
}

function drainedOrGone(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      for (const event of ['drain', 'error', 'close']) stream.off(event, done);
      resolve();
    };
    for (const event of ['drain', 'error', 'close']) stream.on(event, done);
  });
}

/**
 * A progress line cut to the terminal's width, less a column: a longer one wraps, and the
 * carriage return and erase of the next redraw clear only its last row, so every redraw
 * left a row behind (a backup's line is ~95 columns).
 */
export function fitted(line: string, columns: number | undefined): string {
  if (columns === undefined || !(columns > 2) || line.length < columns) return line;
  return `${line.slice(0, columns - 2)}…`;
}

export function rate(bytes: number, startedAt: number): string {
  const seconds = Math.max((Date.now() - startedAt) / 1000, 0.001);
  return `${formatBytes(bytes / seconds)}/s`;
}

/**
 * How far an operation is, for the progress line: "42%, ETA 1m 05s" from the work done and
 * the total (bytes of content for a backup, bytes of stored archive for a restore or a
 * verify), extrapolating the rate so far. Empty when the total is unknown (0 or undefined);
 * the percent stays below 100 until the operation says it is done (files can grow while a
 * backup reads them), and the ETA waits for a second of history and some progress.
 */
export function percentAndEta(done: number, total: number | undefined, elapsedMs: number): string {
  if (total === undefined || !(total > 0)) return '';
  const fraction = Math.min(Math.max(done / total, 0), 1);
  const percent = `${Math.min(Math.floor(fraction * 100), 99)}%`;
  if (elapsedMs < 1000 || done <= 0) return percent;
  const remainingMs = fraction >= 1 ? 0 : (elapsedMs * (1 - fraction)) / fraction;
  return `${percent}, ETA ${duration(remainingMs)}`;
}

/** A duration for people: "7 s", "1m 05s", "2h 03m". */
export function duration(ms: number): string {
  const total = Math.max(Math.round(ms / 1000), 0);
  if (total < 60) return `${total} s`;
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = total % 60;
  return hours > 0 ? `${hours}h ${String(minutes).padStart(2, '0')}m` : `${minutes}m ${String(secs).padStart(2, '0')}s`;
}

/** A progress line's text: the percent and ETA first when the total is known, then the details. */
export function progressText(details: string, done: number, total: number | undefined, startedAt: number, now = Date.now()): string {
  const eta = percentAndEta(done, total, now - startedAt);
  return eta === '' ? details : `${eta} · ${details}`;
}

/** " via http://minio:9000 (profile minio, endpoint_url)" for an S3-compatible store; nothing for AWS or a file. */
export function via(endpoint: { readonly url: string; readonly source: string } | undefined): string {
  return endpoint === undefined ? '' : ` via ${endpoint.url} (${endpoint.source})`;
}

/**
 * A dry run's last line when the real run would not go through, in the words its outcome is
 * (exit 3 "REFUSED", nothing changed; exit 1 "FAIL"; exit 2 "cannot run as given", the command
 * line lacking something): "the backup would be REFUSED" was said of a destination that is a
 * FIFO, whose backup fails (exit 1), and of an S3 destination without a region (exit 2).
 */
export function wouldNot(operation: string, refusal: { readonly code: string; readonly message: string }): string {
  const outcome = dryRunOutcome(refusal);
  const words = outcome === 'failed' ? 'would FAIL' : outcome === 'usage' ? 'cannot run as given' : 'would be REFUSED';
  return `  the ${operation} ${words}: ${shownText(refusal.message)}`;
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

export { filesCounted, formatBytes, groupThousands as count, plural, recoveryText, shownPath, shownText } from '../shared/format.js';

/** Rows under a header, columns padded to their widest cell; `right` columns align right (numbers). */
export function table(header: readonly string[], rows: readonly (readonly string[])[], right: readonly number[] = []): string[] {
  return [...tableLines(header, () => rows, right)];
}

/**
 * table's lines one at a time: `rows` is gone through twice, once for the columns' widths and
 * once for the lines, so rows made on the way need not all be held at once.
 */
export function* tableLines(header: readonly string[], rows: () => Iterable<readonly string[]>, right: readonly number[] = []): Generator<string> {
  // A loop, not Math.max(...cells): a call's arguments overflow the stack past about 120,000 rows.
  const widths = header.map((title) => title.length);
  for (const row of rows()) row.forEach((cell, column) => (widths[column] = Math.max(widths[column]!, cell.length)));
  const format = (row: readonly string[]) =>
    row
      .map((cell, column) => (column === row.length - 1 && !right.includes(column) ? cell : right.includes(column) ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!)))
      .join('  ');
  yield format(header);
  for (const row of rows()) yield format(row);
}

/** `2026-06-03 03:00:00 UTC` from an ISO time. */
export function utcSecond(iso: string): string {
  return `${iso.slice(0, 19).replace('T', ' ')} UTC`;
}
