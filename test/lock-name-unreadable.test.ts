// A lock name that creating says is taken (link: EEXIST) and every read says is absent
// (open: ENOENT), as a network mount's cached lookup can answer: the command had looped on
// "released between our attempt and the read" for good, deaf to SIGINT (backup --all on a
// 1 ms latency mount: 10 minutes, no archive made). strace makes every open of the lock's
// name fail ENOENT while the file is there.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { cliPath, tempDir } from './helpers/tree.js';

describe.runIf(existsSync('/usr/bin/strace'))('a lock name that exists but cannot be read', () => {
  const dir = tempDir();
  afterAll(() => dir.cleanup());

  it('stops the backup with one line instead of looping for good', () => {
    const base = path.join(dir.path, 'tenants');
    mkdirSync(path.join(base, 'acme', 'workspace'), { recursive: true });
    writeFileSync(path.join(base, 'acme', 'workspace', 'a.json'), '{}\n');
    const lockPath = path.join(base, '.openclaw-lock-acme');
    writeFileSync(lockPath, 'x');
    const to = path.join(dir.path, 'acme.tar.zst');
    const run = spawnSync(
      'strace',
      ['-f', '-qq', '-o', '/dev/null', '-P', lockPath, '-e', 'trace=openat', '-e', 'inject=openat:error=ENOENT', process.execPath, cliPath, '--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', to],
      { encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' },
    );
    expect(run.signal).toBeNull();
    expect(run.status).toBe(1);
    expect(run.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^openclaw: cannot take the lock .*\.openclaw-lock-acme: 200 times creating it said the name is taken and reading it said there is no such file/)]);
    expect(existsSync(to)).toBe(false);
  }, 90_000);
});
