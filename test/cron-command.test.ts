// shared/schedule/cron-command.ts: --cmd parsed as one openclaw command (no shell), rule names, the rule target's input transformer and description.

import { describe, expect, it } from 'vitest';

import {
  assertCronTenant,
  assertOpenclawCommandLine,
  cronDescription,
  cronRuleName,
  cronTargetInput,
  parseCronCommand,
  parseCronDescription,
  parseScheduledCommand,
  splitWords,
} from '../shared/schedule/cron-command.js';
import { BACKUP_FLAGS, GLOBAL_FLAGS, PRUNE_FLAGS, type FlagSpec } from '../shared/command-flags.js';

const context = { tenant: 'acme', stack: 'openclaw-backup' };
const parse = (line: string) => parseCronCommand(line, context);
const scheduled = (line: string) => parseScheduledCommand(line, context);

describe('parseCronCommand', () => {
  it('turns $(date +FORMAT) into a placeholder expanded when the rule fires', () => {
    expect(parse('openclaw tenants backup acme --to s3://my-bucket/acme/$(date +%F).tar.zst')).toEqual({
      command: { tenant: 'acme', to: 's3://my-bucket/acme/{date:%F}.tar.zst' },
      templated: true,
    });
  });

  it('follows shell quoting without running a shell', () => {
    const cases: Array<[string, string]> = [
      ['openclaw tenants backup acme --to "s3://bkt/acme/$(date +%Y-%m-%d)/x.tar.zst"', 's3://bkt/acme/{date:%Y-%m-%d}/x.tar.zst'],
      ["openclaw tenants backup acme --to 's3://bkt/acme/plain.tar.zst'", 's3://bkt/acme/plain.tar.zst'],
      ['openclaw tenants backup acme --to=s3://bkt/acme/$(date -u +%FT%H%M).tar.zst', 's3://bkt/acme/{date:%FT%H%M}.tar.zst'],
      ["openclaw tenants backup acme --to s3://bkt/acme/$(date --utc '+%G-W%V').tar.zst", 's3://bkt/acme/{date:%G-W%V}.tar.zst'],
      ['openclaw tenants backup acme --to s3://bkt/acme/$(date +\\%F).tar.zst', 's3://bkt/acme/{date:%F}.tar.zst'],
      ['openclaw tenants backup acme --to s3://bkt/acme/a\\ b.tar.zst', 's3://bkt/acme/a b.tar.zst'],
    ];
    for (const [line, to] of cases) expect(parse(line).command.to, line).toBe(to);
  });

  it('keeps --overwrite, --endpoint, and options in any order', () => {
    expect(parse('/usr/local/bin/openclaw --json tenants backup --overwrite --to s3://bkt/k.tar.zst --endpoint https://minio.internal:9000 acme')).toEqual({
      command: { tenant: 'acme', to: 's3://bkt/k.tar.zst', overwrite: true, storage: { endpoint: 'https://minio.internal:9000' } },
      templated: false,
    });
    expect(parse('openclaw --stack openclaw-backup tenants backup acme --to s3://bkt/k.tar.zst').command.tenant).toBe('acme');
  });

  it('takes --region with --endpoint, the region that store is signed for, as tenants backup sends it (before: refused, so a store with a region of its own could not be scheduled)', () => {
    expect(parse('openclaw tenants backup acme --to s3://bkt/k.tar.zst --endpoint https://s3.us-west-004.backblazeb2.com --region us-west-004').command).toEqual({
      tenant: 'acme',
      to: 's3://bkt/k.tar.zst',
      storage: { endpoint: 'https://s3.us-west-004.backblazeb2.com', region: 'us-west-004' },
    });
    expect(scheduled('openclaw tenants prune acme --in s3://bkt/p/ --keep-last 1 --region us-west-004 --endpoint https://s3.us-west-004.backblazeb2.com').command).toMatchObject({ storage: { region: 'us-west-004' } });
    // Without an endpoint it would be the gateway's region, which a cron cannot change.
    expect(() => scheduled('openclaw tenants prune acme --in s3://bkt/p/ --keep-last 1 --region eu-west-1')).toThrow(/the scheduled prune runs in the gateway's region: drop --region/);
    expect(() => parse('openclaw tenants backup acme --to s3://bkt/k --endpoint https://minio.internal:9000 --region "eu west"')).toThrow(/^invalid --region "eu west" in --cmd$/);
  });

  it('takes --sqlite-raw-fallback into the scheduled backup, as the CLI\'s backup does', () => {
    expect(parse('openclaw tenants backup acme --sqlite-raw-fallback --to s3://bkt/k.tar.zst').command).toEqual({
      tenant: 'acme',
      to: 's3://bkt/k.tar.zst',
      sqliteRawFallback: true,
    });
    expect(parse('openclaw tenants backup acme --to s3://bkt/k.tar.zst').command).not.toHaveProperty('sqliteRawFallback');
    expect(() => parse('openclaw tenants backup acme --to s3://bkt/k --sqlite-raw-fallback=yes')).toThrow(/--sqlite-raw-fallback takes no value/);
  });

  it('knows every flag of the CLI\'s own `tenants backup`: each is taken, ignored or refused with its reason', () => {
    for (const spec of [...Object.values<FlagSpec>(GLOBAL_FLAGS), ...Object.values<FlagSpec>(BACKUP_FLAGS)]) {
      const value = spec.value === undefined ? '' : spec.flag === '--stack' ? ' openclaw-backup' : ' s3://bkt/other';
      let message = '';
      try {
        parse(`openclaw tenants backup acme --to s3://bkt/k ${spec.flag}${value}`);
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message, spec.flag).not.toMatch(/unknown option/);
    }
  });

  it.each([
    ['', /--cmd is empty/],
    ['aws s3 cp x y', /must be an openclaw command/],
    ['tenants backup acme --to s3://bkt/k.tar.zst', /^--cmd must be an openclaw command \(it is not run by a shell\), got "tenants": write the whole command, starting with openclaw \("openclaw tenants …"\)$/],
    ['openclaw tenants backup acme --to s3://b/k; rm -rf /', /not run by a shell: ";"/],
    ['openclaw tenants backup acme --to s3://b/k | tee', /not run by a shell: "\|"/],
    ['openclaw tenants backup acme --to s3://b/k && echo', /not run by a shell: "&"/],
    ['openclaw tenants backup acme --to s3://b/k > /tmp/log', /"<" and ">"/],
    ['openclaw tenants backup acme --to s3://b/$HOME.tar', /variables/],
    ['openclaw tenants backup acme --to "s3://b/${USER}.tar"', /variables/],
    ['openclaw tenants backup acme --to s3://b/`date`.tar', /backquotes/],
    ['openclaw tenants backup acme --to s3://b/$(whoami).tar', /"\$\(whoami\)"/],
    ['openclaw tenants backup acme --to s3://b/$(date +%F; id).tar', /not run by a shell/],
    ['openclaw tenants backup acme --to s3://b/$(date +%Q).tar', /"%Q" is not supported/],
    ['openclaw tenants backup acme --to s3://b/$(date).tar', /"\$\(date\)"/],
    ['openclaw tenants backup acme --to "s3://b/k', /unterminated "/],
    ['openclaw tenants restore --from s3://b/k', /only "openclaw tenants backup/],
    ['openclaw tenants list', /only "openclaw tenants backup/],
    ['openclaw tenants backup beta --to s3://bkt/k.tar.zst', /backs up tenant "beta", but the cron belongs to tenant "acme"/],
    ['openclaw tenants backup ../x --to s3://bkt/k.tar.zst', /invalid tenant name/],
    ['openclaw tenants backup $(date +%F) --to s3://bkt/k.tar.zst', /only be used in --to, not in the tenant name/],
    ['openclaw tenants backup acme', /has no --to/],
    ['openclaw tenants backup acme --to s3://bkt/k --stall-timeout 10m', /^--stall-timeout sets the stall time of this machine's S3 transfers: the scheduled backup runs in the backup function/],
    ['openclaw tenants backup acme --to /var/backups/acme.tar.zst', /stores its archive in S3/],
    ['openclaw tenants backup acme --to s3://bkt/$(date +%F)/x --to s3://bkt/y', /^--to is given twice in --cmd \(first "s3:\/\/bkt\/\{date:%F\}\/x"\): give it once$/],
    ['openclaw tenants backup acme --to s3://bkt/k --endpoint https://a.example --endpoint https://b.example', /^--endpoint is given twice in --cmd \(first "https:\/\/a\.example"\): give it once$/],
    ['openclaw tenants backup acme --to s3://bkt/k --endpoint=https://a.example --endpoint https://a.example', /^--endpoint is given twice in --cmd/],
    ['openclaw --stack openclaw-backup --stack openclaw-backup tenants backup acme --to s3://bkt/k', /^--stack is given twice in --cmd/],
    ['openclaw tenants backup acme --to s3://b-$(date +%Y)/x.tar.zst', /bucket in --to must be literal/],
    ['openclaw tenants backup acme --to s3://bkt/{x}.tar.zst', /\{x\} is no placeholder/],
    ['openclaw tenants backup acme --to s3://B1/x.tar.zst', /invalid S3 bucket name/],
    ['openclaw tenants backup acme --to s3://bkt/$(date +%F)/../x', /"\.\." segment/],
    ['openclaw tenants backup acme --to s3://bkt/k --pipe "age -r age1x"', /--pipe runs a shell command/],
    ['openclaw tenants backup acme --to s3://bkt/k --aws-profile prod', /execution role: drop --aws-profile/],
    ['openclaw tenants backup acme --to s3://bkt/$(date +%F).tar.zst --skip-existing', /--skip-existing goes with a local --all; a scheduled backup writes a new archive each run/],
    ['openclaw tenants backup acme --to s3://bkt/k --region eu-west-1', /drop --region/],
    ['openclaw tenants backup acme --to s3://bkt/k --access-key AKIA --secret-key x', /clear text/],
    ['openclaw --tenants-dir /srv tenants backup acme --to s3://bkt/k', /drop --tenants-dir/],
    ['openclaw --stack other tenants backup acme --to s3://bkt/k', /names --stack other, but the cron is added to openclaw-backup/],
    ['openclaw tenants backup acme --to s3://bkt/k --frobnicate', /unknown option "--frobnicate"/],
    ['openclaw tenants backup acme --to s3://bkt/k --overwrite=yes', /--overwrite takes no value/],
    ['openclaw tenants backup acme extra --to s3://bkt/k', /unexpected "extra"/],
    ['# openclaw tenants backup acme', /comments/],
  ])('refuses %j', (line, reason) => {
    expect(() => parse(line)).toThrow(reason);
    try {
      parse(line);
    } catch (error) {
      expect((error as { outcome?: string }).outcome).toBe('usage');
    }
  });
});

describe('parseScheduledCommand', () => {

  it('tells a backup from a prune, and parses the prune\'s location and rules', () => {
    expect(scheduled('openclaw tenants backup acme --to s3://bkt/acme/$(date +%F).tar.zst')).toEqual({
      kind: 'backup',
      command: { tenant: 'acme', to: 's3://bkt/acme/{date:%F}.tar.zst' },
      templated: true,
    });
    expect(scheduled('openclaw tenants prune acme --in s3://bkt/backups/acme/ --keep-daily 7 --keep-weekly=4 --endpoint https://minio.internal:9000')).toEqual({
      kind: 'prune',
      command: { tenant: 'acme', in: 's3://bkt/backups/acme/', keep: { daily: 7, weekly: 4 }, storage: { endpoint: 'https://minio.internal:9000' } },
      templated: false,
    });
    expect(scheduled('/usr/local/bin/openclaw --stack openclaw-backup --json tenants prune acme --in s3://bkt/ --keep-last 3').command).toEqual({ tenant: 'acme', in: 's3://bkt/', keep: { last: 3 } });
    expect(scheduled('openclaw tenants prune acme --in s3://bkt/ --keep-within 7d --keep-hourly 24').command).toEqual({ tenant: 'acme', in: 's3://bkt/', keep: { within: '7d', hourly: 24 } });
    expect(scheduled('openclaw tenants prune acme --in s3://bkt/ --keep-within=36h').command).toEqual({ tenant: 'acme', in: 's3://bkt/', keep: { within: '36h' } });
  });

  it('knows every flag of the CLI\'s own `tenants prune`: each is taken, ignored or refused with its reason', () => {
    for (const spec of [...Object.values<FlagSpec>(GLOBAL_FLAGS), ...Object.values<FlagSpec>(PRUNE_FLAGS)]) {
      const value = spec.value === undefined ? '' : spec.flag === '--stack' ? ' openclaw-backup' : spec.flag.startsWith('--keep') ? ' 2' : ' s3://bkt/other/';
      let message = '';
      try {
        scheduled(`openclaw tenants prune acme --in s3://bkt/p/ --keep-last 1 ${spec.flag}${value}`);
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message, spec.flag).not.toMatch(/unknown option/);
    }
  });

  it.each([
    ['openclaw tenants prune acme --in s3://bkt/p/', /keeps nothing/],
    ['openclaw tenants prune acme --in s3://bkt/p/ --keep-daily 0', /keeps nothing/],
    ['openclaw tenants prune acme --in s3://bkt/p/ --keep-daily seven', /must be a whole number/],
    ['openclaw tenants prune acme --in s3://bkt/p/ --keep-within 7', /--keep-within in --cmd must be a span such as 7d, 36h or 1y6m/],
    ['openclaw tenants prune acme --in s3://bkt/p/ --keep-hourly 0', /keeps nothing/],
    ['openclaw tenants prune acme --in /var/backups/acme/ --keep-daily 7', /works on S3: --cmd needs --in s3:\/\/bucket\/prefix\//],
    ['openclaw tenants prune acme --keep-daily 7', /needs --in s3/],
    ['openclaw tenants prune acme --in s3://bkt/p/ --keep-daily 7 --dry-run', /runs for real/],
    ['openclaw tenants prune beta --in s3://bkt/p/ --keep-daily 7', /prunes tenant "beta", but the cron belongs to tenant "acme"/],
    ['openclaw tenants prune acme --in s3://bkt/$(date +%F)/ --keep-daily 7', /cannot be used in a scheduled prune/],
    ['openclaw tenants prune acme --in s3://bkt/p/ --keep-daily 7 --aws-profile x', /drop --aws-profile/],
    ['openclaw tenants prune acme --in s3://bkt/p/ --keep-daily 7 --secret-key x', /clear text/],
    ['openclaw tenants prune acme --in s3://bkt/p/ --keep-daily 7 --frob', /unknown option "--frob"/],
    ['openclaw tenants prune acme --in s3://Bkt/p/ --keep-daily 7', /invalid S3 bucket name/],
    ['openclaw tenants prune acme --in s3://bkt/p/ --keep-daily 7; rm -rf /', /not run by a shell/],
    ['openclaw tenants verify --from s3://bkt/k', /only "openclaw tenants backup/],
    ['openclaw tenants prune acme --in s3://bkt/p/ --keep-last 3 --keep-last 5', /^--keep-last is given twice in --cmd \(first "3"\): give it once$/],
    ['openclaw tenants prune acme --in s3://bkt/p/ --keep-last 3 --endpoint https://a.example --endpoint https://b.example', /^--endpoint is given twice in --cmd/],
    ['openclaw tenants prune acme --in s3://bkt/p/ --in s3://bkt/q/ --keep-last 3', /^--in is given twice in --cmd \(first "s3:\/\/bkt\/p\/"\): give it once$/],
  ])('refuses %j', (line, reason) => {
    expect(() => scheduled(line)).toThrow(reason);
  });
});

describe('rule names, input and description', () => {
  it('names rules <prefix>-<tenant>-<cron name> within EventBridge limits', () => {
    expect(cronRuleName('openclaw-backup', 'acme', 'nightly-backup')).toBe('openclaw-backup-acme-nightly-backup');
    expect(() => cronRuleName('openclaw-backup', 'acme', 'x'.repeat(50))).toThrow(/EventBridge allows 64: use a cron name of at most 43 characters/);
    expect(() => cronRuleName('openclaw-backup', 'acme', 'bad name')).toThrow(/invalid cron name/);
    expect(() => cronRuleName('openclaw-backup', 'acme', '-x')).toThrow(/invalid cron name/);
    expect(() => cronRuleName('openclaw-backup', 'ACME', 'x')).toThrow(/invalid tenant name/);
  });

  it('builds an input transformer that fills in the event time and id', () => {
    const input = cronTargetInput('acme', 'nightly', { tenant: 'acme', to: 's3://b/acme/{date:%F}.tar.zst' });
    expect(input).toEqual({
      InputPathsMap: { time: '$.time', eventId: '$.id' },
      InputTemplate:
        '{"source":"openclaw.cron","tenant":"acme","cronName":"nightly","time":<time>,"eventId":<eventId>,' +
        '"command":{"tenant":"acme","to":"s3://b/acme/{date:%F}.tar.zst"}}',
    });
    const rendered = input.InputTemplate.replace('<time>', JSON.stringify('2026-06-03T03:00:00Z')).replace('<eventId>', JSON.stringify('e-1'));
    expect(JSON.parse(rendered)).toMatchObject({ time: '2026-06-03T03:00:00Z', eventId: 'e-1', command: { tenant: 'acme' } });
  });

  it('keeps schedule and command in the description, within 512 characters', () => {
    const description = cronDescription('0 3 * * *', 'openclaw tenants backup acme --to s3://b/k');
    expect(parseCronDescription(description)).toEqual({ schedule: '0 3 * * *', cmd: 'openclaw tenants backup acme --to s3://b/k' });
    expect(parseCronDescription('made by hand')).toBeUndefined();
    expect(() => cronDescription('0 3 * * *', `openclaw tenants backup acme --to s3://b/${'k'.repeat(500)}`)).toThrow(/too long/);
  });

  it('checks local command lines for openclaw and shell syntax', () => {
    expect(() => assertOpenclawCommandLine('openclaw tenants backup acme --to /b/$(date +%F) --pipe "age -r x"')).not.toThrow();
    expect(() => assertOpenclawCommandLine('rm -rf /')).toThrow(/openclaw command/);
    expect(() => assertOpenclawCommandLine('openclaw x; rm -rf /')).toThrow(/not run by a shell/);
  });

  it('binds a backup or prune to the cron\'s tenant, in either mode, and leaves other commands alone', () => {
    expect(() => assertCronTenant(['tenants', 'backup'], 'other', 'acme')).toThrow(
      '--cmd backs up tenant "other", but the cron belongs to tenant "acme": they must be the same',
    );
    expect(() => assertCronTenant(['tenants', 'prune'], 'other', 'acme')).toThrow('--cmd prunes tenant "other"');
    expect(() => assertCronTenant(['tenants', 'backup'], 'acme', 'acme')).not.toThrow();
    expect(() => assertCronTenant(['tenants', 'backup'], undefined, 'acme')).not.toThrow(); // --all
    expect(() => assertCronTenant(['tenants', 'verify'], undefined, 'acme')).not.toThrow();
  });

  it('splits words like a shell', () => {
    expect(splitWords(`a 'b c' "d\\"e" f\\ g ""`)).toEqual([[{ text: 'a' }], [{ text: 'b c' }], [{ text: 'd"e' }], [{ text: 'f g' }], [{ text: '' }]]);
  });
});
