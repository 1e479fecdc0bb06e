// removeTree: `rm -rf` for the slot's own trees (staging, trash), also through directories the
// tree made read-only, as a user other than root (root is never refused: the suite, when run
// as root, runs the removals as nobody). A link in the tree is never followed.

import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { listNames, RemovalStoppedError, removeTree } from '../shared/tenant/remove-tree.js';
import { TRASH_MARKER } from '../shared/tenant/trash-marker.js';
import { repoRoot, sh, tempDir } from './helpers/tree.js';

const isRoot = process.geteuid?.() === 0;
const NOBODY = 65534;

let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir('openclaw-remove-tree-');
  chmodSync(dir.path, 0o755);
  if (isRoot) chownSync(dir.path, NOBODY, NOBODY);
});
afterEach(() => dir.cleanup());

/**
 * Runs removeTree on each of `targets` in a child process of the tenants' user. With
 * `vanishing`, that directory is removed just before the retry lists it, as the failed first
 * fs.rm's calls still in flight may do.
 */
function removeAsTenantsUser(targets: string[], vanishing?: string): { status: number | null; stderr: string } {
  const script = `const { removeTree } = await import(${JSON.stringify(path.join(repoRoot, 'shared/tenant/remove-tree.ts'))});
    const fs = (await import('node:fs')).promises;
    const vanishing = ${JSON.stringify(vanishing ?? null)};
    if (vanishing !== null) {
      const { rm, readdir } = fs;
      let failed = false;
      fs.rm = (...args) => rm(...args).catch((error) => { failed = true; throw error; });
      fs.readdir = async (dir, ...rest) => {
        if (failed && dir === vanishing) await rm(vanishing, { recursive: true, force: true });
        return readdir(dir, ...rest);
      };
    }
    for (const target of ${JSON.stringify(targets)}) await removeTree(target);`;
  const node = [process.execPath, '--import', 'tsx', '--input-type=module', '-e', script];
  const [command, ...args] = isRoot ? ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', ...node] : node;
  // tsx keeps a cache per user in the temporary directory: the child's goes in the test's own.
  return spawnSync(command!, args, { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, TMPDIR: dir.path, TSX_DISABLE_CACHE: '1' } });
}

/** A tree like a restored tenant's: many directories, some of them read-only or closed entirely. */
function buildTree(root: string): void {
  for (let d = 0; d < 30; d++) {
    mkdirSync(path.join(root, `d${d}`, 'inner'), { recursive: true });
    for (let f = 0; f < 10; f++) writeFileSync(path.join(root, `d${d}`, 'inner', `f${f}`), 'x');
  }
  for (const [name, mode] of [['cache', 0o555], ['sealed', 0o500], ['closed', 0o000], ['write-only', 0o300]] as const) {
    mkdirSync(path.join(root, name, 'inner'), { recursive: true });
    writeFileSync(path.join(root, name, 'inner', 'f'), 'x');
    chmodSync(path.join(root, name, 'inner'), 0o555);
    mkdirSync(path.join(root, name, 'open'));
    writeFileSync(path.join(root, name, 'open', 'f'), 'x');
    chmodSync(path.join(root, name), mode);
  }
}

