// What a restore run by a function may take on, from the time its invocation has left: the
// bytes and the entries it can restore before its deadline, at the rates the deployment counts
// on (FunctionConfig: OPENCLAW_RESTORE_MBPS, OPENCLAW_RESTORE_ENTRIES_PER_SECOND). An archive
// that counts more is refused before anything is written. A restore in pieces is judged by what
// a chain of pieces can do (restoreChainLimit): each piece replays what earlier ones wrote
// (OPENCLAW_RESTORE_REPLAY_MBPS) before it writes (OPENCLAW_RESTORE_MBPS), its entries too where
// the footer counts them (restoreChainEntryLimit). And from its memory, the --max-entries it
// grants a request (memoryEntryLimit): what a restore reads of an archive's manifest grows with it.

import {
  DEFAULT_ABANDON_AFTER_MS,
  DEFAULT_CONTINUE_MARGIN_MS,
  DEFAULT_RESTORE_ENTRIES_PER_SECOND,
  DEFAULT_RESTORE_MBPS,
  DEFAULT_RESTORE_REPLAY_MBPS,
  type FunctionConfig,
} from '../control-plane/function-config.js';
import { ArchiveLimitError } from '../errors.js';
import { formatBytes, groupThousands } from '../format.js';
import { DEFAULT_LIMITS, type ExtractLimits } from './limits.js';

/**
 * The --max-entries (a request's `limits.maxEntries`) the restore function grants for each MiB
 * of its memory past MEMORY_RESERVED_MIB, never fewer than the default: what a restore, its dry
 * run and verify hold grows with it, the paths of the entries read (up to 128 characters an
 * allowed entry, extract.ts) and the manifest (limits.ts manifestLimits, up to 8 times the
 * default bounds at 16,000,000, 16 times at 32,000,000), and so does what a hostile archive costs. Measured through the
 * restore bundle under Node 24 with the heap flags Lambda's bootstrap sets (a tenth of the
 * memory young, the rest old space), `verify` (which stages nothing, so no time limit bounds its
 * entries) from S3: a version 1 manifest of directory entries to the bounds (the costliest
 * shape, docs/scale.md) took 1,577 MiB RSS at 16,000,000 (a function of 1,024 MiB ran out of
 * heap after 20 s: no answer, no event); 1,000,000 empty files of 125-character paths 237 MiB;
 * 4,990,000 of them and such a manifest to the bounds of 5,000,000, 1,293 MiB in 2,048: ~254
 * bytes an allowed entry. 3,000 an MiB (~350 bytes) past 384 keeps that under three quarters of
 * the memory: 4,992,000 at the default 2,048 MiB, the default 2,000,000 up to 1,050 MiB.
 */
export const ENTRIES_PER_MEMORY_MIB = 3_000;
export const MEMORY_RESERVED_MIB = 384;
/** Lambda's largest memory size (MiB). */
const MOST_LAMBDA_MEMORY_MIB = 10_240;

/** The most --max-entries a restore function of `memoryMiB` grants (see ENTRIES_PER_MEMORY_MIB). */
export function memoryEntryLimit(memoryMiB: number): number {
  return Math.max(DEFAULT_LIMITS.maxEntries, Math.floor((memoryMiB - MEMORY_RESERVED_MIB) * ENTRIES_PER_MEMORY_MIB));
}

/**
 * Refuses, before anything is read, a request whose limits the function's memory does not hold
 * (an ArchiveLimitError naming the most it grants and the memory that grants what was asked),
 * rather than granting less than asked: an archive past the lower limit would then be refused
 * naming the --max-entries the user already gave. Nothing is held back where the memory is not
 * known (not in Lambda).
 */
