// The shape check every local command runs on its base dir first (tenants.ts
// assertTenantsDirShape): what it costs a real base dir, whatever its size. It read every name
// in it, for the backup of one tenant too: with 100,000 tenants 0.1-0.2 s a command on a local
// disk and 1.7-3 s on a 1 ms latency mount (bench/latencyfs.py). The refusals themselves are
// pinned from outside in cli-operator-errors ("a --tenants-dir that is no tenant base dir").

import { mkdirSync, promises as fs, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { UsageError } from '../shared/errors.js';
import { assertTenantsDirShape } from '../shared/tenant/tenants.js';
import { tempDir } from './helpers/tree.js';

let dir: ReturnType<typeof tempDir>;
let base: string;
beforeEach(() => {
  dir = tempDir();
  base = path.join(dir.path, 'tenants');
  // Tenants named as a tenant's own items are tenants all the same.
  for (const tenant of ['acme', 'beta', 'workspace', 'memory', 'sessions', 'config']) {
    mkdirSync(path.join(base, tenant, 'pty'), { recursive: true });
    writeFileSync(path.join(base, tenant, 'config.json'), '{}');
  }
  mkdirSync(path.join(base, 'lost+found'));
  mkdirSync(path.join(base, '.snapshot'));
  writeFileSync(path.join(base, '.DS_Store'), '');
  writeFileSync(path.join(base, 'README'), 'the gateway\'s tenants\n');
});
afterEach(() => {
  vi.restoreAllMocks();
  dir.cleanup();
});

/** Spies on every way of reading a directory's names. */
function listings(): () => string[] {
  const readdir = vi.spyOn(fs, 'readdir');
  const opendir = vi.spyOn(fs, 'opendir');
  return () => [...readdir.mock.calls, ...opendir.mock.calls].map((call) => String(call[0]));
}

describe('the base dir shape check', () => {
  it('passes a real base dir by looking up names, reading no directory', async () => {
    const read = listings();
    await expect(assertTenantsDirShape(base)).resolves.toBeUndefined();
    expect(read()).toEqual([]);
  });

  it('reads a base dir holding a tenant named pty no further than it must, and passes it without a stray file', async () => {
    mkdirSync(path.join(base, 'pty'));
    const read = listings();
    await expect(assertTenantsDirShape(path.join(dir.path, 'tenants'))).rejects.toThrow(UsageError);
    expect(read()).toEqual([base]);
    vi.restoreAllMocks();
    // Without the stray README the same base dir is one.
    await fs.rm(path.join(base, 'README'));
    await expect(assertTenantsDirShape(base)).resolves.toBeUndefined();
  });

  it('still refuses a tenant\'s own directory and the base dir\'s parent', async () => {
    await expect(assertTenantsDirShape(path.join(base, 'acme'))).rejects.toThrow(/looks like a tenant's own directory/);
    await fs.rm(path.join(base, 'README'));
    await expect(assertTenantsDirShape(dir.path)).rejects.toThrow(`${dir.path} holds the tenant base dir ${base}`);
  });

  // A base dir keeping a config.json and token.sha256 of its own beside its tenants was refused
  // "give its parent", which names the base dir itself a tenant (backed up, replaced by a restore, as one).
  it('passes a base dir that keeps config.json and token.sha256 beside tenants holding theirs, and refuses a restored tenant', async () => {
    writeFileSync(path.join(base, 'config.json'), '{"gateway": true}');
    writeFileSync(path.join(base, 'token.sha256'), 'gateway token hash\n');
    writeFileSync(path.join(base, 'acme', 'token.sha256'), 'acme token hash\n');
    await expect(assertTenantsDirShape(base)).resolves.toBeUndefined();
    // A restored tenant (no pty/): its own files at its top, none in its directories.
    const restored = path.join(base, 'beta');
    await fs.rm(path.join(restored, 'pty'), { recursive: true });
    writeFileSync(path.join(restored, 'token.sha256'), 'beta token hash\n');
    for (const item of ['sessions', 'memory', 'workspace']) mkdirSync(path.join(restored, item));
    writeFileSync(path.join(restored, 'workspace', 'config.json'), '{}');
    await expect(assertTenantsDirShape(restored)).rejects.toThrow(`${restored} looks like a tenant's own directory (config.json and token.sha256 at its top)`);
  });

  // A new gateway's base dir keeps its own config.json and token.sha256 before any tenant is
  // there: it was refused as a tenant's own directory ("give its parent"), so its first restore
  // could not run. A tenant's own directory holds its items beside them (sessions/, memory/…).
  it('passes a new gateway\'s base dir holding config.json and token.sha256 and no tenant yet, and still refuses a tenant\'s own directory', async () => {
    const fresh = path.join(dir.path, 'new-gateway');
    mkdirSync(fresh);
    writeFileSync(path.join(fresh, 'config.json'), '{"gateway": true}');
    writeFileSync(path.join(fresh, 'token.sha256'), 'gateway token hash\n');
    await expect(assertTenantsDirShape(fresh)).resolves.toBeUndefined();
    // What a volume's root and the tool's own leftovers add is no tenant's item.
    mkdirSync(path.join(fresh, 'lost+found'));
    mkdirSync(path.join(fresh, '.openclaw-staging-acme-0123456789ab'));
    await expect(assertTenantsDirShape(fresh)).resolves.toBeUndefined();
    // The same two files beside a directory of its own: a tenant's (restored: no pty/).
    mkdirSync(path.join(fresh, 'sessions'));
    await expect(assertTenantsDirShape(fresh)).rejects.toThrow(`${fresh} looks like a tenant's own directory (config.json and token.sha256 at its top)`);
  });

  // A tenant that holds nothing but config.json and token.sha256 yet (a new one; one with only
  // hidden directories) passed as a new gateway's base dir: `tenants list` there said "no
  // tenants", and `tenants restore --from acme.tar.zst` made acme inside it (exit 0), in its
  // backups from then on. Beside an established tenant it is a tenant; a new gateway's base dir,
  // beside another gateway's (new or not), is still a base dir.
  it('refuses a tenant that holds only config.json and token.sha256 beside an established tenant, and passes a new gateway\'s base dir beside other gateways\'', async () => {
    const gateway = (at: string) => {
      mkdirSync(at, { recursive: true });
      writeFileSync(path.join(at, 'config.json'), '{}');
      writeFileSync(path.join(at, 'token.sha256'), 'hash\n');
      return at;
    };
    const tenants = path.join(dir.path, 'gateway-tenants');
    mkdirSync(path.join(gateway(path.join(tenants, 'acme')), 'sessions'));
    const fresh = gateway(path.join(tenants, 'newco'));
    const hiddenOnly = gateway(path.join(tenants, 'quiet'));
    mkdirSync(path.join(hiddenOnly, '.cache'));
    for (const tenant of [fresh, hiddenOnly]) {
      await expect(assertTenantsDirShape(tenant)).rejects.toThrow(
        `${tenant} looks like a tenant's own directory (config.json and token.sha256 at its top, as tenant "acme" beside it has), not the tenant base dir that holds the tenants: give its parent (--tenants-dir ${tenants})`,
      );
    }
    await expect(assertTenantsDirShape(tenants)).resolves.toBeUndefined();
    // Gateways side by side: a new one beside a new one, and beside one with tenants.
    const gateways = path.join(dir.path, 'gateways');
    const first = gateway(path.join(gateways, 'first'));
    const second = gateway(path.join(gateways, 'second'));
    await expect(assertTenantsDirShape(first)).resolves.toBeUndefined();
    mkdirSync(path.join(gateway(path.join(second, 'acme')), 'sessions'));
    await expect(assertTenantsDirShape(first)).resolves.toBeUndefined();
    await expect(assertTenantsDirShape(second)).resolves.toBeUndefined();
  });

  // A new tenant alone in the default base dir (~/.openclaw/tenants/acme holding only its two
  // files, no tenant beside it) passed as a new gateway's base dir: `tenants list` there said "no
  // tenants" and a restore made its tenant inside it. A directory right in a `.openclaw/tenants`
  // is that base dir's tenant; a gateway's base dir there, or named `tenants` elsewhere, is not.
  it('refuses a new tenant alone in the default base dir\'s place, and passes a new gateway\'s base dir there or in a directory named tenants elsewhere', async () => {
    const gateway = (at: string) => {
      mkdirSync(at, { recursive: true });
      writeFileSync(path.join(at, 'config.json'), '{}');
      writeFileSync(path.join(at, 'token.sha256'), 'hash\n');
      return at;
    };
    const defaultBaseDir = path.join(dir.path, 'home', '.openclaw', 'tenants');
    const lone = gateway(path.join(defaultBaseDir, 'acme'));
    await expect(assertTenantsDirShape(lone)).rejects.toThrow(
      `${lone} looks like a tenant's own directory (config.json and token.sha256 at its top, and it is in ${defaultBaseDir}, where the tenant base dir is by default), not the tenant base dir that holds the tenants: give its parent (--tenants-dir ${defaultBaseDir})`,
    );
    await expect(assertTenantsDirShape(defaultBaseDir)).resolves.toBeUndefined();
    // The default base dir itself as a new gateway's: its two files and no tenant yet.
    const fresh = gateway(path.join(dir.path, 'other-home', '.openclaw', 'tenants'));
    await expect(assertTenantsDirShape(fresh)).resolves.toBeUndefined();
    // A gateway's base dir in a directory named tenants that is no default base dir's place, and one whose name is no tenant name.
    await expect(assertTenantsDirShape(gateway(path.join(dir.path, 'srv', 'tenants', 'prod')))).resolves.toBeUndefined();
    await expect(assertTenantsDirShape(gateway(path.join(dir.path, 'home2', '.openclaw', 'tenants', 'Prod')))).resolves.toBeUndefined();
  });

  // ~/.openclaw/tenants a symlink to a bigger disk's directory (/data/gw): its new tenant alone there, given as
  // ~/.openclaw/tenants/acme, passed (its real path is in no .openclaw/tenants): a restore into it made acme/beta.
  it('refuses a new tenant alone in the default base dir\'s place when that place is a symlink, and through a link to the tenant', async () => {
    const data = path.join(dir.path, 'data', 'gw');
    mkdirSync(path.join(data, 'acme'), { recursive: true });
    writeFileSync(path.join(data, 'acme', 'config.json'), '{}');
    writeFileSync(path.join(data, 'acme', 'token.sha256'), 'hash\n');
    const openclaw = path.join(dir.path, 'home', '.openclaw');
    mkdirSync(openclaw, { recursive: true });
    symlinkSync(data, path.join(openclaw, 'tenants'));
    await expect(assertTenantsDirShape(path.join(openclaw, 'tenants', 'acme'))).rejects.toThrow(/looks like a tenant's own directory .*where the tenant base dir is by default/);
    await expect(assertTenantsDirShape(`${path.join(openclaw, 'tenants', 'acme')}/`)).rejects.toThrow(UsageError);
    await expect(assertTenantsDirShape(path.join(openclaw, 'tenants'))).resolves.toBeUndefined();
    // ~/.openclaw itself moved and linked: the real path still ends in .openclaw/tenants/acme.
    const moved = path.join(dir.path, 'disk', '.openclaw');
    mkdirSync(path.join(moved, 'tenants', 'beta'), { recursive: true });
    writeFileSync(path.join(moved, 'tenants', 'beta', 'config.json'), '{}');
    writeFileSync(path.join(moved, 'tenants', 'beta', 'token.sha256'), 'hash\n');
    symlinkSync(path.join(moved, 'tenants', 'beta'), path.join(dir.path, 'beta-link'));
    await expect(assertTenantsDirShape(path.join(dir.path, 'beta-link'))).rejects.toThrow(UsageError);
  });

  // `--tenants-dir ~/acme-link` (a symlink to BASE/acme) said to give the link's own directory,
  // which holds no tenant: `tenants list` there found none and named the link a symlinked tenant.
  it('names the real parent of a tenant\'s own directory given through a symlink', async () => {
    const links = path.join(dir.path, 'links');
    mkdirSync(links);
    symlinkSync(path.join(base, 'acme'), path.join(links, 'acme-link'));
    await expect(assertTenantsDirShape(path.join(links, 'acme-link'))).rejects.toThrow(
      `${path.join(links, 'acme-link')} looks like a tenant's own directory (files and pty/ at its top), not the tenant base dir that holds the tenants: give its parent (--tenants-dir ${base})`,
    );
  });
});
