// Whole-process CPU profile with Linux `perf` (every thread: the JS main thread, libuv's
// pool running zstd and fs calls, V8's GC helpers, and the kernel on their behalf), grouped
// into the buckets that matter for this tool. Complements --cpu-prof, which only sees the
// main JS thread.
//
//   perf record -F 499 -o FILE -- node --perf-basic-prof bin/openclaw.js …
//   node --import tsx bench/perf-summary.ts FILE

import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PerfSummary {
  /** As perf prints it, e.g. "5K". */
  readonly samples: string;
  /** CPU seconds sampled (the cpu-clock event count is in nanoseconds), if perf printed it. */
  readonly cpuSeconds?: number;
  readonly buckets: readonly { bucket: string; share: number }[];
  readonly symbols: readonly { share: number; dso: string; symbol: string }[];
}

const BUCKETS: readonly [string, (dso: string, kernel: boolean, symbol: string) => boolean][] = [
  ['zstd (native addon, pool threads)', (dso) => /zstd/.test(dso)],
  ['SHA-256 (OpenSSL in node)', (_d, _k, symbol) => /sha256/i.test(symbol)],
  ['kernel: scheduling, futex, wake-ups (thread hand-offs)', (_d, kernel, symbol) => kernel && /finish_task_switch|spin_unlock|futex|schedule|wake_up|rseq|exit_to_user_mode|irqentry|syscall_exit|do_syscall|entry_SYSCALL|psi_|update_curr|enqueue|dequeue|select_task/.test(symbol)],
  ['kernel: page cache copies (read/write data)', (_d, kernel, symbol) => kernel && /copy_|_copy_to_iter|folio|filemap|memcpy|memset|clear_page|iov_iter/.test(symbol)],
  ['kernel: lock spinning (rwsem/mutex: e.g. many creates in one directory)', (_d, kernel, symbol) => kernel && /rwsem|mutex_spin|osq_lock|spin_on_owner/.test(symbol)],
  ['kernel: ext4 inode allocation (scans recently deleted inodes)', (_d, kernel, symbol) => kernel && /recently_deleted|find_inode_bit|ext4_get_group_desc|find_get_block|_find_next_zero_bit/.test(symbol)],
  ['kernel: other (file system metadata, page faults, …)', (_d, kernel) => kernel],
  ['V8 garbage collection', (dso, _k, symbol) => /node/.test(dso) && /Heap|Mark|Sweep|Scaveng|Evacuat|Compact|GC|Marking|Remembered|Slot/.test(symbol)],
  ['JavaScript (JIT, builtins, interpreter)', (dso, _k, symbol) => /JIT|perf-\d+\.map/.test(dso) || /^Builtins_|^JS:|Interpreter|^LazyCompile/.test(symbol)],
  ['libc (memcpy, malloc, locks)', (dso) => /libc/.test(dso)],
  ['better-sqlite3', (dso) => /sqlite/.test(dso)],
  ['node / V8 other (bindings, compiler, …)', () => true],
];

export function summarizePerf(file: string, top = 15): PerfSummary {
  const text = execFileSync('perf', ['report', '-i', file, '--sort', 'dso,sym', '--stdio', '--no-children'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    maxBuffer: 64 * 1024 * 1024,
  });
  const samples = /^# Samples: (\S+)/m.exec(text)?.[1] ?? '?';
  const eventCount = /^# Samples: .*cpu-clock[\s\S]*?^# Event count \(approx\.\): (\d+)/m.exec(text)?.[1];
  const totals = new Map<string, number>();
  const symbols: { share: number; dso: string; symbol: string }[] = [];
  for (const line of text.split('\n')) {
    const match = /^\s*([\d.]+)%\s+(.+?)\s+\[([k.])\]\s+(.*)$/.exec(line);
    if (!match) continue;
    const share = Number(match[1]);
    const dso = match[2]!.trim();
    const kernel = match[3] === 'k';
    const symbol = match[4]!.trim();
    symbols.push({ share, dso, symbol });
    const bucket = BUCKETS.find(([, test]) => test(dso, kernel, symbol))![0];
    totals.set(bucket, (totals.get(bucket) ?? 0) + share);
  }
  return {
    samples,
    ...(eventCount !== undefined && { cpuSeconds: Number(eventCount) / 1e9 }),
    buckets: BUCKETS.map(([bucket]) => ({ bucket, share: totals.get(bucket) ?? 0 })).filter((b) => b.share > 0).sort((a, b) => b.share - a.share),
    symbols: symbols.slice(0, top),
  };
}

export function formatPerf(title: string, summary: PerfSummary, cpuSeconds = summary.cpuSeconds): string {
  const seconds = (share: number) => (cpuSeconds === undefined ? '' : ` | ${((share / 100) * cpuSeconds).toFixed(2)} s`);
  const head = cpuSeconds === undefined ? '| bucket | share |\n|---|---:|' : '| bucket | share | ≈ CPU |\n|---|---:|---:|';
  return [
    `##### ${title}: whole process, all threads (perf, ${summary.samples} samples${cpuSeconds === undefined ? '' : `, ${cpuSeconds.toFixed(1)} s CPU`})`,
    '',
    head,
    ...summary.buckets.map((b) => `| ${b.bucket} | ${b.share.toFixed(1)}%${seconds(b.share)} |`),
    '',
    '| top symbols | object | share |',
    '|---|---|---:|',
    ...summary.symbols.map((s) => `| \`${s.symbol.replace(/\|/g, '\\|').slice(0, 90)}\` | ${s.dso} | ${s.share.toFixed(2)}% |`),
    '',
  ].join('\n');
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write('usage: node --import tsx bench/perf-summary.ts perf.data\n');
    process.exit(2);
  }
  process.stdout.write(`${formatPerf(path.basename(file), summarizePerf(file))}\n`);
}
