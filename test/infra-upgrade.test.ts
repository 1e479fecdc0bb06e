// What `cdk deploy` of a newer version over a deployed stack must leave in place. CloudFormation
// replaces a resource whose logical ID changes (a construct renamed or moved) or whose
// replacement-forcing property changes (an EFS access point's POSIX user, a table's or queue's
// name): for the tenant file system or the archive bucket that orphans the data (Retain) or
// deletes it; for the schedule group it deletes every cron `cron add` made in it at run time.
// The logical IDs below are those every version deployed so far (11-27 to 12-05) synthesized:
// a change here needs an upgrade path for deployed stacks (infra/README.md, "Upgrading").

import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, describe, expect, it } from 'vitest';
import { fixtureApp, removeTestOutdirs } from '../infra/fixtures/app.js';

afterAll(removeTestOutdirs);

interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly DeletionPolicy?: string;
  readonly UpdateReplacePolicy?: string;
}

interface Pinned {
  readonly type: string;
  /** What a replacement would do to a deployed stack (the failure message). */
  readonly why: string;
  /** Kept when removed from the template or replaced: it holds data. */
  readonly retain?: boolean;
  /** Replacement-forcing properties, as deployed. */
  readonly identity?: Record<string, unknown>;
}

const TENANT_DATA = 'the tenants: a new one is an empty file system for the functions, the deployed one (Retain) is left holding every tenant';
const ARCHIVES = 'the archives: a new bucket starts empty, the deployed one (Retain) keeps every backup out of the functions\' reach';
const SCHEDULE_TARGET = 'schedules made at run time (cron add) and the previous version\'s rules invoke it by its ARN: a new name leaves them invoking nothing';

/** The stateful resources of the default (standalone) deployment, by logical ID. */
const STANDALONE: Readonly<Record<string, Pinned>> = {
  TenantFileSystemBA7792FA: { type: 'AWS::EFS::FileSystem', why: TENANT_DATA, retain: true, identity: { Encrypted: true, PerformanceMode: 'generalPurpose' } },
  TenantFileSystemAccessPointE2D67F01: {
    type: 'AWS::EFS::AccessPoint',
    why: 'the functions read and write tenants as its POSIX user: another user makes existing tenants unreadable and restored ones belong to a user the gateway is not',
    identity: { PosixUser: { Uid: '1000', Gid: '1000' }, RootDirectory: { Path: '/tenants' } },
  },
  TenantFileSystemEfsMountTargetisolatedSubnet1BA260059: { type: 'AWS::EFS::MountTarget', why: 'a replaced mount target cuts the functions off the file system while it is recreated' },
  TenantFileSystemEfsMountTargetisolatedSubnet218F11B8E: { type: 'AWS::EFS::MountTarget', why: 'a replaced mount target cuts the functions off the file system while it is recreated' },
  BackupBucket49765389: { type: 'AWS::S3::Bucket', why: ARCHIVES, retain: true },
  BackupBucketAccessLogsB7802A48: { type: 'AWS::S3::Bucket', why: 'the access logs of the archive bucket', retain: true },
  EventsNotificationsKey8DB9675A: { type: 'AWS::KMS::Key', why: 'encrypts the notification topic (messages in flight only)' },
  EventsNotificationsCA1ADBEE: { type: 'AWS::SNS::Topic', why: 'its confirmed e-mail subscriptions would have to be confirmed again' },
  EventsEventBus8F97E5F3: { type: 'AWS::Events::EventBus', why: 'the operator\'s own rules on the completion-event bus', identity: { Name: 'openclaw-backup-events' } },
  ObservabilityStatusTable7847E478: {
    type: 'AWS::DynamoDB::Table',
    why: 'the cron catalog cron list shows and every tenant\'s last outcome',
    identity: { TableName: 'openclaw-backup-status', KeySchema: [{ AttributeName: 'kind', KeyType: 'HASH' }, { AttributeName: 'name', KeyType: 'RANGE' }] },
  },
  SchedulerGroupC7019706: {
    type: 'AWS::Scheduler::ScheduleGroup',
    why: 'every cron cron add made lives in it: deleting the group deletes them all',
    identity: { Name: 'openclaw-backup' },
  },
  SchedulerRole3AB4CAD7: {
    type: 'AWS::IAM::Role',
    why: 'schedules made at run time name this role by its ARN',
    identity: { RoleName: { 'Fn::Join': ['', ['openclaw-backup-scheduler-', { Ref: 'AWS::Region' }]] } },
  },
  FanOutQueue8AB53E8C: { type: 'AWS::SQS::Queue', why: 'the queued backups of a night', identity: { QueueName: 'openclaw-backup-work' } },
  FanOutDeadLetterQueue50A5A359: { type: 'AWS::SQS::Queue', why: 'queued backups that failed, kept to be run again', identity: { QueueName: 'openclaw-backup-work-dlq' } },
  SchedulerDeadLetterQueue6601E543: { type: 'AWS::SQS::Queue', why: 'invocations schedules could not deliver', identity: { QueueName: 'openclaw-backup-schedule-dlq' } },
  SchedulesDeadLetterQueue84E31400: { type: 'AWS::SQS::Queue', why: 'failed asynchronous invocations' },
  FunctionsRestoreQueueBDA8D24B: { type: 'AWS::SQS::Queue', why: 'the next pieces of restores in progress', identity: { QueueName: 'openclaw-backup-restore-work' } },
  FunctionsRestoreDeadLetterQueueF187CA88: { type: 'AWS::SQS::Queue', why: 'pieces of restores that failed their last attempt', identity: { QueueName: 'openclaw-backup-restore-work-dlq' } },
  FunctionsBackupFunction57191E2B: { type: 'AWS::Lambda::Function', why: SCHEDULE_TARGET, identity: { FunctionName: 'openclaw-backup-backup' } },
  FunctionsRestoreFunction890837FA: { type: 'AWS::Lambda::Function', why: 'the CLI and the restore role\'s cross-account grants name it', identity: { FunctionName: 'openclaw-backup-restore' } },
  FunctionsListFunction7C6F8B48: { type: 'AWS::Lambda::Function', why: 'the CLI and the fan-out name it', identity: { FunctionName: 'openclaw-backup-list' } },
  FunctionsPruneFunctionC2B5AB02: { type: 'AWS::Lambda::Function', why: SCHEDULE_TARGET, identity: { FunctionName: 'openclaw-backup-prune' } },
  FanOutFunctionA0BAF8B2: { type: 'AWS::Lambda::Function', why: SCHEDULE_TARGET, identity: { FunctionName: 'openclaw-backup-fanout' } },
  ObservabilityMonitorFunction1B6639B0: { type: 'AWS::Lambda::Function', why: 'the freshness check and the outcome rule invoke it', identity: { FunctionName: 'openclaw-backup-monitor' } },
};

