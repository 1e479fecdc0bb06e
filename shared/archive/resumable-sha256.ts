// SHA-256 whose running state can be saved and taken up again in another process: what a
// backup that continues in a new invocation needs for the manifest's directory digests
// (tree-digest.ts), since node:crypto's Hash cannot export its state. The state is the eight
// chaining words, the bytes hashed so far and the unfinished block (under 64 bytes). Plain
// FIPS 180-4; test/tree-digest.test.ts checks it against node:crypto. Its input is small
// (about a hundred bytes of record per archived entry), so pure JavaScript is fast enough.

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
  0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const INITIAL = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
const W = new Uint32Array(64);

/** A saved SHA-256 state: JSON-safe. */
export interface Sha256State {
  /** The eight chaining words. */
  readonly h: readonly number[];
  /** Bytes hashed so far. */
  readonly length: number;
  /** The unfinished block, base64. */
  readonly pending: string;
}

export class ResumableSha256 {
  private readonly h: Uint32Array;
  private readonly block = Buffer.alloc(64);
  private filled: number;
  private length: number;

  constructor(state?: Sha256State) {
    this.h = new Uint32Array(state?.h ?? INITIAL);
    this.length = state?.length ?? 0;
    const pending = Buffer.from(state?.pending ?? '', 'base64');
    if (this.h.length !== 8 || pending.length >= 64 || pending.length !== this.length % 64) throw new RangeError('not a SHA-256 state');
    pending.copy(this.block);
    this.filled = pending.length;
  }

  update(data: string | Uint8Array): this {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.length += bytes.length;
    let at = 0;
    if (this.filled > 0) {
      at = Math.min(64 - this.filled, bytes.length);
      bytes.copy(this.block, this.filled, 0, at);
      this.filled += at;
      if (this.filled < 64) return this;
      compress(this.h, this.block, 0);
      this.filled = 0;
    }
    // Whole blocks straight from the input.
    for (; at + 64 <= bytes.length; at += 64) compress(this.h, bytes, at);
    bytes.copy(this.block, 0, at);
    this.filled = bytes.length - at;
    return this;
  }

  /** The digest of what was hashed so far, in lowercase hex; the state is left as it was. */
  hex(): string {
    const h = new Uint32Array(this.h);
    const tail = Buffer.alloc(this.filled < 56 ? 64 : 128);
    this.block.copy(tail, 0, 0, this.filled);
    tail[this.filled] = 0x80;
    const bits = this.length * 8;
    tail.writeUInt32BE(Math.floor(bits / 2 ** 32), tail.length - 8);
    tail.writeUInt32BE(bits >>> 0, tail.length - 4);
    compress(h, tail, 0);
    if (tail.length === 128) compress(h, tail, 64);
    const out = Buffer.alloc(32);
    for (let i = 0; i < 8; i++) out.writeUInt32BE(h[i]!, i * 4);
    return out.toString('hex');
  }

  save(): Sha256State {
    return { h: [...this.h], length: this.length, pending: this.block.subarray(0, this.filled).toString('base64') };
  }
}

/** One 64-byte block of `bytes`, from `offset`, into the chaining words `h`. */
function compress(h: Uint32Array, bytes: Uint8Array, offset: number): void {
  for (let i = 0, at = offset; i < 16; i++, at += 4) W[i] = (bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!;
  for (let i = 16; i < 64; i++) {
    const w15 = W[i - 15]!;
    const w2 = W[i - 2]!;
    const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
    const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
    W[i] = (W[i - 16]! + s0 + W[i - 7]! + s1) | 0;
  }
  let a = h[0]!, b = h[1]!, c = h[2]!, d = h[3]!, e = h[4]!, f = h[5]!, g = h[6]!, k = h[7]!;
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (k + S1 + ((e & f) ^ (~e & g)) + K[i]! + W[i]!) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    k = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  h[0] = (h[0]! + a) | 0;
  h[1] = (h[1]! + b) | 0;
  h[2] = (h[2]! + c) | 0;
  h[3] = (h[3]! + d) | 0;
  h[4] = (h[4]! + e) | 0;
  h[5] = (h[5]! + f) | 0;
  h[6] = (h[6]! + g) | 0;
  h[7] = (h[7]! + k) | 0;
}
