// How the walk, small-file reads and small-file writes talk to the file system.
//
// A local disk answers a metadata call or a small read in microseconds, less than a hop to
// libuv's thread pool costs: reading the 19,687 small files of the benchmark's large tenant
// took 0.42 s with synchronous calls, 6.9 s with promise calls one at a time and 2.2 s with
// 16 in flight (2-core machine, page cache warm). A network file system (NFS, so EFS under
// the Lambda functions; SMB; FUSE) takes about a millisecond a call: there blocking calls
// would serialise the latency, and many calls in flight win. So each operation picks a mode
// for its directory once.

import { statfsSync } from 'node:fs';

export type IoMode = 'sync' | 'parallel';

/** statfs(2) f_type of file systems whose calls cross a network or a user-space daemon. */
const REMOTE_FILE_SYSTEMS = new Set([
  0x6969, // NFS (EFS)
  0xff534d42, // CIFS
  0xfe534d42, // SMB2
  0x517b, // SMB
  0x65735546, // FUSE
  0x564c, // NCP
]);

export function ioModeFor(dir: string): IoMode {
  try {
    return REMOTE_FILE_SYSTEMS.has(statfsSync(dir).type) ? 'parallel' : 'sync';
  } catch {
    return 'parallel';
  }
}
