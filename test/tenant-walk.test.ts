import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readlinkSync, realpathSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { TenantWalk, walkTenant, type WalkItem, type WalkNotes } from '../shared/backup/tenant-walk.js';
import { PARALLEL_ACCESS, SYNC_ACCESS, type FileAccess } from '../shared/file-access.js';
import { PackedListing } from '../shared/packed-listing.js';
import { mountPointsUnder } from '../shared/mounts.js';
import { hiddenNames } from '../shared/tenant/hidden-names.js';
import { chainFilling, makeDeepChain } from './helpers/tree.js';

let root = '';
beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'tenant-walk-'));
});
// rm(1) removes paths longer than PATH_MAX, which rmSync cannot.
afterEach(() => execFileSync('rm', ['-rf', root]));

/** `makeDeepChain` with files holding "x". */
function makeChain(base: string, dirs: readonly string[], files: readonly string[]): void {
  makeDeepChain(base, dirs, Object.fromEntries(files.map((file) => [file, 'x'])));
}

async function walkOrder(mode: 'sync' | 'parallel'): Promise<string[]> {
  const notes: WalkNotes = { skipped: [], warnings: [] };
  const order: string[] = [];
  for await (const item of walkTenant(root, notes, mode === 'sync' ? SYNC_ACCESS : PARALLEL_ACCESS)) order.push(item.relPath);
  return order;
}

describe('walkTenant order', () => {
  it.each(['sync', 'parallel'] as const)('lists names in UTF-8 byte order, also where UTF-16 order differs (%s)', async (mode) => {
    // U+FF01 is EF BC 81 in UTF-8, U+1F600 is F0 9F 98 80: byte order puts U+FF01 first,
    // while JavaScript's comparison of UTF-16 units (FF01 vs D83D) would put the emoji first.
    const names = ['b', 'a\u{1F600}', 'a\uFF01', 'a', 'B', 'a.sqlite-wal', 'a.sqlite'];
    for (const name of names) writeFileSync(path.join(root, name), name);
    mkdirSync(path.join(root, 'dir'));
    writeFileSync(path.join(root, 'dir', 'z'), '');

    const expected = [...names, 'dir'].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect(expected.indexOf('a\uFF01')).toBeLessThan(expected.indexOf('a\u{1F600}'));
    expect(await walkOrder(mode)).toEqual(['', ...expected.flatMap((name) => (name === 'dir' ? ['dir', 'dir/z'] : [name]))]);
  });

  it('sorts plain ASCII names by byte order too (upper case before lower case)', async () => {
    for (const name of ['b', 'A', 'a', '_', 'Z']) writeFileSync(path.join(root, name), '');
    expect(await walkOrder('sync')).toEqual(['', 'A', 'Z', '_', 'a', 'b']);
  });
});

describe('walkTenant and names that are not valid UTF-8', () => {
  it.each(['sync', 'parallel'] as const)('walks them as their bytes (raw-name.ts), in byte order, two that would decode alike as two, and names that hold U+FFFD itself (%s)', async (mode) => {
    const bytesPath = (...parts: (string | number[])[]) => Buffer.concat([Buffer.from(`${root}/`), ...parts.map((part) => (typeof part === 'string' ? Buffer.from(part) : Buffer.from(part)))]);
    writeFileSync(bytesPath('caf', [0xe9], '.txt'), 'latin-1 name');
    writeFileSync(bytesPath('caf', [0xe8], '.txt'), 'another, decoded alike');
    mkdirSync(bytesPath('dir', [0xff]));
    writeFileSync(bytesPath('dir', [0xff], '/inside'), 'under a bad directory name');
    writeFileSync(path.join(root, 'real\uFFFDchar'), 'a valid name holding U+FFFD');
    symlinkSync(Buffer.from('caf\xe9.txt', 'latin1'), path.join(root, 'link'));
    writeFileSync(path.join(root, 'plain'), 'plain');

    const notes: WalkNotes = { skipped: [], warnings: [] };
    const walked: WalkItem[] = [];
    for await (const item of walkTenant(root, notes, mode === 'sync' ? SYNC_ACCESS : PARALLEL_ACCESS)) walked.push(item);

    expect(walked.map((item) => item.relPath)).toEqual(['', 'caf\udce8.txt', 'caf\udce9.txt', 'dir\udcff', 'dir\udcff/inside', 'link', 'plain', 'real\uFFFDchar']);
    expect(walked.find((item) => item.relPath === 'link')).toMatchObject({ kind: 'symlink', target: 'caf\udce9.txt' });
    expect(notes.warnings).toEqual([]);
  });

  it('still leaves out a symlink whose target is not UTF-8 and leads out of the tenant', async () => {
    symlinkSync(Buffer.from('../out\xe9', 'latin1'), path.join(root, 'link'));
    const notes: WalkNotes = { skipped: [], warnings: [] };
    for await (const _item of walkTenant(root, notes, SYNC_ACCESS));
    expect(notes.skipped).toEqual([{ path: 'link', reason: expect.stringContaining('symlink target "../out\\udce9" resolves outside the tenant') }]);
  });
});

