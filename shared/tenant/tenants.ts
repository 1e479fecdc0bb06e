// The tenant base dir: where it is, which tenants it holds (and whether a restore is moving
// one), and how big they are.

import { promises as fs, type Dirent } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';

import { sweepBaseDir } from './base-dir-sweep.js';
import { errnoMessage, FileSystemError, InvalidNameError, TenantNotFoundError, TenantsDirNotFoundError, UsageError } from '../errors.js';
import { HIDDEN_PREFIX, parseHiddenName } from './hidden-names.js';
import { assertTenantName, byName, EPHEMERAL_DIR, isValidTenantName, TENANT_NAME_PATTERN } from './names.js';
import { fileAccessFor, namesLookedUp } from '../file-access.js';
import { assertLocalPath } from '../local-path.js';
import { isMidCommit, type RecoveryAction } from './slot.js';
import { SeenInodes } from '../backup/seen-inodes.js';
import { firstNameOf, walkTenant } from '../backup/tenant-walk.js';
import { quotedPath, shownPath } from '../format.js';

/** `--tenants-dir`, else `OPENCLAW_TENANTS_DIR`, else `~/.openclaw/tenants`; always absolute. */
export function resolveTenantsDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  // An empty value (an unset shell variable) would resolve to the working directory, whose
  // subdirectories would then be listed, backed up and restored into as tenants.
  if (flag === '') throw new UsageError('--tenants-dir is empty: name the tenant base dir');
  if (flag === undefined && env.OPENCLAW_TENANTS_DIR === '') throw new UsageError('OPENCLAW_TENANTS_DIR is empty: name the tenant base dir');
  if (flag !== undefined) assertLocalPath(flag, '--tenants-dir');
  else if (env.OPENCLAW_TENANTS_DIR !== undefined) assertLocalPath(env.OPENCLAW_TENANTS_DIR, 'OPENCLAW_TENANTS_DIR');
  const chosen = flag ?? env.OPENCLAW_TENANTS_DIR ?? path.join(homeDirectory('name the tenant base dir with --tenants-dir or OPENCLAW_TENANTS_DIR'), '.openclaw', 'tenants');
  return path.resolve(chosen);
}

/**
 * The user's home directory (`HOME`, else the password file's), refused with `instead` (what
 * to give in its place) when it is not an absolute path: `HOME=` (or a relative one) made
 * `~/.openclaw/…` the working directory's `.openclaw/…`, where a restore then created the
 * base dir and its tenant, and a cron command its lock and log.
 */
export function homeDirectory(instead: string): string {
  let home: string;
  try {
    home = os.homedir();
  } catch {
    throw new UsageError(`HOME is unset and the user has no entry in the password file: ${instead}`);
  }
  if (home === '') throw new UsageError(`HOME is empty: ${instead}`);
  if (!path.isAbsolute(home)) throw new UsageError(`HOME is not an absolute path (${JSON.stringify(home)}): ${instead}`);
  return home;
}

/**
 * Throws unless `tenant` is a valid tenant name. A directory of the base dir by that very name
 * (made by hand, `Acme`) is said to be one no command backs up: the hint to write the name in
 * lowercase would back up another tenant's directory (`acme`) in its place, or none.
 */
export async function assertTenantNameIn(tenantsDir: string, tenant: string): Promise<string> {
  if (isValidTenantName(tenant)) return tenant;
  // Our own directories there (`.openclaw-…`) and lost+found are not to be renamed or moved.
  const oneName = tenant !== '' && !isHousekeeping(tenant) && !tenant.includes('/') && !tenant.includes('\0');
  const stats = oneName ? await fs.lstat(path.join(tenantsDir, tenant)).catch(() => undefined) : undefined;
  if (stats?.isDirectory() === true || stats?.isSymbolicLink() === true) throw new InvalidNameError(notATenantName(tenantsDir, tenant));
  return assertTenantName(tenant);
}

function notATenantName(tenantsDir: string, name: string): string {
  return `${quotedPath(name)} in ${tenantsDir} is not a valid tenant name (${TENANT_NAME_PATTERN.source}): no command backs it up; rename it to a tenant name or move it out of the base dir`;
}

