// `tenants verify`: the restore's own checks on the whole archive, nothing written. Against a
// local file and s3rver, through the CLI (exit codes 0 intact, 3 damaged naming the bad
// directory, 1 unreadable); the verification mark beside the archive; and, on a table of
// hostile and damaged archives, the same verdict as a restore, word for word.

import { GetObjectTaggingCommand, HeadObjectCommand, PutObjectCommand, PutObjectTaggingCommand, type S3Client } from '@aws-sdk/client-s3';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ARCHIVE_FOOTER_NIBBLE, ARCHIVE_MARKER_NIBBLE } from '../shared/archive/manifest.js';
import { skippableFrame } from '../shared/archive/zstd-format.js';
import { restoreTenant } from '../shared/restore/restore.js';
import { verifyArchive } from '../shared/restore/verify.js';
import { LocalFileLocation } from '../shared/storage/local.js';
import { S3Location } from '../shared/storage/s3.js';
import { createS3Client } from '../shared/storage/s3-client.js';
import type { ArchiveLocation } from '../shared/storage/types.js';
import { backupAt, flipByte, makeTenants, s3Flags, writeWithFooterEdited } from './helpers/backups.js';
import { runMain } from './helpers/run-main.js';
import { startS3Server, type S3TestServer } from './helpers/s3-server.js';
import { TarBuilder } from './helpers/tar-builder.js';
import { describeTree, tempDir } from './helpers/tree.js';
import { compressFrames } from './helpers/zstd.js';

const dir = tempDir('openclaw-verify-');
const tenantsDir = path.join(dir.path, 'tenants');
const backups = path.join(dir.path, 'backups');
const archive = path.join(backups, 'acme', '2026-06-03.tar.zst');
const CREATED = new Date('2026-06-03T03:00:00.000Z');

beforeAll(async () => {
  makeTenants(tenantsDir, ['acme']);
  await backupAt(tenantsDir, 'acme', archive, CREATED);
});
afterAll(() => dir.cleanup());

const verify = (...args: string[]) => runMain(['--tenants-dir', tenantsDir, 'tenants', 'verify', ...args]);
const copyOf = (name: string) => {
  const copy = path.join(dir.path, name);
  writeFileSync(copy, readFileSync(archive));
  return copy;
};

