// `openclaw cron add|list|rm` in-process against aws-sdk-client-mock: the exact GetFunction,
// DescribeRule, PutRule, PutTargets, ListRules, ListTagsForResource, ListTargetsByRule,
// RemoveTargets and DeleteRule inputs, the rollback when the target cannot be set, the
// collision check. Local mode (the user's crontab) is cron-local.test.ts's.

import {
  DeleteRuleCommand,
  DescribeRuleCommand,
  EventBridgeClient,
  ListRulesCommand,
  ListTagsForResourceCommand,
  ListTargetsByRuleCommand,
  PutRuleCommand,
  PutTargetsCommand,
  RemoveTargetsCommand,
} from '@aws-sdk/client-eventbridge';
import { GetFunctionCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { runMain } from './helpers/run-main.js';

const events = mockClient(EventBridgeClient);
const lambda = mockClient(LambdaClient);
const FUNCTION_ARN = 'arn:aws:lambda:eu-west-1:123456789012:function:openclaw-backup-backup';
const RULE_ARN = 'arn:aws:events:eu-west-1:123456789012:rule/openclaw-backup-acme-nightly-backup';
const CMD = 'openclaw tenants backup acme --to s3://my-bucket/acme/$(date +%F).tar.zst';

const run = runMain;

const notFound = (what: string) => Object.assign(new Error(`${what} does not exist.`), { name: 'ResourceNotFoundException' });

beforeEach(() => {
  events.reset();
  lambda.reset();
  vi.stubEnv('OPENCLAW_STACK', '');
  vi.stubEnv('AWS_REGION', 'eu-west-1');
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIAIOSFODNN7EXAMPLE');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'not-used-by-mocks');
  lambda.on(GetFunctionCommand).resolves({ Configuration: { FunctionArn: FUNCTION_ARN, Environment: { Variables: { OPENCLAW_BACKUP_BUCKET: 'my-bucket' } } } });
  events.on(DescribeRuleCommand).rejects(notFound('Rule openclaw-backup-acme-nightly-backup'));
  events.on(PutRuleCommand).resolves({ RuleArn: RULE_ARN });
  events.on(PutTargetsCommand).resolves({ FailedEntryCount: 0, FailedEntries: [] });
});
afterEach(() => vi.unstubAllEnvs());
afterAll(() => {
  events.restore();
  lambda.restore();
});

const add = (...extra: string[]) =>
  run(['--stack', 'openclaw-backup', 'cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'nightly-backup', '--cmd', CMD, ...extra]);

describe('cron add', () => {
  it('creates a tagged rule targeting the backup function, exactly', async () => {
    const result = await add();
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);

    expect(lambda.commandCalls(GetFunctionCommand).map((call) => call.args[0].input)).toEqual([{ FunctionName: 'openclaw-backup-backup' }]);
    expect(events.commandCalls(DescribeRuleCommand).map((call) => call.args[0].input)).toEqual([{ Name: 'openclaw-backup-acme-nightly-backup' }]);
    expect(events.commandCalls(PutRuleCommand).map((call) => call.args[0].input)).toEqual([
      {
        Name: 'openclaw-backup-acme-nightly-backup',
        ScheduleExpression: 'cron(0 3 * * ? *)',
        State: 'ENABLED',
        Description: JSON.stringify({ schedule: '0 3 * * *', cmd: CMD }),
        Tags: [
          { Key: 'openclaw:tenant', Value: 'acme' },
          { Key: 'openclaw:cron-name', Value: 'nightly-backup' },
        ],
      },
    ]);
    expect(events.commandCalls(PutTargetsCommand).map((call) => call.args[0].input)).toEqual([
      {
        Rule: 'openclaw-backup-acme-nightly-backup',
        Targets: [
          {
            Id: 'openclaw-backup',
            Arn: FUNCTION_ARN,
            InputTransformer: {
              InputPathsMap: { time: '$.time', eventId: '$.id' },
              InputTemplate:
                '{"source":"openclaw.cron","tenant":"acme","cronName":"nightly-backup","time":<time>,"eventId":<eventId>,' +
                '"command":{"tenant":"acme","to":"s3://my-bucket/acme/{date:%F}.tar.zst"}}',
            },
          },
        ],
      },
    ]);
    // The rule was created on the default bus (scheduled rules live there): no EventBusName.
    expect(events.commandCalls(PutRuleCommand)[0]!.args[0].input).not.toHaveProperty('EventBusName');

    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe('Added cron "nightly-backup" for tenant "acme": EventBridge rule openclaw-backup-acme-nightly-backup → openclaw-backup-backup');
    expect(lines[1]).toBe('  schedule  0 3 * * *  =  cron(0 3 * * ? *), in UTC (EventBridge schedules always run in UTC)');
    expect(lines[2]).toMatch(/^ {2}next {6}\d{4}-\d\d-\d\d 03:00 UTC, \d{4}-\d\d-\d\d 03:00 UTC, \d{4}-\d\d-\d\d 03:00 UTC$/);
    expect(lines[4]).toMatch(/^ {2}archive {3}s3:\/\/my-bucket\/acme\/\{date:%F\}\.tar\.zst: dates filled in UTC when the rule fires \(first: s3:\/\/my-bucket\/acme\/\d{4}-\d\d-\d\d\.tar\.zst\)$/);
  });

  it('answers in JSON with --json', async () => {
    const result = await add();
    expect(result.status).toBe(0);
    const json = await run(['--stack', 'openclaw-backup', '--json', 'cron', 'add', 'acme', '--schedule', '*/30 9-17 * * mon-fri', '--name', 'workday', '--cmd', CMD]);
    expect(JSON.parse(json.stdout)).toEqual({
      operation: 'cron-add',
      tenant: 'acme',
      name: 'workday',
      rule: 'openclaw-backup-acme-workday',
      ruleArn: RULE_ARN,
      schedule: '*/30 9-17 * * mon-fri',
      expression: 'cron(0,30 9-17 ? * MON-FRI *)',
      timezone: 'UTC',
      cmd: CMD,
      command: { tenant: 'acme', to: 's3://my-bucket/acme/{date:%F}.tar.zst' },
      nextRuns: expect.arrayContaining([expect.stringMatching(/T(09|1\d):(00|30):00\.000Z$/)]),
      replaced: false,
    });
  });

  it('refuses, before creating anything, what cannot be scheduled', async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [['--schedule', '0 3 1 * 1'], 2, /EventBridge cannot combine the two/],
      [['--schedule', '0 0 3 * * *'], 2, /EventBridge has no seconds field/],
      [['--cmd', 'openclaw tenants backup beta --to s3://my-bucket/b.tar.zst'], 2, /the cron belongs to tenant "acme"/],
      [['--cmd', 'openclaw tenants backup acme --to s3://my-bucket/b.tar.zst; reboot'], 2, /not run by a shell/],
      [['--name', 'bad name'], 2, /invalid cron name/],
      [['--cmd', 'openclaw tenants backup acme --to s3://other-bucket/b.tar.zst'], 3, /backs up to s3:\/\/my-bucket\/ only, not to bucket "other-bucket"/],
    ];
    for (const [override, status, message] of cases) {
      const flags = new Map<string, string>([['--schedule', '0 3 * * *'], ['--name', 'nightly-backup'], ['--cmd', CMD]]);
      flags.set(override[0]!, override[1]!);
      const result = await run(['--stack', 'openclaw-backup', 'cron', 'add', 'acme', ...[...flags].flat()]);
      expect(result.status, message.source).toBe(status);
      expect(result.stderr).toMatch(message);
    }
    expect(events.commandCalls(PutRuleCommand)).toHaveLength(0);
  });

  it('checks the destination against the backup function\'s own bucket and key prefix', async () => {
    lambda.on(GetFunctionCommand).resolves({
      Configuration: { FunctionArn: FUNCTION_ARN, Environment: { Variables: { OPENCLAW_BACKUP_BUCKET: 'my-bucket', OPENCLAW_BACKUP_PREFIX: 'backups/' } } },
    });
    const refused = await add();
    expect(refused.status).toBe(3);
    expect(refused.stderr).toMatch(/keeps its archives under s3:\/\/my-bucket\/backups\/: --to must be s3:\/\/my-bucket\/backups\/…/);
    const ok = await run(['--stack', 'openclaw-backup', 'cron', 'add', 'acme', '--schedule', '0 3 * * *', '--name', 'nightly-backup', '--cmd', 'openclaw tenants backup acme --to s3://my-bucket/backups/acme/$(date +%F).tar.zst']);
    expect(ok.status).toBe(0);
  });

  it('takes the rule back when its target cannot be set', async () => {
    events.on(PutTargetsCommand).resolves({ FailedEntryCount: 1, FailedEntries: [{ TargetId: 'openclaw-backup', ErrorCode: 'ValidationException', ErrorMessage: 'bad target' }] });
    events.on(DeleteRuleCommand).resolves({});
    const result = await add();
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/EventBridge refused the rule's target: ValidationException bad target/);
    expect(events.commandCalls(DeleteRuleCommand).map((call) => call.args[0].input)).toEqual([{ Name: 'openclaw-backup-acme-nightly-backup' }]);
  });

  it('replaces only with --replace, and never another tenant\'s rule', async () => {
    events.on(DescribeRuleCommand).resolves({ Name: 'openclaw-backup-acme-nightly-backup', Arn: RULE_ARN, State: 'ENABLED' });
    events.on(ListTagsForResourceCommand).resolves({ Tags: [{ Key: 'openclaw:tenant', Value: 'acme' }, { Key: 'openclaw:cron-name', Value: 'nightly-backup' }] });
    const refused = await add();
    expect(refused.status).toBe(3);
    expect(refused.stderr).toMatch(/already has a cron "nightly-backup" .*--replace/);
    expect(events.commandCalls(PutRuleCommand)).toHaveLength(0);

    const replaced = await add('--replace');
    expect(replaced.status).toBe(0);
    expect(replaced.stdout).toMatch(/^Replaced cron "nightly-backup"/);
    expect(events.commandCalls(ListTagsForResourceCommand).map((call) => call.args[0].input)).toEqual([{ ResourceARN: RULE_ARN }, { ResourceARN: RULE_ARN }]);

    // Tenant "acme-nightly" with cron "backup" would get the same rule name.
    events.on(ListTagsForResourceCommand).resolves({ Tags: [{ Key: 'openclaw:tenant', Value: 'acme-nightly' }, { Key: 'openclaw:cron-name', Value: 'backup' }] });
    const taken = await add('--replace');
    expect(taken.status).toBe(3);
    expect(taken.stderr).toMatch(/already used by tenant "acme-nightly"'s cron "backup": choose another cron name/);
  });

});

describe('cron list', () => {
  it('lists the rules made by cron add, by tag, with their schedule and command', async () => {
    events
      .on(ListRulesCommand)
      .resolvesOnce({
        Rules: [
          { Name: 'openclaw-backup-acme-nightly-backup', Arn: RULE_ARN, State: 'ENABLED', ScheduleExpression: 'cron(0 3 * * ? *)', Description: JSON.stringify({ schedule: '0 3 * * *', cmd: CMD }) },
          { Name: 'openclaw-backup-acme-2-hourly', Arn: `${RULE_ARN}-2`, State: 'DISABLED', ScheduleExpression: 'cron(0 * * * ? *)', Description: JSON.stringify({ schedule: '0 * * * *', cmd: 'openclaw tenants backup acme-2 --to s3://my-bucket/x' }) },
        ],
        NextToken: 'page-2',
      })
      .resolvesOnce({ Rules: [{ Name: 'openclaw-backup-acme-handmade', Arn: `${RULE_ARN}-3`, State: 'ENABLED', ScheduleExpression: 'rate(1 day)' }] });
    events.on(ListTagsForResourceCommand, { ResourceARN: RULE_ARN }).resolves({ Tags: [{ Key: 'openclaw:tenant', Value: 'acme' }, { Key: 'openclaw:cron-name', Value: 'nightly-backup' }] });
    events.on(ListTagsForResourceCommand, { ResourceARN: `${RULE_ARN}-2` }).resolves({ Tags: [{ Key: 'openclaw:tenant', Value: 'acme-2' }, { Key: 'openclaw:cron-name', Value: 'hourly' }] });
    events.on(ListTagsForResourceCommand, { ResourceARN: `${RULE_ARN}-3` }).resolves({ Tags: [] });

    const result = await run(['--stack', 'openclaw-backup', '--json', 'cron', 'list', 'acme']);
    expect(result.status).toBe(0);
    expect(events.commandCalls(ListRulesCommand).map((call) => call.args[0].input)).toEqual([
      { NamePrefix: 'openclaw-backup-acme-' },
      { NamePrefix: 'openclaw-backup-acme-', NextToken: 'page-2' },
    ]);
    expect(JSON.parse(result.stdout)).toEqual({
      crons: [{ tenant: 'acme', name: 'nightly-backup', rule: 'openclaw-backup-acme-nightly-backup', schedule: '0 3 * * *', expression: 'cron(0 3 * * ? *)', state: 'ENABLED', cmd: CMD }],
    });
  });

  it('prints a table for all tenants', async () => {
    events.on(ListRulesCommand).resolves({
      Rules: [{ Name: 'openclaw-backup-acme-nightly-backup', Arn: RULE_ARN, State: 'ENABLED', ScheduleExpression: 'cron(0 3 * * ? *)', Description: JSON.stringify({ schedule: '0 3 * * *', cmd: CMD }) }],
    });
    events.on(ListTagsForResourceCommand).resolves({ Tags: [{ Key: 'openclaw:tenant', Value: 'acme' }, { Key: 'openclaw:cron-name', Value: 'nightly-backup' }] });
    const result = await run(['--stack', 'openclaw-backup', 'cron', 'list']);
    expect(events.commandCalls(ListRulesCommand)[0]!.args[0].input).toEqual({ NamePrefix: 'openclaw-backup-' });
    expect(result.stdout.split('\n')).toEqual([
      'TENANT  NAME            SCHEDULE (UTC)  STATE    COMMAND',
      `acme    nightly-backup  0 3 * * *       ENABLED  ${CMD}`,
      '',
    ]);
  });
});

describe('cron rm', () => {
  it('removes the targets, then the rule', async () => {
    events.on(DescribeRuleCommand).resolves({ Name: 'openclaw-backup-acme-nightly-backup', Arn: RULE_ARN });
    events.on(ListTagsForResourceCommand).resolves({ Tags: [{ Key: 'openclaw:tenant', Value: 'acme' }, { Key: 'openclaw:cron-name', Value: 'nightly-backup' }] });
    events.on(ListTargetsByRuleCommand).resolves({ Targets: [{ Id: 'openclaw-backup', Arn: FUNCTION_ARN }] });
    events.on(RemoveTargetsCommand).resolves({ FailedEntryCount: 0 });
    events.on(DeleteRuleCommand).resolves({});
    const result = await run(['--stack', 'openclaw-backup', 'cron', 'rm', 'acme', 'nightly-backup']);
    expect(result).toEqual({ status: 0, stdout: 'Removed cron "nightly-backup" of tenant "acme" (EventBridge rule openclaw-backup-acme-nightly-backup)\n', stderr: '' });
    expect(events.commandCalls(ListTargetsByRuleCommand).map((call) => call.args[0].input)).toEqual([{ Rule: 'openclaw-backup-acme-nightly-backup' }]);
    expect(events.commandCalls(RemoveTargetsCommand).map((call) => call.args[0].input)).toEqual([{ Rule: 'openclaw-backup-acme-nightly-backup', Ids: ['openclaw-backup'] }]);
    expect(events.commandCalls(DeleteRuleCommand).map((call) => call.args[0].input)).toEqual([{ Name: 'openclaw-backup-acme-nightly-backup' }]);
  });

  it('refuses an unknown cron or another tenant\'s rule', async () => {
    const missing = await run(['--stack', 'openclaw-backup', 'cron', 'rm', 'acme', 'nightly-backup']);
    expect(missing.status).toBe(3);
    expect(missing.stderr).toBe('openclaw: tenant "acme" has no cron "nightly-backup" on openclaw-backup (see cron list acme)\n');

    events.on(DescribeRuleCommand).resolves({ Name: 'openclaw-backup-acme-nightly-backup', Arn: RULE_ARN });
    events.on(ListTagsForResourceCommand).resolves({ Tags: [] });
    const foreign = await run(['--stack', 'openclaw-backup', 'cron', 'rm', 'acme', 'nightly-backup']);
    expect(foreign.status).toBe(3);
    expect(foreign.stderr).toMatch(/already used by something not made by openclaw cron/);
    expect(events.commandCalls(DeleteRuleCommand)).toHaveLength(0);
  });
});
