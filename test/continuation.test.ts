// The state a backup in pieces keeps between invocations (backup/continuation.ts): it round
// trips (an encrypted backup's age stream too, its key only in the file, which is mode
// 0600), a damaged file is refused rather than resumed from, the base-dir sweep leaves it
// alone while the tenant's recovery removes a killed save's temporary file, and while it
// exists the tenant is busy for other operations. `tenants recover` (tenant/recover.ts) ends
// a chain that broke, damaged or a day old, aborting its upload, and leaves a younger one be.

import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, promises as fsPromises, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, describe, expect, it, vi } from 'vitest';

import { abandonStaleBackups } from '../shared/backup/backup.js';

import { assertNoContinuation, continuationPathFor, DEFAULT_ABANDON_AFTER_MS, loadContinuation, saveContinuation, staleChains, type Continuation } from '../shared/backup/continuation.js';
import { FileSystemError, StorageError, TenantBusyError } from '../shared/errors.js';
import type { UploadCheckpoint } from '../shared/storage/s3-upload.js';
import type { ArchiveLocation } from '../shared/storage/types.js';
import { sweepBaseDir } from '../shared/tenant/base-dir-sweep.js';
import { recoverTenant } from '../shared/tenant/recover.js';
import { acquireTenantLock, lockPathFor } from '../shared/tenant/lock.js';
import { recoverSlot } from '../shared/tenant/slot.js';
import { tempDir } from './helpers/tree.js';

const dir = tempDir();
afterAll(() => dir.cleanup());

function sample(tenant: string): Continuation {
  return {
    state: {
      version: 1,
      chain: 'ab'.repeat(12),
      tenant,
      location: `s3://backups/${tenant}.tar.zst`,
      createdAt: '2026-06-03T03:00:00.000Z',
      startedAt: '2026-06-03T03:00:00.000Z',
      savedAt: '2026-06-03T03:14:00.000Z',
      pieces: 1,
      archive: { resumeAfter: 'a/b', digest: { directories: [] }, skipped: [], warnings: [], totals: { files: 1, directories: 2, symlinks: 0, bytes: 3 }, contentBytes: 3, snapshotted: [], settled: [], waiting: [] },
      upload: { uploadId: 'u-1', parts: [{ PartNumber: 1, ETag: '"e"' }], bytes: 6_000_000, partSize: 8 * 1024 * 1024 },
    },
    pendingFrame: Buffer.from('frame bytes'),
    tail: Buffer.from('tail bytes'),
  };
}

