// Backup → restore through the CLI, as a user runs it, and interop with GNU tar + zstd.

import { chmodSync, existsSync, mkdirSync, openSync, readdirSync, writeSync, closeSync, writeFileSync, symlinkSync, utimesSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createSampleTenant } from '../scripts/sample-tenant.js';
import { describeTree, runCli, sh, tempDir } from './helpers/tree.js';

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

describe('every backup restores', () => {
  const dir = tempDir();
  const base = path.join(dir.path, 'base');
  const archive = path.join(dir.path, 'odd.tar.zst');
  afterAll(() => dir.cleanup());

  it('leaves out names a restore refuses (control characters, backslashes) and what lies too deep, so the archive restores', () => {
    const tenant = path.join(base, 'acme');
    mkdirSync(path.join(tenant, ...Array<string>(1025).fill('d')), { recursive: true });
    for (const name of ['new\nline.txt', 'back\\slash.txt', 'esc\u001b]0;title\u0007', 'kept.txt']) writeFileSync(path.join(tenant, name), 'x');

    const backup = runCli(['--tenants-dir', base, '--json', 'tenants', 'backup', 'acme', '--to', archive]);
    expect(backup.status).toBe(0);
    expect((JSON.parse(backup.stdout) as { warnings: { path: string }[] }).warnings.map((note) => note.path).sort()).toEqual(
      [Array<string>(1025).fill('d').join('/'), 'back\\slash.txt', 'esc\u001b]0;title\u0007', 'new\nline.txt'].sort(),
    );

    const restore = runCli(['--tenants-dir', base, '--json', 'tenants', 'restore', '--from', archive, '--as', 'copy']);
    expect(restore.stderr).toBe('');
    expect(restore.status).toBe(0);
    expect(JSON.parse(restore.stdout)).toMatchObject({ tenant: 'copy', verified: true, files: 1, directories: 1025 });
    expect(existsSync(path.join(base, 'copy', 'kept.txt'))).toBe(true);
  });
});
