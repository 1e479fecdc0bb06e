// `openclaw cron add|list|rm`: scheduled backups as EventBridge rules on a deployed gateway
// (remote mode). `add` converts the 5-field schedule to EventBridge's cron (UTC), parses
// `--cmd` as one `openclaw tenants backup` (no shell; `$(date +FORMAT)` is expanded when the
// rule fires), and creates the rule `<prefix>-<tenant>-<name>` targeting the backup
// function, tagged with the tenant and cron name, the original schedule and command kept in
// its description for `cron list`. In local mode the commands point at the system crontab,
// and `add` prints the crontab line that does the same on this machine.
//
// Rule names can collide (tenant "a-b" + cron "c" vs tenant "a" + cron "b-c"): the tags are
// the identity, checked before a rule is replaced or removed.

import type { Command } from 'commander';

import { assertTenantName } from '../shared/tenant/names.js';
import { RemoteError, UsageError } from '../shared/errors.js';
import {
  assertOpenclawCommandLine,
  cronDescription,
  cronRuleName,
  cronRulePrefix,
  cronTargetInput,
  crontabLine,
  CRON_NAME_TAG,
  CRON_TARGET_ID,
  expandTemplate,
  parseCronCommand,
  parseCronDescription,
  TENANT_TAG,
} from '../shared/schedule/cron-command.js';
import { readFunctionConfig } from '../shared/control-plane/function-config.js';
import { assertRemoteStorage } from '../shared/control-plane/remote-policy.js';
import { functionName } from '../shared/control-plane/deployment.js';
import { awsErrorName, eventBridgeClient, lambdaClient, translateAwsError, type ControlPlane } from './aws.js';
import { addControlPlaneOptions, requireRemote, type CliContext } from './context.js';

export function registerCron(program: Command, context: CliContext): void {
  const cron = program
    .command('cron')
    .description('schedule backups on the gateway as EventBridge rules (remote mode; UTC)')
    .addHelpText('after', '\nIn local mode (no --stack) use the system crontab; "cron add" prints the line to add.');

  addControlPlaneOptions(
    cron
      .command('add')
      .description('schedule a backup of one tenant')
      .argument('<tenant>', 'tenant name')
      .requiredOption('--schedule <cron>', 'when, as 5 Unix cron fields in UTC, e.g. "0 3 * * *"')
      .requiredOption('--name <name>', 'a name for this cron, unique per tenant, e.g. nightly-backup')
      .requiredOption('--cmd <command>', 'the openclaw tenants backup command to run; $(date +FORMAT) is expanded when it runs')
      .option('--replace', 'replace an existing cron of that name')
      .addHelpText(
        'after',
        '\nExample:\n' +
          '  openclaw --stack openclaw-backup cron add acme --schedule "0 3 * * *" --name nightly-backup \\\n' +
          '    --cmd "openclaw tenants backup acme --to s3://my-bucket/acme/\\$(date +%F).tar.zst"',
      ),
  ).action(async (tenant: string, flags: { schedule: string; name: string; cmd: string; replace?: boolean }) => {
    await addCron(context, tenant, flags);
  });

  addControlPlaneOptions(
    cron
      .command('list')
      .description('list the scheduled backups, of one tenant or all')
      .argument('[tenant]', 'only this tenant\'s'),
  ).action(async (tenant: string | undefined) => {
    await listCrons(context, tenant);
  });

  addControlPlaneOptions(
    cron.command('rm').description('remove a scheduled backup').argument('<tenant>', 'tenant name').argument('<name>', 'the cron\'s name'),
  ).action(async (tenant: string, name: string) => {
    await removeCron(context, tenant, name);
  });
}

// ---------------------------------------------------------------------------------------

