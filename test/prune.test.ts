// `tenants prune`: restic `forget` rules over a tenant's backups, dated by their creation time,
// in a local directory and below an s3rver prefix: --dry-run decides and removes nothing, the
// real run removes what it said; the newest verified backup and undatable ones stay; Object
// Lock refuses before anything is removed; a versioned bucket's delete markers are explained.

import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetBucketLifecycleConfigurationCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  GetObjectLegalHoldCommand,
  GetObjectLockConfigurationCommand,
  GetObjectRetentionCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { sdkStreamMixin } from '@smithy/util-stream';
import { mockClient } from 'aws-sdk-client-mock';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { parseRecipient } from '../shared/age/keys.js';
import { backupTenant } from '../shared/backup/backup.js';
import { listBackups, type BackupEntry } from '../shared/catalog/backups.js';
import { AbortedError, ObjectLockedError, PruneStoppedError, StorageError } from '../shared/errors.js';
import { CHANGED_REASON, GONE_REASON, lookWindow, namesNoOne, pruneBackups, UNCONFIRMED_REASON, windowOf, type PruneResult } from '../shared/catalog/prune.js';
import type { ArchiveStore } from '../shared/storage/archive-store.js';
import { LocalArchiveStore } from '../shared/storage/local-store.js';
import { S3ArchiveStore } from '../shared/storage/s3-store.js';
import { createS3Client } from '../shared/storage/s3-client.js';
import { openLocation } from '../shared/storage/open-location.js';
import { openStore } from '../shared/storage/open-store.js';
import { hostId, ownerTag } from '../shared/tenant/process-owner.js';
import { backupAt, DAY, makeTenants, s3Flags, writeWithFooterEdited, writeWithFooterEntries } from './helpers/backups.js';
import { runMain } from './helpers/run-main.js';
import { AWS_CLI, awsCliEnvironment, startCuttingProxy, startS3Server, startTaggingRefusingProxy, type RecordedRequest, type S3TestServer } from './helpers/s3-server.js';
import { cliPath, tempDir } from './helpers/tree.js';

const dir = tempDir('openclaw-prune-');
const tenantsDir = path.join(dir.path, 'tenants');
const JUNE_1 = Date.parse('2026-06-01T03:00:00.000Z');
/** June 1 to 6 at 03:00, and a second backup on June 6 at 15:00. */
const TIMES = [...Array.from({ length: 6 }, (_, day) => new Date(JUNE_1 + day * DAY)), new Date(JUNE_1 + 5 * DAY + 12 * 3600 * 1000)];
const name = (time: Date) => `${time.toISOString().slice(0, 13).replace('T', '-')}.tar.zst`;

beforeAll(() => makeTenants(tenantsDir, ['acme', 'beta']));
afterAll(() => dir.cleanup());

/** The store with some of its methods replaced; the others still reach it. */
const storeWith = (store: ArchiveStore, replaced: Partial<ArchiveStore>): ArchiveStore => Object.assign(Object.create(store) as ArchiveStore, replaced);
const decisions = (result: PruneResult) => ({
  keep: result.keep.map((decision) => [path.basename(decision.location), decision.reasons]),
  remove: result.remove.map((decision) => path.basename(decision.location)),
});

