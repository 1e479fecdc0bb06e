// The restore in pieces at scale (docs/scale.md, "A restore that continues"): the restore
// function's esbuild bundle, each piece a fresh Node process with the function's NODE_OPTIONS
// (as Lambda starts a cold one), restoring a tenant of `--files` small files (and `--large-mib`
// of large ones) from s3rver onto a latencyfs mount (`--delay-ms` a request, EFS's ~5 ms),
// each invocation given `--deadline-s`. The next piece's message goes to a TLS stand-in of
// SQS and is delivered back, as the event source mapping does. Per piece: wall time, time
// until its first real write (the replay: the checkpoint's `writing` mark appears), entries
// written, user+sys CPU, peak RSS. Then the same restore in one piece, and every file's
// SHA-256, mode and links compared with the original.
//
//   node --import tsx bench/restore-pieces.ts --work DIR [--files 100000] [--large-mib 0]
//        [--delay-ms 5] [--deadline-s 60] [--one-piece] [--skip-compare]
//        [--env OPENCLAW_ABORT_MARGIN_MS=3000 --env OPENCLAW_CONTINUE_MARGIN_MS=25000 ...]
//   (Node 24: zstd in node:zlib; the margins scaled down with the invocation)

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { mountLatency } from './latency-mount.js';
import { bundleFunction, startSqsStandIn } from '../test/helpers/function-bundle.js';
import { startS3Server, S3RVER_ACCESS_KEY } from '../test/helpers/s3-server.js';
import { DEFAULT_ABORT_MARGIN_MS } from '../shared/control-plane/function-config.js';

const { values } = parseArgs({ options: { work: { type: 'string' }, files: { type: 'string', default: '100000' }, 'large-mib': { type: 'string', default: '0' }, 'delay-ms': { type: 'string', default: '5' }, 'deadline-s': { type: 'string', default: '60' }, 'one-piece': { type: 'boolean', default: false }, 'skip-compare': { type: 'boolean', default: false }, env: { type: 'string', multiple: true, default: [] } } });
const work = path.resolve(values.work!);
const files = Number(values.files);
const largeMiB = Number(values['large-mib']);
const deadlineMs = Number(values['deadline-s']) * 1000;
const root = path.resolve(import.meta.dirname, '..');
const NODE_OPTIONS = '--enable-source-maps --max-semi-space-size=2'; // infra/backup-functions.ts RESTORE_NODE_OPTIONS

function log(line: string): void {
  process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
}

/** The tenant: `files` files of 1-4 KiB, 100 to a directory, and `largeMiB` in 256 MiB files. */
function generate(dir: string): void {
  if (existsSync(path.join(dir, '.done'))) return;
  rmSync(dir, { recursive: true, force: true });
  let seed = 1;
  const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let i = 0; i < files; i++) {
    const sub = path.join(dir, 'd' + Math.floor(i / 10000), 's' + Math.floor(i / 100));
    if (i % 100 === 0) mkdirSync(sub, { recursive: true });
    const size = 1024 + Math.floor(random() * 3072);
    const body = Buffer.alloc(size, `${i}-${size}-`);
    writeFileSync(path.join(sub, `f${i}.txt`), body, { mode: i % 7 === 0 ? 0o600 : 0o644 });
  }
  mkdirSync(path.join(dir, '0large'), { recursive: true });
  for (let left = largeMiB, n = 0; left > 0; left -= 256, n++) {
    spawnSync('bash', ['-c', `head -c ${Math.min(256, left)}M /dev/urandom > ${path.join(dir, '0large', `blob${n}`)}`]);
  }
  writeFileSync(path.join(dir, '.done'), '');
}

function describe(dir: string): Map<string, string> {
  const out = spawnSync('bash', ['-c', `cd ${dir} && find . -path ./.done -prune -o -printf '%P %y %m %n %l\\n' | sort && find . -type f ! -name .done -print0 | sort -z | xargs -0 sha256sum`], { encoding: 'utf8', maxBuffer: 1 << 30 });
  return new Map(out.stdout.split('\n').map((line) => [line, line]));
}

const source = path.join(work, 'source');
const tenants = path.join(work, 'tenants'); // the volume's bytes; the function sees it through the mount
const mountpoint = path.join(work, 'mnt');
mkdirSync(tenants, { recursive: true });
log(`generating ${files} files + ${largeMiB} MiB`);
generate(path.join(source, 'acme'));

const bundleDir = path.join(work, 'bundle');
for (const name of ['backup', 'restore']) await bundleFunction(name, path.join(bundleDir, name));
// One invocation in a fresh process: the event from argv[3], the deadline argv[4] ms from now.
writeFileSync(path.join(bundleDir, 'invoke.mjs'), `
const started = Date.now();
const deadline = started + Number(process.argv[4]);
const { handler } = await import(process.argv[2]);
const context = { awsRequestId: 'req', functionName: 'openclaw-backup-restore', functionVersion: '$LATEST', invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:openclaw-backup-restore', memoryLimitInMB: '2048', getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()) };
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = () => true; console.warn = () => {};
const answer = await handler(JSON.parse(process.argv[3]), context);
const usage = process.resourceUsage();
const hwm = /VmHWM:\\s+(\\d+)/.exec(require('node:fs').readFileSync('/proc/self/status', 'utf8'))[1];
write('RESULT ' + JSON.stringify({ answer, wallMs: Date.now() - started, cpuMs: (usage.userCPUTime + usage.systemCPUTime) / 1000, rssMiB: Math.round(Number(hwm) / 1024) }) + '\\n');
process.exit(0);
`.replace("require('node:fs')", "(await import('node:fs'))"));

