// A private scratch directory for one backup run: SQLite snapshots and spooled copies of
// large files that were being written. Created on first use with mode 0700, since it holds
// tenant data; each file is removed as soon as it has been archived, and the directory when
// the run ends, however it ends. Only a killed process leaves one behind. Two places:
// - under os.tmpdir() (on Lambda, the function's ephemeral storage): its name carries its
//   owner (process-owner.ts), and the next backup on this machine removes those whose owner
//   is dead;
// - in the tenant base dir (`inTenantsDir`), for an encrypted backup (or one through a
//   `--pipe` command, the other way to encrypt), so that its plaintext
//   copies never exist outside the base dir, on storage as private as the live files: a
//   hidden `.openclaw-scratch-<tenant>-<rand>` (tenant/hidden-names.ts), made only while the
//   backup holds the tenant's lock, so the next command that sweeps the base dir removes one
//   whose backup is gone, as it removes a killed restore's staging (tenant/slot.ts). Those
//   are `tenants list` (also `--names`), `backup`, `backup --all`, `restore` and `recover`
//   (of any tenant), and the backup, restore and list functions; `backups`, `verify` and
//   `prune`, which never sweep, remove such an area of this user's alone (base-dir-sweep.ts
//   removeDeadScratchAreas); a dry run and `doctor` name it and remove nothing (deadScratchAreas). That directory is its owner's (the gateway's service user),
//   who can rename the area away and leave a symlink (to /etc/cron.d) under its name: root
//   then created the tenant's snapshot there, reproduced with the CLI. So the area is opened
//   once, right after it is made (never through a symlink), checked to be the empty 0700
//   directory this user just made (its path read back from procfs), and every file in it is
//   named through that descriptor's procfs link, /proc/self/fd/N/name, which resolves in the
//   directory opened whatever its name has become; its removal goes through the descriptor
//   too. Each new name also checks the area is still under its own name: SQLite resolves a
//   /proc/self/fd/N path to the directory's path itself (sqlite-snapshot.ts) and opens that.
//   Without procfs, as root: refused (nothing could tell a swap), else by its path.

