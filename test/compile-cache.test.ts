// bin/openclaw.js keeps V8's code cache of the bundle in dist/compile-cache/ (Node 22+), which
// saves compiling ~1 MB of JavaScript at each command's start. A code cache is code the
// process runs: one that someone else could have written must never be used.
//
// Each case runs a copy of the built CLI (bin/ and dist/bundle/ copied, node_modules linked)
// with a cache directory of its own, under a Node that has the cache (this one, or the Node 24
// of `npm run test:node24`).

import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { cliPath, repoRoot, tempDir } from './helpers/tree.js';

/** A Node with module.enableCompileCache (22+): this one, else the project's Node 24 if installed. */
const node = ((): string | undefined => {
  if (Number(process.versions.node.split('.')[0]) >= 22) return process.execPath;
  const node24 = process.env.OPENCLAW_NODE24 ?? path.join(repoRoot, '.tools', 'node24', 'node_modules', '.bin', 'node');
  return existsSync(node24) ? node24 : undefined;
})();

const temp = tempDir('compile-cache-');
afterAll(() => temp.cleanup());

let copies = 0;
/** A copy of the built CLI; returns its bin/openclaw.js and its cache directory (made 0755, empty). */
function cliCopy(): { bin: string; cache: string } {
  const root = path.join(temp.path, `cli-${copies++}`);
  mkdirSync(path.join(root, 'bin'), { recursive: true });
  copyFileSync(cliPath, path.join(root, 'bin', 'openclaw.js'));
  cpSync(path.join(repoRoot, 'dist', 'bundle'), path.join(root, 'dist', 'bundle'), { recursive: true });
  symlinkSync(path.join(repoRoot, 'node_modules'), path.join(root, 'node_modules'));
  const cache = path.join(root, 'dist', 'compile-cache');
  mkdirSync(cache);
  chmodSync(cache, 0o755);
  return { bin: path.join(root, 'bin', 'openclaw.js'), cache };
}

/** Runs `--version` (under `umask`) with Node's compile-cache debug lines on stderr; returns them. */
function version(bin: string, env: NodeJS.ProcessEnv = {}, umask = '022'): string[] {
  const { NODE_COMPILE_CACHE: _chosen, NODE_DISABLE_COMPILE_CACHE: _disabled, ...inherited } = process.env;
  const { stdout, stderr, status } = spawnSync('sh', ['-c', `umask ${umask} && exec "$0" "$@"`, node!, bin, '--version'], {
    env: { ...inherited, NODE_DEBUG_NATIVE: 'COMPILE_CACHE', ...env },
    encoding: 'utf8',
  });
  expect(status, stderr).toBe(0);
  expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  return stderr.split('\n').filter((line) => line.startsWith('[compile cache]'));
}

/** Every file under `dir`. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name));
}

describe.skipIf(node === undefined)('the bundle\'s code cache (dist/compile-cache)', () => {
  it('is filled by a command\'s first run and read by the next: the bundle is not compiled again', () => {
    const { bin, cache } = cliCopy();
    version(bin);
    expect(filesUnder(cache).length).toBeGreaterThan(0);
    const second = version(bin);
    expect(second.some((line) => /V8 code cache for ESM .*\/dist\/bundle\/main\.js was accepted/.test(line))).toBe(true);
  });

  it('is read by the next run whatever the umask (its own directory is made the owner\'s alone)', () => {
    const { bin, cache } = cliCopy();
    version(bin, {}, '002');
    const [own] = readdirSync(cache);
    expect(statSync(path.join(cache, own!)).mode & 0o077).toBe(0);
    expect(version(bin, {}, '002').some((line) => /V8 code cache for ESM .*\/dist\/bundle\/main\.js was accepted/.test(line))).toBe(true);
  });

  it('is not used when others may write the cache directory (their cache would be code run as this user)', () => {
    const { bin, cache } = cliCopy();
    chmodSync(cache, 0o777);
    expect(version(bin)).toEqual([]);
    expect(readdirSync(cache)).toEqual([]);
  });

  it('is not used when others may write a directory in it, whatever it holds', () => {
    const { bin, cache } = cliCopy();
    version(bin); // fills this user's own subdirectory
    const [own] = readdirSync(cache);
    chmodSync(path.join(cache, own!), 0o757);
    expect(version(bin)).toEqual([]);
    const planted = path.join(cache, 'v0-planted');
    mkdirSync(planted);
    chmodSync(path.join(cache, own!), 0o755);
    chmodSync(planted, 0o777);
    writeFileSync(path.join(planted, 'entry'), 'not a cache');
    expect(version(bin)).toEqual([]);
  });

  // Node reads each entry by name, following a link: one another user could write was read as this user's own code.
  it('is not used when an entry of its subdirectory is writable by others, a link, or (as root) another user\'s', () => {
    const { bin, cache } = cliCopy();
    version(bin);
    const [own] = readdirSync(cache);
    const entries = readdirSync(path.join(cache, own!)).map((name) => path.join(cache, own!, name));
    const [entry] = entries;
    chmodSync(entry!, 0o666);
    expect(version(bin)).toEqual([]);
    chmodSync(entry!, 0o600);
    expect(version(bin).some((line) => /was accepted/.test(line))).toBe(true);
    const elsewhere = path.join(temp.path, `entry-elsewhere-${copies}`);
    copyFileSync(entry!, elsewhere);
    chmodSync(elsewhere, 0o600);
    rmSync(entry!);
    symlinkSync(elsewhere, entry!);
    expect(version(bin)).toEqual([]);
    rmSync(entry!);
    copyFileSync(elsewhere, entry!);
    if (process.getuid?.() === 0) {
      chownSync(entry!, 65534, 65534);
      expect(version(bin)).toEqual([]);
    }
  });

  it.skipIf(process.getuid?.() !== 0)('is not used by root when another user owns the cache directory', () => {
    const { bin, cache } = cliCopy();
    chownSync(cache, 65534, 65534);
    expect(version(bin)).toEqual([]);
    expect(readdirSync(cache)).toEqual([]);
  });

  it('is not a link to a directory elsewhere', () => {
    const { bin, cache } = cliCopy();
    const elsewhere = path.join(path.dirname(cache), 'elsewhere');
    mkdirSync(elsewhere);
    chmodSync(elsewhere, 0o755);
    rmSync(cache, { recursive: true });
    symlinkSync(elsewhere, cache);
    expect(version(bin)).toEqual([]);
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  it('leaves a cache the user chose (NODE_COMPILE_CACHE) to Node, and NODE_DISABLE_COMPILE_CACHE turns it off', () => {
    const { bin, cache } = cliCopy();
    const chosen = path.join(temp.path, 'chosen');
    version(bin, { NODE_COMPILE_CACHE: chosen });
    expect(filesUnder(chosen).length).toBeGreaterThan(0);
    expect(readdirSync(cache)).toEqual([]);
    version(bin, { NODE_DISABLE_COMPILE_CACHE: '1' });
    expect(readdirSync(cache)).toEqual([]);
  });
});