describe('tenants verify on a local archive', () => {
  it('finds an intact archive intact, writes nothing but the mark beside it, and exits 0', async () => {
    const tenantsBefore = describeTree(tenantsDir);
    const run = await runMain(['--tenants-dir', tenantsDir, '--json', 'tenants', 'verify', '--from', archive]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result).toMatchObject({ operation: 'verify', tenant: 'acme', verified: true, backupCreatedAt: CREATED.toISOString(), toolVersion: '0.1.0' });
    expect(result.manifestSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(result.files).toBeGreaterThan(10);
    expect(describeTree(tenantsDir)).toEqual(tenantsBefore);
    expect(readdirSync(path.dirname(archive)).sort()).toEqual(['.2026-06-03.tar.zst.openclaw-verified', '2026-06-03.tar.zst']);
    const mark = JSON.parse(readFileSync(path.join(path.dirname(archive), '.2026-06-03.tar.zst.openclaw-verified'), 'utf8'));
    expect(mark).toMatchObject({ verifiedAt: result.recorded, manifestSha256: result.manifestSha256, createdAt: CREATED.toISOString() });
  });

  it('with --no-record writes nothing at all', async () => {
    const copy = copyOf('no-record.tar.zst');
    const before = readdirSync(dir.path).sort();
    const run = await verify('--from', copy, '--no-record');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^Intact: .* holds tenant "acme"/);
    expect(run.stdout).not.toContain('recorded');
    expect(readdirSync(dir.path).sort()).toEqual(before);
  });

  it('exits 3 on a flipped byte, naming the first directory that differs, and marks nothing', async () => {
    const copy = copyOf('damaged.tar.zst');
    flipByte(copy, 0.5);
    const run = await verify('--from', copy);
    expect(run.status).toBe(3);
    // The archive is named: in a log of many, the message alone said not which.
    expect(run.stderr.startsWith(`openclaw: ${copy}: `)).toBe(true);
    expect(run.stderr.slice(`openclaw: ${copy}: `.length)).toMatch(/^the archive (does not match its manifest: .*"[^"]+"|is damaged|.*corrupt|.*zstd)/m);
    expect(existsSync(path.join(dir.path, '.damaged.tar.zst.openclaw-verified'))).toBe(false);
  });

  it('exits 3 on a manifest mismatch with the directory named', async () => {
    // A file's content changed inside the tar stream, recompressed: frames decode, the digest does not match.
    const tarBytes = execFileSync('zstd', ['-dc', archive]);
    const at = tarBytes.indexOf(Buffer.from('"role"'));
    expect(at).toBeGreaterThan(0);
    tarBytes[at + 2] = 'X'.charCodeAt(0);
    const edited = path.join(dir.path, 'edited.tar.zst');
    writeFileSync(edited, execFileSync('zstd', ['-q', '-c'], { input: tarBytes }));
    const run = await verify('--from', edited);
    expect(run.status).toBe(3);
    expect(run.stderr.startsWith(`openclaw: ${edited}: `)).toBe(true);
    expect(run.stderr.slice(`openclaw: ${edited}: `.length)).toMatch(/^the archive does not match its manifest: the names, types, sizes, contents or link targets of the entries in "[^"]+" differ\n$/);
  });

  it('exits 3 on a truncated archive and on one whose footer was changed', async () => {
    const truncated = copyOf('truncated.tar.zst');
    writeFileSync(truncated, readFileSync(truncated).subarray(0, Math.floor(readFileSync(truncated).length * 0.7)));
    expect((await verify('--from', truncated)).status).toBe(3);

    const footer = copyOf('footer.tar.zst');
    const bytes = readFileSync(footer);
    const digest = bytes.lastIndexOf(Buffer.from('"manifestSha256":"')) + 18;
    bytes[digest] = bytes[digest] === 0x30 ? 0x31 : 0x30;
    writeFileSync(footer, bytes);
    const run = await verify('--from', footer);
    expect(run.status).toBe(3);
    expect(run.stderr).toBe(`openclaw: ${footer}: the archive footer does not match its manifest (the manifest or the footer was changed)\n`);
  });

  it('exits 3 on an archive whose footer counts other entries than its manifest (the count the restore function refuses by)', async () => {
    const footer = copyOf('footer-entries.tar.zst');
    const bytes = readFileSync(footer);
    const count = bytes.lastIndexOf(Buffer.from('"entries":')) + 10;
    expect(count).toBeGreaterThan(10);
    const counted = Number(/^\d+/.exec(bytes.subarray(count, count + 20).toString('latin1'))![0]);
    expect(counted).toBeGreaterThan(10);
    bytes[count] = bytes[count] === 0x39 ? 0x38 : bytes[count]! + 1;
    writeFileSync(footer, bytes);
    const run = await verify('--from', footer);
    expect(run.stderr).toMatch(new RegExp(`^openclaw: ${footer}: the archive footer counts \\d+ entries, its manifest ${counted} \\(the footer was changed\\)\n$`));
    expect(run.status).toBe(3);

    // A count that is no count (negative, written over its first digit): the footer is malformed.
    bytes[count] = '-'.charCodeAt(0);
    writeFileSync(footer, bytes);
    const malformed = await verify('--from', footer);
    expect(malformed.stderr).toMatch(new RegExp(`^openclaw: ${footer}: the archive footer is malformed: entries: `));
    expect(malformed.status).toBe(3);
  });

  it('exits 3 on an archive whose footer gives another length than its own (before: intact and marked verified, while the listing called it cut in its middle), marks nothing, and agrees with prune', async () => {
    const changedDir = path.join(dir.path, 'footer-length', 'acme');
    mkdirSync(changedDir, { recursive: true });
    const changed = path.join(changedDir, '2026-06-03.tar.zst');
    let before = 0;
    writeWithFooterEdited(archive, changed, (payload) => payload.replace(/"bytesBefore":(\d+)/, (_all, bytes: string) => `"bytesBefore":${(before = Number(bytes)) - 1000}`));
    expect(before).toBeGreaterThan(1000);
    const run = await verify('--from', changed);
    expect(run.stderr).toBe(`openclaw: ${changed}: the archive footer says ${(before - 1000).toLocaleString('en-US')} bytes come before it, but ${before.toLocaleString('en-US')} do (bytes cut or added, or the footer was changed)\n`);
    expect(run.status).toBe(3);
    expect(readdirSync(changedDir)).toEqual(['2026-06-03.tar.zst']);
    const prune = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', path.dirname(changedDir), '--keep-last', '1', '--dry-run']);
    expect(JSON.parse(prune.stdout).keep).toEqual([expect.objectContaining({ uncounted: true, reasons: [expect.stringMatching(/^incomplete: \d+ bytes, but its footer says the archive is \d+: cut in its middle, or bytes added; counted by no rule$/)] })]);
  });

  it('exits 3 on an archive whose footer frame alone is gone (cut at the frame), marks nothing, and agrees with prune: incomplete', async () => {
    const cutDir = path.join(dir.path, 'footless', 'acme');
    mkdirSync(cutDir, { recursive: true });
    const cut = path.join(cutDir, '2026-06-03.tar.zst');
    const bytes = readFileSync(archive);
    // The footer is the last frame: a skippable frame whose size field reaches the end of the file.
    const magic = Buffer.alloc(4);
    magic.writeUInt32LE(0x184d2a50 + ARCHIVE_FOOTER_NIBBLE);
    const at = bytes.lastIndexOf(magic);
    expect(bytes.readUInt32LE(at + 4)).toBe(bytes.length - at - 8);
    writeFileSync(cut, bytes.subarray(0, at));
    const run = await verify('--from', cut);
    expect(run.status).toBe(3);
    expect(run.stderr).toBe(
      `openclaw: incomplete: ${cut} has no manifest footer at its end (cut short, or its backup never finished it): every file in it matched its manifest and a restore can still read it, but it is not recorded as verified and prune counts it by no rule\n`,
    );
    expect(readdirSync(cutDir)).toEqual(['2026-06-03.tar.zst']);
    const prune = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', path.dirname(cutDir), '--keep-last', '1', '--dry-run']);
    expect(JSON.parse(prune.stdout).keep).toEqual([expect.objectContaining({ uncounted: true, reasons: ['incomplete: no footer at its end: the file is cut short or its end is damaged; counted by no rule'] })]);
    // A restore still reads it: its files are all there.
    const restored = await runMain(['--tenants-dir', path.join(dir.path, 'footless-restore'), 'tenants', 'restore', '--from', cut, '--as', 'fresh']);
    expect(restored.status).toBe(0);
  });

  it.each([
    ['another tool\'s skippable frame', Buffer.from('502a4d1804000000abcd0000', 'hex')],
    ['an empty zstd frame', Buffer.from('28b52ffd2000010000', 'hex')],
  ])('exits 3 on an archive with %s after its footer (before: intact and marked verified, while the listing found no footer at its end), marks nothing, and agrees with prune and the listing, which name the bytes after it', async (_what, appended) => {
    const appendedDir = path.join(dir.path, `after-footer-${appended.length}`, 'acme');
    mkdirSync(appendedDir, { recursive: true });
    const longer = path.join(appendedDir, '2026-06-03.tar.zst');
    writeFileSync(longer, Buffer.concat([readFileSync(archive), appended]));
    const run = await verify('--from', longer);
    expect(run.status).toBe(3);
    expect(run.stderr).toBe(
      `openclaw: incomplete: ${longer} continues after its manifest footer (${appended.length} bytes follow it: appended by another tool?): every file in it matched its manifest and a restore can still read it, but it is not recorded as verified and prune counts it by no rule\n`,
    );
    expect(readdirSync(appendedDir)).toEqual(['2026-06-03.tar.zst']);
    const prune = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', path.dirname(appendedDir), '--keep-last', '1', '--dry-run']);
    // Before: 'no footer at its end: the file is cut short or its end is damaged', of a file whole and longer.
    expect(JSON.parse(prune.stdout).keep).toEqual([expect.objectContaining({ uncounted: true, reasons: [`incomplete: ${appended.length} bytes follow its footer: appended by another tool?; counted by no rule`] })]);
    const listed = await runMain(['--json', 'tenants', 'backups', 'acme', '--in', path.dirname(appendedDir)]);
    expect(JSON.parse(listed.stdout).backups).toEqual([expect.objectContaining({ incomplete: true, note: `${appended.length} bytes follow its footer: appended by another tool?` })]);
    const restored = await runMain(['--tenants-dir', path.join(dir.path, `after-footer-restore-${appended.length}`), 'tenants', 'restore', '--from', longer, '--as', 'fresh']);
    expect(restored.status).toBe(0);
  });

  it('exits 3 on a second archive appended after the footer', async () => {
    const joined = copyOf('joined.tar.zst');
    writeFileSync(joined, Buffer.concat([readFileSync(archive), readFileSync(archive)]));
    const run = await verify('--from', joined);
    expect(run.status).toBe(3);
    expect(run.stderr).toMatch(/two archive markers|continues after its footer/);
  });

  it('exits 1 when the archive cannot be read', async () => {
    const run = await verify('--from', path.join(dir.path, 'missing.tar.zst'));
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(`openclaw: no archive at ${path.join(dir.path, 'missing.tar.zst')}\n`);
  });

  it('says a missing archive named with a doubled backslash may be a listing\'s escaped name (a listing shows old\\x as old\\\\x)', async () => {
    const copy = copyOf('old\\acme.tar.zst');
    const listed = await runMain(['tenants', 'backups', 'acme', '--in', path.dirname(copy)]);
    const shown = listed.stdout.split('\n').map((line) => line.split('  ').at(-1)!.trim()).find((location) => location.includes('old'));
    expect(shown).toBe(copy.replace('\\', '\\\\'));
    const run = await verify('--from', shown!);
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(`openclaw: no archive at ${shown} (a listing shows a name escaped: each backslash doubled, a control character as \\u…; write a backslash once, or take the location from --json)\n`);
    expect((await verify('--from', copy)).status).toBe(0);
  });

  it('reads an archive of GNU tar + zstd, saying it could not check per file', async () => {
    const foreign = path.join(dir.path, 'foreign.tar.zst');
    execFileSync('bash', ['-o', 'pipefail', '-c', `tar -C ${JSON.stringify(dir.path)} -cf - tenants/acme | zstd -q -o ${JSON.stringify(foreign)}`]);
    const run = await runMain(['--json', 'tenants', 'verify', '--from', foreign]);
    expect(run.status).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result).toMatchObject({ verified: false, tenant: 'acme' });
    expect(result.notices.join(' ')).toMatch(/no manifest/);
    expect(existsSync(path.join(dir.path, '.foreign.tar.zst.openclaw-verified'))).toBe(false);
  });

  it('decrypts with --identity or through --pipe (age) and records the mark on the stored file; restore --dry-run takes --identity too', async () => {
    const key = path.join(dir.path, 'key.txt');
    execFileSync('age-keygen', ['-o', key], { stdio: 'ignore' });
    const recipient = execFileSync('age-keygen', ['-y', key], { encoding: 'utf8' }).trim();
    const encrypted = path.join(backups, 'acme', 'enc.tar.zst.age');
    const mark = path.join(backups, 'acme', '.enc.tar.zst.age.openclaw-verified');
    await backupAt(tenantsDir, 'acme', encrypted, CREATED, undefined, `age -r ${recipient}`);
    // Without an identity: the restore's hint (exit 2), not "not a zstd stream"; nothing recorded.
    const bare = await verify('--from', encrypted);
    expect(bare.status).toBe(2);
    expect(bare.stderr).toBe(
      `openclaw: ${encrypted} is encrypted with age (it starts with the age header): give the identity that decrypts it, ` +
        '--identity KEY_FILE (remote mode: --identity-secret NAME), or decrypt it with --pipe "age -d -i KEY_FILE"\n',
    );
    // Beside it, only what its backup recorded (verified-mark.ts): no verification.
    expect(JSON.parse(readFileSync(mark, 'utf8'))).toMatchObject({ format: 'openclawmu-stored', tenant: 'acme' });
    const piped = await verify('--from', encrypted, '--pipe', `age -d -i ${key}`);
    expect(piped.stderr).toBe('');
    expect(piped.status).toBe(0);
    expect(JSON.parse(readFileSync(mark, 'utf8'))).toMatchObject({ format: 'openclawmu-verified', tenant: 'acme' });
    rmSync(mark);

    const decrypted = await runMain(['--tenants-dir', tenantsDir, '--json', 'tenants', 'verify', '--from', encrypted, '--identity', key]);
    expect(decrypted.stderr).toBe('');
    expect(decrypted.status).toBe(0);
    expect(JSON.parse(decrypted.stdout)).toMatchObject({ operation: 'verify', tenant: 'acme', verified: true, decrypted: true });
    expect(existsSync(mark)).toBe(true);

    const tenantsBefore = describeTree(tenantsDir);
    const plan = await runMain(['--tenants-dir', tenantsDir, '--json', 'tenants', 'restore', '--from', encrypted, '--as', 'acme-copy', '--dry-run', '--identity', key]);
    expect(plan.stderr).toBe('');
    expect(plan.status).toBe(0);
    expect(JSON.parse(plan.stdout)).toMatchObject({ operation: 'restore-plan', tenant: 'acme-copy', archiveTenant: 'acme', verified: true, decrypted: true });
    const refused = await runMain(['--tenants-dir', tenantsDir, 'tenants', 'restore', '--from', encrypted, '--as', 'acme-copy', '--dry-run']);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/is encrypted with age .*--identity KEY_FILE/);
    expect(describeTree(tenantsDir)).toEqual(tenantsBefore);
    rmSync(encrypted);
    rmSync(mark);
  });
});

