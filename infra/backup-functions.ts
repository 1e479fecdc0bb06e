// The Lambda functions (backup, restore, list, prune), bundled locally with esbuild from
// `functions/*.ts`; backup, restore and list mount the tenant access point at /mnt/tenants
// inside the VPC. Permissions are granted per function and per need: backup writes archives
// (never deletes, never overwrites unless allowed), restore reads them (also from the extra
// source buckets of a cross-account restore) and tags those `tenants verify` found intact,
// list touches no S3 and only reads the file system, prune mounts no file system and is the
// only one that may delete an archive (backup-bucket.ts grantPrune). Each function has its
// own role with a fixed name (role-names.ts) that other accounts can rely on.
//
// Network: the functions' security group lets out only what they call. In a created VPC that
// is exactly knowable: HTTPS to S3 (the region's S3 prefix list, which the gateway endpoint
// routes), HTTPS to the interface endpoints' security group (EventBridge), NFS to the mount
// targets. An imported VPC reaches S3 and EventBridge through routes and endpoints this stack
// cannot see, so HTTPS goes to `httpsEgress` (default: anywhere; the subnets' routes decide);
// NFS still only to the mount targets' security group.
//
// Runtime and code: nodejs24.x, whose node:zlib (zstd) and node:sqlite (backup()) the core
// uses, so each asset is one esbuild bundle (AWS SDK included) and nothing else: no
// node_modules, no native code, nothing specific to a CPU. The architecture is therefore a
// free choice, arm64 by default; `bundle-check.ts` fails the synth on any native file or
// run-time package import in an asset. Each function is told the vCPUs its memory buys
// (OPENCLAW_CPUS), which its compression and writer threads follow.

import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Aspects, CfnResource, Duration, Size, Stack, Validations, type IAspect } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { Construct, type IConstruct } from 'constructs';
import type { BackupBucket } from './backup-bucket.js';
import { restrictPublishers } from './backup-events.js';
import { roleName } from './role-names.js';
import { S3PrefixList } from './s3-prefix-list.js';
import {
  DEFAULT_ARCHITECTURE,
  DEFAULT_EPHEMERAL_STORAGE_MIB,
  DEFAULT_LOG_RETENTION,
  DEFAULT_MEMORY_MIB,
  FUNCTION_BUNDLE_TARGET,
  FUNCTION_CONNECT_TIMEOUT_MS,
  FUNCTION_REQUEST_TIMEOUT_MS,
  FUNCTION_RUNTIME,
  LIST_MEMORY_MIB,
  PRUNE_MEMORY_MIB,
  LIST_TIMEOUT,
  LONG_TASK_TIMEOUT,
  SECURE_QUEUE_PROPS,
  allowSendersOnly,
  logGroupProps,
  vcpusForMemory,
} from './secure-defaults.js';
import { TenantFileSystem } from './tenant-file-system.js';
import { ProblemList, RESOURCE_ID_PATTERNS, bucketNameOf, isIpv4Cidr } from './validation.js';
import { FUNCTION_ENV, LEAST_FUNCTION_MEMORY_MIB, RESTORE_PIECE_RECEIVES, STACK_PREFIX_PATTERN, stackRecipientProblem, WORK_REDELIVERY_MARGIN_MS, functionName, restoreDeadLetterQueueName, restoreQueueName } from '../shared/control-plane/deployment.js';
import { allowedEndpointProblem } from '../shared/control-plane/endpoint-allowlist.js';

/** The restore function's NODE_OPTIONS: the others' with the young generation a restore is started with (bin/openclaw.js). */
const RESTORE_NODE_OPTIONS = '--enable-source-maps --max-semi-space-size=2';

/** The repository root: holds package.json, package-lock.json and `functions/`. */
export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Lambda CPU architectures, named as Lambda names them. */
export type LambdaArch = 'x86_64' | 'arm64';

/** The functions, by the role they play. */
export type FunctionName = 'backup' | 'restore' | 'list' | 'prune';

