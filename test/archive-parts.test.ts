// An archive written in pieces (a run stops after some entries, the next resumes from where
// it stopped, through a checkpoint that went through JSON) is byte for byte the archive one
// run writes of the same tree: marker, frames, manifest and footer. And the walk's order, as
// a resumed walk compares positions, is the order the walk hands items out in. An encrypted
// archive written in pieces (the age stream suspended with it, its position saved and
// loaded) is one age file that the `age` CLI decrypts to the archive one run writes.

import { mkdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { formatIdentity, generateIdentity, isAgeFile, parseRecipient, type SuspendedAgeFile } from '../shared/age/index.js';
import { encryptArchivePiece } from '../shared/archive/encrypted-archive.js';
import { createTenantArchive, type SuspendedArchive } from '../shared/backup/tenant-archive.js';
import { compareWalkOrder, TenantWalk } from '../shared/backup/tenant-walk.js';
import { sh, tempDir } from './helpers/tree.js';

const dir = tempDir();
afterAll(() => dir.cleanup());

const createdAt = new Date('2026-06-03T03:00:00Z');
/** Small frames, so stops fall inside frames and frames straddle stops. */
const compression = { frameSize: 64 * 1024, concurrency: 2 };

function makeTree(root: string): void {
  const put = (relPath: string, content: string | Buffer) => {
    mkdirSync(path.dirname(path.join(root, relPath)), { recursive: true });
    writeFileSync(path.join(root, relPath), content);
  };
  for (let d = 0; d < 6; d++) {
    for (let f = 0; f < 12; f++) put(`dir-${d}/sub/file-${f}.txt`, `content ${d}/${f} `.repeat(40 * (f + 1)));
    put(`dir-${d}/big.bin`, Buffer.alloc(150_000 + d * 7_000, d + 1));
  }
  // Names that sort differently by UTF-16 and by bytes, a prefix pair (a, a-b, a/x), and what the walk leaves out.
  put('a/x', 'x');
  put('a-b', 'ab');
  put('\u{1F600}.txt', 'emoji');
  put('\uFF21.txt', 'fullwidth A');
  put('pty/session', 'ephemeral');
  put('.openclaw-backup-manifest.json', 'reserved');
  mkdirSync(path.join(root, 'empty'));
  symlinkSync('dir-0/big.bin', path.join(root, 'link'));
  sh(`find '${root}' -exec touch -h -d '2026-01-02 03:04:05' {} +`);
  utimesSync(root, 1_767_000_000, 1_767_000_000);
}

async function bytesOf(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

/** The archive written by runs that each stop after `entries` entries; the pieces concatenated, and how many runs it took. */
async function inPieces(tenantDir: string, entries: number): Promise<{ bytes: Buffer; runs: number }> {
  const pieces: Buffer[] = [];
  let resume: SuspendedArchive | undefined;
  for (let runs = 1; ; runs++) {
    let asked = 0;
    const archive = createTenantArchive({ tenantDir, tenant: 'acme', createdAt, compression, stopWhen: () => ++asked > entries, ...(resume !== undefined && { resume }) });
    pieces.push(await bytesOf(archive.chunks));
    const summary = await archive.summary;
    if (!summary.suspended) return { bytes: Buffer.concat(pieces), runs };
    // What a continuation saves and loads: JSON, and the frame's bytes beside it.
    resume = { suspended: true, checkpoint: JSON.parse(JSON.stringify(archive.checkpointToSave(summary))), pendingFrame: Buffer.from(summary.pendingFrame) };
  }
}

/** As `inPieces`, encrypted to `recipient`: each run's archive bytes go through one piece of the age file. */
async function encryptedInPieces(tenantDir: string, entries: number, recipient: string): Promise<{ bytes: Buffer; runs: number }> {
  const pieces: Buffer[] = [];
  let resume: SuspendedArchive | undefined;
  let stream: SuspendedAgeFile | undefined;
  for (let runs = 1; ; runs++) {
    let asked = 0;
    const archive = createTenantArchive({ tenantDir, tenant: 'acme', createdAt, compression, stopWhen: () => ++asked > entries, ...(resume !== undefined && { resume }) });
    let stopped = false;
    void archive.summary.then((summary) => (stopped = summary.suspended === true));
    const encrypted = encryptArchivePiece(archive.chunks, stream ?? [parseRecipient(recipient)], () => stopped);
    pieces.push(await bytesOf(encrypted.chunks as AsyncIterable<Buffer>));
    const summary = await archive.summary;
    if (!summary.suspended) {
      expect(encrypted.suspended()).toBeUndefined();
      return { bytes: Buffer.concat(pieces), runs };
    }
    resume = { suspended: true, checkpoint: JSON.parse(JSON.stringify(archive.checkpointToSave(summary))), pendingFrame: Buffer.from(summary.pendingFrame) };
    const saved = encrypted.suspended()!;
    stream = { chunkIndex: saved.chunkIndex, payloadKey: Buffer.from(saved.payloadKey), pending: Buffer.from(saved.pending) };
  }
}

describe('an archive written in pieces', () => {
  const tenantDir = path.join(dir.path, 'acme');
  makeTree(tenantDir);

  it('is byte for byte the archive one run writes, however many pieces', async () => {
    const whole = await bytesOf(createTenantArchive({ tenantDir, tenant: 'acme', createdAt, compression }).chunks);
    for (const entries of [1, 7, 40]) {
      const { bytes, runs } = await inPieces(tenantDir, entries);
      expect(runs).toBeGreaterThan(1);
      expect(bytes.equals(whole)).toBe(true);
    }
    const file = path.join(dir.path, 'pieces.tar.zst');
    writeFileSync(file, (await inPieces(tenantDir, 5)).bytes);
    const listing = sh(`zstd -dc '${file}' | tar -tf -`).toString().split('\n');
    expect(listing).toContain('tenants/acme/dir-5/sub/file-11.txt');
    expect(listing).toContain('tenants/acme/.openclaw-backup-manifest.json');
  });

  it('encrypted, is one age file that `age -d` opens to the archive one run writes', async () => {
    const identity = generateIdentity();
    const keyFile = path.join(dir.path, 'key.txt');
    writeFileSync(keyFile, `${formatIdentity(identity)}\n`, { mode: 0o600 });
    const whole = await bytesOf(createTenantArchive({ tenantDir, tenant: 'acme', createdAt, compression }).chunks);
    for (const entries of [1, 9, 60]) {
      const { bytes, runs } = await encryptedInPieces(tenantDir, entries, identity.recipient.text);
      expect(runs).toBeGreaterThan(1);
      expect(isAgeFile(bytes)).toBe(true);
      // One header: the magic line appears once; the pieces' age layers are not concatenated files.
      expect(bytes.toString('latin1').split('age-encryption.org/v1\n')).toHaveLength(2);
      const file = path.join(dir.path, `pieces-${entries}.tar.zst.age`);
      writeFileSync(file, bytes);
      const plaintext = sh(`age -d -i '${keyFile}' '${file}'`);
      expect(plaintext.equals(whole)).toBe(true);
      if (entries === 9) {
        const listing = sh(`age -d -i '${keyFile}' '${file}' | zstd -dc | tar -tf -`).toString().split('\n');
        expect(listing).toContain('tenants/acme/dir-5/big.bin');
        expect(listing).toContain('tenants/acme/.openclaw-backup-manifest.json');
      }
    }
  });

  it('leaves out, when resumed, exactly what the walk handed out before the position', async () => {
    const order: string[] = [];
    const walk = new TenantWalk(tenantDir);
    for (let run = await walk.next(1000); run.length > 0; run = await walk.next(1000)) order.push(...run.map((item) => item.relPath));
    expect([...order].sort(compareWalkOrder)).toEqual(order);
    for (const at of [3, 20, order.length - 2]) {
      const rest: string[] = [];
      const resumed = new TenantWalk(tenantDir, undefined, { resumeAfter: order[at]! });
      for (let run = await resumed.next(1000); run.length > 0; run = await resumed.next(1000)) rest.push(...run.map((item) => item.relPath));
      expect(rest).toEqual(order.slice(at + 1));
    }
  });

  it('goes on after the position when the directories above it changed: gone, or now a file', async () => {
    const root = path.join(dir.path, 'changing');
    for (const file of ['a/b/one', 'a/b/two', 'a/c', 'z']) {
      mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
      writeFileSync(path.join(root, file), file);
    }
    const walked = async (resumeAfter: string) => {
      const rest: string[] = [];
      const walk = new TenantWalk(root, undefined, { resumeAfter });
      for (let run = await walk.next(100); run.length > 0; run = await walk.next(100)) rest.push(...run.map((item) => `${item.kind}:${item.relPath}`));
      return rest;
    };
    expect(await walked('a/b/one')).toEqual(['file:a/b/two', 'file:a/c', 'file:z']);
    rmSync(path.join(root, 'a', 'b'), { recursive: true });
    writeFileSync(path.join(root, 'a', 'b'), 'a file now');
    expect(await walked('a/b/one')).toEqual(['file:a/c', 'file:z']);
    rmSync(path.join(root, 'a'), { recursive: true });
    expect(await walked('a/b/one')).toEqual(['file:z']);
  });
});
