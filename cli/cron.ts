// `openclaw cron add|list|rm|migrate`: scheduled backups as EventBridge Scheduler schedules
// on a deployed gateway (remote mode), through the service in
// shared/control-plane/cron-service.ts (loaded, with the SDK, only when one runs). In local
// mode (no --stack) add|list|rm install, list and remove entries of this user's crontab
// (cron-local.ts); --all, --timezone, --window and migrate are the gateway's.

import type { Command } from 'commander';

import { UsageError } from '../shared/errors.js';
import { expandTemplate } from '../shared/schedule/destination-template.js';
import { formatWindow, isUtc, parseWindow } from '../shared/schedule/schedule-options.js';
import type { CronOwner } from '../shared/schedule/schedule-names.js';
import { assertTenantName } from '../shared/tenant/names.js';
import { dynamoDbClient, eventBridgeClient, lambdaClient, schedulerClient } from './aws.js';
import { addControlPlaneOptions, once, repeated, requireRemote, type CliContext } from './context.js';
import { addLocalCron, listLocalCrons, removeLocalCron } from './cron-local.js';
import { plural } from './output.js';

interface AddFlags {
  schedule: string;
  name: string;
  cmd?: string;
  all?: boolean;
  to?: string;
  overwrite?: boolean;
  encryptTo?: string[];
  recipientsFile?: string[];
  sse?: string;
  sseKmsKeyId?: string;
  storageClass?: string;
  timezone?: string;
  window?: string;
  replace?: boolean;
  log?: string;
}

