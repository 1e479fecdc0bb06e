// Every tenant, a bounded number at a time: the work queue (`<prefix>-work`) the fan-out
// function (`<prefix>-fanout`) fills with one message per tenant, and the backup function's
// SQS event source mapping that drains it, at most `maxConcurrency` backups at once (sized
// from the tenant file system's throughput mode by default: backup-concurrency.ts), one
// message per invocation (each backup gets the function's whole timeout), with partial
// batch responses. A message whose backup failed comes back after the queue's visibility
// timeout (the back-off: 30 minutes by default, twice the function's timeout, so a retry
// never overlaps the attempt before it and a failing tenant reaches the DLQ within about
// 1.5 hours rather than the 4.5 that AWS's generic "six times the timeout" would give; the
// handler's "archive exists" skip makes a redelivery after a success harmless), and goes to
// `<prefix>-work-dlq` after `maxReceiveCount` attempts. It must stay hidden at least the
// function's timeout plus a minute (WORK_REDELIVERY_MARGIN_MS, checked below): a delivery
// that finds the tenant locked for the same archive is deleted as a duplicate, and the lock
// of a first delivery killed at the timeout on another host looks live for a minute more.

import { ArnFormat, type CfnElement, Duration, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { defaultBackupConcurrency, MAX_CONCURRENCY, MIN_CONCURRENCY, type EfsThroughput } from './backup-concurrency.js';
import type { BackupFunctions } from './backup-functions.js';
import { coordinatorFunction } from './coordinator-function.js';
import { allowSendersOnly, SECURE_QUEUE_PROPS } from './secure-defaults.js';
import { ProblemList } from './validation.js';
import { FUNCTION_ENV, functionName, STACK_PREFIX_PATTERN, WORK_REDELIVERY_MARGIN_MS, workDeadLetterQueueName, workQueueName } from '../shared/control-plane/deployment.js';

/** Attempts of one tenant's queued backup before it goes to the work DLQ. */
export const DEFAULT_MAX_RECEIVE_COUNT = 3;
/** The back-off between two attempts: twice the backup function's 15-minute timeout. */
export const DEFAULT_WORK_VISIBILITY_TIMEOUT = Duration.minutes(30);
export const FANOUT_TIMEOUT = Duration.minutes(5);
export const FANOUT_MEMORY_MIB = 512;

/** The environment the fan-out takes from the backup function: what it may write, for its early check. */
const POLICY_ENV = [FUNCTION_ENV.bucket, FUNCTION_ENV.keyPrefix, FUNCTION_ENV.allowedEndpoints, FUNCTION_ENV.allowOverwrite, FUNCTION_ENV.encryptTo, FUNCTION_ENV.stackPrefix, FUNCTION_ENV.serviceName, FUNCTION_ENV.connectTimeout, FUNCTION_ENV.requestTimeout];

export interface BackupFanOutProps {
  readonly prefix: string;
  readonly functions: BackupFunctions;
  /** The tenant file system's throughput: sizes the default concurrency. */
  readonly throughput: EfsThroughput;
  /**
   * Backups at once through the queue (the event source mapping's MaximumConcurrency).
   * @default - from `throughput` (backup-concurrency.ts)
   */
  readonly maxConcurrency?: number;
  /** @default 3 */
  readonly maxReceiveCount?: number;
  /** @default 30 minutes */
  readonly visibilityTimeout?: Duration;
  /** Where a scheduled fan-out that failed after its retries goes. */
  readonly asyncDeadLetterQueue: sqs.IQueue;
}

export class BackupFanOut extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly fanOutFunction: nodejs.NodejsFunction;
  readonly maxConcurrency: number;

  constructor(scope: Construct, id: string, props: BackupFanOutProps) {
    super(scope, id);
    const timeout = props.functions.backupFunction.timeout ?? Duration.minutes(15);
    const visibilityTimeout = props.visibilityTimeout ?? DEFAULT_WORK_VISIBILITY_TIMEOUT;
    const problems = new ProblemList('BackupFanOut');
    problems.check(STACK_PREFIX_PATTERN.test(props.prefix), `prefix ${JSON.stringify(props.prefix)} must match ${STACK_PREFIX_PATTERN.source}`);
    problems.integerInRange(props.maxConcurrency, 'maxConcurrency', MIN_CONCURRENCY, MAX_CONCURRENCY);
    problems.integerInRange(props.maxReceiveCount, 'maxReceiveCount', 1, 100);
    // A delivery that finds the tenant locked for the same archive is taken for a duplicate and
    // deleted (queue-handler.ts). A message back after its visibility timeout must not find so
    // the lock of its own first delivery killed at the function's timeout: on another host that
    // lock counts as live for a minute more, and the message deleted then would never be
    // retried (only the timeout's Errors alarm would tell): WORK_REDELIVERY_MARGIN_MS.
    const leastVisibility = timeout.toSeconds() + WORK_REDELIVERY_MARGIN_MS / 1000;
    problems.check(
      visibilityTimeout.toSeconds() >= leastVisibility,
      `visibilityTimeout (${visibilityTimeout.toSeconds()} s) must be at least the backup function's timeout (${timeout.toSeconds()} s) plus ${WORK_REDELIVERY_MARGIN_MS / 1000} s (${leastVisibility} s), ` +
        `or a message reappears while its backup runs, or while its killed backup's lock still looks live and the message is deleted as a duplicate`,
    );
    if (props.throughput.mode === 'provisioned') {
      problems.check(props.throughput.provisionedMiBps !== undefined && props.throughput.provisionedMiBps > 0, 'a provisioned file system needs its throughput (efsProvisionedMiBps)');
    }
    problems.throwIfAny();

    this.maxConcurrency = props.maxConcurrency ?? defaultBackupConcurrency(props.throughput);

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', { ...SECURE_QUEUE_PROPS, queueName: workDeadLetterQueueName(props.prefix) });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself a dead-letter queue: of the work queue, for backups that failed their last attempt.',
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      ...SECURE_QUEUE_PROPS,
      queueName: workQueueName(props.prefix),
      visibilityTimeout,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount ?? DEFAULT_MAX_RECEIVE_COUNT },
    });

    props.functions.backupFunction.addEventSource(
      new SqsEventSource(this.queue, { batchSize: 1, maxConcurrency: this.maxConcurrency, reportBatchItemFailures: true }),
    );
    // A backup that outlasts an invocation queues its next piece here (functions/backup-handler.ts).
    this.queue.grantSendMessages(props.functions.backupFunction);
    props.functions.backupFunction.addEnvironment(FUNCTION_ENV.workQueueUrl, this.queue.queueUrl);

    const environment = Object.fromEntries(POLICY_ENV.flatMap((key) => (props.functions.environment[key] === undefined ? [] : [[key, props.functions.environment[key]!]])));
    this.fanOutFunction = coordinatorFunction(this, 'Function', {
      prefix: props.prefix,
      name: 'fanout',
      description: 'Queues one backup per tenant (all-tenants schedules, tenants backup --all)',
      functions: props.functions,
      environment: {
        ...environment,
        [FUNCTION_ENV.workQueueUrl]: this.queue.queueUrl,
        [FUNCTION_ENV.listFunction]: props.functions.listFunction.functionName,
      },
      timeout: FANOUT_TIMEOUT,
      memorySizeMiB: FANOUT_MEMORY_MIB,
    });
    this.queue.grantSendMessages(this.fanOutFunction);
    // Only the fan-out and the backup function (its next pieces) queue backups (and the redrivers).
    allowSendersOnly(this.queue, [props.functions.backupFunction.role!, this.fanOutFunction.role!], props.functions.queueRedrivers);
    props.functions.listFunction.grantInvoke(this.fanOutFunction);
    // A scheduled fan-out out of time hands the rest of its run on to itself (fanout-handler.ts):
    // named, since its own ARN in its role's policy would make the function depend on itself.
    this.fanOutFunction.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['lambda:InvokeFunction'],
        resources: [Stack.of(this).formatArn({ service: 'lambda', resource: 'function', resourceName: functionName(props.prefix, 'fanout'), arnFormat: ArnFormat.COLON_RESOURCE_NAME })],
      }),
    );
    this.fanOutFunction.configureAsyncInvoke({ onFailure: new SqsDestination(props.asyncDeadLetterQueue), retryAttempts: 2, maxEventAge: Duration.hours(2) });
    acknowledgeInvokeWildcard(this.fanOutFunction.role, props.functions.listFunction);
  }
}

/** `grantInvoke` also allows the function's versions and aliases (`<arn>:*`): nag sees a wildcard there. */
export function acknowledgeInvokeWildcard(role: iam.IRole | undefined, invoked: lambda.Function): void {
  const policy = role?.node.tryFindChild('DefaultPolicy');
  if (policy === undefined) return;
  const logicalId = Stack.of(invoked).getLogicalId(invoked.node.defaultChild as CfnElement);
  Validations.of(policy).acknowledge({
    id: `AwsSolutions-IAM5[Resource::<${logicalId}.Arn>:*]`,
    reason: `lambda:InvokeFunction on ${invoked.node.id} and its versions (what grantInvoke allows): that function only.`,
  });
}
