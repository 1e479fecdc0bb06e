// Scheduled backups on a deployed gateway, as EventBridge Scheduler schedules: the service
// behind `openclaw cron add|list|rm|migrate` in remote mode, over the clients it is given
// (the CLI makes them for the chosen profile and region; tests mock them).
//
// Why Scheduler: the previous version made one EventBridge rule per cron on the default bus,
// which holds 300 rules (100 in some regions) shared with everything else there, and every
// rule set to "0 3 * * *" fired in the same second. Scheduler allows 1,000,000 schedules per
// account and region, runs each in a time zone, can spread a start over a flexible window,
// and retries delivery with a dead-letter queue per schedule.
//
// `add` converts the 5-field schedule to cron() (schedule/cron-schedule.ts), and creates the
// schedule `<tenant>.<cron>` (or `_all.<cron>` for every tenant, schedule/schedule-names.ts)
// in the stack's group `<prefix>`: for one tenant it invokes the backup function with the
// `--cmd` parsed as one `openclaw tenants backup` (schedule/cron-command.ts; its
// `--encrypt-to` recipients and those of its `--recipients-file`s, read here, are stored in
// the schedule's payload: public keys only), or the prune function with a `tenants prune`;
// for every tenant, the fan-out function with the `--to` template (control-plane/fan-out.ts)
// and the recipients of `cron add --all --encrypt-to/--recipients-file`, which every queued
// backup encrypts to.
// The target is invoked with the stack's role `<prefix>-scheduler-<region>`, retried for at
// most SCHEDULE_RETRY_POLICY, then sent to `<prefix>-schedule-dlq`. The destination is
// checked against the target function's own policy (read from its environment): refuse now
// what it would refuse at 3 a.m. So is a field of the payload that the target's version does
// not take (one added since the first gateway with schedules: its parser is asked,
// gateway-fields.ts). What `cron list` shows is kept in the status table's cron catalog
// (status-table.ts): ListSchedules returns names and states only, and one GetSchedule per
// schedule would be 10,000 calls for 10,000 tenants. A schedule whose catalog entry
// cannot be written is taken back.
//
// The rules of the previous version (legacy-cron-rules.ts) keep running until `cron migrate`
// moves them: `list` shows them, `rm` removes them, `add` refuses to double one.

import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetFunctionCommand, InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import {
  CreateScheduleCommand,
  DeleteScheduleCommand,
  ListSchedulesCommand,
  UpdateScheduleCommand,
  type CreateScheduleCommandInput,
  type SchedulerClient,
  type ScheduleSummary,
} from '@aws-sdk/client-scheduler';

import { RemoteError, UsageError } from '../errors.js';
import { assertNotPlaintextAsAge, backupRecipients, withRecipientsFiles } from '../archive/encrypted-archive.js';
import { S3_OBJECT_FLAGS, s3ObjectSettings, type S3ObjectFlags } from '../storage/s3-object-settings.js';
import type { BackupCommand, PruneCommand } from '../operations.js';
import { assertAllTenantsDestination, cronScheduleInput, fanOutScheduleInput, MAX_DESCRIPTION_LENGTH, parseScheduledCommand } from '../schedule/cron-command.js';
import { firstRunSkippedByClockChange, nextRuns, scheduleShape, toEventBridgeCron } from '../schedule/cron-schedule.js';
import { assertDistinctDestinations } from '../schedule/run-destinations.js';
import { expandTemplate, hasPlaceholders } from '../schedule/destination-template.js';
import { DEFAULT_TIME_ZONE, assertTimeZone, isUtc } from '../schedule/schedule-options.js';
import { ALL_TENANTS_LABEL, compareCrons, isAllTenants, ownerLabel, parseScheduleName, scheduleName, scheduleNamePrefix, type CronOwner } from '../schedule/schedule-names.js';
import { assertTenantName } from '../tenant/names.js';
import { awsErrorName, regionInUse, translateAwsError } from './aws-errors.js';
import {
  arnParts,
  functionName,
  PRUNE_ROLE,
  queueArn,
  scheduleDeadLetterQueueName,
  scheduleGroupName,
  schedulerRoleArn,
  statusTableName,
  type ArnParts,
  type ControlPlane,
} from './deployment.js';
import { readFunctionConfig } from './function-config.js';
import { addedFieldsOf, fieldCheckRequest, flagsOf, olderTargetError, refusedFields, type CheckedRole } from './gateway-fields.js';
import { findLegacyCron, listLegacyCrons, removeLegacyRule, ruleTags, type LegacyCron } from './legacy-cron-rules.js';
import { assertOverwriteAllowed, assertRemoteStorage, assertRemoteStore } from './remote-policy.js';
import { deleteCronEntry, putCronEntry, readCronEntries, type CronEntry } from './status-table.js';

