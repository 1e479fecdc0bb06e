// Reads and installs the user's crontab through the `crontab` command (`crontab -l`,
// `crontab -` with the whole new text on stdin: cron's own way, which checks the text and
// signals the daemon, never an edit of the spool file). Which command is the caller's
// choice (the CLI: `crontab`, or OPENCLAW_CRONTAB for tests and unusual systems). Failures
// are LocalCronError CRONTAB_FAILED with crontab's own first line of complaint.

import { spawn } from 'node:child_process';
import { promises as fs, renameSync } from 'node:fs';

import { errnoMessage, LocalCronError } from '../errors.js';
import { besideLockNameFor } from '../tenant/lock-takeover.js';
import { hostId, processStat } from '../tenant/process-owner.js';
import { writeWhole } from '../write-whole.js';

/** The user's crontab, '' when there is none yet. */
export async function readCrontab(command: string): Promise<string> {
  const { status, stdout, stderr } = await runCrontab(command, ['-l']);
  if (status === 0) return stdout;
  if (saysNoCrontab(stderr)) return '';
  throw failed(command, 'read', status, stderr);
}

/**
 * Whether `crontab -l` failed because the user has no crontab yet. Debian's cron and cronie say
 * "no crontab for USER"; busybox's (1.35) fails to open the user's file in its spool directory:
 * "crontab: can't open 'USER': No such file or directory". Before, `cron add` on busybox failed
 * for a user with no crontab yet ("could not read the crontab (exit 1)"), so no entry could ever
 * be added. Only that very failure counts: one that cannot read the crontab for another reason
 * (its spool directory missing, "can't change directory to …"; permission denied) is an error,
 * never taken for an empty crontab, which the install would then write over the user's jobs.
 */
