// Mutation fuzzing of everything that reads an archive: verify, restore --dry-run and a real
// restore (shared/restore, shared/archive, shared/age), in process, plus every Nth mutant
// through the built CLI. Not part of `npm test`: `npm run fuzz -- --seconds 600 [--seed N]
// [--cli-every N] [--out DIR]`. A deterministic smoke of it is test/archive-fuzz.test.ts.
//
// Seeds: a tenant with files, directories, symlinks, hard links, an SQLite database and a
// non-UTF-8 name, backed up plain and `--encrypt-to` age. Three levels of mutation:
//   zstd   the compressed bytes (flips, truncation, insertions, splices of two archives);
//   tar    the decompressed tar re-compressed as valid zstd frames (header fields, pax
//          records, checksums recomputed or not; manifest and footer JSON fields);
//   age    the encrypted archive's header lines, stanzas, MAC and payload.
// Oracle: only typed errors (OpenClawError) may escape; nothing hangs (20 s); the RSS stays
// under 400 MiB; nothing changes outside the target slot (a victim tenant, a sibling dir and
// the cwd are compared after every mutant); no tenant appears when verify refused the archive;
// an existing tenant replaced with --force (it holds links out of it, as an agent may leave
// them) is either the seed's tree or left as it was; the
// CLI exits 0, 1, 2 or 3 with one line on stderr and never "unexpected error" or a stack; an
// archive verify passes restores (unless stopped or limited on purpose) to the seed's tree
// (modes aside: the manifest does not cover them) with no setuid/setgid bit and no sticky
// file. The real restore runs with the other file writers, small limits or an abort part way
// now and then (Variant), on every archive verify passed and a share of the rest (it syncs:
// ~0.2 s each). FUZZ_VERBOSE=1 prints each mutant and its verdict.
// Failing mutants are written to --out (default ./fuzz-failures) as fail-<n>-<level>.bin.
// `--decoder-seconds N` first runs the zstd decoder alone on mutants of zstd CLI output
// (fuzzDecoder), every frame streamed (fzstd on Node 20, zlib on Node 24) and decoded whole.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, linkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';

import { createSampleTenant } from '../../scripts/sample-tenant.js';
import { backupTenant } from '../../shared/backup/backup.js';
import { generateIdentity, type AgeIdentity } from '../../shared/age/keys.js';
import { encryptAge } from '../../shared/age/encrypt.js';
import { isOpenClawError } from '../../shared/errors.js';
import { restoreTenant } from '../../shared/restore/restore.js';
import { planRestore } from '../../shared/restore/restore-plan.js';
import { verifyArchive } from '../../shared/restore/verify.js';
import { LocalFileLocation } from '../../shared/storage/local.js';
import { FrameWriter } from '../../shared/archive/zstd-encoder.js';
import { decompressFrames } from '../../shared/archive/zstd-decoder.js';
import { SKIPPABLE_MAGIC_BASE } from '../../shared/archive/zstd-format.js';
import { PARALLEL_ACCESS } from '../../shared/file-access.js';
import type { RestoreRequest } from '../../shared/restore/restore.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

