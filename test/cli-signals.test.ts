// Ctrl-C, SIGTERM and SIGHUP as shells expect them: 130, 143 and 129 (128 + the signal), for every command.
// A backup stops and cleans up (no archive, no temporary file); a second SIGINT or SIGTERM exits
// at once (cleanup skipped: the next backup settles what is left), a second SIGHUP does not; a listing exits at the first
// signal; a command that must finish what it started finishes, then reports the signal.
// Slow steps are made with a --pipe command or a stand-in crontab that sleep; each CLI runs
// in a process group of its own, which the test kills (by its id) in the end.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { createSampleTenant } from '../scripts/sample-tenant.js';
import { formatIdentity, generateIdentity } from '../shared/age/keys.js';
import { groupMembers } from './helpers/processes.js';
import { cliPath, tempDir } from './helpers/tree.js';

let dir: ReturnType<typeof tempDir>;
let base: string;
let backups: string;
const groups: number[] = [];

beforeEach(() => {
  dir = tempDir('openclaw-signals-');
  base = path.join(dir.path, 'tenants');
  backups = path.join(dir.path, 'backups');
  createSampleTenant(path.join(base, 'acme'), { sessions: 2, memoryRows: 10 });
});
afterEach(() => {
  for (const group of groups.splice(0)) {
    try {
      process.kill(-group, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  dir.cleanup();
});

interface Running {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  stdout(): string;
  stderr(): string;
}

function start(args: string[], env: NodeJS.ProcessEnv = {}, stderrTo: 'pipe' | number = 'pipe'): Running {
  const child = spawn(process.execPath, [cliPath, '--tenants-dir', base, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', stderrTo], detached: true });
  groups.push(child.pid!);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code, signal) => resolve(code ?? (signal === null ? null : -1))));
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

async function until(condition: () => boolean, what: string, running?: Running): Promise<void> {
  for (let waited = 0; !condition(); waited += 20) {
    if (waited > 30_000) throw new Error(`timed out waiting for ${what}: ${running?.stderr() ?? ''}`);
    await sleep(20);
  }
}

/** A backup held up by its --pipe command, once its temporary archive file exists. */
async function stalledBackup(pipe: string, to = path.join(backups, 'acme.tar.zst'), stderrTo: 'pipe' | number = 'pipe'): Promise<Running> {
  const started = path.join(dir.path, 'pipe-started');
  const running = start(['tenants', 'backup', 'acme', '--to', to, '--pipe', `touch '${started}'; ${pipe}`], {}, stderrTo);
  const into = path.dirname(to);
  await until(() => existsSync(started) && existsSync(into) && readdirSync(into).some((name) => name.endsWith('.partial')), 'the backup to start writing', running);
  return running;
}

describe('an interrupted backup', () => {
  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129], // the terminal or ssh session went away
  ] as const)('stops at %s, cleans up and exits %i', async (signal, code) => {
    // The shell, its `sleep`, a pipeline and a subshell: all stopped, not only the shell.
    const running = await stalledBackup('sleep 30 | { sleep 30; cat; }; cat');
    running.child.kill(signal);
    expect(await running.exited).toBe(code);
    expect(groupMembers(running.child.pid!)).toEqual([]);
    expect(running.stderr()).toBe(`openclaw: interrupted by ${signal}\n`);
    expect(existsSync(backups)).toBe(false); // made for the archive, removed with it
    expect(readdirSync(base)).toEqual(['acme']); // lock released
  });

  it('removes the directories it created for the archive, keeping the one that was there', async () => {
    mkdirSync(backups);
    const running = await stalledBackup('sleep 30; cat', path.join(backups, 'a', 'b', 'c', 'acme.tar.zst'));
    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(143);
    expect(readdirSync(backups)).toEqual([]);
  });

  it('exits at once at a second signal, leaving what the next backup settles', async () => {
    // The pipe command ignores SIGTERM: the cleanup after the first signal waits for it.
    const running = await stalledBackup("trap '' TERM; sleep 60; cat");
    running.child.kill('SIGINT');
    // Long enough for a loaded machine to have handled the first: two signals pending at once count as one.
    await sleep(1000);
    running.child.kill('SIGINT');
    expect(await running.exited).toBe(130);
    // It left before its cleanup could release the tenant's lock…
    expect(readdirSync(base).sort()).toEqual(['.openclaw-lock-acme', 'acme']);
    // …but not the pipe command, which ignored the first SIGTERM: it got SIGKILL as the CLI left.
    await until(() => groupMembers(running.child.pid!).length === 0, `the pipe command to be gone: ${groupMembers(running.child.pid!).join(', ')}`, running);
    // …which the next backup takes over (its holder is gone), leaving nothing behind.
    const next = start(['tenants', 'backup', 'acme', '--to', path.join(backups, 'acme.tar.zst')]);
    expect(await next.exited).toBe(0);
    expect(readdirSync(backups)).toEqual(['acme.tar.zst']);
    expect(readdirSync(base)).toEqual(['acme']);
  });
});

