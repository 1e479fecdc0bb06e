// The functions set up for a backup that continues in further invocations, through the real
// handlers: their configuration, a work queue that is an array the handler's `continueBackup`
// appends to, and a context whose time runs down with the backup's progress.

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { AwsClientStub } from 'aws-sdk-client-mock';
import { vi } from 'vitest';

import { completionPublisher } from '../../functions/events.js';
import type { HandlerDeps } from '../../functions/handler-deps.js';
import type { LambdaContext } from '../../functions/lambda-context.js';
import type { FunctionConfig } from '../../shared/control-plane/function-config.js';
import { encodeWorkMessage, type WorkMessage } from '../../shared/control-plane/work-queue.js';
import { lambdaContext } from './lambda-context.js';
import { S3RVER_ACCESS_KEY } from './s3-server.js';

/** The functions' configuration over the tenant volume `tenantsDir`, backing up to the bucket `backups`. */
export function continuationConfig(tenantsDir: string): FunctionConfig {
  return {
    tenantsDir,
    backupBucket: 'backups',
    allowedSourceBuckets: [],
    eventBus: 'openclaw-backup-events',
    stackPrefix: 'openclaw-backup',
    abortMarginMs: 1000,
    continueMarginMs: 3000,
  };
}

/** The handlers' dependencies, each next piece's message appended to `queue` as the queue would deliver it. */
export function queueingDeps(config: FunctionConfig, logger: Logger, queue: WorkMessage[]): HandlerDeps {
  return {
    config,
    logger,
    publish: completionPublisher(new EventBridgeClient({ region: 'us-east-1' }), config.eventBus, logger),
    continueBackup: async (message) => {
      queue.push(JSON.parse(encodeWorkMessage(message)) as WorkMessage);
    },
  };
}

/**
 * `budgetMs` (five seconds) of which 50 ms go at every look at the time left, and only that: a
 * piece looks once per entry, so it archives ~20 entries whatever the machine's speed.
 */
export function budgetContext(requestId: string, budgetMs = 5000): LambdaContext {
  let looks = 0;
  return lambdaContext({ awsRequestId: requestId, memoryLimitInMB: '1769', remaining: () => Math.max(0, budgetMs - 50 * looks++) });
}

/** The function's role in the environment, and "S3" at the endpoint the environment names (s3rver at `endpoint`). */
export function stubRoleReachingS3At(endpoint: string): void {
  vi.stubEnv('AWS_ACCESS_KEY_ID', S3RVER_ACCESS_KEY);
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'role-secret');
  vi.stubEnv('AWS_REGION', 'us-east-1');
  vi.stubEnv('AWS_ENDPOINT_URL_S3', endpoint);
}

/** `count` one-line session files under `tenantDir`/sessions: too many entries for one budgetContext piece. */
export function writeSessionTurns(tenantDir: string, count: number): void {
  for (let f = 0; f < count; f++) {
    const file = path.join(tenantDir, 'sessions', `s-${String(f).padStart(2, '0')}.jsonl`);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, `{"turn":${f}}\n`);
  }
}

/** The completion events put on the mocked bus, oldest first: detail type and parsed detail. */
export function publishedEvents(eventBridge: AwsClientStub<EventBridgeClient>): { detailType: string | undefined; detail: Record<string, unknown> }[] {
  return eventBridge.commandCalls(PutEventsCommand).map((call) => {
    const entry = call.args[0].input.Entries![0]!;
    return { detailType: entry.DetailType, detail: JSON.parse(entry.Detail!) as Record<string, unknown> };
  });
}
