// One `openclaw cron add|rm` at a time edits the user's crontab. Each reads the whole crontab
// and installs it back whole (`crontab -l`, `crontab -`), so two at once (a provisioning
// script adding the crons of many tenants in parallel) would each install the text it read,
// and the last one would silently drop the others' lines. The lock is a file (in
// ~/.openclaw/, where the logs go), created whole (written to a temporary file, then
// hard-linked into place, which fails if a lock exists) and naming its owner; a lock whose
// owner is provably gone (process-owner.ts) is taken over, one held by a live process is
// waited for: an edit takes milliseconds. Every file a taker makes beside the lock (the
// temporary lock, a dead lock moved aside, a claim: `crontab.lock.<owner>.<rand>.<kind>`)
// names its process, so the next holder removes those of a taker killed between two steps;
// so does the file the new crontab is handed to `crontab -` from (`<owner>.<rand>.new`:
// crontab-runner.ts), should the command be killed before it unlinks it.

import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { crashPoint } from '../crash-points.js';
import { errnoMessage, LocalCronError } from '../errors.js';
import { besideLockName, createLockFile, filesBesideLock, LOCK_FRESH_MS, readLockFile, takeOverLock, type FileBesideLock, type LockFileState } from '../tenant/lock-takeover.js';
import { FileSystemClock, isLocal, isOwnerGone, isProcessAlive, ownerTag, parseOwnerTag, STALE_AFTER_MS, thisProcess } from '../tenant/process-owner.js';

/** How long a cron command waits for another one's edit. */
const WAIT_MS = 30_000;
const POLL_MS = 25;
/** A lock that names no owner (half-written by a writer without hard links) is taken over once it is this old. */
const UNREADABLE_STALE_MS = 5_000;
/** The kind of the file a new crontab is staged in (withCrontabLock's `staging`). */
const STAGING_KIND = 'new';

/**
 * Holds the crontab lock at `lockPath` while `edit` runs. `edit` is given a name beside the
 * lock for a file of its own (the new crontab's text, installCrontab's `staging`), which the
 * next cron command removes should this process be killed before it does.
 */
export async function withCrontabLock<T>(lockPath: string, edit: (staging: string) => Promise<T>, options: { readonly waitMs?: number } = {}): Promise<T> {
  const waitMs = options.waitMs ?? WAIT_MS;
  const deadline = Date.now() + waitMs;
  const release = await acquire(lockPath, waitMs);
  try {
    await waitForInstalls(lockPath, deadline);
    await removeLeftovers(lockPath);
    return await edit(besideLockName(lockPath, STAGING_KIND));
  } finally {
    await release();
  }
}

async function acquire(lockPath: string, waitMs: number): Promise<() => Promise<void>> {
  const content = `${ownerTag(thisProcess())} ${randomBytes(8).toString('hex')}\n`;
  const deadline = Date.now() + waitMs;
  try {
    await fs.mkdir(path.dirname(lockPath), { recursive: true, mode: 0o700 });
    for (;;) {
      const attempt = await createLockFile(lockPath, besideLockName(lockPath, 'tmp'), content, { tempWritten: () => crashPoint('crontab:temp-written') });
      if (attempt.created) {
        return async () => {
          if ((await fs.readFile(lockPath, 'utf8').catch(() => '')) === content) await fs.rm(lockPath, { force: true });
        };
      }
      const held = await readLockFile(lockPath);
      if (held === undefined) continue; // released meanwhile
      if (isStale(held, attempt.fileSystemNowMs)) {
        const movedAside = () => crashPoint('crontab:stale-moved-aside');
        if ((await takeOverLock(lockPath, held, besideLockName(lockPath, 'stale'), { movedAside })) !== 'contended') continue;
      }
      if (Date.now() >= deadline) {
        const pid = parseOwnerTag(held.content.split(' ')[0] ?? '')?.pid;
        throw new LocalCronError('CRONTAB_FAILED', `another openclaw cron command${pid === undefined ? '' : ` (pid ${pid})`} has been editing the crontab for ${waitMs / 1000} s (lock ${lockPath})`);
      }
      // Jittered, so that takers of one stale lock that let each other go first do not meet again.
      await new Promise((resolve) => setTimeout(resolve, POLL_MS * (0.5 + Math.random())));
    }
  } catch (error) {
    if (error instanceof LocalCronError) throw error;
    throw new LocalCronError('CRONTAB_FAILED', `cannot take the crontab lock ${lockPath}: ${errnoMessage(error) ?? String(error)}`, { cause: error });
  }
}

