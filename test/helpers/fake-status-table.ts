// An in-memory stand-in for the status table's DynamoDB calls, for aws-sdk-client-mock: it
// understands exactly the request shapes shared/control-plane/status-table.ts sends (SET
// lists, if_not_exists, the "attribute_not_exists(#a) OR #a < :a" condition, a partition
// query with an optional begins_with, paged `pageSize` items at a time) and refuses any
// other, so a change there cannot pass unnoticed against a fake that guesses.

import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
  type AttributeValue,
  type QueryCommandInput,
  type UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';

type Item = Record<string, AttributeValue>;

export interface FakeStatusTable {
  readonly items: Map<string, Item>;
  restore(): void;
}

const keyOf = (key: Record<string, AttributeValue>) => `${key.kind!.S}\u0000${key.name!.S}`;

export function fakeStatusTable(pageSize = 1000): FakeStatusTable {
  const items = new Map<string, Item>();
  const mock = mockClient(DynamoDBClient);

  mock.on(PutItemCommand).callsFake((input: { Item: Item }) => {
    items.set(keyOf(input.Item), { ...input.Item });
    return {};
  });
  mock.on(GetItemCommand).callsFake((input: { Key: Item }) => {
    const item = items.get(keyOf(input.Key));
    return item === undefined ? {} : { Item: { ...item } };
  });
  mock.on(DeleteItemCommand).callsFake((input: { Key: Item }) => {
    items.delete(keyOf(input.Key));
    return {};
  });
  mock.on(UpdateItemCommand).callsFake((input: UpdateItemCommandInput) => {
    const names = input.ExpressionAttributeNames ?? {};
    const values = input.ExpressionAttributeValues ?? {};
    const key = keyOf(input.Key!);
    const item: Item = { ...(items.get(key) ?? { ...input.Key! }) };
    if (input.ConditionExpression !== undefined) {
      const match = /^attribute_not_exists\((#\w+)\) OR (#\w+) < (:\w+)$/.exec(input.ConditionExpression);
      if (match === null || match[1] !== match[2]) throw new Error(`fake table: unknown condition ${input.ConditionExpression}`);
      const current = item[names[match[1]!]!]?.S;
      if (current !== undefined && !(current < values[match[3]!]!.S!)) {
        throw new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
      }
    }
    const set = /^SET (.+)$/.exec(input.UpdateExpression ?? '');
    if (set === null) throw new Error(`fake table: unknown update ${input.UpdateExpression}`);
    for (const assignment of set[1]!.split(/, (?=#)/)) {
      const plain = /^(#\w+) = (:\w+)$/.exec(assignment);
      const ifNotExists = /^(#\w+) = if_not_exists\((#\w+), (:\w+)\)$/.exec(assignment);
      if (plain !== null) item[names[plain[1]!]!] = values[plain[2]!]!;
      else if (ifNotExists !== null && ifNotExists[1] === ifNotExists[2]) item[names[ifNotExists[1]!]!] ??= values[ifNotExists[3]!]!;
      else throw new Error(`fake table: unknown assignment ${assignment}`);
    }
    items.set(key, item);
    return {};
  });
  mock.on(QueryCommand).callsFake((input: QueryCommandInput) => {
    const values = input.ExpressionAttributeValues ?? {};
    const condition = input.KeyConditionExpression;
    if (condition !== '#kind = :kind' && condition !== '#kind = :kind AND begins_with(#name, :prefix)') throw new Error(`fake table: unknown key condition ${condition}`);
    const kind = values[':kind']!.S!;
    const prefix = values[':prefix']?.S ?? '';
    const matching = [...items.values()]
      .filter((item) => item.kind!.S === kind && item.name!.S!.startsWith(prefix))
      .sort((a, b) => (a.name!.S! < b.name!.S! ? -1 : 1));
    const after = input.ExclusiveStartKey?.name?.S;
    const rest = after === undefined ? matching : matching.filter((item) => item.name!.S! > after);
    const page = rest.slice(0, pageSize);
    return { Items: page, ...(rest.length > pageSize && { LastEvaluatedKey: { kind: page.at(-1)!.kind!, name: page.at(-1)!.name! } }) };
  });
  return { items, restore: () => mock.restore() };
}

/** A tenant's record as plain values, for assertions. */
export function tenantRecord(table: FakeStatusTable, tenant: string): Record<string, string | number> | undefined {
  const item = table.items.get(`tenant\u0000${tenant}`);
  if (item === undefined) return undefined;
  return Object.fromEntries(Object.entries(item).map(([key, value]) => [key, value.N !== undefined ? Number(value.N) : (value.S ?? JSON.stringify(value))]));
}
