// `--pipe "command"`: a filter between the archive and its location, typically encryption
// (`age -r age1…` when writing, `age -d -i key.txt` when reading). The command runs as
// `sh -c command` with pipefail (pipefailShell: bash --posix where /bin/sh lacks it), so that a pipeline
// fails when any of its processes does, not only its last; writing feeds the archive to its stdin and stores its stdout, reading
// feeds the stored bytes to its stdin and returns its stdout.
//
// The command's output only counts once the command has exited with status 0 after
// reading all of its input: its stdout reaches the inner location through a gate that is
// ended only then, and is destroyed with PipeCommandError otherwise, so a failing command
// (or one that exits early, or dies mid-stream) makes the inner write fail and leave
// nothing behind instead of storing a truncated archive. "All of its input" is the kernel's
// word, not a write's: a small archive fits whole in the socket the command reads from, so
// every write succeeded for `head -c 100` exiting 0 ("Backed up … 100 B stored"); the socket
// is read on our side too, and a command whose processes closed it with bytes unread makes it
// fail (ECONNRESET). A process the command leaves running that still holds its input once the
// command has exited makes it fail too: what that process read is in no output. A command that read bytes and wrote
// none (`age -r … -o FILE`, output sent to a file instead of stdout) fails too: no archive is
// empty, and storing nothing would pass for a backup. Nor does one, writing to a name ending in
// `.age`, whose output does not start as an age file does (a whole, well-formed age v1 header
// with bytes after it, or age -a's armor): a wrapper script's "encrypting…" on stdout before
// age's bytes, a tool other than age, CRLF line ends from a text conversion, or a header alone
// (age died in a pipeline whose status hid it), was stored under that name and reported backed
// up, and could not be read back. An output that is an age file, under any name, is also
// measured against what age makes of the archive read (Filter.ageOutputWhole): one cut short,
// or of something else than that archive, is stored with a note and nothing recording it whole
// (WriteOptions.bodyWhole). If the archive itself fails
// (the body errors), the command is killed rather than being shown an end of input.
// Backpressure holds both ways (plain stream piping); EPIPE on stdin when the command
// quits early is expected and judged together with its exit status. The abort signal
// kills the command (SIGTERM, then SIGKILL after a grace period): the shell and every process
// below it (process-tree.ts), and the write or read settles only once they are all gone, so
// no `age`, `cat` or `sleep` of the command outlives the CLI. A command that ends by itself
// is waited for until its standard output and stderr close, LEFTOVER_WAIT_MS at most after its
// exit: a process it left running that holds its output then fails it, one that holds only its
// stderr is no longer read (the write's result notes it). What it leaves running is its own. If the process exits meanwhile (a second
// Ctrl-C exits at once), the tree gets SIGKILL if it was already told to stop, else SIGTERM.
//
// Errors are one line with the exit status and the command's telling stderr line (the
// last one naming an error, else the last one). Messages never include the command text:
// it may hold a passphrase.
//
// The command runs in this process's environment without the store's credentials
// (STORE_CREDENTIAL_VARIABLES): `age`, `gpg` or `zstd` need none of them, and a command
// that prints or passes on its environment (a debug log, `env` in a crash report, a child
// of its own) showed the S3 secret key and session token. A command that needs AWS keys of its
// own is given them under another name in its text (`AWS_SECRET_ACCESS_KEY=$KMS_SECRET cmd`)
// or takes a profile (`AWS_PROFILE=kms cmd`), which is kept.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { Socket } from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import { AgeHeaderLimitError, NO_MORE_PROCESSES, OpenClawError, PipeCommandError, StorageError } from '../errors.js';
import { AgeHeaderReader, ARMOR_BEGIN, ARMOR_END } from '../age/header.js';
import { agePayloadBytes } from '../age/stream.js';
import { AGE_MAGIC_BYTES, isAgeFile, isArmoredAgeFile, startsLikeAgeFile } from '../age/probe.js';
import { hangUpIgnored } from '../hang-up.js';
import { freezeTree, signalTree, survivors, type TreeMember } from './process-tree.js';
import { startsWithMarker } from './archive-store.js';
import { abortedError, destroyQuietly, onAbort, throwIfAborted } from './streams.js';
import { startOf } from '../format.js';
import { redact } from './redact.js';
import type { ArchiveLocation, CheckWritableOptions, ReadOptions, VerifiedMark, WriteOptions, WriteResult } from './types.js';

export interface PipeCommandOptions {
  /** Shell that runs the command (with pipefail if it has it). @default pipefailShell() */
  readonly shell?: string;
  /** Time between SIGTERM and SIGKILL when the command must stop. @default 2000 */
  readonly killGraceMs?: number;
  /** How long its output and stderr are waited for to close once the command has exited. @default LEFTOVER_WAIT_MS */
  readonly leftoverWaitMs?: number;
  /** The stored name ends in `.age`: a write's output must start as an age file. */
  readonly writesAge?: boolean;
}

/**
 * The variables holding the store's credentials (the SDK's default chain and the CLI's own
 * OPENCLAW_S3_*), left out of the command's environment.
 */
