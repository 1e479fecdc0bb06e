import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { StorageError, type StorageCode } from '../shared/errors.js';
import { MemoryLocation, MemoryStore } from '../shared/storage/memory.js';
import type { ArchiveLocation } from '../shared/storage/types.js';
import { withLogging, withRetries, type StorageEvent } from '../shared/storage/wrappers.js';
import { bodyOf, readAll, writeOptions } from './storage-contract.js';

/** A memory location whose first `failures` checks and reads fail with `code`. */
function flaky(failures: number, code: StorageCode): ArchiveLocation & { calls: number } {
  const inner = new MemoryLocation(new MemoryStore(), 'x');
  let left = failures;
  const location = {
    calls: 0,
    display: inner.display,
    async checkWritable(options: { readonly overwrite: boolean }) {
      location.calls++;
      if (left-- > 0) throw new StorageError('temporarily unreachable', code);
      return inner.checkWritable(options);
    },
    write: inner.write.bind(inner),
    async read() {
      location.calls++;
      if (left-- > 0) throw new StorageError('temporarily unreachable', code);
      return inner.read();
    },
  };
  return location;
}

describe('withRetries', () => {
  it('retries transient failures of checkWritable and read', async () => {
    const location = flaky(2, 'UNREACHABLE');
    await withRetries(location, { delayMs: 1 }).checkWritable({ overwrite: false });
    expect(location.calls).toBe(3);
    await location.write(bodyOf(Buffer.from('x')), writeOptions());
    const reading = flaky(1, 'THROTTLED');
    await reading.write(bodyOf(Buffer.from('y')), writeOptions());
    expect((await readAll(await withRetries(reading, { delayMs: 1 }).read())).toString()).toBe('y');
  });

  it('gives up after the attempts, and never retries permanent errors', async () => {
    const down = flaky(5, 'UNREACHABLE');
    await expect(withRetries(down, { delayMs: 1, attempts: 3 }).checkWritable({ overwrite: false })).rejects.toMatchObject({ code: 'UNREACHABLE' });
    expect(down.calls).toBe(3);
    const denied = flaky(5, 'ACCESS_DENIED');
    await expect(withRetries(denied, { delayMs: 1 }).checkWritable({ overwrite: false })).rejects.toMatchObject({ code: 'ACCESS_DENIED' });
    expect(denied.calls).toBe(1);
  });
});

describe('withLogging', () => {
  it('reports each operation once it has finished, reads when the stream ends', async () => {
    const events: StorageEvent[] = [];
    const location = withLogging(new MemoryLocation(new MemoryStore(), 'x'), (event) => events.push(event));
    await location.checkWritable({ overwrite: false });
    await location.write(bodyOf(Buffer.alloc(100_000)), writeOptions());
    const stream = await location.read();
    expect(events.map((event) => event.operation)).toEqual(['check', 'write']);
    expect((await readAll(stream)).length).toBe(100_000);
    await expect(location.write(Readable.from([Buffer.from('x')]), writeOptions())).rejects.toThrow(/already exists/);
    expect(events.map(({ operation, outcome, bytes, code }) => ({ operation, outcome, bytes, code }))).toEqual([
      { operation: 'check', outcome: 'ok', bytes: undefined, code: undefined },
      { operation: 'write', outcome: 'ok', bytes: 100_000, code: undefined },
      { operation: 'read', outcome: 'ok', bytes: 100_000, code: undefined },
      { operation: 'write', outcome: 'error', bytes: undefined, code: 'DESTINATION_EXISTS' },
    ]);
    expect(events.every((event) => event.location === 'memory:x')).toBe(true);
  });
});
