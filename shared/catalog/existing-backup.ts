// `tenants backup --all --skip-existing`: what is already at a tenant's destination. An
// archive that is a complete backup of that tenant by what it says of itself, as `tenants
// backups` tells it (our marker naming the tenant and a footer naming it at its end; or, for
// bytes that cannot show it, an encrypted S3 object, the size its backup recorded as it
// completed it, or a verification), counts as done. Anything else there (cut short, another
// tenant's, another tool's) is refused as an existing archive always is: never replaced
// without --overwrite. A half-written backup is not at the destination: a local one is a
// hidden temporary beside it, an S3 one an unfinished multipart upload. Nor is a backup of the
// tenant done that this run would not have written: plain where it encrypts (--encrypt-to), or
// encrypted where it writes plain archives (neither said through --pipe, whose bytes are its own).

import { basename, dirname, isAbsolute, relative, resolve, sep } from 'node:path';

import { DestinationExistsError } from '../errors.js';
import { quotedPath } from '../format.js';
import type { ArchiveStore } from '../storage/archive-store.js';
import { removeDeadPartials } from '../storage/local.js';
import { openStore, type StoreOptions } from '../storage/open-store.js';
import { isS3Url, parseS3Url } from '../storage/s3-url.js';
import { fixedDirectoryOf } from '../schedule/destination-template.js';
import { wholeBackupOf, type BackupEntry } from './backups.js';

/** Finds a tenant's complete backup at `to`: undefined when nothing is there; DestinationExistsError when something else is. */
export type ExistingBackupFinder = (tenant: string, to: string, signal?: AbortSignal) => Promise<BackupEntry | undefined>;

/** What a run writes: archives encrypted to --encrypt-to, plain ones, or whatever its --pipe command makes of them. */
export type RunWrites = 'encrypted' | 'plain' | 'piped';

/**
 * A finder for the destinations of one run: an S3 bucket's store (and client) is opened once, for
 * all its tenants. A local archive is looked up in the directory the run's --to `template` names
 * before its first placeholder, as `tenants backups --in` that directory judges it: whose archives
 * count is the owner of that directory, not of a `{tenant}` directory below it, which anyone may
 * have made where all may write (verified-mark.ts archiveNotTrusted).
 */
export function existingBackupFinder(flags: StoreOptions, writes: RunWrites, template?: string): ExistingBackupFinder {
  const storage = readingFlags(flags);
  const stores = new Map<string, Promise<ArchiveStore>>();
  const storeOf = (spec: string) => {
    let store = stores.get(spec);
    if (store === undefined) stores.set(spec, (store = openStore(spec, storage)));
    return store;
  };
  return async (tenant, to, signal) => {
    const { spec, name } = whereIs(to, template);
    const judged = await judgeBackup(await storeOf(spec), name, tenant, writes, signal);
    if (judged === undefined) return undefined;
    const { entry } = judged;
    if (judged.problem !== undefined) {
      throw new DestinationExistsError(`${entry.location} already exists and is not a complete backup of tenant ${quotedPath(tenant)} (${judged.problem}): not skipped; pass --overwrite to replace it`);
    }
    if (judged.unlike !== undefined) {
      throw new DestinationExistsError(`${entry.location} already holds a complete backup of tenant ${quotedPath(tenant)}, but ${judged.unlike}: not skipped; pass --overwrite to replace it`);
    }
    // A run killed after it linked this archive in (before removing its temporary name) left
    // that name, the archive's second: a backup into this directory would remove it, this run
    // writes none here, and a later prune of the archive would free nothing while it stays.
    if (!isS3Url(to)) await removeDeadPartials(dirname(to));
    return entry;
  };
}

/** An archive judged as a backup of a tenant one run writes: `problem`, why it is no complete backup of the tenant; `unlike`, how it is not what the run writes. */
export interface JudgedBackup {
  readonly entry: BackupEntry;
  readonly problem?: string;
  readonly unlike?: string;
}

/**
 * What is at `to` (one archive's location, a local path or S3 URL), judged as `tenants backups`
 * judges it (wholeBackupOf) and against what a run that `writes` so would have written:
 * undefined when nothing is there. For a backup function's later attempt that finds the
 * archive its run stored: its success is said only for a complete backup (backup-operations.ts
 * storedByRun), never for bytes cut short or replaced under the run's metadata.
 */
export async function backupAt(to: string, tenant: string, flags: StoreOptions, writes: RunWrites, signal?: AbortSignal): Promise<JudgedBackup | undefined> {
  const { spec, name } = whereIs(to, undefined);
  return judgeBackup(await openStore(spec, readingFlags(flags)), name, tenant, writes, signal);
}

async function judgeBackup(store: ArchiveStore, name: string, tenant: string, writes: RunWrites, signal: AbortSignal | undefined): Promise<JudgedBackup | undefined> {
  const object = await store.objectAt(name, signal === undefined ? {} : { signal });
  if (object === undefined) return undefined;
  const facts = await store.inspect(object, signal === undefined ? {} : { signal });
  const { entry, problem } = wholeBackupOf(object, facts, tenant);
  if (problem !== undefined) return { entry, problem };
  const unlike = notAsThisRunWrites(entry.content, writes);
  return { entry, ...(unlike !== undefined && { unlike }) };
}

/** The flags that reach a store: how a backup's objects are written (--sse…) and --pipe are not about reading them. */
function readingFlags(flags: StoreOptions): StoreOptions {
  const { awsProfile, region, endpoint, accessKey, secretKey, stallTimeoutMs } = flags;
  return {
    ...(awsProfile !== undefined && { awsProfile }),
    ...(region !== undefined && { region }),
    ...(endpoint !== undefined && { endpoint }),
    ...(accessKey !== undefined && { accessKey }),
    ...(secretKey !== undefined && { secretKey }),
    ...(stallTimeoutMs !== undefined && { stallTimeoutMs }),
  };
}

/** How a complete backup differs from the one this run would write, by what its bytes show (an archived object's show nothing). */
function notAsThisRunWrites(content: BackupEntry['content'], writes: RunWrites): string | undefined {
  if (writes === 'encrypted' && content === 'archive') return 'not encrypted, while this run encrypts (--encrypt-to)';
  if (writes === 'plain' && content === 'encrypted') return 'encrypted, while this run writes plain archives (no --encrypt-to)';
  return undefined;
}

/**
 * The store an archive's location lies in, and its name there: an S3 bucket and its key; a local
 * directory (the template's fixed one: before, the archive's own, and in root's 1777 backup
 * directory another user's `newt/` holding their own archive of a tenant they named newt made
 * root's `backup --all --skip-existing --to DIR/{tenant}/{date}.tar.zst` skip newt, never backed
 * up, while `tenants backups --in DIR` called that archive another user's) and its path below it.
 */
function whereIs(to: string, template: string | undefined): { spec: string; name: string } {
  if (isS3Url(to)) {
    const { bucket, key } = parseS3Url(to);
    return { spec: `s3://${bucket}/`, name: key };
  }
  if (template !== undefined && !isS3Url(template)) {
    const root = resolve(fixedDirectoryOf(template));
    const below = relative(root, resolve(to));
    if (below !== '' && !isAbsolute(below) && below !== '..' && !below.startsWith(`..${sep}`)) return { spec: root, name: below };
  }
  return { spec: dirname(to), name: basename(to) };
}
