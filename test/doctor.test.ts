// `openclaw doctor` against aws-sdk-client-mock: the function configurations lead to the
// access point and file system; EC2 Describe answers describe the functions' network (a
// standalone deployment's by default: isolated subnets, an S3 gateway endpoint, events, SQS and
// Secrets Manager interface endpoints); the list function answers the ownership report. Each check passes,
// warns or fails, and any failure makes the exit code 1.

import {
  DescribeManagedPrefixListsCommand,
  DescribeRouteTablesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVpcEndpointsCommand,
  EC2Client,
  type RouteTable,
  type SecurityGroup,
  type VpcEndpoint,
} from '@aws-sdk/client-ec2';
import {
  DescribeAccessPointsCommand,
  DescribeFileSystemsCommand,
  DescribeMountTargetSecurityGroupsCommand,
  DescribeMountTargetsCommand,
  EFSClient,
} from '@aws-sdk/client-efs';
import { GetFunctionConfigurationCommand, GetFunctionEventInvokeConfigCommand, InvokeCommand, LambdaClient, ListEventSourceMappingsCommand, type FunctionConfiguration } from '@aws-sdk/client-lambda';
import { DynamoDBClient, GetItemCommand, QueryCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, ListRulesCommand } from '@aws-sdk/client-eventbridge';
import { ListSchedulesCommand, SchedulerClient } from '@aws-sdk/client-scheduler';
import { GetQueueAttributesCommand, GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { cidrContains } from '../shared/control-plane/doctor-network.js';
import { runMain, stubRemoteCaller } from './helpers/run-main.js';

const lambda = mockClient(LambdaClient);
const efs = mockClient(EFSClient);
const ec2 = mockClient(EC2Client);
const scheduler = mockClient(SchedulerClient);
const sqs = mockClient(SQSClient);
const dynamodb = mockClient(DynamoDBClient);
const events = mockClient(EventBridgeClient);
const ASYNC_DLQ = 'OpenClawBackupStack-SchedulesDeadLetterQueue84E31400-Xk2'; 
const QUEUE_URL = (name: string) => `https://sqs.eu-west-1.amazonaws.com/123456789012/${name}`;
const FUNCTION_ARN = (name: string) => `arn:aws:lambda:eu-west-1:123456789012:function:${name}`;

/** The scheduled side of a deployment: two crons, the work queue drained by its mapping, empty DLQs, tenants fresh. */
function scheduledSide(options: { depths?: Record<string, [number, number]>; tenants?: Record<string, AttributeValue>[]; freshness?: Record<string, AttributeValue> | null } = {}): void {
  scheduler.on(ListSchedulesCommand).resolves({
    Schedules: [
      { Name: 'acme.nightly-backup', State: 'ENABLED', Target: { Arn: FUNCTION_ARN('openclaw-backup-backup') } },
      { Name: '_all.nightly', State: 'ENABLED', Target: { Arn: FUNCTION_ARN('openclaw-backup-fanout') } },
    ],
  });
  events.on(ListRulesCommand).resolves({ Rules: [] });
  sqs.on(GetQueueUrlCommand).callsFake((input: { QueueName: string }) => ({ QueueUrl: QUEUE_URL(input.QueueName) }));
  sqs.on(GetQueueAttributesCommand).callsFake((input: { QueueUrl: string }) => {
    const name = input.QueueUrl.split('/').pop()!;
    const [visible, inFlight] = options.depths?.[name] ?? [0, 0];
    return { Attributes: { QueueArn: `arn:aws:sqs:eu-west-1:123456789012:${name}`, ApproximateNumberOfMessages: String(visible), ApproximateNumberOfMessagesNotVisible: String(inFlight) } };
  });
  lambda.on(ListEventSourceMappingsCommand).resolves({ EventSourceMappings: [{ State: 'Enabled', ScalingConfig: { MaximumConcurrency: 100 } }] });
  // The async DLQ has no name of ours: the backup function's on-failure destination names it.
  lambda.on(GetFunctionEventInvokeConfigCommand).resolves({ DestinationConfig: { OnFailure: { Destination: `arn:aws:sqs:eu-west-1:123456789012:${ASYNC_DLQ}` } } });
  dynamodb.on(QueryCommand).resolves({
    Items: options.tenants ?? [
      { kind: { S: 'tenant' }, name: { S: 'acme' }, lastSuccessAt: { S: '2026-06-03T03:10:00.000Z' } },
      { kind: { S: 'tenant' }, name: { S: 'beta' }, lastSuccessAt: { S: '2026-06-03T03:12:00.000Z' }, lastFailureAt: { S: '2026-06-02T03:12:00.000Z' } },
    ],
  });
  const freshness = options.freshness === undefined
    ? { kind: { S: 'check' }, name: { S: 'freshness' }, checkedAt: { S: new Date(Date.now() - 1_800_000).toISOString() }, tenants: { N: '2' }, stale: { N: '0' }, staleSample: { L: [] }, staleAfterHours: { N: '26' } }
    : options.freshness;
  dynamodb.on(GetItemCommand).resolves(freshness === null ? {} : { Item: freshness });
}
const S3_PL = 'pl-6da54004';

/** The functions' group: HTTPS to S3's prefix list and to the endpoint's group, NFS to the mount targets'. */
function functionGroup(egress: SecurityGroup['IpPermissionsEgress'] = [
  { IpProtocol: 'tcp', FromPort: 443, ToPort: 443, PrefixListIds: [{ PrefixListId: S3_PL }] },
  { IpProtocol: 'tcp', FromPort: 443, ToPort: 443, UserIdGroupPairs: [{ GroupId: 'sg-endpoint' }] },
  { IpProtocol: 'tcp', FromPort: 2049, ToPort: 2049, UserIdGroupPairs: [{ GroupId: 'sg-mt' }] },
]): SecurityGroup {
  return { GroupId: 'sg-1', IpPermissions: [], IpPermissionsEgress: egress };
}

const GROUPS: SecurityGroup[] = [
  { GroupId: 'sg-endpoint', IpPermissions: [{ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, UserIdGroupPairs: [{ GroupId: 'sg-1' }] }], IpPermissionsEgress: [] },
  { GroupId: 'sg-mt', IpPermissions: [{ IpProtocol: 'tcp', FromPort: 2049, ToPort: 2049, UserIdGroupPairs: [{ GroupId: 'sg-1' }] }], IpPermissionsEgress: [] },
];

const S3_GATEWAY: VpcEndpoint = {
  VpcEndpointId: 'vpce-s3',
  VpcEndpointType: 'Gateway',
  ServiceName: 'com.amazonaws.eu-west-1.s3',
  State: 'Available',
  RouteTableIds: ['rtb-isolated'],
  PolicyDocument: JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: ['arn:aws:s3:::acme-backups', 'arn:aws:s3:::acme-backups/*'] }] }),
};
const EVENTS_ENDPOINT: VpcEndpoint = {
  VpcEndpointId: 'vpce-events',
  VpcEndpointType: 'Interface',
  ServiceName: 'com.amazonaws.eu-west-1.events',
  State: 'Available',
  PrivateDnsEnabled: true,
  SubnetIds: ['subnet-a', 'subnet-b'],
  Groups: [{ GroupId: 'sg-endpoint', GroupName: 'events' }],
};

