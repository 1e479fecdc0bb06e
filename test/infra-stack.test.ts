// The composed stack as CloudFormation: functions on the access point, least-privilege IAM,
// bucket defaults, schedule permission, dead-letter queue, alarms, events and outputs.
// Each test builds a fresh app from cdk.json's context with bundling skipped.

import { Match, Template } from 'aws-cdk-lib/assertions';
import { afterAll, describe, expect, it } from 'vitest';
import { fixtureApp, removeTestOutdirs } from '../infra/fixtures/app.js';
import { OUTPUT_NAMES } from '../infra/stack.js';
import { THREAD_POOL_SIZE } from '../shared/file-access.js';

afterAll(removeTestOutdirs);

/** Object actions of the backup function besides s3:PutObject, in the order CDK renders them. */
const BACKUP_OBJECT_ACTIONS = ['s3:AbortMultipartUpload', 's3:GetObject', 's3:PutObjectTagging', 's3:PutObjectVersionTagging'];
/** Anything that removes an archive or a version of one. */
const ERASING_ACTIONS = ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:DeleteObjectTagging', 's3:PutLifecycleConfiguration', 's3:PutBucketVersioning', 's3:BypassGovernanceRetention', 's3:PutObjectRetention', 's3:ReplicateDelete'];

type Statement = { Action: string | string[]; Resource: unknown; Effect: string; Condition?: unknown; Sid?: string };
type Resource = { Type: string; Properties: Record<string, unknown>; DeletionPolicy?: string };
type PolicyStatement = Statement & { Principal: unknown; Condition: Record<string, Record<string, unknown[]>> };

/**
 * Whether a Deny statement applies to a request, as IAM evaluates it: every operator must hold.
 * Only the operators the stack uses; any other throws, so a changed statement is evaluated anew.
 * Tokens (a role's `Fn::GetAtt`) compare by their JSON.
 */
function deniedBy(statement: PolicyStatement, request: Record<string, unknown[]>): boolean {
  expect(statement.Effect).toBe('Deny');
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  return Object.entries(statement.Condition).every(([operator, keys]) =>
    Object.entries(keys).every(([key, values]) => {
      const present = request[key] ?? [];
      switch (operator) {
        case 'ForAnyValue:StringEquals':
          return present.some((value) => values.some((wanted) => same(value, wanted)));
        case 'ArnNotEquals':
          // A negated operator over a list: true when the request's value matches none of them.
          expect(present).toHaveLength(1);
          return !values.some((wanted) => same(present[0], wanted));
        default:
          throw new Error(`no evaluation for ${operator}`);
      }
    }),
  );
}

function template(context: Record<string, unknown> = {}): Template {
  return Template.fromStack(fixtureApp(context).stack);
}

function resourcesOf(t: Template, type: string): Record<string, Resource> {
  return t.findResources(type) as Record<string, Resource>;
}

/** The logical ID of the one resource of `type` whose properties match. */
function logicalId(t: Template, type: string, props: Record<string, unknown> = {}): string {
  const ids = Object.keys(t.findResources(type, { Properties: Match.objectLike(props) }));
  expect(ids).toHaveLength(1);
  return ids[0]!;
}

/** Statements of the default policy attached to the role of the function named `name`. */
function functionStatements(t: Template, functionName: string): Statement[] {
  const fnId = logicalId(t, 'AWS::Lambda::Function', { FunctionName: functionName });
  const fn = resourcesOf(t, 'AWS::Lambda::Function')[fnId]!;
  const roleRef = (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  const policies = Object.values(resourcesOf(t, 'AWS::IAM::Policy')).filter((policy) =>
    (policy.Properties.Roles as { Ref: string }[]).some((role) => role.Ref === roleRef),
  );
  return policies.flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
}

function actionsOf(statements: Statement[]): string[] {
  return statements.flatMap((statement) => [statement.Action].flat());
}

function allStatements(t: Template): Statement[] {
  const docs = [
    ...Object.values(resourcesOf(t, 'AWS::IAM::Policy')).map((p) => p.Properties.PolicyDocument),
    ...Object.values(resourcesOf(t, 'AWS::IAM::ManagedPolicy')).map((p) => p.Properties.PolicyDocument),
  ] as { Statement: Statement[] }[];
  return docs.flatMap((doc) => doc.Statement);
}

describe('functions', () => {
  it('creates backup, restore, list and prune on Node.js 24, arm64, in the VPC, each told the vCPUs its memory buys', () => {
    const t = template();
    for (const [name, timeout, memory] of [
      ['openclaw-backup-backup', 900, 2048],
      ['openclaw-backup-restore', 900, 2048],
      ['openclaw-backup-list', 60, 256],
      // Prune inspects each archive under its prefix: 100,000 need 164 s of CPU, past the timeout at 256 MiB's 0.14 vCPU.
      ['openclaw-backup-prune', 900, 1024],
    ] as const) {
      t.hasResourceProperties('AWS::Lambda::Function', {
        FunctionName: name,
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        // 1,769 MB buys one vCPU: 2048 → 1, 1024 → 1, 256 → 1 (at least one).
        Environment: { Variables: Match.objectLike({ OPENCLAW_CPUS: '1' }) },
        Handler: 'index.handler',
        Timeout: timeout,
        MemorySize: memory,
        VpcConfig: Match.objectLike({ SubnetIds: Match.anyValue(), SecurityGroupIds: Match.anyValue() }),
        LoggingConfig: Match.objectLike({ LogFormat: 'JSON' }),
      });
    }
    t.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'openclaw-backup-backup',
      EphemeralStorage: { Size: 2048 },
    });
  });

  it('runs every function of the stack, CDK\'s custom resource handlers included, on Node.js 24 and one architecture', () => {
    for (const arch of ['arm64', 'x86_64']) {
      const functions = Object.values(resourcesOf(template({ 'openclaw:architecture': arch }), 'AWS::Lambda::Function'));
      expect(functions.length).toBeGreaterThanOrEqual(5);
      for (const fn of functions) {
        expect(fn.Properties.Runtime).toBe('nodejs24.x');
        expect(fn.Properties.Architectures).toEqual([arch]);
      }
    }
  });

  it('mounts the tenant access point at /mnt/tenants in every function on the volume, and in no coordinating one nor prune', () => {
    const t = template();
    const accessPoint = logicalId(t, 'AWS::EFS::AccessPoint');
    const named = Object.values(resourcesOf(t, 'AWS::Lambda::Function')).filter((fn) => typeof fn.Properties.FunctionName === 'string');
    expect(named.map((fn) => fn.Properties.FunctionName).sort()).toEqual([
      'openclaw-backup-backup',
      'openclaw-backup-fanout',
      'openclaw-backup-list',
      'openclaw-backup-monitor',
      'openclaw-backup-prune',
      'openclaw-backup-restore',
    ]);
    // The fan-out and the monitor run outside the VPC and never see the tenants' files; prune works on S3 only.
    for (const fn of named.filter((candidate) => /-(fanout|monitor)$/.test(candidate.Properties.FunctionName as string))) {
      expect(fn.Properties.FileSystemConfigs).toBeUndefined();
      expect(fn.Properties.VpcConfig).toBeUndefined();
    }
    expect(named.find((fn) => fn.Properties.FunctionName === 'openclaw-backup-prune')!.Properties.FileSystemConfigs).toBeUndefined();
    // Lambda's recursive loop detection stops an SQS → function → same queue chain at about its
    // 16th invocation: a backup in pieces (each next piece queued on the work queue) is one, and
    // so is a restore in pieces (on the restore queue).
    expect(named.map((fn) => [fn.Properties.FunctionName, fn.Properties.RecursiveLoop])).toEqual(
      named.map((fn) => [fn.Properties.FunctionName, /-(backup|restore)$/.test(fn.Properties.FunctionName as string) ? 'Allow' : undefined]),
    );
    const functions = named.filter((fn) => !/-(fanout|monitor|prune)$/.test(fn.Properties.FunctionName as string));
    expect(functions).toHaveLength(3);
    for (const fn of functions) {
      expect(fn.Properties.FileSystemConfigs).toEqual([
        {
          Arn: {
            'Fn::Join': [
              '',
              [
                'arn:',
                { Ref: 'AWS::Partition' },
                ':elasticfilesystem:',
                { Ref: 'AWS::Region' },
                ':',
                { Ref: 'AWS::AccountId' },
                ':access-point/',
                { Ref: accessPoint },
              ],
            ],
          },
          LocalMountPath: '/mnt/tenants',
        },
      ]);
    }
  });

  it('gives every function the configuration environment', () => {
    const t = template();
    const bucket = logicalId(t, 'AWS::S3::Bucket', { VersioningConfiguration: { Status: 'Enabled' } });
    const bus = logicalId(t, 'AWS::Events::EventBus');
    for (const name of ['backup', 'restore', 'list']) {
      t.hasResourceProperties('AWS::Lambda::Function', {
        FunctionName: `openclaw-backup-${name}`,
        Environment: {
          Variables: Match.objectLike({
            OPENCLAW_TENANTS_DIR: '/mnt/tenants',
            OPENCLAW_BACKUP_BUCKET: { Ref: bucket },
            OPENCLAW_BACKUP_PREFIX: 'backups/',
            OPENCLAW_EVENT_BUS: { Ref: bus },
            OPENCLAW_STACK_PREFIX: 'openclaw-backup',
            OPENCLAW_ALLOWED_SOURCE_BUCKETS: '',
            // The allow-list default: no S3-compatible endpoint; no overwrite.
            OPENCLAW_ALLOWED_ENDPOINTS: '',
            OPENCLAW_ALLOW_OVERWRITE: 'false',
            // No stack recipients: each request decides whether its archive is encrypted.
            OPENCLAW_ENCRYPT_TO: '',
            // Bounded AWS clients in the functions (functions/aws-clients.ts).
            OPENCLAW_CONNECT_TIMEOUT_MS: '3000',
            OPENCLAW_REQUEST_TIMEOUT_MS: '10000',
            POWERTOOLS_SERVICE_NAME: 'openclaw-backup',
            NODE_OPTIONS: `--enable-source-maps --max-semi-space-size=${name === 'restore' ? 2 : 4}`,
            MALLOC_ARENA_MAX: '2',
            // As bin/openclaw.js: zstd's frame buffers stay in the heap between frames.
            MALLOC_MMAP_THRESHOLD_: '8388608',
            MALLOC_TRIM_THRESHOLD_: '33554432',
            // The pool the core's calls to EFS are sized for (shared/file-access.ts).
            UV_THREADPOOL_SIZE: String(THREAD_POOL_SIZE),
          }),
        },
      });
    }
  });

  it('takes architecture, memory and storage from context, also as strings from -c', () => {
    const t = template({
      'openclaw:architecture': 'x86_64',
      'openclaw:memorySizeMiB': '3538',
      'openclaw:ephemeralStorageMiB': 4096,
      'openclaw:reservedConcurrency': '4',
      'openclaw:tracing': 'true',
    });
    t.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'openclaw-backup-backup',
      Architectures: ['x86_64'],
      MemorySize: 3538,
      Environment: { Variables: Match.objectLike({ OPENCLAW_CPUS: '2' }) },
      EphemeralStorage: { Size: 4096 },
      ReservedConcurrentExecutions: 4,
      TracingConfig: { Mode: 'Active' },
    });
  });

  it('passes the allowed S3-compatible endpoints when configured', () => {
    const t = template({ 'openclaw:allowedEndpoints': 'https://minio.internal:9443,https://s3.example.com,https://proxy.internal/minio-a' });
    t.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'openclaw-backup-restore',
      Environment: {
        Variables: Match.objectLike({ OPENCLAW_ALLOWED_ENDPOINTS: 'https://minio.internal:9443,https://s3.example.com,https://proxy.internal/minio-a' }),
      },
    });
  });

  it('keeps every function\'s logs and the flow logs for logRetentionDays, in log groups the stack made', () => {
    const t = template({ 'openclaw:logRetentionDays': 90 });
    const groups = resourcesOf(t, 'AWS::Logs::LogGroup');
    expect(Object.keys(groups).length).toBeGreaterThanOrEqual(3);
    for (const [id, group] of Object.entries(groups)) expect({ id, retention: group.Properties.RetentionInDays }).toEqual({ id, retention: 90 });
    // CDK's own helper functions included: a function without a log group of its own logs to
    // one Lambda creates on first use, kept forever.
    for (const [id, fn] of Object.entries(resourcesOf(t, 'AWS::Lambda::Function'))) {
      const logGroup = (fn.Properties.LoggingConfig as { LogGroup?: { Ref: string } } | undefined)?.LogGroup;
      expect({ id, logGroup: logGroup !== undefined && groups[logGroup.Ref] !== undefined }).toEqual({ id, logGroup: true });
    }
  });
});

