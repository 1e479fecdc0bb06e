// A tenant's `pty/` is ephemeral terminal state: backups leave it out, and a restore leaves it
// out of any archive that holds it (one made by GNU tar + zstd, say), with one notice that
// counts what was left out; `tenants verify` and `restore --dry-run` say the same, and refuse
// the same archives (a hardlink into pty/, pty/ in an archive with a manifest). A restore
// --force over a tenant whose live pty/ holds sockets, FIFOs and read-only directories
// replaces it whole. Archives are made with GNU tar from trees on disk, or byte by byte
// (test/helpers/tar-builder.ts) where no tar would write them.

import { chmodSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer } from 'node:net';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { createSampleTenant } from '../scripts/sample-tenant.js';
import { runMain } from './helpers/run-main.js';
import { TarBuilder } from './helpers/tar-builder.js';
import { describeTree, sh, tempDir } from './helpers/tree.js';

let dir: ReturnType<typeof tempDir>;
/** Where the archived tenant lives (as `tenants/acme`, the archive's own layout), and where it is restored. */
let source: string;
let tenant: string;
let gateway: string;
let outside: string;

beforeEach(() => {
  dir = tempDir();
  source = path.join(dir.path, 'source');
  tenant = path.join(source, 'tenants', 'acme');
  gateway = path.join(dir.path, 'gateway');
  outside = path.join(dir.path, 'outside');
  mkdirSync(outside);
  writeFileSync(path.join(outside, 'secret'), 'outside the tenant\n');
  createSampleTenant(tenant, { sessions: 2, notes: 3 });
});
afterEach(() => dir.cleanup());

const notPty = (relPath: string) => relPath === 'pty' || relPath.startsWith('pty/');

/** `tar -C source -cf - OPERANDS | zstd` into `name`: GNU tar's own choice of entry types. */
function gnuArchive(name: string, operands = 'tenants/acme'): string {
  const archive = path.join(dir.path, name);
  sh(`tar -C '${source}' -cf - ${operands} | zstd -q -3 -o '${archive}'`);
  return archive;
}

function zstdArchive(name: string, tarBytes: Buffer): string {
  const archive = path.join(dir.path, name);
  sh(`zstd -q -3 -o '${archive}'`, { input: tarBytes });
  return archive;
}

/** A live pty/ of every kind of entry GNU tar archives: files, a directory, links in and out, a FIFO. */
function fillPty(): void {
  const pty = path.join(tenant, 'pty');
  mkdirSync(path.join(pty, 'sessions'), { recursive: true });
  writeFileSync(path.join(pty, 'sessions', 'tty-1.log'), 'terminal output\n'.repeat(100));
  linkSync(path.join(pty, 'sessions', 'tty-1.log'), path.join(pty, 'same-inode.log'));
  symlinkSync(outside, path.join(pty, 'out'));
  symlinkSync('/etc/passwd', path.join(pty, 'passwd'));
  sh(`mkfifo '${path.join(pty, 'fifo')}'`);
}

const restore = (...args: string[]) => runMain(['--tenants-dir', gateway, ...args]);

