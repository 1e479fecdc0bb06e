// Kills the real CLI (SIGKILL from the crash-point hook, shared/crash-points.ts) at every
// named step of backup, restore, restore --force, a refused restore, a lock takeover, and
// `tenants recover --keep`; kills the next command again while it recovers; re-creates the
// slot between the renames of --force, killed and live. After each, the next command (a
// different one each time: list, a backup of the tenant, a backup of another tenant) must
// leave exactly the old or the new tenant and nothing else (harness.ts, expectSettled).
// Run with `npm run test:crash`.

import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CRASH_POINTS } from '../../shared/crash-points.js';
import { describeRun, expectOk, exited, Fixtures, stopped, World } from './harness.js';

let fixtures: Fixtures;
beforeAll(() => {
  fixtures = new Fixtures().build();
}, 120_000);
afterAll(() => fixtures?.cleanup());

const covered = new Set<string>();
let kills = 0;
afterAll(() => {
  const unused = CRASH_POINTS.filter((point) => !covered.has(point));
  console.log(`crash suite (hook): ${kills} kills at ${covered.size} of ${CRASH_POINTS.length} named crash points${unused.length > 0 ? `; not reached: ${unused.join(', ')}` : ''}`);
});

function world(name: string): World {
  return new World(fixtures, name);
}

function killAt(w: World, point: string, args: string[]): void {
  w.killAt(point, args);
  covered.add(point.split('@')[0]!);
  kills++;
}

/** The commands that follow a crash, in turn: each must settle what the crash left. */
let turn = 0;
function nextCommand(w: World, target: string, targetExists: boolean): void {
  const which = turn++ % 3;
  if (which === 0) {
    const names = expectOk(w.cli(['tenants', 'list', '--names'])).stdout.split('\n').filter(Boolean);
    expect(names).toEqual([...new Set(['acme', 'beta', ...(targetExists ? [target] : [])])].sort());
  } else if (which === 1) {
    expectOk(w.cli(['tenants', 'backup', 'beta', '--to', path.join(w.out, `beta-${turn}.tar.zst`)]));
  } else {
    const run = w.cli(['tenants', 'backup', target, '--to', path.join(w.out, `${target}-${turn}.tar.zst`)]);
    expect(run.status, describeRun(run)).toBe(targetExists ? 0 : 3);
  }
}

const LOCK_POINTS = ['lock:temp-written', 'lock:linked', 'lock:acquired'];
const EXTRACT_POINTS = ['journal:extracting:temp-written', 'restore:journal-written', 'restore:staging-created', 'restore:extracting', 'restore:verified', 'journal:committing:temp-written'];

describe('restore --force killed at every step', () => {
  const points: [string, 'old' | 'new'][] = [
    ...[...LOCK_POINTS, ...EXTRACT_POINTS].map((point): [string, 'old'] => [point, 'old']),
    ...['commit:journal-written', 'commit:old-judged', 'commit:old-moved-aside', 'commit:new-moved-in', 'commit:old-moved-to-trash', 'commit:journal-removed', 'restore:committed'].map(
      (point): [string, 'new'] => [point, 'new'],
    ),
  ];
  for (const [point, holds] of points) {
    it(`at ${point}: the next command leaves the ${holds} tenant`, () => {
      const w = world(`force-${point}`);
      killAt(w, point, ['tenants', 'restore', '--from', fixtures.newArchive, '--force']);
      nextCommand(w, 'acme', true);
      w.expectSettled({ holds, tenants: ['acme', 'beta'] });
    });
  }
});

