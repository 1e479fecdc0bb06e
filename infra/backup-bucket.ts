// Where the backup archives live: a created bucket with the secure defaults (private,
// encrypted, TLS-only, versioned, retained, access-logged) or an existing bucket by name.
// The grants here are the only S3 access the functions get, each one limited to the
// backup key prefix and to the exact actions that side of the work needs.
//
// Against erasure (a compromised caller, or ransomware with the functions' rights): the
// backup role can add archives but never delete one (no s3:DeleteObject, no version
// actions), and unless the deployer allows overwrites its writes are conditional
// (If-None-Match), enforced by IAM, not only by the function. A created bucket can add S3
// Object Lock (no one, in compliance mode not even the account root, can delete a locked
// version before its retention ends) and replicate every new archive to a bucket in another
// account, out of reach of this account's credentials. Deleting old archives is the prune
// role's job alone (`grantPrune`): s3:DeleteObject on the key prefix, never a version action,
// so in the versioned bucket a prune adds delete markers and the data stays as noncurrent
// versions until the lifecycle rule expires them (and not before Object Lock allows).

import { Duration, FeatureFlags, Stack, Validations } from 'aws-cdk-lib';
import * as cxapi from 'aws-cdk-lib/cx-api';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import {
  ABORT_INCOMPLETE_MULTIPART_AFTER,
  DEFAULT_BACKUP_KEY_PREFIX,
  DEFAULT_NONCURRENT_VERSION_EXPIRATION_DAYS,
  SECURE_BUCKET_PROPS,
} from './secure-defaults.js';
import { ProblemList, bucketNameOf, isBucketName, isKeyPrefix } from './validation.js';

/** How a created bucket encrypts objects at rest. */
export enum BackupBucketEncryption {
  /** SSE-S3: no key to manage or pay for. */
  S3_MANAGED = 'S3_MANAGED',
  /** SSE-KMS with a customer managed key (rotated yearly) created with the bucket. */
  KMS = 'KMS',
}

/** S3 Object Lock retention modes (see the S3 user guide): governance can be lifted by a principal with s3:BypassGovernanceRetention, compliance by no one. */
export enum ObjectLockMode {
  GOVERNANCE = 'GOVERNANCE',
  COMPLIANCE = 'COMPLIANCE',
}

/** Default retention of every new archive version in a created bucket. */
export interface BackupObjectLock {
  readonly mode: ObjectLockMode;
  /** Days each new version stays locked (1 to 36500). */
  readonly retentionDays: number;
}

/** Replication of new archives to a bucket in another account. */
export interface BackupReplication {
  /** The destination bucket (name or ARN); versioned, and with Object Lock when the source has it. */
  readonly destinationBucket: string;
  /** The destination bucket's account (12 digits): replicas become its property. */
  readonly destinationAccount: string;
  /**
   * KMS key (ARN) the destination encrypts replicas with; required when the source bucket
   * is KMS-encrypted.
   * @default - the destination bucket's default encryption
   */
  readonly destinationKmsKeyArn?: string;
  /** Name of the replication role the destination account allows. */
  readonly roleName: string;
}

/** A KMS key's ARN (not an alias's: IAM grants name keys). */
const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]{36}$/;

/** Days server access logs are kept in the log bucket. */
export const ACCESS_LOG_EXPIRATION_DAYS = 365;

