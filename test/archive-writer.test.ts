// What the archive writer puts in tar headers, checked with GNU tar as the reader.

import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { backupTenant } from '../shared/backup/backup.js';
import { LocalFileLocation } from '../shared/storage/local.js';
import { sh, tempDir } from './helpers/tree.js';

const dir = tempDir();
afterAll(() => dir.cleanup());

describe('tar headers', () => {
  it('truncates modification times to whole seconds as GNU tar does, even in the last half millisecond of a second', async () => {
    const tenant = path.join(dir.path, 'tenants', 'acme');
    mkdirSync(tenant, { recursive: true });
    writeFileSync(path.join(tenant, 'late.txt'), 'x');
    // 0.9996 s past the second: Node's stat.mtime Date rounds this up to the next second.
    utimesSync(path.join(tenant, 'late.txt'), 1_700_000_000.9996, 1_700_000_000.9996);
    const archive = path.join(dir.path, 'acme.tar.zst');
    await backupTenant({ tenantsDir: path.join(dir.path, 'tenants'), tenant: 'acme', location: new LocalFileLocation(archive) });
    const listing = sh(`zstd -dc '${archive}' | TZ=UTC tar -tv --full-time -f - tenants/acme/late.txt`).toString();
    expect(listing).toContain('2023-11-14 22:13:20 tenants/acme/late.txt');
  });
});
