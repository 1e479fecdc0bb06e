// Archives written by earlier versions keep restoring. The fixture is a real backup made by
// the version before manifest format 2 (commit a6488d4), whose manifest lists every entry.

import { readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

import { describeTree, runCli, tempDir } from './helpers/tree.js';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'acme-manifest-v1.tar.zst');

describe('archives of earlier versions', () => {
  const dir = tempDir();
  afterAll(() => dir.cleanup());

  it('restores and verifies a backup whose manifest is format version 1', () => {
    const restore = runCli(['--tenants-dir', dir.path, '--json', 'tenants', 'restore', '--from', fixture]);
    expect(restore.stderr).toBe('');
    expect(restore.status).toBe(0);
    expect(JSON.parse(restore.stdout)).toMatchObject({ tenant: 'acme', verified: true, files: 4, symlinks: 1 });

    const tenant = path.join(dir.path, 'acme');
    expect(Object.keys(describeTree(tenant)).sort()).toEqual(
      ['', 'config.json', 'empty', 'latest', 'memory', 'memory/blob.txt', 'notes', 'notes/a.md', 'notes/sub', 'notes/sub/b.md'],
    );
    expect(readFileSync(path.join(tenant, 'notes', 'sub', 'b.md'), 'utf8')).toBe('nested\n');
    expect(readFileSync(path.join(tenant, 'memory', 'blob.txt'), 'utf8')).toBe('x'.repeat(3000));
    expect(readlinkSync(path.join(tenant, 'latest'))).toBe('notes/a.md');
  });
});
