// Post-bundling check of a function asset, run by the functions' `afterBundling` hook.
//
// Why: the native modules (@mongodb-js/zstd, better-sqlite3) are installed by `npm ci` on
// the synth machine, and a wrong one only shows in AWS, at run time: better-sqlite3 compiles
// from source for the *host* CPU whatever `npm_config_cpu` says, and an install script that
// npm skipped leaves no binary at all. So before the asset is zipped this script
//   1. removes native build leftovers (object files, static libraries, C sources),
//   2. fails if any `.node` binary is not an ELF shared object for the function's CPU, or
//      is built for another Node.js ABI than the runtime's (non-N-API addons such as
//      better-sqlite3 export `node_register_module_v<ABI>`; a synth on a Node 22 machine
//      would otherwise ship a binary the Node 20 runtime cannot load),
//   3. fails if the bundle imports an external package the asset does not ship (read from
//      esbuild's metafile, which it then deletes), or names a native package in a string
//      (`createRequire(import.meta.url)('@mongodb-js/zstd/bindings.js')` is invisible to
//      esbuild) that the asset does not ship, unless that package is declared lazy: loaded
//      on first use by a code path this function never takes,
//   4. when the host CPU and Node ABI are the function's, loads every shipped native package.
// Usage: tsx infra/bundle-check.ts <assetDir> <x86_64|arm64> <node ABI>
//          [--ship=<package>]… [--lazy=<package>]… [--native=<package>]…

import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { arch as hostArch } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Lambda CPU architectures, named as Lambda names them. */
export type LambdaArch = 'x86_64' | 'arm64';

/** The name esbuild's `--metafile` is written to by NodejsFunction. */
export const METAFILE_NAME = 'index.meta.json';

const ELF_MACHINES: Readonly<Record<number, LambdaArch>> = { 0x3e: 'x86_64', 0xb7: 'arm64' };

/**
 * Reads the CPU of a 64-bit little-endian ELF shared object from its first 20 bytes; for
 * anything else, the problem.
 */
export function elfArchOf(header: Uint8Array): LambdaArch | { problem: string } {
  if (header.length < 20 || header[0] !== 0x7f || header[1] !== 0x45 || header[2] !== 0x4c || header[3] !== 0x46) {
    return { problem: 'not an ELF file' };
  }
  if (header[4] !== 2 || header[5] !== 1) return { problem: 'not a 64-bit little-endian ELF file' };
  const type = header[16]! | (header[17]! << 8);
  if (type !== 3) return { problem: `ELF type ${type}, not a shared object` };
  const machine = header[18]! | (header[19]! << 8);
  return ELF_MACHINES[machine] ?? { problem: `ELF machine 0x${machine.toString(16)}, not x86_64 or arm64` };
}

/** The Node.js ABI (NODE_MODULE_VERSION) a non-N-API addon was built for; undefined for N-API addons. */
export function nodeAbiOf(binary: Uint8Array): number | undefined {
  const match = /node_register_module_v(\d+)/.exec(Buffer.from(binary).toString('latin1'));
  return match ? Number(match[1]) : undefined;
}

/** Every `.node` file below `dir`, without following symbolic links. */
export function findNativeBinaries(dir: string): string[] {
  const found: string[] = [];
  const walk = (current: string): void => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const full = join(current, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile() && entry.name.endsWith('.node')) found.push(full);
    }
  };
  if (existsSync(dir)) walk(dir);
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

// Leftovers of a node-gyp build that the running module never reads: object files, static
// libraries, dependency files, and (better-sqlite3) the SQLite amalgamation and C++ sources.
const BUILD_LEFTOVERS = ['build/Release/obj', 'build/Release/obj.target', 'build/Release/.deps', 'build/deps'];
const PACKAGE_LEFTOVERS: Readonly<Record<string, readonly string[]>> = { 'better-sqlite3': ['deps', 'src'] };

/** Removes native build leftovers from the packages in `<assetDir>/node_modules`; returns what went. */
export function pruneBuildLeftovers(assetDir: string): string[] {
  const removed: string[] = [];
  const modules = join(assetDir, 'node_modules');
  if (!existsSync(modules)) return removed;
  const packageDirs = readdirSync(modules).flatMap((name) =>
    name.startsWith('@') ? readdirSync(join(modules, name)).map((sub) => `${name}/${sub}`) : [name],
  );
  for (const name of packageDirs) {
    const dir = join(modules, name);
    if (!existsSync(join(dir, 'binding.gyp'))) continue;
    const release = join(dir, 'build', 'Release');
    const staticLibraries = existsSync(release)
      ? readdirSync(release).filter((file) => file.endsWith('.a')).map((file) => `build/Release/${file}`)
      : [];
    for (const relative of [...BUILD_LEFTOVERS, ...staticLibraries, ...(PACKAGE_LEFTOVERS[name] ?? [])]) {
      const target = join(dir, relative);
      if (!existsSync(target)) continue;
      rmSync(target, { recursive: true, force: true });
      removed.push(`${name}/${relative}`);
    }
  }
  return removed;
}

/** What an asset should hold, and which native packages its bundle may mention. */
export interface AssetExpectations {
  readonly arch: LambdaArch;
  /** NODE_MODULE_VERSION of the function's runtime. */
  readonly nodeAbi: number;
  /** Packages installed into the asset's node_modules. */
  readonly ship: readonly string[];
  /** Native packages the bundle may mention without shipping them (never loaded here). */
  readonly lazy: readonly string[];
  /** Every native package to look for in the bundle's text. */
  readonly native: readonly string[];
}