const s3 = await startS3Server({ bucket: 'backups', directory: path.join(work, 's3rver') });
const sqs = await startSqsStandIn(path.join(work, 'certs'));
const env = {
  ...process.env,
  NODE_OPTIONS,
  OPENCLAW_BACKUP_BUCKET: 'backups',
  OPENCLAW_STACK_PREFIX: 'openclaw-backup',
  OPENCLAW_CPUS: '1',
  OPENCLAW_RESTORE_QUEUE_URL: sqs.queueUrl,
  POWERTOOLS_SERVICE_NAME: 'openclaw-backup',
  AWS_ACCESS_KEY_ID: S3RVER_ACCESS_KEY,
  AWS_SECRET_ACCESS_KEY: 'role-secret',
  AWS_REGION: 'us-east-1',
  AWS_ENDPOINT_URL_S3: s3.endpoint,
  NODE_TLS_REJECT_UNAUTHORIZED: '0',
  ...Object.fromEntries(values.env!.map((pair) => pair.split('=', 2) as [string, string])),
};

interface Result { answer: Record<string, unknown>; wallMs: number; cpuMs: number; rssMiB: number; firstWriteMs?: number }
function invoke(name: string, base: string, event: unknown, ms: number): Promise<Result> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [path.join(bundleDir, 'invoke.mjs'), path.join(bundleDir, name, 'index.mjs'), JSON.stringify(event), String(ms)], { env: { ...env, OPENCLAW_TENANTS_DIR: base }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let firstWriteMs: number | undefined;
    const checkpoint = path.join(tenants, '.openclaw-restore-continuation-acme-copy');
    const poll = setInterval(() => {
      if (firstWriteMs !== undefined) return;
      try {
        if (readFileSync(checkpoint, 'utf8').includes('"writing":true')) firstWriteMs = Date.now() - started;
      } catch {}
    }, 20);
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('close', (code) => {
      clearInterval(poll);
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (line === undefined) return reject(new Error(`${name} exited ${code}: ${out.slice(-2000)}`));
      resolve({ ...(JSON.parse(line.slice(7)) as Result), ...(firstWriteMs !== undefined && { firstWriteMs }) });
    });
  });
}

const key = `s3://backups/scale/acme-${files}-${largeMiB}.tar.zst`;
const backup = await invoke('backup', source, { tenant: 'acme', to: key }, 3_600_000);
log(`backup: ${JSON.stringify(backup.answer).slice(0, 300)} ${backup.wallMs} ms`);
const mount = await mountLatency(tenants, mountpoint, { delayMs: Number(values['delay-ms']), statsFile: path.join(work, 'latency-stats.json') });
try {
  rmSync(path.join(tenants, 'acme-copy'), { recursive: true, force: true });
  const started = Date.now();
  let result = await invoke('restore', mountpoint, { from: key, as: 'acme-copy' }, values['one-piece'] ? 3_600_000 : deadlineMs);
  let pieces = 1;
  let written = 0;
  for (;;) {
    const c = existsSync(path.join(tenants, '.openclaw-restore-continuation-acme-copy')) ? JSON.parse(readFileSync(path.join(tenants, '.openclaw-restore-continuation-acme-copy'), 'utf8').slice(6)) as { written: number } : undefined;
    const now = c?.written ?? written;
    log(`piece ${pieces}: wall ${result.wallMs} ms, replay (to first write) ${result.firstWriteMs ?? '-'} ms, written ${now - written} (total ${now}), cpu ${Math.round(result.cpuMs)} ms, rss ${result.rssMiB} MiB, answer ${JSON.stringify(result.answer).slice(0, 240)}`);
    written = now;
    const body = sqs.sent.shift();
    if (body === undefined) break;
    pieces++;
    if (pieces > 200) throw new Error('the chain does not end');
    result = await invoke('restore', mountpoint, { Records: [{ messageId: `m-${pieces}`, body, eventSource: 'aws:sqs' }] }, deadlineMs);
  }
  log(`restore: ${pieces} pieces, ${Date.now() - started} ms in all; abort margin ${DEFAULT_ABORT_MARGIN_MS} ms`);
  if (!values['skip-compare']) {
    const want = describe(path.join(source, 'acme'));
    const got = describe(path.join(tenants, 'acme-copy'));
    const missing = [...want.keys()].filter((k) => !got.has(k));
    const extra = [...got.keys()].filter((k) => !want.has(k));
    log(`compare: ${want.size} lines, ${missing.length} missing, ${extra.length} extra ${missing.slice(0, 3).join(' | ')} ${extra.slice(0, 3).join(' | ')}`);
  }
  log(`leftovers in the base dir: ${readdirSync(tenants).filter((n) => n.startsWith('.openclaw-')).join(', ') || 'none'}`);
} finally {
  await mount.unmount();
  await s3.dispose();
  await sqs.close();
}
