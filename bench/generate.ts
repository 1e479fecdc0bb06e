// Generates the benchmark tenants, deterministically, and reuses them across runs.
//
// `small` (~60 MiB, ~2,000 files) and `large` (~600 MiB, ~20,000 files) have the same mix,
// the large one ten times over: chat-session JSONL transcripts (most of the bytes,
// compressible text with the odd base64 attachment), Markdown notes, page-structured binary
// index files (4 KiB pages: records, float32 embeddings, sorted keys, free space), a few
// real SQLite databases (written through the core's driver, idle: no -wal beside them), incompressible media
// (~28% of the bytes, a few large enough to be streamed rather than read whole), many tiny
// JSON files (config, pairings, usage, tool cache), a few symlinks, and a `pty/` dir that
// backups leave out. `tiny` is 200,000 JSON files under 1 KiB in 400 directories, `tiny20k`
// the same at 20,000 files (for the latency mount, where 200,000 would take an hour).
//
// `mixed` (~244 MiB, ~9,290 files) has the shape of a tenant measured from outside (issue
// #20): a third of the files under 8 KiB, exactly 33 over 1 MiB, most of the rest 8–64 KiB
// session transcripts and memory notes; usage/pairing JSON, media, and SQLite memory
// databases (4 of them over 1 MiB).
//
// Every file gets an mtime months in the past: a fresh mtime would send every large file
// down the archive writer's "recently modified, spool it first" path, which a real idle
// tenant does not take.
//
// A tree is reused when its stamp (generator version + spec) matches and a recount of its
// files and bytes agrees with the stamp; otherwise it is deleted and generated again.

