// Backing up a tenant that is being written: a separate process commits to a WAL-mode memory
// database and appends to transcripts throughout the backup; the restored tenant must hold a
// consistent database (integrity_check ok, a contiguous prefix of the commits, at least every
// one committed before the backup began) and no torn line in any file not warned about. Also
// the rest of the consistency rules: corrupt databases archived raw with a warning, idle
// databases archived byte for byte without being touched, files that change re-read, files
// that vanish warned about.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { createTenantArchive } from '../shared/backup/tenant-archive.js';
import { backupTenant, type BackupResult } from '../shared/backup/backup.js';
import type { ManifestNote } from '../shared/archive/manifest.js';
import { restoreTenant } from '../shared/restore/restore.js';
import { REREAD_ATTEMPTS, readWhole, readWholeAt, spoolFile } from '../shared/backup/stable-read.js';
import { PARALLEL_ACCESS, SYNC_ACCESS, type FileAccess } from '../shared/file-access.js';
import { LocalFileLocation } from '../shared/storage/local.js';
import { createSampleTenant } from '../scripts/sample-tenant.js';
import { LIVE_DATABASE, LIVE_STATE_FILE, LIVE_TRANSCRIPTS } from './helpers/live-writer.js';
import { describeTree, repoRoot, tempDir } from './helpers/tree.js';

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

async function backup(): Promise<BackupResult> {
  return backupTenant({ tenantsDir: base, tenant: 'acme', location: archiveLocation(), overwrite: true });
}

async function restore(): Promise<string> {
  rmSync(restoredBase, { recursive: true, force: true });
  await restoreTenant({ tenantsDir: restoredBase, location: archiveLocation() });
  return path.join(restoredBase, 'acme');
}

async function backupAndRestore(): Promise<{ backup: BackupResult; restored: string }> {
  const result = await backup();
  return { backup: result, restored: await restore() };
}

const warnedPaths = (notes: readonly ManifestNote[]) => new Set(notes.map((note) => note.path));

/** The live writer as a child process, with its `mark` question. */
class LiveWriter {
  private readonly lines: AsyncIterator<string>;
  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }

  static async start(tenant: string): Promise<LiveWriter> {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'test', 'helpers', 'live-writer.ts'), tenant], {
      cwd: repoRoot,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    const writer = new LiveWriter(child);
    const first = await writer.lines.next();
    if (first.value !== 'ready') throw new Error(`live writer did not start: ${String(first.value)} ${stderr}`);
    return writer;
  }

  /** The last transaction the writer has committed. */
  async committed(): Promise<number> {
    this.child.stdin.write('mark\n');
    const answer = await this.lines.next();
    const match = /^committed (\d+)$/.exec(String(answer.value));
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
    const db = new Database(path.join(restored, LIVE_DATABASE));
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      const numbers = db.prepare('SELECT n FROM commits ORDER BY n').pluck().all() as number[];
      const last = numbers.length;
      expect(numbers).toEqual(Array.from({ length: last }, (_, i) => i + 1));
      expect(db.prepare('SELECT n FROM head').pluck().get()).toBe(last);
      expect(last).toBeGreaterThanOrEqual(before);
      expect(last).toBeLessThanOrEqual(after);
      console.log(`restored database holds commits 1..${last} (${last - before} more than at the start of the backup)`);
      db.prepare('INSERT INTO commits (n, body) VALUES (?, NULL)').run(last + 1); // opens read-write
    } finally {
      db.close();
    }

    // Every other file: one version of itself, or a warning.
    const warned = warnedPaths(result.warnings);
    for (const transcript of LIVE_TRANSCRIPTS) {
      if (warned.has(transcript)) continue;
      const lines = readFileSync(path.join(restored, transcript), 'utf8').split('\n');
      expect(lines.pop()).toBe(''); // ends with a complete line
      const numbers = lines.map((line) => (JSON.parse(line) as { n: number }).n);
      expect(numbers).toEqual(Array.from({ length: numbers.length }, (_, i) => i + 1));
      expect(numbers.length).toBeGreaterThanOrEqual(before);
    }
    if (!warned.has(LIVE_STATE_FILE)) expect(() => JSON.parse(readFileSync(path.join(restored, LIVE_STATE_FILE), 'utf8'))).not.toThrow();
    // The idle sample databases beside it were archived byte for byte.
    for (const idle of ['memory/agent-0.sqlite', 'memory/agent-1.sqlite']) {
      expect(readFileSync(path.join(restored, idle)).equals(readFileSync(path.join(tenantDir, idle)))).toBe(true);
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

  it('snapshots a database whose uncommitted-to-the-main-file transactions are only in its WAL', async () => {
    mkdirSync(path.join(tenantDir, 'memory'), { recursive: true });
    const file = path.join(tenantDir, 'memory', 'open.sqlite');
    const db = new Database(file);
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('wal_autocheckpoint = 0');
      db.exec('CREATE TABLE t (n INTEGER PRIMARY KEY)');
      const insert = db.prepare('INSERT INTO t VALUES (?)');
      for (let n = 1; n <= 500; n++) insert.run(n);
      const { backup, restored } = await backupAndRestore();
      expect(backup.warnings).toEqual([]);
      expect(backup.skipped.map((note) => note.path).sort()).toEqual(['memory/open.sqlite-shm', 'memory/open.sqlite-wal']);
      expect(readdirSync(path.join(restored, 'memory'))).toEqual(['open.sqlite']);
      const copy = new Database(path.join(restored, 'memory', 'open.sqlite'), { readonly: true });
      try {
        expect(copy.prepare('SELECT count(*) FROM t').pluck().get()).toBe(500);
        expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
      } finally {
        copy.close();
      }
      // The live database was only read.
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.prepare('SELECT count(*) FROM t').pluck().get()).toBe(500);
    } finally {
      db.close();
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
      readdir: (dir) => {
        if (dir === subDir) rmSync(subDir, { recursive: true });
        const listed = access.readdir(dir);
        const afterListing = <T>(entries: T): T => {
          if (dir === notesDir) rmSync(path.join(notesDir, 'b.txt'));
          return entries;
        };
        return listed instanceof Promise ? listed.then(afterListing) : afterListing(listed);
      },
    };
    const archive = createTenantArchive({ tenantDir, tenant: 'acme', createdAt: new Date(), fileAccess: vanishing });
    for await (const chunk of archive.chunks) void chunk;
    const { manifest } = await archive.summary;
    // notes/ holds a.txt, c.txt and the (now empty) sub/ directory.
    expect(manifest.directories.map(({ path, entries }) => ({ path, entries }))).toEqual([
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

  it.each([
    ['synchronous', SYNC_ACCESS],
    ['promise', PARALLEL_ACCESS],
  ])('reads a file replaced after the listing as it is now, though it trusted the listing\'s stat (%s calls)', async (_label, access) => {
    const file = path.join(dir.path, 'state.json');
    writeFileSync(file, '{"version":1}');
    const listed = lstatSync(file);
    rmSync(file);
    writeFileSync(file, '{"version":2,"and":"longer"}');
    const scratch = Buffer.alloc(1024);
    const read = await readWholeAt(access, file, 1 << 20, { listed, scratch });
    expect(read).toMatchObject({ stable: true, reads: 2 });
    expect((read as { content: Buffer }).content.toString()).toBe('{"version":2,"and":"longer"}');
    expect((read as { content: Buffer }).content.buffer).toBe(scratch.buffer);
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
});
