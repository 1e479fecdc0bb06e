// Backing up a tenant that is being written: a separate process commits to a WAL-mode memory
// database and appends to transcripts throughout the backup; the restored tenant must hold a
// consistent database (integrity_check ok, a contiguous prefix of the commits, at least every
// one committed before the backup began) and no torn line in any file not warned about; the
// same through the cross-host path (private copies, as the Lambda functions take them) while
// the writer also checkpoints and restarts its WAL. Also the rest of the consistency rules:
// corrupt databases archived raw with a warning, a database of which no consistent copy can
// be had failing the backup (or archived raw with --sqlite-raw-fallback), idle databases
// archived byte for byte without being touched, files that change re-read, files that vanish
// warned about.

import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, copyFileSync, existsSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, realpathSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { generateIdentity } from '../shared/age/index.js';
import { createTenantArchive } from '../shared/backup/tenant-archive.js';
import { copyDatabasePrivately } from '../shared/backup/sqlite-private-copy.js';
import { TempArea } from '../shared/backup/temp-area.js';
import type { SqliteOptions } from '../shared/backup/sqlite-policy.js';
import { AbortedError, FileSystemError, SqliteSnapshotError } from '../shared/errors.js';
import { backupTenant, type BackupResult } from '../shared/backup/backup.js';
import type { ManifestNote } from '../shared/archive/manifest.js';
import { restoreTenant } from '../shared/restore/restore.js';
import { ReadScratch, REREAD_ATTEMPTS, readWhole, readWholeAt, spoolFile } from '../shared/backup/stable-read.js';
import { PARALLEL_ACCESS, SYNC_ACCESS, type FileAccess } from '../shared/file-access.js';
import { LocalFileLocation } from '../shared/storage/local.js';
import { withPipeCommand } from '../shared/storage/pipe.js';
import { createSampleTenant } from '../scripts/sample-tenant.js';
import { LIVE_DATABASE, LIVE_STATE_FILE, LIVE_TRANSCRIPTS, liveState, liveTranscriptLine } from './helpers/live-writer.js';
import { column, openDatabase, readDatabase, transaction, value, type SqliteConnection } from './helpers/sqlite.js';
import { isStopped, pausedCli } from './helpers/processes.js';
import { describeTree, listedDirectory, repoRoot, tempDir } from './helpers/tree.js';

/**
 * What every private copy of a database (sqlite-private-copy.ts) runs between copying the
 * database and copying its WAL, through the copy's own hook for tests; a test sets it, and
 * unsets it when done.
 */
const privateCopies = vi.hoisted(() => ({ afterDatabaseCopy: undefined as ((attempt: number) => Promise<void>) | undefined }));
vi.mock('../shared/backup/sqlite-private-copy.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../shared/backup/sqlite-private-copy.js')>();
  const copyDatabasePrivately: typeof original.copyDatabasePrivately = (database, absPath, temp, hooks = {}) =>
    original.copyDatabasePrivately(database, absPath, temp, {
      ...hooks,
      afterDatabaseCopy: async (attempt) => {
        await hooks.afterDatabaseCopy?.(attempt);
        await privateCopies.afterDatabaseCopy?.(attempt);
      },
    });
  return { ...original, copyDatabasePrivately };
});

/**
 * What every spooled copy of a file (stable-read.ts `spoolFile`, which copies an idle
 * database) runs after each read of it, through its own hook; a test sets it, and unsets it.
 */
const spools = vi.hoisted(() => ({ afterRead: undefined as ((reads: number) => void) | undefined }));
vi.mock('../shared/backup/stable-read.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../shared/backup/stable-read.js')>();
  const spoolFile: typeof original.spoolFile = (handle, before, spoolPath, hooks = {}) =>
    original.spoolFile(handle, before, spoolPath, {
      ...hooks,
      afterRead: async (reads) => {
        await hooks.afterRead?.(reads);
        spools.afterRead?.(reads);
      },
    });
  return { ...original, spoolFile };
});

/**
 * What every snapshot of a database (sqlite-snapshot.ts `snapshotDatabase`) runs before SQLite
 * opens the database, after the caller looked at its companions; a test sets it, and unsets it.
 */
const snapshots = vi.hoisted(() => ({ beforeOpen: undefined as ((source: string) => void) | undefined, afterSnapshot: undefined as (() => void) | undefined, beforeCheck: undefined as ((file: string) => void) | undefined }));
vi.mock('../shared/backup/sqlite-snapshot.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../shared/backup/sqlite-snapshot.js')>();
  const snapshotDatabase: typeof original.snapshotDatabase = async (source, destination, options) => {
    snapshots.beforeOpen?.(source);
    const outcome = await original.snapshotDatabase(source, destination, options);
    snapshots.afterSnapshot?.();
    return outcome;
  };
  const checkIntegrity: typeof original.checkIntegrity = (file, pragma) => {
    snapshots.beforeCheck?.(file);
    return original.checkIntegrity(file, pragma);
  };
  return { ...original, snapshotDatabase, checkIntegrity };
});

/** What a read-write open of a live database (sqlite-snapshot.ts `closeAsLastConnection`) runs first; a test sets it, and unsets it. */
const drivers = vi.hoisted(() => ({ beforeReadWriteOpen: undefined as (() => void) | undefined, beforeBackupStep: undefined as (() => void) | undefined }));
vi.mock('../shared/backup/sqlite-driver.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../shared/backup/sqlite-driver.js')>();
  const sqliteDriver: typeof original.sqliteDriver = () => {
    const driver = original.sqliteDriver();
    return {
      ...driver,
      open: (file, options) => {
        if (options?.mustExist === true && options.readOnly !== true) drivers.beforeReadWriteOpen?.();
        const connection = driver.open(file, options);
        const backupTo = connection.backupTo.bind(connection);
        return Object.assign(connection, {
          backupTo: (destination: string) => {
            drivers.beforeBackupStep?.();
            return backupTo(destination);
          },
        });
      },
    };
  };
  return { ...original, sqliteDriver };
});

/**
 * WAL restarts a copy waits for between its database and its WAL. One would do (the writer
 * answers between rounds, so the next one starts after the copy's first look at the WAL);
 * two leave no doubt.
 */
const ROUNDS_PER_COPY = 2;

let dir: ReturnType<typeof tempDir>;
let base: string;
let tenantDir: string;
let restoredBase: string;

beforeEach(() => {
  dir = tempDir();
  base = path.join(dir.path, 'tenants');
  tenantDir = path.join(base, 'acme');
  restoredBase = path.join(dir.path, 'restored');
});
afterEach(() => dir.cleanup());

function archiveLocation(): LocalFileLocation {
  return new LocalFileLocation(path.join(dir.path, 'acme.tar.zst'));
}

async function backup(sqlite?: SqliteOptions): Promise<BackupResult> {
  return backupTenant({ tenantsDir: base, tenant: 'acme', location: archiveLocation(), overwrite: true, sqlite });
}

async function restore(): Promise<string> {
  rmSync(restoredBase, { recursive: true, force: true });
  await restoreTenant({ tenantsDir: restoredBase, location: archiveLocation() });
  return path.join(restoredBase, 'acme');
}

async function backupAndRestore(sqlite?: SqliteOptions): Promise<{ backup: BackupResult; restored: string }> {
  const result = await backup(sqlite);
  return { backup: result, restored: await restore() };
}

/**
 * Leaves `file` and its hot `-journal` as a writer killed mid-transaction does (copied while a
 * transaction has spilled pages into the database; its last commit: 100 rows, sum(n) 100).
 * With `superJournal`, the journal ends with that name, as a transaction over attached
 * databases writes it (and as the tenant may): the file SQLite deletes once it has rolled the
 * journal back, unless a journal it lists still names it.
 */
function leaveHotJournal(file: string, superJournal?: string): void {
  const writerFile = path.join(dir.path, 'writer.sqlite');
  const db = openDatabase(writerFile);
  try {
    db.exec('PRAGMA cache_size = 10; CREATE TABLE t (n INTEGER, pad BLOB)');
    db.exec(`BEGIN; ${'INSERT INTO t VALUES (1, randomblob(500));'.repeat(100)} COMMIT`);
    db.exec(`BEGIN; ${'INSERT INTO t VALUES (2, randomblob(500));'.repeat(2000)} UPDATE t SET n = 3`);
    copyFileSync(writerFile, file);
    copyFileSync(`${writerFile}-journal`, `${file}-journal`);
    db.exec('ROLLBACK');
  } finally {
    db.close();
    rmSync(writerFile);
  }
  if (superJournal === undefined) return;
  const name = Buffer.from(superJournal);
  const tail = Buffer.alloc(16);
  tail.writeUInt32BE(name.length, 0);
  tail.writeUInt32BE(name.reduce((sum, byte) => sum + byte, 0), 4);
  Buffer.from('d9d505f920a163d7', 'hex').copy(tail, 8);
  writeFileSync(`${file}-journal`, Buffer.concat([readFileSync(`${file}-journal`), name, tail]));
}

/** Checks a restored live database: intact, standalone, commits 1..n for some n in [from, to]; returns n. */
function checkRestoredLiveDatabase(file: string, from: number, to: number): number {
  const db = openDatabase(file);
  try {
    expect(value(db, 'PRAGMA integrity_check')).toBe('ok');
    const numbers = column(db, 'SELECT n FROM commits ORDER BY n') as number[];
    const last = numbers.length;
    expect(numbers).toEqual(Array.from({ length: last }, (_, i) => i + 1));
    expect(value(db, 'SELECT n FROM head')).toBe(last);
    expect(last).toBeGreaterThanOrEqual(from);
    expect(last).toBeLessThanOrEqual(to);
    db.prepare('INSERT INTO commits (n, body) VALUES (?, NULL)').run(last + 1); // opens read-write
    return last;
  } finally {
    db.close();
  }
}

/**
 * Asserts that `content` (a whole restored file) ends in `written`, the first bytes of the
 * write of `whole`, cut where the write had reached a page boundary of the file.
 */
