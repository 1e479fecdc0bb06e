// The service behind `openclaw doctor` (remote mode): checks what the deployed gateway's
// functions depend on, over the clients it is given, and returns the checklist. Read-only
// calls only:
//   Lambda  GetFunctionConfiguration of <prefix>-backup, -restore, -list: each exists and is
//           active, runs in a VPC, mounts one EFS access point at /mnt/tenants (the same one
//           for all three), and has the environment it needs; of <prefix>-prune, -fanout,
//           -monitor (every deployment has them): each exists and is active
//   EFS     DescribeAccessPoints: the access point is available, rooted below the file
//           system's root, with a fixed non-root POSIX user (or the expected one)
//           DescribeFileSystems: the file system is available (and encrypted)
//           DescribeMountTargets: at least one available mount target in the functions' VPC
//   EC2     the functions' network (doctor-network.ts): S3, EventBridge, SQS, Secrets Manager
//           (each when configured) and the mount targets reachable from their subnets through
//           routes, endpoints and security groups
//   Lambda  Invoke of <prefix>-list with { ownership: true }: the tenant tree on the volume
//           belongs to the access point's POSIX user (the list function only reads)
//   and, given the clients, the scheduled side (doctor-schedules.ts): the crons, the work
//   queue and its mapping, the DLQs, the tenants whose last backup failed, freshness
// The file system and access point come from the functions' own configuration, so no
// CloudFormation access is needed.

import { DescribeAccessPointsCommand, DescribeFileSystemsCommand, DescribeMountTargetsCommand, type EFSClient } from '@aws-sdk/client-efs';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { GetFunctionConfigurationCommand, InvokeCommand, type FunctionConfiguration, type LambdaClient } from '@aws-sdk/client-lambda';

import { quotedPath, recoveryText, shownPath } from '../format.js';
import { awsErrorName, translateAwsError } from './aws-errors.js';
import {
  CONTROL_FUNCTION_ROLES,
  FUNCTION_ENV,
  FUNCTION_ROLES,
  functionName,
  PRUNE_ROLE,
  TENANTS_MOUNT_PATH,
  type ControlFunctionRole,
  type ControlPlane,
  type FunctionRole,
} from './deployment.js';
import { checkNetwork } from './doctor-network.js';
import { checkSchedulesAndQueues, type ScheduleDoctorClients } from './doctor-schedules.js';
import { recoveredInAnswers } from './list-pages.js';
import { isFailureResponse, isRecord } from './protocol.js';

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

export interface DoctorClients {
  /** For reading the functions' configuration (the SDK's retries). */
  readonly lambda: LambdaClient;
  /** For invoking the list function (a single attempt: see cli/aws.ts). */
  readonly invoke: LambdaClient;
  readonly efs: EFSClient;
  readonly ec2: EC2Client;
  /** For the scheduled side (schedules, queues, status table); without them it is not checked. */
  readonly schedules?: ScheduleDoctorClients;
}

export interface DoctorReport {
  /** The region the gateway was looked for in, when known. */
  readonly region: string | undefined;
  readonly checks: readonly Check[];
}

/** Runs every check; a check that fails is a `fail` in the report, an AWS call that fails is thrown as a typed error. */
export async function diagnoseGateway(plane: ControlPlane, clients: DoctorClients, expect: DoctorExpectations = {}): Promise<DoctorReport> {
  const checks = await runChecks(plane, clients, expect);
  if (clients.schedules !== undefined) checks.push(...(await checkSchedulesAndQueues(plane, clients.schedules)));
  const region = plane.region ?? (await clients.lambda.config.region().catch(() => undefined));
  return { region, checks };
}

