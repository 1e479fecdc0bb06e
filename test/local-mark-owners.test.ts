// The hidden `.NAME.openclaw-verified` file beside a local archive (verified-mark.ts) is
// taken only from whoever may have written the archive as this tool: its owner must be the
// archive's, and this process's user, root or the directory's owner, and neither its group
// nor others may write it. Before, in a backup directory others may write in (1777, root's),
// another user's junk file with a record beside it naming tenant "acme" and the time now
// was listed as acme's newest backup, and root's `prune --keep-last 1` removed both real
// backups, which that user could not have removed (the sticky bit).

import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { formatIdentity, generateIdentity } from '../shared/age/keys.js';
import { archiveNotTrusted, formatLocalStoredRecord, markNotTrusted } from '../shared/storage/verified-mark.js';
import { makeTenants } from './helpers/backups.js';
import { runMain } from './helpers/run-main.js';
import { tempDir } from './helpers/tree.js';

const OTHER = 1000;

describe('whose marks a listing takes', () => {
  it('takes its own, root\'s and the directory owner\'s, owned as the archive is and writable by no one else', () => {
    const mark = { uid: 1000, mode: 0o100600 };
    expect(markNotTrusted({ mark, archiveUid: 1000, directoryUid: 0, self: 1000 })).toBeUndefined();
    expect(markNotTrusted({ mark, archiveUid: 1000, directoryUid: 1000, self: 0 })).toBeUndefined();
    expect(markNotTrusted({ mark: { uid: 0, mode: 0o100600 }, archiveUid: 0, directoryUid: 1000, self: 1000 })).toBeUndefined();
    expect(markNotTrusted({ mark, archiveUid: 1000, directoryUid: 0, self: 0 })).toBe("owned by uid 1000, not this process's user (root)");
    expect(markNotTrusted({ mark: { uid: 2000, mode: 0o100600 }, archiveUid: 2000, directoryUid: 3000, self: 1000 })).toBe(
      "owned by uid 2000, neither this process's user (uid 1000), root, nor the directory's owner (uid 3000)",
    );
    expect(markNotTrusted({ mark, archiveUid: 0, directoryUid: 1000, self: 0 })).toBe('owned by uid 1000, the archive by uid 0');
    // Root's (sudo … tenants verify) beside an archive of the user running it or of the directory's owner, whose own marks are taken; not beside anyone else's (who can rewrite it keeping its size and mtime).
    expect(markNotTrusted({ mark: { uid: 0, mode: 0o100600 }, archiveUid: 1000, directoryUid: 1000, self: 0 })).toBeUndefined();
    expect(markNotTrusted({ mark: { uid: 0, mode: 0o100600 }, archiveUid: 1000, directoryUid: 0, self: 1000 })).toBeUndefined();
    expect(markNotTrusted({ mark: { uid: 0, mode: 0o100600 }, archiveUid: 1000, directoryUid: 0, self: 0 })).toBe('owned by uid 0, the archive by uid 1000');
    expect(markNotTrusted({ mark: { uid: 0, mode: 0o100620 }, archiveUid: 0, directoryUid: 0, self: 0 })).toBe('writable by its group (mode 0620; saved 0600)');
    expect(markNotTrusted({ mark: { uid: 0, mode: 0o100602 }, archiveUid: 0, directoryUid: 0, self: 0 })).toBe('writable by others (mode 0602; saved 0600)');
  });
});