describe('restore into a free slot killed at every step', () => {
  const points: [string, 'absent' | 'new'][] = [
    ...[...LOCK_POINTS, ...EXTRACT_POINTS].map((point): [string, 'absent'] => [point, 'absent']),
    ...['commit:journal-written', 'commit:new-moved-in', 'commit:journal-removed', 'restore:committed'].map((point): [string, 'new'] => [point, 'new']),
  ];
  for (const [point, holds] of points) {
    it(`at ${point}: the next command leaves ${holds === 'new' ? 'the new tenant' : 'no tenant'}`, () => {
      const w = world(`fresh-${point}`);
      killAt(w, point, ['tenants', 'restore', '--from', fixtures.newArchive, '--as', 'fresh']);
      nextCommand(w, 'fresh', holds === 'new');
      w.expectSettled({ target: 'fresh', holds, tenants: holds === 'new' ? ['acme', 'beta', 'fresh'] : ['acme', 'beta'] });
    });
  }
});

describe('a refused restore killed while it cleans up', () => {
  it('at restore:staging-discarded: the old tenant stays', () => {
    const w = world('refused-discard');
    killAt(w, 'restore:staging-discarded', ['tenants', 'restore', '--from', fixtures.damagedArchive, '--force']);
    nextCommand(w, 'acme', true);
    w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
  });
});

describe('a lock takeover killed half-way', () => {
  for (const point of ['lock:stale-judged', 'lock:stale-checked', 'lock:stale-moved-aside']) {
    it(`at ${point}: the dead lock is gone or still there, the killed taker's claim is ignored, the next command proceeds`, () => {
      const w = world(`takeover-${point}`);
      // A lock an older version left: it names the host only, and a pid that is not running.
      const dead = { token: 'x', pid: 2 ** 22 + 99, host: hostname(), operation: 'backup', startedAt: '2026-01-01T00:00:00Z' };
      writeFileSync(path.join(w.base, '.openclaw-lock-acme'), JSON.stringify(dead));
      killAt(w, point, ['tenants', 'restore', '--from', fixtures.newArchive, '--force']);
      // Moved to the one aside name (hard-linked there, then unlinked from its own).
      expect(readdirSync(w.base).some((name) => name === '.openclaw-lock-acme.aside')).toBe(point === 'lock:stale-moved-aside');
      expect(readdirSync(w.base).some((name) => name.endsWith('.taking'))).toBe(point !== 'lock:stale-judged');
      nextCommand(w, 'acme', true);
      w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
    });
  }
});

describe('backup killed at every step', () => {
  const points = [...LOCK_POINTS, 'backup:scratch-created', 'backup:temp-copy-written', 'archive:temp-opened', 'archive:temp-written', 'archive:linked', 'backup:stored'];
  for (const point of points) {
    it(`at ${point}: no archive or the whole one, and the next backup leaves no temporary file`, () => {
      const w = world(`backup-${point}`);
      const archive = path.join(w.out, 'acme.tar.zst');
      killAt(w, point, ['tenants', 'backup', 'acme', '--to', archive]);
      const stored = readdirSync(w.out).includes('acme.tar.zst');
      expect(stored).toBe(point === 'archive:linked' || point === 'backup:stored');
      if (stored) expectOk(w.cli(['tenants', 'restore', '--from', archive, '--as', 'check'])); // complete and verified
      expectOk(w.cli(['tenants', 'backup', turn++ % 2 === 0 ? 'acme' : 'beta', '--to', path.join(w.out, 'next.tar.zst')]));
      w.expectSettled({ holds: 'old', tenants: stored ? ['acme', 'beta', 'check'] : ['acme', 'beta'] });
    });
  }

  it('at archive:renamed (--overwrite): the new archive replaced the old one whole', () => {
    const w = world('backup-overwrite');
    const archive = path.join(w.out, 'acme.tar.zst');
    writeFileSync(archive, 'an older archive');
    killAt(w, 'archive:renamed', ['tenants', 'backup', 'acme', '--to', archive, '--overwrite']);
    expectOk(w.cli(['tenants', 'restore', '--from', archive, '--as', 'check']));
    expectOk(w.cli(['tenants', 'backup', 'beta', '--to', path.join(w.out, 'next.tar.zst')]));
    w.expectSettled({ holds: 'old', tenants: ['acme', 'beta', 'check'] });
  });
});

