// Kills without the hook: under strace, every rename and link a restore --force or a
// backup makes is held for a moment after it completed (`-e inject=…:delay_exit=`) and the
// process is killed right then, so each kill lands exactly between two file system steps;
// the same for the first unlinks of the old tenant's trash. Then timed kills at spread-out
// moments of a larger restore --force and backup. After each, the next command must leave
// exactly the old or the new tenant and nothing else. Needs strace (`apt-get install
// strace`) and ptrace; skipped with a note where either is missing.

import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createSampleTenant } from '../../scripts/sample-tenant.js';
import { cliPath } from '../helpers/tree.js';
import { cli, describeRun, expectOk, exited, Fixtures, World } from './harness.js';

const straceWorks = spawnSync('strace', ['-f', '-qq', '-e', 'trace=none', 'true']).status === 0;
if (!straceWorks) console.log('crash suite: strace is missing or ptrace is not permitted here; the strace kills are skipped');

let fixtures: Fixtures;
beforeAll(() => {
  fixtures = new Fixtures().build();
}, 120_000);
afterAll(() => fixtures?.cleanup());

let kills = 0;
const report: string[] = [];
afterAll(() => console.log(`crash suite (strace and timed): ${kills} kills; ${report.join('; ')}`));

const FILE_STEPS = 'rename,renameat,renameat2,link,linkat';
const UNLINKS = 'unlink,unlinkat,rmdir';

interface Traced {
  /** Syscall lines (completed, under the base dir or the archive directory) in the order they happened. */
  readonly lines: string[];
  readonly killed: boolean;
}

/**
 * Runs the CLI under strace, every traced call held 150 ms after it completes; when the
 * `killAfter`-th call whose line matches `select` completes, kills the process.
 */
