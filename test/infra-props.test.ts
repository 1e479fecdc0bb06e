// Bad props and bad context: every construct reports all of its problems in one error.

import { spawnSync } from 'node:child_process';

import { App, Duration, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { afterAll, describe, expect, it } from 'vitest';
import { BackupBucket, BackupBucketEncryption } from '../infra/backup-bucket.js';
import { BackupEvents } from '../infra/backup-events.js';
import { BackupFunctions, type BackupFunctionsProps } from '../infra/backup-functions.js';
import { BackupSchedules } from '../infra/backup-schedules.js';
import { readConfig } from '../infra/config.js';
import { cdkJsonContext, fixtureApp, testOutdir, removeTestOutdirs } from '../infra/fixtures/app.js';
import { TenantFileSystem } from '../infra/tenant-file-system.js';
import { InfraConfigError, bucketNameOf, isAbsoluteDirectory, isKeyPrefix } from '../infra/validation.js';

afterAll(removeTestOutdirs);

function problemsOf(build: () => unknown): readonly string[] {
  try {
    build();
  } catch (error) {
    expect(error).toBeInstanceOf(InfraConfigError);
    return (error as InfraConfigError).problems;
  }
  throw new Error('expected an InfraConfigError');
}

const newStack = () => new Stack(new App({ outdir: testOutdir() }), 'Test');

describe('TenantFileSystem props', () => {
  it('reports every bad import setting at once', () => {
    const problems = problemsOf(
      () =>
        new TenantFileSystem(newStack(), 'Fs', {
          existing: {
            fileSystemId: 'efs-1',
            securityGroupId: 'sg-XYZ',
            vpcId: 'vpc',
            subnetIds: ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef0', 'net-1'],
            accessPointId: 'ap-1',
          },
          posixUid: 0,
          maxAzs: 3,
        }),
    );
    expect(problems).toEqual([
      'fileSystemId "efs-1" is not an EFS file system ID (fs-…)',
      'securityGroupId "sg-XYZ" is not a security group ID (sg-…)',
      'vpcId "vpc" is not a VPC ID (vpc-…)',
      'subnetIds: "net-1" is not a subnet ID (subnet-…)',
      'subnetIds must not repeat a subnet',
      'accessPointId "ap-1" is not an access point ID (fsap-…)',
      'tenantsPath, posixUid and posixGid configure a new access point: omit them with an existing accessPointId',
      'maxAzs applies only to a created VPC, not to an imported file system',
      'posixUid must be an integer from 1 to 4294967295, got 0',
    ]);
  });

  it('refuses an import without subnets, a relative or escaping tenant path, and odd numbers', () => {
    expect(
      problemsOf(
        () =>
          new TenantFileSystem(newStack(), 'Fs', {
            existing: { fileSystemId: 'fs-0123456789abcdef0', securityGroupId: 'sg-0123456789abcdef0', vpcId: 'vpc-0123456789abcdef0', subnetIds: [] },
          }),
      ),
    ).toEqual(['subnetIds must name at least one subnet when importing a file system']);
    expect(
      problemsOf(() => new TenantFileSystem(newStack(), 'Fs', { tenantsPath: '/tenants/../etc', posixGid: 1.5, maxAzs: 0 })),
    ).toEqual([
      'tenantsPath "/tenants/../etc" must be an absolute directory below "/" without "." or ".." segments',
      'posixGid must be an integer from 1 to 4294967295, got 1.5',
      'maxAzs must be an integer from 1 to 6, got 0',
    ]);
  });
});

describe('BackupBucket props', () => {
  it('reports every problem with an existing bucket at once', () => {
    expect(
      problemsOf(
        () =>
          new BackupBucket(newStack(), 'Bucket', {
            existingBucketName: 'Not_A_Bucket',
            existingBucketKmsKeyArn: 'alias/backups',
            archiveKmsKeyArns: ['alias/archives'],
            encryption: BackupBucketEncryption.KMS,
            expirationDays: 30,
            keyPrefix: '/backups',
          }),
      ),
    ).toEqual([
      'existingBucketName "Not_A_Bucket" is not a valid S3 bucket name',
      'encryption configures a created bucket: omit it with existingBucketName',
      'expirationDays configures a created bucket: omit it with existingBucketName',
      'existingBucketKmsKeyArn "alias/backups" is not a KMS key ARN',
      'archiveKmsKeyArns: "alias/archives" is not a KMS key ARN (an alias cannot be granted: give the key\'s ARN)',
      'keyPrefix "/backups" must be path-like and end in "/" (no leading "/", no empty, "." or ".." segments)',
    ]);
  });

  it('refuses a KMS key without a bucket, an unknown encryption and out-of-range days', () => {
    expect(
      problemsOf(
        () =>
          new BackupBucket(newStack(), 'Bucket', {
            existingBucketKmsKeyArn: 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
            encryption: 'DSSE' as BackupBucketEncryption,
            expirationDays: 0,
            noncurrentVersionExpirationDays: 1e6,
            keyPrefix: '',
          }),
      ),
    ).toEqual([
      'existingBucketKmsKeyArn needs existingBucketName',
      'encryption must be one of S3_MANAGED, KMS, got "DSSE"',
      'keyPrefix "" must be path-like and end in "/" (no leading "/", no empty, "." or ".." segments)',
      'expirationDays must be an integer from 1 to 36500, got 0',
      'noncurrentVersionExpirationDays must be an integer from 1 to 36500, got 1000000',
    ]);
  });
});

describe('BackupFunctions props', () => {
  it('reports every bad function setting at once', () => {
    const stack = newStack();
    const props: BackupFunctionsProps = {
      prefix: 'Bad Prefix',
      tenantFileSystem: new TenantFileSystem(stack, 'Fs'),
      backupBucket: new BackupBucket(stack, 'Bucket'),
      eventBus: events.EventBus.fromEventBusName(stack, 'Bus', 'default'),
      extraSourceBuckets: ['ok-bucket', 'arn:aws:s3:::some-bucket/some-key', 'x'],
      extraSourceKmsKeyArns: ['key-1'],
      queueRedrivers: ['arn:aws:iam::123456789012:role/ok-redrive', 'arn:aws:sqs:eu-west-1:123456789012:queue'],
      architecture: 'sparc' as 'arm64',
      memorySizeMiB: 64,
      ephemeralStorageMiB: 20000,
      reservedConcurrency: 0,
      functionsDir: '../elsewhere',
      allowedEndpoints: ['http://minio:9000', 'https://proxy.internal/minio-a', 'https://minio.internal:9443/', 'https://u:p@proxy.internal/minio-a', 'https://proxy.internal/minio-a?x=1', 'https://proxy.internal/minio-a/../minio-b', 'https://proxy.internal/minio-%61'],
      // The last: the first with one character mistyped (the shape holds, the checksum does not).
      encryptTo: ['age1dmqqd5yzwc3dd7alql6qz5d0llckewh6l8l9yyrn48snc6cuh59qlh9ucm', 'age1nope', 'AGE-SECRET-KEY-1QQQ', 'age1dmqqd5yzwc3dd7alql6qz5d0llckewh6l8l9yyrn48snc6cuh59qlh9ucn'],
    };
    expect(problemsOf(() => new BackupFunctions(stack, 'Functions', props))).toEqual([
      'prefix "Bad Prefix" must match ^[a-z][a-z0-9-]{0,22}[a-z0-9]$',
      'extraSourceBuckets: "arn:aws:s3:::some-bucket/some-key" is neither a bucket name nor a bucket ARN (arn:aws:s3:::name)',
      'extraSourceBuckets: "x" is neither a bucket name nor a bucket ARN (arn:aws:s3:::name)',
      'extraSourceKmsKeyArns: "key-1" is not a KMS key ARN',
      'queueRedrivers: "arn:aws:sqs:eu-west-1:123456789012:queue" is not the ARN of an IAM role or user (arn:aws:iam::<account>:role/<name>)',
      'architecture must be x86_64 or arm64, got "sparc"',
      'memorySizeMiB must be an integer from 128 to 10240, got 64',
      'ephemeralStorageMiB must be an integer from 512 to 10240, got 20000',
      'reservedConcurrency must be an integer from 1 to 1000, got 0',
      'allowedEndpoints: "http://minio:9000" must be https://host[:port] or https://host[:port]/path',
      'allowedEndpoints: "https://u:p@proxy.internal/minio-a" must not hold credentials (a request gives its own keys)',
      'allowedEndpoints: "https://proxy.internal/minio-a?x=1" must have no query or fragment',
      'allowedEndpoints: "https://proxy.internal/minio-a/../minio-b" has a path that cannot be compared: its segments must be letters, digits, ".", "_", "~" and "-" (no "." or ".." segment, no "//", no percent-encoding)',
      'allowedEndpoints: "https://proxy.internal/minio-%61" has a path that cannot be compared: its segments must be letters, digits, ".", "_", "~" and "-" (no "." or ".." segment, no "//", no percent-encoding)',
      'encryptTo: "age1nope" must be an X25519 age recipient: age1 and 58 lower-case Bech32 characters (age-keygen -y KEYFILE prints it)',
      'encryptTo: "AGE-SECRET-KEY-1QQQ" must be an X25519 age recipient: age1 and 58 lower-case Bech32 characters (age-keygen -y KEYFILE prints it)',
      'encryptTo: "age1dmqqd5yzwc3dd7alql6qz5d0llckewh6l8l9yyrn48snc6cuh59qlh9ucn" is malformed: it has a wrong checksum (mistyped or cut short?)',
      'functionsDir "../elsewhere" must be a relative path inside the project root',
    ]);
  });
});

describe('BackupFunctions memory', () => {
  // A verify within the default limits, which the restore function grants whatever its memory,
  // of a hostile archive built to them peaked at 583 MiB RSS in a function of 512 (Lambda ends
  // it: no answer, no event) and 642 MiB in 1,024, which refused it in one line (docs/scale.md).
  const memoryProblems = (memorySizeMiB: number) => {
    const stack = newStack();
    // A bad prefix makes the construct throw whatever the memory: its problems are then listed.
    const props: BackupFunctionsProps = { prefix: 'Bad Prefix', tenantFileSystem: new TenantFileSystem(stack, 'Fs'), backupBucket: new BackupBucket(stack, 'Bucket'), eventBus: events.EventBus.fromEventBusName(stack, 'Bus', 'default'), memorySizeMiB };
    return problemsOf(() => new BackupFunctions(stack, 'Functions', props)).filter((problem) => problem.startsWith('memorySizeMiB'));
  };

  it('refuses less than 1,024 MiB at synth, in one line saying why', () => {
    for (const memory of [128, 512, 1023]) {
      expect(memoryProblems(memory)).toEqual([
        `memorySizeMiB must be 1024 or more, got ${memory}: a restore or verify of a hostile archive within the default limits (--max-entries 2,000,000) can take ~650 MiB, and a function of less memory then ends out of memory with no answer and no event`,
      ]);
    }
  });

  it('takes 1,024 MiB and more', () => {
    for (const memory of [1024, 2048, 10_240]) expect(memoryProblems(memory)).toEqual([]);
  });

  it('refuses it from the app\'s context too', () => {
    expect(() => fixtureApp({ 'openclaw:memorySizeMiB': '512' })).toThrow(/memorySizeMiB must be 1024 or more, got 512: /);
  });
});

describe('BackupSchedules and BackupEvents props', () => {
  it('reports bad retries, event age and prefix at once', () => {
    const stack = newStack();
    const fn = lambda.Function.fromFunctionName(stack, 'Fn', 'some-function');
    expect(
      problemsOf(
        () =>
          new BackupSchedules(stack, 'Schedules', {
            prefix: '-x',
            backupFunction: fn,
            restoreFunction: fn,
            backupRetryAttempts: 3,
            maxEventAge: Duration.seconds(10),
          }),
      ),
    ).toEqual([
      'prefix "-x" must match ^[a-z][a-z0-9-]{0,22}[a-z0-9]$',
      'backupRetryAttempts must be an integer from 0 to 2, got 3',
      'maxEventAge must be from 1 minute to 6 hours, got 10 s',
    ]);
  });

  it('refuses an email address without notifications, and one that is no address', () => {
    expect(
      problemsOf(() => new BackupEvents(newStack(), 'Events', { prefix: 'ok-prefix', notifications: false, notificationEmail: 'ops' })),
    ).toEqual(['notificationEmail "ops" is not an email address', 'notificationEmail needs notifications']);
  });
});

describe('stack and context', () => {
  it('refuses a prefix that cannot name rules, exports and functions', () => {
    expect(() => fixtureApp({ 'openclaw:prefix': 'OpenClaw' })).toThrow(/prefix "OpenClaw" must match/);
    expect(() => fixtureApp({ 'openclaw:prefix': 'a-prefix-that-is-far-too-long-for-rules' })).toThrow(InfraConfigError);
  });

  it('reports every malformed context value at once', () => {
    const context: Record<string, unknown> = {
      ...cdkJsonContext(),
      'openclaw:posixUid': 'abc',
      'openclaw:tracing': 'yes',
      'openclaw:architecture': 'sparc',
      'openclaw:logRetentionDays': 31,
      'openclaw:subnetIds': 5,
      'openclaw:prefix': 7,
    };
    expect(problemsOf(() => readConfig((key) => context[key]))).toEqual([
      'openclaw:prefix must be a string, got 7',
      'openclaw:subnetIds must be a list of strings (JSON array or comma-separated), got 5',
      'openclaw:logRetentionDays must be one of CloudWatch\'s retention periods (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653), got 31',
      'openclaw:posixUid must be an integer, got "abc"',
      'openclaw:architecture must be one of x86_64, arm64, got "sparc"',
      'openclaw:tracing must be true or false, got "yes"',
    ]);
  });

  it('refuses an openclaw: context key it does not read, naming the one meant, instead of ignoring it', () => {
    const context: Record<string, unknown> = { ...cdkJsonContext(), 'openclaw:fileSystemid': 'fs-0123', 'openclaw:bucketNam': 'b', 'openclaw:colour': 'blue' };
    expect(problemsOf(() => readConfig((key) => context[key], Object.keys(context)))).toEqual([
      'openclaw:fileSystemid is not a context key of this app (did you mean openclaw:fileSystemId?): infra/README.md lists them',
      'openclaw:bucketNam is not a context key of this app (did you mean openclaw:bucketName?): infra/README.md lists them',
      'openclaw:colour is not a context key of this app: infra/README.md lists them',
    ]);
    // Through the app, as cdk synth -c passes it.
    expect(() => fixtureApp({ 'openclaw:fileSystemid': 'fs-0123' })).toThrow(/openclaw:fileSystemid is not a context key of this app \(did you mean openclaw:fileSystemId\?\)/);
  });

  it('is reported by the cdk app as its list of problems, exit 1, no stack trace', () => {
    // As `cdk synth -c …` runs cdk.json's app: the context in CDK_CONTEXT_JSON.
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'infra/app.ts'], {
      encoding: 'utf8',
      env: { ...process.env, TSX_DISABLE_CACHE: '1', CDK_OUTDIR: testOutdir(), CDK_CONTEXT_JSON: JSON.stringify({ 'openclaw:fileSystemid': 'fs-0123', 'openclaw:posixUid': 'abc' }) },
    });
    expect(run).toMatchObject({
      status: 1,
      stderr:
        'cdk context: invalid configuration:\n' +
        '  - openclaw:fileSystemid is not a context key of this app (did you mean openclaw:fileSystemId?): infra/README.md lists them\n' +
        '  - openclaw:posixUid must be an integer, got "abc"\n',
    });
  });

  it('reads lists as JSON arrays or comma-separated strings and ignores empty values', () => {
    const read = (context: Record<string, unknown>) => readConfig((key) => context[key]).props;
    expect(read({ 'openclaw:extraSourceBuckets': 'a-bucket, b-bucket,' }).extraSourceBuckets).toEqual(['a-bucket', 'b-bucket']);
    expect(read({ 'openclaw:extraSourceBuckets': ['a-bucket'] }).extraSourceBuckets).toEqual(['a-bucket']);
    expect(read({ 'openclaw:bucketName': '' }).bucket).toEqual({});
    expect(read({}).fileSystem).toEqual({});
  });
});

describe('validation helpers', () => {
  it.each([
    ['my-bucket', 'my-bucket'],
    ['arn:aws:s3:::my-bucket', 'my-bucket'],
    ['arn:aws-cn:s3:::my.bucket', 'my.bucket'],
    ['arn:aws:s3:::my-bucket/key', undefined],
    ['My_Bucket', undefined],
    ['ab', undefined],
    ['a..b', undefined],
  ])('bucketNameOf(%j) is %j', (input, expected) => {
    expect(bucketNameOf(input)).toBe(expected);
  });

  it.each([
    ['backups/', true],
    ['tenants/prod/', true],
    ['backups', false],
    ['/backups/', false],
    ['a//b/', false],
    ['a/../b/', false],
    ['', false],
  ])('isKeyPrefix(%j) is %j', (input, expected) => {
    expect(isKeyPrefix(input)).toBe(expected);
  });

  it.each([
    ['/tenants', true],
    ['/srv/open-claw/tenants_1', true],
    ['/', false],
    ['tenants', false],
    ['/tenants/', false],
    ['/a/./b', false],
    ['/a/../b', false],
  ])('isAbsoluteDirectory(%j) is %j', (input, expected) => {
    expect(isAbsoluteDirectory(input)).toBe(expected);
  });
});
