// The two text encodings of age: unpadded standard base64 (header arguments, stanza bodies,
// the MAC) and Bech32 (recipients and identities). Node's base64 decoder is lenient (it skips
// invalid characters and accepts padding and non-zero trailing bits), which age forbids:
// the format must not be malleable, so decoding here accepts only the canonical encoding.
// Bech32 is BIP 173 without its 90-character limit; a string is all lowercase or all
// uppercase, and the checksum is computed over the lowercase form.

const BASE64_CHARS = /^[A-Za-z0-9+/]*$/;

/** Encodes as standard base64 without `=` padding. */
export function encodeBase64(bytes: Uint8Array): string {
  const padded = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  const end = padded.endsWith('==') ? padded.length - 2 : padded.endsWith('=') ? padded.length - 1 : padded.length;
  return padded.slice(0, end);
}

/**
 * Decodes unpadded canonical base64, or returns undefined for anything else: padding,
 * characters outside the alphabet (whitespace and CR included), an impossible length, or
 * non-zero unused bits in the last character.
 */
export function decodeCanonicalBase64(text: string): Buffer | undefined {
  if (text.length % 4 === 1 || !BASE64_CHARS.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return encodeBase64(bytes) === text ? bytes : undefined;
}

const BECH32_CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const BECH32_GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3] as const;
const BECH32_CHECKSUM_LENGTH = 6;

function bech32Polymod(values: Iterable<number>): number {
  let checksum = 1;
  for (const value of values) {
    const top = checksum >>> 25;
    checksum = ((checksum & 0x1ffffff) << 5) ^ value;
    for (let bit = 0; bit < 5; bit++) {
      if ((top >>> bit) & 1) checksum ^= BECH32_GENERATOR[bit]!;
    }
  }
  return checksum >>> 0;
}

function* expandedHrp(hrp: string, data: readonly number[]): Generator<number> {
  for (let i = 0; i < hrp.length; i++) yield hrp.charCodeAt(i) >> 5;
  yield 0;
  for (let i = 0; i < hrp.length; i++) yield hrp.charCodeAt(i) & 31;
  yield* data;
}

/** Regroups bits (8→5 with padding, 5→8 requiring zero padding); undefined if not canonical. */
function convertBits(data: ArrayLike<number>, fromBits: number, toBits: number, pad: boolean): number[] | undefined {
  let accumulator = 0;
  let bits = 0;
  const out: number[] = [];
  const mask = (1 << toBits) - 1;
  for (let i = 0; i < data.length; i++) {
    accumulator = ((accumulator << fromBits) | data[i]!) & 0xffffff;
    bits += fromBits;
    while (bits >= toBits) {
      bits -= toBits;
      out.push((accumulator >> bits) & mask);
    }
  }
  if (pad) {
    if (bits > 0) out.push((accumulator << (toBits - bits)) & mask);
  } else if (bits >= fromBits || ((accumulator << (toBits - bits)) & mask) !== 0) {
    return undefined;
  }
  return out;
}

/** Encodes bytes as Bech32; an uppercase `hrp` gives an all-uppercase string. */
export function encodeBech32(hrp: string, bytes: Uint8Array): string {
  const lowerHrp = hrp.toLowerCase();
  const data = convertBits(bytes, 8, 5, true)!;
  const polymod = bech32Polymod(expandedHrp(lowerHrp, [...data, 0, 0, 0, 0, 0, 0])) ^ 1;
  let text = `${lowerHrp}1`;
  for (const value of data) text += BECH32_CHARSET[value];
  for (let i = 0; i < BECH32_CHECKSUM_LENGTH; i++) text += BECH32_CHARSET[(polymod >>> (5 * (5 - i))) & 31];
  return hrp === lowerHrp ? text : text.toUpperCase();
}

export type Bech32Decoded = { readonly hrp: string; readonly bytes: Buffer };

/**
 * Decodes a Bech32 string; the returned `hrp` keeps the string's case (so `age` and
 * `AGE-SECRET-KEY-` can be told apart). Returns a reason string when it is not valid.
 */
export function decodeBech32(text: string): Bech32Decoded | string {
  if (text !== text.toLowerCase() && text !== text.toUpperCase()) return 'mixes upper and lower case';
  const separator = text.lastIndexOf('1');
  if (separator < 1 || separator + 1 + BECH32_CHECKSUM_LENGTH > text.length) return 'has no valid Bech32 separator';
  const hrp = text.slice(0, separator);
  for (let i = 0; i < hrp.length; i++) {
    const code = hrp.charCodeAt(i);
    if (code < 33 || code > 126) return 'has an invalid character';
  }
  const lower = text.toLowerCase();
  const data: number[] = [];
  for (let i = separator + 1; i < lower.length; i++) {
    const value = BECH32_CHARSET.indexOf(lower[i]!);
    if (value === -1) return 'has a character outside the Bech32 alphabet';
    data.push(value);
  }
  if (bech32Polymod(expandedHrp(hrp.toLowerCase(), data)) !== 1) return 'has a wrong checksum (mistyped or cut short?)';
  const bytes = convertBits(data.slice(0, -BECH32_CHECKSUM_LENGTH), 5, 8, false);
  if (bytes === undefined) return 'has invalid padding';
  return { hrp, bytes: Buffer.from(bytes) };
}