describe('continuation state', () => {
  const base = path.join(dir.path, 'tenants');
  mkdirSync(path.join(base, 'acme'), { recursive: true });

  it('round trips, and refuses a damaged file', async () => {
    expect(await loadContinuation(base, 'acme')).toBeUndefined();
    await saveContinuation(base, sample('acme'));
    const loaded = (await loadContinuation(base, 'acme'))!;
    expect(loaded.state).toEqual(sample('acme').state);
    expect(loaded.pendingFrame.toString()).toBe('frame bytes');
    expect(loaded.tail.toString()).toBe('tail bytes');
    const file = continuationPathFor(base, 'acme');
    const whole = readFileSync(file);
    writeFileSync(file, whole.subarray(0, whole.length - 3));
    await expect(loadContinuation(base, 'acme')).rejects.toThrow(FileSystemError);
    await expect(loadContinuation(base, 'acme')).rejects.toThrow(/is damaged/);
    writeFileSync(file, whole);
  });

  it('refuses, as damaged, a state whose JSON is null or names null or negative parts (never a TypeError)', async () => {
    await saveContinuation(base, sample('acme'));
    const file = continuationPathFor(base, 'acme');
    const whole = readFileSync(file);
    const jsonStart = whole.indexOf(10) + 1 + 4;
    const json = JSON.parse(whole.subarray(jsonStart, jsonStart + whole.readUInt32BE(jsonStart - 4)).toString('utf8'));
    const withJson = (text: string) => {
      const length = Buffer.alloc(4);
      length.writeUInt32BE(Buffer.byteLength(text));
      return Buffer.concat([whole.subarray(0, jsonStart - 4), length, Buffer.from(text)]);
    };
    const damagedJsons = ['null', '[]', ...['encryption', 'committing', 'upload', 'archive'].map((field) => JSON.stringify({ ...json, frameBytes: 0, tailBytes: 0, [field]: null })),
      JSON.stringify({ ...json, frameBytes: 0, tailBytes: 0, upload: { ...json.upload, parts: null } }),
      JSON.stringify({ ...json, frameBytes: 0, tailBytes: 0, archive: { ...json.archive, waiting: null } }),
      JSON.stringify({ ...json, frameBytes: 0, tailBytes: 0, archive: { ...json.archive, archiveBytes: '1' } }),
      JSON.stringify({ ...json, frameBytes: -4, tailBytes: 4 }),
      // Its creation time goes into the manifest the last piece writes, and its times into the events: each a time, its pieces a count.
      ...[['createdAt', '2026-12-07T0X:00:00.000Z'], ['createdAt', 5], ['startedAt', null], ['savedAt', ['2026-12-07T00:00:00.000Z']], ['pieces', '2'], ['pieces', 0]].map(([field, value]) =>
        JSON.stringify({ ...json, frameBytes: 0, tailBytes: 0, [field as string]: value })),
    ];
    for (const text of damagedJsons) {
      writeFileSync(file, withJson(text));
      await expect(loadContinuation(base, 'acme'), text).rejects.toThrow(/^the state of the continuing backup of "acme" \(.*\) is damaged$/);
    }
    writeFileSync(file, withJson(JSON.stringify({ ...json, frameBytes: 0, tailBytes: 0 })));
    await expect(loadContinuation(base, 'acme')).resolves.toMatchObject({ state: sample('acme').state });
    await saveContinuation(base, sample('acme'));
  });

  // The state decides what the next piece skips and which upload it completes: one another
  // user wrote, or others could have, is not trusted (as the restore checkpoint's rule).
  it.runIf(process.geteuid?.() === 0)('refuses, as damaged, a state writable by group or others or owned by another user than this process\'s and the base dir\'s', async () => {
    const file = continuationPathFor(base, 'acme');
    for (const [change, reason] of [
      [() => chmodSync(file, 0o660), /is writable by its group \(mode 0660; saved 0600\)/],
      [() => chmodSync(file, 0o602), /is writable by others \(mode 0602; saved 0600\)/],
      [() => chownSync(file, 4242, 4242), /is owned by uid 4242, neither this process's user \(uid 0\) nor the base dir's owner \(uid 0\)/],
    ] as const) {
      await saveContinuation(base, sample('acme'));
      change();
      const error = await loadContinuation(base, 'acme').catch((failure: unknown) => failure);
      expect(error).toMatchObject({ laterFormat: false });
      expect((error as Error).message).toMatch(/^the state of the continuing backup of "acme" \(.*\) is .*: not one this tool saved, so no piece goes on from it$/);
      expect((error as Error).message).toMatch(reason);
    }
    // The functions save through EFS's access point as Lambda's own user: what they save belongs to the base dir's owner.
    chownSync(base, 4242, 4242);
    try {
      await saveContinuation(base, sample('acme'));
      chownSync(file, 4242, 4242);
      await expect(loadContinuation(base, 'acme')).resolves.toMatchObject({ state: sample('acme').state });
    } finally {
      chownSync(base, 0, 0);
    }
    await saveContinuation(base, sample('acme'));
  });

  it('keeps the archive a last piece is committing, and refuses a state whose record of it is not one', async () => {
    const committing = { bytes: 12_345_678, manifestSha256: 'c'.repeat(64), totals: { files: 4, directories: 2, symlinks: 0, bytes: 9 }, skipped: [], warnings: [] };
    const { state, ...rest } = sample('acme');
    await saveContinuation(base, { ...rest, state: { ...state, committing } });
    expect((await loadContinuation(base, 'acme'))!.state.committing).toEqual(committing);
    await saveContinuation(base, { ...rest, state: { ...state, committing: { ...committing, bytes: -1 } } });
    await expect(loadContinuation(base, 'acme')).rejects.toThrow(/is damaged/);
    await saveContinuation(base, sample('acme'));
  });

  it('keeps an encrypted backup\'s age stream, its key only in the file, which only its owner may read', async () => {
    const payloadKey = randomBytes(32);
    const pending = randomBytes(65_536);
    const encrypted: Continuation = { ...sample('enc'), encryption: { recipients: ['age1example'], stream: { chunkIndex: 41, payloadKey: Buffer.from(payloadKey), pending } } };
    await saveContinuation(base, encrypted);
    const file = continuationPathFor(base, 'enc');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const loaded = (await loadContinuation(base, 'enc'))!;
    expect(loaded.state).toEqual(encrypted.state);
    expect(loaded.pendingFrame.toString()).toBe('frame bytes');
    expect(loaded.tail.toString()).toBe('tail bytes');
    expect(loaded.encryption!.recipients).toEqual(['age1example']);
    expect(loaded.encryption!.stream.chunkIndex).toBe(41);
    expect(loaded.encryption!.stream.payloadKey.equals(payloadKey)).toBe(true);
    expect(loaded.encryption!.stream.pending.equals(pending)).toBe(true);
    // The JSON says how long the key is, never what it is.
    const whole = readFileSync(file);
    const json = whole.subarray(10, 10 + whole.readUInt32BE(6)).toString();
    expect(JSON.parse(json).encryption).toEqual({ recipients: ['age1example'], chunkIndex: 41, keyBytes: 32, pendingBytes: 65_536 });
    expect(json).not.toContain(payloadKey.toString('hex'));
    expect(json).not.toContain(payloadKey.toString('base64'));
    // A state whose stream cannot be (a key of another length, more than a chunk unsealed) is damaged.
    for (const stream of [{ chunkIndex: 1, payloadKey: randomBytes(16), pending }, { chunkIndex: 1, payloadKey, pending: randomBytes(65_537) }]) {
      await saveContinuation(base, { ...encrypted, encryption: { recipients: ['age1example'], stream } });
      await expect(loadContinuation(base, 'enc')).rejects.toThrow(/is damaged/);
    }
    writeFileSync(file, whole.subarray(0, whole.length - 1));
    await expect(loadContinuation(base, 'enc')).rejects.toThrow(/is damaged/);
    rmSync(file);
  });

  it('makes the tenant busy, survives the sweep, and its temporary file goes with the tenant\'s recovery', async () => {
    await expect(assertNoContinuation(base, 'acme', 'restore')).rejects.toThrow(TenantBusyError);
    const temp = path.join(base, '.openclaw-continuation-acme.0123456789ab.tmp');
    writeFileSync(temp, 'half a save');
    await sweepBaseDir(base);
    expect(existsSync(continuationPathFor(base, 'acme'))).toBe(true);
    await recoverSlot(base, 'acme');
    expect(existsSync(temp)).toBe(false);
    expect(existsSync(continuationPathFor(base, 'acme'))).toBe(true);
  });

  it('names the chains whose state has not been saved for a while', async () => {
    expect(await staleTenants(base, 60_000)).toEqual([]);
    expect(await staleTenants(base, 60_000, Date.now() + 120_000)).toEqual(['acme']);
  });
});

