// `openclaw doctor`'s second half: the scheduled side of a deployed gateway, read-only.
//   Scheduler   ListSchedules of the group `<prefix>`: how many crons, how many disabled,
//               those whose target is none of the gateway's functions (they never back up),
//               and the previous version's rules still waiting for `cron migrate`
//   Lambda      ListEventSourceMappings of the backup function: the work queue's mapping,
//               enabled, and how many backups it runs at once
//   SQS         GetQueueUrl, GetQueueAttributes: the work queue's depth, the work DLQ, the
//               schedule DLQ and the restore DLQ (with the command that moves a fixed DLQ's
//               messages back), and the async DLQ, found from the backup function's
//               on-failure destination (GetFunctionEventInvokeConfig: the queue has no name of ours)
//   DynamoDB    the status table: the tenants whose last backup failed (the latest five),
//               and the last freshness check (its time, the stale tenants it named)
// Problems of state (messages in a DLQ, failed or stale tenants) are warnings; a missing
// piece of the deployment (no group, no mapping, no table) is a failure.

import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { GetFunctionEventInvokeConfigCommand, ListEventSourceMappingsCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { ListSchedulesCommand, type SchedulerClient } from '@aws-sdk/client-scheduler';
import { GetQueueAttributesCommand, GetQueueUrlCommand, type SQSClient } from '@aws-sdk/client-sqs';

import { parseScheduleName, isAllTenants } from '../schedule/schedule-names.js';
import { awsErrorName, translateAwsError } from './aws-errors.js';
import { functionName, PRUNE_ROLE, restoreDeadLetterQueueName, scheduleDeadLetterQueueName, scheduleGroupName, statusTableName, workDeadLetterQueueName, workQueueName, type ControlPlane } from './deployment.js';
import type { Check, CheckStatus } from './doctor.js';
import { listLegacyCrons } from './legacy-cron-rules.js';
import { getFreshnessRecord, readTenantStatuses } from './status-table.js';

export interface ScheduleDoctorClients {
  readonly scheduler: Pick<SchedulerClient, 'send'>;
  readonly sqs: Pick<SQSClient, 'send'>;
  readonly dynamodb: Pick<DynamoDBClient, 'send'>;
  readonly events: Pick<EventBridgeClient, 'send'>;
  readonly lambda: Pick<LambdaClient, 'send'>;
}

/** The freshness check runs hourly: a record older than this means it stopped. */
const CHECK_OVERDUE_MS = 3 * 3_600_000;
/** Names (failed tenants, crons) one check's line shows at most. */
const SHOWN_IN_A_LINE = 5;

export async function checkSchedulesAndQueues(plane: ControlPlane, clients: ScheduleDoctorClients, now: () => Date = () => new Date()): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (check: string, status: CheckStatus, detail: string) => checks.push({ check, status, detail });
  await scheduleCheck(plane, clients, add);
  await queueChecks(plane, clients, add);
  await asyncDeadLetterQueueCheck(plane, clients, add);
  await statusChecks(plane, clients, add, now());
  return checks;
}

type Add = (check: string, status: CheckStatus, detail: string) => void;

async function scheduleCheck(plane: ControlPlane, clients: ScheduleDoctorClients, add: Add): Promise<void> {
  const group = scheduleGroupName(plane.stack);
  let total = 0;
  let disabled = 0;
  let allTenants = 0;
  const ownFunctions = new Set([functionName(plane.stack, 'backup'), functionName(plane.stack, 'fanout'), functionName(plane.stack, PRUNE_ROLE)]);
  const elsewhere: string[] = [];
  let token: string | undefined;
  try {
    do {
      const page = await clients.scheduler.send(new ListSchedulesCommand({ GroupName: group, ...(token !== undefined && { NextToken: token }) }));
      for (const schedule of page.Schedules ?? []) {
        const parsed = schedule.Name === undefined ? undefined : parseScheduleName(schedule.Name);
        if (parsed === undefined) continue;
        total++;
        if (schedule.State === 'DISABLED') disabled++;
        if (isAllTenants(parsed.owner)) allTenants++;
        const targetArn = schedule.Target?.Arn;
        const target = targetFunctionName(targetArn);
        if (targetArn !== undefined && (target === undefined || !ownFunctions.has(target))) elsewhere.push(`${schedule.Name} → ${target ?? targetArn}`);
      }
      token = page.NextToken;
    } while (token !== undefined);
  } catch (error) {
    if (awsErrorName(error) !== 'ResourceNotFoundException') throw translateAwsError(error, plane, `listing the schedules of ${group}`);
    add('schedules', 'fail', `no schedule group ${group}: deploy this version of the stack (crons live there)`);
    return;
  }
  const legacy = await listLegacyCrons(plane, clients.events);
  const parts = [
    `${total} cron${total === 1 ? '' : 's'} in ${group}`,
    ...(allTenants > 0 ? [`${allTenants} for every tenant`] : []),
    ...(disabled > 0 ? [`${disabled} disabled`] : []),
  ];
  if (elsewhere.length > 0) {
    const shown = elsewhere.slice(0, SHOWN_IN_A_LINE).join(', ') + (elsewhere.length > SHOWN_IN_A_LINE ? `, and ${elsewhere.length - SHOWN_IN_A_LINE} more` : '');
    add(
      'schedule targets',
      'warn',
      `${elsewhere.length} cron${elsewhere.length === 1 ? ' invokes a function' : 's invoke functions'} not of ${plane.stack} (${shown}), so ${elsewhere.length === 1 ? 'it backs' : 'they back'} nothing up here: remove and add ${elsewhere.length === 1 ? 'it' : 'them'} again (cron rm, cron add)`,
    );
  }
  if (legacy.length > 0) {
    add('schedules', 'warn', `${parts.join(', ')}; ${legacy.length} EventBridge rule${legacy.length === 1 ? '' : 's'} of the previous version: run \`openclaw --stack ${plane.stack} cron migrate\``);
  } else {
    add('schedules', total === 0 ? 'warn' : 'ok', total === 0 ? `no crons in ${group}: nothing is backed up on a schedule (cron add)` : parts.join(', '));
  }
}

