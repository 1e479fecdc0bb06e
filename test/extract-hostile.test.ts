// The hostile-archive suite for extractTenantArchive (shared/restore/extract.ts). Every archive is
// built in memory, header by header (test/helpers/tar-builder.ts). Each test asserts the
// specific typed error and that nothing changed outside the staging directory: the temp dir
// holds a tenants base with a sentinel "victim" tenant, a sibling directory outside the
// base, and the absolute paths the archives aim at; all of it is snapshotted (content,
// mode, inode link counts, link targets) before and compared after every test. Whatever
// the extractor did create in its staging directory is checked too: no link out of it, no
// inode shared with a file outside, no special file, no setuid/setgid/sticky bit.
// Regressions for node-tar advisories are named after them.
// extract-hostile-worker.test.ts and extract-hostile-parallel.test.ts run the whole suite
// again with the other two file writers (OPENCLAW_HOSTILE_OPTIONS): the worker thread, whose
// failures arrive after the fact, and the many-calls-in-flight writer used on EFS.

import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { AbortedError, ArchiveLimitError, CorruptArchiveError, UnsafeArchiveError } from '../shared/errors.js';
import { extractTenantArchive, type ExtractOptions, type ExtractResult } from '../shared/restore/extract.js';
import type { Manifest } from '../shared/archive/manifest.js';
import { digestTree, TreeDigest, type TreeEntry } from '../shared/archive/tree-digest.js';
import { PARALLEL_ACCESS } from '../shared/file-access.js';
import { DEFAULT_LIMITS } from '../shared/restore/limits.js';
import { restoreTenant } from '../shared/restore/restore.js';
import { TarBuilder, base256, chunked, lazySource, paxRecords, rawHeader } from './helpers/tar-builder.js';
import { compressFrames } from './helpers/zstd.js';

type ErrorClass = typeof UnsafeArchiveError | typeof CorruptArchiveError | typeof ArchiveLimitError | typeof AbortedError;

/** Extra extraction options for every attempt: how the suite is re-run with another writer. */
const { fileAccess, ...suiteOptions } = JSON.parse(process.env.OPENCLAW_HOSTILE_OPTIONS ?? '{}') as Omit<Partial<ExtractOptions>, 'fileAccess'> & { fileAccess?: 'parallel' };
const SUITE_OPTIONS: Partial<ExtractOptions> = { ...suiteOptions, ...(fileAccess === 'parallel' && { fileAccess: PARALLEL_ACCESS }) };

const T = (relative: string) => `tenants/acme/${relative}`;
const VICTIM_SECRET = 'victim secret: must never change\n';

let tmp = '';
let base = '';
let outside = '';
/** An absolute directory the archives aim at; it must never come into existence. */
let abs = '';
let baseline: Map<string, string>;
let stagings: string[] = [];

beforeEach(async () => {
  tmp = realpathSync(await fs.mkdtemp(path.join(os.tmpdir(), 'extract-hostile-')));
  base = path.join(tmp, 'tenants');
  outside = path.join(tmp, 'outside');
  abs = path.join(tmp, 'abs');
  await fs.mkdir(path.join(base, 'victim', 'sub'), { recursive: true });
  await fs.writeFile(path.join(base, 'victim', 'secret.txt'), VICTIM_SECRET, { mode: 0o600 });
  await fs.writeFile(path.join(base, 'victim', 'sub', 'data.bin'), Buffer.from([0, 1, 2, 3]));
  await fs.symlink('secret.txt', path.join(base, 'victim', 'link'));
  await fs.mkdir(outside);
  await fs.writeFile(path.join(outside, 'sentinel.txt'), 'outside the base\n');
  stagings = [];
  baseline = snapshot();
});

afterEach(async () => {
  try {
    // Backstop for every test, refusals and successes alike.
    expect(snapshot()).toEqual(baseline);
    expect(existsSync(abs)).toBe(false);
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
});

/** Everything under the temp dir except staging directories: type, mode, content, inode link count. */
function snapshot(): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      if (dir === base && name.startsWith('.openclaw-staging-')) continue;
      const rel = path.relative(tmp, full);
      const st = lstatSync(full);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.set(rel, `symlink ${readlinkSync(full)}`);
      else if (st.isDirectory()) {
        out.set(rel, `dir ${mode}`);
        walk(full);
      } else if (st.isFile()) {
        const sha = createHash('sha256').update(readFileSync(full)).digest('hex');
        out.set(rel, `file ${mode} nlink=${st.nlink} mtime=${st.mtimeMs} ${sha}`);
      } else out.set(rel, `special ${st.mode.toString(8)}`);
    }
  };
  walk(tmp);
  return out;
}

function inodesOutsideStaging(): Set<number> {
  const inodes = new Set<number>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      if (dir === base && name.startsWith('.openclaw-staging-')) continue;
      const full = path.join(dir, name);
      const st = lstatSync(full);
      if (st.isDirectory()) walk(full);
      else if (st.isFile()) inodes.add(st.ino);
    }
  };
  walk(tmp);
  return inodes;
}

/** Whatever the extractor left in a staging directory stays inside it. */
function assertContained(staging: string): void {
  const foreign = inodesOutsideStaging();
  const inside = (target: string) => target === staging || target.startsWith(`${staging}/`);
  // Paths as latin1 strings, one character per byte: names that are not UTF-8 are walked too.
  const bytes = (latin1: string) => Buffer.from(latin1, 'latin1');
  const walk = (dir: string) => {
    for (const name of readdirSync(bytes(dir), { encoding: 'buffer' })) {
      const full = path.join(dir, name.toString('latin1'));
      const st = lstatSync(bytes(full));
      expect(st.mode & (st.isDirectory() ? 0o6000 : 0o7000), `${full} keeps a setuid/setgid${st.isDirectory() ? '' : '/sticky'} bit`).toBe(0);
      if (st.isSymbolicLink()) {
        const target = readlinkSync(bytes(full), { encoding: 'buffer' }).toString('latin1');
        let resolved: string;
        try {
          resolved = realpathSync(bytes(full), { encoding: 'buffer' }).toString('latin1');
        } catch {
          resolved = path.resolve(dir, target); // dangling: where it would point
        }
        expect(inside(resolved), `${full} -> ${target} leaves the staging dir`).toBe(true);
      } else if (st.isDirectory()) walk(full);
      else if (st.isFile()) expect(foreign.has(st.ino), `${full} shares an inode with a file outside`).toBe(false);
      else expect.fail(`special file ${full} (mode ${st.mode.toString(8)}) was created`);
    }
  };
  walk(staging);
}

interface Attempt {
  readonly result?: ExtractResult;
  readonly error?: unknown;
  readonly staging?: string;
  readonly prepared: string[];
}

async function attempt(archive: Buffer | AsyncIterable<Uint8Array>, options: Partial<ExtractOptions> = {}): Promise<Attempt> {
  let staging: string | undefined;
  const prepared: string[] = [];
  const source = Buffer.isBuffer(archive) ? chunked(archive) : archive;
  try {
    const result = await extractTenantArchive(source, {
      prepare: async (tenant) => {
        prepared.push(tenant);
        staging = await fs.mkdtemp(path.join(base, `.openclaw-staging-${tenant}-`));
        stagings.push(staging);
        return staging;
      },
      ...SUITE_OPTIONS,
      ...options,
    });
    return { result, staging, prepared };
  } catch (error) {
    return { error, staging, prepared };
  } finally {
    if (staging !== undefined) assertContained(staging);
    expect(snapshot()).toEqual(baseline);
  }
}

async function refused(
  archive: Buffer | AsyncIterable<Uint8Array>,
  errorClass: ErrorClass,
  message?: RegExp,
  options: Partial<ExtractOptions> = {},
): Promise<Attempt> {
  const outcome = await attempt(archive, options);
  expect(outcome.result, 'the archive was accepted').toBeUndefined();
  expect(outcome.error).toBeInstanceOf(errorClass);
  if (message !== undefined) expect((outcome.error as Error).message).toMatch(message);
  return outcome;
}

async function accepted(archive: Buffer, options: Partial<ExtractOptions> = {}): Promise<Attempt & { result: ExtractResult; staging: string }> {
  const outcome = await attempt(archive, options);
  if (outcome.error !== undefined) throw outcome.error;
  return outcome as Attempt & { result: ExtractResult; staging: string };
}

const tar = () => new TarBuilder();

// ---------------------------------------------------------------------------------------

describe('sanity: the builder makes archives the extractor accepts', () => {
  it('extracts and verifies a well-formed archive with a manifest', async () => {
    const archive = tar()
      .dir('tenants/acme/')
      .dir(T('sub/'))
      .file(T('sub/a.txt'), 'hello')
      .symlink(T('l'), 'sub/a.txt')
      .file(T('big'), Buffer.alloc(2 * 1024 * 1024, 7))
      .manifest('acme')
      .build();
    const { result, staging } = await accepted(archive, { requireManifest: () => true });
    expect(result).toMatchObject({ tenant: 'acme', files: 2, symlinks: 1 });
    expect(result.manifest?.tenant).toBe('acme');
    expect(readFileSync(path.join(staging, 'l'), 'utf8')).toBe('hello');
  });
});

describe('entries outside tenants/<name>/', () => {
  it.each(['etc/passwd', 'tenants/', 'tenants', 'tenant/acme/x', 'x/tenants/acme/y', 'passwd'])('refuses %j', async (name) => {
    const { prepared } = await refused(tar().file(name, 'root::0:0::/:/bin/sh\n').build(), UnsafeArchiveError, /outside tenants/);
    expect(prepared).toEqual([]);
  });

  it('refuses a second tenant in one archive', async () => {
    const { prepared, staging } = await refused(
      tar().file(T('x'), 'a').file('tenants/victim/secret.txt', 'overwritten').build(),
      UnsafeArchiveError,
      /second tenant/,
    );
    expect(prepared).toEqual(['acme']);
    expect(readdirSync(staging!)).toEqual(['x']);
  });

  it.each(['tenants/ACME/x', 'tenants/../x', 'tenants/a b/x', 'tenants/.openclaw-staging-victim-0/x', 'tenants/-x/y', `tenants/${'a'.repeat(33)}/x`])(
    'refuses the invalid tenant name in %j',
    async (name) => {
      await refused(tar().file(name, 'x').build(), UnsafeArchiveError);
    },
  );
});