export interface CronClients {
  readonly scheduler: Pick<SchedulerClient, 'send'>;
  readonly lambda: Pick<LambdaClient, 'send'>;
  readonly dynamodb: Pick<DynamoDBClient, 'send'>;
  /** For the rules of the previous version. */
  readonly events: Pick<EventBridgeClient, 'send'>;
}

/**
 * How long Scheduler keeps trying to invoke a target it could not reach (throttled, the
 * function being updated) before the invocation goes to the schedule DLQ: a nightly backup
 * should not start at noon.
 */
export const SCHEDULE_RETRY_POLICY = { MaximumEventAgeInSeconds: 3 * 3600, MaximumRetryAttempts: 20 } as const;

export interface AddCronRequest {
  /** One tenant's cron (with `cmd`), or every tenant's (`all`, with `to`). */
  readonly owner: CronOwner;
  /** The cron's name, unique per owner. */
  readonly name: string;
  /** 5 Unix cron fields, read in `timeZone`. */
  readonly schedule: string;
  /** An IANA time zone name. @default UTC */
  readonly timeZone?: string;
  /** The flexible window's length in minutes; 0 or absent: off. */
  readonly windowMinutes?: number;
  /** One tenant: the `openclaw tenants backup …` line to run. */
  readonly cmd?: string;
  /** Every tenant: the destination template (naming {tenant}). */
  readonly to?: string;
  /** Every tenant: replace existing archives (only where the gateway allows it). */
  readonly overwrite?: boolean;
  /** Every tenant: age1… recipients each archive is encrypted to (one tenant: in `cmd`). */
  readonly encryptTo?: readonly string[];
  /** Every tenant: files of recipients (as `age -R`), read now; their keys are stored in the schedule. */
  readonly recipientsFiles?: readonly string[];
  /** Ends the wait on a recipients file that is a FIFO whose writer has not come (Ctrl-C, SIGTERM). */
  readonly signal?: AbortSignal;
  /** Every tenant: `--sse`, `--sse-kms-key-id`, `--storage-class` of each archive (one tenant: in `cmd`). */
  readonly storage?: S3ObjectFlags;
  /** Replace an existing cron of that name. */
  readonly replace?: boolean;
  /** The state to create it in (a migrated rule keeps its own). @default ENABLED */
  readonly state?: 'ENABLED' | 'DISABLED';
}

export interface AddedCron {
  /** The tenant, or `*` for every tenant. */
  readonly tenant: string;
  readonly all: boolean;
  readonly name: string;
  /** `<group>/<schedule name>`. */
  readonly scheduleName: string;
  readonly group: string;
  readonly scheduleArn: string | undefined;
  /** The function the schedule invokes. */
  readonly target: string;
  /** The schedule as given (whitespace collapsed) and in Scheduler's syntax. */
  readonly schedule: string;
  readonly expression: string;
  readonly timeZone: string;
  readonly windowMinutes: number;
  readonly cmd: string;
  /** What the schedule runs: a backup (of one tenant or, `all`, of every tenant) or a prune. */
  readonly kind: 'backup' | 'prune';
  /** One tenant: the backup (`to` may hold placeholders) or the prune the function runs. */
  readonly command?: BackupCommand | PruneCommand;
  /** The destination, with its placeholders (a prune: the location it prunes). */
  readonly to: string;
  readonly templated: boolean;
  /** The recipients every backup the schedule runs is encrypted to (public keys, stored in the schedule). */
  readonly encryptTo?: readonly string[];
  /** The next three runs. */
  readonly nextRuns: readonly Date[];
  /** The first run within a year that the zone's clocks skip (`2027-03-28 02:30`, local): Scheduler does not run it. */
  readonly skippedByClockChange?: string;
  readonly replaced: boolean;
}

/** What the schedule targets: the function's ARN, and where its account, region and partition are. */
interface Targets {
  readonly backupArn: string;
  readonly where: ArnParts;
  /** The backup function's own policy, from its environment; undefined when unreadable (doctor says more). */
  readonly config: ReturnType<typeof readFunctionConfig> | undefined;
  fanOutArn(): Promise<string>;
  /** The prune function's ARN and its own policy. */
  prune(): Promise<{ readonly arn: string; readonly config: ReturnType<typeof readFunctionConfig> | undefined }>;
}

