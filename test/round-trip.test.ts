// Backup → restore through the CLI, as a user runs it, and interop with GNU tar + zstd.

import { chmodSync, existsSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, writeSync, closeSync, writeFileSync, symlinkSync, truncateSync, utimesSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createSampleTenant } from '../scripts/sample-tenant.js';
import { hiddenNames } from '../shared/tenant/hidden-names.js';
import { chainFilling, describeTree, makeDeepChain, runCli, sh, tempDir } from './helpers/tree.js';

const notPty = (relPath: string) => relPath === 'pty';

describe('backup and restore round trip', () => {
  const dir = tempDir();
  const gatewayA = path.join(dir.path, 'a');
  const gatewayB = path.join(dir.path, 'b');
  const archive = path.join(dir.path, 'backups', 'acme.tar.zst');
  const tenant = path.join(gatewayA, 'acme');

  beforeAll(() => {
    createSampleTenant(tenant);
    // Many small files, a large file streamed in pieces, odd modes, an empty dir, deep paths.
    for (let i = 0; i < 1500; i++) writeFileSync(path.join(tenant, 'workspace', 'notes', `tiny-${i}.txt`), `note ${i}\n`);
    const large = openSync(path.join(tenant, 'workspace', 'media', 'large.bin'), 'w');
    for (let i = 0; i < 110; i++) writeSync(large, i % 2 ? randomBytes(1024 * 1024) : Buffer.alloc(1024 * 1024, i));
    closeSync(large);
    mkdirSync(path.join(tenant, 'a'.repeat(60), 'b'.repeat(60), 'c'.repeat(60)), { recursive: true });
    writeFileSync(path.join(tenant, 'a'.repeat(60), 'b'.repeat(60), 'c'.repeat(60), 'long-path-needs-pax.txt'), 'deep\n');
    writeFileSync(path.join(tenant, 'read-only.txt'), 'ro\n');
    chmodSync(path.join(tenant, 'read-only.txt'), 0o400);
    mkdirSync(path.join(tenant, 'locked-dir'));
    writeFileSync(path.join(tenant, 'locked-dir', 'inside.txt'), 'x\n');
    chmodSync(path.join(tenant, 'locked-dir'), 0o555);
    symlinkSync('../config.json', path.join(tenant, 'workspace', 'config-link'));
    symlinkSync('does-not-exist', path.join(tenant, 'dangling-inside'));
    symlinkSync('../../outside', path.join(tenant, 'escaping-link'));
    utimesSync(tenant, new Date('2026-03-04T05:06:07Z'), new Date('2026-03-04T05:06:07Z'));
  });
  afterAll(() => {
    chmodSync(path.join(tenant, 'locked-dir'), 0o755);
    if (existsSync(path.join(gatewayB, 'acme-copy', 'locked-dir'))) chmodSync(path.join(gatewayB, 'acme-copy', 'locked-dir'), 0o755);
    dir.cleanup();
  });

  it('restores a byte-exact copy under a new name, without pty/ and the escaping symlink', () => {
    const backup = runCli(['--tenants-dir', gatewayA, '--json', 'tenants', 'backup', 'acme', '--to', archive]);
    expect(backup.stderr).toBe('');
    expect(backup.status).toBe(0);
    const backupResult = JSON.parse(backup.stdout);
    expect(backupResult.skipped.map((note: { path: string }) => note.path).sort()).toEqual(['escaping-link', 'pty']);
    expect(backupResult.files).toBeGreaterThan(1500);

    const restore = runCli(['--tenants-dir', gatewayB, '--json', 'tenants', 'restore', '--from', archive, '--as', 'acme-copy']);
    expect(restore.stderr).toBe('');
    expect(restore.status).toBe(0);
    const restoreResult = JSON.parse(restore.stdout);
    expect(restoreResult).toMatchObject({ tenant: 'acme-copy', archiveTenant: 'acme', verified: true, files: backupResult.files });

    const original = describeTree(tenant, { exclude: (p) => notPty(p) || p === 'escaping-link' });
    expect(describeTree(path.join(gatewayB, 'acme-copy'))).toEqual(original);
    expect(readdirSync(gatewayB).sort()).toEqual(['acme-copy']); // no staging, lock or journal left behind
  });

  it('writes a plain tar.zst that zstd and GNU tar list and extract', () => {
    const listing = sh(`zstd -dc '${archive}' | tar -tvf -`).toString();
    expect(listing).toContain('tenants/acme/config.json');
    expect(listing).toContain('tenants/acme/workspace/latest-note.md -> notes/note-0.md');
    expect(listing).not.toContain('tenants/acme/pty');
    for (const line of listing.trim().split('\n')) expect(line).toMatch(/ tenants\/acme(\/|$)/);

    const gnu = path.join(dir.path, 'gnu-extract');
    mkdirSync(gnu);
    sh(`zstd -dc '${archive}' | tar -xf - -C '${gnu}'`);
    const extracted = describeTree(path.join(gnu, 'tenants', 'acme'), { exclude: (p) => p === '.openclaw-backup-manifest.json' });
    expect(extracted).toEqual(describeTree(tenant, { exclude: (p) => notPty(p) || p === 'escaping-link' }));
    chmodSync(path.join(gnu, 'tenants', 'acme', 'locked-dir'), 0o755);
  });

  it('refuses an archive whose tar was edited after the backup, naming the directory, and restores nothing', () => {
    const tarBytes = sh(`zstd -dc '${archive}'`);
    const original = Buffer.from('note 742\n');
    const at = tarBytes.indexOf(original);
    expect(at).toBeGreaterThan(0);
    expect(tarBytes.indexOf(original, at + 1)).toBe(-1);
    Buffer.from('note 743\n').copy(tarBytes, at); // same size: every tar header stays valid
    const edited = path.join(dir.path, 'edited.tar.zst');
    sh(`zstd -q -3 -o '${edited}'`, { input: tarBytes });

    const gatewayD = path.join(dir.path, 'd');
    const restore = runCli(['--tenants-dir', gatewayD, 'tenants', 'restore', '--from', edited]);
    expect(restore.stderr.trim()).toMatch(/does not match its manifest: .* of the entries in "workspace\/notes" differ$/);
    expect(restore.stderr.trim().split('\n')).toHaveLength(1);
    expect(restore.status).not.toBe(0);
    expect(existsSync(path.join(gatewayD, 'acme'))).toBe(false);
  });

  it('restores an archive made by GNU tar + zstd, with a notice that it could not verify per file', () => {
    const gnuArchive = path.join(dir.path, 'gnu.tar.zst');
    sh(`tar -C '${gatewayA}' --exclude=acme/pty --exclude=acme/escaping-link --transform 's,^acme,tenants/acme,' -cf - acme | zstd -q -3 -o '${gnuArchive}'`);
    const gatewayC = path.join(dir.path, 'c');
    const restore = runCli(['--tenants-dir', gatewayC, 'tenants', 'restore', '--from', gnuArchive]);
    expect(restore.status).toBe(0);
    expect(restore.stdout).toContain('NOT verified per file');
    expect(describeTree(path.join(gatewayC, 'acme'))).toEqual(describeTree(tenant, { exclude: (p) => notPty(p) || p === 'escaping-link' }));
    chmodSync(path.join(gatewayC, 'acme', 'locked-dir'), 0o755);
  });
});