import { AsyncLocalStorage } from 'node:async_hooks';
import { lstatSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { crashPoint } from '../crash-points.js';
import { errnoCode, errnoMessage, FileSystemError } from '../errors.js';
import { CAN_CHECK_OPENED_PATHS, mustRefuseWithoutProcfs, pinDirectory, type PinnedDirectory } from '../file-access.js';
import { shownPath } from '../format.js';
import { hiddenNames } from '../tenant/hidden-names.js';
import { NotJudgedError, RemovalStoppedError, removeTree } from '../tenant/remove-tree.js';
import { TRASH_MARKER, writeTrashMarker } from '../tenant/trash-marker.js';
import { isLocal, isProcessAliveOnce, OWNER_TAG_PATTERN, ownerTag, parseOwnerTag } from '../tenant/process-owner.js';

/** Files SQLite may create beside a database it opens. */
const SQLITE_SIDE_FILES = ['-journal', '-wal', '-shm'];

const PREFIX = 'openclaw-backup-';
/** Group and others' write bits: an area mkdtemp made has neither. */
const OTHERS_WRITE = 0o022;
/** `openclaw-backup-<owner>-XXXXXX` (mkdtemp adds the six characters). */
const AREA_NAME = new RegExp(`^${PREFIX}(${OWNER_TAG_PATTERN})-[A-Za-z0-9]{6}$`);

/** A directory made for the area: `dir`, the path its files are named under; `pinned`, its descriptor where files are named through it. */
interface MadeArea {
  readonly dir: string;
  readonly pinned?: PinnedArea;
}

/**
 * The areas under os.tmpdir() made within one scope (`TempArea.scope`: one invocation of the
 * backup function), made and not yet disposed: what removeLiveUnderTmpdir removes.
 */
const scopes = new AsyncLocalStorage<Set<TempArea>>();

export class TempArea {

  private dir: string | undefined;
  private pinned: PinnedArea | undefined;
  private counter = 0;
  private placedInBaseDir = false;
  /** Why the area was removed under its backup (removeLiveUnderTmpdir): no file may be made in it again. */
  private removedBecause: string | undefined;
  /** The scope it was made in, while it lives. */
  private scope: Set<TempArea> | undefined;

  /** `create` makes the directory (mode 0700) and returns its path. */
  private constructor(private readonly create: () => Promise<MadeArea>) {}

  /** An area under `parent`, named after its owner. */
  static underTmpdir(parent: string = os.tmpdir()): TempArea {
    return new TempArea(async () => ({
      dir: await fs.mkdtemp(path.join(parent, `${PREFIX}${ownerTag()}-`)).catch((error: unknown) => {
        throw scratchDirError(error, parent);
      }),
    }));
  }

  /** An area in the tenant base dir; the backup must hold the tenant's lock while it uses it. */
  static inTenantsDir(tenantsDir: string, tenant: string): TempArea {
    const area = new TempArea(async () => {
      if (mustRefuseWithoutProcfs()) {
        throw new FileSystemError(`cannot make a scratch directory in the base dir ${shownPath(tenantsDir)}: as root without procfs mounted at /proc a directory swapped for a symlink meanwhile cannot be told from its own; mount /proc, then run the command again`);
      }
      const dir = path.join(tenantsDir, hiddenNames.scratch(tenant));
      await fs.mkdir(dir, { mode: 0o700 });
      if (!CAN_CHECK_OPENED_PATHS) return { dir };
      const pinned = await PinnedArea.open(dir);
      // Marked as the tool's at once (through the directory held): a command's sweep removes a
      // scratch area left by a killed backup only with the mark, or when the base dir's owner
      // owns it, never a tree someone else renamed to a scratch name (tenant/slot.ts).
      await writeTrashMarker(pinned.root, (await fs.stat(pinned.root, { bigint: true })).ino);
      return { dir: pinned.root, pinned };
    });
    area.placedInBaseDir = true;
    return area;
  }

  /**
   * In the tenant base dir (`inTenantsDir`: an encrypted or --pipe backup's plaintext copies),
   * not $TMPDIR: a copy with no room there is told where to free space, since `retry` alone
   * will not help, and nothing else on the machine would say why the copy went there.
   */
  get inBaseDir(): boolean {
    return this.placedInBaseDir;
  }

  /** A fresh path inside the area (nothing is created there). */
  async file(label: string): Promise<string> {
    if (this.removedBecause !== undefined) throw new FileSystemError(`the backup's scratch directory was removed ${this.removedBecause}: nothing more is copied there`);
    if (this.dir === undefined) {
      const made = await this.create();
      this.dir = made.dir;
      this.pinned = made.pinned;
      if (!this.placedInBaseDir) {
        this.scope = scopes.getStore();
        this.scope?.add(this);
      }
      crashPoint('backup:scratch-created');
    }
    await this.pinned?.assertStillNamed();
    this.counter++;
    return path.join(this.dir, `${this.counter}-${label}`);
  }

  /** Removes a file made in the area, with any SQLite side files beside it. */
  async remove(file: string): Promise<void> {
    await Promise.all(['', ...SQLITE_SIDE_FILES].map((suffix) => fs.rm(`${file}${suffix}`, { force: true })));
  }

  /** Removes the whole area. */
  async dispose(): Promise<void> {
    const { dir, pinned } = this;
    this.dir = undefined;
    this.pinned = undefined;
    if (pinned !== undefined) await pinned.remove();
    else if (dir !== undefined) await fs.rm(dir, { recursive: true, force: true });
    this.scope?.delete(this);
  }

  /**
   * Runs `work` as one scope of areas: those it makes under os.tmpdir() are the ones
   * `removeLiveUnderTmpdir` (called within it) removes, not those of another scope running in
   * the same process at the same time.
   */
  static scope<T>(work: () => Promise<T>): Promise<T> {
    return scopes.run(new Set(), work);
  }

  /**
   * Removes the areas under os.tmpdir() made in this scope (`scope`) that their backups have
   * not disposed of, with whatever they hold, and refuses any further file in them (`because`:
   * when, for the message). For the backup function at its invocation's deadline and end: a
   * backup still copying then (stuck in a read the deadline cannot stop) would otherwise leave
   * its plaintext snapshots in the sandbox's /tmp, which Lambda keeps after a timeout. Returns
   * how many were removed.
   */
  static async removeLiveUnderTmpdir(because: string): Promise<number> {
    const scope = scopes.getStore();
    if (scope === undefined) return 0;
    const areas = [...scope];
    scope.clear();
    await Promise.all(
      areas.map((area) => {
        area.removedBecause = because;
        return area.dispose().catch(() => undefined);
      }),
    );
    return areas.length;
  }

  /**
   * Removes the areas of dead backups in `parent`. Only areas of processes on this machine
   * are judged: a scratch directory is never shared, and another host's cannot be asked.
   *
   * And only directories this user owns that no one else may write in, as mkdtemp made them:
   * anyone can make a directory of such a name in /tmp (the owner tag of a dead process is
   * easy to make up), and fs.rm removes a tree by paths, so its owner could swap a directory
   * in it for a symlink while the removal runs and have it unlink files through the link: a
   * backup as root removed root's files in a directory only root may write in that way. In
   * an area of our own, made 0700, no one else can swap anything.
   *
   * `signal`: once aborted, no further area is taken up, and the one under way stops between
   * batches of its files (removeTree): the rest is left to the next sweep. The backup function
   * sweeps first within its invocation's deadline: 20,000 dead areas in its /tmp had taken the
   * whole invocation, and past its end; and one dead area of 100,000 files, removed whole once
   * begun (fs.rm), answered a dry run 4.4 s into a 2 s invocation, from the bundle. So an area
   * holding more than a killed backup leaves (holdsFewFiles) is removed through descriptors
   * where procfs lets it, only if it is still the directory judged here (removeTree's
   * `expect`); a few files, by path at once (the area is ours, 0700: no one else can swap
   * anything in it).
   *
   * An area that cannot be removed (a mount point inside it, EMFILE) does not hold up those
   * after it: the sweep goes on with the next area and throws the first such error once it has
   * looked at them all. It used to throw at once, and the listing comes sorted by name, so each
   * later sweep met the same area first again: one dead area with a tmpfs mounted inside it
   * left the five dead areas named after it, with their plaintext snapshots, through every
   * backup from the CLI.
   */
  static async sweep(parent: string = os.tmpdir(), signal?: AbortSignal): Promise<void> {
    const self = process.getuid?.();
    let failed: { readonly error: unknown } | undefined;
    // Each pid judged once (isProcessAliveOnce: one that dies during the sweep leaves its area
    // to the next), and the candidates lstat-ed synchronously, STAT_BATCH between yields:
    // 100,000 planted `openclaw-backup-<dead pid>-…` directories of another user, each judged
    // and lstat-ed in turn through the thread pool (~93 µs a name), had added 9.3 s to every
    // root backup; now one readdir and an lstat a name (~1 s on this 2-core machine, loaded).
    const isAlive = isProcessAliveOnce();
    const candidates: string[] = [];
    for (const name of await fs.readdir(parent)) {
      if (!name.startsWith(PREFIX)) continue;
      const owner = parseOwnerTag(AREA_NAME.exec(name)?.[1] ?? '');
      if (owner !== undefined && isLocal(owner) && !isAlive(owner.pid, owner.started)) candidates.push(name);
    }
    const stopped = (): boolean => signal?.aborted === true;
    sweeping: for (let start = 0; start < candidates.length; start += STAT_BATCH) {
      if (stopped()) break;
      const batch = candidates.slice(start, start + STAT_BATCH).map((name) => path.join(parent, name));
      // Synchronous: on a local /tmp an lstat takes microseconds, and its trip through the thread
      // pool and back tens of them (batched, async lstats had halved the 9.3 s, no more). The
      // loop yields between batches, so that an abort (the function's deadline) is seen.
      const stats = batch.map((area) => lstatSync(area, { bigint: true, throwIfNoEntry: false }));
      await new Promise((resolve) => setImmediate(resolve));
      for (const [index, area] of batch.entries()) {
        if (stopped()) break sweeping;
        const stat = stats[index];
        if (stat === undefined || !stat.isDirectory() || (self !== undefined && stat.uid !== BigInt(self)) || (stat.mode & BigInt(OTHERS_WRITE)) !== 0n) continue;
        try {
          if (!CAN_CHECK_OPENED_PATHS || (await holdsFewFiles(area))) await fs.rm(area, { recursive: true, force: true });
          else await removeTree(area, { ...(signal !== undefined && { signal }), expect: { dev: stat.dev, ino: stat.ino } });
        } catch (error) {
          if (error instanceof RemovalStoppedError) break sweeping;
          // Another directory under the name by now: not the one judged, left alone.
          if (error instanceof NotJudgedError) continue;
          failed ??= { error };
        }
      }
    }
    if (failed !== undefined) throw failed.error;
  }
}

/** How many dead owners' names the sweep lstats between yields to the event loop. */
const STAT_BATCH = 256;

/**
 * What a killed backup leaves in its area (a snapshot, a copy, their SQLite side files), which
 * fs.rm removes at once, about five times faster than removeTree through descriptors: at most
 * this many entries, each a file or a symlink (a directory, or a type the file system does
 * not tell in its listing, goes through removeTree).
 */
const FEW_FILES = 64;

/** Whether the area `dir` holds at most FEW_FILES entries, all files or symlinks (absent: true, nothing to remove). */
async function holdsFewFiles(dir: string): Promise<boolean> {
  const handle = await fs.opendir(dir).catch(() => undefined);
  if (handle === undefined) return true;
  let entries = 0;
  try {
    for await (const entry of handle) if (++entries > FEW_FILES || !(entry.isFile() || entry.isSymbolicLink())) return false;
  } catch {
    return false;
  }
  return true;
}

/** The area in the base dir held by a descriptor (see the top of the file; file-access.ts pinDirectory). */
class PinnedArea {
  /** `/proc/self/fd/N`: the directory opened, whatever its name (made only where procfs is mounted). */
  readonly root: string;

  private constructor(private readonly pinned: PinnedDirectory) {
    this.root = pinned.link ?? pinned.path;
  }

  /** Opens the directory just made at `dir`; throws unless it is that one: this user's, 0700, empty, at that path. */
  static async open(dir: string): Promise<PinnedArea> {
    return new PinnedArea(await pinDirectory(dir, (how, cause) => replacedError(dir, how, cause), { mode: 0o700 }));
  }

  /** Throws unless the area's path still leads to it (SQLite opens its files by that path). */
  async assertStillNamed(): Promise<void> {
    if (!(await this.pinned.isAt())) {
      throw new FileSystemError(`the backup's scratch directory ${shownPath(this.pinned.path)} was moved or replaced by someone else while the backup ran: back up again, and check who else writes in the base dir`);
    }
  }

  /** Removes everything in the area through its descriptor, then the area by its name if that still leads to it. */
  async remove(): Promise<void> {
    try {
      // The trash marker last: a backup killed midway leaves an area still marked as the tool's,
      // which the next command removes whoever owns the base dir (tenant/slot.ts trashOfOurs).
      const names = await fs.readdir(this.root);
      for (const name of [...names.filter((entry) => entry !== TRASH_MARKER), ...names.filter((entry) => entry === TRASH_MARKER)]) await removeTree(`${this.root}/${name}`);
    } catch (error) {
      await this.pinned.close();
      throw error;
    }
    await this.pinned.closeAndRemove();
  }
}

/** The area made at `dir` was replaced before it was opened. */
function replacedError(dir: string, how: string, cause?: unknown): FileSystemError {
  return new FileSystemError(`the backup's scratch directory ${shownPath(dir)} was replaced while it was made (${how}): nothing was backed up; back up again, and check who else writes in the base dir`, cause === undefined ? undefined : { cause });
}

/** Why the scratch directory could not be made, naming the temporary directory (TMPDIR) it goes in. */
function scratchDirError(error: unknown, parent: string): unknown {
  const code = errnoCode(error);
  const what = code === 'ENOENT' ? 'it does not exist' : code === 'ENOTDIR' ? 'it is not a directory' : errnoMessage(error);
  if (what === undefined) return error;
  return new FileSystemError(`cannot make a scratch directory in the temporary directory ${shownPath(parent)} (TMPDIR): ${what}`, { cause: error });
}