describe('with a stderr that cannot be written (2>/dev/full, a closed terminal)', () => {
  // What it would have said is lost; what it does and its exit code must not change.
  let full: number;
  beforeEach(() => {
    full = openSync('/dev/full', 'w');
  });
  afterEach(() => closeSync(full));

  it('a backup that warns first still backs up', async () => {
    const to = path.join(backups, 'acme.tar'); // warned about: not named .tar.zst
    const running = start(['tenants', 'backup', 'acme', '--to', to], {}, full);
    expect(await running.exited).toBe(0);
    expect(readdirSync(backups)).toEqual(['acme.tar']);
    expect(readdirSync(base)).toEqual(['acme']);
  });

  it('a refusal keeps its exit code', async () => {
    const running = start(['tenants', 'backup', 'nobody', '--to', path.join(backups, 'nobody.tar.zst')], {}, full);
    expect(await running.exited).toBe(3);
  });

  it('an interrupted backup still cleans up and exits with the signal\'s code', async () => {
    const running = await stalledBackup('sleep 30; cat', undefined, full);
    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(143);
    expect(existsSync(backups)).toBe(false);
    expect(readdirSync(base)).toEqual(['acme']);
  });
});

// `script -c` runs its command with $SHELL: whether that shell or the wrapper below is the
// terminal's session leader decides whether the kernel's hang-up reaches the CLI at all, so
// each shell is tried, and the test sends the hang-up itself as the kernel and a shell would.
const shells = ['/bin/sh', '/bin/bash'].filter((shell) => existsSync(shell));
describe.runIf(existsSync('/usr/bin/script')).each(shells)('on a terminal that hangs up (the ssh session or the window gone), with SHELL=%s', (shell) => {
  // The CLI runs under `script`'s pseudo-terminal (stdin, stdout and stderr), below a shell
  // that ignores the hang-up and records its exit code; killing `script` closes the terminal.
  let rcFile: string;
  let pidsFile: string;
  let started: string;

  /** `cli`: how the wrapper starts the CLI; "$PIPE" is the --pipe command, which records the CLI's pid and its own. */
  function onTerminal(pipe: string, cli: string): ChildProcess {
    rcFile = path.join(dir.path, 'rc');
    pidsFile = path.join(dir.path, 'pids');
    started = path.join(dir.path, 'pipe-started');
    const wrapper = path.join(dir.path, 'on-terminal.sh');
    writeFileSync(wrapper, `trap '' HUP\n${cli} --tenants-dir "$BASE" tenants backup acme --to "$TO" --pipe "$PIPE"\necho $? > "$RC"\n`);
    const env = { SHELL: shell, NODE: process.execPath, CLI: cliPath, BASE: base, TO: path.join(backups, 'acme.tar.zst'), RC: rcFile, PIPE: `echo $PPID $$ > '${pidsFile}'; touch '${started}'; ${pipe}` };
    // cwd: a Node that aborts leaves its core file there.
    const script = spawn('script', ['-qec', `sh '${wrapper}'`, '/dev/null'], { cwd: dir.path, env: { ...process.env, ...env }, stdio: ['pipe', 'ignore', 'ignore'], detached: true });
    groups.push(script.pid!);
    return script;
  }

  /** Closes the terminal once the backup is writing, then hangs up the CLI and its --pipe shell as the kernel and a shell do: more than once. */
  async function hangUp(script: ChildProcess): Promise<void> {
    const into = backups;
    await until(() => existsSync(started) && existsSync(into) && readdirSync(into).some((name) => name.endsWith('.partial')), 'the backup to start writing');
    script.kill('SIGKILL');
    const pids = readFileSync(pidsFile, 'utf8').trim().split(' ').map(Number);
    for (let time = 0; time < 2; time++) {
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGHUP');
        } catch {
          // gone already
        }
      }
      await sleep(50);
    }
  }

  async function exitCode(): Promise<string> {
    await until(() => existsSync(rcFile) && readFileSync(rcFile, 'utf8').endsWith('\n'), 'the CLI to exit');
    return readFileSync(rcFile, 'utf8').trim();
  }

  it('a backup started with hang-ups ignored (nohup) goes on, exits 0 and stores its archive (the hang-up stopped it: 129; Node 20 aborted at exit: 134; a lost result line exited 1)', async () => {
    // As `nohup openclaw …` starts it, the output left on the terminal: the launcher sees the
    // ignored SIGHUP that Node itself resets.
    const script = onTerminal('sleep 1; cat', 'OPENCLAW_NODE="$NODE" "$CLI"');
    await hangUp(script);
    expect(await exitCode()).toBe('0');
    expect(readdirSync(backups)).toEqual(['acme.tar.zst']);
    expect(readdirSync(base)).toEqual(['acme']);
    expect(readdirSync(dir.path)).not.toContain('core');
  });

  it('a backup stopped by SIGHUP cleans up, however many hang-ups come, and exits 129 (Node 20 aborted at exit: 134; a second one skipped the cleanup)', async () => {
    const script = onTerminal('sleep 30; cat', '"$NODE" "$CLI"');
    await hangUp(script);
    expect(await exitCode()).toBe('129');
    expect(existsSync(backups)).toBe(false);
    expect(readdirSync(base)).toEqual(['acme']);
    expect(readdirSync(dir.path)).not.toContain('core');
  });
});