describe('walkTenant and what a restore refuses', () => {
  it.each(['sync', 'parallel'] as const)('leaves out symlinks a restore refuses, each with the reason: absolute (even into the tenant), leading out, looping (%s)', async (mode) => {
    mkdirSync(path.join(root, 'dir'));
    writeFileSync(path.join(root, 'dir', 'file'), 'x');
    symlinkSync(path.join(root, 'dir', 'file'), path.join(root, 'absolute-inside'));
    symlinkSync('../outside', path.join(root, 'leading-out'));
    symlinkSync('loop-b', path.join(root, 'loop-a'));
    symlinkSync('loop-a', path.join(root, 'loop-b'));
    symlinkSync('dir/file', path.join(root, 'relative'));
    symlinkSync('nowhere', path.join(root, 'dangling'));

    const notes: WalkNotes = { skipped: [], warnings: [] };
    const walked: string[] = [];
    for await (const item of walkTenant(root, notes, mode === 'sync' ? SYNC_ACCESS : PARALLEL_ACCESS)) walked.push(item.relPath);

    expect(walked.sort()).toEqual(['', 'dangling', 'dir', 'dir/file', 'relative']);
    expect(notes.skipped).toEqual([
      { path: 'absolute-inside', reason: `symlink target "${path.join(root, 'dir', 'file')}" is absolute (a restore takes only relative targets that stay inside the tenant)` },
      { path: 'leading-out', reason: 'symlink target "../outside" resolves outside the tenant, or loops' },
      { path: 'loop-a', reason: 'symlink target "loop-b" resolves outside the tenant, or loops' },
      { path: 'loop-b', reason: 'symlink target "loop-a" resolves outside the tenant, or loops' },
    ]);
  });

  it.each(['sync', 'parallel'] as const)('archives every name Linux allows: control characters and backslashes included (%s)', async (mode) => {
    const names = ['new\nline.txt', 'tab\there', 'del\u007f', 'c1\u0085', 'back\\slash.txt', 'plain'];
    for (const name of names) writeFileSync(path.join(root, name), name);
    mkdirSync(path.join(root, 'dir\u001b[31m'));
    writeFileSync(path.join(root, 'dir\u001b[31m', 'inside\r'), 'under a directory with an escape in its name');

    const notes: WalkNotes = { skipped: [], warnings: [] };
    const walked: string[] = [];
    for await (const item of walkTenant(root, notes, mode === 'sync' ? SYNC_ACCESS : PARALLEL_ACCESS)) walked.push(item.relPath);

    expect(walked.sort()).toEqual(['', ...names, 'dir\u001b[31m', 'dir\u001b[31m/inside\r'].sort());
    expect(notes).toEqual({ skipped: [], warnings: [] });
  });

  it('leaves out a path longer than PATH_MAX (4095 bytes) where a restore beside the tenant writes it, keeping the longest that fits', async () => {
    // Directories of 250 bytes, then a file that fills the path to 4095 bytes exactly where a
    // restore beside the tenant writes it (its staging directory), and one a byte longer.
    const tenant = path.join(root, 'acme');
    const staging = path.join(root, hiddenNames.staging('acme'));
    const dirs = chainFilling(Buffer.byteLength(staging) + 1);
    const room = 4095 - Buffer.byteLength([staging, ...dirs].join('/')) - 1;
    const fits = 'f'.repeat(room);
    const over = 'g'.repeat(room + 1);
    makeChain(tenant, dirs, [fits, over]);

    const notes: WalkNotes = { skipped: [], warnings: [] };
    const walked: string[] = [];
    for await (const item of walkTenant(tenant, notes, SYNC_ACCESS)) walked.push(item.relPath);

    expect(walked.at(-1)).toBe([...dirs, fits].join('/'));
    expect(Buffer.byteLength([staging, ...dirs, fits].join('/'))).toBe(4095);
    expect(notes.warnings).toEqual([
      {
        path: [...dirs, over].join('/'),
        reason:
          'path longer than 4095 bytes where a restore writes it (PATH_MAX, in a staging directory beside the tenant), which no system call takes: not archived (move it higher up to back it up)',
      },
    ]);
  });

  it('leaves out what lies deeper than 1024 directories, keeping the 1024th', async () => {
    const deepest = path.join(root, ...Array<string>(1024).fill('d'));
    mkdirSync(path.join(deepest, 'd'), { recursive: true });
    writeFileSync(path.join(deepest, 'd', 'f'), 'too deep');

    const notes: WalkNotes = { skipped: [], warnings: [] };
    const walked: string[] = [];
    for await (const item of walkTenant(root, notes, SYNC_ACCESS)) walked.push(item.relPath);

    expect(walked).toHaveLength(1 + 1024);
    expect(walked.at(-1)).toBe(Array<string>(1024).fill('d').join('/'));
    expect(notes.warnings).toEqual([
      { path: Array<string>(1025).fill('d').join('/'), reason: 'nested deeper than 1024 directories, which a restore refuses: not archived, nor anything in it' },
    ]);
  });
});

