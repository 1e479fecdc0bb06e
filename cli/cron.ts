// `openclaw cron add|list|rm`: scheduled backups as EventBridge rules on a deployed gateway
// (remote mode), through the service in shared/control-plane/cron-service.ts (loaded, with
// the SDK, only when one runs). In local mode (no --stack) they install, list and remove
// entries of this user's crontab (cron-local.ts).

import type { Command } from 'commander';

import { UsageError } from '../shared/errors.js';
import { expandTemplate } from '../shared/schedule/destination-template.js';
import { assertTenantName } from '../shared/tenant/names.js';
import { eventBridgeClient, lambdaClient } from './aws.js';
import { addControlPlaneOptions, type CliContext } from './context.js';
import { addLocalCron, listLocalCrons, removeLocalCron } from './cron-local.js';

export function registerCron(program: Command, context: CliContext): void {
  const cron = program
    .command('cron')
    .description('schedule backups: on the gateway as EventBridge rules (remote mode; UTC), else in this user\'s crontab (local time)')
    .addHelpText(
      'after',
      '\nWithout --stack the crons are lines of this user\'s crontab, marked "# openclaw:<tenant>:<name>"; each runs this\n' +
        'node and CLI by absolute path with this --tenants-dir, and appends its output to a log file.',
    );

  addControlPlaneOptions(
    cron
      .command('add')
      .description('schedule a backup of one tenant')
      .argument('<tenant>', 'tenant name')
      .requiredOption('--schedule <cron>', 'when, as 5 Unix cron fields in UTC, e.g. "0 3 * * *"')
      .requiredOption('--name <name>', 'a name for this cron, unique per tenant, e.g. nightly-backup')
      .requiredOption('--cmd <command>', 'the openclaw tenants backup command to run; $(date +FORMAT) is expanded when it runs')
      .option('--replace', 'replace an existing cron of that name')
      .option('--log <file>', 'local mode: the file the cron\'s output is appended to (default ~/.openclaw/logs/cron-<tenant>-<name>.log)')
      .addHelpText(
        'after',
        '\nExamples:\n' +
          '  openclaw --stack openclaw-backup cron add acme --schedule "0 3 * * *" --name nightly-backup \\\n' +
          '    --cmd "openclaw tenants backup acme --to s3://my-bucket/acme/\\$(date +%F).tar.zst"\n' +
          '  openclaw --tenants-dir /srv/openclaw/tenants cron add acme --schedule "0 3 * * *" --name nightly-backup \\\n' +
          '    --cmd "openclaw tenants backup acme --to /var/backups/acme/\\$(date +%F).tar.zst"',
      ),
  ).action(async (tenant: string, flags: { schedule: string; name: string; cmd: string; replace?: boolean; log?: string }) => {
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

async function addCron(context: CliContext, tenant: string, flags: { schedule: string; name: string; cmd: string; replace?: boolean; log?: string }): Promise<void> {
  assertTenantName(tenant);
  if (context.remote === undefined) return addLocalCron(context, tenant, flags);
  if (flags.log !== undefined) throw new UsageError('--log is for a cron on this machine: a scheduled backup on the gateway logs to CloudWatch', 'REMOTE_UNSUPPORTED');
  const plane = context.remote;
  const [service, events, lambda] = await Promise.all([import('../shared/control-plane/cron-service.js'), eventBridgeClient(plane), lambdaClient(plane)]);
  const added = await service.addCron(plane, { events, lambda }, { tenant, name: flags.name, schedule: flags.schedule, cmd: flags.cmd, replace: flags.replace });

  const next = added.nextRuns.map((date) => date.toISOString());
  const first = added.nextRuns[0];
  const sample = first === undefined ? undefined : expandTemplate(added.command.to, { time: first, tenant: added.command.tenant });
  context.output.result(
    {
      operation: 'cron-add',
      tenant,
      name: added.name,
      rule: added.rule,
      ruleArn: added.ruleArn,
      schedule: added.schedule,
      expression: added.expression,
      timezone: 'UTC',
      cmd: added.cmd,
      command: added.command,
      nextRuns: next,
      replaced: added.replaced,
    },
    [
      `${added.replaced ? 'Replaced' : 'Added'} cron "${added.name}" for tenant "${tenant}": EventBridge rule ${added.rule} → ${added.backupFunction}`,
      `  schedule  ${added.schedule}  =  ${added.expression}, in UTC (EventBridge schedules always run in UTC)`,
      `  next      ${next.map(utc).join(', ')}`,
      `  runs      ${added.cmd}`,
      ...(added.templated && sample !== undefined
        ? [`  archive   ${added.command.to}: dates filled in UTC when the rule fires (first: ${sample})`]
        : [`  archive   ${added.command.to}${added.command.overwrite ? ' (overwritten each time)' : ': the same key every time, so runs after the first fail unless --overwrite is in --cmd'}`]),
    ],
  );
}

async function listCrons(context: CliContext, tenant: string | undefined): Promise<void> {
  if (tenant !== undefined) assertTenantName(tenant);
  context.exitAtOnceOnInterrupt();
  if (context.remote === undefined) return listLocalCrons(context, tenant);
  const plane = context.remote;
  const [service, events] = await Promise.all([import('../shared/control-plane/cron-service.js'), eventBridgeClient(plane)]);
  const crons = await service.listCrons(plane, { events }, tenant);
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
  if (context.remote === undefined) return removeLocalCron(context, tenant, name);
  const plane = context.remote;
  const [service, events] = await Promise.all([import('../shared/control-plane/cron-service.js'), eventBridgeClient(plane)]);
  const rule = await service.removeCron(plane, { events }, tenant, name);
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
