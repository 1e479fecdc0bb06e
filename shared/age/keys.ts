// age X25519 keys: `age1…` recipients (public) and `AGE-SECRET-KEY-1…` identities (secret),
// and the files that hold them, read the way the `age` CLI reads `-R` and `-i` files: one key
// per line, blank lines and lines starting with `#` ignored, a trailing CR dropped.
//
// Keys become node:crypto KeyObjects once, at parse time, so the X25519 agreements of every
// later file use OpenSSL directly. Only X25519 is supported: post-quantum (`age1pq1…`,
// `AGE-SECRET-KEY-PQ-1…`), plugin (`age1yubikey1…`, `AGE-PLUGIN-…`) and SSH keys are refused
// with a message saying so. Error messages may quote a recipient (public) but never any part
// of an identity line (it could be a secret with a typo in it).

import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { close as closeFd, constants as fsConstants, fstat, open as openFd, write as writeFd, type Stats } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { Socket } from 'node:net';
import { isatty, ReadStream as TerminalStream } from 'node:tty';

import { decodeBech32, encodeBech32 } from './encoding.js';
import { ARMOR_BEGIN, VERSION_PREFIX } from './header.js';
import { AbortedError, OpenClawError, AgeBadIdentityError, AgeBadRecipientError, errnoMessage } from '../errors.js';
import { abortedError, throwIfAborted } from '../storage/streams.js';
import { assertLocalPath } from '../local-path.js';

const RECIPIENT_HRP = 'age';
const IDENTITY_HRP = 'AGE-SECRET-KEY-';
const X25519_KEY_BYTES = 32;
/** DER prefixes of an X25519 SubjectPublicKeyInfo and PKCS#8 PrivateKeyInfo (RFC 8410). */
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
/** The `age` CLI's own limits for key files. */
const MAX_KEY_FILE_BYTES = 16 * 1024 * 1024;
const MAX_KEY_LINE_CHARS = 8 * 1024;
const QUOTE_LIMIT = 80;

/** An X25519 recipient: who a file is encrypted to. */
export interface AgeRecipient {
  readonly kind: 'X25519';
  /** The canonical `age1…` encoding. */
  readonly text: string;
  readonly publicKey: KeyObject;
  /** The raw 32-byte point (part of the wrap key's salt). */
  readonly publicBytes: Buffer;
}

/** An X25519 identity: the secret that decrypts files encrypted to its recipient. */
export interface AgeIdentity {
  readonly kind: 'X25519';
  readonly privateKey: KeyObject;
  /** Its recipient. */
  readonly recipient: AgeRecipient;
}

export function x25519PublicKeyFromBytes(bytes: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, bytes]), format: 'der', type: 'spki' });
}

export function x25519PublicBytes(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - X25519_KEY_BYTES);
}

function recipientFromPublicBytes(bytes: Buffer): AgeRecipient {
  return { kind: 'X25519', text: encodeBech32(RECIPIENT_HRP, bytes), publicKey: x25519PublicKeyFromBytes(bytes), publicBytes: bytes };
}

function identityFromSecretBytes(bytes: Uint8Array): AgeIdentity {
  const der = Buffer.concat([X25519_PKCS8_PREFIX, bytes]);
  try {
    const privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    return { kind: 'X25519', privateKey, recipient: recipientFromPublicBytes(x25519PublicBytes(createPublicKey(privateKey))) };
  } finally {
    der.fill(0);
  }
}

/** A recipient quoted for a message: printable ASCII only, and not too long. */
function quoteRecipient(text: string): string {
  const printable = text.replace(/[^\x20-\x7e]/g, '?');
  return JSON.stringify(printable.length > QUOTE_LIMIT ? `${printable.slice(0, QUOTE_LIMIT)}…` : printable);
}

