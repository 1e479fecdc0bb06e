// A local archive directory's removal is of a file the store listed, and the same file still (its
// device and inode). An object the store never listed nor looked up has nothing to compare with:
// before, its removal went by its path, size and mtime alone (a prune removed only files it had
// inspected, so no command did it; any new caller would have removed a file by its path).

import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { StorageError } from '../shared/errors.js';
import type { StoredObject } from '../shared/storage/archive-store.js';
import { LocalArchiveStore } from '../shared/storage/local-store.js';
import { verifiedMarkPath } from '../shared/storage/verified-mark.js';
import { tempDir } from './helpers/tree.js';

const dir = tempDir('openclaw-store-remove-');
afterAll(() => dir.cleanup());

/** The object a listing of `location` would give (name, size, mtime), made up by the caller. */
function madeUp(store: string, name: string): StoredObject {
  const location = path.join(store, name);
  const info = statSync(location);
  return { name, location, bytes: info.size, modifiedAt: new Date(Math.floor(info.mtimeMs)) };
}

describe('LocalArchiveStore.remove', () => {
  it('refuses (CHANGED) an object this store never listed, removing neither it nor its mark; removes it once listed', async () => {
    const store = path.join(dir.path, 'store');
    mkdirSync(path.join(store, 'acme'), { recursive: true });
    const archive = path.join(store, 'acme', '2026-06-03.tar.zst');
    writeFileSync(archive, 'an archive');
    writeFileSync(verifiedMarkPath(archive), 'a mark');

    const error = await new LocalArchiveStore(store).remove(madeUp(store, 'acme/2026-06-03.tar.zst')).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).code).toBe('CHANGED');
    expect((error as StorageError).message).toBe(`${archive} was not listed by this command (nothing to compare it with): not removed`);
    // Listed by another store (another command): still nothing this one saw.
    await new LocalArchiveStore(store).list();
    await expect(new LocalArchiveStore(store).remove(madeUp(store, 'acme/2026-06-03.tar.zst'))).rejects.toThrow(/was not listed by this command/);
    expect(readdirSync(path.join(store, 'acme')).sort()).toEqual([path.basename(verifiedMarkPath(archive)), '2026-06-03.tar.zst'].sort());

    // Listed (as prune lists: each object inspected, removed by a copy of its entry), looked up by name: removed.
    const listing = new LocalArchiveStore(store);
    const [listed] = await listing.list();
    await listing.inspect(listed!);
    expect(await listing.remove({ ...listed! })).toBe('removed');
    expect(readdirSync(path.join(store, 'acme'))).toEqual([]);
    writeFileSync(archive, 'another archive');
    const byName = new LocalArchiveStore(store);
    const found = await byName.objectAt('acme/2026-06-03.tar.zst');
    expect(await byName.remove(found!)).toBe('removed');
    expect(readdirSync(path.join(store, 'acme'))).toEqual([]);
  });
});
