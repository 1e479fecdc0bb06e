// Where the backup archives live: a created bucket with the secure defaults (private,
// encrypted, TLS-only, versioned, retained, access-logged) or an existing bucket by name.
// The grants here are the only S3 access the functions get, each one limited to the
// backup key prefix and to the exact actions that side of the work needs.

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
import { ProblemList, isBucketName, isKeyPrefix } from './validation.js';

/** How a created bucket encrypts objects at rest. */
export enum BackupBucketEncryption {
  /** SSE-S3: no key to manage or pay for. */
  S3_MANAGED = 'S3_MANAGED',
  /** SSE-KMS with a customer managed key (rotated yearly) created with the bucket. */
  KMS = 'KMS',
}

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
}

export class BackupBucket extends Construct {
  readonly bucket: s3.IBucket;
  /** Key prefix backups live under (ends in "/"). */
  readonly keyPrefix: string;
  /** KMS key objects are encrypted with, when it is a customer managed key. */
  readonly encryptionKey?: kms.IKey;
  /** Bucket receiving the server access logs, when created. */
  readonly accessLogsBucket?: s3.IBucket;

  constructor(scope: Construct, id: string, props: BackupBucketProps = {}) {
    super(scope, id);
    validate(props);
    this.keyPrefix = props.keyPrefix ?? DEFAULT_BACKUP_KEY_PREFIX;

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
    this.bucket = new s3.Bucket(this, 'Bucket', {
      ...SECURE_BUCKET_PROPS,
      ...(key ? { encryption: s3.BucketEncryption.KMS, encryptionKey: key, bucketKeyEnabled: true } : {}),
      lifecycleRules,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: this.accessLogsBucket ? 'backup-bucket/' : undefined,
    });
    this.encryptionKey = key;
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
   * What a backup needs (shared/storage/s3.ts): write archives (multipart, conditional
   * If-None-Match), abort an interrupted upload, tag the finished archive with its manifest
   * digest (by version in a versioned bucket), remove an upload it could not tag, read an
   * archive under the prefix (HeadObject and its one-byte GET diagnosis need GetObject), and
   * list the prefix so a missing key answers 404 instead of 403. No s3:DeleteObjectVersion:
   * the function can hide an archive behind a delete marker, never destroy a version.
   */
  grantBackupWrite(grantee: iam.IGrantable): void {
    iam.Grant.addToPrincipal({
      grantee,
      actions: [
        's3:PutObject',
        's3:PutObjectTagging',
        's3:PutObjectVersionTagging',
        's3:AbortMultipartUpload',
        's3:GetObject',
        's3:DeleteObject',
      ],
      resourceArns: [this.objectsArn()],
    });
    this.grantListPrefix(grantee);
    this.encryptionKey?.grant(grantee, 'kms:GenerateDataKey', 'kms:Decrypt');
  }

  /** What a restore needs: read (any version of) an archive under the prefix, and list it. */
  grantRestoreRead(grantee: iam.IGrantable): void {
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:GetObject', 's3:GetObjectVersion'],
      resourceArns: [this.objectsArn()],
    });
    this.grantListPrefix(grantee);
    this.encryptionKey?.grantDecrypt(grantee);
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
  problems.integerInRange(props.expirationDays, 'expirationDays', 1, 36500);
  problems.integerInRange(props.noncurrentVersionExpirationDays, 'noncurrentVersionExpirationDays', 1, 36500);
  problems.throwIfAny();
}