/** Native packages named as a module specifier (quoted, maybe with a subpath) in `code`. */
export function mentionedPackages(code: string, candidates: readonly string[]): string[] {
  return candidates.filter((name) => {
    const escaped = name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    return new RegExp(`["'\`]${escaped}(?:/[^"'\`\\s]*)?["'\`]`).test(code);
  });
}

/** Every problem with the asset in `assetDir`; empty when it is fine. */
export function checkAsset(assetDir: string, expected: AssetExpectations): string[] {
  const { arch, nodeAbi } = expected;
  const problems: string[] = [];
  for (const binary of findNativeBinaries(join(assetDir, 'node_modules'))) {
    const bytes = readFileSync(binary);
    const relative = binary.slice(assetDir.length + 1);
    const found = elfArchOf(bytes.subarray(0, 20));
    if (typeof found !== 'string') {
      problems.push(`${relative}: ${found.problem}`);
      continue;
    }
    if (found !== arch) problems.push(`${relative} is built for ${found}, the function runs on ${arch}`);
    const abi = nodeAbiOf(bytes);
    if (abi !== undefined && abi !== nodeAbi) {
      problems.push(`${relative} is built for Node.js ABI ${abi}, the function's runtime has ABI ${nodeAbi}`);
    }
  }

  const metafilePath = join(assetDir, METAFILE_NAME);
  if (existsSync(metafilePath)) {
    const metafile = JSON.parse(readFileSync(metafilePath, 'utf8')) as Metafile;
    for (const name of externalPackagesOf(metafile)) {
      if (!existsSync(join(assetDir, 'node_modules', name, 'package.json'))) {
        problems.push(`the bundle imports ${name}, which the asset does not ship: add it to the function's native modules`);
      }
    }
  } else {
    problems.push(`${METAFILE_NAME} is missing: cannot check the bundle's imports`);
  }

  const shipped = (name: string) => existsSync(join(assetDir, 'node_modules', name, 'package.json'));
  for (const name of expected.ship) {
    if (!shipped(name)) problems.push(`${name} was not installed into the asset`);
  }
  const code = readdirSync(assetDir)
    .filter((file) => /\.(mjs|cjs|js)$/.test(file))
    .map((file) => readFileSync(join(assetDir, file), 'utf8'))
    .join('\n');
  for (const name of mentionedPackages(code, expected.native)) {
    if (!shipped(name) && !expected.lazy.includes(name)) {
      problems.push(`the bundle loads ${name}, which the asset does not ship: add it to the function's native modules`);
    }
  }
  return problems;
}

/** Host CPU in Lambda's naming; undefined for any other. */
export function hostLambdaArch(): LambdaArch | undefined {
  const cpu = hostArch();
  return cpu === 'x64' ? 'x86_64' : cpu === 'arm64' ? 'arm64' : undefined;
}

/**
 * Loads each package from the asset in a child process, which proves its binary loads here.
 * Resolution climbs parent directories (cdk.out may sit inside the repository, beside its
 * node_modules), so the child also fails if any file it loaded lies outside the asset.
 */
function loadPackages(assetDir: string, names: readonly string[]): string[] {
  const problems: string[] = [];
  const root = JSON.stringify(`${assetDir.replace(/\/+$/, '')}/`);
  for (const name of names) {
    const script = [
      `require(require.resolve(${JSON.stringify(name)}, { paths: [${root}] }));`,
      `const outside = Object.keys(require.cache).filter((file) => !file.startsWith(${root}));`,
      `if (outside.length > 0) { console.error('it loads ' + outside[0] + ', outside the asset'); process.exit(1); }`,
    ].join('\n');
    try {
      execFileSync(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (error) {
      const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim().split('\n')[0] ?? String(error);
      problems.push(`${name} does not load from the asset: ${stderr}`);
    }
  }
  return problems;
}

function main(argv: readonly string[]): number {
  const [assetDir, arch, abi, ...options] = argv;
  const values = (flag: string) => options.filter((option) => option.startsWith(`--${flag}=`)).map((option) => option.slice(flag.length + 3));
  const unknown = options.filter((option) => !/^--(ship|lazy|native)=./.test(option));
  if (assetDir === undefined || (arch !== 'x86_64' && arch !== 'arm64') || abi === undefined || !/^\d+$/.test(abi) || unknown.length > 0) {
    process.stderr.write('usage: bundle-check <assetDir> <x86_64|arm64> <node ABI> [--ship=pkg]… [--lazy=pkg]… [--native=pkg]…\n');
    return 2;
  }
  const ship = values('ship');
  const isDirectory = existsSync(assetDir) && lstatSync(assetDir).isDirectory();
  if (!isDirectory) {
    process.stderr.write(`bundle-check: ${assetDir} is not a directory\n`);
    return 2;
  }
  pruneBuildLeftovers(assetDir);
  const problems = checkAsset(assetDir, { arch, nodeAbi: Number(abi), ship, lazy: values('lazy'), native: values('native') });
  const canLoad = hostLambdaArch() === arch && process.versions.modules === abi;
  if (problems.length === 0 && canLoad) problems.push(...loadPackages(assetDir, ship));
  rmSync(join(assetDir, METAFILE_NAME), { force: true });
  if (problems.length > 0) {
    process.stderr.write(`bundle-check: the ${arch} function asset is not deployable:\n  - ${problems.join('\n  - ')}\n`);
    return 1;
  }
  return 0;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = main(process.argv.slice(2));
}
