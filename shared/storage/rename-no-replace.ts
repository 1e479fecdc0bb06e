// A rename that never replaces what is at its destination: renameat2(RENAME_NOREPLACE), for
// which Node has no call, made by GNU mv (`mv -n` tries it first, and where the file system
// refuses the flag falls back to its own check-then-rename).

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat } from 'node:fs/promises';

const MV_PATHS = ['/usr/bin/mv', '/bin/mv'];
const STDERR_LIMIT = 4096;
/**
 * The errors a rename within one directory meets, by the words mv ends its line with (strerror's
 * under LC_ALL=C, glibc's and musl's), so that the caller says them as its own: a full disk had
 * been said in mv's words with the temporary archive's name, as an I/O failure (`code` IO, not
 * NO_SPACE, and without "no inode left" where that is what is short).
 */
const MV_ERRORS: readonly (readonly [code: string, words: string])[] = [
  ['ENOSPC', 'No space left on device'],
  ['EDQUOT', 'Disk quota exceeded'],
  ['EDQUOT', 'Quota exceeded'],
  ['EACCES', 'Permission denied'],
  ['EPERM', 'Operation not permitted'],
  ['EROFS', 'Read-only file system'],
  ['ENAMETOOLONG', 'File name too long'],
  ['ENOTDIR', 'Not a directory'],
  ['EIO', 'Input/output error'],
  ['EIO', 'I/O error'],
];

export type NoReplaceOutcome =
  | { kind: 'renamed' }
  /** Something is at the destination: it is left as it was, and the source is still there. */
  | { kind: 'exists' }
  /**
   * The rename failed for another reason (its first line of stderr, and the error's code where
   * mv's words name one: MV_ERRORS); both names as they were.
   */
  | { kind: 'failed'; reason: string; code?: string }
  /** No mv to run: the caller has no rename that never replaces. */
  | { kind: 'unavailable' };

/**
 * Renames `from` to `to` (same directory: no copy) unless `to` exists. The outcome is judged by
 * the names afterwards (lstat), not by mv's exit status or words, which differ between versions.
 * Throws the lstat error of `from` (ENOENT) when the source is not there to begin with.
 */
export async function renameNoReplace(from: string, to: string): Promise<NoReplaceOutcome> {
  const mv = MV_PATHS.find((candidate) => existsSync(candidate));
  if (mv === undefined) return { kind: 'unavailable' };
  const source = await lstat(from);
  const run = await new Promise<{ started: boolean; stderr: string }>((resolve) => {
    let stderr = '';
    const child = spawn(mv, ['-n', '-T', '--', from, to], { stdio: ['ignore', 'ignore', 'pipe'], env: { LC_ALL: 'C' } });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      if (stderr.length < STDERR_LIMIT) stderr += chunk.slice(0, STDERR_LIMIT - stderr.length);
    });
    child.on('error', () => resolve({ started: false, stderr }));
    child.on('close', () => resolve({ started: true, stderr }));
  });
  if (!run.started) return { kind: 'unavailable' };
  const left = await lstat(from).then(
    (now) => now.ino === source.ino && now.dev === source.dev,
    () => false,
  );
  const there = await lstat(to).then(
    () => true,
    () => false,
  );
  if (left && there) return { kind: 'exists' };
  if (!left && there) return { kind: 'renamed' };
  if (left) {
    const reason = run.stderr.split('\n')[0]?.replace(/^[^:]*mv: /, '').trim() || 'mv failed';
    const code = MV_ERRORS.find(([, words]) => reason.endsWith(`: ${words}`))?.[0];
    return { kind: 'failed', reason, ...(code !== undefined && { code }) };
  }
  // Neither name: the source was removed meanwhile (another command's sweep).
  throw Object.assign(new Error(`ENOENT: no such file or directory, rename '${from}' -> '${to}'`), { code: 'ENOENT', errno: -2, path: from });
}
