// Hard links: a file with several names is archived once, under its first name in walk order,
// and each later name as a tar hard link to it (README, "The archive"); restore, `--as`, verify,
// the dry runs and GNU tar all see the names linked again.

import { chmodSync, chownSync, existsSync, linkSync, lstatSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { copyLinkedFile } from '../shared/restore/tree-writer.js';

import { createTenantArchive, type ArchiveSummary, type SuspendedArchive } from '../shared/backup/tenant-archive.js';
import { readRun, READ_LINKED, META_FIELDS, DIGEST_BYTES, SETTLED_CTIME_MARGIN_MS } from '../shared/backup/read-run.js';
import * as nodeFs from 'node:fs';
import { PARALLEL_ACCESS, SYNC_ACCESS, type FileAccess } from '../shared/file-access.js';
import { repoRoot, runCli, sh, tempDir } from './helpers/tree.js';

describe('hard links are archived as links', () => {
  const dir = tempDir();
  const base = path.join(dir.path, 'tenants');
  const tenant = path.join(base, 'acme');
  const outside = path.join(dir.path, 'outside');
  const archive = path.join(dir.path, 'acme.tar.zst');
  /** 9 MiB: over the whole-read limit, so it streams through a handle. */
  const big = randomBytes(9 * 1024 * 1024);
  let backup: { files: number; hardlinks: number; bytes: number; archiveBytes: number };

  beforeAll(() => {
    mkdirSync(path.join(tenant, 'd'), { recursive: true });
    mkdirSync(path.join(tenant, 'pty'));
    mkdirSync(outside);
    writeFileSync(path.join(tenant, 'a'), 'pair\n');
    linkSync(path.join(tenant, 'a'), path.join(tenant, 'b'));
    // A group of 10: the first name in walk order is d/g1, not g0 (d/ sorts before g0).
    writeFileSync(path.join(tenant, 'g0'), 'group of ten\n');
    for (let i = 1; i <= 9; i++) linkSync(path.join(tenant, 'g0'), path.join(tenant, 'd', `g${i}`));
    // The other name is under pty/ (never archived), or outside the tenant: archived as a file.
    writeFileSync(path.join(tenant, 'pty', 'p'), 'terminal\n');
    linkSync(path.join(tenant, 'pty', 'p'), path.join(tenant, 'from-pty'));
    writeFileSync(path.join(outside, 'o'), 'outside\n');
    linkSync(path.join(outside, 'o'), path.join(tenant, 'from-outside'));
    writeFileSync(path.join(tenant, 'big'), big);
    linkSync(path.join(tenant, 'big'), path.join(tenant, 'zbig'));
    writeFileSync(path.join(tenant, 'single'), 'one name\n');

    const run = runCli(['--tenants-dir', base, '--json', 'tenants', 'backup', 'acme', '--to', archive]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    backup = JSON.parse(run.stdout);
  });
  afterAll(() => dir.cleanup());

  it('stores each later name as a tar hard link to the first (GNU tar lists them), the content once', () => {
    const listing = sh(`zstd -dc '${archive}' | tar --quoting-style=literal -tvf -`).toString();
    const links = [...listing.matchAll(/^h\S+ \S+ +0 \S+ \S+ tenants\/acme\/(\S+) link to tenants\/acme\/(\S+)$/gm)].map((m) => `${m[1]} -> ${m[2]}`);
    expect(links.sort()).toEqual(['b -> a', ...[2, 3, 4, 5, 6, 7, 8, 9].map((i) => `d/g${i} -> d/g1`), 'g0 -> d/g1', 'zbig -> big'].sort());
    for (const file of ['a', 'd/g1', 'big', 'from-pty', 'from-outside', 'single']) expect(listing).toMatch(new RegExp(`^-\\S+ \\S+ +\\d+ \\S+ \\S+ tenants/acme/${file}$`, 'm'));
    expect(listing).not.toContain('tenants/acme/pty');
    // Every name counts as a file; the content of each file once.
    expect(backup.files).toBe(17);
    // Of them, the later names, as verify and restore count them.
    expect(backup.hardlinks).toBe(11);
    const content = 'pair\n'.length + 'group of ten\n'.length + 'terminal\n'.length + 'outside\n'.length + big.length + 'one name\n'.length;
    expect(backup.bytes).toBe(content);
    expect(backup.archiveBytes).toBeLessThan(big.length + 64 * 1024);
  });

  it('restores the names linked (under another name with --as too), verified against the manifest, as verify and the dry runs count them', () => {
    for (const [as, name] of [[[], 'acme'], [['--as', 'copy'], 'copy']] as const) {
      const target = path.join(dir.path, `restored-${name}`);
      const run = runCli(['--tenants-dir', target, '--json', 'tenants', 'restore', '--from', archive, ...as]);
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ verified: true, files: 17, hardlinks: 11, bytes: backup.bytes });
      const restored = path.join(target, name);
      const inode = (name: string) => lstatSync(path.join(restored, name)).ino;
      expect(inode('b')).toBe(inode('a'));
      expect(lstatSync(path.join(restored, 'a')).nlink).toBe(2);
      for (let i = 1; i <= 9; i++) expect(inode(`d/g${i}`)).toBe(inode('g0'));
      expect(lstatSync(path.join(restored, 'g0')).nlink).toBe(10);
      expect(inode('zbig')).toBe(inode('big'));
      expect(readFileSync(path.join(restored, 'zbig')).equals(big)).toBe(true);
      for (const single of ['from-pty', 'from-outside', 'single']) expect(lstatSync(path.join(restored, single)).nlink).toBe(1);
      expect(readFileSync(path.join(restored, 'from-pty'), 'utf8')).toBe('terminal\n');
    }
    const verify = runCli(['--json', 'tenants', 'verify', '--from', archive]);
    expect(verify.status).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ verified: true, files: 17, hardlinks: 11, bytes: backup.bytes });
    const text = runCli(['tenants', 'verify', '--from', archive]).stdout;
    expect(text).toContain('17 files (11 hard links), ');
    const restorePlan = runCli(['--tenants-dir', path.join(dir.path, 'plan'), '--json', 'tenants', 'restore', '--dry-run', '--from', archive]);
    expect(JSON.parse(restorePlan.stdout)).toMatchObject({ files: 17, hardlinks: 11, bytes: backup.bytes });
    const backupPlan = runCli(['--tenants-dir', base, '--json', 'tenants', 'backup', 'acme', '--dry-run', '--to', path.join(dir.path, 'plan.tar.zst')]);
    const plan = JSON.parse(backupPlan.stdout);
    expect(plan).toMatchObject({ files: 17, hardlinks: 11, bytes: backup.bytes });
    // The largest of what is stored: a later name stores nothing, so zbig is not shown beside big.
    const largest = plan.largest.map((file: { path: string }) => file.path);
    expect(largest[0]).toBe('big');
    expect(largest).not.toContain('zbig');
    expect(largest).not.toContain('b');
    expect(runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--dry-run', '--to', path.join(dir.path, 'plan.tar.zst')]).stdout).toContain('  17 files (11 hard links), ');
    expect(runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'text.tar.zst')]).stdout).toContain('  17 files (11 hard links), ');
    const list = runCli(['--tenants-dir', base, '--json', 'tenants', 'list']);
    expect(JSON.parse(list.stdout).tenants[0]).toMatchObject({ name: 'acme', files: 17, bytes: backup.bytes });
  });

  it('GNU tar extracts the archive with the names linked', () => {
    const extracted = path.join(dir.path, 'gnu');
    mkdirSync(extracted);
    sh(`zstd -dc '${archive}' | tar -xf - -C '${extracted}'`);
    const inode = (name: string) => lstatSync(path.join(extracted, 'tenants', 'acme', name)).ino;
    expect(inode('b')).toBe(inode('a'));
    expect(inode('d/g9')).toBe(inode('g0'));
    expect(inode('zbig')).toBe(inode('big'));
    expect(lstatSync(path.join(extracted, 'tenants', 'acme', 'g0')).nlink).toBe(10);
  });

  it('keeps the links when the archive is written in pieces, each run stopping after an entry, and read with promise calls (EFS)', async () => {
    const whole = await archiveOf(tenant, () => false);
    expect(whole.length).toBeLessThan(big.length + 64 * 1024);
    let entries = 0;
    const pieces = await archiveOf(tenant, () => ++entries % 3 === 0);
    expect(pieces.equals(whole)).toBe(true);
    expect((await archiveOf(tenant, () => false, PARALLEL_ACCESS)).equals(whole)).toBe(true);
  });
});

