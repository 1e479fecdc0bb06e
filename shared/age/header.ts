// The age v1 header: its model, its encoding, and a strict incremental parser.
//
//   age-encryption.org/v1
//   -> X25519 <base64 ephemeral share>
//   <base64 body, 64 columns per full line, always ending with a shorter (maybe empty) line>
//   --- <base64 HMAC-SHA-256 of everything up to and including "---">
//
// The parser accepts exactly the grammar of the spec (c2sp.org/age): LF line ends only,
// arguments of printable ASCII separated by single spaces, canonical unpadded base64, body
// lines of at most 64 columns, at least one stanza. It reads the header as it arrives, and
// because it must hold the whole header until the MAC can be checked, it bounds what it
// holds: the header may take at most `maxHeaderBytes`, a line at most `maxLineBytes`, and
// at most `maxStanzas` stanzas; input that is not an age file is refused from its first
// bytes that cannot start one, so a hostile or wrong input never makes it buffer more.

import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

import { decodeCanonicalBase64, encodeBase64 } from './encoding.js';
import { AgeDamagedError, AgeHeaderLimitError, AgeNotEncryptedError, AgeUnsupportedError } from '../errors.js';

export const AGE_MAGIC = 'age-encryption.org/v1\n';
/** How every age file's first line starts, whatever its version. */
export const VERSION_PREFIX = 'age-encryption.org/';
const VERSION_LINE = 'age-encryption.org/v1';
/** The first line of an ASCII-armored age file (`age -a`). */
export const ARMOR_BEGIN = '-----BEGIN AGE ENCRYPTED FILE-----';
/** The last line of an ASCII-armored age file. */
export const ARMOR_END = '-----END AGE ENCRYPTED FILE-----';
const COLUMNS_PER_LINE = 64;
const BYTES_PER_LINE = (COLUMNS_PER_LINE / 4) * 3;
const MAC_BYTES = 32;
const LF = 0x0a;

/** One recipient stanza: `-> type args…` and its body. */
export interface Stanza {
  readonly type: string;
  readonly args: readonly string[];
  readonly body: Buffer;
}

export interface AgeHeader {
  readonly stanzas: readonly Stanza[];
  readonly mac: Buffer;
  /** The header's bytes up to and including `---`: what the MAC covers. */
  readonly macInput: Buffer;
  /** Length of the whole header in bytes, MAC line included. */
  readonly length: number;
}

export interface HeaderLimits {
  /** Most bytes the header may take, MAC line included. */
  readonly maxHeaderBytes: number;
  /** Most recipient stanzas. */
  readonly maxStanzas: number;
  /** Longest version or stanza argument line (post-quantum stanzas take about 1.5 KiB). */
  readonly maxLineBytes: number;
}

export const DEFAULT_HEADER_LIMITS: HeaderLimits = {
  maxHeaderBytes: 1024 * 1024,
  maxStanzas: 4096,
  maxLineBytes: 4096,
};

/** Encodes a stanza: argument line, then the body wrapped at 64 columns ending with a short line. */
function formatStanza(stanza: Stanza): string {
  let text = `-> ${[stanza.type, ...stanza.args].join(' ')}\n`;
  const body = encodeBase64(stanza.body);
  for (let at = 0; at + COLUMNS_PER_LINE <= body.length; at += COLUMNS_PER_LINE) {
    text += `${body.slice(at, at + COLUMNS_PER_LINE)}\n`;
  }
  return `${text}${body.slice(body.length - (body.length % COLUMNS_PER_LINE))}\n`;
}

/** The header's bytes up to and including `---`, which the MAC covers. */
export function formatHeaderWithoutMac(stanzas: readonly Stanza[]): Buffer {
  return Buffer.from(`${AGE_MAGIC}${stanzas.map(formatStanza).join('')}---`, 'latin1');
}

/** The complete header given what the MAC covers and the MAC. */
export function formatHeader(macInput: Buffer, mac: Buffer): Buffer {
  return Buffer.concat([macInput, Buffer.from(` ${encodeBase64(mac)}\n`, 'latin1')]);
}

/** HMAC-SHA-256 under HKDF-SHA-256(ikm = file key, salt = empty, info = "header"). */
export function computeHeaderMac(fileKey: Uint8Array, macInput: Uint8Array): Buffer {
  const macKey = Buffer.from(hkdfSync('sha256', fileKey, Buffer.alloc(0), 'header', 32));
  return createHmac('sha256', macKey).update(macInput).digest();
}