/** Why a recipient line is not one we can use, or undefined when it looks like `age1…` X25519. */
function unsupportedRecipientKind(text: string): string | undefined {
  if (/^age1pq1/i.test(text)) return 'post-quantum (age1pq1…) recipients are not supported; use an X25519 recipient (age1…)';
  if (/^age1tag(pq)?1/i.test(text)) return 'tagged (hardware) recipients are not supported; use an X25519 recipient (age1…)';
  // The Bech32 alphabet has no "1": a second one means the prefix is `age1<plugin>1`.
  if (/^age1[a-z0-9._-]+1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]+$/i.test(text)) {
    return 'plugin recipients are not supported; use an X25519 recipient (age1…)';
  }
  if (/^(ssh-(ed25519|rsa)|ecdsa-sha2-|sk-(ssh|ecdsa))/.test(text)) return 'SSH keys are not supported as recipients; use an X25519 recipient (age1…)';
  return undefined;
}

/**
 * Whether `text` holds what looks like an age secret key (or plugin identity), also pasted
 * with a space, quotes or a label, or mistyped: given where a recipient, a file name or a
 * secret's name belongs, it is refused without being quoted, sent or logged.
 */
export function looksLikeSecretKey(text: string): boolean {
  return /AGE-?SECRET-?KEY|AGE-?PLUGIN-/i.test(text);
}

/** Parses one `age1…` X25519 recipient (surrounding whitespace is not trimmed). */
export function parseRecipient(text: string): AgeRecipient {
  // A secret key given where a public one belongs: say so without echoing it.
  if (looksLikeSecretKey(text)) {
    throw new AgeBadRecipientError('a secret key (AGE-SECRET-KEY-…) was given as a recipient: keep it secret, and give its public key instead (age-keygen -y KEY_FILE prints it)');
  }
  const unsupported = unsupportedRecipientKind(text);
  if (unsupported !== undefined) throw new AgeBadRecipientError(`recipient ${quoteRecipient(text)}: ${unsupported}`);
  if (!text.toLowerCase().startsWith('age1')) {
    throw new AgeBadRecipientError(`recipient ${quoteRecipient(text)} is not an age recipient (it should start with "age1")`);
  }
  const decoded = decodeBech32(text);
  if (typeof decoded === 'string') throw new AgeBadRecipientError(`recipient ${quoteRecipient(text)} is malformed: it ${decoded}`);
  if (decoded.hrp !== RECIPIENT_HRP) {
    throw new AgeBadRecipientError(`recipient ${quoteRecipient(text)} is malformed: it must be lowercase`);
  }
  if (decoded.bytes.length !== X25519_KEY_BYTES) {
    throw new AgeBadRecipientError(`recipient ${quoteRecipient(text)} is malformed: it holds ${decoded.bytes.length} bytes instead of ${X25519_KEY_BYTES}`);
  }
  return recipientFromPublicBytes(decoded.bytes);
}

/**
 * Parses one `AGE-SECRET-KEY-1…` identity. `where` names it in messages (e.g. "identity file
 * key.txt, line 3"); the key itself is never quoted.
 */
export function parseIdentity(text: string, where = 'identity'): AgeIdentity {
  if (/^AGE-SECRET-KEY-PQ-1/i.test(text)) {
    throw new AgeBadIdentityError(`${where}: post-quantum identities (AGE-SECRET-KEY-PQ-1…) are not supported; use an X25519 identity (AGE-SECRET-KEY-1…)`);
  }
  if (/^AGE-PLUGIN-/i.test(text)) throw new AgeBadIdentityError(`${where}: plugin identities (AGE-PLUGIN-…) are not supported; use an X25519 identity (AGE-SECRET-KEY-1…)`);
  if (/^-----BEGIN /.test(text)) throw new AgeBadIdentityError(`${where}: SSH and PEM keys are not supported; use an X25519 identity (AGE-SECRET-KEY-1…)`);
  if (/^age1/i.test(text)) throw new AgeBadIdentityError(`${where} is a recipient (public key, age1…), not an identity (AGE-SECRET-KEY-1…)`);
  if (!/^AGE-SECRET-KEY-1/i.test(text)) throw new AgeBadIdentityError(`${where} is not an age identity (it should start with "AGE-SECRET-KEY-1")`);
  const decoded = decodeBech32(text);
  if (typeof decoded === 'string') throw new AgeBadIdentityError(`${where} is malformed: it ${decoded}`);
  if (decoded.hrp !== IDENTITY_HRP) throw new AgeBadIdentityError(`${where} is malformed: it must be uppercase`);
  if (decoded.bytes.length !== X25519_KEY_BYTES) {
    throw new AgeBadIdentityError(`${where} is malformed: it holds ${decoded.bytes.length} bytes instead of ${X25519_KEY_BYTES}`);
  }
  try {
    return identityFromSecretBytes(decoded.bytes);
  } finally {
    decoded.bytes.fill(0);
  }
}

