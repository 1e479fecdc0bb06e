// One attempt at reading a run of small files (read-run.ts), as the backup's read-ahead makes
// it on its own thread and on reader threads: what counts as read, what has vanished, and
// what is left to the general read (too large, changed while read, any other failure).

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { DIGEST_BYTES, META_FIELDS, READ_ELSEWHERE, READ_VANISHED, READ_WHOLE, readRun, SETTLED_CTIME_MARGIN_MS, type SyncFs } from '../shared/backup/read-run.js';
import { OWN_FD_LINKS } from '../shared/file-access.js';
import { tempDir } from './helpers/tree.js';

let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir('read-run-');
});
afterEach(() => dir.cleanup());

const digestInto = (bytes: Uint8Array, into: Buffer, at: number): void => {
  into.set(createHash('sha256').update(bytes).digest(), at);
};

interface Outcome {
  readonly outcome: number;
  readonly content?: string;
  readonly mode?: number;
  readonly sha256?: string;
}

/** readRun over `names` (in `dir`), into an arena of `arenaBytes`, through the links a backup's readers use: how many it dealt with, and each outcome. */
function read(names: readonly string[], options: { arenaBytes?: number; maxFileBytes?: number; from?: number; syncFs?: SyncFs; ctimeMarginMs?: number } = {}) {
  // Real paths, as the walk hands them out.
  const paths = names.map((name) => path.join(fs.realpathSync(dir.path), name));
  const from = options.from ?? 0;
  const arena = Buffer.alloc(options.arenaBytes ?? 1024);
  const meta = new Float64Array(paths.length * META_FIELDS);
  const digests = Buffer.alloc(paths.length * DIGEST_BYTES);
  const count = readRun(options.syncFs ?? fs, digestInto, paths, from, paths.length, arena, meta, digests, options.maxFileBytes ?? 1 << 20, OWN_FD_LINKS, options.ctimeMarginMs ?? SETTLED_CTIME_MARGIN_MS);
  const outcomes: Outcome[] = [];
  for (let i = 0; i < count; i++) {
    const at = i * META_FIELDS;
    const outcome = meta[at]!;
    if (outcome !== READ_WHOLE) {
      outcomes.push({ outcome });
      continue;
    }
    const content = arena.subarray(meta[at + 4]!, meta[at + 4]! + meta[at + 1]!);
    const sha256 = Buffer.from(digests.subarray(i * DIGEST_BYTES, (i + 1) * DIGEST_BYTES)).toString('hex');
    outcomes.push({ outcome, content: content.toString(), mode: meta[at + 2]!, sha256 });
  }
  return { count, outcomes };
}

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