// ---------- random ----------
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Dice {
  constructor(readonly next: () => number) {}
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

// ---------- seeds ----------
export interface Seeds {
  readonly plain: Buffer;
  readonly other: Buffer;
  readonly encrypted: Buffer;
  readonly identity: AgeIdentity;
}

function makeTenant(dir: string, seed: number): void {
  createSampleTenant(dir, { sessions: 2, messagesPerSession: 4, memoryRows: 10, mediaFiles: 1, mediaBytes: 8 * 1024, notes: 2, seed });
  mkdirSync(path.join(dir, 'extra', 'deep', 'er'), { recursive: true });
  writeFileSync(path.join(dir, 'extra', 'deep', 'er', 'f.txt'), 'deep file\n');
  writeFileSync(path.join(dir, 'extra', 'target.txt'), 'hard linked\n');
  linkSync(path.join(dir, 'extra', 'target.txt'), path.join(dir, 'extra', 'hard.txt'));
  symlinkSync('target.txt', path.join(dir, 'extra', 'link'));
  symlinkSync('../extra/deep', path.join(dir, 'extra', 'dirlink'));
  writeFileSync(Buffer.concat([Buffer.from(path.join(dir, 'extra', 'raw-')), Buffer.from([0xff, 0xfe, 0x41])]), 'non-utf8 name\n');
  writeFileSync(path.join(dir, 'extra', 'empty'), '');
}

export async function makeSeeds(work: string): Promise<Seeds> {
  const tenantsDir = path.join(work, 'seed-tenants');
  makeTenant(path.join(tenantsDir, 'acme'), 1);
  makeTenant(path.join(tenantsDir, 'beta'), 2);
  const now = () => new Date('2026-06-03T03:00:00.000Z');
  const plainFile = path.join(work, 'acme.tar.zst');
  const otherFile = path.join(work, 'beta.tar.zst');
  const encFile = path.join(work, 'acme.tar.zst.age');
  await backupTenant({ tenantsDir, tenant: 'acme', location: new LocalFileLocation(plainFile), now });
  await backupTenant({ tenantsDir, tenant: 'beta', location: new LocalFileLocation(otherFile), now });
  const identity = generateIdentity();
  await backupTenant({ tenantsDir, tenant: 'acme', location: new LocalFileLocation(encFile), now, recipients: [identity.recipient] });
  return {
    plain: readFileSync(plainFile),
    other: readFileSync(otherFile),
    encrypted: readFileSync(encFile),
    identity,
  };
}

// ---------- archive layout ----------
interface Layout {
  readonly marker: Buffer;
  readonly footer: Buffer;
  readonly tar: Buffer;
}

function skippableAt(bytes: Buffer, at: number): number | undefined {
  if (at + 8 > bytes.length) return undefined;
  const magic = bytes.readUInt32LE(at);
  if ((magic & 0xfffffff0) !== SKIPPABLE_MAGIC_BASE) return undefined;
  return 8 + bytes.readUInt32LE(at + 4);
}

export function layout(archive: Buffer): Layout {
  const markerLength = skippableAt(archive, 0) ?? 0;
  let footerStart = archive.length;
  for (let at = archive.length - 8; at >= Math.max(0, archive.length - 1200); at--) {
    if (skippableAt(archive, at) === archive.length - at) {
      footerStart = at;
      break;
    }
  }
  const tar = execFileSync('zstd', ['-dc', '-q'], { input: archive, maxBuffer: 256 * 1024 * 1024 });
  return { marker: archive.subarray(0, markerLength), footer: archive.subarray(footerStart), tar };
}

async function compress(tar: Buffer, frameSize: number): Promise<Buffer> {
  const writer = new FrameWriter({ frameSize, level: 1, concurrency: 1 });
  const frames: Buffer[] = [];
  const collecting = (async () => {
    for await (const frame of writer.frames()) frames.push(frame);
  })();
  await writer.write(tar);
  await writer.close();
  await collecting;
  return Buffer.concat(frames);
}

// ---------- tar ----------
interface TarEntry {
  header: Buffer;
  data: Buffer;
}

function octal(field: Buffer): number {
  if ((field[0]! & 0x80) !== 0) return 0;
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return text === '' ? 0 : parseInt(text, 8) || 0;
}

function parseTar(tar: Buffer): { entries: TarEntry[]; tail: Buffer } {
  const entries: TarEntry[] = [];
  let at = 0;
  while (at + 512 <= tar.length) {
    const header = tar.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    const size = octal(header.subarray(124, 136));
    const padded = Math.ceil(size / 512) * 512;
    entries.push({ header: Buffer.from(header), data: Buffer.from(tar.subarray(at + 512, at + 512 + size)) });
    at += 512 + padded;
  }
  return { entries, tail: Buffer.from(tar.subarray(at)) };
}

function checksum(header: Buffer): void {
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
}

function setSize(header: Buffer, size: number): void {
  header.write(size.toString(8).padStart(11, '0') + '\0', 124, 'latin1');
}

function buildTar(entries: readonly TarEntry[], tail: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (const { header, data } of entries) {
    parts.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(tail.length >= 1024 ? tail : Buffer.alloc(1024));
  return Buffer.concat(parts);
}

// ---------- mutators ----------
const NAMES = ['../x', '/abs', 'tenants/acme/../../x', 'tenants/acme/a/../../../x', 'tenants/other/x', 'tenants/acme/', 'tenants/', '', 'tenants/acme/extra/link/x', 'tenants/acme/extra/dirlink/../../..', 'tenants/acme/\0x', 'tenants/acme/' + 'a'.repeat(300), 'tenants/acme/./.', 'tenants/acme/.openclaw-backup-manifest.json', 'tenants/acme/extra', 'tenants/acme/extra/target.txt', 'tenants/ACME/x', 'tenants/acme/\xff\xfe'];
const TYPES = ['0', '1', '2', '3', '4', '5', '6', '7', 'x', 'g', 'L', 'K', 'S', 'V', 'M', 'D', '\0', 'Z'];
const PAX_KEYS = ['path', 'linkpath', 'size', 'mtime', 'uid', 'gid', 'mode', 'uname', 'GNU.sparse.map', 'GNU.sparse.size', 'GNU.sparse.major', 'GNU.sparse.minor', 'GNU.sparse.realsize', 'GNU.sparse.name', 'SCHILY.xattr.user.x', 'LIBARCHIVE.xattr.user.x', 'hdrcharset', 'atime'];
const PAX_VALUES = ['0', '-1', '99999999999999999999', '1e9', 'NaN', '../x', '/etc/passwd', 'tenants/acme/y', '', '0,0,0', '1,0', '1.0', '\xff', 'a'.repeat(5000), '3.5', '9007199254740993'];

function mutateZstd(d: Dice, seeds: Seeds): { bytes: Buffer; what: string } {
  const base = Buffer.from(seeds.plain);
  switch (d.int(6)) {
    case 0: {
      const n = 1 + d.int(8);
      for (let i = 0; i < n; i++) base[d.int(base.length)]! ^= 1 << d.int(8);
      return { bytes: base, what: `flip ${n}` };
    }
    case 1: {
      const at = d.int(base.length);
      return { bytes: base.subarray(0, at), what: `truncate ${at}` };
    }
    case 2: {
      const at = d.int(base.length);
      const ins = d.bytes(1 + d.int(64));
      return { bytes: Buffer.concat([base.subarray(0, at), ins, base.subarray(at)]), what: `insert ${ins.length}@${at}` };
    }
    case 3: {
      const a = d.int(base.length);
      const b = d.int(seeds.other.length);
      return { bytes: Buffer.concat([base.subarray(0, a), seeds.other.subarray(b)]), what: `splice ${a}/${b}` };
    }
    case 4: {
      const at = d.int(base.length);
      const n = 1 + d.int(256);
      return { bytes: Buffer.concat([base.subarray(0, at), base.subarray(at + n)]), what: `delete ${n}@${at}` };
    }
    default: {
      const a = d.int(base.length);
      const n = 1 + d.int(4096);
      const from = d.int(base.length);
      return { bytes: Buffer.concat([base.subarray(0, a), base.subarray(from, from + n), base.subarray(a)]), what: `dup ${n} from ${from} to ${a}` };
    }
  }
}

function mutateJson(d: Dice, text: string): string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return text;
  }
  const replacements: unknown[] = [null, 0, -1, 1e300, 2 ** 53 + 1, '', '../x', '/abs', 'x'.repeat(2000), [], {}, true, 'NaN', 1.5, 'acme', 'tenants/acme', '0'.repeat(64), { path: '../' }];
  const containers: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = [];
  const walk = (node: unknown, depth: number): void => {
    if (depth > 6 || node === null || typeof node !== 'object') return;
    const keys = Array.isArray(node) ? node.map((_, i) => i).slice(0, 50) : Object.keys(node);
    for (const key of keys) {
      containers.push({ parent: node as Record<string, unknown>, key });
      walk((node as Record<string, unknown>)[key as string], depth + 1);
    }
  };
  walk(value, 0);
  const n = 1 + d.int(3);
  for (let i = 0; i < n && containers.length > 0; i++) {
    const { parent, key } = d.pick(containers);
    const p = parent as Record<string | number, unknown>;
    switch (d.int(4)) {
      case 0:
        if (Array.isArray(parent)) parent.splice(key as number, 1);
        else delete p[key];
        break;
      case 1:
        if (typeof p[key] === 'number') p[key] = (p[key] as number) + d.pick([1, -1, 512, 1e6]);
        else p[key] = d.pick(replacements);
        break;
      case 2:
        if (typeof p[key] === 'string') p[key] = (p[key] as string) + d.pick(['/..', 'x', '/', '\0', '\u2028']);
        else p[key] = d.pick(replacements);
        break;
      default:
        p[key] = d.pick(replacements);
    }
  }
  return JSON.stringify(value);
}

