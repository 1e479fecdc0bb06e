#!/usr/bin/env node
// Entry point installed as `openclaw`: runs the compiled CLI (npm install builds it).
// zstd work runs on libuv's thread pool; give it room before anything touches it.
process.env.UV_THREADPOOL_SIZE ??= '8';
const { main } = await import('../dist/cli/main.js');
process.exitCode = await main(process.argv.slice(2));
