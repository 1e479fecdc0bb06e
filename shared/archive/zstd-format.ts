// The parts of the Zstandard format (RFC 8878) that both sides of our framing use: magic
// numbers and block layout, skippable frames, and the checks of the options the encoder and
// the decoder take.

import { cpuBudget } from '../cpu-budget.js';
import { UsageError } from '../errors.js';

export const MiB = 1024 * 1024;

export const ZSTD_MAGIC = 0xfd2fb528;
export const SKIPPABLE_MAGIC_BASE = 0x184d2a50;
export const SKIPPABLE_HEADER_BYTES = 8;
export const BLOCK_HEADER_BYTES = 3;
export const CHECKSUM_BYTES = 4;
/** Block_Maximum_Size: no block decodes to more, and no block's Block_Size may exceed it. */
export const BLOCK_MAXIMUM_SIZE = 128 * 1024;

export const BLOCK_RLE = 1;
export const BLOCK_COMPRESSED = 2;
export const BLOCK_RESERVED = 3;

/** A zstd skippable frame (magic 0x184D2A50 + nibble, 4-byte LE length, payload): decoders, including `zstd -d`, skip it. */
export function skippableFrame(payload: Uint8Array, magicNibble = 0): Buffer {
  if (!Number.isInteger(magicNibble) || magicNibble < 0 || magicNibble > 15) {
    throw new UsageError(`skippable frame magic nibble must be an integer from 0 to 15, not ${magicNibble}`);
  }
  if (payload.length > 0xffffffff) {
    throw new UsageError(`skippable frame payload of ${payload.length} bytes exceeds 4 GiB`);
  }
  const frame = Buffer.allocUnsafe(SKIPPABLE_HEADER_BYTES + payload.length);
  frame.writeUInt32LE(SKIPPABLE_MAGIC_BASE + magicNibble, 0);
  frame.writeUInt32LE(payload.length, 4);
  frame.set(payload, SKIPPABLE_HEADER_BYTES);
  return frame;
}

/** Frames compressing or decompressing at once, by default: one per CPU of the budget, plus one being filled or consumed. */
export function defaultConcurrency(): number {
  return cpuBudget() + 1;
}

export function integer(value: number, name: string): number {
  if (!Number.isSafeInteger(value)) throw new UsageError(`${name} must be an integer, not ${value}`);
  return value;
}

export function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new UsageError(`${name} must be a positive integer, not ${value}`);
  }
  return value;
}
