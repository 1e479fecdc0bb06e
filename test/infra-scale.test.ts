// The stack's side of "every tenant, every night" as CloudFormation: the Scheduler group and
// the role schedules invoke with, the work queue with its DLQ and the backup function's event
// source mapping (its MaximumConcurrency sized from the EFS throughput mode), the fan-out and
// the monitor outside the VPC, the status table, and alarms that reach someone: the topic's
// policy lets CloudWatch publish for the stack's alarms (pinned here), every alarm notifies
// it, and the functions' EMF documents (real Powertools output) carry exactly the metric,
// namespace and dimensions the alarms watch, so a failed queued backup and a stale tenant
// each put their alarm in ALARM.

import { Logger } from '@aws-lambda-powertools/logger';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';

import { Duration } from 'aws-cdk-lib';
import { fixtureApp, removeTestOutdirs } from '../infra/fixtures/app.js';
import { BackupFanOut } from '../infra/backup-fanout.js';
import { RESTORE_PIECE_RECEIVES, WORK_REDELIVERY_MARGIN_MS } from '../shared/control-plane/deployment.js';
import { LOCK_STALE_MS } from '../shared/tenant/lock.js';
import { backupReadBudgetMiBps, defaultBackupConcurrency } from '../infra/backup-concurrency.js';
import { encodeWorkMessage } from '../shared/control-plane/work-queue.js';
import { TenantNotFoundError, StorageError } from '../shared/errors.js';
import { createMetrics, powertoolsMetrics } from '../functions/metrics.js';
import { monitorHandler } from '../functions/monitor-handler.js';
import { workQueueHandler } from '../functions/queue-handler.js';
import { pruneHandler } from '../functions/prune-handler.js';
import { listHandler } from '../functions/list-handler.js';
import type { PruneResult } from '../shared/catalog/prune.js';
import { fakeStatusTable } from './helpers/fake-status-table.js';
import { lambdaContext } from './helpers/lambda-context.js';

afterAll(removeTestOutdirs);
afterEach(() => vi.restoreAllMocks());

type Resource = { Type: string; Properties: Record<string, unknown> };
const IMPORT = {
  'openclaw:fileSystemId': 'fs-0123456789abcdef0',
  'openclaw:securityGroupId': 'sg-0123456789abcdef0',
  'openclaw:vpcId': 'vpc-0123456789abcdef0',
  'openclaw:subnetIds': ['subnet-0aaaaaaaaaaaaaaa1'],
};

function template(context: Record<string, unknown> = {}): Template {
  return Template.fromStack(fixtureApp(context).stack);
}
function resources(t: Template, type: string): Record<string, Resource> {
  return t.findResources(type) as Record<string, Resource>;
}
function idOf(t: Template, type: string, props: Record<string, unknown>): string {
  const ids = Object.keys(t.findResources(type, { Properties: Match.objectLike(props) }));
  expect(ids, `${type} ${JSON.stringify(props)}`).toHaveLength(1);
  return ids[0]!;
}
const fn = (t: Template, name: string) => idOf(t, 'AWS::Lambda::Function', { FunctionName: `openclaw-backup-${name}` });
/** The logical ID of a function's role. */
const fnRole = (t: Template, name: string) => (resources(t, 'AWS::Lambda::Function')[fn(t, name)]!.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
const queue = (t: Template, name: string) => idOf(t, 'AWS::SQS::Queue', { QueueName: name });
/** The statements of the default policy of the role of `functionId`. */
function roleStatements(t: Template, roleId: string): { Action: string | string[]; Resource: unknown; Sid?: string }[] {
  return Object.values(resources(t, 'AWS::IAM::Policy'))
    .filter((policy) => (policy.Properties.Roles as { Ref: string }[]).some((role) => role.Ref === roleId))
    .flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: never[] }).Statement);
}
const roleOf = (t: Template, functionId: string) => ((resources(t, 'AWS::Lambda::Function')[functionId]!.Properties.Role as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0]);