async function runChecks(plane: ControlPlane, clients: DoctorClients, expect: DoctorExpectations): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (check: string, status: CheckStatus, detail: string) => checks.push({ check, status, detail });
  const { lambda, efs, ec2 } = clients;
  const region = plane.region ?? (await lambda.config.region().catch(() => undefined));

  const configurations = new Map<string, FunctionConfiguration>();
  for (const role of FUNCTION_ROLES) {
    const name = functionName(plane.stack, role);
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

  for (const role of [PRUNE_ROLE, ...CONTROL_FUNCTION_ROLES] as const) {
    const check = await supportingFunctionCheck(plane, lambda, role, region);
    add(check.check, check.status, check.detail);
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

  const accessPoint = await efs
    .send(new DescribeAccessPointsCommand({ AccessPointId: accessPointId }))
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
    .send(new DescribeFileSystemsCommand({ FileSystemId: fileSystemId }))
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
    mountTargets = (await efs.send(new DescribeMountTargetsCommand({ FileSystemId: fileSystemId }))).MountTargets ?? [];
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

  const all = [...configurations.values()];
  if (vpcId !== undefined && region !== undefined) {
    const envOf = (configuration: FunctionConfiguration) => configuration.Environment?.Variables ?? {};
    const isSet = (configuration: FunctionConfiguration | undefined, name: string) => configuration !== undefined && (envOf(configuration)[name]?.trim() ?? '') !== '';
    const publishers = ['backup', 'restore'].map((role) => configurations.get(role)).filter((configuration) => configuration !== undefined);
    const bucket = publishers.map((configuration) => envOf(configuration)[FUNCTION_ENV.bucket]).find((name) => name !== undefined && name !== '');
    const network = await checkNetwork(
      plane,
      region,
      {
        vpcId,
        subnetIds: [...new Set(all.flatMap((configuration) => configuration.VpcConfig?.SubnetIds ?? []))],
        securityGroupIds: [...new Set(all.flatMap((configuration) => configuration.VpcConfig?.SecurityGroupIds ?? []))],
        publishesEvents: publishers.some((configuration) => (envOf(configuration)[FUNCTION_ENV.eventBus] ?? '') !== ''),
        usesWorkQueue: isSet(configurations.get('backup'), FUNCTION_ENV.workQueueUrl),
        readsIdentitySecrets: isSet(configurations.get('restore'), FUNCTION_ENV.stackPrefix),
        ...(bucket !== undefined && { bucket }),
      },
      inVpc,
      { ec2, efs },
    );
    for (const check of network) add(check.check, check.status, check.detail);
  }

  if (configurations.has('list') && available.length > 0) {
    for (const check of await ownershipCheck(plane, clients.invoke, posix?.Uid, posix?.Gid, root)) add(check.check, check.status, check.detail);
  }
  return checks;
}

/**
 * The tenant tree's real owner, read by the list function, against the access point's POSIX
 * user; and, from the same answer, the names in the base dir no backup covers (a directory
 * named `Acme` or `acme.old` by hand, a symlinked tenant): a warning naming them; and the
 * interrupted restores its listing settled first (a restore killed on the volume, rolled back),
 * which `tenants list --stack` says too: a warning saying each.
 */
async function ownershipCheck(plane: ControlPlane, client: LambdaClient, uid: number | undefined, gid: number | undefined, root: string): Promise<Check[]> {
  let answered: { skipped?: unknown; recovered?: unknown; tenants?: unknown; ownership?: unknown } | undefined;
  const owner = await ownershipOnly(plane, client, uid, gid, root, (answer) => (answered = isRecord(answer) ? answer : undefined));
  const skipped = answered?.skipped;
  const checks = [owner];
  const named = Array.isArray(skipped) ? skipped.filter((entry): entry is { name: string } => typeof (entry as { name?: unknown })?.name === 'string') : [];
  if (named.length > 0) {
    const names = named.slice(0, 5).map((entry) => quotedPath(entry.name)).join(', ');
    const detail = `${named.length}${named.length >= 20 ? ' or more' : ''} name${named.length === 1 ? '' : 's'} in ${root} that no backup covers (not a tenant name, or a symlink): ${names}${named.length > 5 ? ', …' : ''}; rename or move them (openclaw --stack ${plane.stack} tenants list names each)`;
    checks.push({ check: 'tenant names', status: 'warn', detail });
  }
  // A field that is no such list (a later or broken gateway's) is no news here: the ownership check stands.
  const settled = recoveredInAnswers([answered?.recovered]) ?? [];
  if (settled.length > 0) {
    // Whether the tenant is there now (a rolled-back restore of a new tenant leaves none), from the answer's names and its report's tenants; of an answer cut to fit a Lambda response, taken as there.
    const report = ownershipOf(answered);
    const names = new Set([...(Array.isArray(answered?.tenants) ? answered.tenants : []), ...(report?.tenants.map((tenant) => tenant.name) ?? [])]);
    const cut = (report?.tenantsOmitted ?? 0) > 0;
    const said = settled.slice(0, 5).map(({ tenant, action }) => recoveryText(tenant, action, cut || names.has(tenant)));
    checks.push({ check: 'interrupted restores', status: 'warn', detail: `${said.join('; ')}${settled.length > 5 ? `; and ${settled.length - 5} more (openclaw --stack ${plane.stack} tenants list says each)` : ''}` });
  }
  return checks;
}

async function ownershipOnly(plane: ControlPlane, client: LambdaClient, uid: number | undefined, gid: number | undefined, root: string, onAnswer: (answer: unknown) => void): Promise<Check> {
  const check = 'tenant ownership';
  const name = functionName(plane.stack, 'list');
  const request = { ownership: true, ...(uid !== undefined && { expectUid: uid }), ...(gid !== undefined && { expectGid: gid }) };
  let answer: unknown;
  try {
    const output = await client.send(new InvokeCommand({ FunctionName: name, InvocationType: 'RequestResponse', Payload: new TextEncoder().encode(JSON.stringify(request)) }));
    answer = output.Payload === undefined || output.Payload.length === 0 ? undefined : JSON.parse(new TextDecoder().decode(output.Payload));
    if (output.FunctionError !== undefined) return { check, status: 'fail', detail: `${name} failed instead of answering (${output.FunctionError})` };
  } catch (error) {
    if (error instanceof SyntaxError) return { check, status: 'fail', detail: `${name} answered something that is not JSON` };
    throw translateAwsError(error, plane, `invoking ${name}`);
  }
  onAnswer(answer);
  if (isFailureResponse(answer)) {
    if (answer.error.code === 'INVALID_REQUEST') return { check, status: 'warn', detail: `${name} does not report ownership (deployed before this CLI version?): redeploy to check it` };
    return { check, status: 'fail', detail: `${name}: ${answer.error.message}` };
  }
  const report = ownershipOf(answer);
  if (report === undefined) return { check, status: 'warn', detail: `${name} answered without an ownership report (an older gateway?)` };
  const who = `${report.expected.uid}:${report.expected.gid}`;
  const omitted = typeof report.tenantsOmitted === 'number' && report.tenantsOmitted > 0 ? report.tenantsOmitted : 0;
  const partial = report.complete
    ? ''
    : omitted > 0
      ? ` (${omitted} tenants left out of the list function's answer, which Lambda limits to 6 MB, those owned by another user or holding entries of another kept: counts are lower bounds)`
      : ' (the scan stopped at its limit: counts are lower bounds)';
  if (report.base.uid !== report.expected.uid || report.base.gid !== report.expected.gid) {
    return { check, status: 'fail', detail: `the tenant base dir ${root} belongs to ${report.base.uid}:${report.base.gid}, not to the access point's user ${who}: restores cannot create tenants there` };
  }
  const strangers = report.tenants.filter((tenant) => tenant.uid !== report.expected.uid || tenant.gid !== report.expected.gid);
  if (strangers.length > 0) {
    const names = strangers.slice(0, 5).map((tenant) => `${tenant.name} (${tenant.uid}:${tenant.gid})`).join(', ');
    return { check, status: 'fail', detail: `${strangers.length} tenant${strangers.length === 1 ? '' : 's'} not owned by ${who}: ${names}${strangers.length > 5 ? ', …' : ''}; run the gateway as ${who} (infra/README.md)${partial}` };
  }
  const entries = report.tenants.reduce((sum, tenant) => sum + tenant.entries, 0);
  if (report.mismatched > 0) {
    const sample = report.samples.map((entry) => `${shownPath(entry.path)} (${entry.uid}:${entry.gid})`).join(', ');
    return {
      check,
      status: 'warn',
      // `mismatched` counts every tenant's entries, `entries` only those of the tenants answered.
      detail: `${report.mismatched}${omitted > 0 ? '' : ` of ${entries}`} entries are not owned by ${who}, e.g. ${sample}: backups may not read them, and restores give them to ${who}${partial}`,
    };
  }
  return { check, status: report.complete ? 'ok' : 'warn', detail: `${who} owns the base dir and all ${entries} entries of ${report.tenants.length} tenant${report.tenants.length === 1 ? '' : 's'}${partial}` };
}

interface OwnershipAnswer {
  readonly expected: { readonly uid: number; readonly gid: number };
  readonly base: { readonly uid: number; readonly gid: number };
  readonly tenants: readonly { readonly name: string; readonly uid: number; readonly gid: number; readonly entries: number }[];
  readonly mismatched: number;
  readonly samples: readonly { readonly path: string; readonly uid: number; readonly gid: number }[];
  readonly complete: boolean;
  /** Tenants the list function left out of its answer to fit it (bounded-answers.ts boundedOwnership); those owned by another user are kept first. */
  readonly tenantsOmitted?: number;
}

function ownershipOf(answer: unknown): OwnershipAnswer | undefined {
  const report = (answer as { ownership?: unknown } | undefined)?.ownership as Partial<OwnershipAnswer> | undefined;
  const owner = (value: unknown) => typeof (value as { uid?: unknown })?.uid === 'number' && typeof (value as { gid?: unknown })?.gid === 'number';
  if (report === undefined || !owner(report.expected) || !owner(report.base) || !Array.isArray(report.tenants) || !Array.isArray(report.samples)) return undefined;
  if (typeof report.mismatched !== 'number' || typeof report.complete !== 'boolean') return undefined;
  if (!report.tenants.every((tenant) => owner(tenant) && typeof tenant.name === 'string' && typeof tenant.entries === 'number')) return undefined;
  return report as OwnershipAnswer;
}

/** What stops working without each function outside the tenant volume. */
const UNAVAILABLE_WITHOUT: Record<typeof PRUNE_ROLE | ControlFunctionRole, string> = {
  prune: '`tenants prune` and the prune schedules cannot run',
  fanout: '`tenants backup --all` and the all-tenant schedules cannot run',
  monitor: 'no backup outcome is recorded (last failures) and no freshness check runs',
};

/**
 * The prune, fan-out and monitor functions: each exists and is active. Every deployment has
 * all three (infra/stack.ts), so a missing one fails. Unlike the mounted functions, one whose
 * configuration the caller may not read is a warning: the operator policy of a stack deployed
 * before this check allows the monitor's only after a redeploy.
 */
async function supportingFunctionCheck(plane: ControlPlane, lambda: LambdaClient, role: typeof PRUNE_ROLE | ControlFunctionRole, region: string | undefined): Promise<Check> {
  const name = functionName(plane.stack, role);
  const check = `function ${name}`;
  try {
    const configuration = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: name }));
    return { check, ...functionState(configuration) };
  } catch (error) {
    const why = awsErrorName(error);
    if (why === 'ResourceNotFoundException') {
      return { check, status: 'fail', detail: `not found${region === undefined ? '' : ` in ${region}`}: ${UNAVAILABLE_WITHOUT[role]}; redeploy the stack with prefix ${plane.stack}` };
    }
    if (why === 'AccessDeniedException') {
      return { check, status: 'warn', detail: 'not checked: access denied to its configuration (the operator policy of a stack deployed before this CLI version allows it after a redeploy)' };
    }
    throw translateAwsError(error, plane, `reading the configuration of ${name}`);
  }
}

