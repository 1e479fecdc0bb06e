// --pipe: encryption with age through a local file and S3, and every way a command can
// fail (cannot start, exits non-zero, dies mid-stream, quits early, is aborted) leaving
// nothing behind.

import type { S3Client } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { generateIdentity } from '../shared/age/keys.js';
import { ARCHIVE_MARKER_NIBBLE } from '../shared/archive/manifest.js';
import { SKIPPABLE_MAGIC_BASE } from '../shared/archive/zstd-format.js';
import { AbortedError, DestinationExistsError, PipeCommandError, StorageError } from '../shared/errors.js';
import { LocalFileLocation } from '../shared/storage/local.js';
import { MemoryLocation, MemoryStore } from '../shared/storage/memory.js';
import { openLocation } from '../shared/storage/open-location.js';
import { withPipeCommand } from '../shared/storage/pipe.js';
import type { ArchiveLocation } from '../shared/storage/types.js';
import { createS3Client } from '../shared/storage/s3-client.js';
import { S3Location } from '../shared/storage/s3.js';
import { startS3Server, type S3TestServer } from './helpers/s3-server.js';
import { bodyOf, describeStorageContract, failingBody, readAll, sha256, stallingBody, writeOptions } from './storage-contract.js';

/**
 * How many looks at a stopped command's processes (process-tree.ts `survivors`), once they have
 * been sent SIGKILL, still find them all running, as on a loaded machine where the kernel has
 * not yet run a killed process's exit; a test sets it. `left`: how many are still to come.
 */
const lagging = vi.hoisted(() => ({ looks: 0, left: 0, killed: false }));
vi.mock('../shared/storage/process-tree.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../shared/storage/process-tree.js')>();
  const signalTree: typeof original.signalTree = (members, signal, withNewChildren) => {
    if (signal === 'SIGKILL' && lagging.looks > 0) {
      lagging.killed = true;
      lagging.left = lagging.looks;
    }
    return original.signalTree(members, signal, withNewChildren);
  };
  const survivors: typeof original.survivors = (members) => {
    if (lagging.left === 0) return original.survivors(members);
    lagging.left--;
    return [...members];
  };
  return { ...original, signalTree, survivors };
});

const run = promisify(execFile);
const MiB = 1024 * 1024;
const hasAge = existsSync('/usr/bin/age') && existsSync('/usr/bin/age-keygen');

let dir: string;
let keyFile: string;
let recipient: string;
let server: S3TestServer;
let client: S3Client;
let counter = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'openclaw-pipe-'));
  if (hasAge) {
    keyFile = join(dir, 'key.txt');
    await run('age-keygen', ['-o', keyFile]);
    recipient = (await run('age-keygen', ['-y', keyFile])).stdout.trim();
  }
  server = await startS3Server();
  client = await createS3Client(server.clientOptions);
});
afterAll(async () => {
  client?.destroy();
  await server?.dispose();
  await rm(dir, { recursive: true, force: true });
});

/** The storage contract holds through a --pipe command: `cat` over a local file (its temporary files are its leftovers). */
describeStorageContract('--pipe (cat) over a local file', { largeBytes: 8 * MiB, atomicNoClobber: true, readsStoredBytes: false }, () => ({
  location: (name) => withPipeCommand(new LocalFileLocation(join(dir, 'contract', name)), 'cat'),
  leftovers: async () => (await readdir(join(dir, 'contract')).catch(() => [] as string[])).filter((name) => name.startsWith('.')),
}));

