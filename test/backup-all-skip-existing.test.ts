// `tenants backup --all --skip-existing`: an --all killed (-9) part way, run again with it, backs
// up every tenant exactly once: the archives already there (complete backups of their tenant)
// are skipped, the one half written (a hidden .partial file; an unfinished multipart upload) is
// redone, and every archive verifies. Anything else at a tenant's destination still fails, as
// without the flag. Before it, the run again failed on every archive already there (exit 1).

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { formatIdentity, generateIdentity } from '../shared/age/keys.js';
import { backupAll } from '../shared/backup/backup-all.js';
import { existingBackupFinder } from '../shared/catalog/existing-backup.js';
import { localOperations } from '../shared/operations.js';
import { makeTenants, s3Flags, writeWithFooterEdited } from './helpers/backups.js';
import { runMain } from './helpers/run-main.js';
import { startNoListBucketProxy, startRecordingProxy, startS3Server, startStallingProxy, type RecordedRequest, type S3TestServer } from './helpers/s3-server.js';
import { cliPath, tempDir } from './helpers/tree.js';
import { randomBytes } from 'node:crypto';

const dir = tempDir('openclaw-skip-existing-');
const tenantsDir = path.join(dir.path, 'tenants');
const TENANTS = ['acme', 'beta', 'delta', 'gamma'];
const groups: number[] = [];
const key = generateIdentity();

beforeAll(() => {
  makeTenants(tenantsDir, TENANTS);
  // Larger than one 5 MiB part, and incompressible: its upload is a multipart one.
  writeFileSync(path.join(tenantsDir, 'delta', 'large.bin'), randomBytes(12 * 1024 * 1024));
});
afterEach(() => {
  for (const group of groups.splice(0)) {
    try {
      process.kill(-group, 'SIGKILL');
    } catch {
      // gone
    }
  }
});
afterAll(() => dir.cleanup());

/** Starts the CLI in a process group of its own; `killed` kills the group with SIGKILL and waits for the CLI's end. */
function startCli(args: string[]) {
  const child = spawn(process.execPath, [cliPath, '--tenants-dir', tenantsDir, ...args], { stdio: 'ignore', detached: true });
  groups.push(child.pid!);
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  return {
    async killed(): Promise<void> {
      process.kill(-child.pid!, 'SIGKILL');
      await exited;
    },
  };
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(20);
}

async function all(args: string[]) {
  const run = await runMain(['--json', '--tenants-dir', tenantsDir, 'tenants', 'backup', '--all', '--jobs', '1', ...args]);
  return { ...run, result: run.stdout === '' ? undefined : JSON.parse(run.stdout) };
}

async function verify(from: string, flags: string[] = []): Promise<number> {
  return (await runMain(['tenants', 'verify', '--from', from, ...flags])).status;
}

/** Sets a file's mtime to the nanosecond (utimes takes milliseconds): a record beside an archive names its mtime exactly. */
function setMtimeNs(file: string, ns: bigint): void {
  execFileSync('touch', ['-m', '-d', `@${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`, file]);
  expect(statSync(file, { bigint: true }).mtimeNs).toBe(ns);
}

/** What each tenant's outcome was: 'ok' backed up, 'skipped', or the failure's code. */
function outcomes(result: { results: readonly { tenant: string; ok: boolean; skipped?: string; error?: { code: string } }[] }): Record<string, string> {
  return Object.fromEntries(result.results.map((outcome) => [outcome.tenant, outcome.ok ? (outcome.skipped === undefined ? 'ok' : 'skipped') : outcome.error!.code]));
}