/**
 * Refuses a base dir that is plainly something else, in one line naming what to give:
 * `--tenants-dir base/acme` (a tenant's own directory) listed `sessions`, `memory`,
 * `workspace`… as tenants, backed them up as such, and a restore made a tenant inside the
 * tenant; `--tenants-dir ~/.openclaw` (the base dir's parent) listed one tenant, `tenants`.
 * What marks them: a tenant's top holds the gateway's `config.json` and `token.sha256`
 * (TENANT_OWN_FILES; a restored tenant, which has no `pty/`, is known by them), or its files
 * beside the ephemeral `pty/` the tool knows every tenant may have (EPHEMERAL_DIR), where a base dir holds tenants,
 * which are directories, and the tool's hidden names; the parent of the default base dir holds
 * `tenants/`, which is not itself shaped as a tenant and holds one that is. A stray file, or
 * a tenant named `pty` or `tenants`, alone is no sign. Missing or unreadable: not judged here
 * (the command says so itself, or creates it). It costs three lookups by name (`config.json`,
 * `pty`, `tenants`) for a real base dir: the base dir is read only when it holds a `pty/` directory, and then only
 * up to its first regular file (a read of every name cost each command, the backup of one
 * tenant included, 0.1-0.2 s on a local disk and 1.7-3 s on a 1 ms latency mount with 100,000
 * tenants); for the parent, `tenants/` is read only up to a few of its directories.
 */
export async function assertTenantsDirShape(tenantsDir: string): Promise<void> {
  const tenantOwnShape = await tenantShapeOf(tenantsDir);
  if (tenantOwnShape !== undefined) {
    // Its parent as it really is: given through a symlink (`--tenants-dir ~/acme-link`), the
    // link's own directory (~) holds no tenant (and names the link a symlinked tenant).
    const parent = path.dirname(await fs.realpath(tenantsDir).catch(() => tenantsDir));
    throw new UsageError(
      `${tenantsDir} looks like a tenant's own directory (${tenantOwnShape}), not the tenant base dir that holds the tenants: give its parent (--tenants-dir ${parent})`,
    );
  }
  const inner = path.join(tenantsDir, DEFAULT_BASE_DIR_NAME);
  if (!(await isRealDirectory(inner)) || (await shapedAsTenant(inner))) return;
  for (const candidate of await directoriesNamedAsTenants(inner, TENANTS_LOOKED_AT)) {
    if (await shapedAsTenant(path.join(inner, candidate))) {
      throw new UsageError(`${tenantsDir} holds the tenant base dir ${inner} (with tenant "${candidate}" in it), not the tenants themselves: give --tenants-dir ${inner}`);
    }
  }
}

/** The base dir's default name (`~/.openclaw/tenants`). */
const DEFAULT_BASE_DIR_NAME = 'tenants';
/** How many of a `tenants/` directory's directories are looked into for one shaped as a tenant. */
const TENANTS_LOOKED_AT = 8;

/** Whether `at` is a directory itself (not a symlink to one); false where it cannot be looked up. */
async function isRealDirectory(at: string): Promise<boolean> {
  return (await fs.lstat(at).catch(() => undefined))?.isDirectory() === true;
}

/**
 * Whether `directory`'s top is a tenant's, not a base dir's: it holds the gateway's own files of
 * a tenant (TENANT_OWN_FILES, looked up by name), or a regular file (not hidden) beside the
 * ephemeral `pty/` directory (read only if `pty/` is there, up to the first such file). A
 * restored tenant has no `pty/` (a restore never writes it): by its files alone
 * `--tenants-dir base/acme` listed `channels`, `memory`, `sessions`… as tenants.
 */
async function shapedAsTenant(directory: string): Promise<boolean> {
  return (await tenantShapeOf(directory)) !== undefined;
}