export const STORE_CREDENTIAL_VARIABLES: readonly string[] = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_SECURITY_TOKEN',
  'AWS_CREDENTIAL_EXPIRATION',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN',
  'OPENCLAW_S3_ACCESS_KEY',
  'OPENCLAW_S3_SECRET_KEY',
];

/** `environment` without STORE_CREDENTIAL_VARIABLES. */
export function pipeEnvironment(environment: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const kept = { ...environment };
  for (const name of STORE_CREDENTIAL_VARIABLES) delete kept[name];
  return kept;
}

/** The least an age file holds after its header: the payload's nonce and one chunk's tag. */
const AGE_MIN_PAYLOAD_BYTES = 32;

/** Bytes of the command's stderr kept for error messages. */
const STDERR_TAIL_BYTES = 4096;
const MAX_STDERR_LINE = 300;
/** How often a stopping command's processes are looked at until they are all gone. */
const REAP_POLL_MS = 20;
/** How long the processes sent SIGKILL are waited for to exit. */
const KILLED_EXIT_WAIT_MS = 5000;
/**
 * How long, once the command has exited, a process it left running may keep its standard output
 * (then the command fails: what that process may yet write would be missing) or its standard
 * error (then it is no longer read: the output is whole) open. Waited for as a shell pipeline
 * would before, `cat; sleep 100 >&2 &` held the CLI for 100 s, and `cat; sleep 100 &` stored
 * its output after 100 s, though the command's status had said nothing of what came after it.
 */
const LEFTOVER_WAIT_MS = 2000;

export function withPipeCommand(inner: ArchiveLocation, command: string, options: PipeCommandOptions = {}): ArchiveLocation {
  return new PipeLocation(inner, command, options);
}

class PipeLocation implements ArchiveLocation {
  readonly display: string;
  readonly piped = true;

  constructor(
    private readonly inner: ArchiveLocation,
    private readonly command: string,
    private readonly options: PipeCommandOptions,
  ) {
    this.display = `${inner.display} (through the --pipe command)`;
  }

  get endpoint(): ArchiveLocation['endpoint'] {
    return this.inner.endpoint;
  }

  get localPath(): string | undefined {
    return this.inner.localPath;
  }

  checkWritable(options: CheckWritableOptions): Promise<void> {
    return this.inner.checkWritable(options);
  }

  /** The mark belongs to the stored bytes, which the command only filters. */
  markVerified(mark: VerifiedMark, options?: ReadOptions): Promise<void> {
    if (this.inner.markVerified === undefined) return Promise.reject(new StorageError(`${this.inner.display} cannot record a verification`, 'NOT_SUPPORTED'));
    return this.inner.markVerified(mark, options);
  }

  forgetWhole(options?: ReadOptions): Promise<void> {
    return this.inner.forgetWhole?.(options) ?? Promise.resolve();
  }

  /** The digest belongs to the manifest the command's output carries, which a backup through it recorded. */
  recordedDigest(options?: ReadOptions & { readonly expected?: string }): Promise<string | undefined> {
    return this.inner.recordedDigest?.(options) ?? Promise.resolve(undefined);
  }

  async write(body: Readable, options: WriteOptions): Promise<WriteResult> {
    const { signal } = options;
    try {
      throwIfAborted(signal);
    } catch (error) {
      destroyQuietly(body);
      throw error;
    }
    const filter = new Filter(this.command, this.options, body, signal, this.options.writesAge === true);
    try {
      const result = await this.inner.write(filter.output, { ...options, bodyWhole: () => filter.outputWhole() });
      await filter.closed;
      const notes = [
        ...(filter.withoutPipefail ? [WITHOUT_PIPEFAIL_NOTE] : []),
        ...(filter.stderrLetGo ? [stderrLetGoNote(this.options)] : []),
        ...(filter.ageOutputWhole() === false ? [NOT_AGE_SIZED_NOTE] : []),
        ...(filter.outputWhole() === false && filter.ageOutputWhole() === undefined ? [NOT_JUDGED_NOTE] : []),
      ];
      return notes.length === 0 ? result : { ...result, note: notes.join('; ') };
    } catch (error) {
      filter.fail(error);
      await filter.closed;
      destroyQuietly(body);
      throw filter.failure ?? error;
    }
  }

  async read(options: ReadOptions = {}): Promise<Readable> {
    // The command's output is not the stored bytes: their size says nothing about it.
    const source = await this.inner.read({ signal: options.signal });
    if (options.signal?.aborted) {
      destroyQuietly(source);
      throw abortedError(options.signal);
    }
    return new Filter(this.command, this.options, source, options.signal).output;
  }
}

/** Commands not yet settled, told when the process exits under them. */
const running = new Set<Filter>();
let listening = false;

function track(filter: Filter): void {
  running.add(filter);
  if (listening) return;
  listening = true;
  process.on('exit', () => {
    for (const each of running) each.leaving();
  });
}

/**
 * One run of the command: `input` goes to its stdin, its stdout comes out of `output`,
 * which ends only after a clean exit and is destroyed with the first failure otherwise.
 */
class Filter {
  readonly output = new PassThrough();
  /** Settles once the command has exited (or never started). */
  readonly closed: Promise<void>;
  failure: Error | undefined;

