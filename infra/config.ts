// Reads the deployment configuration from CDK context (cdk.json, or `-c key=value` on the
// command line, where every value arrives as a string) into the stack's props. All keys are
// named `openclaw:<name>`; every problem is collected and reported at once. Defaults live in
// the constructs, not here: an absent key means "the construct's default".

import * as logs from 'aws-cdk-lib/aws-logs';
import { BackupBucketEncryption, ObjectLockMode } from './backup-bucket.js';
import { EFS_THROUGHPUT_MODES } from './backup-concurrency.js';
import { DEFAULT_PREFIX, type OpenClawBackupStackProps } from './stack.js';
import { InfraConfigError } from './validation.js';

/** The context keys the app reads, each `openclaw:<key>`. */
export const CONTEXT_KEYS = [
  'prefix',
  'stackName',
  // Tenant file system (import mode when fileSystemId is set).
  'fileSystemId',
  'securityGroupId',
  'vpcId',
  'subnetIds',
  'accessPointId',
  'tenantsPath',
  'posixUid',
  'posixGid',
  'maxAzs',
  // Backup bucket.
  'bucketName',
  'bucketKmsKeyArn',
  'archiveKmsKeyArns',
  'bucketEncryption',
  'backupKeyPrefix',
  'expirationDays',
  'noncurrentVersionExpirationDays',
  'serverAccessLogs',
  'objectLockMode',
  'objectLockRetentionDays',
  'replicationBucket',
  'replicationAccount',
  'replicationKmsKeyArn',
  'extraSourceBuckets',
  'extraSourceKmsKeyArns',
  'queueRedrivers',
  // What the functions may do and reach.
  'allowedEndpoints',
  'allowOverwrite',
  'encryptTo',
  'httpsEgress',
  // Functions.
  'architecture',
  'memorySizeMiB',
  'ephemeralStorageMiB',
  'logRetentionDays',
  'tracing',
  'reservedConcurrency',
  'functionsDir',
  // Events, schedules, notifications.
  'useDefaultEventBus',
  'notifications',
  'notificationEmail',
  'backupRetryAttempts',
  // All-tenant runs and freshness.
  'efsThroughputMode',
  'efsProvisionedMiBps',
  'efsStoredGiB',
  'backupConcurrency',
  'staleAfterHours',
] as const;
export type ContextKey = (typeof CONTEXT_KEYS)[number];

export interface BackupAppConfig {
  /** CloudFormation stack name. */
  readonly stackName: string;
  readonly props: OpenClawBackupStackProps;
}

// Every CloudWatch retention period except "never expire": logs are always bounded.
const RETENTION_DAYS = new Set<number>(
  Object.values(logs.RetentionDays).filter(
    (value): value is number => typeof value === 'number' && value !== logs.RetentionDays.INFINITE,
  ),
);

/**
 * Builds the stack configuration from `lookup(\`openclaw:${key}\`)`. `givenKeys` are the
 * context keys the deployer set: an `openclaw:` key this app does not read is refused, since a
 * misspelled one (`-c openclaw:fileSystemid=fs-…`) would otherwise be ignored in silence (a
 * standalone deploy instead of the gateway's file system).
 */
