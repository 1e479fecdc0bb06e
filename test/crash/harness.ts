// What the fault-injection suite shares: the built CLI run as a real process (killed by the
// crash-point hook, by a timer, or under strace), a tenant base dir per case copied from
// templates (so every case starts from byte-identical trees), and the one check every case
// ends with: the base dir holds exactly the expected tenants, each exactly the old or the
// new tree, and no lock, journal, staging, aside, trash or temporary file is left anywhere.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';

import { createSampleTenant } from '../../scripts/sample-tenant.js';
import { cliPath, describeTree, sh, tempDir, type TreeEntry } from '../helpers/tree.js';

export interface Run {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

type Tree = Record<string, TreeEntry>;

/** Trees and archives built once per suite; each case copies them. */
export class Fixtures {
  readonly dir = tempDir('openclaw-crash-');
  readonly templates = path.join(this.dir.path, 'templates');
  /** An archive of a different `acme`: what the restores bring in. */
  readonly newArchive = path.join(this.dir.path, 'new-acme.tar.zst');
  /** The same archive, re-packed by GNU tar with one file changed: it fails verification after extracting. */
  readonly damagedArchive = path.join(this.dir.path, 'damaged-acme.tar.zst');
  old!: Tree;
  new!: Tree;
  beta!: Tree;

  build(): this {
    const oldBase = path.join(this.templates, 'old');
    createSampleTenant(path.join(oldBase, 'acme'), { sessions: 3, memoryRows: 20, notes: 30, seed: 1 });
    createSampleTenant(path.join(oldBase, 'beta'), { sessions: 1, memoryRows: 5, mediaFiles: 0, seed: 2 });
    // More than 64 entries, so the restore reports progress (a crash point) mid-extraction.
    const newBase = path.join(this.templates, 'new');
    createSampleTenant(path.join(newBase, 'acme'), { sessions: 5, memoryRows: 30, notes: 60, seed: 3 });
    expectOk(cli(['--tenants-dir', newBase, 'tenants', 'backup', 'acme', '--to', this.newArchive]));
    const tamper = path.join(this.dir.path, 'tamper');
    mkdirSync(tamper);
    sh(
      `zstd -dc '${this.newArchive}' | tar -C '${tamper}' -xf - && printf tampered >> '${tamper}/tenants/acme/config.json' && cd '${tamper}' && ` +
        `{ find tenants/acme ! -name .openclaw-backup-manifest.json | sort; echo tenants/acme/.openclaw-backup-manifest.json; } | ` +
        `tar --no-recursion -cf - -T - | zstd -q -o '${this.damagedArchive}'`,
    );
    // What a restore of the archive produces, byte for byte.
    const reference = path.join(this.dir.path, 'reference');
    expectOk(cli(['--tenants-dir', reference, 'tenants', 'restore', '--from', this.newArchive]));
    this.new = describeTree(path.join(reference, 'acme'));
    this.old = describeTree(path.join(oldBase, 'acme'));
    this.beta = describeTree(path.join(oldBase, 'beta'));
    return this;
  }

  cleanup(): void {
    this.dir.cleanup();
  }
}

/** One case: its own base dir (acme and beta, old), archive directory and TMPDIR. */
export class World {
  readonly root: string;
  readonly base: string;
  /** Where backups go. */
  readonly out: string;
  /** The CLI's TMPDIR: backup scratch areas land here. */
  readonly tmp: string;

  constructor(
    readonly fixtures: Fixtures,
    name: string,
  ) {
    this.root = path.join(fixtures.dir.path, 'cases', name.replace(/[^a-z0-9@:-]+/gi, '_'));
    this.base = path.join(this.root, 'tenants');
    this.out = path.join(this.root, 'out');
    this.tmp = path.join(this.root, 'tmp');
    mkdirSync(this.root, { recursive: true });
    mkdirSync(this.out);
    mkdirSync(this.tmp);
    sh(`cp -a '${path.join(fixtures.templates, 'old')}' '${this.base}'`);
  }

