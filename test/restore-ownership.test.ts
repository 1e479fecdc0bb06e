// Who owns a restored tenant. Run as root (a gateway's operator restoring into the service
// user's base dir), every restored entry takes the owner of the tenant it replaces, else of
// the base dir, or --owner's; each of the three tree writers (synchronous, writer threads,
// many calls in flight) gives it to files, directories, symlinks and hard links. A restore
// that needs no change of owner makes no chown call at all (counted with strace), and
// --owner is refused where it cannot work: another user's IDs without root, remote mode.

import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, promises as fsPromises, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { PARALLEL_ACCESS } from '../shared/file-access.js';
import { restoreTenant, type RestoreRequest } from '../shared/restore/restore.js';
import { LocalFileLocation } from '../shared/storage/local.js';
import { parseOwner, type Owner } from '../shared/tenant/ownership.js';
import { TarBuilder } from './helpers/tar-builder.js';
import { cliPath, runCli, tempDir } from './helpers/tree.js';
import { compressFrames } from './helpers/zstd.js';

const isRoot = process.geteuid?.() === 0;
const hasStrace = existsSync('/usr/bin/strace');
const hasSetpriv = existsSync('/usr/bin/setpriv');
const NOBODY = 65534;

let dir: ReturnType<typeof tempDir>;
let base: string;
let archive: string;

/** Every kind of entry a restore creates: directories (one implied), files (one over a frame), a symlink, a hard link. */
async function writeArchive(file: string): Promise<void> {
  const tar = new TarBuilder()
    .dir('tenants/acme/')
    .dir('tenants/acme/sessions/')
    .file('tenants/acme/config.json', '{"name":"Acme"}')
    .file('tenants/acme/sessions/s1.jsonl', Buffer.alloc(3 * 1024 * 1024, 7))
    .file('tenants/acme/implied/deeper/note.txt', 'parents made on the way')
    .symlink('tenants/acme/current', 'sessions/s1.jsonl')
    .hardlink('tenants/acme/config.copy', 'tenants/acme/config.json')
    .build();
  const frames: Buffer[] = [];
  for await (const frame of compressFrames(Readable.from([tar]))) frames.push(frame);
  writeFileSync(file, Buffer.concat(frames));
}

beforeEach(async () => {
  dir = tempDir('openclaw-owner-');
  base = path.join(dir.path, 'tenants');
  mkdirSync(base);
  archive = path.join(dir.path, 'acme.tar.zst');
  await writeArchive(archive);
});
afterEach(() => dir.cleanup());

/** uid:gid of every entry of the tree, by path. */
function owners(root: string): Record<string, string> {
  const found: Record<string, string> = {};
  const visit = (relative: string) => {
    const full = relative === '' ? root : path.join(root, relative);
    const stat = lstatSync(full);
    found[relative === '' ? '.' : relative] = `${stat.uid}:${stat.gid}`;
    if (stat.isDirectory()) for (const name of readdirSync(full)) visit(relative === '' ? name : `${relative}/${name}`);
  };
  visit('');
  return found;
}

function expectAllOwnedBy(root: string, owner: Owner): void {
  const tree = owners(root);
  expect(Object.keys(tree).sort()).toEqual(['.', 'config.copy', 'config.json', 'current', 'implied', 'implied/deeper', 'implied/deeper/note.txt', 'sessions', 'sessions/s1.jsonl']);
  for (const [entry, ids] of Object.entries(tree)) expect(`${entry} ${ids}`).toBe(`${entry} ${owner.uid}:${owner.gid}`);
}

/** Spies on fs.promises.mkdir: right after a directory `swapWhen` picks is made, `swap` runs on its path (the base dir's owner at work). */
function afterMkdir(swapWhen: (at: string) => boolean, swap: (at: string) => void): { mockRestore(): void } {
  const realMkdir = fsPromises.mkdir.bind(fsPromises);
  return vi.spyOn(fsPromises, 'mkdir').mockImplementation(async (...args: Parameters<typeof fsPromises.mkdir>) => {
    const made = await realMkdir(...args);
    const at = String(args[0]);
    if (swapWhen(at)) swap(at);
    return made;
  });
}

