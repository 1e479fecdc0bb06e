// `openclaw doctor` against aws-sdk-client-mock: the function configurations lead to the
// access point and file system; each check passes, warns or fails, and any failure makes
// the exit code 1.

import { DescribeAccessPointsCommand, DescribeFileSystemsCommand, DescribeMountTargetsCommand, EFSClient } from '@aws-sdk/client-efs';
import { GetFunctionConfigurationCommand, LambdaClient, type FunctionConfiguration } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { runMain } from './helpers/run-main.js';

const lambda = mockClient(LambdaClient);
const efs = mockClient(EFSClient);
const AP_ARN = 'arn:aws:elasticfilesystem:eu-west-1:123456789012:access-point/fsap-0123456789abcdef0';

const run = runMain;

function configuration(role: string, overrides: Partial<FunctionConfiguration> = {}): FunctionConfiguration {
  return {
    FunctionName: `openclaw-backup-${role}`,
    Runtime: 'nodejs20.x',
    MemorySize: 1024,
    Timeout: 900,
    State: 'Active',
    LastUpdateStatus: 'Successful',
    VpcConfig: { VpcId: 'vpc-1', SubnetIds: ['subnet-a', 'subnet-b'], SecurityGroupIds: ['sg-1'] },
    FileSystemConfigs: [{ Arn: AP_ARN, LocalMountPath: '/mnt/tenants' }],
    Environment: { Variables: { OPENCLAW_TENANTS_DIR: '/mnt/tenants', OPENCLAW_BACKUP_BUCKET: 'acme-backups', OPENCLAW_EVENT_BUS: 'openclaw-backup-events' } },
    ...overrides,
  };
}

beforeEach(() => {
  lambda.reset();
  efs.reset();
  vi.stubEnv('OPENCLAW_STACK', '');
  vi.stubEnv('AWS_REGION', 'eu-west-1');
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIAIOSFODNN7EXAMPLE');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'not-used-by-mocks');
  for (const role of ['backup', 'restore', 'list']) {
    lambda.on(GetFunctionConfigurationCommand, { FunctionName: `openclaw-backup-${role}` }).resolves(configuration(role));
  }
  efs.on(DescribeAccessPointsCommand).resolves({
    AccessPoints: [{ AccessPointId: 'fsap-0123456789abcdef0', FileSystemId: 'fs-0123456789abcdef0', LifeCycleState: 'available', RootDirectory: { Path: '/tenants' }, PosixUser: { Uid: 1000, Gid: 1000 } }],
  });
  efs.on(DescribeFileSystemsCommand).resolves({ FileSystems: [{ FileSystemId: 'fs-0123456789abcdef0', LifeCycleState: 'available', Encrypted: true } as never] });
  efs.on(DescribeMountTargetsCommand).resolves({
    MountTargets: [
      { MountTargetId: 'fsmt-1', FileSystemId: 'fs-0123456789abcdef0', SubnetId: 'subnet-a', VpcId: 'vpc-1', LifeCycleState: 'available', AvailabilityZoneName: 'eu-west-1a' },
      { MountTargetId: 'fsmt-2', FileSystemId: 'fs-0123456789abcdef0', SubnetId: 'subnet-b', VpcId: 'vpc-1', LifeCycleState: 'available', AvailabilityZoneName: 'eu-west-1b' },
    ],
  });
});
afterEach(() => vi.unstubAllEnvs());
afterAll(() => {
  lambda.restore();
  efs.restore();
});

