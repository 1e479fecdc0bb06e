// Whole streams compressed the way archives are (FrameWriter), for tests that need zstd
// frames of their own: the core itself only compresses through the archive writer; and a
// decompression bomb made by hand.

import { FrameWriter, type CompressOptions } from '../../shared/archive/zstd-encoder.js';
import { base256, rawHeader } from './tar-builder.js';

/**
 * Cuts the input into frames of exactly `frameSize` bytes (the last one shorter), compresses
 * them in parallel and yields the compressed frames in input order. Input is read only as
 * frames are needed, so memory stays near `concurrency * 2 * frameSize` whatever the input
 * size. Empty input yields nothing.
 */
export async function* compressFrames(
  source: AsyncIterable<Uint8Array>,
  options: CompressOptions = {},
): AsyncGenerator<Buffer> {
  const writer = new FrameWriter(options);
  const feeding = (async () => {
    for await (const chunk of source) await writer.write(chunk);
    await writer.close();
  })();
  feeding.catch((error: unknown) => writer.abort(error));
  try {
    yield* writer.frames();
    await feeding;
  } finally {
    writer.abort(new Error('the compressed stream was closed'));
    await feeding.catch(() => undefined);
  }
}

/**
 * A decompression bomb: one zstd frame (no checksum, 128 KiB window) of a raw block holding
 * the tar header of a `size`-byte file `tenants/<tenant>/zeros.bin`, RLE blocks of zeros for
 * its content and the end-of-archive blocks. Four bytes per 128 KiB decoded: 16 GiB in 512 KiB.
 * `fill` is the content's byte: a restore leaves zeros unwritten (holes), so a file whose
 * growth is watched must hold another byte.
 */
export function zerosArchive(tenant: string, size: bigint, fill = 0): Buffer {
  const header = rawHeader({ name: `tenants/${tenant}/zeros.bin`, typeflag: '0', sizeField: base256(size) });
  const block = 128 * 1024;
  const rle = (bytes: number, last: boolean, byte = 0): Buffer => {
    const out = Buffer.alloc(4);
    out.writeUIntLE((bytes << 3) | (1 << 1) | (last ? 1 : 0), 0, 3);
    out[3] = byte;
    return out;
  };
  const parts: Buffer[] = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3])];
  const raw = Buffer.alloc(3);
  raw.writeUIntLE(header.length << 3, 0, 3);
  parts.push(raw, header);
  const blocks = Number(size / BigInt(block));
  const one = rle(block, false, fill);
  for (let i = 0; i < blocks; i++) parts.push(one);
  parts.push(rle(1024, true));
  return Buffer.concat(parts);
}
