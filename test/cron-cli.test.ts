// `openclaw cron add|list|rm|migrate` in-process against aws-sdk-client-mock: the exact
// Scheduler, DynamoDB (cron catalog), Lambda and EventBridge inputs; one tenant's crons and
// every tenant's (--all, its recipients stored in the schedule's input); time zones and windows; the rollback when the catalog cannot be
// written; that listing makes no call per schedule (10,000 of them); the rules of the
// previous version listed, removed and migrated; what local mode refuses. Local mode (the
// user's crontab) is otherwise cron-local.test.ts's.

import { execFileSync } from 'node:child_process';
import { DeleteItemCommand, DynamoDBClient, PutItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import {
  DeleteRuleCommand,
  DescribeRuleCommand,
  EventBridgeClient,
  ListRulesCommand,
  ListTagsForResourceCommand,
  ListTargetsByRuleCommand,
  RemoveTargetsCommand,
  type Rule,
} from '@aws-sdk/client-eventbridge';
import { GetFunctionCommand, InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import {
  CreateScheduleCommand,
  DeleteScheduleCommand,
  GetScheduleCommand,
  ListSchedulesCommand,
  SchedulerClient,
  UpdateScheduleCommand,
} from '@aws-sdk/client-scheduler';
import { mockClient } from 'aws-sdk-client-mock';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { generateIdentity } from '../shared/age/keys.js';
import { runMain, stubRemoteCaller } from './helpers/run-main.js';
import { tempDir } from './helpers/tree.js';

const scheduler = mockClient(SchedulerClient);
const dynamodb = mockClient(DynamoDBClient);
const events = mockClient(EventBridgeClient);
const lambda = mockClient(LambdaClient);
const ACCOUNT = '123456789012';
const FUNCTION_ARN = `arn:aws:lambda:eu-west-1:${ACCOUNT}:function:openclaw-backup-backup`;
const FANOUT_ARN = `arn:aws:lambda:eu-west-1:${ACCOUNT}:function:openclaw-backup-fanout`;
const ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/openclaw-backup-scheduler-eu-west-1`;
const DLQ_ARN = `arn:aws:sqs:eu-west-1:${ACCOUNT}:openclaw-backup-schedule-dlq`;
const SCHEDULE_ARN = `arn:aws:scheduler:eu-west-1:${ACCOUNT}:schedule/openclaw-backup/acme.nightly-backup`;
const MIGRATE_NOTICE = '1 of these 3 crons is an EventBridge rule of the previous version: move it to EventBridge Scheduler with `openclaw --stack openclaw-backup cron migrate` (--dry-run shows what would move)';
const RULE_ARN = `arn:aws:events:eu-west-1:${ACCOUNT}:rule/openclaw-backup-acme-nightly-backup`;
/** The seed's command, unchanged. */
const CMD = 'openclaw tenants backup acme --to s3://my-bucket/acme/$(date +%F).tar.zst';

const run = runMain;
const named = (name: string, message = `${name}`) => Object.assign(new Error(message), { name });
const notFound = (what: string) => named('ResourceNotFoundException', `${what} does not exist.`);

beforeEach(() => {
  for (const client of [scheduler, dynamodb, events, lambda]) client.reset();
  stubRemoteCaller();
  lambda.on(GetFunctionCommand, { FunctionName: 'openclaw-backup-backup' }).resolves({ Configuration: { FunctionArn: FUNCTION_ARN, Environment: { Variables: { OPENCLAW_BACKUP_BUCKET: 'my-bucket' } } } });
  lambda.on(GetFunctionCommand, { FunctionName: 'openclaw-backup-fanout' }).resolves({ Configuration: { FunctionArn: FANOUT_ARN } });
  events.on(DescribeRuleCommand).rejects(notFound('Rule'));
  events.on(ListRulesCommand).resolves({ Rules: [] });
  scheduler.on(CreateScheduleCommand).resolves({ ScheduleArn: SCHEDULE_ARN });
  dynamodb.on(PutItemCommand).resolves({});
  // cron add's field check of a payload with --sse, --encrypt-to…, answered as the current functions answer it (gateway-fields.test.ts).
  lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: new TextEncoder().encode(JSON.stringify({ ok: false, error: { code: 'INVALID_NAME', outcome: 'usage', message: 'invalid tenant name' } })) as never });
});
afterEach(() => vi.unstubAllEnvs());
afterAll(() => {
  for (const client of [scheduler, dynamodb, events, lambda]) client.restore();
});

const add = (...extra: string[]) =>
  run(['--stack', 'openclaw-backup', 'cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'nightly-backup', '--cmd', CMD, ...extra]);
const addAll = (...extra: string[]) =>
  run(['--stack', 'openclaw-backup', 'cron', 'add', '--all', '--schedule', '0 3 * * *', '--name', 'nightly', '--to', 's3://my-bucket/backups/{tenant}/{date}.tar.zst', ...extra]);
const createInputs = () => scheduler.commandCalls(CreateScheduleCommand).map((call) => call.args[0].input);

describe('cron add, one tenant', () => {
  it('creates a schedule in the stack\'s group targeting the backup function, with its role, retries and DLQ, exactly', async () => {
    const result = await add();
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);

    expect(lambda.commandCalls(GetFunctionCommand).map((call) => call.args[0].input)).toEqual([{ FunctionName: 'openclaw-backup-backup' }]);
    // A rule of the previous version of that name would double the cron: looked for first.
    expect(events.commandCalls(DescribeRuleCommand).map((call) => call.args[0].input)).toEqual([{ Name: 'openclaw-backup-acme-nightly-backup' }]);
    expect(createInputs()).toEqual([
      {
        Name: 'acme.nightly-backup',
        GroupName: 'openclaw-backup',
        ScheduleExpression: 'cron(0 3 * * ? *)',
        ScheduleExpressionTimezone: 'UTC',
        FlexibleTimeWindow: { Mode: 'OFF' },
        State: 'ENABLED',
        Description: JSON.stringify({ schedule: '0 3 * * *', cmd: CMD }),
        ActionAfterCompletion: 'NONE',
        Target: {
          Arn: FUNCTION_ARN,
          RoleArn: ROLE_ARN,
          Input:
            '{"source":"openclaw.cron","tenant":"acme","cronName":"nightly-backup","time":"<aws.scheduler.scheduled-time>",' +
            '"eventId":"<aws.scheduler.execution-id>","command":{"tenant":"acme","to":"s3://my-bucket/acme/{date:%F}.tar.zst"}}',
          RetryPolicy: { MaximumEventAgeInSeconds: 10800, MaximumRetryAttempts: 20 },
          DeadLetterConfig: { Arn: DLQ_ARN },
        },
      },
    ]);
    const catalog = dynamodb.commandCalls(PutItemCommand).map((call) => call.args[0].input);
    expect(catalog).toEqual([
      {
        TableName: 'openclaw-backup-status',
        Item: {
          kind: { S: 'cron' },
          name: { S: 'acme.nightly-backup' },
          tenant: { S: 'acme' },
          cronName: { S: 'nightly-backup' },
          schedule: { S: '0 3 * * *' },
          expression: { S: 'cron(0 3 * * ? *)' },
          timeZone: { S: 'UTC' },
          windowMinutes: { N: '0' },
          cmd: { S: CMD },
          createdAt: { S: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
        },
      },
    ]);

    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe('Added cron "nightly-backup" for tenant "acme": schedule openclaw-backup/acme.nightly-backup → openclaw-backup-backup');
    expect(lines[1]).toBe('  schedule  0 3 * * *  =  cron(0 3 * * ? *), in UTC');
    expect(lines[2]).toMatch(/^ {2}next {6}\d{4}-\d\d-\d\d 03:00 UTC, \d{4}-\d\d-\d\d 03:00 UTC, \d{4}-\d\d-\d\d 03:00 UTC$/);
    expect(lines[3]).toBe(`  runs      ${CMD}`);
    expect(lines[4]).toMatch(/^ {2}archive {3}s3:\/\/my-bucket\/acme\/\{date:%F\}\.tar\.zst: filled in when it fires, dates in UTC \(first: s3:\/\/my-bucket\/acme\/\d{4}-\d\d-\d\d\.tar\.zst\)$/);
  });

  it('runs in a time zone, spreads its start over a window, and writes the zone\'s dates', async () => {
    const result = await run([
      '--stack', 'openclaw-backup', '--json', 'cron', 'add', 'acme', '--schedule', '30 0 * * *', '--name', 'nightly-backup',
      '--cmd', CMD, '--timezone', 'europe/berlin', '--window', '1h',
    ]);
    expect(result.stderr).toBe('');
    const [input] = createInputs();
    expect(input).toMatchObject({
      ScheduleExpression: 'cron(30 0 * * ? *)',
      ScheduleExpressionTimezone: 'Europe/Berlin',
      FlexibleTimeWindow: { Mode: 'FLEXIBLE', MaximumWindowInMinutes: 60 },
      Description: JSON.stringify({ schedule: '30 0 * * *', cmd: CMD, timeZone: 'Europe/Berlin' }),
    });
    expect(JSON.parse(input!.Target!.Input!)).toMatchObject({ timeZone: 'Europe/Berlin', time: '<aws.scheduler.scheduled-time>' });
    const json = JSON.parse(result.stdout);
    expect(json).toMatchObject({ operation: 'cron-add', tenant: 'acme', all: false, timezone: 'Europe/Berlin', windowMinutes: 60, scheduleName: 'openclaw-backup/acme.nightly-backup' });
    // 00:30 in Berlin is 22:30 or 23:30 UTC the day before.
    for (const next of json.nextRuns as string[]) expect(next).toMatch(/T2[23]:30:00\.000Z$/);

    const human = await run(['--stack', 'openclaw-backup', 'cron', 'add', 'acme', '--schedule', '30 0 * * *', '--name', 'nightly-backup', '--cmd', CMD, '--timezone', 'Europe/Berlin', '--window', '90m']);
    const lines = human.stdout.split('\n');
    expect(lines[1]).toBe('  schedule  30 0 * * *  =  cron(30 0 * * ? *), in Europe/Berlin (its daylight saving time included)');
    expect(lines[2]).toBe('  window    the start may be spread over 1h30m');
    expect(lines[3]).toMatch(/^ {2}next {6}\d{4}-\d\d-\d\d 00:30 Europe\/Berlin \(2[23]:30 UTC\), /);
  });

  it('adds a schedule with overlapping items (Sunday as 0 and 7) and previews it, rather than failing after creating it', async () => {
    const result = await run(['--stack', 'openclaw-backup', '--json', 'cron', 'add', 'acme', '--schedule', '0 3 * * 0,7', '--name', 'nightly-backup', '--cmd', CMD]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(createInputs()[0]).toMatchObject({ ScheduleExpression: 'cron(0 3 ? * SUN *)' });
    const runs = (JSON.parse(result.stdout) as { nextRuns: string[] }).nextRuns;
    expect(runs).toHaveLength(3);
    for (const next of runs) expect(new Date(next).getUTCDay()).toBe(0);
  });

  it('says which run of the year the time zone\'s clocks skip', async () => {
    const result = await run(['--stack', 'openclaw-backup', 'cron', 'add', 'acme', '--schedule', '30 2 * * *', '--name', 'nightly-backup', '--cmd', CMD, '--timezone', 'Europe/Berlin']);
    expect(result.stderr).toBe('');
    const lines = result.stdout.split('\n');
    for (const next of lines[2]!.split(', ')) expect(next).toMatch(/02:30 Europe\/Berlin/);
    expect(lines[3]).toMatch(/^ {2}skipped {3}\d{4}-03-\d\d 02:30 Europe\/Berlin does not exist \(the clocks go forward\): Scheduler does not run it that day/);
    const utc = await run(['--stack', 'openclaw-backup', 'cron', 'add', 'acme', '--schedule', '30 2 * * *', '--name', 'nightly-backup', '--cmd', CMD, '--replace']);
    expect(utc.stdout).not.toMatch(/skipped/);
  });

  it('refuses, before creating anything, what cannot be scheduled', async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [['--schedule', '0 3 1 * 1'], 2, /EventBridge cannot combine the two/],
      [['--schedule', '0 0 3 * * *'], 2, /EventBridge has no seconds field/],
      [['--cmd', 'openclaw tenants backup beta --to s3://my-bucket/b.tar.zst'], 2, /the cron belongs to tenant "acme"/],
      [['--cmd', 'openclaw tenants backup acme --to s3://my-bucket/b.tar.zst; reboot'], 2, /not run by a shell/],
      [['--cmd', 'openclaw tenants backup --all --to s3://my-bucket/{tenant}.tar.zst'], 2, /cron add --all/],
      [['--name', 'bad name'], 2, /invalid cron name/],
      [['--timezone', 'Mars/Olympus'], 2, /unknown --timezone "Mars\/Olympus"/],
      [['--window', '3d'], 2, /invalid --window "3d"/],
      [['--to', 's3://my-bucket/{tenant}.tar.zst'], 2, /--to goes with --all/],
      [['--cmd', 'openclaw tenants backup acme --to s3://other-bucket/$(date +%F).tar.zst'], 3, /backs up to s3:\/\/my-bucket\/ only, not to bucket "other-bucket"/],
      [['--cmd', 'openclaw tenants backup acme --to s3://my-bucket/b.tar.zst --overwrite'], 3, /never replaces an archive/],
    ];
    for (const [override, status, message] of cases) {
      const flags = new Map<string, string>([['--schedule', '0 3 * * *'], ['--name', 'nightly-backup'], ['--cmd', CMD]]);
      flags.set(override[0]!, override[1]!);
      const result = await run(['--stack', 'openclaw-backup', 'cron', 'add', 'acme', ...[...flags].flat()]);
      expect(result.status, message.source).toBe(status);
      expect(result.stderr).toMatch(message);
    }
    expect(scheduler.commandCalls(CreateScheduleCommand)).toHaveLength(0);
    expect(dynamodb.commandCalls(PutItemCommand)).toHaveLength(0);
  });

  it('refuses, before creating anything, a --to that names one archive for two runs, and $(date -u) in a zone\'s schedule', async () => {
    const refused = async (args: string[], message: RegExp) => {
      const result = await run(['--stack', 'openclaw-backup', 'cron', 'add', ...args]);
      expect(result.status, message.source).toBe(2);
      expect(result.stderr).toMatch(message);
    };
    await refused(['acme', '--schedule', '0 3,15 * * *', '--name', 'twice', '--cmd', CMD], /^openclaw: --to names the same archive, s3:\/\/my-bucket\/acme\/(\S+)\.tar\.zst, for the run at \1 03:00 and the one at \1 15:00 \(UTC\): the later one would fail/);
    // $(date +%F) names the zone's date: 00:30 and 23:30 of one Berlin day.
    await refused(['acme', '--schedule', '30 0,23 * * *', '--name', 'twice', '--cmd', CMD, '--timezone', 'Europe/Berlin'], /for the run at (\S+) 00:30 and the one at \1 23:30 \(Europe\/Berlin\)/);
    // The first two runs that share a date: 00:00 and 06:00, or 06:00 and 12:00 once today's midnight has passed.
    await refused(['--all', '--schedule', '0 */6 * * *', '--name', 'often', '--to', 's3://my-bucket/backups/{tenant}/{date}.tar.zst'], /sample-tenant\/\S+\.tar\.zst, for the run at (\S+) (00|06|12):00 and the one at \1 (06|12|18):00 \(UTC\)/);
    await refused(['acme', '--schedule', '0 3 * * *', '--name', 'utc', '--cmd', 'openclaw tenants backup acme --to s3://my-bucket/acme/$(date -u +%F).tar.zst', '--timezone', 'Europe/Berlin'], /^openclaw: \$\(date -u …\) in --to names the UTC date, but this schedule writes its dates in Europe\/Berlin \(--timezone\): drop -u, or --timezone\n$/);
    // --all's --to is a template the gateway fills in: a $(date …) there was never run (the refusal said to unquote it, which
    // has the user's shell write the date of cron add), nor did a fixed name's refusal say how a template writes the time.
    await refused(
      ['--all', '--schedule', '0 3 * * *', '--name', 'utc', '--to', 's3://my-bucket/backups/{tenant}/$(date -u +%F).tar.zst', '--timezone', 'Europe/Berlin'],
      /^openclaw: --to "s3:\/\/my-bucket\/backups\/\{tenant\}\/\$\(date -u \+%F\)\.tar\.zst": cron add --all's --to is a template the gateway fills in at each run, where no shell runs \$\(date …\): write \{date\} \(YYYY-MM-DD\), \{time\} \(HHMMSS\) or \{date:FORMAT\} \(e\.g\. \{date:%F-%H%M\}\), in the schedule's --timezone\n$/,
    );
    await refused(['--all', '--schedule', '0 3 * * *', '--name', 'fixed', '--to', 's3://my-bucket/backups/{tenant}/2026-12-05.tar.zst'], /put the run's date and time in --to \(e\.g\. \{date:%F-%H%M\}\), or give --overwrite/);
    await refused(['acme', '--schedule', '0 3 * * *', '--name', 'fixed', '--cmd', 'openclaw tenants backup acme --to s3://my-bucket/acme/x.tar.zst'], /put the run's date and time in --to \(e\.g\. \$\(date \+%F-%H%M\)\), or give --overwrite/);
    expect(scheduler.commandCalls(CreateScheduleCommand)).toHaveLength(0);
    // In UTC, -u changes nothing; a finer name passes.
    expect((await run(['--stack', 'openclaw-backup', 'cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'utc', '--cmd', 'openclaw tenants backup acme --to s3://my-bucket/acme/$(date -u +%F).tar.zst'])).status).toBe(0);
    expect((await run(['--stack', 'openclaw-backup', 'cron', 'add', 'acme', '--schedule', '0 3,15 * * *', '--name', 'twice', '--cmd', 'openclaw tenants backup acme --to s3://my-bucket/acme/$(date +%F-%H).tar.zst'])).status).toBe(0);
  });

  it('checks the destination against the backup function\'s own bucket and key prefix', async () => {
    lambda.on(GetFunctionCommand, { FunctionName: 'openclaw-backup-backup' }).resolves({
      Configuration: { FunctionArn: FUNCTION_ARN, Environment: { Variables: { OPENCLAW_BACKUP_BUCKET: 'my-bucket', OPENCLAW_BACKUP_PREFIX: 'backups/' } } },
    });
    const refused = await add();
    expect(refused.status).toBe(3);
    expect(refused.stderr).toMatch(/keeps its archives under s3:\/\/my-bucket\/backups\/: --to must be s3:\/\/my-bucket\/backups\/…/);
    const ok = await run(['--stack', 'openclaw-backup', 'cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'nightly-backup', '--cmd', 'openclaw tenants backup acme --to s3://my-bucket/backups/acme/$(date +%F).tar.zst']);
    expect(ok.status).toBe(0);
  });

  it('schedules a prune on the prune function, checked against its own bucket', async () => {
    const PRUNE_ARN = `arn:aws:lambda:eu-west-1:${ACCOUNT}:function:openclaw-backup-prune`;
    lambda.on(GetFunctionCommand, { FunctionName: 'openclaw-backup-prune' }).resolves({
      Configuration: { FunctionArn: PRUNE_ARN, Environment: { Variables: { OPENCLAW_BACKUP_BUCKET: 'my-bucket', OPENCLAW_BACKUP_PREFIX: 'backups/' } } },
    });
    const cmd = 'openclaw tenants prune acme --in s3://my-bucket/backups/acme/ --keep-daily 7 --keep-monthly 12';
    const result = await run(['--stack', 'openclaw-backup', 'cron', 'add', 'acme', '--schedule', '30 4 * * *', '--name', 'nightly-prune', '--cmd', cmd]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(lambda.commandCalls(GetFunctionCommand).map((call) => call.args[0].input)).toContainEqual({ FunctionName: 'openclaw-backup-prune' });
    const [input] = createInputs();
    expect(input!.Name).toBe('acme.nightly-prune');
    expect(input!.Target!.Arn).toBe(PRUNE_ARN);
    expect(input!.Target!.Input).toBe(
      '{"source":"openclaw.cron","tenant":"acme","cronName":"nightly-prune","time":"<aws.scheduler.scheduled-time>",' +
        '"eventId":"<aws.scheduler.execution-id>","command":{"tenant":"acme","in":"s3://my-bucket/backups/acme/","keep":{"daily":7,"monthly":12}}}',
    );
    expect(result.stdout).toMatch(/→ openclaw-backup-prune\n/);
    expect(result.stdout).toMatch(/\n {2}prunes {4}s3:\/\/my-bucket\/backups\/acme\/, keeping daily 7, monthly 12\n/);

    const outside = await run(['--stack', 'openclaw-backup', 'cron', 'add', 'acme', '--schedule', '30 4 * * *', '--name', 'p2', '--cmd', 'openclaw tenants prune acme --in s3://my-bucket/ --keep-daily 7']);
    expect(outside.status).toBe(3);
    expect(outside.stderr).toMatch(/--in must be s3:\/\/my-bucket\/backups\/…/);
    expect(createInputs()).toHaveLength(1);
  });

  it('takes a new schedule back when the cron catalog cannot be written', async () => {
    dynamodb.on(PutItemCommand).rejects(named('ResourceNotFoundException', 'Requested resource not found'));
    scheduler.on(DeleteScheduleCommand).resolves({});
    const result = await add();
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/^openclaw: recording the cron in the table openclaw-backup-status: not found/);
    expect(scheduler.commandCalls(DeleteScheduleCommand).map((call) => call.args[0].input)).toEqual([{ Name: 'acme.nightly-backup', GroupName: 'openclaw-backup' }]);
  });

  it('replaces only with --replace', async () => {
    scheduler.on(CreateScheduleCommand).rejects(named('ConflictException', 'Schedule acme.nightly-backup already exists.'));
    scheduler.on(UpdateScheduleCommand).resolves({ ScheduleArn: SCHEDULE_ARN });
    const refused = await add();
    expect(refused.status).toBe(3);
    expect(refused.stderr).toBe('openclaw: tenant "acme" already has a cron "nightly-backup" (schedule openclaw-backup/acme.nightly-backup): give --replace, or remove it first with cron rm\n');
    expect(scheduler.commandCalls(UpdateScheduleCommand)).toHaveLength(0);

    const replaced = await add('--replace');
    expect(replaced.status).toBe(0);
    expect(replaced.stdout).toMatch(/^Replaced cron "nightly-backup"/);
    expect(scheduler.commandCalls(UpdateScheduleCommand).map((call) => call.args[0].input)).toEqual([createInputs()[1]]);
  });

  it('refuses to double a cron that is still an EventBridge rule of the previous version', async () => {
    events.on(DescribeRuleCommand).resolves({ Name: 'openclaw-backup-acme-nightly-backup', Arn: RULE_ARN, State: 'ENABLED' });
    events.on(ListTagsForResourceCommand).resolves({ Tags: [{ Key: 'openclaw:tenant', Value: 'acme' }, { Key: 'openclaw:cron-name', Value: 'nightly-backup' }] });
    const result = await add('--replace');
    expect(result.status).toBe(3);
    expect(result.stderr).toMatch(/as an EventBridge rule of the previous version \(openclaw-backup-acme-nightly-backup\): move it with `cron migrate`/);
    expect(scheduler.commandCalls(CreateScheduleCommand)).toHaveLength(0);
  });

  it('says to deploy this version when the stack has no schedule group yet', async () => {
    scheduler.on(CreateScheduleCommand).rejects(notFound('Schedule group openclaw-backup'));
    const result = await add();
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/the schedule group openclaw-backup does not exist: deploy this version of the stack openclaw-backup \(it creates the group\)/);
  });

  it('refuses in local mode what only a gateway\'s scheduler does, before touching the crontab', async () => {
    const all = await run(['cron', 'add', '--all', '--schedule', '0 3 * * *', '--name', 'nightly', '--to', '/var/backups/{tenant}/{date}.tar.zst']);
    expect(all.status).toBe(2);
    expect(all.stderr).toMatch(/^openclaw: cron add --all schedules every tenant on a deployed gateway: give --stack <prefix> or set OPENCLAW_STACK \(on this machine, one cron backs up every tenant: cron add all --schedule … --name … --cmd "openclaw tenants backup --all --to /);
    const zoned = await run(['cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'nightly', '--cmd', CMD, '--timezone', 'Europe/Berlin']);
    expect(zoned.status).toBe(2);
    expect(zoned.stderr).toMatch(/--timezone is for a schedule on a gateway: a cron on this machine runs in its local time/);
    const windowed = await run(['cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'nightly', '--cmd', CMD, '--window', '30m']);
    expect(windowed.stderr).toMatch(/--window is for a schedule on a gateway/);
    expect((await run(['cron', 'list', '--all'])).stderr).toMatch(/^openclaw: cron list --all is for the schedules of every tenant on a deployed gateway: give --stack <prefix> or set OPENCLAW_STACK \(on this machine, a cron of every tenant is filed under the tenant name it was added with, e\.g\. cron list all …\)\n$/);
    expect((await run(['cron', 'rm', '--all', 'nightly'])).stderr).toMatch(/^openclaw: cron rm --all is for the schedules of every tenant on a deployed gateway/);
    const migrate = await run(['cron', 'migrate']);
    expect(migrate.status).toBe(2);
    expect(migrate.stderr).toBe('openclaw: cron migrate works on a deployed gateway: give --stack <prefix> or set OPENCLAW_STACK\n');
    const logged = await run(['--stack', 'openclaw-backup', 'cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'nightly', '--cmd', CMD, '--log', '/tmp/x.log']);
    expect(logged.status).toBe(2);
    expect(logged.stderr).toMatch(/--log is for a cron on this machine/);
    expect(scheduler.calls()).toHaveLength(0);
  });
});

describe('cron add --all', () => {
  it('creates one schedule that starts the fan-out with the template', async () => {
    const result = await addAll('--timezone', 'Europe/Berlin');
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(lambda.commandCalls(GetFunctionCommand).map((call) => call.args[0].input)).toEqual([{ FunctionName: 'openclaw-backup-backup' }, { FunctionName: 'openclaw-backup-fanout' }]);
    // No rule of the previous version could back up every tenant: nothing to look for.
    expect(events.commandCalls(DescribeRuleCommand)).toHaveLength(0);
    const [input] = createInputs();
    expect(input).toMatchObject({
      Name: '_all.nightly',
      GroupName: 'openclaw-backup',
      ScheduleExpressionTimezone: 'Europe/Berlin',
      Target: { Arn: FANOUT_ARN, RoleArn: ROLE_ARN, DeadLetterConfig: { Arn: DLQ_ARN } },
    });
    expect(input!.Target!.Input).toBe(
      '{"source":"openclaw.fanout","version":1,"to":"s3://my-bucket/backups/{tenant}/{date}.tar.zst","cronName":"nightly","timeZone":"Europe/Berlin",' +
        '"time":"<aws.scheduler.scheduled-time>","runId":"<aws.scheduler.execution-id>"}',
    );
    expect(dynamodb.commandCalls(PutItemCommand)[0]!.args[0].input.Item).toMatchObject({
      name: { S: '_all.nightly' },
      tenant: { S: '*' },
      cmd: { S: 'openclaw tenants backup --all --to s3://my-bucket/backups/{tenant}/{date}.tar.zst' },
    });
    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe('Added cron "nightly" for every tenant: schedule openclaw-backup/_all.nightly → openclaw-backup-fanout (one backup per tenant through the work queue)');
    expect(lines[4]).toMatch(/^ {2}archive {3}s3:\/\/my-bucket\/backups\/\{tenant\}\/\{date\}\.tar\.zst: filled in for each tenant when it fires, dates in Europe\/Berlin \(first, for a tenant "sample-tenant": s3:\/\/my-bucket\/backups\/sample-tenant\/\d{4}-\d\d-\d\d\.tar\.zst\)$/);
  });

  it('stores --sse, --sse-kms-key-id and --storage-class in the schedule\'s input, refuses a bad one now, and takes them for one tenant only inside --cmd', async () => {
    const result = await addAll('--sse', 'aws:kms', '--sse-kms-key-id', 'alias/backups', '--storage-class', 'STANDARD_IA');
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const input = JSON.parse(createInputs()[0]!.Target!.Input!) as Record<string, unknown>;
    expect(input).toMatchObject({ source: 'openclaw.fanout', storage: { sse: 'aws:kms', sseKmsKeyId: 'alias/backups', storageClass: 'STANDARD_IA' } });
    expect(dynamodb.commandCalls(PutItemCommand)[0]!.args[0].input.Item!.cmd).toEqual({
      S: 'openclaw tenants backup --all --to s3://my-bucket/backups/{tenant}/{date}.tar.zst --sse aws:kms --sse-kms-key-id alias/backups --storage-class STANDARD_IA',
    });
    const glacier = await addAll('--storage-class', 'GLACIER', '--replace');
    expect(glacier).toMatchObject({ status: 2, stderr: expect.stringMatching(/^openclaw: --storage-class GLACIER is refused/) });
    const tenant = await add('--storage-class', 'STANDARD_IA');
    expect(tenant).toMatchObject({ status: 2, stderr: expect.stringMatching(/^openclaw: cron add <tenant> takes --sse, --sse-kms-key-id and --storage-class inside --cmd/) });
    expect(createInputs()).toHaveLength(1);
  });

  it('stores the recipients of --encrypt-to and --recipients-file in the schedule\'s input; cron list shows that it encrypts', async () => {
    const [alice, bob] = [generateIdentity().recipient.text, generateIdentity().recipient.text];
    const dir = tempDir('openclaw-cron-all-');
    try {
      const file = path.join(dir.path, 'escrow.txt');
      writeFileSync(file, `# escrow key\n${bob}\n`);
      const result = await addAll('--encrypt-to', alice, '--recipients-file', file, '--encrypt-to', alice);
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      const input = JSON.parse(createInputs()[0]!.Target!.Input!) as Record<string, unknown>;
      // Public keys only, each once, those of the file read now.
      expect(input).toMatchObject({ source: 'openclaw.fanout', to: 's3://my-bucket/backups/{tenant}/{date}.tar.zst', encryptTo: [alice, bob] });
      const cmd = `openclaw tenants backup --all --to s3://my-bucket/backups/{tenant}/{date}.tar.zst --encrypt-to ${alice} --encrypt-to ${alice} --recipients-file ${file}`;
      const item = dynamodb.commandCalls(PutItemCommand)[0]!.args[0].input.Item!;
      expect(item.cmd).toEqual({ S: cmd });
      expect(result.stdout).toContain(`\n  runs      ${cmd}\n  encrypts  with age to 2 recipients: ${alice}, ${bob}\n`);

      scheduler.on(ListSchedulesCommand).resolves({ Schedules: [summary('_all.nightly')] });
      dynamodb.on(QueryCommand).resolves({ Items: [item] });
      const listed = await run(['--stack', 'openclaw-backup', 'cron', 'list', '--all']);
      expect(listed.stdout.split('\n')[1]).toMatch(new RegExp(`^\\*\\s+nightly\\s+0 3 \\* \\* \\*\\s+UTC\\s+ENABLED\\s+openclaw tenants backup --all --to \\S+ --encrypt-to ${alice} `));
    } finally {
      dir.cleanup();
    }
  });

  it('ends at SIGTERM while a --recipients-file FIFO waits for its writer (opening it blocked for good, SIGTERM too)', async () => {
    const dir = tempDir('openclaw-cron-fifo-');
    try {
      const fifo = path.join(dir.path, 'recipients.fifo');
      execFileSync('mkfifo', [fifo]);
      const adding = addAll('--recipients-file', fifo);
      await new Promise((resolve) => setImmediate(resolve));
      process.emit('SIGTERM', 'SIGTERM');
      expect(await adding).toMatchObject({ status: 143, stderr: expect.stringMatching(/interrupted by SIGTERM/) });
      expect(scheduler.commandCalls(CreateScheduleCommand)).toHaveLength(0);
    } finally {
      dir.cleanup();
    }
  });

  it('refuses a bad recipient before any call, and recipients given to a tenant\'s cron add outside --cmd', async () => {
    const bad = await addAll('--encrypt-to', 'age1notakey');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^openclaw: recipient "age1notakey" is malformed: .*\n$/);
    const secret = await addAll('--encrypt-to', 'AGE-SECRET-KEY-1SECRET');
    expect(secret.status).toBe(2);
    expect(secret.stderr).not.toContain('AGE-SECRET-KEY-1SECRET');
    const missing = await addAll('--recipients-file', '/no/such/recipients.txt');
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/recipients file "\/no\/such\/recipients.txt" does not exist\n$/);
    const tenant = await add('--encrypt-to', generateIdentity().recipient.text);
    expect(tenant.status).toBe(2);
    expect(tenant.stderr).toMatch(/takes --encrypt-to and --recipients-file inside --cmd/);
    expect(scheduler.commandCalls(CreateScheduleCommand)).toHaveLength(0);
    expect(dynamodb.commandCalls(PutItemCommand)).toHaveLength(0);
  });

  it('refuses a template every tenant would share, a tenant name, --cmd, and a gateway without a fan-out', async () => {
    const shared = await run(['--stack', 'openclaw-backup', 'cron', 'add', '--all', '--schedule', '0 3 * * *', '--name', 'nightly', '--to', 's3://my-bucket/backups/{date}.tar.zst']);
    expect(shared.status).toBe(2);
    expect(shared.stderr).toMatch(/is the same key for every tenant: put \{tenant\} in it/);
    const named = await run(['--stack', 'openclaw-backup', 'cron', 'add', 'acme', '--all', '--schedule', '0 3 * * *', '--name', 'n', '--to', 's3://my-bucket/{tenant}']);
    expect(named.stderr).toMatch(/--all covers every tenant: drop the tenant name "acme"/);
    const cmd = await run(['--stack', 'openclaw-backup', 'cron', 'add', '--all', '--schedule', '0 3 * * *', '--name', 'n', '--cmd', CMD]);
    expect(cmd.stderr).toMatch(/takes --to \(a template naming \{tenant\}\), not --cmd/);
    expect(scheduler.commandCalls(CreateScheduleCommand)).toHaveLength(0);

    lambda.on(GetFunctionCommand, { FunctionName: 'openclaw-backup-fanout' }).rejects(notFound('Function'));
    const old = await addAll();
    expect(old.status).toBe(2);
    expect(old.stderr).toMatch(/has no fan-out function openclaw-backup-fanout: deploy this version of the stack/);
    expect(scheduler.commandCalls(CreateScheduleCommand)).toHaveLength(0);
  });
});