export interface BackupBucketProps {
  /**
   * Name of an existing bucket to store backups in; no bucket is created and the bucket's
   * own settings (encryption, versioning, lifecycle) are left as they are.
   * @default - a bucket is created
   */
  readonly existingBucketName?: string;
  /**
   * ARN of the KMS key an existing bucket encrypts with, so the functions can be granted it.
   * Only with `existingBucketName`.
   * @default - the existing bucket needs no KMS permissions (SSE-S3)
   */
  readonly existingBucketKmsKeyArn?: string;
  /**
   * ARNs of other KMS keys archives may be encrypted with (`tenants backup --sse aws:kms
   * --sse-kms-key-id KEY` in remote mode): the backup function is granted kms:GenerateDataKey
   * and kms:Decrypt on each (S3 needs both for a multipart upload), the restore and prune
   * functions kms:Decrypt. The bucket's own key needs no entry.
   * @default - none: only the bucket's key (and the AWS managed aws/s3)
   */
  readonly archiveKmsKeyArns?: readonly string[];
  /**
   * Encryption of a created bucket.
   * @default BackupBucketEncryption.S3_MANAGED
   */
  readonly encryption?: BackupBucketEncryption;
  /**
   * Key prefix the functions write backups under and read them from; ends in "/". The
   * functions get no access outside it.
   * @default 'backups/'
   */
  readonly keyPrefix?: string;
  /**
   * Days after which a backup under the key prefix expires (becomes a noncurrent version).
   * @default - backups never expire
   */
  readonly expirationDays?: number;
  /**
   * Days a noncurrent (overwritten or expired) backup version is kept before deletion.
   * @default 30
   */
  readonly noncurrentVersionExpirationDays?: number;
  /**
   * Write S3 server access logs of a created bucket to a separate log bucket.
   * @default true
   */
  readonly serverAccessLogs?: boolean;
  /**
   * S3 Object Lock on a created bucket: every new archive version is locked for the
   * retention period. Decide before the first deploy (enabling it on a bucket that exists
   * is not an in-place change).
   * @default - no Object Lock
   */
  readonly objectLock?: BackupObjectLock;
  /**
   * Replicate every new archive (under the key prefix) to a bucket in another account.
   * Delete markers are not replicated, and S3 replication never replicates the deletion
   * of a version.
   * @default - no replication
   */
  readonly replication?: BackupReplication;
}

export class BackupBucket extends Construct {
  readonly bucket: s3.IBucket;
  /** Key prefix backups live under (ends in "/"). */
  readonly keyPrefix: string;
  /** KMS key objects are encrypted with, when it is a customer managed key. */
  readonly encryptionKey?: kms.IKey;
  /** Other keys archives may be encrypted with (BackupBucketProps.archiveKmsKeyArns). */
  readonly archiveKeys: readonly kms.IKey[];
  /** Bucket receiving the server access logs, when created. */
  readonly accessLogsBucket?: s3.IBucket;
  /** The role S3 replicates with, when replication is configured. */
  readonly replicationRole?: iam.Role;