const JSON_TOKENS = ['[[[[[[[[[[[[[[[[', '{"__proto__":{"x":1},', '"\\ud800"', '1e999', '-0', '"\\u0000"', ',', '}', ']', '"', '\\', 'null', '{"a":' .repeat(50), '"tenants/../x"', '"constructor"', '9'.repeat(400)];

/** Byte-level damage to JSON text: flips, cuts, tokens inserted, a key renamed. */
function mutateJsonBytes(d: Dice, bytes: Buffer): Buffer {
  switch (d.int(4)) {
    case 0: {
      const out = Buffer.from(bytes);
      const n = 1 + d.int(4);
      for (let i = 0; i < n; i++) out[d.int(out.length)]! ^= 1 << d.int(8);
      return out;
    }
    case 1:
      return bytes.subarray(0, d.int(bytes.length));
    case 2: {
      const at = d.int(bytes.length);
      return Buffer.concat([bytes.subarray(0, at), Buffer.from(d.pick(JSON_TOKENS)), bytes.subarray(at)]);
    }
    default: {
      const text = bytes.toString('utf8');
      const keys = [...text.matchAll(/"([a-zA-Z0-9]+)":/g)];
      if (keys.length === 0) return bytes;
      const key = d.pick(keys);
      const replacement = d.pick(['__proto__', 'constructor', 'toString', 'path', 'sha256', 'entries', 'directories', 'x']);
      return Buffer.from(text.slice(0, key.index) + `"${replacement}":` + text.slice(key.index! + key[0].length), 'utf8');
    }
  }
}

function withPayload(frame: Buffer, payload: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32LE(frame.readUInt32LE(0), 0);
  head.writeUInt32LE(payload.length, 4);
  return Buffer.concat([head, payload]);
}

/** The footer with its manifestSha256 set to that of the manifest in `tar` (when both are there). */
function footerFor(footer: Buffer, tar: Buffer): Buffer {
  if (footer.length < 8) return footer;
  const manifest = parseTar(tar).entries.find((e) => e.header.subarray(0, 100).toString('latin1').includes('.openclaw-backup-manifest.json'));
  if (manifest === undefined) return footer;
  try {
    const value = JSON.parse(footer.subarray(8).toString('utf8')) as Record<string, unknown>;
    value.manifestSha256 = createHash('sha256').update(manifest.data).digest('hex');
    return withPayload(footer, Buffer.from(JSON.stringify(value), 'utf8'));
  } catch {
    return footer;
  }
}

function rebuildFooter(d: Dice, footer: Buffer): Buffer {
  if (footer.length < 8) return footer;
  const payload = footer.subarray(8).toString('utf8');
  const mutated = Buffer.from(d.chance(0.8) ? mutateJson(d, payload) : payload.slice(0, d.int(payload.length)), 'utf8');
  const head = Buffer.alloc(8);
  head.writeUInt32LE(footer.readUInt32LE(0), 0);
  head.writeUInt32LE(mutated.length, 4);
  return Buffer.concat([head, mutated]);
}

function mutateTarEntries(d: Dice, parsed: { entries: TarEntry[]; tail: Buffer }): string {
  const { entries } = parsed;
  const index = d.int(entries.length);
  const entry = entries[index]!;
  const h = entry.header;
  const name = h.subarray(0, 100).toString('latin1').replace(/\0.*$/s, '');
  let recompute = d.chance(0.85);
  let what: string;
  switch (d.int(13)) {
    case 0: {
      const size = d.pick([0, 1, 511, 512, 513, entry.data.length + 1, Math.max(0, entry.data.length - 1), 8 ** 11 - 1, 2 ** 31]);
      setSize(h, size);
      what = `size ${size}`;
      break;
    }
    case 1: {
      h.fill(0, 124, 136);
      h[124] = 0x80;
      d.bytes(11).copy(h, 125);
      what = 'size base256 random';
      break;
    }
    case 2: {
      const t = d.pick(TYPES);
      h[156] = t.charCodeAt(0);
      what = `type ${JSON.stringify(t)}`;
      break;
    }
    case 3: {
      const mode = d.pick(['0004777', '0007777', '0000000', '0002755', '0001777', 'zzzzzzz', '7777777']);
      h.write(mode + '\0', 100, 'latin1');
      what = `mode ${mode}`;
      break;
    }
    case 4: {
      const n = d.pick(NAMES);
      h.fill(0, 0, 100);
      h.write(n.slice(0, 100), 0, 'latin1');
      what = `name ${JSON.stringify(n.slice(0, 40))}`;
      break;
    }
    case 5: {
      const n = d.pick(NAMES);
      h.fill(0, 157, 257);
      h.write(n.slice(0, 100), 157, 'latin1');
      what = `linkname ${JSON.stringify(n.slice(0, 40))}`;
      break;
    }
    case 6: {
      const n = d.pick(['', '..', '/', 'tenants', '../tenants/acme', 'x'.repeat(150)]);
      h.fill(0, 345, 500);
      h.write(n.slice(0, 155), 345, 'latin1');
      what = `prefix ${JSON.stringify(n.slice(0, 20))}`;
      break;
    }
    case 7: {
      const n = 1 + d.int(6);
      for (let i = 0; i < n; i++) h[d.int(512)] = d.int(256);
      what = `header bytes ${n}`;
      break;
    }
    case 8: {
      // a pax header before this entry
      const key = d.pick(PAX_KEYS);
      const value = d.pick(PAX_VALUES);
      const body = paxRecord(key, value, d);
      const paxHeader = Buffer.alloc(512);
      paxHeader.write('PaxHeaders/x', 0, 'latin1');
      paxHeader.write('0000644\0', 100, 'latin1');
      paxHeader.write('0000000\0', 108, 'latin1');
      paxHeader.write('0000000\0', 116, 'latin1');
      setSize(paxHeader, body.length);
      paxHeader.write('00000000000\0', 136, 'latin1');
      paxHeader[156] = d.chance(0.8) ? 0x78 : 0x67;
      paxHeader.write('ustar\x0000', 257, 'latin1');
      checksum(paxHeader);
      entries.splice(index, 0, { header: paxHeader, data: body });
      recompute = true;
      what = `pax ${key}=${JSON.stringify(value.slice(0, 30))}`;
      break;
    }
    case 9: {
      if (name.endsWith('.openclaw-backup-manifest.json') || d.chance(0.5)) {
        const m = entries.find((e) => e.header.subarray(0, 100).toString('latin1').includes('.openclaw-backup-manifest.json'));
        if (m !== undefined) {
          m.data = Buffer.from(mutateJson(d, m.data.toString('utf8')), 'utf8');
          setSize(m.header, m.data.length);
          checksum(m.header);
          return 'manifest json';
        }
      }
      entry.data = Buffer.concat([entry.data, d.bytes(d.int(700))]);
      setSize(h, entry.data.length);
      what = 'data grown';
      break;
    }
    case 10: {
      entries.splice(index, 1);
      return `delete entry ${index} ${JSON.stringify(name.slice(-30))}`;
    }
    case 11: {
      const other = d.int(entries.length);
      entries.splice(other, 0, { header: Buffer.from(h), data: Buffer.from(entry.data) });
      return `duplicate entry ${index} at ${other}`;
    }
    default: {
      const other = d.int(entries.length);
      [entries[index], entries[other]] = [entries[other]!, entries[index]!];
      return `swap ${index} ${other}`;
    }
  }
  if (recompute) checksum(h);
  return `${what} on ${index} ${JSON.stringify(name.slice(-30))}${recompute ? '' : ' (old checksum)'}`;
}