describe('least-privilege IAM', () => {
  it('grants no wildcard actions and no S3 action on every resource', () => {
    const t = template({ 'openclaw:extraSourceBuckets': ['other-account-backups'] });
    for (const statement of allStatements(t)) {
      const actions = [statement.Action].flat();
      expect(actions).not.toContain('*');
      expect(actions).not.toContain('s3:*');
      for (const action of actions) expect(action.endsWith('*') && action.startsWith('s3:')).toBe(false);
      if (actions.some((action) => action.startsWith('s3:'))) {
        expect([statement.Resource].flat()).not.toContain('*');
      }
    }
  });

  it('lets the backup function create, tag, abort and read archives under the prefix only, never delete', () => {
    const t = template();
    const bucket = logicalId(t, 'AWS::S3::Bucket', { VersioningConfiguration: { Status: 'Enabled' } });
    const objects = { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucket, 'Arn'] }, '/backups/*']] };
    const statements = functionStatements(t, 'openclaw-backup-backup');
    expect(statements).toContainEqual({ Effect: 'Allow', Action: BACKUP_OBJECT_ACTIONS, Resource: objects });
    // Creating only where nothing exists: If-None-Match on PutObject and CompleteMultipartUpload,
    // the multipart steps that cannot carry it let through by s3:ObjectCreationOperation.
    expect(statements.filter((statement) => [statement.Action].flat().includes('s3:PutObject'))).toEqual([
      { Sid: 'CreateArchivesOnlyWhereNoneExists', Effect: 'Allow', Action: 's3:PutObject', Resource: objects, Condition: { Null: { 's3:if-none-match': 'false' } } },
      { Sid: 'UploadPartsOfNewArchives', Effect: 'Allow', Action: 's3:PutObject', Resource: objects, Condition: { Bool: { 's3:ObjectCreationOperation': 'false' } } },
    ]);
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: 's3:ListBucket',
      Resource: { 'Fn::GetAtt': [bucket, 'Arn'] },
      Condition: { StringLike: { 's3:prefix': ['backups/*'] } },
    });
    expect(new Set(actionsOf(statements).filter((action) => action.startsWith('s3:')))).toEqual(new Set([...BACKUP_OBJECT_ACTIONS, 's3:PutObject', 's3:ListBucket']));
  });

  it('gives no function role anything that erases an archive or a version, whatever the configuration', () => {
    for (const context of [{}, { 'openclaw:allowOverwrite': true }, { 'openclaw:bucketName': 'gateway-backups', 'openclaw:extraSourceBuckets': ['other-account-backups'] }]) {
      const t = template(context);
      for (const name of ['backup', 'restore', 'list']) {
        const actions = actionsOf(functionStatements(t, `openclaw-backup-${name}`));
        expect(actions.filter((action) => ERASING_ACTIONS.includes(action) || action === 's3:*' || action === 's3:Delete*'), name).toEqual([]);
      }
      // The prune function deletes archives (delete markers in a versioned bucket), nothing more.
      const prune = actionsOf(functionStatements(t, 'openclaw-backup-prune'));
      expect(prune.filter((action) => ERASING_ACTIONS.includes(action) || action === 's3:*' || action === 's3:Delete*')).toEqual(['s3:DeleteObject']);
    }
  });

  it('lets the backup function overwrite only when the deployer allows it', () => {
    const t = template({ 'openclaw:allowOverwrite': 'true' });
    const statements = functionStatements(t, 'openclaw-backup-backup');
    const puts = statements.filter((statement) => [statement.Action].flat().includes('s3:PutObject'));
    expect(puts).toEqual([expect.objectContaining({ Action: expect.arrayContaining(['s3:PutObject', ...BACKUP_OBJECT_ACTIONS]) as unknown, Effect: 'Allow' })]);
    expect(puts[0]!.Condition).toBeUndefined();
    expect(actionsOf(statements)).not.toContain('s3:DeleteObject');
    t.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'openclaw-backup-backup',
      Environment: { Variables: Match.objectLike({ OPENCLAW_ALLOW_OVERWRITE: 'true' }) },
    });
  });

  it('passes the stack\'s encryptTo recipients to the functions, which encrypt every backup to them', () => {
    const keys = ['age1dmqqd5yzwc3dd7alql6qz5d0llckewh6l8l9yyrn48snc6cuh59qlh9ucm', 'age1pelu9rzm4jpmkyk7tms7w5nm3jdruxjysh92y5cld8ltxwkn2ensgrwe3d'];
    for (const context of [{ 'openclaw:encryptTo': keys }, { 'openclaw:encryptTo': keys.join(',') }]) {
      const t = template(context);
      // The backup function (direct, scheduled, queued backups) and the fan-out (its queued messages and its answer).
      for (const name of ['backup', 'fanout']) {
        t.hasResourceProperties('AWS::Lambda::Function', {
          FunctionName: `openclaw-backup-${name}`,
          Environment: { Variables: Match.objectLike({ OPENCLAW_ENCRYPT_TO: keys.join(',') }) },
        });
      }
    }
    expect(() => template({ 'openclaw:encryptTo': [keys[0], 'age1nope'] })).toThrow(/encryptTo: .*age1nope/);
  });

  it('lets the prune function alone delete, and only under the key prefix, without a file system or version actions', () => {
    const t = template();
    const bucket = logicalId(t, 'AWS::S3::Bucket', { VersioningConfiguration: { Status: 'Enabled' } });
    const statements = functionStatements(t, 'openclaw-backup-prune');
    const deleting = statements.filter((statement) => [statement.Action].flat().includes('s3:DeleteObject'));
    expect(deleting).toEqual([
      expect.objectContaining({
        // A killed backup's unfinished uploads too (tenants prune aborts them: a bucket of the deployer's has no lifecycle rule of ours).
        Action: ['s3:AbortMultipartUpload', 's3:DeleteObject', 's3:GetObject', 's3:GetObjectLegalHold', 's3:GetObjectRetention', 's3:GetObjectTagging', 's3:ListMultipartUploadParts'],
        Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucket, 'Arn'] }, '/backups/*']] },
      }),
    ]);
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: ['s3:GetBucketObjectLockConfiguration', 's3:GetBucketVersioning', 's3:GetLifecycleConfiguration', 's3:ListBucketMultipartUploads'],
        Resource: { 'Fn::GetAtt': [bucket, 'Arn'] },
      }),
    );
    expect(statements).toContainEqual(
      expect.objectContaining({ Action: 's3:ListBucket', Condition: { StringLike: { 's3:prefix': ['backups/*'] } } }),
    );
    const actions = actionsOf(statements);
    expect(actions.filter((action) => action.startsWith('s3:') && /ObjectVersion|Bypass|Put/.test(action))).toEqual([]);
    expect(actions.filter((action) => action.startsWith('elasticfilesystem:'))).toEqual([]);
    const roleId = logicalId(t, 'AWS::IAM::Role', { RoleName: { 'Fn::Join': ['', ['openclaw-backup-prune-', { Ref: 'AWS::Region' }]] } });
    t.hasResourceProperties('AWS::Lambda::Function', { FunctionName: 'openclaw-backup-prune', Role: { 'Fn::GetAtt': [roleId, 'Arn'] } });
  });

  it('lets the restore function read, from the backup bucket and the extra source buckets, and tag (verify) under the prefix', () => {
    const t = template({
      'openclaw:extraSourceBuckets': 'other-account-backups, arn:aws:s3:::second-source',
    });
    const statements = functionStatements(t, 'openclaw-backup-restore');
    const s3Actions = actionsOf(statements).filter((action) => action.startsWith('s3:'));
    expect(new Set(s3Actions)).toEqual(
      new Set(['s3:GetObject', 's3:GetObjectVersion', 's3:ListBucket', 's3:GetObjectTagging', 's3:GetObjectVersionTagging', 's3:PutObjectTagging', 's3:PutObjectVersionTagging']),
    );
    const tagging = statements.filter((statement) => [statement.Action].flat().includes('s3:PutObjectTagging'));
    expect(tagging.map((statement) => statement.Resource)).toEqual([{ 'Fn::Join': ['', [{ 'Fn::GetAtt': [logicalId(t, 'AWS::S3::Bucket', { VersioningConfiguration: { Status: 'Enabled' } }), 'Arn'] }, '/backups/*']] }]);
    for (const name of ['other-account-backups', 'second-source']) {
      expect(statements).toContainEqual(
        expect.objectContaining({
          Action: ['s3:GetObject', 's3:GetObjectVersion'],
          Resource: expect.arrayContaining([
            { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:s3:::${name}/*`]] },
          ]) as unknown,
        }),
      );
      expect(statements).toContainEqual(
        expect.objectContaining({
          Action: 's3:ListBucket',
          Resource: expect.arrayContaining([
            { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:s3:::${name}`]] },
          ]) as unknown,
        }),
      );
    }
    const bucket = logicalId(t, 'AWS::S3::Bucket', { VersioningConfiguration: { Status: 'Enabled' } });
    t.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'openclaw-backup-restore',
      Environment: {
        Variables: Match.objectLike({
          OPENCLAW_ALLOWED_SOURCE_BUCKETS: 'other-account-backups,second-source',
          OPENCLAW_BACKUP_BUCKET: { Ref: bucket },
        }),
      },
    });
  });

  it('grants the restore function decrypt on the extra source keys', () => {
    const keyArn = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const t = template({ 'openclaw:extraSourceBuckets': ['other-account-backups'], 'openclaw:extraSourceKmsKeyArns': [keyArn] });
    expect(functionStatements(t, 'openclaw-backup-restore')).toContainEqual(
      expect.objectContaining({ Action: 'kms:Decrypt', Resource: keyArn }),
    );
  });

  it('gives the list function no S3, no events access, and no write access to the file system', () => {
    const t = template({ 'openclaw:extraSourceBuckets': ['other-account-backups'] });
    const actions = actionsOf(functionStatements(t, 'openclaw-backup-list'));
    expect(actions.filter((action) => action.startsWith('s3:') || action.startsWith('events:') || action.startsWith('kms:'))).toEqual([]);
    expect(actions).toEqual(['elasticfilesystem:ClientMount']);
    expect(actions).not.toContain('elasticfilesystem:ClientWrite');
  });

  it('reaches the file system only through the access point, naming the file system (no wildcard)', () => {
    const t = template();
    const accessPoint = logicalId(t, 'AWS::EFS::AccessPoint');
    const fileSystem = logicalId(t, 'AWS::EFS::FileSystem');
    for (const [name, actions] of [
      ['backup', ['elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite']],
      ['restore', ['elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite']],
      ['list', 'elasticfilesystem:ClientMount'],
    ] as const) {
      const efsStatements = functionStatements(t, `openclaw-backup-${name}`).filter((statement) =>
        [statement.Action].flat().some((action) => action.startsWith('elasticfilesystem:')),
      );
      expect(efsStatements).toEqual([
        {
          Effect: 'Allow',
          Action: actions,
          Resource: { 'Fn::GetAtt': [fileSystem, 'Arn'] },
          Condition: { StringEquals: { 'elasticfilesystem:AccessPointArn': expect.anything() as unknown } },
        },
      ]);
      expect(JSON.stringify(efsStatements[0]!.Condition)).toContain(accessPoint);
    }
    // No function role holds a statement on every resource (X-Ray's, with tracing, aside).
    for (const name of ['backup', 'restore', 'list']) {
      for (const statement of functionStatements(t, `openclaw-backup-${name}`)) expect([statement.Resource].flat()).not.toContain('*');
    }
  });

  it('names each function role <prefix>-<function>-<region>, so other accounts can rely on it', () => {
    const t = template({ 'openclaw:prefix': 'acme-bak' });
    for (const name of ['backup', 'restore', 'list']) {
      const fn = resourcesOf(t, 'AWS::Lambda::Function')[logicalId(t, 'AWS::Lambda::Function', { FunctionName: `acme-bak-${name}` })]!;
      const roleId = (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
      expect(resourcesOf(t, 'AWS::IAM::Role')[roleId]!.Properties.RoleName).toEqual({ 'Fn::Join': ['', [`acme-bak-${name}-`, { Ref: 'AWS::Region' }]] });
    }
    const restoreRole = logicalId(t, 'AWS::IAM::Role', { RoleName: { 'Fn::Join': ['', ['acme-bak-restore-', { Ref: 'AWS::Region' }]] } });
    t.hasOutput('RestoreRoleArn', { Value: { 'Fn::GetAtt': [restoreRole, 'Arn'] }, Export: { Name: 'acme-bak-RestoreRoleArn' } });
  });

  it('lets backup and restore, not list, publish completion events to the bus', () => {
    const t = template();
    const bus = logicalId(t, 'AWS::Events::EventBus');
    for (const name of ['backup', 'restore']) {
      expect(functionStatements(t, `openclaw-backup-${name}`)).toContainEqual({
        Effect: 'Allow',
        Action: 'events:PutEvents',
        Resource: { 'Fn::GetAtt': [bus, 'Arn'] },
      });
    }
  });

  // Closing note of stop 46, "Left": any principal of the account allowed events:PutEvents on the bus (a `Resource: "*"` policy)
  // could publish `OpenClaw Backup Succeeded` for a tenant and keep the freshness alarm quiet.
  it('denies the completion events\' source on its bus to every principal but the functions that publish them', () => {
    const t = template();
    const [busId, ...others] = Object.keys(resourcesOf(t, 'AWS::Events::EventBus'));
    expect(others).toHaveLength(0);
    const bus = resourcesOf(t, 'AWS::Events::EventBus')[busId!]!;
    const statements = (bus.Properties.Policy as { Statement: PolicyStatement[] }).Statement;
    expect(statements).toHaveLength(1);
    const [deny] = statements;
    const busArn = { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':events:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':event-bus/openclaw-backup-events']] };
    expect(deny).toMatchObject({ Effect: 'Deny', Principal: { AWS: '*' }, Action: 'events:PutEvents', Resource: busArn });

    // The roles IAM lets publish to the bus, read from the template: the deny must spare exactly these, or it shuts a function out.
    const roleOfFunction = (name: string) => (resourcesOf(t, 'AWS::Lambda::Function')[logicalId(t, 'AWS::Lambda::Function', { FunctionName: name })]!.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    const publishers = Object.values(resourcesOf(t, 'AWS::IAM::Policy'))
      .filter((policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement.some((statement) => [statement.Action].flat().includes('events:PutEvents')))
      .flatMap((policy) => (policy.Properties.Roles as { Ref: string }[]).map((role) => role.Ref))
      .sort();
    expect(publishers).toEqual(['backup', 'restore', 'prune'].map((name) => roleOfFunction(`openclaw-backup-${name}`)).sort());
    const arnOf = (roleId: string) => ({ 'Fn::GetAtt': [roleId, 'Arn'] });

    // The statement evaluated as IAM would, for requests to this bus.
    const denied = (principalArn: unknown, sources: string[]) => deniedBy(deny!, { 'aws:PrincipalArn': [principalArn], 'events:source': sources });
    for (const roleId of publishers) expect(denied(arnOf(roleId), ['openclaw.backup'])).toBe(false);
    const outsiders = [
      arnOf(roleOfFunction('openclaw-backup-list')),
      arnOf(roleOfFunction('openclaw-backup-fanout')),
      arnOf(roleOfFunction('openclaw-backup-monitor')),
      'arn:aws:iam::123456789012:role/Admin',
      'arn:aws:iam::123456789012:user/ops',
      'arn:aws:iam::123456789012:root',
    ];
    for (const principal of outsiders) {
      expect(denied(principal, ['openclaw.backup'])).toBe(true);
      // One forged entry among a request's ten is enough…
      expect(denied(principal, ['my.app', 'openclaw.backup'])).toBe(true);
      // …and the bus stays open to other sources.
      expect(denied(principal, ['my.app'])).toBe(false);
    }
  });

  it('leaves the shared default bus without a policy: another deployment\'s functions publish the same source to it', () => {
    const t = template({ 'openclaw:useDefaultEventBus': true });
    t.resourceCountIs('AWS::Events::EventBus', 0);
    t.resourceCountIs('AWS::Events::EventBusPolicy', 0);
  });

  it('lets only the restore function read secrets, and only those under the stack prefix (--identity-secret)', () => {
    const secretArn = (prefix: string) => ({
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':secretsmanager:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, `:secret:${prefix}/*`]],
    });
    const t = template();
    expect(functionStatements(t, 'openclaw-backup-restore')).toContainEqual({ Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: secretArn('openclaw-backup') });
    const secretStatements = allStatements(t).filter((statement) => [statement.Action].flat().some((action) => action.startsWith('secretsmanager:')));
    expect(secretStatements).toEqual([{ Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: secretArn('openclaw-backup') }]);
    for (const name of ['backup', 'list']) expect(actionsOf(functionStatements(t, `openclaw-backup-${name}`)).filter((action) => action.startsWith('secretsmanager:'))).toEqual([]);
    // A created VPC reaches Secrets Manager through a closed interface endpoint.
    t.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      ServiceName: { 'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp('\\.secretsmanager$')])] },
      VpcEndpointType: 'Interface',
      PrivateDnsEnabled: true,
    });
    const custom = template({ 'openclaw:prefix': 'acme-gw' });
    expect(functionStatements(custom, 'acme-gw-restore')).toContainEqual({ Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: secretArn('acme-gw') });
  });

  it('adds KMS permissions for a KMS-encrypted bucket', () => {
    const t = template({ 'openclaw:bucketEncryption': 'KMS' });
    const key = logicalId(t, 'AWS::KMS::Key', { Description: Match.stringLikeRegexp('backups') });
    expect(functionStatements(t, 'openclaw-backup-backup')).toContainEqual(
      expect.objectContaining({ Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Resource: { 'Fn::GetAtt': [key, 'Arn'] } }),
    );
    expect(functionStatements(t, 'openclaw-backup-restore')).toContainEqual(
      expect.objectContaining({ Action: 'kms:Decrypt', Resource: { 'Fn::GetAtt': [key, 'Arn'] } }),
    );
  });

  it('grants the keys of archiveKmsKeyArns (tenants backup --sse-kms-key-id): the backup function encrypts with them, restore and prune decrypt', () => {
    const keyArn = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const t = template({ 'openclaw:archiveKmsKeyArns': [keyArn] });
    expect(functionStatements(t, 'openclaw-backup-backup')).toContainEqual(expect.objectContaining({ Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Resource: keyArn }));
    for (const name of ['restore', 'prune']) expect(functionStatements(t, `openclaw-backup-${name}`)).toContainEqual(expect.objectContaining({ Action: 'kms:Decrypt', Resource: keyArn }));
    expect(actionsOf(functionStatements(t, 'openclaw-backup-list')).filter((action) => action.startsWith('kms:'))).toEqual([]);
  });
});

describe('backup bucket', () => {
  it('is encrypted, private, TLS-only, versioned, retained, logged and cleans up uploads', () => {
    const t = template();
    const bucket = logicalId(t, 'AWS::S3::Bucket', { VersioningConfiguration: { Status: 'Enabled' } });
    const resource = resourcesOf(t, 'AWS::S3::Bucket')[bucket]!;
    expect(resource.DeletionPolicy).toBe('Retain');
    expect(resource.Properties).toMatchObject({
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      VersioningConfiguration: { Status: 'Enabled' },
      LoggingConfiguration: { DestinationBucketName: { Ref: expect.any(String) as unknown } },
    });
    expect((resource.Properties.LifecycleConfiguration as { Rules: unknown[] }).Rules).toContainEqual(
      expect.objectContaining({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }, Status: 'Enabled' }),
    );
    t.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucket },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 's3:*',
            Principal: { AWS: '*' },
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });

  it('expires backups and old versions when configured, and encrypts with KMS on request', () => {
    const t = template({
      'openclaw:expirationDays': 90,
      'openclaw:noncurrentVersionExpirationDays': '7',
      'openclaw:bucketEncryption': 'KMS',
      'openclaw:backupKeyPrefix': 'tenants/backups/',
    });
    t.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: { Status: 'Enabled' },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          Match.objectLike({ ServerSideEncryptionByDefault: Match.objectLike({ SSEAlgorithm: 'aws:kms' }), BucketKeyEnabled: true }),
        ],
      },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ NoncurrentVersionExpiration: { NoncurrentDays: 7 } }),
          Match.objectLike({ ExpirationInDays: 90, Prefix: 'tenants/backups/' }),
        ]),
      },
    });
    t.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true, Description: Match.stringLikeRegexp('backups') });
  });

  it('uses an existing bucket by name without creating one', () => {
    const t = template({ 'openclaw:bucketName': 'gateway-backups' });
    expect(Object.values(resourcesOf(t, 'AWS::S3::Bucket'))).toHaveLength(0);
    t.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'openclaw-backup-backup',
      Environment: { Variables: Match.objectLike({ OPENCLAW_BACKUP_BUCKET: 'gateway-backups' }) },
    });
    expect(functionStatements(t, 'openclaw-backup-backup')).toContainEqual(
      expect.objectContaining({
        Action: BACKUP_OBJECT_ACTIONS,
        Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::gateway-backups/backups/*']] },
      }),
    );
    expect(() => fixtureApp({ 'openclaw:bucketName': 'gateway-backups', 'openclaw:objectLockMode': 'GOVERNANCE', 'openclaw:objectLockRetentionDays': 30 })).toThrow(
      /objectLock configures a created bucket: omit it with existingBucketName/,
    );
  });
});

describe('erasure: Object Lock and replication', () => {
  it('has no Object Lock by default', () => {
    const t = template();
    const bucket = resourcesOf(t, 'AWS::S3::Bucket')[logicalId(t, 'AWS::S3::Bucket', { VersioningConfiguration: { Status: 'Enabled' } })]!;
    expect(bucket.Properties.ObjectLockEnabled).toBeUndefined();
    expect(bucket.Properties.ReplicationConfiguration).toBeUndefined();
  });

  it.each([
    ['GOVERNANCE', 30],
    ['COMPLIANCE', '365'],
  ] as const)('locks every new version in %s mode for the configured days', (mode, days) => {
    const t = template({ 'openclaw:objectLockMode': mode, 'openclaw:objectLockRetentionDays': days });
    t.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: { Status: 'Enabled' },
      ObjectLockEnabled: true,
      ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: mode, Days: Number(days) } } },
    });
  });

  it('refuses half an Object Lock configuration', () => {
    expect(() => fixtureApp({ 'openclaw:objectLockMode': 'GOVERNANCE' })).toThrow(/objectLockMode and openclaw:objectLockRetentionDays go together/);
    expect(() => fixtureApp({ 'openclaw:objectLockMode': 'LEGAL', 'openclaw:objectLockRetentionDays': 3 })).toThrow(/objectLockMode must be one of GOVERNANCE, COMPLIANCE/);
    expect(() => fixtureApp({ 'openclaw:objectLockMode': 'COMPLIANCE', 'openclaw:objectLockRetentionDays': 0 })).toThrow(/objectLock.retentionDays must be an integer from 1 to 36500/);
  });

  it('replicates new archives to another account\'s bucket with a role of a fixed name, never deletions', () => {
    const t = template({
      'openclaw:replicationBucket': 'arn:aws:s3:::vault-backups',
      'openclaw:replicationAccount': '222222222222',
      'openclaw:objectLockMode': 'COMPLIANCE',
      'openclaw:objectLockRetentionDays': 90,
    });
    const roleId = logicalId(t, 'AWS::IAM::Role', { RoleName: { 'Fn::Join': ['', ['openclaw-backup-replication-', { Ref: 'AWS::Region' }]] } });
    t.hasResourceProperties('AWS::IAM::Role', {
      RoleName: Match.anyValue(),
      AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Principal: { Service: 's3.amazonaws.com' } })] },
    });
    t.hasResourceProperties('AWS::S3::Bucket', {
      ReplicationConfiguration: {
        Role: { 'Fn::GetAtt': [roleId, 'Arn'] },
        Rules: [
          {
            Id: 'replicate-backups',
            Status: 'Enabled',
            Filter: { Prefix: 'backups/' },
            DeleteMarkerReplication: { Status: 'Disabled' },
            Destination: {
              Bucket: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::vault-backups']] },
              Account: '222222222222',
              AccessControlTranslation: { Owner: 'Destination' },
            },
          },
        ],
      },
    });
    const policies = Object.values(resourcesOf(t, 'AWS::IAM::Policy')).filter((policy) =>
      (policy.Properties.Roles as { Ref: string }[]).some((role) => role.Ref === roleId),
    );
    const statements = policies.flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
    const actions = actionsOf(statements);
    expect(actions).toEqual(expect.arrayContaining(['s3:ReplicateObject', 's3:ReplicateTags', 's3:ObjectOwnerOverrideToBucketOwner', 's3:GetObjectRetention', 's3:GetObjectLegalHold']));
    expect(actions.filter((action) => ERASING_ACTIONS.includes(action))).toEqual([]);
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: ['s3:ObjectOwnerOverrideToBucketOwner', 's3:ReplicateObject', 's3:ReplicateTags'],
        Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::vault-backups/backups/*']] },
      }),
    );
  });

  it('refuses an incomplete replication configuration', () => {
    expect(() => fixtureApp({ 'openclaw:replicationBucket': 'vault-backups' })).toThrow(/replicationBucket needs openclaw:replicationAccount/);
    expect(() => fixtureApp({ 'openclaw:replicationBucket': 'vault-backups', 'openclaw:replicationAccount': '12345' })).toThrow(/12-digit account ID/);
    expect(() => fixtureApp({ 'openclaw:replicationAccount': '222222222222' })).toThrow(/set openclaw:replicationBucket too/);
    expect(() =>
      fixtureApp({ 'openclaw:replicationBucket': 'vault-backups', 'openclaw:replicationAccount': '222222222222', 'openclaw:bucketEncryption': 'KMS' }),
    ).toThrow(/needs replication.destinationKmsKeyArn/);
    expect(() => fixtureApp({ 'openclaw:bucketName': 'gateway-backups', 'openclaw:replicationBucket': 'vault-backups', 'openclaw:replicationAccount': '222222222222' })).toThrow(
      /replication configures a created bucket/,
    );
  });

  it('replicates a KMS-encrypted bucket with the destination\'s key', () => {
    const key = 'arn:aws:kms:eu-west-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const t = template({
      'openclaw:bucketEncryption': 'KMS',
      'openclaw:replicationBucket': 'vault-backups',
      'openclaw:replicationAccount': '222222222222',
      'openclaw:replicationKmsKeyArn': key,
    });
    t.hasResourceProperties('AWS::S3::Bucket', {
      ReplicationConfiguration: {
        Rules: [
          Match.objectLike({
            SourceSelectionCriteria: { SseKmsEncryptedObjects: { Status: 'Enabled' } },
            Destination: Match.objectLike({ EncryptionConfiguration: { ReplicaKmsKeyID: key } }),
          }),
        ],
      },
    });
  });

  it('replicates archives encrypted with a key of archiveKmsKeyArns (--sse aws:kms --sse-kms-key-id): KMS-encrypted objects are selected and the role decrypts with the key', () => {
    const archiveKey = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const replicaKey = 'arn:aws:kms:eu-west-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    // An SSE-S3 bucket: without SseKmsEncryptedObjects, S3 replication passes over every SSE-KMS object, unseen.
    const t = template({
      'openclaw:archiveKmsKeyArns': [archiveKey],
      'openclaw:replicationBucket': 'vault-backups',
      'openclaw:replicationAccount': '222222222222',
      'openclaw:replicationKmsKeyArn': replicaKey,
    });
    t.hasResourceProperties('AWS::S3::Bucket', {
      ReplicationConfiguration: {
        Rules: [
          Match.objectLike({
            SourceSelectionCriteria: { SseKmsEncryptedObjects: { Status: 'Enabled' } },
            Destination: Match.objectLike({ EncryptionConfiguration: { ReplicaKmsKeyID: replicaKey } }),
          }),
        ],
      },
    });
    const roleId = logicalId(t, 'AWS::IAM::Role', { RoleName: { 'Fn::Join': ['', ['openclaw-backup-replication-', { Ref: 'AWS::Region' }]] } });
    const statements = Object.values(resourcesOf(t, 'AWS::IAM::Policy'))
      .filter((policy) => (policy.Properties.Roles as { Ref: string }[]).some((role) => role.Ref === roleId))
      .flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
    expect(statements).toContainEqual(expect.objectContaining({ Action: 'kms:Decrypt', Resource: archiveKey }));
    // Replicas of such archives need a key in the destination, as a KMS bucket's do.
    expect(() =>
      fixtureApp({ 'openclaw:archiveKmsKeyArns': [archiveKey], 'openclaw:replicationBucket': 'vault-backups', 'openclaw:replicationAccount': '222222222222' }),
    ).toThrow(/needs replication.destinationKmsKeyArn/);
  });
});

describe('exfiltration: what the functions can reach', () => {
  it('limits the S3 gateway endpoint of a created VPC to the backup bucket and the extra source buckets', () => {
    const t = template({ 'openclaw:extraSourceBuckets': ['other-account-backups'] });
    const bucket = logicalId(t, 'AWS::S3::Bucket', { VersioningConfiguration: { Status: 'Enabled' } });
    const endpoint = resourcesOf(t, 'AWS::EC2::VPCEndpoint')[logicalId(t, 'AWS::EC2::VPCEndpoint', { VpcEndpointType: 'Gateway' })]!;
    const document = endpoint.Properties.PolicyDocument as { Statement: (Statement & { Principal: unknown })[] };
    expect(document.Statement).toHaveLength(2);
    const [statement, deletes] = document.Statement;
    expect(statement).toMatchObject({ Sid: 'OnlyTheBackupBuckets', Effect: 'Allow', Principal: { AWS: '*' } });
    expect([statement!.Action].flat().sort()).toEqual([
      's3:AbortMultipartUpload',
      's3:GetBucketObjectLockConfiguration',
      's3:GetBucketVersioning',
      's3:GetLifecycleConfiguration',
      's3:GetObject',
      's3:GetObjectLegalHold',
      's3:GetObjectRetention',
      's3:GetObjectTagging',
      's3:GetObjectVersion',
      's3:GetObjectVersionTagging',
      's3:ListBucket',
      's3:ListBucketMultipartUploads',
      's3:ListMultipartUploadParts',
      's3:PutObject',
      's3:PutObjectTagging',
      's3:PutObjectVersionTagging',
    ]);
    const resources = [statement!.Resource].flat();
    expect(resources).toHaveLength(4);
    expect(resources).toEqual(
      expect.arrayContaining([
        { 'Fn::GetAtt': [bucket, 'Arn'] },
        { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucket, 'Arn'] }, '/*']] },
        { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::other-account-backups']] },
        { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::other-account-backups/*']] },
      ]),
    );
    // No delete of any kind goes through it but the prune role's, of archives under the key prefix.
    expect([statement!.Action].flat().some((action) => /Delete|\*/.test(action))).toBe(false);
    const pruneRole = logicalId(t, 'AWS::IAM::Role', { RoleName: { 'Fn::Join': ['', ['openclaw-backup-prune-', { Ref: 'AWS::Region' }]] } });
    expect(deletes).toEqual({
      Sid: 'OnlyThePruneRoleDeletes',
      Effect: 'Allow',
      Principal: { AWS: '*' },
      Action: 's3:DeleteObject',
      Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucket, 'Arn'] }, '/backups/*']] },
      Condition: { ArnEquals: { 'aws:PrincipalArn': { 'Fn::GetAtt': [pruneRole, 'Arn'] } } },
    });
  });

  it('lets the functions of a created VPC out only to S3\'s prefix list, the endpoints and the mount targets', () => {
    const t = template();
    const group = logicalId(t, 'AWS::EC2::SecurityGroup', { GroupDescription: Match.stringLikeRegexp('functions') });
    const inline = (resourcesOf(t, 'AWS::EC2::SecurityGroup')[group]!.Properties.SecurityGroupEgress ?? []) as Record<string, unknown>[];
    const separate = Object.values(resourcesOf(t, 'AWS::EC2::SecurityGroupEgress'))
      .map((rule) => rule.Properties)
      .filter((rule) => JSON.stringify(rule.GroupId).includes(group));
    const rules = [...inline, ...separate];
    expect(rules.some((rule) => rule.CidrIp === '0.0.0.0/0')).toBe(false);
    const lookup = logicalId(t, 'Custom::S3PrefixListLookup');
    expect(rules).toContainEqual(
      expect.objectContaining({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, DestinationPrefixListId: { 'Fn::GetAtt': [lookup, 'PrefixLists.0.PrefixListId'] } }),
    );
    // NFS to the mount targets, HTTPS to the EventBridge, Secrets Manager and SQS endpoints.
    expect(rules.filter((rule) => rule.DestinationSecurityGroupId !== undefined).map((rule) => rule.FromPort).sort()).toEqual([2049, 443, 443, 443]);
    expect(rules).toHaveLength(5);
    // The lookup reads the region's S3 prefix list, by name.
    t.hasResourceProperties('Custom::S3PrefixListLookup', {
      Create: Match.anyValue(),
      Update: { 'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp('DescribeManagedPrefixLists|describeManagedPrefixLists'), { Ref: 'AWS::Region' }])] },
    });
  });

  it('lets the functions of an imported VPC out on HTTPS to anywhere by default, or to the configured destinations', () => {
    const imported = {
      'openclaw:fileSystemId': 'fs-0123456789abcdef0',
      'openclaw:securityGroupId': 'sg-0123456789abcdef0',
      'openclaw:vpcId': 'vpc-0123456789abcdef0',
      'openclaw:subnetIds': ['subnet-0aaaaaaaaaaaaaaa1'],
    };
    const egressOf = (t: Template) => {
      const group = resourcesOf(t, 'AWS::EC2::SecurityGroup')[logicalId(t, 'AWS::EC2::SecurityGroup', { GroupDescription: Match.stringLikeRegexp('functions') })]!;
      return group.Properties.SecurityGroupEgress as Record<string, unknown>[];
    };
    expect(egressOf(template(imported))).toEqual([expect.objectContaining({ CidrIp: '0.0.0.0/0', FromPort: 443, ToPort: 443 })]);
    t_resourceCountIs(template(imported), 'Custom::S3PrefixListLookup', 0);

    const narrowed = template({ ...imported, 'openclaw:httpsEgress': 's3,pl-0123456789abcdef0,sg-0fedcba9876543210,10.20.0.0/16' });
    const rules = [...egressOf(narrowed), ...Object.values(resourcesOf(narrowed, 'AWS::EC2::SecurityGroupEgress')).map((rule) => rule.Properties)];
    expect(rules.some((rule) => rule.CidrIp === '0.0.0.0/0')).toBe(false);
    expect(rules).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ FromPort: 443, DestinationPrefixListId: { 'Fn::GetAtt': [logicalId(narrowed, 'Custom::S3PrefixListLookup'), 'PrefixLists.0.PrefixListId'] } }),
        expect.objectContaining({ FromPort: 443, DestinationPrefixListId: 'pl-0123456789abcdef0' }),
        expect.objectContaining({ FromPort: 443, DestinationSecurityGroupId: 'sg-0fedcba9876543210' }),
        expect.objectContaining({ FromPort: 443, CidrIp: '10.20.0.0/16' }),
        expect.objectContaining({ FromPort: 2049, DestinationSecurityGroupId: 'sg-0123456789abcdef0' }),
      ]),
    );
    expect(() => fixtureApp({ ...imported, 'openclaw:httpsEgress': 'everywhere' })).toThrow(/httpsEgress: "everywhere" must be an IPv4 CIDR/);
    expect(() => fixtureApp({ 'openclaw:httpsEgress': '0.0.0.0/0' })).toThrow(/httpsEgress applies to an imported VPC/);
  });

  it('passes the allowed endpoints when the deployer lists them, none otherwise', () => {
    const t = template({ 'openclaw:allowedEndpoints': ['https://minio.internal:9443'] });
    t.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'openclaw-backup-backup',
      Environment: { Variables: Match.objectLike({ OPENCLAW_ALLOWED_ENDPOINTS: 'https://minio.internal:9443' }) },
    });
    template().hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'openclaw-backup-backup',
      Environment: { Variables: Match.objectLike({ OPENCLAW_ALLOWED_ENDPOINTS: '' }) },
    });
  });
});