describe('absolute paths, ".." and other path tricks', () => {
  it.each([
    () => `${abs}/x`,
    () => '/tenants/acme/x',
    () => `/${T('x')}`,
    () => `////${abs.slice(1)}/x`,
  ])('refuses the absolute path %#', async (name) => {
    await refused(tar().file(name(), 'x').build(), UnsafeArchiveError, /absolute path/);
  });

  it.each(['tenants/acme/../evil/x', 'tenants/acme/a/../../x', 'tenants/acme/../victim/secret.txt', '../tenants/acme/x', 'tenants/acme/x/..', 'tenants/acme/..'])(
    'refuses the ".." in %j',
    async (name) => {
      await refused(tar().file(name, 'x').build(), UnsafeArchiveError, /"\.\." segment/);
    },
  );

  it('refuses ".." hidden in a long pax path', async () => {
    await refused(tar().pax({ path: `tenants/acme/${'d/'.repeat(80)}${'../'.repeat(82)}victim/secret.txt` }).file('tenants/acme/decoy', 'x').build(), UnsafeArchiveError, /"\.\."/);
  });

  it('refuses ".." hidden in a GNU long name', async () => {
    await refused(tar().gnuLongName('tenants/acme/../victim/secret.txt').file('tenants/acme/decoy', 'x').build(), UnsafeArchiveError, /"\.\."/);
  });

  it('refuses ".." assembled from the ustar prefix and name fields', async () => {
    await refused(tar().raw({ prefix: 'tenants/acme/..', name: 'victim/secret.txt', typeflag: '0', size: 1 }, Buffer.from('x')).build(), UnsafeArchiveError, /"\.\."/);
  });

  // A backslash is no separator on Linux: names built with it as one are outside tenants/.
  it.each(['tenants\\acme\\x', '\\\\server\\share\\x'])('refuses %j as outside tenants/', async (name) => {
    await refused(tar().file(name, 'x').build(), UnsafeArchiveError, /outside tenants/);
  });

  // Inside a tenant it is an ordinary character: one file of that name, in the directory named.
  it.each([
    ['tenants/acme/..\\..\\x', '..\\..\\x'],
    ['tenants/acme/a\\b', 'a\\b'],
    ['tenants/acme/sub/..\\x', 'sub/..\\x'],
  ])('keeps the backslash in %j as part of one name', async (name, relative) => {
    const archive = tar().dir(T('sub/')).file(name, 'kept').build();
    const { staging } = await accepted(archive);
    expect(readFileSync(path.join(staging, relative), 'utf8')).toBe('kept');
    expect(readdirSync(path.join(staging, path.dirname(relative))).filter((entry) => entry !== 'sub')).toEqual([path.basename(relative)]);
  });

  it('refuses a NUL in a name (through pax): no file name holds one', async () => {
    await refused(tar().pax({ path: 'tenants/acme/a\u0000b' }).file('tenants/acme/decoy', 'x').build(), UnsafeArchiveError, /NUL character/);
  });

  it.each([
    ['newline', 'a\nb'],
    ['carriage return', 'a\rb'],
    ['tab', 'tab\there'],
    ['escape sequence', '\u001b[2Jx'],
    ['DEL', 'x\u007f'],
    ['C1 control', 'x\u009b'],
    ['C1 next line', '\u0085nel'],
  ])('keeps a %s in a name (through pax, as GNU tar writes it), as one file in the tenant root', async (_label, name) => {
    const { staging } = await accepted(tar().pax({ path: T(name) }).file('tenants/acme/ustar-name', 'x').build());
    expect(readdirSync(staging)).toEqual([name]);
    expect(readFileSync(path.join(staging, name), 'utf8')).toBe('x');
  });

  // Decoded as UTF-8, a bad byte becomes U+FFFD: `a\xff` would be restored as `a\ufffd` (GNU
  // tar restores the byte), and `a\xff` then `a\xfe` refused as a "duplicate". Each byte is
  // kept (raw-name.ts), the name restored as its bytes, the checks made on them.
  it('restores names, link targets and hard links that are not UTF-8 as their bytes, checked against the manifest', async () => {
    const { staging, result } = await accepted(
      tar()
        .dir(T(''))
        .file(T('caf\udce9'), 'latin-1')
        .file(T('a\udcff'), 'ff')
        .file(T('a\udcfe'), 'fe')
        .dir(T('d\udce9'))
        .file(T('d\udce9/\udcff'.repeat(1)), 'deep')
        .symlink(T('l\udcff'), 'caf\udce9')
        .file(T('\udcff'.repeat(255)), 'a 255-byte name')
        .file(T('a\ufffd'), 'honest')
        .manifest('acme')
        .build(),
    );
    const bytes = (text: string) => Buffer.from(text, 'latin1');
    const names = readdirSync(staging, { encoding: 'buffer' }).map((name) => name.toString('latin1')).sort();
    expect(names).toEqual(['\xff'.repeat(255), 'a\xef\xbf\xbd', 'a\xfe', 'a\xff', 'caf\xe9', 'd\xe9', 'l\xff'].sort());
    expect(readFileSync(Buffer.concat([bytes(`${staging}/`), bytes('caf\xe9')]), 'utf8')).toBe('latin-1');
    expect(readFileSync(Buffer.concat([bytes(`${staging}/`), bytes('d\xe9/\xff')]), 'utf8')).toBe('deep');
    expect(readlinkSync(Buffer.concat([bytes(`${staging}/`), bytes('l\xff')]), { encoding: 'buffer' })).toEqual(bytes('caf\xe9'));
    expect(result.manifest).toBeDefined();
    expect(result.files).toBe(6);
    // A hard link to such a name, and one from it (the builder's manifest lists no hard links).
    const linked = await accepted(tar().dir(T('')).file(T('caf\udce9'), 'x').hardlink(T('h\udce9'), T('caf\udce9')).hardlink(T('h'), T('h\udce9')).build());
    const inode = (name: string) => lstatSync(Buffer.concat([bytes(`${linked.staging}/`), bytes(name)])).ino;
    expect([inode('h\xe9'), inode('h')]).toEqual([inode('caf\xe9'), inode('caf\xe9')]);
  });

  it('still refuses a ".." segment, NUL or an escaping link target among bytes that are not UTF-8', async () => {
    const bad = (text: string) => Buffer.from(text, 'latin1');
    await refused(tar().dir(T('')).raw({ name: bad('tenants/acme/\xff/../../x'), typeflag: '0' }).build(), UnsafeArchiveError, /"\.\." segment.*\\udcff/);
    await refused(tar().pax({ path: bad('tenants/acme/\xff\0x') }).file(T('decoy'), 'x').build(), UnsafeArchiveError, /NUL/);
    await refused(tar().dir(T('')).raw({ name: T('l'), typeflag: '2', linkname: bad('\xff/../../x') }).build(), UnsafeArchiveError, /target "\\udcff\/\.\.\/\.\.\/x" escapes the tenant/);
    await refused(tar().file(T('\udcff'.repeat(256)), 'x').build(), UnsafeArchiveError, /longer than 255 bytes/);
  });

  it.each(['C:/x', 'c:x', 'C:tenants/acme/x', 'c:\\x'])('refuses the drive letter in %j', async (name) => {
    await refused(tar().file(name, 'x').build(), UnsafeArchiveError, /drive-letter|backslash/);
  });
});

