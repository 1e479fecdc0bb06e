// The backup function (`<prefix>-backup`): configuration, logger and clients are created once
// per cold start; the handler itself lives in handlers.ts.

import { Logger } from '@aws-lambda-powertools/logger';

import { createEventBridgeClient } from './aws-clients.js';
import { limitCpuBudget } from '../shared/cpu-budget.js';
import { FUNCTION_ENV } from '../shared/control-plane/deployment.js';
import { readFunctionConfig } from '../shared/control-plane/function-config.js';
import { completionPublisher } from './events.js';
import { backupHandler } from './handlers.js';

const config = readFunctionConfig(process.env);
// Lambda shows more CPUs than the function's memory pays for: use what it pays for.
if (config.cpus !== undefined) limitCpuBudget(config.cpus);
const logger = new Logger({ serviceName: process.env[FUNCTION_ENV.serviceName] ?? 'openclaw-backup' });
const eventBridge = createEventBridgeClient(config);

export const handler = backupHandler({ config, logger, publish: completionPublisher(eventBridge, config.eventBus, logger, { timeoutMs: config.requestTimeoutMs }) });
