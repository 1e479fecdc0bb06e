// Cutting a byte stream into the pieces a test pushes through a streaming reader.

/** Cuts `bytes` at the given positions (any order; duplicates and out-of-range ignored). Pieces are views, of the input's own type. */
export function cutAt<T extends Uint8Array>(bytes: T, cuts: readonly number[]): T[] {
  const points = [...new Set(cuts.filter((cut) => cut > 0 && cut < bytes.length))].sort((a, b) => a - b);
  const pieces: T[] = [];
  let from = 0;
  for (const point of [...points, bytes.length]) {
    pieces.push(bytes.subarray(from, point) as T);
    from = point;
  }
  return pieces;
}