export function headerMacMatches(fileKey: Uint8Array, header: AgeHeader): boolean {
  return timingSafeEqual(computeHeaderMac(fileKey, header.macInput), header.mac);
}

function damaged(message: string): AgeDamagedError {
  return new AgeDamagedError(`damaged age header: ${message}`, 'header');
}

/** Whether `bytes` (a prefix of the input) could still begin `expected`. */
function couldBegin(bytes: Buffer, length: number, expected: string): boolean {
  const n = Math.min(length, expected.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== expected.charCodeAt(i)) return false;
  return true;
}

function isArgument(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 33 || code > 126) return false;
  }
  return true;
}

type ParserState = 'version' | 'stanza-or-mac' | 'body';

/** The rest of the input after the header: the tail of the chunk that completed it. */
export type HeaderDone = { readonly header: AgeHeader; readonly rest: Buffer };

/**
 * Reads a header from chunks as they arrive. `push` returns undefined until the header is
 * complete, then the header and the bytes after it; `end` (no more input) throws the error
 * for a header cut short. Malformed input throws as soon as it is seen.
 */
export class AgeHeaderReader {
  private buffer = Buffer.alloc(1024);
  private length = 0;
  private lineStart = 0;
  private lineNumber = 0;
  private state: ParserState = 'version';
  private readonly stanzas: Stanza[] = [];
  private bodyParts: Buffer[] = [];
  private current: { type: string; args: string[] } | undefined;

  constructor(private readonly limits: HeaderLimits = DEFAULT_HEADER_LIMITS) {}

  push(chunk: Uint8Array): HeaderDone | undefined {
    let offset = 0;
    while (offset < chunk.length) {
      const room = this.limits.maxHeaderBytes - this.length;
      if (room <= 0) {
        throw new AgeHeaderLimitError(`the age header is larger than ${this.limits.maxHeaderBytes} bytes (limit)`);
      }
      // Take one line at most, and no more of it than its limit allows (plus one byte to
      // tell it is over): the rest of a large chunk is not copied before it is needed.
      const lineLimit = this.state === 'body' ? COLUMNS_PER_LINE : this.limits.maxLineBytes;
      const lineRoom = this.lineStart + lineLimit + 2 - this.length;
      const newline = chunk.indexOf(LF, offset);
      const end = Math.min(newline === -1 ? chunk.length : newline + 1, offset + room, offset + lineRoom);
      this.append(chunk.subarray(offset, end));
      offset = end;
      if (this.state === 'version') this.checkStart();
      if (this.buffer[this.length - 1] !== LF) {
        this.checkPartialLine();
        continue;
      }
      const done = this.completeLine();
      if (done !== undefined) {
        return { header: done, rest: Buffer.from(chunk.buffer, chunk.byteOffset + offset, chunk.length - offset) };
      }
    }
    return undefined;
  }

  /** The input ended before the header did. */
  end(): never {
    if (this.length === 0) throw new AgeNotEncryptedError('the input is empty, not an age file');
    if (this.state === 'version') this.checkStart(true);
    throw damaged('the header is cut short (truncated file)');
  }

  private append(bytes: Uint8Array): void {
    if (this.length + bytes.length > this.buffer.length) {
      const grown = Buffer.alloc(Math.min(Math.max(this.buffer.length * 2, this.length + bytes.length), this.limits.maxHeaderBytes));
      this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
    }
    this.buffer.set(bytes, this.length);
    this.length += bytes.length;
  }

  /** Refuses the input as soon as its first bytes cannot begin an age file. */
  private checkStart(ended = false): void {
    const line = this.buffer.subarray(0, this.length);
    if (couldBegin(line, this.length, VERSION_PREFIX)) {
      if (this.length < VERSION_PREFIX.length && ended) throw new AgeNotEncryptedError('the input is not an age file');
      return;
    }
    if (couldBegin(line, this.length, ARMOR_BEGIN)) {
      if (this.length < ARMOR_BEGIN.length && !ended) return;
      if (this.length >= ARMOR_BEGIN.length) {
        throw new AgeUnsupportedError('ASCII-armored age files (-----BEGIN AGE ENCRYPTED FILE-----) are not supported; store the binary form');
      }
    }
    throw new AgeNotEncryptedError('the input is not an age file (it does not start with "age-encryption.org/v1")');
  }

