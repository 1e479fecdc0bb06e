// The post-bundling check of the function assets: ELF CPU and Node ABI of native binaries,
// imports the asset cannot satisfy, pruning of native build leftovers, and the command the
// afterBundling hook runs. Assets are faked in temporary directories.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkAsset,
  elfArchOf,
  externalPackagesOf,
  mentionedPackages,
  nodeAbiOf,
  packageOfSpecifier,
  pruneBuildLeftovers,
  type AssetExpectations,
} from '../infra/bundle-check.js';

/** A minimal 64-bit little-endian ELF header of `type` for `machine`, then `tail`. */
function elf(machine: number, { type = 3, elfClass = 2, tail = '' } = {}): Buffer {
  const header = Buffer.alloc(64);
  header.set([0x7f, 0x45, 0x4c, 0x46, elfClass, 1, 1], 0);
  header.writeUInt16LE(type, 16);
  header.writeUInt16LE(machine, 18);
  return Buffer.concat([header, Buffer.from(tail, 'latin1')]);
}

const X86_64 = 0x3e;
const AARCH64 = 0xb7;

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

const metafile = (imports: { path: string; external?: boolean }[]) =>
  JSON.stringify({ outputs: { 'index.mjs': { imports } } });

const EXPECT: AssetExpectations = {
  arch: 'x86_64',
  nodeAbi: 115,
  ship: ['@mongodb-js/zstd', 'better-sqlite3'],
  lazy: [],
  native: ['@mongodb-js/zstd', 'better-sqlite3'],
};

/** An asset shipped the way the backup function's should be. */
function goodBackupAsset(extra: Record<string, string | Buffer> = {}): string {
  return asset({
    'index.mjs': 'const z=r("@mongodb-js/zstd/bindings.js");import D from"better-sqlite3";',
    'index.meta.json': metafile([
      { path: 'better-sqlite3', external: true },
      { path: 'node:fs', external: true },
      { path: 'fs', external: true },
    ]),
    'node_modules/@mongodb-js/zstd/package.json': '{}',
    'node_modules/@mongodb-js/zstd-linux-x64-gnu/zstd.linux-x64-gnu.node': elf(X86_64, { tail: 'napi_register_module_v1' }),
    'node_modules/better-sqlite3/package.json': '{}',
    'node_modules/better-sqlite3/build/Release/better_sqlite3.node': elf(X86_64, { tail: 'node_register_module_v115' }),
    ...extra,
  });
}

