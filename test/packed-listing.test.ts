import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { PackedListing, type ListedType } from '../shared/packed-listing.js';
import { decodeRawName, rawName } from '../shared/raw-name.js';

/** The walk's order before names were packed: JavaScript's order, or the UTF-8 bytes' where a name holds a character from U+D800 up. */
function orderBefore(names: string[]): string[] {
  const sorted = [...names];
  if (!sorted.some((name) => /[\ud800-\uffff]/.test(name))) return sorted.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const encoded = new Map(sorted.map((name) => [name, rawName(name)]));
  return sorted.sort((a, b) => Buffer.compare(encoded.get(a)!, encoded.get(b)!));
}

/** A name as Linux allows it: 1 to 255 bytes, no NUL or slash, any of them not UTF-8. */
const nameBytes = fc.uint8Array({ minLength: 1, maxLength: 255 }).filter((bytes) => !bytes.includes(0) && !bytes.includes(0x2f));
/** A name of text, surrogate pairs and characters up to U+FFFF included. */
const nameText = fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }).filter((text) => !text.includes('/') && !text.includes('\0'));
const names = fc.uniqueArray(fc.oneof(nameBytes.map((bytes) => decodeRawName(bytes)), nameText.map((text) => decodeRawName(rawName(text)))), { maxLength: 200 });
const TYPES: (ListedType | undefined)[] = [undefined, 'directory', 'symlink', 'socket', 'FIFO', 'device', 'special file', 'untyped'];

describe.each([
  ['kept as strings', undefined],
  ['packed', 0],
] as const)('PackedListing, %s', (_label, packAfter) => {
  it('sorts names, bytes that are not UTF-8 included, in the order the walk always had', () => {
    fc.assert(
      fc.property(names, (listed) => {
        const packed = new PackedListing(packAfter);
        for (const name of listed) packed.add(name, undefined);
        expect([...packed.sorted().names()]).toEqual(orderBefore(listed));
      }),
      { numRuns: 500 },
    );
  });

  it('holds a name a listing gave twice once sorted (a FUSE or network readdir)', () => {
    fc.assert(
      fc.property(names, fc.array(fc.nat()), (listed, again) => {
        const packed = new PackedListing(packAfter);
        for (const name of listed) packed.add(name, undefined);
        for (const at of again) if (listed.length > 0) packed.add(rawName(listed[at % listed.length]!), undefined);
        const sorted = packed.sorted();
        expect([...sorted.names()]).toEqual(orderBefore(listed));
        expect(sorted.size).toBe(listed.length);
      }),
      { numRuns: 300 },
    );
  });

  it('gives back each name as it was added, as text or as bytes, with its type, and finds it once sorted', () => {
    fc.assert(
      fc.property(names, fc.array(fc.integer({ min: 0, max: TYPES.length - 1 }), { minLength: 200, maxLength: 200 }), (listed, types) => {
        const packed = new PackedListing(packAfter);
        listed.forEach((name, at) => packed.add(at % 2 === 0 ? name : rawName(name), TYPES[types[at]!]));
        expect(packed.size).toBe(listed.length);
        listed.forEach((name, at) => {
          expect(packed.name(at)).toBe(name);
          expect(packed.byteLength(at)).toBe(rawName(name).length);
          expect(packed.type(at)).toBe(TYPES[types[at]!]);
        });
        const sorted = packed.sorted();
        listed.forEach((name, at) => {
          const found = sorted.indexOf(name);
          expect(sorted.name(found)).toBe(name);
          expect(sorted.type(found)).toBe(TYPES[types[at]!]);
        });
        expect(sorted.indexOf('\0absent')).toBe(-1);
      }),
      { numRuns: 300 },
    );
  });

  it('tells a listing read as text that replaced bytes that are not UTF-8 with U+FFFD', () => {
    const listingOf = (names: string[]) => {
      const listing = new PackedListing(packAfter);
      for (const name of names) listing.add(name, undefined);
      return listing;
    };
    expect(listingOf(['plain', 'caf\uFFFD']).hasReplacedName()).toBe(true);
    expect(listingOf(['plain', 'caf\udce9']).hasReplacedName()).toBe(false);
  });
});
