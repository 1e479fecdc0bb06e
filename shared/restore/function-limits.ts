// What a restore run by a function may take on, from the time its invocation has left: the
// bytes and the entries it can restore before its deadline, at the rates the deployment counts
// on (FunctionConfig: OPENCLAW_RESTORE_MBPS, OPENCLAW_RESTORE_ENTRIES_PER_SECOND). An archive
// that counts more is refused before anything is written.

import { DEFAULT_RESTORE_ENTRIES_PER_SECOND, DEFAULT_RESTORE_MBPS, type FunctionConfig } from '../control-plane/function-config.js';
import { formatBytes } from '../format.js';

/**
 * The largest archive a restore can read in the invocation's time left, at the throughput the
 * deployment counts on: a restore in pieces continues in another invocation for its entries,
 * but every piece reads the archive from its start (docs/scale.md, "A restore that
 * continues"), so a larger one is refused before anything is written, with or without the
 * restore queue.
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

/** The seconds a restore may work: the invocation's time left (`remainingMs`), less its abort margin. */
function restoreSecondsLeft(remainingMs: number, config: FunctionConfig): number {
  return Math.max(0, remainingMs - config.abortMarginMs) / 1000;
}
