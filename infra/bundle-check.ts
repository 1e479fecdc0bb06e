// Post-bundling check of a function asset, run by the functions' `afterBundling` hook.
//
// Why: the functions run on nodejs24.x, whose node:zlib (zstd) and node:sqlite (backup())
// the core uses, so an asset is one esbuild bundle (AWS SDK included) and its source map,
// nothing else. Native code in an asset would be built for the synth machine's CPU and Node,
// and only fail in AWS, at run time (an arm64 function with an x86_64 addon, an addon for
// another Node ABI); a package left for run time would be missing there. So before the
// asset is zipped this script fails the synth on
//   1. any native file: a `.node` addon, a shared library (`.so`, `.dylib`, `.dll`), or any
//      file that starts like an executable or library (ELF, Mach-O, PE);
//   2. a `node_modules` directory: nothing is installed beside the bundle;
//   3. a package the bundle still imports at run time (esbuild's metafile lists what it left
//      external; only Node's built-ins may remain), and then deletes the metafile.
// Usage: node --import tsx infra/bundle-check.ts <assetDir>

import { existsSync, lstatSync, openSync, closeSync, readSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The name esbuild's `--metafile` is written to by NodejsFunction. */
export const METAFILE_NAME = 'index.meta.json';

const NATIVE_EXTENSIONS = /\.(node|so(\.\d+)*|dylib|dll)$/;

/** What a file's first bytes say it is, if it is native code: ELF, Mach-O or PE; else undefined. */
export function nativeFormatOf(head: Uint8Array): string | undefined {
  if (head.length >= 4 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46) return 'an ELF binary';
  if (head.length >= 4) {
    const magic = Buffer.from(head.subarray(0, 4)).readUInt32BE(0);
    if ([0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe, 0xcafebabe].includes(magic)) return 'a Mach-O binary';
  }
  if (head.length >= 2 && head[0] === 0x4d && head[1] === 0x5a) return 'a PE (Windows) binary';
  return undefined;
}

/** Native files and `node_modules` directories below `dir` (relative paths, why), without following symbolic links. */
export function nativeContentOf(dir: string): string[] {
  const found: string[] = [];
  const head = Buffer.alloc(4);
  const walk = (current: string): void => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const full = join(current, entry.name);
      const name = relative(dir, full);
      if (entry.isDirectory()) {
        if (entry.name === 'node_modules') found.push(`${name}: a node_modules directory (packages installed beside the bundle)`);
        else walk(full);
      } else if (entry.isFile()) {
        if (NATIVE_EXTENSIONS.test(entry.name)) {
          found.push(`${name}: a native module or library`);
          continue;
        }
        const fd = openSync(full, 'r');
        let read = 0;
        try {
          read = readSync(fd, head, 0, head.length, 0);
        } finally {
          closeSync(fd);
        }
        const format = nativeFormatOf(head.subarray(0, read));
        if (format !== undefined) found.push(`${name}: ${format}`);
      }
    }
  };
  walk(dir);
  return found.sort();
}

/** The package a bare import specifier names (`@scope/name/sub` → `@scope/name`); undefined for built-ins and paths. */
export function packageOfSpecifier(specifier: string): string | undefined {
  if (specifier.startsWith('node:') || specifier.startsWith('.') || specifier.startsWith('/')) return undefined;
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  return builtinModules.includes(name) ? undefined : name;
}

interface Metafile {
  readonly outputs?: Record<string, { readonly imports?: readonly { readonly path: string; readonly external?: boolean }[] }>;
}

/** Packages the bundle still imports at run time, from esbuild's metafile. */
export function externalPackagesOf(metafile: Metafile): string[] {
  const packages = new Set<string>();
  for (const output of Object.values(metafile.outputs ?? {})) {
    for (const imported of output.imports ?? []) {
      if (!imported.external) continue;
      const name = packageOfSpecifier(imported.path);
      if (name !== undefined) packages.add(name);
    }
  }
  return [...packages].sort();
}

/** Every problem with the asset in `assetDir`; empty when it is fine. */
export function checkAsset(assetDir: string): string[] {
  const problems = nativeContentOf(assetDir);
  const metafilePath = join(assetDir, METAFILE_NAME);
  if (existsSync(metafilePath)) {
    const metafile = JSON.parse(readFileSync(metafilePath, 'utf8')) as Metafile;
    for (const name of externalPackagesOf(metafile)) problems.push(`the bundle imports ${name} at run time: the function would not find it`);
  } else {
    problems.push(`${METAFILE_NAME} is missing: cannot check the bundle's imports`);
  }
  return problems;
}

function main(argv: readonly string[]): number {
  const [assetDir, ...extra] = argv;
  if (assetDir === undefined || extra.length > 0) {
    process.stderr.write('usage: bundle-check <assetDir>\n');
    return 2;
  }
  if (!existsSync(assetDir) || !lstatSync(assetDir).isDirectory()) {
    process.stderr.write(`bundle-check: ${assetDir} is not a directory\n`);
    return 2;
  }
  const problems = checkAsset(assetDir);
  rmSync(join(assetDir, METAFILE_NAME), { force: true });
  if (problems.length > 0) {
    process.stderr.write(`bundle-check: the function asset is not deployable (it must hold the bundle only, no native code):\n  - ${problems.join('\n  - ')}\n`);
    return 1;
  }
  return 0;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = main(process.argv.slice(2));
}
