// Who owns the tenant tree. For a restore: whom the restored tree is given to (inheritedOwner,
// parseOwner for --owner). For `doctor`, as the list function sees it through the access point: the
// owner (uid:gid) of the tenant base dir, of each tenant's root, and how many entries below
// belong to someone else. `openclaw doctor` compares that with the access point's POSIX
// user, which every function acts as: a tree the gateway wrote as another user is one the
// backups may not read and that restores would hand back owned by the access point's user.
//
// Read-only (lstat, readdir; no symlink is followed; `pty/` is skipped like in a backup)
// and bounded: it stops at `maxEntries` entries or when the deadline signal fires, and then
// says the scan is incomplete rather than taking the list function past its timeout.

import { promises as fs, type Dir } from 'node:fs';
import path from 'node:path';

import { decodeRawName, fsPath } from '../raw-name.js';
import { EPHEMERAL_DIR } from './names.js';

export interface Owner {
  readonly uid: number;
  readonly gid: number;
}

export interface TenantOwnership extends Owner {
  readonly name: string;
  /** Entries looked at, the tenant root included. */
  readonly entries: number;
  /** Of those, entries whose uid or gid is not the expected one. */
  readonly mismatched: number;
}

export interface OwnershipReport {
  /** The identity compared with: the request's, else the base dir's owner. */
  readonly expected: Owner;
  /** The tenant base dir (the access point's root) and its mode, e.g. "750". */
  readonly base: Owner & { readonly mode: string };
  readonly tenants: readonly TenantOwnership[];
  /** Mismatched entries in all tenants, the base dir included. */
  readonly mismatched: number;
  /** Up to MAX_SAMPLES mismatched paths, relative to the base dir, with their owner. */
  readonly samples: readonly (Owner & { readonly path: string })[];
  /** False when the scan stopped early (entry limit or deadline): counts are lower bounds. */
  readonly complete: boolean;
}

export interface OwnershipOptions {
  readonly expected?: Partial<Owner>;
  readonly signal?: AbortSignal;
  /** @default DEFAULT_MAX_ENTRIES */
  readonly maxEntries?: number;
}

/**
 * Whom a restore run as root gives the restored tree to (unless --owner says): the owner of
 * the tenant it replaces, else of the base dir, so the gateway's service user that owns them
 * can write its tenant afterwards. Read with lstat: a slot that is a symlink names nobody.
 */
export async function inheritedOwner(tenantsDir: string, tenant: string): Promise<Owner> {
  const slot = await fs.lstat(path.join(tenantsDir, tenant)).catch(() => undefined);
  const from = slot?.isDirectory() === true ? slot : await fs.stat(tenantsDir);
  return { uid: from.uid, gid: from.gid };
}

/** `UID:GID` (numbers, as `chown` takes them), or undefined when `text` is not that. */
export function parseOwner(text: string): Owner | undefined {
  const match = /^(\d{1,10}):(\d{1,10})$/.exec(text);
  if (match === null) return undefined;
  const [uid, gid] = [Number(match[1]), Number(match[2])];
  // 2^32 - 1 is (uid_t)-1, "leave unchanged" to chown(2): not an owner.
  return uid < 0xffffffff && gid < 0xffffffff ? { uid, gid } : undefined;
}

export const DEFAULT_MAX_ENTRIES = 500_000;
const MAX_SAMPLES = 5;
/** lstat calls in flight: EFS answers each in about a millisecond, many at once. */
const CONCURRENCY = 32;

export async function scanOwnership(tenantsDir: string, tenantNames: readonly string[], options: OwnershipOptions = {}): Promise<OwnershipReport> {
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const baseStat = await fs.lstat(tenantsDir);
  const expected: Owner = { uid: options.expected?.uid ?? baseStat.uid, gid: options.expected?.gid ?? baseStat.gid };
  const samples: (Owner & { path: string })[] = [];
  let seen = 0;
  let complete = true;
  const stop = () => {
    if (options.signal?.aborted === true || seen >= maxEntries) complete = false;
    return !complete;
  };
  const differs = (owner: Owner) => owner.uid !== expected.uid || owner.gid !== expected.gid;
  const note = (relative: string, owner: Owner) => {
    if (samples.length < MAX_SAMPLES) samples.push({ path: relative, uid: owner.uid, gid: owner.gid });
  };

  let mismatched = 0;
  if (differs(baseStat)) {
    mismatched += 1;
    note('.', baseStat);
  }
  const tenants: TenantOwnership[] = [];
  for (const name of tenantNames) {
    if (stop()) break;
    const root = path.join(tenantsDir, name);
    let rootStat;
    try {
      rootStat = await fs.lstat(root);
    } catch {
      continue; // gone since it was listed
    }
    let entries = 1;
    let tenantMismatched = 0;
    seen += 1;
    if (differs(rootStat)) {
      tenantMismatched += 1;
      note(name, rootStat);
    }
    const directories = [''];
    while (directories.length > 0 && !stop()) {
      const relative = directories.pop()!;
      const lstatBatch = async (batch: readonly string[]) => {
        const stats = await Promise.all(batch.map((entry) => fs.lstat(fsPath(path.join(root, relative, entry))).catch(() => undefined)));
        stats.forEach((stat, index) => {
          if (stat === undefined) return;
          const child = relative === '' ? batch[index]! : `${relative}/${batch[index]!}`;
          entries += 1;
          seen += 1;
          if (differs(stat)) {
            tenantMismatched += 1;
            note(`${name}/${child}`, stat);
          }
          if (stat.isDirectory()) directories.push(child);
        });
      };
      // Read a batch at a time: a directory of 500,000 names read whole (a Buffer and a string
      // each) took the list function to 331 MiB, past its 256 MiB.
      let dir: Dir;
      try {
        // As bytes: a name that is not UTF-8 is checked too (raw-name.ts), not lstat'ed as U+FFFD and missed.
        dir = await fs.opendir(fsPath(path.join(root, relative)), { encoding: 'buffer' as BufferEncoding, bufferSize: CONCURRENCY });
      } catch {
        continue; // unreadable or gone: the entry itself was already counted
      }
      try {
        let batch: string[] = [];
        for (;;) {
          const dirent = await dir.read();
          // Stopped only where another entry is left: one that looked at every entry is complete.
          if (dirent === null || stop()) break;
          const entry = decodeRawName(dirent.name as unknown as Buffer);
          if (relative === '' && entry === EPHEMERAL_DIR) continue;
          batch.push(entry);
          if (batch.length < CONCURRENCY) continue;
          await lstatBatch(batch);
          batch = [];
        }
        if (batch.length > 0 && !stop()) await lstatBatch(batch);
      } catch {
        // unreadable part-way: what was read is counted
      } finally {
        await dir.close().catch(() => undefined);
      }
    }
    mismatched += tenantMismatched;
    tenants.push({ name, uid: rootStat.uid, gid: rootStat.gid, entries, mismatched: tenantMismatched });
  }
  if (tenants.length < tenantNames.length) complete = false;
  return {
    expected,
    base: { uid: baseStat.uid, gid: baseStat.gid, mode: (baseStat.mode & 0o7777).toString(8) },
    tenants,
    mismatched,
    samples,
    complete,
  };
}