async function resolveTargets(plane: ControlPlane, lambda: CronClients['lambda']): Promise<Targets> {
  const backupFunction = functionName(plane.stack, 'backup');
  let found;
  try {
    found = await lambda.send(new GetFunctionCommand({ FunctionName: backupFunction }));
  } catch (error) {
    throw translateAwsError(error, plane, `looking up the backup function ${backupFunction}`);
  }
  const backupArn = found.Configuration?.FunctionArn ?? '';
  const where = arnParts(backupArn);
  if (where === undefined) throw new RemoteError('REMOTE_PROTOCOL', `the backup function ${backupFunction} has no usable ARN (${JSON.stringify(backupArn)})`);
  const environment = found.Configuration?.Environment?.Variables;
  let config;
  try {
    config = environment === undefined ? undefined : readFunctionConfig(environment);
  } catch {
    config = undefined; // a misconfigured function: doctor says more
  }
  let fanOut: Promise<string> | undefined;
  let prune: ReturnType<Targets['prune']> | undefined;
  return {
    backupArn,
    where,
    config,
    fanOutArn: () =>
      (fanOut ??= (async () => {
        const name = functionName(plane.stack, 'fanout');
        try {
          return (await lambda.send(new GetFunctionCommand({ FunctionName: name }))).Configuration?.FunctionArn ?? '';
        } catch (error) {
          if (awsErrorName(error) === 'ResourceNotFoundException') {
            throw new UsageError(`the gateway ${plane.stack} has no fan-out function ${name}: deploy this version of the stack to back up every tenant`, 'STACK_NOT_FOUND');
          }
          throw translateAwsError(error, plane, `looking up the fan-out function ${name}`);
        }
      })()),
    prune: () =>
      (prune ??= (async () => {
        const name = functionName(plane.stack, PRUNE_ROLE);
        let configuration;
        try {
          configuration = (await lambda.send(new GetFunctionCommand({ FunctionName: name }))).Configuration;
        } catch (error) {
          if (awsErrorName(error) === 'ResourceNotFoundException') {
            throw new UsageError(`the gateway ${plane.stack} has no prune function ${name}: deploy this version of the stack to schedule prunes`, 'STACK_NOT_FOUND');
          }
          throw translateAwsError(error, plane, `looking up the prune function ${name}`);
        }
        let pruneConfig;
        try {
          pruneConfig = configuration?.Environment?.Variables === undefined ? undefined : readFunctionConfig(configuration.Environment.Variables);
        } catch {
          pruneConfig = undefined; // a misconfigured function: doctor says more
        }
        return { arn: configuration?.FunctionArn ?? '', config: pruneConfig };
      })()),
  };
}

export async function addCron(plane: ControlPlane, clients: CronClients, request: AddCronRequest): Promise<AddedCron> {
  let looked: Promise<Targets> | undefined;
  const targetsOnce = () => (looked ??= resolveTargets(plane, clients.lambda));
  // A name ending in .age with no recipients is refused unless the stack encrypts every backup itself (its encryptTo).
  const spec = await cronSpec(plane, request, {
    stackRecipients: () => targetsOnce().then((targets) => targets.config?.encryptTo ?? [], () => []),
  });
  if (!isAllTenants(request.owner)) {
    const legacy = await findLegacyCron(plane, clients.events, request.owner.tenant, request.name);
    if (legacy !== undefined) {
      throw new RemoteError(
        'CRON_EXISTS',
        `tenant "${legacy.tenant}" already has a cron "${legacy.name}" as an EventBridge rule of the previous version (${legacy.rule}): ` +
          `move it with \`cron migrate\`, or remove it with \`cron rm ${legacy.tenant} ${legacy.name}\``,
      );
    }
  }
  const targets = await targetsOnce();
  return createSchedule(plane, clients, targets, spec, request);
}

/** Everything about the cron that needs no AWS call: checked before anything is created. */
interface CronSpec {
  readonly owner: CronOwner;
  readonly name: string;
  readonly scheduleName: string;
  readonly converted: ReturnType<typeof toEventBridgeCron>;
  readonly timeZone: string;
  readonly windowMinutes: number;
  readonly cmd: string;
  readonly to: string;
  readonly kind: 'backup' | 'prune';
  readonly command?: BackupCommand | PruneCommand;
  readonly overwrite: boolean;
  readonly encryptTo?: readonly string[];
  readonly input: string;
  readonly description: string;
}

