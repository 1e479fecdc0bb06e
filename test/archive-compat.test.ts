// Archives written by earlier versions keep restoring. Each fixture is a real backup made by
// the commit its test names.

import { copyFileSync, existsSync, lstatSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

import { readDatabase } from './helpers/sqlite.js';
import { describeTree, runCli, tempDir } from './helpers/tree.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
/** Made by a6488d4, the version before manifest format 2: its manifest lists every entry. */
const fixture = path.join(fixtures, 'acme-manifest-v1.tar.zst');
/**
 * Made by bab517d, when tar-stream wrote the tar headers (before 109b34c): notes/old.md was
 * modified 1965-05-05, which tar-stream writes as '-' and octal digits; notes/ holds a
 * 113-character name (a pax header).
 */
const tarStreamFixture = path.join(fixtures, 'acme-tar-stream-pre-1970.tar.zst');
/**
 * Made by 069e5a3 (before the trash marker), encrypted with age to the recipient of the
 * identity beside it (a key made for this fixture alone): notes/a-hard.md is a hard link to
 * notes/a.md, latest a symlink to it, data/app.db a SQLite database with two rows.
 */
const encryptedFixture = path.join(fixtures, 'acme-069e5a3-encrypted.tar.zst.age');
const encryptedIdentity = path.join(fixtures, 'acme-069e5a3-encrypted.identity.txt');

describe('archives of earlier versions', () => {
  const dir = tempDir();
  afterAll(() => dir.cleanup());

  it('restores and verifies a backup whose manifest is format version 1', () => {
    const restore = runCli(['--tenants-dir', dir.path, '--json', 'tenants', 'restore', '--from', fixture]);
    expect(restore.stderr).toBe('');
    expect(restore.status).toBe(0);
    expect(JSON.parse(restore.stdout)).toMatchObject({ tenant: 'acme', verified: true, files: 4, symlinks: 1 });

    const tenant = path.join(dir.path, 'acme');
    expect(Object.keys(describeTree(tenant)).sort()).toEqual(
      ['', 'config.json', 'empty', 'latest', 'memory', 'memory/blob.txt', 'notes', 'notes/a.md', 'notes/sub', 'notes/sub/b.md'],
    );
    expect(readFileSync(path.join(tenant, 'notes', 'sub', 'b.md'), 'utf8')).toBe('nested\n');
    expect(readFileSync(path.join(tenant, 'memory', 'blob.txt'), 'utf8')).toBe('x'.repeat(3000));
    expect(readlinkSync(path.join(tenant, 'latest'))).toBe('notes/a.md');
  });

  it('restores and verifies a backup whose tar headers tar-stream wrote, a file from before 1970 included', () => {
    const restore = runCli(['--tenants-dir', dir.path, '--json', 'tenants', 'restore', '--from', tarStreamFixture, '--as', 'acme-1965']);
    expect(restore.stderr).toBe('');
    expect(restore.status).toBe(0);
    expect(JSON.parse(restore.stdout)).toMatchObject({ tenant: 'acme-1965', verified: true, files: 5, symlinks: 1 });

    const tenant = path.join(dir.path, 'acme-1965');
    expect(Object.keys(describeTree(tenant)).sort()).toEqual(
      ['', 'config.json', 'empty', 'latest', 'notes', 'notes/a.md', `notes/${'n'.repeat(110)}.md`, 'notes/old.md', 'notes/sub', 'notes/sub/b.md'],
    );
    expect(readFileSync(path.join(tenant, 'notes', 'old.md'), 'utf8')).toBe('from 1965\n');
    expect(lstatSync(path.join(tenant, 'notes', 'old.md')).mtimeMs).toBe(Date.parse('1965-05-05T00:00:00Z'));
    expect(readlinkSync(path.join(tenant, 'latest'))).toBe('notes/a.md');
  });

  it('restores and verifies an encrypted backup with a hard link, a symlink and a SQLite database', () => {
    // verify records its mark beside the archive: a copy of it, not the fixture
    const archive = path.join(dir.path, 'acme-069e5a3.tar.zst.age');
    copyFileSync(encryptedFixture, archive);
    const verify = runCli(['--json', 'tenants', 'verify', '--from', archive, '--identity', encryptedIdentity]);
    expect(verify.stderr).toBe('');
    expect(verify.status).toBe(0);
    expect(existsSync(path.join(dir.path, '.acme-069e5a3.tar.zst.age.openclaw-verified'))).toBe(true);
    const restore = runCli(['--tenants-dir', dir.path, '--json', 'tenants', 'restore', '--from', encryptedFixture, '--identity', encryptedIdentity, '--as', 'acme-enc']);
    expect(restore.stderr).toBe('');
    expect(restore.status).toBe(0);
    expect(JSON.parse(restore.stdout)).toMatchObject({ tenant: 'acme-enc', verified: true, symlinks: 1 });

    const tenant = path.join(dir.path, 'acme-enc');
    expect(Object.keys(describeTree(tenant)).sort()).toEqual(
      ['', 'config.json', 'data', 'data/app.db', 'empty', 'latest', 'notes', 'notes/a-hard.md', 'notes/a.md'],
    );
    const [a, hard] = [lstatSync(path.join(tenant, 'notes', 'a.md')), lstatSync(path.join(tenant, 'notes', 'a-hard.md'))];
    expect([a.nlink, hard.ino]).toEqual([2, a.ino]);
    expect(readFileSync(path.join(tenant, 'notes', 'a.md'), 'utf8')).toBe('hello\n');
    expect(readlinkSync(path.join(tenant, 'latest'))).toBe('notes/a.md');
    expect(readDatabase(path.join(tenant, 'data', 'app.db'), 'select group_concat(x) from t')).toEqual({ integrity: 'ok', values: ['one,two'] });
  });
});
