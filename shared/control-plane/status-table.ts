// The stack's status table (`<prefix>-status`, DynamoDB): a small record of what happened,
// for what the schedules themselves cannot say. Partition key `kind`, sort key `name`:
//   kind "tenant", name <tenant>        the tenant's last successful and last failed backup
//                                       (written by the monitor from the completion events),
//                                       and when the freshness check first saw it
//   kind "cron",   name <schedule name> the cron as `cron add` was given it (schedule, time
//                                       zone, window, command): what `cron list` shows, read
//                                       in pages, since ListSchedules returns none of it
//   kind "check",  name "freshness"     the last freshness check's result, for `doctor`
// Writes of outcomes are conditional on time (an older event never overwrites a newer one),
// so late and repeated deliveries of completion events are harmless. Over injected clients.

import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';

export type Db = Pick<DynamoDBClient, 'send'>;

/** A tenant's record: the last outcome each way, and when the freshness check first saw it. */
export interface TenantStatus {
  readonly tenant: string;
  readonly lastSuccessAt?: string;
  readonly lastSuccessLocation?: string;
  readonly lastBytes?: number;
  readonly lastArchiveBytes?: number;
  readonly lastDurationMs?: number;
  readonly lastSuccessTrigger?: string;
  readonly lastFailureAt?: string;
  readonly lastFailureCode?: string;
  readonly lastFailureMessage?: string;
  readonly lastFailureTrigger?: string;
  readonly firstSeenAt?: string;
}

/** One backup's outcome, as its completion event tells it. */
export interface BackupOutcome {
  readonly tenant: string;
  readonly ok: boolean;
  /** ISO 8601, second precision or finer, UTC ("Z"): compared as text. */
  readonly time: string;
  readonly location: string;
  readonly trigger: string;
  readonly durationMs?: number;
  readonly bytes?: number;
  readonly archiveBytes?: number;
  readonly error?: { readonly code: string; readonly message: string };
}

/** A cron as `cron add` was given it, kept for `cron list`. */
export interface CronEntry {
  /** The schedule's name in the group. */
  readonly name: string;
  /** The tenant, or `*` for every tenant. */
  readonly tenant: string;
  readonly cronName: string;
  readonly schedule: string;
  readonly expression: string;
  readonly timeZone: string;
  readonly windowMinutes: number;
  readonly cmd: string;
  readonly createdAt: string;
}

/** The last freshness check's result. */
export interface FreshnessRecord {
  readonly checkedAt: string;
  readonly tenants: number;
  readonly stale: number;
  /** The first stale tenants, by name. */
  readonly staleSample: readonly string[];
  readonly staleAfterHours: number;
}

const S = (value: string): AttributeValue => ({ S: value });
const N = (value: number): AttributeValue => ({ N: String(value) });
const text = (item: Record<string, AttributeValue>, key: string) => item[key]?.S;
const number = (item: Record<string, AttributeValue>, key: string) => (item[key]?.N === undefined ? undefined : Number(item[key]!.N));

function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, member]) => member !== undefined)) as T;
}

/** Records a backup's outcome; an event older than what is recorded changes nothing. */
export async function recordBackupOutcome(db: Db, table: string, outcome: BackupOutcome): Promise<'recorded' | 'older'> {
  const at = outcome.ok ? 'lastSuccessAt' : 'lastFailureAt';
  const values: Record<string, AttributeValue | undefined> = outcome.ok
    ? {
        lastSuccessAt: S(outcome.time),
        lastSuccessLocation: S(outcome.location),
        lastSuccessTrigger: S(outcome.trigger),
        lastDurationMs: outcome.durationMs === undefined ? undefined : N(outcome.durationMs),
        lastBytes: outcome.bytes === undefined ? undefined : N(outcome.bytes),
        lastArchiveBytes: outcome.archiveBytes === undefined ? undefined : N(outcome.archiveBytes),
      }
    : {
        lastFailureAt: S(outcome.time),
        lastFailureLocation: S(outcome.location),
        lastFailureTrigger: S(outcome.trigger),
        lastFailureCode: S(outcome.error?.code ?? 'UNEXPECTED'),
        lastFailureMessage: S((outcome.error?.message ?? '').slice(0, 1000)),
      };
  const present = Object.entries(values).filter((entry): entry is [string, AttributeValue] => entry[1] !== undefined);
  try {
    await db.send(
      new UpdateItemCommand({
        TableName: table,
        Key: { kind: S('tenant'), name: S(outcome.tenant) },
        UpdateExpression: `SET ${present.map(([key]) => `#${key} = :${key}`).join(', ')}`,
        ConditionExpression: `attribute_not_exists(#${at}) OR #${at} < :${at}`,
        ExpressionAttributeNames: Object.fromEntries(present.map(([key]) => [`#${key}`, key])),
        ExpressionAttributeValues: Object.fromEntries(present.map(([key, value]) => [`:${key}`, value])),
      }),
    );
    return 'recorded';
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException || (error as Error | undefined)?.name === 'ConditionalCheckFailedException') return 'older';
    throw error;
  }
}

