// Builds the CDK app: one OpenClawBackupStack configured from context, checked by cdk-nag's
// AwsSolutions rules (cdk-nag 3: a validation plugin; findings fail the synth unless
// acknowledged with a reason next to the resource they concern).

import { type App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readConfig } from './config.js';
import { OpenClawBackupStack } from './stack.js';

/** Construct ID of the stack (its CloudFormation name comes from context, default `openclaw-backup`). */
export const STACK_ID = 'OpenClawBackupStack';

export function createBackupApp(app: App): OpenClawBackupStack {
  const config = readConfig((key) => app.node.tryGetContext(key), Object.keys(app.node.getAllContext() as Record<string, unknown>));
  // No `env`: the stack stays environment-agnostic, so nothing is looked up at synth time
  // (a fixed account would make the VPC look up availability zones).
  const stack = new OpenClawBackupStack(app, STACK_ID, { ...config.props, stackName: config.stackName });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return stack;
}
