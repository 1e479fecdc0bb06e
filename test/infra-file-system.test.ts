// TenantFileSystem in its two modes: a created VPC and encrypted file system for a standalone
// deployment, or the gateway's file system imported by ID (with or without its access point).

import { Match, Template } from 'aws-cdk-lib/assertions';
import { afterAll, describe, expect, it } from 'vitest';
import { fixtureApp, removeTestOutdirs } from '../infra/fixtures/app.js';

afterAll(removeTestOutdirs);

const IMPORT = {
  'openclaw:fileSystemId': 'fs-0123456789abcdef0',
  'openclaw:securityGroupId': 'sg-0123456789abcdef0',
  'openclaw:vpcId': 'vpc-0123456789abcdef0',
  'openclaw:subnetIds': 'subnet-0aaaaaaaaaaaaaaa1,subnet-0bbbbbbbbbbbbbbb2',
};

function template(context: Record<string, unknown> = {}): Template {
  return Template.fromStack(fixtureApp(context).stack);
}

describe('created file system (standalone)', () => {
  it('creates an encrypted, backed-up, retained file system', () => {
    const t = template();
    t.resourceCountIs('AWS::EFS::FileSystem', 1);
    t.hasResource('AWS::EFS::FileSystem', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({
        Encrypted: true,
        BackupPolicy: { Status: 'ENABLED' },
        ThroughputMode: 'elastic',
      }),
    });
  });

  it('roots the access point at /tenants as 1000:1000, creating it with mode 0750', () => {
    const t = template();
    t.hasResourceProperties('AWS::EFS::AccessPoint', {
      PosixUser: { Uid: '1000', Gid: '1000' },
      RootDirectory: {
        Path: '/tenants',
        CreationInfo: { OwnerUid: '1000', OwnerGid: '1000', Permissions: '750' },
      },
    });
  });

  it('grants nothing to every principal in its file system policy: each role alone decides, so list cannot write', () => {
    // EFS allows a client action that the file system policy OR the client's IAM policy allows
    // (EFS user guide, "Using IAM to control access to file systems"): an Allow to "*" there
    // would give the list role ClientWrite and every role ClientRootAccess.
    const t = template();
    const [fileSystem] = Object.values(t.findResources('AWS::EFS::FileSystem')) as { Properties: { FileSystemPolicy?: { Statement: Record<string, unknown>[] } } }[];
    // A policy must exist: without one, EFS lets every client that reaches a mount target in, anonymous ones too.
    const statements = fileSystem!.Properties.FileSystemPolicy?.Statement ?? [];
    expect(statements.length).toBeGreaterThan(0);
    expect(statements.filter((statement) => statement.Effect === 'Allow')).toEqual([]);
    expect(statements).toContainEqual(
      expect.objectContaining({ Effect: 'Deny', Principal: { AWS: '*' }, Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
    );
  });

  it('takes the tenant path and POSIX identity from context', () => {
    const t = template({ 'openclaw:tenantsPath': '/srv/openclaw/tenants', 'openclaw:posixUid': '2001', 'openclaw:posixGid': 2002 });
    t.hasResourceProperties('AWS::EFS::AccessPoint', {
      PosixUser: { Uid: '2001', Gid: '2002' },
      RootDirectory: { Path: '/srv/openclaw/tenants', CreationInfo: Match.objectLike({ OwnerUid: '2001', OwnerGid: '2002' }) },
    });
  });

  it('puts it in a VPC with isolated subnets only, flow logs, and the endpoints the functions need', () => {
    const t = template();
    t.resourceCountIs('AWS::EC2::NatGateway', 0);
    t.resourceCountIs('AWS::EC2::InternetGateway', 0);
    t.resourceCountIs('AWS::EC2::Subnet', 2);
    t.hasResourceProperties('AWS::EC2::Subnet', { MapPublicIpOnLaunch: false });
    t.resourceCountIs('AWS::EC2::FlowLog', 1);
    t.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Gateway',
      ServiceName: { 'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp('\\.s3$')])] },
    });
    t.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Interface',
      ServiceName: { 'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp('\\.events$')])] },
      PrivateDnsEnabled: true,
    });
    // The restore function reads its age identity from Secrets Manager (--identity-secret).
    t.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Interface',
      ServiceName: { 'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp('\\.secretsmanager$')])] },
      PrivateDnsEnabled: true,
    });
  });

  it('lets only the functions reach NFS and the EventBridge, Secrets Manager and SQS endpoints', () => {
    const t = template();
    const fnSecurityGroup = Object.keys(
      t.findResources('AWS::EC2::SecurityGroup', {
        Properties: { GroupDescription: Match.stringLikeRegexp('functions') },
      }),
    );
    expect(fnSecurityGroup).toHaveLength(1);
    const ingress = Object.values(t.findResources('AWS::EC2::SecurityGroupIngress')).map(
      (rule) => (rule as { Properties: Record<string, unknown> }).Properties,
    );
    expect(ingress).toContainEqual(
      expect.objectContaining({ FromPort: 2049, ToPort: 2049, SourceSecurityGroupId: { 'Fn::GetAtt': [fnSecurityGroup[0], 'GroupId'] } }),
    );
    expect(ingress).toContainEqual(
      expect.objectContaining({ FromPort: 443, ToPort: 443, SourceSecurityGroupId: { 'Fn::GetAtt': [fnSecurityGroup[0], 'GroupId'] } }),
    );
    // No security group admits anything from the internet.
    for (const group of Object.values(t.findResources('AWS::EC2::SecurityGroup'))) {
      const rules = ((group as { Properties: { SecurityGroupIngress?: { CidrIp?: string }[] } }).Properties.SecurityGroupIngress ?? []);
      for (const rule of rules) expect(rule.CidrIp).not.toBe('0.0.0.0/0');
    }
    // The functions' own egress: HTTPS to S3's prefix list and the endpoints, NFS to the file
    // system, nothing else (no route out of the isolated subnets would take more anyway).
    const fnGroup = t.findResources('AWS::EC2::SecurityGroup')[fnSecurityGroup[0]!] as {
      Properties: { SecurityGroupEgress?: Record<string, unknown>[] };
    };
    const egress = [
      ...(fnGroup.Properties.SecurityGroupEgress ?? []),
      ...Object.values(t.findResources('AWS::EC2::SecurityGroupEgress'))
        .map((rule) => (rule as { Properties: Record<string, unknown> }).Properties)
        .filter((rule) => JSON.stringify(rule.GroupId).includes(fnSecurityGroup[0]!)),
    ];
    expect(egress).toHaveLength(5);
    expect(egress.some((rule) => rule.CidrIp !== undefined)).toBe(false);
    expect(egress).toContainEqual(expect.objectContaining({ DestinationPrefixListId: expect.anything() as unknown, FromPort: 443, ToPort: 443, IpProtocol: 'tcp' }));
    expect(egress).toContainEqual(expect.objectContaining({ FromPort: 2049, ToPort: 2049 }));
    expect(egress).toContainEqual(expect.objectContaining({ FromPort: 443, ToPort: 443, DestinationSecurityGroupId: expect.anything() as unknown }));
  });
});

