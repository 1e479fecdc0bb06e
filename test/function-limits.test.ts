// What the restore function takes on (shared/restore/function-limits.ts): in one invocation,
// what its time left writes; in pieces, what a chain writes when every piece first replays
// what earlier pieces wrote, each piece keeping a share of its time for writing, within the
// pieces that fit in the abandon time.

import { describe, expect, it } from 'vitest';

import { DEFAULT_ABORT_MARGIN_MS, DEFAULT_RESTORE_ENTRIES_PER_SECOND, DEFAULT_RESTORE_REPLAY_MBPS, type FunctionConfig } from '../shared/control-plane/function-config.js';
import { chainPieces, largestChain, MIN_WRITE_SHARE, REPLAY_SECONDS_PER_ENTRY, restoreChainEntryLimit, restoreChainLimit, restoreChainPieceLimit, restoreEntryLimit, restoreLimit, type ChainRates } from '../shared/restore/function-limits.js';
import { chainTooSlow } from '../shared/restore/restore.js';

const config: FunctionConfig = { tenantsDir: '/mnt/tenants', allowedSourceBuckets: [], abortMarginMs: DEFAULT_ABORT_MARGIN_MS, restoreReplayMBps: 100 };
/** The stack's piece: 900 s, less 60 s of abort margin and 120 s of continue margin; 40 MB/s written, 100 MB/s replayed, 96 pieces (a day). */
const stack: ChainRates = { pieceSeconds: 720, writeBytesPerSecond: 40e6, replayBytesPerSecond: 100e6, maxPieces: 96 };
const GB = 1e9;

describe('a restore chain', () => {
  it('keeps a quarter of each piece for writing', () => {
    expect(MIN_WRITE_SHARE).toBe(0.25);
  });

  // Piece 1 writes 720 s × 40 MB/s = 28.8 GB; piece 2 replays them in 288 s and writes 432 s: 46.08 GB;
  // piece 3 replays 460.8 s (under 540 s, 75% of 720) and writes 259.2 s: 56.448 GB; piece 4 would replay 564.48 s.
  it.each([
    [1 * GB, 1],
    [28.8 * GB, 1],
    [28.8 * GB + 1, 2],
    [46.08 * GB - 1e3, 2],
    [46.08 * GB + 1e3, 3],
    [56.448 * GB - 1e3, 3],
    [56.448 * GB + 1e3, undefined],
    [1_000 * GB, undefined],
  ])('at the stack defaults, %d bytes take %s pieces', (bytes, pieces) => {
    expect(chainPieces(bytes, stack)).toBe(pieces);
  });

  it.each([
    // replay MB/s, largest GB, pieces, what stops it
    [100, 56.448, 3, 'share'],
    [200, 113.801_011_2, 7, 'share'], // 144 GB × (1 − 0.8^7)
    [40, 28.8, 1, 'share'], // a replay no faster than the writes: a second piece would replay for all its time
    [30, 28.8, 1, 'share'],
    [4_000, 2_880 * GB * (1 - 0.99 ** 96) / GB, 96, 'pieces'], // 138 pieces by the share alone: the day bounds it
  ] as const)('replayed at %d MB/s, a chain restores up to %d GB in %d pieces (bound by the %s)', (replayMBps, largestGB, pieces, by) => {
    const largest = largestChain({ ...stack, replayBytesPerSecond: replayMBps * 1e6 });
    expect(largest.bytes / GB).toBeCloseTo(largestGB, 5);
    expect(largest).toMatchObject({ pieces, by });
  });

  it('takes on nothing when a piece has no time beyond its margins', () => {
    expect(largestChain({ ...stack, pieceSeconds: 0 })).toEqual({ bytes: 0, pieces: 0, by: 'share' });
    expect(chainPieces(1, { ...stack, pieceSeconds: 0 })).toBeUndefined();
  });
});

