// Built-in age encryption end to end, with the `age` CLI (Debian's age, the reference Go
// implementation), zstd and GNU tar as independent clients: what `tenants backup
// --encrypt-to` stores, `age -d | zstd -d | tar -t` reads; what `age -r` encrypts, `tenants
// restore --identity` restores; recipients files as `age -R` reads them; a wrong key, a
// truncated or a tampered file exit 3 with one line and leave the slot as it was; an
// encrypted archive without an identity gets the hint; local files and S3 (s3rver, read
// back with the AWS CLI).

import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createSampleTenant } from '../scripts/sample-tenant.js';
import { runMain } from './helpers/run-main.js';
import { S3RVER_ACCESS_KEY, startS3Server, type S3TestServer } from './helpers/s3-server.js';
import { cliPath, describeTree, runCli, sh, tempDir } from './helpers/tree.js';

const run = promisify(execFile);
const dir = tempDir('openclaw-age-');
const base = path.join(dir.path, 'tenants');
const keys = { alice: path.join(dir.path, 'alice.txt'), bob: path.join(dir.path, 'bob.txt'), eve: path.join(dir.path, 'eve.txt') };
const recipient: Record<keyof typeof keys, string> = { alice: '', bob: '', eve: '' };
const noPty = (rel: string) => rel === 'pty' || rel.startsWith('pty/');
const tree = (name: string) => describeTree(path.join(base, name), { exclude: noPty });
const archive = (name: string) => path.join(dir.path, name);
const cli = (...args: string[]) => runCli(['--tenants-dir', base, ...args]);

beforeAll(() => {
  createSampleTenant(path.join(base, 'acme'), { sessions: 3, memoryRows: 50 });
  for (const [name, file] of Object.entries(keys) as [keyof typeof keys, string][]) {
    sh(`age-keygen -o '${file}' 2>/dev/null`);
    recipient[name] = sh(`age-keygen -y '${file}'`).toString().trim();
  }
});
afterAll(() => dir.cleanup());

