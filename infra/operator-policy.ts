// A managed policy for the people (or CI roles) who drive the remote CLI (cli/*.ts): invoke
// and inspect the functions, manage the schedule rules named `<prefix>-…` and point them at
// the backup and prune functions only, describe the tenant file system and the functions'
// network (`openclaw doctor`: read-only EC2 Describe calls), and read the stack's outputs.
// Attach it to a role or group; the stack attaches it to nothing.

import { Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as efs from 'aws-cdk-lib/aws-efs';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';

export interface OperatorPolicyProps {
  /** Functions the CLI invokes. */
  readonly functions: readonly lambda.IFunction[];
  /** The function schedule rules may target. */
  readonly backupFunction: lambda.IFunction;
  /**
   * The other function schedule rules may target (scheduled prunes).
   * @default - none
   */
  readonly pruneFunction?: lambda.IFunction;
  /** ARN pattern of the schedule rules the CLI may manage (`…:rule/<prefix>-*`). */
  readonly ruleArnPattern: string;
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
          actions: ['lambda:InvokeFunction', 'lambda:GetFunction', 'lambda:GetFunctionConfiguration'],
          resources: props.functions.map((fn) => fn.functionArn),
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
          sid: 'ManageScheduleRules',
          actions: [
            'events:PutRule',
            'events:DeleteRule',
            'events:DescribeRule',
            'events:EnableRule',
            'events:DisableRule',
            'events:ListTargetsByRule',
            'events:RemoveTargets',
            // `cron add` tags each rule with its tenant and cron name.
            'events:TagResource',
            'events:UntagResource',
            'events:ListTagsForResource',
          ],
          resources: [props.ruleArnPattern],
        }),
        new iam.PolicyStatement({
          sid: 'TargetOnlyTheBackupFunction',
          actions: ['events:PutTargets'],
          resources: [props.ruleArnPattern],
          conditions: {
            'ForAllValues:ArnEquals': { 'events:TargetArn': [props.backupFunction.functionArn, ...(props.pruneFunction === undefined ? [] : [props.pruneFunction.functionArn])] },
          },
        }),
        new iam.PolicyStatement({
          sid: 'ListScheduleRules',
          actions: ['events:ListRules'],
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
      reason: 'The CLI creates and deletes schedule rules at run time; the wildcard covers only rules named with the stack prefix.',
    });
    Validations.of(this.policy).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'events:ListRules and the EC2 Describe calls of doctor (subnets, route tables, VPC endpoints, security groups, prefix lists) support no resource-level permissions; all only read.',
    });
  }
}