  private readonly child: ChildProcess | undefined;
  /**
   * The command's standard input: our end of the socket pair, which we write and also read.
   * Once every process holding the other end has closed it, the read ends ('end') if they
   * read everything written, or fails with ECONNRESET if bytes were left unread (the kernel's
   * word for a Unix socket closed with data in its receive queue).
   */
  private feed: Socket | undefined;
  private stderrTail = Buffer.alloc(0);
  /** Whether `stderrTail` lost bytes before it (the command wrote more than STDERR_TAIL_BYTES): its first word may be cut. */
  private stderrCut = false;
  private inputEnded = false;
  private inputBytes = 0;
  private outputBytes = 0;
  /** The first AGE_MAGIC_BYTES of the command's output. */
  private outputStart = Buffer.alloc(0);
  /**
   * What the output's start shows (followed always; failing the write only when it must be an age file): a binary one's header is read
   * whole (`reading` until its MAC line; then `header` its length), which takes a file whose
   * line ends a text tool converted, or one cut after its header, for what it is; one past the
   * reader's bounds (`large`: thousands of recipients) is taken as the age file it starts as.
   */
  private ageOutput:
    | { readonly state: 'start' | 'large' | 'bad' }
    | { readonly state: 'armored'; readonly armor: ArmoredAgeOutput }
    | { readonly state: 'reading'; readonly reader: AgeHeaderReader }
    | { readonly state: 'header'; readonly bytes: number } = { state: 'start' };
  private stdinError: NodeJS.ErrnoException | undefined;
  /** A process the command left running still held its input once it had exited (stopWaitingForInput). */
  private inputHeldAfterExit = false;
  /** A process the command left running held its stderr LEFTOVER_WAIT_MS after it exited: no longer read. */
  stderrLetGo = false;
  /** No shell here has pipefail (/bin/sh lacks it and bash is not installed): only a pipeline's last process counted. */
  withoutPipefail = false;
  private leftoverTimer: NodeJS.Timeout | undefined;
  private exited = false;
  /** The command's processes when it was told to stop (SIGTERM); undefined before. */
  private stopping: TreeMember[] | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  /** The processes sent SIGKILL after the grace, and when; undefined before. */
  private killed: { readonly members: readonly TreeMember[]; readonly at: number } | undefined;