function paxRecord(key: string, value: string, d: Dice): Buffer {
  const text = `${key}=${value}\n`;
  let length = Buffer.byteLength(text, 'latin1') + 2;
  while (String(length).length + 1 + Buffer.byteLength(text, 'latin1') !== length) length = String(length).length + 1 + Buffer.byteLength(text, 'latin1');
  const claimed = d.chance(0.85) ? length : d.pick([0, 1, length - 1, length + 1, 999999]);
  return Buffer.from(`${claimed} ${text}`, 'latin1');
}

async function mutateTar(d: Dice, seeds: Seeds, cache: { layout?: Layout }): Promise<{ bytes: Buffer; what: string }> {
  cache.layout ??= layout(seeds.plain);
  const { marker, footer, tar } = cache.layout;
  let footerOut = footer;
  let what: string;
  let newTar: Buffer;
  let consistent = d.chance(0.3);
  let markerOut = marker;
  const roll = d.int(13);
  if (roll === 10 || roll === 11) {
    const parsed = parseTar(tar);
    const m = parsed.entries.find((e) => e.header.subarray(0, 100).toString('latin1').includes('.openclaw-backup-manifest.json'));
    if (m !== undefined) {
      m.data = roll === 10 ? mutateJsonBytes(d, m.data) : Buffer.from(mutateJson(d, m.data.toString('utf8')), 'utf8');
      setSize(m.header, m.data.length);
      checksum(m.header);
    }
    newTar = buildTar(parsed.entries, parsed.tail);
    consistent = d.chance(0.8);
    what = `manifest ${roll === 10 ? 'bytes' : 'json'}`;
  } else if (roll === 12 && marker.length > 8) {
    const payload = marker.subarray(8);
    markerOut = withPayload(marker, d.chance(0.5) ? mutateJsonBytes(d, payload) : Buffer.from(mutateJson(d, payload.toString('utf8')), 'utf8'));
    newTar = tar;
    what = 'marker';
  } else if (roll === 0) {
    footerOut = rebuildFooter(d, footer);
    newTar = tar;
    what = 'footer json';
  } else if (roll === 1) {
    const at = 512 * d.int(Math.ceil(tar.length / 512)) + (d.chance(0.3) ? d.int(512) : 0);
    newTar = tar.subarray(0, at);
    what = `tar truncated at ${at}`;
  } else {
    const parsed = parseTar(tar);
    const n = d.chance(0.8) ? 1 : 2 + d.int(3);
    const whats: string[] = [];
    for (let i = 0; i < n; i++) whats.push(mutateTarEntries(d, parsed));
    newTar = buildTar(parsed.entries, parsed.tail);
    what = whats.join('; ');
  }
  if (consistent && roll !== 0) {
    footerOut = footerFor(footer, newTar);
    what += ' (footer digest recomputed)';
  }
  const frames = await compress(newTar, d.pick([2 * 1024 * 1024, 64 * 1024, 4096]));
  const keepMarker = d.chance(0.97);
  const keepFooter = d.chance(0.97);
  return { bytes: Buffer.concat([keepMarker ? markerOut : Buffer.alloc(0), frames, keepFooter ? footerOut : Buffer.alloc(0)]), what: `${what}${keepMarker ? '' : ' -marker'}${keepFooter ? '' : ' -footer'}` };
}

function mutateAge(d: Dice, seeds: Seeds): { bytes: Buffer; what: string } {
  const enc = seeds.encrypted;
  const macAt = enc.indexOf('\n---');
  const headerEnd = enc.indexOf('\n', macAt + 1) + 1;
  const header = enc.subarray(0, headerEnd).toString('latin1');
  const payload = enc.subarray(headerEnd);
  const lines = header.split('\n').slice(0, -1);
  switch (d.int(9)) {
    case 0: {
      const i = d.int(lines.length);
      const repl = d.pick(['', 'age-encryption.org/v2', '-> X25519', '-> X25519 ' + 'A'.repeat(43), '-> scrypt AAAA 10', '-> x y z', '--- ' + 'A'.repeat(43), '---', 'A'.repeat(64), 'A'.repeat(65), '-> ' + 'a'.repeat(5000), '-> X25519 !!!!', ' ', '\r']);
      lines[i] = repl;
      return { bytes: Buffer.concat([Buffer.from(lines.join('\n') + '\n', 'latin1'), payload]), what: `header line ${i} = ${JSON.stringify(repl.slice(0, 30))}` };
    }
    case 1: {
      const i = d.int(lines.length);
      lines.splice(i, 1);
      return { bytes: Buffer.concat([Buffer.from(lines.join('\n') + '\n', 'latin1'), payload]), what: `drop header line ${i}` };
    }
    case 2: {
      const i = 1 + d.int(Math.max(1, lines.length - 2));
      lines.splice(i, 0, lines[i]!);
      return { bytes: Buffer.concat([Buffer.from(lines.join('\n') + '\n', 'latin1'), payload]), what: `duplicate header line ${i}` };
    }
    case 3: {
      const bytes = Buffer.from(enc);
      const at = d.int(headerEnd);
      bytes[at]! ^= 1 << d.int(8);
      return { bytes, what: `header flip @${at}` };
    }
    case 4: {
      const bytes = Buffer.from(enc);
      const at = headerEnd + d.int(payload.length);
      bytes[at]! ^= 1 << d.int(8);
      return { bytes, what: `payload flip @${at}` };
    }
    case 5: {
      const chunk = 64 * 1024 + 16;
      const cuts = [headerEnd, headerEnd + 16, headerEnd + 17, headerEnd + 16 + chunk, headerEnd + 16 + chunk + 1, enc.length - 1, enc.length - 17, d.int(enc.length)];
      const at = d.pick(cuts);
      return { bytes: enc.subarray(0, at), what: `truncate ${at}` };
    }
    case 6: {
      const extra = d.pick([Buffer.alloc(1), d.bytes(16), d.bytes(17), d.bytes(64 * 1024 + 16)]);
      return { bytes: Buffer.concat([enc, extra]), what: `append ${extra.length}` };
    }
    case 7: {
      // replace the plaintext under the right key is not possible; swap payload chunks instead
      const chunk = 64 * 1024 + 16;
      const start = headerEnd + 16;
      const chunks: Buffer[] = [];
      for (let at = start; at < enc.length; at += chunk) chunks.push(enc.subarray(at, Math.min(enc.length, at + chunk)));
      if (chunks.length < 2) return { bytes: Buffer.concat([enc.subarray(0, start), ...chunks, ...chunks]), what: 'repeat chunk' };
      const a = d.int(chunks.length);
      const b = d.int(chunks.length);
      [chunks[a], chunks[b]] = [chunks[b]!, chunks[a]!];
      return { bytes: Buffer.concat([enc.subarray(0, start), ...chunks]), what: `swap chunks ${a} ${b}` };
    }
    default: {
      const at = d.int(enc.length);
      const ins = d.bytes(1 + d.int(32));
      return { bytes: Buffer.concat([enc.subarray(0, at), ins, enc.subarray(at)]), what: `insert ${ins.length}@${at}` };
    }
  }
}

