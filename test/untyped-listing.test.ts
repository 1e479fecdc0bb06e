// A file system that gives no entry types (d_type DT_UNKNOWN: a FUSE file system written with
// fusepy, XFS made without ftype): Node lstats each listed name itself, and one that fails
// failed the whole listing, so the walk took the directory for vanished and a backup left all
// of it out, exit 0 with one warning: a name that is not UTF-8 (Node lstats its U+FFFD text),
// or a name removed between the listing and Node's lstat. Reproduced with a fusepy passthrough
// over a tenant holding one Latin-1 directory name at its top: `tenants backup` archived
// 0 files of 377, `tenants list` counted 0. The passthrough here lists a name it then says is
// gone (a name removed since the listing, every time). The same failed `tenants list` and
// `backup --all` (the base dir 'does not exist'), the removal of an old tenant's tree, and the
// listing of a local store of archives ('no such directory', or a directory below it empty).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { walkTenant, type WalkItem, type WalkNotes } from '../shared/backup/tenant-walk.js';
import { PARALLEL_ACCESS, SYNC_ACCESS } from '../shared/file-access.js';
import { LocalArchiveStore } from '../shared/storage/local-store.js';
import { removeTree } from '../shared/tenant/remove-tree.js';
import { listTenantNames } from '../shared/tenant/tenants.js';
import { tempDir } from './helpers/tree.js';

/** A passthrough of argv[1] at argv[2] whose listings give no types and name a "ghost" that is never there. */
const PASSTHROUGH = `
import os, sys
try:
    from fusepy import FUSE, Operations, FuseOSError
except ImportError:
    from fuse import FUSE, Operations, FuseOSError
class Passthrough(Operations):
    def __init__(self, root): self.root = os.fsencode(root)
    def at(self, path): return self.root + path.encode('latin-1')
    def getattr(self, path, fh=None):
        try: st = os.lstat(self.at(path))
        except OSError as e: raise FuseOSError(e.errno)
        return {k: getattr(st, k) for k in ('st_mode', 'st_nlink', 'st_size', 'st_uid', 'st_gid', 'st_atime', 'st_mtime', 'st_ctime')}
    def readdir(self, path, fh):
        return ['.', '..', 'ghost'] + [name.decode('latin-1') for name in os.listdir(self.at(path))]
    def readlink(self, path): return os.readlink(self.at(path)).decode('latin-1')
    def open(self, path, flags): return os.open(self.at(path), flags)
    def read(self, path, size, offset, fh): return os.pread(fh, size, offset)
    def release(self, path, fh): os.close(fh)
    def unlink(self, path): os.unlink(self.at(path))
    def rmdir(self, path): os.rmdir(self.at(path))
    def chmod(self, path, mode): os.chmod(self.at(path), mode)
FUSE(Passthrough(sys.argv[1]), sys.argv[2], foreground=True, encoding='latin-1')
`;

const PYTHON = '/usr/bin/python3';

function canMount(): boolean {
  if (process.geteuid?.() !== 0 || !existsSync('/dev/fuse') || !existsSync(PYTHON)) return false;
  if (spawnSync('sh', ['-c', 'command -v fusermount3 || command -v fusermount']).status !== 0) return false;
  return spawnSync(PYTHON, ['-c', 'try:\n import fusepy\nexcept ImportError:\n import fuse']).status === 0;
}

function isMounted(at: string): boolean {
  return readFileSync('/proc/self/mounts', 'utf8').split('\n').some((line) => line.split(' ')[1] === at);
}

