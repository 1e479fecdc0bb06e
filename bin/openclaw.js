#!/bin/sh
':' //; trap 'openclaw_signal=INT openclaw_status=130' INT; trap 'openclaw_signal=TERM openclaw_status=143' TERM; trap 'openclaw_signal=HUP openclaw_status=129' HUP; command -v "${OPENCLAW_NODE:-node}" >/dev/null 2>&1 || { echo "openclaw: cannot start: ${OPENCLAW_NODE:-node} not found (install Node.js 20 or later, or name its binary in OPENCLAW_NODE)" >&2; exit 127; }; OPENCLAW_STDOUT_CLOSED=; [ -d /dev/fd ] && ! [ -e /dev/fd/1 ] && OPENCLAW_STDOUT_CLOSED=1; openclaw_hangup_ignored=$(while read -r k v; do [ "$k" = SigIgn: ] && { case $v in *[13579bdfBDF]) echo 1;; esac; break; }; done 2>/dev/null </proc/$$/status); openclaw_pool="${UV_THREADPOOL_SIZE:-$(p=64; n=$(ulimit -u 2>/dev/null || ulimit -p 2>/dev/null); case $n in [0-9]*) [ $((n / 4)) -lt $p ] && p=$((n / 4)); [ $p -lt 1 ] && p=1;; esac; m=$(ulimit -v 2>/dev/null); case $m in [0-9]*) [ $(((m - 1200000) / 16384)) -lt $p ] && p=$(((m - 1200000) / 16384)); [ $p -lt 1 ] && p=1;; esac; echo $p)}"; openclaw_semi_space=$(y=4; for a; do case $a in restore) y=2; break;; backup|verify) break;; esac; done; echo $y); openclaw_heap=$(for a; do case $a in backups|prune) echo --heap-growing-percent=20; break;; restore|backup|verify) break;; esac; done); openclaw_v8_pool=$(n=$(ulimit -u 2>/dev/null || ulimit -p 2>/dev/null); case $n in [0-9]*) [ $((n / 16)) -lt 4 ] && { v=$((n / 16)); [ $v -lt 1 ] && v=1; echo "--v8-pool-size=$v"; };; esac); trap - INT TERM HUP; [ -z "$openclaw_signal" ] || { for a; do case $a in --json) printf '{"error":{"code":"ABORTED","message":"interrupted by SIG%s while starting: nothing was done"}}\n' "$openclaw_signal" 2>/dev/null; break;; --) break;; esac; done; echo "openclaw: interrupted by SIG$openclaw_signal while starting: nothing was done" >&2; exit $openclaw_status; }; MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}" MALLOC_MMAP_THRESHOLD_="${MALLOC_MMAP_THRESHOLD_:-8388608}" MALLOC_TRIM_THRESHOLD_="${MALLOC_TRIM_THRESHOLD_:-33554432}" OPENCLAW_STDOUT_CLOSED=$OPENCLAW_STDOUT_CLOSED OPENCLAW_HANGUP_IGNORED=$openclaw_hangup_ignored UV_THREADPOOL_SIZE="$openclaw_pool" exec "${OPENCLAW_NODE:-node}" "--max-semi-space-size=$openclaw_semi_space" $openclaw_heap $openclaw_v8_pool "$0" "$@"
// Entry point installed as `openclaw`: runs the bundled CLI (npm install builds it).
//
// Run as a command, the two lines above are a shell script that starts Node with settings a
// process cannot give itself once running: a 4 MiB young generation (V8's default grows to
// 16 MiB semi-spaces under a backup's allocation rate; 2 MiB for a restore, whose peak is
// what it holds of the tree at the end, not garbage: 4 MiB of young generation and ~5-10 MiB
// of a tiny-file restore's peak less under Node 24 at the same CPU, where 1 MiB doubled a
// large restore's CPU under Node 20: docs/scale.md; the first of the words restore, backup and
// verify names the command, so a tenant or --to named `restore` is still backed up with 4);
// for `tenants backups` and `prune` (the first of those words and the three above), an old
// generation let grow 20% past what the last full collection kept
// (`--heap-growing-percent`; V8's default lets it double or more): a listing keeps ~330 bytes
// a backup but makes garbage of every S3 answer, which V8 otherwise held as RSS (10,000
// objects: 156 -> 109 MiB peak at the same CPU, 100,000: 326 -> 171; docs/scale.md);
// and at most two glibc malloc arenas
// (each libuv thread compressing would otherwise keep its own). Together they take 30-60 MiB
// off a large backup's or restore's peak RSS at the same speed (docs/benchmarks.md). Fixed
// malloc thresholds (8 MiB mmap, 32 MiB trim) keep the ~2 MiB buffers each zstd frame takes
// in malloc's heap, reused, instead of handed back and faulted in again: half the page
// faults of a large backup, ~0.4-0.8 s less CPU, the same peak RSS (docs/benchmarks.md,
// stop 34). Each setting the user made is kept. And 64
// threads in libuv's pool (THREAD_POOL_SIZE in shared/file-access.ts; Node's default is 4),
// so that a backup or restore on a network file system keeps that many calls in flight;
// under a small process limit (`ulimit -u`, which counts threads: dash calls it -p) a quarter
// of it, at least 1, since libuv aborts the process, without a word, when it cannot start
// every thread of its pool. Under a limit below 64 V8's pool (Node's default 4 threads) gets a
// sixteenth of it, at least 1 (`--v8-pool-size`): Node waits for every one of those threads to
// start before any script runs, and one that cannot start left it waiting for ever (a backup
// as a user under `ulimit -u 5` hung; one under 6 to 13 aborted, exit 134: now it runs
// under 10, and under 6 to 9 fails in one line when it starts a thread of its own).
// Each thread of libuv's pool reserves an 8 MiB stack: under `ulimit -v` (KiB) the pool keeps
// 16 MiB of address space per thread above the 1,200,000 KiB Node itself may reserve, at
// least 1 thread (Node 20 needs about 800,000 KiB, Node 24 about 1,400,000, whatever the
// pool: with 64 threads, Node 20 aborted under 1,000,000, exit 134, and Node 24 under
// 1,500,000; with this pool both run there).
// It runs `node` from PATH, or the node binary OPENCLAW_NODE names (a crontab line of `cron
// add` does, cron's PATH holding no node or another one: shared/schedule/crontab.ts); with
// neither, it says so in one line (exit 127, as the shell's own "not found").
// Run as `node bin/openclaw.js`, Node skips the first line and the second is a string and a
// comment (and the pool keeps Node's default, or UV_THREADPOOL_SIZE from the environment).
// Started with hang-ups ignored (`nohup openclaw …`: bit 0 of the SigIgn mask in /proc), it says
// so in OPENCLAW_HANGUP_IGNORED=1, since Node resets that before any script runs
// (shared/hang-up.ts); the CLI then goes on when the terminal hangs up.
// Started with stdout closed (`openclaw tenants list >&-`), Node opens /dev/null in its place
// before any script runs, and the output went nowhere with exit 0: the launcher sees fd 1
// missing from /dev/fd before it opens anything (a `$(…)` would take fd 1 for its pipe) and
// says so in OPENCLAW_STDOUT_CLOSED=1 (cli/main.ts).
// Each value is worked out in a subshell, `$(…)`, so that no variable the user exported is
// changed for the CLI and the commands it runs (--pipe's): its own p, n, h, k, v, a and y were.
// Each goes into an openclaw_… shell variable by a command of its own, under a trap that only
// notes a SIGINT, SIGTERM or SIGHUP: a trap runs between commands, so one that came during the
// `exec` line's own `$(…)` was lost and the command ran anyway. After the last one the traps are
// taken off and a noted signal ends it: "interrupted by SIGINT while starting: nothing was done"
// (and --json's error object), 128 + the signal's number. Same `$(…)` count: no more forks.
// (A POSIX shell is needed to run it as a command: Linux and macOS, not plain Windows.)
//
// A terminal that hung up (the ssh session or the window gone) made Node 20 abort on the way
// out (exit 134, a core file) after a backup that completed or cleaned up: at exit Node puts
// back the settings of each standard descriptor that was a terminal at start and asserts that
// this worked, which a hung-up terminal refuses with EIO (nodejs/node#51519; later Node lines
// ignore the error). Node skips a descriptor that is closed by then, so one that was a
// terminal and is no more (tcgetattr fails) is closed at exit, and the exit code stands.
import { closeSync, lstatSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import nodeModule from 'node:module';
import { constants as osConstants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { isatty } from 'node:tty';

// Ctrl-C (or SIGTERM, SIGHUP) while the bundle loads, before main() has its own handlers
// (~0.3 s of a backup's start): Node's default ended the process with 130 and not a word,
// where a second later the same key said "interrupted by SIGINT". Nothing has been done
// yet, so it says so and exits with the shell's code for the signal (128 + its number), as
// main's handlers do. Under nohup (OPENCLAW_HANGUP_IGNORED) a hang-up changes nothing, as
// in main. These are taken off once main() has installed its own.
const interruptedWhileStarting = (signal) => {
  if (signal === 'SIGHUP' && process.env.OPENCLAW_HANGUP_IGNORED === '1') return;
  const message = `interrupted by ${signal} while starting: nothing was done`;
  const args = process.argv.slice(2);
  const end = args.indexOf('--');
  // With --json, the error object on stdout too, as main gives it.
  if ((end === -1 ? args : args.slice(0, end)).includes('--json')) {
    try {
      writeSync(1, `${JSON.stringify({ error: { code: 'ABORTED', message } })}\n`);
    } catch {
      // no stdout: the line on stderr and the exit code still tell
    }
  }
  try {
    writeSync(2, `openclaw: ${message}\n`);
  } catch {
    // no stderr: the exit code still tells
  }
  process.exit(128 + osConstants.signals[signal]);
};
const startingSignals = ['SIGINT', 'SIGTERM', 'SIGHUP'];
for (const signal of startingSignals) process.on(signal, interruptedWhileStarting);

const terminals = [0, 1, 2].filter((fd) => isatty(fd));
if (terminals.length > 0) {
  process.on('exit', () => {
    for (const fd of terminals) {
      if (isatty(fd)) continue;
      try {
        closeSync(fd);
      } catch {
        // closed already
      }
    }
  });
}
// `--secret-key VALUE` stands in this process's command line, which every user of the
// machine reads in `ps` (/proc/PID/cmdline) for as long as the command runs: on Linux it is
// written over at once with the value masked (as mysql does with -pPASSWORD), which leaves it
// readable only in the few milliseconds until here. OPENCLAW_S3_SECRET_KEY leaves no such
// window. The title goes where the arguments were (libuv); the short name of `ps -C` and
// `pgrep -x`, which the title changes too, is put back.
maskSecretKeyInCommandLine();

function maskSecretKeyInCommandLine() {
  if (process.platform !== 'linux') return;
  let words;
  try {
    // As started (a relative script path stays relative): the title must fit where they were.
    words = readFileSync('/proc/self/cmdline', 'utf8').split('\0').slice(0, -1);
  } catch {
    return; // no procfs
  }
  let masked = false;
  const shown = [];
  for (let at = 0; at < words.length; at++) {
    const word = words[at];
    if (word === '--') {
      shown.push(...words.slice(at));
      break;
    }
    if (word === '--secret-key' && at + 1 < words.length) {
      shown.push(word, '***');
      at += 1;
      masked = true;
    } else if (word.startsWith('--secret-key=')) {
      shown.push('--secret-key=***');
      masked = true;
    } else shown.push(word);
  }
  if (!masked) return;
  try {
    const name = readFileSync('/proc/thread-self/comm', 'utf8').trim();
    process.title = shown.join(' ');
    writeFileSync('/proc/thread-self/comm', name);
  } catch {
    // the title alone, or nothing: the value stays where it was
  }
}

// V8's code cache of the bundle (Node 22+: module.enableCompileCache), in dist/compile-cache/
// beside it (the build makes it empty): compiling the bundle's ~1 MB of JavaScript was ~18 ms
// of every command's ~135 ms of CPU under Node 24, taken from the cache instead
// (docs/benchmarks.md, stop 48). Node fills it on a command's first run, a subdirectory per Node
// version, V8 flags and user id, for the user who owns it: anyone else cannot write there and
// runs without. A cache is code this process runs, so it is used only when the directory,
// every subdirectory and every entry in them are owned by this user or root and writable by no one else (else one
// user's planted cache would run as another, root included). NODE_COMPILE_CACHE (a cache of
// the user's choosing, Node's own) or NODE_DISABLE_COMPILE_CACHE leave it unused. Node 20 has no
// such cache (the bundle is ES modules: vm.Script's cachedData does not apply).
useShippedCompileCache();

function useShippedCompileCache() {
  if (typeof nodeModule.enableCompileCache !== 'function') return;
  if (process.env.NODE_COMPILE_CACHE || process.env.NODE_DISABLE_COMPILE_CACHE) return;
  try {
    const directory = fileURLToPath(new URL('../dist/compile-cache', import.meta.url));
    if (!trustedDirectory(directory)) return;
    for (const name of readdirSync(directory)) {
      const subdirectory = `${directory}/${name}`;
      if (!trustedDirectory(subdirectory)) return;
      // Its entries too: Node reads them, following a link, and one another user may write
      // (a tree copied with its owners and modes kept, a chmod -R) was read as this user's own.
      for (const entry of readdirSync(subdirectory)) {
        if (!trustedEntry(`${subdirectory}/${entry}`)) return;
      }
    }
    // Node makes its subdirectory now, by the umask: one a umask of 002 left group-writable
    // would be refused from the next run on, so it is made the owner's alone.
    const umask = process.umask(0o077);
    try {
      nodeModule.enableCompileCache(directory); // it says how it went, and fails with no more than that (no room, no right to write)
    } finally {
      process.umask(umask);
    }
  } catch {
    // no cache directory (a build before it, a copy without it): compiled as before
  }
}

/** A real directory (not a link to one), owned by this user or root, writable by no one else. */
function trustedDirectory(directory) {
  const stat = lstatSync(directory);
  return stat.isDirectory() && ownedAlone(stat);
}

/** A regular file (not a link, FIFO or device), owned by this user or root, writable by no one else. */
function trustedEntry(file) {
  const stat = lstatSync(file);
  return stat.isFile() && ownedAlone(stat);
}

function ownedAlone(stat) {
  const uid = process.getuid?.();
  return (uid === undefined || stat.uid === uid || stat.uid === 0) && (stat.mode & 0o022) === 0;
}

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
// main() puts its own handlers in place before its first await: only then are these taken
// off (a signal that came while the bundle loaded, not yet dispatched, goes to main's; with
// no listener in between Node would stop watching the signal and drop it, and the command
// ran on as if never interrupted).
const running = main(process.argv.slice(2));
for (const signal of startingSignals) process.off(signal, interruptedWhileStarting);
process.exitCode = await running;