describe('the restore function', () => {
  it('in one invocation takes on what its time left writes, as before (840 s × 40 MB/s)', () => {
    expect(restoreLimit(900_000, config).bytes).toBe(33.6 * GB);
  });

  it('in pieces takes on what a chain of pieces as long as its own first piece writes: 1.7 times the one-invocation limit', () => {
    const limit = restoreChainLimit(900_000, config, 40 * GB);
    expect(limit.bytes / GB).toBeCloseTo(56.448, 5);
    expect(limit.bytes).toBeGreaterThan(restoreLimit(900_000, config).bytes);
    expect(limit.reason).toBe(
      'the restore function can restore in 3 pieces of 720 s at 40 MB/s written (OPENCLAW_RESTORE_MBPS) and 100 MB/s replayed (OPENCLAW_RESTORE_REPLAY_MBPS), ' +
        'each replaying what earlier pieces wrote before it writes (a next piece would replay for over 75% of its time): restore it with the CLI in local mode on a host that mounts the tenant volume',
    );
  });

  it('in pieces refuses a chain longer than the abandon time, naming the pieces it would take and those that fit', () => {
    // 1,000 MB/s replayed (q = 0.96): 4 pieces of 900 s fit in an hour; 200 GB would take 8.
    const limit = restoreChainLimit(900_000, { ...config, restoreReplayMBps: 1_000, abandonAfterMs: 3_600_000 }, 200 * GB);
    expect(limit.bytes / GB).toBeCloseTo(720 * (1 - 0.96 ** 4), 5);
    expect(limit.reason).toBe(
      'the restore function can restore in the 4 pieces of 720 s that fit in 1 h (OPENCLAW_ABANDON_AFTER_MS: the tenant is busy while a chain runs) ' +
        'at 40 MB/s written (OPENCLAW_RESTORE_MBPS) and 1000 MB/s replayed (OPENCLAW_RESTORE_REPLAY_MBPS); it would take 8 pieces: ' +
        'restore it with the CLI in local mode on a host that mounts the tenant volume',
    );
  });

  it('at the defaults (40 MB/s written, 80 replayed) takes on 50.4 GB in 3 pieces of a 15-minute invocation', () => {
    // 28.8 GB; 28.8 + 14.4 (360 s replayed); + 7.2 (540 s replayed: 75%, still allowed); a fourth would replay 630 s.
    const { restoreReplayMBps: _, ...defaults } = config;
    expect(DEFAULT_RESTORE_REPLAY_MBPS).toBe(80);
    expect(restoreChainLimit(900_000, defaults).bytes / GB).toBeCloseTo(50.4, 5);
    expect(restoreChainLimit(900_000, defaults).reason).toMatch(/^the restore function can restore in 3 pieces of 720 s at 40 MB\/s written \(OPENCLAW_RESTORE_MBPS\) and 80 MB\/s replayed/);
  });

  it('in pieces takes on nothing when its time left is within its margins, and says so', () => {
    const limit = restoreChainLimit(150_000, config, 1);
    expect(limit).toEqual({
      bytes: 0,
      reason:
        'the restore function can restore in pieces: its 150 s left are within its abort and continue margins (OPENCLAW_ABORT_MARGIN_MS, OPENCLAW_CONTINUE_MARGIN_MS), so a piece has no time to write: ' +
        'restore it with a longer timeout for the restore function, or with the CLI in local mode on a host that mounts the tenant volume',
    });
  });

  it('counts each piece from the time left less both margins, and the pieces a day holds from the time left', () => {
    // 300 s left: pieces of 120 s, 288 of them in a day; at 40 and 100 MB/s the same 3 pieces as the stack's, a sixth of the bytes.
    const limit = restoreChainLimit(300_000, config);
    expect(limit.bytes / GB).toBeCloseTo(56.448 / 6, 5);
    expect(limit.reason).toMatch(/^the restore function can restore in 3 pieces of 120 s at/);
  });
});