/** Every tenant staleChains yields, in order. */
async function staleTenants(...args: Parameters<typeof staleChains>): Promise<string[]> {
  const tenants: string[] = [];
  for await (const tenant of staleChains(...args)) tenants.push(tenant);
  return tenants;
}

describe('ending broken chains under a deadline', () => {
  // The backup function ends them within a share of its invocation. Looking at every state
  // first (one stat each: 5,000 of them) spent a short share before any chain was ended, so
  // the next invocation started over and none ever was: each is now ended as it is found.
  it('ends each chain as it finds it, and looks at no more states once stopped', async () => {
    const base = path.join(dir.path, 'deadline');
    const tenants = ['t1', 't2', 't3', 't4', 't5'];
    const dayAgo = new Date(Date.now() - 25 * 60 * 60 * 1000);
    for (const tenant of tenants) {
      mkdirSync(path.join(base, tenant), { recursive: true });
      writeFileSync(continuationPathFor(base, tenant), 'damaged state');
      utimesSync(continuationPathFor(base, tenant), dayAgo, dayAgo);
    }
    const stop = new AbortController();
    const stat = vi.spyOn(fsPromises, 'stat');
    try {
      const ended = await abandonStaleBackups(base, 60_000, () => Promise.reject(new Error('no location')), undefined, { signal: stop.signal, onAbandoned: async () => stop.abort() });
      expect(ended).toHaveLength(1);
      // The state of the chain it ended (again under its lock), and of the one it found next and left: not the other three.
      expect(new Set(stat.mock.calls.map(([file]) => String(file)).filter((file) => file.includes('.openclaw-continuation-'))).size).toBe(2);
    } finally {
      stat.mockRestore();
    }
    expect(tenants.filter((tenant) => existsSync(continuationPathFor(base, tenant)))).toHaveLength(4);
  });

  /** Tenant acme's chain under `name`, its state saved a day ago; `open` records what it aborts in `aborted`. */
  async function staleChain(name: string) {
    const base = path.join(dir.path, name);
    mkdirSync(path.join(base, 'acme'), { recursive: true });
    await saveContinuation(base, sample('acme'));
    const file = continuationPathFor(base, 'acme');
    const dayAgo = new Date(Date.now() - 25 * 60 * 60 * 1000);
    utimesSync(file, dayAgo, dayAgo);
    const aborted: UploadCheckpoint[] = [];
    const open = async (location: string): Promise<ArchiveLocation> => ({ display: location, abandonPieces: async (at: UploadCheckpoint) => void aborted.push(at) }) as unknown as ArchiveLocation;
    return { base, file, dayAgo, aborted, open };
  }
  // A state judged stale before its lock was taken may be saved by a live piece (one that
  // held the lock then: its message came late) before the lock is had: that chain goes on,
  // and ending it aborted the upload its next piece would finish (its backup lost).
  it('looks at the state again under the lock: a chain saved meanwhile is left alone', async () => {
    const { base, file, dayAgo, aborted, open } = await staleChain('saved-meanwhile');
    const realStat = fsPromises.stat.bind(fsPromises);
    let pieceSaved = false;
    const stat = vi.spyOn(fsPromises, 'stat').mockImplementation((async (target: string, options?: object) => {
      const found = await realStat(target, options);
      if (!pieceSaved && String(target) === file) {
        // The next piece saves the chain right after the state was looked at.
        pieceSaved = true;
        await saveContinuation(base, { ...sample('acme'), state: { ...sample('acme').state, pieces: 2, savedAt: new Date().toISOString() } });
      }
      return found;
    }) as typeof fsPromises.stat);
    try {
      expect(await abandonStaleBackups(base, 60 * 60 * 1000, open)).toEqual([]);
    } finally {
      stat.mockRestore();
    }
    expect(pieceSaved).toBe(true);
    expect(aborted).toEqual([]);
    expect((await loadContinuation(base, 'acme'))?.state.pieces).toBe(2);
    // Once it stops being saved, it is ended as ever.
    utimesSync(file, dayAgo, dayAgo);
    expect(await abandonStaleBackups(base, 60 * 60 * 1000, open)).toMatchObject([{ tenant: 'acme', pieces: 2 }]);
    expect(aborted).toHaveLength(1);
    expect(existsSync(file)).toBe(false);
  });
  // A chain whose last piece was committing its archive, abandoned while the store could not be
  // asked whether it held it (an outage, a throttled HEAD): its failure was said and its state
  // removed, then its last piece's message came again, found the archive whole under its run and
  // said its success, under the same operation ID (failure, then success). The chain is kept
  // until the store answers (at most twice the abandon age), so its one outcome is what the store says.
  it("keeps a chain committing its archive while the store cannot say whether it holds it, then ends it as the store says", async () => {
    const { base, file, aborted } = await staleChain('committing-unjudged');
    const committing = { bytes: 12_345_678, manifestSha256: 'c'.repeat(64), totals: { files: 4, directories: 2, symlinks: 0, bytes: 9 }, skipped: [], warnings: [] };
    await saveContinuation(base, { ...sample('acme'), state: { ...sample('acme').state, committing } });
    const age = (hours: number) => {
      const then = new Date(Date.now() - hours * 60 * 60 * 1000);
      utimesSync(file, then, then);
    };
    let answers = false;
    const open = async (location: string): Promise<ArchiveLocation> =>
      ({
        display: location,
        abandonPieces: async (at: UploadCheckpoint) => void aborted.push(at),
        storedPieces: async () => {
          if (!answers) throw new StorageError('could not reach s3://backups/acme.tar.zst: connect ECONNREFUSED');
          return { bytes: committing.bytes };
        },
      }) as unknown as ArchiveLocation;
    const heard: unknown[] = [];
    const keptFor: string[] = [];
    const onAbandoned = async (chain: unknown) => void heard.push(chain);
    const onKept = (chain: { tenant: string }, error: unknown) => void keptFor.push(`${chain.tenant}: ${(error as Error).message}`);
    age(25);
    expect(await abandonStaleBackups(base, 24 * 60 * 60 * 1000, open, undefined, { onAbandoned, onKept })).toEqual([]);
    expect(heard).toEqual([]);
    expect(keptFor).toEqual(['acme: could not reach s3://backups/acme.tar.zst: connect ECONNREFUSED']);
    expect(aborted).toEqual([]);
    expect(existsSync(file)).toBe(true);
    // The store answers: the chain's success, once.
    answers = true;
    expect(await abandonStaleBackups(base, 24 * 60 * 60 * 1000, open, undefined, { onAbandoned })).toMatchObject([{ tenant: 'acme', completed: { stored: { bytes: committing.bytes } } }]);
    expect(heard).toHaveLength(1);
    expect(aborted).toEqual([]);
    expect(existsSync(file)).toBe(false);

    // A store that does not answer for twice the abandon age: ended as any other, its failure said.
    await saveContinuation(base, { ...sample('acme'), state: { ...sample('acme').state, committing } });
    answers = false;
    heard.length = 0;
    age(47);
    expect(await abandonStaleBackups(base, 24 * 60 * 60 * 1000, open, undefined, { onAbandoned })).toEqual([]);
    age(49);
    const ended = await abandonStaleBackups(base, 24 * 60 * 60 * 1000, open, undefined, { onAbandoned });
    expect(ended).toMatchObject([{ tenant: 'acme', abortError: expect.objectContaining({ message: expect.stringMatching(/ECONNREFUSED/) }) }]);
    expect(ended[0]!.completed).toBeUndefined();
    expect(heard).toHaveLength(1);
    expect(existsSync(file)).toBe(false);
  });

  // Two backup invocations (another instance on another EFS client) look at the same stale
  // state at once: the one that took the lock second found the state gone, "ended" the chain
  // again and published a second failure event, saying its upload could not be aborted.
  it('ends a chain once when another run ended it between the look and the lock', async () => {
    const { base, file, aborted, open } = await staleChain('ended-meanwhile');
    const realStat = fsPromises.stat.bind(fsPromises);
    const heard: string[] = [];
    let other: Awaited<ReturnType<typeof abandonStaleBackups>> | undefined;
    const stat = vi.spyOn(fsPromises, 'stat').mockImplementation((async (target: string, options?: object) => {
      const found = await realStat(target, options);
      if (other === undefined && String(target) === file) {
        other = [];
        // The other instance ends it, event and all, right after this one looked.
        other = await abandonStaleBackups(base, 60 * 60 * 1000, open, undefined, { onAbandoned: async (chain) => void heard.push(`other ${chain.tenant}`) });
      }
      return found;
    }) as typeof fsPromises.stat);
    try {
      expect(await abandonStaleBackups(base, 60 * 60 * 1000, open, undefined, { onAbandoned: async (chain) => void heard.push(`this ${chain.tenant}`) })).toEqual([]);
    } finally {
      stat.mockRestore();
    }
    expect(other).toMatchObject([{ tenant: 'acme', pieces: 1 }]);
    expect(heard).toEqual(['other acme']);
    expect(aborted).toHaveLength(1);
    expect(existsSync(file)).toBe(false);
  });
});