export function assertLimitsFitMemory(limits: Partial<ExtractLimits> | undefined, config: FunctionConfig): void {
  const asked = limits?.maxEntries;
  if (asked === undefined || config.memoryMiB === undefined) return;
  const granted = memoryEntryLimit(config.memoryMiB);
  if (asked <= granted) return;
  const needed = Math.ceil(asked / ENTRIES_PER_MEMORY_MIB) + MEMORY_RESERVED_MIB;
  const moreMemory = needed <= MOST_LAMBDA_MEMORY_MIB ? `give the restore function ${groupThousands(needed)} MiB of memory or more (the stack's memorySizeMiB), ` : '';
  throw new ArchiveLimitError(
    `--max-entries ${groupThousands(asked)} is more than the restore function's ${groupThousands(config.memoryMiB)} MiB of memory holds (an archive read within that limit may take up to ${formatBytes(asked * (1024 ** 2 / ENTRIES_PER_MEMORY_MIB))}): it grants at most ${groupThousands(granted)}: give --max-entries ${granted} or less, ${moreMemory}or use the CLI in local mode on a host that mounts the tenant volume`,
  );
}

/**
 * The largest archive a restore in one invocation (no restore queue, or a request with a store
 * of its own) can read in the invocation's time left, at the throughput the deployment counts
 * on: a larger one is refused before anything is written.
 */
export function restoreLimit(remainingMs: number, config: FunctionConfig): { bytes: number; reason: string } {
  const mbps = config.restoreMBps ?? DEFAULT_RESTORE_MBPS;
  const seconds = restoreSecondsLeft(remainingMs, config);
  return {
    bytes: Math.floor(seconds * mbps * 1e6),
    reason: `the restore function can restore in the ${Math.floor(seconds)} s it has left at ${mbps} MB/s (OPENCLAW_RESTORE_MBPS): restore it with the CLI in local mode on a host that mounts the tenant volume`,
  };
}

/**
 * The most entries (files, directories, links) a restore can stage in the invocation's time
 * left, at the rate the deployment counts on (EFS creates a file in ~5 ms), once the archive's
 * bytes are written at the throughput it counts on (the two add up: 30 GB of 150,000 files
 * passed each check alone and needed twice the time): an archive whose footer counts more is
 * refused before anything is written, instead of stopping at the deadline.
 */
export function restoreEntryLimit(remainingMs: number, config: FunctionConfig, archiveBytes: number | undefined): { entries: number; reason: string } {
  const perSecond = config.restoreEntriesPerSecond ?? DEFAULT_RESTORE_ENTRIES_PER_SECOND;
  const mbps = config.restoreMBps ?? DEFAULT_RESTORE_MBPS;
  const left = restoreSecondsLeft(remainingMs, config);
  const forBytes = Math.min(left, (archiveBytes ?? 0) / (mbps * 1e6));
  const seconds = left - forBytes;
  const afterBytes = forBytes >= 1 ? `, after the ${Math.round(forBytes)} s its ${formatBytes(archiveBytes ?? 0)} take at ${mbps} MB/s (OPENCLAW_RESTORE_MBPS)` : '';
  return {
    entries: Math.floor(seconds * perSecond),
    reason: `the restore function can stage in the ${Math.floor(seconds)} s it has left at ${perSecond} a second (OPENCLAW_RESTORE_ENTRIES_PER_SECOND)${afterBytes}: restore it with the CLI in local mode on a host that mounts the tenant volume`,
  };
}

/** The seconds a restore may work: the invocation's time left (`remainingMs`), less its abort margin (and, a piece of a chain, its continue margin: `moreMarginMs`). */
function restoreSecondsLeft(remainingMs: number, config: FunctionConfig, moreMarginMs = 0): number {
  return Math.max(0, remainingMs - config.abortMarginMs - moreMarginMs) / 1000;
}

/**
 * The least share of a piece's working time the last piece of a chain keeps for writing, once
 * it has replayed what earlier pieces wrote: a chain whose next piece would replay for longer is
 * refused up front. The share bounds the chain's waste too: its pieces each write at least it.
 */
export const MIN_WRITE_SHARE = 0.25;