/** What marks `directory` as a tenant's own (see shapedAsTenant), said for a message; undefined if nothing does. */
async function tenantShapeOf(directory: string): Promise<string | undefined> {
  if (await isRealDirectory(path.join(directory, EPHEMERAL_DIR))) {
    const files = await firstEntries(directory, 1, (entry) => entry.isFile() && !entry.name.startsWith('.'));
    if (files.length > 0) return `files and ${EPHEMERAL_DIR}/ at its top`;
  }
  const own = await holdsTenantOwnFiles(directory);
  if (own === 'tenant') return `${TENANT_OWN_FILES.join(' and ')} at its top`;
  if (own === 'no-items') {
    const neighbour = await tenantBeside(directory);
    if (neighbour !== undefined) return `${TENANT_OWN_FILES.join(' and ')} at its top, as tenant "${neighbour}" beside it has`;
    const defaultBaseDir = await inDefaultBaseDir(directory);
    if (defaultBaseDir !== undefined) return `${TENANT_OWN_FILES.join(' and ')} at its top, and it is in ${defaultBaseDir}, where the tenant base dir is by default`;
  }
  return undefined;
}

/**
 * The default base dir's place (`<dir>/.openclaw/tenants`, by the path given or the real one) when `directory` is a
 * tenant-named directory right in one: what tells a new tenant alone there (its two files and
 * nothing else yet, no established tenant beside it) from a new gateway's base dir, which holds
 * the same. A gateway's base dir there would itself be a tenant of the default base dir (listed,
 * backed up, restored over as one). Given as a base dir, such a tenant was listed as holding no
 * tenant and restored into. Elsewhere (a base dir given by --tenants-dir) nothing tells them
 * apart: undefined.
 */
async function inDefaultBaseDir(directory: string): Promise<string | undefined> {
  // As given and as real: ~/.openclaw/tenants (or ~/.openclaw) a symlink to a bigger disk's directory,
  // and ~/acme-link to ~/.openclaw/tenants/acme, are both that place (the link alone: a restore made acme/beta).
  const given = path.resolve(directory);
  const real = await fs.realpath(directory).catch(() => given);
  for (const at of [given, real]) {
    const parent = path.dirname(at);
    if (isValidTenantName(path.basename(at)) && path.basename(parent) === DEFAULT_BASE_DIR_NAME && path.basename(path.dirname(parent)) === '.openclaw') return parent;
  }
  return undefined;
}

/**
 * A directory beside `directory` (in its real parent) shaped as an established tenant (its own
 * TENANT_OWN_FILES beside items of its own), among the parent's first directories named as
 * tenants: what tells a tenant that holds nothing but the two files yet (a new one; one with
 * only hidden directories) from a new gateway's base dir, which holds the same. Given as a base
 * dir, such a tenant was listed as holding no tenant and restored into: the archive's tenant
 * was made inside it (exit 0), and went into its backups. Undefined at the root or where the
 * parent cannot be read.
 */
async function tenantBeside(directory: string): Promise<string | undefined> {
  const real = await fs.realpath(directory).catch(() => path.resolve(directory));
  const parent = path.dirname(real);
  if (parent === real) return undefined;
  for (const name of await directoriesNamedAsTenants(parent, TENANTS_LOOKED_AT + 1)) {
    if (name !== path.basename(real) && (await holdsTenantOwnFiles(path.join(parent, name))) === 'tenant') return name;
  }
  return undefined;
}

/** The files the gateway keeps at the top of every tenant's directory: its config and token hash. */
const TENANT_OWN_FILES = ['config.json', 'token.sha256'] as const;

/**
 * Whether `directory` holds TENANT_OWN_FILES, both as regular files, beside directories of its
 * own (a tenant's `sessions/`, `memory/`, `workspace/`…), none of the first of which holds them
 * too. A base dir may keep the gateway's own `config.json` and `token.sha256` at its top: beside
 * tenants, which hold theirs (before, that base dir was refused with "give its parent", which
 * names the base dir itself a tenant: backed up, or replaced by a restore, as one), or beside
 * nothing yet, a new gateway's (refused so, its first restore could not be run). Hidden names and
 * `lost+found` are no tenant's items. One file alone is no sign (a base dir may hold a stray
 * `config.json`); the second is looked up only when the first is there, and directories are read
 * only when both are.
 */
async function holdsTenantOwnFiles(directory: string): Promise<'tenant' | 'no-items' | false> {
  if (!(await holdsBothTenantOwnFiles(directory))) return false;
  const items = await firstEntries(directory, TENANT_SUBDIRECTORIES_LOOKED_AT, (candidate) => candidate.isDirectory() && !isHousekeeping(candidate.name));
  for (const entry of items) {
    if (await holdsBothTenantOwnFiles(path.join(directory, entry.name))) return false;
  }
  // Both files beside nothing of a tenant's: a new gateway's base dir, or a tenant that holds nothing else yet (tenantBeside tells them apart).
  return items.length > 0 ? 'tenant' : 'no-items';
}

