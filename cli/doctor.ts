// `openclaw doctor` (remote mode): checks what the deployed gateway's functions depend on
// and prints a checklist; exits 1 when a check fails. Read-only calls only:
//   Lambda  GetFunctionConfiguration of <prefix>-backup, -restore, -list: each exists and is
//           active, runs in a VPC, mounts one EFS access point at /mnt/tenants (the same one
//           for all three), and has the environment it needs
//   EFS     DescribeAccessPoints: the access point is available, rooted below the file
//           system's root, with a fixed non-root POSIX user (or the expected one)
//           DescribeFileSystems: the file system is available (and encrypted)
//           DescribeMountTargets: at least one available mount target in the functions' VPC
// The file system and access point come from the functions' own configuration, so no
// CloudFormation access is needed.

import { InvalidArgumentError, type Command } from 'commander';

import type { FunctionConfiguration } from '@aws-sdk/client-lambda';

import { efsClient, functionName, lambdaClient, translateAwsError, awsErrorName, type ControlPlane } from './aws.js';
import { addControlPlaneOptions, ReportedError, requireRemote, type CliContext } from './context.js';
import { REMOTE_TENANTS_DIR } from './remote.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  readonly check: string;
  readonly status: CheckStatus;
  readonly detail: string;
}

export interface DoctorExpectations {
  readonly rootPath?: string;
  readonly uid?: number;
  readonly gid?: number;
}

const ROLES = ['backup', 'restore', 'list'] as const;

export function registerDoctor(program: Command, context: CliContext): void {
  addControlPlaneOptions(
    program
      .command('doctor')
      .description('check the deployed gateway: functions, EFS file system, access point, mount targets (remote mode)')
      .option('--expect-root-path <path>', 'the access point\'s expected root directory, e.g. /tenants')
      .option('--expect-uid <uid>', 'the access point\'s expected POSIX user ID', wholeNumber)
      .option('--expect-gid <gid>', 'the access point\'s expected POSIX group ID', wholeNumber),
  ).action(async (flags: { expectRootPath?: string; expectUid?: number; expectGid?: number }) => {
    const plane = requireRemote(context, 'doctor');
    const checks = await runChecks(plane, { rootPath: flags.expectRootPath, uid: flags.expectUid, gid: flags.expectGid });
    const region = plane.region ?? (await (await lambdaClient(plane)).config.region().catch(() => undefined));
    const failed = checks.filter((check) => check.status === 'fail').length;
    const warned = checks.filter((check) => check.status === 'warn').length;
    const mark: Record<CheckStatus, string> = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' };
    context.output.result({ stack: plane.stack, ok: failed === 0, checks }, [
      `Gateway ${plane.stack}${region === undefined ? '' : ` in ${region}`}:`,
      ...checks.map((check) => `  ${mark[check.status]}  ${check.check}: ${check.detail}`),
      `${checks.length} checks: ${failed} failed, ${warned} warning${warned === 1 ? '' : 's'}`,
    ]);
    if (failed > 0) throw new ReportedError('DOCTOR_FAILED', `${failed} of ${checks.length} checks failed`);
  });
}

