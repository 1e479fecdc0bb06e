// How large a function's answer may be: Lambda answers at most 6 MB, counted in bytes of UTF-8
// (a path of CJK characters takes three a character), so long lists are cut (saying so) well
// before that. Apart from handlers.ts so the coordinating functions (the fan-out) use it
// without pulling in the core.

export const MAX_RESPONSE_BYTES = 4_000_000;

export const responseBytes = (answer: unknown) => Buffer.byteLength(JSON.stringify(answer));

/** How many of `items`, from the first, fit `budget` bytes as the elements of a JSON array, and the bytes those take. */
export function fitting(items: readonly unknown[], budget: number): { count: number; bytes: number } {
  let bytes = 0;
  let count = 0;
  for (const item of items) {
    const next = bytes + responseBytes(item) + 1;
    if (next > budget) break;
    bytes = next;
    count += 1;
  }
  return { count, bytes };
}
