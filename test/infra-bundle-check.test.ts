// The post-bundling check of the function assets: an asset is the bundle and its source map,
// nothing native (addons, libraries, executables by name or by magic bytes), no node_modules,
// and no package left for run time; and the command the afterBundling hook runs. Assets are
// faked in temporary directories.

import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { checkAsset, externalPackagesOf, nativeContentOf, nativeFormatOf, packageOfSpecifier } from '../infra/bundle-check.js';

/** A minimal 64-bit little-endian ELF header for `machine`. */
function elf(machine: number): Buffer {
  const header = Buffer.alloc(64);
  header.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  header.writeUInt16LE(3, 16);
  header.writeUInt16LE(machine, 18);
  return header;
}

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Writes `files` (path → content) into a new temporary asset directory. */
function asset(files: Record<string, string | Buffer>): string {
  const dir = mkdtempSync(join(tmpdir(), 'openclaw-asset-'));
  dirs.push(dir);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

const metafile = (imports: { path: string; external?: boolean }[]) => JSON.stringify({ outputs: { 'index.mjs': { imports } } });

/** An asset as NodejsFunction leaves it for the hook: the bundle, its map, the metafile. */
function goodAsset(extra: Record<string, string | Buffer> = {}): string {
  return asset({
    // The Node 20 fallbacks are named in strings, required only where Node lacks zstd and SQLite.
    'index.mjs': 'const z=()=>r(import.meta.url)("@mongodb-js/zstd/bindings.js");const s=()=>r(import.meta.url)("better-sqlite3");',
    'index.mjs.map': '{"version":3}',
    'index.meta.json': metafile([
      { path: 'node:fs', external: true },
      { path: 'fs', external: true },
      { path: 'node:sqlite', external: true },
      { path: 'functions/backup.ts', external: false },
    ]),
    ...extra,
  });
}

describe('recognising native code', () => {
  it('by its first bytes: ELF, Mach-O, PE; not text or JavaScript', () => {
    expect(nativeFormatOf(elf(0x3e))).toBe('an ELF binary');
    expect(nativeFormatOf(elf(0xb7))).toBe('an ELF binary');
    expect(nativeFormatOf(Buffer.from([0xcf, 0xfa, 0xed, 0xfe]))).toBe('a Mach-O binary');
    expect(nativeFormatOf(Buffer.from([0xca, 0xfe, 0xba, 0xbe]))).toBe('a Mach-O binary');
    expect(nativeFormatOf(Buffer.from('MZ\x90\0'))).toBe('a PE (Windows) binary');
    expect(nativeFormatOf(Buffer.from('#!/bin/sh\n'))).toBeUndefined();
    expect(nativeFormatOf(Buffer.from('import x'))).toBeUndefined();
    expect(nativeFormatOf(Buffer.alloc(0))).toBeUndefined();
  });

  it('finds addons and libraries by name, binaries by content, and node_modules, anywhere in the asset', () => {
    const dir = goodAsset({
      'lib/zstd.linux-arm64-gnu.node': 'whatever it holds',
      'lib/libsqlite3.so.0': 'x',
      'vendor/tool': elf(0x3e),
      'node_modules/better-sqlite3/package.json': '{}',
    });
    expect(nativeContentOf(dir)).toEqual([
      'lib/libsqlite3.so.0: a native module or library',
      'lib/zstd.linux-arm64-gnu.node: a native module or library',
      'node_modules: a node_modules directory (packages installed beside the bundle)',
      'vendor/tool: an ELF binary',
    ]);
    expect(nativeContentOf(goodAsset())).toEqual([]);
  });

  it('would refuse the real better-sqlite3 addon of this machine', () => {
    const require = createRequire(import.meta.url);
    const binary = join(dirname(require.resolve('better-sqlite3/package.json')), 'build/Release/better_sqlite3.node');
    const dir = goodAsset();
    mkdirSync(join(dir, 'addon'));
    copyFileSync(binary, join(dir, 'addon', 'sqlite.bin'));
    expect(nativeContentOf(dir)).toEqual(['addon/sqlite.bin: an ELF binary']);
  });
});

describe('reading the bundle', () => {
  it.each([
    ['better-sqlite3', 'better-sqlite3'],
    ['@mongodb-js/zstd/bindings.js', '@mongodb-js/zstd'],
    ['@aws-sdk/client-s3', '@aws-sdk/client-s3'],
    ['node:fs', undefined],
    ['fs/promises', undefined],
    ['./local.js', undefined],
    ['/abs/path.js', undefined],
  ])('packageOfSpecifier(%j) is %j', (specifier, expected) => {
    expect(packageOfSpecifier(specifier)).toBe(expected);
  });

  it('lists the packages a bundle imports at run time from its metafile', () => {
    expect(
      externalPackagesOf(
        JSON.parse(
          metafile([
            { path: 'better-sqlite3', external: true },
            { path: '@mongodb-js/zstd/bindings.js', external: true },
            { path: 'node:path', external: true },
            { path: 'functions/backup.ts', external: false },
            { path: 'better-sqlite3', external: true },
          ]),
        ) as object,
      ),
    ).toEqual(['@mongodb-js/zstd', 'better-sqlite3']);
  });
});

describe('checkAsset', () => {
  it('accepts the bundle and its map, importing only Node built-ins', () => {
    expect(checkAsset(goodAsset())).toEqual([]);
  });

  it('refuses native content and packages left for run time, all at once', () => {
    const dir = goodAsset({
      'index.meta.json': metafile([{ path: 'better-sqlite3', external: true }, { path: 'node:zlib', external: true }]),
      'node_modules/@mongodb-js/zstd-linux-x64-gnu/zstd.linux-x64-gnu.node': elf(0x3e),
    });
    expect(checkAsset(dir)).toEqual([
      'node_modules: a node_modules directory (packages installed beside the bundle)',
      'the bundle imports better-sqlite3 at run time: the function would not find it',
    ]);
  });

  it('reports a missing metafile', () => {
    expect(checkAsset(asset({ 'index.mjs': '' }))).toEqual(['index.meta.json is missing: cannot check the bundle\'s imports']);
  });
});

describe('the afterBundling command', () => {
  const script = fileURLToPath(new URL('../infra/bundle-check.ts', import.meta.url));
  // As infra/backup-functions.ts runs it: tsx as a loader, which (without its cache) leaves nothing in /tmp.
  const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  const run = (args: string[]) => {
    try {
      execFileSync(process.execPath, ['--import', tsxLoader, script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TSX_DISABLE_CACHE: '1' } });
      return { status: 0, stderr: '' };
    } catch (error) {
      const failure = error as { status: number; stderr: Buffer };
      return { status: failure.status, stderr: failure.stderr.toString() };
    }
  };

  it('passes a good asset and deletes the metafile', () => {
    const dir = goodAsset();
    expect(run([dir])).toEqual({ status: 0, stderr: '' });
    expect(existsSync(join(dir, 'index.meta.json'))).toBe(false);
    expect(existsSync(join(dir, 'index.mjs'))).toBe(true);
  });

  it('fails with every problem, and deletes the metafile either way', () => {
    const dir = goodAsset({ 'zstd.node': elf(0xb7) });
    const result = run([dir]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('bundle-check: the function asset is not deployable (it must hold the bundle only, no native code):');
    expect(result.stderr).toContain('zstd.node: a native module or library');
    expect(existsSync(join(dir, 'index.meta.json'))).toBe(false);
  });

  it('refuses bad arguments', () => {
    expect(run(['/nonexistent']).status).toBe(2);
    expect(run([]).status).toBe(2);
    expect(run([tmpdir(), 'x86_64']).status).toBe(2);
  });
});
