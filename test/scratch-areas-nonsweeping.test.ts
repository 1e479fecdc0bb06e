// A killed encrypting backup leaves its scratch area in the base dir: plaintext copies of the
// tenant's files (backup/temp-area.ts). Only the commands that sweep the base dir removed it,
// so it outlived any number of `backups`, `verify --from`, `prune` and dry runs. Now those
// remove a dead area of this user's too (base-dir-sweep.ts removeDeadScratchAreas), and dry
// runs, which change nothing, name it instead. A live backup's area is left alone.

import { execFileSync } from 'node:child_process';
import { chownSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { pausedCli } from './helpers/processes.js';
import { openDatabase } from './helpers/sqlite.js';
import { runCli, tempDir } from './helpers/tree.js';

let dir: ReturnType<typeof tempDir>;
let base: string;
let store: string;
let recipient: string;
beforeEach(() => {
  dir = tempDir();
  base = path.join(dir.path, 'tenants');
  store = path.join(dir.path, 'store');
  mkdirSync(path.join(base, 'acme'), { recursive: true });
  mkdirSync(store);
  writeFileSync(path.join(base, 'acme', 'config.json'), '{"tenant":"acme"}');
  // A database, which the backup snapshots into its scratch area.
  const db = openDatabase(path.join(base, 'acme', 'memory.sqlite'));
  db.exec("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('secret')");
  db.close();
  const key = path.join(dir.path, 'key.txt');
  execFileSync('age-keygen', ['-o', key], { stdio: 'pipe' });
  recipient = execFileSync('age-keygen', ['-y', key]).toString().trim();
});
afterEach(() => dir.cleanup());

const cli = (args: string[]) => runCli(['--tenants-dir', base, ...args]);
const scratchAreas = () => readdirSync(base).filter((name) => name.startsWith('.openclaw-scratch-acme-'));
const encryptingBackup = (to: string) => ['tenants', 'backup', 'acme', '--to', path.join(store, to), '--encrypt-to', recipient];

/** An encrypting backup killed once its scratch area is made: the area it leaves. */
function killedEncryptingBackup(): string {
  const killed = runCli(['--tenants-dir', base, ...encryptingBackup('killed.tar.zst.age')], { env: { OPENCLAW_TEST_CRASH_AT: 'backup:scratch-created' } });
  expect(killed.status).not.toBe(0);
  const areas = scratchAreas();
  expect(areas).toHaveLength(1);
  return areas[0]!;
}

describe("a killed encrypting backup's plaintext scratch area", () => {
  const plain = () => path.join(store, 'plain.tar.zst');
  const removing: Record<string, () => string[]> = {
    'tenants backups': () => ['tenants', 'backups', 'acme', '--in', store],
    'tenants verify --from': () => ['tenants', 'verify', '--from', plain(), '--no-record'],
    'tenants prune': () => ['tenants', 'prune', 'acme', '--in', store, '--keep-last', '5'],
  };
  for (const [command, args] of Object.entries(removing)) {
    it(`is removed by ${command}, which never swept the base dir`, () => {
      expect(cli(['tenants', 'backup', 'acme', '--to', plain()]).status).toBe(0);
      killedEncryptingBackup();
      const run = cli(args());
      expect(run.status, run.stderr).toBe(0);
      // Only the area: its dead lock, which holds nothing of the tenant's, is left to a sweeping command.
      expect(scratchAreas()).toEqual([]);
    });
  }

  const dryRuns: Record<string, () => string[]> = {
    'tenants backup --dry-run': () => ['tenants', 'backup', 'acme', '--to', path.join(store, 'next.tar.zst'), '--dry-run'],
    'tenants restore --dry-run': () => ['tenants', 'restore', '--from', plain(), '--as', 'other', '--dry-run'],
    'tenants prune --dry-run': () => ['tenants', 'prune', 'acme', '--in', store, '--keep-last', '5', '--dry-run'],
  };
  for (const [command, args] of Object.entries(dryRuns)) {
    it(`is named and kept by ${command}, which changes nothing`, () => {
      expect(cli(['tenants', 'backup', 'acme', '--to', plain()]).status).toBe(0);
      const area = killedEncryptingBackup();
      const run = cli(args());
      expect(run.status, run.stderr).toBe(0);
      expect(run.stderr).toContain(`openclaw: ${area} in ${base}: a killed encrypted backup's scratch area holds plaintext copies of tenant files; a dry run removes nothing: the same command without --dry-run (or tenants list) removes it`);
      expect(scratchAreas()).toEqual([area]);
    });
  }

  it('is not named by a dry run once it is gone, nor is anything else said', () => {
    const run = cli(['tenants', 'backup', 'acme', '--to', path.join(store, 'next.tar.zst'), '--dry-run']);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).not.toContain('scratch');
  });
});

