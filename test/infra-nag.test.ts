// cdk-nag (AwsSolutions, cdk-nag 3): a validation plugin that runs at synth. Any unacknowledged
// finding, error or warning, fails the plugin's report, and then `app.synth()` throws (in tests
// the app runs "in memory") with the report as message; the report is also written to the
// cloud assembly as validation-report.json. So each configuration is synthesized, and its report
// read as well: no AwsSolutions violation of any severity may be left. Control cases prove the
// plugin is really active, for errors and for warnings.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { fixtureApp, removeTestOutdirs } from '../infra/fixtures/app.js';

afterAll(removeTestOutdirs);

interface PluginReport {
  readonly pluginName: string;
  readonly violations: readonly {
    readonly ruleName: string;
    readonly severity?: string;
    readonly violatingConstructs?: readonly { readonly constructPath?: string }[];
  }[];
}

/** AwsSolutions findings left in the validation report of a synthesized app. */
function nagFindings(context: Record<string, unknown>): string[] {
  const { app } = fixtureApp(context);
  const assembly = app.synth();
  const reportFile = join(assembly.directory, 'validation-report.json');
  let reports: readonly PluginReport[] = [];
  try {
    reports = (JSON.parse(readFileSync(reportFile, 'utf8')) as { pluginReports: PluginReport[] }).pluginReports;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  return reports
    .filter((report) => report.pluginName.includes('AwsSolutions'))
    .flatMap((report) =>
      report.violations.map(
        (violation) =>
          `${violation.severity ?? '?'} ${violation.ruleName} at ${(violation.violatingConstructs ?? []).map((c) => c.constructPath).join(', ')}`,
      ),
    );
}

const IMPORT = {
  'openclaw:fileSystemId': 'fs-0123456789abcdef0',
  'openclaw:securityGroupId': 'sg-0123456789abcdef0',
  'openclaw:vpcId': 'vpc-0123456789abcdef0',
  'openclaw:subnetIds': ['subnet-0aaaaaaaaaaaaaaa1'],
};
const KEY = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

describe('cdk-nag AwsSolutions', () => {
  it.each([
    ['the defaults (standalone: created VPC, file system and bucket)', {}],
    ['the gateway\'s file system and an existing access point', { ...IMPORT, 'openclaw:accessPointId': 'fsap-0123456789abcdef0' }],
    ['the gateway\'s file system with a new access point', IMPORT],
    ['an existing KMS-encrypted bucket', { 'openclaw:bucketName': 'gateway-backups', 'openclaw:bucketKmsKeyArn': KEY }],
    ['a KMS-encrypted bucket with expiry', { 'openclaw:bucketEncryption': 'KMS', 'openclaw:expirationDays': 90 }],
    ['archive KMS keys for --sse-kms-key-id', { 'openclaw:bucketEncryption': 'KMS', 'openclaw:archiveKmsKeyArns': [KEY] }],
    ['no server access logs', { 'openclaw:serverAccessLogs': false }],
    [
      'cross-account sources',
      { 'openclaw:extraSourceBuckets': ['other-backups', 'arn:aws:s3:::more-backups'], 'openclaw:extraSourceKmsKeyArns': [KEY] },
    ],
    ['Object Lock, replication to another account, overwrites allowed', {
      'openclaw:objectLockMode': 'COMPLIANCE',
      'openclaw:objectLockRetentionDays': 30,
      'openclaw:replicationBucket': 'vault-backups',
      'openclaw:replicationAccount': '222222222222',
      'openclaw:allowOverwrite': true,
    }],
    ['KMS with replication to the destination\'s key', {
      'openclaw:bucketEncryption': 'KMS',
      'openclaw:replicationBucket': 'arn:aws:s3:::vault-backups',
      'openclaw:replicationAccount': '222222222222',
      'openclaw:replicationKmsKeyArn': 'arn:aws:kms:eu-west-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab',
    }],
    ['an imported VPC with narrowed HTTPS egress and a listed endpoint', {
      ...IMPORT,
      'openclaw:httpsEgress': ['s3', 'sg-0fedcba9876543210'],
      'openclaw:allowedEndpoints': ['https://minio.internal:9000'],
    }],
    ['the default bus, no notifications, arm64 and tracing', {
      'openclaw:useDefaultEventBus': true,
      'openclaw:notifications': false,
      'openclaw:architecture': 'arm64',
      'openclaw:tracing': true,
    }],
  ])('leaves no unacknowledged finding with %s', (_name, context) => {
    expect(nagFindings(context)).toEqual([]);
  });

  it('is active: an unprotected bucket fails the synth with its findings', () => {
    const { app, stack } = fixtureApp();
    new s3.Bucket(stack, 'Unprotected');
    expect(() => app.synth()).toThrow(/AwsSolutions-S1[\s\S]*Unprotected|Unprotected[\s\S]*AwsSolutions-S1/);
    const second = fixtureApp();
    new s3.Bucket(second.stack, 'Unprotected');
    expect(() => second.app.synth()).toThrow(/AwsSolutions-S10/);
  });

  it('acknowledges no wildcard resource on the function roles: one added there fails the synth', () => {
    const { app, stack } = fixtureApp();
    stack.backupFunctions.roles.list.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: ['*'] }));
    expect(() => app.synth()).toThrow(/AwsSolutions-IAM5\[Resource::\*\][\s\S]*ListRole|ListRole[\s\S]*AwsSolutions-IAM5\[Resource::\*\]/);
  });

  it('acknowledges no runtime finding (L1): every function, CDK\'s helpers included, runs the newest Node.js runtime', () => {
    const { app, stack } = fixtureApp();
    const acknowledged = stack.node.findAll().flatMap((construct) =>
      construct.node.metadata
        .filter((entry) => entry.type === 'aws:cdk:acknowledged-rules')
        .flatMap((entry) => Object.keys(entry.data as Record<string, string>).map((id) => `${id} at ${construct.node.path}`)),
    );
    expect(acknowledged.length).toBeGreaterThan(0);
    expect(acknowledged.filter((entry) => /\bAwsSolutions-L1\b/.test(entry))).toEqual([]);
    const template = app.synth().getStackByName(stack.stackName).template as { Resources: Record<string, { Type: string; Properties: { Runtime?: string } }> };
    const runtimes = Object.values(template.Resources).filter((resource) => resource.Type === 'AWS::Lambda::Function').map((resource) => resource.Properties.Runtime);
    expect(new Set(runtimes)).toEqual(new Set([lambda.Runtime.NODEJS_24_X.name]));
  });

  it('is active for warnings too: a network ACL (warning VPC3) fails the synth', () => {
    const { app, stack } = fixtureApp();
    new ec2.CfnNetworkAcl(stack, 'Acl', { vpcId: 'vpc-0123456789abcdef0' });
    expect(() => app.synth()).toThrow(/WARNING[^\n]*\(AwsSolutions\)[\s\S]*AwsSolutions-VPC3/);
  });
});