  constructor(scope: Construct, id: string, props: BackupBucketProps = {}) {
    super(scope, id);
    validate(props);
    this.keyPrefix = props.keyPrefix ?? DEFAULT_BACKUP_KEY_PREFIX;
    this.archiveKeys = (props.archiveKmsKeyArns ?? []).map((arn, index) => kms.Key.fromKeyArn(this, `ArchiveKey${index}`, arn));

    if (props.existingBucketName !== undefined) {
      this.bucket = s3.Bucket.fromBucketName(this, 'Bucket', props.existingBucketName);
      if (props.existingBucketKmsKeyArn !== undefined) {
        this.encryptionKey = kms.Key.fromKeyArn(this, 'BucketKey', props.existingBucketKmsKeyArn);
      }
      return;
    }

    if (props.serverAccessLogs ?? true) {
      // With the (recommended) feature flag, log delivery is allowed by a bucket policy and
      // ACLs stay off; without it, CDK grants log delivery through an ACL, which needs
      // object-writer ownership.
      const deliveryByPolicy = FeatureFlags.of(this).isEnabled(cxapi.S3_SERVER_ACCESS_LOGS_USE_BUCKET_POLICY) ?? false;
      const accessLogs = new s3.Bucket(this, 'AccessLogs', {
        ...SECURE_BUCKET_PROPS,
        // Log delivery writes SSE-S3 only, and logs are never overwritten: no versions.
        encryption: s3.BucketEncryption.S3_MANAGED,
        versioned: false,
        objectOwnership: deliveryByPolicy ? s3.ObjectOwnership.BUCKET_OWNER_ENFORCED : s3.ObjectOwnership.OBJECT_WRITER,
        lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(ACCESS_LOG_EXPIRATION_DAYS) }],
      });
      Validations.of(accessLogs).acknowledge({
        id: 'AwsSolutions-S1',
        reason: 'This is the server access log bucket of the backup bucket; logging it into itself would loop.',
      });
      this.accessLogsBucket = accessLogs;
    }

    const kmsEncrypted = props.encryption === BackupBucketEncryption.KMS;
    const key = kmsEncrypted
      ? new kms.Key(this, 'Key', {
          description: `Encrypts the tenant backups in ${Stack.of(this).stackName}`,
          enableKeyRotation: true,
          removalPolicy: SECURE_BUCKET_PROPS.removalPolicy,
        })
      : undefined;
    const noncurrentDays = props.noncurrentVersionExpirationDays ?? DEFAULT_NONCURRENT_VERSION_EXPIRATION_DAYS;
    const lifecycleRules: s3.LifecycleRule[] = [
      { id: 'abort-incomplete-multipart-uploads', abortIncompleteMultipartUploadAfter: ABORT_INCOMPLETE_MULTIPART_AFTER },
      {
        id: 'expire-noncurrent-versions',
        noncurrentVersionExpiration: Duration.days(noncurrentDays),
        expiredObjectDeleteMarker: true,
      },
    ];
    if (props.expirationDays !== undefined) {
      lifecycleRules.push({
        id: 'expire-backups',
        prefix: this.keyPrefix,
        expiration: Duration.days(props.expirationDays),
      });
    }
    const lock = props.objectLock;
    const replication = props.replication;
    const replicationRole =
      replication === undefined
        ? undefined
        : new iam.Role(this, 'ReplicationRole', {
            roleName: replication.roleName,
            assumedBy: new iam.ServicePrincipal('s3.amazonaws.com'),
            description: `Replicates the tenant backups of ${Stack.of(this).stackName} to ${bucketNameOf(replication.destinationBucket)}`,
          });
    const replicaBucket =
      replication === undefined
        ? undefined
        : s3.Bucket.fromBucketAttributes(this, 'ReplicaBucket', {
            bucketName: bucketNameOf(replication.destinationBucket)!,
            account: replication.destinationAccount,
          });
    const replicaKey =
      replication?.destinationKmsKeyArn === undefined ? undefined : kms.Key.fromKeyArn(this, 'ReplicaKey', replication.destinationKmsKeyArn);
    this.bucket = new s3.Bucket(this, 'Bucket', {
      ...SECURE_BUCKET_PROPS,
      ...(key ? { encryption: s3.BucketEncryption.KMS, encryptionKey: key, bucketKeyEnabled: true } : {}),
      lifecycleRules,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: this.accessLogsBucket ? 'backup-bucket/' : undefined,
      ...(lock !== undefined && {
        objectLockEnabled: true,
        objectLockDefaultRetention:
          lock.mode === ObjectLockMode.COMPLIANCE
            ? s3.ObjectLockRetention.compliance(Duration.days(lock.retentionDays))
            : s3.ObjectLockRetention.governance(Duration.days(lock.retentionDays)),
      }),
      ...(replicaBucket !== undefined && {
        replicationRole,
        replicationRules: [
          {
            id: 'replicate-backups',
            destination: replicaBucket,
            filter: { prefix: this.keyPrefix },
            // The destination account owns the replicas: this account's credentials cannot touch them.
            accessControlTransition: true,
            deleteMarkerReplication: false,
            // SSE-KMS objects (the bucket's key, or a key of archiveKmsKeyArns by --sse aws:kms) are replicated only when selected so.
            ...((key !== undefined || this.archiveKeys.length > 0) && { sseKmsEncryptedObjects: true }),
            ...(replicaKey !== undefined && { kmsKey: replicaKey }),
          },
        ],
      }),
    });
    this.encryptionKey = key;
    if (replicationRole !== undefined && replicaBucket !== undefined) {
      this.replicationRole = replicationRole;
      this.grantReplication(replicationRole, replicaBucket, replicaKey, lock !== undefined);
    }
    if (!this.accessLogsBucket) {
      Validations.of(this.bucket).acknowledge({
        id: 'AwsSolutions-S1',
        reason: 'Server access logging was turned off by configuration (serverAccessLogs: false) for this deployment.',
      });
    }
  }

  /** ARN pattern of every object under the key prefix. */
  objectsArn(): string {
    return this.bucket.arnForObjects(`${this.keyPrefix}*`);
  }

  /** The objects ARN as cdk-nag prints it in a finding ID (`<Logical.Arn>/prefix*`). */
  nagObjectsResource(): string {
    const cfnBucket = this.bucket.node.defaultChild;
    return cfnBucket instanceof s3.CfnBucket
      ? `<${Stack.of(this).getLogicalId(cfnBucket)}.Arn>/${this.keyPrefix}*`
      : `arn:<AWS::Partition>:s3:::${this.bucket.bucketName}/${this.keyPrefix}*`;
  }

  /**
   * What a backup needs (shared/storage/s3.ts): write archives (multipart), abort an
   * interrupted upload, tag the finished archive with its manifest digest (by version in a
   * versioned bucket), read an archive under the prefix (HeadObject and its one-byte GET
   * diagnosis need GetObject), and list the prefix so a missing key answers 404 instead of
   * 403. No s3:GetObjectTagging: the backup function reads no tags (`--skip-existing`, which
   * judges archives by theirs, is the CLI's; listings and verification are the restore
   * function's). Nothing that removes data: no s3:DeleteObject (not even a delete marker), no
   * version actions. Unless `allowOverwrite`, an object can only be created where none
   * exists: PutObject and CompleteMultipartUpload must carry If-None-Match (the function
   * sends it on AWS), CreateMultipartUpload and UploadPart (which cannot) are let through by
   * s3:ObjectCreationOperation, as the S3 user guide's "enforce conditional writes" shows.
   */
  grantBackupWrite(grantee: iam.IGrantable, options: { readonly allowOverwrite?: boolean } = {}): void {
    const objects = [this.objectsArn()];
    if (options.allowOverwrite === true) {
      iam.Grant.addToPrincipal({ grantee, actions: ['s3:PutObject'], resourceArns: objects });
    } else {
      grantee.grantPrincipal.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'CreateArchivesOnlyWhereNoneExists',
          actions: ['s3:PutObject'],
          resources: objects,
          conditions: { Null: { 's3:if-none-match': 'false' } },
        }),
      );
      grantee.grantPrincipal.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'UploadPartsOfNewArchives',
          actions: ['s3:PutObject'],
          resources: objects,
          conditions: { Bool: { 's3:ObjectCreationOperation': 'false' } },
        }),
      );
    }
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:PutObjectTagging', 's3:PutObjectVersionTagging', 's3:AbortMultipartUpload', 's3:GetObject'],
      resourceArns: objects,
    });
    this.grantListPrefix(grantee);
    for (const key of [this.encryptionKey, ...this.archiveKeys]) key?.grant(grantee, 'kms:GenerateDataKey', 'kms:Decrypt');
  }

  /**
   * What a restore needs: read (any version of) an archive under the prefix, and list it.
   * The restore function also answers `tenants backups` (the manifest-digest tag) and
   * `tenants verify`, which tags an archive it found intact (`openclaw-verified`, on the
   * version it read): tagging changes no archive's bytes and deletes nothing.
   */
  grantRestoreRead(grantee: iam.IGrantable): void {
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:GetObject', 's3:GetObjectVersion', 's3:GetObjectTagging', 's3:GetObjectVersionTagging', 's3:PutObjectTagging', 's3:PutObjectVersionTagging'],
      resourceArns: [this.objectsArn()],
    });
    this.grantListPrefix(grantee);
    for (const key of [this.encryptionKey, ...this.archiveKeys]) key?.grantDecrypt(grantee);
  }

  /**
   * What `tenants prune` needs, and only the prune function gets: list the prefix, read each
   * archive's first bytes, metadata and tags, read the bucket's versioning, Object Lock and
   * lifecycle settings and an archive's retention and legal hold (to refuse a removal Object
   * Lock forbids and to say what happens to noncurrent versions), and s3:DeleteObject on the
   * key prefix; and a killed backup's unfinished multipart uploads: list them (the bucket's
   * uploads: S3 has no prefix condition for that listing, and it shows keys and dates only),
   * list their parts and abort them under the key prefix, for a bucket of the deployer's
   * (`existingBucketName`) which no lifecycle rule of this stack cleans. No s3:DeleteObjectVersion, no s3:BypassGovernanceRetention, no
   * s3:PutLifecycleConfiguration: in the versioned bucket a removal is a delete marker, and
   * the data goes only when the bucket's own lifecycle says so.
   */
  grantPrune(grantee: iam.IGrantable): void {
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:GetObject', 's3:GetObjectTagging', 's3:GetObjectRetention', 's3:GetObjectLegalHold', 's3:DeleteObject', 's3:ListMultipartUploadParts', 's3:AbortMultipartUpload'],
      resourceArns: [this.objectsArn()],
    });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:GetBucketVersioning', 's3:GetBucketObjectLockConfiguration', 's3:GetLifecycleConfiguration', 's3:ListBucketMultipartUploads'],
      resourceArns: [this.bucket.bucketArn],
    });
    this.grantListPrefix(grantee);
    for (const key of [this.encryptionKey, ...this.archiveKeys]) key?.grantDecrypt(grantee);
  }

  /**
   * The replication role: read what it replicates (only under the key prefix), write
   * replicas to the destination, never delete there (no s3:ReplicateDelete: delete markers
   * stay in this bucket).
   */
  private grantReplication(role: iam.Role, destination: s3.IBucket, destinationKey: kms.IKey | undefined, objectLock: boolean): void {
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetReplicationConfiguration', 's3:ListBucket'],
        resources: [this.bucket.bucketArn],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: [
          's3:GetObjectVersionForReplication',
          's3:GetObjectVersionAcl',
          's3:GetObjectVersionTagging',
          // Replicas of locked versions carry their retention, which S3 reads with these.
          ...(objectLock ? ['s3:GetObjectRetention', 's3:GetObjectLegalHold'] : []),
        ],
        resources: [this.objectsArn()],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['s3:ReplicateObject', 's3:ReplicateTags', 's3:ObjectOwnerOverrideToBucketOwner'],
        resources: [destination.arnForObjects(`${this.keyPrefix}*`)],
      }),
    );
    for (const sourceKey of [this.encryptionKey, ...this.archiveKeys]) sourceKey?.grantDecrypt(role);
    destinationKey?.grant(role, 'kms:Encrypt', 'kms:GenerateDataKey');
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${this.nagObjectsResource()}]`,
      reason: 'S3 replication reads every new version under the backup key prefix: object names are chosen at run time.',
    });
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::${destination.bucketName}/${this.keyPrefix}*]`,
      reason: 'Replicas are written under the same key prefix in the destination bucket, with names chosen at run time.',
    });
  }

  private grantListPrefix(grantee: iam.IGrantable): void {
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:ListBucket'],
      resourceArns: [this.bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': [`${this.keyPrefix}*`] } },
    });
  }
}