/** `pieces`, each after a pause of 300 ms but the first, and then its end after another. */
function endingLate(pieces: readonly Buffer[]): Readable {
  return Readable.from(
    (async function* () {
      for (const [index, piece] of pieces.entries()) {
        if (index > 0) await new Promise((resolve) => setTimeout(resolve, 300));
        yield piece;
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
    })(),
    { objectMode: false },
  );
}

/** `bytes` random bytes behind our archive's marker frame magic: what `cat` passes on of a backup (it judges itself by its footer: no note). */
function ourArchive(bytes: number): Buffer {
  const marker = Buffer.alloc(8);
  marker.writeUInt32LE(SKIPPABLE_MAGIC_BASE + ARCHIVE_MARKER_NIBBLE, 0);
  return Buffer.concat([marker, randomBytes(bytes)]);
}

function localFile(): LocalFileLocation {
  return new LocalFileLocation(join(dir, `archives-${counter}`, `a-${counter++}.tar.zst.age`));
}

async function expectEmptyDirectory(location: LocalFileLocation): Promise<void> {
  expect(await readdir(join(location.path, '..')).catch(() => [])).toEqual([]);
}

/** Whether `pid` is a live process (a zombie, exited but not yet reaped, is not). */
function isRunning(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

/** The running processes (zombies are not) whose environment holds `mark`, as "pid command". */
function marked(mark: string): string[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .flatMap((pid) => {
      try {
        if (!isRunning(Number(pid)) || !readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(mark)) return [];
        return [`${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'latin1').replaceAll('\0', ' ').trim()}`];
      } catch {
        return []; // exited meanwhile, or not ours to read
      }
    });
}

async function until(condition: () => boolean): Promise<void> {
  for (let waited = 0; !condition(); waited += 10) {
    if (waited > 10_000) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function pipeError(promise: Promise<unknown>): Promise<PipeCommandError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PipeCommandError);
  expect((error as Error).message).not.toContain('\n');
  return error as PipeCommandError;
}

describe.runIf(hasAge)('--pipe with age', () => {
  it('encrypts to a local file that age decrypts byte for byte, and reads back the plaintext', async () => {
    const plain = randomBytes(5 * MiB + 17);
    const inner = localFile();
    const result = await withPipeCommand(inner, `age -r ${recipient}`).write(bodyOf(plain), writeOptions());
    const stored = await readFile(inner.path);
    expect(result.bytes).toBe(stored.length);
    expect(stored.subarray(0, 21).toString()).toBe('age-encryption.org/v1');
    const decrypted = (await run('age', ['-d', '-i', keyFile, inner.path], { encoding: 'buffer', maxBuffer: 64 * MiB })).stdout;
    expect(sha256(decrypted)).toBe(sha256(plain));
    const back = await readAll(await withPipeCommand(inner, `age -d -i '${keyFile}'`).read());
    expect(sha256(back)).toBe(sha256(plain));
  });

  it('encrypts to S3 and decrypts on the way back', async () => {
    const plain = randomBytes(12 * MiB + 5);
    const inner = new S3Location({ client, bucket: server.bucket, key: 'pipe/x.tar.zst.age', endpoint: server.endpoint, partSize: 5 * MiB });
    await withPipeCommand(inner, `age -r ${recipient}`).write(bodyOf(plain), writeOptions());
    const stored = await readAll(await inner.read());
    expect(stored.subarray(0, 21).toString()).toBe('age-encryption.org/v1');
    const decrypted = await new Promise<Buffer>((resolve, reject) => {
      const child = execFile('age', ['-d', '-i', keyFile], { encoding: 'buffer', maxBuffer: 64 * MiB }, (error, stdout) =>
        error ? reject(error) : resolve(stdout),
      );
      child.stdin?.end(stored);
    });
    expect(sha256(decrypted)).toBe(sha256(plain));
    expect(sha256(await readAll(await withPipeCommand(inner, `age -d -i '${keyFile}'`).read()))).toBe(sha256(plain));
  });

  it('fails the read with the last line of age\'s stderr when the key is wrong', async () => {
    const inner = localFile();
    await withPipeCommand(inner, `age -r ${recipient}`).write(bodyOf(randomBytes(1000)), writeOptions());
    const otherKey = join(dir, 'other.txt');
    await run('age-keygen', ['-o', otherKey]);
    const error = await pipeError(readAll(await withPipeCommand(inner, `age -d -i '${otherKey}'`).read()));
    expect(error.message).toMatch(/^pipe command failed with exit code 1: .*no identity matched/);
  });

  it("never repeats a secret key given to age -r by mistake, which age's error echoes", async () => {
    const inner = localFile();
    const secret = (await run('age-keygen')).stdout.split('\n').find((line) => line.startsWith('AGE-SECRET-KEY-1'))!;
    const error = await pipeError(withPipeCommand(inner, `age -r ${secret}`).write(bodyOf(randomBytes(1000)), writeOptions()));
    expect(error.message).toMatch(/^pipe command failed with exit code 1: age: error: .*"AGE-SECRET-KEY-1\*\*\*"$/);
    expect(error.message).not.toContain(secret.slice(16));
    await expectEmptyDirectory(inner);
  });

  // The line's control characters were dropped before it was redacted: a key behind a terminal
  // colour (ESC[1m, then `[1m`: a letter) or behind `X\x01` was shown whole.
  it('never shows a secret key that a control character or a terminal colour comes before', async () => {
    const inner = localFile();
    const secret = (await run('age-keygen')).stdout.split('\n').find((line) => line.startsWith('AGE-SECRET-KEY-1'))!;
    const coloured = await pipeError(withPipeCommand(inner, `printf 'age: error: unknown recipient: \\033[1m%s\\033[0m\\n' '${secret}' >&2; exit 1`).write(bodyOf(randomBytes(1000)), writeOptions()));
    expect(coloured.message).toBe('pipe command failed with exit code 1: age: error: unknown recipient: [1mAGE-SECRET-KEY-1***[0m');
    const joined = await pipeError(withPipeCommand(inner, `printf 'error: X\\001%s\\n' '${secret}' >&2; exit 1`).write(bodyOf(randomBytes(1000)), writeOptions()));
    expect(joined.message).toBe('pipe command failed with exit code 1: error: XAGE-SECRET-KEY-1***');
    await expectEmptyDirectory(inner);
  });

  // Only the last 4,096 bytes of stderr are kept: a key echoed just before them lost its AGE-SECRET-KEY-1, and 35 of its characters were shown.
  it('never shows the end of a secret key whose start fell before the stderr kept', async () => {
    const inner = localFile();
    const secret = (await run('age-keygen')).stdout.split('\n').find((line) => line.startsWith('AGE-SECRET-KEY-1'))!;
    const after = ` ${'z'.repeat(4060)}`;
    const error = await pipeError(withPipeCommand(inner, `printf '%s' 'error: ${secret}${after}' >&2; exit 1`).write(bodyOf(randomBytes(1000)), writeOptions()));
    expect(error.message).toMatch(/^pipe command failed with exit code 1: z{299}…$/);
    expect(error.message).not.toContain(secret.slice(-20));
    // A tail of one word, its start lost, is not shown at all.
    const word = await pipeError(withPipeCommand(inner, `printf '%s' '${secret.repeat(80)}' >&2; exit 1`).write(bodyOf(randomBytes(1000)), writeOptions()));
    expect(word.message).toBe('pipe command failed with exit code 1');
    await expectEmptyDirectory(inner);
  });

  // A line past 300 characters was shown by its start only: 4,080 y's and then " error: boom" showed 299 y's, never the error.
  it('shows the end of an over-long stderr line when only its end names the error, a secret key in it masked', async () => {
    const inner = localFile();
    const error = await pipeError(withPipeCommand(inner, `printf '%s' '${'y'.repeat(4080)} error: boom' >&2; exit 1`).write(bodyOf(randomBytes(1000)), writeOptions()));
    expect(error.message).toBe('pipe command failed with exit code 1: …error: boom');
    const secret = (await run('age-keygen')).stdout.split('\n').find((line) => line.startsWith('AGE-SECRET-KEY-1'))!;
    const words = await pipeError(withPipeCommand(inner, `printf '%s' '${'yes '.repeat(900)}age: error: bad recipient "${secret}"' >&2; exit 1`).write(bodyOf(randomBytes(1000)), writeOptions()));
    const shown = words.message.slice('pipe command failed with exit code 1: '.length);
    // Bounded as a line's start is, the word the cut went through left out.
    expect(shown).toMatch(/^…yes (yes )+age: error: bad recipient "AGE-SECRET-KEY-1\*\*\*"$/);
    expect(shown.length).toBeLessThanOrEqual(300);
    expect(words.message).not.toContain(secret.slice(16));
    // An error named at the start still shows the start.
    const start = await pipeError(withPipeCommand(inner, `printf '%s' 'error: ${'y'.repeat(400)} error: boom' >&2; exit 1`).write(bodyOf(randomBytes(1000)), writeOptions()));
    expect(start.message).toMatch(/^pipe command failed with exit code 1: error: y{292}…$/);
    await expectEmptyDirectory(inner);
  });

  // An error in the middle of a line past 300 characters showed the line's start: 400 y's, " age: error: bad recipient" and 400 z's showed 299 y's.
  it('shows the part of an over-long stderr line around its error when the error is in its middle, bounded, a secret key in it masked', async () => {
    const inner = localFile();
    const error = await pipeError(withPipeCommand(inner, `printf '%s' '${'y'.repeat(400)} age: error: bad recipient ${'z'.repeat(400)}' >&2; exit 1`).write(bodyOf(randomBytes(1000)), writeOptions()));
    // The words the window's ends cut through (the y's, the z's) are left out.
    expect(error.message).toBe('pipe command failed with exit code 1: …age: error: bad recipient…');
    const secret = (await run('age-keygen')).stdout.split('\n').find((line) => line.startsWith('AGE-SECRET-KEY-1'))!;
    const words = await pipeError(withPipeCommand(inner, `printf '%s' '${'yes '.repeat(200)}age: error: bad recipient "${secret}" ${'no '.repeat(200)}' >&2; exit 1`).write(bodyOf(randomBytes(1000)), writeOptions()));
    const shown = words.message.slice('pipe command failed with exit code 1: '.length);
    expect(shown).toMatch(/^…(yes )+age: error: bad recipient "AGE-SECRET-KEY-1\*\*\*" (no )+no…$/);
    expect(shown.length).toBeLessThanOrEqual(300);
    // Some of what it was doing before the error, not only the error.
    expect(shown.indexOf('age: error')).toBeGreaterThan(40);
    expect(words.message).not.toContain(secret.slice(16));
    await expectEmptyDirectory(inner);
  });

  // Either cut of an over-long line (its start; the window around its error, the word after it holding the error word) went through an emoji's surrogate pair: its lone half was shown as `\ud83d` (built CLI, tenants backup --pipe).
  it('never cuts an over-long stderr line through a character outside the BMP', async () => {
    const inner = localFile();
    const lone = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
    // Each cut lands in the pair's middle at one of the two lengths before it.
    for (const [before, colons] of [['', ':'], ['x', '::']]) {
      const afterStart = await pipeError(withPipeCommand(inner, `printf '%s' '${before}age: error: ${'😀'.repeat(400)}' >&2; exit 1`).write(bodyOf(randomBytes(1000)), writeOptions()));
      expect(afterStart.message).toMatch(/^pipe command failed with exit code 1: x?age: error: (😀)+…$/u);
      expect(afterStart.message).not.toMatch(lone);
      const inMiddle = await pipeError(withPipeCommand(inner, `printf '%s' '${'y'.repeat(400)} age: error${colons}${'😀'.repeat(400)}' >&2; exit 1`).write(bodyOf(randomBytes(1000)), writeOptions()));
      expect(inMiddle.message).toMatch(/^pipe command failed with exit code 1: …age: error::?(😀)+…$/u);
      expect(inMiddle.message).not.toMatch(lone);
    }
    await expectEmptyDirectory(inner);
  });
});

describe('--pipe failures', () => {
  it.each([
    ['exit 3', /^pipe command failed with exit code 3$/],
    ['false', /^pipe command failed with exit code 1$/],
    ['echo "first line" >&2; echo "encryption failed: bad recipient" >&2; exit 2', /^pipe command failed with exit code 2: encryption failed: bad recipient$/],
    ['no-such-command-openclaw', /^pipe command failed with exit code 127: .*not found/],
    ['head -c 100000; kill -9 $$', /^pipe command was killed by SIGKILL$/],
    ['head -c 100000 >/dev/null', /^pipe command exited before reading all of its input$/],
    // Its output goes to a file (age -r … -o FILE): storing nothing would pass for a backup.
    ['cat >/dev/null', /^pipe command read 3145728 bytes and wrote nothing to its standard output \(does it write to a file instead, e\.g\. with -o\?\)$/],
    // A progress meter's carriage-return updates and then the error on the same line: the error was cut off after 300 characters of the meter.
    ['i=0; while [ $i -lt 200 ]; do printf "\\r  45%%|#####     | $i/200" >&2; i=$((i+1)); done; printf "\\rzstd: error 70 : Write error : No space left on device\\n" >&2; exit 70', /^pipe command failed with exit code 70: zstd: error 70 : Write error : No space left on device$/],
  ])('%s → PipeCommandError, nothing stored', async (command, message) => {
    const inner = localFile();
    const body = bodyOf(randomBytes(3 * MiB));
    const error = await pipeError(withPipeCommand(inner, command).write(body, writeOptions()));
    expect(error.message).toMatch(message);
    expect(body.destroyed).toBe(true);
    await expectEmptyDirectory(inner);
  });

  // Without pipefail a pipeline's status was its last process's: the first one failing after
  // it had read the whole archive (gpg or age at its end, a full disk under a tee) exited 0,
  // and its cut-short output was stored as a backup (`{ head -c 1000; …; exit 2; } | cat`:
  // "Backed up …, 1000 B stored", exit 0).
  it.each([
    ['{ head -c 1000; cat >/dev/null; echo "gpg: error: write failed" >&2; exit 2; } | cat', /^pipe command failed with exit code 2: gpg: error: write failed$/],
    ['{ cat; exit 3; } | cat | cat', /^pipe command failed with exit code 3$/],
    ['false | cat', /^pipe command failed with exit code 1$/],
    ['cat | { head -c 1000; exit 0; }', /^pipe command failed with exit code 141 \(128 \+ SIGPIPE\)$/],
  ])('%s (a process before the last one fails) → PipeCommandError, nothing stored, locally and in S3', async (command, message) => {
    const local = localFile();
    const error = await pipeError(withPipeCommand(local, command).write(bodyOf(randomBytes(300_000)), writeOptions()));
    expect(error.message).toMatch(message);
    await expectEmptyDirectory(local);
    const inner = new S3Location({ client, bucket: server.bucket, key: `pipe/pipeline-${counter++}.tar.zst`, endpoint: server.endpoint, partSize: 5 * MiB });
    expect((await pipeError(withPipeCommand(inner, command).write(bodyOf(randomBytes(300_000)), writeOptions()))).message).toMatch(message);
    await expect(inner.read()).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  // `age -r R | { head -c 300; cat >/dev/null; }` exits 0 with 300 bytes: before, "Backed up … 300 B stored" without a word (and a record said it was complete).
  it.skipIf(!existsSync('/usr/bin/age'))('says so when its age output is not as long as age makes one of the archive, and not when it is (one chunk or many)', async () => {
    const recipient = generateIdentity().recipient.text;
    const cut = await withPipeCommand(localFile(), `age -r ${recipient} | { head -c 300; cat >/dev/null; }`).write(bodyOf(randomBytes(100_000)), writeOptions());
    expect(cut.note).toBe("the --pipe command's output is an age file, but not as long as age makes one of this archive (cut short, or something besides age in the command): nothing records it complete; tenants verify it (--identity KEY_FILE; an armored one, age -a: --pipe 'age -d -i KEY_FILE')");
    for (const bytes of [1, 65_536, 200_000]) {
      expect((await withPipeCommand(localFile(), `age -r ${recipient}`).write(bodyOf(randomBytes(bytes)), writeOptions())).note, String(bytes)).toBeUndefined();
    }
    // Our own archive through `cat` judges itself (its footer); other bytes no one can measure are recorded complete by nothing, and it says so.
    expect((await withPipeCommand(localFile(), 'cat').write(bodyOf(ourArchive(1000)), writeOptions())).note).toBeUndefined();
    expect((await withPipeCommand(localFile(), 'gzip').write(bodyOf(randomBytes(1000)), writeOptions())).note).toBe(
      "the --pipe command's output is neither an age file this tool can measure nor its own archive, so whether it is complete cannot be told: nothing records it complete; tenants verify it (--pipe with the command that undoes it) to count it",
    );
  });

  // `age -a -r R | { head -c 300; cat >/dev/null; }` exits 0 with 300 bytes: before, no note (an armored output was not judged) and, on S3, a size tag of 300 that listed it whole.
  it.skipIf(!existsSync('/usr/bin/age'))('says so when its armored age output is cut short, even just before its END line, and not when it is whole', async () => {
    const recipient = generateIdentity().recipient.text;
    const body = randomBytes(100_000);
    const whole = await withPipeCommand(localFile(), `age -a -r ${recipient}`).write(bodyOf(body), writeOptions());
    expect(whole.note).toBeUndefined();
    for (const kept of [300, whole.bytes - 34]) {
      const cut = await withPipeCommand(localFile(), `age -a -r ${recipient} | { head -c ${kept}; cat >/dev/null; }`).write(bodyOf(body), writeOptions());
      expect(cut.note, String(kept)).toBe("the --pipe command's output is an age file, but not as long as age makes one of this archive (cut short, or something besides age in the command): nothing records it complete; tenants verify it (--identity KEY_FILE; an armored one, age -a: --pipe 'age -d -i KEY_FILE')");
    }
    // Every length of the binary file modulo 48 (its base64 lines' 64 columns hold 48 bytes): a padded last line of 64 columns among them.
    for (let bytes = 70_000; bytes < 70_048; bytes++) {
      expect((await withPipeCommand(localFile(), `age -a -r ${recipient}`).write(bodyOf(body.subarray(0, bytes)), writeOptions())).note, String(bytes)).toBeUndefined();
    }
    expect((await withPipeCommand(localFile(), `age -a -r ${recipient}`).write(bodyOf(Buffer.alloc(0)), writeOptions())).note).toBeUndefined();
  });

  // Where no shell has pipefail (Debian's dash 0.5.12 as /bin/sh, no bash installed) the
  // archive `{ cat; exit 2; } | cat` wrote was stored, and the backup said nothing of it.
  it.skipIf(!existsSync('/usr/bin/dash') || !existsSync('/bin/bash'))('says so when the command ran without pipefail, and not when it ran with it', async () => {
    const withoutPipefail = await withPipeCommand(localFile(), '{ cat; exit 2; } | cat', { shell: '/usr/bin/dash' }).write(bodyOf(ourArchive(1000)), writeOptions());
    expect(withoutPipefail.note).toBe('the --pipe command ran without pipefail (/bin/sh has none and bash is not installed): a failure of any process of a pipeline in it but the last went unseen');
    const withPipefail = await withPipeCommand(localFile(), 'cat | cat', { shell: '/bin/bash' }).write(bodyOf(ourArchive(1000)), writeOptions());
    expect(withPipefail.note).toBeUndefined();
  });

  it('reads back nothing through a pipeline whose first process fails after reading the stored bytes', async () => {
    const stored = localFile();
    await stored.write(bodyOf(randomBytes(300_000)), writeOptions());
    const error = await pipeError(readAll(await withPipeCommand(stored, '{ head -c 1000; cat >/dev/null; exit 2; } | cat').read()));
    expect(error.message).toBe('pipe command failed with exit code 2');
  });

  // A small archive fits whole in the buffer between us and the command, so every write
  // succeeds whether it reads it or not: `head -c 100` exiting 0 was a backup of 100 bytes.
  it.each([
    ['head -c 100; sleep 0.5', 1000],
    ['head -c 999; sleep 0.5', 1000],
    ['trap "" TERM; head -c 100; sleep 0.5', 150_000],
    ['sleep 0.5', 1000],
  ])('%s (a %i-byte archive, left partly unread) → PipeCommandError, nothing stored, locally and in S3', async (command, size) => {
    const local = localFile();
    const error = await pipeError(withPipeCommand(local, command).write(bodyOf(randomBytes(size)), writeOptions()));
    expect(error.message).toBe('pipe command exited before reading all of its input');
    await expectEmptyDirectory(local);
    const inner = new S3Location({ client, bucket: server.bucket, key: `pipe/unread-${counter++}.tar.zst`, endpoint: server.endpoint, partSize: 5 * MiB });
    await pipeError(withPipeCommand(inner, command).write(bodyOf(randomBytes(size)), writeOptions()));
    await expect(inner.read()).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  // A command that reads every byte and exits without waiting for the end of its input (`head
  // -c SIZE`, a decoder stopping at its format's end) may exit before the archive's own end comes:
  // it was refused ("exited before reading all"), 5 restores in 20 through `head -c` of the size.
  it('stores the archive through a command that read every byte and exited before the archive ended', async () => {
    const body = randomBytes(1000);
    const inner = localFile();
    await withPipeCommand(inner, `head -c ${body.length}`).write(endingLate([body]), writeOptions());
    expect(sha256(await readFile(inner.path))).toBe(sha256(body));
  });

  it('still refuses a command that exited before bytes the archive gave after a pause', async () => {
    const local = localFile();
    const error = await pipeError(withPipeCommand(local, 'head -c 1000').write(endingLate([randomBytes(1000), randomBytes(10)]), writeOptions()));
    expect(error.message).toBe('pipe command exited before reading all of its input');
    await expectEmptyDirectory(local);
  });

  it('reads back nothing through a command that leaves the stored bytes partly unread', async () => {
    const stored = localFile();
    await stored.write(bodyOf(randomBytes(1000)), writeOptions());
    const error = await pipeError(readAll(await withPipeCommand(stored, 'head -c 100; sleep 0.5').read()));
    expect(error.message).toBe('pipe command exited before reading all of its input');
  });

  // What a process left running holding the command's input took of it is in no output: `exec
  // 4<&0; head -c 100 <&4 & …; cat` stored an archive without those bytes, exit 0.
  it('refuses a command that left a process running holding its input, without waiting for it', async () => {
    const inner = localFile();
    const pidFile = join(dir, `pid-${counter++}`);
    // The shell's `&` gives a background job /dev/null for input: fd 4 carries it past that.
    const command = `exec 4<&0; sleep 60 <&4 >/dev/null 2>&1 4<&- & echo $! >'${pidFile}'; exec 4<&-; cat`;
    const error = await pipeError(withPipeCommand(inner, command).write(bodyOf(randomBytes(1000)), writeOptions()));
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    try {
      expect(error.message).toBe('pipe command exited, but a process it left running still held its standard input: what it read is not in the output (start it with </dev/null)');
      expect(isRunning(pid)).toBe(true);
      await expectEmptyDirectory(inner);
    } finally {
      process.kill(pid, 'SIGKILL');
    }
  });

  // Waited for as a shell pipeline would, `cat; sleep 100 >&2 &` held the CLI for 100 s.
  it('stops reading the stderr a process left running holds once the command has exited, stores the archive, and says so', async () => {
    const inner = localFile();
    const pidFile = join(dir, `pid-${counter++}`);
    const body = ourArchive(1000);
    const location = withPipeCommand(inner, `cat; sleep 60 >&2 & echo $! >'${pidFile}'`, { leftoverWaitMs: 100 });
    const result = await location.write(bodyOf(body), writeOptions());
    process.kill(Number((await readFile(pidFile, 'utf8')).trim()), 'SIGKILL');
    expect(sha256(await readFile(inner.path))).toBe(sha256(body));
    expect(result.note).toBe('the --pipe command exited, but a process it left running still held its standard error 0.1 s later: no longer read (the archive is stored whole)');
  });

  // Its status said nothing of what that process would yet write: `cat; sleep 100 &` was waited
  // for, 100 s, and what came out stored, whatever the process wrote (or failed to) meanwhile.
  it('refuses a command that left a process running holding its output once it has exited, locally, in S3 and reading', async () => {
    const pids: number[] = [];
    const command = () => {
      const pidFile = join(dir, `pid-${counter++}`);
      return { text: `cat; sleep 60 & echo $! >'${pidFile}'`, pid: async () => pids.push(Number((await readFile(pidFile, 'utf8')).trim())) };
    };
    const message = 'pipe command exited, but a process it left running still held its standard output 0.1 s later: what it may yet write would be missing (wait for it in the command, or send its output elsewhere)';
    try {
      const local = localFile();
      const first = command();
      expect((await pipeError(withPipeCommand(local, first.text, { leftoverWaitMs: 100 }).write(bodyOf(randomBytes(1000)), writeOptions()))).message).toBe(message);
      await first.pid();
      await expectEmptyDirectory(local);
      const inner = new S3Location({ client, bucket: server.bucket, key: `pipe/held-output-${counter++}.tar.zst`, endpoint: server.endpoint, partSize: 5 * MiB });
      const second = command();
      expect((await pipeError(withPipeCommand(inner, second.text, { leftoverWaitMs: 100 }).write(bodyOf(randomBytes(1000)), writeOptions()))).message).toBe(message);
      await second.pid();
      await expect(inner.read()).rejects.toMatchObject({ code: 'NOT_FOUND' });
      const stored = localFile();
      await stored.write(bodyOf(randomBytes(1000)), writeOptions());
      const third = command();
      expect((await pipeError(readAll(await withPipeCommand(stored, third.text, { leftoverWaitMs: 100 }).read()))).message).toBe(message);
      await third.pid();
    } finally {
      for (const pid of pids) process.kill(pid, 'SIGKILL');
    }
  });

  // Its output still open after its exit is ours too when we read it no more (the store's upload
  // holds back its last bytes): not a process left running, whose bound must not fail it.
  it('stores the output of a command that exited while the location held back its last bytes longer than the bound', async () => {
    const inner = localFile();
    const flag = join(dir, `exited-${counter++}`);
    const body = randomBytes(140_000); // more than our buffers take: its end waits in the pipe
    const slow: ArchiveLocation = Object.create(inner, {
      write: {
        value: async (output: Readable, options: ReturnType<typeof writeOptions>) => {
          await until(() => existsSync(flag));
          await new Promise((resolve) => setTimeout(resolve, 400));
          return inner.write(output, options);
        },
      },
    }) as ArchiveLocation;
    await withPipeCommand(slow, `cat; touch '${flag}'`, { leftoverWaitMs: 100 }).write(bodyOf(body), writeOptions());
    expect(sha256(await readFile(inner.path))).toBe(sha256(body));
  });

  it('stores no object in S3 when the command writes nothing, and reads no archive through one', async () => {
    const inner = new S3Location({ client, bucket: server.bucket, key: 'pipe/nothing.tar.zst', endpoint: server.endpoint, partSize: 5 * MiB });
    await pipeError(withPipeCommand(inner, 'cat >/dev/null').write(bodyOf(randomBytes(1000)), writeOptions()));
    await expect(inner.read()).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const stored = new S3Location({ client, bucket: server.bucket, key: 'pipe/stored.tar.zst', endpoint: server.endpoint });
    await stored.write(bodyOf(randomBytes(1000)), writeOptions());
    const error = await readAll(await withPipeCommand(stored, 'cat >/dev/null').read()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PipeCommandError);
    expect((error as Error).message).toMatch(/^pipe command read 1000 bytes and wrote nothing/);
  });

  it('leaves no object in S3 when the command fails after output began', async () => {
    const inner = new S3Location({ client, bucket: server.bucket, key: 'pipe/failed.tar.zst', endpoint: server.endpoint, partSize: 5 * MiB });
    await pipeError(withPipeCommand(inner, 'head -c 7000000; exit 4').write(bodyOf(randomBytes(8 * MiB)), writeOptions()));
    await expect(inner.read()).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('kills the command and reports the body error when the archive fails', async () => {
    const inner = localFile();
    const boom = new Error('tar producer failed');
    await expect(withPipeCommand(inner, 'cat').write(failingBody(2 * MiB, boom), writeOptions())).rejects.toBe(boom);
    await expectEmptyDirectory(inner);
  });

  it('kills the command when the signal aborts', async () => {
    const inner = localFile();
    const pidFile = join(dir, `pid-${counter++}`);
    const controller = new AbortController();
    const body = stallingBody(MiB, () => setTimeout(() => controller.abort(), 50));
    const error = await withPipeCommand(inner, `echo $$ > '${pidFile}'; exec cat`)
      .write(body, writeOptions({ signal: controller.signal }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AbortedError);
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
    await expectEmptyDirectory(inner);
  });

  it.each([
    ['', 'SIGTERM'],
    ["trap '' TERM; ", 'SIGKILL after the grace'], // ignored by every process of it (inherited)
  ])('kills every process the command started when the signal aborts, not only its shell (%s→ %s)', async (prefix) => {
    // cat, then a script in the background, then its `sleep`: the shell's grandchild.
    const script = join(dir, `forker-${counter}.sh`);
    const pidFile = join(dir, `pid-${counter++}`);
    await writeFile(script, `sh -c 'echo $$ > "$1.tmp"; mv "$1.tmp" "$1"; exec sleep 30' _ "$1"\n`);
    const controller = new AbortController();
    const body = stallingBody(MiB, () => void until(() => existsSync(pidFile)).then(() => controller.abort()));
    const error = await withPipeCommand(localFile(), `${prefix}sh '${script}' '${pidFile}' </dev/null >/dev/null & exec cat`, { killGraceMs: 300 })
      .write(body, writeOptions({ signal: controller.signal }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AbortedError);
    // Settled only once they are all gone.
    expect(isRunning(Number(await readFile(pidFile, 'utf8')))).toBe(false);
  });

  it('settles only once the processes sent SIGKILL have exited, not when they were sent it', async () => {
    const controller = new AbortController();
    const body = stallingBody(MiB, () => setTimeout(() => controller.abort(), 50));
    lagging.looks = 3;
    try {
      // Deaf to SIGTERM, and still there when its input ends.
      const error = await withPipeCommand(localFile(), "trap '' TERM; cat; exec sleep 30", { killGraceMs: 100 })
        .write(body, writeOptions({ signal: controller.signal }))
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AbortedError);
      expect(lagging.killed).toBe(true);
      expect(lagging.left).toBe(0); // every look that found them running was followed by another
    } finally {
      Object.assign(lagging, { looks: 0, left: 0, killed: false });
    }
  });

  it('leaves nothing running of a command that keeps starting processes when the signal aborts (one started between reading its tree and the signal outlived it)', async () => {
    // Every process of the command carries the mark in its environment: found wherever it
    // went (orphaned, it belongs to init), and killed in the end whatever the test found.
    const mark = `OPENCLAW_PIPE_TEST_MARK=${process.pid}-${counter}`;
    const started = join(dir, `started-${counter++}`);
    const controller = new AbortController();
    const body = stallingBody(1024, () => void until(() => existsSync(started)).then(() => setTimeout(() => controller.abort(), 100)));
    try {
      const error = await withPipeCommand(localFile(), `export ${mark}; touch '${started}'; while :; do sleep 30 & sleep 0.01; done`)
        .write(body, writeOptions({ signal: controller.signal }))
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AbortedError);
      expect(marked(mark)).toEqual([]);
    } finally {
      for (const process_ of marked(mark)) process.kill(Number(process_.split(' ')[0]), 'SIGKILL');
    }
  });

  it('kills the command when the inner location refuses, and reports that', async () => {
    const store = new MemoryStore();
    const inner = new MemoryLocation(store, 'taken');
    await inner.write(bodyOf(Buffer.from('old')), writeOptions());
    await expect(withPipeCommand(inner, 'cat').write(bodyOf(randomBytes(MiB)), writeOptions())).rejects.toBeInstanceOf(DestinationExistsError);
    expect(store.archives.get('taken')?.bytes.toString()).toBe('old');
  });

  it.each(['cat', "trap '' PIPE; cat", 'gzip -1 | cat'])('reports the location\'s own failure mid-write (a full disk), not how the command it stopped ended (%s)', async (command) => {
    // A location that fails after some bytes, and takes its time to clean up before it says so.
    const full = new StorageError('cannot write x.tar.zst: no space left on the device', 'STORAGE');
    const inner: ArchiveLocation = {
      display: 'x.tar.zst',
      checkWritable: async () => {},
      read: () => Promise.reject(new Error('not read')),
      write: async (body) => {
        let received = 0;
        for await (const chunk of body) {
          received += (chunk as Buffer).length;
          if (received > MiB) break; // destroys the body: the command's output
        }
        await new Promise((resolve) => setTimeout(resolve, 300));
        throw full;
      },
    };
    await expect(withPipeCommand(inner, command).write(bodyOf(randomBytes(8 * MiB)), writeOptions())).rejects.toBe(full);
  });

  it('passes large archives through with backpressure both ways, byte for byte', async () => {
    const store = new MemoryStore();
    const inner = withPipeCommand(new MemoryLocation(store, 'big'), 'cat');
    const plain = randomBytes(24 * MiB + 1);
    expect((await inner.write(bodyOf(plain, 64 * 1024), writeOptions())).bytes).toBe(plain.length);
    expect(sha256(store.archives.get('big')!.bytes)).toBe(sha256(plain));
    const back = await inner.read();
    let received = 0;
    const chunks: Buffer[] = [];
    for await (const chunk of back) {
      chunks.push(chunk as Buffer);
      received += (chunk as Buffer).length;
      if (received < 2 * MiB) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    expect(sha256(Buffer.concat(chunks))).toBe(sha256(plain));
  });

  it('stops the command when the reader goes away', async () => {
    const store = new MemoryStore();
    const inner = new MemoryLocation(store, 'x');
    await inner.write(bodyOf(randomBytes(8 * MiB)), writeOptions());
    const pidFile = join(dir, `pid-${counter++}`);
    const stream = await withPipeCommand(inner, `echo $$ > '${pidFile}'; exec cat`).read();
    for await (const _chunk of stream) break;
    // Stopped, however long a loaded machine takes to get there (100 ms was not always enough):
    // left running, `cat` would wait on its full output for ever.
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    await until(() => !isRunning(pid));
  });

  it('reads a missing archive as NOT_FOUND without starting the command', async () => {
    const marker = join(dir, `started-${counter++}`);
    await expect(withPipeCommand(localFile(), `touch '${marker}'; cat`).read()).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(existsSync(marker)).toBe(false);
  });

  it('reports a shell that cannot start', async () => {
    const error = await pipeError(withPipeCommand(localFile(), 'cat', { shell: '/nonexistent/sh' }).write(bodyOf(Buffer.from('x')), writeOptions()));
    expect(error.message).toBe('pipe command could not start: ENOENT');
  });

  it('keeps the command text out of display and messages', async () => {
    const location = withPipeCommand(localFile(), 'printf %s --passphrase hunter2 >/dev/null; exit 5');
    expect(location.display).not.toContain('hunter2');
    const error = await pipeError(location.write(bodyOf(Buffer.from('x')), writeOptions()));
    expect(error.message).not.toContain('hunter2');
  });
});

describe('--pipe to a name ending in .age', () => {
  /** A well-formed age header (one X25519 stanza, a MAC line): what age writes before the payload. */
  const b64 = () => randomBytes(32).toString('base64').replace(/=+$/, '');
  const AGE_HEADER = ['age-encryption.org/v1', `-> X25519 ${b64()}`, b64(), `--- ${b64()}`];
  const AGE_HEADER_LINES = AGE_HEADER.map((line) => `'${line}'`).join(' ');
  const AGE_START = `printf '%s\\n' ${AGE_HEADER_LINES}; cat`;
  const ARMORED_START = 'printf -- "-----BEGIN AGE ENCRYPTED FILE-----\\n"; cat';
  const s3Options = () => ({ endpoint: server.endpoint, accessKey: 'S3RVER', secretKey: 'test-secret-key', region: 'us-east-1' });

  it.each([
    ['a banner before the age file', 'echo "encrypting..."; printf "age-encryption.org/v1\\n"; cat'],
    ['a tool other than age', 'gzip -1 -c'],
    ['a few bytes of garbage', 'cat >/dev/null; echo garbage'],
    // Before, all that follows was stored and reported backed up: it only had to start with "age-encryption.org/".
    ['an age file whose line ends a text tool converted (CRLF)', `{ ${AGE_START}; } | sed 's/$/\\r/'`],
    ['the version line alone', 'cat >/dev/null; printf "age-encryption.org/v1\\n"'],
    ['the version line, then the archive', 'printf "age-encryption.org/v1\\n"; cat'],
    ['another version', 'printf "age-encryption.org/v2\\n"; cat'],
    ['a header and nothing after it (the encryption died in a pipeline that hid its status)', `cat >/dev/null; printf '%s\\n' ${AGE_HEADER_LINES}`],
  ])('stores nothing when the command writes no age file (%s), locally and in S3', async (_, command) => {
    const file = join(dir, `age-names-${counter++}`, 'a.tar.zst.age');
    const local = await openLocation(file, { pipe: command });
    const error = await pipeError(local.write(bodyOf(randomBytes(100_000)), writeOptions()));
    expect(error.message).toMatch(
      /^pipe command wrote no age file, though the archive's name ends in ".age": (its output does not start with "age-encryption\.org\/v1" \(does it print anything else on its standard output\?\)|its output starts as an age file, but its header is cut short or damaged \(converted as text, CRLF line ends\?\)|its output is an age header with nothing encrypted after it \(\d+ bytes\)); encrypt with age -r, or store under a name without ".age"$/,
    );
    expect(await readdir(join(file, '..')).catch(() => [])).toEqual([]);
    const key = `age-names/${counter++}.tar.zst.AGE`;
    const s3 = await openLocation(`s3://${server.bucket}/${key}`, { ...s3Options(), pipe: command });
    await pipeError(s3.write(bodyOf(randomBytes(100_000)), writeOptions()));
    await expect(new S3Location({ client, bucket: server.bucket, key, endpoint: server.endpoint }).read()).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('stops the command once its output shows it is no age file: the rest of what it writes (with `cat`, the archive unencrypted) never reaches the store', async () => {
    let received = 0;
    const counting = {
      display: 'counting',
      write: (body: NodeJS.ReadableStream) =>
        new Promise((resolve, reject) => {
          body.on('data', (chunk: Buffer) => (received += chunk.length));
          body.on('error', reject);
          body.on('end', () => reject(new Error('the whole output was stored')));
        }),
    } as unknown as ArchiveLocation;
    const error = await pipeError(withPipeCommand(counting, 'cat', { writesAge: true }).write(bodyOf(randomBytes(32 * MiB)), writeOptions()));
    expect(error.message).toMatch(/its output does not start with "age-encryption\.org\/v1"/);
    // Before, all 32 MiB went on to the store (a multipart upload's parts) before the command's exit failed the write.
    expect(received).toBeLessThan(MiB);
  });

  it('stores an age file whose header has more recipients than the header reader holds (age -R with thousands of keys)', async () => {
    // 4,097 X25519 stanzas (~410 KB): before, the reader's stanza limit refused it as "cut short or damaged", though age writes and reads it.
    const stanzas = Array.from({ length: 4097 }, () => `-> X25519 ${b64()}\n${b64()}\n`).join('');
    const header = join(dir, `large-header-${counter++}`);
    await writeFile(header, `age-encryption.org/v1\n${stanzas}--- ${b64()}\n`);
    const bytes = randomBytes(100_000);
    const file = join(dir, `age-names-${counter++}`, 'a.tar.zst.age');
    await (await openLocation(file, { pipe: `cat '${header}' -` })).write(bodyOf(bytes), writeOptions());
    expect(readFileSync(file).subarray(-bytes.length).equals(bytes)).toBe(true);
  });

  it.each([AGE_START, ARMORED_START])('stores what starts as an age file (%s), and anything under another name', async (command) => {
    const bytes = randomBytes(100_000);
    const file = join(dir, `age-names-${counter++}`, 'a.tar.zst.age');
    await (await openLocation(file, { pipe: command })).write(bodyOf(bytes), writeOptions());
    expect(readFileSync(file).subarray(-bytes.length).equals(bytes)).toBe(true);
    const plain = join(dir, `age-names-${counter++}`, 'a.tar.zst');
    await (await openLocation(plain, { pipe: 'echo "a banner"; cat' })).write(bodyOf(bytes), writeOptions());
    expect(readFileSync(plain).subarray(-bytes.length).equals(bytes)).toBe(true);
  });
});

describe('--pipe environment', () => {
  it('runs the command without the store\'s credentials, writing and reading, and with the rest of the environment', async () => {
    const secrets = { AWS_ACCESS_KEY_ID: 'AKIAPIPETEST', AWS_SECRET_ACCESS_KEY: 'aws-secret-pipe-test', AWS_SESSION_TOKEN: 'session-token-pipe-test', OPENCLAW_S3_ACCESS_KEY: 'openclaw-access-pipe-test', OPENCLAW_S3_SECRET_KEY: 'openclaw-secret-pipe-test' };
    const kept = { AWS_PROFILE: 'kms-profile-pipe-test', OPENCLAW_PIPE_TEST_OTHER: 'other-pipe-test' };
    const before = Object.fromEntries(Object.keys({ ...secrets, ...kept }).map((name) => [name, process.env[name]]));
    Object.assign(process.env, secrets, kept);
    try {
      const inner = localFile();
      const seen = join(dir, `environment-${counter++}`);
      const bytes = randomBytes(1000);
      await withPipeCommand(inner, `env > '${seen}.write'; cat`).write(bodyOf(bytes), writeOptions());
      expect(sha256(await readAll(await withPipeCommand(inner, `env > '${seen}.read'; cat`).read()))).toBe(sha256(bytes));
      for (const file of [`${seen}.write`, `${seen}.read`]) {
        const environment = await readFile(file, 'utf8');
        for (const value of Object.values(secrets)) expect(environment).not.toContain(value);
        for (const [name, value] of Object.entries(kept)) expect(environment).toContain(`${name}=${value}`);
      }
    } finally {
      for (const [name, value] of Object.entries(before)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  // bash, where /bin/sh has no pipefail, sources $BASH_ENV unless in POSIX mode (as /bin/sh): what
  // that file printed came before the archive's bytes.
  it('runs the command as /bin/sh would: a $BASH_ENV file is not sourced', async () => {
    const startup = join(dir, `bash-env-${counter++}`);
    await writeFile(startup, 'echo printed-by-BASH_ENV\n');
    const before = process.env.BASH_ENV;
    process.env.BASH_ENV = startup;
    try {
      const inner = localFile();
      const bytes = randomBytes(1000);
      await withPipeCommand(inner, 'cat').write(bodyOf(bytes), writeOptions());
      expect(sha256(await readFile(inner.path))).toBe(sha256(bytes));
    } finally {
      if (before === undefined) delete process.env.BASH_ENV;
      else process.env.BASH_ENV = before;
    }
  });
});

describe('--pipe under nohup (OPENCLAW_HANGUP_IGNORED=1)', () => {
  const withHangUpsIgnored = async <T>(body: () => Promise<T>): Promise<T> => {
    const before = process.env.OPENCLAW_HANGUP_IGNORED;
    process.env.OPENCLAW_HANGUP_IGNORED = '1';
    try {
      return await body();
    } finally {
      if (before === undefined) delete process.env.OPENCLAW_HANGUP_IGNORED;
      else process.env.OPENCLAW_HANGUP_IGNORED = before;
    }
  };

  it('the shell names the line of the command as without nohup (was line 2: the ignoring trap came on a line of its own)', async () => {
    const inner = localFile();
    const error = await withHangUpsIgnored(() => pipeError(withPipeCommand(inner, 'no-such-command-openclaw').write(bodyOf(randomBytes(1000)), writeOptions())));
    expect(error.message).toMatch(/^pipe command failed with exit code 127: \S*sh: (line )?1: no-such-command-openclaw: (command )?not found$/);
    await expectEmptyDirectory(inner);
  });

  it('a hang-up does not stop the command, which stores the archive', async () => {
    const inner = localFile();
    const bytes = randomBytes(1000);
    await withHangUpsIgnored(() => withPipeCommand(inner, 'kill -HUP $$; cat').write(bodyOf(bytes), writeOptions()));
    expect(sha256(await readAll(await inner.read()))).toBe(sha256(bytes));
  });
});
