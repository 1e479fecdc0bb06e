import { createHook } from 'node:async_hooks';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArchiveLimitError, CorruptArchiveError, UsageError } from '../shared/errors.js';
import { zstdCodec, type ZstdCodec } from '../shared/archive/zstd-codec.js';
import { decompressFrames } from '../shared/archive/zstd-decoder.js';
import { FrameWriter } from '../shared/archive/zstd-encoder.js';
import { skippableFrame } from '../shared/archive/zstd-format.js';
import { compressFrames } from './helpers/zstd.js';
import { cutAt } from './helpers/chunks.js';
import { rawHeader } from './helpers/tar-builder.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const DEFAULT_FRAME_SIZE = 2 * MiB;
const BLOCK_MAXIMUM_SIZE = 128 * KiB;

v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc') as () => void;

/** Bytes held in live ArrayBuffers once garbage is collected. */
function liveArrayBufferBytes(): number {
  // V8 frees dead ArrayBuffers' memory concurrently after a collection; the second one waits
  // for that sweep, so the count no longer includes the garbage.
  collectGarbage();
  collectGarbage();
  return process.memoryUsage().arrayBuffers;
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'zstd-frames-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Deterministic bytes mixing random, text-like, zero and short-pattern runs. */
function mixedData(size: number, seed = 1): Buffer {
  let state = seed >>> 0 || 1;
  const next = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  const text = Buffer.from(
    Array.from({ length: 2000 }, (_, i) => `tenants/t${i % 37}/config/${i}.json {"enabled":true,"n":${i}}\n`).join(''),
  );
  const out = Buffer.alloc(size);
  let at = 0;
  while (at < size) {
    const length = Math.min(size - at, 1 + (next() % (256 * KiB)));
    switch (next() % 4) {
      case 0:
        for (let i = 0; i + 4 <= length; i += 4) out.writeUInt32LE(next(), at + i);
        break;
      case 1:
        for (let i = 0; i < length; i += text.length) text.copy(out, at + i, 0, Math.min(text.length, length - i));
        break;
      case 2:
        break; // zeros
      case 3:
        out.fill(Buffer.from([next() & 0xff, 0x42, 0x17]), at, at + length);
        break;
    }
    at += length;
  }
  return out;
}

async function* chunksOf(chunks: readonly Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const chunk of chunks) yield chunk;
}


function fixedChunks(bytes: Uint8Array, size: number): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += size) pieces.push(bytes.subarray(at, at + size));
  return pieces;
}

/** Cuts `bytes` into pieces of pseudo-random size from 1 to `max` bytes. */
function randomChunks(bytes: Uint8Array, max: number, seed: number): Uint8Array[] {
  let state = seed;
  const pieces: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; ) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    const size = 1 + (state % max);
    pieces.push(bytes.subarray(at, at + size));
    at += size;
  }
  return pieces;
}

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const chunk of source) out.push(chunk);
  return out;
}

async function compressAll(data: Uint8Array[], options?: Parameters<typeof compressFrames>[1]): Promise<Buffer[]> {
  return collect(compressFrames(chunksOf(data), options));
}

async function decompressAll(
  data: Uint8Array[],
  options?: Parameters<typeof decompressFrames>[1],
): Promise<Buffer> {
  return Buffer.concat(await collect(decompressFrames(chunksOf(data), options)));
}

function zstdCli(args: string[], input?: Buffer): Buffer {
  const result = spawnSync('zstd', ['-q', ...args], { input, maxBuffer: 1024 * MiB });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`zstd ${args.join(' ')} failed: ${result.stderr.toString()}`);
  return result.stdout;
}

function shell(command: string): Buffer {
  const result = spawnSync('sh', ['-c', command], { maxBuffer: 64 * MiB });
  if (result.status !== 0) throw new Error(`${command} failed: ${result.stderr.toString()}`);
  return result.stdout;
}

/** Frame_Header_Descriptor facts of the frame starting at byte 0. */
function describeFrame(frame: Buffer): { contentSizeKnown: boolean; checksum: boolean } {
  expect(frame.readUInt32LE(0)).toBe(0xfd2fb528);
  const descriptor = frame[4]!;
  return { contentSizeKnown: descriptor >> 6 !== 0 || (descriptor & 0x20) !== 0, checksum: (descriptor & 0x04) !== 0 };
}

