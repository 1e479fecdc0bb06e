// A private scratch directory for one backup run: SQLite snapshots and spooled copies of
// large files that were being written. Created on first use with mode 0700, since it holds
// tenant data; each file is removed as soon as it has been archived, and the directory when
// the run ends, however it ends. Only a killed process leaves one behind. Two places:
// - under os.tmpdir() (on Lambda, the function's ephemeral storage): its name carries its
//   owner (process-owner.ts), and the next backup on this machine removes those whose owner
//   is dead;
// - in the tenant base dir (`inTenantsDir`), for an encrypted backup, so that its plaintext
//   copies never exist outside the base dir, on storage as private as the live files: a
//   hidden `.openclaw-scratch-<tenant>-<rand>` (tenant/hidden-names.ts), made only while the
//   backup holds the tenant's lock, so the next command that sweeps the base dir (any
//   command but `cron`) removes one whose backup is gone, as it removes a killed restore's
//   staging (tenant/slot.ts).

import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { crashPoint } from '../crash-points.js';
import { errnoCode, errnoMessage, FileSystemError } from '../errors.js';
import { shownPath } from '../format.js';
import { hiddenNames } from '../tenant/hidden-names.js';
import { isLocal, isProcessAlive, OWNER_TAG_PATTERN, ownerTag, parseOwnerTag } from '../tenant/process-owner.js';

/** Files SQLite may create beside a database it opens. */
const SQLITE_SIDE_FILES = ['-journal', '-wal', '-shm'];

const PREFIX = 'openclaw-backup-';
/** Group and others' write bits: an area mkdtemp made has neither. */
const OTHERS_WRITE = 0o022;
/** `openclaw-backup-<owner>-XXXXXX` (mkdtemp adds the six characters). */
const AREA_NAME = new RegExp(`^${PREFIX}(${OWNER_TAG_PATTERN})-[A-Za-z0-9]{6}$`);

export class TempArea {
  private dir: string | undefined;
  private counter = 0;

  /** `create` makes the directory (mode 0700) and returns its path. */
  private constructor(private readonly create: () => Promise<string>) {}

  /** An area under `parent`, named after its owner. */
  static underTmpdir(parent: string = os.tmpdir()): TempArea {
    return new TempArea(() =>
      fs.mkdtemp(path.join(parent, `${PREFIX}${ownerTag()}-`)).catch((error: unknown) => {
        throw scratchDirError(error, parent);
      }),
    );
  }

  /** An area in the tenant base dir; the backup must hold the tenant's lock while it uses it. */
  static inTenantsDir(tenantsDir: string, tenant: string): TempArea {
    return new TempArea(async () => {
      const dir = path.join(tenantsDir, hiddenNames.scratch(tenant));
      await fs.mkdir(dir, { mode: 0o700 });
      return dir;
    });
  }

  /** A fresh path inside the area (nothing is created there). */
  async file(label: string): Promise<string> {
    if (this.dir === undefined) {
      this.dir = await this.create();
      crashPoint('backup:scratch-created');
    }
    this.counter++;
    return path.join(this.dir, `${this.counter}-${label}`);
  }

  /** Removes a file made in the area, with any SQLite side files beside it. */
  async remove(file: string): Promise<void> {
    await Promise.all(['', ...SQLITE_SIDE_FILES].map((suffix) => fs.rm(`${file}${suffix}`, { force: true })));
  }

  /** Removes the whole area. */
  async dispose(): Promise<void> {
    if (this.dir !== undefined) await fs.rm(this.dir, { recursive: true, force: true });
    this.dir = undefined;
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
   */
  static async sweep(parent: string = os.tmpdir()): Promise<void> {
    const self = process.getuid?.();
    for (const name of await fs.readdir(parent)) {
      if (!name.startsWith(PREFIX)) continue;
      const owner = parseOwnerTag(AREA_NAME.exec(name)?.[1] ?? '');
      if (owner === undefined || !isLocal(owner) || isProcessAlive(owner.pid, owner.started)) continue;
      const area = path.join(parent, name);
      const stat = await fs.lstat(area).catch(() => undefined);
      if (stat === undefined || !stat.isDirectory() || (self !== undefined && stat.uid !== self) || (stat.mode & OTHERS_WRITE) !== 0) continue;
      await fs.rm(area, { recursive: true, force: true });
    }
  }
}

/** Why the scratch directory could not be made, naming the temporary directory (TMPDIR) it goes in. */
function scratchDirError(error: unknown, parent: string): unknown {
  const code = errnoCode(error);
  const what = code === 'ENOENT' ? 'it does not exist' : code === 'ENOTDIR' ? 'it is not a directory' : errnoMessage(error);
  if (what === undefined) return error;
  return new FileSystemError(`cannot make a scratch directory in the temporary directory ${shownPath(parent)} (TMPDIR): ${what}`, { cause: error });
}