/** `migrating`: a rule of the previous version is moved as it is, even one whose runs write one archive. */
async function cronSpec(
  plane: ControlPlane,
  request: AddCronRequest,
  { migrating = false, stackRecipients = async () => [] }: { migrating?: boolean; stackRecipients?: () => Promise<readonly string[]> } = {},
): Promise<CronSpec> {
  /** Plaintext under a name ending in .age: refused, unless the stack adds its own recipients to every backup. */
  const assertEncrypted = async (to: string) => {
    if (/\.age$/i.test(to) && (await stackRecipients()).length > 0) return;
    assertNotPlaintextAsAge(to);
  };
  const { owner, name } = request;
  if (!isAllTenants(owner)) assertTenantName(owner.tenant);
  const schedule = scheduleName(owner, name);
  const converted = toEventBridgeCron(request.schedule);
  const timeZone = assertTimeZone(request.timeZone ?? DEFAULT_TIME_ZONE);
  const zone = isUtc(timeZone) ? undefined : timeZone;
  const windowMinutes = request.windowMinutes ?? 0;
  let cmd: string;
  let to: string;
  let command: BackupCommand | PruneCommand | undefined;
  let kind: 'backup' | 'prune' = 'backup';
  let input: string;
  let overwrite: boolean;
  let encryptTo: readonly string[] = [];
  if (isAllTenants(owner)) {
    if (request.to === undefined) throw new UsageError('cron add --all needs --to: the destination template, e.g. s3://bucket/backups/{tenant}/{date}.tar.zst');
    if (request.cmd !== undefined) throw new UsageError('cron add --all takes --to, not --cmd (which backs up one tenant)');
    to = request.to;
    assertAllTenantsDestination(to);
    // The gateway fills the template in; no shell ever runs a `$(date …)` in it (one the
    // user's shell ran, in double quotes, is the date of `cron add`: a fixed name, refused below).
    if (!migrating && to.includes('$(')) {
      throw new UsageError(
        `--to ${JSON.stringify(to)}: cron add --all's --to is a template the gateway fills in at each run, where no shell runs $(date …): ` +
          `write {date} (YYYY-MM-DD), {time} (HHMMSS) or {date:FORMAT} (e.g. {date:%F-%H%M}), in the schedule's --timezone`,
        'INVALID_CRON_COMMAND',
      );
    }
    overwrite = request.overwrite === true;
    encryptTo = await recipientTexts(request.encryptTo ?? [], request.recipientsFiles, request.signal);
    if (encryptTo.length === 0) await assertEncrypted(to);
    // As given, like a tenant's --cmd: the keys of a --recipients-file are in the schedule's input.
    cmd =
      `openclaw tenants backup --all --to ${shellQuote(to)}${overwrite ? ' --overwrite' : ''}` +
      [
        ...(request.encryptTo ?? []).map((text) => ` --encrypt-to ${shellQuote(text)}`),
        ...(request.recipientsFiles ?? []).map((file) => ` --recipients-file ${shellQuote(file)}`),
        ...S3_OBJECT_FLAGS.filter(([key]) => request.storage?.[key] !== undefined).map(([key, flag]) => ` ${flag} ${shellQuote(request.storage![key]!)}`),
      ].join('');
    // Checked now, not when the schedule first fires.
    s3ObjectSettings(request.storage ?? {});
    input = fanOutScheduleInput(name, to, { overwrite, encryptTo, ...(request.storage !== undefined && { storage: request.storage }), ...(zone !== undefined && { timeZone: zone }) });
  } else {
    if (request.cmd === undefined) throw new UsageError(`cron add ${owner.tenant} needs --cmd: the openclaw tenants backup (or tenants prune) command to run`);
    if (request.to !== undefined) throw new UsageError('cron add <tenant> takes --cmd; --to is for cron add --all');
    if ((request.encryptTo?.length ?? 0) > 0 || (request.recipientsFiles?.length ?? 0) > 0) {
      throw new UsageError('cron add <tenant> takes --encrypt-to and --recipients-file inside --cmd; given to cron add itself they go with --all');
    }
    cmd = request.cmd;
    const scheduled = parseScheduledCommand(cmd, { tenant: owner.tenant, stack: plane.stack, ...(zone !== undefined && { timeZone: zone }) });
    kind = scheduled.kind;
    if (scheduled.kind === 'prune') {
      command = scheduled.command;
      to = scheduled.command.in;
      overwrite = false;
    } else {
      command = await withRecipients(scheduled.command, scheduled.recipientsFiles);
      to = command.to;
      overwrite = command.overwrite === true;
      encryptTo = command.encryptTo ?? [];
      if (encryptTo.length === 0) await assertEncrypted(to);
    }
    input = cronScheduleInput(owner.tenant, name, command, zone);
  }
  // Every run must write an archive of its own (the function refuses an existing one without --overwrite).
  if (kind === 'backup' && !overwrite && !migrating) {
    const tenant = isAllTenants(owner) ? 'sample-tenant' : owner.tenant;
    const example = isAllTenants(owner) ? '{date:%F-%H%M}' : undefined;
    assertDistinctDestinations(scheduleShape(converted.canonical), timeZone, (time) => expandTemplate(to, { time, tenant, ...(zone !== undefined && { timeZone: zone }) }), new Date(), example);
  }
  const description = JSON.stringify({ schedule: converted.schedule, cmd, ...(zone !== undefined && { timeZone: zone }) });
  if (description.length > MAX_DESCRIPTION_LENGTH) {
    throw new UsageError(
      `the command is too long to keep in the schedule's description (EventBridge Scheduler allows ${MAX_DESCRIPTION_LENGTH} characters): shorten it` +
        ((request.encryptTo?.length ?? 0) > 1 || /--encrypt-to/.test(request.cmd ?? '') ? ' (several recipients fit in a --recipients-file)' : ''),
      'INVALID_CRON_COMMAND',
    );
  }
  return {
    owner,
    name,
    scheduleName: schedule,
    converted,
    timeZone,
    windowMinutes,
    cmd,
    to,
    kind,
    ...(command !== undefined && { command }),
    overwrite,
    ...(encryptTo.length > 0 && { encryptTo }),
    input,
    description,
  };
}