function saysNoCrontab(stderr: string): boolean {
  return /no crontab/i.test(stderr) || /^crontab: can't open '[^'\n]*': No such file or directory$/m.test(stderr);
}

/**
 * Installs `text` as the user's whole crontab. `crontab -` reads it from a file (`staging`,
 * written whole, opened), not a pipe: `crontab -`, in a session of its own, outlives this
 * process, and fed through a pipe, it read what this process had written when killed (the
 * ~200 KB a socket pair buffers), took the end of its input for the end of the crontab, and
 * installed that: killed mid-install, `cron add` on a crontab of 8000 jobs left 3426. From a
 * file, it reads the whole text, whatever becomes of this process.
 * Once `crontab -` runs, the file is renamed to name it as its owner (`staging` is a
 * besideLockName of the crontab lock; besideLockNameFor), and removed when it exits: this
 * process killed, the next cron command, having taken over its lock, waits while that
 * `crontab -` still runs (crontab-lock.ts waitForInstalls). Before, it read the crontab and
 * installed its own edit meanwhile, and the killed command's `crontab -`, finishing later,
 * installed over it (Debian's crontab, its rename held 4 s by strace: "Added cron next",
 * exit 0, and no "next" in the crontab).
 */
export async function installCrontab(command: string, text: string, staging: string): Promise<void> {
  if (text.trim() === '') {
    // Nothing at all left (the last line `cron rm` took out): the crontab is removed, as
    // `crontab -r` does, so `crontab -l` says "no crontab for USER" again. Before, an empty
    // crontab was installed, and `crontab -l` printed nothing, exit 0. No crontab to remove
    // is that already; a command that cannot remove one (a stand-in that takes only -l and -)
    // gets the empty text installed, as before.
    const removed = await runStaged(command, ['-r'], '', staging);
    if (removed.status === 0 || saysNoCrontab(removed.stderr)) return;
  }
  const { status, stderr } = await runStaged(command, ['-'], text, staging);
  if (status !== 0) throw failed(command, 'install', status, stderr);
}

/** `command args` run with `text` staged in `staging` as its input, the file handed to it by name while it runs (installCrontab). */
async function runStaged(command: string, args: string[], text: string, staging: string): Promise<Ran> {
  const input = await stagedInput(staging, text);
  let named = staging;
  try {
    return await runCrontab(command, args, input, (pid) => {
      // Synchronous, at once: the moment this process could be killed with the file still naming it is kept short.
      const started = processStat(pid)?.started;
      if (started === undefined) return;
      const handed = besideLockNameFor(staging, { pid, started, hostId: hostId() });
      try {
        renameSync(staging, handed);
        named = handed;
      } catch {
        // Left under this process's name: removed below, or by the next cron command once this process is gone.
      }
    });
  } finally {
    await input.close().catch(() => undefined);
    await fs.rm(named, { force: true }).catch(() => undefined); // else: the next cron command removes it once its owner is gone (crontab-lock.ts)
  }
}

/** `text` in the file `staging`, opened for reading from its start. */
async function stagedInput(staging: string, text: string): Promise<fs.FileHandle> {
  try {
    const written = await fs.open(staging, 'wx', 0o600);
    try {
      await writeWhole(written, [Buffer.from(text)]);
    } finally {
      await written.close();
    }
    return await fs.open(staging, 'r');
  } catch (error) {
    await fs.rm(staging, { force: true }).catch(() => undefined);
    throw new LocalCronError('CRONTAB_FAILED', `cannot write the new crontab to ${staging}, to install it from: ${errnoMessage(error) ?? String(error)}`, { cause: error });
  }
}

interface Ran {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runCrontab(command: string, args: string[], input?: fs.FileHandle, started?: (pid: number) => void): Promise<Ran> {
  return new Promise((resolve, reject) => {
    // In a process group (a session) of its own: a Ctrl-C or a hang-up, which the terminal
    // sends to the whole foreground group, would kill `crontab -` mid-install, though the
    // CLI waits for a crontab change it started to finish (cli/main.ts), and under nohup
    // ignores the hang-up. It needs no terminal: its input and output are pipes.
    const child = spawn(command, args, { stdio: [input?.fd ?? 'ignore', 'pipe', 'pipe'], detached: true });
    if (child.pid !== undefined) started?.(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'ENOENT'
          ? new LocalCronError('CRONTAB_FAILED', notFound(command), { cause: error })
          : error.code === 'EACCES'
            ? new LocalCronError('CRONTAB_FAILED', notExecutable(command), { cause: error })
            : new LocalCronError('CRONTAB_FAILED', `cannot run ${command}: ${error.message}`, { cause: error }),
      );
    });
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Installing cron is the fix for a missing `crontab`; a command OPENCLAW_CRONTAB chose was named wrong. */
function notFound(command: string): string {
  return command === 'crontab'
    ? 'crontab not found: install cron (apt-get install cron), or set OPENCLAW_CRONTAB to the crontab command'
    : `${command} not found: OPENCLAW_CRONTAB names it; name the crontab command there, or unset OPENCLAW_CRONTAB to use crontab`;
}

/** A crontab file (or a directory) named where the command goes: the likeliest mistake with OPENCLAW_CRONTAB. */
function notExecutable(command: string): string {
  return command === 'crontab'
    ? 'crontab is not executable here (permission denied): check the cron installation, or set OPENCLAW_CRONTAB to the crontab command'
    : `${command} is not an executable command (permission denied): OPENCLAW_CRONTAB names the crontab command, one that takes -l and - as crontab does, not a crontab file; or unset it to use crontab`;
}

function failed(command: string, what: 'read' | 'install', status: number | null, stderr: string): LocalCronError {
  const line = stderr.split('\n').find((text) => text.trim() !== '')?.trim().slice(0, 300) ?? '';
  return new LocalCronError('CRONTAB_FAILED', `${command} could not ${what} the crontab (exit ${status ?? 'by signal'})${line === '' ? '' : `: ${line}`}`);
}
