// `openclaw tenants list [--names]`

import type { Command } from 'commander';

import type { CliContext } from './context.js';
import { count, formatBytes } from './output.js';

export function registerList(tenants: Command, context: CliContext): void {
  tenants
    .command('list')
    .description('list the tenants in the tenant base dir')
    .option('--names', 'only the names, one per line (for shell loops)')
    .action(async (flags: { names?: boolean }) => {
      const operations = context.operations();
      if (flags.names) {
        const names = await operations.listNames();
        context.output.result({ tenants: names }, names);
        return;
      }
      const tenants = await operations.listSummaries();
      const rows = tenants.map((tenant) => [tenant.name, formatBytes(tenant.bytes), count(tenant.files), tenant.lastModified.toISOString()]);
      context.output.result({ tenants }, tenants.length === 0 ? [`no tenants in ${context.tenantsDir}`] : table(['NAME', 'SIZE', 'FILES', 'LAST MODIFIED'], rows));
    });
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const format = (row: string[]) =>
    row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ');
  return [format(header), ...rows.map(format)];
}
