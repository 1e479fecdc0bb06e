// What each function's bundle carries, from esbuild's metafile (the inputs it has code of),
// not its byte size: a function carries the operations its handler runs and the AWS SDK
// clients it calls, nothing else. The list function lists the tenants on the volume and calls
// no AWS service: its bundle carried the whole operation executor (shared/operations.ts: the
// archive writer and reader, extraction, prune, the S3 client; 1,146 KiB minified against 152).
// The prune function ran S3 alone but carried backup and restore (1,169 → 784 KiB); the backup
// function carried extraction, the restore function the archive writer and SQLite snapshots.

import { describe, expect, it } from 'vitest';

import { bundledInputs } from './helpers/function-bundle.js';

/** The AWS SDK clients a bundle carries (`@aws-sdk/client-…`), sorted. */
const sdkClients = (inputs: readonly string[]) => [...new Set(inputs.map((file) => /^@aws-sdk\/(client-[a-z0-9-]+)\//.exec(file)?.[1]).filter((name) => name !== undefined))].sort();

/** Every operation of the CLI's executor, and each function's side of it. */
const EXECUTOR = 'shared/operations.ts';
const BACKUP_SIDE = ['shared/backup-operations.ts', 'shared/backup/backup.ts', 'shared/backup/backup-all.ts', 'shared/archive/archive-writer.ts', 'shared/backup/sqlite-snapshot.ts', 'functions/backup-handler.ts', 'functions/queue-handler.ts'];
const RESTORE_SIDE = ['shared/restore-operations.ts', 'shared/restore/restore.ts', 'shared/restore/extract.ts', 'shared/restore/read-archive.ts', 'shared/restore/verify.ts', 'shared/archive/zstd-decoder.ts'];
const PRUNE = ['shared/catalog/prune.ts', 'shared/catalog/prune-command.ts'];
const S3 = ['shared/storage/s3.ts', 'shared/storage/s3-store.ts', 'shared/storage/s3-client.ts', 'shared/storage/open-location.ts', 'shared/storage/open-store.ts'];

const carried = (inputs: readonly string[], files: readonly string[]) => files.filter((file) => inputs.includes(file));

describe("each function's bundle carries what its handler reaches", () => {
  it('the list function: the listing of the tenants, no archive code, no S3 and no AWS SDK', async () => {
    const inputs = await bundledInputs('list');
    expect(carried(inputs, [EXECUTOR, ...BACKUP_SIDE, ...RESTORE_SIDE, ...PRUNE, ...S3])).toEqual([]);
    expect(inputs.filter((file) => file.startsWith('@aws-sdk/') || file.startsWith('@smithy/'))).toEqual([]);
    expect(inputs).toContain('shared/tenant/tenants.ts');
  }, 60_000);

  it('the prune function: prune on S3 and its completion events, no backup or restore', async () => {
    const inputs = await bundledInputs('prune');
    expect(carried(inputs, [EXECUTOR, ...BACKUP_SIDE, ...RESTORE_SIDE, 'shared/backup/tenant-walk.ts'])).toEqual([]);
    expect(sdkClients(inputs)).toEqual(['client-eventbridge', 'client-s3']);
    expect(inputs).toContain('shared/catalog/prune.ts');
  }, 60_000);

  it('the backup function: backups and their pieces, no extraction, verify or prune', async () => {
    const inputs = await bundledInputs('backup');
    expect(carried(inputs, [EXECUTOR, ...RESTORE_SIDE, ...PRUNE])).toEqual([]);
    expect(inputs).toContain('shared/backup/backup.ts');
    expect(sdkClients(inputs)).toEqual(['client-eventbridge', 'client-s3', 'client-sqs']);
  }, 60_000);

  it('the restore function: restores, their pieces, verify and listings of backups, no archive writer, SQLite snapshot or prune', async () => {
    const inputs = await bundledInputs('restore');
    expect(carried(inputs, [EXECUTOR, ...BACKUP_SIDE, ...PRUNE])).toEqual([]);
    expect(inputs).toContain('shared/restore/extract.ts');
    expect(sdkClients(inputs)).toEqual(['client-eventbridge', 'client-s3', 'client-secrets-manager', 'client-sqs']);
  }, 60_000);

  it('the fan-out and the monitor: the list function invoked, no operation and no S3', async () => {
    for (const [name, clients] of [
      ['fanout', ['client-lambda', 'client-sqs']],
      ['monitor', ['client-dynamodb', 'client-lambda']],
    ] as const) {
      const inputs = await bundledInputs(name);
      expect(carried(inputs, [EXECUTOR, ...BACKUP_SIDE, ...RESTORE_SIDE, ...PRUNE, ...S3, 'shared/tenant/tenants.ts']), name).toEqual([]);
      expect(sdkClients(inputs), name).toEqual(clients);
    }
  }, 60_000);
});
