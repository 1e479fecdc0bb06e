// A managed policy for the people (or CI roles) who drive the remote CLI (cli/*.ts): invoke
// and inspect the functions (the fan-out for `tenants backup --all`; the monitor is only
// inspected), manage the schedules in
// the stack's Scheduler group and its cron catalog (passing the stack's scheduler role, to
// Scheduler only), list, migrate and remove the previous version's rules named `<prefix>-…`
// (never create one), describe the tenant file system and the functions' network, read the
// queues' depths, the status table and the stack's outputs (`openclaw doctor`: read-only
// calls). Attach it to a role or group; the stack attaches it to nothing.

import { Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as efs from 'aws-cdk-lib/aws-efs';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface OperatorPolicyProps {
  /** Functions the CLI invokes. */
  readonly functions: readonly lambda.IFunction[];
  /** Functions `doctor` only reads the configuration of (the monitor): never invoked by the CLI. */
  readonly inspectedFunctions: readonly lambda.IFunction[];
  /** ARN pattern of the previous version's schedule rules the CLI may list, migrate and remove (`…:rule/<prefix>-*`). */
  readonly ruleArnPattern: string;
  /** ARN pattern of the schedules in the stack's group (`…:schedule/<prefix>/*`). */
  readonly scheduleArnPattern: string;
  /** The role the schedules invoke their targets with. */
  readonly schedulerRole: iam.IRole;
  /** The status table: the cron catalog, the tenants' last outcomes, the freshness check. */
  readonly statusTable: dynamodb.ITable;
  /** The queues `doctor` reads the depth of. */
  readonly queues: readonly sqs.IQueue[];
  /** Names of those rules start with this (`<prefix>-`). */
  readonly rulePrefix: string;
  /** The tenant file system and access point, for `openclaw doctor`. */
  readonly fileSystem: efs.IFileSystem;
  readonly accessPoint: efs.IAccessPoint;
}

export class OperatorPolicy extends Construct {
  readonly policy: iam.ManagedPolicy;

  constructor(scope: Construct, id: string, props: OperatorPolicyProps) {
    super(scope, id);
    this.policy = new iam.ManagedPolicy(this, 'Policy', {
      description: `Operate the tenant backups of ${Stack.of(this).stackName} with the remote CLI`,
      statements: [
        new iam.PolicyStatement({
          sid: 'InvokeFunctions',
          actions: ['lambda:InvokeFunction', 'lambda:GetFunction', 'lambda:GetFunctionConfiguration', 'lambda:GetFunctionEventInvokeConfig'],
          resources: props.functions.map((fn) => fn.functionArn),
        }),
        new iam.PolicyStatement({
          sid: 'InspectFunctions',
          actions: ['lambda:GetFunctionConfiguration'],
          resources: props.inspectedFunctions.map((fn) => fn.functionArn),
        }),
        new iam.PolicyStatement({
          sid: 'DescribeTenantFileSystem',
          actions: [
            'elasticfilesystem:DescribeFileSystems',
            'elasticfilesystem:DescribeAccessPoints',
            'elasticfilesystem:DescribeMountTargets',
            'elasticfilesystem:DescribeMountTargetSecurityGroups',
          ],
          resources: [props.fileSystem.fileSystemArn, props.accessPoint.accessPointArn],
        }),
        new iam.PolicyStatement({
          sid: 'ManageSchedules',
          actions: ['scheduler:CreateSchedule', 'scheduler:UpdateSchedule', 'scheduler:DeleteSchedule', 'scheduler:GetSchedule'],
          resources: [props.scheduleArnPattern],
        }),
        new iam.PolicyStatement({
          sid: 'PassTheSchedulerRole',
          actions: ['iam:PassRole'],
          resources: [props.schedulerRole.roleArn],
          conditions: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } },
        }),
        new iam.PolicyStatement({
          sid: 'CronCatalogAndStatus',
          actions: ['dynamodb:PutItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:Query'],
          resources: [props.statusTable.tableArn],
        }),
        new iam.PolicyStatement({
          sid: 'QueueDepths',
          actions: ['sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
          resources: props.queues.map((queue) => queue.queueArn),
        }),
        new iam.PolicyStatement({
          // The previous version's rules: listed, moved to Scheduler (`cron migrate`), removed.
          sid: 'MigrateScheduleRules',
          actions: ['events:DeleteRule', 'events:DescribeRule', 'events:ListTargetsByRule', 'events:RemoveTargets', 'events:ListTagsForResource'],
          resources: [props.ruleArnPattern],
        }),
        new iam.PolicyStatement({
          sid: 'ListSchedulesAndRules',
          actions: ['scheduler:ListSchedules', 'events:ListRules', 'lambda:ListEventSourceMappings'],
          resources: ['*'],
        }),
        new iam.PolicyStatement({
          sid: 'DescribeFunctionNetwork',
          actions: [
            'ec2:DescribeSubnets',
            'ec2:DescribeRouteTables',
            'ec2:DescribeVpcEndpoints',
            'ec2:DescribeSecurityGroups',
            'ec2:DescribeManagedPrefixLists',
          ],
          resources: ['*'],
        }),
        new iam.PolicyStatement({
          sid: 'ReadStackOutputs',
          actions: ['cloudformation:DescribeStacks'],
          resources: [Stack.of(this).stackId],
        }),
      ],
    });
    Validations.of(this.policy).acknowledge({
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:rule/${props.rulePrefix}*]`,
      reason: 'The previous version\'s schedule rules, listed, migrated and removed at run time; the wildcard covers only rules named with the stack prefix.',
    });
    Validations.of(this.policy).acknowledge({
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/${props.rulePrefix.slice(0, -1)}/*]`,
      reason: 'The CLI creates and deletes schedules at run time; the wildcard covers only the schedules of the stack\'s own group.',
    });
    Validations.of(this.policy).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'scheduler:ListSchedules, events:ListRules, lambda:ListEventSourceMappings and the EC2 Describe calls of doctor (subnets, route tables, VPC endpoints, security groups, prefix lists) support no resource-level permissions; all only read.',
    });
  }
}
