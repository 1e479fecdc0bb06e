// What tells a later name of a file a backup archived earlier (a hard link to it) from any
// other file: its inode number, and its size and mtime, so that an inode number freed and
// taken by another file while the backup ran (or a file written to between its names) is
// archived as a file of its own, never as a link to content it does not have. No device: the
// walk never leaves the tenant's file system (tenant-walk.ts), so every file it archives has
// the tenant's.

export function linkKey(stat: { readonly ino: number; readonly size: number; readonly mtimeMs: number }): string {
  return `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
}
