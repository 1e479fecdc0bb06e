// Scheduled backups on a deployed gateway, as EventBridge rules: the service behind
// `openclaw cron add|list|rm` in remote mode, over the clients it is given (the CLI makes
// them for the chosen profile and region; tests mock them).
//
// `add` converts the 5-field schedule to EventBridge's cron (UTC), parses `--cmd` as one
// `openclaw tenants backup` (schedule/cron-command.ts; its `--encrypt-to` recipients and
// those of its `--recipients-file`s, read here, go into the rule's payload), checks the destination against the
// backup function's own policy (read from its environment), and creates the rule
// `<prefix>-<tenant>-<name>` targeting the backup function, tagged with the tenant and cron
// name, the original schedule and command kept in its description for `list`. A rule whose
// target cannot be set is taken back (unless it replaced one).
//
// Rule names can collide (tenant "a-b" + cron "c" vs tenant "a" + cron "b-c"): the tags are
// the identity, checked before a rule is replaced or removed.

import {
  DeleteRuleCommand,
  DescribeRuleCommand,
  ListRulesCommand,
  ListTagsForResourceCommand,
  ListTargetsByRuleCommand,
  PutRuleCommand,
  PutTargetsCommand,
  RemoveTargetsCommand,
  type EventBridgeClient,
} from '@aws-sdk/client-eventbridge';
import { GetFunctionCommand, type LambdaClient } from '@aws-sdk/client-lambda';

import { AgeBadRecipientError, RemoteError } from '../errors.js';
import { loadRecipientsFile, parseRecipient } from '../age/keys.js';
import { MAX_RECIPIENTS } from '../archive/encrypted-archive.js';
import type { BackupCommand } from '../operations.js';
import {
  cronDescription,
  cronRuleName,
  cronRulePrefix,
  cronTargetInput,
  CRON_NAME_TAG,
  CRON_TARGET_ID,
  parseCronCommand,
  parseCronDescription,
  TENANT_TAG,
  type ScheduledBackup,
} from '../schedule/cron-command.js';
import { expandTemplate } from '../schedule/destination-template.js';
import { nextRuns, toEventBridgeCron } from '../schedule/cron-schedule.js';
import { assertTenantName } from '../tenant/names.js';
import { awsErrorName, translateAwsError } from './aws-errors.js';
import { functionName, type ControlPlane } from './deployment.js';
import { readFunctionConfig } from './function-config.js';
import { assertRemoteStorage } from './remote-policy.js';

export interface CronClients {
  readonly events: EventBridgeClient;
  readonly lambda: LambdaClient;
}

export interface AddCronRequest {
  readonly tenant: string;
  /** The cron's name, unique per tenant. */
  readonly name: string;
  /** 5 Unix cron fields, UTC. */
  readonly schedule: string;
  /** The `openclaw tenants backup …` line to run. */
  readonly cmd: string;
  /** Replace an existing cron of that name. */
  readonly replace?: boolean;
}

export interface AddedCron {
  readonly tenant: string;
  readonly name: string;
  readonly rule: string;
  readonly ruleArn: string | undefined;
  /** The backup function the rule targets. */
  readonly backupFunction: string;
  /** The schedule as given (whitespace collapsed) and in EventBridge's syntax. */
  readonly schedule: string;
  readonly expression: string;
  readonly cmd: string;
  /** The backup the function runs; `to` may hold `{date:FORMAT}` placeholders. */
  readonly command: BackupCommand;
  readonly templated: boolean;
  /** The next three runs, UTC. */
  readonly nextRuns: readonly Date[];
  readonly replaced: boolean;
}

