// A local archive directory another user can write (the service user's backups, which root
// lists and prunes): a subdirectory swapped for a symlink between the listing of its parent and
// its own was listed wherever the link led, and root's prune removed the root-only archives it
// found there (the removal's device and inode check compared with what that listing saw).
// Reproduced with the CLI: strace's delay_exit on getdents64 and `mv sub sub.real && ln -s
// /root-only sub` by the directory's owner; `prune --keep-last 1` removed two of its three.

import { mkdirSync, readdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';

import { CAN_CHECK_OPENED_PATHS } from '../shared/file-access.js';
import { LocalArchiveStore } from '../shared/storage/local-store.js';
import { tempDir } from './helpers/tree.js';

/** Runs once after the next `readdir` of node:fs/promises has read its directory. */
const afterNextReaddir = vi.hoisted(() => ({ hook: undefined as undefined | (() => void) }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  const readdir = (async (...args: Parameters<typeof actual.readdir>) => {
    const names = await (actual.readdir as (...a: unknown[]) => Promise<unknown>)(...args);
    const hook = afterNextReaddir.hook;
    afterNextReaddir.hook = undefined;
    hook?.();
    return names;
  }) as typeof actual.readdir;
  return { ...actual, default: { ...actual, readdir }, readdir };
});

const dir = tempDir('openclaw-listing-swap-');
afterAll(() => dir.cleanup());

describe.skipIf(!CAN_CHECK_OPENED_PATHS)('a local archive directory changed while it is listed', () => {
  it('lists nothing through a subdirectory swapped for a symlink after its parent was read, and removes nothing there', async () => {
    const store = path.join(dir.path, 'store');
    const sub = path.join(store, '2026');
    mkdirSync(sub, { recursive: true });
    writeFileSync(path.join(sub, 'own.tar.zst'), 'the user own');
    const victim = path.join(dir.path, 'root-only');
    mkdirSync(victim, { mode: 0o700 });
    writeFileSync(path.join(victim, 'own.tar.zst'), 'root only', { mode: 0o600 });

    const local = new LocalArchiveStore(store);
    afterNextReaddir.hook = () => {
      renameSync(sub, path.join(store, 'moved'));
      symlinkSync(victim, sub);
    };
    const listed = await local.list();
    expect(afterNextReaddir.hook).toBeUndefined();
    expect(listed.map((object) => object.name)).toEqual([]);

    // Listed before the swap, the same name through the symlink is another file: not removed.
    renameSync(sub, path.join(dir.path, 'link'));
    renameSync(path.join(store, 'moved'), sub);
    const before = await local.list();
    expect(before.map((object) => object.name)).toEqual(['2026/own.tar.zst']);
    renameSync(sub, path.join(store, 'moved'));
    renameSync(path.join(dir.path, 'link'), sub);
    await expect(local.inspect(before[0]!)).rejects.toThrow(/2026\/own\.tar\.zst is no longer the file listed there/);
    await expect(local.remove(before[0]!)).rejects.toThrow(/2026\/own\.tar\.zst changed since it was listed: not removed/);
    expect(readdirSync(victim)).toEqual(['own.tar.zst']);
    expect(readdirSync(path.join(store, 'moved'))).toEqual(['own.tar.zst']);
  });
});
