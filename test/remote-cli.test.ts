// Remote mode as a user meets it, spawning the built CLI: the setting (--stack or
// OPENCLAW_STACK) reaches the commands, refusals need no AWS call, and neither help nor
// local mode loads the AWS SDK (a module-resolution hook lists what gets loaded).

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { cliPath, runCli, tempDir } from './helpers/tree.js';

const dir = tempDir('openclaw-remote-cli-');
const hasStrace = existsSync('/usr/bin/strace');
afterAll(() => dir.cleanup());

// Reports every package module resolved, on stderr.
const hook = path.join(dir.path, 'trace-packages.mjs');
writeFileSync(
  hook,
  `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(\`
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  const match = /node_modules\\\\/((@[^/]+\\\\/)?[^/]+)/.exec(result.url);
  if (match) process.stderr.write('PACKAGE ' + match[1] + '\\\\n');
  return result;
}\`));
`,
);

function packagesLoaded(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; packages: string[]; stdout: string; stderr: string } {
  const run = runCli(args, { env: { ...env, NODE_OPTIONS: `--import=${hook}` } });
  const packages = [...new Set(run.stderr.split('\n').filter((line) => line.startsWith('PACKAGE ')).map((line) => line.slice(8)))].sort();
  const stderr = run.stderr.split('\n').filter((line) => !line.startsWith('PACKAGE ')).join('\n');
  return { status: run.status, packages, stdout: run.stdout, stderr };
}