const summary = (name: string, state: 'ENABLED' | 'DISABLED' = 'ENABLED') => ({ Name: name, GroupName: 'openclaw-backup', State: state, Arn: `arn:aws:scheduler:eu-west-1:${ACCOUNT}:schedule/openclaw-backup/${name}` });
const entry = (name: string, tenant: string, cronName: string, cmd: string, extra: Record<string, unknown> = {}) => ({
  kind: { S: 'cron' },
  name: { S: name },
  tenant: { S: tenant },
  cronName: { S: cronName },
  schedule: { S: '0 3 * * *' },
  expression: { S: 'cron(0 3 * * ? *)' },
  timeZone: { S: 'UTC' },
  windowMinutes: { N: '0' },
  cmd: { S: cmd },
  createdAt: { S: '2026-06-01T00:00:00.000Z' },
  ...extra,
});

describe('cron list', () => {
  it('lists one tenant\'s schedules by an exact prefix, from ListSchedules and the catalog, and its rules of the previous version', async () => {
    scheduler.on(ListSchedulesCommand).resolvesOnce({ Schedules: [summary('acme.nightly-backup')], NextToken: 'page-2' }).resolvesOnce({ Schedules: [summary('acme.weekly', 'DISABLED')] });
    dynamodb.on(QueryCommand).resolves({
      Items: [entry('acme.nightly-backup', 'acme', 'nightly-backup', CMD, { timeZone: { S: 'Europe/Berlin' }, windowMinutes: { N: '30' } })],
    });
    events.on(ListRulesCommand).resolves({
      Rules: [
        { Name: 'openclaw-backup-acme-old', Arn: `${RULE_ARN}-old`, State: 'ENABLED', ScheduleExpression: 'cron(0 4 * * ? *)', Description: JSON.stringify({ schedule: '0 4 * * *', cmd: CMD }) },
        // Tenant "acme-2"'s rule shares the prefix; its command says whose it is.
        { Name: 'openclaw-backup-acme-2-hourly', Arn: `${RULE_ARN}-2`, State: 'ENABLED', ScheduleExpression: 'cron(0 * * * ? *)', Description: JSON.stringify({ schedule: '0 * * * *', cmd: 'openclaw tenants backup acme-2 --to s3://my-bucket/x' }) },
        { Name: 'openclaw-backup-acme-handmade', Arn: `${RULE_ARN}-3`, State: 'ENABLED', ScheduleExpression: 'rate(1 day)' },
      ],
    });

    const result = await run(['--stack', 'openclaw-backup', '--json', 'cron', 'list', 'acme']);
    expect(result.status).toBe(0);
    expect(scheduler.commandCalls(ListSchedulesCommand).map((call) => call.args[0].input)).toEqual([
      { GroupName: 'openclaw-backup', NamePrefix: 'acme.' },
      { GroupName: 'openclaw-backup', NamePrefix: 'acme.', NextToken: 'page-2' },
    ]);
    expect(dynamodb.commandCalls(QueryCommand)[0]!.args[0].input).toMatchObject({ TableName: 'openclaw-backup-status', ExpressionAttributeValues: { ':kind': { S: 'cron' }, ':prefix': { S: 'acme.' } } });
    expect(scheduler.commandCalls(GetScheduleCommand)).toHaveLength(0);
    expect(events.commandCalls(ListTagsForResourceCommand)).toHaveLength(0);
    expect(JSON.parse(result.stdout)).toEqual({
      crons: [
        { tenant: 'acme', name: 'nightly-backup', kind: 'schedule', id: 'openclaw-backup/acme.nightly-backup', schedule: '0 3 * * *', expression: 'cron(0 3 * * ? *)', timeZone: 'Europe/Berlin', windowMinutes: 30, state: 'ENABLED', cmd: CMD },
        { tenant: 'acme', name: 'old', kind: 'rule', id: 'openclaw-backup-acme-old', schedule: '0 4 * * *', expression: 'cron(0 4 * * ? *)', timeZone: 'UTC', windowMinutes: 0, state: 'ENABLED', cmd: CMD },
        // In the group but not in the catalog (made by hand, or its entry lost): listed, undescribed.
        { tenant: 'acme', name: 'weekly', kind: 'schedule', id: 'openclaw-backup/acme.weekly', schedule: null, expression: null, timeZone: null, windowMinutes: null, state: 'DISABLED', cmd: null },
      ],
      // Said before the result, so in its notices too (it came after: on stderr only).
      notices: [MIGRATE_NOTICE],
    });
    expect(result.stderr).toBe(`openclaw: ${MIGRATE_NOTICE}\n`);
  });

  it('prints a table for all tenants', async () => {
    scheduler.on(ListSchedulesCommand).resolves({ Schedules: [summary('acme.nightly-backup'), summary('_all.nightly'), summary('not-ours')] });
    dynamodb.on(QueryCommand).resolves({
      Items: [entry('acme.nightly-backup', 'acme', 'nightly-backup', CMD), entry('_all.nightly', '*', 'nightly', 'openclaw tenants backup --all --to s3://my-bucket/{tenant}/{date}.tar.zst', { windowMinutes: { N: '60' } })],
    });
    const result = await run(['--stack', 'openclaw-backup', 'cron', 'list']);
    expect(scheduler.commandCalls(ListSchedulesCommand)[0]!.args[0].input).toEqual({ GroupName: 'openclaw-backup' });
    expect(result.stdout.split('\n')).toEqual([
      'TENANT  NAME            SCHEDULE             TIME ZONE  STATE    COMMAND',
      '*       nightly         0 3 * * * within 1h  UTC        ENABLED  openclaw tenants backup --all --to s3://my-bucket/{tenant}/{date}.tar.zst',
      `acme    nightly-backup  0 3 * * *            UTC        ENABLED  ${CMD}`,
      '',
    ]);
  });

  it("lists crons by tenant and name in character order, whatever the caller's locale", async () => {
    // localeCompare sorted by the caller's locale: "aaron" after "zed" under LANG=da_DK.UTF-8, "daily" before "Nightly" in every one.
    const names = ['zed.weekly', 'aaron.daily', 'aaron.Nightly'];
    scheduler.on(ListSchedulesCommand).resolves({ Schedules: names.map((name) => summary(name)) });
    dynamodb.on(QueryCommand).resolves({ Items: names.map((name) => entry(name, name.split('.')[0]!, name.split('.')[1]!, CMD)) });
    const result = await run(['--stack', 'openclaw-backup', '--json', 'cron', 'list']);
    expect(result.status, result.stderr).toBe(0);
    expect((JSON.parse(result.stdout) as { crons: { tenant: string; name: string }[] }).crons.map(({ tenant, name }) => `${tenant}.${name}`)).toEqual(['aaron.Nightly', 'aaron.daily', 'zed.weekly']);
  });

  it('lists 10,000 schedules with 100 ListSchedules pages and a few catalog pages, and no call per schedule', async () => {
    const names = Array.from({ length: 10_000 }, (_, index) => `tenant-${String(index).padStart(5, '0')}.nightly`);
    const pages = Array.from({ length: 100 }, (_, page) => names.slice(page * 100, page * 100 + 100));
    pages.forEach((page, index) => scheduler.on(ListSchedulesCommand, index === 0 ? { GroupName: 'openclaw-backup' } : { NextToken: `p${index}` }).resolves({
      Schedules: page.map((name) => summary(name)),
      ...(index < 99 && { NextToken: `p${index + 1}` }),
    }));
    // DynamoDB answers at most 1 MB a page: 10,000 entries of ~250 bytes take three.
    const items = names.map((name) => entry(name, name.split('.')[0]!, 'nightly', `openclaw tenants backup ${name.split('.')[0]} --to s3://my-bucket/{tenant}`));
    dynamodb
      .on(QueryCommand)
      .resolvesOnce({ Items: items.slice(0, 4000), LastEvaluatedKey: { kind: { S: 'cron' }, name: { S: names[3999]! } } })
      .resolvesOnce({ Items: items.slice(4000, 8000), LastEvaluatedKey: { kind: { S: 'cron' }, name: { S: names[7999]! } } })
      .resolvesOnce({ Items: items.slice(8000) });
    const result = await run(['--stack', 'openclaw-backup', '--json', 'cron', 'list']);
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout).crons).toHaveLength(10_000);
    expect(scheduler.commandCalls(ListSchedulesCommand)).toHaveLength(100);
    expect(dynamodb.commandCalls(QueryCommand)).toHaveLength(3);
    expect(dynamodb.commandCalls(QueryCommand)[1]!.args[0].input.ExclusiveStartKey).toEqual({ kind: { S: 'cron' }, name: { S: names[3999]! } });
    expect(scheduler.commandCalls(GetScheduleCommand)).toHaveLength(0);
  });
});

