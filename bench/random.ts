// Deterministic randomness for the benchmark trees: a small PRNG for decisions and AES-CTR
// for bulk incompressible bytes (fast, and the same bytes for the same seed on every run).

import { createCipheriv, createHash } from 'node:crypto';

export type Random = () => number;

/** The sample tenant's PRNG (mulberry32): plenty for choosing sizes, words and names. */
export { seededRandom } from '../scripts/sample-tenant.js';

export function randomInt(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

export function pick<T>(random: Random, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

/** A standard normal variate (Box-Muller). */
export function normal(random: Random): number {
  const u = Math.max(random(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** A log-normal size around `median` with spread `sigma`, clamped to [min, max]. */
export function logNormalSize(random: Random, median: number, sigma: number, min: number, max: number): number {
  const size = Math.round(median * Math.exp(sigma * normal(random)));
  return Math.min(max, Math.max(min, size));
}

/** Incompressible bytes: AES-256-CTR keystream under a key derived from `label`. */
export class ByteStream {
  private readonly cipher;
  constructor(label: string) {
    const key = createHash('sha256').update(`openclaw-bench:${label}`).digest();
    this.cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  }

  bytes(size: number): Buffer {
    return this.cipher.update(Buffer.alloc(size));
  }
}
