// The restore function (`<prefix>-restore`): configuration, logger, metrics and clients are created once
// per cold start; the handlers live in restore-handler.ts (direct invocations) and
// restore-queue-handler.ts (the next pieces of a restore in pieces, from the restore queue).

import { Logger } from '@aws-lambda-powertools/logger';

import { SendMessageCommand } from '@aws-sdk/client-sqs';

import { createEventBridgeClient, createSecretsManagerClient, createSqsClient } from './aws-clients.js';
import { secretIdentityReader } from './identity-secrets.js';
import { limitCpuBudget } from '../shared/cpu-budget.js';
import { FUNCTION_ENV } from '../shared/control-plane/deployment.js';
import { readCoordinatorConfig, readFunctionConfig } from '../shared/control-plane/function-config.js';
import { encodeRestoreWorkMessage, type RestoreWorkMessage } from '../shared/control-plane/work-queue.js';
import { completionPublisher } from './events.js';
import type { Handler } from './handler-deps.js';
import { functionRestoreOperations, restoreHandler } from './restore-handler.js';
import { createMetrics, powertoolsMetrics } from './metrics.js';
import { isSqsBatch } from './sqs-batch.js';
import { restoreQueueHandler } from './restore-queue-handler.js';

const config = readFunctionConfig(process.env);
// Lambda shows more CPUs than the function's memory pays for: use what it pays for.
if (config.cpus !== undefined) limitCpuBudget(config.cpus);
const service = process.env[FUNCTION_ENV.serviceName] ?? 'openclaw-backup';
const logger = new Logger({ serviceName: service });
const eventBridge = createEventBridgeClient(config);
const identitySecrets = secretIdentityReader(createSecretsManagerClient(config), config.stackPrefix);
// The restore queue, where a restore that outlasts an invocation queues its next piece.
const { restoreQueueUrl } = readCoordinatorConfig(process.env);
const sqs = restoreQueueUrl === undefined ? undefined : createSqsClient(config);

const deps = {
  config,
  logger,
  publish: completionPublisher(eventBridge, config.eventBus, logger, { timeoutMs: config.requestTimeoutMs }),
  metrics: powertoolsMetrics(createMetrics(service)),
  identitySecrets,
  operations: functionRestoreOperations(config, identitySecrets),
  ...(sqs !== undefined && {
    continueRestore: async (message: RestoreWorkMessage) => {
      await sqs.send(new SendMessageCommand({ QueueUrl: restoreQueueUrl, MessageBody: encodeRestoreWorkMessage(message) }));
    },
  }),
};
const direct = restoreHandler(deps);
const queued = restoreQueueHandler(deps);

export const handler: Handler<unknown> = (event, context) => (isSqsBatch(event) ? queued(event, context) : direct(event, context));
