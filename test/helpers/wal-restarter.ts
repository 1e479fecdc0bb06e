// A writer that keeps restarting a WAL-mode database's WAL, as its own process (so it runs
// truly beside a backup, whatever the test process's event loop is doing):
//
//   node --import tsx test/helpers/wal-restarter.ts DATABASE
//
// Setup: DATABASE in WAL mode with ~2 MB of rows. Then, until stdin ends, round after round:
// `PRAGMA wal_checkpoint(RESTART)` and one INSERT. Every round checkpoints the whole WAL, so
// the INSERT writes it again from its start under a new header (checkpoint sequence and
// salts): a WAL header read before a round never matches one read after it, and the file
// never shrinks (no TRUNCATE), so that header is the one sign of the change.
//
// Protocol on stdin/stdout, one line each: `ready` after setup; on `mark`, `rounds N`, N the
// rounds completed. Rounds run in short batches between which stdin is answered, so when
// the answer is written no round is half done.

import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

import { openDatabase } from './sqlite.js';

const ROUNDS_PER_BATCH = 20;

function main(file: string): void {
  const db = openDatabase(file);
  db.exec('PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER PRIMARY KEY, body BLOB)');
  const fill = db.prepare('INSERT INTO t VALUES (?, randomblob(1000))');
  for (let n = 1; n <= 2000; n++) fill.run(n);
  const insert = db.prepare('INSERT INTO t VALUES (?, NULL)');
  let rounds = 0;

  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line.trim() === 'mark') process.stdout.write(`rounds ${rounds}\n`);
  });
  process.stdin.on('end', () => {
    db.close();
    process.exit(0);
  });

  const batch = (): void => {
    for (let i = 0; i < ROUNDS_PER_BATCH; i++) {
      db.exec('PRAGMA wal_checkpoint(RESTART)');
      insert.run(2001 + rounds);
      rounds++;
    }
    setImmediate(batch);
  };
  process.stdout.write('ready\n');
  setImmediate(batch);
}

// Run as a script only.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write('usage: wal-restarter.ts DATABASE\n');
    process.exit(2);
  }
  main(file);
}