describe('compressFrames → decompressFrames', () => {
  const frameSize = 64 * KiB;

  it.each([0, 1, frameSize - 1, frameSize, frameSize + 1, 3 * frameSize + 17])(
    'round-trips %i bytes in frames of exactly frameSize bytes',
    async (size) => {
      const data = mixedData(size, size + 7);
      const expectedLengths = Array.from({ length: Math.ceil(size / frameSize) }, (_, i) =>
        Math.min(frameSize, size - i * frameSize),
      );
      for (const pieceSize of [size, frameSize - 1, frameSize + 1, 1000]) {
        const frames = await compressAll(fixedChunks(data, pieceSize), { frameSize });

        const frameContents = await Promise.all(frames.map((frame) => decompressAll([frame])));
        expect(frameContents.map((content) => content.length)).toEqual(expectedLengths);
        expect((await decompressAll(frames)).equals(data)).toBe(true);
      }
    },
  );

  it('round-trips ~20 MiB of mixed data fed in random chunks, a whole frame per native decode', async () => {
    const data = mixedData(20 * MiB + 12345, 42);
    const frames = await compressAll(randomChunks(data, 300 * KiB, 1));
    expect(frames).toHaveLength(11);
    const stream = Buffer.concat(frames);
    expect(stream.length).toBeLessThan(data.length);

    const decoded = await collect(decompressFrames(chunksOf(randomChunks(stream, 100 * KiB, 2))));
    expect(decoded.slice(0, 5).map((chunk) => chunk.length)).toEqual(Array(5).fill(DEFAULT_FRAME_SIZE));
    expect(Buffer.concat(decoded).equals(data)).toBe(true);
  });

  it('round-trips whatever the chunk boundaries, frame size, concurrency and decode path', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 6000 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 256, max: 20_000 }),
        fc.array(fc.nat({ max: 60_000 }), { maxLength: 40 }),
        fc.array(fc.nat({ max: 20_000 }), { maxLength: 40 }),
        fc.integer({ min: 1, max: 4 }),
        fc.constantFrom(1, 2000, 32 * MiB),
        async (unit, repeats, frameSize, inputCuts, streamCuts, concurrency, maxNativeFrameBytes) => {
          const data = Buffer.concat(Array(repeats).fill(unit) as Uint8Array[]);
          const stream = Buffer.concat(await compressAll(cutAt(data, inputCuts), { frameSize, concurrency }));
          const decoded = await decompressAll(cutAt(stream, streamCuts), { concurrency, maxNativeFrameBytes });
          expect(decoded.equals(data)).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('copies frames that span input chunks into a few reused buffers, not one per frame', async () => {
    const data = randomBytes(40 * 256 * KiB);
    const stream = Buffer.concat(await compressAll(fixedChunks(data, 256 * KiB), { frameSize: 256 * KiB }));
    // 64 KiB input pieces, as an age file's plaintext arrives: every frame spans several.
    const pieces = fixedChunks(stream, 64 * KiB).map((piece) => Buffer.from(piece));
    const real = zstdCodec();
    const copies: ArrayBufferLike[] = [];
    const codec: ZstdCodec = {
      ...real,
      name: real.name,
      decodeWholeFrame: (frame, bound) => {
        if (!pieces.some((piece) => piece.buffer === frame.buffer)) copies.push(frame.buffer);
        return real.decodeWholeFrame(frame, bound);
      },
    };
    const decoded = await collect(decompressFrames(chunksOf(pieces), { codec, concurrency: 3 }));
    expect(Buffer.concat(decoded).equals(data)).toBe(true);
    expect(copies).toHaveLength(40);
    // At most one per frame decoding at once, and one being filled.
    expect(new Set(copies).size).toBeLessThanOrEqual(4);
  });

  it('reads input only as frames are needed, and closes it when the consumer stops', async () => {
    const frameSize = 64 * KiB;
    let pulled = 0;
    let closed = false;
    async function* endless(): AsyncGenerator<Uint8Array> {
      try {
        for (;;) {
          pulled += 4 * KiB;
          yield mixedData(4 * KiB, pulled);
        }
      } finally {
        closed = true;
      }
    }
    for await (const frame of compressFrames(endless(), { frameSize, concurrency: 2 })) {
      expect(frame.length).toBeGreaterThan(0);
      break;
    }
    expect(pulled).toBeLessThanOrEqual(4 * frameSize);
    expect(closed).toBe(true);
  });

  it('starts the first frame small and grows it, cutting the same frames as ever', async () => {
    const data = randomBytes(600 * KiB);
    const real = zstdCodec();
    const inputs: number[] = [];
    const codec: ZstdCodec = {
      ...real,
      name: real.name,
      compressFrame: (frame, level) => {
        inputs.push(frame.length);
        return real.compressFrame(frame, level);
      },
    };
    const writer = new FrameWriter({ frameSize: 256 * KiB, codec, concurrency: 2 });
    const frames = collect(writer.frames());
    await writer.write(data.subarray(0, 1000));
    // A small archive needs no more than the first 64 KiB.
    expect(writer.spaceFor(1)?.length).toBe(64 * KiB);
    let at = 1000;
    for (const step of [5000, 70 * KiB, 1, 200 * KiB]) {
      await writer.write(data.subarray(at, at + step));
      at += step;
    }
    await writer.readInto(data.length - at, (target, offset, length) => {
      data.copy(target, offset, at, at + length);
      at += length;
      return length;
    });
    await writer.close();
    expect(inputs).toEqual([256 * KiB, 256 * KiB, 88 * KiB]);
    expect(Buffer.concat(await collect(decompressFrames(chunksOf(await frames)))).equals(data)).toBe(true);
  });

  it('rejects nonsensical options with UsageError', async () => {
    await expect(compressAll([Buffer.from('x')], { frameSize: 0 })).rejects.toThrow(UsageError);
    await expect(compressAll([Buffer.from('x')], { concurrency: 1.5 })).rejects.toThrow(UsageError);
    await expect(decompressAll([], { maxNativeFrameBytes: -1 })).rejects.toThrow(UsageError);
    expect(() => skippableFrame(Buffer.alloc(1), 16)).toThrow(UsageError);
  });
});