describe('tenants recover and a backup in pieces', () => {
  const base = path.join(dir.path, 'recover');
  mkdirSync(path.join(base, 'acme'), { recursive: true });
  const file = continuationPathFor(base, 'acme');
  const hourMs = 60 * 60 * 1000;

  /** Where `recover` opened a chain's destination and what it aborted there; `fail`: the abort is refused. */
  function store(fail?: Error) {
    const opened: string[] = [];
    const abandoned: UploadCheckpoint[] = [];
    const open = async (location: string): Promise<ArchiveLocation> => {
      opened.push(location);
      return {
        display: location,
        abandonPieces: async (at: UploadCheckpoint) => {
          if (fail !== undefined) throw fail;
          abandoned.push(at);
        },
      } as unknown as ArchiveLocation;
    };
    return { open, opened, abandoned };
  }

  const saveAgedHours = async (hours: number, continuation = sample('acme')) => {
    await saveContinuation(base, continuation);
    const then = new Date(Date.now() - hours * hourMs);
    utimesSync(file, then, then);
  };

  it('ends a damaged state at once: nothing could continue it, and the tenant is free again', async () => {
    writeFileSync(file, 'garbage\n');
    await expect(assertNoContinuation(base, 'acme', 'backup')).rejects.toThrow(/`openclaw tenants recover acme` ends it when no piece has saved it for 24 h, or its state is damaged/);
    const { open, opened } = store();
    const result = await recoverTenant({ tenantsDir: base, tenant: 'acme', open });
    expect(result).toMatchObject({ recovered: 'none', continuation: { outcome: 'ended', reason: 'damaged', upload: 'left', leftAtStore: expect.stringMatching(/destination is unknown/) } });
    expect(opened).toEqual([]);
    expect(existsSync(file)).toBe(false);
    await assertNoContinuation(base, 'acme', 'backup');
  });

  it('leaves a chain saved within the abandon age alone, saying when it would end it', async () => {
    await saveAgedHours(23);
    const savedMs = statSync(file).mtime.getTime();
    const { open, opened } = store();
    const result = await recoverTenant({ tenantsDir: base, tenant: 'acme', open });
    expect(result.continuation).toEqual({ outcome: 'continuing', savedAt: new Date(savedMs).toISOString(), ageMs: expect.any(Number), endsAfter: new Date(savedMs + DEFAULT_ABANDON_AFTER_MS).toISOString(), location: 's3://backups/acme.tar.zst', pieces: 1 });
    expect(opened).toEqual([]);
    expect(existsSync(file)).toBe(true);
    // A state a later version wrote is its to continue: the same age rule, not "damaged".
    writeFileSync(file, Buffer.concat([Buffer.from('OCCS2\n'), readFileSync(file).subarray(6)]));
    expect((await recoverTenant({ tenantsDir: base, tenant: 'acme', open })).continuation).toMatchObject({ outcome: 'continuing' });
    expect(existsSync(file)).toBe(true);
  });

  it('ends a chain not saved for the abandon age: its upload aborted, its state removed', async () => {
    await saveAgedHours(25);
    const { open, opened, abandoned } = store();
    const result = await recoverTenant({ tenantsDir: base, tenant: 'acme', open });
    expect(result.continuation).toEqual({ outcome: 'ended', reason: 'stale', savedAt: expect.any(String), location: 's3://backups/acme.tar.zst', chain: 'ab'.repeat(12), pieces: 1, upload: 'aborted' });
    expect(opened).toEqual(['s3://backups/acme.tar.zst']);
    expect(abandoned).toEqual([expect.objectContaining({ uploadId: 'u-1', tail: Buffer.from('tail bytes') })]);
    expect(existsSync(file)).toBe(false);
  });

  it('ends a chain whose last piece had completed the archive without aborting anything, its archive tagged', async () => {
    const committing = { bytes: 12_345_678, manifestSha256: 'c'.repeat(64), totals: { files: 4, directories: 2, symlinks: 0, bytes: 9 }, skipped: [], warnings: [] };
    const { state, ...rest } = sample('acme');
    await saveContinuation(base, { ...rest, state: { ...state, committing } });
    const then = new Date(Date.now() - 25 * hourMs);
    utimesSync(file, then, then);
    const { open, abandoned } = store();
    const looked: unknown[] = [];
    const withArchive = async (location: string) => ({ ...(await open(location)), storedPieces: async (options: unknown) => (looked.push(options), { bytes: committing.bytes }) }) as ArchiveLocation;
    const result = await recoverTenant({ tenantsDir: base, tenant: 'acme', open: withArchive });
    expect(result.continuation).toMatchObject({ outcome: 'ended', reason: 'stale', upload: 'completed' });
    expect(looked).toEqual([{ tenant: 'acme', createdAt: state.createdAt, bytes: committing.bytes, finalMetadata: { 'manifest-sha256': committing.manifestSha256, 'operation-id': 'ab'.repeat(12) } }]);
    expect(abandoned).toEqual([]);
    expect(existsSync(file)).toBe(false);
  });

  it('says what it left at the store when the upload cannot be aborted, and ends the chain all the same', async () => {
    await saveAgedHours(25);
    const { open } = store(new StorageError('access denied to s3://backups/acme.tar.zst', 'ACCESS_DENIED'));
    const result = await recoverTenant({ tenantsDir: base, tenant: 'acme', open });
    expect(result.continuation).toMatchObject({ outcome: 'ended', reason: 'stale', upload: 'left' });
    expect(result.continuation).toHaveProperty('leftAtStore', expect.stringMatching(/^its multipart upload u-1 could not be aborted \(access denied .*\): a bucket lifecycle rule AbortIncompleteMultipartUpload removes it/));
    expect(existsSync(file)).toBe(false);
  });

  it('ends the chain of a tenant whose directory is gone (else no restore could bring it back), and of a later version once it is old', async () => {
    const gone = continuationPathFor(base, 'gone');
    await saveContinuation(base, sample('gone'));
    writeFileSync(gone, Buffer.concat([Buffer.from('OCCS2\n'), readFileSync(gone).subarray(6)]));
    const then = new Date(Date.now() - 25 * hourMs);
    utimesSync(gone, then, then);
    const result = await recoverTenant({ tenantsDir: base, tenant: 'gone', open: store().open });
    expect(result).toMatchObject({ recovered: 'none', continuation: { outcome: 'ended', reason: 'stale', upload: 'left' } });
    expect(existsSync(gone)).toBe(false);
  });

  it('waits for a piece that holds the tenant\'s lock', async () => {
    await saveAgedHours(25);
    const lock = await acquireTenantLock(base, 'acme', 'backup');
    try {
      await expect(recoverTenant({ tenantsDir: base, tenant: 'acme', open: store().open })).rejects.toThrow(TenantBusyError);
    } finally {
      await lock.release();
    }
    expect(existsSync(file)).toBe(true);
    rmSync(file);
  });
});

