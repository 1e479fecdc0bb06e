// A store whose HTTPS certificate a private CA signed is trusted the way the AWS CLI trusts it:
// through AWS_CA_BUNDLE, or the profile's `ca_bundle` (the SDK for JavaScript reads neither;
// configured-endpoint.ts does). Against s3rver serving HTTPS with a certificate made here.

import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createSampleTenant } from '../scripts/sample-tenant.js';
import { S3RVER_ACCESS_KEY, startS3Server, type S3TestServer } from './helpers/s3-server.js';
import { describeTree, runCliIn, tempDir, type CliRun } from './helpers/tree.js';

let dir: ReturnType<typeof tempDir>;
let server: S3TestServer;
let certificate: string;
let base: string;

beforeAll(async () => {
  dir = tempDir('openclaw-ca-bundle-');
  certificate = path.join(dir.path, 'store-ca.pem');
  const key = path.join(dir.path, 'store-key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', certificate, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], {
    stdio: 'ignore',
  });
  server = await startS3Server({ tls: { key: readFileSync(key), cert: readFileSync(certificate) } });
  base = path.join(dir.path, 'tenants');
  mkdirSync(base);
  createSampleTenant(path.join(base, 'acme'), { sessions: 1, memoryRows: 5 });
});
afterAll(async () => {
  await server?.dispose();
  dir?.cleanup();
});

/** The built CLI, given the store's endpoint and keys, with only `env` for AWS settings. */
function openclaw(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  const store = ['--endpoint', server.endpoint, '--access-key', S3RVER_ACCESS_KEY, '--secret-key', 'anything'];
  const aws = { AWS_CONFIG_FILE: path.join(dir.path, 'config'), AWS_SHARED_CREDENTIALS_FILE: path.join(dir.path, 'credentials') };
  return runCliIn({ PATH: process.env.PATH, HOME: dir.path, ...aws, ...env }, ['--tenants-dir', base, ...args, ...store]);
}

describe('a store with a certificate of a private CA', () => {
  it('is refused without the CA, in one line that says how to trust it', async () => {
    const run = await openclaw(['tenants', 'backup', 'acme', '--to', `s3://${server.bucket}/untrusted.tar.zst`]);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/^openclaw: cannot reach \S+ for \S+: \S+ \(TLS certificate problem: a private CA is trusted through AWS_CA_BUNDLE=FILE or NODE_EXTRA_CA_CERTS=FILE\)\n$/);
  });

  it('is trusted through AWS_CA_BUNDLE: backup, restore and listing', async () => {
    const env = { AWS_CA_BUNDLE: certificate };
    const backup = await openclaw(['tenants', 'backup', 'acme', '--to', `s3://${server.bucket}/env/acme.tar.zst`], env);
    expect(backup.stderr).toBe('');
    expect(backup.status).toBe(0);
    const restore = await openclaw(['tenants', 'restore', '--from', `s3://${server.bucket}/env/acme.tar.zst`, '--as', 'copy'], env);
    expect(restore.status, restore.stderr).toBe(0);
    expect(describeTree(path.join(base, 'copy'))).toEqual(describeTree(path.join(base, 'acme'), { exclude: (relPath) => relPath === 'pty' || relPath.startsWith('pty/') }));
    const listing = await openclaw(['--json', 'tenants', 'backups', 'acme', '--in', `s3://${server.bucket}/env/`], env);
    expect(listing.status, listing.stderr).toBe(0);
    expect(JSON.parse(listing.stdout).backups).toHaveLength(1);
  });

  it("is trusted through the profile's ca_bundle", async () => {
    writeFileSync(path.join(dir.path, 'config'), `[profile private]\nca_bundle = ${certificate}\n`);
    const backup = await openclaw(['tenants', 'backup', 'acme', '--to', `s3://${server.bucket}/profile/acme.tar.zst`], { AWS_PROFILE: 'private' });
    expect(backup.stderr).toBe('');
    expect(backup.status).toBe(0);
  });

  it('refuses a bundle it cannot read, or one without a certificate, naming where it was set', async () => {
    const missing = await openclaw(['tenants', 'backup', 'acme', '--to', `s3://${server.bucket}/x.tar.zst`], { AWS_CA_BUNDLE: path.join(dir.path, 'nothing.pem') });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toBe(`openclaw: cannot read the CA bundle "${path.join(dir.path, 'nothing.pem')}" (from AWS_CA_BUNDLE): no such file\n`);
    const directory = await openclaw(['tenants', 'backup', 'acme', '--to', `s3://${server.bucket}/x.tar.zst`], { AWS_CA_BUNDLE: dir.path });
    expect(directory.stderr).toBe(`openclaw: cannot read the CA bundle "${dir.path}" (from AWS_CA_BUNDLE): a directory\n`);
    // A FIFO with no writer: opening it blocked for good, and the CLI hung, SIGTERM included.
    const fifo = path.join(dir.path, 'bundle.fifo');
    execFileSync('mkfifo', [fifo]);
    const pipe = await openclaw(['tenants', 'backup', 'acme', '--to', `s3://${server.bucket}/x.tar.zst`], { AWS_CA_BUNDLE: fifo });
    expect(pipe.stderr).toBe(`openclaw: cannot read the CA bundle "${fifo}" (from AWS_CA_BUNDLE): not a regular file\n`);
    const config = await openclaw(['tenants', 'backup', 'acme', '--to', `s3://${server.bucket}/x.tar.zst`], { AWS_CONFIG_FILE: fifo });
    expect(config.stderr).toBe(`openclaw: the AWS shared file "${fifo}" (AWS_CONFIG_FILE or its default) is a FIFO: give a regular file\n`);
    const credentials = await openclaw(['tenants', 'backup', 'acme', '--to', `s3://${server.bucket}/x.tar.zst`], { AWS_SHARED_CREDENTIALS_FILE: fifo });
    expect(credentials.status).toBe(2);
    const notPem = path.join(dir.path, 'not.pem');
    writeFileSync(notPem, 'hello\n');
    const empty = await openclaw(['tenants', 'backup', 'acme', '--to', `s3://${server.bucket}/x.tar.zst`], { AWS_CA_BUNDLE: notPem });
    expect(empty.status).toBe(2);
    expect(empty.stderr).toBe(`openclaw: the CA bundle "${notPem}" (from AWS_CA_BUNDLE) holds no PEM certificate\n`);
  });
});
