// `cron add` killed (kill -9) at random moments while its `crontab -` runs (slowed: it waits
// 1–4 s before installing, past the 2 s after which a dead command's lock is taken over), the next `cron add` run at once after each kill: every
// edit that said "Added" is in the crontab, the user's own jobs are kept byte for byte, and
// nothing is left beside the crontab lock. The real `crontab` (Debian's cron), as root inside a
// private mount namespace whose /var/spool/cron/crontabs is an empty tmpfs: the machine's
// crontabs are never seen or changed. Before, the next command installed its edit while the
// killed one's `crontab -` still ran, and that install then replaced it.

import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { cliPath, tempDir } from '../helpers/tree.js';

const canRun = process.geteuid?.() === 0 && existsSync('/usr/bin/crontab') && spawnSync('unshare', ['-m', 'true']).status === 0;
if (!canRun) console.log('crash suite: cron kills need root, unshare and /usr/bin/crontab; skipped');

describe('cron add killed while its crontab - runs', () => {
  const dir = tempDir('openclaw-cron-kill-');
  afterAll(() => dir.cleanup());

  it.skipIf(!canRun)('10 kills at random moments while crontab - runs: every edit said done is installed, the user\'s jobs kept, nothing left', () => {
    const base = path.join(dir.path, 'tenants');
    mkdirSync(path.join(base, 'acme'), { recursive: true });
    const home = path.join(dir.path, 'home');
    mkdirSync(home);
    const jobs = Array.from({ length: 300 }, (_, i) => `* * * * * /bin/true job${i}`).join('\n') + '\n';
    const theirs = path.join(dir.path, 'theirs.crontab');
    writeFileSync(theirs, jobs);
    const slowCrontab = path.join(dir.path, 'slow-crontab');
    const running = path.join(dir.path, 'running');
    writeFileSync(slowCrontab, `#!/bin/sh\n[ "$1" = - ] && touch '${running}' && sleep "$(awk 'BEGIN { srand(); printf "%.2f", 1 + rand() * 3 }')"\nexec crontab "$@"\n`);
    chmodSync(slowCrontab, 0o755);
    const quote = (word: string) => `'${word.replace(/'/g, "'\\''")}'`;
    const add = (name: string, hour: number) =>
      [process.execPath, cliPath, '--tenants-dir', base, 'cron', 'add', 'acme', '--schedule', `0 ${hour} * * *`, '--name', name, '--cmd', `openclaw tenants backup acme --to ${dir.path}/${name}-$(date +%F).tar.zst`].map(quote).join(' ');
    const rounds = 10;
    const script = [
      'mount -t tmpfs -o mode=1730 tmpfs /var/spool/cron/crontabs || exit 90',
      'chgrp crontab /var/spool/cron/crontabs',
      `crontab ${quote(theirs)}`,
      ...Array.from({ length: rounds }, (_, i) => [
        `rm -f ${quote(running)}`,
        `OPENCLAW_CRONTAB=${quote(slowCrontab)} ${add(`killed${i}`, i)} >/dev/null 2>&1 & added=$!`,
        `until [ -e ${quote(running)} ]; do sleep 0.02; done`,
        `sleep "$(awk 'BEGIN { srand(${i + 1}); printf "%.2f", rand() * 0.8 }')"`,
        'kill -9 $added 2>/dev/null; wait $added',
        `if ${add(`next${i}`, i)} >/dev/null 2>&1; then echo "said next${i}"; else echo "failed next${i}"; fi`,
      ]).flat(),
      // The last killed command's crontab - ends on its own.
      'sleep 4',
      'echo "=== crontab"',
      'crontab -l',
    ].join('\n');
    const run = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8', env: { ...process.env, HOME: home, OPENCLAW_CRONTAB: '' }, maxBuffer: 16 * 1024 * 1024 });
    expect(run.status, run.stderr).toBe(0);
    const [said, crontab] = run.stdout.split(/^=== crontab\n/m) as [string, string];
    const done = said.split('\n').filter((line) => line.startsWith('said ')).map((line) => line.slice('said '.length));
    expect(said.split('\n').filter((line) => line.startsWith('failed '))).toEqual([]);
    expect(done).toHaveLength(rounds);
    const ours = crontab.split('\n').filter((line) => line.includes('# openclaw:acme:')).map((line) => line.slice(line.lastIndexOf(':') + 1));
    for (const name of done) expect(ours, `${name} said done`).toContain(name);
    expect(crontab.split('\n').filter((line) => line !== '' && !line.includes('# openclaw:')).join('\n') + '\n').toBe(jobs);
    expect(readdirSync(path.join(home, '.openclaw'))).toEqual(['logs']);
  }, 120_000);
});