describe('cron rm', () => {
  it('removes the schedule and its catalog entry', async () => {
    scheduler.on(DeleteScheduleCommand).resolves({});
    dynamodb.on(DeleteItemCommand).resolves({});
    const result = await run(['--stack', 'openclaw-backup', 'cron', 'rm', 'acme', 'nightly-backup']);
    expect(result).toEqual({ status: 0, stdout: 'Removed cron "nightly-backup" of tenant "acme" (schedule openclaw-backup/acme.nightly-backup)\n', stderr: '' });
    expect(scheduler.commandCalls(DeleteScheduleCommand).map((call) => call.args[0].input)).toEqual([{ Name: 'acme.nightly-backup', GroupName: 'openclaw-backup' }]);
    expect(dynamodb.commandCalls(DeleteItemCommand).map((call) => call.args[0].input)).toEqual([{ TableName: 'openclaw-backup-status', Key: { kind: { S: 'cron' }, name: { S: 'acme.nightly-backup' } } }]);

    const all = await run(['--stack', 'openclaw-backup', 'cron', 'rm', '--all', 'nightly']);
    expect(all.stdout).toBe('Removed cron "nightly" of every tenant (schedule openclaw-backup/_all.nightly)\n');
  });

  it('removes a rule of the previous version: targets, then the rule', async () => {
    scheduler.on(DeleteScheduleCommand).rejects(notFound('Schedule'));
    events.on(DescribeRuleCommand).resolves({ Name: 'openclaw-backup-acme-nightly-backup', Arn: RULE_ARN });
    events.on(ListTagsForResourceCommand).resolves({ Tags: [{ Key: 'openclaw:tenant', Value: 'acme' }, { Key: 'openclaw:cron-name', Value: 'nightly-backup' }] });
    events.on(ListTargetsByRuleCommand).resolves({ Targets: [{ Id: 'openclaw-backup', Arn: FUNCTION_ARN }] });
    events.on(RemoveTargetsCommand).resolves({ FailedEntryCount: 0 });
    events.on(DeleteRuleCommand).resolves({});
    const result = await run(['--stack', 'openclaw-backup', 'cron', 'rm', 'acme', 'nightly-backup']);
    expect(result).toEqual({ status: 0, stdout: 'Removed cron "nightly-backup" of tenant "acme" (EventBridge rule openclaw-backup-acme-nightly-backup)\n', stderr: '' });
    expect(events.commandCalls(RemoveTargetsCommand).map((call) => call.args[0].input)).toEqual([{ Rule: 'openclaw-backup-acme-nightly-backup', Ids: ['openclaw-backup'] }]);
    expect(events.commandCalls(DeleteRuleCommand).map((call) => call.args[0].input)).toEqual([{ Name: 'openclaw-backup-acme-nightly-backup' }]);
  });

  it('refuses an unknown cron, and never removes another tenant\'s rule of the same name', async () => {
    scheduler.on(DeleteScheduleCommand).rejects(notFound('Schedule'));
    const missing = await run(['--stack', 'openclaw-backup', 'cron', 'rm', 'acme', 'nightly-backup']);
    expect(missing.status).toBe(3);
    expect(missing.stderr).toBe('openclaw: tenant "acme" has no cron "nightly-backup" on openclaw-backup (see cron list acme)\n');

    events.on(DescribeRuleCommand).resolves({ Name: 'openclaw-backup-acme-nightly-backup', Arn: RULE_ARN });
    events.on(ListTagsForResourceCommand).resolves({ Tags: [{ Key: 'openclaw:tenant', Value: 'acme-nightly' }, { Key: 'openclaw:cron-name', Value: 'backup' }] });
    const foreign = await run(['--stack', 'openclaw-backup', 'cron', 'rm', 'acme', 'nightly-backup']);
    expect(foreign.status).toBe(3);
    expect(events.commandCalls(DeleteRuleCommand)).toHaveLength(0);

    const usage = await run(['--stack', 'openclaw-backup', 'cron', 'rm', 'acme']);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/cron rm needs the tenant and the cron's name/);
    // With --all the one argument is the cron's name: a missing one is named so, not as a tenant.
    const noName = await run(['--stack', 'openclaw-backup', 'cron', 'rm', '--all']);
    expect(noName.status).toBe(2);
    expect(noName.stderr).toBe('openclaw: cron rm --all needs the cron\'s name: cron rm --all <name>\n');
    const nothing = await run(['--stack', 'openclaw-backup', 'cron', 'rm']);
    expect(nothing.status).toBe(2);
    expect(nothing.stderr).toBe('openclaw: cron rm needs the tenant and the cron\'s name: cron rm <tenant> <name> (or cron rm --all <name>)\n');
  });
});