describe('the schedules\' side', () => {
  it('creates the group and a role only EventBridge Scheduler may assume, for this account\'s schedules in that group', () => {
    const t = template();
    t.hasResourceProperties('AWS::Scheduler::ScheduleGroup', { Name: 'openclaw-backup' });
    const role = idOf(t, 'AWS::IAM::Role', { RoleName: { 'Fn::Join': ['', ['openclaw-backup-scheduler-', { Ref: 'AWS::Region' }]] } });
    expect(resources(t, 'AWS::IAM::Role')[role]!.Properties.AssumeRolePolicyDocument).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Action: 'sts:AssumeRole',
          Effect: 'Allow',
          Principal: { Service: 'scheduler.amazonaws.com' },
          // Scheduler names the schedule's group as aws:SourceArn when it assumes the role,
          // never the schedule (EventBridge Scheduler user guide, "Confused deputy prevention").
          Condition: {
            StringEquals: {
              'aws:SourceAccount': { Ref: 'AWS::AccountId' },
              'aws:SourceArn': { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':scheduler:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':schedule-group/openclaw-backup']] },
            },
          },
        },
      ],
    });
    const statements = roleStatements(t, role);
    expect(statements.find((statement) => statement.Sid === 'InvokeScheduleTargets')).toMatchObject({
      Action: 'lambda:InvokeFunction',
      Resource: expect.arrayContaining([
        { 'Fn::GetAtt': [fn(t, 'backup'), 'Arn'] },
        { 'Fn::GetAtt': [fn(t, 'fanout'), 'Arn'] },
        { 'Fn::GetAtt': [fn(t, 'prune'), 'Arn'] },
      ]),
    });
    expect(statements.find((statement) => statement.Sid === 'InvokeScheduleTargets')!.Resource).toHaveLength(3);
    const dlq = queue(t, 'openclaw-backup-schedule-dlq');
    expect(statements.filter((statement) => statement.Sid !== 'InvokeScheduleTargets')).toEqual([
      expect.objectContaining({ Action: ['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage'], Resource: { 'Fn::GetAtt': [dlq, 'Arn'] } }),
    ]);
  });
  it('lets Scheduler assume every role it runs a schedule with: each trust names a schedule group, never a schedule', () => {
    const t = template();
    const trusts = Object.values(resources(t, 'AWS::IAM::Role'))
      .flatMap((role) => (role.Properties.AssumeRolePolicyDocument as { Statement: { Principal: { Service?: string }; Condition?: Record<string, Record<string, unknown>> }[] }).Statement)
      .filter((statement) => statement.Principal.Service === 'scheduler.amazonaws.com');
    // The CLI's schedules' role, and the hourly freshness check's (a schedule in the default group).
    expect(trusts).toHaveLength(2);
    const sourceArns = trusts.map((statement) => JSON.stringify(Object.values(statement.Condition ?? {}).find((keys) => 'aws:SourceArn' in keys)?.['aws:SourceArn']));
    expect(sourceArns).toEqual(expect.arrayContaining([expect.stringMatching(/:schedule-group\/openclaw-backup"/), expect.stringMatching(/:schedule-group\/default"/)]));
    for (const arn of sourceArns) expect(arn).not.toMatch(/:schedule\//);
  });
});

