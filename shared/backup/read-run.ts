// One attempt at reading each of a run of small files whole, with blocking calls: open
// (never through a symlink, never waiting on a FIFO, through its directory, checked to be
// the one at its path: file-access.ts `isOpenedAt`, and leaving its access time as it was),
// fstat, read, fstat, close, and the SHA-256 of what was read. A read counts only if the file's size, mtime, ctime and inode are the
// same after it as before it and it got exactly that many bytes: the rule of stable-read.ts,
// checked here once. A file that has not changed since well before the run began (its ctime,
// which nothing but the kernel sets and every write, truncation and `utimes` moves to the
// present, is `ctimeMarginMs` older than the run's start) is read first and stat'ed once
// after: if it held exactly its size, nothing can have changed it while it was read, and the
// stat before it would have said the same. Only where the directory's file system stamps
// ctime with this host's clock (a local disk, tmpfs; not NFS, SMB, FUSE, 9p or Ceph, whose
// servers stamp it): one `fstat` less a file (~0.5 µs: ~3 % of the CPU of a backup of tiny files).
// A clock stepped back during a run would stamp a write while read before the run's start: a
// run whose wall clock fell behind its monotonic one leaves every file it read to the caller.
// A file with more than one name is not read (READ_LINKED): the caller
// reads it only if it is not a name of a file it archived already. Everything else (a file that changed while read, is larger than the
// caller wants here, or failed in any way but vanishing) is left to the caller, which reads
// it the general way (live-files.ts: re-reads, databases, spooling, the errors it throws).
//
// `readRun` runs on the backup's own thread and, as source text, on reader threads
// (reader-thread.ts): it uses nothing but its arguments, `Date.now()` and `performance.now()` (not even the constants below, which
// it spells out), and declares no inner functions or classes (a bundler that keeps names
// would call a helper of its own from them).

/** The file was read whole and held still: its content, stat and SHA-256 are in the run's arrays. */
export const READ_WHOLE = 1;
/** The path is gone, or no longer names a regular file (a symlink, directory or FIFO swapped in). */
export const READ_VANISHED = 2;
/** Left to the caller: too large, changed while read, or failed with anything but vanishing. */
export const READ_ELSEWHERE = 3;
/**
 * Left to the caller unread: a regular file with more than one name (st_nlink > 1), which the
 * caller archives as a hard link if it archived the file under an earlier name already. Its
 * size, mode and mtime are in `meta` as for READ_WHOLE, its inode number where the content's
 * offset would be, its ctime (ms) after it (link-key.ts).
 */
export const READ_LINKED = 4;

/**
 * readRun's `ctimeMarginMs` for the backup's readers: a file last changed at least this long
 * before a run began is read with one stat. The kernel stamps ctime from a clock that lags
 * the one `Date.now()` reads by up to a tick (~4-10 ms), and ext2-4 with 128-byte inodes
 * keep whole seconds: a write just after the run began can be stamped up to a second and a
 * tick before it. Two seconds cover both.
 */
export const SETTLED_CTIME_MARGIN_MS = 2000;

/** Numbers per path in a run's `meta`: outcome, size, mode, mtime (ms), offset of the content, ctime (ms: READ_LINKED only). */
export const META_FIELDS = 6;
export const DIGEST_BYTES = 32;

/** What readRun needs of node:fs (its synchronous calls). */
export interface SyncFs {
  openSync(path: string, flags: number): number;
  fstatSync(fd: number): { isFile(): boolean; size: number; mode: number; mtimeMs: number; ctimeMs: number; ino: number; nlink: number };
  statfsSync(path: string): { type: number };
  readSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number;
  closeSync(fd: number): void;
  readlinkSync(path: string): string;
  readonly constants: { readonly O_RDONLY: number; readonly O_NOFOLLOW: number; readonly O_NONBLOCK: number; readonly O_DIRECTORY: number; readonly O_NOATIME?: number };
}

/**
 * The SHA-256 of `bytes`, written into `into` at `at`. Both callers take the digest as a
 * latin1 ('binary') string and write it in: a Buffer per digest costs an ArrayBuffer backing store
 * (malloc, free and the collector's bookkeeping), three times the hash of a tiny file.
 */