describe('walkTenant, a listing that gives a name twice', () => {
  // A FUSE or network file system's readdir can: the entry, and everything under it, was
  // walked and archived twice, an archive no restore takes (a name twice in one directory).
  for (const mode of ['sync', 'parallel'] as const) {
    it(`walks each entry once (${mode})`, async () => {
      mkdirSync(path.join(root, 'sessions', 'agent-0'), { recursive: true });
      writeFileSync(path.join(root, 'sessions', 'agent-0', 'state.json'), '{}');
      writeFileSync(path.join(root, 'sessions', 'notes'), 'x');
      const access = mode === 'sync' ? SYNC_ACCESS : PARALLEL_ACCESS;
      const twice = (listing: PackedListing): PackedListing => {
        for (let index = 0, count = listing.size; index < count; index++) listing.add(listing.name(index), listing.type(index));
        return listing;
      };
      const doubling: FileAccess = {
        ...access,
        readdir: (dir, size) => {
          const listed = access.readdir(dir, size);
          return listed instanceof Promise ? listed.then(twice) : twice(listed);
        },
      };
      const walked: string[] = [];
      for await (const item of walkTenant(root, { skipped: [], warnings: [] }, doubling)) walked.push(item.relPath);
      expect(walked).toEqual(['', 'sessions', 'sessions/agent-0', 'sessions/agent-0/state.json', 'sessions/notes']);
    });
  }
});