describe.skipIf(!canMount())('a file system that gives no entry types (a fusepy passthrough)', () => {
  const dir = tempDir('openclaw-untyped-');
  const source = path.join(dir.path, 'source');
  const mounted = path.join(dir.path, 'mounted');
  let daemon: ChildProcess | undefined;

  beforeAll(async () => {
    const bytesPath = (...parts: (string | number[])[]) => Buffer.concat([Buffer.from(`${source}/`), ...parts.map((part) => Buffer.from(part))]);
    mkdirSync(bytesPath('caf', [0xe9]), { recursive: true });
    writeFileSync(bytesPath('caf', [0xe9], '/menu'), 'under a Latin-1 directory name');
    writeFileSync(bytesPath('caf', [0xe9], '/wine'), 'after the menu');
    mkdirSync(path.join(source, 'sessions'));
    writeFileSync(path.join(source, 'sessions', 'agent-0.json'), '{}');
    writeFileSync(path.join(source, 'notes.md'), 'notes');
    symlinkSync('notes.md', path.join(source, 'link'));
    spawnSync('mkfifo', [path.join(source, 'pipe')]);
    mkdirSync(mounted);
    writeFileSync(path.join(dir.path, 'passthrough.py'), PASSTHROUGH);
    daemon = spawn(PYTHON, [path.join(dir.path, 'passthrough.py'), source, mounted], { stdio: 'ignore' });
    for (let tries = 0; !isMounted(mounted); tries++) {
      if (tries === 100 || daemon.exitCode !== null) throw new Error('the passthrough did not mount');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  afterAll(async () => {
    if (isMounted(mounted)) spawnSync('sh', ['-c', 'fusermount3 -u "$1" || fusermount -u "$1"', 'sh', mounted]);
    if (daemon !== undefined && daemon.exitCode === null) {
      const exited = new Promise((resolve) => daemon!.once('exit', resolve));
      daemon.kill();
      await exited;
    }
    dir.cleanup();
  });

  for (const [mode, access] of [['sync', SYNC_ACCESS], ['parallel', PARALLEL_ACCESS]] as const) {
    it(`walks a listing holding a name that is not UTF-8 and one gone since, all but the gone one (${mode})`, async () => {
      const notes: WalkNotes = { skipped: [], warnings: [] };
      const walked: WalkItem[] = [];
      for await (const item of walkTenant(mounted, notes, access)) walked.push(item);

      expect(walked.map((item) => `${item.kind} ${item.relPath}`)).toEqual([
        'directory ',
        'directory caf\udce9',
        'file caf\udce9/menu',
        'file caf\udce9/wine',
        'symlink link',
        'file notes.md',
        'directory sessions',
        'file sessions/agent-0.json',
      ]);
      const ghosts = ['caf\udce9/ghost', 'ghost', 'sessions/ghost'];
      expect(notes.warnings).toEqual(ghosts.map((at) => ({ path: at, reason: 'vanished during backup; not archived' })));
      expect(notes.skipped).toEqual(
        expect.arrayContaining([{ path: 'pipe', reason: 'FIFO cannot be archived' }, ...ghosts.map((at) => ({ path: at, reason: 'vanished during backup' }))]),
      );
    });
  }

  it('resumes after an item below a directory of no type (a backup that continues)', async () => {
    const walked: string[] = [];
    for await (const item of walkTenant(mounted, { skipped: [], warnings: [] }, SYNC_ACCESS, { resumeAfter: 'sessions/agent-0.json' })) walked.push(item.relPath);
    expect(walked).toEqual([]);
    for await (const item of walkTenant(mounted, { skipped: [], warnings: [] }, SYNC_ACCESS, { resumeAfter: 'caf\udce9/menu' })) walked.push(item.relPath);
    expect(walked).toEqual(['caf\udce9/wine', 'link', 'notes.md', 'sessions', 'sessions/agent-0.json']);
  });

  it('lists the tenants of a base dir there ("the tenant base dir does not exist" before)', async () => {
    expect((await listTenantNames(mounted)).tenants).toEqual(['sessions']);
  });

  it('removes a tree there that holds a name that is not UTF-8 (an old tenant a restore --force replaced)', async () => {
    // Failed with ENOENT naming the Latin-1 name (by its U+FFFD text), nothing removed.
    const bytesPath = (...parts: (string | number[])[]) => Buffer.concat([Buffer.from(`${source}/`), ...parts.map((part) => Buffer.from(part))]);
    mkdirSync(bytesPath('trash/caf', [0xe9], '/sub'), { recursive: true });
    writeFileSync(bytesPath('trash/caf', [0xe9], '/sub/file'), 'old');
    writeFileSync(bytesPath('trash/menu', [0xe9]), 'old');
    writeFileSync(path.join(source, 'trash', 'plain'), 'old');
    await removeTree(path.join(mounted, 'trash'));
    expect(existsSync(path.join(source, 'trash'))).toBe(false);
  });

  it('lists the archives of a local store there, also in a directory holding a name that is not UTF-8', async () => {
    // The store's directory was 'no such directory or file'; a directory below it listed nothing.
    mkdirSync(path.join(source, 'store', 'old'), { recursive: true });
    writeFileSync(path.join(source, 'store', 'b.tar.zst'), 'b');
    writeFileSync(path.join(source, 'store', 'old', 'a.tar.zst'), 'a');
    writeFileSync(Buffer.from(`${source}/store/old/caf\xe9`, 'latin1'), 'not an archive');
    const listed = await new LocalArchiveStore(path.join(mounted, 'store')).list();
    expect(listed.map((object) => object.name)).toEqual(['b.tar.zst', 'old/a.tar.zst']);
  });
});