describe('a file written to between its names', () => {
  const dir = tempDir();
  afterAll(() => dir.cleanup());

  it('has its later name archived as a file of its own, with what it holds then, not as a link to the version archived', async () => {
    const tenant = path.join(dir.path, 'tenants', 'acme');
    mkdirSync(tenant, { recursive: true });
    writeFileSync(path.join(tenant, 'x'), 'first version\n');
    linkSync(path.join(tenant, 'x'), path.join(tenant, 'y'));
    // The first run stops after x; the file changes before the next run archives y.
    let stops = 0;
    const archive = path.join(dir.path, 'acme.tar.zst');
    writeFileSync(archive, await archiveOf(tenant, () => stops++ === 0, SYNC_ACCESS, () => writeFileSync(path.join(tenant, 'x'), 'second, longer version\n')));
    const listing = sh(`zstd -dc '${archive}' | tar -tvf -`).toString();
    expect(listing).not.toMatch(/^h/m);
    const restored = path.join(dir.path, 'restored');
    const run = runCli(['--tenants-dir', restored, '--json', 'tenants', 'restore', '--from', archive]);
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ verified: true, files: 2, hardlinks: 0 });
    expect(readFileSync(path.join(restored, 'acme', 'x'), 'utf8')).toBe('first version\n');
    expect(readFileSync(path.join(restored, 'acme', 'y'), 'utf8')).toBe('second, longer version\n');
  });
});

