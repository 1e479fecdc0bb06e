// Names and link targets that are not valid UTF-8 (a zip unpacked from a Latin-1 source,
// `touch $'caf\xe9'`) through the built CLI: backed up and restored as their bytes, in an
// archive GNU tar extracts to the same bytes, and GNU tar's own archives of them restored.

import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { cliPath, runCli, sh, tempDir } from './helpers/tree.js';

/** A path's bytes: `latin1` holds one byte per character. */
const bytes = (latin1: string) => Buffer.from(latin1, 'latin1');

/** Every entry below `root` by its bytes (as latin1 text): type, content or target, and which names share an inode. */
function treeOf(root: string): Record<string, string> {
  const tree: Record<string, string> = {};
  const inodes = new Map<number, string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(bytes(dir), { encoding: 'buffer' }).map((entry) => entry.toString('latin1')).sort()) {
      const full = `${dir}/${name}`;
      const relative = full.slice(root.length + 1);
      const stat = lstatSync(bytes(full));
      if (stat.isDirectory()) {
        tree[relative] = 'dir';
        walk(full);
      } else if (stat.isSymbolicLink()) tree[relative] = `-> ${readlinkSync(bytes(full), { encoding: 'buffer' }).toString('latin1')}`;
      else {
        const first = inodes.get(stat.ino);
        if (first === undefined) inodes.set(stat.ino, relative);
        tree[relative] = `${readFileSync(bytes(full)).toString('latin1')}${first === undefined ? '' : ` (= ${first})`}`;
      }
    }
  };
  walk(root);
  return tree;
}

describe('names that are not UTF-8, through the CLI', () => {
  const dir = tempDir();
  const gatewayA = path.join(dir.path, 'a');
  const tenant = path.join(gatewayA, 'acme');
  const archive = path.join(dir.path, 'acme.tar.zst');
  let original: Record<string, string>;

  beforeAll(() => {
    const at = (latin1: string) => bytes(`${tenant}/${latin1}`);
    mkdirSync(at('d\xe9'), { recursive: true });
    writeFileSync(at('caf\xe9'), 'latin-1 name');
    writeFileSync(at('caf\xc3\xa9'), 'the same name in UTF-8: another file');
    writeFileSync(at('d\xe9/f\xff\xfe'), 'under a Latin-1 directory');
    symlinkSync(bytes('caf\xe9'), at('l\xff'));
    symlinkSync(bytes('d\xe9/f\xff\xfe'), at('deep-link'));
    linkSync(at('caf\xe9'), at('h\xe9'));
    original = treeOf(tenant);
  });
  afterAll(() => dir.cleanup());

  it('backs them up with no warning, restores them (--as too) as their bytes, verified against the manifest', () => {
    const backup = runCli(['--tenants-dir', gatewayA, '--json', 'tenants', 'backup', 'acme', '--to', archive]);
    expect(backup.stderr).toBe('');
    expect(backup.status).toBe(0);
    const result = JSON.parse(backup.stdout);
    expect([result.skipped, result.warnings]).toEqual([[], []]);
    expect(result.files).toBe(4);

    const gatewayB = path.join(dir.path, 'b');
    const restore = runCli(['--tenants-dir', gatewayB, '--json', 'tenants', 'restore', '--from', archive, '--as', 'copy']);
    expect(restore.stderr).toBe('');
    expect(JSON.parse(restore.stdout)).toMatchObject({ tenant: 'copy', verified: true, files: 4, hardlinks: 1 });
    expect(treeOf(path.join(gatewayB, 'copy'))).toEqual(original);
    expect(original['h\xe9']).toBe('latin-1 name (= caf\xe9)');

    // Over the tenant that holds them (its old tree removed), and checked without writing.
    expect(runCli(['--tenants-dir', gatewayB, 'tenants', 'restore', '--from', archive, '--as', 'copy', '--force']).status).toBe(0);
    expect(readdirSync(gatewayB)).toEqual(['copy']);
    expect(runCli(['--tenants-dir', gatewayB, 'tenants', 'verify', '--from', archive]).status).toBe(0);
  });

  it('shows them escaped, a bad byte as \\udcXX', () => {
    const dryRun = runCli(['--tenants-dir', gatewayA, 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'unused.tar.zst'), '--dry-run']);
    expect(dryRun.status).toBe(0);
    expect(dryRun.stdout).toContain('caf\\udce9');
    expect(dryRun.stdout).not.toMatch(/[\ud800-\udfff\ufffd]/);
  });

  it('writes an archive GNU tar extracts to the same bytes', () => {
    const gnu = path.join(dir.path, 'gnu-extract');
    mkdirSync(gnu);
    sh(`zstd -dc '${archive}' | LC_ALL=C.UTF-8 tar -xf - -C '${gnu}' --exclude=.openclaw-backup-manifest.json`);
    expect(treeOf(path.join(gnu, 'tenants', 'acme'))).toEqual(original);
  });

  it.each(['posix', 'gnu'])('restores GNU tar\'s archive of them (--format=%s)', (format) => {
    const foreign = path.join(dir.path, `gnu-${format}.tar.zst`);
    sh(`LC_ALL=C.UTF-8 tar --format=${format} -C '${gatewayA}' -cf - acme --transform='flags=rh;s,^,tenants/,' | zstd -q > '${foreign}'`);
    const gateway = path.join(dir.path, `from-${format}`);
    const restore = runCli(['--tenants-dir', gateway, 'tenants', 'restore', '--from', foreign]);
    expect(restore.stderr).toBe('');
    expect(restore.status).toBe(0);
    expect(treeOf(path.join(gateway, 'acme'))).toEqual(original);
  });
});