const SQS_ENDPOINT: VpcEndpoint = { ...EVENTS_ENDPOINT, VpcEndpointId: 'vpce-sqs', ServiceName: 'com.amazonaws.eu-west-1.sqs', Groups: [{ GroupId: 'sg-endpoint', GroupName: 'sqs' }] };
const SECRETS_ENDPOINT: VpcEndpoint = {
  ...EVENTS_ENDPOINT,
  VpcEndpointId: 'vpce-secrets',
  ServiceName: 'com.amazonaws.eu-west-1.secretsmanager',
  Groups: [{ GroupId: 'sg-endpoint', GroupName: 'secretsmanager' }],
};
const INTERFACE_ENDPOINTS = [EVENTS_ENDPOINT, SQS_ENDPOINT, SECRETS_ENDPOINT];

/** Isolated subnets: a table of their own, no default route. */
const ISOLATED: RouteTable[] = [
  { RouteTableId: 'rtb-main', Associations: [{ Main: true }], Routes: [{ DestinationCidrBlock: '10.0.0.0/16', GatewayId: 'local' }] },
  {
    RouteTableId: 'rtb-isolated',
    Associations: [{ SubnetId: 'subnet-a' }, { SubnetId: 'subnet-b' }],
    Routes: [{ DestinationCidrBlock: '10.0.0.0/16', GatewayId: 'local' }, { DestinationPrefixListId: S3_PL, GatewayId: 'vpce-s3' }],
  },
];

function network(options: { groups?: SecurityGroup[]; endpoints?: VpcEndpoint[]; routeTables?: RouteTable[] } = {}): void {
  ec2.on(DescribeSubnetsCommand).resolves({
    Subnets: [
      { SubnetId: 'subnet-a', CidrBlock: '10.0.0.0/24', VpcId: 'vpc-1' },
      { SubnetId: 'subnet-b', CidrBlock: '10.0.1.0/24', VpcId: 'vpc-1' },
    ],
  });
  ec2.on(DescribeRouteTablesCommand).resolves({ RouteTables: options.routeTables ?? ISOLATED });
  ec2.on(DescribeVpcEndpointsCommand).resolves({ VpcEndpoints: options.endpoints ?? [S3_GATEWAY, ...INTERFACE_ENDPOINTS] });
  ec2.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: options.groups ?? [functionGroup(), ...GROUPS] });
  ec2.on(DescribeManagedPrefixListsCommand).resolves({ PrefixLists: [{ PrefixListId: S3_PL, PrefixListName: 'com.amazonaws.eu-west-1.s3' }] });
}

/** What the list function answers to { ownership: true }. */
function ownership(report: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): void {
  const answer = {
    ...extra,
    tenants: ['acme', 'beta'],
    ownership: {
      expected: { uid: 1000, gid: 1000 },
      base: { uid: 1000, gid: 1000, mode: '750' },
      tenants: [
        { name: 'acme', uid: 1000, gid: 1000, entries: 30, mismatched: 0 },
        { name: 'beta', uid: 1000, gid: 1000, entries: 12, mismatched: 0 },
      ],
      mismatched: 0,
      samples: [],
      complete: true,
      ...report,
    },
  };
  lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: new TextEncoder().encode(JSON.stringify(answer)) as never });
}
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
    Environment: {
      Variables: {
        OPENCLAW_TENANTS_DIR: '/mnt/tenants',
        OPENCLAW_BACKUP_BUCKET: 'acme-backups',
        OPENCLAW_EVENT_BUS: 'openclaw-backup-events',
        OPENCLAW_STACK_PREFIX: 'openclaw-backup',
        ...(role === 'backup' && { OPENCLAW_WORK_QUEUE_URL: QUEUE_URL('openclaw-backup-work') }),
      },
    },
    ...overrides,
  };
}

/** The prune, fan-out and monitor functions: no tenant volume (doctor checks only that each is there and active). */
function supportingConfiguration(role: string, overrides: Partial<FunctionConfiguration> = {}): FunctionConfiguration {
  return { FunctionName: `openclaw-backup-${role}`, Runtime: 'nodejs24.x', MemorySize: 256, Timeout: 300, State: 'Active', LastUpdateStatus: 'Successful', ...overrides };
}