async function holdsBothTenantOwnFiles(directory: string): Promise<boolean> {
  for (const name of TENANT_OWN_FILES) {
    if ((await fs.lstat(path.join(directory, name)).catch(() => undefined))?.isFile() !== true) return false;
  }
  return true;
}

/** How many directories of one holding TENANT_OWN_FILES are looked into for a tenant (a tenant's own top has a handful). */
const TENANT_SUBDIRECTORIES_LOOKED_AT = 16;

/** The first `limit` directories in `directory` named as tenants (as listed); none where it cannot be read. */
async function directoriesNamedAsTenants(directory: string, limit: number): Promise<string[]> {
  return (await firstEntries(directory, limit, (entry) => entry.isDirectory() && isValidTenantName(entry.name))).map((entry) => entry.name);
}

/** Up to `limit` entries of `directory` that `wanted` takes, read no further than the last of them; none where it cannot be read. */
async function firstEntries(directory: string, limit: number, wanted: (entry: Dirent) => boolean): Promise<Dirent[]> {
  const found: Dirent[] = [];
  try {
    // for await closes the listing when the loop ends, early or by an error.
    for await (const entry of await fs.opendir(directory)) {
      if (!wanted(entry)) continue;
      found.push(entry);
      if (found.length >= limit) break;
    }
  } catch {
    return [];
  }
  return found;
}

/** The tenant's directory, refused unless it is a real directory (a symlinked tenant could point anywhere). */
export async function tenantDirFor(tenantsDir: string, tenant: string): Promise<string> {
  assertTenantName(tenant);
  const dir = path.join(tenantsDir, tenant);
  let stat;
  try {
    stat = await fs.lstat(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new TenantNotFoundError(`no tenant "${tenant}" in ${tenantsDir} (see tenants list)`, { tenant, tenantsDir });
    }
    throw error;
  }
  if (stat.isSymbolicLink()) throw new TenantNotFoundError(`tenant "${tenant}" in ${tenantsDir} is a symlink; refusing to follow it`);
  if (!stat.isDirectory()) throw new TenantNotFoundError(`tenant "${tenant}" in ${tenantsDir} is not a directory`);
  return dir;
}

/**
 * Refuses a local backup destination inside the tenant base dir: in a tenant's directory the
 * archive is in every later backup of it and is deleted by a restore --force of the tenant;
 * elsewhere there it makes up a tenant, or leftovers beside them. Symlinks are resolved as
 * far as the path exists.
 */
export async function assertOutsideTenantsDir(tenantsDir: string, destination: string): Promise<void> {
  const [base, target] = await Promise.all([realPathSoFar(tenantsDir), realPathSoFar(destination)]);
  const relative = path.relative(base, target);
  if (relative === '' || (!relative.startsWith(`..${path.sep}`) && relative !== '..' && !path.isAbsolute(relative))) {
    throw new UsageError(`${destination} is inside the tenant base dir ${tenantsDir}: store backups outside it`, 'DESTINATION_IN_TENANTS_DIR');
  }
}

/** `file` with its deepest existing ancestor resolved through symlinks, the rest appended. */
async function realPathSoFar(file: string): Promise<string> {
  const absolute = path.resolve(file);
  const rest: string[] = [];
  for (let at = absolute; ; at = path.dirname(at)) {
    try {
      return path.join(await fs.realpath(at), ...rest.reverse());
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || path.dirname(at) === at) return absolute;
      rest.push(path.basename(at));
    }
  }
}

/**
 * How a tenant's slot stands: settled; 'mid-commit' while a restore moves trees in or out of
 * it (a live one, or one whose recovery failed); 'needs-recovery' when recovery needs the
 * operator's decision (`tenants recover`); 'unreadable' when this user may not read all of
 * it (a directory without read permission, which a restore keeps as archived), so it
 * cannot be summarized or backed up.
 */
