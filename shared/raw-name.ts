// Names as Linux has them: bytes, most of them UTF-8, some not (a zip unpacked from a Latin-1
// source, `touch $'caf\xe9'`). The code keeps names as strings; a name that is not valid
// UTF-8 is held with each byte that is not part of a valid UTF-8 sequence as a lone surrogate
// U+DC80 + byte (Python's "surrogateescape"): `caf\xe9` is the string "caf\udce9". Valid
// UTF-8 never decodes to a lone surrogate, so the mapping is one to one: two names that differ
// in bytes stay two strings, and `rawName(decodeRawName(bytes))` is `bytes` again. A name
// that is valid UTF-8 is the string it has always been.
//
// Node encodes a string path as UTF-8, a lone surrogate as U+FFFD: such a name meets the file
// system only as a Buffer (`fsPath`), and a tar header only as its bytes (`rawName`).

import { isUtf8 } from 'node:buffer';

/** A lone surrogate anywhere in the text: the mark of a name held by its bytes. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Whether `text` holds a byte that is not UTF-8 (a lone surrogate); false for every valid UTF-8 name. */
export function hasRawBytes(text: string): boolean {
  return LONE_SURROGATE.test(text);
}

/** Bytes `start` to `end` of `bytes` as a name: UTF-8, each byte outside a valid sequence as U+DC80 + byte. */
export function decodeRawName(bytes: Uint8Array, start = 0, end = bytes.length): string {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start);
  if (isUtf8(view)) return view.toString('utf8');
  let text = '';
  let runStart = 0;
  let at = 0;
  while (at < view.length) {
    const length = utf8SequenceLength(view, at);
    if (length > 0) {
      at += length;
      continue;
    }
    if (runStart < at) text += view.toString('utf8', runStart, at);
    text += String.fromCharCode(0xdc00 + view[at]!);
    at++;
    runStart = at;
  }
  if (runStart < at) text += view.toString('utf8', runStart, at);
  return text;
}

/** The bytes of a name (`decodeRawName`'s inverse): UTF-8, each lone surrogate U+DC80–U+DCFF as its byte. */
export function rawName(text: string): Buffer {
  if (!hasRawBytes(text)) return Buffer.from(text, 'utf8');
  const parts: Buffer[] = [];
  let runStart = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0xd800 || code > 0xdfff) continue;
    const next = text.charCodeAt(i + 1);
    if (code <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      i++; // a pair: one character past U+FFFF
      continue;
    }
    if (runStart < i) parts.push(Buffer.from(text.slice(runStart, i), 'utf8'));
    // Only U+DC80–U+DCFF come from decodeRawName; any other lone surrogate has no bytes of its own.
    parts.push(Buffer.of(code >= 0xdc80 && code <= 0xdcff ? code - 0xdc00 : 0x3f));
    runStart = i + 1;
  }
  if (runStart < text.length) parts.push(Buffer.from(text.slice(runStart), 'utf8'));
  return Buffer.concat(parts);
}

/** How many bytes the name takes on disk and in a tar header. */
export function rawByteLength(text: string): number {
  return hasRawBytes(text) ? rawName(text).length : Buffer.byteLength(text);
}

/** A path for an fs call: the string itself, or its bytes where it holds a name that is not UTF-8. */
export function fsPath(path: string): string | Buffer {
  return hasRawBytes(path) ? rawName(path) : path;
}

/** The length of the valid UTF-8 sequence at `at` (1–4), or 0 if none starts there (overlong, surrogate, past U+10FFFF, cut). */
function utf8SequenceLength(bytes: Buffer, at: number): number {
  const first = bytes[at]!;
  if (first < 0x80) return 1;
  let length: number;
  let low = 0x80;
  let high = 0xbf;
  if (first >= 0xc2 && first <= 0xdf) length = 2;
  else if (first >= 0xe0 && first <= 0xef) {
    length = 3;
    if (first === 0xe0) low = 0xa0; // overlong
    if (first === 0xed) high = 0x9f; // a surrogate
  } else if (first >= 0xf0 && first <= 0xf4) {
    length = 4;
    if (first === 0xf0) low = 0x90; // overlong
    if (first === 0xf4) high = 0x8f; // past U+10FFFF
  } else return 0;
  if (at + length > bytes.length) return 0;
  const second = bytes[at + 1]!;
  if (second < low || second > high) return 0;
  for (let i = 2; i < length; i++) {
    const next = bytes[at + i]!;
    if (next < 0x80 || next > 0xbf) return 0;
  }
  return length;
}