/** Types whose every resource must be pinned above: a new one needs a decision on its DeletionPolicy. */
const STATEFUL_TYPES = [
  'AWS::EFS::FileSystem',
  'AWS::EFS::AccessPoint',
  'AWS::EFS::MountTarget',
  'AWS::S3::Bucket',
  'AWS::KMS::Key',
  'AWS::DynamoDB::Table',
  'AWS::Scheduler::ScheduleGroup',
  'AWS::SQS::Queue',
];

function resources(context: Record<string, unknown> = {}): Record<string, CfnResource> {
  return Template.fromStack(fixtureApp(context).stack).toJSON().Resources as Record<string, CfnResource>;
}

let standaloneResources: Record<string, CfnResource> | undefined;
/** The default deployment's resources, synthesized once for the tests that only read them. */
function standalone(): Record<string, CfnResource> {
  return (standaloneResources ??= resources());
}

function expectPinned(actual: Record<string, CfnResource>, pinned: Readonly<Record<string, Pinned>>): void {
  for (const [id, pin] of Object.entries(pinned)) {
    const resource = actual[id];
    const replaced = `${pin.type} ${id} would be replaced by an upgrade (${pin.why})`;
    expect(resource?.Type, `${replaced}: its logical ID is gone`).toBe(pin.type);
    if (pin.identity !== undefined) expect(resource!.Properties, `${replaced}: a replacement-forcing property changed`).toMatchObject(pin.identity);
    if (pin.retain === true) {
      expect([resource!.DeletionPolicy, resource!.UpdateReplacePolicy], `${pin.type} ${id} must be kept when replaced or removed (${pin.why})`).toEqual(['Retain', 'Retain']);
    }
  }
}

describe('an upgrade keeps the deployed stack\'s state', () => {
  it('keeps the logical IDs, names and Retain policies of the stateful resources of a standalone deployment', () => {
    expectPinned(standalone(), STANDALONE);
  });

  it('pins every stateful resource the stack creates: a new one needs its DeletionPolicy decided and a line here', () => {
    const actual = standalone();
    const unpinned = Object.entries(actual)
      .filter(([id, resource]) => STATEFUL_TYPES.includes(resource.Type) && STANDALONE[id] === undefined)
      .map(([id, resource]) => `${resource.Type} ${id}`);
    expect(unpinned, 'stateful resources without a pinned logical ID and a DeletionPolicy decided here').toEqual([]);
  });

  it('keeps every log group (with its retention) when the stack replaces or drops it', () => {
    const logGroups = Object.entries(standalone()).filter(([, resource]) => resource.Type === 'AWS::Logs::LogGroup');
    expect(logGroups.length).toBeGreaterThan(0);
    for (const [id, resource] of logGroups) {
      expect([resource.DeletionPolicy, resource.UpdateReplacePolicy], `log group ${id}`).toEqual(['Retain', 'Retain']);
      expect(resource.Properties?.RetentionInDays, `log group ${id} expires its logs`).toEqual(expect.any(Number));
    }
  });

  it('keeps the access point and everything but the file system when the gateway\'s file system is imported', () => {
    const imported = resources({
      'openclaw:fileSystemId': 'fs-0123456789abcdef0',
      'openclaw:securityGroupId': 'sg-0123456789abcdef0',
      'openclaw:vpcId': 'vpc-0123456789abcdef0',
      'openclaw:subnetIds': 'subnet-0aaaaaaaaaaaaaaa1,subnet-0bbbbbbbbbbbbbbb2',
    });
    const { TenantFileSystemBA7792FA: _fs, TenantFileSystemEfsMountTargetisolatedSubnet1BA260059: _mt1, TenantFileSystemEfsMountTargetisolatedSubnet218F11B8E: _mt2, ...rest } = STANDALONE;
    expectPinned(imported, {
      ...rest,
      TenantFileSystemAccessPointE2D67F01: { ...rest.TenantFileSystemAccessPointE2D67F01!, identity: { ...rest.TenantFileSystemAccessPointE2D67F01!.identity, FileSystemId: 'fs-0123456789abcdef0' } },
    });
  });

  it('keeps the customer managed key of a KMS-encrypted bucket (without it no archive can be read)', () => {
    expectPinned(resources({ 'openclaw:bucketEncryption': 'KMS' }), {
      BackupBucketKey84912B26: { type: 'AWS::KMS::Key', why: 'every archive is encrypted with it: deleting it makes them all unreadable', retain: true },
      BackupBucket49765389: STANDALONE.BackupBucket49765389!,
    });
  });
});