/** `httpsEgress` entry naming the region's S3 prefix list (looked up at deploy time). */
export const S3_PREFIX_LIST_PEER = 's3';

export interface BackupFunctionsProps {
  /** Deployment prefix: functions are named `<prefix>-backup`, `<prefix>-restore`, `<prefix>-list`. */
  readonly prefix: string;
  /** The tenant file system; its VPC and subnets host the functions. */
  readonly tenantFileSystem: TenantFileSystem;
  /** Where backups are written and restored from. */
  readonly backupBucket: BackupBucket;
  /** Bus the completion events are published to. */
  readonly eventBus: events.IEventBus;
  /**
   * Further buckets (names or bucket ARNs) the restore function may read archives from,
   * e.g. another account's backup bucket; that bucket's policy must allow the restore role.
   * @default []
   */
  readonly extraSourceBuckets?: readonly string[];
  /**
   * Principals (ARNs) besides the functions that may send to the restore queue, and to the
   * work queue (BackupFanOutProps.queueRedrivers): the role that redrives their dead-letter
   * queues (`aws sqs start-message-move-task` sends with the caller's permissions). Every other
   * principal is denied `sqs:SendMessage` by the queues' policies.
   * @default []
   */
  readonly queueRedrivers?: readonly string[];
  /**
   * The only S3-compatible endpoints a request may name: `https://host[:port]` allows that
   * host, `https://host[:port]/path` (a store behind a proxy) that path and below it only; the
   * functions reach them over HTTPS (port 443) only, and only where `httpsEgress` and the
   * subnets' routes lead.
   * @default [] - none: the functions reach AWS S3 only, with their role
   */
  readonly allowedEndpoints?: readonly string[];
  /**
   * Let a backup replace an existing archive (`--overwrite`). Off, the function refuses the
   * flag and the role may only create objects where none exists (If-None-Match enforced).
   * @default false
   */
  readonly allowOverwrite?: boolean;
  /**
   * age1… recipients (public keys) every archive the functions store is encrypted to, beside
   * any a request names (`--encrypt-to`): with it no backup through the stack, one-off or
   * scheduled, is stored in plaintext, whatever the request says. Restores of those archives
   * need an identity (`--identity-secret`). At most 64; each checked at synth.
   * @default [] - each request decides (`--encrypt-to`; none: plaintext)
   */
  readonly encryptTo?: readonly string[];
  /**
   * Where the functions may open HTTPS connections from an imported VPC: IPv4 CIDRs,
   * prefix lists (`pl-…`), security groups (`sg-…`, e.g. of the VPC's interface endpoints),
   * or "s3" for the region's S3 prefix list. Not for a created VPC, whose egress is exact.
   * @default ['0.0.0.0/0'] in an imported VPC
   */
  readonly httpsEgress?: readonly string[];
  /**
   * KMS keys (ARNs) the objects in the extra source buckets are encrypted with.
   * @default []
   */
  readonly extraSourceKmsKeyArns?: readonly string[];
  /**
   * CPU architecture of the functions (their assets hold no native code: either works).
   * @default 'arm64'
   */
  readonly architecture?: LambdaArch;
  /**
   * Memory of the backup and restore functions, in MiB (CPU scales with it: 1,769 MB buys one
   * vCPU, and the functions' threads follow; see infra/README.md). At least 1,024
   * (LEAST_FUNCTION_MEMORY_MIB: what a restore of a hostile archive within the default limits
   * may take), at most 10,240.
   * @default 2048
   */
  readonly memorySizeMiB?: number;
  /**
   * Ephemeral storage (/tmp) of the backup and restore functions, in MiB.
   * @default 2048
   */
  readonly ephemeralStorageMiB?: number;
  /**
   * Retention of the functions' log groups.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Active X-Ray tracing. In a created VPC with isolated subnets this also needs an X-Ray
   * VPC endpoint, which is not created.
   * @default false
   */
  readonly tracing?: boolean;
  /**
   * Reserved concurrency of the backup and of the restore function each, which also caps
   * how many tenants are processed at once.
   * @default - unreserved (account concurrency)
   */
  readonly reservedConcurrency?: number;
  /**
   * Directory of the handler entries `backup.ts`, `restore.ts`, `list.ts` and `prune.ts`; relative paths
   * are resolved against `projectRoot`. Must be inside `projectRoot`.
   * @default 'functions'
   */
  readonly functionsDir?: string;
  /**
   * Project root: holds package.json and package-lock.json.
   * @default - this repository's root
   */
  readonly projectRoot?: string;
}

