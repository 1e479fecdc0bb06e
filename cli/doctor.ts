// `openclaw doctor` (remote mode): the gateway's checklist (shared/control-plane/doctor.ts
// and doctor-schedules.ts say what is checked, with read-only calls only), printed; exits 1
// when a check fails.

import { InvalidArgumentError, type Command } from 'commander';

import type { Check, CheckStatus } from '../shared/control-plane/doctor.js';
import type { ControlPlane } from '../shared/control-plane/deployment.js';
import type { ConfiguredEndpoint } from '../shared/storage/configured-endpoint.js';
import { OpenClawError, ReportedError } from '../shared/errors.js';
import { shownText } from '../shared/format.js';
import { controlPlaneEndpoint, dynamoDbClient, ec2Client, efsClient, eventBridgeClient, invokeClient, lambdaClient, schedulerClient, sqsClient } from './aws.js';
import { addControlPlaneOptions, once, requireRemote, type CliContext } from './context.js';

export function registerDoctor(program: Command, context: CliContext): void {
  addControlPlaneOptions(
    program
      .command('doctor')
      .description('check the deployed gateway: functions, EFS file system, access point, mount targets, network paths, tenant ownership, schedules, queues, last failures, freshness (remote mode); locally, as root, the directories above the base dir')
      .option('--expect-root-path <path>', 'the access point\'s expected root directory, e.g. /tenants', once(absolutePath))
      .option('--expect-uid <uid>', 'the access point\'s expected POSIX user ID', once(posixId))
      .option('--expect-gid <gid>', 'the access point\'s expected POSIX group ID', once(posixId)),
  ).action(async (flags: { expectRootPath?: string; expectUid?: number; expectGid?: number }) => {
    if (context.remote === undefined && flags.expectRootPath === undefined && flags.expectUid === undefined && flags.expectGid === undefined) {
      await localDoctor(context);
      return;
    }
    const plane = requireRemote(context, 'doctor', ' (without, doctor checks the local base dir)');
    context.exitAtOnceOnInterrupt();
    const [{ diagnoseGateway }, lambda, invoke, efs, ec2, scheduler, sqs, dynamodb, events] = await Promise.all([
      import('../shared/control-plane/doctor.js'),
      lambdaClient(plane),
      invokeClient(plane),
      efsClient(plane),
      ec2Client(plane),
      schedulerClient(plane),
      sqsClient(plane),
      dynamoDbClient(plane),
      eventBridgeClient(plane),
    ]);
    const report = await diagnoseGateway(
      plane,
      { lambda, invoke, efs, ec2, schedules: { scheduler, sqs, dynamodb, events, lambda } },
      { rootPath: flags.expectRootPath, uid: flags.expectUid, gid: flags.expectGid },
    );
    const { region } = report;
    const endpoints = await endpointsUsed(plane);
    const checks = [...report.checks, endpointsCheck(endpoints)];
    const failed = checks.filter((check) => check.status === 'fail').length;
    const warned = checks.filter((check) => check.status === 'warn').length;
    const mark: Record<CheckStatus, string> = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' };
    context.output.result({ stack: plane.stack, ok: failed === 0, endpoints, checks }, [
      `Gateway ${plane.stack}${region === undefined ? '' : ` in ${region}`}:`,
      ...checks.map((check) => `  ${mark[check.status]}  ${check.check}: ${check.detail}`),
      `${checks.length} checks: ${failed} failed, ${warned} warning${warned === 1 ? '' : 's'}`,
    ]);
    if (failed > 0) throw new ReportedError('DOCTOR_FAILED', `${failed} of ${checks.length} checks failed`);
  });
}

/**
 * `openclaw doctor` in local mode: the base dir (there, a directory this user can read) and its
 * ancestors, as root must trust them (shared/tenant/base-dir-ancestors.ts, warnings only).
 * Exit 1 only when the base dir fails.
 */