describe('tenants verify while the archive is replaced', () => {
  it('does not mark the archive a `backup --overwrite` renamed over the path while it was verified', async () => {
    const target = path.join(dir.path, 'replaced', 'acme.tar.zst');
    const newer = path.join(dir.path, 'replaced', 'newer.tar.zst');
    await backupAt(tenantsDir, 'acme', target, CREATED);
    await backupAt(tenantsDir, 'acme', newer, new Date(CREATED.getTime() + 60_000));
    // The file is open and being read when the newer archive lands on its name, as a
    // `backup --overwrite` of the same path commits with a rename.
    class ReplacedWhileRead extends LocalFileLocation {
      override async read(options?: Parameters<LocalFileLocation['read']>[0]) {
        const stream = await super.read(options);
        renameSync(newer, target);
        return stream;
      }
    }
    const result = await verifyArchive({ location: new ReplacedWhileRead(target) });
    expect(result).toMatchObject({ verified: true, backupCreatedAt: CREATED.toISOString() });
    expect(result.recorded).toBeUndefined();
    expect(result.notices).toContain(`the verification was not recorded beside the archive: ${target} changed after it was verified: not marked`);
    expect(readdirSync(path.dirname(target))).toEqual(['acme.tar.zst']);
    // The archive now there verifies and is marked as any other.
    expect((await verifyArchive({ location: new LocalFileLocation(target) })).recorded).toBeDefined();
    expect(readdirSync(path.dirname(target)).sort()).toEqual(['.acme.tar.zst.openclaw-verified', 'acme.tar.zst']);
  });
});