export class BackupFunctions extends Construct {
  readonly backupFunction: nodejs.NodejsFunction;
  readonly restoreFunction: nodejs.NodejsFunction;
  /** The restore function's queue of next pieces (a restore in pieces), and its dead-letter queue. */
  readonly restoreQueue: sqs.Queue;
  readonly restoreDeadLetterQueue: sqs.Queue;
  /** Principals besides the functions that may send to the restore and work queues (BackupFunctionsProps.queueRedrivers). */
  readonly queueRedrivers: readonly string[];
  readonly listFunction: nodejs.NodejsFunction;
  /** Removes old archives (`tenants prune`); no file system. */
  readonly pruneFunction: nodejs.NodejsFunction;
  /** Security group of all the functions: egress to NFS (2049) on the file system and HTTPS. */
  readonly securityGroup: ec2.SecurityGroup;
  readonly architecture: lambda.Architecture;
  /** Each function's execution role, named `<prefix>-<function>-<region>`. */
  readonly roles: Record<FunctionName, iam.Role> = {} as Record<FunctionName, iam.Role>;
  /** ARNs of the extra source buckets (cross-account restore). */
  readonly extraSourceBucketArns: readonly string[];
  /** The environment every function gets (the coordinating functions take their policy from it). */
  readonly environment: Readonly<Record<string, string>>;
  /** Where the handler entries are, and the root their bundles are built from. */
  readonly functionsDir: string;
  readonly projectRoot: string;
  readonly logRetention: logs.RetentionDays;
  private s3PrefixList?: S3PrefixList;

  /** The deployment prefix (names the secrets the restore function may read: `<prefix>/…`). */
  readonly prefix: string;

