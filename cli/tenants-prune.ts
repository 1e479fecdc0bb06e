// `openclaw tenants prune NAME --in LOCATION --keep-… [--dry-run]`

import { InvalidArgumentError, type Command } from 'commander';

import { KEEP_WITHIN_SPAN, type PruneDecision, type PruneResult } from '../shared/catalog/prune.js';
import { parseKeepWithin, type RetentionPolicy } from '../shared/catalog/retention.js';
import { PRUNE_FLAGS } from '../shared/command-flags.js';
import { ReportedError } from '../shared/errors.js';
import { addFlags, storageFlags, type CliContext } from './context.js';
import { formatBytes, plural, shownPath, shownText, tableLines, utcSecond, via } from './output.js';

export function registerPrune(tenants: Command, context: CliContext): void {
  const command = tenants
    .command('prune')
    .description("remove a tenant's backups that no --keep rule keeps (restic forget rules, dated by each backup's creation time)")
    .argument('<tenant>', 'tenant name')
    .addHelpText(
      'after',
      '\nA backup kept by any rule stays; where fewer hours, days, weeks, months or years hold a backup than such a rule\n' +
        'keeps, it keeps the oldest backup too (as restic does: "oldest daily" in WHY). The newest verified one (tenants\n' +
        'verify) stays too, and any backup whose creation time or tenant cannot be read. A backup cut short (no footer, or\n' +
        'not the size its backup recorded) or that nothing shows whole (encrypted on S3 without its size tag, unverified) is\n' +
        'kept and counted by no rule. Copies of one backup (the same tenant, creation time and manifest digest: cp -p, a hard\n' +
        `link, an S3 copy-object) fill one rule's slot, not one each: they are kept beside it ("same backup as LOCATION" in\n` +
        'WHY) or removed with it. Hours, days, weeks, months and years are UTC; --keep-within counts back from the newest\n' +
        'backup, not from now. In a versioned bucket a removal adds a delete marker: the data stays as a noncurrent version\n' +
        "until the bucket's lifecycle deletes it (the output says when). A backup that changed since the listing (written\n" +
        'again, e.g. by backup --overwrite) is skipped with a note, not removed (exit 0). Only objects whose location (bucket\n' +
        "and key, or path) holds the tenant's name, in any case, or whose name is a date and time alone (2026-06-03.tar.zst),\n" +
        "are looked at (another tenant's object below a shared prefix would cost a request): a backup of the tenant under\n" +
        'another name is left alone, counted by no rule (a note says how many objects were not looked at), unless none of its\n' +
        'backups that a rule counts has its name: then every object is looked at.\n' +
        '\nExamples:\n' +
        '  openclaw tenants prune acme --in /var/backups/acme/ --keep-daily 7 --keep-weekly 4 --dry-run\n' +
        '  openclaw tenants prune acme --in s3://my-bucket/backups/acme/ --keep-last 3 --keep-monthly 12\n' +
        '  openclaw tenants prune acme --in s3://my-bucket/backups/acme/ --keep-within 7d --keep-daily 30',
    );
  addFlags(command, PRUNE_FLAGS, { keepLast: count, keepHourly: count, keepDaily: count, keepWeekly: count, keepMonthly: count, keepYearly: count, keepWithin: span });
  command.action(async (tenant: string, flags: Record<string, unknown>) => {
    const keep: { -readonly [K in keyof RetentionPolicy]: RetentionPolicy[K] } = {};
    for (const [flag, rule] of [['keepLast', 'last'], ['keepHourly', 'hourly'], ['keepDaily', 'daily'], ['keepWeekly', 'weekly'], ['keepMonthly', 'monthly'], ['keepYearly', 'yearly']] as const) {
      if (flags[flag] !== undefined) keep[rule] = flags[flag] as number;
    }
    if (flags.keepWithin !== undefined) keep.within = flags.keepWithin as string;
    const { pipe: _pipe, ...storeFlags } = storageFlags(flags);
    const storage = { ...storeFlags, ...(flags.deleteIfMatch === true && { deleteIfMatch: true }) };
    const result = await context.operations().prune({ tenant, in: flags.in as string, keep, dryRun: flags.dryRun === true, storage }, { signal: context.signal });
    // Written as it is made: 100,000 decisions' JSON or table is no one's to hold as one text.
    await context.output.streamResult(result, ['keep', 'remove'], describePrune(result));
    if (result.refusal !== undefined) throw new ReportedError('DRY_RUN_REFUSED', result.refusal);
  });
}

