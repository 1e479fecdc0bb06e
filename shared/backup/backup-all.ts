// `tenants backup --all --to TEMPLATE`: every tenant of the base dir, each to its own
// archive (TEMPLATE names `{tenant}`; `{date}`, `{time}` and `{date:FORMAT}` are filled in
// UTC from the run's start, the same for every tenant), at most `jobs` at once. One tenant's
// failure does not stop the others: every outcome is collected, in tenant order, and the
// caller reports them together. Runs whatever backs up one tenant (`backupOne`): the local
// operation here, a gateway's function elsewhere.

import os from 'node:os';

import type { BackupResult } from './backup.js';
import type { BackupEntry } from '../catalog/backups.js';
import type { RecoveredTenant } from '../tenant/tenants.js';
import { abortedError, onAbort } from '../storage/streams.js';
import { describeError, isOpenClawError, TenantNotFoundError, UsageError, type OpenClawError } from '../errors.js';
import { validateLocationOptions, type LocationOptions } from '../storage/open-location.js';
import { isS3Url, parseS3Url } from '../storage/s3-url.js';
import { assertLocalPath } from '../local-path.js';
import { expandTemplate, namesOtherArchivesAfter, namesTenant, templateProblem } from '../schedule/destination-template.js';

/** Tenants backed up at once by default: each backup compresses on every core already, so a few at most. */
export function defaultJobs(): number {
  return Math.max(1, Math.min(4, os.availableParallelism()));
}

export const MAX_JOBS = 64;

export type BackupAllOutcome =
  | { readonly tenant: string; readonly to: string; readonly ok: true; readonly result: BackupResult }
  /** `--skip-existing`: a complete backup of the tenant was at `to` already (as `tenants backups` lists it); nothing was written. */
  | { readonly tenant: string; readonly to: string; readonly ok: true; readonly skipped: 'already there'; readonly existing: BackupEntry }
  /** `to` absent: a directory of the base dir with no tenant name, never tried (INVALID_NAME). */
  | { readonly tenant: string; readonly to?: string; readonly ok: false; readonly error: { readonly code: string; readonly outcome: string; readonly message: string } };

export interface BackupAllResult {
  readonly operation: 'backup-all';
  readonly template: string;
  /** The time the template's dates were filled in with. */
  readonly time: string;
  /** Backups run at once: --jobs, or fewer when there are fewer tenants. */
  readonly jobs: number;
  /** Backed up or, with --skip-existing, found backed up already. */
  readonly succeeded: number;
  /** Of those succeeded, found backed up already (--skip-existing); absent without it. */
  readonly skipped?: number;
  readonly failed: number;
  /** In tenant order. */
  readonly results: readonly BackupAllOutcome[];
  readonly durationMs: number;
  /** Interrupted restores the run's listing and sweep settled first (rolled back, finished), by tenant, whether or not the tenant is there now; absent: none. */
  readonly recovered?: readonly RecoveredTenant[];
}

export interface BackupAllProgress {
  readonly total: number;
  readonly done: number;
  readonly failed: number;
  readonly running: readonly string[];
}

/** A TEMPLATE for `--all`: valid, naming {tenant}, and a valid location once expanded, with the storage flags it is written with. */
export function assertAllTemplate(template: string, storage: LocationOptions = {}): void {
  const problem = templateProblem(template);
  if (problem !== undefined) throw new UsageError(`invalid --to template ${JSON.stringify(template)}: ${problem}`);
  if (!namesTenant(template)) {
    throw new UsageError(`with --all, --to must contain {tenant} so every tenant gets its own archive, e.g. /var/backups/{tenant}/{date}.tar.zst`);
  }
  // As written: refused once expanded, `~/b/{tenant}.tar.zst` was told to write
  // "$HOME/b/sample-tenant.tar.zst", one archive for every tenant.
  if (!isS3Url(template)) assertLocalPath(template, 'the location');
  const sample = expandTemplate(template, { time: new Date(), tenant: 'sample-tenant' });
  validateLocationOptions(sample, storage);
  if (isS3Url(sample)) {
    try {
      parseS3Url(sample);
    } catch (error) {
      throw new UsageError(`invalid --to template ${JSON.stringify(template)}: ${describeError(error)}`);
    }
  }
}

