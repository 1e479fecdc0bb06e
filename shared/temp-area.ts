// A private scratch directory for one backup run: SQLite snapshots and spooled copies of
// large files that were being written. Created on first use under os.tmpdir() (on Lambda,
// the function's ephemeral storage) with mode 0700, since it holds tenant data; each file
// is removed as soon as it has been archived, and the directory when the run ends, however
// it ends. Only a killed process leaves an `openclaw-backup-*` directory behind.

import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Files SQLite may create beside a database it opens. */
const SQLITE_SIDE_FILES = ['-journal', '-wal', '-shm'];

export class TempArea {
  private dir: string | undefined;
  private counter = 0;

  constructor(private readonly parent: string = os.tmpdir()) {}

  /** A fresh path inside the area (nothing is created there). */
  async file(label: string): Promise<string> {
    this.dir ??= await fs.mkdtemp(path.join(this.parent, 'openclaw-backup-'));
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
}