const isStagingDir = (at: string) => path.dirname(at) === base && path.basename(at).startsWith('.openclaw-staging-acme-');

const restore = (extra: Partial<RestoreRequest> = {}) => restoreTenant({ tenantsDir: base, location: new LocalFileLocation(archive), ...extra });

const WRITERS: [string, Partial<RestoreRequest>][] = [
  ['the synchronous writer', { workerThresholdBytes: Infinity }],
  ['the writer threads', { workerThresholdBytes: 0 }],
  ['the network file system writer', { fileAccess: PARALLEL_ACCESS }],
];

describe.skipIf(!isRoot)('a restore run as root', () => {
  describe.each(WRITERS)('through %s', (_name, writer) => {
    it('gives every entry to the owner of the base dir', async () => {
      chownSync(base, 4242, 4343);
      const result = await restore(writer);
      expect(result.owner).toEqual({ uid: 4242, gid: 4343 });
      expectAllOwnedBy(path.join(base, 'acme'), { uid: 4242, gid: 4343 });
    });

    it('gives every entry to the owner of the tenant it replaces', async () => {
      chownSync(base, 4242, 4343);
      mkdirSync(path.join(base, 'acme'));
      writeFileSync(path.join(base, 'acme', 'old.txt'), 'the tenant replaced');
      chownSync(path.join(base, 'acme'), 5151, 5252);
      const result = await restore({ ...writer, force: true });
      expect(result.replaced).toBe(true);
      expectAllOwnedBy(path.join(base, 'acme'), { uid: 5151, gid: 5252 });
    });

    it('writes nothing through a symlink the base dir\'s owner puts in place of the staging directory', async () => {
      // The base dir's owner may rename root's staging directory (0700, which it cannot enter)
      // and leave a symlink in its place: root going on by paths made a root-only directory
      // named like one of the archive's 0777 and that user's, and created files in it.
      chownSync(base, 4242, 4343);
      const victim = path.join(dir.path, 'victim');
      mkdirSync(path.join(victim, 'etc'), { recursive: true, mode: 0o755 });
      chmodSync(path.join(victim, 'etc'), 0o755);
      const tar = new TarBuilder()
        .dir('tenants/acme/')
        .dir('tenants/acme/etc/', { mode: 0o777 })
        .file('tenants/acme/etc/big', Buffer.alloc(6 * 1024 * 1024, 7))
        .file('tenants/acme/etc/planted', 'planted')
        .build();
      const frames: Buffer[] = [];
      for await (const frame of compressFrames(Readable.from([tar]))) frames.push(frame);
      writeFileSync(archive, Buffer.concat(frames));
      let swapped = false;
      const onProgress = () => {
        if (swapped) return;
        const staging = readdirSync(base).find((name) => name.startsWith('.openclaw-staging-'));
        if (staging === undefined || !existsSync(path.join(base, staging, 'etc'))) return;
        renameSync(path.join(base, staging), path.join(base, 'moved'));
        symlinkSync(victim, path.join(base, staging));
        swapped = true;
      };
      await expect(restore({ ...writer, onProgress })).rejects.toThrow(/staging directory .* was moved or replaced by someone else/);
      expect(swapped).toBe(true);
      expect(existsSync(path.join(base, 'acme'))).toBe(false);
      const etc = lstatSync(path.join(victim, 'etc'));
      expect([etc.mode & 0o7777, etc.uid]).toEqual([0o755, 0]);
      expect(readdirSync(path.join(victim, 'etc'))).toEqual([]);
      expect(readdirSync(path.join(base, 'moved', 'etc')).sort()).toEqual(['big', 'planted']);
    });

    it('gives every entry to --owner, whoever owns the rest', async () => {
      chownSync(base, 4242, 4343);
      await restore({ ...writer, owner: { uid: 777, gid: 778 } });
      expectAllOwnedBy(path.join(base, 'acme'), { uid: 777, gid: 778 });
    });
  });

  it('says so, exit 1, when the staging directory is swapped for a symlink just before the move into the slot', async () => {
    // The move goes by the staging directory's name: its owner, told by the journal's rename
    // that the commit began, could leave a link there, which became the tenant, and the
    // restore said it succeeded. Here the swap comes right before that rename.
    chownSync(base, 4242, 4343);
    const victim = path.join(dir.path, 'victim');
    mkdirSync(victim, { mode: 0o700 });
    const slot = path.join(base, 'acme');
    const realRename = fsPromises.rename.bind(fsPromises);
    const spy = vi.spyOn(fsPromises, 'rename').mockImplementation(async (from, to) => {
      if (to === slot && path.basename(String(from)).startsWith('.openclaw-staging-acme-')) {
        renameSync(String(from), path.join(base, 'moved'));
        symlinkSync(victim, String(from));
      }
      return realRename(from, to);
    });
    try {
      await expect(restore()).rejects.toThrow(/was replaced by someone else just before it was moved into the slot: .*acme holds what they put there, not the restored tenant \(now at .*moved\)/);
    } finally {
      spy.mockRestore();
    }
    expect(lstatSync(slot).isSymbolicLink()).toBe(true);
    expect(readdirSync(victim)).toEqual([]);
    expectAllOwnedBy(path.join(base, 'moved'), { uid: 4242, gid: 4343 });
  });

  it('writes nothing through a symlink put in place of the staging directory when the tenant it replaces is root\'s', async () => {
    // No owner to give the tree to (the old tenant is root's), so the restore went by paths,
    // though the base dir is another user's, who could swap the staging directory all the same.
    chownSync(base, 4242, 4343);
    mkdirSync(path.join(base, 'acme'));
    writeFileSync(path.join(base, 'acme', 'old'), 'old');
    const victim = path.join(dir.path, 'victim');
    mkdirSync(victim, { mode: 0o700 });
    const spy = afterMkdir(isStagingDir, (at) => {
      renameSync(at, path.join(base, 'moved'));
      symlinkSync(victim, at);
    });
    try {
      await expect(restore({ force: true })).rejects.toThrow(/^the restore's staging directory .* was replaced while it was made \(it is no longer a directory there\)/);
    } finally {
      spy.mockRestore();
    }
    expect(readdirSync(victim)).toEqual([]);
    expect(readFileSync(path.join(base, 'acme', 'old'), 'utf8')).toBe('old');
  });

  it.each([
    ['an empty directory of theirs', (at: string) => mkdirSync(at, { mode: 0o700 })],
    ['a directory of theirs holding a symlink named like one in the archive', (at: string, victim: string) => (mkdirSync(at, { mode: 0o777 }), symlinkSync(victim, path.join(at, 'sessions')))],
  ])('writes nothing into %s put in place of the staging directory', async (_case, plant) => {
    // The base dir's owner renamed the new staging directory away and made one of its own
    // under the name before root opened it: that passed as the one made, and, theirs, they
    // could swap a subdirectory of the tree for a symlink while root wrote it (a root-only
    // directory was made 0755 and root created the archive's files in it; with the CLI).
    chownSync(base, 4242, 4343);
    const victim = path.join(dir.path, 'victim');
    mkdirSync(victim, { mode: 0o700 });
    chmodSync(victim, 0o700);
    const spy = afterMkdir(isStagingDir, (at) => {
      renameSync(at, path.join(base, 'moved'));
      plant(at, victim);
      chownSync(at, 4242, 4343);
    });
    try {
      await expect(restore()).rejects.toThrow(/^the restore's staging directory .* was replaced while it was made \(the directory there is not the empty 0700 one it made\): restore again/);
    } finally {
      spy.mockRestore();
    }
    const stat = lstatSync(victim);
    expect([stat.uid, stat.gid, stat.mode & 0o7777]).toEqual([0, 0, 0o700]);
    expect(readdirSync(victim)).toEqual([]);
    expect(existsSync(path.join(base, 'acme'))).toBe(false);
  });

  it('restores into a setgid base dir, whose setgid bit its staging directory gets', async () => {
    chownSync(base, 4242, 4343);
    chmodSync(base, 0o2750);
    await restore();
    expectAllOwnedBy(path.join(base, 'acme'), { uid: 4242, gid: 4343 });
  });

  // Through an EFS access point the functions run as Lambda's own user (uid 993) while every
  // file they create belongs to the access point's user, the base dir's owner: played here by
  // root's process claiming another uid, its directories root's, like the base dir's.
  it('restores where new files get the base dir owner\'s uid, not this process\'s (an EFS access point)', async () => {
    const spy = vi.spyOn(process, 'geteuid').mockReturnValue(4321);
    try {
      await restore();
    } finally {
      spy.mockRestore();
    }
    expect(readFileSync(path.join(base, 'acme', 'config.json'), 'utf8')).toBe('{"name":"Acme"}');
    expect(readdirSync(base).filter((name) => name !== 'acme' && !name.startsWith('.openclaw-lock-'))).toEqual([]);
  });

  it('still refuses a staging directory owned by neither this user nor the base dir\'s owner', async () => {
    chownSync(base, 4322, 4322);
    const spy = vi.spyOn(process, 'geteuid').mockReturnValue(4321);
    try {
      await expect(restore()).rejects.toThrow(/staging directory .* was replaced while it was made \(the directory there is not the empty 0700 one it made\)/);
    } finally {
      spy.mockRestore();
    }
    expect(existsSync(path.join(base, 'acme'))).toBe(false);
  });

  it('leaves a tree root-owned in a root-owned base dir, and says no owner', async () => {
    const result = await restore();
    expect(result.owner).toBeUndefined();
    expectAllOwnedBy(path.join(base, 'acme'), { uid: 0, gid: 0 });
  });

  it('gives a base dir it creates to --owner too (a restore onto a new gateway)', async () => {
    const fresh = path.join(dir.path, 'new-gateway', 'tenants');
    await restoreTenant({ tenantsDir: fresh, location: new LocalFileLocation(archive), owner: { uid: 4242, gid: 4343 } });
    expect(`${lstatSync(fresh).uid}:${lstatSync(fresh).gid}`).toBe('4242:4343');
    expectAllOwnedBy(path.join(fresh, 'acme'), { uid: 4242, gid: 4343 });
  });

  it('gives the base dir it creates to --owner through no symlink put in its place', async () => {
    // The new base dir's parent may be the owner's (the service user's home): it could rename
    // the directory root had just made and leave a symlink, and a chown by name gave the
    // link's target, a root-only directory, to that user. Here the swap comes right after mkdir.
    const parent = path.join(dir.path, 'home');
    mkdirSync(parent);
    chownSync(parent, 4242, 4343);
    const fresh = path.join(parent, 'tenants');
    const victim = path.join(dir.path, 'victim');
    mkdirSync(victim, { mode: 0o700 });
    const spy = afterMkdir((at) => at === fresh, () => {
      renameSync(fresh, `${fresh}.moved`);
      symlinkSync(victim, fresh);
    });
    try {
      await expect(restoreTenant({ tenantsDir: fresh, location: new LocalFileLocation(archive), owner: { uid: 4242, gid: 4343 } })).rejects.toThrow(
        /^the base dir .*home\/tenants the restore made was moved or replaced before it was given to 4242:4343: nothing was restored/,
      );
    } finally {
      spy.mockRestore();
    }
    const stat = lstatSync(victim);
    expect([stat.uid, stat.gid, stat.mode & 0o7777]).toEqual([0, 0, 0o700]);
    expect(readdirSync(victim)).toEqual([]);
  });

  it('through the CLI: --owner, and the default, are reported', () => {
    chownSync(base, 4242, 4343);
    const run = runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive]);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain('  owned by 4242:4343\n');
    const json = runCli(['--tenants-dir', base, '--json', 'tenants', 'restore', '--from', archive, '--as', 'other', '--owner', '31:32']);
    expect(JSON.parse(json.stdout)).toMatchObject({ tenant: 'other', owner: { uid: 31, gid: 32 } });
    expectAllOwnedBy(path.join(base, 'other'), { uid: 31, gid: 32 });
  });

  it.skipIf(!hasStrace)('makes no chown call when nobody else should own the tree', () => {
    const calls = chownCalls([process.execPath, cliPath, '--tenants-dir', base, 'tenants', 'restore', '--from', archive]);
    expect(calls.status).toBe(0);
    expect(calls.chowns).toEqual([]);
    // …and one per entry (the hard link shares its target's) when someone else should, and
    // one of the tenant's lock, given to the base dir's owner (an fchown of its descriptor).
    chownSync(base, 4242, 4343);
    const owned = chownCalls([process.execPath, cliPath, '--tenants-dir', base, 'tenants', 'restore', '--from', archive, '--as', 'owned']);
    expect(owned.status).toBe(0);
    expect(owned.chowns).toHaveLength(9);
    expect(owned.chowns.filter((line) => /\bfchown\(\d+, 4242, 4343\)/.test(line))).not.toHaveLength(0);
  });
});