export type TenantState = 'ok' | 'mid-commit' | 'needs-recovery' | 'unreadable';

export interface TenantEntry {
  readonly name: string;
  readonly state: TenantState;
  /** What is going on, for a tenant that is not 'ok'. */
  readonly detail?: string;
  /** What the listing's sweep did first to what an interrupted (killed, or lock-lost) restore of it left: 'rolled-back', … (absent: nothing). */
  readonly recovered?: RecoveryAction;
}

/** The state's detail of a new tenant between the pieces of its restore. */
export const RESTORING_IN_PIECES = 'a restore in pieces is writing it: it is in place once the last piece commits (`tenants recover` ends a chain that stopped)';

/**
 * The tenants in the base dir, sorted, after sweeping leftovers of dead operations
 * (base-dir-sweep.ts). A tenant whose slot is mid-commit or needs a decision is listed
 * even when its slot is momentarily absent. An absent base dir is an error
 * (TenantsDirNotFoundError), never an empty list: a loop over the names would back up
 * nothing and succeed.
 */
export async function listTenants(tenantsDir: string, signal?: AbortSignal): Promise<TenantEntry[]> {
  return (await readTenants(tenantsDir, signal)).tenants;
}

/**
 * A tenant whose interrupted restore (killed, or one that lost its lock) a listing's sweep
 * settled first, and how: said whether or not the tenant is there now (a rolled-back restore
 * of a tenant that did not exist before, `--as new`, leaves no tenant to carry it).
 */
export interface RecoveredTenant {
  readonly tenant: string;
  readonly action: RecoveryAction;
}

/**
 * A listing's tenants and every interrupted restore its sweep settled first ([]: none). One
 * object, not the array with a property on it: a copy of an array (`map`, `slice`, a spread,
 * JSON) dropped such a property, and twice a rollback was then said nowhere; a caller that
 * wants the tenants alone says so by taking `.tenants`.
 */
export interface Listed<T> {
  readonly tenants: readonly T[];
  readonly recovered: readonly RecoveredTenant[];
}

/** The names of a listing (listTenantNames), and what its sweep settled first. */
export type ListedNames = Listed<string>;

/** The summaries of a listing (summarizeTenants), and what its sweep settled first. */
export type ListedSummaries = Listed<TenantSummary>;

/** listTenants, and which of them are new tenants a restore in pieces is writing (no slot yet), and what the sweep recovered. */
async function readTenants(tenantsDir: string, signal?: AbortSignal): Promise<{ tenants: TenantEntry[]; notInPlace: ReadonlySet<string>; recovered: readonly RecoveredTenant[] }> {
  let entries = await readEntries(tenantsDir);
  const hidden: string[] = [];
  for (const entry of entries) if (entry.name.startsWith(HIDDEN_PREFIX)) hidden.push(entry.name);
  const unsettled = new Map<string, TenantEntry>();
  let recovered: ReadonlyMap<string, RecoveryAction> = new Map();
  if (hidden.length > 0) {
    const sweep = await sweepBaseDir(tenantsDir, { names: hidden, ...(signal !== undefined && { signal }) });
    recovered = sweep.recovered;
    if (sweep.changed) entries = await readEntries(tenantsDir);
    for (const [name, condition] of sweep.unsettled) {
      if (condition.state === 'refused') unsettled.set(name, { name, state: 'needs-recovery', detail: condition.detail });
      else if (await isMidCommit(tenantsDir, name)) {
        unsettled.set(name, { name, state: 'mid-commit', detail: condition.state === 'busy' ? 'a restore is moving it into place' : condition.detail });
      }
    }
  }
  // A new tenant a restore in pieces is writing has no slot until its last piece commits: its
  // checkpoint names it (a tenant restored over keeps its old tree in the slot, listed as it is).
  const slots = new Set(entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name));
  const notInPlace = new Set<string>();
  for (const name of hidden) {
    const parsed = parseHiddenName(name);
    if (parsed?.kind !== 'restore-continuation' || slots.has(parsed.tenant) || unsettled.has(parsed.tenant) || !isValidTenantName(parsed.tenant)) continue;
    unsettled.set(parsed.tenant, { name: parsed.tenant, state: 'mid-commit', detail: RESTORING_IN_PIECES });
    notInPlace.add(parsed.tenant);
  }
  const names = entries.filter((entry) => entry.isDirectory() && isValidTenantName(entry.name) && !unsettled.has(entry.name)).map((entry) => entry.name);
  const settled = (name: string): TenantEntry => {
    const action = recovered.get(name);
    return action === undefined ? { name, state: 'ok' } : { name, state: 'ok', recovered: action };
  };
  // What changed a tenant's state (a rollback, a finished commit, a decision): garbage removed is no news.
  const recoveries = [...recovered].filter(([, action]) => action !== 'removed-leftovers').map(([tenant, action]) => ({ tenant, action })).sort((a, b) => byName(a.tenant, b.tenant));
  if (unsettled.size === 0) return { tenants: names.sort().map(settled), notInPlace, recovered: recoveries };
  const listed = [...names.map(settled), ...unsettled.values()];
  return { tenants: listed.sort((a, b) => byName(a.name, b.name)), notInPlace, recovered: recoveries };
}