describe('the work queue', () => {
  it('drains into the backup function one tenant per invocation, at most 100 at once on Elastic, reporting failures per message, with a DLQ after three attempts', () => {
    const t = template();
    const work = queue(t, 'openclaw-backup-work');
    const dlq = queue(t, 'openclaw-backup-work-dlq');
    expect(resources(t, 'AWS::SQS::Queue')[work]!.Properties).toMatchObject({
      VisibilityTimeout: 1800,
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlq, 'Arn'] }, maxReceiveCount: 3 },
      SqsManagedSseEnabled: true,
    });
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: fn(t, 'backup') },
      EventSourceArn: { 'Fn::GetAtt': [work, 'Arn'] },
      BatchSize: 1,
      ScalingConfig: { MaximumConcurrency: 100 },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    t.hasOutput('BackupConcurrency', { Value: '100' });
  });

  it('hands each next piece of a restore in pieces to the restore function through a queue of its own, sent only by that function, with a DLQ after five attempts (a chain\'s rewrite cap ends it first)', () => {
    const t = template();
    const restoreQueue = queue(t, 'openclaw-backup-restore-work');
    const dlq = queue(t, 'openclaw-backup-restore-work-dlq');
    const visibility = resources(t, 'AWS::SQS::Queue')[restoreQueue]!.Properties;
    const timeout = resources(t, 'AWS::Lambda::Function')[fn(t, 'restore')]!.Properties.Timeout as number;
    expect(visibility).toMatchObject({ RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlq, 'Arn'] }, maxReceiveCount: RESTORE_PIECE_RECEIVES }, SqsManagedSseEnabled: true });
    expect(visibility.VisibilityTimeout as number).toBeGreaterThanOrEqual(timeout + WORK_REDELIVERY_MARGIN_MS / 1000);
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: fn(t, 'restore') },
      EventSourceArn: { 'Fn::GetAtt': [restoreQueue, 'Arn'] },
      BatchSize: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    const senders = Object.values(resources(t, 'AWS::IAM::Policy')).filter((policy) =>
      (policy.Properties.PolicyDocument as { Statement: { Action: string | string[]; Resource: unknown }[] }).Statement.some(
        (statement) => [statement.Action].flat().includes('sqs:SendMessage') && JSON.stringify(statement.Resource).includes(restoreQueue),
      ),
    );
    // The restore function's role only: the backup function neither sends nor reads restores.
    const restoreRole = fnRole(t, 'restore');
    expect(senders.map((policy) => policy.Properties.Roles)).toEqual([[{ Ref: restoreRole }]]);
    expect(resources(t, 'AWS::Lambda::Function')[fn(t, 'restore')]!.Properties.Environment).toMatchObject({ Variables: { OPENCLAW_RESTORE_QUEUE_URL: { Ref: restoreQueue } } });
  });

  // A delivery that finds its tenant locked for the same archive is deleted as a duplicate: a
  // message back while the lock of its first delivery, killed at the timeout on another host,
  // still looked live (a minute: LOCK_STALE_MS) was deleted so and never retried.
  it('hides a message for the backup function\'s timeout and the lock\'s stale age at least, and refuses a fan-out that would not', () => {
    expect(WORK_REDELIVERY_MARGIN_MS).toBeGreaterThanOrEqual(LOCK_STALE_MS);
    const { stack } = fixtureApp();
    const t = Template.fromStack(stack);
    const visibility = resources(t, 'AWS::SQS::Queue')[queue(t, 'openclaw-backup-work')]!.Properties.VisibilityTimeout as number;
    const timeout = resources(t, 'AWS::Lambda::Function')[fn(t, 'backup')]!.Properties.Timeout as number;
    expect(visibility).toBeGreaterThanOrEqual(timeout + WORK_REDELIVERY_MARGIN_MS / 1000);
    const fanOut = (visibilityTimeout: Duration) =>
      new BackupFanOut(stack, `FanOut${visibilityTimeout.toSeconds()}`, { prefix: 'other', functions: stack.backupFunctions, throughput: { mode: 'elastic' }, visibilityTimeout, asyncDeadLetterQueue: stack.backupSchedules.deadLetterQueue });
    expect(() => fanOut(Duration.seconds(timeout + 30))).toThrow(
      new RegExp(`visibilityTimeout \\(${timeout + 30} s\\) must be at least the backup function's timeout \\(${timeout} s\\) plus 60 s \\(${timeout + 60} s\\)`),
    );
    expect(() => fanOut(Duration.seconds(timeout + 60))).not.toThrow();
  });

  it('lets the backup function queue the next piece of a backup that outlasts its invocation, on the work queue only', () => {
    const t = template();
    const work = queue(t, 'openclaw-backup-work');
    t.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'openclaw-backup-backup',
      Environment: { Variables: Match.objectLike({ OPENCLAW_WORK_QUEUE_URL: { Ref: work } }) },
    });
    const role = (resources(t, 'AWS::Lambda::Function')[fn(t, 'backup')]!.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    const sends = Object.values(resources(t, 'AWS::IAM::Policy'))
      .filter((policy) => JSON.stringify(policy.Properties.Roles).includes(role))
      .flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: { Action: unknown; Resource: unknown }[] }).Statement)
      .filter((statement) => JSON.stringify(statement.Action).includes('sqs:SendMessage'));
    // Besides the schedules' dead-letter queue (its asynchronous invocations' failures).
    expect(sends.flatMap((statement) => statement.Resource)).toContainEqual({ 'Fn::GetAtt': [work, 'Arn'] });
  });

  it('sizes the concurrency from an imported file system\'s throughput mode, or takes it as given', () => {
    const concurrency = (context: Record<string, unknown>) =>
      (Object.values(resources(template({ ...IMPORT, ...context }), 'AWS::Lambda::EventSourceMapping'))[0]!.Properties.ScalingConfig as { MaximumConcurrency: number }).MaximumConcurrency;
    // Unknown: Bursting of unknown size, the 100 MiB/s any file system may burst to.
    expect(concurrency({})).toBe(2);
    expect(concurrency({ 'openclaw:efsThroughputMode': 'elastic' })).toBe(100);
    expect(concurrency({ 'openclaw:efsThroughputMode': 'provisioned', 'openclaw:efsProvisionedMiBps': '1024' })).toBe(15);
    expect(concurrency({ 'openclaw:efsThroughputMode': 'bursting', 'openclaw:efsStoredGiB': 10240 })).toBe(7);
    expect(concurrency({ 'openclaw:backupConcurrency': 250 })).toBe(250);
    // A reserved concurrency keeps one execution free for direct and scheduled backups.
    expect(concurrency({ 'openclaw:efsThroughputMode': 'elastic', 'openclaw:reservedConcurrency': 40 })).toBe(39);
    expect(() => template({ ...IMPORT, 'openclaw:backupConcurrency': 50, 'openclaw:reservedConcurrency': 40 })).toThrow(/must stay below the backup function's reservedConcurrency/);
    // The mapping runs at least 2 at once: a reserved concurrency of 2 or less would throttle it
    // (each throttled message comes back after the visibility timeout and counts as an attempt)
    // and leave nothing for direct and scheduled backups.
    for (const reserved of [1, 2]) {
      expect(() => template({ ...IMPORT, 'openclaw:reservedConcurrency': reserved })).toThrow(/reservedConcurrency \(\d\) must be at least 3/);
    }
    expect(concurrency({ 'openclaw:reservedConcurrency': 3 })).toBe(2);
    expect(() => template({ 'openclaw:efsThroughputMode': 'bursting' })).toThrow(/a created one is always Elastic/);
    expect(() => template({ ...IMPORT, 'openclaw:efsThroughputMode': 'provisioned' })).toThrow(/needs openclaw:efsProvisionedMiBps/);
    expect(() => template({ ...IMPORT, 'openclaw:backupConcurrency': 1 })).toThrow(/maxConcurrency must be an integer from 2 to 1000/);
  });

  it('states the sizing rule: half the read throughput, a 100 MiB/s backup, at most 100', () => {
    expect(backupReadBudgetMiBps({ mode: 'elastic' })).toBe(10240);
    expect(backupReadBudgetMiBps({ mode: 'provisioned', provisionedMiBps: 200 })).toBe(300);
    expect(backupReadBudgetMiBps({ mode: 'bursting', storedGiB: 1024 })).toBe(75);
    expect(defaultBackupConcurrency({ mode: 'provisioned', provisionedMiBps: 3414 })).toBe(51);
    expect(defaultBackupConcurrency({ mode: 'provisioned', provisionedMiBps: 100_000 })).toBe(100);
    expect(defaultBackupConcurrency({ mode: 'bursting', storedGiB: 1 })).toBe(2);
  });
});