interface QueueDepth {
  readonly url: string;
  readonly arn: string;
  readonly visible: number;
  readonly inFlight: number;
}

async function queueDepth(plane: ControlPlane, sqs: ScheduleDoctorClients['sqs'], name: string): Promise<QueueDepth | undefined> {
  try {
    const { QueueUrl: url } = await sqs.send(new GetQueueUrlCommand({ QueueName: name }));
    if (url === undefined) return undefined;
    const { Attributes = {} } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn', 'ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
    );
    return { url, arn: Attributes.QueueArn ?? '', visible: Number(Attributes.ApproximateNumberOfMessages ?? 0), inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0) };
  } catch (error) {
    if (/NonExistentQueue|QueueDoesNotExist/.test(awsErrorName(error))) return undefined;
    throw translateAwsError(error, plane, `reading the queue ${name}`);
  }
}

async function queueChecks(plane: ControlPlane, clients: ScheduleDoctorClients, add: Add): Promise<void> {
  const work = await queueDepth(plane, clients.sqs, workQueueName(plane.stack));
  if (work === undefined) {
    add('work queue', 'fail', `no queue ${workQueueName(plane.stack)}: deploy this version of the stack (all-tenant backups go through it)`);
  } else {
    const backup = functionName(plane.stack, 'backup');
    let mappings;
    try {
      mappings = (await clients.lambda.send(new ListEventSourceMappingsCommand({ FunctionName: backup, EventSourceArn: work.arn }))).EventSourceMappings ?? [];
    } catch (error) {
      throw translateAwsError(error, plane, `reading the event source mappings of ${backup}`);
    }
    const mapping = mappings[0];
    const depth = `${work.visible} waiting, ${work.inFlight} running or backing off`;
    if (mapping === undefined) add('work queue', 'fail', `${depth}; no event source mapping feeds it to ${backup}: nothing drains it`);
    else if (mapping.State !== 'Enabled') add('work queue', 'fail', `${depth}; the mapping to ${backup} is ${mapping.State ?? 'in an unknown state'}: nothing drains it`);
    else add('work queue', 'ok', `${depth}; at most ${mapping.ScalingConfig?.MaximumConcurrency ?? '?'} backups at once`);
  }
  for (const [check, name, what] of [
    ['work DLQ', workDeadLetterQueueName(plane.stack), 'queued backups gave up after their last attempt (see the failures below)'],
    ['schedule DLQ', scheduleDeadLetterQueueName(plane.stack), 'schedules could not invoke their target'],
    ['restore DLQ', restoreDeadLetterQueueName(plane.stack), 'pieces of restores in pieces gave up after their last attempt: each one\'s tenant stays busy until its chain is abandoned, 24 h after its last piece (docs/scale.md)'],
  ] as const) {
    const dlq = await queueDepth(plane, clients.sqs, name);
    if (dlq === undefined) add(check, 'fail', `no queue ${name}: deploy this version of the stack`);
    else if (dlq.visible + dlq.inFlight === 0) add(check, 'ok', 'empty');
    else {
      // A restore's piece delivered again goes on from where its chain stands (one whose chain ended is skipped).
      const again = check === 'work DLQ' ? 'run them again' : check === 'restore DLQ' ? 'go on with them' : undefined;
      const redrive = again === undefined ? '' : `; once the cause is fixed, ${again}: aws sqs start-message-move-task --source-arn ${dlq.arn} (as a role the stack's queueRedrivers lists: the queue denies others)`;
      add(check, 'warn', `${dlq.visible + dlq.inFlight} message${dlq.visible + dlq.inFlight === 1 ? '' : 's'}: ${what}${redrive}`);
    }
  }
}

/**
 * The queue where the scheduled backups, prunes and fan-outs that failed after Lambda's
 * retries end (and the monitor's failed events): the alarm `<prefix>-async-dlq` watched it,
 * `doctor` did not, since the stack gives it no name; it is the backup function's on-failure
 * destination. Its messages are Lambda's failure records (the event and the error), which no
 * move task runs again.
 */