/**
 * How many directories of the base dir are named as tenants, read only (no sweep, unlike
 * listTenants): `doctor`'s look. A missing or unreadable base dir throws as for listTenants.
 */
export async function countTenantDirectories(tenantsDir: string): Promise<number> {
  return (await readEntries(tenantsDir)).filter((entry) => entry.isDirectory() && isValidTenantName(entry.name)).length;
}

/**
 * Names of the tenants in the base dir, sorted (listTenants): what `backup --all`, the fan-out
 * and the freshness monitor back up or expect backed up. Without a new tenant a restore in
 * pieces is writing, which has nothing in place to back up until its last piece commits: named,
 * each `backup --all` (cron's, the fan-out's) failed for it ("no tenant …", exit 1) while the
 * chain ran. `tenants list` still shows it (mid-commit).
 */
export async function listTenantNames(tenantsDir: string, signal?: AbortSignal): Promise<ListedNames> {
  const { tenants, notInPlace, recovered } = await readTenants(tenantsDir, signal);
  return { tenants: tenants.filter((tenant) => !notInPlace.has(tenant.name)).map((tenant) => tenant.name), recovered };
}

/** A name in the base dir that looks like a tenant but is no tenant any command follows, and why. */
export interface SkippedTenant {
  readonly name: string;
  readonly reason: string;
  /**
   * Not a valid tenant name (`Acme`, `acme.old`, made by hand): no command can name it, so
   * `backup --all` reports it as not backed up rather than trying it, and `tenants list`
   * only warns of it. Absent: a tenant name that is a symlink, whose backup fails by name.
   */
  readonly invalidName?: true;
}

/** The skipped tenants of a listing: a gateway's answer names as many as it holds and counts the others in `omitted`. */
export type SkippedTenants = readonly SkippedTenant[] & { readonly omitted?: number };

/** Names in a base dir that are nobody's tenant by convention: hidden ones (ours, `.snapshot`…) and ext4's `lost+found` at a volume's root. */
function isHousekeeping(name: string): boolean {
  return name.startsWith('.') || name === 'lost+found';
}

/**
 * Names in the base dir that look like tenants but that no command follows, which `list`
 * and `backup --all` must name rather than pass over in silence and exit 0: tenant names
 * that are symlinks (tenantDirFor refuses them), and directories (or symlinks) whose names
 * are not tenant names, made by hand: an operator who thinks `Acme` is covered would lose
 * its data (hidden names and `lost+found` aside).
 */
export async function listSkippedTenants(tenantsDir: string): Promise<SkippedTenant[]> {
  const entries = await readEntries(tenantsDir);
  const skipped: SkippedTenant[] = [];
  for (const entry of entries) {
    if (isValidTenantName(entry.name)) {
      if (entry.isSymbolicLink()) skipped.push({ name: entry.name, reason: `tenant "${entry.name}" in ${tenantsDir} is a symlink; refusing to follow it` });
    } else if ((entry.isDirectory() || entry.isSymbolicLink()) && !isHousekeeping(entry.name)) {
      skipped.push({
        name: entry.name,
        reason: notATenantName(tenantsDir, entry.name),
        invalidName: true,
      });
    }
  }
  return skipped.sort((a, b) => byName(a.name, b.name));
}

