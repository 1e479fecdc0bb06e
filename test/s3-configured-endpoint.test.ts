// `--aws-profile NAME` means what `AWS_PROFILE=NAME` means: an endpoint the profile (or the
// environment) configures is used, with the same S3-compatible settings as `--endpoint`
// (path-style, checksums only when required: an archive stored through s3rver is byte-exact),
// and the result says which endpoint was used and why. The resolution order is the SDK's:
// AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's services section, its endpoint_url;
// none when ignore_configured_endpoint_urls says so.

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

import { createSampleTenant } from '../scripts/sample-tenant.js';
import { configuredEndpoint } from '../shared/storage/configured-endpoint.js';
import { UsageError } from '../shared/errors.js';
import { openLocation, s3ClientFor } from '../shared/storage/open-location.js';
import { openStore } from '../shared/storage/open-store.js';
import { startS3Server, type S3TestServer } from './helpers/s3-server.js';
import { describeTree, runCliIn, tempDir, type CliRun } from './helpers/tree.js';

const AWS_CLI = '/usr/bin/aws';
const run = promisify(execFile);

let dir: ReturnType<typeof tempDir>;
let config: string;
let credentials: string;

beforeEach(() => {
  dir = tempDir('openclaw-endpoints-');
  config = path.join(dir.path, 'config');
  credentials = path.join(dir.path, 'credentials');
  writeFileSync(credentials, '');
  vi.stubEnv('AWS_CONFIG_FILE', config);
  vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', credentials);
  for (const name of ['AWS_PROFILE', 'AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_S3', 'AWS_IGNORE_CONFIGURED_ENDPOINT_URLS']) vi.stubEnv(name, undefined);
});
afterEach(() => {
  vi.unstubAllEnvs();
  dir.cleanup();
});

