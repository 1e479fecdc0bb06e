// The ID of the region's AWS-managed prefix list for S3 (`com.amazonaws.<region>.s3`), which
// a security group rule needs to allow HTTPS to S3 and nothing else. The ID differs per
// region and the stack is environment-agnostic (no synth-time lookups), so it is read at
// deploy time: a custom resource calls EC2 DescribeManagedPrefixLists (read-only) once per
// deployment. Its provider function runs outside the VPC and outlives nothing: it only reads.

import { Aws, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { logGroupProps } from './secure-defaults.js';

export interface S3PrefixListProps {
  /** Retention of the lookup function's logs. */
  readonly logRetention: logs.RetentionDays;
}

export class S3PrefixList extends Construct {
  /** `pl-…` of the region's S3 prefix list (a deploy-time token). */
  readonly prefixListId: string;

  constructor(scope: Construct, id: string, props: S3PrefixListProps) {
    super(scope, id);
    const name = `com.amazonaws.${Aws.REGION}.s3`;
    const lookup = new cr.AwsCustomResource(this, 'Lookup', {
      resourceType: 'Custom::S3PrefixListLookup',
      onUpdate: {
        service: 'EC2',
        action: 'describeManagedPrefixLists',
        parameters: { Filters: [{ Name: 'prefix-list-name', Values: [name] }] },
        physicalResourceId: cr.PhysicalResourceId.of(name),
        outputPaths: ['PrefixLists.0.PrefixListId'],
      },
      policy: cr.AwsCustomResourcePolicy.fromStatements([
        new iam.PolicyStatement({ actions: ['ec2:DescribeManagedPrefixLists'], resources: ['*'] }),
      ]),
      installLatestAwsSdk: false,
      logGroup: new logs.LogGroup(this, 'Logs', logGroupProps(props.logRetention)),
    });
    this.prefixListId = lookup.getResponseField('PrefixLists.0.PrefixListId');
    Validations.of(lookup).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'ec2:DescribeManagedPrefixLists supports no resource-level permissions; it only reads the S3 prefix list ID.',
    });
    // The provider function CDK adds once per stack for AwsCustomResource.
    const provider = Stack.of(this).node.tryFindChild(`AWS${cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace(/-/g, '')}`);
    if (provider !== undefined) {
      Validations.of(provider).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason: 'The custom resource provider writes its own CloudWatch logs with the AWS managed policy for that.',
      });
    }
  }
}