/** What the base dir's listing tells of a name. */
type BaseDirEntry = Pick<Dirent, 'name' | 'isDirectory' | 'isSymbolicLink'>;

async function readEntries(tenantsDir: string): Promise<BaseDirEntry[]> {
  try {
    return await fs.readdir(tenantsDir, { withFileTypes: true }).catch(async (error: unknown) => {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      return await entriesLookedUp(tenantsDir);
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw tenantsDirNotFound(tenantsDir, code);
    const what = errnoMessage(error);
    if (what !== undefined) throw new FileSystemError(`cannot read the tenant base dir ${tenantsDir}: ${what}`, { cause: error });
    throw error;
  }
}

/** The base dir's entries when its listing failed on a file system that gives no types (`namesLookedUp`): a name that cannot be lstat'ed is no tenant. */
async function entriesLookedUp(tenantsDir: string): Promise<BaseDirEntry[]> {
  return (await namesLookedUp(tenantsDir, false)).map(({ name, stat }) => ({ name, isDirectory: () => stat.isDirectory(), isSymbolicLink: () => stat.isSymbolicLink() }));
}

/** The base dir is missing (or is not a directory), in one line that names it and where it came from. */
export function tenantsDirNotFound(tenantsDir: string, code: 'ENOENT' | 'ENOTDIR' = 'ENOENT'): TenantsDirNotFoundError {
  const what = code === 'ENOENT' ? 'does not exist' : 'is not a directory';
  return new TenantsDirNotFoundError(`the tenant base dir ${tenantsDir} ${what} (set it with --tenants-dir or OPENCLAW_TENANTS_DIR)`);
}

export interface TenantSummary {
  readonly name: string;
  readonly state: TenantState;
  readonly detail?: string;
  /** TenantEntry.recovered: what the listing's sweep did first to an interrupted restore's leftovers. */
  readonly recovered?: RecoveryAction;
  /** Bytes of regular files that a backup would archive (pty/ excluded); only for an 'ok' tenant. */
  readonly bytes?: number;
  readonly files?: number;
  /** Newest modification time of anything in the tenant. */
  readonly lastModified?: Date;
}

/** One page of a listing: the tenants sorted after `after`, at most `limit` of them. */
export interface ListPage {
  readonly after?: string;
  readonly limit?: number;
  /**
   * Stops the walks (the list function's deadline): the summaries answered are then the
   * longest run from the page's start whose walks had ended, fewer than asked for (the caller
   * pages on from the last); none when the first tenant's walk had not.
   */
  readonly signal?: AbortSignal;
}

/** The tenants' summaries, sorted; with `page`, only those of that page are walked. */
export async function summarizeTenants(tenantsDir: string, page: ListPage = {}): Promise<ListedSummaries> {
  // The sweep stops at the deadline too: a leftover of 70,000 files took the list function's whole invocation.
  const listing = await readTenants(tenantsDir, page.signal);
  return { tenants: await summarizeListed(tenantsDir, listing.tenants, page), recovered: listing.recovered };
}

async function summarizeListed(tenantsDir: string, listed: readonly TenantEntry[], page: ListPage): Promise<TenantSummary[]> {
  let tenants = [...listed];
  if (page.after !== undefined) tenants = tenants.filter((tenant) => tenant.name > page.after!);
  if (page.limit !== undefined) tenants = tenants.slice(0, page.limit);
  const { signal } = page;
  // Walked a few at a time, in order, so that a page cut by the deadline holds the tenants
  // before the cut: all at once, every walk shared the network volume's round trips and none
  // had ended when it came (200 tenants of 400 files behind 5 ms: "ran out of time walking the
  // first tenant" at every try, though the first alone took 0.1 s).
  const done: (TenantSummary | undefined)[] = tenants.map(() => undefined);
  let next = 0;
  const walkInOrder = async (): Promise<void> => {
    while (next < tenants.length && signal?.aborted !== true) {
      const index = next++;
      done[index] = await summaryOf(tenantsDir, tenants[index]!, signal);
    }
  };
  const walks = Promise.all(Array.from({ length: Math.min(TENANTS_WALKED_AT_ONCE, tenants.length) }, walkInOrder));
  if (signal === undefined) return (await walks, done as TenantSummary[]);
  let stopped: () => void = () => undefined;
  const stop = new Promise<void>((resolve) => {
    stopped = resolve;
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
  try {
    await Promise.race([walks, stop]);
  } finally {
    stopped();
  }
  // The walks stopped throw the signal's reason: whatever they meet after this is nobody's answer.
  walks.catch(() => undefined);
  // The page's first tenant had the whole invocation and its walk did not end: named as not
  // walked, so that the pages go on past it instead of stopping at it at every listing.
  if (done[0] === undefined && next > 0) done[0] = notWalked(tenants[0]!.name);
  const ended = done.findIndex((summary) => summary === undefined);
  return (ended === -1 ? done : done.slice(0, ended)) as TenantSummary[];
}

/** How many tenants' walks run at once: each walks its directories in parallel on a network volume, so a few keep its round trips busy. */
const TENANTS_WALKED_AT_ONCE = 16;

/** One listed tenant's summary: walked when it is `ok`, stopped by `signal` (which throws its reason). */
function summaryOf(tenantsDir: string, tenant: TenantSummary, signal?: AbortSignal): Promise<TenantSummary> {
  return tenant.state === 'ok'
    ? summarizeTenant(tenantsDir, tenant.name, signal).then((summary): TenantSummary => (tenant.recovered === undefined ? summary : { ...summary, recovered: tenant.recovered })).catch((error: NodeJS.ErrnoException) => {
        // A restore moved it between the listing and the walk.
        if (error.code === 'ENOENT') return { name: tenant.name, state: 'mid-commit' as const, detail: 'a restore is moving it into place' };
        // One tenant this user cannot read must not hide the others.
        if (error.code === 'EACCES' || error.code === 'EPERM') return { name: tenant.name, state: 'unreadable' as const, detail: unreadableDetail(error) };
        throw error;
      })
    : Promise.resolve(tenant);
}

/**
 * A tenant whose walk outlasted the list function's invocation: 'unreadable' (what every CLI
 * shows with its detail) by it, and what reads it.
 */
function notWalked(name: string): TenantSummary {
  return {
    name,
    state: 'unreadable',
    detail: 'not walked: its walk outlasted the list function\'s invocation (a tenant of some 200,000 files on EFS): tenants list without --stack on a host that mounts the tenant volume sums it',
  };
}

/** "cannot read <path>: permission denied". */
function unreadableDetail(error: NodeJS.ErrnoException): string {
  return `cannot read ${error.path === undefined ? 'part of it' : shownPath(error.path)}: ${errnoMessage(error) ?? error.code}`;
}

/** Entries a walk stopped by a signal takes between turns of the event loop: a few milliseconds on a local disk. */
const ENTRIES_BETWEEN_TURNS = 1024;

export async function summarizeTenant(tenantsDir: string, name: string, signal?: AbortSignal): Promise<TenantSummary & { bytes: number; files: number; lastModified: Date }> {
  const root = path.join(tenantsDir, name);
  const totals = { bytes: 0, files: 0, lastModifiedMs: 0 };
  const linked = new SeenInodes();
  let walked = 0;
  // The backup's own walk, so the summary counts exactly what a backup would archive.
  for await (const item of walkTenant(root, { skipped: [], warnings: [] }, fileAccessFor(root), { statFiles: true })) {
    // On a local disk the walk's calls are synchronous and it never gives the event loop a
    // turn: the deadline's timer could not fire (a 100 ms invocation answered at 299 ms).
    if (signal !== undefined && ++walked % ENTRIES_BETWEEN_TURNS === 0) await nextTurn();
    signal?.throwIfAborted();
    const stat = item.stat!; // statFiles: files are stat'ed too
    totals.lastModifiedMs = Math.max(totals.lastModifiedMs, stat.mtimeMs);
    if (item.kind === 'file') {
      totals.files++;
      const firstName = firstNameOf(item, item.stat!, linked);
      if (typeof firstName === 'boolean' ? firstName : await firstName) totals.bytes += item.stat!.size;
    }
  }
  return { name, state: 'ok', bytes: totals.bytes, files: totals.files, lastModified: new Date(totals.lastModifiedMs) };
}