describe('configured endpoints', () => {
  beforeEach(() => {
    writeFileSync(
      config,
      [
        '[default]',
        'region = eu-west-1',
        '[profile minio]',
        'endpoint_url = http://minio.internal:9000',
        '[profile split]',
        'endpoint_url = http://everything.internal',
        'services = local-s3',
        '[services local-s3]',
        's3 =',
        '  endpoint_url = http://s3-only.internal:9000',
        '[profile lost]',
        'services = no-such-section',
        'endpoint_url = http://fallback.internal',
        '[profile quiet]',
        'endpoint_url = http://minio.internal:9000',
        'ignore_configured_endpoint_urls = true',
        '',
      ].join('\n'),
    );
  });

  it('reads the named profile, not only AWS_PROFILE', async () => {
    expect(await configuredEndpoint('S3', { profile: 'minio' })).toEqual({ url: 'http://minio.internal:9000', source: 'profile minio, endpoint_url' });
    expect(await configuredEndpoint('S3')).toBeUndefined(); // the default profile has none
    vi.stubEnv('AWS_PROFILE', 'minio');
    expect(await configuredEndpoint('S3')).toEqual({ url: 'http://minio.internal:9000', source: 'profile minio, endpoint_url' });
  });

  it('prefers the services section for its service, the profile for the others', async () => {
    expect(await configuredEndpoint('S3', { profile: 'split' })).toEqual({ url: 'http://s3-only.internal:9000', source: 'profile split, services local-s3' });
    expect(await configuredEndpoint('Lambda', { profile: 'split' })).toEqual({ url: 'http://everything.internal', source: 'profile split, endpoint_url' });
    expect(await configuredEndpoint('S3', { profile: 'lost' })).toEqual({ url: 'http://fallback.internal', source: 'profile lost, endpoint_url' });
  });

  it('takes the environment first, the service\'s variable before the general one', async () => {
    vi.stubEnv('AWS_ENDPOINT_URL', 'http://general.internal');
    expect(await configuredEndpoint('S3', { profile: 'minio' })).toEqual({ url: 'http://general.internal', source: 'AWS_ENDPOINT_URL' });
    vi.stubEnv('AWS_ENDPOINT_URL_S3', 'http://s3.internal');
    expect(await configuredEndpoint('S3', { profile: 'minio' })).toEqual({ url: 'http://s3.internal', source: 'AWS_ENDPOINT_URL_S3' });
    expect(await configuredEndpoint('EventBridge', { profile: 'minio' })).toEqual({ url: 'http://general.internal', source: 'AWS_ENDPOINT_URL' });
  });

  it('configures none when told to ignore them, by the profile or the environment', async () => {
    expect(await configuredEndpoint('S3', { profile: 'quiet' })).toBeUndefined();
    vi.stubEnv('AWS_ENDPOINT_URL_S3', 'http://s3.internal');
    vi.stubEnv('AWS_IGNORE_CONFIGURED_ENDPOINT_URLS', 'true');
    expect(await configuredEndpoint('S3', { profile: 'minio' })).toBeUndefined();
  });

  it('gives an S3 location the endpoint, as --endpoint would', async () => {
    const location = await openLocation('s3://bucket/acme.tar.zst', { awsProfile: 'minio' });
    expect(location.endpoint).toEqual({ url: 'http://minio.internal:9000', source: 'profile minio, endpoint_url' });
    const flagged = await openLocation('s3://bucket/acme.tar.zst', { awsProfile: 'minio', endpoint: 'https://other.internal' });
    expect(flagged.endpoint).toEqual({ url: 'https://other.internal', source: '--endpoint' });
    const aws = await openLocation('s3://bucket/acme.tar.zst', { region: 'eu-west-1' });
    expect(aws.endpoint).toBeUndefined();
  });

  it('signs for the profile\'s region at a custom endpoint (B2, Wasabi, a MinIO with a region refuse us-east-1), --region first, us-east-1 without either', async () => {
    writeFileSync(
      config,
      [
        '[default]',
        'region = eu-west-1',
        '[profile b2]',
        'region = us-west-004',
        'endpoint_url = https://s3.us-west-004.backblazeb2.com',
        '[profile minio]',
        'endpoint_url = http://minio.internal:9000',
        '',
      ].join('\n'),
    );
    const regionOf = async (options: Parameters<typeof s3ClientFor>[0]) => (await s3ClientFor(options)).client.config.region();
    expect(await regionOf({ awsProfile: 'b2' })).toBe('us-west-004');
    vi.stubEnv('AWS_PROFILE', 'b2');
    expect(await regionOf({})).toBe('us-west-004');
    expect(await regionOf({ endpoint: 'http://127.0.0.1:9' })).toBe('us-west-004');
    vi.stubEnv('AWS_PROFILE', undefined);
    expect(await regionOf({ awsProfile: 'b2', region: 'eu-central-003' })).toBe('eu-central-003');
    expect(await regionOf({ awsProfile: 'minio' })).toBe('us-east-1');
    // The default profile's region, with --endpoint, as the aws CLI signs it.
    expect(await regionOf({ endpoint: 'http://127.0.0.1:9' })).toBe('eu-west-1');
  });

  it('refuses a configured endpoint that is not a plain http(s) URL, naming where it came from', async () => {
    writeFileSync(config, '[profile bad]\nendpoint_url = ftp://minio.internal\n[profile creds]\nendpoint_url = https://AKIA:secret@minio.internal\n');
    await expect(openLocation('s3://bucket/x', { awsProfile: 'bad' })).rejects.toThrow('invalid endpoint URL (from profile bad, endpoint_url): only http:// and https:// URLs are supported');
    const error = (await openLocation('s3://bucket/x', { awsProfile: 'creds' }).catch((e: unknown) => e)) as Error;
    expect(error.message).toBe('credentials in endpoint URL (from profile creds, endpoint_url) are not supported: use --access-key and --secret-key');
  });

  it('refuses a --aws-profile that neither shared file holds, by name, instead of failing later on a missing region', async () => {
    writeFileSync(credentials, '[keys-only]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = secret\n');
    const error = await openLocation('s3://bucket/x', { awsProfile: 'mnio' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toBe(`AWS profile "mnio" is in neither shared config file (${config}, ${credentials}), which hold default, keys-only, lost, minio, quiet, split`);
    await expect(openStore('s3://bucket/acme/', { awsProfile: 'mnio' })).rejects.toBeInstanceOf(UsageError);
    // A profile of either file is enough.
    expect((await openLocation('s3://bucket/x', { awsProfile: 'minio' })).endpoint?.url).toBe('http://minio.internal:9000');
    await expect(openLocation('s3://bucket/x', { awsProfile: 'keys-only', region: 'eu-west-1' })).resolves.toBeDefined();
  });

  it('refuses an AWS_PROFILE that neither shared file holds, naming the variable, unless static keys are given', async () => {
    vi.stubEnv('AWS_PROFILE', 'mnio');
    const error = await openLocation('s3://bucket/x', { region: 'eu-west-1' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toBe(`AWS profile "mnio" (AWS_PROFILE) is in neither shared config file (${config}, ${credentials}), which hold default, lost, minio, quiet, split`);
    await expect(openStore('s3://bucket/acme/', { region: 'eu-west-1' })).rejects.toBeInstanceOf(UsageError);
    // --aws-profile wins over it; --access-key makes any profile irrelevant.
    await expect(openLocation('s3://bucket/x', { awsProfile: 'minio' })).resolves.toBeDefined();
    await expect(openLocation('s3://bucket/x', { endpoint: 'http://127.0.0.1:9', accessKey: 'AK', secretKey: 'SK' })).resolves.toBeDefined();
  });
});

describe('a backup and restore with --aws-profile against s3rver', () => {
  let server: S3TestServer;
  beforeAll(async () => {
    server = await startS3Server();
  });
  afterAll(async () => {
    await server?.dispose();
  });

  let base: string;
  beforeEach(() => {
    writeFileSync(config, `[profile minio]\nregion = us-east-1\nendpoint_url = ${server.endpoint}\naws_access_key_id = S3RVER\naws_secret_access_key = anything\n`);
    base = path.join(dir.path, 'tenants');
    mkdirSync(base);
    createSampleTenant(path.join(base, 'acme'), { sessions: 2, memoryRows: 10 });
  });

  /** The built CLI with only the shared files for AWS settings (no keys or region in the environment). */
  function openclaw(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
    return runCliIn({ PATH: process.env.PATH, HOME: dir.path, AWS_CONFIG_FILE: config, AWS_SHARED_CREDENTIALS_FILE: credentials, AWS_EC2_METADATA_DISABLED: 'true', ...env }, args);
  }

  it('stores the archive at the profile\'s endpoint, says so, and restores it from there', async () => {
    const key = `profile-${Date.now()}.tar.zst`;
    const backup = await openclaw(['--tenants-dir', base, '--json', 'tenants', 'backup', 'acme', '--to', `s3://${server.bucket}/${key}`, '--aws-profile', 'minio']);
    expect(backup.stderr).toBe('');
    expect(backup.status).toBe(0);
    expect(JSON.parse(backup.stdout)).toMatchObject({ location: `s3://${server.bucket}/${key}`, endpoint: { url: server.endpoint, source: 'profile minio, endpoint_url' } });

    const restore = await openclaw(['--tenants-dir', base, 'tenants', 'restore', '--from', `s3://${server.bucket}/${key}`, '--aws-profile', 'minio', '--as', 'copy']);
    expect(restore.stderr).toBe('');
    expect(restore.stdout).toContain(`from s3://${server.bucket}/${key} via ${server.endpoint} (profile minio, endpoint_url) into`);
    expect(describeTree(path.join(base, 'copy'))).toEqual(describeTree(path.join(base, 'acme'), { exclude: (relPath) => relPath === 'pty' || relPath.startsWith('pty/') }));
  });

  it.runIf(existsSync(AWS_CLI))('stores it byte for byte, as the AWS CLI and zstd see it (no aws-chunked framing)', async () => {
    const key = `bytes-${Date.now()}.tar.zst`;
    const file = path.join(dir.path, 'via-profile.tar.zst');
    expect((await openclaw(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', file])).status).toBe(0);
    expect((await openclaw(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', `s3://${server.bucket}/${key}`, '--aws-profile', 'minio'])).status).toBe(0);
    const env = { PATH: '/usr/bin:/bin', HOME: dir.path, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_DEFAULT_REGION: 'us-east-1', AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent', AWS_PAGER: '' };
    const downloaded = path.join(dir.path, 'downloaded.tar.zst');
    await run(AWS_CLI, ['--endpoint-url', server.endpoint, 's3', 'cp', `s3://${server.bucket}/${key}`, downloaded], { env });
    await run('zstd', ['-t', '-q', downloaded]);
    const listed = (await run('bash', ['-o', 'pipefail', '-c', `zstd -dc '${downloaded}' | tar -t`])).stdout;
    expect(listed).toContain('tenants/acme/.openclaw-backup-manifest.json');
  });

  it('lists, verifies, dry-runs and prunes at the profile\'s endpoint too, saying so', async () => {
    const prefix = `listed-${Date.now()}/acme/`;
    for (const name of ['one', 'two']) {
      const backup = await openclaw(['--tenants-dir', base, 'tenants', 'backup', 'acme', '--to', `s3://${server.bucket}/${prefix}${name}.tar.zst`, '--aws-profile', 'minio']);
      expect(backup.status, backup.stderr).toBe(0);
    }
    const endpoint = { url: server.endpoint, source: 'profile minio, endpoint_url' };
    const store = `s3://${server.bucket}/${prefix}`;
    const listing = await openclaw(['--json', 'tenants', 'backups', 'acme', '--in', store, '--aws-profile', 'minio']);
    expect(listing.stderr).toBe('');
    expect(JSON.parse(listing.stdout)).toMatchObject({ operation: 'backups', endpoint, backups: [{ location: `s3://${server.bucket}/${prefix}two.tar.zst` }, { location: `s3://${server.bucket}/${prefix}one.tar.zst` }] });
    const shown = await openclaw(['tenants', 'backups', 'acme', '--in', store, '--aws-profile', 'minio']);
    expect(shown.stdout).toContain(`2 backups of "acme" in ${store} via ${server.endpoint} (profile minio, endpoint_url), newest first:`);

    const verify = await openclaw(['--json', 'tenants', 'verify', '--from', `${store}one.tar.zst`, '--aws-profile', 'minio']);
    expect(verify.status, verify.stderr).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ operation: 'verify', tenant: 'acme', verified: true, endpoint });
    const plan = await openclaw(['--tenants-dir', base, '--json', 'tenants', 'restore', '--from', `${store}one.tar.zst`, '--aws-profile', 'minio', '--as', 'copy', '--dry-run']);
    expect(plan.status, plan.stderr).toBe(0);
    expect(JSON.parse(plan.stdout)).toMatchObject({ operation: 'restore-plan', endpoint });

    const pruned = await openclaw(['--json', 'tenants', 'prune', 'acme', '--in', store, '--aws-profile', 'minio', '--keep-last', '1']);
    expect(pruned.status, pruned.stderr).toBe(0);
    // "one" is the newest verified backup: kept whatever --keep-last says.
    expect(JSON.parse(pruned.stdout)).toMatchObject({ operation: 'prune', endpoint, removed: 0, protected: `${store}one.tar.zst` });
  });

  it('takes AWS_ENDPOINT_URL_S3 from the environment the same way', async () => {
    writeFileSync(config, '[default]\nregion = us-east-1\naws_access_key_id = S3RVER\naws_secret_access_key = anything\n');
    const key = `env-${Date.now()}.tar.zst`;
    const backup = await openclaw(['--tenants-dir', base, '--json', 'tenants', 'backup', 'acme', '--to', `s3://${server.bucket}/${key}`], { AWS_ENDPOINT_URL_S3: server.endpoint });
    expect(backup.stderr).toBe('');
    expect(JSON.parse(backup.stdout).endpoint).toEqual({ url: server.endpoint, source: 'AWS_ENDPOINT_URL_S3' });
  });
});