async function createSchedule(plane: ControlPlane, clients: CronClients, targets: Targets, spec: CronSpec, request: AddCronRequest): Promise<AddedCron> {
  const { scheduler, dynamodb } = clients;
  const all = isAllTenants(spec.owner);
  const sampleTenant = all ? 'sample-tenant' : (spec.owner as { tenant: string }).tenant;
  let targetArn: string;
  if (spec.kind === 'prune') {
    const prune = await targets.prune();
    // The prune function's own policy: refuse now a location it would refuse at 3 a.m.
    if (prune.config !== undefined) assertRemoteStore('prune', spec.to, spec.command?.storage, prune.config);
    targetArn = prune.arn;
  } else {
    if (targets.config !== undefined) {
      // The function's own policy, from its own environment: refuse now what it would refuse at 3 a.m.
      assertRemoteStorage('backup', expandTemplate(spec.to, { time: new Date(), tenant: sampleTenant }), spec.command?.storage, targets.config);
      assertOverwriteAllowed(spec.overwrite, targets.config);
    }
    targetArn = all ? await targets.fanOutArn() : targets.backupArn;
  }
  // A field the target's version does not take would fail every run: refused now (gateway-fields.ts).
  const checkedRole: CheckedRole = spec.kind === 'prune' ? 'prune' : all ? 'fanout' : 'backup';
  // The fan-out's payload; a backup's or prune's command (a backup's `to` filled in for a sample, as it is checked above).
  const scheduled = JSON.parse(spec.input) as Record<string, unknown>;
  const payload = all
    ? scheduled
    : { ...(scheduled.command as Record<string, unknown>), ...(spec.kind === 'backup' && { to: expandTemplate(spec.to, { time: new Date(), tenant: sampleTenant }) }) };
  await assertTargetTakes(plane, clients.lambda, checkedRole, payload);
  const group = scheduleGroupName(plane.stack);
  const input: CreateScheduleCommandInput = {
    Name: spec.scheduleName,
    GroupName: group,
    ScheduleExpression: spec.converted.expression,
    ScheduleExpressionTimezone: spec.timeZone,
    FlexibleTimeWindow: spec.windowMinutes > 0 ? { Mode: 'FLEXIBLE', MaximumWindowInMinutes: spec.windowMinutes } : { Mode: 'OFF' },
    State: request.state ?? 'ENABLED',
    Description: spec.description,
    ActionAfterCompletion: 'NONE',
    Target: {
      Arn: targetArn,
      RoleArn: schedulerRoleArn(plane.stack, targets.where),
      Input: spec.input,
      RetryPolicy: { ...SCHEDULE_RETRY_POLICY },
      DeadLetterConfig: { Arn: queueArn(scheduleDeadLetterQueueName(plane.stack), targets.where) },
    },
  };

  let scheduleArn: string | undefined;
  let replaced = false;
  try {
    scheduleArn = (await scheduler.send(new CreateScheduleCommand(input))).ScheduleArn;
  } catch (error) {
    const name = awsErrorName(error);
    if (name === 'ConflictException') {
      if (request.replace !== true) {
        throw new RemoteError(
          'CRON_EXISTS',
          `${all ? 'every tenant' : `tenant "${ownerLabel(spec.owner)}"`} already has a cron "${spec.name}" (schedule ${group}/${spec.scheduleName}): give --replace, or remove it first with cron rm`,
        );
      }
      try {
        scheduleArn = (await scheduler.send(new UpdateScheduleCommand(input))).ScheduleArn;
        replaced = true;
      } catch (updateError) {
        throw translateAwsError(updateError, plane, `replacing the schedule ${group}/${spec.scheduleName}`);
      }
    } else if (name === 'ResourceNotFoundException') {
      throw new UsageError(
        `the schedule group ${group} does not exist${regionInUse(plane) === undefined ? '' : ` in ${regionInUse(plane)}`}: deploy this version of the stack ${plane.stack} (it creates the group), or check --stack, --region and --aws-profile`,
        'STACK_NOT_FOUND',
      );
    } else {
      throw translateAwsError(error, plane, `creating the schedule ${group}/${spec.scheduleName}`);
    }
  }

  const entry: CronEntry = {
    name: spec.scheduleName,
    tenant: ownerLabel(spec.owner),
    cronName: spec.name,
    schedule: spec.converted.schedule,
    expression: spec.converted.expression,
    timeZone: spec.timeZone,
    windowMinutes: spec.windowMinutes,
    cmd: spec.cmd,
    createdAt: new Date().toISOString(),
  };
  try {
    await putCronEntry(dynamodb, statusTableName(plane.stack), entry);
  } catch (error) {
    // A schedule `cron list` cannot describe is one nobody sees: take a new one back.
    if (!replaced) await scheduler.send(new DeleteScheduleCommand({ Name: spec.scheduleName, GroupName: group })).catch(() => undefined);
    throw translateAwsError(error, plane, `recording the cron in the table ${statusTableName(plane.stack)}${replaced ? ' (the schedule was replaced; run the command again)' : ''}`);
  }

  return {
    tenant: ownerLabel(spec.owner),
    all,
    name: spec.name,
    scheduleName: spec.scheduleName,
    group,
    scheduleArn,
    target: targetArn.split(':').pop() ?? targetArn,
    schedule: spec.converted.schedule,
    expression: spec.converted.expression,
    timeZone: spec.timeZone,
    windowMinutes: spec.windowMinutes,
    cmd: spec.cmd,
    kind: spec.kind,
    ...(spec.command !== undefined && { command: spec.command }),
    to: spec.to,
    templated: hasPlaceholders(spec.to),
    ...(spec.encryptTo !== undefined && { encryptTo: spec.encryptTo }),
    nextRuns: nextRuns(spec.converted, 3, new Date(), spec.timeZone),
    ...withSkippedRun(spec.converted, spec.timeZone),
    replaced,
  };
}