export async function addCron(plane: ControlPlane, clients: CronClients, request: AddCronRequest): Promise<AddedCron> {
  const { tenant, name } = request;
  assertTenantName(tenant);
  const rule = cronRuleName(plane.stack, tenant, name);
  const converted = toEventBridgeCron(request.schedule);
  const scheduled = await withRecipients(parseCronCommand(request.cmd, { tenant, stack: plane.stack }));
  const description = cronDescription(converted.schedule, request.cmd);
  const input = cronTargetInput(tenant, name, scheduled.command);
  const { events, lambda } = clients;

  // The target: the backup function's ARN; its environment tells which bucket it may write.
  const backupFunction = functionName(plane.stack, 'backup');
  let functionArn: string;
  try {
    const found = await lambda.send(new GetFunctionCommand({ FunctionName: backupFunction }));
    functionArn = found.Configuration?.FunctionArn ?? '';
    // The function's own policy, from its own environment: refuse now what it would refuse
    // at 3 a.m. (a bucket or key prefix its role cannot write).
    const environment = found.Configuration?.Environment?.Variables;
    if (environment !== undefined) {
      let config;
      try {
        config = readFunctionConfig(environment);
      } catch {
        config = undefined; // a misconfigured function: doctor says more
      }
      if (config !== undefined) assertRemoteStorage('backup', expandTemplate(scheduled.command.to, { time: new Date(), tenant: scheduled.command.tenant }), scheduled.command.storage, config);
    }
  } catch (error) {
    throw translateAwsError(error, plane, `looking up the backup function ${backupFunction}`);
  }

  const existing = await describeCronRule(plane, events, rule);
  if (existing !== undefined) {
    if (existing.tenant !== tenant || existing.cronName !== name) throw collision(rule, existing);
    if (request.replace !== true) {
      throw new RemoteError('CRON_EXISTS', `tenant "${tenant}" already has a cron "${name}" (rule ${rule}): give --replace, or remove it first with cron rm`);
    }
  }

  let ruleArn: string | undefined;
  try {
    const put = await events.send(
      new PutRuleCommand({
        Name: rule,
        ScheduleExpression: converted.expression,
        State: 'ENABLED',
        Description: description,
        Tags: [
          { Key: TENANT_TAG, Value: tenant },
          { Key: CRON_NAME_TAG, Value: name },
        ],
      }),
    );
    ruleArn = put.RuleArn;
  } catch (error) {
    throw translateAwsError(error, plane, `creating the EventBridge rule ${rule}`);
  }
  try {
    const targets = await events.send(new PutTargetsCommand({ Rule: rule, Targets: [{ Id: CRON_TARGET_ID, Arn: functionArn, InputTransformer: input }] }));
    if ((targets.FailedEntryCount ?? 0) > 0) {
      const entry = targets.FailedEntries?.[0];
      throw new RemoteError('CRON_TARGET_FAILED', `EventBridge refused the rule's target: ${entry?.ErrorCode ?? ''} ${entry?.ErrorMessage ?? ''}`.trim());
    }
  } catch (error) {
    // A new rule without its target would fire into nothing: take it back.
    if (existing === undefined) await events.send(new DeleteRuleCommand({ Name: rule })).catch(() => undefined);
    throw translateAwsError(error, plane, `pointing the rule ${rule} at ${backupFunction}`);
  }

  return {
    tenant,
    name,
    rule,
    ruleArn,
    backupFunction,
    schedule: converted.schedule,
    expression: converted.expression,
    cmd: request.cmd,
    command: scheduled.command,
    templated: scheduled.templated,
    nextRuns: nextRuns(converted, 3),
    replaced: existing !== undefined,
  };
}

/** One scheduled backup, as `cron list` shows it. */
export interface CronListing {
  readonly tenant: string;
  readonly name: string;
  readonly rule: string;
  /** The schedule as given to `cron add`; null when the rule's description was changed by hand. */
  readonly schedule: string | null;
  readonly expression: string;
  readonly state: string;
  readonly cmd: string | null;
}

/** The crons of one tenant, or of all, sorted by tenant and name; rules not made by `cron add` are left out. */
export async function listCrons(plane: ControlPlane, clients: Pick<CronClients, 'events'>, tenant?: string): Promise<CronListing[]> {
  if (tenant !== undefined) assertTenantName(tenant);
  const { events } = clients;
  const rules: CronRuleInfo[] = [];
  let token: string | undefined;
  do {
    let page;
    try {
      page = await events.send(new ListRulesCommand({ NamePrefix: cronRulePrefix(plane.stack, tenant), ...(token !== undefined && { NextToken: token }) }));
    } catch (error) {
      throw translateAwsError(error, plane, 'listing the EventBridge rules');
    }
    for (const rule of page.Rules ?? []) {
      if (rule.Name === undefined || rule.Arn === undefined || rule.ScheduleExpression === undefined) continue;
      rules.push({ name: rule.Name, arn: rule.Arn, state: rule.State, expression: rule.ScheduleExpression, description: rule.Description });
    }
    token = page.NextToken;
  } while (token !== undefined);

  const crons: CronListing[] = [];
  for (const rule of rules) {
    const tags = await ruleTags(plane, events, rule.arn);
    if (tags.tenant === undefined || tags.cronName === undefined) continue; // not made by `cron add`
    if (tenant !== undefined && tags.tenant !== tenant) continue; // "acme-2"'s rules share the prefix
    const description = parseCronDescription(rule.description);
    crons.push({
      tenant: tags.tenant,
      name: tags.cronName,
      rule: rule.name,
      schedule: description?.schedule ?? null,
      expression: rule.expression!,
      state: rule.state ?? 'UNKNOWN',
      cmd: description?.cmd ?? null,
    });
  }
  return crons.sort((a, b) => a.tenant.localeCompare(b.tenant) || a.name.localeCompare(b.name));
}