describe('walkTenant, a directory that cannot be listed', () => {
  // Directories are listed and their entries lstat'ed through the open directory's procfs
  // link (/proc/self/fd/N): the backup's one line named that link instead of the directory.
  const eio = (at: string) => Object.assign(new Error(`EIO: i/o error, scandir '${at}'`), { code: 'EIO', errno: -5, syscall: 'scandir', path: at });
  for (const mode of ['sync', 'parallel'] as const) {
    const access = mode === 'sync' ? SYNC_ACCESS : PARALLEL_ACCESS;
    it(`names it by its own path when its listing fails (${mode})`, async () => {
      mkdirSync(path.join(root, 'sessions'));
      const failing: FileAccess = {
        ...access,
        readdir: (dir) => {
          if ((dir.startsWith('/proc/') ? readlinkSync(dir) : dir).endsWith('/sessions')) {
            if (mode === 'sync') throw eio(dir);
            return Promise.reject(eio(dir));
          }
          return access.readdir(dir);
        },
      };
      const walking = async () => {
        for await (const item of walkTenant(root, { skipped: [], warnings: [] }, failing)) void item;
      };
      await expect(walking()).rejects.toMatchObject({ code: 'EIO', path: path.join(root, 'sessions'), message: `EIO: i/o error, scandir '${path.join(root, 'sessions')}'` });
    });

    it(`names an entry by its own path when its lstat fails (${mode})`, async () => {
      mkdirSync(path.join(root, 'sessions', 'agent-0'), { recursive: true });
      const failing: FileAccess = {
        ...access,
        lstatEach: (paths) => {
          const at = paths.find((p) => p.endsWith('/agent-0'));
          if (at === undefined) return access.lstatEach(paths);
          const error = Object.assign(new Error(`EIO: i/o error, lstat '${at}'`), { code: 'EIO', errno: -5, syscall: 'lstat', path: at });
          if (mode === 'sync') throw error;
          return Promise.reject(error);
        },
      };
      const walking = async () => {
        for await (const item of walkTenant(root, { skipped: [], warnings: [] }, failing)) void item;
      };
      await expect(walking()).rejects.toMatchObject({ code: 'EIO', path: path.join(root, 'sessions', 'agent-0') });
    });
  }
});

describe('walkTenant, racing the tenant', () => {
  it('notes a symlink replaced by a file between its lstat and its readlink as vanished, and goes on', async () => {
    // readlink of what is a file now fails with EINVAL: the backup failed as an 'unexpected error'.
    mkdirSync(path.join(root, 'db'));
    symlinkSync('memory.sqlite', path.join(root, 'db', 'link'));
    writeFileSync(path.join(root, 'db', 'z'), 'after');
    const swapping: FileAccess = {
      ...SYNC_ACCESS,
      lstatEach: (paths) => {
        const stats = SYNC_ACCESS.lstatEach(paths);
        if (paths.some((at) => at.endsWith('/link'))) {
          unlinkSync(path.join(root, 'db', 'link'));
          writeFileSync(path.join(root, 'db', 'link'), 'a file now');
        }
        return stats;
      },
    };
    const notes: WalkNotes = { skipped: [], warnings: [] };
    const walked: string[] = [];
    for await (const item of walkTenant(root, notes, swapping)) walked.push(item.relPath);
    expect(walked).toEqual(['', 'db', 'db/z']);
    expect(notes.skipped.map((note) => note.path)).toEqual(['db/link']);
  });
});

describe('walkTenant with statFiles, files changed between the listing and their lstat', () => {
  it.each(['sync', 'parallel'] as const)('hands out a file now a directory as one, one gone as vanished, the others with their own size (%s)', async (mode) => {
    // The files' lstat is kept by listing index: each must still answer for its own name.
    writeFileSync(path.join(root, 'a'), 'a');
    writeFileSync(path.join(root, 'b'), 'bb');
    writeFileSync(path.join(root, 'c'), 'ccc');
    writeFileSync(path.join(root, 'd'), 'dddd');
    const access = mode === 'sync' ? SYNC_ACCESS : PARALLEL_ACCESS;
    let swapped = false;
    const swapping: FileAccess = {
      ...access,
      readdir: (dir, size) => {
        const listed = access.readdir(dir, size);
        const swap = () => {
          if (swapped) return;
          swapped = true;
          unlinkSync(path.join(root, 'b'));
          mkdirSync(path.join(root, 'b'));
          unlinkSync(path.join(root, 'c'));
        };
        if (listed instanceof Promise) return listed.then((names) => (swap(), names));
        swap();
        return listed;
      },
    };
    const notes: WalkNotes = { skipped: [], warnings: [] };
    const walked: string[] = [];
    for await (const item of walkTenant(root, notes, swapping, { statFiles: true })) walked.push(`${item.kind} ${item.relPath}${item.kind === 'file' ? ` ${item.stat?.size}` : ''}`);
    expect(walked).toEqual(['directory ', 'file a 1', 'directory b', 'file d 4']);
    expect(notes.skipped.map((note) => note.path)).toEqual(['c']);
  });
});