beforeEach(() => {
  lambda.reset();
  efs.reset();
  ec2.reset();
  for (const client of [scheduler, sqs, dynamodb, events]) client.reset();
  scheduledSide();
  network();
  ownership();
  efs.on(DescribeMountTargetSecurityGroupsCommand).resolves({ SecurityGroups: ['sg-mt'] });
  stubRemoteCaller();
  for (const role of ['backup', 'restore', 'list']) {
    lambda.on(GetFunctionConfigurationCommand, { FunctionName: `openclaw-backup-${role}` }).resolves(configuration(role));
  }
  for (const role of ['prune', 'fanout', 'monitor']) {
    lambda.on(GetFunctionConfigurationCommand, { FunctionName: `openclaw-backup-${role}` }).resolves(supportingConfiguration(role));
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
  ec2.restore();
  for (const client of [scheduler, sqs, dynamodb, events]) client.restore();
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
      '  ok    function openclaw-backup-prune: nodejs24.x, 256 MB, 300 s timeout',
      '  ok    function openclaw-backup-fanout: nodejs24.x, 256 MB, 300 s timeout',
      '  ok    function openclaw-backup-monitor: nodejs24.x, 256 MB, 300 s timeout',
      '  ok    access point fsap-0123456789abcdef0: available, file system fs-0123456789abcdef0',
      '  ok    access point root: /tenants',
      '  ok    access point POSIX user: uid 1000, gid 1000',
      '  ok    file system fs-0123456789abcdef0: available',
      '  ok    file system encryption: encrypted at rest',
      '  ok    mount targets: 2 available in eu-west-1a, eu-west-1b',
      '  ok    network: S3: reachable through gateway endpoint vpce-s3',
      '  ok    network: EventBridge: reachable through the interface endpoint vpce-events',
      '  ok    network: SQS: reachable through the interface endpoint vpce-sqs',
      '  ok    network: Secrets Manager: reachable through the interface endpoint vpce-secrets',
      '  ok    network: EFS (NFS 2049): 2 of 2 mount targets accept NFS from the functions',
      '  ok    tenant ownership: 1000:1000 owns the base dir and all 42 entries of 2 tenants',
      '  ok    schedules: 2 crons in openclaw-backup, 1 for every tenant',
      '  ok    work queue: 0 waiting, 0 running or backing off; at most 100 backups at once',
      '  ok    work DLQ: empty',
      '  ok    schedule DLQ: empty',
      '  ok    restore DLQ: empty',
      '  ok    async DLQ: empty',
      "  ok    last failures: no tenant's last backup failed (2 tenants on record)",
      expect.stringMatching(/^ {2}ok {4}freshness: all 2 tenants backed up within 26 hours as of \d{4}-\d\d-\d\d \d\d:\d\d UTC$/),
      "  ok    endpoints: AWS's own for Lambda, EFS, EC2, Scheduler, SQS, DynamoDB, EventBridge (no endpoint URL configured)",
      '32 checks: 0 failed, 0 warnings',
      '',
    ]);
    // Read-only: EC2 Describe calls only, and the list function asked for the access point's user.
    expect(ec2.calls().every((call) => /^Describe/.test(call.args[0].constructor.name))).toBe(true);
    expect(ec2.calls().length).toBeGreaterThan(0);
    expect(ec2.commandCalls(DescribeVpcEndpointsCommand)[0]!.args[0].input).toEqual({ Filters: [{ Name: 'vpc-id', Values: ['vpc-1'] }] });
    const [invoke] = lambda.commandCalls(InvokeCommand);
    expect(invoke!.args[0].input.FunctionName).toBe('openclaw-backup-list');
    expect(JSON.parse(new TextDecoder().decode(invoke!.args[0].input.Payload as Uint8Array))).toEqual({ ownership: true, expectUid: 1000, expectGid: 1000 });
    expect(lambda.commandCalls(GetFunctionConfigurationCommand).map((call) => call.args[0].input)).toEqual([
      { FunctionName: 'openclaw-backup-backup' },
      { FunctionName: 'openclaw-backup-restore' },
      { FunctionName: 'openclaw-backup-list' },
      { FunctionName: 'openclaw-backup-prune' },
      { FunctionName: 'openclaw-backup-fanout' },
      { FunctionName: 'openclaw-backup-monitor' },
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
    expect(human.stdout).toMatch(/\n\d+ checks: 5 failed, 2 warnings\n$/);
  });

  it('checks that the prune, fan-out and monitor functions are there and active, and says what is unavailable without one', async () => {
    lambda.on(GetFunctionConfigurationCommand, { FunctionName: 'openclaw-backup-prune' }).rejects(Object.assign(new Error('Function not found'), { name: 'ResourceNotFoundException' }));
    lambda
      .on(GetFunctionConfigurationCommand, { FunctionName: 'openclaw-backup-fanout' })
      .resolves(supportingConfiguration('fanout', { State: 'Failed', StateReason: 'The function could not be created', LastUpdateStatus: 'Failed' }));
    lambda.on(GetFunctionConfigurationCommand, { FunctionName: 'openclaw-backup-monitor' }).resolves(supportingConfiguration('monitor', { LastUpdateStatus: 'Failed' }));
    const { status, byName } = await doctorJson();
    expect(status).toBe(1);
    expect(byName['function openclaw-backup-prune']).toEqual({
      check: 'function openclaw-backup-prune',
      status: 'fail',
      detail: 'not found in eu-west-1: `tenants prune` and the prune schedules cannot run; redeploy the stack with prefix openclaw-backup',
    });
    expect(byName['function openclaw-backup-fanout']).toMatchObject({ status: 'fail', detail: 'state Failed (The function could not be created), last update Failed' });
    expect(byName['function openclaw-backup-monitor']).toMatchObject({ status: 'fail', detail: 'state Active, last update Failed' });
    // The rest is still checked.
    expect(byName['tenant ownership']).toMatchObject({ status: 'ok' });

    lambda.on(GetFunctionConfigurationCommand, { FunctionName: 'openclaw-backup-fanout' }).rejects(Object.assign(new Error('Function not found'), { name: 'ResourceNotFoundException' }));
    lambda.on(GetFunctionConfigurationCommand, { FunctionName: 'openclaw-backup-monitor' }).rejects(Object.assign(new Error('Function not found'), { name: 'ResourceNotFoundException' }));
    const missing = (await doctorJson()).byName;
    expect(missing['function openclaw-backup-fanout']!.detail).toBe('not found in eu-west-1: `tenants backup --all` and the all-tenant schedules cannot run; redeploy the stack with prefix openclaw-backup');
    expect(missing['function openclaw-backup-monitor']!.detail).toBe(
      'not found in eu-west-1: no backup outcome is recorded (last failures) and no freshness check runs; redeploy the stack with prefix openclaw-backup',
    );
  });

  it('only warns when the operator policy does not let it read the monitor\'s configuration (a stack deployed before the check), and fails on other errors', async () => {
    const denied = Object.assign(new Error('User: arn:aws:iam::123456789012:user/op is not authorized to perform: lambda:GetFunctionConfiguration'), {
      name: 'AccessDeniedException',
      $metadata: { httpStatusCode: 403 },
    });
    lambda.on(GetFunctionConfigurationCommand, { FunctionName: 'openclaw-backup-monitor' }).rejects(denied);
    const { status, byName } = await doctorJson();
    expect(status).toBe(0);
    expect(byName['function openclaw-backup-monitor']).toMatchObject({ status: 'warn', detail: expect.stringMatching(/^not checked: access denied to its configuration .*redeploy\)$/) });

    lambda.on(GetFunctionConfigurationCommand, { FunctionName: 'openclaw-backup-monitor' }).rejects(Object.assign(new Error('Rate exceeded'), { name: 'TooManyRequestsException' }));
    const throttled = await run(['--stack', 'openclaw-backup', 'doctor', '--region', 'eu-west-1']);
    expect(throttled.status).toBe(1);
    expect(throttled.stderr).toBe('openclaw: reading the configuration of openclaw-backup-monitor: throttled by AWS in eu-west-1; try again shortly\n');
  });

  it('fails S3 and EventBridge from subnets whose only way out is an internet gateway', async () => {
    network({
      endpoints: [],
      routeTables: [{ RouteTableId: 'rtb-main', Associations: [{ Main: true }], Routes: [{ DestinationCidrBlock: '0.0.0.0/0', GatewayId: 'igw-1' }] }],
      groups: [functionGroup([{ IpProtocol: '-1', IpRanges: [{ CidrIp: '0.0.0.0/0' }] }]), ...GROUPS],
    });
    const report = await doctorJson();
    expect(report.status).toBe(1);
    expect(report.byName['network: S3']).toMatchObject({ status: 'fail', detail: expect.stringMatching(/subnet-a: only an internet gateway route \(igw-1\), and Lambda's network interfaces have no public IP: add a NAT gateway or an S3 gateway endpoint/) });
    expect(report.byName['network: EventBridge']).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/an interface endpoint for com\.amazonaws\.eu-west-1\.events.*\(completion events would not be published; backups still succeed\)/),
    });
    expect(report.byName['network: SQS']).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/^subnet-a: only an internet gateway route \(igw-1\).*an interface endpoint for com\.amazonaws\.eu-west-1\.sqs.*\(backups longer than one invocation would fail at the hand-over to their next piece\)$/),
    });
  });

  it('accepts a NAT gateway with HTTPS egress to anywhere, the imported VPC\'s usual way out', async () => {
    network({
      endpoints: [],
      routeTables: [{ RouteTableId: 'rtb-private', Associations: [{ SubnetId: 'subnet-a' }, { SubnetId: 'subnet-b' }], Routes: [{ DestinationCidrBlock: '0.0.0.0/0', NatGatewayId: 'nat-1' }] }],
      groups: [functionGroup([{ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, IpRanges: [{ CidrIp: '0.0.0.0/0' }] }, { IpProtocol: 'tcp', FromPort: 2049, ToPort: 2049, IpRanges: [{ CidrIp: '10.0.0.0/16' }] }]), { ...GROUPS[1]!, IpPermissions: [{ IpProtocol: 'tcp', FromPort: 2049, ToPort: 2049, IpRanges: [{ CidrIp: '10.0.0.0/16' }] }] }],
    });
    efs.on(DescribeMountTargetsCommand).resolves({
      MountTargets: [{ MountTargetId: 'fsmt-1', FileSystemId: 'fs-0123456789abcdef0', SubnetId: 'subnet-a', VpcId: 'vpc-1', LifeCycleState: 'available', IpAddress: '10.0.0.12', AvailabilityZoneName: 'eu-west-1a' }],
    });
    const report = await doctorJson();
    expect(report.status).toBe(0);
    expect(report.byName['network: S3']).toEqual({ check: 'network: S3', status: 'ok', detail: 'reachable through NAT gateway nat-1' });
    expect(report.byName['network: EventBridge']).toMatchObject({ status: 'ok', detail: 'reachable through the NAT route of every subnet' });
    expect(report.byName['network: SQS']).toMatchObject({ status: 'ok', detail: 'reachable through the NAT route of every subnet' });
    expect(report.byName['network: Secrets Manager']).toMatchObject({ status: 'ok', detail: 'reachable through the NAT route of every subnet' });
    expect(report.byName['network: EFS (NFS 2049)']).toMatchObject({ status: 'ok', detail: '1 of 1 mount target accept NFS from the functions' });
  });

  it('checks that a backup longer than one invocation can hand over to the work queue (SQS)', async () => {
    const handOver = /\(backups longer than one invocation would fail at the hand-over to their next piece\)$/;
    // No sqs endpoint in isolated subnets: no way to the queue.
    network({ endpoints: [S3_GATEWAY, EVENTS_ENDPOINT, SECRETS_ENDPOINT] });
    let report = await doctorJson();
    expect(report.status).toBe(1);
    expect(report.byName['network: SQS']).toEqual({
      check: 'network: SQS',
      status: 'fail',
      detail:
        'subnet-a: no route out of the VPC: add an interface endpoint for com.amazonaws.eu-west-1.sqs or a NAT gateway; ' +
        'subnet-b: no route out of the VPC: add an interface endpoint for com.amazonaws.eu-west-1.sqs or a NAT gateway ' +
        '(backups longer than one invocation would fail at the hand-over to their next piece)',
    });
    expect(report.byName['network: EventBridge']).toMatchObject({ status: 'ok' });

    // The endpoint is there, but with private DNS off the queue URL's name resolves to SQS's public address.
    network({ endpoints: [S3_GATEWAY, EVENTS_ENDPOINT, { ...SQS_ENDPOINT, PrivateDnsEnabled: false }, SECRETS_ENDPOINT] });
    report = await doctorJson();
    expect(report.status).toBe(1);
    expect(report.byName['network: SQS']).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/^the sqs endpoint vpce-sqs has private DNS off: the functions resolve SQS's public name and do not use it; subnet-a: no route out of the VPC: add private DNS on the endpoint vpce-sqs or a NAT gateway;/),
    });
    expect(report.byName['network: SQS']!.detail).toMatch(handOver);

    // The endpoint's security group does not let the functions in.
    network({ groups: [functionGroup(), { ...GROUPS[0]!, GroupId: 'sg-sqs', IpPermissions: [] }, ...GROUPS], endpoints: [S3_GATEWAY, EVENTS_ENDPOINT, { ...SQS_ENDPOINT, Groups: [{ GroupId: 'sg-sqs' }] }, SECRETS_ENDPOINT] });
    report = await doctorJson();
    expect(report.byName['network: SQS']).toMatchObject({ status: 'fail', detail: expect.stringMatching(/let no HTTPS out to the endpoint vpce-sqs \(its groups sg-sqs\)/) });
    expect(report.byName['network: SQS']!.detail).toMatch(handOver);

    // A NAT route, but the functions' group lets HTTPS out to S3's prefix list only.
    const natOnly: RouteTable[] = [{ RouteTableId: 'rtb-private', Associations: [{ SubnetId: 'subnet-a' }, { SubnetId: 'subnet-b' }], Routes: [{ DestinationCidrBlock: '0.0.0.0/0', NatGatewayId: 'nat-1' }] }];
    network({ endpoints: [S3_GATEWAY, EVENTS_ENDPOINT, SECRETS_ENDPOINT], routeTables: natOnly });
    report = await doctorJson();
    expect(report.status).toBe(1);
    expect(report.byName['network: SQS']).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/^subnet-a: a NAT route, but the functions' security groups let no HTTPS out to anywhere \(SQS has no prefix list\); subnet-b: /),
    });
    expect(report.byName['network: SQS']!.detail).toMatch(handOver);

    // The same NAT route with HTTPS out to anywhere: the endpoint without private DNS is not needed.
    network({
      endpoints: [S3_GATEWAY, EVENTS_ENDPOINT, { ...SQS_ENDPOINT, PrivateDnsEnabled: false }, SECRETS_ENDPOINT],
      routeTables: natOnly,
      groups: [functionGroup([...functionGroup().IpPermissionsEgress!, { IpProtocol: 'tcp', FromPort: 443, ToPort: 443, IpRanges: [{ CidrIp: '0.0.0.0/0' }] }]), ...GROUPS],
    });
    report = await doctorJson();
    expect(report.status).toBe(0);
    expect(report.byName['network: SQS']).toEqual({
      check: 'network: SQS',
      status: 'ok',
      detail: "reachable through the NAT route of every subnet; the sqs endpoint vpce-sqs has private DNS off: the functions resolve SQS's public name and do not use it",
    });
  });

  it('checks SQS only when the backup function has the work queue, Secrets Manager only when the restore function reads identities', async () => {
    network({ endpoints: [S3_GATEWAY, EVENTS_ENDPOINT] });
    lambda.on(GetFunctionConfigurationCommand, { FunctionName: 'openclaw-backup-backup' }).resolves(
      configuration('backup', { Environment: { Variables: { OPENCLAW_BACKUP_BUCKET: 'acme-backups', OPENCLAW_EVENT_BUS: 'openclaw-backup-events', OPENCLAW_WORK_QUEUE_URL: ' ' } } }),
    );
    lambda.on(GetFunctionConfigurationCommand, { FunctionName: 'openclaw-backup-restore' }).resolves(
      configuration('restore', { Environment: { Variables: { OPENCLAW_BACKUP_BUCKET: 'acme-backups', OPENCLAW_EVENT_BUS: 'openclaw-backup-events' } } }),
    );
    const report = await doctorJson();
    expect(report.status).toBe(0);
    expect(Object.keys(report.byName).filter((name) => name.startsWith('network: '))).toEqual(['network: S3', 'network: EventBridge', 'network: EFS (NFS 2049)']);
  });

  it("says when the stack encrypts every backup (encryptTo), and to how many keys", async () => {
    network({ endpoints: [S3_GATEWAY, EVENTS_ENDPOINT, SQS_ENDPOINT, SECRETS_ENDPOINT] });
    const base = configuration('backup');
    const keys = ['age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq', 'age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj'];
    lambda.on(GetFunctionConfigurationCommand, { FunctionName: 'openclaw-backup-backup' }).resolves({ ...base, Environment: { Variables: { ...base.Environment!.Variables, OPENCLAW_ENCRYPT_TO: ` ${keys[0]}, ${keys[1]},${keys[0]}` } } });
    const report = await doctorJson();
    expect(report.byName['openclaw-backup-backup environment']).toEqual({
      check: 'openclaw-backup-backup environment',
      status: 'ok',
      detail: "bucket acme-backups, events to openclaw-backup-events; every backup it stores is encrypted to the stack's 2 keys (encryptTo), besides any --encrypt-to names",
    });
    expect(report.byName['openclaw-backup-restore environment']!.detail).toBe('bucket acme-backups, events to openclaw-backup-events');
  });

  it('only warns when restores with --identity-secret cannot reach Secrets Manager', async () => {
    network({ endpoints: [S3_GATEWAY, EVENTS_ENDPOINT, SQS_ENDPOINT] });
    const report = await doctorJson();
    expect(report.status).toBe(0);
    expect(report.byName['network: Secrets Manager']).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/^subnet-a: no route out of the VPC: add an interface endpoint for com\.amazonaws\.eu-west-1\.secretsmanager or a NAT gateway; .*\(restores with --identity-secret would fail; other restores and backups are unaffected\)$/),
    });
    expect(report.byName['network: SQS']).toMatchObject({ status: 'ok' });
  });

  it('says which security group rule is missing', async () => {
    network({ groups: [functionGroup([{ IpProtocol: 'tcp', FromPort: 2049, ToPort: 2049, UserIdGroupPairs: [{ GroupId: 'sg-mt' }] }]), GROUPS[0]!, { ...GROUPS[1]!, IpPermissions: [] }] });
    const report = await doctorJson();
    expect(report.byName['network: S3']).toMatchObject({ status: 'fail', detail: expect.stringMatching(/gateway endpoint vpce-s3 is routed, but the functions' security groups let no HTTPS out to the S3 prefix list pl-6da54004/) });
    expect(report.byName['network: EventBridge']).toMatchObject({ status: 'fail', detail: expect.stringMatching(/let no HTTPS out to the endpoint vpce-events/) });
    expect(report.byName['network: EFS (NFS 2049)']).toMatchObject({ status: 'fail', detail: expect.stringMatching(/no mount target accepts NFS from the functions/) });

    // The right peers on the wrong ports.
    network({
      groups: [
        functionGroup([
          { IpProtocol: 'tcp', FromPort: 80, ToPort: 80, PrefixListIds: [{ PrefixListId: S3_PL }] },
          { IpProtocol: 'tcp', FromPort: 443, ToPort: 443, UserIdGroupPairs: [{ GroupId: 'sg-endpoint' }, { GroupId: 'sg-mt' }] },
        ]),
        ...GROUPS,
      ],
    });
    const ports = await doctorJson();
    expect(ports.byName['network: S3']).toMatchObject({ status: 'fail' });
    expect(ports.byName['network: EventBridge']).toMatchObject({ status: 'ok' });
    expect(ports.byName['network: EFS (NFS 2049)']).toMatchObject({ status: 'fail' });
  });

  it('warns about routes it cannot follow and an endpoint policy without the bucket', async () => {
    network({
      endpoints: [{ ...S3_GATEWAY, RouteTableIds: ['rtb-other'], PolicyDocument: JSON.stringify({ Statement: [{ Effect: 'Allow', Resource: 'arn:aws:s3:::someone-else/*' }] }) }, ...INTERFACE_ENDPOINTS],
      routeTables: [{ RouteTableId: 'rtb-tgw', Associations: [{ Main: true }], Routes: [{ DestinationCidrBlock: '0.0.0.0/0', TransitGatewayId: 'tgw-1' }] }],
    });
    expect((await doctorJson()).byName['network: S3']).toMatchObject({ status: 'warn', detail: expect.stringMatching(/the default route goes to tgw-1, which cannot be followed from here/) });
    network({ endpoints: [{ ...S3_GATEWAY, PolicyDocument: JSON.stringify({ Statement: [{ Effect: 'Allow', Resource: 'arn:aws:s3:::someone-else/*' }] }) }, ...INTERFACE_ENDPOINTS] });
    expect((await doctorJson()).byName['network: S3']).toMatchObject({ status: 'warn', detail: expect.stringMatching(/the endpoint's policy does not name the bucket acme-backups/) });
  });

  it('checks who owns the tenant tree through the list function', async () => {
    ownership({ base: { uid: 0, gid: 0, mode: '755' } });
    expect((await doctorJson()).byName['tenant ownership']).toMatchObject({
      status: 'fail',
      detail: 'the tenant base dir /tenants belongs to 0:0, not to the access point\'s user 1000:1000: restores cannot create tenants there',
    });
    ownership({ tenants: [{ name: 'acme', uid: 1001, gid: 1001, entries: 30, mismatched: 30 }, { name: 'beta', uid: 1000, gid: 1000, entries: 12, mismatched: 0 }], mismatched: 30 });
    expect((await doctorJson()).byName['tenant ownership']).toMatchObject({ status: 'fail', detail: expect.stringMatching(/^1 tenant not owned by 1000:1000: acme \(1001:1001\); run the gateway as 1000:1000/) });
    ownership({ mismatched: 2, samples: [{ path: 'acme/memory/main.sqlite', uid: 0, gid: 0 }], complete: false });
    expect((await doctorJson()).byName['tenant ownership']).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/^2 of 42 entries are not owned by 1000:1000, e.g\. acme\/memory\/main\.sqlite \(0:0\): .*counts are lower bounds\)$/),
    });
    // A report cut to fit Lambda's answer (a gateway of 80,000 tenants) says so.
    ownership({ complete: false, tenantsOmitted: 79_998 });
    expect((await doctorJson()).byName['tenant ownership']).toMatchObject({
      status: 'warn',
      detail: "1000:1000 owns the base dir and all 42 entries of 2 tenants (79998 tenants left out of the list function's answer, which Lambda limits to 6 MB, those owned by another user or holding entries of another kept: counts are lower bounds)",
    });
    // Its mismatched count is every tenant's, its entries only those answered: not set against each other ("500 of 42 entries").
    ownership({ complete: false, tenantsOmitted: 79_998, mismatched: 500, samples: [{ path: 't079999/memory/main.sqlite', uid: 0, gid: 0 }] });
    expect((await doctorJson()).byName['tenant ownership']).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/^500 entries are not owned by 1000:1000, e\.g\. t079999\/memory\/main\.sqlite \(0:0\): .*79998 tenants left out/),
    });
    // Names in the base dir that no backup covers, sent beside the report: a warning naming them.
    ownership({}, { skipped: [{ name: 'Acme', reason: 'not a valid tenant name', invalidName: true }, { name: 'acme.old', reason: 'not a valid tenant name', invalidName: true }] });
    const named = await doctorJson();
    expect(named.byName['tenant ownership']).toMatchObject({ status: 'ok' });
    expect(named.byName['tenant names']).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/^2 names in \/tenants that no backup covers \(not a tenant name, or a symlink\): "Acme", "acme\.old"; rename or move them/),
    });
    ownership();
    expect((await doctorJson()).byName['tenant names']).toBeUndefined();
    // What the list function's listing settled first (a restore killed on the volume, rolled back), carried by its answer: a warning saying each, the tenant there now or not (`tenants list --stack` says the same).
    ownership({}, { recovered: [{ tenant: 'acme', action: 'rolled-back' }, { tenant: 'newco', action: 'rolled-back' }, { tenant: 'beta', action: 'removed-leftovers' }] });
    const settled = await doctorJson();
    expect(settled.byName['tenant ownership']).toMatchObject({ status: 'ok' });
    expect(settled.byName['interrupted restores']).toEqual({
      check: 'interrupted restores',
      status: 'warn',
      detail:
        'an interrupted earlier restore of tenant "acme" was rolled back first: the tenant is as it was before that restore; ' +
        'an interrupted earlier restore of tenant "newco" was rolled back first: there was no tenant "newco" before it and there is none now (run that restore again)',
    });
    // A name that is no tenant's (an escape sequence from the gateway) is not printed, nor a field that is no list.
    for (const recovered of [[{ tenant: 'x\u001b[2J', action: 'rolled-back' }], 'rolled-back', [{ tenant: 'beta', action: 'removed-leftovers' }]]) {
      ownership({}, { recovered });
      const doctor = await doctorJson();
      expect(doctor.byName['interrupted restores']).toBeUndefined();
      expect(doctor.byName['tenant ownership']).toMatchObject({ status: 'ok' });
    }
    // A gateway deployed before the ownership report: a warning, not a failure.
    lambda.on(InvokeCommand).resolves({
      StatusCode: 200,
      Payload: new TextEncoder().encode(JSON.stringify({ ok: false, error: { code: 'INVALID_REQUEST', outcome: 'usage', message: 'list request: unknown field "ownership"' } })) as never,
    });
    expect((await doctorJson()).byName['tenant ownership']).toMatchObject({ status: 'warn', detail: expect.stringMatching(/does not report ownership/) });
  });

  it('says which endpoint it called, for the profile given as for AWS_PROFILE', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'openclaw-doctor-'));
    try {
      const config = path.join(dir, 'config');
      writeFileSync(config, '[profile local]\nregion = eu-west-1\nendpoint_url = http://localstack.internal:4566\n[services only-lambda]\nlambda =\n  endpoint_url = http://lambda.internal:9001\n[profile split]\nservices = only-lambda\n');
      vi.stubEnv('AWS_CONFIG_FILE', config);
      vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', path.join(dir, 'none'));
      const result = await run(['--stack', 'openclaw-backup', '--json', 'doctor', '--aws-profile', 'local', '--region', 'eu-west-1']);
      const report = JSON.parse(result.stdout) as { endpoints: unknown; checks: Array<{ check: string; status: string; detail: string }> };
      const endpoint = { url: 'http://localstack.internal:4566', source: 'profile local, endpoint_url' };
      expect(report.endpoints).toEqual({ Lambda: endpoint, EFS: endpoint, EC2: endpoint, Scheduler: endpoint, SQS: endpoint, DynamoDB: endpoint, EventBridge: endpoint });
      expect(report.checks.find((check) => check.check === 'endpoints')).toEqual({
        check: 'endpoints',
        status: 'ok',
        detail: ['Lambda', 'EFS', 'EC2', 'Scheduler', 'SQS', 'DynamoDB', 'EventBridge'].map((service) => `${service} via http://localstack.internal:4566 (profile local, endpoint_url)`).join('; '),
      });
      // The client really was built for that endpoint.
      const [invoke] = lambda.commandCalls(InvokeCommand);
      expect(await (invoke!.thisValue as LambdaClient).config.endpoint?.()).toMatchObject({ hostname: 'localstack.internal', port: 4566 });
      // So were the clients of the scheduled side.
      const [schedules] = scheduler.commandCalls(ListSchedulesCommand);
      expect(await (schedules!.thisValue as SchedulerClient).config.endpoint?.()).toMatchObject({ hostname: 'localstack.internal', port: 4566 });
      const split = JSON.parse((await run(['--stack', 'openclaw-backup', '--json', 'doctor', '--aws-profile', 'split', '--region', 'eu-west-1'])).stdout) as { endpoints: unknown };
      expect(split.endpoints).toEqual({
        Lambda: { url: 'http://lambda.internal:9001', source: 'profile split, services only-lambda' },
        EFS: null,
        EC2: null,
        Scheduler: null,
        SQS: null,
        DynamoDB: null,
        EventBridge: null,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('knows which address blocks contain which', () => {
    expect(cidrContains('0.0.0.0/0', '10.1.2.0/24')).toBe(true);
    expect(cidrContains('10.0.0.0/16', '10.0.1.0/24')).toBe(true);
    expect(cidrContains('10.0.0.0/16', '10.1.0.0/24')).toBe(false);
    expect(cidrContains('10.0.1.0/24', '10.0.0.0/16')).toBe(false);
    expect(cidrContains('10.0.0.12/32', '10.0.0.12/32')).toBe(true);
    expect(cidrContains('bad', '10.0.0.0/8')).toBe(false);
  });

  it('refuses an expectation no access point can meet before any call: a relative root path, an ID past 2^32-1', async () => {
    for (const [flags, message] of [
      [['--expect-root-path', 'tenants'], "option '--expect-root-path <path>' argument 'tenants' is invalid. must be an absolute path, as the access point's root directory is, e.g. /tenants"],
      [['--expect-uid', '4294967296'], "option '--expect-uid <uid>' argument '4294967296' is invalid. must be a whole number from 0 to 4294967295"],
      [['--expect-gid', '-1'], "option '--expect-gid <gid>' argument '-1' is invalid. must be a whole number from 0 to 4294967295"],
    ] as const) {
      const result = await run(['--stack', 'openclaw-backup', 'doctor', '--region', 'eu-west-1', ...flags]);
      expect(result, flags.join(' ')).toEqual({ status: 2, stdout: '', stderr: `openclaw: ${message} (see openclaw doctor --help)\n` });
    }
  });

  it('needs remote mode for the gateway\'s checks', async () => {
    const result = await run(['doctor', '--expect-uid', '1000']);
    expect(result).toEqual({ status: 2, stdout: '', stderr: 'openclaw: doctor works on a deployed gateway: give --stack <prefix> or set OPENCLAW_STACK (without, doctor checks the local base dir)\n' });
  });
});

async function doctorJson(): Promise<{ status: number; byName: Record<string, { check: string; status: string; detail: string }> }> {
  const result = await run(['--stack', 'openclaw-backup', '--json', 'doctor', '--region', 'eu-west-1']);
  expect(result.stderr).toBe('');
  const report = JSON.parse(result.stdout) as { checks: Array<{ check: string; status: string; detail: string }> };
  return { status: result.status, byName: Object.fromEntries(report.checks.map((check) => [check.check, check])) };
}

describe('doctor: the scheduled side', () => {
  const checksOf = async () => {
    const result = await run(['--stack', 'openclaw-backup', '--json', 'doctor']);
    const report = JSON.parse(result.stdout) as { checks: Array<{ check: string; status: string; detail: string }> };
    return { status: result.status, byName: Object.fromEntries(report.checks.map((check) => [check.check, check])) };
  };

  it('reports queue depths, backups waiting in the DLQ with the command to redrive them, and the tenants whose last backup failed', async () => {
    scheduledSide({
      depths: { 'openclaw-backup-work': [4200, 100], 'openclaw-backup-work-dlq': [2, 0], 'openclaw-backup-restore-work-dlq': [1, 0] },
      tenants: [
        { kind: { S: 'tenant' }, name: { S: 'acme' }, lastSuccessAt: { S: '2026-06-02T03:10:00.000Z' }, lastFailureAt: { S: '2026-06-03T03:20:00.000Z' }, lastFailureCode: { S: 'UNREACHABLE' }, lastFailureMessage: { S: 'S3 did not answer' } },
        { kind: { S: 'tenant' }, name: { S: 'beta' }, lastFailureAt: { S: '2026-06-03T04:00:00.000Z' }, lastFailureCode: { S: 'TENANT_BUSY' }, lastFailureMessage: { S: 'busy' } },
        { kind: { S: 'tenant' }, name: { S: 'gamma' }, lastSuccessAt: { S: '2026-06-03T05:00:00.000Z' }, lastFailureAt: { S: '2026-06-03T03:00:00.000Z' } },
      ],
    });
    const { status, byName } = await checksOf();
    expect(status).toBe(0);
    expect(byName['work queue']).toEqual({ check: 'work queue', status: 'ok', detail: '4200 waiting, 100 running or backing off; at most 100 backups at once' });
    expect(byName['work DLQ']).toEqual({
      check: 'work DLQ',
      status: 'warn',
      detail: "2 messages: queued backups gave up after their last attempt (see the failures below); once the cause is fixed, run them again: aws sqs start-message-move-task --source-arn arn:aws:sqs:eu-west-1:123456789012:openclaw-backup-work-dlq (as a role the stack's queueRedrivers lists: the queue denies others)",
    });
    expect(byName['restore DLQ']).toEqual({
      check: 'restore DLQ',
      status: 'warn',
      detail: "1 message: pieces of restores in pieces gave up after their last attempt: each one's tenant stays busy until its chain is abandoned, 24 h after its last piece (docs/scale.md); once the cause is fixed, go on with them: aws sqs start-message-move-task --source-arn arn:aws:sqs:eu-west-1:123456789012:openclaw-backup-restore-work-dlq (as a role the stack's queueRedrivers lists: the queue denies others)",
    });
    expect(byName['last failures']).toEqual({
      check: 'last failures',
      status: 'warn',
      detail: "2 tenants' last backups failed: beta (2026-06-03 04:00 UTC, TENANT_BUSY: busy); acme (2026-06-03 03:20 UTC, UNREACHABLE: S3 did not answer)",
    });
  });

  // Where a scheduled backup, prune or fan-out ends after Lambda's retries: the stack names the queue nothing of ours, so doctor had never looked (only the async-dlq alarm did).
  it('reports the async DLQ, found from the backup function\'s on-failure destination, and says when it cannot be found', async () => {
    scheduledSide({ depths: { [ASYNC_DLQ]: [3, 0] } });
    expect((await checksOf()).byName['async DLQ']).toEqual({
      check: 'async DLQ',
      status: 'warn',
      detail: `3 messages: scheduled backups, prunes or fan-outs that failed after Lambda's retries, each with its event and error (aws sqs receive-message --queue-url ${QUEUE_URL(ASYNC_DLQ)}); run them again by hand once the cause is fixed`,
    });
    lambda.on(GetFunctionEventInvokeConfigCommand).rejects(Object.assign(new Error('not allowed'), { name: 'AccessDeniedException' }));
    expect((await checksOf()).byName['async DLQ']).toMatchObject({ status: 'warn', detail: expect.stringMatching(/lambda:GetFunctionEventInvokeConfig denied\): attach this version's operator policy$/) });
    lambda.on(GetFunctionEventInvokeConfigCommand).rejects(Object.assign(new Error('no config'), { name: 'ResourceNotFoundException' }));
    expect((await checksOf()).byName['async DLQ']).toMatchObject({ status: 'warn', detail: 'openclaw-backup-backup has no queue for its failed scheduled runs: after Lambda\'s retries they are dropped, seen only in its logs' });
  });

  it('warns about crons whose target is none of the gateway\'s functions: they never back up', async () => {
    scheduledSide();
    let { byName } = await checksOf();
    expect(byName['schedule targets']).toBeUndefined();

    // Left by a stack deployed under another prefix, or edited by hand.
    scheduler.on(ListSchedulesCommand).resolves({
      Schedules: [
        { Name: 'acme.nightly-backup', State: 'ENABLED', Target: { Arn: FUNCTION_ARN('old-gateway-backup') } },
        { Name: 'beta.prune', State: 'ENABLED', Target: { Arn: `${FUNCTION_ARN('openclaw-backup-prune')}:live` } },
        { Name: '_all.nightly', State: 'ENABLED', Target: { Arn: 'arn:aws:sqs:eu-west-1:123456789012:somewhere' } },
      ],
    });
    ({ byName } = await checksOf());
    expect(byName['schedule targets']).toEqual({
      check: 'schedule targets',
      status: 'warn',
      detail:
        '2 crons invoke functions not of openclaw-backup (acme.nightly-backup → old-gateway-backup, _all.nightly → arn:aws:sqs:eu-west-1:123456789012:somewhere), ' +
        'so they back nothing up here: remove and add them again (cron rm, cron add)',
    });
  });

  it('names stale tenants, an overdue check, rules still to migrate, and fails what is missing', async () => {
    scheduledSide({
      freshness: { kind: { S: 'check' }, name: { S: 'freshness' }, checkedAt: { S: new Date(Date.now() - 5 * 3_600_000).toISOString() }, tenants: { N: '10000' }, stale: { N: '3' }, staleSample: { L: [{ S: 'acme' }, { S: 'beta' }, { S: 'gamma' }] }, staleAfterHours: { N: '26' } },
    });
    events.on(ListRulesCommand).resolves({ Rules: [{ Name: 'openclaw-backup-acme-old', Arn: 'arn:aws:events:eu-west-1:123456789012:rule/openclaw-backup-acme-old', ScheduleExpression: 'cron(0 3 * * ? *)', Description: JSON.stringify({ schedule: '0 3 * * *', cmd: 'openclaw tenants backup acme --to s3://acme-backups/k' }) }] });
    let { byName } = await checksOf();
    expect(byName.freshness).toMatchObject({ status: 'warn', detail: expect.stringMatching(/^3 of 10000 tenants had no successful backup for 26 hours as of .*: acme, beta, gamma; that was 5 hours ago: is the monitor's schedule running\?$/) });
    expect(byName.schedules).toMatchObject({ status: 'warn', detail: '2 crons in openclaw-backup, 1 for every tenant; 1 EventBridge rule of the previous version: run `openclaw --stack openclaw-backup cron migrate`' });

    scheduler.on(ListSchedulesCommand).rejects(Object.assign(new Error('Schedule group openclaw-backup does not exist.'), { name: 'ResourceNotFoundException' }));
    lambda.on(ListEventSourceMappingsCommand).resolves({ EventSourceMappings: [] });
    dynamodb.on(QueryCommand).rejects(Object.assign(new Error('Requested resource not found'), { name: 'ResourceNotFoundException' }));
    const missing = await checksOf();
    byName = missing.byName;
    expect(missing.status).toBe(1);
    expect(byName.schedules).toMatchObject({ status: 'fail', detail: 'no schedule group openclaw-backup: deploy this version of the stack (crons live there)' });
    expect(byName['work queue']).toMatchObject({ status: 'fail', detail: expect.stringMatching(/no event source mapping feeds it to openclaw-backup-backup: nothing drains it/) });
    expect(byName['last failures']).toMatchObject({ status: 'fail', detail: 'no status table openclaw-backup-status: deploy this version of the stack' });
  });
});
