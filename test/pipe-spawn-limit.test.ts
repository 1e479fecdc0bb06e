// A `--pipe` command that cannot start because no process can be made (EAGAIN from fork under
// a user's small `ulimit -u`) says which limit to raise. Root is not bound by that limit and a
// user's own processes count against it, so the failure is made by a spawn that fails as
// fork(2) does there.

import { describe, expect, it, vi } from 'vitest';

import { bodyOf, writeOptions } from './storage-contract.js';

vi.mock('node:child_process', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:child_process')>();
  return {
    ...actual,
    spawn: vi.fn(() => {
      throw Object.assign(new Error('spawn EAGAIN'), { code: 'EAGAIN', errno: -11, syscall: 'spawn' });
    }),
  };
});

const { PipeCommandError } = await import('../shared/errors.js');
const { MemoryLocation, MemoryStore } = await import('../shared/storage/memory.js');
const { withPipeCommand } = await import('../shared/storage/pipe.js');

describe('a --pipe command that cannot start', () => {
  it('names the process limit when no process could be made (EAGAIN), and stores nothing', async () => {
    const store = new MemoryStore();
    const location = withPipeCommand(new MemoryLocation(store, 'acme.tar.zst'), 'gzip');
    const error = await location.write(bodyOf(Buffer.from('x')), writeOptions()).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(PipeCommandError);
    expect((error as Error).message).toBe('pipe command could not start: EAGAIN, the limit of processes and threads is reached (raise it: ulimit -u)');
    expect(store.archives.size).toBe(0);
  });
});