/**
 * Refuses (REMOTE_UNSUPPORTED) a payload with a field added since the first gateway with schedules
 * that the target function does not take, asking its own parser (gateway-fields.ts). A payload
 * without such fields is taken by every version that has schedules: no call.
 */
async function assertTargetTakes(plane: ControlPlane, lambda: Pick<LambdaClient, 'send'>, role: CheckedRole, payload: Record<string, unknown>): Promise<void> {
  const added = addedFieldsOf(payload);
  if (added.length === 0) return;
  const name = functionName(plane.stack, role);
  const what = `asking ${name} whether it takes ${flagsOf(added)}`;
  let output;
  try {
    output = await lambda.send(new InvokeCommand({ FunctionName: name, InvocationType: 'RequestResponse', Payload: new TextEncoder().encode(JSON.stringify(fieldCheckRequest(role, payload))) }));
  } catch (error) {
    throw translateAwsError(error, plane, what);
  }
  let answer: unknown;
  try {
    answer = output?.Payload === undefined || output.Payload.length === 0 ? undefined : JSON.parse(new TextDecoder().decode(output.Payload));
  } catch {
    answer = undefined;
  }
  if (output?.FunctionError !== undefined || answer === undefined) {
    throw new RemoteError('REMOTE_FUNCTION_ERROR', `${what}: it did not answer (${output?.FunctionError ?? 'no answer'}); see its logs, then add the cron again`);
  }
  const refused = refusedFields(answer, added);
  if (refused.length > 0) throw olderTargetError(name, refused);
}

/** One scheduled backup, as `cron list` shows it. */
export interface CronListing {
  /** The tenant, or `*` for every tenant. */
  readonly tenant: string;
  readonly name: string;
  /** `schedule`: EventBridge Scheduler; `rule`: an EventBridge rule of the previous version (see `cron migrate`). */
  readonly kind: 'schedule' | 'rule';
  /** `<group>/<schedule name>`, or the rule's name. */
  readonly id: string;
  /** The schedule as given to `cron add`; null when the cron catalog has no entry for it. */
  readonly schedule: string | null;
  readonly expression: string | null;
  readonly timeZone: string | null;
  readonly windowMinutes: number | null;
  readonly state: string;
  readonly cmd: string | null;
}