describe('an inode freed and taken by a new file between two pieces of the backup', () => {
  const dir = tempDir();
  afterAll(() => dir.cleanup());

  // ext4 gives a new file the inode freed last; rsync -a, tar and cp -p give it the old mtime.
  it.for([
    ['read-ahead threads', SYNC_ACCESS],
    ['promise calls (EFS)', PARALLEL_ACCESS],
  ] as const)('with the old size and mtime, its names are archived with its own content, not as links to the old file (%s)', async ([, fileAccess], context) => {
    const tenant = path.join(dir.path, `acme-${fileAccess.kind}`);
    mkdirSync(tenant, { recursive: true });
    const mtime = new Date('2026-01-01T00:00:00Z');
    writeFileSync(path.join(tenant, 'a'), 'AAAA old content');
    linkSync(path.join(tenant, 'a'), path.join(tenant, 'z'));
    utimesSync(path.join(tenant, 'a'), mtime, mtime);
    const old = lstatSync(path.join(tenant, 'a')).ino;
    let reused = false;
    // The first run stops after a; then a and z go, and m comes (names m and z) in a's inode.
    let stops = 0;
    const archive = await archiveOf(tenant, () => stops++ === 0, fileAccess, () => {
      rmSync(path.join(tenant, 'a'));
      rmSync(path.join(tenant, 'z'));
      writeFileSync(path.join(tenant, 'm'), 'BBBB new content');
      linkSync(path.join(tenant, 'm'), path.join(tenant, 'z'));
      utimesSync(path.join(tenant, 'm'), mtime, mtime);
      reused = lstatSync(path.join(tenant, 'm')).ino === old;
    });
    if (!reused) return context.skip('the file system did not reuse the inode at once (ext4 does)');
    const file = path.join(dir.path, `acme-${fileAccess.kind}.tar.zst`);
    writeFileSync(file, archive);
    const listing = sh(`zstd -dc '${file}' | tar -tvf -`).toString();
    expect(listing).not.toContain('link to tenants/acme/a');
    const restored = path.join(dir.path, `restored-${fileAccess.kind}`);
    const run = runCli(['--tenants-dir', restored, '--json', 'tenants', 'restore', '--from', file]);
    expect(run.status).toBe(0);
    expect(readFileSync(path.join(restored, 'acme', 'a'), 'utf8')).toBe('AAAA old content');
    expect(readFileSync(path.join(restored, 'acme', 'm'), 'utf8')).toBe('BBBB new content');
    expect(readFileSync(path.join(restored, 'acme', 'z'), 'utf8')).toBe('BBBB new content');
  });
});