import { mkdirSync, readFileSync, readdirSync, lstatSync, rmSync, symlinkSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';

import { sqliteDriver } from '../shared/backup/sqlite-driver.js';

import { ByteStream, logNormalSize, pick, randomInt, seededRandom, type Random } from './random.js';
import { chatSession, markdownNote, TextSource } from './text.js';

export const GENERATOR_VERSION = 3;
export type TreeSize = 'small' | 'large' | 'mixed' | 'tiny' | 'tiny20k';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Base of the generated mtimes: 2026-01-01. */
const EPOCH_MS = Date.UTC(2026, 0, 1);
const SPAN_MS = 150 * 24 * 3600 * 1000;

export interface Tree {
  readonly size: TreeSize;
  /** The tenant base dir (`--tenants-dir`, and `tar -C`). */
  readonly tenantsDir: string;
  /** The tenant's name (directory under tenantsDir). */
  readonly tenant: string;
  readonly stamp: TreeStamp;
}

export interface TreeStamp {
  readonly version: number;
  readonly size: TreeSize;
  readonly tenant: string;
  /** Regular files, directories, symlinks and bytes of the whole tree, pty/ included. */
  readonly files: number;
  readonly directories: number;
  readonly symlinks: number;
  readonly bytes: number;
  /** Regular files and bytes outside pty/: what a backup holds. */
  readonly backedUpFiles: number;
  readonly backedUpBytes: number;
  /** Bytes per category, for the report. */
  readonly categories: Record<string, { files: number; bytes: number }>;
  readonly generatedInMs: number;
}

interface Category {
  readonly name: string;
  readonly files: number;
  readonly bytes: number;
  readonly median: number;
  readonly sigma: number;
  readonly min: number;
  readonly max: number;
}

/** The mix of one `small` tenant; `large` multiplies files and bytes by 10. */
function categories(scale: number): Category[] {
  return [
    { name: 'small-json', files: 500 * scale, bytes: 0.45 * MiB * scale, median: 600, sigma: 0.7, min: 60, max: 4 * KiB },
    { name: 'notes-md', files: 550 * scale, bytes: 3 * MiB * scale, median: 3 * KiB, sigma: 1.0, min: 200, max: 256 * KiB },
    { name: 'sessions-jsonl', files: 650 * scale, bytes: 24 * MiB * scale, median: 12 * KiB, sigma: 1.6, min: 1 * KiB, max: 6 * MiB },
    { name: 'index-pages', files: 40 * scale, bytes: 8 * MiB * scale, median: 96 * KiB, sigma: 1.2, min: 16 * KiB, max: 4 * MiB },
    { name: 'sqlite', files: scale === 1 ? 3 : 12, bytes: 6 * MiB * scale, median: 2 * MiB, sigma: 0.6, min: 256 * KiB, max: 12 * MiB },
    { name: 'media', files: 230 * scale, bytes: 17 * MiB * scale, median: 24 * KiB, sigma: 1.7, min: 2 * KiB, max: scale === 1 ? 6 * MiB : 24 * MiB },
    { name: 'pty', files: 20, bytes: 1 * MiB, median: 32 * KiB, sigma: 1.0, min: 1 * KiB, max: 256 * KiB },
  ];
}

/** Draws `files` log-normal sizes and rescales them (within [min, max]) to add up to about `bytes`. */
function planSizes(random: Random, category: Category): number[] {
  let sizes = Array.from({ length: category.files }, () => logNormalSize(random, category.median, category.sigma, category.min, category.max));
  for (let round = 0; round < 6; round++) {
    const total = sizes.reduce((a, b) => a + b, 0);
    const factor = category.bytes / total;
    if (Math.abs(factor - 1) < 0.005) break;
    sizes = sizes.map((size) => Math.min(category.max, Math.max(category.min, Math.round(size * factor))));
  }
  return sizes;
}

export function treeRoot(workDir: string, size: TreeSize): string {
  return path.join(workDir, 'trees', size);
}

/** The tree for `size` under `workDir`: reused if valid, else generated. */
export function ensureTree(workDir: string, size: TreeSize, log: (line: string) => void): Tree {
  const root = treeRoot(workDir, size);
  const tenant = size === 'tiny' || size === 'tiny20k' ? size : `acme-${size}`;
  const tenantsDir = path.join(root, 'tenants');
  const stampPath = path.join(root, 'stamp.json');
  if (existsSync(stampPath)) {
    try {
      const stamp = JSON.parse(readFileSync(stampPath, 'utf8')) as TreeStamp;
      if (stamp.version === GENERATOR_VERSION && stamp.size === size && stamp.tenant === tenant) {
        const counted = countTree(path.join(tenantsDir, tenant));
        if (counted.files === stamp.files && counted.bytes === stamp.bytes && counted.directories === stamp.directories && counted.symlinks === stamp.symlinks) {
          return { size, tenantsDir, tenant, stamp };
        }
        log(`${size} tree: recount differs from its stamp; generating it again`);
      }
    } catch {
      // unreadable stamp: generate again
    }
  }
  rmSync(root, { recursive: true, force: true });
  mkdirSync(tenantsDir, { recursive: true });
  log(`generating the ${size} tree in ${root} …`);
  const started = Date.now();
  const tenantDir = path.join(tenantsDir, tenant);
  const categoriesWritten =
    size === 'tiny' ? generateTiny(tenantDir, 200_000)
    : size === 'tiny20k' ? generateTiny(tenantDir, 20_000)
    : size === 'mixed' ? generateMixed(tenantDir)
    : generateTenant(tenantDir, size === 'small' ? 1 : 10);
  const counted = countTree(tenantDir);
  const pty = countTree(path.join(tenantDir, 'pty'));
  const stamp: TreeStamp = {
    version: GENERATOR_VERSION,
    size,
    tenant,
    ...counted,
    backedUpFiles: counted.files - pty.files,
    backedUpBytes: counted.bytes - pty.bytes,
    categories: categoriesWritten,
    generatedInMs: Date.now() - started,
  };
  writeFileSync(stampPath, `${JSON.stringify(stamp, null, 2)}\n`);
  log(`generated the ${size} tree: ${stamp.files} files, ${(stamp.bytes / MiB).toFixed(1)} MiB in ${(stamp.generatedInMs / 1000).toFixed(1)} s`);
  return { size, tenantsDir, tenant, stamp };
}

/** Files, directories (the root excluded), symlinks and bytes under `dir`; zeros if it is absent. */
export function countTree(dir: string): { files: number; directories: number; symlinks: number; bytes: number } {
  const counts = { files: 0, directories: 0, symlinks: 0, bytes: 0 };
  if (!existsSync(dir)) return counts;
  const stack = [dir];
  while (stack.length > 0) {
    const current = stack.pop()!;
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) {
        counts.directories++;
        stack.push(full);
      } else if (entry.isSymbolicLink()) counts.symlinks++;
      else if (entry.isFile()) {
        counts.files++;
        counts.bytes += lstatSync(full).size;
      }
    }
  }
  return counts;
}

