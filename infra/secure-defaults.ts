// Secure defaults for every resource the stack creates, in one place so that a review of
// "is it encrypted, private, TLS-only and kept on delete" reads one file. Constructs spread
// these and add only what is specific to them; they never weaken a setting here.

import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';

/** EFS directory exposed by the access point: it contains one directory per tenant. */
export const DEFAULT_TENANTS_PATH = '/tenants';

/** POSIX identity every function uses on the file system through the access point. */
export const DEFAULT_POSIX_UID = 1000;
export const DEFAULT_POSIX_GID = 1000;
/** Mode of the tenant base directory when the access point creates it: owner rwx, group rx. */
export const TENANTS_DIRECTORY_PERMISSIONS = '750';

/** Default S3 key prefix the functions may write backups under and read them from. */
export const DEFAULT_BACKUP_KEY_PREFIX = 'backups/';

/** Backup and restore can take a while on large tenants: Lambda's maximum. */
export const LONG_TASK_TIMEOUT = Duration.minutes(15);
export const LIST_TIMEOUT = Duration.minutes(1);
/** Listing directories needs little memory. */
export const LIST_MEMORY_MIB = 256;
/**
 * Prune inspects every archive under its prefix (an S3 request each, signed and parsed: about
 * 1.6 ms of CPU): 100,000 took 164 s of CPU and peaked at 239 MiB RSS under 256 MiB's heap
 * flags, where Lambda's 0.14 vCPU would need ~19 minutes, past the timeout. 1,024 MiB: 0.58 vCPU.
 */
export const PRUNE_MEMORY_MIB = 1024;
/** zstd compression uses about two cores' worth of CPU; Lambda gives CPU in proportion to memory. */
export const DEFAULT_MEMORY_MIB = 2048;
/** Lambda's CPU share: a function with 1,769 MB has the equivalent of one vCPU (AWS Lambda developer guide, "Configure Lambda function memory"). */
export const LAMBDA_MB_PER_VCPU = 1769;

/**
 * The vCPUs a function's memory buys, rounded to whole threads (at least 1): what its
 * compression and writer threads should keep busy (OPENCLAW_CPUS). Lambda shows such a
 * function more CPUs than that (2 up to 3,008 MB) and shares time between them.
 */
export function vcpusForMemory(memoryMiB: number): number {
  return Math.max(1, Math.round(memoryMiB / LAMBDA_MB_PER_VCPU));
}
/** /tmp room for SQLite snapshots taken before archiving. */
export const DEFAULT_EPHEMERAL_STORAGE_MIB = 2048;
export const DEFAULT_LOG_RETENTION = logs.RetentionDays.ONE_MONTH;

/**
 * Node.js 24: zstd (node:zlib) and SQLite with backup() (node:sqlite) are built in, so the
 * assets hold no native code. Lambda deprecates nodejs24.x on 2028-04-30 (see infra/README.md).
 */
export const FUNCTION_RUNTIME = lambda.Runtime.NODEJS_24_X;
/** esbuild's target for FUNCTION_RUNTIME. */
export const FUNCTION_BUNDLE_TARGET = 'node24';
/** arm64 (Graviton): cheaper per GB-second than x86_64; nothing in the assets is CPU-specific. */
export const DEFAULT_ARCHITECTURE = 'arm64';

/** Bucket settings: private, encrypted, TLS-only, versioned, kept when the stack goes. */
export const SECURE_BUCKET_PROPS = {
  encryption: s3.BucketEncryption.S3_MANAGED,
  blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
  enforceSSL: true,
  minimumTLSVersion: 1.2,
  versioned: true,
  objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
  removalPolicy: RemovalPolicy.RETAIN,
} as const satisfies s3.BucketProps;

/**
 * Connect and per-request timeouts of the AWS clients the functions create themselves
 * (completion events); each call is further bounded by the invocation's time left.
 */
export const FUNCTION_CONNECT_TIMEOUT_MS = 3_000;
export const FUNCTION_REQUEST_TIMEOUT_MS = 10_000;

/** Incomplete multipart uploads (an interrupted backup) are cleaned up after this. */
export const ABORT_INCOMPLETE_MULTIPART_AFTER = Duration.days(1);
/** Old versions of an overwritten or deleted backup are kept this long. */
export const DEFAULT_NONCURRENT_VERSION_EXPIRATION_DAYS = 30;

/** Queue settings: encrypted at rest, TLS-only, messages kept as long as SQS allows. */
export const SECURE_QUEUE_PROPS = {
  encryption: sqs.QueueEncryption.SQS_MANAGED,
  enforceSSL: true,
  retentionPeriod: Duration.days(14),
} as const satisfies sqs.QueueProps;

/**
 * A queue's resource policy: only `senders` (the roles of the functions that queue on it) and
 * `redrivers` (principal ARNs the deployment names: a DLQ's redrive sends to its source queue
 * with the caller's own permissions) may send to it. Denied to any other principal of the
 * account, whatever its IAM policies allow (a message names a tenant and what to do with it:
 * a piece of a restore chain, a backup). TLS-only comes from SECURE_QUEUE_PROPS.
 */
export function allowSendersOnly(queue: sqs.Queue, senders: readonly iam.IRole[], redrivers: readonly string[] = []): void {
  queue.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'SendOnlyFromItsSenders',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['sqs:SendMessage'],
      resources: [queue.queueArn],
      conditions: { ArnNotEquals: { 'aws:PrincipalArn': [...senders.map((role) => role.roleArn), ...redrivers] } },
    }),
  );
}

/** File system settings for a standalone deployment: encrypted, backed up, kept on delete. */
export const SECURE_FILE_SYSTEM_PROPS = {
  encrypted: true,
  enableAutomaticBackups: true,
  allowAnonymousAccess: false,
  performanceMode: efs.PerformanceMode.GENERAL_PURPOSE,
  throughputMode: efs.ThroughputMode.ELASTIC,
  removalPolicy: RemovalPolicy.RETAIN,
} as const satisfies Omit<efs.FileSystemProps, 'vpc'>;

/**
 * The file system policy of a created file system. EFS lets a client do what either the file
 * system policy or the client's own IAM policy allows (EFS user guide, "Using IAM to control
 * access to file systems"), so this one allows nothing: each role's own statements decide
 * (list mounts read-only, no one gets root), and with a policy in place and no Allow in it no
 * anonymous client gets in either. It only refuses connections without TLS (Lambda encrypts
 * its NFS traffic). CDK's own policy for `allowAnonymousAccess: false` would instead allow
 * ClientWrite and ClientRootAccess to every principal that reaches a mount target.
 */
export function tenantFileSystemPolicy(): iam.PolicyDocument {
  return new iam.PolicyDocument({
    statements: [
      new iam.PolicyStatement({
        sid: 'RefuseClientsWithoutTls',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite', 'elasticfilesystem:ClientRootAccess'],
        conditions: { Bool: { 'aws:SecureTransport': 'false' } },
      }),
    ],
  });
}

/** Log groups the stack creates keep their logs for a bounded time and outlive the stack. */
export function logGroupProps(retention: logs.RetentionDays): logs.LogGroupProps {
  return { retention, removalPolicy: RemovalPolicy.RETAIN };
}
