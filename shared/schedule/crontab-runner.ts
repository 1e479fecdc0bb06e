// Reads and installs the user's crontab through the `crontab` command (`crontab -l`,
// `crontab -` with the whole new text on stdin: cron's own way, which checks the text and
// signals the daemon, never an edit of the spool file). Which command is the caller's
// choice (the CLI: `crontab`, or OPENCLAW_CRONTAB for tests and unusual systems). Failures
// are LocalCronError CRONTAB_FAILED with crontab's own first line of complaint.

import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';

import { errnoMessage, LocalCronError } from '../errors.js';
import { writeWhole } from '../write-whole.js';

/** The user's crontab, '' when there is none yet. */
export async function readCrontab(command: string): Promise<string> {
  const { status, stdout, stderr } = await runCrontab(command, ['-l']);
  if (status === 0) return stdout;
  // Every cron says so when the user has none (Debian, cronie: "no crontab for USER").
  if (/no crontab/i.test(stderr)) return '';
  throw failed(command, 'read', status, stderr);
}

/**
 * Installs `text` as the user's whole crontab. `crontab -` reads it from a file (`staging`,
 * written whole, opened, then unlinked: nothing stays), not a pipe: `crontab -`, in a session
 * of its own, outlives this process, and fed through a pipe, it read what this process had
 * written when killed (the ~200 KB a socket pair buffers), took the end of its input for the end
 * of the crontab, and installed that: killed mid-install, `cron add` on a crontab of 8000 jobs
 * left 3426. From a file, it reads the whole text, whatever becomes of this process.
 */
export async function installCrontab(command: string, text: string, staging: string): Promise<void> {
  const input = await stagedInput(staging, text);
  try {
    const { status, stderr } = await runCrontab(command, ['-'], input);
    if (status !== 0) throw failed(command, 'install', status, stderr);
  } finally {
    await input.close().catch(() => undefined);
  }
}

/** `text` in the file `staging`, opened for reading from its start, its name removed. */
async function stagedInput(staging: string, text: string): Promise<fs.FileHandle> {
  try {
    const written = await fs.open(staging, 'wx', 0o600);
    try {
      await writeWhole(written, [Buffer.from(text)]);
    } finally {
      await written.close();
    }
    const input = await fs.open(staging, 'r');
    await fs.rm(staging, { force: true }).catch(() => undefined); // else: the next cron command removes it (crontab-lock.ts)
    return input;
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

function runCrontab(command: string, args: string[], input?: fs.FileHandle): Promise<Ran> {
  return new Promise((resolve, reject) => {
    // In a process group (a session) of its own: a Ctrl-C or a hang-up, which the terminal
    // sends to the whole foreground group, would kill `crontab -` mid-install, though the
    // CLI waits for a crontab change it started to finish (cli/main.ts), and under nohup
    // ignores the hang-up. It needs no terminal: its input and output are pipes.
    const child = spawn(command, args, { stdio: [input?.fd ?? 'ignore', 'pipe', 'pipe'], detached: true });
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
