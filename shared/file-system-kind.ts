// What statfs(2) tells about a directory a command would write in: a kernel file system that
// takes no new files, or one with no inode or block left. Asked by the backup's destination
// check (storage/local.ts) and by the restore's dry run of its base dir (restore-plan.ts), so
// that a dry run refuses where the real command fails.

import type { StatsFs } from 'node:fs';

/**
 * statfs(2) f_type of the kernel's own file systems (linux/magic.h), where no archive or tenant can be
 * made: their directories refuse new files, or make what they create into kernel objects
 * (a cgroup, a configfs item, an EFI variable, a message queue), or take no write(2)
 * (hugetlbfs).
 */
const PSEUDO_FILE_SYSTEMS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x1cd1, 'devpts'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0xcafe4a11, 'bpf'],
  [0x6165676c, 'pstore'],
  [0xde5e81e4, 'efivarfs'],
  [0x62656570, 'configfs'],
  [0x65735543, 'fusectl'],
  [0x42494e4d, 'binfmt_misc'],
  [0x19800202, 'mqueue'],
  [0xf97cff8c, 'selinuxfs'],
  [0x6e736673, 'nsfs'],
  [0x958458f6, 'hugetlbfs'],
]);

/** The name of the kernel file system statfs answered `info` of, if it is one (PSEUDO_FILE_SYSTEMS); undefined elsewhere, or where statfs failed. */
export function pseudoFileSystemName(info: StatsFs | undefined): string | undefined {
  if (process.platform !== 'linux' || info === undefined) return undefined;
  return PSEUDO_FILE_SYSTEMS.get(Number(info.type));
}

/**
 * Whether the file system statfs answered `info` of has no inode or no block this process may
 * use left (root may use the blocks reserved for it). One that counts none (btrfs's inodes,
 * some FUSE file systems' blocks: zero totals) is never called full; nor one statfs failed on.
 */
export function isFull(info: StatsFs | undefined): boolean {
  if (info === undefined) return false;
  const [files, ffree, blocks, bfree, bavail] = [info.files, info.ffree, info.blocks, info.bfree, info.bavail].map(Number);
  const usable = process.geteuid?.() === 0 ? bfree : bavail;
  return (files! > 0 && ffree === 0) || (blocks! > 0 && usable === 0);
}