describe('walkTenant and an entry it may not stat', () => {
  it.each(['sync', 'parallel'] as const)('names it by its real path, not through its directory\'s procfs link (%s)', async (mode) => {
    // A directory its user may list but not search (mode 0644): the backup failed with
    // 'permission denied (/proc/self/fd/18/e)'.
    mkdirSync(path.join(root, 'd', 'e'), { recursive: true });
    const access = mode === 'sync' ? SYNC_ACCESS : PARALLEL_ACCESS;
    const denied = (paths: readonly string[]) => {
      const at = paths.find((entry) => entry.endsWith('/e'));
      if (at === undefined) return access.lstatEach(paths);
      const error = Object.assign(new Error(`EACCES: permission denied, lstat '${at}'`), { code: 'EACCES', syscall: 'lstat', path: at });
      if (mode === 'sync') throw error;
      return Promise.reject(error);
    };
    const walk = (async () => {
      for await (const item of walkTenant(root, { skipped: [], warnings: [] }, { ...access, lstatEach: denied })) void item;
    })();
    await expect(walk).rejects.toMatchObject({ path: path.join(realpathSync(root), 'd', 'e'), message: `EACCES: permission denied, lstat '${path.join(realpathSync(root), 'd', 'e')}'` });
  });
});

describe('walkTenant and mount points inside the tenant', () => {
  /** Runs `mount ARGS…`; false where this process may not mount (not root). */
  const mount = (...args: string[]) => spawnSync('mount', args, { stdio: 'ignore' }).status === 0;
  const mounted: string[] = [];
  afterEach(() => {
    // Before the temporary tree is removed: never through a mount.
    for (const at of mounted.splice(0).reverse()) spawnSync('umount', [at], { stdio: 'ignore' });
  });

  async function walkWithNotes(tenant: string, access: FileAccess): Promise<{ walked: string[]; notes: WalkNotes }> {
    const notes: WalkNotes = { skipped: [], warnings: [] };
    const walked: string[] = [];
    for await (const item of walkTenant(tenant, notes, access)) walked.push(item.relPath);
    return { walked, notes };
  }

  it.for(['sync', 'parallel'] as const)('stays on the tenant\'s file system: a bind mount (same st_dev), a tmpfs and a file mounted over are not walked into, each warned about in one line (%s)', async (mode, context) => {
    // An operator's shared directory bind-mounted into the tenant was archived whole, and a
    // restore wrote it into the tenant's own file system.
    const tenant = path.join(root, 'acme');
    const shared = path.join(root, 'shared');
    mkdirSync(path.join(shared, 'inner'), { recursive: true });
    writeFileSync(path.join(shared, 'inner', 'data'), 'the operator\'s');
    writeFileSync(path.join(shared, 'one-file'), 'the operator\'s');
    for (const dir of ['bind', 'scratch', 'work']) mkdirSync(path.join(tenant, dir), { recursive: true });
    writeFileSync(path.join(tenant, 'work', 'own'), 'the tenant\'s');
    writeFileSync(path.join(tenant, 'work', 'over'), 'hidden by the mount');
    if (!mount('--bind', shared, path.join(tenant, 'bind'))) return context.skip('mounting needs root');
    mounted.push(path.join(tenant, 'bind'));
    expect(mount('-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', path.join(tenant, 'scratch'))).toBe(true);
    mounted.push(path.join(tenant, 'scratch'));
    writeFileSync(path.join(tenant, 'scratch', 'temp'), 'on tmpfs');
    expect(mount('--bind', path.join(shared, 'one-file'), path.join(tenant, 'work', 'over'))).toBe(true);
    mounted.push(path.join(tenant, 'work', 'over'));

    const { walked, notes } = await walkWithNotes(tenant, mode === 'sync' ? SYNC_ACCESS : PARALLEL_ACCESS);
    expect(walked).toEqual(['', 'bind', 'scratch', 'work', 'work/own']);
    const mountPoint = 'mount point (another file system or a bind mount): archived as an empty directory, not what is mounted on it (back that up on its own)';
    expect(notes.warnings).toEqual([
      { path: 'bind', reason: mountPoint },
      { path: 'scratch', reason: mountPoint },
      { path: 'work/over', reason: 'file mounted over (a bind mount): not archived (back it up on its own)' },
    ]);
    expect(notes.skipped.map((note) => note.path)).toEqual(['bind', 'scratch', 'work/over']);
  });

  it('tells a bind mount made after the walk read the mount table by the mount of the directory it opens', async (context) => {
    const tenant = path.join(root, 'acme');
    const shared = path.join(root, 'shared');
    mkdirSync(shared);
    writeFileSync(path.join(shared, 'data'), 'the operator\'s');
    mkdirSync(path.join(tenant, 'a', 'late'), { recursive: true });
    writeFileSync(path.join(tenant, 'a', 'own'), 'the tenant\'s');
    const walk = new TenantWalk(tenant, SYNC_ACCESS);
    const first = walk.next(1) as WalkItem[]; // reads the mount table and lists the root only
    expect(first.map((item) => item.relPath)).toEqual(['']);
    if (!mount('--bind', shared, path.join(tenant, 'a', 'late'))) return context.skip('mounting needs root');
    mounted.push(path.join(tenant, 'a', 'late'));
    const rest = walk.next(100) as WalkItem[];
    expect(rest.map((item) => `${item.kind} ${item.relPath}`)).toEqual(['directory a', 'directory a/late', 'note a/late', 'file a/own']);
  });

  it('reads the mount table\'s escaped paths (a space, a tab, a newline, a backslash: \\040 \\011 \\012 \\134)', (context) => {
    const tenant = path.join(root, 'acme');
    const odd = 'a b\tc\nd\\e';
    mkdirSync(path.join(tenant, odd), { recursive: true });
    if (!mount('-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', path.join(tenant, odd))) return context.skip('mounting needs root');
    mounted.push(path.join(tenant, odd));
    expect([...mountPointsUnder(tenant)]).toEqual([odd]);
    expect([...mountPointsUnder(path.join(tenant, odd))]).toEqual([]);
  });

  it('reads a mount point whose name is not UTF-8 as the walk holds it: a file mounted over one is left out, not read through the mount', async (context) => {
    const tenant = path.join(root, 'acme');
    mkdirSync(tenant, { recursive: true });
    const at = (latin1: string) => Buffer.from(`${tenant}/${latin1}`, 'latin1');
    writeFileSync(at('caf\xe9'), 'the tenant\'s file');
    mkdirSync(at('d\xe9 x'));
    writeFileSync(path.join(root, 'host-file'), 'a host file mounted over it');
    // mount's arguments as bytes: through bash's $'…'.
    const bash = (command: string) => spawnSync('bash', ['-c', command], { stdio: 'ignore' }).status === 0;
    if (!bash(`mount --bind '${root}/host-file' '${tenant}/'$'caf\\xe9'`)) return context.skip('mounting needs root');
    try {
      expect(bash(`mount -t tmpfs -o size=1m tmpfs '${tenant}/'$'d\\xe9 x'`)).toBe(true);
      try {
        expect([...mountPointsUnder(tenant)].sort()).toEqual(['caf\udce9', 'd\udce9 x']);
        const { walked, notes } = await walkWithNotes(tenant, SYNC_ACCESS);
        expect(walked).toEqual(['', 'd\udce9 x']);
        expect(notes.warnings).toContainEqual({ path: 'caf\udce9', reason: 'file mounted over (a bind mount): not archived (back it up on its own)' });
      } finally {
        bash(`umount '${tenant}/'$'d\\xe9 x'`);
      }
    } finally {
      bash(`umount '${tenant}/'$'caf\\xe9'`);
    }
  });
});