function t_resourceCountIs(t: Template, type: string, count: number): void {
  t.resourceCountIs(type, count);
}

describe('schedules, failures and events', () => {
  it('lets only EventBridge rules named with the stack prefix invoke the backup and prune functions', () => {
    const t = template();
    const ruleTargets = ['openclaw-backup-backup', 'openclaw-backup-prune'].map((name) => logicalId(t, 'AWS::Lambda::Function', { FunctionName: name }));
    const permissions = Object.values(resourcesOf(t, 'AWS::Lambda::Permission')).filter((permission) =>
      ruleTargets.some((fn) => JSON.stringify(permission.Properties.FunctionName).includes(fn)),
    );
    expect(permissions).toHaveLength(2);
    for (const [index, name] of ['openclaw-backup-backup', 'openclaw-backup-prune'].entries()) {
      const fn = logicalId(t, 'AWS::Lambda::Function', { FunctionName: name });
      expect(permissions[index]!.Properties).toEqual({
        Action: 'lambda:InvokeFunction',
        FunctionName: { 'Fn::GetAtt': [fn, 'Arn'] },
        Principal: 'events.amazonaws.com',
        SourceAccount: { Ref: 'AWS::AccountId' },
        SourceArn: {
          'Fn::Join': [
            '',
            ['arn:', { Ref: 'AWS::Partition' }, ':events:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':rule/openclaw-backup-*'],
          ],
        },
      });
    }
    const prune = logicalId(t, 'AWS::Lambda::Function', { FunctionName: 'openclaw-backup-prune' });
    t.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { FunctionName: { Ref: prune }, MaximumRetryAttempts: 2 });
  });

  it('follows a custom prefix in names, rule pattern and exports', () => {
    const t = template({ 'openclaw:prefix': 'acme-bak' });
    t.hasResourceProperties('AWS::Lambda::Function', { FunctionName: 'acme-bak-backup' });
    t.hasResourceProperties('AWS::Lambda::Permission', {
      SourceArn: { 'Fn::Join': ['', Match.arrayWith([':rule/acme-bak-*'])] },
    });
    t.hasResourceProperties('AWS::Events::EventBus', { Name: 'acme-bak-events' });
    t.hasOutput('RulePrefix', { Value: 'acme-bak-', Export: { Name: 'acme-bak-RulePrefix' } });
  });

  // A message names a tenant and what to do with it (a backup; a restore chain's next piece):
  // only the roles that queue them may send, and the principals named to redrive their DLQs.
  it('lets only the roles that queue on them send to the work and restore queues (and the configured redrivers), over TLS only', () => {
    const roleOf = (t: Template, functionName: string) => {
      const fn = resourcesOf(t, 'AWS::Lambda::Function')[logicalId(t, 'AWS::Lambda::Function', { FunctionName: functionName })]!;
      return (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    };
    for (const redrivers of [[], ['arn:aws:iam::123456789012:role/queue-redrive']]) {
      const t = template(redrivers.length === 0 ? {} : { 'openclaw:queueRedrivers': redrivers.join(',') });
      for (const [queueName, senders] of [
        ['openclaw-backup-work', ['openclaw-backup-backup', 'openclaw-backup-fanout']],
        ['openclaw-backup-restore-work', ['openclaw-backup-restore']],
      ] as const) {
        const queue = logicalId(t, 'AWS::SQS::Queue', { QueueName: queueName });
        const policies = Object.values(resourcesOf(t, 'AWS::SQS::QueuePolicy')).filter((policy) => JSON.stringify(policy.Properties.Queues) === JSON.stringify([{ Ref: queue }]));
        expect(policies, queueName).toHaveLength(1);
        const statements = (policies[0]!.Properties.PolicyDocument as { Statement: Statement[] }).Statement;
        expect(statements, queueName).toEqual(
          expect.arrayContaining([
            expect.objectContaining({ Effect: 'Deny', Principal: { AWS: '*' }, Action: 'sqs:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
            {
              Sid: 'SendOnlyFromItsSenders',
              Effect: 'Deny',
              Principal: { AWS: '*' },
              Action: 'sqs:SendMessage',
              Resource: { 'Fn::GetAtt': [queue, 'Arn'] },
              Condition: { ArnNotEquals: { 'aws:PrincipalArn': [...senders.map((name) => ({ 'Fn::GetAtt': [roleOf(t, name), 'Arn'] })), ...redrivers] } },
            },
          ]),
        );
      }
    }
  });

  it('sends failed asynchronous invocations to an encrypted, TLS-only dead-letter queue', () => {
    const t = template();
    // The asynchronous invocations' queue is the only one without a fixed name.
    const unnamed = Object.entries(resourcesOf(t, 'AWS::SQS::Queue')).filter(([, resource]) => resource.Properties.QueueName === undefined);
    expect(unnamed).toHaveLength(1);
    const queue = unnamed[0]![0];
    for (const resource of Object.values(resourcesOf(t, 'AWS::SQS::Queue'))) {
      expect(resource.Properties).toMatchObject({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 1209600 });
    }
    t.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
    for (const [name, retries] of [
      ['openclaw-backup-backup', 2],
      ['openclaw-backup-restore', 0],
    ] as const) {
      const fn = logicalId(t, 'AWS::Lambda::Function', { FunctionName: name });
      t.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
        FunctionName: { Ref: fn },
        Qualifier: '$LATEST',
        MaximumRetryAttempts: retries,
        DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queue, 'Arn'] } } },
      });
    }
  });

  it('alarms on backup, restore and prune errors and on messages in the dead-letter queue, notifying the topic', () => {
    const t = template();
    const topic = logicalId(t, 'AWS::SNS::Topic');
    const queue = Object.entries(resourcesOf(t, 'AWS::SQS::Queue')).find(([, resource]) => resource.Properties.QueueName === undefined)![0];
    const backup = logicalId(t, 'AWS::Lambda::Function', { FunctionName: 'openclaw-backup-backup' });
    const prune = logicalId(t, 'AWS::Lambda::Function', { FunctionName: 'openclaw-backup-prune' });
    // Four here, the rest of the stack's alarms in test/infra-scale.test.ts.
    t.resourceCountIs('AWS::CloudWatch::Alarm', 19);
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'Errors', Dimensions: [{ Name: 'FunctionName', Value: { Ref: prune } }] });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: backup } }],
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      AlarmActions: [{ Ref: topic }],
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queue, 'QueueName'] } }],
      AlarmActions: [{ Ref: topic }],
    });
  });

  it('forwards failure events to an encrypted topic through an example rule', () => {
    const t = template({ 'openclaw:notificationEmail': 'ops@example.com' });
    const bus = logicalId(t, 'AWS::Events::EventBus', { Name: 'openclaw-backup-events' });
    const topic = logicalId(t, 'AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    t.hasResourceProperties('AWS::Events::Rule', {
      EventBusName: { Ref: bus },
      EventPattern: { source: ['openclaw.backup'], account: [{ Ref: 'AWS::AccountId' }], 'detail-type': ['OpenClaw Backup Failed', 'OpenClaw Restore Failed'], detail: { trigger: [{ 'anything-but': 'queue' }] } },
      Targets: [Match.objectLike({ Arn: { Ref: topic } })],
    });
    t.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
  });

  it('lets only the stack\'s own failure rule and its own alarms publish to the topic', () => {
    const t = template();
    const topic = logicalId(t, 'AWS::SNS::Topic');
    const rule = logicalId(t, 'AWS::Events::Rule', { Targets: [Match.objectLike({ Arn: { Ref: topic } })] });
    const [policy, ...others] = Object.values(resourcesOf(t, 'AWS::SNS::TopicPolicy'));
    expect(others).toHaveLength(0);
    const allows = (policy!.Properties.PolicyDocument as { Statement: (Statement & { Principal: unknown })[] }).Statement.filter((s) => s.Effect === 'Allow');
    // One statement per publishing service, each naming its source: no service principal without one.
    expect(allows.map((s) => s.Principal)).toEqual([{ Service: 'cloudwatch.amazonaws.com' }, { Service: 'events.amazonaws.com' }]);
    const [alarms, events] = allows;
    expect(events!.Condition).toEqual({ ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': [rule, 'Arn'] } } });
    const alarmArnPattern = JSON.stringify((alarms!.Condition as { ArnLike: Record<string, unknown> }).ArnLike['aws:SourceArn']);
    expect(alarmArnPattern).toContain(':alarm:openclaw-backup-*');
    // …and every alarm notifying the topic is one that pattern lets in.
    const notifying = Object.values(resourcesOf(t, 'AWS::CloudWatch::Alarm')).filter((alarm) => JSON.stringify(alarm.Properties.AlarmActions) === JSON.stringify([{ Ref: topic }]));
    expect(notifying.length).toBe(19);
    for (const alarm of notifying) expect(alarm.Properties.AlarmName).toMatch(/^openclaw-backup-/);
  });

  it('can use the default bus and go without notifications', () => {
    const t = template({ 'openclaw:useDefaultEventBus': true, 'openclaw:notifications': 'false' });
    t.resourceCountIs('AWS::Events::EventBus', 0);
    t.resourceCountIs('AWS::SNS::Topic', 0);
    t.resourceCountIs('AWS::CloudWatch::Alarm', 19);
    for (const alarm of Object.values(resourcesOf(t, 'AWS::CloudWatch::Alarm'))) expect(alarm.Properties.AlarmActions).toBeUndefined();
    t.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'openclaw-backup-backup',
      Environment: { Variables: Match.objectLike({ OPENCLAW_EVENT_BUS: 'default' }) },
    });
    // The default bus is the one an organization is most often let into: the monitor takes this account's events only.
    t.hasResourceProperties('AWS::Events::Rule', { EventBusName: 'default', EventPattern: Match.objectLike({ source: ['openclaw.backup'], account: [{ Ref: 'AWS::AccountId' }] }) });
  });
});

