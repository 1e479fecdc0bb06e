// The prune function (`<prefix>-prune`): removes old archives from the backup bucket by a
// retention policy, direct or scheduled. It mounts no file system; its role is the only one
// in the stack that may delete (backup-bucket.ts grantPrune). The handler lives in prune-handler.ts.

import { Logger } from '@aws-lambda-powertools/logger';

import { createEventBridgeClient } from './aws-clients.js';
import { FUNCTION_ENV } from '../shared/control-plane/deployment.js';
import { readFunctionConfig } from '../shared/control-plane/function-config.js';
import { completionPublisher } from './events.js';
import { pruneHandler } from './prune-handler.js';
import { createMetrics, powertoolsMetrics } from './metrics.js';

const config = readFunctionConfig(process.env);
const service = process.env[FUNCTION_ENV.serviceName] ?? 'openclaw-backup';
const logger = new Logger({ serviceName: service });
const eventBridge = createEventBridgeClient(config);

export const handler = pruneHandler({
  config,
  logger,
  publish: completionPublisher(eventBridge, config.eventBus, logger, { timeoutMs: config.requestTimeoutMs }),
  metrics: powertoolsMetrics(createMetrics(service)),
});
