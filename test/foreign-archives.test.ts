// Archives made by other tools than our backup: GNU tar in its formats and with the operands
// people give it (`tenants`, `.`), bsdtar, busybox tar and Python's tarfile. Each restores as
// the tree GNU tar extracts from it (and with the times it had on disk), or is refused in one
// line that says what to do, with nothing left behind. Every archive is made by the real tool
// from a tree on disk; a test whose tool is missing is skipped (its name says which package).

import { spawnSync } from 'node:child_process';
import { linkSync, mkdirSync, readdirSync, symlinkSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { runMain } from './helpers/run-main.js';
import { describeTree, sh, tempDir } from './helpers/tree.js';

const has = (tool: string): boolean => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const BSDTAR = has('bsdtar');
const BUSYBOX = has('busybox');
const PYTHON = has('python3');

let dir: ReturnType<typeof tempDir>;
/** Holds `tenants/acme`, the layout every archive has. */
let source: string;
let gateway: string;

/** 2023-11-14 22:13:20 UTC. */
const MTIME = 1_700_000_000;

beforeEach(() => {
  dir = tempDir('foreign-');
  source = path.join(dir.path, 'source');
  gateway = path.join(dir.path, 'gateway');
  mkdirSync(gateway);
  const tenant = path.join(source, 'tenants', 'acme');
  mkdirSync(path.join(tenant, 'notes', 'sub'), { recursive: true });
  mkdirSync(path.join(tenant, 'empty'));
  writeFileSync(path.join(tenant, 'config.json'), '{"token":"x"}\n');
  writeFileSync(path.join(tenant, 'notes', 'sub', 'b.md'), 'nested\n');
  writeFileSync(path.join(tenant, 'notes', 'blob.bin'), Buffer.alloc(70_000, 7));
  linkSync(path.join(tenant, 'config.json'), path.join(tenant, 'config-copy.json'));
  symlinkSync('notes/sub/b.md', path.join(tenant, 'latest'));
  for (const relPath of ['config.json', 'notes/sub/b.md', 'notes/blob.bin', 'notes/sub', 'notes', 'empty', '']) {
    utimesSync(path.join(tenant, relPath), MTIME, MTIME);
  }
});
afterEach(() => dir.cleanup());

/** `COMMAND | zstd` (run in `source`) into `name`. */
function archiveOf(name: string, command: string): string {
  const archive = path.join(dir.path, name);
  sh(`cd '${source}' && ${command} | zstd -q -o '${archive}'`);
  return archive;
}

/** What GNU tar extracts from `archive`: the tenant's tree, without times (GNU tar sets a directory's after its last entry inside). */
function gnuTarExtracts(archive: string): ReturnType<typeof describeTree> {
  const into = path.join(dir.path, 'gnu-tar');
  mkdirSync(into);
  sh(`zstd -dc '${archive}' | tar -C '${into}' -xf -`);
  return describeTree(path.join(into, 'tenants', 'acme'), { mtimes: false });
}

const run = (...args: string[]) => runMain(['--tenants-dir', gateway, ...args]);

async function expectRestoredAsGnuTar(archive: string): Promise<void> {
  const verify = await run('tenants', 'verify', '--from', archive, '--no-record');
  expect(verify.stderr).not.toMatch(/openclaw:/);
  expect(verify.status).toBe(0);
  const restore = await run('tenants', 'restore', '--from', archive, '--as', 'copy');
  expect(restore.stderr).not.toMatch(/openclaw:/);
  expect(restore.status).toBe(0);
  const restored = path.join(gateway, 'copy');
  expect(describeTree(restored, { mtimes: false })).toEqual(gnuTarExtracts(archive));
  expect(describeTree(restored)).toEqual(describeTree(path.join(source, 'tenants', 'acme')));
  expect(readdirSync(gateway)).toEqual(['copy']);
}

async function expectRefused(archive: string, message: RegExp): Promise<void> {
  for (const args of [['tenants', 'verify', '--from', archive, '--no-record'], ['tenants', 'restore', '--from', archive]]) {
    const result = await run(...args);
    expect(result.status).toBe(3);
    expect(result.stderr).toMatch(message);
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
  }
  expect(readdirSync(gateway)).toEqual([]);
}

describe('archives made by GNU tar', () => {
  it('restores --format=v7 (no magic in its headers), which was refused as damaged', async () => {
    await expectRestoredAsGnuTar(archiveOf('v7.tar.zst', 'tar --format=v7 -cf - tenants/acme'));
  });

  it.each([
    ['tenants', 'tar -cf - tenants'],
    ['.', 'tar -cf - .'],
    ['./tenants/acme', 'tar -cf - ./tenants/acme'],
  ])('restores an archive of %s: the tenant, not the directories above it', async (_, command) => {
    await expectRestoredAsGnuTar(archiveOf('parents.tar.zst', command));
  });

  it.each([
    ['--listed-incremental (its directories are D entries listing their names)', 'tar -g ../snapshot -cf - tenants/acme'],
    ['--listed-incremental --format=posix', 'tar -g ../snapshot --format=posix -cf - tenants/acme'],
    ['--label (a V header without a magic first)', 'tar -V weekly -cf - tenants/acme'],
  ])('restores an archive made with %s', async (_, command) => {
    const archive = archiveOf('gnu-extras.tar.zst', command);
    expect(sh(`zstd -dc '${archive}' | tar -tvf -`).toString()).toMatch(/^[dV]/);
    await expectRestoredAsGnuTar(archive);
  });

  it.each(['gnu', 'posix'])('refuses a second --listed-incremental --format=%s archive (its unchanged files are only in the first) over a live tenant, which it would have replaced without them', async (format) => {
    const level0 = archiveOf('level0.tar.zst', `tar -g ../snapshot --format=${format} -cf - tenants/acme`);
    expect((await run('tenants', 'restore', '--from', level0)).status).toBe(0);
    const live = describeTree(path.join(gateway, 'acme'));
    writeFileSync(path.join(source, 'tenants', 'acme', 'notes', 'new.md'), 'after level 0\n');
    const level1 = archiveOf('level1.tar.zst', `tar -g ../snapshot --format=${format} -cf - tenants/acme`);
    expect(sh(`zstd -dc '${level1}' | tar -tf -`).toString()).not.toMatch(/config\.json/);
    for (const args of [['verify', '--no-record'], ['restore', '--force'], ['restore', '--force', '--dry-run']]) {
      const result = await run('tenants', args[0]!, '--from', level1, ...args.slice(1));
      expect(result.status).toBe(3);
      expect(result.stderr.trimEnd()).toMatch(/^openclaw: \/\S+: directory of an incremental archive \(tar -g\) whose list names \d+ entries the archive does not hold \(".*", …\): .*GNU tar --incremental.*: "tenants\/acme\/"$/);
      expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    }
    expect(describeTree(path.join(gateway, 'acme'))).toEqual(live);
    expect(readdirSync(gateway)).toEqual(['acme']);
  });

  it('restores a --listed-incremental archive made without the tenant\'s pty/ (which its list names as left out)', async () => {
    mkdirSync(path.join(source, 'tenants', 'acme', 'pty'));
    writeFileSync(path.join(source, 'tenants', 'acme', 'pty', 'session'), 'ephemeral\n');
    utimesSync(path.join(source, 'tenants', 'acme'), MTIME, MTIME);
    const archive = archiveOf('no-pty.tar.zst', 'tar -g ../snapshot --exclude=tenants/acme/pty -cf - tenants/acme');
    expect(sh(`zstd -dc '${archive}' | tar -tf -`).toString()).not.toMatch(/\/pty\//);
    const restore = await run('tenants', 'restore', '--from', archive);
    expect(restore.stderr).not.toMatch(/openclaw:/);
    expect(restore.status).toBe(0);
    expect(readdirSync(path.join(gateway, 'acme')).sort()).toEqual(['config-copy.json', 'config.json', 'empty', 'latest', 'notes']);
  });

  it('refuses an archive of two tenants (tar -cf - tenants), saying how to make one of each', async () => {
    mkdirSync(path.join(source, 'tenants', 'beta'));
    writeFileSync(path.join(source, 'tenants', 'beta', 'config.json'), '{}\n');
    await expectRefused(
      archiveOf('two.tar.zst', 'tar -cf - tenants'),
      /^openclaw: \/\S+: entry for a second tenant \(the archive is for "(acme|beta)"; a restore takes one tenant: archive each on its own, tar -C <the directory holding tenants\/> --zstd -cf FILE tenants\/<name>\): "tenants\/(acme|beta)\/"$/m,
    );
  });

  it('refuses a symlink out of the tenant (absolute), saying to leave it out; the archive made so restores', async () => {
    symlinkSync('/etc/hosts', path.join(source, 'tenants', 'acme', 'notes', 'hosts'));
    await expectRefused(
      archiveOf('escaping.tar.zst', 'tar -cf - tenants/acme'),
      /^openclaw: \/\S+: symlink whose target "\/etc\/hosts" escapes the tenant \(.*leave it out of the archive: tar --exclude=<this entry>\): "tenants\/acme\/notes\/hosts"$/m,
    );
    const archive = archiveOf('without.tar.zst', 'tar --exclude=tenants/acme/notes/hosts -cf - tenants/acme');
    expect((await run('tenants', 'restore', '--from', archive)).status).toBe(0);
  });

  it.skipIf(!PYTHON)('refuses a hard link to a name given later (GNU tar cannot extract it either), saying to make the archive with GNU tar (needs python3)', async () => {
    // Python's tarfile writes the members in the order given: the link before its file.
    const script = [
      'import io, sys, tarfile',
      "with tarfile.open(fileobj=sys.stdout.buffer, mode='w|', format=tarfile.GNU_FORMAT) as t:",
      "  d = tarfile.TarInfo('tenants/acme'); d.type = tarfile.DIRTYPE; d.mode = 0o755; t.addfile(d)",
      "  h = tarfile.TarInfo('tenants/acme/config.json'); h.type = tarfile.LNKTYPE; h.linkname = 'tenants/acme/config-copy.json'; t.addfile(h)",
      "  f = tarfile.TarInfo('tenants/acme/config-copy.json'); f.size = 3; t.addfile(f, io.BytesIO(b'{}\\n'))",
    ].join('\n');
    const archive = archiveOf('link-first.tar.zst', `python3 -c "${script}"`);
    expect(spawnSync('bash', ['-c', `zstd -dc '${archive}' | tar -C '${dir.path}' -xf -`]).stderr.toString()).toMatch(/Cannot hard link/);
    await expectRefused(archive, /^openclaw: \/\S+: hardlink to a name no earlier entry of the archive gives \(GNU tar cannot extract it either\): re-create the archive with GNU tar.*: "tenants\/acme\/config.json"$/m);
  });

  it('refuses an archive of the tenant directory itself, saying how to make one', async () => {
    await expectRefused(
      archiveOf('inside.tar.zst', `tar -C tenants/acme -cf - .`),
      /^openclaw: \/\S+: entry outside tenants\/<name>\/ \(.*make it with tar -C <the directory holding tenants\/> --zstd -cf FILE tenants\/<name>\): ".\/[a-z]/,
    );
  });

  it('refuses a file appended again (tar -r), which GNU tar extracts last, saying what to do', async () => {
    const tarFile = path.join(dir.path, 'appended.tar');
    sh(`cd '${source}' && tar -cf '${tarFile}' tenants/acme && echo changed > tenants/acme/config.json && tar -rf '${tarFile}' tenants/acme/config.json`);
    const archive = path.join(dir.path, 'appended.tar.zst');
    sh(`zstd -q '${tarFile}' -o '${archive}'`);
    await expectRefused(archive, /^openclaw: \/\S+: duplicate entry \(.*tar -r or -u.*GNU tar extracts the last\): extract it with GNU tar and archive that tree again: "tenants\/acme\/config.json"$/m);
  });

  it.each(['gnu', 'posix'])('refuses a --sparse --format=%s file, saying to make the archive without --sparse, from the archive alone too', async (format) => {
    const holes = path.join(source, 'tenants', 'acme', 'holes.bin');
    writeFileSync(holes, '');
    truncateSync(holes, 4 * 1024 * 1024);
    sh(`cd '${source}' && printf end >> tenants/acme/holes.bin`);
    await expectRefused(archiveOf('sparse.tar.zst', `tar --sparse --format=${format} -cf - tenants/acme`), /^openclaw: \/\S+: sparse-file entry refused \(GNU tar --sparse wrote it.*\): re-create the archive without --sparse \(bsdtar: with --no-read-sparse\), or, from this archive alone, extract it with GNU tar and archive that tree again without --sparse \(.*\): "tenants\/acme\/holes.bin"$/m);
  });
});

describe('archives made by other tars', () => {
  it.skipIf(!BSDTAR).each(['ustar', 'pax', 'gnutar'])('restores bsdtar --format %s (needs bsdtar: Debian libarchive-tools)', async (format) => {
    await expectRestoredAsGnuTar(archiveOf(`bsdtar-${format}.tar.zst`, `bsdtar --format ${format} -cf - tenants/acme`));
  });

  // bsdtar stores a file with holes as a sparse entry by default (GNU tar only with --sparse): refused, saying how bsdtar makes one without.
  it.skipIf(!BSDTAR)('refuses a file with holes as bsdtar stores it by default, naming --no-read-sparse; made with it, the archive restores (needs bsdtar)', async () => {
    const holes = path.join(source, 'tenants', 'acme', 'holes.bin');
    writeFileSync(holes, '');
    truncateSync(holes, 4 * 1024 * 1024);
    sh(`cd '${source}' && printf end >> tenants/acme/holes.bin`);
    await expectRefused(archiveOf('bsdtar-sparse.tar.zst', 'bsdtar -cf - tenants/acme'), /^openclaw: \/\S+: sparse-file entry refused \(GNU tar --sparse wrote it, or bsdtar, which stores a file with holes so unless told --no-read-sparse.*\): re-create the archive without --sparse \(bsdtar: with --no-read-sparse\), .*: "tenants\/acme\/holes.bin"$/m);
    await expectRestoredAsGnuTar(archiveOf('bsdtar-no-sparse.tar.zst', 'bsdtar --no-read-sparse -cf - tenants/acme'));
  });

  it.skipIf(!BUSYBOX)('restores busybox tar (needs busybox: Debian busybox)', async () => {
    await expectRestoredAsGnuTar(archiveOf('busybox.tar.zst', 'busybox tar -cf - tenants/acme'));
  });

  it.skipIf(!PYTHON).each(['USTAR', 'GNU', 'PAX'])("restores Python's tarfile %s_FORMAT (needs python3)", async (format) => {
    const script = `import sys, tarfile\nwith tarfile.open(fileobj=sys.stdout.buffer, mode='w|', format=tarfile.${format}_FORMAT) as t: t.add('tenants/acme')`;
    await expectRestoredAsGnuTar(archiveOf(`python-${format}.tar.zst`, `python3 -c "${script}"`));
  });
});

describe('zstd streams that decode to something other than a tar', () => {
  // Each was reported as a damaged tar ("bad tar header checksum at byte 0", "the tar stream
  // ends inside an entry"): an operator would take a sound file for a lost backup.
  it('refuses our archive compressed again (zstd of a .tar.zst), saying to decompress it once; done so, it restores', async () => {
    const ours = path.join(dir.path, 'ours.tar.zst');
    expect((await runMain(['--tenants-dir', path.join(source, 'tenants'), 'tenants', 'backup', 'acme', '--to', ours])).status).toBe(0);
    const twice = path.join(dir.path, 'twice.tar.zst');
    sh(`zstd -q -c '${ours}' > '${twice}'`);
    await expectRefused(twice, /^openclaw: \/\S+\/twice\.tar\.zst: the archive does not hold a tar: it is compressed twice \(it decodes to another zstd stream\): decompress it once, zstd -dc FILE -o NEW.tar.zst, and give that$/m);
    sh(`zstd -q -dc '${twice}' > '${path.join(dir.path, 'once.tar.zst')}'`);
    expect((await run('tenants', 'restore', '--from', path.join(dir.path, 'once.tar.zst'))).status).toBe(0);
  });

  it.each([
    ['a .tar.gz', 'tar -czf - tenants/acme', /it decodes to a gzip stream \(a \.tar\.gz compressed again\?\): recompress it with zstd -dc FILE \| gzip -dc \| zstd -o NEW\.tar\.zst$/m],
    ['a cpio archive', 'bsdtar --format cpio -cf - tenants/acme', /it decodes to a cpio archive: give a tar of tenants\/NAME\/ compressed with zstd/m],
  ])('refuses %s compressed with zstd, naming it (bsdtar makes the cpio archive)', async (_, command, message) => {
    if (command.startsWith('bsdtar') && !BSDTAR) return;
    await expectRefused(archiveOf('other.tar.zst', command), new RegExp(`^openclaw: /\\S+/other\\.tar\\.zst: the archive does not hold a tar: ${message.source}`, 'm'));
  });

  it.skipIf(!has('age') || !has('age-keygen'))('refuses an age file compressed with zstd (one small enough to end inside the first tar block too), saying to decompress it and give the identity (needs age)', async () => {
    const key = path.join(dir.path, 'key.txt');
    sh(`age-keygen -o '${key}' 2>/dev/null`);
    const message = /^openclaw: \/\S+\/(?:small|large)\.tar\.zst: the archive does not hold a tar: it decodes to an age-encrypted file \(encrypted, then compressed\): decompress it, zstd -dc FILE -o NEW\.age, and restore that with --identity KEY_FILE$/m;
    await expectRefused(archiveOf('small.tar.zst', `printf tiny | age -R <(age-keygen -y '${key}')`), message);
    await expectRefused(archiveOf('large.tar.zst', `tar -cf - tenants/acme | age -R <(age-keygen -y '${key}')`), message);
  });
});
