// How fast one invocation backs up, and what continuing in another costs (docs/scale.md,
// "A tenant larger than one invocation"). The backup path without the network: a tenant of
// bench/generate.ts archived (walk, read, hash, tar, zstd) into a counting sink, with the CPU
// budget of the backup function's memory (OPENCLAW_CPUS; 2,048 MiB buys one vCPU). Then the
// same tenant in pieces of `--piece-ms`: each piece stops, its state goes through
// continuation.ts's file (saved, fsync'ed, loaded) and the next resumes; the overhead is the
// difference per piece, and the save + load time on its own.
//
//   npx tsx bench/continuation.ts [--tree large] [--cpus 1] [--piece-ms 2000] [--work bench/work]

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { limitCpuBudget } from '../shared/cpu-budget.js';
import { loadContinuation, saveContinuation } from '../shared/backup/continuation.js';
import { createTenantArchive, type SuspendedArchive } from '../shared/backup/tenant-archive.js';
import { countTree, treeRoot, type TreeSize } from './generate.js';

const { values } = parseArgs({ options: { tree: { type: 'string', default: 'large' }, cpus: { type: 'string', default: '1' }, 'piece-ms': { type: 'string', default: '2000' }, work: { type: 'string', default: 'bench/work' } } });
limitCpuBudget(Number(values.cpus));
const tenantDir = treeRoot(values.work!, values.tree as TreeSize);
const { bytes, files } = countTree(tenantDir);
const createdAt = new Date('2026-06-03T03:00:00Z');
const MiB = 1024 * 1024;

async function drain(chunks: AsyncIterable<Buffer>): Promise<number> {
  let total = 0;
  for await (const chunk of chunks) total += chunk.length;
  return total;
}

await drain(createTenantArchive({ tenantDir, tenant: 'bench', createdAt }).chunks); // warm: page cache, JIT, threads
const oneStart = performance.now();
const archiveBytes = await drain(createTenantArchive({ tenantDir, tenant: 'bench', createdAt }).chunks);
const oneMs = performance.now() - oneStart;

const stateDir = mkdtempSync(path.join(os.tmpdir(), 'openclaw-continuation-bench-'));
let pieces = 0;
let saveLoadMs = 0;
let piecesBytes = 0;
const piecesStart = performance.now();
try {
  let resume: SuspendedArchive | undefined;
  for (;;) {
    pieces++;
    const deadline = performance.now() + Number(values['piece-ms']);
    const archive = createTenantArchive({ tenantDir, tenant: 'bench', createdAt, stopWhen: () => performance.now() > deadline, ...(resume !== undefined && { resume }) });
    piecesBytes += await drain(archive.chunks);
    const summary = await archive.summary;
    if (!summary.suspended) break;
    const saveStart = performance.now();
    await saveContinuation(stateDir, {
      state: { version: 1, chain: '0'.repeat(24), tenant: 'bench', location: 's3://bench/bench.tar.zst', createdAt: createdAt.toISOString(), startedAt: '', savedAt: '', pieces, archive: summary.checkpoint, upload: { parts: [], bytes: 0, partSize: 8 * MiB } },
      pendingFrame: summary.pendingFrame,
      tail: Buffer.alloc(4 * MiB), // the upload's tail, at most just under 5 MiB
    });
    const loaded = (await loadContinuation(stateDir, 'bench'))!;
    saveLoadMs += performance.now() - saveStart;
    resume = { suspended: true, checkpoint: loaded.state.archive, pendingFrame: loaded.pendingFrame };
  }
} finally {
  rmSync(stateDir, { recursive: true, force: true });
}
const piecesMs = performance.now() - piecesStart;

const rate = bytes / MiB / (oneMs / 1000);
console.log(`tree ${values.tree}: ${files} files, ${(bytes / MiB).toFixed(0)} MiB; archive ${(archiveBytes / MiB).toFixed(0)} MiB; cpus ${values.cpus}`);
console.log(`one piece: ${(oneMs / 1000).toFixed(2)} s = ${rate.toFixed(1)} MiB/s of tenant content`);
console.log(`${pieces} pieces of ${values['piece-ms']} ms: ${(piecesMs / 1000).toFixed(2)} s, identical size: ${piecesBytes === archiveBytes}`);
console.log(`overhead per piece: ${((piecesMs - oneMs) / Math.max(1, pieces - 1)).toFixed(0)} ms (state save + load alone: ${(saveLoadMs / Math.max(1, pieces - 1)).toFixed(1)} ms)`);
console.log(`one 15-minute invocation with a 60 s abort and 120 s continue margin (720 s of work) at this rate: ${((rate * 720) / 1024).toFixed(1)} GiB`);