describe.skipIf(!isRoot || !hasSetpriv)('a restore run as another user', () => {
  beforeEach(() => {
    // Readable by that user whatever the umask the tests run with (077 made the archive root's alone).
    chmodSync(dir.path, 0o755);
    chmodSync(archive, 0o644);
    chownSync(base, NOBODY, NOBODY);
  });

  it.skipIf(!hasStrace)('restores without a single chown call', () => {
    const calls = chownCalls(['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, cliPath, '--tenants-dir', base, 'tenants', 'restore', '--from', archive]);
    expect(calls.status, calls.stderr).toBe(0);
    expect(calls.chowns).toEqual([]);
    expectAllOwnedBy(path.join(base, 'acme'), { uid: NOBODY, gid: NOBODY });
  });

  it('refuses --owner naming another user, before touching anything', () => {
    const run = spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, cliPath, '--tenants-dir', base, 'tenants', 'restore', '--from', archive, '--owner', '0:0'], { encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toBe('openclaw: --owner 0:0 gives the tenant to another user, which needs root: run the restore as root, or leave --owner out\n');
    expect(readdirSync(base)).toEqual([]);
  });
});

describe('--owner', () => {
  it('takes UID:GID in numbers only', () => {
    expect(parseOwner('1000:1000')).toEqual({ uid: 1000, gid: 1000 });
    expect(parseOwner('0:0')).toEqual({ uid: 0, gid: 0 });
    for (const bad of ['openclaw:openclaw', '1000', '1000:', ':1000', '-1:-1', '1000:1000:1', ' 1:1', '4294967295:0', '99999999999:1']) expect(parseOwner(bad), bad).toBeUndefined();
  });

  it('is a usage error when it is not UID:GID, and in remote mode', () => {
    const bad = runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive, '--owner', 'openclaw']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^openclaw: option '--owner <uid:gid>' argument 'openclaw' is invalid\. must be UID:GID in numbers/);
    const remote = runCli(['--stack', 'openclaw-backup', 'tenants', 'restore', '--from', 's3://bucket/acme.tar.zst', '--owner', '1000:1000'], { env: { AWS_REGION: 'eu-west-1' } });
    expect(remote.status).toBe(2);
    expect(remote.stderr).toBe("openclaw: --owner is a local-mode setting: on the gateway the access point's POSIX user owns everything the restore function writes (see doctor)\n");
    expect(readdirSync(base)).toEqual([]);
  });
});

/** Runs `command` under strace, returning the chown-family calls it made. */
function chownCalls(command: string[]): { status: number | null; stderr: string; chowns: string[] } {
  const log = path.join(dir.path, `strace-${Date.now()}.log`);
  const run = spawnSync('strace', ['-f', '-qq', '-o', log, '-e', 'trace=chown,fchown,lchown,fchownat', ...command], { encoding: 'utf8' });
  const chowns = existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter((line) => /\b(f|l)?chown(at)?\(/.test(line)) : [];
  return { status: run.status, stderr: run.stderr, chowns };
}
