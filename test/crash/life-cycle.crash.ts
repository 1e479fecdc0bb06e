// The life cycle commands killed and rerun: `backup --all`, then the same command with
// --skip-existing, which finishes the rest. Run with `npm run test:crash`.

import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { expectOk, Fixtures, World } from './harness.js';

let fixtures: Fixtures;
beforeAll(() => {
  fixtures = new Fixtures().build();
}, 120_000);
afterAll(() => fixtures?.cleanup());

describe('backup --all killed, then run again with --skip-existing', () => {
  it('killed right after linking the first archive in: the rerun skips that tenant and removes the temporary name the killed run left beside its archive', () => {
    const w = new World(fixtures, 'all-killed-linked');
    const to = path.join(w.out, '{tenant}', '{tenant}.tar.zst');
    w.killAt('archive:linked', ['tenants', 'backup', '--all', '--jobs', '1', '--to', to]);
    const first = readdirSync(w.out).find((tenant) => readdirSync(path.join(w.out, tenant)).includes(`${tenant}.tar.zst`))!;
    const dir = path.join(w.out, first);
    const partial = readdirSync(dir).find((name) => name.endsWith('.partial'))!;
    // The killed run's temporary name: the archive's second name, so removing the archive would free nothing.
    expect(statSync(path.join(dir, partial)).ino).toBe(statSync(path.join(dir, `${first}.tar.zst`)).ino);

    const rerun = expectOk(w.cli(['tenants', 'backup', '--all', '--skip-existing', '--to', to]));
    expect(rerun.stdout).toMatch(/1 skipped \(already there\)/);
    for (const tenant of ['acme', 'beta']) expect(readdirSync(path.join(w.out, tenant))).toEqual([`${tenant}.tar.zst`]);
    expect(statSync(path.join(dir, `${first}.tar.zst`)).nlink).toBe(1);
    w.expectSettled({ holds: 'old', tenants: ['acme', 'beta'] });
  });
});
