// The restore function's entry check reads an encrypted archive's footer up front
// (read-archive.ts encryptedArchiveFooter) with the age header taken from the stored bytes'
// start. Real `age` output for many recipients (an operator's team, a recipients file of
// hundreds of keys) has a header longer than 64 KiB: its count must be read all the same.

import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { generateIdentity } from '../shared/age/keys.js';
import { ArchiveLimitError } from '../shared/errors.js';
import { restoreTenant } from '../shared/restore/restore.js';
import { createS3Client } from '../shared/storage/s3-client.js';
import { S3Location } from '../shared/storage/s3.js';
import { backupAt, makeTenants } from './helpers/backups.js';
import { startS3Server, type S3TestServer } from './helpers/s3-server.js';
import { tempDir } from './helpers/tree.js';

const hasAge = existsSync('/usr/bin/age');
const dir = tempDir('openclaw-enc-header-');
const tenantsDir = path.join(dir.path, 'tenants');
let server: S3TestServer;

beforeAll(async () => {
  makeTenants(tenantsDir, ['acme']);
  server = await startS3Server();
});
afterAll(async () => {
  await server?.dispose();
  dir.cleanup();
});

describe.runIf(hasAge)("an encrypted archive's entry count, read up front, whatever its age header's length", () => {
  it.each([
    ['a few recipients', 3],
    ['3,000 recipients (a header of ~290 KiB, past the 64 KiB read ahead)', 3000],
  ])('refuses an archive for %s by its footer before anything is extracted', async (_name, recipients) => {
    const identity = generateIdentity();
    const others = Array.from({ length: recipients - 1 }, () => generateIdentity().recipient.text);
    // Ours last: the file key is unwrapped after every other stanza was tried.
    const recipientsFile = path.join(dir.path, `recipients-${recipients}.txt`);
    writeFileSync(recipientsFile, `${[...others, identity.recipient.text].join('\n')}\n`);
    const key = `enc-header/acme-${recipients}.tar.zst.age`;
    await backupAt(tenantsDir, 'acme', `s3://${server.bucket}/${key}`, new Date('2026-02-02T03:00:00Z'), server, `age -R ${recipientsFile}`);
    const client = await createS3Client(server.clientOptions);
    try {
      const location = new S3Location({ client, bucket: server.bucket, key, endpoint: server.endpoint });
      const refused = restoreTenant({ tenantsDir, location, as: `acme-${recipients}`, identities: [identity], maxArchiveEntries: () => ({ entries: 1, reason: 'stand in for the time left' }) });
      await expect(refused).rejects.toThrow(ArchiveLimitError);
      await expect(refused).rejects.toThrow(/holds [\d,]+ entries to restore \(its footer says\), more than the 1 stand in for the time left$/);
      expect(existsSync(path.join(tenantsDir, `acme-${recipients}`))).toBe(false);
    } finally {
      client.destroy();
    }
  });

  it('refuses an armored one (age -a) before anything is extracted, with the hint to read it through the age CLI, the identity never named', async () => {
    const identity = generateIdentity();
    const key = 'enc-header/acme-armored.tar.zst.age';
    await backupAt(tenantsDir, 'acme', `s3://${server.bucket}/${key}`, new Date('2026-02-02T03:00:00Z'), server, `age -a -r ${identity.recipient.text}`);
    const client = await createS3Client(server.clientOptions);
    try {
      const location = new S3Location({ client, bucket: server.bucket, key, endpoint: server.endpoint });
      const refused = restoreTenant({ tenantsDir, location, as: 'acme-armored', identities: [identity], maxArchiveEntries: () => ({ entries: 1_000_000, reason: 'stand in for the time left' }) });
      await expect(refused).rejects.toThrow(/is an ASCII-armored age file \(age -a\), which is not read directly/);
      await expect(refused).rejects.not.toThrow(/AGE-SECRET-KEY/);
      expect(existsSync(path.join(tenantsDir, 'acme-armored'))).toBe(false);
    } finally {
      client.destroy();
    }
  });
});