async function asyncDeadLetterQueueCheck(plane: ControlPlane, clients: ScheduleDoctorClients, add: Add): Promise<void> {
  const check = 'async DLQ';
  const backup = functionName(plane.stack, 'backup');
  let destination: string | undefined;
  try {
    destination = (await clients.lambda.send(new GetFunctionEventInvokeConfigCommand({ FunctionName: backup })))?.DestinationConfig?.OnFailure?.Destination;
  } catch (error) {
    const name = awsErrorName(error);
    if (name === 'AccessDeniedException') {
      add(check, 'warn', `cannot read where ${backup}'s failed scheduled runs go (lambda:GetFunctionEventInvokeConfig denied): attach this version's operator policy`);
      return;
    }
    if (name !== 'ResourceNotFoundException') throw translateAwsError(error, plane, `reading the asynchronous invocation settings of ${backup}`);
  }
  const arn = destination?.split(':');
  if (arn === undefined || arn[2] !== 'sqs' || arn[5] === undefined) {
    add(check, 'warn', `${backup} has no queue for its failed scheduled runs: after Lambda's retries they are dropped, seen only in its logs`);
    return;
  }
  const dlq = await queueDepth(plane, clients.sqs, arn[5]);
  if (dlq === undefined) add(check, 'fail', `no queue ${arn[5]}, the on-failure destination of ${backup}: deploy this version of the stack`);
  else if (dlq.visible + dlq.inFlight === 0) add(check, 'ok', 'empty');
  else {
    const messages = dlq.visible + dlq.inFlight;
    add(check, 'warn', `${messages} message${messages === 1 ? '' : 's'}: scheduled backups, prunes or fan-outs that failed after Lambda's retries, each with its event and error (aws sqs receive-message --queue-url ${dlq.url}); run them again by hand once the cause is fixed`);
  }
}

async function statusChecks(plane: ControlPlane, clients: ScheduleDoctorClients, add: Add, now: Date): Promise<void> {
  const table = statusTableName(plane.stack);
  let statuses;
  let freshness;
  try {
    [statuses, freshness] = await Promise.all([readTenantStatuses(clients.dynamodb, table), getFreshnessRecord(clients.dynamodb, table)]);
  } catch (error) {
    if (awsErrorName(error) === 'ResourceNotFoundException') {
      add('last failures', 'fail', `no status table ${table}: deploy this version of the stack`);
      return;
    }
    throw translateAwsError(error, plane, `reading the status table ${table}`);
  }
  const failing = [...statuses.values()]
    .filter((status) => status.lastFailureAt !== undefined && (status.lastSuccessAt === undefined || status.lastFailureAt > status.lastSuccessAt))
    .sort((a, b) => (a.lastFailureAt! < b.lastFailureAt! ? 1 : -1));
  if (failing.length === 0) {
    add('last failures', 'ok', `no tenant's last backup failed (${statuses.size} tenant${statuses.size === 1 ? '' : 's'} on record)`);
  } else {
    const shown = failing
      .slice(0, SHOWN_IN_A_LINE)
      .map((status) => `${status.tenant} (${when(status.lastFailureAt!)}, ${status.lastFailureCode ?? '?'}: ${status.lastFailureMessage ?? ''})`)
      .join('; ');
    add('last failures', 'warn', `${failing.length} tenant${failing.length === 1 ? '\'s last backup' : 's\' last backups'} failed: ${shown}${failing.length > SHOWN_IN_A_LINE ? '; …' : ''}`);
  }

  if (freshness === undefined) {
    add('freshness', 'warn', 'no freshness check has run yet (the monitor runs it hourly)');
    return;
  }
  const age = now.getTime() - Date.parse(freshness.checkedAt);
  const overdue = age > CHECK_OVERDUE_MS ? `; that was ${Math.round(age / 3_600_000)} hours ago: is the monitor's schedule running?` : '';
  if (freshness.stale > 0) {
    add('freshness', 'warn', `${freshness.stale} of ${freshness.tenants} tenants had no successful backup for ${freshness.staleAfterHours} hours as of ${when(freshness.checkedAt)}: ${freshness.staleSample.join(', ')}${freshness.stale > freshness.staleSample.length ? ', …' : ''}${overdue}`);
  } else {
    add('freshness', overdue === '' ? 'ok' : 'warn', `all ${freshness.tenants} tenants backed up within ${freshness.staleAfterHours} hours as of ${when(freshness.checkedAt)}${overdue}`);
  }
}

function when(iso: string): string {
  return `${iso.slice(0, 16).replace('T', ' ')} UTC`;
}

/** The function a schedule's target ARN names (`arn:…:function:NAME[:qualifier]`); undefined for anything else. */
function targetFunctionName(arn: string | undefined): string | undefined {
  return arn === undefined ? undefined : /^arn:[^:]+:lambda:[^:]*:[^:]*:function:([^:]+)/.exec(arn)?.[1];
}
