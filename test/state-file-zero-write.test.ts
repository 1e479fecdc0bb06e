// A write that takes none of its bytes (a FUSE file system, one about to fill) into the small
// state files a backup or restore writes through FileHandle.writeFile (the tenant lock's
// record, the restore journal, the trash marker): Node's writeFile retries a write that wrote
// nothing for good. Before, a backup whose lock record got 0 spun at 40% CPU for 10 minutes
// (killed), deaf to SIGTERM, its lock's temporary file left; now each is written whole or fails
// ENOSPC. The writes are answered 0 by an LD_PRELOAD library (fixtures/zero-write-preload.c)
// for files whose path holds a given name; the spawn's timeout only stops a run that would spin.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { buildPreload, hasCompiler } from './helpers/preload.js';
import { cliPath, runCli, tempDir } from './helpers/tree.js';

/** Far more than any of these runs takes when it ends; a spinning one is stopped here. */
const SPIN_GUARD_MS = 60_000;

describe.skipIf(!hasCompiler)('a state file whose write takes none of its bytes', () => {
  const dir = tempDir('openclaw-zero-write-');
  const preload = path.join(dir.path, 'zero-write.so');
  const base = path.join(dir.path, 'tenants');
  const archive = path.join(dir.path, 'acme.tar.zst');
  beforeAll(() => {
    buildPreload('zero-write-preload.c', preload);
    mkdirSync(path.join(base, 'acme'), { recursive: true });
    writeFileSync(path.join(base, 'acme', 'notes.txt'), 'kept\n');
    expect(runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', archive]).status).toBe(0);
  });
  afterAll(() => dir.cleanup());

  const runAnswering0 = (match: string, args: string[]) =>
    spawnSync(process.execPath, [cliPath, '--tenants-dir', base, ...args], {
      encoding: 'utf8',
      env: { ...process.env, LD_PRELOAD: preload, ZERO_WRITE_MATCH: match },
      timeout: SPIN_GUARD_MS,
      killSignal: 'SIGKILL',
    });

  it('a restore whose journal gets none fails in one line, the tenant as it was, nothing left', () => {
    writeFileSync(path.join(base, 'acme', 'notes.txt'), 'changed since\n');
    const run = runAnswering0('.openclaw-journal-', ['tenants', 'restore', '--from', archive, '--force']);
    expect(run.signal).toBeNull();
    expect(run.stderr).toBe(`openclaw: cannot write the restore journal ${path.join(base, '.openclaw-journal-acme.json')}: no space left on the device\n`);
    expect(run.status).toBe(1);
    expect(readFileSync(path.join(base, 'acme', 'notes.txt'), 'utf8')).toBe('changed since\n');
    expect(readdirSync(base)).toEqual(['acme']);
  });

  it("a backup whose lock record gets none holds the tenant by an empty lock, as on a full disk, and leaves no lock", () => {
    const to = path.join(dir.path, 'again.tar.zst');
    const run = runAnswering0('.openclaw-lock-', ['tenants', 'backup', 'acme', '--to', to]);
    expect(run.signal).toBeNull();
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(existsSync(to)).toBe(true);
    expect(readdirSync(base)).toEqual(['acme']);
  });
});