export function registerCron(program: Command, context: CliContext): void {
  const cron = program
    .command('cron')
    .description('schedule backups: on the gateway as EventBridge Scheduler schedules (remote mode), else in this user\'s crontab (local time)')
    .addHelpText(
      'after',
      '\nWithout --stack the crons are lines of this user\'s crontab, marked "# openclaw:<tenant>:<name>"; each runs this\n' +
        'node and CLI by absolute path with this --tenants-dir, and appends its output to a log file.',
    );

  addControlPlaneOptions(
    cron
      .command('add')
      .description('schedule an openclaw command for one tenant (a backup, prune, verify…; remote mode: a backup or a prune), or a backup of every tenant (--all)')
      .argument('[tenant]', 'tenant name (none with --all)')
      .requiredOption('--schedule <cron>', 'when, as 5 Unix cron fields, e.g. "0 3 * * *", or a macro: @daily, @hourly, @weekly, @monthly, @yearly (@reboot: local mode only) (remote mode: in --timezone; local mode: in this machine\'s local time)', once())
      .requiredOption('--name <name>', 'a name for this cron, unique per tenant, e.g. nightly-backup', once())
      .option('--cmd <command>', 'one tenant: the openclaw command to run, e.g. "openclaw tenants backup acme --to …" (any openclaw command; remote mode: tenants backup or tenants prune); $(date +FORMAT) is expanded when it runs', once())
      .option('--all', 'remote mode, every tenant: one schedule fans out one backup per tenant, run a bounded number at a time')
      .option('--to <template>', 'with --all: where each tenant\'s archive goes, naming {tenant} (and {date}, {time}, {date:FORMAT})', once())
      .option('--overwrite', 'with --all: replace existing archives (only where the gateway allows it)')
      .option('--encrypt-to <recipient>', 'with --all: encrypt every archive with age to this recipient (an age1… public key, stored in the schedule; repeatable)', repeated())
      .option('--recipients-file <file>', 'with --all: encrypt to the recipients in this file (one age1… per line, # comments, as age -R; read now; repeatable)', repeated())
      .option('--sse <algorithm>', 'with --all: S3 server-side encryption of every archive: AES256, aws:kms or aws:kms:dsse (as tenants backup --sse)', once())
      .option('--sse-kms-key-id <key>', 'with --all: the KMS key of --sse aws:kms (key id, ARN or alias/NAME)', once())
      .option('--storage-class <class>', 'with --all: S3 storage class of every archive, e.g. STANDARD_IA (as tenants backup --storage-class)', once())
      .option('--timezone <zone>', 'remote mode: the IANA time zone the schedule runs in, e.g. Europe/Berlin (default UTC); dates in the archive name follow it', once())
      .option('--window <duration>', 'remote mode: let the start be spread over this long, e.g. 60m or 2h (default off)', once())
      .option('--replace', 'replace an existing cron of that name')
      .option('--log <file>', 'local mode: the file the cron\'s output is appended to (default ~/.openclaw/logs/cron-<tenant>-<name>.log)', once())
      .addHelpText(
        'after',
        '\nExamples:\n' +
          '  openclaw --stack openclaw-backup cron add acme --schedule "0 3 * * *" --name nightly-backup \\\n' +
          '    --cmd "openclaw tenants backup acme --to s3://my-bucket/acme/\\$(date +%F).tar.zst"\n' +
          '  openclaw --stack openclaw-backup cron add --all --schedule "0 3 * * *" --name nightly \\\n' +
          '    --to "s3://my-bucket/backups/{tenant}/{date}.tar.zst.age" --encrypt-to age1... --timezone Europe/Berlin --window 30m\n' +
          '  openclaw --tenants-dir /srv/openclaw/tenants cron add acme --schedule "0 3 * * *" --name nightly-backup \\\n' +
          '    --cmd "openclaw tenants backup acme --to /var/backups/acme/\\$(date +%F).tar.zst"',
      ),
  ).action(async (tenant: string | undefined, flags: AddFlags) => {
    await addCron(context, tenant, flags);
  });

  addControlPlaneOptions(
    cron
      .command('list')
      .description('list the scheduled backups, of one tenant or all')
      .argument('[tenant]', 'only this tenant\'s')
      .option('--all', 'only the crons of every tenant (cron add --all)'),
  ).action(async (tenant: string | undefined, flags: { all?: boolean }) => {
    await listCrons(context, tenant, flags.all === true);
  });

  addControlPlaneOptions(
    cron
      .command('rm')
      .alias('remove')
      .description('remove a scheduled backup: cron rm <tenant> <name>, or cron rm --all <name>')
      .usage('[options] <tenant> <name> | --all <name>')
      .argument('[tenant]', 'tenant name (with --all: the cron\'s name)')
      .argument('[name]', 'the cron\'s name')
      .option('--all', 'remove a cron of every tenant (cron add --all)'),
  ).action(async (first: string | undefined, second: string | undefined, flags: { all?: boolean }) => {
    if (first === undefined) {
      throw new UsageError(flags.all === true ? 'cron rm --all needs the cron\'s name: cron rm --all <name>' : 'cron rm needs the tenant and the cron\'s name: cron rm <tenant> <name> (or cron rm --all <name>)');
    }
    await removeCron(context, first, second, flags.all === true);
  });

  addControlPlaneOptions(
    cron
      .command('migrate')
      .description('move the crons of the previous version (EventBridge rules) to EventBridge Scheduler')
      .option('--dry-run', 'show what would move, change nothing'),
  ).action(async (flags: { dryRun?: boolean }) => {
    await migrateCrons(context, flags.dryRun === true);
  });
}

// ---------------------------------------------------------------------------------------

function ownerOf(tenant: string | undefined, all: boolean, command: string): CronOwner {
  if (all && tenant !== undefined) throw new UsageError(`${command} --all covers every tenant: drop the tenant name "${tenant}"`);
  if (all) return { all: true };
  if (tenant === undefined) throw new UsageError(`${command} needs a tenant name, or --all for every tenant`);
  return { tenant: assertTenantName(tenant) };
}

/** Refuses, in local mode, what only a gateway's scheduler does. */
function assertLocalFlags(command: string, flags: { all?: boolean; timezone?: string; window?: string }): void {
  if (flags.all === true) {
    // On this machine one cron runs `tenants backup --all`, filed under a name of the operator's (README).
    const here =
      command === 'cron add'
        ? 'on this machine, one cron backs up every tenant: cron add all --schedule … --name … --cmd "openclaw tenants backup --all --to /var/backups/{tenant}/{date}.tar.zst"'
        : `on this machine, a cron of every tenant is filed under the tenant name it was added with, e.g. ${command} all …`;
    const verb = command === 'cron add' ? 'schedules every tenant' : 'is for the schedules of every tenant';
    throw new UsageError(`${command} --all ${verb} on a deployed gateway: give --stack <prefix> or set OPENCLAW_STACK (${here})`, 'REMOTE_ONLY');
  }
  if (flags.timezone !== undefined) throw new UsageError(`--timezone is for a schedule on a gateway: a cron on this machine runs in its local time (TZ of the cron daemon)`, 'REMOTE_ONLY');
  if (flags.window !== undefined) throw new UsageError(`--window is for a schedule on a gateway: a cron on this machine starts on time`, 'REMOTE_ONLY');
}

