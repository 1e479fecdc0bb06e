// The steps that move a restore's trees to trash or delete them (the commit's tidy-up, `recover
// --keep`, the orphan asides and leftovers every command's sweep settles) moved whatever was
// under the aside, slot, staging or scratch name: the base dir's owner (the service user)
// renamed a root-only tenant to such a name, at once or between a step's judgement and its
// rename, and root deleted it. Now the journal records which tree each name holds (its inode),
// a leftover of a scratch area carries the trash marker, and anything else under such a name
// is left, renamed `….not-removed`. Root only (chown); the renames stand for what that user can do.

import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { pausedCli } from './helpers/processes.js';
import { openDatabase } from './helpers/sqlite.js';
import { runCli, tempDir } from './helpers/tree.js';

const isRoot = process.geteuid?.() === 0;
/** The service user owning the base dir: any uid but root's will do. */
const SERVICE_UID = 4242;
const RANDOM = '0123456789ab';

let dir: ReturnType<typeof tempDir>;
let base: string;
beforeEach(() => {
  dir = tempDir();
  base = path.join(dir.path, 'tenants');
  mkdirSync(path.join(base, 'acme'), { recursive: true, mode: 0o755 });
  writeFileSync(path.join(base, 'acme', 'config.json'), '{"tenant":"acme"}');
  chownSync(path.join(base, 'acme'), SERVICE_UID, SERVICE_UID);
  chownSync(base, SERVICE_UID, SERVICE_UID);
  mkdirSync(path.join(base, 'beta'), { mode: 0o700 });
  writeFileSync(path.join(base, 'beta', 'config.json'), 'root-only beta');
});
afterEach(() => dir.cleanup());

const cli = (args: string[]) => runCli(['--tenants-dir', base, ...args]);
const betaAt = (name: string) => readFileSync(path.join(base, name, 'config.json'), 'utf8');


/** Row 9 of docs/crash-safety.md: a `--force` restore killed with the old tenant aside, the slot re-created since: a decision needed. */
function needDecision(): void {
  const killed = runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', backupAcme(), '--force'], { env: { OPENCLAW_TEST_CRASH_AT: 'commit:old-moved-aside' } });
  expect(killed.status).not.toBe(0);
  mkdirSync(path.join(base, 'acme'));
  writeFileSync(path.join(base, 'acme', 'session.jsonl'), 'written since\n');
  expect(cli(['tenants', 'recover', 'acme']).status).toBe(3);
}

function backupAcme(): string {
  const archive = path.join(dir.path, 'acme.tar.zst');
  expect(cli(['tenants', 'backup', 'acme', '--to', archive]).status).toBe(0);
  return archive;
}

