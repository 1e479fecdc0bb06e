import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { formatBytes, groupThousands, plural, quotedPath, shownPath, shownText } from '../shared/format.js';

describe('numbers in messages', () => {
  it('groups thousands like en-US toLocaleString, for any integer', () => {
    fc.assert(fc.property(fc.maxSafeInteger(), (n) => groupThousands(n) === n.toLocaleString('en-US')));
    expect(groupThousands(-1234567)).toBe('-1,234,567');
  });

  it('keeps a fraction as it is', () => {
    expect(groupThousands(1234.5)).toBe('1,234.5');
  });

  it('says "1 file" and "2,345 files"', () => {
    expect(plural(1, 'file')).toBe('1 file');
    expect(plural(2345, 'file')).toBe('2,345 files');
    expect(plural(0, 'entry', 'entries')).toBe('0 entries');
  });

  it('shows sizes in binary units', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(604 * 1024 * 1024)).toBe('604.0 MiB');
  });
});

describe('names and text shown to a person', () => {
  // eslint-disable-next-line no-control-regex
  const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
  /** Any UTF-16 string, control characters and lone surrogates included. */
  const anyText = fc.string({ unit: 'binary', maxLength: 200 });

  it.each([
    ['a\nb', 'a\\nb'],
    ['tab\there', 'tab\\there'],
    ['\r\b\f', '\\r\\b\\f'],
    ['esc\u001b[31mred', 'esc\\u001b[31mred'],
    ['nul\u0000', 'nul\\u0000'],
    ['del\u007f', 'del\\u007f'],
    ['\u0085nel', '\\u0085nel'],
    ['rtl\u202eoverride', 'rtl\\u202eoverride'],
    ['line\u2028sep', 'line\\u2028sep'],
    ['back\\slash', 'back\\slash'],
    ['café 東京 🎉', 'café 東京 🎉'],
    // A byte of a name that is not UTF-8 (raw-name.ts: `caf\xe9` held as "caf\udce9"), and any other lone surrogate.
    ['caf\udce9', 'caf\\udce9'],
    ['\ud800x\udfff', '\\ud800x\\udfff'],
  ])('shownText(%j) is %j', (text, expected) => {
    expect(shownText(text)).toBe(expected);
  });

  it('shownText leaves nothing unsafe and changes text already shown no further', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        const once = shownText(text);
        return !UNSAFE.test(once) && shownText(once) === once;
      }),
    );
  });

  it('shownPath escapes a backslash too, so two names never look alike', () => {
    expect(shownPath('back\\slash')).toBe('back\\\\slash');
    expect(shownPath('a\nb')).not.toBe(shownPath('a\\nb'));
    fc.assert(fc.property(anyText, anyText, (a, b) => a === b || shownPath(a) !== shownPath(b)));
  });

  it('quotedPath is a JSON string that reads back as the name, with nothing unsafe in it', () => {
    fc.assert(
      fc.property(anyText, (name) => {
        const quoted = quotedPath(name);
        return JSON.parse(quoted) === name && !UNSAFE.test(quoted);
      }),
    );
    expect(quotedPath('say "hi"\n')).toBe(JSON.stringify('say "hi"\n'));
  });

  it('shows a path longer than PATH_MAX (4095 bytes) by its first 100 characters and its length', () => {
    expect(shownPath('a'.repeat(4095))).toBe('a'.repeat(4095));
    expect(shownPath('é'.repeat(2048))).toBe(`${'é'.repeat(100)}… (4,096 bytes)`);
    expect(shownPath(`\n${'x/'.repeat(3000)}`)).toBe(`\\n${'x/'.repeat(49)}x… (6,001 bytes)`);
    // A character outside the BMP is not cut in half.
    expect(shownPath(`${'x'.repeat(99)}${'🎉'.repeat(2000)}`)).toBe(`${'x'.repeat(99)}… (8,099 bytes)`);
    // A byte that is not UTF-8 counts as the one byte it is on disk (not as U+FFFD's three).
    expect(shownPath('\udce9'.repeat(4095))).toBe('\\udce9'.repeat(4095));
    expect(shownPath('\udce9'.repeat(4096))).toBe(`${'\\udce9'.repeat(100)}… (4,096 bytes)`);
  });
});
