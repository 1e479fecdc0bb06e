// The coordinating functions (fan-out, monitor): small Lambda functions outside the VPC,
// with no tenant volume and no S3 access, each with its own role of a fixed name
// (`<prefix>-<name>-<region>`), a log group with a retention, JSON logs, and a bundle that
// ships no native package (the bundle check fails the synth if one creeps in). They reach
// AWS APIs directly (no VPC: no endpoints or NAT to pay for), which is why they are kept
// away from the tenants' data: they learn the tenants from the list function.

import { join } from 'node:path';
import { Duration, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { bundlingOptions, type BackupFunctions } from './backup-functions.js';
import { roleName } from './role-names.js';
import { FUNCTION_RUNTIME, logGroupProps } from './secure-defaults.js';
import { functionName, type ControlFunctionRole } from '../shared/control-plane/deployment.js';

export interface CoordinatorFunctionProps {
  readonly prefix: string;
  readonly name: ControlFunctionRole;
  readonly description: string;
  /** Where the entries are, the architecture, the log retention. */
  readonly functions: BackupFunctions;
  readonly environment: Record<string, string>;
  readonly timeout: Duration;
  readonly memorySizeMiB: number;
}

export function coordinatorFunction(scope: Construct, id: string, props: CoordinatorFunctionProps): nodejs.NodejsFunction {
  const role = new iam.Role(scope, `${id}Role`, {
    roleName: roleName(props.prefix, props.name),
    description: `${props.prefix}-${props.name}: ${props.description}`,
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaBasicExecutionRole')],
  });
  Validations.of(role).acknowledge({
    id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    reason: 'AWS managed policy for writing the function\'s own CloudWatch logs, maintained by AWS.',
  });
  const fn = new nodejs.NodejsFunction(scope, id, {
    role,
    functionName: functionName(props.prefix, props.name),
    description: props.description,
    entry: join(props.functions.functionsDir, `${props.name}.ts`),
    handler: 'handler',
    projectRoot: props.functions.projectRoot,
    depsLockFilePath: join(props.functions.projectRoot, 'package-lock.json'),
    runtime: FUNCTION_RUNTIME,
    architecture: props.functions.architecture,
    memorySize: props.memorySizeMiB,
    timeout: props.timeout,
    environment: {
      ...props.environment,
      NODE_OPTIONS: '--enable-source-maps',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    logGroup: new logs.LogGroup(scope, `${id}Logs`, logGroupProps(props.functions.logRetention)),
    loggingFormat: lambda.LoggingFormat.JSON,
    bundling: bundlingOptions(),
  });
  return fn;
}