describe('reading native binaries', () => {
  it('reads the CPU of 64-bit shared objects and refuses anything else', () => {
    expect(elfArchOf(elf(X86_64))).toBe('x86_64');
    expect(elfArchOf(elf(AARCH64))).toBe('arm64');
    expect(elfArchOf(Buffer.from('#!/bin/sh\necho not an addon\n'))).toEqual({ problem: 'not an ELF file' });
    expect(elfArchOf(elf(X86_64, { elfClass: 1 }))).toEqual({ problem: 'not a 64-bit little-endian ELF file' });
    expect(elfArchOf(elf(X86_64, { type: 2 }))).toEqual({ problem: 'ELF type 2, not a shared object' });
    expect(elfArchOf(elf(0x28))).toEqual({ problem: 'ELF machine 0x28, not x86_64 or arm64' });
    expect(elfArchOf(Buffer.alloc(8))).toEqual({ problem: 'not an ELF file' });
  });

  it('reads the Node ABI of a non-N-API addon, none of an N-API one', () => {
    expect(nodeAbiOf(elf(X86_64, { tail: '\0node_register_module_v127\0' }))).toBe(127);
    expect(nodeAbiOf(elf(X86_64, { tail: '\0napi_register_module_v1\0' }))).toBeUndefined();
  });

  it('reads the real better-sqlite3 binary of this machine', async () => {
    const { readFileSync } = await import('node:fs');
    const require = createRequire(import.meta.url);
    const binary = join(dirname(require.resolve('better-sqlite3/package.json')), 'build/Release/better_sqlite3.node');
    const bytes = readFileSync(binary);
    expect(elfArchOf(bytes)).toBe(process.arch === 'arm64' ? 'arm64' : 'x86_64');
    expect(nodeAbiOf(bytes)).toBe(Number(process.versions.modules));
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

  it('finds native packages named in strings, as createRequire calls name them', () => {
    const candidates = ['@mongodb-js/zstd', 'better-sqlite3'];
    expect(mentionedPackages('(0,m.createRequire)(import.meta.url)("@mongodb-js/zstd/bindings.js")', candidates)).toEqual([
      '@mongodb-js/zstd',
    ]);
    expect(mentionedPackages("x=require('better-sqlite3')", candidates)).toEqual(['better-sqlite3']);
    expect(mentionedPackages('import D from`better-sqlite3`', candidates)).toEqual(['better-sqlite3']);
    expect(mentionedPackages('"better-sqlite3-multiple-ciphers" "zstd" better-sqlite3', candidates)).toEqual([]);
  });
});

describe('checkAsset', () => {
  it('accepts a complete asset for the right CPU and ABI', () => {
    expect(checkAsset(goodBackupAsset(), EXPECT)).toEqual([]);
  });

  it('refuses a binary for another CPU or another Node ABI', () => {
    const dir = goodBackupAsset({
      'node_modules/better-sqlite3/build/Release/better_sqlite3.node': elf(AARCH64, { tail: 'node_register_module_v127' }),
    });
    expect(checkAsset(dir, EXPECT)).toEqual([
      'node_modules/better-sqlite3/build/Release/better_sqlite3.node is built for arm64, the function runs on x86_64',
      'node_modules/better-sqlite3/build/Release/better_sqlite3.node is built for Node.js ABI 127, the function\'s runtime has ABI 115',
    ]);
    expect(checkAsset(goodBackupAsset(), { ...EXPECT, arch: 'arm64' })).toHaveLength(2);
  });

  it('refuses a .node file that is no shared object', () => {
    const dir = goodBackupAsset({ 'node_modules/better-sqlite3/build/Release/test.node': 'text' });
    expect(checkAsset(dir, EXPECT)).toEqual(['node_modules/better-sqlite3/build/Release/test.node: not an ELF file']);
  });

  it('refuses a bundle that imports or loads a package the asset does not ship', () => {
    const dir = asset({
      'index.mjs': 'const z=c(import.meta.url)("@mongodb-js/zstd/bindings.js");',
      'index.meta.json': metafile([{ path: 'tar-stream', external: true }]),
    });
    expect(checkAsset(dir, { ...EXPECT, ship: [] })).toEqual([
      'the bundle imports tar-stream, which the asset does not ship: add it to the function\'s native modules',
      'the bundle loads @mongodb-js/zstd, which the asset does not ship: add it to the function\'s native modules',
    ]);
  });

  it('lets a bundle mention a lazy package it does not ship', () => {
    const dir = asset({
      'index.mjs': 'c(import.meta.url)("@mongodb-js/zstd/bindings.js");function s(){return c(import.meta.url)("better-sqlite3")}',
      'index.meta.json': metafile([]),
      'node_modules/@mongodb-js/zstd/package.json': '{}',
    });
    expect(checkAsset(dir, { ...EXPECT, ship: ['@mongodb-js/zstd'], lazy: ['better-sqlite3'] })).toEqual([]);
    expect(checkAsset(dir, { ...EXPECT, ship: ['@mongodb-js/zstd'], lazy: [] })).toEqual([
      'the bundle loads better-sqlite3, which the asset does not ship: add it to the function\'s native modules',
    ]);
  });

  it('reports a package that should have been installed, and a missing metafile', () => {
    const dir = asset({ 'index.mjs': '' });
    expect(checkAsset(dir, { ...EXPECT, ship: ['better-sqlite3'] })).toEqual([
      'index.meta.json is missing: cannot check the bundle\'s imports',
      'better-sqlite3 was not installed into the asset',
    ]);
  });
});

describe('pruneBuildLeftovers', () => {
  it('removes node-gyp intermediates and the SQLite sources, keeping the addon and the JavaScript', () => {
    const dir = goodBackupAsset({
      'node_modules/better-sqlite3/binding.gyp': '{}',
      'node_modules/better-sqlite3/lib/index.js': '',
      'node_modules/better-sqlite3/deps/sqlite3/sqlite3.c': '',
      'node_modules/better-sqlite3/src/better_sqlite3.cpp': '',
      'node_modules/better-sqlite3/build/Release/obj.target/x.o': '',
      'node_modules/better-sqlite3/build/Release/obj/y.o': '',
      'node_modules/better-sqlite3/build/Release/.deps/z.d': '',
      'node_modules/better-sqlite3/build/Release/sqlite3.a': '',
      'node_modules/some-js/src/index.js': '',
    });
    expect(pruneBuildLeftovers(dir).sort()).toEqual([
      'better-sqlite3/build/Release/.deps',
      'better-sqlite3/build/Release/obj',
      'better-sqlite3/build/Release/obj.target',
      'better-sqlite3/build/Release/sqlite3.a',
      'better-sqlite3/deps',
      'better-sqlite3/src',
    ]);
    expect(existsSync(join(dir, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'))).toBe(true);
    expect(existsSync(join(dir, 'node_modules/better-sqlite3/lib/index.js'))).toBe(true);
    expect(existsSync(join(dir, 'node_modules/some-js/src/index.js'))).toBe(true);
    expect(pruneBuildLeftovers(asset({ 'index.mjs': '' }))).toEqual([]);
  });
});

describe('the afterBundling command', () => {
  const script = fileURLToPath(new URL('../infra/bundle-check.ts', import.meta.url));
  const tsxCli = createRequire(import.meta.url).resolve('tsx/cli');
  const run = (args: string[]) => {
    try {
      execFileSync(process.execPath, [tsxCli, script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      return { status: 0, stderr: '' };
    } catch (error) {
      const failure = error as { status: number; stderr: Buffer };
      return { status: failure.status, stderr: failure.stderr.toString() };
    }
  };

  it('fails with every problem, and deletes the metafile either way', () => {
    const dir = goodBackupAsset({
      'node_modules/better-sqlite3/build/Release/better_sqlite3.node': elf(AARCH64, { tail: 'node_register_module_v115' }),
    });
    const result = run([dir, 'x86_64', '115', '--ship=better-sqlite3', '--native=better-sqlite3']);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('the x86_64 function asset is not deployable');
    expect(result.stderr).toContain('better_sqlite3.node is built for arm64');
    expect(existsSync(join(dir, 'index.meta.json'))).toBe(false);
  });

  it('passes a good asset and loads what it ships when the host matches', () => {
    const dir = asset({
      'index.mjs': 'import x from"tiny-addon";',
      'index.meta.json': metafile([{ path: 'tiny-addon', external: true }]),
      'node_modules/tiny-addon/package.json': '{"name":"tiny-addon","main":"index.js"}',
      'node_modules/tiny-addon/index.js': 'module.exports = 1;',
    });
    expect(run([dir, process.arch === 'arm64' ? 'arm64' : 'x86_64', process.versions.modules, '--ship=tiny-addon'])).toEqual({
      status: 0,
      stderr: '',
    });
    writeFileSync(join(dir, 'node_modules/tiny-addon/index.js'), 'throw new Error("cannot load the addon");');
    writeFileSync(join(dir, 'index.meta.json'), metafile([]));
    const broken = run([dir, process.arch === 'arm64' ? 'arm64' : 'x86_64', process.versions.modules, '--ship=tiny-addon']);
    expect(broken.status).toBe(1);
    expect(broken.stderr).toContain('tiny-addon does not load from the asset');
  });

  it('fails a package that only loads thanks to a node_modules above the asset', () => {
    const dir = asset({
      'node_modules/sibling-outside/package.json': '{"name":"sibling-outside","main":"index.js"}',
      'node_modules/sibling-outside/index.js': 'module.exports = 2;',
    });
    // The asset proper is a subdirectory: its parent's node_modules is "above" it.
    const inner = join(dir, 'asset');
    mkdirSync(join(inner, 'node_modules/needs-sibling'), { recursive: true });
    writeFileSync(join(inner, 'index.meta.json'), metafile([]));
    writeFileSync(join(inner, 'node_modules/needs-sibling/package.json'), '{"name":"needs-sibling","main":"index.js"}');
    writeFileSync(join(inner, 'node_modules/needs-sibling/index.js'), 'module.exports = require("sibling-outside");');
    const result = run([inner, process.arch === 'arm64' ? 'arm64' : 'x86_64', process.versions.modules, '--ship=needs-sibling']);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('needs-sibling does not load from the asset: it loads');
    expect(result.stderr).toContain('sibling-outside');
  });

  it('refuses bad arguments', () => {
    expect(run(['/nonexistent', 'x86_64', '115']).status).toBe(2);
    expect(run([tmpdir(), 'sparc', '115']).status).toBe(2);
    expect(run([tmpdir(), 'x86_64', '115', '--bogus']).status).toBe(2);
  });
});