describe('a piece whose lock was taken over before its state is renamed into place', () => {
  // A piece stalled in its state's fsync past LOCK_STALE_MS, its lock taken over by a command on
  // another host: its state was renamed in unchecked, under the other command's lock (found by
  // locks6 reading continuation.ts).
  const base = path.join(dir.path, 'taken-over');
  mkdirSync(path.join(base, 'acme'), { recursive: true });

  it("stops lost (one line), the state as the taker found it, no temporary left", async () => {
    const lock = await acquireTenantLock(base, 'acme', 'backup');
    try {
      await saveContinuation(base, sample('acme'));
      const file = continuationPathFor(base, 'acme');
      const found = readFileSync(file);
      const lockPath = lockPathFor(base, 'acme');
      rmSync(lockPath);
      writeFileSync(lockPath, JSON.stringify({ token: 'taker', pid: 7, host: 'other', hostId: 'ffffffffffff', started: 9, operation: 'recover', startedAt: new Date().toISOString() }));
      const later = sample('acme');
      const error = await saveContinuation(base, { ...later, state: { ...later.state, pieces: 2 } }).catch((failure: unknown) => failure);
      expect(error).toBeInstanceOf(TenantBusyError);
      expect((error as Error).message).toMatch(/^lost the tenant's lock .*: another operation took it over/);
      expect(readFileSync(file)).toEqual(found);
      expect(readdirSync(base).filter((name) => name.startsWith('.openclaw-continuation-acme.'))).toEqual([]);
    } finally {
      await lock.release();
    }
  });
});