describe('doctor', () => {
  it('checks functions, access point, file system and mount targets', async () => {
    const result = await run(['--stack', 'openclaw-backup', 'doctor', '--region', 'eu-west-1', '--expect-root-path', '/tenants', '--expect-uid', '1000']);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout.split('\n')).toEqual([
      'Gateway openclaw-backup in eu-west-1:',
      '  ok    function openclaw-backup-backup: nodejs20.x, 1024 MB, 900 s timeout',
      '  ok    openclaw-backup-backup mount: fsap-0123456789abcdef0 at /mnt/tenants',
      '  ok    openclaw-backup-backup environment: bucket acme-backups, events to openclaw-backup-events',
      '  ok    function openclaw-backup-restore: nodejs20.x, 1024 MB, 900 s timeout',
      '  ok    openclaw-backup-restore mount: fsap-0123456789abcdef0 at /mnt/tenants',
      '  ok    openclaw-backup-restore environment: bucket acme-backups, events to openclaw-backup-events',
      '  ok    function openclaw-backup-list: nodejs20.x, 1024 MB, 900 s timeout',
      '  ok    openclaw-backup-list mount: fsap-0123456789abcdef0 at /mnt/tenants',
      '  ok    access point fsap-0123456789abcdef0: available, file system fs-0123456789abcdef0',
      '  ok    access point root: /tenants',
      '  ok    access point POSIX user: uid 1000, gid 1000',
      '  ok    file system fs-0123456789abcdef0: available',
      '  ok    file system encryption: encrypted at rest',
      '  ok    mount targets: 2 available in eu-west-1a, eu-west-1b',
      '14 checks: 0 failed, 0 warnings',
      '',
    ]);
    expect(lambda.commandCalls(GetFunctionConfigurationCommand).map((call) => call.args[0].input)).toEqual([
      { FunctionName: 'openclaw-backup-backup' },
      { FunctionName: 'openclaw-backup-restore' },
      { FunctionName: 'openclaw-backup-list' },
    ]);
    expect(efs.commandCalls(DescribeAccessPointsCommand).map((call) => call.args[0].input)).toEqual([{ AccessPointId: 'fsap-0123456789abcdef0' }]);
    expect(efs.commandCalls(DescribeFileSystemsCommand).map((call) => call.args[0].input)).toEqual([{ FileSystemId: 'fs-0123456789abcdef0' }]);
    expect(efs.commandCalls(DescribeMountTargetsCommand).map((call) => call.args[0].input)).toEqual([{ FileSystemId: 'fs-0123456789abcdef0' }]);
  });

  it('fails with exit code 1 and says what is wrong', async () => {
    lambda.on(GetFunctionConfigurationCommand, { FunctionName: 'openclaw-backup-list' }).rejects(Object.assign(new Error('Function not found'), { name: 'ResourceNotFoundException' }));
    lambda.on(GetFunctionConfigurationCommand, { FunctionName: 'openclaw-backup-restore' }).resolves(
      configuration('restore', { FileSystemConfigs: [{ Arn: AP_ARN, LocalMountPath: '/mnt/efs' }], Environment: { Variables: { OPENCLAW_BACKUP_BUCKET: 'acme-backups' } } }),
    );
    efs.on(DescribeAccessPointsCommand).resolves({
      AccessPoints: [{ AccessPointId: 'fsap-0123456789abcdef0', FileSystemId: 'fs-0123456789abcdef0', LifeCycleState: 'available', RootDirectory: { Path: '/' } }],
    });
    efs.on(DescribeMountTargetsCommand).resolves({ MountTargets: [{ MountTargetId: 'fsmt-9', FileSystemId: 'fs-0123456789abcdef0', SubnetId: 'subnet-z', VpcId: 'vpc-other', LifeCycleState: 'available', AvailabilityZoneName: 'eu-west-1c' }] });

    const result = await run(['--stack', 'openclaw-backup', '--json', 'doctor']);
    expect(result.status).toBe(1);
    expect(result.stderr).toBe('');
    const report = JSON.parse(result.stdout) as { ok: boolean; checks: Array<{ check: string; status: string; detail: string }> };
    expect(report.ok).toBe(false);
    const byName = Object.fromEntries(report.checks.map((check) => [check.check, check]));
    expect(byName['function openclaw-backup-list']).toMatchObject({ status: 'fail', detail: expect.stringMatching(/not found in eu-west-1: is the stack deployed with prefix openclaw-backup\?/) });
    expect(byName['openclaw-backup-restore mount']).toMatchObject({ status: 'fail', detail: 'mounted at /mnt/efs, but OPENCLAW_TENANTS_DIR is /mnt/tenants' });
    expect(byName['openclaw-backup-restore environment']).toMatchObject({ status: 'warn' });
    expect(byName['access point root']).toMatchObject({ status: 'warn' });
    expect(byName['access point POSIX user']).toMatchObject({ status: 'fail' });
    expect(byName['mount targets']).toMatchObject({ status: 'fail', detail: "no available mount target in the functions' VPC vpc-1 (1 in total)" });

    const human = await run(['--stack', 'openclaw-backup', 'doctor']);
    expect(human.status).toBe(1);
    expect(human.stdout).toMatch(/^ {2}FAIL {2}mount targets: /m);
    expect(human.stdout).toMatch(/\n\d+ checks: 4 failed, 2 warnings\n$/);
  });

  it('needs remote mode', async () => {
    const result = await run(['doctor']);
    expect(result).toEqual({ status: 2, stdout: '', stderr: 'openclaw: doctor works on a deployed gateway: give --stack <prefix> or set OPENCLAW_STACK\n' });
  });
});