class Writer {
  readonly categories: Record<string, { files: number; bytes: number }> = {};
  private readonly directories = new Set<string>();

  constructor(
    readonly root: string,
    private readonly random: Random,
    private readonly setTimes = true,
  ) {}

  file(relative: string, content: string | Buffer, category: string, mode = 0o644): void {
    const full = path.join(this.root, relative);
    this.dir(path.dirname(full));
    writeFileSync(full, content, { mode });
    if (this.setTimes) this.touch(full);
    const tally = (this.categories[category] ??= { files: 0, bytes: 0 });
    tally.files++;
    tally.bytes += typeof content === 'string' ? Buffer.byteLength(content) : content.length;
  }

  dir(full: string): void {
    if (this.directories.has(full)) return;
    mkdirSync(full, { recursive: true });
    for (let at = full; at.startsWith(this.root) && !this.directories.has(at); at = path.dirname(at)) this.directories.add(at);
  }

  touch(full: string): void {
    const time = new Date(EPOCH_MS + Math.floor(this.random() * SPAN_MS));
    utimesSync(full, time, time);
  }

  /** Directory mtimes last, deepest first (adding entries changes them). */
  finish(): void {
    if (!this.setTimes) return;
    const directories = [...this.directories].sort((a, b) => b.length - a.length);
    for (const dir of directories) this.touch(dir);
  }
}

