// The functions' wire contract, configuration, remote-mode policy and deadline: pure parts,
// tested without S3 or a file system.

import { afterEach, describe, expect, it, vi } from 'vitest';

import {
  AbortedError,
  ArchiveLimitError,
  CorruptArchiveError,
  DestinationExistsError,
  FileSystemError,
  InvalidNameError,
  PipeCommandError,
  SlotOccupiedError,
  StorageError,
  TenantBusyError,
  TenantNotFoundError,
  UnsafeArchiveError,
  UsageError,
  WireError,
  ERROR_CODES,
  outcomeOfCode,
  CronScheduleError,
  LocationNotAllowedError,
  OverwriteNotAllowedError,
} from '../shared/errors.js';
import { readFunctionConfig, type FunctionConfig } from '../shared/control-plane/function-config.js';
import { cleanupDeadline, deadlineSignal } from '../functions/lambda-context.js';
import { assertOverwriteAllowed, assertRemoteStorage } from '../shared/control-plane/remote-policy.js';
import { errorBody, errorFromBody, isFailureResponse, MAX_FIELD_CHARS, parseBackupCommand, parseCronPayload, parsePruneCommand, parseRestoreCommand, parseRestoreFunctionRequest } from '../shared/control-plane/protocol.js';

describe('errors over the wire', () => {
  it.each([
    [new UsageError('u'), UsageError],
    [new InvalidNameError('n'), InvalidNameError],
    [new UnsafeArchiveError('x', 'tenants/a/../b'), UnsafeArchiveError],
    [new CorruptArchiveError('c'), CorruptArchiveError],
    [new ArchiveLimitError('l'), ArchiveLimitError],
    [new SlotOccupiedError('s'), SlotOccupiedError],
    [new TenantBusyError('b'), TenantBusyError],
    [new TenantNotFoundError('t'), TenantNotFoundError],
    [new DestinationExistsError('d'), DestinationExistsError],
    [new StorageError('s3 down'), StorageError],
    [new PipeCommandError('p'), PipeCommandError],
    [new AbortedError('a'), AbortedError],
    [new FileSystemError('f'), FileSystemError],
  ])('turns %s back into the same class, code, outcome and message', (error, type) => {
    const body = JSON.parse(JSON.stringify(errorBody(error)));
    const back = errorFromBody(body);
    expect(back).toBeInstanceOf(type);
    expect([back.code, back.outcome, back.message]).toEqual([error.code, error.outcome, error.message]);
  });

  it('brings every code of the registry back with its outcome', () => {
    for (const code of ERROR_CODES) {
      const back = errorFromBody({ code, outcome: outcomeOfCode(code), message: 'm' });
      expect([back.code, back.outcome, back.message], code).toEqual([code, outcomeOfCode(code), 'm']);
    }
    expect(errorFromBody({ code: 'INVALID_SCHEDULE', outcome: 'usage', message: 'm' })).toBeInstanceOf(CronScheduleError);
    expect(errorFromBody({ code: 'ACCESS_DENIED', outcome: 'failed', message: 'denied' })).toBeInstanceOf(StorageError);
    expect(errorFromBody({ code: 'LOCATION_NOT_ALLOWED', outcome: 'refused', message: 'no' })).toBeInstanceOf(LocationNotAllowedError);
  });

  it('keeps codes it does not know (a newer gateway\'s), with their outcome', () => {
    const foreign = errorFromBody({ code: 'SOMETHING_NEW', outcome: 'refused', message: 'm' });
    expect(foreign).toBeInstanceOf(WireError);
    expect(foreign).toMatchObject({ code: 'SOMETHING_NEW', outcome: 'refused', message: 'm' });
  });

  it('describes unexpected errors in one line, secrets masked', () => {
    const body = errorBody(new TypeError('boom with sekrit-value-123\n    at x (y.js:1:1)'), ['sekrit-value-123']);
    expect(body).toEqual({ code: 'UNEXPECTED', outcome: 'failed', message: 'unexpected error: boom with ***' });
  });

  it('recognises failure responses only', () => {
    expect(isFailureResponse({ ok: false, error: { code: 'X', outcome: 'failed', message: 'm' } })).toBe(true);
    expect(isFailureResponse({ ok: false, error: { code: 'X', outcome: 'odd', message: 'm' } })).toBe(false);
    expect(isFailureResponse({ operation: 'backup' })).toBe(false);
  });
});