function expectWriteCutAtPage(content: string, whole: string, written: string): void {
  expect(whole.startsWith(written)).toBe(true);
  expect(Buffer.byteLength(content) % 4096).toBe(0);
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

const warnedPaths = (notes: readonly ManifestNote[]) => new Set(notes.map((note) => note.path));

/**
 * A writer helper as a child process, with its `mark` question: the live writer
 * (helpers/live-writer.ts, given the tenant) or the WAL restarter (helpers/wal-restarter.ts,
 * given the database).
 */
class LiveWriter {
  private readonly lines: AsyncIterator<string>;
  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }

  static async start(target: string, env: NodeJS.ProcessEnv = {}, script = 'live-writer.ts'): Promise<LiveWriter> {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'test', 'helpers', script), target], {
      cwd: repoRoot,
      stdio: ['pipe', 'pipe', 'pipe'],
      // tsx would keep a cache per user in /tmp.
      env: { ...process.env, TSX_DISABLE_CACHE: '1', ...env },
    });
    let stderr = '';
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    const writer = new LiveWriter(child);
    const first = await writer.lines.next();
    if (first.value !== 'ready') throw new Error(`live writer did not start: ${String(first.value)} ${stderr}`);
    return writer;
  }

  /** The last transaction the writer has committed (the WAL restarter: the rounds it has completed). */
  async committed(): Promise<number> {
    this.child.stdin.write('mark\n');
    const answer = await this.lines.next();
    const match = /^(?:committed|rounds) (\d+)$/.exec(String(answer.value));
    if (!match) throw new Error(`unexpected answer from the live writer: ${String(answer.value)}`);
    return Number(match[1]);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGTERM');
    await exited;
  }
}