/**
 * The crons of one tenant (or every tenant's `--all` crons, or all), sorted by tenant and
 * name: ListSchedules and the cron catalog a page at a time, and the previous version's
 * rules from ListRules: no call per schedule.
 */
export async function listCrons(plane: ControlPlane, clients: Omit<CronClients, 'lambda'>, owner?: CronOwner): Promise<CronListing[]> {
  const prefix = owner === undefined ? undefined : scheduleNamePrefix(owner);
  const group = scheduleGroupName(plane.stack);
  const summaries: ScheduleSummary[] = [];
  let token: string | undefined;
  do {
    let page;
    try {
      page = await clients.scheduler.send(new ListSchedulesCommand({ GroupName: group, ...(prefix !== undefined && { NamePrefix: prefix }), ...(token !== undefined && { NextToken: token }) }));
    } catch (error) {
      if (awsErrorName(error) === 'ResourceNotFoundException') break; // a stack of the previous version: its rules are listed below
      throw translateAwsError(error, plane, `listing the schedules of ${group}`);
    }
    summaries.push(...(page.Schedules ?? []));
    token = page.NextToken;
  } while (token !== undefined);

  let catalog: Map<string, CronEntry>;
  try {
    catalog = summaries.length === 0 ? new Map() : await readCronEntries(clients.dynamodb, statusTableName(plane.stack), prefix);
  } catch (error) {
    throw translateAwsError(error, plane, `reading the cron catalog in ${statusTableName(plane.stack)}`);
  }

  const crons: CronListing[] = [];
  for (const summary of summaries) {
    const parsed = summary.Name === undefined ? undefined : parseScheduleName(summary.Name);
    if (parsed === undefined) continue; // not made by `cron add`
    const entry = catalog.get(summary.Name!);
    crons.push({
      tenant: ownerLabel(parsed.owner),
      name: parsed.cronName,
      kind: 'schedule',
      id: `${group}/${summary.Name!}`,
      schedule: entry?.schedule ?? null,
      expression: entry?.expression ?? null,
      timeZone: entry?.timeZone ?? null,
      windowMinutes: entry?.windowMinutes ?? null,
      state: summary.State ?? 'UNKNOWN',
      cmd: entry?.cmd ?? null,
    });
  }
  if (owner === undefined || !isAllTenants(owner)) {
    for (const legacy of await listLegacyCrons(plane, clients.events, owner?.tenant)) crons.push(legacyListing(legacy));
  }
  return crons.sort((a, b) => compareCrons(a, b) || (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0));
}

/** A UTC schedule has no clock changes; in another zone, the first run they skip, if any. */
function withSkippedRun(converted: ReturnType<typeof toEventBridgeCron>, timeZone: string): { skippedByClockChange?: string } {
  if (isUtc(timeZone)) return {};
  const skipped = firstRunSkippedByClockChange(converted, timeZone);
  return skipped === undefined ? {} : { skippedByClockChange: skipped };
}

function legacyListing(legacy: LegacyCron): CronListing {
  return {
    tenant: legacy.tenant,
    name: legacy.name,
    kind: 'rule',
    id: legacy.rule,
    schedule: legacy.schedule,
    expression: legacy.expression,
    timeZone: 'UTC',
    windowMinutes: 0,
    state: legacy.state,
    cmd: legacy.cmd,
  };
}

/** What `cron rm` removed. */
export interface RemovedCron {
  readonly kind: 'schedule' | 'rule';
  /** `<group>/<schedule name>`, or the rule's name. */
  readonly id: string;
}

/** Removes a cron's schedule (or its rule of the previous version) and its catalog entry. */
export async function removeCron(plane: ControlPlane, clients: Omit<CronClients, 'lambda'>, owner: CronOwner, name: string): Promise<RemovedCron> {
  const schedule = scheduleName(owner, name);
  const group = scheduleGroupName(plane.stack);
  let deleted = true;
  try {
    await clients.scheduler.send(new DeleteScheduleCommand({ Name: schedule, GroupName: group }));
  } catch (error) {
    if (awsErrorName(error) !== 'ResourceNotFoundException') throw translateAwsError(error, plane, `removing the schedule ${group}/${schedule}`);
    deleted = false;
  }
  if (deleted) {
    // An entry without its schedule is never shown (and a later `add` rewrites it): a failure
    // here would only make the command fail after the cron is gone.
    await deleteCronEntry(clients.dynamodb, statusTableName(plane.stack), schedule).catch(() => undefined);
    return { kind: 'schedule', id: `${group}/${schedule}` };
  }
  if (!isAllTenants(owner)) {
    const legacy = await findLegacyCron(plane, clients.events, owner.tenant, name);
    if (legacy !== undefined) {
      await removeLegacyRule(plane, clients.events, legacy.rule);
      return { kind: 'rule', id: legacy.rule };
    }
  }
  const who = isAllTenants(owner) ? `no all-tenants cron "${name}"` : `tenant "${owner.tenant}" has no cron "${name}"`;
  throw new RemoteError('CRON_NOT_FOUND', `${who} on ${plane.stack} (see cron list${isAllTenants(owner) ? '' : ` ${owner.tenant}`})`);
}