describe('imported file system (the gateway\'s)', () => {
  it('creates no VPC and no file system, and roots a new access point on the given file system', () => {
    const t = template(IMPORT);
    t.resourceCountIs('AWS::EC2::VPC', 0);
    t.resourceCountIs('AWS::EC2::VPCEndpoint', 0);
    t.resourceCountIs('AWS::EFS::FileSystem', 0);
    t.hasResourceProperties('AWS::EFS::AccessPoint', {
      FileSystemId: 'fs-0123456789abcdef0',
      PosixUser: { Uid: '1000', Gid: '1000' },
      RootDirectory: Match.objectLike({ Path: '/tenants' }),
    });
    t.hasOutput('FileSystemId', { Value: 'fs-0123456789abcdef0' });
  });

  it('runs the functions in the given subnets and opens NFS on the mount target security group', () => {
    const t = template(IMPORT);
    t.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'openclaw-backup-backup',
      VpcConfig: Match.objectLike({ SubnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2'] }),
    });
    t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      GroupId: 'sg-0123456789abcdef0',
      FromPort: 2049,
      ToPort: 2049,
      IpProtocol: 'tcp',
    });
    t.hasResourceProperties('AWS::EC2::SecurityGroup', { VpcId: 'vpc-0123456789abcdef0' });
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: ['elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite'],
            Resource: { 'Fn::Join': ['', Match.arrayWith([':file-system/fs-0123456789abcdef0'])] },
            Condition: { StringEquals: { 'elasticfilesystem:AccessPointArn': Match.anyValue() } },
          }),
        ]),
      },
    });
  });

  it('uses an existing access point by ID', () => {
    const t = template({ ...IMPORT, 'openclaw:accessPointId': 'fsap-0123456789abcdef0' });
    t.resourceCountIs('AWS::EFS::AccessPoint', 0);
    t.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'openclaw-backup-restore',
      FileSystemConfigs: [
        {
          Arn: { 'Fn::Join': ['', Match.arrayWith([':access-point/fsap-0123456789abcdef0'])] },
          LocalMountPath: '/mnt/tenants',
        },
      ],
    });
    t.hasOutput('AccessPointId', { Value: 'fsap-0123456789abcdef0' });
  });

  it('refuses incomplete import settings, naming every missing key', () => {
    expect(() => fixtureApp({ 'openclaw:fileSystemId': 'fs-0123456789abcdef0' })).toThrow(
      /openclaw:securityGroupId too[\s\S]*openclaw:vpcId too[\s\S]*openclaw:subnetIds too/,
    );
    expect(() => fixtureApp({ 'openclaw:vpcId': 'vpc-0123456789abcdef0' })).toThrow(
      /openclaw:vpcId imports a file system: set openclaw:fileSystemId too/,
    );
  });
});