describe('interoperability with the zstd CLI', () => {
  it('zstd -dc decodes our concatenated frames, skipping our skippable frames', async () => {
    const data = mixedData(6 * MiB, 3);
    const frames = await compressAll([data], { frameSize: 1 * MiB });
    expect(frames.length).toBe(6);
    const stream = Buffer.concat([
      skippableFrame(Buffer.from('{"manifest":1}')),
      ...frames.slice(0, 3),
      skippableFrame(Buffer.alloc(1000, 9), 15),
      ...frames.slice(3),
    ]);
    expect(zstdCli(['-dc'], stream).equals(data)).toBe(true);
  });

  it('streams a single frame of unknown size larger than maxNativeFrameBytes (tar | zstd)', async () => {
    const data = mixedData(40 * MiB, 5);
    const stream = zstdCli(['-c'], data);
    expect(describeFrame(stream)).toEqual({ contentSizeKnown: false, checksum: true });

    const decoded = await collect(decompressFrames(chunksOf(randomChunks(stream, 256 * KiB, 3))));
    expect(Math.max(...decoded.map((chunk) => chunk.length))).toBeLessThanOrEqual(BLOCK_MAXIMUM_SIZE);
    expect(Buffer.concat(decoded).equals(data)).toBe(true);
  });

  // A file's size is known, so these frames carry it; above 8 MiB it routes them to fzstd.
  it.each([
    { args: ['--content-size'], size: 3 * MiB, checksum: true },
    { args: ['--content-size', '--no-check'], size: 3 * MiB, checksum: false },
    { args: ['--content-size'], size: 34 * MiB, checksum: true },
    { args: ['--no-check'], size: 34 * MiB, checksum: false },
  ])('decodes zstd $args output of a $size-byte file', async ({ args, size, checksum }) => {
    const data = mixedData(size, size);
    const file = path.join(tmp, `input-${size}-${args.join('')}`);
    await writeFile(file, data);
    const stream = zstdCli(['-c', ...args, file]);
    expect(describeFrame(stream)).toEqual({ contentSizeKnown: true, checksum });

    const decoded = await collect(decompressFrames(chunksOf(randomChunks(stream, 128 * KiB, size))));
    const largest = Math.max(...decoded.map((chunk) => chunk.length));
    expect(largest).toBe(size > 8 * MiB ? BLOCK_MAXIMUM_SIZE : size);
    expect(Buffer.concat(decoded).equals(data)).toBe(true);
  });

  it('decodes `cat a.zst b.zst` mixed with our frames', async () => {
    const a = mixedData(700 * KiB, 11);
    const b = mixedData(300 * KiB, 12);
    const c = mixedData(500 * KiB, 13);
    const stream = Buffer.concat([
      zstdCli(['-c', '-1'], a),
      zstdCli(['-c', '-19', '--no-check'], b),
      ...(await compressAll([c], { frameSize: 128 * KiB })),
    ]);
    const expected = Buffer.concat([a, b, c]);
    expect((await decompressAll(randomChunks(stream, 50 * KiB, 4))).equals(expected)).toBe(true);
    expect((await decompressAll([stream], { maxNativeFrameBytes: 64 * KiB })).equals(expected)).toBe(true);
  });

  it('decodes a CLI stream whatever the chunk boundaries, on either path', async () => {
    const data = mixedData(900 * KiB, 21);
    const stream = Buffer.concat([zstdCli(['-c'], data.subarray(0, 600 * KiB)), zstdCli(['-c', '--no-check'], data.subarray(600 * KiB))]);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat({ max: stream.length }), { maxLength: 60 }),
        fc.constantFrom(1, 200 * KiB, 32 * MiB),
        async (cuts, maxNativeFrameBytes) => {
          const decoded = await decompressAll(cutAt(stream, cuts), { maxNativeFrameBytes });
          expect(decoded.equals(data)).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('skippable frames', () => {
  it('are laid out as magic + nibble, 4-byte LE length, payload', () => {
    const frame = skippableFrame(Buffer.from('abc'), 0xa);
    expect(frame.toString('hex')).toBe('5a2a4d1803000000616263');
  });

  it('are reported in stream order and skipped', async () => {
    const part1 = mixedData(300 * KiB, 31);
    const part2 = mixedData(200 * KiB, 32);
    const stream = Buffer.concat([
      skippableFrame(Buffer.from('header'), 0),
      ...(await compressAll([part1], { frameSize: 64 * KiB })),
      skippableFrame(Buffer.from('middle'), 15),
      ...(await compressAll([part2], { frameSize: 64 * KiB })),
      skippableFrame(Buffer.alloc(0), 7),
    ]);
    for (const maxNativeFrameBytes of [32 * MiB, 64]) {
      const seen: [string, number, number][] = [];
      let decodedBytes = 0;
      const source = decompressFrames(chunksOf(randomChunks(stream, 5000, 5)), {
        maxNativeFrameBytes,
        onSkippableFrame: (payload, nibble) => seen.push([payload.toString(), nibble, decodedBytes]),
      });
      const decoded: Buffer[] = [];
      for await (const chunk of source) {
        decoded.push(chunk);
        decodedBytes += chunk.length;
      }
      expect(seen).toEqual([
        ['header', 0, 0],
        ['middle', 15, part1.length],
        ['', 7, part1.length + part2.length],
      ]);
      expect(Buffer.concat(decoded).equals(Buffer.concat([part1, part2]))).toBe(true);
    }
    expect((await decompressAll(randomChunks(stream, 3, 6))).equals(Buffer.concat([part1, part2]))).toBe(true);
  });

  it('are refused above maxSkippableBytes only when their payload is asked for', async () => {
    const data = mixedData(10 * KiB, 41);
    const stream = Buffer.concat([skippableFrame(Buffer.alloc(100 * KiB), 3), ...(await compressAll([data]))]);
    expect((await decompressAll(randomChunks(stream, 7000, 7))).equals(data)).toBe(true);
    await expect(decompressAll([stream], { onSkippableFrame: () => {} })).rejects.toThrow(/holds 102400 bytes, more than the 65536-byte limit/);
    await expect(decompressAll([stream], { onSkippableFrame: () => {}, maxSkippableBytes: 100 * KiB })).resolves.toEqual(data);
    // Frames of other nibbles than those asked for are skipped unread, however large.
    const seen: number[] = [];
    const mixed = Buffer.concat([skippableFrame(Buffer.from('mark'), 12), stream]);
    const decoded = await decompressAll([mixed], { onSkippableFrame: (_payload, nibble) => seen.push(nibble), skippableNibbles: [12] });
    expect(decoded.equals(data)).toBe(true);
    expect(seen).toEqual([12]);
  });

  it('passes over 200,000 in one chunk (a 1.6 MB stream of them) without a call per frame (was: Maximum call stack size exceeded)', async () => {
    const data = mixedData(10 * KiB, 43);
    const stream = Buffer.concat([Buffer.concat(Array.from({ length: 200_000 }, () => skippableFrame(Buffer.alloc(0), 1))), ...(await compressAll([data]))]);
    expect((await decompressAll([stream])).equals(data)).toBe(true);
  });

  it('hands over the ones asked for chunk by chunk, before the next chunk is read, not all queued at once', async () => {
    const data = mixedData(10 * KiB, 47);
    const frames = Buffer.concat(Array.from({ length: 100_000 }, () => skippableFrame(Buffer.from('x'), 13)));
    let seen = 0;
    const seenBeforeRead: number[] = [];
    async function* source(): AsyncGenerator<Buffer> {
      for (const chunk of [frames, frames, ...(await compressAll([data]))]) {
        seenBeforeRead.push(seen);
        yield chunk;
      }
    }
    const decoded = await collect(decompressFrames(source(), { skippableNibbles: [13], onSkippableFrame: () => seen++ }));
    expect(Buffer.concat(decoded).equals(data)).toBe(true);
    expect(seenBeforeRead.slice(0, 3)).toEqual([0, 100_000, 200_000]);
  });
});

describe('empty frames', () => {
  /** The codec of this process, counting the frames handed to it whole. */
  function countingCodec(): { codec: ZstdCodec; wholeFrames: () => number } {
    const inner = zstdCodec();
    let calls = 0;
    const codec: ZstdCodec = {
      name: inner.name,
      compressFrame: (data, level) => inner.compressFrame(data, level),
      decodeWholeFrame: (frame, bound) => {
        calls++;
        return inner.decodeWholeFrame(frame, bound);
      },
      streamingDecoder: (frame) => inner.streamingDecoder(frame),
    };
    return { codec, wholeFrames: () => calls };
  }

  interface EmptyLooking {
    /** Single segment with a 1-byte content size, or a 1 KiB window and a 2-byte one (256 or more), or none. */
    contentSize: 'none' | 0 | 3 | 'two-byte';
    /** Raw or RLE, all of 0 bytes. */
    blocks: ('raw' | 'rle')[];
    checksum: 'none' | 'of nothing' | 'wrong';
  }

  /** A frame whose blocks decode to nothing, whatever its header says. */
  function emptyLooking({ contentSize, blocks, checksum }: EmptyLooking): Buffer {
    const descriptor = (checksum === 'none' ? 0 : 0x04) | (contentSize === 'none' ? 0 : contentSize === 'two-byte' ? 0x40 : 0x20);
    const header = [0x28, 0xb5, 0x2f, 0xfd, descriptor];
    if (contentSize === 'none') header.push(0x00);
    else if (contentSize === 'two-byte') header.push(0x00, 0x05, 0x00);
    else header.push(contentSize);
    const body = blocks.flatMap((kind, i) => {
      const blockHeader = ((kind === 'rle' ? 1 : 0) << 1) | (i === blocks.length - 1 ? 1 : 0);
      return kind === 'rle' ? [blockHeader, 0, 0, 0x61] : [blockHeader, 0, 0];
    });
    const trailer = checksum === 'none' ? [] : checksum === 'of nothing' ? [0x99, 0xe9, 0xd8, 0x51] : [0x98, 0xe9, 0xd8, 0x51];
    return Buffer.from([...header, ...body, ...trailer]);
  }

  it('decodes what `zstd` writes for no input, a million in all, without a codec call (was ~40 µs a frame: 36-56 s)', async () => {
    const ofNothing = zstdCli(['-c'], Buffer.alloc(0));
    expect(describeFrame(ofNothing).checksum).toBe(true);
    const withoutChecksum = zstdCli(['-c', '--no-check'], Buffer.alloc(0));
    const data = mixedData(10 * KiB, 61);
    const { codec, wholeFrames } = countingCodec();
    const oneMillion = [ofNothing, withoutChecksum].flatMap((frame) => Array.from({ length: 5 }, () => Buffer.concat(Array.from({ length: 100_000 }, () => frame))));
    const decoded = await decompressAll([...oneMillion, ...(await compressAll([data], { frameSize: 8 * KiB }))], { codec });
    expect(decoded.equals(data)).toBe(true);
    expect(wholeFrames()).toBe(2);
  });

  it('go to the codec when they declare content, or carry a checksum that is not the checksum of nothing, and are refused as before', async () => {
    const cases: [EmptyLooking, RegExp][] = [
      [{ contentSize: 3, blocks: ['raw'], checksum: 'none' }, /corrupt zstd frame at byte 0/],
      [{ contentSize: 'two-byte', blocks: ['rle'], checksum: 'of nothing' }, /corrupt zstd frame at byte 0/],
      [{ contentSize: 0, blocks: ['raw', 'rle'], checksum: 'wrong' }, /corrupt zstd frame at byte 0: content checksum mismatch/],
      [{ contentSize: 'none', blocks: ['raw'], checksum: 'wrong' }, /corrupt zstd frame at byte 0: content checksum mismatch/],
    ];
    for (const [frame, refusal] of cases) {
      const { codec, wholeFrames } = countingCodec();
      const decoding = decompressAll([emptyLooking(frame)], { codec });
      await expect(decoding).rejects.toThrow(CorruptArchiveError);
      await expect(decoding).rejects.toThrow(refusal);
      expect(wholeFrames()).toBe(1);
    }
  });

  it('get the verdict `zstd -t` gives, whatever the header encodes around no content (sizes, windows, dictionary ids, flags)', async () => {
    const lastRaw = [0x01, 0, 0];
    const ofNothing = [0x99, 0xe9, 0xd8, 0x51];
    const magic = [0x28, 0xb5, 0x2f, 0xfd];
    const headers: Record<string, number[]> = {
      'single segment, 1-byte content size 0': [0x20, 0],
      'single segment, 4-byte content size 0': [0xa0, 0, 0, 0, 0],
      'single segment, 8-byte content size 0': [0xe0, 0, 0, 0, 0, 0, 0, 0, 0],
      'single segment, content size 5': [0x20, 5],
      'single segment, 2-byte content size (256)': [0x60, 0, 0],
      'window, 4-byte content size 0': [0x80, 0x00, 0, 0, 0, 0],
      'window, 8-byte content size 0': [0xc0, 0x00, 0, 0, 0, 0, 0, 0, 0, 0],
      'a 128 MiB window': [0x00, 17 << 3],
      'a 240 MiB window': [0x00, (17 << 3) | 7],
      'a 2 GiB window': [0x00, 21 << 3],
      'the largest window descriptor': [0x00, 0xff],
      '1-byte dictionary id 0': [0x01, 0x00, 0],
      '4-byte dictionary id 0': [0x03, 0x00, 0, 0, 0, 0],
      '1-byte dictionary id 1': [0x01, 0x00, 1],
      '2-byte dictionary id 1': [0x02, 0x00, 1, 0],
      '4-byte dictionary id 2^31': [0x03, 0x00, 0, 0, 0, 0x80],
      'the unused bit set': [0x10, 0x00],
      'the reserved bit set': [0x08, 0x00],
    };
    const verdicts: string[] = [];
    const expected: string[] = [];
    for (const [name, header] of Object.entries(headers)) {
      for (const checksum of [false, true]) {
        const descriptor = header[0]! | (checksum ? 0x04 : 0);
        const frame = Buffer.from([...magic, descriptor, ...header.slice(1), ...lastRaw, ...(checksum ? ofNothing : [])]);
        const libzstd = spawnSync('zstd', ['-t', '-q'], { input: frame });
        expected.push(`${name}${checksum ? ', checksum' : ''}: ${libzstd.status === 0 ? 'empty' : 'refused'}`);
        const ours = await decompressAll([frame]).then(
          (decoded) => (decoded.length === 0 ? 'empty' : 'decoded'),
          (error: unknown) => (error instanceof CorruptArchiveError || error instanceof ArchiveLimitError ? 'refused' : String(error)),
        );
        verdicts.push(`${name}${checksum ? ', checksum' : ''}: ${ours}`);
      }
    }
    expect(verdicts).toEqual(expected);
    expect(expected.filter((verdict) => verdict.endsWith('empty')).length).toBe(18);
  });

  it('decode as each frame handed to the codec on its own would, in any sequence with real and skippable frames, fed in any chunks', async () => {
    const reference = zstdCodec();
    const real = [zstdCli(['-c'], Buffer.from('a tiny frame\n')), ...(await compressAll([mixedData(3 * KiB, 67)]))];
    const anEmptyLooking = fc.record<EmptyLooking>({
      contentSize: fc.constantFrom('none' as const, 0 as const, 3 as const, 'two-byte' as const),
      blocks: fc.array(fc.constantFrom('raw' as const, 'rle' as const), { minLength: 1, maxLength: 3 }),
      checksum: fc.constantFrom('none' as const, 'of nothing' as const, 'wrong' as const),
    });
    const aFrame = fc.oneof(
      { arbitrary: anEmptyLooking.map(emptyLooking), weight: 4 },
      { arbitrary: fc.constantFrom(...real), weight: 1 },
      { arbitrary: fc.constant(skippableFrame(Buffer.from('s'), 2)), weight: 1 },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(aFrame, { maxLength: 12 }), fc.integer({ min: 1, max: 40 }), async (frames, chunkSize) => {
        // The old way: every frame through the codec (skippable ones passed over).
        let expected: Buffer | 'refused';
        const pieces: Buffer[] = [];
        try {
          for (const frame of frames) {
            if (frame.readUInt32LE(0) !== 0xfd2fb528) continue;
            pieces.push(await reference.decodeWholeFrame(frame, 64 * KiB));
          }
          expected = Buffer.concat(pieces);
        } catch {
          expected = 'refused';
        }
        const { codec, wholeFrames } = countingCodec();
        const actual = await decompressAll(fixedChunks(Buffer.concat(frames), chunkSize), { codec }).catch((error: unknown) => {
          expect(error).toBeInstanceOf(CorruptArchiveError);
          return 'refused' as const;
        });
        expect(actual).toEqual(expected);
        if (actual !== 'refused') {
          const needingTheCodec = frames.filter((frame) => real.includes(frame)).length;
          expect(wholeFrames()).toBe(needingTheCodec);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('tiny frames', () => {
  /** `zstd` CLI frames, most without a content size: bounded by their 128 KiB blocks, whatever they hold. */
  function cliFrames(): { frame: Buffer; content: Buffer }[] {
    return [0, 1, 30, 200, 5 * KiB, 16 * KiB, 16 * KiB + 1, 40 * KiB, 100 * KiB].flatMap((size, i) => {
      const content = i % 2 === 0 ? randomBytes(size) : mixedData(size, 71 + i);
      return [
        { frame: zstdCli(['-c', '--no-content-size'], content), content },
        { frame: zstdCli(['-c', '--no-content-size', '--no-check'], content), content },
        { frame: zstdCli(['-c'], content), content },
      ];
    });
  }

  it('decode to what they hold, small and large in any order, none overwritten by the frames after it', async () => {
    const pool = cliFrames();
    expect(pool.filter(({ frame }) => !describeFrame(frame).contentSizeKnown).length).toBeGreaterThanOrEqual(18);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom(...pool), { maxLength: 30 }), fc.integer({ min: 1, max: 4 }), async (frames, concurrency) => {
        // Every output is kept until the end: one a later frame wrote over would differ.
        const outputs = await collect(decompressFrames(chunksOf([Buffer.concat(frames.map(({ frame }) => frame))]), { concurrency }));
        expect(Buffer.concat(outputs).equals(Buffer.concat(frames.map(({ content }) => content)))).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it.runIf(zstdCodec().name === 'node:zlib')('keep their zlib decoders: a thousand frames of 30 bytes open a few, not one each (was ~40 µs a frame)', async () => {
    const frame = zstdCli(['-c'], Buffer.from('a tiny frame of thirty bytes.\n'));
    let decoders = 0;
    const hook = createHook({
      init: (_id, type) => {
        if (type === 'ZLIB') decoders++;
      },
    });
    hook.enable();
    try {
      const decoded = await decompressAll([Buffer.concat(Array.from({ length: 1000 }, () => frame))]);
      expect(decoded.length).toBe(30_000);
    } finally {
      hook.disable();
    }
    expect(decoders).toBeLessThanOrEqual(8);
  });
});

describe('the abort signal', () => {
  it('is checked frame by frame: a chunk of 100,000 empty frames (seconds of decoding that yield nothing) stops at once', async () => {
    // Single segment, a 1-byte content size of 0, one empty raw block that is the last.
    const empty = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x00, 0x01, 0x00, 0x00]);
    const controller = new AbortController();
    let pulled = 0;
    async function* source(): AsyncGenerator<Buffer> {
      controller.abort(new UsageError('stop'));
      pulled++;
      yield Buffer.concat(Array.from({ length: 100_000 }, () => empty));
      pulled++;
      yield* await compressAll([mixedData(10 * KiB, 53)]);
    }
    await expect(collect(decompressFrames(source(), { signal: controller.signal }))).rejects.toThrow('stop');
    expect(pulled).toBe(1);
  });

  it('is acted on from a timer or a signal handler while a chunk of skippable frames is handed over (no await between them: the event loop gets a turn every 50 ms)', async () => {
    // As read-archive.ts asks for footers: a million junk ones in a chunk kept SIGTERM waiting 11-17 s.
    const frames = 1000;
    const stream = Buffer.concat([
      ...Array.from({ length: frames }, () => skippableFrame(Buffer.from('x'), 13)),
      ...(await compressAll([mixedData(10 * KiB, 57)])),
    ]);
    const controller = new AbortController();
    setTimeout(() => controller.abort(new UsageError('stop')), 0);
    let seen = 0;
    const decoding = collect(
      decompressFrames(chunksOf([stream]), {
        signal: controller.signal,
        skippableNibbles: [13],
        onSkippableFrame: () => {
          seen++;
          // A millisecond each: the chunk takes a second at least, however fast the machine.
          for (const until = performance.now() + 1; performance.now() < until; );
        },
      }),
    );
    await expect(decoding).rejects.toThrow('stop');
    expect(seen).toBeLessThan(frames);
  });
});

describe('chunk boundaries', () => {
  it('decode the same bytes, and hand over skippable frames at the same places, fed one byte at a time, in chunks of 1 to 32 bytes, or whole', async () => {
    // Every kind of frame: ours (several, small), a `zstd` CLI frame with a checksum, empty
    // frames, skippable frames asked for (first, between frames, back to back, last) and one
    // passed over unread with a payload, so that every boundary falls inside every header,
    // block, checksum and payload.
    const parts = [mixedData(900, 61), mixedData(700, 62), mixedData(600, 63)];
    const empty = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x00, 0x01, 0x00, 0x00]);
    const stream = Buffer.concat([
      skippableFrame(Buffer.from('marker'), 5),
      ...(await compressAll([parts[0]!], { frameSize: 256 })),
      skippableFrame(Buffer.from('unread'.repeat(9)), 3),
      skippableFrame(Buffer.from('a'), 14),
      skippableFrame(Buffer.alloc(0), 14),
      zstdCli(['-c'], parts[1]!),
      empty,
      empty,
      skippableFrame(Buffer.from('b'), 14),
      ...(await compressAll([parts[2]!], { frameSize: 300 })),
      skippableFrame(Buffer.from('footer'), 15),
    ]);
    const data = Buffer.concat(parts);
    const expected = [
      ['marker', 0],
      ['a', parts[0]!.length],
      ['', parts[0]!.length],
      ['b', parts[0]!.length + parts[1]!.length],
      ['footer', data.length],
    ];
    for (const maxNativeFrameBytes of [32 * MiB, 200]) {
      for (const concurrency of [1, 3]) {
        for (const size of [...Array.from({ length: 32 }, (_, i) => i + 1), 64, 1000, stream.length]) {
          const seen: [string, number][] = [];
          let decodedBytes = 0;
          const decoded: Buffer[] = [];
          const frames = decompressFrames(chunksOf(fixedChunks(stream, size)), {
            concurrency,
            maxNativeFrameBytes,
            skippableNibbles: [5, 14, 15],
            onSkippableFrame: (payload) => void seen.push([payload.toString(), decodedBytes]),
          });
          for await (const chunk of frames) {
            decoded.push(chunk);
            decodedBytes += chunk.length;
          }
          expect({ size, maxNativeFrameBytes, concurrency, same: Buffer.concat(decoded).equals(data) }).toEqual({ size, maxNativeFrameBytes, concurrency, same: true });
          expect(seen).toEqual(expected);
        }
      }
    }
  });
});

describe('damaged input', () => {
  it('is truncated at every cut point inside a frame, on either path', async () => {
    const parts = [
      ...(await compressAll([mixedData(2500, 51)], { frameSize: 1000 })),
      skippableFrame(Buffer.from('note')),
      zstdCli(['-c'], mixedData(600, 52)),
    ];
    const stream = Buffer.concat(parts);
    const boundaries = new Set(parts.map((_, i) => Buffer.concat(parts.slice(0, i)).length));
    expect(boundaries.size).toBe(5);
    for (const maxNativeFrameBytes of [32 * MiB, 1]) {
      for (let cut = 1; cut < stream.length; cut++) {
        const decoding = decompressAll(cutAt(stream.subarray(0, cut), [cut >> 1]), {
          maxNativeFrameBytes,
          onSkippableFrame: maxNativeFrameBytes === 1 ? undefined : () => {},
        });
        if (boundaries.has(cut)) await expect(decoding).resolves.toBeInstanceOf(Buffer);
        else await expect(decoding).rejects.toThrow(/^archive is truncated: the zstd stream ends inside a frame$/);
      }
    }
  });

  it('refuses garbage with the offset of the bad frame', async () => {
    const frame = (await compressAll([Buffer.from('hello tenant')]))[0]!;
    await expect(decompressAll([Buffer.from('this is not zstd at all')])).rejects.toThrow(
      // At byte 0, what to give instead: it said only "bad frame magic at byte 0" of a text file.
      new CorruptArchiveError('not a zstd stream: bad frame magic at byte 0: it is no archive tenants backup wrote, nor a tar compressed with zstd: give the path of one (tenants backups NAME --in DIR lists those in a directory)'),
    );
    await expect(decompressAll([frame, Buffer.alloc(16, 0xee)])).rejects.toThrow(
      `not a zstd stream: bad frame magic at byte ${frame.length}`,
    );
    await expect(decompressAll([frame, frame.subarray(0, 3), frame.subarray(3)])).resolves.toEqual(
      Buffer.from('hello tenanthello tenant'),
    );
  });

  it('names the format of a file that is another kind of archive, and how to make one restore reads', async () => {
    const tar = Buffer.concat([rawHeader({ name: 'tenants/acme/config.json', typeflag: '0', size: 0 }), Buffer.alloc(1024)]);
    const cases: [string, Buffer, RegExp][] = [
      ['gzip', gzipSync(tar), /^not a zstd stream: it is gzip-compressed \(a \.tar\.gz\?\): recompress it with gzip -dc FILE \| zstd -o NAME\.tar\.zst$/],
      ['bzip2', Buffer.from('BZh91AY&SY'), /^not a zstd stream: it is bzip2-compressed: recompress it with bzip2 -dc FILE/],
      ['xz', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, 0x04]), /^not a zstd stream: it is xz-compressed: recompress it with xz -dc FILE/],
      ['zip', Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(60)]), /^not a zstd stream: it is a ZIP archive: give a tar of tenants\/NAME\/ compressed with zstd/],
      ['tar', tar, /^not a zstd stream: it is an uncompressed tar: compress it with zstd FILE -o NAME\.tar\.zst$/],
    ];
    for (const [format, bytes, message] of cases) {
      await expect(decompressAll([bytes]), format).rejects.toThrow(message);
      await expect(decompressAll([bytes]), format).rejects.toBeInstanceOf(CorruptArchiveError);
    }
    // Only the stream's start is taken for another format: after a frame, it is damage.
    const frame = (await compressAll([Buffer.from('hello tenant')]))[0]!;
    await expect(decompressAll([frame, gzipSync(tar)])).rejects.toThrow(`not a zstd stream: bad frame magic at byte ${frame.length}`);
  });

  /** A frame with no content size or checksum, a window descriptor and one block. */
  function handMadeFrame(blockHeader: number, body: Buffer, descriptor = 0x00, windowDescriptor = 0x58): Buffer {
    const header = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, descriptor, windowDescriptor, 0, 0, 0]);
    header.writeUIntLE(blockHeader, 6, 3);
    return Buffer.concat([header, body]);
  }
  const LAST = 1;
  const raw = (size: number): number => (size << 3) | (0 << 1) | LAST;

  it.each([
    ['reserved block type', handMadeFrame((3 << 1) | LAST, Buffer.alloc(4)), /reserved block type at byte 6/],
    ['reserved header bit', handMadeFrame(raw(0), Buffer.alloc(0), 0x08), /reserved bit set in the frame header at byte 0/],
    ['block over 128 KiB', handMadeFrame(raw(BLOCK_MAXIMUM_SIZE + 1), Buffer.alloc(BLOCK_MAXIMUM_SIZE + 1)), /exceeds the 128 KiB maximum/],
    ['dictionary frame', Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x01, 0x58, 0x07, raw(0), 0, 0]), /needs dictionary 7; archives never use one: decompress it with zstd -dc -D DICTIONARY FILE and compress that again/],
  ])('refuses a %s as corrupt', async (_, stream, message) => {
    const decoding = decompressAll([stream]);
    await expect(decoding).rejects.toThrow(CorruptArchiveError);
    await expect(decoding).rejects.toThrow(message);
  });

  it('refuses a frame whose content does not match its declared size, on either path', async () => {
    // Single-segment frame declaring 5 bytes (1-byte field) holding 3.
    const short = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x20, 5, raw(3), 0, 0, 0x61, 0x62, 0x63]);
    // Declares 2^32 bytes (8-byte field) and holds none: libzstd lets this one through.
    const huge = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xc0, 0x58, 0, 0, 0, 0, 1, 0, 0, 0, raw(0), 0, 0]);
    for (const maxNativeFrameBytes of [32 * MiB, 1]) {
      await expect(decompressAll([short], { maxNativeFrameBytes })).rejects.toThrow(CorruptArchiveError);
    }
    for (const maxNativeFrameBytes of [32 * MiB, 2 ** 33]) {
      await expect(decompressAll([huge], { maxNativeFrameBytes })).rejects.toThrow(
        'declares 4294967296 bytes of content but decodes to 0',
      );
    }
  });

  it('refuses a frame that holds more than it declares, decoded whole however many blocks it has', async () => {
    // 200 KiB in two blocks: 256 KiB by its blocks' bound, over the limit; its declared size decides.
    const data = mixedData(200 * KiB, 61);
    const file = path.join(tmp, 'declared');
    await writeFile(file, data); // read from a file, zstd knows and records the size
    const frame = zstdCli(['-c', '--no-check', file]);
    expect((await decompressAll([frame], { maxNativeFrameBytes: 200 * KiB })).equals(data)).toBe(true);
    const understated = withDeclaredContentSize(frame, 100 * KiB);
    for (const maxNativeFrameBytes of [200 * KiB, 1]) {
      await expect(decompressAll([understated], { maxNativeFrameBytes })).rejects.toThrow(CorruptArchiveError);
    }
  });

  /** `frame` (whose header has a 2-, 4- or 8-byte content size field) declaring `size` bytes of content. */
  function withDeclaredContentSize(frame: Buffer, size: number): Buffer {
    const descriptor = frame[4]!;
    const fieldBytes = [0, 2, 4, 8][descriptor >> 6]!;
    if (fieldBytes === 0) throw new Error('the frame has no content size field of 2 bytes or more');
    const at = 5 + ((descriptor & 0x20) === 0 ? 1 : 0) + [0, 1, 2, 4][descriptor & 0x03]!;
    const patched = Buffer.from(frame);
    if (fieldBytes === 2) patched.writeUInt16LE(size - 256, at);
    else patched.writeUIntLE(size, at, Math.min(fieldBytes, 6));
    return patched;
  }

  it('refuses a window larger than 128 MiB as over the limit', async () => {
    const stream = handMadeFrame(raw(0), Buffer.alloc(0), 0x00, 0xf8);
    await expect(decompressAll([stream])).rejects.toThrow(ArchiveLimitError);
    await expect(decompressAll([stream])).rejects.toThrow(/MiB limit: recompress it with zstd -dc --long=31 FILE \| zstd -o NEW.tar.zst$/);
  });

  it('wraps decoder errors in CorruptArchiveError with the cause, on either path', async () => {
    const stream = zstdCli(['-c'], Buffer.from('tenants/acme/config.json {"enabled":true}\n'.repeat(5000)));
    const checksumBroken = Buffer.from(stream);
    checksumBroken[checksumBroken.length - 1]! ^= 0xff;
    const blockBroken = Buffer.from(stream);
    const firstBlock = 6; // 4-byte magic, descriptor, window descriptor
    expect((blockBroken.readUIntLE(firstBlock, 3) >> 1) & 3).toBe(2); // compressed
    blockBroken[firstBlock + 3] = 0xff; // literals: "reuse the previous Huffman table", there is none

    for (const [broken, maxNativeFrameBytes] of [
      [checksumBroken, 32 * MiB],
      [blockBroken, 32 * MiB],
      [blockBroken, 1],
    ] as const) {
      const error = await decompressAll([broken], { maxNativeFrameBytes }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CorruptArchiveError);
      expect((error as Error).message).toMatch(/^corrupt zstd frame at byte 0/);
      expect((error as Error).cause).toBeInstanceOf(Error);
    }
  });

  // fzstd, which decodes frames too large to decode whole, steps over the checksum unread.
  it('verifies the content checksum of every frame that has one, on either path', async () => {
    const random = randomBytes(300 * KiB); // stored in raw blocks: a flipped byte still decodes
    const data = Buffer.concat([mixedData(200 * KiB, 61), random, mixedData(100 * KiB, 62)]);
    const stream = zstdCli(['-c'], data);
    expect(describeFrame(stream).checksum).toBe(true);
    const contentFlipped = Buffer.from(stream);
    const inRawBlock = contentFlipped.indexOf(random.subarray(100 * KiB, 100 * KiB + 64));
    expect(inRawBlock).toBeGreaterThan(0);
    contentFlipped[inRawBlock + 10]! ^= 0x01;
    const checksumFlipped = Buffer.from(stream);
    checksumFlipped[checksumFlipped.length - 2]! ^= 0x80;

    for (const maxNativeFrameBytes of [32 * MiB, 64 * KiB, 1]) {
      expect((await decompressAll(randomChunks(stream, 40 * KiB, 9), { maxNativeFrameBytes })).equals(data)).toBe(true);
      for (const broken of [contentFlipped, checksumFlipped]) {
        const error = await decompressAll(randomChunks(broken, 40 * KiB, 9), { maxNativeFrameBytes }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(CorruptArchiveError);
        expect((error as Error).message).toMatch(/^corrupt zstd frame at byte 0.*checksum/i);
      }
    }
    // Without a checksum the streaming path has nothing to check the content against.
    const unchecked = zstdCli(['-c', '--no-check'], data);
    expect((await decompressAll([unchecked], { maxNativeFrameBytes: 1 })).equals(data)).toBe(true);
  });

  it('refuses a streamed frame whose window exceeds 8 MiB, and decodes the same frame whole', async () => {
    const window16MiB = (14 << 3) | 0; // 2^(10 + 14)
    const stream = handMadeFrame(raw(3), Buffer.from('abc'), 0x00, window16MiB);
    await expect(decompressAll([stream], { maxNativeFrameBytes: 1 })).rejects.toThrow(ArchiveLimitError);
    await expect(decompressAll([stream], { maxNativeFrameBytes: 1 })).rejects.toThrow(/needs a 16 MiB window; frames over .*: recompress it with zstd -dc --long=31 FILE \| zstd -o NEW.tar.zst$/);
    expect((await decompressAll([stream])).toString()).toBe('abc');
    const window8MiB = (13 << 3) | 0;
    expect((await decompressAll([handMadeFrame(raw(3), Buffer.from('abc'), 0x00, window8MiB)], { maxNativeFrameBytes: 1 })).toString()).toBe('abc');
  });

  it('streams what zstd -19 writes (an 8 MiB window) and refuses what --ultra -22 writes (a 128 MiB window) when too large to decode whole', async () => {
    const data = mixedData(12 * MiB, 81);
    expect((await decompressAll([zstdCli(['-c', '-19', '--single-thread'], data)])).equals(data)).toBe(true);
    await expect(decompressAll([zstdCli(['-c', '--ultra', '-22', '--single-thread'], data)])).rejects.toThrow(ArchiveLimitError);
  });

  it('yields the frames before a corrupt one, and leaves no unhandled rejection when stopped early', async () => {
    const good = mixedData(64 * KiB, 71);
    const [goodFrame] = await compressAll([good]);
    const badFrame = zstdCli(['-c'], mixedData(64 * KiB, 72));
    badFrame[badFrame.length - 1]! ^= 0xff;
    const stream = [goodFrame!, badFrame, goodFrame!];

    const received: Buffer[] = [];
    const failure = await (async () => {
      for await (const chunk of decompressFrames(chunksOf(stream), { concurrency: 3 })) received.push(chunk);
    })().catch((e: unknown) => e);
    expect(received).toEqual([good]);
    expect(failure).toBeInstanceOf(CorruptArchiveError);

    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      for await (const chunk of decompressFrames(chunksOf(stream), { concurrency: 3 })) {
        expect(chunk.equals(good)).toBe(true);
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });
});