describe('prune in a local directory', () => {
  const store = path.join(dir.path, 'local');
  beforeAll(async () => {
    for (const time of TIMES) await backupAt(tenantsDir, 'acme', path.join(store, name(time)), time);
    await backupAt(tenantsDir, 'beta', path.join(store, 'beta-old.tar.zst'), new Date(JUNE_1 - 30 * DAY));
    writeFileSync(path.join(store, 'README.txt'), 'notes\n');
  });

  it('a dry run says what it would keep and remove, and why, and removes nothing', async () => {
    // The oldest backup is the newest verified one: it stays whatever the rules say.
    expect((await runMain(['tenants', 'verify', '--from', path.join(store, name(TIMES[0]!))])).status).toBe(0);
    const before = readdirSync(store).sort();
    const run = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', store, '--keep-last', '1', '--keep-daily', '3', '--dry-run']);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const result = JSON.parse(run.stdout) as PruneResult;
    expect(result).toMatchObject({ dryRun: true, removed: 0, tenant: 'acme', policy: { last: 1, daily: 3 } });
    expect(decisions(result)).toEqual({
      keep: [
        ['2026-06-06-15.tar.zst', ['last', 'daily 2026-06-06']],
        ['2026-06-05-03.tar.zst', ['daily 2026-06-05']],
        ['2026-06-04-03.tar.zst', ['daily 2026-06-04']],
        ['2026-06-01-03.tar.zst', ['newest verified backup (never removed)']],
      ],
      remove: ['2026-06-02-03.tar.zst', '2026-06-03-03.tar.zst', '2026-06-06-03.tar.zst'],
    });
    expect(result.protected).toBe(path.join(store, '2026-06-01-03.tar.zst'));
    expect(readdirSync(store).sort()).toEqual(before);

    const human = await runMain(['tenants', 'prune', 'acme', '--in', store, '--keep-last', '1', '--keep-daily', '3', '--dry-run']);
    const lines = human.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^Dry run: would keep 4 and remove 3 backups \([\d.]+ KiB\) of "acme" in /);
    expect(lines.filter((line) => /^\s+would remove\s/.test(line))).toHaveLength(3);
    expect(lines.find((line) => line.includes('2026-06-06-03.tar.zst'))).toMatch(/would remove .* no keep rule matches$/);
    // One order, newest first as `tenants backups` lists them, whatever each row's fate.
    const rows = lines.filter((line) => /^\s+(keep|would remove)\s/.test(line)).map((line) => /(keep|would remove)\s.*(2026-\S+\.tar\.zst)/.exec(line)!.slice(1).join(' '));
    expect(rows).toEqual([
      'keep 2026-06-06-15.tar.zst',
      'would remove 2026-06-06-03.tar.zst',
      'keep 2026-06-05-03.tar.zst',
      'keep 2026-06-04-03.tar.zst',
      'would remove 2026-06-03-03.tar.zst',
      'would remove 2026-06-02-03.tar.zst',
      'keep 2026-06-01-03.tar.zst',
    ]);
  });

  it('removes what the dry run said, with their verification marks, and nothing of other tenants', async () => {
    const run = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', store, '--keep-last', '1', '--keep-daily', '3']);
    expect(run.status).toBe(0);
    const result = JSON.parse(run.stdout) as PruneResult;
    expect(result.removed).toBe(3);
    expect(readdirSync(store).sort()).toEqual([
      '.2026-06-01-03.tar.zst.openclaw-verified',
      '2026-06-01-03.tar.zst',
      '2026-06-04-03.tar.zst',
      '2026-06-05-03.tar.zst',
      '2026-06-06-15.tar.zst',
      'README.txt',
      'beta-old.tar.zst',
    ]);
    const again = JSON.parse((await runMain(['--json', 'tenants', 'prune', 'acme', '--in', store, '--keep-last', '1', '--keep-daily', '3'])).stdout) as PruneResult;
    expect(again.removed).toBe(0);
  });

  it('removes the verification marks a killed prune left without their archives (this version or an older one)', async () => {
    const killed = path.join(dir.path, 'killed');
    await backupAt(tenantsDir, 'acme', path.join(killed, 'old.tar.zst'), new Date(JUNE_1));
    await backupAt(tenantsDir, 'acme', path.join(killed, 'new.tar.zst'), new Date(JUNE_1 + DAY));
    expect((await runMain(['tenants', 'verify', '--from', path.join(killed, 'new.tar.zst')])).status).toBe(0);
    // A prune killed between unlinking an archive and unlinking its mark.
    writeFileSync(path.join(killed, '.gone.tar.zst.openclaw-verified'), readFileSync(path.join(killed, '.new.tar.zst.openclaw-verified')));
    expect((await runMain(['tenants', 'prune', 'acme', '--in', killed, '--keep-last', '1', '--dry-run'])).status).toBe(0);
    expect(existsSync(path.join(killed, '.gone.tar.zst.openclaw-verified'))).toBe(true);
    const run = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', killed, '--keep-last', '1']);
    expect(run.status).toBe(0);
    expect(readdirSync(killed).sort()).toEqual(['.new.tar.zst.openclaw-verified', 'new.tar.zst']);
  });

  it('removes the dead temporary name a backup killed right after linking its archive in left beside a removed archive (its second name had kept every byte): a live writer\'s stays, as do dead ones where nothing was removed', async () => {
    const killed = path.join(dir.path, 'linked');
    await backupAt(tenantsDir, 'acme', path.join(killed, 'd1', 'acme.tar.zst'), new Date(JUNE_1));
    await backupAt(tenantsDir, 'acme', path.join(killed, 'd2', 'acme.tar.zst'), new Date(JUNE_1 + DAY));
    // As `backup` killed at archive:linked leaves it: the archive's temporary name, a second link to its bytes, its writer gone.
    const deadTag = `${2 ** 22 + 777}-1-${hostId()}`;
    const secondName = path.join(killed, 'd1', `.acme.tar.zst.${deadTag}.0123456789ab.partial`);
    linkSync(path.join(killed, 'd1', 'acme.tar.zst'), secondName);
    const live = path.join(killed, 'd1', `.other.tar.zst.${ownerTag()}.0123456789ab.partial`);
    writeFileSync(live, 'being written');
    const untouched = path.join(killed, 'd2', `.other.tar.zst.${deadTag}.0123456789ab.partial`);
    writeFileSync(untouched, 'left by a dead writer');
    expect(statSync(path.join(killed, 'd1', 'acme.tar.zst')).nlink).toBe(2);

    const run = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', killed, '--keep-last', '1']);
    expect(run.status).toBe(0);
    expect((JSON.parse(run.stdout) as PruneResult).removed).toBe(1);
    expect(readdirSync(path.join(killed, 'd1'))).toEqual([path.basename(live)]);
    expect(existsSync(untouched)).toBe(true);
  });

  it('keeps a backup it cannot date, and says why', async () => {
    const undated = path.join(dir.path, 'undated');
    await backupAt(tenantsDir, 'acme', path.join(undated, 'acme', 'new.tar.zst'), new Date(JUNE_1));
    writeFileSync(path.join(undated, 'acme', 'encrypted.age'), Buffer.concat([Buffer.from('age-encryption.org/v1\n'), Buffer.alloc(200, 7)]));
    const result = JSON.parse((await runMain(['--json', 'tenants', 'prune', 'acme', '--in', undated, '--keep-last', '1'])).stdout) as PruneResult;
    expect(decisions(result).keep).toEqual([
      ['new.tar.zst', ['last']],
      ['encrypted.age', ['not attributable: only its path names the tenant']],
    ]);
    expect(result.notes.join('\n')).toMatch(/no backup of "acme" here has been verified/);
  });

  it('counts no backup dated in the future (a host whose clock ran ahead): the real newest ones stay', async () => {
    const skewed = path.join(dir.path, 'skewed');
    const now = Date.now();
    await backupAt(tenantsDir, 'acme', path.join(skewed, 'yesterday.tar.zst'), new Date(now - DAY));
    await backupAt(tenantsDir, 'acme', path.join(skewed, 'today.tar.zst'), new Date(now - 60_000));
    await backupAt(tenantsDir, 'acme', path.join(skewed, 'minutes-ahead.tar.zst'), new Date(now + 10 * 60_000));
    await backupAt(tenantsDir, 'acme', path.join(skewed, 'next-year.tar.zst'), new Date(now + 400 * DAY));
    const run = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', skewed, '--keep-last', '1', '--dry-run']);
    expect(run.status).toBe(0);
    expect(decisions(JSON.parse(run.stdout) as PruneResult)).toEqual({
      keep: [
        ['next-year.tar.zst', ['dated in the future (made on a host whose clock was ahead?): counted by no rule']],
        ['minutes-ahead.tar.zst', ['last']],
      ],
      remove: ['yesterday.tar.zst', 'today.tar.zst'],
    });
  });

  it('counts a local encrypted backup once verified (its mark names the tenant): the older one goes; with a mark of an earlier version, naming none, it is kept and counted by no rule, and said so', async () => {
    const encrypted = path.join(dir.path, 'encrypted', 'acme');
    const keyFile = path.join(dir.path, 'local-age-key.txt');
    execFileSync('age-keygen', ['-o', keyFile], { stdio: 'ignore' });
    const recipients = [parseRecipient(execFileSync('age-keygen', ['-y', keyFile]).toString().trim())];
    for (const [file, at] of [['a.tar.zst.age', JUNE_1], ['b.tar.zst.age', JUNE_1 + DAY]] as const) {
      await backupTenant({ tenantsDir, tenant: 'acme', location: await openLocation(path.join(encrypted, file), {}), recipients, now: () => new Date(at) });
      expect((await runMain(['tenants', 'verify', '--from', path.join(encrypted, file), '--identity', keyFile])).status).toBe(0);
    }
    const prune = async () => {
      const run = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', encrypted, '--keep-last', '1', '--dry-run']);
      expect(run.status).toBe(0);
      return JSON.parse(run.stdout) as PruneResult;
    };
    // Before, no local encrypted backup was ever removed: each was "not attributable: only its path names the tenant".
    expect(decisions(await prune())).toEqual({ keep: [['b.tar.zst.age', ['last', 'newest verified backup']]], remove: ['a.tar.zst.age'] });

    for (const file of ['a.tar.zst.age', 'b.tar.zst.age']) {
      const mark = path.join(encrypted, `.${file}.openclaw-verified`);
      const { tenant, ...older } = JSON.parse(readFileSync(mark, 'utf8')) as Record<string, unknown>;
      expect(tenant).toBe('acme');
      writeFileSync(mark, `${JSON.stringify(older)}\n`);
    }
    const result = await prune();
    expect(result.keep.map((decision) => [path.basename(decision.location), decision.verifiedAt !== undefined, decision.uncounted])).toEqual([
      ['b.tar.zst.age', true, true],
      ['a.tar.zst.age', true, true],
    ]);
    expect(result.notes).toEqual(['no backup of "acme" that a rule counts has been verified (2 verified ones are kept and counted by no rule: see WHY): only the policy decides what stays']);
  });

  it('takes a hostile verification mark for no mark: one naming no valid tenant leaves the archive to its path, and a FIFO, a symlink to /dev/zero or a large file beside an archive neither hangs nor crashes the prune; old and new marks mix', async () => {
    const hostile = path.join(dir.path, 'hostile-marks', 'acme');
    const keyFile = path.join(dir.path, 'hostile-age-key.txt');
    execFileSync('age-keygen', ['-o', keyFile], { stdio: 'ignore' });
    const recipients = [parseRecipient(execFileSync('age-keygen', ['-y', keyFile]).toString().trim())];
    const files = ['a.tar.zst.age', 'b.tar.zst.age', 'c.tar.zst.age'];
    for (const [index, file] of files.entries()) {
      await backupTenant({ tenantsDir, tenant: 'acme', location: await openLocation(path.join(hostile, file), {}), recipients, now: () => new Date(JUNE_1 + index * DAY) });
      expect((await runMain(['tenants', 'verify', '--from', path.join(hostile, file), '--identity', keyFile])).status).toBe(0);
    }
    const markOf = (file: string) => path.join(hostile, `.${file}.openclaw-verified`);
    const rewrite = (file: string, change: (mark: Record<string, unknown>) => Record<string, unknown>) =>
      writeFileSync(markOf(file), `${JSON.stringify(change(JSON.parse(readFileSync(markOf(file), 'utf8')) as Record<string, unknown>))}\n`);
    // a: a mark of the earlier version (no tenant); b: this version's; c: one naming no tenant there can be.
    rewrite('a.tar.zst.age', ({ tenant: _tenant, ...older }) => older);
    rewrite('c.tar.zst.age', (mark) => ({ ...mark, tenant: '../beta' }));
    // Marks anyone who can write the directory may leave beside copies of an archive.
    const copy = readFileSync(path.join(hostile, 'a.tar.zst.age'));
    for (const file of ['fifo.tar.zst.age', 'zero.tar.zst.age', 'large.tar.zst.age']) writeFileSync(path.join(hostile, file), copy);
    execFileSync('mkfifo', [markOf('fifo.tar.zst.age')]);
    symlinkSync('/dev/zero', markOf('zero.tar.zst.age'));
    writeFileSync(markOf('large.tar.zst.age'), Buffer.alloc(1 << 20, 0x20));

    // The built CLI in a child: before, opening the FIFO blocked it (deaf to SIGTERM), and /dev/zero was read without end.
    const run = spawnSync(process.execPath, [cliPath, '--json', 'tenants', 'prune', 'acme', '--in', hostile, '--keep-last', '1', '--dry-run'], {
      encoding: 'utf8',
      timeout: 30_000,
      killSignal: 'SIGKILL',
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const result = JSON.parse(run.stdout) as PruneResult;
    const byName = Object.fromEntries(result.keep.map((decision) => [path.basename(decision.location), decision.reasons]));
    expect(result.remove).toEqual([]);
    expect(byName).toEqual({
      'b.tar.zst.age': ['last', 'newest verified backup'],
      // Before, c's mark took it out of acme's listing altogether (its tenant "../beta").
      'c.tar.zst.age': ['not attributable: only its path names the tenant'],
      'a.tar.zst.age': ['not attributable: only its path names the tenant'],
      'fifo.tar.zst.age': ['not attributable: only its path names the tenant'],
      'zero.tar.zst.age': ['not attributable: only its path names the tenant'],
      'large.tar.zst.age': ['not attributable: only its path names the tenant'],
    });
  });

  it('counts a copy of a backup (cp -p, a hard link) as that backup, not a second one: --keep-last 2 keeps the older real backup; the copies go with the backup they copy', async () => {
    const copies = path.join(dir.path, 'copies');
    await backupAt(tenantsDir, 'acme', path.join(copies, 'older.tar.zst'), new Date(JUNE_1));
    await backupAt(tenantsDir, 'acme', path.join(copies, 'newer.tar.zst'), new Date(JUNE_1 + DAY));
    await backupAt(tenantsDir, 'acme', path.join(copies, 'oldest.tar.zst'), new Date(JUNE_1 - DAY));
    cpSync(path.join(copies, 'newer.tar.zst'), path.join(copies, 'newer-copy.tar.zst'), { preserveTimestamps: true });
    linkSync(path.join(copies, 'newer.tar.zst'), path.join(copies, 'zz-newer-link.tar.zst'));
    linkSync(path.join(copies, 'oldest.tar.zst'), path.join(copies, 'oldest-link.tar.zst'));
    const prune = async (...flags: string[]) => {
      const run = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', copies, '--keep-last', '2', ...flags]);
      expect(run.status).toBe(0);
      const result = decisions(JSON.parse(run.stdout) as PruneResult);
      return { keep: result.keep.sort((a, b) => (a[0]! < b[0]! ? -1 : 1)), remove: result.remove.sort() };
    };
    const dry = await prune('--dry-run');
    // One of the three names of the newer backup is counted (the first listed); the others are kept beside it, naming it.
    const newerNames = ['newer-copy.tar.zst', 'newer.tar.zst', 'zz-newer-link.tar.zst'];
    const counted = dry.keep.filter(([file, why]) => newerNames.includes(file as string) && (why as string[]).length === 1).map(([file]) => file as string);
    expect(counted).toHaveLength(1);
    const newer = (file: string) => (file === counted[0] ? ['last'] : ['last', `same backup as ${path.join(copies, counted[0]!)}`]);
    const expected = {
      keep: [...newerNames.slice(0, 2).map((file) => [file, newer(file)]), ['older.tar.zst', ['last']], [newerNames[2]!, newer(newerNames[2]!)]],
      remove: ['oldest-link.tar.zst', 'oldest.tar.zst'],
    };
    expect(dry).toEqual(expected);
    expect(await prune()).toEqual(expected);
    expect(readdirSync(copies).sort()).toEqual(['newer-copy.tar.zst', 'newer.tar.zst', 'older.tar.zst', 'zz-newer-link.tar.zst']);
  });

  it('counts the verified name of a backup, not a damaged copy of it listed first: the copy is the one said to be "same backup as"', async () => {
    const damaged = path.join(dir.path, 'damaged-copy');
    await backupAt(tenantsDir, 'acme', path.join(damaged, 'older.tar.zst'), new Date(JUNE_1));
    await backupAt(tenantsDir, 'acme', path.join(damaged, 'newer.tar.zst'), new Date(JUNE_1 + DAY));
    utimesSync(path.join(damaged, 'newer.tar.zst'), new Date(JUNE_1 + DAY), new Date(JUNE_1 + DAY));
    expect((await runMain(['tenants', 'verify', '--from', path.join(damaged, 'newer.tar.zst')])).status).toBe(0);
    // A copy whose middle someone overwrote (its footer, manifest digest and creation time whole), written later: listed first.
    const bytes = readFileSync(path.join(damaged, 'newer.tar.zst'));
    bytes.fill(0xa5, Math.floor(bytes.length / 4), Math.floor(bytes.length / 2));
    writeFileSync(path.join(damaged, 'copy.tar.zst'), bytes);
    expect((await listBackups(new LocalArchiveStore(damaged), 'acme')).backups.map((entry) => entry.name)).toEqual(['copy.tar.zst', 'newer.tar.zst', 'older.tar.zst']);
    expect((await runMain(['tenants', 'verify', '--from', path.join(damaged, 'copy.tar.zst')])).status).not.toBe(0);
    const prune = async (...flags: string[]) => {
      const run = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', damaged, '--keep-last', '1', ...flags]);
      expect(run.status).toBe(0);
      return decisions(JSON.parse(run.stdout) as PruneResult);
    };
    // Before, the copy was counted ("last") and the verified original kept as "same backup as" the copy.
    const expected = {
      keep: [
        ['copy.tar.zst', ['last', `same backup as ${path.join(damaged, 'newer.tar.zst')}`]],
        ['newer.tar.zst', ['last', 'newest verified backup']],
      ],
      remove: ['older.tar.zst'],
    };
    expect(await prune('--dry-run')).toEqual(expected);
    expect(await prune()).toEqual(expected);
    expect(readdirSync(damaged).filter((file) => !file.startsWith('.')).sort()).toEqual(['copy.tar.zst', 'newer.tar.zst']);
  });

  it('groups thousands of names of one backup (hard links, copies anyone may make) in work that grows with their number, not its square', async () => {
    const many = path.join(dir.path, 'many-names');
    await backupAt(tenantsDir, 'acme', path.join(many, 'older.tar.zst'), new Date(JUNE_1));
    await backupAt(tenantsDir, 'acme', path.join(many, 'newer.tar.zst'), new Date(JUNE_1 + DAY));
    const names = 3_000;
    for (let index = 0; index < names; index++) linkSync(path.join(many, 'newer.tar.zst'), path.join(many, `newer-${index}.tar.zst`));
    // Steps taken through arrays during the prune (listing included): each copy had been added by copying all before it.
    const iterate = Array.prototype[Symbol.iterator];
    let steps = 0;
    Array.prototype[Symbol.iterator] = function counted(this: unknown[]) {
      const iterator = iterate.call(this);
      const next = iterator.next.bind(iterator);
      return Object.assign(iterator, { next: () => ((steps += 1), next()) });
    };
    let result: PruneResult;
    try {
      result = await pruneBackups({ store: new LocalArchiveStore(many), tenant: 'acme', policy: { last: 2 }, dryRun: true });
    } finally {
      Array.prototype[Symbol.iterator] = iterate;
    }
    expect(result.keep).toHaveLength(names + 2);
    expect(result.remove).toEqual([]);
    // 3,000 names: ~4.5 million steps when each copy was copied with all before it (100,000 names: 256 s of CPU).
    expect(steps).toBeLessThan(100 * names);
  });

  it('counts no cut-short copy as a backup: the whole ones stay', async () => {
    const cut = path.join(dir.path, 'cut');
    await backupAt(tenantsDir, 'acme', path.join(cut, 'whole.tar.zst'), new Date(JUNE_1));
    await backupAt(tenantsDir, 'acme', path.join(cut, 'newer.tar.zst'), new Date(JUNE_1 + DAY));
    // A copy of the newer one that stopped half way (cp to a full disk, an interrupted rsync).
    const newer = readFileSync(path.join(cut, 'newer.tar.zst'));
    writeFileSync(path.join(cut, 'newer-copy.tar.zst'), newer.subarray(0, Math.floor(newer.length / 2)));
    rmSync(path.join(cut, 'newer.tar.zst'));
    const run = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', cut, '--keep-last', '1']);
    expect(run.status).toBe(0);
    const result = JSON.parse(run.stdout) as PruneResult;
    expect(decisions(result)).toEqual({
      keep: [
        ['newer-copy.tar.zst', ['incomplete: no footer at its end: the file is cut short or its end is damaged; counted by no rule']],
        ['whole.tar.zst', ['last']],
      ],
      remove: [],
    });
    expect(readdirSync(cut).sort()).toEqual(['newer-copy.tar.zst', 'whole.tar.zst']);
    const listing = JSON.parse((await runMain(['--json', 'tenants', 'backups', 'acme', '--in', cut])).stdout) as { backups: { name: string; incomplete?: boolean; note?: string }[] };
    expect(listing.backups.map((entry) => [entry.name, entry.incomplete ?? false])).toEqual([
      ['newer-copy.tar.zst', true],
      ['whole.tar.zst', false],
    ]);
    expect(listing.backups[0]!.note).toMatch(/no footer at its end: the file is cut short/);
  });

  it('says what is wrong with a footer that is there but malformed, as tenants backups does, not that there is none', async () => {
    const damaged = path.join(dir.path, 'damaged');
    await backupAt(tenantsDir, 'acme', path.join(damaged, 'whole.tar.zst'), new Date(JUNE_1));
    await backupAt(tenantsDir, 'acme', path.join(damaged, 'newer.tar.zst'), new Date(JUNE_1 + DAY));
    // The newer one's footer with an entry count no count (-1), its frame size still right.
    writeWithFooterEntries(path.join(damaged, 'newer.tar.zst'), path.join(damaged, 'newer.tar.zst'), '-1');
    const run = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', damaged, '--keep-last', '1']);
    expect(run.status).toBe(0);
    const malformed = 'the archive footer is malformed: entries: not a whole number from 0 to 2^53';
    expect(decisions(JSON.parse(run.stdout) as PruneResult)).toEqual({
      keep: [
        ['newer.tar.zst', [`incomplete: ${malformed}; counted by no rule`]],
        ['whole.tar.zst', ['last']],
      ],
      remove: [],
    });
    const listing = JSON.parse((await runMain(['--json', 'tenants', 'backups', 'acme', '--in', damaged])).stdout) as { backups: { name: string; note?: string }[] };
    expect(listing.backups.find((entry) => entry.name === 'newer.tar.zst')?.note).toBe(malformed);
  });

  it('counts no backup whose footer names another tenant than its marker (restore and verify refuse it): the whole older one stays', async () => {
    const mixed = path.join(dir.path, 'mixed-ends');
    await backupAt(tenantsDir, 'acme', path.join(mixed, 'whole.tar.zst'), new Date(JUNE_1));
    await backupAt(tenantsDir, 'acme', path.join(mixed, 'newer.tar.zst'), new Date(JUNE_1 + DAY));
    // Its length still right: the footer's frame only grows, what comes before it is the same.
    writeWithFooterEdited(path.join(mixed, 'newer.tar.zst'), path.join(mixed, 'newer.tar.zst'), (payload) => payload.replace('"tenant":"acme"', '"tenant":"beta"'));
    const verify = await runMain(['tenants', 'verify', '--from', path.join(mixed, 'newer.tar.zst')]);
    expect(verify.stderr).toMatch(/the archive footer names tenant "beta" but its entries are for "acme"/);
    const run = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', mixed, '--keep-last', '1']);
    expect(run.status).toBe(0);
    expect(decisions(JSON.parse(run.stdout) as PruneResult)).toEqual({
      keep: [
        ['newer.tar.zst', ['incomplete: the footer names tenant "beta"; counted by no rule']],
        ['whole.tar.zst', ['last']],
      ],
      remove: [],
    });
    expect(readdirSync(mixed).sort()).toEqual(['newer.tar.zst', 'whole.tar.zst']);
  });

  it('finishes when another prune of the directory removed some of the same backups first; refuses one that changed', async () => {
    const both = path.join(dir.path, 'both');
    for (let day = 0; day < 4; day++) await backupAt(tenantsDir, 'acme', path.join(both, `${day}.tar.zst`), new Date(JUNE_1 + day * DAY));
    const store = new LocalArchiveStore(both);
    const listed = await store.list();
    const byName = (name: string) => listed.find((object) => object.name === name)!;
    rmSync(path.join(both, '0.tar.zst')); // the other prune was quicker
    expect(await store.remove(byName('0.tar.zst'))).toBe('gone');
    writeFileSync(path.join(both, '1.tar.zst'), 'a new archive under the old name');
    await expect(store.remove(byName('1.tar.zst'))).rejects.toThrow(/1\.tar\.zst changed since it was listed: not removed/);
    expect(readdirSync(both).sort()).toEqual(['1.tar.zst', '2.tar.zst', '3.tar.zst']);
  });

  it('two prunes at once: the one whose turn came second counts none of the removals the other made (removed 0, no bytes), names them skipped as gone, and succeeds', async () => {
    const twice = path.join(dir.path, 'twice');
    for (let day = 0; day < 4; day++) await backupAt(tenantsDir, 'acme', path.join(twice, `acme-${day}.tar.zst`), new Date(JUNE_1 + day * DAY));
    const store = await openStore(twice, {});
    // This prune has listed and decided when another prune of the directory runs to its end.
    let other: PruneResult | undefined;
    const second: ArchiveStore = storeWith(store, {
      deletionTerms: async (options?: { signal?: AbortSignal }) => {
        other = await pruneBackups({ store: await openStore(twice, {}), tenant: 'acme', policy: { last: 1 } });
        return store.deletionTerms(options);
      },
    });
    const result = await pruneBackups({ store: second, tenant: 'acme', policy: { last: 1 } });
    expect([other!.removed, other!.bytesRemoved > 0]).toEqual([3, true]);
    expect(decisions(result).remove).toEqual(['acme-0.tar.zst', 'acme-1.tar.zst', 'acme-2.tar.zst']);
    expect([result.removed, result.bytesRemoved]).toEqual([0, 0]);
    expect(result.skipped).toEqual(['acme-0.tar.zst', 'acme-1.tar.zst', 'acme-2.tar.zst'].map((file) => ({ location: path.join(twice, file), reason: GONE_REASON })));
    expect(result.notes).toContain('3 backups chosen for removal were already gone when their turn came (another prune removed them first?): not counted as removed here');
    expect(readdirSync(twice).filter((file) => !file.startsWith('.'))).toEqual(['acme-3.tar.zst']);
  });

  // `--in` a directory another user may write (the service user's backups, pruned by root):
  // with a subdirectory swapped for a symlink between the check and the unlink (strace's
  // delay_enter on unlink), root's prune deleted a root-only file of the listed name, size and
  // mtime wherever the link led. A removal now goes through the listed directory, pinned, and
  // only of the very file listed (device and inode).
  it('removes only the file it listed, in the directory it listed: nothing through a subdirectory swapped for a symlink, nor a file put in its place', async () => {
    const swapped = path.join(dir.path, 'swapped');
    const sub = path.join(swapped, '2026');
    await backupAt(tenantsDir, 'acme', path.join(sub, 'old.tar.zst'), new Date(JUNE_1));
    await backupAt(tenantsDir, 'acme', path.join(sub, 'new.tar.zst'), new Date(JUNE_1 + DAY));
    const victim = path.join(dir.path, 'victim');
    mkdirSync(victim);
    cpSync(path.join(sub, 'old.tar.zst'), path.join(victim, 'old.tar.zst'));
    const listedStamp = statSync(path.join(sub, 'old.tar.zst'));
    utimesSync(path.join(victim, 'old.tar.zst'), listedStamp.atime, listedStamp.mtime);
    writeFileSync(path.join(victim, '.old.tar.zst.openclaw-verified'), 'root only');
    const store = new LocalArchiveStore(swapped);
    const listed = await store.list();
    const byName = (name: string) => listed.find((object) => object.name === name)!;
    const racing: ArchiveStore = storeWith(store, {
      remove: async (object, options) => {
        renameSync(sub, path.join(swapped, 'moved'));
        symlinkSync(victim, sub);
        return store.remove(object, options);
      },
    });
    expect(byName('2026/old.tar.zst').bytes).toBe(statSync(path.join(victim, 'old.tar.zst')).size);
    await expect(racing.remove(byName('2026/old.tar.zst'))).rejects.toThrow(/2026\/old\.tar\.zst changed since it was listed: not removed/);
    expect(readdirSync(victim).sort()).toEqual(['.old.tar.zst.openclaw-verified', 'old.tar.zst']);
    expect(readdirSync(path.join(swapped, 'moved')).sort()).toEqual(['new.tar.zst', 'old.tar.zst']);

    // The name now holds another file with the listed size and mtime: not the one listed.
    rmSync(sub);
    renameSync(path.join(swapped, 'moved'), sub);
    const again = await store.list();
    const newer = again.find((object) => object.name === '2026/new.tar.zst')!;
    const archive = path.join(sub, 'new.tar.zst');
    const stamp = statSync(archive);
    cpSync(archive, `${archive}.copy`);
    renameSync(`${archive}.copy`, archive);
    utimesSync(archive, stamp.atime, stamp.mtime);
    await expect(store.remove(newer)).rejects.toThrow(/new\.tar\.zst changed since it was listed: not removed/);
    expect(readdirSync(sub).sort()).toEqual(['new.tar.zst', 'old.tar.zst']);
  });

  it('skips a backup written again after the listing, removes the rest, and succeeds', async () => {
    const race = path.join(dir.path, 'race');
    for (let day = 0; day < 3; day++) await backupAt(tenantsDir, 'acme', path.join(race, `${day}.tar.zst`), new Date(JUNE_1 + day * DAY));
    const store = new LocalArchiveStore(race);
    const racing: ArchiveStore = storeWith(store, {
      deletionTerms: async () => {
        rmSync(path.join(race, '0.tar.zst'));
        await backupAt(tenantsDir, 'acme', path.join(race, '0.tar.zst'), new Date(JUNE_1 + 9 * DAY));
        return store.deletionTerms();
      },
    });
    const result = await pruneBackups({ store: racing, tenant: 'acme', policy: { last: 1 } });
    expect(result).toMatchObject({ removed: 1, skipped: [{ location: path.join(race, '0.tar.zst'), reason: 'changed since it was listed (written again?): not removed' }] });
    expect(readdirSync(race).sort()).toEqual(['0.tar.zst', '2.tar.zst']);
  });

  it('--keep-within keeps every backup made within the span before the newest (not the clock), --keep-hourly by UTC hour; the dry run says which rule kept each', async () => {
    const within = path.join(dir.path, 'within');
    for (const iso of ['2026-06-01T03:00:00Z', '2026-06-02T02:00:00Z', '2026-06-02T03:30:00Z', '2026-06-02T03:50:00Z', '2026-06-03T03:00:00Z']) {
      await backupAt(tenantsDir, 'acme', path.join(within, `${iso.slice(0, 16).replace(':', '')}.tar.zst`), new Date(iso));
    }
    const run = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', within, '--keep-within', '1d', '--keep-hourly', '2', '--dry-run']);
    expect(run.status).toBe(0);
    const result = JSON.parse(run.stdout) as PruneResult;
    expect(result.policy).toEqual({ hourly: 2, within: '1d' });
    expect(decisions(result)).toEqual({
      keep: [
        ['2026-06-03T0300.tar.zst', ['hourly 2026-06-03T03', 'within 1d']],
        ['2026-06-02T0350.tar.zst', ['hourly 2026-06-02T03', 'within 1d']],
        ['2026-06-02T0330.tar.zst', ['within 1d']],
      ],
      remove: ['2026-06-01T0300.tar.zst', '2026-06-02T0200.tar.zst'],
    });
    const human = await runMain(['tenants', 'prune', 'acme', '--in', within, '--keep-within', '1d', '--dry-run']);
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/^Dry run: would keep 3 and remove 2 backups /);
    expect(human.stdout).toMatch(/keep\s+2026-06-02 03:30:00 UTC .*2026-06-02T0330\.tar\.zst\s+within 1d\n/);
    // 25h reaches back to 02:00 exactly, which is not within it; 26h keeps it.
    expect(JSON.parse((await runMain(['--json', 'tenants', 'prune', 'acme', '--in', within, '--keep-within', '25h', '--dry-run'])).stdout).remove).toHaveLength(2);
    const real = await runMain(['tenants', 'prune', 'acme', '--in', within, '--keep-within', '26h']);
    expect(real.status).toBe(0);
    expect(readdirSync(within).filter((name) => !name.startsWith('.')).sort()).toEqual(['2026-06-02T0200.tar.zst', '2026-06-02T0330.tar.zst', '2026-06-02T0350.tar.zst', '2026-06-03T0300.tar.zst']);
  });

  it('--keep-within, where it looked at only the objects naming the tenant, keeps all the whole directory would: a month back from 31 March is 3 March, from a later newest unseen 1 March', async () => {
    const mixed = path.join(dir.path, 'named-and-dated');
    await backupAt(tenantsDir, 'acme', path.join(mixed, 'acme', '2026-03-02.tar.zst'), new Date('2026-03-02T12:00:00Z'));
    await backupAt(tenantsDir, 'acme', path.join(mixed, 'acme', '2026-03-31.tar.zst'), new Date('2026-03-31T00:00:00Z'));
    // The newest, under a name without the tenant's: not looked at.
    await backupAt(tenantsDir, 'acme', path.join(mixed, 'daily', '2026-04-01.tar.zst'), new Date('2026-04-01T00:00:00Z'));
    const result = await pruneBackups({ store: new LocalArchiveStore(mixed), tenant: 'acme', policy: { within: '1m' }, dryRun: true });
    expect(result.notes[0]).toMatch(/^1 object in .* whose name does not hold "acme" was not looked at: /);
    expect(decisions(result)).toEqual({ keep: [['2026-03-31.tar.zst', ['within 1m']], ['2026-03-02.tar.zst', ['within 1m']]], remove: [] });
    // One not looked at may be verified: the note says of which it speaks.
    expect(result.notes[1]).toBe('no backup of "acme" looked at here has been verified (tenants verify --from …): only the policy decides what stays');
    // Where it looks at every object, restic's span from the newest: 1 March on.
    cpSync(mixed, path.join(dir.path, 'acme-all'), { recursive: true });
    const whole = await pruneBackups({ store: new LocalArchiveStore(path.join(dir.path, 'acme-all')), tenant: 'acme', policy: { within: '1m' }, dryRun: true });
    expect(whole.keep).toHaveLength(3);
  });

  it('looks at every object where the only backups under names holding the tenant are ones no rule counts (a cut-short acme/…): its backups named by date are pruned', async () => {
    const byDate = path.join(dir.path, 'by-date');
    for (const day of [1, 2, 3]) await backupAt(tenantsDir, 'acme', path.join(byDate, `2026-03-0${day}.tar.zst`), new Date(`2026-03-0${day}T03:00:00Z`));
    mkdirSync(path.join(byDate, 'acme'));
    writeFileSync(path.join(byDate, 'acme', 'cut.tar.zst'), readFileSync(path.join(byDate, '2026-03-03.tar.zst')).subarray(0, 300));
    const result = await pruneBackups({ store: new LocalArchiveStore(byDate), tenant: 'acme', policy: { last: 1 }, dryRun: true });
    expect(decisions(result).remove).toEqual(['2026-03-01.tar.zst', '2026-03-02.tar.zst']);
    expect(result.notes.filter((note) => note.includes('not looked at'))).toEqual([]);
  });

  it('counts backups named by date alone beside ones named after the tenant (a --to changed to a {tenant} template): --keep-last counts them all by their time; another tenant\'s dated ones stay', async () => {
    const mixed = path.join(dir.path, 'dated-then-named');
    for (const day of [1, 2, 3]) await backupAt(tenantsDir, 'acme', path.join(mixed, `2026-03-0${day}.tar.zst`), new Date(`2026-03-0${day}T03:00:00Z`));
    for (const day of [4, 5]) await backupAt(tenantsDir, 'acme', path.join(mixed, `acme-2026-03-0${day}.tar.zst`), new Date(`2026-03-0${day}T03:00:00Z`));
    // Another tenant's, named by date alone too: looked at, and not acme's.
    await backupAt(tenantsDir, 'beta', path.join(mixed, '2026-03-06.tar.zst'), new Date('2026-03-06T03:00:00Z'));
    const dry = await pruneBackups({ store: new LocalArchiveStore(mixed), tenant: 'acme', policy: { last: 3 }, dryRun: true });
    expect(decisions(dry)).toEqual({ keep: [['acme-2026-03-05.tar.zst', ['last']], ['acme-2026-03-04.tar.zst', ['last']], ['2026-03-03.tar.zst', ['last']]], remove: ['2026-03-01.tar.zst', '2026-03-02.tar.zst'] });
    expect(dry.notes.filter((note) => note.includes('not looked at'))).toEqual([]);
    const real = await pruneBackups({ store: new LocalArchiveStore(mixed), tenant: 'acme', policy: { last: 3 } });
    expect(decisions(real)).toEqual(decisions(dry));
    expect(readdirSync(mixed).sort()).toEqual(['2026-03-03.tar.zst', '2026-03-06.tar.zst', 'acme-2026-03-04.tar.zst', 'acme-2026-03-05.tar.zst']);
  });

  it('names an object whose name holds the tenant\'s only after a colon (`x.tar.zst:acme`, a stream of x.tar.zst on NTFS) in a note of its own, and never removes it', async () => {
    const streams = path.join(dir.path, 'stream-named');
    await backupAt(tenantsDir, 'acme', path.join(streams, 'x.tar.zst:acme'), new Date('2026-03-01T03:00:00Z'));
    await backupAt(tenantsDir, 'acme', path.join(streams, 'y.tar.zst:acme'), new Date('2026-03-02T03:00:00Z'));
    for (const day of [3, 4]) await backupAt(tenantsDir, 'acme', path.join(streams, `acme-2026-03-0${day}.tar.zst`), new Date(`2026-03-0${day}T03:00:00Z`));
    writeFileSync(path.join(streams, 'README.txt'), 'notes\n');
    const result = await pruneBackups({ store: new LocalArchiveStore(streams), tenant: 'acme', policy: { last: 1 } });
    expect(decisions(result)).toEqual({ keep: [['acme-2026-03-04.tar.zst', ['last']]], remove: ['acme-2026-03-03.tar.zst'] });
    expect(result.notes.slice(0, 2)).toEqual([
      `1 object in ${streams} whose name does not hold "acme" was not looked at: a backup of "acme" under such a name (not written through a {tenant} template) is neither removed nor counted`,
      `${path.join(streams, 'x.tar.zst:acme')} and 1 more were not looked at: their names hold "acme" only after a colon, where NTFS names a stream of another file, so they are neither removed nor counted (rename them to prune them with the rest, or remove them by hand)`,
    ]);
    expect(readdirSync(streams).sort()).toEqual(['README.txt', 'acme-2026-03-04.tar.zst', 'x.tar.zst:acme', 'y.tar.zst:acme']);
  });

  it('looks at a name that names no one (a date and time, an archive\'s extensions) and passes over one that may name another tenant', () => {
    for (const name of ['2026-06-01.tar.zst', '2026/06/01/030000.tar.zst.age', '20260601T030000Z.tar.zst', '2026-06-01T03:00:00.000Z.tar.zst', 'Mon-01-Jun-2026.tar.zst', '2026-W23.tar.gz', '1780282800.tar.zst']) {
      expect([name, namesNoOne(name)]).toEqual([name, true]);
    }
    // A tenant named by digits alone (tenant names may be) is no date: below a bucket-wide prefix each of its objects would be a request of every prune.
    // Nor one named by a word of a date's or an archive's name (tenant names may be `age`, `t`, `tar`): only a day's or month's name starts a date.
    for (const name of ['daily/2026-06-01.tar.zst', 'globex-2026-06-01.tar.zst', 'x.tar.zst:acme', 'README.txt', 'notes-2026.txt', 'tar.zst', '', '1001/2026-06-01.tar.zst', '42-2026-06-01.tar.zst', '0042.tar.zst', 'age/2026-06-01.tar.zst', 't-2026-06-01.tar.zst', 'tar/20260601.tar.zst', 'enc-1780282800.tar.zst.age', 'z/2026-06-01T03:00:00Z.tar.zst']) {
      expect([name, namesNoOne(name)]).toEqual([name, false]);
    }
  });

  it('takes names with one colon for as many backups (a file system other than NTFS keeps each): `acme:DATE` ones go by the rules; a stream of a kept file stays', async () => {
    const colons = path.join(dir.path, 'colons');
    for (const day of [1, 2, 3]) await backupAt(tenantsDir, 'acme', path.join(colons, `acme:2026-03-0${day}.tar.zst`), new Date(`2026-03-0${day}T03:00:00Z`));
    for (const [minute, day] of [['15', 4], ['30', 5]] as const) {
      await backupAt(tenantsDir, 'acme', path.join(colons, `acme-2026-03-04T03:${minute}.tar.zst`), new Date(`2026-03-0${day}T03:00:00Z`));
    }
    const result = await pruneBackups({ store: new LocalArchiveStore(colons), tenant: 'acme', policy: { last: 1 }, dryRun: true });
    expect(decisions(result)).toEqual({
      keep: [['acme-2026-03-04T03:30.tar.zst', ['last']]],
      remove: ['acme:2026-03-01.tar.zst', 'acme:2026-03-02.tar.zst', 'acme:2026-03-03.tar.zst', 'acme-2026-03-04T03:15.tar.zst'],
    });
    // On NTFS (no colon in a file's name) an older copy listed as a stream of the kept file, and the file of a kept stream: removing either removes the kept one.
    const streams = path.join(dir.path, 'streams');
    await backupAt(tenantsDir, 'acme', path.join(streams, 'acme-kept.tar.zst'), new Date('2026-03-05T00:00:00Z'));
    await backupAt(tenantsDir, 'acme', path.join(streams, 'acme-kept.tar.zst:s'), new Date('2026-03-01T00:00:00Z'));
    await backupAt(tenantsDir, 'acme', path.join(streams, 'acme-new.tar.zst:s'), new Date('2026-03-09T00:00:00Z'));
    await backupAt(tenantsDir, 'acme', path.join(streams, 'acme-new.tar.zst'), new Date('2026-03-01T00:00:00Z'));
    await backupAt(tenantsDir, 'acme', path.join(streams, 'acme-old.tar.zst'), new Date('2026-02-01T00:00:00Z'));
    const kept = decisions(await pruneBackups({ store: new LocalArchiveStore(streams), tenant: 'acme', policy: { last: 2 }, dryRun: true }));
    expect(kept.keep.map(([name]) => name).sort()).toEqual(['acme-kept.tar.zst', 'acme-kept.tar.zst:s', 'acme-new.tar.zst', 'acme-new.tar.zst:s']);
    expect(kept.remove).toEqual(['acme-old.tar.zst']);
  });

  it('on seeded random histories and policies, the real run removes exactly what its dry run named, every other backup is listed kept with a reason, and what is left is what was kept', async () => {
    let seed = 5;
    const random = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const history = path.join(dir.path, 'random-history');
    // 14 backups, hours to a year apart, some in one hour, day or week, one pair in the same second.
    let time = Date.parse('2025-03-30T22:00:00Z');
    const times: number[] = [];
    for (let index = 0; index < 14; index++) {
      times.push(time);
      time += index === 6 ? 0 : [20 * 60_000, 3 * 3_600_000, 20 * 3_600_000, 3 * DAY, 40 * DAY][Math.floor(random() * 5)]!;
    }
    for (const [index, at] of times.entries()) await backupAt(tenantsDir, 'acme', path.join(history, `b${String(index).padStart(2, '0')}.tar.zst`), new Date(at));
    const flags = (): string[] => {
      const chosen: string[] = [];
      for (const rule of ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly']) if (random() < 0.35) chosen.push(`--keep-${rule}`, String(1 + Math.floor(random() * 4)));
      if (random() < 0.3 || chosen.length === 0) chosen.push('--keep-within', ['2h', '1d', '5d', '1m', '1y'][Math.floor(random() * 5)]!);
      return chosen;
    };
    for (let run = 0; run < 8; run++) {
      const policy = flags();
      const copy = path.join(dir.path, `random-${run}`);
      cpSync(history, copy, { recursive: true, preserveTimestamps: true });
      const dry = JSON.parse((await runMain(['--json', 'tenants', 'prune', 'acme', '--in', copy, ...policy, '--dry-run'])).stdout) as PruneResult;
      expect(readdirSync(copy).sort(), policy.join(' ')).toEqual(readdirSync(history).sort());
      const real = JSON.parse((await runMain(['--json', 'tenants', 'prune', 'acme', '--in', copy, ...policy])).stdout) as PruneResult;
      const names = (list: readonly { readonly location: string }[]) => list.map((decision) => path.basename(decision.location)).sort();
      expect(names(real.remove), policy.join(' ')).toEqual(names(dry.remove));
      expect(names(real.keep), policy.join(' ')).toEqual(names(dry.keep));
      expect(real.removed, policy.join(' ')).toBe(dry.remove.length);
      expect([...names(dry.keep), ...names(dry.remove)].sort(), policy.join(' ')).toEqual(readdirSync(history).sort());
      expect(dry.keep.filter((decision) => decision.reasons.length === 0)).toEqual([]);
      expect(readdirSync(copy).sort(), policy.join(' ')).toEqual(names(dry.keep));
    }
  });

  it('refuses a policy that keeps nothing, and bad numbers, as usage errors', async () => {
    const none = await runMain(['tenants', 'prune', 'acme', '--in', store]);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/^openclaw: prune needs at least one --keep-last, --keep-hourly, --keep-daily, .*, or a --keep-within span/);
    for (const span of ['7', '0d', '7days', '1.5d', '-1d']) {
      const bad = await runMain(['tenants', 'prune', 'acme', '--in', store, '--keep-within', span]);
      expect(bad.status, span).toBe(2);
      expect(bad.stderr, span).toMatch(/^openclaw: .*must be a span such as 7d, 36h or 1y6m \(whole numbers with units y, m, w, d, h.*\n$/);
      expect(bad.stderr.split('\n')).toHaveLength(2);
      // Named once, as commander names it ("argument '7' is invalid."), not again at the end.
      expect(bad.stderr, span).toMatch(/at most 1000 years\) \(see openclaw tenants prune --help\)\n$/);
    }
    const hourly = await runMain(['tenants', 'prune', 'acme', '--in', store, '--keep-hourly', 'x']);
    expect(hourly.status).toBe(2);
    expect(hourly.stderr).toMatch(/must be a whole number \(0 or more\)/);
    expect((await runMain(['tenants', 'prune', 'acme', '--in', store, '--keep-daily', '0'])).status).toBe(2);
    const negative = await runMain(['tenants', 'prune', 'acme', '--in', store, '--keep-daily', '-1']);
    expect(negative.status).toBe(2);
    expect(negative.stderr).toMatch(/argument .-1. is invalid\. must be a whole number \(0 or more\) \(see openclaw tenants prune --help\)\n/);
    expect((await runMain(['tenants', 'prune', 'acme', '--in', store, '--keep-daily', 'seven'])).status).toBe(2);
    expect((await runMain(['--json', 'tenants', 'prune', 'acme', '--in', store])).stdout).toMatch(/^\{"error":\{"code":"USAGE"/);
    const ifMatch = await runMain(['tenants', 'prune', 'acme', '--in', store, '--keep-last', '1', '--delete-if-match']);
    expect(ifMatch.status).toBe(2);
    expect(ifMatch.stderr).toBe('openclaw: --delete-if-match applies only to s3:// locations\n');
  });
});

describe('prune below an s3rver prefix', () => {
  let server: S3TestServer;
  let client: S3Client;
  beforeAll(async () => {
    server = await startS3Server();
    client = await createS3Client(server.clientOptions);
    for (const time of TIMES) await backupAt(tenantsDir, 'acme', `s3://backups/backups/acme/${name(time)}`, time, server);
    await backupAt(tenantsDir, 'beta', 's3://backups/backups/beta/1.tar.zst', new Date(JUNE_1 - 30 * DAY), server);
  });
  afterAll(async () => {
    client.destroy();
    await server.dispose();
  });
  const keys = async () => ((await client.send(new ListObjectsV2Command({ Bucket: 'backups' }))).Contents ?? []).map((item) => item.Key).sort();

  it('dry run, then the real run: removes the objects no rule keeps', async () => {
    const before = await keys();
    const dry = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', 's3://backups/backups/', '--keep-daily', '2', '--dry-run', ...s3Flags(server)]);
    expect(dry.stderr).toBe('');
    expect(dry.status).toBe(0);
    expect(decisions(JSON.parse(dry.stdout) as PruneResult)).toEqual({
      keep: [
        ['2026-06-06-15.tar.zst', ['daily 2026-06-06']],
        ['2026-06-05-03.tar.zst', ['daily 2026-06-05']],
      ],
      remove: ['2026-06-01-03.tar.zst', '2026-06-02-03.tar.zst', '2026-06-03-03.tar.zst', '2026-06-04-03.tar.zst', '2026-06-06-03.tar.zst'],
    });
    expect(await keys()).toEqual(before);

    const run = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', 's3://backups/backups/acme/', '--keep-daily', '2', ...s3Flags(server)]);
    expect(run.status).toBe(0);
    expect((JSON.parse(run.stdout) as PruneResult).removed).toBe(5);
    expect(await keys()).toEqual(['backups/acme/2026-06-05-03.tar.zst', 'backups/acme/2026-06-06-15.tar.zst', 'backups/beta/1.tar.zst']);
  });

  // A --pipe output cut short whose command still exited 0: before, a cut age output
  // (`age -r R | { head -c 300; … }`) got no size tag but its digest tag, which listings count
  // whole, and a cut output of another tool (`gzip | { head -c 200; … }`) got both: each was
  // acme's newest backup, and --keep-last 1 removed the real one in its favour.
  it.skipIf(!existsSync('/usr/bin/age'))('counts no --pipe output cut short (age or another tool) whole: --keep-last 1 keeps the real backup', async () => {
    const recipient = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
    await backupAt(tenantsDir, 'acme', 's3://backups/pipe-cut/acme/1.tar.zst.age', new Date(JUNE_1), server, `age -r ${recipient}`);
    await backupAt(tenantsDir, 'acme', 's3://backups/pipe-cut/acme/2.tar.zst.age', new Date(JUNE_1 + DAY), server, `age -r ${recipient} | { head -c 300; cat >/dev/null; }`);
    await backupAt(tenantsDir, 'acme', 's3://backups/pipe-cut/acme/3.tar.zst.gz', new Date(JUNE_1 + 2 * DAY), server, 'gzip | { head -c 200; cat >/dev/null; }');
    const run = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', 's3://backups/pipe-cut/acme/', '--keep-last', '1', ...s3Flags(server)]);
    expect(run.status, run.stderr).toBe(0);
    expect(decisions(JSON.parse(run.stdout) as PruneResult)).toEqual({
      keep: [
        ['3.tar.zst.gz', [UNCONFIRMED_REASON]],
        ['2.tar.zst.age', [UNCONFIRMED_REASON]],
        ['1.tar.zst.age', ['last']],
      ],
      remove: [],
    });
  });

  // Tags can be set by anyone allowed s3:PutObjectTagging (no s3:PutObject needed): before, a
  // size tag added to the cut object above (300 B) made it acme's newest whole backup again, and
  // --keep-last 1 removed the real one. Its upload's seal (s3.ts SEAL_METADATA_KEY) binds the tags
  // to the backup that wrote them: the secret is told only in the tags of an object known whole.
  it.skipIf(!existsSync('/usr/bin/age'))("takes no size or digest tag someone else added to an object its backup left untagged, nor another object's seal", async () => {
    const recipient = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
    await backupAt(tenantsDir, 'acme', 's3://backups/forged/acme/1.tar.zst.age', new Date(JUNE_1), server, `age -r ${recipient}`);
    await backupAt(tenantsDir, 'acme', 's3://backups/forged/acme/2.tar.zst.age', new Date(JUNE_1 + DAY), server, `age -r ${recipient} | { head -c 300; cat >/dev/null; }`);
    const whole = await client.send(new GetObjectTaggingCommand({ Bucket: 'backups', Key: 'forged/acme/1.tar.zst.age' }));
    expect(whole.TagSet?.map((tag) => tag.Key).sort()).toEqual(['openclaw-manifest-sha256', 'openclaw-seal', 'openclaw-stored-bytes']);
    const prune = async () => {
      const run = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', 's3://backups/forged/acme/', '--keep-last', '1', '--dry-run', ...s3Flags(server)]);
      expect(run.status, run.stderr).toBe(0);
      return decisions(JSON.parse(run.stdout) as PruneResult);
    };
    const forged = [
      // Its size and a digest, without the seal; then with the seal of the whole backup, whose secret its tags tell.
      [{ Key: 'openclaw-stored-bytes', Value: '300' }, { Key: 'openclaw-manifest-sha256', Value: 'a'.repeat(64) }],
      [{ Key: 'openclaw-stored-bytes', Value: '300' }, whole.TagSet!.find((tag) => tag.Key === 'openclaw-seal')!],
    ];
    for (const TagSet of forged) {
      await client.send(new PutObjectTaggingCommand({ Bucket: 'backups', Key: 'forged/acme/2.tar.zst.age', Tagging: { TagSet } }));
      expect(await prune(), JSON.stringify(TagSet)).toEqual({
        keep: [
          ['2.tar.zst.age', [UNCONFIRMED_REASON]],
          ['1.tar.zst.age', ['last']],
        ],
        remove: [],
      });
    }
  });

  // Bit rot under an encrypted object: verify says damaged (exit 3) and removes its size tag,
  // but before, it left the digest tag, which listings take as a record of a whole backup, and
  // the damaged object stayed acme's newest backup: --keep-last 1 would have removed the whole one.
  it.skipIf(!existsSync('/usr/bin/age'))('counts no encrypted object verify found damaged: the whole older one stays', async () => {
    const keyFile = path.join(dir.path, 'rot-key.txt');
    execFileSync('age-keygen', ['-o', keyFile], { stdio: 'ignore' });
    const recipient = execFileSync('age-keygen', ['-y', keyFile]).toString().trim();
    await backupAt(tenantsDir, 'acme', 's3://backups/rot/acme/1.tar.zst.age', new Date(JUNE_1), server, `age -r ${recipient}`);
    await backupAt(tenantsDir, 'acme', 's3://backups/rot/acme/2.tar.zst.age', new Date(JUNE_1 + DAY), server, `age -r ${recipient}`);
    const key = 'rot/acme/2.tar.zst.age';
    const object = await client.send(new GetObjectCommand({ Bucket: 'backups', Key: key }));
    const body = Buffer.from(await object.Body!.transformToByteArray());
    const { TagSet } = await client.send(new GetObjectTaggingCommand({ Bucket: 'backups', Key: key }));
    body[Math.floor(body.length / 2)]! ^= 0x5a;
    await client.send(new PutObjectCommand({ Bucket: 'backups', Key: key, Body: body, Metadata: object.Metadata }));
    await client.send(new PutObjectTaggingCommand({ Bucket: 'backups', Key: key, Tagging: { TagSet } }));
    expect((await runMain(['tenants', 'verify', '--from', `s3://backups/${key}`, '--identity', keyFile, ...s3Flags(server)])).status).toBe(3);
    // Someone allowed to read and write tags puts the size tag back beside whatever seal is left there.
    const left = (await client.send(new GetObjectTaggingCommand({ Bucket: 'backups', Key: key }))).TagSet ?? [];
    await client.send(new PutObjectTaggingCommand({ Bucket: 'backups', Key: key, Tagging: { TagSet: [...left, { Key: 'openclaw-stored-bytes', Value: String(body.length) }] } }));
    const run = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', 's3://backups/rot/acme/', '--keep-last', '1', '--dry-run', ...s3Flags(server)]);
    expect(run.status, run.stderr).toBe(0);
    expect(decisions(JSON.parse(run.stdout) as PruneResult)).toEqual({
      keep: [
        ['2.tar.zst.age', [UNCONFIRMED_REASON]],
        ['1.tar.zst.age', ['last']],
      ],
      remove: [],
    });
  });

  it('skips a backup that `backup --overwrite` rewrote after the listing: the new one stays (s3rver ignores If-Match: the look right before the delete)', async () => {
    for (let day = 0; day < 3; day++) await backupAt(tenantsDir, 'acme', `s3://backups/race/acme/${day}.tar.zst`, new Date(JUNE_1 + day * DAY), server);
    const store = await openStore('s3://backups/race/acme/', { endpoint: server.endpoint, accessKey: 'S3RVER', secretKey: 'test-secret-key', region: 'us-east-1' });
    const rewritten = new Date(JUNE_1 + 9 * DAY);
    // The listing is done and 0.tar.zst chosen for removal when a backup overwrites that key.
    const racing: ArchiveStore = storeWith(store, {
      deletionTerms: async (options?: { signal?: AbortSignal }) => {
        const location = await openLocation('s3://backups/race/acme/0.tar.zst', { endpoint: server.endpoint, accessKey: 'S3RVER', secretKey: 'test-secret-key', region: 'us-east-1' });
        await backupTenant({ tenantsDir, tenant: 'acme', location, now: () => rewritten, overwrite: true });
        return store.deletionTerms(options);
      },
    });
    const result = await pruneBackups({ store: racing, tenant: 'acme', policy: { last: 1 } });
    expect(decisions(result).remove).toEqual(['0.tar.zst', '1.tar.zst']);
    expect(result.removed).toBe(1);
    expect(result.skipped).toEqual([{ location: 's3://backups/race/acme/0.tar.zst', reason: 'changed since it was listed (written again?): not removed' }]);
    expect(result.notes).toContain('s3://backups/race/acme/0.tar.zst changed since it was listed (written again?): not removed');
    expect((await keys()).filter((key) => key!.startsWith('race/'))).toEqual(['race/acme/0.tar.zst', 'race/acme/2.tar.zst']);
    const listing = await listBackups(store, 'acme');
    expect(listing.backups.map((entry) => [entry.name, entry.createdAt])).toEqual([
      ['0.tar.zst', rewritten.toISOString()],
      ['2.tar.zst', new Date(JUNE_1 + 2 * DAY).toISOString()],
    ]);
  });

  it('two prunes at once: the one whose turn came second counts none of the removals the other made (the HEAD before each delete finds it gone)', async () => {
    for (let day = 0; day < 3; day++) await backupAt(tenantsDir, 'acme', `s3://backups/twice/acme/${day}.tar.zst`, new Date(JUNE_1 + day * DAY), server);
    const options = { endpoint: server.endpoint, accessKey: 'S3RVER', secretKey: 'test-secret-key', region: 'us-east-1' };
    const store = await openStore('s3://backups/twice/acme/', options);
    let other: PruneResult | undefined;
    const second: ArchiveStore = storeWith(store, {
      deletionTerms: async (signalOptions?: { signal?: AbortSignal }) => {
        other = await pruneBackups({ store: await openStore('s3://backups/twice/acme/', options), tenant: 'acme', policy: { last: 1 } });
        return store.deletionTerms(signalOptions);
      },
    });
    const result = await pruneBackups({ store: second, tenant: 'acme', policy: { last: 1 } });
    expect(other!.removed).toBe(2);
    expect([result.removed, result.bytesRemoved]).toEqual([0, 0]);
    expect(result.skipped.map((skip) => [skip.location, skip.reason])).toEqual([
      ['s3://backups/twice/acme/0.tar.zst', GONE_REASON],
      ['s3://backups/twice/acme/1.tar.zst', GONE_REASON],
    ]);
    expect((await keys()).filter((key) => key!.startsWith('twice/'))).toEqual(['twice/acme/2.tar.zst']);
  });

  it('asks no Object Lock retention or legal hold of the backups it removes when the bucket was never versioned (Object Lock needs versioning; s3rver answers neither)', async () => {
    for (let day = 0; day < 4; day++) await backupAt(tenantsDir, 'acme', `s3://backups/unversioned/acme/${day}.tar.zst`, new Date(JUNE_1 + day * DAY), server);
    const proxy = await startCuttingProxy(server.endpoint, 0, 0);
    try {
      const flags = ['--endpoint', proxy.endpoint, '--access-key', 'S3RVER', '--secret-key', 'test-secret-key', '--region', 'us-east-1'];
      const run = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', 's3://backups/unversioned/acme/', '--keep-last', '1', ...flags]);
      expect(run.stderr).toBe('');
      expect(JSON.parse(run.stdout)).toMatchObject({ removed: 3, deletion: { versioning: 'off' } });
      const asked = proxy.requests.map((request) => new URL(request.url, 'http://proxy').searchParams);
      expect(asked.filter((query) => query.has('retention') || query.has('legal-hold'))).toEqual([]);
      expect(proxy.requests.filter((request) => request.method === 'DELETE')).toHaveLength(3);
    } finally {
      await proxy.stop();
    }
  });

  it('deletes on the condition of the listed ETag, with no HEAD, when told the store honours If-Match (--delete-if-match); by default a HEAD, then a plain delete', async () => {
    for (const area of ['plain', 'if-match']) {
      for (let day = 0; day < 3; day++) await backupAt(tenantsDir, 'acme', `s3://backups/${area}/acme/${day}.tar.zst`, new Date(JUNE_1 + day * DAY), server);
    }
    const listed = new Map(((await client.send(new ListObjectsV2Command({ Bucket: 'backups', Prefix: 'if-match/' }))).Contents ?? []).map((item) => [item.Key, item.ETag]));
    // s3rver ignores If-Match (it would delete a changed object too): what matters is which request prune sends.
    const proxy = await startCuttingProxy(server.endpoint, 0, 0);
    const removals = (requests: readonly RecordedRequest[]) =>
      requests.filter((request) => request.method === 'HEAD' || request.method === 'DELETE').map((request) => [request.method, request.url.split('?')[0], request.headers['if-match']]);
    const prune = async (area: string, ...extra: string[]) => {
      proxy.requests.length = 0;
      const flags = ['--endpoint', proxy.endpoint, '--access-key', 'S3RVER', '--secret-key', 'test-secret-key', '--region', 'us-east-1'];
      const run = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', `s3://backups/${area}/acme/`, '--keep-last', '1', ...flags, ...extra]);
      expect(run.stderr).toBe('');
      expect((JSON.parse(run.stdout) as PruneResult).removed).toBe(2);
      return removals(proxy.requests);
    };
    try {
      expect(await prune('plain')).toEqual([
        ['HEAD', '/backups/plain/acme/0.tar.zst', undefined],
        ['DELETE', '/backups/plain/acme/0.tar.zst', undefined],
        ['HEAD', '/backups/plain/acme/1.tar.zst', undefined],
        ['DELETE', '/backups/plain/acme/1.tar.zst', undefined],
      ]);
      expect(await prune('if-match', '--delete-if-match')).toEqual([
        ['DELETE', '/backups/if-match/acme/0.tar.zst', listed.get('if-match/acme/0.tar.zst')],
        ['DELETE', '/backups/if-match/acme/1.tar.zst', listed.get('if-match/acme/1.tar.zst')],
      ]);
      expect(listed.get('if-match/acme/0.tar.zst')).toMatch(/^"[0-9a-f]{32}"$/);
    } finally {
      await proxy.stop();
    }
    expect((await keys()).filter((key) => /^(plain|if-match)\//.test(key!))).toEqual(['if-match/acme/2.tar.zst', 'plain/acme/2.tar.zst']);
  });

  it('counts no cut-short object as a backup (an outside copy, a multipart upload completed early): the whole ones stay', async () => {
    await backupAt(tenantsDir, 'acme', 's3://backups/cut/acme/whole.tar.zst', new Date(JUNE_1), server);
    await backupAt(tenantsDir, 'acme', 's3://backups/cut/acme/newer.tar.zst', new Date(JUNE_1 + DAY), server);
    const newer = await client.send(new GetObjectCommand({ Bucket: 'backups', Key: 'cut/acme/newer.tar.zst' }));
    const bytes = Buffer.from(await newer.Body!.transformToByteArray());
    // A copy that stopped half way, without our metadata; and the first parts of an upload completed by hand, with it.
    await client.send(new PutObjectCommand({ Bucket: 'backups', Key: 'cut/acme/newer-copy.tar.zst', Body: bytes.subarray(0, Math.floor(bytes.length / 2)) }));
    await client.send(new PutObjectCommand({ Bucket: 'backups', Key: 'cut/acme/newer-parts.tar.zst', Body: bytes.subarray(0, Math.floor(bytes.length / 3)), Metadata: newer.Metadata }));
    await client.send(new DeleteObjectCommand({ Bucket: 'backups', Key: 'cut/acme/newer.tar.zst' }));
    const run = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', 's3://backups/cut/acme/', '--keep-last', '1', ...s3Flags(server)]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const incomplete = 'incomplete: no footer at its end: the file is cut short or its end is damaged; counted by no rule';
    const result = decisions(JSON.parse(run.stdout) as PruneResult);
    // The two cut ones have the same creation time: their order is the store's object time.
    expect({ ...result, keep: result.keep.sort((a, b) => (a[0]! < b[0]! ? -1 : 1)) }).toEqual({
      keep: [
        ['newer-copy.tar.zst', [incomplete]],
        ['newer-parts.tar.zst', [incomplete]],
        ['whole.tar.zst', ['last']],
      ],
      remove: [],
    });
    expect((await keys()).filter((key) => key!.startsWith('cut/'))).toEqual(['cut/acme/newer-copy.tar.zst', 'cut/acme/newer-parts.tar.zst', 'cut/acme/whole.tar.zst']);
    const listing = JSON.parse((await runMain(['--json', 'tenants', 'backups', 'acme', '--in', 's3://backups/cut/acme/', ...s3Flags(server)])).stdout) as { backups: { name: string; incomplete?: boolean }[] };
    expect(listing.backups.map((entry) => [entry.name, entry.incomplete ?? false]).sort()).toEqual([
      ['newer-copy.tar.zst', true],
      ['newer-parts.tar.zst', true],
      ['whole.tar.zst', false],
    ]);
  });
  it('counts no encrypted object nothing shows whole (cut short with our tags, or a multipart upload completed by hand with awscli): the whole older one stays; a whole one counts once verified', async () => {
    const keyFile = path.join(dir.path, 'age-key.txt');
    execFileSync('age-keygen', ['-o', keyFile], { stdio: 'ignore' });
    const recipients = [parseRecipient(execFileSync('age-keygen', ['-y', keyFile]).toString().trim())];
    const encryptedAt = async (key: string, time: Date) =>
      backupTenant({ tenantsDir, tenant: 'acme', location: await openLocation(`s3://backups/${key}`, { endpoint: server.endpoint, accessKey: 'S3RVER', secretKey: 'x', region: 'us-east-1' }), recipients, now: () => time });
    await encryptedAt('enc/acme/whole.tar.zst.age', new Date(JUNE_1));
    await encryptedAt('enc/acme/newer.tar.zst.age', new Date(JUNE_1 + DAY));
    const newer = await client.send(new GetObjectCommand({ Bucket: 'backups', Key: 'enc/acme/newer.tar.zst.age' }));
    const bytes = Buffer.from(await newer.Body!.transformToByteArray());
    const tags = await client.send(new GetObjectTaggingCommand({ Bucket: 'backups', Key: 'enc/acme/newer.tar.zst.age' }));
    const half = path.join(dir.path, 'half.age');
    writeFileSync(half, bytes.subarray(0, Math.floor(bytes.length / 2)));
    // A copy that stopped half way, by a tool that carries metadata and tags along.
    await client.send(
      new PutObjectCommand({
        Bucket: 'backups',
        Key: 'enc/acme/newer.tar.zst.age',
        Body: bytes.subarray(0, Math.floor(bytes.length / 2)),
        Metadata: newer.Metadata,
        Tagging: tags.TagSet!.map((tag) => `${tag.Key}=${tag.Value}`).join('&'),
      }),
    );
    // The parts a killed backup sent, completed by hand: our metadata, no tags.
    const key = 'enc/acme/parts.tar.zst.age';
    const upload = JSON.parse(await awsCli(['s3api', 'create-multipart-upload', '--bucket', 'backups', '--key', key, '--metadata', JSON.stringify(newer.Metadata)])) as { UploadId: string };
    const part = JSON.parse(await awsCli(['s3api', 'upload-part', '--bucket', 'backups', '--key', key, '--part-number', '1', '--upload-id', upload.UploadId, '--body', half])) as { ETag: string };
    await awsCli(['s3api', 'complete-multipart-upload', '--bucket', 'backups', '--key', key, '--upload-id', upload.UploadId, '--multipart-upload', JSON.stringify({ Parts: [{ PartNumber: 1, ETag: part.ETag }] })]);
    rmSync(half);
    const prune = async (...flags: string[]) => {
      const run = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', 's3://backups/enc/acme/', '--keep-last', '1', ...flags, ...s3Flags(server)]);
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      const result = decisions(JSON.parse(run.stdout) as PruneResult);
      return { ...result, keep: result.keep.sort((a, b) => (a[0]! < b[0]! ? -1 : 1)) };
    };
    const resized = `incomplete: ${Math.floor(bytes.length / 2)} bytes where its backup stored ${bytes.length} (cut short?); counted by no rule`;
    expect(await prune()).toEqual({
      keep: [
        ['newer.tar.zst.age', [resized]],
        ['parts.tar.zst.age', [UNCONFIRMED_REASON]],
        ['whole.tar.zst.age', ['last']],
      ],
      remove: [],
    });
    // The operator sees at once that two kept are counted by no rule, and which and why.
    const human = await runMain(['tenants', 'prune', 'acme', '--in', 's3://backups/enc/acme/', '--keep-last', '1', '--dry-run', ...s3Flags(server)]);
    expect(human.stdout).toMatch(/^Dry run: would keep 3 \(2 counted by no rule: see WHY\) and remove 0 backups /);
    expect(human.stdout).toMatch(/keep .*parts\.tar\.zst\.age\s+not shown whole: encrypted, piped or archived/);
    const listing = JSON.parse((await runMain(['--json', 'tenants', 'backups', 'acme', '--in', 's3://backups/enc/acme/', ...s3Flags(server)])).stdout) as { backups: BackupEntry[] };
    expect(listing.backups.map((entry) => [entry.name, entry.incomplete ?? false, entry.unconfirmed ?? false]).sort()).toEqual([
      ['newer.tar.zst.age', true, false],
      ['parts.tar.zst.age', false, true],
      ['whole.tar.zst.age', false, false],
    ]);

    // A whole copy that lost its tags (another tool's copy keeps metadata only): counted once verified.
    await client.send(new PutObjectCommand({ Bucket: 'backups', Key: 'enc/acme/copy.tar.zst.age', Body: bytes, Metadata: newer.Metadata }));
    expect((await prune('--dry-run')).keep).toContainEqual(['copy.tar.zst.age', [UNCONFIRMED_REASON]]);
    const verified = await runMain(['tenants', 'verify', '--from', 's3://backups/enc/acme/copy.tar.zst.age', '--identity', keyFile, ...s3Flags(server)]);
    expect(verified.status).toBe(0);
    expect(await prune()).toEqual({
      keep: [
        ['copy.tar.zst.age', ['last', 'newest verified backup']],
        ['newer.tar.zst.age', [resized]],
        ['parts.tar.zst.age', [UNCONFIRMED_REASON]],
      ],
      remove: ['whole.tar.zst.age'],
    });
  });

  it('counts a CopyObject of a sealed backup (metadata and tags copied: the seal holds) as that backup, not a second one: --keep-last 2 keeps the older real one', async () => {
    const keyFile = path.join(dir.path, 'age-key-copied.txt');
    execFileSync('age-keygen', ['-o', keyFile], { stdio: 'ignore' });
    const recipients = [parseRecipient(execFileSync('age-keygen', ['-y', keyFile]).toString().trim())];
    const encryptedAt = async (key: string, time: Date) =>
      backupTenant({ tenantsDir, tenant: 'acme', location: await openLocation(`s3://backups/${key}`, { endpoint: server.endpoint, accessKey: 'S3RVER', secretKey: 'x', region: 'us-east-1' }), recipients, now: () => time });
    await encryptedAt('copied/acme/older.tar.zst.age', new Date(JUNE_1));
    await encryptedAt('copied/acme/newer.tar.zst.age', new Date(JUNE_1 + DAY));
    // Whoever may write the bucket copies the newest backup under a name of its own: metadata and tags come along.
    await awsCli(['s3api', 'copy-object', '--bucket', 'backups', '--key', 'copied/acme/x-copy.tar.zst.age', '--copy-source', 'backups/copied/acme/newer.tar.zst.age', '--metadata-directive', 'COPY', '--tagging-directive', 'COPY']);
    // S3 copies the tags too (s3rver does not): as S3 would.
    const tags = await client.send(new GetObjectTaggingCommand({ Bucket: 'backups', Key: 'copied/acme/newer.tar.zst.age' }));
    expect(tags.TagSet?.map((tag) => tag.Key)).toContain('openclaw-seal');
    await client.send(new PutObjectTaggingCommand({ Bucket: 'backups', Key: 'copied/acme/x-copy.tar.zst.age', Tagging: { TagSet: tags.TagSet } }));
    const run = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', 's3://backups/copied/acme/', '--keep-last', '2', ...s3Flags(server)]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const result = decisions(JSON.parse(run.stdout) as PruneResult);
    // The name listed first is counted; the other is kept beside it, naming it.
    const [counted, copy] = result.keep.filter(([file]) => file !== 'older.tar.zst.age').map(([file]) => file as string);
    expect(new Set([counted, copy])).toEqual(new Set(['newer.tar.zst.age', 'x-copy.tar.zst.age']));
    expect(result).toEqual({
      keep: [
        [counted, ['last']],
        [copy, ['last', `same backup as s3://backups/copied/acme/${counted}`]],
        ['older.tar.zst.age', ['last']],
      ],
      remove: [],
    });
  });

  it('says so when a backup could not tag its archive, which prune then counts by no rule until it is verified', async () => {
    const keyFile = path.join(dir.path, 'age-key-untagged.txt');
    execFileSync('age-keygen', ['-o', keyFile], { stdio: 'ignore' });
    const recipients = [parseRecipient(execFileSync('age-keygen', ['-y', keyFile]).toString().trim())];
    const proxy = await startTaggingRefusingProxy(server.endpoint);
    try {
      const key = 'untagged/acme/a.tar.zst.age';
      const result = await backupTenant({ tenantsDir, tenant: 'acme', location: await openLocation(`s3://backups/${key}`, { endpoint: proxy.endpoint, accessKey: 'S3RVER', secretKey: 'x', region: 'us-east-1' }), recipients, now: () => new Date(JUNE_1) });
      expect(proxy.requests.filter((request) => request.method === 'PUT' && request.url.includes('tagging'))).toHaveLength(1);
      expect(result.notices).toEqual([
        expect.stringMatching(/^s3:\/\/backups\/untagged\/acme\/a\.tar\.zst\.age is stored whole, but its tags \(manifest digest, size stored\) could not be attached: .*access denied.*; an encrypted or piped archive counts for tenants prune only once tenants verify marks it/i),
      ]);
      const listing = JSON.parse((await runMain(['--json', 'tenants', 'backups', 'acme', '--in', 's3://backups/untagged/acme/', ...s3Flags(server)])).stdout) as { backups: BackupEntry[] };
      expect(listing.backups).toMatchObject([{ name: 'a.tar.zst.age', unconfirmed: true, note: expect.stringMatching(/its backup could not tag it/) }]);
    } finally {
      await proxy.stop();
    }
  });

  async function awsCli(args: string[]): Promise<string> {
    return (await promisify(execFile)(AWS_CLI, ['--endpoint-url', server.endpoint, '--output', 'json', ...args], { env: awsCliEnvironment() })).stdout;
  }
});

describe('prune against a versioned bucket with Object Lock (S3 mocked)', () => {
  // Made when this block runs: a mock patches every S3Client, s3rver's tests' included.
  let s3: ReturnType<typeof mockClient>;
  beforeAll(() => {
    s3 = mockClient(S3Client);
  });
  const frame = (magic: number, payload: object) => {
    const bytes = Buffer.from(JSON.stringify(payload));
    const header = Buffer.alloc(8);
    header.writeUInt32LE(magic, 0);
    header.writeUInt32LE(bytes.length, 4);
    return Buffer.concat([header, bytes]);
  };
  /** A whole archive as a listing sees it: the marker, 8 KiB of frames, the footer. */
  const object = (tenant: string, createdAt: string) =>
    Buffer.concat([
      frame(0x184d2a5c, { format: 'openclawmu-tenant-backup', formatVersion: 2, tenant, createdAt, toolVersion: '0.1.0' }),
      Buffer.alloc(8192, 1),
      frame(0x184d2a5d, { format: 'openclawmu-tenant-backup', tenant, manifestSha256: 'a'.repeat(64) }),
    ]);
  const created = ['2026-06-01T03:00:00.000Z', '2026-06-02T03:00:00.000Z', '2026-06-03T03:00:00.000Z'];
  const bytesOf = (key: string) => object('acme', `${key.slice(13, 23)}T03:00:00.000Z`);
  const etagOf = (key: string) => `"etag-${key.slice(13, 23)}"`;
  const s3Error = (name: string, status: number) => new S3ServiceException({ name, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status }, message: `${name} happened` });
  let retainUntil = new Date(Date.now() + 10 * DAY);
  beforeEach(() => {
    s3.reset();
    s3.on(ListObjectsV2Command).resolves({
      Contents: created.map((time) => `backups/acme/${time.slice(0, 10)}.tar.zst`).map((Key) => ({ Key, Size: bytesOf(Key).length, ETag: etagOf(Key), LastModified: new Date() })),
    });
    s3.on(GetObjectCommand).callsFake((input: { Key: string; Range: string }) => {
      const bytes = bytesOf(input.Key);
      const [start, end] = /^bytes=(\d+)-(\d+)$/.exec(input.Range)!.slice(1).map(Number);
      const last = Math.min(end!, bytes.length - 1);
      return { Body: sdkStreamMixin(Readable.from([bytes.subarray(start, last + 1)])), ContentRange: `bytes ${start}-${last}/${bytes.length}`, ETag: etagOf(input.Key), Metadata: {} };
    });
    s3.on(GetObjectTaggingCommand).resolves({ TagSet: [] });
    s3.on(GetBucketVersioningCommand).resolves({ Status: 'Enabled' });
    s3.on(GetObjectLockConfigurationCommand).resolves({ ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled' } });
    s3.on(GetBucketLifecycleConfigurationCommand).resolves({
      Rules: [{ ID: 'expire-noncurrent-versions', Status: 'Enabled', Filter: { Prefix: '' }, NoncurrentVersionExpiration: { NoncurrentDays: 30 } }],
    });
    s3.on(GetObjectRetentionCommand).callsFake(() => ({ Retention: { Mode: 'COMPLIANCE', RetainUntilDate: retainUntil } }));
    s3.on(GetObjectLegalHoldCommand).resolves({ LegalHold: { Status: 'OFF' } });
    s3.on(DeleteObjectCommand).resolves({ DeleteMarker: true });
  });
  afterAll(() => s3.restore());
  const store = () => new S3ArchiveStore({ client: new S3Client({ region: 'us-east-1' }), bucket: 'backups', prefix: 'backups/acme/' });

  it('refuses before removing anything while Object Lock keeps a backup it would remove', async () => {
    retainUntil = new Date(Date.now() + 10 * DAY);
    const error = await pruneBackups({ store: store(), tenant: 'acme', policy: { last: 1 } }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ObjectLockedError);
    expect((error as Error).message).toMatch(
      new RegExp(`^s3://backups/backups/acme/2026-06-01\\.tar\\.zst is kept by Object Lock \\(COMPLIANCE\\) until ${retainUntil.toISOString().replace(/\./g, '\\.')}: its data cannot be deleted`),
    );
    expect(s3.commandCalls(DeleteObjectCommand)).toHaveLength(0);

    const dry = await pruneBackups({ store: store(), tenant: 'acme', policy: { last: 1 }, dryRun: true });
    expect(dry.refusal).toBe((error as Error).message);
    expect(s3.commandCalls(DeleteObjectCommand)).toHaveLength(0);
  });

  it('asks Object Lock of the backups it would remove when the bucket says its lock is enabled, whatever its versioning answer (an empty body, an odd Status): never skipped where a lock may hold', async () => {
    retainUntil = new Date(Date.now() + 10 * DAY);
    for (const answer of [{}, { Status: 'enabled' }, { Status: 'Suspended' }] as const) {
      s3.on(GetBucketVersioningCommand).resolves(answer as { Status?: 'Enabled' });
      const error = await pruneBackups({ store: store(), tenant: 'acme', policy: { last: 1 } }).catch((caught: unknown) => caught);
      expect(error, JSON.stringify(answer)).toBeInstanceOf(ObjectLockedError);
      expect(s3.commandCalls(DeleteObjectCommand)).toHaveLength(0);
    }
    // Lock unreadable (403) and the bucket never versioned: no lock can be; lock unreadable and versioning odd: asked.
    s3.on(GetObjectLockConfigurationCommand).rejects(s3Error('AccessDenied', 403));
    s3.on(GetBucketVersioningCommand).resolves({ Status: 'enabled' as 'Enabled' });
    expect(await pruneBackups({ store: store(), tenant: 'acme', policy: { last: 1 } }).catch((caught: unknown) => caught)).toBeInstanceOf(ObjectLockedError);
    s3.on(GetBucketVersioningCommand).resolves({});
    expect((await pruneBackups({ store: store(), tenant: 'acme', policy: { last: 1 } })).removed).toBe(2);
    // One asked by each of the four refusals, none by the last run.
    expect(s3.commandCalls(GetObjectRetentionCommand)).toHaveLength(4);
    // A versioned bucket whose lock configuration is answered without `Enabled` (an empty body, an odd value): asked.
    s3.on(GetBucketVersioningCommand).resolves({ Status: 'Enabled' });
    for (const answer of [{}, { ObjectLockConfiguration: {} }, { ObjectLockConfiguration: { ObjectLockEnabled: 'enabled' } }]) {
      s3.on(GetObjectLockConfigurationCommand).resolves(answer as { ObjectLockConfiguration?: { ObjectLockEnabled?: 'Enabled' } });
      const error = await pruneBackups({ store: store(), tenant: 'acme', policy: { last: 1 } }).catch((caught: unknown) => caught);
      expect(error, JSON.stringify(answer)).toBeInstanceOf(ObjectLockedError);
    }
    expect(s3.commandCalls(DeleteObjectCommand)).toHaveLength(2);
  });

  it('removes nothing when the listing fails on its second page, or the first bytes or the tags of one backup cannot be read', async () => {
    retainUntil = new Date(Date.now() - DAY);
    const keys = created.map((time) => `backups/acme/${time.slice(0, 10)}.tar.zst`);
    const listed = (names: readonly string[]) => names.map((Key) => ({ Key, Size: bytesOf(Key).length, ETag: etagOf(Key), LastModified: new Date() }));
    const fails = async () => {
      const error = await pruneBackups({ store: store(), tenant: 'acme', policy: { last: 1 } }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(StorageError);
      expect((error as Error).message).not.toContain('\n');
      expect(s3.commandCalls(DeleteObjectCommand)).toHaveLength(0);
      return (error as Error).message;
    };
    // The whole listing removes two: the failures below are what stops it.
    expect((await pruneBackups({ store: store(), tenant: 'acme', policy: { last: 1 }, dryRun: true })).remove).toHaveLength(2);

    s3.on(ListObjectsV2Command).callsFake((input: { ContinuationToken?: string }) => {
      if (input.ContinuationToken === undefined) return { Name: 'backups', Contents: listed(keys.slice(0, 2)), IsTruncated: true, NextContinuationToken: 'page-2' };
      throw s3Error('InternalError', 500);
    });
    expect(await fails()).toMatch(/InternalError happened/);

    s3.on(ListObjectsV2Command).resolves({ Name: 'backups', Contents: listed(keys), IsTruncated: false });
    s3.on(GetObjectCommand, { Bucket: 'backups', Key: keys[1] }).rejects(s3Error('InternalError', 500));
    expect(await fails()).toMatch(/InternalError happened/);

    s3.on(GetObjectCommand, { Bucket: 'backups', Key: keys[1] }).callsFake((input: { Key: string; Range: string }) => ({
      Body: sdkStreamMixin(Readable.from([bytesOf(input.Key).subarray(0, 4096)])),
      ETag: etagOf(input.Key),
      Metadata: {},
    }));
    s3.on(GetObjectTaggingCommand, { Bucket: 'backups', Key: keys[0] }).rejects(s3Error('SlowDown', 503));
    expect(await fails()).toMatch(/S3 is throttling requests/);
  });

  it('removes once retention has passed, saying the data stays as noncurrent versions for 30 days', async () => {
    retainUntil = new Date(Date.now() - DAY);
    const result = await pruneBackups({ store: store(), tenant: 'acme', policy: { last: 1 } });
    expect(result.removed).toBe(2);
    // AWS deletes only while the object has the ETag listed: no HEAD is needed.
    expect(s3.commandCalls(DeleteObjectCommand).map((call) => call.args[0].input)).toEqual([
      { Bucket: 'backups', Key: 'backups/acme/2026-06-01.tar.zst', IfMatch: '"etag-2026-06-01"' },
      { Bucket: 'backups', Key: 'backups/acme/2026-06-02.tar.zst', IfMatch: '"etag-2026-06-02"' },
    ]);
    expect(s3.commandCalls(HeadObjectCommand)).toHaveLength(0);
    // Each archive's first 4 KiB, then its last 1 KiB (the footer), pinned to the ETag the first read saw.
    const size = bytesOf('backups/acme/2026-06-01.tar.zst').length;
    const reads = s3.commandCalls(GetObjectCommand).map((call) => [call.args[0].input.Range, call.args[0].input.IfMatch ?? '']);
    expect(reads.sort()).toEqual([
      ...created.map(() => ['bytes=0-4095', '']),
      ...created.map((time) => [`bytes=${size - 1024}-${size - 1}`, `"etag-${time.slice(0, 10)}"`]),
    ]);
    expect(result.notes).toContain(
      "the bucket is versioned: each removal adds a delete marker; the archive's data stays as a noncurrent version until its lifecycle rule deletes noncurrent versions 30 days later, and not before its Object Lock retention ends",
    );
  });

  it('skips a backup written again after the listing (S3 answers If-Match with 412) and removes the rest; exit 0 with a note', async () => {
    retainUntil = new Date(Date.now() - DAY);
    s3.on(DeleteObjectCommand).callsFake((input: { Key: string }) => {
      if (input.Key.endsWith('2026-06-01.tar.zst')) throw s3Error('PreconditionFailed', 412);
      return { DeleteMarker: true };
    });
    const run = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', 's3://backups/backups/acme/', '--keep-last', '1', '--region', 'us-east-1']);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const result = JSON.parse(run.stdout) as PruneResult;
    expect(result).toMatchObject({ removed: 1, skipped: [{ location: 's3://backups/backups/acme/2026-06-01.tar.zst', reason: 'changed since it was listed (written again?): not removed' }] });
    expect(result.bytesRemoved).toBe(bytesOf('backups/acme/2026-06-02.tar.zst').length);
    expect(s3.commandCalls(DeleteObjectCommand).map((call) => call.args[0].input.IfMatch)).toEqual(['"etag-2026-06-01"', '"etag-2026-06-02"']);

    const human = await runMain(['tenants', 'prune', 'acme', '--in', 's3://backups/backups/acme/', '--keep-last', '1', '--region', 'us-east-1']);
    expect(human.status).toBe(0);
    const lines = human.stdout.split('\n');
    expect(lines[0]).toMatch(/^Kept 1 and removed 1 backup \(/);
    expect(lines.find((line) => line.includes('2026-06-01.tar.zst') && !line.includes('note:'))).toMatch(/^\s+skipped\s/);
    expect(lines.filter((line) => line.includes('note: s3://backups/backups/acme/2026-06-01.tar.zst changed since it was listed (written again?): not removed'))).toHaveLength(1);
  });

  it('counts not as removed a backup another prune deleted first (S3 answers the If-Match delete with 404 NoSuchKey): removed 1, its bytes only; the table says skipped', async () => {
    retainUntil = new Date(Date.now() - DAY);
    s3.on(DeleteObjectCommand).callsFake((input: { Key: string }) => {
      if (input.Key.endsWith('2026-06-01.tar.zst')) throw s3Error('NoSuchKey', 404);
      return { DeleteMarker: true };
    });
    const run = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', 's3://backups/backups/acme/', '--keep-last', '1', '--region', 'us-east-1']);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const result = JSON.parse(run.stdout) as PruneResult;
    expect(result).toMatchObject({ removed: 1, bytesRemoved: bytesOf('backups/acme/2026-06-02.tar.zst').length, skipped: [{ location: 's3://backups/backups/acme/2026-06-01.tar.zst', reason: GONE_REASON }] });
    const human = await runMain(['tenants', 'prune', 'acme', '--in', 's3://backups/backups/acme/', '--keep-last', '1', '--region', 'us-east-1']);
    const lines = human.stdout.split('\n');
    expect(lines[0]).toMatch(/^Kept 1 and removed 1 backup \(/);
    expect(lines.find((line) => line.includes('2026-06-01.tar.zst') && !line.includes('note:'))).toMatch(/^\s+skipped\s/);
    expect(lines).toContain('  note: 1 backup chosen for removal was already gone when its turn came (another prune removed it first?): not counted as removed here');
  });

  it('goes on past a backup the store refuses to delete (Object Lock whose retention it could not read), then fails naming it, exit 1', async () => {
    s3.on(GetObjectRetentionCommand).rejects(s3Error('AccessDenied', 403));
    s3.on(GetObjectLegalHoldCommand).rejects(s3Error('AccessDenied', 403));
    s3.on(DeleteObjectCommand).callsFake((input: { Key: string }) => {
      if (!input.Key.endsWith('2026-06-01.tar.zst')) return { DeleteMarker: true };
      throw new S3ServiceException({ name: 'AccessDenied', $fault: 'client', $metadata: { httpStatusCode: 403 }, message: 'Access Denied because object protected by object lock.' });
    });
    const error = await pruneBackups({ store: store(), tenant: 'acme', policy: { last: 1 } }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).code).toBe('ACCESS_DENIED');
    expect((error as Error).message).toBe(
      "prune removed 1 of 2 backups; 1 could not be removed: access denied to s3://backups/backups/acme/2026-06-01.tar.zst: check the credentials' S3 permissions and the bucket policy (S3: Access Denied because object protected by object lock.)",
    );
    // The refused one did not stop the next.
    expect(s3.commandCalls(DeleteObjectCommand).map((call) => call.args[0].input.Key)).toEqual(['backups/acme/2026-06-01.tar.zst', 'backups/acme/2026-06-02.tar.zst']);

    const run = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', 's3://backups/backups/acme/', '--keep-last', '1', '--region', 'us-east-1']);
    expect(run.status).toBe(1);
    expect(JSON.parse(run.stdout)).toMatchObject({ error: { code: 'ACCESS_DENIED', message: expect.stringMatching(/^prune removed 1 of 2 backups; 1 could not be removed: access denied to s3:\/\/backups\/backups\/acme\/2026-06-01\.tar\.zst/) } });
  });

  it('where the store refuses If-Match on a delete, a HEAD right before each delete compares the ETag instead', async () => {
    retainUntil = new Date(Date.now() - DAY);
    s3.on(DeleteObjectCommand).callsFake((input: { IfMatch?: string }) => {
      if (input.IfMatch !== undefined) throw s3Error('NotImplemented', 501);
      return {};
    });
    s3.on(HeadObjectCommand).callsFake((input: { Key: string }) => ({
      ETag: input.Key.endsWith('2026-06-01.tar.zst') ? '"written-again"' : etagOf(input.Key),
      ContentLength: bytesOf(input.Key).length,
    }));
    const result = await pruneBackups({ store: store(), tenant: 'acme', policy: { last: 1 } });
    expect(result.removed).toBe(1);
    expect(result.skipped.map((skip) => skip.location)).toEqual(['s3://backups/backups/acme/2026-06-01.tar.zst']);
    // Refused once, the condition is not sent again.
    expect(s3.commandCalls(DeleteObjectCommand).map((call) => call.args[0].input)).toEqual([
      { Bucket: 'backups', Key: 'backups/acme/2026-06-01.tar.zst', IfMatch: '"etag-2026-06-01"' },
      { Bucket: 'backups', Key: 'backups/acme/2026-06-02.tar.zst' },
    ]);
    expect(s3.commandCalls(HeadObjectCommand).map((call) => call.args[0].input.Key)).toEqual(['backups/acme/2026-06-01.tar.zst', 'backups/acme/2026-06-02.tar.zst']);
  });

  it('refuses, removing nothing, when the tags (verification marks) of a backup cannot be read for want of s3:GetObjectTagging; a store without tagging holds no marks and is pruned', async () => {
    retainUntil = new Date(Date.now() - DAY);
    const prune = (...flags: string[]) => runMain(['tenants', 'prune', 'acme', '--in', 's3://backups/backups/acme/', '--region', 'us-east-1', ...flags]);
    // The oldest was verified; the credentials may not read its tags.
    s3.on(GetObjectTaggingCommand, { Bucket: 'backups', Key: 'backups/acme/2026-06-01.tar.zst' }).rejects(s3Error('AccessDenied', 403));
    const run = await prune('--keep-last', '1');
    expect(run.status).toBe(3);
    expect(run.stderr).toMatch(/^openclaw: the tags of 1 of 3 backups could not be read \(access denied: do the credentials lack s3:GetObjectTagging\?\): prune cannot see which backup was verified .* it refuses and removes nothing/);
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(s3.commandCalls(DeleteObjectCommand)).toHaveLength(0);
    const dry = await prune('--keep-last', '1', '--dry-run');
    expect(dry.status).toBe(3);
    expect(dry.stdout).toMatch(/note: the tags of 1 backup could not be read \(access denied\): their verification marks, if any, are unseen/);
    expect(dry.stdout).toMatch(/the prune would be REFUSED: the tags of 1 of 3 backups could not be read/);
    expect(dry.stdout).not.toMatch(/has been verified/);
    // Nothing to remove: nothing to refuse.
    expect((await prune('--keep-last', '3')).status).toBe(0);
    const backups = await runMain(['--json', 'tenants', 'backups', 'acme', '--in', 's3://backups/backups/acme/', '--region', 'us-east-1']);
    expect((JSON.parse(backups.stdout) as { backups: BackupEntry[] }).backups.map((entry) => entry.tagsDenied ?? false)).toEqual([false, false, true]);

    s3.on(GetObjectTaggingCommand).rejects(s3Error('NotImplemented', 501));
    const untagged = await pruneBackups({ store: store(), tenant: 'acme', policy: { last: 1 } });
    expect(untagged.removed).toBe(2);
    expect(untagged.notes).toContainEqual(expect.stringMatching(/has been verified/));
  });

  it('refuses on a legal hold too, through the CLI with exit 3', async () => {
    retainUntil = new Date(Date.now() - DAY);
    s3.on(GetObjectLegalHoldCommand).resolves({ LegalHold: { Status: 'ON' } });
    const run = await runMain(['tenants', 'prune', 'acme', '--in', 's3://backups/backups/acme/', '--keep-last', '1', '--region', 'us-east-1']);
    expect(run.status).toBe(3);
    expect(run.stderr).toMatch(/^openclaw: s3:\/\/backups\/backups\/acme\/2026-06-01\.tar\.zst is kept by a legal hold: its data cannot be deleted/);
    expect(s3.commandCalls(DeleteObjectCommand)).toHaveLength(0);
    const dry = await runMain(['tenants', 'prune', 'acme', '--in', 's3://backups/backups/acme/', '--keep-last', '1', '--region', 'us-east-1', '--dry-run']);
    expect(dry.status).toBe(3);
    expect(dry.stdout).toMatch(/the prune would be REFUSED: .*legal hold/);
  });

  describe("a killed backup's unfinished multipart uploads", () => {
    const now = new Date('2026-06-10T00:00:00.000Z');
    const upload = (Key: string, UploadId: string, daysAgo: number) => ({ Key, UploadId, Initiated: new Date(now.getTime() - daysAgo * DAY) });
    // Two pages, as S3 answers past 1,000 uploads.
    const pages = [
      { Uploads: [upload('backups/acme/2026-05-01.tar.zst', 'killed-in-may', 40), upload('backups/acme/2026-06-02.tar.zst', 'killed-8-days-ago', 8)], IsTruncated: true, NextKeyMarker: 'backups/acme/2026-06-02.tar.zst', NextUploadIdMarker: 'killed-8-days-ago' },
      { Uploads: [upload('backups/acme/2026-06-09.tar.zst', 'still-sending', 0.5), upload('backups/acme/photos/cat.jpg', 'another-tools', 30),
        // Keys no backup writes (it refuses them): another tool's, though below acme's directory with .tar in the name.
        upload('backups/acme/../acme2/2026-05-01.tar.zst', 'dot-dot', 30), upload('backups/acme//2026-05-01.tar.zst', 'empty-segment', 30)], IsTruncated: false },
    ];
    beforeEach(() => {
      retainUntil = new Date(now.getTime() - DAY);
      s3.on(ListMultipartUploadsCommand).callsFake((input: { KeyMarker?: string }) => (input.KeyMarker === undefined ? pages[0] : pages[1]));
      s3.on(AbortMultipartUploadCommand).resolves({});
      // Each sent its last part the day it started.
      s3.on(ListPartsCommand).callsFake((input: { UploadId: string }) => {
        const started = pages.flatMap((page) => page.Uploads).find((upload) => upload.UploadId === input.UploadId)!.Initiated;
        return { Parts: [{ PartNumber: 1, LastModified: started }], IsTruncated: false };
      });
    });
    const aborted = () => s3.commandCalls(AbortMultipartUploadCommand).map((call) => `${call.args[0].input.Key} ${call.args[0].input.UploadId}`);

    it("aborts the tenant's uploads started over 7 days ago, never a younger one nor another tool's (a key no backup writes); a dry run only names them", async () => {
      const dry = await pruneBackups({ store: store(), tenant: 'acme', policy: { last: 3 }, dryRun: true, now: () => now });
      expect(dry.abortedUploads).toEqual([
        { location: 's3://backups/backups/acme/2026-05-01.tar.zst', initiatedAt: '2026-05-01T00:00:00.000Z' },
        { location: 's3://backups/backups/acme/2026-06-02.tar.zst', initiatedAt: '2026-06-02T00:00:00.000Z' },
      ]);
      expect(aborted()).toEqual([]);

      const result = await pruneBackups({ store: store(), tenant: 'acme', policy: { last: 3 }, now: () => now });
      expect(result.abortedUploads).toEqual(dry.abortedUploads);
      expect(aborted()).toEqual(['backups/acme/2026-05-01.tar.zst killed-in-may', 'backups/acme/2026-06-02.tar.zst killed-8-days-ago']);
      expect(result.notes).toContain('1 unfinished multipart upload of "acme" started or sent a part in the last 7 days left alone (a backup may still be sending it)');
      expect(s3.commandCalls(ListMultipartUploadsCommand).slice(-2).map((call) => call.args[0].input)).toEqual([
        { Bucket: 'backups', Prefix: 'backups/acme/' },
        { Bucket: 'backups', Prefix: 'backups/acme/', KeyMarker: 'backups/acme/2026-06-02.tar.zst', UploadIdMarker: 'killed-8-days-ago' },
      ]);
    });

    it('leaves alone an upload started long ago (or said to be: moto dates every one 2010) that took a part lately, whatever page its parts come in', async () => {
      s3.on(ListPartsCommand).callsFake((input: { UploadId: string; PartNumberMarker?: string }) =>
        input.UploadId !== 'killed-in-may'
          ? { Parts: [{ PartNumber: 1, LastModified: new Date(now.getTime() - 20 * DAY) }], IsTruncated: false }
          : input.PartNumberMarker === undefined
            ? { Parts: [{ PartNumber: 1, LastModified: new Date(now.getTime() - 40 * DAY) }], IsTruncated: true, NextPartNumberMarker: '1' }
            : { Parts: [{ PartNumber: 2, LastModified: new Date(now.getTime() - DAY) }], IsTruncated: false },
      );
      const result = await pruneBackups({ store: store(), tenant: 'acme', policy: { last: 3 }, now: () => now });
      expect(aborted()).toEqual(['backups/acme/2026-06-02.tar.zst killed-8-days-ago']);
      expect(result.abortedUploads).toEqual([{ location: 's3://backups/backups/acme/2026-06-02.tar.zst', initiatedAt: '2026-06-02T00:00:00.000Z' }]);
      expect(result.notes).toContain('2 unfinished multipart uploads of "acme" started or sent a part in the last 7 days left alone (backups may still be sending them)');
    });

    it('leaves alone an upload with no part yet, whatever its start says (moto dates every upload 2010: a backup about to send its first part was cut)', async () => {
      s3.on(ListPartsCommand).callsFake((input: { UploadId: string }) => (input.UploadId === 'killed-in-may' ? { IsTruncated: false } : { Parts: [{ PartNumber: 1, LastModified: new Date(now.getTime() - 8 * DAY) }], IsTruncated: false }));
      const result = await pruneBackups({ store: store(), tenant: 'acme', policy: { last: 3 }, now: () => now });
      expect(aborted()).toEqual(['backups/acme/2026-06-02.tar.zst killed-8-days-ago']);
      expect(result.notes).toContain('1 unfinished multipart upload of "acme" with no part yet left alone (it holds no bytes, and only a start time a store may misdate shows its age: a backup may be about to send its first part)');
    });

    it('names, and leaves alone, uploads named after the tenant outside its directory (`--to s3://bucket/acme-{date}.tar.zst`): nothing proves them its own', async () => {
      s3.on(ListMultipartUploadsCommand).resolves({ Uploads: [upload('backups/acme-2026-05-01.tar.zst', 'root', 40), upload('backups/acme-eu-2026-05-01.tar.zst', 'root-eu', 40), upload('backups/beta-2026-05-01.tar.zst', 'beta', 40)], IsTruncated: false });
      const atRoot = new S3ArchiveStore({ client: new S3Client({ region: 'us-east-1' }), bucket: 'backups', prefix: 'backups/' });
      const result = await pruneBackups({ store: atRoot, tenant: 'acme', policy: { last: 3 }, now: () => now });
      expect(aborted()).toEqual([]);
      expect(result.abortedUploads).toEqual([]);
      expect(result.notes).toContain(
        'the unfinished multipart upload to s3://backups/backups/acme-2026-05-01.tar.zst (started 2026-05-01T00:00:00.000Z) and 1 more left alone: named after "acme" but in no directory of its name, so nothing shows they are its backup\'s (another tenant\'s name may start so); if killed, abort them with aws s3api abort-multipart-upload (or let a lifecycle rule abort them)',
      );
      expect(result.notes.join('\n')).not.toMatch(/beta-/);
    });

    it("judges by the store's clock, not a host's a week and more ahead (the SDK's offset, learnt from the store's answers)", async () => {
      const storeNow = Date.now() - 10 * DAY;
      s3.on(ListMultipartUploadsCommand).resolves({ Uploads: [{ Key: 'backups/acme/live.tar.zst', UploadId: 'live', Initiated: new Date(storeNow - 2 * DAY) }], IsTruncated: false });
      s3.on(ListPartsCommand).resolves({ Parts: [{ PartNumber: 1, LastModified: new Date(storeNow - 3_600_000) }], IsTruncated: false });
      const aheadHost = new S3ArchiveStore({ client: new S3Client({ region: 'us-east-1', systemClockOffset: storeNow - Date.now() }), bucket: 'backups', prefix: 'backups/acme/' });
      const result = await pruneBackups({ store: aheadHost, tenant: 'acme', policy: { last: 3 } });
      expect(aborted()).toEqual([]);
      expect(result.abortedUploads).toEqual([]);
    });

    it('leaves alone an upload whose parts cannot be listed, and passes over one gone since the listing', async () => {
      s3.on(ListPartsCommand).rejectsOnce(s3Error('AccessDenied', 403)).rejectsOnce(s3Error('NoSuchUpload', 404));
      const result = await pruneBackups({ store: store(), tenant: 'acme', policy: { last: 3 }, now: () => now });
      expect(aborted()).toEqual([]);
      expect(result.abortedUploads).toEqual([]);
      expect(result.notes).toContainEqual(expect.stringMatching(/^the unfinished multipart upload to s3:\/\/backups\/backups\/acme\/2026-05-01\.tar\.zst \(started 2026-05-01T00:00:00\.000Z\) left alone: when it last took a part could not be read: /));
    });

    it('leaves alone an upload whose parts a store lists round and round (a new marker each page, past 10,000 parts)', async () => {
      s3.on(ListPartsCommand).callsFake((input: { PartNumberMarker?: string }) => {
        const at = Number(input.PartNumberMarker ?? 0);
        return { Parts: Array.from({ length: 1000 }, (_, index) => ({ PartNumber: at + index + 1, LastModified: new Date(now.getTime() - 30 * DAY) })), IsTruncated: true, NextPartNumberMarker: String(at + 1000) };
      });
      const result = await pruneBackups({ store: store(), tenant: 'acme', policy: { last: 3 }, now: () => now });
      expect(aborted()).toEqual([]);
      expect(result.notes).toContainEqual(expect.stringMatching(/left alone: when they last took a part could not be read: .*more than 10000 parts/));
    });

    it('stops looking when a store lists empty pages of uploads round and round (a new marker each), with a note, and prunes on', async () => {
      s3.on(ListMultipartUploadsCommand).callsFake((input: { KeyMarker?: string }) => ({ Uploads: [], IsTruncated: true, NextKeyMarker: `backups/acme/${String(Number(input.KeyMarker?.slice(13) ?? 0) + 1).padStart(8, '0')}`, NextUploadIdMarker: 'x' }));
      const result = await pruneBackups({ store: store(), tenant: 'acme', policy: { last: 3 }, now: () => now });
      expect(result.abortedUploads).toBeUndefined();
      expect(result.notes).toContainEqual(expect.stringMatching(/could not be looked for: .*listing of unfinished multipart uploads goes round in a loop \(100 pages without an upload\)/));
    });

    it('stops looking, with a note, when a store sends pages of uploads again under markers that go back', async () => {
      s3.on(ListMultipartUploadsCommand).callsFake((input: { KeyMarker?: string }) => (input.KeyMarker === undefined ? pages[0] : { ...pages[0], IsTruncated: true, NextKeyMarker: 'backups/acme/2026-01-01.tar.zst', NextUploadIdMarker: 'y' }));
      const result = await pruneBackups({ store: store(), tenant: 'acme', policy: { last: 3 }, now: () => now });
      expect(result.abortedUploads).toBeUndefined();
      expect(result.notes).toContainEqual(expect.stringMatching(/could not be looked for: .*goes round in a loop \(a key marker before the last\)/));
    });

    // Every upload below the prefix was held, and a prefix of more than 100,000 (a bucket-wide one) refused.
    it("lists any number of other tenants' uploads past them, holding only those that may be the tenant's (before: refused past 100,000)", async () => {
      const others = 150;
      // acme's two pages, then 150 pages of 1,000 uploads of other tenants (S3's order: by key).
      s3.on(ListMultipartUploadsCommand).callsFake((input: { KeyMarker?: string }) => {
        if (input.KeyMarker === undefined) return pages[0]!;
        if (input.KeyMarker === pages[0]!.NextKeyMarker) return { ...pages[1]!, IsTruncated: true, NextKeyMarker: 'backups/acme/photos/cat.jpg', NextUploadIdMarker: 'another-tools' };
        const at = input.KeyMarker.startsWith('backups/acme') ? 0 : Number(/beta(\d+)\//.exec(input.KeyMarker)![1]) + 1;
        const keys = Array.from({ length: 1000 }, (_, index) => `backups/beta${String(at).padStart(4, '0')}/${String(index).padStart(4, '0')}.tar.zst`);
        return { Uploads: keys.map((Key) => upload(Key, Key, 40)), IsTruncated: at < others - 1, NextKeyMarker: keys.at(-1), NextUploadIdMarker: keys.at(-1) };
      });
      s3.on(ListPartsCommand).callsFake(() => ({ Parts: [{ PartNumber: 1, LastModified: new Date(now.getTime() - 40 * DAY) }], IsTruncated: false }));
      const atRoot = new S3ArchiveStore({ client: new S3Client({ region: 'us-east-1' }), bucket: 'backups', prefix: 'backups/' });
      const result = await pruneBackups({ store: atRoot, tenant: 'acme', policy: { last: 3 }, dryRun: true, now: () => now });
      expect(result.notes.join('\n')).not.toMatch(/could not be looked for/);
      expect(result.abortedUploads?.map((aborted) => aborted.location)).toEqual(['s3://backups/backups/acme/2026-05-01.tar.zst', 's3://backups/backups/acme/2026-06-02.tar.zst']);
      expect(s3.commandCalls(ListMultipartUploadsCommand)).toHaveLength(others + 2);
      expect(s3.commandCalls(ListPartsCommand)).toHaveLength(2);
    });

    // S3 orders uploads by key, then by when they started: a backup killed night after night at
    // one key leaves uploads that run over pages, each page's markers at that key (the key
    // again, a new upload ID). No marker goes back nor comes again: not a store going round.
    it('lists uploads at one key over several pages, as S3 pages them, and aborts each stale one once', async () => {
      const atOneKey = Array.from({ length: 2_500 }, (_, night) => upload('backups/acme/nightly.tar.zst', `id-${(night * 7919) % 2_500}`, 40 - night / 1_000));
      const uploads = [upload('backups/acme/2026-05-01.tar.zst', 'killed-in-may', 40), ...atOneKey, upload('backups/acme/photos/cat.jpg', 'another-tools', 30)];
      s3.on(ListMultipartUploadsCommand).callsFake((input: { KeyMarker?: string; UploadIdMarker?: string }) => {
        const from =
          input.KeyMarker === undefined
            ? 0
            : input.UploadIdMarker === undefined
              ? uploads.findIndex((listed) => listed.Key > input.KeyMarker!)
              : uploads.findIndex((listed) => listed.Key === input.KeyMarker && listed.UploadId === input.UploadIdMarker) + 1;
        const page = uploads.slice(from, from + 1_000);
        const last = page.at(-1)!;
        return from + 1_000 < uploads.length ? { Uploads: page, IsTruncated: true, NextKeyMarker: last.Key, NextUploadIdMarker: last.UploadId } : { Uploads: page, IsTruncated: false };
      });
      s3.on(ListPartsCommand).callsFake((input: { UploadId: string }) => ({ Parts: [{ PartNumber: 1, LastModified: uploads.find((listed) => listed.UploadId === input.UploadId)!.Initiated }], IsTruncated: false }));
      const result = await pruneBackups({ store: store(), tenant: 'acme', policy: { last: 3 }, now: () => now });
      expect(result.notes.join('\n')).not.toMatch(/could not be looked for/);
      expect(s3.commandCalls(ListMultipartUploadsCommand).map((call) => call.args[0].input.KeyMarker)).toEqual([undefined, 'backups/acme/nightly.tar.zst', 'backups/acme/nightly.tar.zst']);
      expect(aborted()).toHaveLength(2_501);
      expect(new Set(aborted()).size).toBe(2_501);
    });

    it('says in one note that the parts of any number of uploads could not be listed (credentials without s3:ListMultipartUploadParts)', async () => {
      s3.on(ListPartsCommand).rejects(s3Error('AccessDenied', 403));
      const result = await pruneBackups({ store: store(), tenant: 'acme', policy: { last: 3 }, now: () => now });
      expect(aborted()).toEqual([]);
      expect(result.notes.filter((note) => /multipart/.test(note))).toEqual([
        expect.stringMatching(/^the unfinished multipart upload to s3:\/\/backups\/backups\/acme\/2026-05-01\.tar\.zst \(started 2026-05-01T00:00:00\.000Z\) and 1 more left alone: when they last took a part could not be read: /),
        '1 unfinished multipart upload of "acme" started or sent a part in the last 7 days left alone (a backup may still be sending it)',
      ]);
    });

    it('says so and prunes on when the store cannot list them (s3rver: 501) or will not abort one (403); one gone meanwhile counts as aborted', async () => {
      s3.on(AbortMultipartUploadCommand).rejectsOnce(s3Error('NoSuchUpload', 404)).rejectsOnce(s3Error('AccessDenied', 403));
      const result = await pruneBackups({ store: store(), tenant: 'acme', policy: { last: 1 }, now: () => now });
      expect(result.removed).toBe(2);
      expect(result.abortedUploads).toEqual([{ location: 's3://backups/backups/acme/2026-05-01.tar.zst', initiatedAt: '2026-05-01T00:00:00.000Z' }]);
      expect(result.notes).toContainEqual(expect.stringMatching(/^the unfinished multipart upload to s3:\/\/backups\/backups\/acme\/2026-06-02\.tar\.zst \(started 2026-06-02T00:00:00\.000Z\) could not be aborted: .*AccessDenied|access denied/i));

      s3.on(ListMultipartUploadsCommand).rejects(s3Error('NotImplemented', 501));
      const quiet = await pruneBackups({ store: store(), tenant: 'acme', policy: { last: 3 }, now: () => now });
      expect(quiet.abortedUploads).toBeUndefined();
      expect(quiet.notes.join('\n')).not.toMatch(/multipart/);
    });

    it('shows what it aborted, through the CLI', async () => {
      const run = await runMain(['tenants', 'prune', 'acme', '--in', 's3://backups/backups/acme/', '--keep-last', '3', '--region', 'us-east-1']);
      expect(run.status).toBe(0);
      expect(run.stdout).toMatch(/^ {2}aborted the unfinished multipart upload to s3:\/\/backups\/backups\/acme\/2026-05-01\.tar\.zst started 2026-05-01 00:00:00 UTC \(a killed backup's parts\)$/m);
    });
  });
});

it('a prune of backups that are all kept removes nothing and needs no bucket settings', async () => {
  const only = path.join(dir.path, 'only');
  await backupAt(tenantsDir, 'acme', path.join(only, 'one.tar.zst'), new Date(JUNE_1));
  const run = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', only, '--keep-monthly', '12']);
  expect(JSON.parse(run.stdout)).toMatchObject({ removed: 0, remove: [], deletion: { versioning: 'off' } });
  expect(existsSync(path.join(only, 'one.tar.zst'))).toBe(true);
});

it('interrupted after some removals (Ctrl-C, the Lambda deadline), says how many it removed, and a second run removes the rest', async () => {
  const where = path.join(dir.path, 'interrupted');
  for (let day = 0; day < 5; day++) await backupAt(tenantsDir, 'acme', path.join(where, `${day}.tar.zst`), new Date(JUNE_1 + day * DAY));
  const store = await openStore(where, {});
  const controller = new AbortController();
  let removals = 0;
  // Interrupted as the second removal is done: the first two are gone, the other two still there.
  const interrupted: ArchiveStore = storeWith(store, {
    remove: async (...args: Parameters<ArchiveStore['remove']>) => {
      const outcome = await store.remove(...args);
      if (++removals === 2) controller.abort(new AbortedError('interrupted by SIGINT'));
      return outcome;
    },
  });
  const error = await pruneBackups({ store: interrupted, tenant: 'acme', policy: { last: 1 }, signal: controller.signal }).catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(AbortedError);
  expect((error as AbortedError).message).toBe('prune removed 2 of 4 backups, then stopped (run it again to remove the rest): interrupted by SIGINT');
  expect(readdirSync(where).filter((file) => !file.startsWith('.')).sort()).toEqual(['2.tar.zst', '3.tar.zst', '4.tar.zst']);
  const again = await pruneBackups({ store, tenant: 'acme', policy: { last: 1 } });
  expect(again.removed).toBe(2);
  expect(readdirSync(where).filter((file) => !file.startsWith('.'))).toEqual(['4.tar.zst']);
});

it('interrupted after finding a backup already gone (another prune at work) and removing one, says how many of each', async () => {
  const where = path.join(dir.path, 'interrupted-gone');
  for (let day = 0; day < 4; day++) await backupAt(tenantsDir, 'acme', path.join(where, `${day}.tar.zst`), new Date(JUNE_1 + day * DAY));
  const store = await openStore(where, {});
  const controller = new AbortController();
  let removals = 0;
  // The other prune removed the first one; this one is interrupted as its second removal is done.
  const racing: ArchiveStore = storeWith(store, {
    remove: async (...args: Parameters<ArchiveStore['remove']>) => {
      if (removals === 0) rmSync(args[0].location);
      const outcome = await store.remove(...args);
      if (++removals === 2) controller.abort(new AbortedError('interrupted by SIGTERM'));
      return outcome;
    },
  });
  const error = await pruneBackups({ store: racing, tenant: 'acme', policy: { last: 1 }, signal: controller.signal }).catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(PruneStoppedError);
  expect((error as Error).message).toBe('prune removed 1 of 3 backups; 1 already gone, then stopped (run it again to remove the rest): interrupted by SIGTERM');
  expect(readdirSync(where).filter((file) => !file.startsWith('.')).sort()).toEqual(['2.tar.zst', '3.tar.zst']);
});

it('interrupted having removed none but found one already gone, still says it stopped part way (a prune stopped, which a Lambda retry finishes), not stopped before it removed anything', async () => {
  const where = path.join(dir.path, 'interrupted-all-gone');
  for (let day = 0; day < 3; day++) await backupAt(tenantsDir, 'acme', path.join(where, `${day}.tar.zst`), new Date(JUNE_1 + day * DAY));
  const store = await openStore(where, {});
  const controller = new AbortController();
  const racing: ArchiveStore = storeWith(store, {
    remove: async (...args: Parameters<ArchiveStore['remove']>) => {
      rmSync(args[0].location);
      const outcome = await store.remove(...args);
      controller.abort(new AbortedError('interrupted by SIGTERM'));
      return outcome;
    },
  });
  const error = await pruneBackups({ store: racing, tenant: 'acme', policy: { last: 1 }, signal: controller.signal }).catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(PruneStoppedError);
  expect((error as Error).message).toBe('prune removed 0 of 2 backups; 1 already gone, then stopped (run it again to remove the rest): interrupted by SIGTERM');
});

it('interrupted after a removal the store refused, names the refused one', async () => {
  const where = path.join(dir.path, 'interrupted-refused');
  for (let day = 0; day < 4; day++) await backupAt(tenantsDir, 'acme', path.join(where, `${day}.tar.zst`), new Date(JUNE_1 + day * DAY));
  const store = await openStore(where, {});
  const controller = new AbortController();
  let removals = 0;
  // The first removal refused (a bucket policy, Object Lock), interrupted during the second.
  const refusing: ArchiveStore = storeWith(store, {
    remove: async (...args: Parameters<ArchiveStore['remove']>) => {
      if (++removals === 1) throw new StorageError(`access denied to ${args[0].location}`, 'ACCESS_DENIED');
      controller.abort(new AbortedError('interrupted by SIGTERM'));
      throw controller.signal.reason;
    },
  });
  const error = await pruneBackups({ store: refusing, tenant: 'acme', policy: { last: 1 }, signal: controller.signal }).catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(AbortedError);
  expect((error as AbortedError).message).toBe(
    `prune removed 0 of 3 backups; 1 could not be removed (${path.join(where, '0.tar.zst')}), then stopped (run it again to remove the rest): interrupted by SIGTERM`,
  );
  expect(readdirSync(where).filter((file) => !file.startsWith('.'))).toHaveLength(4);
});

describe('prune below a prefix of many tenants (S3 mocked)', () => {
  // Each object looked at is a request (~1 ms of the SDK's CPU): a million of other tenants outlasted the prune function's 15 minutes.
  let s3: ReturnType<typeof mockClient>;
  beforeAll(() => {
    s3 = mockClient(S3Client);
  });
  afterAll(() => s3.restore());
  const frame = (magic: number, payload: object) => {
    const bytes = Buffer.from(JSON.stringify(payload));
    const header = Buffer.alloc(8);
    header.writeUInt32LE(magic, 0);
    header.writeUInt32LE(bytes.length, 4);
    return Buffer.concat([header, bytes]);
  };
  /** A whole archive of `tenant` made on `day` of June 2026 as a listing sees it: the marker, 8 KiB of frames, the footer. */
  const archive = (tenant: string, day: number) =>
    Buffer.concat([
      frame(0x184d2a5c, { format: 'openclawmu-tenant-backup', formatVersion: 2, tenant, createdAt: `2026-06-0${day}T03:00:00.000Z`, toolVersion: '0.1.0' }),
      Buffer.alloc(8192, 1),
      frame(0x184d2a5d, { format: 'openclawmu-tenant-backup', tenant, manifestSha256: 'a'.repeat(64) }),
    ]);
  const storeOf = (objects: Record<string, Buffer>, prefix = '') => {
    s3.reset();
    s3.on(ListObjectsV2Command).resolves({ Contents: Object.keys(objects).sort().map((Key) => ({ Key, Size: objects[Key]!.length, ETag: `"${Key}"`, LastModified: new Date('2026-06-10') })) });
    s3.on(GetObjectCommand).callsFake((input: { Key: string; Range: string }) => {
      const bytes = objects[input.Key]!;
      const [start, end] = /^bytes=(\d+)-(\d+)$/.exec(input.Range)!.slice(1).map(Number);
      const last = Math.min(end!, bytes.length - 1);
      return { Body: sdkStreamMixin(Readable.from([bytes.subarray(start, last + 1)])), ContentLength: last - start! + 1, ContentRange: `bytes ${start}-${last}/${bytes.length}`, ETag: `"${input.Key}"`, Metadata: {} };
    });
    s3.on(GetObjectTaggingCommand).resolves({ TagSet: [] });
    s3.on(GetBucketVersioningCommand).resolves({});
    s3.on(GetObjectLockConfigurationCommand).rejects(new S3ServiceException({ name: 'ObjectLockConfigurationNotFoundError', $fault: 'client', $metadata: { httpStatusCode: 404 }, message: 'none' }));
    s3.on(GetBucketLifecycleConfigurationCommand).rejects(new S3ServiceException({ name: 'NoSuchLifecycleConfiguration', $fault: 'client', $metadata: { httpStatusCode: 404 }, message: 'none' }));
    s3.on(ListMultipartUploadsCommand).resolves({ Uploads: [] });
    s3.on(DeleteObjectCommand).resolves({});
    return new S3ArchiveStore({ client: new S3Client({ region: 'us-east-1' }), bucket: 'bkt', prefix });
  };
  const read = () => s3.commandCalls(GetObjectCommand).map((call) => (call.args[0].input as { Key: string }).Key);
  /** acme's backups of June 1-3 in a versioned bucket of a store not trusted with If-Match (its deletes are unconditional). */
  const versionedWithoutIfMatch = () => {
    const objects: Record<string, Buffer> = {};
    for (const day of [1, 2, 3]) objects[`acme/2026-06-0${day}.tar.zst`] = archive('acme', day);
    storeOf(objects);
    const store = new S3ArchiveStore({ client: new S3Client({ region: 'us-east-1' }), bucket: 'bkt', prefix: '', conditionalWrites: false });
    s3.on(GetBucketVersioningCommand).resolves({ Status: 'Enabled' });
    s3.on(HeadObjectCommand).callsFake((input: { Key: string }) => ({ ETag: `"${input.Key}"`, ContentLength: objects[input.Key]!.length }));
    return { objects, store };
  };

  it("looks only at the objects whose names hold the tenant's: another tenant's cost no request, and a backup under another name is left alone", async () => {
    const objects: Record<string, Buffer> = {};
    for (const day of [1, 2, 3]) objects[`acme/2026-06-0${day}.tar.zst`] = archive('acme', day);
    for (let other = 0; other < 50; other++) objects[`globex-${other}/2026-06-01.tar.zst`] = archive(`globex-${other}`, 1);
    // Another tenant whose name holds this one's: looked at, one request, and not removed.
    objects['acme-eu/2026-06-01.tar.zst'] = archive('acme-eu', 1);
    // A backup of acme written under a name without it (tenants backup acme --to s3://bkt/daily/…): neither removed nor counted.
    objects['daily/2026-06-01.tar.zst'] = archive('acme', 1);
    const store = storeOf(objects);
    const result = await pruneBackups({ store, tenant: 'acme', policy: { last: 1 } });
    expect(result.keep.map((decision) => decision.location)).toEqual(['s3://bkt/acme/2026-06-03.tar.zst']);
    expect(result.remove.map((decision) => decision.location)).toEqual(['s3://bkt/acme/2026-06-01.tar.zst', 's3://bkt/acme/2026-06-02.tar.zst']);
    expect(s3.commandCalls(DeleteObjectCommand).map((call) => (call.args[0].input as { Key: string }).Key)).toEqual(['acme/2026-06-01.tar.zst', 'acme/2026-06-02.tar.zst']);
    expect(new Set(read())).toEqual(new Set(['acme-eu/2026-06-01.tar.zst', 'acme/2026-06-01.tar.zst', 'acme/2026-06-02.tar.zst', 'acme/2026-06-03.tar.zst']));
    expect(read().filter((key) => key === 'acme-eu/2026-06-01.tar.zst')).toHaveLength(1);
    expect(result.notes).toContain(
      '51 objects in s3://bkt/ whose names do not hold "acme" were not looked at: a backup of "acme" under such a name (not written through a {tenant} template) is neither removed nor counted',
    );
  });

  it('looks at the objects named by date alone too (no other tenant\'s by name): the tenant\'s go by the rules with its named ones, another\'s stay; names of other tenants still cost nothing', async () => {
    const objects: Record<string, Buffer> = {};
    for (const day of [1, 2]) objects[`2026-06-0${day}.tar.zst`] = archive('acme', day);
    objects['2026-06-04.tar.zst'] = archive('globex-1', 4);
    for (const day of [3, 5]) objects[`acme/2026-06-0${day}.tar.zst`] = archive('acme', day);
    for (let other = 0; other < 20; other++) objects[`globex-${other}/2026-06-01.tar.zst`] = archive(`globex-${other}`, 1);
    const result = await pruneBackups({ store: storeOf(objects), tenant: 'acme', policy: { last: 3 } });
    expect(result.keep.map((decision) => decision.location)).toEqual(['s3://bkt/acme/2026-06-05.tar.zst', 's3://bkt/acme/2026-06-03.tar.zst', 's3://bkt/2026-06-02.tar.zst']);
    expect(s3.commandCalls(DeleteObjectCommand).map((call) => (call.args[0].input as { Key: string }).Key)).toEqual(['2026-06-01.tar.zst']);
    expect(read().filter((key) => key.startsWith('globex-'))).toEqual([]);
    expect(result.notes).toContain('20 objects in s3://bkt/ whose names do not hold "acme" were not looked at: a backup of "acme" under such a name (not written through a {tenant} template) is neither removed nor counted');
  });

  it('looks at only the first few objects named by date alone below a directory holding another tenant\'s backups (tenants named `2026`, `jun`, `1780282800`): the rest of that directory costs no request', async () => {
    const objects: Record<string, Buffer> = {};
    for (const day of [2, 3, 4]) objects[`acme/2026-06-0${day}.tar.zst`] = archive('acme', day);
    // Tenants named like a year, a month's name and seconds since 1970, each backed up below its own name, by date: 40 objects each.
    for (const other of ['2026', 'jun', '1780282800']) {
      for (let hour = 0; hour < 40; hour++) objects[`${other}/2026-06-01T${String(hour % 24).padStart(2, '0')}${String(hour).padStart(2, '0')}.tar.zst`] = archive(other, 1);
    }
    // acme's own, named by a date alone at the top: still looked at and judged.
    objects['2026-06-01.tar.zst'] = archive('acme', 1);
    const result = await pruneBackups({ store: storeOf(objects), tenant: 'acme', policy: { last: 2 } });
    expect(result.keep.map((decision) => decision.location)).toEqual(['s3://bkt/acme/2026-06-04.tar.zst', 's3://bkt/acme/2026-06-03.tar.zst']);
    expect(s3.commandCalls(DeleteObjectCommand).map((call) => (call.args[0].input as { Key: string }).Key)).toEqual(['2026-06-01.tar.zst', 'acme/2026-06-02.tar.zst']);
    // At most one look per inspecting worker (8) in each of the three directories, not 40.
    for (const other of ['2026/', 'jun/', '1780282800/']) expect(new Set(read().filter((key) => key.startsWith(other))).size).toBeLessThanOrEqual(8);
    expect(result.notes[0]).toMatch(/^\d+ objects named by a date alone in s3:\/\/bkt\/ were not looked at: they are below directories named after and holding backups of another tenant \("1780282800", "2026", "jun"\); a backup of "acme" there is neither removed nor counted$/);
  });

  it('in a versioned bucket of a store not trusted with If-Match, counts not as removed a backup another prune deleted between the HEAD and the DELETE (the version below the delete marker it added is the other\'s marker)', async () => {
    const { objects, store } = versionedWithoutIfMatch();
    // Both DELETEs answer 204 with the marker each added; another prune's marker was current below the first one's.
    s3.on(DeleteObjectCommand).callsFake((input: { Key: string }) => ({ DeleteMarker: true, VersionId: `ours-${input.Key}` }));
    s3.on(ListObjectVersionsCommand).callsFake((input: { Key?: string; KeyMarker: string; VersionIdMarker: string }) =>
      input.KeyMarker === 'acme/2026-06-01.tar.zst' ? { DeleteMarkers: [{ Key: input.KeyMarker, VersionId: 'the-other-prunes' }] } : { Versions: [{ Key: input.KeyMarker, VersionId: 'the-backup' }] },
    );
    const result = await pruneBackups({ store, tenant: 'acme', policy: { last: 1 } });
    expect(s3.commandCalls(DeleteObjectCommand)).toHaveLength(2);
    expect([result.removed, result.bytesRemoved]).toEqual([1, objects['acme/2026-06-02.tar.zst']!.length]);
    expect(result.skipped).toEqual([{ location: 's3://bkt/acme/2026-06-01.tar.zst', reason: GONE_REASON }]);
    expect(s3.commandCalls(ListObjectVersionsCommand).map((call) => call.args[0].input)).toEqual(
      ['acme/2026-06-01.tar.zst', 'acme/2026-06-02.tar.zst'].map((key) => ({ Bucket: 'bkt', Prefix: key, KeyMarker: key, VersionIdMarker: `ours-${key}`, MaxKeys: 1 })),
    );
    // A store that ignores VersionIdMarker lists the key from its newest version, this prune's own marker: it cannot tell, counted as before.
    s3.on(ListObjectVersionsCommand).callsFake((input: { KeyMarker: string; VersionIdMarker: string }) => ({ DeleteMarkers: [{ Key: input.KeyMarker, VersionId: input.VersionIdMarker }] }));
    const ignored = await pruneBackups({ store, tenant: 'acme', policy: { last: 1 } });
    expect([ignored.removed, ignored.skipped]).toEqual([2, []]);
    // Credentials that may not list versions (s3:ListBucketVersions): counted as before.
    s3.on(ListObjectVersionsCommand).rejects(new S3ServiceException({ name: 'AccessDenied', $fault: 'client', $metadata: { httpStatusCode: 403 }, message: 'denied' }));
    const denied = await pruneBackups({ store, tenant: 'acme', policy: { last: 1 } });
    expect([denied.removed, denied.skipped]).toEqual([2, []]);
  });

  it('in a versioned bucket of a store not trusted with If-Match, a backup written again between the HEAD and the DELETE is not hidden: the version below the marker is not the one listed, so the marker is removed again and the backup skipped as changed', async () => {
    const { objects, store } = versionedWithoutIfMatch();
    s3.on(DeleteObjectCommand).callsFake((input: { Key: string; VersionId?: string }) => (input.VersionId === undefined ? { DeleteMarker: true, VersionId: `ours-${input.Key}` } : { DeleteMarker: true, VersionId: input.VersionId }));
    // acme/2026-06-01 was written again (a backup --overwrite) after the HEAD: below the marker lies that newer version.
    s3.on(ListObjectVersionsCommand).callsFake((input: { KeyMarker: string }) => ({
      Versions: [{ Key: input.KeyMarker, VersionId: 'v', ETag: input.KeyMarker === 'acme/2026-06-01.tar.zst' ? '"written-again"' : `"${input.KeyMarker}"`, Size: objects[input.KeyMarker]!.length }],
    }));
    const result = await pruneBackups({ store, tenant: 'acme', policy: { last: 1 } });
    expect([result.removed, result.bytesRemoved]).toEqual([1, objects['acme/2026-06-02.tar.zst']!.length]);
    expect(result.skipped).toEqual([{ location: 's3://bkt/acme/2026-06-01.tar.zst', reason: CHANGED_REASON }]);
    // Its own marker, and only that, was deleted by version: the newer backup is current again.
    expect(s3.commandCalls(DeleteObjectCommand).map((call) => call.args[0].input).filter((input) => input.VersionId !== undefined)).toEqual([
      { Bucket: 'bkt', Key: 'acme/2026-06-01.tar.zst', VersionId: 'ours-acme/2026-06-01.tar.zst' },
    ]);
    // Stopped (Ctrl-C, the Lambda deadline) right as the look below the marker answers: the marker goes all the same.
    const controller = new AbortController();
    s3.on(ListObjectVersionsCommand).callsFake((input: { KeyMarker: string }) => {
      controller.abort();
      return { Versions: [{ Key: input.KeyMarker, VersionId: 'v', ETag: '"written-again"', Size: objects[input.KeyMarker]!.length }] };
    });
    s3.resetHistory();
    // As the SDK does (its middleware runs first), a request whose signal is aborted by then is not sent.
    const client = new S3Client({ region: 'us-east-1' });
    const send = client.send.bind(client) as (command: unknown, options?: { abortSignal?: AbortSignal }) => Promise<unknown>;
    Object.assign(client, {
      send: async (command: unknown, options?: { abortSignal?: AbortSignal }) => {
        await new Promise((resolve) => setImmediate(resolve));
        if (options?.abortSignal?.aborted === true) throw Object.assign(new Error('Request aborted'), { name: 'AbortError' });
        return send(command, options);
      },
    });
    const stoppable = new S3ArchiveStore({ client, bucket: 'bkt', prefix: '', conditionalWrites: false });
    await expect(pruneBackups({ store: stoppable, tenant: 'acme', policy: { last: 1 }, signal: controller.signal })).rejects.toThrow();
    expect(s3.commandCalls(DeleteObjectCommand).map((call) => call.args[0].input.VersionId)).toEqual([undefined, 'ours-acme/2026-06-01.tar.zst']);
    // Where the marker cannot be removed (no s3:DeleteObjectVersion), the prune fails naming the marker to remove.
    s3.on(DeleteObjectCommand).callsFake((input: { Key: string; VersionId?: string }) => {
      if (input.VersionId !== undefined) throw new S3ServiceException({ name: 'AccessDenied', $fault: 'client', $metadata: { httpStatusCode: 403 }, message: 'denied' });
      return { DeleteMarker: true, VersionId: `ours-${input.Key}` };
    });
    await expect(pruneBackups({ store, tenant: 'acme', policy: { last: 1 } })).rejects.toThrow(
      /acme\/2026-06-01\.tar\.zst was written again .* delete marker ours-acme\/2026-06-01\.tar\.zst; removing the marker failed .*aws s3api delete-object --bucket bkt --key "acme\/2026-06-01\.tar\.zst" --version-id ours-acme\/2026-06-01\.tar\.zst/,
    );
  });

  it('where no backup of the tenant is under its name, looks at every object only up to a limit: above it (a tenant not yet backed up below a large shared prefix), each run looks at one window of the rest, by the day: every window is judged in turn, nothing the whole set keeps is removed, a dry run that day decides as the run', async () => {
    const objects: Record<string, Buffer> = {};
    for (let other = 0; other < 400; other++) objects[`globex-${other}/2026-06-01.tar.zst`] = archive(`globex-${other}`, 1);
    // Backups of acme under names of words, not its own: looked at only where every object is, or in their window.
    for (let day = 1; day <= 9; day++) objects[`daily/2026-06-0${day}.tar.zst`] = archive('acme', day);
    const acmes = () => Object.keys(objects).filter((key) => key.startsWith('daily/')).sort();
    const store = storeOf(objects);
    s3.on(ListObjectsV2Command).callsFake(() => ({ Contents: Object.keys(objects).sort().map((Key) => ({ Key, Size: objects[Key]!.length, ETag: `"${Key}"`, LastModified: new Date('2026-06-10') })) }));
    s3.on(DeleteObjectCommand).callsFake((input: { Key: string }) => {
      delete objects[input.Key];
      return {};
    });
    const day = (index: number) => () => new Date(Date.UTC(2026, 5, 10 + index, 4));

    // At the limit (409 objects not named after acme), every object is looked at: --keep-last 2 leaves the two newest.
    const whole = await pruneBackups({ store, tenant: 'acme', policy: { last: 2 }, lookAtAllLimit: 409, dryRun: true, now: day(0) });
    expect(whole.remove).toHaveLength(7);

    const windows = new Set<string>();
    for (let run = 0; run < 30; run++) {
      s3.resetHistory();
      const dry = await pruneBackups({ store, tenant: 'acme', policy: { last: 2 }, lookAtAllLimit: 80, dryRun: true, now: day(run) });
      const looked = read().length;
      s3.resetHistory();
      const real = await pruneBackups({ store, tenant: 'acme', policy: { last: 2 }, lookAtAllLimit: 80, now: day(run) });
      expect(decisions(real)).toEqual(decisions(dry));
      // One window of about the limit, not all 409 (each look a request).
      expect(looked).toBeLessThan(160);
      const window = /window (\d+) of (\d+)/.exec(real.notes[0]!)!;
      expect(window[2]).toBe('6');
      windows.add(window[1]!);
      // The whole set's two newest are never removed, whichever window a run judged.
      expect(acmes().slice(-2)).toEqual(['daily/2026-06-08.tar.zst', 'daily/2026-06-09.tar.zst']);
    }
    // Every window came (a hash of the day, not the day's count modulo 6).
    expect(windows.size).toBe(6);
    // acme's backups are all in one directory, so one window holds them all: the day it came, they were judged as a whole set.
    expect(acmes()).toEqual(['daily/2026-06-08.tar.zst', 'daily/2026-06-09.tar.zst']);
    expect(Object.keys(objects).filter((key) => key.startsWith('globex-'))).toHaveLength(400);
    const last = await pruneBackups({ store, tenant: 'acme', policy: { last: 2 }, lookAtAllLimit: 80, dryRun: true, now: day(30) });
    expect(last.notes[0]).toMatch(
      /^\d+ objects in s3:\/\/bkt\/ whose names do not hold "acme" were not looked at: a backup of "acme" under such a name \(not written through a \{tenant\} template\) is neither removed nor counted in this run; no backup of "acme" that a rule counts is under a name holding its own, and more than 80 are too many to look at one by one in a run: it looked at \d+ more, window \d of 6 \(by a hash of each directory; the window changes with the day, UTC\), and judged the backups of "acme" there with those under its name as part of a larger set \(nothing the whole set keeps is removed; up to 6 times what the policy keeps may stay\); the other windows are judged on other days \(give --in a prefix holding only its backups to have them judged in one run\)$/,
    );
  });

  it('above the limit, looks at no more than the limit of a window that holds more (directories hash unevenly): the rest of it is left for its next day, in the note', async () => {
    // 20 directories of 10 objects (whole ones: at most an eighth of the limit), 12 of them in the window of the chosen day.
    const names = Array.from({ length: 400 }, (_, index) => `g${index}`);
    const inFirst = names.filter((name) => windowOf(name, 3) === 0).slice(0, 12);
    const elsewhere = names.filter((name) => windowOf(name, 3) !== 0).slice(0, 8);
    const objects: Record<string, Buffer> = {};
    for (const directory of [...inFirst, ...elsewhere]) for (let file = 0; file < 10; file++) objects[`${directory}/${file}.tar.zst`] = archive(directory, 1);
    const dayIndex = Array.from({ length: 100 }, (_, index) => index).find((index) => lookWindow(200, 80, new Date(Date.UTC(2026, 5, 10 + index, 4))).index === 0)!;
    const result = await pruneBackups({ store: storeOf(objects), tenant: 'acme', policy: { last: 2 }, lookAtAllLimit: 80, dryRun: true, now: () => new Date(Date.UTC(2026, 5, 10 + dayIndex, 4)) });
    expect(read()).toHaveLength(80);
    expect(result.notes[0]).toContain('window 1 of 3 (by a hash of each directory; the window changes with the day, UTC; 40 more of it are beyond the limit, left for its next day)');
  });

  it('above the limit, names a store may take for one (Daily/… and daily/…) fall in one window: the one the whole set keeps as the alias of a kept backup is not removed in a window without the other', async () => {
    const objects: Record<string, Buffer> = {};
    for (let other = 0; other < 400; other++) objects[`globex-${other}/2026-06-01.tar.zst`] = archive(`globex-${other}`, 1);
    // Daily/2026-06-01 (acme's newest) and daily/2026-06-01 (an older one): a store folding case removes both at once.
    objects['Daily/2026-06-01.tar.zst'] = archive('acme', 5);
    objects['daily/2026-06-01.tar.zst'] = archive('acme', 1);
    objects['daily/2026-06-02.tar.zst'] = archive('acme', 2);
    const store = storeOf(objects);
    const whole = await pruneBackups({ store, tenant: 'acme', policy: { last: 1 }, lookAtAllLimit: 1000, dryRun: true });
    expect(whole.remove.map((decision) => decision.location)).toEqual(['s3://bkt/daily/2026-06-02.tar.zst']);
    // Every day's window: whichever holds daily/2026-06-01 holds Daily/2026-06-01 too, so it stays.
    for (let day = 0; day < 40; day++) {
      const run = await pruneBackups({ store, tenant: 'acme', policy: { last: 1 }, lookAtAllLimit: 80, dryRun: true, now: () => new Date(Date.UTC(2026, 5, 10 + day, 4)) });
      expect(run.remove.map((decision) => decision.location)).not.toContain('s3://bkt/daily/2026-06-01.tar.zst');
    }
  });

  it('looks at every object where no backup of the tenant is under a name holding its own (backups named by date alone), or the location holds it', async () => {
    const byDate: Record<string, Buffer> = {};
    for (const day of [1, 2, 3]) byDate[`2026-06-0${day}.tar.zst`] = archive('acme', day);
    byDate['notes.txt'] = Buffer.from('notes\n');
    // Another tenant's backup whose name holds this one's is no backup of acme under its name.
    byDate['acme-eu/2026-06-01.tar.zst'] = archive('acme-eu', 1);
    const result = await pruneBackups({ store: storeOf(byDate), tenant: 'acme', policy: { last: 1 } });
    expect(result.remove.map((decision) => decision.location)).toEqual(['s3://bkt/2026-06-01.tar.zst', 's3://bkt/2026-06-02.tar.zst']);
    expect(result.notes.filter((note) => note.includes('not looked at'))).toEqual([]);

    // Below a prefix named after the tenant (its own), every object is looked at, whatever its name below it.
    const own: Record<string, Buffer> = { 'acme/2026-06-01.tar.zst': archive('acme', 1), 'acme/2026-06-02.tar.zst': archive('acme', 2), 'acme/acme-3.tar.zst': archive('acme', 3) };
    const inOwnPrefix = await pruneBackups({ store: storeOf(own, 'acme/'), tenant: 'acme', policy: { last: 1 } });
    expect(inOwnPrefix.keep.map((decision) => decision.location)).toEqual(['s3://bkt/acme/acme-3.tar.zst']);
    expect(inOwnPrefix.remove.map((decision) => decision.location)).toEqual(['s3://bkt/acme/2026-06-01.tar.zst', 's3://bkt/acme/2026-06-02.tar.zst']);
  });
});