/** Marks when the freshness check first saw a tenant that has no record yet (never overwrites). */
export async function markFirstSeen(db: Db, table: string, tenant: string, at: string): Promise<void> {
  await db.send(
    new UpdateItemCommand({
      TableName: table,
      Key: { kind: S('tenant'), name: S(tenant) },
      UpdateExpression: 'SET #firstSeenAt = if_not_exists(#firstSeenAt, :at)',
      ExpressionAttributeNames: { '#firstSeenAt': 'firstSeenAt' },
      ExpressionAttributeValues: { ':at': S(at) },
    }),
  );
}

/** Every item of one kind (optionally whose name starts with `prefix`), a page at a time. */
async function* queryKind(db: Db, table: string, kind: string, prefix?: string): AsyncGenerator<Record<string, AttributeValue>> {
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await db.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: prefix === undefined ? '#kind = :kind' : '#kind = :kind AND begins_with(#name, :prefix)',
        ExpressionAttributeNames: { '#kind': 'kind', ...(prefix !== undefined && { '#name': 'name' }) },
        ExpressionAttributeValues: { ':kind': S(kind), ...(prefix !== undefined && { ':prefix': S(prefix) }) },
        ...(start !== undefined && { ExclusiveStartKey: start }),
      }),
    );
    yield* page.Items ?? [];
    start = page.LastEvaluatedKey;
  } while (start !== undefined);
}

export async function readTenantStatuses(db: Db, table: string): Promise<Map<string, TenantStatus>> {
  const statuses = new Map<string, TenantStatus>();
  for await (const item of queryKind(db, table, 'tenant')) {
    const tenant = text(item, 'name');
    if (tenant === undefined) continue;
    statuses.set(
      tenant,
      defined({
        tenant,
        lastSuccessAt: text(item, 'lastSuccessAt'),
        lastSuccessLocation: text(item, 'lastSuccessLocation'),
        lastBytes: number(item, 'lastBytes'),
        lastArchiveBytes: number(item, 'lastArchiveBytes'),
        lastDurationMs: number(item, 'lastDurationMs'),
        lastSuccessTrigger: text(item, 'lastSuccessTrigger'),
        lastFailureAt: text(item, 'lastFailureAt'),
        lastFailureCode: text(item, 'lastFailureCode'),
        lastFailureMessage: text(item, 'lastFailureMessage'),
        lastFailureTrigger: text(item, 'lastFailureTrigger'),
        firstSeenAt: text(item, 'firstSeenAt'),
      }),
    );
  }
  return statuses;
}

export async function putCronEntry(db: Db, table: string, entry: CronEntry): Promise<void> {
  await db.send(
    new PutItemCommand({
      TableName: table,
      Item: {
        kind: S('cron'),
        name: S(entry.name),
        tenant: S(entry.tenant),
        cronName: S(entry.cronName),
        schedule: S(entry.schedule),
        expression: S(entry.expression),
        timeZone: S(entry.timeZone),
        windowMinutes: N(entry.windowMinutes),
        cmd: S(entry.cmd),
        createdAt: S(entry.createdAt),
      },
    }),
  );
}

export async function deleteCronEntry(db: Db, table: string, name: string): Promise<void> {
  await db.send(new DeleteItemCommand({ TableName: table, Key: { kind: S('cron'), name: S(name) } }));
}

/** The cron catalog (or the part whose schedule names start with `prefix`), by schedule name. */
export async function readCronEntries(db: Db, table: string, prefix?: string): Promise<Map<string, CronEntry>> {
  const entries = new Map<string, CronEntry>();
  for await (const item of queryKind(db, table, 'cron', prefix)) {
    const name = text(item, 'name');
    const [tenant, cronName, schedule, expression, cmd] = ['tenant', 'cronName', 'schedule', 'expression', 'cmd'].map((key) => text(item, key));
    if (name === undefined || tenant === undefined || cronName === undefined || schedule === undefined || expression === undefined || cmd === undefined) continue;
    entries.set(name, {
      name,
      tenant,
      cronName,
      schedule,
      expression,
      cmd,
      timeZone: text(item, 'timeZone') ?? 'UTC',
      windowMinutes: number(item, 'windowMinutes') ?? 0,
      createdAt: text(item, 'createdAt') ?? '',
    });
  }
  return entries;
}

export async function putFreshnessRecord(db: Db, table: string, record: FreshnessRecord): Promise<void> {
  await db.send(
    new PutItemCommand({
      TableName: table,
      Item: {
        kind: S('check'),
        name: S('freshness'),
        checkedAt: S(record.checkedAt),
        tenants: N(record.tenants),
        stale: N(record.stale),
        staleSample: { L: record.staleSample.map(S) },
        staleAfterHours: N(record.staleAfterHours),
      },
    }),
  );
}

export async function getFreshnessRecord(db: Db, table: string): Promise<FreshnessRecord | undefined> {
  const { Item: item } = await db.send(new GetItemCommand({ TableName: table, Key: { kind: S('check'), name: S('freshness') } }));
  if (item === undefined) return undefined;
  const checkedAt = text(item, 'checkedAt');
  if (checkedAt === undefined) return undefined;
  return {
    checkedAt,
    tenants: number(item, 'tenants') ?? 0,
    stale: number(item, 'stale') ?? 0,
    staleSample: (item.staleSample?.L ?? []).map((value) => value.S ?? '').filter((name) => name !== ''),
    staleAfterHours: number(item, 'staleAfterHours') ?? 0,
  };
}