describe('names that are not UTF-8, backed up where procfs is not mounted (as the tenants\' user)', () => {
  it('archives what is under a directory of such a name (listed by its text path, it "vanished during backup", its files left out)', (context) => {
    if (process.geteuid?.() !== 0 || !existsSync('/usr/bin/setpriv') || spawnSync('unshare', ['-m', 'true']).status !== 0) return context.skip('needs root, setpriv and unshare');
    const NOBODY = 65534;
    const dir = tempDir();
    try {
      chmodSync(dir.path, 0o755);
      const tenant = path.join(dir.path, 'tenants', 'acme');
      const at = (latin1: string) => bytes(`${tenant}/${latin1}`);
      mkdirSync(at('d\xe9/sub\xff'), { recursive: true });
      writeFileSync(at('d\xe9/f\xfe'), 'under a Latin-1 directory');
      writeFileSync(at('d\xe9/sub\xff/g'), 'deeper');
      writeFileSync(at('caf\xe9'), 'latin-1 name');
      mkdirSync(path.join(dir.path, 'out'));
      sh(`chown -R ${NOBODY}:${NOBODY} '${dir.path}'`);
      const archive = path.join(dir.path, 'out', 'acme.tar.zst');
      // A mount namespace of its own, /proc unmounted there only; the backup runs as nobody.
      const args = [process.execPath, cliPath, '--tenants-dir', path.join(dir.path, 'tenants'), '--json', 'tenants', 'backup', 'acme', '--to', archive];
      const run = spawnSync('unshare', ['-m', 'sh', '-c', 'umount -l /proc && exec "$@"', 'sh', 'setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', ...args], { encoding: 'utf8' });
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ files: 3, directories: 3, skipped: [], warnings: [] });
      const gateway = path.join(dir.path, 'restored');
      expect(runCli(['--tenants-dir', gateway, 'tenants', 'restore', '--from', archive]).status).toBe(0);
      expect(treeOf(path.join(gateway, 'acme'))).toEqual(treeOf(tenant));
    } finally {
      dir.cleanup();
    }
  });
});