describe.skipIf(isRoot && !existsSync('/usr/bin/setpriv'))('removeTree, as a user other than root', () => {
  it('removes trees holding read-only and closed directories, every time (the failed first attempt may still be removing)', () => {
    const targets = Array.from({ length: 12 }, (_, i) => path.join(dir.path, `tree-${i}`));
    for (const target of targets) buildTree(target);
    if (isRoot) sh(`chown -R ${NOBODY}:${NOBODY} ${JSON.stringify(dir.path)}`);
    const run = removeAsTenantsUser(targets);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    for (const target of targets) expect(existsSync(target), target).toBe(false);
  });

  it('skips a directory that vanishes while it opens the tree up', () => {
    const target = path.join(dir.path, 'tree');
    buildTree(target);
    if (isRoot) sh(`chown -R ${NOBODY}:${NOBODY} ${JSON.stringify(dir.path)}`);
    // The first attempt empties cache/open but cannot remove it from the read-only cache.
    const run = removeAsTenantsUser([target], path.join(target, 'cache', 'open'));
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(existsSync(target)).toBe(false);
  });

  it('never changes what a link in the tree points to, and takes an absent tree as removed', () => {
    const target = path.join(dir.path, 'tree');
    const outside = path.join(dir.path, 'outside');
    mkdirSync(path.join(outside, 'inner'), { recursive: true });
    buildTree(target);
    symlinkSync(outside, path.join(target, 'sealed-link'));
    chmodSync(outside, 0o555);
    if (isRoot) sh(`chown -R ${NOBODY}:${NOBODY} ${JSON.stringify(dir.path)}`);
    const run = removeAsTenantsUser([target, path.join(dir.path, 'absent')]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(existsSync(target)).toBe(false);
    expect(statSync(outside).mode & 0o777).toBe(0o555);
    expect(existsSync(path.join(outside, 'inner'))).toBe(true);
  });
});

describe.runIf(isRoot && existsSync('/usr/bin/setpriv'))('removeTree, as a user other than root, an entry it does not own', () => {
  it('says a file of another user in a sticky directory is the cause, not an immutable attribute', () => {
    const target = path.join(dir.path, 'tree');
    const sticky = path.join(target, 'shared-tmp');
    mkdirSync(sticky, { recursive: true });
    chmodSync(sticky, 0o1777);
    writeFileSync(path.join(sticky, 'roots'), 'x'); // root's, as is the directory: a run as root left them
    chownSync(target, NOBODY, NOBODY);
    const run = removeAsTenantsUser([target]);
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain(`cannot remove ${path.join(sticky, 'roots')}: operation not permitted (it belongs to uid 0, not to this user (uid ${NOBODY}), in a directory with the sticky bit`);
    expect(run.stderr).not.toContain('immutable');
    expect(existsSync(path.join(sticky, 'roots'))).toBe(true);
  });

  it('says an immutable attribute is the likely cause for another user\'s file in a directory without the sticky bit, which it could unlink otherwise', (context) => {
    const target = path.join(dir.path, 'tree');
    mkdirSync(path.join(target, 'd'), { recursive: true });
    const stuck = path.join(target, 'd', 'roots');
    writeFileSync(stuck, 'x');
    sh(`chown -R ${NOBODY}:${NOBODY} ${JSON.stringify(target)}`);
    chownSync(stuck, 0, 0);
    if (spawnSync('chattr', ['+i', stuck], { stdio: 'ignore' }).status !== 0) return context.skip('chattr +i does not work here');
    try {
      const run = removeAsTenantsUser([target]);
      expect(run.status).not.toBe(0);
      expect(run.stderr).toContain(`cannot remove ${stuck}: operation not permitted (an immutable or append-only file or directory?`);
      expect(run.stderr).not.toContain('sticky');
    } finally {
      spawnSync('chattr', ['-i', stuck], { stdio: 'ignore' });
    }
  });
});

describe('removeTree, racing the agent of the tenant whose old tree it removes', () => {
  it('removes only what is in the tree while a directory in it keeps being swapped for a symlink to another tenant', async () => {
    // A restore --force moves the old tenant to trash and removes it as root; the tenant's agent
    // (its working directory moved along) keeps swapping a/ for a symlink to another tenant
    // whose files have the same names. fs.rm listed a/ and unlinked a/<name> by path: through
    // the symlink when swapped in between, deleting the victim's files.
    const target = path.join(dir.path, 'trash');
    const victim = path.join(dir.path, 'victim');
    mkdirSync(victim);
    for (let round = 0; round < 5; round++) {
      for (let d = 0; d < 4; d++) {
        mkdirSync(path.join(target, `a${d}`), { recursive: true });
        for (let i = 0; i < 200; i++) writeFileSync(path.join(target, `a${d}`, `v${i}`), 'old tenant');
      }
      for (let i = 0; i < 200; i++) writeFileSync(path.join(victim, `v${i}`), 'victim');
      const swapper = new Worker(
        `const fs = require('node:fs'); const { target, victim } = require('node:worker_threads').workerData;
        const dirs = [0, 1, 2, 3].map((d) => target + '/a' + d);
        for (let n = 0; n < 200000; n++) {
          const a = dirs[n % 4];
          try { fs.renameSync(a, a + '.real'); } catch { continue; }
          try { fs.symlinkSync(victim, a); fs.unlinkSync(a); } catch {}
          try { fs.renameSync(a + '.real', a); } catch {}
        }`,
        { eval: true, workerData: { target, victim } },
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
      try {
        // The agent keeps moving directories back in and swapping them: the removal may fail (the
        // trash stays for the next command), but must never reach outside the tree.
        await removeTree(target).catch((error: unknown) => expect(['ENOTEMPTY', 'ENOTDIR', 'EISDIR']).toContain((error as NodeJS.ErrnoException).code));
      } finally {
        await swapper.terminate();
      }
      expect(readdirSync(victim), `round ${round}`).toHaveLength(200);
      await removeTree(target);
    }
  });
});

/**
 * `root/deep/` holding `levels` directories of 250-byte names, one inside the other, files at
 * every level: paths far past PATH_MAX, built bottom-up by renames of short paths (no call
 * takes the long ones).
 */
function buildDeepTree(root: string, levels: number): void {
  mkdirSync(root, { recursive: true });
  const name = (level: number) => `${level}\n${'x'.repeat(246)}\\`;
  for (let level = levels - 1; level >= 0; level--) {
    const here = path.join(root, `level-${level}`);
    mkdirSync(here);
    writeFileSync(path.join(here, 'f'), String(level));
    if (level < levels - 1) renameSync(path.join(root, `level-${level + 1}`), path.join(here, name(level + 1)));
  }
  renameSync(path.join(root, 'level-0'), path.join(root, 'deep'));
}

/**
 * removeTree of `target` in a child process started as the launcher starts the CLI (its thread
 * pool), after `prelude` (module code), under an open-file limit if given.
 */
function removeInChild(target: string, options: { prelude?: string; openFiles?: number; timeoutMs?: number } = {}) {
  const script = `${options.prelude ?? ''}
    const { removeTree } = await import(${JSON.stringify(path.join(repoRoot, 'shared/tenant/remove-tree.ts'))});
    await removeTree(${JSON.stringify(target)});`;
  const limit = options.openFiles === undefined ? '' : `ulimit -n ${options.openFiles} && `;
  return spawnSync('sh', ['-c', `${limit}exec "$0" --import tsx --input-type=module -e "$1"`, process.execPath, script], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, TMPDIR: dir.path, TSX_DISABLE_CACHE: '1', UV_THREADPOOL_SIZE: '64' },
    ...(options.timeoutMs !== undefined && { timeout: options.timeoutMs, killSignal: 'SIGKILL' as const }),
  });
}

