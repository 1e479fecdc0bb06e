// A local path as the user meant it: one a shell would have changed but did not, or one written
// for another system, is refused rather than taken as a name in the working directory.

import os from 'node:os';

import { UsageError } from './errors.js';

/**
 * Refuses `value` (what `what` names: `--to`, `OPENCLAW_TENANTS_DIR`…) when it starts with `~`,
 * which a shell expands only at the start of a word (not quoted, not after `--to=`, not in an
 * environment file), or is a Windows path (`C:\x`, `C:/x`, `\\server\share`, `file:///C:/x`):
 * taken as they are, they name `./~/x` or a file `C:\x` in the working directory (`/C:/x` for
 * the URL), where a restore created a whole tenant base dir (`--tenants-dir=~/tenants`) and a
 * backup its archive. `./` before such a name keeps it.
 */
export function assertLocalPath(value: string, what: string): void {
  const shown = JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  const keep = '(a file or directory of that name: prefix it with ./)';
  if (value.startsWith('~')) {
    const meant = /^~(?:\/|$)/.test(value) ? expandedHome(value.slice(1)) : undefined;
    throw new UsageError(
      `${what} ${shown} starts with ~, which no shell expanded (it was quoted, followed =, or came from a file): write ${meant === undefined ? 'the path from /' : JSON.stringify(meant)} ${keep}`,
    );
  }
  if (/^[a-z]:(?:[\\/]|$)/i.test(value) || value.startsWith('\\\\')) {
    throw new UsageError(`${what} ${shown} is a Windows path: write a path of this machine, from / ${keep}`);
  }
  // A Windows file URL (`file:///C:/b/x`, `file://C:/b/x`) reads here as /C:/b/x: a backup
  // created a directory C: at the root.
  const drive = /^file:\/\/\/?([a-z]:)(?:[\\/]|$)/i.exec(value)?.[1];
  if (drive !== undefined) {
    throw new UsageError(`${what} ${shown} is a Windows file URL: write a path of this machine, from / (a directory ${drive} at the root: write its path, /${drive}/…, without file://)`);
  }
}

/** `$HOME` + `rest` when the home directory is known and absolute, else undefined. */
function expandedHome(rest: string): string | undefined {
  let home: string;
  try {
    home = os.homedir();
  } catch {
    return undefined;
  }
  return home.startsWith('/') ? `${home.replace(/\/+$/, '')}${rest === '' ? '' : rest}` || '/' : undefined;
}