/** The canonical `AGE-SECRET-KEY-1…` text of an identity (for key generation and tests). */
export function formatIdentity(identity: AgeIdentity): string {
  const jwk = identity.privateKey.export({ format: 'jwk' });
  const secret = Buffer.from(jwk.d!, 'base64url');
  try {
    return encodeBech32(IDENTITY_HRP, secret);
  } finally {
    secret.fill(0);
  }
}

/** A fresh random identity, as `age-keygen` makes. */
export function generateIdentity(): AgeIdentity {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return { kind: 'X25519', privateKey, recipient: recipientFromPublicBytes(x25519PublicBytes(publicKey)) };
}

/** The lines of a key file that carry keys: [line number, text]. */
function keyLines(text: string): [number, string][] {
  const lines: [number, string][] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '' || line.startsWith('#')) return;
    lines.push([index + 1, line]);
  });
  return lines;
}

/** How many recipients a file may hold (`most`) and the error for one holding more (`count` key lines), refused before any is parsed. */
export interface RecipientsBound {
  readonly most: number;
  readonly tooMany: (count: number) => Error;
}

/**
 * Parses the text of a recipients file (as `age -R`); `name` labels messages. With `bound`, a
 * file of more key lines is refused before any is parsed: each key costs ~0.45 ms, and a 16 MiB
 * file of 266,000 keys ran some two minutes before its count was refused.
 */
export function parseRecipientsFile(text: string, name = 'recipients file', bound?: RecipientsBound): AgeRecipient[] {
  const recipients: AgeRecipient[] = [];
  const lines = keyLines(text);
  if (bound !== undefined && lines.length > bound.most) throw bound.tooMany(lines.length);
  for (const [number, line] of lines) {
    if (line.length > MAX_KEY_LINE_CHARS) throw new AgeBadRecipientError(`${name}, line ${number}: the line is too long`);
    try {
      recipients.push(parseRecipient(line));
    } catch (error) {
      if (error instanceof AgeBadRecipientError) throw new AgeBadRecipientError(`${name}, line ${number}: ${error.message}`);
      throw error;
    }
  }
  if (recipients.length === 0) throw new AgeBadRecipientError(`${name} holds no recipients`);
  return recipients;
}

/** Parses the text of an identity file (as `age -i`, X25519 keys only); `name` labels messages. */
export function parseIdentityFile(text: string, name = 'identity file'): AgeIdentity[] {
  if (text.startsWith(VERSION_PREFIX) || text.startsWith(ARMOR_BEGIN)) {
    throw new AgeBadIdentityError(`${name} is itself encrypted (a passphrase-protected key): decrypt it with "age -d" first`);
  }
  const identities: AgeIdentity[] = [];
  for (const [number, line] of keyLines(text)) {
    if (line.length > MAX_KEY_LINE_CHARS) throw new AgeBadIdentityError(`${name}, line ${number}: the line is too long`);
    identities.push(parseIdentity(line, `${name}, line ${number}`));
  }
  if (identities.length === 0) throw new AgeBadIdentityError(`${name} holds no identities (AGE-SECRET-KEY-1… lines)`);
  return identities;
}

/**
 * The text of a key file: a regular file, or a pipe or device such as `<(pass show key)`, or
 * `-` for standard input (as `age -i` reads them, so a secret need not be written to disk).
 * Read with a bound either way: a device that never ends fails at the size limit.
 * Opened O_NONBLOCK: a named FIFO with no writer blocked open(2) for good on a thread no signal
 * reaches (the CLI hung, SIGTERM included). A FIFO, socket or terminal is read on the event loop
 * instead, waiting for a writer (one may come later) or a key typed and ended with Ctrl-D, and
 * `signal` ends the wait: a terminal read on a thread, with no key typed, hung the CLI for good
 * (SIGTERM too), as the FIFO did. Any other device is read without waiting: one with nothing to give now
 * is refused. A descriptor named by path (`-`, /dev/stdin, /dev/fd/N) that is a socket is read in place.
 */