function validate(props: BackupBucketProps): void {
  const problems = new ProblemList('BackupBucket');
  if (props.existingBucketName !== undefined) {
    problems.check(
      isBucketName(props.existingBucketName),
      `existingBucketName ${JSON.stringify(props.existingBucketName)} is not a valid S3 bucket name`,
    );
    for (const [name, value] of Object.entries({
      encryption: props.encryption,
      expirationDays: props.expirationDays,
      noncurrentVersionExpirationDays: props.noncurrentVersionExpirationDays,
      serverAccessLogs: props.serverAccessLogs,
      objectLock: props.objectLock,
      replication: props.replication,
    })) {
      problems.check(value === undefined, `${name} configures a created bucket: omit it with existingBucketName`);
    }
  }
  if (props.existingBucketKmsKeyArn !== undefined) {
    problems.check(props.existingBucketName !== undefined, 'existingBucketKmsKeyArn needs existingBucketName');
    problems.check(
      /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]{36}$/.test(props.existingBucketKmsKeyArn),
      `existingBucketKmsKeyArn ${JSON.stringify(props.existingBucketKmsKeyArn)} is not a KMS key ARN`,
    );
  }
  for (const arn of props.archiveKmsKeyArns ?? []) {
    problems.check(KMS_KEY_ARN.test(arn), `archiveKmsKeyArns: ${JSON.stringify(arn)} is not a KMS key ARN (an alias cannot be granted: give the key's ARN)`);
  }
  if (props.encryption !== undefined) {
    problems.check(
      Object.values(BackupBucketEncryption).includes(props.encryption),
      `encryption must be one of ${Object.values(BackupBucketEncryption).join(', ')}, got ${JSON.stringify(props.encryption)}`,
    );
  }
  if (props.keyPrefix !== undefined) {
    problems.check(
      isKeyPrefix(props.keyPrefix),
      `keyPrefix ${JSON.stringify(props.keyPrefix)} must be path-like and end in "/" (no leading "/", no empty, "." or ".." segments)`,
    );
  }
  if (props.objectLock !== undefined) {
    problems.check(
      Object.values(ObjectLockMode).includes(props.objectLock.mode),
      `objectLock.mode must be one of ${Object.values(ObjectLockMode).join(', ')}, got ${JSON.stringify(props.objectLock.mode)}`,
    );
    problems.integerInRange(props.objectLock.retentionDays, 'objectLock.retentionDays', 1, 36500);
  }
  const replication = props.replication;
  if (replication !== undefined) {
    problems.check(
      bucketNameOf(replication.destinationBucket) !== undefined,
      `replication.destinationBucket ${JSON.stringify(replication.destinationBucket)} is neither a bucket name nor a bucket ARN`,
    );
    problems.check(
      /^\d{12}$/.test(replication.destinationAccount),
      `replication.destinationAccount ${JSON.stringify(replication.destinationAccount)} must be a 12-digit account ID`,
    );
    if (replication.destinationKmsKeyArn !== undefined) {
      problems.check(
        /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]{36}$/.test(replication.destinationKmsKeyArn),
        `replication.destinationKmsKeyArn ${JSON.stringify(replication.destinationKmsKeyArn)} is not a KMS key ARN`,
      );
    }
    problems.check(
      props.encryption !== BackupBucketEncryption.KMS || replication.destinationKmsKeyArn !== undefined,
      'replication of a KMS-encrypted bucket needs replication.destinationKmsKeyArn (the key replicas are encrypted with in the destination)',
    );
    problems.check(
      (props.archiveKmsKeyArns ?? []).length === 0 || replication.destinationKmsKeyArn !== undefined,
      'replication of archives encrypted with archiveKmsKeyArns needs replication.destinationKmsKeyArn (the key replicas are encrypted with in the destination)',
    );
  }
  problems.integerInRange(props.expirationDays, 'expirationDays', 1, 36500);
  problems.integerInRange(props.noncurrentVersionExpirationDays, 'noncurrentVersionExpirationDays', 1, 36500);
  problems.throwIfAny();
}
