// Names that are not valid UTF-8 held as strings (raw-name.ts): one to one with their bytes.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { decodeRawName, fsPath, hasRawBytes, rawByteLength, rawName } from '../shared/raw-name.js';

const latin1 = (text: string) => Buffer.from(text, 'latin1');

describe('raw names', () => {
  it.each([
    ['caf\xe9', 'caf\udce9'],
    ['\xff\xfe', '\udcff\udcfe'],
    ['\xc3\xa9\xc3', 'é\udcc3'], // a sequence cut at the end
    ['\xed\xa0\x80', '\udced\udca0\udc80'], // an encoded surrogate
    ['\xc0\xaf', '\udcc0\udcaf'], // an overlong slash
    ['\xf4\x90\x80\x80', '\udcf4\udc90\udc80\udc80'], // past U+10FFFF
    ['\xf0\x9f\x98\x80 \xe9', '😀 \udce9'],
  ])('holds the bytes %j as %j and gives them back', (bytes, text) => {
    expect(decodeRawName(latin1(bytes))).toBe(text);
    expect(rawName(text)).toEqual(latin1(bytes));
    expect(rawByteLength(text)).toBe(bytes.length);
    expect(hasRawBytes(text)).toBe(true);
    expect(fsPath(`/t/${text}`)).toEqual(Buffer.concat([latin1('/t/'), latin1(bytes)]));
  });

  it('leaves a valid UTF-8 name the string it always was', () => {
    for (const name of ['plain', 'café', '\ufffd', '😀', 'a\nb']) {
      expect(decodeRawName(Buffer.from(name))).toBe(name);
      expect(hasRawBytes(name)).toBe(false);
      expect(fsPath(name)).toBe(name);
    }
  });

  it('round-trips any bytes, and two byte strings never become one name (fast-check)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 24 }), fc.uint8Array({ maxLength: 24 }), (a, b) => {
        const left = decodeRawName(a);
        expect(rawName(left)).toEqual(Buffer.from(a));
        if (!Buffer.from(a).equals(Buffer.from(b))) expect(decodeRawName(b)).not.toBe(left);
      }),
      { numRuns: 2000 },
    );
  });
});