/** A damaged plain archive, encrypted properly: the decrypted stream is authentic but hostile. */
async function encrypted(d: Dice, seeds: Seeds, cache: { layout?: Layout }): Promise<{ bytes: Buffer; what: string }> {
  const inner = d.chance(0.3) ? mutateZstd(d, seeds) : await mutateTar(d, seeds, cache);
  const parts: Buffer[] = [];
  async function* source(): AsyncGenerator<Uint8Array> {
    yield inner.bytes;
  }
  for await (const part of encryptAge(source(), [seeds.identity.recipient])) parts.push(Buffer.from(part));
  return { bytes: Buffer.concat(parts), what: `encrypted: ${inner.what}` };
}

// ---------- oracle ----------
/** One line per entry below `root`: name, mode (unless `modes` is false), type, link count, content digest or target. */
export function describe(root: string, skip: (relative: string) => boolean = () => false, modes = true): string {
  const lines: string[] = [];
  const walk = (dir: Buffer, rel: string): void => {
    let names: Buffer[];
    try {
      names = readdirSync(dir, { encoding: 'buffer' }).sort(Buffer.compare);
    } catch {
      return;
    }
    for (const raw of names) {
      const name = raw.toString('latin1');
      const relative = rel === '' ? name : `${rel}/${name}`;
      if (skip(relative)) continue;
      const full = Buffer.concat([dir, Buffer.from('/'), raw]);
      const st = lstatSync(full);
      let detail = '';
      if (st.isSymbolicLink()) detail = `-> ${readlinkSync(full, { encoding: 'buffer' }).toString('latin1')}`;
      else if (st.isFile()) detail = createHash('sha256').update(readFileSync(full)).digest('hex').slice(0, 16);
      lines.push(`${relative} ${modes ? (st.mode & 0o7777).toString(8) : ''} ${st.isDirectory() ? 'd' : st.isFile() ? 'f' : st.isSymbolicLink() ? 'l' : 'o'} ${st.nlink > 1 && !st.isDirectory() ? `n${st.nlink}` : ''} ${detail}`);
      if (st.isDirectory()) walk(full, relative);
    }
  };
  walk(Buffer.from(root), '');
  return lines.join('\n');
}

export type Level = 'zstd' | 'tar' | 'age';

/** How the real restore is run: the other file writers, small limits, stopped part way. */
export type Variant = Pick<RestoreRequest, 'fileAccess' | 'workerThresholdBytes' | 'limits'> & { readonly abortAfterMs?: number };

function pickVariant(d: Dice): Variant {
  switch (d.int(8)) {
    case 0:
      return { workerThresholdBytes: 0 };
    case 1:
      return { fileAccess: PARALLEL_ACCESS };
    case 2:
      return { limits: { maxEntries: 1 + d.int(60), maxBytes: 256 * 1024 ** 3 } };
    case 3:
      return { limits: { maxEntries: 2_000_000, maxBytes: d.int(40_000) } };
    case 4:
      return { abortAfterMs: d.int(150), ...(d.chance(0.5) && { workerThresholdBytes: 0 }) };
    default:
      return {};
  }
}
export interface Failure {
  readonly level: Level;
  readonly what: string;
  readonly problem: string;
  readonly bytes: Buffer;
}

const TIMEOUT_MS = 20_000;
const RSS_LIMIT = 400 * 1024 * 1024;

async function bounded<T>(run: (signal: AbortSignal) => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new Error('HANG'));
    }, TIMEOUT_MS);
  });
  try {
    return { ok: true, value: await Promise.race([run(controller.signal), timeout]) };
  } catch (error) {
    return { ok: false, error };
  } finally {
    clearTimeout(timer);
  }
}

function untyped(error: unknown): string | undefined {
  if (error instanceof Error && error.message === 'HANG') return 'hang (> 20 s)';
  if (isOpenClawError(error)) return undefined;
  return `untyped error: ${error instanceof Error ? `${error.constructor.name}: ${error.message}\n${error.stack?.split('\n').slice(1, 6).join('\n')}` : String(error)}`;
}

export interface Arena {
  readonly root: string;
  readonly base: string;
  readonly file: string;
  victimTree: string;
  outsideTree: string;
}

export function makeArena(work: string): Arena {
  const root = mkdtempSync(path.join(work, 'arena-'));
  const base = path.join(root, 'tenants');
  mkdirSync(path.join(base, 'victim', 'sub'), { recursive: true });
  writeFileSync(path.join(base, 'victim', 'secret.txt'), 'victim\n');
  symlinkSync('secret.txt', path.join(base, 'victim', 'link'));
  mkdirSync(path.join(root, 'outside'));
  writeFileSync(path.join(root, 'outside', 'sentinel'), 'outside\n');
  mkdirSync(path.join(root, 'cwd'));
  const arena: Arena = { root, base, file: path.join(root, 'in', 'mutant.tar.zst'), victimTree: '', outsideTree: '' };
  mkdirSync(path.dirname(arena.file));
  arena.outsideTree = outsideTree(arena);
  return arena;
}