describe('whose archives a listing counts', () => {
  const at = '/var/backups/acme.tar.zst';
  it("counts its own, root's and the listed directory owner's, writable by no one else", () => {
    const archive = { uid: 1000, mode: 0o100600 };
    expect(archiveNotTrusted({ path: at, archive, directoryUid: 0, self: 1000 })).toBeUndefined();
    expect(archiveNotTrusted({ path: at, archive, directoryUid: 1000, self: 0 })).toBeUndefined();
    expect(archiveNotTrusted({ path: at, archive: { uid: 0, mode: 0o100600 }, directoryUid: 1000, self: 1000 })).toBeUndefined();
  });

  it('says, for one it does not count, the one command that makes it counted if it is a backup the user trusts', () => {
    // A copy made by cp or aws s3 cp under umask 002: before, "writable by its group (mode 0664; saved 0600)" and no way out.
    expect(archiveNotTrusted({ path: at, archive: { uid: 0, mode: 0o100664 }, directoryUid: 0, self: 0 })).toBe(`writable by its group (mode 0664): chmod go-w ${at} if it is a backup you trust`);
    expect(archiveNotTrusted({ path: at, archive: { uid: 1000, mode: 0o100602 }, directoryUid: 0, self: 1000 })).toBe(`writable by others (mode 0602): chmod go-w ${at} if it is a backup you trust`);
    expect(archiveNotTrusted({ path: at, archive: { uid: 1000, mode: 0o100600 }, directoryUid: 0, self: 0 })).toBe(
      `owned by uid 1000, not this process's user (root): chown 0 ${at} if it is a backup you trust`,
    );
    // Only root can give a file away: a user is told to ask root; another's file writable by its group needs both.
    expect(archiveNotTrusted({ path: at, archive: { uid: 1001, mode: 0o100664 }, directoryUid: 0, self: 1000 })).toBe(
      `owned by uid 1001, neither this process's user (uid 1000) nor root: have root run chown 1000 ${at} && chmod go-w ${at} if it is a backup you trust`,
    );
    // Each owner named once: root listing its own directory had been told of uid 0 three times.
    const archive = { uid: 1000, mode: 0o100600 };
    expect(archiveNotTrusted({ path: at, archive, directoryUid: 3000, self: 0 })).toBe(`owned by uid 1000, neither this process's user (root) nor the owner of the directory listed (uid 3000): chown 0 ${at} if it is a backup you trust`);
    expect(archiveNotTrusted({ path: at, archive: { uid: 2000, mode: 0o100600 }, directoryUid: 3000, self: 1000 })).toBe(
      `owned by uid 2000, neither this process's user (uid 1000), root, nor the owner of the directory listed (uid 3000): have root run chown 1000 ${at} if it is a backup you trust`,
    );
    // The path as one shell word; one with a control character as listings show it (one line).
    expect(archiveNotTrusted({ path: "/b/it's here.tar.zst", archive: { uid: 0, mode: 0o100660 }, directoryUid: 0, self: 0 })).toBe(`writable by its group (mode 0660): chmod go-w '/b/it'\\''s here.tar.zst' if it is a backup you trust`);
    expect(archiveNotTrusted({ path: '/b/a\nb.tar.zst', archive: { uid: 0, mode: 0o100660 }, directoryUid: 0, self: 0 })).toBe('writable by its group (mode 0660): chmod go-w "/b/a\\nb.tar.zst" if it is a backup you trust');
  });
});

describe('a group-writable copy of a backup (cp under umask 002)', () => {
  const dir = tempDir('openclaw-archive-modes-');
  afterAll(() => dir.cleanup());

  it('is listed as not counted with the chmod that makes it counted; once run, it is counted', async () => {
    const tenantsDir = path.join(dir.path, 'tenants');
    makeTenants(tenantsDir, ['acme']);
    const file = path.join(dir.path, 'out', 'acme.tar.zst');
    expect((await runMain(['--tenants-dir', tenantsDir, 'tenants', 'backup', 'acme', '--to', file])).status).toBe(0);
    chmodSync(file, 0o664);
    const listed = await runMain(['--tenants-dir', tenantsDir, 'tenants', 'backups', 'acme', '--in', path.dirname(file)]);
    expect(listed.stdout).toContain(`(not counted as a backup: writable by its group (mode 0664): chmod go-w ${file} if it is a backup you trust)`);
    execFileSync('sh', ['-c', /chmod go-w \S+/.exec(listed.stdout)![0]]); // as a user would copy it from the line
    const again = await runMain(['--json', '--tenants-dir', tenantsDir, 'tenants', 'backups', 'acme', '--in', path.dirname(file)]);
    expect((JSON.parse(again.stdout).backups as { untrusted?: string }[])[0]?.untrusted).toBeUndefined();
  });
});