export async function runChecks(plane: ControlPlane, expect: DoctorExpectations = {}): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (check: string, status: CheckStatus, detail: string) => checks.push({ check, status, detail });
  const [lambda, { GetFunctionConfigurationCommand }] = await Promise.all([lambdaClient(plane), import('@aws-sdk/client-lambda')]);
  const region = plane.region ?? (await lambda.config.region().catch(() => undefined));

  const configurations = new Map<string, FunctionConfiguration>();
  for (const role of ROLES) {
    const name = functionName(plane, role);
    let configuration: FunctionConfiguration;
    try {
      configuration = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: name }));
    } catch (error) {
      if (awsErrorName(error) === 'ResourceNotFoundException') {
        add(`function ${name}`, 'fail', `not found${region === undefined ? '' : ` in ${region}`}: is the stack deployed with prefix ${plane.stack}?`);
        continue;
      }
      throw translateAwsError(error, plane, `reading the configuration of ${name}`);
    }
    configurations.set(role, configuration);
    checkFunction(add, name, role, configuration);
  }

  // The access point all functions mount.
  const accessPoints = new Set<string>();
  for (const configuration of configurations.values()) {
    for (const mount of configuration.FileSystemConfigs ?? []) if (mount.Arn !== undefined) accessPoints.add(mount.Arn);
  }
  if (configurations.size === 0) return checks;
  if (accessPoints.size !== 1) {
    add('one access point', 'fail', accessPoints.size === 0 ? 'no function mounts an EFS access point' : `the functions mount different access points: ${[...accessPoints].join(', ')}`);
    if (accessPoints.size === 0) return checks;
  }
  const accessPointArn = [...accessPoints][0]!;
  const accessPointId = accessPointArn.split('/').pop()!;
  const vpcId = [...configurations.values()].map((configuration) => configuration.VpcConfig?.VpcId).find((id) => id !== undefined && id !== '');

  const [efs, efsSdk] = await Promise.all([efsClient(plane), import('@aws-sdk/client-efs')]);
  const accessPoint = await efs
    .send(new efsSdk.DescribeAccessPointsCommand({ AccessPointId: accessPointId }))
    .then((output) => output.AccessPoints?.[0])
    .catch((error: unknown) => {
      if (awsErrorName(error) === 'AccessPointNotFound') return undefined;
      throw translateAwsError(error, plane, `describing the access point ${accessPointId}`);
    });
  if (accessPoint === undefined) {
    add(`access point ${accessPointId}`, 'fail', 'not found (deleted?): the functions cannot mount the tenants');
    return checks;
  }
  add(
    `access point ${accessPointId}`,
    accessPoint.LifeCycleState === 'available' ? 'ok' : 'fail',
    `${accessPoint.LifeCycleState ?? 'unknown state'}, file system ${accessPoint.FileSystemId ?? '?'}`,
  );
  const root = accessPoint.RootDirectory?.Path ?? '/';
  if (expect.rootPath !== undefined) {
    add('access point root', root === expect.rootPath ? 'ok' : 'fail', root === expect.rootPath ? root : `${root}, expected ${expect.rootPath}`);
  } else {
    add('access point root', root === '/' ? 'warn' : 'ok', root === '/' ? 'the file system root: the functions see everything on it, not only the tenants' : root);
  }
  const posix = accessPoint.PosixUser;
  if (posix?.Uid === undefined || posix.Gid === undefined) {
    add('access point POSIX user', 'fail', 'none: file operations would run as the function\'s own user and miss the tenants\' permissions');
  } else {
    const wrong = [
      ...(expect.uid !== undefined && posix.Uid !== expect.uid ? [`uid ${posix.Uid}, expected ${expect.uid}`] : []),
      ...(expect.gid !== undefined && posix.Gid !== expect.gid ? [`gid ${posix.Gid}, expected ${expect.gid}`] : []),
    ];
    if (wrong.length > 0) add('access point POSIX user', 'fail', wrong.join('; '));
    else if (posix.Uid === 0) add('access point POSIX user', 'warn', 'uid 0 (root): the functions can change anything on the volume');
    else add('access point POSIX user', 'ok', `uid ${posix.Uid}, gid ${posix.Gid}`);
  }

  const fileSystemId = accessPoint.FileSystemId;
  if (fileSystemId === undefined) return checks;
  const fileSystem = await efs
    .send(new efsSdk.DescribeFileSystemsCommand({ FileSystemId: fileSystemId }))
    .then((output) => output.FileSystems?.[0])
    .catch((error: unknown) => {
      if (awsErrorName(error) === 'FileSystemNotFound') return undefined;
      throw translateAwsError(error, plane, `describing the file system ${fileSystemId}`);
    });
  if (fileSystem === undefined) {
    add(`file system ${fileSystemId}`, 'fail', 'not found');
    return checks;
  }
  add(`file system ${fileSystemId}`, fileSystem.LifeCycleState === 'available' ? 'ok' : 'fail', fileSystem.LifeCycleState ?? 'unknown state');
  add('file system encryption', fileSystem.Encrypted ? 'ok' : 'warn', fileSystem.Encrypted ? 'encrypted at rest' : 'not encrypted at rest');

  let mountTargets;
  try {
    mountTargets = (await efs.send(new efsSdk.DescribeMountTargetsCommand({ FileSystemId: fileSystemId }))).MountTargets ?? [];
  } catch (error) {
    throw translateAwsError(error, plane, `describing the mount targets of ${fileSystemId}`);
  }
  const inVpc = mountTargets.filter((target) => vpcId === undefined || target.VpcId === vpcId);
  const available = inVpc.filter((target) => target.LifeCycleState === 'available');
  const zones = [...new Set(available.map((target) => target.AvailabilityZoneName ?? target.AvailabilityZoneId ?? '?'))].sort();
  if (available.length === 0) {
    add('mount targets', 'fail', `no available mount target${vpcId === undefined ? '' : ` in the functions' VPC ${vpcId}`} (${mountTargets.length} in total)`);
  } else {
    const unavailable = inVpc.length - available.length;
    add(
      'mount targets',
      unavailable > 0 ? 'warn' : 'ok',
      `${available.length} available in ${zones.join(', ')}${unavailable > 0 ? `; ${unavailable} not available` : ''}`,
    );
  }
  return checks;
}

