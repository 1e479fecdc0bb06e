#!/bin/sh
':' //; MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}" exec node --max-semi-space-size=4 "$0" "$@"
// Entry point installed as `openclaw`: runs the bundled CLI (npm install builds it).
//
// Run as a command, the two lines above are a shell script that starts Node with settings a
// process cannot give itself once running: a 4 MiB young generation (V8's default grows to
// 16 MiB semi-spaces under a backup's allocation rate) and at most two glibc malloc arenas
// (each libuv thread compressing would otherwise keep its own). Together they take 30-60 MiB
// off a large backup's or restore's peak RSS at the same speed (docs/benchmarks.md). Run as
// `node bin/openclaw.js`, Node skips the first line and the second is a string and a comment.
// (A POSIX shell is needed to run it as a command: Linux and macOS, not plain Windows.)
const { main } = await import('../dist/bundle/main.js');
process.exitCode = await main(process.argv.slice(2));
