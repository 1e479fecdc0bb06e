// The list function (`<prefix>-list`): the tenants on the EFS volume, names or summaries.

import { Logger } from '@aws-lambda-powertools/logger';

import { FUNCTION_ENV } from '../shared/control-plane/deployment.js';
import { readFunctionConfig } from '../shared/control-plane/function-config.js';
import { listHandler } from './list-handler.js';

const config = readFunctionConfig(process.env);
const logger = new Logger({ serviceName: process.env[FUNCTION_ENV.serviceName] ?? 'openclaw-backup' });

export const handler = listHandler({ config, logger });