function checkFunction(add: (check: string, status: CheckStatus, detail: string) => void, name: string, role: (typeof ROLES)[number], configuration: FunctionConfiguration): void {
  const state = configuration.State ?? 'Active';
  const healthy = state === 'Active' && configuration.LastUpdateStatus !== 'Failed';
  add(
    `function ${name}`,
    healthy ? 'ok' : 'fail',
    healthy
      ? `${configuration.Runtime ?? 'runtime ?'}, ${configuration.MemorySize ?? '?'} MB, ${configuration.Timeout ?? '?'} s timeout`
      : `state ${state}${configuration.StateReason ? ` (${configuration.StateReason})` : ''}, last update ${configuration.LastUpdateStatus ?? '?'}`,
  );
  const subnets = configuration.VpcConfig?.SubnetIds ?? [];
  if (subnets.length === 0) add(`${name} VPC`, 'fail', 'not in a VPC: it cannot reach the EFS mount targets');

  const mounts = configuration.FileSystemConfigs ?? [];
  const env = configuration.Environment?.Variables ?? {};
  const tenantsDir = env.OPENCLAW_TENANTS_DIR ?? REMOTE_TENANTS_DIR;
  if (mounts.length !== 1) {
    add(`${name} mount`, 'fail', mounts.length === 0 ? 'mounts no EFS file system' : `mounts ${mounts.length} file systems, expected one`);
  } else if (mounts[0]!.LocalMountPath !== tenantsDir) {
    add(`${name} mount`, 'fail', `mounted at ${mounts[0]!.LocalMountPath ?? '?'}, but OPENCLAW_TENANTS_DIR is ${tenantsDir}`);
  } else {
    add(`${name} mount`, 'ok', `${mounts[0]!.Arn?.split('/').pop() ?? '?'} at ${tenantsDir}`);
  }

  if (role !== 'list') {
    const missing = ['OPENCLAW_BACKUP_BUCKET', 'OPENCLAW_EVENT_BUS'].filter((key) => env[key] === undefined || env[key] === '');
    if (missing.includes('OPENCLAW_BACKUP_BUCKET')) add(`${name} environment`, 'fail', 'no OPENCLAW_BACKUP_BUCKET: it cannot reach S3 without an endpoint');
    else if (missing.length > 0) add(`${name} environment`, 'warn', 'no OPENCLAW_EVENT_BUS: no completion events are published');
    else add(`${name} environment`, 'ok', `bucket ${env.OPENCLAW_BACKUP_BUCKET}, events to ${env.OPENCLAW_EVENT_BUS}`);
  }
}

function wholeNumber(value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError('must be a whole number');
  return Number(value);
}
