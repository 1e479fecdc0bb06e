// Throughput of the built-in age encryption (shared/age) against the `age` CLI, and what it
// adds to a large backup and restore. Not a test (no pass/fail): it prints numbers.
//
//   npm run build && node --import tsx bench/age-bench.ts [--size-mib 512] [--runs 3] [--no-stream] [--no-backup] [--work DIR]
//
// 1. Stream throughput: a file of random bytes (compressed archives look random) encrypted
//    and decrypted by our Transforms (in this process) and by `age -r` / `age -d -i`, output
//    to /dev/null; the same read through a stream pipeline without crypto is the I/O floor.
//    Each output is cross-checked (age decrypts ours, we decrypt age's). Also the CPU-only
//    rate of the encryptor over an in-memory buffer, and that of the npm package
//    `age-encryption` when it is installed (`npm install --no-save age-encryption`).
// 2. Backup and restore of the bench's `large` tree (bench/generate.ts, ~600 MiB, generated
//    once under --work), to a local file, plain and encrypted (built-in encryption: backup's
//    `recipients`, restore's `identities`, as `--encrypt-to` / `--identity` run them). Each
//    run is a child process on the compiled code in dist/, with the CLI launcher's memory
//    settings (bin/openclaw.js), so peak RSS is per run and comparable to the CLI's. Runs alternate plain/encrypted; medians are reported, with ratios.

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

import {
  AgeDecryptor,
  AgeEncryptor,
  createAgeDecryptStream,
  createAgeEncryptStream,
  formatIdentity,
  generateIdentity,
  parseIdentity,
  parseRecipient,
  type AgeIdentity,
  type AgeRecipient,
} from '../shared/age/index.js';

const MiB = 1024 * 1024;
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Options {
  stream: boolean;
  sizeMiB: number;
  runs: number;
  backup: boolean;
  workDir: string;
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = { stream: true, sizeMiB: 512, runs: 3, backup: true, workDir: path.join(REPO, 'bench', 'work') };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => argv[++i] ?? '';
    if (flag === '--size-mib') options.sizeMiB = Number(value());
    else if (flag === '--runs') options.runs = Number(value());
    else if (flag === '--no-backup') options.backup = false;
    else if (flag === '--no-stream') options.stream = false;
    else if (flag === '--work') options.workDir = path.resolve(value());
    else throw new Error(`unknown option ${flag}`);
  }
  return options;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Node's file streams read 64 KiB at a time by default; 1 MiB reads cost less per byte. */
const READ_OPTIONS = { highWaterMark: 1 * MiB } as const;

const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

/** Runs a command under GNU time; wall time measured here, peak RSS from time. */
function timedCommand(file: string, args: readonly string[]): Promise<{ ms: number; rssMiB: number; stdout: string }> {
  const timeFile = path.join(os.tmpdir(), `age-bench-time-${process.pid}-${Math.random().toString(36).slice(2)}`);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn('/usr/bin/time', ['-f', '%M', '-o', timeFile, file, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - started;
      let rssKiB = NaN;
      try {
        const lines = readFileSync(timeFile, 'utf8').trim().split('\n');
        rssKiB = Number(lines[lines.length - 1]);
      } finally {
        rmSync(timeFile, { force: true });
      }
      if (code !== 0) reject(new Error(`${file} ${args.join(' ')} exited with ${code}`));
      else resolve({ ms, rssMiB: rssKiB / 1024, stdout });
    });
  });
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipelineAsync(createReadStream(file), hash);
  return hash.digest('hex');
}

function writeRandomFile(file: string, bytes: number): void {
  const fd = openSync(file, 'w');
  try {
    for (let written = 0; written < bytes; written += 16 * MiB) writeSync(fd, randomBytes(Math.min(16 * MiB, bytes - written)));
  } finally {
    closeSync(fd);
  }
}