async function addCron(context: CliContext, tenant: string, flags: { schedule: string; name: string; cmd: string; replace?: boolean }): Promise<void> {
  assertTenantName(tenant);
  const cronSchedule = await import('../shared/schedule/cron-schedule.js');
  if (context.remote === undefined) {
    const schedule = cronSchedule.validateUnixSchedule(flags.schedule);
    assertOpenclawCommandLine(flags.cmd);
    const line = crontabLine(schedule, flags.cmd);
    if (!context.output.json) process.stdout.write(`${line}\n`);
    throw new UsageError(
      `cron add creates a schedule on a deployed gateway: give --stack <prefix> or set OPENCLAW_STACK; ` +
        `on this machine, add this line to your crontab (crontab -e; it runs in local time): ${line}`,
      'REMOTE_ONLY',
    );
  }
  const plane = context.remote;
  const rule = cronRuleName(plane.stack, tenant, flags.name);
  const converted = cronSchedule.toEventBridgeCron(flags.schedule);
  const scheduled = parseCronCommand(flags.cmd, { tenant, stack: plane.stack });
  const description = cronDescription(converted.schedule, flags.cmd);
  const input = cronTargetInput(tenant, flags.name, scheduled.command);

  const [events, lambda, sdk, lambdaSdk] = await Promise.all([
    eventBridgeClient(plane),
    lambdaClient(plane),
    import('@aws-sdk/client-eventbridge'),
    import('@aws-sdk/client-lambda'),
  ]);

  // The target: the backup function's ARN; its environment tells which bucket it may write.
  const backupFunction = functionName(plane.stack, 'backup');
  let functionArn: string;
  try {
    const found = await lambda.send(new lambdaSdk.GetFunctionCommand({ FunctionName: backupFunction }));
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
      if (config !== undefined) assertRemoteStorage('backup', expandTemplate(scheduled.command.to, new Date()), scheduled.command.storage, config);
    }
  } catch (error) {
    throw translateAwsError(error, plane, `looking up the backup function ${backupFunction}`);
  }

  const existing = await describeCronRule(plane, rule);
  if (existing !== undefined) {
    if (existing.tenant !== tenant || existing.cronName !== flags.name) {
      throw collision(rule, existing);
    }
    if (flags.replace !== true) {
      throw new RemoteError('CRON_EXISTS', `tenant "${tenant}" already has a cron "${flags.name}" (rule ${rule}): give --replace, or remove it first with cron rm`);
    }
  }

  let ruleArn: string | undefined;
  try {
    const put = await events.send(
      new sdk.PutRuleCommand({
        Name: rule,
        ScheduleExpression: converted.expression,
        State: 'ENABLED',
        Description: description,
        Tags: [
          { Key: TENANT_TAG, Value: tenant },
          { Key: CRON_NAME_TAG, Value: flags.name },
        ],
      }),
    );
    ruleArn = put.RuleArn;
  } catch (error) {
    throw translateAwsError(error, plane, `creating the EventBridge rule ${rule}`);
  }
  try {
    const targets = await events.send(
      new sdk.PutTargetsCommand({ Rule: rule, Targets: [{ Id: CRON_TARGET_ID, Arn: functionArn, InputTransformer: input }] }),
    );
    if ((targets.FailedEntryCount ?? 0) > 0) {
      const entry = targets.FailedEntries?.[0];
      throw new RemoteError('CRON_TARGET_FAILED', `EventBridge refused the rule's target: ${entry?.ErrorCode ?? ''} ${entry?.ErrorMessage ?? ''}`.trim());
    }
  } catch (error) {
    // A new rule without its target would fire into nothing: take it back.
    if (existing === undefined) await events.send(new sdk.DeleteRuleCommand({ Name: rule })).catch(() => undefined);
    throw translateAwsError(error, plane, `pointing the rule ${rule} at ${backupFunction}`);
  }

  const runs = cronSchedule.nextRuns(converted, 3);
  const next = runs.map((date) => date.toISOString());
  const sample = runs[0] === undefined ? undefined : expandTemplate(scheduled.command.to, runs[0]);
  context.output.result(
    {
      operation: 'cron-add',
      tenant,
      name: flags.name,
      rule,
      ruleArn,
      schedule: converted.schedule,
      expression: converted.expression,
      timezone: 'UTC',
      cmd: flags.cmd,
      command: scheduled.command,
      nextRuns: next,
      replaced: existing !== undefined,
    },
    [
      `${existing === undefined ? 'Added' : 'Replaced'} cron "${flags.name}" for tenant "${tenant}": EventBridge rule ${rule} → ${backupFunction}`,
      `  schedule  ${converted.schedule}  =  ${converted.expression}, in UTC (EventBridge schedules always run in UTC)`,
      `  next      ${next.map(utc).join(', ')}`,
      `  runs      ${flags.cmd}`,
      ...(scheduled.templated && sample !== undefined
        ? [`  archive   ${scheduled.command.to}: dates filled in UTC when the rule fires (first: ${sample})`]
        : [`  archive   ${scheduled.command.to}${scheduled.command.overwrite ? ' (overwritten each time)' : ': the same key every time, so runs after the first fail unless --overwrite is in --cmd'}`]),
    ],
  );
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