describe('readRun', () => {
  it('leaves a file whose name is not UTF-8 to the caller (raw-name.ts), which opens it by its bytes: opened as text it would have vanished', () => {
    fs.writeFileSync(Buffer.from(`${dir.path}/caf\xe9`, 'latin1'), 'latin-1 name');
    fs.writeFileSync(path.join(dir.path, 'plain'), 'plain');
    expect(read(['caf\udce9', 'plain']).outcomes).toEqual([{ outcome: READ_ELSEWHERE }, expect.objectContaining({ outcome: READ_WHOLE, content: 'plain' })]);
  });

  it('reads files whole, packed into the arena, with their mode and SHA-256, an empty file too', () => {
    fs.writeFileSync(path.join(dir.path, 'a'), 'alpha');
    fs.writeFileSync(path.join(dir.path, 'b'), '', { mode: 0o600 });
    fs.writeFileSync(path.join(dir.path, 'c'), 'gamma');
    fs.chmodSync(path.join(dir.path, 'b'), 0o600);
    expect(read(['a', 'b', 'c'])).toEqual({
      count: 3,
      outcomes: [
        { outcome: READ_WHOLE, content: 'alpha', mode: 0o666 & ~process.umask(), sha256: sha('alpha') },
        { outcome: READ_WHOLE, content: '', mode: 0o600, sha256: sha('') },
        { outcome: READ_WHOLE, content: 'gamma', mode: 0o666 & ~process.umask(), sha256: sha('gamma') },
      ],
    });
  });

  it('reports what is gone or is no regular file as vanished, without following a symlink or waiting on a FIFO', () => {
    fs.writeFileSync(path.join(dir.path, 'target'), 'secret');
    fs.symlinkSync('target', path.join(dir.path, 'link'));
    fs.mkdirSync(path.join(dir.path, 'dir'));
    execFileSync('mkfifo', [path.join(dir.path, 'fifo')]);
    fs.writeFileSync(path.join(dir.path, 'file'), 'x');
    const { outcomes } = read(['missing', 'link', 'dir', 'fifo', 'file/below']);
    expect(outcomes.map(({ outcome }) => outcome)).toEqual([READ_VANISHED, READ_VANISHED, READ_VANISHED, READ_VANISHED, READ_VANISHED]);
  });

  it('reports a file reached through a directory swapped for a symlink as vanished, reading nothing of it', () => {
    // The tenant's agent swapped the listed directory `d` for a symlink to a directory outside
    // (where a file has the listed name) before the read: O_NOFOLLOW guards only the last component.
    const outside = path.join(dir.path, 'outside');
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, 'f'), 'not the tenant\'s');
    fs.symlinkSync(outside, path.join(dir.path, 'd'));
    fs.writeFileSync(path.join(dir.path, 'g'), 'mine');
    expect(read(['d/f', 'g']).outcomes).toEqual([{ outcome: READ_VANISHED }, { outcome: READ_WHOLE, content: 'mine', mode: 0o666 & ~process.umask(), sha256: sha('mine') }]);
  });

  it('reads the rest of a directory from the directory it opened, when that is swapped for a symlink mid-run', () => {
    const outside = path.join(dir.path, 'outside');
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, 'f2'), 'not the tenant\'s');
    fs.mkdirSync(path.join(dir.path, 'd'));
    fs.writeFileSync(path.join(dir.path, 'd', 'f1'), 'mine 1');
    fs.writeFileSync(path.join(dir.path, 'd', 'f2'), 'mine 2');
    let swapped = false;
    const swapping: SyncFs = {
      ...fs,
      constants: fs.constants,
      readSync: (fd, buffer, offset, length, position) => {
        if (!swapped) {
          // The tenant's agent, between the reads of f1 and f2.
          swapped = true;
          fs.renameSync(path.join(dir.path, 'd'), path.join(dir.path, 'd-moved'));
          fs.symlinkSync(outside, path.join(dir.path, 'd'));
        }
        return fs.readSync(fd, buffer, offset, length, position);
      },
    };
    expect(read(['d/f1', 'd/f2'], { syncFs: swapping }).outcomes.map((outcome) => outcome.content)).toEqual(['mine 1', 'mine 2']);
  });

  it('leaves a file over the per-file limit to the caller', () => {
    fs.writeFileSync(path.join(dir.path, 'big'), 'x'.repeat(100));
    fs.writeFileSync(path.join(dir.path, 'huge'), 'x'.repeat(2000));
    fs.writeFileSync(path.join(dir.path, 'small'), 'y');
    const { count, outcomes } = read(['big', 'huge', 'small'], { maxFileBytes: 50 });
    expect(count).toBe(3);
    expect(outcomes.map(({ outcome }) => outcome)).toEqual([READ_ELSEWHERE, READ_ELSEWHERE, READ_WHOLE]);
  });

  it('stops at a file within the limit but larger than the whole arena, first or not, for a caller that grows the arena', () => {
    fs.writeFileSync(path.join(dir.path, 'small'), 'y');
    fs.writeFileSync(path.join(dir.path, 'huge'), 'x'.repeat(2000));
    expect(read(['small', 'huge'], { arenaBytes: 1024 }).count).toBe(1);
    expect(read(['huge', 'small'], { arenaBytes: 1024 }).count).toBe(0);
    expect(read(['huge', 'small'], { arenaBytes: 2048 })).toMatchObject({ count: 2, outcomes: [{ outcome: READ_WHOLE }, { outcome: READ_WHOLE }] });
  });

  it('stops before a file that does not fit in what is left of the arena, and starts from the given path', () => {
    for (const name of ['a', 'b', 'c']) fs.writeFileSync(path.join(dir.path, name), name.repeat(400));
    const first = read(['a', 'b', 'c'], { arenaBytes: 1000 });
    expect(first.count).toBe(2);
    expect(first.outcomes.map(({ content }) => content?.[0])).toEqual(['a', 'b']);
    const rest = read(['a', 'b', 'c'], { arenaBytes: 1000, from: 2 });
    expect(rest).toMatchObject({ count: 1, outcomes: [{ outcome: READ_WHOLE, content: 'c'.repeat(400) }] });
  });

  it('leaves a file that changed while it was read to the caller (which reads it again)', () => {
    const file = path.join(dir.path, 'state.json');
    fs.writeFileSync(file, '{"version":1}');
    // The file is rewritten right after it is read, before the second fstat.
    const rewriting: SyncFs = {
      ...fs,
      constants: fs.constants,
      readSync: (fd, buffer, offset, length, position) => {
        const got = fs.readSync(fd, buffer, offset, length, position);
        fs.writeFileSync(file, '{"version":2,"longer":true}');
        return got;
      },
    };
    expect(read(['state.json'], { syncFs: rewriting }).outcomes).toEqual([{ outcome: READ_ELSEWHERE }]);
  });

  it('reads a file unchanged since before the run with one fstat, after the read; a larger one (past its first 64 KiB) and a new one with two', () => {
    fs.writeFileSync(path.join(dir.path, 'a'), 'alpha');
    fs.writeFileSync(path.join(dir.path, 'b'), '');
    fs.writeFileSync(path.join(dir.path, 'large'), 'x'.repeat(100_000));
    let stats = 0;
    const counting: SyncFs = {
      ...fs,
      constants: fs.constants,
      fstatSync: (fd) => {
        stats++;
        return fs.fstatSync(fd);
      },
    };
    // A margin in the future: every file counts as last changed before the run.
    const settled = read(['a', 'b', 'large'], { syncFs: counting, arenaBytes: 200_000, ctimeMarginMs: -60_000 });
    expect(settled.outcomes.map(({ outcome, content }) => [outcome, content?.length])).toEqual([[READ_WHOLE, 5], [READ_WHOLE, 0], [READ_WHOLE, 100_000]]);
    expect(settled.outcomes[2]!.sha256).toBe(sha('x'.repeat(100_000)));
    expect(stats).toBe(1 + 1 + 2);
    stats = 0;
    // Just written: the stat before the read, and the one after.
    expect(read(['a', 'b'], { syncFs: counting }).outcomes.map(({ content }) => content)).toEqual(['alpha', '']);
    expect(stats).toBe(4);
  });

  it('takes both stats on a file system whose server stamps ctime (NFS), or whose type cannot be told', () => {
    fs.writeFileSync(path.join(dir.path, 'a'), 'alpha');
    let stats = 0;
    const onFileSystem = (statfsSync: SyncFs['statfsSync']): SyncFs => ({
      ...fs,
      constants: fs.constants,
      statfsSync,
      fstatSync: (fd) => {
        stats++;
        return fs.fstatSync(fd);
      },
    });
    const nfs = onFileSystem(() => ({ type: 0x6969 }));
    expect(read(['a'], { syncFs: nfs, ctimeMarginMs: -60_000 }).outcomes).toEqual([expect.objectContaining({ outcome: READ_WHOLE, content: 'alpha' })]);
    expect(stats).toBe(2);
    stats = 0;
    const untold = onFileSystem(() => {
      throw Object.assign(new Error('EIO: i/o error, statfs'), { code: 'EIO' });
    });
    expect(read(['a'], { syncFs: untold, ctimeMarginMs: -60_000 }).outcomes).toEqual([expect.objectContaining({ outcome: READ_WHOLE, content: 'alpha' })]);
    expect(stats).toBe(2);
  });

  it('never takes a read torn by a write for the file: a file written while read is read again between two stats', () => {
    const file = path.join(dir.path, 'state.json');
    fs.writeFileSync(file, 'AAAAAAAAAA');
    // Older than the run by more than the margin (20 ms here; the kernel's clock for ctime lags by a tick at most).
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    let writes = 0;
    // The first read gets five bytes, the file is rewritten, then it gets the rest: torn.
    const tearing: SyncFs = {
      ...fs,
      constants: fs.constants,
      readSync: (fd, buffer, offset, length, position) => {
        if (writes > 0) return fs.readSync(fd, buffer, offset, length, position);
        const head = fs.readSync(fd, buffer, offset, 5, position);
        fs.writeFileSync(file, 'BBBBBBBBBB');
        writes++;
        return head + fs.readSync(fd, buffer, offset + head, length - head, position + head);
      },
    };
    expect(read(['state.json'], { syncFs: tearing, ctimeMarginMs: 20 }).outcomes).toEqual([expect.objectContaining({ outcome: READ_WHOLE, content: 'BBBBBBBBBB' })]);
    expect(writes).toBe(1);
  });

  /** A SyncFs whose first read of the file gets five bytes, then `beforeWrite` runs and the file is rewritten, then it gets the rest. */
  function tearingOnce(file: string, beforeWrite: () => void, overrides: Partial<SyncFs> = {}): SyncFs & { writes: number } {
    const tearing = {
      ...fs,
      constants: fs.constants,
      ...overrides,
      writes: 0,
      readSync: (fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number => {
        if (tearing.writes > 0) return fs.readSync(fd, buffer, offset, length, position);
        const head = fs.readSync(fd, buffer, offset, 5, position);
        beforeWrite();
        fs.writeFileSync(file, 'BBBBBBBBBB');
        tearing.writes++;
        return head + fs.readSync(fd, buffer, offset + head, length - head, position + head);
      },
    };
    return tearing;
  }

  it('takes no torn read for settled on a file system that keeps whole seconds (ext2-4 with 128-byte inodes): a write just after the run began can be stamped a second and a tick before it', () => {
    const file = path.join(dir.path, 'state.json');
    fs.writeFileSync(file, 'AAAAAAAAAA');
    // ctime as such a file system gives it: whole seconds, from a clock up to a tick (10 ms) behind.
    const wholeSeconds: Partial<SyncFs> = {
      fstatSync: (fd) => {
        const stat = fs.fstatSync(fd);
        return Object.assign(stat, { ctimeMs: Math.floor((stat.ctimeMs - 10) / 1000) * 1000 });
      },
    };
    const tearing = tearingOnce(file, () => {}, wholeSeconds);
    // The run starts a few ms past a whole second: its write is stamped with the second before.
    for (let past = Date.now() % 1000; past < 1 || past > 4; past = Date.now() % 1000);
    expect(read(['state.json'], { syncFs: tearing }).outcomes).toEqual([expect.objectContaining({ outcome: READ_WHOLE, content: 'BBBBBBBBBB' })]);
    expect(tearing.writes).toBe(1);
  });

  it('leaves every file to the caller when the clock is stepped back during the run: a write while read is stamped before the run began', () => {
    const file = path.join(dir.path, 'state.json');
    fs.writeFileSync(file, 'AAAAAAAAAA');
    fs.writeFileSync(path.join(dir.path, 'other'), 'settled');
    // The wall clock reads 5 s ahead of the kernel's until it is stepped back, just before the write.
    const kernelNow = Date.now.bind(Date);
    let ahead = 5000;
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => kernelNow() + ahead);
    try {
      const tearing = tearingOnce(file, () => (ahead = 0));
      expect(read(['state.json', 'other'], { syncFs: tearing }).outcomes).toEqual([{ outcome: READ_ELSEWHERE }, { outcome: READ_ELSEWHERE }]);
      expect(tearing.writes).toBe(1);
    } finally {
      clock.mockRestore();
    }
  });

  it('takes nothing out of a FIFO swapped in for a file: its bytes stay for its reader', () => {
    const fifo = path.join(dir.path, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const end = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    try {
      fs.writeSync(end, 'for its reader');
      expect(read(['fifo'], { ctimeMarginMs: -60_000 }).outcomes).toEqual([{ outcome: READ_VANISHED }]);
      const left = Buffer.alloc(64);
      expect(left.toString('utf8', 0, fs.readSync(end, left, 0, 64, null))).toBe('for its reader');
    } finally {
      fs.closeSync(end);
    }
  });

  it('sees a write while read whose writer then sets the mtime back (utimes): its ctime moved', () => {
    const file = path.join(dir.path, 'state.json');
    fs.writeFileSync(file, 'AAAAAAAAAA');
    const mtime = new Date(Math.floor(Date.now() / 1000 - 3600) * 1000); // whole seconds: mtimeMs gives them back exactly
    fs.utimesSync(file, mtime, mtime);
    // Read between the stat before and the one after (as on NFS, or for a file just changed).
    const tearing = tearingOnce(file, () => {}, { statfsSync: () => ({ type: 0x6969 }) });
    const resetting: SyncFs = {
      ...tearing,
      readSync: (fd, buffer, offset, length, position) => {
        const got = tearing.readSync(fd, buffer, offset, length, position);
        fs.utimesSync(file, mtime, mtime);
        return got;
      },
    };
    expect(read(['state.json'], { syncFs: resetting }).outcomes).toEqual([{ outcome: READ_ELSEWHERE }]);
  });

  it('leaves a file whose open fails (EIO) to the caller, whose own read reports it', () => {
    fs.writeFileSync(path.join(dir.path, 'a'), 'alpha');
    fs.writeFileSync(path.join(dir.path, 'b'), 'beta');
    const failing: SyncFs = {
      ...fs,
      constants: fs.constants,
      openSync: (file, flags) => {
        if (file.endsWith('/a')) throw Object.assign(new Error('EIO: i/o error, open'), { code: 'EIO' });
        return fs.openSync(file, flags);
      },
    };
    expect(read(['a', 'b'], { syncFs: failing }).outcomes.map(({ outcome }) => outcome)).toEqual([READ_ELSEWHERE, READ_WHOLE]);
  });

  it('leaves the files of a directory it cannot check (EIO on its descriptor\'s link) to the caller, never as vanished', () => {
    // A failed readlink says nothing about the directory: calling its files vanished would
    // leave them out of a backup that succeeds.
    fs.mkdirSync(path.join(dir.path, 'd'));
    fs.writeFileSync(path.join(dir.path, 'd', 'a'), 'alpha');
    fs.writeFileSync(path.join(dir.path, 'd', 'b'), 'beta');
    fs.writeFileSync(path.join(dir.path, 'c'), 'gamma');
    const failing: SyncFs = {
      ...fs,
      constants: fs.constants,
      readlinkSync: (link) => {
        if (fs.readlinkSync(link).endsWith('/d')) throw Object.assign(new Error(`EIO: i/o error, readlink '${link}'`), { code: 'EIO' });
        return fs.readlinkSync(link);
      },
    };
    expect(read(['d/a', 'd/b', 'c'], { syncFs: failing }).outcomes.map(({ outcome }) => outcome)).toEqual([READ_ELSEWHERE, READ_ELSEWHERE, READ_WHOLE]);
  });

  it('leaves a file whose read fails to the caller, and closes it', () => {
    fs.writeFileSync(path.join(dir.path, 'a'), 'alpha');
    const opened: number[] = [];
    const closed: number[] = [];
    const failing: SyncFs = {
      ...fs,
      constants: fs.constants,
      openSync: (file, flags) => {
        const fd = fs.openSync(file, flags);
        opened.push(fd);
        return fd;
      },
      readSync: () => {
        throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
      },
      closeSync: (fd) => {
        closed.push(fd);
        fs.closeSync(fd);
      },
    };
    expect(read(['a'], { syncFs: failing }).outcomes).toEqual([{ outcome: READ_ELSEWHERE }]);
    // The file, and the directory it was opened through.
    expect(opened).toHaveLength(2);
    expect([...closed].sort()).toEqual([...opened].sort());
  });

  it("leaves each file's access time as it was: a day-old one is not rewritten at every backup", (context) => {
    const threeDaysAgo = new Date(Math.floor(Date.now() / 1000 - 3 * 24 * 3600) * 1000); // whole seconds: atimeMs gives them back exactly
    const aged = (name: string): string => {
      const file = path.join(dir.path, name);
      fs.writeFileSync(file, `content of ${name}`);
      fs.utimesSync(file, threeDaysAgo, fs.statSync(file).mtime);
      return file;
    };
    // A plain read of a file whose access time is older than its change updates it (relatime); on a noatime mount nothing can show.
    const control = aged('control');
    fs.readFileSync(control);
    if (fs.statSync(control).atimeMs === threeDaysAgo.getTime()) context.skip();
    const read1 = aged('one');
    const read2 = aged('two');
    expect(read(['one', 'two']).outcomes).toEqual([expect.objectContaining({ outcome: READ_WHOLE, content: 'content of one' }), expect.objectContaining({ outcome: READ_WHOLE, content: 'content of two' })]);
    expect([fs.statSync(read1).atimeMs, fs.statSync(read2).atimeMs]).toEqual([threeDaysAgo.getTime(), threeDaysAgo.getTime()]);
  });

  it.skipIf(process.geteuid?.() !== 0 || !fs.existsSync('/usr/bin/setpriv'))(
    "reads another user's files as before where the kernel refuses to leave their access time (EPERM, not root)",
    () => {
      fs.chmodSync(dir.path, 0o755);
      fs.writeFileSync(path.join(dir.path, 'root-owned'), 'readable by all', { mode: 0o644 });
      fs.writeFileSync(path.join(dir.path, 'also-root-owned'), 'and this one', { mode: 0o644 });
      const paths = ['root-owned', 'also-root-owned'].map((name) => path.join(fs.realpathSync(dir.path), name));
      // readRun's own text, as a reader thread runs it, in a process of another user (nobody).
      const program = `const readRun = ${readRun.toString()};
        const fs = require('node:fs');
        const crypto = require('node:crypto');
        const meta = new Float64Array(2 * ${META_FIELDS});
        const arena = Buffer.alloc(1024);
        const count = readRun(fs, (bytes, into, at) => into.set(crypto.createHash('sha256').update(bytes).digest(), at), ${JSON.stringify(paths)}, 0, 2, arena, meta, Buffer.alloc(2 * ${DIGEST_BYTES}), 1 << 20, '/proc/' + process.pid + '/fd/', ${SETTLED_CTIME_MARGIN_MS});
        process.stdout.write(JSON.stringify({ count, outcomes: [meta[0], meta[${META_FIELDS}]], content: arena.subarray(0, meta[1] + meta[${META_FIELDS} + 1]).toString() }));`;
      const run = execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', program], { encoding: 'utf8' });
      expect(JSON.parse(run)).toEqual({ count: 2, outcomes: [READ_WHOLE, READ_WHOLE], content: 'readable by alland this one' });
    },
  );
});
