// The EventBridge rules the previous version's `cron add` made (`<prefix>-<tenant>-<cron>` on
// the default bus, tagged with the tenant and cron name, the schedule and command kept in
// the description): listed by `cron list`, removed by `cron rm`, and moved to EventBridge
// Scheduler by `cron migrate` (cron-service.ts). Nothing here creates a rule any more.
//
// Rule names can collide (tenant "a-b" + cron "c" vs tenant "a" + cron "b-c"): the tags are
// the identity, checked before a rule is removed. `cron list` reads the identity from the
// rule's own description instead (the command names exactly one tenant), so listing makes no
// call per rule.

import {
  DeleteRuleCommand,
  DescribeRuleCommand,
  ListRulesCommand,
  ListTagsForResourceCommand,
  ListTargetsByRuleCommand,
  RemoveTargetsCommand,
  type EventBridgeClient,
} from '@aws-sdk/client-eventbridge';

import { RemoteError } from '../errors.js';
import { CRON_NAME_TAG, cronRuleName, cronRulePrefix, parseCronCommand, parseCronDescription, TENANT_TAG } from '../schedule/cron-command.js';
import { compareCrons } from '../schedule/schedule-names.js';
import { isValidTenantName } from '../tenant/names.js';
import { awsErrorName, translateAwsError } from './aws-errors.js';
import type { ControlPlane } from './deployment.js';

type Events = Pick<EventBridgeClient, 'send'>;

/** A cron of the previous version, as its rule describes it. */
export interface LegacyCron {
  readonly tenant: string;
  readonly name: string;
  readonly rule: string;
  readonly ruleArn: string;
  readonly schedule: string;
  readonly expression: string;
  readonly state: string;
  readonly cmd: string;
}

/** The rules made by an earlier `cron add` (of one tenant, or all), from ListRules alone. */
export async function listLegacyCrons(plane: ControlPlane, events: Events, tenant?: string): Promise<LegacyCron[]> {
  const crons: LegacyCron[] = [];
  let token: string | undefined;
  do {
    let page;
    try {
      page = await events.send(new ListRulesCommand({ NamePrefix: cronRulePrefix(plane.stack, tenant), ...(token !== undefined && { NextToken: token }) }));
    } catch (error) {
      throw translateAwsError(error, plane, 'listing the EventBridge rules of the previous version');
    }
    for (const rule of page.Rules ?? []) {
      if (rule.Name === undefined || rule.Arn === undefined || rule.ScheduleExpression === undefined) continue;
      const description = parseCronDescription(rule.Description);
      if (description === undefined) continue; // not made by `cron add`, or changed by hand
      const identity = identityOf(plane.stack, rule.Name, description.cmd);
      if (identity === undefined || (tenant !== undefined && identity.tenant !== tenant)) continue;
      crons.push({
        ...identity,
        rule: rule.Name,
        ruleArn: rule.Arn,
        schedule: description.schedule,
        expression: rule.ScheduleExpression,
        state: rule.State ?? 'UNKNOWN',
        cmd: description.cmd,
      });
    }
    token = page.NextToken;
  } while (token !== undefined);
  return crons.sort(compareCrons);
}

/**
 * The tenant and cron name a rule `<prefix>-<tenant>-<name>` stands for: the split of its
 * name whose tenant is the one the command backs up (a command names exactly one).
 */
function identityOf(stack: string, rule: string, cmd: string): { tenant: string; name: string } | undefined {
  const rest = rule.slice(stack.length + 1);
  for (let dash = rest.indexOf('-'); dash > 0; dash = rest.indexOf('-', dash + 1)) {
    const tenant = rest.slice(0, dash);
    const name = rest.slice(dash + 1);
    if (!isValidTenantName(tenant) || name === '') continue;
    try {
      parseCronCommand(cmd, { tenant, stack });
      return { tenant, name };
    } catch {
      // not this split: the command backs up another tenant
    }
  }
  return undefined;
}

/** The tenant's cron `name` as a rule of the previous version, verified by its tags; undefined when there is none. */
export async function findLegacyCron(plane: ControlPlane, events: Events, tenant: string, name: string): Promise<LegacyCron | undefined> {
  let rule: string;
  try {
    rule = cronRuleName(plane.stack, tenant, name);
  } catch {
    return undefined; // a name the previous version could not have made
  }
  let found;
  try {
    found = await events.send(new DescribeRuleCommand({ Name: rule }));
  } catch (error) {
    if (awsErrorName(error) === 'ResourceNotFoundException') return undefined;
    throw translateAwsError(error, plane, `reading the EventBridge rule ${rule}`);
  }
  const arn = found.Arn ?? '';
  const tags = await ruleTags(plane, events, arn);
  if (tags.tenant !== tenant || tags.cronName !== name) return undefined; // another tenant's rule of the same name, or a hand-made one
  const description = parseCronDescription(found.Description);
  return {
    tenant,
    name,
    rule,
    ruleArn: arn,
    schedule: description?.schedule ?? '',
    expression: found.ScheduleExpression ?? '',
    state: found.State ?? 'UNKNOWN',
    cmd: description?.cmd ?? '',
  };
}

/** The identity a rule's tags give it: what `cron migrate` checks before it moves a rule. */
export async function ruleTags(plane: ControlPlane, events: Events, arn: string): Promise<{ tenant?: string; cronName?: string }> {
  try {
    const { Tags = [] } = await events.send(new ListTagsForResourceCommand({ ResourceARN: arn }));
    const tag = (key: string) => Tags.find((candidate) => candidate.Key === key)?.Value;
    return { ...(tag(TENANT_TAG) !== undefined && { tenant: tag(TENANT_TAG) }), ...(tag(CRON_NAME_TAG) !== undefined && { cronName: tag(CRON_NAME_TAG) }) };
  } catch (error) {
    throw translateAwsError(error, plane, `reading the tags of ${arn}`);
  }
}

/** Removes a rule's targets, then the rule. */
export async function removeLegacyRule(plane: ControlPlane, events: Events, rule: string): Promise<void> {
  try {
    const ids: string[] = [];
    let token: string | undefined;
    do {
      const page = await events.send(new ListTargetsByRuleCommand({ Rule: rule, ...(token !== undefined && { NextToken: token }) }));
      for (const target of page.Targets ?? []) if (target.Id !== undefined) ids.push(target.Id);
      token = page.NextToken;
    } while (token !== undefined);
    if (ids.length > 0) {
      const removed = await events.send(new RemoveTargetsCommand({ Rule: rule, Ids: ids }));
      if ((removed.FailedEntryCount ?? 0) > 0) {
        throw new RemoteError('AWS_ERROR', `EventBridge kept a target of the rule ${rule}: ${removed.FailedEntries?.[0]?.ErrorMessage ?? 'no reason given'}`);
      }
    }
    await events.send(new DeleteRuleCommand({ Name: rule }));
  } catch (error) {
    throw translateAwsError(error, plane, `removing the EventBridge rule ${rule}`);
  }
}
