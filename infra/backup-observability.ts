// What tells an operator, each morning or at once, how the backups went: the status table
// (`<prefix>-status`, each tenant's last outcome, the cron catalog, the last freshness
// check), the monitor function (`<prefix>-monitor`) that fills it from the completion events
// and checks freshness every hour, the alarms, all named `<prefix>-…` and all notifying the
// stack's topic, and a CloudWatch dashboard (`<prefix>`).
//
// Alarms (each one notification per change of state, never one per tenant):
//   backup-, restore-, prune-,           the functions' own `Failed` metric: every failure,
//   fanout-failures                      direct invocations, answered scheduled prunes and
//                                        refused scheduled fan-outs included (they answer
//                                        {ok:false} and never reach Lambda's Errors)
//   throttles                            Lambda throttled any function of the stack
//   backup-, restore-near-timeout        a run took 90 % of the 15-minute limit
//   work-dlq, schedule-dlq               a backup gave up after its retries; a schedule
//                                        could not invoke its target
//   work-backlog                         the oldest queued backup waited 8 hours: the night's
//                                        run does not fit (raise concurrency, see scale.md)
//   stale-tenants                        a tenant had no successful backup for 26 hours
//   freshness-check-missing              the freshness check has not reported for 3 hours
//   coordinator-errors                   the fan-out or the monitor crashed
//   list-errors                          the list function failed: crashed (Errors) or answered
//                                        a failure, not a caller's bad request (its `Failed`);
//                                        the CLI, the fan-out and the monitor invoke it
// (BackupSchedules keeps its alarms on the backup and restore functions' Errors and on the
// asynchronous invocations' dead-letter queue.)

import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledgeInvokeWildcard } from './backup-fanout.js';
import { schedulerPrincipal } from './backup-scheduler.js';
import type { BackupFunctions } from './backup-functions.js';
import { coordinatorFunction } from './coordinator-function.js';
import { ProblemList } from './validation.js';
import {
  EVENT_DETAIL_TYPES,
  EVENT_SOURCE,
  FRESHNESS_CHECK_EVENT,
  FUNCTION_ENV,
  METRIC_NAMES,
  METRIC_NAMESPACE,
  STACK_PREFIX_PATTERN,
  statusTableName,
  type MetricOperation,
} from '../shared/control-plane/deployment.js';

/** Hours without a successful backup before a tenant is stale: a night plus two hours. */
export const DEFAULT_STALE_AFTER_HOURS = 26;
/** The oldest a queued backup may wait before the backlog alarm: the night's run did not fit. */
export const WORK_BACKLOG_ALARM_AGE = Duration.hours(8);
/** The share of the timeout a run may reach before the near-timeout alarm. */
export const NEAR_TIMEOUT_SHARE = 0.9;

/**
 * The metric math sum of metrics that may each lack a datapoint in a period (a Lambda
 * function publishes Errors and Throttles only for periods it was invoked in): CloudWatch's
 * `a + b` has no datapoint where either has none, so a plain sum stays empty, and its alarm
 * silent, unless every term was invoked in that same period. Each term counts 0 there instead.
 */
export function sumOfSparse(ids: readonly string[]): string {
  return ids.map((id) => `FILL(${id}, 0)`).join(' + ');
}

export interface BackupObservabilityProps {
  readonly prefix: string;
  readonly functions: BackupFunctions;
  readonly fanOutFunction: nodejs.NodejsFunction;
  readonly eventBus: events.IEventBus;
  readonly workQueue: sqs.IQueue;
  readonly workDeadLetterQueue: sqs.IQueue;
  readonly scheduleDeadLetterQueue: sqs.IQueue;
  /** Where the monitor's failed event deliveries, failed outcomes and failed checks go. */
  readonly asyncDeadLetterQueue: sqs.IQueue;
  /** @default - alarms without actions */
  readonly alarmTopic?: sns.ITopic;
  /** @default 26 */
  readonly staleAfterHours?: number;
  /** Further alarms (made elsewhere) the dashboard shows. */
  readonly otherAlarms?: readonly cloudwatch.IAlarm[];
}

export class BackupObservability extends Construct {
  readonly statusTable: dynamodb.Table;
  readonly monitorFunction: nodejs.NodejsFunction;
  readonly alarms: readonly cloudwatch.Alarm[];
  readonly dashboard: cloudwatch.Dashboard;
  /** Named alarms, by their suffix (`stale-tenants`, …). */
  readonly alarmsByName: Readonly<Record<string, cloudwatch.Alarm>>;

