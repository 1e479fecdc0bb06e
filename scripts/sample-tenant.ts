// Builds a realistic OpenClawMU tenant directory for the demo, the tests and the benchmark:
// config and token hash, agent sessions (JSONL transcripts), memory databases (real SQLite,
// WAL mode), channel pairings, cost/usage history, cron jobs, a workspace with notes,
// binary blobs and a relative symlink, and an ephemeral `pty/` that backups leave out.
// Deterministic for a given seed.

import { createHash } from 'node:crypto';
import { mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { sqliteDriver } from '../shared/backup/sqlite-driver.js';

export interface SampleTenantOptions {
  /** Agent sessions to write (each a JSONL transcript). */
  readonly sessions?: number;
  /** Messages per session transcript. */
  readonly messagesPerSession?: number;
  /** Rows per agent memory database. */
  readonly memoryRows?: number;
  /** Incompressible media blobs in the workspace, and their size. */
  readonly mediaFiles?: number;
  readonly mediaBytes?: number;
  /** Markdown notes in the workspace. */
  readonly notes?: number;
  readonly seed?: number;
}

/** A deterministic pseudo-random generator (mulberry32), so samples are reproducible. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS =
  'agent memory tool call user assistant deploy gateway tenant session channel telegram slack whatsapp invoice report schedule summary translate search calendar reminder budget token'.split(
    ' ',
  );

function sentence(random: () => number, words: number): string {
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(WORDS[Math.floor(random() * WORDS.length)]!);
  return out.join(' ');
}

function randomBytes(random: () => number, size: number): Buffer {
  const buffer = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i += 4) buffer.writeUInt32LE(Math.floor(random() * 0x100000000), Math.min(i, size - 4));
  return buffer;
}

export function createSampleTenant(tenantDir: string, options: SampleTenantOptions = {}): void {
  const random = seededRandom(options.seed ?? 42);
  const sessions = options.sessions ?? 12;
  const messages = options.messagesPerSession ?? 40;
  const write = (relative: string, content: string | Buffer, mode = 0o644) => {
    const file = path.join(tenantDir, relative);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, content, { mode });
  };

  write('config.json', JSON.stringify({ displayName: 'Acme Corp', model: 'claude-sonnet', maxAgents: 4, timezone: 'Europe/Berlin' }, null, 2));
  write('token.sha256', `${createHash('sha256').update('acme-secret-token').digest('hex')}\n`, 0o600);

  for (let s = 0; s < sessions; s++) {
    const lines: string[] = [];
    for (let m = 0; m < messages; m++) {
      lines.push(JSON.stringify({ ts: 1_760_000_000_000 + s * 1e6 + m * 1e3, role: m % 2 ? 'assistant' : 'user', text: sentence(random, 12 + Math.floor(random() * 40)) }));
    }
    write(`sessions/agent-${s % 3}/session-${String(s).padStart(4, '0')}.jsonl`, `${lines.join('\n')}\n`);
  }

  mkdirSync(path.join(tenantDir, 'memory'), { recursive: true });
  for (const agent of ['agent-0', 'agent-1']) {
    const db = sqliteDriver().open(path.join(tenantDir, 'memory', `${agent}.sqlite`));
    db.exec('PRAGMA journal_mode = WAL');
    db.exec('CREATE TABLE IF NOT EXISTS memories (id INTEGER PRIMARY KEY, created INTEGER, topic TEXT, body TEXT)');
    const insert = db.prepare('INSERT INTO memories (created, topic, body) VALUES (?, ?, ?)');
    const rows = options.memoryRows ?? 300;
    db.exec('BEGIN');
    for (let i = 0; i < rows; i++) insert.run(1_760_000_000 + i, sentence(random, 2), sentence(random, 30));
    db.exec('COMMIT');
    db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
    db.close();
  }

  write('channels/telegram.json', JSON.stringify({ botToken: '123456:telegram-test-token', chatIds: [1001, 1002] }), 0o600);
  write('channels/slack.json', JSON.stringify({ botToken: 'xoxb-slack-test-token', team: 'T0001' }), 0o600);
  write('channels/whatsapp/creds.json', JSON.stringify({ pairedDevice: 'device-1', noiseKey: randomBytes(random, 32).toString('base64') }), 0o600);

  const usage: string[] = [];
  for (let day = 0; day < 60; day++) usage.push(JSON.stringify({ day, inputTokens: Math.floor(random() * 1e6), outputTokens: Math.floor(random() * 2e5), usd: +(random() * 20).toFixed(4) }));
  write('usage/costs.jsonl', `${usage.join('\n')}\n`);
  write('cron/jobs.json', JSON.stringify([{ name: 'daily-digest', schedule: '0 8 * * *', agent: 'agent-0' }], null, 2));

  for (let n = 0; n < (options.notes ?? 20); n++) {
    write(`workspace/notes/note-${n}.md`, `# Note ${n}\n\n${sentence(random, 200)}\n`);
  }
  for (let b = 0; b < (options.mediaFiles ?? 2); b++) {
    write(`workspace/media/blob-${b}.bin`, randomBytes(random, options.mediaBytes ?? 256 * 1024));
  }
  write('workspace/scripts/run.sh', '#!/bin/sh\necho hello from the workspace\n', 0o755);
  mkdirSync(path.join(tenantDir, 'workspace', 'empty-dir'), { recursive: true });
  write('workspace/Ünïcode nötes ✓.md', 'names survive the round trip\n');
  symlinkSync('notes/note-0.md', path.join(tenantDir, 'workspace', 'latest-note.md'));
  utimesSync(path.join(tenantDir, 'config.json'), new Date('2026-01-02T03:04:05Z'), new Date('2026-01-02T03:04:05Z'));

  write('pty/session-1.log', 'ephemeral terminal state: never backed up\n');
}