/** What a chain of restore pieces can do, each piece working `pieceSeconds`. */
export interface ChainRates {
  /** The time a piece writes and replays in: its invocation's, less the abort and continue margins. */
  readonly pieceSeconds: number;
  /** Bytes of stored archive a second a piece writes (OPENCLAW_RESTORE_MBPS). */
  readonly writeBytesPerSecond: number;
  /** Bytes of stored archive a second a piece replays, writing nothing (OPENCLAW_RESTORE_REPLAY_MBPS). */
  readonly replayBytesPerSecond: number;
  /** The most pieces a chain may take (the tenant is busy, its backups refused, until it ends). */
  readonly maxPieces: number;
}

/** No loop below runs longer than this many pieces, whatever the rates. */
const PIECES_COUNTED = 1_000_000;

/**
 * The pieces a chain takes to restore `archiveBytes`: piece k replays the P(k) bytes earlier
 * pieces wrote, in P(k)/replay s, then writes for the rest of its time, so
 * P(k+1) = P(k) + write × (T − P(k)/replay). `undefined`: no piece that keeps MIN_WRITE_SHARE
 * of its time for writing finishes it (the replay of what earlier pieces wrote grows toward the
 * whole piece). The piece bound is not applied: the caller compares.
 */
export function chainPieces(archiveBytes: number, rates: ChainRates): number | undefined {
  let written = 0;
  for (let piece = 1; piece <= PIECES_COUNTED; piece++) {
    const writes = pieceWrites(written, rates);
    if (writes === undefined) return undefined;
    if (archiveBytes - written <= writes) return piece;
    if (writes <= 0) return undefined;
    written += writes;
  }
  return undefined;
}

/**
 * The bytes the next piece of a chain writes once it has replayed the `written` bytes earlier
 * pieces wrote, in the rest of its time: undefined where that replay takes more than the share
 * of its time MIN_WRITE_SHARE leaves it.
 */
function pieceWrites(written: number, rates: ChainRates): number | undefined {
  const { pieceSeconds, writeBytesPerSecond: write, replayBytesPerSecond: replay } = rates;
  const replaySeconds = written / replay;
  return replaySeconds > (1 - MIN_WRITE_SHARE) * pieceSeconds ? undefined : write * (pieceSeconds - replaySeconds);
}

/**
 * The largest archive a chain restores within `maxPieces`, each of which (the last one too)
 * keeps MIN_WRITE_SHARE of its time for writing, and the pieces that takes.
 * `by`: what stops it there, the share (a next piece would replay too long) or the piece bound.
 */
export function largestChain(rates: ChainRates): { readonly bytes: number; readonly pieces: number; readonly by: 'share' | 'pieces' } {
  const maxPieces = Math.min(Math.max(1, Math.floor(rates.maxPieces)), PIECES_COUNTED);
  let written = 0;
  for (let piece = 1; piece <= maxPieces; piece++) {
    const writes = rates.pieceSeconds <= 0 ? undefined : pieceWrites(written, rates);
    if (writes === undefined) return { bytes: Math.floor(written), pieces: piece - 1, by: 'share' };
    written += writes;
  }
  return { bytes: Math.floor(written), pieces: maxPieces, by: 'pieces' };
}

/**
 * The largest archive the restore function restores in pieces, judged by its first piece from
 * its time left: every later piece is taken to have as long (a fresh invocation of the same
 * timeout, less its own sweep), works until the abort and continue margins, and reads the
 * archive from its start, replaying what earlier pieces wrote before it writes. The chain may
 * take the pieces that fit in OPENCLAW_ABANDON_AFTER_MS (a day: the tenant is busy all along).
 * `archiveBytes` (the stored size, when the store told it) lets the reason name the pieces such
 * an archive would take.
 */