/** Removes a cron's rule and its targets; returns the rule's name. */
export async function removeCron(plane: ControlPlane, clients: Pick<CronClients, 'events'>, tenant: string, name: string): Promise<string> {
  assertTenantName(tenant);
  const { events } = clients;
  const rule = cronRuleName(plane.stack, tenant, name);
  const existing = await describeCronRule(plane, events, rule);
  if (existing === undefined) {
    throw new RemoteError('CRON_NOT_FOUND', `tenant "${tenant}" has no cron "${name}" on ${plane.stack} (see cron list ${tenant})`);
  }
  if (existing.tenant !== tenant || existing.cronName !== name) throw collision(rule, existing);

  try {
    const ids: string[] = [];
    let token: string | undefined;
    do {
      const page = await events.send(new ListTargetsByRuleCommand({ Rule: rule, ...(token !== undefined && { NextToken: token }) }));
      for (const target of page.Targets ?? []) if (target.Id !== undefined) ids.push(target.Id);
      token = page.NextToken;
    } while (token !== undefined);
    if (ids.length > 0) await events.send(new RemoveTargetsCommand({ Rule: rule, Ids: ids }));
    await events.send(new DeleteRuleCommand({ Name: rule }));
  } catch (error) {
    throw translateAwsError(error, plane, `removing the EventBridge rule ${rule}`);
  }
  return rule;
}

interface CronRuleInfo {
  readonly name: string;
  readonly arn: string;
  readonly tenant?: string;
  readonly cronName?: string;
  readonly state?: string;
  readonly expression?: string;
  readonly description?: string;
}

async function describeCronRule(plane: ControlPlane, events: EventBridgeClient, rule: string): Promise<CronRuleInfo | undefined> {
  try {
    const found = await events.send(new DescribeRuleCommand({ Name: rule }));
    const arn = found.Arn ?? '';
    return { name: rule, arn, state: found.State, expression: found.ScheduleExpression, description: found.Description, ...(await ruleTags(plane, events, arn)) };
  } catch (error) {
    if (awsErrorName(error) === 'ResourceNotFoundException') return undefined;
    throw translateAwsError(error, plane, `reading the EventBridge rule ${rule}`);
  }
}

async function ruleTags(plane: ControlPlane, events: EventBridgeClient, arn: string): Promise<{ tenant?: string; cronName?: string }> {
  try {
    const { Tags = [] } = await events.send(new ListTagsForResourceCommand({ ResourceARN: arn }));
    const tag = (key: string) => Tags.find((candidate) => candidate.Key === key)?.Value;
    return { ...(tag(TENANT_TAG) !== undefined && { tenant: tag(TENANT_TAG) }), ...(tag(CRON_NAME_TAG) !== undefined && { cronName: tag(CRON_NAME_TAG) }) };
  } catch (error) {
    throw translateAwsError(error, plane, `reading the tags of ${arn}`);
  }
}

function collision(rule: string, existing: CronRuleInfo): RemoteError {
  const owner = existing.tenant === undefined ? 'something not made by openclaw cron' : `tenant "${existing.tenant}"'s cron "${existing.cronName ?? '?'}"`;
  return new RemoteError('CRON_NAME_TAKEN', `the rule name ${rule} is already used by ${owner}: choose another cron name`);
}

/**
 * The scheduled command with the recipients of its `--recipients-file`s added, each recipient
 * checked now (a bad key fails `cron add`, not the 3 a.m. backup) and written canonically:
 * the rule's payload carries public keys only, so every scheduled backup is encrypted.
 */
async function withRecipients(scheduled: ScheduledBackup): Promise<ScheduledBackup> {
  const texts = [...(scheduled.command.encryptTo ?? [])].map((text) => parseRecipient(text).text);
  for (const file of scheduled.recipientsFiles ?? []) texts.push(...(await loadRecipientsFile(file)).map((recipient) => recipient.text));
  if (texts.length === 0) return scheduled;
  const encryptTo = texts.filter((text, index) => texts.indexOf(text) === index);
  if (encryptTo.length > MAX_RECIPIENTS) throw new AgeBadRecipientError(`too many recipients (${encryptTo.length}): at most ${MAX_RECIPIENTS}`);
  const { recipientsFiles: _read, ...rest } = scheduled;
  return { ...rest, command: { ...scheduled.command, encryptTo } };
}