/** The tenant's archive, written by runs that stop whenever `stopWhen` says so, each resuming the last (after `between`). */
async function archiveOf(tenantDir: string, stopWhen: () => boolean, fileAccess: FileAccess = SYNC_ACCESS, between?: () => void): Promise<Buffer> {
  const createdAt = new Date('2026-05-01T00:00:00Z');
  const chunks: Buffer[] = [];
  let resume: SuspendedArchive | undefined;
  for (;;) {
    const run = createTenantArchive({ tenantDir, tenant: 'acme', createdAt, stopWhen, fileAccess, ...(resume !== undefined && { resume }) });
    for await (const chunk of run.chunks) chunks.push(chunk);
    const summary: ArchiveSummary | SuspendedArchive = await run.summary;
    if (summary.suspended !== true) return Buffer.concat(chunks);
    // Through JSON, as a checkpoint is stored between invocations, with the bytes written so far (backup.ts saves checkpointToSave's).
    resume = { ...summary, checkpoint: JSON.parse(JSON.stringify(run.checkpointToSave(summary))) };
    between?.();
  }
}

describe('inode numbers past 2^53 (overlayfs with xino: ~2^63), which fs.stat rounds, neighbours to one number', () => {
  it('tells such files apart by their exact numbers (a bigint stat): each name of one a link to its first, never to the other file of the same size and times', (context) => {
    if (process.geteuid?.() !== 0 || spawnSync('unshare', ['-m', 'true']).status !== 0) return context.skip('needs root and unshare');
    const dir = tempDir();
    try {
      const archive = path.join(dir.path, 'acme.tar.zst');
      for (const name of ['low', 'up', 'work', 'merged']) mkdirSync(path.join(dir.path, name));
      // Two files of two names each, of one size, mtime and ctime (set in one call: one clock tick), on a tmpfs under an overlay.
      const script = [
        'set -e',
        'mount -t tmpfs none low',
        'mkdir -p low/tenants/acme',
        'cd low/tenants/acme && printf aaaa > a1 && printf bbbb > b1 && ln a1 a2 && ln b1 b2 && touch -d @1700000000 a1 b1 && cd ../../..',
        'mount -t overlay overlay -o lowerdir=low,upperdir=up,workdir=work,xino=on merged',
        '"$0" -e \'const fs = require("fs"); const [a, b] = ["a1", "b1"].map((n) => fs.statSync("merged/tenants/acme/" + n)); process.stdout.write(String(a.ino === b.ino && a.ino > 2 ** 53))\'',
        '"$0" "$1" --tenants-dir merged/tenants tenants list',
        'exec "$0" "$@"',
      ].join('\n');
      const run = spawnSync('unshare', ['-m', 'sh', '-c', script, process.execPath, path.join(repoRoot, 'bin', 'openclaw.js'), '--tenants-dir', 'merged/tenants', 'tenants', 'backup', 'acme', '--to', archive], { cwd: dir.path, encoding: 'utf8' });
      if (run.status !== 0 && /overlay|tmpfs|mount/.test(run.stderr)) return context.skip(`no overlay mount here: ${run.stderr.trim()}`);
      expect(run.stderr).toBe('');
      // What Node gives as the two files' inode numbers is one number.
      expect(run.stdout.startsWith('true')).toBe(true);
      // `tenants list` counts each file's content once: 8 bytes, not 16.
      expect(run.stdout).toMatch(/\bacme\s+8 B\s+4\s/);
      expect(run.status).toBe(0);
      const links = sh(`zstd -dc '${archive}' | tar -tvf -`).toString().match(/\S+ link to \S+/g);
      expect(links).toEqual(['tenants/acme/a2 link to tenants/acme/a1', 'tenants/acme/b2 link to tenants/acme/b1']);
      const restored = runCli(['--tenants-dir', path.join(dir.path, 'restored'), 'tenants', 'restore', '--from', archive]);
      expect(restored.status).toBe(0);
      for (const [name, content] of [['a1', 'aaaa'], ['a2', 'aaaa'], ['b1', 'bbbb'], ['b2', 'bbbb']]) expect(readFileSync(path.join(dir.path, 'restored', 'acme', name!), 'utf8')).toBe(content);
    } finally {
      dir.cleanup();
    }
  });
});