describe('bounded memory', () => {
  it('decodes a zstd bomb (2 GiB of zeros) in small chunks and stops early on request', async () => {
    const bomb = shell('head -c 2147483648 /dev/zero | zstd -q -c');
    expect(bomb.length).toBeLessThan(1 * MiB);
    const zeros = Buffer.alloc(BLOCK_MAXIMUM_SIZE);
    let fed = 0;
    let closed = false;
    async function* source(): AsyncGenerator<Uint8Array> {
      try {
        for (const chunk of randomChunks(bomb, 4 * KiB, 8)) {
          fed += chunk.length;
          yield chunk;
        }
      } finally {
        closed = true;
      }
    }

    const baseline = liveArrayBufferBytes();
    let decoded = 0;
    let chunks = 0;
    let largestLive = 0;
    for await (const chunk of decompressFrames(source())) {
      expect(chunk.length).toBeLessThanOrEqual(BLOCK_MAXIMUM_SIZE);
      expect(chunk.equals(zeros.subarray(0, chunk.length))).toBe(true);
      decoded += chunk.length;
      if (++chunks % 256 === 0) largestLive = Math.max(largestLive, liveArrayBufferBytes() - baseline);
      if (decoded >= 320 * MiB) break;
    }
    expect(chunks).toBeGreaterThan(2000);
    expect(closed).toBe(true);
    expect(fed).toBeLessThan(bomb.length / 2);
    expect(largestLive).toBeLessThan(16 * MiB);
  });

  // fzstd's Decompress keeps a view of the end of every push that ends on a block boundary.
  it('does not keep the compressed bytes of a long streamed frame alive', async () => {
    const data = randomBytes(48 * MiB);
    const file = path.join(tmp, 'long-frame.zst');
    await writeFile(file, zstdCli(['-c', '-1'], data));
    const baseline = liveArrayBufferBytes();
    let decoded = 0;
    let chunks = 0;
    let largestLive = 0;
    for await (const chunk of decompressFrames(createReadStream(file), { maxNativeFrameBytes: 1 * MiB })) {
      expect(chunk.equals(data.subarray(decoded, decoded + chunk.length))).toBe(true);
      decoded += chunk.length;
      if (++chunks % 64 === 0) largestLive = Math.max(largestLive, liveArrayBufferBytes() - baseline);
    }
    expect(decoded).toBe(data.length);
    expect(chunks).toBeGreaterThan(300);
    expect(largestLive).toBeLessThan(16 * MiB);
  });
});