async function describeCronRule(plane: ControlPlane, rule: string): Promise<CronRuleInfo | undefined> {
  const [events, sdk] = await Promise.all([eventBridgeClient(plane), import('@aws-sdk/client-eventbridge')]);
  try {
    const found = await events.send(new sdk.DescribeRuleCommand({ Name: rule }));
    const arn = found.Arn ?? '';
    return { name: rule, arn, state: found.State, expression: found.ScheduleExpression, description: found.Description, ...(await ruleTags(plane, arn)) };
  } catch (error) {
    if (awsErrorName(error) === 'ResourceNotFoundException') return undefined;
    throw translateAwsError(error, plane, `reading the EventBridge rule ${rule}`);
  }
}

async function ruleTags(plane: ControlPlane, arn: string): Promise<{ tenant?: string; cronName?: string }> {
  const [events, sdk] = await Promise.all([eventBridgeClient(plane), import('@aws-sdk/client-eventbridge')]);
  try {
    const { Tags = [] } = await events.send(new sdk.ListTagsForResourceCommand({ ResourceARN: arn }));
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

async function listCrons(context: CliContext, tenant: string | undefined): Promise<void> {
  if (tenant !== undefined) assertTenantName(tenant);
  const plane = requireRemote(context, 'cron list', '; on this machine, see crontab -l');
  const [events, sdk] = await Promise.all([eventBridgeClient(plane), import('@aws-sdk/client-eventbridge')]);
  const rules: CronRuleInfo[] = [];
  let token: string | undefined;
  do {
    let page;
    try {
      page = await events.send(new sdk.ListRulesCommand({ NamePrefix: cronRulePrefix(plane.stack, tenant), ...(token !== undefined && { NextToken: token }) }));
    } catch (error) {
      throw translateAwsError(error, plane, 'listing the EventBridge rules');
    }
    for (const rule of page.Rules ?? []) {
      if (rule.Name === undefined || rule.Arn === undefined || rule.ScheduleExpression === undefined) continue;
      rules.push({ name: rule.Name, arn: rule.Arn, state: rule.State, expression: rule.ScheduleExpression, description: rule.Description });
    }
    token = page.NextToken;
  } while (token !== undefined);

  const crons = [];
  for (const rule of rules) {
    const tags = await ruleTags(plane, rule.arn);
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
  crons.sort((a, b) => a.tenant.localeCompare(b.tenant) || a.name.localeCompare(b.name));
  const rows = crons.map((cron) => [cron.tenant, cron.name, cron.schedule ?? cron.expression, cron.state, cron.cmd ?? '']);
  context.output.result(
    { crons },
    crons.length === 0
      ? [`no crons${tenant === undefined ? '' : ` for tenant "${tenant}"`} on ${plane.stack}`]
      : [...table(['TENANT', 'NAME', 'SCHEDULE (UTC)', 'STATE', 'COMMAND'], rows)],
  );
}

async function removeCron(context: CliContext, tenant: string, name: string): Promise<void> {
  assertTenantName(tenant);
  const plane = requireRemote(context, 'cron rm', '; on this machine, edit crontab -e');
  const rule = cronRuleName(plane.stack, tenant, name);
  const existing = await describeCronRule(plane, rule);
  if (existing === undefined) {
    throw new RemoteError('CRON_NOT_FOUND', `tenant "${tenant}" has no cron "${name}" on ${plane.stack} (see cron list ${tenant})`);
  }
  if (existing.tenant !== tenant || existing.cronName !== name) throw collision(rule, existing);

  const [events, sdk] = await Promise.all([eventBridgeClient(plane), import('@aws-sdk/client-eventbridge')]);
  try {
    const ids: string[] = [];
    let token: string | undefined;
    do {
      const page = await events.send(new sdk.ListTargetsByRuleCommand({ Rule: rule, ...(token !== undefined && { NextToken: token }) }));
      for (const target of page.Targets ?? []) if (target.Id !== undefined) ids.push(target.Id);
      token = page.NextToken;
    } while (token !== undefined);
    if (ids.length > 0) await events.send(new sdk.RemoveTargetsCommand({ Rule: rule, Ids: ids }));
    await events.send(new sdk.DeleteRuleCommand({ Name: rule }));
  } catch (error) {
    throw translateAwsError(error, plane, `removing the EventBridge rule ${rule}`);
  }
  context.output.result({ operation: 'cron-rm', tenant, name, rule }, [`Removed cron "${name}" of tenant "${tenant}" (EventBridge rule ${rule})`]);
}

function utc(iso: string): string {
  return `${iso.slice(0, 16).replace('T', ' ')} UTC`;
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const format = (row: string[]) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ');
  return [format(header), ...rows.map(format)];
}
