// `tenants backups NAME --in LOCATION`: a tenant's archives newest first, from their first and
// last bytes, S3 metadata and tags, and verification marks, in a local directory and below an
// s3rver prefix; encrypted, foreign and older archives; S3 listings of more than one page.

import { GetObjectCommand, GetObjectTaggingCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { sdkStreamMixin } from '@smithy/util-stream';
import { mockClient } from 'aws-sdk-client-mock';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { listBackups, type BackupEntry } from '../shared/catalog/backups.js';
import type { ArchiveStore, InspectOptions, ObjectFacts, StoredObject } from '../shared/storage/archive-store.js';
import { createS3Client } from '../shared/storage/s3-client.js';
import { LocalArchiveStore } from '../shared/storage/local-store.js';
import { S3ArchiveStore } from '../shared/storage/s3-store.js';
import { backupAt, DAY, makeTenants, s3Flags, writeWithFooterEntries } from './helpers/backups.js';
import { runMain } from './helpers/run-main.js';
import { AWS_CLI, awsCliEnvironment, startGlacierProxy, startS3Server, type S3TestServer } from './helpers/s3-server.js';
import { tempDir } from './helpers/tree.js';

const dir = tempDir('openclaw-backups-');
const tenantsDir = path.join(dir.path, 'tenants');
const backups = path.join(dir.path, 'backups');
const JUNE_1 = new Date('2026-06-01T03:00:00.000Z');
let key = '';
let recipient = '';

/** A skippable zstd frame (the archive's marker) holding `fields` as JSON. */
function markerFrame(fields: Record<string, unknown>): Buffer {
  const payload = Buffer.from(JSON.stringify({ format: 'openclawmu-tenant-backup', formatVersion: 2, ...fields }));
  const header = Buffer.alloc(8);
  header.writeUInt32LE(0x184d2a5c, 0);
  header.writeUInt32LE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

/** The archive as a version before the listing wrote it: a marker without time or version, no footer. */
function asOlderVersion(bytes: Buffer): Buffer {
  const markerSize = bytes.readUInt32LE(4);
  const footerMagic = Buffer.alloc(4);
  footerMagic.writeUInt32LE(0x184d2a5d, 0);
  const footerAt = bytes.lastIndexOf(footerMagic);
  return Buffer.concat([markerFrame({ tenant: 'acme' }), bytes.subarray(8 + markerSize, footerAt)]);
}

beforeAll(async () => {
  makeTenants(tenantsDir, ['acme', 'beta']);
  for (let day = 0; day < 3; day++) await backupAt(tenantsDir, 'acme', path.join(backups, 'acme', `${day + 1}.tar.zst`), new Date(JUNE_1.getTime() + day * DAY));
  await backupAt(tenantsDir, 'beta', path.join(backups, 'beta', '1.tar.zst'), JUNE_1);
  key = path.join(dir.path, 'key.txt');
  execFileSync('age-keygen', ['-o', key], { stdio: 'ignore' });
  recipient = execFileSync('age-keygen', ['-y', key], { encoding: 'utf8' }).trim();
  await backupAt(tenantsDir, 'acme', path.join(backups, 'acme', 'secret.tar.zst.age'), new Date(JUNE_1.getTime() + 5 * DAY), undefined, `age -r ${recipient}`);
  // As a version before the backup's record beside an encrypted archive (verified-mark.ts) wrote it: nothing dates it.
  rmSync(path.join(backups, 'acme', '.secret.tar.zst.age.openclaw-verified'));
  execFileSync('bash', ['-o', 'pipefail', '-c', `tar -C ${JSON.stringify(dir.path)} -cf - tenants/acme | zstd -q -o ${JSON.stringify(path.join(backups, 'acme', 'by-hand.tar.zst'))}`]);
  mkdirSync(path.join(backups, 'misc'));
  writeFileSync(path.join(backups, 'misc', 'old.tar.zst'), asOlderVersion(readFileSync(path.join(backups, 'acme', '1.tar.zst'))));
  writeFileSync(path.join(backups, 'notes.txt'), 'not an archive\n');
  // In a directory named after the tenant, but nothing like an archive: not one of its backups.
  writeFileSync(path.join(backups, 'acme', 'README'), 'nightly backups of acme\n');
  // Object times that disagree with the backups' own: the listing must not go by them.
  for (const [index, name] of ['1.tar.zst', '2.tar.zst', '3.tar.zst'].entries()) {
    const time = new Date(Date.UTC(2027, 0, 10 - index));
    utimesSync(path.join(backups, 'acme', name), time, time);
  }
});
afterAll(() => dir.cleanup());

const summary = (entry: BackupEntry) => [entry.name, entry.content, entry.createdAt ?? null, entry.tenant ?? null];

describe('tenants backups in a local directory', () => {
  it('lists the tenant\'s archives newest first by creation time, with size, version, digest and content', async () => {
    const run = await runMain(['--json', 'tenants', 'backups', 'acme', '--in', backups]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const listing = JSON.parse(run.stdout) as { backups: BackupEntry[]; otherObjects: number; location: string };
    expect(listing.location).toBe(backups);
    // Dated first, newest first; then what nothing dates (an encrypted file attributed by its
    // directory, GNU tar's, an older version's), by object time.
    expect(listing.backups.map(summary)).toEqual([
      ['acme/3.tar.zst', 'archive', '2026-06-03T03:00:00.000Z', 'acme'],
      ['acme/2.tar.zst', 'archive', '2026-06-02T03:00:00.000Z', 'acme'],
      ['acme/1.tar.zst', 'archive', '2026-06-01T03:00:00.000Z', 'acme'],
      ...listing.backups.slice(3).map(summary),
    ]);
    expect(listing.backups.slice(3).map(summary).sort()).toEqual([
      ['acme/by-hand.tar.zst', 'zstd', null, null],
      ['acme/secret.tar.zst.age', 'encrypted', null, null],
      ['misc/old.tar.zst', 'archive', null, 'acme'],
    ]);
    expect(listing.otherObjects).toBe(3); // beta's archive, notes.txt, acme/README
    const newest = listing.backups[0]!;
    expect(newest).toMatchObject({ location: path.join(backups, 'acme', '3.tar.zst'), toolVersion: '0.1.0', createdAtFrom: 'archive', bytes: readFileSync(newest.location).length });
    expect(newest.manifestSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(listing.backups.find((entry) => entry.content === 'encrypted')).toMatchObject({ recipients: ['X25519'] });
  });

  it('prints a table a person can read', async () => {
    const run = await runMain(['tenants', 'backups', 'acme', '--in', backups]);
    expect(run.status).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`6 backups of "acme" in ${backups}, newest first:`);
    expect(lines[1]).toMatch(/^CREATED\s+SIZE\s+VERSION\s+MANIFEST\s+CONTENT\s+VERIFIED\s+LOCATION$/);
    expect(lines[2]).toMatch(/^2026-06-03 03:00:00 UTC\s+[\d.]+ KiB\s+0\.1\.0\s+[0-9a-f]{12}\s+tar\.zst\s+-\s+.*3\.tar\.zst$/);
    expect(lines.find((line) => line.includes('secret.tar.zst.age'))).toMatch(/^\? \(file .*\)\s.*encrypted \(age: X25519\)\s+-\s+.*secret\.tar\.zst\.age$/);
    // What is not shown is counted, and how an encrypted archive of the tenant would be shown is said.
    expect(lines.at(-1)).toBe('(and 3 other objects there: another tenant\'s, no archive, or one that does not name "acme" (encrypted or piped) and was never checked by tenants verify --from)');
  });

  it('shows a verification, and dates an older archive by the time its verification recorded', async () => {
    expect((await runMain(['tenants', 'verify', '--from', path.join(backups, 'misc', 'old.tar.zst')])).status).toBe(0);
    expect((await runMain(['tenants', 'verify', '--from', path.join(backups, 'acme', '2.tar.zst')])).status).toBe(0);
    const listing = JSON.parse((await runMain(['--json', 'tenants', 'backups', 'acme', '--in', backups])).stdout) as { backups: BackupEntry[] };
    const byName = Object.fromEntries(listing.backups.map((entry) => [entry.name, entry]));
    expect(byName['misc/old.tar.zst']).toMatchObject({ createdAt: '2026-06-01T03:00:00.000Z', createdAtFrom: 'verification' });
    expect(byName['misc/old.tar.zst']!.verifiedAt).toBeDefined();
    expect(byName['acme/2.tar.zst']!.verifiedAt).toBeDefined();
    expect(byName['acme/3.tar.zst']!.verifiedAt).toBeUndefined();
    // A mark outlives no change of its archive.
    const changed = path.join(backups, 'acme', '2.tar.zst');
    const later = new Date();
    utimesSync(changed, later, new Date(later.getTime() + 1000));
    const again = JSON.parse((await runMain(['--json', 'tenants', 'backups', 'acme', '--in', backups])).stdout) as { backups: BackupEntry[] };
    expect(again.backups.find((entry) => entry.name === 'acme/2.tar.zst')!.verifiedAt).toBeUndefined();
  });

  it('lists nothing, with exit 0, for a tenant without archives; fails on a missing directory', async () => {
    const none = await runMain(['tenants', 'backups', 'gamma', '--in', backups]);
    expect(none.status).toBe(0);
    expect(none.stdout).toBe(`no backups of "gamma" in ${backups} (9 other objects there: another tenant's, no archive, or one that does not name "gamma" (encrypted or piped) and was never checked by tenants verify --from)\n`);
    const missing = await runMain(['tenants', 'backups', 'acme', '--in', path.join(dir.path, 'nowhere')]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe(`openclaw: no such directory or file: ${path.join(dir.path, 'nowhere')}\n`);
    expect((await runMain(['tenants', 'backups', 'Not_A_Tenant', '--in', backups])).status).toBe(2);
  });

  it('lists past a directory whose name is not UTF-8 (copied from another system) instead of failing on it', async () => {
    const odd = Buffer.concat([Buffer.from(`${backups}/acme/latin1-`), Buffer.from([0xe9, 0xe9])]);
    mkdirSync(odd);
    writeFileSync(Buffer.concat([odd, Buffer.from('/x.tar.zst')]), readFileSync(path.join(backups, 'acme', '1.tar.zst')));
    try {
      const run = await runMain(['--json', 'tenants', 'backups', 'acme', '--in', backups]);
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      expect((JSON.parse(run.stdout) as { backups: BackupEntry[] }).backups.slice(0, 3).map((entry) => entry.name)).toEqual(['acme/3.tar.zst', 'acme/2.tar.zst', 'acme/1.tar.zst']);
      expect((await runMain(['tenants', 'prune', 'acme', '--in', backups, '--keep-last', '9', '--dry-run'])).status).toBe(0);
    } finally {
      rmSync(odd, { recursive: true });
    }
  });

  it('lists through a directory named by a symlink (a backup volume mounted elsewhere), following no symlink below it', async () => {
    const link = path.join(dir.path, 'backups-link');
    symlinkSync(backups, link);
    symlinkSync(path.join(backups, 'acme'), path.join(backups, 'acme-again'));
    try {
      const direct = JSON.parse((await runMain(['--json', 'tenants', 'backups', 'acme', '--in', backups])).stdout) as { backups: BackupEntry[] };
      for (const spec of [link, `${link}/`]) {
        const run = await runMain(['--json', 'tenants', 'backups', 'acme', '--in', spec]);
        expect(run.stderr).toBe('');
        expect(run.status).toBe(0);
        const listing = JSON.parse(run.stdout) as { backups: BackupEntry[] };
        expect(listing.backups.map((entry) => entry.name)).toEqual(direct.backups.map((entry) => entry.name));
        expect(listing.backups[0]!.location).toBe(path.join(link, listing.backups[0]!.name));
      }
    } finally {
      rmSync(link);
      rmSync(path.join(backups, 'acme-again'));
    }
  });
});

// `tenants backups` as root in a directory the service user can write: the archive, checked
// by the listing, was then opened by its name, and a FIFO swapped in between (strace's
// delay_enter on that open) hung the command for good. It is opened once, without waiting on
// a FIFO or following a symlink, and read only if a regular file; else left out as removed.
describe('an archive whose footer is there but malformed (its entry count no count)', () => {
  it('is listed incomplete with what is wrong with its footer, not also as having none', async () => {
    const damaged = path.join(dir.path, 'damaged');
    mkdirSync(path.join(damaged, 'acme'), { recursive: true });
    writeWithFooterEntries(path.join(backups, 'acme', '1.tar.zst'), path.join(damaged, 'acme', '1.tar.zst'), '-1');
    const run = await runMain(['--json', 'tenants', 'backups', 'acme', '--in', damaged]);
    expect(run.status).toBe(0);
    const [entry] = (JSON.parse(run.stdout) as { backups: BackupEntry[] }).backups;
    expect(entry).toMatchObject({ name: 'acme/1.tar.zst', incomplete: true, note: 'the archive footer is malformed: entries: not a whole number from 0 to 2^53' });
  });
});

describe('a local archive swapped for a FIFO or a symlink after the listing', () => {
  it('is left out, without waiting on the FIFO nor reading through the link', async () => {
    const swapped = path.join(dir.path, 'swapped');
    for (const [index, day] of [0, 1, 2].entries()) await backupAt(tenantsDir, 'acme', path.join(swapped, `${index}.tar.zst`), new Date(JUNE_1.getTime() + day * DAY));
    const fifo = path.join(swapped, '1.tar.zst');
    const store = new LocalArchiveStore(swapped);
    const swap = () => {
      rmSync(fifo);
      execFileSync('mkfifo', [fifo]);
      renameSync(path.join(swapped, '2.tar.zst'), path.join(dir.path, 'moved.tar.zst'));
      symlinkSync(path.join(dir.path, 'moved.tar.zst'), path.join(swapped, '2.tar.zst'));
    };
    // The walk (listed in parts, as listBackups takes it) done, then the swap, then its parts handed on.
    const swapping: ArchiveStore = Object.assign(Object.create(store) as ArchiveStore, {
      async *listInParts(...args: Parameters<NonNullable<ArchiveStore['listInParts']>>) {
        const parts: StoredObject[][] = [];
        for await (const part of store.listInParts(...args)) parts.push(part);
        swap();
        yield* parts;
      },
    });
    // The open under test is synchronous: only another process can let a waiting one go (after 2 s).
    // Its own process group, all killed at the end: `timeout` killed alone left its shell blocked
    // for good opening the FIFO (no reader left), one process per test run.
    const writer = spawn('sh', ['-c', 'sleep 2; : > "$0"', fifo], { stdio: 'ignore', detached: true });
    try {
      const listing = await listBackups(swapping, 'acme');
      expect(listing.backups.map((entry) => entry.name)).toEqual(['0.tar.zst']);
    } finally {
      try {
        process.kill(-writer.pid!, 'SIGKILL');
      } catch {
        // Already gone: a slow listing's open let it write, and it exited.
      }
    }
  });
});

describe('tenants backups below an s3rver prefix', () => {
  let server: S3TestServer;
  beforeAll(async () => {
    server = await startS3Server();
    for (let day = 0; day < 3; day++) await backupAt(tenantsDir, 'acme', `s3://backups/backups/acme/${day + 1}.tar.zst`, new Date(JUNE_1.getTime() + day * DAY), server);
    await backupAt(tenantsDir, 'acme', 's3://backups/backups/acme/secret.tar.zst.age', new Date(JUNE_1.getTime() + 5 * DAY), server, `age -r ${recipient}`);
    await backupAt(tenantsDir, 'beta', 's3://backups/backups/beta/1.tar.zst', JUNE_1, server);
  });
  afterAll(() => server.dispose());

  // 100,000 objects listed first and all held took 306 MB of RSS (s3rver, the CLI's --json):
  // each answer of the store is inspected as it comes, and let go before the listing goes on.
  it('inspects a listing an answer of the store at a time, not listed whole first', async () => {
    const events: string[] = [];
    class RecordingStore extends S3ArchiveStore {
      override async *listInParts(options = {}): AsyncGenerator<StoredObject[]> {
        for await (const objects of super.listInParts(options)) {
          events.push(`listed ${objects.length}`);
          yield objects;
        }
      }
      override inspect(object: StoredObject, options?: InspectOptions): Promise<ObjectFacts> {
        events.push(`inspect ${object.name}`);
        return super.inspect(object, options);
      }
    }
    const client = await createS3Client(server.clientOptions);
    const store = new RecordingStore({ client, bucket: server.bucket, prefix: 'backups/', endpoint: server.endpoint, pageSize: 2 });
    const listing = await listBackups(store, 'acme');
    expect(listing.backups.map((entry) => entry.name)).toEqual(['acme/secret.tar.zst.age', 'acme/3.tar.zst', 'acme/2.tar.zst', 'acme/1.tar.zst']);
    expect(listing.otherObjects).toBe(1);
    expect(events.filter((event) => event.startsWith('listed'))).toEqual(['listed 2', 'listed 2', 'listed 1']);
    // The first answer's objects are inspected before the last answer is asked for.
    expect(events.indexOf('inspect acme/1.tar.zst')).toBeLessThan(events.lastIndexOf('listed 1'));
  });

  // The first bytes' answer was destroyed with 4 KiB read and its end unread, closing its
  // connection: a new one (on AWS a TLS handshake) for every object a listing inspects.
  it('reads each object\'s first and last bytes over the connections it keeps open, not a new one per object', async () => {
    const sockets: Socket[] = [];
    const counting = createNetServer((socket) => {
      sockets.push(socket);
      const upstream = connect(server.port, '127.0.0.1');
      socket.pipe(upstream).pipe(socket);
      socket.on('error', () => upstream.destroy());
      upstream.on('error', () => socket.destroy());
    });
    await new Promise<void>((resolve) => counting.listen(0, '127.0.0.1', resolve));
    try {
      const endpoint = `http://127.0.0.1:${(counting.address() as AddressInfo).port}`;
      const client = await createS3Client({ ...server.clientOptions, endpoint });
      const store = new S3ArchiveStore({ client, bucket: server.bucket, prefix: 'backups/', endpoint });
      const [object] = (await store.list()).filter((listed) => listed.name === 'acme/1.tar.zst');
      for (let time = 0; time < 20; time++) {
        const facts = await store.inspect(object!);
        expect(facts.tail).toBeDefined();
      }
      // 20 first and 20 last bytes, and the tags: one connection (two at most, should the pool replace one).
      expect(sockets.length).toBeLessThanOrEqual(2);
      client.destroy();
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => counting.close(resolve));
    }
  });

  it('lists by metadata and first bytes: the encrypted archive is dated and attributed too', async () => {
    const run = await runMain(['--json', 'tenants', 'backups', 'acme', '--in', 's3://backups/backups/', ...s3Flags(server)]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const listing = JSON.parse(run.stdout) as { backups: BackupEntry[]; otherObjects: number };
    expect(listing.backups.map(summary)).toEqual([
      ['acme/secret.tar.zst.age', 'encrypted', '2026-06-06T03:00:00.000Z', 'acme'],
      ['acme/3.tar.zst', 'archive', '2026-06-03T03:00:00.000Z', 'acme'],
      ['acme/2.tar.zst', 'archive', '2026-06-02T03:00:00.000Z', 'acme'],
      ['acme/1.tar.zst', 'archive', '2026-06-01T03:00:00.000Z', 'acme'],
    ]);
    expect(listing.otherObjects).toBe(1);
    expect(listing.backups[0]).toMatchObject({ location: 's3://backups/backups/acme/secret.tar.zst.age', createdAtFrom: 'metadata', toolVersion: '0.1.0' });
    // The digest comes from the tag the backup set, for the encrypted one as for the others.
    for (const entry of listing.backups) expect(entry.manifestSha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('lists a backup a lifecycle rule moved to Glacier by its metadata, without reading it, and prunes by its date', async () => {
    for (let day = 0; day < 3; day++) await backupAt(tenantsDir, 'acme', `s3://backups/glacier/acme/${day + 1}.tar.zst`, new Date(JUNE_1.getTime() + day * DAY), server);
    const glacier = await startGlacierProxy(server.endpoint, (key) => key === 'glacier/acme/1.tar.zst');
    const flags = ['--endpoint', glacier.endpoint, '--access-key', 'S3RVER', '--secret-key', 'test-secret-key'];
    try {
      const run = await runMain(['--json', 'tenants', 'backups', 'acme', '--in', 's3://backups/glacier/acme/', ...flags]);
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      const listing = JSON.parse(run.stdout) as { backups: BackupEntry[] };
      expect(listing.backups.map(summary)).toEqual([
        ['3.tar.zst', 'archive', '2026-06-03T03:00:00.000Z', 'acme'],
        ['2.tar.zst', 'archive', '2026-06-02T03:00:00.000Z', 'acme'],
        ['1.tar.zst', 'archived', '2026-06-01T03:00:00.000Z', 'acme'],
      ]);
      expect(listing.backups[2]).toMatchObject({ storageClass: 'GLACIER', createdAtFrom: 'metadata', manifestSha256: expect.stringMatching(/^[0-9a-f]{64}$/), note: expect.stringMatching(/GLACIER storage class: restore it/) });
      const table = await runMain(['tenants', 'backups', 'acme', '--in', 's3://backups/glacier/acme/', ...flags]);
      expect(table.stdout).toMatch(/archived \(GLACIER\)/);

      const prune = await runMain(['--json', 'tenants', 'prune', 'acme', '--in', 's3://backups/glacier/acme/', '--keep-last', '1', ...flags]);
      expect(prune.stderr).toBe('');
      expect(prune.status).toBe(0);
      expect((JSON.parse(prune.stdout) as { remove: { location: string }[] }).remove.map((entry) => entry.location)).toEqual([
        's3://backups/glacier/acme/1.tar.zst',
        's3://backups/glacier/acme/2.tar.zst',
      ]);
    } finally {
      await glacier.stop();
    }
  });

  it('says a --from that is a prefix of archives, not one, is a prefix and names the listing; a key that is neither is only missing', async () => {
    const restored = await runMain(['--tenants-dir', tenantsDir, 'tenants', 'restore', '--from', 's3://backups/backups/acme', '--as', 'prefixed', ...s3Flags(server)]);
    expect(restored).toEqual({
      status: 1,
      stdout: '',
      stderr: "openclaw: no archive at s3://backups/backups/acme: it is a prefix with objects below it: give the archive's key (tenants backups NAME --in s3://backups/backups/acme/ lists a tenant's archives in it)\n",
    });
    const verified = await runMain(['tenants', 'verify', '--from', 's3://backups/backups/acm', '--no-record', ...s3Flags(server)]);
    expect(verified.stderr).toBe('openclaw: no archive at s3://backups/backups/acm\n');
  });

  it('verifies and restores an archive another tool copied to a key a backup would not write, as it is listed', async () => {
    // A backslash (a Windows tool's path) and a control character: S3 keys, listed (escaped) by
    // `backups`, and refused as --from ("invalid S3 object key") before reads took any key S3 holds.
    const keys = ['copied/acme\\old.tar.zst', 'copied/acme\u0001.tar.zst'];
    for (const copy of keys) {
      // Not execFileSync: s3rver answers from this process's event loop.
      await promisify(execFile)(AWS_CLI, ['--endpoint-url', server.endpoint, 's3api', 'copy-object', '--bucket', 'backups', '--copy-source', 'backups/backups/acme/2.tar.zst', '--key', copy], { env: awsCliEnvironment() });
    }
    const listed = await runMain(['--json', 'tenants', 'backups', 'acme', '--in', 's3://backups/copied/', ...s3Flags(server)]);
    expect((JSON.parse(listed.stdout) as { backups: BackupEntry[] }).backups.map((entry) => entry.location).sort()).toEqual(keys.map((copy) => `s3://backups/${copy}`).sort());
    // Shown to a person, the backslash is doubled (as every name shown): copied from there, the
    // location names another key, and the refusal says why.
    const shown = await runMain(['tenants', 'backups', 'acme', '--in', 's3://backups/copied/', ...s3Flags(server)]);
    const copied = /s3:\/\/backups\/copied\/acme\S*old\.tar\.zst/.exec(shown.stdout)?.[0];
    expect(copied).toBe('s3://backups/copied/acme\\\\old.tar.zst');
    const refused = await runMain(['tenants', 'verify', '--from', copied!, '--no-record', ...s3Flags(server)]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toBe(
      'openclaw: no archive at s3://backups/copied/acme\\\\old.tar.zst (a listing shows a name escaped: each backslash doubled, a control character as \\u…; write a backslash once, or take the location from --json)\n',
    );
    for (const copy of keys) {
      const verified = await runMain(['--json', 'tenants', 'verify', '--from', `s3://backups/${copy}`, '--no-record', ...s3Flags(server)]);
      expect(verified.stderr, copy).toBe('');
      expect(verified.status, copy).toBe(0);
      const planned = await runMain(['--json', '--tenants-dir', tenantsDir, 'tenants', 'restore', '--from', `s3://backups/${copy}`, '--as', 'copied', '--dry-run', ...s3Flags(server)]);
      expect(planned.status, copy).toBe(0);
      expect(JSON.parse(planned.stdout)).toMatchObject({ tenant: 'copied' });
      // A backup still writes only keys that are sane relative paths.
      const written = await runMain(['--tenants-dir', tenantsDir, 'tenants', 'backup', 'acme', '--to', `s3://backups/${copy}`, '--overwrite', ...s3Flags(server)]);
      expect(written.status, copy).toBe(2);
      expect(written.stderr, copy).toMatch(/^openclaw: invalid S3 object key "copied\/acme.*": contains a (backslash|control character)\n$/);
    }
    // Nor does a read take a "." or ".." segment, which an HTTP layer on the way may resolve to another key.
    const dotted = await runMain(['tenants', 'verify', '--from', 's3://backups/copied/../backups/acme/2.tar.zst', ...s3Flags(server)]);
    expect(dotted).toMatchObject({ status: 2, stderr: 'openclaw: invalid S3 object key "copied/../backups/acme/2.tar.zst": contains a ".." segment\n' });
  });

  it('lists what exists under a prefix the read rule takes but a backup would not write (a backslash, a control character), as restore reads it', async () => {
    // Another tool's keys: `--in` took the backup's rule and refused such a prefix ("contains a backslash"), though restore and verify read its archives.
    // (s3rver keeps objects as files: it cannot hold a key with "//" or a leading "/", which the read rule takes too.)
    const keys = ['windows\\acme/1.tar.zst', 'tab\tacme/1.tar.zst'];
    for (const copy of keys) {
      await promisify(execFile)(AWS_CLI, ['--endpoint-url', server.endpoint, 's3api', 'copy-object', '--bucket', 'backups', '--copy-source', 'backups/backups/acme/2.tar.zst', '--key', copy], { env: awsCliEnvironment() });
    }
    for (const [prefix, key] of [
      ['s3://backups/windows\\acme/', keys[0]],
      ['s3://backups/windows\\acme', keys[0]],
      ['s3://backups/tab\tacme/', keys[1]],
    ] as const) {
      const listed = await runMain(['--json', 'tenants', 'backups', 'acme', '--in', prefix, ...s3Flags(server)]);
      expect(listed.stderr, prefix).toBe('');
      expect(listed.status, prefix).toBe(0);
      expect((JSON.parse(listed.stdout) as { backups: BackupEntry[] }).backups.map((entry) => entry.location), prefix).toEqual([`s3://backups/${key}`]);
    }
    // Still refused: a "." or ".." segment (an HTTP layer may resolve it), and prune, which deletes, keeps the backup's rule.
    const dotted = await runMain(['tenants', 'backups', 'acme', '--in', 's3://backups/copied/../backups/', ...s3Flags(server)]);
    expect(dotted).toMatchObject({ status: 2, stderr: 'openclaw: invalid S3 object key "copied/../backups": contains a ".." segment\n' });
    const pruned = await runMain(['tenants', 'prune', 'acme', '--in', 's3://backups/windows\\acme/', '--keep-last', '1', '--dry-run', ...s3Flags(server)]);
    expect(pruned).toMatchObject({ status: 2, stderr: 'openclaw: invalid S3 object key "windows\\\\acme": contains a backslash\n' });
  });

  it('takes s3://bucket/prefix without the trailing slash, and refuses a bad URL as a usage error', async () => {
    const run = await runMain(['--json', 'tenants', 'backups', 'beta', '--in', 's3://backups/backups', ...s3Flags(server)]);
    expect(JSON.parse(run.stdout).backups).toHaveLength(1);
    const bad = await runMain(['tenants', 'backups', 'acme', '--in', 's3://Backups/', ...s3Flags(server)]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^openclaw: invalid S3 bucket name "Backups": must be lowercase\n$/);
  });
});

describe('an S3 archive written again while it is listed', () => {
  it('fails the listing with one line rather than read the end of another version', async () => {
    const s3 = mockClient(S3Client);
    try {
      const bytes = Buffer.concat([markerFrame({ tenant: 'acme', createdAt: '2026-06-01T03:00:00.000Z', toolVersion: '0.1.0' }), Buffer.alloc(10_000, 1)]);
      s3.on(ListObjectsV2Command).resolves({ Contents: [{ Key: 'p/acme/1.tar.zst', Size: bytes.length, ETag: '"old"', LastModified: new Date() }] });
      // The first read sees the old version; the read of its end, a new one (a store that ignores If-Match).
      s3.on(GetObjectCommand)
        .callsFakeOnce(() => ({ Body: sdkStreamMixin(Readable.from([bytes.subarray(0, 4096)])), ContentRange: `bytes 0-4095/${bytes.length}`, ETag: '"old"', Metadata: {} }))
        .callsFakeOnce(() => ({ Body: sdkStreamMixin(Readable.from([bytes.subarray(-1024)])), ETag: '"new"', Metadata: {} }));
      s3.on(GetObjectTaggingCommand).resolves({ TagSet: [] });
      const store = new S3ArchiveStore({ client: new S3Client({ region: 'us-east-1' }), bucket: 'b', prefix: 'p/' });
      await expect(listBackups(store, 'acme')).rejects.toThrow(/^s3:\/\/b\/p\/acme\/1\.tar\.zst changed while it was being listed: list again$/);
      expect(s3.commandCalls(GetObjectCommand)[1]!.args[0].input).toMatchObject({ Range: `bytes=${bytes.length - 1024}-${bytes.length - 1}`, IfMatch: '"old"' });
    } finally {
      s3.restore();
    }
  });
});

describe('an S3 object whose recorded creation time is no time a backup writes', () => {
  it('is not dated by it: a day that does not exist, a bare number, a local time', async () => {
    const s3 = mockClient(S3Client);
    try {
      const times: Record<string, string> = { 'p/acme/a.age': '2026-02-30T03:00:00.000Z', 'p/acme/b.age': '1', 'p/acme/c.age': '2026-06-03T23:30:00-08:00', 'p/acme/d.age': '2026-06-04T07:30:00.000Z' };
      const age = Buffer.from('age-encryption.org/v1\n-> X25519 abc\nxyz\n--- abc\n');
      s3.on(ListObjectsV2Command).resolves({ Contents: Object.keys(times).map((Key) => ({ Key, Size: 5000, ETag: '"e"', LastModified: new Date() })) });
      s3.on(GetObjectCommand).callsFake((input: { Key: string }) => ({
        Body: sdkStreamMixin(Readable.from([age])),
        ETag: '"e"',
        Metadata: { 'openclaw-tenant': 'acme', 'openclaw-created-at': times[input.Key]! },
      }));
      s3.on(GetObjectTaggingCommand).resolves({ TagSet: [{ Key: 'openclaw-stored-bytes', Value: '5000' }] });
      const listing = await listBackups(new S3ArchiveStore({ client: new S3Client({ region: 'us-east-1' }), bucket: 'b', prefix: 'p/' }), 'acme');
      expect(Object.fromEntries(listing.backups.map((entry) => [entry.name, entry.createdAt ?? null]))).toEqual({ 'acme/a.age': null, 'acme/b.age': null, 'acme/c.age': null, 'acme/d.age': '2026-06-04T07:30:00.000Z' });
    } finally {
      s3.restore();
    }
  });
});

describe('an S3 archive removed while it is listed (another prune was quicker)', () => {
  it('leaves it out instead of failing the listing', async () => {
    const s3 = mockClient(S3Client);
    try {
      const bytes = markerFrame({ tenant: 'acme', createdAt: '2026-06-01T03:00:00.000Z', toolVersion: '0.1.0' });
      s3.on(ListObjectsV2Command).resolves({
        Contents: ['p/acme/1.tar.zst', 'p/acme/2.tar.zst'].map((Key) => ({ Key, Size: bytes.length, ETag: '"e"', LastModified: new Date() })),
      });
      s3.on(GetObjectCommand, { Key: 'p/acme/1.tar.zst' }).rejects(Object.assign(new Error('The specified key does not exist.'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } }));
      s3.on(GetObjectCommand, { Key: 'p/acme/2.tar.zst' }).callsFake(() => ({ Body: sdkStreamMixin(Readable.from([bytes])), ETag: '"e"', Metadata: {} }));
      s3.on(GetObjectTaggingCommand).resolves({ TagSet: [] });
      const listing = await listBackups(new S3ArchiveStore({ client: new S3Client({ region: 'us-east-1' }), bucket: 'b', prefix: 'p/' }), 'acme');
      expect(listing.backups.map((entry) => entry.name)).toEqual(['acme/2.tar.zst']);
      expect(listing.otherObjects).toBe(0);
    } finally {
      s3.restore();
    }
  });
});

describe('an S3 listing of many pages', () => {
  it('follows continuation tokens and reads each object\'s first bytes, and the last 1 KiB of only the tenant\'s own', async () => {
    const s3 = mockClient(S3Client);
    try {
      const marker = (tenant: string, createdAt: string) => Buffer.concat([markerFrame({ tenant, createdAt, toolVersion: '0.1.0' }), Buffer.alloc(100, 1)]);
      const pages = Array.from({ length: 3 }, (_, page) => Array.from({ length: 4 }, (_, index) => `acme/${page}-${index}.tar.zst`));
      s3.on(ListObjectsV2Command).callsFake((input: { ContinuationToken?: string }) => {
        const page = input.ContinuationToken === undefined ? 0 : Number(input.ContinuationToken);
        return {
          Contents: pages[page]!.map((Key) => ({ Key: `p/${Key}`, Size: 10_000, LastModified: new Date('2030-01-01') })),
          IsTruncated: page < 2,
          ...(page < 2 && { NextContinuationToken: String(page + 1) }),
        };
      });
      const ranges: string[] = [];
      s3.on(GetObjectCommand).callsFake((input: { Key: string; Range?: string }) => {
        ranges.push(input.Range ?? 'whole');
        const [page, index] = input.Key.slice('p/acme/'.length).split('.')[0]!.split('-').map(Number);
        const createdAt = new Date(Date.UTC(2026, 0, 1 + page! * 4 + index!)).toISOString();
        return { Body: sdkStreamMixin(Readable.from([marker('acme', createdAt)])), Metadata: {} };
      });
      s3.on(GetObjectTaggingCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }));
      const store = new S3ArchiveStore({ client: new S3Client({ region: 'us-east-1' }), bucket: 'b', prefix: 'p/', pageSize: 4 });
      const listing = await listBackups(store, 'acme');
      expect(listing.backups).toHaveLength(12);
      expect(listing.backups[0]!.createdAt).toBe('2026-01-12T00:00:00.000Z');
      expect(listing.backups[11]!.createdAt).toBe('2026-01-01T00:00:00.000Z');
      expect(s3.commandCalls(ListObjectsV2Command).map((call) => call.args[0].input.ContinuationToken)).toEqual([undefined, '1', '2']);
      // These objects end without a footer: the end read finds them cut short.
      expect(listing.backups.every((entry) => entry.incomplete === true)).toBe(true);
      expect(ranges.filter((range) => range === 'bytes=0-4095')).toHaveLength(12);
      expect(ranges.filter((range) => range === 'bytes=8976-9999')).toHaveLength(12);
      expect(ranges).toHaveLength(24);
      ranges.length = 0;
      expect((await listBackups(store, 'beta')).backups).toHaveLength(0);
      expect(new Set(ranges)).toEqual(new Set(['bytes=0-4095']));
    } finally {
      s3.restore();
    }
  });
});

describe('the tags of a bucket-wide listing', () => {
  // Read for every object, the tags doubled the requests (and the CPU) of a prefix holding
  // every tenant's backups, though another tenant's object is its tenant's whatever they say.
  it("are read for the tenant's own objects and those that name no tenant, not for another tenant's", async () => {
    const s3 = mockClient(S3Client);
    try {
      const verifiedAt = '2026-06-09T00:00:00.000Z';
      const objects: Record<string, { bytes: Buffer; metadata?: Record<string, string> }> = {
        'p/acme/1.tar.zst': { bytes: Buffer.concat([markerFrame({ tenant: 'acme', createdAt: '2026-06-01T03:00:00.000Z', toolVersion: '0.1.0' }), Buffer.alloc(100, 1)]) },
        'p/beta/1.tar.zst': { bytes: Buffer.concat([markerFrame({ tenant: 'beta', createdAt: '2026-06-01T03:00:00.000Z', toolVersion: '0.1.0' }), Buffer.alloc(100, 1)]) },
        'p/beta/2.tar.zst.age': { bytes: Buffer.from('age-encryption.org/v1\n-> X25519 abc\nxyz\n--- abc\n'), metadata: { 'openclaw-tenant': 'beta', 'openclaw-created-at': '2026-06-02T03:00:00.000Z' } },
        // Another tool's zstd stream in acme's directory, dated only by its verification mark.
        'p/acme/by-hand.tar.zst': { bytes: Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]) },
      };
      s3.on(ListObjectsV2Command).resolves({ Contents: Object.entries(objects).map(([Key, object]) => ({ Key, Size: object.bytes.length, ETag: '"e"', LastModified: new Date('2026-06-10') })) });
      s3.on(GetObjectCommand).callsFake((input: { Key: string }) => ({ Body: sdkStreamMixin(Readable.from([objects[input.Key]!.bytes])), ETag: '"e"', Metadata: objects[input.Key]!.metadata ?? {} }));
      s3.on(GetObjectTaggingCommand).resolves({ TagSet: [{ Key: 'openclaw-verified', Value: `${verifiedAt} ${'a'.repeat(64)} 2026-05-01T00:00:00.000Z` }] });
      const listing = await listBackups(new S3ArchiveStore({ client: new S3Client({ region: 'us-east-1' }), bucket: 'b', prefix: 'p/' }), 'acme');
      expect(listing.backups.map((entry) => [entry.name, entry.createdAt, entry.verifiedAt])).toEqual([
        ['acme/1.tar.zst', '2026-06-01T03:00:00.000Z', verifiedAt],
        ['acme/by-hand.tar.zst', '2026-05-01T00:00:00.000Z', verifiedAt],
      ]);
      expect(listing.otherObjects).toBe(2);
      expect(s3.commandCalls(GetObjectTaggingCommand).map((call) => call.args[0].input.Key).sort()).toEqual(['p/acme/1.tar.zst', 'p/acme/by-hand.tar.zst']);
      // Listed for beta, acme's archive is the one left unasked.
      s3.resetHistory();
      expect((await listBackups(new S3ArchiveStore({ client: new S3Client({ region: 'us-east-1' }), bucket: 'b', prefix: 'p/' }), 'beta')).backups.map((entry) => entry.name)).toEqual(['beta/2.tar.zst.age', 'beta/1.tar.zst']);
      expect(s3.commandCalls(GetObjectTaggingCommand).map((call) => call.args[0].input.Key).sort()).toEqual(['p/acme/by-hand.tar.zst', 'p/beta/1.tar.zst', 'p/beta/2.tar.zst.age']);
    } finally {
      s3.restore();
    }
  });
});

describe('what a listing holds per backup', () => {
  v8.setFlagsFromString('--expose-gc');
  const collectGarbage = vm.runInNewContext('gc') as () => void;
  const liveBytes = () => {
    collectGarbage();
    collectGarbage();
    const { heapUsed, arrayBuffers } = process.memoryUsage();
    return heapUsed + arrayBuffers;
  };

  it("keeps a few hundred bytes of each backup to sort it, none of the store's answers (20,000 objects, 1,000 an answer, 4 KiB first bytes each)", async () => {
    const count = 20_000;
    const store: ArchiveStore = {
      display: 's3://b/backups/acme/',
      baseName: 'acme',
      list: async () => [],
      objectAt: async () => undefined,
      async *listInParts() {
        for (let at = 0; at < count; at += 1000) {
          yield Array.from({ length: 1000 }, (_, index): StoredObject => {
            const name = `${String(at + index).padStart(7, '0')}.tar.zst`;
            return { name, location: `s3://b/backups/acme/${name}`, bytes: 4096, modifiedAt: new Date(JUNE_1), etag: '"0123456789abcdef0123456789abcdef"' };
          });
        }
      },
      inspect: async (object): Promise<ObjectFacts> => ({
        // Encrypted or piped: dated by the metadata the backup wrote beside it, its size tag showing it whole.
        head: Buffer.alloc(4096, 0x41),
        metadata: { tenant: 'acme', createdAt: new Date(JUNE_1.getTime() + Number(object.name.slice(0, 7)) * 60_000).toISOString(), toolVersion: '0.9.0' },
        storedBytes: 4096,
      }),
      deletionTerms: async () => ({ versioning: 'off', lifecycle: 'known', objectLock: 'off' }),
      holdOf: async () => undefined,
      remove: async () => 'removed' as const,
    };
    const before = liveBytes();
    const listing = await listBackups(store, 'acme');
    const perBackup = (liveBytes() - before) / listing.backups.length;
    expect(listing.backups).toHaveLength(count);
    expect(listing.backups[0]!.name).toBe('0019999.tar.zst');
    // ~330 bytes measured (an entry's strings and fields): 100,000 backups ~33 MiB; an entry holding its facts would be over 4 KiB.
    expect(perBackup).toBeLessThan(600);
  });

  /** A ListObjectsV2 stand-in for `count` keys in S3's order, 1,000 an answer; `keyAt` names each. */
  /** Every key the store lists, counted part by part. */
  async function keysListed(store: S3ArchiveStore): Promise<number> {
    let listed = 0;
    for await (const part of store.listInParts()) listed += part.length;
    return listed;
  }

  function serveListing(s3: ReturnType<typeof mockClient>, count: number, keyAt = (at: number) => `p/${String(at).padStart(7, '0')}.tar.zst`): void {
    s3.on(ListObjectsV2Command).callsFake((input: { ContinuationToken?: string }) => {
      const from = input.ContinuationToken === undefined ? 0 : Number(input.ContinuationToken);
      const to = Math.min(count, from + 1000);
      const Contents = Array.from({ length: to - from }, (_, index) => ({ Key: keyAt(from + index), Size: 4096, ETag: '"e"', LastModified: JUNE_1 }));
      return { Name: 'b', Contents, KeyCount: Contents.length, IsTruncated: to < count, ...(to < count && { NextContinuationToken: String(to) }) };
    });
  }

  it('lists a prefix of 300,000 objects in parts without holding their keys (before: refused past 100,000)', async () => {
    const s3 = mockClient(S3Client);
    try {
      serveListing(s3, 300_000);
      const store = new S3ArchiveStore({ client: new S3Client({ region: 'us-east-1' }), bucket: 'b', prefix: 'p/' });
      const before = liveBytes();
      let listed = 0;
      let held = 0;
      for await (const part of store.listInParts()) {
        listed += part.length;
        // (The stand-in's own record of its answers let go.)
        s3.resetHistory();
        if (listed === 300_000) held = liveBytes() - before;
      }
      expect(listed).toBe(300_000);
      // Its first 100,000 keys are remembered (a store may send one again), then let go: 300,000 held were ~25 MiB.
      expect(held).toBeLessThan(8 * 1024 * 1024);
    } finally {
      s3.restore();
    }
  });

  it('past 100,000 keys, lists a key sent again once (in S3\'s order), and refuses a store that lists in another order', async () => {
    const s3 = mockClient(S3Client);
    try {
      const store = new S3ArchiveStore({ client: new S3Client({ region: 'us-east-1' }), bucket: 'b', prefix: 'p/' });
      // Key 150,000 again in place of 150,001.
      serveListing(s3, 200_000, (at) => `p/${String(at === 150_001 ? 150_000 : at).padStart(7, '0')}.tar.zst`);
      expect(await keysListed(store)).toBe(199_999);

      s3.reset();
      // Descending: each key new, but none after the one before.
      serveListing(s3, 200_000, (at) => `p/${String(999_999 - at).padStart(7, '0')}.tar.zst`);
      await expect(keysListed(store)).rejects.toThrow(/^s3:\/\/b\/p\/: the store lists more than 100000 keys, not in S3's order \(by their UTF-8 bytes\): past that many, a key it sends again cannot be told from a new one: give a narrower prefix$/);
    } finally {
      s3.restore();
    }
  });

  it('past 100,000 keys, refuses a store whose order strays only there (by UTF-16 code units, as Java and JavaScript sort) rather than drop the key as one sent again', async () => {
    const s3 = mockClient(S3Client);
    try {
      const store = new S3ArchiveStore({ client: new S3Client({ region: 'us-east-1' }), bucket: 'b', prefix: 'p/' });
      // ASCII keys agree in both orders; past 100,000, U+1F600 (UTF-16 D83D…) comes before U+FFFD there, after it in UTF-8 bytes.
      serveListing(s3, 200_000, (at) => (at === 150_000 ? 'p/0150000-\u{1F600}.tar.zst' : at === 150_001 ? 'p/0150000-\u{FFFD}.tar.zst' : `p/${String(at).padStart(7, '0')}.tar.zst`));
      await expect(keysListed(store)).rejects.toThrow(/^s3:\/\/b\/p\/: the store lists more than 100000 keys, not in S3's order \(by their UTF-8 bytes\)/);
    } finally {
      s3.restore();
    }
  });

  it('refuses a listing of more than 100,000 backups of the tenant: each is held to be sorted', async () => {
    const count = 100_001;
    const store: ArchiveStore = {
      display: 's3://b/backups/acme/',
      baseName: 'acme',
      list: async () => [],
      objectAt: async () => undefined,
      async *listInParts() {
        for (let at = 0; at < count; at += 1000) {
          yield Array.from({ length: Math.min(1000, count - at) }, (_, index): StoredObject => {
            const name = `${String(at + index).padStart(7, '0')}.tar.zst`;
            return { name, location: `s3://b/backups/acme/${name}`, bytes: 4096, modifiedAt: new Date(JUNE_1) };
          });
        }
      },
      inspect: async (): Promise<ObjectFacts> => ({ head: Buffer.alloc(16, 0x41), metadata: { tenant: 'acme', createdAt: JUNE_1.toISOString() }, storedBytes: 4096 }),
      deletionTerms: async () => ({ versioning: 'off', lifecycle: 'known', objectLock: 'off' }),
      holdOf: async () => undefined,
      remove: async () => 'removed' as const,
    };
    await expect(listBackups(store, 'acme')).rejects.toThrow(/^s3:\/\/b\/backups\/acme\/ holds more than 100000 backups of "acme": give a narrower prefix or directory$/);
  });
});

describe('an S3-compatible store whose listing strays from AWS\'s', () => {
  const marker = (createdAt: string) => Buffer.concat([markerFrame({ tenant: 'acme', createdAt, toolVersion: '0.1.0' }), Buffer.alloc(100, 1)]);
  const listed = (keys: readonly string[]) => keys.map((Key) => ({ Key, Size: 10_000, ETag: '"e"', LastModified: new Date('2026-06-01') }));
  function serveArchives(s3: ReturnType<typeof mockClient>, created: Record<string, string>): void {
    s3.on(GetObjectCommand).callsFake((input: { Key: string }) => {
      const createdAt = created[input.Key];
      if (createdAt === undefined) throw Object.assign(new Error('The specified key does not exist.'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });
      return { Body: sdkStreamMixin(Readable.from([marker(createdAt)])), ETag: '"e"', Metadata: {} };
    });
    s3.on(GetObjectTaggingCommand).resolves({ TagSet: [] });
  }

  it('goes on after the last key when a truncated page has no continuation token, instead of stopping at page one', async () => {
    const s3 = mockClient(S3Client);
    try {
      s3.on(ListObjectsV2Command).callsFake((input: { StartAfter?: string }) =>
        input.StartAfter === undefined
          ? { Name: 'b', Contents: listed(['p/acme/1.tar.zst']), IsTruncated: true }
          : { Name: 'b', Contents: listed(['p/acme/2.tar.zst']), IsTruncated: false },
      );
      serveArchives(s3, { 'p/acme/1.tar.zst': '2026-06-01T03:00:00.000Z', 'p/acme/2.tar.zst': '2026-06-02T03:00:00.000Z' });
      const listing = await listBackups(new S3ArchiveStore({ client: new S3Client({ region: 'us-east-1' }), bucket: 'b', prefix: 'p/' }), 'acme');
      expect(listing.backups.map((entry) => entry.name)).toEqual(['acme/2.tar.zst', 'acme/1.tar.zst']);
      expect(s3.commandCalls(ListObjectsV2Command).map((call) => call.args[0].input.StartAfter)).toEqual([undefined, 'p/acme/1.tar.zst']);
    } finally {
      s3.restore();
    }
  });

  it('fails in one line, rather than loop, when a truncated page gives no way on (no token, no key; or the same token again)', async () => {
    const s3 = mockClient(S3Client);
    try {
      const store = new S3ArchiveStore({ client: new S3Client({ region: 'us-east-1' }), bucket: 'b', prefix: 'p/' });
      s3.on(ListObjectsV2Command).resolves({ Name: 'b', KeyCount: 0, IsTruncated: true });
      await expect(listBackups(store, 'acme')).rejects.toThrow(/^s3:\/\/b\/p\/: the store says its listing goes on but gives no way past the page it sent/);
      s3.on(ListObjectsV2Command).resolves({ Name: 'b', KeyCount: 0, IsTruncated: true, NextContinuationToken: 'same' });
      await expect(listBackups(store, 'acme')).rejects.toThrow(/gives no way past the page it sent/);
      expect(s3.commandCalls(ListObjectsV2Command).length).toBe(3);
    } finally {
      s3.restore();
    }
  });

  it('fails in one line, rather than list for ever, when the store sends its listing round in a loop (tokens A, B, A; page one again under a new token)', async () => {
    const s3 = mockClient(S3Client);
    try {
      const store = new S3ArchiveStore({ client: new S3Client({ region: 'us-east-1' }), bucket: 'b', prefix: 'p/' });
      s3.on(ListObjectsV2Command).callsFake((input: { ContinuationToken?: string }) => ({ Name: 'b', KeyCount: 0, IsTruncated: true, NextContinuationToken: input.ContinuationToken === 'A' ? 'B' : 'A' }));
      await expect(listBackups(store, 'acme')).rejects.toThrow(/^s3:\/\/b\/p\/: the store's listing goes round in a loop \(a continuation token it gave before\): cannot list it whole$/);
      expect(s3.commandCalls(ListObjectsV2Command).map((call) => call.args[0].input.ContinuationToken)).toEqual([undefined, 'A', 'B']);

      s3.reset();
      let page = 0;
      s3.on(ListObjectsV2Command).callsFake(() => ({ Name: 'b', Contents: listed(['p/acme/1.tar.zst', 'p/acme/2.tar.zst']), IsTruncated: true, NextContinuationToken: `t${(page += 1)}` }));
      serveArchives(s3, { 'p/acme/1.tar.zst': '2026-06-01T03:00:00.000Z', 'p/acme/2.tar.zst': '2026-06-02T03:00:00.000Z' });
      await expect(store.list()).rejects.toThrow(/goes round in a loop \(20 pages without a key not listed before\)/);
      expect(page).toBe(21);
    } finally {
      s3.restore();
    }
  });

  it('goes on past pages that hold no key (S3 skipping delete markers), each with a new token; ends a store that sends only those after 1,000', async () => {
    const s3 = mockClient(S3Client);
    try {
      const store = new S3ArchiveStore({ client: new S3Client({ region: 'us-east-1' }), bucket: 'b', prefix: 'p/' });
      let page = 0;
      s3.on(ListObjectsV2Command).callsFake(() => {
        page += 1;
        if (page === 1) return { Name: 'b', Contents: listed(['p/acme/1.tar.zst']), IsTruncated: true, NextContinuationToken: 't1' };
        if (page < 60) return { Name: 'b', KeyCount: 0, IsTruncated: true, NextContinuationToken: `t${page}` };
        return { Name: 'b', Contents: listed(['p/acme/2.tar.zst']), IsTruncated: false };
      });
      expect((await store.list()).map((object) => object.name)).toEqual(['acme/1.tar.zst', 'acme/2.tar.zst']);
      expect(page).toBe(60);

      s3.reset();
      page = 0;
      s3.on(ListObjectsV2Command).callsFake(() => ({ Name: 'b', KeyCount: 0, IsTruncated: true, NextContinuationToken: `t${(page += 1)}` }));
      await expect(store.list()).rejects.toThrow(/^s3:\/\/b\/p\/: the store's listing goes round in a loop \(1000 pages without a key\): cannot list it whole$/);
      expect(page).toBe(1000);
    } finally {
      s3.restore();
    }
  });

  it('lists a key a store sends on two pages once', async () => {
    const s3 = mockClient(S3Client);
    try {
      s3.on(ListObjectsV2Command).callsFake((input: { ContinuationToken?: string }) =>
        input.ContinuationToken === undefined
          ? { Name: 'b', Contents: listed(['p/acme/1.tar.zst', 'p/acme/2.tar.zst']), IsTruncated: true, NextContinuationToken: 'next' }
          : { Name: 'b', Contents: listed(['p/acme/2.tar.zst', 'p/acme/3.tar.zst']), IsTruncated: false },
      );
      const store = new S3ArchiveStore({ client: new S3Client({ region: 'us-east-1' }), bucket: 'b', prefix: 'p/' });
      expect((await store.list()).map((object) => object.name)).toEqual(['acme/1.tar.zst', 'acme/2.tar.zst', 'acme/3.tar.zst']);
    } finally {
      s3.restore();
    }
  });

  it('decodes the keys of a listing answered with EncodingType url (a space as +), and leaves out keys outside the prefix', async () => {
    const s3 = mockClient(S3Client);
    try {
      s3.on(ListObjectsV2Command).resolves({ Name: 'b', EncodingType: 'url', Contents: listed(['p/acme/z+4+sp%26%C3%A9.tar.zst', 'p/acme/a%2Bb.tar.zst', 'other/acme/x.tar.zst']), IsTruncated: false });
      serveArchives(s3, { 'p/acme/z 4 sp&é.tar.zst': '2026-06-01T03:00:00.000Z', 'p/acme/a+b.tar.zst': '2026-06-02T03:00:00.000Z' });
      const listing = await listBackups(new S3ArchiveStore({ client: new S3Client({ region: 'us-east-1' }), bucket: 'b', prefix: 'p/' }), 'acme');
      expect(listing.backups.map((entry) => [entry.name, entry.location])).toEqual([
        ['acme/a+b.tar.zst', 's3://b/p/acme/a+b.tar.zst'],
        ['acme/z 4 sp&é.tar.zst', 's3://b/p/acme/z 4 sp&é.tar.zst'],
      ]);
      expect(new Set(s3.commandCalls(GetObjectCommand).map((call) => call.args[0].input.Key))).toEqual(new Set(['p/acme/a+b.tar.zst', 'p/acme/z 4 sp&é.tar.zst']));
    } finally {
      s3.restore();
    }
  });
});

describe('an S3 listing in pages (the gateway\'s tenants backups)', () => {
  /** A bucket of `keys` as S3 lists it: by the bytes of their UTF-8, from after StartAfter or a token, MaxKeys (at most 1,000) at a time; `ignoresStartAfter`: a store that lists from the start anyway. */
  function serveBucket(s3: ReturnType<typeof mockClient>, keys: readonly string[], ignoresStartAfter = false): void {
    const sorted = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    s3.on(ListObjectsV2Command).callsFake((input: { Prefix?: string; StartAfter?: string; MaxKeys?: number; ContinuationToken?: string }) => {
      const after = input.ContinuationToken ?? (ignoresStartAfter ? undefined : input.StartAfter);
      const rest = sorted.filter((key) => key.startsWith(input.Prefix ?? '') && (after === undefined || Buffer.compare(Buffer.from(key), Buffer.from(after)) > 0));
      const page = rest.slice(0, Math.min(input.MaxKeys ?? 1000, 1000));
      const truncated = page.length < rest.length;
      return { Name: 'b', KeyCount: page.length, Contents: page.map((Key) => ({ Key, Size: 100, ETag: '"e"', LastModified: new Date('2026-06-01') })), IsTruncated: truncated, ...(truncated && { NextContinuationToken: page.at(-1) }) };
    });
    s3.on(GetObjectCommand).callsFake(() => ({ Body: sdkStreamMixin(Readable.from([Buffer.alloc(100, 7)])), ETag: '"e"', Metadata: {} }));
    s3.on(GetObjectTaggingCommand).resolves({ TagSet: [] });
  }
  /** Every page, each asked after the `next` of the one before, as the CLI asks the gateway. */
  async function pages(store: S3ArchiveStore, limit: number, first?: string): Promise<{ count: number; afters: (string | undefined)[] }> {
    const afters: (string | undefined)[] = [];
    let count = 0;
    for (let after = first; ; ) {
      afters.push(after);
      const page = await listBackups(store, 'acme', { page: { ...(after !== undefined && { after }), limit } });
      count += page.backups.length + page.otherObjects;
      if (page.next === undefined) return { count, afters };
      after = page.next;
    }
  }
  const keys = Array.from({ length: 2_500 }, (_, n) => `p/acme/${String(n).padStart(5, '0')}.tar.zst`);

  it('goes on from where the page before stopped: 2,500 objects (and a directory marker) in pages of 1,000 are 3 ListObjectsV2 requests (before: each page listed the prefix from its start, 9)', async () => {
    const s3 = mockClient(S3Client);
    try {
      serveBucket(s3, [...keys.slice(0, 2_500), 'other/x.tar.zst', 'p/dir/', 'q/y.tar.zst']);
      const store = new S3ArchiveStore({ client: new S3Client({ region: 'us-east-1' }), bucket: 'b', prefix: 'p/' });
      const { count, afters } = await pages(store, 1_000);
      expect(count).toBe(2_500);
      expect(afters).toEqual([undefined, 'acme/00999.tar.zst', 'acme/01999.tar.zst']);
      const lists = s3.commandCalls(ListObjectsV2Command).map((call) => call.args[0].input);
      expect(lists.map((input) => input.StartAfter)).toEqual([undefined, 'p/acme/00999.tar.zst', 'p/acme/01999.tar.zst']);
      // Each object inspected once.
      expect(s3.commandCalls(GetObjectCommand)).toHaveLength(2_500);
    } finally {
      s3.restore();
    }
  });

  it('ends the last page exactly, and goes on after a cursor whose object is gone since (a stale one)', async () => {
    const s3 = mockClient(S3Client);
    try {
      serveBucket(s3, keys.slice(0, 10));
      const store = new S3ArchiveStore({ client: new S3Client({ region: 'us-east-1' }), bucket: 'b', prefix: 'p/' });
      expect(await pages(store, 5)).toEqual({ count: 10, afters: [undefined, 'acme/00004.tar.zst'] });
      expect(s3.commandCalls(ListObjectsV2Command).map((call) => call.args[0].input.MaxKeys)).toEqual([5, 5]);
      // acme/00004a.tar.zst was never there (removed since it was listed): the listing goes on after where it would sort.
      expect(await pages(store, 5, 'acme/00004a.tar.zst')).toEqual({ count: 5, afters: ['acme/00004a.tar.zst'] });
    } finally {
      s3.restore();
    }
  });

  it('lists each object once from a store that ignores StartAfter', async () => {
    const s3 = mockClient(S3Client);
    try {
      serveBucket(s3, keys.slice(0, 10), true);
      const store = new S3ArchiveStore({ client: new S3Client({ region: 'us-east-1' }), bucket: 'b', prefix: 'p/' });
      const listed: string[] = [];
      for (let after: string | undefined; ; ) {
        const page = await store.listPage({ ...(after !== undefined && { after }), limit: 4 });
        listed.push(...page.objects.map((object) => object.name));
        if (page.next === undefined) break;
        after = page.next;
      }
      expect(listed).toEqual(keys.slice(0, 10).map((key) => key.slice('p/'.length)));
    } finally {
      s3.restore();
    }
  });

  it('refuses in one line a cursor no listing gives: a lone surrogate, a key longer than S3 holds, an empty name', async () => {
    const s3 = mockClient(S3Client);
    try {
      serveBucket(s3, keys.slice(0, 10));
      const store = new S3ArchiveStore({ client: new S3Client({ region: 'us-east-1' }), bucket: 'b', prefix: 'p/' });
      for (const after of ['acme/\ud800.tar.zst', 'x'.repeat(1023), '']) {
        const refusal = listBackups(store, 'acme', { page: { after, limit: 5 } });
        await expect(refusal).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
        await expect(refusal).rejects.toThrow(/^s3:\/\/b\/p\/: the listing cannot go on after "[^\n]*": it is no name below the prefix that a listing gives$/);
      }
      expect(s3.commandCalls(ListObjectsV2Command)).toHaveLength(0);
    } finally {
      s3.restore();
    }
  });
});
