import { describe, expect, it } from 'vitest';
import { MemoryLocation, MemoryStore } from '../shared/storage/memory.js';
import { bodyOf, describeStorageContract, METADATA, writeOptions } from './storage-contract.js';

const store = new MemoryStore();

describeStorageContract('memory', { largeBytes: 8 * 1024 * 1024, atomicNoClobber: true }, () => ({
  location: (name) => new MemoryLocation(store, name),
  leftovers: async () => [],
}));

describe('MemoryLocation', () => {
  it('keeps the metadata and the final metadata with the archive', async () => {
    const location = new MemoryLocation(new MemoryStore(), 'x');
    await location.write(bodyOf(Buffer.from('hello')), { ...writeOptions(), finalMetadata: () => ({ 'manifest-sha256': 'abc' }) });
    const stored = location.store.archives.get('x');
    expect(stored?.metadata).toEqual(METADATA);
    expect(stored?.finalMetadata).toEqual({ 'manifest-sha256': 'abc' });
    expect(location.display).toBe('memory:x');
  });
});
