// `openclaw tenants list [--names]`: a tenant that a restore is moving, or whose interrupted
// restore needs a decision, is listed too, with a STATE column saying so.

import type { Command } from 'commander';

import { ReportedError } from '../shared/errors.js';
import type { RecoveredTenant, SkippedTenants, TenantSummary } from '../shared/tenant/tenants.js';
import type { CliContext } from './context.js';
import { count, formatBytes, plural, recoveryText } from './output.js';

export function registerList(tenants: Command, context: CliContext): void {
  tenants
    .command('list')
    .description('list the tenants in the tenant base dir')
    .option('--names', 'only the names, one per line (for shell loops)')
    .action(async (flags: { names?: boolean }) => {
      context.exitAtOnceOnInterrupt();
      const operations = context.operations();
      if (flags.names) {
        // In turn: the listing's sweep may rename a foreign trash to a name the skipped list reports.
        const { tenants: names, recovered } = await operations.listNames();
        const skipped = await operations.listSkipped();
        // On stderr: stdout stays one name a line for the scripts that read it.
        const said = noteRecovered(context, recovered, new Set(names));
        context.output.result({ tenants: names, ...said, ...withSkipped(skipped) }, names);
        reportSkipped(context, skipped);
        return;
      }
      const { tenants, recovered } = await operations.listSummaries();
      const skipped = await operations.listSkipped();
      // A STATE column only when a tenant is not settled, so the usual table stays as it was.
      const unsettled = tenants.some((tenant) => tenant.state !== 'ok');
      const header = ['NAME', 'SIZE', 'FILES', 'LAST MODIFIED', ...(unsettled ? ['STATE'] : [])];
      const rows = tenants.map((tenant) => [
        tenant.name,
        tenant.bytes === undefined ? '-' : formatBytes(tenant.bytes),
        tenant.files === undefined ? '-' : count(tenant.files),
        tenant.lastModified?.toISOString() ?? '-',
        ...(unsettled ? [describeState(tenant)] : []),
      ]);
      const said = noteRecovered(context, recovered, new Set(tenants.map((tenant) => tenant.name)));
      context.output.result({ tenants, ...said, ...withSkipped(skipped) }, tenants.length === 0 ? [`no tenants in ${context.tenantsDir}`] : table(header, rows));
      reportSkipped(context, skipped, tenants.filter((tenant) => tenant.state === 'unreadable').map((tenant) => tenant.name));
    });
}

/**
 * As a backup or restore says it: what the listing's sweep settled first of each interrupted
 * restore (rolled back, finished), a note a line on stderr, whether or not the tenant is listed
 * (a rolled-back restore of a new tenant leaves none); the top-level `recovered` of --json.
 */
function noteRecovered(context: CliContext, recovered: readonly RecoveredTenant[], listed: ReadonlySet<string>): { recovered?: readonly RecoveredTenant[] } {
  if (recovered.length === 0) return {};
  for (const { tenant, action } of recovered) if (action !== 'none') context.output.notice(`note: ${recoveryText(tenant, action, listed.has(tenant))}`);
  return { recovered };
}

function withSkipped(skipped: SkippedTenants): { skipped?: SkippedTenants; skippedOmitted?: number } {
  const omitted = skipped.omitted ?? 0;
  return { ...(skipped.length > 0 && { skipped: [...skipped] }), ...(omitted > 0 && { skippedOmitted: omitted }) };
}

/**
 * A tenant the listing leaves out is named on stderr (stdout stays one real tenant a line) and fails the command, as in `backup --all`;
 * those a gateway's answer had no room to name are counted. `unsummed`: tenants listed whose
 * size and files are not known (unreadable, or not walked by the list function: the STATE
 * column says which), which fail it too: a script reading the table exited 0 on a '-'.
 */
function reportSkipped(context: CliContext, skipped: SkippedTenants, unsummed: readonly string[] = []): void {
  // A directory whose name is no tenant name is warned of only: no command can name it, and a listing that failed for a stray `acme.old` would break every script over it.
  for (const stray of skipped) if (stray.invalidName === true) context.output.notice(`warning: ${stray.reason}`);
  const tenants = skipped.filter((tenant) => tenant.invalidName !== true);
  const omitted = skipped.omitted ?? 0;
  const its = unsummed.length === 1 ? 'its' : 'their';
  if (unsummed.length > 0) context.output.notice(`${plural(unsummed.length, 'tenant')} listed without ${its} size and files (${its} STATE says why): ${unsummed.join(', ')}`);
  if (tenants.length === 0 && omitted === 0) {
    if (unsummed.length > 0) throw new ReportedError('TENANTS_NOT_SUMMED', `${plural(unsummed.length, 'tenant')} listed but not summed: ${unsummed.join(', ')}`);
    return;
  }
  for (const tenant of tenants) context.output.notice(`${tenant.reason}: skipped`);
  if (omitted > 0) {
    context.output.notice(
      `${plural(omitted, 'more tenant')} skipped, not named in the gateway's answer (a Lambda response holds at most 6 MB): run tenants list without --stack on a host that mounts the tenant volume to name them`,
    );
  }
  throw new ReportedError('TENANTS_SKIPPED', `${tenants.length + omitted} tenant(s) not listed: ${[...tenants.map((tenant) => tenant.name), ...(omitted > 0 ? [`${omitted} more`] : [])].join(', ')}`);
}

function describeState(tenant: TenantSummary): string {
  switch (tenant.state) {
    case 'ok':
      return 'ok';
    case 'mid-commit':
      return `mid-commit: ${tenant.detail ?? 'a restore is moving it into place'}`;
    case 'needs-recovery':
      return `needs recovery: run "openclaw tenants recover ${tenant.name}" for the details`;
    case 'unreadable':
      return `unreadable: ${tenant.detail ?? 'this user may not read all of it'}`;
  }
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const format = (row: string[]) =>
    row
      .map((cell, column) => (column === 0 || column === 4 ? cell.padEnd(column === 4 ? 0 : widths[column]!) : cell.padStart(widths[column]!)))
      .join('  ');
  return [format(header), ...rows.map(format)];
}