/**
 * Waits while a `crontab -` that a cron command killed meanwhile started still runs: its input
 * is a file beside the lock named with that `crontab -` as its owner (crontab-runner.ts
 * installCrontab). The lock was taken over from that command, and an edit read now would be
 * installed over by that `crontab -` when it ends, or install over it. Only a holder of the lock
 * stages a crontab, and removes its file before it lets go: one whose owner lives is such a
 * `crontab -`. Not covered: a command killed between starting `crontab -` and renaming its
 * input (one synchronous call), whose file still names it.
 */
async function waitForInstalls(lockPath: string, deadline: number): Promise<void> {
  const clock = new FileSystemClock(() => besideLockName(lockPath, 'tmp'));
  for (;;) {
    let running: FileBesideLock | undefined;
    for (const file of await filesBesideLock(lockPath, [STAGING_KIND]).catch(() => [])) {
      if (!(await isOwnerGone(file.owner!, file.stat.mtimeMs, STALE_AFTER_MS, clock))) running = file;
    }
    if (running === undefined) return;
    if (Date.now() >= deadline) {
      throw new LocalCronError(
        'CRONTAB_FAILED',
        `a crontab - (pid ${running.owner!.pid}) that a killed openclaw cron command started is still installing the crontab: wait for it to end, then run the command again (its input: ${running.path})`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS * (0.5 + Math.random())));
  }
}

/**
 * Whether the lock's owner is provably gone. A lock younger than LOCK_FRESH_MS is never stale
 * (tenant/lock-takeover.ts). Its age is told by the file system's clock (`fileSystemNowMs`),
 * never this host's.
 */
function isStale(held: LockFileState, fileSystemNowMs: number): boolean {
  const age = fileSystemNowMs - held.mtimeMs;
  if (age < LOCK_FRESH_MS) return false;
  const owner = parseOwnerTag(held.content.split(' ')[0] ?? '');
  if (owner !== undefined && isLocal(owner)) return !isProcessAlive(owner.pid, owner.started);
  // Another host's owner (a shared home directory) cannot be asked: its edit is long over by then.
  return age > (owner === undefined ? UNREADABLE_STALE_MS : STALE_AFTER_MS);
}


/**
 * Removes the files beside the lock whose owner is provably gone: what a taker killed between
 * two steps left. Nothing of a live taker is touched. Files without an owner come from older
 * versions: gone once untouched for STALE_AFTER_MS by this host's clock (a rename touches the
 * ctime); those with an owner elsewhere, by the file system's clock. A file that
 * cannot be removed now is tried again by the next cron command.
 */
async function removeLeftovers(lockPath: string): Promise<void> {
  const leftovers = await filesBesideLock(lockPath, ['tmp', 'stale', 'taking', STAGING_KIND], { ownerless: true }).catch(() => []);
  const clock = new FileSystemClock(() => besideLockName(lockPath, 'tmp'));
  for (const { path: file, owner, stat } of leftovers) {
    const gone = owner === undefined ? Date.now() - Math.max(stat.mtimeMs, stat.ctimeMs) > STALE_AFTER_MS : await isOwnerGone(owner, stat.mtimeMs, STALE_AFTER_MS, clock);
    if (gone) await fs.rm(file, { force: true }).catch(() => undefined);
  }
}
