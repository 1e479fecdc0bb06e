// Files the tool makes by name in the tenant base dir and reads back (a restore's journal, a
// continuing backup's state) are read never through a symlink and never waiting on a FIFO.
// The base dir is its owner's (the gateway's service user), who can put anything under those
// names: a FIFO as `.openclaw-journal-acme.json` hung root's `tenants list` (and every command
// that sweeps the base dir) for good, and one as `.openclaw-continuation-acme` hung
// `tenants recover acme` (reproduced with the CLI as a second user).

import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { continuationPathFor, loadContinuation } from '../shared/backup/continuation.js';
import { FileSystemError } from '../shared/errors.js';
import { readOwnFile } from '../shared/file-access.js';
import { recoverSlot } from '../shared/tenant/slot.js';
import { lettingWaitingOpensGo } from './helpers/fifo.js';
import { tempDir } from './helpers/tree.js';

let dir: ReturnType<typeof tempDir>;
let base: string;
beforeEach(() => {
  dir = tempDir();
  base = path.join(dir.path, 'tenants');
  mkdirSync(path.join(base, 'acme'), { recursive: true });
});
afterEach(() => dir.cleanup());

/** Runs `read` with a FIFO at `file`. */
async function withFifo<T>(file: string, read: () => Promise<T>): Promise<T> {
  spawnSync('mkfifo', [file]);
  expect(lstatSync(file).isFIFO()).toBe(true);
  return lettingWaitingOpensGo(file, read);
}

const refusal = (file: string, what: string) => `${file} is ${what}, which this tool never makes: someone else who can write in its directory put it there; remove it, then run the command again`;

describe('files the tool reads back from the base dir', () => {
  it('a FIFO as a restore journal stops the recovery in one line, at once', async () => {
    const journal = path.join(base, '.openclaw-journal-acme.json');
    const failure = await withFifo(journal, () => recoverSlot(base, 'acme').catch((error: unknown) => error));
    expect(failure).toBeInstanceOf(FileSystemError);
    expect((failure as Error).message).toBe(refusal(journal, 'a FIFO'));
    expect(lstatSync(journal).isFIFO()).toBe(true);
  });

  it('a FIFO as a continuing backup\'s state stops its loading in one line, at once', async () => {
    const state = continuationPathFor(base, 'acme');
    const failure = await withFifo(state, () => loadContinuation(base, 'acme').catch((error: unknown) => error));
    expect(failure).toBeInstanceOf(FileSystemError);
    expect((failure as Error).message).toBe(refusal(state, 'a FIFO'));
  });

  it('reads a regular file whole, and refuses a symlink, a directory or one past the bound', async () => {
    const file = path.join(dir.path, 'own');
    writeFileSync(file, 'x'.repeat(100_000));
    expect((await readOwnFile(file, 200_000)).toString()).toBe('x'.repeat(100_000));
    await expect(readOwnFile(file, 1_000)).rejects.toThrow(`${file} is larger than any file this tool makes there (100000 bytes)`);
    const link = path.join(dir.path, 'link');
    symlinkSync(file, link);
    await expect(readOwnFile(link, 200_000)).rejects.toThrow(refusal(link, 'a symlink'));
    await expect(readOwnFile(base, 200_000)).rejects.toThrow(refusal(base, 'a directory'));
    await expect(readOwnFile(path.join(dir.path, 'none'), 10)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