describe('what the walk holds of a listed directory', () => {
  it.each(['sync', 'parallel'] as const)('keeps plain files as one run of its listing, and of a directory or symlink only mode, mtime and device (%s)', async (mode) => {
    // A directory's items live until the walk moves past it: an object per file (~70 bytes),
    // later a string per file, and a whole Stats per symlink (~740 bytes) made 1,000,000 files
    // or 100,000 symlinks in one directory cost tens to hundreds of MiB at the listing.
    mkdirSync(path.join(root, 'd'));
    for (let i = 0; i < 100; i++) writeFileSync(path.join(root, 'd', `f${i}`), '');
    symlinkSync('f0', path.join(root, 'd', 'link'));
    mkdirSync(path.join(root, 'd', 'sub'));
    const walk = new TenantWalk(root, mode === 'sync' ? SYNC_ACCESS : PARALLEL_ACCESS);
    const first = await walk.next(3); // '', 'd', and the first item in d
    expect(first.map((item) => item.relPath)).toEqual(['', 'd', 'd/f0']);
    const stack = Reflect.get(walk, 'stack') as { items: unknown[] }[];
    const listed = stack[stack.length - 1]!.items;
    // f0 ... f99 (one run), link, sub.
    expect(listed).toHaveLength(3);
    expect(listed.filter((item) => typeof item === 'string' || (item as { kind?: string }).kind === 'file')).toEqual([]);
    const rest = await walk.next(200);
    const link = rest.find((item) => item.kind === 'symlink')!;
    const sub = rest.find((item) => item.kind === 'directory')!;
    for (const item of [link, sub]) expect(Object.keys(item.stat!).sort()).toEqual(['dev', 'mode', 'mtimeMs', 'size', 'type']);
    expect(rest.map((item) => item.relPath)).toEqual([...Array.from({ length: 99 }, (_, i) => `d/f${i + 1}`).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))), 'd/link', 'd/sub'].sort());
    expect(rest.find((item) => item.relPath === 'd/f5')).toMatchObject({ kind: 'file', name: 'f5', dirPath: realpathSync(path.join(root, 'd')), stat: undefined });
  });
});

