// Backups made for the tests of listing, verify and prune: sample tenants, archives with a
// chosen creation time (the backup's injected clock), the storage flags that reach s3rver,
// a byte flipped in the middle of a file, and a footer whose entry count is rewritten.

import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { createSampleTenant } from '../../scripts/sample-tenant.js';
import { backupTenant, type BackupResult } from '../../shared/backup/backup.js';
import { openLocation } from '../../shared/storage/open-location.js';
import type { S3TestServer } from './s3-server.js';

/** Small sample tenants (a few hundred KiB each), seeded by name. */
export function makeTenants(tenantsDir: string, names: readonly string[]): void {
  names.forEach((name, index) => createSampleTenant(path.join(tenantsDir, name), { sessions: 3, messagesPerSession: 10, memoryRows: 50, mediaFiles: 1, mediaBytes: 64 * 1024, notes: 5, seed: index + 1 }));
}

/** The storage flags of the CLI that reach `server` (s3rver takes any secret). */
export function s3Flags(server: S3TestServer): string[] {
  return ['--endpoint', server.endpoint, '--access-key', 'S3RVER', '--secret-key', 'test-secret-key', '--region', 'us-east-1'];
}

/** Backs up `tenant` to `to` (a path, or s3:// with `server`) as if it were `createdAt`. */
export async function backupAt(tenantsDir: string, tenant: string, to: string, createdAt: Date, server?: S3TestServer, pipe?: string): Promise<BackupResult> {
  const location = await openLocation(to, {
    ...(server !== undefined && { endpoint: server.endpoint, accessKey: 'S3RVER', secretKey: 'test-secret-key', region: 'us-east-1' }),
    ...(pipe !== undefined && { pipe }),
  });
  return backupTenant({ tenantsDir, tenant, location, now: () => createdAt });
}

/** Flips one byte at `fraction` of the file's length. */
export function flipByte(file: string, fraction = 0.5): void {
  const bytes = readFileSync(file);
  const at = Math.floor(bytes.length * fraction);
  bytes[at]! ^= 0x5a;
  writeFileSync(file, bytes);
}

export const DAY = 24 * 60 * 60 * 1000;

/** Writes `archive`'s bytes to `to` with its footer's entry count replaced by `entries` (its frame size kept right). */
export function writeWithFooterEntries(archive: string, to: string, entries: string): void {
  writeWithFooterEdited(archive, to, (payload) => payload.replace(/"entries":\d+/, `"entries":${entries}`));
}

/** Writes `archive`'s bytes to `to` with its footer's JSON rewritten by `edit` (its frame size kept right). */
export function writeWithFooterEdited(archive: string, to: string, edit: (payload: string) => string): void {
  const bytes = readFileSync(archive);
  const footerMagic = Buffer.alloc(4);
  footerMagic.writeUInt32LE(0x184d2a5d, 0);
  const footerAt = bytes.lastIndexOf(footerMagic);
  const payload = Buffer.from(edit(bytes.subarray(footerAt + 8).toString('utf8')));
  const header = Buffer.alloc(8);
  header.writeUInt32LE(0x184d2a5d, 0);
  header.writeUInt32LE(payload.length, 4);
  writeFileSync(to, Buffer.concat([bytes.subarray(0, footerAt), header, payload]));
}
