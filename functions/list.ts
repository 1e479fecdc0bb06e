// The list function (`<prefix>-list`): the tenants on the EFS volume, names or summaries.

import { Logger } from '@aws-lambda-powertools/logger';

import { FUNCTION_ENV } from '../shared/control-plane/deployment.js';
import { readFunctionConfig } from '../shared/control-plane/function-config.js';
import { listHandler } from './list-handler.js';
import { createMetrics, powertoolsMetrics } from './metrics.js';

const config = readFunctionConfig(process.env);
const service = process.env[FUNCTION_ENV.serviceName] ?? 'openclaw-backup';
const logger = new Logger({ serviceName: service });

export const handler = listHandler({ config, logger, metrics: powertoolsMetrics(createMetrics(service)) });