async function localDoctor(context: CliContext): Promise<void> {
  const { tenantsDir } = context;
  const checks: Check[] = [];
  // A base dir that is missing, a file or unreadable fails every command: doctor said "ok" of it.
  const { assertTenantsDirShape, countTenantDirectories, listSkippedTenants } = await import('../shared/tenant/tenants.js');
  try {
    // A tenant's own directory, or the base dir's parent, every command refuses: doctor counted its subdirectories as tenants.
    await assertTenantsDirShape(tenantsDir);
    const tenants = await countTenantDirectories(tenantsDir);
    checks.push({ check: 'base dir', status: 'ok', detail: `${tenantsDir} holds ${tenants} tenant${tenants === 1 ? '' : 's'}` });
    // A directory no command backs up (`Acme`, `acme.old`, a tenant that is a symlink): tenants list
    // and backup --all name it, as the gateway's doctor does; the local one said "0 warnings".
    const skipped = await listSkippedTenants(tenantsDir);
    for (const { reason } of skipped.slice(0, 10)) checks.push({ check: 'tenant names', status: 'warn', detail: reason });
    if (skipped.length > 10) checks.push({ check: 'tenant names', status: 'warn', detail: `and ${skipped.length - 10} more such names in ${tenantsDir} (tenants list names them all)` });
    // A killed encrypted backup's plaintext copies stay until a command that sweeps (doctor does not): say where they are.
    const { judgedDeadScratchAreas } = await import('../shared/tenant/base-dir-sweep.js');
    const { made, notMade } = await judgedDeadScratchAreas(tenantsDir);
    const shown = (names: string[]) => (names.length > 3 ? `${names.slice(0, 3).join(', ')} and ${names.length - 3} more` : names.join(', '));
    if (made.length > 0) {
      checks.push({
        check: 'scratch areas',
        status: 'warn',
        detail: `${shown(made)} in ${tenantsDir}: ${made.length === 1 ? 'a killed encrypted backup\'s scratch area holds' : 'killed encrypted backups\' scratch areas hold'} plaintext copies of tenant files; run tenants list (or any tenants command but a dry run) to remove ${made.length === 1 ? 'it' : 'them'}`,
      });
    }
    // Named like one, not made by the tool: tenants list moves it aside (slot.ts setAside), never removes it.
    if (notMade.length > 0) {
      const one = notMade.length === 1;
      checks.push({
        check: 'scratch areas',
        status: 'warn',
        detail: `${shown(notMade)} in ${tenantsDir}: ${one ? 'a directory' : 'directories'} named like a killed encrypted backup's scratch area but not made by this tool (no marker of its own, not the base dir owner's); tenants list moves ${one ? 'it' : 'them'} aside (the name without its leading dot, ending .not-removed), nothing in ${one ? 'it' : 'them'} removed: inspect ${one ? 'it' : 'them'}, then remove ${one ? 'it' : 'them'} by hand`,
      });
    }
  } catch (error) {
    if (!(error instanceof OpenClawError)) throw error;
    checks.push({ check: 'base dir', status: 'fail', detail: error.message });
  }
  if (process.geteuid?.() !== 0) {
    checks.push({ check: 'base dir ancestors', status: 'ok', detail: 'not checked: not run as root (only root follows a swapped base dir into directories its user may not write)' });
  } else {
    const { unsafeAncestors } = await import('../shared/tenant/base-dir-ancestors.js');
    const unsafe = await unsafeAncestors(tenantsDir);
    for (const { dir, why } of unsafe) {
      checks.push({ check: 'base dir ancestors', status: 'warn', detail: `${dir} is ${why}: that user can swap the base dir below it for a symlink, and root's commands then restore into and back up from wherever it leads; keep the directories above the base dir root's` });
    }
    if (unsafe.length === 0) checks.push({ check: 'base dir ancestors', status: 'ok', detail: `every directory above ${tenantsDir} is root's, and none is writable by others without the sticky bit` });
  }
  const failed = checks.filter((check) => check.status === 'fail').length;
  const warned = checks.filter((check) => check.status === 'warn').length;
  const mark: Record<CheckStatus, string> = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' };
  context.output.result({ tenantsDir, ok: failed === 0, checks }, [
    `Base dir ${shownText(tenantsDir)}:`,
    ...checks.map((check) => `  ${mark[check.status]}  ${check.check}: ${shownText(check.detail)}`),
    `${checks.length} check${checks.length === 1 ? '' : 's'}: ${failed} failed, ${warned} warning${warned === 1 ? '' : 's'}`,
  ]);
  if (failed > 0) throw new ReportedError('DOCTOR_FAILED', `${failed} of ${checks.length} checks failed`);
}

/** The services doctor calls, by the SDK's service id. */
const DOCTOR_SERVICES = ['Lambda', 'EFS', 'EC2', 'Scheduler', 'SQS', 'DynamoDB', 'EventBridge'] as const;

/** Which endpoint each of doctor's clients called: a configured one (and why), or AWS's own (null). */
async function endpointsUsed(plane: ControlPlane): Promise<Record<string, ConfiguredEndpoint | null>> {
  const found = await Promise.all(DOCTOR_SERVICES.map(async (service) => [service, (await controlPlaneEndpoint(plane, service)) ?? null] as const));
  return Object.fromEntries(found);
}

function endpointsCheck(endpoints: Record<string, ConfiguredEndpoint | null>): Check {
  const configured = Object.entries(endpoints).filter((entry): entry is [string, ConfiguredEndpoint] => entry[1] !== null);
  return {
    check: 'endpoints',
    status: 'ok',
    detail:
      configured.length === 0
        ? `AWS's own for ${DOCTOR_SERVICES.join(', ')} (no endpoint URL configured)`
        : configured.map(([service, endpoint]) => `${service} via ${endpoint.url} (${endpoint.source})`).join('; '),
  };
}

/** An EFS access point's POSIX user or group ID: 0 to 2^32-1 (one past it never matched, and the check failed naming no mistake). */
function posixId(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 4_294_967_295) throw new InvalidArgumentError('must be a whole number from 0 to 4294967295');
  return Number(value);
}

/** An access point's root directory is absolute (EFS refuses any other): a relative one never matched. */
function absolutePath(value: string): string {
  if (!value.startsWith('/')) throw new InvalidArgumentError('must be an absolute path, as the access point\'s root directory is, e.g. /tenants');
  return value;
}