describe('cron migrate', () => {
  const rules: Rule[] = [
    { Name: 'openclaw-backup-acme-nightly-backup', Arn: RULE_ARN, State: 'ENABLED', ScheduleExpression: 'cron(0 3 * * ? *)', Description: JSON.stringify({ schedule: '0 3 * * *', cmd: CMD }) },
    {
      Name: 'openclaw-backup-beta-hourly',
      Arn: `${RULE_ARN}-beta`,
      State: 'DISABLED',
      ScheduleExpression: 'cron(0 * * * ? *)',
      Description: JSON.stringify({ schedule: '0 * * * *', cmd: 'openclaw tenants backup beta --to s3://my-bucket/beta/$(date +%F-%H).tar.zst' }),
    },
    { Name: 'openclaw-backup-gamma-x', Arn: `${RULE_ARN}-gamma`, State: 'ENABLED', ScheduleExpression: 'cron(0 5 * * ? *)', Description: JSON.stringify({ schedule: '0 5 * * *', cmd: 'openclaw tenants backup gamma --to s3://my-bucket/g.tar.zst' }) },
  ];
  const tags = (tenant: string, name: string) => ({ Tags: [{ Key: 'openclaw:tenant', Value: tenant }, { Key: 'openclaw:cron-name', Value: name }] });

  beforeEach(() => {
    events.on(ListRulesCommand).resolves({ Rules: rules });
    events.on(ListTagsForResourceCommand, { ResourceARN: RULE_ARN }).resolves(tags('acme', 'nightly-backup'));
    events.on(ListTagsForResourceCommand, { ResourceARN: `${RULE_ARN}-beta` }).resolves(tags('beta', 'hourly'));
    // Its tags name someone else: left alone.
    events.on(ListTagsForResourceCommand, { ResourceARN: `${RULE_ARN}-gamma` }).resolves({ Tags: [] });
    events.on(ListTargetsByRuleCommand).resolves({ Targets: [{ Id: 'openclaw-backup', Arn: FUNCTION_ARN }] });
    events.on(RemoveTargetsCommand).resolves({ FailedEntryCount: 0 });
    events.on(DeleteRuleCommand).resolves({});
  });

  it('shows what would move with --dry-run and changes nothing', async () => {
    const result = await run(['--stack', 'openclaw-backup', 'cron', 'migrate', '--dry-run']);
    expect(result.status).toBe(0);
    expect(result.stdout.split('\n')).toEqual([
      'Would move 2 crons to EventBridge Scheduler (nothing changed):',
      '  TENANT  NAME            RULE                                 SCHEDULE',
      '  acme    nightly-backup  openclaw-backup-acme-nightly-backup  openclaw-backup/acme.nightly-backup',
      '  beta    hourly          openclaw-backup-beta-hourly          openclaw-backup/beta.hourly',
      'Left 1 rule as it is (still running; move by hand with cron add, then cron rm):',
      '  openclaw-backup-gamma-x: its tags do not name this tenant and cron (made or changed by hand?)',
      '',
    ]);
    expect(scheduler.commandCalls(CreateScheduleCommand)).toHaveLength(0);
    expect(events.commandCalls(DeleteRuleCommand)).toHaveLength(0);
  });

  it('creates each schedule (same schedule, command and state) before it removes the rule', async () => {
    const result = await run(['--stack', 'openclaw-backup', '--json', 'cron', 'migrate']);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(createInputs().map((input) => [input.Name, input.ScheduleExpression, input.ScheduleExpressionTimezone, input.State])).toEqual([
      ['acme.nightly-backup', 'cron(0 3 * * ? *)', 'UTC', 'ENABLED'],
      ['beta.hourly', 'cron(0 * * * ? *)', 'UTC', 'DISABLED'],
    ]);
    expect(events.commandCalls(DeleteRuleCommand).map((call) => call.args[0].input.Name)).toEqual(['openclaw-backup-acme-nightly-backup', 'openclaw-backup-beta-hourly']);
    // Order: each schedule exists before its rule is removed.
    const created = scheduler.commandCalls(CreateScheduleCommand)[0]!;
    const deleted = events.commandCalls(DeleteRuleCommand)[0]!;
    expect(created.calledBefore(deleted as never)).toBe(true);
    expect(JSON.parse(result.stdout).results.map((entry: { outcome: string }) => entry.outcome)).toEqual(['migrated', 'migrated', 'left']);
  });

  it('finishes a migration that stopped between its two steps', async () => {
    scheduler.on(CreateScheduleCommand).rejects(named('ConflictException', 'exists'));
    const result = await run(['--stack', 'openclaw-backup', '--json', 'cron', 'migrate']);
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout).results.map((entry: { outcome: string }) => entry.outcome)).toEqual(['already-migrated', 'already-migrated', 'left']);
    expect(events.commandCalls(DeleteRuleCommand)).toHaveLength(2);
  });
});
