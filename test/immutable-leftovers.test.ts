// A tenant holding an immutable (`chattr +i`) or append-only (`chattr +a`) file: not even
// root can unlink it, so the old tree a `restore --force` moved to trash stays. Before, every
// later command on the tenant tried to delete that trash first and failed on it, naming a
// procfs path ("unexpected error: EPERM … unlink "/proc/self/fd/19/app""): the tenant's
// nightly backup failed until someone found the attribute. Now the backup (and a restore)
// goes on with a note naming the real path and the attribute; `tenants recover`, whose job
// the removal is, fails in one line that says the same. Root only (chattr), and only where
// the temp dir's file system takes the attributes.

import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { cliPath, runCli, sh, tempDir } from './helpers/tree.js';

const isRoot = process.geteuid?.() === 0;

function chattr(flags: string, target: string): boolean {
  return spawnSync('chattr', [flags, target], { stdio: 'ignore' }).status === 0;
}

let dir: ReturnType<typeof tempDir>;
let base: string;
beforeEach(() => {
  dir = tempDir();
  base = path.join(dir.path, 'tenants');
});
afterEach(() => {
  // The attributes first: otherwise the temp dir cannot be removed either.
  spawnSync('chattr', ['-R', '-i', '-a', dir.path], { stdio: 'ignore' });
  dir.cleanup();
});

/** Whether chattr works here (root, a file system that keeps the attributes). */
function attributesWork(): boolean {
  const probe = path.join(dir.path, 'probe');
  writeFileSync(probe, '');
  const works = chattr('+i', probe);
  chattr('-i', probe);
  return works;
}

describe.skipIf(!isRoot)('a tenant whose old tree holds an immutable or append-only file', () => {
  for (const [kind, flag] of [
    ['immutable', '+i'],
    ['append-only', '+a'],
  ] as const) {
    it(`${kind}: restore --force, then backup, go on with a note naming the real path; recover fails in one line until the attribute is cleared`, (context) => {
      if (!attributesWork()) context.skip();
      mkdirSync(path.join(base, 'acme', 'sessions'), { recursive: true });
      writeFileSync(path.join(base, 'acme', 'config.json'), '{}');
      writeFileSync(path.join(base, 'acme', 'sessions', 'locked.log'), 'kept by the kernel');
      expect(chattr(flag, path.join(base, 'acme', 'sessions', 'locked.log'))).toBe(true);
      const archive = path.join(dir.path, 'acme.tar.zst');
      expect(runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', archive]).status).toBe(0);

      // The old tenant goes to trash, which cannot be emptied: the restore itself succeeded.
      const restore = runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive, '--force']);
      expect(restore.stderr).toBe('');
      expect(restore.status).toBe(0);
      const trash = readdirSync(base).filter((name) => name.startsWith('.openclaw-trash-acme-'));
      expect(trash).toHaveLength(1);
      const locked = path.join(base, trash[0]!, 'sessions', 'locked.log');
      expect(restore.stdout).toContain(`cannot remove ${locked}: operation not permitted (an immutable or append-only file or directory?`);
      expect(restore.stdout).not.toContain('/proc/self/fd');

      // The next backup is not refused for a tree it never reads.
      const backup = runCli(['--tenants-dir', base, '--json', 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'again.tar.zst')]);
      expect(backup.stderr).toBe('');
      expect(backup.status).toBe(0);
      const result = JSON.parse(backup.stdout) as { files: number; notices: string[] };
      expect(result.files).toBe(2);
      expect(result.notices).toEqual([
        `a leftover of an earlier operation (nothing in it is kept) could not be removed, and the next command tries again: cannot remove ${locked}: operation not permitted (an immutable or append-only file or directory? \`lsattr -d\` shows it, \`chattr -i -a\` clears it)`,
      ]);

      // recover is the command that removes it: it says why it cannot, in one line.
      const recover = runCli(['--tenants-dir', base, 'tenants', 'recover', 'acme']);
      expect(recover.status).toBe(1);
      expect(recover.stderr).toBe(`openclaw: cannot remove ${locked}: operation not permitted (an immutable or append-only file or directory? \`lsattr -d\` shows it, \`chattr -i -a\` clears it)\n`);

      expect(chattr(`-${flag.slice(1)}`, locked)).toBe(true);
      expect(runCli(['--tenants-dir', base, 'tenants', 'recover', 'acme']).status).toBe(0);
      expect(readdirSync(base)).toEqual(['acme']);
    });
  }
});

