// The zstd codec seam: which codec this Node gets, and the same contract checked against
// every codec that loads here (on Node 24 both node:zlib and @mongodb-js/zstd, on Node 20 the
// addon only): frames the zstd CLI reads, content size without checksum, whole and streamed
// decoding, checksums verified on both paths, and the walker's window limit on either.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';

import { addonZstdCodec } from '../shared/archive/zstd-codec-addon.js';
import { zlibZstdCodec } from '../shared/archive/zstd-codec-zlib.js';
import { zstdCodec, type ZstdCodec } from '../shared/archive/zstd-codec.js';
import { decompressFrames } from '../shared/archive/zstd-decoder.js';
import { ArchiveLimitError, CorruptArchiveError } from '../shared/errors.js';

const KiB = 1024;
const MiB = 1024 * KiB;

const candidates = [zlibZstdCodec(), addonZstdCodec()];
const codecs = candidates.filter((codec): codec is ZstdCodec => !('unavailable' in codec));

function zstdCli(args: string[], input: Buffer): Buffer {
  const result = spawnSync('zstd', ['-q', ...args], { input, maxBuffer: 256 * MiB });
  if (result.status !== 0) throw new Error(`zstd ${args.join(' ')} failed: ${result.stderr.toString()}`);
  return result.stdout;
}

/** Text-like, compressible bytes with some random runs. */
function sample(size: number): Buffer {
  const line = Buffer.from('{"role":"assistant","text":"the tenant backup carries on"}\n');
  const out = Buffer.alloc(size);
  for (let at = 0; at < size; at += line.length) line.copy(out, at);
  for (let at = 0; at + 4 * KiB < size; at += 64 * KiB) randomBytes(4 * KiB).copy(out, at);
  return out;
}