  constructor(
    command: string,
    private readonly options: PipeCommandOptions,
    private readonly input: Readable,
    signal: AbortSignal | undefined,
    private readonly writesAge = false,
  ) {
    let markClosed!: () => void;
    this.closed = new Promise<void>((resolve) => (markClosed = resolve));
    // A failure can come before whoever consumes `output` listens to it; it stays on the
    // stream (`errored`) for them, and must not crash the process meanwhile.
    this.output.on('error', () => {});

    input.once('error', (error) => this.fail(error));
    input.once('end', () => (this.inputEnded = true));
    input.on('data', (chunk: Buffer) => (this.inputBytes += chunk.length));

    let child: ChildProcess;
    try {
      // Under nohup the command ignores hang-ups too, as it would had a shell started it. On
      // the command's own first line, so that the shell's errors name the lines it wrote
      // (`sh: 1: zstdd: not found`, not `sh: 2:`), as without nohup.
      // Its input comes on fd 3, made its standard input before it runs: Node's socket for a
      // child's stdin is write-only on our side, one for fd 3 reads too (`feed`).
      const shell = options.shell === undefined ? pipefailShell() : { path: options.shell, args: [], pipefail: pipefailAnswer({ path: options.shell, args: [] }) === true };
      this.withoutPipefail = !shell.pipefail;
      const script = `exec <&3 3<&-; ${shell.pipefail ? 'set -o pipefail; ' : ''}${hangUpIgnored() ? "trap '' HUP; " : ''}${command}`;
      child = spawn(shell.path, [...shell.args, '-c', script], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], env: pipeEnvironment(process.env) });
    } catch (error) {
      this.child = undefined;
      this.fail(new PipeCommandError(couldNotStart(error), { cause: error }));
      markClosed();
      return;
    }
    this.child = child;
    const feed = child.stdio[3] as Socket;
    const stdout = child.stdout!;
    const stderr = child.stderr!;
    this.feed = feed;

    track(this);
    const settle = () => {
      clearTimeout(this.leftoverTimer);
      running.delete(this);
      markClosed();
    };
    child.once('error', (error) => {
      // Spawning failed (no shell) or a kill failed; either way no usable command.
      this.fail(new PipeCommandError(couldNotStart(error), { cause: error }));
      this.exited = true;
      settle();
    });
    child.once('close', (code, killedBy) => {
      this.exited = true;
      // Reaped: its pid may be another process's from now on (told apart by the start
      // time, except without /proc).
      this.stopping = this.stopping?.filter((member) => member.pid !== child.pid);
      void this.restOfInput(code, killedBy)
        .then(() => {
          this.finish(code, killedBy);
          return this.reaped();
        })
        .then(settle);
    });
    stderr.on('data', (chunk: Buffer) => {
      const joined = Buffer.concat([this.stderrTail, chunk]);
      if (joined.length > STDERR_TAIL_BYTES) this.stderrCut = true;
      this.stderrTail = joined.subarray(Math.max(0, joined.length - STDERR_TAIL_BYTES));
    });
    // EPIPE / ERR_STREAM_DESTROYED when the command stops reading, ECONNRESET when it exits
    // leaving bytes unread in the socket's buffer (a small archive fits there whole, so every
    // write succeeds: `head -c 100` exiting 0 passed for a backup): judged at exit.
    feed.on('error', (error: NodeJS.ErrnoException) => (this.stdinError ??= error));
    // What the command writes to its standard input, if anything, is dropped.
    feed.on('data', () => {});
    input.pipe(feed);
    // A process the command left running may still hold its input (and may yet read it):
    // `close` would wait for `feed` to close, so once the shell has exited and its output has
    // closed (what was waited for before), the input's verdict is waited for no longer.
    let open = 3;
    const closedOne = () => {
      if (--open === 0) this.stopWaitingForInput();
    };
    let stdoutClosed = false;
    let stderrClosed = false;
    const leftoverWait = options.leftoverWaitMs ?? LEFTOVER_WAIT_MS;
    // Held back by us (the location takes the output slower than it comes: an upload's part):
    // its end may be in the pipe, unread. The bound runs again once it flows.
    const heldBackByUs = () => !stdoutClosed && (stdout.readableFlowing === false || stdout.readableLength > 0);
    const judgeLeftovers = () => {
      if (heldBackByUs()) {
        this.leftoverTimer = setTimeout(judgeLeftovers, leftoverWait);
        return;
      }
      // An end the kernel already has is delivered by a turn of the loop that polls (as in
      // stopWaitingForInput); the location may have paused the output again meanwhile.
      setImmediate(() =>
        setImmediate(() => {
          if (heldBackByUs()) this.leftoverTimer = setTimeout(judgeLeftovers, leftoverWait);
          else if (!stdoutClosed) this.fail(new PipeCommandError(`pipe command exited, but a process it left running still held its standard output ${seconds(leftoverWait)} later: what it may yet write would be missing (wait for it in the command, or send its output elsewhere)`));
          else if (!stderrClosed) {
            this.stderrLetGo = true;
            stderr.destroy();
          }
        }),
      );
    };
    child.once('exit', () => {
      closedOne();
      this.leftoverTimer = setTimeout(judgeLeftovers, leftoverWait);
    });
    stdout.once('close', () => {
      stdoutClosed = true;
      closedOne();
    });
    stderr.once('close', () => {
      stderrClosed = true;
      closedOne();
    });
    stdout.on('data', (chunk: Buffer) => {
      this.outputBytes += chunk.length;
      this.readAgeOutput(chunk);
    });
    stdout.pipe(this.output, { end: false });

    // The reader of `output` went away (or it was destroyed by fail): stop everything.
    this.output.once('close', () => {
      if (!this.output.writableFinished) this.stop();
    });
    const stopListening = onAbort(signal, () => this.fail(abortedError(signal)));
    void this.closed.then(stopListening);
  }

  /**
   * The shell has exited and its output is closed. When its processes alone held its input,
   * the kernel said so (EOF or ECONNRESET on `feed`) before the exit was reported, and a turn of
   * the event loop that polls (two checks: one after a poll begun since) delivers it; if it has
   * not come by then, something the command left running holds the input: it is let go, and
   * the command fails (finish): what that process read, or may yet read, is in no output.
   */
  private stopWaitingForInput(): void {
    setImmediate(() =>
      setImmediate(() => {
        const feed = this.feed;
        if (feed === undefined || feed.readableEnded || feed.destroyed) return;
        this.inputHeldAfterExit = true;
        feed.destroy();
      }),
    );
  }

  /**
   * Settles once it is known whether the input held more than the command was given. A command
   * that read every byte written and exited without waiting for the end of its input (`head -c
   * SIZE`, a decoder that stops at its format's end) may exit before our side of the input has
   * seen its own end (a file's or the archive's last read, an instant later): its processes
   * closed `feed` with nothing unread in it (EOF, no ECONNRESET), so only what the input still
   * holds decides. Before, such a command was refused at random ("exited before reading all of
   * its input", 5 restores in 20 through `head -c` of the archive's size).
   */
  private restOfInput(code: number | null, killedBy: NodeJS.Signals | null): Promise<void> {
    const input = this.input;
    const feed = this.feed;
    const judged = code !== 0 || killedBy !== null || this.failure !== undefined || this.stopping !== undefined || this.stdinError !== undefined;
    if (judged || this.inputEnded || feed === undefined || !feed.readableEnded || input.destroyed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        input.off('data', more);
        input.off('end', done);
        input.off('close', done);
        resolve();
      };
      // A byte more was never given to the command: it did not read all of its input.
      const more = (chunk: Buffer) => {
        if (chunk.length > 0) done();
      };
      input.on('data', more);
      input.once('end', done);
      input.once('close', done);
      input.resume();
    });
  }

  /** Follows the output as an age file (ageOutput): failing it at once when it must be one (`writesAge`) and does not start as one. */
  private readAgeOutput(chunk: Buffer): void {
    let rest = chunk;
    if (this.ageOutput.state === 'start') {
      const taken = Math.min(rest.length, AGE_MAGIC_BYTES - this.outputStart.length);
      this.outputStart = Buffer.concat([this.outputStart, rest.subarray(0, taken)]);
      rest = rest.subarray(taken);
      if (this.outputStart.length < AGE_MAGIC_BYTES) return;
      if (isArmoredAgeFile(this.outputStart)) {
        this.ageOutput = { state: 'armored', armor: new ArmoredAgeOutput() };
        rest = Buffer.concat([this.outputStart, rest]);
      } else if (!isAgeFile(this.outputStart)) this.ageOutput = { state: 'bad' };
      else {
        this.ageOutput = { state: 'reading', reader: new AgeHeaderReader() };
        rest = Buffer.concat([this.outputStart, rest]);
      }
    }
    if (this.ageOutput.state === 'armored') this.ageOutput.armor.push(rest);
    if (this.ageOutput.state === 'reading' && rest.length > 0) {
      try {
        const done = this.ageOutput.reader.push(rest);
        if (done !== undefined) this.ageOutput = { state: 'header', bytes: done.header.length };
      } catch (error) {
        // A header past the reader's bounds (over 4,096 recipients, or 1 MiB) is age's own
        // to judge (age reads one back): taken as it started, an age file.
        this.ageOutput = { state: error instanceof AgeHeaderLimitError ? 'large' : 'bad' };
      }
    }
    // Known now: stopped before more is stored (its bytes may be the archive's own, unencrypted:
    // `--pipe cat`), as it would be at its exit.
    if (this.writesAge && this.ageOutput.state === 'bad') this.fail(notAgeError(this.notAgeOutput()!));
  }

  /**
   * Once the command has exited 0: whether its output, a binary age file, is as long as age
   * makes one of the input it read (header, then agePayloadBytes); false for one cut short
   * (`age -r … | head -c N` exited 0) or one of something else than that input (`zstd | age`,
   * which a record cannot vouch for either); an armored one (`age -a`) likewise, by the bytes its
   * base64 lines hold, and only if it ends with its END line; undefined when that cannot be
   * told (no age file, a header past the reader's bounds).
   */
  ageOutputWhole(): boolean | undefined {
    const output = this.ageOutput;
    if (output.state === 'armored') return output.armor.holds(agePayloadBytes(this.inputBytes));
    if (output.state === 'reading') return false;
    if (output.state !== 'header') return undefined;
    return this.outputBytes === output.bytes + agePayloadBytes(this.inputBytes);
  }

  /**
   * Whether the output is whole as far as this tool can tell (WriteOptions.bodyWhole): an age
   * file by ageOutputWhole; our own archive (`cat`, `tee`) judges itself by its footer
   * (undefined); anything else (`gpg`, `gzip`, an age header past the reader's bounds) cannot be
   * told whole, so nothing may record it whole (false). Before, such an output cut short and
   * exiting 0 (`gzip | { head -c 200; cat >/dev/null; }`) got its size tag on S3 and was listed
   * as the tenant's newest whole backup: prune --keep-last 1 would have removed both real ones.
   */
  outputWhole(): boolean | undefined {
    const whole = this.ageOutputWhole();
    if (whole !== undefined) return whole;
    return startsWithMarker(this.outputStart) ? undefined : false;
  }

  /** Why the output is no age file, when it must be one and is not; undefined when it is. */
  private notAgeOutput(): string | undefined {
    const output = this.ageOutput;
    if (output.state === 'armored' || output.state === 'large' || (output.state === 'header' && this.outputBytes - output.bytes >= AGE_MIN_PAYLOAD_BYTES)) return undefined;
    if (output.state === 'header') return `its output is an age header with nothing encrypted after it (${this.outputBytes} bytes)`;
    if (output.state === 'reading' || (output.state === 'bad' && startsLikeAgeFile(this.outputStart))) {
      return 'its output starts as an age file, but its header is cut short or damaged (converted as text, CRLF line ends?)';
    }
    return 'its output does not start with "age-encryption.org/v1" (does it print anything else on its standard output?)';
  }

  /** Records the first failure, fails `output` with it and stops the command. */
  fail(error: unknown): void {
    if (this.failure === undefined) {
      this.failure = error instanceof Error ? error : new PipeCommandError(String(error));
      this.output.destroy(this.failure);
    }
    this.stop();
  }

  private stop(): void {
    const child = this.child;
    // The tree is read first: closing its input can end the shell at once, and what it
    // started then belongs to init, out of sight. It is read frozen (stopped until it is
    // signalled): a shell that forks meanwhile would leave the new process out of it, running.
    const stopping = child?.pid !== undefined && !this.exited && child.exitCode === null && child.signalCode === null && this.stopping === undefined ? freezeTree([child.pid]) : undefined;
    destroyQuietly(this.input);
    if (child === undefined || this.exited) return;
    this.feed?.destroy();
    child.stdout?.destroy();
    child.stderr?.destroy();
    if (stopping !== undefined) {
      this.stopping = stopping;
      signalTree(stopping, 'SIGTERM');
      this.killTimer = setTimeout(() => {
        this.killed = { members: signalTree(this.stopping ?? [], 'SIGKILL', true), at: Date.now() };
      }, this.options.killGraceMs ?? 2000);
    }
  }

  /**
   * The process is leaving while the command runs (a second Ctrl-C exits at once): no timer
   * runs after this, so its processes are signalled now.
   */
  leaving(): void {
    const child = this.child;
    if (this.stopping !== undefined) signalTree(this.stopping, 'SIGKILL', true);
    // Not yet reaped (no exit code), so its pid is still its own.
    else if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) signalTree(freezeTree([child.pid]), 'SIGTERM');
  }

  /**
   * Settles once every process of a stopped command is gone (SIGKILL after the grace). A
   * process sent SIGKILL is gone only once the kernel has run its exit, which a loaded machine
   * can put off for a while: those are waited for too, KILLED_EXIT_WAIT_MS at most (one stuck
   * in an uninterruptible wait, on a hung network mount, may not exit at all).
   */
  private async reaped(): Promise<void> {
    const stopping = this.stopping;
    if (stopping !== undefined) {
      for (;;) {
        const killed = this.killed;
        if (killed !== undefined && Date.now() - killed.at > KILLED_EXIT_WAIT_MS) break;
        if (survivors(killed?.members ?? stopping).length === 0) break;
        await new Promise((resolve) => setTimeout(resolve, REAP_POLL_MS));
      }
    }
    clearTimeout(this.killTimer);
  }

  private finish(code: number | null, killedBy: NodeJS.Signals | null): void {
    if (this.failure !== undefined) return;
    // Stopped because the reader of its output went away (a write whose location failed: a
    // full disk, a refused upload): how it then ended says nothing, and the reader's own
    // error is the one to report (before: "pipe command was killed by SIGTERM" for ENOSPC).
    if (this.stopping !== undefined) return;
    const stderr = telltaleLine(this.stderrTail, this.stderrCut);
    const detail = stderr === undefined ? '' : `: ${stderr}`;
    if (killedBy !== null) {
      this.fail(new PipeCommandError(`pipe command was killed by ${killedBy}${detail}`));
    } else if (code !== 0) {
      this.fail(new PipeCommandError(`pipe command failed with exit code ${code}${killedInPipeline(code)}${detail}`));
    } else if (this.inputHeldAfterExit) {
      this.fail(new PipeCommandError(`pipe command exited, but a process it left running still held its standard input: what it read is not in the output (start it with </dev/null)${detail}`));
    } else if (!this.inputEnded || this.stdinError !== undefined) {
      this.fail(new PipeCommandError(`pipe command exited before reading all of its input${detail}`));
    } else if (this.inputBytes > 0 && this.outputBytes === 0) {
      this.fail(new PipeCommandError(`pipe command read ${this.inputBytes} bytes and wrote nothing to its standard output (does it write to a file instead, e.g. with -o?)${detail}`));
    } else if (this.writesAge && this.notAgeOutput() !== undefined) {
      this.fail(notAgeError(this.notAgeOutput()!));
    } else {
      this.output.end();
    }
  }
}

