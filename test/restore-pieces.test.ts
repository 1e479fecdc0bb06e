// A restore in pieces (restore/restore-continuation.ts): each piece stops between two entries,
// the next reads the same archive again and replays what came before without writing; the
// chain owns the tenant between pieces; nothing but the last piece's commit touches the slot.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync, linkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { backupTenant } from '../shared/backup/backup.js';
import { newChainId } from '../shared/backup/continuation.js';
import { StorageError, TenantBusyError, FileSystemError } from '../shared/errors.js';
import { restoreTenant, restoreTenantPiece, type RestorePieces, type RestoreRequest } from '../shared/restore/restore.js';
import { loadRestoreCheckpoint, restoreCheckpointPathFor } from '../shared/restore/restore-continuation.js';
import { LocalFileLocation } from '../shared/storage/local.js';
import { PARALLEL_ACCESS } from '../shared/file-access.js';
import { recoverTenant } from '../shared/tenant/recover.js';
import { sweepBaseDir } from '../shared/tenant/base-dir-sweep.js';
import { createSampleTenant } from '../scripts/sample-tenant.js';
import { describeTree, tempDir } from './helpers/tree.js';

let dir: ReturnType<typeof tempDir>;
let base: string;
let archivePath: string;
let original: ReturnType<typeof describeTree>;

/** A new location object for the same file, as each invocation opens its own. */
const archive = () => new LocalFileLocation(archivePath);

beforeEach(async () => {
  dir = tempDir();
  base = path.join(dir.path, 'tenants');
  const acme = path.join(base, 'acme');
  createSampleTenant(acme, { sessions: 3, memoryRows: 20 });
  writeFileSync(path.join(acme, 'shared.txt'), 'one inode, two names\n');
  linkSync(path.join(acme, 'shared.txt'), path.join(acme, 'second-name.txt'));
  symlinkSync('config.json', path.join(acme, 'config-link'));
  mkdirSync(path.join(acme, 'locked', 'inner'), { recursive: true });
  writeFileSync(path.join(acme, 'locked', 'inner', 'secret'), 'x', { mode: 0o600 });
  chmodSync(path.join(acme, 'locked'), 0o555);
  original = describeTree(acme, { exclude: (relPath) => relPath === 'pty' });
  archivePath = path.join(dir.path, 'acme.tar.zst');
  await backupTenant({ tenantsDir: base, tenant: 'acme', location: archive() });
});
afterEach(() => {
  for (const root of [path.join(base, 'acme'), path.join(base, 'copy')]) {
    if (existsSync(path.join(root, 'locked'))) chmodSync(path.join(root, 'locked'), 0o755);
  }
  dir.cleanup();
});

/** One piece that stops as soon as it has written something. */
function piece(request: Partial<RestoreRequest>, pieces: RestorePieces) {
  return restoreTenantPiece({ tenantsDir: base, location: archive(), ...request, pieces });
}

/** Every piece until the chain ends; returns the last result and how many pieces ran. */
async function restoreInPieces(request: Partial<RestoreRequest>, chain = newChainId(), between?: (tenant: string) => Promise<void>) {
  let result = await piece(request, { chain, suspend: () => true });
  let pieces = 1;
  while ('suspended' in result) {
    await between?.(result.tenant);
    result = await piece({}, { chain, suspend: () => true, resume: { tenant: result.tenant } });
    pieces++;
  }
  return { result, pieces };
}

const hiddenNames = () => readdirSync(base).filter((name) => name.startsWith('.openclaw-'));