describe('removeTree with a time limit', () => {
  it('stops past `until`, leaving the rest of the tree, and removes it whole without', async () => {
    const tree = path.join(dir.path, 'staging');
    for (const sub of ['a', 'b/c']) {
      mkdirSync(path.join(tree, sub), { recursive: true });
      for (let i = 0; i < 20; i++) writeFileSync(path.join(tree, sub, `f${i}`), 'x');
    }
    await expect(removeTree(tree, { until: Date.now() - 1 })).rejects.toBeInstanceOf(RemovalStoppedError);
    await expect(removeTree(tree, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(RemovalStoppedError);
    expect(readdirSync(path.join(tree, 'b', 'c'))).toHaveLength(20);
    await removeTree(tree, { until: Date.now() + 600_000 });
    expect(existsSync(tree)).toBe(false);
  });
});

describe('removeTree, a wide tree', () => {
  it('removes 40 × 40 directories under an open-file limit of 40, with the launcher\'s thread pool: a lane out of descriptors is tried again after the others', () => {
    const target = path.join(dir.path, 'wide');
    for (let d = 0; d < 40; d++) {
      for (let e = 0; e < 40; e++) {
        mkdirSync(path.join(target, `d${d}`, `e${e}`), { recursive: true });
        writeFileSync(path.join(target, `d${d}`, `e${e}`, 'f'), 'x');
      }
    }
    const run = removeInChild(target, { openFiles: 40 });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(existsSync(target)).toBe(false);
  });
});

describe('removeTree, a failure', () => {
  it('names the directory by its path in the tree, not the procfs path it was checked through (/proc/self/fdinfo/N)', () => {
    const target = path.join(dir.path, 'fdinfo-eio');
    mkdirSync(path.join(target, 'a', 'b'), { recursive: true });
    // Every read of a descriptor's fdinfo (the mount check) fails with EIO.
    const failingFdinfo = `import fs from 'node:fs';
      import { syncBuiltinESMExports } from 'node:module';
      const { openSync } = fs;
      fs.openSync = (at, ...rest) => {
        if (String(at).startsWith('/proc/self/fdinfo/')) throw Object.assign(new Error(\`EIO: i/o error, open '\${at}'\`), { code: 'EIO', errno: -5, syscall: 'open', path: String(at) });
        return openSync(at, ...rest);
      };
      syncBuiltinESMExports();`;
    const run = removeInChild(target, { prelude: failingFdinfo });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain(`EIO: i/o error, open '${target}'`);
    expect(run.stderr).not.toContain("open '/proc/self/");
    expect(run.stderr).toContain(`path: '${target}'`);
    expect(existsSync(path.join(target, 'a', 'b'))).toBe(true);
  });
});

describe('removeTree, a tree deeper than the open-file limit allows', () => {
  it('fails, out of descriptors, instead of retrying each level\'s subtree again without end', () => {
    // One descriptor per level: 300 levels need more than 64. Each level retried its whole
    // subtree after running out, and so did every level below it in each retry: 2^depth tries.
    const target = path.join(dir.path, 'deep-chain');
    mkdirSync(path.join(target, ...Array<string>(300).fill('d')), { recursive: true });
    const run = removeInChild(target, { openFiles: 64, timeoutMs: 60_000 });
    expect(run.signal).toBeNull();
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/EMFILE: too many open files/);
    expect(existsSync(target)).toBe(true);
  });
});

// A file system removes the names of one directory one at a time (on EFS a round trip each):
// 20,000 files in 40 directories took 85 s on the 1 ms latency mount one directory after
// another, 9.5 s with sibling directories emptied side by side.
describe('removeTree, sibling directories', () => {
  it('empties several at once, with the thread pool the launcher gives, and never more than that allows', () => {
    const target = path.join(dir.path, 'siblings');
    for (let d = 0; d < 40; d++) {
      mkdirSync(path.join(target, 'events', `shard-${d}`), { recursive: true });
      for (let f = 0; f < 5; f++) writeFileSync(path.join(target, 'events', `shard-${d}`, `f${f}`), 'x');
    }
    // Counts the directories open at once (removeTree opens them with O_DIRECTORY).
    const countOpenDirectories = `import { constants, promises as fs } from 'node:fs';
      const { open } = fs;
      let now = 0, peak = 0;
      fs.open = async (at, flags, ...rest) => {
        const handle = await open(at, flags, ...rest);
        if (((flags ?? 0) & constants.O_DIRECTORY) === 0) return handle;
        peak = Math.max(peak, ++now);
        const close = handle.close.bind(handle);
        handle.close = () => { now--; return close(); };
        return handle;
      };
      process.on('exit', () => console.log(peak));`;
    const run = removeInChild(target, { prelude: countOpenDirectories });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(existsSync(target)).toBe(false);
    const peak = Number(run.stdout.trim());
    // The tree is 3 deep; 64 threads less 8 (CALLS_IN_FLIGHT), 4 removals a directory: 14 lanes, the 2 above them, and at most one more opening.
    expect(peak).toBeGreaterThan(3);
    expect(peak).toBeLessThanOrEqual(16);
  });
});

// A tenant moved aside or to trash (a longer name than the slot's) may hold paths that fitted
// in the slot and are longer than PATH_MAX there: fs.rm alone fails with ENAMETOOLONG, and the
// trash it leaves behind made every later backup and restore of the tenant fail as well.
describe('removeTree, paths longer than PATH_MAX', () => {
  it('removes a tree whose paths are longer than any system call takes (and one of the tree\'s own ~N names)', async () => {
    const target = path.join(dir.path, 'trash');
    buildDeepTree(target, 40);
    mkdirSync(path.join(target, '~0'));
    writeFileSync(path.join(target, '~1'), 'a file of that name');
    await removeTree(target);
    expect(existsSync(target)).toBe(false);
    expect(readdirSync(dir.path)).toEqual([]);
  });
});

/** Bind-mounts `from` on `onto`; false where this process may not mount (not root). */
function bindMount(from: string, onto: string): boolean {
  return spawnSync('mount', ['--bind', from, onto], { stdio: 'ignore' }).status === 0;
}

/** A tree to remove, `trash/a/{f,mounted/}`, and the operator's `shared/inner/keep` to bind-mount on `mounted`. */
function plantTrashAndShared(root: string): { target: string; shared: string } {
  const target = path.join(root, 'trash');
  const shared = path.join(root, 'shared');
  mkdirSync(path.join(shared, 'inner'), { recursive: true });
  writeFileSync(path.join(shared, 'inner', 'keep'), 'the operator\'s');
  mkdirSync(path.join(target, 'a', 'mounted'), { recursive: true });
  writeFileSync(path.join(target, 'a', 'f'), 'old tenant');
  return { target, shared };
}

describe('removeTree, a mount point inside the tree', () => {
  it('removes nothing on another mount (a bind mount of the same file system included) and fails naming it', async (context) => {
    // The operator bind-mounts a shared directory into a tenant; a restore --force moves the old
    // tenant, mount and all, to trash. Removal went on into the mount and emptied the shared
    // directory before rmdir failed with EBUSY.
    const { target, shared } = plantTrashAndShared(dir.path);
    if (!bindMount(shared, path.join(target, 'a', 'mounted'))) context.skip('mounting needs root');
    try {
      await expect(removeTree(target)).rejects.toThrow(`${path.join(target, 'a', 'mounted')} is a mount point inside the tree being removed`);
      expect(readdirSync(path.join(shared, 'inner'))).toEqual(['keep']);
    } finally {
      spawnSync('umount', [path.join(target, 'a', 'mounted')]);
    }
    await removeTree(target);
    expect(existsSync(target)).toBe(false);
    expect(readdirSync(path.join(shared, 'inner'))).toEqual(['keep']);
  });
});

describe('removeTree, names that are not UTF-8', () => {
  it('removes files and directories whose names are not UTF-8 (listed as text, each would be U+FFFD and ENOENT)', async () => {
    const bytes = (text: string) => Buffer.from(text, 'latin1');
    const tree = path.join(dir.path, 'old');
    mkdirSync(tree);
    mkdirSync(Buffer.concat([bytes(`${tree}/`), bytes('sub\xe9')]));
    writeFileSync(Buffer.concat([bytes(`${tree}/`), bytes('sub\xe9/x\xff')]), 'x');
    writeFileSync(Buffer.concat([bytes(`${tree}/`), bytes('caf\xe9')]), 'x');
    writeFileSync(path.join(tree, 'a\ufffd'), 'a real U+FFFD');
    await removeTree(tree);
    expect(existsSync(tree)).toBe(false);
  });
});

describe('removeTree, names that are not UTF-8, where procfs is not mounted', () => {
  it('opens up and moves up directories under such names before it removes by paths (fs.rm), as a user other than root', (context) => {
    if (!isRoot || !existsSync('/usr/bin/setpriv') || spawnSync('unshare', ['-m', 'true']).status !== 0) return context.skip('needs root, setpriv and unshare');
    // fs.rm fails on a read-only directory and on a path past PATH_MAX: the tree is then opened
    // up and its deep directories moved to its top, which listed as text skipped such a name
    // (U+FFFD, ENOENT): the trash of a restore --force stayed, every command failing on it.
    const target = path.join(dir.path, 'tree');
    const long = 'x'.repeat(250);
    sh(`mkdir -p "${target}/sub$(printf '\\351')/ro" && echo x > "${target}/sub$(printf '\\351')/ro/f" && chmod 555 "${target}/sub$(printf '\\351')/ro"
      cd "${target}" && mkdir "deep$(printf '\\377')" && cd "deep$(printf '\\377')" && for i in $(seq 20); do mkdir ${long} && cd ${long}; done && echo x > f`);
    sh(`chown -R ${NOBODY}:${NOBODY} ${JSON.stringify(dir.path)}`);
    const script = `const { removeTree } = await import(${JSON.stringify(path.join(repoRoot, 'shared/tenant/remove-tree.ts'))}); await removeTree(${JSON.stringify(target)});`;
    const node = [process.execPath, '--import', 'tsx', '--input-type=module', '-e', script];
    const run = spawnSync('unshare', ['-m', 'sh', '-c', 'umount -l /proc && exec "$@"', 'sh', 'setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', ...node], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { ...process.env, TMPDIR: dir.path, TSX_DISABLE_CACHE: '1' },
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(existsSync(target)).toBe(false);
  });

  it('keeps the top\'s trash marker until the rest is gone: a removal refused midway leaves the tree still marked as the tool\'s, and says why in one line', (context) => {
    if (!isRoot || !existsSync('/usr/bin/setpriv') || spawnSync('unshare', ['-m', 'true']).status !== 0) return context.skip('needs root, setpriv and unshare');
    const target = path.join(dir.path, 'tree');
    for (let d = 0; d < 4; d++) {
      mkdirSync(path.join(target, `d${d}`), { recursive: true });
      for (let f = 0; f < 20; f++) writeFileSync(path.join(target, `d${d}`, `f${f}`), 'x');
    }
    for (let f = 0; f < 20; f++) writeFileSync(path.join(target, `f${f}`), 'x');
    writeFileSync(path.join(target, TRASH_MARKER), 'openclaw trash 1\n');
    sh(`chown -R ${NOBODY}:${NOBODY} ${JSON.stringify(dir.path)}`);
    const stuck = path.join(target, 'd2', 'f7');
    if (spawnSync('chattr', ['+i', stuck], { stdio: 'ignore' }).status !== 0) return context.skip('chattr +i does not work here');
    try {
      const run = removeWithoutProcfs(target);
      expect(run.status).not.toBe(0);
      // fs.rm, refused the unlink, tried the file as a directory: it said `unexpected error: ENOTDIR: not a directory, scandir`.
      expect(run.stderr).toContain(`cannot remove ${stuck}: operation not permitted (an immutable or append-only file or directory?`);
      expect(readdirSync(target).sort()).toEqual([TRASH_MARKER, 'd2']);
    } finally {
      spawnSync('chattr', ['-i', stuck], { stdio: 'ignore' });
    }
    const run = removeWithoutProcfs(target);
    expect(run.stderr).toBe('');
    expect(existsSync(target)).toBe(false);
  });

  it('names a mount point inside the tree as removal through descriptors does, nothing on it removed (it said `EBUSY: resource busy or locked, rmdir`)', (context) => {
    if (!isRoot || !existsSync('/usr/bin/setpriv') || spawnSync('unshare', ['-m', 'true']).status !== 0) return context.skip('needs root, setpriv and unshare');
    const { target, shared } = plantTrashAndShared(dir.path);
    sh(`chown -R ${NOBODY}:${NOBODY} ${JSON.stringify(dir.path)}`);
    const mounted = path.join(target, 'a', 'mounted');
    if (!bindMount(shared, mounted)) return context.skip('mounting needs root');
    try {
      const run = removeWithoutProcfs(target);
      expect(run.status).not.toBe(0);
      expect(run.stderr).toContain(`${mounted} is a mount point inside the tree being removed: nothing on it was removed; unmount it, then run the command again`);
      expect(readdirSync(path.join(shared, 'inner'))).toEqual(['keep']);
    } finally {
      spawnSync('umount', [mounted]);
    }
    expect(removeWithoutProcfs(target)).toMatchObject({ status: 0, stderr: '' });
    expect(existsSync(target)).toBe(false);
    expect(readdirSync(path.join(shared, 'inner'))).toEqual(['keep']);
  });

  it('removes a marked tree whose top its tenant made read-only, the marker last', (context) => {
    if (!isRoot || !existsSync('/usr/bin/setpriv') || spawnSync('unshare', ['-m', 'true']).status !== 0) return context.skip('needs root, setpriv and unshare');
    const target = path.join(dir.path, 'tree');
    mkdirSync(path.join(target, 'd'), { recursive: true });
    writeFileSync(path.join(target, 'd', 'f'), 'x');
    writeFileSync(path.join(target, 'f'), 'x');
    writeFileSync(path.join(target, TRASH_MARKER), 'openclaw trash 1\n');
    sh(`chown -R ${NOBODY}:${NOBODY} ${JSON.stringify(dir.path)}`);
    chmodSync(target, 0o555);
    const run = removeWithoutProcfs(target);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(existsSync(target)).toBe(false);
  });
});

/** removeTree of `target` as nobody in a mount namespace without procfs (removal by paths). */
function removeWithoutProcfs(target: string): { status: number | null; stderr: string } {
  const script = `const { removeTree } = await import(${JSON.stringify(path.join(repoRoot, 'shared/tenant/remove-tree.ts'))}); await removeTree(${JSON.stringify(target)});`;
  const node = [process.execPath, '--import', 'tsx', '--input-type=module', '-e', script];
  return spawnSync('unshare', ['-m', 'sh', '-c', 'umount -l /proc && exec "$@"', 'sh', 'setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', ...node], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, TMPDIR: dir.path, TSX_DISABLE_CACHE: '1' },
  });
}

describe('what a removal holds per entry while a lane works through a directory', () => {
  it('lists a directory as bare names by kind: no object, no path per entry, which would outlive the young generation', async () => {
    mkdirSync(`${dir.path}/sub`);
    writeFileSync(`${dir.path}/file`, 'x');
    symlinkSync('sub', `${dir.path}/link`);
    const listing = await listNames(dir.path);
    expect({ directories: listing.directories, others: [...listing.others].sort() }).toEqual({ directories: ['sub'], others: ['file', 'link'] });
    expect([...listing.directories, ...listing.others].every((name) => typeof name === 'string')).toBe(true);
  });
});