// recover --keep carried out the choice (the kept tree in the slot, the journal gone) and then
// exited 1 with only "cannot remove …" when the trash of the others could not be deleted: a
// script, or an operator, read that the decision had failed.
describe.skipIf(!isRoot)('recover --keep whose trash cannot be deleted', () => {
  it('carries out the choice, says so, exits 0, and names the file it could not delete', (context) => {
    if (!attributesWork()) context.skip();
    const staging = '.openclaw-staging-gamma-0123456789ab';
    const aside = '.openclaw-aside-gamma-ba9876543210';
    mkdirSync(path.join(base, staging), { recursive: true });
    writeFileSync(path.join(base, staging, 'config.json'), 'new tenant');
    mkdirSync(path.join(base, aside, 'sessions'), { recursive: true });
    writeFileSync(path.join(base, aside, 'config.json'), 'old tenant');
    writeFileSync(path.join(base, aside, 'sessions', 'locked.log'), 'kept by the kernel');
    expect(chattr('+i', path.join(base, aside, 'sessions', 'locked.log'))).toBe(true);
    writeFileSync(path.join(base, '.openclaw-journal-gamma.json'), JSON.stringify({ tenant: 'gamma', phase: 'committing', staging, aside }));
    mkdirSync(path.join(base, 'gamma', 'sessions'), { recursive: true });
    writeFileSync(path.join(base, 'gamma', 'sessions', 'live.jsonl'), 'the gateway wrote this');

    const kept = runCli(['--tenants-dir', base, 'tenants', 'recover', 'gamma', '--keep', 'new']);
    expect(kept.stderr).toBe('');
    expect(kept.status).toBe(0);
    expect(readFileSync(path.join(base, 'gamma', 'config.json'), 'utf8')).toBe('new tenant');
    const trash = readdirSync(base).filter((name) => name.startsWith('.openclaw-trash-gamma-'));
    expect(trash).toHaveLength(1);
    const locked = path.join(base, trash[0]!, 'sessions', 'locked.log');
    expect(kept.stdout).toBe(
      'Tenant "gamma": kept the restored tenant; moved the others to trash, which could not all be deleted\n' +
        `  note: a leftover of an earlier operation (nothing in it is kept) could not be removed, and the next command tries again: cannot remove ${locked}: operation not permitted (an immutable or append-only file or directory? \`lsattr -d\` shows it, \`chattr -i -a\` clears it)\n`,
    );
    const json = runCli(['--tenants-dir', base, '--json', 'tenants', 'list']);
    expect(JSON.parse(json.stdout)).toMatchObject({ tenants: [{ name: 'gamma', files: 1 }] });
    expect(json.stdout).not.toContain('needs-recovery');

    // recover without --keep is the command that removes leftovers: it still fails on it.
    expect(runCli(['--tenants-dir', base, 'tenants', 'recover', 'gamma']).status).toBe(1);
    expect(chattr('-i', locked)).toBe(true);
    expect(runCli(['--tenants-dir', base, 'tenants', 'recover', 'gamma']).status).toBe(0);
    expect(readdirSync(base)).toEqual(['gamma']);
  });
});

describe.runIf(isRoot && existsSync('/usr/bin/setpriv'))('a leftover the tenants\' user cannot remove (a run as root left a directory of its own in it)', () => {
  it('the backup goes on with a note in words naming the path, not an "unexpected error"', () => {
    const NOBODY = 65534;
    chmodSync(dir.path, 0o755);
    mkdirSync(path.join(base, 'acme'), { recursive: true });
    writeFileSync(path.join(base, 'acme', 'config.json'), '{}');
    const rootsDir = path.join(base, '.openclaw-trash-acme-0123456789ab', 'cache');
    mkdirSync(rootsDir, { recursive: true });
    writeFileSync(path.join(rootsDir, 'f'), 'x');
    sh(`chown -R ${NOBODY}:${NOBODY} ${JSON.stringify(dir.path)}`);
    chownSync(rootsDir, 0, 0); // mode 0755: nobody can neither unlink in it nor chmod it
    chownSync(path.join(rootsDir, 'f'), 0, 0);
    const run = spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, cliPath, '--tenants-dir', base, '--json', 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'acme.tar.zst')], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const notices = (JSON.parse(run.stdout) as { notices: string[] }).notices;
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatch(/^a leftover of an earlier operation \(nothing in it is kept\) could not be removed, and the next command tries again: (permission denied|operation not permitted) \(/);
    expect(notices[0]).toContain(rootsDir);
    expect(notices[0]).not.toContain('unexpected error');
    expect(existsSync(path.join(rootsDir, 'f'))).toBe(true);

    // `tenants recover`, whose job the removal is, failed every run saying "the next command on
    // the tenant goes on from there": it now says who can remove the leftover.
    const recover = spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, cliPath, '--tenants-dir', base, 'tenants', 'recover', 'acme'], { encoding: 'utf8' });
    expect(recover.status).toBe(1);
    expect(recover.stderr).toBe(
      `openclaw: cannot recover tenant "acme": permission denied (${path.join(rootsDir, 'f')}): ${rootsDir} belongs to uid 0, not to this user (uid ${NOBODY}), who cannot remove what is in it; ` +
        `run \`openclaw tenants recover acme\` as root, or have that user remove ${rootsDir}\n`,
    );
    expect(runCli(['--tenants-dir', base, 'tenants', 'recover', 'acme']).status).toBe(0);
    expect(readdirSync(base)).toEqual(['acme']);
  });
});
