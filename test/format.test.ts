import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { formatBytes, groupThousands, plural } from '../shared/format.js';

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
