// The restore function (`<prefix>-restore`): configuration, logger, metrics and clients are created once
// per cold start; the handler itself lives in handlers.ts.

import { Logger } from '@aws-lambda-powertools/logger';

import { createEventBridgeClient, createSecretsManagerClient } from './aws-clients.js';
import { secretIdentityReader } from './identity-secrets.js';
import { limitCpuBudget } from '../shared/cpu-budget.js';
import { FUNCTION_ENV } from '../shared/control-plane/deployment.js';
import { readFunctionConfig } from '../shared/control-plane/function-config.js';
import { completionPublisher } from './events.js';
import { restoreHandler } from './handlers.js';
import { createMetrics, powertoolsMetrics } from './metrics.js';

const config = readFunctionConfig(process.env);
// Lambda shows more CPUs than the function's memory pays for: use what it pays for.
if (config.cpus !== undefined) limitCpuBudget(config.cpus);
const service = process.env[FUNCTION_ENV.serviceName] ?? 'openclaw-backup';
const logger = new Logger({ serviceName: service });
const eventBridge = createEventBridgeClient(config);
const identitySecrets = secretIdentityReader(createSecretsManagerClient(config), config.stackPrefix);

export const handler = restoreHandler({
  config,
  logger,
  publish: completionPublisher(eventBridge, config.eventBus, logger, { timeoutMs: config.requestTimeoutMs }),
  metrics: powertoolsMetrics(createMetrics(service)),
  identitySecrets,
});