export type DigestInto = (bytes: Uint8Array, into: Buffer, at: number) => void;

/**
 * Reads `paths[from]`, `paths[from + 1]`… into `content`, packed from its start, and records
 * each in `meta` and `digests` (indexed from 0 for `paths[from]`). A file over `maxFileBytes`
 * is left to the caller. Stops before the first file that does not fit in what is left of
 * `content`, or at `to`. Returns how many paths it dealt with: 0 if `paths[from]` is larger
 * than the whole `content` (which can be only if `content` is smaller than `maxFileBytes`:
 * the caller may grow it). `paths` are real paths; with `fdLinks` (file-access.ts FD_LINKS,
 * or '' where procfs is missing) a file whose descriptor was reached another way (a directory
 * on its path swapped for a symlink) counts as vanished.
 */
export function readRun(
  fs: SyncFs,
  digestInto: DigestInto,
  paths: readonly string[],
  from: number,
  to: number,
  content: Uint8Array,
  meta: Float64Array,
  digests: Buffer,
  maxFileBytes: number,
  fdLinks: string,
  ctimeMarginMs: number,
): number {
  // Files whose ctime is before this were last changed before the run began (see the top).
  const startedAt = Date.now();
  const settledBefore = fdLinks === '' ? -Infinity : startedAt - ctimeMarginMs;
  // How far the wall clock is ahead of the monotonic one: less at the end means it was stepped back.
  const wallAhead = startedAt - performance.now();
  const plainFlags = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;
  // Without touching the file's access time (Linux): a backup reads every file, and where the
  // last access is a day old (relatime) the read would write each file's inode, ~0.5 µs a file
  // here and a journal write later. The kernel refuses it (EPERM) for a file that is not the
  // caller's, unless root: then this run opens as before.
  let flags = plainFlags | (fs.constants.O_NOATIME ?? 0);
  let used = 0;
  let index = from;
  // With procfs, files are opened through their directory, opened once for its run of files
  // and checked to be the one at its real path: a directory on the way swapped for a symlink
  // later is not followed, and one swapped before makes its files vanish.
  let dirPath = '';
  let dirFd = -1;
  let dirOutcome = 0; // 0: files are opened through `dirFd`; else every file's outcome (2 vanished, 3 elsewhere)
  let dirStampsCtime = false; // the directory's file system takes ctime from this host's clock
  for (; index < to; index++) {
    const at = (index - from) * 6;
    const filePath = paths[index]!;
    // A path that is not UTF-8 (raw-name.ts: a lone surrogate per bad byte) is left to the
    // caller, whose calls take it as bytes: as text, Node would open another name.
    if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(filePath)) {
      meta[at] = 3;
      continue;
    }
    let openPath = filePath;
    if (fdLinks !== '') {
      const slash = filePath.lastIndexOf('/');
      const parent = slash === 0 ? '/' : filePath.slice(0, slash);
      if (parent !== dirPath) {
        if (dirFd !== -1) {
          try {
            fs.closeSync(dirFd);
          } catch {
            // nothing was read through it that depends on the close
          }
        }
        dirPath = parent;
        dirFd = -1;
        dirOutcome = 2;
        dirStampsCtime = false;
        try {
          dirFd = fs.openSync(parent, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
          dirOutcome = fs.readlinkSync(fdLinks + dirFd) === parent ? 0 : 2;
          if (dirOutcome === 0 && settledBefore > -Infinity) {
            // statfs follows the descriptor's link to the directory itself. ext2-4, XFS, Btrfs, tmpfs, F2FS.
            try {
              const type = fs.statfsSync(fdLinks + dirFd).type;
              dirStampsCtime = type === 0xef53 || type === 0x58465342 || type === 0x9123683e || type === 0x01021994 || type === 0xf2f52010;
            } catch {
              // not told: both stats, as anywhere else
            }
          }
        } catch (error) {
          // A failed check (readlink) is no sign of a vanished directory: its files are left to the caller, whose open meets the error again.
          const code = (error as { code?: string }).code;
          dirOutcome = dirFd === -1 && (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') ? 2 : 3;
        }
      }
      if (dirOutcome !== 0) {
        meta[at] = dirOutcome;
        continue;
      }
      openPath = `${fdLinks}${dirFd}/${filePath.slice(slash + 1)}`;
    }
    let fd = -1;
    try {
      fd = fs.openSync(openPath, flags);
    } catch (error) {
      let code = (error as { code?: string }).code;
      if (code === 'EPERM' && flags !== plainFlags) {
        flags = plainFlags;
        try {
          fd = fs.openSync(openPath, flags);
        } catch (again) {
          code = (again as { code?: string }).code;
        }
      }
      if (fd === -1) {
        meta[at] = code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' ? 2 : 3;
        continue;
      }
    }
    let outcome = 3;
    let stop = false;
    try {
      // A settled file: read first (what fits of it, up to 64 KiB), one stat after.
      let got = 0;
      let before;
      let settled = false;
      if (dirStampsCtime) {
        const first = Math.min(content.length - used, maxFileBytes, 65536);
        try {
          got = first > 0 ? fs.readSync(fd, content, used, first, 0) : 0;
        } catch {
          // No regular file (a directory swapped in answers EISDIR, a FIFO ESPIPE: a read at an
          // offset takes nothing out of a pipe), or the read below meets it again.
          got = -1;
        }
        before = fs.fstatSync(fd);
        settled = before.ctimeMs < settledBefore;
        if (settled && got >= 0 && before.isFile() && before.nlink === 1 && before.size === got) {
          outcome = 1;
          meta[at + 1] = got;
          meta[at + 2] = before.mode & 0o7777;
          meta[at + 3] = before.mtimeMs;
          meta[at + 4] = used;
          digestInto(content.subarray(used, used + got), digests, (index - from) * 32);
          used += got;
          before = undefined;
        }
      } else before = fs.fstatSync(fd);
      // Otherwise the stat before the read: what was read before it counts only from a settled file.
      if (!settled || got < 0) got = 0;
      const size = before === undefined ? -1 : before.size;
      if (before === undefined) {
        // read whole above
      } else if (!before.isFile()) outcome = 2;
      else if (before.nlink > 1) {
        outcome = 4;
        meta[at + 1] = size;
        meta[at + 2] = before.mode & 0o7777;
        meta[at + 3] = before.mtimeMs;
        meta[at + 4] = before.ino;
        meta[at + 5] = before.ctimeMs;
      }
      else if (size > maxFileBytes) outcome = 3;
      else if (size > content.length - used) stop = true;
      else {
        if (got > size) got = 0;
        while (got < size) {
          const read = fs.readSync(fd, content, used + got, size - got, got);
          if (read === 0) break;
          got += read;
        }
        const after = fs.fstatSync(fd);
        if (!after.isFile()) outcome = 2;
        else if (got === size && after.size === size && after.mtimeMs === before.mtimeMs && after.ctimeMs === before.ctimeMs && after.ino === before.ino) {
          outcome = 1;
          meta[at + 1] = size;
          meta[at + 2] = after.mode & 0o7777;
          meta[at + 3] = after.mtimeMs;
          meta[at + 4] = used;
          digestInto(content.subarray(used, used + size), digests, (index - from) * 32);
          used += size;
        }
      }
    } catch {
      outcome = 3; // the caller's own read will meet the error again, and report it
    }
    try {
      fs.closeSync(fd);
    } catch {
      outcome = 3;
    }
    if (stop) break;
    meta[at] = outcome;
  }
  if (dirFd !== -1) {
    try {
      fs.closeSync(dirFd);
    } catch {
      // as above
    }
  }
  // Stepped back (by more than NTP's slewing could in a run): a write while read may carry a
  // ctime from before the run, so no file of it counts as read.
  if (settledBefore > -Infinity && Date.now() - performance.now() < wallAhead - 100) {
    for (let at = 0; at < (index - from) * 6; at += 6) if (meta[at] === 1) meta[at] = 3;
  }
  return index - from;
}