/** A shell to run the command: its path, the arguments before `-c`, and whether it has pipefail. */
interface CommandShell {
  readonly path: string;
  readonly args: readonly string[];
  readonly pipefail: boolean;
}

/**
 * The shell that runs the command, and whether it fails a pipeline when any of its processes
 * fails (pipefail) rather than only when the last one does: without it, `gpg -e … | cat` or
 * `{ head -c 1000; exit 2; } | cat` exited 0 and its cut-short output was stored as a backup.
 * /bin/sh when it has pipefail (bash, busybox ash, dash from 0.5.13), else bash when it is
 * installed (Debian's dash 0.5.12 has none), in POSIX mode as /bin/sh would be (which also
 * keeps it from sourcing $BASH_ENV, whose output came before the archive's), else /bin/sh
 * without it (a backup notes it: WITHOUT_PIPEFAIL_NOTE). Known once per process.
 */
export function pipefailShell(): CommandShell {
  if (chosenShell !== undefined) return chosenShell;
  const candidates = [
    { path: '/bin/sh', args: [] },
    { path: '/bin/bash', args: ['--posix'] },
    { path: '/usr/bin/bash', args: ['--posix'] },
  ].filter((candidate) => existsSync(candidate.path));
  for (const candidate of candidates) {
    const pipefail = pipefailAnswer(candidate);
    if (pipefail === undefined) return { path: '/bin/sh', args: [], pipefail: false }; // no answer now (EAGAIN): asked again next time
    if (pipefail) return (chosenShell = { ...candidate, pipefail });
  }
  return (chosenShell = { path: '/bin/sh', args: [], pipefail: false });
}
let chosenShell: CommandShell | undefined;