async function cronClients(context: CliContext, what: string) {
  const plane = requireRemote(context, what);
  const [service, scheduler, dynamodb, events, lambda] = await Promise.all([
    import('../shared/control-plane/cron-service.js'),
    schedulerClient(plane),
    dynamoDbClient(plane),
    eventBridgeClient(plane),
    lambdaClient(plane),
  ]);
  return { plane, service, clients: { scheduler, dynamodb, events, lambda } };
}

async function addCron(context: CliContext, tenant: string | undefined, flags: AddFlags): Promise<void> {
  const all = flags.all === true;
  const owner = ownerOf(tenant, all, 'cron add');
  if (!all && flags.to !== undefined) throw new UsageError('cron add <tenant> takes --cmd; --to goes with --all');
  if (!all && flags.overwrite === true) throw new UsageError('cron add <tenant> takes --overwrite inside --cmd; --overwrite goes with --all');
  if (!all && (flags.encryptTo !== undefined || flags.recipientsFile !== undefined)) {
    throw new UsageError('cron add <tenant> takes --encrypt-to and --recipients-file inside --cmd; given to cron add itself they go with --all');
  }
  if (!all && (flags.sse !== undefined || flags.sseKmsKeyId !== undefined || flags.storageClass !== undefined)) {
    throw new UsageError('cron add <tenant> takes --sse, --sse-kms-key-id and --storage-class inside --cmd; given to cron add itself they go with --all');
  }
  if (all && flags.cmd !== undefined) throw new UsageError('cron add --all takes --to (a template naming {tenant}), not --cmd');
  if (all && flags.to === undefined) throw new UsageError('cron add --all needs --to, e.g. --to "s3://bucket/backups/{tenant}/{date}.tar.zst"');
  if (!all && flags.cmd === undefined) {
    const commands = context.remote === undefined ? 'any openclaw command' : 'remote mode: tenants backup or tenants prune';
    throw new UsageError(`cron add ${tenant!} needs --cmd: the openclaw command to run, e.g. --cmd "openclaw tenants backup ${tenant!} --to …" (${commands})`);
  }
  const windowMinutes = flags.window === undefined ? 0 : parseWindow(flags.window);

  if (context.remote === undefined) {
    assertLocalFlags('cron add', flags);
    return addLocalCron(context, tenant!, { schedule: flags.schedule, name: flags.name, cmd: flags.cmd!, replace: flags.replace, log: flags.log });
  }
  if (flags.log !== undefined) throw new UsageError('--log is for a cron on this machine: a scheduled backup on the gateway logs to CloudWatch', 'REMOTE_UNSUPPORTED');
  const { plane, service, clients } = await cronClients(context, 'cron add');
  const added = await service.addCron(plane, clients, {
    owner,
    name: flags.name,
    schedule: flags.schedule,
    ...(flags.timezone !== undefined && { timeZone: flags.timezone }),
    windowMinutes,
    ...(flags.cmd !== undefined && { cmd: flags.cmd }),
    ...(flags.to !== undefined && { to: flags.to }),
    ...(flags.overwrite === true && { overwrite: true }),
    ...(flags.encryptTo !== undefined && { encryptTo: flags.encryptTo }),
    ...(flags.recipientsFile !== undefined && { recipientsFiles: flags.recipientsFile, signal: context.signal }),
    ...((flags.sse !== undefined || flags.sseKmsKeyId !== undefined || flags.storageClass !== undefined) && {
      storage: {
        ...(flags.sse !== undefined && { sse: flags.sse }),
        ...(flags.sseKmsKeyId !== undefined && { sseKmsKeyId: flags.sseKmsKeyId }),
        ...(flags.storageClass !== undefined && { storageClass: flags.storageClass }),
      },
    }),
    ...(flags.replace === true && { replace: true }),
  });

  const zone = added.timeZone;
  const first = added.nextRuns[0];
  const sampleTenant = added.all ? 'sample-tenant' : added.tenant;
  const sample = first === undefined ? undefined : expandTemplate(added.to, { time: first, tenant: sampleTenant, ...(!isUtc(zone) && { timeZone: zone }) });
  const when = (date: Date) => (isUtc(zone) ? `${inZone(date, 'UTC')} UTC` : `${inZone(date, zone)} ${zone} (${inZone(date, 'UTC').slice(11)} UTC)`);
  const overwrites = added.all ? added.cmd.endsWith(' --overwrite') : added.command !== undefined && 'overwrite' in added.command && added.command.overwrite === true;
  context.output.result(
    {
      operation: 'cron-add',
      tenant: added.tenant,
      all: added.all,
      name: added.name,
      scheduleName: `${added.group}/${added.scheduleName}`,
      scheduleArn: added.scheduleArn,
      target: added.target,
      schedule: added.schedule,
      expression: added.expression,
      timezone: zone,
      windowMinutes: added.windowMinutes,
      cmd: added.cmd,
      ...(added.command !== undefined && { command: added.command }),
      to: added.to,
      ...(added.encryptTo !== undefined && { encryptTo: added.encryptTo }),
      nextRuns: added.nextRuns.map((date) => date.toISOString()),
      ...(added.skippedByClockChange !== undefined && { skippedByClockChange: added.skippedByClockChange }),
      replaced: added.replaced,
    },
    [
      `${added.replaced ? 'Replaced' : 'Added'} cron "${added.name}" for ${added.all ? 'every tenant' : `tenant "${added.tenant}"`}: ` +
        `schedule ${added.group}/${added.scheduleName} → ${added.target}${added.all ? ' (one backup per tenant through the work queue)' : ''}`,
      `  schedule  ${added.schedule}  =  ${added.expression}, in ${zone}${isUtc(zone) ? '' : ' (its daylight saving time included)'}`,
      ...(added.windowMinutes > 0 ? [`  window    the start may be spread over ${formatWindow(added.windowMinutes)}`] : []),
      `  next      ${added.nextRuns.map(when).join(', ')}`,
      ...(added.skippedByClockChange === undefined
        ? []
        : [`  skipped   ${added.skippedByClockChange} ${zone} does not exist (the clocks go forward): Scheduler does not run it that day; a time the clocks repeat runs once`]),
      `  runs      ${added.cmd}`,
      ...(added.encryptTo === undefined ? [] : [`  encrypts  with age to ${plural(added.encryptTo.length, 'recipient')}: ${added.encryptTo.join(', ')}`]),
      ...(added.kind === 'prune' && added.command !== undefined && 'keep' in added.command
        ? [`  prunes    ${added.command.in}, keeping ${Object.entries(added.command.keep).map(([rule, count]) => `${rule} ${count}`).join(', ')}`]
        : added.templated && sample !== undefined
        ? [
            `  archive   ${added.to}: filled in ${added.all ? 'for each tenant ' : ''}when it fires, dates in ${zone} ` +
              `(first${added.all ? `, for a tenant "${sampleTenant}"` : ''}: ${sample})`,
          ]
        : [`  archive   ${added.to}${overwrites ? ' (overwritten each time)' : ': the same key every time, so runs after the first fail unless --overwrite is in --cmd'}`]),
    ],
  );
}