/** Everything in the arena except the restore targets, their lock files and the mutant. */
function outsideTree(arena: Arena): string {
  // The target's lock file stays (empty, as every restore leaves it); anything else of the core's
  // (a staging dir, a journal, the old tenant under --force) must be gone once a restore returns.
  return describe(arena.root, (rel) => rel === 'in' || /^tenants\/(fz|fzf)(\/|$)/.test(rel) || /^tenants\/\.openclaw-lock-fzf?$/.test(rel));
}

/** Verdicts seen, by level: `ok` or the typed error's code. */
export const verdicts = new Map<string, number>();

export async function check(arena: Arena, seeds: Seeds, level: Level, bytes: Buffer, what: string, options: { force: boolean; cli: boolean; seedTree: string; restoreRefused: boolean; variant?: Variant }): Promise<Failure[]> {
  const failures: Failure[] = [];
  const fail = (problem: string) => failures.push({ level, what, problem, bytes });
  const name = level === 'age' ? 'mutant.tar.zst.age' : 'mutant.tar.zst';
  const file = path.join(path.dirname(arena.file), name);
  rmSync(path.dirname(arena.file), { recursive: true, force: true });
  mkdirSync(path.dirname(arena.file));
  writeFileSync(file, bytes);
  const identities = level === 'age' ? [seeds.identity] : undefined;
  const extra = identities === undefined ? {} : { identities };

  if (level !== 'age') {
    // The decoder alone with every frame streamed (fzstd on Node 20, zlib's stream on Node 24),
    // which the small seeds' frames never are through verify and restore (8 MiB and less are decoded whole).
    const decoded = await decodeOnce(bytes, false);
    if (!decoded.ok) {
      const problem = untyped(decoded.error);
      if (problem !== undefined) fail(`streamed decode: ${problem}`);
    }
  }
  const verified = await bounded((signal) => verifyArchive({ location: new LocalFileLocation(file), record: false, signal, ...extra }));
  if (!verified.ok) {
    const problem = untyped(verified.error);
    if (problem !== undefined) fail(`verify: ${problem}`);
  }
  const verdict = `${level} ${verified.ok ? 'ok' : isOpenClawError(verified.error) ? verified.error.code : 'untyped'}`;
  verdicts.set(verdict, (verdicts.get(verdict) ?? 0) + 1);
  if (process.env.FUZZ_VERBOSE === '1') process.stdout.write(`  ${verdict} [${what}]\n`);
  const planned = await bounded((signal) => planRestore({ tenantsDir: arena.base, location: new LocalFileLocation(file), as: 'fz', signal, ...extra }));
  if (!planned.ok) {
    const problem = untyped(planned.error);
    if (problem !== undefined) fail(`dry-run: ${problem}`);
  }
  if (readable(verified) !== planned.ok) fail(`verify ${verified.ok ? 'passed' : 'refused'} but dry-run ${planned.ok ? 'passed' : 'refused'}: ${planned.ok ? '' : String((planned as { error: unknown }).error)}${verified.ok ? '' : String((verified as { error: unknown }).error)}`);

  // A real restore is slow (it syncs what it writes): every archive verify passed, a share of the rest.
  if (verified.ok || options.restoreRefused || options.force) failures.push(...(await restoreCheck(arena, level, bytes, what, file, extra, verified, options)));
  if (process.memoryUsage().rss > RSS_LIMIT) fail(`rss ${Math.round(process.memoryUsage().rss / 1048576)} MiB`);
  if (options.cli) failures.push(...cliCheck(arena, level, bytes, what, file));
  return failures;
}

// Verify refuses an archive whose footer is missing or unreadable ("incomplete"), as the listing and prune see
// it, while a restore still reads it: its files all match its manifest (README, verify.ts).
function readable(verified: { ok: boolean; error?: unknown }): boolean {
  return verified.ok || (verified.error instanceof Error && /^incomplete: .* has no manifest footer at its end/.test(verified.error.message));
}

async function restoreCheck(arena: Arena, level: Level, bytes: Buffer, what: string, file: string, extra: { identities?: AgeIdentity[] }, verified: { ok: boolean; error?: unknown }, options: { force: boolean; seedTree: string; variant?: Variant }): Promise<Failure[]> {
  const failures: Failure[] = [];
  const variant = options.variant ?? {};
  const label = Object.keys(variant).length === 0 ? '' : ` (${JSON.stringify({ ...variant, fileAccess: variant.fileAccess === undefined ? undefined : 'parallel' })})`;
  const fail = (problem: string) => failures.push({ level, what: what + label, problem, bytes });
  const target = options.force ? 'fzf' : 'fz';
  const targetDir = path.join(arena.base, target);
  let before = '';
  if (options.force) {
    if (!existsSync(targetDir)) {
      mkdirSync(path.join(targetDir, 'old'), { recursive: true });
      writeFileSync(path.join(targetDir, 'old', 'keep.txt'), 'existing tenant\n');
      plantLinksOut(arena, targetDir);
    }
    before = describe(targetDir);
  }
  const { abortAfterMs, ...request } = variant;
  const restored = await bounded((signal) => {
    const stop = new AbortController();
    signal.addEventListener('abort', () => stop.abort());
    if (abortAfterMs !== undefined) setTimeout(() => stop.abort(), abortAfterMs).unref();
    return restoreTenant({ tenantsDir: arena.base, location: new LocalFileLocation(file), as: target, force: options.force, signal: stop.signal, ...extra, ...request });
  });
  const stopped = abortAfterMs !== undefined || variant.limits !== undefined;
  if (!restored.ok) {
    const problem = untyped(restored.error);
    if (problem !== undefined) fail(`restore: ${problem}`);
    if (verified.ok && !stopped) fail(`verify passed but restore refused: ${String(restored.error)}`);
    if (options.force && existsSync(targetDir) && describe(targetDir) !== before) fail('restore --force failed and the existing tenant changed');
    if (!options.force && existsSync(targetDir)) fail('restore failed and a tenant appeared');
  } else {
    if (!readable(verified)) fail(`restore succeeded though verify refused: ${String((verified as { error: unknown }).error)}`);
    // The manifest's digests cover names, types, sizes, contents and targets, not modes
    // (README "The archive"): those are compared without them, and checked for special bits.
    const got = describe(targetDir, () => false, false);
    if (restored.value.verified && got !== options.seedTree) fail(`restored tree differs from the seed's though verified:\n${diffLines(options.seedTree, got)}`);
    const special = describe(targetDir).split('\n').filter((line) => /^\S+ (\d*[2-7]\d{3} |1\d{3} [^d])/.test(line));
    if (special.length > 0) fail(`restored with special mode bits: ${special.join('; ')}`);
  }
  const outside = outsideTree(arena);
  if (outside !== arena.outsideTree) fail(`changed outside the slot:\n${diffLines(arena.outsideTree, outside)}`);
  if (restored.ok || (!options.force && existsSync(targetDir))) rmSync(targetDir, { recursive: true, force: true });
  return failures;
}

