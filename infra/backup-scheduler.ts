// What the schedules `openclaw cron add` creates at run time need from the stack: the
// EventBridge Scheduler group they live in (`<prefix>`), the role Scheduler assumes to invoke
// their target (`<prefix>-scheduler-<region>`: only Scheduler, only for this account's
// schedules in this group, may assume it; it may invoke the backup, fan-out and prune functions and
// write to the schedule DLQ, nothing else), and that dead-letter queue
// (`<prefix>-schedule-dlq`), where an invocation Scheduler could not deliver within its retry
// policy lands. Names are fixed so the CLI can derive them (control-plane/deployment.ts).

import { ArnFormat, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { roleName } from './role-names.js';
import { SECURE_QUEUE_PROPS } from './secure-defaults.js';
import { ProblemList } from './validation.js';
import { STACK_PREFIX_PATTERN, scheduleDeadLetterQueueName, scheduleGroupName } from '../shared/control-plane/deployment.js';

export interface BackupSchedulerProps {
  /** Deployment prefix: names the group, the role and the queue. */
  readonly prefix: string;
  /** Targets of the schedules: the backup function (one tenant) and the fan-out (every tenant). */
  readonly targets: readonly lambda.IFunction[];
}

export class BackupScheduler extends Construct {
  readonly group: scheduler.CfnScheduleGroup;
  readonly groupName: string;
  /** ARN pattern of the group's schedules. */
  readonly scheduleArnPattern: string;
  readonly role: iam.Role;
  readonly deadLetterQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: BackupSchedulerProps) {
    super(scope, id);
    const problems = new ProblemList('BackupScheduler');
    problems.check(STACK_PREFIX_PATTERN.test(props.prefix), `prefix ${JSON.stringify(props.prefix)} must match ${STACK_PREFIX_PATTERN.source}`);
    problems.check(props.targets.length > 0, 'targets must name at least one function');
    problems.throwIfAny();

    const stack = Stack.of(this);
    this.groupName = scheduleGroupName(props.prefix);
    // Deleting the stack deletes the group and every schedule in it, with the status table
    // that describes them: nothing keeps running once the functions are gone.
    this.group = new scheduler.CfnScheduleGroup(this, 'Group', { name: this.groupName });
    this.group.applyRemovalPolicy(RemovalPolicy.DESTROY);
    this.scheduleArnPattern = stack.formatArn({
      service: 'scheduler',
      resource: 'schedule',
      resourceName: `${this.groupName}/*`,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', { ...SECURE_QUEUE_PROPS, queueName: scheduleDeadLetterQueueName(props.prefix) });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself a dead-letter queue: of the schedules whose invocation EventBridge Scheduler could not deliver.',
    });

    this.role = new iam.Role(this, 'Role', {
      roleName: roleName(props.prefix, 'scheduler'),
      description: `${props.prefix}: EventBridge Scheduler invokes the backup and fan-out functions for the schedules of group ${this.groupName}`,
      // The confused-deputy guard: Scheduler acting for this account's schedules in this group
      // only. Scheduler gives the schedule's group as aws:SourceArn, never the schedule: a
      // condition on schedule ARNs would keep every schedule out (EventBridge Scheduler user
      // guide, "Confused deputy prevention").
      assumedBy: schedulerPrincipal(stack, this.groupName),
    });
    this.role.addToPolicy(
      new iam.PolicyStatement({ sid: 'InvokeScheduleTargets', actions: ['lambda:InvokeFunction'], resources: props.targets.map((fn) => fn.functionArn) }),
    );
    this.deadLetterQueue.grantSendMessages(this.role);
  }
}

/** EventBridge Scheduler, acting for the schedules of `groupName` in the stack's account only. */
export function schedulerPrincipal(stack: Stack, groupName: string): iam.ServicePrincipal {
  return new iam.ServicePrincipal('scheduler.amazonaws.com', {
    conditions: {
      StringEquals: {
        'aws:SourceAccount': stack.account,
        'aws:SourceArn': stack.formatArn({ service: 'scheduler', resource: 'schedule-group', resourceName: groupName, arnFormat: ArnFormat.SLASH_RESOURCE_NAME }),
      },
    },
  });
}