  constructor(scope: Construct, id: string, props: BackupFunctionsProps) {
    super(scope, id);
    validate(props);
    this.prefix = props.prefix;

    const arch: LambdaArch = props.architecture ?? DEFAULT_ARCHITECTURE;
    this.architecture = arch === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64;
    // The helper functions CDK adds to the stack (custom resource providers, plain JavaScript)
    // run on the same architecture, so every function of the deployment is on one.
    Aspects.of(Stack.of(this)).add(new DefaultFunctionArchitecture(arch));
    const projectRoot = props.projectRoot ?? PROJECT_ROOT;
    const functionsDir = join(projectRoot, props.functionsDir ?? 'functions');
    this.projectRoot = projectRoot;
    this.functionsDir = functionsDir;
    this.logRetention = props.logRetention ?? DEFAULT_LOG_RETENTION;
    const fileSystem = props.tenantFileSystem;
    const bucket = props.backupBucket;
    const extraSourceBuckets = (props.extraSourceBuckets ?? []).map((bucketRef) => bucketNameOf(bucketRef)!);
    this.extraSourceBucketArns = extraSourceBuckets.map((name) => `arn:${Stack.of(this).partition}:s3:::${name}`);

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: fileSystem.vpc,
      description: `${props.prefix} functions: NFS to the tenant file system, HTTPS to AWS APIs`,
      allowAllOutbound: false,
    });
    const httpsEgress = props.httpsEgress ?? (fileSystem.created ? [S3_PREFIX_LIST_PEER] : ['0.0.0.0/0']);
    for (const target of httpsEgress) {
      const peer = this.peerOf(target);
      this.securityGroup.addEgressRule(peer, ec2.Port.tcp(443), target === S3_PREFIX_LIST_PEER ? 'HTTPS to S3 (the region\'s S3 prefix list)' : `HTTPS to ${target}`);
    }
    // Egress to the endpoints' security group (EventBridge) and, with the mount below, NFS to
    // the mount targets' security group.
    for (const endpoint of fileSystem.interfaceEndpoints) endpoint.connections.allowDefaultPortFrom(this.securityGroup);

    const environment: Record<string, string> = {
      [FUNCTION_ENV.tenantsDir]: TenantFileSystem.MOUNT_PATH,
      [FUNCTION_ENV.bucket]: bucket.bucket.bucketName,
      [FUNCTION_ENV.keyPrefix]: bucket.keyPrefix,
      [FUNCTION_ENV.eventBus]: props.eventBus.eventBusName,
      [FUNCTION_ENV.stackPrefix]: props.prefix,
      // Buckets restores may read besides the backup bucket.
      [FUNCTION_ENV.allowedSourceBuckets]: extraSourceBuckets.join(','),
      // Empty: no S3-compatible endpoint may be named (the functions' default, made explicit).
      [FUNCTION_ENV.allowedEndpoints]: (props.allowedEndpoints ?? []).join(','),
      [FUNCTION_ENV.allowOverwrite]: String(props.allowOverwrite ?? false),
      // Empty: each request decides whether its archive is encrypted.
      [FUNCTION_ENV.encryptTo]: (props.encryptTo ?? []).join(','),
      [FUNCTION_ENV.connectTimeout]: String(FUNCTION_CONNECT_TIMEOUT_MS),
      [FUNCTION_ENV.requestTimeout]: String(FUNCTION_REQUEST_TIMEOUT_MS),
      [FUNCTION_ENV.serviceName]: props.prefix,
      // As bin/openclaw.js starts the CLI: a small young generation and two malloc arenas
      // keep a large backup's or restore's peak memory 30-60 MiB lower at the same speed;
      // 64 threads in libuv's pool (Node's default is 4) let a backup or restore keep that
      // many calls to EFS in flight, each a network round trip (THREAD_POOL_SIZE in
      // shared/file-access.ts; read when the pool starts, so only the environment can set it).
      // Fixed malloc thresholds keep zstd's ~2 MiB frame buffers in the heap between frames
      // instead of giving them back and faulting them in again (docs/benchmarks.md, stop 34).
      NODE_OPTIONS: '--enable-source-maps --max-semi-space-size=4',
      MALLOC_ARENA_MAX: '2',
      MALLOC_MMAP_THRESHOLD_: '8388608',
      MALLOC_TRIM_THRESHOLD_: '33554432',
      UV_THREADPOOL_SIZE: '64',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    this.environment = environment;

    const make = (name: FunctionName, description: string, timeout: Duration, heavy: boolean) => {
      const title = `${name[0]!.toUpperCase()}${name.slice(1)}`;
      const role = new iam.Role(this, `${title}Role`, {
        roleName: roleName(props.prefix, name),
        description: `${props.prefix}-${name}: ${description}`,
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        managedPolicies: [
          iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaBasicExecutionRole'),
          iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaVPCAccessExecutionRole'),
        ],
      });
      this.roles[name] = role;
      const memorySize = heavy ? (props.memorySizeMiB ?? DEFAULT_MEMORY_MIB) : name === 'prune' ? PRUNE_MEMORY_MIB : LIST_MEMORY_MIB;
      return new nodejs.NodejsFunction(this, `${title}Function`, {
        role,
        functionName: functionName(props.prefix, name),
        description,
        entry: join(functionsDir, `${name}.ts`),
        handler: 'handler',
        projectRoot,
        depsLockFilePath: join(projectRoot, 'package-lock.json'),
        runtime: FUNCTION_RUNTIME,
        architecture: this.architecture,
        memorySize,
        ephemeralStorageSize: heavy ? Size.mebibytes(props.ephemeralStorageMiB ?? DEFAULT_EPHEMERAL_STORAGE_MIB) : undefined,
        timeout,
        reservedConcurrentExecutions: heavy ? props.reservedConcurrency : undefined,
        // The vCPUs this memory buys: what the function's threads keep busy.
        environment: {
          ...environment,
          [FUNCTION_ENV.cpus]: String(vcpusForMemory(memorySize)),
          // A restore's peak is what it holds of the tree at the end, not garbage: a 2 MiB young
          // generation takes a few MiB off it at the same CPU (bin/openclaw.js, docs/scale.md).
          ...(name === 'restore' && { NODE_OPTIONS: RESTORE_NODE_OPTIONS }),
        },
        vpc: fileSystem.vpc,
        vpcSubnets: fileSystem.subnets,
        securityGroups: [this.securityGroup],
        // List only reads: it mounts without ClientWrite. Prune works on S3 only.
        filesystem: name === 'prune' ? undefined : fileSystem.lambdaFileSystem({ write: name !== 'list' }),
        logGroup: new logs.LogGroup(this, `${title}Logs`, logGroupProps(props.logRetention ?? DEFAULT_LOG_RETENTION)),
        loggingFormat: lambda.LoggingFormat.JSON,
        tracing: props.tracing ? lambda.Tracing.ACTIVE : lambda.Tracing.DISABLED,
        // A backup in pieces queues each next piece on the work queue, which invokes this function
        // again: to Lambda's recursive loop detection (on by default) a chain of pieces is a loop,
        // stopped at about its 16th piece. The chain ends by itself (docs/scale.md: each piece
        // goes on only from its own chain's state, an idle chain is abandoned after a day).
        // So is a restore in pieces, through its own queue (below).
        ...((name === 'backup' || name === 'restore') && { recursiveLoop: lambda.RecursiveLoop.ALLOW }),
        bundling: bundlingOptions(),
      });
    };

    this.backupFunction = make('backup', 'Backs up one tenant directory to S3 as a tar.zst archive', LONG_TASK_TIMEOUT, true);
    this.restoreFunction = make('restore', 'Restores one tenant directory from a tar.zst archive in S3', LONG_TASK_TIMEOUT, true);
    this.listFunction = make('list', 'Lists the tenant directories on the file system', LIST_TIMEOUT, false);
    this.pruneFunction = make('prune', 'Removes the archives a retention policy does not keep from the backup bucket', LONG_TASK_TIMEOUT, false);

    // A restore that outlasts an invocation hands its next piece to the next invocation through
    // a queue of its own (functions/restore-queue-handler.ts): the restore function's role, not
    // the backup function's, reads the archives and may replace tenants. A piece handed back
    // (it wrote nothing, or could not queue its next) comes again after the function's timeout
    // and the lock's stale age; after its last attempt it waits in the restore DLQ.
    this.queueRedrivers = props.queueRedrivers ?? [];
    this.restoreDeadLetterQueue = new sqs.Queue(this, 'RestoreDeadLetterQueue', { ...SECURE_QUEUE_PROPS, queueName: restoreDeadLetterQueueName(props.prefix) });
    Validations.of(this.restoreDeadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself a dead-letter queue: of the restore queue, for pieces of restores that failed their last attempt.',
    });
    this.restoreQueue = new sqs.Queue(this, 'RestoreQueue', {
      ...SECURE_QUEUE_PROPS,
      queueName: restoreQueueName(props.prefix),
      visibilityTimeout: Duration.seconds(LONG_TASK_TIMEOUT.toSeconds() + WORK_REDELIVERY_MARGIN_MS / 1000),
      deadLetterQueue: { queue: this.restoreDeadLetterQueue, maxReceiveCount: RESTORE_PIECE_RECEIVES },
    });
    this.restoreFunction.addEventSource(new SqsEventSource(this.restoreQueue, { batchSize: 1, reportBatchItemFailures: true }));
    this.restoreQueue.grantSendMessages(this.restoreFunction);
    // Each message names a chain's piece: only the restore role queues one (and the redrivers).
    allowSendersOnly(this.restoreQueue, [this.restoreFunction.role!], this.queueRedrivers);
    this.restoreFunction.addEnvironment(FUNCTION_ENV.restoreQueueUrl, this.restoreQueue.queueUrl);

    bucket.grantBackupWrite(this.backupFunction, { allowOverwrite: props.allowOverwrite ?? false });
    bucket.grantRestoreRead(this.restoreFunction);
    bucket.grantPrune(this.pruneFunction);
    if (extraSourceBuckets.length > 0) {
      const partition = Stack.of(this).partition;
      iam.Grant.addToPrincipal({
        grantee: this.restoreFunction,
        actions: ['s3:GetObject', 's3:GetObjectVersion'],
        resourceArns: extraSourceBuckets.map((name) => `arn:${partition}:s3:::${name}/*`),
      });
      iam.Grant.addToPrincipal({
        grantee: this.restoreFunction,
        actions: ['s3:ListBucket'],
        resourceArns: extraSourceBuckets.map((name) => `arn:${partition}:s3:::${name}`),
      });
    }
    (props.extraSourceKmsKeyArns ?? []).forEach((keyArn, index) => {
      kms.Key.fromKeyArn(this, `ExtraSourceKey${index}`, keyArn).grantDecrypt(this.restoreFunction);
    });
    const publishers = [this.backupFunction, this.restoreFunction, this.pruneFunction];
    for (const fn of publishers) props.eventBus.grantPutEventsTo(fn);
    // …and no one else may publish their source to the stack's own bus (backup-events.ts).
    restrictPublishers(props.eventBus, [this.roles.backup, this.roles.restore, this.roles.prune]);
    // `--identity-secret`: the restore function reads age identities from secrets named
    // `<prefix>/…` in its own account and region, and no others (secret ARNs end in a random
    // suffix, hence the wildcard after the prefix's slash).
    iam.Grant.addToPrincipal({
      grantee: this.restoreFunction,
      actions: ['secretsmanager:GetSecretValue'],
      resourceArns: [identitySecretsArn(this, props.prefix)],
    });

    this.acknowledgeFindings(bucket, extraSourceBuckets, props.tracing ?? false);
  }

  get functions(): readonly nodejs.NodejsFunction[] {
    return [this.backupFunction, this.restoreFunction, this.listFunction, this.pruneFunction];
  }

  /** A security group peer for an `httpsEgress` entry (validated in `validate`). */
  private peerOf(target: string): ec2.IPeer {
    if (target === S3_PREFIX_LIST_PEER) {
      this.s3PrefixList ??= new S3PrefixList(this, 'S3PrefixList', { logRetention: this.logRetention });
      return ec2.Peer.prefixList(this.s3PrefixList.prefixListId);
    }
    if (target.startsWith('pl-')) return ec2.Peer.prefixList(target);
    if (target.startsWith('sg-')) return ec2.Peer.securityGroupId(target);
    return ec2.Peer.ipv4(target);
  }

  /** cdk-nag findings that are intended here, each with the reason, on the narrowest construct. */
  private acknowledgeFindings(bucket: BackupBucket, extraSourceBuckets: readonly string[], tracing: boolean): void {
    for (const role of Object.values(this.roles)) {
      Validations.of(role).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason: 'AWS managed policy for writing the function\'s own CloudWatch logs, maintained by AWS.',
      });
      Validations.of(role).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
        reason:
          'AWS managed policy for the ENIs of a function in a VPC; those EC2 actions support no resource-level permissions.',
      });
      // The one wildcard resource a function role may hold: X-Ray's, added with tracing.
      // (The EFS statements name the file system, narrowed to the access point by condition.)
      const defaultPolicy = role.node.tryFindChild('DefaultPolicy');
      if (tracing && defaultPolicy !== undefined) {
        Validations.of(defaultPolicy).acknowledge({
          id: 'AwsSolutions-IAM5[Resource::*]',
          reason: 'xray:PutTraceSegments and xray:PutTelemetryRecords (active tracing) support no resource-level permissions.',
        });
      }
    }
    Validations.of(this.roles.backup).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${bucket.nagObjectsResource()}]`,
      reason: 'Object actions on the backup key prefix only: backups are new objects with names chosen at run time.',
    });
    Validations.of(this.roles.restore).acknowledge({
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:${this.prefix}/*]`,
      reason: 'secretsmanager:GetSecretValue on the secrets under the stack prefix only: the age identity a restore names with --identity-secret.',
    });
    Validations.of(this.roles.restore).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${bucket.nagObjectsResource()}]`,
      reason: 'Read and tag object actions on the backup key prefix: restores and verifications read archives chosen at run time; a verification tags the archive it found intact.',
    });
    Validations.of(this.roles.prune).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${bucket.nagObjectsResource()}]`,
      reason: 'Prune reads and deletes archives under the backup key prefix, chosen at run time by the retention policy; no version actions.',
    });
    for (const name of extraSourceBuckets) {
      Validations.of(this.roles.restore).acknowledge({
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::${name}/*]`,
        reason: `Read-only object actions on ${name}, a configured cross-account restore source (extraSourceBuckets).`,
      });
    }
  }
}

/** Sets `arch` on every Lambda function of the scope that names no architecture of its own. */
class DefaultFunctionArchitecture implements IAspect {
  constructor(private readonly arch: LambdaArch) {}

  visit(node: IConstruct): void {
    if (!(node instanceof CfnResource) || node.cfnResourceType !== 'AWS::Lambda::Function') return;
    if (node instanceof lambda.CfnFunction) {
      node.architectures ??= [this.arch];
    } else {
      node.addPropertyOverride('Architectures', [this.arch]);
    }
  }
}

/** ARN pattern of the secrets `<prefix>/…` in the stack's account and region. */
export function identitySecretsArn(scope: Construct, prefix: string): string {
  const stack = Stack.of(scope);
  return `arn:${stack.partition}:secretsmanager:${stack.region}:${stack.account}:secret:${prefix}/*`;
}

/** esbuild settings of a function's asset: one ES module, the AWS SDK included, checked after bundling. */
export function bundlingOptions(): nodejs.BundlingOptions {
  const checkScript = fileURLToPath(new URL('./bundle-check.ts', import.meta.url));
  // tsx as a loader: its CLI would leave a directory of its own in /tmp (tsx-<uid>) after every synth.
  const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  const quote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;
  return {
    forceDockerBundling: false,
    format: nodejs.OutputFormat.ESM,
    target: FUNCTION_BUNDLE_TARGET,
    mainFields: ['module', 'main'],
    // CommonJS dependencies bundled into an ES module still call require().
    banner: "import { createRequire as __openclawCreateRequire } from 'node:module'; const require = __openclawCreateRequire(import.meta.url);",
    minify: true,
    keepNames: true,
    sourceMap: true,
    sourcesContent: false,
    metafile: true,
    // The SDK version the code was tested with, not the runtime's.
    bundleAwsSDK: true,
    // Nothing is left external and nothing is installed beside the bundle: the Node 20
    // fallbacks (@mongodb-js/zstd, better-sqlite3) are required at run time only where Node
    // lacks zstd and SQLite, which nodejs24.x does not.
    externalModules: [],
    commandHooks: {
      beforeBundling: () => [],
      beforeInstall: () => [],
      afterBundling: (_inputDir, outputDir) => [[process.execPath, '--import', tsxLoader, checkScript, outputDir].map(quote).join(' ')],
    },
  };
}

function validate(props: BackupFunctionsProps): void {
  const problems = new ProblemList('BackupFunctions');
  problems.check(STACK_PREFIX_PATTERN.test(props.prefix), `prefix ${JSON.stringify(props.prefix)} must match ${STACK_PREFIX_PATTERN.source}`);
  for (const bucketRef of props.extraSourceBuckets ?? []) {
    problems.check(
      bucketNameOf(bucketRef) !== undefined,
      `extraSourceBuckets: ${JSON.stringify(bucketRef)} is neither a bucket name nor a bucket ARN (arn:aws:s3:::name)`,
    );
  }
  for (const keyArn of props.extraSourceKmsKeyArns ?? []) {
    problems.check(
      /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]{36}$/.test(keyArn),
      `extraSourceKmsKeyArns: ${JSON.stringify(keyArn)} is not a KMS key ARN`,
    );
  }
  for (const principal of props.queueRedrivers ?? []) {
    problems.check(
      /^arn:aws[a-z-]*:iam::\d{12}:(?:role|user)\/[\w+=,.@/-]+$/.test(principal),
      `queueRedrivers: ${JSON.stringify(principal)} is not the ARN of an IAM role or user (arn:aws:iam::<account>:role/<name>)`,
    );
  }
  if (props.architecture !== undefined) {
    problems.check(
      props.architecture === 'x86_64' || props.architecture === 'arm64',
      `architecture must be x86_64 or arm64, got ${JSON.stringify(props.architecture)}`,
    );
  }
  problems.integerInRange(props.memorySizeMiB, 'memorySizeMiB', 128, 10240);
  // Lambda takes 128 MiB; a restore function of less than this can be run out of memory by a
  // hostile archive within the limits it grants whatever its memory (no answer, no event).
  if (props.memorySizeMiB !== undefined && Number.isInteger(props.memorySizeMiB) && props.memorySizeMiB >= 128 && props.memorySizeMiB < LEAST_FUNCTION_MEMORY_MIB) {
    problems.add(
      `memorySizeMiB must be ${LEAST_FUNCTION_MEMORY_MIB} or more, got ${props.memorySizeMiB}: a restore or verify of a hostile archive within the default limits (--max-entries 2,000,000) can take ~650 MiB, and a function of less memory then ends out of memory with no answer and no event`,
    );
  }
  problems.integerInRange(props.ephemeralStorageMiB, 'ephemeralStorageMiB', 512, 10240);
  problems.integerInRange(props.reservedConcurrency, 'reservedConcurrency', 1, 1000);
  for (const endpoint of props.allowedEndpoints ?? []) {
    const problem = allowedEndpointProblem(endpoint, { https: true });
    problems.check(problem === undefined && !endpoint.includes(','), `allowedEndpoints: ${JSON.stringify(endpoint)} ${problem ?? 'must not contain ","'}`);
  }
  for (const recipient of props.encryptTo ?? []) {
    const problem = stackRecipientProblem(recipient);
    problems.check(problem === undefined, `encryptTo: ${JSON.stringify(recipient)} ${problem ?? ''}`);
  }
  problems.check((props.encryptTo ?? []).length <= 64, `encryptTo: at most 64 recipients, got ${(props.encryptTo ?? []).length}`);
  if (props.httpsEgress !== undefined) {
    problems.check(
      !props.tenantFileSystem.created,
      'httpsEgress applies to an imported VPC: a created VPC reaches exactly S3 and EventBridge through its own endpoints',
    );
    problems.check(props.httpsEgress.length > 0, 'httpsEgress must name at least one destination (the functions need S3)');
    for (const target of props.httpsEgress) {
      problems.check(
        target === S3_PREFIX_LIST_PEER || /^pl-[0-9a-f]{8,17}$/.test(target) || RESOURCE_ID_PATTERNS.securityGroup.test(target) || isIpv4Cidr(target),
        `httpsEgress: ${JSON.stringify(target)} must be an IPv4 CIDR, a prefix list (pl-…), a security group (sg-…) or "s3"`,
      );
    }
  }
  if (props.functionsDir !== undefined) {
    problems.check(
      !props.functionsDir.split(/[\\/]/).includes('..') && !props.functionsDir.startsWith('/'),
      `functionsDir ${JSON.stringify(props.functionsDir)} must be a relative path inside the project root`,
    );
  }
  problems.throwIfAny();
}

