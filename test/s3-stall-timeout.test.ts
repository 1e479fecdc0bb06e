// OPENCLAW_S3_STALL_TIMEOUT and --stall-timeout: the stall time of this machine's S3 requests (part-progress.ts),
// for a link slower than the default minute allows. Checked in one line; reaches the CLI's
// uploads (s3rver behind a proxy that never answers a PutObject: ended at the stall time set,
// not the default's minute, or the socket's two, five attempts).

import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

import { UsageError } from '../shared/errors.js';
import { parseStallTimeout } from '../shared/storage/part-progress.js';
import { makeTenants } from './helpers/backups.js';
import { runMain } from './helpers/run-main.js';
import { startS3Server, startStallingProxy, type S3TestServer } from './helpers/s3-server.js';
import { tempDir } from './helpers/tree.js';

describe('parseStallTimeout', () => {
  it.each([
    ['90', 90_000],
    ['90s', 90_000],
    ['1.5s', 1500],
    ['10m', 600_000],
    [' 2M ', 120_000],
    ['1h', 3_600_000],
    ['24h', 86_400_000],
  ])('takes %j', (value, ms) => {
    expect(parseStallTimeout(value)).toBe(ms);
  });

  it.each(['', 'abc', '0', '0.5s', '25h', '10 min', '-5m', '1e3', '5d'])('refuses %j in one line', (value) => {
    let error: unknown;
    try {
      parseStallTimeout(value);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toBe(`OPENCLAW_S3_STALL_TIMEOUT="${value}" is no stall time: give 1s to 24h, e.g. 90s, 10m or 1h`);
  });
});

describe('a backup with OPENCLAW_S3_STALL_TIMEOUT', () => {
  let server: S3TestServer;
  let proxy: Awaited<ReturnType<typeof startStallingProxy>>;
  const tenants = tempDir();

  beforeAll(async () => {
    makeTenants(tenants.path, ['acme']);
    server = await startS3Server();
    proxy = await startStallingProxy(server.endpoint, 'PutObject');
  });
  afterEach(() => {
    vi.unstubAllEnvs();
  });
  afterAll(async () => {
    await proxy.stop();
    await server.dispose();
    tenants.cleanup();
  });

  const flags = () => ['--endpoint', proxy.endpoint, '--access-key', 'S3RVER', '--secret-key', 'test-secret-key', '--region', 'us-east-1'];

  it('is refused in one line, exit 2, before the store is called', async () => {
    vi.stubEnv('OPENCLAW_S3_STALL_TIMEOUT', '5 minutes');
    const before = proxy.requests.length;
    const run = await runMain(['--tenants-dir', tenants.path, 'tenants', 'backup', 'acme', '--to', 's3://backups/acme/refused.tar.zst', ...flags()]);
    expect(run.status).toBe(2);
    expect(run.stderr.trim()).toBe('openclaw: OPENCLAW_S3_STALL_TIMEOUT="5 minutes" is no stall time: give 1s to 24h, e.g. 90s, 10m or 1h');
    expect(proxy.requests.length).toBe(before);
  });

  it('ends each attempt of an upload that gets no answer at the stall time set', async () => {
    vi.stubEnv('OPENCLAW_S3_STALL_TIMEOUT', '1s');
    const run = await runMain(['--tenants-dir', tenants.path, 'tenants', 'backup', 'acme', '--to', 's3://backups/acme/stalled.tar.zst', ...flags()]);
    expect(run.status).not.toBe(0);
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    // Without the variable the first attempt alone waits two minutes (the test's timeout ends it).
    expect(lines[0]).toMatch(/stalled: the store took nothing of the object for (2 s \(no answer after all \d+ bytes|1 s \(it stopped at byte \d+ of \d+)\), after 5 attempts/);
    expect(proxy.stalled()).toBe(5);
  }, 60_000);

  it('is set by --stall-timeout too, before the variable (a cron line need not carry it in its environment)', async () => {
    vi.stubEnv('OPENCLAW_S3_STALL_TIMEOUT', '1h');
    const before = proxy.stalled();
    const run = await runMain(['--tenants-dir', tenants.path, 'tenants', 'backup', 'acme', '--to', 's3://backups/acme/flag.tar.zst', '--stall-timeout', '1s', ...flags()]);
    expect(run.status).not.toBe(0);
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/stalled: the store took nothing of the object for (2 s \(no answer after all \d+ bytes|1 s \(it stopped at byte \d+ of \d+)\), after 5 attempts/);
    expect(proxy.stalled() - before).toBe(5);
  }, 60_000);

  it.each([
    [['tenants', 'backup', 'acme', '--to', 's3://backups/acme/refused.tar.zst'], '5 minutes'],
    [['tenants', 'restore', '--from', 's3://backups/acme/refused.tar.zst'], '0'],
    [['tenants', 'verify', '--from', 's3://backups/acme/refused.tar.zst'], '25h'],
  ])('%j --stall-timeout %j is refused in one line naming the flag, exit 2, before the store is called', async (command, value) => {
    const before = proxy.requests.length;
    const run = await runMain(['--tenants-dir', tenants.path, ...command, '--stall-timeout', value, ...flags()]);
    expect(run.status).toBe(2);
    expect(run.stderr.trim()).toBe(`openclaw: --stall-timeout "${value}" is no stall time: give 1s to 24h, e.g. 90s, 10m or 1h`);
    expect(proxy.requests.length).toBe(before);
  });

  it('is refused in remote mode, where the gateway\'s functions transfer the archive (the variable is not sent)', async () => {
    const run = await runMain(['--stack', 'openclaw-test', 'tenants', 'backup', 'acme', '--to', 's3://backups/acme/remote.tar.zst', '--stall-timeout', '10m']);
    expect(run.status).toBe(2);
    expect(run.stderr.trim()).toBe(
      "openclaw: --stall-timeout sets the stall time of this machine's S3 transfers: in remote mode the gateway's functions transfer the archive, with their own (drop it)",
    );
  });
});
