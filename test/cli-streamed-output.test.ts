// A result too large to hold as one text (tenants backups of 100,000 objects): written a piece
// at a time, the same bytes as one line, and no faster than stdout takes them.
import { Writable } from 'node:stream';

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { jsonLine, jsonLineChunks, writeChunks } from '../cli/output.js';

describe('a JSON line written in pieces', () => {
  it('is the line JSON.stringify makes, whatever the members and the array hold', () => {
    const member = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.integer(), fc.constant(undefined), fc.boolean(), fc.object());
    fc.assert(
      fc.property(fc.dictionary(fc.string(), member), fc.array(fc.oneof(member, fc.object())), fc.string(), fc.string(), (members, list, key, notAList) => {
        const value = { ...members, [key]: list };
        expect([...jsonLineChunks(value, [key, notAList])].join('')).toBe(jsonLine(value));
      }),
    );
  });

  it('escapes what a terminal would act on in every piece, as the whole line does', () => {
    const value = { operation: 'backups', location: 's3://b/\u009b31m/', backups: [{ name: 'a\u007f\u200e' }, { name: '\u001b[2J' }], otherObjects: 0 };
    const chunks = [...jsonLineChunks(value, ['backups'])];
    expect(chunks.length).toBeGreaterThan(3);
    expect(chunks.join('')).toBe(jsonLine(value));
    expect(chunks.join('')).not.toMatch(/[\u007f\u009b\u200e\u001b]/);
  });
});

describe('writing pieces to a stream', () => {
  it('takes no more pieces than the stream has room for until it drains', async () => {
    const taken: string[] = [];
    let release: (() => void) | undefined;
    const slow = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _encoding, done) {
        taken.push(chunk.toString());
        release = done;
      },
    });
    let made = 0;
    function* pieces() {
      for (let index = 0; index < 1000; index++) {
        made += 1;
        yield `${'x'.repeat(1023)}\n`;
      }
    }
    const writing = writeChunks(slow, pieces());
    await new Promise((resolve) => setImmediate(resolve));
    // One gathered write of ~64 KiB is with the stream, the next waits for it: 1 MiB is not made up front.
    expect(made).toBeLessThan(200);
    while (made < 1000 || release !== undefined) {
      const done = release;
      release = undefined;
      done?.();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await writing;
    expect(taken.join('')).toBe(`${'x'.repeat(1023)}\n`.repeat(1000));
  });

  it('stops taking pieces, quietly, once the stream fails (the reader left: EPIPE)', async () => {
    const broken = new Writable({
      highWaterMark: 1024,
      write(_chunk, _encoding, done) {
        done(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    const failures: string[] = [];
    broken.on('error', (error: NodeJS.ErrnoException) => failures.push(error.code ?? ''));
    let made = 0;
    function* pieces() {
      for (let index = 0; index < 10_000; index++) {
        made += 1;
        yield `${'x'.repeat(1023)}\n`;
      }
    }
    await writeChunks(broken, pieces());
    expect(failures).toEqual(['EPIPE']);
    expect(made).toBeLessThan(200);
  });
});