describe('backup --encrypt-to', () => {
  it('stores a standard age file: age -d | zstd -d | tar -t lists the tenant', () => {
    const file = archive('acme.tar.zst.age');
    const backup = cli('--json', 'tenants', 'backup', 'acme', '--to', file, '--encrypt-to', recipient.alice);
    expect(backup.stderr).toBe('');
    expect(backup.status).toBe(0);
    expect(JSON.parse(backup.stdout).encryptedTo).toEqual([recipient.alice]);
    expect(readFileSync(file).subarray(0, 22).toString('latin1')).toBe('age-encryption.org/v1\n');
    const listing = sh(`age -d -i '${keys.alice}' '${file}' | zstd -dq | tar -t`).toString().split('\n');
    expect(listing).toContain('tenants/acme/.openclaw-backup-manifest.json');
    expect(listing.some((entry) => entry.startsWith('tenants/acme/pty'))).toBe(false);
    // Not a zstd stream any more: nothing of the plaintext is readable without the key.
    expect(() => sh(`zstd -dq < '${file}' > /dev/null`)).toThrow();

    const restored = cli('tenants', 'restore', '--from', file, '--as', 'acme-a', '--identity', keys.alice);
    expect(restored.stderr).toBe('');
    expect(restored.status).toBe(0);
    expect(restored.stdout).toMatch(/decrypted with age \(every chunk authenticated\)/);
    expect(tree('acme-a')).toEqual(tree('acme'));
  });

  it('encrypts to every recipient of --recipients-file (comments and blank lines, as age -R) and of --encrypt-to', () => {
    const recipients = path.join(dir.path, 'recipients.txt');
    writeFileSync(recipients, `# escrow\n${recipient.alice}\n\n# operator\r\n${recipient.bob}\r\n`);
    const file = archive('acme-multi.tar.zst.age');
    const backup = cli('tenants', 'backup', 'acme', '--to', file, '--recipients-file', recipients, '--encrypt-to', recipient.eve);
    expect(backup.stderr).toBe('');
    expect(backup.stdout).toMatch(/encrypted with age to 3 recipients/);
    for (const key of Object.values(keys)) expect(sh(`age -d -i '${key}' '${file}' | zstd -dq | tar -t | wc -l`).toString().trim()).not.toBe('0');
    // Any one of the identities restores it; several files may be given.
    const restored = cli('tenants', 'restore', '--from', file, '--as', 'acme-b', '--identity', keys.eve, '--identity', keys.bob);
    expect(restored.status).toBe(0);
    expect(tree('acme-b')).toEqual(tree('acme'));
  });

  it('refuses a bad recipient, a bad recipients file, and --pipe beside it, before reading the tenant', () => {
    const file = archive('never.tar.zst.age');
    const bad = cli('tenants', 'backup', 'acme', '--to', file, '--encrypt-to', 'age1notakey');
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/^openclaw: .*recipient/);
    const secretInRecipients = path.join(dir.path, 'wrong-recipients.txt');
    writeFileSync(secretInRecipients, readFileSync(keys.alice));
    const wrongFile = cli('tenants', 'backup', 'acme', '--to', file, '--recipients-file', secretInRecipients);
    expect(wrongFile.status).toBe(2);
    // The secret key itself is never echoed.
    expect(wrongFile.stderr).toMatch(/a secret key \(AGE-SECRET-KEY-…\) was given as a recipient/);
    expect(wrongFile.stderr).not.toMatch(/AGE-SECRET-KEY-1[0-9A-Z]/);
    const both = cli('tenants', 'backup', 'acme', '--to', file, '--encrypt-to', recipient.alice, '--pipe', 'cat');
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/--encrypt-to\/--recipients-file and --pipe exclude each other/);
    expect(() => readFileSync(file)).toThrow();
  });

  // Each key is parsed at ~0.45 ms: 10,000 keys took 5.6 s to be refused as too many, a 16 MiB file (the size read) some two minutes.
  it('refuses a recipients file of more keys than a backup reads by its count, before any key in it is parsed', () => {
    const file = archive('crowd.tar.zst.age');
    const crowd = path.join(dir.path, 'crowd.txt');
    // A key no parse would take (uppercase, as age refuses it too) on the second line: the count answers first.
    writeFileSync(crowd, `${recipient.alice}\n${recipient.bob.toUpperCase()}\n${`${recipient.eve}\n`.repeat(10_000)}`);
    const refused = cli('tenants', 'backup', 'acme', '--to', file, '--recipients-file', crowd);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toBe('openclaw: too many recipients (10002): at most 64\n');
    // Counted with the keys given before it: 2 --encrypt-to and a file of 255 make 257 texts, past the 256 read.
    const some = path.join(dir.path, 'some.txt');
    writeFileSync(some, `${recipient.bob.toUpperCase()}\n${`${recipient.eve}\n`.repeat(254)}`);
    const withFlags = cli('tenants', 'backup', 'acme', '--to', file, '--encrypt-to', recipient.alice, '--encrypt-to', recipient.bob, '--recipients-file', some);
    expect(withFlags.status).toBe(2);
    expect(withFlags.stderr).toBe('openclaw: too many recipients (257): at most 64\n');
    expect(() => readFileSync(file)).toThrow();
  });

  it('refuses to store a plaintext archive under a name ending in .age (recipients forgotten): one tenant, --all, --dry-run', () => {
    const file = archive('forgotten.tar.zst.age');
    for (const args of [
      ['tenants', 'backup', 'acme', '--to', file],
      ['tenants', 'backup', 'acme', '--to', file, '--dry-run'],
      ['tenants', 'backup', '--all', '--to', archive('forgotten-{tenant}.tar.zst.AGE')],
    ]) {
      const result = cli(...args);
      expect(result.status).toBe(2);
      expect(result.stderr).toMatch(/^openclaw: ".*" ends in "\.age" but nothing encrypts the archive: give --encrypt-to age1… or --recipients-file FILE/);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(sh(`ls -A '${dir.path}'`).toString()).not.toMatch(/forgotten/);
    // Encrypted by another tool through --pipe: the name is right.
    const piped = cli('tenants', 'backup', 'acme', '--to', file, '--pipe', `age -r ${recipient.alice}`);
    expect(piped.status).toBe(0);
    expect(readFileSync(file).subarray(0, 22).toString()).toBe('age-encryption.org/v1\n');
  });
});