describe('the coordinating functions', () => {
  it('gives the fan-out its queue and the list function, and nothing of the tenants\' data', () => {
    const t = template();
    const fanout = fn(t, 'fanout');
    const work = queue(t, 'openclaw-backup-work');
    t.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'openclaw-backup-fanout',
      Timeout: 300,
      Environment: { Variables: Match.objectLike({ OPENCLAW_WORK_QUEUE_URL: { Ref: work }, OPENCLAW_LIST_FUNCTION: { Ref: fn(t, 'list') }, OPENCLAW_BACKUP_BUCKET: Match.anyValue(), OPENCLAW_BACKUP_PREFIX: 'backups/' }) },
    });
    const actions = roleStatements(t, roleOf(t, fanout)).flatMap((statement) => [statement.Action].flat());
    expect(actions.sort()).toEqual(['lambda:InvokeFunction', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage']);
    t.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { FunctionName: { Ref: fanout }, MaximumRetryAttempts: 2 });
  });

  it('hands the monitor every backup\'s completion event and an hourly freshness check', () => {
    const t = template();
    const monitor = fn(t, 'monitor');
    const table = idOf(t, 'AWS::DynamoDB::Table', { TableName: 'openclaw-backup-status' });
    t.hasResourceProperties('AWS::DynamoDB::Table', {
      TableName: 'openclaw-backup-status',
      KeySchema: [{ AttributeName: 'kind', KeyType: 'HASH' }, { AttributeName: 'name', KeyType: 'RANGE' }],
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    });
    t.hasResourceProperties('AWS::Events::Rule', {
      EventBusName: { Ref: idOf(t, 'AWS::Events::EventBus', { Name: 'openclaw-backup-events' }) },
      // Only this account's events: a bus shared with other accounts let them mark a tenant fresh.
      EventPattern: { source: ['openclaw.backup'], account: [{ Ref: 'AWS::AccountId' }], 'detail-type': ['OpenClaw Backup Succeeded', 'OpenClaw Backup Failed'] },
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [monitor, 'Arn'] }, RetryPolicy: { MaximumRetryAttempts: 20, MaximumEventAgeInSeconds: 21600 } })],
    });
    t.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(1 hour)',
      Target: Match.objectLike({ Arn: { 'Fn::GetAtt': [monitor, 'Arn'] }, Input: JSON.stringify({ source: 'openclaw.monitor', check: 'freshness' }) }),
    });
    t.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'openclaw-backup-monitor',
      Environment: { Variables: Match.objectLike({ OPENCLAW_STATUS_TABLE: { Ref: table }, OPENCLAW_STALE_AFTER_HOURS: '26', POWERTOOLS_SERVICE_NAME: 'openclaw-backup' }) },
    });
    const actions = roleStatements(t, roleOf(t, monitor)).flatMap((statement) => [statement.Action].flat());
    // (and the asynchronous DLQ's send, below)
    expect(actions.sort()).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem', 'lambda:InvokeFunction', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage']);
  });

  it('keeps an outcome or a check the monitor failed on after Lambda\'s retries: in the alarmed asynchronous DLQ', () => {
    // EventBridge and Scheduler invoke the monitor asynchronously: their retry policies and
    // DLQs cover delivery only; an error in the function is Lambda's to retry, then to drop.
    const t = template();
    const monitor = fn(t, 'monitor');
    const dlqArn = (resources(t, 'AWS::Lambda::EventInvokeConfig')[idOf(t, 'AWS::Lambda::EventInvokeConfig', { FunctionName: { Ref: fn(t, 'backup') } })]!.Properties
      .DestinationConfig as { OnFailure: { Destination: unknown } }).OnFailure.Destination;
    t.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: monitor },
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: dlqArn } },
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'openclaw-backup-async-dlq',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [(dlqArn as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0], 'QueueName'] } }],
    });
    expect(roleStatements(t, roleOf(t, monitor)).some((statement) => [statement.Action].flat().includes('sqs:SendMessage'))).toBe(true);
  });

  it('draws a dashboard of the nights', () => {
    const t = template();
    const dashboard = Object.values(resources(t, 'AWS::CloudWatch::Dashboard'))[0]!;
    expect(dashboard.Properties.DashboardName).toBe('openclaw-backup');
    const body = JSON.stringify(dashboard.Properties.DashboardBody);
    for (const title of ['Backups per night', 'Failures', 'Bytes backed up per night', 'Backup duration', 'Stale tenants', 'Work queue', 'Alarms']) expect(body).toContain(`\\"title\\":\\"${title}\\"`);
    for (const statistic of ['p50', 'p90', 'p99']) expect(body).toContain(`\\"stat\\":\\"${statistic}\\"`);
  });
});