describe('to local files', () => {
  const out = path.join(dir.path, 'local');
  const template = path.join(out, '{tenant}.tar.zst');

  it('without --skip-existing, fails after a kill -9 mid-way on each archive already there (as it always did)', async () => {
    // The third backup's --pipe sends a few bytes and hangs: the CLI is killed while it writes delta's .partial file.
    const runs = path.join(dir.path, 'pipe-runs');
    mkdirSync(runs);
    const pipe = `n=$(ls ${runs} | wc -l); touch ${runs}/$n; if [ "$n" = 2 ]; then head -c 1000; exec sleep 600; fi; exec cat`;
    const cli = startCli(['tenants', 'backup', '--all', '--jobs', '1', '--to', template, '--pipe', pipe]);
    const partial = () => (existsSync(out) ? readdirSync(out).filter((name) => name.startsWith('.delta.tar.zst.') && name.endsWith('.partial')) : []);
    await until(() => partial().length === 1 && statSync(path.join(out, partial()[0]!)).size > 0);
    await cli.killed();
    expect(readdirSync(out).filter((name) => !name.startsWith('.')).sort()).toEqual(['acme.tar.zst', 'beta.tar.zst']);

    // Run again as before: each archive already there fails the run.
    const again = await all(['--to', template]);
    expect(again.status).toBe(1);
    expect(outcomes(again.result)).toEqual({ acme: 'DESTINATION_EXISTS', beta: 'DESTINATION_EXISTS', delta: 'ok', gamma: 'ok' });
    for (const name of ['delta', 'gamma']) expect(statSync(path.join(out, `${name}.tar.zst`)).size).toBeGreaterThan(0);
  });

  it('with --skip-existing, skips each tenant whose complete backup is there and backs up the rest once', async () => {
    const fresh = path.join(dir.path, 'local-fresh');
    const freshTemplate = path.join(fresh, '{tenant}.tar.zst');
    const runs = path.join(dir.path, 'pipe-runs-2');
    mkdirSync(runs);
    const pipe = `n=$(ls ${runs} | wc -l); touch ${runs}/$n; if [ "$n" = 2 ]; then head -c 1000; exec sleep 600; fi; exec cat`;
    const cli = startCli(['tenants', 'backup', '--all', '--jobs', '1', '--to', freshTemplate, '--pipe', pipe]);
    const partial = () => (existsSync(fresh) ? readdirSync(fresh).filter((name) => name.startsWith('.delta.tar.zst.') && name.endsWith('.partial')) : []);
    await until(() => partial().length === 1 && statSync(path.join(fresh, partial()[0]!)).size > 0);
    await cli.killed();
    const before = { acme: statSync(path.join(fresh, 'acme.tar.zst')), beta: statSync(path.join(fresh, 'beta.tar.zst')) };

    const resumed = await all(['--to', freshTemplate, '--skip-existing']);
    expect(resumed.stderr).toBe('');
    expect(resumed.status).toBe(0);
    expect(outcomes(resumed.result)).toEqual({ acme: 'skipped', beta: 'skipped', delta: 'ok', gamma: 'ok' });
    expect(resumed.result).toMatchObject({ succeeded: 4, skipped: 2, failed: 0 });
    // Not written again: the same files.
    for (const name of ['acme', 'beta'] as const) {
      const now = statSync(path.join(fresh, `${name}.tar.zst`));
      expect([now.ino, now.mtimeMs]).toEqual([before[name].ino, before[name].mtimeMs]);
    }
    // The dead backup's .partial file is gone; the four archives verify.
    expect(readdirSync(fresh).sort()).toEqual(TENANTS.map((name) => `${name}.tar.zst`));
    for (const name of TENANTS) expect(await verify(path.join(fresh, `${name}.tar.zst`), ['--no-record'])).toBe(0);

    // A third run skips all four.
    const third = await all(['--to', freshTemplate, '--skip-existing']);
    expect(third.status).toBe(0);
    expect(outcomes(third.result)).toEqual({ acme: 'skipped', beta: 'skipped', delta: 'skipped', gamma: 'skipped' });
  });

  it('skips a tenant another run finished between its check and its backup; fails one where something else appeared', async () => {
    const out = path.join(dir.path, 'local-race');
    const operations = localOperations(tenantsDir);
    // The other run: a whole backup of beta, and a cut file at gamma's destination, each
    // written after this run found nothing there and before its own backup of the tenant.
    const otherRunWrites = async (tenant: string, to: string) => {
      if (tenant === 'beta') await operations.backup({ tenant, to }, {});
      if (tenant === 'gamma') writeFileSync(to, 'not an archive');
    };
    const result = await backupAll({
      tenants: TENANTS,
      template: path.join(out, '{tenant}.tar.zst'),
      jobs: 1,
      findExisting: existingBackupFinder({}, 'plain'),
      backupOne: async (tenant, to, signal) => {
        await otherRunWrites(tenant, to);
        const outcome = await operations.backup({ tenant, to }, signal === undefined ? {} : { signal });
        if ('suspended' in outcome) throw new Error('a local backup runs in one piece');
        return outcome;
      },
    });
    expect(outcomes(result)).toEqual({ acme: 'ok', beta: 'skipped', delta: 'ok', gamma: 'DESTINATION_EXISTS' });
    expect(result).toMatchObject({ succeeded: 3, skipped: 1, failed: 1 });
    expect(result.results[1]).toMatchObject({ existing: { tenant: 'beta' } });
    expect(await verify(path.join(out, 'beta.tar.zst'), ['--no-record'])).toBe(0);
  });

  it('fails, replacing nothing, a tenant whose destination holds something else: a cut archive, another tenant\'s, another file', async () => {
    const other = path.join(dir.path, 'local-other');
    const otherTemplate = path.join(other, '{tenant}.tar.zst');
    expect((await all(['--to', otherTemplate])).status).toBe(0);
    truncateSync(path.join(other, 'acme.tar.zst'), statSync(path.join(other, 'acme.tar.zst')).size - 100);
    copyFileSync(path.join(other, 'gamma.tar.zst'), path.join(other, 'beta.tar.zst'));
    writeFileSync(path.join(other, 'delta.tar.zst'), 'not an archive\n');
    const sizes = () => TENANTS.map((name) => statSync(path.join(other, `${name}.tar.zst`)).size);
    const sizesBefore = sizes();

    const run = await all(['--to', otherTemplate, '--skip-existing']);
    expect(run.status).toBe(1);
    expect(outcomes(run.result)).toEqual({ acme: 'DESTINATION_EXISTS', beta: 'DESTINATION_EXISTS', delta: 'DESTINATION_EXISTS', gamma: 'skipped' });
    const message = (tenant: string) => run.result.results.find((outcome: { tenant: string }) => outcome.tenant === tenant).error.message;
    expect(message('acme')).toBe(`${path.join(other, 'acme.tar.zst')} already exists and is not a complete backup of tenant "acme" (no footer at its end: the file is cut short or its end is damaged): not skipped; pass --overwrite to replace it`);
    expect(message('beta')).toBe(`${path.join(other, 'beta.tar.zst')} already exists and is not a complete backup of tenant "beta" (it is a backup of tenant "gamma"): not skipped; pass --overwrite to replace it`);
    expect(message('delta')).toContain(`already exists and is not a complete backup of tenant "delta" (its bytes name no tenant: if a backup piped through a command other than age, tenants verify it with --pipe and the command that undoes it to record whose it is): not skipped`);
    expect(sizes()).toEqual(sizesBefore);
  });

  it('fails an archive cut in its middle whose first and last bytes survived: its footer gives the length', async () => {
    const cut = path.join(dir.path, 'local-cut-middle');
    const cutTemplate = path.join(cut, '{tenant}.tar.zst');
    expect((await all(['--to', cutTemplate])).status).toBe(0);
    const acme = path.join(cut, 'acme.tar.zst');
    const bytes = readFileSync(acme);
    const at = Math.floor(bytes.length / 3);
    writeFileSync(acme, Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 100)]));

    const run = await all(['--to', cutTemplate, '--skip-existing']);
    expect(run.status).toBe(1);
    expect(outcomes(run.result)).toEqual({ acme: 'DESTINATION_EXISTS', beta: 'skipped', delta: 'skipped', gamma: 'skipped' });
    expect(run.result.results[0].error.message).toBe(
      `${acme} already exists and is not a complete backup of tenant "acme" (${bytes.length - 100} bytes, but its footer says the archive is ${bytes.length}: cut in its middle, or bytes added): not skipped; pass --overwrite to replace it`,
    );
    expect(statSync(acme).size).toBe(bytes.length - 100);
  });

  it('skips an archive whose footer gives no length (an older version\'s) only once verified: a cut in its middle would not show', async () => {
    const older = path.join(dir.path, 'local-older');
    const olderTemplate = path.join(older, '{tenant}.tar.zst');
    expect((await all(['--to', olderTemplate])).status).toBe(0);
    const acme = path.join(older, 'acme.tar.zst');
    writeWithFooterEdited(acme, acme, (payload) => payload.replace(/,"bytesBefore":\d+/, ''));

    const before = await all(['--to', olderTemplate, '--skip-existing']);
    expect(outcomes(before.result)).toEqual({ acme: 'DESTINATION_EXISTS', beta: 'skipped', delta: 'skipped', gamma: 'skipped' });
    expect(before.result.results[0].error.message).toContain('(its footer gives no length (written by a version before it did), so a cut in its middle would not show: tenants verify it to count it)');
    expect(await verify(acme)).toBe(0);
    const after = await all(['--to', olderTemplate, '--skip-existing']);
    expect(after.status).toBe(0);
    expect(outcomes(after.result)).toEqual({ acme: 'skipped', beta: 'skipped', delta: 'skipped', gamma: 'skipped' });
  });

  it('skips a finished encrypted archive by what its backup recorded beside it, without its key; one cut short or without the record is refused', async () => {
    // Before, every local encrypted archive was refused until verified with its key (its bytes name no tenant): an interrupted run could not finish.
    const encrypted = path.join(dir.path, 'local-encrypted');
    const encryptedTemplate = path.join(encrypted, '{tenant}.tar.zst.age');
    expect((await all(['--to', encryptedTemplate, '--encrypt-to', key.recipient.text])).status).toBe(0);
    const acme = path.join(encrypted, 'acme.tar.zst.age');
    const beta = path.join(encrypted, 'beta.tar.zst.age');
    const delta = path.join(encrypted, 'delta.tar.zst.age');
    const record = (archive: string) => path.join(encrypted, `.${path.basename(archive)}.openclaw-verified`);
    // beta cut short (its mtime kept): the record names another size. delta's record lost (a crash right after its rename).
    const mtime = statSync(beta, { bigint: true }).mtimeNs;
    truncateSync(beta, statSync(beta).size - 1);
    setMtimeNs(beta, mtime);
    rmSync(record(delta));
    const again = await all(['--to', encryptedTemplate, '--encrypt-to', key.recipient.text, '--skip-existing']);
    expect(again.status).toBe(1);
    expect(outcomes(again.result)).toEqual({ acme: 'skipped', beta: 'DESTINATION_EXISTS', delta: 'DESTINATION_EXISTS', gamma: 'skipped' });
    const refusal = `already exists and is not a complete backup of tenant %s (its encrypted bytes name no tenant: tenants verify it to record whose it is): not skipped; pass --overwrite to replace it`;
    expect(again.result.results[1].error.message).toBe(`${beta} ${refusal.replace('%s', '"beta"')}`);
    expect(again.result.results[2].error.message).toBe(`${delta} ${refusal.replace('%s', '"delta"')}`);
    // A verification records whose it is as before (and replaces the backup's record).
    const identityFile = path.join(dir.path, 'identity.txt');
    writeFileSync(identityFile, formatIdentity(key));
    expect(await verify(delta, ['--identity', identityFile])).toBe(0);
    expect(await verify(acme, ['--identity', identityFile])).toBe(0);
    const verified = await all(['--to', encryptedTemplate, '--encrypt-to', key.recipient.text, '--skip-existing']);
    expect(outcomes(verified.result)).toEqual({ acme: 'skipped', beta: 'DESTINATION_EXISTS', delta: 'skipped', gamma: 'skipped' });
  });

  it('records no --pipe age output its command cut short (exit 0): --skip-existing refuses it; a whole one through age is skipped', async () => {
    // Before, `age | { head -c 300; cat >/dev/null; }` exiting 0 left 300 bytes and a record naming them: --skip-existing skipped all four, prune counted them.
    const piped = path.join(dir.path, 'local-piped-cut');
    const pipedTemplate = path.join(piped, '{tenant}.tar.zst.age');
    const cut = `age -r ${key.recipient.text} | { head -c 300; cat >/dev/null; }`;
    expect((await all(['--to', pipedTemplate, '--pipe', cut])).status).toBe(0);
    expect(readdirSync(piped).sort()).toEqual(TENANTS.map((name) => `${name}.tar.zst.age`));
    const again = await all(['--to', pipedTemplate, '--pipe', `age -r ${key.recipient.text}`, '--skip-existing']);
    expect(again.status).toBe(1);
    expect(outcomes(again.result)).toEqual({ acme: 'DESTINATION_EXISTS', beta: 'DESTINATION_EXISTS', delta: 'DESTINATION_EXISTS', gamma: 'DESTINATION_EXISTS' });
    // Through age itself (one chunk, and many: delta's 12 MiB), the record is written and the run skips them.
    expect((await all(['--to', pipedTemplate, '--pipe', `age -r ${key.recipient.text}`, '--overwrite'])).status).toBe(0);
    expect(readdirSync(piped).filter((name) => name.endsWith('.openclaw-verified'))).toHaveLength(4);
    const whole = await all(['--to', pipedTemplate, '--pipe', `age -r ${key.recipient.text}`, '--skip-existing']);
    expect(outcomes(whole.result)).toEqual({ acme: 'skipped', beta: 'skipped', delta: 'skipped', gamma: 'skipped' });
  });

  it('records an armored --pipe age output (age -a) whole as a binary one: --skip-existing skips it; one cut short is refused', async () => {
    // Before, only a binary age file got a record: a second `backup --all --skip-existing --pipe "age -a …"` failed
    // every tenant ("already exists and is not a complete backup"), where on S3 (its size tag) it skipped them.
    const armored = path.join(dir.path, 'local-armored');
    const template = path.join(armored, '{tenant}.tar.zst.age');
    const ageArmored = `age -a -r ${key.recipient.text}`;
    expect((await all(['--to', template, '--pipe', ageArmored])).status).toBe(0);
    expect(readdirSync(armored).filter((name) => name.endsWith('.openclaw-verified'))).toHaveLength(4);
    const whole = await all(['--to', template, '--pipe', ageArmored, '--skip-existing']);
    expect(outcomes(whole.result)).toEqual({ acme: 'skipped', beta: 'skipped', delta: 'skipped', gamma: 'skipped' });
    const cutDir = path.join(dir.path, 'local-armored-cut');
    const cutTemplate = path.join(cutDir, '{tenant}.tar.zst.age');
    expect((await all(['--to', cutTemplate, '--pipe', `${ageArmored} | { head -c 300; cat >/dev/null; }`])).status).toBe(0);
    expect(readdirSync(cutDir).filter((name) => name.endsWith('.openclaw-verified'))).toEqual([]);
    const again = await all(['--to', cutTemplate, '--pipe', ageArmored, '--skip-existing']);
    expect(outcomes(again.result)).toEqual({ acme: 'DESTINATION_EXISTS', beta: 'DESTINATION_EXISTS', delta: 'DESTINATION_EXISTS', gamma: 'DESTINATION_EXISTS' });
  });

  it("refuses an encrypted archive whose backup's record beside it names another tenant", async () => {
    const encrypted = path.join(dir.path, 'local-encrypted-moved');
    const encryptedTemplate = path.join(encrypted, '{tenant}.tar.zst.age');
    expect((await all(['--to', encryptedTemplate, '--encrypt-to', key.recipient.text])).status).toBe(0);
    // beta's archive and its record copied over acme's (mtime kept, as `cp -p` does).
    for (const [from, to] of [
      ['beta.tar.zst.age', 'acme.tar.zst.age'],
      ['.beta.tar.zst.age.openclaw-verified', '.acme.tar.zst.age.openclaw-verified'],
    ]) {
      copyFileSync(path.join(encrypted, from!), path.join(encrypted, to!));
      setMtimeNs(path.join(encrypted, to!), statSync(path.join(encrypted, from!), { bigint: true }).mtimeNs);
    }
    const again = await all(['--to', encryptedTemplate, '--encrypt-to', key.recipient.text, '--skip-existing']);
    expect(outcomes(again.result).acme).toBe('DESTINATION_EXISTS');
    expect(again.result.results[0].error.message).toContain('(it is a backup of tenant "beta")');
  });

  it('refuses an encrypted archive a verification found damaged, its size and mtime kept (bit rot): the record beside it goes', async () => {
    const encrypted = path.join(dir.path, 'local-encrypted-damaged');
    const encryptedTemplate = path.join(encrypted, '{tenant}.tar.zst.age');
    expect((await all(['--to', encryptedTemplate, '--encrypt-to', key.recipient.text])).status).toBe(0);
    const acme = path.join(encrypted, 'acme.tar.zst.age');
    const mtime = statSync(acme, { bigint: true }).mtimeNs;
    const bytes = readFileSync(acme);
    bytes[bytes.length - 40]! ^= 0x5a;
    writeFileSync(acme, bytes);
    setMtimeNs(acme, mtime);
    const identityFile = path.join(dir.path, 'identity-damaged.txt');
    writeFileSync(identityFile, formatIdentity(key));
    // Before, the record stayed: verify said damaged (exit 3) while --skip-existing skipped it and prune counted it whole.
    expect(await verify(acme, ['--identity', identityFile])).toBe(3);
    expect(existsSync(path.join(encrypted, '.acme.tar.zst.age.openclaw-verified'))).toBe(false);
    const again = await all(['--to', encryptedTemplate, '--encrypt-to', key.recipient.text, '--skip-existing']);
    expect(outcomes(again.result)).toEqual({ acme: 'DESTINATION_EXISTS', beta: 'skipped', delta: 'skipped', gamma: 'skipped' });
    // A wrong key shows nothing damaged: the record stays.
    const other = path.join(dir.path, 'identity-other.txt');
    writeFileSync(other, formatIdentity(generateIdentity()));
    expect(await verify(path.join(encrypted, 'beta.tar.zst.age'), ['--identity', other])).not.toBe(0);
    expect(existsSync(path.join(encrypted, '.beta.tar.zst.age.openclaw-verified'))).toBe(true);
  });

  it('skips no backup this run would not write: a plain one when it encrypts, an encrypted one when it does not', async () => {
    // Before, a plain archive counted as done for a run given --encrypt-to (exit 0: the tenant's data left unencrypted).
    const plain = path.join(dir.path, 'local-plain-then-encrypted');
    const plainTemplate = path.join(plain, '{tenant}.tar.zst');
    expect((await all(['--to', plainTemplate])).status).toBe(0);
    const sizesBefore = readdirSync(plain).map((name) => statSync(path.join(plain, name)).size);
    const encrypting = await all(['--to', plainTemplate, '--encrypt-to', key.recipient.text, '--skip-existing']);
    expect(encrypting.status).toBe(1);
    expect(outcomes(encrypting.result)).toEqual({ acme: 'DESTINATION_EXISTS', beta: 'DESTINATION_EXISTS', delta: 'DESTINATION_EXISTS', gamma: 'DESTINATION_EXISTS' });
    expect(encrypting.result.results[0].error.message).toBe(
      `${path.join(plain, 'acme.tar.zst')} already holds a complete backup of tenant "acme", but not encrypted, while this run encrypts (--encrypt-to): not skipped; pass --overwrite to replace it`,
    );
    expect(readdirSync(plain).map((name) => statSync(path.join(plain, name)).size)).toEqual(sizesBefore);
    // Through --pipe the stored bytes are the command's: what they are is the operator's choice.
    expect(outcomes((await all(['--to', plainTemplate, '--pipe', 'cat', '--skip-existing'])).result)).toEqual({ acme: 'skipped', beta: 'skipped', delta: 'skipped', gamma: 'skipped' });

    // An encrypted archive under a name without .age (a warning, as ever), verified: its tenant recorded.
    const encrypted = path.join(dir.path, 'local-encrypted-unsuffixed');
    const encryptedTemplate = path.join(encrypted, '{tenant}.tar.zst');
    expect((await all(['--to', encryptedTemplate, '--encrypt-to', key.recipient.text])).status).toBe(0);
    const identityFile = path.join(dir.path, 'identity-unsuffixed.txt');
    writeFileSync(identityFile, formatIdentity(key));
    expect(await verify(path.join(encrypted, 'acme.tar.zst'), ['--identity', identityFile])).toBe(0);
    expect(outcomes((await all(['--to', encryptedTemplate, '--encrypt-to', key.recipient.text, '--skip-existing'])).result).acme).toBe('skipped');
    const notEncrypting = await all(['--to', encryptedTemplate, '--skip-existing']);
    expect(notEncrypting.status).toBe(1);
    expect(notEncrypting.result.results[0].error.message).toBe(
      `${path.join(encrypted, 'acme.tar.zst')} already holds a complete backup of tenant "acme", but encrypted, while this run writes plain archives (no --encrypt-to): not skipped; pass --overwrite to replace it`,
    );
  });

  it('skips an archive of a hidden name the template gives (`.{tenant}.tar.zst`)', async () => {
    // Before, such an archive was never found, and the run failed on each one (already exists).
    const hiddenTemplate = path.join(dir.path, 'local-hidden', '.{tenant}.tar.zst');
    expect((await all(['--to', hiddenTemplate])).status).toBe(0);
    const again = await all(['--to', hiddenTemplate, '--skip-existing']);
    expect(outcomes(again.result)).toEqual({ acme: 'skipped', beta: 'skipped', delta: 'skipped', gamma: 'skipped' });
    expect(again.status).toBe(0);
  });

  it('is refused in one line with --overwrite, and without --all', async () => {
    const both = await runMain(['--tenants-dir', tenantsDir, 'tenants', 'backup', '--all', '--to', template, '--skip-existing', '--overwrite']);
    expect([both.status, both.stderr]).toEqual([2, 'openclaw: give --skip-existing or --overwrite, not both: one keeps the archives already there, the other replaces them\n']);
    const one = await runMain(['--tenants-dir', tenantsDir, 'tenants', 'backup', 'acme', '--to', path.join(out, 'one.tar.zst'), '--skip-existing']);
    expect([one.status, one.stderr]).toEqual([2, "openclaw: --skip-existing goes with --all (one tenant's backup refuses an archive already there, or replaces it with --overwrite)\n"]);
  });

  it('is refused in one line with a --to that names other archives a minute later ({time}): it could never skip one (before: backed up all again)', async () => {
    for (const timed of [path.join(out, '{tenant}-{time}.tar.zst'), path.join(out, '{tenant}-{date:%F-%H%M}.tar.zst')]) {
      const run = await runMain(['--tenants-dir', tenantsDir, 'tenants', 'backup', '--all', '--to', timed, '--skip-existing']);
      expect([run.status, run.stderr]).toEqual([
        2,
        `openclaw: --skip-existing with a --to that names other archives a minute later (${JSON.stringify(timed)}): no archive of an earlier run is there to skip; back up those missing by name (openclaw tenants backup NAME --to …)\n`,
      ]);
    }
    expect(readdirSync(out).filter((name) => name.includes('-'))).toEqual([]);
    // An hourly one can resume within its hour.
    expect((await runMain(['--tenants-dir', tenantsDir, 'tenants', 'backup', '--all', '--to', path.join(dir.path, 'hourly', '{tenant}-{date:%F-%H}.tar.zst'), '--skip-existing'])).status).toBe(0);
  });
});