describe("a live encrypting backup's scratch area", () => {
  it('is left by tenants backups while the backup runs, and the backup then completes', async () => {
    const live = await pausedCli(['--tenants-dir', base, ...encryptingBackup('live.tar.zst.age')], 'backup:scratch-created');
    try {
      const [area] = scratchAreas();
      expect(area).toBeDefined();
      const listed = cli(['tenants', 'backups', 'acme', '--in', store]);
      expect(listed.status, listed.stderr).toBe(0);
      const dry = cli(['tenants', 'backup', 'acme', '--to', path.join(store, 'next.tar.zst'), '--dry-run']);
      expect(dry.stderr).not.toContain('scratch');
      expect(scratchAreas()).toEqual([area]);
    } finally {
      const { status, stderr } = await live.go();
      expect(status, stderr).toBe(0);
    }
    expect(scratchAreas()).toEqual([]);
    expect(readdirSync(store)).toContain('live.tar.zst.age');
  });
});

describe.skipIf(process.geteuid?.() !== 0)("a dead scratch area another user owns", () => {
  it('is left by tenants backups (only this user\'s are removed there; a sweeping command judges the rest)', () => {
    const area = killedEncryptingBackup();
    chownSync(path.join(base, area), 4242, 4242);
    const run = cli(['tenants', 'backups', 'acme', '--in', store]);
    expect(run.status, run.stderr).toBe(0);
    expect(scratchAreas()).toEqual([area]);
  });
});

describe('what a dead backup of this host did not leave', () => {
  it('is left by tenants backups: an area whose lock names a holder on another host, a symlink under a scratch name and what it points at', () => {
    const area = killedEncryptingBackup();
    // The same base dir seen from another host (a shared disk): its holder is not judged here.
    const lockPath = path.join(base, '.openclaw-lock-acme');
    const lock = JSON.parse(readFileSync(lockPath, 'utf8')) as { hostId: string; host: string };
    writeFileSync(lockPath, JSON.stringify({ ...lock, host: 'elsewhere', hostId: lock.hostId.replace(/./g, '0') }));
    const kept = cli(['tenants', 'backups', 'acme', '--in', store]);
    expect(kept.status, kept.stderr).toBe(0);
    expect(scratchAreas()).toEqual([area]);

    // With the holder judged gone again, the area goes; a symlink under a scratch name stays, and so does its target.
    writeFileSync(lockPath, JSON.stringify(lock));
    const target = path.join(dir.path, 'elsewhere');
    mkdirSync(target);
    writeFileSync(path.join(target, 'kept.txt'), 'kept');
    writeFileSync(path.join(target, '.openclaw-trash'), 'openclaw trash 1\n');
    symlinkSync(target, path.join(base, '.openclaw-scratch-acme-0123456789ab'));
    const run = cli(['tenants', 'backups', 'acme', '--in', store]);
    expect(run.status, run.stderr).toBe(0);
    expect(scratchAreas()).toEqual(['.openclaw-scratch-acme-0123456789ab']);
    expect(readdirSync(target).sort()).toEqual(['.openclaw-trash', 'kept.txt']);
  });
});

describe.skipIf(process.geteuid?.() !== 0)('a directory under a scratch name that the tool did not make', () => {
  it('is neither removed by tenants backups nor named by a dry run as removable', () => {
    // The base dir is the service user's; root's directory there carries no marker (made
    // without procfs, or by an older version): no command removes it unasked. The dry run had
    // said "the same command without --dry-run (or tenants list) removes it"; backups left it.
    chownSync(base, 4242, 4242);
    const name = '.openclaw-scratch-acme-0123456789ab';
    mkdirSync(path.join(base, name), { mode: 0o700 });
    writeFileSync(path.join(base, name, 'copy'), 'not the tool\'s');
    const dry = cli(['tenants', 'backup', 'acme', '--to', path.join(store, 'next.tar.zst'), '--dry-run']);
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stderr).not.toContain(name);
    const run = cli(['tenants', 'backups', 'acme', '--in', store]);
    expect(run.status, run.stderr).toBe(0);
    expect(scratchAreas()).toEqual([name]);
    expect(readdirSync(path.join(base, name))).toEqual(['copy']);
  });
});
