// Whole streams compressed the way archives are (FrameWriter), for tests that need zstd
// frames of their own: the core itself only compresses through the archive writer.

import { FrameWriter, type CompressOptions } from '../../shared/archive/zstd-encoder.js';

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