describe.skipIf(!isRoot)("a root-only tenant the base dir's owner renamed to one of the tool's names", () => {
  for (const kind of ['aside', 'staging', 'scratch']) {
    it(`is left by root's sweep under a ${kind} name, renamed .not-removed`, () => {
      renameSync(path.join(base, 'beta'), path.join(base, `.openclaw-${kind}-acme-${RANDOM}`));
      const list = cli(['tenants', 'list', '--names']);
      expect(list.status).toBe(0);
      expect(list.stdout).toBe('acme\n');
      const left = `openclaw-${kind}-acme-${RANDOM}.not-removed`;
      expect(readdirSync(base).sort()).toEqual(['acme', left]);
      expect(betaAt(left)).toBe('root-only beta');
    });
  }

  it("an orphan aside (an older version's) of the base dir's owner beside its tenant is still removed", () => {
    const aside = path.join(base, `.openclaw-aside-acme-${RANDOM}`);
    mkdirSync(aside);
    writeFileSync(path.join(aside, 'config.json'), 'superseded');
    chownSync(aside, SERVICE_UID, SERVICE_UID);
    expect(cli(['tenants', 'list', '--names']).status).toBe(0);
    expect(readdirSync(base).sort()).toEqual(['acme', 'beta']);
  });

  it("a journal the base dir's owner wrote does not have root trash a root-only slot", () => {
    chownSync(path.join(base, 'acme'), 0, 0);
    const staging = `.openclaw-staging-acme-${RANDOM}`;
    mkdirSync(path.join(base, staging));
    chownSync(path.join(base, staging), SERVICE_UID, SERVICE_UID);
    const inode = String(execFileSync('stat', ['-c', '%i', path.join(base, 'acme')])).trim();
    const journal = path.join(base, '.openclaw-journal-acme.json');
    writeFileSync(journal, JSON.stringify({ tenant: 'acme', phase: 'keeping', keep: 'new', staging, inodes: { slot: inode } }));
    chownSync(journal, SERVICE_UID, SERVICE_UID);

    expect(cli(['tenants', 'list', '--names']).status).toBe(0);
    const left = readdirSync(base).filter((name) => name.endsWith('.not-removed'));
    expect(left).toEqual([expect.stringMatching(/^openclaw-slot-acme-[0-9a-f]{12}\.not-removed$/)]);
    expect(readFileSync(path.join(base, left[0]!, 'config.json'), 'utf8')).toBe('{"tenant":"acme"}');
  });

  it("restore --force: a root-only tenant swapped in under the aside name before the tidy-up is left, and the restore says so", async () => {
    const archive = backupAcme();
    const restore = await pausedCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive, '--force'], 'commit:new-moved-in');
    const aside = readdirSync(base).find((name) => name.startsWith('.openclaw-aside-acme-'))!;
    renameSync(path.join(base, aside), path.join(dir.path, 'old-acme'));
    renameSync(path.join(base, 'beta'), path.join(base, aside));
    const { status, stdout } = await restore.go();
    expect(status).toBe(0);
    const left = `${aside.slice(1)}.not-removed`;
    expect(stdout).toContain(`note: ${path.join(base, aside)} is named as the tenant a restore moved aside but is not the tree it moved there, owner uid 0: nothing in it was removed; it is now ${path.join(base, left)}`);
    expect(readdirSync(base).sort()).toEqual(['acme', left]);
    expect(betaAt(left)).toBe('root-only beta');
  });

  it('restore --force: a root-only tenant swapped in under the trash name before its removal is left', async () => {
    const archive = backupAcme();
    const restore = await pausedCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive, '--force'], 'commit:old-moved-to-trash');
    const trash = readdirSync(base).find((name) => name.startsWith('.openclaw-trash-acme-'))!;
    renameSync(path.join(base, trash), path.join(dir.path, 'old-acme'));
    renameSync(path.join(base, 'beta'), path.join(base, trash));
    expect((await restore.go()).status).toBe(0);
    expect(betaAt(`${trash.slice(1)}.not-removed`)).toBe('root-only beta');
  });

  it('a killed restore: a root-only tenant swapped in under its staging name is left by the next command', async () => {
    const archive = backupAcme();
    const restore = await pausedCli(['--tenants-dir', base, 'tenants', 'restore', '--from', archive, '--as', 'copy'], 'restore:journal-written');
    const staging = readdirSync(base).find((name) => name.startsWith('.openclaw-staging-copy-'))!;
    renameSync(path.join(base, staging), path.join(dir.path, 'staging'));
    renameSync(path.join(base, 'beta'), path.join(base, staging));
    // Killed there, its journal names the staging directory it made.
    expect(readFileSync(path.join(base, '.openclaw-journal-copy.json'), 'utf8')).toMatch(/"inodes":\{"staging":"\d+"\}/);
    expect((await restore.kill()).status).not.toBe(0);
    expect(cli(['tenants', 'list', '--names']).status).toBe(0);
    expect(betaAt(`${staging.slice(1)}.not-removed`)).toBe('root-only beta');
    expect(existsSync(path.join(base, '.openclaw-journal-copy.json'))).toBe(false);
  });

  it('recover --keep old: a root-only tenant swapped in under the slot name after the decision is left', async () => {
    needDecision();
    const recover = await pausedCli(['--tenants-dir', base, 'tenants', 'recover', 'acme', '--keep', 'old'], 'keep:journal-written');
    renameSync(path.join(base, 'acme'), path.join(dir.path, 'slot'));
    renameSync(path.join(base, 'beta'), path.join(base, 'acme'));
    const { status, stderr } = await recover.go();
    expect(status, stderr).toBe(0);
    const left = readdirSync(base).filter((name) => name.endsWith('.not-removed'));
    expect(left).toEqual([expect.stringMatching(/^openclaw-slot-acme-[0-9a-f]{12}\.not-removed$/)]);
    expect(betaAt(left[0]!)).toBe('root-only beta');
    expect(readFileSync(path.join(base, 'acme', 'config.json'), 'utf8')).toBe('{"tenant":"acme"}');
  });

  it("recover --keep old: a symlink swapped in under the kept aside's name does not have root unlink the trash marker where it leads", async () => {
    needDecision();
    // Root's directory outside the base dir, whose marker the base dir's owner would have root unlink.
    const outside = path.join(dir.path, 'outside');
    mkdirSync(outside, { mode: 0o700 });
    writeFileSync(path.join(outside, '.openclaw-trash'), "root's, outside the base dir");
    const recover = await pausedCli(['--tenants-dir', base, 'tenants', 'recover', 'acme', '--keep', 'old'], 'keep:slot-moved-to-trash');
    const aside = readdirSync(base).find((name) => name.startsWith('.openclaw-aside-acme-'))!;
    renameSync(path.join(base, aside), path.join(dir.path, 'kept'));
    symlinkSync(outside, path.join(base, aside));
    const { status, stderr } = await recover.go();
    expect(status, stderr).toBe(0);
    expect(readFileSync(path.join(outside, '.openclaw-trash'), 'utf8')).toBe("root's, outside the base dir");
  });

  it("an encrypted backup killed in a base dir its owner owns leaves a marked scratch area, which root's next command removes", () => {
    const key = path.join(dir.path, 'key.txt');
    execFileSync('age-keygen', ['-o', key], { stdio: 'pipe' });
    const recipient = execFileSync('age-keygen', ['-y', key]).toString().trim();
    // A database, which the backup snapshots into its scratch area.
    const db = openDatabase(path.join(base, 'acme', 'memory.sqlite'));
    db.exec('CREATE TABLE t (v TEXT); INSERT INTO t VALUES (1)');
    db.close();
    chownSync(path.join(base, 'acme', 'memory.sqlite'), SERVICE_UID, SERVICE_UID);
    const killed = runCli(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(dir.path, 'acme.tar.zst.age'), '--encrypt-to', recipient], { env: { OPENCLAW_TEST_CRASH_AT: 'backup:scratch-created' } });
    expect(killed.status).not.toBe(0);
    expect(readdirSync(base).filter((name) => name.startsWith('.openclaw-scratch-acme-'))).toHaveLength(1);
    expect(cli(['tenants', 'list', '--names']).status).toBe(0);
    expect(readdirSync(base).sort()).toEqual(['acme', 'beta']);
  });
});