describe('tenants verify while the archive is replaced by one of the same size and mtime', () => {
  it('does not mark the archive: a `touch -r` copy renamed over the path differs in its change time', async () => {
    const target = path.join(dir.path, 'replaced-same', 'acme.tar.zst');
    const newer = path.join(dir.path, 'replaced-same', 'newer.tar.zst');
    await backupAt(tenantsDir, 'acme', target, CREATED);
    // Another archive of the very same size: the verified one with a byte changed.
    copyFileSync(target, newer);
    flipByte(newer);
    const { mtimeMs } = statSync(target);
    class ReplacedWhileRead extends LocalFileLocation {
      override async read(options?: Parameters<LocalFileLocation['read']>[0]) {
        const stream = await super.read(options);
        execFileSync('touch', ['-r', target, newer]);
        renameSync(newer, target);
        return stream;
      }
    }
    const result = await verifyArchive({ location: new ReplacedWhileRead(target) });
    expect(result).toMatchObject({ verified: true, backupCreatedAt: CREATED.toISOString() });
    expect(statSync(target).mtimeMs).toBe(mtimeMs);
    // Before, it was marked: the listing showed the damaged file verified, with the other's digest.
    expect(result.recorded).toBeUndefined();
    expect(result.notices).toContain(`the verification was not recorded beside the archive: ${target} changed after it was verified: not marked`);
    expect(readdirSync(path.dirname(target))).toEqual(['acme.tar.zst']);
  });
});