/** Whether `shell` takes `set -o pipefail` (dash exits at an option it lacks); undefined when it could not be asked. */
function pipefailAnswer(shell: Omit<CommandShell, 'pipefail'>): boolean | undefined {
  const probe = spawnSync(shell.path, [...shell.args, '-c', 'set -o pipefail'], { stdio: 'ignore' });
  if (probe.error !== undefined) return (probe.error as NodeJS.ErrnoException).code === 'ENOENT' ? false : undefined;
  return probe.status === 0;
}

/** A status above 128 under pipefail may be a process of the pipeline killed by a signal (SIGPIPE: the next one quit early). */
function killedInPipeline(code: number | null): string {
  if (code === null || code <= 128) return '';
  const name = Object.entries(osConstants.signals).find(([, number]) => number === code - 128)?.[0];
  return name === undefined ? '' : ` (128 + ${name})`;
}

/** Longer than any line of an armored age file (64 columns; its BEGIN and END lines): no armor. */
const MAX_ARMOR_LINE_CHARS = 1_024;
/** The columns of every line of an armored age file's body but its last. */
const ARMOR_COLUMNS = 64;

/**
 * Follows an ASCII-armored age file (`age -a`) as it streams by, for Filter.ageOutputWhole: how
 * many bytes of the binary file its base64 lines hold, the binary header's length (decoded
 * from its first lines), and whether it ended with its END line (then only blank lines).
 * Before, an armored output was not judged at all: `age -a -r R | head -c 300` exiting 0
 * stored 300 bytes with no note, and on S3 a size tag of 300 that listed it whole (counted
 * by prune and --skip-existing as the tenant's newest backup).
 */
