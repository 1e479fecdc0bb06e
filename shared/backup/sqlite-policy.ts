// How a backup treats the live SQLite databases of one tenant, decided once per backup.
//
// Where the writers may be. SQLite's WAL index (`-shm`) is shared memory: it is coherent
// between the processes of one host only. So:
// - 'same-host': the tenant is on a local file system, where every process that opens its
//   databases runs on this host: the live database is opened read-only and snapshotted in
//   place (sqlite-snapshot.ts);
// - 'cross-host': the tenant is on a file system other hosts may mount (NFS, which EFS is;
//   SMB/CIFS; FUSE, which can be anything; 9P; cluster file systems), or its type cannot be
//   told: the live database is never opened; a stable private copy of it and its WAL is
//   (sqlite-private-copy.ts). The Lambda functions always take this path: the gateway that
//   writes the tenant's databases on EFS is another host.
// The CLI tells them apart by the file system type statfs(2) reports for the tenant's
// directory (`writersMayBeRemote`); a caller can force either.
//
// Cross-host, SQLite's file locks may still reach every writer: NFSv4 (EFS serves only
// NFSv4.0/4.1) carries byte-range locks to the server, which enforces them between all its
// clients, and the Linux client revalidates its cache of a file when a lock is taken. A
// caller who knows that (`locksAcrossHosts`: the Lambda functions, on EFS) has a database in
// rollback-journal mode snapshotted in place under SQLite's read lock, as on one host: a
// writer cannot commit while it is held, so the copy needs no quiet moment (a private copy of
// a large database under constant commits finds none). A database in WAL mode is still copied
// privately: its readers do not lock the file but follow the `-shm`, shared memory of one host.
//
// What happens when no consistent copy can be had (the database stays locked, or keeps
// changing under every copy): the backup fails for that tenant (SqliteSnapshotError), unless
// `rawFallback` (`--sqlite-raw-fallback`) asks to archive it raw, with its companions and a
// warning. A database SQLite cannot read at all (corrupt, not a database) is archived raw
// with a warning either way: it has no consistent state to take.

import { statfsSync } from 'node:fs';

import { DEFAULT_SNAPSHOT_TIMEOUT_MS } from './sqlite-snapshot.js';

export type SqliteWriters = 'same-host' | 'cross-host';

export interface SqlitePolicy {
  readonly writers: SqliteWriters;
  /** Archive a database raw with a warning, rather than fail, when no consistent copy can be had. */
  readonly rawFallback: boolean;
  /** How long a same-host snapshot waits for a writer's lock. */
  readonly busyTimeoutMs: number;
  /** Cross-host: SQLite's file locks reach the writers on other hosts (see the top of the file). */
  readonly locksAcrossHosts: boolean;
}

export interface SqliteOptions {
  /** Where the databases' writers may run. @default 'auto': by the tenant's file system type */
  readonly writers?: SqliteWriters | 'auto';
  /** @default false */
  readonly rawFallback?: boolean;
  /** @default DEFAULT_SNAPSHOT_TIMEOUT_MS (10 s) */
  readonly busyTimeoutMs?: number;
  /** Whether SQLite's file locks reach writers on other hosts (NFSv4, as EFS). @default false */
  readonly locksAcrossHosts?: boolean;
}

/**
 * statfs(2) f_type of file systems whose files processes on other hosts may have open, and
 * which therefore cannot be trusted to share SQLite's `-shm` between them and us.
 */
const SHARED_FILE_SYSTEMS: ReadonlyMap<number, string> = new Map([
  [0x6969, 'NFS'],
  [0xff534d42, 'CIFS'],
  [0xfe534d42, 'SMB2'],
  [0x517b, 'SMB'],
  [0x65735546, 'FUSE'],
  [0x564c, 'NCP'],
  [0x01021997, '9P'],
  [0x00c36400, 'Ceph'],
  [0x01161970, 'GFS2'],
  [0x7461636f, 'OCFS2'],
  [0x0bd00bd0, 'Lustre'],
  [0x5346414f, 'AFS'],
]);

/** Why writers on other hosts may share `dir`'s databases (its file system), or undefined on a local one. */
export function writersMayBeRemote(dir: string): string | undefined {
  let type: number;
  try {
    type = statfsSync(dir).type;
  } catch (error) {
    return `its file system type cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  const name = SHARED_FILE_SYSTEMS.get(type);
  return name === undefined ? undefined : `it is on ${name}`;
}

/** The policy for a tenant at `tenantDir`. */
export function sqlitePolicyFor(tenantDir: string, options: SqliteOptions = {}): SqlitePolicy {
  const requested = options.writers ?? 'auto';
  const writers = requested !== 'auto' ? requested : writersMayBeRemote(tenantDir) === undefined ? 'same-host' : 'cross-host';
  return { writers, rawFallback: options.rawFallback ?? false, busyTimeoutMs: options.busyTimeoutMs ?? DEFAULT_SNAPSHOT_TIMEOUT_MS, locksAcrossHosts: options.locksAcrossHosts ?? false };
}
