// Remote mode in-process, Lambda mocked with aws-sdk-client-mock: the exact Invoke input,
// answers and failures mapped back to the same output and exit codes as local mode, and an
// end-to-end run where the mocked Invoke hands the payload to the real handler (temp dir as
// the EFS mount, s3rver as S3) so local and remote runs of the same command can be compared.

import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { Logger } from '@aws-lambda-powertools/logger';
import { mockClient } from 'aws-sdk-client-mock';
import { readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest';

import { createSampleTenant } from '../scripts/sample-tenant.js';
import { main } from '../cli/main.js';
import { remoteOperations } from '../cli/remote.js';
import { AbortedError } from '../shared/errors.js';
import { completionPublisher } from '../functions/events.js';
import { backupHandler } from '../functions/backup-handler.js';
import { listHandler } from '../functions/list-handler.js';
import { restoreHandler } from '../functions/restore-handler.js';
import type { LambdaContext } from '../functions/lambda-context.js';
import { runCli, tempDir } from './helpers/tree.js';
import { S3RVER_ACCESS_KEY, startRegionProxy, startS3Server, type RecordingServer, type S3TestServer } from './helpers/s3-server.js';
import { lambdaContext } from './helpers/lambda-context.js';
import { stubRemoteCaller } from './helpers/run-main.js';

const lambda = mockClient(LambdaClient);
const eventBridge = mockClient(EventBridgeClient);
const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const decode = (payload: Uint8Array | undefined) => JSON.parse(new TextDecoder().decode(payload)) as unknown;

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in this process (the mocks only work here), capturing its output. */
async function run(args: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
  try {
    const status = await main(args);
    return { status, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

const BACKUP_RESULT = {
  operation: 'backup',
  tenant: 'acme',
  location: 's3://backups/acme/2026-06-03.tar.zst',
  files: 12,
  directories: 3,
  symlinks: 0,
  bytes: 4096,
  archiveBytes: 1024,
  durationMs: 1500,
  createdAt: '2026-06-03T03:00:00.000Z',
  manifestSha256: 'ab'.repeat(32),
  skipped: [],
  warnings: [],
  recovered: 'none',
};

beforeEach(() => {
  lambda.reset();
  eventBridge.reset();
  stubRemoteCaller();
});
afterEach(() => vi.unstubAllEnvs());
afterAll(() => {
  lambda.restore();
  eventBridge.restore();
});

describe('remote executor', () => {
  it('says so when the gateway answers that the backup continues in further invocations', async () => {
    const suspended = { operation: 'backup', suspended: true, tenant: 'acme', location: 's3://backups/acme/big.tar.zst', chain: 'ab'.repeat(12), pieces: 1, files: 1200, bytes: 50 * 1024 ** 3, archiveBytes: 21 * 1024 ** 3, durationMs: 720_000, createdAt: '2026-06-03T03:00:00.000Z' };
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: encode(suspended) as never });
    const result = await run(['--stack', 'openclaw-backup', 'tenants', 'backup', 'acme', '--to', 's3://backups/acme/big.tar.zst']);
    expect(result.status).toBe(0);
    expect(result.stdout.split('\n').slice(0, 3)).toEqual([
      'The backup of tenant "acme" to s3://backups/acme/big.tar.zst continues on the gateway in further invocations',
      '  so far 1,200 files, 50.0 GiB of content, 21.0 GiB stored, in 720.0 s',
      '  its completion event (OpenClaw Backup Succeeded or Failed) reports the end; tenants backups lists the archive then',
    ]);
  });

  it('invokes <prefix>-backup with the backup command, exactly', async () => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: encode(BACKUP_RESULT) as never });
    // --aws-profile must name a profile of the shared config files (one not there is refused).
    const awsDir = tempDir('openclaw-aws-config-');
    onTestFinished(awsDir.cleanup);
    writeFileSync(path.join(awsDir.path, 'config'), '[profile ops]\nregion = eu-central-1\n');
    vi.stubEnv('AWS_CONFIG_FILE', path.join(awsDir.path, 'config'));
    vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', path.join(awsDir.path, 'credentials'));
    const result = await run([
      '--stack', 'openclaw-backup', 'tenants', 'backup', 'acme',
      '--to', 's3://backups/acme/2026-06-03.tar.zst',
      '--endpoint', 'https://minio.internal:9000', '--access-key', 'minio-user', '--secret-key', 'minio-secret',
      '--aws-profile', 'ops', '--region', 'eu-central-1',
    ]);
    expect(result).toEqual({ status: 0, stdout: expect.stringMatching(/^Backed up tenant "acme" to s3:\/\/backups\/acme\/2026-06-03\.tar\.zst\n/), stderr: '' });

    const calls = lambda.commandCalls(InvokeCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.args[0].input).toEqual({
      FunctionName: 'openclaw-backup-backup',
      InvocationType: 'RequestResponse',
      Payload: encode({
        tenant: 'acme',
        to: 's3://backups/acme/2026-06-03.tar.zst',
        overwrite: false,
        // The region the store is signed for, as local mode signs it (the profile is not sent).
        storage: { endpoint: 'https://minio.internal:9000', region: 'eu-central-1', accessKey: 'minio-user', secretKey: 'minio-secret' },
      }),
    });
    // --aws-profile / --region chose the client.
    const client = calls[0]!.thisValue as LambdaClient;
    expect(client.config.profile).toBe('ops');
    expect(await client.config.region()).toBe('eu-central-1');

    // --sqlite-raw-fallback travels only when given (an older gateway refuses the field).
    await run(['--stack', 'openclaw-backup', 'tenants', 'backup', 'acme', '--to', 's3://backups/acme/b.tar.zst', '--sqlite-raw-fallback']);
    expect(lambda.commandCalls(InvokeCommand)[1]!.args[0].input.Payload).toEqual(
      encode({ tenant: 'acme', to: 's3://backups/acme/b.tar.zst', overwrite: false, sqliteRawFallback: true }),
    );

    // So do --sse, --sse-kms-key-id and --storage-class: the backup function creates the object with them.
    await run(['--stack', 'openclaw-backup', 'tenants', 'backup', 'acme', '--to', 's3://backups/acme/c.tar.zst', '--sse', 'aws:kms', '--sse-kms-key-id', 'alias/backups', '--storage-class', 'STANDARD_IA']);
    expect(lambda.commandCalls(InvokeCommand)[2]!.args[0].input.Payload).toEqual(
      encode({ tenant: 'acme', to: 's3://backups/acme/c.tar.zst', overwrite: false, storage: { sse: 'aws:kms', sseKmsKeyId: 'alias/backups', storageClass: 'STANDARD_IA' } }),
    );
    // A gateway's --all sends them to the fan-out, which puts them in every tenant's message; a refused one is refused here.
    lambda.on(InvokeCommand, { FunctionName: 'openclaw-backup-fanout' }).resolves({ StatusCode: 200, Payload: encode({ operation: 'backup-all', runId: 'r', time: '2026-06-03T00:00:00.000Z', template: 't', tenants: 1, queued: 1, failed: [] }) as never });
    await run(['--stack', 'openclaw-backup', 'tenants', 'backup', '--all', '--to', 's3://backups/{tenant}/x.tar.zst', '--storage-class', 'STANDARD_IA']);
    expect(decode(lambda.commandCalls(InvokeCommand)[3]!.args[0].input.Payload as Uint8Array)).toMatchObject({ source: 'openclaw.fanout', to: 's3://backups/{tenant}/x.tar.zst', storage: { storageClass: 'STANDARD_IA' } });
    const refused = await run(['--stack', 'openclaw-backup', 'tenants', 'backup', '--all', '--to', 's3://backups/{tenant}/x.tar.zst', '--storage-class', 'GLACIER']);
    expect(refused).toMatchObject({ status: 2, stderr: expect.stringMatching(/^openclaw: --storage-class GLACIER is refused/) });
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(4);
    // One tenant's are refused here too, in the line local mode prints, before the gateway is called (they went to the backup function).
    for (const [flags, message] of [
      [['--sse', 'aes-256'], /^openclaw: invalid --sse "aes-256": give AES256, aws:kms, aws:kms:dsse/],
      [['--storage-class', 'DEEP_ARCHIVE'], /^openclaw: --storage-class DEEP_ARCHIVE is refused/],
      [['--sse', 'aws:kms', '--sse-kms-key-id', 'x; touch /tmp/pwn'], /^openclaw: invalid --sse-kms-key-id "x; touch \/tmp\/pwn"/],
      [['--sse-kms-key-id', 'alias/backups'], /^openclaw: --sse-kms-key-id names the key of --sse aws:kms/],
    ] as const) {
      const one = await run(['--stack', 'openclaw-backup', 'tenants', 'backup', 'acme', '--to', 's3://backups/acme/d.tar.zst', ...flags]);
      expect(one).toMatchObject({ status: 2, stdout: '', stderr: expect.stringMatching(message) });
      expect(one.stderr.trimEnd().split('\n')).toHaveLength(1);
    }
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(4);
  });

  it('invokes <prefix>-restore and <prefix>-list, the stack from OPENCLAW_STACK', async () => {
    vi.stubEnv('OPENCLAW_STACK', 'gw-prod');
    lambda
      .on(InvokeCommand, { FunctionName: 'gw-prod-list' })
      .resolves({ StatusCode: 200, Payload: encode({ tenants: ['acme', 'beta'] }) as never });
    expect(await run(['tenants', 'list', '--names'])).toEqual({ status: 0, stdout: 'acme\nbeta\n', stderr: '' });
    // A page that does not go on after the one before would never end: refused as another version's answer.
    lambda.on(InvokeCommand, { FunctionName: 'gw-prod-list' }).resolves({ StatusCode: 200, Payload: encode({ tenants: ['acme'], next: 'acme' }) as never });
    expect(await run(['tenants', 'list', '--names'])).toEqual({ status: 1, stdout: '', stderr: 'openclaw: unexpected answer from gw-prod-list: are the CLI and the gateway the same version?\n' });
    expect(lambda.commandCalls(InvokeCommand).map((call) => decode(call.args[0].input.Payload as Uint8Array)).slice(1)).toEqual([{ names: true, pages: true }, { names: true, pages: true, after: 'acme' }]);
    lambda.resetHistory();
    lambda.on(InvokeCommand, { FunctionName: 'gw-prod-list' }).resolves({ StatusCode: 200, Payload: encode({ tenants: ['acme', 'beta'] }) as never });
    expect(await run(['tenants', 'list', '--names'])).toEqual({ status: 0, stdout: 'acme\nbeta\n', stderr: '' });
    // In pages (one here), whose every answer names the skipped tenants too: one invocation.
    expect(lambda.commandCalls(InvokeCommand).map((call) => call.args[0].input)).toEqual([{ FunctionName: 'gw-prod-list', InvocationType: 'RequestResponse', Payload: encode({ names: true, pages: true }) }]);

    // What the pages' sweeps rolled back (an interrupted restore) is said as a local listing says it: a note, `recovered` in --json.
    const rolledBack = 'openclaw: note: an interrupted earlier restore of tenant "beta" was rolled back first: the tenant is as it was before that restore\n';
    lambda.on(InvokeCommand, { FunctionName: 'gw-prod-list' }).resolves({ StatusCode: 200, Payload: encode({ tenants: ['acme', 'beta'], recovered: [{ tenant: 'beta', action: 'rolled-back' }] }) as never });
    expect(await run(['tenants', 'list', '--names'])).toEqual({ status: 0, stdout: 'acme\nbeta\n', stderr: rolledBack });
    lambda.on(InvokeCommand, { FunctionName: 'gw-prod-list' }).resolves({
      StatusCode: 200,
      Payload: encode({ tenants: [{ name: 'beta', state: 'ok', bytes: 1, files: 1, lastModified: '2026-06-01T10:00:00.000Z', recovered: 'rolled-back' }], recovered: [{ tenant: 'beta', action: 'rolled-back' }] }) as never,
    });
    const listedJson = await run(['--json', 'tenants', 'list']);
    expect(listedJson.status).toBe(0);
    expect(JSON.parse(listedJson.stdout.split('\n')[0]!)).toMatchObject({ recovered: [{ tenant: 'beta', action: 'rolled-back' }] });
    lambda.on(InvokeCommand, { FunctionName: 'gw-prod-list' }).resolves({ StatusCode: 200, Payload: encode({ tenants: ['acme'], recovered: [{ tenant: 7 }] }) as never });
    expect(await run(['tenants', 'list', '--names'])).toMatchObject({ status: 1, stderr: 'openclaw: unexpected answer from gw-prod-list: are the CLI and the gateway the same version?\n' });

    // A directory whose name is no tenant name comes apart, in `strays` (a CLI older than them reads `skipped` alone): warned of, exit 0.
    const stray = { name: 'Acme', reason: '"Acme" in /mnt/tenants is not a valid tenant name (…): no command backs it up; rename it', invalidName: true };
    lambda.on(InvokeCommand, { FunctionName: 'gw-prod-list' }).resolves({ StatusCode: 200, Payload: encode({ tenants: ['acme'], strays: [stray] }) as never });
    expect(await run(['tenants', 'list', '--names'])).toEqual({ status: 0, stdout: 'acme\n', stderr: `openclaw: warning: ${stray.reason}\n` });
    const symlinked = { name: 'moved', reason: 'tenant "moved" in /mnt/tenants is a symlink; refusing to follow it' };
    lambda.on(InvokeCommand, { FunctionName: 'gw-prod-list' }).resolves({ StatusCode: 200, Payload: encode({ tenants: ['acme'], skipped: [symlinked], strays: [stray] }) as never });
    const both = await run(['--json', 'tenants', 'list', '--names']);
    expect(both.status).toBe(1);
    expect(JSON.parse(both.stdout.split('\n')[0]!)).toEqual({ tenants: ['acme'], skipped: [stray, symlinked] });

    lambda.on(InvokeCommand, { FunctionName: 'gw-prod-list' }).resolves({
      StatusCode: 200,
      Payload: encode({ tenants: [{ name: 'acme', bytes: 2048, files: 3, lastModified: '2026-06-01T10:00:00.000Z' }] }) as never,
    });
    const table = await run(['tenants', 'list']);
    expect(table.stdout.split('\n')).toEqual([expect.stringMatching(/^NAME\s+SIZE\s+FILES\s+LAST MODIFIED$/), expect.stringMatching(/^acme\s+2(\.0)? KiB\s+3  2026-06-01T10:00:00.000Z$/), '']);

    // A gateway that lists a tenant needing a decision: the STATE column appears.
    lambda.on(InvokeCommand, { FunctionName: 'gw-prod-list' }).resolves({
      StatusCode: 200,
      Payload: encode({ tenants: [{ name: 'acme', state: 'needs-recovery', detail: 'tenant "acme" needs a decision …' }, { name: 'beta', state: 'ok', bytes: 1, files: 1, lastModified: '2026-06-01T10:00:00.000Z' }] }) as never,
    });
    expect((await run(['tenants', 'list'])).stdout.split('\n')).toEqual([
      expect.stringMatching(/^NAME\s+SIZE\s+FILES\s+LAST MODIFIED\s+STATE$/),
      expect.stringMatching(/^acme\s+-\s+-\s+-\s+needs recovery: run "openclaw tenants recover acme" for the details$/),
      expect.stringMatching(/^beta\s+1 B\s+1\s+2026-06-01T10:00:00.000Z\s+ok$/),
      '',
    ]);
    // A tenant the list function could not walk in its invocation: listed with '-' and exit 0, a script could not tell.
    const notWalked = 'not walked: its walk outlasted the list function\'s invocation (a tenant of some 200,000 files on EFS): tenants list without --stack on a host that mounts the tenant volume sums it';
    lambda.on(InvokeCommand, { FunctionName: 'gw-prod-list' }).resolves({
      StatusCode: 200,
      Payload: encode({ tenants: [{ name: 'a-huge', state: 'unreadable', detail: notWalked }, { name: 'beta', state: 'ok', bytes: 1, files: 1, lastModified: '2026-06-01T10:00:00.000Z' }] }) as never,
    });
    const unsummed = await run(['tenants', 'list']);
    expect(unsummed).toEqual({ status: 1, stdout: expect.stringMatching(/^NAME.*STATE\na-huge\s+-\s+-\s+-\s+unreadable: not walked: .*\nbeta\s+1 B/), stderr: 'openclaw: 1 tenant listed without its size and files (its STATE says why): a-huge\n' });
    expect(JSON.parse((await run(['--json', 'tenants', 'list'])).stdout.split('\n')[0]!)).toMatchObject({ tenants: [{ name: 'a-huge', state: 'unreadable' }, { name: 'beta', state: 'ok' }] });
    // Names need no walk: exit 0.
    lambda.on(InvokeCommand, { FunctionName: 'gw-prod-list' }).resolves({ StatusCode: 200, Payload: encode({ tenants: ['a-huge', 'beta'] }) as never });
    expect(await run(['tenants', 'list', '--names'])).toEqual({ status: 0, stdout: 'a-huge\nbeta\n', stderr: '' });

    // Recovery is settled where the volume is mounted, not through the functions.
    const recover = await run(['tenants', 'recover', 'acme', '--keep', 'old']);
    expect(recover.status).toBe(2);
    expect(recover.stderr).toMatch(/^openclaw: tenants recover runs where the tenant base dir is mounted/);

    lambda.on(InvokeCommand, { FunctionName: 'gw-prod-restore' }).resolves({ StatusCode: 200, Payload: encode({ operation: 'restore', tenant: 'acme-2', archiveTenant: 'acme', location: 's3://b/k', files: 1, directories: 1, symlinks: 0, hardlinks: 0, bytes: 1, archiveBytes: 1, durationMs: 1, verified: true, replaced: false, backupCreatedAt: '2026-06-01T00:00:00.000Z', warnings: [], recovered: 'none', notices: [] }) as never });
    const restored = await run(['--json', 'tenants', 'restore', '--from', 's3://backups/acme.tar.zst', '--as', 'acme-2', '--max-bytes', '1000']);
    expect(restored.status).toBe(0);
    expect(JSON.parse(restored.stdout)).toMatchObject({ operation: 'restore', tenant: 'acme-2' });
    expect(lambda.commandCalls(InvokeCommand, { FunctionName: 'gw-prod-restore' })[0]!.args[0].input.Payload).toEqual(
      encode({ from: 's3://backups/acme.tar.zst', as: 'acme-2', force: false, limits: { maxBytes: 1000 } }),
    );
  });

  it.each([
    [{ code: 'SLOT_OCCUPIED', outcome: 'refused', message: 'tenant "acme" already exists in /mnt/tenants: give --force to replace it' }, 3],
    [{ code: 'TENANT_NOT_FOUND', outcome: 'refused', message: 'no tenant "x" in /mnt/tenants' }, 3],
    [{ code: 'DESTINATION_EXISTS', outcome: 'refused', message: 's3://b/k exists: give --overwrite' }, 3],
    [{ code: 'LOCATION_NOT_ALLOWED', outcome: 'refused', message: 'this gateway backs up to s3://backups/ only, not to bucket "x"' }, 3],
    [{ code: 'INVALID_NAME', outcome: 'usage', message: 'invalid tenant name "X"' }, 2],
    [{ code: 'REMOTE_UNSUPPORTED', outcome: 'usage', message: '--pipe runs a shell command' }, 2],
    [{ code: 'ACCESS_DENIED', outcome: 'failed', message: 'access denied to s3://b/k' }, 1],
    [{ code: 'ABORTED', outcome: 'failed', message: 'interrupted; nothing was stored' }, 1],
    [{ code: 'UNEXPECTED', outcome: 'failed', message: 'unexpected error: EIO: i/o error' }, 1],
  ])('maps the failure %j to the local exit code %i and one line', async (error, status) => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: encode({ ok: false, error }) as never });
    const human = await run(['--stack', 'openclaw-backup', 'tenants', 'backup', 'acme', '--to', 's3://backups/k.tar.zst']);
    expect(human).toEqual({ status, stdout: '', stderr: `openclaw: ${error.message}\n` });
    const json = await run(['--stack', 'openclaw-backup', '--json', 'tenants', 'backup', 'acme', '--to', 's3://backups/k.tar.zst']);
    expect(json.status).toBe(status);
    expect(JSON.parse(json.stdout)).toEqual({ error: { code: error.code, message: error.message } });
  });

  // What the list function's sweep settled comes back as page fields the CLI prints in a note:
  // a `recovered` entry naming no tenant (a terminal escape, a line break) was printed as sent.
  it('refuses a listing whose recovered entries name no tenant, and says those that do', async () => {
    vi.stubEnv('OPENCLAW_STACK', 'gw-prod');
    lambda.on(InvokeCommand, { FunctionName: 'gw-prod-list' }).resolves({ StatusCode: 200, Payload: encode({ tenants: ['acme'], recovered: [{ tenant: 'acme', action: 'rolled-back' }] }) as never });
    expect(await run(['tenants', 'list', '--names'])).toEqual({ status: 0, stdout: 'acme\n', stderr: 'openclaw: note: an interrupted earlier restore of tenant "acme" was rolled back first: the tenant is as it was before that restore\n' });
    for (const tenant of ['\u001b]0;owned\u0007acme', 'acme\nopenclaw: all tenants removed', 'Acme']) {
      lambda.on(InvokeCommand, { FunctionName: 'gw-prod-list' }).resolves({ StatusCode: 200, Payload: encode({ tenants: ['acme'], recovered: [{ tenant, action: 'rolled-back' }] }) as never });
      expect(await run(['tenants', 'list', '--names'])).toEqual({ status: 1, stdout: '', stderr: 'openclaw: unexpected answer from gw-prod-list: are the CLI and the gateway the same version?\n' });
    }
  });

  // A gateway of a later version may settle a restore in a way this CLI has no words for: it
  // printed "  note: undefined" (the wording's switch has no such case), where it had printed
  // the action's name.
  it('says a recovery action of a later gateway by its name, not "undefined"', async () => {
    vi.stubEnv('OPENCLAW_STACK', 'gw-prod');
    lambda.on(InvokeCommand, { FunctionName: 'gw-prod-backup' }).resolves({ StatusCode: 200, Payload: encode({ ...BACKUP_RESULT, recovered: 'kept-both\u001b[2J' }) as never });
    const backup = await run(['tenants', 'backup', 'acme', '--to', 's3://backups/acme/2026-06-03.tar.zst']);
    expect(backup.status).toBe(0);
    expect(backup.stdout).not.toContain('undefined');
    expect(backup.stdout).toContain('\n  note: an interrupted earlier operation on tenant "acme" was settled first (kept-both\\u001b[2J)\n');
  });

  it('reports a crashed or timed-out function, and AWS errors, in one line', async () => {
    const cases: Array<[object | Error, number, RegExp]> = [
      [{ StatusCode: 200, FunctionError: 'Unhandled', Payload: encode({ errorType: 'Runtime.ExitError', errorMessage: 'RequestId: x Error: Runtime exited with error: signal: killed' }) }, 1, /openclaw-backup-backup was killed before it answered \(its process exited: Runtime.ExitError: RequestId: x Error: Runtime exited with error: signal: killed\): the backup was cut off before its archive was complete/],
      [{ StatusCode: 200, FunctionError: 'Unhandled', Payload: encode({ errorType: 'Function.Unknown', errorMessage: 'RequestId: x Error: something else' }) }, 1, /openclaw-backup-backup failed: Function.Unknown: RequestId: x Error: something else/],
      [{ StatusCode: 200, FunctionError: 'Unhandled', Payload: encode({ errorMessage: '2026-06-03T03:15:00.000Z abc Task timed out after 900.00 seconds' }) }, 1, /openclaw-backup-backup timed out \(.*Task timed out after 900.00 seconds\)/],
      [{ StatusCode: 200, Payload: encode({ something: 'else' }) }, 1, /unexpected answer from openclaw-backup-backup: are the CLI and the gateway the same version\?/],
      [Object.assign(new Error('Function not found: arn:aws:lambda:eu-west-1:1:function:openclaw-backup-backup'), { name: 'ResourceNotFoundException' }), 2, /invoking openclaw-backup-backup: not found: is the stack "openclaw-backup" deployed there\?/],
      [Object.assign(new Error('User: x is not authorized to perform: lambda:InvokeFunction'), { name: 'AccessDeniedException' }), 1, /invoking openclaw-backup-backup: access denied \(User: x is not authorized/],
      [Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }), 1, /no AWS credentials for calling the gateway: give --aws-profile/],
      [Object.assign(new Error('The security token included in the request is expired'), { name: 'ExpiredTokenException' }), 1, /invoking openclaw-backup-backup: the AWS credentials were not accepted \(ExpiredTokenException\)/],
    ];
    for (const [outcome, status, message] of cases) {
      lambda.reset();
      if (outcome instanceof Error) lambda.on(InvokeCommand).rejects(outcome);
      else lambda.on(InvokeCommand).resolves(outcome as never);
      const result = await run(['--stack', 'openclaw-backup', 'tenants', 'backup', 'acme', '--to', 's3://backups/k.tar.zst']);
      expect(result.status, String(message)).toBe(status);
      expect(result.stderr).toMatch(new RegExp(`^openclaw: ${message.source}`));
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  // A gateway of another version can answer with the expected `operation` but another shape:
  // the CLIs before backups in pieces took the answer "the backup continues" for a finished
  // backup and failed on it with "unexpected error: Cannot read properties of undefined".
  // An answer lacking what the command shows is refused, naming the version mismatch, never
  // shown as "undefined files" with exit 0.
  it.each([
    [['tenants', 'backup', 'acme', '--to', 's3://backups/k.tar.zst'], 'backup', { operation: 'backup', queued: true, tenant: 'acme', location: 's3://backups/k.tar.zst', skipped: [], warnings: [] }],
    [['tenants', 'backup', 'acme', '--to', 's3://backups/k.tar.zst'], 'backup', { ...BACKUP_RESULT, files: '12' }],
    [['tenants', 'backup', 'acme', '--to', 's3://backups/k.tar.zst'], 'backup', { operation: 'backup', suspended: true, tenant: 'acme', location: 's3://backups/k.tar.zst' }],
    [['tenants', 'backup', 'acme', '--to', 's3://backups/k.tar.zst', '--dry-run'], 'backup', { operation: 'backup-plan', tenant: 'acme' }],
    [['tenants', 'restore', '--from', 's3://backups/k.tar.zst'], 'restore', { operation: 'restore', tenant: 'acme' }],
    [['tenants', 'restore', '--from', 's3://backups/k.tar.zst', '--dry-run'], 'restore', { operation: 'restore-plan', tenant: 'acme' }],
    [['tenants', 'verify', '--from', 's3://backups/k.tar.zst'], 'restore', { operation: 'verify', tenant: 'acme', location: 's3://backups/k.tar.zst', verified: false }],
    [['tenants', 'backups', 'acme', '--in', 's3://backups/'], 'restore', { operation: 'backups', tenant: 'acme', location: 's3://backups/', backups: [{}], otherObjects: 0 }],
    [['tenants', 'prune', 'acme', '--in', 's3://backups/', '--keep-last', '1'], 'prune', { operation: 'prune', tenant: 'acme' }],
  ])('refuses an answer to %j that lacks what the command shows, as from another version', async (args, role, answer) => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: encode(answer) as never });
    const message = `unexpected answer from openclaw-backup-${role}: are the CLI and the gateway the same version?`;
    const human = await run(['--stack', 'openclaw-backup', ...args]);
    expect(human).toEqual({ status: 1, stdout: '', stderr: `openclaw: ${message}\n` });
    const json = await run(['--stack', 'openclaw-backup', '--json', ...args]);
    expect(json.status).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({ error: { code: 'REMOTE_PROTOCOL', message } });
  });

  it('says a function that only later versions deploy may be missing from an older gateway', async () => {
    const notFound = (name: string) => Object.assign(new Error(`Function not found: arn:aws:lambda:eu-west-1:1:function:${name}`), { name: 'ResourceNotFoundException' });
    lambda.on(InvokeCommand, { FunctionName: 'openclaw-backup-prune' }).rejects(notFound('openclaw-backup-prune'));
    const prune = await run(['--stack', 'openclaw-backup', 'tenants', 'prune', 'acme', '--in', 's3://backups/acme/', '--keep-last', '1']);
    expect(prune.status).toBe(2);
    expect(prune.stderr).toMatch(/^openclaw: invoking openclaw-backup-prune: not found: is the stack "openclaw-backup" deployed there\? .*; if it is, it was deployed by an older version, without openclaw-backup-prune: tenants prune needs the gateway of this version\n$/);

    lambda.reset();
    lambda.on(InvokeCommand).rejects(notFound('openclaw-backup-backup'));
    const backup = await run(['--stack', 'openclaw-backup', 'tenants', 'backup', 'acme', '--to', 's3://backups/k.tar.zst']);
    expect(backup.stderr).not.toMatch(/older version/);
  });

  it('sends a throttled invocation again (it did not run), a few times, then says so in one line', async () => {
    const throttled = Object.assign(new Error('Rate Exceeded.'), { name: 'TooManyRequestsException', $metadata: { httpStatusCode: 429 } });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    onTestFinished(() => void vi.useRealTimers());
    const settle = async <T>(pending: Promise<T>): Promise<T> => {
      let done = false;
      void pending.finally(() => (done = true));
      while (!done) await vi.advanceTimersByTimeAsync(1_000);
      return pending;
    };

    lambda.on(InvokeCommand).rejectsOnce(throttled).rejectsOnce(throttled).resolves({ StatusCode: 200, Payload: encode(BACKUP_RESULT) as never });
    const backup = await settle(run(['--stack', 'openclaw-backup', 'tenants', 'backup', 'acme', '--to', 's3://backups/acme/2026-06-03.tar.zst']));
    expect(backup).toMatchObject({ status: 0, stderr: '' });
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(3);

    lambda.reset();
    lambda.on(InvokeCommand).rejects(throttled);
    const verify = await settle(run(['--stack', 'openclaw-backup', 'tenants', 'verify', '--from', 's3://backups/k.tar.zst']));
    expect(verify).toEqual({ status: 1, stdout: '', stderr: 'openclaw: invoking openclaw-backup-restore: throttled by AWS; try again shortly\n' });
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(5);

    // Any other failure is not sent again: the invocation may have run.
    lambda.reset();
    lambda.on(InvokeCommand).rejects(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    expect((await run(['--stack', 'openclaw-backup', 'tenants', 'backup', 'acme', '--to', 's3://backups/k.tar.zst'])).status).toBe(1);
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(1);
  });

  it('says what to do when an answer is over the 6 MB a Lambda response holds', async () => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, FunctionError: 'Unhandled', Payload: encode({ errorType: 'Function.ResponseSizeTooLarge', errorMessage: 'Response payload size exceeded maximum allowed payload size (6291556 bytes).' }) } as never);
    const result = await run(['--stack', 'openclaw-backup', 'tenants', 'prune', 'acme', '--in', 's3://backups/acme/', '--keep-last', '3', '--dry-run']);
    expect(result).toEqual({
      status: 1,
      stdout: '',
      stderr:
        'openclaw: openclaw-backup-prune could not answer: its answer is larger than the 6 MB a Lambda response may hold; ' +
        'run the command without --stack, on a host that mounts the tenant volume (tenants list) or reaches the bucket\n',
    });
  });

  it('says what a function stopped at its timeout left, and what to do', async () => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, FunctionError: 'Unhandled', Payload: encode({ errorType: 'Sandbox.Timedout', errorMessage: 'RequestId: 9d22 Error: Task timed out after 900.00 seconds' }) } as never);
    const cases: Array<[string[], string]> = [
      [
        ['tenants', 'restore', '--from', 's3://backups/acme/big.tar.zst', '--force'],
        'openclaw-backup-restore timed out (RequestId: 9d22 Error: Task timed out after 900.00 seconds): the restore was cut off; the next command on the tenant settles what it left ' +
          '(once its lock is a minute old), keeping the previous tenant unless the new one was already verified: check with tenants list, ' +
          'and restore an archive this large with the CLI in local mode on a host that mounts the tenant volume',
      ],
      [['tenants', 'backup', 'acme', '--to', 's3://backups/k.tar.zst'], 'openclaw-backup-backup timed out (RequestId: 9d22 Error: Task timed out after 900.00 seconds): the backup was cut off before its archive was complete, so none was stored under its name; try again'],
      [['tenants', 'prune', 'acme', '--in', 's3://backups/acme/', '--keep-last', '3'], 'openclaw-backup-prune timed out (RequestId: 9d22 Error: Task timed out after 900.00 seconds): the prune was cut off: the backups it removed are gone and the others are still there; run it again'],
      [['tenants', 'verify', '--from', 's3://backups/k.tar.zst'], 'openclaw-backup-restore timed out (RequestId: 9d22 Error: Task timed out after 900.00 seconds): nothing was changed; try again'],
      [['tenants', 'restore', '--from', 's3://backups/k.tar.zst', '--dry-run'], 'openclaw-backup-restore timed out (RequestId: 9d22 Error: Task timed out after 900.00 seconds): nothing was changed; try again'],
    ];
    for (const [args, message] of cases) {
      const result = await run(['--stack', 'openclaw-backup', ...args]);
      expect(result).toEqual({ status: 1, stdout: '', stderr: `openclaw: ${message}\n` });
      const json = await run(['--stack', 'openclaw-backup', '--json', ...args]);
      expect(JSON.parse(json.stdout)).toEqual({ error: { code: 'REMOTE_TIMEOUT', message } });
    }
  });

  it('says what a function killed before it answered (out of memory) left, as a timeout\'s', async () => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, FunctionError: 'Unhandled', Payload: encode({ errorType: 'Runtime.OutOfMemory', errorMessage: 'RequestId: 9d22 Error: Runtime exited with error: signal: killed' }) } as never);
    const result = await run(['--stack', 'openclaw-backup', 'tenants', 'restore', '--from', 's3://backups/acme/big.tar.zst', '--force']);
    expect(result).toEqual({
      status: 1,
      stdout: '',
      stderr:
        'openclaw: openclaw-backup-restore was killed before it answered (out of memory: Runtime.OutOfMemory: RequestId: 9d22 Error: Runtime exited with error: signal: killed): ' +
        'the restore was cut off; the next command on the tenant settles what it left (once its lock is a minute old), keeping the previous tenant unless the new one was already verified: ' +
        'check with tenants list, and restore an archive this large with the CLI in local mode on a host that mounts the tenant volume\n',
    });
    const listing = await run(['--stack', 'openclaw-backup', 'tenants', 'verify', '--from', 's3://backups/acme/big.tar.zst']);
    expect(listing.stderr).toMatch(/^openclaw: openclaw-backup-restore was killed before it answered \(out of memory: .*\): nothing was changed; try again\n$/);
  });

  it('refuses what remote mode cannot do before calling anything', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['tenants', 'backup', 'acme', '--to', 's3://backups/k', '--pipe', 'age -r age1x'], /--pipe runs a shell command and is not available in remote mode \(the gateway's Lambda functions\): encrypt with --encrypt-to age1… or --recipients-file FILE/],
      [['tenants', 'restore', '--from', 's3://backups/k.tar.zst.age', '--pipe', 'age -d -i key.txt'], /--pipe runs a shell command and is not available in remote mode \(the gateway's Lambda functions\): an age-encrypted archive is decrypted with --identity-secret NAME/],
      [['tenants', 'verify', '--from', 's3://backups/k.tar.zst.age', '--pipe', 'age -d -i key.txt'], /an age-encrypted archive is decrypted with --identity-secret NAME/],
      [['tenants', 'restore', '--from', '/var/backups/acme.tar.zst'], /in remote mode archives are stored in S3: --from must be s3:\/\/bucket\/key/],
      // A location mistyped is named as local mode names it, not as a path the gateway cannot reach.
      [['tenants', 'verify', '--from', ' s3://backups/k.tar.zst'], /^openclaw: " s3:\/\/backups\/k\.tar\.zst" starts with whitespace/],
      [['tenants', 'restore', '--from', 'https://backups.s3.eu-west-1.amazonaws.com/acme/a+b.tar.zst'], /^openclaw: "https:\/\/…" is an S3 object's web address, not a location: write "s3:\/\/backups\/acme\/a b\.tar\.zst"\n$/],
      [['tenants', 'backup', 'acme', '--to', 'S3://backups/k.tar.zst'], /^openclaw: S3 URLs are written in lowercase: s3:\/\/bucket\/key\n$/],
      [['tenants', 'backups', 'acme', '--in', 's3:/backups/acme/'], /^openclaw: "s3:\/backups\/acme\/" looks like a mistyped URL, not a file path: write s3:\/\/bucket\/prefix\//],
      [['--tenants-dir', '/srv/tenants', 'tenants', 'list'], /--tenants-dir is a local-mode setting/],
    ];
    for (const [args, message] of cases) {
      const result = await run(['--stack', 'openclaw-backup', ...args]);
      expect(result.status).toBe(2);
      expect(result.stderr).toMatch(message);
    }
    expect((await run(['--stack', 'Bad_Stack', 'tenants', 'list'])).stderr).toMatch(/invalid --stack "Bad_Stack"/);
    // `--stack ''` overrides OPENCLAW_STACK: local mode.
    vi.stubEnv('OPENCLAW_STACK', 'openclaw-backup');
    const local = await run(['--stack', '', '--tenants-dir', '/nonexistent/openclaw-test', 'tenants', 'list', '--names']);
    // Local mode: the missing base dir is named (exit 1), and no function is invoked.
    expect(local).toEqual({ status: 1, stdout: '', stderr: 'openclaw: the tenant base dir /nonexistent/openclaw-test does not exist (set it with --tenants-dir or OPENCLAW_TENANTS_DIR)\n' });
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(0);
  });

  it('says an interrupted remote backup may still finish on the gateway', async () => {
    const controller = new AbortController();
    controller.abort();
    lambda.on(InvokeCommand).rejects(Object.assign(new Error('Request aborted'), { name: 'AbortError' }));
    const backup = remoteOperations({ stack: 'openclaw-backup', region: 'eu-west-1' }).backup({ tenant: 'acme', to: 's3://backups/k' }, { signal: controller.signal });
    await expect(backup).rejects.toBeInstanceOf(AbortedError);
    await expect(backup).rejects.toThrow(/the backup may still finish there/);
  });
});

describe('remote and local runs of the same command', () => {
  const dir = tempDir('openclaw-remote-');
  const base = path.join(dir.path, 'tenants');
  let server: S3TestServer;
  /** s3rver behind a proxy that, like B2, Wasabi or a MinIO with a region, takes only requests signed for eu-central-1. */
  let regional: RecordingServer;
  const context = () => lambdaContext();

  beforeAll(async () => {
    createSampleTenant(path.join(base, 'acme'), { sessions: 2, memoryRows: 10 });
    server = await startS3Server({ bucket: 'backups' });
    regional = await startRegionProxy(server.endpoint, 'eu-central-1');
  });
  afterAll(async () => {
    await regional.stop();
    await server.dispose();
    dir.cleanup();
  });
  beforeEach(() => {
    // The gateway: the mocked Invoke runs the real handlers on the same base dir.
    const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });
    // s3rver stands for an S3-compatible store the deployer listed (context allowedEndpoints).
    const config = { tenantsDir: base, backupBucket: 'backups', allowedSourceBuckets: [], allowedEndpoints: [server.endpoint, regional.endpoint], abortMarginMs: 1000 };
    const publish = completionPublisher(new EventBridgeClient({ region: 'eu-west-1' }), undefined, logger);
    const handlers: Record<string, (event: unknown, context: LambdaContext) => Promise<unknown>> = {
      'openclaw-backup-backup': backupHandler({ config, logger, publish }),
      'openclaw-backup-restore': restoreHandler({ config, logger, publish }),
      'openclaw-backup-list': listHandler({ config, logger }),
    };
    lambda.on(InvokeCommand).callsFake(async (input: { FunctionName: string; Payload: Uint8Array }) => ({
      StatusCode: 200,
      Payload: encode(await handlers[input.FunctionName]!(decode(input.Payload), context())),
    }));
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0 });
  });

  const storage = () => ['--endpoint', server.endpoint, '--access-key', S3RVER_ACCESS_KEY, '--secret-key', 'x'];
  const local = (args: string[]) => run(['--tenants-dir', base, ...args]);
  const remote = (args: string[]) => run(['--stack', 'openclaw-backup', ...args]);
  /** Durations and paths of the base dir differ between the two; everything else must not. */
  const normalise = (text: string) => text.replace(/\d+(\.\d+)? s\b/g, 'N s').replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, 'TIME').split(base).join('<base>').replace('openclaw-backup:/mnt/tenants', '<base>');

  it('backs up, restores and refuses alike', async () => {
    const backupLocal = await local(['--json', 'tenants', 'backup', 'acme', '--to', 's3://backups/local.tar.zst', ...storage()]);
    const backupRemote = await remote(['--json', 'tenants', 'backup', 'acme', '--to', 's3://backups/remote.tar.zst', ...storage()]);
    expect(backupRemote.status).toBe(0);
    // The manifests differ in their creation time, so their compressed sizes may differ by a few bytes too.
    const strip = (result: Run) => {
      const { durationMs, createdAt, location, manifestSha256, archiveBytes, ...rest } = JSON.parse(result.stdout) as Record<string, unknown>;
      expect(archiveBytes).toEqual(expect.any(Number));
      return rest;
    };
    expect(strip(backupRemote)).toEqual(strip(backupLocal));

    const restoreLocal = await local(['tenants', 'restore', '--from', 's3://backups/local.tar.zst', '--as', 'acme-l', ...storage()]);
    const restoreRemote = await remote(['tenants', 'restore', '--from', 's3://backups/remote.tar.zst', '--as', 'acme-r', ...storage()]);
    expect(restoreRemote.status).toBe(0);
    expect(normalise(restoreRemote.stdout).replace(/acme-r|remote/g, 'X')).toEqual(normalise(restoreLocal.stdout).replace(/acme-l|local/g, 'X'));

    for (const args of [
      ['tenants', 'restore', '--from', 's3://backups/local.tar.zst', '--as', 'acme-l', ...storage()],
      ['tenants', 'backup', 'nobody', '--to', 's3://backups/nobody.tar.zst', ...storage()],
      ['tenants', 'backup', 'acme', '--to', 's3://backups/local.tar.zst', ...storage()],
      ['tenants', 'backup', 'Bad', '--to', 's3://backups/x.tar.zst', ...storage()],
    ]) {
      const [l, r] = [await local(args), await remote(args)];
      expect(r.status, args.join(' ')).toBe(l.status);
      expect(normalise(r.stderr)).toBe(normalise(l.stderr));
    }

    expect((await remote(['tenants', 'list', '--names'])).stdout).toBe((await local(['tenants', 'list', '--names'])).stdout);
  });

  // A restore killed on the volume (`--as newco`, a tenant that did not exist before, or
  // `--force` over acme): the list function's sweep rolled it back and `tenants list --stack`
  // (--names too, --json) said nothing, exit 0, where local mode says it on stderr and in a
  // top-level `recovered` (the listing's non-enumerable `recovered` was lost in the page, and
  // no page carried it).
  it('says an interrupted restore the list function\'s sweep rolled back, as local mode does (list, --names, --json)', async () => {
    const source = path.join(dir.path, 'rolled-back-source.tar.zst');
    expect((await local(['tenants', 'backup', 'acme', '--to', source])).status).toBe(0);
    const crashed = (args: string[]) => {
      expect(runCli(['--tenants-dir', base, 'tenants', 'restore', '--from', source, ...args], { env: { OPENCLAW_TEST_CRASH_AT: 'restore:verified' } }).status).not.toBe(0);
      expect(readdirSync(base).some((name) => name.startsWith('.openclaw-staging-'))).toBe(true);
    };
    const gone = 'note: an interrupted earlier restore of tenant "newco" was rolled back first: there was no tenant "newco" before it and there is none now (run that restore again)';
    const acme = 'note: an interrupted earlier restore of tenant "acme" was rolled back first: the tenant is as it was before that restore';
    crashed(['--as', 'newco']);
    const list = await remote(['tenants', 'list']);
    expect(list.status, list.stderr).toBe(0);
    expect(list.stderr).toBe(`openclaw: ${gone}\n`);
    expect(readdirSync(base)).not.toContain('newco');
    crashed(['--force']);
    const names = await remote(['tenants', 'list', '--names']);
    expect(names).toMatchObject({ status: 0, stderr: `openclaw: ${acme}\n` });
    expect(names.stdout).toBe((await local(['tenants', 'list', '--names'])).stdout);
    crashed(['--as', 'newco']);
    const json = JSON.parse((await remote(['--json', 'tenants', 'list', '--names'])).stdout) as { recovered?: unknown; notices?: unknown };
    expect(json.recovered).toEqual([{ tenant: 'newco', action: 'rolled-back' }]);
    expect(json.notices).toEqual([gone]);
    // Said once: the next listing has nothing to settle.
    const again = await remote(['--json', 'tenants', 'list']);
    expect(again.stderr).toBe('');
    expect(JSON.parse(again.stdout)).not.toHaveProperty('recovered');
  });

  it('prints the restore function\'s refusal of an archive of more entries than its time left stages in one line (exit 3), nothing left on the volume', async () => {
    expect((await remote(['tenants', 'backup', 'acme', '--to', 's3://backups/many.tar.zst', ...storage()])).status).toBe(0);
    const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });
    // 899 s, less the moment its bytes take at 40 MB/s, at 0.01 a second: 8 entries, fewer than the sample tenant's.
    const config = { tenantsDir: base, backupBucket: 'backups', allowedSourceBuckets: [], allowedEndpoints: [server.endpoint], abortMarginMs: 1000, restoreEntriesPerSecond: 0.01 };
    const restore = restoreHandler({ config, logger, publish: completionPublisher(new EventBridgeClient({ region: 'eu-west-1' }), undefined, logger) });
    lambda.on(InvokeCommand).callsFake(async (input: { Payload: Uint8Array }) => ({ StatusCode: 200, Payload: encode(await restore(decode(input.Payload), context())) }));
    const before = readdirSync(base).sort();
    const r = await remote(['tenants', 'restore', '--from', 's3://backups/many.tar.zst', '--as', 'acme-many', ...storage()]);
    expect(r.stderr).toMatch(
      /^openclaw: s3:\/\/backups\/many\.tar\.zst holds [\d,]+ entries to restore \(its footer says\), more than the 8 the restore function can stage in the 89[89] s it has left at 0\.01 a second \(OPENCLAW_RESTORE_ENTRIES_PER_SECOND\): restore it with the CLI in local mode on a host that mounts the tenant volume\n$/,
    );
    expect(r.stdout).toBe('');
    expect(r.status).toBe(3);
    expect(readdirSync(base).sort()).toEqual(before);
  });

  it('says, of a tenant a backup in pieces keeps busy, that the gateway ends a broken one, not `tenants recover` (which cannot run there)', async () => {
    expect((await remote(['tenants', 'backup', 'acme', '--to', 's3://backups/busy.tar.zst', ...storage()])).status).toBe(0);
    // A chain's state (damaged, as a broken chain may leave it), saved an hour ago.
    const state = path.join(base, '.openclaw-continuation-acme');
    writeFileSync(state, 'not a state');
    onTestFinished(() => rmSync(state, { force: true }));
    const savedAt = new Date(Math.floor(Date.now() / 1000) * 1000 - 3_600_000);
    utimesSync(state, savedAt, savedAt);
    const endsAt = new Date(savedAt.getTime() + 24 * 3_600_000).toISOString();
    for (const args of [
      ['tenants', 'backup', 'acme', '--to', 's3://backups/busy-2.tar.zst', ...storage()],
      ['tenants', 'restore', '--from', 's3://backups/busy.tar.zst', '--force', ...storage()],
    ]) {
      const r = await remote(args);
      expect(r.status, args[1]).toBe(3);
      expect(r.stderr).toBe(
        `openclaw: tenant "acme" is busy: a backup of it continues across invocations (state ${state}, saved ${savedAt.toISOString()}); the ${args[1]} can run once it ends. ` +
          `One that broke is ended (upload aborted, failure event) by the gateway's first backup invocation after ${endsAt} (24 h without a piece); ` +
          'a damaged state is ended at once by `openclaw --tenants-dir DIR tenants recover acme` on a host that mounts the tenant volume at DIR\n',
      );
    }
    // Where the base dir is mounted, recover is the way.
    const l = await local(['tenants', 'restore', '--from', 's3://backups/busy.tar.zst', '--force', ...storage()]);
    expect(l.status).toBe(3);
    expect(l.stderr).toMatch(/: `openclaw tenants recover acme` ends it when no piece has saved it for 24 h, or its state is damaged\n$/);
  });

  it('signs requests to an --endpoint for the region local mode signs them for: --region, else the profile\'s (before: always us-east-1)', async () => {
    const signed = ['--endpoint', regional.endpoint, '--access-key', S3RVER_ACCESS_KEY, '--secret-key', 'x'];
    const args = ['tenants', 'backup', 'acme', '--to', 's3://backups/regional.tar.zst', ...signed];
    // Without a region both modes sign for us-east-1, and both say which region to pass.
    const [l, r] = [await local(args), await remote(args)];
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(l.stderr);
    expect(r.stderr).toMatch(/pass --region eu-central-1\n$/);
    const withRegion = await remote([...args, '--region', 'eu-central-1']);
    expect(withRegion.stderr).toBe('');
    expect(withRegion.status).toBe(0);
    const payload = () => decode(lambda.commandCalls(InvokeCommand).at(-1)!.args[0].input.Payload as Uint8Array);
    expect(payload()).toMatchObject({ storage: { endpoint: regional.endpoint, region: 'eu-central-1' } });
    // The profile's region (AWS_PROFILE, as local mode reads it), for a verify and a listing too.
    const config = path.join(dir.path, 'aws-config');
    writeFileSync(config, '[profile store]\nregion = eu-central-1\n');
    vi.stubEnv('AWS_CONFIG_FILE', config);
    vi.stubEnv('AWS_PROFILE', 'store');
    const verify = await remote(['tenants', 'verify', '--from', 's3://backups/regional.tar.zst', '--no-record', ...signed]);
    expect(verify.stderr).toBe('');
    expect(verify.status).toBe(0);
    expect(payload()).toMatchObject({ storage: { region: 'eu-central-1' } });
    const listing = await remote(['--json', 'tenants', 'backups', 'acme', '--in', 's3://backups/', ...signed]);
    expect(listing.status).toBe(0);
    expect(JSON.parse(listing.stdout).backups.map((entry: { name: string }) => entry.name)).toContain('regional.tar.zst');
    // AWS S3 itself (no endpoint): the region stays the CLI's, for the gateway; the function's role finds the bucket's.
    expect((await remote(['tenants', 'backups', 'acme', '--in', 's3://elsewhere/', '--region', 'eu-west-1'])).status).toBe(3);
    expect(payload()).not.toHaveProperty('storage');
  });
});