class ArmoredAgeOutput {
  private line = '';
  private lines = 0;
  private decodedBytes = 0;
  private reader: AgeHeaderReader | undefined = new AgeHeaderReader();
  private headerBytes: number | undefined;
  /** `large`: a header past the reader's bounds, taken as age's own to judge (as a binary one). */
  private state: 'body' | 'ended' | 'malformed' | 'large' = 'body';
  private finished = false;
  /** A line of the body shorter than 64 columns, or padded, was read: it must be its last. */
  private shortLine = false;

  push(chunk: Buffer): void {
    for (let offset = 0; offset < chunk.length && this.state !== 'malformed'; ) {
      const newline = chunk.indexOf(0x0a, offset);
      const end = newline === -1 ? chunk.length : newline;
      // A whole line of the body past the header, as age writes all but its last (64 columns): counted without a string of it.
      if (newline !== -1 && this.line === '' && this.reader === undefined && this.state === 'body' && !this.shortLine && end - offset === ARMOR_COLUMNS && chunk[offset] !== 0x2d) {
        const padding = chunk[end - 1] === 0x3d ? (chunk[end - 2] === 0x3d ? 2 : 1) : 0;
        this.decodedBytes += (ARMOR_COLUMNS / 4) * 3 - padding;
        if (padding > 0) this.shortLine = true;
        this.lines++;
        offset = newline + 1;
        continue;
      }
      if (this.line.length + end - offset > MAX_ARMOR_LINE_CHARS) {
        this.state = 'malformed';
        return;
      }
      this.line += chunk.toString('latin1', offset, end);
      if (newline === -1) return;
      this.endLine();
      offset = newline + 1;
    }
  }

  /** Whether the output, now ended, is an armored age file of a header and `payloadBytes` (undefined: cannot tell). */
  holds(payloadBytes: number): boolean | undefined {
    if (!this.finished && this.line !== '') this.endLine();
    this.finished = true;
    if (this.state === 'large') return undefined;
    return this.state === 'ended' && this.headerBytes !== undefined && this.decodedBytes === this.headerBytes + payloadBytes;
  }

  private endLine(): void {
    const line = this.line.endsWith('\r') ? this.line.slice(0, -1) : this.line;
    this.line = '';
    if (this.state === 'malformed' || this.state === 'large') return;
    if (this.lines++ === 0) {
      if (line !== ARMOR_BEGIN) this.state = 'malformed';
      return;
    }
    if (this.state === 'ended') {
      if (line.trim() !== '') this.state = 'malformed';
      return;
    }
    if (line === ARMOR_END) {
      this.state = 'ended';
      return;
    }
    // Only the last line of the body may be shorter than 64 columns (or hold padding).
    if (this.shortLine || line.length % 4 !== 0 || line.length > ARMOR_COLUMNS || !/^[A-Za-z0-9+/]*={0,2}$/.test(line)) {
      this.state = 'malformed';
      return;
    }
    const padding = line.endsWith('==') ? 2 : line.endsWith('=') ? 1 : 0;
    if (line.length < ARMOR_COLUMNS || padding > 0) this.shortLine = true;
    this.decodedBytes += (line.length / 4) * 3 - padding;
    if (this.reader === undefined) return;
    try {
      const done = this.reader.push(Buffer.from(line, 'base64'));
      if (done !== undefined) {
        this.headerBytes = done.header.length;
        this.reader = undefined;
      }
    } catch (error) {
      this.state = error instanceof AgeHeaderLimitError ? 'large' : 'malformed';
    }
  }
}

/** What a backup says when its command's age output is not as long as age makes one of the archive it read (Filter.ageOutputWhole). */
const NOT_AGE_SIZED_NOTE =
  "the --pipe command's output is an age file, but not as long as age makes one of this archive (cut short, or something besides age in the command): nothing records it complete; tenants verify it (--identity KEY_FILE; an armored one, age -a: --pipe 'age -d -i KEY_FILE')";
const NOT_JUDGED_NOTE =
  "the --pipe command's output is neither an age file this tool can measure nor its own archive, so whether it is complete cannot be told: nothing records it complete; tenants verify it (--pipe with the command that undoes it) to count it";
/** What a backup says when its command ran without pipefail (Filter.withoutPipefail): a failure before a pipeline's last process went unseen. */
const WITHOUT_PIPEFAIL_NOTE = 'the --pipe command ran without pipefail (/bin/sh has none and bash is not installed): a failure of any process of a pipeline in it but the last went unseen';