export function* describePrune(result: PruneResult): Generator<string> {
  const row = (decision: PruneDecision, action: string) => [action, decision.createdAt === undefined ? '?' : utcSecond(decision.createdAt), formatBytes(decision.bytes), shownPath(decision.location), decision.reasons.join(', ')];
  // A gateway's answer may leave decisions out (a Lambda response holds at most 6 MB): counted, not shown.
  const keepOmitted = result.keepOmitted ?? 0;
  const removeOmitted = result.removeOmitted ?? 0;
  const bytes = result.remove.reduce((total, decision) => total + decision.bytes, result.removeOmittedBytes ?? 0);
  // A damaged or unproven backup is kept, never counted: the operator sees how many at once.
  const uncounted = result.keep.filter((decision) => decision.uncounted === true).length + (result.keepOmittedUncounted ?? 0);
  const kept = `${result.keep.length + keepOmitted}${uncounted === 0 ? '' : ` (${uncounted} counted by no rule: see WHY)`}`;
  yield result.dryRun
    ? `Dry run: would keep ${kept} and remove ${plural(result.remove.length + removeOmitted, 'backup')} (${formatBytes(bytes)}) of "${result.tenant}" in ${shownPath(result.location)}${via(result.endpoint)}`
    : `Kept ${kept} and removed ${result.removed} ${result.removed === 1 ? 'backup' : 'backups'} (${formatBytes(result.bytesRemoved)}) of "${result.tenant}" in ${shownPath(result.location)}${via(result.endpoint)}`;
  const lines: string[] = [];
  const skipped = new Set(result.skipped.map((skip) => skip.location));
  // Made as they are written, twice (the columns' widths first): 100,000 decisions' rows are not all held.
  function* rows() {
    for (const [decision, kept] of newestFirst(result.keep, result.remove)) {
      yield row(decision, kept ? 'keep' : skipped.has(decision.location) ? 'skipped' : result.dryRun ? 'would remove' : 'removed');
    }
  }
  if (result.keep.length + result.remove.length > 0) for (const line of tableLines(['', 'CREATED', 'SIZE', 'LOCATION', 'WHY'], rows, [2])) yield `  ${line}`;
  if (keepOmitted + removeOmitted > 0) {
    // `skipped` holds every shown removal's skip: those among the decisions left out were chosen,
    // not removed (the first of them named, the rest counted).
    const shownRemoves = new Set(result.remove.map((decision) => decision.location));
    const skippedOmitted = removeOmitted > 0 ? result.skipped.filter((skip) => !shownRemoves.has(skip.location)) : [];
    const skippedUnnamed = result.skippedOmitted ?? 0;
    const removedOmitted = removeOmitted - skippedOmitted.length - skippedUnnamed;
    const laterSkipped = skippedOmitted.length + skippedUnnamed;
    const parts = [
      ...(removedOmitted > 0 ? [`${removedOmitted.toLocaleString('en-US')} later ${result.dryRun ? 'to remove' : 'removed'}`] : []),
      ...(laterSkipped > 0 ? [`${laterSkipped.toLocaleString('en-US')} later skipped (${skippedUnnamed > 0 ? `the first ${skippedOmitted.length.toLocaleString('en-US')} below` : 'below'})`] : []),
      ...(keepOmitted > 0 ? [`${keepOmitted.toLocaleString('en-US')} older kept`] : []),
    ];
    const more = result.dryRun ? ': run the dry run without --stack to list every decision' : '';
    lines.push(`  … and ${parts.join(' and ')}, left out of the gateway's answer (a Lambda response holds at most 6 MB)${more}`);
    for (const skip of skippedOmitted) lines.push(`  skipped ${shownPath(skip.location)}: ${shownText(skip.reason)}`);
  }
  for (const upload of result.abortedUploads ?? []) {
    lines.push(`  ${result.dryRun ? 'would abort' : 'aborted'} the unfinished multipart upload to ${shownPath(upload.location)} started ${utcSecond(upload.initiatedAt)} (a killed backup's parts)`);
  }
  for (const note of result.notes) lines.push(`  note: ${shownText(note)}`);
  if (result.refusal !== undefined) lines.push(`  the prune would be REFUSED: ${shownText(result.refusal)}`);
  yield* lines;
}

/**
 * Every decision newest first, as `tenants backups` lists them: `keep` comes newest first (an
 * undated backup last), `remove` oldest first (the order of the removals).
 */
function* newestFirst(keep: readonly PruneDecision[], remove: readonly PruneDecision[]): Generator<[PruneDecision, boolean]> {
  let next = remove.length - 1;
  for (const decision of keep) {
    const kept = decision.createdAt === undefined ? -Infinity : Date.parse(decision.createdAt);
    for (; next >= 0 && Date.parse(remove[next]!.createdAt!) > kept; next -= 1) yield [remove[next]!, false];
    yield [decision, true];
  }
  for (; next >= 0; next -= 1) yield [remove[next]!, false];
}

function count(value: string): number {
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(parsed)) throw new InvalidArgumentError('must be a whole number (0 or more)');
  return parsed;
}

function span(value: string): string {
  // Commander's message names the value already ("argument '7' is invalid.").
  if (parseKeepWithin(value) === undefined) throw new InvalidArgumentError(`must be ${KEEP_WITHIN_SPAN}`);
  return value;
}