  constructor(scope: Construct, id: string, props: BackupObservabilityProps) {
    super(scope, id);
    const problems = new ProblemList('BackupObservability');
    problems.check(STACK_PREFIX_PATTERN.test(props.prefix), `prefix ${JSON.stringify(props.prefix)} must match ${STACK_PREFIX_PATTERN.source}`);
    problems.integerInRange(props.staleAfterHours, 'staleAfterHours', 2, 24 * 14);
    problems.throwIfAny();
    const { prefix, functions } = props;
    const staleAfterHours = props.staleAfterHours ?? DEFAULT_STALE_AFTER_HOURS;

    // Deleted with the stack, as the schedule group the cron catalog describes is.
    this.statusTable = new dynamodb.Table(this, 'StatusTable', {
      tableName: statusTableName(prefix),
      partitionKey: { name: 'kind', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'name', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.monitorFunction = coordinatorFunction(this, 'MonitorFunction', {
      prefix,
      name: 'monitor',
      description: 'Records each backup\'s outcome and checks every tenant\'s freshness',
      functions,
      environment: {
        [FUNCTION_ENV.statusTable]: this.statusTable.tableName,
        [FUNCTION_ENV.listFunction]: functions.listFunction.functionName,
        [FUNCTION_ENV.staleAfterHours]: String(staleAfterHours),
        [FUNCTION_ENV.serviceName]: prefix,
      },
      timeout: Duration.minutes(5),
      memorySizeMiB: 256,
    });
    this.statusTable.grant(this.monitorFunction, 'dynamodb:UpdateItem', 'dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:Query');
    // The rule and the schedule below invoke it asynchronously: their retries and DLQs cover
    // delivery only. An outcome or a check the function itself failed on is retried by Lambda,
    // then kept in the asynchronous DLQ (alarmed) instead of dropped.
    this.monitorFunction.configureAsyncInvoke({ onFailure: new SqsDestination(props.asyncDeadLetterQueue), retryAttempts: 2, maxEventAge: Duration.hours(6) });
    functions.listFunction.grantInvoke(this.monitorFunction);
    acknowledgeInvokeWildcard(this.monitorFunction.role, functions.listFunction);

    new events.Rule(this, 'OutcomeRule', {
      description: 'Hands every backup\'s completion event to the monitor, which records it in the status table',
      eventBus: props.eventBus,
      // Only this account's: a "Backup Succeeded" from an account a bus policy lets in (the default bus shared with an organization) would mark a tenant fresh.
      eventPattern: { source: [EVENT_SOURCE], account: [Stack.of(this).account], detailType: [EVENT_DETAIL_TYPES.backup.ok, EVENT_DETAIL_TYPES.backup.failed] },
      targets: [new targets.LambdaFunction(this.monitorFunction, { deadLetterQueue: props.asyncDeadLetterQueue, retryAttempts: 20, maxEventAge: Duration.hours(6) })],
    });
    const stack = Stack.of(this);
    const checkRole = new iam.Role(this, 'FreshnessCheckRole', {
      description: `${prefix}: EventBridge Scheduler starts the hourly freshness check`,
      // The check is a schedule of the default group.
      assumedBy: schedulerPrincipal(stack, 'default'),
    });
    new scheduler.Schedule(this, 'FreshnessCheck', {
      description: `${prefix}: checks hourly that every tenant had a successful backup in the last ${staleAfterHours} hours`,
      schedule: scheduler.ScheduleExpression.rate(Duration.hours(1)),
      target: new schedulerTargets.LambdaInvoke(this.monitorFunction, {
        role: checkRole,
        input: scheduler.ScheduleTargetInput.fromObject(FRESHNESS_CHECK_EVENT),
        retryAttempts: 3,
        maxEventAge: Duration.hours(1),
        deadLetterQueue: props.asyncDeadLetterQueue,
      }),
    });

    acknowledgeInvokeWildcard(checkRole, this.monitorFunction);

    // ---- Alarms
    const custom = (name: keyof typeof METRIC_NAMES, operation: MetricOperation, statistic: string, period: Duration) =>
      new cloudwatch.Metric({ namespace: METRIC_NAMESPACE, metricName: METRIC_NAMES[name], dimensionsMap: { service: prefix, operation }, statistic, period });
    const fiveMinutes = Duration.minutes(5);
    const hour = Duration.hours(1);
    const named: Record<string, cloudwatch.Alarm> = {};
    const alarm = (suffix: string, metric: cloudwatch.IMetric, description: string, options: Partial<cloudwatch.CreateAlarmOptions> = {}) => {
      named[suffix] = new cloudwatch.Alarm(this, `Alarm-${suffix}`, {
        alarmName: `${prefix}-${suffix}`,
        alarmDescription: description,
        metric,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        ...options,
      });
    };
    alarm('backup-failures', custom('failed', 'backup', 'Sum', fiveMinutes), 'A backup failed: scheduled, queued or invoked directly (see the completion event, `openclaw doctor`, and the backup function\'s logs)');
    alarm('restore-failures', custom('failed', 'restore', 'Sum', fiveMinutes), 'A restore failed (see the completion event and the restore function\'s logs)');
    alarm('prune-failures', custom('failed', 'prune', 'Sum', fiveMinutes), 'A prune failed: scheduled or invoked directly, including a scheduled one answered rather than retried (see the prune function\'s logs)');
    alarm('fanout-failures', custom('failed', 'fanout', 'Sum', fiveMinutes), 'A fan-out failed or could not queue every tenant (see the fan-out function\'s logs: they name the tenants)');
    const coordinators: lambda.IFunction[] = [props.fanOutFunction, this.monitorFunction];
    const allFunctions: lambda.IFunction[] = [...functions.functions, ...coordinators];
    alarm(
      'throttles',
      new cloudwatch.MathExpression({
        expression: sumOfSparse(allFunctions.map((_, index) => `t${index}`)),
        usingMetrics: Object.fromEntries(allFunctions.map((fn, index) => [`t${index}`, fn.metricThrottles({ period: fiveMinutes, statistic: 'Sum' })])),
        period: fiveMinutes,
        label: 'Throttles',
      }),
      'Lambda throttled a function of the stack (account concurrency, or a reserved concurrency below the work queue\'s)',
    );
    // A backup continues in another invocation 3 minutes before the limit: one that gets this
    // close was finishing one very large file, or ran in one piece (a request with its own endpoint).
    const risk = { 'backup-near-timeout': 'a larger file, or a larger backup that cannot continue (a request with its own endpoint), will time out', 'restore-near-timeout': 'larger tenants will time out' };
    for (const [suffix, fn] of [['backup-near-timeout', functions.backupFunction], ['restore-near-timeout', functions.restoreFunction]] as const) {
      const limitMs = (fn.timeout ?? Duration.minutes(15)).toMilliseconds();
      alarm(suffix, fn.metricDuration({ period: fiveMinutes, statistic: 'Maximum' }), `A run of ${fn.node.id} took ${NEAR_TIMEOUT_SHARE * 100} % of its ${limitMs / 60_000}-minute limit: ${risk[suffix]}`, {
        threshold: Math.round(NEAR_TIMEOUT_SHARE * limitMs),
      });
    }
    alarm('work-dlq', props.workDeadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: fiveMinutes, statistic: 'Maximum' }), 'Queued backups gave up after their last attempt: they wait in the work DLQ (`openclaw doctor` says how to redrive)');
    alarm('restore-dlq', functions.restoreDeadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: fiveMinutes, statistic: 'Maximum' }), 'Pieces of restores in pieces gave up after their last attempt: they wait in the restore DLQ; the tenant stays busy until `tenants recover` ends its chain (docs/scale.md)');
    alarm('schedule-dlq', props.scheduleDeadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: fiveMinutes, statistic: 'Maximum' }), 'EventBridge Scheduler could not invoke a schedule\'s target: the invocation waits in the schedule DLQ');
    alarm('work-backlog', props.workQueue.metricApproximateAgeOfOldestMessage({ period: fiveMinutes, statistic: 'Maximum' }), `A queued backup has waited ${WORK_BACKLOG_ALARM_AGE.toHours()} hours: the night's run does not fit its concurrency (docs/scale.md)`, {
      threshold: WORK_BACKLOG_ALARM_AGE.toSeconds(),
    });
    alarm('stale-tenants', custom('staleTenants', 'freshness', 'Maximum', hour), `A tenant has had no successful backup for ${staleAfterHours} hours (the monitor's log names them; so does \`openclaw doctor\`)`);
    alarm('freshness-check-missing', custom('tenantsChecked', 'freshness', 'SampleCount', Duration.hours(3)), 'The hourly freshness check has not reported for 3 hours: stale tenants would go unnoticed', {
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    alarm(
      'coordinator-errors',
      new cloudwatch.MathExpression({
        expression: sumOfSparse(['fanout', 'monitor']),
        usingMetrics: { fanout: props.fanOutFunction.metricErrors({ period: fiveMinutes, statistic: 'Sum' }), monitor: this.monitorFunction.metricErrors({ period: fiveMinutes, statistic: 'Sum' }) },
        period: fiveMinutes,
        label: 'Errors',
      }),
      'The fan-out or the monitor function failed (a scheduled fan-out is retried; see their logs)',
    );
    alarm(
      'list-errors',
      new cloudwatch.MathExpression({
        // Crashes and timeouts (Errors), and the failures it answers as { ok: false } (its Failed).
        expression: sumOfSparse(['errors', 'failed']),
        usingMetrics: { errors: functions.listFunction.metricErrors({ period: fiveMinutes, statistic: 'Sum' }), failed: custom('failed', 'list', 'Sum', fiveMinutes) },
        period: fiveMinutes,
        label: 'Errors and failures',
      }),
      'The list function failed: `openclaw tenants list`, the fan-out or the freshness check could not read the tenants (see the list function\'s logs)',
    );
    this.alarmsByName = named;
    this.alarms = Object.values(named);
    if (props.alarmTopic !== undefined) for (const each of this.alarms) each.addAlarmAction(new actions.SnsAction(props.alarmTopic));

    // ---- Dashboard: what an operator asks each morning.
    const day = Duration.days(1);
    const backup = (name: keyof typeof METRIC_NAMES, statistic: string, period: Duration, label: string) =>
      custom(name, 'backup', statistic, period).with({ label });
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { dashboardName: prefix, defaultInterval: Duration.days(14) });
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Backups per night',
        width: 12,
        view: cloudwatch.GraphWidgetView.BAR,
        left: [backup('succeeded', 'Sum', day, 'succeeded'), backup('failed', 'Sum', day, 'failed attempts'), backup('skipped', 'Sum', day, 'skipped')],
      }),
      new cloudwatch.GraphWidget({
        title: 'Failures',
        width: 12,
        left: [custom('failed', 'backup', 'Sum', hour).with({ label: 'backup' }), custom('failed', 'restore', 'Sum', hour).with({ label: 'restore' }), custom('failed', 'prune', 'Sum', hour).with({ label: 'prune' }), custom('queueFailures', 'fanout', 'Sum', hour).with({ label: 'not queued' })],
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Bytes backed up per night',
        width: 12,
        left: [backup('bytes', 'Sum', day, 'tenant content'), backup('archiveBytes', 'Sum', day, 'archives stored')],
      }),
      new cloudwatch.GraphWidget({
        title: 'Backup duration',
        width: 12,
        left: ['p50', 'p90', 'p99', 'Maximum'].map((statistic) => backup('durationMs', statistic, hour, statistic)),
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Stale tenants',
        width: 12,
        left: [custom('staleTenants', 'freshness', 'Maximum', hour).with({ label: `no success in ${staleAfterHours} h` })],
        right: [custom('tenantsChecked', 'freshness', 'Maximum', hour).with({ label: 'tenants' })],
      }),
      new cloudwatch.GraphWidget({
        title: 'Work queue',
        width: 12,
        left: [
          props.workQueue.metricApproximateNumberOfMessagesVisible({ period: fiveMinutes, statistic: 'Maximum', label: 'waiting' }),
          props.workQueue.metricApproximateNumberOfMessagesNotVisible({ period: fiveMinutes, statistic: 'Maximum', label: 'running or backing off' }),
          props.workDeadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: fiveMinutes, statistic: 'Maximum', label: 'in the DLQ' }),
        ],
        right: [functions.backupFunction.metric('ConcurrentExecutions', { period: fiveMinutes, statistic: 'Maximum', label: 'backups running' })],
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', width: 24, alarms: [...this.alarms, ...(props.otherAlarms ?? [])] }),
    );
  }
}