describe('an archive of another tool that holds pty/', () => {
  it('restores everything but pty/, saying how much it left out; verify and the dry run say the same', async () => {
    fillPty();
    const archive = gnuArchive('gnu.tar.zst');
    const listing = sh(`zstd -dc '${archive}' | tar -tvf -`).toString();
    expect(listing).toMatch(/^p.* tenants\/acme\/pty\/fifo$/m); // GNU tar archives the FIFO,
    expect(listing).toMatch(/^h.* tenants\/acme\/pty\/(same-inode|sessions\/tty-1)\.log link to /m); // one hardlink,
    expect(listing).toMatch(/^l.* tenants\/acme\/pty\/out -> /m); // and the symlinks, as they are

    const text = await restore('tenants', 'restore', '--from', archive);
    expect(text.stderr).toBe('');
    expect(text.status).toBe(0);
    const restored = path.join(gateway, 'acme');
    expect(existsSync(path.join(restored, 'pty'))).toBe(false);
    expect(describeTree(restored)).toEqual(describeTree(tenant, { exclude: notPty }));
    // pty/ and sample-tenant's pty/session-1.log (42 bytes), and fillPty's six: the directory, the
    // log (1,600 bytes) and its hardlink, two symlinks, the FIFO.
    const notice = "the archive's pty/ (8 entries, 1.6 KiB) is ephemeral terminal state: left out";
    expect(text.stdout.split('\n')).toContain(`  note: ${notice}`);
    expect(text.stdout).toContain('NOT verified per file');
    expect(readdirSync(outside)).toEqual(['secret']);

    const json = await restore('--json', 'tenants', 'restore', '--from', archive, '--as', 'acme-two');
    expect(json.status).toBe(0);
    const result = JSON.parse(json.stdout);
    expect(result.notices).toEqual(['the archive has no manifest (made by another tool?): per-file verification was not possible', notice]);
    expect(describeTree(path.join(gateway, 'acme-two'))).toEqual(describeTree(restored));

    const verify = await runMain(['--json', 'tenants', 'verify', '--from', archive]);
    expect(verify.status).toBe(0);
    const verified = JSON.parse(verify.stdout);
    expect(verified.notices).toContain("the archive's pty/ (8 entries, 1.6 KiB) is ephemeral terminal state: a restore leaves it out");
    expect(verified).toMatchObject({ files: result.files, directories: result.directories, symlinks: result.symlinks, bytes: result.bytes });

    const plan = await restore('--json', 'tenants', 'restore', '--from', archive, '--as', 'acme-three', '--dry-run');
    expect(plan.status).toBe(0);
    expect(JSON.parse(plan.stdout).notices).toContain("the archive's pty/ (8 entries, 1.6 KiB) is ephemeral terminal state: a restore leaves it out");
  });

  it('leaves out a pty that is a symlink out of the tenant, and the file GNU tar archived through it', async () => {
    rmSync(path.join(tenant, 'pty'), { recursive: true });
    symlinkSync(outside, path.join(tenant, 'pty'));
    // The second operand is read through the link: an entry tenants/acme/pty/secret follows the symlink entry.
    const archive = gnuArchive('through-link.tar.zst', 'tenants/acme tenants/acme/pty/secret');
    expect(sh(`zstd -dc '${archive}' | tar -tf -`).toString().split('\n')).toEqual(expect.arrayContaining(['tenants/acme/pty', 'tenants/acme/pty/secret']));

    const run = await restore('--json', 'tenants', 'restore', '--from', archive);
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout).notices).toContain("the archive's pty/ (2 entries, 19 B) is ephemeral terminal state: left out");
    expect(existsSync(path.join(gateway, 'acme', 'pty'))).toBe(false);
    expect(describeTree(path.join(gateway, 'acme'))).toEqual(describeTree(tenant, { exclude: notPty }));
    expect(readdirSync(outside)).toEqual(['secret']);
    expect(readFileSync(path.join(outside, 'secret'), 'utf8')).toBe('outside the tenant\n');
  });

  it('refuses a hardlink from outside pty/ into it, in restore, verify and the dry run alike', async () => {
    mkdirSync(path.join(tenant, 'pty'), { recursive: true });
    writeFileSync(path.join(tenant, 'pty', 'shared.log'), 'one inode, two names\n');
    linkSync(path.join(tenant, 'pty', 'shared.log'), path.join(tenant, 'workspace', 'shared.log'));
    // GNU tar stores the first name it meets with the content and the second as a link to it.
    const archive = gnuArchive('hardlink-into-pty.tar.zst', 'tenants/acme/pty tenants/acme/workspace');
    expect(sh(`zstd -dc '${archive}' | tar -tvf -`).toString()).toMatch(/^h.* tenants\/acme\/workspace\/shared\.log link to tenants\/acme\/pty\/shared\.log$/m);

    const message =
      `openclaw: ${archive}: ` +
      'hardlink to a file under pty/, which is left out (ephemeral terminal state), so it has no content to link to; ' +
      're-create the archive without pty/ (tar --exclude=tenants/acme/pty): "tenants/acme/workspace/shared.log"\n';
    for (const args of [['tenants', 'restore', '--from', archive], ['tenants', 'restore', '--from', archive, '--dry-run'], ['tenants', 'verify', '--from', archive]]) {
      const run = await restore(...args);
      expect(run.stderr, args.join(' ')).toBe(message);
      expect(run.status).toBe(3);
    }
    expect(existsSync(path.join(gateway, 'acme'))).toBe(false);
  });
});