describe('other commands', () => {
  let fakeCrontab: string;
  let crontabStarted: string;
  beforeEach(() => {
    fakeCrontab = path.join(dir.path, 'slow-crontab');
    crontabStarted = path.join(dir.path, 'crontab-started');
    const file = path.join(dir.path, 'crontab.txt');
    writeFileSync(
      fakeCrontab,
      `#!/bin/sh\ntouch '${crontabStarted}'\nsleep 1\ncase "$1" in\n  -l) cat '${file}' 2>/dev/null || { echo "no crontab" >&2; exit 1; } ;;\n  -) cat > '${file}' ;;\nesac\n`,
    );
    chmodSync(fakeCrontab, 0o755);
  });

  it('a listing exits at the first signal, without waiting', async () => {
    const running = start(['cron', 'list'], { OPENCLAW_CRONTAB: fakeCrontab });
    await until(() => existsSync(crontabStarted), 'cron list to read the crontab', running);
    running.child.kill('SIGINT');
    expect(await running.exited).toBe(130);
    expect(running.stdout()).toBe(''); // it did not wait for the crontab's answer
  });

  it('one that must finish what it started finishes, then exits with the signal\'s code', async () => {
    const running = start(['cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'nightly', '--cmd', 'openclaw tenants backup acme --to /b/$(date +%F).tar.zst'], {
      OPENCLAW_CRONTAB: fakeCrontab,
      HOME: dir.path,
    });
    await until(() => existsSync(crontabStarted), 'cron add to read the crontab', running);
    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(143);
    expect(running.stdout()).toMatch(/^Added cron "nightly" for tenant "acme"/);
    expect(running.stderr()).toBe('openclaw: interrupted by SIGTERM, after the command had completed\n');
    expect(readFileSync(path.join(dir.path, 'crontab.txt'), 'utf8')).toMatch(/# openclaw:acme:nightly\n$/);
  });

  it.each([
    ['SIGINT', 130], // Ctrl-C
    ['SIGHUP', 129], // the terminal or ssh session went away
  ] as const)('a crontab change finishes when the terminal sends %s to the whole foreground group mid-install (it killed `crontab -` too: "could not install the crontab (exit by signal)", nothing installed)', async (signal, code) => {
    const installing = path.join(dir.path, 'crontab-installing');
    const file = path.join(dir.path, 'crontab.txt');
    writeFileSync(fakeCrontab, `#!/bin/sh
case "$1" in
  -l) echo "no crontab" >&2; exit 1 ;;
  -) touch '${installing}'; sleep 1; cat > '${file}' ;;
esac
`);
    const running = start(['cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'nightly', '--cmd', 'openclaw tenants backup acme --to /b/$(date +%F).tar.zst'], {
      OPENCLAW_CRONTAB: fakeCrontab,
      HOME: dir.path,
    });
    await until(() => existsSync(installing), 'cron add to install the crontab', running);
    process.kill(-running.child.pid!, signal); // as a terminal does: the CLI and what it started
    expect(await running.exited).toBe(code);
    expect(running.stderr()).toBe(`openclaw: interrupted by ${signal}, after the command had completed\n`);
    expect(readFileSync(file, 'utf8')).toMatch(/# openclaw:acme:nightly\n$/);
  });
});

describe.runIf(existsSync('/usr/bin/strace'))('a signal while the CLI starts (the bundle loading, before main has its handlers)', () => {
  it.each([
    ['SIGINT', 130, []],
    ['SIGTERM', 143, []],
    ['SIGINT', 130, ['--json']],
  ] as const)('%s says it interrupted the start and that nothing was done, exit %i %j (before: exit by the signal, not a word)', async (signal, code, flags) => {
    // strace holds the open of the bundle 2 s: the signal lands while it loads, as a Ctrl-C in a backup's first ~0.3 s did.
    const bundle = realpathSync(path.join(path.dirname(cliPath), '..', 'dist', 'bundle', 'main.js'));
    const log = path.join(dir.path, 'strace.log');
    const child = spawn('strace', ['-f', '-qq', '-o', log, '-P', bundle, '-e', 'trace=openat', '-e', 'inject=openat:delay_enter=2000000', process.execPath, cliPath, ...flags, '--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(backups, 'acme.tar.zst')], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    groups.push(child.pid!);
    let stderr = '';
    let stdout = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (status) => resolve(status)));
    const opening = () => (existsSync(log) ? /^(\d+)\s+openat\(/m.exec(readFileSync(log, 'utf8')) : null);
    await until(() => opening() !== null, 'the CLI to open its bundle');
    // The thread that opens it is one of the CLI's: the signal goes to its process.
    const thread = opening()![1]!;
    const pid = Number(/^Tgid:\s+(\d+)$/m.exec(readFileSync(`/proc/${thread}/status`, 'utf8'))![1]);
    process.kill(pid, signal);
    expect(await exited).toBe(code);
    // Node 24 loads the bundle on its main thread: the signal waits until main has its own
    // handlers, and main's line says it (README, exit codes).
    const said = Number(process.versions.node.split('.')[0]) >= 24 ? `interrupted by ${signal}` : `interrupted by ${signal} while starting: nothing was done`;
    expect(stderr).toBe(`openclaw: ${said}\n`);
    if (flags.length === 0) expect(stdout).toBe('');
    else expect(JSON.parse(stdout)).toEqual({ error: expect.objectContaining({ code: 'ABORTED', message: said }) });
    expect(existsSync(path.join(backups, 'acme.tar.zst'))).toBe(false);
  });
});

describe('a command on an S3 endpoint that does not answer', () => {
  // The SDK gives a silent socket two minutes, five times over: without the signal reaching
  // every request, SIGTERM would wait ten minutes for the last timeout.
  let server: Server;
  let endpoint: string;
  const seen: string[] = [];
  let answersLookups = false;
  beforeEach(async () => {
    seen.length = 0;
    server = createServer((request: IncomingMessage, response: ServerResponse) => {
      seen.push(request.method!);
      request.resume();
      if (!answersLookups || (request.method !== 'HEAD' && request.method !== 'GET')) return; // never answered
      response.writeHead(404, { 'content-type': 'application/xml' });
      response.end(request.method === 'GET' ? '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>none</Message></Error>' : undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it.each([
    ['while it checks the destination', false, 'HEAD', []],
    ['while it uploads the archive', true, 'PUT', []],
    ['in a dry run, while it checks the destination', false, 'HEAD', ['--dry-run']],
  ] as const)('stops at SIGTERM %s', async (_when, lookups, method, extra) => {
    answersLookups = lookups;
    const running = start(['tenants', 'backup', 'acme', '--to', 's3://backups/acme/a.tar.zst', '--endpoint', endpoint, '--access-key', 'AK', '--secret-key', 'SK', ...extra]);
    await until(() => seen.includes(method), `a ${method} request`, running);
    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(143);
    expect(running.stderr()).toBe('openclaw: interrupted by SIGTERM\n');
    expect(readdirSync(base)).toEqual(['acme']); // lock released
  }, 20_000);

  it.each([
    ['a restore', ['tenants', 'restore', '--as', 'beta']],
    ['a verification', ['tenants', 'verify']],
  ] as const)('stops %s at SIGTERM while it waits for the archive', async (_what, command) => {
    const running = start([...command, '--from', 's3://backups/acme/a.tar.zst', '--endpoint', endpoint, '--access-key', 'AK', '--secret-key', 'SK']);
    await until(() => seen.includes('GET'), 'a GET request', running);
    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(143);
    expect(running.stderr()).toBe('openclaw: interrupted by SIGTERM\n');
    expect(readdirSync(base)).toEqual(['acme']); // nothing restored, no lock left
  }, 20_000);
});

describe.runIf(existsSync('/usr/bin/script'))('an age identity read from the terminal (`--identity /dev/tty`, or `-` on a terminal)', () => {
  // The CLI runs under `script`'s pseudo-terminal, its own output in a file, so that a
  // descriptor of the terminal it holds is the one it opened for the key.
  let archive: string;
  let identity: string;
  let rcFile: string;
  let pidFile: string;

  beforeEach(() => {
    const key = generateIdentity();
    identity = formatIdentity(key);
    archive = path.join(backups, 'acme.tar.zst.age');
    const made = spawnSync(process.execPath, [cliPath, '--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', archive, '--encrypt-to', key.recipient.text], { encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);
    rcFile = path.join(dir.path, 'rc');
    pidFile = path.join(dir.path, 'pid');
  });

  /** What the terminal showed: its output, as `script` passes it on. */
  let shown: string;

  function verifyOnTerminal(): ChildProcess {
    const wrapper = path.join(dir.path, 'on-terminal.sh');
    const sttyFile = path.join(dir.path, 'stty');
    // The terminal's settings once the CLI exited (`stty -a`) go to $STTY.
    writeFileSync(wrapper, '"$NODE" "$CLI" --tenants-dir "$BASE" tenants verify --no-record --from "$FROM" --identity /dev/tty >"$OUT" 2>&1 &\necho $! > "$PID"\nwait $!\nrc=$?\nstty -a > "$STTY"\necho $rc > "$RC"\n');
    const env = { SHELL: '/bin/sh', NODE: process.execPath, CLI: cliPath, BASE: base, FROM: archive, OUT: path.join(dir.path, 'out'), PID: pidFile, RC: rcFile, STTY: sttyFile };
    const script = spawn('script', ['-qec', `sh '${wrapper}'`, '/dev/null'], { cwd: dir.path, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'ignore'], detached: true });
    groups.push(script.pid!);
    shown = '';
    script.stdout!.on('data', (chunk: Buffer) => (shown += chunk.toString('latin1')));
    return script;
  }

  function readingTheTerminal(): boolean {
    if (!existsSync(pidFile) || !readFileSync(pidFile, 'utf8').endsWith('\n')) return false;
    const fds = path.join('/proc', readFileSync(pidFile, 'utf8').trim(), 'fd');
    try {
      return readdirSync(fds).some((fd) => /^\/dev\/(tty|pts\/)/.test(readlinkSync(path.join(fds, fd))));
    } catch {
      return false; // exited, or a descriptor closed while listed
    }
  }

  async function exitCode(): Promise<string> {
    await until(() => existsSync(rcFile) && readFileSync(rcFile, 'utf8').endsWith('\n'), `the CLI to exit: ${existsSync(path.join(dir.path, 'out')) ? readFileSync(path.join(dir.path, 'out'), 'utf8') : ''}`);
    return readFileSync(rcFile, 'utf8').trim();
  }

  /** Its prompt is written once the terminal is in raw mode: typed before, Ctrl-D ended the line in cooked mode, and was never read. */
  async function untilPrompted(): Promise<void> {
    await until(() => shown.includes('then Ctrl-D (it is not shown)'), `the CLI to prompt on the terminal: ${shown}`);
  }

  it('waits for the key, and SIGTERM ends the wait (read on a thread, it hung for good)', async () => {
    verifyOnTerminal();
    await until(readingTheTerminal, 'the CLI to open the terminal');
    process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGTERM');
    expect(await exitCode()).toBe('143');
    expect(readFileSync(path.join(dir.path, 'out'), 'utf8')).toBe('openclaw: interrupted by SIGTERM\n');
  });

  it('takes a key typed (pasted) into it and ended with Ctrl-D, not echoed (before: shown on the terminal, in its scrollback), saying so there, the terminal restored', async () => {
    const script = verifyOnTerminal();
    await untilPrompted();
    script.stdin!.write(`${identity}\n\x04`);
    expect(await exitCode()).toBe('0');
    expect(readFileSync(path.join(dir.path, 'out'), 'utf8')).toMatch(/^Intact: /);
    expect(shown).not.toContain('AGE-SECRET-KEY');
    // What it waits for, on the terminal (its output is a file): nothing shown, it looked like a hang.
    expect(shown).toContain('openclaw: identity file "/dev/tty": type or paste it, then Ctrl-D (it is not shown)\r\n');
    expect(readFileSync(path.join(dir.path, 'stty'), 'utf8')).toMatch(/(^|[\s;])icanon[\s;].*(^|[\s;])echo[\s;]/s);
  });

  it('erases with Backspace and ends a line at Enter (\\r), as the terminal did', async () => {
    const script = verifyOnTerminal();
    await untilPrompted();
    script.stdin!.write(`${identity.slice(0, 20)}X\x7f${identity.slice(20)}\r\x04`);
    expect(await exitCode()).toBe('0');
    expect(readFileSync(path.join(dir.path, 'out'), 'utf8')).toMatch(/^Intact: /);
  });

  it('erases the line typed with Ctrl-U, as the terminal did (before: Ctrl-U became part of the key)', async () => {
    const script = verifyOnTerminal();
    await untilPrompted();
    script.stdin!.write(`# a comment\nnot the key\x15${identity}\x15${identity}\r\x04`);
    expect(await exitCode()).toBe('0');
    expect(readFileSync(path.join(dir.path, 'out'), 'utf8')).toMatch(/^Intact: /);
  });

  it('erases the word typed with Ctrl-W, as the terminal did (before: Ctrl-W became part of the key)', async () => {
    const script = verifyOnTerminal();
    await untilPrompted();
    script.stdin!.write(`# a comment\nnot the key  \x17\x17\x17${identity.slice(0, 20)}X\x17${identity}\r\x04`);
    expect(await exitCode()).toBe('0');
    expect(readFileSync(path.join(dir.path, 'out'), 'utf8')).toMatch(/^Intact: /);
  });

  it('takes Ctrl-\\ for the quit it is (SIGQUIT, exit 131), the terminal restored first (before: part of the key)', async () => {
    const script = verifyOnTerminal();
    await untilPrompted();
    script.stdin!.write('AGE-SECRET\x1c');
    expect(await exitCode()).toBe('131');
    expect(readFileSync(path.join(dir.path, 'stty'), 'utf8')).toMatch(/(^|[\s;])icanon[\s;].*(^|[\s;])echo[\s;]/s);
  });

  it('does not take Ctrl-Z into the key: says so on the terminal and reads on (before: part of the key)', async () => {
    const script = verifyOnTerminal();
    await untilPrompted();
    script.stdin!.write(`${identity.slice(0, 20)}\x1a`);
    await until(() => shown.includes('Ctrl-Z does nothing'), `the CLI to say so: ${shown}`);
    script.stdin!.write(`${identity.slice(20)}\r\x04`);
    expect(await exitCode()).toBe('0');
    expect(readFileSync(path.join(dir.path, 'out'), 'utf8')).toMatch(/^Intact: /);
    expect(shown).toContain('openclaw: Ctrl-Z does nothing while the key is read (stopped, this would leave the terminal showing what is typed); Ctrl-C stops\r\n');
  });

  it('takes Ctrl-C for the interrupt it is (exit 130), the terminal restored', async () => {
    const script = verifyOnTerminal();
    await untilPrompted();
    script.stdin!.write('AGE-SECRET\x03');
    expect(await exitCode()).toBe('130');
    expect(readFileSync(path.join(dir.path, 'out'), 'utf8')).toBe('openclaw: interrupted by SIGINT\n');
    expect(readFileSync(path.join(dir.path, 'stty'), 'utf8')).toMatch(/(^|[\s;])icanon[\s;].*(^|[\s;])echo[\s;]/s);
  });
});

describe.runIf(existsSync('/usr/bin/strace'))('a signal while the launcher\'s shell stage works out Node\'s settings (bin/openclaw.js run as a command)', () => {
  it.each([
    ['sh', 'SIGINT', 130, 'group', []],
    ['sh', 'SIGTERM', 143, 'shell', []],
    ['sh', 'SIGINT', 130, 'group', ['--json']],
    ['busybox', 'SIGINT', 130, 'group', []],
  ] as const)('%s: %s says it interrupted the start and that nothing was done, exit %i (to the %s; before: exit by the signal, not a word)', async (shell, signal, code, target, flags) => {
    if (shell === 'busybox' && !existsSync('/usr/bin/busybox') && !existsSync('/bin/busybox')) return;
    // strace holds each wait of the shell for a `$(…)` 0.3 s: the signal lands while it works.
    const log = path.join(dir.path, `strace-${shell}.log`);
    const command = shell === 'sh' ? [cliPath] : ['busybox', 'sh', cliPath];
    const child = spawn('strace', ['-f', '-qq', '-o', log, '-e', 'trace=wait4', '-e', 'inject=wait4:delay_exit=300000', ...command, ...flags, '--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', path.join(backups, 'acme.tar.zst')], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}` } });
    groups.push(child.pid!);
    let stderr = '';
    let stdout = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (status) => resolve(status)));
    const waiting = () => (existsSync(log) ? /^(\d+)\s+wait4\(/m.exec(readFileSync(log, 'utf8')) : null);
    await until(() => waiting() !== null, 'the launcher to wait for its first `$(…)`');
    // As a terminal does (the whole group) or as `kill PID` does (the shell alone).
    if (target === 'group') process.kill(-child.pid!, signal);
    else process.kill(Number(waiting()![1]), signal);
    expect(await exited).toBe(code);
    const said = `interrupted by ${signal} while starting: nothing was done`;
    expect(stderr).toBe(`openclaw: ${said}\n`);
    if (flags.length === 0) expect(stdout).toBe('');
    else expect(JSON.parse(stdout)).toEqual({ error: { code: 'ABORTED', message: said } });
    expect(existsSync(path.join(backups, 'acme.tar.zst'))).toBe(false);
  });
});