describe('a restore in pieces', () => {
  it('restores the tenant whole in many pieces: contents, modes, times, links', async () => {
    const { result, pieces } = await restoreInPieces({ as: 'copy' });
    expect(pieces).toBeGreaterThanOrEqual(3);
    expect(result).toMatchObject({ operation: 'restore', tenant: 'copy', verified: true, replaced: false });
    chmodSync(path.join(base, 'copy', 'locked'), 0o555);
    expect(describeTree(path.join(base, 'copy'))).toEqual(original);
    expect(statSync(path.join(base, 'copy', 'shared.txt')).ino).toBe(statSync(path.join(base, 'copy', 'second-name.txt')).ino);
    expect(lstatSync(path.join(base, 'copy', 'config-link')).isSymbolicLink()).toBe(true);
    expect(hiddenNames()).toEqual([]);
  });

  it('restores in pieces as the functions write on EFS (many calls in flight) and through writer threads', async () => {
    for (const [as, request] of [
      ['parallel', { fileAccess: PARALLEL_ACCESS }],
      ['threads', { workerThresholdBytes: 0 }],
    ] as const) {
      const { result, pieces } = await restoreInPieces({ as, ...request });
      expect(pieces).toBeGreaterThanOrEqual(3);
      expect(result).toMatchObject({ tenant: as, verified: true });
      chmodSync(path.join(base, as, 'locked'), 0o555);
      expect(describeTree(path.join(base, as))).toEqual(original);
      expect(statSync(path.join(base, as, 'shared.txt')).ino).toBe(statSync(path.join(base, as, 'second-name.txt')).ino);
      chmodSync(path.join(base, as, 'locked'), 0o755);
    }
    expect(hiddenNames()).toEqual([]);
  });

  it('asks a piece writing through the queue (EFS) to stop with the time its queued writes still need', async () => {
    // Behind EFS the queue's 4,096 files take a minute or more to write: a piece asked to stop
    // by the clock alone handed over past its deadline (measured with bench/restore-pieces.ts:
    // docs/scale.md). The count itself is checked there; here, that every ask carries it.
    const bulk = path.join(base, 'bulk');
    mkdirSync(bulk);
    for (let index = 0; index < 200; index++) writeFileSync(path.join(bulk, `f${index}`), randomBytes(4096));
    const bulkArchive = () => new LocalFileLocation(path.join(dir.path, 'bulk.tar.zst'));
    await backupTenant({ tenantsDir: base, tenant: 'bulk', location: bulkArchive() });
    const chain = newChainId();
    const told: unknown[] = [];
    const suspend = (backlogMs: number) => (told.push(backlogMs), told.length % 40 === 0);
    let result = await restoreTenantPiece({ tenantsDir: base, location: bulkArchive(), as: 'bulk-copy', fileAccess: PARALLEL_ACCESS, pieces: { chain, suspend } });
    let pieces = 1;
    while ('suspended' in result) {
      result = await restoreTenantPiece({ tenantsDir: base, location: bulkArchive(), fileAccess: PARALLEL_ACCESS, pieces: { chain, suspend, resume: { tenant: 'bulk-copy' } } });
      pieces++;
    }
    expect(pieces).toBeGreaterThanOrEqual(3);
    expect(told.filter((ms) => typeof ms !== 'number' || !(ms >= 0))).toEqual([]);
    expect(result).toMatchObject({ tenant: 'bulk-copy', verified: true });
    expect(describeTree(path.join(base, 'bulk-copy'))).toEqual(describeTree(bulk));
  });

  it('saves a 0600 checkpoint between pieces and counts what the pieces wrote', async () => {
    const chain = newChainId();
    const first = await piece({ as: 'copy' }, { chain, suspend: () => true });
    expect(first).toMatchObject({ suspended: true, tenant: 'copy', chain, pieces: 1 });
    const file = restoreCheckpointPathFor(base, 'copy');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const saved = await loadRestoreCheckpoint(base, 'copy');
    expect(saved).toMatchObject({ chain, tenant: 'copy', writing: false, pieces: 1, written: (first as { written: number }).written });
    expect(existsSync(path.join(base, 'copy'))).toBe(false);
    const second = await piece({}, { chain, suspend: () => true, resume: { tenant: 'copy' } });
    expect((second as { written: number }).written).toBeGreaterThan((first as { written: number }).written);
  });

  it('runs as one piece when it is never asked to stop', async () => {
    const { result, pieces } = await restoreInPieces({ as: 'copy' }, newChainId());
    expect(pieces).toBeGreaterThan(1);
    const whole = await restoreTenantPiece({ tenantsDir: base, location: archive(), as: 'other', pieces: { chain: newChainId(), suspend: () => false } });
    expect(whole).toMatchObject({ tenant: 'other', verified: true });
    expect(result).toMatchObject({ tenant: 'copy' });
    expect(hiddenNames()).toEqual([]);
  });

  it('keeps the old tenant of a --force restore in the slot until the last piece commits', async () => {
    const acme = path.join(base, 'acme');
    writeFileSync(path.join(acme, 'config.json'), 'changed after the backup');
    let checked = 0;
    const { result } = await restoreInPieces({ force: true }, newChainId(), async () => {
      checked++;
      expect(statSync(path.join(acme, 'config.json')).size).toBe('changed after the backup'.length);
    });
    expect(checked).toBeGreaterThanOrEqual(2);
    expect(result).toMatchObject({ tenant: 'acme', replaced: true });
    chmodSync(path.join(acme, 'locked'), 0o555);
    expect(describeTree(acme)).toEqual(original);
    expect(hiddenNames()).toEqual([]);
  });

  it('owns the tenant between pieces: a backup or another restore is refused busy; the sweep and recovery leave its staging alone', async () => {
    const chain = newChainId();
    await piece({ force: true }, { chain, suspend: () => true });
    const before = hiddenNames();
    expect(before.some((name) => name.startsWith('.openclaw-staging-acme-'))).toBe(true);
    const other = new LocalFileLocation(path.join(dir.path, 'again.tar.zst'));
    await expect(backupTenant({ tenantsDir: base, tenant: 'acme', location: other })).rejects.toThrow(/busy: a restore of it continues across invocations/);
    await expect(backupTenant({ tenantsDir: base, tenant: 'acme', location: other })).rejects.toBeInstanceOf(TenantBusyError);
    await expect(restoreTenant({ tenantsDir: base, location: archive(), force: true })).rejects.toBeInstanceOf(TenantBusyError);
    await sweepBaseDir(base);
    await expect(recoverTenant({ tenantsDir: base, tenant: 'acme' })).resolves.toMatchObject({ recovered: 'none' });
    expect(hiddenNames()).toEqual(before);
    let result = await piece({}, { chain, suspend: () => false, resume: { tenant: 'acme' } });
    expect(result).toMatchObject({ tenant: 'acme', verified: true });
    chmodSync(path.join(base, 'acme', 'locked'), 0o555);
    expect(describeTree(path.join(base, 'acme'))).toEqual(original);
    // Delivered again once the chain ended: nothing done.
    result = await piece({}, { chain, suspend: () => true, resume: { tenant: 'acme' } });
    expect(result).toEqual({ operation: 'restore', chainEnded: true, tenant: 'acme', chain });
    expect(hiddenNames()).toEqual([]);
    await backupTenant({ tenantsDir: base, tenant: 'acme', location: other });
  });

  it('goes on from a piece delivered twice (the second finds the chain where the first left it)', async () => {
    const chain = newChainId();
    await piece({ as: 'copy' }, { chain, suspend: () => true });
    const second = await piece({}, { chain, suspend: () => true, resume: { tenant: 'copy' } });
    const again = await piece({}, { chain, suspend: () => true, resume: { tenant: 'copy' } });
    expect((again as { written: number }).written).toBeGreaterThan((second as { written: number }).written);
    let result = again;
    while ('suspended' in result) result = await piece({}, { chain, suspend: () => true, resume: { tenant: 'copy' } });
    chmodSync(path.join(base, 'copy', 'locked'), 0o555);
    expect(describeTree(path.join(base, 'copy'))).toEqual(original);
  });

  it('refuses to go on when the archive was written again between pieces: staging removed, the old tenant whole', async () => {
    const chain = newChainId();
    await piece({ force: true }, { chain, suspend: () => true });
    const acme = path.join(base, 'acme');
    writeFileSync(path.join(acme, 'config.json'), 'the tenant as it is now');
    const now = describeTree(acme);
    // Written again in place (same size and name, new times): the identity differs.
    utimesSync(archivePath, new Date(), new Date(Date.now() + 5_000));
    const error = await piece({}, { chain, suspend: () => true, resume: { tenant: 'acme' } }).catch((failure: unknown) => failure);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).code).toBe('CHANGED');
    expect((error as Error).message).toMatch(/no longer the archive an earlier read found there/);
    expect(describeTree(acme)).toEqual(now);
    expect(hiddenNames()).toEqual([]);
  });

  it('ends the chain when a piece was killed while it wrote: one line, staging removed, the old tenant whole', async () => {
    const chain = newChainId();
    await piece({ force: true }, { chain, suspend: () => true });
    const acme = path.join(base, 'acme');
    writeFileSync(path.join(acme, 'config.json'), 'the tenant as it is now');
    const now = describeTree(acme);
    const killed = spawnSync(process.execPath, ['--input-type=module', '-e', resumeScript(chain, 'acme')], { env: { ...process.env, OPENCLAW_TEST_CRASH_AT: 'restore:piece-marked' }, encoding: 'utf8' });
    expect(killed.signal).toBe('SIGKILL');
    expect((await loadRestoreCheckpoint(base, 'acme'))?.writing).toBe(true);
    const error = await piece({}, { chain, suspend: () => true, resume: { tenant: 'acme' } }).catch((failure: unknown) => failure);
    expect(error).toBeInstanceOf(FileSystemError);
    expect((error as Error).message).toMatch(/stopped while it wrote .* the slot holds what it held: restore again$/);
    expect(describeTree(acme)).toEqual(now);
    expect(hiddenNames()).toEqual([]);
  });

  it('kill -9 right after a piece saved its checkpoint: recovery leaves the chain, which goes on to the end', async () => {
    const chain = newChainId();
    await piece({ as: 'copy' }, { chain, suspend: () => true });
    const killed = spawnSync(process.execPath, ['--input-type=module', '-e', resumeScript(chain, 'copy')], { env: { ...process.env, OPENCLAW_TEST_CRASH_AT: 'restore:piece-saved' }, encoding: 'utf8' });
    expect(killed.signal).toBe('SIGKILL');
    await recoverTenant({ tenantsDir: base, tenant: 'copy' });
    let result = await piece({}, { chain, suspend: () => true, resume: { tenant: 'copy' } });
    while ('suspended' in result) result = await piece({}, { chain, suspend: () => true, resume: { tenant: 'copy' } });
    chmodSync(path.join(base, 'copy', 'locked'), 0o555);
    expect(describeTree(path.join(base, 'copy'))).toEqual(original);
    expect(hiddenNames()).toEqual([]);
  });

  it('kill -9 at each crash point of a last piece, then recover: the slot holds the old tenant or the restored one, whole, and the chain is over', async () => {
    const acme = path.join(base, 'acme');
    writeFileSync(path.join(acme, 'config.json'), 'the tenant as it is now');
    const now = describeTree(acme);
    for (const point of ['restore:piece-marked', 'restore:verified', 'commit:journal-written', 'commit:old-moved-aside', 'commit:new-moved-in', 'restore:committed']) {
      const chain = newChainId();
      await piece({ force: true }, { chain, suspend: () => true });
      const killed = spawnSync(process.execPath, ['--input-type=module', '-e', resumeScript(chain, 'acme', false)], { env: { ...process.env, OPENCLAW_TEST_CRASH_AT: point }, encoding: 'utf8' });
      expect(killed.signal, `${point}: ${killed.stderr}`).toBe('SIGKILL');
      await recoverTenant({ tenantsDir: base, tenant: 'acme' });
      // Went on if it can, else ended: the chain is over either way once the next piece ran.
      const next = await piece({}, { chain, suspend: () => false, resume: { tenant: 'acme' } }).catch((error: unknown) => error);
      await recoverTenant({ tenantsDir: base, tenant: 'acme' });
      expect(hiddenNames(), point).toEqual([]);
      if (existsSync(path.join(acme, 'locked'))) chmodSync(path.join(acme, 'locked'), 0o555);
      const slot = describeTree(acme);
      expect([now, original], `${point}: ${String(next)}`).toContainEqual(slot);
      if (existsSync(path.join(acme, 'locked'))) chmodSync(path.join(acme, 'locked'), 0o755);
      // The next round starts from the tenant as it is now.
      if (JSON.stringify(slot) !== JSON.stringify(now)) {
        writeFileSync(path.join(acme, 'config.json'), 'the tenant as it is now');
        Object.assign(now, describeTree(acme));
      }
    }
  });

  it('ends the chain when its staging directory is gone between pieces: one line, no checkpoint left', async () => {
    const chain = newChainId();
    await piece({ as: 'copy' }, { chain, suspend: () => true });
    const staging = hiddenNames().find((name) => name.startsWith('.openclaw-staging-copy-'))!;
    rmSync(path.join(base, staging), { recursive: true });
    await expect(piece({}, { chain, suspend: () => true, resume: { tenant: 'copy' } })).rejects.toThrow(/of the continuing restore of "copy" is no longer there: the restore cannot go on$/);
    await recoverTenant({ tenantsDir: base, tenant: 'copy' }).catch(() => undefined);
    expect(hiddenNames()).toEqual([]);
    await expect(piece({}, { chain, suspend: () => true, resume: { tenant: 'copy' } })).resolves.toMatchObject({ chainEnded: true });
  });

  it('tenants recover abandons a chain no piece saved for the abandon time: staging and checkpoint gone, the slot as it was', async () => {
    const chain = newChainId();
    await piece({ force: true }, { chain, suspend: () => true });
    const acme = path.join(base, 'acme');
    writeFileSync(path.join(acme, 'config.json'), 'the tenant as it is now');
    const now = describeTree(acme);
    const old = new Date(Date.now() - 25 * 3_600_000);
    utimesSync(restoreCheckpointPathFor(base, 'acme'), old, old);
    await recoverTenant({ tenantsDir: base, tenant: 'acme' });
    expect(hiddenNames()).toEqual([]);
    expect(describeTree(acme)).toEqual(now);
    await expect(piece({}, { chain, suspend: () => true, resume: { tenant: 'acme' } })).resolves.toMatchObject({ chainEnded: true });
  });

  it('a restore of the tenant after the abandon time ends the old chain itself and restores', async () => {
    await piece({ as: 'copy' }, { chain: newChainId(), suspend: () => true });
    await expect(restoreTenant({ tenantsDir: base, location: archive(), as: 'copy' })).rejects.toThrow(/busy: a restore of it continues across invocations .* after \d{4}-/);
    const old = new Date(Date.now() - 25 * 3_600_000);
    utimesSync(restoreCheckpointPathFor(base, 'copy'), old, old);
    await expect(restoreTenant({ tenantsDir: base, location: archive(), as: 'copy' })).resolves.toMatchObject({ tenant: 'copy', verified: true });
    chmodSync(path.join(base, 'copy', 'locked'), 0o555);
    expect(describeTree(path.join(base, 'copy'))).toEqual(original);
    expect(hiddenNames()).toEqual([]);
  });
});

/** A next piece in a process of its own (dist/: built by `npm run build`), which a crash point may kill. */
function resumeScript(chain: string, tenant: string, suspend = true): string {
  const dist = path.resolve('dist/shared');
  return `
    import { restoreTenantPiece } from ${JSON.stringify(path.join(dist, 'restore/restore.js'))};
    import { LocalFileLocation } from ${JSON.stringify(path.join(dist, 'storage/local.js'))};
    await restoreTenantPiece({ tenantsDir: ${JSON.stringify(base)}, location: new LocalFileLocation(${JSON.stringify(archivePath)}), pieces: { chain: ${JSON.stringify(chain)}, suspend: () => ${suspend}, resume: { tenant: ${JSON.stringify(tenant)} } } });
  `;
}