async function listCrons(context: CliContext, tenant: string | undefined, all: boolean): Promise<void> {
  if (tenant !== undefined) assertTenantName(tenant);
  if (tenant !== undefined && all) throw new UsageError('cron list takes a tenant or --all, not both');
  context.exitAtOnceOnInterrupt();
  if (context.remote === undefined) {
    assertLocalFlags('cron list', { all });
    return listLocalCrons(context, tenant);
  }
  const { plane, service, clients } = await cronClients(context, 'cron list');
  const owner: CronOwner | undefined = all ? { all: true } : tenant === undefined ? undefined : { tenant };
  const crons = await service.listCrons(plane, clients, owner);
  const rows = crons.map((cron) => [
    cron.tenant,
    cron.name,
    `${cron.schedule ?? cron.expression ?? '?'}${(cron.windowMinutes ?? 0) > 0 ? ` within ${formatWindow(cron.windowMinutes!)}` : ''}`,
    cron.timeZone ?? '?',
    cron.kind === 'rule' ? `${cron.state} (rule)` : cron.state,
    cron.cmd ?? '',
  ]);
  const rules = crons.filter((cron) => cron.kind === 'rule').length;
  const scope = tenant === undefined ? (all ? ' for every tenant' : '') : ` for tenant "${tenant}"`;
  // Said before the result, so that --json carries it in `notices` (after, only stderr had it).
  if (rules > 0) {
    context.output.notice(
      `${rules} of ${rules === crons.length ? (rules === 1 ? 'this cron' : 'these crons') : `these ${crons.length} crons`} ${rules === 1 ? 'is an EventBridge rule' : 'are EventBridge rules'} of the previous version: ` +
        `move ${rules === 1 ? 'it' : 'them'} to EventBridge Scheduler with \`openclaw --stack ${plane.stack} cron migrate\` (--dry-run shows what would move)`,
    );
  }
  context.output.result(
    { crons },
    crons.length === 0 ? [`no crons${scope} on ${plane.stack}`] : [...table(['TENANT', 'NAME', 'SCHEDULE', 'TIME ZONE', 'STATE', 'COMMAND'], rows)],
  );
}