export async function backupAll(request: {
  readonly tenants: readonly string[];
  /** Directories of the base dir whose names are no tenant names: reported as not backed up (failed), after the tenants, never tried. */
  readonly notTenants?: readonly { readonly name: string; readonly reason: string }[];
  readonly template: string;
  readonly jobs?: number;
  readonly time?: Date;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: BackupAllProgress) => void;
  readonly backupOne: (tenant: string, to: string, signal: AbortSignal | undefined) => Promise<BackupResult>;
  /**
   * `--skip-existing`: the tenant's complete backup already at `to`, which is then not backed
   * up again; undefined when there is none there. Throws to fail the tenant (something else at `to`).
   */
  readonly findExisting?: (tenant: string, to: string, signal: AbortSignal | undefined) => Promise<BackupEntry | undefined>;
}): Promise<BackupAllResult> {
  const started = Date.now();
  const { tenants, template, signal } = request;
  assertAllTemplate(template);
  const jobs = request.jobs ?? defaultJobs();
  if (!Number.isSafeInteger(jobs) || jobs < 1 || jobs > MAX_JOBS) throw new UsageError(`--jobs must be a whole number from 1 to ${MAX_JOBS}`);
  const time = request.time ?? new Date();
  const results: BackupAllOutcome[] = new Array(tenants.length);
  const running = new Set<string>();
  let next = 0;
  let done = 0;
  let failed = 0;
  let skipped = 0;
  // Stopped by the command's interruption, not failed on their own.
  const interrupted = new Set<string>();
  const report = () => request.onProgress?.({ total: tenants.length, done, failed, running: [...running] });
  // Each backup gets a signal of its own, all following the command's through one listener:
  // up to MAX_JOBS backups listening on the command's signal at once would make Node warn of
  // a listener leak on stderr.
  const stops = new Set<AbortController>();
  const stopFollowing = onAbort(signal, () => {
    for (const stop of stops) stop.abort(signal!.reason);
  });
  /**
   * The tenant's backup; with --skip-existing, its complete backup found at `to` when another
   * run finished one there after this run looked (the backup then refused to replace it).
   */
  const backedUpUnlessThereNow = async (tenant: string, to: string, stopSignal: AbortSignal | undefined): Promise<{ result: BackupResult } | { existing: BackupEntry }> => {
    try {
      return { result: await request.backupOne(tenant, to, stopSignal) };
    } catch (error) {
      if (request.findExisting === undefined || !isOpenClawError(error) || error.code !== 'DESTINATION_EXISTS') throw error;
      // Anything but a complete backup of the tenant there: the backup's own refusal says it.
      const existing = await request.findExisting(tenant, to, stopSignal).catch(() => undefined);
      if (existing === undefined) throw error;
      return { existing };
    }
  };
  const worker = async () => {
    while (next < tenants.length && !signal?.aborted) {
      const index = next++;
      const tenant = tenants[index]!;
      const to = expandTemplate(template, { time, tenant });
      const stop = new AbortController();
      stops.add(stop);
      running.add(tenant);
      report();
      try {
        const stopSignal = signal === undefined ? undefined : stop.signal;
        const found = await request.findExisting?.(tenant, to, stopSignal);
        const outcome = found !== undefined ? { existing: found } : await backedUpUnlessThereNow(tenant, to, stopSignal);
        if ('existing' in outcome) {
          results[index] = { tenant, to, ok: true, skipped: 'already there', existing: outcome.existing };
          skipped++;
        } else {
          results[index] = { tenant, to, ok: true, result: outcome.result };
        }
      } catch (error) {
        if (stop.signal.aborted) interrupted.add(tenant);
        // A tenant the run's listing had, gone when its turn came: said so, not only "no tenant … (see tenants list)", as if mistyped.
        const goneSince = error instanceof TenantNotFoundError && error.absent?.tenant === tenant ? ': it was there when this run listed the tenants, and was removed or renamed since' : '';
        const body = { code: isOpenClawError(error) ? error.code : 'UNEXPECTED', outcome: isOpenClawError(error) ? error.outcome : 'failed', message: `${describeError(error)}${goneSince}` };
        results[index] = { tenant, to, ok: false, error: body };
        failed++;
      } finally {
        stops.delete(stop);
      }
      running.delete(tenant);
      done++;
      report();
    }
  };
  const workers = Math.min(jobs, Math.max(tenants.length, 1));
  try {
    await Promise.all(Array.from({ length: workers }, worker));
  } finally {
    stopFollowing();
  }
  if (signal?.aborted) throw withTenantsFinished(abortedError(signal), tenants, results, interrupted, resumeHint(template, time));
  for (const stray of request.notTenants ?? []) {
    results.push({ tenant: stray.name, ok: false, error: { code: 'INVALID_NAME', outcome: 'usage', message: `not backed up: ${stray.reason}` } });
    failed++;
  }
  return {
    operation: 'backup-all',
    template,
    time: time.toISOString(),
    jobs: workers,
    succeeded: results.length - failed,
    ...(request.findExisting !== undefined && { skipped }),
    failed,
    results,
    durationMs: Date.now() - started,
  };
}

