// Test helpers: temp dirs, a full description of a directory tree for byte-exact
// comparisons, and running the built CLI as a user would.

import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { FD_LINKS } from '../../shared/file-access.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const cliPath = path.join(repoRoot, 'bin', 'openclaw.js');

export function tempDir(prefix = 'openclaw-test-'): { path: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { path: dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * The directory a FileAccess `readdir` was asked to list, as a real path: a backup's walk
 * lists each directory it opened through the descriptor's procfs link (file-access.ts).
 */
export function listedDirectory(at: string): string {
  return at.startsWith(FD_LINKS) ? readlinkSync(at) : at;
}

/**
 * Creates `dirs` nested below `base` and the files `files` (name → content) in the deepest,
 * one relative step at a time, so the paths may be longer than PATH_MAX. Changes the working
 * directory while it runs: for test files run in a process of their own (vitest's forks).
 * rmSync cannot remove such a tree; `rm -rf` can.
 */
export function makeDeepChain(base: string, dirs: readonly string[], files: Readonly<Record<string, string>>): void {
  mkdirSync(base, { recursive: true });
  const cwd = process.cwd();
  process.chdir(base);
  try {
    for (const dir of dirs) {
      mkdirSync(dir, { recursive: true });
      process.chdir(dir);
    }
    for (const [name, content] of Object.entries(files)) writeFileSync(name, content);
  } finally {
    process.chdir(cwd);
  }
}

/** Names of 250 bytes, as many as leave between 5 and 255 bytes of PATH_MAX (4095) for one more name after `prefixBytes`. */
export function chainFilling(prefixBytes: number): string[] {
  const dirs: string[] = [];
  while (4095 - prefixBytes - 251 * dirs.length > 255) dirs.push(`${dirs.length}`.padEnd(250, 'd'));
  return dirs;
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

/** The built CLI with `env` as its whole environment (none of the test's), while the test goes on (a local S3 server answers in this process). */
export function runCliIn(env: NodeJS.ProcessEnv, args: string[]): Promise<CliRun> {
  const child = spawn(process.execPath, [cliPath, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })));
}

export function sh(command: string, options: { cwd?: string; input?: Buffer } = {}): Buffer {
  const result = spawnSync('bash', ['-o', 'pipefail', '-c', command], { cwd: options.cwd, input: options.input, maxBuffer: 512 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`${command} failed (${result.status}): ${result.stderr.toString()}`);
  return result.stdout;
}