function generateTenant(tenantDir: string, scale: number): Record<string, { files: number; bytes: number }> {
  const random = seededRandom(20260603 + scale);
  const text = new TextSource(seededRandom(7 + scale));
  const bytes = new ByteStream(`tenant-${scale}`);
  const writer = new Writer(tenantDir, seededRandom(99 + scale));
  const plan = new Map(categories(scale).map((category) => [category.name, planSizes(random, category)]));
  const agents = 4 * Math.max(1, Math.round(Math.sqrt(scale)));
  const month = (i: number) => `2026-${String(1 + (i % 6)).padStart(2, '0')}`;

  // Config, token, channel pairings, cron: the fixed part every tenant has.
  writer.file('config.json', JSON.stringify({ displayName: 'Acme Corp', model: 'claude-sonnet-4-5', maxAgents: agents, timezone: 'Europe/Berlin' }, null, 2), 'small-json');
  writer.file('token.sha256', `${bytes.bytes(32).toString('hex')}\n`, 'small-json', 0o600);
  writer.file('channels/telegram.json', JSON.stringify({ botToken: `123456:${text.identifier('', 35)}`, chatIds: [1001, 1002] }), 'small-json', 0o600);
  writer.file('channels/slack.json', JSON.stringify({ botToken: `xoxb-${text.identifier('', 40)}`, team: 'T0001' }), 'small-json', 0o600);
  writer.file('channels/whatsapp/creds.json', JSON.stringify({ pairedDevice: 'device-1', noiseKey: bytes.bytes(32).toString('base64'), signedIdentityKey: bytes.bytes(64).toString('base64') }), 'small-json', 0o600);
  writer.file('cron/jobs.json', JSON.stringify(Array.from({ length: 6 }, (_, i) => ({ name: `job-${i}`, schedule: `${i * 5} 8 * * *`, agent: `agent-${i % agents}`, prompt: text.sentence() })), null, 2), 'small-json');
  writer.file('workspace/scripts/run.sh', '#!/bin/sh\nexec node ./tools/run.js "$@"\n', 'small-json', 0o755);

  // Many tiny JSON files: usage per day, tool-call cache entries, per-chat channel state.
  (plan.get('small-json') ?? []).forEach((size, i) => {
    const kind = i % 3;
    const relative =
      kind === 0 ? `usage/daily/${month(i)}/day-${String(i).padStart(5, '0')}.json`
      : kind === 1 ? `cache/tools/${String(i % 97).padStart(2, '0')}/${text.identifier('call_', 12)}.json`
      : `channels/state/chat-${String(i).padStart(6, '0')}.json`;
    const record: Record<string, unknown> = { id: i, updated: EPOCH_MS + i * 60_000, agent: `agent-${i % agents}` };
    while (JSON.stringify(record).length < size) record[text.word()] = random() < 0.5 ? randomInt(random, 0, 1e6) : text.sentence(2, 8);
    writer.file(relative, JSON.stringify(record), 'small-json');
  });

  const topics = Array.from({ length: 8 + 2 * scale }, () => `${text.word()}-${text.word()}`);
  (plan.get('notes-md') ?? []).forEach((size, i) => {
    writer.file(`workspace/notes/${pick(random, topics)}/note-${String(i).padStart(5, '0')}.md`, markdownNote(text, random, size), 'notes-md');
  });

  (plan.get('sessions-jsonl') ?? []).forEach((size, i) => {
    const agent = `agent-${i % agents}`;
    writer.file(`agents/${agent}/sessions/${month(i)}/${text.identifier('', 8)}-${String(i).padStart(5, '0')}.jsonl`, chatSession(text, random, bytes, size, EPOCH_MS + i * 3_600_000), 'sessions-jsonl');
  });

  (plan.get('index-pages') ?? []).forEach((size, i) => {
    writer.file(`agents/agent-${i % agents}/index/${['vectors', 'fts', 'kv', 'graph'][i % 4]}-${String(i).padStart(4, '0')}.db`, pagedFile(text, random, bytes, size), 'index-pages');
  });

  (plan.get('sqlite') ?? []).forEach((size, i) => {
    const relative = `memory/agent-${i % agents}${i >= agents ? `-${i}` : ''}.sqlite`;
    const full = path.join(tenantDir, relative);
    writer.dir(path.dirname(full));
    writeSqlite(full, text, random, bytes, size);
    writer.touch(full);
    const tally = (writer.categories.sqlite ??= { files: 0, bytes: 0 });
    tally.files++;
    tally.bytes += lstatSync(full).size;
  });

  const media: [string, Buffer][] = [
    ['png', Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex')],
    ['jpg', Buffer.from('ffd8ffe000104a46494600010100', 'hex')],
    ['ogg', Buffer.from('OggS\0\x02\0\0\0\0\0\0\0\0', 'latin1')],
    ['mp4', Buffer.from('000000206674797069736f6d', 'hex')],
    ['pdf', Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1')],
  ];
  (plan.get('media') ?? []).forEach((size, i) => {
    const [ext, magic] = media[i % media.length]!;
    const content = Buffer.concat([magic, bytes.bytes(Math.max(0, size - magic.length))]);
    writer.file(`workspace/media/${month(i)}/${text.identifier('att_', 10)}.${ext}`, content, 'media');
  });

  // Ephemeral terminal state: never backed up (the baseline excludes it too).
  (plan.get('pty') ?? []).forEach((size, i) => {
    let log = '';
    while (log.length < size) log += `\x1b[32m$\x1b[0m ${text.sentence(2, 6)}\r\n${text.code(3)}\r\n`;
    writer.file(`pty/term-${i}/output.log`, log.slice(0, size), 'pty');
  });

  // A few relative symlinks inside the tenant.
  const link = (target: string, relative: string) => {
    const full = path.join(tenantDir, relative);
    writer.dir(path.dirname(full));
    symlinkSync(target, full);
  };
  link('agents/agent-0', 'current-agent');
  link('../config.json', 'workspace/config.json');
  link('notes', 'workspace/latest-notes');
  link('../../../config.json', 'agents/agent-1/sessions/config.json');
  link('scripts/run.sh', 'workspace/run');

  writer.finish();
  return writer.categories;
}

/**
 * A page-structured binary file (not SQLite's header, so it is archived as a plain file):
 * 4 KiB pages of records (ids, timestamps, short strings), float32 embeddings, sorted keys,
 * each page ending in some free (zeroed) space, and a few entirely free pages.
 */
function pagedFile(text: TextSource, random: Random, bytes: ByteStream, size: number): Buffer {
  const PAGE = 4096;
  const pages = Math.max(1, Math.round(size / PAGE));
  const out = Buffer.alloc(pages * PAGE);
  out.write('OCIDX\x01\x00\x00', 0, 'latin1');
  out.writeUInt32LE(PAGE, 8);
  out.writeUInt32LE(pages, 12);
  for (let p = 1; p < pages; p++) {
    const base = p * PAGE;
    const r = random();
    const kind = r < 0.5 ? 1 : r < 0.8 ? 2 : r < 0.9 ? 3 : 0;
    out[base] = kind;
    if (kind === 0) continue; // a free page
    const used = Math.floor(PAGE * (0.6 + 0.4 * random()));
    let at = base + 16;
    let cells = 0;
    const end = base + used;
    if (kind === 1) {
      // Records: rowid, timestamp, flags, a short text.
      while (at + 64 < end) {
        out.writeUInt32LE(p * 100 + cells, at);
        out.writeDoubleLE(EPOCH_MS + p * 1000 + cells, at + 4);
        out.writeUInt16LE(randomInt(random, 0, 7), at + 12);
        const written = out.write(text.sentence(2, 8), at + 16, Math.min(end - at - 16, 120), 'utf8');
        at += 16 + written;
        cells++;
      }
    } else if (kind === 2) {
      // Embeddings: float32 components of a small normalised vector (noisy mantissas).
      const start = at;
      const noise = bytes.bytes(end - start);
      for (let o = 0; o + 4 <= noise.length; o += 4) {
        out.writeFloatLE((noise.readUInt16LE(o) / 65536 - 0.5) * 0.2, start + o);
        cells++;
      }
    } else {
      // Sorted 64-bit keys with small gaps.
      let key = BigInt(p) << 32n;
      for (; at + 8 <= end; at += 8) {
        key += BigInt(randomInt(random, 1, 300));
        out.writeBigUInt64LE(key, at);
        cells++;
      }
    }
    out.writeUInt16LE(cells, base + 2);
    out.writeUInt16LE(used, base + 4);
  }
  return out;
}

/** A real SQLite database of about `size` bytes (memories: text plus an embedding blob), left idle (journal_mode DELETE). */
function writeSqlite(file: string, text: TextSource, random: Random, bytes: ByteStream, size: number): void {
  const db = sqliteDriver().open(file);
  try {
    db.exec('PRAGMA journal_mode = DELETE');
    db.exec(`CREATE TABLE memories (id INTEGER PRIMARY KEY, created INTEGER NOT NULL, topic TEXT NOT NULL, body TEXT NOT NULL, embedding BLOB);
             CREATE INDEX memories_topic ON memories(topic, created);
             CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;`);
    const insert = db.prepare('INSERT INTO memories (created, topic, body, embedding) VALUES (?, ?, ?, ?)');
    const kv = db.prepare('INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)');
    let estimate = 0;
    let row = 0;
    while (estimate < size * 0.93) {
      db.exec('BEGIN');
      for (let i = 0; i < 200; i++, row++) {
        const body = text.paragraph(1, 6);
        // 256 float32 components whose low bytes are noise: compresses like real embeddings (barely).
        const embedding = Buffer.alloc(1024);
        const noise = bytes.bytes(512);
        for (let c = 0; c < 256; c++) embedding.writeFloatLE((noise.readUInt16LE(c * 2) / 65536 - 0.5) * 0.25, c * 4);
        insert.run(EPOCH_MS + row * 60_000, `${text.word()}/${text.word()}`, body, embedding);
        if (row % 10 === 0) kv.run(`${text.word()}.${text.word()}.${row % 500}`, text.sentence(2, 10));
        estimate += body.length + 1024 + 60;
      }
      db.exec('COMMIT');
      if (random() < 0.02) db.exec(`DELETE FROM memories WHERE id % 17 = ${randomInt(random, 0, 16)}`); // some free pages
    }
  } finally {
    db.close();
  }
}

/** `files` JSON files under 1 KiB, 500 per directory: events, receipts, pairing state. */
function generateTiny(tenantDir: string, files: number): Record<string, { files: number; bytes: number }> {
  const random = seededRandom(424242);
  const text = new TextSource(seededRandom(4242), 3000);
  const writer = new Writer(tenantDir, random, false);
  const PER_DIR = 500;
  for (let i = 0; i < files; i++) {
    const target = randomInt(random, 80, 1000);
    const record: Record<string, unknown> = { id: i, ts: EPOCH_MS + i * 1000, type: pick(random, ['event', 'receipt', 'ack', 'pairing']) };
    let json = JSON.stringify(record);
    while (json.length < target - 40) {
      record[text.word()] = random() < 0.5 ? randomInt(random, 0, 1e6) : text.sentence(2, 6);
      json = JSON.stringify(record);
    }
    if (json.length > 1000) json = JSON.stringify({ id: i, ts: EPOCH_MS + i * 1000, note: text.sentence(3, 8).slice(0, 200) });
    writer.file(`events/shard-${String(Math.floor(i / PER_DIR)).padStart(3, '0')}/evt-${String(i).padStart(6, '0')}.json`, json, 'tiny-json');
  }
  return writer.categories;
}

/**
 * The `mixed` tenant's plan. Sizes are log-normal per category, rescaled to the category's
 * bytes; every category but `large` and the big SQLite databases stays under 1 MiB, so the
 * count over 1 MiB is exact (29 + 4 = 33).
 */
function mixedCategories(): Category[] {
  return [
    { name: 'small-json', files: 1300, bytes: 1.3 * MiB, median: 700, sigma: 0.9, min: 60, max: 7 * KiB },
    { name: 'memory-md', files: 1800, bytes: 21 * MiB, median: 9 * KiB, sigma: 0.9, min: 300, max: 64 * KiB },
    { name: 'sessions-jsonl', files: 5298, bytes: 82 * MiB, median: 16 * KiB, sigma: 0.6, min: 1 * KiB, max: 1000 * KiB },
    { name: 'media', files: 830, bytes: 36 * MiB, median: 28 * KiB, sigma: 1.0, min: 2 * KiB, max: 1000 * KiB },
    { name: 'large', files: 29, bytes: 76 * MiB, median: 2.2 * MiB, sigma: 0.6, min: 1.1 * MiB, max: 9 * MiB },
    { name: 'pty', files: 20, bytes: 1 * MiB, median: 32 * KiB, sigma: 1.0, min: 1 * KiB, max: 256 * KiB },
  ];
}

/** SQLite memory databases of the `mixed` tenant: 4 under 1 MiB, 4 over. */
const MIXED_SQLITE_SIZES = [200 * KiB, 300 * KiB, 400 * KiB, 520 * KiB, 1.6 * MiB, 2.4 * MiB, 4.2 * MiB, 6.8 * MiB];

function generateMixed(tenantDir: string): Record<string, { files: number; bytes: number }> {
  const random = seededRandom(20261203);
  const text = new TextSource(seededRandom(1203));
  const bytes = new ByteStream('tenant-mixed');
  const writer = new Writer(tenantDir, seededRandom(1204));
  const plan = new Map(mixedCategories().map((category) => [category.name, planSizes(random, category)]));
  const agents = 12;
  const month = (i: number) => `2026-${String(1 + (i % 6)).padStart(2, '0')}`;
  const day = (i: number) => `${month(i)}-${String(1 + (i % 28)).padStart(2, '0')}`;

  writer.file('config.json', JSON.stringify({ displayName: 'Mixed Corp', model: 'claude-sonnet-4-5', maxAgents: agents, timezone: 'Europe/Paris' }, null, 2), 'small-json');
  writer.file('token.sha256', `${bytes.bytes(32).toString('hex')}\n`, 'small-json', 0o600);
  writer.file('channels/telegram.json', JSON.stringify({ botToken: `123456:${text.identifier('', 35)}`, chatIds: [2001, 2002, 2003] }), 'small-json', 0o600);
  writer.file('channels/whatsapp/creds.json', JSON.stringify({ pairedDevice: 'device-7', noiseKey: bytes.bytes(32).toString('base64') }), 'small-json', 0o600);
  writer.file('cron/jobs.json', JSON.stringify(Array.from({ length: 9 }, (_, i) => ({ name: `job-${i}`, schedule: `${i * 5} 7 * * *`, agent: `agent-${i % agents}`, prompt: text.sentence() })), null, 2), 'small-json');

  // Usage records, pairings, tool-call cache: many small JSON files.
  (plan.get('small-json') ?? []).forEach((size, i) => {
    const kind = i % 4;
    const relative =
      kind === 0 ? `usage/${month(i)}/day-${String(i).padStart(5, '0')}.json`
      : kind === 1 ? `cache/tools/${String(i % 64).padStart(2, '0')}/${text.identifier('call_', 12)}.json`
      : kind === 2 ? `channels/state/chat-${String(i).padStart(6, '0')}.json`
      : `agents/agent-${i % agents}/state/${text.identifier('s_', 10)}.json`;
    const record: Record<string, unknown> = { id: i, updated: EPOCH_MS + i * 60_000, agent: `agent-${i % agents}` };
    while (JSON.stringify(record).length < size) record[text.word()] = random() < 0.5 ? randomInt(random, 0, 1e6) : text.sentence(2, 8);
    writer.file(relative, JSON.stringify(record), 'small-json');
  });

  // Memory notes: one Markdown file per agent and day.
  (plan.get('memory-md') ?? []).forEach((size, i) => {
    writer.file(`memory/agent-${i % agents}/${day(Math.floor(i / agents))}-${String(i).padStart(4, '0')}.md`, markdownNote(text, random, size), 'memory-md');
  });

  (plan.get('sessions-jsonl') ?? []).forEach((size, i) => {
    writer.file(`agents/agent-${i % agents}/sessions/${month(i)}/${text.identifier('', 8)}-${String(i).padStart(5, '0')}.jsonl`, chatSession(text, random, bytes, size, EPOCH_MS + i * 3_600_000), 'sessions-jsonl');
  });

  const media: [string, Buffer][] = [
    ['png', Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex')],
    ['jpg', Buffer.from('ffd8ffe000104a46494600010100', 'hex')],
    ['pdf', Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1')],
  ];
  (plan.get('media') ?? []).forEach((size, i) => {
    const [ext, magic] = media[i % media.length]!;
    writer.file(`workspace/uploads/${month(i)}/${text.identifier('att_', 10)}.${ext}`, Buffer.concat([magic, bytes.bytes(Math.max(0, size - magic.length))]), 'media');
  });

  // Over 1 MiB: long transcripts (compressible), recordings and exports (incompressible), indexes.
  (plan.get('large') ?? []).forEach((size, i) => {
    const kind = i % 3;
    if (kind === 0) writer.file(`agents/agent-${i % agents}/sessions/archive/long-${String(i).padStart(3, '0')}.jsonl`, chatSession(text, random, bytes, size, EPOCH_MS + i * 86_400_000), 'large');
    else if (kind === 1) writer.file(`workspace/recordings/${text.identifier('rec_', 8)}.mp4`, Buffer.concat([Buffer.from('000000206674797069736f6d', 'hex'), bytes.bytes(size - 12)]), 'large');
    else writer.file(`agents/agent-${i % agents}/index/vectors-${String(i).padStart(3, '0')}.db`, pagedFile(text, random, bytes, size), 'large');
  });

  MIXED_SQLITE_SIZES.forEach((size, i) => {
    const full = path.join(tenantDir, `memory/agent-${i}.sqlite`);
    writer.dir(path.dirname(full));
    writeSqlite(full, text, random, bytes, size);
    writer.touch(full);
    const tally = (writer.categories.sqlite ??= { files: 0, bytes: 0 });
    tally.files++;
    tally.bytes += lstatSync(full).size;
  });

  (plan.get('pty') ?? []).forEach((size, i) => {
    let log = '';
    while (log.length < size) log += `\x1b[32m$\x1b[0m ${text.sentence(2, 6)}\r\n${text.code(3)}\r\n`;
    writer.file(`pty/term-${i}/output.log`, log.slice(0, size), 'pty');
  });

  const link = (target: string, relative: string) => {
    const full = path.join(tenantDir, relative);
    writer.dir(path.dirname(full));
    symlinkSync(target, full);
  };
  link('agents/agent-0', 'current-agent');
  link('../config.json', 'workspace/config.json');

  writer.finish();
  return writer.categories;
}