describe('a backup of a tenant being written', () => {
  it('restores a consistent memory database and no torn transcript line that is not warned about', async () => {
    createSampleTenant(tenantDir, { sessions: 30, notes: 200, mediaFiles: 6, mediaBytes: 1024 * 1024 });
    const writer = await LiveWriter.start(tenantDir);
    let before: number;
    let after: number;
    let result: BackupResult;
    try {
      await new Promise((resolve) => setTimeout(resolve, 300)); // let the WAL fill with commits
      before = await writer.committed();
      result = await backup();
      after = await writer.committed();
      console.log(
        `live backup: ${before} commits before it began, ${after - before} committed while it ran (${result.durationMs} ms); ` +
          `warnings: ${JSON.stringify(result.warnings)}`,
      );
    } finally {
      await writer.stop();
    }
    const restored = await restore();

    // The database: a standalone, intact copy of one committed state, no older than the backup.
    expect(result.skipped).toEqual(
      expect.arrayContaining([
        { path: `${LIVE_DATABASE}-wal`, reason: expect.stringContaining('consistent snapshot') },
        { path: `${LIVE_DATABASE}-shm`, reason: expect.stringContaining('consistent snapshot') },
      ]),
    );
    expect(warnedPaths(result.warnings).has(LIVE_DATABASE)).toBe(false);
    expect(existsSync(path.join(restored, `${LIVE_DATABASE}-wal`))).toBe(false);
    const last = checkRestoredLiveDatabase(path.join(restored, LIVE_DATABASE), before, after);
    console.log(`restored database holds commits 1..${last} (${last - before} more than at the start of the backup)`);

    // Every other file: one version of itself, or a warning. A version may be one a write()
    // had left halfway: Linux copies a write into the file a page at a time, growing the size
    // as it goes, and a writer held up between two pages for the whole read (a loaded machine)
    // leaves the size and mtime still (docs/consistency.md, "What this check cannot see").
    const warned = warnedPaths(result.warnings);
    for (const transcript of LIVE_TRANSCRIPTS) {
      if (warned.has(transcript)) continue;
      const content = readFileSync(path.join(restored, transcript), 'utf8');
      const lines = content.split('\n');
      const unfinished = lines.pop()!;
      const numbers = lines.map((line) => (JSON.parse(line) as { n: number }).n);
      expect(numbers).toEqual(Array.from({ length: numbers.length }, (_, i) => i + 1));
      expect(numbers.length).toBeGreaterThanOrEqual(before);
      if (unfinished !== '') expectWriteCutAtPage(content, liveTranscriptLine(numbers.length + 1), unfinished);
    }
    if (!warned.has(LIVE_STATE_FILE)) {
      // The writer truncates the state file, then writes it: empty is one of the states it really had.
      const state = readFileSync(path.join(restored, LIVE_STATE_FILE), 'utf8');
      const n = /^\{"n":(\d+),/.exec(state)?.[1];
      if (state !== '' && !isJson(state)) expectWriteCutAtPage(state, liveState(Number(n)), state);
    }
    // The idle sample databases beside it were archived byte for byte.
    for (const idle of ['memory/agent-0.sqlite', 'memory/agent-1.sqlite']) {
      expect(readFileSync(path.join(restored, idle)).equals(readFileSync(path.join(tenantDir, idle)))).toBe(true);
    }
  });
});

describe('the cross-host path: databases whose writers may be on another host (the Lambda functions, NFS, FUSE)', () => {
  it('fails in one line naming the scratch space when a private copy finds no room (a full /tmp on Lambda)', async () => {
    createSampleTenant(tenantDir, { sessions: 1, notes: 1, mediaFiles: 0 });
    // What a write into a full file system throws, where the copy writes.
    privateCopies.afterDatabaseCopy = async () => {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
    };
    try {
      const failure = await backup({ writers: 'cross-host' }).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(SqliteSnapshotError);
      expect((failure as Error).message).toMatch(
        /^no consistent copy of the SQLite database memory\/agent-0\.sqlite: no room for a copy in \S+ \(ENOSPC\); nothing was stored \(retry, or pass --sqlite-raw-fallback/,
      );
      expect(existsSync(archiveLocation().display)).toBe(false);

      const result = await backup({ writers: 'cross-host', rawFallback: true });
      expect(result.warnings.map((note) => note.reason)).toEqual(
        expect.arrayContaining([expect.stringMatching(/^no consistent SQLite snapshot \(no room for a copy in \S+ \(ENOSPC\)\); archived raw/)]),
      );
    } finally {
      privateCopies.afterDatabaseCopy = undefined;
    }
  });

  // Encrypted (built in, or by a --pipe command: age -r), the copies go in a scratch area in the
  // base dir, named through /proc/self/fd/N/ (temp-area.ts), never in $TMPDIR.
  it.each([
    ['an encrypted backup', () => ({ location: archiveLocation(), recipients: [generateIdentity().recipient] })],
    ['a backup encrypted by a --pipe command (age -r)', () => ({ location: withPipeCommand(archiveLocation(), `age -r ${generateIdentity().recipient.text}`, { writesAge: true }) })],
  ])('names the scratch directory in the base dir, not the descriptor link it writes through, when %s finds no room there, and says to free space there', async (_, encrypted) => {
    createSampleTenant(tenantDir, { sessions: 1, notes: 1, mediaFiles: 0 });
    privateCopies.afterDatabaseCopy = async () => {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
    };
    try {
      const failure = await backupTenant({ tenantsDir: base, tenant: 'acme', overwrite: true, sqlite: { writers: 'cross-host' as const }, ...encrypted() }).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(SqliteSnapshotError);
      const area = `${realpathSync(base)}/.openclaw-scratch-acme-`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      // Where to free space: "retry" alone fails the same way while the base dir is full.
      expect((failure as Error).message).toMatch(
        new RegExp(`: no room for a copy in ${area}[0-9a-f]{12} \\(ENOSPC\\); nothing was stored \\(an encrypted or --pipe backup copies into the base dir, never \\$TMPDIR: free space there and retry, or pass --sqlite-raw-fallback`),
      );
      expect(existsSync(archiveLocation().display)).toBe(false);
    } finally {
      privateCopies.afterDatabaseCopy = undefined;
    }
  });

  it('backs up a database its writer keeps committing to and checkpointing, each restore a consistent prefix', async () => {
    createSampleTenant(tenantDir, { sessions: 4, notes: 20, mediaFiles: 1 });
    // Checkpoints (TRUNCATE) every 150 commits besides SQLite's own: the WAL keeps restarting,
    // every 0.3 s at 500 commits a second. Faster (2,000 a second: a restart every 75 ms), a
    // copy on a loaded 2-core machine could not fit between two restarts five times running,
    // and the backup rightly failed (SQLITE_SNAPSHOT_FAILED).
    const writer = await LiveWriter.start(tenantDir, { LIVE_WRITER_CHECKPOINT_EVERY: '150', LIVE_WRITER_RATE: '500' });
    const seen: string[] = [];
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      for (let round = 1; round <= 4; round++) {
        const before = await writer.committed();
        const result = await backup({ writers: 'cross-host' });
        const after = await writer.committed();
        expect(warnedPaths(result.warnings).has(LIVE_DATABASE)).toBe(false);
        expect(result.skipped).toEqual(expect.arrayContaining([{ path: `${LIVE_DATABASE}-wal`, reason: expect.stringContaining('consistent snapshot') }]));
        const restored = await restore();
        expect(readdirSync(path.join(restored, 'memory')).filter((name) => name.startsWith('live.sqlite'))).toEqual(['live.sqlite']);
        const last = checkRestoredLiveDatabase(path.join(restored, LIVE_DATABASE), before, after);
        seen.push(`${before}..${last}..${after}`);
        // The idle sample databases went the same way: snapshots of private copies, intact.
        for (const idle of ['memory/agent-0.sqlite', 'memory/agent-1.sqlite']) {
          expect(readDatabase(path.join(restored, idle), 'SELECT count(*) FROM memories')).toEqual({ integrity: 'ok', values: [300] });
        }
      }
    } finally {
      await writer.stop();
    }
    console.log(`cross-host backups while the writer committed and checkpointed (before..restored..after): ${seen.join(', ')}`);
  });

  it('never trusts the -shm: a stale index (another host\'s view of the WAL) does not hide commits', async () => {
    mkdirSync(path.join(tenantDir, 'memory'), { recursive: true });
    const file = path.join(tenantDir, 'memory', 'open.sqlite');
    const db = openDatabase(file);
    try {
      db.exec('PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (n INTEGER PRIMARY KEY)');
      for (let n = 1; n <= 100; n++) db.prepare('INSERT INTO t VALUES (?)').run(n);
      const staleIndex = readFileSync(`${file}-shm`);
      for (let n = 101; n <= 500; n++) db.prepare('INSERT INTO t VALUES (?)').run(n);
      // The index now describes the WAL as it was after 100 commits, as a second host's copy of
      // the shared memory may; the writer still holds the database open, so readers trust it.
      writeFileSync(`${file}-shm`, staleIndex);

      const crossHost = await backupAndRestore({ writers: 'cross-host' });
      expect(crossHost.backup.warnings).toEqual([]);
      expect(readDatabase(path.join(crossHost.restored, 'memory', 'open.sqlite'), 'SELECT count(*) FROM t')).toEqual({ integrity: 'ok', values: [500] });
      // For the record: a live reader on this host follows the stale index.
      const sameHost = await backupAndRestore({ writers: 'same-host' });
      const stale = openDatabase(path.join(sameHost.restored, 'memory', 'open.sqlite'), { readOnly: true });
      try {
        console.log(`same-host snapshot through the stale -shm holds ${String(value(stale, 'SELECT count(*) FROM t'))} of 500 commits`);
      } finally {
        stale.close();
      }
    } finally {
      db.close();
    }
  });

  it('copies of a -wal only the frames SQLite can use: a sparse 1 GiB -wal (a hole after its frames) costs no 1 GiB of temporary space', async () => {
    mkdirSync(path.join(tenantDir, 'memory'), { recursive: true });
    const file = path.join(tenantDir, 'memory', 'holed.sqlite');
    const elsewhere = path.join(dir.path, 'writer.sqlite');
    const writer = openDatabase(elsewhere);
    let framesBytes: number;
    try {
      writer.exec('PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (n INTEGER PRIMARY KEY)');
      const insert = writer.prepare('INSERT INTO t VALUES (?)');
      for (let n = 1; n <= 100; n++) insert.run(n);
      // The WAL restarts (new salts) over its first frames: the old ones after them are stale.
      writer.exec('PRAGMA wal_checkpoint(PASSIVE)');
      for (let n = 101; n <= 105; n++) insert.run(n);
      copyFileSync(elsewhere, file);
      copyFileSync(`${elsewhere}-wal`, `${file}-wal`);
    } finally {
      writer.close();
    }
    const wal = readFileSync(`${file}-wal`);
    const pageSize = wal.readUInt32BE(8);
    const salts = wal.subarray(16, 24);
    for (framesBytes = 32; framesBytes + 24 + pageSize <= wal.length && wal.subarray(framesBytes + 8, framesBytes + 16).equals(salts); ) framesBytes += 24 + pageSize;
    expect(framesBytes).toBeLessThan(wal.length); // stale frames follow
    truncateSync(`${file}-wal`, 1024 ** 3);

    const temp = TempArea.underTmpdir(dir.path);
    const handle = await fs.open(file, 'r');
    try {
      const copy = await copyDatabasePrivately(handle, file, temp);
      expect(copy.stable).toBe(true);
      if (copy.stable) expect(lstatSync(`${copy.path}-wal`).size).toBe(framesBytes);
    } finally {
      await handle.close();
      await temp.dispose();
    }
    const { backup: result, restored } = await backupAndRestore({ writers: 'cross-host' });
    expect(result.warnings).toEqual([]);
    expect(readDatabase(path.join(restored, 'memory', 'holed.sqlite'), 'SELECT count(*) FROM t')).toEqual({ integrity: 'ok', values: [105] });
  });

  it('leaves a hole in the copy of a sparse 256 MiB hot -journal (a hole after its records) instead of writing its zeros', async () => {
    const head = (name: string) => {
      const fd = openSync(name, 'r');
      try {
        const bytes = Buffer.alloc(1024 * 1024);
        return bytes.subarray(0, readSync(fd, bytes, 0, bytes.length, 0));
      } finally {
        closeSync(fd);
      }
    };
    mkdirSync(path.join(tenantDir, 'memory'), { recursive: true });
    const file = path.join(tenantDir, 'memory', 'holed.sqlite');
    leaveHotJournal(file);
    truncateSync(`${file}-journal`, 256 * 1024 ** 2);

    const temp = TempArea.underTmpdir(dir.path);
    const handle = await fs.open(file, 'r');
    try {
      const copy = await copyDatabasePrivately(handle, file, temp);
      expect(copy.stable).toBe(true);
      if (copy.stable) {
        const journal = lstatSync(`${copy.path}-journal`);
        expect(journal.size).toBe(256 * 1024 ** 2);
        expect(journal.blocks * 512).toBeLessThan(8 * 1024 * 1024);
        expect(head(`${copy.path}-journal`).equals(head(`${file}-journal`))).toBe(true);
      }
    } finally {
      await handle.close();
      await temp.dispose();
    }
    const { backup: result, restored } = await backupAndRestore();
    expect(result.warnings).toEqual([]);
    expect(readDatabase(path.join(restored, 'memory', 'holed.sqlite'), 'SELECT count(*) FROM t WHERE n = 1', 'SELECT count(*) FROM t')).toEqual({ integrity: 'ok', values: [100, 100] });
  });

  it('fails the backup, storing nothing, when every copy changes under it; archives it raw with a warning on request', async () => {
    mkdirSync(path.join(tenantDir, 'memory'), { recursive: true });
    writeFileSync(path.join(tenantDir, 'notes.md'), 'kept\n');
    // Another process restarts the WAL round after round, however busy the machine. Between
    // copying the database and its WAL, every copy waits until that writer has completed
    // ROUNDS_PER_COPY more rounds: each copy has then demonstrably changed under it.
    const writer = await LiveWriter.start(path.join(tenantDir, 'memory', 'restless.sqlite'), {}, 'wal-restarter.ts');
    const copies: number[] = [];
    privateCopies.afterDatabaseCopy = async (attempt) => {
      const target = (await writer.committed()) + ROUNDS_PER_COPY;
      while ((await writer.committed()) < target) await sleep(1);
      copies.push(attempt);
    };
    try {
      // No time for copies beyond the 5 every database gets (10 s by default: the busy timeout).
      const failure = await backup({ writers: 'cross-host', busyTimeoutMs: 0 }).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(SqliteSnapshotError);
      expect((failure as Error).message).toMatch(
        /^no consistent copy of the SQLite database memory\/restless\.sqlite: it changed under each of 5 copies in [0-9.]+ s \(last: .*\); nothing was stored \(retry, or pass --sqlite-raw-fallback/,
      );
      expect(existsSync(archiveLocation().display)).toBe(false);
      expect(copies).toEqual([1, 2, 3, 4, 5]);

      const { backup: result, restored } = await backupAndRestore({ writers: 'cross-host', rawFallback: true, busyTimeoutMs: 0 });
      expect(result.warnings[0]).toEqual({
        path: 'memory/restless.sqlite',
        reason: expect.stringMatching(/^no consistent SQLite snapshot \(it changed under each of 5 copies in [0-9.]+ s .*archived raw with its -wal\/-shm\/-journal \(--sqlite-raw-fallback\)/),
      });
      // Read raw while the writer goes on, its files may also be "changed as we read it".
      expect(result.warnings.every((note) => note.path.startsWith('memory/restless.sqlite'))).toBe(true);
      expect(readFileSync(path.join(restored, 'notes.md'), 'utf8')).toBe('kept\n');
      expect(existsSync(path.join(restored, 'memory', 'restless.sqlite'))).toBe(true);
      expect(copies).toEqual([1, 2, 3, 4, 5, 1, 2, 3, 4, 5]);
    } finally {
      privateCopies.afterDatabaseCopy = undefined;
      await writer.stop();
    }
  });
});

describe('SQLite databases', () => {
  const corrupt = () => Buffer.concat([Buffer.from('SQLite format 3\0', 'latin1'), Buffer.alloc(8192, 0x5a)]);

  it('archives a corrupt database raw, with a warning, and restores it byte for byte', async () => {
    createSampleTenant(tenantDir, { sessions: 1, notes: 1 });
    writeFileSync(path.join(tenantDir, 'memory', 'broken.sqlite'), corrupt());
    const { backup, restored } = await backupAndRestore();
    expect(backup.warnings).toEqual([{ path: 'memory/broken.sqlite', reason: expect.stringMatching(/^SQLite database does not open \(SQLITE_NOTADB.*archived as is/) }]);
    expect(readFileSync(path.join(restored, 'memory', 'broken.sqlite')).equals(corrupt())).toBe(true);
  });

  /** A database of 20,000 rows whose 10th page (a leaf of its table) has its cell pointers overwritten: it opens, and quick_check finds the damage. */
  function damagedDatabase(file: string, journalMode: 'delete' | 'wal'): void {
    const db = openDatabase(file);
    db.exec(`PRAGMA journal_mode = ${journalMode}; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`);
    transaction(db, () => {
      const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
      for (let row = 0; row < 20_000; row++) insert.run(`value ${row}`.repeat(3));
    });
    db.close();
    const bytes = readFileSync(file);
    bytes.fill(0xff, 9 * 4096 + 8, 9 * 4096 + 40);
    writeFileSync(file, bytes);
  }
  const damaged = /^SQLite database is damaged \(quick_check: \*\*\* in database main \*\*\* .*page 10 cell .*\); archived as it is: restored, it is as damaged as the tenant's own$/;

  it('archives an idle database SQLite finds damaged as it is, with a warning (before: silently)', async () => {
    createSampleTenant(tenantDir, { sessions: 1, notes: 1 });
    const file = path.join(tenantDir, 'memory', 'damaged.sqlite');
    damagedDatabase(file, 'delete');
    const { backup, restored } = await backupAndRestore();
    expect(backup.warnings).toEqual([{ path: 'memory/damaged.sqlite', reason: expect.stringMatching(damaged) }]);
    expect(readFileSync(path.join(restored, 'memory', 'damaged.sqlite')).equals(readFileSync(file))).toBe(true);
  });

  it('archives the snapshot of a database in use that SQLite finds damaged, with a warning (before: silently)', async () => {
    createSampleTenant(tenantDir, { sessions: 1, notes: 1 });
    const file = path.join(tenantDir, 'memory', 'damaged.sqlite');
    damagedDatabase(file, 'wal');
    const db = openDatabase(file);
    try {
      db.exec('CREATE TABLE since (n INTEGER); INSERT INTO since VALUES (1)');
      expect(existsSync(`${file}-wal`)).toBe(true);
      const { backup, restored } = await backupAndRestore();
      expect(backup.warnings).toEqual([{ path: 'memory/damaged.sqlite', reason: expect.stringMatching(damaged) }]);
      // The snapshot, the commit in the -wal included: the tenant's database as it is.
      expect(readDatabase(path.join(restored, 'memory', 'damaged.sqlite'), 'SELECT n FROM since').values).toEqual([1]);
    } finally {
      db.close();
    }
  });

  it('does not go on into the quick_check (a read of the whole copy, on the main thread) once stopped during the snapshot (before: a Ctrl-C then waited for it: ~0.5 s for 400 MB, and for the archiving of the snapshot to begin)', async () => {
    // The tenant's one database (a sample tenant's idle one would be checked first).
    mkdirSync(path.join(tenantDir, 'memory'), { recursive: true });
    const file = path.join(tenantDir, 'memory', 'damaged.sqlite');
    damagedDatabase(file, 'wal');
    const db = openDatabase(file);
    try {
      db.exec('CREATE TABLE since (n INTEGER); INSERT INTO since VALUES (1)');
      // Stopped (SIGSTOP) as the snapshot's one step returns; the Ctrl-C came during that step.
      const cli = await pausedCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'acme.tar.zst')], 'backup:snapshot-taken,backup:quick-check');
      // To its main thread (tgkill, glibc 2.30), which takes it as it resumes: a signal to the
      // process could be taken by another of its threads, and reach the event loop any time later.
      execFileSync('python3', ['-c', 'import ctypes, sys; pid = int(sys.argv[1]); sys.exit(ctypes.CDLL(None).tgkill(pid, pid, 2))', String(cli.child.pid)]);
      cli.child.kill('SIGCONT');
      const stoppedAgain = async () => {
        for (;;) {
          await sleep(20);
          if (cli.child.exitCode === null && cli.child.signalCode === null && isStopped(cli.child.pid!)) return 'went on into the quick_check';
        }
      };
      const status = await Promise.race([cli.exited, stoppedAgain()]);
      if (typeof status === 'string') await cli.kill();
      expect(status).toBe(130);
      expect(cli.stderr()).toBe('openclaw: interrupted by SIGINT\n');
    } finally {
      db.close();
    }
  });

  it('archives a corrupt database in use raw with its companions, with a warning', async () => {
    mkdirSync(path.join(tenantDir, 'memory'), { recursive: true });
    writeFileSync(path.join(tenantDir, 'memory', 'broken.sqlite'), corrupt());
    writeFileSync(path.join(tenantDir, 'memory', 'broken.sqlite-wal'), 'not a WAL either');
    const { backup, restored } = await backupAndRestore();
    expect(backup.warnings).toEqual([{ path: 'memory/broken.sqlite', reason: expect.stringMatching(/^SQLite snapshot failed \(SQLITE_NOTADB.*archived raw/) }]);
    expect(backup.skipped).toEqual([]);
    // Opening a database that has a -wal creates its -shm (any SQLite reader does): not archived.
    const notShm = { mtimes: false, exclude: (p: string) => p.endsWith('-shm') };
    expect(describeTree(restored, notShm)).toEqual(describeTree(tenantDir, notShm));
    expect(Object.keys(describeTree(restored))).toEqual(['', 'memory', 'memory/broken.sqlite', 'memory/broken.sqlite-wal']);
  });

  it('archives an idle WAL database byte for byte without creating anything beside it', async () => {
    createSampleTenant(tenantDir, { sessions: 1, notes: 1, memoryRows: 2000 });
    const original = describeTree(tenantDir);
    const { backup, restored } = await backupAndRestore();
    expect(backup.warnings).toEqual([]);
    expect(describeTree(tenantDir)).toEqual(original); // no -wal/-shm left in the tenant
    expect(describeTree(restored)).toEqual(describeTree(tenantDir, { exclude: (p) => p === 'pty' }));
  });

  it('leaves nothing beside an idle WAL database that changed while it was copied (its writer came and went): snapshotted from a private copy, not opened in place', async () => {
    // A read-only connection to a WAL database without its -wal and -shm creates both, and may
    // not checkpoint, so it left them in the tenant (Node 20's better-sqlite3 and node:sqlite alike).
    mkdirSync(path.join(tenantDir, 'memory'), { recursive: true });
    const file = path.join(tenantDir, 'memory', 'idle.sqlite');
    const setup = openDatabase(file);
    setup.exec('PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER PRIMARY KEY)');
    setup.close();
    let commits = 0;
    // A writer that opens it, commits and closes (checkpointing into the file) during every read of the copy.
    spools.afterRead = () => {
      const writer = openDatabase(file);
      writer.prepare('INSERT INTO t VALUES (?)').run(++commits);
      writer.close();
    };
    try {
      const { backup: result, restored } = await backupAndRestore();
      expect(commits).toBeGreaterThan(1);
      expect(result.warnings).toEqual([]);
      expect(readdirSync(path.join(tenantDir, 'memory'))).toEqual(['idle.sqlite']);
      expect(readDatabase(path.join(restored, 'memory', 'idle.sqlite'), 'SELECT count(*) FROM t')).toEqual({ integrity: 'ok', values: [commits] });
    } finally {
      spools.afterRead = undefined;
    }
  });

  it('leaves nothing beside a WAL database whose last writer closed it between the look at its -wal and -shm and SQLite\'s open (which created them)', async () => {
    mkdirSync(path.join(tenantDir, 'memory'), { recursive: true });
    const file = path.join(tenantDir, 'memory', 'live.sqlite');
    const writer = openDatabase(file);
    let open = true;
    let closed: { content: Buffer; mtimeMs: number } | undefined;
    try {
      writer.exec('PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER PRIMARY KEY)');
      const insert = writer.prepare('INSERT INTO t VALUES (?)');
      for (let n = 1; n <= 100; n++) insert.run(n);
      // Its last writer closes it (SQLite checkpoints and removes the -wal and -shm) when the
      // backup has found both, and before SQLite opens it for the snapshot.
      snapshots.beforeOpen = () => {
        writer.close();
        open = false;
        expect(readdirSync(path.join(tenantDir, 'memory'))).toEqual(['live.sqlite']);
        closed = { content: readFileSync(file), mtimeMs: lstatSync(file).mtimeMs };
      };
      const { backup: result, restored } = await backupAndRestore();
      expect(closed).toBeDefined();
      expect(result.warnings).toEqual([]);
      expect(readdirSync(path.join(tenantDir, 'memory'))).toEqual(['live.sqlite']);
      // Closed again as its last connection would: nothing to checkpoint, the file untouched.
      expect(readFileSync(file).equals(closed!.content)).toBe(true);
      expect(lstatSync(file).mtimeMs).toBe(closed!.mtimeMs);
      expect(readDatabase(path.join(restored, 'memory', 'live.sqlite'), 'SELECT count(*) FROM t')).toEqual({ integrity: 'ok', values: [100] });
    } finally {
      snapshots.beforeOpen = undefined;
      if (open) writer.close();
    }
  });

  it('never rolls back a hot journal that appears beside a live WAL database before it is closed as its last connection (nor deletes its super-journal)', async () => {
    mkdirSync(path.join(tenantDir, 'memory'), { recursive: true });
    const file = path.join(tenantDir, 'memory', 'live.sqlite');
    const precious = path.join(dir.path, 'precious.txt');
    writeFileSync(precious, 'not the tenant\'s\n');
    const other = path.join(dir.path, 'other.sqlite');
    leaveHotJournal(other, precious);
    const writer = openDatabase(file);
    let open = true;
    let closed: Buffer | undefined;
    try {
      writer.exec('PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER PRIMARY KEY)');
      for (let n = 1; n <= 100; n++) writer.exec(`INSERT INTO t VALUES (${n})`);
      // Its last writer closes it once the backup has found its -wal and -shm (so the
      // snapshot's read-only connection creates them, and the backup closes the database again
      // read-write); the tenant drops a hot journal beside it before that.
      snapshots.beforeOpen = () => {
        writer.close();
        open = false;
        closed = readFileSync(file);
      };
      drivers.beforeReadWriteOpen = () => copyFileSync(`${other}-journal`, `${file}-journal`);
      const { backup: result, restored } = await backupAndRestore();
      expect(readFileSync(precious, 'utf8')).toBe('not the tenant\'s\n');
      expect(readFileSync(file).equals(closed!)).toBe(true); // not rolled back with another database's pages
      expect(readFileSync(`${file}-journal`).equals(readFileSync(`${other}-journal`))).toBe(true);
      expect(result.warnings).toEqual([]);
      expect(readDatabase(path.join(restored, 'memory', 'live.sqlite'), 'SELECT count(*) FROM t')).toEqual({ integrity: 'ok', values: [100] });
    } finally {
      snapshots.beforeOpen = undefined;
      drivers.beforeReadWriteOpen = undefined;
      if (open) writer.close();
    }
  });

  it('creates no -shm beside a WAL database a crash left with its -wal only: snapshotted from a private copy', async () => {
    mkdirSync(path.join(tenantDir, 'memory'), { recursive: true });
    const file = path.join(tenantDir, 'memory', 'crashed.sqlite');
    const elsewhere = path.join(dir.path, 'writer.sqlite');
    const writer = openDatabase(elsewhere);
    try {
      writer.exec('PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (n INTEGER PRIMARY KEY)');
      const insert = writer.prepare('INSERT INTO t VALUES (?)');
      for (let n = 1; n <= 100; n++) insert.run(n);
      // What a crash leaves: the database and its WAL, the commits only in the WAL; no -shm.
      copyFileSync(elsewhere, file);
      copyFileSync(`${elsewhere}-wal`, `${file}-wal`);
    } finally {
      writer.close();
    }
    const before = describeTree(tenantDir);
    const { backup: result, restored } = await backupAndRestore();
    expect(result.warnings).toEqual([]);
    expect(describeTree(tenantDir)).toEqual(before);
    expect(readdirSync(path.join(restored, 'memory'))).toEqual(['crashed.sqlite']);
    expect(readDatabase(path.join(restored, 'memory', 'crashed.sqlite'), 'SELECT count(*) FROM t')).toEqual({ integrity: 'ok', values: [100] });
  });

  it.each(['same-host', 'cross-host'] as const)('snapshots a database whose uncommitted-to-the-main-file transactions are only in its WAL (%s)', async (writers) => {
    mkdirSync(path.join(tenantDir, 'memory'), { recursive: true });
    const file = path.join(tenantDir, 'memory', 'open.sqlite');
    const db: SqliteConnection = openDatabase(file);
    try {
      db.exec('PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (n INTEGER PRIMARY KEY)');
      const insert = db.prepare('INSERT INTO t VALUES (?)');
      for (let n = 1; n <= 500; n++) insert.run(n);
      const walBefore = readFileSync(`${file}-wal`);
      const { backup, restored } = await backupAndRestore({ writers });
      expect(backup.warnings).toEqual([]);
      expect(backup.skipped.map((note) => note.path).sort()).toEqual(['memory/open.sqlite-shm', 'memory/open.sqlite-wal']);
      expect(readdirSync(path.join(restored, 'memory'))).toEqual(['open.sqlite']);
      expect(readDatabase(path.join(restored, 'memory', 'open.sqlite'), 'SELECT count(*) FROM t')).toEqual({ integrity: 'ok', values: [500] });
      // The live database was only read.
      expect(readFileSync(`${file}-wal`).equals(walBefore)).toBe(true);
      expect(value(db, 'PRAGMA journal_mode')).toBe('wal');
      expect(value(db, 'SELECT count(*) FROM t')).toBe(500);
    } finally {
      db.close();
    }
  });

  it('fails the backup on a database locked past the busy timeout; archives it raw with a warning on request', async () => {
    createSampleTenant(tenantDir, { sessions: 1, notes: 1 });
    const file = path.join(tenantDir, 'memory', 'locked.sqlite');
    const db = openDatabase(file); // rollback journal: a writer's exclusive lock keeps readers out
    try {
      db.exec('CREATE TABLE t (n INTEGER)');
      db.exec('BEGIN EXCLUSIVE; INSERT INTO t VALUES (1)');
      const failure = await backup({ busyTimeoutMs: 200 }).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(SqliteSnapshotError);
      expect((failure as Error).message).toMatch(/^no consistent copy of the SQLite database memory\/locked\.sqlite: still locked after the busy timeout \(SQLITE_BUSY/);
      expect(existsSync(archiveLocation().display)).toBe(false);

      const { backup: result, restored } = await backupAndRestore({ busyTimeoutMs: 200, rawFallback: true });
      expect(result.warnings).toEqual([{ path: 'memory/locked.sqlite', reason: expect.stringMatching(/^no consistent SQLite snapshot \(still locked/) }]);
      expect(readdirSync(path.join(restored, 'memory')).sort()).toEqual(['agent-0.sqlite', 'agent-1.sqlite', 'locked.sqlite', 'locked.sqlite-journal']);
      db.exec('COMMIT');
    } finally {
      db.close();
    }
  });

  it.each(['same-host', 'cross-host'] as const)('ends the wait for a locked database (%s) as soon as the backup is stopped (Ctrl-C, a function\'s deadline), not at the busy timeout', async (writers) => {
    // The wait for the lock went on to the busy timeout: a CLI interrupted while it waited
    // exited 10 s later (Node 20 and 24), a function past its deadline waited as long.
    createSampleTenant(tenantDir, { sessions: 1, notes: 1 });
    const file = path.join(tenantDir, 'memory', 'locked.sqlite');
    const db = openDatabase(file); // rollback journal: a writer's exclusive lock keeps readers out
    const stop = new AbortController();
    try {
      db.exec('CREATE TABLE t (n INTEGER)');
      db.exec('BEGIN EXCLUSIVE; INSERT INTO t VALUES (1)');
      if (writers === 'same-host') snapshots.beforeOpen = () => setTimeout(() => stop.abort(), 50);
      // Cross-host: the wait for a private copy that holds still; the writer commits after every copy of the database.
      else {
        privateCopies.afterDatabaseCopy = async (attempt) => {
          db.exec(`COMMIT; BEGIN EXCLUSIVE; INSERT INTO t VALUES (${attempt})`);
          if (attempt === 2) stop.abort();
        };
      }
      const failure = await backupTenant({ tenantsDir: base, tenant: 'acme', location: archiveLocation(), overwrite: true, sqlite: { writers, busyTimeoutMs: 600_000 }, signal: stop.signal }).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(AbortedError);
      expect(existsSync(archiveLocation().display)).toBe(false);
      db.exec('COMMIT');
    } finally {
      snapshots.beforeOpen = undefined;
      privateCopies.afterDatabaseCopy = undefined;
      db.close();
    }
  });

  it.each([
    ['an idle database', 'delete'],
    ['a database with a -wal', 'wal'],
  ] as const)('does not begin the integrity_check of a private copy (a read of the whole copy, on the main thread: 18.8 s for 400 MB) once the backup was stopped (cross-host, %s)', async (_, journalMode) => {
    // Before: a Ctrl-C or a function's deadline during the copy waited for the check too.
    mkdirSync(path.join(tenantDir, 'memory'), { recursive: true }); // the database alone
    const file = path.join(tenantDir, 'memory', 'copied.sqlite');
    const db = openDatabase(file);
    const stop = new AbortController();
    const checkedOnceStopped: string[] = [];
    try {
      db.exec(`PRAGMA journal_mode = ${journalMode}; PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1)`);
      if (journalMode === 'delete') db.close(); // idle: its copy is checked and archived
      else expect(existsSync(`${file}-wal`)).toBe(true); // its copy is snapshotted, the snapshot checked
      // Stopped as the last step before the check ends: the copy itself (idle), or the snapshot of it.
      if (journalMode === 'delete') privateCopies.afterDatabaseCopy = async () => stop.abort();
      else snapshots.afterSnapshot = () => stop.abort();
      snapshots.beforeCheck = (checked) => {
        if (stop.signal.aborted) checkedOnceStopped.push(path.basename(checked));
      };
      const failure = await backupTenant({ tenantsDir: base, tenant: 'acme', location: archiveLocation(), overwrite: true, sqlite: { writers: 'cross-host' }, signal: stop.signal }).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(AbortedError);
      expect(checkedOnceStopped).toEqual([]);
      expect(existsSync(archiveLocation().display)).toBe(false);
    } finally {
      privateCopies.afterDatabaseCopy = undefined;
      snapshots.afterSnapshot = undefined;
      snapshots.beforeCheck = undefined;
      if (journalMode === 'wal') db.close();
    }
  });

  it('archives the snapshot of a database in use that is replaced by rename while it is taken, as any file replaced atomically', async () => {
    createSampleTenant(tenantDir, { sessions: 1, notes: 1 });
    const file = path.join(tenantDir, 'memory', 'swapped.sqlite');
    const db = openDatabase(file);
    const replacement = path.join(dir.path, 'swapped.sqlite.new'); // on the same file system
    const next = openDatabase(replacement);
    next.exec('CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (-1)');
    next.close();
    snapshots.afterSnapshot = () => {
      if (existsSync(replacement)) renameSync(replacement, file); // the gateway's compaction: a new file renamed over it
    };
    try {
      db.exec('PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER)');
      for (let n = 1; n <= 20; n++) db.exec(`INSERT INTO t VALUES (${n})`);
      // Failed: 'no consistent copy of the SQLite database memory/swapped.sqlite: the file was replaced while it was copied'.
      const { backup: result, restored } = await backupAndRestore();
      expect(result.warnings).toEqual([]);
      // The version snapshotted.
      expect(readDatabase(path.join(restored, 'memory', 'swapped.sqlite'), 'SELECT count(*) || \' \' || sum(n) FROM t')).toEqual({ integrity: 'ok', values: ['20 210'] });
    } finally {
      snapshots.afterSnapshot = undefined;
      db.close();
    }
  });

  it('archives the new version of an idle database replaced by rename while it is copied, never the old file with the new one\'s -wal', async () => {
    mkdirSync(path.join(tenantDir, 'memory'), { recursive: true }); // the database alone
    const file = path.join(tenantDir, 'memory', 'swapped.sqlite');
    const old = openDatabase(file);
    old.exec('CREATE TABLE t (n INTEGER)');
    for (let n = 1; n <= 20; n++) old.exec(`INSERT INTO t VALUES (${n})`);
    old.close();
    const replacement = path.join(dir.path, 'swapped.sqlite.new'); // on the same file system
    const built = openDatabase(replacement);
    built.exec('CREATE TABLE t (n INTEGER); CREATE TABLE u (s TEXT); INSERT INTO t VALUES (-1)');
    built.close();
    let next: SqliteConnection | undefined;
    // The gateway renames a new file over the database, and its agent commits to it (WAL mode,
    // its -wal beside it), while the backup copies the old one it opened.
    spools.afterRead = () => {
      if (!existsSync(replacement)) return;
      renameSync(replacement, file);
      next = openDatabase(file);
      next.exec('PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0');
      for (let n = 0; n < 50; n++) next.exec(`INSERT INTO u VALUES ('${'x'.repeat(500)}')`);
    };
    try {
      // Was: archived raw "SQLite snapshot failed (the path no longer names the file that was
      // opened)", the old file beside the new one's -wal: restored as neither.
      const { backup: result, restored } = await backupAndRestore();
      expect(result.warnings).toEqual([]);
      expect(existsSync(path.join(restored, 'memory', 'swapped.sqlite-wal'))).toBe(false);
      expect(readDatabase(path.join(restored, 'memory', 'swapped.sqlite'), 'SELECT count(*) || \' \' || sum(n) FROM t', 'SELECT count(*) FROM u')).toEqual({ integrity: 'ok', values: ['1 -1', 50] });
    } finally {
      spools.afterRead = undefined;
      next?.close();
    }
  });

  it('archives the new version of a database replaced by rename while its private copy is made (cross-host), instead of failing the backup', async () => {
    mkdirSync(path.join(tenantDir, 'memory'), { recursive: true }); // the database alone
    const file = path.join(tenantDir, 'memory', 'swapped.sqlite');
    const old = openDatabase(file);
    old.exec('PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER)');
    for (let n = 1; n <= 20; n++) old.exec(`INSERT INTO t VALUES (${n})`);
    old.close();
    const replacement = path.join(dir.path, 'swapped.sqlite.new');
    const built = openDatabase(replacement);
    built.exec('CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (-1)');
    built.close();
    privateCopies.afterDatabaseCopy = async () => {
      if (existsSync(replacement)) renameSync(replacement, file); // the gateway's compaction
    };
    try {
      // Was: 'no consistent copy of the SQLite database memory/swapped.sqlite: the file was replaced while it was copied'.
      const { backup: result, restored } = await backupAndRestore({ writers: 'cross-host' });
      expect(result.warnings).toEqual([]);
      expect(readDatabase(path.join(restored, 'memory', 'swapped.sqlite'), 'SELECT count(*) || \' \' || sum(n) FROM t')).toEqual({ integrity: 'ok', values: ['1 -1'] });
    } finally {
      privateCopies.afterDatabaseCopy = undefined;
    }
  });

  it('snapshots a database a writer left mid-transaction (kill -9: a hot journal) from a private copy, rolled back to its last commit', async () => {
    createSampleTenant(tenantDir, { sessions: 1, notes: 1 });
    const crashed = path.join(tenantDir, 'memory', 'crashed.sqlite');
    leaveHotJournal(crashed);
    const live = describeTree(tenantDir);
    const { backup: result, restored } = await backupAndRestore();
    // It was archived raw with its journal, with the warning that it "may not be consistent"
    // (SQLITE_READONLY_ROLLBACK: the snapshot's read-only connection may not roll it back).
    expect(result.warnings).toEqual([]);
    expect(result.skipped).toContainEqual({ path: 'memory/crashed.sqlite-journal', reason: expect.stringMatching(/^SQLite companion of memory\/crashed\.sqlite/) });
    expect(describeTree(tenantDir)).toEqual(live); // the live files are left to the next writer to roll back
    expect(readdirSync(path.join(restored, 'memory')).sort()).toEqual(['agent-0.sqlite', 'agent-1.sqlite', 'crashed.sqlite']);
    expect(readDatabase(path.join(restored, 'memory', 'crashed.sqlite'), 'SELECT count(*) || \' \' || sum(n) FROM t')).toEqual({ integrity: 'ok', values: ['100 100'] });
  });

  it.each([
    ['outside the tenant, same host', 'outside', 'same-host'],
    ['outside the tenant, cross-host', 'outside', 'cross-host'],
    ['in the tenant, same host', 'inside', 'same-host'],
    ['outside the tenant, cross-host with locks across hosts', 'outside', 'locked'],
  ] as const)('rolls back a hot journal naming a super-journal (%s) in its private copy without deleting that file', async (_label, where, writers) => {
    createSampleTenant(tenantDir, { sessions: 1, notes: 1 });
    const crashed = path.join(tenantDir, 'memory', 'crashed.sqlite');
    const superJournal = where === 'outside' ? path.join(dir.path, 'precious.txt') : `${crashed}-mj0123456789`;
    writeFileSync(superJournal, where === 'outside' ? 'not the tenant\'s\n' : `${tenantDir}/memory/gone.sqlite-journal\0`);
    leaveHotJournal(crashed, superJournal);
    const live = describeTree(tenantDir);
    const kept = readFileSync(superJournal);

    const { backup: result, restored } = await backupAndRestore(writers === 'locked' ? { writers: 'cross-host', locksAcrossHosts: true } : { writers });
    expect(readFileSync(superJournal)).toEqual(kept); // the copy's rollback deleted it
    expect(describeTree(tenantDir)).toEqual(live);
    expect(result.warnings).toEqual([]);
    // Rolled back.
    expect(readDatabase(path.join(restored, 'memory', 'crashed.sqlite'), 'SELECT count(*) || \' \' || sum(n) FROM t')).toEqual({ integrity: 'ok', values: ['100 100'] });
  });

  it.each(['-shm', '-wal'] as const)('never writes through a %s hard-linked to a file outside the tenant (another tenant\'s database): snapshotted from a private copy', async (suffix) => {
    // A reader's SQLite truncates the -shm and rebuilds the WAL index in it, through any link:
    // another tenant's database linked there came out as 32 KiB of WAL index (both Nodes).
    mkdirSync(path.join(tenantDir, 'memory'), { recursive: true });
    const file = path.join(tenantDir, 'memory', 'linked.sqlite');
    const setup = openDatabase(file);
    setup.exec('PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER PRIMARY KEY); INSERT INTO t VALUES (7)');
    setup.close();
    const victim = path.join(dir.path, 'other-tenant.sqlite');
    const other = openDatabase(victim);
    other.exec('CREATE TABLE t (x); INSERT INTO t VALUES (randomblob(50000))');
    other.close();
    const kept = readFileSync(victim);
    const companions = { '-wal': `${file}-wal`, '-shm': `${file}-shm` };
    for (const [name, companion] of Object.entries(companions)) {
      if (name === suffix) linkSync(victim, companion);
      else writeFileSync(companion, '');
    }
    const { backup: result, restored } = await backupAndRestore();
    expect(readFileSync(victim).equals(kept)).toBe(true);
    expect(result.warnings).toEqual([]);
    expect(readDatabase(path.join(restored, 'memory', 'linked.sqlite'), 'SELECT n FROM t')).toEqual({ integrity: 'ok', values: [7] });
  });

  it('never writes through a hard-linked -shm beside a rollback-mode database whose header the tenant switches to WAL before SQLite opens it', async () => {
    mkdirSync(path.join(tenantDir, 'memory'), { recursive: true });
    const file = path.join(tenantDir, 'memory', 'toggled.sqlite');
    const setup = openDatabase(file);
    setup.exec('PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER PRIMARY KEY); INSERT INTO t VALUES (7)');
    setup.close();
    const victim = path.join(dir.path, 'other-tenant.sqlite');
    writeFileSync(victim, Buffer.alloc(50_000, 0x61));
    const kept = readFileSync(victim);
    // Read and write versions 1 (rollback journal) when the backup looks, 2 (WAL) when SQLite does.
    const setMode = (version: number) => {
      const fd = openSync(file, 'r+');
      try {
        writeSync(fd, Buffer.from([version, version]), 0, 2, 18);
      } finally {
        closeSync(fd);
      }
    };
    setMode(1);
    writeFileSync(`${file}-wal`, '');
    linkSync(victim, `${file}-shm`);
    snapshots.beforeOpen = () => setMode(2);
    try {
      await backupAndRestore();
    } finally {
      snapshots.beforeOpen = undefined;
    }
    expect(readFileSync(victim).equals(kept)).toBe(true);
  });

  it('never closes a database hard-linked to another file as its last connection (which would checkpoint a WAL the tenant wrote into that file): snapshotted from a private copy', async () => {
    mkdirSync(path.join(tenantDir, 'memory'), { recursive: true });
    const file = path.join(tenantDir, 'memory', 'linked.sqlite');
    const victim = path.join(dir.path, 'other-tenant.sqlite');
    const setup = openDatabase(victim);
    setup.exec('PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER PRIMARY KEY); INSERT INTO t VALUES (7)');
    setup.close();
    // The tenant's WAL: frames of a commit to a copy of that database.
    const forged = path.join(dir.path, 'forged.sqlite');
    copyFileSync(victim, forged);
    const forger = openDatabase(forged);
    let wal: Buffer;
    try {
      forger.exec('PRAGMA wal_autocheckpoint = 0; INSERT INTO t VALUES (666)');
      wal = readFileSync(`${forged}-wal`);
    } finally {
      forger.close();
    }
    const kept = readFileSync(victim);
    linkSync(victim, file);
    writeFileSync(`${file}-wal`, '');
    writeFileSync(`${file}-shm`, '');
    // The -wal and -shm gone as SQLite opens it (its open creates them); the forged WAL written before the last-connection close.
    snapshots.beforeOpen = () => {
      rmSync(`${file}-wal`, { force: true });
      rmSync(`${file}-shm`, { force: true });
    };
    drivers.beforeReadWriteOpen = () => {
      writeFileSync(`${file}-wal`, wal);
      rmSync(`${file}-shm`, { force: true });
    };
    try {
      await backupAndRestore();
    } finally {
      snapshots.beforeOpen = undefined;
      drivers.beforeReadWriteOpen = undefined;
    }
    expect(readFileSync(victim).equals(kept)).toBe(true);
  });

  it('never opens a -journal that is a FIFO (SQLite would wait for a writer forever): snapshotted from a private copy', async () => {
    createSampleTenant(tenantDir, { sessions: 1, notes: 1 });
    const file = path.join(tenantDir, 'memory', 'fifo.sqlite');
    const setup = openDatabase(file);
    setup.exec('CREATE TABLE t (n INTEGER PRIMARY KEY); INSERT INTO t VALUES (7)');
    setup.close();
    execFileSync('mkfifo', [`${file}-journal`]);
    // Says "opened" if a reader (SQLite) still waits on the FIFO after 10 s, which also lets that reader go. Not
    // sooner: the backup's own look at it (a non-blocking open, then fstat) holds it open for a moment, and a
    // writer's open in that moment succeeds too (under load it did).
    const watcher = spawn(process.execPath, ['-e', `const fs = require('fs'); setTimeout(() => { const t = setInterval(() => { try { fs.closeSync(fs.openSync(process.argv[1], fs.constants.O_WRONLY | fs.constants.O_NONBLOCK)); process.stdout.write('opened'); clearInterval(t); } catch {} }, 20); setTimeout(() => clearInterval(t), 20000); }, 10000);`, `${file}-journal`]);
    let said = '';
    watcher.stdout.on('data', (chunk: Buffer) => (said += chunk.toString()));
    try {
      const { backup: result } = await backupAndRestore();
      expect(result.skipped).toContainEqual({ path: 'memory/fifo.sqlite-journal', reason: expect.stringMatching(/FIFO/) });
    } finally {
      watcher.kill();
      await once(watcher, 'exit');
    }
    expect(said).toBe('');
  });

  it('snapshots a database in use in a directory whose name is not UTF-8 (SQLite given its bytes, not U+FFFD)', async () => {
    createSampleTenant(tenantDir, { sessions: 1, notes: 1 });
    // `caf\xe9`, a Latin-1 name: Node would pass it to SQLite as `caf\ufffd`, a file that does not exist.
    const rawDir = Buffer.concat([Buffer.from(`${tenantDir}/caf`), Buffer.of(0xe9)]);
    mkdirSync(rawDir);
    const dirFd = openSync(rawDir, 'r');
    // The writer reaches it through its directory's descriptor (SQLite resolves the link to the bytes).
    const db = openDatabase(`/proc/self/fd/${dirFd}/memory.sqlite`);
    try {
      db.exec('PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER)');
      for (let n = 1; n <= 50; n++) db.exec(`INSERT INTO t VALUES (${n})`);
      const { backup: result, restored } = await backupAndRestore();
      expect(result.warnings).toEqual([]);
      expect(result.skipped.map((s) => s.path).filter((p) => p !== 'pty').sort()).toEqual(['caf\udce9/memory.sqlite-shm', 'caf\udce9/memory.sqlite-wal']);
      const copy = path.join(dir.path, 'restored-copy.sqlite');
      writeFileSync(copy, readFileSync(Buffer.concat([Buffer.from(`${restored}/caf`), Buffer.of(0xe9), Buffer.from('/memory.sqlite')])));
      expect(readDatabase(copy, 'SELECT count(*) FROM t')).toEqual({ integrity: 'ok', values: [50] });
    } finally {
      db.close();
      closeSync(dirFd);
    }
  });

  it('archives a companion-named file whose base is not a file', async () => {
    mkdirSync(path.join(tenantDir, 'odd', 'x.sqlite'), { recursive: true });
    writeFileSync(path.join(tenantDir, 'odd', 'x.sqlite-wal'), 'kept\n');
    const { backup, restored } = await backupAndRestore();
    expect(backup.warnings).toEqual([]);
    expect(readFileSync(path.join(restored, 'odd', 'x.sqlite-wal'), 'utf8')).toBe('kept\n');
  });
});

describe('files that change or vanish while read', () => {
  it.each([
    ['synchronous', SYNC_ACCESS],
    ['promise', PARALLEL_ACCESS],
  ])('warns about a file and a directory that vanish between the listing and their reads, and still succeeds (%s calls)', async (_label, access) => {
    const notesDir = path.join(tenantDir, 'notes');
    const subDir = path.join(notesDir, 'sub');
    mkdirSync(subDir, { recursive: true });
    for (const name of ['a.txt', 'b.txt', 'c.txt', 'sub/d.txt']) writeFileSync(path.join(notesDir, name), `${name}\n`);
    // notes/ is listed (and sub/ stat'ed as a directory), then b.txt goes before it is read
    // and sub/ before it is listed: the files are read ahead, so the listing is the last
    // moment the backup is sure to pass before reading.
    const vanishing: FileAccess = {
      ...access,
      openDirectory: (dir) => {
        if (dir === realpathSync(subDir)) rmSync(subDir, { recursive: true });
        return access.openDirectory(dir);
      },
      readdir: (dir) => {
        const listed = access.readdir(dir);
        const afterListing = <T>(entries: T): T => {
          if (listedDirectory(dir) === realpathSync(notesDir)) rmSync(path.join(notesDir, 'b.txt'));
          return entries;
        };
        return listed instanceof Promise ? listed.then(afterListing) : afterListing(listed);
      },
    };
    const archive = createTenantArchive({ tenantDir, tenant: 'acme', createdAt: new Date(), fileAccess: vanishing });
    for await (const chunk of archive.chunks) void chunk;
    const summary = await archive.summary;
    if (summary.suspended) throw new Error('the archive was not finished');
    const { manifest } = summary;
    // notes/ holds a.txt, c.txt and the (now empty) sub/ directory.
    expect([...manifest.directories].map(({ path, entries }) => ({ path, entries }))).toEqual([
      { path: '', entries: 1 },
      { path: 'notes', entries: 3 },
      { path: 'notes/sub', entries: 0 },
    ]);
    expect(manifest.skipped).toEqual([
      { path: 'notes/b.txt', reason: 'vanished during backup' },
      { path: 'notes/sub', reason: 'directory vanished during backup' },
    ]);
    expect(manifest.warnings).toEqual([
      { path: 'notes/b.txt', reason: 'vanished during backup; not archived' },
      { path: 'notes/sub', reason: 'directory vanished during backup; its contents are not archived' },
    ]);
  });

  it.for([
    ['synchronous', SYNC_ACCESS],
    ['promise', PARALLEL_ACCESS],
  ] as const)('fails, storing nothing, when a directory is mounted over after it was listed (%s calls)', async ([, access], context) => {
    // The walk lists ahead of the reads: a bind mount made over early/ once it was listed had
    // its files read through the mount, the operator's f.txt archived as the tenant's early/f.txt.
    const shared = path.join(dir.path, 'shared');
    mkdirSync(shared);
    writeFileSync(path.join(shared, 'f.txt'), 'the operator\'s\n');
    mkdirSync(path.join(tenantDir, 'early'), { recursive: true });
    writeFileSync(path.join(tenantDir, 'early', 'f.txt'), 'mine\n');
    const target = realpathSync(path.join(tenantDir, 'early'));
    let mounted = false;
    const mounting: FileAccess = {
      ...access,
      readdir: (listed) => {
        const entries = access.readdir(listed);
        const afterListing = <T>(names: T): T => {
          if (!mounted && listedDirectory(listed) === target) mounted = spawnSync('mount', ['--bind', shared, target], { stdio: 'ignore' }).status === 0;
          return names;
        };
        return entries instanceof Promise ? entries.then(afterListing) : afterListing(entries);
      },
    };
    try {
      const archive = createTenantArchive({ tenantDir, tenant: 'acme', createdAt: new Date(), fileAccess: mounting });
      const failure = await (async () => {
        for await (const chunk of archive.chunks) void chunk;
        await archive.summary;
      })().then(() => undefined, (error: unknown) => error);
      if (!mounted) return context.skip('mounting needs root');
      expect(failure).toBeInstanceOf(FileSystemError);
      expect((failure as Error).message).toBe(
        'something was mounted inside tenant "acme" during its backup, at early: what was read below it may be what is mounted there, not the tenant\'s own files; nothing was stored (run the backup again: a mount point is archived as an empty directory)',
      );
      // Run again with the mount in place, the walk finds it in the mount table: left out, not a failure.
      const again = createTenantArchive({ tenantDir, tenant: 'acme', createdAt: new Date(), fileAccess: access });
      for await (const chunk of again.chunks) void chunk;
      const summary = await again.summary;
      if (summary.suspended) throw new Error('the archive was not finished');
      expect(summary.manifest.skipped).toEqual([{ path: 'early', reason: 'mount point: archived as an empty directory, not what is mounted on it' }]);
    } finally {
      if (mounted) spawnSync('umount', [target], { stdio: 'ignore' });
    }
  });

  it.each([
    ['synchronous', SYNC_ACCESS],
    ['promise', PARALLEL_ACCESS],
  ])('archives nothing from outside the tenant when its agent swaps a directory for a symlink during the walk (%s calls)', async (_label, access) => {
    // The backup runs as root; the tenant's agent swaps `early/` for a symlink to a directory
    // outside once it is lstat'ed (before it is listed), and `late/` once `late/` itself is
    // listed (before its files are read). The outside directory holds files by the same names.
    const outside = path.join(dir.path, 'outside');
    mkdirSync(outside);
    for (const name of ['early', 'late']) {
      mkdirSync(path.join(tenantDir, name), { recursive: true });
      writeFileSync(path.join(tenantDir, name, 'f.txt'), 'mine\n');
    }
    writeFileSync(path.join(outside, 'f.txt'), 'outside secret\n');
    writeFileSync(path.join(tenantDir, 'keep.txt'), 'kept\n');
    const swap = (name: string) => {
      renameSync(path.join(tenantDir, name), path.join(dir.path, `${name}.moved`));
      symlinkSync(outside, path.join(tenantDir, name));
    };
    const swapping: FileAccess = {
      ...access,
      lstatEach: (paths) => {
        const statted = access.lstatEach(paths);
        const afterStat = <T>(stats: T): T => {
          if (paths.some((at) => at.endsWith('/early'))) swap('early');
          return stats;
        };
        return statted instanceof Promise ? statted.then(afterStat) : afterStat(statted);
      },
      readdir: (at) => {
        const listed = access.readdir(at);
        const afterListing = <T>(entries: T): T => {
          if (listedDirectory(at) === realpathSync(path.join(tenantDir, 'late'))) swap('late');
          return entries;
        };
        return listed instanceof Promise ? listed.then(afterListing) : afterListing(listed);
      },
    };
    const archive = createTenantArchive({ tenantDir, tenant: 'acme', createdAt: new Date(), fileAccess: swapping });
    const chunks: Buffer[] = [];
    for await (const chunk of archive.chunks) chunks.push(chunk);
    const summary = await archive.summary;
    if (summary.suspended) throw new Error('the archive was not finished');
    expect(summary.manifest.totals.files).toBe(1);
    expect(summary.manifest.skipped).toEqual([
      { path: 'early', reason: 'directory vanished during backup' },
      { path: 'late/f.txt', reason: 'vanished during backup' },
    ]);
    const stored = execFileSync('zstd', ['-dc'], { input: Buffer.concat(chunks) });
    expect(stored.includes('outside secret')).toBe(false);
  });

  it('re-reads a small file rewritten during the read and keeps the version that held still', async () => {
    const file = path.join(dir.path, 'state.json');
    writeFileSync(file, '{"version":1}');
    const handle = await fs.open(file, 'r');
    try {
      const read = await readWhole(handle, await handle.stat(), 1 << 20, undefined, {
        afterRead: async (attempt) => {
          if (attempt === 1) await fs.writeFile(file, '{"version":2,"longer":true}'); // truncated and rewritten
        },
      });
      expect(read).toMatchObject({ stable: true, reads: 2 });
      expect(read?.content.toString()).toBe('{"version":2,"longer":true}');
    } finally {
      await handle.close();
    }
  });

  it('re-reads a small file rewritten during the read whose writer set the mtime back (utimes): its ctime moved', async () => {
    const file = path.join(dir.path, 'state.json');
    writeFileSync(file, '{"version":1}');
    const mtime = new Date(Math.floor(Date.now() / 1000 - 3600) * 1000); // whole seconds: mtimeMs gives them back exactly
    await fs.utimes(file, mtime, mtime);
    const handle = await fs.open(file, 'r');
    try {
      const read = await readWhole(handle, await handle.stat(), 1 << 20, undefined, {
        afterRead: async (attempt) => {
          if (attempt > 1) return;
          await fs.writeFile(file, '{"version":2}'); // the same size
          await fs.utimes(file, mtime, mtime);
        },
      });
      expect(read).toMatchObject({ stable: true, reads: 2 });
      expect(read?.content.toString()).toBe('{"version":2}');
    } finally {
      await handle.close();
    }
  });

  it.each([
    ['synchronous', SYNC_ACCESS],
    ['promise', PARALLEL_ACCESS],
  ])('reads a file replaced after the listing as it is now, though it trusted the listing\'s stat (%s calls)', async (_label, access) => {
    const file = path.join(dir.path, 'state.json');
    writeFileSync(file, '{"version":1}');
    const listed = lstatSync(file);
    rmSync(file);
    writeFileSync(file, '{"version":2,"and":"longer"}');
    const scratch = new ReadScratch(1024);
    const read = await readWholeAt(access, file, 1 << 20, { listed, scratch });
    expect(read).toMatchObject({ stable: true, reads: 2 });
    expect((read as { content: Buffer }).content.toString()).toBe('{"version":2,"and":"longer"}');
    expect((read as { content: Buffer }).content.buffer).toBe(scratch.take(1)!.buffer);
  });

  it('makes the whole-read scratch only as large as the files read so far need, up to its limit', async () => {
    const small = path.join(dir.path, 'small');
    const large = path.join(dir.path, 'large');
    writeFileSync(small, 'x'.repeat(100));
    writeFileSync(large, 'y'.repeat(100 * 1024));
    const scratch = new ReadScratch(1 << 20);
    expect(scratch.size).toBe(0);
    await readWholeAt(SYNC_ACCESS, small, 1 << 20, { scratch });
    expect(scratch.size).toBe(64 * 1024);
    const read = await readWholeAt(SYNC_ACCESS, large, 1 << 20, { scratch });
    expect(scratch.size).toBe(128 * 1024);
    expect((read as { content: Buffer }).content.toString()).toBe('y'.repeat(100 * 1024));
    await readWholeAt(SYNC_ACCESS, small, 1 << 20, { scratch });
    expect(scratch.size).toBe(128 * 1024);
    expect(new ReadScratch(1 << 20).take((1 << 20) + 1)).toBeUndefined();
  });

  it.each([
    ['a directory', (file: string) => mkdirSync(file), SYNC_ACCESS],
    ['a FIFO', (file: string) => execFileSync('mkfifo', [file]), SYNC_ACCESS],
    ['a directory', (file: string) => mkdirSync(file), PARALLEL_ACCESS],
    ['a FIFO', (file: string) => execFileSync('mkfifo', [file]), PARALLEL_ACCESS],
  ])('reports a file replaced by %s after the listing as vanished, without blocking', async (_label, replace, access) => {
    const file = path.join(dir.path, 'was-a-file');
    writeFileSync(file, 'content');
    const listed = lstatSync(file);
    rmSync(file);
    replace(file);
    expect(await readWholeAt(access, file, 1 << 20, { listed })).toBe('vanished');
  });

  it('gives up after a bounded number of re-reads and says the result is unstable', async () => {
    const file = path.join(dir.path, 'busy.log');
    writeFileSync(file, 'line 0\n');
    const handle = await fs.open(file, 'r');
    try {
      let appended = 0;
      const read = await readWhole(handle, await handle.stat(), 1 << 20, undefined, {
        afterRead: async () => fs.appendFile(file, `line ${++appended}\n`),
      });
      expect(read).toMatchObject({ stable: false, reads: REREAD_ATTEMPTS + 1 });
    } finally {
      await handle.close();
    }
  });

  it('re-copies a large file that changes while it is spooled', async () => {
    const file = path.join(dir.path, 'big.bin');
    writeFileSync(file, Buffer.alloc(3 * 1024 * 1024 + 5, 1));
    const handle = await fs.open(file, 'r');
    const spool = path.join(dir.path, 'spool');
    try {
      const copy = await spoolFile(handle, await handle.stat(), spool, {
        afterRead: async (attempt) => {
          if (attempt === 1) await fs.writeFile(file, Buffer.alloc(2 * 1024 * 1024, 2));
        },
      });
      expect(copy).toMatchObject({ stable: true, reads: 2, size: 2 * 1024 * 1024 });
      expect(readFileSync(spool).equals(Buffer.alloc(2 * 1024 * 1024, 2))).toBe(true);
    } finally {
      await handle.close();
    }
  });

  it('leaves the holes of a sparse file holes in its spool copy (a 256 MiB database of a few KiB on disk fills no temporary directory)', async () => {
    const file = path.join(dir.path, 'holed.bin');
    const size = 256 * 1024 * 1024;
    writeFileSync(file, Buffer.alloc(4096, 1));
    truncateSync(file, size);
    const fd = openSync(file, 'r+');
    try {
      writeSync(fd, Buffer.alloc(5, 2), 0, 5, size - 5);
    } finally {
      closeSync(fd);
    }
    const handle = await fs.open(file, 'r');
    const spool = path.join(dir.path, 'spool');
    try {
      const copy = await spoolFile(handle, await handle.stat(), spool);
      expect(copy).toMatchObject({ stable: true, size });
      const spooled = lstatSync(spool);
      expect(spooled.size).toBe(size);
      expect(spooled.blocks * 512).toBeLessThan(8 * 1024 * 1024);
      const ends = Buffer.alloc(8192);
      const out = openSync(spool, 'r');
      try {
        readSync(out, ends, 0, 4096, 0);
        readSync(out, ends, 4096, 4096, size - 4096);
      } finally {
        closeSync(out);
      }
      expect(ends.equals(Buffer.concat([Buffer.alloc(4096, 1), Buffer.alloc(4091), Buffer.alloc(5, 2)]))).toBe(true);
    } finally {
      await handle.close();
    }
  });
});

describe("the cross-host path where SQLite's locks reach the writers (EFS's NFSv4: locksAcrossHosts, as the functions run)", () => {
  /** A database in rollback-journal mode, and a commit (one more row) after every private copy of it. */
  function committingDuringEveryCopy(file: string): { copies: () => number } {
    mkdirSync(path.dirname(file), { recursive: true });
    const writer = openDatabase(file);
    writer.exec("PRAGMA journal_mode = DELETE; CREATE TABLE t (n INTEGER, pad BLOB); INSERT INTO t VALUES (1, randomblob(5000))");
    writer.close();
    let copies = 0;
    privateCopies.afterDatabaseCopy = async () => {
      copies++;
      const db = openDatabase(file);
      try {
        db.exec('INSERT INTO t VALUES (1, randomblob(5000))');
      } finally {
        db.close();
      }
    };
    return { copies: () => copies };
  }

  it('snapshots a database in rollback-journal mode in place under the read lock, where a private copy changes under every attempt', async () => {
    const file = path.join(tenantDir, 'memory', 'journal.sqlite');
    const writes = committingDuringEveryCopy(file);
    try {
      const failure = await backup({ writers: 'cross-host', busyTimeoutMs: 0 }).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(SqliteSnapshotError);
      expect((failure as Error).message).toMatch(/^no consistent copy of the SQLite database memory\/journal\.sqlite: it changed under each of 5 copies/);
      expect(writes.copies()).toBe(5);

      const { backup: result, restored } = await backupAndRestore({ writers: 'cross-host', locksAcrossHosts: true, busyTimeoutMs: 0 });
      expect(result.warnings).toEqual([]);
      expect(writes.copies()).toBe(5); // no private copy made
      expect(readDatabase(path.join(restored, 'memory', 'journal.sqlite'), 'SELECT count(*) FROM t')).toEqual({ integrity: 'ok', values: [6] });
      expect(readdirSync(path.join(tenantDir, 'memory')).sort()).toEqual(['journal.sqlite']);
    } finally {
      privateCopies.afterDatabaseCopy = undefined;
    }
  });

  it('leaves a hot journal (a writer killed mid-transaction) to the gateway and snapshots the database from a private copy, rolled back to its last commit', async () => {
    mkdirSync(path.join(tenantDir, 'memory'), { recursive: true });
    const crashed = path.join(tenantDir, 'memory', 'crashed.sqlite');
    leaveHotJournal(crashed);
    const live = describeTree(tenantDir);
    const { backup: result, restored } = await backupAndRestore({ writers: 'cross-host', locksAcrossHosts: true });
    expect(result.warnings).toEqual([]);
    expect(describeTree(tenantDir)).toEqual(live);
    expect(readDatabase(path.join(restored, 'memory', 'crashed.sqlite'), "SELECT count(*) || ' ' || sum(n) FROM t")).toEqual({ integrity: 'ok', values: ['100 100'] });
  });

  it('copies privately a database whose writer keeps its lock between commits (locking_mode=EXCLUSIVE), rather than fail once the read lock never comes', async () => {
    const file = path.join(tenantDir, 'memory', 'exclusive.sqlite');
    mkdirSync(path.dirname(file), { recursive: true });
    const writer = openDatabase(file);
    try {
      writer.exec('PRAGMA journal_mode = DELETE; PRAGMA locking_mode = EXCLUSIVE; CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)');
      const { backup: result, restored } = await backupAndRestore({ writers: 'cross-host', locksAcrossHosts: true, busyTimeoutMs: 100 });
      expect(result.warnings).toEqual([]);
      expect(readDatabase(path.join(restored, 'memory', 'exclusive.sqlite'), 'SELECT sum(n) FROM t')).toEqual({ integrity: 'ok', values: [3] });
    } finally {
      writer.close();
    }
  });

  it("does not archive the half-written pages of a writer whose lock does not reach this host (nolock=1), written under the read lock", async () => {
    const file = path.join(tenantDir, 'memory', 'unlocked.sqlite');
    mkdirSync(path.dirname(file), { recursive: true });
    const setup = openDatabase(file);
    setup.exec('PRAGMA journal_mode = DELETE; CREATE TABLE t (n INTEGER, pad BLOB)');
    transaction(setup, () => {
      for (let n = 0; n < 2_000; n++) setup.prepare('INSERT INTO t VALUES (1, randomblob(1000))').run();
    });
    setup.close();
    // Once the snapshot holds its read lock: a transaction that spills pages into the file
    // (a cache of 10 pages), killed before it commits, as a gateway host that went away.
    drivers.beforeBackupStep = () => {
      drivers.beforeBackupStep = undefined;
      const script = [
        'import os, sqlite3, sys',
        "db = sqlite3.connect('file:' + sys.argv[1] + '?nolock=1', uri=True, isolation_level=None)",
        "db.execute('PRAGMA cache_size = 10')",
        "db.execute('BEGIN')",
        "db.execute('UPDATE t SET n = 2')",
        'os._exit(0)',
      ].join('\n');
      execFileSync('python3', ['-c', script, file]);
    };
    try {
      const { backup: result, restored } = await backupAndRestore({ writers: 'cross-host', locksAcrossHosts: true });
      expect(result.warnings).toEqual([]);
      // The private copy, with the journal the writer left, rolled back to the last commit.
      expect(readDatabase(path.join(restored, 'memory', 'unlocked.sqlite'), "SELECT count(*) || ' ' || sum(n) FROM t")).toEqual({ integrity: 'ok', values: ['2000 2000'] });
    } finally {
      drivers.beforeBackupStep = undefined;
    }
  });

  it('still copies a database in WAL mode privately: its readers follow the -shm, which is shared memory of one host', async () => {
    const file = path.join(tenantDir, 'memory', 'wal.sqlite');
    mkdirSync(path.dirname(file), { recursive: true });
    const writer = openDatabase(file);
    try {
      writer.exec('PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1)');
      let copies = 0;
      privateCopies.afterDatabaseCopy = async () => {
        copies++;
      };
      const opened: string[] = [];
      snapshots.beforeOpen = (source) => opened.push(source);
      const { backup: result, restored } = await backupAndRestore({ writers: 'cross-host', locksAcrossHosts: true });
      expect(result.warnings).toEqual([]);
      expect(copies).toBe(1);
      expect(opened).not.toContain(file); // SQLite never opened the live file
      expect(readDatabase(path.join(restored, 'memory', 'wal.sqlite'), 'SELECT count(*) FROM t')).toEqual({ integrity: 'ok', values: [1] });
    } finally {
      snapshots.beforeOpen = undefined;
      privateCopies.afterDatabaseCopy = undefined;
      writer.close();
    }
  });

  it('takes a private copy after all when the database was switched to WAL mode between the look at its header and SQLite\'s open', async () => {
    const file = path.join(tenantDir, 'memory', 'switched.sqlite');
    committingDuringEveryCopy(file);
    let copies = 0;
    privateCopies.afterDatabaseCopy = async () => {
      copies++;
    };
    snapshots.beforeOpen = () => {
      snapshots.beforeOpen = undefined;
      const db = openDatabase(file);
      db.exec('PRAGMA journal_mode = WAL');
      db.close();
    };
    try {
      const { backup: result, restored } = await backupAndRestore({ writers: 'cross-host', locksAcrossHosts: true });
      expect(result.warnings).toEqual([]);
      expect(copies).toBe(1);
      expect(readDatabase(path.join(restored, 'memory', 'switched.sqlite'), 'SELECT count(*) FROM t')).toEqual({ integrity: 'ok', values: [1] });
    } finally {
      snapshots.beforeOpen = undefined;
      privateCopies.afterDatabaseCopy = undefined;
    }
  });
});
