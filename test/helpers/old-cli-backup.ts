// How a CLI older than backups in pieces (before 11c7b16; transcribed from 9328371, the last
// commit before them, whose remote backup path every CLI since remote mode shares) reads the
// backup function's answer to `openclaw --stack P tenants backup` and what it prints:
// cli/remote.ts invoke() (a failure response first) and backup() (operation "backup", cast to a
// BackupResult), cli/tenants-backup.ts describeBackup() (evaluated before the output, --json
// too), cli/main.ts's catch (one line on stderr, `{"error": {code, message}}` on stdout with
// --json, the exit code of the error's outcome). The shared helpers it called (describeError,
// outcomeOf, WireError) are today's, which keep their meaning. Those CLIs are in use and cannot
// change: what they make of an answer is fixed here, for the gateway's answers to be held to it.

import { describeError, isOpenClawError, outcomeOf, RemoteError, WireError, type Outcome } from '../../shared/errors.js';
import { formatBytes, plural } from '../../shared/format.js';

const EXIT_CODES: Record<Outcome | 'ok', number> = { ok: 0, failed: 1, usage: 2, refused: 3 };

export interface OldCliRun {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** What the old CLI prints and exits with for `answer`, the backup function's (parsed) Invoke payload. */
export function oldCliBackup(answer: unknown, json: boolean): OldCliRun {
  try {
    const result = backup(invokeAnswer(answer));
    const lines = describeBackup(result);
    return json ? { status: 0, stdout: `${JSON.stringify(result)}\n`, stderr: '' } : { status: 0, stdout: `${lines.join('\n')}\n`, stderr: '' };
  } catch (error) {
    const code = isOpenClawError(error) ? error.code : 'UNEXPECTED';
    return {
      status: EXIT_CODES[outcomeOf(error)],
      stdout: json ? `${JSON.stringify({ error: { code, message: describeError(error) } })}\n` : '',
      stderr: `openclaw: ${describeError(error)}\n`,
    };
  }
}

// cli/remote.ts invoke(), after Lambda answered without a FunctionError.
function invokeAnswer(answer: unknown): unknown {
  if (isFailureResponse(answer)) throw errorFromBody(answer.error);
  return answer;
}

// cli/remote.ts remoteOperations().backup().
function backup(answer: unknown): OldBackupResult {
  if (!isRecord(answer) || answer.operation !== 'backup') {
    throw new RemoteError('REMOTE_PROTOCOL', 'unexpected answer from openclaw-backup-backup: are the CLI and the gateway the same version?');
  }
  return answer as unknown as OldBackupResult;
}

interface OldBackupResult {
  readonly tenant: string;
  readonly location: string;
  readonly files: number;
  readonly directories: number;
  readonly symlinks: number;
  readonly bytes: number;
  readonly archiveBytes: number;
  readonly durationMs: number;
  readonly manifestSha256: string;
  readonly skipped: readonly { readonly path: string; readonly reason: string }[];
  readonly warnings: readonly { readonly path: string; readonly reason: string }[];
  readonly notices?: readonly string[];
  readonly encryptedTo?: readonly string[];
}

// cli/tenants-backup.ts describeBackup() (its `via` of an endpoint left out: remote backups to the gateway's bucket name none).
function describeBackup(result: OldBackupResult): string[] {
  const lines = [
    `Backed up tenant "${result.tenant}" to ${result.location}`,
    `  ${plural(result.files, 'file')}, ${plural(result.directories, 'directory', 'directories')}, ${plural(result.symlinks, 'symlink')}; ` +
      `${formatBytes(result.bytes)} of content, ${formatBytes(result.archiveBytes)} stored, in ${(result.durationMs / 1000).toFixed(1)} s`,
    `  manifest sha256 ${result.manifestSha256}`,
  ];
  const recipients = result.encryptedTo ?? [];
  if (recipients.length > 0) lines.push(`  encrypted with age to ${plural(recipients.length, 'recipient')}: ${recipients.join(', ')}`);
  for (const notice of result.notices ?? []) lines.push(`  note: ${notice}`);
  if (result.skipped.length > 0) {
    lines.push(`  left out ${result.skipped.length}:`);
    for (const note of result.skipped.slice(0, 10)) lines.push(`    ${note.path}: ${note.reason}`);
  }
  if (result.warnings.length > 0) {
    lines.push(`  warnings ${result.warnings.length}:`);
    for (const note of result.warnings.slice(0, 10)) lines.push(`    ${note.path}: ${note.reason}`);
  }
  return lines;
}

// shared/control-plane/protocol.ts isFailureResponse() and errorFromBody() (a code it does not know: a WireError).
function isFailureResponse(value: unknown): value is { ok: false; error: { code: string; outcome: Outcome; message: string } } {
  if (!isRecord(value) || value.ok !== false || !isRecord(value.error)) return false;
  const { code, outcome, message } = value.error;
  return typeof code === 'string' && typeof message === 'string' && (outcome === 'usage' || outcome === 'refused' || outcome === 'failed');
}

function errorFromBody(body: { code: string; outcome: Outcome; message: string }): WireError {
  return new WireError(body.code, body.outcome, body.message);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