describe('remote mode from the command line', () => {
  it('loads no AWS SDK for help, in either mode', () => {
    for (const args of [['--help'], ['cron', 'add', '--help'], ['--stack', 'openclaw-backup', 'doctor', '--help']]) {
      const run = packagesLoaded(args);
      expect(run.status, args.join(' ')).toBe(0);
      expect(run.packages.filter((name) => name.startsWith('@aws-sdk/') || name.startsWith('@aws-lambda-powertools/') || name === 'cron-parser')).toEqual([]);
    }
  });

  it('documents the setting in the help', () => {
    const help = runCli(['--help']).stdout;
    expect(help).toMatch(/--stack <prefix>\s+remote mode: run on the gateway deployed with this stack\s+prefix \(default: \$OPENCLAW_STACK\)/);
    expect(help).toMatch(/no\s+progress is\s+shown/);
    expect(runCli(['tenants', 'list', '--help']).stdout).toMatch(/--region <region>\s+remote mode: the region of the gateway/);
    // A crontab's cron runs in local time, and --all, --timezone and --window are refused there (exit 2).
    const cronAdd = runCli(['cron', 'add', '--help']).stdout.replace(/\s+/g, ' ');
    expect(cronAdd).toContain("(remote mode: in --timezone; local mode: in this machine's local time)");
    for (const flag of ['--all remote mode, every tenant', '--timezone <zone> remote mode:', '--window <duration> remote mode:']) expect(cronAdd).toContain(flag);
  });

  it('refuses --pipe and local paths in remote mode without calling AWS', () => {
    const pipe = packagesLoaded(['tenants', 'backup', 'acme', '--to', 's3://backups/a.tar.zst', '--pipe', 'age -r age1x'], { OPENCLAW_STACK: 'openclaw-backup' });
    expect(pipe.status).toBe(2);
    expect(pipe.stderr).toMatch(/^openclaw: --pipe runs a shell command and is not available in remote mode/);
    expect(pipe.packages.filter((name) => name.startsWith('@aws-sdk/'))).toEqual([]);
    const local = runCli(['--stack', 'openclaw-backup', 'tenants', 'backup', 'acme', '--to', '/tmp/a.tar.zst']);
    expect(local.status).toBe(2);
    expect(local.stderr).toMatch(/--to must be s3:\/\/bucket\/key/);
  });

  it('validates the stack prefix from the flag and the environment, naming where the bad one came from', () => {
    const fromEnvironment = runCli(['tenants', 'list'], { env: { OPENCLAW_STACK: 'Not A Prefix' } });
    expect(fromEnvironment.status).toBe(2);
    expect(fromEnvironment.stderr).toMatch(/^openclaw: invalid OPENCLAW_STACK "Not A Prefix": the stack prefix is 2-24 lowercase letters/);
    const fromFlag = runCli(['--stack', 'x', 'tenants', 'list'], { env: { OPENCLAW_STACK: 'openclaw-backup' } });
    expect(fromFlag.status).toBe(2);
    expect(fromFlag.stderr).toMatch(/^openclaw: invalid --stack "x": /);
    const long = runCli(['--stack', 'a'.repeat(300), 'tenants', 'list']);
    expect(long.stderr).toMatch(/^openclaw: invalid --stack "a{64}"… \(300 characters\): the stack prefix/);
  });

  it('refuses a --region that is no region name before any AWS call, as local mode does (before: the SDK\'s "Region not accepted", exit 1)', () => {
    for (const args of [['tenants', 'list'], ['tenants', 'backup', 'acme', '--to', 's3://backups/a.tar.zst'], ['doctor']]) {
      const run = packagesLoaded(['--stack', 'openclaw-backup', ...args, '--region', 'eu west']);
      expect({ status: run.status, stderr: run.stderr }, args.join(' ')).toEqual({ status: 2, stderr: 'openclaw: invalid --region "eu west": give a region name such as eu-west-1 (letters, digits, "-" and "_")\n' });
      expect(run.packages.filter((name) => name.startsWith('@aws-sdk/'))).toEqual([]);
    }
  });

  it('refuses an --aws-profile that no shared config file holds, by name, before any AWS call', () => {
    const config = path.join(dir.path, 'aws-config');
    // The profiles it holds are named (a typo beside the name meant); a services or sso-session section is none.
    writeFileSync(config, '[profile production]\nregion = eu-west-1\n[sso-session corp]\nsso_region = eu-west-1\n[services local]\ns3 =\n  endpoint_url = http://127.0.0.1:9\n');
    const env = { AWS_CONFIG_FILE: config, AWS_SHARED_CREDENTIALS_FILE: path.join(dir.path, 'no-credentials'), AWS_REGION: 'eu-west-1' };
    const run = runCli(['--stack', 'openclaw-backup', 'tenants', 'list', '--aws-profile', 'prodution'], { env });
    expect(run.status).toBe(2);
    expect(run.stderr).toBe(`openclaw: AWS profile "prodution" is in neither shared config file (${config}, ${env.AWS_SHARED_CREDENTIALS_FILE}), which hold production\n`);
    // The same name in AWS_PROFILE, not "no AWS credentials".
    const fromEnv = runCli(['--stack', 'openclaw-backup', 'tenants', 'list'], { env: { ...env, AWS_PROFILE: 'prodution' } });
    expect(fromEnv.status).toBe(2);
    expect(fromEnv.stderr).toBe(`openclaw: AWS profile "prodution" (AWS_PROFILE) is in neither shared config file (${config}, ${env.AWS_SHARED_CREDENTIALS_FILE}), which hold production\n`);
  });

  it.skipIf(!hasStrace)('reads the shared config and credentials files once per command, however many clients it makes (counted with strace)', async () => {
    const config = path.join(dir.path, 'once-config');
    const credentials = path.join(dir.path, 'once-credentials');
    // The profiles it holds are named (a typo beside the name meant); a services or sso-session section is none.
    writeFileSync(config, '[profile production]\nregion = eu-west-1\n[sso-session corp]\nsso_region = eu-west-1\n[services local]\ns3 =\n  endpoint_url = http://127.0.0.1:9\n');
    writeFileSync(credentials, '[production]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = not-used\n');
    // Nothing listens there: the first call fails, after every client is made.
    const port = await closedPort();
    const env: NodeJS.ProcessEnv = { ...process.env, AWS_CONFIG_FILE: config, AWS_SHARED_CREDENTIALS_FILE: credentials, AWS_ENDPOINT_URL: `http://127.0.0.1:${port}`, AWS_MAX_ATTEMPTS: '1' };
    delete env.AWS_PROFILE;
    // doctor makes eight clients, tenants list one; with the profile named and from the environment.
    for (const [args, extra] of [
      [['--stack', 'openclaw-backup', 'doctor', '--aws-profile', 'production'], {}],
      [['--stack', 'openclaw-backup', 'tenants', 'list'], { AWS_PROFILE: 'production' }],
    ] as const) {
      const log = path.join(dir.path, `strace-${Date.now()}.log`);
      const run = spawnSync('strace', ['-f', '-qq', '-o', log, '-e', 'trace=openat,open', process.execPath, cliPath, ...args], { encoding: 'utf8', env: { ...env, ...extra } });
      expect(run.stderr, args.join(' ')).toMatch(/^openclaw: .*cannot reach AWS in eu-west-1 \(connect ECONNREFUSED/);
      const opened = readFileSync(log, 'utf8').split('\n').filter((line) => !/= -1 /.test(line));
      const opens = (file: string) => opened.filter((line) => line.includes(`"${file}"`)).length;
      expect({ config: opens(config), credentials: opens(credentials) }, args.join(' ')).toEqual({ config: 1, credentials: 1 });
    }
  });

  // It said `in <region>` only for --region: the operator with AWS_REGION or a profile's region was not told where it looked.
  it('names the region it called whichever source gave it: --region, AWS_REGION, the profile', async () => {
    const config = path.join(dir.path, 'region-config');
    const credentials = path.join(dir.path, 'region-credentials');
    writeFileSync(config, '[default]\nregion = ap-south-1\n[profile production]\nregion = eu-north-1\n');
    writeFileSync(credentials, '[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = not-used\n[production]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = not-used\n');
    const port = await closedPort();
    const env: NodeJS.ProcessEnv = { AWS_CONFIG_FILE: config, AWS_SHARED_CREDENTIALS_FILE: credentials, AWS_ENDPOINT_URL: `http://127.0.0.1:${port}`, AWS_MAX_ATTEMPTS: '1' };
    const own = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('AWS_')));
    for (const [args, extra, region] of [
      [['--region', 'us-west-2'], { AWS_REGION: 'eu-west-3' }, 'us-west-2'],
      [[], { AWS_REGION: 'eu-west-3' }, 'eu-west-3'],
      [[], {}, 'ap-south-1'],
      [['--aws-profile', 'production'], {}, 'eu-north-1'],
    ] as const) {
      const run = spawnSync(process.execPath, [cliPath, '--stack', 'openclaw-backup', 'tenants', 'list', ...args], { encoding: 'utf8', env: { ...own, ...env, ...extra } });
      expect(run.stderr, `${args.join(' ')} ${JSON.stringify(extra)}`).toMatch(new RegExp(`^openclaw: invoking openclaw-backup-list: cannot reach AWS in ${region} \\(connect ECONNREFUSED`));
    }
  });

  // The SDK printed a nine-line "Multiple credential sources detected" warning naming AWS_PROFILE,
  // though only --aws-profile was given: stderr was no longer the one line of ours.
  it('calls the gateway with the --aws-profile credentials over keys in the environment, warning of nothing', async () => {
    const config = path.join(dir.path, 'keys-config');
    const credentials = path.join(dir.path, 'keys-credentials');
    writeFileSync(config, '[profile production]\nregion = eu-north-1\n');
    writeFileSync(credentials, '[production]\naws_access_key_id = AKIAPROFILEEXAMPLE\naws_secret_access_key = not-used\n');
    const { endpoint, authorizations, close } = await recordingEndpoint();
    try {
      const own = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('AWS_')));
      const env = { ...own, AWS_CONFIG_FILE: config, AWS_SHARED_CREDENTIALS_FILE: credentials, AWS_ENDPOINT_URL: endpoint, AWS_MAX_ATTEMPTS: '1', AWS_ACCESS_KEY_ID: 'AKIAENVIRONMENTKEY', AWS_SECRET_ACCESS_KEY: 'not-used' };
      const run = await spawnCli(['--stack', 'openclaw-backup', 'tenants', 'list', '--aws-profile', 'production'], env);
      expect(run.stderr.split('\n').filter((line) => line !== '')).toHaveLength(1);
      expect(run.stderr).toMatch(/^openclaw: invoking openclaw-backup-list: /);
      expect(authorizations).toHaveLength(1);
      expect(authorizations[0]).toContain('Credential=AKIAPROFILEEXAMPLE/');
      // A blank AWS_PROFILE beside the keys: they are used, without the warning either.
      const blank = await spawnCli(['--stack', 'openclaw-backup', 'tenants', 'list', '--region', 'eu-north-1'], { ...env, AWS_PROFILE: ' ' });
      expect(blank.stderr.split('\n').filter((line) => line !== '')).toHaveLength(1);
      expect(authorizations[1]).toContain('Credential=AKIAENVIRONMENTKEY/');
    } finally {
      await close();
    }
  });

  // The SDK's own `Error: Region not accepted: region="" is not a valid hostname component.` (exit 1).
  it('refuses an AWS_REGION set but empty or no region name, naming it, before any AWS call; --region passes over it', async () => {
    const port = await closedPort();
    const own = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('AWS_')));
    const env = { ...own, AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent', AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'not-used', AWS_ENDPOINT_URL: `http://127.0.0.1:${port}`, AWS_MAX_ATTEMPTS: '1' };
    for (const region of ['', ' ', 'eu west']) {
      const run = spawnSync(process.execPath, [cliPath, '--stack', 'openclaw-backup', 'tenants', 'list'], { encoding: 'utf8', env: { ...env, AWS_REGION: region } });
      expect({ status: run.status, stderr: run.stderr }, JSON.stringify(region)).toEqual({
        status: 2,
        stderr: `openclaw: invalid AWS_REGION ${JSON.stringify(region)}: unset it, or set a region name such as eu-west-1 (letters, digits, "-" and "_"), or give --region\n`,
      });
    }
    const given = spawnSync(process.execPath, [cliPath, '--stack', 'openclaw-backup', 'tenants', 'list', '--region', 'eu-west-1'], { encoding: 'utf8', env: { ...env, AWS_REGION: '' } });
    expect(given.stderr).toMatch(/^openclaw: invoking openclaw-backup-list: cannot reach AWS in eu-west-1 \(connect ECONNREFUSED/);
    // AWS_DEFAULT_REGION and AWS_PROFILE set but empty are taken as unset.
    for (const empty of [{ AWS_DEFAULT_REGION: '' }, { AWS_PROFILE: '' }]) {
      const run = spawnSync(process.execPath, [cliPath, '--stack', 'openclaw-backup', 'tenants', 'list'], { encoding: 'utf8', env: { ...env, ...empty } });
      expect({ status: run.status, stderr: run.stderr }, JSON.stringify(empty)).toEqual({ status: 2, stderr: 'openclaw: no AWS region for the gateway: give --region, or set AWS_REGION or a region in the profile\n' });
    }
  });

  it('keeps cron in local mode with OPENCLAW_STACK empty (the crontab: cron-local.test.ts), and never calls AWS', () => {
    // A base dir that holds acme: cron add warns of nothing before it reaches the crontab.
    const tenantsDir = path.join(dir.path, 'cron-tenants');
    mkdirSync(path.join(tenantsDir, 'acme'), { recursive: true });
    const run = runCli(['cron', 'add', 'acme', '--schedule', '@daily', '--name', 'nightly', '--cmd', 'openclaw tenants backup acme --to /var/backups/acme-$(date +%F).tar.zst'], {
      env: { OPENCLAW_STACK: '', OPENCLAW_TENANTS_DIR: tenantsDir },
    });
    // The test configuration points OPENCLAW_CRONTAB at nothing: the local path is taken, and fails there.
    expect(run.status).toBe(1);
    expect(run.stderr).toBe('openclaw: /nonexistent/tests-never-use-the-real-crontab not found: OPENCLAW_CRONTAB names it; name the crontab command there, or unset OPENCLAW_CRONTAB to use crontab\n');
  });
});

/** A local port nothing listens on (one just released). */
function closedPort(): Promise<number> {
  const server = createServer();
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as { port: number };
    server.close(() => resolve(port));
  }));
}

/** The CLI run to its end without blocking this process (a server of the test answers it). */
function spawnCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliPath, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('close', (status) => resolve({ status, stderr }));
  });
}

/** An HTTP endpoint that records each request's Authorization header and answers 403. */
async function recordingEndpoint(): Promise<{ endpoint: string; authorizations: string[]; close: () => Promise<void> }> {
  const authorizations: string[] = [];
  const server = createHttpServer((request, response) => {
    authorizations.push(request.headers.authorization ?? '');
    request.resume();
    response.writeHead(403, { 'content-type': 'application/json', 'x-amzn-errortype': 'AccessDeniedException' }).end('{"message":"denied"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { endpoint: `http://127.0.0.1:${port}`, authorizations, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
