// Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time by function and by
// where the code lives (our modules, each npm package, Node internals, GC, idle).
//
//   node --import tsx bench/profile-summary.ts FILE.cpuprofile [--top N]
//
// --cpu-prof samples the main JavaScript thread only: time spent in libuv's thread pool
// (zstd, SHA-256 of large buffers is on the main thread though, fs calls) shows up as
// "(idle)" on the main thread, or as the native function that waited for it.

import { existsSync, readFileSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number; readonly columnNumber: number };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileSummary {
  readonly totalMs: number;
  readonly idleMs: number;
  readonly gcMs: number;
  readonly busyMs: number;
  readonly functions: readonly { name: string; where: string; selfMs: number }[];
  readonly areas: readonly { area: string; selfMs: number }[];
}

/** Where a function lives, coarsely: "ours: extract.js", "npm: streamx", "node: internal/fs", "(gc)". */
export function areaOf(url: string, functionName: string): string {
  if (url === '') {
    if (functionName === '(garbage collector)') return '(gc)';
    if (functionName === '(idle)') return '(idle)';
    if (functionName === '(program)') return '(program: native, outside JS)';
    return `native: ${functionName || '(anonymous)'}`;
  }
  const npm = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (npm) return `npm: ${npm[1]}`;
  if (url.startsWith('node:')) {
    const internal = url.slice(5).replace(/^internal\//, '');
    return `node: ${internal.split('/').slice(0, 2).join('/')}`;
  }
  const ours = /\/(dist|shared|cli|bin)\/(.+)$/.exec(url);
  if (ours) return `ours: ${ours[2]}`;
  return url;
}

const sourceMaps = new Map<string, SourceMap | undefined>();

/**
 * Where a frame of bundled code (dist/bundle/, built with linked source maps) came from:
 * the original module and line, so areas read "ours: shared/restore/extract.ts" rather than a chunk.
 */
export function originalFrame(url: string, lineNumber: number, columnNumber: number): { url: string; lineNumber: number } {
  if (!url.startsWith('file://') || !url.includes('/dist/bundle/')) return { url, lineNumber };
  const file = fileURLToPath(url);
  if (!sourceMaps.has(file)) {
    const mapFile = `${file}.map`;
    sourceMaps.set(file, existsSync(mapFile) ? new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8')) as SourceMapPayload) : undefined);
  }
  const entry = sourceMaps.get(file)?.findEntry(lineNumber, columnNumber);
  if (entry === undefined || !('originalSource' in entry) || entry.originalSource === undefined) return { url, lineNumber };
  const source = entry.originalSource.startsWith('file://') ? entry.originalSource : pathToFileURL(path.resolve(path.dirname(file), entry.originalSource)).href;
  return { url: source, lineNumber: entry.originalLine };
}

export function summarizeProfile(file: string, top = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfById = new Map<number, number>();
  // timeDeltas[i] is the time since the previous sample; charge it to sample i's node.
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfById.set(id, (selfById.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const functions = new Map<string, { name: string; where: string; selfMs: number }>();
  const areas = new Map<string, number>();
  let idle = 0;
  let gc = 0;
  let total = 0;
  for (const [id, micros] of selfById) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const { functionName } = node.callFrame;
    const { url, lineNumber } = originalFrame(node.callFrame.url, node.callFrame.lineNumber, node.callFrame.columnNumber);
    const ms = micros / 1000;
    total += ms;
    if (functionName === '(idle)') idle += ms;
    if (functionName === '(garbage collector)') gc += ms;
    const area = areaOf(url, functionName);
    areas.set(area, (areas.get(area) ?? 0) + ms);
    const where = url === '' ? '' : `${shorten(url)}:${lineNumber + 1}`;
    const key = `${functionName}@${where}`;
    const entry = functions.get(key) ?? { name: functionName || '(anonymous)', where, selfMs: 0 };
    entry.selfMs += ms;
    functions.set(key, entry);
  }
  return {
    totalMs: total,
    idleMs: idle,
    gcMs: gc,
    busyMs: total - idle,
    functions: [...functions.values()].sort((a, b) => b.selfMs - a.selfMs).slice(0, top),
    areas: [...areas].map(([area, selfMs]) => ({ area, selfMs })).sort((a, b) => b.selfMs - a.selfMs),
  };
}

function shorten(url: string): string {
  const npm = /node_modules\/(.+)$/.exec(url);
  if (npm) return npm[1]!;
  const ours = /\/(dist\/.+|shared\/.+|cli\/.+|bin\/.+)$/.exec(url);
  if (ours) return ours[1]!;
  return url.replace(/^file:\/\//, '');
}

export function formatSummary(title: string, summary: ProfileSummary, areasShown = 14): string {
  const pct = (ms: number) => `${((100 * ms) / summary.totalMs).toFixed(1)}%`;
  const lines = [
    `#### ${title}`,
    '',
    `Main thread: ${(summary.totalMs / 1000).toFixed(2)} s sampled, ${pct(summary.busyMs)} busy ` +
      `(${(summary.busyMs / 1000).toFixed(2)} s), ${pct(summary.idleMs)} idle, GC ${pct(summary.gcMs)}.`,
    '',
    '| self time by area | ms | share |',
    '|---|---:|---:|',
    ...summary.areas.slice(0, areasShown).map((a) => `| ${a.area} | ${a.selfMs.toFixed(0)} | ${pct(a.selfMs)} |`),
    '',
    '| top functions (self time) | where | ms | share |',
    '|---|---|---:|---:|',
    ...summary.functions.map((f) => `| \`${f.name}\` | ${f.where} | ${f.selfMs.toFixed(0)} | ${pct(f.selfMs)} |`),
    '',
  ];
  return lines.join('\n');
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const topAt = args.indexOf('--top');
  const top = topAt >= 0 ? Number(args[topAt + 1]) : 25;
  const files = args.filter((arg, i) => arg !== '--top' && (topAt < 0 || i !== topAt + 1));
  if (files.length === 0) {
    process.stderr.write('usage: node --import tsx bench/profile-summary.ts FILE.cpuprofile… [--top N]\n');
    process.exit(2);
  }
  for (const file of files) process.stdout.write(`${formatSummary(path.basename(file), summarizeProfile(file, top))}\n`);
}