async function readKeyFile(path: string, what: string, fail: (message: string) => Error, signal?: AbortSignal): Promise<string> {
  if (path !== '-') assertLocalPath(path, what);
  const opened = path === '-' ? '/dev/stdin' : path;
  let handle: FileHandle | undefined;
  try {
    throwIfAborted(signal);
    const tooLarge = () => fail(`${what} ${JSON.stringify(path)} is larger than 16 MiB`);
    // A socket cannot be opened by name, not even as /dev/stdin (ENXIO), and a parent such as
    // Node's spawn or Python's socketpair gives standard input as one: it is read where it is.
    const descriptor = descriptorNamed(path);
    if (descriptor !== undefined && (await isSocketDescriptor(descriptor))) return await readPipe(new Socket({ fd: descriptor, readable: true, writable: false }), tooLarge, signal);
    const fd = await new Promise<number>((resolve, reject) => openFd(opened, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK, (error, opened) => (error ? reject(error) : resolve(opened))));
    const first = await new Promise<Stats>((resolve, reject) => fstat(fd, (error, stats) => (error ? closeFd(fd, () => reject(error)) : resolve(stats))));
    if (first.isFIFO() || first.isSocket()) return await readPipe(new Socket({ fd, readable: true, writable: false }), tooLarge, signal);
    if (first.isCharacterDevice() && first.rdev === PTMX_DEVICE) {
      await new Promise<void>((resolve) => closeFd(fd, () => resolve()));
      throw fail(`${what} ${JSON.stringify(path)} is the pseudo-terminal multiplexer: it opens a new terminal no one types into (it waited for good): give a file, a pipe or /dev/tty`);
    }
    if (first.isCharacterDevice() && isatty(fd)) {
      // Nothing is echoed: without a word, a terminal waiting for the key looks like a CLI that hangs.
      const tell = (text: string) => tellTerminal(opened, text);
      return await readTerminal(new TerminalStream(fd), tooLarge, signal, tell, `openclaw: ${keyFileLabel(what, path)}: type or paste it, then Ctrl-D (it is not shown)\n`);
    }
    await new Promise<void>((resolve) => closeFd(fd, () => resolve()));
    handle = await open(opened, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    const info = await handle.stat();
    if (!info.isFile() && !info.isCharacterDevice()) throw fail(`${what} ${JSON.stringify(path)} is not a file`);
    if (info.size > MAX_KEY_FILE_BYTES) throw fail(`${what} ${JSON.stringify(path)} is larger than 16 MiB`);
    const buffer = Buffer.alloc(info.isFile() ? Math.min(info.size, MAX_KEY_FILE_BYTES) + 1 : 64 * 1024);
    const pieces: Buffer[] = [];
    let total = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > MAX_KEY_FILE_BYTES) throw fail(`${what} ${JSON.stringify(path)} is larger than 16 MiB`);
      pieces.push(Buffer.from(buffer.subarray(0, bytesRead)));
    }
    buffer.fill(0);
    return textOf(pieces);
  } catch (error) {
    if (error instanceof AgeBadIdentityError || error instanceof AgeBadRecipientError || error instanceof OpenClawError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    if (code === 'EISDIR') throw fail(`${what} ${JSON.stringify(path)} is not a file`);
    if (code === 'ENOENT' || code === 'ENOTDIR') throw fail(`${what} ${JSON.stringify(path)} does not exist`);
    if (code === 'ENXIO') {
      if (await isSocketPath(opened)) throw fail(`${what} ${JSON.stringify(path)} is a socket that cannot be read`);
      throw fail(`${what} ${JSON.stringify(path)} is a device that is not there (/dev/tty outside a terminal, as under cron or setsid): give a file or a pipe`);
    }
    if (code === 'EAGAIN') throw fail(`${what} ${JSON.stringify(path)} is a device with nothing to read: give a file`);
    throw fail(`cannot read ${what} ${JSON.stringify(path)}: ${errnoMessage(error) ?? code}`);
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** The descriptor a path names itself: `-`, /dev/stdin, /dev/fd/N or /proc/self/fd/N. */
function descriptorNamed(path: string): number | undefined {
  if (path === '-' || path === '/dev/stdin') return 0;
  const match = /^(?:\/dev\/fd|\/proc\/self\/fd)\/(\d{1,9})$/.exec(path);
  return match === null ? undefined : Number(match[1]);
}

function isSocketDescriptor(descriptor: number): Promise<boolean> {
  return new Promise((resolve) => fstat(descriptor, (error, stats) => resolve(error === null && stats.isSocket())));
}

function isSocketPath(path: string): Promise<boolean> {
  return stat(path).then((stats) => stats.isSocket(), () => false);
}

function textOf(pieces: Buffer[]): string {
  const bytes = Buffer.concat(pieces);
  for (const piece of pieces) piece.fill(0);
  const text = bytes.toString('utf8');
  bytes.fill(0);
  return text;
}

/** Writes `text` to the terminal at `path` (the one a key is typed into), not waiting for it; one that cannot be written to is left alone. */
function tellTerminal(path: string, text: string): Promise<void> {
  return new Promise((resolve) => {
    openFd(path, fsConstants.O_WRONLY | fsConstants.O_NOCTTY | fsConstants.O_NONBLOCK, (error, fd) => {
      if (error !== null) return resolve();
      writeFd(fd, text, () => closeFd(fd, () => resolve()));
    });
  });
}

/** Linux's /dev/ptmx (and /dev/pts/ptmx), device 5:2: each open makes a new pseudo-terminal, whose other side no one holds. */
const PTMX_DEVICE = (5 << 8) | 2;

/** Ctrl-D, Ctrl-C, Ctrl-\\, Ctrl-Z, Ctrl-U, Ctrl-W, and the keys that erase the last character typed. */
const END_OF_INPUT = 0x04;
const INTERRUPT = 0x03;
const QUIT = 0x1c;
const SUSPEND = 0x1a;
const ERASE_LINE = 0x15;
const ERASE_WORD = 0x17;
const ERASE = new Set([0x7f, 0x08]);
const NEWLINE = 0x0a;

/**
 * A key typed or pasted into a terminal, ended with Ctrl-D, read without echoing it (the
 * terminal showed the secret key, and kept it in its scrollback): the terminal is put in raw
 * mode while it is read, and so this does what the terminal did, ending at Ctrl-D, erasing
 * with Backspace, the word with Ctrl-W and the line with Ctrl-U, and taking Ctrl-C for the interrupt it is (SIGINT
 * to this process, as the terminal sends it) and Ctrl-\\ for a quit (SIGQUIT, once the
 * terminal is restored: Node does not restore it on that signal). Ctrl-Z is not taken (it
 * was part of the key): a CLI stopped there would come back to a terminal that echoes the
 * key, so it says so and goes on reading. Restored however the read ends; Node restores it on exit too.
 */
function readTerminal(terminal: TerminalStream, tooLarge: () => Error, signal: AbortSignal | undefined, tell: (text: string) => Promise<void>, prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let typed = Buffer.alloc(1024);
    let length = 0;
    const type = (byte: number) => {
      if (length === typed.length) {
        const larger = Buffer.alloc(typed.length * 2);
        typed.copy(larger);
        typed.fill(0);
        typed = larger;
      }
      typed[length++] = byte;
    };
    const finish = (error?: Error) => {
      signal?.removeEventListener('abort', aborted);
      terminal.removeAllListeners('data');
      try {
        terminal.setRawMode(false);
      } catch {
        // the terminal is gone (hung up): nothing to restore
      }
      terminal.destroy();
      const text = error === undefined ? typed.toString('utf8', 0, length) : '';
      typed.fill(0);
      if (error === undefined) resolve(text);
      else reject(error);
    };
    const aborted = () => finish(abortedError(signal!));
    signal?.addEventListener('abort', aborted, { once: true });
    if (signal?.aborted === true) return aborted(); // while it was being opened
    try {
      terminal.setRawMode(true);
    } catch (error) {
      return finish(error as Error);
    }
    // Once nothing typed is echoed: a key pasted at once is not shown either.
    void tell(prompt);
    terminal.on('data', (chunk: Buffer) => {
      for (const byte of chunk) {
        if (byte === END_OF_INPUT) return finish();
        if (byte === INTERRUPT) {
          chunk.fill(0);
          process.kill(process.pid, 'SIGINT');
          return;
        }
        if (byte === QUIT) {
          chunk.fill(0);
          finish(new AbortedError('interrupted by SIGQUIT'));
          process.kill(process.pid, 'SIGQUIT');
          return;
        }
        if (byte === SUSPEND) void tell('openclaw: Ctrl-Z does nothing while the key is read (stopped, this would leave the terminal showing what is typed); Ctrl-C stops\n');
        else if (byte === ERASE_LINE || byte === ERASE_WORD) {
          const lineStart = length === 0 ? 0 : typed.lastIndexOf(NEWLINE, length - 1) + 1;
          // Ctrl-W, as the terminal's WERASE: the blanks before the cursor, then the word before them, within the line.
          let from = byte === ERASE_LINE ? lineStart : length;
          while (from > lineStart && isBlank(typed[from - 1]!)) from--;
          while (from > lineStart && !isBlank(typed[from - 1]!)) from--;
          typed.fill(0, from, length);
          length = from;
        } else if (ERASE.has(byte)) length = Math.max(0, length - 1);
        else if (length >= MAX_KEY_FILE_BYTES) return finish(tooLarge());
        else type(byte === 0x0d ? 0x0a : byte);
      }
      chunk.fill(0);
    });
    terminal.once('end', () => finish());
    terminal.once('error', (error) => finish(error));
  });
}

