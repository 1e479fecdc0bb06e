// A hard link refused for want of room (ENOSPC, or EDQUOT: a quota) is met by a rename: the
// taker of a dead lock moving it to the one aside name (lock-takeover.ts moveAsideNoReplace), a
// backup committing its archive (storage/local.ts commit). Node 20's libuv has no name for
// EDQUOT: the error's code is "Unknown system error -122", which neither compared equal to, so
// under a quota each failed in one line, "disk quota exceeded" (exit 1): the backup after writing
// its whole archive, the takeover leaving the tenant locked by the dead lock. Errors are named by
// their number now (errnoCode). strace fails the one link (-P: only calls naming that path).
// The rename that stands in for the commit's link never replaces what came to the name since.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { lockPathFor, oneAsideNameFor } from '../shared/tenant/lock.js';
import { onTmpfs } from './helpers/tmpfs.js';
import { cliPath, runCli, tempDir } from './helpers/tree.js';

const hasStrace = existsSync('/usr/bin/strace');

/** The built CLI with `args`, every link(2) naming `linkPath` failing with `errno`. */
function cliWithLinkFailing(linkPath: string, errno: string, args: string[]) {
  return spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', '-P', linkPath, '-e', 'trace=link,linkat', '-e', `inject=link,linkat:error=${errno}`, process.execPath, cliPath, ...args], { encoding: 'utf8' });
}