  cli(args: string[], env: NodeJS.ProcessEnv = {}): Run {
    return cli(['--tenants-dir', this.base, ...args], { TMPDIR: this.tmp, ...env });
  }

  spawn(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
    return spawn(process.execPath, [cliPath, '--tenants-dir', this.base, ...args], {
      env: { ...process.env, TMPDIR: this.tmp, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  /** Runs the CLI with the hook set to kill it at `point`, and checks that it died there. */
  killAt(point: string, args: string[]): void {
    const run = this.cli(args, { OPENCLAW_TEST_CRASH_AT: point });
    expect(run.signal, `expected ${args.join(' ')} to be killed at ${point}; it ${describeRun(run)}`).toBe('SIGKILL');
  }

  tree(tenant: string): Tree | 'absent' {
    const dir = path.join(this.base, tenant);
    return existsSync(dir) ? describeTree(dir) : 'absent';
  }

  /** Which template the tenant's tree is, exactly; 'other' fails the comparison in expectSettled. */
  which(tenant: string): 'old' | 'new' | 'absent' | 'other' {
    const tree = this.tree(tenant);
    if (tree === 'absent') return 'absent';
    if (sameTree(tree, this.fixtures.old)) return 'old';
    if (sameTree(tree, this.fixtures.new)) return 'new';
    return 'other';
  }

  /**
   * The end state every case must reach: exactly these tenants, `acme` (or `target`) holding
   * exactly the expected tree, beta untouched, and nothing else anywhere: no hidden names in
   * the base dir, no temporary archives beside the backups, no scratch in TMPDIR.
   */
  expectSettled(expected: { readonly target?: string; readonly holds: 'old' | 'new' | 'absent'; readonly tenants: readonly string[] }): void {
    const target = expected.target ?? 'acme';
    expect(readdirSync(this.base).sort()).toEqual([...expected.tenants].sort());
    expect(this.which(target)).toBe(expected.holds);
    if (expected.holds !== 'absent') expect(this.tree(target)).toEqual(expected.holds === 'old' ? this.fixtures.old : this.fixtures.new);
    expect(this.tree('beta')).toEqual(this.fixtures.beta);
    expect(readdirSync(this.out).filter((name) => name.startsWith('.'))).toEqual([]);
    expect(readdirSync(this.tmp)).toEqual([]);
  }
}

export function cli(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const result = spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 });
  return { status: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
}

export function expectOk(run: Run): Run {
  expect(run.status, describeRun(run)).toBe(0);
  return run;
}

export function describeRun(run: Run): string {
  return `exited with ${run.status ?? run.signal}: ${run.stderr.trim() || run.stdout.trim()}`;
}

function sameTree(a: Tree, b: Tree): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Resolves once the process has stopped itself (SIGSTOP from the pause hook). */
export async function stopped(child: ChildProcess, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('T')) return;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`process ${child.pid} did not pause`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export function exited(child: ChildProcess): Promise<Run> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (data: Buffer) => (stdout += data.toString()));
  child.stderr?.on('data', (data: Buffer) => (stderr += data.toString()));
  return new Promise((resolve) => child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr })));
}

/** Whether this process may mount a tmpfs (root): the cases on a full disk or one without inodes need it. */
export function canMountTmpfs(): boolean {
  const probe = tempDir('openclaw-tmpfs-probe-');
  try {
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe.path]).status !== 0) return false;
    spawnSync('umount', [probe.path]);
    return true;
  } finally {
    probe.cleanup();
  }
}

/** Unmounts `mounts` in order and empties the list (lazily where a dead command's open file keeps one busy). */
export function unmountAll(mounts: string[]): void {
  for (const mount of mounts.splice(0)) {
    if (spawnSync('umount', [mount]).status !== 0) spawnSync('umount', ['-l', mount]);
  }
}
