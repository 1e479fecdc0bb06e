#!/bin/sh
':' //; p=64; n=$(ulimit -u 2>/dev/null || ulimit -p 2>/dev/null); case $n in [0-9]*) [ $((n / 4)) -lt $p ] && p=$((n / 4)); [ $p -lt 4 ] && p=4;; esac; MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}" UV_THREADPOOL_SIZE="${UV_THREADPOOL_SIZE:-$p}" exec node --max-semi-space-size=4 "$0" "$@"
// Entry point installed as `openclaw`: runs the bundled CLI (npm install builds it).
//
// Run as a command, the two lines above are a shell script that starts Node with settings a
// process cannot give itself once running: a 4 MiB young generation (V8's default grows to
// 16 MiB semi-spaces under a backup's allocation rate) and at most two glibc malloc arenas
// (each libuv thread compressing would otherwise keep its own). Together they take 30-60 MiB
// off a large backup's or restore's peak RSS at the same speed (docs/benchmarks.md). And 64
// threads in libuv's pool (THREAD_POOL_SIZE in shared/file-access.ts; Node's default is 4),
// so that a backup or restore on a network file system keeps that many calls in flight;
// under a small process limit (`ulimit -u`, which counts threads: dash calls it -p) a quarter
// of it, at least Node's 4, since libuv aborts the process, without a word, when it cannot
// start every thread of its pool.
// Run as `node bin/openclaw.js`, Node skips the first line and the second is a string and a
// comment (and the pool keeps Node's default, or UV_THREADPOOL_SIZE from the environment).
// (A POSIX shell is needed to run it as a command: Linux and macOS, not plain Windows.)
let main;
try {
  ({ main } = await import('../dist/bundle/main.js'));
} catch (error) {
  // Loading the bundle opens its ~60 files at once, beside Node's own ~20 descriptors: under
  // `ulimit -n 31` it fails with EMFILE. Said in one line, as every other failure is.
  const hint = error?.code === 'EMFILE' ? ' (raise the open-file limit: ulimit -n)' : '';
  process.stderr.write(`openclaw: cannot start: ${error?.message ?? error}${hint}\n`);
  process.exit(1);
}
process.exitCode = await main(process.argv.slice(2));