// An archive of many tiny files passed the chain's bytes check alone, then staged ~40,000
// entries a piece (EFS, ~5 ms a request) for days, the tenant busy all along: the first piece
// judges the entries its footer counts as it judges the bytes.
describe('the restore function in pieces, by the entries the footer counts', () => {
  const { restoreReplayMBps: _, ...defaults } = config;
  const MB = 1e6;

  it('counts on staging 45 entries a second, under the 48-57 measured through the bundle at 5 ms a request', () => {
    expect(DEFAULT_RESTORE_ENTRIES_PER_SECOND).toBe(45);
    // One invocation: 840 s × 45.
    expect(restoreEntryLimit(900_000, defaults, undefined).entries).toBe(37_800);
  });

  it('takes on, for a small archive, the entries the 96 pieces of a day stage, less what each piece spends replaying the entries before it', () => {
    // Each piece works 720 s: it replays the entries earlier pieces wrote (25 µs each), then stages at 45 a second.
    let written = 0;
    for (let piece = 1; piece <= 96; piece++) written += (720 - written * REPLAY_SECONDS_PER_ENTRY) * 45;
    const limit = restoreChainEntryLimit(900_000, defaults, 1 * MB);
    expect(limit.entries / written).toBeCloseTo(1, 3);
    expect(limit.entries).toBeLessThan(96 * 720 * 45);
    expect(limit.entries).toBeGreaterThan(restoreEntryLimit(900_000, defaults, 1 * MB).entries * 70);
    expect(limit.reason).toBe(
      'the restore function can restore in pieces with its 976.6 KiB in the 96 pieces of 720 s that fit in 24 h (OPENCLAW_ABANDON_AFTER_MS: the tenant is busy while a chain runs) ' +
        'at 45 entries a second staged (OPENCLAW_RESTORE_ENTRIES_PER_SECOND) and 40 MB/s written (OPENCLAW_RESTORE_MBPS), ' +
        'each replaying what earlier pieces wrote before it writes (80 MB/s, OPENCLAW_RESTORE_REPLAY_MBPS, and 25 µs an entry): restore it with the CLI in local mode on a host that mounts the tenant volume',
    );
  });

  it('takes on fewer entries the more bytes come with them, and none once the bytes alone fill the chain', () => {
    const entries = [1 * MB, 1_000 * MB, 10_000 * MB, 30_000 * MB, 50_000 * MB].map((bytes) => restoreChainEntryLimit(900_000, defaults, bytes).entries);
    expect(entries).toEqual([...entries].sort((a, b) => b - a));
    expect(new Set(entries).size).toBe(entries.length);
    // 50.4 GB is the chain's most at the defaults (bytes alone): the entries have no time left there.
    expect(restoreChainEntryLimit(900_000, defaults, restoreChainLimit(900_000, defaults).bytes + 1e7).entries).toBe(0);
  });

  it('is bound by the replay where entries are staged faster than replayed: one piece, no second', () => {
    // A million entries a second staged, 40,000 replayed: a second piece would replay for far over 75% of its time.
    const limit = restoreChainEntryLimit(900_000, { ...defaults, restoreEntriesPerSecond: 1_000_000 }, 1 * MB);
    expect(limit.entries / (720 * 1e6)).toBeCloseTo(1, 3);
    expect(limit.reason).toMatch(/^the restore function can restore in pieces with its 976\.6 KiB in 1 piece of 720 s at 1000000 entries a second staged .* \(a next piece would replay for over 75% of its time\): restore it/);
  });

  it('takes on nothing when a piece has no time beyond its margins', () => {
    expect(restoreChainEntryLimit(150_000, defaults, 1).entries).toBe(0);
  });
});

