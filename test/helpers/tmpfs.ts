import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import type { TestContext } from 'vitest';

/**
 * Runs `body` on a tmpfs mounted at `disk` (made here) with mount `options` (its size, its
 * inodes), unmounted and removed afterwards; skips the test where mounting needs root.
 */
export async function onTmpfs(context: TestContext, disk: string, options: string, body: (disk: string) => Promise<void>): Promise<void> {
  mkdirSync(disk);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', disk], { stdio: 'ignore' });
  } catch {
    rmSync(disk, { recursive: true, force: true });
    context.skip('mounting a tmpfs needs root');
    return;
  }
  try {
    await body(disk);
  } finally {
    execFileSync('umount', [disk]);
    rmSync(disk, { recursive: true, force: true });
  }
}
