// A live writer's temporary archive on a destination with no inode left. An owner on another
// host is judged gone by its file's age on the file system's clock, which takes a file to read:
// without room for one, the sweeper took its own clock instead, and a sweeper whose clock ran
// ten minutes ahead removed a live backup's temporary archive, 4 s old, as silent for 60 s (the
// backup then failed: "cannot write …: … takes no new files"). Without the file system's clock
// no owner elsewhere is judged gone; a dead writer of this host still is (its file frees room).

import { spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, promises as fsPromises, readFileSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';

import { LocalFileLocation, removeDeadPartials } from '../shared/storage/local.js';
import { hostId, ownerTag } from '../shared/tenant/process-owner.js';
import { onTmpfs } from './helpers/tmpfs.js';
import { runCli, tempDir } from './helpers/tree.js';

/** Runs `body` with this host's clock (Date.now) 10 minutes ahead of the file system's. */
async function withThisHostTenMinutesAhead(body: () => Promise<void>): Promise<void> {
  const realNow = Date.now.bind(Date);
  const ahead = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 600_000);
  try {
    await body();
  } finally {
    ahead.mockRestore();
  }
}

describe('temporary archives on a destination with no inode left', () => {
  const dir = tempDir('openclaw-partials-no-room-');
  afterAll(() => dir.cleanup());

  it("keeps another host's fresh one when this host's clock runs 10 minutes ahead, and removes a dead writer's of this host", async (context) => {
    const disk = path.join(dir.path, 'disk');
    await onTmpfs(context, disk, 'size=1m,nr_inodes=16', async () => {
      const elsewhere = `.acme.tar.zst.${ownerTag({ pid: 4242, started: 1, hostId: 'aaaaaaaaaaaa' })}.0123456789ab.partial`;
      writeFileSync(path.join(disk, elsewhere), 'archive bytes so far');
      const dead = `.beta.tar.zst.${ownerTag({ pid: spawnSync('true').pid!, started: 1, hostId: hostId() })}.0123456789ab.partial`;
      writeFileSync(path.join(disk, dead), 'archive bytes so far');
      for (let i = 0; ; i++) {
        try {
          writeFileSync(path.join(disk, `filler-${i}`), '');
        } catch {
          break;
        }
      }
      expect(statfsSync(disk).ffree).toBe(0);

      await withThisHostTenMinutesAhead(() => removeDeadPartials(disk));
      const left = readdirSync(disk);
      expect(left).toContain(elsewhere);
      expect(left).not.toContain(dead);
    });
  }, 30_000);
  // The probe that reads the file system's clock failing otherwise than for room (EIO on a
  // network disk for a moment, EMFILE): the sweeper took this host's clock, as it does where
  // nothing can be removed (read-only), and one ten minutes ahead removed another host's live
  // temporary archive, a second old, though the removal went through.
  // sshfs says EPERM (its SSH_FX_FAILURE) of its server's ENOSPC and of every failure the
  // server does not name: with the server out of inodes, a backup into it whose host's clock ran
  // 10 minutes ahead removed another host's temporary archive written a second before.
  for (const code of ['EIO', 'EPERM']) {
    it(`keeps another host's fresh one when the file system's clock cannot be read (${code}), this host's clock 10 minutes ahead`, async () => {
      const disk = path.join(dir.path, `probe-${code}`);
      mkdirSync(disk);
      const elsewhere = path.join(disk, `.acme.tar.zst.${ownerTag({ pid: 4242, started: 1, hostId: 'aaaaaaaaaaaa' })}.0123456789ab.partial`);
      writeFileSync(elsewhere, 'archive bytes so far');
      const open = fsPromises.open.bind(fsPromises);
      const failing = vi.spyOn(fsPromises, 'open').mockImplementation(async (file, ...rest) => {
        if (String(file).includes('.openclaw-clock.')) throw Object.assign(new Error(`${code}: open`), { code, syscall: 'open', path: String(file) });
        return open(file, ...rest);
      });
      try {
        await withThisHostTenMinutesAhead(() => removeDeadPartials(disk));
      } finally {
        failing.mockRestore();
      }
      expect(existsSync(elsewhere)).toBe(true);
    });
  }

  // A killed backup's temporary archive of 535 KiB filled a 600 KiB destination: every later
  // backup was refused as "no space left" by the check before its write, and the write is what
  // sweeps the dead writers' temporaries, so the destination stayed full for good.
  for (const [what, options, fill, fillUp] of [
    ['no block', 'size=256k', (file: string) => writeFileSync(file, Buffer.alloc(300 * 1024)), () => undefined],
    ['no inode', 'size=1m,nr_inodes=8', (file: string) => writeFileSync(file, 'archive bytes so far'), fillWithEmptyFiles],
  ] as const) {
    it(`a backup into a destination with ${what} left by a killed backup's temporary archive removes it and goes on; another host's live one still refuses it`, async (context) => {
      const disk = path.join(dir.path, `full-${what.replace(' ', '-')}`);
      await onTmpfs(context, disk, options, async () => {
        const dead = path.join(disk, `.acme.tar.zst.${ownerTag({ pid: spawnSync('true').pid!, started: 1, hostId: hostId() })}.0123456789ab.partial`);
        try {
          fill(dead);
        } catch {
          // Written as far as it went: the disk is full.
        }
        fillUp(disk, 0);
        const destination = new LocalFileLocation(path.join(disk, 'acme.tar.zst'));
        // The dry run changes nothing, and says the run would go on.
        await destination.checkWritable({ overwrite: false });
        expect(existsSync(dead)).toBe(true);
        await destination.checkWritable({ overwrite: false, removeDeadPartials: true });
        expect(existsSync(dead)).toBe(false);

        const live = path.join(disk, `.beta.tar.zst.${ownerTag({ pid: 4242, started: 1, hostId: 'aaaaaaaaaaaa' })}.0123456789ab.partial`);
        try {
          fill(live);
        } catch {
          // Full again.
        }
        fillUp(disk, 100);
        await expect(destination.checkWritable({ overwrite: false, removeDeadPartials: true })).rejects.toThrow(/^cannot write .*acme\.tar\.zst: no (space|inode) left on the device/);
        await expect(destination.checkWritable({ overwrite: false })).rejects.toThrow(/no (space|inode) left/);
        expect(existsSync(live)).toBe(true);
      });
    }, 30_000);
  }

  // The same from outside, on tmpfs, which counts a hard link against its inodes: the killed
  // backup's temporary archive took the last inode, the next backup removed it and wrote its
  // own there, and its commit's link (the archive's second name) then failed "no inode left"
  // after the whole archive was written: exit 1, nothing stored, where the dry run had said it
  // would back up. The commit renames where the link finds no room.
  it("a backup into a tmpfs destination whose last inode a killed backup's temporary archive held stores its archive", async (context) => {
    const disk = path.join(dir.path, 'last-inode');
    const base = path.join(dir.path, 'last-inode-tenants');
    mkdirSync(path.join(base, 'acme'), { recursive: true });
    writeFileSync(path.join(base, 'acme', 'a.txt'), 'live\n');
    await onTmpfs(context, disk, 'size=1m,nr_inodes=8', async () => {
      const to = path.join(disk, 'acme.tar.zst');
      fillWithEmptyFiles(disk, 0);
      rmSync(path.join(disk, 'filler-0'));
      const killed = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', to], { env: { OPENCLAW_TEST_CRASH_AT: 'archive:temp-written' } });
      expect(killed.status).toBeNull(); // killed
      expect(readdirSync(disk).filter((name) => name.endsWith('.partial'))).toHaveLength(1);
      expect(statfsSync(disk).ffree).toBe(0);

      expect(runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', to, '--dry-run']).status).toBe(0);
      const run = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', to]);
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      expect(readdirSync(disk).filter((name) => !name.startsWith('filler-'))).toEqual(['acme.tar.zst']);
      expect(runCli(['--tenants-dir', base, 'tenants', 'verify', '--from', to]).status).toBe(0);
      // Still no replacing: a second backup to the name is refused as it exists.
      const again = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', to]);
      expect([again.status, again.stderr]).toEqual([3, expect.stringMatching(/already exists: pass --overwrite/)]);
    });
  }, 30_000);

  // A dry run into a full destination said it would back up (exit 0) while a dead writer's
  // temporary archive was there, though removing it frees no block: an empty one (a backup
  // killed right after creating it), or a second name of a stored archive (one killed between
  // its commit's link and unlink); the run then said "no space left" (exit 1).
  it("a dry run into a full destination whose dead writers' temporary archives free no block is refused as the run is", async (context) => {
    const disk = path.join(dir.path, 'frees-nothing');
    await onTmpfs(context, disk, 'size=256k', async () => {
      const deadOwner = ownerTag({ pid: spawnSync('true').pid!, started: 1, hostId: hostId() });
      const stored = path.join(disk, 'stored.tar.zst');
      writeFileSync(stored, Buffer.alloc(64 * 1024, 1));
      linkSync(stored, path.join(disk, `.stored.tar.zst.${deadOwner}.0123456789ab.partial`));
      const empty = path.join(disk, `.acme.tar.zst.${deadOwner}.ba9876543210.partial`);
      writeFileSync(empty, '');
      try {
        writeFileSync(path.join(disk, 'filler'), Buffer.alloc(512 * 1024));
      } catch {
        // Full.
      }
      const destination = new LocalFileLocation(path.join(disk, 'acme.tar.zst'));
      await expect(destination.checkWritable({ overwrite: false })).rejects.toThrow(/^cannot write .*acme\.tar\.zst: no space left on the device/);
      await expect(destination.checkWritable({ overwrite: false, removeDeadPartials: true })).rejects.toThrow(/no space left/);
      expect(existsSync(empty)).toBe(false);
      expect(readFileSync(stored)).toEqual(Buffer.alloc(64 * 1024, 1));

      // One that does free a block: the dry run goes on, as the run does.
      rmSync(path.join(disk, 'filler'));
      const freeing = path.join(disk, `.beta.tar.zst.${deadOwner}.0123456789ab.partial`);
      writeFileSync(freeing, 'x');
      try {
        writeFileSync(path.join(disk, 'filler'), Buffer.alloc(512 * 1024));
      } catch {
        // Full again.
      }
      await destination.checkWritable({ overwrite: false });
      expect(existsSync(freeing)).toBe(true);
      await destination.checkWritable({ overwrite: false, removeDeadPartials: true });
      expect(existsSync(freeing)).toBe(false);
    });
  }, 30_000);
});

/** Empty files into `disk` until it takes none (a disk with a few inodes). */
function fillWithEmptyFiles(disk: string, from: number): void {
  for (let i = from; ; i++) {
    try {
      writeFileSync(path.join(disk, `filler-${i}`), '');
    } catch {
      return;
    }
  }
}
