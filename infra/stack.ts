// The one stack: composes the constructs and publishes what the remote CLI reads from its
// outputs. No resource is defined here directly.

import { Aws, CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { BackupBucket, type BackupBucketProps, type BackupReplication } from './backup-bucket.js';
import { defaultBackupConcurrency, EFS_THROUGHPUT_MODES, MIN_CONCURRENCY, type EfsThroughput } from './backup-concurrency.js';
import { BackupFanOut } from './backup-fanout.js';
import { BackupObservability } from './backup-observability.js';
import { BackupScheduler } from './backup-scheduler.js';
import { BackupEvents, type BackupEventsProps } from './backup-events.js';
import { BackupFunctions, type BackupFunctionsProps } from './backup-functions.js';
import { BackupSchedules, type BackupSchedulesProps } from './backup-schedules.js';
import { OperatorPolicy } from './operator-policy.js';
import { roleName } from './role-names.js';
import { TenantFileSystem, type TenantFileSystemProps } from './tenant-file-system.js';
import { ProblemList } from './validation.js';
import { DEFAULT_STACK_PREFIX, STACK_PREFIX_PATTERN } from '../shared/control-plane/deployment.js';

/** The default deployment prefix (and stack name). */
export const DEFAULT_PREFIX = DEFAULT_STACK_PREFIX;

/** Names of the stack outputs; each is exported as `<prefix>-<name>`. */
export const OUTPUT_NAMES = [
  'BackupFunctionName',
  'BackupFunctionArn',
  'RestoreFunctionName',
  'ListFunctionName',
  'PruneFunctionName',
  'BucketName',
  'BackupKeyPrefix',
  'EventBusName',
  'RulePrefix',
  'FileSystemId',
  'AccessPointId',
  'DeadLetterQueueUrl',
  'OperatorPolicyArn',
  'RestoreRoleArn',
  'Region',
  'FanOutFunctionName',
  'ScheduleGroupName',
  'SchedulerRoleArn',
  'ScheduleDeadLetterQueueUrl',
  'WorkQueueUrl',
  'WorkDeadLetterQueueUrl',
  'BackupConcurrency',
  'StatusTableName',
  'DashboardName',
] as const;
export type OutputName = (typeof OUTPUT_NAMES)[number];

export interface OpenClawBackupStackProps extends StackProps {
  /**
   * Names the functions, the event bus and the exports, and starts the names of the
   * schedule rules the CLI creates.
   * @default 'openclaw-backup'
   */
  readonly prefix?: string;
  /**
   * The tenant file system: import the gateway's, or create one.
   * @default - create a VPC and an encrypted file system
   */
  readonly fileSystem?: TenantFileSystemProps;
  /**
   * The backup bucket: create one, or use an existing one.
   * @default - create a bucket with the secure defaults
   */
  readonly bucket?: Omit<BackupBucketProps, 'replication'> & {
    /** Replication to another account's bucket; the stack names the role. */
    readonly replication?: Omit<BackupReplication, 'roleName'>;
  };
  /**
   * Buckets (names or ARNs) the restore function may also read, for a cross-account restore.
   * See infra/README-cross-account.md for the bucket policy the other account adds.
   * @default []
   */
  readonly extraSourceBuckets?: readonly string[];
  /**
   * KMS keys (ARNs) encrypting the objects of the extra source buckets.
   * @default []
   */
  readonly extraSourceKmsKeyArns?: readonly string[];
  /**
   * Function settings.
   * @default - see BackupFunctionsProps
   */
  readonly functions?: Omit<
    BackupFunctionsProps,
    'prefix' | 'tenantFileSystem' | 'backupBucket' | 'eventBus' | 'extraSourceBuckets' | 'extraSourceKmsKeyArns'
  >;
  /**
   * Completion events and notifications.
   * @default - a custom bus and an encrypted notification topic
   */
  readonly events?: Omit<BackupEventsProps, 'prefix'>;
  /**
   * Retries of asynchronous invocations.
   * @default - see BackupSchedulesProps
   */
  readonly schedules?: Pick<BackupSchedulesProps, 'backupRetryAttempts' | 'maxEventAge'>;
  /**
   * The throughput mode of an imported tenant file system: sizes how many backups the work
   * queue runs at once (backup-concurrency.ts). A created file system is Elastic.
   * @default - Elastic for a created file system; Bursting of unknown size for an imported one
   */
  readonly throughput?: EfsThroughput;
  /**
   * Backups at once through the work queue (all-tenant runs).
   * @default - from the throughput mode
   */
  readonly backupConcurrency?: number;
  /**
   * Hours without a successful backup before a tenant is stale (the freshness alarm).
   * @default 26
   */
  readonly staleAfterHours?: number;
}

export class OpenClawBackupStack extends Stack {
  readonly prefix: string;
  readonly tenantFileSystem: TenantFileSystem;
  readonly backupBucket: BackupBucket;
  readonly backupEvents: BackupEvents;
  readonly backupFunctions: BackupFunctions;
  readonly backupSchedules: BackupSchedules;
  readonly backupFanOut: BackupFanOut;
  readonly backupScheduler: BackupScheduler;
  readonly observability: BackupObservability;
  readonly operatorPolicy: OperatorPolicy;

  constructor(scope: Construct, id: string, props: OpenClawBackupStackProps = {}) {
    super(scope, id, {
      description: 'OpenClawMU tenant backups: Lambda functions on the tenant EFS, S3 archives, EventBridge Scheduler schedules, a work queue, alarms',
      ...props,
    });
    const prefix = props.prefix ?? DEFAULT_PREFIX;
    const problems = new ProblemList('OpenClawBackupStack');
    problems.check(
      STACK_PREFIX_PATTERN.test(prefix),
      `prefix ${JSON.stringify(prefix)} must match ${STACK_PREFIX_PATTERN.source} (lowercase letters, digits and "-", 2 to 24 characters)`,
    );
    if (props.throughput !== undefined) {
      problems.check(props.fileSystem?.existing !== undefined, 'throughput describes an imported file system: a created one is always Elastic');
      problems.check(EFS_THROUGHPUT_MODES.includes(props.throughput.mode), `throughput.mode must be one of ${EFS_THROUGHPUT_MODES.join(', ')}`);
    }
    const reserved = props.functions?.reservedConcurrency;
    if (reserved !== undefined) {
      // A mapping whose MaximumConcurrency exceeds the function's reserved concurrency is
      // throttled, and one that equals it throttles direct and scheduled backups; the
      // mapping's least is MIN_CONCURRENCY.
      problems.check(
        reserved > MIN_CONCURRENCY,
        `reservedConcurrency (${reserved}) must be at least ${MIN_CONCURRENCY + 1}: the work queue runs at least ${MIN_CONCURRENCY} backups at once and one execution stays free for direct and scheduled backups`,
      );
    }
    if (reserved !== undefined && props.backupConcurrency !== undefined) {
      problems.check(
        props.backupConcurrency < reserved,
        `backupConcurrency (${props.backupConcurrency}) must stay below the backup function's reservedConcurrency (${reserved}): it also serves direct and scheduled backups`,
      );
    }
    problems.throwIfAny();
    this.prefix = prefix;

    this.tenantFileSystem = new TenantFileSystem(this, 'TenantFileSystem', props.fileSystem);
    const { replication, ...bucketProps } = props.bucket ?? {};
    this.backupBucket = new BackupBucket(this, 'BackupBucket', {
      ...bucketProps,
      ...(replication !== undefined && { replication: { ...replication, roleName: roleName(prefix, 'replication') } }),
    });
    this.backupEvents = new BackupEvents(this, 'Events', { ...props.events, prefix });
    this.backupFunctions = new BackupFunctions(this, 'Functions', {
      ...props.functions,
      prefix,
      tenantFileSystem: this.tenantFileSystem,
      backupBucket: this.backupBucket,
      eventBus: this.backupEvents.eventBus,
      extraSourceBuckets: props.extraSourceBuckets,
      extraSourceKmsKeyArns: props.extraSourceKmsKeyArns,
    });
    // A created VPC's S3 gateway endpoint reaches the functions' buckets and no other, and
    // lets a delete through for the prune role only.
    this.tenantFileSystem.restrictS3Endpoint([this.backupBucket.bucket.bucketArn, ...this.backupFunctions.extraSourceBucketArns], {
      roleArn: this.backupFunctions.roles.prune.roleArn,
      objectsArn: this.backupBucket.objectsArn(),
    });
    this.backupSchedules = new BackupSchedules(this, 'Schedules', {
      ...props.schedules,
      prefix,
      backupFunction: this.backupFunctions.backupFunction,
      restoreFunction: this.backupFunctions.restoreFunction,
      pruneFunction: this.backupFunctions.pruneFunction,
      alarmTopic: this.backupEvents.notificationTopic,
    });
    const throughput: EfsThroughput = this.tenantFileSystem.created ? { mode: 'elastic' } : (props.throughput ?? { mode: 'bursting' });
    // With a reserved concurrency, the queue keeps one execution free for direct and scheduled backups.
    const concurrency = props.backupConcurrency ?? (reserved === undefined ? undefined : Math.min(defaultBackupConcurrency(throughput), Math.max(2, reserved - 1)));
    this.backupFanOut = new BackupFanOut(this, 'FanOut', {
      prefix,
      functions: this.backupFunctions,
      throughput,
      ...(concurrency !== undefined && { maxConcurrency: concurrency }),
      asyncDeadLetterQueue: this.backupSchedules.deadLetterQueue,
    });
    this.backupScheduler = new BackupScheduler(this, 'Scheduler', {
      prefix,
      targets: [this.backupFunctions.backupFunction, this.backupFanOut.fanOutFunction, this.backupFunctions.pruneFunction],
    });
    this.observability = new BackupObservability(this, 'Observability', {
      prefix,
      functions: this.backupFunctions,
      fanOutFunction: this.backupFanOut.fanOutFunction,
      eventBus: this.backupEvents.eventBus,
      workQueue: this.backupFanOut.queue,
      workDeadLetterQueue: this.backupFanOut.deadLetterQueue,
      scheduleDeadLetterQueue: this.backupScheduler.deadLetterQueue,
      asyncDeadLetterQueue: this.backupSchedules.deadLetterQueue,
      ...(this.backupEvents.notificationTopic !== undefined && { alarmTopic: this.backupEvents.notificationTopic }),
      ...(props.staleAfterHours !== undefined && { staleAfterHours: props.staleAfterHours }),
      otherAlarms: this.backupSchedules.alarms,
    });
    this.operatorPolicy = new OperatorPolicy(this, 'Operator', {
      functions: [...this.backupFunctions.functions, this.backupFanOut.fanOutFunction],
      inspectedFunctions: [this.observability.monitorFunction],
      ruleArnPattern: this.backupSchedules.ruleArnPattern,
      rulePrefix: this.backupSchedules.rulePrefix,
      scheduleArnPattern: this.backupScheduler.scheduleArnPattern,
      schedulerRole: this.backupScheduler.role,
      statusTable: this.observability.statusTable,
      queues: [this.backupFanOut.queue, this.backupFanOut.deadLetterQueue, this.backupScheduler.deadLetterQueue, this.backupSchedules.deadLetterQueue, this.backupFunctions.restoreDeadLetterQueue],
      fileSystem: this.tenantFileSystem.fileSystem,
      accessPoint: this.tenantFileSystem.accessPoint,
    });

    const fns = this.backupFunctions;
    const values: Record<OutputName, [string, string]> = {
      BackupFunctionName: [fns.backupFunction.functionName, 'Function the CLI invokes to back up a tenant'],
      BackupFunctionArn: [fns.backupFunction.functionArn, 'Target of the tenants\' schedules'],
      RestoreFunctionName: [fns.restoreFunction.functionName, 'Function the CLI invokes to restore a tenant'],
      ListFunctionName: [fns.listFunction.functionName, 'Function the CLI invokes to list tenants'],
      PruneFunctionName: [fns.pruneFunction.functionName, 'Function the CLI (and prune schedules) invoke to remove old archives'],
      BucketName: [this.backupBucket.bucket.bucketName, 'Bucket the backups are written to'],
      BackupKeyPrefix: [this.backupBucket.keyPrefix, 'Key prefix the functions may write backups under and read them from'],
      EventBusName: [this.backupEvents.eventBus.eventBusName, 'Bus the completion events are published to'],
      RulePrefix: [this.backupSchedules.rulePrefix, 'Schedule rules of the previous version are named with this prefix (default bus; see cron migrate)'],
      FileSystemId: [this.tenantFileSystem.fileSystem.fileSystemId, 'EFS file system holding the tenants'],
      AccessPointId: [this.tenantFileSystem.accessPoint.accessPointId, 'Access point the functions mount at /mnt/tenants'],
      DeadLetterQueueUrl: [this.backupSchedules.deadLetterQueue.queueUrl, 'Failed asynchronous backups and restores'],
      OperatorPolicyArn: [this.operatorPolicy.policy.managedPolicyArn, 'Managed policy for the users of the remote CLI'],
      RestoreRoleArn: [fns.roles.restore.roleArn, 'Role another account allows to read its bucket for a cross-account restore (a fixed name)'],
      Region: [Aws.REGION, 'Region of the stack'],
      FanOutFunctionName: [this.backupFanOut.fanOutFunction.functionName, 'Function that queues one backup per tenant'],
      ScheduleGroupName: [this.backupScheduler.groupName, 'EventBridge Scheduler group of the crons'],
      SchedulerRoleArn: [this.backupScheduler.role.roleArn, 'Role the schedules invoke their targets with'],
      ScheduleDeadLetterQueueUrl: [this.backupScheduler.deadLetterQueue.queueUrl, 'Invocations EventBridge Scheduler could not deliver'],
      WorkQueueUrl: [this.backupFanOut.queue.queueUrl, 'One message per tenant to back up'],
      WorkDeadLetterQueueUrl: [this.backupFanOut.deadLetterQueue.queueUrl, 'Queued backups that failed their last attempt'],
      BackupConcurrency: [String(this.backupFanOut.maxConcurrency), 'Backups the work queue runs at once'],
      StatusTableName: [this.observability.statusTable.tableName, 'Each tenant\'s last outcome, the cron catalog, the freshness check'],
      DashboardName: [this.observability.dashboard.dashboardName, 'CloudWatch dashboard of the backups'],
    };
    for (const name of OUTPUT_NAMES) {
      const [value, description] = values[name];
      new CfnOutput(this, name, { value, description, exportName: `${prefix}-${name}` });
    }
  }
}
