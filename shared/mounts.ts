// Where another file system (or another view of one: a bind mount) is mounted inside a
// tenant's tree. What is mounted there is not the tenant's data: a shared directory the
// operator bind-mounted in, a tmpfs, a FUSE mount a tenant process made. A backup stays on
// the tenant's file system (as GNU tar and restic do with --one-file-system), and the removal
// of an old tree never goes into a mount (remove-tree.ts).
//
// Two ways to tell, both answered by procfs in this process's memory, never by the file
// system itself (no round trip on a network file system): an open directory's mnt_id
// (/proc/self/fdinfo), which a bind mount of the same file system (same st_dev) differs in;
// and the mount table (/proc/self/mountinfo), which also names a mount point root may not
// even stat (a FUSE mount made without allow_other answers root EACCES), and a file mounted
// over a file. Without procfs: neither (a backup then tells mounts by st_dev alone).

import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

import { errnoCode } from './errors.js';
import { decodeRawName } from './raw-name.js';

export const FD_INFO = '/proc/self/fdinfo/';
const MOUNT_INFO = '/proc/self/mountinfo';

/**
 * The id of the mount the open descriptor `fd` is on (its fdinfo's mnt_id; Linux 3.15+), ''
 * where not told. Read synchronously (procfs answers at once), so no descriptor is held in
 * flight for it; a failure to read it (EMFILE) is thrown, not taken for another mount.
 */
export function mountIdOf(fd: number): string {
  let info: number;
  try {
    info = openSync(`${FD_INFO}${fd}`, 'r');
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error;
    return '';
  }
  let text: string;
  try {
    text = FD_INFO_READ.toString('latin1', 0, readSync(info, FD_INFO_READ, 0, FD_INFO_READ.length, null));
  } finally {
    closeSync(info);
  }
  return /^mnt_id:\s*(\d+)$/m.exec(text)?.[1] ?? '';
}

/**
 * Where `mountIdOf` reads: a few short lines, mnt_id the third (pos, flags, mnt_id, ino, then
 * more for an epoll or inotify descriptor). readFileSync took a new 64 KiB buffer for each (a
 * procfs file has no size), per directory a removal or a backup opens: for 200,000 of them,
 * 13 GB of allocations, and RSS that grew until V8 collected them (docs/scale.md).
 */
const FD_INFO_READ = Buffer.alloc(1024);

/**
 * The mount points strictly below the real path `root`, relative to it ('a/b'), from this
 * process's mount table; empty where there is none to read (no procfs).
 */
export function mountPointsUnder(root: string): ReadonlySet<string> {
  let table: string;
  try {
    table = readFileSync(MOUNT_INFO, 'latin1'); // one character per byte: a path that is not UTF-8 is decoded as raw-name.ts holds it
  } catch {
    return new Set();
  }
  const prefix = root.endsWith('/') ? root : `${root}/`;
  const found = new Set<string>();
  for (const line of table.split('\n')) {
    // mount-id parent-id major:minor root mount-point options …
    const field = line.split(' ')[4];
    if (field === undefined) continue;
    const point = unescapeMountPath(field);
    if (point.startsWith(prefix) && point.length > prefix.length) found.add(point.slice(prefix.length));
  }
  return found;
}

/**
 * The kernel writes a space, tab, newline and backslash of a mount table path as an octal
 * escape (\040…). `field`: one character per byte (latin1); the path as the walk holds its
 * names (raw-name.ts: UTF-8, a byte that is not as a lone surrogate).
 */
function unescapeMountPath(field: string): string {
  const raw = Buffer.from(field, 'latin1');
  if (!field.includes('\\')) return decodeRawName(raw);
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const octal = raw[i] === 0x5c ? /^[0-7]{3}/.exec(raw.subarray(i + 1, i + 4).toString('latin1')) : null;
    if (octal !== null) {
      bytes.push(Number.parseInt(octal[0], 8));
      i += 3;
    } else {
      bytes.push(raw[i]!);
    }
  }
  return decodeRawName(Buffer.from(bytes));
}