describe('to S3 (s3rver)', () => {
  let server: S3TestServer;
  let proxy: Awaited<ReturnType<typeof startStallingProxy>>;
  beforeAll(async () => {
    server = await startS3Server();
    // Never answers part 2 of a multipart upload: delta's backup hangs there, its upload unfinished.
    proxy = await startStallingProxy(server.endpoint, 2);
  });
  afterAll(async () => {
    await proxy.stop();
    await server.dispose();
  });

  it('after a kill -9 mid multipart upload, --skip-existing backs up every tenant exactly once and the archives verify', async () => {
    const template = 's3://backups/nightly/{tenant}.tar.zst';
    const viaProxy = ['--endpoint', proxy.endpoint, '--access-key', 'S3RVER', '--secret-key', 'test-secret-key', '--region', 'us-east-1'];
    const cli = startCli(['tenants', 'backup', '--all', '--jobs', '1', '--to', template, ...viaProxy]);
    await until(() => proxy.stalled() > 0);
    await cli.killed();

    const written = (requests: readonly RecordedRequest[]) =>
      TENANTS.filter((tenant) => requests.some((request) => ['PUT', 'POST'].includes(request.method) && request.url.startsWith(`/backups/nightly/${tenant}.tar.zst`)));
    // acme and beta stored; delta's multipart upload started (part 1 sent, part 2 hanging); gamma never started.
    expect(written(proxy.requests)).toEqual(['acme', 'beta', 'delta']);
    expect(proxy.requests.some((request) => request.method === 'POST' && request.url.startsWith('/backups/nightly/delta.tar.zst?uploads'))).toBe(true);

    // Run again straight to the store, through a proxy that records what is written.
    const recording = await startRecordingProxy(server.endpoint);
    try {
      const resumed = await all(['--to', template, '--skip-existing', '--endpoint', recording.endpoint, '--access-key', 'S3RVER', '--secret-key', 'test-secret-key', '--region', 'us-east-1']);
      expect(resumed.stderr).toBe('');
      expect(resumed.status).toBe(0);
      expect(outcomes(resumed.result)).toEqual({ acme: 'skipped', beta: 'skipped', delta: 'ok', gamma: 'ok' });
      // Nothing written again for the archives already there.
      expect(written(recording.requests)).toEqual(['delta', 'gamma']);
    } finally {
      await recording.stop();
    }
  }, 60_000);

  it('backs up, as without the flag, where credentials without s3:ListBucket get 403 for a key not there', async () => {
    const proxy = await startNoListBucketProxy(server.endpoint);
    try {
      const run = await all(['--to', 's3://backups/no-list/{tenant}.tar.zst', '--skip-existing', '--endpoint', proxy.endpoint, '--access-key', 'S3RVER', '--secret-key', 'test-secret-key', '--region', 'us-east-1']);
      expect(run.stderr).toBe('');
      expect(outcomes(run.result)).toEqual({ acme: 'ok', beta: 'ok', delta: 'ok', gamma: 'ok' });
      const again = await all(['--to', 's3://backups/no-list/{tenant}.tar.zst', '--skip-existing', '--endpoint', proxy.endpoint, '--access-key', 'S3RVER', '--secret-key', 'test-secret-key', '--region', 'us-east-1']);
      expect(outcomes(again.result)).toEqual({ acme: 'skipped', beta: 'skipped', delta: 'skipped', gamma: 'skipped' });
    } finally {
      await proxy.stop();
    }
  });

  it('skips an encrypted S3 archive by the tenant and stored size its backup recorded beside it', async () => {
    const template = 's3://backups/encrypted/{tenant}.tar.zst.age';
    expect((await all(['--to', template, '--encrypt-to', key.recipient.text, ...s3Flags(server)])).status).toBe(0);
    const again = await all(['--to', template, '--encrypt-to', key.recipient.text, '--skip-existing', ...s3Flags(server)]);
    expect(again.stderr).toBe('');
    expect(outcomes(again.result)).toEqual({ acme: 'skipped', beta: 'skipped', delta: 'skipped', gamma: 'skipped' });
  });

  it('tags no stored size on a --pipe age output its command cut short (exit 0): --skip-existing refuses it', async () => {
    const template = 's3://backups/piped-cut/{tenant}.tar.zst.age';
    const cut = `age -r ${key.recipient.text} | { head -c 300; cat >/dev/null; }`;
    expect((await all(['--to', template, '--pipe', cut, ...s3Flags(server)])).status).toBe(0);
    const again = await all(['--to', template, '--pipe', `age -r ${key.recipient.text}`, '--skip-existing', ...s3Flags(server)]);
    expect(outcomes(again.result)).toEqual({ acme: 'DESTINATION_EXISTS', beta: 'DESTINATION_EXISTS', delta: 'DESTINATION_EXISTS', gamma: 'DESTINATION_EXISTS' });
    const whole = 's3://backups/piped-whole/{tenant}.tar.zst.age';
    expect((await all(['--to', whole, '--pipe', `age -r ${key.recipient.text}`, ...s3Flags(server)])).status).toBe(0);
    const skipped = await all(['--to', whole, '--pipe', `age -r ${key.recipient.text}`, '--skip-existing', ...s3Flags(server)]);
    expect(outcomes(skipped.result)).toEqual({ acme: 'skipped', beta: 'skipped', delta: 'skipped', gamma: 'skipped' });
  });

  it('redoes nothing and verifies all four', async () => {
    const template = 's3://backups/nightly/{tenant}.tar.zst';
    const again = await all(['--to', template, '--skip-existing', ...s3Flags(server)]);
    expect(again.status).toBe(0);
    expect(outcomes(again.result)).toEqual({ acme: 'skipped', beta: 'skipped', delta: 'skipped', gamma: 'skipped' });
    for (const name of TENANTS) expect(await verify(`s3://backups/nightly/${name}.tar.zst`, ['--no-record', ...s3Flags(server)])).toBe(0);
  });
});