describe('alarms that reach someone', () => {
  it('lets CloudWatch publish to the topic, for this account\'s alarms named with the prefix only (the topic policy)', () => {
    const t = template();
    const topic = idOf(t, 'AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    const policy = Object.values(resources(t, 'AWS::SNS::TopicPolicy')).find((candidate) => JSON.stringify(candidate.Properties.Topics).includes(topic))!;
    const statements = (policy.Properties.PolicyDocument as { Statement: Record<string, unknown>[] }).Statement;
    expect(statements).toContainEqual({
      Sid: 'CloudWatchAlarmsPublish',
      Effect: 'Allow',
      Principal: { Service: 'cloudwatch.amazonaws.com' },
      Action: 'sns:Publish',
      Resource: { Ref: topic },
      Condition: {
        ArnLike: { 'aws:SourceArn': { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':cloudwatch:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':alarm:openclaw-backup-*']] } },
        StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
      },
    });
    // EventBridge keeps its own statement (the failure rule), and TLS stays required.
    expect(statements.some((statement) => JSON.stringify(statement.Principal) === JSON.stringify({ Service: 'events.amazonaws.com' }))).toBe(true);
    expect(statements.some((statement) => statement.Effect === 'Deny')).toBe(true);
  });

  it('names every alarm with the prefix and points it at the topic', () => {
    const t = template();
    const topic = idOf(t, 'AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    const alarms = Object.values(resources(t, 'AWS::CloudWatch::Alarm'));
    expect(alarms.map((alarm) => alarm.Properties.AlarmName).sort()).toEqual(
      [
        'async-dlq',
        'backup-errors',
        'backup-failures',
        'backup-near-timeout',
        'coordinator-errors',
        'fanout-failures',
        'freshness-check-missing',
        'list-errors',
        'prune-errors',
        'prune-failures',
        'restore-dlq',
        'restore-errors',
        'restore-failures',
        'restore-near-timeout',
        'schedule-dlq',
        'stale-tenants',
        'throttles',
        'work-backlog',
        'work-dlq',
      ].map((name) => `openclaw-backup-${name}`),
    );
    for (const alarm of alarms) expect(alarm.Properties.AlarmActions).toEqual([{ Ref: topic }]);
  });

  /** The stack's alarm of that name, as CloudFormation has it. */
  const alarmNamed = (t: Template, name: string) => Object.values(resources(t, 'AWS::CloudWatch::Alarm')).find((alarm) => alarm.Properties.AlarmName === `openclaw-backup-${name}`)!.Properties;

  /** Whether the EMF documents put the alarm in ALARM: same namespace, metric and dimensions, a value over the threshold. */
  function firesOn(alarm: Record<string, unknown>, documents: Record<string, unknown>[]): boolean {
    const dimensions = alarm.Dimensions as { Name: string; Value: string }[];
    return documents.some((document) => {
      const [directive] = (document._aws as { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] }).CloudWatchMetrics;
      if (directive!.Namespace !== alarm.Namespace) return false;
      if (!directive!.Metrics.some((metric) => metric.Name === alarm.MetricName)) return false;
      // A metric is identified by its full set of dimensions: the alarm's must be exactly the document's.
      const set = directive!.Dimensions[0]!;
      if (set.length !== dimensions.length || !dimensions.every((dimension) => set.includes(dimension.Name) && document[dimension.Name] === dimension.Value)) return false;
      const value = document[alarm.MetricName as string] as number;
      return alarm.ComparisonOperator === 'GreaterThanOrEqualToThreshold' && value >= (alarm.Threshold as number);
    });
  }

  const context = lambdaContext({ awsRequestId: 'r', functionName: 'f', memoryLimitInMB: '256', remaining: 600_000 });
  function captureEmf(): Record<string, unknown>[] {
    const documents: Record<string, unknown>[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      for (const line of String(chunk).split('\n')) if (line.includes('"_aws"')) documents.push(JSON.parse(line) as Record<string, unknown>);
      return true;
    });
    return documents;
  }
  const logger = new Logger({ serviceName: 'openclaw-backup', logLevel: 'SILENT' });

  it('a failed queued backup puts backup-failures in ALARM; a vanished tenant does not', async () => {
    const t = template();
    const alarm = alarmNamed(t, 'backup-failures');
    const documents = captureEmf();
    const handle = workQueueHandler({
      config: { tenantsDir: '/mnt/tenants', backupBucket: 'my-bucket', allowedSourceBuckets: [], abortMarginMs: 1000 },
      logger,
      publish: async () => {},
      metrics: powertoolsMetrics(createMetrics('openclaw-backup')),
      operations: {
        planBackup: async () => Promise.reject(new Error('unused')),
        backup: async (command) => {
          throw command.tenant === 'ghost' ? new TenantNotFoundError('no tenant "ghost"') : new StorageError('S3 did not answer', 'UNREACHABLE');
        },
      },
    });
    const message = (tenant: string) => ({ messageId: tenant, eventSource: 'aws:sqs', body: encodeWorkMessage({ version: 1, kind: 'backup', tenant, to: `s3://my-bucket/${tenant}.tar.zst`, run: { id: 'x', time: '2026-06-03T03:00:00Z', template: 's3://my-bucket/{tenant}.tar.zst' } }) });
    await handle({ Records: [message('ghost')] }, context);
    expect(firesOn(alarm, documents)).toBe(false);
    await handle({ Records: [message('acme')] }, context);
    expect(firesOn(alarm, documents)).toBe(true);
  });

  it('a scheduled prune answered as failed, which never reaches Lambda\'s Errors, puts prune-failures in ALARM; one that pruned does not', async () => {
    const t = template();
    const alarm = alarmNamed(t, 'prune-failures');
    expect(alarm).toMatchObject({ Statistic: 'Sum', Period: 300, Threshold: 1, EvaluationPeriods: 1 });
    const documents = captureEmf();
    const pruned = { operation: 'prune', tenant: 'acme', location: 's3://my-bucket/acme/', dryRun: false, policy: { last: 1 }, keep: [], remove: [], removed: 0, skipped: [], bytesRemoved: 0, deletion: { checked: 'etag-head' }, notes: [] };
    const handle = pruneHandler({
      config: { tenantsDir: '/mnt/tenants', backupBucket: 'my-bucket', allowedSourceBuckets: [], abortMarginMs: 1000 },
      logger,
      publish: async () => {},
      metrics: powertoolsMetrics(createMetrics('openclaw-backup')),
      operations: { prune: async () => pruned as unknown as PruneResult },
    });
    const scheduled = (tenant: string) => ({ source: 'openclaw.cron', tenant, cronName: 'nightly-prune', time: '2026-06-10T04:30:00Z', eventId: 'e-1', command: { tenant: 'acme', in: 's3://my-bucket/acme/', keep: { last: 1 } } });
    expect(await handle(scheduled('acme'), context)).toMatchObject({ removed: 0 });
    expect(firesOn(alarm, documents)).toBe(false);
    // An event that does not read as the cron's prune: answered, so that Lambda does not retry it into the same refusal.
    expect(await handle(scheduled('beta'), context)).toMatchObject({ ok: false, error: { code: 'INVALID_REQUEST' } });
    expect(firesOn(alarm, documents)).toBe(true);
  });

  /**
   * A metric math alarm's value in one period, as CloudWatch computes it from the datapoints
   * its metrics have there (by id; absent: the metric has none, as a Lambda function not
   * invoked in the period has no Errors or Throttles): `FILL(m, v)` is v where m has none, and
   * `a + b` has no value where either has none. Undefined: missing data.
   */
  function mathValue(alarm: Record<string, unknown>, datapoints: Record<string, number>): number | undefined {
    const queries = alarm.Metrics as { Id: string; Expression?: string; ReturnData?: boolean }[];
    const expression = queries.find((query) => query.Expression !== undefined && query.ReturnData !== false)!.Expression!;
    let sum: number | undefined = 0;
    for (const term of expression.split(' + ')) {
      const filled = /^FILL\((\w+), (\d+)\)$/.exec(term);
      const id = filled?.[1] ?? /^(\w+)$/.exec(term)?.[1];
      expect(id, `a term of ${expression}`).toBeDefined();
      expect(queries.some((query) => query.Id === id && query.Expression === undefined), `metric ${id} of ${expression}`).toBe(true);
      const value = datapoints[id!] ?? (filled === null ? undefined : Number(filled[2]));
      sum = sum === undefined || value === undefined ? undefined : sum + value;
    }
    return sum;
  }
  /** Whether the alarm goes to ALARM in that period: a value at its threshold (missing data does not breach). */
  const mathFires = (alarm: Record<string, unknown>, datapoints: Record<string, number>) => {
    expect(alarm).toMatchObject({ ComparisonOperator: 'GreaterThanOrEqualToThreshold', TreatMissingData: 'notBreaching', EvaluationPeriods: 1 });
    const value = mathValue(alarm, datapoints);
    return value !== undefined && value >= (alarm.Threshold as number);
  };

  it('the fan-out failing in a period the monitor did not run puts coordinator-errors in ALARM, and a throttle of one function alone puts throttles in ALARM', () => {
    const t = template();
    const coordinators = alarmNamed(t, 'coordinator-errors');
    // A scheduled fan-out at 02:00 and the hourly monitor rarely share a 5-minute period.
    expect(mathFires(coordinators, { fanout: 1 })).toBe(true);
    expect(mathFires(coordinators, { monitor: 2 })).toBe(true);
    expect(mathFires(coordinators, { fanout: 0, monitor: 0 })).toBe(false);
    expect(mathFires(coordinators, {})).toBe(false);
    const throttles = alarmNamed(t, 'throttles');
    const terms = (throttles.Metrics as { Id: string; Expression?: string }[]).filter((query) => query.Expression === undefined);
    expect(terms).toHaveLength(6);
    for (const { Id } of terms) expect(mathFires(throttles, { [Id]: 1 }), `only ${Id} throttled`).toBe(true);
    expect(mathFires(throttles, Object.fromEntries(terms.map(({ Id }) => [Id, 0])))).toBe(false);
  });

  it('the list function failing alone, in a period nothing else ran, puts list-errors in ALARM: crashed, or a failure it answered; a caller\'s bad request does not', async () => {
    const t = template();
    const list = idOf(t, 'AWS::Lambda::Function', { FunctionName: 'openclaw-backup-list' });
    const alarm = alarmNamed(t, 'list-errors');
    expect(alarm).toMatchObject({ Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold', TreatMissingData: 'notBreaching', EvaluationPeriods: 1 });
    type Stat = { Id: string; MetricStat?: { Metric: { Namespace: string; MetricName: string; Dimensions: { Name: string; Value: unknown }[] }; Period: number; Stat: string } };
    const terms = alarm.Metrics as Stat[];
    expect(terms.find((term) => term.Id === 'errors')!.MetricStat).toEqual({ Metric: { Namespace: 'AWS/Lambda', MetricName: 'Errors', Dimensions: [{ Name: 'FunctionName', Value: { Ref: list } }] }, Period: 300, Stat: 'Sum' });
    expect(mathFires(alarm, { errors: 1 })).toBe(true);
    expect(mathFires(alarm, { failed: 1 })).toBe(true);
    expect(mathFires(alarm, {})).toBe(false);
    // The failures it answers ({ ok: false }: Lambda's Errors never sees them) reach its `failed` term through the EMF documents.
    const failed = terms.find((term) => term.Id === 'failed')!.MetricStat!;
    const failedTerm = { ...failed.Metric, Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' };
    const documents = captureEmf();
    const handle = listHandler({
      config: { tenantsDir: '/mnt/tenants', backupBucket: 'my-bucket', allowedSourceBuckets: [], abortMarginMs: 1000 },
      logger,
      metrics: powertoolsMetrics(createMetrics('openclaw-backup')),
      operations: {
        listNames: async () => Promise.reject(Object.assign(new Error('EIO: i/o error, scandir \'/mnt/tenants\''), { code: 'EIO' })),
        listSummaries: async () => ({ tenants: [], recovered: [] }),
        listSkipped: async () => [],
      },
    });
    expect(await handle({ names: 'yes' }, context)).toMatchObject({ ok: false, error: { outcome: 'usage' } });
    expect(firesOn(failedTerm, documents)).toBe(false);
    expect(await handle({ names: true }, context)).toMatchObject({ ok: false, error: { outcome: 'failed' } });
    expect(firesOn(failedTerm, documents)).toBe(true);
  });

  it('a tenant without a success for 26 hours puts stale-tenants in ALARM (mocked clock and clients)', async () => {
    const t = template();
    const alarm = alarmNamed(t, 'stale-tenants');
    expect(alarm).toMatchObject({ Statistic: 'Maximum', Period: 3600, Threshold: 1, EvaluationPeriods: 1 });
    const table = fakeStatusTable();
    try {
      let now = Date.parse('2026-06-10T04:00:00Z');
      const documents = captureEmf();
      const handle = monitorHandler({
        logger,
        db: new DynamoDBClient({ region: 'eu-west-1' }),
        table: 'openclaw-backup-status',
        listNames: async () => ['acme'],
        now: () => new Date(now),
        metrics: powertoolsMetrics(createMetrics('openclaw-backup')),
      });
      const success = { source: 'openclaw.backup', 'detail-type': 'OpenClaw Backup Succeeded', time: '2026-06-10T03:10:00Z', detail: { tenant: 'acme', location: 's3://b/k', trigger: 'queue' } };
      await handle(success, context);
      await handle({ source: 'openclaw.monitor', check: 'freshness' }, context);
      expect(firesOn(alarm, documents)).toBe(false);
      // The next night's backup never came: 26 hours and a minute later.
      now = Date.parse('2026-06-11T05:11:00Z');
      await handle({ source: 'openclaw.monitor', check: 'freshness' }, context);
      expect(firesOn(alarm, documents)).toBe(true);
      // And the check-missing alarm watches the metric the check emits every time.
      expect(alarmNamed(t, 'freshness-check-missing')).toMatchObject({ MetricName: 'TenantsChecked', Statistic: 'SampleCount', ComparisonOperator: 'LessThanThreshold', TreatMissingData: 'breaching' });
      expect(documents.every((document) => document.TenantsChecked === 1)).toBe(true);
    } finally {
      table.restore();
    }
  });
});