async function timedInProcess(work: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

/**
 * The encryptor and decryptor alone, over a buffer fed in 1 MiB pieces, output dropped as it
 * comes (as a stream consumer would): the best of three rounds, so first-touch page faults
 * of fresh memory are not counted.
 */
function cpuOnlyRate(recipients: readonly AgeRecipient[], identities: readonly AgeIdentity[], bytes: number): { encrypt: number; decrypt: number } {
  const input = randomBytes(bytes);
  const pieceBytes = 1 * MiB;
  const sealedPieces: Uint8Array[] = [];
  const sealer = new AgeEncryptor(recipients);
  for (let at = 0; at < input.length; at += pieceBytes) sealer.write(input.subarray(at, at + pieceBytes), sealedPieces);
  sealer.end(sealedPieces);
  const file = Buffer.concat(sealedPieces);
  sealedPieces.length = 0;
  let encryptMs = Infinity;
  let decryptMs = Infinity;
  for (let round = 0; round < 3; round++) {
    const out: Uint8Array[] = [];
    let started = performance.now();
    const encryptor = new AgeEncryptor(recipients);
    for (let at = 0; at < input.length; at += pieceBytes) {
      encryptor.write(input.subarray(at, at + pieceBytes), out);
      out.length = 0;
    }
    encryptor.end(out);
    out.length = 0;
    encryptMs = Math.min(encryptMs, performance.now() - started);
    started = performance.now();
    const decryptor = new AgeDecryptor(identities);
    let total = 0;
    for (let at = 0; at < file.length; at += pieceBytes) {
      decryptor.write(file.subarray(at, at + pieceBytes), out);
      for (const piece of out) total += piece.length;
      out.length = 0;
    }
    decryptor.end(out);
    for (const piece of out) total += piece.length;
    decryptMs = Math.min(decryptMs, performance.now() - started);
    if (total !== bytes) throw new Error('cpu-only round trip lost bytes');
  }
  return { encrypt: mbps(bytes, encryptMs), decrypt: mbps(bytes, decryptMs) };
}

/** The part of the npm package `age-encryption` (0.3) used here. */
interface ReferencePackage {
  generateIdentity(): Promise<string>;
  identityToRecipient(identity: string): Promise<string>;
  Encrypter: new () => { addRecipient(recipient: string): void; encrypt(data: Uint8Array): Promise<Uint8Array> };
  Decrypter: new () => { addIdentity(identity: string): void; decrypt(data: Uint8Array): Promise<Uint8Array> };
}

/** The npm package `age-encryption`, when installed: its web-stream API over a buffer. */
async function referencePackageRate(bytes: number): Promise<{ encrypt: number; decrypt: number } | string> {
  let age: ReferencePackage;
  try {
    const name = 'age-encryption'; // not a dependency: installed by hand to compare
    age = (await import(name)) as ReferencePackage;
  } catch {
    return 'not installed (npm install --no-save age-encryption to compare)';
  }
  const identity = await age.generateIdentity();
  const recipient = await age.identityToRecipient(identity);
  const input = randomBytes(bytes);
  const encrypter = new age.Encrypter();
  encrypter.addRecipient(recipient);
  let started = performance.now();
  const sealed = await encrypter.encrypt(input);
  const encryptMs = performance.now() - started;
  const decrypter = new age.Decrypter();
  decrypter.addIdentity(identity);
  started = performance.now();
  const opened = await decrypter.decrypt(sealed);
  const decryptMs = performance.now() - started;
  if (opened.length !== bytes) throw new Error('age-encryption round trip lost bytes');
  return { encrypt: mbps(bytes, encryptMs), decrypt: mbps(bytes, decryptMs) };
}

async function streamSection(options: Options, tmp: string): Promise<void> {
  const bytes = options.sizeMiB * MiB;
  const identity = generateIdentity();
  const recipient = identity.recipient;
  const keyFile = path.join(tmp, 'key.txt');
  writeFileSync(keyFile, `${formatIdentity(identity)}\n`, { mode: 0o600 });
  const plain = path.join(tmp, 'plain.bin');
  console.log(`writing ${options.sizeMiB} MiB of random bytes …`);
  writeRandomFile(plain, bytes);
  const plainDigest = await sha256File(plain);
  const outputs = { ours: path.join(tmp, 'ours.age'), cli: path.join(tmp, 'cli.age'), copy: path.join(tmp, 'copy.bin'), back: path.join(tmp, 'back.bin') };

  // Cross-check once, file to file: age opens ours, we open age's.
  await pipelineAsync(createReadStream(plain, READ_OPTIONS), createAgeEncryptStream([recipient]), createWriteStream(outputs.ours));
  await timedCommand('age', ['-r', recipient.text, '-o', outputs.cli, plain]);
  await timedCommand('age', ['-d', '-i', keyFile, '-o', outputs.copy, outputs.ours]);
  await pipelineAsync(createReadStream(outputs.cli, READ_OPTIONS), createAgeDecryptStream([identity]), createWriteStream(outputs.back));
  if ((await sha256File(outputs.copy)) !== plainDigest) throw new Error('age -d of our file differs from the plaintext');
  if ((await sha256File(outputs.back)) !== plainDigest) throw new Error('our decryption of the age CLI file differs from the plaintext');
  console.log('cross-check: age -d opens our file, we open age -r output: both equal the plaintext');
  rmSync(outputs.copy);
  rmSync(outputs.back);

  // Timed runs write to /dev/null: writing 512 MiB files makes the page cache's writeback
  // land on whichever contender runs next, which swamped the differences measured here.
  const rows = new Map<string, number[]>();
  const add = (name: string, ms: number) => rows.set(name, [...(rows.get(name) ?? []), ms]);
  const sink = () => createWriteStream('/dev/null');
  for (let run = 0; run < options.runs + 1; run++) {
    const record = run > 0; // the first round warms the page cache and the JIT
    const copyMs = await timedInProcess(() => pipelineAsync(createReadStream(plain, READ_OPTIONS), sink()));
    const oursEncMs = await timedInProcess(() => pipelineAsync(createReadStream(plain, READ_OPTIONS), createAgeEncryptStream([recipient]), sink()));
    const cliEnc = await timedCommand('age', ['-r', recipient.text, '-o', '/dev/null', plain]);
    const oursDecMs = await timedInProcess(() => pipelineAsync(createReadStream(outputs.cli, READ_OPTIONS), createAgeDecryptStream([identity]), sink()));
    const cliDec = await timedCommand('age', ['-d', '-i', keyFile, '-o', '/dev/null', outputs.ours]);
    if (record) {
      add('read through a stream pipeline, no crypto (I/O floor)', copyMs);
      add('encrypt: ours (createAgeEncryptStream)', oursEncMs);
      add('encrypt: age -r', cliEnc.ms);
      add('decrypt: ours (createAgeDecryptStream)', oursDecMs);
      add('decrypt: age -d', cliDec.ms);
    }
  }
  console.log(`\n## Stream throughput, ${options.sizeMiB} MiB from a file (in the page cache) to /dev/null (median of ${options.runs})\n`);
  console.log('| contender | median | MB/s |');
  console.log('|---|---:|---:|');
  const medians = new Map<string, number>();
  for (const [name, values] of rows) {
    medians.set(name, median(values));
    console.log(`| ${name} | ${(median(values) / 1000).toFixed(3)} s | ${mbps(bytes, median(values)).toFixed(0)} |`);
  }
  const ratio = (a: string, b: string) => (medians.get(a)! / medians.get(b)!).toFixed(2);
  console.log(`\nours/age wall time: encrypt ${ratio('encrypt: ours (createAgeEncryptStream)', 'encrypt: age -r')}×, decrypt ${ratio('decrypt: ours (createAgeDecryptStream)', 'decrypt: age -d')}×`);
  const floor = medians.get('read through a stream pipeline, no crypto (I/O floor)')!;
  const marginal = (name: string) => {
    const extra = medians.get(name)! - floor;
    return extra <= 0 ? 'no slower than the copy (noise)' : `${mbps(bytes, extra).toFixed(0)} MB/s (+${((extra / floor) * 100).toFixed(0)} %)`;
  };
  console.log(
    `over the copy floor (what encryption itself costs in a Node pipeline): encrypt ${marginal('encrypt: ours (createAgeEncryptStream)')}, decrypt ${marginal('decrypt: ours (createAgeDecryptStream)')}`,
  );

  const cpuBytes = Math.min(bytes, 128 * MiB);
  const cpu = cpuOnlyRate([recipient], [identity], cpuBytes);
  console.log(`CPU only (in memory, ${cpuBytes / MiB} MiB in 1 MiB pieces, best of 3): encrypt ${cpu.encrypt.toFixed(0)} MB/s, decrypt ${cpu.decrypt.toFixed(0)} MB/s`);
  const reference = await referencePackageRate(64 * MiB);
  console.log(
    typeof reference === 'string'
      ? `npm age-encryption: ${reference}`
      : `npm age-encryption (pure JS, in memory, 64 MiB): encrypt ${reference.encrypt.toFixed(0)} MB/s, decrypt ${reference.decrypt.toFixed(0)} MB/s`,
  );
  for (const file of [plain, ...Object.values(outputs)]) rmSync(file, { force: true });
}

// ---- backup and restore of the large tree, one child process per run ----

/**
 * One backup or restore, run by a child `node` on the compiled code in dist/ (as the CLI
 * runs; `npm run build` first): under tsx the restore's worker threads, whose code is
 * eval'd, break. With a key, the backup is encrypted to its recipient and the restore
 * decrypts with it, through the core's own wiring.
 */
const CHILD_SOURCE = `
const [dist, mode, tenantsDir, tenant, archive, keyText] = process.argv.slice(2);
const { backupTenant } = await import(dist + '/shared/backup/backup.js');
const { restoreTenant } = await import(dist + '/shared/restore/restore.js');
const { LocalFileLocation } = await import(dist + '/shared/storage/local.js');
const age = await import(dist + '/shared/age/index.js');
const location = new LocalFileLocation(archive);
const identity = keyText === '-' ? undefined : age.parseIdentity(keyText);
const started = performance.now();
let archiveBytes = 0;
if (mode === 'backup') archiveBytes = (await backupTenant({ tenantsDir, tenant, location, overwrite: true, ...(identity && { recipients: [identity.recipient] }) })).archiveBytes;
else await restoreTenant({ tenantsDir, location, as: tenant, ...(identity && { identities: [identity] }) });
const usage = process.resourceUsage();
process.stdout.write(JSON.stringify({ ms: performance.now() - started, cpuMs: (usage.userCPUTime + usage.systemCPUTime) / 1000, rssMiB: usage.maxRSS / 1024, archiveBytes }) + '\\n');
`;

interface ChildResult {
  ms: number;
  /** User + system CPU of the whole child (every thread), start-up included. */
  cpuMs: number;
  rssMiB: number;
  archiveBytes: number;
}

/** Runs CHILD_SOURCE from a file (not `-e`: worker threads inherit `--input-type`). */
function runChild(tmp: string, args: readonly string[]): Promise<ChildResult> {
  const script = path.join(tmp, 'child.mjs');
  writeFileSync(script, CHILD_SOURCE);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--max-semi-space-size=4', script, path.join(REPO, 'dist'), ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
      cwd: REPO,
      env: { ...process.env, MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2' },
    });
    let stdout = '';
    child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(stdout.trim().split('\n').pop()!) as ChildResult) : reject(new Error(`child ${args[0]} exited ${code}`))));
  });
}

