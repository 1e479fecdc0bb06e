// How many backups the work queue runs at once by default (the event source mapping's
// MaximumConcurrency), sized from the tenant file system's throughput mode: the bound is
// what the volume can give backups without starving the live gateway, divided by what one
// backup can take. Pure numbers; docs/scale.md shows the arithmetic for 10,000 tenants.
//
//   read budget   = BACKUP_SHARE (half) of the file system's read throughput:
//                   elastic      20 GiB/s per file system (EFS's lowest regional ceiling
//                                for Elastic reads), so the account is the limit, not the
//                                volume: ELASTIC_CONCURRENCY
//                   provisioned  3 × the provisioned MiB/s (EFS meters reads at one third)
//                   bursting     3 × the baseline, 50 KiB/s per GiB stored (the burst
//                                doubles that while credits last: not planned on); with the
//                                size unknown, the 100 MiB/s every file system may burst to
//   per backup    = PEAK_BACKUP_READ_MIBPS: one backup at 2 GiB memory reads at most about
//                   this fast (bench/results: 108 MiB/s to S3, 2 cores, compression-bound);
//                   on EFS most tenants read far slower (per-file latency), so the bound
//                   is safe, not tight: raise it with `backupConcurrency` after measuring
//   concurrency   = budget / per backup, within 2..1000 (the mapping's own limits), and
//                   at most ELASTIC_CONCURRENCY (a tenth of the default regional Lambda
//                   concurrency, 1,000, which the account shares with everything else)

/** EFS throughput modes, as the context key `efsThroughputMode` names them. */
export type EfsThroughputMode = 'elastic' | 'provisioned' | 'bursting';
export const EFS_THROUGHPUT_MODES: readonly EfsThroughputMode[] = ['elastic', 'provisioned', 'bursting'];

export interface EfsThroughput {
  readonly mode: EfsThroughputMode;
  /** Provisioned mode: its MiB/s. */
  readonly provisionedMiBps?: number;
  /** Bursting mode: the data stored, in GiB (its baseline grows with it). */
  readonly storedGiB?: number;
}

/** The share of the volume's read throughput backups may use; the rest stays the gateway's. */
export const BACKUP_SHARE = 0.5;
/** One backup's peak read rate, MiB/s. */
export const PEAK_BACKUP_READ_MIBPS = 100;
/** EFS Elastic's lowest per-file-system read ceiling, MiB/s (20 GiB/s). */
export const ELASTIC_READ_MIBPS = 20 * 1024;
/** EFS meters reads at a third of their bytes against Provisioned and Bursting throughput. */
export const READ_METERING_FACTOR = 3;
/** Bursting baseline, MiB/s per GiB stored (50 KiB/s). */
export const BURSTING_BASELINE_MIBPS_PER_GIB = 50 / 1024;
/** What any bursting file system may burst to, MiB/s (metered). */
export const BURSTING_MINIMUM_MIBPS = 100;
/** The most backups at once any default allows: a tenth of the default regional Lambda concurrency. */
export const ELASTIC_CONCURRENCY = 100;
/** The event source mapping's MaximumConcurrency range. */
export const MIN_CONCURRENCY = 2;
export const MAX_CONCURRENCY = 1000;

/** The read throughput (MiB/s) the volume gives backups, by mode. */
export function backupReadBudgetMiBps(throughput: EfsThroughput): number {
  switch (throughput.mode) {
    case 'elastic':
      return BACKUP_SHARE * ELASTIC_READ_MIBPS;
    case 'provisioned':
      return BACKUP_SHARE * READ_METERING_FACTOR * (throughput.provisionedMiBps ?? 0);
    case 'bursting': {
      const metered = throughput.storedGiB === undefined ? BURSTING_MINIMUM_MIBPS : throughput.storedGiB * BURSTING_BASELINE_MIBPS_PER_GIB;
      return BACKUP_SHARE * READ_METERING_FACTOR * metered;
    }
  }
}

/** The default MaximumConcurrency of the work queue's event source mapping. */
export function defaultBackupConcurrency(throughput: EfsThroughput): number {
  const fits = Math.floor(backupReadBudgetMiBps(throughput) / PEAK_BACKUP_READ_MIBPS);
  return Math.max(MIN_CONCURRENCY, Math.min(fits, ELASTIC_CONCURRENCY, MAX_CONCURRENCY));
}