export function restoreChainLimit(remainingMs: number, config: FunctionConfig, archiveBytes?: number): { bytes: number; reason: string } {
  const mbps = config.restoreMBps ?? DEFAULT_RESTORE_MBPS;
  const replayMBps = config.restoreReplayMBps ?? DEFAULT_RESTORE_REPLAY_MBPS;
  const abandonAfterMs = config.abandonAfterMs ?? DEFAULT_ABANDON_AFTER_MS;
  const pieceSeconds = restoreSecondsLeft(remainingMs, config, config.continueMarginMs ?? DEFAULT_CONTINUE_MARGIN_MS);
  const rates: ChainRates = {
    pieceSeconds,
    writeBytesPerSecond: mbps * 1e6,
    replayBytesPerSecond: replayMBps * 1e6,
    maxPieces: chainPieceBound(remainingMs, abandonAfterMs),
  };
  if (pieceSeconds <= 0) {
    return {
      bytes: 0,
      reason: `the restore function can restore in pieces: its ${Math.floor(remainingMs / 1000)} s left are within its abort and continue margins (OPENCLAW_ABORT_MARGIN_MS, OPENCLAW_CONTINUE_MARGIN_MS), so a piece has no time to write: restore it with a longer timeout for the restore function, or with the CLI in local mode on a host that mounts the tenant volume`,
    };
  }
  const largest = largestChain(rates);
  const rated = `at ${mbps} MB/s written (OPENCLAW_RESTORE_MBPS) and ${replayMBps} MB/s replayed (OPENCLAW_RESTORE_REPLAY_MBPS)`;
  const pieces = `${groupThousands(largest.pieces)} ${largest.pieces === 1 ? 'piece' : 'pieces'} of ${Math.floor(pieceSeconds)} s`;
  const needs = archiveBytes === undefined || archiveBytes <= largest.bytes ? undefined : chainPieces(archiveBytes, rates);
  const why =
    largest.by === 'pieces'
      ? `the ${pieces} that fit in ${hours(abandonAfterMs)} (OPENCLAW_ABANDON_AFTER_MS: the tenant is busy while a chain runs) ${rated}${needs === undefined ? '' : `; it would take ${groupThousands(needs)} pieces`}`
      : `${pieces} ${rated}, each replaying what earlier pieces wrote before it writes (a next piece would replay for over ${Math.round((1 - MIN_WRITE_SHARE) * 100)}% of its time)`;
  return {
    bytes: largest.bytes,
    reason: `the restore function can restore in ${why}: restore it with the CLI in local mode on a host that mounts the tenant volume`,
  };
}

/**
 * The seconds a later piece spends replaying one entry an earlier piece wrote (the archive read
 * again, the entry's header parsed and its path checked, its content hashed: nothing touched on
 * the volume), beside its bytes' share at OPENCLAW_RESTORE_REPLAY_MBPS. Measured through the
 * restore bundle: 83,057 entries of 1-4 KiB replayed in 1.28 s (~15 µs each, docs/scale.md);
 * counted 25 µs.
 */
export const REPLAY_SECONDS_PER_ENTRY = 25e-6;

/**
 * The most entries (files, directories, links: the footer's count) an archive of
 * `archiveBytes` may hold for the restore function to take it on in pieces, judged by its first
 * piece as restoreChainLimit judges the bytes: each piece stages the entries at
 * OPENCLAW_RESTORE_ENTRIES_PER_SECOND beside writing the bytes (the two add up, as in one
 * invocation: restoreEntryLimit), and replays what earlier pieces wrote, entries
 * (REPLAY_SECONDS_PER_ENTRY) and bytes, before it writes. The entries are taken to lie evenly
 * through the bytes. An archive of millions of tiny files passed the bytes check alone and its
 * chain then staged ~40,000 entries a piece for days, the tenant busy all along.
 */
