// Scheduled backups of the previous version and what happens when an asynchronous invocation
// fails. The previous CLI created one EventBridge rule per schedule (rule names `<prefix>-…`
// on the default bus); this construct still gives such rules, and only those, the right to
// invoke the backup function, until `openclaw cron migrate` has moved them to EventBridge
// Scheduler (backup-scheduler.ts). Asynchronous invocations that still fail after their retries
// land in an encrypted dead-letter queue, and alarms watch the function errors and the queue.

import { ArnFormat, Duration, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { SECURE_QUEUE_PROPS } from './secure-defaults.js';
import { ProblemList } from './validation.js';
import { STACK_PREFIX_PATTERN } from '../shared/control-plane/deployment.js';

export interface BackupSchedulesProps {
  /** Deployment prefix: rules named `<prefix>-…` may invoke the backup function. */
  readonly prefix: string;
  readonly backupFunction: lambda.IFunction;
  /** Gets the same dead-letter queue (no retries: a restore is never repeated blindly). */
  readonly restoreFunction: lambda.IFunction;
  /**
   * Scheduled prunes: invoked by the same rules, retried and dead-lettered as backups are.
   * @default - none
   */
  readonly pruneFunction?: lambda.IFunction;
  /**
   * Topic the alarms notify.
   * @default - alarms without actions
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * Retries of a failed asynchronous (scheduled) backup before it goes to the queue.
   * @default 2
   */
  readonly backupRetryAttempts?: number;
  /**
   * Oldest an asynchronous invocation may get, counting its retries, before it goes to the queue.
   * @default Duration.hours(6)
   */
  readonly maxEventAge?: Duration;
}

export class BackupSchedules extends Construct {
  /** Names of the rules allowed to invoke the backup function start with this. */
  readonly rulePrefix: string;
  /** ARN pattern of those rules. */
  readonly ruleArnPattern: string;
  readonly deadLetterQueue: sqs.Queue;
  readonly alarms: readonly cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: BackupSchedulesProps) {
    super(scope, id);
    validate(props);

    this.rulePrefix = `${props.prefix}-`;
    // Schedule rules exist only on the default bus, whose rule ARNs have no bus segment.
    this.ruleArnPattern = Stack.of(this).formatArn({
      service: 'events',
      resource: 'rule',
      resourceName: `${this.rulePrefix}*`,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
    for (const fn of [props.backupFunction, ...(props.pruneFunction === undefined ? [] : [props.pruneFunction])]) {
      fn.addPermission('InvokeFromScheduleRules', {
        principal: new iam.ServicePrincipal('events.amazonaws.com'),
        action: 'lambda:InvokeFunction',
        sourceArn: this.ruleArnPattern,
        sourceAccount: Stack.of(this).account,
      });
    }

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', SECURE_QUEUE_PROPS);
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself the dead-letter queue (Lambda on-failure destination) of the backup and restore functions.',
    });
    const maxEventAge = props.maxEventAge ?? Duration.hours(6);
    props.backupFunction.configureAsyncInvoke({
      onFailure: new SqsDestination(this.deadLetterQueue),
      retryAttempts: props.backupRetryAttempts ?? 2,
      maxEventAge,
    });
    props.restoreFunction.configureAsyncInvoke({
      onFailure: new SqsDestination(this.deadLetterQueue),
      retryAttempts: 0,
      maxEventAge,
    });
    // A retried prune decides again from what is there: removing is idempotent.
    props.pruneFunction?.configureAsyncInvoke({
      onFailure: new SqsDestination(this.deadLetterQueue),
      retryAttempts: props.backupRetryAttempts ?? 2,
      maxEventAge,
    });

    const period = Duration.minutes(5);
    // Named `<prefix>-…`: the notification topic lets CloudWatch publish for those alarms only.
    const errorAlarm = (fn: lambda.IFunction, alarmId: string, what: string) =>
      fn.metricErrors({ period, statistic: cloudwatch.Stats.SUM }).createAlarm(this, alarmId, {
        alarmName: `${props.prefix}-${what}-errors`,
        alarmDescription: `A ${what} failed (function errors)`,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    const dlqAlarm = this.deadLetterQueue
      .metricApproximateNumberOfMessagesVisible({ period, statistic: cloudwatch.Stats.MAXIMUM })
      .createAlarm(this, 'DeadLetterQueueAlarm', {
        alarmName: `${props.prefix}-async-dlq`,
        alarmDescription: 'Asynchronous backups or restores gave up and are waiting in the dead-letter queue',
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    this.alarms = [
      errorAlarm(props.backupFunction, 'BackupErrorsAlarm', 'backup'),
      errorAlarm(props.restoreFunction, 'RestoreErrorsAlarm', 'restore'),
      ...(props.pruneFunction === undefined ? [] : [errorAlarm(props.pruneFunction, 'PruneErrorsAlarm', 'prune')]),
      dlqAlarm,
    ];
    if (props.alarmTopic) {
      for (const alarm of this.alarms) alarm.addAlarmAction(new actions.SnsAction(props.alarmTopic));
    }
  }
}

function validate(props: BackupSchedulesProps): void {
  const problems = new ProblemList('BackupSchedules');
  problems.check(STACK_PREFIX_PATTERN.test(props.prefix), `prefix ${JSON.stringify(props.prefix)} must match ${STACK_PREFIX_PATTERN.source}`);
  problems.integerInRange(props.backupRetryAttempts, 'backupRetryAttempts', 0, 2);
  if (props.maxEventAge !== undefined) {
    const seconds = props.maxEventAge.toSeconds();
    problems.check(seconds >= 60 && seconds <= 21600, `maxEventAge must be from 1 minute to 6 hours, got ${seconds} s`);
  }
  problems.throwIfAny();
}
