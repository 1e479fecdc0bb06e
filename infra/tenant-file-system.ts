// The EFS volume that holds the tenants, and the one access point the functions use to reach
// it. Two modes: import the gateway's existing file system (the normal case: the functions
// then run in the gateway's VPC), or create an encrypted, backed-up file system in a new
// VPC with isolated subnets for a standalone deployment. Either way the functions see only
// the tenant base directory, as one fixed POSIX user, through the access point.

import { CfnResource, Fn, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import {
  DEFAULT_LOG_RETENTION,
  DEFAULT_POSIX_GID,
  DEFAULT_POSIX_UID,
  DEFAULT_TENANTS_PATH,
  SECURE_FILE_SYSTEM_PROPS,
  TENANTS_DIRECTORY_PERMISSIONS,
  logGroupProps,
  tenantFileSystemPolicy,
} from './secure-defaults.js';
import { ProblemList, RESOURCE_ID_PATTERNS, isAbsoluteDirectory } from './validation.js';
import { TENANTS_MOUNT_PATH } from '../shared/control-plane/deployment.js';

/**
 * What the S3 gateway endpoint of a created VPC lets through: the object and list actions
 * the functions use, and only on the buckets they are configured for.
 */
export const S3_ENDPOINT_ACTIONS = [
  's3:GetObject',
  's3:GetObjectVersion',
  's3:PutObject',
  's3:PutObjectTagging',
  's3:PutObjectVersionTagging',
  's3:AbortMultipartUpload',
  's3:ListBucket',
  // tenants verify (the verification tag) and tenants prune (the prune function); the one
  // delete, s3:DeleteObject, goes through for the prune role only (restrictS3Endpoint)
  's3:GetObjectTagging',
  's3:GetObjectVersionTagging',
  's3:GetObjectRetention',
  's3:GetObjectLegalHold',
  's3:GetBucketVersioning',
  's3:GetBucketObjectLockConfiguration',
  's3:GetLifecycleConfiguration',
  // tenants prune: a killed backup's unfinished uploads, found and aborted (BackupBucket.grantPrune)
  's3:ListBucketMultipartUploads',
  's3:ListMultipartUploadParts',
] as const;

/** Construct ID (in the stack) of CDK's provider for the VPC's restrictDefaultSecurityGroup custom resource. */
const RESTRICT_DEFAULT_SG_PROVIDER_ID = 'Custom::VpcRestrictDefaultSGCustomResourceProvider';

/** An existing EFS file system and the network the functions reach it through. */
export interface ExistingFileSystem {
  /** ID of the file system, e.g. `fs-0123456789abcdef0`. */
  readonly fileSystemId: string;
  /**
   * Security group of the file system's mount targets. The stack adds an ingress rule on
   * port 2049 from the functions' security group to it.
   */
  readonly securityGroupId: string;
  /** VPC of the mount targets. */
  readonly vpcId: string;
  /**
   * Private subnets for the functions: they must reach the mount targets and, through a NAT
   * gateway or VPC endpoints, S3, EventBridge and SQS.
   */
  readonly subnetIds: readonly string[];
  /**
   * An existing access point to use instead of creating one. It must expose the tenant base
   * directory (the directory that contains one directory per tenant).
   * @default - an access point is created for `tenantsPath`
   */
  readonly accessPointId?: string;
}

export interface TenantFileSystemProps {
  /**
   * The gateway's existing file system. When omitted, a new encrypted file system with
   * automatic backups is created in a new VPC (standalone deployment).
   * @default - create a VPC and a file system
   */
  readonly existing?: ExistingFileSystem;
  /**
   * Directory on the file system that contains one directory per tenant; the access point
   * is rooted there and the functions see it at `/mnt/tenants`.
   * @default '/tenants'
   */
  readonly tenantsPath?: string;
  /**
   * POSIX user ID every file operation through the access point runs as. Must own the
   * tenant directories (the gateway's user), or backups cannot read them.
   * @default 1000
   */
  readonly posixUid?: number;
  /**
   * POSIX group ID every file operation through the access point runs as.
   * @default 1000
   */
  readonly posixGid?: number;
  /**
   * Availability zones for a created VPC (ignored when importing).
   * @default 2
   */
  readonly maxAzs?: number;
  /**
   * Retention of the created VPC's flow logs and of the logs of the custom resource that
   * closes its default security group (ignored when importing).
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly flowLogRetention?: logs.RetentionDays;
}

export class TenantFileSystem extends Construct {
  /** Path where the functions mount the access point. */
  static readonly MOUNT_PATH = TENANTS_MOUNT_PATH;

  readonly vpc: ec2.IVpc;
  /** Subnets the functions run in. */
  readonly subnets: ec2.SubnetSelection;
  readonly fileSystem: efs.IFileSystem;
  readonly accessPoint: efs.IAccessPoint;
  /** True when this construct created the VPC and file system. */
  readonly created: boolean;
  /**
   * Interface endpoints of a created VPC; the functions' security group must be let in.
   * Empty when importing.
   */
  readonly interfaceEndpoints: readonly ec2.InterfaceVpcEndpoint[];
  /** The S3 gateway endpoint of a created VPC (see `restrictS3Endpoint`); undefined when importing. */
  readonly s3Endpoint?: ec2.GatewayVpcEndpoint;

  constructor(scope: Construct, id: string, props: TenantFileSystemProps = {}) {
    super(scope, id);
    validate(props);

    const tenantsPath = props.tenantsPath ?? DEFAULT_TENANTS_PATH;
    const uid = String(props.posixUid ?? DEFAULT_POSIX_UID);
    const gid = String(props.posixGid ?? DEFAULT_POSIX_GID);

    if (props.existing) {
      const existing = props.existing;
      this.created = false;
      this.interfaceEndpoints = [];
      // No AZ lookup (the stack stays environment-agnostic): the functions only need the
      // VPC ID and the subnet IDs, the AZs are left to the deployment (Fn::GetAZs).
      this.vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', { vpcId: existing.vpcId, availabilityZones: Fn.getAzs() });
      this.subnets = {
        subnets: existing.subnetIds.map((subnetId) => ec2.Subnet.fromSubnetId(this, `Subnet-${subnetId}`, subnetId)),
      };
      this.fileSystem = efs.FileSystem.fromFileSystemAttributes(this, 'FileSystem', {
        fileSystemId: existing.fileSystemId,
        securityGroup: ec2.SecurityGroup.fromSecurityGroupId(this, 'MountTargetSecurityGroup', existing.securityGroupId),
      });
    } else {
      this.created = true;
      const vpc = new ec2.Vpc(this, 'Vpc', {
        maxAzs: props.maxAzs ?? 2,
        natGateways: 0,
        subnetConfiguration: [{ name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
      });
      const logRetention = props.flowLogRetention ?? DEFAULT_LOG_RETENTION;
      const flowLogGroup = new logs.LogGroup(this, 'FlowLogs', logGroupProps(logRetention));
      vpc.addFlowLog('FlowLog', { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogGroup) });
      // The custom resource that empties the VPC's default security group (the
      // restrictDefaultSecurityGroup feature flag) runs a provider function CDK makes without a
      // log group: Lambda would create one on its first run and keep its logs forever.
      const provider = Stack.of(this).node.tryFindChild(RESTRICT_DEFAULT_SG_PROVIDER_ID)?.node.tryFindChild('Handler');
      if (provider instanceof CfnResource) {
        const providerLogs = new logs.LogGroup(this, 'DefaultSecurityGroupProviderLogs', logGroupProps(logRetention));
        provider.addPropertyOverride('LoggingConfig', { LogGroup: providerLogs.logGroupName });
      }
      this.subnets = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
      // Isolated subnets have no route out: the functions reach S3 through a gateway
      // endpoint, EventBridge (completion events), Secrets Manager (restore identities) and
      // SQS (a backup continuing in another invocation) through interface endpoints. Their
      // logs and the DLQ are written by the Lambda service, outside the VPC.
      this.s3Endpoint = vpc.addGatewayEndpoint('S3Endpoint', { service: ec2.GatewayVpcEndpointAwsService.S3, subnets: [this.subnets] });
      // Closed by default: only the functions' security group is let in (by BackupFunctions).
      const eventsEndpoint = vpc.addInterfaceEndpoint('EventsEndpoint', {
        service: ec2.InterfaceVpcEndpointAwsService.EVENTBRIDGE,
        subnets: this.subnets,
        privateDnsEnabled: true,
        open: false,
      });
      // Secrets Manager: the restore function reads an age identity (--identity-secret).
      const secretsEndpoint = vpc.addInterfaceEndpoint('SecretsManagerEndpoint', {
        service: ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
        subnets: this.subnets,
        privateDnsEnabled: true,
        open: false,
      });
      // SQS: a backup that outlasts an invocation queues its next piece on the work queue.
      const sqsEndpoint = vpc.addInterfaceEndpoint('SqsEndpoint', {
        service: ec2.InterfaceVpcEndpointAwsService.SQS,
        subnets: this.subnets,
        privateDnsEnabled: true,
        open: false,
      });
      this.interfaceEndpoints = [eventsEndpoint, secretsEndpoint, sqsEndpoint];
      this.vpc = vpc;
      const fileSystem = new efs.FileSystem(this, 'FileSystem', {
        ...SECURE_FILE_SYSTEM_PROPS,
        vpc,
        vpcSubnets: this.subnets,
      });
      // In place of CDK's statement for denied anonymous access (ClientWrite and
      // ClientRootAccess for every principal): nothing beyond the roles' own grants.
      (fileSystem.node.defaultChild as efs.CfnFileSystem).fileSystemPolicy = tenantFileSystemPolicy();
      this.fileSystem = fileSystem;
    }

    this.accessPoint =
      props.existing?.accessPointId !== undefined
        ? efs.AccessPoint.fromAccessPointAttributes(this, 'AccessPoint', {
            accessPointId: props.existing.accessPointId,
            fileSystem: this.fileSystem,
          })
        : new efs.AccessPoint(this, 'AccessPoint', {
            fileSystem: this.fileSystem,
            path: tenantsPath,
            posixUser: { uid, gid },
            createAcl: { ownerUid: uid, ownerGid: gid, permissions: TENANTS_DIRECTORY_PERMISSIONS },
          });
  }

  /**
   * The access point as a Lambda file system mounted at `/mnt/tenants`, with the IAM
   * statements the function's role gets: mount (and, with `write`, write) this file system,
   * and only through this access point. (lambda.FileSystem.fromEfsAccessPoint grants
   * ClientMount on "*" and ClientWrite to every function alike.)
   */
  lambdaFileSystem(options: { readonly write: boolean }): lambda.FileSystem {
    const viaAccessPoint = { StringEquals: { 'elasticfilesystem:AccessPointArn': this.accessPoint.accessPointArn } };
    return new AccessPointFileSystem({
      localMountPath: TenantFileSystem.MOUNT_PATH,
      arn: this.accessPoint.accessPointArn,
      dependency: [this.fileSystem.mountTargetsAvailable],
      connections: this.fileSystem.connections,
      policies: [
        new iam.PolicyStatement({
          actions: ['elasticfilesystem:ClientMount', ...(options.write ? ['elasticfilesystem:ClientWrite'] : [])],
          resources: [this.fileSystem.fileSystemArn],
          conditions: viaAccessPoint,
        }),
      ],
    });
  }

  /**
   * Limits the S3 gateway endpoint of a created VPC to `bucketArns` (and their objects):
   * without a policy it lets the VPC reach every bucket of every account in the region,
   * e.g. one of a caller's own with keys of their own. A no-op when importing: the
   * gateway's VPC and its endpoints are the deployer's (infra/README.md shows the policy).
   */
  restrictS3Endpoint(bucketArns: readonly string[], deleter?: { readonly roleArn: string; readonly objectsArn: string }): void {
    this.s3Endpoint?.addToPolicy(
      new iam.PolicyStatement({
        sid: 'OnlyTheBackupBuckets',
        principals: [new iam.AnyPrincipal()],
        actions: [...S3_ENDPOINT_ACTIONS],
        resources: bucketArns.flatMap((arn) => [arn, `${arn}/*`]),
      }),
    );
    if (deleter === undefined) return;
    // Deleting archives is the prune role's alone, under the key prefix: no other caller in
    // the VPC gets a delete through the endpoint, whatever its own credentials allow.
    this.s3Endpoint?.addToPolicy(
      new iam.PolicyStatement({
        sid: 'OnlyThePruneRoleDeletes',
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:DeleteObject'],
        resources: [deleter.objectsArn],
        conditions: { ArnEquals: { 'aws:PrincipalArn': deleter.roleArn } },
      }),
    );
  }
}

/** lambda.FileSystem with statements of our choosing (its constructor is protected). */
class AccessPointFileSystem extends lambda.FileSystem {
  constructor(config: lambda.FileSystemConfig) {
    super(config);
  }
}

function validate(props: TenantFileSystemProps): void {
  const problems = new ProblemList('TenantFileSystem');
  const existing = props.existing;
  if (existing) {
    problems.check(
      RESOURCE_ID_PATTERNS.fileSystem.test(existing.fileSystemId),
      `fileSystemId ${JSON.stringify(existing.fileSystemId)} is not an EFS file system ID (fs-…)`,
    );
    problems.check(
      RESOURCE_ID_PATTERNS.securityGroup.test(existing.securityGroupId),
      `securityGroupId ${JSON.stringify(existing.securityGroupId)} is not a security group ID (sg-…)`,
    );
    problems.check(
      RESOURCE_ID_PATTERNS.vpc.test(existing.vpcId),
      `vpcId ${JSON.stringify(existing.vpcId)} is not a VPC ID (vpc-…)`,
    );
    problems.check(existing.subnetIds.length > 0, 'subnetIds must name at least one subnet when importing a file system');
    for (const subnetId of existing.subnetIds) {
      problems.check(RESOURCE_ID_PATTERNS.subnet.test(subnetId), `subnetIds: ${JSON.stringify(subnetId)} is not a subnet ID (subnet-…)`);
    }
    problems.check(
      new Set(existing.subnetIds).size === existing.subnetIds.length,
      'subnetIds must not repeat a subnet',
    );
    if (existing.accessPointId !== undefined) {
      problems.check(
        RESOURCE_ID_PATTERNS.accessPoint.test(existing.accessPointId),
        `accessPointId ${JSON.stringify(existing.accessPointId)} is not an access point ID (fsap-…)`,
      );
      problems.check(
        props.tenantsPath === undefined && props.posixUid === undefined && props.posixGid === undefined,
        'tenantsPath, posixUid and posixGid configure a new access point: omit them with an existing accessPointId',
      );
    }
    problems.check(props.maxAzs === undefined, 'maxAzs applies only to a created VPC, not to an imported file system');
  }
  if (props.tenantsPath !== undefined) {
    problems.check(
      isAbsoluteDirectory(props.tenantsPath),
      `tenantsPath ${JSON.stringify(props.tenantsPath)} must be an absolute directory below "/" without "." or ".." segments`,
    );
  }
  // 0 (root) is refused: the functions must not act as root on the gateway's volume.
  problems.integerInRange(props.posixUid, 'posixUid', 1, 4294967295);
  problems.integerInRange(props.posixGid, 'posixGid', 1, 4294967295);
  problems.integerInRange(props.maxAzs, 'maxAzs', 1, 6);
  problems.throwIfAny();
}