describe('verify killed while it writes its mark beside the archive', () => {
  for (const next of ['verify', 'backup'] as const) {
    it(`leaves a temporary mark that the next ${next} into the directory removes`, () => {
      const w = world(`verify-mark-${next}`);
      const archive = path.join(w.out, 'acme.tar.zst');
      expectOk(w.cli(['tenants', 'backup', 'acme', '--to', archive]));
      killAt(w, 'verify:mark-temp-written', ['tenants', 'verify', '--from', archive]);
      expect(readdirSync(w.out).filter((name) => name.startsWith('.acme.tar.zst.openclaw-verified.'))).toHaveLength(1);
      if (next === 'verify') {
        expectOk(w.cli(['tenants', 'verify', '--from', archive]));
        expect(readdirSync(w.out).sort()).toEqual(['.acme.tar.zst.openclaw-verified', 'acme.tar.zst']);
      } else {
        expectOk(w.cli(['tenants', 'backup', 'beta', '--to', path.join(w.out, 'beta.tar.zst')]));
        expect(readdirSync(w.out).sort()).toEqual(['acme.tar.zst', 'beta.tar.zst']);
      }
    });
  }
});

describe('an encrypted backup killed with a plaintext copy of a database in its scratch area', () => {
  it('kept the copy in the base dir, never in TMPDIR, and the next command removes it', () => {
    const w = world('backup-encrypted-copy');
    const key = path.join(w.root, 'key.txt');
    execFileSync('age-keygen', ['-o', key], { stdio: 'pipe' });
    const recipient = execFileSync('age-keygen', ['-y', key]).toString().trim();
    killAt(w, 'backup:temp-copy-written', ['tenants', 'backup', 'acme', '--to', path.join(w.out, 'acme.tar.zst.age'), '--encrypt-to', recipient]);
    expect(readdirSync(w.tmp)).toEqual([]);
    const scratch = readdirSync(w.base).filter((name) => name.startsWith('.openclaw-scratch-acme-'));
    expect(scratch).toHaveLength(1);
    const copies = readdirSync(path.join(w.base, scratch[0]!)).filter((name) => readFileSync(path.join(w.base, scratch[0]!, name)).subarray(0, 16).toString('latin1') === 'SQLite format 3\0');
    expect(copies).toHaveLength(1);

    expectOk(w.cli(['tenants', 'list']));
    expect(readdirSync(w.base).sort()).toEqual(['acme', 'beta']);
    // The next backup removes the killed one's temporary archive (as in every case above).
    expectOk(w.cli(['tenants', 'backup', 'beta', '--to', path.join(w.out, 'next.tar.zst')]));
    w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
  });
});

describe('recovery killed while it finishes a commit', () => {
  // The commit's steps a recovery takes after the restore was killed at `first`.
  const after: Record<string, string[]> = {
    'commit:journal-written': ['commit:old-moved-aside', 'commit:new-moved-in', 'commit:old-moved-to-trash', 'commit:journal-removed'],
    'commit:old-moved-aside': ['commit:new-moved-in', 'commit:old-moved-to-trash', 'commit:journal-removed', 'lock:stale-moved-aside', 'lock:acquired'],
    'commit:new-moved-in': ['commit:old-moved-to-trash', 'commit:journal-removed'],
    'commit:old-moved-to-trash': ['commit:journal-removed'],
  };
  for (const [first, seconds] of Object.entries(after)) {
    for (const second of seconds) {
      it(`restore killed at ${first}, the recovering command at ${second}: the third leaves the new tenant`, () => {
        const w = world(`recovery-${first}-${second}`);
        killAt(w, first, ['tenants', 'restore', '--from', fixtures.newArchive, '--force']);
        // A backup of another tenant recovers acme in its sweep.
        killAt(w, second, ['tenants', 'backup', 'beta', '--to', path.join(w.out, 'beta.tar.zst')]);
        nextCommand(w, 'acme', true);
        w.expectSettled({ holds: 'new', tenants: ['acme', 'beta'] });
      });
    }
  }
});