describe('a later restore piece, judging its chain by how far its pieces so far read', () => {
  const limit = { pieces: 96, reason: 'invocations of 900 s that fit in 24 h' };
  const location = 's3://backups/acme.tar.zst.age';

  it('bounds the chain by the invocations of its time left that fit in the abandon time', () => {
    expect(restoreChainPieceLimit(900_000, { ...config, abandonAfterMs: 86_400_000 })).toEqual({ pieces: 96, reason: expect.stringMatching(/^invocations of 900 s that fit in 24 h \(OPENCLAW_ABANDON_AFTER_MS/) });
    // A later piece's time left is shorter (its sweep, its wait for the lock): its bound larger, never smaller.
    expect(restoreChainPieceLimit(600_000, { ...config, abandonAfterMs: 86_400_000 }).pieces).toBe(144);
  });

  it('ends a chain whose pieces so far read too small a share for the rest to fit: 3 pieces read 2% of it, so it needs at least 150', () => {
    expect(chainTooSlow(location, 3, { bytes: 2e9, total: 100e9, written: 0 }, limit)).toBe(
      's3://backups/acme.tar.zst.age cannot be restored in pieces in time: 3 pieces read 2% of its 93.1 GiB (each replays what earlier pieces wrote before it writes), so the chain needs at least 150 pieces, more than the 96 invocations of 900 s that fit in 24 h',
    );
    expect(chainTooSlow(location, 1, { bytes: 50e6, total: 100e9, written: 0 }, limit)).toMatch(/1 piece read 0\.05% of its/);
    expect(chainTooSlow(location, 1, { bytes: 0, total: 100e9, written: 0 }, limit)).toMatch(/1 piece read 0% of its 93\.1 GiB .*, so the chain needs more pieces than can be counted, more than the 96/);
  });

  it('counts the entries written where the footer counted them, the further of the two shares: tiny files first do not end a chain that fits', () => {
    // 3 pieces read 0.5% of the bytes but wrote 90% of the footer's 360,000 entries: ~4 pieces in all.
    expect(chainTooSlow(location, 3, { bytes: 0.5e9, total: 100e9, entries: 360_000, written: 324_000 }, limit)).toBeUndefined();
    // An encrypted archive's footer counts nothing: the bytes alone judge it.
    expect(chainTooSlow(location, 3, { bytes: 0.5e9, total: 100e9, written: 324_000 }, limit)).toMatch(/3 pieces read 0\.5% of its 93\.1 GiB .* at least 600 pieces, more than the 96/);
    // Both shares small: ended, saying so.
    expect(chainTooSlow(location, 3, { bytes: 0.5e9, total: 100e9, entries: 3_600_000, written: 36_000 }, limit)).toBe(
      's3://backups/acme.tar.zst.age cannot be restored in pieces in time: 3 pieces got 1% through its 93.1 GiB and 3,600,000 entries (the further of the two) (each replays what earlier pieces wrote before it writes), so the chain needs at least 300 pieces, more than the 96 invocations of 900 s that fit in 24 h',
    );
  });

  it("takes no count from a footer that counts fewer entries than the pieces already wrote (it lies): the bytes alone judge the chain, which a footer's `entries: 1` had let run to the abandon time", () => {
    // 3 pieces read 0.5% of the bytes and wrote 324,000 entries of a footer that says 1 (or 323,999).
    for (const entries of [1, 323_999]) {
      expect(chainTooSlow(location, 3, { bytes: 0.5e9, total: 100e9, entries, written: 324_000 }, limit), `footer says ${entries}`).toMatch(/3 pieces read 0\.5% of its 93\.1 GiB .* at least 600 pieces, more than the 96/);
    }
    // A count the pieces have only reached is still taken: done.
    expect(chainTooSlow(location, 3, { bytes: 0.5e9, total: 100e9, entries: 324_000, written: 324_000 }, limit)).toBeUndefined();
  });

  it('lets go on a chain whose pace fits, one read to its end, and one exactly at the bound', () => {
    expect(chainTooSlow(location, 3, { bytes: 50e9, total: 100e9, written: 0 }, limit)).toBeUndefined();
    expect(chainTooSlow(location, 3, { bytes: 100e9, total: 100e9, written: 0 }, limit)).toBeUndefined();
    expect(chainTooSlow(location, 48, { bytes: 50e9, total: 100e9, written: 0 }, limit)).toBeUndefined();
    expect(chainTooSlow(location, 49, { bytes: 50e9, total: 100e9, written: 0 }, limit)).toBeDefined();
  });

  // Each piece replays what earlier ones wrote, so on a monotone pace it gets no further than the one before.
  it('never ends a chain that would end within the bound on a pace that never speeds up: every chain of the model, and random slowing ones, bytes and entries in any mix', () => {
    const total = 50e9;
    for (const mbps of [10, 40, 80, 200]) {
      for (const replay of [50, 80, 400]) {
        const rates: ChainRates = { pieceSeconds: 720, writeBytesPerSecond: mbps * 1e6, replayBytesPerSecond: replay * 1e6, maxPieces: 96 };
        const needs = chainPieces(total, rates);
        if (needs === undefined || needs > limit.pieces) continue;
        let written = 0;
        for (let done = 1; done < needs; done++) {
          written += rates.writeBytesPerSecond * (rates.pieceSeconds - written / rates.replayBytesPerSecond);
          expect(chainTooSlow(location, done, { bytes: Math.floor(written), total, written: 0 }, limit), `${mbps}/${replay} MB/s, piece ${done} of ${needs}`).toBeUndefined();
        }
      }
    }
    let seed = 7;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    for (let chain = 0; chain < 500; chain++) {
      // Advances that never grow, scaled so the chain ends at piece `ends` (within the bound).
      const ends = 1 + Math.floor(random() * limit.pieces);
      const advances: number[] = [];
      for (let piece = 0, advance = 1; piece < ends; piece++) advances.push((advance *= 1 - random() * 0.2));
      const sum = advances.reduce((a, b) => a + b, 0);
      let read = 0;
      for (let done = 1; done < ends; done++) {
        read += (advances[done - 1]! / sum) * total;
        expect(chainTooSlow(location, done, { bytes: Math.floor(read), total, written: 0 }, limit), `chain ${chain}, piece ${done} of ${ends}`).toBeUndefined();
      }
      // The same pace of work, each piece's part of it bytes written and the rest entries staged in
      // any mix (tiny files first, or last): the further of the two shares is never under the work's.
      const bytesWork = advances.map((advance) => advance * random());
      const bytesSum = bytesWork.reduce((a, b) => a + b, 0);
      const entriesSum = sum - bytesSum;
      const entries = 1_000_000;
      let bytes = 0;
      let staged = 0;
      for (let done = 1; done < ends; done++) {
        bytes += bytesWork[done - 1]!;
        staged += advances[done - 1]! - bytesWork[done - 1]!;
        const read = { bytes: Math.floor((bytes / bytesSum) * total), total, entries, written: Math.floor((staged / entriesSum) * entries) };
        expect(chainTooSlow(location, done, read, limit), `mixed chain ${chain}, piece ${done} of ${ends}`).toBeUndefined();
      }
    }
  });
});