const NAMES_SHOWN = 10;

/**
 * An interruption of --all says which tenants it left backed up, and which not: Ctrl-C said only
 * "interrupted by SIGINT", after backing up most of them. The backups it stopped are interrupted,
 * not failed (which read as if they had failed on their own). Those never started are named too.
 * Run again with the same --to and --skip-existing, it backs up the rest.
 */
function withTenantsFinished(
  error: OpenClawError,
  tenants: readonly string[],
  results: readonly (BackupAllOutcome | undefined)[],
  interrupted: ReadonlySet<string>,
  hint: string,
): OpenClawError {
  const total = tenants.length;
  const finished = results.filter((outcome) => outcome !== undefined);
  const notStarted = tenants.filter((_, index) => results[index] === undefined);
  const backedUp = finished.filter((outcome) => outcome.ok).map((outcome) => outcome.tenant);
  const failedOnes = finished.filter((outcome) => !outcome.ok && !interrupted.has(outcome.tenant)).map((outcome) => outcome.tenant);
  const interruptedOnes = finished.filter((outcome) => !outcome.ok && interrupted.has(outcome.tenant)).map((outcome) => outcome.tenant);
  // Those backed up are a few to recognise; those left to back up by name are every one of
  // them ("and 2 more" left the operator to find those by comparing directories).
  const named = (names: string[], shown = names.length) =>
    names.length === 0 ? '' : ` (${names.slice(0, shown).join(', ')}${names.length > shown ? `, and ${names.length - shown} more` : ''})`;
  error.message =
    `${error.message}: ${backedUp.length} of ${total} tenant${total === 1 ? '' : 's'} backed up${named(backedUp, NAMES_SHOWN)}` +
    `${interruptedOnes.length > 0 ? `, ${interruptedOnes.length} interrupted${named(interruptedOnes)}` : ''}` +
    `${failedOnes.length > 0 ? `, ${failedOnes.length} failed${named(failedOnes)}` : ''}, ${notStarted.length} not started${named(notStarted)}` +
    (backedUp.length < total ? `: ${hint}` : '');
  return error;
}

/**
 * How to back up the rest: the same command with --skip-existing, while --to names the same
 * archives (its {date} the same day); by name where it names new ones a minute later ({time}).
 */
function resumeHint(template: string, time: Date): string {
  const later = (ms: number) => namesOtherArchivesAfter(template, time, ms);
  if (later(61_000)) return 'back up those not backed up by name (openclaw tenants backup NAME --to …): run again, --all names new archives ({time} in --to)';
  return `run it again with --skip-existing to back up the rest${later(86_400_000) ? ' (the same UTC day: --to names the date)' : ''}`;
}