describe('tenants verify against s3rver', () => {
  let server: S3TestServer;
  let client: S3Client;
  beforeAll(async () => {
    server = await startS3Server();
    client = await createS3Client(server.clientOptions);
    await backupAt(tenantsDir, 'acme', 's3://backups/acme/2026-06-03.tar.zst', CREATED, server);
  });
  afterAll(async () => {
    client.destroy();
    await server.dispose();
  });

  it('verifies the object and tags it, keeping the tags of the backup (manifest digest, size stored)', async () => {
    const run = await runMain(['--json', 'tenants', 'verify', '--from', 's3://backups/acme/2026-06-03.tar.zst', ...s3Flags(server)]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const result = JSON.parse(run.stdout);
    const tags = await client.send(new GetObjectTaggingCommand({ Bucket: 'backups', Key: 'acme/2026-06-03.tar.zst' }));
    const byKey = Object.fromEntries((tags.TagSet ?? []).map((tag) => [tag.Key, tag.Value]));
    const head = await client.send(new HeadObjectCommand({ Bucket: 'backups', Key: 'acme/2026-06-03.tar.zst' }));
    expect(byKey).toEqual({
      'openclaw-manifest-sha256': result.manifestSha256,
      'openclaw-stored-bytes': String(head.ContentLength),
      'openclaw-seal': expect.stringMatching(/^[\w-]{43}$/),
      'openclaw-verified': `${result.recorded} ${result.manifestSha256} ${CREATED.toISOString()}`,
    });
  });

  it('removes the tags saying an object is whole (verified, size stored) once it finds it damaged, keeping the others', async () => {
    // Bit rot under a verified object, its tags kept: before, verify exited 3 and the object stayed tagged verified (listed so, counted by prune).
    await backupAt(tenantsDir, 'acme', 's3://backups/acme/rotted.tar.zst', CREATED, server);
    expect((await runMain(['tenants', 'verify', '--from', 's3://backups/acme/rotted.tar.zst', ...s3Flags(server)])).status).toBe(0);
    const tagsOf = async () => Object.fromEntries(((await client.send(new GetObjectTaggingCommand({ Bucket: 'backups', Key: 'acme/rotted.tar.zst' }))).TagSet ?? []).map((tag) => [tag.Key, tag.Value]));
    const tagged = await tagsOf();
    expect(Object.keys(tagged).sort()).toEqual(['openclaw-manifest-sha256', 'openclaw-seal', 'openclaw-stored-bytes', 'openclaw-verified']);
    const body = Buffer.from(readFileSync(archive));
    body[Math.floor(body.length / 2)]! ^= 0x5a;
    await client.send(new PutObjectCommand({ Bucket: 'backups', Key: 'acme/rotted.tar.zst', Body: body }));
    await client.send(new PutObjectTaggingCommand({ Bucket: 'backups', Key: 'acme/rotted.tar.zst', Tagging: { TagSet: Object.entries(tagged).map(([Key, Value]) => ({ Key, Value: String(Value) })) } }));
    expect((await runMain(['tenants', 'verify', '--from', 's3://backups/acme/rotted.tar.zst', ...s3Flags(server)])).status).toBe(3);
    // The seal goes too: left there, anyone allowed to read and write tags could put the size tag back beside it.
    expect(await tagsOf()).toEqual({});
  });

  it('says with its verdict that the tags calling a damaged object whole stay when it may not remove them', async () => {
    // A role without s3:PutObjectTagging: before, exit 3 and not a word, the object still tagged verified (listed so, counted by prune).
    await backupAt(tenantsDir, 'acme', 's3://backups/acme/rotted-denied.tar.zst', CREATED, server);
    expect((await runMain(['tenants', 'verify', '--from', 's3://backups/acme/rotted-denied.tar.zst', ...s3Flags(server)])).status).toBe(0);
    const { TagSet } = await client.send(new GetObjectTaggingCommand({ Bucket: 'backups', Key: 'acme/rotted-denied.tar.zst' }));
    const body = Buffer.from(readFileSync(archive));
    body[Math.floor(body.length / 2)]! ^= 0x5a;
    await client.send(new PutObjectCommand({ Bucket: 'backups', Key: 'acme/rotted-denied.tar.zst', Body: body }));
    await client.send(new PutObjectTaggingCommand({ Bucket: 'backups', Key: 'acme/rotted-denied.tar.zst', Tagging: { TagSet: TagSet ?? [] } }));
    const denied = await createS3Client(server.clientOptions);
    denied.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'PutObjectTaggingCommand') throw Object.assign(new Error('Access Denied'), { name: 'AccessDenied', $fault: 'client', $metadata: { httpStatusCode: 403 } });
        return next(args);
      },
      { step: 'initialize' },
    );
    try {
      const verdict = verifyArchive({ location: new S3Location({ client: denied, bucket: 'backups', key: 'acme/rotted-denied.tar.zst' }) });
      await expect(verdict).rejects.toMatchObject({ code: 'CORRUPT_ARCHIVE', message: expect.stringContaining('could not be removed, so listings and prune may still count it whole') });
    } finally {
      denied.destroy();
    }
    expect((await client.send(new GetObjectTaggingCommand({ Bucket: 'backups', Key: 'acme/rotted-denied.tar.zst' }))).TagSet).toEqual(TagSet);
  });

  it('exits 3 on a damaged object', async () => {
    const body = Buffer.from(readFileSync(archive));
    body[Math.floor(body.length / 2)]! ^= 0x5a;
    await client.send(new PutObjectCommand({ Bucket: 'backups', Key: 'acme/damaged.tar.zst', Body: body }));
    const run = await runMain(['tenants', 'verify', '--from', 's3://backups/acme/damaged.tar.zst', ...s3Flags(server)]);
    expect(run.status).toBe(3);
    expect(run.stderr).toMatch(/^openclaw: .+\n$/);
  });

  it('exits 1 on a missing object', async () => {
    const run = await runMain(['tenants', 'verify', '--from', 's3://backups/acme/nothing.tar.zst', ...s3Flags(server)]);
    expect(run.status).toBe(1);
    expect(run.stderr).toBe('openclaw: no archive at s3://backups/acme/nothing.tar.zst\n');
  });
});

