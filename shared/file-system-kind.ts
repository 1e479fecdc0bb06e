// What statfs(2) tells about a directory a command would write in: a kernel file system that
// takes no new files, or one with no inode or block left. Asked by the backup's destination
// check (storage/local.ts) and by the restore's dry run of its base dir (restore-plan.ts), so
// that a dry run refuses where the real command fails.

import { constants as fsConstants, type StatsFs } from 'node:fs';
import { access, stat, statfs } from 'node:fs/promises';
import path from 'node:path';

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

/** Why `directory` would take no new file, in the order a write meets it; see whyNotWritable. */
export type WriteRefusal =
  | { readonly kind: 'kernel'; readonly fileSystem: string }
  | { readonly kind: 'denied'; readonly error: unknown }
  | { readonly kind: 'full' };

/**
 * Why a command could not write in `directory` (an existing one), or undefined where it could:
 * a kernel file system first (access() answers root yes on /proc and /sys, whose directories
 * then refuse what is made there: asked first, so that any user is told the same), then
 * access(W_OK | X_OK), then no block or inode left (the first write's ENOSPC, after all the
 * reading). One statfs answers the first and the last (on a network file system each call is a
 * round trip: ~1.9 ms behind 1 ms).
 */
export async function whyNotWritable(directory: string): Promise<WriteRefusal | undefined> {
  const info = await statfs(directory).catch(() => undefined);
  const kernel = pseudoFileSystemName(info);
  if (kernel !== undefined) return { kind: 'kernel', fileSystem: kernel };
  const denied = await access(directory, fsConstants.W_OK | fsConstants.X_OK).then(
    () => undefined,
    (error: unknown) => ({ kind: 'denied' as const, error }),
  );
  if (denied !== undefined) return denied;
  return isFull(info) ? { kind: 'full' } : undefined;
}

/** `directory` (made absolute), or its nearest ancestor that exists: where a `mkdir -p` of it starts. */
export async function nearestExisting(directory: string): Promise<string> {
  let at = path.resolve(directory);
  while ((await stat(at).catch(() => undefined)) === undefined && path.dirname(at) !== at) at = path.dirname(at);
  return at;
}