describe('the read-ahead', () => {
  const dir = tempDir();
  afterAll(() => dir.cleanup());

  it('leaves a file with more than one name unread (READ_LINKED), with what tells it from others, for the archive to read once or link', () => {
    writeFileSync(path.join(dir.path, 'one'), 'x');
    writeFileSync(path.join(dir.path, 'two'), 'y');
    linkSync(path.join(dir.path, 'two'), path.join(dir.path, 'three'));
    const paths = ['one', 'two', 'three'].map((name) => path.join(dir.path, name));
    const meta = new Float64Array(paths.length * META_FIELDS);
    let reads = 0;
    const counting = { ...nodeFs, readSync: (...args: Parameters<typeof nodeFs.readSync>) => (reads++, nodeFs.readSync(...args)) } as never;
    const done = readRun(counting, () => {}, paths, 0, paths.length, Buffer.alloc(4096), meta, Buffer.alloc(paths.length * DIGEST_BYTES), 1024, '', SETTLED_CTIME_MARGIN_MS);
    expect(done).toBe(3);
    expect([meta[0], meta[META_FIELDS], meta[2 * META_FIELDS]]).toEqual([1, READ_LINKED, READ_LINKED]);
    expect(reads).toBe(1);
    // Its size, mode, mtime, inode number and ctime: a later name is linked without being opened again.
    const two = lstatSync(paths[1]!);
    expect([...meta.subarray(META_FIELDS + 1, 2 * META_FIELDS)]).toEqual([1, two.mode & 0o7777, two.mtimeMs, two.ino, two.ctimeMs]);
  });
});