describe('a directory of many files', () => {
  const FILES = 100_000;
  /** An access whose listing of the root names FILES files that are not there (the walk reads none; it lstats only directories and symlinks). */
  const manyFiles = (access: FileAccess): FileAccess => ({
    ...access,
    readdir: (dir) => {
      const listedRoot = () => {
        const listed = new PackedListing();
        for (let i = FILES - 1; i >= 0; i--) listed.add(`f${i}`, undefined);
        listed.add('sub', 'directory');
        return listed;
      };
      const atRoot = (own: PackedListing) => (own.size === 1 && own.name(0) === 'sub' ? listedRoot() : own);
      const real = access.readdir(dir);
      return real instanceof Promise ? real.then(atRoot) : atRoot(real);
    },
  });

  it.each(['sync', 'parallel'] as const)('holds them as one run of its packed listing, however many there are (%s)', async (mode) => {
    mkdirSync(path.join(root, 'sub'));
    const walk = new TenantWalk(root, manyFiles(mode === 'sync' ? SYNC_ACCESS : PARALLEL_ACCESS));
    const first = await walk.next(2);
    expect(first.map((item) => item.relPath)).toEqual(['', 'f0']);
    const stack = Reflect.get(walk, 'stack') as { items: unknown[] }[];
    // The files f0 ... f99999 (in byte order: f0, f1, f10, f100, ...), then sub: two items held, not one a file.
    expect(stack[0]!.items).toHaveLength(2);
    const file = first[1] as Extract<WalkItem, { kind: 'file' }>;
    expect(file.listing.names).toBeInstanceOf(PackedListing);
    expect(file.listing.names.size).toBe(FILES + 1);
    const files = ['f0'];
    for (let run = await walk.next(4096); run.length > 0; run = await walk.next(4096)) {
      for (const item of run) if (item.kind === 'file') files.push(item.relPath);
    }
    expect(files).toEqual(Array.from({ length: FILES }, (_, i) => `f${i}`).sort());
  });
});