export function readConfig(lookup: (key: string) => unknown, givenKeys: Iterable<string> = []): BackupAppConfig {
  const problems: string[] = [];
  for (const given of givenKeys) {
    if (!given.startsWith('openclaw:') || (CONTEXT_KEYS as readonly string[]).includes(given.slice('openclaw:'.length))) continue;
    const near = nearestContextKey(given.slice('openclaw:'.length));
    problems.push(`${given} is not a context key of this app${near === undefined ? '' : ` (did you mean openclaw:${near}?)`}: infra/README.md lists them`);
  }
  const raw = (key: ContextKey): unknown => {
    const value = lookup(`openclaw:${key}`);
    return value === null || value === '' ? undefined : value;
  };
  const fail = (key: ContextKey, expected: string, value: unknown): undefined => {
    problems.push(`openclaw:${key} must be ${expected}, got ${JSON.stringify(value)}`);
    return undefined;
  };
  const str = (key: ContextKey): string | undefined => {
    const value = raw(key);
    return value === undefined || typeof value === 'string' ? value : fail(key, 'a string', value);
  };
  const int = (key: ContextKey): number | undefined => {
    const value = raw(key);
    if (value === undefined) return undefined;
    const parsed = typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
    return typeof parsed === 'number' && Number.isInteger(parsed) ? parsed : fail(key, 'an integer', value);
  };
  const bool = (key: ContextKey): boolean | undefined => {
    const value = raw(key);
    if (value === undefined || typeof value === 'boolean') return value;
    if (value === 'true' || value === 'false') return value === 'true';
    return fail(key, 'true or false', value);
  };
  const list = (key: ContextKey): string[] | undefined => {
    const value = raw(key);
    if (value === undefined) return undefined;
    if (typeof value === 'string') return value.split(',').map((item) => item.trim()).filter((item) => item !== '');
    if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value as string[];
    return fail(key, 'a list of strings (JSON array or comma-separated)', value);
  };
  const oneOf = <T extends string>(key: ContextKey, allowed: readonly T[]): T | undefined => {
    const value = str(key);
    if (value === undefined) return undefined;
    return (allowed as readonly string[]).includes(value) ? (value as T) : fail(key, `one of ${allowed.join(', ')}`, value);
  };

  const prefix = str('prefix') ?? DEFAULT_PREFIX;
  const stackName = str('stackName') ?? prefix;

  const fileSystemId = str('fileSystemId');
  const importKeys = { securityGroupId: str('securityGroupId'), vpcId: str('vpcId'), subnetIds: list('subnetIds') };
  const accessPointId = str('accessPointId');
  if (fileSystemId === undefined) {
    for (const [key, value] of Object.entries({ ...importKeys, accessPointId })) {
      if (value !== undefined) problems.push(`openclaw:${key} imports a file system: set openclaw:fileSystemId too`);
    }
  } else {
    for (const [key, value] of Object.entries(importKeys)) {
      if (value === undefined) problems.push(`openclaw:fileSystemId imports a file system: set openclaw:${key} too`);
    }
  }

  const logRetentionDays = int('logRetentionDays');
  if (logRetentionDays !== undefined && !RETENTION_DAYS.has(logRetentionDays)) {
    problems.push(
      `openclaw:logRetentionDays must be one of CloudWatch's retention periods (${[...RETENTION_DAYS].sort((a, b) => a - b).join(', ')}), got ${logRetentionDays}`,
    );
  }

  const objectLockMode = oneOf('objectLockMode', Object.values(ObjectLockMode));
  const objectLockRetentionDays = int('objectLockRetentionDays');
  if ((raw('objectLockMode') === undefined) !== (raw('objectLockRetentionDays') === undefined)) {
    problems.push('openclaw:objectLockMode and openclaw:objectLockRetentionDays go together: set both or neither');
  }
  const replicationBucket = str('replicationBucket');
  const replicationAccount = str('replicationAccount');
  const replicationKmsKeyArn = str('replicationKmsKeyArn');
  if (replicationBucket === undefined && (replicationAccount !== undefined || replicationKmsKeyArn !== undefined)) {
    problems.push('openclaw:replicationAccount and openclaw:replicationKmsKeyArn configure replication: set openclaw:replicationBucket too');
  }
  if (replicationBucket !== undefined && replicationAccount === undefined) {
    problems.push('openclaw:replicationBucket needs openclaw:replicationAccount (the destination bucket\'s 12-digit account ID)');
  }

  const throughputMode = oneOf('efsThroughputMode', EFS_THROUGHPUT_MODES);
  const provisionedMiBps = int('efsProvisionedMiBps');
  const storedGiB = int('efsStoredGiB');
  if (throughputMode === undefined && (provisionedMiBps !== undefined || storedGiB !== undefined)) {
    problems.push('openclaw:efsProvisionedMiBps and openclaw:efsStoredGiB describe the throughput mode: set openclaw:efsThroughputMode too');
  }
  if (throughputMode === 'provisioned' && provisionedMiBps === undefined) problems.push('openclaw:efsThroughputMode provisioned needs openclaw:efsProvisionedMiBps');

  const props: OpenClawBackupStackProps = {
    prefix,
    throughput: throughputMode === undefined ? undefined : { mode: throughputMode, provisionedMiBps, storedGiB },
    backupConcurrency: int('backupConcurrency'),
    staleAfterHours: int('staleAfterHours'),
    fileSystem: {
      existing:
        fileSystemId === undefined
          ? undefined
          : {
              fileSystemId,
              securityGroupId: importKeys.securityGroupId ?? '',
              vpcId: importKeys.vpcId ?? '',
              subnetIds: importKeys.subnetIds ?? [],
              accessPointId,
            },
      tenantsPath: str('tenantsPath'),
      posixUid: int('posixUid'),
      posixGid: int('posixGid'),
      maxAzs: int('maxAzs'),
      flowLogRetention: logRetentionDays as logs.RetentionDays | undefined,
    },
    bucket: {
      existingBucketName: str('bucketName'),
      existingBucketKmsKeyArn: str('bucketKmsKeyArn'),
      archiveKmsKeyArns: list('archiveKmsKeyArns'),
      encryption: oneOf('bucketEncryption', Object.values(BackupBucketEncryption)),
      keyPrefix: str('backupKeyPrefix'),
      expirationDays: int('expirationDays'),
      noncurrentVersionExpirationDays: int('noncurrentVersionExpirationDays'),
      serverAccessLogs: bool('serverAccessLogs'),
      objectLock:
        objectLockMode === undefined || objectLockRetentionDays === undefined
          ? undefined
          : { mode: objectLockMode, retentionDays: objectLockRetentionDays },
      replication:
        replicationBucket === undefined
          ? undefined
          : { destinationBucket: replicationBucket, destinationAccount: replicationAccount ?? '', destinationKmsKeyArn: replicationKmsKeyArn },
    },
    extraSourceBuckets: list('extraSourceBuckets'),
    extraSourceKmsKeyArns: list('extraSourceKmsKeyArns'),
    functions: {
      queueRedrivers: list('queueRedrivers'),
      architecture: oneOf('architecture', ['x86_64', 'arm64'] as const),
      memorySizeMiB: int('memorySizeMiB'),
      ephemeralStorageMiB: int('ephemeralStorageMiB'),
      logRetention: logRetentionDays as logs.RetentionDays | undefined,
      tracing: bool('tracing'),
      reservedConcurrency: int('reservedConcurrency'),
      functionsDir: str('functionsDir'),
      allowedEndpoints: list('allowedEndpoints'),
      allowOverwrite: bool('allowOverwrite'),
      encryptTo: list('encryptTo'),
      httpsEgress: list('httpsEgress'),
    },
    events: {
      useDefaultBus: bool('useDefaultEventBus'),
      notifications: bool('notifications'),
      notificationEmail: str('notificationEmail'),
    },
    schedules: { backupRetryAttempts: int('backupRetryAttempts') },
  };
  if (problems.length > 0) throw new InfraConfigError('cdk context', problems);
  return { stackName, props: withoutUndefined(props) };
}

/** The context key a misspelled one most likely meant: the same but for case, or at most two edits away. */
function nearestContextKey(key: string): ContextKey | undefined {
  const sameButCase = CONTEXT_KEYS.find((known) => known.toLowerCase() === key.toLowerCase());
  if (sameButCase !== undefined) return sameButCase;
  let best: { key: ContextKey; distance: number } | undefined;
  for (const known of CONTEXT_KEYS) {
    const distance = editDistance(key.toLowerCase(), known.toLowerCase());
    if (distance <= 2 && (best === undefined || distance < best.distance)) best = { key: known, distance };
  }
  return best?.key;
}

/** Levenshtein distance. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}

/** Drops undefined members so that spreading the props never overrides a construct default. */
function withoutUndefined<T>(value: T): T {
  if (Array.isArray(value) || value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, member]) => member !== undefined)
    .map(([key, member]) => [key, withoutUndefined(member)]);
  return Object.fromEntries(entries) as T;
}