async function backupSection(options: Options, tmp: string): Promise<void> {
  const { ensureTree } = await import('./generate.js');
  const tree = ensureTree(options.workDir, 'large', (line) => console.log(line));
  const identity = generateIdentity();
  const keyText = formatIdentity(identity);
  const plainArchive = path.join(tmp, 'large.tar.zst');
  const sealedArchive = path.join(tmp, 'large.tar.zst.age');
  const restoreDir = path.join(tmp, 'restore');
  mkdirSync(restoreDir, { recursive: true });
  const results: Record<string, ChildResult[]> = { 'backup plain': [], 'backup encrypted': [], 'restore plain': [], 'restore encrypted': [] };
  for (let run = 0; run < options.runs + 1; run++) {
    const order = run % 2 === 0 ? ['plain', 'encrypted'] : ['encrypted', 'plain'];
    for (const variant of order) {
      const archive = variant === 'plain' ? plainArchive : sealedArchive;
      const key = variant === 'plain' ? '-' : keyText;
      const backup = await runChild(tmp, ['backup', tree.tenantsDir, tree.tenant, archive, key]);
      rmSync(restoreDir, { recursive: true, force: true });
      mkdirSync(restoreDir);
      const restore = await runChild(tmp, ['restore', restoreDir, 'restored', archive, key]);
      if (run > 0) {
        results[`backup ${variant}`]!.push(backup);
        results[`restore ${variant}`]!.push(restore);
      }
    }
  }
  rmSync(restoreDir, { recursive: true, force: true });
  // The encrypted archive is a standard age file holding a standard tar.zst.
  const keyPath = path.join(tmp, 'large-key.txt');
  writeFileSync(keyPath, `${keyText}\n`, { mode: 0o600 });
  await timedCommand('bash', ['-o', 'pipefail', '-c', `age -d -i '${keyPath}' '${sealedArchive}' | zstd -q -t`]);
  console.log('cross-check: age -d | zstd -t accepts the encrypted archive');

  const archiveMiB = median(results['backup plain']!.map((r) => r.archiveBytes)) / MiB;
  console.log(`\n## Large tree (${(tree.stamp.backedUpBytes / MiB).toFixed(0)} MiB, ${tree.stamp.backedUpFiles} files; archive ${archiveMiB.toFixed(1)} MiB), median of ${options.runs}\n`);
  // Each round runs both variants back to back: the median of the rounds' ratios is less
  // swayed by other load on the machine than the ratio of the medians.
  console.log('| run | plain | encrypted | encrypted/plain (median of pairs) | CPU plain | CPU encrypted | peak RSS plain | peak RSS encrypted |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const operation of ['backup', 'restore']) {
    const plain = results[`${operation} plain`]!;
    const sealed = results[`${operation} encrypted`]!;
    const plainMs = median(plain.map((r) => r.ms));
    const sealedMs = median(sealed.map((r) => r.ms));
    const pairRatio = median(sealed.map((r, i) => r.ms / plain[i]!.ms));
    console.log(
      `| ${operation} | ${(plainMs / 1000).toFixed(2)} s | ${(sealedMs / 1000).toFixed(2)} s | ${pairRatio.toFixed(3)}× | ${(median(plain.map((r) => r.cpuMs)) / 1000).toFixed(2)} s | ${(median(sealed.map((r) => r.cpuMs)) / 1000).toFixed(2)} s | ${median(plain.map((r) => r.rssMiB)).toFixed(0)} MiB | ${median(sealed.map((r) => r.rssMiB)).toFixed(0)} MiB |`,
    );
  }
  console.log('\nper run (s), plain / encrypted:');
  for (const operation of ['backup', 'restore']) {
    console.log(`  ${operation}: ${results[`${operation} plain`]!.map((r) => (r.ms / 1000).toFixed(2)).join(' ')} / ${results[`${operation} encrypted`]!.map((r) => (r.ms / 1000).toFixed(2)).join(' ')}`);
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const options = parseOptions(argv);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'age-bench-'));
  try {
    console.log(`# age bench: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), node ${process.version}, load ${os.loadavg()[0]!.toFixed(1)}`);
    if (options.stream) await streamSection(options, tmp);
    if (options.backup) await backupSection(options, tmp);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
