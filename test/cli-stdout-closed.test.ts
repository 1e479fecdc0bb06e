// A command started with stdout closed (`openclaw tenants list >&-`) writes its result
// nowhere: as GNU tools do (`ls >&-`: "write error: Bad file descriptor"), it fails, so a
// script does not take the lost output for a success. Node itself puts /dev/null in place of
// a closed descriptor, so only the launcher (run as a command, through its shell line) can tell.
import { spawnSync } from 'node:child_process';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { createSampleTenant } from '../scripts/sample-tenant.js';
import { cliPath, tempDir } from './helpers/tree.js';

let dir: ReturnType<typeof tempDir>;
let base: string;

beforeEach(() => {
  dir = tempDir('openclaw-stdout-closed-');
  base = path.join(dir.path, 'tenants');
  createSampleTenant(path.join(base, 'acme'), { sessions: 1, memoryRows: 2 });
});
afterEach(() => dir.cleanup());

/** The launcher run by sh, as a crontab or a script runs `openclaw`, its stdout as `redirect` leaves it. */
function launched(args: string, redirect: string): { status: number | null; stderr: string } {
  const result = spawnSync('/bin/sh', ['-c', `"$CLI" --tenants-dir "$BASE" ${args} ${redirect}`], {
    encoding: 'utf8',
    env: { ...process.env, OPENCLAW_NODE: process.execPath, CLI: cliPath, BASE: base, BACKUPS: path.join(dir.path, 'backups') },
  });
  return { status: result.status, stderr: result.stderr };
}

describe('with stdout closed (>&-)', () => {
  it.each(['tenants list', 'tenants list --json', 'tenants list --names', 'tenants backups acme --in "$BASE" --json'])('%s fails in one line, exit 1 (it exited 0, the output lost)', (args) => {
    const { status, stderr } = launched(args, '>&-');
    expect(stderr).toBe('openclaw: cannot write the output: stdout is closed (EBADF)\n');
    expect(status).toBe(1);
  });

  it('a backup is done and then fails for its lost result line', () => {
    const { status, stderr } = launched('tenants backup acme --to "$BACKUPS/acme.tar.zst"', '>&-');
    expect({ status, stderr }).toEqual({ status: 1, stderr: 'openclaw: cannot write the output: stdout is closed (EBADF)\n' });
    expect(launched('tenants verify --from "$BACKUPS/acme.tar.zst"', '>/dev/null').status).toBe(0);
  });

  it('an error keeps its own exit code and line; the JSON of it is not attempted', () => {
    const { status, stderr } = launched('tenants backup nobody --to "$BACKUPS/nobody.tar.zst" --json', '>&-');
    expect(status).toBe(3);
    expect(stderr).toMatch(/^openclaw: [^\n]*nobody[^\n]*\n$/);
  });
});

describe('with stdout on a full disk (>/dev/full)', () => {
  it.each(['tenants list', 'tenants list --json', 'tenants backups acme --in "$BASE"'])('%s fails in one line that says why in words, exit 1', (args) => {
    expect(launched(args, '>/dev/full')).toEqual({ status: 1, stderr: 'openclaw: cannot write the output: no space left on the device (ENOSPC)\n' });
  });
});

describe('with stdout to /dev/null or a reader that leaves', () => {
  it('succeeds quietly', () => {
    expect(launched('tenants list', '>/dev/null')).toEqual({ status: 0, stderr: '' });
    const piped = spawnSync('/bin/sh', ['-c', '{ "$CLI" --tenants-dir "$BASE" tenants list --names; echo "exit $?" >&2; } | head -c 0'], {
      encoding: 'utf8',
      env: { ...process.env, OPENCLAW_NODE: process.execPath, CLI: cliPath, BASE: base },
    });
    expect({ status: piped.status, stderr: piped.stderr }).toEqual({ status: 0, stderr: 'exit 0\n' });
  });
});