describe('what a restored tenant differs in from the original (README, "The archive")', () => {
  const dir = tempDir();
  afterAll(() => dir.cleanup());

  it('hard links come back linked, a sparse file as sparse, setuid/setgid dropped, a directory keeps its sticky bit, mtimes in whole seconds', () => {
    const tenant = path.join(dir.path, 'a', 'acme');
    mkdirSync(path.join(tenant, 'links', 'sub'), { recursive: true });
    writeFileSync(path.join(tenant, 'links', 'x'), 'three names\n');
    linkSync(path.join(tenant, 'links', 'x'), path.join(tenant, 'links', 'y'));
    linkSync(path.join(tenant, 'links', 'x'), path.join(tenant, 'links', 'sub', 'z'));
    // 128 MiB holding 12 bytes: on the gateway's disk it takes a few blocks, and must again.
    const image = path.join(tenant, 'disk.img');
    writeFileSync(image, 'HEAD');
    truncateSync(image, 128 * 1024 * 1024);
    const fd = openSync(image, 'r+');
    writeSync(fd, 'MIDDLE', 64 * 1024 * 1024 + 3);
    writeSync(fd, 'END', 128 * 1024 * 1024 - 3);
    closeSync(fd);
    writeFileSync(path.join(tenant, 'setuid'), 'x');
    chmodSync(path.join(tenant, 'setuid'), 0o4755);
    mkdirSync(path.join(tenant, 'shared'));
    chmodSync(path.join(tenant, 'shared'), 0o3775);
    const mtime = new Date('2026-03-04T05:06:07.891Z');
    utimesSync(path.join(tenant, 'links', 'x'), mtime, mtime);

    const archive = path.join(dir.path, 'acme.tar.zst');
    expect(runCli(['--tenants-dir', path.join(dir.path, 'a'), 'tenants', 'backup', 'acme', '--to', archive]).status).toBe(0);
    const restore = runCli(['--tenants-dir', path.join(dir.path, 'b'), 'tenants', 'restore', '--from', archive]);
    expect(restore.stderr).toBe('');
    expect(restore.status).toBe(0);
    const restored = path.join(dir.path, 'b', 'acme');

    for (const name of ['links/x', 'links/y', 'links/sub/z']) {
      expect(readFileSync(path.join(restored, name), 'utf8')).toBe('three names\n');
      expect(lstatSync(path.join(restored, name)).nlink).toBe(3);
      expect(lstatSync(path.join(restored, name)).ino).toBe(lstatSync(path.join(restored, 'links', 'sub', 'z')).ino);
    }
    expect(lstatSync(path.join(restored, 'links', 'x')).mtimeMs).toBe(new Date('2026-03-04T05:06:07Z').getTime());
    const restoredImage = lstatSync(path.join(restored, 'disk.img'));
    expect(restoredImage.size).toBe(128 * 1024 * 1024);
    expect(restoredImage.blocks * 512).toBeLessThan(1024 * 1024);
    expect(readFileSync(path.join(restored, 'disk.img')).equals(readFileSync(image))).toBe(true);
    expect(lstatSync(path.join(restored, 'setuid')).mode & 0o7777).toBe(0o755);
    expect(lstatSync(path.join(restored, 'shared')).mode & 0o7777).toBe(0o1775);
  });
});