describe('symlinks', () => {
  it('refuses an absolute target', async () => {
    await refused(tar().symlink(T('l'), outside).build(), UnsafeArchiveError, /escapes the tenant/);
  });

  it.each(['..', '../victim', '../../outside/sentinel.txt', 'a/../..', './../x'])('refuses the ".." escape %j', async (target) => {
    await refused(tar().symlink(T('l'), target).build(), UnsafeArchiveError, /escapes the tenant/);
  });

  it('refuses an escape two levels down', async () => {
    await refused(tar().symlink(T('a/b/l'), '../../../victim/secret.txt').build(), UnsafeArchiveError, /escapes the tenant/);
  });

  it('refuses an escape through a chain of earlier links', async () => {
    // a -> sub, sub/b -> .. (the root), c -> a/b/.. : each earlier link is inside, c is not.
    const { staging } = await refused(
      tar().dir(T('sub/')).symlink(T('a'), 'sub').symlink(T('sub/b'), '..').symlink(T('c'), 'a/b/..').build(),
      UnsafeArchiveError,
      /escapes the tenant/,
    );
    expect(readdirSync(staging!).sort()).toEqual(['a', 'sub']);
  });

  it('refuses an escape created by a LATER link that changes how an earlier one resolves', async () => {
    // l -> d/.. is the root while d is a directory-to-be; d -> . makes it the root's parent.
    await refused(tar().symlink(T('l'), 'd/..').symlink(T('d'), '.').build(), UnsafeArchiveError, /"d\/\.\." escapes/);
  });

  it('refuses the same order trick one level down', async () => {
    await refused(tar().symlink(T('s/l'), '../d/../..').symlink(T('s/x'), 'y').symlink(T('d'), 's/x').build(), UnsafeArchiveError, /escapes/);
  });

  it('refuses a file written through a symlinked parent (link -> ..)', async () => {
    await refused(tar().symlink(T('link'), '..').file(T('link/victim/secret.txt'), 'pwned').build(), UnsafeArchiveError, /escapes the tenant/);
  });

  it('refuses a file written through a symlinked parent even when the link stays inside', async () => {
    const { staging } = await refused(
      tar().dir(T('real/')).symlink(T('link'), 'real').file(T('link/x'), 'through').build(),
      UnsafeArchiveError,
      /below a symlink/,
    );
    expect(readdirSync(path.join(staging!, 'real'))).toEqual([]);
  });

  // Entries come directory by directory, so the directory an entry lies in is looked up once
  // for all its siblings: a sibling that is a link or a file must still stop what goes below it.
  it.each([
    ['a symlink', (b: TarBuilder) => b.symlink(T('a/l'), 'c').file(T('a/l/x'), 'through'), /below a symlink/],
    ['a file', (b: TarBuilder) => b.file(T('a/f'), 'f').file(T('a/f/x'), 'below'), /below a file/],
    ['a symlink, deeper', (b: TarBuilder) => b.symlink(T('a/l'), 'c').dir(T('a/l/d/')), /below a symlink/],
  ])('refuses an entry below %s among siblings of one directory', async (_label, then, message) => {
    const { staging } = await refused(then(tar().file(T('a/b/x'), 'x').file(T('a/c/x'), 'x').file(T('a/y'), 'y')).build(), UnsafeArchiveError, message);
    expect(readdirSync(path.join(staging!, 'a', 'c'))).toEqual(['x']);
  });

  it('refuses a name met again after the entries of another directory', async () => {
    await refused(tar().file(T('a/x'), '1').file(T('b/x'), '2').file(T('a/y'), '3').file(T('a/x'), '4').build(), UnsafeArchiveError, /duplicate entry/);
  });

  it('refuses a directory created through a symlinked parent', async () => {
    await refused(tar().dir(T('real/')).symlink(T('link'), 'real').dir(T('link/d/')).build(), UnsafeArchiveError, /below a symlink/);
  });

  it.each([
    ['a file', (b: TarBuilder) => b.file(T('l'), 'written through')],
    ['a directory', (b: TarBuilder) => b.dir(T('l/'))],
    ['another symlink', (b: TarBuilder) => b.symlink(T('l'), 'real/other')],
    ['a hardlink', (b: TarBuilder) => b.file(T('f'), 'f').hardlink(T('l'), T('f'))],
  ])('refuses a symlink followed by %s of the same name (nothing written through it)', async (_label, then) => {
    const { staging } = await refused(then(tar().dir(T('real/')).symlink(T('l'), 'real/target')).build(), UnsafeArchiveError, /duplicate entry/);
    expect(readdirSync(path.join(staging!, 'real'))).toEqual([]);
    expect(readlinkSync(path.join(staging!, 'l'))).toBe('real/target');
  });

  it('refuses an empty target', async () => {
    await refused(tar().symlink(T('l'), '').build(), UnsafeArchiveError, /escapes/);
  });

  it('refuses an escape hidden in a GNU long link name (\'K\')', async () => {
    await refused(tar().gnuLongName('../victim/secret.txt', 'K').symlink(T('l'), 'decoy').build(), UnsafeArchiveError, /escapes/);
    await refused(tar().gnuLongName('tenants/victim/secret.txt', 'K').hardlink(T('h'), T('decoy')).build(), UnsafeArchiveError, /hardlink/);
  });

  it('refuses a NUL in a pax linkpath', async () => {
    await refused(tar().pax({ linkpath: 'ok\u0000/../../..' }).symlink(T('l'), 'decoy').build(), UnsafeArchiveError);
  });

  it('refuses a target longer than a symlink can hold by its length, before resolving it (a 1 MiB pax linkpath)', async () => {
    await refused(tar().symlink(T('l'), 'a/'.repeat(512 * 1024)).build(), UnsafeArchiveError, /longer than 4095 bytes/);
  });

  it('accepts a target of exactly 4095 bytes', async () => {
    const target = `${`${'n'.repeat(99)}/`.repeat(40)}${'b'.repeat(95)}`;
    expect(Buffer.byteLength(target)).toBe(4095);
    const { staging } = await accepted(tar().symlink(T('l'), target).build());
    expect(readlinkSync(path.join(staging, 'l'))).toBe(target);
  });

  it('refuses a chain too costly to check (40 hops of 4 KiB targets 1,000 levels down)', async () => {
    // Unchecked, this 290 KB archive took 18 s of CPU; repeated, it would outlast a Lambda.
    // MAX_RESOLVE_WORK bounds each resolution (test/link-resolve.test.ts counts the work).
    const dir = T('d/'.repeat(1000));
    const builder = tar();
    for (let i = 0; i < 40; i++) builder.symlink(`${dir}l${i}`, `${'x/../'.repeat(810)}l${i + 1}`);
    await refused(builder.dir(`${dir}l40/`).build(), UnsafeArchiveError, /symlink whose target "(x\/\.\.\/)+l1" takes too many steps through symlinks and directories to check \(/);
  });

  it('refuses a link loop, saying so (not that it escapes)', async () => {
    await refused(
      tar().symlink(T('a'), 'b').symlink(T('b'), 'a').build(),
      UnsafeArchiveError,
      /^symlink whose target "b" leads through more than 40 symlinks \(a loop, or a chain the kernel would not follow either\)/,
    );
  });

  it('refuses a chain of 45 links that stays inside, saying it is longer than the kernel follows (not that it escapes); one of 30 is restored', async () => {
    const chain = (links: number) => {
      const builder = tar();
      for (let i = 0; i < links; i++) builder.symlink(T(`l${i}`), `l${i + 1}`);
      return builder.file(T(`l${links}`), 'end').build();
    };
    await refused(chain(45), UnsafeArchiveError, /^symlink whose target "l1" leads through more than 40 symlinks \(a loop, or a chain the kernel would not follow either\)/);
    const { result } = await accepted(chain(30));
    expect(result.symlinks).toBe(30);
  });

  it('accepts links that stay inside, dangling or not', async () => {
    const { staging, result } = await accepted(
      tar().dir(T('d/')).file(T('d/f'), 'x').symlink(T('d/up'), '..').symlink(T('l'), 'd/up/d/f').symlink(T('dangling'), 'missing/x').build(),
    );
    expect(result.symlinks).toBe(3);
    expect(readFileSync(path.join(staging, 'l'), 'utf8')).toBe('x');
  });
});

describe('hardlinks', () => {
  it('refuses an absolute link target', async () => {
    await refused(tar().hardlink(T('h'), path.join(base, 'victim', 'secret.txt')).build(), UnsafeArchiveError, /absolute/);
  });

  it('refuses a ".." link target', async () => {
    await refused(tar().hardlink(T('h'), 'tenants/acme/../victim/secret.txt').build(), UnsafeArchiveError, /"\.\."/);
  });

  it('refuses a link to another tenant', async () => {
    await refused(tar().hardlink(T('h'), 'tenants/victim/secret.txt').build(), UnsafeArchiveError, /hardlink/);
  });

  it('refuses a link target outside tenants/', async () => {
    await refused(tar().hardlink(T('h'), 'secret.txt').build(), UnsafeArchiveError, /outside tenants/);
  });

  it('refuses a link to a symlink', async () => {
    await refused(tar().file(T('f'), 'x').symlink(T('l'), 'f').hardlink(T('h'), T('l')).build(), UnsafeArchiveError, /hardlink/);
  });

  it('refuses a link to a later entry', async () => {
    await refused(tar().hardlink(T('h'), T('later')).file(T('later'), 'x').build(), UnsafeArchiveError, /hardlink to a name no earlier entry of the archive gives/);
  });

  it('refuses a link to a directory or to the tenant root', async () => {
    await refused(tar().dir(T('d/')).hardlink(T('h'), T('d')).build(), UnsafeArchiveError, /hardlink/);
    await refused(tar().hardlink(T('h'), 'tenants/acme').build(), UnsafeArchiveError, /hardlink/);
  });

  it('refuses a link to the manifest or to itself', async () => {
    await refused(tar().hardlink(T('h'), T('.openclaw-backup-manifest.json')).build(), UnsafeArchiveError, /hardlink/);
    await refused(tar().hardlink(T('h'), T('h')).build(), UnsafeArchiveError, /hardlink/);
  });

  it('accepts a link to an earlier file of the tenant: one inode, inside', async () => {
    const { staging, result } = await accepted(tar().file(T('f'), 'shared').hardlink(T('h'), T('f')).build());
    expect(result.hardlinks).toBe(1);
    expect(statSync(path.join(staging, 'h')).ino).toBe(statSync(path.join(staging, 'f')).ino);
  });
});

describe('entry types', () => {
  it.each([
    ['3', 'character device'],
    ['4', 'block device'],
    ['6', 'FIFO'],
    ['S', 'GNU sparse file'],
    ['M', 'GNU multi-volume continuation'],
    ['I', 'unknown letter'],
    ['9', 'unknown digit'],
  ])('refuses typeflag %j (%s) and creates nothing for it', async (typeflag) => {
    const { staging } = await refused(tar().file(T('before'), 'x').special(T('special'), typeflag).build(), UnsafeArchiveError, /refused/);
    expect(readdirSync(staging!)).toEqual(['before']);
  });

  it("reads GNU tar's dump directory (D, tar -g) as a directory, past its list of names, and creates nothing for a volume label (V, tar -V)", async () => {
    const names = Buffer.from('Ybefore\0\0');
    const archive = tar()
      .raw({ name: 'weekly-label', typeflag: 'V', size: 4 }, Buffer.from('junk'))
      .raw({ name: T('dumped/'), typeflag: 'D', size: names.length, mode: 0o750 }, names)
      .file(T('dumped/before'), 'x')
      .build();
    const { staging, result } = await accepted(archive);
    expect(result).toMatchObject({ files: 1, directories: 1, bytes: 1 });
    expect(readdirSync(staging)).toEqual(['dumped']);
    expect(statSync(path.join(staging, 'dumped')).mode & 0o777).toBe(0o750);
    expect(readdirSync(path.join(staging, 'dumped'))).toEqual(['before']);
  });

  it("refuses a dump directory whose list names entries the archive does not hold (tar -g above level 0): restored alone, the tenant would lack them", async () => {
    const names = Buffer.from('Nconfig.json\0Dsessions\0Ntoken\0\0');
    const archive = tar()
      .raw({ name: T(''), typeflag: 'D', size: names.length }, names)
      .raw({ name: T('sessions/'), typeflag: 'D', size: 9 }, Buffer.from('Ys2.json\0'))
      .file(T('sessions/s2.json'), 'changed since level 0')
      .build();
    await refused(archive, UnsafeArchiveError, /^directory of an incremental archive \(tar -g\) whose list names 2 entries the archive does not hold \("config.json", …\): .*extract the chain in order with GNU tar --incremental/);
  });

  it('accepts a dump directory that marks only pty/ absent from the tenant root (tar -g --exclude=…/pty), which a restore leaves out anyway', async () => {
    const names = Buffer.from('Yconfig.json\0Npty\0\0');
    const { staging } = await accepted(tar().raw({ name: T(''), typeflag: 'D', size: names.length }, names).file(T('config.json'), '{}').build());
    expect(readdirSync(staging)).toEqual(['config.json']);
    const below = Buffer.from('Npty\0\0');
    await refused(tar().raw({ name: T('sub/'), typeflag: 'D', size: below.length }, below).build(), UnsafeArchiveError, /list names 1 entry the archive does not hold \("pty"\)/);
  });

  it('accepts typeflag "7" (contiguous file) and NUL (old-style file) as regular files', async () => {
    const archive = tar().raw({ name: T('contiguous'), typeflag: '7', size: 3 }, Buffer.from('abc')).raw({ name: T('old'), typeflag: '\u0000', size: 2 }, Buffer.from('xy')).build();
    const { staging } = await accepted(archive);
    expect(readFileSync(path.join(staging, 'contiguous'), 'utf8')).toBe('abc');
    expect(readFileSync(path.join(staging, 'old'), 'utf8')).toBe('xy');
  });

  it('strips setuid and setgid bits (mode 4755 restored as 0755), and a file\'s sticky bit; keeps a directory\'s (1777 is not 0777)', async () => {
    const archive = tar()
      .file(T('suid'), '#!/bin/sh\n', { mode: 0o4755 })
      .file(T('sgid'), 'x', { mode: 0o2711 })
      .file(T('both'), 'x', { mode: 0o6777 })
      .dir(T('sticky/'), { mode: 0o1777 })
      .dir(T('setgid-dir/'), { mode: 0o2750 })
      .dir(T('sticky-setgid/'), { mode: 0o3775 })
      .file(T('sticky-file'), 'x', { mode: 0o1644 })
      .build();
    const { staging } = await accepted(archive);
    const mode = (name: string) => statSync(path.join(staging, name)).mode & 0o7777;
    expect(mode('suid')).toBe(0o755);
    expect(mode('sgid')).toBe(0o711);
    expect(mode('both')).toBe(0o777);
    expect(mode('sticky')).toBe(0o1777);
    expect(mode('setgid-dir')).toBe(0o750);
    expect(mode('sticky-setgid')).toBe(0o1775);
    expect(mode('sticky-file')).toBe(0o644);
  });
});

describe('limits, checked while streaming', () => {
  it('refuses more entries than maxEntries', async () => {
    const builder = tar();
    for (let i = 0; i < 10; i++) builder.file(T(`f${i}`), 'x');
    const { staging } = await refused(builder.build(), ArchiveLimitError, /more than 5 entries/, { limits: { maxEntries: 5, maxBytes: 1 << 20 } });
    expect(readdirSync(staging!).length).toBeLessThanOrEqual(5);
  });

  it('refuses entry paths that add up to more than 128 characters per allowed entry (they are all held in memory)', async () => {
    const limits = { maxEntries: 100, maxBytes: 1 << 20 };
    const long = (i: number) => T(`${'n'.repeat(250)}/${'n'.repeat(250)}/${'n'.repeat(250)}/${'n'.repeat(240)}${i}`);
    const builder = tar().dir('tenants/acme/');
    for (let i = 0; i < 20; i++) builder.file(long(i), 'x'); // 25 entries with their 4 parents, ~20,000 characters
    await refused(builder.build(), ArchiveLimitError, /entry paths and hard link targets add up to more than 12\.5 KiB \(an average of 128 per entry/, { limits });
    // The directories an entry implies count too: one file 150 levels down holds ~22,800 (of 20,480 allowed).
    await refused(tar().file(T(`${'d/'.repeat(150)}f`), 'x').build(), ArchiveLimitError, /entry paths and hard link targets add up to more than/, { limits: { ...limits, maxEntries: 160 } });
    // A tree of ordinary names is far inside the bound.
    const ordinary = tar().dir('tenants/acme/');
    for (let i = 0; i < 90; i++) ordinary.file(T(`sessions/agent-${i % 3}/2026-06-0${i % 9}-transcript-${i}.jsonl`), 'x');
    await accepted(ordinary.build(), { limits });
  });

  it('counts hard link targets towards the same characters: each is read, checked and looked up as a path is', async () => {
    const limits = { maxEntries: 100, maxBytes: 1 << 20 }; // 12,800 characters
    const deep = `${'n'.repeat(250)}/${'n'.repeat(250)}/${'n'.repeat(250)}/${'n'.repeat(240)}`; // 2,740 with its 3 parents
    const linked = (links: number) => {
      const builder = tar().dir('tenants/acme/').file(T(deep), 'x');
      for (let i = 0; i < links; i++) builder.hardlink(T(`h${i}`), T(deep)); // short names, ~1,000-character targets
      return builder.build();
    };
    // 11 links add ~11,000 characters of targets (their own names ~30): without counting them, 40,000 of
    // 4,000-character targets (335 KiB stored) kept `tenants verify` busy for 8.5 s of CPU.
    await refused(linked(11), ArchiveLimitError, /entry paths and hard link targets add up to more than 12\.5 KiB/, { limits });
    await accepted(linked(9), { limits });
  });

  it('refuses symlink targets that add up to more than 128 characters per allowed entry (they are held in memory), however cheap to check', async () => {
    const limits = { maxEntries: 100, maxBytes: 1 << 20 }; // 12,800 characters
    const padded = `${'./'.repeat(1999)}x`; // 3,999 characters, one step to resolve
    const links = (count: number) => {
      const builder = tar().dir('tenants/acme/');
      for (let i = 0; i < count; i++) builder.symlink(T(`s${i}`), padded);
      return builder.build();
    };
    await refused(links(4), ArchiveLimitError, /symlink targets add up to more than 12\.5 KiB \(an average of 128 per entry/, { limits });
    await accepted(links(3), { limits });
  });

  it('refuses symlinks whose checking adds up to more than 256 steps per allowed entry (each is cheap enough alone)', async () => {
    const limits = { maxEntries: 50, maxBytes: 1 << 20 }; // 12,800 steps
    const costly = Array.from({ length: 150 }, () => 'x').join('/'); // 11,325 steps to resolve, inside the tenant
    const builder = tar().dir('tenants/acme/');
    for (let i = 0; i < 3; i++) builder.symlink(T(`l${i}`), costly);
    await refused(builder.build(), ArchiveLimitError, /checking where the archive's symlinks lead takes more than 256 steps per allowed entry/, { limits });
    // One such link, checked twice (when made and over the final tree), is just affordable.
    await accepted(tar().dir('tenants/acme/').symlink(T('l'), Array.from({ length: 110 }, () => 'x').join('/')).build(), { limits });
  });

  it('counts the characters of long names in what checking symlinks costs, not their depth alone', async () => {
    const limits = { maxEntries: 40, maxBytes: 1 << 20 }; // 10,240 steps
    // `s` leads back to the tenant through 15 names of 255 characters (1,290 steps); `t`, through
    // `s` 39 times (~50,000 steps). By depth alone: 15 steps, then 624.
    const through = (name: string) => tar().dir('tenants/acme/').symlink(T('s'), `${name}/../`.repeat(15)).symlink(T('t'), 's/'.repeat(39)).build();
    await refused(through('b'.repeat(255)), ArchiveLimitError, /checking where the archive's symlinks lead takes more than 256 steps per allowed entry/, { limits });
    await accepted(through('b'), { limits });
  });

  it('counts a name looked up once, not again for every path below it: tenants with long names and many symlinks restore', async () => {
    // Links ten 200-character names deep to a file ten such names deep elsewhere, as a tenant
    // of 70,000 of them (backed up by this tool) had: refused with the default limits when every
    // lookup counted every name of its path (4,356 steps each, checked twice; now 726).
    const limits = { maxEntries: 1000, maxBytes: 1 << 20 }; // 256,000 steps
    const path = (letter: string) => Array.from({ length: 10 }, (_, level) => `${letter}${level}`.padEnd(200, letter)).join('/');
    const builder = tar().dir('tenants/acme/').file(T(`${path('b')}/f`), 'x');
    for (let i = 0; i < 40; i++) builder.symlink(T(`${path('a')}/l${i}`), `${'../'.repeat(10)}${path('b')}/f`);
    const { result } = await accepted(builder.build(), { limits });
    expect(result.symlinks).toBe(40);
  });

  it('refuses more unpacked bytes than maxBytes across files', async () => {
    const builder = tar();
    for (let i = 0; i < 3; i++) builder.file(T(`f${i}`), Buffer.alloc(400 * 1024, i));
    await refused(builder.build(), ArchiveLimitError, /unpacks to more than 1.0 MiB/, { limits: { maxEntries: 100, maxBytes: 1 << 20 } });
  });

  it('refuses a huge declared size before consuming the entry', async () => {
    const declared = 0o77777777777; // 8 GiB - 1, the largest octal size
    const head = rawHeader({ name: T('huge'), typeflag: '0', size: declared });
    const { source, yielded } = lazySource(head, declared);
    await refused(source, ArchiveLimitError, /unpacks to more than/, { limits: { maxEntries: 100, maxBytes: 1 << 20 } });
    expect(yielded()).toBeLessThan(1 << 20);
  });

  it('refuses a manifest with a huge declared size before buffering it', async () => {
    const declared = 0o77777777777;
    const head = Buffer.concat([tar().file(T('f'), 'x').unterminated(), rawHeader({ name: T('.openclaw-backup-manifest.json'), typeflag: '0', size: declared })]);
    const { source, yielded } = lazySource(head, declared);
    await refused(source, ArchiveLimitError, /manifest is larger than/);
    expect(yielded()).toBeLessThan(1 << 20);
  });

  it('refuses a huge base-256 size the same way', async () => {
    const head = rawHeader({ name: T('huge'), typeflag: '0', sizeField: base256(1n << 50n) });
    const { source, yielded } = lazySource(head, 64 * 1024 * 1024);
    await refused(source, ArchiveLimitError, /unpacks to more than/, { limits: { maxEntries: 100, maxBytes: 1 << 20 } });
    expect(yielded()).toBeLessThan(1 << 20);
  });
});

describe('duplicates, the manifest and truncation', () => {
  it.each([
    ['a file twice', (b: TarBuilder) => b.file(T('f'), 'first').file(T('f'), 'second')],
    ['a directory then a file', (b: TarBuilder) => b.dir(T('d/')).file(T('d'), 'x')],
    ['a file then a directory', (b: TarBuilder) => b.file(T('d'), 'x').dir(T('d/'))],
    ['the tenant root twice', (b: TarBuilder) => b.dir('tenants/acme/').dir('tenants/acme')],
    ['a symlink twice', (b: TarBuilder) => b.symlink(T('l'), 'a').symlink(T('l'), 'b')],
  ])('refuses %s', async (_label, build) => {
    await refused(build(tar()).build(), UnsafeArchiveError, /duplicate entry/);
  });

  it('refuses a tenant root that is not a directory', async () => {
    await refused(tar().symlink('tenants/acme', '/').build(), UnsafeArchiveError, /root entry is not a directory/);
    await refused(tar().file('tenants/acme', 'x').build(), UnsafeArchiveError, /root entry is not a directory/);
  });

  it('refuses entries after the manifest', async () => {
    await refused(tar().file(T('f'), 'x').manifest('acme').file(T('late'), 'smuggled').build(), UnsafeArchiveError, /after the manifest/);
  });

  it('refuses a second manifest', async () => {
    await refused(tar().file(T('f'), 'x').manifest('acme').manifest('acme').build(), UnsafeArchiveError, /after the manifest/);
  });

  const sha256 = (content: string) => createHash('sha256').update(content).digest('hex');
  /** A manifest whose directory digests describe `entries` instead of what the archive holds. */
  const describing = (entries: TreeEntry[]) => (m: Manifest): Manifest => ({ ...m, directories: digestTree(entries) });
  const root: TreeEntry = { path: '', type: 'directory' };
  const differ = /does not match its manifest: the names, types, sizes, contents or link targets of the entries in "\.?[^"]*" differ/;
  const lying: [string, (b: TarBuilder) => TarBuilder, RegExp][] = [
    ['file content', (b) => b.file(T('f'), 'real').manifest('acme', describing([root, { path: 'f', type: 'file', size: 4, sha256: sha256('fake') }])), differ],
    ['file size', (b) => b.file(T('f'), 'real').manifest('acme', describing([root, { path: 'f', type: 'file', size: 5, sha256: sha256('real') }])), differ],
    ['file name', (b) => b.file(T('f'), 'real').manifest('acme', describing([root, { path: 'g', type: 'file', size: 4, sha256: sha256('real') }])), differ],
    ['entry type', (b) => b.symlink(T('f'), 'x').manifest('acme', describing([root, { path: 'f', type: 'directory' }])), differ],
    ['symlink target', (b) => b.symlink(T('l'), 'x').manifest('acme', describing([root, { path: 'l', type: 'symlink', target: 'y' }])), differ],
    ['entry order', (b) => b.file(T('a'), '1').file(T('b'), '2').manifest('acme', describing([root, { path: 'b', type: 'file', size: 1, sha256: sha256('2') }, { path: 'a', type: 'file', size: 1, sha256: sha256('1') }])), differ],
    ['entry list: one missing from the archive', (b) => b.file(T('f'), 'x').manifest('acme', describing([root, { path: 'f', type: 'file', size: 1, sha256: sha256('x') }, { path: 'gone', type: 'file', size: 0, sha256: sha256('') }])), /directory "\." holds 1 entry, the manifest lists 2/],
    ['entry list: one extra in the archive', (b) => b.file(T('f'), 'x').file(T('extra'), 'x').manifest('acme', describing([root, { path: 'f', type: 'file', size: 1, sha256: sha256('x') }])), /directory "\." holds 2 entries, the manifest lists 1/],
    ['directory list: one missing from the archive', (b) => b.file(T('f'), 'x').manifest('acme', (m) => ({ ...m, directories: [...m.directories, { path: 'gone', entries: 0, sha256: sha256('') }] })), /directory "gone" is missing/],
    ['directory list: one extra in the archive', (b) => b.file(T('d/f'), 'x').manifest('acme', (m) => ({ ...m, directories: [...m.directories].filter((d) => d.path !== 'd') })), /directory "d" is not listed/],
    ['tenant name', (b) => b.file(T('f'), 'x').manifest('acme', (m) => ({ ...m, tenant: 'victim' })), /manifest is for tenant "victim"/],
  ];
  it.each(lying)('refuses a manifest whose %s does not match', async (_label, build, message) => {
    await refused(build(tar()).build(), CorruptArchiveError, message);
  });

  // Content that arrives whole in one piece is hashed in one call, content in several pieces
  // through a Hash object: either way one byte off is refused, and the true digests pass.
  const long = Buffer.alloc(5000, 'abcdefgh');
  const changed = Buffer.from(long);
  changed[changed.length - 1]! ^= 1;
  const contents: [string, number][] = [['in several pieces', 997], ['whole in one piece', 1024 * 1024]];
  it.each(contents)('checks each file content against the manifest when it arrives %s', async (_label, chunkBytes) => {
    const entries = (lastFile: Buffer): TreeEntry[] => [
      root,
      { path: 'empty', type: 'file', size: 0, sha256: sha256('') },
      { path: 'long', type: 'file', size: long.length, sha256: createHash('sha256').update(lastFile).digest('hex') },
      { path: 'short', type: 'file', size: 4, sha256: sha256('real') },
    ];
    const build = (lastFile: Buffer) => tar().file(T('empty'), '').file(T('long'), long).file(T('short'), 'real').manifest('acme', describing(entries(lastFile))).build();
    await refused(chunked(build(changed), chunkBytes), CorruptArchiveError, differ);
    const { result, staging, error } = await attempt(chunked(build(long), chunkBytes));
    expect(error).toBeUndefined();
    expect(result?.files).toBe(3);
    expect(readFileSync(path.join(staging!, 'long'))).toEqual(long);
    expect(readFileSync(path.join(staging!, 'empty')).length).toBe(0);
  });

  it('checks the manifest directory by directory, letting each digest go, without a second list of them all', async () => {
    // A restore of 100,000 empty directories held every digest twice at the end (docs/scale.md).
    const archive = tar().dir(T('a/')).dir(T('a/b/')).file(T('a/b/f'), 'x').dir(T('c/')).symlink(T('l'), 'c').manifest('acme').build();
    const digests = vi.spyOn(TreeDigest.prototype, 'digests');
    const take = vi.spyOn(TreeDigest.prototype, 'take');
    try {
      await accepted(archive);
      const taken = take.mock.calls.map(([path]) => path);
      expect([...taken].sort()).toEqual(['', 'a', 'a/b', 'c']);
      expect(digests).not.toHaveBeenCalled();
      expect(take.mock.results.every((r) => r.type === 'return' && r.value !== undefined)).toBe(true);
    } finally {
      digests.mockRestore();
      take.mockRestore();
    }
  });

  it('keeps of the manifest, once verified, only the top level of its directories: the others are garbage before the restore goes on', async () => {
    // A restore --force of 200,000 directories held every one of them while it removed the old tenant (docs/scale.md).
    const archive = tar().dir(T('a/')).dir(T('a/b/')).file(T('a/b/f'), 'x').dir(T('c/')).dir(T('c/d/')).manifest('acme').build();
    const { result } = await accepted(archive);
    expect(result.manifest).not.toHaveProperty('directories');
    expect(result.manifest!.topLevel.map((d) => [d.path, d.entries])).toEqual([
      ['a', 1],
      ['c', 1],
    ]);
    expect(result.manifest!.tenant).toBe('acme');
  });

  it('verifies an archive with a version 1 manifest (every entry listed), as earlier backups wrote it', async () => {
    const archive = tar().dir(T('d/')).file(T('d/f'), 'content').symlink(T('l'), 'd/f').withManifestV1('acme').build();
    const { result } = await accepted(archive);
    expect(result.manifest?.formatVersion).toBe(1);
    expect(result.files).toBe(1);
  });

  const lyingV1: [string, (b: TarBuilder) => TarBuilder][] = [
    ['SHA-256', (b) => b.file(T('f'), 'real').withManifestV1('acme', (m) => ({ ...m, entries: m.entries.map((e) => (e.type === 'file' ? { ...e, sha256: 'a'.repeat(64) } : e)) }))],
    ['size', (b) => b.file(T('f'), 'real').withManifestV1('acme', (m) => ({ ...m, entries: m.entries.map((e) => (e.type === 'file' ? { ...e, size: 99 } : e)) }))],
    ['entry list', (b) => b.file(T('f'), 'x').file(T('extra'), 'x').withManifestV1('acme', (m) => ({ ...m, entries: m.entries.filter((e) => e.path !== 'extra') }))],
    ['symlink target', (b) => b.symlink(T('l'), 'x').withManifestV1('acme', (m) => ({ ...m, entries: [{ path: 'l', type: 'symlink', target: 'y', mtimeMs: 0 }] }))],
  ];
  it.each(lyingV1)('refuses a version 1 manifest whose %s does not match', async (_label, build) => {
    await refused(build(tar()).build(), CorruptArchiveError, /does not match its manifest/);
  });

  it('refuses a version 1 manifest with a malformed entry, and a manifest of an unknown version', async () => {
    const malformed = tar().file(T('f'), 'x').withManifestV1('acme', (m) => ({ ...m, entries: [{ path: 'f', type: 'file', size: -1, sha256: 'x', mode: 0, mtimeMs: 0 }] }));
    await refused(malformed.build(), CorruptArchiveError, /manifest is malformed: entries\[0\]\.size: not a whole number/);
    const future = tar().file(T('f'), 'x').manifest('acme', (m) => ({ ...m, formatVersion: 3 }));
    await refused(future.build(), CorruptArchiveError, /format version 3; this tool reads versions 1 and 2/);
  });

  it('refuses a manifest with a malformed directory digest', async () => {
    const archive = tar().file(T('f'), 'x').manifest('acme', (m) => ({ ...m, directories: [{ path: '', entries: 1, sha256: 'not hex' }] }));
    await refused(archive.build(), CorruptArchiveError, /manifest is malformed: directories\[0\]\.sha256: not a SHA-256/);
  });

  it('refuses a manifest that is not JSON or not ours', async () => {
    await refused(tar().file(T('f'), 'x').file(T('.openclaw-backup-manifest.json'), '{not json').build(), CorruptArchiveError, /not valid JSON/);
    await refused(tar().file(T('f'), 'x').file(T('.openclaw-backup-manifest.json'), '{"format":"other"}').build(), CorruptArchiveError, /not an OpenClawMU/);
  });

  it('refuses a manifest under another tenant name (a second tenant)', async () => {
    await refused(tar().file(T('f'), 'x').manifest('victim').build(), UnsafeArchiveError, /second tenant/);
  });

  // A label holds no control character, but may hold a quote: quoted raw, it could rewrite the message.
  it('refuses a manifest whose tenant label differs from its entries, the label quoted with its quotes escaped', async () => {
    const label = 'evil" but the entries are for "acme';
    const { error } = await refused(tar().file(T('f'), 'x').manifest('acme', (m) => ({ ...m, tenant: label })).build(), CorruptArchiveError, /manifest is for tenant/);
    expect((error as Error).message).toBe('the manifest is for tenant "evil\\" but the entries are for \\"acme" but the entries are for "acme"');
  });

  it('refuses a missing manifest when the archive is known to be ours (truncated)', async () => {
    await refused(tar().file(T('f'), 'x').build(), CorruptArchiveError, /manifest .* is missing/, { requireManifest: () => true });
  });

  it('accepts a foreign archive without a manifest when none is required', async () => {
    const { result } = await accepted(tar().file(T('f'), 'x').build());
    expect(result.manifest).toBeUndefined();
  });

  it('refuses empty input', async () => {
    await refused(Buffer.alloc(0), CorruptArchiveError, /no tenant entries/);
  });

  it('refuses an archive of nothing but end blocks', async () => {
    await refused(Buffer.alloc(10 * 512), CorruptArchiveError, /no tenant entries/);
  });

  it('refuses an archive cut exactly at an entry boundary (the tar reader sees no error; the missing manifest does)', async () => {
    const whole = tar().file(T('a'), 'x').file(T('b'), 'y');
    const cut = whole.unterminated(); // no manifest, no end blocks
    await refused(cut, CorruptArchiveError, /manifest .* is missing/, { requireManifest: () => true });
  });

  it('refuses a foreign archive (no manifest to check) cut exactly at an entry boundary: its end-of-archive marker is missing', async () => {
    const cut = tar().dir('tenants/acme/').file(T('a'), 'x').file(T('b'), 'y').unterminated();
    await refused(cut, CorruptArchiveError, /tar stream ends without the end-of-archive marker/);
    // One zero block ends a tar stream for GNU tar too: that is whole.
    const { result } = await accepted(Buffer.concat([cut, Buffer.alloc(512)]));
    expect(result.files).toBe(2);
  });

  it('refuses an archive cut inside an entry\'s data', async () => {
    const archive = tar().file(T('a'), Buffer.alloc(5000, 1)).manifest('acme').build();
    await refused(archive.subarray(0, 512 + 2048), CorruptArchiveError);
  });

  it('refuses an archive cut inside a header', async () => {
    const archive = tar().file(T('a'), 'x').manifest('acme').build();
    await refused(archive.subarray(0, 1024 + 300), CorruptArchiveError);
  });

  it('refuses an archive cut inside the manifest', async () => {
    const archive = tar().file(T('a'), 'x').manifest('acme').unterminated();
    await refused(archive.subarray(0, archive.length - 200), CorruptArchiveError);
  });

  it('keeps the source\'s own error when the source fails (a download, the decoder), not "corrupt"', async () => {
    const failure = new Error('connection reset by peer');
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield tar().file(T('a'), Buffer.alloc(5000, 1)).build().subarray(0, 1024);
      throw failure;
    }
    const { error } = await attempt(failing());
    expect(error).toBe(failure);
  });

  it('refuses a header with a bad checksum', async () => {
    await refused(tar().raw({ name: T('a'), typeflag: '0', size: 1, checksum: 1234 }, Buffer.from('x')).build(), CorruptArchiveError);
  });

  it('refuses garbage that is not tar at all', async () => {
    await refused(Buffer.from('PK\u0003\u0004 this is a zip file'.padEnd(1024, '!')), CorruptArchiveError);
  });

  it('refuses a header without any tar magic but of a type v7 has (file, link, symlink, directory)', async () => {
    await refused(tar().raw({ name: T('a'), typeflag: '6', magic: 'none' }).build(), CorruptArchiveError, /unknown tar header format/);
    const body = paxRecords({ path: T('elsewhere') });
    await refused(tar().raw({ name: 'PaxHeader', typeflag: 'x', size: body.length, magic: 'none' }, body).file(T('a'), 'x').build(), CorruptArchiveError, /unknown tar header format/);
  });

  it('restores v7 headers (no magic), as GNU tar --format=v7 writes them', async () => {
    const archive = tar()
      .raw({ name: 'tenants/acme/', typeflag: '5', magic: 'none', mode: 0o750 })
      .raw({ name: T('f'), typeflag: '0', magic: 'none', size: 2 }, Buffer.from('v7'))
      .raw({ name: T('h'), typeflag: '1', magic: 'none', linkname: T('f') })
      .raw({ name: T('l'), typeflag: '2', magic: 'none', linkname: 'f' })
      .build();
    const { staging, result } = await accepted(archive);
    expect(result).toMatchObject({ files: 2, hardlinks: 1, symlinks: 1, directories: 1 });
    expect(readFileSync(path.join(staging, 'h'), 'utf8')).toBe('v7');
    expect(readlinkSync(path.join(staging, 'l'))).toBe('f');
  });

  it('refuses an out-of-range modification time as damage', async () => {
    const mtimeField = base256(1n << 80n);
    await refused(tar().raw({ name: T('a'), typeflag: '0', size: 1, mtimeField }, Buffer.from('x')).build(), CorruptArchiveError, /modification time/);
  });

  it.each([
    ['a directory', (b: TarBuilder) => b.dir(T('d/'), { size: 600 })],
    ['the tenant root', (b: TarBuilder) => b.dir('tenants/acme/', { size: 600 })],
    ['a symlink', (b: TarBuilder) => b.symlink(T('l'), 'x', { size: 600 })],
    ['a hardlink', (b: TarBuilder) => b.file(T('f'), 'x').hardlink(T('h'), T('f'), { size: 600 })],
  ])('refuses %s entry that carries data (and does not hang on it)', async (_label, build) => {
    const archive = build(tar()).bytes(Buffer.alloc(1024, 0x41)).file(T('after'), 'x').build();
    await refused(archive, UnsafeArchiveError, /carries data/);
  });
});

describe('the ephemeral pty/ directory: left out whatever its entries are', () => {
  /** The rest of the tenant, the same in every archive below. */
  const rest = (b: TarBuilder) => b.dir('tenants/acme/').dir(T('sub/')).file(T('sub/a.txt'), 'kept').symlink(T('l'), 'sub/a.txt');
  const expectRest = (staging: string, result: ExtractResult) => {
    expect(readdirSync(staging).sort()).toEqual(['l', 'sub']);
    expect(readFileSync(path.join(staging, 'l'), 'utf8')).toBe('kept');
    expect(result).toMatchObject({ files: 1, directories: 2, symlinks: 1, hardlinks: 0, bytes: 4 });
  };

  it('leaves out directories, files (content read past, across chunks), links, FIFOs and devices under pty/, counting them', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 5, 0x70);
    const archive = rest(tar())
      .dir(T('pty/'))
      .file(T('pty/session.log'), 'terminal output')
      .dir(T('pty/deep/'))
      .file(T('pty/deep/big.bin'), big)
      .symlink(T('pty/out'), '/etc/passwd')
      .symlink(T('pty/up'), '../../victim')
      .hardlink(T('pty/same'), T('pty/session.log'))
      .hardlink(T('pty/kept'), T('sub/a.txt'))
      .special(T('pty/fifo'), '6')
      .special(T('pty/tty'), '3')
      .file(T('after'), 'after pty')
      .build();
    const { staging, result } = await accepted(archive);
    expect(existsSync(path.join(staging, 'pty'))).toBe(false);
    expect(readFileSync(path.join(staging, 'after'), 'utf8')).toBe('after pty');
    expect(result.ephemeral).toEqual({ entries: 10, bytes: 'terminal output'.length + big.length });
    expect(result).toMatchObject({ files: 2, directories: 2, symlinks: 1, hardlinks: 0, bytes: 4 + 'after pty'.length });
  });

  it.each([
    ['a symlink out of the tenant, then files "inside" it', (b: TarBuilder) => b.symlink(T('pty'), '../victim').file(T('pty/secret.txt'), 'pwned').dir(T('pty/d/'))],
    ['an absolute symlink, then a file through it', (b: TarBuilder) => b.symlink(T('pty'), '/').file(T('pty/etc/passwd'), 'pwned')],
    ['a regular file', (b: TarBuilder) => b.file(T('pty'), 'x')],
    ['a hardlink to a file of the tenant', (b: TarBuilder) => b.hardlink(T('pty'), T('sub/a.txt'))],
    ['a hardlink out of the tenant', (b: TarBuilder) => b.hardlink(T('pty'), 'tenants/victim/secret.txt')],
    ['a FIFO', (b: TarBuilder) => b.special(T('pty'), '6')],
  ])('leaves out pty as %s', async (_label, build) => {
    const { staging, result } = await accepted(build(rest(tar())).build());
    expect(existsSync(path.join(staging, 'pty'))).toBe(false);
    expectRest(staging, result);
    expect(result.ephemeral.entries).toBeGreaterThan(0);
  });

  it('restores a pty below the top level: only the tenant root\'s is ephemeral', async () => {
    const { staging, result } = await accepted(rest(tar()).file(T('sub/pty/x'), 'not ephemeral').build());
    expect(readFileSync(path.join(staging, 'sub', 'pty', 'x'), 'utf8')).toBe('not ephemeral');
    expect(result.ephemeral).toEqual({ entries: 0, bytes: 0 });
  });

  it('keeps a symlink that points into pty/ (it dangles, inside the tenant)', async () => {
    const { staging } = await accepted(rest(tar()).file(T('pty/x'), 'y').symlink(T('to-pty'), 'pty/x').build());
    expect(readlinkSync(path.join(staging, 'to-pty'))).toBe('pty/x');
    expect(existsSync(path.join(staging, 'pty'))).toBe(false);
  });

  it('refuses a hardlink from outside pty/ to a file in it: its content was never kept', async () => {
    const { staging } = await refused(
      rest(tar()).file(T('pty/log'), 'terminal').hardlink(T('sub/log'), T('pty/log')).build(),
      UnsafeArchiveError,
      /^hardlink to a file under pty\/, which is left out \(ephemeral terminal state\), so it has no content to link to; re-create the archive without pty\/ \(tar --exclude=tenants\/acme\/pty\): "tenants\/acme\/sub\/log"$/,
    );
    expect(existsSync(path.join(staging!, 'pty'))).toBe(false);
    // Also when pty/ held no such file: the name alone decides.
    await refused(rest(tar()).hardlink(T('sub/log'), T('pty/never-there')).build(), UnsafeArchiveError, /hardlink to a file under pty\//);
  });

  it.each([
    ['S', 'GNU sparse file'],
    ['M', 'GNU multi-volume continuation'],
    ['I', 'unknown letter'],
  ])('still refuses typeflag %j (%s) under pty/: no reader can be sure where it ends', async (typeflag) => {
    await refused(rest(tar()).special(T('pty/x'), typeflag).build(), UnsafeArchiveError, /refused/);
  });

  it('still refuses damage under pty/: a directory that carries data', async () => {
    await refused(rest(tar()).dir(T('pty/'), { size: 600 }).bytes(Buffer.alloc(1024, 0x41)).build(), UnsafeArchiveError, /carries data/);
  });

  it('counts pty/ content against maxBytes and its entries against maxEntries (it is decoded all the same)', async () => {
    const limits = { maxEntries: 100, maxBytes: 1 << 20 };
    await refused(rest(tar()).file(T('pty/big'), Buffer.alloc((1 << 20) + 1)).build(), ArchiveLimitError, /unpacks to more than 1.0 MiB/, { limits });
    const many = rest(tar());
    for (let i = 0; i < 10; i++) many.file(T(`pty/f${i}`), 'x');
    await refused(many.build(), ArchiveLimitError, /more than 8 entries/, { limits: { ...limits, maxEntries: 8 } });
  });

  it('refuses pty/ in an archive with a manifest (ours never holds it), and a manifest that lists pty/', async () => {
    const withPty = rest(tar()).file(T('pty/log'), 'terminal').dir(T('pty/d/')).manifest('acme');
    await refused(withPty.build(), CorruptArchiveError, /^the archive does not match its manifest: it holds 2 entries under pty\/, which a backup never archives$/);
    const listing = rest(tar()).manifest('acme', (m) => ({ ...m, directories: [...m.directories, { path: 'pty', entries: 0, sha256: createHash('sha256').update('').digest('hex') }] }));
    await refused(listing.build(), CorruptArchiveError, /^the archive does not match its manifest: it lists pty\/, which a backup never archives$/);
    const empty = createHash('sha256').update('').digest('hex');
    const afterAMissing = rest(tar()).manifest('acme', (m) => ({ ...m, directories: [{ path: 'gone', entries: 0, sha256: empty }, ...m.directories, { path: 'pty', entries: 0, sha256: empty }] }));
    await refused(afterAMissing.build(), CorruptArchiveError, /^the archive does not match its manifest: it lists pty\/, which a backup never archives$/);
  });
});

// ---------------------------------------------------------------------------------------
// Regressions named after node-tar advisories. Each also checks (via the snapshot in
// attempt() and afterEach) that the victim tenant is byte-for-byte untouched.

describe('node-tar advisories', () => {
  it('CVE-2018-20834: hardlink then a file of the same name must not write through the link', async () => {
    const { staging } = await refused(
      tar().file(T('f'), 'original').hardlink(T('h'), T('f')).file(T('h'), 'written through the hardlink').build(),
      UnsafeArchiveError,
      /duplicate entry/,
    );
    expect(readFileSync(path.join(staging!, 'f'), 'utf8')).toBe('original');
  });

  it('CVE-2021-32803 (GHSA-r628-mhmh-qjhw): dir, then symlink of the same name, then a file through it', async () => {
    await refused(tar().dir(T('x/')).symlink(T('x'), '../victim').file(T('x/secret.txt'), 'pwned').build(), UnsafeArchiveError);
    const { staging } = await refused(
      tar().dir(T('real/')).dir(T('x/')).symlink(T('x'), 'real').file(T('x/f'), 'through').build(),
      UnsafeArchiveError,
      /duplicate entry/,
    );
    expect(readdirSync(path.join(staging!, 'real'))).toEqual([]);
  });

  it('CVE-2021-32804 (GHSA-3jfq-g458-7qm9): absolute paths with many leading slashes', async () => {
    for (const name of [`////${abs.slice(1)}/x`, `//${abs.slice(1)}/x`, '///tenants/acme/x']) {
      await refused(tar().file(name, 'x').build(), UnsafeArchiveError, /absolute path/);
    }
    await refused(tar().hardlink(T('h'), `////${base.slice(1)}/victim/secret.txt`).build(), UnsafeArchiveError, /absolute path/);
  });

  it('CVE-2021-37701 (GHSA-9r2w-394v-53qc): symlink, then a directory with a trailing slash, then a file', async () => {
    const { staging } = await refused(
      tar().dir(T('real/')).symlink(T('x'), 'real').dir(T('x/')).file(T('x/f'), 'through').build(),
      UnsafeArchiveError,
      /duplicate entry/,
    );
    expect(readdirSync(path.join(staging!, 'real'))).toEqual([]);
  });

  it('CVE-2021-37701 (GHSA-9r2w-394v-53qc): backslash-separated names on the same path', async () => {
    await refused(tar().symlink(T('x'), '../victim').file(T('x\\secret.txt'), 'pwned').build(), UnsafeArchiveError);
    await refused(tar().dir(T('real/')).symlink(T('x'), 'real').file('tenants\\acme\\x\\f', 'through').build(), UnsafeArchiveError, /outside tenants/);
    // Inside the tenant the backslash is part of a name: `x\f` is a file beside the link, nothing goes through it.
    const { staging } = await accepted(tar().dir(T('real/')).symlink(T('x'), 'real').file(T('x\\f'), 'beside').build());
    expect(readdirSync(path.join(staging, 'real'))).toEqual([]);
    expect(readFileSync(path.join(staging, 'x\\f'), 'utf8')).toBe('beside');
  });

  it('CVE-2021-37712 (GHSA-qq89-hq3f-393p): NFC and NFD forms of a name, one a symlink', async () => {
    const nfc = 'caf\u00e9';
    const nfd = 'cafe\u0301';
    expect(nfc.normalize('NFD')).toBe(nfd);
    // Escaping form: refused whatever the file system makes of the names.
    await refused(tar().dir(T(`${nfc}/`)).symlink(T(nfd), '../victim').file(T(`${nfc}/secret.txt`), 'pwned').build(), UnsafeArchiveError, /escapes/);
    // Inside form: on a byte-exact file system (Linux) these are two names; nothing leaves.
    const { staging } = await accepted(tar().dir(T('real/')).dir(T(`${nfc}/`)).symlink(T(nfd), 'real').file(T(`${nfc}/f`), 'in the directory').build());
    expect(readdirSync(path.join(staging, 'real'))).toEqual([]);
    expect(readFileSync(path.join(staging, nfc, 'f'), 'utf8')).toBe('in the directory');
  });

  it('CVE-2021-37713 (GHSA-5955-9wpr-37jh): Windows drive-relative paths', async () => {
    for (const name of ['c:../x', 'C:..\\victim\\secret.txt', 'c:../../victim/secret.txt', 'C:tenants/acme/x']) {
      await refused(tar().file(name, 'x').build(), UnsafeArchiveError, /drive-letter|backslash/);
    }
  });

  it('CVE-2024-28863 (GHSA-f5x3-32g6-xq36): 10,000 nested directories are refused by the limits, without a crash', async () => {
    await refused(tar().file(T(`${'a/'.repeat(10_000)}x`), 'deep').build(), UnsafeArchiveError, /longer than 4095 bytes/);
    // Short names keep such a path under PATH_MAX: the depth limit refuses it.
    await refused(tar().file(T(`${'a/'.repeat(1_500)}x`), 'deep').build(), ArchiveLimitError, /deeper than/);
  });

  it('CVE-2024-28863: nesting at the depth limit is still restored', async () => {
    const { staging } = await accepted(tar().file(T(`${'a/'.repeat(1023)}x`), 'deep').build());
    expect(readFileSync(path.join(staging, ...Array<string>(1023).fill('a'), 'x'), 'utf8')).toBe('deep');
  });

  it('CVE-2026-23745 (GHSA-8qq5-rm4j-mr97): absolute linkpath on a hardlink or a symlink', async () => {
    await refused(tar().hardlink(T('h'), path.join(base, 'victim', 'secret.txt')).build(), UnsafeArchiveError, /absolute path/);
    await refused(tar().symlink(T('s'), path.join(base, 'victim', 'secret.txt')).file(T('s'), 'pwned').build(), UnsafeArchiveError, /escapes/);
  });

  it('CVE-2026-23950 (GHSA-r6q2-hw4h-h46w): names that collide on case/normalisation-insensitive file systems (ß / ss)', async () => {
    await refused(tar().dir(T('stra\u00dfe/')).symlink(T('strasse'), '../victim').file(T('stra\u00dfe/secret.txt'), 'pwned').build(), UnsafeArchiveError, /escapes/);
    const { staging } = await accepted(tar().dir(T('real/')).dir(T('stra\u00dfe/')).symlink(T('strasse'), 'real').file(T('stra\u00dfe/f'), 'x').build());
    expect(readdirSync(path.join(staging, 'real'))).toEqual([]);
  });

  it('CVE-2026-24842 (GHSA-34x7-hfp2-rc4v): hardlink linkpath that is relative to the entry, not the root', async () => {
    await refused(tar().dir(T('a/b/c/d/')).hardlink(T('a/b/c/d/x'), '../../../../../victim/secret.txt').build(), UnsafeArchiveError);
    await refused(tar().dir(T('a/b/c/d/')).hardlink(T('a/b/c/d/x'), 'x').build(), UnsafeArchiveError, /outside tenants/);
  });

  it('CVE-2026-26960 (GHSA-83g3-92jg-28cx): hardlink target reached through a symlink chain', async () => {
    await refused(tar().dir(T('sub/')).file(T('sub/f'), 'x').symlink(T('l'), 'sub').hardlink(T('h'), T('l/f')).build(), UnsafeArchiveError, /hardlink/);
    await refused(tar().symlink(T('l'), '.').symlink(T('m'), 'l').hardlink(T('h'), T('m/l/f')).build(), UnsafeArchiveError, /hardlink/);
  });

  it('CVE-2026-29786 (GHSA-qffp-2rhf-9h96): hardlink with a drive-relative linkpath', async () => {
    await refused(tar().hardlink(T('h'), 'C:../victim/secret.txt').build(), UnsafeArchiveError, /drive-letter/);
    await refused(tar().hardlink(T('h'), 'c:tenants/victim/secret.txt').build(), UnsafeArchiveError, /drive-letter/);
  });

  it('CVE-2026-31802 (GHSA-9ppj-qmqm-q256): symlink with a drive-relative target', async () => {
    // On POSIX "C:.." is one plain name, so this climbs two levels from the tenant root.
    await refused(tar().symlink(T('l'), 'C:../../../victim/secret.txt').build(), UnsafeArchiveError, /escapes/);
  });

  it('CVE-2026-53655 (GHSA-vmf3-w455-68vh): a pax size before a GNU long-name header applies to the file, not the long name', async () => {
    // pax size=5, then an 'L' header (its own size), then the file whose header says 0.
    const longName = T(`${'n'.repeat(150)}`);
    const archive = tar().pax({ size: '5' }).gnuLongName(longName).raw({ name: 'short', typeflag: '0', size: 0 }, Buffer.from('hello')).manifest('acme', (m) => m).build();
    const outcome = await attempt(archive);
    // Either reading agrees with GNU tar (one 5-byte file, then the manifest) or it is refused;
    // it must never smuggle an entry the manifest did not list.
    if (outcome.error === undefined) {
      expect(readFileSync(path.join(outcome.staging!, 'n'.repeat(150)), 'utf8')).toBe('hello');
    } else {
      expect(outcome.error).toBeInstanceOf(CorruptArchiveError);
    }
  });

  it('CVE-2026-59871 (GHSA-w8wr-v893-vjvp): an all-digit pax path is a name, not a crash', async () => {
    await refused(tar().pax({ path: '12345' }).file(T('decoy'), 'x').build(), UnsafeArchiveError, /outside tenants/);
    await refused(tar().pax({ linkpath: '12345' }).hardlink(T('h'), 'decoy').build(), UnsafeArchiveError, /outside tenants/);
    const { staging } = await accepted(tar().pax({ path: T('12345') }).file(T('decoy'), 'x').build());
    expect(readdirSync(staging)).toEqual(['12345']);
  });

  it('CVE-2026-59873 (GHSA-23hp-3jrh-7fpw): entry count and unpacked size are capped', async () => {
    const builder = tar();
    for (let i = 0; i < 50; i++) builder.file(T(`f${i}`), Buffer.alloc(100 * 1024));
    await refused(builder.build(), ArchiveLimitError, undefined, { limits: { maxEntries: 20, maxBytes: 1 << 30 } });
    await refused(builder.build(), ArchiveLimitError, undefined, { limits: { maxEntries: 1000, maxBytes: 1 << 20 } });
  });

  it('CVE-2026-59873: implied parent directories count towards the entry limit', async () => {
    const builder = tar();
    for (let i = 0; i < 5; i++) builder.file(T(`${i}/${'d/'.repeat(200)}f`), 'x');
    await refused(builder.build(), ArchiveLimitError, /entries/, { limits: { maxEntries: 100, maxBytes: 1 << 20 } });
  });

  it('CVE-2026-59874 (GHSA-8x88-c5mf-7j5w): a negative base-256 size is damage, not an endless loop', async () => {
    await refused(tar().raw({ name: T('neg'), typeflag: '0', sizeField: base256(-512n) }).build(), CorruptArchiveError);
    await refused(tar().pax({ size: '-1' }).file(T('neg'), '').build(), CorruptArchiveError);
  });

  it('CVE-2026-59875 (GHSA-gvwx-54wh-qm9j): NUL bytes in pax path and linkpath', async () => {
    await refused(tar().pax({ path: `tenants/acme/x\u0000/../../../victim/secret.txt` }).file(T('decoy'), 'x').build(), UnsafeArchiveError, /NUL character/);
    await refused(tar().file(T('f'), 'x').pax({ linkpath: `tenants/acme/f\u0000x` }).hardlink(T('h'), 'decoy').build(), UnsafeArchiveError, /NUL character/);
    await refused(tar().pax({ linkpath: `f\u0000../../victim` }).symlink(T('l'), 'decoy').build(), UnsafeArchiveError, /escapes/);
  });
});

// ---------------------------------------------------------------------------------------
// Every field of the manifest, wrong: nothing that uses the manifest after the commit (the
// CLI's summary, the Lambda's answer) may meet a value of the wrong type.

describe('the manifest, field by field', () => {
  type Edit = (m: Record<string, unknown>) => Record<string, unknown>;
  const withManifest = (edit: Edit) => tar().file(T('f'), 'x').manifest('acme', (m) => edit({ ...m }) as unknown as Manifest).build();
  const note = { path: 'f', reason: 'changed while read' };

  it.each<[string, Edit, RegExp]>([
    ['warnings holding null', (m) => ({ ...m, warnings: [null] }), /warnings\[0\]: not an object/],
    ['a warning whose path is a number', (m) => ({ ...m, warnings: [{ path: 1, reason: 'x' }] }), /warnings\[0\]\.path: not a string/],
    ['a warning without a reason', (m) => ({ ...m, warnings: [{ path: 'f' }] }), /warnings\[0\]\.reason: not a string/],
    ['a warning with a 70,000-character reason', (m) => ({ ...m, warnings: [{ path: 'f', reason: 'r'.repeat(70_000) }] }), /warnings\[0\]\.reason: longer than/],
    ['warnings that are a string', (m) => ({ ...m, warnings: 'none' }), /warnings: not an array/],
    ['skipped missing', (m) => ({ ...m, skipped: undefined }), /skipped: not an array/],
    ['skipped holding an array', (m) => ({ ...m, skipped: [[note]] }), /skipped\[0\]: not an object/],
    ['createdAt an object', (m) => ({ ...m, createdAt: {} }), /createdAt: not a string/],
    ['createdAt not a time', (m) => ({ ...m, createdAt: 'yesterday' }), /createdAt: not an ISO 8601 time/],
    ['createdAt an impossible date', (m) => ({ ...m, createdAt: '2024-13-45T99:00:00Z' }), /createdAt: not an ISO 8601 time/],
    ['createdAt with a terminal escape', (m) => ({ ...m, createdAt: '2024-01-01T00:00:00Z\u001b[2J' }), /createdAt: not an ISO 8601 time/],
    ['tool null', (m) => ({ ...m, tool: null }), /tool: not an object/],
    ['tool.name a number', (m) => ({ ...m, tool: { name: 5, version: '1' } }), /tool\.name: not a string/],
    ['tool.version with a control character', (m) => ({ ...m, tool: { name: 'x', version: '1\u0007' } }), /tool\.version: holds control characters/],
    ['tool.version 300 characters long', (m) => ({ ...m, tool: { name: 'x', version: 'v'.repeat(300) } }), /tool\.version: longer than 256/],
    ['totals missing', (m) => ({ ...m, totals: undefined }), /totals: not an object/],
    ['totals.bytes negative', (m) => ({ ...m, totals: { files: 1, directories: 1, symlinks: 0, bytes: -1 } }), /totals\.bytes: not a whole number/],
    ['totals.files a fraction', (m) => ({ ...m, totals: { files: 1.5, directories: 1, symlinks: 0, bytes: 1 } }), /totals\.files: not a whole number/],
    ['totals.symlinks a string', (m) => ({ ...m, totals: { files: 1, directories: 1, symlinks: '0', bytes: 1 } }), /totals\.symlinks: not a whole number/],
    ['totals.directories beyond 2^53', (m) => ({ ...m, totals: { files: 1, directories: 2 ** 60, symlinks: 0, bytes: 1 } }), /totals\.directories: not a whole number/],
    ['tenant a number', (m) => ({ ...m, tenant: 5 }), /tenant: not a string/],
    ['directories null', (m) => ({ ...m, directories: null }), /directories: not an array/],
    ['a directory whose path is null', (m) => ({ ...m, directories: [{ path: null, entries: 1, sha256: 'a'.repeat(64) }] }), /directories\[0\]\.path: not a string/],
    ['a directory whose entry count is a string', (m) => ({ ...m, directories: [{ path: '', entries: '1', sha256: 'a'.repeat(64) }] }), /directories\[0\]\.entries: not a whole number/],
    ['a directory whose digest is upper case', (m) => ({ ...m, directories: [{ path: '', entries: 1, sha256: 'A'.repeat(64) }] }), /directories\[0\]\.sha256: not a SHA-256/],
    ['a directory listed twice', (m) => ({ ...m, directories: [...(m.directories as object[]), ...(m.directories as object[])] }), /directories: "" is listed twice/],
  ])('refuses a manifest with %s, before anything is committed', async (_label, edit, message) => {
    await refused(withManifest(edit), CorruptArchiveError, new RegExp(`^the archive manifest is malformed: ${message.source}`));
  });

  it.each<[string, Edit, RegExp]>([
    ['formatVersion a string', (m) => ({ ...m, formatVersion: '2' }), /format version "2"; this tool reads/],
    ['format missing', (m) => ({ ...m, format: undefined }), /not an OpenClawMU tenant manifest/],
  ])('refuses a manifest with %s', async (_label, edit, message) => {
    await refused(withManifest(edit), CorruptArchiveError, message);
  });

  it.each([
    ['an array', '[]'],
    ['null', 'null'],
    ['a number', '42'],
    ['a string', '"openclawmu-tenant-backup"'],
  ])('refuses a manifest that is %s', async (_label, json) => {
    await refused(tar().file(T('f'), 'x').file(T('.openclaw-backup-manifest.json'), json).build(), CorruptArchiveError, /not an OpenClawMU tenant manifest/);
  });

  it('refuses a version 1 entry of an unknown type or with a time that is not a number', async () => {
    const v1 = (entries: unknown[]) => tar().file(T('f'), 'x').withManifestV1('acme', (m) => ({ ...m, entries: entries as never })).build();
    await refused(v1([{ path: 'f', type: 'fifo', mtimeMs: 0 }]), CorruptArchiveError, /entries\[0\]\.type: not file, directory or symlink/);
    await refused(v1([{ path: 'f', type: 'directory', mode: 0o755, mtimeMs: 'now' }]), CorruptArchiveError, /entries\[0\]\.mtimeMs: not a number/);
    await refused(v1([null]), CorruptArchiveError, /entries\[0\]: not an object/);
  });

  it('ignores fields it does not know and keeps none of them', async () => {
    const { result } = await accepted(withManifest((m) => ({ ...m, extra: { deep: [1, 2, 3] }, warnings: [{ ...note, severity: 'high' }] })));
    expect(result.manifest?.warnings).toEqual([note]);
    expect(result.manifest).not.toHaveProperty('extra');
  });

  it('keeps notes whose paths hold control characters (a file name may): the CLI escapes them when it prints', async () => {
    const odd = { path: 'dir/\u001b[31mred\nname', reason: 'socket cannot be archived' };
    const { result } = await accepted(withManifest((m) => ({ ...m, skipped: [odd] })));
    expect(result.manifest?.skipped).toEqual([odd]);
  });

  it('refuses a manifest over 32 MiB from its declared size, before buffering it', async () => {
    const head = rawHeader({ name: T('.openclaw-backup-manifest.json'), typeflag: '0', size: 32 * 1024 * 1024 + 1 });
    const { source, yielded } = lazySource(Buffer.concat([tar().file(T('f'), 'x').unterminated(), head]), 64 * 1024 * 1024);
    await refused(source, ArchiveLimitError, /manifest is larger than 32(\.0)? MiB/);
    expect(yielded()).toBeLessThan(4 * 1024 * 1024);
  });

  it('takes, past the default bounds, 3 more values an object (a directory\'s), not 8', async () => {
    // 16,777,152 short strings (the bounds of 16,000,000 before) parsed into 1.7 GiB; 14,000,000 values are past any (16 times the objects).
    const values = Buffer.from(`{"format":"openclawmu-tenant-backup","formatVersion":2,"warnings":[${'0,'.repeat(14_000_000)}0]}`);
    await refused(tar().file(T('f'), 'x').file(T('.openclaw-backup-manifest.json'), values).build(), ArchiveLimitError, /holds more than 4194304 objects or 13893632 values; refusing to parse it \(past what any --max-entries reads\)$/, {
      limits: { ...DEFAULT_LIMITS, maxEntries: 32_000_000 },
    });
  });

  it('refuses, before JSON.parse, a manifest of many different field names, whatever --max-entries', async () => {
    // JSON.parse gives each new name a hidden class of its own: 2^21 notes of 8 names of their
    // own (within the bounds of --max-entries 16,000,000) parsed into 4.3 GiB in 78 s. 2,000 here.
    const names = Array.from({ length: 1_000 }, (_, i) => ({ path: 'f', reason: 'r', [`n${i}`]: 0, [`m${i}`]: 0 }));
    const archive = withManifest((m) => ({ ...m, warnings: names }));
    for (const maxEntries of [DEFAULT_LIMITS.maxEntries, 16_000_000]) {
      await refused(archive, ArchiveLimitError, /^the archive manifest holds more than 1024 different field names \(a manifest uses fewer than 30\); refusing to parse it$/, {
        limits: { ...DEFAULT_LIMITS, maxEntries },
      });
    }
    // The same names again and again are one each: 100,000 notes read.
    const notes = Array.from({ length: 100_000 }, (_, i) => ({ path: `f${i}`, reason: 'r', extra: i }));
    const { result } = await accepted(withManifest((m) => ({ ...m, warnings: notes })));
    expect(result.manifest?.warnings).toHaveLength(100_000);
  });

  it('refuses, before JSON.parse, a manifest whose objects give few names in many different orders, whatever --max-entries', async () => {
    // JSON.parse gives each field list (names in order) a hidden class of its own: 262,000 notes
    // of 8 of 1,000 names in different orders (17 MB, within the default bounds) took 369 MiB
    // and 12 s to refuse. 5,000 notes of 3 of 100 names here, each note its own list.
    const notes = Array.from({ length: 5_000 }, (_, i) => ({ [`n${i % 100}`]: 0, [`n${(Math.floor(i / 100) + 1 + (i % 100)) % 100}`]: 1, path: 'f', reason: 'r' }));
    const archive = withManifest((m) => ({ ...m, warnings: notes }));
    for (const maxEntries of [DEFAULT_LIMITS.maxEntries, 16_000_000]) {
      await refused(archive, ArchiveLimitError, /^the archive manifest holds objects of more than 4096 different field lists \(ours use a few dozen\); refusing to parse it$/, {
        limits: { ...DEFAULT_LIMITS, maxEntries },
      });
    }
    // The same names in one order are one list however many notes, however deep: 50,000 notes read.
    const same = Array.from({ length: 50_000 }, (_, i) => ({ path: `f${i}`, reason: 'r', extra: { n0: i, n1: [{ n2: 0 }] } }));
    const { result } = await accepted(withManifest((m) => ({ ...m, warnings: same })));
    expect(result.manifest?.warnings).toHaveLength(50_000);
  });

  it('counts field lists whose names hold braces, quotes and backslashes, behind strings that end in escapes, in arrays of objects', async () => {
    // The count walks bytes, not parsed objects: a string it misread (an escaped quote, a
    // backslash before the closing quote, a brace or colon inside) would hide the names after
    // it, and JSON.parse would build the hidden classes it missed. Same lists as the test above
    // (5,000 notes, each its own list of 100 names), every name and value written to trip it.
    const name = (k: number) => `n${k}{"\\}:[,`;
    const values = ['\\', '\\"', '"}', '{"a":', '\\\\', ']'];
    const notes = Array.from({ length: 5_000 }, (_, i) => ({
      reason: values[i % values.length]!,
      deep: [[{ [name(i % 100)]: values[(i + 1) % values.length]! }]],
      [name(i % 100)]: values[(i + 2) % values.length]!,
      [name((Math.floor(i / 100) + 1 + (i % 100)) % 100)]: values[(i + 3) % values.length]!,
      path: 'f',
    }));
    await refused(withManifest((m) => ({ ...m, warnings: notes })), ArchiveLimitError, /more than 4096 different field lists/);
    // Those names in one order, under the same strings: one list, read.
    const same = notes.map((note, i) => ({ reason: note.reason, deep: note.deep, [name(0)]: values[i % values.length]!, path: note.path }));
    const { result } = await accepted(withManifest((m) => ({ ...m, warnings: same })));
    expect(result.manifest?.warnings).toHaveLength(5_000);
  });

  it('refuses, before JSON.parse, a manifest whose objects would take 30 times its size in memory', async () => {
    // 1 MiB of `{},` parses into ~32 MiB of empty objects; 16 MiB of it into 500 MiB.
    const json = Buffer.from(`{"format":"openclawmu-tenant-backup","formatVersion":2,"warnings":[${'{},'.repeat(350_000)}{}]}`);
    await refused(
      tar().file(T('f'), 'x').file(T('.openclaw-backup-manifest.json'), json).build(),
      ArchiveLimitError,
      /manifest holds more than 262144 objects or 2097152 values; refusing to parse it \(raise --max-entries to 2670311 or more if it is genuine\)$/,
    );
    const numbers = Buffer.from(`{"format":"openclawmu-tenant-backup","warnings":[${'0,'.repeat(2_200_000)}0]}`);
    await refused(tar().file(T('f'), 'x').file(T('.openclaw-backup-manifest.json'), numbers).build(), ArchiveLimitError, /holds more than/);
  });

  it('reads, with a larger --max-entries, a manifest past the default bounds, and names the least that reads it', async () => {
    // 300,000 notes: as many objects as a tenant of 300,000 directories lists, which the
    // default bounds (262,144) refuse; 2,288,872 entries allowed read the 300,007 objects and arrays of the manifest.
    const notes = Array.from({ length: 300_000 }, (_, i) => ({ path: `d${i}`, reason: 'socket cannot be archived' }));
    const archive = withManifest((m) => ({ ...m, skipped: notes }));
    await refused(archive, ArchiveLimitError, /holds more than 262144 objects .* \(raise --max-entries to 2288872 or more if it is genuine\)$/);
    await refused(archive, ArchiveLimitError, /holds more than 300006 objects .* \(raise --max-entries to 2288872 or more/, { limits: { ...DEFAULT_LIMITS, maxEntries: 2_288_871 } });
    const { result } = await accepted(archive, { limits: { ...DEFAULT_LIMITS, maxEntries: 2_288_872 } });
    expect(result.manifest?.skipped).toHaveLength(300_000);
  });

  it('names the --max-entries that reads a manifest over the default 32 MiB from its declared size, and refuses one past what any reads', async () => {
    const head = (size: number) => rawHeader({ name: T('.openclaw-backup-manifest.json'), typeflag: '0', size });
    const over = 40 * 1024 * 1024;
    await refused(lazySource(Buffer.concat([tar().file(T('f'), 'x').unterminated(), head(over)]), over).source, ArchiveLimitError, /larger than 32\.0 MiB \(raise --max-entries to 2500000 or more if it is genuine\)/);
    await refused(lazySource(Buffer.concat([tar().file(T('f'), 'x').unterminated(), head(over + 1)]), over).source, ArchiveLimitError, /larger than 40\.0 MiB \(raise --max-entries to 2500001 or more/, {
      limits: { ...DEFAULT_LIMITS, maxEntries: 2_500_000 },
    });
    const huge = 512 * 1024 * 1024;
    await refused(lazySource(Buffer.concat([tar().file(T('f'), 'x').unterminated(), head(huge)]), huge).source, ArchiveLimitError, /larger than 511\.0 MiB \(past what any --max-entries reads\)/, {
      limits: { ...DEFAULT_LIMITS, maxEntries: 1_000_000_000 },
    });
  });

  it('counts no braces or commas inside strings towards those bounds', async () => {
    const { result } = await accepted(withManifest((m) => ({ ...m, warnings: [{ path: 'f', reason: `{[,"\\${'{,'.repeat(20_000)}` }] })));
    expect(result.manifest?.warnings[0]?.reason.length).toBe(40_005);
  });
});

// ---------------------------------------------------------------------------------------
// What follows the end-of-archive marker, and other tar data that is not an entry.

describe('trailing data and non-entries', () => {
  it('refuses an entry after the end-of-archive blocks, which tar -t does not list', async () => {
    const archive = Buffer.concat([tar().file(T('f'), 'x').manifest('acme').build(), tar().file(T('smuggled'), 'pwned').build()]);
    await refused(archive, UnsafeArchiveError, /data after its end-of-archive marker .* which tar -t does not list/);
  });

  it('refuses a manifest after a lone zero block, which GNU tar would not see either', async () => {
    const archive = Buffer.concat([tar().file(T('f'), 'x').unterminated(), Buffer.alloc(512), tar().manifest('acme').build()]);
    await refused(archive, UnsafeArchiveError, /data after its end-of-archive marker/);
  });

  it('accepts zero padding after the end (GNU tar pads to 10 KiB records) and verifies the manifest', async () => {
    const archive = Buffer.concat([tar().file(T('f'), 'x').manifest('acme').build(), Buffer.alloc(10 * 1024 - 512)]);
    const { result } = await accepted(archive, { requireManifest: () => true });
    expect(result.manifest?.tenant).toBe('acme');
  });

  it('refuses more than 16 MiB of zeros after the end without reading the rest', async () => {
    const { source, yielded } = lazySource(tar().file(T('f'), 'x').build(), 1024 * 1024 * 1024, 1024 * 1024);
    await refused(source, ArchiveLimitError, /more than 16 MiB of padding after its end-of-archive marker/);
    expect(yielded()).toBeLessThan(20 * 1024 * 1024);
  });

  it('refuses a stream of global pax headers that is not entries (no run of headers goes on for long)', async () => {
    const builder = tar().file(T('f'), 'x');
    const nothing = Buffer.alloc(4 * 1024 * 1024); // NUL padding: a pax body of no records
    for (let i = 0; i < 10; i++) builder.raw({ name: 'PaxHeader/global', typeflag: 'g', size: nothing.length }, nothing);
    await refused(builder.file(T('g'), 'y').build(), ArchiveLimitError, /tar stream runs .* beyond the content of its 1 entry/);
  });

  it('refuses a GNU sparse file (its data is a map GNU tar expands, not the content)', async () => {
    await refused(tar().pax({ 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0' }).file(T('sparse'), 'map').build(), UnsafeArchiveError, /sparse-file entry refused/);
    await refused(tar().special(T('old-sparse'), 'S', Buffer.from('map')).build(), UnsafeArchiveError, /sparse-file entry refused/);
  });

  it('restores a pax mtime outside the octal range, with its fraction (GNU tar writes times before 1970 so)', async () => {
    const archive = tar().pax({ mtime: '-315619199.75' }).file(T('old'), 'x').pax({ mtime: '1700000000.5' }).file(T('half'), 'y').manifest('acme').build();
    const { staging } = await accepted(archive);
    expect(lstatSync(path.join(staging, 'old')).mtimeMs).toBe(-315619199750);
    expect(lstatSync(path.join(staging, 'half')).mtimeMs).toBe(1700000000500);
  });
});

describe('cancellation', () => {
  it('stops before the next entry once the signal aborts, even inside one chunk', async () => {
    const controller = new AbortController();
    const builder = tar();
    for (let i = 0; i < 200; i++) builder.file(T(`f${i}`), 'x');
    const outcome = await refused(chunked(builder.build(), 1024 * 1024), AbortedError, undefined, {
      signal: controller.signal,
      prepare: async (tenant) => {
        const staging = await fs.mkdtemp(path.join(base, `.openclaw-staging-${tenant}-`));
        stagings.push(staging);
        controller.abort(); // after the first entry's header: every later one must be refused
        return staging;
      },
    });
    expect(outcome.error).toBeInstanceOf(AbortedError);
  });

  it('stops before the next chunk once the signal aborts', async () => {
    const controller = new AbortController();
    let pulled = 0;
    const archive = tar().file(T('big'), Buffer.alloc(8 * 1024 * 1024)).manifest('acme').build();
    async function* source(): AsyncGenerator<Uint8Array> {
      for (let at = 0; at < archive.length; at += 64 * 1024) {
        if (++pulled === 3) controller.abort();
        yield archive.subarray(at, at + 64 * 1024);
      }
    }
    await refused(source(), AbortedError, undefined, { signal: controller.signal });
    expect(pulled).toBe(3);
  });
});

// ---------------------------------------------------------------------------------------
// End to end through restoreTenant: a refused archive leaves the slot, the victim and the
// base directory exactly as they were.

describe('restoreTenant end to end', () => {
  type Extra = { force?: boolean; as?: string; limits?: { maxEntries: number; maxBytes: number }; before?: Buffer };

  function restore(archive: Buffer, extra: Extra = {}): Promise<unknown> {
    return restoreFrom(chunked(archive, 64 * 1024), extra);
  }

  async function restoreFrom(tarStream: AsyncIterable<Uint8Array>, extra: Extra = {}): Promise<unknown> {
    const frames: Buffer[] = extra.before === undefined ? [] : [extra.before];
    for await (const frame of compressFrames(tarStream)) frames.push(frame);
    const bytes = Buffer.concat(frames);
    const location = {
      display: 'memory://hostile',
      checkWritable: async () => undefined,
      write: async () => {
        throw new Error('read-only');
      },
      read: async () => Readable.from([bytes]),
    };
    try {
      const { before: _before, ...request } = extra;
      return await restoreTenant({ tenantsDir: base, location, ...request });
    } catch (error) {
      return error;
    }
  }

  it('refuses a symlink escape and leaves nothing behind', async () => {
    const error = await restore(tar().file(T('f'), 'x').symlink(T('l'), '../victim').build());
    expect(error).toBeInstanceOf(UnsafeArchiveError);
    expect(readdirSync(base).sort()).toEqual(['victim']);
  });

  it('with --force onto the victim, a hostile archive leaves the victim byte-for-byte untouched', async () => {
    const hostile = tar().file('tenants/victim/new.txt', 'replacement').symlink('tenants/victim/l', 'd/..').symlink('tenants/victim/d', '.').build();
    const error = await restore(hostile, { force: true });
    expect(error).toBeInstanceOf(UnsafeArchiveError);
    expect(readdirSync(base).sort()).toEqual(['victim']);
  });

  it('with --as, an archive for another tenant cannot reach the victim', async () => {
    const error = await restore(tar().file(T('f'), 'x').file('tenants/victim/secret.txt', 'pwned').build(), { as: 'fresh' });
    expect(error).toBeInstanceOf(UnsafeArchiveError);
    expect(readdirSync(base).sort()).toEqual(['victim']);
  });

  it('stops at the end of the archive: 256 MiB of zero blocks after one entry (a few KiB compressed) is refused after 16 MiB', async () => {
    const head = tar().file(T('f'), 'x').unterminated();
    const { source } = lazySource(head, 256 * 1024 * 1024, 4 * 1024 * 1024);
    const error = await restoreFrom(source);
    expect(error).toBeInstanceOf(ArchiveLimitError);
    expect((error as Error).message).toMatch(/more than 16 MiB of padding after its end-of-archive marker/);
    expect(readdirSync(base).sort()).toEqual(['victim']);
  });

  it('with --force onto the victim, a manifest with a field of the wrong type is refused before the commit', async () => {
    const archive = tar().file('tenants/victim/new.txt', 'replacement').manifest('victim', (m) => ({ ...m, warnings: [null] }) as unknown as Manifest).build();
    const error = await restore(archive, { force: true });
    expect(error).toBeInstanceOf(CorruptArchiveError);
    expect((error as Error).message).toMatch(/manifest is malformed: warnings\[0\]: not an object/);
    expect(readdirSync(base).sort()).toEqual(['victim']);
  });

  describe('the archive marker (the leading skippable frame)', () => {
    const marker = (payload: unknown, nibble = 0x0c): Buffer => {
      const body = Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
      const frame = Buffer.alloc(8 + body.length);
      frame.writeUInt32LE(0x184d2a50 + nibble, 0);
      frame.writeUInt32LE(body.length, 4);
      body.copy(frame, 8);
      return frame;
    };
    const ours = { format: 'openclawmu-tenant-backup', formatVersion: 2, tenant: 'acme' };
    const unmanifested = () => tar().file(T('f'), 'x').build();

    it('makes a missing manifest damage, not a foreign archive', async () => {
      const error = await restore(unmanifested(), { before: marker(ours) });
      expect(error).toBeInstanceOf(CorruptArchiveError);
      expect((error as Error).message).toMatch(/manifest \(the last entry\) is missing/);
      expect(readdirSync(base).sort()).toEqual(['victim']);
    });

    it.each<[string, Buffer, ErrorClass, RegExp]>([
      ['names another tenant than the entries', marker({ ...ours, tenant: 'victim' }), CorruptArchiveError, /marked as tenant "victim" but its entries are for "acme"/],
      ['has a tenant that is not a string', marker({ ...ours, tenant: 5 }), CorruptArchiveError, /archive marker is malformed: tenant: not a string/],
      ['has a format version that is not a number', marker({ ...ours, formatVersion: '2' }), CorruptArchiveError, /archive marker is malformed: formatVersion/],
      ['comes twice', Buffer.concat([marker(ours), marker(ours)]), CorruptArchiveError, /two archive markers/],
      ['is larger than 64 KiB', marker({ ...ours, padding: 'x'.repeat(70_000) }), ArchiveLimitError, /skippable frame at byte 0 holds \d+ bytes, more than the 65536-byte limit/],
    ])('refuses a marker that %s', async (_label, before, errorClass, message) => {
      const error = await restore(tar().file(T('f'), 'x').manifest('acme').build(), { before });
      expect(error).toBeInstanceOf(errorClass);
      expect((error as Error).message).toMatch(message);
      expect(readdirSync(base).sort()).toEqual(['victim']);
    });

    it('refuses at its first frame an archive in a newer format version, naming the version that wrote it', async () => {
      // Its manifest (the last entry) would be refused too, but only once everything was read.
      const future = tar().file(T('f'), 'x').manifest('acme', (m) => ({ ...m, formatVersion: 3 })).build();
      const error = await restore(future, { before: marker({ ...ours, formatVersion: 3, toolVersion: '9.0.0' }) });
      expect(error).toBeInstanceOf(CorruptArchiveError);
      expect((error as Error).message).toMatch(/^the archive is in format version 3, written by version 9\.0\.0 of this tool; this tool \(version [^)]+\) reads versions 1 and 2: restore it with a newer version$/);
      expect(readdirSync(base).sort()).toEqual(['victim']);
    });

    it('ignores skippable frames of other nibbles, however large, and a marker-nibble frame that is not ours', async () => {
      for (const before of [marker('x'.repeat(1024 * 1024), 3), marker('not json'), marker({ format: 'someone-else' })]) {
        const result = (await restore(unmanifested(), { before, as: 'fresh' })) as { verified: boolean };
        expect(result.verified).toBe(false);
        await fs.rm(path.join(base, 'fresh'), { recursive: true });
      }
      expect(readdirSync(base).sort()).toEqual(['victim']);
    });
  });

  it('a truncated archive of ours is refused as corrupt', async () => {
    const good = tar().file(T('a'), Buffer.alloc(3000, 1)).manifest('acme').build();
    const error = await restore(good.subarray(0, 1024 + 512));
    expect(error).toBeInstanceOf(CorruptArchiveError);
    expect(readdirSync(base).sort()).toEqual(['victim']);
  });
});
