// Bundles the compiled CLI (dist/cli/main.js, from tsc) into dist/bundle/, which
// bin/openclaw.js runs. Node's ES module loader costs about a millisecond per file, and the
// CLI is some sixty of them: one file (plus chunks for what only some commands load:
// the core, S3, cron) starts each command about 30 ms sooner. npm packages with native
// code or many files of their own (the AWS SDK) stay in node_modules, loaded on first use.

import { chmodSync, mkdirSync, rmSync } from 'node:fs';

import { build } from 'esbuild';

rmSync('dist/bundle', { recursive: true, force: true }); // chunk names carry content hashes: old ones would pile up
// V8's code cache of the bundle (bin/openclaw.js uses it under Node 22+), emptied with each
// build (its entries are named by the chunks' paths, which change), writable by its owner only.
rmSync('dist/compile-cache', { recursive: true, force: true });
mkdirSync('dist/compile-cache', { recursive: true });
chmodSync('dist/compile-cache', 0o755); // whatever the umask: a group-writable one would go unused

await build({
  entryPoints: { main: 'dist/cli/main.js' },
  outdir: 'dist/bundle',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['@mongodb-js/zstd', 'better-sqlite3', '@aws-sdk/*', '@smithy/*', '@aws-lambda-powertools/*'],
  // Bundled CommonJS packages (commander) call require(): give the ES module one.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  // Linked source maps (composed with tsc's): profiles and `--enable-source-maps` name the .ts modules.
  sourcemap: 'linked',
  logLevel: 'warning',
});