describe('backup --all --encrypt-to', () => {
  it('encrypts every tenant\'s archive to the recipients, and refuses a bad recipient before any backup', () => {
    const allBase = path.join(dir.path, 'all-tenants');
    for (const name of ['one', 'two']) createSampleTenant(path.join(allBase, name), { sessions: 1, memoryRows: 5 });
    const template = path.join(dir.path, 'all', '{tenant}.tar.zst.age');
    const all = runCli(['--tenants-dir', allBase, '--json', 'tenants', 'backup', '--all', '--to', template, '--encrypt-to', recipient.alice, '--encrypt-to', recipient.bob]);
    expect(all.stderr).toBe('');
    expect(all.status).toBe(0);
    const outcomes = JSON.parse(all.stdout).results as { tenant: string; ok: boolean; result: { encryptedTo: string[] } }[];
    expect(outcomes.map((outcome) => [outcome.tenant, outcome.ok, outcome.result.encryptedTo])).toEqual([
      ['one', true, [recipient.alice, recipient.bob]],
      ['two', true, [recipient.alice, recipient.bob]],
    ]);
    for (const name of ['one', 'two']) {
      const file = path.join(dir.path, 'all', `${name}.tar.zst.age`);
      for (const key of [keys.alice, keys.bob]) expect(sh(`age -d -i '${key}' '${file}' | zstd -dq | tar -t`).toString()).toContain(`tenants/${name}/.openclaw-backup-manifest.json`);
    }

    const bad = runCli(['--tenants-dir', allBase, 'tenants', 'backup', '--all', '--to', path.join(dir.path, 'bad', '{tenant}.tar.zst.age'), '--encrypt-to', 'age1notakey']);
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(() => readFileSync(path.join(dir.path, 'bad', 'one.tar.zst.age'))).toThrow();
  });
});