export function restoreChainEntryLimit(remainingMs: number, config: FunctionConfig, archiveBytes: number | undefined): { entries: number; reason: string } {
  const perSecond = config.restoreEntriesPerSecond ?? DEFAULT_RESTORE_ENTRIES_PER_SECOND;
  const mbps = config.restoreMBps ?? DEFAULT_RESTORE_MBPS;
  const replayMBps = config.restoreReplayMBps ?? DEFAULT_RESTORE_REPLAY_MBPS;
  const abandonAfterMs = config.abandonAfterMs ?? DEFAULT_ABANDON_AFTER_MS;
  const pieceSeconds = restoreSecondsLeft(remainingMs, config, config.continueMarginMs ?? DEFAULT_CONTINUE_MARGIN_MS);
  const maxPieces = chainPieceBound(remainingMs, abandonAfterMs);
  const bytes = Math.max(1, archiveBytes ?? 0);
  /** The chain's rates for an archive of `entries` in its bytes, in stored bytes a second: each byte carries its share of the entries. */
  const ratesFor = (entries: number): ChainRates => {
    const perByte = entries / bytes;
    return {
      pieceSeconds,
      writeBytesPerSecond: 1 / (1 / (mbps * 1e6) + perByte / perSecond),
      replayBytesPerSecond: 1 / (1 / (replayMBps * 1e6) + perByte * REPLAY_SECONDS_PER_ENTRY),
      maxPieces,
    };
  };
  const fits = (entries: number): boolean => {
    const needs = pieceSeconds <= 0 ? undefined : chainPieces(bytes, ratesFor(entries));
    return needs !== undefined && needs <= maxPieces;
  };
  // No chain stages more than its pieces' whole time at the rate: the search's upper end.
  let high = Math.ceil(maxPieces * Math.max(0, pieceSeconds) * perSecond) + 1;
  let low = 0;
  if (!fits(0)) high = 0;
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (fits(middle)) low = middle;
    else high = middle - 1;
  }
  const over = pieceSeconds <= 0 ? undefined : chainPieces(bytes, ratesFor(low + 1));
  const rated = `at ${perSecond} entries a second staged (OPENCLAW_RESTORE_ENTRIES_PER_SECOND) and ${mbps} MB/s written (OPENCLAW_RESTORE_MBPS)`;
  const each = `each replaying what earlier pieces wrote before it writes (${replayMBps} MB/s, OPENCLAW_RESTORE_REPLAY_MBPS, and ${Math.round(REPLAY_SECONDS_PER_ENTRY * 1e6)} µs an entry)`;
  const pieces = (count: number) => `${groupThousands(count)} ${count === 1 ? 'piece' : 'pieces'} of ${Math.floor(pieceSeconds)} s`;
  const why =
    over === undefined
      ? `its ${formatBytes(bytes)} in ${pieces(largestChain(ratesFor(low)).pieces)} ${rated}, ${each} (a next piece would replay for over ${Math.round((1 - MIN_WRITE_SHARE) * 100)}% of its time)`
      : `its ${formatBytes(bytes)} in the ${pieces(maxPieces)} that fit in ${hours(abandonAfterMs)} (OPENCLAW_ABANDON_AFTER_MS: the tenant is busy while a chain runs) ${rated}, ${each}`;
  return {
    entries: low,
    reason: `the restore function can restore in pieces with ${why}: restore it with the CLI in local mode on a host that mounts the tenant volume`,
  };
}

/**
 * The most pieces a restore chain may take, asked by a later piece from its time left: those
 * of its length that fit in OPENCLAW_ABANDON_AFTER_MS, as restoreChainLimit counts them for the
 * first piece. A later piece's time left is under a whole invocation's (its sweep, its wait for
 * the lock): the bound is then larger, never smaller, than the first piece's.
 */
export function restoreChainPieceLimit(remainingMs: number, config: FunctionConfig): { pieces: number; reason: string } {
  const abandonAfterMs = config.abandonAfterMs ?? DEFAULT_ABANDON_AFTER_MS;
  const pieceSeconds = Math.floor(Math.max(0, remainingMs) / 1000);
  return {
    pieces: chainPieceBound(remainingMs, abandonAfterMs),
    reason: `invocations of ${pieceSeconds} s that fit in ${hours(abandonAfterMs)} (OPENCLAW_ABANDON_AFTER_MS: the tenant is busy while a chain runs): restore it with the CLI in local mode on a host that mounts the tenant volume`,
  };
}

/** The pieces of `remainingMs` each that fit in `abandonAfterMs` (one at least). */
function chainPieceBound(remainingMs: number, abandonAfterMs: number): number {
  return Math.max(1, Math.floor(abandonAfterMs / Math.max(1, remainingMs)));
}

function hours(ms: number): string {
  const h = ms / 3_600_000;
  return `${Number.isInteger(h) ? h : h.toFixed(1)} h`;
}