describe('a file system that refuses a hard link (EMLINK past its limit, EPERM or ENOTSUP without hard links)', () => {
  const dir = tempDir();
  afterAll(() => dir.cleanup());
  const hasStrace = existsSync('/usr/bin/strace');

  // Each writer, from a bundle run under strace, which fails every link() with the error; run
  // as another user than root where the test is root, for whom a read-only file's mode holds.
  const NOBODY = 65534;
  const asRoot = process.getuid?.() === 0;

  it('refuses to copy a target that is a FIFO now (put there between the pieces of a restore), in one line, rather than wait for a writer for good', () => {
    const fifo = path.join(dir.path, 'planted-fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const copy = path.join(dir.path, 'copy-of-fifo');
    expect(() => copyLinkedFile(nodeFs, fifo, copy, undefined)).toThrow(`${fifo}, the target of a hard link, is no regular file now: someone who can write there changed it while the restore ran`);
    expect(existsSync(copy)).toBe(false);
  });
  it.skipIf(!hasStrace).each([
    ['SyncTreeWriter', 'EMLINK'],
    ['ParallelTreeWriter', 'EPERM'],
    ['WorkerTreeWriter', 'EOPNOTSUPP'],
  ])('%s makes the link a copy of its target (content, mode, mtime, holes) on %s, read-only and unreadable targets too', async (writer, errno) => {
    const { build } = await import('esbuild');
    const script = path.join(dir.path, `${writer}.ts`);
    writeFileSync(
      script,
      `import { ${writer} } from '${repoRoot}/shared/restore/${writer.replace(/[A-Z]/g, (c, at: number) => (at === 0 ? '' : '-') + c.toLowerCase())}.js';
       import { copiedLinks, copyBudget } from '${repoRoot}/shared/restore/tree-writer.js';
       const [root] = process.argv.slice(2);
       // Each writer's budget where its constructor takes it: the copies are counted for the restore's notice.
       const budget = copyBudget(Infinity);
       const writer = new ${writer}(${{ SyncTreeWriter: 'undefined, budget', ParallelTreeWriter: 'undefined, undefined, undefined, budget', WorkerTreeWriter: 'undefined, undefined, budget' }[writer]});
       // A file of 1 MiB of zeros, then one byte: a hole and data.
       const sparse = Buffer.alloc(1024 * 1024 + 1);
       sparse[1024 * 1024] = 1;
       const files = [['target', 'linked content', 0o640], ['readonly', 'read-only, as git objects', 0o444], ['unreadable', 'mode 000', 0o000], ['sparse', sparse, 0o644]];
       for (const [name, text, mode] of files) {
         const content = Buffer.from(text);
         writer.beginChunk(content);
         const sink = await writer.openFile(root + '/' + name, content.length, mode, new Date('2026-03-04T05:06:07Z'));
         await sink.write(content);
         await sink.finish();
         await writer.link(root + '/' + name, root + '/' + name + '-name');
         await writer.endChunk();
       }
       await writer.flush();
       console.log(JSON.stringify(copiedLinks(budget)));`,
    );
    const bundle = path.join(dir.path, `${writer}.mjs`);
    await build({ entryPoints: [script], bundle: true, format: 'esm', platform: 'node', target: 'node20', outfile: bundle, logLevel: 'silent' });
    const root = path.join(dir.path, `root-${writer}`);
    mkdirSync(root);
    if (asRoot) {
      chmodSync(dir.path, 0o755);
      chownSync(root, NOBODY, NOBODY);
    }
    const run = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=link,linkat', '-e', `inject=link,linkat:error=${errno}`, process.execPath, bundle, root], {
      encoding: 'utf8',
      ...(asRoot && { uid: NOBODY, gid: NOBODY }),
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ names: 4, bytes: 'linked content'.length + 'read-only, as git objects'.length + 'mode 000'.length + 1024 * 1024 + 1 });
    for (const [file, mode] of [['target', 0o640], ['readonly', 0o444], ['unreadable', 0o000], ['sparse', 0o644]] as const) {
      const [target, name] = [file, `${file}-name`].map((at) => lstatSync(path.join(root, at)));
      expect(name!.ino).not.toBe(target!.ino);
      expect(name!.nlink).toBe(1);
      expect(name!.mode & 0o7777).toBe(mode);
      expect(target!.mode & 0o7777).toBe(mode);
      expect([name!.uid, name!.gid]).toEqual([target!.uid, target!.gid]);
      expect(name!.mtimeMs).toBe(new Date('2026-03-04T05:06:07Z').getTime());
      expect(readFileSync(path.join(root, `${file}-name`)).equals(readFileSync(path.join(root, file)))).toBe(true);
    }
    expect(readFileSync(path.join(root, 'target-name'), 'utf8')).toBe('linked content');
    // The MiB of zeros is a hole in the copy too (a few blocks of 512 bytes for the one byte).
    expect(lstatSync(path.join(root, 'sparse-name')).blocks).toBeLessThan(64);
  });

  it.skipIf(!hasStrace)('a restore there restores every name, verified, each a file of its own, and says so in a notice (none where links are made)', () => {
    const base = path.join(dir.path, 'tenants');
    mkdirSync(path.join(base, 'acme'), { recursive: true });
    writeFileSync(path.join(base, 'acme', 'x'), 'shared\n');
    linkSync(path.join(base, 'acme', 'x'), path.join(base, 'acme', 'y'));
    const archive = path.join(dir.path, 'acme.tar.zst');
    expect(runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', archive]).status).toBe(0);
    const target = path.join(dir.path, 'restored');
    const run = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=link,linkat', '-e', 'inject=link,linkat:error=EPERM', process.execPath, path.join(repoRoot, 'bin', 'openclaw.js'), '--tenants-dir', target, '--json', 'tenants', 'restore', '--from', archive], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      verified: true,
      files: 2,
      hardlinks: 1,
      notices: [
        '1 hard link restored as a copy of its file (7 B more on disk): the file system restored into refused the links (it has no hard links, or a file reached its limit of names); the names are no longer linked',
      ],
    });
    for (const name of ['x', 'y']) {
      expect(readFileSync(path.join(target, 'acme', name), 'utf8')).toBe('shared\n');
      expect(lstatSync(path.join(target, 'acme', name)).nlink).toBe(1);
    }
    const linked = runCli(['--tenants-dir', target, '--json', 'tenants', 'restore', '--from', archive, '--as', 'linked']);
    expect(linked.status).toBe(0);
    expect(JSON.parse(linked.stdout)).toMatchObject({ hardlinks: 1, notices: [] });
    expect(lstatSync(path.join(target, 'linked', 'y')).nlink).toBe(2);
  });

  // An archive of one file and many names is small (a link costs a header), and links cost no
  // space; copies do, and count against --max-bytes with the content.
  it.skipIf(!hasStrace)('copies count against --max-bytes: one file of 64 KiB and 40 names is refused under 1 MiB (exit 3, nothing left), restored under 4 MiB', () => {
    const base = path.join(dir.path, 'many');
    mkdirSync(path.join(base, 'acme'), { recursive: true });
    writeFileSync(path.join(base, 'acme', 'f'), Buffer.alloc(64 * 1024, 'abc'));
    for (let i = 1; i < 40; i++) linkSync(path.join(base, 'acme', 'f'), path.join(base, 'acme', `n${i}`));
    const archive = path.join(dir.path, 'many.tar.zst');
    expect(runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', archive]).status).toBe(0);
    const restore = (target: string, maxBytes: string) =>
      spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=link,linkat', '-e', 'inject=link,linkat:error=EPERM', process.execPath, path.join(repoRoot, 'bin', 'openclaw.js'), '--tenants-dir', target, 'tenants', 'restore', '--from', archive, '--max-bytes', maxBytes], {
        encoding: 'utf8',
      });
    const refused = path.join(dir.path, 'refused');
    const run = restore(refused, String(1024 * 1024));
    expect(run.stderr).toBe(`openclaw: ${archive}: the archive unpacks to more than 1.0 MiB with its hard links made copies, which the file system restored into refused as links (raise --max-bytes if it is genuine)\n`);
    expect(run.status).toBe(3);
    expect(existsSync(path.join(refused, 'acme'))).toBe(false);
    const restored = path.join(dir.path, 'copies');
    expect(restore(restored, String(4 * 1024 * 1024)).status).toBe(0);
    expect(lstatSync(path.join(restored, 'acme', 'n39')).nlink).toBe(1);
  });

  // A restore in pieces (the restore function's): every piece replays the earlier ones' links
  // without making them, so the copies they made must come with the checkpoint, else each piece
  // had the whole --max-bytes for copies of its own (2.5 MiB restored under a 1 MiB limit).
  it.skipIf(!hasStrace)('copies made by earlier pieces of a restore in pieces count against --max-bytes too: the same archive is refused, each piece writing one entry', () => {
    const base = path.join(dir.path, 'many-pieces');
    mkdirSync(path.join(base, 'acme'), { recursive: true });
    writeFileSync(path.join(base, 'acme', 'f'), Buffer.alloc(64 * 1024, 'abc'));
    for (let i = 1; i < 40; i++) linkSync(path.join(base, 'acme', 'f'), path.join(base, 'acme', `n${i}`));
    const archive = path.join(dir.path, 'many-pieces.tar.zst');
    expect(runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', archive]).status).toBe(0);
    const script = path.join(dir.path, 'pieces.mts');
    writeFileSync(
      script,
      `import { restoreTenantPiece } from '${repoRoot}/shared/restore/restore.js';
       import { LocalFileLocation } from '${repoRoot}/shared/storage/local.js';
       const [tenantsDir, archive, maxBytes] = process.argv.slice(2);
       const chain = 'c'.repeat(24);
       const limits = { maxEntries: 1000, maxBytes: Number(maxBytes) };
       const piece = (resume?: { tenant: string }) => restoreTenantPiece({ tenantsDir, location: new LocalFileLocation(archive), limits, pieces: { chain, suspend: () => true, ...(resume && { resume }) } });
       let pieces = 1;
       try {
         let result = await piece(undefined);
         while ('suspended' in result) {
           result = await piece({ tenant: result.tenant });
           pieces++;
         }
         console.log(JSON.stringify({ pieces, copied: result.notices.length }));
       } catch (error) {
         console.log(JSON.stringify({ pieces, error: (error as Error).message }));
       }`,
    );
    const restore = (target: string, maxBytes: number) => {
      const run = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=link,linkat', '-e', 'inject=link,linkat:error=EPERM', process.execPath, '--import', 'tsx', script, target, archive, String(maxBytes)], { encoding: 'utf8', cwd: repoRoot });
      expect(run.stderr).toBe('');
      return JSON.parse(run.stdout) as { pieces: number; error?: string; copied?: number };
    };
    const refused = path.join(dir.path, 'pieces-refused');
    const run = restore(refused, 1024 * 1024);
    expect(run.error).toBe('the archive unpacks to more than 1.0 MiB with its hard links made copies, which the file system restored into refused as links (raise --max-bytes if it is genuine)');
    expect(run.pieces).toBeGreaterThan(10);
    expect(existsSync(path.join(refused, 'acme'))).toBe(false);
    const restored = path.join(dir.path, 'pieces-copies');
    expect(restore(restored, 4 * 1024 * 1024)).toMatchObject({ copied: 1 });
    expect(lstatSync(path.join(restored, 'acme', 'n39')).nlink).toBe(1);
    expect(readFileSync(path.join(restored, 'acme', 'n39')).equals(Buffer.alloc(64 * 1024, 'abc'))).toBe(true);
  });

  // Each writer: the copies' bytes are counted where they are made (the writer threads add to shared counts).
  it.skipIf(!hasStrace).each([
    ['SyncTreeWriter', 'new SyncTreeWriter(undefined, budget)'],
    ['ParallelTreeWriter', 'new ParallelTreeWriter(undefined, undefined, undefined, budget)'],
    ['WorkerTreeWriter', 'new WorkerTreeWriter(1, undefined, budget)'],
  ])('%s refuses the copy that would take the restore past the budget', async (writer, construct) => {
    const { build } = await import('esbuild');
    const script = path.join(dir.path, `budget-${writer}.ts`);
    writeFileSync(
      script,
      `import { ${writer} } from '${repoRoot}/shared/restore/${writer.replace(/[A-Z]/g, (c, at: number) => (at === 0 ? '' : '-') + c.toLowerCase())}.js';
       import { copyBudget } from '${repoRoot}/shared/restore/tree-writer.js';
       const [root] = process.argv.slice(2);
       // 1,000 bytes of content and room for two copies of them, not three.
       const budget = copyBudget(3500);
       Atomics.store(budget.counts, 0, 1000n);
       const writer = ${construct};
       const content = Buffer.alloc(1000, 'x');
       writer.beginChunk(content);
       const sink = await writer.openFile(root + '/f', content.length, 0o644, new Date());
       await sink.write(content);
       await sink.finish();
       try {
         for (const name of ['a', 'b', 'c']) await writer.link(root + '/f', root + '/' + name);
         await writer.endChunk();
         await writer.flush();
       } catch (error) {
         await writer.settle();
         console.log(error.code, String(Atomics.load(budget.counts, 1)));
       }`,
    );
    const bundle = path.join(dir.path, `budget-${writer}.mjs`);
    await build({ entryPoints: [script], bundle: true, format: 'esm', platform: 'node', target: 'node20', outfile: bundle, logLevel: 'silent' });
    const root = path.join(dir.path, `budget-root-${writer}`);
    mkdirSync(root);
    const run = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=link,linkat', '-e', 'inject=link,linkat:error=EMLINK', process.execPath, bundle, root], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('OPENCLAW_COPY_OVER_LIMIT 3000\n');
    expect(existsSync(path.join(root, 'b'))).toBe(true);
    expect(existsSync(path.join(root, 'c'))).toBe(false);
  });
});
