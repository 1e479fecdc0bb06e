// Reads and installs the user's crontab through the `crontab` command (`crontab -l`,
// `crontab -` with the whole new text on stdin: cron's own way, which checks the text and
// signals the daemon, never an edit of the spool file). Which command is the caller's
// choice (the CLI: `crontab`, or OPENCLAW_CRONTAB for tests and unusual systems). Failures
// are LocalCronError CRONTAB_FAILED with crontab's own first line of complaint.

import { spawn } from 'node:child_process';

import { LocalCronError } from '../errors.js';

/** The user's crontab, '' when there is none yet. */
export async function readCrontab(command: string): Promise<string> {
  const { status, stdout, stderr } = await runCrontab(command, ['-l']);
  if (status === 0) return stdout;
  // Every cron says so when the user has none (Debian, cronie: "no crontab for USER").
  if (/no crontab/i.test(stderr)) return '';
  throw failed(command, 'read', status, stderr);
}

/** Installs `text` as the user's whole crontab. */
export async function installCrontab(command: string, text: string): Promise<void> {
  const { status, stderr } = await runCrontab(command, ['-'], text);
  if (status !== 0) throw failed(command, 'install', status, stderr);
}

interface Ran {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runCrontab(command: string, args: string[], input?: string): Promise<Ran> {
  return new Promise((resolve, reject) => {
    // In a process group (a session) of its own: a Ctrl-C or a hang-up, which the terminal
    // sends to the whole foreground group, would kill `crontab -` mid-install, though the
    // CLI waits for a crontab change it started to finish (cli/main.ts), and under nohup
    // ignores the hang-up. It needs no terminal: its input and output are pipes.
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'ENOENT'
          ? new LocalCronError('CRONTAB_FAILED', notFound(command), { cause: error })
          : error.code === 'EACCES'
            ? new LocalCronError('CRONTAB_FAILED', notExecutable(command), { cause: error })
            : new LocalCronError('CRONTAB_FAILED', `cannot run ${command}: ${error.message}`, { cause: error }),
      );
    });
    child.stdin.on('error', () => undefined); // a crontab that exits early: judged by its status
    child.on('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(input ?? '');
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