describe.skipIf(process.geteuid?.() !== 0)("another user's archive of a tenant named as root's (root, a directory others may write in)", () => {
  // Our plain archive names its tenant in its own bytes, and anyone can make one: another user
  // backs up a tenant of their own named acme into root's 1777 backup directory. Before, root's
  // `tenants backups acme` listed it as acme's newest backup, `prune acme --keep-last 1` removed
  // both real backups in its favour, and `backup --all --skip-existing` skipped acme. The record
  // rule above was also passed by a subdirectory that user made there (its owner was taken as
  // "the directory's owner").
  const dir = tempDir('openclaw-archive-owners-');
  const tenantsDir = path.join(dir.path, 'tenants');
  const othersTenants = path.join(dir.path, 'others');
  const out = path.join(dir.path, 'out');
  const key = generateIdentity();

  beforeAll(async () => {
    makeTenants(tenantsDir, ['acme']);
    mkdirSync(path.join(othersTenants, 'acme', 'workspace'), { recursive: true });
    writeFileSync(path.join(othersTenants, 'acme', 'workspace', 'planted.txt'), 'not acme\n');
    mkdirSync(out);
    for (const n of [1, 2]) {
      const run = await runMain(['--tenants-dir', tenantsDir, 'tenants', 'backup', 'acme', '--to', path.join(out, `acme-${n}.tar.zst`)]);
      expect(run.status, run.stderr).toBe(0);
    }
    chmodSync(out, 0o1777);
  });
  afterAll(() => dir.cleanup());

  /** The other user's backup of their own "acme" at `to` (made by the tool, then given to that user as if they had run it). */
  async function othersBackup(to: string): Promise<void> {
    const run = await runMain(['--tenants-dir', othersTenants, 'tenants', 'backup', 'acme', '--to', to]);
    expect(run.status, run.stderr).toBe(0);
    chownSync(to, OTHER, OTHER);
  }

  it("is listed with whose it is and counted by no rule: prune --keep-last 1 keeps root's newest, removes only root's older one", async () => {
    await othersBackup(path.join(out, 'acme-9.tar.zst'));
    const listed = await runMain(['--json', '--tenants-dir', tenantsDir, 'tenants', 'backups', 'acme', '--in', out]);
    const planted = (JSON.parse(listed.stdout).backups as { location: string; untrusted?: string }[]).find((backup) => backup.location.endsWith('acme-9.tar.zst'));
    expect(planted?.untrusted).toBe(`owned by uid ${OTHER}, not this process's user (root): chown 0 ${path.join(out, 'acme-9.tar.zst')} if it is a backup you trust`);
    const pruned = await runMain(['--tenants-dir', tenantsDir, 'tenants', 'prune', 'acme', '--in', out, '--keep-last', '1']);
    expect(pruned.status, pruned.stderr).toBe(0);
    expect(pruned.stdout).toContain("another user's file, or writable by others: counted by no rule");
    expect(existsSync(path.join(out, 'acme-2.tar.zst'))).toBe(true);
    expect(existsSync(path.join(out, 'acme-1.tar.zst'))).toBe(false);
    expect(existsSync(path.join(out, 'acme-9.tar.zst'))).toBe(true);
  });

  it("is not taken from a subdirectory that user made there either, nor is a record beside their junk file there", async () => {
    const theirs = path.join(out, 'theirs');
    mkdirSync(theirs);
    await othersBackup(path.join(theirs, 'acme-10.tar.zst'));
    const junk = path.join(theirs, 'acme-11.tar.zst.age');
    writeFileSync(junk, Buffer.concat([Buffer.from('age-encryption.org/v1\n'), Buffer.alloc(300, 7)]));
    const record = path.join(theirs, '.acme-11.tar.zst.age.openclaw-verified');
    writeFileSync(record, formatLocalStoredRecord({ tenant: 'acme', createdAt: new Date().toISOString(), toolVersion: '0.1.0', formatVersion: 2 }, statSync(junk)), { mode: 0o600 });
    for (const file of [junk, record]) chownSync(file, OTHER, OTHER);
    chownSync(theirs, OTHER, OTHER);
    const pruned = await runMain(['--json', '--tenants-dir', tenantsDir, 'tenants', 'prune', 'acme', '--in', out, '--keep-last', '1']);
    expect(pruned.status, pruned.stderr).toBe(0);
    const result = JSON.parse(pruned.stdout) as { keep: { location: string; reasons: string[] }[]; removed: number };
    expect(result.removed).toBe(0);
    expect(result.keep.find((entry) => entry.location.endsWith('acme-2.tar.zst'))?.reasons).toEqual(['last']);
    expect(result.keep.find((entry) => entry.location.endsWith('acme-10.tar.zst'))?.reasons[0]).toContain("another user's file");
    expect(result.keep.some((entry) => entry.location.endsWith('acme-11.tar.zst.age'))).toBe(false);
  });

  it('does not make backup --skip-existing skip the tenant: it fails, naming whose the file is', async () => {
    const next = path.join(dir.path, 'next');
    mkdirSync(next);
    chmodSync(next, 0o1777);
    await othersBackup(path.join(next, 'acme.tar.zst'));
    const run = await runMain(['--json', '--tenants-dir', tenantsDir, 'tenants', 'backup', '--all', '--to', path.join(next, '{tenant}.tar.zst'), '--skip-existing']);
    expect(run.status).toBe(1);
    expect(JSON.parse(run.stdout).results[0]).toMatchObject({ tenant: 'acme', ok: false, error: { code: 'DESTINATION_EXISTS', message: expect.stringContaining(`owned by uid ${OTHER}`) } });
  });

  it('does not make backup --skip-existing skip the tenant from a {tenant} directory that user made there: judged as tenants backups --in the directory --to names', async () => {
    // Before, the archive was judged in its own directory, the other user's: acme was skipped (never backed up), exit 0.
    const shared = path.join(dir.path, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    const theirs = path.join(shared, 'acme');
    mkdirSync(theirs);
    await othersBackup(path.join(theirs, 'day.tar.zst'));
    chownSync(theirs, OTHER, OTHER);
    const run = await runMain(['--json', '--tenants-dir', tenantsDir, 'tenants', 'backup', '--all', '--to', path.join(shared, '{tenant}', 'day.tar.zst'), '--skip-existing']);
    expect(run.status).toBe(1);
    expect(JSON.parse(run.stdout).results[0]).toMatchObject({ tenant: 'acme', ok: false, error: { code: 'DESTINATION_EXISTS', message: expect.stringContaining(`owned by uid ${OTHER}`) } });
    // Root's own archives below {tenant} directories root made are skipped as before.
    const own = path.join(dir.path, 'own');
    const template = path.join(own, '{tenant}', 'day.tar.zst');
    mkdirSync(own);
    chmodSync(own, 0o1777);
    expect((await runMain(['--tenants-dir', tenantsDir, 'tenants', 'backup', '--all', '--to', template])).status).toBe(0);
    const again = await runMain(['--json', '--tenants-dir', tenantsDir, 'tenants', 'backup', '--all', '--to', template, '--skip-existing']);
    expect(again.status, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).results[0]).toMatchObject({ tenant: 'acme', ok: true, skipped: 'already there' });
  });
});