describe('every name Linux allows', () => {
  const dir = tempDir();
  const base = path.join(dir.path, 'base');
  const tenant = path.join(base, 'acme');
  const archive = path.join(dir.path, 'odd.tar.zst');
  const oddDir = 'dir\r\u001b]0;title\u0007';
  const names = ['a\nb', 'tab\there', 'esc\u001b[31mred', 'back\\slash', '\u0085nel'];
  /** A control character anywhere but as the line break between lines: what must never reach a terminal raw. */
  // eslint-disable-next-line no-control-regex
  const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;
  const shown = <T extends { stdout: string; stderr: string }>(run: T): T => {
    expect(run.stdout + run.stderr).not.toMatch(RAW_CONTROL);
    return run;
  };
  // What a backup leaves out: deeper than 1024 directories, and longer than PATH_MAX.
  const leftOut = (relPath: string) => relPath === 'deep' || relPath === 'long';
  // As long as fits where a restore beside the tenant writes it (its staging directory), then one directory more.
  const longDirs = chainFilling(Buffer.byteLength(path.join(base, hiddenNames.staging('acme'), 'long')) + 1);

  beforeAll(() => {
    mkdirSync(path.join(tenant, oddDir), { recursive: true });
    for (const name of names) writeFileSync(path.join(tenant, name), `content of ${name}`);
    writeFileSync(path.join(tenant, oddDir, 'inner\\file\n'), 'unique content 1234');
    symlinkSync('a\nb', path.join(tenant, 'link\tto\nnewline'));
    mkdirSync(path.join(tenant, 'deep', ...Array<string>(1024).fill('d')), { recursive: true });
    makeDeepChain(path.join(tenant, 'long'), [...longDirs, 'x'.repeat(255)], { 'past PATH_MAX': 'x' });
  });
  // rmSync cannot remove a path longer than PATH_MAX.
  afterAll(() => sh(`rm -rf '${dir.path}'`));

  it('backs them up, escaped in every line shown, and leaves out only what a restore refuses, each shown escaped or shortened', () => {
    const dryRun = shown(runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', archive, '--dry-run']));
    expect(dryRun.status).toBe(0);
    expect(dryRun.stdout).toContain('esc\\u001b[31mred (');
    expect(dryRun.stdout).toContain('back\\\\slash (');

    const backup = shown(runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', archive]));
    expect(backup.status).toBe(0);
    // The path left out for its length is shown whole up to 4095 bytes, past that by its first
    // 100 characters (which of the two depends on how long the temp dir's path is).
    const longLeftOut = `long/${[...longDirs, 'x'.repeat(255)].join('/')}`;
    const shownLong = Buffer.byteLength(longLeftOut) > 4095 ? String.raw`long\/0d{94}… \(4,\d{3} bytes\)` : longLeftOut;
    expect(backup.stdout).toMatch(
      new RegExp(
        String.raw` {4}${shownLong}: path longer than 4095 bytes where a restore writes it \(PATH_MAX, in a staging directory beside the tenant\), which no system call takes: not archived, nor anything in it`,
      ),
    );
    expect(backup.stdout).toContain(`\n    deep/${Array<string>(1024).fill('d').join('/')}: nested deeper than 1024 directories`);

    const json = runCli(['--tenants-dir', base, '--json', 'tenants', 'backup', 'acme', '--to', archive, '--overwrite']);
    const warnings = (JSON.parse(json.stdout) as { warnings: { path: string }[] }).warnings.map((note) => note.path);
    expect(warnings.sort()).toEqual([`deep/${Array<string>(1024).fill('d').join('/')}`, `long/${[...longDirs, 'x'.repeat(255)].join('/')}`].sort());
  });

  it('restores them byte-identical, and verify and a dry run show them escaped', () => {
    const dryRun = shown(runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive, '--as', 'copy', '--dry-run']));
    expect(dryRun.status).toBe(0);
    expect(dryRun.stdout).toContain('dir\\r\\u001b]0;title\\u0007/ (1 entry)');
    const restore = shown(runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive, '--as', 'copy']));
    expect(restore.status).toBe(0);
    expect(describeTree(path.join(base, 'copy'), { exclude: leftOut })).toEqual(describeTree(tenant, { exclude: leftOut }));
    expect(readdirSync(path.join(base, 'copy')).sort()).toEqual(readdirSync(tenant).sort());
    const verify = shown(runCli(['--tenants-dir', base, 'tenants', 'verify', '--from', archive, '--no-record']));
    expect(verify.status).toBe(0);
    expect(verify.stdout).toContain('backup warning: long/0');
  });

  it('writes them so GNU tar lists and extracts them as they are', () => {
    const listing = sh(`zstd -dc '${archive}' | tar --quoting-style=escape -tf -`).toString();
    for (const expected of ['tenants/acme/a\\nb', 'tenants/acme/tab\\there', 'tenants/acme/esc\\033[31mred', 'tenants/acme/back\\\\slash', 'tenants/acme/\\302\\205nel']) {
      expect(listing.split('\n')).toContain(expected);
    }
    const gnu = path.join(dir.path, 'gnu-extract');
    mkdirSync(gnu);
    sh(`zstd -dc '${archive}' | tar -xf - -C '${gnu}'`);
    expect(describeTree(path.join(gnu, 'tenants', 'acme'), { exclude: (p) => leftOut(p) || p === '.openclaw-backup-manifest.json' })).toEqual(
      describeTree(tenant, { exclude: leftOut }),
    );
  });

  it('restores GNU tar\'s own archive of them', () => {
    const gnuArchive = path.join(dir.path, 'gnu.tar.zst');
    sh(`tar -C '${base}' --exclude=acme/deep --exclude=acme/long --transform 's,^acme,tenants/acme,' -cf - acme | zstd -q -3 -o '${gnuArchive}'`);
    const restore = shown(runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', gnuArchive, '--as', 'from-gnu']));
    expect(restore.status).toBe(0);
    expect(describeTree(path.join(base, 'from-gnu'))).toEqual(describeTree(tenant, { exclude: leftOut }));
  });

  it('names a damaged directory escaped when a restore refuses the archive', () => {
    const tarBytes = sh(`zstd -dc '${archive}'`);
    const at = tarBytes.indexOf('unique content 1234');
    expect(at).toBeGreaterThan(0);
    Buffer.from('unique content 1235').copy(tarBytes, at);
    const edited = path.join(dir.path, 'edited.tar.zst');
    sh(`zstd -q -3 -o '${edited}'`, { input: tarBytes });
    const restore = shown(runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', edited, '--as', 'edited']));
    expect(restore.status).toBe(3);
    expect(restore.stderr).toContain('of the entries in "dir\\r\\u001b]0;title\\u0007" differ');
  });
});