/** The stack's `encryptTo` as the backup function has it: every backup it stores encrypted to those keys too. */
function stackEncryption(value: string | undefined): string {
  const keys = new Set((value ?? '').split(',').map((key) => key.trim()).filter((key) => key !== ''));
  return keys.size === 0 ? '' : `; every backup it stores is encrypted to the stack's ${keys.size === 1 ? 'key' : `${keys.size} keys`} (encryptTo), besides any --encrypt-to names`;
}

/** A function is healthy when it is active and its last update did not fail. */
function functionState(configuration: FunctionConfiguration): { status: CheckStatus; detail: string } {
  const state = configuration.State ?? 'Active';
  const healthy = state === 'Active' && configuration.LastUpdateStatus !== 'Failed';
  return {
    status: healthy ? 'ok' : 'fail',
    detail: healthy
      ? `${configuration.Runtime ?? 'runtime ?'}, ${configuration.MemorySize ?? '?'} MB, ${configuration.Timeout ?? '?'} s timeout`
      : `state ${state}${configuration.StateReason ? ` (${configuration.StateReason})` : ''}, last update ${configuration.LastUpdateStatus ?? '?'}`,
  };
}

function checkFunction(add: (check: string, status: CheckStatus, detail: string) => void, name: string, role: FunctionRole, configuration: FunctionConfiguration): void {
  const { status, detail } = functionState(configuration);
  add(`function ${name}`, status, detail);
  const subnets = configuration.VpcConfig?.SubnetIds ?? [];
  if (subnets.length === 0) add(`${name} VPC`, 'fail', 'not in a VPC: it cannot reach the EFS mount targets');

  const mounts = configuration.FileSystemConfigs ?? [];
  const env = configuration.Environment?.Variables ?? {};
  const tenantsDir = env[FUNCTION_ENV.tenantsDir] ?? TENANTS_MOUNT_PATH;
  if (mounts.length !== 1) {
    add(`${name} mount`, 'fail', mounts.length === 0 ? 'mounts no EFS file system' : `mounts ${mounts.length} file systems, expected one`);
  } else if (mounts[0]!.LocalMountPath !== tenantsDir) {
    add(`${name} mount`, 'fail', `mounted at ${mounts[0]!.LocalMountPath ?? '?'}, but ${FUNCTION_ENV.tenantsDir} is ${tenantsDir}`);
  } else {
    add(`${name} mount`, 'ok', `${mounts[0]!.Arn?.split('/').pop() ?? '?'} at ${tenantsDir}`);
  }

  if (role !== 'list') {
    const { bucket, eventBus } = FUNCTION_ENV;
    const missing = [bucket, eventBus].filter((key) => env[key] === undefined || env[key] === '');
    if (missing.includes(bucket)) add(`${name} environment`, 'fail', `no ${bucket}: it cannot reach S3 without an endpoint`);
    else if (missing.length > 0) add(`${name} environment`, 'warn', `no ${eventBus}: no completion events are published`);
    else add(`${name} environment`, 'ok', `bucket ${env[bucket]}, events to ${env[eventBus]}${role === 'backup' ? stackEncryption(env[FUNCTION_ENV.encryptTo]) : ''}`);
  }
}