/**
 * What a tenant's agent may leave in the tree a `restore --force` replaces: links out of it
 * (absolute, relative, to another tenant, to the root) under names the archive's entries also
 * take (`extra`, `pty`) and deeper down. Removing the old tree or writing the new one through
 * any of them would change what the oracle compares outside the slot.
 */
function plantLinksOut(arena: Arena, tenantDir: string): void {
  const outside = path.join(arena.root, 'outside');
  symlinkSync(outside, path.join(tenantDir, 'extra'));
  symlinkSync('../../outside', path.join(tenantDir, 'pty'));
  symlinkSync('../victim', path.join(tenantDir, 'memory'));
  symlinkSync('../../../outside/sentinel', path.join(tenantDir, 'old', 'sentinel'));
  symlinkSync('/', path.join(tenantDir, 'old', 'root'));
}

function cliCheck(arena: Arena, level: Level, bytes: Buffer, what: string, file: string): Failure[] {
  const failures: Failure[] = [];
  const fail = (problem: string) => failures.push({ level, what, problem, bytes });
  {
    for (const args of [['tenants', 'verify', '--from', file, '--no-record'], ['tenants', 'restore', '--from', file, '--dry-run', '--as', 'fz'], ['tenants', 'restore', '--from', file, '--as', 'fz']]) {
      const identityFile = path.join(arena.root, 'key.txt');
      const withKey = level === 'age' ? [...args, '--identity', identityFile] : args;
      const run = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'openclaw.js'), '--tenants-dir', arena.base, ...withKey], {
        cwd: path.join(arena.root, 'cwd'),
        encoding: 'utf8',
        timeout: TIMEOUT_MS,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: arena.root, LANG: 'C' },
      });
      const label = `cli ${args[1]}${args.includes('--dry-run') ? ' --dry-run' : ''}`;
      if (run.error !== undefined) fail(`${label}: ${run.error.message}`);
      else if (![0, 1, 2, 3].includes(run.status ?? -1)) fail(`${label}: exit ${run.status} ${run.signal ?? ''} ${run.stderr.slice(0, 400)}`);
      if (/unexpected error|\n\s+at /.test(run.stderr)) fail(`${label}: ${run.stderr.slice(0, 600)}`);
      if (run.stderr.trim().split('\n').length > 1 && run.status !== 0) fail(`${label}: more than one line on stderr: ${run.stderr.slice(0, 600)}`);
      if (run.status === 0 && args[1] === 'restore' && !args.includes('--dry-run')) rmSync(path.join(arena.base, 'fz'), { recursive: true, force: true });
    }
    const outsideAfter = outsideTree(arena);
    if (outsideAfter !== arena.outsideTree) fail(`cli changed outside the slot:\n${diffLines(arena.outsideTree, outsideAfter)}`);
  }
  return failures;
}

function diffLines(a: string, b: string): string {
  const left = new Set(a.split('\n'));
  const right = new Set(b.split('\n'));
  return [...[...left].filter((l) => !right.has(l)).map((l) => `- ${l}`), ...[...right].filter((l) => !left.has(l)).map((l) => `+ ${l}`)].slice(0, 12).join('\n');
}

// ---------- the decoder alone ----------
/** Decodes `bytes` with every frame streamed (or, `whole`, decoded at once); the error, if any. */
async function decodeOnce(bytes: Buffer, whole: boolean): Promise<{ ok: true; value: number } | { ok: false; error: unknown }> {
  return bounded(async (signal) => {
    let total = 0;
    async function* source(): AsyncGenerator<Buffer> {
      for (let at = 0; at < bytes.length; at += 4096) yield bytes.subarray(at, at + 4096);
    }
    for await (const chunk of decompressFrames(source(), { maxNativeFrameBytes: whole ? 8 * 1024 * 1024 : 1 + (bytes.length % 3 === 0 ? 0 : 1023), signal })) total += chunk.length;
    return total;
  });
}

/**
 * The zstd decoder alone, thousands of mutants a second: compressed-byte mutants of zstd CLI
 * outputs (levels 1, 3, 19, with and without checksum and content size) and of the archive,
 * decoded streamed and whole. Oracle: typed errors only, no hang, and both ways agree.
 */
export async function fuzzDecoder(options: { seconds: number; seed: number; tar: Buffer; maxMutants?: number; log: (line: string) => void; out: string }): Promise<{ tried: number; failures: Failure[] }> {
  const d = new Dice(rng(options.seed));
  const tar = options.tar.subarray(0, 300 * 1024);
  const variants = [['-1'], ['-3', '--no-check'], ['-19'], ['-3', '--no-content-size'], ['-3', '-B4096']];
  const seeds = variants.map((flags) => execFileSync('zstd', ['-q', '-c', ...flags], { input: tar, maxBuffer: 64 * 1024 * 1024 }));
  const failures: Failure[] = [];
  const end = Date.now() + options.seconds * 1000;
  let n = 0;
  while (Date.now() < end && (options.maxMutants === undefined || n < options.maxMutants)) {
    n++;
    const which = d.int(seeds.length);
    const seed = seeds[which]!;
    const mutant = mutateZstd(d, { plain: seed, other: d.pick(seeds) } as Seeds);
    // Without a content checksum the two decoders may judge damaged data differently (fzstd
    // refuses some that libzstd decodes, and decodes some that libzstd finds corrupt): no
    // integrity to compare there (a foreign `zstd --no-check` archive's limit).
    const checked = !variants[which]!.includes('--no-check');
    const streamed = await decodeOnce(mutant.bytes, false);
    const whole = await decodeOnce(mutant.bytes, true);
    const problems: string[] = [];
    for (const [how, result] of [['streamed', streamed], ['whole', whole]] as const) {
      if (!result.ok) {
        const problem = untyped(result.error);
        if (problem !== undefined) problems.push(`${how}: ${problem}`);
      }
    }
    if (checked && (streamed.ok !== whole.ok || (streamed.ok && whole.ok && streamed.value !== whole.value))) {
      problems.push(`streamed ${streamed.ok ? streamed.value : String(streamed.error)} but whole ${whole.ok ? whole.value : String(whole.error)}`);
    }
    for (const problem of problems) {
      const failure = { level: 'zstd' as const, what: `decoder: ${mutant.what}`, problem, bytes: mutant.bytes };
      mkdirSync(options.out, { recursive: true });
      const saved = path.join(options.out, `fail-decoder-${n}.bin`);
      writeFileSync(saved, mutant.bytes);
      options.log(`FAIL decoder #${n} [${failure.what}] ${problem} -> ${saved}`);
      failures.push(failure);
    }
    if (n % 5000 === 0) options.log(`decoder: ${n} mutants, ${failures.length} failures, rss ${Math.round(process.memoryUsage().rss / 1048576)} MiB`);
  }
  return { tried: n, failures };
}

