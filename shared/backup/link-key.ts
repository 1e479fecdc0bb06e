// What tells a later name of a file a backup archived earlier (a hard link to it) from any
// other file: its inode number, and its size, mtime and ctime, so that an inode number freed
// and taken by another file while the backup ran (or a file written to between its names) is
// archived as a file of its own, never as a link to content it does not have. The ctime,
// which no call sets (utimes sets it to now), tells a new file that got the freed inode and
// the old file's size and mtime too (ext4 reuses a freed inode at once; rsync -a, tar and
// cp -p set mtimes): with the three alone, its names were archived as links to the old
// file's content, its own lost. No device: the
// walk never leaves the tenant's file system (tenant-walk.ts), so every file it archives has
// the tenant's.

export interface LinkIdentity {
  readonly ino: number;
  /**
   * The inode number in full, in decimal, where `ino` is past 2^53 (rounded by the number-valued
   * stat: overlayfs with xino, 64-bit NFS fileids): what tells such a file from its neighbours.
   */
  readonly exactIno?: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
}

/** The identity as one string: how a resumable backup's checkpoint keeps it (link-targets.ts). */
export function linkKey(stat: LinkIdentity): string {
  return `${stat.exactIno ?? stat.ino}:${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}`;
}

/**
 * A bigint stat's device or inode number in decimal, as the kernel has it: Node gives them as
 * signed 64-bit numbers, so overlayfs xino's ~2^63 comes as a negative one.
 */
export function unsigned(number: bigint): string {
  return BigInt.asUintN(64, number).toString();
}