describe('operator policy', () => {
  it('lets the CLI invoke the functions, manage the group\'s schedules with the stack\'s role, and only remove the previous version\'s rules', () => {
    const t = template();
    const policy = Object.values(resourcesOf(t, 'AWS::IAM::ManagedPolicy'))[0]!;
    const statements = (policy.Properties.PolicyDocument as { Statement: (Statement & { Sid: string })[] }).Statement;
    const bySid = Object.fromEntries(statements.map((statement) => [statement.Sid, statement]));
    expect(bySid.InvokeFunctions!.Action).toEqual(['lambda:GetFunction', 'lambda:GetFunctionConfiguration', 'lambda:GetFunctionEventInvokeConfig', 'lambda:InvokeFunction']);
    expect(JSON.stringify(bySid.InvokeFunctions!.Resource)).toContain(logicalId(t, 'AWS::Lambda::Function', { FunctionName: 'openclaw-backup-fanout' }));
    // doctor reads the configuration of every function; the monitor is never invoked by the CLI.
    for (const role of ['backup', 'restore', 'list', 'prune', 'fanout']) {
      expect(JSON.stringify(bySid.InvokeFunctions!.Resource)).toContain(logicalId(t, 'AWS::Lambda::Function', { FunctionName: `openclaw-backup-${role}` }));
    }
    const monitor = logicalId(t, 'AWS::Lambda::Function', { FunctionName: 'openclaw-backup-monitor' });
    expect(JSON.stringify(bySid.InvokeFunctions!.Resource)).not.toContain(monitor);
    expect(bySid.InspectFunctions).toMatchObject({ Action: 'lambda:GetFunctionConfiguration', Resource: { 'Fn::GetAtt': [monitor, 'Arn'] } });
    expect(JSON.stringify(bySid.DescribeTenantFileSystem!.Resource)).toContain(logicalId(t, 'AWS::EFS::FileSystem'));
    expect(bySid.ManageSchedules!.Action).toEqual(['scheduler:CreateSchedule', 'scheduler:DeleteSchedule', 'scheduler:GetSchedule', 'scheduler:UpdateSchedule']);
    expect(JSON.stringify(bySid.ManageSchedules!.Resource)).toContain(':schedule/openclaw-backup/*');
    expect(bySid.PassTheSchedulerRole).toMatchObject({
      Action: 'iam:PassRole',
      Resource: { 'Fn::GetAtt': [logicalId(t, 'AWS::IAM::Role', { RoleName: { 'Fn::Join': ['', ['openclaw-backup-scheduler-', { Ref: 'AWS::Region' }]] } }), 'Arn'] },
      Condition: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } },
    });
    expect(bySid.CronCatalogAndStatus!.Resource).toEqual({ 'Fn::GetAtt': [logicalId(t, 'AWS::DynamoDB::Table'), 'Arn'] });
    // Rules are never created any more: no PutRule, PutTargets or tagging.
    const ruleActions = statements.filter((statement) => JSON.stringify(statement.Resource).includes(':rule/')).flatMap((statement) => [statement.Action].flat());
    expect(ruleActions.sort()).toEqual(['events:DeleteRule', 'events:DescribeRule', 'events:ListTagsForResource', 'events:ListTargetsByRule', 'events:RemoveTargets']);
    expect(actionsOf(statements)).not.toContain('events:PutRule');
    expect(actionsOf(statements)).not.toContain('events:PutTargets');
    expect(JSON.stringify(bySid.MigrateScheduleRules!.Resource)).toContain(':rule/openclaw-backup-*');
    // doctor reads the depth of the work queue and of every DLQ it names.
    for (const name of ['openclaw-backup-work', 'openclaw-backup-work-dlq', 'openclaw-backup-schedule-dlq', 'openclaw-backup-restore-work-dlq']) {
      expect(JSON.stringify(bySid.QueueDepths!.Resource), name).toContain(logicalId(t, 'AWS::SQS::Queue', { QueueName: name }));
    }
  });
});