describe.skipIf(process.geteuid?.() !== 0)('a record planted in a directory others may write in (root)', () => {
  const dir = tempDir('openclaw-mark-owners-');
  const tenantsDir = path.join(dir.path, 'tenants');
  const out = path.join(dir.path, 'out', 'acme');
  const key = generateIdentity();

  beforeAll(async () => {
    makeTenants(tenantsDir, ['acme']);
    for (const n of [1, 2]) {
      const run = await runMain(['--tenants-dir', tenantsDir, 'tenants', 'backup', 'acme', '--to', path.join(out, `acme-${n}.tar.zst.age`), '--encrypt-to', key.recipient.text]);
      expect(run.status, run.stderr).toBe(0);
    }
    chmodSync(out, 0o1777);
  });
  afterAll(() => dir.cleanup());

  /** A file of the other user's beside the backups, with a record naming acme and `createdAt`; `as` sets the record's owner and mode. */
  function plant(name: string, as: { readonly uid: number; readonly mode: number; readonly archiveUid: number }): void {
    const archive = path.join(out, name);
    writeFileSync(archive, Buffer.concat([Buffer.from('age-encryption.org/v1\n'), Buffer.alloc(300, 7)]));
    chownSync(archive, as.archiveUid, as.archiveUid);
    const record = path.join(out, `.${name}.openclaw-verified`);
    writeFileSync(record, formatLocalStoredRecord({ tenant: 'acme', createdAt: new Date(Date.now() - 1000).toISOString(), toolVersion: '0.1.0', formatVersion: 2, manifestSha256: 'a'.repeat(64) }, statSync(archive)));
    chownSync(record, as.uid, as.uid);
    chmodSync(record, as.mode);
  }

  /** The creation time `tenants backups` lists for the file named (undefined: undated, no record taken). */
  async function datedAs(name: string): Promise<string | undefined> {
    const listed = await runMain(['--json', '--tenants-dir', tenantsDir, 'tenants', 'backups', 'acme', '--in', out]);
    const backups = JSON.parse(listed.stdout).backups as { location: string; createdAt?: string }[];
    const found = backups.find((backup) => path.basename(backup.location) === name);
    expect(found, name).toBeDefined();
    return found!.createdAt;
  }

  async function pruneKeepLast1(): Promise<{ status: number; stdout: string; stderr: string }> {
    return runMain(['--tenants-dir', tenantsDir, 'tenants', 'prune', 'acme', '--in', out, '--keep-last', '1']);
  }

  it("is not the tenant's newest backup: prune --keep-last 1 keeps the newest real one", async () => {
    plant('acme-9.tar.zst.age', { uid: OTHER, mode: 0o644, archiveUid: OTHER });
    expect(await datedAs('acme-9.tar.zst.age')).toBeUndefined();
    expect(await datedAs('acme-2.tar.zst.age')).toBeDefined();
    const pruned = await pruneKeepLast1();
    expect(pruned.status, pruned.stderr).toBe(0);
    expect(existsSync(path.join(out, 'acme-2.tar.zst.age'))).toBe(true);
    expect(existsSync(path.join(out, 'acme-1.tar.zst.age'))).toBe(false);
    expect(readFileSync(path.join(out, 'acme-9.tar.zst.age')).length).toBe(322);
  });

  it('does not make backup --skip-existing skip the tenant (its backup never taken): it fails, naming the file', async () => {
    // Before: "skipped acme … (already there)", exit 0, and no backup of acme written.
    const next = path.join(dir.path, 'out', 'next');
    mkdirSync(next, { mode: 0o1777 });
    chmodSync(next, 0o1777);
    const archive = path.join(next, 'acme.tar.zst.age');
    writeFileSync(archive, Buffer.concat([Buffer.from('age-encryption.org/v1\n'), Buffer.alloc(300, 7)]));
    chownSync(archive, OTHER, OTHER);
    const record = path.join(next, '.acme.tar.zst.age.openclaw-verified');
    writeFileSync(record, formatLocalStoredRecord({ tenant: 'acme', createdAt: new Date().toISOString(), toolVersion: '0.1.0', formatVersion: 2 }, statSync(archive)));
    chownSync(record, OTHER, OTHER);
    const run = await runMain(['--json', '--tenants-dir', tenantsDir, 'tenants', 'backup', '--all', '--to', path.join(next, '{tenant}.tar.zst.age'), '--encrypt-to', key.recipient.text, '--skip-existing']);
    expect(run.status).toBe(1);
    expect(JSON.parse(run.stdout).results[0]).toMatchObject({ tenant: 'acme', ok: false, error: { code: 'DESTINATION_EXISTS' } });
  });

  it("takes root's verification of a user's archive in that user's directory (sudo … tenants verify), as it takes that user's own", async () => {
    // Before: "recorded as verified beside the archive", then listed undated and unattributed, the hint "tenants verify it" a loop.
    const home = path.join(dir.path, 'home');
    mkdirSync(home);
    const archive = path.join(home, 'acme.tar.zst.age');
    expect((await runMain(['--tenants-dir', tenantsDir, 'tenants', 'backup', 'acme', '--to', archive, '--encrypt-to', key.recipient.text])).status).toBe(0);
    rmSync(path.join(home, '.acme.tar.zst.age.openclaw-verified'));
    chownSync(archive, OTHER, OTHER);
    chownSync(home, OTHER, OTHER);
    const identityFile = path.join(dir.path, 'identity.txt');
    writeFileSync(identityFile, formatIdentity(key), { mode: 0o600 });
    const verified = await runMain(['tenants', 'verify', '--from', archive, '--identity', identityFile]);
    expect(verified.status, verified.stderr).toBe(0);
    expect(statSync(path.join(home, '.acme.tar.zst.age.openclaw-verified')).uid).toBe(0);
    const listed = await runMain(['--json', '--tenants-dir', tenantsDir, 'tenants', 'backups', 'acme', '--in', home]);
    expect(JSON.parse(listed.stdout).backups).toMatchObject([{ location: archive, verifiedAt: expect.any(String) }]);
  });

  it("writes no mark root's listings would not take (another user's archive in root's directory) and says why", async () => {
    // Before: "recorded as verified beside the archive", then listed as never checked by tenants verify.
    const shared = path.join(dir.path, 'shared');
    mkdirSync(shared);
    const archive = path.join(shared, 'acme.tar.zst.age');
    expect((await runMain(['--tenants-dir', tenantsDir, 'tenants', 'backup', 'acme', '--to', archive, '--encrypt-to', key.recipient.text])).status).toBe(0);
    rmSync(path.join(shared, '.acme.tar.zst.age.openclaw-verified'));
    chownSync(archive, OTHER, OTHER);
    const identityFile = path.join(dir.path, 'identity-shared.txt');
    writeFileSync(identityFile, formatIdentity(key), { mode: 0o600 });
    const verified = await runMain(['--json', 'tenants', 'verify', '--from', archive, '--identity', identityFile]);
    expect(verified.status, verified.stderr).toBe(0);
    const result = JSON.parse(verified.stdout) as { recorded?: string; notices: string[] };
    expect(result.recorded).toBeUndefined();
    expect(result.notices).toContainEqual(expect.stringContaining(`would not be taken by listings run as uid 0 (it would be owned by uid 0, the archive by uid ${OTHER}`));
    expect(existsSync(path.join(shared, '.acme.tar.zst.age.openclaw-verified'))).toBe(false);
  });

  it('is not taken when root owns it but others may write it, nor when root owns it beside the other user\'s file', async () => {
    plant('acme-10.tar.zst.age', { uid: 0, mode: 0o666, archiveUid: 0 });
    plant('acme-11.tar.zst.age', { uid: 0, mode: 0o600, archiveUid: OTHER });
    expect(await datedAs('acme-10.tar.zst.age')).toBeUndefined();
    expect(await datedAs('acme-11.tar.zst.age')).toBeUndefined();
    const pruned = await pruneKeepLast1();
    expect(pruned.status, pruned.stderr).toBe(0);
    expect(existsSync(path.join(out, 'acme-2.tar.zst.age'))).toBe(true);
  });
});