async function decodeAll(codec: ZstdCodec, stream: Buffer, maxNativeFrameBytes?: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const pieces = [stream.subarray(0, 1000), stream.subarray(1000, 70_000), stream.subarray(70_000)];
  for await (const chunk of decompressFrames((async function* () { yield* pieces; })(), { codec, maxNativeFrameBytes })) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('the codec this process uses', () => {
  it('is node:zlib where Node has zstd, else @mongodb-js/zstd, chosen once', () => {
    expect(zstdCodec().name).toBe(typeof zlib.zstdCompress === 'function' ? 'node:zlib' : '@mongodb-js/zstd');
    expect(zstdCodec()).toBe(zstdCodec());
  });

  it('has at least one implementation that loads here', () => {
    expect(codecs.length).toBeGreaterThan(0);
    if (typeof zlib.zstdCompress === 'function') expect(codecs.map((codec) => codec.name)).toContain('node:zlib');
  });
});

describe.each(codecs.map((codec) => [codec.name, codec] as const))('%s', (_name, codec) => {
  it('writes frames without a checksum (node:zlib: with their content size), which the zstd CLI decodes', async () => {
    const data = sample(2 * MiB + 123);
    const frame = await codec.compressFrame(data, 3);
    const descriptor = frame[4]!;
    // Frame_Content_Size_Flag: node:zlib pledges the size; the addon (1.2.2) leaves it out.
    expect(descriptor >> 6 !== 0).toBe(codec.name === 'node:zlib');
    expect(descriptor & 0x04).toBe(0); // no Content_Checksum_Flag
    expect(frame.length).toBeLessThan(data.length / 4);
    expect(zstdCli(['-dc'], frame).equals(data)).toBe(true);
    expect((await codec.decodeWholeFrame(frame, data.length)).equals(data)).toBe(true);
  });

  it('compresses at the level asked for', async () => {
    const data = sample(1 * MiB);
    const [fast, strong] = await Promise.all([codec.compressFrame(data, 1), codec.compressFrame(data, 19)]);
    expect(strong.length).toBeLessThan(fast.length);
  });

  it('decodes through the walker, whole and streamed, what the zstd CLI writes', async () => {
    const data = sample(3 * MiB);
    const stream = zstdCli(['-c'], data);
    expect((await decodeAll(codec, stream)).equals(data)).toBe(true);
    expect((await decodeAll(codec, stream, 64 * KiB)).equals(data)).toBe(true);
  });

  it('refuses a flipped byte of content or of the checksum, whole and streamed', async () => {
    const random = randomBytes(300 * KiB); // stored raw: a flipped byte still decodes, only the checksum tells
    const data = Buffer.concat([sample(200 * KiB), random, sample(100 * KiB)]);
    const stream = zstdCli(['-c'], data);
    const contentFlipped = Buffer.from(stream);
    contentFlipped[contentFlipped.indexOf(random.subarray(1000, 1064)) + 7]! ^= 0x01;
    const checksumFlipped = Buffer.from(stream);
    checksumFlipped[checksumFlipped.length - 1]! ^= 0x40;
    for (const broken of [contentFlipped, checksumFlipped]) {
      await expect(codec.decodeWholeFrame(broken, 1 * MiB)).rejects.toThrow(/content checksum mismatch/);
      for (const maxNativeFrameBytes of [8 * MiB, 64 * KiB]) {
        const error = await decodeAll(codec, broken, maxNativeFrameBytes).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(CorruptArchiveError);
        expect((error as Error).message).toMatch(/^corrupt zstd frame at byte 0.*content checksum mismatch/);
      }
    }
  });

  it('decodes frames after one another and side by side, a damaged one between, each into a buffer of its own', async () => {
    const datas = Array.from({ length: 7 }, (_, index) => Buffer.concat([randomBytes(64 * KiB), sample(index === 3 ? 100 * KiB : 2 * MiB)]));
    const frames = await Promise.all(datas.map((data) => codec.compressFrame(data, 3)));
    const decoded = await Promise.all(frames.slice(0, 3).map((frame, index) => codec.decodeWholeFrame(frame, datas[index]!.length)));
    const damaged = zstdCli(['-c'], datas[0]!);
    damaged[damaged.length - 1]! ^= 0x40;
    await expect(codec.decodeWholeFrame(damaged, datas[0]!.length)).rejects.toThrow(/content checksum mismatch/);
    for (const index of [3, 4]) decoded.push(await codec.decodeWholeFrame(frames[index]!, datas[index]!.length));
    decoded.push(...(await Promise.all(frames.slice(5).map((frame, index) => codec.decodeWholeFrame(frame, datas[index + 5]!.length)))));
    // Bounded loosely (a frame without its content size), the output leaves its buffer part unused.
    const loose = [await codec.decodeWholeFrame(frames[3]!, 1 * MiB), await codec.decodeWholeFrame(frames[3]!, 1 * MiB)];
    expect(decoded.map((data, index) => data.equals(datas[index]!))).toEqual(datas.map(() => true));
    expect(loose.map((data) => data.equals(datas[3]!))).toEqual([true, true]);
    expect(new Set([...decoded, ...loose].map((data) => data.buffer)).size).toBe(decoded.length + loose.length);
  });

  it('streams a frame with an 8 MiB window (zstd -19) and refuses a larger one before decoding', async () => {
    const data = sample(10 * MiB);
    expect((await decodeAll(codec, zstdCli(['-c', '-19', '--single-thread'], data), 1 * MiB)).equals(data)).toBe(true);
    const wide = zstdCli(['-c', '--long=25', '-3'], data);
    await expect(decodeAll(codec, wide, 1 * MiB)).rejects.toThrow(ArchiveLimitError);
  });

  it('frees an abandoned streamed frame', async () => {
    const stream = zstdCli(['-c'], sample(4 * MiB));
    const decoder = await codec.streamingDecoder({ hasChecksum: true, windowSize: 4 * MiB });
    const first = await decoder.push(stream.subarray(0, 20 * KiB), false);
    expect(Buffer.concat(first).length).toBeGreaterThan(0);
    decoder.close();
    decoder.close();
  });
});

describe.runIf(typeof zlib.zstdCompress === 'function')('node:zlib: match-finder tables of whole frames', () => {
  const codec = zlibZstdCodec() as ZstdCodec;
  const c = zlib.constants as Record<string, number>;

  /** Varied text (a seeded choice of words), where the size of the match finder's tables tells in the output. */
  function prose(size: number): Buffer {
    const words = 'tenant backup restore frame archive manifest session memory note usage token pairing config chunk digest window'.split(' ');
    let seed = 12345;
    const parts: string[] = [];
    let length = 0;
    while (length < size) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const word = `${words[seed % words.length]}${seed % 977} `;
      parts.push(word);
      length += word.length;
    }
    return Buffer.from(parts.join('')).subarray(0, size);
  }

  /** One frame of `data` by node:zlib alone, compressed in one call as the codec does, with `params`. */
  function zlibFrame(data: Buffer, params: Record<number, number>): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const stream = zlib.createZstdCompress({ chunkSize: data.length + (data.length >>> 8) + 1024, pledgedSrcSize: data.length, flush: c.ZSTD_e_end, params });
      const pieces: Buffer[] = [];
      stream.on('data', (piece: Buffer) => pieces.push(piece));
      stream.on('error', reject);
      stream.write(data, (error) => {
        stream.destroy();
        if (error) reject(error);
        else resolve(Buffer.concat(pieces));
      });
    });
  }

  const level3 = { [c.ZSTD_c_compressionLevel!]: 3, [c.ZSTD_c_checksumFlag!]: 0 };

  it('compresses a full frame at level 3 with 2^16 and 2^15 entries (level 3 alone has 2^17 and 2^16), which the zstd CLI decodes', async () => {
    const data = prose(2 * MiB);
    const frame = await codec.compressFrame(data, 3);
    const smaller = await zlibFrame(data, { ...level3, [c.ZSTD_c_hashLog!]: 16, [c.ZSTD_c_chainLog!]: 15 });
    const levelsOwn = await zlibFrame(data, level3);
    expect(frame.equals(smaller)).toBe(true);
    expect(frame.equals(levelsOwn)).toBe(false);
    expect(frame.length).toBeLessThan(levelsOwn.length * 1.03);
    expect(zstdCli(['-dc'], frame).equals(data)).toBe(true);
  });

  it('leaves frames of 256 KiB or less, and other levels, to libzstd\'s own tables', async () => {
    const small = prose(256 * KiB);
    expect((await codec.compressFrame(small, 3)).equals(await zlibFrame(small, level3))).toBe(true);
    const data = prose(2 * MiB);
    const level4 = { [c.ZSTD_c_compressionLevel!]: 4, [c.ZSTD_c_checksumFlag!]: 0 };
    expect((await codec.compressFrame(data, 4)).equals(await zlibFrame(data, level4))).toBe(true);
  });
});