describe('requests', () => {
  it('parses backup commands strictly, --sqlite-raw-fallback included', () => {
    expect(parseBackupCommand({ tenant: 'acme', to: 's3://b/k', overwrite: false, sqliteRawFallback: true })).toEqual({
      tenant: 'acme',
      to: 's3://b/k',
      overwrite: false,
      sqliteRawFallback: true,
    });
    expect(() => parseBackupCommand({ tenant: 'acme', to: 's3://b/k', sqliteRawFallback: 'yes' })).toThrow(/"sqliteRawFallback" must be true or false/);
    expect(() => parseBackupCommand({ tenant: 'acme', to: 's3://b/k', sqliteRaw: true })).toThrow(/unknown field "sqliteRaw"/);
  });

  it('parses restore commands strictly', () => {
    expect(parseRestoreCommand({ from: 's3://b/k', as: 'x', force: true, limits: { maxEntries: 5 }, storage: { region: 'eu-west-1', accessKey: null } })).toEqual({
      from: 's3://b/k',
      as: 'x',
      force: true,
      limits: { maxEntries: 5 },
      storage: { region: 'eu-west-1' },
    });
    expect(() => parseRestoreCommand({ from: 's3://b/k', storage: { token: 'x' } })).toThrow(/unknown field "token"/);
    expect(() => parseRestoreCommand({ from: 's3://b/k', force: 'yes' })).toThrow(/"force" must be true or false/);
  });

  it('takes a prune\'s keep.hourly (a whole number) and keep.within (a span), and refuses a bad one', () => {
    const prune = { tenant: 'acme', in: 's3://b/p/' };
    expect(parsePruneCommand({ ...prune, keep: { hourly: 24, within: '7d' } })).toEqual({ ...prune, keep: { hourly: 24, within: '7d' } });
    expect(() => parsePruneCommand({ ...prune, keep: { within: '7' } })).toThrow('prune request: keep.within must be a span such as 7d, 36h or 1y6m');
    expect(() => parsePruneCommand({ ...prune, keep: { within: 7 } })).toThrow(/keep\.within must be a span/);
    expect(() => parsePruneCommand({ ...prune, keep: { hourly: 1.5 } })).toThrow('prune request: keep.hourly must be a whole number');
    expect(() => parsePruneCommand({ ...prune, keep: { minutely: 1 } })).toThrow(/unknown field "minutely"/);
  });

  it('takes deleteIfMatch (true or false) in a prune\'s storage only', () => {
    const prune = { tenant: 'acme', in: 's3://b/p/', keep: { last: 1 } };
    expect(parsePruneCommand({ ...prune, storage: { endpoint: 'https://minio.internal', deleteIfMatch: true } })).toEqual({ ...prune, storage: { endpoint: 'https://minio.internal', deleteIfMatch: true } });
    expect(parsePruneCommand({ ...prune, storage: { deleteIfMatch: false } })).toEqual({ ...prune, storage: { deleteIfMatch: false } });
    expect(() => parsePruneCommand({ ...prune, storage: { deleteIfMatch: 'yes' } })).toThrow('prune request: storage.deleteIfMatch must be true or false');
    expect(() => parsePruneCommand({ ...prune, storage: { deleteIfMatch: true, token: 'x' } })).toThrow(/unknown field "token"/);
    expect(() => parseRestoreCommand({ from: 's3://b/k', storage: { deleteIfMatch: true } })).toThrow(/unknown field "deleteIfMatch"/);
  });

  it('parses a listing of backups, whole or one page of it', () => {
    const backups = { operation: 'backups', tenant: 'acme', in: 's3://b/p/' };
    expect(parseRestoreFunctionRequest(backups)).toEqual({ kind: 'backups', command: { tenant: 'acme', in: 's3://b/p/' }, pages: false });
    expect(parseRestoreFunctionRequest({ ...backups, pages: true, after: 'acme/1.tar.zst' })).toEqual({ kind: 'backups', command: { tenant: 'acme', in: 's3://b/p/' }, pages: true, after: 'acme/1.tar.zst' });
    expect(() => parseRestoreFunctionRequest({ ...backups, after: 'acme/1.tar.zst' })).toThrow('backups request: "after" goes with "pages": true');
    expect(() => parseRestoreFunctionRequest({ ...backups, pages: true, after: 5 })).toThrow('backups request: "after" must be a string');
    expect(() => parseRestoreFunctionRequest({ ...backups, pages: 'yes' })).toThrow('backups request: "pages" must be true or false');
    expect(() => parseRestoreFunctionRequest({ ...backups, page: 2 })).toThrow(/unknown field "page"/);
  });

  it('refuses a string field longer than any name or location before anything logs it', () => {
    const long = 'a'.repeat(MAX_FIELD_CHARS + 1);
    expect(() => parseBackupCommand({ tenant: long, to: 's3://b/k' })).toThrow(`backup request: "tenant" is too long (${MAX_FIELD_CHARS + 1} characters; at most ${MAX_FIELD_CHARS})`);
    expect(() => parseBackupCommand({ tenant: 'acme', to: `s3://b/${long}` })).toThrow(/"to" is too long/);
    expect(() => parseRestoreCommand({ from: 's3://b/k', as: long })).toThrow(/"as" is too long/);
    expect(() => parseRestoreCommand({ from: 's3://b/k', storage: { endpoint: `https://${long}` } })).toThrow(/"storage.endpoint" is too long/);
    const command = { tenant: 'acme', to: 's3://b/k' };
    expect(() => parseCronPayload({ source: 'openclaw.cron', tenant: 'acme', cronName: 'n', eventId: long, command }, () => new Date())).toThrow(/"eventId" is too long/);
    expect(parseBackupCommand({ tenant: 'acme', to: `s3://b/${'k'.repeat(1024)}` }).to).toHaveLength(1031);
  });

  it('expands a cron payload with the event time, else the clock', () => {
    const command = { tenant: 'acme', to: 's3://bkt/acme/{date:%F-%H%M}.tar.zst' };
    const clock = () => new Date('2030-01-01T00:00:00Z');
    expect(parseCronPayload({ source: 'openclaw.cron', tenant: 'acme', cronName: 'n', time: '2026-06-03T03:00:00Z', command }, clock)).toMatchObject({
      command: { tenant: 'acme', to: 's3://bkt/acme/2026-06-03-0300.tar.zst' },
      timeSource: 'event',
    });
    expect(parseCronPayload({ source: 'openclaw.cron', tenant: 'acme', cronName: 'n', command }, clock)).toMatchObject({
      command: { to: 's3://bkt/acme/2030-01-01-0000.tar.zst' },
      timeSource: 'clock',
    });
    // A time without a zone is UTC's, in a process of any zone.
    vi.stubEnv('TZ', 'Pacific/Kiritimati');
    try {
      expect(parseCronPayload({ source: 'openclaw.cron', tenant: 'acme', cronName: 'n', time: '2026-06-03T03:00:00', command }, clock).command).toMatchObject({ to: 's3://bkt/acme/2026-06-03-0300.tar.zst' });
    } finally {
      vi.unstubAllEnvs();
    }
    expect(() => parseCronPayload({ source: 'openclaw.cron', tenant: 'acme', cronName: 'n', time: 'soon', command }, clock)).toThrow(/ISO 8601/);
    expect(() => parseCronPayload({ source: 'openclaw.cron', tenant: 'beta', cronName: 'n', command }, clock)).toThrow(/not the cron's tenant "beta"/);
  });
});

describe('configuration', () => {
  it('reads the environment the stack sets', () => {
    expect(
      readFunctionConfig({
        OPENCLAW_TENANTS_DIR: '/mnt/tenants',
        OPENCLAW_BACKUP_BUCKET: 'acme-backups',
        OPENCLAW_ALLOWED_SOURCE_BUCKETS: ' old-backups , legacy-bucket ,',
        OPENCLAW_EVENT_BUS: 'openclaw-backup-events',
        OPENCLAW_STACK_PREFIX: 'openclaw-backup',
      }),
    ).toEqual({
      tenantsDir: '/mnt/tenants',
      backupBucket: 'acme-backups',
      allowedSourceBuckets: ['old-backups', 'legacy-bucket'],
      allowedEndpoints: [],
      allowOverwrite: false,
      eventBus: 'openclaw-backup-events',
      stackPrefix: 'openclaw-backup',
      abortMarginMs: 60_000,
      continueMarginMs: 120_000,
      abandonAfterMs: 86_400_000,
      restoreMBps: 40,
      restoreReplayMBps: 80,
      restoreEntriesPerSecond: 45,
      connectTimeoutMs: 3_000,
      requestTimeoutMs: 10_000,
    });
    // The secure defaults: no endpoint but AWS S3, no overwrite, bounded AWS clients.
    expect(readFunctionConfig({})).toEqual({
      tenantsDir: '/mnt/tenants',
      allowedSourceBuckets: [],
      allowedEndpoints: [],
      allowOverwrite: false,
      abortMarginMs: 60_000,
      continueMarginMs: 120_000,
      abandonAfterMs: 86_400_000,
      restoreMBps: 40,
      restoreReplayMBps: 80,
      restoreEntriesPerSecond: 45,
      connectTimeoutMs: 3_000,
      requestTimeoutMs: 10_000,
    });
    expect(readFunctionConfig({ OPENCLAW_ALLOW_OVERWRITE: 'true', OPENCLAW_CONNECT_TIMEOUT_MS: '500', OPENCLAW_REQUEST_TIMEOUT_MS: '2500' })).toMatchObject({
      allowOverwrite: true,
      connectTimeoutMs: 500,
      requestTimeoutMs: 2_500,
    });
    expect(readFunctionConfig({ OPENCLAW_CPUS: '2' }).cpus).toBe(2);
    expect(readFunctionConfig({ OPENCLAW_CONTINUE_MARGIN_MS: '90000', OPENCLAW_ABANDON_AFTER_MS: '3600000', OPENCLAW_RESTORE_MBPS: '120', OPENCLAW_RESTORE_REPLAY_MBPS: '250', OPENCLAW_RESTORE_ENTRIES_PER_SECOND: '50' })).toMatchObject({
      continueMarginMs: 90_000,
      abandonAfterMs: 3_600_000,
      restoreMBps: 120,
      restoreReplayMBps: 250,
      restoreEntriesPerSecond: 50,
    });
    expect(readFunctionConfig({ OPENCLAW_ALLOWED_ENDPOINTS: 'https://minio.internal:9000/, http://10.0.0.5:9000' }).allowedEndpoints).toEqual([
      'https://minio.internal:9000',
      'http://10.0.0.5:9000',
    ]);
  });

  it('fails the cold start on a bad value, naming the variable', () => {
    expect(() => readFunctionConfig({ OPENCLAW_TENANTS_DIR: 'relative' })).toThrow(/OPENCLAW_TENANTS_DIR must be an absolute path/);
    expect(() => readFunctionConfig({ OPENCLAW_BACKUP_BUCKET: 'Bad_Bucket' })).toThrow(/OPENCLAW_BACKUP_BUCKET: invalid bucket name/);
    expect(() => readFunctionConfig({ OPENCLAW_ALLOWED_SOURCE_BUCKETS: 'ok-bucket,x' })).toThrow(/OPENCLAW_ALLOWED_SOURCE_BUCKETS/);
    expect(() => readFunctionConfig({ OPENCLAW_ABORT_MARGIN_MS: 'soon' })).toThrow(/OPENCLAW_ABORT_MARGIN_MS/);
    expect(() => readFunctionConfig({ OPENCLAW_ALLOWED_ENDPOINTS: 'ftp://x' })).toThrow(/OPENCLAW_ALLOWED_ENDPOINTS/);
    expect(() => readFunctionConfig({ OPENCLAW_ALLOW_OVERWRITE: 'yes' })).toThrow(/OPENCLAW_ALLOW_OVERWRITE must be true or false/);
    expect(() => readFunctionConfig({ OPENCLAW_CONNECT_TIMEOUT_MS: '0' })).toThrow(/OPENCLAW_CONNECT_TIMEOUT_MS must be a whole number of milliseconds \(at least 1\)/);
    expect(() => readFunctionConfig({ OPENCLAW_REQUEST_TIMEOUT_MS: 'never' })).toThrow(/OPENCLAW_REQUEST_TIMEOUT_MS/);
    for (const early of ['1000', '600000', '3599999']) {
      expect(() => readFunctionConfig({ OPENCLAW_ABANDON_AFTER_MS: early })).toThrow(/OPENCLAW_ABANDON_AFTER_MS must be a whole number of milliseconds \(at least 3600000\)/);
    }
    expect(() => readFunctionConfig({ OPENCLAW_RESTORE_MBPS: '0' })).toThrow(/OPENCLAW_RESTORE_MBPS must be a positive number of MB\/s/);
    expect(() => readFunctionConfig({ OPENCLAW_RESTORE_REPLAY_MBPS: '-5' })).toThrow(/OPENCLAW_RESTORE_REPLAY_MBPS must be a positive number of MB\/s, got "-5"/);
    expect(() => readFunctionConfig({ OPENCLAW_RESTORE_ENTRIES_PER_SECOND: 'many' })).toThrow(/OPENCLAW_RESTORE_ENTRIES_PER_SECOND must be a positive number of entries a second, got "many"/);
    for (const cpus of ['0', '1.5', 'two']) {
      expect(() => readFunctionConfig({ OPENCLAW_CPUS: cpus })).toThrow(/OPENCLAW_CPUS must be a whole number of CPUs \(at least 1\)/);
    }
  });
});

describe('allowed endpoints with a path (a store behind a proxy)', () => {
  // The environment as the stack sets it: an entry with a path allows that store, not the host.
  const gateway = (allowed: string): FunctionConfig => readFunctionConfig({ OPENCLAW_BACKUP_BUCKET: 'acme-backups', OPENCLAW_ALLOWED_ENDPOINTS: allowed });
  const check = (config: FunctionConfig, endpoint: string) => () => assertRemoteStorage('backup', 's3://any/acme.tar.zst', { endpoint, accessKey: 'AK', secretKey: 'SK' }, config);

  it('allows that path and below it only, segment by segment', () => {
    const config = gateway('https://proxy.internal/minio-a/');
    expect(config.allowedEndpoints).toEqual(['https://proxy.internal/minio-a']);
    for (const endpoint of ['https://proxy.internal/minio-a', 'https://proxy.internal/minio-a/', 'https://PROXY.internal:443/minio-a', 'https://proxy.internal/minio-a/eu']) {
      expect(check(config, endpoint), endpoint).not.toThrow();
    }
    for (const [endpoint, shown] of [
      ['https://proxy.internal/minio-b', 'https://proxy.internal/minio-b'],
      ['https://proxy.internal/minio-ab', 'https://proxy.internal/minio-ab'],
      ['https://proxy.internal/', 'https://proxy.internal'],
      ['https://proxy.internal/MINIO-A', 'https://proxy.internal/MINIO-A'],
      ['https://proxy.internal/minio-a/../minio-b', 'https://proxy.internal/minio-b'],
      ['https://proxy.internal/minio-a/%2e%2e/minio-b', 'https://proxy.internal/minio-b'],
      ['https://proxy.internal/minio-a\\..\\minio-b', 'https://proxy.internal/minio-b'],
      ['https://proxy.internal/minio-a/..%2Fminio-b', 'https://proxy.internal/minio-a/..%2Fminio-b'],
      ['https://proxy.internal/minio-a/..;/minio-b', 'https://proxy.internal/minio-a/..;/minio-b'],
      ['https://proxy.internal//minio-a', 'https://proxy.internal//minio-a'],
      ['http://proxy.internal/minio-a', 'http://proxy.internal/minio-a'],
      ['https://proxy.internal:8443/minio-a', 'https://proxy.internal:8443/minio-a'],
    ]) {
      expect(check(config, endpoint!), endpoint).toThrow(`this gateway does not allow the endpoint ${shown}: allowed are https://proxy.internal/minio-a`);
    }
  });

  it('keeps an entry without a path origin-wide, beside one with a path', () => {
    const config = gateway('https://minio.internal:9000, https://proxy.internal/s3');
    expect(check(config, 'https://minio.internal:9000/anything/below')).not.toThrow();
    expect(check(config, 'https://proxy.internal/s3/x')).not.toThrow();
    expect(check(config, 'https://proxy.internal/s4')).toThrow(/does not allow the endpoint https:\/\/proxy\.internal\/s4: allowed are https:\/\/minio\.internal:9000, https:\/\/proxy\.internal\/s3$/);
  });

  it('refuses at the cold start an entry it cannot compare', () => {
    for (const [entry, problem] of [
      ['https://user:pass@proxy.internal/minio-a', 'must not hold credentials'],
      ['https://proxy.internal/minio-a?bucket=x', 'must have no query or fragment'],
      ['https://proxy.internal/minio-a#x', 'must have no query or fragment'],
      ['https://proxy.internal/?', 'must have no query or fragment'],
      ['https://proxy.internal/minio-a/../minio-b', 'has a path that cannot be compared'],
      ['https://proxy.internal/minio-a/%2e%2e/minio-b', 'has a path that cannot be compared'],
      ['https://proxy.internal/minio%2Da', 'has a path that cannot be compared'],
      ['https://proxy.internal//minio-a', 'has a path that cannot be compared'],
      ['https://proxy.internal/minio;a', 'has a path that cannot be compared'],
      ['ftp://proxy.internal', 'must be http(s)://host[:port] or http(s)://host[:port]/path'],
    ]) {
      expect(() => gateway(entry!), entry).toThrow(`OPENCLAW_ALLOWED_ENDPOINTS: ${JSON.stringify(entry)} ${problem}`);
    }
  });
});

describe('remote storage policy', () => {
  const config: FunctionConfig = { tenantsDir: '/mnt/tenants', backupBucket: 'acme-backups', allowedSourceBuckets: ['old-backups'], abortMarginMs: 0 };

  it('lets backups write to the backup bucket and restores read the allowed buckets', () => {
    expect(() => assertRemoteStorage('backup', 's3://acme-backups/a/b.tar.zst', undefined, config)).not.toThrow();
    expect(() => assertRemoteStorage('restore', 's3://old-backups/a.tar.zst', {}, config)).not.toThrow();
    expect(() => assertRemoteStorage('backup', 's3://old-backups/a.tar.zst', {}, config)).toThrow(LocationNotAllowedError);
    expect(() => assertRemoteStorage('restore', 's3://other/a.tar.zst', {}, config)).toThrow(
      'this gateway restores from s3://acme-backups/, s3://old-backups/ only, not from bucket "other"',
    );
  });

  it('allows S3-compatible endpoints only when listed, and static keys only with them', () => {
    expect(() => assertRemoteStorage('backup', 's3://any/a', { endpoint: 'https://minio.internal:9000' }, config)).toThrow(
      /allows no S3-compatible endpoint \(--endpoint https:\/\/minio\.internal:9000\)/,
    );
    expect(() => assertRemoteStorage('backup', 's3://any/a', { endpoint: 'https://minio.internal:9000' }, { ...config, allowedEndpoints: [] })).toThrow(LocationNotAllowedError);
    expect(() => assertRemoteStorage('backup', 's3://acme-backups/a', { accessKey: 'AK', secretKey: 'SK' }, config)).toThrow(/execution role only/);
    expect(() =>
      assertRemoteStorage('backup', 's3://any/a', { endpoint: 'https://minio.internal:9000', accessKey: 'AK', secretKey: 'SK' }, { ...config, allowedEndpoints: ['https://minio.internal:9000'] }),
    ).not.toThrow();
    const listed = { ...config, allowedEndpoints: ['https://minio.internal:9000'] };
    expect(() => assertRemoteStorage('backup', 's3://any/a', { endpoint: 'https://minio.internal:9000/' }, listed)).not.toThrow();
    expect(() => assertRemoteStorage('backup', 's3://any/a', { endpoint: 'https://evil.example:443' }, listed)).toThrow(/does not allow the endpoint https:\/\/evil.example/);
  });

  it('keeps backups and restores in the backup bucket under its key prefix', () => {
    const prefixed = { ...config, backupKeyPrefix: 'backups/' };
    expect(() => assertRemoteStorage('backup', 's3://acme-backups/backups/acme/x.tar.zst', {}, prefixed)).not.toThrow();
    expect(() => assertRemoteStorage('backup', 's3://acme-backups/acme/x.tar.zst', {}, prefixed)).toThrow(
      'this gateway keeps its archives under s3://acme-backups/backups/: --to must be s3://acme-backups/backups/…, not s3://acme-backups/acme/x.tar.zst',
    );
    expect(() => assertRemoteStorage('restore', 's3://acme-backups/other/x.tar.zst', {}, prefixed)).toThrow(/--from must be s3:\/\/acme-backups\/backups\//);
    expect(() => assertRemoteStorage('restore', 's3://old-backups/any/x.tar.zst', {}, prefixed)).not.toThrow();
    expect(readFunctionConfig({ OPENCLAW_BACKUP_PREFIX: 'backups/' }).backupKeyPrefix).toBe('backups/');
    expect(() => readFunctionConfig({ OPENCLAW_BACKUP_PREFIX: 'backups' })).toThrow(/OPENCLAW_BACKUP_PREFIX must be a key prefix ending in "\/"/);
    expect(() => readFunctionConfig({ OPENCLAW_BACKUP_PREFIX: '../x/' })).toThrow(/OPENCLAW_BACKUP_PREFIX/);
  });

  it('leaves --overwrite to the deployer', () => {
    expect(() => assertOverwriteAllowed(true, config)).toThrow(OverwriteNotAllowedError);
    expect(() => assertOverwriteAllowed(true, { allowOverwrite: false })).toThrow(/--overwrite is turned off/);
    expect(() => assertOverwriteAllowed(false, config)).not.toThrow();
    expect(() => assertOverwriteAllowed(undefined, config)).not.toThrow();
    expect(() => assertOverwriteAllowed(true, { allowOverwrite: true })).not.toThrow();
  });

  it('refuses without a configured bucket', () => {
    expect(() => assertRemoteStorage('backup', 's3://b-1/a', {}, { ...config, backupBucket: undefined })).toThrow(/no backup bucket configured/);
  });
});

describe('deadline', () => {
  afterEach(() => vi.useRealTimers());

  it('fires the margin before the end, or keeps a quarter of a short remainder', () => {
    vi.useFakeTimers();
    const context = (remaining: number) => ({
      awsRequestId: 'r',
      functionName: 'f',
      functionVersion: '1',
      invokedFunctionArn: 'arn',
      memoryLimitInMB: '128',
      getRemainingTimeInMillis: () => remaining,
    });
    const long = deadlineSignal(context(900_000), 60_000);
    expect(long.inMs).toBe(840_000);
    vi.advanceTimersByTime(839_999);
    expect(long.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(long.signal.aborted).toBe(true);

    const short = deadlineSignal(context(8_000), 60_000);
    expect(short.inMs).toBe(6_000);
    short.dispose();
    vi.advanceTimersByTime(10_000);
    expect(short.signal.aborted).toBe(false);
  });

  it('ends the cleanup after a stop three quarters of the margin later, a quarter kept for the answer', () => {
    vi.useFakeTimers();
    const context = (remaining: number) => ({ awsRequestId: 'r', functionName: 'f', functionVersion: '1', invokedFunctionArn: 'arn', memoryLimitInMB: '128', getRemainingTimeInMillis: () => remaining });
    expect(cleanupDeadline(context(900_000), 60_000) - Date.now()).toBe(885_000);
    expect(cleanupDeadline(context(8_000), 60_000) - Date.now()).toBe(7_500);
  });
});
