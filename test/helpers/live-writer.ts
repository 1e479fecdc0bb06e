// A stand-in for the gateway serving a tenant, run as its own process so its SQLite locks
// and writes are as foreign to the backup as the real gateway's:
//
//   node --import tsx test/helpers/live-writer.ts TENANT_DIR
//
// Setup: a WAL-mode memory database `memory/live.sqlite` padded to a few MiB, JSONL session
// transcripts, and a small JSON state file. Then, until killed, in a loop: commit transaction
// n (n = 1, 2, 3, …) to the database, append line n to every transcript (each line a single
// `write`, several KiB so a read can catch one half-written), and rewrite the state file
// (truncate, then write: a reader can find it empty or cut short). `LIVE_WRITER_RATE` sets
// the pace in transactions a second (default 2000). SQLite checkpoints the WAL on its own
// (every 1,000 pages); `LIVE_WRITER_CHECKPOINT_EVERY=N` also runs
// `PRAGMA wal_checkpoint(TRUNCATE)` after every N transactions, so the WAL keeps being
// emptied and restarted with new salts while backups copy it.
//
// Protocol on stdin/stdout, one line each: the writer prints `ready` after setup; on `mark`
// it prints `committed N`, N being the last transaction whose COMMIT has returned.

import { closeSync, ftruncateSync, mkdirSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

import { openDatabase, transaction } from './sqlite.js';

export const LIVE_DATABASE = 'memory/live.sqlite';
export const LIVE_TRANSCRIPTS = ['sessions/live-0.jsonl', 'sessions/live-1.jsonl', 'sessions/live-2.jsonl'];
export const LIVE_STATE_FILE = 'state/live.json';
/** Transactions a second. */
const RATE = Number(process.env.LIVE_WRITER_RATE ?? 2000);
/** Transactions between explicit checkpoints; 0: none. */
const CHECKPOINT_EVERY = Number(process.env.LIVE_WRITER_CHECKPOINT_EVERY ?? 0);

/** Line n of every transcript, its newline included: one `write`. */
export function liveTranscriptLine(n: number): string {
  return `${JSON.stringify({ n, role: n % 2 ? 'assistant' : 'user', text: `message ${n} `.repeat(60) })}\n`;
}

/** What the state file holds after transaction n: one `write` after a truncation. */
export function liveState(n: number): string {
  return JSON.stringify({ n, note: 'x'.repeat(6000) });
}

function main(tenantDir: string): void {
  for (const dir of ['memory', 'sessions', 'state']) mkdirSync(path.join(tenantDir, dir), { recursive: true });
  const db = openDatabase(path.join(tenantDir, LIVE_DATABASE));
  db.exec('PRAGMA journal_mode = WAL');
  db.exec(`
    CREATE TABLE filler (id INTEGER PRIMARY KEY, body BLOB);
    CREATE TABLE commits (n INTEGER PRIMARY KEY, body BLOB);
    CREATE TABLE head (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
    INSERT INTO head VALUES (1, 0);
  `);
  const fill = db.prepare('INSERT INTO filler (body) VALUES (randomblob(3000))');
  transaction(db, () => {
    for (let i = 0; i < 1500; i++) fill.run();
  });
  // Each transaction writes at least two pages: the commit row and the head row.
  const insert = db.prepare('INSERT INTO commits (n, body) VALUES (?, randomblob(1500))');
  const advance = db.prepare('UPDATE head SET n = ? WHERE id = 1');
  const commit = (n: number) =>
    transaction(db, () => {
      insert.run(n);
      advance.run(n);
    });

  const transcripts = LIVE_TRANSCRIPTS.map((relative) => openSync(path.join(tenantDir, relative), 'a'));
  const state = openSync(path.join(tenantDir, LIVE_STATE_FILE), 'w');
  let committed = 0;

  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line.trim() === 'mark') process.stdout.write(`committed ${committed}\n`);
  });
  process.stdin.on('end', () => process.exit(0));

  // Paced at RATE transactions a second, in short bursts, so stdin is answered promptly and
  // the files grow by a few MiB a second at most.
  const started = performance.now();
  const step = (): void => {
    const due = Math.floor(((performance.now() - started) / 1000) * RATE);
    for (let i = 0; i < 50 && committed < due; i++) {
      const n = committed + 1;
      commit(n);
      committed = n;
      if (CHECKPOINT_EVERY > 0 && n % CHECKPOINT_EVERY === 0) db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
      const line = liveTranscriptLine(n);
      for (const fd of transcripts) writeSync(fd, line);
      const snapshot = Buffer.from(liveState(n));
      ftruncateSync(state, 0);
      writeSync(state, snapshot, 0, snapshot.length, 0);
    }
    if (committed < due) setImmediate(step);
    else setTimeout(step, 1);
  };
  process.stdout.write('ready\n');
  setImmediate(step);

  process.on('SIGTERM', () => {
    for (const fd of [...transcripts, state]) closeSync(fd);
    db.close();
    process.exit(0);
  });
}

// Run as a script only: the tests import the names above.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const tenantDir = process.argv[2];
  if (tenantDir === undefined) {
    process.stderr.write('usage: live-writer.ts TENANT_DIR\n');
    process.exit(2);
  }
  main(tenantDir);
}
