// The directories above the base dir, as root must trust them: whoever can rename the base dir
// (a parent's owner, or anyone where the parent is group- or other-writable without the sticky
// bit) can leave a symlink in its place, and root's commands then restore into, and back up
// from, wherever it leads. OpenSSH's StrictModes rule: each ancestor owned by root and not
// writable by group or others unless sticky (/tmp, 1777 root, is fine). `doctor` reports them;
// no command is refused for it (test suites run as root in directories given to other users).

import { promises as fs } from 'node:fs';
import path from 'node:path';

/** An ancestor of the base dir its owner, or another user, could swap the base dir from. */
export interface UnsafeAncestor {
  readonly dir: string;
  readonly why: string;
}

/**
 * The unsafe ancestors of `tenantsDir`: those of the path as given (a symlink's own directory
 * is one of them) and those of where it leads (realpath), each once, top down.
 */
export async function unsafeAncestors(tenantsDir: string): Promise<UnsafeAncestor[]> {
  const given = path.resolve(tenantsDir);
  const real = await fs.realpath(given).catch(() => given);
  const seen = new Set<string>();
  const unsafe: UnsafeAncestor[] = [];
  for (const full of [given, real]) {
    for (let dir = path.dirname(full); !seen.has(dir); dir = path.dirname(dir)) {
      seen.add(dir);
      const stat = await fs.stat(dir).catch(() => undefined);
      if (stat !== undefined) {
        const why = unsafeBecause(stat);
        if (why !== undefined) unsafe.push({ dir, why });
      }
      if (dir === path.dirname(dir)) break;
    }
  }
  return unsafe.sort((a, b) => a.dir.length - b.dir.length);
}

function unsafeBecause(stat: { uid: number; mode: number }): string | undefined {
  if (stat.uid !== 0) return `owned by uid ${stat.uid}, not root`;
  if ((stat.mode & 0o022) !== 0 && (stat.mode & 0o1000) === 0) return `writable by ${{ 0o020: 'its group', 0o002: 'others', 0o022: 'its group and others' }[stat.mode & 0o022]} without the sticky bit (mode ${(stat.mode & 0o7777).toString(8).padStart(4, '0')})`;
  return undefined;
}
