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
}

export interface SqliteOptions {
  /** Where the databases' writers may run. @default 'auto': by the tenant's file system type */
  readonly writers?: SqliteWriters | 'auto';
  /** @default false */
  readonly rawFallback?: boolean;
  /** @default DEFAULT_SNAPSHOT_TIMEOUT_MS (10 s) */
  readonly busyTimeoutMs?: number;
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
  return { writers, rawFallback: options.rawFallback ?? false, busyTimeoutMs: options.busyTimeoutMs ?? DEFAULT_SNAPSHOT_TIMEOUT_MS };
}
