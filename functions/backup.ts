// The backup function (`<prefix>-backup`): configuration, logger, metrics and clients are
// created once per cold start; the handlers live in backup-handler.ts (direct and scheduled
// invocations) and queue-handler.ts (batches from the work queue).

import { Logger } from '@aws-lambda-powertools/logger';

import { SendMessageCommand } from '@aws-sdk/client-sqs';

import { createEventBridgeClient, createSqsClient } from './aws-clients.js';
import { encodeWorkMessage, type WorkMessage } from '../shared/control-plane/work-queue.js';
import { limitCpuBudget } from '../shared/cpu-budget.js';
import { FUNCTION_ENV } from '../shared/control-plane/deployment.js';
import { readCoordinatorConfig, readFunctionConfig } from '../shared/control-plane/function-config.js';
import { completionPublisher } from './events.js';
import { backupHandler } from './backup-handler.js';
import type { Handler } from './handler-deps.js';
import { createMetrics, powertoolsMetrics } from './metrics.js';
import { workQueueHandler } from './queue-handler.js';
import { isSqsBatch } from './sqs-batch.js';

const config = readFunctionConfig(process.env);
// Lambda shows more CPUs than the function's memory pays for: use what it pays for.
if (config.cpus !== undefined) limitCpuBudget(config.cpus);
const service = process.env[FUNCTION_ENV.serviceName] ?? 'openclaw-backup';
const logger = new Logger({ serviceName: service });
const eventBridge = createEventBridgeClient(config);
// The work queue, where a backup that outlasts an invocation queues its next piece.
const { workQueueUrl } = readCoordinatorConfig(process.env);
const sqs = workQueueUrl === undefined ? undefined : createSqsClient(config);
const deps = {
  config,
  logger,
  publish: completionPublisher(eventBridge, config.eventBus, logger, { timeoutMs: config.requestTimeoutMs }),
  metrics: powertoolsMetrics(createMetrics(service)),
  ...(sqs !== undefined && {
    continueBackup: async (message: WorkMessage) => {
      await sqs.send(new SendMessageCommand({ QueueUrl: workQueueUrl, MessageBody: encodeWorkMessage(message) }));
    },
  }),
};
const direct = backupHandler(deps);
const queued = workQueueHandler(deps);

export const handler: Handler<unknown> = (event, context) => (isSqsBatch(event) ? queued(event, context) : direct(event, context));