describe('outputs', () => {
  it('publishes what the CLI needs under stable export names', () => {
    const t = template();
    const outputs = t.findOutputs('*');
    expect(Object.keys(outputs).sort()).toEqual([...OUTPUT_NAMES].sort());
    for (const name of OUTPUT_NAMES) t.hasOutput(name, { Export: { Name: `openclaw-backup-${name}` } });
    for (const name of [
      'BackupFunctionName',
      'RestoreFunctionName',
      'ListFunctionName',
      'BackupFunctionArn',
      'BucketName',
      'EventBusName',
      'RulePrefix',
      'FileSystemId',
      'AccessPointId',
      'Region',
    ]) {
      expect(OUTPUT_NAMES).toContain(name);
    }
    const backup = logicalId(t, 'AWS::Lambda::Function', { FunctionName: 'openclaw-backup-backup' });
    t.hasOutput('BackupFunctionName', { Value: { Ref: backup } });
    t.hasOutput('BackupFunctionArn', { Value: { 'Fn::GetAtt': [backup, 'Arn'] } });
    t.hasOutput('RulePrefix', { Value: 'openclaw-backup-' });
    t.hasOutput('Region', { Value: { Ref: 'AWS::Region' } });
    t.hasOutput('AccessPointId', { Value: { Ref: logicalId(t, 'AWS::EFS::AccessPoint') } });
  });

  it('names the CloudFormation stack from context', () => {
    expect(fixtureApp().stack.stackName).toBe('openclaw-backup');
    expect(fixtureApp({ 'openclaw:prefix': 'acme-bak' }).stack.stackName).toBe('acme-bak');
    expect(fixtureApp({ 'openclaw:stackName': 'Backups-Prod' }).stack.stackName).toBe('Backups-Prod');
  });
});