describe('restore --identity', () => {
  it('restores an archive the age CLI encrypted (age -r over our tar.zst, and over GNU tar | zstd)', () => {
    const plain = archive('acme-plain.tar.zst');
    expect(cli('tenants', 'backup', 'acme', '--to', plain).status).toBe(0);
    sh(`age -r '${recipient.bob}' -o '${plain}.age' '${plain}'`);
    const ours = cli('tenants', 'restore', '--from', `${plain}.age`, '--as', 'acme-c', '--identity', keys.bob);
    expect(ours.stderr).toBe('');
    expect(ours.status).toBe(0);
    expect(tree('acme-c')).toEqual(tree('acme'));

    const foreign = archive('foreign.tar.zst.age');
    sh(`tar -C '${base}/..' -c --exclude=pty tenants/acme | zstd -q | age -r '${recipient.bob}' > '${foreign}'`);
    const handmade = cli('tenants', 'restore', '--from', foreign, '--as', 'acme-d', '--identity', keys.bob);
    expect(handmade.status).toBe(0);
    expect(handmade.stdout).toMatch(/NOT verified per file/);
  });

  it('refuses an encrypted archive without an identity, with the hint (exit 2)', () => {
    const result = cli('tenants', 'restore', '--from', archive('acme.tar.zst.age'), '--as', 'acme-e');
    expect(result.status).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/is encrypted with age .*--identity KEY_FILE .*--identity-secret NAME.*--pipe "age -d -i KEY_FILE"/);
  });

  it('keeps the VERSION of a local encrypted archive once it is verified (the mark replaced the backup\'s record, and the column showed -), table and --json', () => {
    const folder = path.join(dir.path, 'versioned');
    const file = path.join(folder, 'acme.tar.zst.age');
    expect(cli('tenants', 'backup', 'acme', '--to', file, '--encrypt-to', recipient.alice).status).toBe(0);
    const versions = () => {
      const table = cli('tenants', 'backups', 'acme', '--in', folder);
      expect(table.status).toBe(0);
      const row = table.stdout.split('\n').find((line) => line.endsWith(file))!;
      const json = cli('--json', 'tenants', 'backups', 'acme', '--in', folder);
      const [listed] = JSON.parse(json.stdout).backups as { toolVersion?: string; verifiedAt?: string }[];
      return { column: row.split(/\s{2,}/)[2], toolVersion: listed!.toolVersion, verified: listed!.verifiedAt !== undefined };
    };
    const version = JSON.parse(readFileSync(path.join(process.cwd(), 'package.json'), 'utf8')).version as string;
    expect(versions()).toEqual({ column: version, toolVersion: version, verified: false });
    const verified = cli('tenants', 'verify', '--from', file, '--identity', keys.alice);
    expect(verified.status).toBe(0);
    expect(verified.stdout).toMatch(/recorded as verified beside the archive/);
    expect(versions()).toEqual({ column: version, toolVersion: version, verified: true });
  });

  it('refuses an ASCII-armored age file (age -a) with the --pipe hint (exit 2), not as damaged; through --pipe "age -d" it restores', () => {
    const armored = archive('acme.tar.zst.age.asc');
    sh(`age -a -r '${recipient.bob}' -o '${armored}' '${archive('acme-plain.tar.zst')}'`);
    for (const args of [
      ['tenants', 'restore', '--from', armored, '--as', 'acme-g', '--identity', keys.bob],
      ['tenants', 'restore', '--from', armored, '--as', 'acme-g'],
      ['tenants', 'verify', '--from', armored, '--identity', keys.bob],
    ]) {
      const result = cli(...args);
      expect(result.status).toBe(2);
      expect(result.stderr).toBe(`openclaw: ${armored} is an ASCII-armored age file (age -a), which is not read directly: decrypt it with --pipe "age -d -i KEY_FILE", or store it unarmored (age without -a)\n`);
    }
    const piped = cli('tenants', 'restore', '--from', armored, '--as', 'acme-g', '--pipe', `age -d -i '${keys.bob}'`);
    expect(piped.status).toBe(0);
    expect(tree('acme-g')).toEqual(tree('acme'));
  });

  it('reads the identity from a pipe (a shell\'s <(pass show KEY), or standard input: - or /dev/stdin), as age -i does: the key need not be on disk', () => {
    const openclaw = `'${process.execPath}' '${cliPath}' --tenants-dir '${base}'`;
    const encrypted = `'${archive('acme-plain.tar.zst')}.age'`;
    const substituted = sh(`${openclaw} tenants verify --from ${encrypted} --identity <(cat '${keys.bob}') --no-record`);
    expect(substituted.toString()).toMatch(/^Intact: /);
    for (const stdin of ['/dev/stdin', '-']) {
      const piped = sh(`cat '${keys.bob}' | ${openclaw} tenants verify --from ${encrypted} --identity ${stdin} --no-record`);
      expect(piped.toString()).toMatch(/^Intact: /);
    }
    // Standard input that holds no identity is named so, not as a file called "-".
    const wrong = spawnSync('bash', ['-c', `echo age1notakey | ${openclaw} tenants verify --from ${encrypted} --identity - --no-record`], { encoding: 'utf8' });
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toBe('openclaw: identity file "-" (standard input), line 1 is a recipient (public key, age1…), not an identity (AGE-SECRET-KEY-1…)\n');
  });

  it('reads the identity from standard input that is a socket (a Node or Python parent\'s pipe), which no path opens', () => {
    const encrypted = `${archive('acme-plain.tar.zst')}.age`;
    for (const stdin of ['-', '/dev/stdin', '/dev/fd/0']) {
      // spawnSync's input reaches the child through a socket pair, as spawn's stdio 'pipe' does.
      const result = spawnSync(process.execPath, [cliPath, '--tenants-dir', base, 'tenants', 'verify', '--from', encrypted, '--identity', stdin, '--no-record'], { input: readFileSync(keys.bob), encoding: 'utf8' });
      expect(result.stderr).toBe('');
      expect(result.stdout).toMatch(/^Intact: /);
    }
  });

  it('names /dev/tty outside a terminal (cron, setsid) as no device, not as a socket', () => {
    const result = spawnSync('setsid', ['-w', process.execPath, cliPath, '--tenants-dir', base, 'tenants', 'verify', '--from', `${archive('acme-plain.tar.zst')}.age`, '--identity', '/dev/tty', '--no-record'], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    expect(result.status).toBe(2);
    expect(result.stderr).toBe('openclaw: identity file "/dev/tty" is a device that is not there (/dev/tty outside a terminal, as under cron or setsid): give a file or a pipe\n');
  });

  it('refuses /dev/ptmx in one line: each open makes a new terminal no one types into (it waited for good)', () => {
    for (const ptmx of ['/dev/ptmx', '/dev/pts/ptmx']) {
      const result = spawnSync(process.execPath, [cliPath, '--tenants-dir', base, 'tenants', 'verify', '--from', `${archive('acme-plain.tar.zst')}.age`, '--identity', ptmx, '--no-record'], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 60_000 });
      expect([result.status, result.stderr]).toEqual([
        2,
        `openclaw: identity file "${ptmx}" is the pseudo-terminal multiplexer: it opens a new terminal no one types into (it waited for good): give a file, a pipe or /dev/tty\n`,
      ]);
    }
  });

  it('restores a plain archive with an identity given, saying it was not needed', () => {
    const result = cli('tenants', 'restore', '--from', archive('acme-plain.tar.zst'), '--as', 'acme-f', '--identity', keys.alice);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/note: the archive is not encrypted: the identity given was not needed/);
  });

  describe('refused with exit 3, one line, the slot untouched', () => {
    const before = () => tree('acme');
    const refused = (file: string, key: string, pattern: RegExp) => {
      const snapshot = before();
      // --force onto the live tenant: a refusal must leave it exactly as it was.
      const result = cli('tenants', 'restore', '--from', file, '--force', '--identity', key);
      expect(result.stdout).toBe('');
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(pattern);
      expect(result.status).toBe(3);
      expect(tree('acme')).toEqual(snapshot);
      expect(sh(`ls -A '${base}'`).toString()).not.toMatch(/staging|aside/);
    };

    it('the wrong key', () => {
      refused(archive('acme.tar.zst.age'), keys.eve, /wrong key: the identity given cannot decrypt this file/);
    });

    it('a truncated file (cut mid-payload, and cut at a chunk boundary)', () => {
      const whole = readFileSync(archive('acme.tar.zst.age'));
      const cut = archive('cut.tar.zst.age');
      writeFileSync(cut, whole.subarray(0, Math.floor(whole.length * 0.7)));
      refused(cut, keys.alice, /damaged age file: .*(truncated|failed authentication)/);
      const header = whole.indexOf('\n---') + 1;
      const payloadStart = whole.indexOf('\n', header) + 1 + 16;
      writeFileSync(cut, whole.subarray(0, payloadStart + (64 * 1024 + 16)));
      refused(cut, keys.alice, /damaged age file: the final chunk is missing \(truncated file\)/);
    });

    it('a tampered byte (payload, and header)', () => {
      const whole = Buffer.from(readFileSync(archive('acme.tar.zst.age')));
      const tampered = archive('tampered.tar.zst.age');
      const payload = Buffer.from(whole);
      payload[Math.floor(payload.length / 2)]! ^= 0x01;
      writeFileSync(tampered, payload);
      refused(tampered, keys.alice, /damaged age file: .*failed authentication/);
      // The `age` CLI agrees the file is damaged.
      expect(() => sh(`age -d -i '${keys.alice}' '${tampered}' > /dev/null`)).toThrow();
      const header = Buffer.from(whole);
      const mac = header.indexOf('\n--- ') + 6;
      header[mac] = header[mac] === 0x41 ? 0x42 : 0x41;
      writeFileSync(tampered, header);
      refused(tampered, keys.alice, /damaged age file: the header MAC does not match/);
    });

    it('a passphrase (age -p) or SSH-key (age -R id_ed25519.pub) file, or a header past the limits: not read here, with the way through --pipe "age -d"', () => {
      // Headers as age writes them (the payload does not matter: the file is refused at its header).
      const b64 = (bytes: number) => randomBytes(bytes).toString('base64').replace(/=+$/, '');
      const file = archive('other-recipients.tar.zst.age');
      const withStanza = (stanza: string) => writeFileSync(file, Buffer.concat([Buffer.from(`age-encryption.org/v1\n${stanza}\n${b64(32)}\n--- ${b64(32)}\n`), randomBytes(1000)]));
      withStanza(`-> scrypt ${b64(16)} 18`);
      refused(file, keys.alice, /encrypted with a passphrase \(scrypt\), which is not supported; .*; to restore this one, decrypt it with --pipe "age -d"/);
      withStanza(`-> ssh-ed25519 ${b64(4)} ${b64(32)}`);
      refused(file, keys.alice, /wrong key: .*encrypted to 1 recipient: ssh-ed25519\); only X25519 identities .* decrypt it with --pipe "age -d -i KEY_FILE"/);
      // A header past the safety limits (here 4,097 stanzas of another type), which age reads.
      writeFileSync(file, Buffer.concat([Buffer.from(`age-encryption.org/v1\n${'-> grease\n\n'.repeat(4097)}`), randomBytes(1000)]));
      refused(file, keys.alice, /more than 4096 recipient stanzas \(limit\); age reads it: decrypt it with --pipe "age -d -i KEY_FILE"/);
      // A file with an X25519 recipient is only the wrong key: no hint.
      withStanza(`-> X25519 ${b64(32)}`);
      refused(file, keys.alice, /wrong key: the identity given cannot decrypt this file \(it is encrypted to 1 recipient: X25519\)$/m);
    });

    it('an age file with CRLF line ends, or of another version: said as such, not "not a zstd stream"', () => {
      const whole = readFileSync(archive('acme.tar.zst.age'));
      const converted = archive('converted.tar.zst.age');
      writeFileSync(converted, Buffer.concat([Buffer.from(whole.toString('latin1', 0, whole.indexOf('\n---')).replaceAll('\n', '\r\n'), 'latin1'), whole.subarray(whole.indexOf('\n---'))]));
      refused(converted, keys.alice, /damaged age header: it has CRLF line ends/);
      expect(() => sh(`age -d -i '${keys.alice}' '${converted}' > /dev/null`)).toThrow();
      writeFileSync(converted, Buffer.concat([Buffer.from('age-encryption.org/v2\n'), whole.subarray(whole.indexOf('\n') + 1)]));
      refused(converted, keys.alice, /unsupported age format version "v2"/);
    });
  });
});