/** What a backup says when the command's stderr was let go (Filter.stderrLetGo). */
function stderrLetGoNote(options: PipeCommandOptions): string {
  return `the --pipe command exited, but a process it left running still held its standard error ${seconds(options.leftoverWaitMs ?? LEFTOVER_WAIT_MS)} later: no longer read (the archive is stored whole)`;
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}

/** The failure of a command whose output must be an age file and is not (`why`); its bytes are not shown: they may be the archive's own, unencrypted. */
function notAgeError(why: string): PipeCommandError {
  return new PipeCommandError(`pipe command wrote no age file, though the archive's name ends in ".age": ${why}; encrypt with age -r, or store under a name without ".age"`);
}

/**
 * The stderr line worth showing: the last one naming an error, else the last one. A tail that
 * lost bytes before it (`cut`) starts in the middle of a word, maybe of a secret key whose
 * `AGE-SECRET-KEY-1` went with the bytes lost: that word is left out (a command echoing a key
 * 4,096 bytes before the end of its stderr had 35 of the key's 59 characters shown), and a tail
 * of one word is not shown at all.
 */
function telltaleLine(tail: Buffer, cut: boolean): string | undefined {
  const firstSpace = cut ? tail.findIndex((byte) => byte === 0x20 || (byte >= 0x09 && byte <= 0x0d)) : -1;
  if (cut && firstSpace === -1) return undefined;
  const lines = tail
    .subarray(firstSpace + 1)
    .toString('utf8')
    // A carriage return starts the line again, as on a terminal: a progress meter's updates
    // (`\r 45% …`) ended by an error on the same line were one line of them, and the error at
    // its end was cut off at MAX_STDERR_LINE.
    .split(/\r\n?|\n/)
    // Redacted before its control characters go: redact tells a key by what comes before it, and
    // with them gone a key behind a terminal colour (`ESC[1mAGE-SECRET-KEY-1…`, now after `[1m`:
    // a letter) or behind `X\x01` followed a letter and was shown whole.
    .map((line) => redact(line))
    // eslint-disable-next-line no-control-regex
    .map((line) => line.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, ''))
    .map((line) => line.trim())
    .filter((line) => line !== '');
  // Tools like age print the error and then a boilerplate line ("report unexpected
  // errors at…"): the last line that mentions an error says more than the last line.
  const last = lines.findLast((line) => NAMES_ERROR.test(line) && !/\breport\b/i.test(line)) ?? lines.at(-1);
  if (last === undefined) return undefined;
  // The command's own words: what it echoes of its arguments may be a secret (an age secret key given to -r).
  const shown = redact(last);
  if (shown.length <= MAX_STDERR_LINE) return shown;
  // Never through a surrogate pair: its lone half was shown as `\ud83d` (an emoji at the cut).
  const start = startOf(shown, MAX_STDERR_LINE - 1);
  return NAMES_ERROR.test(start) ? `${start}…` : (aroundError(shown) ?? `${start}…`);
}

/** Whether a line of stderr names an error. */
const NAMES_ERROR = /\berror\b/i;

/** How much of an over-long line before its error word is shown (aroundError): the tool's name and what it was doing, most often. */
const BEFORE_ERROR = 80;

/**
 * The part of an over-long (redacted) stderr line around the first word naming an error, within
 * MAX_STDERR_LINE, '…' where the line goes on: 4,080 y's and then " error: boom" showed 299 y's,
 * never the error, and so did 400 y's, " age: error: bad recipient" and 400 z's. A word a cut
 * goes through is left out, as a cut tail's first word is (telltaleLine), unless it holds the
 * error word. Undefined when no word names an error.
 */
function aroundError(line: string): string | undefined {
  const at = line.search(NAMES_ERROR);
  if (at === -1) return undefined;
  // Room for an '…' at each end; a window that reaches the line's end needs only the first.
  let from = Math.max(0, at - BEFORE_ERROR);
  let to = Math.min(line.length, from + MAX_STDERR_LINE - 2);
  if (to === line.length) from = Math.max(0, Math.min(from, line.length - (MAX_STDERR_LINE - 1)));
  const errorEnd = at + 'error'.length;
  if (from > 0) {
    const space = line.slice(from, at).search(/\s/);
    from = space === -1 ? at : from + space + 1;
  }
  if (to < line.length && !/\s/.test(line[to]!)) {
    const space = line.slice(errorEnd, to).search(/\s\S*$/);
    if (space !== -1) to = errorEnd + space;
  }
  // Never through a surrogate pair (a word of emoji after the error): its lone half was shown as `\ud83d`.
  const words = startOf(line.slice(from, to), to - from).trim();
  return `${from > 0 ? '…' : ''}${words}${to < line.length ? '…' : ''}`;
}

/** `spawn` failed: no shell (ENOENT), or no process could be made (EAGAIN: `ulimit -u`). */
function couldNotStart(error: unknown): string {
  const code = errorCode(error);
  return code === 'EAGAIN' ? `pipe command could not start: EAGAIN, ${NO_MORE_PROCESSES}` : `pipe command could not start: ${code}`;
}

function errorCode(error: unknown): string {
  if (error instanceof OpenClawError) return error.message;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code ?? (error instanceof Error ? error.message : String(error));
}