describe('an archive of ours that holds pty/', () => {
  it('is refused as not matching its manifest, by restore and verify alike', async () => {
    const ours = path.join(dir.path, 'ours.tar.zst');
    const backup = await runMain(['--tenants-dir', path.join(source, 'tenants'), 'tenants', 'backup', 'acme', '--to', ours]);
    expect(backup.status).toBe(0);
    // Its tar stream with a pty/ entry slipped in before the manifest (the last entry), re-compressed without our frames.
    const entries = sh(`zstd -dc '${ours}'`);
    const manifestAt = findHeader(entries, 'tenants/acme/.openclaw-backup-manifest.json');
    const slipped = Buffer.concat([entries.subarray(0, manifestAt), new TarBuilder().file('tenants/acme/pty/log', 'x').unterminated(), entries.subarray(manifestAt)]);
    const archive = zstdArchive('ours-with-pty.tar.zst', slipped);

    const message = `openclaw: ${archive}: the archive does not match its manifest: it holds 1 entry under pty/, which a backup never archives\n`;
    for (const args of [['tenants', 'restore', '--from', archive], ['tenants', 'verify', '--from', archive]]) {
      const run = await restore(...args);
      expect(run.stderr, args.join(' ')).toBe(message);
      expect(run.status).toBe(3);
    }
    expect(existsSync(path.join(gateway, 'acme'))).toBe(false);
    // The archive as the backup wrote it restores, without pty/ (left out by the backup).
    expect((await restore('tenants', 'restore', '--from', ours)).status).toBe(0);
    expect(existsSync(path.join(gateway, 'acme', 'pty'))).toBe(false);
  });
});

describe('restore --force over a tenant whose live pty/ exists', () => {
  it('replaces the tenant whole: the live pty/ (a listening socket, a FIFO, a read-only directory) goes with the old tenant', async () => {
    const archive = gnuArchive('gnu.tar.zst');
    const live = path.join(gateway, 'acme');
    createSampleTenant(live, { sessions: 1, notes: 1 });
    const pty = path.join(live, 'pty');
    mkdirSync(path.join(pty, 'locked'));
    writeFileSync(path.join(pty, 'locked', 'state'), 'x');
    chmodSync(path.join(pty, 'locked', 'state'), 0o000);
    chmodSync(path.join(pty, 'locked'), 0o500);
    sh(`mkfifo '${path.join(pty, 'fifo')}'`);
    // A terminal server still listening on its socket in pty/, as a live gateway's would be.
    const server = createServer();
    server.listen(path.join(pty, 's.sock'));
    await once(server, 'listening');
    try {
      const run = await restore('--json', 'tenants', 'restore', '--from', archive, '--force');
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ replaced: true, tenant: 'acme' });
      expect(existsSync(pty)).toBe(false);
      expect(describeTree(live)).toEqual(describeTree(tenant, { exclude: notPty }));
      expect(readdirSync(gateway)).toEqual(['acme']); // no aside, trash, staging, journal or lock left behind
    } finally {
      server.close();
    }
  });
});

/** Offset of the 512-byte header whose name field is `name` (a short, ustar name). */
function findHeader(tarBytes: Buffer, name: string): number {
  for (let at = 0; at + 512 <= tarBytes.length; at += 512) {
    if (tarBytes.subarray(at, at + name.length).toString('latin1') === name && tarBytes[at + name.length] === 0) return at;
  }
  throw new Error(`no header named ${name}`);
}