async function traced(w: World, args: string[], syscalls: string, select: (line: string) => boolean, killAfter?: number): Promise<Traced> {
  const child = spawn(
    'strace',
    ['-f', '-qq', '-e', `trace=${syscalls}`, '-e', `inject=${syscalls}:delay_exit=150000`, process.execPath, cliPath, '--tenants-dir', w.base, ...args],
    { env: { ...process.env, TMPDIR: w.tmp }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const lines: string[] = [];
  let killed = false;
  let buffered = '';
  child.stderr.on('data', (data: Buffer) => {
    buffered += data.toString();
    const complete = buffered.split('\n');
    buffered = complete.pop()!;
    for (const line of complete) {
      if (!/= 0( |$)/.test(line) || !select(line)) continue;
      lines.push(line);
      if (lines.length === killAfter && !killed) {
        killed = true;
        // The line's pid is a thread of the traced process: a signal to it kills them all.
        const tid = Number(/^(?:\[pid\s+)?(\d+)/.exec(line)?.[1]);
        process.kill(tid, 'SIGKILL');
      }
    }
  });
  await new Promise((resolve) => child.on('close', resolve));
  return { lines, killed };
}

function inside(w: World): (line: string) => boolean {
  return (line) => line.includes(w.base) || line.includes(w.out);
}

describe.skipIf(!straceWorks)('strace: a kill right after each rename and link', () => {
  it('of restore --force: each leaves the old or the new tenant, and never the old after the new', async () => {
    const dry = new World(fixtures, 'strace-force-dry');
    const all = await traced(dry, ['tenants', 'restore', '--from', fixtures.newArchive, '--force'], FILE_STEPS, inside(dry));
    expect(dry.which('acme')).toBe('new');
    // Lock link, two journal writes, old aside, new in, old to trash.
    expect(all.lines.length).toBeGreaterThanOrEqual(6);
    report.push(`restore --force: ${all.lines.length} renames and links`);
    let sawNew = false;
    for (let k = 1; k <= all.lines.length; k++) {
      const w = new World(fixtures, `strace-force-${k}`);
      const run = await traced(w, ['tenants', 'restore', '--from', fixtures.newArchive, '--force'], FILE_STEPS, inside(w), k);
      expect(run.killed, `kill after ${all.lines[k - 1]}`).toBe(true);
      kills++;
      expectOk(w.cli(['tenants', k % 2 === 0 ? 'list' : 'backup', ...(k % 2 === 0 ? [] : ['beta', '--to', path.join(w.out, 'b.tar.zst')])]));
      const holds = w.which('acme');
      expect(['old', 'new'], `after ${all.lines[k - 1]}`).toContain(holds);
      if (sawNew) expect(holds, `after ${all.lines[k - 1]}`).toBe('new');
      sawNew ||= holds === 'new';
      w.expectSettled({ holds: holds as 'old' | 'new', tenants: ['acme', 'beta'] });
    }
    expect(sawNew).toBe(true);
  });

  it('of a backup: no archive or the whole one, and no temporary file after the next backup', async () => {
    const dry = new World(fixtures, 'strace-backup-dry');
    const archive = (w: World) => path.join(w.out, 'acme.tar.zst');
    const all = await traced(dry, ['tenants', 'backup', 'acme', '--to', archive(dry)], FILE_STEPS, inside(dry));
    expect(all.lines.length).toBeGreaterThanOrEqual(2); // lock link, archive link
    report.push(`backup: ${all.lines.length} renames and links`);
    for (let k = 1; k <= all.lines.length; k++) {
      const w = new World(fixtures, `strace-backup-${k}`);
      expect((await traced(w, ['tenants', 'backup', 'acme', '--to', archive(w)], FILE_STEPS, inside(w), k)).killed).toBe(true);
      kills++;
      expectOk(w.cli(['tenants', 'backup', 'beta', '--to', path.join(w.out, 'next.tar.zst')]));
      const stored = w.cli(['tenants', 'restore', '--from', archive(w), '--as', 'check']);
      expect([0, 1], describeRun(stored)).toContain(stored.status); // 1: no archive at …
      if (stored.status === 1) expect(stored.stderr).toMatch(/no archive at/);
      w.expectSettled({ holds: 'old', tenants: stored.status === 0 ? ['acme', 'beta', 'check'] : ['acme', 'beta'] });
    }
  });

  it("of restore --force while it deletes the old tenant's trash: the next command deletes the rest", async () => {
    // The trash's entries are removed through its open directories' procfs links (remove-tree.ts), the trash itself by name.
    const trash = (line: string) => line.includes('.openclaw-trash-acme-') || line.includes('"/proc/self/fd/');
    for (const k of [1, 4, 16]) {
      const w = new World(fixtures, `strace-trash-${k}`);
      expect((await traced(w, ['tenants', 'restore', '--from', fixtures.newArchive, '--force'], UNLINKS, trash, k)).killed).toBe(true);
      kills++;
      expectOk(w.cli(['tenants', 'list', '--names']));
      w.expectSettled({ holds: 'new', tenants: ['acme', 'beta'] });
    }
  });
});

describe.skipIf(!straceWorks)('strace: a tenant file or directory that cannot be read', () => {
  // Every read of one file, or every open of the tenant's directory, fails (-P: only calls on
  // that path or a descriptor of it), on whichever thread makes it: the backup fails in one
  // line naming the tenant, the reason and the call or path, and leaves no archive, no
  // temporary file and no scratch. (A file's own open is not injected here: the reader threads
  // open files through their directory's procfs link, a path -P does not match.)
  for (const [syscall, target, expected] of [
    ['pread64', 'acme/config.json', 'input/output error \\(read\\)'],
    ['openat', 'acme', 'input/output error \\(\\S+/acme\\)'],
  ] as const) {
    it(`EIO on ${syscall} of ${target}: one line, nothing stored`, async () => {
      const w = new World(fixtures, `strace-eio-${syscall}`);
      const child = spawn(
        'strace',
        ['-f', '-qq', '-o', '/dev/null', '-P', path.join(w.base, target), '-e', `trace=${syscall}`, '-e', `inject=${syscall}:error=EIO`,
          process.execPath, cliPath, '--tenants-dir', w.base, 'tenants', 'backup', 'acme', '--to', path.join(w.out, 'a.tar.zst')],
        { env: { ...process.env, TMPDIR: w.tmp }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const run = await exited(child);
      expect(run.status, describeRun(run)).toBe(1);
      expect(run.stderr).toMatch(new RegExp(`^openclaw: cannot back up tenant "acme": ${expected}\\n$`));
      expect(readdirSync(w.out)).toEqual([]);
      w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
    });
  }
});

describe.skipIf(!straceWorks)('strace: the check of an opened directory fails', () => {
  // Each thread's first readlink fails (strace counts `when=` per thread): on a reader thread,
  // that of its first directory's procfs link, the check that the directory opened is the one
  // listed. A check that failed is no sign that the directory vanished: the backup fails in one
  // line, or archives every file; it never leaves a file out as "vanished during backup".
  it('EIO on the first readlink of every thread during backup: one line and nothing stored, or every file archived', async () => {
    const w = new World(fixtures, 'strace-eio-readlink');
    const complete = path.join(w.out, 'complete.tar.zst');
    expectOk(w.cli(['tenants', 'backup', 'acme', '--to', complete]));
    const archive = path.join(w.out, 'a.tar.zst');
    const child = spawn(
      'strace',
      ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=readlink', '-e', 'inject=readlink:error=EIO:when=1',
        process.execPath, cliPath, '--tenants-dir', w.base, 'tenants', 'backup', 'acme', '--to', archive],
      { env: { ...process.env, TMPDIR: w.tmp }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const run = await exited(child);
    expect(run.stdout).not.toMatch(/vanished/);
    if (run.status === 0) {
      expect(listing(archive)).toEqual(listing(complete));
    } else {
      expect(run.status, describeRun(run)).toBe(1);
      expect(run.stderr).toMatch(/^openclaw: cannot back up tenant "acme": input\/output error \(\S+\)\n$/);
      expect(readdirSync(w.out)).toEqual(['complete.tar.zst']);
    }
    w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
  });

  function listing(archive: string): string[] {
    return spawnSync('sh', ['-c', `zstd -dc '${archive}' | tar -tf - | grep -v '/.openclaw-backup-manifest.json$' | sort`], { encoding: 'utf8' }).stdout.split('\n');
  }
});

describe.skipIf(!straceWorks)('strace: the base dir cannot be fsynced', () => {
  // EIO on the first, then the second fsync of the base dir itself (-P: only calls on it): the
  // restore fails in one line that says the changes could not be made durable, and the next
  // command leaves exactly the old or the new tenant. strace counts `when=` per thread, and the
  // fsyncs run on whichever libuv pool thread is free: a pool of one puts them on one thread.
  for (const failing of [1, 2]) {
    it(`EIO on fsync number ${failing} of the base dir during restore --force: one line, then old or new`, async () => {
      const w = new World(fixtures, `strace-dir-fsync-${failing}`);
      const child = spawn(
        'strace',
        ['-f', '-qq', '-o', '/dev/null', '-P', w.base, '-e', 'trace=fsync', '-e', `inject=fsync:error=EIO:when=${failing}`,
          process.execPath, cliPath, '--tenants-dir', w.base, 'tenants', 'restore', '--from', fixtures.newArchive, '--force'],
        { env: { ...process.env, TMPDIR: w.tmp, UV_THREADPOOL_SIZE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const run = await exited(child);
      expect(run.status, describeRun(run)).toBe(1);
      expect(run.stderr).toMatch(/^openclaw: cannot make the changes in \S+ durable \(fsync\): input\/output error\n$/);
      expectOk(w.cli(['tenants', 'list']));
      const holds = w.which('acme');
      expect(['old', 'new']).toContain(holds);
      w.expectSettled({ holds: holds as 'old' | 'new', tenants: ['acme', 'beta'] });
    });
  }
});

describe('timed kills of a larger tenant', () => {
  let big: { archive: string };
  beforeAll(() => {
    const w = new World(fixtures, 'big-source');
    createSampleTenant(path.join(w.root, 'src', 'acme'), { sessions: 40, notes: 600, mediaFiles: 8, mediaBytes: 2 * 1024 * 1024, seed: 9 });
    const archive = path.join(fixtures.dir.path, 'big.tar.zst');
    expectOk(cli(['--tenants-dir', path.join(w.root, 'src'), 'tenants', 'backup', 'acme', '--to', archive], { TMPDIR: w.tmp }));
    big = { archive };
  }, 120_000);

  async function killAfter(w: World, args: string[], ms: number): Promise<void> {
    const child = w.spawn(args);
    const result = exited(child);
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    await result;
    clearTimeout(timer);
    kills++;
  }

  it('restore --force killed at 12 moments: the old or the new tenant, exactly', async () => {
    const probe = new World(fixtures, 'timed-probe');
    const started = Date.now();
    expectOk(probe.cli(['tenants', 'restore', '--from', big.archive, '--force']));
    const duration = Date.now() - started;
    const seen = new Set<string>();
    for (let i = 1; i <= 12; i++) {
      const w = new World(fixtures, `timed-force-${i}`);
      await killAfter(w, ['tenants', 'restore', '--from', big.archive, '--force'], Math.round((duration * i) / 12));
      expectOk(w.cli(['tenants', i % 2 === 0 ? 'list' : 'backup', ...(i % 2 === 0 ? [] : ['beta', '--to', path.join(w.out, 'b.tar.zst')])]));
      const tree = w.tree('acme');
      const holds = JSON.stringify(tree) === JSON.stringify(probe.tree('acme')) ? 'new' : 'old';
      seen.add(holds);
      if (holds === 'old') expect(tree).toEqual(fixtures.old);
      expect(w.tree('beta')).toEqual(fixtures.beta);
      expect(w.cli(['tenants', 'list', '--names']).stdout).toBe('acme\nbeta\n');
      expect(readdirSync(w.base).filter((name) => name.startsWith('.'))).toEqual([]);
    }
    expect(seen.has('old')).toBe(true);
    report.push(`timed restore --force (${duration} ms uninterrupted) ended ${[...seen].join(' and ')}`);
  });

  it('backup killed at 8 moments: no temporary file or scratch after the next backup', async () => {
    const w0 = new World(fixtures, 'timed-backup-probe');
    const started = Date.now();
    expectOk(w0.cli(['tenants', 'backup', 'acme', '--to', path.join(w0.out, 'a.tar.zst')]));
    const duration = Math.max(Date.now() - started, 200);
    for (let i = 1; i <= 8; i++) {
      const w = new World(fixtures, `timed-backup-${i}`);
      await killAfter(w, ['tenants', 'backup', 'acme', '--to', path.join(w.out, 'a.tar.zst')], Math.round((duration * i) / 8));
      expectOk(w.cli(['tenants', 'backup', 'beta', '--to', path.join(w.out, 'b.tar.zst')]));
      w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
    }
  });
});

describe.skipIf(!straceWorks)('strace: a failure after the work is done', () => {
  function straced(w: World, straceArgs: string[], args: string[]) {
    const child = spawn('strace', ['-f', '-qq', '-o', '/dev/null', ...straceArgs, process.execPath, cliPath, '--tenants-dir', w.base, ...args], {
      env: { ...process.env, TMPDIR: w.tmp },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return exited(child);
  }

  it("restore --force that cannot delete the old tenant's trash (EBUSY on every rmdir): succeeds with a note, the next command deletes it", async () => {
    const w = new World(fixtures, 'strace-trash-ebusy');
    const run = await straced(w, ['-e', 'trace=rmdir', '-e', 'inject=rmdir:error=EBUSY'], ['tenants', 'restore', '--from', fixtures.newArchive, '--force']);
    expect(run.status, describeRun(run)).toBe(0);
    // The directory is named by its path in the trash, not the procfs link it was removed through (/proc/self/fd/N/name).
    expect(run.stdout).toMatch(
      /note: the restored tenant is in place, but tidying up after it failed \(the device or resource is busy \(\S+\/\.openclaw-trash-acme-[0-9a-f]{12}(\/\S+)?\)\): the next command on tenant "acme" finishes it/,
    );
    expect(w.which('acme')).toBe('new');
    expectOk(w.cli(['tenants', 'list', '--names']));
    w.expectSettled({ holds: 'new', tenants: ['acme', 'beta'] });
  });

  it('backup whose lock cannot be removed (EIO on its unlink): succeeds, and the next command takes the lock over', async () => {
    const w = new World(fixtures, 'strace-lock-unlink-eio');
    const archive = path.join(w.out, 'a.tar.zst');
    const lock = path.join(w.base, '.openclaw-lock-acme');
    const run = await straced(w, ['-P', lock, '-e', 'trace=unlink', '-e', 'inject=unlink:error=EIO'], ['tenants', 'backup', 'acme', '--to', archive]);
    expect(run.status, describeRun(run)).toBe(0);
    expectOk(w.cli(['tenants', 'verify', '--no-record', '--from', archive]));
    expectOk(w.cli(['tenants', 'backup', 'acme', '--to', path.join(w.out, 'b.tar.zst')]));
    w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
  });
});

describe.skipIf(!straceWorks)('strace: a prune whose removal fails', () => {
  it('EIO on the unlink of the archive it removes: one line saying it could not remove it (not read it); the next prune removes it', async () => {
    const w = new World(fixtures, 'strace-prune-unlink-eio');
    const older = path.join(w.out, 'older.tar.zst');
    expectOk(w.cli(['tenants', 'backup', 'acme', '--to', older]));
    expectOk(w.cli(['tenants', 'backup', 'acme', '--to', path.join(w.out, 'newer.tar.zst')]));
    const prune = ['tenants', 'prune', 'acme', '--in', w.out, '--keep-last', '1'];
    const run = await exited(
      // Every unlink: the archive's is the first (the rest, its verification mark's, only after it), and it goes
      // through the directory held open (/proc/self/fd/N/older.tar.zst), which -P's path would not match.
      spawn('strace', ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=unlink', '-e', 'inject=unlink:error=EIO', process.execPath, cliPath, ...prune], {
        env: { ...process.env, TMPDIR: w.tmp },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    expect(run.status, describeRun(run)).toBe(1);
    expect(run.stderr).toBe(`openclaw: cannot remove ${older}: input/output error\n`);
    expect(readdirSync(w.out).sort()).toEqual(['newer.tar.zst', 'older.tar.zst']);
    expectOk(w.cli(prune));
    expect(readdirSync(w.out)).toEqual(['newer.tar.zst']);
  });
});

describe.skipIf(!straceWorks)('strace: a move the file system refuses', () => {
  it('recover of an interrupted restore --force whose move of the slot fails (EIO): one line naming the tenant, the reason and the slot; the next recover finishes it', async () => {
    const w = new World(fixtures, 'strace-recover-rename-eio');
    w.killAt('commit:journal-written', ['tenants', 'restore', '--from', fixtures.newArchive, '--force']);
    // -P: only the renames of the slot itself (old tenant aside, restored tenant in) fail.
    const straced = (args: string[]) =>
      exited(
        spawn('strace', ['-f', '-qq', '-o', '/dev/null', '-P', path.join(w.base, 'acme'), '-e', 'trace=rename', '-e', 'inject=rename:error=EIO', process.execPath, cliPath, '--tenants-dir', w.base, ...args], {
          env: { ...process.env, TMPDIR: w.tmp },
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      );
    const listed = await straced(['tenants', 'list']);
    expect(listed.status, describeRun(listed)).toBe(0);
    expect(listed.stdout).toMatch(/^acme .* mid-commit: input\/output error \(\S+\/acme\)$/m);
    const run = await straced(['tenants', 'recover', 'acme']);
    expect(run.status, describeRun(run)).toBe(1);
    expect(run.stderr).toMatch(/^openclaw: cannot recover tenant "acme": input\/output error \(\S+\/acme\); what was done stays done, and the next command on the tenant goes on from there\n$/);
    expect(w.which('acme')).toBe('old');
    expectOk(w.cli(['tenants', 'recover', 'acme']));
    w.expectSettled({ holds: 'new', tenants: ['acme', 'beta'] });
  });

  it('restore --as that cannot list the base dir (EIO on getdents64): one line, as a restore without --as says it', async () => {
    const w = new World(fixtures, 'strace-base-getdents-eio');
    const child = spawn(
      'strace',
      ['-f', '-qq', '-o', '/dev/null', '-P', w.base, '-e', 'trace=getdents64', '-e', 'inject=getdents64:error=EIO',
        process.execPath, cliPath, '--tenants-dir', w.base, 'tenants', 'restore', '--from', fixtures.newArchive, '--as', 'copy'],
      { env: { ...process.env, TMPDIR: w.tmp }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const run = await exited(child);
    expect(run.status, describeRun(run)).toBe(1);
    expect(run.stderr).toMatch(/^openclaw: cannot write the restored tenant under \S+: input\/output error \(\S+\)\n$/);
    expectOk(w.cli(['tenants', 'list', '--names']));
    w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
  });

  it('restore --as whose move into the slot fails (EXDEV): one line naming the reason; the journal says committing, so the next command finishes it', async () => {
    const w = new World(fixtures, 'strace-slot-exdev');
    // Its renames, on libuv's one thread: the journal ("extracting"), the journal ("committing"), the staged tenant into the slot.
    const child = spawn(
      'strace',
      ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=rename', '-e', 'inject=rename:error=EXDEV:when=3',
        process.execPath, cliPath, '--tenants-dir', w.base, 'tenants', 'restore', '--from', fixtures.newArchive, '--as', 'copy'],
      { env: { ...process.env, TMPDIR: w.tmp, UV_THREADPOOL_SIZE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const run = await exited(child);
    expect(run.status, describeRun(run)).toBe(1);
    expect(run.stderr).toMatch(/^openclaw: cannot write the restored tenant under \S+: cannot move across file systems \(\S+\.openclaw-staging-copy-\S+\); the restored tenant is verified and its move into the slot recorded: the next command on tenant "copy" \(e\.g\. openclaw tenants recover copy\) finishes it\n$/);
    expect(w.which('acme')).toBe('old');
    expectOk(w.cli(['tenants', 'list', '--names']));
    w.expectSettled({ target: 'copy', holds: 'new', tenants: ['acme', 'beta', 'copy'] });
  });
});