/** What a live gateway does when the slot is gone: re-create it and write a session file. */
function gatewayWrites(w: World): void {
  mkdirSync(path.join(w.base, 'acme', 'sessions'), { recursive: true });
  writeFileSync(path.join(w.base, 'acme', 'sessions', 'live.jsonl'), '{"role":"user","text":"written after the old tenant was moved aside"}\n');
}

function expectThreeTrees(w: World): void {
  const hidden = readdirSync(w.base).filter((name) => name.startsWith('.')).sort();
  expect(hidden).toEqual([expect.stringMatching(/^\.openclaw-aside-acme-/), '.openclaw-journal-acme.json', expect.stringMatching(/^\.openclaw-staging-acme-/)]);
  expect(w.tree(hidden[0]!)).toEqual(fixtures.old);
  expect(w.tree(hidden[2]!)).toEqual(fixtures.new);
  expect(Object.keys(w.tree('acme'))).toEqual(['', 'sessions', 'sessions/live.jsonl']);
}

describe('the slot re-created between the renames of --force', () => {
  it('after a kill: every command refuses with one line naming the three trees, list shows it, and nothing is deleted', () => {
    const w = world('recreated-killed');
    killAt(w, 'commit:old-moved-aside', ['tenants', 'restore', '--from', fixtures.newArchive, '--force']);
    gatewayWrites(w);
    expect(expectOk(w.cli(['tenants', 'list', '--names'])).stdout).toBe('acme\nbeta\n');
    const listed = JSON.parse(expectOk(w.cli(['--json', 'tenants', 'list'])).stdout);
    expect(listed.tenants[0]).toMatchObject({ name: 'acme', state: 'needs-recovery' });
    for (const args of [
      ['tenants', 'backup', 'acme', '--to', path.join(w.out, 'a.tar.zst')],
      ['tenants', 'restore', '--from', fixtures.newArchive, '--force'],
      ['tenants', 'recover', 'acme'],
    ]) {
      const run = w.cli(args);
      expect(run.status, describeRun(run)).toBe(3);
      expect(run.stderr).toMatch(
        /^openclaw: tenant "acme" needs a decision after an interrupted restore \(the slot was re-created while the restored tenant was being moved in\); nothing was moved: \S+\/acme holds 1 file in 2 directories, written since; \S+\/\.openclaw-aside-acme-[0-9a-f]{12} holds the previous tenant \(\d+ files in \d+ directories\); \S+\/\.openclaw-staging-acme-[0-9a-f]{12} holds the restored tenant, verified \(\d+ files in \d+ directories\)\. Keep one with: openclaw tenants recover acme --keep old\|new\|slot \(the others are deleted\)\n$/,
      );
      expectThreeTrees(w);
    }
    expectOk(w.cli(['tenants', 'backup', 'beta', '--to', path.join(w.out, 'beta.tar.zst')]));
    expectThreeTrees(w);
  });

  for (const keep of ['old', 'new', 'slot'] as const) {
    it(`then recover --keep ${keep} leaves that tree alone in the slot`, () => {
      const w = world(`recreated-keep-${keep}`);
      killAt(w, 'commit:old-moved-aside', ['tenants', 'restore', '--from', fixtures.newArchive, '--force']);
      gatewayWrites(w);
      expectOk(w.cli(['tenants', 'recover', 'acme', '--keep', keep]));
      if (keep === 'slot') {
        expect(readdirSync(w.base).sort()).toEqual(['acme', 'beta']);
        expect(Object.keys(w.tree('acme'))).toEqual(['', 'sessions', 'sessions/live.jsonl']);
        expect(readdirSync(w.tmp)).toEqual([]);
      } else w.expectSettled({ holds: keep, tenants: ['acme', 'beta'] });
    });

    const keepPoints = ['lock:acquired', 'journal:keeping:temp-written', 'keep:journal-written', 'keep:slot-moved-to-trash', 'keep:moved-in', 'keep:other-moved-to-trash'];
    if (keep === 'slot') keepPoints.splice(keepPoints.indexOf('keep:slot-moved-to-trash'), 2, 'keep:other-moved-to-trash@2');
    for (const point of keepPoints) {
      it(`recover --keep ${keep} killed at ${point}: the next command finishes it (or asks again)`, () => {
        const w = world(`recreated-keep-${keep}-${point}`);
        killAt(w, 'commit:old-moved-aside', ['tenants', 'restore', '--from', fixtures.newArchive, '--force']);
        gatewayWrites(w);
        killAt(w, point, ['tenants', 'recover', 'acme', '--keep', keep]);
        const decided = !['lock:acquired', 'journal:keeping:temp-written'].includes(point);
        if (decided) expectOk(w.cli(['tenants', 'list', '--names']));
        else {
          // Killed before the choice was recorded: still a decision to make, and nothing lost.
          expect(w.cli(['tenants', 'recover', 'acme']).status).toBe(3);
          expectThreeTrees(w);
          expectOk(w.cli(['tenants', 'recover', 'acme', '--keep', keep]));
        }
        if (keep === 'slot') {
          expect(readdirSync(w.base).sort()).toEqual(['acme', 'beta']);
          expect(Object.keys(w.tree('acme'))).toEqual(['', 'sessions', 'sessions/live.jsonl']);
        } else w.expectSettled({ holds: keep, tenants: ['acme', 'beta'] });
      });
    }
  }

  it('during a live restore: it shows as mid-commit, then the restore refuses and moves nothing more', async () => {
    const w = world('recreated-live');
    const child = w.spawn(['tenants', 'restore', '--from', fixtures.newArchive, '--force'], { OPENCLAW_TEST_PAUSE_AT: 'commit:old-moved-aside' });
    const result = exited(child);
    try {
      await stopped(child);
      covered.add('commit:old-moved-aside');
      gatewayWrites(w);
      const listed = JSON.parse(expectOk(w.cli(['--json', 'tenants', 'list'])).stdout);
      expect(listed.tenants[0]).toEqual({ name: 'acme', state: 'mid-commit', detail: 'a restore is moving it into place' });
      expect(w.cli(['tenants', 'backup', 'acme', '--to', path.join(w.out, 'a.tar.zst')]).stderr).toMatch(/tenant "acme" is busy: a restore by pid \d+/);
      child.kill('SIGCONT');
      const run = await result;
      expect(run.status, describeRun(run)).toBe(3);
      expect(run.stderr).toMatch(/^openclaw: tenant "acme" needs a decision .* --keep old\|new\|slot \(the others are deleted\)\n$/);
      expectThreeTrees(w);
      expectOk(w.cli(['tenants', 'recover', 'acme', '--keep', 'new']));
      w.expectSettled({ holds: 'new', tenants: ['acme', 'beta'] });
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('a live restore', () => {
  it("is not touched by another command's sweep, and finishes", async () => {
    const w = world('live-untouched');
    const child = w.spawn(['tenants', 'restore', '--from', fixtures.newArchive, '--force'], { OPENCLAW_TEST_PAUSE_AT: 'restore:extracting' });
    const result = exited(child);
    try {
      await stopped(child);
      const hidden = readdirSync(w.base).filter((name) => name.startsWith('.')).sort();
      expect(hidden).toEqual(['.openclaw-journal-acme.json', '.openclaw-lock-acme', expect.stringMatching(/^\.openclaw-staging-acme-/)]);
      expectOk(w.cli(['tenants', 'backup', 'beta', '--to', path.join(w.out, 'beta.tar.zst')]));
      expect(expectOk(w.cli(['tenants', 'list', '--names'])).stdout).toBe('acme\nbeta\n');
      expect(readdirSync(w.base).filter((name) => name.startsWith('.')).sort()).toEqual(hidden);
      child.kill('SIGCONT');
      expectOk(await result);
      w.expectSettled({ holds: 'new', tenants: ['acme', 'beta'] });
    } finally {
      child.kill('SIGKILL');
    }
  });
});