async function removeCron(context: CliContext, first: string, second: string | undefined, all: boolean): Promise<void> {
  let owner: CronOwner;
  let name: string;
  if (all) {
    if (second !== undefined) throw new UsageError(`cron rm --all takes the cron's name only: cron rm --all ${second}`);
    owner = { all: true };
    name = first;
  } else {
    if (second === undefined) throw new UsageError(`cron rm needs the tenant and the cron's name: cron rm ${first} <name> (or cron rm --all ${first})`);
    owner = { tenant: assertTenantName(first) };
    name = second;
  }
  if (context.remote === undefined) {
    assertLocalFlags('cron rm', { all });
    return removeLocalCron(context, first, name);
  }
  const { plane, service, clients } = await cronClients(context, 'cron rm');
  const removed = await service.removeCron(plane, clients, owner, name);
  const whose = all ? 'of every tenant' : `of tenant "${first}"`;
  context.output.result(
    { operation: 'cron-rm', tenant: all ? '*' : first, all, name, kind: removed.kind, id: removed.id },
    [`Removed cron "${name}" ${whose} (${removed.kind === 'schedule' ? `schedule ${removed.id}` : `EventBridge rule ${removed.id}`})`],
  );
}

async function migrateCrons(context: CliContext, dryRun: boolean): Promise<void> {
  const { plane, service, clients } = await cronClients(context, 'cron migrate');
  const results = await service.migrateCrons(plane, clients, { dryRun });
  const moved = results.filter((result) => result.outcome !== 'left');
  const left = results.filter((result) => result.outcome === 'left');
  const lines: string[] = [];
  if (results.length === 0) lines.push(`no cron rules of the previous version on ${plane.stack}: nothing to migrate`);
  if (moved.length > 0) {
    lines.push(dryRun ? `Would move ${moved.length} cron${moved.length === 1 ? '' : 's'} to EventBridge Scheduler (nothing changed):` : `Moved ${moved.length} cron${moved.length === 1 ? '' : 's'} to EventBridge Scheduler:`);
    lines.push(...table(['TENANT', 'NAME', 'RULE', 'SCHEDULE'], moved.map((result) => [result.tenant, result.name, result.rule, `${result.schedule}${result.outcome === 'already-migrated' ? ' (existed already)' : ''}`])).map((line) => `  ${line}`));
  }
  if (left.length > 0) {
    lines.push(`Left ${left.length} rule${left.length === 1 ? '' : 's'} as ${left.length === 1 ? 'it is' : 'they are'} (still running; move by hand with cron add, then cron rm):`);
    for (const result of left) lines.push(`  ${result.rule}: ${result.reason ?? ''}`);
  }
  context.output.result({ operation: 'cron-migrate', dryRun, results }, lines);
}

/** `date`'s wall time in `zone`, as `YYYY-MM-DD HH:MM`. */
function inZone(date: Date, zone: string): string {
  return new Intl.DateTimeFormat('sv-SE', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(date);
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const format = (row: string[]) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ');
  return [format(header), ...rows.map(format)];
}