describe.skipIf(!hasStrace)('a hard link refused for want of room', () => {
  const dir = tempDir('openclaw-link-quota-');
  afterAll(() => dir.cleanup());

  function tenantBase(name: string): string {
    const base = path.join(dir.path, name);
    mkdirSync(path.join(base, 'acme'), { recursive: true });
    writeFileSync(path.join(base, 'acme', 'a.txt'), 'live\n');
    return base;
  }

  it.each(['EDQUOT', 'ENOSPC'])('a backup whose commit cannot link its archive (%s) renames it into place', (errno) => {
    const base = tenantBase(`commit-${errno}`);
    const to = path.join(dir.path, `out-${errno}`, 'acme.tar.zst');
    const run = cliWithLinkFailing(to, errno, ['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', to]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(readdirSync(path.dirname(to))).toEqual(['acme.tar.zst']);
    expect(runCli(['--tenants-dir', base, 'tenants', 'verify', '--from', to]).status).toBe(0);
  });

  // The rename that stands in for the link (mv -n -T) failing for want of room too was said in
  // mv's words, naming the temporary archive, as an I/O failure: --json code IO, not NO_SPACE.
  it.each([
    ['ENOSPC', 'NO_SPACE', 'no space left on the device'],
    ['EDQUOT', 'NO_SPACE', 'disk quota exceeded'],
    ['EACCES', 'ACCESS_DENIED', 'permission denied'],
  ])('a backup whose commit can neither link nor rename its archive (%s) says it as its own error, code %s', (errno, code, words) => {
    const base = tenantBase(`commit-rename-${errno}`);
    const to = path.join(dir.path, `out-rename-${errno}`, 'acme.tar.zst');
    const run = spawnSync(
      'strace',
      ['-f', '-qq', '-o', '/dev/null', '-P', to, '-e', 'trace=link,linkat,renameat2', '-e', 'inject=link,linkat:error=ENOSPC', '-e', `inject=renameat2:error=${errno}`, process.execPath, cliPath, '--json', '--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', to],
      { encoding: 'utf8' },
    );
    expect(run.status).toBe(1);
    expect(JSON.parse(run.stdout)).toEqual({ error: { code, message: `cannot write ${to}: ${words}` } });
    expect(run.stderr).toBe(`openclaw: cannot write ${to}: ${words}\n`);
    // Nothing stored, no temporary archive left (the directory the backup made goes too).
    expect(existsSync(path.dirname(to)) ? readdirSync(path.dirname(to)) : []).toEqual([]);
  });

  /**
   * The built CLI with `args`: its commit's link to `to` fails EDQUOT and every rename waits
   * `holdSeconds` before it is made; `meanwhile` runs once the link has failed.
   */
  async function backupWhileRenameHeld(to: string, holdSeconds: number, args: string[], meanwhile: () => void) {
    const log = path.join(dir.path, `${path.basename(path.dirname(to))}.strace`);
    const child = spawn('strace', ['-f', '-qq', '-o', log, '-e', 'trace=link,rename,renameat2', '-e', 'inject=link:error=EDQUOT', '-e', `inject=rename,renameat2:delay_enter=${holdSeconds * 1_000_000}`, process.execPath, cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    let exited = false;
    const status = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(((exited = true), code))));
    const linkFailed = `"${to}") = -1 EDQUOT`;
    while (!exited && !(existsSync(log) && readFileSync(log, 'utf8').includes(linkFailed))) await new Promise((resolve) => setTimeout(resolve, 20));
    meanwhile();
    return { status: await status, stderr };
  }

  // "Check the name is free, then rename" replaced what came to the name between the two (the
  // rename replaces): a file written there while the rename was held was gone, and the backup
  // said it had stored its archive (exit 0). The rename never replaces now (RENAME_NOREPLACE).
  it('a file put at the archive\'s name after the link failed is kept, and the backup is refused as it exists', async () => {
    const base = tenantBase('commit-window');
    const to = path.join(dir.path, 'out-window', 'acme.tar.zst');
    const run = await backupWhileRenameHeld(to, 2, ['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', to], () => writeFileSync(to, 'an archive of its own\n'));
    expect([run.status, run.stderr]).toEqual([3, expect.stringMatching(/already exists: pass --overwrite/)]);
    expect(readFileSync(to, 'utf8')).toBe('an archive of its own\n');
    expect(readdirSync(path.dirname(to)).filter((name) => name.endsWith('.partial'))).toEqual([]);
  }, 30_000);

  // The same between two tenants' backups to one `--to` on a tmpfs with no inode left once both
  // temporary archives are there (no error injected: each link fails ENOSPC; links and renames
  // held so that both have failed before either renames): both said they had stored their
  // archive, and the first's was replaced by the second's.
  it("of two backups to one name on a tmpfs with no inode for a link, one stores its archive and the other is refused", async (context) => {
    const base = tenantBase('two-tenants');
    mkdirSync(path.join(base, 'beta'));
    writeFileSync(path.join(base, 'beta', 'b.txt'), 'beta\n');
    const disk = path.join(dir.path, 'two-tenants-disk');
    await onTmpfs(context, disk, 'size=4m,nr_inodes=6', async () => {
      for (let i = 0; ; i++) {
        try {
          writeFileSync(path.join(disk, `filler-${i}`), '');
        } catch {
          rmSync(path.join(disk, 'filler-0'));
          rmSync(path.join(disk, 'filler-1'));
          break;
        }
      }
      const to = path.join(disk, 'shared.tar.zst');
      const runs = await Promise.all(
        ['acme', 'beta'].map(
          (tenant) =>
            new Promise<{ status: number | null; stderr: string }>((resolve) => {
              const child = spawn('strace', ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=link,rename,renameat2', '-e', 'inject=link:delay_enter=1500000', '-e', 'inject=rename,renameat2:delay_enter=2000000', process.execPath, cliPath, '--tenants-dir', base, 'tenants', 'backup', tenant, '--to', to], { stdio: ['ignore', 'ignore', 'pipe'] });
              let stderr = '';
              child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
              child.on('close', (status) => resolve({ status, stderr }));
            }),
        ),
      );
      expect(runs.map((run) => run.status).sort()).toEqual([0, 3]);
      const refused = runs.find((run) => run.status === 3);
      expect(refused?.stderr).toMatch(/already exists: pass --overwrite/);
      expect(readdirSync(disk).filter((name) => !name.startsWith('filler-'))).toEqual(['shared.tar.zst']);
      const stored = runs[0]?.status === 0 ? 'acme' : 'beta';
      const verified = runCli(['--tenants-dir', base, 'tenants', 'verify', '--from', to]);
      expect([verified.status, verified.stdout]).toEqual([0, expect.stringContaining(`holds tenant "${stored}"`)]);
    });
  }, 30_000);

  it.each(['EDQUOT', 'ENOSPC'])("a takeover of a dead holder's lock that cannot link it to the aside name (%s) renames it there, and the backup goes on", (errno) => {
    const base = tenantBase(`takeover-${errno}`);
    const lock = lockPathFor(base, 'acme');
    writeFileSync(lock, JSON.stringify({ token: 'dead', pid: 2 ** 22 + 99, host: hostname(), operation: 'backup', startedAt: '2026-01-01T00:00:00Z' }));
    const old = new Date(Date.now() - 120_000);
    utimesSync(lock, old, old);
    const to = path.join(dir.path, `takeover-${errno}.tar.zst`);
    const run = cliWithLinkFailing(oneAsideNameFor(lock), errno, ['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', to]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(readdirSync(base)).toEqual(['acme']);
    expect(existsSync(to)).toBe(true);
  });
});