describe('encrypted archives in S3 (s3rver)', () => {
  let server: S3TestServer;
  const storage = () => ['--endpoint', server.endpoint, '--access-key', S3RVER_ACCESS_KEY, '--secret-key', 'test-secret-key'];

  beforeAll(async () => {
    server = await startS3Server({ bucket: 'backups' });
  });
  afterAll(async () => {
    await server?.dispose();
  });

  it('backs up encrypted to S3, the AWS CLI and age read it back, and it restores', async () => {
    const url = 's3://backups/acme/2026-06-03.tar.zst.age';
    const backup = await runMain(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', url, '--encrypt-to', recipient.alice, ...storage()]);
    expect(backup.stderr).toBe('');
    expect(backup.status).toBe(0);
    const downloaded = archive('downloaded.tar.zst.age');
    await run('/usr/bin/aws', ['s3', 'cp', '--endpoint-url', server.endpoint, url, downloaded], {
      env: { ...process.env, AWS_ACCESS_KEY_ID: S3RVER_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: 'test-secret-key', AWS_DEFAULT_REGION: 'us-east-1' },
    });
    expect(sh(`age -d -i '${keys.alice}' '${downloaded}' | zstd -dq | tar -t`).toString()).toMatch(/tenants\/acme\/\.openclaw-backup-manifest\.json/);

    const restore = await runMain(['--tenants-dir', base, 'tenants', 'restore', '--from', url, '--as', 'acme-s3', '--identity', keys.alice, ...storage()]);
    expect(restore.stderr).toBe('');
    expect(restore.status).toBe(0);
    expect(tree('acme-s3')).toEqual(tree('acme'));
    const wrong = await runMain(['--tenants-dir', base, 'tenants', 'restore', '--from', url, '--as', 'acme-s3w', '--identity', keys.bob, ...storage()]);
    expect(wrong.status).toBe(3);
    expect(wrong.stderr).toMatch(/^openclaw: wrong key/);
    expect(() => tree('acme-s3w')).toThrow();
  });

  it('keeps the VERSION of an encrypted S3 archive once it is verified (metadata, not the tag), table and --json', async () => {
    const url = 's3://backups/versioned/acme.tar.zst.age';
    expect((await runMain(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', url, '--encrypt-to', recipient.alice, ...storage()])).status).toBe(0);
    const verified = await runMain(['--tenants-dir', base, 'tenants', 'verify', '--from', url, '--identity', keys.alice, ...storage()]);
    expect(verified.status).toBe(0);
    expect(verified.stdout).toMatch(/recorded as verified/);
    const version = JSON.parse(readFileSync(path.join(process.cwd(), 'package.json'), 'utf8')).version as string;
    const json = await runMain(['--tenants-dir', base, '--json', 'tenants', 'backups', 'acme', '--in', 's3://backups/versioned/', ...storage()]);
    const [listed] = JSON.parse(json.stdout).backups as { toolVersion?: string; verifiedAt?: string }[];
    expect(listed).toMatchObject({ toolVersion: version, verifiedAt: expect.any(String) });
    const table = await runMain(['--tenants-dir', base, 'tenants', 'backups', 'acme', '--in', 's3://backups/versioned/', ...storage()]);
    expect(table.stdout.split('\n').find((line) => line.endsWith(url))!.split(/\s{2,}/)[2]).toBe(version);
  });
});
