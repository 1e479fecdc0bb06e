// Test helpers: temp dirs, a full description of a directory tree for byte-exact
// comparisons, and running the built CLI as a user would.

import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const cliPath = path.join(repoRoot, 'bin', 'openclaw.js');

export function tempDir(prefix = 'openclaw-test-'): { path: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { path: dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TreeEntry {
  readonly type: 'file' | 'directory' | 'symlink';
  readonly mode?: number;
  /** Seconds: tar keeps whole seconds. */
  readonly mtime?: number;
  readonly sha256?: string;
  readonly size?: number;
  readonly target?: string;
}

/** Every entry below `root` (relative paths), with what a byte-exact restore must reproduce. */
export function describeTree(root: string, options: { exclude?: (relPath: string) => boolean; mtimes?: boolean } = {}): Record<string, TreeEntry> {
  const result: Record<string, TreeEntry> = {};
  const visit = (relPath: string) => {
    const full = relPath === '' ? root : path.join(root, relPath);
    const stat = lstatSync(full);
    const mtime = options.mtimes === false ? undefined : Math.floor(stat.mtimeMs / 1000);
    if (stat.isSymbolicLink()) {
      result[relPath] = { type: 'symlink', target: readlinkSync(full) };
    } else if (stat.isDirectory()) {
      result[relPath] = { type: 'directory', mode: stat.mode & 0o7777, mtime };
      for (const name of readdirSync(full).sort()) {
        const child = relPath === '' ? name : `${relPath}/${name}`;
        if (options.exclude?.(child)) continue;
        visit(child);
      }
    } else if (stat.isFile()) {
      result[relPath] = {
        type: 'file',
        mode: stat.mode & 0o7777,
        mtime,
        size: stat.size,
        sha256: createHash('sha256').update(readFileSync(full)).digest('hex'),
      };
    }
  };
  visit('');
  return result;
}

export interface CliRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}): CliRun {
  const result: SpawnSyncReturns<string> = spawnSync(process.execPath, [cliPath, ...args], {
    encoding: 'utf8',
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    input: options.input,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export function runCliAsync(args: string[], options: { env?: NodeJS.ProcessEnv } = {}) {
  return spawn(process.execPath, [cliPath, ...args], { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

export function sh(command: string, options: { cwd?: string; input?: Buffer } = {}): Buffer {
  const result = spawnSync('bash', ['-o', 'pipefail', '-c', command], { cwd: options.cwd, input: options.input, maxBuffer: 512 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`${command} failed (${result.status}): ${result.stderr.toString()}`);
  return result.stdout;
}