  private checkPartialLine(): void {
    const lineLength = this.length - this.lineStart;
    if (this.state === 'body' && lineLength > COLUMNS_PER_LINE) {
      throw damaged(`line ${this.lineNumber + 1}: a stanza body line is longer than ${COLUMNS_PER_LINE} columns`);
    }
    if (lineLength > this.limits.maxLineBytes) {
      throw new AgeHeaderLimitError(`age header line ${this.lineNumber + 1} is longer than ${this.limits.maxLineBytes} bytes (limit)`);
    }
  }

  /** Handles the line that just ended; returns the header when it was the MAC line. */
  private completeLine(): AgeHeader | undefined {
    const lineEnd = this.length - 1;
    const line = this.buffer.toString('latin1', this.lineStart, lineEnd);
    const start = this.lineStart;
    this.lineStart = this.length;
    this.lineNumber += 1;
    const where = `line ${this.lineNumber}`;
    switch (this.state) {
      case 'version':
        if (line === VERSION_LINE) {
          this.state = 'stanza-or-mac';
          return undefined;
        }
        if (line === `${VERSION_LINE}\r`) throw damaged('it has CRLF line ends (a text conversion altered the file; age files are binary)');
        if (line.startsWith(VERSION_PREFIX)) {
          throw new AgeUnsupportedError(`unsupported age format version ${JSON.stringify(line.slice(VERSION_PREFIX.length, VERSION_PREFIX.length + 40))} (only v1 is supported)`);
        }
        throw new AgeNotEncryptedError('the input is not an age file (it does not start with "age-encryption.org/v1")');
      case 'stanza-or-mac':
        if (line.startsWith('-> ')) {
          const args = line.slice(3).split(' ');
          if (!args.every(isArgument)) throw damaged(`${where}: malformed stanza line`);
          if (this.stanzas.length >= this.limits.maxStanzas) {
            throw new AgeHeaderLimitError(`the age header has more than ${this.limits.maxStanzas} recipient stanzas (limit)`);
          }
          this.current = { type: args[0]!, args: args.slice(1) };
          this.bodyParts = [];
          this.state = 'body';
          return undefined;
        }
        if (line.startsWith('---')) return this.finish(line, start);
        throw damaged(`${where}: expected a stanza ("-> ") or the MAC line ("--- ")`);
      case 'body': {
        if (line.length > COLUMNS_PER_LINE) throw damaged(`${where}: a stanza body line is longer than ${COLUMNS_PER_LINE} columns`);
        const bytes = decodeCanonicalBase64(line);
        if (bytes === undefined) {
          if (line.startsWith('->') || line.startsWith('---')) throw damaged(`${where}: a stanza ended without a short body line`);
          throw damaged(`${where}: a stanza body line is not canonical unpadded base64`);
        }
        this.bodyParts.push(bytes);
        if (bytes.length < BYTES_PER_LINE) {
          this.stanzas.push({ ...this.current!, body: Buffer.concat(this.bodyParts) });
          this.current = undefined;
          this.bodyParts = [];
          this.state = 'stanza-or-mac';
        }
        return undefined;
      }
    }
  }

  private finish(line: string, start: number): AgeHeader {
    const match = /^--- ([A-Za-z0-9+/]{43})$/.exec(line);
    const mac = match === null ? undefined : decodeCanonicalBase64(match[1]!);
    if (mac === undefined || mac.length !== MAC_BYTES) throw damaged(`line ${this.lineNumber}: malformed MAC line`);
    if (this.stanzas.length === 0) throw damaged('the header has no recipient stanza');
    return {
      stanzas: this.stanzas,
      mac,
      macInput: Buffer.from(this.buffer.subarray(0, start + 3)),
      length: this.length,
    };
  }
}

/** Parses a complete header at the start of `bytes`, or undefined if `bytes` ends first. */
export function parseHeaderPrefix(bytes: Uint8Array, limits: HeaderLimits = DEFAULT_HEADER_LIMITS): HeaderDone | undefined {
  return new AgeHeaderReader(limits).push(bytes);
}