describe('verify runs the restore\'s checks', () => {
  const T = (relative: string) => `tenants/acme/${relative}`;
  const tar = () => new TarBuilder();
  const ours = Buffer.from(JSON.stringify({ format: 'openclawmu-tenant-backup', formatVersion: 2, tenant: 'acme' }));
  const marker = (payload: Buffer = ours) => skippableFrame(payload, ARCHIVE_MARKER_NIBBLE);
  const footer = (sha: string) => skippableFrame(Buffer.from(JSON.stringify({ format: 'openclawmu-tenant-backup', tenant: 'acme', manifestSha256: sha })), ARCHIVE_FOOTER_NIBBLE);
  const cases: [string, () => Buffer, Buffer?, Buffer?][] = [
    ['an entry outside tenants/', () => tar().file('etc/passwd', 'x').build()],
    ['a ".." segment', () => tar().file('tenants/acme/../victim/x', 'x').build()],
    ['a second tenant', () => tar().file(T('a'), 'x').file('tenants/victim/b', 'y').build()],
    ['an escaping symlink', () => tar().symlink(T('l'), '../../etc').build()],
    ['a file below a symlink', () => tar().dir(T('d/')).symlink(T('l'), 'd').file(T('l/x'), 'x').build()],
    ['a hardlink to something absent', () => tar().hardlink(T('h'), 'tenants/acme/nothing').build()],
    ['a device', () => tar().special(T('dev'), '3').build()],
    ['a duplicate entry', () => tar().file(T('a'), 'x').file(T('a'), 'y').build()],
    ['data after the end of the archive', () => Buffer.concat([tar().file(T('a'), 'x').build(), tar().file(T('b'), 'y').build()])],
    ['a manifest that does not match', () => tar().file(T('a'), 'x').manifest('acme', (m) => ({ ...m, directories: [...m.directories].map((d) => ({ ...d, sha256: '0'.repeat(64) })) })).build()],
    ['a malformed manifest', () => tar().file(T('a'), 'x').bytes(Buffer.alloc(0)).manifest('acme', (m) => ({ ...m, tenant: 5 }) as never).build()],
    ['our marker without a manifest', () => tar().file(T('a'), 'x').build(), marker()],
    ['a marker naming another tenant', () => tar().file(T('a'), 'x').manifest('acme').build(), marker(Buffer.from(JSON.stringify({ format: 'openclawmu-tenant-backup', formatVersion: 2, tenant: 'victim' })))],
    ['a footer that does not match', () => tar().file(T('a'), 'x').manifest('acme').build(), marker(), footer('0'.repeat(64))],
    ['an intact archive', () => tar().dir(T('')).file(T('a'), 'x').symlink(T('l'), 'a').manifest('acme').build(), marker()],
  ];

  it.each(cases)('%s: the same outcome, word for word', async (_label, build, before, after) => {
    const frames: Buffer[] = before === undefined ? [] : [before];
    for await (const frame of compressFrames(Readable.from([build()]))) frames.push(frame);
    if (after !== undefined) frames.push(after);
    const bytes = Buffer.concat(frames);
    const location: ArchiveLocation = {
      display: 'memory://hostile',
      checkWritable: async () => undefined,
      write: async () => {
        throw new Error('read-only');
      },
      read: async () => Readable.from([bytes]),
    };
    const base = path.join(dir.path, 'same-checks');
    mkdirSync(base, { recursive: true });
    const outcome = (promise: Promise<unknown>) =>
      promise.then(
        (value) => ({ ok: true, value }),
        (error: Error) => ({ ok: false, name: error.constructor.name, message: error.message }),
      );
    const restored = await outcome(restoreTenant({ tenantsDir: base, location, as: 'fresh' }));
    const verified = await outcome(verifyArchive({ location }));
    if (restored.ok) {
      expect(verified.ok).toBe(true);
      expect((verified as { value: { files: number } }).value.files).toBe((restored as { value: { files: number } }).value.files);
    } else {
      expect(verified).toEqual(restored);
    }
    rmSync(base, { recursive: true, force: true });
  });
});