// ---------- driver ----------
export async function fuzz(options: { seconds: number; seed: number; cliEvery: number; out: string; work: string; log?: (line: string) => void; maxMutants?: number }): Promise<{ tried: Record<Level, number>; failures: Failure[] }> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const seeds = await makeSeeds(options.work);
  const arena = makeArena(options.work);
  const { formatIdentity } = await import('../../shared/age/keys.js');
  writeFileSync(path.join(arena.root, 'key.txt'), `${formatIdentity(seeds.identity)}\n`, { mode: 0o600 });
  arena.outsideTree = outsideTree(arena);
  // The seed restored once: what a verified restore of a mutant must reproduce.
  const seedFile = path.join(options.work, 'seed-check.tar.zst');
  writeFileSync(seedFile, seeds.plain);
  await restoreTenant({ tenantsDir: arena.base, location: new LocalFileLocation(seedFile), as: 'fz' });
  const seedTree = describe(path.join(arena.base, 'fz'), () => false, false);
  rmSync(path.join(arena.base, 'fz'), { recursive: true, force: true });
  rmSync(seedFile);
  arena.outsideTree = outsideTree(arena);

  const d = new Dice(rng(options.seed));
  const tried: Record<Level, number> = { zstd: 0, tar: 0, age: 0 };
  const failures: Failure[] = [];
  const cache: { layout?: Layout } = {};
  const end = Date.now() + options.seconds * 1000;
  let n = 0;
  while (Date.now() < end && (options.maxMutants === undefined || n < options.maxMutants)) {
    n++;
    const level: Level = d.pick(['zstd', 'tar', 'tar', 'age'] as const);
    const mutant = level === 'zstd' ? mutateZstd(d, seeds) : level === 'tar' ? await mutateTar(d, seeds, cache) : d.chance(0.3) ? await encrypted(d, seeds, cache) : mutateAge(d, seeds);
    tried[level]++;
    const found = await check(arena, seeds, level, mutant.bytes, mutant.what, { force: n % 7 === 0, restoreRefused: n % 3 === 0, variant: pickVariant(d), cli: options.cliEvery > 0 && n % options.cliEvery === 0, seedTree });
    for (const failure of found) {
      const saved = path.join(options.out, `fail-${n}-${level}.bin`);
      mkdirSync(options.out, { recursive: true });
      writeFileSync(saved, failure.bytes);
      log(`FAIL #${n} ${level} [${failure.what}] ${failure.problem} -> ${saved}`);
      failures.push(failure);
    }
    if (n % 200 === 0) log(`${n} mutants (zstd ${tried.zstd}, tar ${tried.tar}, age ${tried.age}), ${failures.length} failures, rss ${Math.round(process.memoryUsage().rss / 1048576)} MiB`);
  }
  rmSync(arena.root, { recursive: true, force: true });
  return { tried, failures };
}

function usage(problem: string): never {
  process.stderr.write(`archive-fuzz: ${problem} (usage: npm run fuzz -- [--seconds N] [--seed N] [--cli-every N] [--decoder-seconds N] [--out DIR])\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  // A mistyped flag or value (`--second 600`, `--seconds 10m`) had run the defaults, or 0 mutants, and exited 0.
  const known = ['--seconds', '--seed', '--cli-every', '--decoder-seconds', '--out'];
  for (let at = 0; at < args.length; at += 2) {
    if (!known.includes(args[at]!) || args[at + 1] === undefined) usage(`${known.includes(args[at]!) ? `${args[at]} needs a value` : `unknown argument ${JSON.stringify(args[at])}`}`);
  }
  const flag = (name: string, fallback: string) => {
    const at = args.indexOf(name);
    return at >= 0 ? args[at + 1]! : fallback;
  };
  const whole = (name: string, fallback: string, least: number) => {
    const value = flag(name, fallback);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value)) || Number(value) < least) usage(`${name} ${JSON.stringify(value)}: give a whole number${least > 0 ? ` from ${least}` : ''}`);
    return Number(value);
  };
  const seconds = whole('--seconds', '60', 1);
  const seed = whole('--seed', String(Date.now() % 1_000_000), 0);
  const cliEvery = whole('--cli-every', '100', 1);
  const decoderSeconds = whole('--decoder-seconds', '0', 0);
  const work = mkdtempSync(path.join(os.tmpdir(), 'openclaw-fuzz-'));
  const out = path.resolve(flag('--out', path.join(process.cwd(), 'fuzz-failures')));
  process.stdout.write(`seed ${seed}, ${seconds} s, CLI every ${cliEvery}, failures to ${out}\n`);
  try {
    if (decoderSeconds > 0) {
      const plain = await makeSeeds(mkdtempSync(path.join(work, 'decoder-')));
      const decoder = await fuzzDecoder({ seconds: decoderSeconds, seed, tar: layout(plain.plain).tar, out, log: (line) => process.stdout.write(`${line}\n`) });
      process.stdout.write(`decoder done: ${decoder.tried} mutants; ${decoder.failures.length} failures\n`);
      if (decoder.failures.length > 0) process.exitCode = 1;
    }
    const { tried, failures } = await fuzz({ seconds, seed, cliEvery, out, work });
    for (const [verdict, count] of [...verdicts].sort()) process.stdout.write(`  ${verdict}: ${count}\n`);
    process.stdout.write(`done: zstd ${tried.zstd}, tar ${tried.tar}, age ${tried.age} mutants; ${failures.length} failures\n`);
    if (failures.length > 0) process.exitCode = 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
