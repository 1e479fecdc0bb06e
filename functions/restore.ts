// The restore function (`<prefix>-restore`): configuration, logger and clients are created once
// per cold start; the handler itself lives in handlers.ts.

import { Logger } from '@aws-lambda-powertools/logger';

import { createEventBridgeClient, createSecretsManagerClient } from './aws-clients.js';
import { secretIdentityReader } from './identity-secrets.js';
import { FUNCTION_ENV } from '../shared/control-plane/deployment.js';
import { readFunctionConfig } from '../shared/control-plane/function-config.js';
import { completionPublisher } from './events.js';
import { restoreHandler } from './handlers.js';

const config = readFunctionConfig(process.env);
const logger = new Logger({ serviceName: process.env[FUNCTION_ENV.serviceName] ?? 'openclaw-backup' });
const eventBridge = createEventBridgeClient(config);
const identitySecrets = secretIdentityReader(createSecretsManagerClient(config), config.stackPrefix);

export const handler = restoreHandler({
  config,
  logger,
  publish: completionPublisher(eventBridge, config.eventBus, logger, { timeoutMs: config.requestTimeoutMs }),
  identitySecrets,
});