/** One rule of the previous version, and what `cron migrate` did (or would do) with it. */
export interface MigratedCron {
  readonly tenant: string;
  readonly name: string;
  readonly rule: string;
  /** `<group>/<schedule name>` it became (or would become). */
  readonly schedule: string;
  readonly outcome: 'migrated' | 'would-migrate' | 'already-migrated' | 'left';
  /** Why a rule was left as it was. */
  readonly reason?: string;
}

/**
 * Moves every cron rule of the previous version to a schedule with the same tenant, name,
 * schedule (UTC, no window), command and state, then removes the rule: the schedule exists
 * before the rule goes, so no night is missed (a run in between could back up twice; the
 * second finds its archive and is refused, not repeated). With `dryRun`, changes nothing.
 * A rule whose tags do not confirm its identity, or whose description was changed by hand,
 * is left in place with the reason.
 */
export async function migrateCrons(plane: ControlPlane, clients: CronClients, options: { dryRun?: boolean } = {}): Promise<MigratedCron[]> {
  const legacy = await listLegacyCrons(plane, clients.events);
  const results: MigratedCron[] = [];
  let targets: Targets | undefined;
  for (const cron of legacy) {
    const owner = { tenant: cron.tenant };
    let schedule: string;
    try {
      schedule = `${scheduleGroupName(plane.stack)}/${scheduleName(owner, cron.name)}`;
    } catch (error) {
      results.push({ tenant: cron.tenant, name: cron.name, rule: cron.rule, schedule: '', outcome: 'left', reason: (error as Error).message });
      continue;
    }
    const base = { tenant: cron.tenant, name: cron.name, rule: cron.rule, schedule };
    const tags = await ruleTags(plane, clients.events, cron.ruleArn);
    if (tags.tenant !== cron.tenant || tags.cronName !== cron.name) {
      results.push({ ...base, outcome: 'left', reason: 'its tags do not name this tenant and cron (made or changed by hand?)' });
      continue;
    }
    let spec: CronSpec;
    try {
      spec = await cronSpec(plane, { owner, name: cron.name, schedule: cron.schedule, cmd: cron.cmd }, { migrating: true });
    } catch (error) {
      results.push({ ...base, outcome: 'left', reason: (error as Error).message });
      continue;
    }
    if (options.dryRun === true) {
      results.push({ ...base, outcome: 'would-migrate' });
      continue;
    }
    targets ??= await resolveTargets(plane, clients.lambda);
    let outcome: MigratedCron['outcome'] = 'migrated';
    try {
      await createSchedule(plane, clients, targets, spec, { owner, name: cron.name, schedule: cron.schedule, cmd: cron.cmd, state: cron.state === 'DISABLED' ? 'DISABLED' : 'ENABLED' });
    } catch (error) {
      // A schedule of that name exists: an earlier migration stopped between its two steps.
      if ((error as RemoteError | undefined)?.code !== 'CRON_EXISTS') throw error;
      outcome = 'already-migrated';
    }
    await removeLegacyRule(plane, clients.events, cron.rule);
    results.push({ ...base, outcome });
  }
  return results;
}

/** `to` as one shell word for the command line `cron list` shows. */
function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./{}-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export { ALL_TENANTS_LABEL };

/**
 * A scheduled backup's command with the recipients of its `--recipients-file`s added, each
 * recipient checked now (a bad key fails `cron add`, not the 3 a.m. backup) and written
 * canonically: the schedule's payload carries public keys only, so every scheduled backup is
 * encrypted.
 */
async function withRecipients(command: BackupCommand, recipientsFiles: readonly string[] | undefined): Promise<BackupCommand> {
  const encryptTo = await recipientTexts(command.encryptTo ?? [], recipientsFiles);
  return encryptTo.length === 0 ? command : { ...command, encryptTo };
}

/** `--encrypt-to` texts and the keys of `--recipients-file`s, checked, canonical, each once. */
async function recipientTexts(texts: readonly string[], recipientsFiles: readonly string[] | undefined, signal?: AbortSignal): Promise<string[]> {
  return backupRecipients(await withRecipientsFiles(texts, recipientsFiles ?? [], signal)).map((recipient) => recipient.text);
}