function isBlank(byte: number): boolean {
  return byte === 0x20 || byte === 0x09;
}

/** Everything a pipe's writers (or a terminal's typist) send until end of file, at most 16 MiB; `signal` ends the wait. */
function readPipe(pipe: Socket, tooLarge: () => Error, signal: AbortSignal | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const pieces: Buffer[] = [];
    let total = 0;
    const finish = (error?: Error) => {
      signal?.removeEventListener('abort', aborted);
      pipe.destroy();
      if (error === undefined) resolve(textOf(pieces));
      else {
        for (const piece of pieces) piece.fill(0);
        reject(error);
      }
    };
    const aborted = () => finish(abortedError(signal!));
    signal?.addEventListener('abort', aborted, { once: true });
    if (signal?.aborted === true) aborted(); // while it was being opened
    pipe.on('data', (chunk: Buffer) => {
      total += chunk.length;
      pieces.push(chunk);
      if (total > MAX_KEY_FILE_BYTES) finish(tooLarge());
    });
    pipe.once('end', () => finish());
    pipe.once('error', (error) => finish(error));
  });
}

/** How messages name a key file: `-` is standard input (as age reads it). */
function keyFileLabel(what: string, path: string): string {
  return `${what} ${JSON.stringify(path)}${path === '-' ? ' (standard input)' : ''}`;
}

/** Reads and parses an identity file from disk. */
export async function loadIdentityFile(path: string, signal?: AbortSignal): Promise<AgeIdentity[]> {
  if (looksLikeSecretKey(path)) {
    throw new AgeBadIdentityError('--identity takes the path of a file holding the identity, not the secret key itself (not shown here): put the key in a file, or give it through a pipe, --identity <(pass show KEY)');
  }
  const text = await readKeyFile(path, 'identity file', (message) => new AgeBadIdentityError(message), signal);
  return parseIdentityFile(text, keyFileLabel('identity file', path));
}

/** Reads and parses a recipients file from disk (with `bound`, refused when it holds more keys: parseRecipientsFile). */
export async function loadRecipientsFile(path: string, signal?: AbortSignal, bound?: RecipientsBound): Promise<AgeRecipient[]> {
  if (looksLikeSecretKey(path)) {
    throw new AgeBadRecipientError('a secret key (AGE-SECRET-KEY-…) was given as a recipients file: keep it secret, and give a file of public keys instead (age-keygen -y KEY_FILE prints one)');
  }
  const text = await readKeyFile(path, 'recipients file', (message) => new AgeBadRecipientError(message), signal);
  return parseRecipientsFile(text, keyFileLabel('recipients file', path), bound);
}
